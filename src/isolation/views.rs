//! Lists, events, disk usage and prunes (`Tenancy::Lists`, `Events`, `DiskUsage`, `Prunes`)
//! under isolation: what the daemon answers or removes covers only the tenant's objects.
//!
//! | operation | request | answer |
//! |-----------|---------|--------|
//! | `containers/json`, `volumes`, `networks` | `label=OWNER=TENANT` added to the filters | as the daemon scoped it |
//! | `images/json` | filters checked | own and shared (unowned) images only ([`answer::images`]) |
//! | `system/df` | as sent | own containers, volumes, own and shared images, no build cache ([`answer::disk_usage`]) |
//! | `events` | filters checked | own objects' events, line by line ([`events`]) |
//! | container, volume, network prune | `label=OWNER=TENANT` added | as the daemon pruned |
//! | image prune | not forwarded: sockwarden removes the tenant's recorded images one by one ([`prune`]) | the images removed |
//!
//! The client's `filters` are read as the daemon reads them ([`filters`]); malformed ones are
//! refused with the daemon's 400, ones that name the owner label with a refusal
//! ([`Isolated::ForgedOwner`]); the daemon then receives one canonical `filters` parameter
//! that sockwarden wrote. The daemon ANDs `label` filters, so the added one only narrows what
//! the client asked for; where it cannot express the scope (own OR shared images; events of
//! volumes and networks, which carry no labels) the answer is filtered instead. An image's
//! label alone does not make it a tenant's (anyone can pull or load an image labelled with a
//! tenant's name; see `ledger`), so an image prune is not the daemon's to scope.

pub mod answer;
pub mod events;
pub mod filters;
pub mod owners;
pub mod prune;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};

use self::answer::Scope;
use self::filters::{query_escape, Filters};
use super::layer::Isolating;
use crate::body::{self, ProxyBody};
use crate::error::ProxyError;
use crate::refusal::Isolated;
use crate::route::{ObjectKind, Tenancy};

/// Largest list or disk usage answer filtered; a larger one is refused rather than shown
/// unfiltered.
const ANSWER_LIMIT: usize = 64 << 20;

/// Rewrites the request so that the daemon acts on the tenant's objects only.
pub async fn request(
    isolating: &Isolating,
    tenancy: Tenancy,
    request: Request<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    let scoped_by_daemon = match tenancy {
        Tenancy::Lists(ObjectKind::Container | ObjectKind::Volume | ObjectKind::Network)
        | Tenancy::Prunes(_) => true,
        Tenancy::Lists(_) | Tenancy::Events => false,
        // Disk usage takes no filters: the answer is filtered.
        Tenancy::DiskUsage => return Ok(request),
        _ => return Err(isolating.refuse(Isolated::Unavailable)),
    };
    let query = &isolating.authorized.normalized.query;
    // The daemon reads the first `filters` (Go's `Form.Get`).
    let mut filters = Filters::parse(query.get("filters").unwrap_or(""))
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    if let Some(spelled) = filters.names_owner_label(&isolating.owner_label) {
        return Err(isolating.refuse(Isolated::ForgedOwner {
            field: format!("filters {spelled}"),
        }));
    }
    if let Tenancy::Lists(kind @ (ObjectKind::Container | ObjectKind::Image)) = tenancy {
        references(isolating, kind, &filters).await?;
    }
    if scoped_by_daemon {
        filters.add(
            "label",
            &format!(
                "{}={}",
                isolating.owner_label,
                isolating.tenant.label_value()
            ),
        );
    }
    let mut rebuilt = String::new();
    for (key, value) in query.pairs() {
        if key == "filters" {
            continue;
        }
        push_pair(&mut rebuilt, key, value);
    }
    if let Some(json) = filters.to_json() {
        push_pair(&mut rebuilt, "filters", &json);
    }
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let target = if rebuilt.is_empty() {
        path
    } else {
        format!("{path}?{rebuilt}")
    };
    parts.uri = Uri::try_from(target)
        .map_err(|e| ProxyError::BadRequest(format!("invalid request target: {e}")))?;
    Ok(Request::from_parts(parts, body))
}

/// The objects a list's `before` and `since` filters name (the daemon resolves them and
/// answers 404 for a missing one): another tenant's answer as missing too, so that a filter
/// cannot probe for them. Shared images may be named.
async fn references(
    isolating: &Isolating,
    kind: ObjectKind,
    filters: &Filters,
) -> Result<(), ProxyError> {
    let owner_kind = match kind {
        ObjectKind::Container => owners::Kind::Container,
        _ => owners::Kind::Image,
    };
    for key in ["before", "since"] {
        for name in filters.get(key) {
            let found =
                owners::look_up(&isolating.lookup, owner_kind, name, &isolating.owner_label)
                    .await
                    .map_err(|e| {
                        ProxyError::BadUpstream(format!("cannot check {key}={name}: {e}"))
                    })?;
            let visible = match found {
                // Missing: the daemon answers its own 404.
                None => true,
                Some(Some(owner)) => owner == isolating.tenant.label_value(),
                Some(None) => kind == ObjectKind::Image,
            };
            if !visible {
                return Err(isolating.refuse(Isolated::NotOwned {
                    kind,
                    name: name.to_owned(),
                }));
            }
        }
    }
    Ok(())
}

fn push_pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(&query_escape(key));
    out.push('=');
    out.push_str(&query_escape(value));
}

/// Rewrites the daemon's answer so that it shows the tenant's objects only.
pub async fn response(
    isolating: &Isolating,
    tenancy: Tenancy,
    response: Response<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    if response.status() != StatusCode::OK {
        return Ok(response);
    }
    if matches!(
        tenancy,
        Tenancy::Lists(ObjectKind::Image) | Tenancy::DiskUsage
    ) {
        // A ledger that has yet to adopt the daemon's labelled images does so first.
        if let Some(ledger) = super::ledger::global() {
            super::ledger::adopt::ready(ledger, &isolating.lookup, &isolating.owner_label)
                .await
                .map_err(|e| {
                    ProxyError::BadUpstream(format!("isolation could not check ownership: {e}"))
                })?;
        }
    }
    let scope = Scope {
        owner_label: &isolating.owner_label,
        tenant: isolating.tenant.label_value(),
        recorded: |id, tenant| super::ledger::owned_by(id, tenant, tenant),
    };
    match tenancy {
        Tenancy::Lists(ObjectKind::Image) => {
            rewrite(response, |doc| answer::images(doc, scope)).await
        }
        Tenancy::DiskUsage => rewrite(response, |doc| answer::disk_usage(doc, scope)).await,
        Tenancy::Events => Ok(events::filtered(
            response,
            events::EventScope {
                owner_label: isolating.owner_label.to_string(),
                tenant: isolating.tenant.label_value().to_owned(),
                lookup: isolating.lookup.clone(),
            },
        )),
        _ => Ok(response),
    }
}

/// Reads a JSON answer whole (bounded), filters it with `edit` and writes it back.
async fn rewrite(
    response: Response<ProxyBody>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut parts, body) = response.into_parts();
    let bytes = Limited::new(body, ANSWER_LIMIT)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream(format!("answer not filterable: {e}")))?
        .to_bytes();
    let mut document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::BadUpstream(format!("answer to filter is not JSON: {e}")))?;
    edit(&mut document);
    let text = serde_json::to_vec(&document)
        .map_err(|e| ProxyError::BadUpstream(format!("cannot write filtered answer: {e}")))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok(Response::from_parts(
        parts,
        body::boxed(Full::new(Bytes::from(text))),
    ))
}
