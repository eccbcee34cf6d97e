//! The inspection layer, beside the inspectors it runs: for the operations whose body or
//! parameters can change the host's security, read the (small, JSON) body up to a limit, run
//! the matching inspector from `inspect` with the client's policy settings, and forward
//! exactly the bytes that were inspected. Everything else streams through untouched.
//!
//! A body that is too large, arrives broken, has the wrong media type or fails inspection is
//! refused; nothing is ever passed through uninspected on these routes.
//!
//! The checks that need the daemon's state run here too (`crate::reach`, through a `Lookup`
//! on the forwarder's client): a container create that passed has its image, named volumes and
//! host bind sources checked; an operation that reaches an existing container or exec (the
//! operation table's `reaches`) has the object's stored configuration checked, and addresses a
//! container by the full ID that was checked.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};

use std::sync::Arc;

use crate::body::{self, read_limited, ProxyBody};
use crate::buildcgroup::{BuildCgroup, BuildCgroups};
use crate::context::Trail;
use crate::error::{BoxError, ProxyError};
use crate::hostpath::WritableSources;
use crate::inspect;
use crate::layer_future::LayerFuture;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;
use crate::reach;
use crate::refusal::{Refusal, RefusalKind};
use crate::route::{BodyUse, Inspector, OperationInfo, Section};

mod build_query;
mod context;
pub mod fetch;
pub mod session;

pub use build_query::rewritten_build_query;
use build_query::{apply_query_defaults, build_cgroup};

pub use crate::body::INSPECT_LIMIT;

/// What is inspected for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A JSON body, read and inspected.
    Body,
    /// No body allowed at all (a legacy HostConfig on start would replace the container's).
    NoBody,
    /// Query parameters only; the body (a build context) streams.
    Query,
    /// An operation that takes no body got one that may not be empty: it must be.
    Empty,
    /// Only what it makes the daemon fetch (its query or path); the body, if any, streams.
    Fetch,
}

/// What to inspect for an operation, from its entry in the operation table; `None` when its
/// body streams to the daemon untouched (or it has none).
fn check_for(info: &OperationInfo, body_known_empty: bool) -> Option<Check> {
    let check = body_check(info, body_known_empty);
    // An operation that writes an image name has its query checked even when its body
    // streams (commit, import, load) or must be empty (tag).
    if check.is_none() && info.writes_image.is_some() {
        return Some(Check::Query);
    }
    check
}

fn body_check(info: &OperationInfo, body_known_empty: bool) -> Option<Check> {
    match info.body {
        BodyUse::Inspected(Inspector::ContainerStart) => Some(Check::NoBody),
        BodyUse::Inspected(inspector) if !inspector.reads_body() => Some(Check::Query),
        BodyUse::Inspected(_) => Some(Check::Body),
        // A body where none belongs is read differently by different parsers (and by old
        // daemons, as on `start`): it must be empty.
        BodyUse::None if !body_known_empty => Some(Check::Empty),
        BodyUse::None | BodyUse::Streamed => None,
    }
}

/// Runs the inspector for an authorized request on its complete body, returning the
/// security-relevant settings it saw (for the audit log). Also used by `sockwarden explain`.
pub fn check_request(
    authorized: &Authorized,
    body: &[u8],
) -> Result<Option<inspect::Summary>, ProxyError> {
    check_violation(authorized, body).map_err(|violation| refusal(authorized, &violation))
}

/// The refusal a client gets for an inspection violation: 403 naming the policy and its
/// inspection section as the rule.
pub fn refusal(authorized: &Authorized, violation: &inspect::Violation) -> ProxyError {
    let operation = authorized.operation.name;
    ProxyError::Denied(Box::new(Refusal {
        operation,
        method: authorized.method.clone(),
        path: authorized.normalized.path.clone(),
        policy: Some(authorized.policy.name.clone()),
        rule: Arc::from(format!("{}.{}", authorized.policy.name, section(operation))),
        kind: RefusalKind::Inspection(violation.clone()),
    }))
}

/// Whether `operation`'s request body is read and inspected (so deciding it needs the body).
pub fn inspects_body(operation: &str) -> bool {
    crate::route::operation_info(operation)
        .is_some_and(|info| check_for(info, true) == Some(Check::Body))
}

/// [`check_request`] with the inspector's own refusal, which names the setting that would
/// allow it (for `sockwarden explain`).
pub fn check_violation(
    authorized: &Authorized,
    body: &[u8],
) -> Result<Option<inspect::Summary>, inspect::Violation> {
    check_with_names(authorized, body).map(|(summary, _)| summary)
}

