//! Requests that name or create an object (`Tenancy::Owned`, `Tenancy::Creates`) under
//! isolation.
//!
//! - A request that names a container, exec, volume, network or image is checked before it is
//!   forwarded: another tenant's object, or no tenant's (an image excepted: images no tenant
//!   owns are shared base images), answers as a missing one, in the daemon's own words.
//!   Containers and networks are resolved among the tenant's own (full ID, exact name, unique
//!   ID prefix) and the request is re-addressed to the full ID, so a name re-pointed after the
//!   check cannot reach someone else's object.
//! - A create is labelled with the tenant (`Labels` of a container, volume or network body, the
//!   `labels` query of a build, a `LABEL` change of a commit or import), an owner label the
//!   client set itself is refused, and everything the create refers to (image, containers,
//!   volumes, networks) must be the tenant's; named volumes the daemon would create implicitly
//!   are created first, owned. Image names a create writes (`t`, `repo`, a pull's name) must
//!   not be held by an image the tenant does not own.
//! - Quotas (`max_containers`, `max_volumes`) are counted before a create.
//!
//! This layer runs before inspection: what it writes is what the inspector judges and the
//! daemon receives. Its rewrites update the request's `Authorized` facts and audit trail.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request};
use http_body_util::Full;
use serde_json::Value;

use super::json::{self, JsonProblem, Members};
use super::layer::Isolating;
use super::owners::{encode_component, ImageOwner, Owners, VolumeOwner};
use crate::body::{self, ProxyBody};
use crate::context::Trail;
use crate::error::ProxyError;
use crate::lookup::LookupError;
use crate::policy::layer::Authorized;
use crate::refusal::Isolated;
use crate::route::{escape_object, Admit, ImageMaker, ObjectKind, Query};

/// Networks every container may use: the daemon's own, which no tenant owns.
const SHARED_NETWORKS: [&str; 4] = ["default", "bridge", "host", "none"];

/// Checks and rewrites a request that names or creates an object, for the tenant.
pub async fn admit(
    isolating: &Isolating,
    request: Request<ProxyBody>,
) -> Result<Request<ProxyBody>, ProxyError> {
    let (mut parts, body) = request.into_parts();
    let admit = admit_of(isolating);
    if matches!(
        admit,
        Admit::ContainerBody
            | Admit::VolumeBody
            | Admit::NetworkBody
            | Admit::ConnectsNetwork
            | Admit::DisconnectsNetwork
    ) {
        let bytes = crate::body::read_limited(body).await?;
        let rewritten = match admit {
            Admit::ContainerBody => container_create(isolating, &mut parts, &bytes).await?,
            Admit::VolumeBody => volume_create(isolating, &bytes).await?,
            Admit::NetworkBody => network_create(isolating, &bytes).await?,
            _ => network_connect(isolating, &mut parts, &bytes).await?,
        };
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::TRANSFER_ENCODING);
        if !parts.headers.contains_key(header::CONTENT_TYPE) {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        return Ok(Request::from_parts(
            parts,
            body::boxed(Full::new(Bytes::from(rewritten))),
        ));
    }
    match admit_head(isolating, &mut parts).await {
        Ok(()) => Ok(Request::from_parts(parts, body)),
        Err(refusal) => {
            // A streamed body (a build context, an archive) is read first, so that the client
            // reads the refusal instead of a broken pipe.
            body::drain_refused(body).await;
            Err(refusal)
        }
    }
}

/// How the operation's request is admitted (the table's fact; [`Admit::PathObject`] for an
/// operation that names or creates nothing, which then finds no object to check).
fn admit_of(isolating: &Isolating) -> Admit {
    isolating
        .authorized
        .operation
        .info
        .tenancy
        .admit()
        .unwrap_or(Admit::PathObject)
}

