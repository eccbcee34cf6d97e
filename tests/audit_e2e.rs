//! Day-2 operations end to end, through sockwarden against the real daemon and the real docker
//! CLI: the audit log (records field by field for allowed, refused, would-deny, hijacked and
//! failed requests; no secret anywhere in it; logrotate reopen; fail-closed and fail-open
//! sinks), hot reload under load, the admin listener's metrics and health, and client limits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use support::{
    audit_records, current_uid, daemon_socket, http_request, test_image, toml_str,
    wait_audit_record, wait_for, Cleanup, Docker, Proxy,
};

const T: Duration = Duration::from_secs(20);

/// The proxy config used here: a file audit log and an admin socket in the proxy's dir, the
/// given clients, policies and extra listeners (`{dir}` is replaced by the proxy's dir).
fn audit_config(dir: &Path, upstream: &Path, extra: &str) -> String {
    format!(
        r#"
[upstream]
socket = {up}

[audit]
sink = "file"
path = {audit}
log_bodies = true

[admin]
unix = {admin}

[[listen]]
unix = {sock}

{extra}
"#,
        up = toml_str(&upstream.display().to_string()),
        audit = toml_str(&dir.join("audit.log").display().to_string()),
        admin = toml_str(&dir.join("admin.sock").display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        extra = extra.replace("{dir}", &dir.display().to_string()),
    )
}

fn start(extra: &str) -> Proxy {
    let extra = extra.to_owned();
    Proxy::start_config(move |dir| audit_config(dir, &daemon_socket(), &extra))
}

fn audit_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("audit.log")
}

fn admin_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("admin.sock")
}

/// Every record in the audit file.
fn records(path: &Path) -> Vec<Value> {
    audit_records(path)
}

/// Waits for a record matching `pred` (records are written just after the response ends).
fn wait_record(path: &Path, pred: impl Fn(&Value) -> bool) -> Value {
    wait_audit_record(path, T, pred)
}

fn op_is(r: &Value, op: &str) -> bool {
    r["operation"] == op && r["event"] == "request"
}

/// GET on the admin socket: (status, body).
fn admin_get(proxy: &Proxy, path: &str) -> (u16, String) {
    let resp = http_request(
        &admin_path(proxy),
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        T,
    )
    .unwrap();
    split_response(&resp)
}

fn split_response(resp: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Parses Prometheus text: `name{labels}` -> value.
fn scrape(proxy: &Proxy) -> Vec<(String, f64)> {
    let (status, body) = admin_get(proxy, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l}"));
            (
                name.to_owned(),
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad value {l}")),
            )
        })
        .collect()
}

fn metric(samples: &[(String, f64)], name_and_labels: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name_and_labels)
        .map(|(_, v)| *v)
        .unwrap_or(0.0)
}

fn ci_client(extra_policy: &str) -> String {
    format!(
        r#"
[[client]]
name = "ci"
policy = "work"
uids = [{uid}]

[[client]]
name = "trial"
policy = "read-only"
mode = "audit"

[policy.work]
profile = "ci"
{extra_policy}

[[listen]]
unix = "{{dir}}/trial.sock"
client = "trial"
"#,
        uid = current_uid()
    )
}

