//! Format 2 (a key per batch): what only batches add — a batch cut short and continued with
//! the next batch's key, a log ending inside a batch — and that format-1 chains still verify,
//! continue, and are checked as before.

use super::*;

/// Whoever takes the host holds the next batch's key (the state file): cutting the tail off
/// the last batch and sealing records of their own as the next batch, chained to the last
/// record kept, is named, whatever is cut, and however many records are added.
#[test]
fn a_batch_cut_short_and_continued_with_the_next_key_is_named() {
    let dir = new_dir();
    // Batches: [start + 4], [5], [5]: the last batch is records 10..14.
    let lines = seal_run(dir.path(), &[4, 5, 5], None);
    let state = ChainState::load(&settings(dir.path()).state)
        .unwrap()
        .unwrap();
    assert_eq!(state.batch, 3);
    let parts = |l: &[u8]| {
        let p = split_sealed(l.strip_suffix(b"\n").unwrap()).unwrap();
        (p.seq, p.batch.unwrap(), p.tag, p.chain)
    };
    assert_eq!(parts(&lines[10]).1, BatchPos { batch: 2, count: 5 });
    for keep in 10..14 {
        for added in 1..=3u64 {
            let mut t = lines[..keep].to_vec();
            let (seq, _, tag, chain) = parts(&t[keep - 1]);
            let mut prev = tag;
            for k in 0..added {
                let forged_line = request_line(900 + k as usize);
                let prefix = &forged_line[..forged_line.len() - 2];
                let pos = BatchPos {
                    batch: state.batch,
                    count: added,
                };
                let line = seal_as(&state.key, &chain, seq + 1 + k, pos, &prev, prefix);
                prev = parts(&line).2;
                t.push(line);
            }
            let found = check(dir.path(), &t);
            assert!(
                found.contains(&(Kind::Forged, keep as u64 + 1)),
                "cut at {keep}, {added} added: {found:?}"
            );
        }
    }
    // A batch left whole and continued the same way is what a later write looks like:
    // records after the host was taken are not protected (the README says so).
}

/// A torn last write (the file ends inside a batch) is a gap, also without a restart after it.
#[test]
fn a_log_ending_inside_a_batch_is_a_gap() {
    let dir = new_dir();
    let lines = seal_run(dir.path(), &[4, 5], None);
    for cut in 6..lines.len() {
        let found = check(dir.path(), &lines[..cut]);
        assert_eq!(found, vec![(Kind::Gap, cut as u64)], "cut at {cut}");
    }
    assert_eq!(check(dir.path(), &lines), vec![]);
}

/// Chains begun in format 1 keep verifying, keep their format across a restart, and their
/// tampering is named as before; a record in the other format is not the chain's.
#[test]
fn format_one_chains_still_verify_and_continue() {
    let dir = new_dir();
    let seed = read_seed(&dir.path().join("seed")).unwrap();
    let v1 = ChainState::new_in(&seed, Format::V1).unwrap();
    v1.store(&settings(dir.path()).state).unwrap();
    // From its state file: a restart record first (seq 0 here), then format-1 records.
    let mut sealer = Sealer::open(
        &settings(dir.path()),
        &dir.path().join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    sealer.header = Some(SealEvent::Start);
    let mut lines = Vec::new();
    let mut sealed = Batch::default();
    for n in [3usize, 2] {
        let batch: Vec<Vec<u8>> = (0..n).map(request_line).collect();
        sealer
            .seal_batch(batch_of(&batch).lines(), None, &mut sealed)
            .unwrap();
        lines.extend(sealed.lines().map(<[u8]>::to_vec));
    }
    drop(sealer);
    lines.extend(seal_run(dir.path(), &[2], Some(SealEvent::End)));
    assert!(lines.iter().all(|l| {
        let p = split_sealed(l.strip_suffix(b"\n").unwrap()).unwrap();
        p.batch.is_none()
    }));
    let state = ChainState::load(&settings(dir.path()).state)
        .unwrap()
        .unwrap();
    assert_eq!(state.format, Format::V1);
    assert_eq!(check(dir.path(), &lines), vec![]);
    // An edited byte, and a record re-sealed in format 2 with the key on disk.
    let mut t = lines.clone();
    t[2] = String::from_utf8(t[2].clone())
        .unwrap()
        .replace("\"status\":200", "\"status\":201")
        .into_bytes();
    assert_eq!(check(dir.path(), &t), vec![(Kind::Edited, 3)]);
    let mut t = lines.clone();
    let p = split_sealed(t[2].strip_suffix(b"\n").unwrap()).unwrap();
    let prev = split_sealed(t[1].strip_suffix(b"\n").unwrap()).unwrap().tag;
    let pos = BatchPos { batch: 0, count: 1 };
    t[2] = seal_as(&state.key, &p.chain, p.seq, pos, &prev, p.prefix);
    assert_eq!(check(dir.path(), &t)[0], (Kind::Forged, 3));
}

/// The exact bytes of format-2 sealed lines, pinned as format 1's are.
#[test]
fn format_two_sealed_lines_are_byte_identical_to_the_pinned_ones() {
    let (sealed, sealer) = seal_pinned(Format::V2);
    assert_pinned(
        &sealed,
        &[
            "2:0123456789abcdef:41:6:4:3756884607c94aa37d3ddb25b87d79af",
            "2:0123456789abcdef:42:6:4:1c1ed7adbcf33e537ed53e1f1349d952",
            "2:0123456789abcdef:43:6:4:ed6d0454f1f663e0c0ecdb5905dc9953",
            "2:0123456789abcdef:44:6:4:ccfe0d2577b35f4065ffc59d2d23d12d",
        ],
    );
    assert_eq!((sealer.chain.seq, sealer.chain.batch), (45, 7));
}

/// Batch numbers and counts are read from lines an intruder writes: extreme ones are findings,
/// never a panic or an endless key evolution.
#[test]
fn extreme_batch_numbers_and_counts_are_findings() {
    let dir = new_dir();
    let lines = seal_run(dir.path(), &[3, 3], Some(SealEvent::End));
    let p = split_sealed(lines[4].strip_suffix(b"\n").unwrap()).unwrap();
    let prev = split_sealed(lines[3].strip_suffix(b"\n").unwrap())
        .unwrap()
        .tag;
    for (batch, count) in [
        (u64::MAX, u64::MAX),
        (u64::MAX, 1),
        (1, u64::MAX),
        (10_000_000_000, 2),
    ] {
        let pos = BatchPos { batch, count };
        // In place of a record, and after the last one (as the next record, chained to it).
        let last = split_sealed(lines[lines.len() - 1].strip_suffix(b"\n").unwrap()).unwrap();
        for at in [4usize, lines.len()] {
            let mut t = lines.clone();
            if at == lines.len() {
                let seq = last.seq + 1;
                t.push(seal_as(
                    &[3u8; KEY_LEN],
                    &p.chain,
                    seq,
                    pos,
                    &last.tag,
                    p.prefix,
                ));
            } else {
                t[at] = seal_as(&[3u8; KEY_LEN], &p.chain, p.seq, pos, &prev, p.prefix);
            }
            let found = check(dir.path(), &t);
            assert!(!found.is_empty(), "{batch} {count} at {at}");
        }
    }
}
