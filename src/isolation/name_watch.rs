//! Keeps the container names isolation remembers (`owners::NameCache`) true to the daemon: a task
//! follows the daemon's event stream for container creates, renames and removals, and forgets
//! every remembered name at each one, whoever made the change (a client of sockwarden, or an
//! admin on the daemon's own socket). Names are remembered only while the stream is open: when
//! it breaks, everything is forgotten and nothing is remembered until it is open again.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;

use crate::lookup::Lookup;

/// What the watch tells the names' keeper (`owners::NameCache`, which starts the watch).
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// A container was created, renamed or removed: forget every name.
    pub changed: fn(),
    /// Whether the event stream is followed (names may be remembered only then).
    pub watched: fn(bool),
}

/// The events that change what a container name resolves to.
const EVENTS: &str = "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22create%22%2C%22rename%22%2C%22destroy%22%5D%7D";

/// The pause before the stream is opened again after it broke.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the watch, once per process, on the daemon `lookup` asks (a no-op outside a tokio
/// runtime: then names are never remembered).
pub fn ensure(lookup: &Lookup, hooks: Hooks) {
    static STARTED: OnceLock<()> = OnceLock::new();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    STARTED.get_or_init(|| {
        let lookup = lookup.clone();
        runtime.spawn(watch(lookup, hooks));
    });
}

async fn watch(lookup: Lookup, hooks: Hooks) {
    loop {
        match follow(&lookup, hooks).await {
            Ok(()) => tracing::debug!("the daemon's event stream ended; names forgotten"),
            Err(e) => {
                tracing::debug!(error = %e, "the daemon's event stream broke; names forgotten")
            }
        }
        (hooks.watched)(false);
        tokio::time::sleep(RETRY).await;
    }
}

/// Follows the event stream until it ends: every event forgets every name.
async fn follow(lookup: &Lookup, hooks: Hooks) -> Result<(), String> {
    let response = lookup.open(EVENTS).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("the daemon answered {}", response.status()));
    }
    let mut body = response.into_body();
    // Names resolved before the stream was open may have changed unseen.
    (hooks.changed)();
    (hooks.watched)(true);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if frame.data_ref().is_some_and(|d| !d.is_empty()) {
            (hooks.changed)();
        }
    }
    Ok(())
}
