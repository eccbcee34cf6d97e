//! The image ledger: which image IDs sockwarden itself made for which tenant.
//!
//! An image's owner label is part of its config, and anyone can write a config: an image
//! pulled from a registry, loaded or imported on the daemon directly, or built there with
//! `--label sockwarden.owner=uid:1001` carries whatever owner label its author chose. So under
//! isolation an image is a tenant's only when its owner label names the tenant **and** its ID
//! is recorded here for that tenant: sockwarden records the final image ID of every build,
//! commit and import it labelled for a tenant, read from the daemon's answer as it streams by
//! ([`scan`]). An image with an owner label but no record is nobody's (not a shared base
//! image either): it answers as missing to every tenant. Images without an owner label stay
//! shared.
//!
//! The ledger is a file (`[isolation] image_ledger`), one JSON record per line
//! (`{"id":"sha256:...","tenant":"uid:1001","op":"image.build"}`), appended and `fdatasync`ed
//! before the client gets the end of the answer that produced the ID, read whole at start. A
//! line that does not parse refuses the start; a last line without its newline is an append a
//! crash cut short (its answer never ended): it is dropped, with a warning. When the file does
//! not exist yet (the first start with a ledger), every image that carries an owner label then
//! is adopted as its label says (trust on first use), once, logged with the count.
//!
//! One ledger serves the process ([`install`], [`global`]): it outlives reloads. Adopting and
//! recording, which ask the daemon, are in [`adopt`].

pub mod adopt;
pub mod scan;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::{Deserialize, Serialize};

/// Whether `id` is an image ID as the daemon writes it: `sha256:` and 64 lowercase hex digits.
pub fn is_image_id(id: &str) -> bool {
    id.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The key of an image ID (full, with or without `sha256:`, any case): its hex digits.
fn key(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The image ID (`sha256:...`).
    pub id: String,
    /// The tenant it was made for (the owner label's value).
    pub tenant: String,
    /// What made it: `image.build`, `container.commit`, `image.import`, or `adopted`.
    pub op: String,
}

/// Why the ledger cannot be used.
#[derive(Debug)]
pub struct LedgerError(pub String);

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LedgerError {}

/// What a file's text holds: its records, and what to do about a last line without its
/// newline.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The records, in file order.
    pub records: Vec<Record>,
    /// The last line has no newline.
    pub tail: Tail,
}

/// A last line without its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every line ends with its newline.
    Whole,
    /// The last line is a record all the same (written by hand): its newline is added.
    Unterminated,
    /// The last line is no record: an append a crash cut short, whose answer never ended.
    /// Only the first `n` bytes are kept.
    Torn(usize),
}

/// Reads the file's text; a complete line that is not a record is an error naming the line
/// (blank lines are allowed).
pub fn parse(text: &[u8], origin: &str) -> Result<Parsed, LedgerError> {
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut records = Vec::new();
    let bad = |n: usize, why: String| {
        LedgerError(format!(
            "image ledger {origin} line {n}: {why}; fix or remove the line (sockwarden does \
             not start with a ledger it cannot read)"
        ))
    };
    if complete > 0 {
        for (n, line) in text[..complete - 1].split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            records.push(parse_line(line).map_err(|why| bad(n + 1, why))?);
        }
    }
    let rest = &text[complete..];
    let tail = if rest.is_empty() || rest.iter().all(u8::is_ascii_whitespace) {
        if rest.is_empty() {
            Tail::Whole
        } else {
            Tail::Torn(complete)
        }
    } else {
        match parse_line(rest) {
            Ok(record) => {
                records.push(record);
                Tail::Unterminated
            }
            Err(_) => Tail::Torn(complete),
        }
    };
    Ok(Parsed { records, tail })
}

fn parse_line(line: &[u8]) -> Result<Record, String> {
    let record: Record =
        serde_json::from_slice(line).map_err(|e| format!("not a ledger record: {e}"))?;
    if !is_image_id(&record.id) {
        return Err(format!(
            "{:?} is not an image ID (sha256: and 64 lowercase hex digits)",
            record.id
        ));
    }
    if record.tenant.is_empty() || record.tenant.contains('\0') {
        return Err("the tenant is empty or not text".into());
    }
    Ok(record)
}

/// The ledger: the records in memory, the file they are appended to.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    records: RwLock<HashSet<(String, String)>>,
    /// The file, open for appending, once it exists (after adoption).
    file: Mutex<Option<File>>,
    adopted: AtomicBool,
    adopting: tokio::sync::Mutex<()>,
}

