//! Seal format 2: one key per batch.
//!
//! Format 1 evolves the key after every record and MACs each with HMAC-SHA256 under a fresh
//! key: ~0.65 µs per 640-byte record, most of what sealing costs the writer thread. Format 2
//! keeps the same guarantee at ~0.15 µs: the key evolves after every *batch* (what one write
//! appends), and before the batch is appended, exactly as format 1's key does before its
//! batch; so no key left on the host ever sealed a written record. Inside a batch each record
//! is sealed under the batch's key with AES-256-GCM: nonce = the record number (unique in the
//! chain, so never repeated under one key), the record as plaintext (its ciphertext dropped:
//! GCM's tag authenticates the ciphertext, which key and nonce fix, so the tag is a MAC of the
//! record), and as associated data the domain, chain id, record number, batch number, the
//! batch's record count and the previous record's MAC. (ring's associated-data path hashes a
//! block at a time: the record as associated data cost ~0.45 µs.)
//!
//! The count is what keeps a batch whole. Whoever takes the host holds the next batch's key:
//! without the count they could cut the tail off the last batch and seal records of their own
//! as the next batch, chained to the last record they kept. Every record of a batch carries
//! the count under the batch's key, so `verify` knows how many records the batch had and names
//! any missing.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// Domain of a format-2 chain's first key (`seal::chain_key_v2`).
pub const DOMAIN_CHAIN: &[u8] = b"sockwarden-seal-v2 chain";
const DOMAIN_RECORD: &[u8] = b"sockwarden-seal-v2 record";

/// Bytes of a key, a chain id and a MAC (as `seal` has them).
const KEY_LEN: usize = 32;
const CHAIN_LEN: usize = 8;
const MAC_LEN: usize = 16;

/// Bytes of the associated data: domain, chain, record number, batch, count, previous MAC.
const AAD_LEN: usize = DOMAIN_RECORD.len() + CHAIN_LEN + 8 + 8 + 8 + MAC_LEN;

type ChainId = [u8; CHAIN_LEN];
type Tag = [u8; MAC_LEN];

/// Where a record sits in format 2: its batch and how many records the batch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPos {
    pub batch: u64,
    pub count: u64,
}

/// A batch's key, ready to seal (AES's key schedule and GHASH's table, made once per batch).
pub struct BatchKey(LessSafeKey);

impl BatchKey {
    pub fn new(key: &[u8; KEY_LEN]) -> Option<BatchKey> {
        UnboundKey::new(&AES_256_GCM, &key[..])
            .ok()
            .map(|k| BatchKey(LessSafeKey::new(k)))
    }

    /// The MAC of record `seq` at `pos` of `chain`, whose unsealed line is the concatenation
    /// of `parts`; `scratch` holds the plaintext while it is encrypted. `None` only if AES-GCM
    /// refuses the input (over 64 GiB).
    pub fn tag(
        &self,
        chain: &ChainId,
        seq: u64,
        pos: BatchPos,
        prev: &Tag,
        parts: &[&[u8]],
        scratch: &mut Vec<u8>,
    ) -> Option<Tag> {
        let mut aad = [0u8; AAD_LEN];
        let mut at = 0;
        for piece in [
            DOMAIN_RECORD,
            &chain[..],
            &seq.to_be_bytes(),
            &pos.batch.to_be_bytes(),
            &pos.count.to_be_bytes(),
            &prev[..],
        ] {
            aad[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        }
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        scratch.clear();
        for part in parts {
            scratch.extend_from_slice(part);
        }
        let tag = self
            .0
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut scratch[..],
            )
            .ok()?;
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(tag.as_ref());
        Some(out)
    }

    /// Whether `tag` is that record's MAC, compared in constant time.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        chain: &ChainId,
        seq: u64,
        pos: BatchPos,
        prev: &Tag,
        parts: &[&[u8]],
        tag: &Tag,
        scratch: &mut Vec<u8>,
    ) -> bool {
        use subtle::ConstantTimeEq;
        self.tag(chain, seq, pos, prev, parts, scratch)
            .is_some_and(|t| bool::from(t.ct_eq(tag)))
    }
}
