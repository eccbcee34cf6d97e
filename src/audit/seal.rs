//! Sealing the audit file: every record carries a MAC, chained to the previous record's, under
//! a key that evolves one-way (format 1: after every record; format 2, every new chain: after
//! every batch, see `batch`), so that whoever takes the host at time T cannot rewrite, remove,
//! reorder or forge anything sealed before T without `sockwarden audit verify` (see `verify`)
//! naming it. A chain keeps the format it began with; this section describes format 1, and
//! `batch` what format 2 does differently.
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
//! them; in format 2 the batch's AES-GCM key schedule is overwritten with a dummy key's when
//! the batch ends, but copies ring makes on the stack while sealing are left to be
//! overwritten the same way; the state file is overwritten in place, but a file system that
//! writes elsewhere (copy-on-write, an SSD's remapping, the journal) may keep an older block
//! until reused.)
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
//! # Format 2
//!
//! `K_0 = HMAC-SHA256(seed, "sockwarden-seal-v2 chain" || chain id)`, and the key evolves (as
//! above) once per batch, when the batch begins: the state written before the batch is
//! appended already holds the next batch's key. A record's seal field is
//! `"seal":"2:CHAIN:SEQ:BATCH:COUNT:MAC"` and its MAC is AES-256-GCM's tag under the batch's
//! key (see `batch`). The state file says `"version":2` and the next batch's number.
//!
//! # Cost
//!
//! Format 2, per record: one AES-256-GCM tag over the line (~0.24 µs with the seal field,
//! `examples/sealcost.rs`), per batch one AES key schedule and one SHA-256 block. Format 1, per
//! record: one HMAC-SHA256 over the line (about 650 bytes: 15 SHA-256 blocks with the
//! HMAC pads) and one SHA-256 block for the next key (~0.65 µs). Both on the writer thread,
//! never on the request path; per batch (at most one per 20 ms under load, larger batches when
//! the disk is slow) one in-place state-file write and an fdatasync: 0.1-0.6 ms of the writer's
//! wall time on ext4 (a replacement by rename with two fsyncs took 2.6-5.8 ms, and about five
//! times the system CPU). (Format 1 measured 1.1-1.4 µs per record on a loaded machine in an
//! earlier session, 53K instructions per record in software SHA-256 under callgrind.)

mod batch;
mod keys;
mod state;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use batch::{BatchKey, BatchPos};
pub use keys::{
    chain_key, chain_key_v2, check_mac, evolve, read_seed, record_mac, write_new_seed, ChainId,
    Key, Tag, CHAIN_LEN, KEY_LEN, MAC_LEN,
};
pub(crate) use keys::{hex_string, unhex};
pub use state::{ChainState, Format, StateStore};

use keys::hex_into;

