//! A future polled inside its place in the diagnostic log: a client connection
//! (`super::conn`) or a request (`super::request`). Each place either has its span made at
//! once (debug lines on), entered around every poll, or only notes who it is in a thread-local
//! while polled; [`Scope`] is that choice, [`Scoped`] the future that applies it per poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A place in the log that code can run inside of.
pub trait Scope {
    /// Runs `f` inside this place: in its span, or with its tag noted for the lines that
    /// make the span when they need it.
    fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R;
}

pin_project_lite::pin_project! {
    /// `inner`, every poll of it run inside `scope`.
    pub struct Scoped<S, F> {
        #[pin]
        inner: F,
        scope: S,
    }
}

impl<S: Scope, F: Future> Scoped<S, F> {
    pub(super) fn new(scope: S, inner: F) -> Scoped<S, F> {
        Scoped { inner, scope }
    }
}

impl<S: Scope, F: Future> Future for Scoped<S, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        this.scope.in_scope(|| inner.poll(cx))
    }
}
