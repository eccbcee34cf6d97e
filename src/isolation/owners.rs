//! Whose an object is, read from the daemon: the owner label on containers, volumes, networks
//! and images (an exec is its container's), and names resolved among one tenant's own objects.
//!
//! What is cached is an object's owner by its full ID (containers, networks, execs): labels
//! cannot change after an object is created and the daemon never reuses an ID, so such an entry
//! can only outlive its object, and a request naming a removed object gets the daemon's own 404.
//! The cache is keyed by the owner label's key too (a reload may change it) and bounded.
//!
//! A container name (or ID prefix) is remembered only as what it resolved to among one tenant's
//! own containers ([`NameCache`]), for at most [`NAME_TTL`], only while the daemon's event
//! stream is followed ([`super::name_watch`]), and forgotten whenever a container is created,
//! renamed, removed or pruned, through sockwarden or on the daemon directly (its event). So an entry can only name a
//! container that was the tenant's (ownership never changes, IDs are never reused): a stale one
//! reaches that same container or the daemon's 404, never another tenant's. Without it, each
//! request naming a container by name cost a second round trip to the daemon (an isolated
//! `docker inspect NAME` ran at 0.46x of the same without isolation).
//!
//! Images are never remembered here, by name or by ID: whose an image is comes from the daemon
//! at each question, and the image ledger ([`super::ledger`]) decides whether its owner label
//! is sockwarden's word or a forgery.
//!
//! Shared with `views` (lists, events) for what it needs: [`owner_label_value`],
//! [`owner_filter`], [`OwnerCache`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lookup::{Lookup, LookupError};
use crate::route::escape_object;

/// Most owners remembered; past it the cache starts over.
const CACHE_MAX: usize = 32_768;

/// Owners by full ID (see the module documentation).
#[derive(Debug, Default)]
pub struct OwnerCache {
    owners: Mutex<HashMap<String, Option<String>>>,
}

impl OwnerCache {
    /// The process-wide cache.
    pub fn global() -> &'static OwnerCache {
        static CACHE: OnceLock<OwnerCache> = OnceLock::new();
        CACHE.get_or_init(OwnerCache::default)
    }

    fn key(label: &str, kind: &str, id: &str) -> String {
        format!("{label}\0{kind}\0{id}")
    }

    /// The remembered owner of the `kind` object with full ID `id` (`Some(None)`: no owner).
    pub fn get(&self, label: &str, kind: &str, id: &str) -> Option<Option<String>> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.get(&OwnerCache::key(label, kind, id)).cloned()
    }

    /// Remembers the owner of the `kind` object with full ID `id`.
    pub fn put(&self, label: &str, kind: &str, id: &str, owner: Option<String>) {
        if !is_full_id(id) {
            return;
        }
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.len() >= CACHE_MAX {
            owners.clear();
        }
        owners.insert(OwnerCache::key(label, kind, id), owner);
    }
}

/// How long a resolved container name is trusted at most. The daemon's events make it forget
/// at every change (see [`super::name_watch`]); this bounds what an event that never arrived
/// could leave stale (an entry only ever names one of the tenant's own containers).
pub const NAME_TTL: Duration = Duration::from_secs(10);

/// Container names resolved among a tenant's own (see the module documentation).
#[derive(Debug, Default)]
pub struct NameCache {
    inner: Mutex<Names>,
    /// Whether the daemon's event stream is followed ([`super::name_watch`]): names are
    /// remembered only then.
    watched: AtomicBool,
    /// How long a name is trusted; `None`: [`NAME_TTL`] (tests shorten it).
    ttl: Option<Duration>,
}

#[derive(Debug, Default)]
struct Names {
    /// Bumped by every forget: a resolution that began before it is not remembered.
    generation: u64,
    ids: HashMap<String, (String, Instant)>,
}

impl NameCache {
    /// The process-wide cache.
    pub fn global() -> &'static NameCache {
        static CACHE: OnceLock<NameCache> = OnceLock::new();
        CACHE.get_or_init(NameCache::default)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(label: &str, tenant: &str, name: &str) -> String {
        format!("{label}\0{tenant}\0{name}")
    }

