//! Diagnostics can be tied to their audit record: every log line written while serving a
//! connection carries the connection's span (listener, peer, client), every line about a request
//! its request span (the audit record's id, the operation), and a hijacked session keeps both.
//! Through a real sockwarden (JSON log format) and the real daemon and CLI.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{current_uid, daemon_socket, http_request, test_image, toml_str, wait_for, Proxy};

const T: Duration = Duration::from_secs(20);

fn config(dir: &Path) -> String {
    format!(
        r#"
[log]
format = "json"

[upstream]
socket = {up}

[audit]
sink = "file"
path = {audit}

[[listen]]
unix = {sock}

[[client]]
name = "builder"
policy = "p"
uids = [{uid}]

[policy.p]
profile = "allow-all"
deny = ["system.info"]
"#,
        up = toml_str(&daemon_socket().display().to_string()),
        audit = toml_str(&dir.join("audit.log").display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        uid = current_uid(),
    )
}

/// The JSON log lines the proxy wrote so far (stdout and stderr share the file).
fn log_lines(proxy: &Proxy) -> Vec<Value> {
    proxy
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn audit_records(proxy: &Proxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The span named `name` among a log line's spans, if it has one.
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

fn header(response: &str, name: &str) -> Option<String> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Sends `raw`, which sockwarden refuses (403), and returns the refusal's request id.
fn refused(proxy: &Proxy, raw: &[u8]) -> String {
    let answer = http_request(&proxy.socket, raw, T).unwrap_or_else(|e| panic!("request: {e}"));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    header(&answer, "x-sockwarden-request-id")
        .unwrap_or_else(|| panic!("no request id header: {answer}"))
}

#[test]
fn diagnostics_carry_the_connection_and_the_request_id() {
    let proxy = Proxy::start_config(config);

    // A refusal: sockwarden's own debug line about it names the request and its operation.
    let id = refused(
        &proxy,
        b"GET /v1.41/info HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    );
    let line = wait_for(T, || {
        log_lines(&proxy).into_iter().find(|l| {
            l["message"] == "request answered by sockwarden"
                && span(l, "request").is_some_and(|s| s["id"] == id.as_str())
        })
    })
    .unwrap_or_else(|| panic!("no diagnostic for request {id}:\n{}", proxy.log_text()));
    let request = span(&line, "request").unwrap();
    assert_eq!(request["op"], "system.info", "{line}");
    let conn = span(&line, "conn").expect("connection span");
    assert_eq!(conn["client"], "builder", "{line}");
    assert!(
        conn["listener"].is_string() && conn["peer"].is_string(),
        "{line}"
    );
    let record = wait_for(T, || {
        audit_records(&proxy)
            .into_iter()
            .find(|r| r["id"] == id.as_str())
    })
    .expect("audit record with the same id");
    assert_eq!(record["operation"], "system.info", "{record}");
    assert_eq!(record["decision"], "deny", "{record}");

    // A hijacked session (docker run -i attaches): the relay's closing line keeps the
    // attach request's id and operation, and the connection.
    let out = proxy.docker().stdin(b"hello\n".to_vec()).run(&[
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        &test_image(),
        "cat",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let ended = wait_for(T, || {
        log_lines(&proxy)
            .into_iter()
            .find(|l| l["message"] == "hijacked session ended")
    })
    .unwrap_or_else(|| panic!("no session line:\n{}", proxy.log_text()));
    let request = span(&ended, "request").expect("request span on the session");
    assert_eq!(request["op"], "container.attach", "{ended}");
    assert!(span(&ended, "hijack").is_some(), "{ended}");
    assert_eq!(span(&ended, "conn").unwrap()["client"], "builder");
    let session_id = request["id"].as_str().unwrap().to_owned();
    let opened = wait_for(T, || {
        audit_records(&proxy)
            .into_iter()
            .find(|r| r["id"] == session_id.as_str() && r["event"] == "session_open")
    });
    assert!(opened.is_some(), "no session_open record {session_id}");
}

/// At the default level (no `RUST_LOG`), where a request's span is made only for the lines
/// that need it (`logging::request`), those lines read as at debug level: a refusal logged at
/// warn level and a hijacked session's line both carry the connection's and the request's
/// spans, with the request's audit id.
#[test]
fn at_the_default_level_request_lines_still_carry_their_request() {
    let mut proxy = Proxy::start_launched(
        |_| vec!["env".into(), "-u".into(), "RUST_LOG".into()],
        |dir| {
            config(dir).replace(
                r#"deny = ["system.info"]"#,
                "deny = [\"system.info\", \"build.session\"]\n\n[server]\nshutdown_grace = \"1s\"",
            )
        },
        &[],
    );

    // A refused h2c upgrade: the client sees only the status, the reason goes to the log.
    let id = refused(
        &proxy,
        b"POST /v1.41/session HTTP/1.1\r\nHost: d\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
          X-Docker-Expose-Session-Uuid: x\r\n\r\n",
    );
    let line = wait_for(T, || {
        log_lines(&proxy).into_iter().find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("h2c upgrade refused"))
        })
    })
    .unwrap_or_else(|| panic!("no h2c line:\n{}", proxy.log_text()));
    assert_eq!(line["level"], "WARN", "{line}");
    let request = span(&line, "request").unwrap_or_else(|| panic!("no request span: {line}"));
    assert_eq!(request["id"], id.as_str(), "{line}");
    assert_eq!(request["op"], "build.session", "{line}");
    assert_eq!(span(&line, "conn").unwrap()["client"], "builder", "{line}");

    // A hijacked session cut by the shutdown: its line names the attach request.
    let run = proxy
        .docker()
        .stdin_keep_open(b"hello\n".to_vec())
        .timeout(Duration::from_secs(60))
        .spawn(&[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            &test_image(),
            "cat",
        ]);
    let opened = support::wait_audit_record(&proxy.dir.path().join("audit.log"), T, |r| {
        r["event"] == "session_open" && r["operation"] == "container.attach"
    });
    proxy.terminate(T);
    let _ = run.join();
    let lines = log_lines(&proxy);
    let closed = lines
        .iter()
        .find(|l| l["message"] == "hijacked session closed by shutdown")
        .unwrap_or_else(|| panic!("no shutdown line:\n{}", proxy.log_text()));
    let request = span(closed, "request").unwrap_or_else(|| panic!("no request span: {closed}"));
    assert_eq!(request["id"], opened["id"], "{closed}");
    assert_eq!(request["op"], "container.attach", "{closed}");
    assert!(span(closed, "hijack").is_some(), "{closed}");
    assert_eq!(
        span(closed, "conn").unwrap()["client"],
        "builder",
        "{closed}"
    );
    // The level really was the default: no debug line anywhere.
    assert!(
        lines.iter().all(|l| l["level"] != "DEBUG"),
        "{}",
        proxy.log_text()
    );
}
