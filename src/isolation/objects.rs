//! Requests that name or create an object (`Tenancy::Owned`, `Tenancy::Creates`) under
//! isolation: not yet implemented, so every such request of an isolated client is refused.

use http::Request;

use super::layer::Isolating;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::refusal::Isolated;

/// Checks and rewrites a request that names or creates an object, for the tenant.
pub async fn admit(
    isolating: &Isolating,
    request: Request<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    let _ = request;
    Err(isolating.refuse(Isolated::Unavailable))
}
