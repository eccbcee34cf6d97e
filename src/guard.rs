//! First line of defence: requests that are malformed for a Docker API proxy are answered 400
//! here and never reach the daemon.
//!
//! hyper has already refused what HTTP/1.1 itself forbids (bad request lines, invalid header
//! bytes, conflicting Content-Length values). This adds what is legal HTTP but has no place on
//! a Docker socket: proxy-style targets (`http://host/...`, `host:port`, `*`) and `CONNECT`,
//! which hyper would otherwise treat as a tunnel once answered with 2xx.

use http::{Method, Request};

use crate::body::ProxyBody;
use crate::error::ProxyError;

/// Accepts only origin-form requests (`/path?query`) with an ordinary method.
pub fn check(request: Request<ProxyBody>) -> Result<Request<ProxyBody>, ProxyError> {
    if request.method() == Method::CONNECT {
        return Err(ProxyError::BadRequest(
            "CONNECT is not part of the Docker API".into(),
        ));
    }
    let uri = request.uri();
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return Err(ProxyError::BadRequest(format!(
            "request target must be a path like /v1.41/containers/json, not {uri}"
        )));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;

    fn request(method: Method, target: &str) -> Request<ProxyBody> {
        Request::builder()
            .method(method)
            .uri(target)
            .body(body::empty())
            .unwrap()
    }

    #[test]
    fn origin_form_passes_others_refused() {
        assert!(check(request(Method::GET, "/v1.41/containers/json?all=1")).is_ok());
        assert!(check(request(Method::GET, "http://docker/containers/json")).is_err());
        assert!(check(request(Method::OPTIONS, "*")).is_err());
        assert!(check(request(Method::CONNECT, "docker:2375")).is_err());
    }
}
