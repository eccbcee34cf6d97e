//! What the daemon will do with a request: one unambiguous reading of the request target
//! ([`normalize`]), the named operation it addresses ([`classify`]), and the endpoints that
//! hijack the connection ([`Hijack`]).
//!
//! The daemon's router accepts an optional `/vX.Y` prefix on every route. Only the endpoints
//! listed in [`Hijack`] may switch the connection to a raw stream; on every other route an
//! `Upgrade` request header is dropped, so no client can turn an ordinary request into an
//! unchecked tunnel.
//!
//! Typical use on the request path:
//!
//! ```
//! use sockwarden::route;
//! let uri: http::Uri = "/v1.41/containers/web/json?size=1".parse().unwrap();
//! let normalized = route::normalize(&http::Method::GET, &uri).unwrap();
//! let op = route::classify(&http::Method::GET, &normalized.path, &normalized.query);
//! assert_eq!(op.name, "container.inspect");
//! assert_eq!(op.object.as_deref(), Some("web"));
//! ```

mod error;
mod normalize;
mod object;
mod operation;
mod query;
mod table;
mod tenancy;
#[cfg(test)]
mod tests;

pub use error::{RouteError, RouteErrorKind};
pub use normalize::{
    check_content_type, escape_object, normalize, readdressed, ApiVersion, Normalized,
    ALLOWED_METHODS, MAX_PATH_LEN,
};
pub use object::ObjectKind;
pub use operation::{classify, Operation};
pub use query::Query;
pub use table::{
    operation_info, operation_names, Access, Answer, BodyUse, Creates, Fetch, Inspector,
    OperationInfo, Redaction, Section, WritesImage, OPERATIONS, OPERATION_TABLE, UNKNOWN,
};
pub use tenancy::{Admit, ImageMaker, Tenancy};

/// The endpoints that take over the connection after the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hijack {
    /// `POST /containers/{id}/attach`: stdin/stdout of the container (`Upgrade: tcp`).
    Attach,
    /// `GET /containers/{id}/attach/ws`: the same over a WebSocket.
    AttachWebsocket,
    /// `POST /exec/{id}/start`: an exec's stdin/stdout, unless the body says `Detach`.
    ExecStart,
    /// `POST /session`: a BuildKit session (h2c, the daemon is the gRPC client).
    Session,
    /// `POST /grpc`: BuildKit's control API (h2c, the daemon is the gRPC server).
    Grpc,
}

impl Hijack {
    /// Whether the daemon insists on an `Upgrade` header. Without one, attach hijacks the raw
    /// socket with a `200 OK`, which a proxy cannot relay, so it is refused up front; exec start
    /// without one is the detached form, a normal request.
    pub fn requires_upgrade_header(self) -> bool {
        matches!(self, Hijack::Attach | Hijack::AttachWebsocket)
    }
}

/// A request read once, the way the daemon will read it: its normalized target and the
/// operation it addresses. The first layer that sees the request (the audit layer) reads it
/// and hands it on in the request's trail, so the request span names its operation from the
/// start and the authorize layer decides on the same reading instead of a second one.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The request target as the daemon reads it.
    pub normalized: std::sync::Arc<Normalized>,
    /// What the request does.
    pub operation: std::sync::Arc<Operation>,
}

impl Reading {
    /// Normalizes and classifies `method` and `uri`; an error is a target that could be read
    /// two ways (or not at all) and is refused.
    pub fn of(method: &http::Method, uri: &http::Uri) -> Result<Reading, RouteError> {
        let normalized = normalize(method, uri)?;
        let operation = classify(method, &normalized.path, &normalized.query);
        Ok(Reading {
            normalized: std::sync::Arc::new(normalized),
            operation: std::sync::Arc::new(operation),
        })
    }
}
