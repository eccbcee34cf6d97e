//! The audit layer: the outermost layer of the request path. It gives each request its
//! [`Trail`] and id, refuses requests while a fail-closed audit log cannot write, records what
//! sockwarden answered itself, and writes the request's record when its response is complete
//! (and a hijacked session's when it opens and closes).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use http::{header, HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::record::{write_line, Counts};
use super::{Audit, REQUEST_ID_HEADER};
use crate::body::{self, ByteCount, EndOfBody, Observed, ProxyBody};
use crate::context::{verdict, Facts, Trail};
use crate::error::ProxyError;
use crate::isolation::Tenant;
use crate::logging::request::{InRequest, RequestLog};
use crate::logging::scoped::Scope as _;
use crate::route::Reading;

/// Adds [`AuditLayer`]'s service around the request path.
#[derive(Clone, Debug)]
pub struct AuditLayer {
    audit: Audit,
}

impl AuditLayer {
    /// Records into `audit`.
    pub fn new(audit: Audit) -> AuditLayer {
        AuditLayer { audit }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> AuditService<S> {
        AuditService {
            inner,
            audit: self.audit.clone(),
        }
    }
}

/// Opens a [`Trail`] for each request and writes its record when the response is complete.
#[derive(Clone, Debug)]
pub struct AuditService<S> {
    inner: S,
    audit: Audit,
}

pin_project_lite::pin_project! {
    /// [`AuditService`]'s future: the inner service's answer (inside the request's span), then
    /// the response made ready for its record ([`respond`]).
    pub struct AuditFuture<F> {
        #[pin]
        state: AuditState<F>,
        // The request's trail, until the answer is there.
        done: Option<Arc<Trail>>,
    }
}

pin_project_lite::pin_project! {
    #[project = AuditStateProj]
    enum AuditState<F> {
        // Passed on to the inner layers.
        Admitted { #[pin] future: InRequest<F> },
        // Refused here (a fail-closed audit log that cannot write).
        Refused { future: Pin<Box<dyn Future<Output = Response<ProxyBody>> + Send>> },
    }
}

impl<F> Future for AuditFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.state.project() {
            AuditStateProj::Admitted { future } => match std::task::ready!(future.poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
            AuditStateProj::Refused { future } => std::task::ready!(future.as_mut().poll(cx)),
        };
        match this.done.take() {
            Some(trail) => Poll::Ready(Ok(respond(response, trail))),
            // Polled again after it completed: not done by hyper.
            None => Poll::Ready(Ok(response)),
        }
    }
}

impl<S> Service<Request<ProxyBody>> for AuditService<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = Infallible>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = AuditFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> Self::Future {
        let conn = crate::context::conn(request.extensions());
        let caller = crate::context::caller(request.extensions());
        let id = self.audit.next_id();
        // Every diagnostic about this request (and its hijacked session) carries its id, the
        // same as the audit record's and the X-Sockwarden-Request-Id header's, and its operation
        // (`logging::request`: the span is made when a line needs it). The request is read
        // (normalized, classified) here, once: the span names the operation from the start
        // and the authorize layer decides on this same reading, which the trail carries to it
        // (not a request extension of its own: a box and a map rehash per request).
        let reading = Reading::of(request.method(), request.uri()).ok();
        let log = RequestLog::new(id, reading.as_ref().map(|r| r.operation.name));
        let trail = Arc::new(Trail {
            audit: self.audit.clone(),
            id: id.text(),
            time: SystemTime::now(),
            started: Instant::now(),
            conn_fields: conn.map(|c| c.audit_fields.clone()),
            method: request.method().clone(),
            uri: request.uri().clone(),
            user_agent: request.headers().get(header::USER_AGENT).cloned(),
            facts: Mutex::new(Facts {
                client: caller.and_then(|c| c.client.clone()),
                tenant: caller
                    .and_then(|c| Tenant::of_caller(c, conn.map(|c| &c.peer)))
                    .map(Tenant::into_value),
                reading,
                ..Facts::default()
            }),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        request.extensions_mut().insert(trail.clone());
        let state = if self.audit.admits() {
            let counted = BytesIn(trail.clone());
            let request = request.map(|b| body::boxed(Observed::new(b, counted, |_| {})));
            // The inner layers decide synchronously in `call`: inside the span too.
            let future = log.in_scope(|| self.inner.call(request));
            AuditState::Admitted {
                future: log.instrument(future),
            }
        } else {
            // Fail closed: nothing happens that cannot be recorded.
            let error = ProxyError::Unavailable(
                "the audit log cannot be written (audit.on_failure = \"closed\")".into(),
            );
            trail.note_error(&error);
            let body = std::mem::replace(request.body_mut(), body::empty());
            AuditState::Refused {
                future: Box::pin(async move {
                    body::drain_refused(body).await;
                    error.to_response()
                }),
            }
        };
        AuditFuture {
            state,
            done: Some(trail),
        }
    }
}

/// The answer, made ready for the request's record: what sockwarden answered itself noted,
/// the latency measured, the request id added, the body counted and its end recorded.
fn respond(mut response: Response<ProxyBody>, trail: Arc<Trail>) -> Response<ProxyBody> {
    // sockwarden answered itself (respond::Rescue hands the error over).
    if let Some(error) = response.extensions_mut().remove::<ProxyError>() {
        trail.note_error(&error);
    }
    let status = response.status();
    {
        let facts = trail.facts();
        // A BuildKit build answered with an error ends its session (the CLI would wait on it).
        crate::forward::failed_builds::answered(&facts, status);
        let operation = facts.operation.as_ref().map_or("none", |o| o.name);
        trail.metrics().latency(
            facts.client.as_ref(),
            operation,
            trail.started.elapsed().as_secs_f64(),
        );
    }
    if let Ok(value) = HeaderValue::from_str(trail.id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let counted = BytesOut(trail.clone());
    let on_end = move |end: EndOfBody| {
        finish(&trail, status, end);
    };
    response.map(|b| body::boxed(Observed::new(b, counted, on_end)))
}

/// Counts a request body's bytes into its trail.
struct BytesIn(Arc<Trail>);

impl ByteCount for BytesIn {
    fn add(&self, bytes: u64) {
        self.0.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Counts a response body's bytes into its trail.
struct BytesOut(Arc<Trail>);

impl ByteCount for BytesOut {
    fn add(&self, bytes: u64) {
        self.0.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The response is complete (or the client went away): metrics and the record.
fn finish(trail: &Trail, status: StatusCode, end: EndOfBody) {
    let session = status == StatusCode::SWITCHING_PROTOCOLS;
    let counts = Counts {
        at: None,
        status: Some(status.as_u16()),
        duration: trail.started.elapsed(),
        bytes_in: trail.bytes_in.load(Ordering::Relaxed),
        bytes_out: trail.bytes_out.load(Ordering::Relaxed),
        end: match end {
            EndOfBody::Complete => "complete",
            EndOfBody::Error => "error",
            EndOfBody::Dropped => "client_gone",
        },
    };
    {
        let facts = trail.facts();
        let operation = facts.operation.as_ref().map_or("none", |o| o.name);
        trail.metrics().request(
            facts.client.as_ref(),
            operation,
            verdict(&facts).as_str(),
            status.as_u16(),
        );
    }
    let event = if session { "session_open" } else { "request" };
    // A rate-limit refusal within a second of the client's last recorded one: counted in the
    // metrics above and in the next recorded refusal's `suppressed`, not written.
    if trail.facts().unrecorded {
        return;
    }
    submit(trail, event, counts);
}

/// Writes the `session_close` record of a hijacked session.
pub fn close_session(trail: &Trail, to_daemon: u64, to_client: u64, end: &'static str) {
    let counts = Counts {
        at: Some(SystemTime::now()),
        status: None,
        duration: trail.started.elapsed(),
        bytes_in: to_daemon,
        bytes_out: to_client,
        end,
    };
    submit(trail, "session_close", counts);
}

/// Queues the record of a request or session, written from its trail on this thread.
fn submit(trail: &Trail, event: &'static str, counts: Counts) {
    trail
        .audit
        .push(|out| write_line(trail, event, &counts, out));
}
