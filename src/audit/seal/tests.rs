//! Key evolution, MAC chaining, the state file, the sealer, and the verifier against each kind
//! of tampering.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::super::sink::Batch;
use super::super::verify::{verify_files, Kind, Options, Outcome};
use super::state::STATE_LEN;
use super::*;

fn settings(dir: &Path) -> SealSettings {
    SealSettings {
        seed: dir.join("seed"),
        state: dir.join("audit.log.seal-state"),
        checkpoint: Duration::from_secs(60),
    }
}

fn request_line(i: usize) -> Vec<u8> {
    let time = humantime::format_rfc3339_micros(SystemTime::now());
    format!(
        "{{\"time\":\"{time}\",\"id\":\"r-{i}\",\"event\":\"request\",\"client\":\"ci\",\"method\":\"GET\",\"path\":\"/containers/json\",\"operation\":\"container.list\",\"decision\":\"allow\",\"status\":200}}\n"
    )
    .into_bytes()
}

fn batch_of(lines: &[Vec<u8>]) -> Batch {
    let mut b = Batch::default();
    for l in lines {
        b.bytes.extend_from_slice(l);
        b.ends.push(b.bytes.len());
    }
    b
}

/// Seals `batches` of `n` request records each (a new sealer: start or restart), ending
/// with `trailer`; returns the sealed lines (with newlines).
fn seal_run(dir: &Path, batches: &[usize], trailer: Option<SealEvent>) -> Vec<Vec<u8>> {
    let mut sealer = Sealer::open(
        &settings(dir),
        &dir.join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut sealed = Batch::default();
    let mut k = 0;
    for (i, &n) in batches.iter().enumerate() {
        let lines: Vec<Vec<u8>> = (0..n).map(|j| request_line(k + j)).collect();
        k += n;
        let last = i + 1 == batches.len();
        sealer
            .seal_batch(
                batch_of(&lines).lines(),
                if last { trailer } else { None },
                &mut sealed,
            )
            .unwrap();
        out.extend(sealed.lines().map(<[u8]>::to_vec));
    }
    out
}

fn new_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_new_seed(&dir.path().join("seed")).unwrap();
    dir
}

fn write_log(path: &Path, lines: &[Vec<u8>]) -> PathBuf {
    std::fs::write(path, lines.concat()).unwrap();
    path.to_path_buf()
}

fn verify(dir: &Path, files: &[PathBuf]) -> Outcome {
    verify_at(dir, files, SystemTime::now())
}

fn verify_at(dir: &Path, files: &[PathBuf], now: SystemTime) -> Outcome {
    let seed = read_seed(&dir.join("seed")).unwrap();
    verify_files(
        &seed,
        files,
        &Options {
            now,
            partial: false,
        },
    )
    .unwrap()
}

/// The one finding (kind, line) the outcome must hold, or all findings in the message.
fn kinds(o: &Outcome) -> Vec<(Kind, u64)> {
    o.problems.iter().map(|p| (p.kind, p.line)).collect()
}

fn assert_clean(o: &Outcome) {
    assert!(
        o.problems.is_empty(),
        "unexpected findings: {:#?}",
        o.problems
    );
    assert!(o.verified > 0);
}

#[test]
fn keys_evolve_one_way_and_differ_per_chain() {
    let seed = [7u8; KEY_LEN];
    let k0 = chain_key(&seed, &[1; CHAIN_LEN]);
    assert_ne!(*k0, *chain_key(&seed, &[2; CHAIN_LEN]));
    assert_ne!(*k0, *chain_key(&[8u8; KEY_LEN], &[1; CHAIN_LEN]));
    let mut k = k0.clone();
    let mut seen = vec![*k0];
    for _ in 0..100 {
        evolve(&mut k);
        assert!(!seen.contains(&*k), "a key repeated");
        seen.push(*k);
    }
    // Deterministic: the verifier recomputes the same sequence.
    let mut again = chain_key(&seed, &[1; CHAIN_LEN]);
    for _ in 0..100 {
        evolve(&mut again);
    }
    assert_eq!(*again, *k);
    // Domain-separated: not plain SHA-256 of the key.
    let mut plain = *k0;
    plain.copy_from_slice(&Sha256::digest(&k0[..]));
    let mut k1 = k0.clone();
    evolve(&mut k1);
    assert_ne!(plain, *k1);
}

