//! Ambiguous request framing, seen in the raw bytes of a connection.
//!
//! A request with both `Content-Length` and `Transfer-Encoding`, or with more than one
//! `Content-Length` header (even with equal values), is framed differently by different HTTP
//! parsers: the classic request-smuggling shape. sockwarden refuses such a request with `400`.
//!
//! **Why the raw bytes.** hyper 1.x's server parser (`proto/h1/role.rs`, `Server::parse`) hides
//! both cases from the service: with `Transfer-Encoding` present it removes every
//! `Content-Length` header from the `HeaderMap` (whichever comes first) and reads the body as
//! chunked; a second `Content-Length` with the same value is dropped before it reaches the
//! map (different values are a parse error, answered `400` by hyper itself). No `http1::Builder`
//! option changes this or exposes the original lines (`preserve_header_case` keeps a
//! crate-private map, and only for one of the two orders). So the request head as the client
//! sent it is only visible below hyper.
//!
//! [`FramingWatch`] wraps the connection's stream and watches the bytes hyper reads, without
//! changing them: it follows HTTP/1.1 message boundaries the way hyper does (empty lines before
//! a request line skipped, `LF` or `CRLF` line ends, a body framed by `Transfer-Encoding` when
//! present, else by `Content-Length`, else empty; hyper's strict chunked grammar), and for every
//! request head it records a [`Framing`] verdict in a per-connection queue. The connection's
//! service takes one verdict per request, in order (hyper serves a connection's requests one
//! at a time, and has always read a head before it calls the service), and the authorize layer
//! refuses an ambiguous one.
//!
//! When the watch cannot follow the stream (input hyper would refuse, a head larger than hyper
//! accepts, more unclaimed heads than a client can have in flight, or the raw bytes of an
//! upgraded connection, which no request follows) it stops for the rest of the connection;
//! a request after that gets [`Framing::Unverified`] and is refused too. hyper's framing stays
//! authoritative for forwarding (sockwarden re-frames every body it forwards), so this check
//! adds a refusal and never changes what is forwarded.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Larger than any head hyper accepts (its read buffer is at most ~400 KiB by default).
const MAX_HEAD: usize = 1 << 20;

/// More parsed but unclaimed heads than this means the bytes are not requests hyper will serve.
const MAX_PENDING: usize = 1024;

/// What the raw bytes said about one request's framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// One way to read the body's length.
    Clear,
    /// Two ways: the reason.
    Ambiguous(&'static str),
    /// The connection's bytes could not be followed up to this request.
    Unverified,
}

impl Framing {
    /// Why the request must be refused, if it must.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Framing::Clear => None,
            Framing::Ambiguous(why) => Some(format!(
                "refused a request with {why}: its body length can be read two ways"
            )),
            Framing::Unverified => Some(
                "refused a request whose framing could not be verified on this connection; open a new connection".into(),
            ),
        }
    }
}

/// The verdicts of one connection, in request order.
#[derive(Debug, Clone, Default)]
pub struct Verdicts(Arc<Mutex<Pending>>);

#[derive(Debug, Default)]
struct Pending {
    queue: VecDeque<Framing>,
    lost: bool,
}

impl Verdicts {
    /// An empty queue.
    pub fn new() -> Verdicts {
        Verdicts::default()
    }

    /// The verdict for the next request hyper hands to the service.
    pub fn next(&self) -> Framing {
        let mut p = self.lock();
        match p.queue.pop_front() {
            Some(v) => v,
            None => Framing::Unverified,
        }
    }

    fn push(&self, v: Framing) -> bool {
        let mut p = self.lock();
        if p.lost || p.queue.len() >= MAX_PENDING {
            p.lost = true;
            p.queue.clear();
            return false;
        }
        p.queue.push_back(v);
        true
    }

