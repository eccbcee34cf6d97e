//! Why a request target was refused, and the percent-decoding primitive the path and the
//! query readers share.

/// Why a request target was refused. Each kind is one class of ambiguity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteErrorKind {
    /// The method is not one the Docker API uses (or is not spelled in upper case).
    Method,
    /// The request target is not a plain path (`*`, absolute form, authority form).
    NotOriginForm,
    /// The path is longer than [`MAX_PATH_LEN`].
    PathTooLong,
    /// A raw or percent-encoded control byte (NUL, CR, LF, DEL, ...).
    ControlByte,
    /// A raw or percent-encoded byte outside ASCII.
    NonAscii,
    /// A raw or percent-encoded backslash.
    Backslash,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    /// `%2F`: an encoded `/`.
    EncodedSlash,
    /// `%2E`: an encoded `.`.
    EncodedDot,
    /// `%25`: an encoded `%` (double encoding).
    DoubleEncoding,
    /// A `.` or `..` segment.
    DotSegment,
    /// An empty segment (`//`).
    EmptySegment,
    /// A trailing `/` on a route that does not have one.
    TrailingSlash,
    /// A `/v...` first segment that is not a well-formed API version.
    BadVersion,
    /// An API version below [`ApiVersion::MIN`].
    VersionTooOld,
    /// A `;` in the query.
    QuerySemicolon,
    /// A query parameter that does not decode (bad escape, non-UTF-8, control byte).
    QueryEncoding,
    /// A form or multipart `Content-Type` (or an unreadable or repeated one).
    ContentType,
}

/// A refused request: what was refused and why, ready for a `400 {"message": "sockwarden: ..."}`
/// (the `sockwarden: ` prefix is added by [`crate::error::ProxyError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RouteError {
    kind: RouteErrorKind,
    message: String,
}

impl RouteError {
    pub(crate) fn new(kind: RouteErrorKind, message: impl Into<String>) -> RouteError {
        RouteError {
            kind,
            message: message.into(),
        }
    }

    /// The class of the refusal.
    pub fn kind(&self) -> RouteErrorKind {
        self.kind
    }

    /// The client-facing explanation (without the `sockwarden: ` prefix).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<RouteError> for crate::error::ProxyError {
    fn from(err: RouteError) -> Self {
        crate::error::ProxyError::BadRequest(err.message)
    }
}

/// The value of one hex digit, if `b` is one.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