#[test]
fn mac_covers_key_chain_seq_prev_and_bytes() {
    let key = [3u8; KEY_LEN];
    let chain = [9u8; CHAIN_LEN];
    let prev = [1u8; MAC_LEN];
    let base = record_mac(&key, &chain, 5, &prev, &[b"{\"a\":1", b"}"]);
    // Split across parts or not: the same bytes, the same MAC.
    assert_eq!(base, record_mac(&key, &chain, 5, &prev, &[b"{\"a\":1}"]));
    assert!(check_mac(&key, &chain, 5, &prev, &[b"{\"a\":1}"], &base));
    let mut other_key = key;
    other_key[0] ^= 1;
    for changed in [
        record_mac(&other_key, &chain, 5, &prev, &[b"{\"a\":1}"]),
        record_mac(&key, &[8u8; CHAIN_LEN], 5, &prev, &[b"{\"a\":1}"]),
        record_mac(&key, &chain, 6, &prev, &[b"{\"a\":1}"]),
        record_mac(&key, &chain, 5, &[2u8; MAC_LEN], &[b"{\"a\":1}"]),
        record_mac(&key, &chain, 5, &prev, &[b"{\"a\":2}"]),
    ] {
        assert_ne!(base, changed);
    }
}

#[test]
fn sealed_lines_are_json_records_readers_accept() {
    let dir = new_dir();
    let lines = seal_run(dir.path(), &[3], Some(SealEvent::End));
    assert_eq!(lines.len(), 5, "start + 3 + end");
    for (i, line) in lines.iter().enumerate() {
        let text = std::str::from_utf8(line).unwrap().trim_end();
        let record = crate::audit::report::parse_record(text).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let seal = value["seal"].as_str().unwrap();
        // Format 2: one batch of five records (start, three requests, end).
        let mac = &seal[seal.len() - 2 * MAC_LEN..];
        assert!(seal.starts_with("2:"), "{seal}");
        assert!(seal.ends_with(&format!(":{i}:0:5:{mac}")), "{seal}");
        let parts = split_sealed(text.as_bytes()).unwrap();
        assert_eq!(parts.seq, i as u64);
        assert_eq!(parts.batch, Some(BatchPos { batch: 0, count: 5 }));
        // The unsealed line is the object without its seal field.
        let mut unsealed: serde_json::Value =
            serde_json::from_slice(&[parts.prefix, b"}"].concat()).unwrap();
        unsealed["seal"] = serde_json::Value::String(seal.into());
        assert_eq!(unsealed, value);
        if (1..=3).contains(&i) {
            assert_eq!(record.event.as_deref(), Some("request"));
            assert_eq!(record.client.as_deref(), Some("ci"));
        } else {
            assert_eq!(record.event.as_deref(), Some("seal"));
        }
    }
    assert_eq!(
        split_sealed(b"{\"a\":1}"),
        Err(Unsealed::Missing),
        "an unsealed line"
    );
    let mac = "00".repeat(MAC_LEN);
    for bad in [
        "zz:1:00".to_owned(),
        format!("2:0123456789abcdef:1:0:0:{mac}"),
        format!("2:0123456789abcdef:1:00:1:{mac}"),
        format!("3:0123456789abcdef:1:0:1:{mac}"),
        format!("2:0123456789abcdef:1:0:{mac}"),
        format!("0123456789abcdef:1:0:1:{mac}"),
        format!("2:0123456789abcdef:1:-1:1:{mac}"),
    ] {
        let line = format!("{{\"a\":1,\"seal\":\"{bad}\"}}");
        assert_eq!(
            split_sealed(line.as_bytes()),
            Err(Unsealed::Malformed),
            "{bad}"
        );
    }
}

#[test]
fn seed_file_is_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed");
    write_new_seed(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let first = std::fs::read(&path).unwrap();
    assert_eq!(first.len(), 65);
    let err = write_new_seed(&path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), first);
    let other = dir.path().join("seed2");
    write_new_seed(&other).unwrap();
    assert_ne!(std::fs::read(&other).unwrap(), first, "seeds are random");
    std::fs::write(dir.path().join("bad"), "xyz\n").unwrap();
    assert!(read_seed(&dir.path().join("bad")).is_err());
}

