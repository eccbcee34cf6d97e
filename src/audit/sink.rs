//! Where audit records go: standard output, an append-only file (reopened on SIGUSR1, for
//! logrotate), syslog/journald over a local datagram socket (`/dev/log`), or a remote syslog
//! collector (through an on-disk spool, see [`super::remote`]). Each configured sink has its
//! own writer thread and pending batch.
//!
//! One dedicated thread writes, so a slow disk or a stalled reader never blocks a request:
//! a request writes its record as a JSON line into a thread-local buffer (on its own CPU, where
//! the request's data still is), then appends it to the shared pending batch (a short critical
//! section, no allocation, no hand-over of objects between threads) unless the batch already
//! holds `queue` records. The thread wakes when a batch starts, lets it gather for up to
//! [`BATCH_WINDOW`] (less once it holds half the queue, or [`EARLY_BYTES`] unless it seals),
//! swaps it out and writes it in one go, so the sink is current 20 ms after the last request.
//! (Handing the request's trail to the writer to format there was measured slower: the writer then reads and frees memory that
//! another CPU wrote.) A failing write marks the sink unhealthy (which a fail-closed audit
//! turns into refused requests), counts the records lost, logs it, and is retried on the next
//! batch (a file is reopened first).

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::remote::RemoteConfig;
use super::schema::Record;
use crate::metrics::{Metrics, SinkMetrics};

/// Mode of a new audit file: the log holds who did what, readable by its owner only.
const FILE_MODE: u32 = 0o600;

/// syslog priority: facility authpriv (10), severity info (6), as sudo and sshd log access.
const SYSLOG_PRIORITY: u8 = 10 * 8 + 6;

/// Where records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// Standard output, one JSON object per line.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
    /// A syslog datagram socket (`/dev/log`, which journald also serves).
    Syslog(PathBuf),
    /// A remote syslog collector over TCP or TLS, through a spool.
    Remote(Box<RemoteConfig>),
}

impl std::fmt::Display for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkConfig::Stdout => f.write_str("stdout"),
            SinkConfig::File(path) => write!(f, "file {}", path.display()),
            SinkConfig::Syslog(path) => write!(f, "syslog {}", path.display()),
            SinkConfig::Remote(remote) => remote.fmt(f),
        }
    }
}

/// Shared between the writer thread and the request path.
#[derive(Debug)]
pub(super) struct SinkState {
    /// Whether the last write succeeded.
    pub healthy: AtomicBool,
    /// Why the last write failed, for `/readyz`.
    pub failure: Mutex<Option<String>>,
    /// Records waiting to be written.
    pub pending: AtomicUsize,
    /// Most records that may wait.
    limit: usize,
    /// A batch of this many bytes is written without waiting for the window.
    early_bytes: usize,
    batch: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    batch: Batch,
    reopen: bool,
    stop: bool,
}

