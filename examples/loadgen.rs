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
//! * `report`: turns the JSON lines of a whole run into the markdown tables of the benchmark.
//!
//! `--watch-pid PID` adds the CPU time that process (the proxy) spent during the measured
//! window, from `/proc/PID/stat`. `--tag key=value` copies labels into the JSON line.
//!
//! ```text
//! loadgen rps --socket /tmp/p.sock --path /_ping --concurrency 64 --duration 5
//! loadgen paired --socket /tmp/a.sock --against /tmp/b.sock --path /_ping -c 64 --duration 10
//! loadgen download --socket /tmp/p.sock --path '/v1.41/images/get?names=big'
//! loadgen upload --socket /tmp/p.sock --method PUT --path '/v1.41/containers/c1/archive?path=/tmp' \
//!     --size 512MiB --tar-name upload.bin
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

/// utime + stime of a process, in seconds (all its threads).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3. Units: USER_HZ, 100 on Linux.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
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

    let cpu = match a.common.watch_pid {
        Some(pid) => {
            tokio::time::sleep_until(measure_start).await;
            let c0 = cpu_seconds(pid);
            tokio::time::sleep_until(end).await;
            let c1 = cpu_seconds(pid);
            c0.zip(c1).map(|(c0, c1)| c1 - c0)
        }
        None => None,
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
    let c0 = pids.map(|p| p.and_then(cpu_seconds));
    tokio::time::sleep_until(end).await;
    let c1 = pids.map(|p| p.and_then(cpu_seconds));

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
        if let (Some(c0), Some(c1)) = (c0[f], c1[f]) {
            if n > 0 {
                // Each front is idle in the other's phases, so its CPU time is its requests'.
                m.insert(
                    format!("proxy_cpu_us_per_req_{name}"),
                    json!((c1 - c0) * 1e6 / n as f64),
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
        let c0 = a.common.watch_pid.and_then(cpu_seconds);
        let t0 = Instant::now();
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let ttfb = t0.elapsed();
        let status = resp.status();
        let mut body = resp.into_body();
        let bytes = drain(&mut body).await?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = a.common.watch_pid.and_then(cpu_seconds);
        runs.push(Transfer {
            bytes,
            secs,
            ttfb_s: ttfb.as_secs_f64(),
            status,
            cpu_s: c0.zip(c1).map(|(c0, c1)| c1 - c0),
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
        let c0 = a.common.watch_pid.and_then(cpu_seconds);
        let t0 = Instant::now();
        s.ready().await?;
        let resp = s.send_request(req).await?;
        let ttfb = t0.elapsed();
        let status = resp.status();
        let mut rbody = resp.into_body();
        drain(&mut rbody).await?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = a.common.watch_pid.and_then(cpu_seconds);
        runs.push(Transfer {
            bytes: len,
            secs,
            ttfb_s: ttfb.as_secs_f64(),
            status,
            cpu_s: c0.zip(c1).map(|(c0, c1)| c1 - c0),
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
    let ok = runs.iter().filter(|r| r.status.is_success()).count();
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
    if ok < runs.len() {
        m.insert("errors".into(), json!(runs.len() - ok));
    }
    Value::Object(m)
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
                }
                "download" | "upload" => {
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
                }
                _ => {}
            }
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
                "\nProxy cost on `{up}` (CPU time the proxy process used during the measured \
                 window; peak RSS = VmHWM of a fresh proxy process after all the runs above):\n"
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
                    "download" | "upload" => ("proxy_cpu_s_per_gib", "CPU s per GiB", |x| {
                        format!("{x:.2}")
                    }),
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
            let _ = write!(out, "| peak RSS (VmHWM), MiB |");
            for fr in &proxies {
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
