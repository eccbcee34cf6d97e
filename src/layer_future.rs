//! The future of a request layer whose fast path only passes the request on: the inner
//! service's own future, unboxed, so that a request no layer acts on allocates no future per
//! layer; the layer's own work (a refusal, an inspected body, a rewritten answer) is boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::body::ProxyBody;
use crate::error::BoxError;

/// A layer's own work, boxed: taken only where the layer does something (a refusal, an
/// inspected body, a rewritten answer).
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, BoxError>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of a layer whose fast path passes the request on: the inner service's own
    /// future (no allocation), or the layer's boxed work.
    #[project = LayerFutureProj]
    pub enum LayerFuture<F> {
        /// The inner service answers; the layer only converts its error.
        Inner { #[pin] future: F },
        /// The layer's own work.
        Boxed { future: BoxFuture },
    }
}

impl<F> LayerFuture<F> {
    /// The inner service's future, passed through.
    pub fn inner(future: F) -> Self {
        LayerFuture::Inner { future }
    }

    /// The layer's own work, boxed.
    pub fn boxed(
        future: impl Future<Output = Result<Response<ProxyBody>, BoxError>> + Send + 'static,
    ) -> Self {
        LayerFuture::Boxed {
            future: Box::pin(future),
        }
    }
}

impl<F, E> Future for LayerFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ProxyBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LayerFutureProj::Inner { future } => future.poll(cx).map_err(Into::into),
            LayerFutureProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}
