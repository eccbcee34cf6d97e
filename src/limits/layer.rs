//! The rate-limit layer: answers 429 to a client over its request rate, or on a connection
//! over its connection limit; everything else passes on.

use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower::{Layer, Service};

use crate::body::ProxyBody;
use crate::error::{BoxError, ProxyError};
use crate::layer_future::LayerFuture;
use crate::listener::Peer;

/// Adds [`RateLimit`] in front of a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimitLayer;

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit { inner }
    }
}

/// Answers 429 to a client over its request rate; everything else passes on.
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
}

impl<S> Service<Request<ProxyBody>> for RateLimit<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = LayerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        match limit_for(&request) {
            None => LayerFuture::inner(self.inner.call(request)),
            Some(refusal) => {
                // Read what the client is still sending, so that it reads the 429.
                let body = request.into_body();
                LayerFuture::boxed(async move {
                    crate::body::drain_refused(body).await;
                    Err(refusal.into())
                })
            }
        }
    }
}

/// The limit a request runs into, if any: its connection was over the client's connection
/// limit, or the client (under `isolation = "user"`: the unix user) is over its request rate.
fn limit_for(request: &Request<ProxyBody>) -> Option<ProxyError> {
    let caller = crate::context::caller(request.extensions())?;
    let client = caller.client.as_deref()?;
    let conn = crate::context::conn(request.extensions());
    let uid = match conn.map(|c| &c.peer) {
        Some(Peer::Unix { uid, .. }) => Some(*uid),
        _ => None,
    };
    if let Some(over) = conn.and_then(|c| c.over_limit) {
        let whose = match over.user {
            Some(uid) => format!("user {uid} of client {client}"),
            None => format!("client {client}"),
        };
        return Some(ProxyError::Limited {
            limit: crate::error::Limit::Connections,
            what: format!("{whose} is limited to {} concurrent connections", over.max),
            retry_after: Some(Duration::from_secs(1)),
        });
    }
    let exceeded = caller.runtime.limits.admit(client, uid).err()?;
    if let Some(trail) = request
        .extensions()
        .get::<std::sync::Arc<crate::context::Trail>>()
    {
        trail.note_rate_refusal(exceeded.record);
    }
    Some(ProxyError::Limited {
        limit: crate::error::Limit::Rate,
        what: match exceeded.user {
            Some(uid) => format!(
                "user {uid} of client {client} is limited to {} requests per second",
                exceeded.per_second
            ),
            None => format!(
                "client {client} is limited to {} requests per second",
                exceeded.per_second
            ),
        },
        retry_after: Some(exceeded.retry_after),
    })
}
