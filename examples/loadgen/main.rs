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

mod accounting;
mod client;
mod hijack;
mod line;
mod paired;
mod report;
mod rps;
mod targets;
mod transfer;

use std::error::Error;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use http::Method;
use serde_json::Value;

use hijack::run_hijack;
use paired::run_paired;
use report::report;
use rps::run_rps;
use transfer::{run_download, run_upload};

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
