//! The query string, read the way the daemon reads it (Go `url.ParseQuery` via `r.Form`).

use super::error::{hex_value, RouteError, RouteErrorKind};

/// A parsed query: the `key=value` pairs in the order sent, repeats kept.
///
/// Parsing follows Go's `url.ParseQuery`: pairs are separated by `&` (empty pieces skipped), a
/// piece without `=` is a key with an empty value, keys and values are percent-decoded once with
/// `+` meaning a space. Stricter than Go, where Go would drop a pair or answer 400 depending on
/// the handler: any `;` is refused (the daemon answers 400 "invalid semicolon separator"), as
/// are invalid or truncated escapes, values that are not UTF-8 after decoding and control bytes
/// other than tab, CR and LF (a commit message may hold line breaks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string (the part after `?`, without it).
    pub fn parse(raw: &str) -> Result<Query, RouteError> {
        Query::parse_detail(raw)
            .map_err(|(kind, why)| RouteError::new(kind, format!("refused the query: {why}")))
    }

    pub(crate) fn parse_detail(raw: &str) -> Result<Query, (RouteErrorKind, String)> {
        if raw.contains(';') {
            return Err((
                RouteErrorKind::QuerySemicolon,
                "a ';' in the query (the daemon refuses it as a separator)".into(),
            ));
        }
        let mut pairs = Vec::new();
        for piece in raw.split('&') {
            if piece.is_empty() {
                continue;
            }
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            let key = unescape(key)?;
            let value = unescape(value)
                .map_err(|(kind, why)| (kind, format!("parameter {key:?}: {why}")))?;
            pairs.push((key, value));
        }
        Ok(Query { pairs })
    }

    /// The first value of `key`, as Go's `FormValue` / `Form.Get` returns it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `key` is present at all (even with an empty value).
    pub fn contains(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// `key` as the daemon's `httputils.BoolValue` reads it: `None` when absent; otherwise the
    /// first value is false only if, trimmed and lower-cased, it is `""`, `0`, `no`, `false` or
    /// `none`, and true for anything else (`?force=off` is true).
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(|value| {
            let value = value.trim().to_lowercase();
            !matches!(value.as_str(), "" | "0" | "no" | "false" | "none")
        })
    }

    /// `key` as `httputils.BoolValueOrDefault` reads it: `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.bool(key).unwrap_or(default)
    }

    /// All pairs in the order sent.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether `key` occurs more than once (the daemon reads only the first; a policy that read
    /// another would be fooled, so most keys should be refused when repeated).
    pub fn has_repeated(&self, key: &str) -> bool {
        self.pairs.iter().filter(|(k, _)| k == key).nth(1).is_some()
    }

    /// Whether the query is empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Go's `url.QueryUnescape`, strictly.
fn unescape(raw: &str) -> Result<String, (RouteErrorKind, String)> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let digits = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                );
                let (Some(hi), Some(lo)) = digits else {
                    return Err((
                        RouteErrorKind::QueryEncoding,
                        "an invalid or truncated percent escape".into(),
                    ));
                };
                out.push(hi * 16 + lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    if out
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
    {
        return Err((
            RouteErrorKind::QueryEncoding,
            "a control byte (NUL, ESC, ...) in the query".into(),
        ));
    }
    String::from_utf8(out).map_err(|_| {
        (
            RouteErrorKind::QueryEncoding,
            "the query is not UTF-8 once decoded".into(),
        )
    })
}
