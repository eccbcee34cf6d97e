//! Load generator for `scripts/bench.sh`: drives one HTTP/1.1 front (the upstream itself,
//! sockwarden or HAProxy) over a unix socket with hyper 1.x client connections, and prints one
//! JSON line per measurement.
//!
//! Modes:
//!
//! * `rps`: `--concurrency` keep-alive connections, each sending requests back to back; after
//!   `--warmup` seconds, requests that start and finish within the next `--duration` seconds
//!   are counted → requests/s and latency percentiles (per-request latencies are kept as u32
//!   microseconds, one `Vec` per connection, merged and sorted at the end).
//! * `paired`: two fronts (`--socket` A, `--against` B) side by side; the load alternates
//!   between them in short phases (A B B A A B ...), so slow drifts of the machine hit both
//!   alike; each adjacent pair of phases gives a ratio → req/s of each and A/B. The benchmark
//!   uses it for the audit log's cost (audit on against off).
//! * `download`: one GET of a big body, counted as it streams (never buffered) → MiB/s.
//! * `upload`: one request with a body of `--size` bytes generated on the fly in 64 KiB
//!   chunks (optionally wrapped as a one-file tar, as `PUT /containers/{id}/archive` needs),
//!   with `Content-Length` set → MiB/s.
//! * `hijack`: one `POST /exec/{id}/start` (`--kind exec`) or `POST /containers/{id}/attach`
//!   (`--kind attach`) with `Upgrade: tcp`, as the docker CLI sends it, then `--size` bytes
//!   through the hijacked stream: `--direction up` writes them as stdin (raw, never framed),
//!   half-closes and waits for the far end to close; `--direction down` reads the container's
//!   output to its end. Without a TTY that output is multiplexed (8-byte stdcopy frame headers
//!   before each piece): only the payload of stdout/stderr frames counts as transferred bytes
//!   (the headers are reported as `frame_bytes`) → MiB/s of payload.
//! * `report`: turns the JSON lines of a whole run into the markdown tables of the benchmark,
//!   with the targets of issue 15 checked for every sockwarden front.
//!
//! `--watch-pid PID` adds the CPU time the proxy spent during the measured window: that of
//! the process itself, its live descendants (each by its threads' `/proc/*/task/*/schedstat`,
//! exact) and the children they reaped (`cutime`/`cstime` of `/proc/*/stat`), so that a relay
//! that forks per connection (socat) is charged for all of its processes (see [`cpu_delta`]).
//! During the window it also samples the tree's memory (processes, sum of VmRSS, largest
//! VmHWM, sum of Pss). `--tag key=value` copies labels into the JSON line.
//!
//! ```text
//! loadgen rps --socket /tmp/p.sock --path /_ping --concurrency 64 --duration 5
//! loadgen paired --socket /tmp/a.sock --against /tmp/b.sock --path /_ping -c 64 --duration 10
//! loadgen download --socket /tmp/p.sock --path '/v1.41/images/get?names=big'
//! loadgen upload --socket /tmp/p.sock --method PUT --path '/v1.41/containers/c1/archive?path=/tmp' \
//!     --size 512MiB --tar-name upload.bin
//! loadgen hijack --socket /tmp/p.sock --kind exec --direction down --size 256MiB \
//!     --path /v1.41/exec/<id>/start
//! loadgen report bench/results.jsonl
//! ```

use std::convert::Infallible;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::UnixStream;
use tokio::time::Instant;

type BoxError = Box<dyn Error + Send + Sync>;

const CHUNK: usize = 64 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Parser, Debug)]
#[command(about = "HTTP/1.1 load generator over unix sockets (sockwarden benchmark)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Requests per second and latency with N keep-alive connections.
    Rps(RpsArgs),
    /// Requests per second of two fronts compared under the same conditions: short phases
    /// that alternate between them (A B B A ...), each pair of adjacent phases giving a ratio.
    Paired(PairedArgs),
    /// Throughput of one streamed response body.
    Download(DownloadArgs),
    /// Throughput of one streamed request body generated on the fly.
    Upload(UploadArgs),
    /// Throughput of a hijacked exec/attach stream, in one direction.
    Hijack(HijackArgs),
    /// Markdown tables from the JSON lines of a benchmark run.
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
struct Common {
    /// Unix socket of the front to drive.
    #[arg(long)]
    socket: PathBuf,
    /// `Host` header sent with every request (the docker CLI sends api.moby.localhost).
    #[arg(long, default_value = "api.moby.localhost")]
    host: String,
    /// key=value label copied into the JSON line (repeatable).
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Report the CPU time this process used during the measurement (e.g. the proxy's pid).
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Tokio worker threads of the load generator (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args, Debug)]
struct RpsArgs {
    #[command(flatten)]
    common: Common,
    /// Request method.
    #[arg(long, default_value = "GET")]
    method: Method,
    /// Request target (origin form, may include a query).
    #[arg(long, default_value = "/_ping")]
    path: String,
    /// Number of keep-alive connections, each with one request in flight.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[derive(clap::Args, Debug)]
struct PairedArgs {
    #[command(flatten)]
    rps: RpsArgs,
    /// Unix socket of the second front ("B"); `--socket` is "A".
    #[arg(long)]
    against: PathBuf,
    /// CPU time of this process is reported for front B (`--watch-pid` is A's).
    #[arg(long)]
    watch_pid_against: Option<u32>,
    /// Length of one phase, in milliseconds.
    #[arg(long, default_value_t = 250)]
    phase_ms: u64,
    /// Milliseconds at the start of each phase that are not counted (the previous front's
    /// last requests finish meanwhile).
    #[arg(long, default_value_t = 25)]
    settle_ms: u64,
}

#[derive(clap::Args, Debug)]
struct DownloadArgs {
    #[command(flatten)]
    common: Common,
    /// Request target of the big response.
    #[arg(long)]
    path: String,
    /// Number of downloads (each on a fresh connection); the median is reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

#[derive(clap::Args, Debug)]
struct UploadArgs {
    #[command(flatten)]
    common: Common,
    /// Request method.
    #[arg(long, default_value = "POST")]
    method: Method,
    /// Request target that consumes the body.
    #[arg(long)]
    path: String,
    /// Payload size (bytes, or with a KiB/MiB/GiB suffix).
    #[arg(long, default_value = "512MiB", value_parser = parse_size)]
    size: u64,
    /// Wrap the payload in a tar archive holding one file of this name.
    #[arg(long)]
    tar_name: Option<String>,
    /// Content-Type of the body.
    #[arg(long, default_value = "application/x-tar")]
    content_type: String,
    /// Number of uploads (each on a fresh connection); the median is reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum HijackKind {
    /// `POST /exec/{id}/start` with `{"Detach":false,"Tty":false}`.
    Exec,
    /// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1`.
    Attach,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Client → container (stdin).
    Up,
    /// Container → client (stdout, multiplexed).
    Down,
}

#[derive(clap::Args, Debug)]
struct HijackArgs {
    #[command(flatten)]
    common: Common,
    /// Which hijacking request to send.
    #[arg(long, value_enum, default_value = "exec")]
    kind: HijackKind,
    /// Which way the bytes go.
    #[arg(long, value_enum)]
    direction: Direction,
    /// Request target (origin form, with its query for attach).
    #[arg(long)]
    path: String,
    /// Bytes sent (up) or expected (down) through the stream (with a KiB/MiB/GiB suffix).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    size: u64,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// JSON-lines file written by a benchmark run.
    results: PathBuf,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((s, 1));
    num.trim()
        .parse::<u64>()
        .map_err(|e| format!("bad size {s:?}: {e}"))?
        .checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let cli = Cli::parse();
    let threads = match &cli.cmd {
        Cmd::Rps(a) => a.common.threads,
        Cmd::Paired(a) => a.rps.common.threads,
        Cmd::Download(a) => a.common.threads,
        Cmd::Upload(a) => a.common.threads,
        Cmd::Hijack(a) => a.common.threads,
        Cmd::Report(a) => {
            print!("{}", report(&a.results)?);
            return Ok(());
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.enable_all().build()?;
    let line = rt.block_on(async move {
        match cli.cmd {
            Cmd::Rps(a) => run_rps(a).await,
            Cmd::Paired(a) => run_paired(a).await,
            Cmd::Download(a) => run_download(a).await,
            Cmd::Upload(a) => run_upload(a).await,
            Cmd::Hijack(a) => run_hijack(a).await,
            Cmd::Report(_) => Ok(Value::Null),
        }
    });
    let line = line.map_err(|e| -> Box<dyn Error> { e.to_string().into() })?;
    println!("{line}");
    let failed = line.get("ok").and_then(Value::as_u64) == Some(0);
    if failed {
        return Err("no request succeeded".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Connections and CPU accounting

async fn connect<B>(socket: &Path) -> Result<SendRequest<B>, BoxError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = UnixStream::connect(socket).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the peer closes it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// What `/proc/PID/stat` says of a process: its parent and its CPU time in ticks (utime,
/// stime, and cutime + cstime: the children it has waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    ppid: u32,
    own_ticks: u64,
    children_ticks: u64,
}

fn parse_stat(stat: &str) -> Option<ProcStat> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 of stat(5): ppid is field 4, utime..cstime fields 14..17.
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(num(1)?).ok()?,
        own_ticks: num(11)? + num(12)?,
        children_ticks: num(13)? + num(14)?,
    })
}

/// `pid` and its live descendants (found by scanning /proc: this kernel may lack
/// /proc/PID/task/TID/children), each with its stat.
fn proc_tree(pid: u32) -> Vec<(u32, ProcStat)> {
    let mut all: Vec<(u32, ProcStat)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(st) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            {
                all.push((p, st));
            }
        }
    }
    tree_of(pid, &all)
}

/// The members of `pid`'s tree among `all` (root first).
fn tree_of(pid: u32, all: &[(u32, ProcStat)]) -> Vec<(u32, ProcStat)> {
    let mut tree: Vec<(u32, ProcStat)> = all.iter().filter(|(p, _)| *p == pid).copied().collect();
    if tree.is_empty() {
        return tree;
    }
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        for (p, st) in all {
            if st.ppid == parent && *p != pid && !tree.iter().any(|(q, _)| q == p) {
                tree.push((*p, *st));
            }
        }
        i += 1;
    }
    tree
}

/// Nanoseconds on CPU of every live thread of `pid` (`/proc/PID/task/*/schedstat`, first
/// field): exact, where stat's clock ticks are cut to 10 ms per process, which over the 65
/// processes of a forking relay at c=64 would lose most of a short run's time.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut total = None;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let path = e.path().join("schedstat");
        let Some(ns) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        else {
            continue;
        };
        *total.get_or_insert(0) += ns;
    }
    total
}