    /// The generation a resolution starts in (pass it to [`NameCache::put`]).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn ttl(&self) -> Duration {
        self.ttl.unwrap_or(NAME_TTL)
    }

    /// Whether the daemon's event stream is followed: while it is not, nothing is remembered.
    pub fn set_watched(&self, watched: bool) {
        self.watched.store(watched, Ordering::SeqCst);
        if !watched {
            self.forget_all();
        }
    }

    /// The full ID `name` resolved to among `tenant`'s containers, if resolved lately.
    pub fn get(&self, label: &str, tenant: &str, name: &str) -> Option<String> {
        if !self.watched.load(Ordering::SeqCst) {
            return None;
        }
        let names = self.lock();
        let (id, at) = names.ids.get(&NameCache::key(label, tenant, name))?;
        (at.elapsed() < self.ttl()).then(|| id.clone())
    }

    /// Remembers that `name` resolved to `id` among `tenant`'s own, unless containers changed
    /// since `generation`.
    pub fn put(&self, generation: u64, label: &str, tenant: &str, name: &str, id: &str) {
        if !self.watched.load(Ordering::SeqCst) {
            return;
        }
        let mut names = self.lock();
        if names.generation != generation || !is_full_id(id) {
            return;
        }
        if names.ids.len() >= CACHE_MAX {
            names.ids.clear();
        }
        names.ids.insert(
            NameCache::key(label, tenant, name),
            (id.to_owned(), Instant::now()),
        );
    }

    /// Forgets every name: a container was created, renamed, removed or pruned.
    pub fn forget_all(&self) {
        let mut names = self.lock();
        names.generation = names.generation.wrapping_add(1);
        names.ids.clear();
    }
}

/// Whether `s` is a full object ID: 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The owner label's value in a `Labels` object, if set.
pub fn owner_label_value(labels: Option<&Value>, label: &str) -> Option<String> {
    labels?.get(label)?.as_str().map(str::to_owned)
}

/// A `filters` query value selecting the objects labelled `label=value`, percent-encoded.
pub fn owner_filter(label: &str, value: &str) -> String {
    let filters = serde_json::json!({ "label": [format!("{label}={value}")] });
    encode_component(&filters.to_string())
}

/// Percent-encodes a query component (everything but unreserved characters).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a name resolves to among candidates `(full ID, names)`, in the daemon's order: the
/// full ID, then an exact name (`x` and `/x` alike), then an ID prefix that only one candidate
/// has. `None`: nothing, or an ambiguous prefix.
pub fn resolve<'c>(candidates: &'c [(String, Vec<String>)], name: &str) -> Option<&'c str> {
    if name.is_empty() {
        return None;
    }
    if let Some((id, _)) = candidates.iter().find(|(id, _)| id == name) {
        return Some(id);
    }
    let slashed = if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    };
    if let Some((id, _)) = candidates
        .iter()
        .find(|(_, names)| names.iter().any(|n| *n == slashed || *n == name))
    {
        return Some(id);
    }
    let mut prefixed = candidates.iter().filter(|(id, _)| id.starts_with(name));
    match (prefixed.next(), prefixed.next()) {
        (Some((id, _)), None) => Some(id),
        _ => None,
    }
}

/// An image as a tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOwner {
    /// The tenant's own (built, committed or imported by it through sockwarden: labelled
    /// and in the image ledger): its full ID.
    Own(String),
    /// No tenant's: a shared base image, usable by all, changed by admins only.
    Shared(String),
    /// Another tenant's, or labelled with an owner but not made by sockwarden (not in the
    /// image ledger): nobody's.
    Other,
    /// No such image.
    Missing,
}

/// A volume as a tenant sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeOwner {
    /// The tenant's own.
    Own,
    /// Another tenant's or no tenant's.
    NotOwn,
    /// No such volume.
    Missing,
}

/// Ownership questions for one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Owners<'a> {
    /// The daemon.
    pub lookup: &'a Lookup,
    /// The owner label's key.
    pub label: &'a str,
    /// The tenant's label value.
    pub tenant: &'a str,
}

fn parse(bytes: &[u8]) -> Result<Value, LookupError> {
    serde_json::from_slice(bytes).map_err(|e| LookupError::BadAnswer(e.to_string()))
}

