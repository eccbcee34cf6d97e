//! The response redaction layer: for a policy with `redact_env = true`, the answers the
//! operation table marks (`redacts`) lose their secret values before the client sees them:
//! small JSON answers (inspects and lists) are read whole and rewritten, the event stream is
//! rewritten line by line as it passes, and a `top` whose `ps_args` could print process
//! environments is refused before it reaches the daemon. Every other response streams
//! through untouched.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tower::{Layer, Service};

use crate::body::{self, ProxyBody};
use crate::error::{BoxError, ProxyError};
use crate::inspect::Violation;
use crate::layer_future::LayerFuture;
use crate::policy::layer::Authorized;
use crate::refusal::{Refusal, RefusalKind};
use crate::route::{Answer, Redaction};

/// Largest single inspect answer sockwarden rewrites; a larger one is refused rather than
/// leaked.
const REDACT_LIMIT: usize = 8 << 20;

/// Largest list answer (volumes, services, tasks, plugins, history, disk usage) rewritten.
const REDACT_LIST_LIMIT: usize = 64 << 20;

/// What replaces each value.
pub const REDACTED: &str = "<redacted>";

/// The setting that turns redaction on, named by its refusals.
const SETTING: &str = "redact_env";

/// Adds [`Redact`] in front of a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactLayer;

impl<S> Layer<S> for RedactLayer {
    type Service = Redact<S>;

    fn layer(&self, inner: S) -> Redact<S> {
        Redact { inner }
    }
}

/// Rewrites answers for policies that redact.
#[derive(Clone, Debug)]
pub struct Redact<S> {
    inner: S,
}

/// The redaction a request's answer needs under its policy, if any.
fn redaction(authorized: &Authorized) -> Option<Redaction> {
    authorized
        .policy
        .redact_env
        .then_some(authorized.operation.info.redacts)
        .flatten()
}

/// Why the request must be refused because its answer could not be redacted (a `top` whose
/// `ps_args` could print environments), as an inspection violation naming `redact_env`. Also
/// used by `sockwarden explain`.
pub fn violation(authorized: &Authorized) -> Option<Violation> {
    if redaction(authorized) != Some(Redaction::PsArgs) {
        return None;
    }
    // The daemon reads the first value; every value must pass.
    authorized
        .normalized
        .query
        .pairs()
        .iter()
        .filter(|(k, _)| k == "ps_args")
        .find_map(|(_, v)| {
            super::ps_args::check(v).err().map(|why| Violation {
                field: "?ps_args".into(),
                reason: format!("{why}; ps output cannot be redacted ({SETTING})"),
                setting: Some(SETTING.into()),
                value: Some(v.clone()),
            })
        })
}

/// The refusal for a [`violation`]: 403 naming the policy and `POLICY.redact_env` as the rule.
pub fn refusal(authorized: &Authorized, violation: Violation) -> ProxyError {
    ProxyError::Denied(Box::new(Refusal {
        operation: authorized.operation.name,
        method: authorized.method.clone(),
        path: authorized.normalized.path.clone(),
        policy: Some(authorized.policy.name.clone()),
        rule: Arc::from(format!("{}.{SETTING}", authorized.policy.name)),
        kind: RefusalKind::Inspection(violation),
    }))
}

impl<S> Service<Request<ProxyBody>> for Redact<S>
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
        let authorized = request.extensions().get::<Authorized>();
        let redaction = authorized.and_then(redaction);
        // Refused in audit mode too: redaction protects answers, it is not a rule to try out.
        if let Some(refused) = authorized.and_then(|a| violation(a).map(|v| refusal(a, v))) {
            return LayerFuture::boxed(std::future::ready(Err(refused.into())));
        }
        let future = self.inner.call(request);
        // Nothing to redact (the policy does not ask for it, or the answer carries no secret
        // value): the answer passes untouched.
        let Some(redaction) = redaction else {
            return LayerFuture::inner(future);
        };
        LayerFuture::boxed(async move {
            let response = future.await.map_err(Into::into)?;
            if response.status() != StatusCode::OK {
                return Ok(response);
            }
            match redaction {
                Redaction::Answer(shape) => {
                    redact_answer(response, shape).await.map_err(Into::into)
                }
                Redaction::Events => Ok(redact_events(response)),
                Redaction::PsArgs => Ok(response),
            }
        })
    }
}

async fn redact_answer(
    response: Response<ProxyBody>,
    shape: Answer,
) -> Result<Response<ProxyBody>, ProxyError> {
    let limit = match shape {
        Answer::Container | Answer::Image | Answer::Exec => REDACT_LIMIT,
        _ => REDACT_LIST_LIMIT,
    };
    let (mut parts, body) = response.into_parts();
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream(format!("answer not redactable: {e}")))?
        .to_bytes();
    let mut document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::BadUpstream(format!("answer to redact is not JSON: {e}")))?;
    super::answer(shape, &mut document);
    let text = serde_json::to_vec(&document)
        .map_err(|e| ProxyError::BadUpstream(format!("cannot write redacted answer: {e}")))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(
        parts,
        body::boxed(Full::new(Bytes::from(text))),
    ))
}

/// The event stream, rewritten line by line as it passes (never collected).
fn redact_events(response: Response<ProxyBody>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body::boxed(super::events::RedactedEvents::new(body)))
}