thread_local! {
    /// Each thread's scratch line, reused: writing a record allocates nothing.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

impl SinkState {
    fn new(limit: usize, early_bytes: usize) -> SinkState {
        SinkState {
            early_bytes,
            healthy: AtomicBool::new(true),
            failure: Mutex::new(None),
            pending: AtomicUsize::new(0),
            limit,
            batch: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a batch of `records` lines and `bytes` bytes is written without waiting for
    /// the window to pass: half the queue, or (unsealed) [`EARLY_BYTES`].
    fn ready(&self, records: usize, bytes: usize) -> bool {
        records >= (self.limit / 2).max(1) || bytes >= self.early_bytes
    }

    /// Whether the pending batch has room for another record.
    pub fn has_room(&self) -> bool {
        self.pending.load(Ordering::Relaxed) < self.limit
    }

    /// Queues the line `write` produces; `false` (nothing queued) when the batch is full.
    pub fn push(&self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        SCRATCH.with(|scratch| {
            let mut line = scratch.borrow_mut();
            line.clear();
            write(&mut line);
            self.push_line(&line)
        })
    }

    /// Queues a line already written; `false` (nothing queued) when the batch is full.
    fn push_line(&self, line: &[u8]) -> bool {
        let mut pending = self.lock();
        if pending.batch.len() >= self.limit {
            return false;
        }
        let starts = pending.batch.is_empty();
        let before = pending.batch.bytes.len();
        pending.batch.bytes.extend_from_slice(line);
        let end = pending.batch.bytes.len();
        pending.batch.ends.push(end);
        let pending_len = pending.batch.len();
        self.pending.store(pending_len, Ordering::Relaxed);
        drop(pending);
        // The writer waits for a batch to start, then for the window to pass or the batch
        // to become ready: woken once for each.
        if starts || (!self.ready(pending_len - 1, before) && self.ready(pending_len, end)) {
            self.wake.notify_one();
        }
        true
    }

    /// Asks the writer to reopen its file before its next write.
    pub fn reopen(&self) {
        self.lock().reopen = true;
        self.wake.notify_one();
    }

    /// Asks the writer to write what is pending and stop.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }
}

/// Writes the line `write` produces once and queues it on each of `sinks`; `full` is called
/// with the index of each sink whose batch had no room.
pub(super) fn push_each(
    sinks: &[Arc<SinkState>],
    write: impl FnOnce(&mut Vec<u8>),
    mut full: impl FnMut(usize),
) {
    SCRATCH.with(|scratch| {
        let mut line = scratch.borrow_mut();
        line.clear();
        write(&mut line);
        for (i, sink) in sinks.iter().enumerate() {
            if !sink.push_line(&line) {
                full(i);
            }
        }
    })
}

/// An open sink.
enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: Option<File>,
        cache: DropBehind,
    },
    Syslog {
        path: PathBuf,
        socket: Option<UnixDatagram>,
    },
    Remote(Box<super::remote::Shipper>),
}

impl Sink {
    /// Opens `config`; an error here stops sockwarden from starting.
    fn open(config: &SinkConfig, name: &str, metrics: &SinkMetrics) -> io::Result<Sink> {
        Ok(match config {
            SinkConfig::Stdout => Sink::Stdout,
            SinkConfig::File(path) => Sink::File {
                file: Some(open_file(path)?),
                path: path.clone(),
                cache: DropBehind::default(),
            },
            SinkConfig::Syslog(path) => Sink::Syslog {
                socket: Some(connect_syslog(path)?),
                path: path.clone(),
            },
            SinkConfig::Remote(remote) => Sink::Remote(Box::new(super::remote::Shipper::start(
                name,
                remote,
                metrics.clone(),
            )?)),
        })
    }

    /// Writes one batch of records: JSON lines one after the other in `batch.bytes`.
    fn write(&mut self, records: &Batch) -> io::Result<()> {
        let batch = &records.bytes;
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(batch)?;
                out.flush()
            }
            Sink::File { path, file, cache } => {
                if file.is_none() {
                    *file = Some(open_file(path)?);
                    *cache = DropBehind::default();
                }
                let result = match file.as_mut() {
                    Some(f) => f.write_all(batch).map(|()| cache.written(f)),
                    None => Ok(()),
                };
                if result.is_err() {
                    // Reopened on the next batch: the file may have been removed or the disk
                    // may come back.
                    *file = None;
                }
                result
            }
            Sink::Syslog { path, socket } => {
                if socket.is_none() {
                    *socket = Some(connect_syslog(path)?);
                }
                let Some(sock) = socket.as_ref() else {
                    return Ok(());
                };
                let pid = std::process::id();
                for line in records.lines() {
                    let body = line.strip_suffix(b"\n").unwrap_or(line);
                    let mut datagram =
                        format!("<{SYSLOG_PRIORITY}>sockwarden[{pid}]: ").into_bytes();
                    datagram.extend_from_slice(body);
                    if let Err(e) = sock.send(&datagram) {
                        *socket = None;
                        return Err(e);
                    }
                }
                Ok(())
            }
            Sink::Remote(shipper) => shipper.spool(&records.bytes, records.len() as u64),
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => Ok(()),
            Sink::File { path, file, cache } => {
                *file = None;
                *cache = DropBehind::default();
                *file = Some(open_file(path)?);
                Ok(())
            }
            Sink::Syslog { path, socket } => {
                *socket = None;
                *socket = Some(connect_syslog(path)?);
                Ok(())
            }
            Sink::Remote(_) => Ok(()),
        }
    }
}

