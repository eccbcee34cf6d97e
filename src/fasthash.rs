//! A fast hasher for maps on the request and connection paths whose keys no client chooses:
//! names from the configuration (clients, policies), with the uids the kernel reports for
//! peers (connection counts), and our own counters (the drain signals' waiters). SipHash's
//! resistance to chosen keys buys nothing there; this is FxHash's mixing (as in rustc), a
//! word at a time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by configuration names.
pub type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// FxHash: rotate, xor, multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn names_are_found_and_told_apart() {
        let names = [
            "",
            "a",
            "bench",
            "ci-runner",
            "dashboard-readonly-01",
            "bench\0",
        ];
        let mut map: NameMap<Arc<str>, usize> = NameMap::default();
        for (i, name) in names.iter().enumerate() {
            map.insert(Arc::from(*name), i);
        }
        assert_eq!(map.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            assert_eq!(map.get(*name), Some(&i));
        }
        assert_eq!(map.get("benc"), None);
        assert_eq!(map.get("bench "), None);
    }
}
