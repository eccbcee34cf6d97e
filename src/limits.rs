//! Per-client limits: concurrent connections, requests per second, request head size and how
//! long an idle keep-alive connection is kept.
//!
//! Limits apply where a new connection or a new request starts and nowhere else, so they never
//! cut an established stream (`logs -f`, `events`, attach and exec sessions, BuildKit). A
//! client over its limit gets HTTP 429 in Docker's error shape, which the docker CLI prints.
//!
//! Settings are `[limits]` (defaults for every client) with `[client.limits]` overriding key by
//! key. Token buckets belong to a configuration generation (a reload starts them full);
//! connection counts belong to the process, so a reload cannot let a client exceed its limit.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::fasthash::NameMap;

pub mod connections;
pub mod layer;
pub mod rate;

pub use connections::{Admission, ConnectionSlot, Connections, Entry, Exceeded, MAX_REFUSING};

use rate::ClientBuckets;
pub use rate::{Rate, RateExceeded};

/// Default largest request head (request line and headers) a client may send: registry
/// credentials (`X-Registry-Config`) can run to several KiB, so this leaves ample room while
/// keeping a single connection's memory small.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 256 * 1024;

/// The request rate of a client when neither `[limits]` nor its `[client.limits]` sets one:
/// 50 requests a second, in bursts of up to 200. A dashboard polls a few a second, `docker
/// compose up` of a large project sends some hundred at once; a flood is held to a rate whose
/// audit records (each bounded, see `audit::record::MAX_TEXT`) a disk absorbs for days, and
/// its refusals are recorded at most once a second ([`RateExceeded::record`]).
/// `requests_per_second = 0` lifts it.
pub const DEFAULT_RATE: Rate = Rate {
    per_second: 50.0,
    burst: 200.0,
};

/// The smallest head limit accepted (hyper's own floor for its read buffer).
const MIN_HEADER_BYTES: usize = 8192;

/// `[limits]` or `[client.limits]` as written; every key optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent connections (hijacked sessions included); absent:
    /// [`DEFAULT_MAX_CONNECTIONS`]; 0: only the process-wide share
    /// ([`Connections::client_share`]).
    pub max_connections: Option<usize>,
    /// Sustained requests per second; absent: [`DEFAULT_RATE`]; 0: unlimited.
    pub requests_per_second: Option<f64>,
    /// Requests allowed in a burst above the sustained rate (default: one second's worth).
    pub burst: Option<u32>,
    /// Largest request head in bytes.
    pub max_header_bytes: Option<usize>,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Option<String>,
}

impl RawLimits {
    /// `self` with `over`'s keys replacing its own.
    fn overlaid(&self, over: &RawLimits) -> RawLimits {
        RawLimits {
            max_connections: over.max_connections.or(self.max_connections),
            requests_per_second: over.requests_per_second.or(self.requests_per_second),
            burst: over.burst.or(self.burst),
            max_header_bytes: over.max_header_bytes.or(self.max_header_bytes),
            idle_timeout: over.idle_timeout.clone().or(self.idle_timeout.clone()),
        }
    }
}

/// The limits of one client, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Concurrent connections, if limited beyond the process-wide share.
    pub max_connections: Option<usize>,
    /// Request rate, if limited.
    pub rate: Option<Rate>,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Idle keep-alive limit, if set (else `server.header_read_timeout` governs).
    pub idle_timeout: Option<Duration>,
}

impl LimitSettings {
    /// Validates `raw`; `key` names it in errors (`limits`, `client[2].limits`).
    pub fn from_raw(key: &str, raw: &RawLimits) -> Result<LimitSettings, ConfigError> {
        let rate = match raw.requests_per_second {
            None if raw.burst.is_none() => Some(DEFAULT_RATE),
            None => {
                return Err(ConfigError(format!(
                    "{key}.burst: only applies together with requests_per_second"
                )))
            }
            Some(0.0) => None,
            Some(r) if !r.is_finite() || r < 0.0 => {
                return Err(ConfigError(format!(
                    "{key}.requests_per_second: must be a positive number (0 means unlimited)"
                )))
            }
            Some(r) => {
                let burst = match raw.burst {
                    Some(0) => return Err(ConfigError(format!("{key}.burst: must be at least 1"))),
                    Some(b) => f64::from(b),
                    None => r.max(1.0).ceil(),
                };
                Some(Rate {
                    per_second: r,
                    burst,
                })
            }
        };
        if raw.burst.is_some() && rate.is_none() {
            return Err(ConfigError(format!(
                "{key}.burst: only applies together with requests_per_second"
            )));
        }
        let max_header_bytes = raw.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
        if max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError(format!(
                "{key}.max_header_bytes: must be at least {MIN_HEADER_BYTES}"
            )));
        }
        let idle_timeout = match &raw.idle_timeout {
            None => None,
            Some(text) => {
                let d = humantime::parse_duration(text).map_err(|e| {
                    ConfigError(format!("{key}.idle_timeout: {e} (write e.g. \"30s\")"))
                })?;
                if d.is_zero() {
                    return Err(ConfigError(format!(
                        "{key}.idle_timeout: must be longer than zero"
                    )));
                }
                Some(d)
            }
        };
        Ok(LimitSettings {
            max_connections: match raw.max_connections {
                None => Some(DEFAULT_MAX_CONNECTIONS),
                Some(0) => None,
                Some(n) => Some(n),
            },
            rate,
            max_header_bytes,
            idle_timeout,
        })
    }
}