    fn lose(&self) {
        let mut p = self.lock();
        p.lost = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A stream whose reads are watched for ambiguous request framing (see the module docs).
#[derive(Debug)]
pub struct FramingWatch<S> {
    inner: S,
    scanner: Scanner,
}

impl<S> FramingWatch<S> {
    /// Watches `inner`, recording into `verdicts`.
    pub fn new(inner: S, verdicts: Verdicts) -> FramingWatch<S> {
        FramingWatch {
            inner,
            scanner: Scanner::new(verdicts),
        }
    }

    /// The connection, no longer watched (a hijacked session's: no more request heads).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FramingWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if let Some(new) = buf.filled().get(before..) {
                this.scanner.feed(new);
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FramingWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner

/// hyper's chunked decoder states (`proto/h1/decode.rs`), with the chunk size where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Body(u64),
    BodyCr,
    BodyLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

#[derive(Debug)]
enum State {
    /// Between messages: empty lines before a request line are skipped (httparse).
    Idle,
    /// A CR between messages; an LF must follow.
    IdleCr,
    /// Inside a request head.
    Head(Head),
    /// A body of known remaining length.
    Fixed(u64),
    /// A chunked body.
    Chunked(Chunk),
    /// Stopped following the stream.
    Lost,
}

#[derive(Debug, Default)]
struct Head {
    line: Vec<u8>,
    size: usize,
    request_line: bool,
    content_length: Vec<Vec<u8>>,
    transfer_encoding: usize,
}

#[derive(Debug)]
struct Scanner {
    state: State,
    verdicts: Verdicts,
}

impl Scanner {
    fn new(verdicts: Verdicts) -> Scanner {
        Scanner {
            state: State::Idle,
            verdicts,
        }
    }

    fn lose(&mut self) {
        self.state = State::Lost;
        self.verdicts.lose();
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Lost => return,
                State::Fixed(rem) => {
                    let n = skip(rem, bytes.len());
                    if *rem == 0 {
                        self.state = State::Idle;
                    }
                    n
                }
                State::Chunked(Chunk::Body(rem)) => {
                    let n = skip(rem, bytes.len());
                    if *rem == 0 {
                        self.state = State::Chunked(Chunk::BodyCr);
                    }
                    n
                }
                // A head is taken a line at a time, not byte by byte; a line that arrived
                // whole is read where it is (copied only when split between reads).
                State::Head(head) => {
                    let newline = memchr::memchr(b'\n', bytes);
                    let used = newline.map_or(bytes.len(), |i| i + 1);
                    head.size += used;
                    if head.size > MAX_HEAD {
                        return self.lose();
                    }
                    match newline {
                        Some(end) => self.end_of_line(bytes.get(..end).unwrap_or(&[])),
                        None => head.line.extend_from_slice(bytes),
                    }
                    used
                }
                _ => {
                    let (&b, _) = match bytes.split_first() {
                        Some(x) => x,
                        None => return,
                    };
                    self.byte(b)
                }
            };
            bytes = bytes.get(used..).unwrap_or(&[]);
        }
    }

    /// One byte outside a head or body; returns how many bytes it used (none when it starts
    /// a head, which the head's state then reads).
    fn byte(&mut self, b: u8) -> usize {
        let next = match std::mem::replace(&mut self.state, State::Lost) {
            State::Idle => match b {
                b'\n' => State::Idle,
                b'\r' => State::IdleCr,
                _ => {
                    self.state = State::Head(Head {
                        request_line: true,
                        ..Head::default()
                    });
                    return 0;
                }
            },
            State::IdleCr if b == b'\n' => State::Idle,
            State::Chunked(c) => match chunk_byte(c, b) {
                Some(Some(c)) => State::Chunked(c),
                Some(None) => State::Idle,
                None => State::Lost,
            },
            _ => State::Lost,
        };
        if matches!(next, State::Lost) {
            self.lose();
        } else {
            self.state = next;
        }
        1
    }

    /// A head's line is complete: what `head.line` holds of it followed by `rest` (the line's
    /// end, without its `\n`).
    fn end_of_line(&mut self, rest: &[u8]) {
        let State::Head(head) = std::mem::replace(&mut self.state, State::Lost) else {
            return self.lose();
        };
        match self.head_line(head, rest) {
            Some(state) => self.state = state,
            None => self.lose(),
        }
    }

    /// One complete line of a head; `None` when the stream cannot be followed.
    fn head_line(&mut self, mut head: Head, rest: &[u8]) -> Option<State> {
        let mut buffer = std::mem::take(&mut head.line);
        let whole: &[u8] = if buffer.is_empty() {
            rest
        } else {
            buffer.extend_from_slice(rest);
            &buffer
        };
        let line = whole.strip_suffix(b"\r").unwrap_or(whole);
        let next = self.read_line(&mut head, line);
        // The line buffer is reused for the head's next line.
        buffer.clear();
        head.line = buffer;
        match next? {
            Some(state) => Some(state),
            None => Some(State::Head(head)),
        }
    }

    /// Reads one head line into `head`: `Some(None)` to go on with the head, `Some(Some(s))`
    /// when the head ended and the stream goes on in state `s`, `None` when it cannot be
    /// followed.
    fn read_line(&mut self, head: &mut Head, line: &[u8]) -> Option<Option<State>> {
        if head.request_line {
            // METHOD SP target SP HTTP/1.x (httparse accepts nothing looser).
            let ok = (line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0"))
                && line.iter().filter(|c| **c == b' ').count() >= 2
                && !line.starts_with(b" ");
            if !ok {
                return None;
            }
            head.request_line = false;
            return Some(None);
        }
        if !line.is_empty() {
            let colon = line.iter().position(|c| *c == b':')?;
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or(&[]).trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                head.content_length.push(value.to_vec());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                head.transfer_encoding += 1;
            }
            return Some(None);
        }
        // End of the head: the verdict, then the body as hyper frames it.
        let verdict = if head.content_length.len() > 1 {
            Framing::Ambiguous("more than one Content-Length header")
        } else if !head.content_length.is_empty() && head.transfer_encoding > 0 {
            Framing::Ambiguous("both Content-Length and Transfer-Encoding")
        } else {
            Framing::Clear
        };
        if !self.verdicts.push(verdict) {
            return None;
        }
        if head.transfer_encoding > 0 {
            return Some(Some(State::Chunked(Chunk::Start)));
        }
        match head.content_length.first() {
            None => Some(Some(State::Idle)),
            Some(v) => match digits(v)? {
                0 => Some(Some(State::Idle)),
                n => Some(Some(State::Fixed(n))),
            },
        }
    }
}

/// Consumes up to `available` bytes of `rem`; returns how many.
fn skip(rem: &mut u64, available: usize) -> usize {
    let n = usize::try_from(*rem).map_or(available, |r| r.min(available));
    *rem -= n as u64;
    n
}

/// hyper's `Content-Length` reading: ASCII digits only, no sign, no overflow.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

fn hex(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

/// One byte of a chunked body: the next state, `Some(None)` at the end of the message, `None`
/// where hyper fails the body (and closes the connection).
fn chunk_byte(c: Chunk, b: u8) -> Option<Option<Chunk>> {
    let grow = |size: u64, d: u64| size.checked_mul(16)?.checked_add(d);
    let next = match (c, b) {
        (Chunk::Start, _) => Chunk::Size(hex(b)?),
        (Chunk::Size(s), b'\t' | b' ') => Chunk::SizeLws(s),
        (Chunk::Size(s) | Chunk::SizeLws(s), b';') => Chunk::Extension(s),
        (Chunk::Size(s) | Chunk::SizeLws(s) | Chunk::Extension(s), b'\r') => Chunk::SizeLf(s),
        (Chunk::Size(s), _) => Chunk::Size(grow(s, hex(b)?)?),
        (Chunk::SizeLws(s), b'\t' | b' ') => Chunk::SizeLws(s),
        (Chunk::Extension(_), b'\n') => return None,
        (Chunk::Extension(s), _) => Chunk::Extension(s),
        (Chunk::SizeLf(0), b'\n') => Chunk::EndCr,
        (Chunk::SizeLf(s), b'\n') => Chunk::Body(s),
        (Chunk::BodyCr, b'\r') => Chunk::BodyLf,
        (Chunk::BodyLf, b'\n') => Chunk::Start,
        (Chunk::EndCr, b'\r') => Chunk::EndLf,
        (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
        (Chunk::EndCr | Chunk::Trailer, _) => Chunk::Trailer,
        (Chunk::TrailerLf, b'\n') => Chunk::EndCr,
        (Chunk::EndLf, b'\n') => return Some(None),
        _ => return None,
    };
    Some(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(chunks: &[&[u8]]) -> (Vec<Framing>, bool) {
        let v = Verdicts::new();
        let mut s = Scanner::new(v.clone());
        for c in chunks {
            s.feed(c);
        }
        let p = v.lock();
        (p.queue.iter().cloned().collect(), p.lost)
    }

    fn one_by_one(raw: &[u8]) -> (Vec<Framing>, bool) {
        let parts: Vec<&[u8]> = raw.chunks(1).collect();
        verdicts(&parts)
    }

    const AMB_BOTH: Framing = Framing::Ambiguous("both Content-Length and Transfer-Encoding");
    const AMB_DUP: Framing = Framing::Ambiguous("more than one Content-Length header");

    #[test]
    fn framing_verdicts() {
        use Framing::Clear;
        let cases: Vec<(&str, &[u8], Vec<Framing>, bool)> = vec![
            ("get", b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n", vec![Clear], false),
            ("bare LF", b"GET /_ping HTTP/1.1\nHost: d\n\n", vec![Clear], false),
            ("leading empty lines", b"\r\n\nGET / HTTP/1.1\r\n\r\n", vec![Clear], false),
            (
                "pipelined with bodies",
                b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.0\r\n\r\n",
                vec![Clear, Clear, Clear],
                false,
            ),
            (
                "body that looks like a head",
                b"POST /a HTTP/1.1\r\nContent-Length: 56\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
                vec![Clear, Clear],
                false,
            ),
            ("CL then TE", b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", vec![AMB_BOTH], false),
            ("TE then CL", b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n", vec![AMB_BOTH], false),
            ("equal CLs", b"POST / HTTP/1.1\r\nContent-Length: 2\r\nCONTENT-LENGTH: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n", vec![AMB_DUP, Clear], false),
            ("CL list", b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab", vec![Clear], true),
            ("not HTTP", b"\x16\x03\x01\x02\x00\n", vec![], true),
            ("lone CR", b"\rGET / HTTP/1.1\r\n\r\n", vec![], true),
            ("header without colon", b"GET / HTTP/1.1\r\nHost d\r\n\r\n", vec![], true),
            ("bad chunk", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", vec![Clear], true),
            ("extension with LF", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nx\r\n", vec![Clear], true),
            ("text after an upgrade", b"GET /x HTTP/1.1\r\nUpgrade: tcp\r\n\r\nhello\n\nworld\n", vec![Clear], true),
        ];
        for (name, raw, want, lost) in cases {
            assert_eq!(verdicts(&[raw]), (want.clone(), lost), "{name} (whole)");
            // Lines read in place and lines put together from pieces, in every mix.
            for i in 0..=raw.len() {
                let (a, b) = raw.split_at(i);
                assert_eq!(
                    verdicts(&[a, b]),
                    (want.clone(), lost),
                    "{name} (cut at {i})"
                );
                for j in i..=raw.len() {
                    let (b, c) = raw[i..].split_at(j - i);
                    assert_eq!(
                        verdicts(&[a, b, c]),
                        (want.clone(), lost),
                        "{name} (cut at {i} and {j})"
                    );
                }
            }
            assert_eq!(one_by_one(raw), (want, lost), "{name} (byte by byte)");
        }
    }

    #[test]
    fn a_head_longer_than_the_limit_stops_the_watch() {
        // A head of exactly MAX_HEAD bytes is read; one byte more is not, whole or in pieces.
        let start = b"GET / HTTP/1.1\r\nX: ";
        let end = b"\r\n\r\n";
        for (extra, lost) in [(0, false), (1, true)] {
            let mut raw = start.to_vec();
            raw.resize(MAX_HEAD - end.len() + extra, b'a');
            raw.extend_from_slice(end);
            let want = if lost { vec![] } else { vec![Framing::Clear] };
            assert_eq!(
                verdicts(&[&raw]),
                (want.clone(), lost),
                "whole, {extra} over"
            );
            let pieces: Vec<&[u8]> = raw.chunks(4096).collect();
            assert_eq!(verdicts(&pieces), (want, lost), "in pieces, {extra} over");
        }
    }

    #[test]
    fn lost_connections_are_unverified() {
        let v = Verdicts::new();
        let mut s = Scanner::new(v.clone());
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(v.next(), Framing::Clear);
        assert_eq!(v.next(), Framing::Unverified);
        s.feed(b"garbage\r\n\r\n");
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(v.next(), Framing::Unverified);
        assert!(Framing::Unverified.refusal().is_some());
        assert!(Framing::Clear.refusal().is_none());
    }

    #[test]
    fn too_many_pending_heads_stop_the_watch() {
        let v = Verdicts::new();
        let mut s = Scanner::new(v.clone());
        for _ in 0..=MAX_PENDING {
            s.feed(b"GET / HTTP/1.1\r\n\r\n");
        }
        assert_eq!(v.next(), Framing::Unverified);
    }

    #[test]
    fn large_bodies_are_skipped_in_bulk() {
        let v = Verdicts::new();
        let mut s = Scanner::new(v.clone());
        s.feed(b"PUT /x HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n");
        let block = vec![b'\n'; 1 << 16];
        for _ in 0..152 {
            s.feed(&block);
        }
        s.feed(&vec![b'x'; 10_000_000 - 152 * (1 << 16)]);
        s.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(v.next(), Framing::Clear);
        assert_eq!(v.next(), Framing::Clear);
    }
}