#[test]
fn records_allowed_refused_hijacked_and_daemon_errors_field_by_field() {
    let proxy = start(&ci_client(""));
    let audit = audit_path(&proxy);
    let docker = proxy.docker();
    let cleanup = Cleanup::new();
    let image = test_image();

    // Allowed: docker ps.
    docker.ok(&["ps"]);
    let r = wait_record(&audit, |r| op_is(r, "container.list"));
    assert_eq!(r["client"], "ci");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["policy"], "work");
    assert_eq!(r["rule"], "allow container.list");
    assert_eq!(r["status"], 200);
    assert_eq!(r["method"], "GET");
    assert_eq!(r["path"], "/containers/json");
    assert!(r["raw_path"]
        .as_str()
        .unwrap()
        .ends_with("/containers/json"));
    assert!(r["api_version"].is_string(), "{r}");
    assert_eq!(r["end"], "complete");
    assert_eq!(r["peer"]["uid"], current_uid());
    assert!(r["peer"]["pid"].as_u64().unwrap() > 0, "{r}");
    assert!(r["peer"]["exe"].as_str().unwrap().contains("docker"), "{r}");
    assert!(r["bytes_out"].as_u64().unwrap() > 0, "{r}");
    assert!(r["duration_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    assert!(
        r["listener"].as_str().unwrap().contains("proxy.sock"),
        "{r}"
    );
    assert!(
        r["user_agent"].as_str().unwrap().contains("Docker-Client"),
        "{r}"
    );

    // The request id in the response header finds the record.
    let resp = http_request(
        &proxy.socket,
        b"GET /v1.41/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&resp).to_ascii_lowercase();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-sockwarden-request-id: "))
        .expect("request id header")
        .trim()
        .to_owned();
    let r = wait_record(&audit, |r| r["id"] == id.as_str());
    assert_eq!(r["operation"], "image.list");

    // Hijacked: docker run -i (create, attach session, start, wait, delete).
    let name = cleanup.container("audit-run");
    let out = proxy
        .docker()
        .stdin(b"hello from stdin\n".to_vec())
        .ok_str(&[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            "-e",
            "SW_SECRET_ENV=env-secret-value-1",
            &image,
            "cat",
        ]);
    assert_eq!(out.trim_end(), "hello from stdin");
    let create = wait_record(&audit, |r| op_is(r, "container.create"));
    assert_eq!(create["status"], 201);
    assert_eq!(create["objects"]["container"], name.as_str());
    assert_eq!(create["settings"]["kind"], "container_create");
    assert!(create["settings"]["image"]
        .as_str()
        .unwrap()
        .contains("sw-busybox"));
    assert!(create["settings"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&Value::from("network=none")));
    // The body is logged (log_bodies) with the Env value redacted.
    assert_eq!(
        create["body"]["Env"][0], "SW_SECRET_ENV=<redacted>",
        "{create}"
    );
    let open = wait_record(&audit, |r| {
        r["event"] == "session_open" && r["operation"] == "container.attach"
    });
    assert_eq!(open["status"], 101);
    let close = wait_record(&audit, |r| {
        r["event"] == "session_close" && r["id"] == open["id"]
    });
    assert_eq!(close["operation"], "container.attach");
    assert_eq!(close["client"], "ci");
    assert!(close["bytes_in"].as_u64().unwrap() >= 17, "{close}");
    assert!(close["bytes_out"].as_u64().unwrap() >= 17, "{close}");
    assert!(close["objects"]["container"].is_string(), "{close}");

    // Refused by policy: exec is not in the ci profile.
    let keep = cleanup.container("audit-keep");
    docker.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &keep,
        &image,
        "sleep",
        "60",
    ]);
    let out = docker.run(&["exec", &keep, "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sockwarden"),
        "{out:?}"
    );
    let r = wait_record(&audit, |r| op_is(r, "exec.create"));
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["status"], 403);
    assert_eq!(r["rule"], "default-deny");
    assert_eq!(r["policy"], "work");
    assert!(r["reason"].as_str().unwrap().contains("exec.create"), "{r}");
    assert_eq!(r["objects"]["container"], keep.as_str());

    // Refused by inspection: privileged.
    let out = docker.run(&["create", "--privileged", "--network", "none", &image]);
    assert!(!out.status.success());
    let r = wait_record(&audit, |r| {
        op_is(r, "container.create") && r["status"] == 403
    });
    assert_eq!(r["decision"], "deny");
    assert!(r["reason"].as_str().unwrap().contains("Privileged"), "{r}");
    assert_eq!(r["rule"], "work.container");
    // Its violations are listed, as a dry run's are (what `audit suggest` widens from): as
    // objects naming the field, the reason and the setting that would allow it.
    let violations = r["violations"].as_array().expect("violations");
    assert_eq!(violations.len(), 1, "{r}");
    let v = &violations[0];
    assert_eq!(
        format!(
            "{}: {}",
            v["field"].as_str().unwrap(),
            v["reason"].as_str().unwrap()
        ),
        r["reason"].as_str().unwrap(),
        "{r}"
    );
    assert_eq!(v["field"], "HostConfig.Privileged", "{r}");
    assert_eq!(v["setting"], "allow_privileged", "{r}");
    assert!(r.get("settings").is_none(), "{r}");

    // A malformed request: 400, never forwarded, still recorded.
    let resp = http_request(
        &proxy.socket,
        b"GET /v1.41/containers/../images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 400"));
    let r = wait_record(&audit, |r| r["status"] == 400);
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["rule"], "bad-request");

    // The daemon's own error (404) is recorded with its status.
    let out = docker.run(&["inspect", "--type", "container", "sw-no-such-container-x"]);
    assert!(!out.status.success());
    let r = wait_record(&audit, |r| {
        op_is(r, "container.inspect") && r["status"] == 404
    });
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["objects"]["container"], "sw-no-such-container-x");
}

