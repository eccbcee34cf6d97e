//! The remote sink's bounded on-disk spool: every record is appended here first (by the sink's
//! writer thread) and the sender thread delivers from here, in order, removing what the
//! collector got. So a collector that is down, slow or restarting costs no record until the
//! spool is full, and a sockwarden restart finds what was not delivered and sends it first.
//!
//! On disk, in `spool_dir` (created mode 0700 with any missing parents; files 0600): segment files `<seq>.spool` (16 hex digits)
//! holding JSON lines, appended to in order; `cursor` (`<seq> <offset>`), the first byte not yet
//! delivered, overwritten in place as delivery advances; `lock`, held (flock) while a
//! sockwarden uses the directory, so two cannot share it. A segment wholly delivered is removed;
//! a new one starts when the one being written reaches an eighth of the spool's size. A line cut
//! short by a crash is cut off at start (its record was never acknowledged to anyone).
//!
//! The bound counts undelivered bytes: a batch that does not fit is written as far as whole
//! records fit and the rest reported lost (the caller fails closed or counts them). What is
//! delivered of the segment the cursor is in is punched out of it (`fallocate` with
//! `FALLOC_FL_PUNCH_HOLE`, in aligned 2 MiB units) at each confirm: its pages leave the page
//! cache at once, unwritten (a spool delivered within seconds never costs the disk a write) and
//! the disk space comes back; the directory holds at most `max_bytes` plus 2 MiB. The cursor
//! file is written without a sync, so after a host crash it may point into a punched range:
//! the spool then resumes right after the record the range ends in (delivered, like everything
//! before it).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Smallest spool accepted.
pub const MIN_BYTES: u64 = 64 * 1024;
/// The default bound: 256 MiB.
pub const DEFAULT_BYTES: u64 = 256 * 1024 * 1024;

const FILE_MODE: u32 = 0o600;
const SUFFIX: &str = ".spool";

/// A place in the spool: segment and byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// The segment's sequence number.
    pub seq: u64,
    /// Bytes into it.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u64,
    len: u64,
}

#[derive(Debug)]
struct State {
    /// In order; the last is the one being written.
    segments: VecDeque<Segment>,
    /// The first undelivered byte.
    cursor: Pos,
    /// Bytes before this are punched out of their segment (see the module documentation).
    punched: Pos,
    /// Undelivered bytes and records.
    depth_bytes: u64,
    depth_records: u64,
    stop: bool,
}

/// What [`Spool::append`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Records spooled.
    pub written: u64,
    /// Records that did not fit.
    pub lost: u64,
}

/// The spool: shared by the sink's writer (appends) and the sender (reads, confirms).
#[derive(Debug, Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    state: Mutex<State>,
    wake: Condvar,
    /// The segment being written (the writer thread's).
    active: Mutex<File>,
    /// The `cursor` file, overwritten in place (`None` after a failed write: replaced then).
    cursor_file: Mutex<Option<File>>,
    /// Held while this process uses the directory.
    _lock: nix::fcntl::Flock<File>,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}{SUFFIX}"))
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