/// The limits of every client of one configuration generation, with their rate buckets.
#[derive(Debug)]
pub struct Limits {
    defaults: LimitSettings,
    clients: NameMap<Arc<str>, ClientLimiter>,
}

#[derive(Debug)]
struct ClientLimiter {
    settings: LimitSettings,
    buckets: Option<ClientBuckets>,
    /// Each unix user has the limits for itself (`isolation = "user"`).
    per_user: bool,
}

impl Limits {
    /// Compiles `[limits]` and each client's overrides (`(name, key, overrides)`).
    pub fn compile<'a>(
        defaults: &RawLimits,
        clients: impl IntoIterator<Item = (Arc<str>, String, Option<&'a RawLimits>)>,
    ) -> Result<Limits, ConfigError> {
        let base = LimitSettings::from_raw("limits", defaults)?;
        let mut map = NameMap::default();
        for (name, key, over) in clients {
            let settings = match over {
                Some(over) => {
                    LimitSettings::from_raw(&format!("{key}.limits"), &defaults.overlaid(over))?
                }
                None => base.clone(),
            };
            let buckets = settings.rate.map(|rate| ClientBuckets::new(rate, false));
            map.insert(
                name,
                ClientLimiter {
                    settings,
                    buckets,
                    per_user: false,
                },
            );
        }
        Ok(Limits {
            defaults: base,
            clients: map,
        })
    }

    /// The settings for `client` (the defaults for a connection that matched no client).
    pub fn settings(&self, client: Option<&str>) -> &LimitSettings {
        client
            .and_then(|c| self.clients.get(c))
            .map_or(&self.defaults, |l| &l.settings)
    }

    /// Gives each unix user of the clients `per_user` names (those whose policy has
    /// `isolation = "user"`: each user is a tenant) the client's request rate and
    /// `max_connections` for itself (see [`rate`] and [`connections`]).
    pub fn with_per_user(mut self, per_user: impl Fn(&str) -> bool) -> Limits {
        for (name, limiter) in self.clients.iter_mut() {
            if per_user(name) {
                limiter.per_user = true;
                if let Some(rate) = limiter.settings.rate {
                    limiter.buckets = Some(ClientBuckets::new(rate, true));
                }
            }
        }
        self
    }

    /// Whether each unix user of `client` has the limits for itself.
    pub fn per_user(&self, client: Option<&str>) -> bool {
        client
            .and_then(|c| self.clients.get(c))
            .is_some_and(|l| l.per_user)
    }

    /// Takes one request of `client` from a peer with unix user `uid` (`None`: no uid) out of
    /// its bucket (see [`rate`]), or says how long to wait.
    pub fn admit(&self, client: &str, uid: Option<u32>) -> Result<(), RateExceeded> {
        match self.clients.get(client).and_then(|l| l.buckets.as_ref()) {
            Some(buckets) => buckets.admit(uid),
            None => Ok(()),
        }
    }
}