#[test]
fn would_deny_in_audit_mode_is_forwarded_and_recorded() {
    let proxy = start(&ci_client(""));
    let audit = audit_path(&proxy);
    let cleanup = Cleanup::new();
    let trial = Docker::new(&proxy.dir.path().join("trial.sock"));
    let name = cleanup.container("audit-trial");
    // read-only refuses container.create; in audit mode it goes through, and privileged too.
    trial.ok(&[
        "create",
        "--privileged",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "true",
    ]);
    let r = wait_record(&audit, |r| {
        op_is(r, "container.create") && r["client"] == "trial"
    });
    assert_eq!(r["decision"], "would-deny", "{r}");
    assert_eq!(r["status"], 201);
    assert_eq!(r["policy"], "read-only");
    assert_eq!(r["rule"], "default-deny");
    assert!(
        r["violations"][0]["field"]
            .as_str()
            .unwrap()
            .contains("Privileged"),
        "{r}"
    );
    assert!(r["peer"]["uid"].is_number());
    // The enforcing client on the same proxy is still refused.
    let out = proxy
        .docker()
        .run(&["create", "--privileged", "--network", "none", &test_image()]);
    assert!(!out.status.success());
    // `explain` says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockwarden"))
        .args(["explain", "--config"])
        .arg(&proxy.config)
        .args(["--client", "trial", "POST", "/v1.41/containers/create"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("WOULD-DENY"),
        "{out:?}"
    );
}

#[test]
fn inspection_refusals_in_audit_mode_are_would_deny_with_violations() {
    let proxy = start(&format!(
        r#"
[[client]]
name = "trial"
policy = "work"
uids = [{uid}]

[policy.work]
profile = "ci"
mode = "audit"
"#,
        uid = current_uid()
    ));
    let audit = audit_path(&proxy);
    let cleanup = Cleanup::new();
    let name = cleanup.container("audit-priv");
    proxy.docker().ok(&[
        "create",
        "--privileged",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "true",
    ]);
    let r = wait_record(&audit, |r| op_is(r, "container.create"));
    assert_eq!(r["decision"], "would-deny", "{r}");
    assert_eq!(r["status"], 201);
    assert_eq!(r["rule"], "inspection");
    assert!(
        r["violations"][0]["field"]
            .as_str()
            .unwrap()
            .contains("Privileged"),
        "{r}"
    );
}

/// No secret sent by a client appears anywhere in the audit log, whatever carries it.
#[test]
fn no_secret_reaches_the_log() {
    let proxy = start(&ci_client(
        "allow = [\"system.auth\"]\nallow_dangerous = [\"system.auth\"]",
    ));
    let audit = audit_path(&proxy);
    let cleanup = Cleanup::new();
    let secrets = [
        "registry-auth-secret-2",
        "bearer-secret-3",
        "build-arg-secret-4",
        "env-secret-5",
        "login-password-6",
        "query-token-7",
    ];
    // Headers.
    let resp = http_request(
        &proxy.socket,
        format!(
            "GET /v1.41/images/json?registry_token={} HTTP/1.1\r\nHost: x\r\nX-Registry-Auth: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            secrets[5], secrets[0], secrets[1]
        )
        .as_bytes(),
        T,
    )
    .unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    // Build args, through the classic builder of the daemon.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nARG SW_TOKEN\nLABEL x=y\n",
    )
    .unwrap();
    let tag = cleanup.image("audit-build");
    let build = proxy
        .docker()
        .bin("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "0")
        .run(&[
            "build",
            "--build-arg",
            &format!("SW_TOKEN={}", secrets[2]),
            "-t",
            &tag,
            ctx.path().to_str().unwrap(),
        ]);
    assert!(build.status.success(), "{build:?}");
    // Env values in a logged create body.
    let name = cleanup.container("audit-env");
    proxy.docker().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        "-e",
        &format!("PASSWORD={}", secrets[3]),
        &test_image(),
        "true",
    ]);
    // Registry login: the password travels in the body of /auth (not inspected, never logged).
    let login = format!(
        r#"{{"username":"u","password":"{}","serveraddress":"localhost:1"}}"#,
        secrets[4]
    );
    let _ = http_request(
        &proxy.socket,
        format!(
            "POST /v1.41/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
            login.len()
        )
        .as_bytes(),
        T,
    )
    .unwrap();
    wait_record(&audit, |r| op_is(r, "system.auth"));
    let build_record = wait_record(&audit, |r| op_is(r, "image.build"));
    assert!(
        build_record["query"]["buildargs"][0]
            .as_str()
            .unwrap()
            .contains("SW_TOKEN"),
        "{build_record}"
    );
    wait_record(&audit, |r| op_is(r, "container.create"));
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the audit log:\n{text}"
        );
    }
    // Nor into sockwarden's own log.
    let log = proxy.log_text();
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the process log"
        );
    }
}

