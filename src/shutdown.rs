//! Orderly shutdown: stop accepting, let in-flight work finish within a grace period, then
//! close what is left (hijacked sessions, endless streams) and remove the socket files.
//!
//! Every task that serves a client (one per connection, one per hijacked session) is spawned
//! through [`Drain`], so shutdown knows exactly what is still running.
//!
//! Every connection task waits on the two shutdown signals beside its work, so they are polled
//! each time the connection is (several times a request), on every worker thread at once. A
//! `CancellationToken` (or a `Notify`) takes a process-wide lock on each of those polls and on
//! every clone and drop (the service stack, cloned per request, holds the drain): locks whose
//! cache lines travel between CPUs all the time. [`Signal`] is read with one atomic load and
//! locks only to register a waiter (once per waiting task) and to fire.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::fasthash::NameMap;

/// The shared shutdown state; clones share it (one reference count).
#[derive(Clone, Debug, Default)]
pub struct Drain(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    tracker: TaskTracker,
    /// Fired when shutdown begins: listeners stop, connections finish their current request.
    begin: Signal,
    /// Fired when the grace period is over: every remaining task ends at once.
    force: Signal,
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
        self.0.tracker.spawn(task);
    }

    /// `task`, tracked: for spawning elsewhere than on the current runtime.
    pub fn track<F>(&self, task: F) -> tokio_util::task::task_tracker::TrackedFuture<F>
    where
        F: Future<Output = ()>,
    {
        self.0.tracker.track_future(task)
    }

    /// Resolves when shutdown begins.
    pub fn begun(&self) -> Fired<'_> {
        self.0.begin.fired()
    }

    /// Whether shutdown has begun.
    pub fn is_begun(&self) -> bool {
        self.0.begin.is_fired()
    }

    /// Resolves when the grace period is over and remaining tasks must stop.
    pub fn forced(&self) -> Fired<'_> {
        self.0.force.fired()
    }

    /// Starts shutdown: listeners stop accepting, connections finish their current request.
    pub fn begin(&self) {
        self.0.begin.fire();
        self.0.tracker.close();
    }

    /// Waits up to `grace` for every task, then forces the rest to stop. Returns how many tasks
    /// were still running when the grace period ran out.
    pub async fn finish(&self, grace: Duration) -> usize {
        self.begin();
        let tracker = &self.0.tracker;
        if tokio::time::timeout(grace, tracker.wait()).await.is_ok() {
            return 0;
        }
        let left = tracker.len();
        self.0.force.fire();
        // Forced tasks end at their next poll; this cannot take long.
        let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        left
    }
}

/// A one-way signal many tasks wait on: fired once, never reset.
#[derive(Debug, Default)]
struct Signal {
    fired: AtomicBool,
    waiters: Mutex<Waiters>,
}

#[derive(Debug, Default)]
struct Waiters {
    next: u64,
    /// Keyed by our own counter: hashed with `fasthash`, not SipHash (each connection
    /// registers and removes three or four waiters).
    wakers: NameMap<u64, Waker>,
}

impl Signal {
    fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    fn fired(&self) -> Fired<'_> {
        Fired {
            signal: self,
            waiting: None,
        }
    }

    /// Fires the signal and wakes every waiter.
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        // Taken under the lock: a waiter registering now either sees `fired` under it or is
        // in the map taken here.
        let wakers = std::mem::take(&mut self.lock().wakers);
        for waker in wakers.into_values() {
            waker.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Resolves when its [`Signal`] fires. Registers its task's waker on the first poll (and again
/// only if the task's waker changes); later polls read one atomic.
#[derive(Debug)]
pub struct Fired<'a> {
    signal: &'a Signal,
    /// The key and waker this future registered.
    waiting: Option<(u64, Waker)>,
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let signal = self.signal;
        if signal.is_fired() {
            return Poll::Ready(());
        }
        if let Some((_, waker)) = &self.waiting {
            if waker.will_wake(cx.waker()) {
                return Poll::Pending;
            }
        }
        let mut waiters = signal.lock();
        if signal.is_fired() {
            return Poll::Ready(());
        }
        let key = match &self.waiting {
            Some((key, _)) => *key,
            None => {
                waiters.next += 1;
                waiters.next
            }
        };
        waiters.wakers.insert(key, cx.waker().clone());
        drop(waiters);
        self.waiting = Some((key, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Fired<'_> {
    fn drop(&mut self) {
        if let Some((key, _)) = &self.waiting {
            self.signal.lock().wakers.remove(key);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn poll(fired: &mut Fired<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(fired).poll(&mut Context::from_waker(waker))
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(Ordering::SeqCst)
    }

    #[test]
    fn firing_wakes_every_waiter_once_and_later_waiters_see_it_at_once() {
        let signal = Signal::default();
        let (a, wa) = waker();
        let (b, wb) = waker();
        let mut fa = signal.fired();
        let mut fb = signal.fired();
        assert!(poll(&mut fa, &wa).is_pending());
        assert!(poll(&mut fb, &wb).is_pending());
        // Polled again with the same waker: still one registration each.
        assert!(poll(&mut fa, &wa).is_pending());
        assert_eq!(signal.lock().wakers.len(), 2);
        signal.fire();
        assert_eq!((wakes(&a), wakes(&b)), (1, 1));
        assert!(poll(&mut fa, &wa).is_ready());
        assert!(poll(&mut fb, &wb).is_ready());
        let (c, wc) = waker();
        assert!(poll(&mut signal.fired(), &wc).is_ready());
        assert_eq!(wakes(&c), 0);
        assert!(signal.is_fired());
    }

    #[test]
    fn a_task_whose_waker_changed_is_woken_through_the_new_one() {
        let signal = Signal::default();
        let (old, w_old) = waker();
        let (new, w_new) = waker();
        let mut fired = signal.fired();
        assert!(poll(&mut fired, &w_old).is_pending());
        assert!(poll(&mut fired, &w_new).is_pending());
        assert_eq!(signal.lock().wakers.len(), 1);
        signal.fire();
        assert_eq!((wakes(&old), wakes(&new)), (0, 1));
    }

    #[test]
    fn a_waiter_that_goes_away_leaves_nothing_behind() {
        let signal = Signal::default();
        let (count, w) = waker();
        {
            let mut fired = signal.fired();
            assert!(poll(&mut fired, &w).is_pending());
            // Never polled: never registered.
            let _unpolled = signal.fired();
        }
        assert!(signal.lock().wakers.is_empty());
        signal.fire();
        assert_eq!(wakes(&count), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_on_other_threads_end_when_the_drain_finishes() {
        let drain = Drain::new();
        for _ in 0..50 {
            let d = drain.clone();
            drain.spawn(async move {
                d.begun().await;
                d.forced().await;
            });
        }
        // Every task waits for `forced`, which comes after the grace period.
        let left = drain.finish(Duration::from_millis(50)).await;
        assert_eq!(left, 50);
        assert!(drain.is_begun());
        assert_eq!(drain.0.tracker.len(), 0);
    }
}
