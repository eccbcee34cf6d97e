//! The authorization layer: normalizes the request, classifies it into an operation, asks the
//! client's policy, and either refuses (403, naming policy and rule) or passes the request on
//! with its [`Authorized`] facts for the inspection layer, the forwarder and the audit.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response, Uri};
use tower::{Layer, Service};

use super::{Authority, Decision, Policy, Reason, RequestFacts};
use crate::body::ProxyBody;
use crate::context::{Trail, Verdict};
use crate::error::{BoxError, ProxyError};
use crate::layer_future::LayerFuture;
use crate::refusal::{Refusal, RefusalKind};
use crate::route::{self, Normalized, Operation, Reading};

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
    /// The decision: an allow, or (in audit mode) a refusal that is only recorded.
    pub decision: Decision,
    /// The policy, for inspection settings.
    pub policy: Arc<Policy>,
    /// The client or its policy is in audit mode: refusals are recorded, not enforced.
    pub dry_run: bool,
    /// The policy refuses this request, but `dry_run` lets it through (`would-deny`).
    pub would_deny: bool,
    /// The cgroup sockwarden prepared for this classic build and wrote into its query as
    /// `cgroupparent` (see `crate::buildcgroup`); `None` for everything else.
    pub build_cgroup: Option<Arc<str>>,
}

/// Adds [`Authorize`] in front of a service. It decides with the configuration snapshot the
/// request arrived under (its [`Caller`]), so a reload never changes a request midway.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizeLayer;

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize { inner }
    }
}

/// Refuses what the client's policy does not allow.
#[derive(Clone, Debug)]
pub struct Authorize<S> {
    inner: S,
}

impl<S> Service<Request<ProxyBody>> for Authorize<S>
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

    fn call(&mut self, mut request: Request<ProxyBody>) -> Self::Future {
        let caller = crate::context::caller(request.extensions()).cloned();
        let trail = request.extensions().get::<Arc<Trail>>().cloned();
        // The audit trail already has the client: the audit layer took it from the same Caller.
        let client = caller.as_ref().and_then(|c| c.client.clone());
        let empty = Authority::default();
        let authority = caller
            .as_ref()
            .map_or(&empty, |c| c.runtime.authority.as_ref());
        // Framing the raw bytes showed to be ambiguous (listener::framing): refused before
        // anything else, as the other parser-disagreement refusals of normalization are.
        let framing = request
            .extensions()
            .get::<crate::context::Arrival>()
            .and_then(|a| a.framing.refusal())
            .map(ProxyError::BadRequest);
        // The request as the daemon reads it, read once: the trail notes it before anything
        // is decided, so a refused request's record names what it asked for without reading
        // it again.
        // The audit layer read it first (its span names the operation); a stack without one
        // reads it here.
        let read = match trail.as_ref().and_then(|t| t.facts().reading.take()) {
            Some(reading) => Ok((reading.normalized, reading.operation)),
            None => read_request(request.method(), request.uri()),
        };
        if let (Some(trail), Ok((normalized, operation))) = (&trail, &read) {
            trail.note_request(normalized.clone(), operation.clone());
        }
        let decided = match framing {
            Some(refusal) => Err(refusal),
            None => read.and_then(|(normalized, operation)| {
                decide(
                    authority,
                    client,
                    request.method(),
                    request.headers(),
                    normalized,
                    operation,
                )
            }),
        };
        match decided {
            Ok(authorized) => {
                if let Some(trail) = &trail {
                    note(trail, &authorized);
                }
                request.extensions_mut().insert(authorized);
                LayerFuture::inner(self.inner.call(request))
            }
            Err(refusal) => {
                let body = std::mem::replace(request.body_mut(), crate::body::empty());
                LayerFuture::boxed(async move {
                    crate::body::drain_refused(body).await;
                    Err(refusal.into())
                })
            }
        }
    }
}

/// Puts the decision into the audit trail (the request itself is already there).
fn note(trail: &Trail, authorized: &Authorized) {
    let verdict = if authorized.would_deny {
        Verdict::WouldDeny
    } else {
        Verdict::Allow
    };
    trail.note_decision(
        verdict,
        authorized.decision.policy.clone(),
        authorized.decision.rule.clone(),
        authorized.decision.reason.clone(),
    );
}

