//! The authorization layer: normalizes the request, classifies it into an operation, asks the
//! client's policy, and either refuses (403, naming policy and rule) or passes the request on
//! with its [`Authorized`] facts for the inspection layer, the forwarder and the audit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response, Uri};
use tower::{Layer, Service};

use super::{Authority, Decision, Policy, RequestFacts};
use crate::body::ProxyBody;
use crate::error::{BoxError, ProxyError};
use crate::listener::ConnInfo;
use crate::route::{self, Normalized, Operation};

/// How long a refused client may take to finish sending its body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// What authorization established about a request; set once, read by inner layers.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The client's name.
    pub client: Arc<str>,
    /// The request method.
    pub method: Method,
    /// The request as the daemon will read it.
    pub normalized: Arc<Normalized>,
    /// What it does.
    pub operation: Arc<Operation>,
    /// The decision (always an allow here).
    pub decision: Decision,
    /// The policy, for inspection settings.
    pub policy: Arc<Policy>,
}

/// Adds [`Authorize`] in front of a service.
#[derive(Clone, Debug)]
pub struct AuthorizeLayer {
    authority: Arc<Authority>,
}

impl AuthorizeLayer {
    /// Decides with `authority`.
    pub fn new(authority: Arc<Authority>) -> AuthorizeLayer {
        AuthorizeLayer { authority }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            authority: self.authority.clone(),
        }
    }
}

/// Refuses what the client's policy does not allow.
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
    authority: Arc<Authority>,
}

type AuthorizeFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, BoxError>> + Send>>;

impl<S> Service<Request<ProxyBody>> for Authorize<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = AuthorizeFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> AuthorizeFuture {
        let client = request
            .extensions()
            .get::<ConnInfo>()
            .and_then(|info| info.client.clone());
        match authorize(
            &self.authority,
            client,
            request.method(),
            request.uri(),
            request.headers(),
        ) {
            Ok(authorized) => {
                request.extensions_mut().insert(authorized);
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
            Err(refusal) => {
                let body = std::mem::replace(request.body_mut(), crate::body::empty());
                Box::pin(async move {
                    crate::body::drain(body, crate::body::DRAIN_LIMIT, DRAIN_TIME).await;
                    Err(refusal.into())
                })
            }
        }
    }
}

/// The decision for one request, or the refusal to answer with.
pub fn authorize(
    authority: &Authority,
    client: Option<Arc<str>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Authorized, ProxyError> {
    let normalized =
        route::normalize(method, uri).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    route::check_content_type(headers).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    let operation = route::classify(method, &normalized.path, &normalized.query);
    let facts = RequestFacts {
        operation: operation.name,
        method,
        path: &normalized.path,
        query: normalized.query.pairs(),
    };
    let decision = authority.decide(client.as_deref(), &facts);
    let policy = client
        .as_deref()
        .and_then(|c| authority.policy_for(c))
        .cloned();
    match (decision.allowed, client, policy) {
        (true, Some(client), Some(policy)) => Ok(Authorized {
            client,
            method: method.clone(),
            normalized: Arc::new(normalized),
            operation: Arc::new(operation),
            decision,
            policy,
        }),
        _ => Err(ProxyError::Denied {
            what: format!("{} ({} {})", operation.name, method, normalized.path),
            reason: decision.reason.to_string(),
            policy: decision
                .policy
                .map(|p| p.to_string())
                .unwrap_or_else(|| "none".into()),
            rule: decision.rule.to_string(),
        }),
    }
}
