//! `loadgen hijack`: one exec start or attach with `Upgrade: tcp`, as the docker CLI sends
//! it, then `--size` bytes through the hijacked stream, up (stdin) or down (the container's
//! multiplexed output, counted by stdcopy frames).

use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::accounting::{cpu_delta, cpu_snapshot, MemWatch};
use crate::transfer::{transfer_line, Transfer};
use crate::{BoxError, Direction, HijackArgs, HijackKind, CHUNK};

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

pub(crate) async fn run_hijack(a: HijackArgs) -> Result<Value, BoxError> {
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
}