#[test]
fn state_file_holds_only_the_next_key() {
    let dir = new_dir();
    let lines = seal_run(dir.path(), &[4], None);
    let st = settings(dir.path());
    let meta = std::fs::metadata(&st.state).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!Path::new(&format!("{}.tmp", st.state.display())).exists());
    let state = ChainState::load(&st.state).unwrap().unwrap();
    assert_eq!(state.seq, lines.len() as u64);
    let last = split_sealed(lines.last().unwrap().strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(state.prev, last.tag);
    assert_eq!(state.chain, last.chain);
    // The key on disk is the one after the last batch: it seals none of the written records,
    // whatever position a forger claims.
    assert_eq!(state.format, Format::V2);
    assert_eq!(state.batch, 1);
    let seed = read_seed(&st.seed).unwrap();
    let mut k = chain_key_v2(&seed, &state.chain);
    evolve(&mut k);
    assert_eq!(*k, *state.key);
    let on_disk = BatchKey::new(&state.key).unwrap();
    let mut scratch = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let p = split_sealed(line.strip_suffix(b"\n").unwrap()).unwrap();
        let pos = p.batch.unwrap();
        let prev = match i {
            0 => [0; MAC_LEN],
            _ => {
                split_sealed(lines[i - 1].strip_suffix(b"\n").unwrap())
                    .unwrap()
                    .tag
            }
        };
        for claimed in [pos, BatchPos { batch: 1, ..pos }] {
            let forged = on_disk
                .tag(
                    &p.chain,
                    p.seq,
                    claimed,
                    &prev,
                    &[p.prefix, b"}"],
                    &mut scratch,
                )
                .unwrap();
            assert_ne!(forged, p.tag);
        }
    }
    // Round trip.
    state.store(&st.state).unwrap();
    let again = ChainState::load(&st.state).unwrap().unwrap();
    assert_eq!(
        (again.seq, *again.key, again.prev),
        (state.seq, *state.key, state.prev)
    );
}

#[test]
fn state_is_overwritten_in_place_and_the_old_key_is_gone_from_the_file() {
    use std::os::unix::fs::MetadataExt;
    let dir = new_dir();
    let path = dir.path().join("state");
    let seed = read_seed(&dir.path().join("seed")).unwrap();
    let mut state = ChainState::new(&seed).unwrap();
    let mut store = StateStore::create(&path, &state).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    let mut old_keys = Vec::new();
    for i in 0..20u8 {
        old_keys.push(hex_string(&state.key[..]));
        state
            .seal_next(&[b"{\"n\":", &[b'0' + i % 10], b"}"])
            .unwrap();
        store.save(&state).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.ino(), inode, "replaced instead of overwritten");
        assert_eq!(meta.len(), STATE_LEN as u64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    for old in &old_keys {
        assert!(
            !text.contains(old.as_str()),
            "an earlier key is still in the file"
        );
    }
    let loaded = ChainState::load(&path).unwrap().unwrap();
    assert_eq!((loaded.seq, *loaded.key), (state.seq, *state.key));
    // A store whose file went away replaces it on the next save.
    std::fs::remove_file(&path).unwrap();
    store.save(&state).unwrap();
    assert_eq!(ChainState::load(&path).unwrap().unwrap().seq, state.seq);
    // Its directory moved away: the save fails (the next start would not find the state),
    // and works again once the path leads to a state file.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let moved = dir.path().join("moved");
    let path = sub.join("state");
    let mut store = StateStore::create(&path, &state).unwrap();
    std::fs::rename(&sub, &moved).unwrap();
    state.seal_next(&[b"{}"]).unwrap();
    assert!(store.save(&state).is_err());
    std::fs::rename(&moved, &sub).unwrap();
    store.save(&state).unwrap();
    assert_eq!(ChainState::load(&path).unwrap().unwrap().seq, state.seq);
}

#[test]
fn intact_log_verifies_across_batches_and_restart() {
    let dir = new_dir();
    let mut lines = seal_run(dir.path(), &[3, 0, 5], Some(SealEvent::End));
    // The seed is not needed to continue: the state file is.
    let seed = std::fs::read(dir.path().join("seed")).unwrap();
    std::fs::remove_file(dir.path().join("seed")).unwrap();
    lines.extend(seal_run(dir.path(), &[2, 2], Some(SealEvent::End)));
    std::fs::write(dir.path().join("seed"), seed).unwrap();
    let text = String::from_utf8(lines.concat()).unwrap();
    assert!(text.contains("\"seal_event\":\"restart\""));
    let log = write_log(&dir.path().join("audit.log"), &lines);
    let o = verify(dir.path(), &[log]);
    assert_clean(&o);
    assert_eq!(o.verified, lines.len() as u64);
}

#[test]
fn no_state_and_no_seed_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = Sealer::open(
        &settings(dir.path()),
        &dir.path().join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("seal-init"), "{err}");
    assert!(preflight(&settings(dir.path())).is_err());
}

