//! What sealing one audit record costs, for callgrind (user-space instructions) and the clock:
//! the MAC of `ChainState::seal_next` (what the writer thread does per record; format 2, a key
//! per batch of BATCH records, or with `FORMAT=1` format 1, a key per record), the seal
//! field's formatting, and one state-file write per BATCH records: in place
//! (`StateStore::save`, what sockwarden does), or with `STORE=replace` a replacement (temp,
//! fsync, rename, fsync of the directory) for comparison.
//!
//!     cargo build --release --example sealcost
//!     valgrind --tool=callgrind target/release/examples/sealcost 0 64 DIR
//!     valgrind --tool=callgrind target/release/examples/sealcost 100000 64 DIR
//!     (instructions per record = difference / 100000)
//!     target/release/examples/sealcost 100000 64 DIR   (wall clock per record and per batch)
//!     target/release/examples/sealcost 1000000 64 DIR OUT   (also writes the sealed log to OUT
//!     and its seed to OUT.seed, to time `sockwarden audit verify --key OUT.seed OUT`)

#![allow(clippy::expect_used)] // a benchmark with a broken setup should stop loudly

use std::io::Write as _;
use std::time::Instant;

use sockwarden::audit::seal::{push_seal_value, ChainState, Format, StateStore};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp".into()));
    let log_out = args.next().map(std::path::PathBuf::from);
    let mut log = log_out.as_ref().map(|p| {
        std::fs::write(
            format!("{}.seed", p.display()),
            format!("{}\n", "07".repeat(32)),
        )
        .expect("write seed");
        std::io::BufWriter::new(std::fs::File::create(p).expect("create log"))
    });
    // A typical request record (GET /containers/json, allowed): 640 bytes.
    let line = br#"{"time":"2026-12-03T13:21:38.783729Z","id":"6b116ce1-00000001","event":"request","listener":"unix:///run/sockwarden/docker.sock","peer":{"uid":1000,"gid":1000,"pid":23322,"exe":"/usr/bin/docker"},"client":"ci","user_agent":"Docker-Client/28.0.1 (linux)","method":"GET","raw_path":"/v1.41/containers/json?all=1","path":"/containers/json","api_version":"1.41","query":{"all":["1"]},"operation":"container.list","decision":"allow","policy":"ci","rule":"allow[0]","reason":"operation container.list allowed by policy ci","status":200,"duration_ms":1.234,"bytes_in":0,"bytes_out":3456}"#;
    let seed = [7u8; 32];
    let time = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    let line = String::from_utf8_lossy(line).replace("2026-12-03T13:21:38.783729Z", &time);
    let line = line.as_bytes();
    let prefix = &line[..line.len() - 1];
    let format = match std::env::var("FORMAT").as_deref() {
        Ok("1") => Format::V1,
        _ => Format::V2,
    };
    let mut state = ChainState::new_in(&seed, format).expect("chain");
    let state_path = dir.join("sealcost.seal-state");
    let mut out = Vec::with_capacity(1 << 20);
    let chain = state.chain;
    let seal_record = |state: &mut ChainState, event: &str, log: &mut dyn std::io::Write| {
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        let body = format!(
            "{{\"time\":\"{now}\",\"event\":\"seal\",\"seal_event\":\"{event}\",\"seal_checkpoint_s\":60.0"
        );
        let (seq, tag, place) = state.seal_next(&[body.as_bytes(), b"}"]).expect("seal");
        let mut line = format!("{body},\"seal\":\"").into_bytes();
        push_seal_value(&mut line, &chain, seq, place, &tag);
        line.extend_from_slice(b"\"}\n");
        log.write_all(&line).expect("write");
    };
    if let Some(log) = log.as_mut() {
        seal_record(&mut state, "start", log);
    }
    let replace = std::env::var("STORE").is_ok_and(|v| v == "replace");
    let mut store = StateStore::create(&state_path, &state).expect("state file");
    let mut store_time = std::time::Duration::ZERO;
    let mut stores = 0u32;
    let start = Instant::now();
    for i in 0..n {
        if i % batch == 0 {
            state.begin_batch(batch.min(n - i)).expect("batch");
        }
        let (seq, tag, place) = state.seal_next(&[prefix, b"}"]).expect("seal");
        out.clear();
        out.extend_from_slice(prefix);
        out.extend_from_slice(b",\"seal\":\"");
        push_seal_value(&mut out, &chain, seq, place, &tag);
        out.extend_from_slice(b"\"}\n");
        if let Some(log) = log.as_mut() {
            log.write_all(&out).expect("write");
        }
        if (i + 1) % batch == 0 {
            let t = Instant::now();
            if replace {
                state.store(&state_path).expect("store");
            } else {
                store.save(&state).expect("save");
            }
            store_time += t.elapsed();
            stores += 1;
        }
    }
    let total = start.elapsed();
    if let Some(mut log) = log.take() {
        seal_record(&mut state, "end", &mut log);
        log.flush().expect("flush");
    }
    let crypto = total.saturating_sub(store_time);
    if n > 0 {
        println!(
            "{n} records: {:.2} µs/record sealing, {} state writes of {:.1} µs each ({:.2} µs/record at {batch}/batch)",
            crypto.as_secs_f64() * 1e6 / n as f64,
            stores,
            store_time.as_secs_f64() * 1e6 / f64::from(stores.max(1)),
            store_time.as_secs_f64() * 1e6 / n as f64,
        );
    }
    let _ = std::fs::remove_file(&state_path);
}
