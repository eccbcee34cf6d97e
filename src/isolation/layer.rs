//! The isolation layer: for a client whose policy isolates it, works out its tenant and
//! applies the operation's [`Tenancy`]: passes what touches no tenant's objects, refuses what
//! isolated clients cannot use, and hands the rest to [`super::objects`] and
//! [`super::views`]. Clients of policies without isolation pass untouched.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::owners::NameCache;
use super::pins::{self, Pins};
use super::{objects, views, Tenant};
use crate::body::ProxyBody;
use crate::context::Trail;
use crate::error::{BoxError, ProxyError};
use crate::layer_future::LayerFuture;
use crate::listener::ConnInfo;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;
use crate::policy::Isolation;
use crate::refusal::{Isolated, Refusal, RefusalKind};
use crate::route::{Admit, ImageMaker, Tenancy};

/// What isolating one request works with: who the tenant is, the label that records owners,
/// the authorization's facts and the daemon's state.
#[derive(Debug, Clone)]
pub struct Isolating {
    /// Whose objects the request may see and touch.
    pub tenant: Tenant,
    /// The label key that records an object's tenant.
    pub owner_label: Arc<str>,
    /// What authorization established.
    pub authorized: Authorized,
    /// The daemon's state, through the forwarder's client.
    pub lookup: Lookup,
}

impl Isolating {
    /// The refusal of this request for `why`; [`Isolated::NotOwned`] reaches the client as
    /// the daemon's own 404 for a missing object.
    pub fn refuse(&self, why: Isolated) -> ProxyError {
        let authorized = &self.authorized;
        ProxyError::Denied(Box::new(Refusal {
            operation: authorized.operation.name,
            method: authorized.method.clone(),
            path: authorized.normalized.path.clone(),
            policy: Some(authorized.policy.name.clone()),
            rule: Arc::from(format!("{}.isolation", authorized.policy.name)),
            kind: RefusalKind::Isolation(why),
        }))
    }
}

/// The tenant of an authorized request, if its policy isolates it.
pub fn tenant(authorized: &Authorized, conn: Option<&ConnInfo>) -> Option<Tenant> {
    let isolation = authorized.policy.isolation;
    if isolation == Isolation::None {
        return None;
    }
    Tenant::of(isolation, &authorized.client, conn.map(|c| &c.peer))
}

/// Adds [`Isolate`] in front of a service; `lookup` reads the daemon's state.
#[derive(Clone, Debug)]
pub struct IsolationLayer {
    lookup: Lookup,
}

impl IsolationLayer {
    /// The layer, reading daemon state through `lookup`.
    pub fn new(lookup: Lookup) -> IsolationLayer {
        IsolationLayer { lookup }
    }
}

impl<S> Layer<S> for IsolationLayer {
    type Service = Isolate<S>;

    fn layer(&self, inner: S) -> Isolate<S> {
        Isolate {
            inner,
            lookup: self.lookup.clone(),
        }
    }
}

/// Keeps an isolated client to its own objects.
#[derive(Clone, Debug)]
pub struct Isolate<S> {
    inner: S,
    lookup: Lookup,
}

impl<S> Service<Request<ProxyBody>> for Isolate<S>
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
        if changes_container_names(&request) {
            // Forgotten now and again when the daemon has answered: a name resolved meanwhile
            // may already be out of date.
            NameCache::global().forget_all();
            let future = self.call_checked(request);
            return LayerFuture::boxed(async move {
                let answer = future.await;
                NameCache::global().forget_all();
                answer
            });
        }
        self.call_checked(request)
    }
}

/// Whether the request creates, renames or removes containers (whoever sends it), which
/// makes the names resolved for tenants out of date.
fn changes_container_names(request: &Request<ProxyBody>) -> bool {
    request
        .extensions()
        .get::<Authorized>()
        .is_some_and(|a| a.operation.info.tenancy.changes_container_names())
}