/// Whether another tenant's image is answered in the daemon's own words for a missing image
/// of this request (see [`as_the_daemon_says`]).
fn probed(admit: Admit) -> bool {
    matches!(
        admit,
        Admit::ReadsImage { probed: true } | Admit::RemovesImage | Admit::TagsImage
    )
}

/// The requests whose path and query are checked and rewritten; their body streams.
async fn admit_head(
    isolating: &Isolating,
    parts: &mut http::request::Parts,
) -> Result<(), ProxyError> {
    let operation = &isolating.authorized.operation;
    let object = operation.object.clone();
    let admit = admit_of(isolating);
    match admit {
        Admit::MakesImage(ImageMaker::Build) => return build(isolating, parts).await,
        Admit::MakesImage(ImageMaker::Commit) => return commit(isolating, parts).await,
        Admit::MakesImage(ImageMaker::Import) => return import(isolating, parts).await,
        Admit::Pull => return pull(isolating, parts).await,
        Admit::SavesImages if object.is_none() => {
            let names: Vec<String> = current(parts)?
                .normalized
                .query
                .get_all("names")
                .into_iter()
                .map(str::to_owned)
                .collect();
            for name in names {
                readable_image(isolating, &name).await?;
            }
            return Ok(());
        }
        _ => {}
    }
    let Some(object) = object else {
        return Err(isolating.refuse(Isolated::Unavailable));
    };
    match operation.info.object {
        Some(ObjectKind::Container) => {
            let id = own_container(isolating, &object).await?;
            readdress(parts, "/containers/", &object, &id)
        }
        Some(ObjectKind::Exec) => {
            if owners(isolating).exec(&object).await.map_err(unchecked)? {
                Ok(())
            } else {
                Err(not_owned(isolating, ObjectKind::Exec, &object))
            }
        }
        Some(ObjectKind::Volume) => own_volume(isolating, &object).await,
        Some(ObjectKind::Network) => {
            let id = own_network(isolating, &object).await?;
            readdress(parts, "/networks/", &object, &id)
        }
        Some(ObjectKind::Image) => {
            let checked = match admit {
                Admit::ReadsImage { .. } | Admit::SavesImages => {
                    readable_image(isolating, &object).await
                }
                Admit::PushesImage => match pushed_reference(isolating, parts, &object) {
                    Ok(reference) => changeable_image(isolating, &reference).await,
                    Err(refused) => Err(refused),
                },
                _ => changeable_image(isolating, &object).await,
            };
            // A name missing at the check is answered missing by sockwarden (in the daemon's
            // words), not passed on: another tenant could create it before the daemon acts.
            let checked = match checked {
                Ok(()) if probed(admit) => match image_owner(isolating, &object).await? {
                    ImageOwner::Missing => Err(not_owned(isolating, ObjectKind::Image, &object)),
                    _ => Ok(()),
                },
                other => other,
            };
            if let Err(error) = checked {
                return Err(as_the_daemon_says(isolating, parts, &object, error).await);
            }
            if admit == Admit::RemovesImage {
                unpinned(isolating, &object).await?;
            }
            if admit == Admit::TagsImage {
                let query = &current(parts)?.normalized.query;
                let repo = query.get("repo").unwrap_or("").to_owned();
                let tag = query.get("tag").unwrap_or("").to_owned();
                claim_image_name(isolating, &repo, &tag).await?;
            }
            Ok(())
        }
        _ => Err(isolating.refuse(Isolated::Unavailable)),
    }
}