#[test]
fn upstream_failure_is_recorded() {
    // An upstream that answers /_ping (so the proxy starts) and breaks off anything else.
    let dir = tempfile::Builder::new()
        .prefix("swu.")
        .tempdir_in("/tmp")
        .unwrap();
    let sock = dir.path().join("up.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                if line.contains("/_ping") {
                    let _ = reader.get_mut().write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                    );
                }
                // Anything else: dropped without an answer.
            });
        }
    });
    let extra = ci_client("");
    let up = sock.clone();
    let proxy = Proxy::start_config(move |d| audit_config(d, &up, &extra));
    let audit = audit_path(&proxy);
    let resp = http_request(
        &proxy.socket,
        b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 502"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let r = wait_record(&audit, |r| op_is(r, "container.list"));
    assert_eq!(r["status"], 502);
    assert_eq!(r["decision"], "allow");
    assert!(r["error"].is_string(), "{r}");
    let samples = scrape(&proxy);
    assert!(metric(&samples, "sockwarden_upstream_errors_total") >= 1.0);
    let (status, body) = admin_get(&proxy, "/readyz");
    assert_eq!(status, 200, "{body}"); // /_ping still answers
}

#[test]
fn sigusr1_reopens_the_file_after_logrotate() {
    let proxy = start(&ci_client(""));
    let audit = audit_path(&proxy);
    proxy.docker().ok(&["ps"]);
    wait_record(&audit, |r| op_is(r, "container.list"));
    let rotated = proxy.dir.path().join("audit.log.1");
    std::fs::rename(&audit, &rotated).unwrap();
    proxy.signal("USR1");
    // The reopen happens before the writer's next batch; give the signal a moment to land.
    let got = wait_for(T, || {
        proxy.docker().ok(&["images"]);
        records(&audit).into_iter().find(|r| op_is(r, "image.list"))
    });
    assert!(got.is_some(), "no record in the new file");
    let old = records(&rotated);
    assert!(old.iter().any(|r| op_is(r, "container.list")));
    assert!(
        !old.iter().any(|r| op_is(r, "image.list")),
        "written to the rotated file"
    );
    assert!(proxy.log_text().contains("audit sink reopened"));
}

fn broken_sink_proxy(on_failure: &str) -> Proxy {
    let extra = format!(
        r#"
[[client]]
name = "ci"
policy = "read-only"
uids = [{uid}]
"#,
        uid = current_uid()
    );
    let on_failure = on_failure.to_owned();
    Proxy::start_config(move |dir| {
        // /dev/full accepts the open and fails every write (ENOSPC): a sink that breaks.
        audit_config(dir, &daemon_socket(), &extra)
            .replace(
                &toml_str(&dir.join("audit.log").display().to_string()),
                "\"/dev/full\"",
            )
            .replace(
                "log_bodies = true",
                &format!("log_bodies = true\non_failure = \"{on_failure}\""),
            )
    })
}

#[test]
fn a_failing_sink_refuses_requests_when_failing_closed() {
    let proxy = broken_sink_proxy("closed");
    // The readiness probe's record already failed; from now on requests are refused.
    let refused = wait_for(T, || {
        let out = proxy.docker().run(&["ps"]);
        (!out.status.success()).then_some(out)
    })
    .expect("requests still served with a failing sink");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("sockwarden: unavailable: the audit log cannot be written"),
        "{stderr}"
    );
    // A client still sending a body reads the refusal too.
    let resp = http_request(&proxy.socket, &big_load_request(), T).expect("refusal read");
    let (status, body) = split_response(&resp);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the audit log cannot be written"), "{body}");
    let samples = scrape(&proxy);
    assert!(
        metric(
            &samples,
            "sockwarden_audit_records_lost_total{reason=\"sink_error\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &samples,
            "sockwarden_requests_total{client=\"ci\",operation=\"none\",decision=\"deny\",status=\"503\"}"
        ) >= 1.0,
        "{samples:?}"
    );
    assert!(proxy.log_text().contains("audit sink failing"));
}

