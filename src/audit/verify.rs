//! `sockwarden audit verify --key SEED FILE...`: checks sealed audit files (see `seal`) and
//! names every line that was changed, and how.
//!
//! The files are read in the order given, as one stream (oldest first: `audit.log.2
//! audit.log.1 audit.log`), a line at a time with a look-ahead of [`WINDOW`] lines, so files
//! of any size verify in constant memory. Every key is recomputed from the seed. What is
//! reported, as `FILE:LINE: KIND: detail`:
//!
//! - `edited`: a record does not match its seal, and the next record chains to that seal (the
//!   seal is genuine, the bytes changed); also a damaged seal field;
//! - `forged`: a record's seal was not made with the key the chain had for it, and the next
//!   record does not chain to it (re-sealed with another key, or made up); for the very last
//!   record nothing tells the two apart and it is called "edited or forged"; in format 2 also
//!   a record that begins a batch when the last batch has fewer records than it was sealed
//!   with (its tail removed and what follows sealed with the next batch's key);
//! - `inserted`: a line without a seal, a copy of a record already seen, a false record in
//!   front of a genuine one, a record of another chain;
//! - `deleted`: record numbers missing inside a file;
//! - `reordered`: a record that comes before one it follows (swapped or moved lines);
//! - `gap`: record numbers missing at a file boundary (a file not given or removed) or before
//!   a `restart` (a crash after the state was written, or removal); more time between two
//!   records than the checkpoint interval allows (sockwarden stopped without an end record,
//!   or records removed); a chain that starts before the first file given; a log that ends
//!   without an `end` record longer ago than the interval (its tail cut, or sockwarden
//!   stopped or holding records back); in format 2, a log that ends inside a batch (a cut tail
//!   or a torn write) — `--now` verifies "as of" another time; `--partial`
//!   accepts files that start or end in the middle of a chain (older files pruned, or
//!   the newest one not given).
//!
//! Exit status: 0 intact, 1 anything reported, 2 usage error (unreadable seed or file).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::seal::{self, BatchPos, ChainId, SealEvent, Tag, Unsealed, KEY_LEN};

mod keys;
mod read;

use keys::Keys;
use read::{Body, Entry, Sealed, Stream};

/// Lines looked ahead, to tell a swap from a deletion and an edit from a forgery.
pub const WINDOW: usize = 64;
/// The most records a chain may jump forward; further is not taken for a record number.
const MAX_JUMP: u64 = 50_000_000;
/// Records remembered, to recognize a copied one.
const RECENT: usize = 4096;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Edited,
    Deleted,
    Inserted,
    Reordered,
    Forged,
    Gap,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Edited => "edited",
            Kind::Deleted => "deleted",
            Kind::Inserted => "inserted",
            Kind::Reordered => "reordered",
            Kind::Forged => "forged",
            Kind::Gap => "gap",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 for a file as a whole.
    pub line: u64,
    pub kind: Kind,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.kind, self.detail
        )
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time the log is verified as of (the tail check).
    pub now: SystemTime,
    /// Accept a chain that starts before the first file or continues after the last.
    pub partial: bool,
}

/// The result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub problems: Vec<Problem>,
    /// Records whose seal verified.
    pub verified: u64,
    /// Sealed records read.
    pub records: u64,
    /// Chains seen.
    pub chains: usize,
}

/// Verifies `files` in order; an error is an unreadable file.
pub fn verify_files(
    seed: &[u8; KEY_LEN],
    files: &[PathBuf],
    options: &Options,
) -> io::Result<Outcome> {
    let mut stream = Stream {
        files,
        next_file: 0,
        reader: None,
        line: 0,
        first_pending: false,
        buf: Vec::new(),
    };
    let mut v = Verifier {
        seed,
        partial: options.partial,
        names: files.iter().map(|f| f.display().to_string()).collect(),
        cur: None,
        chains_seen: HashSet::new(),
        stash: BTreeMap::new(),
        recent: HashMap::new(),
        recent_order: VecDeque::new(),
        skipped: VecDeque::new(),
        max_time: None,
        last: None,
        interval: seal::DEFAULT_CHECKPOINT,
        out: Outcome::default(),
    };
    let mut window: VecDeque<Entry> = VecDeque::new();
    loop {
        while window.len() <= WINDOW {
            match stream.next()? {
                Some(e) => window.push_back(e),
                None => break,
            }
        }
        let Some(entry) = window.pop_front() else {
            break;
        };
        if matches!(entry.body, Body::Sealed(_)) {
            v.out.records += 1;
        }
        v.process(entry, &window);
    }
    // Records held back as out of place whose predecessors never came.
    while let Some((_, entry)) = v.stash.pop_first() {
        v.process(entry, &window);
    }
    v.finish(options);
    Ok(v.out)
}

