//! Sealing the audit file: every record carries a MAC, chained to the previous record's, under
//! a key that evolves one-way after every record, so that whoever takes the host at time T
//! cannot rewrite, remove, reorder or forge anything sealed before T without `sockwarden audit
//! verify` (see `verify`) naming it.
//!
//! # Keys
//!
//! `sockwarden audit seal-init SEED_FILE` writes a 32-byte random seed (from the OS, through
//! `getrandom`), hex-encoded, mode 0600, never over an existing file. A *chain* is one
//! unbroken sequence of records; it has a random 8-byte id and its first key is
//! `K_0 = HMAC-SHA256(seed, "sockwarden-seal-v1 chain" || chain id)`. After every record the key
//! moves on: `K_{n+1} = SHA-256("sockwarden-seal1 evolve" || K_n)`, overwriting `K_n` in place
//! (in `Zeroizing` memory) and, at the end of the batch, in the state file. Nothing on the host
//! lets anyone compute an earlier key: only the seed does, which the operator keeps elsewhere.
//! sockwarden needs the seed once, to start a chain (no state file yet); after that it runs
//! from the state file alone, and warns at every start while the seed is still readable.
//! (Limits: the HMAC and SHA-256 states derived from a key are dropped, not zeroized — the
//! RustCrypto crates do not — on the writer thread's stack, where the next record's overwrite
//! them; the state file is overwritten in place, but a file system that writes elsewhere
//! (copy-on-write, an SSD's remapping, the journal) may keep an older block until reused.)
//!
//! # Records
//!
//! A sealed record is the unsealed JSON line with one more, last, field:
//! `"seal":"CHAIN:SEQ:MAC"` (chain id in hex, record number in decimal, MAC in hex), so readers
//! of the audit log (`audit summarize`, `suggest`, jq) see one more string field and nothing
//! else. `MAC = HMAC-SHA256(K_SEQ, "sockwarden-seal-v1 record" || chain id || SEQ (8 bytes, big
//! endian) || previous MAC || the line without its seal field)`, truncated to 16 bytes (128
//! bits); the first record of a chain has an all-zero previous MAC. The line without its seal
//! field is the sealed line with `,"seal":"..."` removed (the JSON object as it was written).
//!
//! The sealer writes records of its own, `"event":"seal"`, sealed like the others:
//! `seal_event` = `start` (a new chain: first start with the seed), `restart` (sockwarden started
//! again and continues the chain from its state file), `continue` (the first record of a new
//! file after SIGUSR1), `rotate` (the last record of a file before SIGUSR1 reopens),
//! `checkpoint` (every `seal_checkpoint`, also when idle) and `end` (clean shutdown). `restart`
//! and `continue` name the previous record (`seal_prev` = `SEQ:MAC`), so a file verifies on
//! its own from its first line; every seal record carries `seal_checkpoint_s`, the interval the
//! verifier holds the gaps between records to.
//!
//! # State file
//!
//! `PATH.seal-state` (or `seal_state`), mode 0600, holds the chain id, the next record's number,
//! its key and the last MAC. The sealer MACs a batch, writes the state for the record after
//! the batch (overwritten in place and synced, see [`StateStore`]), and only then appends the batch:
//! the key on disk is always one no record in the file was sealed with, so taking the host and
//! its state file never lets anyone re-seal a record already written. A crash after the state
//! and before the append loses that batch; the next start continues from the state, and verify
//! reports the missing record numbers before the `restart` record as a gap: what happened there
//! is not known, and verify says so. A failed state write loses the batch the same way (and
//! makes the sink unhealthy, which a fail-closed audit turns into refused requests).
//!
//! # Cost
//!
//! Per record: one HMAC-SHA256 over the line (about 650 bytes: 15 SHA-256 blocks with the
//! HMAC pads) and one SHA-256 block for the next key, on the writer thread, never on the
//! request path; per batch (at most one per 20 ms under load, larger batches when the disk is
//! slow) one in-place state-file write and an fdatasync. Measured with `examples/sealcost.rs`: about
//! 1.1-1.4 µs per record with the CPU's SHA extensions (2-CPU Xeon/EPYC, loaded), 53K
//! instructions per record in software SHA-256 (callgrind, which hides the SHA extensions); a
//! state write 0.1-0.6 ms of the writer's wall time on ext4 (a replacement by rename with two
//! fsyncs took 2.6-5.8 ms, and about five times the system CPU).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

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
const SECRET_MODE: u32 = 0o600;
/// The default interval between checkpoints.
pub const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(60);