/// Keeps what the file sink wrote out of the page cache ("drop-behind"): each time the file has
/// grown by [`DropBehind::STEP`] (1 MiB) the kernel is told the file's written pages will not be
/// read again (`POSIX_FADV_DONTNEED`), which
/// starts their writeback and frees those already written back, so an audit log that grows by
/// gigabytes a day does not push other files out of memory, and the writer keeps reusing the same
/// few free pages instead of taking fresh ones (fresh pages cost the writer a fault each on a
/// lazily-backed VM: measured 1.0 µs per record there vs 0.2-0.35 with pages reused).
/// Best effort: a page still being written back is left cached, and is asked for again with the
/// next batches while it is within [`DropBehind::RETRY`] of the end.
#[derive(Debug, Default)]
struct DropBehind {
    /// Pages before this offset were already asked for.
    from: u64,
    /// The end of the file when they were last asked for.
    asked: u64,
}

impl DropBehind {
    /// How far back from the end pages are asked for again (writeback takes a moment).
    const RETRY: u64 = 4 << 20;
    const PAGE: u64 = 4096;
    /// How much the file grows between two requests. Each request starts the writeback of
    /// what it covers in this thread, a disk request (on a VM, a notify of its block device)
    /// per run of pages: asked after every batch (128 KiB under load) that was ~240 disk
    /// writes a second instead of ~30.
    const STEP: u64 = 1 << 20;

    /// After a write to `file`: drop what is written, up to the last whole page.
    fn written(&mut self, file: &mut File) {
        use std::io::Seek;
        use std::os::fd::AsRawFd;
        let Ok(end) = file.stream_position() else {
            return;
        };
        // The last, partly filled page is left alone: the next batch writes into it.
        let end = end - end % Self::PAGE;
        if end < self.asked {
            // Truncated by someone else (copytruncate): start again from there.
            self.from = self.from.min(end);
            self.asked = end;
            return;
        }
        if end <= self.from || end < self.asked.saturating_add(Self::STEP) {
            return;
        }
        let (Ok(offset), Ok(len)) = (i64::try_from(self.from), i64::try_from(end - self.from))
        else {
            return;
        };
        // A hint: an error (a file system that ignores it) changes nothing.
        let _ = nix::fcntl::posix_fadvise(
            file.as_raw_fd(),
            offset,
            len,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        self.from = self.from.max(end.saturating_sub(Self::RETRY));
        self.asked = end;
    }
}

fn open_file(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// What [`Sink::open`] would fail with, found without creating or writing anything: the
/// file's directory must exist and be writable (or the file itself writable); a syslog socket
/// must accept a connection (connecting sends nothing).
pub(super) fn preflight(config: &SinkConfig) -> io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    match config {
        SinkConfig::Stdout => Ok(()),
        SinkConfig::Syslog(path) => connect_syslog(path).map(drop),
        SinkConfig::Remote(remote) => super::remote::preflight(remote),
        SinkConfig::File(path) => match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(errno(nix::errno::Errno::EISDIR)),
            Ok(_) => access(path.as_path(), AccessFlags::W_OK).map_err(errno),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => std::path::Path::new("."),
                };
                let meta = std::fs::metadata(parent)?;
                if !meta.is_dir() {
                    return Err(errno(nix::errno::Errno::ENOTDIR));
                }
                access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(errno)
            }
            Err(e) => Err(e),
        },
    }
}

