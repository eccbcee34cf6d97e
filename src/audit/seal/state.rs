//! Where a chain stands, and the state file that keeps it across restarts (see `seal`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use super::batch::{BatchKey, BatchPos};
use super::keys::{
    chain_key, chain_key_v2, evolve, hex_string, random, record_mac, sync_parent, unhex, ChainId,
    Key, Tag, CHAIN_LEN, KEY_LEN, MAC_LEN, SECRET_MODE,
};

/// How a chain seals its records (see the module documentation): format 1, a key per record
/// (HMAC-SHA256), the format of chains begun before format 2; format 2, a key per batch
/// (AES-256-GCM, `batch`), the format of every new chain. A chain keeps its format for life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1,
    V2,
}

// ---------------------------------------------------------------------------------------------
// State file

/// Where the chain stands: the next record's number, key (format 2: the next batch's), and
/// the last record's MAC.
pub struct ChainState {
    pub chain: ChainId,
    pub seq: u64,
    pub key: Key,
    pub prev: Tag,
    pub format: Format,
    /// Format 2: the next batch's number.
    pub batch: u64,
    /// Format 2: the batch being sealed, and how many of its records are still to come.
    open: Option<(BatchPos, u64)>,
    /// Format 2: the key of the batch being sealed; between batches a dummy's, written over
    /// the last one (see [`ChainState::forget_batch_key`]).
    batch_key: Option<BatchKey>,
    /// Format 2: the plaintext of the record being sealed.
    scratch: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    chain: String,
    seq: u64,
    /// Format 2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<u64>,
    key: String,
    prev: String,
}

impl Drop for StateFile {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl ChainState {
    /// A new chain from `seed`, with a random id, in format 2.
    pub fn new(seed: &[u8; KEY_LEN]) -> io::Result<ChainState> {
        ChainState::new_in(seed, Format::V2)
    }

    /// A new chain in `format` (format 1 only to test that its chains still verify).
    pub fn new_in(seed: &[u8; KEY_LEN], format: Format) -> io::Result<ChainState> {
        let mut chain = [0u8; CHAIN_LEN];
        random(&mut chain)?;
        let key = match format {
            Format::V1 => chain_key(seed, &chain),
            Format::V2 => chain_key_v2(seed, &chain),
        };
        Ok(ChainState::at(chain, 0, key, [0u8; MAC_LEN], format, 0))
    }

    pub(super) fn at(
        chain: ChainId,
        seq: u64,
        key: Key,
        prev: Tag,
        format: Format,
        batch: u64,
    ) -> Self {
        ChainState {
            chain,
            seq,
            key,
            prev,
            format,
            batch,
            open: None,
            batch_key: None,
            scratch: Vec::new(),
        }
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
        let (format, batch) = match (file.version, file.batch) {
            (1, None) => (Format::V1, 0),
            (2, Some(batch)) => (Format::V2, batch),
            (1 | 2, _) => return Err(bad("a batch number does not go with this version")),
            _ => return Err(bad("unknown version")),
        };
        Ok(Some(ChainState::at(
            unhex(file.chain.as_bytes()).ok_or_else(|| bad("bad chain"))?,
            file.seq,
            Zeroizing::new(unhex(file.key.as_bytes()).ok_or_else(|| bad("bad key"))?),
            unhex(file.prev.as_bytes()).ok_or_else(|| bad("bad prev"))?,
            format,
            batch,
        )))
    }