const DOMAIN_CHAIN: &[u8] = b"sockwarden-seal-v1 chain";
/// 23 bytes: with the key, one SHA-256 block.
const DOMAIN_EVOLVE: &[u8] = b"sockwarden-seal1 evolve";
const DOMAIN_RECORD: &[u8] = b"sockwarden-seal-v1 record";

/// The field a sealed line ends with, before its value.
pub(crate) const SEAL_FIELD: &[u8] = b"\"seal\":\"";

type HmacSha256 = Hmac<Sha256>;

/// A key (seed or evolved), erased when dropped.
pub type Key = Zeroizing<[u8; KEY_LEN]>;
/// A record's MAC.
pub type Tag = [u8; MAC_LEN];
/// A chain's id.
pub type ChainId = [u8; CHAIN_LEN];

/// The `[audit]` sealing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSettings {
    /// The seed file (`seal_key`); read only when no state file exists.
    pub seed: PathBuf,
    /// The state file (`seal_state`, default: the audit file's path + `.seal-state`).
    pub state: PathBuf,
    /// Interval between checkpoint records (`seal_checkpoint`).
    pub checkpoint: Duration,
}

impl SealSettings {
    /// The default state file for the audit file `log`.
    pub fn default_state(log: &Path) -> PathBuf {
        let mut name = log.as_os_str().to_owned();
        name.push(".seal-state");
        PathBuf::from(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives

/// The first key of chain `chain`.
pub fn chain_key(seed: &[u8; KEY_LEN], chain: &ChainId) -> Key {
    let mut mac = hmac_with(seed);
    mac.update(DOMAIN_CHAIN);
    mac.update(chain);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&mac.finalize().into_bytes());
    key
}

/// An HMAC keyed with `key`.
fn hmac_with(key: &[u8]) -> HmacSha256 {
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
fn hex_into(bytes: &[u8], out: &mut [u8]) {
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
fn random(buf: &mut [u8]) -> io::Result<()> {
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

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

// ---------------------------------------------------------------------------------------------
// State file

/// Where the chain stands: the next record's number, key, and the last record's MAC.
pub struct ChainState {
    pub chain: ChainId,
    pub seq: u64,
    pub key: Key,
    pub prev: Tag,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    chain: String,
    seq: u64,
    key: String,
    prev: String,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl ChainState {
    /// A new chain from `seed`, with a random id.
    pub fn new(seed: &[u8; KEY_LEN]) -> io::Result<ChainState> {
        let mut chain = [0u8; CHAIN_LEN];
        random(&mut chain)?;
        Ok(ChainState {
            chain,
            seq: 0,
            key: chain_key(seed, &chain),
            prev: [0u8; MAC_LEN],
        })
    }

    /// Reads a state file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> io::Result<Option<ChainState>> {
        let mut text = Zeroizing::new(Vec::new());
        match File::open(path) {
            Ok(f) => {
                f.take(64 * 1024).read_to_end(&mut text)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("seal state {}: {what}", path.display()),
            )
        };
        let file: StateFile =
            serde_json::from_slice(&text).map_err(|e| bad(&format!("not a state file: {e}")))?;
        if file.version != 1 {
            return Err(bad("unknown version"));
        }
        Ok(Some(ChainState {
            chain: unhex(file.chain.as_bytes()).ok_or_else(|| bad("bad chain"))?,
            seq: file.seq,
            key: Zeroizing::new(unhex(file.key.as_bytes()).ok_or_else(|| bad("bad key"))?),
            prev: unhex(file.prev.as_bytes()).ok_or_else(|| bad("bad prev"))?,
        }))
    }

    /// The state file's text: one JSON object padded with spaces to [`STATE_LEN`] bytes and
    /// a newline, so that every state of a chain has the same length and overwrites the last
    /// in place.
    fn encode(&self) -> io::Result<Zeroizing<Vec<u8>>> {
        let file = StateFile {
            version: 1,
            chain: hex_string(&self.chain),
            seq: self.seq,
            key: hex_string(&self.key[..]),
            prev: hex_string(&self.prev),
        };
        let mut text = Zeroizing::new(Vec::with_capacity(STATE_LEN));
        serde_json::to_writer(&mut *text, &file).map_err(io::Error::other)?;
        if text.len() >= STATE_LEN {
            return Err(io::Error::other("seal state longer than its slot"));
        }
        text.resize(STATE_LEN - 1, b' ');
        text.push(b'\n');
        Ok(text)
    }

    /// Replaces the state file atomically and durably: temp file (0600), fsync, rename, fsync
    /// directory. Used once per start; [`StateStore`] then overwrites it in place.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let text = self.encode()?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_MODE)
            .open(&tmp)?;
        let written = f.write_all(&text).and_then(|()| f.sync_all());
        drop(f);
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_parent(path)
    }

    /// The MAC of the next record (its unsealed line = `parts`), moving the chain on.
    pub fn seal_next(&mut self, parts: &[&[u8]]) -> (u64, Tag) {
        let seq = self.seq;
        let tag = record_mac(&self.key, &self.chain, seq, &self.prev, parts);
        evolve(&mut self.key);
        self.seq += 1;
        self.prev = tag;
        (seq, tag)
    }
}

/// Bytes of a state file: a state is at most ~190 bytes of JSON, padded to this.
const STATE_LEN: usize = 256;

/// The state file, kept open and overwritten in place after every batch: one `pwrite` of
/// [`STATE_LEN`] bytes at offset 0 and an `fdatasync`. The file's length never changes, so the
/// sync writes one block and needs no journal commit (a replacement — temp file, rename, two
/// fsyncs — took about five times the system CPU and ten times the wall time, and each of its
/// journal commits also forced the audit file's data out, 50 times a second under load).
/// Overwriting in place also erases the old key from the file's block, where a replaced file's
/// blocks kept it until reused. A state is far smaller than a disk sector, so a power loss
/// leaves the old state or the new one. Before each save the path is checked to still lead to
/// the open file (one `stat`), so a state file moved away is noticed as before.
pub struct StateStore {
    path: PathBuf,
    file: Option<File>,
    /// Device and inode of `file`: the path must still lead to it before each save.
    identity: (u64, u64),
}

impl StateStore {
    /// Writes `state` as a new file (durably, by rename) and keeps it open for the next ones.
    pub fn create(path: &Path, state: &ChainState) -> io::Result<StateStore> {
        let mut store = StateStore {
            path: path.to_owned(),
            file: None,
            identity: (0, 0),
        };
        store.replace(state)?;
        Ok(store)
    }

    fn replace(&mut self, state: &ChainState) -> io::Result<()> {
        self.file = None;
        state.store(&self.path)?;
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(SECRET_MODE));
        let file = OpenOptions::new().write(true).open(&self.path)?;
        self.identity = identity(&file.metadata()?);
        self.file = Some(file);
        Ok(())
    }

    /// Saves `state` before the records it follows are appended; after an error the next save
    /// replaces the file again.
    pub fn save(&mut self, state: &ChainState) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        // The state must be where the next start looks for it: a file moved or removed
        // (its directory renamed, say) is replaced at its path, or the save fails.
        let moved = match std::fs::metadata(&self.path) {
            Ok(meta) => identity(&meta) != self.identity,
            Err(_) => true,
        };
        let Some(file) = self.file.as_ref().filter(|_| !moved) else {
            return self.replace(state);
        };
        let text = state.encode()?;
        let written = file.write_all_at(&text, 0).and_then(|()| file.sync_data());
        if written.is_err() {
            self.file = None;
        }
        written
    }
}

/// A file's device and inode.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// What [`Sealer::open`] would fail with, found without writing: a readable state file, or
/// (none yet) a readable seed; and a writable directory for the state file.
pub fn preflight(settings: &SealSettings) -> io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    let with_path = |what: &str, path: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    if ChainState::load(&settings.state)
        .map_err(|e| with_path("seal state", &settings.state, e))?
        .is_none()
    {
        read_seed(&settings.seed).map_err(|e| with_path("seal seed", &settings.seed, e))?;
    }
    let parent = match settings.state.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        with_path(
            "seal state directory",
            parent,
            io::Error::from_raw_os_error(e as i32),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The sealer (on the writer thread)

/// A record the sealer writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealEvent {
    Start,
    Restart,
    Continue,
    Rotate,
    Checkpoint,
    End,
}

impl SealEvent {
    pub fn name(self) -> &'static str {
        match self {
            SealEvent::Start => "start",
            SealEvent::Restart => "restart",
            SealEvent::Continue => "continue",
            SealEvent::Rotate => "rotate",
            SealEvent::Checkpoint => "checkpoint",
            SealEvent::End => "end",
        }
    }

    pub fn parse(name: &str) -> Option<SealEvent> {
        Some(match name {
            "start" => SealEvent::Start,
            "restart" => SealEvent::Restart,
            "continue" => SealEvent::Continue,
            "rotate" => SealEvent::Rotate,
            "checkpoint" => SealEvent::Checkpoint,
            "end" => SealEvent::End,
            _ => return None,
        })
    }
}

/// Where sealed lines go: the writer's batch (lines one after the other, and where each
/// ends). A trait, so that this module does not depend on the sink that calls it.
pub(crate) trait SealedOut {
    /// The bytes, to append a line to.
    fn bytes(&mut self) -> &mut Vec<u8>;
    /// The line appended last ends here.
    fn line_ended(&mut self);
    fn clear(&mut self);
    fn is_empty(&self) -> bool;
}

/// Seals the file sink's records; owned by the writer thread.
pub(crate) struct Sealer {
    state_path: PathBuf,
    store: StateStore,
    chain: ChainState,
    checkpoint: Duration,
    next_checkpoint: Instant,
    /// The record the next batch starts with (start, restart or continue).
    header: Option<SealEvent>,
    file: String,
    metrics: crate::metrics::Metrics,
}

impl Sealer {
    /// Continues the chain from the state file, or starts one from the seed when there is none.
    pub fn open(
        settings: &SealSettings,
        log: &Path,
        metrics: crate::metrics::Metrics,
    ) -> io::Result<Sealer> {
        let seed_on_host = File::open(&settings.seed).is_ok();
        let (chain, header) = match ChainState::load(&settings.state)? {
            Some(state) => {
                if seed_on_host {
                    tracing::warn!(
                        seed = %settings.seed.display(),
                        "audit seal: the seed is still on this host; whoever takes it can re-seal \
                         the whole log. Keep it elsewhere (it is needed only to verify)"
                    );
                }
                (state, SealEvent::Restart)
            }
            None => {
                let seed = read_seed(&settings.seed).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "no seal state at {} and the seed {} cannot be read ({e}): a chain \
                             starts from the seed (sockwarden audit seal-init), then continues \
                             from the state file",
                            settings.state.display(),
                            settings.seed.display()
                        ),
                    )
                })?;
                let state = ChainState::new(&seed)?;
                tracing::info!(
                    state = %settings.state.display(),
                    "audit seal: new chain started; now keep the seed {} off this host",
                    settings.seed.display()
                );
                (state, SealEvent::Start)
            }
        };
        let store = StateStore::create(&settings.state, &chain)?;
        metrics.seal_started(chain.seq, seed_on_host);
        Ok(Sealer {
            state_path: settings.state.clone(),
            store,
            chain,
            checkpoint: settings.checkpoint,
            next_checkpoint: Instant::now() + settings.checkpoint,
            header: Some(header),
            file: log.display().to_string(),
            metrics,
        })
    }

    /// How long until the sealer has something to write (zero: now): the next checkpoint, or
    /// at once a pending start, restart or continue record (so a file starts with it).
    pub fn until_checkpoint(&self) -> Duration {
        if self.header.is_some() {
            return Duration::ZERO;
        }
        self.next_checkpoint
            .saturating_duration_since(Instant::now())
    }

    /// Seals what the next write appends, into `out`: the pending header record, `lines`, a
    /// checkpoint when one is due, and `trailer` (rotate or end); then stores the state that
    /// follows them. On an error nothing may be appended: the records are lost.
    pub(super) fn seal_batch<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a [u8]>,
        trailer: Option<SealEvent>,
        out: &mut dyn SealedOut,
    ) -> io::Result<()> {
        out.clear();
        let mut scratch = Vec::new();
        if let Some(header) = self.header.take() {
            self.seal_event(header, &mut scratch, out);
        }
        let mut n = 0u64;
        for line in lines {
            self.seal_line(line, out);
            n += 1;
        }
        let due = self.next_checkpoint <= Instant::now();
        if due {
            self.next_checkpoint = Instant::now() + self.checkpoint;
            self.seal_event(SealEvent::Checkpoint, &mut scratch, out);
            self.metrics.seal_checkpoint();
        }
        if let Some(trailer) = trailer {
            self.seal_event(trailer, &mut scratch, out);
        }
        if out.is_empty() {
            return Ok(());
        }
        self.metrics.seal_progress(n, self.chain.seq);
        if let Err(e) = self.store.save(&self.chain) {
            self.metrics.seal_state_failure();
            out.clear();
            return Err(io::Error::new(
                e.kind(),
                format!("seal state {}: {e}", self.state_path.display()),
            ));
        }
        Ok(())
    }

    /// After a reopen: the new file starts with a `continue` record.
    pub fn reopened(&mut self) {
        self.header = Some(SealEvent::Continue);
    }

    fn seal_event(&mut self, event: SealEvent, scratch: &mut Vec<u8>, out: &mut dyn SealedOut) {
        scratch.clear();
        let time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        let mut value = serde_json::json!({
            "time": time,
            "event": "seal",
            "seal_event": event.name(),
            "seal_checkpoint_s": self.checkpoint.as_secs_f64(),
            "seal_file": self.file,
        });
        if matches!(event, SealEvent::Restart | SealEvent::Continue) && self.chain.seq > 0 {
            value["seal_prev"] = serde_json::Value::String(format!(
                "{}:{}",
                self.chain.seq - 1,
                hex_string(&self.chain.prev)
            ));
        }
        if serde_json::to_writer(&mut *scratch, &value).is_err() {
            scratch.clear();
            scratch.extend_from_slice(b"{\"event\":\"seal\"}");
        }
        scratch.push(b'\n');
        let line = std::mem::take(scratch);
        self.seal_line(&line, out);
        *scratch = line;
    }

    /// Appends `line` (a JSON object and its newline) sealed to `out`.
    fn seal_line(&mut self, line: &[u8], out: &mut dyn SealedOut) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let object = body.len() >= 2 && body.starts_with(b"{") && body.ends_with(b"}");
        if !object {
            // Never written by sockwarden's own writers; kept, as a string in an object.
            let wrapped = serde_json::json!({
                "event": "error",
                "line": String::from_utf8_lossy(body),
            });
            let mut fixed = serde_json::to_vec(&wrapped).unwrap_or_default();
            fixed.push(b'\n');
            return self.seal_line(&fixed, out);
        }
        let prefix = &body[..body.len() - 1];
        let (seq, tag) = self.chain.seal_next(&[prefix, b"}"]);
        // `,"seal":"CHAIN:` and `:MAC"}` + newline, each put together in an array and
        // appended whole.
        let mut head = [0u8; 1 + SEAL_FIELD.len() + 2 * CHAIN_LEN + 1];
        head[0] = b',';
        head[1..=SEAL_FIELD.len()].copy_from_slice(SEAL_FIELD);
        hex_into(&self.chain.chain, &mut head[1 + SEAL_FIELD.len()..]);
        head[head.len() - 1] = b':';
        let mut tail = [0u8; 1 + 2 * MAC_LEN + 3];
        tail[0] = b':';
        hex_into(&tag, &mut tail[1..]);
        tail[1 + 2 * MAC_LEN..].copy_from_slice(b"\"}\n");
        let bytes = out.bytes();
        bytes.reserve(prefix.len() + head.len() + 20 + tail.len());
        bytes.extend_from_slice(prefix);
        // A first member needs no comma.
        let head = if prefix == b"{" {
            &head[1..]
        } else {
            &head[..]
        };
        bytes.extend_from_slice(head);
        bytes.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        bytes.extend_from_slice(&tail);
        out.line_ended();
    }
}