impl Spool {
    /// Opens (creating it and missing parents, mode 0700) the spool in `dir`, finds what a previous
    /// run left undelivered and starts a new segment after it.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(dir.join("lock"))?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "spool {} is in use by another process ({errno})",
                        dir.display()
                    ),
                )
            })?;
        let mut seqs: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(hex) = name.strip_suffix(SUFFIX) {
                if let Ok(seq) = u64::from_str_radix(hex, 16) {
                    seqs.push(seq);
                }
            }
        }
        seqs.sort_unstable();
        let mut cursor = read_cursor(dir).unwrap_or(Pos {
            seq: seqs.first().copied().unwrap_or(0),
            offset: 0,
        });
        let mut segments = VecDeque::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            if seq < cursor.seq {
                std::fs::remove_file(&path)?;
                continue;
            }
            let mut len = std::fs::metadata(&path)?.len();
            if i + 1 == seqs.len() {
                len = cut_torn_tail(&path, len)?;
            }
            segments.push_back(Segment { seq, len });
        }
        match segments.front() {
            Some(first) if first.seq > cursor.seq => {
                cursor = Pos {
                    seq: first.seq,
                    offset: 0,
                }
            }
            Some(first) if first.seq == cursor.seq => {
                cursor.offset = cursor.offset.min(first.len);
                cursor.offset =
                    past_punched(&segment_path(dir, first.seq), cursor.offset, first.len)?;
            }
            _ => {}
        }
        let mut depth_bytes = 0;
        let mut depth_records = 0;
        for seg in &segments {
            let from = if seg.seq == cursor.seq {
                cursor.offset
            } else {
                0
            };
            depth_bytes += seg.len - from;
            depth_records += count_lines(&segment_path(dir, seg.seq), from, seg.len)?;
        }
        let next = seqs.last().map_or(1, |s| s + 1).max(cursor.seq + 1);
        let active = open_append(&segment_path(dir, next))?;
        segments.push_back(Segment { seq: next, len: 0 });
        if depth_bytes == 0 {
            cursor = Pos {
                seq: next,
                offset: 0,
            };
        }
        let spool = Spool {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                max_bytes,
                segment_bytes: (max_bytes / 8).clamp(4096, 64 * 1024 * 1024),
                state: Mutex::new(State {
                    segments,
                    cursor,
                    punched: Pos {
                        seq: cursor.seq,
                        offset: 0,
                    },
                    depth_bytes,
                    depth_records,
                    stop: false,
                }),
                wake: Condvar::new(),
                active: Mutex::new(active),
                cursor_file: Mutex::new(None),
                _lock: lock,
            }),
        };
        {
            let mut state = spool.lock();
            spool.drop_delivered(&mut state)?;
            spool.save_cursor(state.cursor)?;
        }
        Ok(spool)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Its bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.shared.max_bytes
    }

    /// Undelivered bytes and records.
    pub fn depth(&self) -> (u64, u64) {
        let state = self.lock();
        (state.depth_bytes, state.depth_records)
    }

    /// The first undelivered byte.
    pub fn cursor(&self) -> Pos {
        self.lock().cursor
    }

    /// Appends `lines` (whole JSON lines, `records` of them): as many whole lines as fit.
    /// Called by one thread only (the sink's writer).
    pub fn append(&self, lines: &[u8], records: u64) -> io::Result<Appended> {
        if lines.is_empty() {
            return Ok(Appended {
                written: 0,
                lost: 0,
            });
        }
        let (room, roll, mut before) = {
            let state = self.lock();
            let room = self.shared.max_bytes.saturating_sub(state.depth_bytes);
            let active_len = state.segments.back().map_or(0, |s| s.len);
            (room, active_len >= self.shared.segment_bytes, active_len)
        };
        let (take, written) = if (lines.len() as u64) <= room {
            (lines.len(), records)
        } else {
            // Whole lines that fit.
            let limit = usize::try_from(room).unwrap_or(usize::MAX).min(lines.len());
            match lines[..limit].iter().rposition(|&b| b == b'\n') {
                Some(end) => {
                    let take = end + 1;
                    (
                        take,
                        lines[..take].iter().filter(|&&b| b == b'\n').count() as u64,
                    )
                }
                None => (0, 0),
            }
        };
        let lost = records.saturating_sub(written);
        if take == 0 {
            return Ok(Appended { written, lost });
        }
        let mut active = self.shared.active.lock().unwrap_or_else(|p| p.into_inner());
        if roll {
            let next = self.lock().segments.back().map_or(1, |s| s.seq + 1);
            *active = open_append(&segment_path(&self.shared.dir, next))?;
            self.lock()
                .segments
                .push_back(Segment { seq: next, len: 0 });
            before = 0;
        }
        if let Err(e) = active.write_all(&lines[..take]) {
            // Leave no partial line for the sender.
            let _ = active.set_len(before);
            return Err(e);
        }
        drop(active);
        let mut state = self.lock();
        if let Some(seg) = state.segments.back_mut() {
            seg.len += take as u64;
        }
        state.depth_bytes += take as u64;
        state.depth_records += written;
        drop(state);
        self.shared.wake.notify_all();
        Ok(Appended { written, lost })
    }

    /// Reads whole lines from `from` on, at least one and about `max` bytes, into `out`
    /// (cleared first): the position after them and how many records they are, or `None` when
    /// nothing is waiting there.
    pub fn read(&self, from: Pos, max: usize, out: &mut Vec<u8>) -> io::Result<Option<(Pos, u64)>> {
        out.clear();
        let (seq, offset, len) = {
            let state = self.lock();
            let mut found = None;
            for seg in &state.segments {
                if seg.seq < from.seq {
                    continue;
                }
                let offset = if seg.seq == from.seq { from.offset } else { 0 };
                if seg.len > offset {
                    found = Some((seg.seq, offset, seg.len));
                    break;
                }
            }
            match found {
                Some(f) => f,
                None => return Ok(None),
            }
        };
        let mut file = File::open(segment_path(&self.shared.dir, seq))?;
        file.seek(SeekFrom::Start(offset))?;
        let available = len - offset;
        let mut want = (max as u64).min(available);
        loop {
            out.clear();
            (&mut file).take(want).read_to_end(out)?;
            file.seek(SeekFrom::Start(offset))?;
            if let Some(end) = memchr::memrchr(b'\n', out) {
                out.truncate(end + 1);
                break;
            }
            if want >= available || (out.len() as u64) < want {
                // Only the writer's lines are ever in a segment, each with its newline.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("spool segment {seq:016x}: a record without its newline"),
                ));
            }
            want = (want * 2).min(available);
        }
        let records = memchr::memchr_iter(b'\n', out).count() as u64;
        Ok(Some((
            Pos {
                seq,
                offset: offset + out.len() as u64,
            },
            records,
        )))
    }

    /// Marks everything before `to` (`records` records since the last confirm) delivered:
    /// removes wholly delivered segments, saves the cursor and punches out delivered pages.
    pub fn confirm(&self, to: Pos, records: u64) -> io::Result<()> {
        let mut state = self.lock();
        if to <= state.cursor {
            return Ok(());
        }
        let mut delivered = 0;
        for seg in &state.segments {
            if seg.seq < state.cursor.seq || seg.seq > to.seq {
                continue;
            }
            let start = if seg.seq == state.cursor.seq {
                state.cursor.offset
            } else {
                0
            };
            let end = if seg.seq == to.seq {
                to.offset
            } else {
                seg.len
            };
            delivered += end.saturating_sub(start);
        }
        state.cursor = to;
        state.depth_bytes = state.depth_bytes.saturating_sub(delivered);
        state.depth_records = state.depth_records.saturating_sub(records);
        self.drop_delivered(&mut state)?;
        self.save_cursor(state.cursor)?;
        self.punch_delivered(&mut state);
        Ok(())
    }

    /// Punches what is delivered of the cursor's segment out of it, in whole [`PUNCH_UNIT`]s
    /// (see the module documentation). Best effort: a file system without hole punching keeps the bytes
    /// until the segment is removed, as before.
    fn punch_delivered(&self, state: &mut State) {
        use std::os::fd::AsRawFd;
        let cursor = state.cursor;
        // Whole units strictly before the cursor: the byte a hole ends at is then always in a
        // delivered record, so a stale cursor in the hole resumes right after that record
        // (see `past_punched`).
        let Some(last) = cursor.offset.checked_sub(1) else {
            return;
        };
        let end = last - last % PUNCH_UNIT;
        let from = if state.punched.seq == cursor.seq {
            state.punched.offset
        } else {
            0
        };
        if end <= from {
            return;
        }
        let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(end - from)) else {
            return;
        };
        let punched = OpenOptions::new()
            .write(true)
            .open(segment_path(&self.shared.dir, cursor.seq))
            .map_err(|e| e.to_string())
            .and_then(|file| {
                use nix::fcntl::FallocateFlags as F;
                nix::fcntl::fallocate(
                    file.as_raw_fd(),
                    F::FALLOC_FL_PUNCH_HOLE | F::FALLOC_FL_KEEP_SIZE,
                    offset,
                    len,
                )
                .map_err(|e| e.to_string())
            });
        match punched {
            Ok(()) => {
                state.punched = Pos {
                    seq: cursor.seq,
                    offset: end,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "audit spool: cannot punch out delivered records")
            }
        }
    }

    /// Saves the cursor: overwritten in place (one `pwrite` of a fixed-width line, so the
    /// file never changes length); the first time, and after a failed write, the file is
    /// replaced by rename instead. Up to ten times a second while records flow: a rename each
    /// time made the file system commit its journal each time.
    fn save_cursor(&self, pos: Pos) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut file = self
            .shared
            .cursor_file
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(f) = file.as_ref() {
            if f.write_all_at(cursor_line(pos).as_bytes(), 0).is_ok() {
                return Ok(());
            }
            *file = None;
        }
        write_cursor(&self.shared.dir, pos)?;
        *file = Some(
            OpenOptions::new()
                .write(true)
                .open(self.shared.dir.join("cursor"))?,
        );
        Ok(())
    }

    /// Removes the segments before the cursor's, and moves the cursor past the end of a
    /// finished segment.
    fn drop_delivered(&self, state: &mut State) -> io::Result<()> {
        while state.segments.len() > 1 {
            let Some(first) = state.segments.front().copied() else {
                break;
            };
            let done = first.seq < state.cursor.seq
                || (first.seq == state.cursor.seq && state.cursor.offset >= first.len);
            if !done {
                break;
            }
            state.segments.pop_front();
            match std::fs::remove_file(segment_path(&self.shared.dir, first.seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(next) = state.segments.front() {
                if state.cursor.seq <= first.seq {
                    state.cursor = Pos {
                        seq: next.seq,
                        offset: 0,
                    };
                }
            }
        }
        Ok(())
    }

    /// Waits until something after `from` is waiting, `stop` was asked, or `timeout` passed.
    /// Returns whether to stop.
    pub fn wait(&self, from: Pos, timeout: Duration) -> bool {
        let state = self.lock();
        let has_data = |s: &State| {
            s.segments.iter().any(|seg| {
                seg.seq > from.seq && seg.len > 0 || seg.seq == from.seq && seg.len > from.offset
            })
        };
        if state.stop || has_data(&state) {
            return state.stop;
        }
        let (state, _) = self
            .shared
            .wake
            .wait_timeout_while(state, timeout, |s| !s.stop && !has_data(s))
            .unwrap_or_else(|p| p.into_inner());
        state.stop
    }

    /// Sleeps up to `timeout` unless stop is asked; returns whether to stop.
    pub fn pause(&self, timeout: Duration) -> bool {
        let state = self.lock();
        if state.stop {
            return true;
        }
        let (state, _) = self
            .shared
            .wake
            .wait_timeout_while(state, timeout, |s| !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        state.stop
    }

    /// Asks the sender to stop.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.shared.wake.notify_all();
    }

    /// Whether stop was asked.
    pub fn stopping(&self) -> bool {
        self.lock().stop
    }
}

fn read_cursor(dir: &Path) -> Option<Pos> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (seq, offset) = text.trim().split_once(' ')?;
    Some(Pos {
        seq: u64::from_str_radix(seq, 16).ok()?,
        offset: offset.parse().ok()?,
    })
}

