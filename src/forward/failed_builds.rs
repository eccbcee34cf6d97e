//! Ending the BuildKit session of a build that failed before it began.
//!
//! The docker CLI runs a BuildKit build as two requests at once: `POST /build?session=ID`, and
//! `POST /session` announcing that ID, which it closes once the build's answer has ended. In
//! older versions of the CLI's BuildKit library (Debian's CLI 20.10 among them), closing a
//! session that has not dialed yet does nothing, and the session then dials and stays open until the
//! daemon drops it: a build refused at once (by sockwarden, or by the daemon with an error
//! status) can leave the CLI hanging instead of exiting with the refusal.
//!
//! So when a build naming a session is answered with an error status, and no other running
//! build names that session, the session is ended: at once if it is open, or as soon as it
//! opens within [`REMEMBERED`]. The CLI then exits with the build's error. A session is ended
//! only for the client (and tenant) whose build failed, so that no client can end another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Notify;

use crate::context::{Facts, Trail};

/// How long a failed build's session is remembered (the CLI dials its session right after
/// sending the build).
const REMEMBERED: Duration = Duration::from_secs(60);

/// Most failed builds remembered at once; beyond it the oldest are forgotten.
const MOST_REMEMBERED: usize = 1024;

/// A session as one client names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    client: Option<Arc<str>>,
    tenant: Option<Arc<str>>,
    session: String,
}

impl Key {
    fn new(facts: &Facts, session: &str) -> Key {
        Key {
            client: facts.client.clone(),
            tenant: facts.tenant.clone(),
            session: session.to_owned(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    failed: HashMap<Key, Instant>,
    open: HashMap<Key, Vec<(u64, Arc<Notify>)>>,
    next: u64,
}

impl State {
    /// Forgets what is older than [`REMEMBERED`], and the oldest beyond [`MOST_REMEMBERED`].
    fn prune(&mut self, now: Instant) {
        self.failed
            .retain(|_, at| now.saturating_duration_since(*at) < REMEMBERED);
        while self.failed.len() > MOST_REMEMBERED {
            let oldest = self
                .failed
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => self.failed.remove(&key),
                None => break,
            };
        }
    }
}

fn state() -> std::sync::MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The session a BuildKit build names, if this request is one.
fn build_session(facts: &Facts) -> Option<&str> {
    crate::inspect::layer::session::buildkit_session(
        facts.operation.as_ref()?,
        facts.normalized.as_ref()?.query.pairs(),
    )
}

/// Notes a request's answer: a BuildKit build answered with an error status ends its session
/// (see the module documentation). Called once the status is known, for every request.
pub(crate) fn answered(facts: &Facts, status: StatusCode) {
    if !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    let Some(session) = build_session(facts) else {
        return;
    };
    if crate::inspect::layer::session::session_in_use(session) {
        return;
    }
    let key = Key::new(facts, session);
    let now = Instant::now();
    let mut state = state();
    if let Some(open) = state.open.get(&key) {
        for (_, notify) in open {
            notify.notify_one();
        }
    }
    state.failed.insert(key, now);
    state.prune(now);
}

/// A `/session` while it is relayed: [`Ending::ended`] resolves when its build failed.
#[derive(Debug)]
pub struct Ending {
    key: Key,
    id: u64,
    notify: Arc<Notify>,
}

impl Ending {
    /// Registers a `/session` request about to be relayed (`None` without a session id).
    pub fn watch(trail: &Trail, session: &str) -> Option<Ending> {
        if session.is_empty() {
            return None;
        }
        let key = Key::new(&trail.facts(), session);
        Ending::watch_key(key)
    }

    fn watch_key(key: Key) -> Option<Ending> {
        let session = key.session.as_str();
        let notify = Arc::new(Notify::new());
        let now = Instant::now();
        let mut state = state();
        state.prune(now);
        if state.failed.contains_key(&key)
            && !crate::inspect::layer::session::session_in_use(session)
        {
            notify.notify_one();
        }
        state.next += 1;
        let id = state.next;
        state
            .open
            .entry(key.clone())
            .or_default()
            .push((id, notify.clone()));
        Some(Ending { key, id, notify })
    }

    /// Resolves when a build naming this session failed and nothing else uses it.
    pub async fn ended(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        let mut state = state();
        if let Some(list) = state.open.get_mut(&self.key) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                state.open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