    /// The state file's text: one JSON object padded with spaces to [`STATE_LEN`] bytes and
    /// a newline, so that every state of a chain has the same length and overwrites the last
    /// in place.
    fn encode(&self) -> io::Result<Zeroizing<Vec<u8>>> {
        let file = StateFile {
            version: match self.format {
                Format::V1 => 1,
                Format::V2 => 2,
            },
            chain: hex_string(&self.chain),
            seq: self.seq,
            batch: (self.format == Format::V2).then_some(self.batch),
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

    /// Format 2: the next `count` records are one batch, sealed under the batch's key. The
    /// key moves on now, in memory, and is what the state written before the batch holds: no
    /// key kept anywhere sealed a record of the batch. (Format 1: nothing to do.)
    pub fn begin_batch(&mut self, count: u64) -> io::Result<()> {
        if self.format == Format::V1 || count == 0 {
            return Ok(());
        }
        self.batch_key = BatchKey::new(&self.key);
        if self.batch_key.is_none() {
            return Err(io::Error::other(
                "seal: the batch key is not an AES-256 key",
            ));
        }
        let pos = BatchPos {
            batch: self.batch,
            count,
        };
        evolve(&mut self.key);
        self.batch += 1;
        self.open = Some((pos, count));
        Ok(())
    }

    /// Ends a batch that could not be sealed whole (the sealer drops its records): its key
    /// is forgotten now, not kept in memory until the next batch, which may come only with
    /// the next checkpoint. Its records' numbers stay used: `verify` reports them as a gap.
    pub fn abandon_batch(&mut self) {
        if self.open.take().is_some() {
            self.forget_batch_key();
        }
    }

    /// Writes a dummy key's schedule over the finished batch's, in place: ring does not erase
    /// an AES key schedule (whose first round keys are the key) or GCM's hash key when they
    /// are dropped, and either would let whoever reads the memory of an idle sealer re-seal
    /// the last batch. (`black_box` keeps the store from being dropped as dead.)
    fn forget_batch_key(&mut self) {
        self.batch_key = BatchKey::new(&[0u8; KEY_LEN]);
        std::hint::black_box(&self.batch_key);
    }

    /// The MAC of the next record (its unsealed line = `parts`), moving the chain on: its
    /// number, MAC, and in format 2 its place (a record outside a begun batch is sealed as a
    /// batch of its own).
    pub fn seal_next(&mut self, parts: &[&[u8]]) -> io::Result<(u64, Tag, Option<BatchPos>)> {
        let seq = self.seq;
        let (tag, place) = match self.format {
            Format::V1 => {
                let tag = record_mac(&self.key, &self.chain, seq, &self.prev, parts);
                evolve(&mut self.key);
                (tag, None)
            }
            Format::V2 => {
                if self.open.is_none() {
                    self.begin_batch(1)?;
                }
                let (Some((pos, left)), Some(key)) = (self.open.as_mut(), self.batch_key.as_ref())
                else {
                    return Err(io::Error::other("seal: no batch begun"));
                };
                let place = *pos;
                let tag = key
                    .tag(
                        &self.chain,
                        seq,
                        place,
                        &self.prev,
                        parts,
                        &mut self.scratch,
                    )
                    .ok_or_else(|| io::Error::other("seal: AES-GCM refused the record"))?;
                *left -= 1;
                if *left == 0 {
                    self.open = None;
                    self.forget_batch_key();
                }
                (tag, Some(place))
            }
        };
        self.seq += 1;
        self.prev = tag;
        Ok((seq, tag, place))
    }
}

/// Bytes of a state file: a state is at most ~190 bytes of JSON, padded to this.
pub(super) const STATE_LEN: usize = 256;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abandoned_batch_forgets_its_key() {
        let mut state = ChainState::new(&[7u8; KEY_LEN]).unwrap();
        let chain = state.chain;
        let probe = |key: &BatchKey| {
            let pos = BatchPos { batch: 0, count: 1 };
            key.tag(&chain, 0, pos, &[0; MAC_LEN], &[b"{}"], &mut Vec::new())
                .unwrap()
        };
        let dummy = probe(&BatchKey::new(&[0u8; KEY_LEN]).unwrap());
        state.begin_batch(3).unwrap();
        state.seal_next(&[b"{\"a\":1", b"}"]).unwrap();
        assert_ne!(probe(state.batch_key.as_ref().unwrap()), dummy);
        state.abandon_batch();
        assert!(state.open.is_none());
        assert_eq!(probe(state.batch_key.as_ref().unwrap()), dummy);
        // The next record begins a batch of its own, under the next key.
        let (seq, _, place) = state.seal_next(&[b"{\"a\":2", b"}"]).unwrap();
        assert_eq!(seq, 1);
        assert_eq!(place, Some(BatchPos { batch: 1, count: 1 }));
    }
}