#[test]
fn a_failing_sink_only_counts_losses_when_failing_open() {
    let proxy = broken_sink_proxy("open");
    for _ in 0..3 {
        proxy.docker().ok(&["ps"]);
    }
    let lost = wait_for(T, || {
        let m = metric(
            &scrape(&proxy),
            "sockwarden_audit_records_lost_total{reason=\"sink_error\"}",
        );
        (m >= 6.0).then_some(m)
    });
    assert!(lost.is_some(), "losses not counted");
    assert!(proxy.log_text().contains("audit sink failing"));
}

/// Twenty reloads (SIGHUP and `sockwarden reload`) while a client keeps sending requests on
/// keep-alive connections: none is refused or lost, every reload is audited, the new rules
/// apply to connections already open, and an invalid file changes nothing.
#[test]
fn twenty_reloads_under_load_lose_nothing() {
    let variant = |n: usize| {
        // Alternates a harmless extra rule so each reload really changes the policy.
        let extra = if n % 2 == 0 {
            "allow = [\"volume.list\"]"
        } else {
            ""
        };
        // A load test: the default request rate (50/s per client) is lifted.
        format!("{}\n[limits]\nrequests_per_second = 0\n", ci_client(extra))
    };
    let proxy = start(&variant(0));
    let audit = audit_path(&proxy);
    let config_text = |n: usize| audit_config(proxy.dir.path(), &daemon_socket(), &variant(n));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let sock = proxy.socket.clone();
        let stop = stop.clone();
        let sent = sent.clone();
        workers.push(thread::spawn(move || {
            let mut failures = Vec::new();
            let mut conn = KeepAlive::connect(&sock);
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = conn.get("/v1.41/containers/json?all=1");
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failures.push(format!("{status} {body}"));
                }
                n += 1;
                if n % 50 == 0 {
                    conn = KeepAlive::connect(&sock); // new connections as well
                }
            }
            failures
        }));
    }
    thread::sleep(Duration::from_millis(300));
    for n in 1..=20 {
        std::fs::write(&proxy.config, config_text(n)).unwrap();
        if n % 4 == 0 {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockwarden"))
                .args(["reload", "--config"])
                .arg(&proxy.config)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert!(String::from_utf8_lossy(&out.stdout).contains("\"generation\""));
        } else {
            proxy.signal("HUP");
        }
        let generation = n as u64 + 1;
        wait_record(&audit, |r| {
            r["event"] == "reload" && r["generation"] == generation
        });
    }
    // An invalid file: refused, the old configuration stays.
    std::fs::write(&proxy.config, "[[listen]]\nunix = 3\n").unwrap();
    proxy.signal("HUP");
    let bad = wait_record(&audit, |r| r["event"] == "reload" && r["result"] == "error");
    assert!(bad["error"].as_str().unwrap().contains("line"), "{bad}");
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.join().unwrap());
    }
    assert!(
        failures.is_empty(),
        "requests failed during reloads: {failures:?}"
    );
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 40, "only {sent} requests sent");
    // None lost: one record per request sent (the CLI-free workers are the only list callers).
    let seen = wait_for(T, || {
        let n = records(&audit)
            .iter()
            .filter(|r| op_is(r, "container.list"))
            .count();
        (n == sent).then_some(n)
    });
    assert_eq!(seen, Some(sent), "records of the workers' requests");
    let reloads: Vec<Value> = records(&audit)
        .into_iter()
        .filter(|r| r["event"] == "reload")
        .collect();
    assert_eq!(reloads.iter().filter(|r| r["result"] == "ok").count(), 20);
    let sources: Vec<&str> = reloads
        .iter()
        .filter_map(|r| r["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"SIGHUP") && sources.contains(&"admin"),
        "{sources:?}"
    );
    let samples = scrape(&proxy);
    assert_eq!(
        metric(&samples, "sockwarden_reloads_total{result=\"ok\"}"),
        20.0
    );
    assert_eq!(
        metric(&samples, "sockwarden_reloads_total{result=\"error\"}"),
        1.0
    );
    assert_eq!(metric(&samples, "sockwarden_config_generation"), 21.0);

    // A reload takes access away on a connection that is already open.
    let mut conn = KeepAlive::connect(&proxy.socket);
    assert_eq!(conn.get("/v1.41/containers/json").0, 200);
    let text = audit_config(
        proxy.dir.path(),
        &daemon_socket(),
        &ci_client("deny = [\"container.list\"]"),
    );
    std::fs::write(&proxy.config, text).unwrap();
    proxy.signal("HUP");
    wait_record(&audit, |r| r["event"] == "reload" && r["generation"] == 22);
    let (status, body) = conn.get("/v1.41/containers/json");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("deny container.list"), "{body}");
}