/// The CPU time of a process tree at one moment: each member's stat and, when readable, its
/// threads' exact time (schedstat).
#[derive(Debug, Clone, Default, PartialEq)]
struct CpuSnap {
    procs: Vec<(u32, ProcStat, Option<u64>)>,
}

/// The CPU snapshot of the process `pid` and its live descendants (None: no such process).
fn cpu_snapshot(pid: u32) -> Option<CpuSnap> {
    let tree = proc_tree(pid);
    (!tree.is_empty()).then(|| CpuSnap {
        procs: tree
            .into_iter()
            .map(|(p, st)| (p, st, schedstat_ns(p)))
            .collect(),
    })
}

/// CPU seconds a process tree used between two snapshots. A process alive in both counts by
/// schedstat (exact) when both have it; one that appeared counts its whole schedstat time (it
/// started after the first snapshot); the time of children reaped in between arrives in their
/// parent's `cutime`/`cstime`, in clock ticks (USER_HZ, 100 on Linux), so a process that
/// went away is taken off at its first snapshot's ticks too, keeping both sides in one unit.
/// (Mixing would charge a short-lived socat child its exact start and a truncated end, and
/// could go negative; stat's ticks alone are cut to 10 ms per process, which over the 65
/// processes of a forking relay at c=64 loses most of a short run's time.)
fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> f64 {
    let ticks = |t: u64| t as f64 / 100.0;
    let ns = |n: u64| n as f64 / 1e9;
    let mut total = 0.0;
    for (p, st1, ns1) in &b.procs {
        total += ticks(st1.children_ticks);
        match a.procs.iter().find(|(q, ..)| q == p) {
            Some((_, st0, ns0)) => {
                total += match (ns0, ns1) {
                    (Some(x), Some(y)) => ns(y.saturating_sub(*x)),
                    _ => ticks(st1.own_ticks) - ticks(st0.own_ticks),
                }
            }
            None => total += ns1.map_or(ticks(st1.own_ticks), ns),
        }
    }
    for (p, st0, _) in &a.procs {
        total -= ticks(st0.children_ticks);
        if !b.procs.iter().any(|(q, ..)| q == p) {
            // Gone: its time is in its parent's cutime now (or lost with the parent).
            total -= ticks(st0.own_ticks);
        }
    }
    total
}

/// Memory of a process tree at one moment (kB): processes, sum of VmRSS, largest VmHWM, and
/// sum of Pss (shared pages split among the processes that map them, so that the sum is the
/// tree's own footprint: forked children share most of their pages with the parent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TreeMem {
    procs: u64,
    rss_kb: u64,
    hwm_max_kb: u64,
    pss_kb: u64,
}

impl TreeMem {
    /// The larger of each figure.
    fn max(self, o: TreeMem) -> TreeMem {
        TreeMem {
            procs: self.procs.max(o.procs),
            rss_kb: self.rss_kb.max(o.rss_kb),
            hwm_max_kb: self.hwm_max_kb.max(o.hwm_max_kb),
            pss_kb: self.pss_kb.max(o.pss_kb),
        }
    }
}

/// The value in kB of `key` in a /proc status-like text.
fn kb_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn tree_memory(pid: u32) -> Option<TreeMem> {
    let tree = proc_tree(pid);
    if tree.is_empty() {
        return None;
    }
    let mut m = TreeMem::default();
    for (p, _) in &tree {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        m.procs += 1;
        m.rss_kb += kb_field(&status, "VmRSS:");
        m.hwm_max_kb = m.hwm_max_kb.max(kb_field(&status, "VmHWM:"));
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            m.pss_kb += kb_field(&rollup, "Pss:");
        }
    }
    Some(m)
}

/// Samples a process tree's memory every 200 ms until stopped; keeps the largest sum of RSS.
struct MemWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Option<TreeMem>>,
}

impl MemWatch {
    fn start(pid: Option<u32>) -> Option<MemWatch> {
        let pid = pid?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut best: Option<TreeMem> = None;
            loop {
                if let Some(now) = tree_memory(pid) {
                    best = Some(match best {
                        Some(b) => b.max(now),
                        None => now,
                    });
                }
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return best;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Some(MemWatch { stop, task })
    }

    async fn finish(w: Option<MemWatch>) -> Option<TreeMem> {
        let w = w?;
        w.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        w.task.await.ok().flatten()
    }
}

/// Adds the tree's memory sample to a JSON line.
fn insert_memory(m: &mut Map<String, Value>, sample: Option<TreeMem>) {
    if let Some(t) = sample {
        m.insert("proxy_procs".into(), json!(t.procs));
        m.insert("proxy_tree_rss_kb".into(), json!(t.rss_kb));
        m.insert("proxy_hwm_max_kb".into(), json!(t.hwm_max_kb));
        m.insert("proxy_tree_pss_kb".into(), json!(t.pss_kb));
    }
}

fn base_line(mode: &str, common: &Common) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("mode".into(), json!(mode));
    for (k, v) in &common.tags {
        m.insert(k.clone(), json!(v));
    }
    m
}

