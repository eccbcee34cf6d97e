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
    // Most messages carry none, and a chunked response only `Transfer-Encoding`: one pass over
    // the names (no hashing, no parsing) finds those present, and only they are removed (each
    // removal hashes the name).
    let present: Vec<HeaderName> = headers
        .keys()
        .filter(|name| always_hop_by_hop(name))
        .cloned()
        .collect();
    if present.is_empty() {
        return;
    }
    if present.contains(&header::CONNECTION) {
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
    }
    for name in present {
        headers.remove(name);
    }
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

    /// Each hop-by-hop field alone, repeated, or in any mix: removed with every value, and
    /// nothing else.
    #[test]
    fn every_hop_by_hop_field_goes_alone_or_together() {
        let all = [
            "connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "proxy-authenticate",
            "keep-alive",
            "proxy-connection",
        ];
        for mask in 1u32..(1 << all.len()) {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
            h.append("x-kept", HeaderValue::from_static("1"));
            h.append("x-kept", HeaderValue::from_static("2"));
            for (i, name) in all.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    h.append(*name, HeaderValue::from_static("x"));
                    h.append(*name, HeaderValue::from_static("y"));
                }
            }
            strip(&mut h);
            let left: Vec<_> = h.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            assert_eq!(left.len(), 3, "mask {mask:b}: {left:?}");
            assert_eq!(h.get_all("x-kept").iter().count(), 2);
        }
    }
}