// ---------------------------------------------------------------------------------------------
// Checking

struct Chain {
    id: ChainId,
    /// The next record's number.
    next: u64,
    keys: Keys,
    /// Format 2: the batch of the last record accepted, and its first record's number when
    /// known (not when records before it in the batch are missing).
    open_batch: Option<(BatchPos, Option<u64>)>,
    /// Records were just reported missing before the record being accepted.
    jumped: bool,
    /// The last record's MAC; `None` after a record whose MAC is not known to be genuine.
    prev: Option<Tag>,
    /// The file of the last record.
    file: usize,
    line: u64,
    event: Option<SealEvent>,
}

struct Verifier<'a> {
    seed: &'a [u8; KEY_LEN],
    partial: bool,
    names: Vec<String>,
    cur: Option<Chain>,
    chains_seen: HashSet<ChainId>,
    /// Records that came before a record they follow, until their turn.
    stash: BTreeMap<u64, Entry>,
    recent: HashMap<u64, (Tag, usize, u64)>,
    recent_order: VecDeque<u64>,
    /// Ranges of record numbers reported missing.
    skipped: VecDeque<(u64, u64)>,
    /// The latest record time seen, and where.
    max_time: Option<(SystemTime, usize, u64)>,
    last: Option<(usize, u64)>,
    interval: Duration,
    out: Outcome,
}

/// Format 2: record `seq` at `pos` is accepted; returns what is wrong when it begins a batch
/// although the last batch did not have the records it was sealed with (its tail removed and
/// what follows sealed again under the next batch's key, which whoever holds the host has).
fn enter_batch(
    cur: &mut Chain,
    pos: BatchPos,
    seq: u64,
    event: Option<SealEvent>,
) -> Option<String> {
    let jumped = std::mem::take(&mut cur.jumped);
    // A header record (start, restart, continue) always begins its batch.
    let begins = matches!(
        event,
        Some(SealEvent::Start | SealEvent::Restart | SealEvent::Continue)
    );
    let (open, first) = match cur.open_batch {
        Some((open, first)) if open.batch == pos.batch => {
            cur.open_batch = Some((open, first));
            return None;
        }
        Some(open) => open,
        None => {
            let first = (seq == 0 || begins).then_some(seq);
            cur.open_batch = Some((pos, first));
            return None;
        }
    };
    cur.open_batch = Some((pos, (!jumped || begins).then_some(seq)));
    if jumped {
        // The records missing were reported as such.
        return None;
    }
    // Counts and batch numbers come from the line, genuine or not: no arithmetic may overflow.
    let end = first.map(|f| f.saturating_add(open.count));
    match end {
        Some(end) if seq < end => Some(format!(
            "record {seq} begins batch {}, but batch {} was sealed with {} records from record \
             {}: records {seq}..{} were removed and what follows sealed again",
            pos.batch,
            open.batch,
            open.count,
            first.unwrap_or_default(),
            end - 1
        )),
        _ if open.batch.checked_add(1) != Some(pos.batch) => Some(format!(
            "record {seq} is in batch {} right after batch {}: not sealed in this chain",
            pos.batch, open.batch
        )),
        _ => None,
    }
}

/// The next sealed entry of `chain` in the window.
fn next_sealed<'w>(
    window: &'w VecDeque<Entry>,
    chain: &ChainId,
) -> Option<(&'w Entry, &'w Sealed)> {
    window.iter().find_map(|e| match &e.body {
        Body::Sealed(s) if &s.chain == chain => Some((e, s)),
        _ => None,
    })
}

