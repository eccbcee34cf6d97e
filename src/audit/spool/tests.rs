//! The spool's tests: order across segments, the bound, restarts, the cursor, punched ranges.

use super::*;
use crate::audit::page_cache_tests::{cached_bytes, on_disk_tempdir};

fn lines(from: usize, to: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..to {
        out.extend_from_slice(format!("{{\"n\":\"{i:05}\"}}\n").as_bytes());
    }
    out
}

/// Reads and confirms everything, returning the record numbers in order.
fn drain(spool: &Spool) -> Vec<usize> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    let mut pos = spool.cursor();
    while let Some((next, n)) = spool.read(pos, 100, &mut buf).unwrap() {
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            got.push(v["n"].as_str().unwrap().parse::<usize>().unwrap());
        }
        spool.confirm(next, n).unwrap();
        pos = next;
    }
    got
}

#[test]
fn records_come_out_in_order_across_segments_and_delivered_segments_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    // 12 bytes a line; segments of 8 KiB: several segments.
    for batch in 0..40 {
        let a = spool
            .append(&lines(batch * 50, batch * 50 + 50), 50)
            .unwrap();
        assert_eq!(
            a,
            Appended {
                written: 50,
                lost: 0
            }
        );
        if batch % 7 == 3 {
            // Interleave partial delivery with appends.
            let mut buf = Vec::new();
            let pos = spool.cursor();
            let (next, n) = spool.read(pos, 1000, &mut buf).unwrap().unwrap();
            assert!(buf.ends_with(b"\n"));
            spool.confirm(next, n).unwrap();
        }
    }
    let segments_before = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(segments_before > 3, "{segments_before}");
    let mut all = Vec::new();
    // What the interleaved confirms took is gone; the rest comes out in order.
    let got = drain(&spool);
    all.extend(got.iter().copied());
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "out of order");
    assert_eq!(*all.last().unwrap(), 1999);
    assert_eq!(spool.depth(), (0, 0));
    let spool_files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(SUFFIX)
        })
        .count();
    assert_eq!(spool_files, 1, "only the segment being written is left");
}

#[test]
fn delivered_records_are_punched_out_of_the_disk_and_the_page_cache() {
    use std::os::unix::fs::MetadataExt;
    let dir = on_disk_tempdir();
    let spool = Spool::open(dir.path(), 64 << 20).unwrap();
    let segment = segment_path(dir.path(), spool.cursor().seq);
    // 4 MiB in one segment (segments of 8 MiB here), delivered as the sender would.
    let per_line = lines(0, 1).len();
    let total = (4 << 20) / per_line;
    for batch in (0..total).step_by(10_000) {
        let end = (batch + 10_000).min(total);
        spool
            .append(&lines(batch, end), (end - batch) as u64)
            .unwrap();
    }
    let written = std::fs::metadata(&segment).unwrap().len();
    assert!(
        cached_bytes(&segment) > written / 2,
        "freshly written: cached"
    );
    assert_eq!(drain(&spool), (0..total).collect::<Vec<_>>());
    // Only the unit the cursor is in is left, on disk and in memory.
    let meta = std::fs::metadata(&segment).unwrap();
    assert_eq!(meta.len(), written, "the segment keeps its length");
    assert!(
        meta.blocks() * 512 <= PUNCH_UNIT,
        "{} bytes of {written} still allocated",
        meta.blocks() * 512
    );
    let cached = cached_bytes(&segment);
    assert!(
        cached <= PUNCH_UNIT,
        "{cached} of {written} bytes still cached"
    );
    // Appending and delivering go on as before.
    spool.append(&lines(total, total + 10), 10).unwrap();
    assert_eq!(drain(&spool), (total..total + 10).collect::<Vec<_>>());
}

/// Records `from..to` as lines of 15 bytes each (six digits).
fn lines6(from: usize, to: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..to {
        out.extend_from_slice(format!("{{\"n\":\"{i:06}\"}}\n").as_bytes());
    }
    out
}

/// A spool holding records 0..400,000 (15 bytes each, 6 MB in one segment) of which
/// 0..300,000 were delivered in one confirm, closed: its directory, segment and where the
/// punched range ends (4 MiB: mid-record).
fn punched_spool() -> (tempfile::TempDir, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 64 << 20).unwrap();
    let seq = spool.cursor().seq;
    spool.append(&lines6(0, 400_000), 400_000).unwrap();
    let mut buf = Vec::new();
    let (next, n) = spool
        .read(spool.cursor(), 300_000 * 15, &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(n, 300_000);
    spool.confirm(next, n).unwrap();
    drop(spool);
    let hole_end = (300_000 * 15 - 1) / PUNCH_UNIT * PUNCH_UNIT;
    assert_eq!(hole_end, 4 << 20);
    let segment = std::fs::read(segment_path(dir.path(), seq)).unwrap();
    let holes = segment.iter().take_while(|&&b| b == 0).count() as u64;
    assert_eq!(holes, hole_end, "whole units before the cursor punched");
    (dir, seq, hole_end)
}

