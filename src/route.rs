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

mod normalize;
mod operation;
mod query;
#[cfg(test)]
mod tests;

pub use normalize::{
    check_content_type, escape_object, normalize, ApiVersion, Normalized, RouteError,
    RouteErrorKind, ALLOWED_METHODS, MAX_PATH_LEN,
};
pub use operation::{
    classify, operation_info, operation_names, Access, Operation, OperationInfo, OPERATIONS,
    OPERATION_TABLE, UNKNOWN,
};
pub use query::Query;

use http::Method;

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

/// Splits an optional `/vX.Y` prefix from a raw `path`, returning `(version, rest)`, textually:
/// the version is what follows `/v` up to the next slash, digits and dots as the daemon's router
/// allows. It neither decodes nor validates; use [`normalize`] to decide anything.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(after) = path.strip_prefix("/v") {
        let end = after.find('/').unwrap_or(after.len());
        let version = &after[..end];
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return (Some(version), &after[end..]);
        }
    }
    (None, path)
}

/// The hijacking endpoint `method` + `path` (the raw, still percent-encoded request path)
/// addresses, if any: [`classify`] after [`normalize`]'s path rules. A path `normalize` refuses
/// is no hijack (such a request must not be forwarded at all).
pub fn hijack_endpoint(method: &Method, path: &str) -> Option<Hijack> {
    let (_, decoded) = normalize::normalize_path(path).ok()?;
    operation::classify(method, &decoded, &Query::default()).hijack
}

#[cfg(test)]
mod legacy_tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(split_version("/v1.41/_ping"), (Some("1.41"), "/_ping"));
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/volumes"), (None, "/volumes"));
        assert_eq!(split_version("/v/_ping"), (None, "/v/_ping"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), ""));
    }

    #[test]
    fn hijack_endpoints() {
        let post = Method::POST;
        let get = Method::GET;
        let cases = [
            (&post, "/v1.41/containers/abc/attach", Some(Hijack::Attach)),
            (&post, "/containers/a/b/attach", Some(Hijack::Attach)),
            (
                &get,
                "/containers/abc/attach/ws",
                Some(Hijack::AttachWebsocket),
            ),
            (&post, "/v1.41/exec/123/start", Some(Hijack::ExecStart)),
            (&post, "/session", Some(Hijack::Session)),
            (&post, "/v1.41/grpc", Some(Hijack::Grpc)),
            (&get, "/containers/abc/attach", None),
            (&post, "/containers//attach", None),
            (&post, "/containers/abc/json", None),
            (&post, "/exec/abc/resize", None),
            (&get, "/session", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(hijack_endpoint(method, path), want, "{method} {path}");
        }
    }
}