fn connect_syslog(path: &PathBuf) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(socket)
}

/// Opens the sink called `name` and starts its writer thread; `capacity` records may wait.
/// With `seal` (a file sink only), records are sealed (`seal`).
pub(super) fn start(
    config: &SinkConfig,
    name: &str,
    capacity: usize,
    seal: Option<&super::seal::SealSettings>,
    metrics: Metrics,
) -> io::Result<(Arc<SinkState>, std::thread::JoinHandle<()>)> {
    start_with_window(config, name, capacity, seal, metrics, BATCH_WINDOW)
}

/// [`start`], with a batch window other than [`BATCH_WINDOW`] (tests).
fn start_with_window(
    config: &SinkConfig,
    name: &str,
    capacity: usize,
    seal: Option<&super::seal::SealSettings>,
    metrics: Metrics,
    window: Duration,
) -> io::Result<(Arc<SinkState>, std::thread::JoinHandle<()>)> {
    let sealer = match (seal, config) {
        (Some(settings), SinkConfig::File(path)) => Some(Box::new(super::seal::Sealer::open(
            settings,
            path,
            metrics.clone(),
        )?)),
        (Some(_), _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sealing needs sink = \"file\"",
            ))
        }
        (None, _) => None,
    };
    let sink_metrics = metrics.audit_sink(name);
    let sink = Sink::open(config, name, &sink_metrics)?;
    // A sealed batch costs a state-file write and an fdatasync: sealed batches take the
    // whole window (more of them measured no faster).
    let early_bytes = if sealer.is_some() {
        usize::MAX
    } else {
        EARLY_BYTES
    };
    let state = Arc::new(SinkState::new(capacity, early_bytes));
    let writer = Writer {
        sink,
        name: config.to_string(),
        state: state.clone(),
        metrics,
        sink_metrics,
        last_complaint: None,
        lost_since_complaint: 0,
        sealer,
        sealed: Batch::default(),
        stopping: false,
        window,
    };
    let handle = std::thread::Builder::new()
        .name("sockwarden-audit".into())
        .spawn(move || writer.run())?;
    Ok((state, handle))
}

/// The writer thread's state.
struct Writer {
    sink: Sink,
    name: String,
    state: Arc<SinkState>,
    metrics: Metrics,
    sink_metrics: SinkMetrics,
    last_complaint: Option<Instant>,
    lost_since_complaint: u64,
    /// Seals a file sink's records (`[audit] seal_key`).
    sealer: Option<Box<super::seal::Sealer>>,
    /// The sealed batch, reused.
    sealed: Batch,
    /// The last flush: a sealer ends the file with an `end` record.
    stopping: bool,
    /// How long a batch may gather ([`BATCH_WINDOW`]).
    window: Duration,
}

/// How long the writer lets records gather after the first one arrives. Each batch costs the
/// writer two wake-ups and a write; 20 ms keeps that to 100 wake-ups a second under load.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// A batch this many bytes long is written without waiting for the window to pass. Under load
/// a 20 ms batch is ~1 MB; written in 128 KiB pieces (~250 a second at 70,000 requests a
/// second) the records are still in the caches of the CPUs that wrote them when the kernel
/// copies them out, and the buffers stay that small. Measured (`loadgen paired`, c=64, 8 runs,
/// file sink): 1.01-1.03x the req/s of 20 ms batches at the same CPU per request; 32 KiB
/// batches cost more CPU in wake-ups than they saved, 256 KiB were no better than 128. Not for
/// a sealed file: each sealed batch also writes and syncs the seal state, and 128 KiB sealed
/// batches measured 0.98-1.00x.
const EARLY_BYTES: usize = 128 * 1024;