/// Slack over the checkpoint interval before a silence counts as a gap.
fn slack(interval: Duration) -> Duration {
    interval / 2 + Duration::from_secs(2)
}

impl Verifier<'_> {
    fn report(&mut self, file: usize, line: u64, kind: Kind, detail: String) {
        self.out.problems.push(Problem {
            file: self.names.get(file).cloned().unwrap_or_default(),
            line,
            kind,
            detail,
        });
    }

    fn at(&self, file: usize, line: u64) -> String {
        format!(
            "{}:{line}",
            self.names.get(file).map(String::as_str).unwrap_or("")
        )
    }

    fn process(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let (file, line) = (e.file, e.line);
        match e.body {
            Body::Empty => self.report(file, line, Kind::Inserted, "an empty line".into()),
            Body::Unsealed(Unsealed::Missing) => {
                self.report(file, line, Kind::Inserted, "a line without a seal".into())
            }
            Body::Unsealed(Unsealed::Malformed) => {
                self.report(file, line, Kind::Edited, "its seal field is damaged".into())
            }
            Body::Sealed(_) => self.sealed(e, window),
        }
    }

    fn sealed(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let Body::Sealed(s) = &e.body else { return };
        let Some(cur) = self.cur.as_ref() else {
            return self.begin(e, window);
        };
        if s.chain != cur.id {
            return self.other_chain(e, window);
        }
        let next = cur.next;
        if s.seq == next {
            return self.in_order(e, window);
        }
        if s.seq < next {
            let seq = s.seq;
            if let Some((tag, file, line)) = self.recent.get(&seq) {
                let detail = if *tag == s.tag {
                    format!("a copy of record {seq} ({})", self.at(*file, *line))
                } else {
                    format!(
                        "a second record {seq} ({} holds it), not sealed in the chain",
                        self.at(*file, *line)
                    )
                };
                return self.report(e.file, e.line, Kind::Inserted, detail);
            }
            if self.skipped.iter().any(|&(a, b)| (a..=b).contains(&seq)) {
                let detail = format!("record {seq} comes after record {}: moved", next - 1);
                return self.report(e.file, e.line, Kind::Reordered, detail);
            }
            let detail = format!("record {seq} out of sequence (the chain is at {next})");
            return self.report(e.file, e.line, Kind::Inserted, detail);
        }
        // Ahead of the chain: swapped with a later line, or records missing.
        if let Some((f, _)) = window.iter().find_map(|f| match &f.body {
            Body::Sealed(fs) if fs.chain == s.chain && fs.seq == next => Some((f, fs)),
            _ => None,
        }) {
            let detail = format!(
                "record {} comes before record {next} ({})",
                s.seq,
                self.at(f.file, f.line)
            );
            self.report(e.file, e.line, Kind::Reordered, detail);
            self.stash.insert(s.seq, e);
            return;
        }
        self.jump(e, window);
    }

    /// Records `cur.next .. e.seq` are missing.
    fn jump(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let (Body::Sealed(s), Some(cur)) = (&e.body, self.cur.as_mut()) else {
            return;
        };
        let (from, to) = (cur.next, s.seq - 1);
        if s.seq - cur.next > MAX_JUMP {
            let detail = format!(
                "record number {} is far beyond the chain ({from}): not a record of it",
                s.seq
            );
            return self.report(e.file, e.line, Kind::Forged, detail);
        }
        let range = if from == to {
            format!("record {from}")
        } else {
            format!("records {from}..{to}")
        };
        let (kind, detail) = if e.first_in_file && cur.file < e.file {
            let prev_file = self.names.get(cur.file).cloned().unwrap_or_default();
            (
                Kind::Gap,
                format!("{range} missing between {prev_file} and this file: a file not given, or removed"),
            )
        } else if s.event == Some(SealEvent::Restart) {
            (
                Kind::Gap,
                format!(
                    "{range} missing before this restart: sealed but never written (a crash), or removed"
                ),
            )
        } else {
            let n = to - from + 1;
            (
                Kind::Deleted,
                format!(
                    "{n} record{} deleted before this line ({range})",
                    if n == 1 { "" } else { "s" }
                ),
            )
        };
        cur.keys.advance(s.seq - from);
        cur.jumped = true;
        cur.next = s.seq;
        cur.prev = s.prev.filter(|(p, _)| p + 1 == s.seq).map(|(_, tag)| tag);
        self.skipped.push_back((from, to));
        if self.skipped.len() > RECENT {
            self.skipped.pop_front();
        }
        self.report(e.file, e.line, kind, detail);
        self.in_order(e, window);
    }

    /// The first sealed record.
    fn begin(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let Body::Sealed(s) = &e.body else { return };
        if s.seq > 0 {
            // The start record comes later: swapped with it.
            if let Some(f) = window
                .iter()
                .find(|f| matches!(&f.body, Body::Sealed(fs) if fs.chain == s.chain && fs.seq == 0))
            {
                let detail = format!(
                    "record {} comes before the chain's start record ({})",
                    s.seq,
                    self.at(f.file, f.line)
                );
                self.report(e.file, e.line, Kind::Reordered, detail);
                self.stash.insert(s.seq, e);
                return;
            }
        }
        let mut prev = None;
        if s.seq == 0 {
            prev = Some([0u8; seal::MAC_LEN]);
        } else {
            if s.seq > MAX_JUMP {
                let detail = format!("record number {} is not a plausible first record", s.seq);
                return self.report(e.file, e.line, Kind::Forged, detail);
            }
            if let Some((p, tag)) = s.prev {
                if p + 1 == s.seq {
                    prev = Some(tag);
                }
            }
        }
        let whole = s.seq == 0 && s.event == Some(SealEvent::Start);
        let clean_cut =
            e.first_in_file && matches!(s.event, Some(SealEvent::Continue | SealEvent::Restart));
        if !(whole || (clean_cut && self.partial)) {
            let detail = if s.seq == 0 {
                "the chain's first record is not its start record".to_string()
            } else {
                format!(
                    "the chain begins before this line: records 0..{} are not in the files given \
                     (give the older files too, or --partial)",
                    s.seq - 1
                )
            };
            self.report(e.file, e.line, Kind::Gap, detail);
        }
        self.chains_seen.insert(s.chain);
        self.out.chains += 1;
        self.cur = Some(Chain {
            id: s.chain,
            next: s.seq,
            keys: Keys::new(self.seed, &s.chain, s.seq, s.batch),
            open_batch: None,
            jumped: false,
            prev,
            file: e.file,
            line: e.line,
            event: None,
        });
        self.in_order(e, window);
    }

    fn other_chain(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let Body::Sealed(s) = &e.body else { return };
        if self.chains_seen.contains(&s.chain) {
            return self.report(
                e.file,
                e.line,
                Kind::Inserted,
                "a record of an earlier chain".into(),
            );
        }
        let zero = [0u8; seal::MAC_LEN];
        let genuine_start = s.seq == 0
            && s.event == Some(SealEvent::Start)
            && keys::genuine_start(self.seed, &s.chain, s.batch, &s.parts(), &s.tag);
        if !genuine_start {
            return self.report(
                e.file,
                e.line,
                Kind::Forged,
                "a record of another chain that this seed did not start".into(),
            );
        }
        if let Some(cur) = &self.cur {
            if cur.event != Some(SealEvent::End) {
                let detail = format!(
                    "a new chain starts here, and the last one ends at record {} ({}) without an \
                     end record: records after it may be missing (was the state file lost?)",
                    cur.next.saturating_sub(1),
                    self.at(cur.file, cur.line)
                );
                self.report(e.file, e.line, Kind::Gap, detail);
            }
        }
        self.chains_seen.insert(s.chain);
        self.out.chains += 1;
        self.cur = Some(Chain {
            id: s.chain,
            next: 0,
            keys: Keys::new(self.seed, &s.chain, 0, s.batch),
            open_batch: None,
            jumped: false,
            prev: Some(zero),
            file: e.file,
            line: e.line,
            event: None,
        });
        self.in_order(e, window);
    }

    /// `e` is the record the chain expects next.
    fn in_order(&mut self, e: Entry, window: &VecDeque<Entry>) {
        let Body::Sealed(s) = &e.body else { return };
        let Some(cur) = self.cur.as_mut() else { return };
        let mut next_prev = Some(s.tag);
        if let Some(prev) = cur.prev {
            let id = cur.id;
            if cur
                .keys
                .check(&id, s.seq, 0, s.batch, &prev, &s.parts(), &s.tag)
            {
                self.out.verified += 1;
            } else {
                let following = next_sealed(window, &cur.id);
                let (kind, detail) = match following {
                    Some((f, fs))
                        if fs.seq == s.seq
                            && cur.keys.check(
                                &id,
                                fs.seq,
                                0,
                                fs.batch,
                                &prev,
                                &fs.parts(),
                                &fs.tag,
                            ) =>
                    {
                        let detail = format!(
                            "a false record {} in front of the genuine one ({})",
                            s.seq,
                            self.at(f.file, f.line)
                        );
                        // The genuine record comes next: the chain stays where it is.
                        let (file, line) = (e.file, e.line);
                        return self.report(file, line, Kind::Inserted, detail);
                    }
                    Some((_, fs)) if fs.seq == s.seq + 1 => {
                        if cur
                            .keys
                            .check(&id, fs.seq, 1, fs.batch, &s.tag, &fs.parts(), &fs.tag)
                        {
                            (
                                Kind::Edited,
                                format!("record {} changed after it was sealed", s.seq),
                            )
                        } else {
                            next_prev = None;
                            (
                                Kind::Forged,
                                format!(
                                    "record {}'s seal was not made with the chain's key for it \
                                     (re-sealed with another key, or made up)",
                                    s.seq
                                ),
                            )
                        }
                    }
                    None => (
                        Kind::Edited,
                        format!(
                            "record {} does not match its seal: edited, or forged (re-sealed with \
                             another key); nothing follows it to tell which",
                            s.seq
                        ),
                    ),
                    Some(_) => (
                        Kind::Edited,
                        format!(
                            "record {} does not match its seal (edited or forged)",
                            s.seq
                        ),
                    ),
                };
                let (file, line) = (e.file, e.line);
                self.report(file, line, kind, detail);
            }
        }
        self.accept(e, next_prev, window);
    }

    fn accept(&mut self, e: Entry, next_prev: Option<Tag>, window: &VecDeque<Entry>) {
        let Body::Sealed(s) = &e.body else { return };
        let Some(cur) = self.cur.as_mut() else { return };
        let last_event = cur.event;
        cur.keys.advance(1);
        // A seal not known to be genuine says nothing about its batch.
        let torn = s
            .batch
            .filter(|_| next_prev.is_some())
            .and_then(|pos| enter_batch(cur, pos, s.seq, s.event));
        cur.next = s.seq + 1;
        cur.prev = next_prev;
        cur.file = e.file;
        cur.line = e.line;
        cur.event = s.event;
        if let Some(i) = s.interval {
            self.interval = i;
        }
        self.recent.insert(s.seq, (s.tag, e.file, e.line));
        self.recent_order.push_back(s.seq);
        if self.recent_order.len() > RECENT {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        self.last = Some((e.file, e.line));
        if let Some(detail) = torn {
            self.report(e.file, e.line, Kind::Forged, detail);
        }
        if let Some(t) = s.time {
            if let Some((max, file, line)) = self.max_time {
                let limit = self.interval + slack(self.interval);
                let quiet = t.duration_since(max).unwrap_or_default();
                if quiet > limit && last_event != Some(SealEvent::End) {
                    let detail = format!(
                        "no record for {} before this one (since {}, {}), with checkpoints every \
                         {}: sockwarden stopped without an end record, or records were removed",
                        humantime::format_duration(Duration::from_secs(quiet.as_secs())),
                        humantime::format_rfc3339_seconds(max),
                        self.at(file, line),
                        humantime::format_duration(self.interval),
                    );
                    self.report(e.file, e.line, Kind::Gap, detail);
                }
            }
            if self.max_time.is_none_or(|(max, _, _)| t > max) {
                self.max_time = Some((t, e.file, e.line));
            }
        }
        // Records held back because they came too early may follow now.
        let next = s.seq + 1;
        if let Some(held) = self.stash.remove(&next) {
            self.in_order(held, window);
        }
    }

    fn finish(&mut self, options: &Options) {
        let Some(cur) = self.cur.as_ref() else {
            let file = self.names.len().saturating_sub(1);
            return self.report(
                file,
                0,
                Kind::Gap,
                "no sealed record in the files given".into(),
            );
        };
        let (file, line) = self.last.unwrap_or((cur.file, cur.line));
        // Format 2: the files end inside a batch.
        if let Some((open, Some(first))) = cur.open_batch {
            let end = first.saturating_add(open.count);
            if cur.next < end {
                let detail = format!(
                    "the log ends inside batch {}, sealed with {} records from record {first}: \
                     records {}..{} are missing (its tail was cut)",
                    open.batch,
                    open.count,
                    cur.next,
                    end - 1
                );
                return self.report(file, line, Kind::Gap, detail);
            }
        }
        match cur.event {
            Some(SealEvent::End) => {}
            Some(SealEvent::Rotate) if options.partial => {}
            Some(SealEvent::Rotate) => self.report(
                file,
                line,
                Kind::Gap,
                "the chain continues after this rotation in a file not given (give the newer \
                 files too, or --partial)"
                    .into(),
            ),
            _ => {
                let Some((max, _, _)) = self.max_time else {
                    return;
                };
                let limit = self.interval + slack(self.interval);
                let age = options.now.duration_since(max).unwrap_or_default();
                if age > limit {
                    let detail = format!(
                        "the log ends here, {} before {} and without an end record, with \
                         checkpoints every {}: its tail was cut, or sockwarden stopped uncleanly \
                         or is holding records back",
                        humantime::format_duration(Duration::from_secs(age.as_secs())),
                        humantime::format_rfc3339_seconds(options.now),
                        humantime::format_duration(self.interval),
                    );
                    self.report(file, line, Kind::Gap, detail);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

/// Runs `audit verify`: 0 intact, 1 changed, 2 usage error.
pub fn run(
    seed: &std::path::Path,
    now: Option<&str>,
    partial: bool,
    files: &[PathBuf],
) -> ExitCode {
    let usage = |msg: String| {
        eprintln!("sockwarden: {msg}");
        ExitCode::from(2)
    };
    let seed = match seal::read_seed(seed) {
        Ok(seed) => seed,
        Err(e) => return usage(format!("seal seed {}: {e}", seed.display())),
    };
    let now = match now {
        None => SystemTime::now(),
        Some(text) => match humantime::parse_rfc3339_weak(text) {
            Ok(t) => t,
            Err(e) => {
                return usage(format!(
                    "--now {text:?}: not a time like 2026-12-03T15:00:00Z ({e})"
                ))
            }
        },
    };
    for f in files {
        match std::fs::metadata(f) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return usage(format!("{}: not a file", f.display())),
            Err(e) => return usage(format!("{}: {e}", f.display())),
        }
    }
    let options = Options { now, partial };
    let outcome = match verify_files(&seed, files, &options) {
        Ok(o) => o,
        Err(e) => return usage(e.to_string()),
    };
    for p in &outcome.problems {
        crate::cli::out(format_args!("{p}\n"));
    }
    if outcome.problems.is_empty() {
        crate::cli::out(format_args!(
            "ok: {} records in {} file(s) verified, {} chain(s), nothing changed\n",
            outcome.verified,
            files.len(),
            outcome.chains
        ));
        ExitCode::SUCCESS
    } else {
        let hint = if outcome.verified == 0 && outcome.records > 0 {
            " (no record verifies with this seed: is it the seed these files were sealed with?)"
        } else {
            ""
        };
        crate::cli::out(format_args!(
            "CHANGED: {} finding(s); {} of {} sealed records verified{hint}\n",
            outcome.problems.len(),
            outcome.verified,
            outcome.records
        ));
        ExitCode::from(1)
    }
}