/// Normalizes and classifies a request: what the daemon will read, and what it does. Done
/// once per request (also by `explain`); [`decide`] takes the result.
pub fn read_request(
    method: &Method,
    uri: &Uri,
) -> Result<(Arc<Normalized>, Arc<Operation>), ProxyError> {
    let reading = Reading::of(method, uri).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    Ok((reading.normalized, reading.operation))
}

/// The decision for one request, or the refusal to answer with. A client or policy in audit
/// mode gets `Ok` with `would_deny` set where the policy refuses.
pub fn authorize(
    authority: &Authority,
    client: Option<Arc<str>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Authorized, ProxyError> {
    let (normalized, operation) = read_request(method, uri)?;
    decide(authority, client, method, headers, normalized, operation)
}

/// [`authorize`] for a request already read ([`read_request`]).
pub fn decide(
    authority: &Authority,
    client: Option<Arc<str>>,
    method: &Method,
    headers: &HeaderMap,
    normalized: Arc<Normalized>,
    operation: Arc<Operation>,
) -> Result<Authorized, ProxyError> {
    route::check_content_type(headers).map_err(|e| ProxyError::BadRequest(e.to_string()))?;
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
    let dry_run = client.as_deref().is_some_and(|c| authority.dry_run(c));
    match (decision.allowed || dry_run, client, policy) {
        (true, Some(client), Some(policy)) => Ok(Authorized {
            client,
            method: method.clone(),
            normalized,
            operation,
            would_deny: !decision.allowed,
            decision,
            policy,
            dry_run,
            build_cgroup: None,
        }),
        _ => {
            let kind = match decision.reason {
                Reason::Refused(_, kind) => kind,
                // A client without a policy: the engine refuses it, so this is not reached.
                Reason::Allowed(_) | Reason::Text(_) => RefusalKind::NoClient,
            };
            Err(ProxyError::Denied(Box::new(Refusal {
                operation: operation.name,
                method: method.clone(),
                path: normalized.path.clone(),
                policy: decision.policy,
                rule: decision.rule,
                kind,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::audit::Audit;

    /// A trail carrying the audit layer's reading of `GET target`.
    fn trail_reading(audit: &Audit, target: &str) -> Arc<Trail> {
        let uri: Uri = target.parse().unwrap();
        let trail = Trail::for_test(audit, Method::GET, uri.clone());
        trail.facts().reading = Some(Reading::of(&Method::GET, &uri).unwrap());
        Arc::new(trail)
    }

    /// The authorize layer decides on the reading the audit layer handed it in the trail (read
    /// once per request), takes it, and notes it; without one it reads the request itself.
    #[tokio::test]
    async fn decides_on_the_reading_the_trail_carries() {
        let audit = Audit::quiet();
        let inner = tower::service_fn(|_: Request<ProxyBody>| async {
            Ok::<_, BoxError>(Response::new(crate::body::empty()))
        });
        let mut service = AuthorizeLayer.layer(inner);
        for (carried, target, noted) in [
            // A reading in the trail wins over reading the request again: proof it is used.
            (Some("/v1.41/containers/json"), "/_ping", "container.list"),
            (None, "/v1.41/images/json", "image.list"),
        ] {
            let trail = match carried {
                Some(read) => trail_reading(&audit, read),
                None => {
                    let t = trail_reading(&audit, target);
                    t.facts().reading = None;
                    t
                }
            };
            let mut request = Request::get(target).body(crate::body::empty()).unwrap();
            request.extensions_mut().insert(trail.clone());
            // No caller: the empty authority refuses; what was read is noted all the same.
            let _ = service.call(request).await;
            let facts = trail.facts();
            assert!(facts.reading.is_none(), "{target}: the reading is taken");
            assert_eq!(
                facts.operation.as_ref().map(|o| o.name),
                Some(noted),
                "{target}"
            );
        }
    }
}
