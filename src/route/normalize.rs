//! Request-target normalization: one unambiguous reading of the path and query, the same one
//! the daemon's router (Go `net/http` + gorilla/mux) will make, or a refusal.
//!
//! The daemon percent-decodes the path once, answers `301` to anything `path.Clean` would
//! change, and then matches routes against the decoded path. Rather than re-implement the
//! redirect, we refuse every form where two readings are possible:
//!
//! | refused                                   | why |
//! |-------------------------------------------|-----|
//! | not origin-form (`*`, `http://h/p`)       | the daemon would clean `*` to `/*`; absolute form names a host |
//! | methods other than GET HEAD POST PUT DELETE OPTIONS, any other spelling (`get`) | the daemon's `/debug/*` answers any method |
//! | raw control bytes, raw non-ASCII, `\`     | no Docker name contains them; `\` is a separator elsewhere |
//! | `%` not followed by two hex digits        | Go's URL parser answers 400 |
//! | `%2F` (`/`)                               | decoded into a name (`a%2Fb` = `a/b`) or into `//` (redirect) |
//! | `%2E` (`.`)                               | hides dot segments from raw-path readers |
//! | `%5C` (`\`), `%25` (`%`), encoded controls, encoded non-ASCII | double decoding elsewhere; NUL/controls in names |
//! | `.`/`..` segments, empty segments (`//`)  | the daemon redirects (`301`) to the cleaned path |
//! | a trailing `/` (except `/networks/` and `/debug/pprof/`, registered routes) | `GET /volumes/` would inspect the volume `""`, `DELETE /containers/` the container `""` |
//! | paths over [`MAX_PATH_LEN`] bytes        | nothing legitimate is that long |
//! | `/vX.Y` below [`ApiVersion::MIN`], malformed (`/v/`, `/v1..41`, `/v1`, parts over 999, non-zero third part), `/V1.41`, a bare `/v1.41` | legacy behaviour below 1.24; the rest is either ambiguous or a 404 |
//!
//! Query strings are read as Go's `url.ParseQuery` does; see [`Query`].

use std::fmt;

use http::{HeaderMap, Method, Uri};

use super::error::{hex_value, RouteError, RouteErrorKind};
use super::query::Query;

/// The longest raw path (without the query) accepted.
pub const MAX_PATH_LEN: usize = 4096;

/// Paths that end in `/` and still name a registered route (after the version prefix).
const TRAILING_SLASH_ROUTES: [&str; 2] = ["/networks/", "/debug/pprof/"];

/// A Docker API version as the daemon compares it: `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// The major part (`1`).
    pub major: u16,
    /// The minor part (`41`).
    pub minor: u16,
}

