//! The images a tenant's running builds use, held against the tenant's own removals.
//!
//! A build resolves the images its Dockerfile names only when each step runs (the classic
//! builder a later stage's `FROM` or a `COPY --from` after the tenant's `RUN` steps, however
//! long they take). Were the tenant to remove its own image meanwhile, the name would be free,
//! another tenant could build an image of that name, and the step would then run on the other
//! tenant's image: an image crossing from one tenant to another. So while a build runs, the
//! names its Dockerfile uses and the images they named when checked are *pinned*: the tenant's
//! image deletes and prunes leave every image that holds a pinned name or ID alone.
//!
//! Check and removal must not pass each other: a removal holds the tenant's [`changing`] turn
//! from its check to the daemon's answer, and a build pins the names first, waits for the
//! removals in flight ([`barrier`]), and only then resolves and judges them. A removal that
//! starts after the pin sees it; one that started before has ended by the check, which then
//! finds the name missing (or someone else's) and refuses the build.
//!
//! Only the tenant's own images are pinned: no tenant can remove a shared image or another
//! tenant's, and an admin (`isolation = "none"`) is not held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// One build's pins, released when the last holder drops it (the build's answer has ended,
/// or its BuildKit session has).
#[derive(Debug)]
pub struct Pins {
    key: String,
    held: Mutex<Held>,
}

/// What a tenant's running builds hold: the names their Dockerfiles use (as written: the
/// daemon resolves them again at each step) and the image IDs they named when checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Names, as the Dockerfiles write them.
    pub names: Vec<String>,
    /// Full image IDs.
    pub ids: Vec<String>,
}

impl Held {
    fn merge(&mut self, other: &Held) {
        for name in &other.names {
            push_new(&mut self.names, name);
        }
        for id in &other.ids {
            push_new(&mut self.ids, id);
        }
    }
}

fn push_new(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_owned());
    }
}

#[derive(Default)]
struct Registry {
    pins: HashMap<String, Vec<Weak<Pins>>>,
    turns: HashMap<String, Arc<RwLock<()>>>,
}

/// Most tenants whose removal turns are kept while unused; past it, unused ones are dropped.
const TURNS_KEPT: usize = 1024;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Tenants are kept apart per owner label (a reload may change it).
fn key(owner_label: &str, tenant: &str) -> String {
    format!("{owner_label}\0{tenant}")
}

impl Pins {
    /// A new, empty set of pins for one build of `tenant`, registered at once.
    pub fn open(owner_label: &str, tenant: &str) -> Arc<Pins> {
        let key = key(owner_label, tenant);
        let pins = Arc::new(Pins {
            key: key.clone(),
            held: Mutex::new(Held::default()),
        });
        registry()
            .pins
            .entry(key)
            .or_default()
            .push(Arc::downgrade(&pins));
        pins
    }

    /// Pins a name the Dockerfile uses (before it is resolved).
    pub fn name(&self, name: &str) {
        push_new(&mut self.lock().names, name);
    }

    /// Pins the image a name resolved to.
    pub fn id(&self, id: &str) {
        push_new(&mut self.lock().ids, id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let mut registry = registry();
        if let Some(list) = registry.pins.get_mut(&self.key) {
            list.retain(|weak| weak.strong_count() > 0);
            if list.is_empty() {
                registry.pins.remove(&self.key);
            }
        }
    }
}

/// Everything `tenant`'s running builds pin now.
pub fn held(owner_label: &str, tenant: &str) -> Held {
    let live: Vec<Arc<Pins>> = registry()
        .pins
        .get(&key(owner_label, tenant))
        .map(|list| list.iter().filter_map(Weak::upgrade).collect())
        .unwrap_or_default();
    let mut all = Held::default();
    for pins in live {
        let held = pins.lock().clone();
        all.merge(&held);
    }
    all
}

fn turn(owner_label: &str, tenant: &str) -> Arc<RwLock<()>> {
    let mut registry = registry();
    if registry.turns.len() >= TURNS_KEPT {
        registry.turns.retain(|_, t| Arc::strong_count(t) > 1);
    }
    registry
        .turns
        .entry(key(owner_label, tenant))
        .or_default()
        .clone()
}

/// The turn a removal of `tenant`'s images (delete, prune) holds from its check of the pins to
/// the daemon's answer. Removals run side by side; only a build's [`barrier`] waits for them.
pub async fn changing(owner_label: &str, tenant: &str) -> OwnedRwLockReadGuard<()> {
    turn(owner_label, tenant).read_owned().await
}

/// Waits until every removal of `tenant`'s images that began before now has been answered.
pub async fn barrier(owner_label: &str, tenant: &str) {
    drop(turn(owner_label, tenant).write_owned().await);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_last_as_long_as_their_holders_and_stay_per_tenant() {
        let a = Pins::open("l", "uid:1");
        let b = Pins::open("l", "uid:1");
        let other = Pins::open("l", "uid:2");
        a.name("base:1");
        a.id("sha256:aa");
        a.name("base:1");
        a.id("sha256:aa");
        b.name("tool");
        b.name("base:1");
        b.id("sha256:bb");
        other.name("mine");
        other.id("sha256:cc");
        let held_as = |names: &[&str], ids: &[&str]| Held {
            names: names.iter().map(|s| s.to_string()).collect(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            held("l", "uid:1"),
            held_as(&["base:1", "tool"], &["sha256:aa", "sha256:bb"])
        );
        // Another owner label is another tenant.
        assert_eq!(held("other-label", "uid:1"), Held::default());
        drop(a);
        assert_eq!(
            held("l", "uid:1"),
            held_as(&["tool", "base:1"], &["sha256:bb"])
        );
        drop(b);
        assert_eq!(held("l", "uid:1"), Held::default());
        assert_eq!(held("l", "uid:2"), held_as(&["mine"], &["sha256:cc"]));
    }

    #[tokio::test]
    async fn the_barrier_waits_for_removals_in_flight_only() {
        let removal = changing("l", "uid:3").await;
        // Another tenant's barrier does not wait for it.
        barrier("l", "uid:4").await;
        let waiting = tokio::spawn(barrier("l", "uid:3"));
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "the barrier passed a removal in flight"
        );
        drop(removal);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the barrier ends once the removal has")
            .expect("join");
    }
}
