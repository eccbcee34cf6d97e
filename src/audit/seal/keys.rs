//! The seal's keys and format-1 MACs: the seed, a chain's first key, the one-way evolution,
//! HMAC-SHA256 record MACs, and the hex the seal field and state file use (see `seal`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of the seed and of every key.
pub const KEY_LEN: usize = 32;
/// Bytes of a record's MAC as written (HMAC-SHA256 truncated).
pub const MAC_LEN: usize = 16;
/// Bytes of a chain id.
pub const CHAIN_LEN: usize = 8;
/// Mode of the seed and the state file.
pub(super) const SECRET_MODE: u32 = 0o600;

const DOMAIN_CHAIN: &[u8] = b"sockwarden-seal-v1 chain";
/// 23 bytes: with the key, one SHA-256 block.
const DOMAIN_EVOLVE: &[u8] = b"sockwarden-seal1 evolve";
const DOMAIN_RECORD: &[u8] = b"sockwarden-seal-v1 record";

type HmacSha256 = Hmac<Sha256>;

/// A key (seed or evolved), erased when dropped.
pub type Key = Zeroizing<[u8; KEY_LEN]>;
/// A record's MAC.
pub type Tag = [u8; MAC_LEN];
/// A chain's id.
pub type ChainId = [u8; CHAIN_LEN];

// ---------------------------------------------------------------------------------------------
// Primitives

/// The first key of chain `chain` (format 1).
pub fn chain_key(seed: &[u8; KEY_LEN], chain: &ChainId) -> Key {
    derive_chain_key(seed, DOMAIN_CHAIN, chain)
}

/// The first (batch 0) key of a format-2 chain.
pub fn chain_key_v2(seed: &[u8; KEY_LEN], chain: &ChainId) -> Key {
    derive_chain_key(seed, super::batch::DOMAIN_CHAIN, chain)
}

/// `HMAC-SHA256(seed, domain || chain)`.
fn derive_chain_key(seed: &[u8; KEY_LEN], domain: &[u8], chain: &ChainId) -> Key {
    let mut mac = hmac_with(seed);
    mac.update(domain);
    mac.update(chain);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&mac.finalize().into_bytes());
    key
}

/// An HMAC keyed with `key`.
pub(super) fn hmac_with(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length (RFC 2104): never reached.
        Err(_) => <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()),
    }
}

/// Moves `key` one step forward, in place: the old key is gone.
pub fn evolve(key: &mut [u8; KEY_LEN]) {
    let mut h = Sha256::new();
    h.update(DOMAIN_EVOLVE);
    h.update(&key[..]);
    let mut next = h.finalize();
    key.copy_from_slice(&next);
    next.zeroize();
}

/// The MAC of record `seq` of `chain`, whose unsealed line is the concatenation of `parts`.
pub fn record_mac(
    key: &[u8; KEY_LEN],
    chain: &ChainId,
    seq: u64,
    prev: &Tag,
    parts: &[&[u8]],
) -> Tag {
    record_hmac(key, chain, seq, prev, parts).finalize_tag()
}

fn record_hmac(
    key: &[u8; KEY_LEN],
    chain: &ChainId,
    seq: u64,
    prev: &Tag,
    parts: &[&[u8]],
) -> HmacSha256 {
    let mut mac = hmac_with(key);
    mac.update(DOMAIN_RECORD);
    mac.update(chain);
    mac.update(&seq.to_be_bytes());
    mac.update(prev);
    for part in parts {
        mac.update(part);
    }
    mac
}

trait FinalizeTag {
    fn finalize_tag(self) -> Tag;
}

impl FinalizeTag for HmacSha256 {
    fn finalize_tag(self) -> Tag {
        let full = self.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }
}

/// Whether `tag` is record `seq`'s MAC, compared in constant time.
pub fn check_mac(
    key: &[u8; KEY_LEN],
    chain: &ChainId,
    seq: u64,
    prev: &Tag,
    parts: &[&[u8]],
    tag: &Tag,
) -> bool {
    record_hmac(key, chain, seq, prev, parts)
        .verify_truncated_left(tag)
        .is_ok()
}

pub(crate) fn hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

/// Writes `bytes` in hex into `out`, which holds twice as many bytes.
pub(super) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    hex(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes exactly `N` bytes of lowercase or uppercase hex.
pub(crate) fn unhex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Seed

/// Fills `buf` from the OS's random source.
pub(super) fn random(buf: &mut [u8]) -> io::Result<()> {
    getrandom::getrandom(buf).map_err(|e| io::Error::other(format!("random source: {e}")))
}

/// Writes a new random seed to `path`: mode 0600, never over an existing file, synced.
pub fn write_new_seed(path: &Path) -> io::Result<()> {
    let mut seed: Key = Zeroizing::new([0u8; KEY_LEN]);
    random(&mut seed[..])?;
    let mut text = Zeroizing::new(Vec::with_capacity(2 * KEY_LEN + 1));
    hex(&seed[..], &mut text);
    text.push(b'\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_MODE)
        .open(path)?;
    file.write_all(&text)?;
    file.sync_all()?;
    sync_parent(path)
}

/// Reads a seed file written by [`write_new_seed`].
pub fn read_seed(path: &Path) -> io::Result<Key> {
    let mut text = Zeroizing::new(Vec::new());
    File::open(path)?.take(4096).read_to_end(&mut text)?;
    let trimmed = text.trim_ascii();
    let seed = unhex::<KEY_LEN>(trimmed).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "not a seal seed (64 hex digits, as `sockwarden audit seal-init` writes)",
        )
    })?;
    Ok(Zeroizing::new(seed))
}

pub(super) fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}
