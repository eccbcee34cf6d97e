//! The keys a chain's records were sealed with, recomputed from the seed, and the checks of
//! their MACs in either format (see `seal`): format 1 a key per record, format 2 a key per
//! batch.

use std::collections::VecDeque;

use crate::audit::seal::{
    self, check_mac, evolve, BatchKey, BatchPos, ChainId, Format, Key, Tag, KEY_LEN,
};

/// Format-2 batch keys kept, for records that come out of place (verify's look-ahead window,
/// 64 lines, holds at most as many batches).
const BATCH_KEYS: usize = 65;

/// The most batches a record may be ahead of the last one seen; further is not taken for a
/// batch number (evolving that far would take for ever).
const MAX_JUMP: u64 = 50_000_000;

/// Format 1: the key of record `seq`.
pub fn key_at(seed: &[u8; KEY_LEN], chain: &ChainId, seq: u64) -> Key {
    let mut key = seal::chain_key(seed, chain);
    for _ in 0..seq {
        evolve(&mut key);
    }
    key
}

/// A chain's keys: format 1's next record's key, format 2's recent batch keys.
pub struct Keys {
    pub format: Format,
    /// Format 1: the key of the chain's next record.
    pub next: Key,
    /// Format 2: (batch, key), oldest first, batches ascending.
    batches: VecDeque<(u64, Key)>,
    /// The plaintext of the record being checked (format 2).
    scratch: Vec<u8>,
}

impl Keys {
    /// The keys of a chain whose record `seq` (in batch `pos`, format 2) is the first one seen.
    pub fn new(seed: &[u8; KEY_LEN], chain: &ChainId, seq: u64, pos: Option<BatchPos>) -> Keys {
        match pos {
            None => Keys {
                format: Format::V1,
                next: key_at(seed, chain, seq),
                batches: VecDeque::new(),
                scratch: Vec::new(),
            },
            Some(_) => Keys {
                format: Format::V2,
                next: Key::default(),
                batches: VecDeque::from([(0, seal::chain_key_v2(seed, chain))]),
                scratch: Vec::new(),
            },
        }
    }

    /// Format 2: the key of `batch`; `None` for a batch older than those kept (no record in
    /// order belongs to one) or implausibly far ahead.
    fn batch_key(&mut self, batch: u64) -> Option<Key> {
        if let Some((_, key)) = self.batches.iter().find(|(b, _)| *b == batch) {
            return Some(key.clone());
        }
        let (last, key) = self.batches.back()?;
        if batch < *last || batch - *last > MAX_JUMP {
            return None;
        }
        let mut key = key.clone();
        for _ in *last..batch {
            evolve(&mut key);
        }
        self.batches.push_back((batch, key.clone()));
        if self.batches.len() > BATCH_KEYS {
            self.batches.pop_front();
        }
        Some(key)
    }

    /// Whether `tag` seals record `seq` (at `pos` in format 2) of `chain` after `prev`.
    /// `ahead`: format 1's key is the one `ahead` records after the next record's.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        chain: &ChainId,
        seq: u64,
        ahead: u64,
        pos: Option<BatchPos>,
        prev: &Tag,
        parts: &[&[u8]],
        tag: &Tag,
    ) -> bool {
        match (self.format, pos) {
            (Format::V1, None) => {
                let mut key = self.next.clone();
                for _ in 0..ahead {
                    evolve(&mut key);
                }
                check_mac(&key, chain, seq, prev, parts, tag)
            }
            (Format::V2, Some(pos)) => {
                let Some(key) = self.batch_key(pos.batch).and_then(|k| BatchKey::new(&k)) else {
                    return false;
                };
                key.check(chain, seq, pos, prev, parts, tag, &mut self.scratch)
            }
            // A record in the other format is not the chain's.
            _ => false,
        }
    }

    /// The chain moves on by `records` records (format 1's key evolves with them).
    pub fn advance(&mut self, records: u64) {
        if self.format == Format::V1 {
            for _ in 0..records {
                evolve(&mut self.next);
            }
        }
    }
}

/// Whether `tag` is a genuine first record of `chain`: record 0, in batch 0 in format 2.
pub fn genuine_start(
    seed: &[u8; KEY_LEN],
    chain: &ChainId,
    pos: Option<BatchPos>,
    parts: &[&[u8]],
    tag: &Tag,
) -> bool {
    let zero = [0u8; seal::MAC_LEN];
    match pos {
        None => check_mac(&seal::chain_key(seed, chain), chain, 0, &zero, parts, tag),
        Some(pos) if pos.batch == 0 => {
            let mut scratch = Vec::new();
            BatchKey::new(&seal::chain_key_v2(seed, chain))
                .is_some_and(|k| k.check(chain, 0, pos, &zero, parts, tag, &mut scratch))
        }
        Some(_) => false,
    }
}
