//! One debug event per request: method, path, status, duration and bytes each way, emitted when
//! the response body has been fully sent (or the client went away). Costs nothing when debug
//! logging is off: the bodies are then not even wrapped.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::{self, EndOfBody, Observed, ProxyBody};

/// Adds [`AccessLog`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// Logs each request once its response is complete.
#[derive(Clone, Debug)]
pub struct AccessLog<S> {
    inner: S,
}

type LogFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

impl<S> Service<Request<ProxyBody>> for AccessLog<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = LogFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> LogFuture {
        if !tracing::enabled!(target: "sockwarden::access", tracing::Level::DEBUG) {
            return Box::pin(self.inner.call(request));
        }
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let bytes_in = Arc::new(AtomicU64::new(0));
        let request = request.map(|b| body::boxed(Observed::new(b, bytes_in.clone(), |_| {})));
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let status = response.status().as_u16();
            let bytes_out = Arc::new(AtomicU64::new(0));
            let counted = bytes_out.clone();
            let on_end = move |end: EndOfBody| {
                tracing::debug!(
                    target: "sockwarden::access",
                    %method,
                    path,
                    status,
                    duration_us = started.elapsed().as_micros() as u64,
                    bytes_in = bytes_in.load(Ordering::Relaxed),
                    bytes_out = counted.load(Ordering::Relaxed),
                    end = end.as_str(),
                    "request"
                );
            };
            Ok(response.map(|b| body::boxed(Observed::new(b, bytes_out, on_end))))
        })
    }
}