/// [`check_violation`], also returning the fetch sources on DNS names that are left to resolve
/// (see [`fetch_sources`]), so that [`judge_names`] need not work them out again.
fn check_with_names(
    authorized: &Authorized,
    body: &[u8],
) -> Result<(Option<inspect::Summary>, Vec<inspect::fetch::Source>), inspect::Violation> {
    if !authorized.policy.inspection {
        return Ok((None, Vec::new()));
    }
    let info = authorized.operation.info;
    let rules = &authorized.policy.inspect;
    let query = authorized.normalized.query.pairs();
    let summary = match info.inspector() {
        Some(inspector) => Some(run_inspector(authorized, inspector, body)?),
        None => None,
    };
    let names = fetch_sources(
        authorized,
        summary.as_ref().and_then(|s| s.image.as_deref()),
    )?;
    if let Some(write) = info.writes_image {
        let written = inspect::image_names::check(write, query, &rules.build, &rules.container)?;
        return Ok((Some(summary.unwrap_or(written)), names));
    }
    Ok((summary, names))
}

fn run_inspector(
    authorized: &Authorized,
    inspector: Inspector,
    body: &[u8],
) -> Result<inspect::Summary, inspect::Violation> {
    let rules = &authorized.policy.inspect;
    let query = authorized.normalized.query.pairs();
    match inspector {
        Inspector::ContainerCreate => {
            match inspect::defaults::cgroupns_unwritable(
                body,
                &rules.container,
                authorized.normalized.version,
            ) {
                Some(violation) => Err(violation),
                None => inspect::container_create(body, query, &rules.container),
            }
        }
        Inspector::ContainerUpdate => inspect::container_update(body, &rules.container),
        Inspector::ContainerStart => {
            inspect::container_start_query(query).and_then(|()| inspect::container_start(body))
        }
        Inspector::ExecCreate => inspect::exec_create(body, &rules.exec),
        Inspector::VolumeCreate => inspect::volume_create(body, &rules.volume),
        Inspector::NetworkCreate => inspect::network_create(body, &rules.network),
        Inspector::NetworkConnect => inspect::network_connect(body, &rules.container),
        Inspector::Build => {
            let prepared = authorized.build_cgroup.as_deref();
            inspect::build_query_prepared(query, &rules.build, prepared).and_then(|summary| {
                inspect::build_caps_prepared(query, &rules.build, &rules.container, prepared)
                    .map(|()| summary)
            })
        }
        Inspector::ServiceCreate => inspect::service_create(body, query, &rules.container),
        Inspector::ServiceUpdate => inspect::service_update(body, query, &rules.container),
        Inspector::PluginPull => inspect::plugin_pull(body, query, &rules.plugin),
        Inspector::PluginUpgrade => inspect::plugin_upgrade(
            body,
            query,
            authorized.operation.object.as_deref(),
            &rules.plugin,
        ),
    }
}

/// The sources an operation makes the daemon fetch from (see `route::Fetch`), with those
/// forbidden by their text refused; returns the ones on DNS names, left to resolve.
/// `image` is a service spec's image, as its inspector read it.
fn fetch_sources(
    authorized: &Authorized,
    image: Option<&str>,
) -> Result<Vec<inspect::fetch::Source>, inspect::Violation> {
    let Some(kind) = authorized.operation.info.fetch else {
        return Ok(Vec::new());
    };
    let sources = inspect::fetch::request_sources(
        kind,
        authorized.normalized.query.pairs(),
        authorized.operation.object.as_deref(),
        image,
    )?;
    inspect::fetch::check_literal(sources, &fetch::local_facts())
}

/// Resolves the DNS names an operation makes the daemon fetch from and refuses forbidden
/// addresses (after [`check_violation`] passed). `names`: those [`judge`] found; `None` when
/// the request was not judged (or its judgement was only noted), then they are worked out here
/// (`image`: as for [`fetch_sources`]).
async fn judge_names(
    authorized: &Authorized,
    trail: Option<&Trail>,
    image: Option<&str>,
    names: Option<Vec<inspect::fetch::Source>>,
) -> Result<(), ProxyError> {
    if !authorized.policy.inspection {
        return Ok(());
    }
    let names = match names {
        Some(names) => Ok(names),
        None => fetch_sources(authorized, image),
    };
    let checked = match names {
        Ok(names) if names.is_empty() => Ok(()),
        Ok(names) => fetch::check_names(&names, &fetch::local_facts()).await,
        Err(violation) => Err(violation),
    };
    settle(authorized, trail, checked)
}

