//! Lists, events, disk usage and prunes (`Tenancy::Lists`, `Events`, `DiskUsage`, `Prunes`)
//! under isolation: not yet implemented, so every such request of an isolated client is
//! refused.

use http::{Request, Response};

use super::layer::Isolating;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::refusal::Isolated;
use crate::route::Tenancy;

/// Rewrites the request so that the daemon acts on the tenant's objects only.
pub async fn request(
    isolating: &Isolating,
    tenancy: Tenancy,
    request: Request<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    let _ = (tenancy, request);
    Err(isolating.refuse(Isolated::Unavailable))
}

/// Rewrites the daemon's answer so that it shows the tenant's objects only.
pub fn response(
    isolating: &Isolating,
    tenancy: Tenancy,
    response: Response<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let _ = (isolating, tenancy);
    Ok(response)
}