/// A log of `n` request records with start and end records.
fn log(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    seal_run(dir, &[n], Some(SealEvent::End))
}

fn check(dir: &Path, lines: &[Vec<u8>]) -> Vec<(Kind, u64)> {
    let path = write_log(&dir.join("tampered.log"), lines);
    kinds(&verify(dir, &[path]))
}

#[test]
fn edited_bytes_are_named_wherever_they_are() {
    let dir = new_dir();
    let lines = log(dir.path(), 8);
    for at in [0, 1, 5, 8, 9] {
        for (offset, byte) in [(2usize, b'X'), (30, b'9')] {
            let mut t = lines.clone();
            let l = &mut t[at];
            let i = offset.min(l.len() - 3);
            l[i] = if l[i] == byte { b'Y' } else { byte };
            let found = check(dir.path(), &t);
            assert!(
                found.contains(&(Kind::Edited, at as u64 + 1)),
                "byte {i} of line {}: {found:?}",
                at + 1
            );
        }
    }
    // Several bytes in one line: a status changed.
    let mut t = lines.clone();
    let s = String::from_utf8(t[3].clone())
        .unwrap()
        .replace("\"status\":200", "\"status\":403");
    t[3] = s.into_bytes();
    assert_eq!(check(dir.path(), &t), vec![(Kind::Edited, 4)]);
    // The seal itself damaged.
    let mut t = lines.clone();
    let s = String::from_utf8(t[4].clone())
        .unwrap()
        .replace("\"seal\":\"", "\"seal\":\"x");
    t[4] = s.into_bytes();
    assert!(check(dir.path(), &t).contains(&(Kind::Edited, 5)));
}

#[test]
fn deleted_lines_are_named() {
    let dir = new_dir();
    let lines = log(dir.path(), 8);
    for (from, count) in [(1usize, 1usize), (4, 1), (3, 3), (8, 1)] {
        let mut t = lines.clone();
        t.drain(from..from + count);
        let found = check(dir.path(), &t);
        assert_eq!(
            found,
            vec![(Kind::Deleted, from as u64 + 1)],
            "deleted {from}+{count}"
        );
    }
    // The first line (the chain's start) deleted.
    let mut t = lines.clone();
    t.remove(0);
    let found = check(dir.path(), &t);
    assert!(found.contains(&(Kind::Gap, 1)), "{found:?}");
}

#[test]
fn inserted_lines_are_named() {
    let dir = new_dir();
    let lines = log(dir.path(), 6);
    // An unsealed line, anywhere.
    for at in [0usize, 3, 8] {
        let mut t = lines.clone();
        t.insert(at, request_line(99));
        assert_eq!(check(dir.path(), &t), vec![(Kind::Inserted, at as u64 + 1)]);
    }
    // A copy of a sealed record, next to it and far from it.
    for (src, at) in [(2usize, 3usize), (1, 6)] {
        let mut t = lines.clone();
        let copy = t[src].clone();
        t.insert(at, copy);
        assert_eq!(check(dir.path(), &t), vec![(Kind::Inserted, at as u64 + 1)]);
    }
    // A made-up record with the next number, in front of the genuine one.
    let mut t = lines.clone();
    let genuine = split_sealed(t[3].strip_suffix(b"\n").unwrap()).unwrap();
    let fake = reseal(&request_line(50), &genuine, &[5u8; KEY_LEN]);
    t.insert(3, fake);
    assert_eq!(check(dir.path(), &t), vec![(Kind::Inserted, 4)]);
}

