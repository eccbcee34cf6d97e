//! Issue 12, classes 6, 7 (daemon defaults) and 8, end to end against the real daemon: one
//! client cannot starve the others (connection limits and the process budget, request body
//! deadlines, bounded audit records, the default request rate), unsafe daemon defaults are
//! written explicitly (`IpcMode`, `CgroupnsMode`), and enforced caps reach `docker run` and
//! classic builds under the `ci` profile. Each attack is varied and the daemon's state checked
//! unchanged after a refusal; the legitimate uses each rule must not break are run too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    assert_nothing_added, audit_records, current_uid, daemon_socket, daemon_state, http_request,
    test_image, toml_str, unique_name, wait_audit_record, wait_for, Cleanup, Docker, Proxy,
    DEBIAN_DOCKER_CLI, SOCKWARDEN,
};

const T: Duration = Duration::from_secs(20);

/// A config with a file audit log, the proxy's own listener (`proxy.sock`, client `main`) and a
/// second listener `other.sock` whose peers are the client `other`; `extra` adds tables
/// (`{dir}` is the proxy's dir).
fn config(dir: &Path, main_policy: &str, extra: &str) -> String {
    format!(
        r#"
[upstream]
socket = {up}

[audit]
sink = "file"
path = {audit}

{extra}

[[client]]
name = "main"
policy = {main_policy}
uids = [{uid}]

[[client]]
name = "other"
policy = "allow-all"

[[listen]]
unix = {sock}
client = "main"

[[listen]]
unix = {other}
client = "other"
"#,
        up = toml_str(&daemon_socket().display().to_string()),
        audit = toml_str(&dir.join("audit.log").display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        other = toml_str(&dir.join("other.sock").display().to_string()),
        main_policy = toml_str(main_policy),
        uid = current_uid(),
        extra = extra.replace("{dir}", &dir.display().to_string()),
    )
}

fn start(main_policy: &str, extra: &str) -> Proxy {
    let (policy, extra) = (main_policy.to_owned(), extra.to_owned());
    Proxy::start_config(move |dir| config(dir, &policy, &extra))
}

fn audit_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("audit.log")
}

fn other_sock(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("other.sock")
}

/// Every record in the audit file.
fn records(path: &Path) -> Vec<Value> {
    audit_records(path)
}

/// Waits for a record matching `pred` (records are written just after the response ends).
fn wait_record(path: &Path, pred: impl Fn(&Value) -> bool) -> Value {
    wait_audit_record(path, T, pred)
}

