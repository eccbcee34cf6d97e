//! `sockwarden audit summarize` and `sockwarden audit suggest`, run as the built binary on the
//! audit logs under tests/fixtures/audit/: a CI run (pull, classic and BuildKit builds, creates
//! with binds, an attach session, a refused exec and a refused create, an unknown route, a 400,
//! a connection that matched no client, reloads, a truncated line) and a dashboard whose policy
//! runs in audit mode (would-deny records, a non-object line, a record with a wrong type).
//!
//! The suggested policy is proven by embedding it in a configuration, parsing it with
//! `Config::parse`, and replaying every request of the log through the same decision the proxy
//! makes (`policy::layer::authorize`, then inspection for what the log lets us rebuild).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use sockwarden::audit::report::{parse_record, Record};
use sockwarden::config::Config;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audit")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sockwarden"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn records(name: &str) -> Vec<Record> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter_map(|l| parse_record(l).ok())
        .collect()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request target of a record, rebuilt from its path and query (redacted values left out).
fn target(r: &Record) -> String {
    let query: Vec<String> = r
        .query
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k, v)))
        .filter(|(_, v)| *v != "<redacted>")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let path = r.path.clone().unwrap();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn config_with(policy: &str, client: &str, policy_name: &str) -> Config {
    let text = format!(
        "[upstream]\nsocket = \"/var/run/docker.sock\"\n\n[[listen]]\nunix = \"/run/sockwarden/test.sock\"\n\
         client = \"{client}\"\n\n[[client]]\nname = \"{client}\"\npolicy = \"{policy_name}\"\n\n{policy}"
    );
    Config::parse(&text, "suggested").unwrap_or_else(|e| panic!("{e}\n{policy}"))
}

/// Whether `config` lets `method target` with `body` through: the decision, then inspection.
fn decide(
    config: &Config,
    client: &str,
    method: &str,
    target: &str,
    body: &str,
) -> Result<(), String> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let authorized = sockwarden::policy::layer::authorize(
        &config.authority,
        Some(Arc::from(client)),
        &method,
        &uri,
        &HeaderMap::new(),
    )
    .map_err(|e| e.to_string())?;
    sockwarden::inspect::layer::check_request(&authorized, body.as_bytes())
        .map(drop)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// summarize

#[test]
fn summarize_text() {
    let out = stdout(&run(&[
        "audit",
        "summarize",
        &fixture("ci-run.jsonl"),
        &fixture("dashboard.jsonl"),
    ]));
    for want in [
        "Audit log: 2 files, 34 records, 3 unparseable lines",
        "requests    30 (20 allowed, 6 denied, 4 would-deny)",
        "sessions    2 opened, 2 closed",
        "uid 1001 /usr/bin/gitlab-runner (23)",
        "(no client)",
        "no rule allows exec.create",
        "violation: HostConfig.Binds[0]: host path /var/run/docker.sock is not allowed (bind_sources)",
        "would-deny  dash  container.logs",
        "opened by   build.session x1, container.attach x1",
        "error  SIGHUP: /etc/sockwarden/sockwarden.toml line 42",
        "ci-run.jsonl:21: not JSON",
        "dashboard.jsonl:3: not a JSON object (a JSON array)",
        "dashboard.jsonl:8: not an audit record",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The client table is aligned: every row of it has its counts in the same columns.
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "Clients")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    let col = rows[0].find("WOULD-DENY").unwrap() + "WOULD-DENY".len();
    for row in &rows[1..] {
        assert!(
            row[..col].ends_with(|c: char| c.is_ascii_digit()),
            "{row:?}"
        );
    }
}