impl Ledger {
    /// Opens the ledger at `path`: reads it when it exists (refusing one that does not
    /// parse), or leaves it to be created by adoption ([`Ledger::ready`]).
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let shown = path.display();
        let ledger = Ledger {
            path: path.to_owned(),
            records: RwLock::default(),
            file: Mutex::new(None),
            adopted: AtomicBool::new(false),
            adopting: tokio::sync::Mutex::new(()),
        };
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ledger),
            Err(e) => {
                return Err(LedgerError(format!(
                    "cannot read image ledger {shown}: {e}"
                )))
            }
        };
        let parsed = parse(&text, &shown.to_string())?;
        let mut file = OpenOptions::new().append(true).open(path).map_err(|e| {
            LedgerError(format!(
                "cannot open image ledger {shown} for appending: {e}"
            ))
        })?;
        match parsed.tail {
            Tail::Whole => {}
            Tail::Unterminated => file
                .write_all(b"\n")
                .and_then(|()| file.sync_data())
                .map_err(|e| LedgerError(format!("cannot complete image ledger {shown}: {e}")))?,
            Tail::Torn(at) => {
                tracing::warn!(
                    ledger = %shown,
                    dropped = %String::from_utf8_lossy(&text[at..]),
                    "the image ledger's last line has no newline and is no record (an append \
                     cut short before its answer ended): dropped"
                );
                // Appends go to the end whatever the offset (O_APPEND).
                file.set_len(at as u64)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| {
                        LedgerError(format!("cannot truncate image ledger {shown}: {e}"))
                    })?;
            }
        }
        ledger.insert_all(
            parsed
                .records
                .iter()
                .map(|r| (r.id.as_str(), r.tenant.as_str())),
        );
        *lock(&ledger.file) = Some(file);
        ledger.adopted.store(true, Ordering::SeqCst);
        Ok(ledger)
    }

    /// Where the ledger is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn insert_all<'r>(&self, records: impl Iterator<Item = (&'r str, &'r str)>) {
        let mut set = self.records.write().unwrap_or_else(|p| p.into_inner());
        for (id, tenant) in records {
            if let Some(key) = key(id) {
                set.insert((key, tenant.to_owned()));
            }
        }
    }

    /// Whether the image `id` (a full ID) was made by sockwarden for `tenant`.
    pub fn has(&self, id: &str, tenant: &str) -> bool {
        let Some(key) = key(id) else {
            return false;
        };
        let set = self.records.read().unwrap_or_else(|p| p.into_inner());
        set.contains(&(key, tenant.to_owned()))
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&self, record: &Record) -> Result<(), LedgerError> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| LedgerError(format!("cannot write a ledger record: {e}")))?;
        line.push(b'\n');
        let mut file = lock(&self.file);
        let Some(file) = file.as_mut() else {
            return Err(LedgerError("the image ledger is not open".into()));
        };
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| {
                LedgerError(format!(
                    "cannot append to the image ledger {}: {e}",
                    self.path.display()
                ))
            })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates the ledger file with `records` (its directory `0700` if missing, the file `0600`),
/// written whole to a temporary file and renamed into place, and opens it for appending.
fn create(path: &Path, records: &[Record]) -> std::io::Result<File> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image-owners".into());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut text = Vec::new();
    for record in records {
        serde_json::to_writer(&mut text, record)?;
        text.push(b'\n');
    }
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    OpenOptions::new().append(true).open(path)
}

/// What `sockwarden check` finds wrong with the ledger at `path`, as the user running it: an
/// existing file that cannot be read, written or parsed, or a missing one whose directory
/// cannot be made or written.
pub fn preflight(path: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(format!("{} is not a regular file", path.display())),
        Ok(_) => {
            access(path, AccessFlags::R_OK | AccessFlags::W_OK)
                .map_err(|e| format!("{}: cannot read and write it: {e}", path.display()))?;
            let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            parse(&text, &path.display().to_string())
                .map(|_| ())
                .map_err(|e| e.0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The nearest existing ancestor must be a directory we may write into.
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d.as_os_str().is_empty() {
                    break;
                }
                if d.exists() {
                    if !d.is_dir() {
                        return Err(format!("{} is not a directory", d.display()));
                    }
                    return access(d, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
                        format!(
                            "{} does not exist and cannot be created in {}: {e}",
                            path.display(),
                            d.display()
                        )
                    });
                }
                dir = d.parent();
            }
            Err(format!(
                "{}: no existing directory above it",
                path.display()
            ))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

static GLOBAL: OnceLock<Arc<Ledger>> = OnceLock::new();

/// Opens the process's ledger at `path` when `isolates` (once per process: it outlives
/// reloads); a file that does not parse is an error. At start, and at a reload that first
/// brings isolation.
pub fn open_for(isolates: bool, path: &Path) -> Result<(), String> {
    if !isolates || global().is_some() {
        return Ok(());
    }
    let ledger = install(Ledger::open(path).map_err(|e| e.0)?);
    tracing::info!(
        ledger = %ledger.path().display(),
        records = ledger.len(),
        "image ledger open"
    );
    Ok(())
}

/// Makes `ledger` the process's ledger (the first one installed stays).
pub fn install(ledger: Ledger) -> Arc<Ledger> {
    Arc::clone(GLOBAL.get_or_init(|| Arc::new(ledger)))
}

/// The process's ledger, once installed (at start, or at the first reload that isolates).
pub fn global() -> Option<&'static Arc<Ledger>> {
    GLOBAL.get()
}

/// Whether the image `id` with owner label value `owner` is `tenant`'s: the label names the
/// tenant and the process's ledger holds the ID for it. Without a ledger, no image is.
pub fn owned_by(id: &str, owner: &str, tenant: &str) -> bool {
    owner == tenant && global().is_some_and(|l| l.has(id, tenant))
}

/// For unit tests elsewhere: the process's ledger (an empty one in memory if none), holding
/// `id` for `tenant`.
#[cfg(test)]
pub(crate) fn hold_for_tests(id: &str, tenant: &str) {
    let ledger = GLOBAL.get_or_init(|| {
        Arc::new(Ledger {
            path: PathBuf::from("/nonexistent/image-owners"),
            records: RwLock::default(),
            file: Mutex::new(None),
            adopted: AtomicBool::new(true),
            adopting: tokio::sync::Mutex::new(()),
        })
    });
    ledger.insert_all(std::iter::once((id, tenant)));
}

#[cfg(test)]
mod tests;