async fn drain(body: &mut Incoming) -> Result<u64, BoxError> {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame?.data_ref() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

// ---------------------------------------------------------------------------------------------
// rps

/// What went wrong in a worker: counted, with the first error's text.
#[derive(Default)]
struct Tally {
    errors: u64,
    bad_status: u64,
    first_error: Option<String>,
}

impl Tally {
    /// An error; `counted` when it happened inside the measured window.
    fn error(&mut self, counted: bool, text: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
        }
        self.first_error.get_or_insert_with(text);
    }

    /// A response; one with a failure status is counted as such.
    fn response(&mut self, status: StatusCode) {
        if !status.is_success() {
            self.bad_status += 1;
            self.first_error
                .get_or_insert_with(|| format!("status {status}"));
        }
    }

    /// An exchange that brought no response; `true` when the worker must stop (the deadline
    /// passed, or no request can be sent at all). `counted`: inside the measured window.
    fn failed(&mut self, exchange: Exchange, counted: bool) -> bool {
        match exchange {
            Exchange::Done(..) => false,
            Exchange::Failed(e) => {
                self.error(counted, || e.to_string());
                false
            }
            Exchange::TimedOut => {
                self.error(true, || "request timed out".into());
                true
            }
            Exchange::Unsendable(e) => {
                self.error(true, || e);
                true
            }
        }
    }

    /// Adds another worker's tally.
    fn add(&mut self, other: Tally) {
        self.errors += other.errors;
        self.bad_status += other.bad_status;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// How one request on a keep-alive connection went.
enum Exchange {
    /// Answered; the status and the body's length.
    Done(StatusCode, u64),
    /// The connection failed (it is dropped; the next request opens another).
    Failed(BoxError),
    /// Still unanswered at the deadline.
    TimedOut,
    /// The request could not even be built: nothing will work.
    Unsendable(String),
}

/// The request every worker sends.
struct Target {
    socket: PathBuf,
    host: HeaderValue,
    method: Method,
    path: String,
}

impl Target {
    /// The connection in `slot`, or a new one; `None` after a failed connect (noted, with a
    /// short pause before the caller tries again).
    async fn checkout(
        &self,
        slot: &mut Option<SendRequest<Empty<Bytes>>>,
        tally: &mut Tally,
    ) -> Option<SendRequest<Empty<Bytes>>> {
        if let Some(s) = slot.take() {
            return Some(s);
        }
        match connect(&self.socket).await {
            Ok(s) => Some(s),
            Err(e) => {
                tally.error(true, || format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        }
    }

    /// Sends the request on `s` and reads the whole response, giving up at `deadline`.
    async fn exchange(&self, s: &mut SendRequest<Empty<Bytes>>, deadline: Instant) -> Exchange {
        let req = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(header::HOST, self.host.clone())
            .header(header::USER_AGENT, "sockwarden-loadgen")
            .body(Empty::<Bytes>::new());
        let req = match req {
            Ok(r) => r,
            Err(e) => return Exchange::Unsendable(e.to_string()),
        };
        let res = tokio::time::timeout_at(deadline, async {
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            let n = drain(&mut body).await?;
            Ok::<_, BoxError>((status, n))
        })
        .await;
        match res {
            Ok(Ok((status, n))) => Exchange::Done(status, n),
            Ok(Err(e)) => Exchange::Failed(e),
            Err(_) => Exchange::TimedOut,
        }
    }
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    bytes: u64,
    tally: Tally,
}

struct RpsPlan {
    target: Target,
    measure_start: Instant,
    end: Instant,
}

async fn rps_worker(plan: std::sync::Arc<RpsPlan>) -> WorkerStats {
    let mut st = WorkerStats {
        latencies_us: Vec::with_capacity(64 * 1024),
        ..WorkerStats::default()
    };
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    // A request stuck past the end of the run (plus a grace period) is abandoned.
    let deadline = plan.end + Duration::from_secs(10);
    while Instant::now() < plan.end {
        let Some(mut s) = plan.target.checkout(&mut sender, &mut st.tally).await else {
            continue;
        };
        let t0 = Instant::now();
        let res = plan.target.exchange(&mut s, deadline).await;
        let t1 = Instant::now();
        let in_window = t0 >= plan.measure_start && t1 <= plan.end;
        let (status, n) = match res {
            Exchange::Done(status, n) => (status, n),
            failure => {
                if st.tally.failed(failure, in_window) {
                    break;
                }
                continue;
            }
        };
        if in_window {
            let us = (t1 - t0).as_micros();
            st.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            st.bytes += n;
            st.tally.response(status);
        }
        sender = Some(s);
    }
    st
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run_rps(a: RpsArgs) -> Result<Value, BoxError> {
    if a.concurrency == 0 || a.duration.is_nan() || a.duration <= 0.0 || a.warmup < 0.0 {
        return Err("concurrency and duration must be positive".into());
    }
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(a.warmup);
    let end = measure_start + Duration::from_secs_f64(a.duration);
    let plan = std::sync::Arc::new(RpsPlan {
        target: Target {
            socket: a.common.socket.clone(),
            host: HeaderValue::from_str(&a.common.host)?,
            method: a.method.clone(),
            path: a.path.clone(),
        },
        measure_start,
        end,
    });
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| tokio::spawn(rps_worker(plan.clone())))
        .collect();

    let (cpu, memory) = match a.common.watch_pid {
        Some(pid) => {
            tokio::time::sleep_until(measure_start).await;
            let c0 = cpu_snapshot(pid);
            // Memory near the end, while every connection is surely open (a forking relay
            // has all its processes then; at the end they start to go).
            tokio::time::sleep_until(end - (end - measure_start) / 10).await;
            let memory = tree_memory(pid);
            tokio::time::sleep_until(end).await;
            let c1 = cpu_snapshot(pid);
            (c0.zip(c1).map(|(c0, c1)| cpu_delta(&c0, &c1)), memory)
        }
        None => (None, None),
    };

    let mut lat: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    let mut tally = Tally::default();
    for w in workers {
        let st = w.await?;
        lat.extend_from_slice(&st.latencies_us);
        bytes += st.bytes;
        tally.add(st.tally);
    }
    let Tally {
        errors,
        bad_status,
        first_error,
    } = tally;
    lat.sort_unstable();
    let n = lat.len() as u64;
    let mean = if n > 0 {
        lat.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / n as f64
    } else {
        0.0
    };
    let mut m = base_line("rps", &a.common);
    m.insert("method".into(), json!(a.method.as_str()));
    m.insert("path".into(), json!(a.path));
    m.insert("concurrency".into(), json!(a.concurrency));
    m.insert("duration_s".into(), json!(a.duration));
    m.insert("ok".into(), json!(n - bad_status));
    m.insert("requests".into(), json!(n));
    m.insert("rps".into(), json!((n as f64 / a.duration).round()));
    m.insert("p50_us".into(), json!(percentile(&lat, 50.0)));
    m.insert("p90_us".into(), json!(percentile(&lat, 90.0)));
    m.insert("p99_us".into(), json!(percentile(&lat, 99.0)));
    m.insert("max_us".into(), json!(lat.last().copied().unwrap_or(0)));
    m.insert("mean_us".into(), json!(mean.round()));
    m.insert("resp_bytes".into(), json!(bytes / n.max(1)));
    m.insert("errors".into(), json!(errors));
    m.insert("bad_status".into(), json!(bad_status));
    if let Some(e) = first_error {
        m.insert("first_error".into(), json!(e));
    }
    if let Some(c) = cpu {
        m.insert("proxy_cpu_s".into(), json!(c));
        if n > 0 {
            m.insert("proxy_cpu_us_per_req".into(), json!(c * 1e6 / n as f64));
        }
    }
    insert_memory(&mut m, memory);
    Ok(Value::Object(m))
}

// ---------------------------------------------------------------------------------------------
// paired

/// The front of phase `i`: A B B A A B B A ..., so neither front always goes first.
fn phase_front(i: u64) -> usize {
    usize::from(matches!(i % 4, 1 | 2))
}

struct PairedPlan {
    /// Front A's target, then B's.
    targets: [Target; 2],
    measure_start: Instant,
    end: Instant,
    phase: Duration,
    settle: Duration,
}

impl PairedPlan {
    /// The phase `t` falls in (phases are counted from the start of the measurement; the
    /// warm-up alternates too, with negative phases folded onto A and B alike).
    fn phase_at(&self, t: Instant) -> u64 {
        let from = if t >= self.measure_start {
            t - self.measure_start
        } else {
            self.measure_start - t
        };
        (from.as_nanos() / self.phase.as_nanos().max(1)) as u64
    }

    /// Whether a request of the phase's own front that completed at `t` is counted.
    fn counted(&self, t: Instant) -> bool {
        if t < self.measure_start || t > self.end {
            return false;
        }
        let into = (t - self.measure_start).as_nanos() % self.phase.as_nanos().max(1);
        into >= self.settle.as_nanos()
    }
}

#[derive(Default)]
struct PairedStats {
    /// Completed (counted) requests per phase, for the phase's front.
    per_phase: Vec<u64>,
    /// Every request each front completed in the measured window (for CPU per request).
    done: [u64; 2],
    latencies_us: [Vec<u32>; 2],
    tally: Tally,
}

/// One connection to each front; every request goes to the current phase's front.
async fn paired_worker(plan: std::sync::Arc<PairedPlan>) -> PairedStats {
    let mut st = PairedStats::default();
    let mut senders: [Option<SendRequest<Empty<Bytes>>>; 2] = [None, None];
    let deadline = plan.end + Duration::from_secs(10);
    while Instant::now() < plan.end {
        let phase = plan.phase_at(Instant::now());
        let front = phase_front(phase);
        let target = &plan.targets[front];
        let Some(mut s) = target.checkout(&mut senders[front], &mut st.tally).await else {
            continue;
        };
        let t0 = Instant::now();
        let res = target.exchange(&mut s, deadline).await;
        let t1 = Instant::now();
        // Counted for its phase only if it completed in a phase of its own front.
        let done_phase = plan.phase_at(t1);
        let counted = plan.counted(t1) && phase_front(done_phase) == front;
        let status = match res {
            Exchange::Done(status, _) => status,
            failure => {
                if st.tally.failed(failure, counted) {
                    break;
                }
                continue;
            }
        };
        if t1 >= plan.measure_start && t1 <= plan.end {
            st.done[front] += 1;
        }
        if counted {
            let i = usize::try_from(done_phase).unwrap_or(usize::MAX);
            if st.per_phase.len() <= i {
                st.per_phase.resize(i + 1, 0);
            }
            st.per_phase[i] += 1;
            let us = (t1 - t0).as_micros();
            st.latencies_us[front].push(u32::try_from(us).unwrap_or(u32::MAX));
            st.tally.response(status);
        }
        senders[front] = Some(s);
    }
    st
}

/// The `q` quantile of `v` (nearest rank).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

async fn run_paired(a: PairedArgs) -> Result<Value, BoxError> {
    let r = &a.rps;
    if r.concurrency == 0 || r.duration.is_nan() || r.duration <= 0.0 || r.warmup < 0.0 {
        return Err("concurrency and duration must be positive".into());
    }
    if a.phase_ms == 0 || a.settle_ms >= a.phase_ms {
        return Err("--phase-ms must be positive and longer than --settle-ms".into());
    }
    let phase = Duration::from_millis(a.phase_ms);
    // Whole pairs of phases only.
    let pairs = ((r.duration * 1000.0) as u64 / (2 * a.phase_ms)).max(1);
    let measured = phase * (2 * pairs as u32);
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(r.warmup);
    let end = measure_start + measured;
    let host = HeaderValue::from_str(&r.common.host)?;
    let target = |socket: &PathBuf| Target {
        socket: socket.clone(),
        host: host.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
    };
    let plan = std::sync::Arc::new(PairedPlan {
        targets: [target(&r.common.socket), target(&a.against)],
        measure_start,
        end,
        phase,
        settle: Duration::from_millis(a.settle_ms),
    });
    let workers: Vec<_> = (0..r.concurrency)
        .map(|_| tokio::spawn(paired_worker(plan.clone())))
        .collect();
    let pids = [r.common.watch_pid, a.watch_pid_against];
    tokio::time::sleep_until(measure_start).await;
    let c0 = pids.map(|p| p.and_then(cpu_snapshot));
    tokio::time::sleep_until(end).await;
    let c1 = pids.map(|p| p.and_then(cpu_snapshot));

    let phases = (2 * pairs) as usize;
    let mut per_phase = vec![0u64; phases];
    let mut lat: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut tally = Tally::default();
    let mut done = [0u64; 2];
    for w in workers {
        let st = w.await?;
        done[0] += st.done[0];
        done[1] += st.done[1];
        for (i, n) in st.per_phase.iter().enumerate().take(phases) {
            per_phase[i] += n;
        }
        for (all, of_worker) in lat.iter_mut().zip(&st.latencies_us) {
            all.extend_from_slice(of_worker);
        }
        tally.add(st.tally);
    }
    let Tally {
        errors,
        bad_status,
        first_error,
    } = tally;
    // Each pair: the A phase and the B phase next to it (A B, then B A, ...).
    let mut ratios: Vec<f64> = (0..pairs as usize)
        .filter_map(|k| {
            let (x, y) = (per_phase[2 * k], per_phase[2 * k + 1]);
            let (na, nb) = if phase_front(2 * k as u64) == 0 {
                (x, y)
            } else {
                (y, x)
            };
            (nb > 0).then(|| na as f64 / nb as f64)
        })
        .collect();
    let counted_secs = (phase - plan.settle).as_secs_f64() * pairs as f64;
    let total = |f: usize| -> u64 {
        (0..phases)
            .filter(|&i| phase_front(i as u64) == f)
            .map(|i| per_phase[i])
            .sum()
    };
    let (na, nb) = (total(0), total(1));
    let mut m = base_line("paired", &r.common);
    m.insert("method".into(), json!(r.method.as_str()));
    m.insert("path".into(), json!(r.path));
    m.insert("concurrency".into(), json!(r.concurrency));
    m.insert("duration_s".into(), json!(measured.as_secs_f64()));
    m.insert("phase_ms".into(), json!(a.phase_ms));
    m.insert("pairs".into(), json!(pairs));
    m.insert("requests".into(), json!(na + nb));
    m.insert("ok".into(), json!((na + nb).saturating_sub(bad_status)));
    m.insert("rps_a".into(), json!((na as f64 / counted_secs).round()));
    m.insert("rps_b".into(), json!((nb as f64 / counted_secs).round()));
    if nb > 0 {
        m.insert("ratio".into(), json!(na as f64 / nb as f64));
    }
    if !ratios.is_empty() {
        m.insert("ratio_p25".into(), json!(quantile(&mut ratios, 0.25)));
        m.insert("ratio_median".into(), json!(quantile(&mut ratios, 0.5)));
        m.insert("ratio_p75".into(), json!(quantile(&mut ratios, 0.75)));
    }
    for (f, name) in ["a", "b"].iter().enumerate() {
        lat[f].sort_unstable();
        m.insert(format!("p50_us_{name}"), json!(percentile(&lat[f], 50.0)));
        m.insert(format!("p99_us_{name}"), json!(percentile(&lat[f], 99.0)));
        let n = done[f];
        if let (Some(c0), Some(c1)) = (&c0[f], &c1[f]) {
            if n > 0 {
                // Each front is idle in the other's phases, so its CPU time is its requests'.
                m.insert(
                    format!("proxy_cpu_us_per_req_{name}"),
                    json!(cpu_delta(c0, c1) * 1e6 / n as f64),
                );
            }
        }
    }
    m.insert("errors".into(), json!(errors));
    m.insert("bad_status".into(), json!(bad_status));
    if let Some(e) = first_error {
        m.insert("first_error".into(), json!(e));
    }
    Ok(Value::Object(m))
}

// ---------------------------------------------------------------------------------------------
// download / upload

struct Transfer {
    bytes: u64,
    secs: f64,
    ttfb_s: f64,
    status: StatusCode,
    cpu_s: Option<f64>,
    memory: Option<TreeMem>,
}

async fn run_download(a: DownloadArgs) -> Result<Value, BoxError> {
    let host = HeaderValue::from_str(&a.common.host)?;
    let mut runs = Vec::new();
    for _ in 0..a.repeat.max(1) {
        let mut s = connect::<Empty<Bytes>>(&a.common.socket).await?;
        let req = Request::get(a.path.as_str())
            .header(header::HOST, host.clone())
            .header(header::USER_AGENT, "sockwarden-loadgen")
            .body(Empty::<Bytes>::new())?;
        let c0 = a.common.watch_pid.and_then(cpu_snapshot);
        let watch = MemWatch::start(a.common.watch_pid);
        let t0 = Instant::now();
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let ttfb = t0.elapsed();
        let status = resp.status();
        let mut body = resp.into_body();
        let bytes = drain(&mut body).await?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = a.common.watch_pid.and_then(cpu_snapshot);
        runs.push(Transfer {
            bytes,
            secs,
            ttfb_s: ttfb.as_secs_f64(),
            status,
            cpu_s: c0.zip(c1).map(|(c0, c1)| cpu_delta(&c0, &c1)),
            memory: MemWatch::finish(watch).await,
        });
    }
    Ok(transfer_line("download", &a.common, "GET", &a.path, &runs))
}

/// A request body of `payload` bytes produced on the fly from one shared 64 KiB buffer,
/// optionally framed as a tar archive holding a single regular file.
struct GenBody {
    head: Option<Bytes>,
    chunk: Bytes,
    remaining: u64,
    tail: Option<Bytes>,
    total_left: u64,
}

impl GenBody {
    fn new(payload: u64, tar_name: Option<&str>) -> Result<Self, BoxError> {
        let (head, tail) = match tar_name {
            Some(name) => {
                let pad = (512 - payload % 512) % 512;
                let tail = vec![0u8; usize::try_from(pad)? + 1024];
                (Some(tar_header(name, payload)?), Some(Bytes::from(tail)))
            }
            None => (None, None),
        };
        let total = head.as_ref().map_or(0, |h| h.len() as u64)
            + payload
            + tail.as_ref().map_or(0, |t| t.len() as u64);
        Ok(GenBody {
            head,
            chunk: Bytes::from(vec![0u8; CHUNK]),
            remaining: payload,
            tail,
            total_left: total,
        })
    }
}

impl Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let data = if let Some(h) = self.head.take() {
            h
        } else if self.remaining > 0 {
            let n = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(self.chunk.len());
            self.remaining -= n as u64;
            self.chunk.slice(..n)
        } else if let Some(t) = self.tail.take() {
            t
        } else {
            return Poll::Ready(None);
        };
        self.total_left -= data.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.total_left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total_left)
    }
}

/// A POSIX ustar header for a regular file `name` of `size` bytes.
fn tar_header(name: &str, size: u64) -> Result<Bytes, BoxError> {
    if name.len() > 100 || size >= 8u64 << 30 {
        return Err("tar entry name too long or file too big for a ustar header".into());
    }
    let mut h = [0u8; 512];
    let mut put = |off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
    put(0, name.as_bytes());
    put(100, b"0000644\0"); // mode
    put(108, b"0000000\0"); // uid
    put(116, b"0000000\0"); // gid
    put(124, format!("{size:011o}\0").as_bytes());
    put(136, b"14723364000\0"); // mtime: 2024-11-29
    put(148, b"        "); // checksum placeholder
    put(156, b"0"); // regular file
    put(257, b"ustar\0");
    put(263, b"00");
    put(265, b"root");
    put(297, b"root");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(Bytes::copy_from_slice(&h))
}

async fn run_upload(a: UploadArgs) -> Result<Value, BoxError> {
    let host = HeaderValue::from_str(&a.common.host)?;
    let mut runs = Vec::new();
    for _ in 0..a.repeat.max(1) {
        let body = GenBody::new(a.size, a.tar_name.as_deref())?;
        let len = body.total_left;
        let mut s = connect::<GenBody>(&a.common.socket).await?;
        let req = Request::builder()
            .method(a.method.clone())
            .uri(a.path.as_str())
            .header(header::HOST, host.clone())
            .header(header::USER_AGENT, "sockwarden-loadgen")
            .header(header::CONTENT_TYPE, a.content_type.as_str())
            .header(header::CONTENT_LENGTH, len)
            .body(body)?;
        let c0 = a.common.watch_pid.and_then(cpu_snapshot);
        let watch = MemWatch::start(a.common.watch_pid);
        let t0 = Instant::now();
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let ttfb = t0.elapsed();
        let status = resp.status();
        let mut rbody = resp.into_body();
        drain(&mut rbody).await?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = a.common.watch_pid.and_then(cpu_snapshot);
        runs.push(Transfer {
            bytes: len,
            secs,
            ttfb_s: ttfb.as_secs_f64(),
            status,
            cpu_s: c0.zip(c1).map(|(c0, c1)| cpu_delta(&c0, &c1)),
            memory: MemWatch::finish(watch).await,
        });
    }
    Ok(transfer_line(
        "upload",
        &a.common,
        a.method.as_str(),
        &a.path,
        &runs,
    ))
}

fn transfer_line(
    mode: &str,
    common: &Common,
    method: &str,
    path: &str,
    runs: &[Transfer],
) -> Value {
    let mut m = base_line(mode, common);
    m.insert("method".into(), json!(method));
    m.insert("path".into(), json!(path));
    let ok = runs
        .iter()
        .filter(|r| r.status.is_success() || r.status == StatusCode::SWITCHING_PROTOCOLS)
        .count();
    let mut rates: Vec<f64> = runs
        .iter()
        .map(|r| r.bytes as f64 / MIB / r.secs.max(1e-9))
        .collect();
    let all: Vec<f64> = rates.iter().map(|r| (r * 10.0).round() / 10.0).collect();
    let mut secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    let mut ttfb: Vec<f64> = runs.iter().map(|r| r.ttfb_s * 1e3).collect();
    m.insert("ok".into(), json!(ok));
    m.insert(
        "status".into(),
        json!(runs.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>()),
    );
    m.insert("bytes".into(), json!(runs.first().map_or(0, |r| r.bytes)));
    m.insert("repeat".into(), json!(runs.len()));
    m.insert(
        "mib_s".into(),
        json!((median(&mut rates) * 10.0).round() / 10.0),
    );
    m.insert("mib_s_all".into(), json!(all));
    m.insert("secs".into(), json!(median(&mut secs)));
    m.insert("ttfb_ms".into(), json!(median(&mut ttfb)));
    let cpu: Vec<f64> = runs.iter().filter_map(|r| r.cpu_s).collect();
    if !cpu.is_empty() {
        let total_cpu: f64 = cpu.iter().sum();
        let total_gib: f64 = runs.iter().map(|r| r.bytes as f64).sum::<f64>() / (1u64 << 30) as f64;
        m.insert("proxy_cpu_s".into(), json!(total_cpu));
        m.insert(
            "proxy_cpu_s_per_gib".into(),
            json!(total_cpu / total_gib.max(1e-9)),
        );
    }
    let memory = runs.iter().filter_map(|r| r.memory).reduce(TreeMem::max);
    insert_memory(&mut m, memory);
    if ok < runs.len() {
        m.insert("errors".into(), json!(runs.len() - ok));
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// hijack

/// Counts a multiplexed (Tty=false) output stream: 8-byte headers `[type, 0, 0, 0, len u32 BE]`,
/// each followed by `len` payload bytes, fed in pieces cut anywhere.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Stdcopy {
    header: [u8; 8],
    header_len: usize,
    /// Payload bytes still due in the current frame, and its stream type.
    left: u64,
    kind: u8,
    /// Payload bytes by stream: stdin (0, never sent by a daemon), stdout, stderr, system error.
    payload: [u64; 4],
    frames: u64,
    /// Bytes after the stream stopped parsing as frames (a TTY stream, or garbage).
    unframed: u64,
    /// The start of stderr and system-error output, for the error message.
    errors_text: Vec<u8>,
}

impl Stdcopy {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.unframed > 0 {
                self.unframed += data.len() as u64;
                return;
            }
            if self.left > 0 {
                let n = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let kind = usize::from(self.kind);
                self.payload[kind] += n as u64;
                if kind >= 2 && self.errors_text.len() < 200 {
                    let room = 200 - self.errors_text.len();
                    self.errors_text.extend_from_slice(&data[..n.min(room)]);
                }
                self.left -= n as u64;
                data = &data[n..];
                continue;
            }
            let take = (8 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
            self.header_len += take;
            data = &data[take..];
            if self.header_len == 8 {
                let h = self.header;
                if h[0] > 3 || h[1..4] != [0, 0, 0] {
                    // Not a frame header: count everything from here on as raw bytes.
                    self.unframed = 8 + data.len() as u64;
                    self.header_len = 0;
                    return;
                }
                self.kind = h[0];
                self.left = u64::from(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
                self.frames += 1;
                self.header_len = 0;
            }
        }
    }

    /// Output payload (stdout and stderr).
    fn output(&self) -> u64 {
        self.payload[1] + self.payload[2]
    }

    /// Whether the stream ended on a frame boundary, as frames only.
    fn complete(&self) -> bool {
        self.header_len == 0 && self.left == 0 && self.unframed == 0
    }
}

/// The request head (and exec start's body) of a hijack, as the docker CLI sends it.
fn hijack_request(kind: HijackKind, path: &str, host: &str) -> String {
    let (body, ctype) = match kind {
        HijackKind::Exec => ("{\"Detach\":false,\"Tty\":false}\n", "application/json"),
        HijackKind::Attach => ("", "text/plain"),
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sockwarden-loadgen\r\n\
         Content-Length: {}\r\nConnection: Upgrade\r\nContent-Type: {ctype}\r\n\
         Upgrade: tcp\r\n\r\n{body}",
        body.len()
    )
}

/// The status code of a response head (`HTTP/1.1 101 UPGRADED`).
fn head_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// One hijack: the bytes moved and how long it took (from the request to the stream's end).
struct HijackRun {
    transfer: Transfer,
    wire: u64,
    frames: u64,
    complete: bool,
    problem: Option<String>,
}

async fn hijack_once(a: &HijackArgs) -> Result<HijackRun, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = UnixStream::connect(&a.common.socket).await?;
    let c0 = a.common.watch_pid.and_then(cpu_snapshot);
    let watch = MemWatch::start(a.common.watch_pid);
    let t0 = Instant::now();
    stream
        .write_all(hijack_request(a.kind, &a.path, &a.common.host).as_bytes())
        .await?;
    // The answer's head; bytes after it already belong to the stream.
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0usize;
    let end = loop {
        let n = stream.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(format!(
                "connection closed before the answer's head ended: {:?}",
                String::from_utf8_lossy(&buf[..got])
            )
            .into());
        }
        got += n;
        if let Some(i) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if got == buf.len() {
            return Err("answer head longer than 64 KiB".into());
        }
    };
    let ttfb = t0.elapsed();
    let status = head_status(&buf[..end]).unwrap_or(0);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    // Like the docker CLI, only a 101 is a hijack (dockerd answers 200 and a raw stream to a
    // request without `Upgrade`: a front that dropped the header).
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let text = String::from_utf8_lossy(&buf[..got]).replace("\r\n", " / ");
        return Err(format!(
            "no hijack (status {}, not 101): {}",
            status.as_u16(),
            text.chars().take(300).collect::<String>()
        )
        .into());
    }
    let mut out = Stdcopy::default();
    let mut wire = (got - end) as u64;
    out.feed(&buf[end..got]);
    let mut sent = 0u64;
    if a.direction == Direction::Up {
        let chunk = vec![0u8; CHUNK];
        while sent < a.size {
            let n = usize::try_from(a.size - sent)
                .unwrap_or(usize::MAX)
                .min(CHUNK);
            stream.write_all(&chunk[..n]).await?;
            sent += n as u64;
        }
        // End of stdin: a half-close, as the CLI does; the far end closes when it is done.
        stream.shutdown().await?;
    }
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        wire += n as u64;
        out.feed(&buf[..n]);
    }
    let secs = t0.elapsed().as_secs_f64();
    let c1 = a.common.watch_pid.and_then(cpu_snapshot);
    let bytes = match a.direction {
        Direction::Up => sent,
        Direction::Down => out.output(),
    };
    let problem = match a.direction {
        Direction::Down if out.output() != a.size || !out.complete() => Some(format!(
            "expected {} bytes of output, got {} in {} frames{}{}",
            a.size,
            out.output(),
            out.frames,
            if out.complete() {
                ""
            } else {
                " (stream cut mid-frame or not framed)"
            },
            if out.errors_text.is_empty() {
                String::new()
            } else {
                format!(": {}", String::from_utf8_lossy(&out.errors_text))
            }
        )),
        _ if !out.errors_text.is_empty() => Some(format!(
            "error output: {}",
            String::from_utf8_lossy(&out.errors_text)
        )),
        _ => None,
    };
    Ok(HijackRun {
        transfer: Transfer {
            bytes,
            secs,
            ttfb_s: ttfb.as_secs_f64(),
            status,
            cpu_s: c0.zip(c1).map(|(c0, c1)| cpu_delta(&c0, &c1)),
            memory: MemWatch::finish(watch).await,
        },
        wire,
        frames: out.frames,
        complete: out.complete(),
        problem,
    })
}