/// The cursor file's one line, always 38 bytes: segment (16 hex digits) and offset (20
/// decimal digits, zero-padded).
fn cursor_line(pos: Pos) -> String {
    format!("{:016x} {:020}\n", pos.seq, pos.offset)
}

fn write_cursor(dir: &Path, pos: Pos) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    file.write_all(cursor_line(pos).as_bytes())?;
    drop(file);
    std::fs::rename(tmp, dir.join("cursor"))
}

/// Cuts a last line left without its newline (a write cut short by a crash); the new length.
fn cut_torn_tail(path: &Path, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut keep = len;
    let mut buf = vec![0u8; 64 * 1024];
    while keep > 0 {
        let n = buf.len().min(usize::try_from(keep).unwrap_or(usize::MAX));
        let start = keep - n as u64;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        keep = start;
    }
    if keep != len {
        tracing::warn!(
            segment = %path.display(),
            bytes = len - keep,
            "audit spool: cut off a record left incomplete by a crash"
        );
        file.set_len(keep)?;
    }
    Ok(keep)
}

/// Holes are punched in whole, aligned units of this many bytes: the page cache holds a file in
/// folios of up to 2 MiB (large folios), and a hole that covers only part of one zeroes it
/// but leaves it in memory (measured: single-page holes left 83 % of a delivered segment
/// cached).
const PUNCH_UNIT: u64 = 2 << 20;

