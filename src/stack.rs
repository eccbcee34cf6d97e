//! The one place the request path is assembled. Read top to bottom: that is the order a
//! request passes through; the response comes back bottom to top.

use std::convert::Infallible;

use http::{Request, Response};
use tower::util::BoxCloneService;
use tower::ServiceBuilder;

use crate::access_log::AccessLogLayer;
use crate::body::ProxyBody;
use crate::error::RescueLayer;
use crate::forward::Forward;
use crate::guard;

/// The assembled request path: infallible, every failure is already a response.
pub type ProxyService = BoxCloneService<Request<ProxyBody>, Response<ProxyBody>, Infallible>;

/// Builds the stack in front of `forward`.
pub fn build(forward: Forward) -> ProxyService {
    let service = ServiceBuilder::new()
        // Outermost, so it sees the final status of every request, refusals included, and
        // counts the bytes the client really sent and received.
        .layer(AccessLogLayer)
        // From here outward nothing fails: an error becomes a Docker-shaped response.
        .layer(RescueLayer)
        // Malformed or proxy-style requests end here with 400, before any other work.
        .filter(guard::check)
        .service(forward);
    BoxCloneService::new(service)
}