#[test]
fn summarize_json_and_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockwarden"))
        .args([
            "audit",
            "summarize",
            "--json",
            "-",
            &fixture("dashboard.jsonl"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::fs::read(fixture("ci-run.jsonl")).unwrap();
    child.stdin.take().unwrap().write_all(&log).unwrap();
    let out = stdout(&child.wait_with_output().unwrap());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["files"][0], "-");
    assert_eq!(v["totals"]["requests"], 30);
    assert_eq!(v["totals"]["would_deny"], 4);
    assert_eq!(v["sessions"]["opened"], 2);
    assert_eq!(v["sessions"]["closed"], 2);
    assert_eq!(v["sessions"]["unclosed"].as_array().unwrap().len(), 0);
    assert_eq!(v["reloads"].as_array().unwrap().len(), 2);
    assert_eq!(v["reloads"][1]["result"], "error");
    assert_eq!(v["unparseable"].as_array().unwrap().len(), 3);
    assert_eq!(v["unparseable"][0]["file"], "-");
    assert_eq!(v["unparseable"][0]["line"], 21);
    let ci = v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "ci")
        .unwrap();
    assert_eq!(ci["requests"], 23);
    assert_eq!(ci["operations"]["container.create"]["denied"], 1);
    assert_eq!(ci["statuses"]["403"], 4);
    let refusal = v["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["operation"] == "unknown")
        .unwrap();
    assert_eq!(refusal["count"], 2);
    assert_eq!(refusal["first"], "2026-11-29T08:33:02.120000Z");
    assert_eq!(refusal["last"], "2026-11-29T08:33:03.120000Z");
    let rule = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "ci.container")
        .unwrap();
    assert_eq!(rule["denied"], 1);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["audit", "summarize"],
        vec!["audit", "summarize", "/nonexistent/audit.jsonl"],
        vec![
            "audit",
            "suggest",
            "/nonexistent/audit.jsonl",
            "--client",
            "ci",
        ],
        vec!["audit", "suggest", "x.jsonl"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = run(&[
        "audit",
        "suggest",
        "--client",
        "nobody",
        &fixture("ci-run.jsonl"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no requests from client \"nobody\""), "{err}");
    assert!(err.contains("clients seen: ci"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// suggest

/// The create body behind the fixture's allowed `ci-4711-test` create (its `settings`).
const TEST_CREATE: &str = r#"{"Image":"golang:1.23","User":"1000:1000","Cmd":["go","test","./..."],
  "HostConfig":{"Binds":["/srv/ci/cache/4711:/go/pkg/mod"],
    "Mounts":[{"Type":"bind","Source":"/etc/ssl/certs","Target":"/etc/ssl/certs","ReadOnly":true}],
    "Tmpfs":{"/tmp":""},"CapDrop":["ALL"],"NetworkMode":"ci-4711","IpcMode":"private",
    "SecurityOpt":["no-new-privileges"],"Memory":2147483648,"NanoCpus":2000000000,"PidsLimit":512,
    "PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}}}"#;

/// The fixture's `ci-4711-db` create.
const DB_CREATE: &str = r#"{"Image":"postgres:16","HostConfig":{"CapAdd":["NET_ADMIN"],"NetworkMode":"ci-4711",
  "Mounts":[{"Type":"volume","Source":"ci-4711-pgdata","Target":"/var/lib/postgresql/data"}],
  "Memory":1073741824,"NanoCpus":1000000000,"PidsLimit":256}}"#;

/// The fixture's refused `ci-4711-dind` create (docker.sock bind).
const DIND_CREATE: &str = r#"{"Image":"docker:27-dind","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"],"NetworkMode":"ci-4711"}}"#;

#[test]
fn suggested_policy_allows_every_request_seen_and_nothing_else() {
    let ci_log = fixture("ci-run.jsonl");
    let out = stdout(&run(&[
        "audit",
        "suggest",
        "--client",
        "ci",
        "--policy-name",
        "ci-suggested",
        &ci_log,
        &fixture("dashboard.jsonl"),
    ]));
    assert!(out.contains("[policy.ci-suggested]"), "{out}");
    assert!(out.contains("# Checked: parses as a policy"), "{out}");
    assert!(!out.contains("STILL REFUSED"), "{out}");
    let config = config_with(&out, "ci", "ci-suggested");

    // Every request of the client that has an operation: allowed, denied and would-deny alike.
    let mut replayed = 0;
    for r in records("ci-run.jsonl") {
        if !r.is_request() || r.client.as_deref() != Some("ci") || r.operation.is_none() {
            continue;
        }
        let method = r.method.clone().unwrap();
        let target = target(&r);
        // Bodies are not in the log: creates are replayed with their bodies below; the rest
        // with an empty body (build contexts and attach streams are not inspected).
        let body = match r.operation.as_deref() {
            Some("container.create" | "network.create" | "exec.create") => continue,
            _ => "",
        };
        decide(&config, "ci", &method, &target, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{out}"));
        replayed += 1;
    }
    assert_eq!(replayed, 17);
    for body in [TEST_CREATE, DB_CREATE, DIND_CREATE] {
        decide(
            &config,
            "ci",
            "POST",
            "/v1.43/containers/create?name=ci-4712-x",
            body,
        )
        .unwrap_or_else(|e| panic!("{body}: {e}\n{out}"));
    }
    decide(
        &config,
        "ci",
        "POST",
        "/v1.43/networks/create",
        r#"{"Name":"ci-4712","Driver":"bridge"}"#,
    )
    .unwrap();
    decide(
        &config,
        "ci",
        "POST",
        "/containers/ci-4711-db/exec",
        r#"{"Cmd":["psql"]}"#,
    )
    .unwrap();

    // Never seen: still refused, by rule or by inspection.
    for (method, target, body) in [
        ("GET", "/containers/web/export", ""),
        ("POST", "/exec/abc/start", ""),
        ("PUT", "/containers/web/archive?path=/", ""),
        ("POST", "/images/registry.example.com/team/app/push", ""),
        ("POST", "/libpod/_ping", ""),
        ("GET", "/libpod/containers/json", ""),
        ("POST", "/volumes/create", "{}"),
        ("GET", "/containers/json", ""),
        (
            "POST",
            "/containers/create",
            r#"{"Image":"golang:1.23","HostConfig":{"Privileged":true}}"#,
        ),
        (
            "POST",
            "/containers/create",
            r#"{"Image":"golang:1.23","HostConfig":{"Binds":["/etc:/host-etc:ro"]}}"#,
        ),
        (
            "POST",
            "/containers/create",
            r#"{"Image":"golang:1.23","HostConfig":{"NetworkMode":"host"}}"#,
        ),
        (
            "POST",
            "/containers/create",
            r#"{"Image":"golang:1.23","HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#,
        ),
        (
            "POST",
            "/containers/ci-4711-db/exec",
            r#"{"Cmd":["sh"],"Privileged":true}"#,
        ),
        ("POST", "/build?t=registry.example.com/other/app:1", ""),
        ("POST", "/build?remote=https://example.com/x.git", ""),
    ] {
        match decide(&config, "ci", method, target, body) {
            Err(err) => assert!(err.contains("refused"), "{method} {target} {body}: {err}"),
            Ok(()) => panic!("{method} {target} {body} is allowed:\n{out}"),
        }
    }
    // The refused create recorded no settings, so its image is unknown: no `images` list (it
    // would refuse that create), and the suggestion says so.
    assert!(
        out.contains("# NOTE: no `images` list: a create has no recorded settings"),
        "{out}"
    );
    assert!(!out.contains("images = ["), "{out}");
}

#[test]
fn suggested_policy_for_the_dashboard() {
    let out = stdout(&run(&[
        "audit",
        "suggest",
        "--client",
        "dash",
        &fixture("dashboard.jsonl"),
    ]));
    let config = config_with(&out, "dash", "dash");
    let doc: toml::Table = out.parse().unwrap();
    let policy = doc["policy"]["dash"].as_table().unwrap();
    assert_eq!(
        policy["allow"].as_array().unwrap(),
        &vec![
            toml::Value::String("container.list".into()),
            toml::Value::String("container.logs".into()),
            toml::Value::String("system.events".into()),
        ]
    );
    assert!(policy["allow_dangerous"].as_array().unwrap().is_empty());
    assert!(!policy.contains_key("container"), "{out}");
    assert!(out.contains("# NOTE: 2 unparseable lines skipped"), "{out}");
    for r in records("dashboard.jsonl") {
        if r.client.as_deref() == Some("dash") && r.operation.is_some() {
            decide(
                &config,
                "dash",
                r.method.as_deref().unwrap(),
                &target(&r),
                "",
            )
            .unwrap();
        }
    }
    assert!(decide(&config, "dash", "GET", "/containers/web/archive?path=/", "").is_err());
    assert!(decide(&config, "dash", "POST", "/containers/web/stop", "").is_err());
}