/// The daemon's answer to a request that names or creates an object, as the tenant gets it:
/// a name conflict of a container create or rename (409) names the container that holds the
/// name by its ID; when that container is not the tenant's, the ID is left out.
pub async fn answer(
    isolating: &Isolating,
    response: http::Response<ProxyBody>,
) -> Result<http::Response<ProxyBody>, ProxyError> {
    if recorded::made(isolating).is_some() {
        return recorded::recorded(isolating, response).await;
    }
    if response.status() != http::StatusCode::CONFLICT
        || !isolating
            .authorized
            .operation
            .info
            .tenancy
            .conflicts_on_container_name()
    {
        return Ok(response);
    }
    use http_body_util::BodyExt;
    let (mut parts, body) = response.into_parts();
    let bytes = http_body_util::Limited::new(body, CONFLICT_LIMIT)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream(format!("conflict answer not readable: {e}")))?
        .to_bytes();
    let mut document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let message = document
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let rewritten = match message {
        Some(message) => without_foreign_id(isolating, &message).await?,
        None => None,
    };
    let not_json = document.is_null();
    let out = match (rewritten, document.as_object_mut()) {
        (Some(message), Some(object)) => {
            object.insert("message".into(), Value::String(message));
            Bytes::from(serde_json::to_vec(&document).map_err(|e| {
                ProxyError::BadUpstream(format!("cannot write conflict answer: {e}"))
            })?)
        }
        // Not the daemon's JSON: no ID of another's is passed on either.
        (None, _) if not_json && contains_id(&String::from_utf8_lossy(&bytes)) => {
            Bytes::from_static(br#"{"message":"Conflict. The container name is already in use."}"#)
        }
        _ => bytes,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    Ok(http::Response::from_parts(
        parts,
        body::boxed(Full::new(out)),
    ))
}

/// Largest conflict answer read (the daemon's is one short sentence).
const CONFLICT_LIMIT: usize = 64 << 10;

/// Whether `text` holds something that looks like a container ID (12 or more hex digits).
fn contains_id(text: &str) -> bool {
    let mut run = 0;
    for b in text.bytes() {
        if b.is_ascii_hexdigit() {
            run += 1;
            if run >= 12 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// The daemon's conflict `message` (`Conflict. The container name "/web" is already in use
/// by container "ID". You have to remove (or rename) that container to be able to reuse that
/// name.`) without the ID when that container is not the tenant's; `None`: as it is.
async fn without_foreign_id(
    isolating: &Isolating,
    message: &str,
) -> Result<Option<String>, ProxyError> {
    const BY: &str = "by container \"";
    let Some(start) = message.find(BY).map(|i| i + BY.len()) else {
        return Ok(
            contains_id(message).then(|| "Conflict. The container name is already in use.".into())
        );
    };
    let rest = message.get(start..).unwrap_or("");
    let Some(end) = rest.find('"') else {
        return Ok(Some(
            "Conflict. The container name is already in use.".into(),
        ));
    };
    let id = rest.get(..end).unwrap_or("");
    let own = !id.is_empty()
        && owners(isolating)
            .container(id)
            .await
            .map_err(unchecked)?
            .is_some_and(|own| own.starts_with(id));
    if own {
        return Ok(None);
    }
    let before = message.get(..start - BY.len()).unwrap_or("");
    Ok(Some(format!(
        "{before}by a container this tenant does not own. Choose another name."
    )))
}

/// An image answered as missing, in the daemon's own words for this request: its message for
/// a missing image differs by operation and version (20.10's inspect says `no such image: x:
/// No such image: x:latest`, its delete `No such image: x:latest`), so the daemon is asked
/// the same request for a name that does not exist, and the client's name is put into its
/// answer. Requests that would do anything but answer 404 for a missing image (a push) keep
/// sockwarden's rendering of the daemon's words.
async fn as_the_daemon_says(
    isolating: &Isolating,
    parts: &http::request::Parts,
    name: &str,
    error: ProxyError,
) -> ProxyError {
    let not_owned = matches!(
        &error,
        ProxyError::Denied(r) if matches!(
            r.kind,
            crate::refusal::RefusalKind::Isolation(Isolated::NotOwned { kind: ObjectKind::Image, .. })
        )
    );
    if !not_owned || !probed(admit_of(isolating)) {
        return error;
    }
    const PROBE: &str = "sockwarden-isolation-missing-image";
    let zeros = "0".repeat(64);
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (probe, from, to) = if hex(name) {
        (zeros.clone(), zeros.clone(), name.to_owned())
    } else if let Some(id) = name.strip_prefix("sha256:").filter(|id| hex(id)) {
        (format!("sha256:{zeros}"), zeros.clone(), id.to_owned())
    } else {
        let (repo, tag) = split_reference(name);
        if repo.contains('@') {
            return error;
        }
        let probe = if tag.is_empty() {
            PROBE.to_owned()
        } else {
            format!("{PROBE}:{tag}")
        };
        (probe, PROBE.to_owned(), repo.to_owned())
    };
    let Ok(authorized) = current(parts) else {
        return error;
    };
    let normalized = &authorized.normalized;
    let Some(rest) = normalized
        .path
        .strip_prefix("/images/")
        .and_then(|r| r.strip_prefix(name))
    else {
        return error;
    };
    let version = normalized
        .version
        .map(|v| format!("/v{v}"))
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let path = format!(
        "{version}/images/{}{}{query}",
        escape_object(&probe),
        escape_object(rest)
    );
    let answer = isolating
        .lookup
        .send(authorized.method.clone(), &path, None)
        .await;
    let message = match answer {
        Ok((status, body)) if status == http::StatusCode::NOT_FOUND => {
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        }
        _ => None,
    };
    match message {
        Some(message) if message.contains(&from) => isolating.refuse(Isolated::NotOwnedAs {
            kind: ObjectKind::Image,
            name: name.to_owned(),
            message: message.replace(&from, &to),
        }),
        _ => error,
    }
}

fn owners(isolating: &Isolating) -> Owners<'_> {
    Owners {
        lookup: &isolating.lookup,
        label: &isolating.owner_label,
        tenant: isolating.tenant.label_value(),
    }
}

/// A lookup that failed: the request could not be checked, so it is not forwarded.
fn unchecked(error: LookupError) -> ProxyError {
    ProxyError::BadUpstream(format!("isolation could not check ownership: {error}"))
}

fn not_owned(isolating: &Isolating, kind: ObjectKind, name: &str) -> ProxyError {
    isolating.refuse(Isolated::NotOwned {
        kind,
        name: name.to_owned(),
    })
}

fn json_refusal(isolating: &Isolating, problem: JsonProblem) -> ProxyError {
    match problem {
        JsonProblem::Forged(field) => isolating.refuse(Isolated::ForgedOwner { field }),
        other => ProxyError::BadRequest(format!("isolation: {other}")),
    }
}

/// The full ID of the tenant's container `name`, or the daemon's "No such container".
async fn own_container(isolating: &Isolating, name: &str) -> Result<String, ProxyError> {
    owners(isolating)
        .container(name)
        .await
        .map_err(unchecked)?
        .ok_or_else(|| not_owned(isolating, ObjectKind::Container, name))
}

/// The full ID of the tenant's network `name`, or the daemon's "network not found".
async fn own_network(isolating: &Isolating, name: &str) -> Result<String, ProxyError> {
    owners(isolating)
        .network(name)
        .await
        .map_err(unchecked)?
        .ok_or_else(|| not_owned(isolating, ObjectKind::Network, name))
}

async fn own_volume(isolating: &Isolating, name: &str) -> Result<(), ProxyError> {
    match owners(isolating).volume(name).await.map_err(unchecked)? {
        VolumeOwner::Own => Ok(()),
        VolumeOwner::NotOwn | VolumeOwner::Missing => {
            Err(not_owned(isolating, ObjectKind::Volume, name))
        }
    }
}

/// Whose the image `name` is; a name the daemon cannot read as an image reference (its 400)
/// is missing: the daemon answers it itself.
async fn image_owner(isolating: &Isolating, name: &str) -> Result<ImageOwner, ProxyError> {
    match owners(isolating).image(name).await {
        Ok(owner) => Ok(owner),
        Err(LookupError::Daemon { status, .. }) if (400..500).contains(&status) => {
            Ok(ImageOwner::Missing)
        }
        Err(e) => Err(unchecked(e)),
    }
}

/// An image the tenant may read and use: its own or a shared one (a missing one is the
/// daemon's to answer).
async fn readable_image(isolating: &Isolating, name: &str) -> Result<(), ProxyError> {
    match image_owner(isolating, name).await? {
        ImageOwner::Other => Err(not_owned(isolating, ObjectKind::Image, name)),
        _ => Ok(()),
    }
}

/// An image the tenant may tag, push or remove: its own.
async fn changeable_image(isolating: &Isolating, name: &str) -> Result<(), ProxyError> {
    match image_owner(isolating, name).await? {
        ImageOwner::Own(_) | ImageOwner::Missing => Ok(()),
        ImageOwner::Shared(_) => Err(isolating.refuse(Isolated::Shared {
            name: name.to_owned(),
        })),
        ImageOwner::Other => Err(not_owned(isolating, ObjectKind::Image, name)),
    }
}

/// An image the tenant removes must not hold a name or an ID one of its running builds uses
/// ([`super::pins`]; the caller holds the tenant's removal turn).
async fn unpinned(isolating: &Isolating, name: &str) -> Result<(), ProxyError> {
    let tenant = isolating.tenant.label_value();
    let held = super::pins::held(&isolating.owner_label, tenant);
    if held.names.is_empty() && held.ids.is_empty() {
        return Ok(());
    }
    let ImageOwner::Own(id) = image_owner(isolating, name).await? else {
        return Ok(());
    };
    if pinned(isolating, &held, &id).await? {
        return Err(isolating.refuse(Isolated::Building {
            name: name.to_owned(),
        }));
    }
    Ok(())
}

/// Whether the image `id` is one the tenant's builds hold: an ID they named, or the image one
/// of their names resolves to now.
pub(super) async fn pinned(
    isolating: &Isolating,
    held: &super::pins::Held,
    id: &str,
) -> Result<bool, ProxyError> {
    if held.ids.iter().any(|h| h == id) {
        return Ok(true);
    }
    for name in &held.names {
        if let ImageOwner::Own(now) = image_owner(isolating, name).await? {
            if now == id {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The image a push sends, as the daemon reads it: the path's repository with the `tag`
/// parameter, or the path's own reference without one. A push of every tag of a repository
/// (no tag anywhere) is refused: any of them may be another tenant's.
fn pushed_reference(
    isolating: &Isolating,
    parts: &http::request::Parts,
    object: &str,
) -> Result<String, ProxyError> {
    let query = current(parts)?.normalized.query.clone();
    let tag = single(&query, "tag")?.unwrap_or("");
    let (repo, own_tag) = split_reference(object);
    if !tag.is_empty() {
        return Ok(image_reference(repo, tag));
    }
    if own_tag.is_empty() && !object.contains('@') {
        return Err(isolating.refuse(Isolated::Held {
            kind: ObjectKind::Image,
            name: format!("{object} (all tags)"),
        }));
    }
    Ok(object.to_owned())
}

/// The image name `repo:tag` a request writes (a tag, a build's `t`, a commit's or import's
/// `repo`, a pull) must not be held by an image the tenant does not own.
async fn claim_image_name(isolating: &Isolating, repo: &str, tag: &str) -> Result<(), ProxyError> {
    if repo.is_empty() {
        return Ok(());
    }
    let reference = image_reference(repo, tag);
    // A digest names content: writing it re-points nothing.
    if reference.contains('@') {
        return Ok(());
    }
    match image_owner(isolating, &reference).await? {
        ImageOwner::Own(_) | ImageOwner::Missing => Ok(()),
        ImageOwner::Shared(_) => Err(isolating.refuse(Isolated::Shared { name: reference })),
        ImageOwner::Other => Err(isolating.refuse(Isolated::Held {
            kind: ObjectKind::Image,
            name: reference,
        })),
    }
}

/// `repo` with `tag` (or `latest` when neither names one).
fn image_reference(repo: &str, tag: &str) -> String {
    let last = repo.rsplit('/').next().unwrap_or(repo);
    if !tag.is_empty() {
        if tag.starts_with("sha256:") {
            return format!("{repo}@{tag}");
        }
        return format!("{repo}:{tag}");
    }
    if repo.contains('@') || last.contains(':') {
        repo.to_owned()
    } else {
        format!("{repo}:latest")
    }
}

/// The request's current `Authorized` facts (rewrites replace them as they go).
fn current(parts: &http::request::Parts) -> Result<Authorized, ProxyError> {
    parts
        .extensions
        .get::<Authorized>()
        .cloned()
        .ok_or_else(|| ProxyError::BadRequest("request was not authorized".into()))
}

/// Replaces the request target with `target` (path and query, raw): the `Authorized` facts
/// inner layers and the audit record read describe the new target.
fn retarget(parts: &mut http::request::Parts, target: &str) -> Result<(), ProxyError> {
    let authorized = current(parts)?;
    let uri: http::Uri = target
        .parse()
        .map_err(|e| ProxyError::BadRequest(format!("invalid request target: {e}")))?;
    let normalized = crate::route::normalize(&authorized.method, &uri)
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    let operation = crate::route::classify(&authorized.method, &normalized.path, &normalized.query);
    if operation.name != authorized.operation.name {
        return Err(ProxyError::BadRequest(format!(
            "isolation: the rewritten request is {} instead of {}",
            operation.name, authorized.operation.name
        )));
    }
    let rewritten = Authorized {
        normalized: Arc::new(normalized),
        operation: Arc::new(operation),
        ..authorized
    };
    if let Some(trail) = parts.extensions.get::<Arc<Trail>>() {
        trail.note_request(rewritten.normalized.clone(), rewritten.operation.clone());
    }
    parts.uri = uri;
    parts.extensions.insert(rewritten);
    Ok(())
}

/// Rewrites `{collection}{name}...` to `{collection}{id}...` (version prefix and query kept as
/// sent): the daemon acts on the object that was checked.
fn readdress(
    parts: &mut http::request::Parts,
    collection: &str,
    name: &str,
    id: &str,
) -> Result<(), ProxyError> {
    let authorized = current(parts)?;
    let normalized = &authorized.normalized;
    let Some(rest) = normalized
        .path
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix(name))
    else {
        return Err(ProxyError::BadRequest(format!(
            "isolation: cannot address {} by ID",
            normalized.path
        )));
    };
    if name == id {
        return Ok(());
    }
    let target = crate::route::readdressed(normalized, parts.uri.query(), collection, id, rest);
    retarget(parts, &target)
}

/// Rewrites the query: every occurrence of the keys in `remove` goes, `add` is appended (each
/// value percent-encoded).
fn requery(
    parts: &mut http::request::Parts,
    remove: &[&str],
    add: &[(&str, String)],
) -> Result<(), ProxyError> {
    let mut pieces: Vec<String> = Vec::new();
    for piece in parts.uri.query().unwrap_or("").split('&') {
        if piece.is_empty() {
            continue;
        }
        let removed = Query::parse(piece)
            .ok()
            .and_then(|q| q.pairs().first().map(|(k, _)| k.clone()))
            .is_some_and(|key| remove.contains(&key.as_str()));
        if !removed {
            pieces.push(piece.to_owned());
        }
    }
    for (key, value) in add {
        pieces.push(format!("{key}={}", encode_component(value)));
    }
    let target = format!("{}?{}", parts.uri.path(), pieces.join("&"));
    retarget(parts, &target)
}

/// The one value the daemon reads for a parameter it reads with `FormValue` (the first); the
/// parameter given more than once is refused rather than rewritten from one of its values.
fn single<'q>(query: &'q Query, key: &str) -> Result<Option<&'q str>, ProxyError> {
    if query.has_repeated(key) {
        return Err(ProxyError::BadRequest(format!(
            "isolation: the query parameter {key} is given more than once"
        )));
    }
    Ok(query.get(key))
}

/// `labels` query value (a JSON object of strings, or none) with the owner label added.
fn labelled_query(isolating: &Isolating, labels: Option<&str>) -> Result<String, ProxyError> {
    let labels = labels.filter(|l| !l.trim().is_empty());
    let raw = match labels {
        Some(text) => Some(
            serde_json::value::RawValue::from_string(text.to_owned()).map_err(|_| {
                ProxyError::BadRequest("isolation: the labels parameter is not JSON".into())
            })?,
        ),
        None => None,
    };
    let labelled = json::with_owner(
        raw.as_deref(),
        "labels",
        &isolating.owner_label,
        isolating.tenant.label_value(),
    )
    .map_err(|p| json_refusal(isolating, p))?;
    Ok(labelled.get().to_owned())
}

/// `docker build` (classic and BuildKit): the image is labelled (`labels`), its names (`t`)
/// must not be held by others' images, `networkmode=container:X` and `cachefrom` images must
/// be the tenant's.
async fn build(isolating: &Isolating, parts: &mut http::request::Parts) -> Result<(), ProxyError> {
    let authorized = current(parts)?;
    let query = authorized.normalized.query.clone();
    // The image built is the tenant's only once recorded from the answer, which names it only
    // from API 1.30 on (a classic build's `aux` ID) or with `-q`.
    let buildkit = query.get("version") == Some("2");
    let quiet = query.bool("q").unwrap_or(false);
    let old = authorized
        .normalized
        .version
        .is_some_and(|v| v < crate::route::ApiVersion::new(1, 30));
    if old && !buildkit && !quiet {
        return Err(isolating.refuse(Isolated::Unrecordable {
            reason: "a classic build below API version 1.30 does not report the ID of the \
                     image it built, so it could not be recorded as this tenant's: use API 1.30 \
                     or newer, or -q"
                .into(),
        }));
    }
    let labels = labelled_query(isolating, single(&query, "labels")?)?;
    for name in query.get_all("t") {
        let (repo, tag) = split_reference(name);
        claim_image_name(isolating, repo, tag).await?;
    }
    for image in string_list(single(&query, "cachefrom")?, "cachefrom")? {
        readable_image(isolating, &image).await?;
    }
    let mut add = vec![("labels", labels)];
    let mut remove = vec!["labels"];
    if let Some(mode) = single(&query, "networkmode")? {
        if let Some(container) = mode.strip_prefix("container:") {
            let id = own_container(isolating, container).await?;
            remove.push("networkmode");
            add.push(("networkmode", format!("container:{id}")));
        }
    }
    requery(parts, &remove, &add)
}

/// A JSON list of strings in a query parameter (`cachefrom`).
fn string_list(value: Option<&str>, what: &str) -> Result<Vec<String>, ProxyError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str::<Option<Vec<String>>>(text)
            .map(Option::unwrap_or_default)
            .map_err(|_| ProxyError::BadRequest(format!("isolation: {what} is not a JSON list"))),
    }
}

/// `name` as repository and tag (the tag empty when none is given).
fn split_reference(name: &str) -> (&str, &str) {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) if !name.contains('@') => (&name[..last_slash + i], &name[last_slash + i + 1..]),
        _ => (name, ""),
    }
}

