//! The innermost service: sends an (already checked) request to the daemon and streams the
//! answer back, bridging hijacked connections.

pub mod failed_builds;
mod hop_by_hop;
pub mod session;
mod upgrade;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};

use crate::upstream::SendError;
pub use crate::upstream::Upstream;

use std::sync::Arc;

use crate::body::{self, ProxyBody};
use crate::context::Trail;
use crate::error::ProxyError;
use crate::limits::ConnectionSlot;
use crate::policy::layer::Authorized;
use crate::route::Hijack;
use crate::shutdown::Drain;

/// Forwards requests to the daemon.
#[derive(Clone, Debug)]
pub struct Forward {
    upstream: Upstream,
    drain: Drain,
}

impl Forward {
    /// A forwarder to `upstream`; hijacked sessions are tracked by `drain`.
    pub fn new(upstream: Upstream, drain: Drain) -> Forward {
        Forward { upstream, drain }
    }

    /// The pooled client it forwards through (daemon-state lookups share it).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    async fn forward(
        self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // Only a classified hijack endpoint may switch protocols; anything else has its
        // Upgrade header dropped with the other hop-by-hop headers.
        let hijack = request
            .extensions()
            .get::<Authorized>()
            .and_then(|a| a.operation.hijack);
        let upgrade = match hijack {
            Some(kind) => requested_upgrade(&request, kind)?,
            None => None,
        };
        // Taken before the request moves: the client's half of a possible hijack.
        let client_half = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));

        let (mut parts, body) = request.into_parts();
        hop_by_hop::strip_request(&mut parts.headers);
        if let Some(protocol) = &upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            parts.headers.insert(header::UPGRADE, protocol.clone());
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .ok_or_else(|| ProxyError::BadRequest("request target has no path".into()))?;
        // Origin form: the connection is chosen here, not by a pool keyed on the URI.
        parts.uri = http::Uri::from(path_and_query);
        parts.version = Version::HTTP_11;
        // The client connection's own upstream connections (none only outside a server).
        let conns = parts
            .extensions
            .get::<crate::context::Arrival>()
            .map(|a| a.conns.clone());
        // Our own request facts stay here; the client library must not see them. A hijacked
        // session keeps the audit trail (for its closing record) and the connection's slot
        // (it still counts against the client's connection limit).
        let trail = parts.extensions.get::<Arc<Trail>>().cloned();
        // A BuildKit session ends when the build that names it fails (failed_builds).
        let ending = match (hijack, &trail) {
            (Some(Hijack::Session), Some(trail)) => parts
                .headers
                .get(crate::inspect::layer::session::SESSION_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|id| failed_builds::Ending::watch(trail, id)),
            _ => None,
        };
        let session = Session {
            trail,
            slot: crate::context::conn(&parts.extensions).and_then(|c| c.slot.clone()),
            ending,
        };
        // A BuildKit build is known to its session's Dockerfile check while it runs; a
        // BuildKit session is relayed as HTTP/2 so that its Dockerfile is checked.
        let build_guard = parts
            .extensions
            .get::<Authorized>()
            .and_then(crate::inspect::layer::session::register_build);
        let gate = match hijack {
            Some(Hijack::Session) => crate::inspect::layer::session::DockerfileGate::for_session(
                &parts.headers,
                &parts.extensions,
                || crate::lookup::Lookup::new(self.upstream.clone()),
            ),
            _ => None,
        };
        if gate.is_some() {
            crate::inspect::layer::session::fresh_shared_key(&mut parts.headers);
        }
        parts.extensions = http::Extensions::new();

        let request = Request::from_parts(parts, body);
        let sent = match &conns {
            Some(conns) => conns.send(request).await,
            None => self.upstream.send_pooled(request).await,
        };
        let mut response = sent.map_err(|e| {
            // The client stalled its body: that is the client's failure, not the daemon's.
            crate::body::timed_out(&e).map_or_else(
                || ProxyError::Upstream {
                    addr: self.upstream.addr().to_string(),
                    detail: upstream_failure(&e),
                },
                ProxyError::BodyTimeout,
            )
        })?;

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let (Some(kind), Some(client_half)) = (hijack, client_half) else {
                return Err(ProxyError::BadUpstream(
                    "it switched protocols on a request that did not ask to".into(),
                ));
            };
            let daemon_half = hyper::upgrade::on(&mut response);
            match gate {
                Some(gate) => {
                    session::spawn_relay(&self.drain, client_half, daemon_half, session, gate)
                }
                None => upgrade::spawn_bridge(&self.drain, kind, client_half, daemon_half, session),
            }
            // A 101 keeps its Connection/Upgrade headers: they are the point of it.
            return Ok(response.map(|_| body::empty()));
        }
        hop_by_hop::strip(response.headers_mut());
        let response = match &conns {
            Some(conns) => response.map(|b| body::boxed(conns.driven_body(b))),
            None => response.map(body::boxed),
        };
        // A build the daemon refused is not running: its session may be ended (failed_builds).
        let build_guard = build_guard.filter(|_| response.status().is_success());
        Ok(match build_guard {
            None => response,
            Some(guard) => {
                use http_body_util::BodyExt;
                // Dropped with the body: when the build's answer has ended.
                response.map(|b| {
                    body::boxed(b.map_frame(move |frame| {
                        let _ = &guard;
                        frame
                    }))
                })
            }
        })
    }
}

/// What a hijacked session carries along until it closes.
#[derive(Debug, Default)]
pub struct Session {
    /// The request's audit trail, for the `session_close` record.
    pub trail: Option<Arc<Trail>>,
    /// The client's connection slot.
    pub slot: Option<Arc<ConnectionSlot>>,
    /// For a BuildKit session: told when the build that names it failed.
    pub ending: Option<failed_builds::Ending>,
}

/// The useful part of a client error: the innermost cause ("No such file or directory"),
/// without the library's own wrapping ("client error (Connect)").
fn upstream_failure(err: &SendError) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let detail = cause.to_string();
    if err.is_connect() {
        format!("cannot connect: {detail}")
    } else {
        detail
    }
}

/// The `Upgrade` protocol to ask the daemon for, if this hijack request asks for one.
fn requested_upgrade(
    request: &Request<ProxyBody>,
    kind: Hijack,
) -> Result<Option<HeaderValue>, ProxyError> {
    match request.headers().get(header::UPGRADE) {
        Some(value) => Ok(Some(value.clone())),
        None if kind.requires_upgrade_header() => Err(ProxyError::BadRequest(
            "attach needs the headers `Connection: Upgrade` and `Upgrade: tcp` \
             (a raw hijack without them cannot be relayed)"
                .into(),
        )),
        None => Ok(None),
    }
}

type ForwardFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl tower::Service<Request<ProxyBody>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ForwardFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        Box::pin(self.clone().forward(request))
    }
}