impl Writer {
    fn run(mut self) {
        let mut spare = Batch::default();
        loop {
            {
                let mut pending = self.state.lock();
                while pending.batch.is_empty() && !pending.reopen && !pending.stop {
                    // A sealer writes a checkpoint when one is due, also when idle.
                    match self.sealer.as_ref().map(|s| s.until_checkpoint()) {
                        None => {
                            pending = self
                                .state
                                .wake
                                .wait(pending)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                        Some(wait) if wait.is_zero() => break,
                        Some(wait) => {
                            pending = self
                                .state
                                .wake
                                .wait_timeout(pending, wait)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    }
                }
                if pending.stop {
                    // Write what is there and end.
                    self.stopping = true;
                    let reopen = self.take(pending, &mut spare);
                    self.flush(&mut spare, reopen);
                    return;
                }
            }
            // Let a batch gather: one wake-up and one write for many requests under load,
            // at the price of a record appearing up to BATCH_WINDOW later. A batch of
            // EARLY_BYTES is written at once (while it is in the CPUs' caches), and so is one
            // of half the queue's records, so the window never fills the queue.
            let reopen = {
                let pending = self.state.lock();
                let (pending, _) = self
                    .state
                    .wake
                    .wait_timeout_while(pending, self.window, |p| {
                        !self.state.ready(p.batch.len(), p.batch.bytes.len())
                            && !p.stop
                            && !p.reopen
                    })
                    .unwrap_or_else(|p| p.into_inner());
                self.take(pending, &mut spare)
            };
            self.flush(&mut spare, reopen);
            self.metrics
                .audit_queue(self.state.pending.load(Ordering::Relaxed), self.state.limit);
        }
    }

    /// Takes the pending batch (leaving `spare`, emptied, in its place) and whether a reopen
    /// was asked for.
    fn take(&self, mut pending: MutexGuard<'_, Pending>, spare: &mut Batch) -> bool {
        std::mem::swap(&mut pending.batch, spare);
        self.state.pending.store(0, Ordering::Relaxed);
        std::mem::take(&mut pending.reopen)
    }

    fn flush(&mut self, lines: &mut Batch, reopen: bool) {
        if self.sealer.is_some() {
            return self.flush_sealed(lines, reopen);
        }
        if reopen {
            match self.sink.reopen() {
                Ok(()) => tracing::info!(sink = %self.name, "audit sink reopened"),
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "audit sink: reopen failed")
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        let n = lines.len() as u64;
        match self.sink.write(lines) {
            Ok(()) => {
                self.state.healthy.store(true, Ordering::Relaxed);
                self.metrics.audit_written(n);
                self.sink_metrics.written(n);
            }
            Err(e) => {
                // A full spool took the records that fitted.
                let lost = super::remote::lost_of(&e).unwrap_or(n);
                self.metrics.audit_written(n - lost);
                self.sink_metrics.written(n - lost);
                self.state.healthy.store(false, Ordering::Relaxed);
                *self.state.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                self.metrics.audit_lost("sink_error", lost);
                self.sink_metrics.lost("sink_error", lost);
                self.complain(&e, lost);
            }
        }
        self.sink_metrics
            .healthy(self.state.healthy.load(Ordering::Relaxed));
        lines.clear();
    }

    /// [`Writer::flush`] for a sealed file: a reopen ends the old file with a sealed `rotate`
    /// record and starts the new one with `continue`; checkpoints and the `end` record at
    /// shutdown go with the batch.
    fn flush_sealed(&mut self, lines: &mut Batch, reopen: bool) {
        use super::seal::SealEvent;
        if reopen {
            self.write_sealed(&Batch::default(), Some(SealEvent::Rotate));
            match self.sink.reopen() {
                Ok(()) => tracing::info!(sink = %self.name, "audit sink reopened"),
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "audit sink: reopen failed")
                }
            }
            if let Some(sealer) = self.sealer.as_mut() {
                sealer.reopened();
            }
        }
        let trailer = self.stopping.then_some(SealEvent::End);
        self.write_sealed(lines, trailer);
        lines.clear();
    }

    fn write_sealed(&mut self, lines: &Batch, trailer: Option<super::seal::SealEvent>) {
        let Some(sealer) = self.sealer.as_mut() else {
            return;
        };
        let n = lines.len() as u64;
        let sealed = sealer
            .seal_batch(lines.lines(), trailer, &mut self.sealed)
            .and_then(|()| {
                if self.sealed.is_empty() {
                    Ok(())
                } else {
                    self.sink.write(&self.sealed)
                }
            });
        match sealed {
            Ok(()) => {
                self.state.healthy.store(true, Ordering::Relaxed);
                self.metrics.audit_written(n);
            }
            Err(e) => {
                self.state.healthy.store(false, Ordering::Relaxed);
                self.metrics.audit_lost("sink_error", n);
                self.complain(&e, n);
            }
        }
    }

    /// Logs lost records, at most once a second (with the count since the last line).
    fn complain(&mut self, error: &io::Error, lost: u64) {
        self.lost_since_complaint += lost;
        let now = Instant::now();
        if self
            .last_complaint
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        tracing::error!(
            sink = %self.name,
            error = %error,
            lost = self.lost_since_complaint,
            "audit sink failing: records lost"
        );
        self.last_complaint = Some(now);
        self.lost_since_complaint = 0;
    }
}

/// Records written one after the other into one buffer, with where each ends.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) ends: Vec<usize>,
}