/// Connections a client may have open when neither `[limits]` nor its `[client.limits]` says
/// otherwise: far more than a CLI, Compose or a CI runner opens at once, far fewer than it
/// takes to run sockwarden out of descriptors. `max_connections = 0` lifts it (up to
/// [`Connections::client_share`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// Descriptors kept back from client connections: listeners, the audit sink, the admin
/// listener, the event loop, standard streams, `/proc` reads for identity, with room to spare.
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft descriptor limit (`RLIMIT_NOFILE`) to the hard one and returns the soft
/// limit now in force (`None` if it cannot be read). Each client connection needs a second
/// descriptor for its daemon connection, so the default soft limit of 1,024 would let ~500
/// connections exhaust the process.
pub fn raise_nofile() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// How many client connections the process admits at once, all clients together, for a soft
/// descriptor limit of `nofile`: two descriptors per connection (the client's and the
/// daemon's) after [`RESERVED_FDS`] and the idle upstream pool are kept back.
pub fn connection_budget(nofile: u64, pool_max_idle: usize) -> usize {
    let reserved = RESERVED_FDS.saturating_add(pool_max_idle as u64);
    let budget = nofile.saturating_sub(reserved) / 2;
    usize::try_from(budget).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(raw: &RawLimits, client: Option<RawLimits>) -> Limits {
        Limits::compile(
            raw,
            [(Arc::from("ci"), "client[0]".to_owned(), client.as_ref())],
        )
        .unwrap()
    }

    #[test]
    fn bucket_admits_burst_then_refuses() {
        let l = limits(
            &RawLimits::default(),
            Some(RawLimits {
                requests_per_second: Some(2.0),
                burst: Some(3),
                ..RawLimits::default()
            }),
        );
        for _ in 0..3 {
            assert!(l.admit("ci", None).is_ok());
        }
        let refused = l.admit("ci", None).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_millis(500));
        // The first refusal is recorded; those right after it are only counted, and the next
        // recorded one says how many.
        assert_eq!(refused.record, Some(0));
        for _ in 0..5 {
            assert_eq!(l.admit("ci", None).unwrap_err().record, None);
        }
        // Unknown clients are never refused.
        assert!(l.admit("other", None).is_ok());
    }

    #[test]
    fn client_overrides_key_by_key() {
        let base = RawLimits {
            max_connections: Some(4),
            idle_timeout: Some("10s".into()),
            ..RawLimits::default()
        };
        let l = limits(
            &base,
            Some(RawLimits {
                max_connections: Some(1),
                ..RawLimits::default()
            }),
        );
        let ci = l.settings(Some("ci"));
        assert_eq!(ci.max_connections, Some(1));
        assert_eq!(ci.idle_timeout, Some(Duration::from_secs(10)));
        assert_eq!(l.settings(None).max_connections, Some(4));
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (raw, want) in [
            (
                RawLimits {
                    requests_per_second: Some(-1.0),
                    ..RawLimits::default()
                },
                "limits.requests_per_second",
            ),
            (
                RawLimits {
                    burst: Some(5),
                    ..RawLimits::default()
                },
                "limits.burst",
            ),
            (
                RawLimits {
                    max_header_bytes: Some(100),
                    ..RawLimits::default()
                },
                "limits.max_header_bytes",
            ),
            (
                RawLimits {
                    idle_timeout: Some("soon".into()),
                    ..RawLimits::default()
                },
                "limits.idle_timeout",
            ),
        ] {
            let err = LimitSettings::from_raw("limits", &raw).unwrap_err();
            assert!(err.0.starts_with(want), "{err}");
        }
    }

    #[test]
    fn the_budget_bounds_everyone_and_keeps_a_share_for_others() {
        assert_eq!(connection_budget(1024, 16), (1024 - 64 - 16) / 2);
        assert_eq!(connection_budget(10, 16), 1);
        let c = Connections::new(8);
        assert_eq!(c.client_share(), 6);
        let greedy: Arc<str> = Arc::from("greedy");
        let mut held = Vec::new();
        for _ in 0..6 {
            let entry = c.enter().unwrap();
            // No limit of its own: the share still applies.
            let Admission::Open(slot) = c.admit(&greedy, None, None) else {
                panic!("within the share")
            };
            held.push((entry, slot));
        }
        assert!(matches!(
            c.admit(&greedy, None, None),
            Admission::OverLimit(Exceeded { max: 6, .. }, _)
        ));
        // Another client still gets in.
        let _e = c.enter().unwrap();
        assert!(matches!(
            c.admit(&Arc::from("other"), None, None),
            Admission::Open(_)
        ));
        let _f = c.enter().unwrap();
        assert!(c.enter().is_none(), "the budget is spent");
        assert_eq!(c.total(), 8);
        held.clear();
        assert_eq!(c.total(), 2);
        // A slot that holds its entry (a hijacked session) keeps its place in the budget.
        let Admission::Open(mut slot) = c.admit(&greedy, None, None) else {
            panic!("room again")
        };
        slot.hold(c.enter().unwrap());
        assert_eq!(c.total(), 3);
        drop(slot);
        assert_eq!(c.total(), 2);
    }

    #[test]
    fn absent_limit_is_the_default_and_zero_lifts_it() {
        let s = LimitSettings::from_raw("limits", &RawLimits::default()).unwrap();
        assert_eq!(s.max_connections, Some(DEFAULT_MAX_CONNECTIONS));
        assert_eq!(s.rate, Some(DEFAULT_RATE));
        let s = LimitSettings::from_raw(
            "limits",
            &RawLimits {
                requests_per_second: Some(0.0),
                ..RawLimits::default()
            },
        )
        .unwrap();
        assert_eq!(s.rate, None);
        let s = LimitSettings::from_raw(
            "limits",
            &RawLimits {
                max_connections: Some(0),
                ..RawLimits::default()
            },
        )
        .unwrap();
        assert_eq!(s.max_connections, None);
    }
}
