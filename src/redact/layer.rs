//! The response redaction layer: a policy with `redact_env = true` sees container and image
//! inspect results with the values of `Env` replaced (`PASSWORD=<redacted>`), so a dashboard
//! that needs inspect never receives the credentials passed to containers. Only those two
//! small JSON responses are read whole; every other response streams through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tower::{Layer, Service};

use crate::body::{self, ProxyBody};
use crate::error::{BoxError, ProxyError};
use crate::policy::layer::Authorized;

/// Largest inspect response sockwarden rewrites; a larger one is refused rather than leaked.
const REDACT_LIMIT: usize = 8 << 20;

/// What replaces each value.
pub const REDACTED: &str = "<redacted>";

/// Adds [`Redact`] in front of a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactLayer;

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Redact<S> {
        Redact { inner }
    }
}

/// Rewrites inspect responses for policies that redact.
#[derive(Clone, Debug)]
pub struct Redact<S> {
    inner: S,
}

type RedactFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, BoxError>> + Send>>;

impl<S> Service<Request<ProxyBody>> for Redact<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = RedactFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> RedactFuture {
        let redact = request
            .extensions()
            .get::<Authorized>()
            .is_some_and(|a| a.policy.redact_env && a.operation.info.redacts_env);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            if !redact || response.status() != StatusCode::OK {
                return Ok(response);
            }
            redact_response(response).await.map_err(Into::into)
        })
    }
}

async fn redact_response(response: Response<ProxyBody>) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    let bytes = Limited::new(body, REDACT_LIMIT)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream(format!("inspect response not redactable: {e}")))?
        .to_bytes();
    let mut document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::BadUpstream(format!("inspect response is not JSON: {e}")))?;
    super::inspect_env(&mut document);
    let text = serde_json::to_vec(&document)
        .map_err(|e| ProxyError::BadUpstream(format!("cannot write redacted response: {e}")))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(
        parts,
        body::boxed(Full::new(Bytes::from(text))),
    ))
}
