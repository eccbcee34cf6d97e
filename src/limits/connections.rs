//! Counting client connections: the process budget, each client's share of it, and each
//! client's (under `isolation = "user"`: each unix user's) `max_connections`.
//!
//! Why per user under isolation: every user of a client such as `developers` is its own tenant
//! on a shared host; with one count per client, one user holding the client's connections
//! (`docker logs -f`, `docker events` of many CI jobs) would keep every other user out. Such a
//! client's users each get `max_connections` for themselves, and all of them together at most
//! the client's share of the budget, so other clients still get in.

use std::sync::{Arc, Mutex};

use crate::fasthash::NameMap;

/// Connections past its limit a client (or user) may have waiting for their 429 at once;
/// beyond these, its new connections are closed unanswered, so that opening connections faster
/// than the head timeout closes them cannot pile up descriptors.
pub const MAX_REFUSING: usize = 8;

/// What a new connection of a client gets.
#[derive(Debug)]
pub enum Admission {
    /// Served; the slot counts it until it (or the hijacked session it becomes) ends.
    Open(ConnectionSlot),
    /// Over a limit: one 429, then closed. The slot counts it among the [`MAX_REFUSING`]
    /// waiting refusals of its client (or user).
    OverLimit(Exceeded, ConnectionSlot),
    /// Closed at once, unanswered: too many refusals already waiting.
    Close,
}

/// The connection limit a new connection ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The limit: connections at once.
    pub max: usize,
    /// The unix user whose own limit it is; `None`: the client's (its own, or the share of the
    /// budget all its users together are held to).
    pub user: Option<u32>,
}

/// Whose limit a connection counts against: its client's (`None`: every connection of a client
/// whose users share its limit, and those without a uid of a per-user client) or one unix
/// user's of a per-user client.
type Key = (Arc<str>, Option<u32>);

/// Open connections and refusals waiting.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    open: usize,
    refusing: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Per limit (see [`Key`]). Hashed with `fasthash`: the keys are configured client names
    /// and the uids the kernel gives the peers, nothing a client picks; each connection looks
    /// them up a few times when it opens and closes.
    held: NameMap<Key, Held>,
    /// Every open connection of a client, whoever's limit it counts against: held to the
    /// client's share of the budget.
    clients: NameMap<Arc<str>, usize>,
}

impl Counts {
    fn client_open(&self, client: &str) -> usize {
        self.clients.get(client).copied().unwrap_or(0)
    }

    /// One more (`opened`) or one fewer open connection of `client`.
    fn client_changed(&mut self, client: &Arc<str>, opened: bool) {
        if opened {
            *self.clients.entry(client.clone()).or_default() += 1;
            return;
        }
        if let Some(open) = self.clients.get_mut(client) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.clients.remove(client);
            }
        }
    }

    fn held(&self, key: &Key) -> Held {
        self.held.get(key).copied().unwrap_or_default()
    }

    /// Changes `key`'s counts with `change`, forgetting it when nothing is left.
    fn update(&mut self, key: &Key, change: impl FnOnce(&mut Held)) {
        let held = self.held.entry(key.clone()).or_default();
        change(held);
        if held.open == 0 && held.refusing == 0 {
            self.held.remove(key);
        }
    }
}

