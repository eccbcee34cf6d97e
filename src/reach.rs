//! Reaching an object is as privileged as creating it: the checks that need the daemon's state.
//!
//! - An operation that reaches an existing container or exec (the operation table's
//!   `reaches` fact: start, restart, attach, exec create and start, archive reads and writes)
//!   has the object's stored configuration checked against the rules a create of it would
//!   face ([`crate::inspect::stored_container`], [`crate::inspect::stored_exec`]), including
//!   the named volumes it mounts (as the host binds their options make them) and, on the host,
//!   every bind source ([`crate::hostpath`]). A container passes on to the daemon by its full
//!   ID, so a name re-pointed after the check reaches nothing else.
//! - A container create that passed inspection has the same host and volume checks, and the
//!   image's own settings held to the body's rules ([`crate::inspect::image_settings`]).
//!
//! A missing object passes (the daemon answers its own 404); a lookup that fails refuses.

use crate::hostpath::{self, HostProblem, WritableSources};
use crate::inspect::{self, DaemonDefaults, MountSummary, Summary, Violation};
use crate::lookup::{Lookup, LookupError};
use crate::policy::rules::InspectRules;
use crate::route::ObjectKind;

/// What a reach check found: the container's full ID, to address it by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// The reached container's full ID, when the request names a container that exists.
    pub container_id: Option<String>,
}

/// Checks the object `name` of kind `kind` that an operation reaches.
pub async fn check_reach(
    kind: ObjectKind,
    name: &str,
    rules: &InspectRules,
    writable: &WritableSources,
    lookup: &Lookup,
) -> Result<Reached, Violation> {
    let container = match kind {
        ObjectKind::Container => name.to_owned(),
        ObjectKind::Exec => {
            let Some(doc) = lookup
                .exec(name)
                .await
                .map_err(|e| unchecked("exec", name, &e))?
            else {
                return Ok(Reached::default());
            };
            inspect::stored_exec(&doc, &rules.exec).map_err(|v| labelled("exec", name, v))?
        }
        // Nothing else is reached (the table marks only containers and execs).
        _ => return Ok(Reached::default()),
    };
    check_container(&container, rules, writable, lookup).await
}

/// Checks a stored container as a reach of it (see [`check_reach`]).
async fn check_container(
    container: &str,
    rules: &InspectRules,
    writable: &WritableSources,
    lookup: &Lookup,
) -> Result<Reached, Violation> {
    let Some(doc) = lookup
        .container(container)
        .await
        .map_err(|e| unchecked("container", container, &e))?
    else {
        return Ok(Reached::default());
    };
    let defaults = daemon_defaults(lookup).await?;
    let stored = inspect::stored_container(&doc, &rules.container, &defaults)
        .map_err(|v| labelled("container", container, v))?;
    check_mounts(&stored.summary, rules, writable, lookup)
        .await
        .map_err(|v| labelled("container", container, v))?;
    let id =
        Some(stored.id).filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    Ok(Reached { container_id: id })
}

/// The checks of a container create that passed inspection: the image's own settings, the
/// named volumes' stored options, and every bind source on the host.
pub async fn check_create(
    body: &[u8],
    summary: &Summary,
    rules: &InspectRules,
    writable: &WritableSources,
    lookup: &Lookup,
) -> Result<(), Violation> {
    if let Some(image) = summary.image.as_deref().and_then(|_| body_image(body)) {
        if let Some(doc) = lookup
            .image(&image)
            .await
            .map_err(|e| unchecked("image", &image, &e))?
        {
            inspect::image_settings(&image, &doc, body, &rules.container)?;
        }
    }
    // `VolumesFrom` (with allow_volumes_from) mounts what the named containers mount: each is
    // reached as a start of it would be.
    for source in volumes_from(body) {
        check_container(&source, rules, writable, lookup).await?;
    }
    check_mounts(summary, rules, writable, lookup).await
}

/// The containers a create body's `HostConfig.VolumesFrom` names (`name[:ro|:rw]`).
fn volumes_from(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let field = |v: &serde_json::Value, name: &str| {
        v.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v.clone())
    };
    let list = field(&v, "HostConfig").and_then(|h| field(&h, "VolumesFrom"));
    list.and_then(|l| l.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.as_str())
        .map(|e| e.split(':').next().unwrap_or(e).to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

/// The `Image` of a create body exactly as sent (the daemon looks it up by that string).
fn body_image(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Image"))
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Host binds and named volumes of a checked configuration, checked on the host and in the
/// daemon's volume store.
async fn check_mounts(
    summary: &Summary,
    rules: &InspectRules,
    writable: &WritableSources,
    lookup: &Lookup,
) -> Result<(), Violation> {
    let mut seen: Vec<(&str, &str, bool)> = Vec::new();
    for m in &summary.mounts {
        let (Some(source), kind) = (m.source.as_deref(), m.kind) else {
            continue;
        };
        // A bind is listed both in the stored HostConfig and among the mount points.
        if seen.contains(&(kind, source, m.read_only)) {
            continue;
        }
        seen.push((kind, source, m.read_only));
        let field = match m.from.strip_prefix("stored ") {
            Some(from) => format!("{from}[{}]", m.target),
            None => format!("HostConfig.{}[{}]", m.from, m.target),
        };
        let host_path = match kind {
            "bind" => source.to_owned(),
            "volume" => {
                let Some(doc) = lookup
                    .volume(source)
                    .await
                    .map_err(|e| unchecked("volume", source, &e))?
                else {
                    // A volume that does not exist yet is created by the daemon, plain.
                    continue;
                };
                let p = inspect::docker_json::Path::ROOT;
                let fp = p.field(&field);
                match inspect::volume_as_mount(source, &doc, m.read_only, &fp, &rules.container)? {
                    Some(path) => path,
                    None => continue,
                }
            }
            _ => continue,
        };
        host_check(&host_path, m, writable, &field).await?;
    }
    Ok(())
}

/// [`hostpath::check_bind`] off the async threads (it reads the filesystem).
async fn host_check(
    path: &str,
    m: &MountSummary,
    writable: &WritableSources,
    field: &str,
) -> Result<(), Violation> {
    let (owned, read_only, w) = (path.to_owned(), m.read_only, writable.clone());
    let result = tokio::task::spawn_blocking(move || hostpath::check_bind(&owned, read_only, &w))
        .await
        .unwrap_or_else(|e| Err(HostProblem::Unreadable(e.to_string())));
    result.map_err(|problem| Violation {
        field: field.to_owned(),
        reason: problem.reason(path),
        setting: None,
        value: None,
    })
}

async fn daemon_defaults(lookup: &Lookup) -> Result<DaemonDefaults, Violation> {
    let info = lookup
        .info()
        .await
        .map_err(|e| unchecked("daemon", "defaults", &e))?;
    Ok(DaemonDefaults::from_info(&info))
}

/// A refusal about an object that could not be read.
fn unchecked(kind: &str, name: &str, e: &LookupError) -> Violation {
    Violation {
        field: format!("({kind} {})", crate::route::escape_object(name)),
        reason: format!("cannot be checked: {e}"),
        setting: None,
        value: None,
    }
}

/// A refusal about a stored object: its field prefixed with what it is.
fn labelled(kind: &str, name: &str, mut v: Violation) -> Violation {
    v.field = format!("{kind} {} {}", short(name), v.field);
    v
}

fn short(name: &str) -> String {
    let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    let s = if hex { &name[..12] } else { name };
    crate::route::escape_object(s)
}
