//! Identity with real peers: processes running as other users (through `setpriv`, no account
//! needed), supplementary groups, and TCP peers, each attributed to the right client and
//! decided by that client's policy, end to end against the real daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use support::{daemon_socket, toml_str, Proxy};

/// Runs curl against the proxy's unix socket as `uid` (with supplementary `groups`), returning
/// (HTTP status, body).
fn curl_as(uid: u32, groups: &[u32], socket: &Path, method: &str, path: &str) -> (u16, String) {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.args([
        "curl",
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .arg("--unix-socket")
    .arg(socket)
    .arg(format!("http://docker{path}"));
    if method == "POST" {
        cmd.args(["-H", "Content-Type: application/json", "-d", "{}"]);
    }
    parse_curl(cmd.output().expect("run setpriv curl"))
}

fn curl_tcp(addr: &str, method: &str, path: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg(format!("http://{addr}{path}"));
    if method == "POST" {
        cmd.args(["-H", "Content-Type: application/json", "-d", "{}"]);
    }
    parse_curl(cmd.output().expect("run curl"))
}

fn parse_curl(out: std::process::Output) -> (u16, String) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn proxy(extra: impl FnOnce(&Path) -> String) -> Proxy {
    Proxy::start_config(|dir| {
        format!(
            "[upstream]\nsocket = {}\n{}",
            toml_str(&daemon_socket().display().to_string()),
            extra(dir)
        )
    })
}

#[test]
fn unix_peers_are_told_apart_by_uid_and_groups() {
    let p = proxy(|dir| {
        format!(
            r#"
[[client]]
name = "root"
policy = "allow-all"
uids = [0]

[[client]]
name = "alice"
policy = "read-only"
uids = [12345]

[[client]]
name = "builders"
policy = "ci"
gids = [4242]

[[listen]]
unix = {}
mode = "0666"
"#,
            toml_str(&dir.join("proxy.sock").display().to_string())
        )
    });
    let sock = p.socket.clone();
    // alice: read-only.
    let (status, _) = curl_as(12345, &[], &sock, "GET", "/v1.41/containers/json");
    assert_eq!(status, 200);
    let (status, body) = curl_as(12345, &[], &sock, "POST", "/v1.41/containers/create");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy read-only"), "{body}");
    // An unknown uid, no fallback: nothing at all.
    let (status, body) = curl_as(23456, &[], &sock, "GET", "/_ping");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("matches no configured client"), "{body}");
    // The same uid with a supplementary group that a client names: that client's policy.
    let (status, body) = curl_as(23456, &[4242], &sock, "POST", "/v1.41/containers/create");
    assert_ne!(status, 403, "group member refused: {body}");
    let (status, body) = curl_as(23456, &[4242], &sock, "GET", "/v1.41/containers/x/export");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy ci"), "{body}");
    // root (the test itself) through the docker CLI: allow-all.
    p.docker().ok(&["ps"]);
    // The log names the client each connection was attributed to.
    let log = p.log_text();
    assert!(log.contains("alice") && log.contains("builders"), "{log}");
}

#[test]
fn fixed_client_and_fallback_on_listeners() {
    let p = proxy(|dir| {
        format!(
            r#"
[[client]]
name = "dash"
policy = "read-only"

[[client]]
name = "guest"
policy = "read-only"

[[client]]
name = "admin"
policy = "allow-all"
uids = [0]

[[listen]]
unix = {}
mode = "0666"
fallback = "guest"

[[listen]]
unix = {}
mode = "0666"
client = "dash"
"#,
            toml_str(&dir.join("proxy.sock").display().to_string()),
            toml_str(&dir.join("dash.sock").display().to_string()),
        )
    });
    let dash = p.dir.path().join("dash.sock");
    // root on the fixed-client socket is "dash", not "admin": read-only.
    let (status, body) = curl_as(0, &[], &dash, "POST", "/v1.41/containers/create");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy read-only"), "{body}");
    // An unknown uid on the main socket falls back to guest.
    let (status, _) = curl_as(23456, &[], &p.socket, "GET", "/v1.41/containers/json");
    assert_eq!(status, 200);
}

#[test]
fn tcp_peers_by_source_address() {
    let port = free_port();
    let port2 = free_port();
    let p = proxy(|dir| {
        format!(
            r#"
[[client]]
name = "local"
policy = "read-only"
sources = ["127.0.0.0/8"]

[[client]]
name = "tester"
policy = "allow-all"
uids = [0]

[[listen]]
unix = {}

[[listen]]
tcp = "127.0.0.1:{port}"

[[listen]]
tcp = "127.0.0.1:{port2}"
client = "tester"
"#,
            toml_str(&dir.join("proxy.sock").display().to_string()),
        )
    });
    let addr = format!("127.0.0.1:{port}");
    let (status, _) = curl_tcp(&addr, "GET", "/v1.41/containers/json");
    assert_eq!(status, 200);
    let (status, body) = curl_tcp(&addr, "POST", "/v1.41/containers/create");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy read-only"), "{body}");
    // The docker CLI over TCP.
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("tcp://{addr}"))
        .env("DOCKER_CONFIG", support::empty_docker_config())
        .args(["run", "--rm", "busybox-never-pulled"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sockwarden:") && err.contains("refused"),
        "{err}"
    );
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port2}"))
        .env("DOCKER_CONFIG", support::empty_docker_config())
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.41");
    drop(p);
}
