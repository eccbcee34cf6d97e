//! How sockwarden answers a request itself: every failure becomes a response in the Docker
//! daemon's own error shape, `{"message": "..."}`, so the docker CLI prints it as `Error
//! response from daemon: ...`. The outermost service is infallible toward hyper: a service
//! error would make hyper drop the connection without writing anything.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::body::ProxyBody;
use crate::error::{chain, BoxError, ProxyError};
use crate::logging::request::in_span;

impl ProxyError {
    /// Renders the error as a Docker-shaped JSON response.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let message = match self {
            ProxyError::Denied(refusal) => refusal.docker_message(),
            _ => None,
        };
        let message = message.unwrap_or_else(|| format!("sockwarden: {self}"));
        let mut response = docker_error(self.status(), &message);
        if let ProxyError::Limited {
            retry_after: Some(wait),
            ..
        } = self
        {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
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

pin_project_lite::pin_project! {
    /// [`Rescue`]'s future: the inner one's result, any error turned into its response.
    #[project = RescueFutureProj]
    pub enum RescueFuture<F> {
        /// The inner service was not ready: this answer.
        NotReady { response: Option<Response<ProxyBody>> },
        /// The inner service's answer, rescued; `h2c`: the request asked for h2c.
        Inner { #[pin] future: F, h2c: bool },
    }
}

impl<F> std::future::Future for RescueFuture<F>
where
    F: std::future::Future<Output = Result<Response<ProxyBody>, BoxError>>,
{
    type Output = Result<Response<ProxyBody>, std::convert::Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            RescueFutureProj::NotReady { response } => {
                std::task::Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    docker_error(StatusCode::SERVICE_UNAVAILABLE, "sockwarden: not ready")
                })))
            }
            RescueFutureProj::Inner { future, h2c } => {
                let response = rescue(std::task::ready!(future.poll(cx)));
                if *h2c {
                    warn_refused_h2c(&response);
                }
                std::task::Poll::Ready(Ok(response))
            }
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Rescue<S>
where
    S: tower::Service<http::Request<B>, Response = Response<ProxyBody>, Error = BoxError>,
{
    type Response = Response<ProxyBody>;
    type Error = std::convert::Infallible;
    type Future = RescueFuture<S::Future>;

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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(reason) = self.not_ready.take() {
            in_span(|| tracing::error!(error = %reason, "service not ready"));
            return RescueFuture::NotReady {
                response: Some(docker_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sockwarden: not ready",
                )),
            };
        }
        let h2c = asks_for_h2c(request.headers());
        RescueFuture::Inner {
            future: self.inner.call(request),
            h2c,
        }
    }
}

/// Whether a request asks to upgrade to h2c (BuildKit's `/session` and `/grpc`).
fn asks_for_h2c(headers: &http::HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("h2c"))
        })
    })
}

/// A client whose h2c upgrade fails shows only the status (`unable to upgrade to h2c,
/// received 403`), never sockwarden's message: the refusal and its reason go to the log at
/// warn level, inside the request's span.
fn warn_refused_h2c(response: &Response<ProxyBody>) {
    if let Some(error) = response.extensions().get::<ProxyError>() {
        in_span(|| {
            tracing::warn!(
                status = response.status().as_u16(),
                reason = %error,
                "h2c upgrade refused (the client shows only the status)"
            )
        });
    }
}

/// Maps one result of the inner layers to the response the client sees. A [`ProxyError`] also
/// travels in the response's extensions, for the audit layer outside to record.
fn rescue(result: Result<Response<ProxyBody>, BoxError>) -> Response<ProxyBody> {
    match result {
        Ok(response) => response,
        Err(err) => match err.downcast::<ProxyError>() {
            Ok(proxy_error) => {
                tracing::debug!(error = %proxy_error, "request answered by sockwarden");
                let mut response = proxy_error.to_response();
                response.extensions_mut().insert(*proxy_error);
                response
            }
            Err(other) => {
                in_span(
                    || tracing::error!(error = %chain(other.as_ref()), "unexpected error on the request path"),
                );
                docker_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sockwarden: internal error",
                )
            }
        },
    }
}