/// `line` sealed as record `like.seq` of `like.chain` with `key`.
fn reseal(line: &[u8], like: &SealedParts<'_>, key: &[u8; KEY_LEN]) -> Vec<u8> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let prefix = &body[..body.len() - 1];
    let pos = like.batch.unwrap();
    seal_as(key, &like.chain, like.seq, pos, &[0; MAC_LEN], prefix)
}

/// A format-2 sealed line for the unsealed line `prefix` + `}`, sealed with `key` as record
/// `seq` at `pos` after `prev`: what a forger with that key writes.
fn seal_as(
    key: &[u8; KEY_LEN],
    chain: &ChainId,
    seq: u64,
    pos: BatchPos,
    prev: &Tag,
    prefix: &[u8],
) -> Vec<u8> {
    let tag = BatchKey::new(key)
        .unwrap()
        .tag(chain, seq, pos, prev, &[prefix, b"}"], &mut Vec::new())
        .unwrap();
    let mut out = prefix.to_vec();
    out.extend_from_slice(b",\"seal\":\"");
    push_seal_value(&mut out, chain, seq, Some(pos), &tag);
    out.extend_from_slice(b"\"}\n");
    out
}

#[test]
fn swapped_and_moved_lines_are_named() {
    let dir = new_dir();
    let lines = log(dir.path(), 8);
    for a in [0usize, 1, 4, 8] {
        let mut t = lines.clone();
        t.swap(a, a + 1);
        let found = check(dir.path(), &t);
        assert_eq!(found, vec![(Kind::Reordered, a as u64 + 1)], "swap {a}");
    }
    // Two lines apart.
    let mut t = lines.clone();
    t.swap(2, 5);
    let found = check(dir.path(), &t);
    assert!(
        found.iter().all(|(k, _)| *k == Kind::Reordered),
        "{found:?}"
    );
    assert!(found.contains(&(Kind::Reordered, 3)), "{found:?}");
}

#[test]
fn truncated_tail_is_a_gap() {
    let dir = new_dir();
    let lines = log(dir.path(), 8);
    let mut t = lines.clone();
    t.truncate(6);
    let path = write_log(&dir.path().join("cut.log"), &t);
    // Right now the cut tail could still be on its way...
    let later = SystemTime::now() + Duration::from_secs(3600);
    let found = kinds(&verify_at(dir.path(), std::slice::from_ref(&path), later));
    assert_eq!(found, vec![(Kind::Gap, 6)]);
    // ... and an intact log that ended cleanly is fine as of any time.
    let path = write_log(&dir.path().join("whole.log"), &lines);
    assert_clean(&verify_at(dir.path(), &[path], later));
    // A log still being written (no end record) is fine while checkpoints are due.
    let live_dir = new_dir();
    let live = seal_run(live_dir.path(), &[4, 4], None);
    let path = write_log(&live_dir.path().join("live.log"), &live);
    assert_clean(&verify(live_dir.path(), &[path]));
}

#[test]
fn resealed_with_another_key_is_forged() {
    let dir = new_dir();
    let lines = log(dir.path(), 8);
    let st = settings(dir.path());
    // The attacker's best key: the current one from the state file, and others.
    let state = ChainState::load(&st.state).unwrap().unwrap();
    let seed = read_seed(&st.seed).unwrap();
    let mut k_next = chain_key_v2(&seed, &state.chain);
    // A key from after the records it re-seals (what taking the host later gives).
    for _ in 0..6 {
        evolve(&mut k_next);
    }
    for key in [*state.key, [0u8; KEY_LEN], *k_next] {
        for at in [1usize, 4] {
            let mut t = lines.clone();
            let p = split_sealed(lines[at].strip_suffix(b"\n").unwrap()).unwrap();
            let prev = split_sealed(lines[at - 1].strip_suffix(b"\n").unwrap())
                .unwrap()
                .tag;
            let edited = String::from_utf8(t[at].clone())
                .unwrap()
                .replace("\"status\":200", "\"status\":204");
            let body = edited.trim_end().as_bytes();
            let up = split_sealed(body).unwrap();
            // Sealed where it was, or claimed for the batch the key on disk is for.
            for pos in [
                p.batch.unwrap(),
                BatchPos {
                    batch: state.batch,
                    ..p.batch.unwrap()
                },
            ] {
                t[at] = seal_as(&key, &p.chain, p.seq, pos, &prev, up.prefix);
                let found = check(dir.path(), &t);
                assert_eq!(found[0], (Kind::Forged, at as u64 + 1), "{found:?}");
            }
        }
    }
}