impl<S> Isolate<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    fn call_checked(&mut self, request: Request<ProxyBody>) -> LayerFuture<S::Future> {
        let isolating = isolating(&request, &self.lookup);
        let Some(isolating) = isolating else {
            return LayerFuture::inner(self.inner.call(request));
        };
        let tenancy = isolating.authorized.operation.info.tenancy;
        if tenancy == Tenancy::Shared {
            let mut request = request;
            // A BuildKit session carries its tenant on, for the check of the Dockerfile it
            // carries (`inspect::layer::session`).
            if isolating.authorized.operation.info.hijack == Some(crate::route::Hijack::Session) {
                request.extensions_mut().insert(isolating.tenant.clone());
            }
            return LayerFuture::inner(self.inner.call(request));
        }
        // The ready service is used for this request; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        LayerFuture::boxed(async move {
            let mut request = request;
            request.extensions_mut().insert(isolating.tenant.clone());
            match tenancy {
                Tenancy::Shared => inner.call(request).await.map_err(Into::into),
                Tenancy::Unavailable => Err(isolating.refuse(Isolated::Unavailable).into()),
                Tenancy::AnsweredEmpty(body) => Ok(answered_empty(&isolating, &request, body)),
                Tenancy::Owned(admit) | Tenancy::Creates(admit) => {
                    // A create a quota counts holds the tenant's turn from the count to the
                    // daemon's answer, so creates in parallel cannot all count the same total.
                    let _turn = if quota_counted(&isolating, admit) {
                        Some(quota_turn(&isolating).await)
                    } else {
                        None
                    };
                    // An image delete holds the tenant's removal turn from its check of the
                    // running builds' pins to the daemon's answer.
                    let _removal = match admit {
                        Admit::RemovesImage => Some(removal_turn(&isolating).await),
                        _ => None,
                    };
                    // A build's pins: the images its Dockerfile uses, held until its answer
                    // has ended (the inspection of its context adds them).
                    let pins = (admit == Admit::MakesImage(ImageMaker::Build)).then(|| {
                        let pins =
                            Pins::open(&isolating.owner_label, isolating.tenant.label_value());
                        request.extensions_mut().insert(Arc::clone(&pins));
                        pins
                    });
                    let request = objects::admit(&isolating, request).await?;
                    let response = inner.call(request).await.map_err(Into::into)?;
                    let response = objects::answer(&isolating, response).await?;
                    Ok(match pins {
                        Some(pins) => held_until_answered(response, pins),
                        None => response,
                    })
                }
                Tenancy::Prunes(crate::route::ObjectKind::Image) => {
                    let _removal = removal_turn(&isolating).await;
                    Ok(views::prune::images(&isolating).await?)
                }
                Tenancy::Lists(_) | Tenancy::Events | Tenancy::DiskUsage | Tenancy::Prunes(_) => {
                    let request = views::request(&isolating, tenancy, request).await?;
                    let response = inner.call(request).await.map_err(Into::into)?;
                    Ok(views::response(&isolating, tenancy, response).await?)
                }
            }
        })
    }
}

/// The tenant's turn to remove images (see [`super::pins`]).
async fn removal_turn(isolating: &Isolating) -> tokio::sync::OwnedRwLockReadGuard<()> {
    pins::changing(&isolating.owner_label, isolating.tenant.label_value()).await
}

/// The answer, holding `pins` until it has been passed on whole (or dropped).
fn held_until_answered(response: Response<ProxyBody>, pins: Arc<Pins>) -> Response<ProxyBody> {
    use http_body_util::BodyExt;
    response.map(|body| {
        crate::body::boxed(body.map_frame(move |frame| {
            let _held = &pins;
            frame
        }))
    })
}

/// The isolation facts of a request whose client's policy isolates it.
fn isolating(request: &Request<ProxyBody>, lookup: &Lookup) -> Option<Isolating> {
    let extensions = request.extensions();
    let authorized = extensions.get::<Authorized>()?;
    let tenant = tenant(authorized, crate::context::conn(extensions))?;
    let owner_label = crate::context::owner_label(extensions);
    Some(Isolating {
        tenant,
        owner_label,
        authorized: authorized.clone(),
        lookup: lookup.clone(),
    })
}

/// Whether the request is a create the policy's quotas count: a container (its implicit
/// volumes too) under `max_containers` or `max_volumes`, a volume under `max_volumes`.
fn quota_counted(isolating: &Isolating, admit: Admit) -> bool {
    let policy = &isolating.authorized.policy;
    match admit {
        Admit::ContainerBody => policy.max_containers.is_some() || policy.max_volumes.is_some(),
        Admit::VolumeBody => policy.max_volumes.is_some(),
        _ => false,
    }
}

/// Most tenants whose turn locks are kept while unused; past it, unused ones are dropped.
const TURNS_KEPT: usize = 1024;

/// The tenant's turn for quota-counted creates: one at a time per tenant (and owner label),
/// in the order they arrived; other tenants are not held up.
async fn quota_turn(isolating: &Isolating) -> tokio::sync::OwnedMutexGuard<()> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static TURNS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let key = format!(
        "{}\0{}",
        isolating.owner_label,
        isolating.tenant.label_value()
    );
    let turn = {
        let mut turns = TURNS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if turns.len() >= TURNS_KEPT {
            turns.retain(|_, t| Arc::strong_count(t) > 1);
        }
        turns.entry(key).or_default().clone()
    };
    turn.lock_owned().await
}

/// The answer to a request that acts on what tenants share and cannot be scoped to one
/// (`Tenancy::AnsweredEmpty`: the build cache's prune), given without forwarding: what the
/// daemon answers when it has nothing of the kind. Recorded as answered by sockwarden.
fn answered_empty(
    isolating: &Isolating,
    request: &Request<ProxyBody>,
    body: &'static str,
) -> Response<ProxyBody> {
    if let Some(trail) = request.extensions().get::<Arc<Trail>>() {
        trail.note_answered(
            Arc::from(format!("{}.isolation", isolating.authorized.policy.name)),
            "answered by sockwarden with nothing pruned, not forwarded: the build cache is \
             shared by every tenant and cannot be scoped to one (isolation)",
        );
    }
    let mut response = Response::new(crate::body::boxed(http_body_util::Full::new(
        bytes::Bytes::from_static(body.as_bytes()),
    )));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
