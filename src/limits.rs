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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::fasthash::NameMap;

pub mod layer;
pub mod rate;

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
            map.insert(name, ClientLimiter { settings, buckets });
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
    /// `isolation = "user"`: each user is a tenant) a request-rate bucket of its own.
    pub fn with_user_buckets(mut self, per_user: impl Fn(&str) -> bool) -> Limits {
        for (name, limiter) in self.clients.iter_mut() {
            if let (Some(rate), true) = (limiter.settings.rate, per_user(name)) {
                limiter.buckets = Some(ClientBuckets::new(rate, true));
            }
        }
        self
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

/// Connections past its limit a client may have waiting for their 429 at once; beyond these,
/// its new connections are closed unanswered, so that opening connections faster than the
/// head timeout closes them cannot pile up descriptors.
pub const MAX_REFUSING: usize = 8;

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

/// What a new connection of a client gets.
#[derive(Debug)]
pub enum Admission {
    /// Served; the slot counts it until it (or the hijacked session it becomes) ends.
    Open(ConnectionSlot),
    /// Over the client's limit of this many: one 429, then closed. The slot counts it among
    /// the client's [`MAX_REFUSING`] waiting refusals.
    OverLimit(usize, ConnectionSlot),
    /// Closed at once, unanswered: too many refusals already waiting.
    Close,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    clients: HashMap<Arc<str>, (usize, usize)>,
}

/// Open connections per client and in all, for the whole life of the process (reloads
/// included). The total is bounded by the process's budget ([`connection_budget`]), and no
/// client may hold more than [`Connections::client_share`] of it, so one client's connections
/// can never take the descriptors another client on another listener needs.
#[derive(Debug, Clone)]
pub struct Connections {
    counts: Arc<Mutex<Counts>>,
    budget: usize,
}

impl Default for Connections {
    fn default() -> Self {
        Connections::new(usize::MAX)
    }
}

impl Connections {
    /// Counts with room for `budget` connections at once.
    pub fn new(budget: usize) -> Connections {
        Connections {
            counts: Arc::default(),
            budget: budget.max(1),
        }
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The most one client may hold: three quarters of the budget, so that a quarter always
    /// remains for the others whatever one client's limit says.
    pub fn client_share(&self) -> usize {
        (self.budget - self.budget / 4).max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place in the budget for a connection just accepted, before anything is read
    /// from it; `None` when the budget is spent (the caller closes the connection at once).
    pub fn enter(&self) -> Option<Entry> {
        let mut counts = self.lock();
        if counts.total >= self.budget {
            return None;
        }
        counts.total += 1;
        Some(Entry {
            counts: self.counts.clone(),
        })
    }

    /// Admits a new connection of `client` (the empty name for a peer that matched no client)
    /// under its limit `max` (`None`: only [`Connections::client_share`]).
    pub fn admit(&self, client: &Arc<str>, max: Option<usize>) -> Admission {
        let limit = max.unwrap_or(usize::MAX).min(self.client_share());
        let mut counts = self.lock();
        let (open, refusing) = counts.clients.entry(client.clone()).or_insert((0, 0));
        let refusing_slot = |refusing| ConnectionSlot {
            client: client.clone(),
            counts: self.counts.clone(),
            refusing,
            entry: None,
        };
        if *open < limit {
            *open += 1;
            return Admission::Open(refusing_slot(false));
        }
        if *refusing < MAX_REFUSING {
            *refusing += 1;
            return Admission::OverLimit(limit, refusing_slot(true));
        }
        Admission::Close
    }

    /// How many connections `client` has open (refusals waiting not counted).
    #[cfg(test)]
    fn count(&self, client: &str) -> usize {
        self.lock().clients.get(client).map_or(0, |c| c.0)
    }

    /// How many connections hold a place in the budget.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.lock().total
    }
}

/// A connection's place in the process budget, released when the connection ends.
#[derive(Debug)]
pub struct Entry {
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.total = counts.total.saturating_sub(1);
    }
}

/// One counted connection; the count drops with it (when the connection, or the hijacked
/// session it became, ends).
#[derive(Debug)]
pub struct ConnectionSlot {
    client: Arc<str>,
    counts: Arc<Mutex<Counts>>,
    refusing: bool,
    /// The connection's place in the process budget, which travels with the slot into the
    /// hijacked session a connection may become (its two descriptors stay open).
    entry: Option<Entry>,
}

impl ConnectionSlot {
    /// Keeps the connection's place in the budget for as long as this slot lives.
    pub fn hold(&mut self, entry: Entry) {
        self.entry = Some(entry);
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((open, refusing)) = counts.clients.get_mut(&self.client) {
            if self.refusing {
                *refusing = refusing.saturating_sub(1);
            } else {
                *open = open.saturating_sub(1);
            }
            if *open == 0 && *refusing == 0 {
                counts.clients.remove(&self.client);
            }
        }
    }
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
    fn connection_slots_count_and_release() {
        let c = Connections::default();
        let ci: Arc<str> = Arc::from("ci");
        let Admission::Open(a) = c.admit(&ci, Some(2)) else {
            panic!("first")
        };
        let Admission::Open(_b) = c.admit(&ci, Some(2)) else {
            panic!("second")
        };
        // Over the limit: a few wait for their 429, the rest are closed at once.
        let mut refusing = Vec::new();
        for _ in 0..MAX_REFUSING {
            match c.admit(&ci, Some(2)) {
                Admission::OverLimit(2, slot) => refusing.push(slot),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(c.admit(&ci, Some(2)), Admission::Close));
        drop(a);
        assert_eq!(c.count("ci"), 1);
        assert!(matches!(c.admit(&ci, Some(2)), Admission::Open(_)));
        refusing.clear();
        assert!(matches!(c.admit(&ci, Some(1)), Admission::OverLimit(1, _)));
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
            let Admission::Open(slot) = c.admit(&greedy, None) else {
                panic!("within the share")
            };
            held.push((entry, slot));
        }
        assert!(matches!(c.admit(&greedy, None), Admission::OverLimit(6, _)));
        // Another client still gets in.
        let _e = c.enter().unwrap();
        assert!(matches!(
            c.admit(&Arc::from("other"), None),
            Admission::Open(_)
        ));
        let _f = c.enter().unwrap();
        assert!(c.enter().is_none(), "the budget is spent");
        assert_eq!(c.total(), 8);
        held.clear();
        assert_eq!(c.total(), 2);
        // A slot that holds its entry (a hijacked session) keeps its place in the budget.
        let Admission::Open(mut slot) = c.admit(&greedy, None) else {
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