impl Owners<'_> {
    fn mine(&self, owner: Option<&str>) -> bool {
        owner == Some(self.tenant)
    }

    /// The full ID of the tenant's container `name` (name, `/name`, full ID or ID prefix),
    /// resolved among its own containers only; `None` when it has none by that name.
    pub async fn container(&self, name: &str) -> Result<Option<String>, LookupError> {
        let cache = OwnerCache::global();
        if is_full_id(name) {
            if let Some(owner) = cache.get(self.label, "container", name) {
                if self.mine(owner.as_deref()) {
                    return Ok(Some(name.to_owned()));
                }
            }
        }
        let names = NameCache::global();
        super::name_watch::ensure(
            self.lookup,
            super::name_watch::Hooks {
                changed: || NameCache::global().forget_all(),
                watched: |watched| NameCache::global().set_watched(watched),
            },
        );
        if let Some(id) = names.get(self.label, self.tenant, name) {
            return Ok(Some(id));
        }
        let generation = names.generation();
        let resolved = self.resolve_container(name).await?;
        if let Some(id) = &resolved {
            names.put(generation, self.label, self.tenant, name, id);
        }
        Ok(resolved)
    }

    /// [`Owners::container`] without the name cache.
    async fn resolve_container(&self, name: &str) -> Result<Option<String>, LookupError> {
        let cache = OwnerCache::global();
        // The daemon's own resolution: when it lands on one of the tenant's containers, the
        // same name resolves to it among the tenant's containers alone (full ID, name and
        // prefix are tried in the same order; a match the daemon prefers is never another's).
        // A name with its slash (`/web`) is only ever a name: its path (`//web`) would not
        // reach the daemon's route, so it is resolved from the list alone.
        let looked_up = if name.starts_with('/') {
            None
        } else {
            self.lookup.container(name).await?
        };
        if let Some(bytes) = looked_up {
            let v = parse(&bytes)?;
            if let Some(id) = v.get("Id").and_then(Value::as_str) {
                let owner = owner_label_value(v.pointer("/Config/Labels"), self.label);
                cache.put(self.label, "container", id, owner.clone());
                if self.mine(owner.as_deref()) {
                    return Ok(Some(id.to_owned()));
                }
            }
        }
        // Otherwise the name may still be one of the tenant's among its own alone (another's
        // container holds the name, or the prefix is ambiguous only with others' IDs).
        let own = self.own_containers().await?;
        Ok(resolve(&own, name).map(str::to_owned))
    }

    /// The tenant's containers, `(full ID, names)`.
    pub async fn own_containers(&self) -> Result<Vec<(String, Vec<String>)>, LookupError> {
        let path = format!(
            "/containers/json?all=1&filters={}",
            owner_filter(self.label, self.tenant)
        );
        let bytes = self.lookup.get(&path).await?.unwrap_or_default();
        let list = parse(&bytes)?;
        let mut out = Vec::new();
        for item in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            // The daemon filtered on the label; checked again all the same.
            if !self.mine(owner_label_value(item.get("Labels"), self.label).as_deref()) {
                continue;
            }
            let Some(id) = item.get("Id").and_then(Value::as_str) else {
                continue;
            };
            let names = item
                .get("Names")
                .and_then(Value::as_array)
                .map(|n| {
                    n.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            out.push((id.to_owned(), names));
        }
        Ok(out)
    }

    /// Whether the exec `id` runs in one of the tenant's containers.
    pub async fn exec(&self, id: &str) -> Result<bool, LookupError> {
        let cache = OwnerCache::global();
        if let Some(owner) = cache.get(self.label, "exec", id) {
            return Ok(self.mine(owner.as_deref()));
        }
        let Some(bytes) = self.lookup.exec(id).await? else {
            return Ok(false);
        };
        let v = parse(&bytes)?;
        let (Some(exec_id), Some(container)) = (
            v.get("ID").and_then(Value::as_str),
            v.get("ContainerID").and_then(Value::as_str),
        ) else {
            return Ok(false);
        };
        let owner = match cache.get(self.label, "container", container) {
            Some(owner) => owner,
            None => match self.lookup.container(container).await? {
                Some(bytes) => {
                    let c = parse(&bytes)?;
                    let owner = owner_label_value(c.pointer("/Config/Labels"), self.label);
                    cache.put(self.label, "container", container, owner.clone());
                    owner
                }
                None => return Ok(false),
            },
        };
        cache.put(self.label, "exec", exec_id, owner.clone());
        Ok(exec_id == id && self.mine(owner.as_deref()))
    }

    /// Whose the volume `name` is.
    pub async fn volume(&self, name: &str) -> Result<VolumeOwner, LookupError> {
        // Volume names never contain `/` (and such a path would not reach the route).
        if name.is_empty() || name.contains('/') {
            return Ok(VolumeOwner::Missing);
        }
        let Some(bytes) = self.lookup.volume(name).await? else {
            return Ok(VolumeOwner::Missing);
        };
        let v = parse(&bytes)?;
        let owner = owner_label_value(v.get("Labels"), self.label);
        // The daemon answers the volume by its exact name only.
        let same = v.get("Name").and_then(Value::as_str) == Some(name);
        Ok(if same && self.mine(owner.as_deref()) {
            VolumeOwner::Own
        } else {
            VolumeOwner::NotOwn
        })
    }

    /// How many volumes the tenant has.
    pub async fn count_volumes(&self) -> Result<u64, LookupError> {
        let path = format!("/volumes?filters={}", owner_filter(self.label, self.tenant));
        let bytes = self.lookup.get(&path).await?.unwrap_or_default();
        let v = parse(&bytes)?;
        let n = v
            .get("Volumes")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter(|item| {
                        self.mine(owner_label_value(item.get("Labels"), self.label).as_deref())
                    })
                    .count()
            })
            .unwrap_or(0);
        Ok(n as u64)
    }

    /// The full ID of the tenant's network `name` (name, full ID or ID prefix), resolved
    /// among its own networks only.
    pub async fn network(&self, name: &str) -> Result<Option<String>, LookupError> {
        let cache = OwnerCache::global();
        if is_full_id(name) {
            if let Some(owner) = cache.get(self.label, "network", name) {
                if self.mine(owner.as_deref()) {
                    return Ok(Some(name.to_owned()));
                }
            }
        }
        if !name.is_empty() && !name.starts_with('/') {
            // A name several networks have (the daemon allows duplicates when asked) is
            // ambiguous to the daemon (its 400): it is resolved among the tenant's own below.
            let looked_up = match self
                .lookup
                .get(&format!("/networks/{}", escape_object(name)))
                .await
            {
                Err(LookupError::Daemon { status, .. }) if (400..500).contains(&status) => None,
                other => other?,
            };
            if let Some(bytes) = looked_up {
                let v = parse(&bytes)?;
                if let Some(id) = v.get("Id").and_then(Value::as_str) {
                    let owner = owner_label_value(v.get("Labels"), self.label);
                    cache.put(self.label, "network", id, owner.clone());
                    if self.mine(owner.as_deref()) {
                        return Ok(Some(id.to_owned()));
                    }
                }
            }
        }
        let path = format!(
            "/networks?filters={}",
            owner_filter(self.label, self.tenant)
        );
        let bytes = self.lookup.get(&path).await?.unwrap_or_default();
        let list = parse(&bytes)?;
        let own: Vec<(String, Vec<String>)> = list
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|n| self.mine(owner_label_value(n.get("Labels"), self.label).as_deref()))
            .filter_map(|n| {
                let id = n.get("Id").and_then(Value::as_str)?;
                let name = n.get("Name").and_then(Value::as_str)?;
                Some((id.to_owned(), vec![name.to_owned()]))
            })
            .collect();
        Ok(resolve(&own, name).map(str::to_owned))
    }

    /// Whose the image `name` (reference, ID or ID prefix) is, as the daemon resolves it.
    pub async fn image(&self, name: &str) -> Result<ImageOwner, LookupError> {
        // Not a reference (`//x`): the daemon answers it itself.
        if name.starts_with('/') {
            return Ok(ImageOwner::Missing);
        }
        let Some(bytes) = self.lookup.image(name).await? else {
            return Ok(ImageOwner::Missing);
        };
        let v = parse(&bytes)?;
        let Some(id) = v.get("Id").and_then(Value::as_str) else {
            return Ok(ImageOwner::Missing);
        };
        Ok(
            match owner_label_value(v.pointer("/Config/Labels"), self.label) {
                None => ImageOwner::Shared(id.to_owned()),
                Some(owner) if owner == self.tenant && self.recorded(id).await? => {
                    ImageOwner::Own(id.to_owned())
                }
                // Another tenant's, or labelled by someone other than sockwarden (pulled,
                // loaded, imported or built on the daemon): nobody's, and not shared either.
                Some(_) => ImageOwner::Other,
            },
        )
    }

    /// Whether the image `id` is recorded in the image ledger as made for this tenant (see
    /// [`super::ledger`]). Without a ledger, no image is.
    pub async fn recorded(&self, id: &str) -> Result<bool, LookupError> {
        let Some(ledger) = super::ledger::global() else {
            return Ok(false);
        };
        super::ledger::adopt::ready(ledger, self.lookup, self.label).await?;
        Ok(ledger.has(id, self.tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands() -> Vec<(String, Vec<String>)> {
        vec![
            (format!("abc1{}", "0".repeat(60)), vec!["/web".into()]),
            (format!("abc2{}", "0".repeat(60)), vec!["/abc1".into()]),
            (
                format!("def0{}", "0".repeat(60)),
                vec!["/db".into(), "/web/db".into()],
            ),
        ]
    }

    #[test]
    fn names_resolve_in_the_daemons_order() {
        let c = cands();
        let full = format!("abc1{}", "0".repeat(60));
        // A full ID first.
        assert_eq!(resolve(&c, &full), Some(full.as_str()));
        // Then an exact name, with or without its slash: the name `abc1` wins over the ID
        // prefix `abc1`.
        assert_eq!(resolve(&c, "abc1"), Some(c[1].0.as_str()));
        assert_eq!(resolve(&c, "/abc1"), Some(c[1].0.as_str()));
        assert_eq!(resolve(&c, "web"), Some(c[0].0.as_str()));
        assert_eq!(resolve(&c, "/web"), Some(c[0].0.as_str()));
        // Then a unique prefix; an ambiguous one is nothing.
        assert_eq!(resolve(&c, "def"), Some(c[2].0.as_str()));
        assert_eq!(resolve(&c, "abc"), None);
        assert_eq!(resolve(&c, "abc2"), Some(c[1].0.as_str()));
        // Nothing else.
        assert_eq!(resolve(&c, ""), None);
        assert_eq!(resolve(&c, "other"), None);
        assert_eq!(resolve(&c, "/def0"), None);
    }

    #[test]
    fn names_are_remembered_per_tenant_briefly_and_forgotten_on_change() {
        let ttl = Duration::from_millis(300);
        let names = NameCache {
            ttl: Some(ttl),
            ..NameCache::default()
        };
        let id = "a".repeat(64);
        // Nothing is remembered while the daemon's events are not followed.
        let g = names.generation();
        names.put(g, "l", "uid:1", "web", &id);
        assert_eq!(names.get("l", "uid:1", "web"), None);
        names.set_watched(true);
        let g = names.generation();
        names.put(g, "l", "uid:1", "web", &id);
        assert_eq!(names.get("l", "uid:1", "web"), Some(id.clone()));
        // Another tenant or owner label key: another question.
        assert_eq!(names.get("l", "uid:2", "web"), None);
        assert_eq!(names.get("k", "uid:1", "web"), None);
        // A change forgets everything, and a resolution begun before it is not remembered.
        names.forget_all();
        assert_eq!(names.get("l", "uid:1", "web"), None);
        names.put(g, "l", "uid:1", "web", &id);
        assert_eq!(names.get("l", "uid:1", "web"), None);
        // Only full IDs are remembered.
        let g = names.generation();
        names.put(g, "l", "uid:1", "web", "abc");
        assert_eq!(names.get("l", "uid:1", "web"), None);
        // And only for its time.
        names.put(g, "l", "uid:1", "web", &id);
        std::thread::sleep(ttl + Duration::from_millis(50));
        assert_eq!(names.get("l", "uid:1", "web"), None);
        // When the event stream breaks, everything is forgotten.
        let g = names.generation();
        names.put(g, "l", "uid:1", "web", &id);
        names.set_watched(false);
        names.set_watched(true);
        assert_eq!(names.get("l", "uid:1", "web"), None);
    }

    #[test]
    fn only_full_ids_are_cached() {
        let cache = OwnerCache::default();
        let id = "f".repeat(64);
        cache.put("l", "container", "web", Some("uid:1".into()));
        assert_eq!(cache.get("l", "container", "web"), None);
        cache.put("l", "container", &id, Some("uid:1".into()));
        assert_eq!(cache.get("l", "container", &id), Some(Some("uid:1".into())));
        // Another owner label key is another question.
        assert_eq!(cache.get("other", "container", &id), None);
        assert!(is_full_id(&id));
        assert!(!is_full_id(&"F".repeat(64)));
        assert!(!is_full_id(&"f".repeat(63)));
    }

    #[test]
    fn owner_filters_are_encoded() {
        assert_eq!(
            owner_filter("sockwarden.owner", "uid:1"),
            "%7B%22label%22%3A%5B%22sockwarden.owner%3Duid%3A1%22%5D%7D"
        );
    }
}