async fn run_hijack(a: HijackArgs) -> Result<Value, BoxError> {
    HeaderValue::from_str(&a.common.host)?;
    if a.path.contains(['\r', '\n', ' ']) {
        return Err("--path must be one request target".into());
    }
    let run = hijack_once(&a).await?;
    let mut line = transfer_line(
        "hijack",
        &a.common,
        "POST",
        &a.path,
        std::slice::from_ref(&run.transfer),
    );
    if let Value::Object(m) = &mut line {
        m.insert(
            "kind".into(),
            json!(match a.kind {
                HijackKind::Exec => "exec",
                HijackKind::Attach => "attach",
            }),
        );
        m.insert(
            "direction".into(),
            json!(match a.direction {
                Direction::Up => "up",
                Direction::Down => "down",
            }),
        );
        // Bytes read from the stream (all of it down; whatever the container said, up), and
        // of those the frame headers.
        m.insert("read_bytes".into(), json!(run.wire));
        m.insert("frames".into(), json!(run.frames));
        m.insert("frame_bytes".into(), json!(run.frames * 8));
        m.insert("framed".into(), json!(run.complete));
        if let Some(p) = run.problem {
            m.insert("ok".into(), json!(0));
            m.insert("errors".into(), json!(1));
            m.insert("first_error".into(), json!(p));
        }
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------------
// report

fn report(path: &Path) -> Result<String, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut raw: Vec<Value> = Vec::new();
    for l in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        raw.push(serde_json::from_str(l)?);
    }
    // Paired audit-cost runs have a section of their own.
    let (paired, raw): (Vec<Value>, Vec<Value>) = raw
        .into_iter()
        .partition(|v| v.get("mode").and_then(Value::as_str) == Some("paired"));
    // Notes (why a cell is missing) are printed under their upstream's table.
    let (notes, raw): (Vec<Value>, Vec<Value>) = raw
        .into_iter()
        .partition(|v| v.get("mode").and_then(Value::as_str) == Some("note"));
    let lines = aggregate(&raw);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);

    // Keep first-appearance order of upstreams, fronts and tests.
    let mut upstreams: Vec<String> = Vec::new();
    let mut fronts: Vec<String> = Vec::new();
    for v in &lines {
        let (u, fr) = (s(v, "upstream"), s(v, "front"));
        if !u.is_empty() && !upstreams.contains(&u) {
            upstreams.push(u);
        }
        if !fr.is_empty() && !fronts.contains(&fr) {
            fronts.push(fr);
        }
    }
    let proxies: Vec<&String> = fronts.iter().filter(|f| f.as_str() != "direct").collect();

    let mut out = String::new();
    for up in &upstreams {
        let of_up: Vec<&Value> = lines.iter().filter(|v| s(v, "upstream") == *up).collect();
        let mut tests: Vec<String> = Vec::new();
        for v in &of_up {
            let t = s(v, "test");
            if !t.is_empty() && !tests.contains(&t) {
                tests.push(t);
            }
        }
        let find = |test: &str, front: &str| -> Option<&Value> {
            of_up
                .iter()
                .copied()
                .find(|v| s(v, "test") == test && s(v, "front") == front)
        };
        let desc = |test: &str| -> String {
            of_up
                .iter()
                .find(|v| s(v, "test") == test)
                .and_then(|v| v.get("desc").and_then(Value::as_str))
                .unwrap_or(test)
                .to_owned()
        };

        let _ = writeln!(out, "### Upstream: {up}\n");
        let _ = writeln!(
            out,
            "Ratios are to `direct` (load generator straight to the upstream socket): \
             above 1x is better for req/s and MiB/s, below 1x is better for latency.\n"
        );
        let _ = write!(out, "| measurement |");
        for fr in &fronts {
            let _ = write!(out, " {fr} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &fronts {
            let _ = write!(out, "---:|");
        }
        out.push('\n');

        let cell_ratio = |val: Option<f64>,
                          base: Option<f64>,
                          fr: &str,
                          fmt: &dyn Fn(f64) -> String|
         -> String {
            match val {
                None => "—".to_owned(),
                Some(x) => match base {
                    Some(b) if fr != "direct" && b > 0.0 => format!("{} ({:.2}x)", fmt(x), x / b),
                    _ => fmt(x),
                },
            }
        };
        let warn = |v: Option<&Value>| -> String {
            let Some(v) = v else { return String::new() };
            let e = v.get("errors").and_then(Value::as_u64).unwrap_or(0)
                + v.get("bad_status").and_then(Value::as_u64).unwrap_or(0);
            if e > 0 {
                format!(" ⚠ {e} failed")
            } else {
                String::new()
            }
        };
        for t in &tests {
            let direct = find(t, "direct");
            let mode = of_up
                .iter()
                .find(|v| s(v, "test") == *t)
                .map(|v| s(v, "mode"))
                .unwrap_or_default();
            match mode.as_str() {
                "rps" => {
                    let _ = write!(out, "| {} — req/s |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let c = cell_ratio(
                            v.and_then(|v| f(v, "rps")),
                            direct.and_then(|v| f(v, "rps")),
                            fr,
                            &|x| group_thousands(x.round() as u64),
                        );
                        let _ = write!(out, " {c}{} |", warn(v));
                    }
                    let _ = write!(out, "\n| {} — p50 / p99 latency (µs) |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let (p50, p99) = (
                            v.and_then(|v| f(v, "p50_us")),
                            v.and_then(|v| f(v, "p99_us")),
                        );
                        let c = match (p50, p99) {
                            (Some(a), Some(b)) => {
                                let base = direct.and_then(|d| f(d, "p50_us").zip(f(d, "p99_us")));
                                match base {
                                    Some((ba, bb)) if fr != "direct" && ba > 0.0 && bb > 0.0 => {
                                        format!("{a:.0} / {b:.0} ({:.2}x / {:.2}x)", a / ba, b / bb)
                                    }
                                    _ => format!("{a:.0} / {b:.0}"),
                                }
                            }
                            _ => "—".to_owned(),
                        };
                        let _ = write!(out, " {c} |");
                    }
                    out.push('\n');
                    range_row(&mut out, t, &desc(t), "req/s", "rps", &fronts, &find);
                }
                "download" | "upload" | "hijack" => {
                    let _ = write!(out, "| {} — MiB/s |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let c = cell_ratio(
                            v.and_then(|v| f(v, "mib_s")),
                            direct.and_then(|v| f(v, "mib_s")),
                            fr,
                            &|x| format!("{x:.0}"),
                        );
                        let _ = write!(out, " {c}{} |", warn(v));
                    }
                    out.push('\n');
                    range_row(&mut out, t, &desc(t), "MiB/s", "mib_s", &fronts, &find);
                }
                _ => {}
            }
        }
        for n in notes.iter().filter(|v| s(v, "upstream") == *up) {
            let _ = writeln!(out, "\nNote: {}.", s(n, "text"));
        }

        // How much the rounds of one figure disagreed: a hint of how far to trust a ratio.
        let mut spreads: Vec<(f64, String)> = of_up
            .iter()
            .filter_map(|v| {
                f(v, "spread").map(|sp| (sp, format!("{}, {}", s(v, "front"), desc(&s(v, "test")))))
            })
            .collect();
        if !spreads.is_empty() {
            spreads.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mid = spreads[spreads.len() / 2].0;
            if let Some((worst, what)) = spreads.last() {
                let _ = writeln!(
                    out,
                    "\nRound-to-round spread of the req/s and MiB/s figures (max/min − 1): median \
                     {:.0}%, largest {:.0}% ({what}).",
                    mid * 100.0,
                    worst * 100.0
                );
            }
        }

        // What the audit log costs, from the paired runs (one row per variant: tag
        // `audit_variant`).
        let pairs_of_up: Vec<&Value> = paired.iter().filter(|v| s(v, "upstream") == *up).collect();
        audit_cost_section(&mut out, up, &pairs_of_up);
        // Cost of each proxy: CPU time per unit of work, and peak memory.
        if !proxies.is_empty() {
            let _ = writeln!(
                out,
                "\nProxy cost on `{up}` (CPU time the proxy's process tree used during the \
                 measured window; peak RSS = VmHWM of a fresh proxy process after all the runs \
                 above):\n"
            );
            let _ = write!(out, "| proxy cost |");
            for fr in &proxies {
                let _ = write!(out, " {fr} |");
            }
            let _ = write!(out, "\n|---|");
            for _ in &proxies {
                let _ = write!(out, "---:|");
            }
            out.push('\n');
            for t in &tests {
                let mode = of_up
                    .iter()
                    .find(|v| s(v, "test") == *t)
                    .map(|v| s(v, "mode"))
                    .unwrap_or_default();
                let (key, label, fmt): (&str, &str, fn(f64) -> String) = match mode.as_str() {
                    "rps" => ("proxy_cpu_us_per_req", "CPU µs per request", |x| {
                        format!("{x:.1}")
                    }),
                    "download" | "upload" | "hijack" => {
                        ("proxy_cpu_s_per_gib", "CPU s per GiB", |x| {
                            format!("{x:.2}")
                        })
                    }
                    _ => continue,
                };
                let _ = write!(out, "| {} — {label} |", desc(t));
                for fr in &proxies {
                    let c = find(t, fr)
                        .and_then(|v| f(v, key))
                        .map_or_else(|| "—".to_owned(), fmt);
                    let _ = write!(out, " {c} |");
                }
                out.push('\n');
            }
            let _ = write!(
                out,
                "| peak memory, MiB (VmHWM; a forking front: the largest sum of its processes' \
                 Pss seen during a measurement) |"
            );
            for fr in &proxies {
                if let Some((kb, procs, what)) = tree_peak(&of_up, fr) {
                    let _ = write!(out, " {:.1} ({what}, {procs} processes) |", kb / 1024.0);
                    continue;
                }
                let c = of_up
                    .iter()
                    .find(|v| s(v, "mode") == "rss" && s(v, "front") == **fr)
                    .map_or_else(
                        || "—".to_owned(),
                        |v| {
                            let restarted =
                                v.get("restarted").and_then(Value::as_bool) == Some(true);
                            f(v, "vmhwm_kb").map_or_else(
                                || "—".to_owned(),
                                |kb| {
                                    format!(
                                        "{:.1}{}",
                                        kb / 1024.0,
                                        if restarted {
                                            " (restarted mid-run)"
                                        } else {
                                            ""
                                        }
                                    )
                                },
                            )
                        },
                    );
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        }
        for fr in fronts.iter().filter(|f| f.starts_with("sockwarden")) {
            targets_section(&mut out, up, fr, &tests, &of_up);
        }
        out.push('\n');
    }

    // Any failure is listed, so a table never silently hides one.
    let mut failures = String::new();
    for v in &raw {
        let e = v.get("errors").and_then(Value::as_u64).unwrap_or(0)
            + v.get("bad_status").and_then(Value::as_u64).unwrap_or(0);
        if e > 0 {
            let _ = writeln!(
                failures,
                "- {} / {} / {} round {}: {e} failed ({})",
                s(v, "upstream"),
                s(v, "front"),
                s(v, "test"),
                s(v, "round"),
                v.get("first_error")
                    .and_then(Value::as_str)
                    .unwrap_or("non-2xx status")
            );
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "**Failures**\n\n{failures}");
    }
    Ok(out)
}