/// A raw keep-alive HTTP/1.1 connection.
struct KeepAlive {
    reader: BufReader<UnixStream>,
}

impl KeepAlive {
    fn connect(sock: &Path) -> KeepAlive {
        let s = UnixStream::connect(sock).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        KeepAlive {
            reader: BufReader::new(s),
        }
    }

    /// One GET; (status, body). Reads a Content-Length or chunked body.
    fn get(&mut self, target: &str) -> (u16, String) {
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        self.read_response()
    }

    fn read_response(&mut self) -> (u16, String) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                body.extend_from_slice(&chunk[..n]);
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body).unwrap();
        }
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Whether the server closed the connection (EOF within `wait`).
    fn closed_within(&mut self, wait: Duration) -> bool {
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

#[test]
fn metrics_and_health_on_the_admin_listener() {
    let proxy = start(&ci_client(""));
    for _ in 0..3 {
        proxy.docker().ok(&["ps"]);
    }
    let out = proxy.docker().run(&["network", "create", "sw-audit-no"]);
    assert!(!out.status.success(), "network create must be refused");
    let (status, body) = admin_get(&proxy, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = admin_get(&proxy, "/readyz");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _) = admin_get(&proxy, "/nope");
    assert_eq!(status, 404);
    let samples = wait_for(T, || {
        let s = scrape(&proxy);
        (metric(
            &s,
            "sockwarden_requests_total{client=\"ci\",operation=\"container.list\",decision=\"allow\",status=\"200\"}",
        ) >= 3.0)
            .then_some(s)
    })
    .expect("request counter");
    assert_eq!(
        metric(
            &samples,
            "sockwarden_requests_total{client=\"ci\",operation=\"network.create\",decision=\"deny\",status=\"403\"}"
        ),
        1.0,
        "{samples:?}"
    );
    assert!(
        metric(
            &samples,
            "sockwarden_request_duration_seconds_count{client=\"ci\",operation=\"container.list\"}"
        ) >= 3.0
    );
    assert!(samples
        .iter()
        .any(|(n, _)| n.starts_with("sockwarden_connections_open{listener=")));
    assert!(samples
        .iter()
        .any(|(n, v)| n.starts_with("sockwarden_connections_total{listener=") && *v >= 4.0));
    assert!(metric(&samples, "sockwarden_audit_records_written_total") >= 3.0);
    assert_eq!(metric(&samples, "sockwarden_audit_queue_capacity"), 8192.0);
    assert!(samples
        .iter()
        .any(|(n, _)| n == "sockwarden_hijacked_sessions_open"));
    assert!(samples
        .iter()
        .any(|(n, _)| n == "sockwarden_audit_queue_depth"));
}

/// A proxy whose client `ci` (read-only) may make one request a second, `burst` at once.
fn rate_limited_proxy(burst: u32) -> Proxy {
    start(&format!(
        r#"
[[client]]
name = "ci"
policy = "read-only"
uids = [{uid}]
[client.limits]
requests_per_second = 1
burst = {burst}
"#,
        uid = current_uid()
    ))
}

#[test]
fn rate_limit_answers_429_in_docker_shape() {
    let proxy = rate_limited_proxy(3);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let resp = http_request(
            &proxy.socket,
            b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            T,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (status, _) = split_response(&resp);
        statuses.push(status);
        if status == 429 {
            limited = Some(text);
        }
    }
    // A burst of 3 (the readiness probe took one token) then 429s.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(
        statuses.iter().filter(|&&s| s == 200).count() <= 3,
        "{statuses:?}"
    );
    assert_eq!(statuses[5], 429, "{statuses:?}");
    let text = limited.unwrap();
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"message":"sockwarden: too many requests: client ci is limited to 1 requests per second"}"#),
        "{text}"
    );
    // The docker CLI prints it.
    thread::sleep(Duration::from_millis(1100));
    let mut printed = String::new();
    for _ in 0..4 {
        let out = proxy.docker().run(&["ps"]);
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        printed.contains("Error response from daemon: sockwarden: too many requests"),
        "{printed}"
    );
    let r = wait_record(&audit_path(&proxy), |r| r["status"] == 429);
    assert_eq!(r["rule"], "rate-limit");
    assert_eq!(r["decision"], "deny");
    let samples = scrape(&proxy);
    assert!(
        metric(
            &samples,
            "sockwarden_limited_total{client=\"ci\",limit=\"rate\"}"
        ) >= 1.0
    );
}

