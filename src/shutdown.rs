//! Orderly shutdown: stop accepting, let in-flight work finish within a grace period, then
//! close what is left (hijacked sessions, endless streams) and remove the socket files.
//!
//! Every task that serves a client (one per connection, one per hijacked session) is spawned
//! through [`Drain`], so shutdown knows exactly what is still running.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shared shutdown state.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    tracker: TaskTracker,
    /// Cancelled when shutdown begins: listeners stop, connections finish their current request.
    begin: CancellationToken,
    /// Cancelled when the grace period is over: every remaining task ends at once.
    force: CancellationToken,
}

impl Drain {
    /// A fresh drain.
    pub fn new() -> Drain {
        Drain::default()
    }

    /// Spawns a tracked task.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// `task`, tracked: for spawning elsewhere than on the current runtime.
    pub fn track<F>(&self, task: F) -> tokio_util::task::task_tracker::TrackedFuture<F>
    where
        F: Future<Output = ()>,
    {
        self.tracker.track_future(task)
    }

    /// Resolves when shutdown begins.
    pub fn begun(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.begin.cancelled()
    }

    /// Whether shutdown has begun.
    pub fn is_begun(&self) -> bool {
        self.begin.is_cancelled()
    }

    /// Resolves when the grace period is over and remaining tasks must stop.
    pub fn forced(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.force.cancelled()
    }

    /// Starts shutdown: listeners stop accepting, connections finish their current request.
    pub fn begin(&self) {
        self.begin.cancel();
        self.tracker.close();
    }

    /// Waits up to `grace` for every task, then forces the rest to stop. Returns how many tasks
    /// were still running when the grace period ran out.
    pub async fn finish(&self, grace: Duration) -> usize {
        self.begin();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        self.force.cancel();
        // Forced tasks end at their next poll; this cannot take long.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        left
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