/// The owner label as a Dockerfile `LABEL` change (commit, import): applied after the body's
/// and the client's changes, so it is what the image carries.
fn owner_change(isolating: &Isolating) -> String {
    let quote = |s: &str| {
        let escaped: String = s
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    };
    format!(
        "LABEL {}={}",
        quote(&isolating.owner_label),
        quote(isolating.tenant.label_value())
    )
}

/// Client `changes` that mention the owner label are refused (a `LABEL` could set it; any
/// spelling of the key, in any case, is refused rather than parsed).
fn check_changes(isolating: &Isolating, query: &Query) -> Result<(), ProxyError> {
    let key = isolating.owner_label.to_ascii_lowercase();
    for change in query.get_all("changes") {
        if change.to_ascii_lowercase().contains(&key) {
            return Err(isolating.refuse(Isolated::ForgedOwner {
                field: "changes".into(),
            }));
        }
    }
    Ok(())
}

/// `docker commit`: the container must be the tenant's (addressed by full ID), the name it
/// writes free of others' images, and the image is labelled.
async fn commit(isolating: &Isolating, parts: &mut http::request::Parts) -> Result<(), ProxyError> {
    let query = current(parts)?.normalized.query.clone();
    let container = single(&query, "container")?.unwrap_or("");
    let id = own_container(isolating, container).await?;
    check_changes(isolating, &query)?;
    claim_image_name(
        isolating,
        single(&query, "repo")?.unwrap_or(""),
        single(&query, "tag")?.unwrap_or(""),
    )
    .await?;
    requery(
        parts,
        &["container"],
        &[("container", id), ("changes", owner_change(isolating))],
    )
}