impl ApiVersion {
    /// The oldest version accepted: below it the daemon turns on legacy behaviour (a
    /// `HostConfig` on `start` replaces the container's, `POST /containers/{id}/copy`, ...).
    pub const MIN: ApiVersion = ApiVersion {
        major: 1,
        minor: 24,
    };

    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }

    /// Parses the text after `/v` the way Go's `versions.Compare` reads it (dot-separated
    /// decimal parts, leading zeros allowed, missing parts 0), but strictly: every part must be
    /// 1 to 6 digits worth at most 999, at most four parts, and parts after the second must be
    /// zero (`1.41.0` is 1.41; `1.41.1` compares above 1.41 in the daemon and is refused).
    pub fn parse(text: &str) -> Result<ApiVersion, String> {
        if text.is_empty() {
            return Err("the version is empty".into());
        }
        let mut parts = [0u16; 2];
        let mut count = 0;
        for (index, part) in text.split('.').enumerate() {
            count = index + 1;
            if index >= 4 {
                return Err("a version has at most four dot-separated parts".into());
            }
            if part.is_empty() {
                return Err("a version part is empty".into());
            }
            if part.len() > 6 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("the version part {part:?} is not a small number"));
            }
            let value: u16 = match part.parse::<u32>() {
                Ok(v) if v <= 999 => v as u16,
                _ => return Err(format!("the version part {part:?} is out of range")),
            };
            match parts.get_mut(index) {
                Some(slot) => *slot = value,
                None if value == 0 => {}
                None => {
                    return Err(
                        "API versions have two parts (a non-zero third part compares above major.minor)"
                            .into(),
                    )
                }
            }
        }
        if count < 2 {
            return Err("the version has no minor part (write major.minor, e.g. 1.41)".into());
        }
        Ok(ApiVersion {
            major: parts[0],
            minor: parts[1],
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The request target, read once, the way the daemon will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The `/vX.Y` prefix, if any (none means the daemon's newest version).
    pub version: Option<ApiVersion>,
    /// The percent-decoded path without the version prefix; always starts with `/`.
    pub path: String,
    /// The path exactly as the client sent it (still encoded, with the version prefix).
    pub raw_path: String,
    /// The parsed query.
    pub query: Query,
}

/// The methods the Docker API uses. Anything else (including `get`) is refused: the daemon's
/// debug routes answer every method, and nothing else needs one.
pub const ALLOWED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
];

/// Normalizes a request's method and target; see the module documentation for what is refused.
pub fn normalize(method: &Method, uri: &Uri) -> Result<Normalized, RouteError> {
    let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    if !ALLOWED_METHODS.contains(method) {
        return Err(RouteError::new(
            RouteErrorKind::Method,
            format!(
                "refused the method {}: the Docker API uses only GET, HEAD, POST, PUT, DELETE and OPTIONS (upper case)",
                shown(method.as_str())
            ),
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() || !target.starts_with('/') {
        return Err(RouteError::new(
            RouteErrorKind::NotOriginForm,
            format!(
                "refused {method} {}: the request target must be a path like /v1.41/containers/json",
                shown(&uri.to_string())
            ),
        ));
    }
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (target, ""),
    };
    let (version, path) = normalize_path(raw_path).map_err(|(kind, why)| {
        RouteError::new(kind, format!("refused {method} {}: {why}", shown(raw_path)))
    })?;
    let query = Query::parse_detail(raw_query).map_err(|(kind, why)| {
        RouteError::new(
            kind,
            format!("refused the query of {method} {}: {why}", shown(raw_path)),
        )
    })?;
    Ok(Normalized {
        version,
        path,
        raw_path: raw_path.to_owned(),
        query,
    })
}

/// Decodes and checks a raw path; returns the version prefix and the decoded path without it.
pub(crate) fn normalize_path(
    raw: &str,
) -> Result<(Option<ApiVersion>, String), (RouteErrorKind, String)> {
    use RouteErrorKind as K;
    if !raw.starts_with('/') {
        return Err((K::NotOriginForm, "the path must start with /".into()));
    }
    if raw.len() > MAX_PATH_LEN {
        return Err((
            K::PathTooLong,
            format!(
                "the path is {} bytes long (at most {MAX_PATH_LEN})",
                raw.len()
            ),
        ));
    }
    let decoded = decode_path(raw)?;
    check_segments(&decoded)?;
    let (version, rest) = split_version_prefix(decoded)?;
    if rest.len() > 1 && rest.ends_with('/') && !TRAILING_SLASH_ROUTES.contains(&rest.as_str()) {
        return Err((
            K::TrailingSlash,
            "a trailing / is not part of any route here (it would address an object with an empty name)"
                .into(),
        ));
    }
    if let Some(v) = version {
        if v < ApiVersion::MIN {
            return Err((
                K::VersionTooOld,
                format!(
                    "API version {v} is below {} (older versions turn on legacy daemon behaviour)",
                    ApiVersion::MIN
                ),
            ));
        }
    }
    Ok((version, rest))
}

/// Percent-decodes a path once, refusing every byte that makes the reading ambiguous.
fn decode_path(raw: &str) -> Result<String, (RouteErrorKind, String)> {
    use RouteErrorKind as K;
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err((
                    K::BadEscape,
                    format!("truncated percent escape at byte {i}"),
                ));
            };
            let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                return Err((
                    K::BadEscape,
                    format!("invalid percent escape at byte {i} (need two hex digits)"),
                ));
            };
            let c = hi * 16 + lo;
            let what = match c {
                b'/' => Some((K::EncodedSlash, "an encoded / (%2F)")),
                b'.' => Some((K::EncodedDot, "an encoded . (%2E)")),
                b'\\' => Some((K::Backslash, "an encoded backslash (%5C)")),
                b'%' => Some((K::DoubleEncoding, "an encoded % (%25, double encoding)")),
                0..=0x1f | 0x7f => Some((K::ControlByte, "an encoded control byte")),
                0x80..=0xff => Some((K::NonAscii, "an encoded non-ASCII byte")),
                _ => None,
            };
            if let Some((kind, what)) = what {
                return Err((kind, format!("the path contains {what}")));
            }
            out.push(char::from(c));
            i += 3;
            continue;
        }
        let what = match b {
            b'\\' => Some((K::Backslash, "a backslash")),
            0..=0x1f | 0x7f => Some((K::ControlByte, "a control byte")),
            0x80..=0xff => Some((K::NonAscii, "a non-ASCII character")),
            _ => None,
        };
        if let Some((kind, what)) = what {
            return Err((kind, format!("the path contains {what}")));
        }
        out.push(char::from(b));
        i += 1;
    }
    Ok(out)
}

