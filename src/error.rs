//! Errors on the request path and how they reach a client.
//!
//! Every failure becomes a response in the Docker daemon's own error shape,
//! `{"message": "..."}`, so the docker CLI prints it as `Error response from daemon: ...`.
//! The outermost service is infallible toward hyper: a service error would make hyper drop
//! the connection without writing anything.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::body::ProxyBody;

/// A boxed error, as tower and hyper pass them around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why sockwarden answered a request itself instead of forwarding the daemon's answer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request is malformed or ambiguous; it never reached the daemon.
    #[error("{0}")]
    BadRequest(String),
    /// The daemon could not be reached or failed before answering.
    #[error("cannot reach the Docker daemon at {addr}: {detail}")]
    Upstream {
        /// The daemon's configured address.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// The client's policy refuses the request.
    #[error("{what} refused: {reason} (policy {policy}, rule {rule})")]
    Denied {
        /// The operation and request line.
        what: String,
        /// Why.
        reason: String,
        /// The policy consulted.
        policy: String,
        /// The rule (or inspection setting) that refused.
        rule: String,
    },
    /// The daemon answered in a way sockwarden will not relay.
    #[error("unexpected answer from the Docker daemon: {0}")]
    BadUpstream(String),
}

impl ProxyError {
    /// The HTTP status a client sees for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Denied { .. } => StatusCode::FORBIDDEN,
            ProxyError::Upstream { .. } | ProxyError::BadUpstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// Renders the error as a Docker-shaped JSON response.
    pub fn into_response(self) -> Response<ProxyBody> {
        docker_error(self.status(), &format!("sockwarden: {self}"))
    }
}

/// A JSON error response exactly as the Docker daemon shapes its own.
pub fn docker_error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "message": message }).to_string() + "\n";
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Walks an error's source chain into one line, so a log or client message keeps the cause.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The outermost error boundary: any error of the inner layers becomes the response the client
/// sees, so the service handed to hyper never fails (hyper would drop the connection without an
/// answer). Errors that are not a [`ProxyError`] are logged and answered 500.
#[derive(Clone, Debug)]
pub struct Rescue<S> {
    inner: S,
    not_ready: Option<String>,
}

/// Adds [`Rescue`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RescueLayer;

impl<S> tower::Layer<S> for RescueLayer {
    type Service = Rescue<S>;

    fn layer(&self, inner: S) -> Rescue<S> {
        Rescue {
            inner,
            not_ready: None,
        }
    }
}

type RescueFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>>
            + Send,
    >,
>;

impl<S, R> tower::Service<R> for Rescue<S>
where
    S: tower::Service<R, Response = Response<ProxyBody>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = std::convert::Infallible;
    type Future = RescueFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            std::task::Poll::Ready(Err(e)) => {
                // Answered in `call`, which the caller makes next.
                self.not_ready = Some(chain(e.as_ref()));
                std::task::Poll::Ready(Ok(()))
            }
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(())),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn call(&mut self, request: R) -> RescueFuture {
        if let Some(reason) = self.not_ready.take() {
            tracing::error!(error = %reason, "service not ready");
            return Box::pin(std::future::ready(Ok(docker_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sockwarden: not ready",
            ))));
        }
        let future = self.inner.call(request);
        Box::pin(async move { Ok(rescue(future.await)) })
    }
}

/// Maps one result of the inner layers to the response the client sees.
fn rescue(result: Result<Response<ProxyBody>, BoxError>) -> Response<ProxyBody> {
    match result {
        Ok(response) => response,
        Err(err) => match err.downcast::<ProxyError>() {
            Ok(proxy_error) => {
                tracing::debug!(error = %proxy_error, "request answered by sockwarden");
                proxy_error.into_response()
            }
            Err(other) => {
                tracing::error!(error = %chain(other.as_ref()), "unexpected error on the request path");
                docker_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sockwarden: internal error",
                )
            }
        },
    }
}
