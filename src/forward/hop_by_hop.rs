//! Hop-by-hop header handling (RFC 9110 §7.6.1).
//!
//! `Connection` and the fields it names, plus the fixed list below, describe one connection
//! and must not be relayed to the next. hyper re-frames bodies itself (Content-Length or
//! chunked), so `Transfer-Encoding` is dropped too. `Expect` is answered by sockwarden's own
//! server side (hyper sends `100 Continue` when the body is first read), so the daemon never
//! sees it.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that are hop-by-hop whether or not `Connection` names them.
const ALWAYS: [HeaderName; 7] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Whether `name` is hop-by-hop whether or not `Connection` names it.
fn always_hop_by_hop(name: &HeaderName) -> bool {
    ALWAYS.contains(name) || name == "keep-alive" || name == "proxy-connection"
}

/// Removes the hop-by-hop fields of one message.
pub fn strip(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names (no hashing, no parsing) finds out.
    if !headers.keys().any(always_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &ALWAYS {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Removes the hop-by-hop fields of a request, plus `Expect`, which sockwarden answers itself.
pub fn strip_request(headers: &mut HeaderMap) {
    strip(headers);
    headers.remove(header::EXPECT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn strips_fixed_and_named_fields() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("x-registry-auth", HeaderValue::from_static("e30="));
        strip_request(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(h.contains_key(header::CONTENT_TYPE));
        assert!(h.contains_key("x-registry-auth"));
    }
}