/// The policy section whose settings decide an operation's inspection (`build` for one that
/// only writes image names, `container` for an operation nothing inspects), from the
/// operation table.
pub fn section(operation: &str) -> &'static str {
    let info = crate::route::operation_info(operation);
    match info.and_then(|info| info.inspector()) {
        Some(inspector) => inspector.section().as_str(),
        None if info.is_some_and(|i| i.writes_image.is_some()) => Section::Build.as_str(),
        None => Section::Container.as_str(),
    }
}

/// Adds [`Inspect`] in front of a service; `lookup` reads the daemon's state for the checks
/// that need it (`crate::reach`).
#[derive(Clone, Debug)]
pub struct InspectLayer {
    lookup: Lookup,
    build_cgroups: Option<Arc<BuildCgroups>>,
}

impl InspectLayer {
    /// The layer, reading daemon state through `lookup`.
    pub fn new(lookup: Lookup) -> InspectLayer {
        InspectLayer {
            lookup,
            build_cgroups: None,
        }
    }

    /// Classic builds under a pids cap get a cgroup from `build_cgroups` (when set).
    pub fn with_build_cgroups(mut self, build_cgroups: Option<Arc<BuildCgroups>>) -> Self {
        self.build_cgroups = build_cgroups;
        self
    }
}

impl<S> Layer<S> for InspectLayer {
    type Service = Inspect<S>;

    fn layer(&self, inner: S) -> Inspect<S> {
        Inspect {
            inner,
            lookup: self.lookup.clone(),
            build_cgroups: self.build_cgroups.clone(),
        }
    }
}

/// Inspects what needs it, then calls the inner service with the same bytes.
#[derive(Clone, Debug)]
pub struct Inspect<S> {
    inner: S,
    lookup: Lookup,
    build_cgroups: Option<Arc<BuildCgroups>>,
}

impl<S> Service<Request<ProxyBody>> for Inspect<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = BoxError;
    type Future = LayerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        let body_known_empty = http_body::Body::is_end_stream(request.body());
        let inspected = request
            .extensions()
            .get::<Authorized>()
            .filter(|a| a.policy.inspection);
        let check = inspected.and_then(|a| {
            check_for(a.operation.info, body_known_empty).or(a
                .operation
                .info
                .fetch
                .map(|_| Check::Fetch))
        });
        let reaches = inspected.is_some_and(|a| a.operation.info.reaches);
        if check.is_none() && !reaches {
            return LayerFuture::inner(self.inner.call(request));
        }
        // The ready service is used for this request; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let lookup = self.lookup.clone();
        let build_cgroups = self.build_cgroups.clone();
        LayerFuture::boxed(async move {
            let (inspected, cgroup) = match check {
                Some(check) => {
                    inspect_request(request, check, &lookup, build_cgroups.as_ref()).await?
                }
                None => (Inspected::Ready(request), None),
            };
            let inspected = match inspected {
                Inspected::Ready(request) if reaches => {
                    Inspected::Ready(reach_request(request, &lookup).await?)
                }
                other => other,
            };
            let response = match inspected {
                Inspected::Ready(request) => inner.call(request).await.map_err(Into::into),
                Inspected::Streaming(request, pump) => {
                    // The context is read as it is forwarded; a refusal found on the way
                    // wins over whatever the daemon answered to the broken body.
                    let call = inner.call(request);
                    let forwarded = async move { call.await.map_err(Into::<BoxError>::into) };
                    let (response, refused) = tokio::join!(forwarded, pump);
                    match refused {
                        Some(refusal) => Err(refusal.into()),
                        None => response,
                    }
                }
            };
            // A build's cgroup lives as long as its response: removed when the response ends
            // or the client goes away (the body is dropped either way), or now on an error.
            match cgroup {
                Some(cgroup) => response.map(|r| r.map(|b| body::with_guard(b, cgroup))),
                None => response,
            }
        })
    }
}