/// Merges the rounds of each (upstream, front, test): the median of every figure, the sum of
/// the failure counts, and `spread` = max/min − 1 of the headline figure (req/s or MiB/s).
/// The audit cost table of one upstream: for each test, the req/s of sockwarden with its audit
/// log on relative to off, from `loadgen paired` runs (each run a fresh pair of processes; the
/// tag `audit_a` says which of the two was front A). Shows the median over runs, the range,
/// and the CPU time per request with the audit on and off.
fn audit_cost_section(out: &mut String, up: &str, lines: &[&Value]) {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    // Each audit-on variant (tag `audit_variant`: "on", a plain file; "sealed", the file
    // sealed; "remote", the file plus a remote syslog sink) is its own row; runs from before
    // the tag are "on".
    let variant = |v: &Value| match s(v, "audit_variant").as_str() {
        "" => "on".to_owned(),
        other => other.to_owned(),
    };
    let mut tests: Vec<(String, String)> = Vec::new();
    for v in lines {
        let t = (s(v, "test"), variant(v));
        if !tests.contains(&t) {
            tests.push(t);
        }
    }
    if tests.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nAudit cost on `{up}`: req/s of sockwarden with its audit log on (to a file, one JSON \
         line per request; rows marked (sealed): the file sealed, `audit.seal_key`; (remote): the file plus a remote \
         syslog sink over TCP to a discarding collector on loopback, through its spool) relative to the \
         same binary with `audit.sink = \"off\"`, measured by \
         `loadgen paired`: both run side by side and the load alternates between them in \
         phases of {} ms (A B B A ...), so both see the same conditions; each run starts fresh \
         processes and swaps which one is A. 1.00x means free; the target is at least 0.95x.\n",
        lines.first().and_then(|v| f(v, "phase_ms")).unwrap_or(0.0)
    );
    let _ = writeln!(
        out,
        "| measurement | audit on / off (median of runs) | range | runs | CPU µs/request on / off |\n\
         |---|---:|---:|---:|---:|"
    );
    for (t, var) in &tests {
        let runs: Vec<&&Value> = lines
            .iter()
            .filter(|v| {
                s(v, "test") == *t
                    && variant(v) == *var
                    && v.get("ok").and_then(Value::as_u64) != Some(0)
            })
            .collect();
        let mut ratios = Vec::new();
        let (mut cpu_on, mut cpu_off) = (Vec::new(), Vec::new());
        for v in &runs {
            let on_is_a = !matches!(s(v, "audit_a").as_str(), "off" | "");
            let Some(ratio) = f(v, "ratio").filter(|r| *r > 0.0) else {
                continue;
            };
            ratios.push(if on_is_a { ratio } else { 1.0 / ratio });
            let (on, off) = if on_is_a { ("a", "b") } else { ("b", "a") };
            cpu_on.extend(f(v, &format!("proxy_cpu_us_per_req_{on}")));
            cpu_off.extend(f(v, &format!("proxy_cpu_us_per_req_{off}")));
        }
        let desc = runs
            .first()
            .and_then(|v| v.get("desc").and_then(Value::as_str))
            .unwrap_or(t);
        let desc = if var == "on" {
            desc.to_owned()
        } else {
            format!("{desc} ({var})")
        };
        if ratios.is_empty() {
            let _ = writeln!(out, "| {desc} — req/s | — | | 0 | |");
            continue;
        }
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let n = ratios.len();
        let cpu = if cpu_on.is_empty() || cpu_off.is_empty() {
            "—".to_owned()
        } else {
            format!("{:.1} / {:.1}", median(&mut cpu_on), median(&mut cpu_off))
        };
        let _ = writeln!(
            out,
            "| {desc} — req/s | {:.3}x | {lo:.3}–{hi:.3} | {n} | {cpu} |",
            median(&mut ratios)
        );
    }
}

