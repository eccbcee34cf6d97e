//! Who owns an object, by full ID, for answers that do not carry the owner label (events about
//! images, networks and volumes; events about deleted objects).
//!
//! The cache maps full IDs (64 hex digits, `sha256:` optional) of containers, images and
//! networks to their owner label's value (or none: unowned). Labels are immutable and IDs are
//! never reused, so an entry never goes stale and nothing needs to expire it; names (which
//! are reused) are never cached here. Volumes have no ID but their name: they are kept only
//! per event stream ([`super::events`]), updated by that stream's own create and destroy
//! events. The cache is bounded: when full it is emptied and refilled by lookups.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::lookup::{Lookup, LookupError};
use crate::route::escape_object;

/// Most entries kept before the cache is emptied.
const MAX_ENTRIES: usize = 100_000;

/// The kinds of object the cache knows, by ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A container.
    Container,
    /// An image.
    Image,
    /// A network.
    Network,
}

type Owner = Option<Box<str>>;
type Cache = Mutex<HashMap<(Kind, Box<str>), Owner>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Whether `id` is a full object ID (never a name or a prefix).
pub fn full_id(id: &str) -> bool {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The key the cache uses: the lower-case hex digits of a full ID.
fn key(kind: Kind, id: &str) -> Option<(Kind, Box<str>)> {
    full_id(id).then(|| {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        (kind, hex.to_ascii_lowercase().into_boxed_str())
    })
}

/// The cached owner of `id`: `None` if unknown, `Some(None)` if known to be unowned.
pub fn cached(kind: Kind, id: &str) -> Option<Option<String>> {
    let key = key(kind, id)?;
    let cache = cache().lock().ok()?;
    cache.get(&key).map(|o| o.as_deref().map(str::to_owned))
}

/// Remembers that `id` (if a full ID) is owned by `owner` (`None`: unowned).
pub fn remember(kind: Kind, id: &str, owner: Option<&str>) {
    let Some(key) = key(kind, id) else {
        return;
    };
    if let Ok(mut cache) = cache().lock() {
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.insert(key, owner.map(Box::from));
    }
}

/// The owner label's value in a `Labels` map (`None` when absent or not a string).
pub fn label(labels: Option<&Value>, owner_label: &str) -> Option<String> {
    labels
        .and_then(|l| l.get(owner_label))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What a lookup found: the object's owner (`Some(None)`: unowned), or `None` when the daemon
/// does not have it.
pub type Found = Option<Option<String>>;

/// Asks the daemon who owns the object `id` of `kind`, remembering the answer when `id` is a
/// full ID (and the object's own full ID otherwise).
pub async fn look_up(
    lookup: &Lookup,
    kind: Kind,
    id: &str,
    owner_label: &str,
) -> Result<Found, LookupError> {
    if let Some(known) = cached(kind, id) {
        return Ok(Some(judged(lookup, kind, id, known, owner_label).await?));
    }
    let answer = match kind {
        Kind::Container => lookup.container(id).await?,
        Kind::Image => lookup.image(id).await?,
        Kind::Network => {
            if id.is_empty() {
                return Ok(None);
            }
            lookup
                .get(&format!("/networks/{}", escape_object(id)))
                .await?
        }
    };
    let Some(answer) = answer else {
        return Ok(None);
    };
    let document: Value =
        serde_json::from_slice(&answer).map_err(|e| LookupError::BadAnswer(e.to_string()))?;
    let labels = match kind {
        Kind::Container | Kind::Image => document.get("Config").and_then(|c| c.get("Labels")),
        Kind::Network => document.get("Labels"),
    };
    let owner = label(labels, owner_label);
    let own_id = document
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The answer's own ID is the object; `id` is remembered only if it is that object's ID
    // (a name resolved to it is not).
    remember(kind, own_id, owner.as_deref());
    Ok(Some(
        judged(lookup, kind, own_id, owner, owner_label).await?,
    ))
}

/// What stands for the owner of an image whose owner label sockwarden did not write (its ID
/// is not in the image ledger for that tenant): no tenant's value (tenants' values never hold
/// a NUL), and not unowned (shared) either.
pub const UNRECORDED: &str = "\0unrecorded";

/// The owner of the object `id` as isolation judges it: an image's owner label counts only
/// when the image ledger holds the ID for that tenant (otherwise [`UNRECORDED`]). The cache
/// keeps the labels as the daemon has them; the ledger is asked each time.
pub async fn judged(
    lookup: &Lookup,
    kind: Kind,
    id: &str,
    owner: Option<String>,
    owner_label: &str,
) -> Result<Option<String>, LookupError> {
    let value = match owner {
        Some(value) if kind == Kind::Image => value,
        other => return Ok(other),
    };
    let recorded = match crate::isolation::ledger::global() {
        Some(ledger) => {
            crate::isolation::ledger::adopt::ready(ledger, lookup, owner_label).await?;
            ledger.has(id, &value)
        }
        None => false,
    };
    Ok(Some(if recorded {
        value
    } else {
        UNRECORDED.to_owned()
    }))
}

/// Asks the daemon who owns the volume `name` (`None`: no such volume).
pub async fn volume(lookup: &Lookup, name: &str, owner_label: &str) -> Result<Found, LookupError> {
    let Some(answer) = lookup.volume(name).await? else {
        return Ok(None);
    };
    let document: Value =
        serde_json::from_slice(&answer).map_err(|e| LookupError::BadAnswer(e.to_string()))?;
    Ok(Some(label(document.get("Labels"), owner_label)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_ids_are_remembered() {
        let id = "ab".repeat(32);
        remember(Kind::Network, &id, Some("uid:1"));
        assert_eq!(cached(Kind::Network, &id), Some(Some("uid:1".into())));
        // The same ID in upper case or with the digest prefix is the same object.
        assert_eq!(
            cached(Kind::Network, &format!("sha256:{}", id.to_uppercase())),
            Some(Some("uid:1".into()))
        );
        // Another kind is another object.
        assert_eq!(cached(Kind::Image, &id), None);
        // Names and prefixes are never remembered.
        remember(Kind::Network, "mynet", Some("uid:1"));
        assert_eq!(cached(Kind::Network, "mynet"), None);
        remember(Kind::Network, &id[..12], Some("uid:1"));
        assert_eq!(cached(Kind::Network, &id[..12]), None);
        // Unowned is remembered as such.
        let other = "cd".repeat(32);
        remember(Kind::Image, &other, None);
        assert_eq!(cached(Kind::Image, &other), Some(None));
    }
}