/// The default interval between checkpoints.
pub const DEFAULT_CHECKPOINT: Duration = Duration::from_secs(60);
/// The field a sealed line ends with, before its value.
pub(crate) const SEAL_FIELD: &[u8] = b"\"seal\":\"";

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
        lines: impl Iterator<Item = &'a [u8]> + Clone,
        trailer: Option<SealEvent>,
        out: &mut dyn SealedOut,
    ) -> io::Result<()> {
        out.clear();
        let mut scratch = Vec::new();
        let header = self.header.take();
        let due = self.next_checkpoint <= Instant::now();
        // Format 2 seals the batch's record count into each of its records.
        let n = lines.clone().count() as u64;
        let count = n + u64::from(header.is_some()) + u64::from(due) + u64::from(trailer.is_some());
        if count == 0 {
            return Ok(());
        }
        let sealed = self.chain.begin_batch(count).and_then(|()| {
            if let Some(header) = header {
                self.seal_event(header, &mut scratch, out)?;
            }
            for line in lines {
                self.seal_line(line, out)?;
            }
            if due {
                self.next_checkpoint = Instant::now() + self.checkpoint;
                self.seal_event(SealEvent::Checkpoint, &mut scratch, out)?;
                self.metrics.seal_checkpoint();
            }
            if let Some(trailer) = trailer {
                self.seal_event(trailer, &mut scratch, out)?;
            }
            Ok(())
        });
        if let Err(e) = sealed {
            self.chain.abandon_batch();
            out.clear();
            return Err(e);
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

    fn seal_event(
        &mut self,
        event: SealEvent,
        scratch: &mut Vec<u8>,
        out: &mut dyn SealedOut,
    ) -> io::Result<()> {
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
        let sealed = self.seal_line(&line, out);
        *scratch = line;
        sealed
    }

    /// Appends `line` (a JSON object and its newline) sealed to `out`.
    fn seal_line(&mut self, line: &[u8], out: &mut dyn SealedOut) -> io::Result<()> {
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
        let (seq, tag, place) = self.chain.seal_next(&[prefix, b"}"])?;
        let bytes = out.bytes();
        bytes.reserve(prefix.len() + SEAL_FIELD.len() + 96);
        bytes.extend_from_slice(prefix);
        // A first member needs no comma.
        if prefix != b"{" {
            bytes.push(b',');
        }
        bytes.extend_from_slice(SEAL_FIELD);
        push_seal_value(bytes, &self.chain.chain, seq, place, &tag);
        bytes.extend_from_slice(b"\"}\n");
        out.line_ended();
        Ok(())
    }
}

/// Appends a seal field's value: `CHAIN:SEQ:MAC` (format 1) or `2:CHAIN:SEQ:BATCH:COUNT:MAC`
/// (format 2, with `place`), the chain id and MAC in hex.
pub fn push_seal_value(
    out: &mut Vec<u8>,
    chain: &ChainId,
    seq: u64,
    place: Option<BatchPos>,
    tag: &Tag,
) {
    let mut hex = [0u8; 2 * MAC_LEN];
    let mut n = itoa::Buffer::new();
    if place.is_some() {
        out.extend_from_slice(b"2:");
    }
    hex_into(chain, &mut hex[..2 * CHAIN_LEN]);
    out.extend_from_slice(&hex[..2 * CHAIN_LEN]);
    out.push(b':');
    out.extend_from_slice(n.format(seq).as_bytes());
    if let Some(place) = place {
        out.push(b':');
        out.extend_from_slice(n.format(place.batch).as_bytes());
        out.push(b':');
        out.extend_from_slice(n.format(place.count).as_bytes());
    }
    out.push(b':');
    hex_into(tag, &mut hex);
    out.extend_from_slice(&hex);
}

/// A sealed line taken apart: the unsealed line is `prefix` followed by `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedParts<'a> {
    pub prefix: &'a [u8],
    pub chain: ChainId,
    pub seq: u64,
    /// Format 2: the record's batch and its count; `None` in format 1.
    pub batch: Option<BatchPos>,
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
    let fields: Vec<&[u8]> = value.split(|&b| b == b':').collect();
    let (chain, seq, batch, tag) = match fields[..] {
        [chain, seq, tag] => (chain, seq, None, tag),
        [b"2", chain, seq, batch, count, tag] => (chain, seq, Some((batch, count)), tag),
        _ => return Err(Unsealed::Malformed),
    };
    let chain = unhex::<CHAIN_LEN>(chain).ok_or(Unsealed::Malformed)?;
    let tag = unhex::<MAC_LEN>(tag).ok_or(Unsealed::Malformed)?;
    let seq = decimal(seq).ok_or(Unsealed::Malformed)?;
    let batch = match batch {
        None => None,
        Some((batch, count)) => Some(BatchPos {
            batch: decimal(batch).ok_or(Unsealed::Malformed)?,
            count: decimal(count)
                .filter(|&c| c > 0)
                .ok_or(Unsealed::Malformed)?,
        }),
    };
    Ok(SealedParts {
        prefix,
        chain,
        seq,
        batch,
        tag,
    })
}

/// A number as the sealer writes it: decimal digits, no sign, no leading zero.
fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty()
        || !text.iter().all(u8::is_ascii_digit)
        || (text.len() > 1 && text[0] == b'0')
    {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
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
