//! Where audit records go: standard output, an append-only file (reopened on SIGUSR1, for
//! logrotate), or syslog/journald over a local datagram socket (`/dev/log`).
//!
//! One dedicated thread writes, so a slow disk or a stalled reader never blocks a request:
//! requests hand records to a bounded queue and go on. The thread writes whatever is queued
//! as one batch and flushes before it waits again, so the sink is current whenever the queue
//! is empty. A failing write marks the sink unhealthy (which a fail-closed audit turns into
//! refused requests), counts the records lost, logs it, and is retried on the next batch
//! (a file is reopened first).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Counts, Record, Trail};
use crate::metrics::Metrics;

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
}

impl std::fmt::Display for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkConfig::Stdout => f.write_str("stdout"),
            SinkConfig::File(path) => write!(f, "file {}", path.display()),
            SinkConfig::Syslog(path) => write!(f, "syslog {}", path.display()),
        }
    }
}

/// What the writer thread is told.
#[derive(Debug)]
pub(super) enum Msg {
    /// A record to write.
    Record(Box<Record>),
    /// A request's or session's record, to be built here from its trail.
    Trail(Arc<Trail>, &'static str, Counts),
    /// Reopen the file (logrotate moved it).
    Reopen,
    /// Write what is queued and stop.
    Stop,
}

/// Shared between the writer thread and the request path.
#[derive(Debug, Default)]
pub(super) struct SinkState {
    /// Whether the last write succeeded.
    pub healthy: AtomicBool,
    /// Set by SIGUSR1; the writer reopens before its next batch.
    pub reopen: AtomicBool,
}

/// An open sink.
enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: Option<File>,
    },
    Syslog {
        path: PathBuf,
        socket: Option<UnixDatagram>,
    },
}

impl Sink {
    /// Opens `config`; an error here stops sockwarden from starting.
    fn open(config: &SinkConfig) -> io::Result<Sink> {
        Ok(match config {
            SinkConfig::Stdout => Sink::Stdout,
            SinkConfig::File(path) => Sink::File {
                file: Some(open_file(path)?),
                path: path.clone(),
            },
            SinkConfig::Syslog(path) => Sink::Syslog {
                socket: Some(connect_syslog(path)?),
                path: path.clone(),
            },
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
            Sink::File { path, file } => {
                if file.is_none() {
                    *file = Some(open_file(path)?);
                }
                let result = match file.as_mut() {
                    Some(f) => f.write_all(batch),
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
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => Ok(()),
            Sink::File { path, file } => {
                *file = None;
                *file = Some(open_file(path)?);
                Ok(())
            }
            Sink::Syslog { path, socket } => {
                *socket = None;
                *socket = Some(connect_syslog(path)?);
                Ok(())
            }
        }
    }
}

fn open_file(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

fn connect_syslog(path: &PathBuf) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(socket)
}

/// Opens the sink and starts the writer thread. Returns the queue's sending side.
pub(super) fn start(
    config: &SinkConfig,
    capacity: usize,
    metrics: Metrics,
) -> io::Result<(
    mpsc::Sender<Msg>,
    Arc<SinkState>,
    std::thread::JoinHandle<()>,
)> {
    let sink = Sink::open(config)?;
    let (tx, rx) = mpsc::channel(capacity);
    let state = Arc::new(SinkState {
        healthy: AtomicBool::new(true),
        reopen: AtomicBool::new(false),
    });
    let writer = Writer {
        sink,
        name: config.to_string(),
        state: state.clone(),
        metrics,
        last_complaint: None,
        lost_since_complaint: 0,
    };
    let handle = std::thread::Builder::new()
        .name("sockwarden-audit".into())
        .spawn(move || writer.run(rx))?;
    Ok((tx, state, handle))
}

/// The writer thread's state.
struct Writer {
    sink: Sink,
    name: String,
    state: Arc<SinkState>,
    metrics: Metrics,
    last_complaint: Option<Instant>,
    lost_since_complaint: u64,
}

/// How long the writer lets records gather after the first one arrives.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Batches larger than this are written in parts, to bound the thread's memory.
const MAX_BATCH: usize = 512;

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut lines = Batch::default();
        let mut stopping = false;
        while !stopping {
            let Some(first) = rx.blocking_recv() else {
                break;
            };
            // Let a batch gather: one wake-up and one write for many requests under load,
            // at the price of a record appearing up to 5 ms later.
            std::thread::sleep(BATCH_WINDOW);
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record(record) => lines.record(&record),
                    Msg::Trail(trail, event, counts) => lines.trail(&trail, event, &counts),
                    Msg::Reopen => self.state.reopen.store(true, Ordering::Relaxed),
                    Msg::Stop => stopping = true,
                }
                if lines.len() >= MAX_BATCH {
                    self.flush(&mut lines);
                }
                next = rx.try_recv().ok();
            }
            self.flush(&mut lines);
            self.metrics.audit_queue(rx.len(), rx.max_capacity());
        }
        // Whatever is still queued after Stop (records of requests that ended meanwhile).
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Record(record) => lines.record(&record),
                Msg::Trail(trail, event, counts) => lines.trail(&trail, event, &counts),
                Msg::Reopen | Msg::Stop => {}
            }
        }
        self.flush(&mut lines);
    }

    fn flush(&mut self, lines: &mut Batch) {
        if self.state.reopen.swap(false, Ordering::Relaxed) {
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
            }
            Err(e) => {
                self.state.healthy.store(false, Ordering::Relaxed);
                self.metrics.audit_lost("sink_error", n);
                self.complain(&e, n);
            }
        }
        lines.clear();
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
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Each record's line, with its newline.
    fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(start, end)| self.bytes.get(start..end))
    }

    fn trail(&mut self, trail: &Trail, event: &'static str, counts: &Counts) {
        trail.write_line(event, counts, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    fn record(&mut self, record: &Record) {
        if serde_json::to_writer(&mut self.bytes, record).is_err() {
            // A record is plain data; this cannot fail, but a line is better than a lost one.
            self.bytes.extend_from_slice(b"{\"event\":\"error\"}");
        }
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
    }
}