/// A `POST /images/load` whose body (768 KiB, more than a unix socket buffers) the client
/// writes in full before it reads the answer, as simple clients do.
fn big_load_request() -> Vec<u8> {
    let body = vec![b'x'; 768 * 1024];
    let mut request = format!(
        "POST /v1.41/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

#[test]
fn refusals_read_the_body_the_client_is_sending() {
    // Refused by the policy (read-only: no image.load) until the rate limit refuses: either
    // way the client finishes writing its body and reads the answer, rather than failing with
    // a broken pipe.
    let proxy = rate_limited_proxy(2);
    let request = big_load_request();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let resp = http_request(&proxy.socket, &request, T)
            .unwrap_or_else(|e| panic!("after {seen:?}: the refusal was not read: {e}"));
        let (status, body) = split_response(&resp);
        match status {
            403 => assert!(body.contains("image.load"), "{body}"),
            429 => assert!(body.contains("sockwarden: too many requests"), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
        seen.push(status);
        if status == 429 {
            break;
        }
    }
    assert!(seen.contains(&403) && seen.contains(&429), "{seen:?}");
    // The record counts the bytes read from the client.
    let r = wait_record(&audit_path(&proxy), |r| r["status"] == 429);
    assert_eq!(r["bytes_in"], 768 * 1024, "{r}");
    // The docker CLI streaming an archive prints the refusal (rate limit or policy, by the
    // time it asks), not a broken pipe.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big.tar");
    std::fs::write(&archive, vec![0u8; 768 * 1024]).unwrap();
    let out = proxy
        .docker()
        .run(&["load", "-i", &archive.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Error response from daemon: sockwarden:"),
        "{stderr}"
    );
}

#[test]
fn connection_limit_and_idle_timeout_never_cut_a_stream() {
    let proxy = start(&format!(
        r#"
[[client]]
name = "ci"
policy = "work"
uids = [{uid}]
[client.limits]
max_connections = 2
idle_timeout = "1s"

[policy.work]
profile = "ci"
"#,
        uid = current_uid()
    ));
    let cleanup = Cleanup::new();
    // One long-lived stream: `docker events` holds a connection, idle for longer than 1 s.
    let mut events = proxy.docker().stream(&[
        "events",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    thread::sleep(Duration::from_millis(500));
    // A second connection, kept alive.
    let mut second = KeepAlive::connect(&proxy.socket);
    assert_eq!(second.get("/_ping").0, 200);
    // A third one is over the limit: 429 in Docker's shape, then closed.
    let resp = http_request(&proxy.socket, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n", T).unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.contains("limited to 2 concurrent connections"),
        "{text}"
    );
    // The idle keep-alive connection is closed after its idle timeout...
    assert!(
        second.closed_within(Duration::from_secs(5)),
        "idle connection kept open"
    );
    // ... which frees its slot, while the events stream (idle for seconds now) lives on.
    thread::sleep(Duration::from_millis(1500));
    assert!(events.is_running(), "events stream was cut");
    let name = cleanup.container("audit-limit");
    proxy.docker().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "true",
    ]);
    events.wait_for(T, |l| l.contains("create") && l.contains(&name));
    let samples = scrape(&proxy);
    assert!(
        metric(
            &samples,
            "sockwarden_limited_total{client=\"ci\",limit=\"connections\"}"
        ) >= 1.0
    );
}

#[test]
fn syslog_sink_sends_one_datagram_per_record() {
    let dir = tempfile::Builder::new()
        .prefix("sws.")
        .tempdir_in("/tmp")
        .unwrap();
    let log_sock = dir.path().join("log.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&log_sock).unwrap();
    receiver.set_read_timeout(Some(T)).unwrap();
    let extra = ci_client("");
    let sink = log_sock.clone();
    let proxy = Proxy::start_config(move |d| {
        audit_config(d, &daemon_socket(), &extra).replace(
            &format!(
                "sink = \"file\"\npath = {}",
                toml_str(&d.join("audit.log").display().to_string())
            ),
            &format!(
                "sink = \"syslog\"\nsyslog_socket = {}",
                toml_str(&sink.display().to_string())
            ),
        )
    });
    proxy.docker().ok(&["ps"]);
    let mut buf = vec![0u8; 65536];
    let found = (0..20).find_map(|_| {
        let n = receiver.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        text.contains("\"container.list\"").then_some(text)
    });
    let text = found.expect("no syslog datagram for docker ps");
    let prefix = format!("<86>sockwarden[{}]: ", proxy.pid());
    assert!(text.starts_with(&prefix), "{text}");
    let record: Value = serde_json::from_str(&text[prefix.len()..]).unwrap();
    assert_eq!(record["client"], "ci");
    assert_eq!(record["decision"], "allow");
}

/// A stream that started under one configuration finishes under it: a reload that denies
/// `system.events` leaves a running `docker events` alone and refuses new ones.
#[test]
fn requests_in_flight_finish_under_the_policy_they_started_with() {
    let proxy = start(&ci_client(""));
    let audit = audit_path(&proxy);
    let cleanup = Cleanup::new();
    let mut events = proxy.docker().stream(&[
        "events",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    thread::sleep(Duration::from_millis(500));
    let text = audit_config(
        proxy.dir.path(),
        &daemon_socket(),
        &ci_client("deny = [\"system.events\"]"),
    );
    std::fs::write(&proxy.config, text).unwrap();
    proxy.signal("HUP");
    wait_record(&audit, |r| r["event"] == "reload" && r["result"] == "ok");
    let name = cleanup.container("audit-inflight");
    proxy.docker().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "true",
    ]);
    events.wait_for(T, |l| l.contains("create") && l.contains(&name));
    assert!(events.is_running());
    let out = proxy
        .docker()
        .run(&["events", "--since", "1s", "--until", "2s"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deny system.events"),
        "{out:?}"
    );
}

#[test]
fn request_heads_over_the_limit_are_refused() {
    let proxy = start(&format!(
        r#"
[limits]
max_header_bytes = 16384

[[client]]
name = "ci"
policy = "read-only"
uids = [{uid}]
"#,
        uid = current_uid()
    ));
    let big = "a".repeat(20_000);
    let resp = http_request(
        &proxy.socket,
        format!("GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        T,
    )
    .unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&resp[..resp.len().min(200)])
    );
    let ok = "a".repeat(8_000);
    let resp = http_request(
        &proxy.socket,
        format!("GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: {ok}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        T,
    )
    .unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 200"));
}

/// A policy's enforced defaults reach the daemon: a create that asks for no limits gets them,
/// one that sets its own keeps them, and the audit record says what was added.
#[test]
fn enforced_resource_defaults_reach_the_daemon() {
    let proxy = start(&format!(
        r#"
[[client]]
name = "ci"
policy = "work"
uids = [{uid}]

[policy.work]
profile = "ci"

[policy.work.container]
max_memory_bytes = 1073741824
default_memory_bytes = 268435456
default_nano_cpus = 500000000
default_pids = 256
"#,
        uid = current_uid()
    ));
    let cleanup = Cleanup::new();
    let docker = proxy.docker();
    let bare = cleanup.container("audit-defaults");
    docker.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &bare,
        &test_image(),
        "true",
    ]);
    let limits = docker.ok_str(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
        &bare,
    ]);
    assert_eq!(limits.trim(), "268435456 500000000 256");
    let r = wait_record(&audit_path(&proxy), |r| {
        op_is(r, "container.create") && r["objects"]["container"] == bare.as_str()
    });
    assert_eq!(
        r["defaults_applied"],
        serde_json::json!([
            "Memory=268435456",
            "NanoCpus=500000000",
            "PidsLimit=256",
            "IpcMode=private",
            "CgroupnsMode=private"
        ])
    );
    assert_eq!(r["settings"]["limits"]["memory"], 268435456);

    let own = cleanup.container("audit-own-limits");
    docker.ok(&[
        "create",
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpu-quota",
        "50000",
        "--name",
        &own,
        &test_image(),
        "true",
    ]);
    let limits = docker.ok_str(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
        &own,
    ]);
    assert_eq!(limits.trim(), "67108864 0 256");
    // Over the cap is still refused.
    let out = docker.run(&[
        "create",
        "--network",
        "none",
        "--memory",
        "2g",
        &test_image(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_memory_bytes"),
        "{out:?}"
    );
}