/// `docker import`: the name it writes free of others' images, and the image labelled.
async fn import(isolating: &Isolating, parts: &mut http::request::Parts) -> Result<(), ProxyError> {
    let query = current(parts)?.normalized.query.clone();
    check_changes(isolating, &query)?;
    claim_image_name(
        isolating,
        single(&query, "repo")?.unwrap_or(""),
        single(&query, "tag")?.unwrap_or(""),
    )
    .await?;
    requery(parts, &[], &[("changes", owner_change(isolating))])
}

/// `docker pull`: a pulled image is a shared one (the registry's content; it carries no owner),
/// so it may not replace a name another tenant's image or a shared image holds.
async fn pull(isolating: &Isolating, parts: &mut http::request::Parts) -> Result<(), ProxyError> {
    let query = current(parts)?.normalized.query.clone();
    let image = single(&query, "fromImage")?.unwrap_or("");
    let tag = single(&query, "tag")?.unwrap_or("");
    let (repo, own_tag) = split_reference(image);
    if tag.is_empty() && own_tag.is_empty() && !image.contains('@') {
        // Every tag of the repository: any of them may be held.
        return Err(isolating.refuse(Isolated::Held {
            kind: ObjectKind::Image,
            name: format!("{image} (all tags)"),
        }));
    }
    let tag = if tag.is_empty() { own_tag } else { tag };
    claim_image_name(isolating, repo, tag).await
}