fn aggregate(raw: &[Value]) -> Vec<Value> {
    const MEDIAN_KEYS: &[&str] = &[
        "rps",
        "p50_us",
        "p90_us",
        "p99_us",
        "max_us",
        "mean_us",
        "mib_s",
        "secs",
        "ttfb_ms",
        "proxy_cpu_s",
        "proxy_cpu_us_per_req",
        "proxy_cpu_s_per_gib",
        "vmhwm_kb",
    ];
    // Figures whose spread over the rounds is kept as `{key}_min` and `{key}_max`.
    const RANGE_KEYS: &[&str] = &[
        "rps",
        "p50_us",
        "p99_us",
        "mib_s",
        "proxy_cpu_us_per_req",
        "proxy_cpu_s_per_gib",
    ];
    // Figures of which the largest round counts (memory of a process tree).
    const MAX_KEYS: &[&str] = &[
        "proxy_procs",
        "proxy_tree_rss_kb",
        "proxy_hwm_max_kb",
        "proxy_tree_pss_kb",
    ];
    let key = |v: &Value| -> String {
        ["upstream", "front", "test", "mode"]
            .iter()
            .map(|k| v.get(*k).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\u{1f}")
    };
    let mut order: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<&Value>> = Vec::new();
    for v in raw {
        let k = key(v);
        match order.iter().position(|o| *o == k) {
            Some(i) => groups[i].push(v),
            None => {
                order.push(k);
                groups.push(vec![v]);
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let mut merged = g[0].clone();
            if let Value::Object(m) = &mut merged {
                // A round in which nothing succeeded has no figures to take the median of.
                let good: Vec<&&Value> = g
                    .iter()
                    .filter(|v| v.get("ok").and_then(Value::as_u64) != Some(0))
                    .collect();
                for k in MEDIAN_KEYS {
                    m.remove(*k);
                    let mut xs: Vec<f64> = good
                        .iter()
                        .filter_map(|v| v.get(*k).and_then(Value::as_f64))
                        .collect();
                    if !xs.is_empty() {
                        m.insert((*k).into(), json!(median(&mut xs)));
                    }
                    if RANGE_KEYS.contains(k) {
                        if let Some((lo, hi)) = min_max(&xs) {
                            m.insert(format!("{k}_min"), json!(lo));
                            m.insert(format!("{k}_max"), json!(hi));
                        }
                    }
                }
                for k in MAX_KEYS {
                    let hi = good
                        .iter()
                        .filter_map(|v| v.get(*k).and_then(Value::as_f64))
                        .reduce(f64::max);
                    m.remove(*k);
                    if let Some(hi) = hi {
                        m.insert((*k).into(), json!(hi));
                    }
                }
                for k in ["errors", "bad_status"] {
                    let sum: u64 = g
                        .iter()
                        .filter_map(|v| v.get(k).and_then(Value::as_u64))
                        .sum();
                    m.insert(k.into(), json!(sum));
                }
                m.insert("rounds".into(), json!(g.len()));
                let headline: Vec<f64> = good
                    .iter()
                    .filter_map(|v| v.get("rps").or_else(|| v.get("mib_s")))
                    .filter_map(Value::as_f64)
                    .collect();
                let lo = headline.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = headline.iter().copied().fold(0.0, f64::max);
                if headline.len() > 1 && lo > 0.0 {
                    m.insert("spread".into(), json!(hi / lo - 1.0));
                }
            }
            merged
        })
        .collect()
}

fn min_max(xs: &[f64]) -> Option<(f64, f64)> {
    let lo = xs.iter().copied().reduce(f64::min)?;
    let hi = xs.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// A row of min–max over the rounds of `key` for every front.
fn range_row<'a>(
    out: &mut String,
    test: &str,
    desc: &str,
    unit: &str,
    key: &str,
    fronts: &[String],
    find: &dyn Fn(&str, &str) -> Option<&'a Value>,
) {
    let _ = write!(out, "| {desc} — {unit} min–max over rounds |");
    for fr in fronts {
        let c = find_range(find(test, fr), key).map_or_else(
            || "—".to_owned(),
            |r| format!("{}–{}", short(r.lo), short(r.hi)),
        );
        let _ = write!(out, " {c} |");
    }
    out.push('\n');
}

/// A figure compactly: 12.3k, 950, 8.5.
fn short(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// A figure's median and its range over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    lo: f64,
    hi: f64,
    rounds: u64,
}

impl Spread {
    fn scaled(self, k: f64) -> Spread {
        Spread {
            median: self.median * k,
            lo: self.lo * k,
            hi: self.hi * k,
            rounds: self.rounds,
        }
    }
}

fn find_range(v: Option<&Value>, key: &str) -> Option<Spread> {
    let v = v?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let median = f(key)?;
    Some(Spread {
        median,
        lo: f(&format!("{key}_min")).unwrap_or(median),
        hi: f(&format!("{key}_max")).unwrap_or(median),
        rounds: v.get("rounds").and_then(Value::as_u64).unwrap_or(1),
    })
}

/// Whether a cell meets a target, from the ranges of the two figures compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Meets,
    Misses,
    /// The ranges overlap: this run cannot tell.
    Unresolved,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Meets => "✔ meets",
            Verdict::Misses => "✘ misses",
            Verdict::Unresolved => "≈ unresolved on noise",
        }
    }
}

