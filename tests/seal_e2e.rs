//! The sealed audit file end to end: `audit seal-init`, sockwarden sealing the records of real
//! docker commands (both CLIs) through the real daemon, `audit verify` accepting the intact
//! log and naming file, line and kind for every way of changing it (edited, deleted,
//! inserted, reordered, forged, truncated, across a rotation), rotation by SIGUSR1, a clean
//! restart and a crash restart continuing the chain, a wrong seed, usage errors, the config
//! rules and the seal metrics. `audit summarize` and `suggest` read sealed files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sockwarden::audit::seal::{evolve, read_seed, record_mac, split_sealed, KEY_LEN};
use support::{
    audit_records, current_uid, daemon_socket, http_request, stdout_str, test_image, toml_str,
    wait_audit_record, wait_for, Cleanup, Proxy, SOCKWARDEN,
};

const T: Duration = Duration::from_secs(30);
/// The checkpoint interval the tests run with; a silence longer than 1.5 x it + 2 s is a gap.
const CHECKPOINT: &str = "5s";

/// A directory (outside the proxy's, which goes with each process) for the seed, the log and
/// the state, so the chain outlives a sockwarden process.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::Builder::new()
            .prefix("swseal.")
            .tempdir_in("/tmp")
            .unwrap();
        let site = Site { dir };
        let out = sockwarden(&["audit", "seal-init", site.seed().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        site
    }
    fn seed(&self) -> PathBuf {
        self.dir.path().join("seed")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("audit.log.seal-state")
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// sockwarden with the sealed file sink, an admin socket, and a client for this uid with
    /// `policy` (refusals are audited too).
    fn start(&self, policy: &str) -> Proxy {
        let log = self.log();
        let seed = self.seed();
        let policy = policy.to_owned();
        Proxy::start_config(move |dir| {
            format!(
                r#"
[upstream]
socket = {up}

[audit]
sink = "file"
path = {log}
seal_key = {seed}
seal_checkpoint = "{CHECKPOINT}"

[admin]
unix = {admin}

[[listen]]
unix = {sock}

[[client]]
name = "ci"
policy = "{policy}"
uids = [{uid}]
"#,
                up = toml_str(&daemon_socket().display().to_string()),
                log = toml_str(&log.display().to_string()),
                seed = toml_str(&seed.display().to_string()),
                admin = toml_str(&dir.join("admin.sock").display().to_string()),
                sock = toml_str(&dir.join("proxy.sock").display().to_string()),
                uid = current_uid(),
            )
        })
    }
}

fn sockwarden(args: &[&str]) -> Output {
    Command::new(SOCKWARDEN).args(args).output().unwrap()
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `audit verify --key SEED [extra] FILES`.
fn verify(seed: &Path, files: &[&Path], extra: &[&str]) -> Output {
    let mut args = vec!["audit", "verify", "--key", seed.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    sockwarden(&args)
}

fn assert_intact(seed: &Path, files: &[&Path], extra: &[&str]) {
    let out = verify(seed, files, extra);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout_str(&out).starts_with("ok: "), "{}", describe(&out));
}

/// Verify must exit 1 and name `file:line: kind`.
fn assert_named(
    seed: &Path,
    files: &[&Path],
    extra: &[&str],
    file: &Path,
    line: usize,
    kind: &str,
) {
    let out = verify(seed, files, extra);
    let text = stdout_str(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{kind} at {line}: {}",
        describe(&out)
    );
    let want = format!("{}:{line}: {kind}:", file.display());
    assert!(
        text.lines().any(|l| l.starts_with(&want)),
        "expected {want:?}\n{}",
        describe(&out)
    );
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn op_is(r: &Value, op: &str) -> bool {
    r["operation"] == op && r["event"] == "request"
}

fn seal_event(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    (v["event"] == "seal").then(|| v["seal_event"].as_str().unwrap_or("").to_owned())
}

/// Real commands through sockwarden: both CLIs, a container run, and (with read-only) refusals.
fn traffic(proxy: &Proxy, cleanup: &Cleanup, log: &Path) {
    let docker = proxy.docker();
    docker.ok(&["ps", "-a"]);
    docker.ok(&["images"]);
    docker.clone().bin("/usr/bin/docker").ok(&["version"]);
    docker.clone().bin("/usr/bin/docker").ok(&["ps"]);
    let name = cleanup.container("seal");
    docker.ok(&[
        "run",
        "--rm",
        "--name",
        &name,
        &test_image(),
        "echo",
        "sealed",
    ]);
    docker.ok(&["volume", "ls"]);
    wait_audit_record(log, T, |r| op_is(r, "volume.list"));
}

fn metric(proxy: &Proxy, name: &str) -> f64 {
    let admin = proxy.dir.path().join("admin.sock");
    let resp = http_request(
        &admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// One sealed log of real commands, ended cleanly; returns its lines.
fn sealed_log(site: &Site) -> Vec<String> {
    let cleanup = Cleanup::new();
    let proxy = site.start("allow-all");
    traffic(&proxy, &cleanup, &site.log());
    assert!(proxy.stop().success());
    let lines = lines_of(&site.log());
    assert!(lines.len() >= 10, "{lines:?}");
    lines
}

#[test]
fn a_sealed_log_of_real_commands_verifies_and_reads_as_before() {
    let site = Site::new();
    let mode = std::fs::metadata(site.seed()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // seal-init never overwrites.
    let before = std::fs::read(site.seed()).unwrap();
    let again = sockwarden(&["audit", "seal-init", site.seed().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    assert_eq!(std::fs::read(site.seed()).unwrap(), before);
    // A relative seed path: the line to set names it absolute, as the configuration needs.
    let cwd = tempfile::tempdir().unwrap();
    let rel = Command::new(SOCKWARDEN)
        .args(["audit", "seal-init", "./rel-seed"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(rel.status.success(), "{}", describe(&rel));
    let wanted = format!(
        "seal_key = {:?}",
        cwd.path().join("rel-seed").display().to_string()
    );
    assert!(
        String::from_utf8_lossy(&rel.stderr).contains(&wanted),
        "{wanted}: {}",
        describe(&rel)
    );

    let cleanup = Cleanup::new();
    let proxy = site.start("read-only");
    let docker = proxy.docker();
    docker.ok(&["ps"]);
    docker.clone().bin("/usr/bin/docker").ok(&["images"]);
    let refused = docker.run(&["volume", "create", "sealtest"]);
    assert!(!refused.status.success());
    let _ = cleanup;
    wait_audit_record(&site.log(), T, |r| {
        r["decision"] == "deny" && r["event"] == "request"
    });
    // Checkpoints come while idle.
    assert!(
        wait_for(Duration::from_secs(20), || {
            lines_of(&site.log())
                .iter()
                .any(|l| seal_event(l).as_deref() == Some("checkpoint"))
                .then_some(())
        })
        .is_some(),
        "no checkpoint record"
    );
    assert!(metric(&proxy, "sockwarden_audit_sealed_records_total") >= 3.0);
    assert!(metric(&proxy, "sockwarden_audit_seal_checkpoints_total") >= 1.0);
    assert!(metric(&proxy, "sockwarden_audit_seal_sequence") >= 5.0);
    assert_eq!(metric(&proxy, "sockwarden_audit_seal_seed_on_host"), 1.0);
    assert_eq!(
        metric(&proxy, "sockwarden_audit_seal_state_failures_total"),
        0.0
    );
    // Verified while sockwarden still runs (no end record yet: checkpoints are recent).
    assert_intact(&site.seed(), &[&site.log()], &[]);
    assert!(proxy.stop().success());

    let state_mode = std::fs::metadata(site.state())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(state_mode & 0o777, 0o600);
    let lines = lines_of(&site.log());
    assert_eq!(seal_event(&lines[0]).as_deref(), Some("start"));
    assert_eq!(seal_event(lines.last().unwrap()).as_deref(), Some("end"));
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["seal"].as_str().is_some(), "unsealed: {l}");
    }
    // Records as before, plus the seal field: the test helpers and the report read them.
    let records = audit_records(&site.log());
    assert!(records.iter().any(|r| op_is(r, "container.list")));
    assert_intact(&site.seed(), &[&site.log()], &[]);
    // As of much later: it ended cleanly, so no gap.
    assert_intact(
        &site.seed(),
        &[&site.log()],
        &["--now", "2099-01-01T00:00:00Z"],
    );

    let log = site.log();
    let summary = sockwarden(&["audit", "summarize", log.to_str().unwrap()]);
    assert_eq!(summary.status.code(), Some(0), "{}", describe(&summary));
    let text = stdout_str(&summary);
    assert!(text.contains("container.list"), "{text}");
    assert!(!text.contains("Unparseable"), "{text}");
    let json = sockwarden(&["audit", "summarize", "--json", log.to_str().unwrap()]);
    assert_eq!(json.status.code(), Some(0));
    let suggest = sockwarden(&["audit", "suggest", "--client", "ci", log.to_str().unwrap()]);
    assert_eq!(suggest.status.code(), Some(0), "{}", describe(&suggest));
    let policy = stdout_str(&suggest);
    assert!(policy.contains("[policy.ci]"), "{policy}");
    assert!(policy.contains("volume.create"), "{policy}");
}

#[test]
fn every_change_is_named_with_file_line_and_kind() {
    let site = Site::new();
    let lines = sealed_log(&site);
    let seed = site.seed();
    let n = lines.len();
    let t = site.file("tampered.log");
    let later = ["--now", "2099-01-01T00:00:00Z"];
    assert_intact(&seed, &[&site.log()], &later);
    let check = |lines: &[String], extra: &[&str], line: usize, kind: &str| {
        write_lines(&t, lines);
        assert_named(&seed, &[&t], extra, &t, line, kind);
    };

    // Edited: one byte, first, middle and last line; several bytes; the seal itself.
    for at in [0, n / 2, n - 1] {
        let mut l = lines.clone();
        let bytes = unsafe_free_replace_byte(&l[at], 10);
        l[at] = bytes;
        check(&l, &[], at + 1, "edited");
    }
    let at = lines
        .iter()
        .position(|l| l.contains("\"container.list\""))
        .unwrap();
    let mut l = lines.clone();
    l[at] = l[at].replace("\"decision\":\"allow\"", "\"decision\":\"deny\"");
    assert_ne!(l[at], lines[at]);
    check(&l, &[], at + 1, "edited");
    let mut l = lines.clone();
    l[3] = l[3]
        .replace(":\"", ":\"x")
        .replacen("\"seal\":\"x", "\"seal\":\"y", 1);
    check(&l, &[], 4, "edited");

    // Deleted: a middle line, several, the line before the end record.
    for (from, count) in [(n / 2, 1), (2, 3), (n - 2, 1)] {
        let mut l = lines.clone();
        l.drain(from..from + count);
        check(&l, &[], from + 1, "deleted");
    }
    // The first line (the chain's start): the chain begins before the file.
    check(&lines[1..], &[], 1, "gap");
    // Truncated: the tail cut (no end record), verified later than the checkpoint interval.
    for keep in [n - 1, n - 4] {
        check(&lines[..keep], &later, keep, "gap");
    }

    // Inserted: an unsealed line (a fake record) at the top, middle, end; a copied record.
    let fake = lines[n / 2]
        .split(",\"seal\":")
        .next()
        .map(|p| format!("{p}}}"))
        .unwrap();
    for at in [0, n / 2, n] {
        let mut l = lines.clone();
        l.insert(at, fake.clone());
        check(&l, &[], at + 1, "inserted");
    }
    let mut l = lines.clone();
    l.insert(n / 2 + 2, lines[n / 2].clone());
    check(&l, &[], n / 2 + 3, "inserted");

    // Reordered: two neighbours swapped (first two, middle), two lines apart.
    for a in [0, n / 2] {
        let mut l = lines.clone();
        l.swap(a, a + 1);
        check(&l, &[], a + 1, "reordered");
    }
    let mut l = lines.clone();
    l.swap(2, 4);
    check(&l, &[], 3, "reordered");

    // Forged: whoever takes the host now holds the state file's key (and can compute every
    // later one); re-sealing an earlier record with it, or with a made-up key, is named.
    let state: Value = serde_json::from_slice(&std::fs::read(site.state()).unwrap()).unwrap();
    let hex = state["key"].as_str().unwrap();
    let mut state_key = [0u8; KEY_LEN];
    for (i, b) in state_key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let mut later_key = state_key;
    evolve(&mut later_key);
    for key in [state_key, later_key, [0x42u8; KEY_LEN]] {
        for at in [1, n / 2] {
            let mut l = lines.clone();
            l[at] = reseal_edited(&lines[at - 1], &lines[at], &key);
            check(&l, &[], at + 1, "forged");
        }
    }
    // The seed is what verifies: a seed of the attacker's own is not it.
    let seed = read_seed(&site.seed()).unwrap();
    assert_eq!(seed.len(), KEY_LEN);
}

/// A byte of `line` changed (a digit or letter inside the record, not its seal).
fn unsafe_free_replace_byte(line: &str, from: usize) -> String {
    let mut bytes = line.as_bytes().to_vec();
    let i = (from..bytes.len())
        .find(|&i| bytes[i].is_ascii_alphanumeric())
        .unwrap();
    bytes[i] = if bytes[i] == b'7' { b'8' } else { b'7' };
    String::from_utf8(bytes).unwrap()
}

/// `line` with `"status":` changed and sealed again, correctly chained to `prev_line`, but with
/// `key` instead of the chain's key for it.
fn reseal_edited(prev_line: &str, line: &str, key: &[u8; KEY_LEN]) -> String {
    let prev = split_sealed(prev_line.as_bytes()).unwrap();
    let parts = split_sealed(line.as_bytes()).unwrap();
    let unsealed = format!("{}}}", String::from_utf8_lossy(parts.prefix));
    let edited = if unsealed.contains("\"client\":\"ci\"") {
        unsealed.replace("\"client\":\"ci\"", "\"client\":\"someone-else\"")
    } else {
        unsealed.replacen('{', "{\"note\":\"x\",", 1)
    };
    let prefix = &edited[..edited.len() - 1];
    let tag = record_mac(
        key,
        &parts.chain,
        parts.seq,
        &prev.tag,
        &[prefix.as_bytes(), b"}"],
    );
    format!(
        "{prefix},\"seal\":\"{}:{}:{}\"}}",
        hexs(&parts.chain),
        parts.seq,
        hexs(&tag)
    )
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn rotation_and_restarts_keep_the_chain() {
    let site = Site::new();
    let cleanup = Cleanup::new();
    let proxy = site.start("allow-all");
    traffic(&proxy, &cleanup, &site.log());
    // logrotate: move the file, then SIGUSR1.
    let rotated = site.file("audit.log.1");
    std::fs::rename(site.log(), &rotated).unwrap();
    proxy.signal("USR1");
    let got = wait_for(T, || {
        proxy.docker().ok(&["images"]);
        audit_records(&site.log())
            .into_iter()
            .find(|r| op_is(r, "image.list"))
    });
    assert!(got.is_some(), "no record in the new file");
    let old = lines_of(&rotated);
    assert_eq!(seal_event(old.last().unwrap()).as_deref(), Some("rotate"));
    assert_eq!(
        seal_event(&lines_of(&site.log())[0]).as_deref(),
        Some("continue")
    );
    assert!(proxy.stop().success());

    // The seed goes off the host: the chain continues from the state file alone.
    let seed_copy = site.file("seed.offhost");
    std::fs::rename(site.seed(), &seed_copy).unwrap();
    let mut proxy = site.start("allow-all");
    proxy.docker().ok(&["ps"]);
    proxy.docker().clone().bin("/usr/bin/docker").ok(&["info"]);
    wait_audit_record(&site.log(), T, |r| op_is(r, "system.info"));
    assert_eq!(metric(&proxy, "sockwarden_audit_seal_seed_on_host"), 0.0);
    // A crash: no end record; the next start continues the chain.
    std::thread::sleep(Duration::from_millis(300));
    proxy.kill();
    let proxy = site.start("allow-all");
    proxy.docker().ok(&["volume", "ls"]);
    wait_audit_record(&site.log(), T, |r| op_is(r, "volume.list"));
    assert!(proxy.stop().success());

    let current = lines_of(&site.log());
    let events: Vec<String> = current.iter().filter_map(|l| seal_event(l)).collect();
    assert_eq!(
        events.iter().filter(|e| *e == "restart").count(),
        2,
        "{events:?}"
    );
    let seed = seed_copy;
    let log = site.log();
    assert_intact(&seed, &[&rotated, &log], &[]);
    assert_intact(&seed, &[&rotated, &log], &["--now", "2099-01-01T00:00:00Z"]);

    // The older file missing: the chain begins before the newest (unless --partial).
    assert_named(&seed, &[&log], &[], &log, 1, "gap");
    assert_intact(&seed, &[&log], &["--partial"]);
    // A file missing between two others: copy the rotated one in the middle out.
    let a = site.file("a.log");
    let b = site.file("b.log");
    let c = site.file("c.log");
    let (split, _) = current
        .iter()
        .enumerate()
        .filter(|(_, l)| seal_event(l).as_deref() == Some("restart"))
        .nth(1)
        .unwrap();
    write_lines(&a, &lines_of(&rotated));
    write_lines(&b, &current[..split]);
    write_lines(&c, &current[split..]);
    assert_intact(&seed, &[&a, &b, &c], &[]);
    assert_named(&seed, &[&a, &c], &[], &c, 1, "gap");
    // Swapped across the rotation boundary.
    let mut old2 = old.clone();
    let mut cur2 = lines_of(&site.log());
    std::mem::swap(old2.last_mut().unwrap(), &mut cur2[0]);
    write_lines(&a, &old2);
    write_lines(&b, &cur2);
    assert_named(&seed, &[&a, &b], &[], &a, old2.len(), "reordered");
    // An edit and a deletion in the rotated file.
    let mut old3 = old.clone();
    old3[2] = unsafe_free_replace_byte(&old3[2], 20);
    write_lines(&a, &old3);
    assert_named(&seed, &[&a, &log], &[], &a, 3, "edited");
    let mut old4 = old.clone();
    old4.remove(3);
    write_lines(&a, &old4);
    assert_named(&seed, &[&a, &log], &[], &a, 4, "deleted");
    // The newest file's tail cut after the crash restart.
    let mut cut = lines_of(&site.log());
    cut.truncate(cut.len() - 2);
    write_lines(&b, &cut);
    assert_named(
        &seed,
        &[&rotated, &b],
        &["--now", "2099-01-01T00:00:00Z"],
        &b,
        cut.len(),
        "gap",
    );
}

#[test]
fn a_wrong_seed_fails_and_usage_errors_exit_2() {
    let site = Site::new();
    let cleanup = Cleanup::new();
    let proxy = site.start("allow-all");
    traffic(&proxy, &cleanup, &site.log());
    assert!(proxy.stop().success());
    let log = site.log();
    let other = site.file("other-seed");
    let out = sockwarden(&["audit", "seal-init", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let out = verify(&other, &[&log], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout_str(&out).contains("is it the seed"),
        "{}",
        describe(&out)
    );
    assert!(stdout_str(&out).contains(&format!("{}:1: ", log.display())));

    let bad_seed = site.file("bad-seed");
    std::fs::write(&bad_seed, "not a seed\n").unwrap();
    let missing = site.file("nope");
    let log_s = log.to_str().unwrap();
    let seed_s = site.seed();
    let seed_s = seed_s.to_str().unwrap();
    for args in [
        vec![
            "audit",
            "verify",
            "--key",
            bad_seed.to_str().unwrap(),
            log_s,
        ],
        vec!["audit", "verify", "--key", missing.to_str().unwrap(), log_s],
        vec![
            "audit",
            "verify",
            "--key",
            seed_s,
            missing.to_str().unwrap(),
        ],
        vec!["audit", "verify", "--key", seed_s, "/tmp"],
        vec!["audit", "verify", "--key", seed_s],
        vec!["audit", "verify", log_s],
        vec![
            "audit",
            "verify",
            "--key",
            seed_s,
            "--now",
            "yesterday",
            log_s,
        ],
        vec!["audit", "seal-init"],
        vec!["audit", "seal-init", "/nonexistent-dir/seed"],
    ] {
        let out = sockwarden(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
    }
}

#[test]
fn sealing_config_rules_and_a_missing_seed() {
    let dir = tempfile::Builder::new()
        .prefix("swseal.")
        .tempdir_in("/tmp")
        .unwrap();
    let config = dir.path().join("c.toml");
    let base = format!(
        "[upstream]\nsocket = {}\n\n[[listen]]\nunix = {}\n\n",
        toml_str(&daemon_socket().display().to_string()),
        toml_str(&dir.path().join("s.sock").display().to_string())
    );
    let seed = dir.path().join("seed");
    let log = dir.path().join("audit.log");
    let check = |audit: &str, fs: bool| -> Output {
        std::fs::write(&config, format!("{base}[audit]\n{audit}\n")).unwrap();
        let mut args = vec!["check", "--config", config.to_str().unwrap()];
        if !fs {
            args.push("--no-fs");
        }
        sockwarden(&args)
    };
    let seed_t = toml_str(&seed.display().to_string());
    let log_t = toml_str(&log.display().to_string());
    for (audit, what) in [
        (
            format!("sink = \"stdout\"\nseal_key = {seed_t}"),
            "seal_key",
        ),
        (
            format!("sink = \"file\"\npath = {log_t}\nseal_key = \"seed\""),
            "seal_key",
        ),
        (
            format!("sink = \"file\"\npath = {log_t}\nseal_checkpoint = \"5s\""),
            "seal_checkpoint",
        ),
        (
            format!(
                "sink = \"file\"\npath = {log_t}\nseal_key = {seed_t}\nseal_checkpoint = \"0s\""
            ),
            "seal_checkpoint",
        ),
        (
            format!("sink = \"file\"\npath = {log_t}\nseal_key = {seed_t}\nseal_state = {log_t}"),
            "seal_state",
        ),
    ] {
        let out = check(&audit, false);
        assert_eq!(out.status.code(), Some(2), "{audit}: {}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(what),
            "{}",
            describe(&out)
        );
    }
    let good = format!("sink = \"file\"\npath = {log_t}\nseal_key = {seed_t}");
    assert_eq!(check(&good, false).status.code(), Some(0));
    // With the machine checked: no seed and no state yet.
    let out = check(&good, true);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seal"),
        "{}",
        describe(&out)
    );
    // serve refuses to start without seed or state, and creates no log.
    let out = Command::new(SOCKWARDEN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seal-init"),
        "{}",
        describe(&out)
    );
    assert!(!dir.path().join("audit.log.seal-state").exists());
    let init = sockwarden(&["audit", "seal-init", seed.to_str().unwrap()]);
    assert_eq!(init.status.code(), Some(0));
    assert_eq!(
        check(&good, true).status.code(),
        Some(0),
        "{}",
        describe(&check(&good, true))
    );
}

/// A state file that cannot be written loses the batch (never appended with a key on disk
/// that could re-seal it): the sink is unhealthy, so a fail-closed audit refuses requests;
/// once the state can be written again, sealing goes on and verify names the lost records.
#[test]
fn a_failing_state_write_fails_closed_and_shows_as_missing_records() {
    let site = Site::new();
    let state_dir = site.file("state");
    std::fs::create_dir(&state_dir).unwrap();
    let state = state_dir.join("seal-state");
    let log = site.log();
    let seed = site.seed();
    let state_t = state.clone();
    let proxy = Proxy::start_config(move |dir| {
        format!(
            r#"
[upstream]
socket = {up}

[audit]
sink = "file"
path = {log}
seal_key = {seed}
seal_state = {state}
seal_checkpoint = "{CHECKPOINT}"
on_failure = "closed"

[admin]
unix = {admin}

[[listen]]
unix = {sock}

[[client]]
name = "ci"
policy = "allow-all"
uids = [{uid}]
"#,
            up = toml_str(&daemon_socket().display().to_string()),
            log = toml_str(&log.display().to_string()),
            seed = toml_str(&seed.display().to_string()),
            state = toml_str(&state_t.display().to_string()),
            admin = toml_str(&dir.join("admin.sock").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            uid = current_uid(),
        )
    });
    proxy.docker().ok(&["ps"]);
    wait_audit_record(&site.log(), T, |r| op_is(r, "container.list"));
    assert!(state.exists());
    // The state's directory goes away: the next batch cannot be sealed safely.
    let kept = site.file("state.kept");
    std::fs::rename(&state_dir, &kept).unwrap();
    let lines_before = lines_of(&site.log()).len();
    let _ = proxy.docker().run(&["images"]);
    let refused = wait_for(T, || {
        let out = proxy.docker().run(&["version"]);
        (!out.status.success()).then_some(out)
    })
    .expect("requests go on while records cannot be sealed");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("503")
            || String::from_utf8_lossy(&refused.stderr).contains("audit"),
        "{}",
        describe(&refused)
    );
    assert!(metric(&proxy, "sockwarden_audit_seal_state_failures_total") >= 1.0);
    assert_eq!(
        lines_of(&site.log()).len(),
        lines_before,
        "appended without a state"
    );
    // Back: sealing resumes (a checkpoint or the refusals' records), requests pass again.
    std::fs::rename(&kept, &state_dir).unwrap();
    assert!(
        wait_for(T, || proxy
            .docker()
            .run(&["ps"])
            .status
            .success()
            .then_some(()))
        .is_some(),
        "still refusing after the state came back"
    );
    wait_audit_record(&site.log(), T, |r| {
        op_is(r, "container.list") && r["status"] == 200
    });
    assert!(proxy.stop().success());
    // The lost batches are missing record numbers: named, not hidden.
    let out = verify(&site.seed(), &[&site.log()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout_str(&out).contains(": deleted: "),
        "{}",
        describe(&out)
    );
}
