//! Asking the daemon about its own state from inside the request path: a container's, an
//! exec's, a volume's or an image's stored configuration, and the daemon's defaults (`/info`).
//!
//! Lookups go through the forwarder's pooled upstream client (no other connection scheme), as
//! plain `GET`s on unversioned paths (the daemon answers in its newest format), with a bounded
//! answer and a time limit. A missing object is `Ok(None)`: the caller may let the request
//! pass so that the daemon answers its own 404. Every other failure is a [`LookupError`],
//! which the caller must turn into a refusal: a request that could not be checked is never
//! forwarded unchecked.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::body;
use crate::route::escape_object;
use crate::upstream::Upstream;

/// Largest answer read: a container's inspect document is a few KiB, an image's config with a
/// long history or many labels some tens; anything larger is refused rather than buffered.
pub const LOOKUP_LIMIT: usize = 4 << 20;

/// How long one lookup may take, connection included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads daemon state through the upstream client.
#[derive(Clone, Debug)]
pub struct Lookup {
    upstream: Upstream,
    limit: usize,
    timeout: Duration,
    /// The last `/info` answer and when it came: the daemon's defaults change only when it
    /// restarts, and every reach check needs them.
    info: Arc<Mutex<Option<(Instant, Bytes)>>>,
}

/// How long an `/info` answer is reused.
const INFO_TTL: Duration = Duration::from_secs(30);

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The daemon could not be reached or the connection broke.
    Unreachable(String),
    /// The daemon answered an error other than 404.
    Daemon {
        /// Its status code.
        status: u16,
        /// Its `message`, or the start of its body.
        message: String,
    },
    /// The answer was larger than [`LOOKUP_LIMIT`].
    TooLarge,
    /// No complete answer within [`LOOKUP_TIMEOUT`].
    Timeout,
    /// The answer could not be read as expected.
    BadAnswer(String),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Unreachable(e) => write!(f, "the daemon could not be reached: {e}"),
            LookupError::Daemon { status, message } => {
                write!(f, "the daemon answered {status}: {message}")
            }
            LookupError::TooLarge => {
                write!(f, "the daemon's answer is larger than {LOOKUP_LIMIT} bytes")
            }
            LookupError::Timeout => {
                write!(f, "the daemon did not answer within {LOOKUP_TIMEOUT:?}")
            }
            LookupError::BadAnswer(e) => write!(f, "the daemon's answer is unreadable: {e}"),
        }
    }
}

impl std::error::Error for LookupError {}

impl Lookup {
    /// Lookups through `upstream`.
    pub fn new(upstream: Upstream) -> Lookup {
        Lookup {
            upstream,
            limit: LOOKUP_LIMIT,
            timeout: LOOKUP_TIMEOUT,
            info: Arc::default(),
        }
    }

    /// For tests: lookups through a daemon socket that does not exist (every one fails as
    /// unreachable).
    #[cfg(test)]
    pub fn unreachable() -> Lookup {
        let config = crate::config::UpstreamConfig {
            addr: crate::config::UpstreamAddr::Unix("/nonexistent/sockwarden-test.sock".into()),
            connect_timeout: Duration::from_millis(100),
            pool_idle_timeout: Duration::from_secs(1),
            pool_max_idle: 1,
            build_cgroup: crate::buildcgroup::Setting::Off,
        };
        #[allow(clippy::expect_used)] // test helper: a fixed, valid configuration
        Lookup::new(Upstream::new(&config).expect("upstream"))
    }

    /// `GET /containers/{id}/json`: the container's stored `Config`, `HostConfig`, `Mounts`.
    pub async fn container(&self, id: &str) -> Result<Option<Bytes>, LookupError> {
        self.object("containers", id, "/json").await
    }

    /// `GET /exec/{id}/json`: the exec's `ProcessConfig` and `ContainerID`.
    pub async fn exec(&self, id: &str) -> Result<Option<Bytes>, LookupError> {
        self.object("exec", id, "/json").await
    }

    /// `GET /volumes/{name}`: the volume's `Driver` and `Options`.
    pub async fn volume(&self, name: &str) -> Result<Option<Bytes>, LookupError> {
        self.object("volumes", name, "").await
    }

    /// `GET /images/{name}/json`: the image's `Config`.
    pub async fn image(&self, name: &str) -> Result<Option<Bytes>, LookupError> {
        self.object("images", name, "/json").await
    }

