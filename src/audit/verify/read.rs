//! Reading sealed files for `verify`: one stream of lines across the files given, each taken
//! apart into its seal and the few fields the checks need.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::audit::seal::{self, split_sealed, BatchPos, ChainId, SealEvent, Tag, Unsealed};

pub(super) struct Entry {
    pub(super) file: usize,
    pub(super) line: u64,
    /// The first line of its file.
    pub(super) first_in_file: bool,
    pub(super) body: Body,
}

pub(super) enum Body {
    Empty,
    Unsealed(Unsealed),
    Sealed(Sealed),
}

pub(super) struct Sealed {
    /// The unsealed line is this followed by `}`.
    pub(super) prefix: Vec<u8>,
    pub(super) chain: ChainId,
    pub(super) seq: u64,
    /// Format 2: its batch and the batch's record count.
    pub(super) batch: Option<BatchPos>,
    pub(super) tag: Tag,
    pub(super) time: Option<SystemTime>,
    pub(super) event: Option<SealEvent>,
    pub(super) interval: Option<Duration>,
    pub(super) prev: Option<(u64, Tag)>,
}

impl Sealed {
    pub(super) fn parts(&self) -> [&[u8]; 2] {
        [&self.prefix, b"}"]
    }
}

/// The few fields the verifier reads besides the seal.
#[derive(serde::Deserialize)]
struct Head {
    time: Option<String>,
    event: Option<String>,
    seal_event: Option<String>,
    seal_checkpoint_s: Option<f64>,
    seal_prev: Option<String>,
}

pub(super) struct Stream<'a> {
    pub(super) files: &'a [PathBuf],
    pub(super) next_file: usize,
    pub(super) reader: Option<BufReader<File>>,
    pub(super) line: u64,
    pub(super) first_pending: bool,
    pub(super) buf: Vec<u8>,
}

impl Stream<'_> {
    pub(super) fn next(&mut self) -> io::Result<Option<Entry>> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                let file = File::open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                self.reader = Some(BufReader::with_capacity(256 * 1024, file));
                self.next_file += 1;
                self.line = 0;
                self.first_pending = true;
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            self.buf.clear();
            let n = reader.read_until(b'\n', &mut self.buf).map_err(|e| {
                let path = &self.files[self.next_file - 1];
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            })?;
            if n == 0 {
                self.reader = None;
                continue;
            }
            self.line += 1;
            let first_in_file = std::mem::take(&mut self.first_pending);
            let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            return Ok(Some(Entry {
                file: self.next_file - 1,
                line: self.line,
                first_in_file,
                body: parse(line),
            }));
        }
    }
}

fn parse(line: &[u8]) -> Body {
    if line.trim_ascii().is_empty() {
        return Body::Empty;
    }
    let parts = match split_sealed(line) {
        Ok(parts) => parts,
        Err(why) => return Body::Unsealed(why),
    };
    let head: Option<Head> = serde_json::from_slice(line).ok();
    let (time, event, interval, prev) = match head {
        Some(h) => {
            let is_seal = h.event.as_deref() == Some("seal");
            (
                h.time
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
                h.seal_event
                    .as_deref()
                    .filter(|_| is_seal)
                    .and_then(SealEvent::parse),
                h.seal_checkpoint_s
                    .filter(|s| is_seal && s.is_finite() && *s >= 1.0 && *s < 1e9)
                    .map(Duration::from_secs_f64),
                h.seal_prev
                    .as_deref()
                    .filter(|_| is_seal)
                    .and_then(parse_prev),
            )
        }
        None => (None, None, None, None),
    };
    Body::Sealed(Sealed {
        prefix: parts.prefix.to_vec(),
        chain: parts.chain,
        seq: parts.seq,
        batch: parts.batch,
        tag: parts.tag,
        time,
        event,
        interval,
        prev,
    })
}

fn parse_prev(text: &str) -> Option<(u64, Tag)> {
    let (seq, tag) = text.split_once(':')?;
    Some((seq.parse().ok()?, seal::unhex(tag.as_bytes())?))
}
