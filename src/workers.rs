//! Connection workers: one thread per CPU, each running its own single-threaded tokio runtime,
//! and each client connection served on one of them for its whole life.
//!
//! Why not tokio's work-stealing runtime: a request's work (read, judge, forward to the
//! connection's own daemon connections, answer) never benefits from moving between threads,
//! and the multi-threaded scheduler pays for being able to: a worker that finds work wakes a
//! parked peer to help (a futex wake and a context switch), which then finds nothing and parks
//! again, twice per request at low concurrency. Here a connection's task, its daemon
//! connections, its timers and its hijacked sessions are all polled by the thread that
//! accepted them from the listener's thread, which never wakes another.
//!
//! The price: a connection cannot move to an idle thread when its own is busy. Connections
//! are placed on the worker serving the fewest, so many connections spread evenly; one client
//! can use at most one CPU.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The running workers. Dropping it stops them (tasks still on them are dropped).
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    /// Connections it serves now.
    load: Arc<AtomicUsize>,
    /// Dropped with the worker, which ends the thread's `block_on`; its runtime is then shut
    /// down on the thread.
    _stop: oneshot::Sender<()>,
}

impl Workers {
    /// Starts `count` workers (at least one).
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let count = count.max(1);
        let workers = (0..count)
            .map(Worker::start)
            .collect::<std::io::Result<Vec<_>>>()?;
        tracing::debug!(workers = count, "connection workers");
        Ok(Workers { workers })
    }

    /// One worker per CPU this process may use (cgroup quotas included).
    pub fn per_cpu() -> std::io::Result<Workers> {
        Workers::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `task` on the worker serving the fewest tasks placed this way.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
        else {
            return;
        };
        let load = worker.load.clone();
        load.fetch_add(1, Ordering::Relaxed);
        let counted = Counted { load };
        worker.handle.spawn(async move {
            let _counted = counted;
            task.await
        });
    }
}

/// Takes a task off its worker's count when the task ends (or is dropped).
struct Counted {
    load: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.load.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Worker {
    fn start(index: usize) -> std::io::Result<Worker> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("sockwarden-w{index}"))
            .spawn(move || {
                // Only ever ended by the sender's drop.
                let _ = runtime.block_on(stopped);
                runtime.shutdown_background();
            })?;
        Ok(Worker {
            handle,
            load: Arc::new(AtomicUsize::new(0)),
            _stop: stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Tasks run off the caller's thread, each wholly on one worker thread, and are placed
    /// on the least loaded worker.
    #[test]
    fn tasks_spread_over_the_workers_and_stay_on_their_thread() {
        let workers = Workers::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.spawn(async move {
                let before = std::thread::current().id();
                let name = std::thread::current().name().map(str::to_owned);
                tokio::time::sleep(Duration::from_millis(50)).await;
                tokio::task::yield_now().await;
                let _ = tx.send((name, before == std::thread::current().id()));
            });
        }
        drop(tx);
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|(_, same)| *same), "{got:?}");
        let on = |n: &str| got.iter().filter(|(w, _)| w.as_deref() == Some(n)).count();
        assert_eq!(
            (on("sockwarden-w0"), on("sockwarden-w1")),
            (2, 2),
            "{got:?}"
        );
        // Ended tasks leave the count (just after their last value is dropped).
        let idle = || {
            workers
                .workers
                .iter()
                .all(|w| w.load.load(Ordering::Relaxed) == 0)
        };
        for _ in 0..100 {
            if idle() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(idle());
    }

    /// Dropping the workers ends their threads' runtimes; a task still waiting is dropped.
    #[test]
    fn dropping_the_workers_stops_them() {
        let workers = Workers::start(1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        workers.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(workers);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