impl Batch {
    fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Each record's line, with its newline.
    pub(super) fn lines(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(start, end)| self.bytes.get(start..end))
    }
}

impl super::seal::SealedOut for Batch {
    fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    fn line_ended(&mut self) {
        self.ends.push(self.bytes.len());
    }

    fn clear(&mut self) {
        Batch::clear(self);
    }
}

/// Writes a record that is not a request's (a reload) as a JSON line.
pub(super) fn record_line(record: &Record, out: &mut Vec<u8>) {
    if serde_json::to_writer(&mut *out, record).is_err() {
        // A record is plain data; this cannot fail, but a line is better than a lost one.
        out.extend_from_slice(b"{\"event\":\"error\"}");
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::audit::page_cache_tests::{cached_bytes, on_disk_tempdir};

    /// A batch of `lines` records of 640 bytes.
    fn batch(lines: usize) -> Batch {
        let mut batch = Batch::default();
        let mut line = vec![b'x'; 639];
        line[0] = b'{';
        line[638] = b'}';
        line.push(b'\n');
        for _ in 0..lines {
            batch.bytes.extend_from_slice(&line);
            batch.ends.push(batch.bytes.len());
        }
        batch
    }

    #[test]
    fn a_written_audit_file_leaves_the_page_cache() {
        let dir = on_disk_tempdir();
        let path = dir.path().join("audit.log");
        let metrics = Metrics::new().audit_sink("test");
        let mut sink = Sink::open(&SinkConfig::File(path.clone()), "test", &metrics).unwrap();
        // 32 MiB in batches of ~400 KiB, 10 ms apart (a busy sockwarden writes one every 20 ms).
        let records = batch(640);
        let mut written = 0u64;
        while written < 32 << 20 {
            sink.write(&records).unwrap();
            written += records.bytes.len() as u64;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), written);
        // Without drop-behind all of it would still be cached: nothing else wants the memory.
        // With it, at most the last pages (still being written back) are; a slow disk may keep
        // more of them busy, hence the margin.
        let cached = cached_bytes(&path);
        assert!(
            cached < written / 2,
            "{cached} of {written} bytes of the audit file are still in the page cache"
        );
        // The file holds every record, in order.
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text.len() as u64, written);
        assert!(text.chunks(640).all(|l| l == &records.bytes[..640]));
    }

    #[test]
    fn drop_behind_asks_once_the_file_grew_by_a_step() {
        use std::io::Write as _;
        let dir = on_disk_tempdir();
        let mut file = open_file(&dir.path().join("audit.log")).unwrap();
        let mut cache = DropBehind::default();
        let half = vec![b'x'; (DropBehind::STEP / 2) as usize];
        file.write_all(&half).unwrap();
        cache.written(&mut file);
        assert_eq!(
            (cache.from, cache.asked),
            (0, 0),
            "asked before a step was written"
        );
        file.write_all(&half).unwrap();
        file.write_all(b"more").unwrap();
        cache.written(&mut file);
        assert_eq!(
            cache.asked,
            DropBehind::STEP,
            "a whole step written, not asked"
        );
        // Truncated by someone else: asked again once a step is written from there.
        file.set_len(0).unwrap();
        file.write_all(b"x").unwrap();
        cache.written(&mut file);
        assert_eq!((cache.from, cache.asked), (0, 0));
        file.write_all(&half).unwrap();
        file.write_all(&half).unwrap();
        cache.written(&mut file);
        assert_eq!(cache.asked, DropBehind::STEP);
    }

    /// Starts a file sink whose batches may gather for an hour, queue `capacity`.
    fn slow_sink(path: &std::path::Path, capacity: usize) -> Arc<SinkState> {
        let metrics = Metrics::new();
        let config = SinkConfig::File(path.to_path_buf());
        let (state, _writer) = start_with_window(
            &config,
            "test",
            capacity,
            None,
            metrics,
            Duration::from_secs(3600),
        )
        .unwrap();
        state
    }

    /// Waits (up to a minute: a loaded machine) until `path` holds `bytes`.
    fn wait_for_len(path: &std::path::Path, bytes: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            if len >= bytes || Instant::now() > deadline {
                return len;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_batch_of_early_bytes_is_written_without_waiting_for_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let state = slow_sink(&path, 100_000);
        let line = batch(1).bytes;
        // Just under EARLY_BYTES: those wait for the window (an hour here); the record that
        // crosses it sends the whole batch.
        let below = (EARLY_BYTES - 1) / line.len();
        for _ in 0..below {
            assert!(state.push(|out| out.extend_from_slice(&line)));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(state.push(|out| out.extend_from_slice(&line)));
        let want = ((below + 1) * line.len()) as u64;
        assert_eq!(wait_for_len(&path, want), want);
        // Records that come after start a new batch, which waits again.
        assert!(state.push(|out| out.extend_from_slice(&line)));
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), want);
        state.stop();
        assert_eq!(
            wait_for_len(&path, want + line.len() as u64),
            want + line.len() as u64
        );
    }

    #[test]
    fn a_sealed_batch_takes_the_whole_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        super::super::seal::write_new_seed(&dir.path().join("seed")).unwrap();
        let seal = super::super::seal::SealSettings {
            seed: dir.path().join("seed"),
            state: dir.path().join("audit.log.seal-state"),
            checkpoint: Duration::from_secs(3600),
        };
        let config = SinkConfig::File(path.clone());
        let (sealed, _) = start(&config, "sealed", 100, Some(&seal), Metrics::new()).unwrap();
        assert_eq!(sealed.early_bytes, usize::MAX);
        let (plain, _) = start(
            &SinkConfig::File(dir.path().join("plain.log")),
            "plain",
            100,
            None,
            Metrics::new(),
        )
        .unwrap();
        assert_eq!(plain.early_bytes, EARLY_BYTES);
        sealed.stop();
        plain.stop();
    }

    #[test]
    fn half_a_queue_of_records_is_written_without_waiting_for_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let state = slow_sink(&path, 64);
        for i in 0..32 {
            assert!(state.push(|out| out.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes())));
        }
        let text: String = (0..32).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        assert_eq!(wait_for_len(&path, text.len() as u64), text.len() as u64);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
