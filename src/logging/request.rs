//! The request span of the diagnostic log (`request{id=.. op=..}`), made only when a line is
//! written in it.
//!
//! Every line logged about a request carries its id (the audit record's) and operation in a
//! `request` span. A `tracing` span is not free, though: creating one formats its fields into
//! the subscriber's storage, and entering and leaving it on every poll dispatches to each
//! layer: ~6,500 instructions per request (callgrind, keep-alive `/_ping`, ~10 % of the whole
//! request), paid on every request although at the default level almost no request logs
//! anything. So:
//! - when debug lines are on (`RUST_LOG=sockwarden=debug` or any directive at debug or
//!   finer), a request gets its span at once, as any span, and everything inside it is
//!   logged in it;
//! - otherwise the request only notes its id and operation in a thread-local while its future
//!   is polled ([`InRequest`]), and the few lines written at info level and above inside a
//!   request are written through [`in_span`], which makes the span for that line, under the
//!   connection's span (made the same way, `super::conn`), and a hijacked session's span is
//!   made under [`parent`]. The lines read exactly as with the spans made at once.

use std::cell::Cell;
use std::fmt;
use std::future::Future;

use tracing::level_filters::LevelFilter;
use tracing::Span;

use super::scoped::{Scope, Scoped};

/// A request id as the audit log writes it: the process's prefix and the request's number,
/// `6b112bd1-00000001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    /// Differs between processes.
    pub prefix: u32,
    /// Counts the process's requests.
    pub number: u64,
}

impl RequestId {
    /// The id's text, `{prefix:08x}-{number:08x}`, written digit by digit: every request's id
    /// goes into its record and its response header, and `write!` with hex padding into a
    /// `String` cost ~1,270 instructions and an allocation per request.
    pub fn text(&self) -> IdText {
        let mut text = IdText {
            buf: [0; ID_TEXT_MAX],
            len: 0,
        };
        text.hex(u64::from(self.prefix));
        text.buf[text.len] = b'-';
        text.len += 1;
        text.hex(self.number);
        text
    }
}

/// Longest id text: 8 hex digits, a dash, 16 hex digits.
const ID_TEXT_MAX: usize = 8 + 1 + 16;

/// A request id's text, on the stack.
#[derive(Clone, Copy)]
pub struct IdText {
    buf: [u8; ID_TEXT_MAX],
    len: usize,
}

impl fmt::Debug for IdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl IdText {
    /// Appends `n` in lowercase hex, at least eight digits.
    fn hex(&mut self, n: u64) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let significant = (64 - n.leading_zeros() as usize).div_ceil(4);
        let width = significant.max(8);
        for i in 0..width {
            let shift = 4 * (width - 1 - i);
            self.buf[self.len + i] = DIGITS[((n >> shift) & 0xf) as usize];
        }
        self.len += width;
    }

    /// The text (`6b112bd1-00000007`).
    pub fn as_str(&self) -> &str {
        // Hex digits and a dash: always UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// What the request span shows.
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    id: RequestId,
    op: Option<&'static str>,
}

impl Tag {
    fn span(self) -> Span {
        match self.op {
            Some(op) => tracing::info_span!("request", id = %self.id, op),
            None => tracing::info_span!("request", id = %self.id),
        }
    }
}

thread_local! {
    /// The request whose future this thread is polling, when its span is not made yet.
    static CURRENT: Cell<Option<Tag>> = const { Cell::new(None) };
}

/// A request's place in the log, from its start to its answer.
#[derive(Debug)]
pub enum RequestLog {
    /// Its span, made at once (debug lines on).
    Made(Span),
    /// The request, whose span is made only for the lines that need it.
    Deferred(Tag),
}

impl RequestLog {
    /// The log of request `id` doing `op` (when the request could be read).
    pub fn new(id: RequestId, op: Option<&'static str>) -> RequestLog {
        RequestLog::made(id, op, LevelFilter::current() >= LevelFilter::DEBUG)
    }

    /// With its span made at once (`eager`) or only for the lines that need it.
    fn made(id: RequestId, op: Option<&'static str>, eager: bool) -> RequestLog {
        let tag = Tag { id, op };
        if eager {
            // Under the connection's span, made now if it is not yet.
            RequestLog::Made(super::conn::in_span(|| tag.span()))
        } else {
            RequestLog::Deferred(tag)
        }
    }

    /// `future`, polled inside the request.
    pub fn instrument<F: Future>(self, future: F) -> InRequest<F> {
        Scoped::new(self, future)
    }
}

impl Scope for RequestLog {
    /// Runs `f` inside the request.
    fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            RequestLog::Made(span) => {
                let _in_its_span = super::conn::leave();
                span.in_scope(f)
            }
            RequestLog::Deferred(tag) => {
                let _current = Current::enter(*tag);
                f()
            }
        }
    }
}

/// Sets [`CURRENT`] for a while, and puts back what was there however the while ends.
struct Current {
    previous: Option<Tag>,
}

impl Current {
    fn enter(tag: Tag) -> Current {
        Current {
            previous: CURRENT.with(|c| c.replace(Some(tag))),
        }
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// A future polled inside its request ([`RequestLog::instrument`]).
pub type InRequest<F> = Scoped<RequestLog, F>;

/// Runs `f` (which writes a log line) inside the current request's span, under its
/// connection's: each made for it when it has none yet. Outside a request, inside the
/// connection's span alone; when the spans exist (and are entered), `f` just runs. Every line
/// at info level and above that can be written while a client connection is served goes
/// through here.
pub fn in_span<R>(f: impl FnOnce() -> R) -> R {
    match CURRENT.with(Cell::get) {
        Some(tag) => super::conn::in_span(|| tag.span().in_scope(f)),
        None => super::conn::in_span(f),
    }
}

/// The span a task spawned by the current request (a hijacked session's relay) makes its own
/// span under: the request's, made now if it does not exist yet; outside a request, the
/// current span.
pub fn parent() -> Span {
    match CURRENT.with(Cell::get) {
        Some(tag) => super::conn::in_span(|| tag.span()),
        None => super::conn::in_span(Span::current),
    }
}

#[cfg(test)]
mod tests;