/// `a >= b` wanted: met when all of a's rounds are at least all of b's, missed when all are
/// below, unresolved when the ranges overlap.
fn at_least(a: Spread, b: Spread) -> Verdict {
    if a.lo >= b.hi {
        Verdict::Meets
    } else if a.hi < b.lo {
        Verdict::Misses
    } else {
        Verdict::Unresolved
    }
}

/// `a <= b` wanted (latency).
fn at_most(a: Spread, b: Spread) -> Verdict {
    if a.hi <= b.lo {
        Verdict::Meets
    } else if a.lo > b.hi {
        Verdict::Misses
    } else {
        Verdict::Unresolved
    }
}

/// One comparison cell: the verdict and the medians' ratio.
fn compare_cell(a: Option<Spread>, b: Option<Spread>, higher_is_better: bool) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "—".to_owned();
    };
    let v = if higher_is_better {
        at_least(a, b)
    } else {
        at_most(a, b)
    };
    let ratio = if b.median > 0.0 {
        format!(" {:.2}x", a.median / b.median)
    } else {
        String::new()
    };
    let single = if a.rounds < 2 || b.rounds < 2 {
        " (1 round: spread unknown)"
    } else {
        ""
    };
    format!("{}{ratio}{single}", v.mark())
}

/// The largest memory (kB) of a front seen with more than one process, and how many it had
/// then: a relay that forks per connection (socat), whose VmHWM says nothing. Pss where the
/// kernel gave it (the tree's own footprint), else RSS (which counts shared pages per process).
fn tree_peak(of_up: &[&Value], front: &str) -> Option<(f64, u64, &'static str)> {
    of_up
        .iter()
        .filter(|v| v.get("front").and_then(Value::as_str) == Some(front))
        .filter_map(|v| {
            let procs = v.get("proxy_procs").and_then(Value::as_f64)?;
            let pss = v.get("proxy_tree_pss_kb").and_then(Value::as_f64);
            let (kb, what) = match pss.filter(|k| *k > 0.0) {
                Some(k) => (k, "Pss"),
                None => (v.get("proxy_tree_rss_kb").and_then(Value::as_f64)?, "RSS"),
            };
            (procs > 1.0).then_some((kb, procs as u64, what))
        })
        .reduce(|a, b| if b.0 > a.0 { b } else { a })
}

