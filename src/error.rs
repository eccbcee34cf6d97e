//! The program's error types: why a request was answered by sockwarden itself
//! ([`ProxyError`], turned into a response by `respond`) and why a configuration was refused
//! ([`ConfigError`]). Low in the module graph: every other module may use it; it uses only
//! the refusal value ([`Refusal`]), itself low.

use http::StatusCode;

pub use crate::refusal::Refusal;

/// A boxed error, as tower and hyper pass them around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why sockwarden answered a request itself instead of forwarding the daemon's answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// The request is malformed or ambiguous; it never reached the daemon.
    #[error("{0}")]
    BadRequest(String),
    /// The daemon could not be reached or failed before answering.
    #[error("cannot reach the Docker daemon at {addr}: {detail}")]
    Upstream {
        /// The daemon's configured address.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// The client's policy (its rules or its inspection) refuses the request.
    #[error("{0}")]
    Denied(Box<Refusal>),
    /// The daemon answered in a way sockwarden will not relay.
    #[error("unexpected answer from the Docker daemon: {0}")]
    BadUpstream(String),
    /// A client limit (requests per second, concurrent connections) was hit.
    #[error("too many requests: {what}")]
    Limited {
        /// Which kind of limit.
        limit: Limit,
        /// Which limit, for whom.
        what: String,
        /// When to try again (the `Retry-After` header, rounded up to whole seconds).
        retry_after: Option<std::time::Duration>,
    },
    /// sockwarden cannot serve requests right now (a fail-closed audit log that cannot write).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The client stopped sending its request body (`server.body_read_timeout`).
    #[error("{0}")]
    BodyTimeout(BodyTimeout),
}

impl ProxyError {
    /// The HTTP status a client sees for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Denied(refusal) if refusal.docker_message().is_some() => {
                StatusCode::NOT_FOUND
            }
            ProxyError::Denied(_) => StatusCode::FORBIDDEN,
            ProxyError::Upstream { .. } | ProxyError::BadUpstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// The request body's read deadline passed: the client sent nothing for this long while
/// sockwarden waited for more of its body (`server.body_read_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout {
    /// The configured deadline.
    pub after: std::time::Duration,
}

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body: nothing received for {} (server.body_read_timeout)",
            humantime::format_duration(self.after)
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// The kind of client limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Requests per second.
    Rate,
    /// Concurrent connections.
    Connections,
}

impl Limit {
    /// The metrics label (`rate`, `connections`).
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Rate => "rate",
            Limit::Connections => "connections",
        }
    }

    /// The audit record's rule (`rate-limit`, `connection-limit`).
    pub fn rule(self) -> &'static str {
        match self {
            Limit::Rate => "rate-limit",
            Limit::Connections => "connection-limit",
        }
    }
}

/// A configuration problem, naming the setting (and line, when the file is at fault).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// A problem with the setting `name`.
    pub(crate) fn setting(name: &str, message: impl std::fmt::Display) -> Self {
        ConfigError(format!("{name}: {message}"))
    }
}

/// Walks an error's source chain into one line, so a log or client message keeps the cause.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