mod bodies;
mod recorded;
pub use bodies::PinnedNetworks;
use bodies::{container_create, network_connect, network_create, volume_create};

#[cfg(test)]
mod tests {
    use super::bodies::link_parts;
    use super::*;

    #[test]
    fn references_split_as_the_daemon_reads_them() {
        assert_eq!(split_reference("app"), ("app", ""));
        assert_eq!(split_reference("app:1"), ("app", "1"));
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app", "")
        );
        assert_eq!(
            split_reference("localhost:5000/app:2"),
            ("localhost:5000/app", "2")
        );
        assert_eq!(split_reference("app@sha256:ab"), ("app@sha256:ab", ""));
        assert_eq!(image_reference("app", ""), "app:latest");
        assert_eq!(image_reference("app", "v1"), "app:v1");
        assert_eq!(
            image_reference("localhost:5000/app", ""),
            "localhost:5000/app:latest"
        );
        assert_eq!(image_reference("app", "sha256:ab"), "app@sha256:ab");
    }

    #[test]
    fn links_split_as_the_daemon_reads_them() {
        assert_eq!(link_parts("db"), ("db".into(), "db".into()));
        assert_eq!(link_parts("db:data"), ("db".into(), "data".into()));
        assert_eq!(link_parts("/db:/web/data"), ("db".into(), "data".into()));
    }
}
