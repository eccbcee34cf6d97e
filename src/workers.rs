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
//!
//! With one worker per CPU the process may run on (the default), each worker is pinned to its
//! own CPU (`server.pin_workers`). Under load a worker never blocks (there is always another
//! connection ready), so two workers the kernel placed on one CPU take turns a scheduler tick
//! at a time (4 ms at HZ=250) while every connection of the waiting one stalls; at low
//! concurrency a worker the kernel moved away from its client's and the daemon's CPU pays a
//! cross-CPU wake-up per hop. Measured (`loadgen paired`, stub, 2 CPUs, pinned against not):
//! p99 at c=64 1.4-2.2 ms in every run against 1.5-4.9 ms, at c=32 lower in 10 runs of 10;
//! req/s level at c=32/64 (0.94-1.04x); at c=1 1.07-1.42x in runs where the unpinned workers
//! sat badly, level otherwise; level on the real daemon. Workers fewer or more than the CPUs
//! (a cgroup CPU quota, `server.workers`) are not pinned: the kernel places them best then.
//! The runtimes' blocking threads (file system checks, the image ledger) are not pinned.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
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
    /// Starts `count` workers (at least one); with `pin`, each on a CPU of its own when there
    /// are exactly as many as CPUs this process may run on (see [`cpu_plan`]).
    pub fn start(count: usize, pin: bool) -> std::io::Result<Workers> {
        let count = count.max(1);
        let allowed = sched_getaffinity(Pid::from_raw(0)).ok();
        let plan = if pin {
            cpu_plan(count, allowed.as_ref().map(cpus_of).as_deref())
        } else {
            None
        };
        let workers = (0..count)
            .map(|i| {
                let cpu = plan.as_ref().and_then(|p| p.get(i).copied());
                Worker::start(i, cpu.zip(allowed))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        tracing::debug!(workers = count, pinned = ?plan, "connection workers");
        Ok(Workers { workers })
    }

    /// One worker per CPU this process may use (cgroup quotas included).
    pub fn per_cpu(pin: bool) -> std::io::Result<Workers> {
        Workers::start(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin,
        )
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

/// The CPUs in `set`, in order.
fn cpus_of(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

/// Each worker's CPU: worker i on the i-th CPU the process may run on, when there are
/// exactly as many workers as those CPUs, and more than one. Otherwise none: fewer workers
/// (a CPU quota, `server.workers`) would be held off CPUs the kernel could move them to, and
/// more would share CPUs anyway.
fn cpu_plan(count: usize, allowed: Option<&[usize]>) -> Option<Vec<usize>> {
    let allowed = allowed?;
    (count > 1 && allowed.len() == count).then(|| allowed.to_vec())
}

/// Runs the calling thread on `cpus` only.
fn run_on(cpus: &CpuSet) -> nix::Result<()> {
    sched_setaffinity(Pid::from_raw(0), cpus)
}

impl Worker {
    /// Starts worker `index`; with `pin` = (its CPU, every CPU the process may run on), the
    /// thread runs on its CPU alone and the runtime's blocking threads (which would inherit
    /// that) on all of them.
    fn start(index: usize, pin: Option<(usize, CpuSet)>) -> std::io::Result<Worker> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_all();
        if let Some((_, allowed)) = pin {
            builder.on_thread_start(move || {
                if let Err(e) = run_on(&allowed) {
                    tracing::debug!(error = %e, "blocking thread: cannot widen its CPU affinity");
                }
            });
        }
        let runtime = builder.build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("sockwarden-w{index}"))
            .spawn(move || {
                if let Some((cpu, _)) = pin {
                    let mut only = CpuSet::new();
                    if let Err(e) = only.set(cpu).and_then(|()| run_on(&only)) {
                        tracing::warn!(worker = index, cpu, error = %e, "connection worker: cannot pin it to its CPU; it runs wherever the kernel places it");
                    }
                }
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
        let workers = Workers::start(2, false).unwrap();
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

    #[test]
    fn workers_are_pinned_only_when_one_per_allowed_cpu() {
        assert_eq!(cpu_plan(2, Some(&[0, 1])), Some(vec![0, 1]));
        assert_eq!(cpu_plan(2, Some(&[2, 5])), Some(vec![2, 5]));
        assert_eq!(cpu_plan(4, Some(&[0, 1, 2, 3])), Some(vec![0, 1, 2, 3]));
        // One CPU: nothing to choose. Fewer or more workers than CPUs: the kernel places them.
        assert_eq!(cpu_plan(1, Some(&[3])), None);
        assert_eq!(cpu_plan(2, Some(&[0, 1, 2])), None);
        assert_eq!(cpu_plan(3, Some(&[0, 1])), None);
        assert_eq!(cpu_plan(2, None), None);
    }

    /// Each worker's CPUs and those of a blocking task it spawns, by worker index.
    fn affinities(workers: &Workers, count: usize) -> Vec<(usize, Vec<usize>, Vec<usize>)> {
        let here = || cpus_of(&sched_getaffinity(Pid::from_raw(0)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..count {
            let tx = tx.clone();
            workers.spawn(async move {
                let own = here();
                let blocking = tokio::task::spawn_blocking(here).await.unwrap();
                let name = std::thread::current().name().unwrap_or("").to_owned();
                let index = name.trim_start_matches("sockwarden-w").parse().unwrap();
                let _ = tx.send((index, own, blocking));
            });
        }
        drop(tx);
        let mut got: Vec<_> = rx.iter().collect();
        got.sort();
        got
    }

    /// One worker per CPU the process may run on, pinned: each runs on its CPU alone, and a
    /// blocking task spawned from one runs anywhere the process may. Unpinned (or a single
    /// CPU): anywhere.
    #[test]
    fn pinned_workers_run_on_their_cpu_and_blocking_threads_anywhere() {
        let allowed = cpus_of(&sched_getaffinity(Pid::from_raw(0)).unwrap());
        let n = allowed.len();
        let got = affinities(&Workers::start(n, true).unwrap(), n);
        assert_eq!(got.len(), n, "{got:?}");
        for (i, (index, own, blocking)) in got.iter().enumerate() {
            assert_eq!(*index, i, "one task per worker: {got:?}");
            let want = if n > 1 {
                vec![allowed[i]]
            } else {
                allowed.clone()
            };
            assert_eq!(own, &want, "worker {i}");
            assert_eq!(blocking, &allowed, "a blocking thread of worker {i}");
        }
        let got = affinities(&Workers::start(n, false).unwrap(), n);
        assert!(got.iter().all(|(_, own, _)| *own == allowed), "{got:?}");
    }

    /// Dropping the workers ends their threads' runtimes; a task still waiting is dropped.
    #[test]
    fn dropping_the_workers_stops_them() {
        let workers = Workers::start(1, false).unwrap();
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
