//! Each request counts itself in two labelled families (requests, latency). Finding a labelled
//! metric in a `prometheus_client` family takes its lock, hashes the labels with SipHash and
//! clones the client's name; per request that was ~1.2K instructions of ~73K. Each thread
//! keeps the handles it used instead, found by pointer identity: the client's name as an
//! `Arc<str>` (the cache holds a clone, so its address is never reused while cached) and the
//! `&'static str` labels by address. A handle shares its value with the family, so `/metrics`
//! reads the same numbers.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::fasthash::NameMap;

/// Most handles one thread keeps per family; beyond it the cache starts again (the label sets
/// are the clients, operations, decisions and statuses a configuration has: far fewer).
const MOST: usize = 4096;

/// A fresh id for each `Metrics` instance, so that a thread's cache never serves another's.
pub fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The labels of a cached handle, compared by address.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    client: usize,
    operation: usize,
    decision: usize,
    status: u16,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.client);
        state.write_usize(self.operation);
        state.write_usize(self.decision);
        state.write_u16(self.status);
    }
}

impl Key {
    fn new(
        client: Option<&Arc<str>>,
        operation: &'static str,
        decision: &'static str,
        status: u16,
    ) -> Key {
        Key {
            client: client.map_or(0, |c| Arc::as_ptr(c).cast::<u8>() as usize),
            operation: operation.as_ptr() as usize,
            decision: decision.as_ptr() as usize,
            status,
        }
    }
}

/// One thread's handles for one `Metrics` instance.
struct Cache<M> {
    owner: u64,
    /// The handle, and the client's name it was made for (kept alive: see the module docs).
    map: NameMap<Key, (M, Option<Arc<str>>)>,
}

impl<M> Cache<M> {
    fn new() -> Self {
        Cache {
            owner: 0,
            map: NameMap::default(),
        }
    }

    /// The cached handle for these labels, made by `make` the first time. Lent, not cloned:
    /// a clone would touch the handle's reference count, which every thread shares.
    #[allow(clippy::too_many_arguments)]
    fn with(
        &mut self,
        owner: u64,
        client: Option<&Arc<str>>,
        operation: &'static str,
        decision: &'static str,
        status: u16,
        make: impl FnOnce() -> M,
        f: impl FnOnce(&M),
    ) {
        if self.owner != owner || self.map.len() >= MOST {
            self.owner = owner;
            self.map.clear();
        }
        let key = Key::new(client, operation, decision, status);
        let (handle, _) = self
            .map
            .entry(key)
            .or_insert_with(|| (make(), client.cloned()));
        f(handle);
    }
}

thread_local! {
    static COUNTERS: RefCell<Cache<prometheus_client::metrics::counter::Counter>> =
        RefCell::new(Cache::new());
    static HISTOGRAMS: RefCell<Cache<prometheus_client::metrics::histogram::Histogram>> =
        RefCell::new(Cache::new());
}

/// Runs `f` on this thread's handle of a request counter.
pub fn with_counter(
    owner: u64,
    client: Option<&Arc<str>>,
    operation: &'static str,
    decision: &'static str,
    status: u16,
    make: impl FnOnce() -> prometheus_client::metrics::counter::Counter,
    f: impl FnOnce(&prometheus_client::metrics::counter::Counter),
) {
    COUNTERS.with(|c| match c.try_borrow_mut() {
        Ok(mut cache) => cache.with(owner, client, operation, decision, status, make, f),
        // Never reentered; were it, the family itself still counts.
        Err(_) => f(&make()),
    });
}

/// Runs `f` on this thread's handle of a latency histogram.
pub fn with_histogram(
    owner: u64,
    client: Option<&Arc<str>>,
    operation: &'static str,
    make: impl FnOnce() -> prometheus_client::metrics::histogram::Histogram,
    f: impl FnOnce(&prometheus_client::metrics::histogram::Histogram),
) {
    HISTOGRAMS.with(|c| match c.try_borrow_mut() {
        Ok(mut cache) => cache.with(owner, client, operation, "", 0, make, f),
        Err(_) => f(&make()),
    });
}