/// The bind sources containers may write to, from the configuration the request is decided
/// under.
fn writable_sources(extensions: &http::Extensions) -> WritableSources {
    WritableSources(
        crate::context::caller(extensions)
            .map(|c| {
                c.runtime
                    .authority
                    .writable_bind_sources()
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Checks the existing object an operation reaches (see `crate::reach`), and addresses a
/// container by the full ID that was checked.
async fn reach_request(
    request: Request<ProxyBody>,
    lookup: &Lookup,
) -> Result<Request<ProxyBody>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let Some(authorized) = parts.extensions.get::<Authorized>().cloned() else {
        return Err(ProxyError::BadRequest("request was not authorized".into()));
    };
    let (Some(kind), Some(name)) = (
        authorized.operation.info.object,
        authorized.operation.object.as_deref(),
    ) else {
        return Ok(Request::from_parts(parts, body));
    };
    let trail = parts.extensions.get::<Arc<Trail>>().cloned();
    let writable = writable_sources(&parts.extensions);
    let checked =
        reach::check_reach(kind, name, &authorized.policy.inspect, &writable, lookup).await;
    match checked {
        Ok(reached) => {
            if let Some(id) = reached.container_id {
                address_by_id(&mut parts, &authorized, name, &id)?;
            }
            Ok(Request::from_parts(parts, body))
        }
        Err(violation) if authorized.dry_run => {
            if let Some(trail) = trail.as_deref() {
                trail.note_inspection(None, Some((authorized.operation.name, violation)));
            }
            Ok(Request::from_parts(parts, body))
        }
        Err(violation) => {
            // A streamed body (an archive, an exec start's options) is read first, so that the
            // client reads the refusal instead of a broken pipe.
            body::drain_refused(body).await;
            Err(refusal(&authorized, &violation))
        }
    }
}

/// Rewrites `/containers/{name}/...` to `/containers/{id}/...` (version prefix and query
/// kept as sent): the daemon acts on the container that was checked, whatever the name
/// points at by then.
fn address_by_id(
    parts: &mut http::request::Parts,
    authorized: &Authorized,
    name: &str,
    id: &str,
) -> Result<(), ProxyError> {
    const PREFIX: &str = "/containers/";
    let normalized = &authorized.normalized;
    let Some(rest) = normalized
        .path
        .strip_prefix(PREFIX)
        .and_then(|r| r.strip_prefix(name))
    else {
        return Ok(());
    };
    let target = crate::route::readdressed(normalized, parts.uri.query(), PREFIX, id, rest);
    parts.uri = target
        .parse()
        .map_err(|e| ProxyError::BadRequest(format!("invalid request target: {e}")))?;
    Ok(())
}

/// A request ready to forward, or one whose body is inspected while it is forwarded.
enum Inspected {
    Ready(Request<ProxyBody>),
    Streaming(
        Request<ProxyBody>,
        Pin<Box<dyn Future<Output = Option<ProxyError>> + Send>>,
    ),
}

/// Reads, checks and rebuilds the request, or refuses it.
async fn inspect_request(
    request: Request<ProxyBody>,
    check: Check,
    lookup: &Lookup,
    build_cgroups: Option<&Arc<BuildCgroups>>,
) -> Result<(Inspected, Option<BuildCgroup>), ProxyError> {
    let (parts, body) = request.into_parts();
    let Some(authorized) = parts.extensions.get::<Authorized>().cloned() else {
        return Err(ProxyError::BadRequest("request was not authorized".into()));
    };
    let trail = parts.extensions.get::<Arc<Trail>>().cloned();
    match check {
        Check::Query | Check::Fetch => {
            inspect_streamed(parts, body, check, authorized, trail, lookup, build_cgroups).await
        }
        Check::Empty => {
            let bytes = read_limited(body).await?;
            inspect_empty(parts, &bytes, &authorized, trail.as_deref()).await
        }
        Check::Body | Check::NoBody => {
            let bytes = read_limited(body).await?;
            inspect_body(parts, bytes, check, &authorized, trail.as_deref(), lookup).await
        }
    }
}

/// A request whose query is judged and whose body streams (a build context, an archive):
/// a classic build's cgroup and enforced limits rewrite the query first; a build context is
/// scanned as it streams to the daemon.
async fn inspect_streamed(
    parts: http::request::Parts,
    body: ProxyBody,
    check: Check,
    original: Authorized,
    trail: Option<Arc<Trail>>,
    lookup: &Lookup,
    build_cgroups: Option<&Arc<BuildCgroups>>,
) -> Result<(Inspected, Option<BuildCgroup>), ProxyError> {
    let mut parts = parts;
    // A classic build under a pids cap gets its own cgroup, written into the query.
    let cgroup = match build_cgroup(&original, build_cgroups, lookup).await {
        Ok(cgroup) => cgroup,
        Err(violation) => match settle(&original, trail.as_deref(), Err(violation)) {
            Ok(()) => None,
            Err(refusal) => {
                body::drain_refused(body).await;
                return Err(refusal);
            }
        },
    };
    // Enforced limits rewrite the query first; the rewritten query is inspected and sent.
    let rewrite = apply_query_defaults(&mut parts, trail.as_deref(), cgroup.as_ref());
    let authorized = match rewrite {
        Ok(Some(rewritten)) => rewritten,
        Ok(None) => original,
        Err(error) => {
            body::drain_refused(body).await;
            return Err(error);
        }
    };
    let authorized = &authorized;
    let judged = match check {
        Check::Query => judge(authorized, trail.as_deref(), &[]).map(|(_, names)| names),
        _ => Ok(None),
    };
    let judged = match judged {
        Ok(names) => judge_names(authorized, trail.as_deref(), None, names).await,
        Err(e) => Err(e),
    };
    if let Err(refusal) = judged {
        // The client may still be sending its body (a build context): read it first, as
        // every other refusal does, so that it reads the 403 instead of a broken pipe.
        body::drain_refused(body).await;
        return Err(refusal);
    }
    if context::unscannable_under_isolation(authorized)
        && parts.extensions.get::<crate::isolation::Tenant>().is_some()
    {
        // Isolation must see the images a classic build uses; a context the daemon
        // fetches itself has a Dockerfile sockwarden never reads. Enforced in either mode.
        body::drain_refused(body).await;
        return Err(refusal(
            authorized,
            &inspect::Violation {
                field: "remote".into(),
                reason: "a remote build context's Dockerfile cannot be read, so the images it builds from cannot be checked (isolation)"
                    .into(),
                setting: None,
                value: None,
            },
        ));
    }
    if context::scans(authorized) {
        let tenancy = tenant_images(&parts.extensions, lookup);
        let (upstream, pump) = context::stream(body, authorized, trail, tenancy);
        return Ok((
            Inspected::Streaming(Request::from_parts(parts, upstream), Box::pin(pump)),
            cgroup,
        ));
    }
    Ok((Inspected::Ready(Request::from_parts(parts, body)), cgroup))
}

/// Under isolation, what a build context's scan needs to check the images its Dockerfile
/// uses: the tenant and the owner label.
fn tenant_images(extensions: &http::Extensions, lookup: &Lookup) -> Option<context::TenantImages> {
    let tenant = extensions.get::<crate::isolation::Tenant>()?;
    let label = crate::context::owner_label(extensions);
    // The isolation layer holds the build's pins until its answer has ended.
    let pins = extensions
        .get::<Arc<crate::isolation::pins::Pins>>()
        .cloned()
        .unwrap_or_else(|| crate::isolation::pins::Pins::open(&label, tenant.label_value()));
    Some(context::TenantImages {
        lookup: lookup.clone(),
        label,
        tenant: tenant.clone(),
        pins,
    })
}

/// A request that takes no body: refused if it has one; a tag's query is judged.
async fn inspect_empty(
    parts: http::request::Parts,
    bytes: &Bytes,
    authorized: &Authorized,
    trail: Option<&Trail>,
) -> Result<(Inspected, Option<BuildCgroup>), ProxyError> {
    if !bytes.is_empty() {
        return Err(ProxyError::BadRequest(format!(
            "{} takes no request body, and this one has {} bytes",
            authorized.operation.name,
            bytes.len()
        )));
    }
    // A tag writes an image name: its query is checked too.
    let names = match authorized.operation.info.writes_image {
        Some(_) => judge(authorized, trail, &[])?.1,
        None => None,
    };
    judge_names(authorized, trail, None, names).await?;
    Ok((
        Inspected::Ready(Request::from_parts(parts, body::empty())),
        None,
    ))
}

/// A request whose JSON body is read whole, rewritten by enforced defaults, judged, checked
/// against the daemon's state (a create's host paths), and forwarded as exactly those bytes.
async fn inspect_body(
    parts: http::request::Parts,
    bytes: Bytes,
    check: Check,
    authorized: &Authorized,
    trail: Option<&Trail>,
    lookup: &Lookup,
) -> Result<(Inspected, Option<BuildCgroup>), ProxyError> {
    if check == Check::Body && !bytes.is_empty() {
        require_json(&parts.headers)?;
    }
    if let Some(trail) = trail.filter(|t| t.wants_body()) {
        trail.note_body(&bytes);
    }
    // Enforced defaults rewrite the body first; the rewritten bytes are inspected and sent.
    let bytes = match apply_defaults(authorized, &bytes) {
        Some((rewritten, applied)) => {
            if let Some(trail) = trail {
                trail.note_defaults(applied);
            }
            Bytes::from(rewritten)
        }
        None => bytes,
    };
    let (summary, names) = judge(authorized, trail, &bytes)?;
    // A service's image, for the fetch rule.
    let image = summary.as_ref().and_then(|s| s.image.clone());
    if let Some(summary) = summary
        .filter(|_| authorized.operation.info.inspector() == Some(Inspector::ContainerCreate))
    {
        let writable = writable_sources(&parts.extensions);
        let rules = &authorized.policy.inspect;
        let checked = reach::check_create(&bytes, &summary, rules, &writable, lookup).await;
        settle(authorized, trail, checked)?;
    }
    judge_names(authorized, trail, image.as_deref(), names).await?;
    // Under isolation, the networks the body names (as judged) go to the daemon as full IDs.
    let bytes = match parts
        .extensions
        .get::<crate::isolation::objects::PinnedNetworks>()
    {
        Some(pins) => Bytes::from(
            pins.apply(authorized.operation.info.tenancy.admit(), &bytes)
                .map_err(|e| ProxyError::BadRequest(format!("isolation: {e}")))?,
        ),
        None => bytes,
    };
    let mut parts = parts;
    // The exact bytes inspected (networks pinned) are forwarded; hyper frames them with a
    // Content-Length.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok((
        Inspected::Ready(Request::from_parts(parts, body::boxed(Full::new(bytes)))),
        None,
    ))
}

/// The policy's enforced defaults (resource limits a create leaves unset) applied to the body:
/// the new body and what was set, or `None` when nothing applies. Also used by `explain`.
pub fn apply_defaults(authorized: &Authorized, body: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    if !authorized.policy.inspection {
        return None;
    }
    let rules = &authorized.policy.inspect.container;
    let version = authorized.normalized.version;
    match authorized.operation.info.inspector()? {
        Inspector::ContainerCreate => inspect::defaults::container_defaults(body, rules, version),
        Inspector::ServiceCreate | Inspector::ServiceUpdate => {
            inspect::defaults::service_defaults(body, rules, version)
        }
        _ => None,
    }
}

/// What [`judge`] found: the inspector's summary, and the fetch sources on DNS names.
type Judged = (
    Option<inspect::Summary>,
    Option<Vec<inspect::fetch::Source>>,
);

/// Inspects, noting what was seen in the audit trail. In audit mode a refusal is only noted
/// (`would-deny`) and the request goes on; enforced, it is refused, and its record lists the
/// violation as a dry run's does (the error boundary notes the decision, rule and reason).
/// Returns what the inspector saw and the fetch sources on DNS names left to resolve (`None`
/// when a dry run only noted a refusal: [`judge_names`] then works them out itself).
fn judge(
    authorized: &Authorized,
    trail: Option<&Trail>,
    body: &[u8],
) -> Result<Judged, ProxyError> {
    match check_with_names(authorized, body) {
        Ok((summary, names)) => {
            if let Some(trail) = trail {
                trail.note_inspection(summary.clone(), None);
            }
            Ok((summary, Some(names)))
        }
        Err(violation) if authorized.dry_run => {
            if let Some(trail) = trail {
                trail.note_inspection(None, Some((authorized.operation.name, violation)));
            }
            Ok((None, None))
        }
        // The refusal carries the violation to the record (`Trail::note_error`).
        Err(violation) => Err(refusal(authorized, &violation)),
    }
}

/// A daemon-state check's outcome, as [`judge`] settles an inspection's: noted in a dry run,
/// refused when enforced.
fn settle(
    authorized: &Authorized,
    trail: Option<&Trail>,
    checked: Result<(), inspect::Violation>,
) -> Result<(), ProxyError> {
    match checked {
        Ok(()) => Ok(()),
        Err(violation) if authorized.dry_run => {
            if let Some(trail) = trail {
                trail.note_inspection(None, Some((authorized.operation.name, violation)));
            }
            Ok(())
        }
        Err(violation) => Err(refusal(authorized, &violation)),
    }
}

/// Inspected bodies must say they are JSON (parameters such as charset allowed), so the daemon
/// reads them as the inspector did.
fn require_json(headers: &http::HeaderMap) -> Result<(), ProxyError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match media.as_deref() {
        Some("application/json") => Ok(()),
        other => Err(ProxyError::BadRequest(format!(
            "an inspected request body must be application/json, not {}",
            other.unwrap_or("unlabelled")
        ))),
    }
}

#[cfg(test)]
mod tests;