/// Issue 15's targets for one sockwarden front on one upstream, each with its verdict.
fn targets_section(out: &mut String, up: &str, front: &str, tests: &[String], of_up: &[&Value]) {
    let find = |test: &str, fr: &str| -> Option<&Value> {
        of_up.iter().copied().find(|v| {
            v.get("test").and_then(Value::as_str) == Some(test)
                && v.get("front").and_then(Value::as_str) == Some(fr)
        })
    };
    let mode = |test: &str| -> String {
        of_up
            .iter()
            .find(|v| v.get("test").and_then(Value::as_str) == Some(test))
            .and_then(|v| v.get("mode").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    let desc = |test: &str| -> String {
        of_up
            .iter()
            .find(|v| v.get("test").and_then(Value::as_str) == Some(test))
            .and_then(|v| v.get("desc").and_then(Value::as_str))
            .unwrap_or(test)
            .to_owned()
    };
    let _ = writeln!(
        out,
        "\nIssue 15 targets for `{front}` on `{up}`: req/s >= socat's and >= both HAProxy \
         fronts' in every small-request cell, p99 <= both HAProxy fronts', streams >= 0.9x \
         direct, peak RSS < 32 MiB. ✔ meets / ✘ misses when every round of one front is on \
         the same side of every round of the other; ≈ unresolved on noise when their min–max \
         ranges overlap (the ratio of the medians is shown anyway). CPU µs per request, \
         steadier than req/s on a shared machine, is given for each front.\n"
    );
    let _ = writeln!(
        out,
        "| cell | req/s vs socat | req/s vs haproxy | req/s vs haproxy-ka | p99 vs haproxy | \
         p99 vs haproxy-ka | CPU µs/req {front} / socat / haproxy / haproxy-ka |\n\
         |---|---|---|---|---|---|---|"
    );
    let others = ["socat", "haproxy", "haproxy-ka"];
    let mut streams = Vec::new();
    for t in tests {
        match mode(t).as_str() {
            "rps" => {}
            "download" | "upload" | "hijack" => {
                streams.push(t);
                continue;
            }
            _ => continue,
        }
        let me = find(t, front);
        let _ = write!(out, "| {} |", desc(t));
        for o in others {
            let c = compare_cell(find_range(me, "rps"), find_range(find(t, o), "rps"), true);
            let _ = write!(out, " {c} |");
        }
        for o in ["haproxy", "haproxy-ka"] {
            let c = compare_cell(
                find_range(me, "p99_us"),
                find_range(find(t, o), "p99_us"),
                false,
            );
            let _ = write!(out, " {c} |");
        }
        let cpu: Vec<String> = std::iter::once(front)
            .chain(others)
            .map(|fr| {
                find(t, fr)
                    .and_then(|v| v.get("proxy_cpu_us_per_req").and_then(Value::as_f64))
                    .map_or_else(|| "—".to_owned(), |x| format!("{x:.1}"))
            })
            .collect();
        let _ = writeln!(out, " {} |", cpu.join(" / "));
    }
    if !streams.is_empty() {
        let _ = writeln!(
            out,
            "\n| stream cell | {front} MiB/s (min–max) | 0.9x direct (min–max) | >= 0.9x direct |\n\
             |---|---:|---:|---|"
        );
        for t in streams {
            let me = find_range(find(t, front), "mib_s");
            let floor = find_range(find(t, "direct"), "mib_s").map(|d| d.scaled(0.9));
            let fmt = |r: Option<Spread>| {
                r.map_or_else(
                    || "—".to_owned(),
                    |r| format!("{:.0} ({:.0}–{:.0})", r.median, r.lo, r.hi),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                desc(t),
                fmt(me),
                fmt(floor),
                compare_cell(me, floor, true)
            );
        }
    }
    let rss = of_up
        .iter()
        .find(|v| {
            v.get("mode").and_then(Value::as_str) == Some("rss")
                && v.get("front").and_then(Value::as_str) == Some(front)
        })
        .and_then(|v| v.get("vmhwm_kb").and_then(Value::as_f64));
    match rss {
        Some(kb) => {
            let mib = kb / 1024.0;
            let mark = if mib < 32.0 {
                Verdict::Meets
            } else {
                Verdict::Misses
            };
            let _ = writeln!(
                out,
                "\nPeak RSS of `{front}` (VmHWM): {mib:.1} MiB, target < 32 MiB: {}.",
                mark.mark()
            );
        }
        None => {
            let _ = writeln!(out, "\nPeak RSS of `{front}`: not measured.");
        }
    }
}

fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0, 0, 0];
        v.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn stdcopy_counts_payload_not_headers_however_the_stream_is_cut() {
        let mut wire = frame(1, &[7u8; 1000]);
        wire.extend(frame(2, b"warn\n"));
        wire.extend(frame(1, &[]));
        wire.extend(frame(1, &[0u8; 70_000]));
        // Every way of cutting the stream in two, and byte by byte.
        for cut in [0, 1, 3, 7, 8, 9, 1007, 1008, 1010, 1021, wire.len()] {
            let mut c = Stdcopy::default();
            c.feed(&wire[..cut]);
            c.feed(&wire[cut..]);
            assert_eq!(c.payload[1], 71_000, "cut at {cut}");
            assert_eq!(c.payload[2], 5, "cut at {cut}");
            assert_eq!(c.output(), 71_005);
            assert_eq!(c.frames, 4);
            assert!(c.complete());
            assert_eq!(c.errors_text, b"warn\n");
        }
        let mut c = Stdcopy::default();
        for b in &wire {
            c.feed(std::slice::from_ref(b));
        }
        assert_eq!((c.output(), c.frames, c.complete()), (71_005, 4, true));
    }

    #[test]
    fn stdcopy_notices_a_cut_frame_and_an_unframed_stream() {
        let wire = frame(1, &[1u8; 100]);
        let mut c = Stdcopy::default();
        c.feed(&wire[..50]);
        assert!(!c.complete(), "stream ended inside a frame");
        assert_eq!(c.output(), 42);
        let mut c = Stdcopy::default();
        c.feed(&wire[..5]);
        assert!(!c.complete(), "stream ended inside a header");
        // A TTY stream (raw bytes) is not mistaken for frames.
        let mut c = Stdcopy::default();
        c.feed(b"hello world, no frames here");
        c.feed(b"more");
        assert!(!c.complete());
        assert_eq!(c.output(), 0);
        assert_eq!(c.unframed, 31);
        // A system error frame (type 3) is kept for the message, not counted as output.
        let mut c = Stdcopy::default();
        c.feed(&frame(3, b"exec failed"));
        assert_eq!(c.output(), 0);
        assert_eq!(c.errors_text, b"exec failed");
        assert!(c.complete());
    }

    #[test]
    fn hijack_request_is_what_the_cli_sends() {
        let r = hijack_request(HijackKind::Exec, "/v1.41/exec/abc/start", "h");
        assert!(r.starts_with("POST /v1.41/exec/abc/start HTTP/1.1\r\n"));
        assert!(r.contains("\r\nConnection: Upgrade\r\n"));
        assert!(r.contains("\r\nUpgrade: tcp\r\n"));
        assert!(r.contains("Content-Type: application/json"));
        let body = "{\"Detach\":false,\"Tty\":false}\n";
        assert!(r.ends_with(&format!("\r\n\r\n{body}")));
        assert!(r.contains(&format!("Content-Length: {}\r\n", body.len())));
        let r = hijack_request(HijackKind::Attach, "/containers/c/attach?stream=1", "h");
        assert!(r.contains("Content-Length: 0\r\n"));
        assert!(r.contains("Content-Type: text/plain"));
        assert!(r.ends_with("\r\n\r\n"));
    }

    #[test]
    fn head_status_reads_the_status_line() {
        assert_eq!(
            head_status(b"HTTP/1.1 101 UPGRADED\r\nX: y\r\n\r\n"),
            Some(101)
        );
        assert_eq!(head_status(b"HTTP/1.0 200 OK\r\n\r\n"), Some(200));
        assert_eq!(head_status(b"garbage 101\r\n"), None);
        assert_eq!(head_status(b"HTTP/1.1 abc\r\n"), None);
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "4242 (sock (at) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 30 12 20 0 2 0 123 456 789";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.ppid, 17);
        assert_eq!(st.own_ticks, 325);
        assert_eq!(st.children_ticks, 42);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn a_process_tree_is_found_by_parent_links() {
        let st = |ppid, own, children| ProcStat {
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        // socat (10) with two live connection children (11, 12), one of which forked (13);
        // an unrelated process (20) and its child (21).
        let all = vec![
            (10, st(1, 100, 50)),
            (11, st(10, 30, 0)),
            (12, st(10, 20, 0)),
            (13, st(12, 5, 0)),
            (20, st(1, 999, 999)),
            (21, st(20, 7, 0)),
        ];
        let tree = tree_of(10, &all);
        let mut pids: Vec<u32> = tree.iter().map(|(p, _)| *p).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(tree_of(99, &all).is_empty());
        // A live process's own tree.
        let me = proc_tree(std::process::id());
        assert_eq!(me.first().map(|(p, _)| *p), Some(std::process::id()));
        assert!(cpu_snapshot(std::process::id()).is_some());
        let m = tree_memory(std::process::id()).unwrap();
        assert!(m.procs >= 1 && m.rss_kb > 0 && m.hwm_max_kb >= m.rss_kb / m.procs);
        assert!(m.pss_kb <= m.rss_kb);
    }

    #[test]
    fn cpu_between_snapshots_charges_forked_children_once() {
        let st = |ppid, own, children| ProcStat {
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        // Before: socat (10, 1 s, no reaped children) with a connection child 11 (0.2 s,
        // exactly 0.205 s) and 12 (ticks only).
        let a = CpuSnap {
            procs: vec![
                (10, st(1, 100, 0), Some(1_000_000_000)),
                (11, st(10, 20, 0), Some(205_000_000)),
                (12, st(10, 3, 0), None),
            ],
        };
        // After: 10 used 0.1 s more; 11 ended at 0.5 s and was reaped (10's cutime: 50
        // ticks); 12 used 2 ticks more; 13 appeared and used 0.0123 s.
        let b = CpuSnap {
            procs: vec![
                (10, st(1, 110, 50), Some(1_100_000_000)),
                (12, st(10, 5, 0), None),
                (13, st(10, 1, 0), Some(12_300_000)),
            ],
        };
        // 0.1 (10) + 0.5 - 0.2 (11: reaped total minus its ticks before) + 0.02 (12) + 0.0123.
        assert!(
            (cpu_delta(&a, &b) - 0.4323).abs() < 1e-9,
            "{}",
            cpu_delta(&a, &b)
        );
        assert_eq!(cpu_delta(&a, &a), 0.0);
        // A short child that came and went between the snapshots (before: only the parent;
        // after: only its 1 tick of cutime) is charged its tick, never a negative time.
        let a = CpuSnap {
            procs: vec![
                (10, st(1, 100, 0), Some(1_000_000_000)),
                (11, st(10, 0, 0), Some(4_000_000)),
            ],
        };
        let b = CpuSnap {
            procs: vec![(10, st(1, 100, 1), Some(1_000_000_000))],
        };
        assert!((cpu_delta(&a, &b) - 0.01).abs() < 1e-9);
    }

    fn spread(median: f64, lo: f64, hi: f64) -> Spread {
        Spread {
            median,
            lo,
            hi,
            rounds: 3,
        }
    }

    #[test]
    fn verdicts_need_the_ranges_to_be_apart() {
        let a = spread(110.0, 105.0, 115.0);
        assert_eq!(at_least(a, spread(100.0, 95.0, 104.0)), Verdict::Meets);
        assert_eq!(at_least(a, spread(100.0, 95.0, 105.0)), Verdict::Meets);
        assert_eq!(at_least(a, spread(100.0, 95.0, 106.0)), Verdict::Unresolved);
        assert_eq!(at_least(a, spread(120.0, 116.0, 130.0)), Verdict::Misses);
        // Medians on the wrong side but ranges overlapping: still unresolved.
        assert_eq!(
            at_least(a, spread(112.0, 100.0, 130.0)),
            Verdict::Unresolved
        );
        // Latency: lower is better.
        assert_eq!(at_most(a, spread(130.0, 116.0, 140.0)), Verdict::Meets);
        assert_eq!(at_most(a, spread(100.0, 90.0, 104.0)), Verdict::Misses);
        assert_eq!(at_most(a, spread(110.0, 100.0, 120.0)), Verdict::Unresolved);
    }

    #[test]
    fn comparison_cells_show_verdict_ratio_and_single_rounds() {
        let c = compare_cell(
            Some(spread(120.0, 118.0, 125.0)),
            Some(spread(100.0, 90.0, 110.0)),
            true,
        );
        assert_eq!(c, "✔ meets 1.20x");
        let c = compare_cell(
            Some(spread(95.0, 90.0, 105.0)),
            Some(spread(100.0, 90.0, 110.0)),
            true,
        );
        assert_eq!(c, "≈ unresolved on noise 0.95x");
        let one = Spread {
            median: 50.0,
            lo: 50.0,
            hi: 50.0,
            rounds: 1,
        };
        let c = compare_cell(Some(one), Some(spread(100.0, 90.0, 110.0)), false);
        assert_eq!(c, "✔ meets 0.50x (1 round: spread unknown)");
        assert_eq!(compare_cell(None, Some(one), true), "—");
        // 0.9x direct.
        let floor = spread(1000.0, 950.0, 1100.0).scaled(0.9);
        assert_eq!((floor.lo, floor.hi), (855.0, 990.0));
    }

    #[test]
    fn aggregate_keeps_median_range_and_spread() {
        let raw: Vec<Value> = [3000.0, 1000.0, 2000.0]
            .iter()
            .enumerate()
            .map(|(i, rps)| {
                let rss = [900, 500, 700][i];
                json!({"mode": "rps", "upstream": "stub", "front": "socat", "test": "ping_c1",
                       "round": (i + 1).to_string(), "ok": 10, "rps": rps,
                       "p99_us": 100.0 * (i + 1) as f64, "proxy_procs": 2 + i,
                       "proxy_tree_rss_kb": rss, "errors": i})
            })
            .collect();
        let agg = aggregate(&raw);
        assert_eq!(agg.len(), 1);
        let v = &agg[0];
        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap();
        assert_eq!(f("rps"), 2000.0);
        assert_eq!((f("rps_min"), f("rps_max")), (1000.0, 3000.0));
        assert_eq!(
            (f("p99_us_min"), f("p99_us"), f("p99_us_max")),
            (100.0, 200.0, 300.0)
        );
        assert!((f("spread") - 2.0).abs() < 1e-9);
        // Memory of a process tree: the largest round, not the median.
        assert_eq!((f("proxy_procs"), f("proxy_tree_rss_kb")), (4.0, 900.0));
        assert_eq!(f("errors"), 3.0);
        assert_eq!(f("rounds"), 3.0);
        let r = find_range(Some(v), "rps").unwrap();
        assert_eq!(
            (r.median, r.lo, r.hi, r.rounds),
            (2000.0, 1000.0, 3000.0, 3)
        );
    }

    #[test]
    fn the_report_states_the_targets_and_verdicts() {
        let mut lines = Vec::new();
        let fronts = [
            ("direct", 1000.0, 50.0),
            ("socat", 500.0, 100.0),
            ("haproxy", 400.0, 200.0),
            ("haproxy-ka", 450.0, 150.0),
            ("sockwarden", 600.0, 120.0),
        ];
        for round in 1..=3 {
            let wobble = f64::from(round) * 10.0;
            for (front, rps, p99) in fronts {
                lines.push(json!({"mode": "rps", "upstream": "stub", "front": front,
                    "test": "ping_c1", "desc": "`GET /_ping` c=1", "round": round.to_string(),
                    "ok": 100, "rps": rps + wobble, "p50_us": p99 / 2.0, "p99_us": p99,
                    "proxy_cpu_us_per_req": 12.5, "proxy_procs": round + 1,
                    "proxy_tree_rss_kb": 8192 * round, "proxy_tree_pss_kb": 1024 * round}));
                let mib = if front == "sockwarden" { 880.0 } else { 1000.0 };
                lines.push(json!({"mode": "hijack", "upstream": "stub", "front": front,
                    "test": "exec_down", "desc": "exec down", "round": round.to_string(),
                    "ok": 1, "mib_s": mib + wobble}));
            }
        }
        lines.push(
            json!({"mode": "rss", "upstream": "stub", "front": "sockwarden",
                          "vmhwm_kb": 12288, "restarted": false}),
        );
        lines.push(json!({"mode": "rss", "upstream": "stub", "front": "socat",
                          "vmhwm_kb": 1024, "restarted": false}));
        lines.push(json!({"mode": "note", "upstream": "stub", "text": "no attach cells"}));
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let path =
            std::env::temp_dir().join(format!("loadgen-report-{}.jsonl", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let out = report(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.contains("Issue 15 targets for `sockwarden` on `stub`"),
            "{out}"
        );
        // 610..630 (median 620) against socat's 510..530 (520): met; p99 120 against haproxy's 200: met; against
        // haproxy-ka's 150: met.
        assert!(
            out.contains("| `GET /_ping` c=1 | ✔ meets 1.19x | ✔ meets 1.48x | ✔ meets 1.32x | ✔ meets 0.60x | ✔ meets 0.80x | 12.5 / 12.5 / 12.5 / 12.5 |"),
            "{out}"
        );
        // 890..910 against 0.9x direct = 909..927: the ranges overlap.
        assert!(
            out.contains(
                "| exec down | 900 (890–910) | 918 (909–927) | ≈ unresolved on noise 0.98x |"
            ),
            "{out}"
        );
        assert!(
            out.contains("Peak RSS of `sockwarden` (VmHWM): 12.0 MiB, target < 32 MiB: ✔ meets.")
        );
        assert!(
            out.contains("| `GET /_ping` c=1 — req/s min–max over rounds | 1010–1030 | 510–530 |"),
            "{out}"
        );
        assert!(out.contains("Note: no attach cells."));
        // A forking front's memory is its tree's largest Pss sum (round 3: 4 processes).
        assert!(out.contains("| 3.0 (Pss, 4 processes) |"), "{out}");
    }
}