/// A sealed line taken apart: the unsealed line is `prefix` followed by `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedParts<'a> {
    pub prefix: &'a [u8],
    pub chain: ChainId,
    pub seq: u64,
    pub tag: Tag,
}

/// Why a line is not a sealed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    /// No seal field.
    Missing,
    /// A seal field that is not `CHAIN:SEQ:MAC`, or not where a seal goes.
    Malformed,
}

/// Takes a sealed line (without its newline) apart.
pub fn split_sealed(line: &[u8]) -> Result<SealedParts<'_>, Unsealed> {
    let Some(at) = find_last(line, SEAL_FIELD) else {
        return Err(Unsealed::Missing);
    };
    let value_start = at + SEAL_FIELD.len();
    let Some(value) = line
        .get(value_start..)
        .and_then(|rest| rest.strip_suffix(b"\"}"))
    else {
        return Err(Unsealed::Malformed);
    };
    let prefix = match line[..at].strip_suffix(b",") {
        Some(p) => p,
        None if &line[..at] == b"{" => &line[..at],
        None => return Err(Unsealed::Malformed),
    };
    if !prefix.starts_with(b"{") {
        return Err(Unsealed::Malformed);
    }
    let mut fields = value.split(|&b| b == b':');
    let (Some(chain), Some(seq), Some(tag), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Unsealed::Malformed);
    };
    let chain = unhex::<CHAIN_LEN>(chain).ok_or(Unsealed::Malformed)?;
    let tag = unhex::<MAC_LEN>(tag).ok_or(Unsealed::Malformed)?;
    if seq.is_empty() || !seq.iter().all(u8::is_ascii_digit) || (seq.len() > 1 && seq[0] == b'0') {
        return Err(Unsealed::Malformed);
    }
    let seq = std::str::from_utf8(seq)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Unsealed::Malformed)?;
    Ok(SealedParts {
        prefix,
        chain,
        seq,
        tag,
    })
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| haystack[i..].starts_with(needle))
}

#[cfg(test)]
mod tests;
