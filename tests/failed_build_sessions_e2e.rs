//! A BuildKit build that fails before it begins ends its session, so that the CLI exits with
//! the refusal instead of waiting on a session nothing will use (Debian's CLI 20.10 leaves a
//! session open when its build is refused before the session has dialed; see
//! `forward::failed_builds`).
//!
//! Raw: a session opened before its build is refused is closed when the refusal is answered,
//! and one opened after is closed at once; the audit log says why (`"end":"build_failed"`);
//! a session whose build is still running, or that another session id names, stays open. With
//! the real CLI: BuildKit builds refused at `/build`, one after another, each exit with
//! sockwarden's message.
//!
//! Run as root: `bash scripts/test.sh failed_build_sessions_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use support::builds::{build_context, output_text, serial};
use support::{
    current_uid, daemon_socket, http_request, toml_str, wait_for, Proxy, DEBIAN_DOCKER_CLI,
};

/// How long a session may take to be closed (it is closed at once; this is the test's bound).
const CLOSE_WITHIN: Duration = Duration::from_secs(30);

fn start() -> Proxy {
    Proxy::start_config(|dir| {
        format!(
            r#"
[upstream]
socket = {up}
build_cgroup = "off"

[audit]
sink = "file"
path = {audit}

[[client]]
name = "main"
policy = "bk"
uids = [{uid}]

[[listen]]
unix = {sock}

[policy.bk]
allow = ["system.ping", "image.build", "build.session", "image.inspect"]
allow_dangerous = ["image.build", "build.session"]

[policy.bk.build]
allow_buildkit = true
"#,
            up = toml_str(&daemon_socket().display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            uid = current_uid(),
        )
    })
}

/// Opens `/session` announcing `id` and returns the connection once it switched protocols.
fn open_session(sock: &Path, id: &str) -> UnixStream {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST /v1.41/session HTTP/1.1\r\nHost: d\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\
         X-Docker-Expose-Session-Uuid: {id}\r\nX-Docker-Expose-Session-Name: t\r\n\
         X-Docker-Expose-Session-Sharedkey: k\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "session head cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "session: {head}");
    s
}

/// Whether the session connection is closed within `within` (whatever HTTP/2 bytes come first
/// are read and dropped).
fn closed_within(s: &mut UnixStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("session read: {e}"),
        }
    }
}

/// A BuildKit build request naming `session` that the policy refuses (host network).
fn refused_build(sock: &Path, session: &str) {
    let request = format!(
        "POST /v1.41/build?version=2&session={session}&networkmode=host&t=sw-fbs HTTP/1.1\r\n\
         Host: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let answer = http_request(sock, request.as_bytes(), Duration::from_secs(10)).unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 403"), "build: {text}");
}

/// Waits for the `n`th `session_close` record that says the session was ended for its failed
/// build.
fn wait_ended_records(proxy: &Proxy, n: usize) {
    let audit = proxy.dir.path().join("audit.log");
    let ended = || {
        support::audit_records(&audit)
            .into_iter()
            .filter(|r| r["event"] == "session_close" && r["end"] == "build_failed")
            .collect::<Vec<_>>()
    };
    let records = wait_for(Duration::from_secs(10), || {
        let records = ended();
        (records.len() >= n).then_some(records)
    })
    .unwrap_or_else(|| panic!("fewer than {n} build_failed records: {:?}", ended()));
    for record in records {
        assert_eq!(record["operation"], "build.session", "{record}");
    }
}

#[test]
fn a_refused_builds_session_is_closed_whenever_it_opens() {
    let _serial = serial();
    let proxy = start();
    // Opened first, then its build is refused.
    let mut early = open_session(&proxy.socket, "sw-fbs-early");
    // Another session of the same client, whose build is not refused, stays.
    let mut other = open_session(&proxy.socket, "sw-fbs-other");
    refused_build(&proxy.socket, "sw-fbs-early");
    assert!(
        closed_within(&mut early, CLOSE_WITHIN),
        "the session of a refused build stayed open"
    );
    wait_ended_records(&proxy, 1);
    // The build is refused first; its session dials afterwards (the CLI's race).
    refused_build(&proxy.socket, "sw-fbs-late");
    let mut late = open_session(&proxy.socket, "sw-fbs-late");
    assert!(
        closed_within(&mut late, CLOSE_WITHIN),
        "a session dialed after its build was refused stayed open"
    );
    wait_ended_records(&proxy, 2);
    // The other session is still open: nothing closed it (a short look is enough to tell
    // "still open" from "closed at once" above).
    assert!(
        !closed_within(&mut other, Duration::from_secs(1)),
        "a session no refused build names was closed"
    );
    refused_build(&proxy.socket, "sw-fbs-other");
    assert!(closed_within(&mut other, CLOSE_WITHIN));
}

#[test]
fn the_cli_exits_with_the_refusal_of_a_buildkit_build() {
    let _serial = serial();
    let proxy = start();
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    for n in 0..5 {
        let out = proxy
            .docker()
            .bin(DEBIAN_DOCKER_CLI)
            .env("DOCKER_BUILDKIT", "1")
            .timeout(Duration::from_secs(90))
            .try_run(&[
                "build",
                "--network",
                "host",
                "-t",
                "sw-fbs-cli",
                ctx.path().to_str().unwrap(),
            ])
            .unwrap_or_else(|e| panic!("build {n} did not exit: {e}"));
        let text = output_text(&out);
        assert!(
            !out.status.success() && text.contains("sockwarden") && text.contains("networkmode"),
            "build {n}: {text}"
        );
    }
}