/// Refuses what `path.Clean` would change (and the daemon redirect): `.`/`..` and empty
/// segments. A trailing `/` is checked later, once the version prefix is off.
fn check_segments(decoded: &str) -> Result<(), (RouteErrorKind, String)> {
    let Some(after_root) = decoded.strip_prefix('/') else {
        return Err((
            RouteErrorKind::NotOriginForm,
            "the path must start with /".into(),
        ));
    };
    let mut segments = after_root.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." | ".." => {
                return Err((
                    RouteErrorKind::DotSegment,
                    format!("the path has a {segment:?} segment (the daemon would redirect to the cleaned path)"),
                ))
            }
            "" if !last => {
                return Err((
                    RouteErrorKind::EmptySegment,
                    "the path has an empty segment (//); the daemon would redirect to the cleaned path"
                        .into(),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits `/vX.Y` off a decoded, segment-checked path, the way the daemon's
/// `/v{version:[0-9.]+}` route prefix does, refusing look-alikes.
fn split_version_prefix(
    mut decoded: String,
) -> Result<(Option<ApiVersion>, String), (RouteErrorKind, String)> {
    let after_root = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (first, rest) = match after_root.find('/') {
        Some(end) => (&after_root[..end], &after_root[end..]),
        None => (after_root, ""),
    };
    let mut chars = first.chars();
    let looks_like_version = matches!(chars.next(), Some('v' | 'V'))
        && chars
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
    if !looks_like_version {
        return Ok((None, decoded));
    }
    if first.starts_with('V') {
        return Err((
            RouteErrorKind::BadVersion,
            format!("{first:?} is not a version prefix to the daemon (it must be a lower-case v, e.g. /v1.41)"),
        ));
    }
    let version = ApiVersion::parse(first.get(1..).unwrap_or("")).map_err(|why| {
        (
            RouteErrorKind::BadVersion,
            format!("malformed API version prefix {first:?}: {why}"),
        )
    })?;
    if rest.is_empty() {
        return Err((
            RouteErrorKind::BadVersion,
            format!("the version prefix /{first} must be followed by a path"),
        ));
    }
    // The prefix taken off in place: `/v1.41/containers/json` -> `/containers/json`.
    let prefix = decoded.len() - rest.len();
    decoded.drain(..prefix);
    Ok((Some(version), decoded))
}

/// Refuses request bodies Go's `ParseForm` would read into the form, where they override the
/// query (`rename?name=ok` with the body `name=evil` renames to `evil`): the media types
/// `application/x-www-form-urlencoded` and `multipart/form-data` (compared as Go's
/// `mime.ParseMediaType` does: the part before `;`, trimmed, lower-cased). Also refused: more
/// than one `Content-Type` header (Go reads the first, others may read another) and a value
/// that is not visible ASCII. Apply to every request, whatever its route.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), RouteError> {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(RouteError::new(
            RouteErrorKind::ContentType,
            "refused a request with more than one Content-Type header",
        ));
    }
    let Ok(text) = value.to_str() else {
        return Err(RouteError::new(
            RouteErrorKind::ContentType,
            "refused a Content-Type header that is not plain ASCII",
        ));
    };
    let media_type = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    if media_type == "application/x-www-form-urlencoded" || media_type == "multipart/form-data" {
        return Err(RouteError::new(
            RouteErrorKind::ContentType,
            format!(
                "refused the Content-Type {media_type}: the daemon would read form fields from the body and let them override the query"
            ),
        ));
    }
    Ok(())
}

/// The request's path with its object (`rest` follows it) addressed as `collection` + `id`,
/// keeping the client's `/vX.Y` prefix and query: how sockwarden re-addresses a request by
/// an object's full ID.
pub fn readdressed(
    normalized: &Normalized,
    query: Option<&str>,
    collection: &str,
    id: &str,
    rest: &str,
) -> String {
    let version = match normalized.version {
        Some(_) => normalized
            .raw_path
            .split('/')
            .nth(1)
            .map(|v| format!("/{v}"))
            .unwrap_or_default(),
        None => String::new(),
    };
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    format!("{version}{collection}{id}{}{query}", escape_object(rest))
}

/// Percent-encodes a route variable (an object name from [`super::Operation`]) for use in a
/// path the proxy builds itself. `/` stays as is (names like `library/busybox` contain it and
/// the daemon decodes `%2F` to the same name anyway); unreserved characters, `:` and `@` stay;
/// everything else is `%XX`.
pub fn escape_object(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b'@')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client-supplied string for an error message: at most 200 characters, control characters
/// escaped.
pub(crate) fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(200).is_some() {
        out.push_str("...");
    }
    out
}