#[test]
fn rotation_continues_and_a_missing_file_is_a_gap() {
    let dir = new_dir();
    let mut sealer = Sealer::open(
        &settings(dir.path()),
        &dir.path().join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    let mut files: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut sealed = Batch::default();
    for f in 0..3 {
        let mut lines = Vec::new();
        let recs: Vec<Vec<u8>> = (0..3).map(|j| request_line(f * 10 + j)).collect();
        sealer
            .seal_batch(batch_of(&recs).lines(), None, &mut sealed)
            .unwrap();
        lines.extend(sealed.lines().map(<[u8]>::to_vec));
        let trailer = if f == 2 {
            SealEvent::End
        } else {
            SealEvent::Rotate
        };
        sealer
            .seal_batch(std::iter::empty(), Some(trailer), &mut sealed)
            .unwrap();
        lines.extend(sealed.lines().map(<[u8]>::to_vec));
        sealer.reopened();
        files.push(lines);
    }
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, l)| write_log(&dir.path().join(format!("audit.log.{}", 2 - i)), l))
        .collect();
    assert!(String::from_utf8(files[1][0].clone())
        .unwrap()
        .contains("\"continue\""));
    assert_clean(&verify(dir.path(), &paths));
    // The middle file missing.
    let found = kinds(&verify(dir.path(), &[paths[0].clone(), paths[2].clone()]));
    assert_eq!(found, vec![(Kind::Gap, 1)], "{found:?}");
    // Given out of order.
    let found = kinds(&verify(
        dir.path(),
        &[paths[1].clone(), paths[0].clone(), paths[2].clone()],
    ));
    assert!(!found.is_empty());
    // Only the newest: the chain begins before it.
    let found = kinds(&verify(dir.path(), &[paths[2].clone()]));
    assert_eq!(found, vec![(Kind::Gap, 1)]);
    let seed = read_seed(&dir.path().join("seed")).unwrap();
    let partial = verify_files(
        &seed,
        &[paths[2].clone()],
        &Options {
            now: SystemTime::now(),
            partial: true,
        },
    )
    .unwrap();
    assert_clean(&partial);
    // A swap across the rotation boundary.
    let mut a = files[0].clone();
    let mut b = files[1].clone();
    std::mem::swap(a.last_mut().unwrap(), &mut b[0]);
    let pa = write_log(&dir.path().join("a.log"), &a);
    let pb = write_log(&dir.path().join("b.log"), &b);
    let found = verify(dir.path(), &[pa, pb, paths[2].clone()]);
    assert!(
        found.problems.iter().any(|p| p.kind == Kind::Reordered),
        "{:?}",
        found.problems
    );
}

#[test]
fn a_wrong_seed_verifies_nothing() {
    let dir = new_dir();
    let lines = log(dir.path(), 4);
    let path = write_log(&dir.path().join("audit.log"), &lines);
    let other = tempfile::tempdir().unwrap();
    write_new_seed(&other.path().join("seed")).unwrap();
    let o = verify(other.path(), &[path]);
    assert_eq!(o.verified, 0);
    assert!(!o.problems.is_empty());
}

#[test]
fn a_crash_between_state_and_append_is_a_gap_before_the_restart() {
    let dir = new_dir();
    let mut lines = seal_run(dir.path(), &[3], None);
    // A batch sealed (state written) but never appended.
    let _lost = seal_run_continue(dir.path(), 2);
    lines.extend(seal_run(dir.path(), &[2], Some(SealEvent::End)));
    let found = check(dir.path(), &lines);
    let restart = lines
        .iter()
        .position(|l| String::from_utf8_lossy(l).contains("\"restart\""))
        .unwrap();
    // The lost batch's records, plus the restart record of the run whose output was lost.
    assert_eq!(found, vec![(Kind::Gap, restart as u64 + 1)], "{found:?}");
}

fn seal_run_continue(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    seal_run(dir, &[n], None)
}

