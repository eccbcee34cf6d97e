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
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::ConfigError;

pub mod layer;

/// Default largest request head (request line and headers) a client may send: registry
/// credentials (`X-Registry-Config`) can run to several KiB, so this leaves ample room while
/// keeping a single connection's memory small.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 256 * 1024;

/// The smallest head limit accepted (hyper's own floor for its read buffer).
const MIN_HEADER_BYTES: usize = 8192;

/// `[limits]` or `[client.limits]` as written; every key optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Concurrent connections (hijacked sessions included); 0 or absent: unlimited.
    pub max_connections: Option<usize>,
    /// Sustained requests per second; 0 or absent: unlimited.
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

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// The limits of one client, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Concurrent connections, if limited.
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
            None => None,
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
            max_connections: raw.max_connections.filter(|&n| n > 0),
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
    clients: HashMap<Arc<str>, ClientLimiter>,
}

#[derive(Debug)]
struct ClientLimiter {
    settings: LimitSettings,
    bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Limits {
    /// Compiles `[limits]` and each client's overrides (`(name, key, overrides)`).
    pub fn compile<'a>(
        defaults: &RawLimits,
        clients: impl IntoIterator<Item = (Arc<str>, String, Option<&'a RawLimits>)>,
    ) -> Result<Limits, ConfigError> {
        let base = LimitSettings::from_raw("limits", defaults)?;
        let mut map = HashMap::new();
        for (name, key, over) in clients {
            let settings = match over {
                Some(over) => {
                    LimitSettings::from_raw(&format!("{key}.limits"), &defaults.overlaid(over))?
                }
                None => base.clone(),
            };
            let bucket = settings.rate.map(|rate| {
                Mutex::new(Bucket {
                    tokens: rate.burst,
                    last: Instant::now(),
                })
            });
            map.insert(name, ClientLimiter { settings, bucket });
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

    /// Takes one request from `client`'s bucket, or says how long to wait.
    pub fn admit(&self, client: &str) -> Result<(), RateExceeded> {
        let Some(limiter) = self.clients.get(client) else {
            return Ok(());
        };
        let (Some(rate), Some(bucket)) = (limiter.settings.rate, &limiter.bucket) else {
            return Ok(());
        };
        let mut bucket = bucket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.last = now;
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / rate.per_second;
        Err(RateExceeded {
            per_second: rate.per_second,
            retry_after: Duration::from_secs_f64(wait.max(0.001)),
        })
    }
}

/// A request over its client's rate.
#[derive(Debug, Clone, Copy)]
pub struct RateExceeded {
    /// The configured rate.
    pub per_second: f64,
    /// When the next request would be admitted.
    pub retry_after: Duration,
}

/// Open connections per client, for the whole life of the process (reloads included).
#[derive(Debug, Clone, Default)]
pub struct Connections {
    open: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Connections {
    /// Counts a new connection of `client` unless it already has `max` open.
    pub fn try_open(&self, client: &Arc<str>, max: Option<usize>) -> Option<ConnectionSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(client.clone()).or_insert(0);
        if max.is_some_and(|max| *count >= max) {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            client: client.clone(),
            open: self.open.clone(),
        })
    }

    /// How many connections `client` has open.
    #[cfg(test)]
    fn count(&self, client: &str) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(client)
            .copied()
            .unwrap_or(0)
    }
}

/// One counted connection; the count drops with it (when the connection, or the hijacked
/// session it became, ends).
#[derive(Debug)]
pub struct ConnectionSlot {
    client: Arc<str>,
    open: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
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
            assert!(l.admit("ci").is_ok());
        }
        let refused = l.admit("ci").unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_millis(500));
        // Unknown clients and unlimited ones are never refused.
        assert!(l.admit("other").is_ok());
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
        let a = c.try_open(&ci, Some(2)).unwrap();
        let _b = c.try_open(&ci, Some(2)).unwrap();
        assert!(c.try_open(&ci, Some(2)).is_none());
        drop(a);
        assert_eq!(c.count("ci"), 1);
        assert!(c.try_open(&ci, Some(2)).is_some());
    }
}
