//! `loadgen download` and `loadgen upload`: one big body streamed each way (never buffered;
//! an upload's body is generated on the fly, optionally as a one-file tar) → MiB/s, and the
//! JSON line of a transfer (also used by `hijack`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::accounting::{cpu_delta, cpu_snapshot, insert_memory, MemWatch, TreeMem};
use crate::client::{connect, drain};
use crate::line::{base_line, median};
use crate::{BoxError, Common, DownloadArgs, UploadArgs, CHUNK, MIB};

pub(crate) struct Transfer {
    pub(crate) bytes: u64,
    pub(crate) secs: f64,
    pub(crate) ttfb_s: f64,
    pub(crate) status: StatusCode,
    pub(crate) cpu_s: Option<f64>,
    pub(crate) memory: Option<TreeMem>,
}

pub(crate) async fn run_download(a: DownloadArgs) -> Result<Value, BoxError> {
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

pub(crate) async fn run_upload(a: UploadArgs) -> Result<Value, BoxError> {
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

pub(crate) fn transfer_line(
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
