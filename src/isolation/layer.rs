//! The isolation layer: for a client whose policy isolates it, works out its tenant and
//! applies the operation's [`Tenancy`]: passes what touches no tenant's objects, refuses what
//! isolated clients cannot use, and hands the rest to [`super::objects`] and
//! [`super::views`]. Clients of policies without isolation pass untouched.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use super::{objects, views, Tenant};
use crate::body::ProxyBody;
use crate::context::{Caller, Trail};
use crate::error::{BoxError, ProxyError};
use crate::layer_future::LayerFuture;
use crate::listener::ConnInfo;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;
use crate::policy::Isolation;
use crate::refusal::{Isolated, Refusal, RefusalKind};
use crate::route::Tenancy;

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
        let isolating = isolating(&request, &self.lookup);
        let Some(isolating) = isolating else {
            return LayerFuture::inner(self.inner.call(request));
        };
        if let Some(trail) = request.extensions().get::<Arc<Trail>>() {
            trail.note_tenant(isolating.tenant.label_value());
        }
        let tenancy = isolating.authorized.operation.info.tenancy;
        if tenancy == Tenancy::Shared {
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
                Tenancy::Owned | Tenancy::Creates => {
                    let request = objects::admit(&isolating, request).await?;
                    inner.call(request).await.map_err(Into::into)
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

/// The isolation facts of a request whose client's policy isolates it.
fn isolating(request: &Request<ProxyBody>, lookup: &Lookup) -> Option<Isolating> {
    let extensions = request.extensions();
    let authorized = extensions.get::<Authorized>()?;
    let tenant = tenant(authorized, extensions.get::<ConnInfo>())?;
    let owner_label = extensions
        .get::<Caller>()
        .map(|caller| caller.runtime.authority.owner_label().clone())
        .unwrap_or_else(|| Arc::from(crate::policy::DEFAULT_OWNER_LABEL));
    Some(Isolating {
        tenant,
        owner_label,
        authorized: authorized.clone(),
        lookup: lookup.clone(),
    })
}
