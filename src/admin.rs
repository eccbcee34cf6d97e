//! The admin listener: operators' endpoints, on a socket of their own (never on a proxied
//! listener, and off unless `[admin]` is configured).
//!
//! | endpoint        | answer |
//! |-----------------|--------|
//! | `GET /healthz`  | 200 while the process serves |
//! | `GET /readyz`   | 200 when the daemon answers `/_ping` and no fail-closed audit sink is failing, else 503 with the reason and the fix (the daemon checked at most once a second) |
//! | `GET /metrics`  | Prometheus metrics (OpenMetrics text) |
//! | `POST /reload`  | re-reads the configuration; 200 with the new generation, or 500 with the error (the old configuration stays) |

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::body;
use crate::listener::Listener;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::reload::Live;
use crate::shutdown::Drain;

/// What the admin endpoints need.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The configuration in force, for `/reload`.
    pub live: Live,
    /// For `/metrics`.
    pub metrics: Metrics,
    /// For `/readyz`.
    pub readiness: Readiness,
    /// For `/readyz`: a fail-closed audit sink that cannot take records.
    pub audit: crate::audit::Audit,
}

/// Accepts admin connections until shutdown begins.
pub async fn run(listener: Listener, admin: Admin, drain: Drain) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = drain.begun() => return,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "admin: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admin = admin.clone();
        let conn_drain = drain.clone();
        drain.spawn(async move {
            let Ok((stream, _peer)) = accepted.establish(Duration::from_secs(10)).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = conn_drain.begun() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
                }
            }
        });
    }
}

impl Admin {
    async fn handle(&self, request: Request<Incoming>) -> Response<body::ProxyBody> {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
            (&Method::GET | &Method::HEAD, "/readyz") => self.ready().await,
            (&Method::GET, "/metrics") => {
                let mut response = text(StatusCode::OK, &self.metrics.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            (&Method::POST, "/reload") => match self.live.reload("admin").await {
                Ok(done) => json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "generation": done.generation,
                        "restart_needed": done.restart_needed,
                    }),
                ),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({ "message": format!("reload refused: {e}") }),
                ),
            },
            (_, "/healthz" | "/readyz" | "/metrics" | "/reload") => json(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({ "message": "method not allowed" }),
            ),
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({
                    "message": "not found (admin endpoints: /healthz, /readyz, /metrics, POST /reload)"
                }),
            ),
        }
    }

    /// Ready when the daemon answers `/_ping` with 200 in time (a check at most
    /// [`crate::readiness::CACHE_FOR`] old); else 503 with the reason and the fix.
    async fn ready(&self) -> Response<body::ProxyBody> {
        let failing = self.audit.failing_closed();
        if !failing.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {}\n", failing.join("; ")),
            );
        }
        match self.readiness.check().await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(unreachable) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {unreachable}\n"),
            ),
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<body::ProxyBody> {
    let mut response = Response::new(full(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<body::ProxyBody> {
    let mut response = Response::new(full(value.to_string() + "\n"));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn full(text: String) -> body::ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `sockwarden reload`: asks a running sockwarden, through its admin listener, to reload.
/// Returns the server's answer, or why it could not be asked.
pub fn request_reload(addr: &crate::config::ListenAddr) -> Result<String, String> {
    use std::io::{Read, Write};
    const REQUEST: &[u8] =
        b"POST /reload HTTP/1.1\r\nHost: sockwarden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let mut answer = Vec::new();
    let timeout = Some(Duration::from_secs(30));
    match addr {
        crate::config::ListenAddr::Unix { path, .. } => {
            let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
                format!("cannot connect to the admin socket {}: {e}", path.display())
            })?;
            s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
            s.write_all(REQUEST).map_err(|e| e.to_string())?;
            s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        }
        crate::config::ListenAddr::Tcp(a) => {
            let mut s = std::net::TcpStream::connect(a)
                .map_err(|e| format!("cannot connect to the admin listener {a}: {e}"))?;
            s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
            s.write_all(REQUEST).map_err(|e| e.to_string())?;
            s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        }
        crate::config::ListenAddr::Tls { .. } => {
            return Err("the admin listener cannot be a TLS listener".into())
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let ok = head
        .lines()
        .next()
        .is_some_and(|status| status.split(' ').nth(1) == Some("200"));
    let body = body.trim().to_owned();
    if ok {
        Ok(body)
    } else {
        Err(body)
    }
}