#[test]
fn a_cursor_saved_before_a_crash_resumes_after_the_punched_records() {
    // The cursor on disk older than the last confirm (written without a sync, a host crash
    // can keep an older one): at the segment's start, inside the hole, at its last byte.
    let hole_end = 4 << 20;
    for stale in [0, 100, hole_end / 2, hole_end - 1] {
        let (dir, seq, _) = punched_spool();
        write_cursor(dir.path(), Pos { seq, offset: stale }).unwrap();
        let spool = Spool::open(dir.path(), 64 << 20).unwrap();
        let got = drain(&spool);
        // Resumed after the record the hole ends in (delivered): at or before the first
        // undelivered one (at-least-once), no NUL byte sent, nothing after it lost.
        let first = got[0];
        assert_eq!(first as u64, hole_end / 15 + 1, "cursor {stale}");
        assert!(first <= 300_000);
        assert_eq!(got, (first..400_000).collect::<Vec<_>>());
    }
    // A cursor past the hole is taken as it is.
    let (dir, seq, _) = punched_spool();
    write_cursor(
        dir.path(),
        Pos {
            seq,
            offset: 300_000 * 15,
        },
    )
    .unwrap();
    let spool = Spool::open(dir.path(), 64 << 20).unwrap();
    assert_eq!(drain(&spool), (300_000..400_000).collect::<Vec<_>>());
}

#[test]
fn the_bound_counts_undelivered_bytes_and_cuts_at_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    let per_line = lines(0, 1).len() as u64;
    let fit = MIN_BYTES / per_line;
    let total = fit as usize + 10;
    let a = spool.append(&lines(0, total), total as u64).unwrap();
    assert_eq!(
        a,
        Appended {
            written: fit,
            lost: 10
        }
    );
    assert_eq!(spool.depth(), (fit * per_line, fit));
    let a = spool.append(&lines(total, total + 1), 1).unwrap();
    assert_eq!(
        a,
        Appended {
            written: 0,
            lost: 1
        }
    );
    // Delivering frees room.
    let mut buf = Vec::new();
    let (next, n) = spool.read(spool.cursor(), 4096, &mut buf).unwrap().unwrap();
    spool.confirm(next, n).unwrap();
    let a = spool.append(&lines(total + 1, total + 2), 1).unwrap();
    assert_eq!(
        a,
        Appended {
            written: 1,
            lost: 0
        }
    );
    let got = drain(&spool);
    assert_eq!(got.first(), Some(&(n as usize)));
    assert_eq!(got.last(), Some(&(total + 1)));
    assert_eq!(got.len() as u64, fit - n + 1);
}

#[test]
fn a_reopened_spool_resumes_at_the_cursor_and_cuts_a_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
        spool.append(&lines(0, 100), 100).unwrap();
        let mut buf = Vec::new();
        let (next, n) = spool.read(spool.cursor(), 140, &mut buf).unwrap().unwrap();
        assert_eq!(n, 10);
        spool.confirm(next, n).unwrap();
        // A second process cannot use it meanwhile.
        let err = Spool::open(dir.path(), MIN_BYTES).unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }
    // A crash left half a record at the end of the newest segment.
    let newest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
        .max()
        .unwrap();
    let mut f = OpenOptions::new().append(true).open(&newest).unwrap();
    f.write_all(b"{\"n\":0010").unwrap();
    drop(f);
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    assert_eq!(spool.depth().1, 90);
    spool.append(&lines(100, 105), 5).unwrap();
    assert_eq!(drain(&spool), (10..105).collect::<Vec<_>>());
    drop(spool);
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    assert_eq!(spool.depth(), (0, 0));
    assert!(spool
        .read(spool.cursor(), 100, &mut Vec::new())
        .unwrap()
        .is_none());
}

#[test]
fn the_cursor_is_overwritten_in_place_and_read_back_after_a_restart() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor");
    {
        let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
        let inode = std::fs::metadata(&cursor).unwrap().ino();
        spool.append(&lines(0, 50), 50).unwrap();
        let mut pos = spool.cursor();
        let mut buf = Vec::new();
        for _ in 0..3 {
            let (next, n) = spool.read(pos, 140, &mut buf).unwrap().unwrap();
            spool.confirm(next, n).unwrap();
            pos = next;
            let meta = std::fs::metadata(&cursor).unwrap();
            assert_eq!(meta.ino(), inode, "replaced instead of overwritten");
            assert_eq!(meta.len(), 38);
            assert_eq!(read_cursor(dir.path()), Some(next));
        }
    }
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    assert_eq!(spool.depth().1, 20);
    assert_eq!(drain(&spool), (30..50).collect::<Vec<_>>());
    // A cursor file damaged by hand: delivery starts again at the oldest segment.
    drop(spool);
    std::fs::write(&cursor, "garbage\n").unwrap();
    assert!(Spool::open(dir.path(), MIN_BYTES).is_ok());
}

#[test]
fn wait_returns_when_a_record_arrives_or_stop_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), MIN_BYTES).unwrap();
    let pos = spool.cursor();
    assert!(!spool.wait(pos, Duration::from_millis(10)));
    let other = spool.clone();
    let t = std::thread::spawn(move || other.append(&lines(0, 1), 1).unwrap());
    assert!(!spool.wait(pos, Duration::from_secs(10)));
    t.join().unwrap();
    assert!(spool.read(pos, 100, &mut Vec::new()).unwrap().is_some());
    spool.stop();
    assert!(spool.wait(pos, Duration::from_secs(10)));
    assert!(spool.pause(Duration::from_secs(10)));
}
