//! Request-rate token buckets: one per client, and under `isolation = "user"` one per unix user
//! of the client as well.
//!
//! Why per user: on a shared host every user of a client such as `developers` is its own
//! tenant, and with one bucket per client one user's burst (a `docker compose up`, a CI job's
//! loop) would have sockwarden refuse the next user's `docker ps` with a 429. Each user of an
//! isolated client gets the client's rate for itself; the client's own bucket serves the peers
//! that have no uid (TCP, TLS: one tenant per client), and the users past [`MAX_USER_BUCKETS`]
//! while all those buckets are in use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one rate-limit refusal of a bucket is recorded in the audit log per this interval;
/// the next recorded one counts those in between (`suppressed`).
pub const REFUSAL_RECORD_INTERVAL: Duration = Duration::from_secs(1);

/// Most users of one client with a bucket of their own at once. A user whose bucket has filled
/// up again (idle for a burst's worth of time) is forgotten when room is needed: starting full
/// is the same for it. Uids come from the kernel (`SO_PEERCRED`), so only real users of the
/// host make buckets; this bounds the memory anyway.
pub const MAX_USER_BUCKETS: usize = 1024;

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// A request over its rate.
#[derive(Debug, Clone, Copy)]
pub struct RateExceeded {
    /// The configured rate.
    pub per_second: f64,
    /// When the next request would be admitted.
    pub retry_after: Duration,
    /// Whether this refusal gets an audit record: `Some(n)` with the number of this bucket's
    /// refusals left unrecorded since its last recorded one, `None` when one was recorded less
    /// than [`REFUSAL_RECORD_INTERVAL`] ago (a flood of refusals writes one record a second,
    /// not one per request; the metrics still count each).
    pub record: Option<u64>,
    /// The unix user whose own bucket is empty (`isolation = "user"`); `None`: the client's.
    pub user: Option<u32>,
}

/// One token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// When a refusal of this bucket was last recorded in the audit log.
    last_recorded: Option<Instant>,
    /// Refusals since then that were not recorded.
    unrecorded: u64,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            last: now,
            last_recorded: None,
            unrecorded: 0,
        }
    }

    /// Takes one token, or says how long until there is one.
    fn take(&mut self, rate: Rate, now: Instant, user: Option<u32>) -> Result<(), RateExceeded> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / rate.per_second;
        let due = self
            .last_recorded
            .is_none_or(|at| now.saturating_duration_since(at) >= REFUSAL_RECORD_INTERVAL);
        let record = if due {
            self.last_recorded = Some(now);
            Some(std::mem::take(&mut self.unrecorded))
        } else {
            self.unrecorded += 1;
            None
        };
        Err(RateExceeded {
            per_second: rate.per_second,
            retry_after: Duration::from_secs_f64(wait.max(0.001)),
            record,
            user,
        })
    }

    /// Whether the bucket would be full by `now`: forgetting it changes nothing.
    fn refilled(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate.per_second >= rate.burst
    }
}

/// A client's buckets.
#[derive(Debug)]
pub struct ClientBuckets {
    rate: Rate,
    client: Mutex<Bucket>,
    /// Under `isolation = "user"`: each unix user's bucket.
    users: Option<Mutex<HashMap<u32, Bucket>>>,
}

impl ClientBuckets {
    /// Full buckets at `rate`; `per_user`: a bucket per unix user besides the client's.
    pub fn new(rate: Rate, per_user: bool) -> ClientBuckets {
        ClientBuckets {
            rate,
            client: Mutex::new(Bucket::full(rate, Instant::now())),
            users: per_user.then(Mutex::default),
        }
    }

    /// Takes one request of a peer with unix user `uid` (`None`: no uid, a TCP or TLS peer).
    pub fn admit(&self, uid: Option<u32>) -> Result<(), RateExceeded> {
        let now = Instant::now();
        if let (Some(users), Some(uid)) = (&self.users, uid) {
            let mut users = users.lock().unwrap_or_else(|p| p.into_inner());
            if !users.contains_key(&uid) && users.len() >= MAX_USER_BUCKETS {
                let rate = self.rate;
                users.retain(|_, bucket| !bucket.refilled(rate, now));
            }
            if users.len() < MAX_USER_BUCKETS || users.contains_key(&uid) {
                return users
                    .entry(uid)
                    .or_insert_with(|| Bucket::full(self.rate, now))
                    .take(self.rate, now, Some(uid));
            }
        }
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(self.rate, now, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_second: 1.0,
        burst: 2.0,
    };

    fn drain(buckets: &ClientBuckets, uid: Option<u32>) -> RateExceeded {
        for _ in 0..2 {
            assert!(buckets.admit(uid).is_ok(), "{uid:?}");
        }
        buckets.admit(uid).unwrap_err()
    }

    #[test]
    fn each_user_of_a_per_user_client_has_its_own_bucket() {
        let buckets = ClientBuckets::new(RATE, true);
        let refused = drain(&buckets, Some(1001));
        assert_eq!(refused.user, Some(1001));
        assert_eq!(refused.record, Some(0));
        // Another user, and a peer without a uid (the client's bucket), are untouched.
        drain(&buckets, Some(1002));
        assert_eq!(drain(&buckets, None).user, None);
        assert!(buckets.admit(Some(1001)).is_err());
    }

    #[test]
    fn without_per_user_every_user_shares_the_clients_bucket() {
        let buckets = ClientBuckets::new(RATE, false);
        assert!(buckets.admit(Some(1001)).is_ok());
        assert!(buckets.admit(Some(1002)).is_ok());
        let refused = buckets.admit(None).unwrap_err();
        assert_eq!(refused.user, None);
        assert!(buckets.admit(Some(1003)).is_err());
    }

    #[test]
    fn users_past_the_bound_share_the_clients_bucket_until_one_refills() {
        let buckets = ClientBuckets::new(RATE, true);
        for uid in 0..MAX_USER_BUCKETS as u32 {
            assert!(buckets.admit(Some(uid)).is_ok());
        }
        // Every bucket is in use (none full again): the next user gets the client's.
        let past = MAX_USER_BUCKETS as u32;
        assert_eq!(drain(&buckets, Some(past)).user, None);
        assert!(buckets.admit(None).is_err());
        // Once the others have refilled they are forgotten and the user gets its own.
        for bucket in buckets.users.as_ref().unwrap().lock().unwrap().values_mut() {
            bucket.last = bucket.last.checked_sub(Duration::from_secs(3)).unwrap();
        }
        assert!(buckets.admit(Some(past)).is_ok());
        assert_eq!(buckets.users.as_ref().unwrap().lock().unwrap().len(), 1);
    }
}