/// Open connections per client and in all, for the whole life of the process (reloads
/// included). The total is bounded by the process's budget (`limits::connection_budget`), and
/// no client may hold more than [`Connections::client_share`] of it, so one client's
/// connections can never take the descriptors another client on another listener needs.
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
    /// under its limit `max` (`None`: only [`Connections::client_share`]). With `user` (a unix
    /// user of a client whose users each have their own limit) `max` is that user's, and the
    /// client's users together are held to the client's share.
    pub fn admit(&self, client: &Arc<str>, user: Option<u32>, max: Option<usize>) -> Admission {
        let share = self.client_share();
        let limit = max.unwrap_or(usize::MAX).min(share);
        let key: Key = (client.clone(), user);
        let mut counts = self.lock();
        let (client_open, held) = (counts.client_open(client), counts.held(&key));
        let slot = |refusing| ConnectionSlot {
            key: key.clone(),
            counts: self.counts.clone(),
            refusing,
            entry: None,
        };
        if held.open < limit && client_open < share {
            counts.client_changed(client, true);
            counts.update(&key, |h| h.open += 1);
            return Admission::Open(slot(false));
        }
        if held.refusing < MAX_REFUSING {
            counts.update(&key, |h| h.refusing += 1);
            // The limit the connection ran into: its own, or its client's share.
            let over = if held.open < limit {
                Exceeded {
                    max: share,
                    user: None,
                }
            } else {
                Exceeded { max: limit, user }
            };
            return Admission::OverLimit(over, slot(true));
        }
        Admission::Close
    }

    /// How many connections count against `client`'s (`user`'s) limit (refusals waiting not
    /// counted).
    #[cfg(test)]
    fn count(&self, client: &str, user: Option<u32>) -> usize {
        self.lock().held(&(Arc::from(client), user)).open
    }

    /// How many connections `client` has open, all its users together.
    #[cfg(test)]
    fn client_count(&self, client: &str) -> usize {
        self.lock().client_open(client)
    }

    /// How many connections hold a place in the budget.
    #[cfg(test)]
    pub(super) fn total(&self) -> usize {
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
    key: Key,
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
        if self.refusing {
            counts.update(&self.key, |h| h.refusing = h.refusing.saturating_sub(1));
            return;
        }
        counts.update(&self.key, |h| h.open = h.open.saturating_sub(1));
        counts.client_changed(&self.key.0, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_count_and_release() {
        let c = Connections::default();
        let ci: Arc<str> = Arc::from("ci");
        let Admission::Open(a) = c.admit(&ci, None, Some(2)) else {
            panic!("first")
        };
        let Admission::Open(_b) = c.admit(&ci, None, Some(2)) else {
            panic!("second")
        };
        // Over the limit: a few wait for their 429, the rest are closed at once.
        let mut refusing = Vec::new();
        for _ in 0..MAX_REFUSING {
            match c.admit(&ci, None, Some(2)) {
                Admission::OverLimit(Exceeded { max: 2, .. }, slot) => refusing.push(slot),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(c.admit(&ci, None, Some(2)), Admission::Close));
        drop(a);
        assert_eq!(c.count("ci", None), 1);
        assert!(matches!(c.admit(&ci, None, Some(2)), Admission::Open(_)));
        refusing.clear();
        assert!(matches!(
            c.admit(&ci, None, Some(1)),
            Admission::OverLimit(Exceeded { max: 1, .. }, _)
        ));
    }

    #[test]
    fn each_user_of_a_per_user_client_has_its_own_limit() {
        let c = Connections::default();
        let dev: Arc<str> = Arc::from("developers");
        let mut held = Vec::new();
        for _ in 0..2 {
            let Admission::Open(slot) = c.admit(&dev, Some(1001), Some(2)) else {
                panic!("within the user's limit")
            };
            held.push(slot);
        }
        assert!(matches!(
            c.admit(&dev, Some(1001), Some(2)),
            Admission::OverLimit(
                Exceeded {
                    max: 2,
                    user: Some(1001)
                },
                _
            )
        ));
        // Another user of the same client is not held back by the first one's connections.
        let Admission::Open(other) = c.admit(&dev, Some(1002), Some(2)) else {
            panic!("another user")
        };
        assert_eq!(c.count("developers", Some(1001)), 2);
        assert_eq!(
            c.client_count("developers"),
            3,
            "the client counts all its users"
        );
        // A peer without a uid (TCP, TLS) counts against the client's own limit, which its
        // users' connections do not use up.
        let mut tcp = Vec::new();
        for _ in 0..2 {
            let Admission::Open(slot) = c.admit(&dev, None, Some(2)) else {
                panic!("a peer without a uid")
            };
            tcp.push(slot);
        }
        assert!(matches!(
            c.admit(&dev, None, Some(2)),
            Admission::OverLimit(Exceeded { max: 2, .. }, _)
        ));
        assert_eq!(c.client_count("developers"), 5);
        drop(other);
        held.clear();
        tcp.clear();
        assert_eq!(c.client_count("developers"), 0);
        let counts = c.lock();
        assert!(
            counts.held.is_empty() && counts.clients.is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn a_per_user_clients_users_together_stay_within_the_clients_share() {
        let c = Connections::new(8);
        assert_eq!(c.client_share(), 6);
        let dev: Arc<str> = Arc::from("developers");
        let mut held = Vec::new();
        for uid in 0..3 {
            for _ in 0..2 {
                match c.admit(&dev, Some(uid), Some(2)) {
                    Admission::Open(slot) => held.push(slot),
                    other => panic!("{uid}: {other:?}"),
                }
            }
        }
        // A new user within its own limit still runs into the client's share.
        assert!(matches!(
            c.admit(&dev, Some(99), Some(2)),
            Admission::OverLimit(Exceeded { max: 6, user: None }, _)
        ));
        // Another client does not.
        assert!(matches!(
            c.admit(&Arc::from("other"), None, None),
            Admission::Open(_)
        ));
        held.pop();
        assert!(matches!(
            c.admit(&dev, Some(99), Some(2)),
            Admission::Open(_)
        ));
    }
}