/// Where delivery resumes in segment `path` (`len` bytes) for a cursor at `at`: `at` itself,
/// unless it lies in a punched range (NUL bytes, which no JSON line holds), which only a cursor
/// saved before a crash can: then right after the record the range ends in. That record was
/// delivered: a hole ends strictly before the cursor it was punched for, which stands at the
/// end of a record.
fn past_punched(path: &Path, at: u64, len: u64) -> io::Result<u64> {
    use std::io::BufRead;
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(at))?;
    let mut reader = io::BufReader::with_capacity(64 * 1024, file.take(len.saturating_sub(at)));
    let mut pos = at;
    // The hole's NUL bytes, if the cursor is in one.
    loop {
        let buf = reader.fill_buf()?;
        let (zeros, available) = (buf.iter().take_while(|&&b| b == 0).count(), buf.len());
        if pos == at && zeros == 0 {
            return Ok(at);
        }
        reader.consume(zeros);
        pos += zeros as u64;
        if available == 0 || zeros < available {
            break;
        }
    }
    // Then the rest of the record the hole ends in.
    pos += reader.read_until(b'\n', &mut Vec::new())? as u64;
    tracing::warn!(
        cursor = at,
        resume = pos,
        "audit spool: the saved cursor lies in delivered, punched-out records (a crash?); resuming after them"
    );
    Ok(pos)
}

fn count_lines(path: &Path, from: u64, to: u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut left = to - from;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = file.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        left -= got as u64;
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