/// The status code of a raw response (0 when there is none).
fn status(resp: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(resp);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The tests here compare the whole daemon's state before and after an attack, so they run one
/// at a time (another test's containers would otherwise come and go in between).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DAEMON
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ping_ok(sock: &Path) -> bool {
    http_request(
        sock,
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .is_ok_and(|r| status(&r) == 200)
}

// ---- class 8: descriptors --------------------------------------------------------------------

/// A connection that sent a request head promising a large body and trickles it.
struct Trickle(UnixStream, &'static [u8]);

impl Trickle {
    fn open(sock: &Path, head: &str) -> Option<Trickle> {
        let mut s = UnixStream::connect(sock).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(head.as_bytes()).ok()?;
        let drop: &'static [u8] = if head.contains("chunked") {
            b"1\r\n \r\n"
        } else {
            b" "
        };
        Some(Trickle(s, drop))
    }

    /// Sends one more byte of body; false once the connection is gone.
    fn drip(&mut self) -> bool {
        self.0.write_all(self.1).is_ok()
    }

    /// Whether sockwarden answered (or closed) it: reads without blocking for long.
    fn answered(&mut self) -> Option<u16> {
        self.0
            .set_read_timeout(Some(Duration::from_millis(5)))
            .ok()?;
        let mut buf = [0u8; 512];
        match self.0.read(&mut buf) {
            Ok(0) => Some(0),
            Ok(n) => Some(status(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(0),
            Err(_) => None,
        }
    }
}

fn trickle_heads() -> Vec<String> {
    vec![
        // An inspected body sockwarden reads itself.
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".to_owned(),
        // A chunked one.
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n".to_owned(),
    ]
}

/// One client holding many trickling connections, on its listener, cannot keep another client
/// on another listener out: with its own limit (varied) and with none (the process share).
#[test]
fn trickling_connections_of_one_client_cannot_block_another() {
    let _serial = serial();
    for (limits, held) in [
        ("max_connections = 10", 10),
        // No limit of its own: three quarters of server.max_connections.
        ("max_connections = 0", 30),
    ] {
        let proxy = start(
            "allow-all",
            &format!(
                "[server]\nmax_connections = 40\nbody_read_timeout = \"3s\"\n\n[limits]\n{limits}\n"
            ),
        );
        let before = daemon_state();
        let mut conns = Vec::new();
        let heads = trickle_heads();
        for i in 0..80 {
            if let Some(t) = Trickle::open(&proxy.socket, &heads[i % heads.len()]) {
                conns.push(t);
            }
        }
        // Keep them trickling (faster than the body deadline) while the other client works.
        let started = Instant::now();
        let (mut other_ok, mut other_failed) = (0, 0);
        // Over its limit a connection's 429 comes after its body is drained (at most 5 s).
        while started.elapsed() < Duration::from_secs(8) {
            conns.retain_mut(|c| c.drip() && c.answered().is_none());
            if ping_ok(&other_sock(&proxy)) {
                other_ok += 1;
            } else {
                other_failed += 1;
            }
            thread::sleep(Duration::from_millis(300));
        }
        // Still held: no more than the limit (the rest were refused with 429 or closed).
        let alive = conns.len();
        assert!(
            alive <= held,
            "{limits}: {alive} trickling connections still open, limit {held}"
        );
        assert!(
            alive >= held / 2,
            "{limits}: the attack itself failed ({alive} open)"
        );
        assert!(
            other_ok >= 3 && other_failed == 0,
            "{limits}: the other client got {other_ok} answers and {other_failed} failures"
        );
        // The other client can still do real work on its own listener.
        let docker = Docker::new(&other_sock(&proxy));
        let out = docker.ok_str(&[
            "run",
            "--rm",
            "--network",
            "none",
            &test_image(),
            "echo",
            "through",
        ]);
        assert_eq!(out.trim(), "through");
        drop(conns);
        assert_nothing_added(
            &before,
            &format!("{limits}: the trickled creates reached the daemon"),
        );
    }
}

// ---- class 8: body read deadline -------------------------------------------------------------

/// A request body that stalls is cut after `server.body_read_timeout`: 408 in Docker's shape
/// (or the connection closed), an audit record with rule `body-timeout`, and nothing created.
/// Varied: inspected, chunked, streamed (`images/load`, a build context), both API spellings.
#[test]
fn a_stalled_body_is_cut_after_the_deadline() {
    let _serial = serial();
    let proxy = start("allow-all", "[server]\nbody_read_timeout = \"2s\"\n");
    let before = daemon_state();
    let cases = [
        ("inspected", "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"Image\":"),
        ("chunked", "POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"Ima\r\n"),
        ("streamed load", "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: 10000000\r\n\r\nabc"),
        ("streamed build", "POST /v1.41/build?t=sw-stalled:1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: 10000000\r\n\r\nabc"),
    ];
    for (what, head) in cases {
        let mut s = UnixStream::connect(&proxy.socket).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let started = Instant::now();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
            "{what}: answered after {took:?}: {}",
            String::from_utf8_lossy(&resp)
        );
        let text = String::from_utf8_lossy(&resp);
        // The daemon may have answered first for a streamed body it gave up on; otherwise
        // sockwarden's own 408 names the setting.
        if status(&resp) == 408 {
            assert!(text.contains("server.body_read_timeout"), "{what}: {text}");
        }
        let path = if what.starts_with("streamed load") {
            "/images/load"
        } else if what.starts_with("streamed build") {
            "/build"
        } else {
            "/containers/create"
        };
        let r = wait_record(&audit_path(&proxy), |r| {
            r["path"] == path && r["rule"] == "body-timeout"
        });
        assert_eq!(r["decision"], "deny", "{what}: {r}");
        assert_eq!(r["status"], 408, "{what}: {r}");
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .contains("nothing received for 2s"),
            "{what}: {r}"
        );
    }
    assert_nothing_added(&before, "a stalled request changed the daemon");
    // Legit: a body sent slowly but steadily (a pause shorter than the deadline) goes through.
    let name = unique_name("slow-body");
    let cleanup = Cleanup::new();
    cleanup.add_container(&name);
    let body = format!(
        r#"{{"Image":"{}","Cmd":["true"],"HostConfig":{{"NetworkMode":"none"}}}}"#,
        test_image()
    );
    let mut s = UnixStream::connect(&proxy.socket).unwrap();
    write!(
        s,
        "POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    for piece in body.as_bytes().chunks(body.len() / 4 + 1) {
        s.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(1200));
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert_eq!(status(&resp), 201, "{}", String::from_utf8_lossy(&resp));
}

/// Large uploads at a steady pace are not cut by a tight deadline: `docker load` of a saved
/// image and a classic build with a 200 MiB context, under the `ci` profile, both CLIs.
#[test]
fn large_uploads_pass_a_tight_body_deadline() {
    let _serial = serial();
    let proxy = start("ci", "[server]\nbody_read_timeout = \"2s\"\n");
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    Docker::new(&daemon_socket()).ok(&["save", "-o", tar.to_str().unwrap(), &test_image()]);
    // `ci` does not allow image.load: the other listener's client (allow-all) loads.
    let loaded = Docker::new(&other_sock(&proxy)).ok_str(&["load", "-i", tar.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image"), "{loaded}");

    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nCOPY big /big\nRUN wc -c /big\n", test_image()),
    )
    .unwrap();
    // Incompressible, so the CLI's tar stream really is 200 MiB.
    let mut big = std::fs::File::create(ctx.join("big")).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..200 {
        for b in chunk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        big.write_all(&chunk).unwrap();
    }
    drop(big);
    for (cli, docker) in [
        ("docker 28", proxy.docker().env("DOCKER_BUILDKIT", "0")),
        (
            "docker 20.10",
            proxy
                .docker()
                .bin(DEBIAN_DOCKER_CLI)
                .env("DOCKER_BUILDKIT", "0"),
        ),
    ] {
        let tag = cleanup.image("big-context");
        let out = docker.timeout(Duration::from_secs(300)).run(&[
            "build",
            "-t",
            &tag,
            ctx.to_str().unwrap(),
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cli}: {text}");
        assert!(text.contains("209715200"), "{cli}: {text}");
    }
}

// ---- class 8: audit records and the flood ----------------------------------------------------

/// A 60 KB query (and a 60 KB path) is recorded cut, with its full length, in a small record
/// that `sockwarden audit summarize` still reads.
#[test]
fn long_queries_and_paths_are_audited_truncated() {
    let _serial = serial();
    let proxy = start("read-only", "");
    let long = "x".repeat(60 * 1024);
    for target in [
        format!("/_ping?q={long}"),
        format!("/v1.41/_ping?{long}=1"),
        format!("/v1.41/containers/{}/json", &long[..60 * 1024 - 20]),
    ] {
        let _ = http_request(
            &proxy.socket,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            T,
        )
        .unwrap();
    }
    let path = audit_path(&proxy);
    let lines = wait_for(T, || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        (text.lines().count() >= 4).then_some(text)
    })
    .unwrap();
    for line in lines.lines() {
        assert!(line.len() < 12 * 1024, "a record of {} bytes", line.len());
    }
    let all = records(&path);
    let q = all.iter().find(|r| r["query"]["q"].is_array()).unwrap();
    let value = q["query"]["q"][0].as_str().unwrap();
    assert!(value.ends_with("…[truncated: 61440 bytes]"), "{value:.80}");
    assert!(value.starts_with(&"x".repeat(1024)));
    let key = all
        .iter()
        .flat_map(|r| r["query"].as_object().cloned().unwrap_or_default())
        .find(|(k, _)| k.starts_with("xxxx"))
        .unwrap();
    assert!(
        key.0.ends_with("…[truncated: 61440 bytes]"),
        "{:.80}",
        key.0
    );
    let p = all
        .iter()
        .find(|r| {
            r["raw_path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/v1.41/containers/xxx"))
        })
        .unwrap();
    assert!(
        p["raw_path"].as_str().unwrap().contains("…[truncated: "),
        "{p}"
    );
    if let Some(name) = p["objects"]["container"].as_str() {
        assert!(name.contains("…[truncated: "), "{p}");
    }
    // The one record type reads them.
    let out = std::process::Command::new(SOCKWARDEN)
        .args(["audit", "summarize", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 0 unparseable"),
        "{out:?}"
    );
}

/// A flood from a client without configured limits meets the default rate: 429s, and their
/// records are written once a second, counting the rest (`suppressed`); another client is not
/// slowed. Over keep-alive and over fresh connections.
#[test]
fn a_flood_is_rate_limited_and_its_refusals_recorded_once_a_second() {
    let _serial = serial();
    let proxy = start("read-only", "");
    let (mut total_refused, mut recorded_before, mut first_round) = (0u64, 0usize, 0u64);
    for keep_alive in [true, false] {
        let started = Instant::now();
        let mut statuses = Vec::new();
        if keep_alive {
            let mut s = UnixStream::connect(&proxy.socket).unwrap();
            s.set_read_timeout(Some(T)).unwrap();
            // Read while writing: the answers would otherwise fill the socket's buffers.
            let mut reader = s.try_clone().unwrap();
            let reading = thread::spawn(move || {
                let mut all = Vec::new();
                let _ = reader.read_to_end(&mut all);
                all
            });
            let req = format!(
                "GET /_ping?pad={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "p".repeat(2000)
            );
            for _ in 0..600 {
                s.write_all(req.as_bytes()).unwrap();
            }
            s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let all = reading.join().unwrap();
            let text = String::from_utf8_lossy(&all);
            statuses.extend(
                text.match_indices("HTTP/1.1 ")
                    .map(|(i, _)| text[i + 9..i + 12].parse::<u16>().unwrap_or(0)),
            );
        } else {
            for _ in 0..400 {
                let resp = http_request(
                    &proxy.socket,
                    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    T,
                )
                .unwrap();
                statuses.push(status(&resp));
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        let served = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            refused > 0,
            "keep_alive={keep_alive}: no 429 in {} requests",
            statuses.len()
        );
        total_refused += refused as u64;
        // Burst 200 plus 50 a second (with slack for the clock).
        assert!(
            served as f64 <= 200.0 + 50.0 * (elapsed + 1.0) + 5.0,
            "keep_alive={keep_alive}: {served} served in {elapsed:.1}s"
        );
        // The other client is not held back by it.
        assert!(ping_ok(&other_sock(&proxy)));
        // Refusals are recorded at most once a second, the records counting the others.
        thread::sleep(Duration::from_millis(500));
        let limited: Vec<Value> = records(&audit_path(&proxy))
            .into_iter()
            .filter(|r| r["rule"] == "rate-limit")
            .collect();
        let recorded = limited.len() - recorded_before;
        recorded_before = limited.len();
        assert!(recorded >= 1);
        assert!(
            recorded as f64 <= elapsed.ceil() + 2.0,
            "keep_alive={keep_alive}: {recorded} rate-limit records in {elapsed:.1}s"
        );
        let counted: u64 = limited
            .iter()
            .map(|r| r["suppressed"].as_u64().unwrap_or(0))
            .sum();
        // Every recorded or counted refusal was one; those after the last record wait for the
        // next.
        assert!(
            limited.len() as u64 + counted <= total_refused,
            "{} + {counted} vs {total_refused}",
            limited.len()
        );
        if !keep_alive {
            // The first round's unrecorded refusals are counted by this round's first record.
            assert!(
                counted + 1 >= first_round,
                "{counted} counted, {first_round} refused in the first round"
            );
        }
        first_round = refused as u64;
        // Let the bucket refill for the next round.
        thread::sleep(Duration::from_secs(5));
    }
}

/// `sockwarden check` warns about configurations that invite exhaustion, and not about the
/// defaults.
#[test]
fn check_warns_about_exhaustion() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let base = format!(
        "[audit]\nsink = \"file\"\npath = {}\n\n[[client]]\nname = \"c\"\npolicy = \"read-only\"\nuids = [0]\n\n[[listen]]\nunix = {}\n",
        toml_str(&dir.path().join("a.log").display().to_string()),
        toml_str(&dir.path().join("s.sock").display().to_string())
    );
    let check = |text: &str| {
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(SOCKWARDEN)
            .args(["check", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(!check(&base).contains("warning"), "defaults warned");
    let warned = check(&format!(
        "[limits]\nmax_connections = 0\nrequests_per_second = 0\n\n{base}"
    ));
    assert!(
        warned.contains("warning: [limits]: max_connections = 0"),
        "{warned}"
    );
    assert!(warned.contains("fail-closed file audit log"), "{warned}");
}

// ---- class 7: daemon defaults ----------------------------------------------------------------

fn inspect_modes(name: &str) -> String {
    Docker::new(&daemon_socket())
        .ok_str(&[
            "inspect",
            "--format",
            "{{.HostConfig.IpcMode}} {{.HostConfig.CgroupnsMode}}",
            name,
        ])
        .trim()
        .to_owned()
}

/// A create that leaves `IpcMode` and `CgroupnsMode` to the daemon gets `private` written in,
/// whatever the client and API version; before API 1.40 (no `CgroupnsMode`) it is refused
/// unless it says `CgroupnsMode` itself; an explicit mode is inspected as before.
#[test]
fn unsafe_daemon_defaults_are_written_explicitly() {
    let _serial = serial();
    let proxy = start("ci", "");
    let cleanup = Cleanup::new();
    for (cli, docker) in [
        ("docker 28", proxy.docker()),
        ("docker 20.10", proxy.docker().bin(DEBIAN_DOCKER_CLI)),
    ] {
        let name = cleanup.container("ns-defaults");
        let out = docker.ok_str(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            &test_image(),
            "sh",
            "-c",
            "readlink /proc/1/ns/cgroup",
        ]);
        assert!(out.contains("cgroup:["), "{cli}: {out}");
        assert_eq!(inspect_modes(&name), "private private", "{cli}");
        let r = wait_record(&audit_path(&proxy), |r| {
            r["operation"] == "container.create" && r["objects"]["container"] == name.as_str()
        });
        let applied = r["defaults_applied"].to_string();
        assert!(
            applied.contains("IpcMode=private") && applied.contains("CgroupnsMode=private"),
            "{cli}: {r}"
        );
        // The container's cgroup namespace is not the host's.
        let host = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
        assert_ne!(out.trim(), host.display().to_string(), "{cli}");
    }
    let body = |host: &str| {
        format!(
            r#"{{"Image":"{}","Cmd":["true"],"HostConfig":{{"NetworkMode":"none"{host}}}}}"#,
            test_image()
        )
    };
    let create = |version: &str, body: &str, name: &str| {
        let resp = http_request(
            &proxy.socket,
            format!(
                "POST {version}/containers/create?name={name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
            T,
        )
        .unwrap();
        (status(&resp), String::from_utf8_lossy(&resp).into_owned())
    };
    for (version, extra, want) in [
        ("", "", "private private"),
        (
            "/v1.41",
            r#","IpcMode":"","CgroupnsMode":"""#,
            "private private",
        ),
        ("/v1.40", "", "private private"),
        ("/v1.39", r#","CgroupnsMode":"private""#, "private private"),
        ("/v1.24", r#","cgroupnsmode":"private""#, "private private"),
    ] {
        let name = cleanup.container("ns-api");
        let (code, text) = create(version, &body(extra), &name);
        assert_eq!(code, 201, "{version} {extra}: {text}");
        assert_eq!(inspect_modes(&name), want, "{version} {extra}");
    }
    // Before 1.40 a create cannot say CgroupnsMode unless it sets it: refused, nothing created.
    let before = daemon_state();
    for (version, extra) in [
        ("/v1.39", ""),
        ("/v1.30", r#","CgroupnsMode":"""#),
        ("/v1.24", r#","IpcMode":"private""#),
    ] {
        let name = unique_name("ns-old");
        let (code, text) = create(version, &body(extra), &name);
        assert_eq!(code, 403, "{version} {extra}: {text}");
        assert!(
            text.contains("HostConfig.CgroupnsMode") && text.contains("allow_host_namespaces"),
            "{text}"
        );
    }
    // Explicit unsafe modes stay refused, in any spelling.
    for extra in [
        r#","IpcMode":"shareable""#,
        r#","CgroupnsMode":"host""#,
        r#","ipcmode":"host""#,
    ] {
        let (code, text) = create("/v1.41", &body(extra), &unique_name("ns-bad"));
        assert_eq!(code, 403, "{extra}: {text}");
    }
    assert_nothing_added(&before, "after the refusals");
}

// ---- class 6: caps under the ci profile ------------------------------------------------------

/// Under the `ci` profile a `docker run` gets a pids and a memory limit, a huge `--shm-size`,
/// `--memory` or `--pids-limit` is refused (both CLIs), and a job's own values within the caps
/// are kept.
#[test]
fn ci_profile_caps_containers() {
    let _serial = serial();
    let proxy = start("ci", "");
    let cleanup = Cleanup::new();
    for (cli, docker) in [
        ("docker 28", proxy.docker()),
        ("docker 20.10", proxy.docker().bin(DEBIAN_DOCKER_CLI)),
    ] {
        let name = cleanup.container("ci-caps");
        docker.ok(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            &test_image(),
            "true",
        ]);
        let limits = Docker::new(&daemon_socket()).ok_str(&[
            "inspect",
            "--format",
            "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}",
            &name,
        ]);
        assert_eq!(limits.trim(), "1024 2147483648", "{cli}");
        let own = cleanup.container("ci-own");
        docker.ok(&[
            "run",
            "--name",
            &own,
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--shm-size",
            "128m",
            &test_image(),
            "true",
        ]);
        let limits = Docker::new(&daemon_socket()).ok_str(&[
            "inspect",
            "--format",
            "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}} {{.HostConfig.ShmSize}}",
            &own,
        ]);
        assert_eq!(limits.trim(), "50 67108864 134217728", "{cli}");
        let before = daemon_state();
        let image = test_image();
        for (args, setting) in [
            (["--shm-size", "4g"], "max_shm_size_bytes"),
            (["--shm-size", "100000000000"], "max_shm_size_bytes"),
            (["--memory", "16g"], "max_memory_bytes"),
            (["--pids-limit", "100000"], "max_pids"),
            (["--cpu-shares", "100000"], "max_cpu_shares"),
        ] {
            let mut full = vec!["run", "--rm", "--network", "none"];
            full.extend(args);
            full.extend([image.as_str(), "true"]);
            let out = docker.run(&full);
            assert!(!out.status.success(), "{cli} {args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(setting), "{cli} {args:?}: {err}");
        }
        assert_nothing_added(&before, &format!("{cli}: a refused run changed the daemon"));
    }
}

fn build_context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// A classic build's RUN containers get the memory cap (read back from inside a RUN step) under
/// the `ci` profile, with both CLIs and with every way a client leaves memory unset; a build
/// asking for more than the caps is refused; the query the daemon got is the one recorded.
#[test]
fn classic_builds_get_the_memory_cap() {
    let _serial = serial();
    let proxy = start("ci", "");
    let cleanup = Cleanup::new();
    let ctx = build_context(&format!(
        "FROM {}\nRUN echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\n",
        test_image()
    ));
    let path = ctx.path().to_str().unwrap().to_owned();
    for (cli, docker, extra) in [
        (
            "docker 28",
            proxy.docker().env("DOCKER_BUILDKIT", "0"),
            vec![],
        ),
        (
            "docker 20.10",
            proxy
                .docker()
                .bin(DEBIAN_DOCKER_CLI)
                .env("DOCKER_BUILDKIT", "0"),
            vec![],
        ),
        (
            "docker 28 --memory 0",
            proxy.docker().env("DOCKER_BUILDKIT", "0"),
            vec!["--memory", "0"],
        ),
    ] {
        let tag = cleanup.image("capped-build");
        let mut args = vec!["build", "--no-cache", "-t", tag.as_str()];
        args.extend(&extra);
        args.push(&path);
        let out = docker.run(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cli}: {text}");
        assert!(text.contains("mem=2147483648"), "{cli}: {text}");
        // Measured, as documented: the build API gives a RUN step's own cgroup no pids limit
        // (the ci profile's cap is on the build's parent cgroup: see build_default_e2e).
        assert!(text.contains("pids=max"), "{cli}: {text}");
        let r = wait_record(&audit_path(&proxy), |r| {
            r["operation"] == "image.build"
                && r["objects"]["image"]
                    .as_str()
                    .is_some_and(|i| i.contains(tag.as_str()))
        });
        assert_eq!(
            r["query"]["memory"],
            serde_json::json!(["2147483648"]),
            "{cli}: {r}"
        );
        assert!(
            r["defaults_applied"]
                .to_string()
                .contains("memory=2147483648"),
            "{cli}: {r}"
        );
    }
    // A job's own smaller memory is kept.
    let tag = cleanup.image("own-mem");
    let out = proxy.docker().env("DOCKER_BUILDKIT", "0").run(&[
        "build",
        "--no-cache",
        "--memory",
        "100m",
        "-t",
        &tag,
        &path,
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mem=104857600"), "{text}");
    // Above the caps: refused, nothing built.
    let before = daemon_state();
    for (args, setting) in [
        (vec!["--memory", "16g"], "max_memory_bytes"),
        (vec!["--shm-size", "4g"], "max_shm_size_bytes"),
        (vec!["--cpu-shares", "100000"], "max_cpu_shares"),
    ] {
        let mut full = vec!["build", "-t", "sw-refused-build:1"];
        full.extend(&args);
        full.push(&path);
        let out = proxy.docker().env("DOCKER_BUILDKIT", "0").run(&full);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(setting),
            "{args:?}: {out:?}"
        );
    }
    assert_nothing_added(&before, "after the refusals");
}

/// Where the policy caps pids and does not acknowledge uncapped builds, classic builds are
/// refused (their RUN steps cannot be given a pids limit: here no build cgroup is made), and
/// BuildKit builds too (they get no limit at all); acknowledged, they run.
#[test]
fn builds_that_would_escape_a_pids_cap_are_refused_unless_acknowledged() {
    let _serial = serial();
    let policy = |ack: bool| {
        format!(
            "[policy.strict]\nprofile = \"ci\"\n\n[policy.strict.build]\nallow_buildkit = true\nallow_uncapped_builds = {ack}\n"
        )
    };
    // No build cgroups (the default finds one by itself on a host like this).
    let start = |main: &str, extra: &str| {
        let (main, extra) = (main.to_owned(), extra.to_owned());
        Proxy::start_config(move |dir| {
            config(dir, &main, &extra).replacen(
                "[upstream]\n",
                "[upstream]\nbuild_cgroup = \"off\"\n",
                1,
            )
        })
    };
    let proxy = start("strict", &policy(false));
    let ctx = build_context(&format!("FROM {}\nRUN true\n", test_image()));
    let path = ctx.path().to_str().unwrap().to_owned();
    let before = daemon_state();
    let out = proxy
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .run(&["build", "-t", "sw-pids:1", &path]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("allow_uncapped_builds"),
        "{out:?}"
    );
    // A raw BuildKit build query: refused before any session.
    let resp = http_request(
        &proxy.socket,
        b"POST /v1.41/build?version=2&remote=client-session&session=abc HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    assert_eq!(status(&resp), 403, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("allow_uncapped_builds"));
    assert_nothing_added(&before, "after the refusals");
    drop(proxy);
    let proxy = start("strict", &policy(true));
    let cleanup = Cleanup::new();
    let tag = cleanup.image("acked");
    proxy
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .ok(&["build", "-t", &tag, &path]);
}
