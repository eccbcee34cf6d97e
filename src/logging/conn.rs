//! The connection span of the diagnostic log (`conn{listener=.. peer=.. client=..}`), made
//! only when a line is written in it, as the request span is (`super::request`).
//!
//! Every line logged about a client connection, its requests and its hijacked sessions says
//! where it came from and who it is. Making the span formats those fields into the
//! subscriber's storage (~3,500 instructions per connection: the docker CLI makes one
//! connection per command), and entering and leaving it on every poll of the connection's task
//! dispatches to each layer (~600 instructions per request, callgrind). So, as for requests:
//! with debug lines on, the connection gets its span at once; otherwise it notes who it is in
//! a thread-local while its task is polled ([`InConn`]), and the few lines written at info
//! level and above go through [`super::request::in_span`], which makes the connection's span
//! (and the request's under it) for that line.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use tracing::level_filters::LevelFilter;
use tracing::Span;

use super::scoped::{Scope, Scoped};
use crate::listener::Peer;

/// What the connection span shows.
#[derive(Debug)]
pub struct ConnTag {
    listener: Arc<str>,
    peer: Peer,
    client: Option<Arc<str>>,
}

impl ConnTag {
    fn span(&self) -> Span {
        tracing::info_span!(
            "conn",
            listener = %self.listener,
            peer = %self.peer,
            client = self.client.as_deref().unwrap_or("-"),
        )
    }
}

thread_local! {
    /// The connection whose task this thread is polling, when its span is not made yet.
    static CURRENT: RefCell<Option<Arc<ConnTag>>> = const { RefCell::new(None) };
}

/// A client connection's place in the log.
#[derive(Debug)]
pub enum ConnLog {
    /// Its span, made at once (debug lines on).
    Made(Span),
    /// The connection, whose span is made only for the lines that need it.
    Deferred(Arc<ConnTag>),
}

impl ConnLog {
    /// The log of the connection from `peer` on `listener`, matched as `client`.
    pub fn new(listener: Arc<str>, peer: Peer, client: Option<Arc<str>>) -> ConnLog {
        ConnLog::made(
            ConnTag {
                listener,
                peer,
                client,
            },
            LevelFilter::current() >= LevelFilter::DEBUG,
        )
    }

    fn made(tag: ConnTag, eager: bool) -> ConnLog {
        if eager {
            ConnLog::Made(tag.span())
        } else {
            ConnLog::Deferred(Arc::new(tag))
        }
    }

    /// The span, when it is made already (to write debug lines in).
    pub fn span(&self) -> Option<&Span> {
        match self {
            ConnLog::Made(span) => Some(span),
            ConnLog::Deferred(_) => None,
        }
    }

    /// `future`, polled inside the connection.
    pub fn instrument<F: Future>(self, future: F) -> InConn<F> {
        Scoped::new(self, future)
    }
}

impl Scope for ConnLog {
    fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            ConnLog::Made(span) => span.in_scope(f),
            ConnLog::Deferred(tag) => {
                let _current = Current::enter(tag);
                f()
            }
        }
    }
}

/// Sets [`CURRENT`] for a while, and puts back what was there however the while ends.
struct Current {
    previous: Option<Arc<ConnTag>>,
}

impl Current {
    fn enter(tag: &Arc<ConnTag>) -> Current {
        Current {
            previous: CURRENT.with(|c| c.replace(Some(tag.clone()))),
        }
    }

    /// No connection noted while this lives (its span is entered instead).
    fn leave() -> Current {
        Current {
            previous: CURRENT.with(|c| c.replace(None)),
        }
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// A future polled inside its connection ([`ConnLog::instrument`]).
pub type InConn<F> = Scoped<ConnLog, F>;

/// Runs `f` inside the current connection's span, made for it when the connection has none
/// yet; outside a connection, or when its span exists (and is entered), `f` just runs.
pub(super) fn in_span<R>(f: impl FnOnce() -> R) -> R {
    let tag = CURRENT.with(|c| c.borrow().clone());
    match tag {
        Some(tag) => {
            // Not the connection's while `f` runs: a line inside writes in the span entered.
            let _outside = Current::leave();
            tag.span().in_scope(f)
        }
        None => f(),
    }
}

/// While the guard lives, lines are not given the connection's span: a span entered now
/// (a request's, made at once under the connection's) already has it.
pub(super) fn leave() -> impl Drop {
    Current::leave()
}

#[cfg(test)]
mod tests;
