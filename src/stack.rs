//! The one place the request path is assembled. Read top to bottom: that is the order a
//! request passes through; the response comes back bottom to top.

use std::sync::Arc;

use tower::ServiceBuilder;

use crate::audit::layer::{AuditLayer, AuditService};
use crate::audit::Audit;
use crate::buildcgroup::BuildCgroups;
use crate::forward::Forward;
use crate::inspect::layer::{Inspect, InspectLayer};
use crate::isolation::layer::{Isolate, IsolationLayer};
use crate::limits::layer::{RateLimit, RateLimitLayer};
use crate::lookup::Lookup;
use crate::policy::layer::{Authorize, AuthorizeLayer};
use crate::redact::layer::{Redact, RedactLayer};
use crate::respond::{Rescue, RescueLayer};

/// The assembled request path: infallible, every failure is already a response. A concrete
/// type (not a boxed service): cloning it per connection and calling it per request allocate
/// nothing, and each layer's future is the inner one's on its fast path.
pub type ProxyService =
    AuditService<Rescue<RateLimit<Authorize<Isolate<Redact<Inspect<Forward>>>>>>>;

/// Builds the stack in front of `forward`, recording into `audit`. Each request arrives with
/// its [`crate::context::Caller`]: the client and the configuration snapshot it is decided under.
/// `build_cgroups`: where classic builds get a cgroup carrying the policy's pids cap
/// (`[upstream] build_cgroup`), if configured.
pub fn build(
    forward: Forward,
    audit: Audit,
    build_cgroups: Option<Arc<BuildCgroups>>,
) -> ProxyService {
    // The inspection layer asks the daemon about existing objects through the same client.
    let lookup = Lookup::new(forward.upstream().clone());
    ServiceBuilder::new()
        // Outermost, so it sees the final status of every request, refusals included, and
        // counts the bytes the client really sent and received: the audit record and the
        // metrics. Refuses everything (503) while a fail-closed audit log cannot write.
        .layer(AuditLayer::new(audit))
        // From here outward nothing fails: an error becomes a Docker-shaped response (and a
        // refusal noted in the audit trail).
        .layer(RescueLayer)
        // Per-client request rate and connection limits: 429, before any other work.
        .layer(RateLimitLayer)
        // Who is asking for what: normalize the request as the daemon reads it (proxy-style
        // targets, CONNECT and unclean paths end here with 400), classify it into
        // an operation, and refuse (403, naming policy and rule) what the client's policy does
        // not allow. Inner layers read the `Authorized` facts it leaves in the request.
        .layer(AuthorizeLayer)
        // Under a policy's `isolation`, a client sees and touches only its tenant's objects:
        // another tenant's answer as missing, names resolve to the tenant's own full IDs,
        // creates are labelled with the owner, lists and prunes cover the tenant's objects.
        .layer(IsolationLayer::new(lookup.clone()))
        // For policies that ask for it, Env values leave container and image inspect results
        // (dashboards need inspect, not credentials).
        .layer(RedactLayer)
        // Bodies and parameters that can change the host's security (container create and
        // update, exec create, volume and network create, build parameters, start without a
        // body) are read, inspected under the client's policy and forwarded byte for byte;
        // operations that reach an existing container or exec have its stored configuration
        // checked (through `lookup`), and creates their host paths, volumes and image;
        // everything else streams past untouched. A classic build under a pids cap gets its
        // own cgroup (`cgroupparent`), removed when its response ends.
        .layer(InspectLayer::new(lookup).with_build_cgroups(build_cgroups))
        .service(forward)
}