    /// `GET /info`: the daemon's defaults (`DefaultRuntime`, `CgroupVersion`, ...), reused for
    /// 30 seconds.
    pub async fn info(&self) -> Result<Bytes, LookupError> {
        let cached = self.info.lock().ok().and_then(|c| c.clone());
        if let Some((_, bytes)) = cached.filter(|(at, _)| at.elapsed() < INFO_TTL) {
            return Ok(bytes);
        }
        let bytes = self.get("/info").await?.ok_or(LookupError::Daemon {
            status: 404,
            message: "no /info".into(),
        })?;
        if let Ok(mut c) = self.info.lock() {
            *c = Some((Instant::now(), bytes.clone()));
        }
        Ok(bytes)
    }

    async fn object(
        &self,
        kind: &str,
        name: &str,
        tail: &str,
    ) -> Result<Option<Bytes>, LookupError> {
        // An empty name would address the collection, not an object.
        if name.is_empty() {
            return Ok(None);
        }
        self.get(&format!("/{kind}/{}{tail}", escape_object(name)))
            .await
    }

    /// The request `method path` to the daemon (with a JSON `body`, if any).
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Request<crate::body::ProxyBody>, LookupError> {
        let pq = http::uri::PathAndQuery::try_from(path)
            .map_err(|e| LookupError::BadAnswer(format!("cannot address {path}: {e}")))?;
        let uri = self
            .upstream
            .uri_for(pq)
            .map_err(|e| LookupError::BadAnswer(format!("cannot address {path}: {e}")))?;
        let builder = Request::builder()
            .method(method)
            .uri(uri)
            // The client does not set Host itself (it forwards the client's own).
            .header(header::HOST, "docker");
        match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body::boxed(http_body_util::Full::new(Bytes::from(body)))),
            None => builder.body(body::empty()),
        }
        .map_err(|e| LookupError::BadAnswer(e.to_string()))
    }

    /// `GET path` left open: the daemon's answer with its body unread, for a stream that does
    /// not end (the event stream); no size or time limit applies to the body.
    pub async fn open(&self, path: &str) -> Result<Response<Incoming>, LookupError> {
        let request = self.request(Method::GET, path, None)?;
        match tokio::time::timeout(self.timeout, self.upstream.send(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(LookupError::Unreachable(innermost(&e))),
            Err(_) => Err(LookupError::Timeout),
        }
    }

    /// `GET path`: its body on 200, `None` on 404, an error otherwise.
    pub async fn get(&self, path: &str) -> Result<Option<Bytes>, LookupError> {
        match tokio::time::timeout(self.timeout, self.fetch(path)).await {
            Ok(result) => result,
            Err(_) => Err(LookupError::Timeout),
        }
    }

    /// `POST path` with a JSON `body` (isolation creates a tenant's volume, owned, before the
    /// container create that would make the daemon create it unowned): the status and body.
    pub async fn post_json(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), LookupError> {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `method path` (with a JSON `body`, if any): the status and body, whatever the status
    /// (isolation asks what the daemon answers for a missing object).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), LookupError> {
        let send = async {
            let request = self.request(method, path, body)?;
            let response = self
                .upstream
                .send(request)
                .await
                .map_err(|e| LookupError::Unreachable(innermost(&e)))?;
            let status = response.status();
            match Limited::new(response.into_body(), self.limit)
                .collect()
                .await
            {
                Ok(collected) => Ok((status, collected.to_bytes())),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(LookupError::TooLarge),
                Err(e) => Err(LookupError::Unreachable(e.to_string())),
            }
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(result) => result,
            Err(_) => Err(LookupError::Timeout),
        }
    }

    async fn fetch(&self, path: &str) -> Result<Option<Bytes>, LookupError> {
        let request = self.request(Method::GET, path, None)?;
        let response = self
            .upstream
            .send(request)
            .await
            .map_err(|e| LookupError::Unreachable(innermost(&e)))?;
        let status = response.status();
        let bytes = match Limited::new(response.into_body(), self.limit)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(LookupError::TooLarge)
            }
            Err(e) => return Err(LookupError::Unreachable(e.to_string())),
        };
        match status {
            StatusCode::OK => Ok(Some(bytes)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(LookupError::Daemon {
                status: other.as_u16(),
                message: daemon_message(&bytes),
            }),
        }
    }
}

/// The daemon's `{"message": ...}`, or the start of whatever it sent.
fn daemon_message(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned())
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_message_prefers_the_message_field() {
        assert_eq!(
            daemon_message(br#"{"message":"no such container"}"#),
            "no such container"
        );
        assert_eq!(daemon_message(b"plain text"), "plain text");
        assert_eq!(daemon_message(&[b'x'; 500]).len(), 200);
    }
}