#[test]
fn idle_silence_longer_than_the_interval_is_a_gap() {
    let dir = new_dir();
    let mut lines = log(dir.path(), 0);
    lines.pop(); // no end record
    let old = humantime::format_rfc3339_micros(SystemTime::now() - Duration::from_secs(3600));
    let _ = old;
    // Records far apart in time, with nothing between: re-seal a run whose request lines are
    // dated an hour later.
    let mut sealer = Sealer::open(
        &settings(dir.path()),
        &dir.path().join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    let later = humantime::format_rfc3339_micros(SystemTime::now() + Duration::from_secs(3600));
    let line = format!("{{\"time\":\"{later}\",\"event\":\"request\"}}\n").into_bytes();
    let mut sealed = Batch::default();
    sealer
        .seal_batch(batch_of(&[line]).lines(), Some(SealEvent::End), &mut sealed)
        .unwrap();
    lines.extend(sealed.lines().map(<[u8]>::to_vec));
    let found = check(dir.path(), &lines);
    assert!(
        found.contains(&(Kind::Gap, lines.len() as u64 - 1)),
        "{found:?}"
    );
}

#[test]
fn verify_is_fast_enough_for_big_files() {
    let dir = new_dir();
    let lines = seal_run(dir.path(), &[20_000], Some(SealEvent::End));
    let path = write_log(&dir.path().join("big.log"), &lines);
    let t = std::time::Instant::now();
    assert_clean(&verify(dir.path(), &[path]));
    eprintln!("verified 20000 records in {:?}", t.elapsed());
}

/// The three pinned request records of `record::golden` and an empty object, sealed as one
/// batch by a sealer whose chain is fixed (id 0123456789abcdef, record 41, key 07.., previous
/// MAC 09..; in format 2, batch 6); returns the sealed lines and the sealer after them.
fn seal_pinned(format: Format) -> (Vec<Vec<u8>>, Sealer) {
    let dir = new_dir();
    let mut sealer = Sealer::open(
        &settings(dir.path()),
        &dir.path().join("audit.log"),
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    sealer.header = None;
    sealer.chain = ChainState::at(
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef],
        41,
        Zeroizing::new([7u8; KEY_LEN]),
        [9u8; MAC_LEN],
        format,
        6,
    );
    let mut sealed = Batch::default();
    sealer
        .seal_batch(batch_of(&pinned_lines()).lines(), None, &mut sealed)
        .unwrap();
    (sealed.lines().map(<[u8]>::to_vec).collect(), sealer)
}

fn pinned_lines() -> Vec<Vec<u8>> {
    let golden = include_str!("../record/golden.jsonl");
    let mut lines: Vec<Vec<u8>> = golden
        .split_inclusive('\n')
        .take(3)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    lines.push(b"{}\n".to_vec());
    lines
}

/// Each of `sealed` is the pinned line with exactly its seal field `seals[i]` added.
fn assert_pinned(sealed: &[Vec<u8>], seals: &[&str]) {
    let lines = pinned_lines();
    assert_eq!(sealed.len(), seals.len());
    for (i, ((line, got), seal)) in lines.iter().zip(sealed).zip(seals).enumerate() {
        let prefix = &line[..line.len() - 2];
        let comma = if prefix == b"{" { "" } else { "," };
        let want = format!(
            "{}{comma}\"seal\":\"{seal}\"}}\n",
            std::str::from_utf8(prefix).unwrap()
        );
        assert_eq!(std::str::from_utf8(got).unwrap(), want, "line {i}");
    }
}

/// The exact bytes of sealed lines, pinned: for a fixed chain, key and previous MAC, the
/// sealer turns three request records (the pinned ones of `record::golden`) and an empty
/// object into these lines and no others (the writer may get faster, the chain may not change).
#[test]
fn sealed_lines_are_byte_identical_to_the_pinned_ones() {
    let (sealed, sealer) = seal_pinned(Format::V1);
    assert_pinned(
        &sealed,
        &[
            "0123456789abcdef:41:9576e3c54880946e3825046f2c99c682",
            "0123456789abcdef:42:0b4e08ef6453a9d45bd18b88ea4a3fdb",
            "0123456789abcdef:43:68f8fb857723d3e976c14ed483b1d1e4",
            "0123456789abcdef:44:7cc1b1b4bfba7190f2826270f6a870b3",
        ],
    );
    assert_eq!(sealer.chain.seq, 45);
}

mod format_two;
