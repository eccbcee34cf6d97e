//! The adversarial suite: a restricted client tries every known way around its policy, end to
//! end through sockwarden against the real daemon. Each attempt must be refused with a 4xx
//! **and** leave the daemon's state unchanged (no container, volume, network, exec, plugin or
//! service created, no container renamed). The same number of legitimate requests must still
//! work.
//!
//! Policy under test: the built-in `ci` profile plus exec (acknowledged), with the default,
//! safe container rules (no privileges, no added capabilities, no host paths, no host
//! namespaces or devices). The service and plugin tests use the same profile with swarm
//! services and plugin pulls acknowledged, so that those requests reach body inspection.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use support::{current_uid, daemon_socket, http_request, test_image, Cleanup, Docker, Proxy};

const T: Duration = Duration::from_secs(20);

/// The tests compare the daemon's whole state before and after each attempt, so they must not
/// change it concurrently: each holds this lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn restricted_proxy() -> Proxy {
    let uid = current_uid();
    Proxy::start_with(
        &format!(
            r#"
[[client]]
name = "ci"
policy = "ci-exec"
uids = [{uid}]

[policy.ci-exec]
profile = "ci"
allow = ["exec.create", "exec.start", "exec.inspect", "container.rename"]
allow_dangerous = ["exec.create", "exec.start"]
"#
        ),
        &daemon_socket(),
    )
}

/// What the daemon holds; compared before and after each attack.
#[derive(Debug, PartialEq, Eq)]
struct State {
    containers: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
    execs: Vec<String>,
    plugins: Vec<String>,
    /// The answer to `GET /services` (the test daemon is not a swarm manager: always its 503).
    services: String,
}

fn get_json(path: &str) -> serde_json::Value {
    let req = format!("GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    let resp = http_request(&daemon_socket(), req.as_bytes(), T).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked or not, the JSON document is the part between the first '[' or '{' and the end.
    let start = body.find(['[', '{']).unwrap_or(0);
    let end = body.rfind([']', '}']).map(|e| e + 1).unwrap_or(body.len());
    serde_json::from_str(&body[start..end]).unwrap_or(serde_json::Value::Null)
}

fn state() -> State {
    let mut containers: Vec<String> = Vec::new();
    let mut execs = Vec::new();
    if let Some(list) = get_json("/v1.41/containers/json?all=1").as_array() {
        for c in list {
            let id = c["Id"].as_str().unwrap_or_default().to_owned();
            let names = c["Names"].to_string();
            let inspect = get_json(&format!("/v1.41/containers/{id}/json"));
            if let Some(ids) = inspect["ExecIDs"].as_array() {
                execs.extend(ids.iter().map(|e| e.to_string()));
            }
            containers.push(format!("{id} {names}"));
        }
    }
    let volumes = get_json("/v1.41/volumes")["Volumes"]
        .as_array()
        .map(|v| v.iter().map(|v| v["Name"].to_string()).collect())
        .unwrap_or_default();
    let plugins = get_json("/v1.41/plugins")
        .as_array()
        .map(|v| v.iter().map(|p| p["Name"].to_string()).collect())
        .unwrap_or_default();
    let services = get_json("/v1.41/services").to_string();
    let networks = get_json("/v1.41/networks")
        .as_array()
        .map(|v| v.iter().map(|n| n["Id"].to_string()).collect())
        .unwrap_or_default();
    containers.sort();
    execs.sort();
    let (mut volumes, mut networks): (Vec<String>, Vec<String>) = (volumes, networks);
    volumes.sort();
    networks.sort();
    State {
        containers,
        volumes,
        networks,
        execs,
        plugins,
        services,
    }
}

/// Sends raw bytes through the proxy and returns every response status seen.
fn statuses(proxy: &Proxy, raw: &[u8]) -> Vec<u16> {
    let resp = http_request(&proxy.socket, raw, T).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text[i + 9..].get(..3).and_then(|s| s.parse().ok()))
        .collect()
}

fn post_json(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Runs one attack: every response must be a 4xx and the daemon's state must not change.
fn assert_refused(proxy: &Proxy, what: &str, raw: &[u8]) {
    let before = state();
    let seen = statuses(proxy, raw);
    assert!(!seen.is_empty(), "{what}: no response");
    let last = *seen.last().unwrap();
    assert!(
        (400..500).contains(&last),
        "{what}: expected a refusal, got statuses {seen:?}\n{}",
        proxy
            .log_text()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let after = state();
    assert_eq!(before, after, "{what}: the daemon's state changed");
}

fn create_body(host_config: &str) -> String {
    format!(
        r#"{{"Image":"{}","Cmd":["true"],"HostConfig":{{"NetworkMode":"none"{host_config}}}}}"#,
        test_image()
    )
}

/// A running container owned by the test, for exec and rename attacks.
fn running_container(cleanup: &Cleanup) -> String {
    let name = cleanup.container("target");
    Docker::new(&daemon_socket()).ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "sleep",
        "600",
    ]);
    name
}

// === path tricks ===

#[test]
fn path_tricks_cannot_reach_denied_operations() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let cleanup = Cleanup::new();
    let c = running_container(&cleanup);
    let attempts = [
        format!("/containers/{c}/export"),
        format!("/v1.41/containers/{c}/export"),
        format!("/v01.041/containers/{c}/export"),
        format!("/v1.41.0/containers/{c}/export"),
        format!("/containers/{c}/./export"),
        format!("/containers/{c}/../{c}/export"),
        format!("//containers/{c}/export"),
        format!("/containers//{c}/export"),
        format!("/containers/{c}/%65xport"),
        format!("/containers/{c}%2Fexport"),
        format!("/containers/{c}/export/"),
        format!("/containers/{c}/export%00"),
        format!("/containers/{c}/export\\"),
        format!("/Containers/{c}/export"),
        format!("/containers/{c}/archive?path=/etc/passwd"),
        format!("/containers/{c}/archive?path=%2Fetc%2Fpasswd"),
        "/debug/pprof/".to_owned(),
        "/debug/vars".to_owned(),
        "/v1.41/debug/vars".to_owned(),
        "/v1.23/containers/json".to_owned(),
        "/v1.11/containers/json".to_owned(),
        "/containers/json?all=1;x=y".to_owned(),
        format!("/containers/{c}/archive%3Fpath=/etc/passwd"),
        format!("/images/{}/get", test_image()),
        "/images/get?names=sw-busybox".to_owned(),
        "/swarm/unlockkey".to_owned(),
    ];
    for path in &attempts {
        assert_refused(&proxy, path, &get(path));
    }
    // HEAD on the archive, and a long path.
    assert_refused(
        &proxy,
        "HEAD archive",
        format!("HEAD /containers/{c}/archive?path=/etc HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let long = format!("/containers/{}/json", "a".repeat(5000));
    assert_refused(&proxy, "over-long path", &get(&long));
}

// === framing tricks ===

#[test]
fn framing_tricks_cannot_smuggle_a_request() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let privileged = create_body(r#","Privileged":true"#);
    // Content-Length and Transfer-Encoding together.
    let both = format!(
        "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{privileged}\r\n0\r\n\r\n",
        privileged.len()
    );
    assert_refused(&proxy, "CL+TE", both.as_bytes());
    // The same shapes around a body that passes inspection: hyper alone would read them one way
    // and forward a clean create; sockwarden refuses both with 400 and nothing reaches the daemon.
    let clean = create_body("");
    let n = clean.len();
    let ambiguous = [
        (
            "Content-Length twice",
            format!("POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {n}\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n{clean}"),
        ),
        (
            "Content-Length and Transfer-Encoding",
            format!("POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {n}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{n:x}\r\n{clean}\r\n0\r\n\r\n"),
        ),
    ];
    for (what, raw) in &ambiguous {
        let before = state();
        let (status, body) = last_response(&proxy, raw.as_bytes());
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body.contains("sockwarden:") && body.contains("two ways"),
            "{what}: {body}"
        );
        assert_eq!(before, state(), "{what}: the daemon's state changed");
    }
    // Unambiguous, the same body creates a container: the refusals above are about framing.
    let cleanup = Cleanup::new();
    let name = cleanup.container("framing-ok");
    let (status, body) = last_response(
        &proxy,
        &post_json(&format!("/containers/create?name={name}"), &clean),
    );
    assert_eq!(status, 201, "{body}");
    // A refused request pipelined after an allowed one.
    let mut pipelined = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n".to_vec();
    pipelined.extend(post_json("/containers/create", &privileged));
    let before = state();
    let seen = statuses(&proxy, &pipelined);
    assert_eq!(seen.first(), Some(&200), "{seen:?}");
    assert!(seen.len() == 2 && (400..500).contains(&seen[1]), "{seen:?}");
    assert_eq!(before, state());
    // An upgrade on a non-hijack endpoint, then raw bytes that would be a request.
    let mut upgrade =
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
    upgrade.extend(post_json("/containers/create", &privileged));
    let before = state();
    let seen = statuses(&proxy, &upgrade);
    assert_eq!(seen.first(), Some(&200), "no 101 on /_ping: {seen:?}");
    assert!(seen.iter().all(|s| *s != 201), "{seen:?}");
    assert_eq!(before, state());
    // A denied operation pipelined after an allowed one.
    let mut export = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n".to_vec();
    export.extend(get("/containers/x/export"));
    let seen = statuses(&proxy, &export);
    assert_eq!(seen, vec![200, 403]);
    // A form body that would override the query (rename?name=allowed, body name=evil).
    let cleanup = Cleanup::new();
    let c = running_container(&cleanup);
    let form = format!(
        "POST /containers/{c}/rename?name={c}-ok HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\nConnection: close\r\n\r\nname=evil-sw1"
    );
    assert_refused(&proxy, "form body", form.as_bytes());
    // A body where none belongs: start with a legacy HostConfig.
    let start = post_json(
        &format!("/containers/{c}/start"),
        r#"{"Privileged":true,"Binds":["/:/host"]}"#,
    );
    assert_refused(&proxy, "start with a body", &start);
    let start_old = post_json(
        &format!("/v1.23/containers/{c}/start"),
        r#"{"Privileged":true,"Binds":["/:/host"]}"#,
    );
    assert_refused(&proxy, "start with a body on API 1.23", &start_old);
    // A body where none belongs, with a length or chunked.
    let stop = post_json(&format!("/containers/{c}/stop"), r#"{"t":0}"#);
    assert_refused(&proxy, "stop with a body", &stop);
    let chunked_get = format!(
        "GET /containers/{c}/json HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
    );
    assert_refused(&proxy, "GET with a chunked body", chunked_get.as_bytes());
}

// === JSON tricks ===

#[test]
fn json_tricks_cannot_get_a_privileged_container() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let image = test_image();
    let bodies = [
        create_body(r#","Privileged":true"#),
        create_body(r#","privileged":true"#),
        create_body(r#","PRIVILEGED":true"#),
        create_body(r#","\u0050rivileged":true"#),
        create_body(r#","Privileged":true,"Privileged":false"#),
        create_body(r#","Privileged":false,"Privileged":true"#),
        create_body(r#","Privileged":"true""#),
        create_body(r#","Privileged":1"#),
        create_body(r#","CapAdd":"SYS_ADMIN""#),
        create_body(r#","CapAdd":["sys_admin"]"#),
        create_body(r#","CapAdd":["CAP_SYS_ADMIN"]"#),
        create_body(r#","CapAdd":["ALL"]"#),
        create_body(r#","Binds":["/:/host"]"#),
        create_body(r#","Bind\u017f":["/:/host"]"#),
        create_body(r#","Binds":["/var/run/docker.sock:/s"]"#),
        create_body(r#","Binds":["//etc:/x"]"#),
        create_body(r#","Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]"#),
        create_body(
            r#","Mounts":[{"Type":"volume","Source":"swv","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]"#,
        ),
        create_body(r#","VolumesFrom":["other"]"#),
        create_body(r#","PidMode":"host""#),
        create_body(r#","IpcMode":"host""#),
        create_body(r#","UTSMode":"host""#),
        create_body(r#","UsernsMode":"host""#),
        create_body(r#","CgroupnsMode":"host""#),
        create_body(
            r#","Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]"#,
        ),
        create_body(r#","DeviceCgroupRules":["c *:* rwm"]"#),
        create_body(r#","SecurityOpt":["seccomp=unconfined"]"#),
        create_body(r#","SecurityOpt":["apparmor:unconfined"]"#),
        create_body(r#","SecurityOpt":["label=disable"]"#),
        create_body(r#","Sysctls":{"kernel.core_pattern":"|/x"}"#),
        create_body(r#","MaskedPaths":[]"#),
        create_body(r#","ReadonlyPaths":[]"#),
        create_body(r#","CgroupParent":"/""#),
        create_body(r#","Runtime":"runc-debug""#),
        // HostConfig fields at the top level (read by daemons up to 26 when HostConfig is absent).
        format!(r#"{{"Image":"{image}","Cmd":["true"],"Privileged":true}}"#),
        format!(r#"{{"Image":"{image}","Cmd":["true"],"HostConfig":null,"Binds":["/:/host"]}}"#),
        format!(
            r#"{{"image":"{image}","cmd":["true"],"hostconfig":{{"privileged":true,"NETWORKMODE":"none"}}}}"#
        ),
        // Duplicate objects merge in Go.
        format!(
            r#"{{"Image":"{image}","HostConfig":{{"Privileged":true}},"HostConfig":{{"NetworkMode":"none"}}}}"#
        ),
        // Trailing data (ignored by 20.10).
        format!(
            r#"{}{{"HostConfig":{{"Privileged":true}}}}"#,
            create_body("")
        ),
        // Network mode host and another container's namespace.
        format!(r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"host"}}}}"#),
        format!(r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"container:x"}}}}"#),
        // Deep nesting and broken JSON.
        format!(
            r#"{{"Image":"{image}","Labels":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        ),
        r#"{"Image": "#.to_owned(),
    ];
    for body in &bodies {
        assert_refused(&proxy, body, &post_json("/v1.41/containers/create", body));
    }
    // The same privileged body as text/plain is refused too, not passed uninspected.
    let plain = create_body(r#","Privileged":true"#);
    let raw = format!(
        "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{plain}",
        plain.len()
    );
    assert_refused(&proxy, "text/plain create", raw.as_bytes());
    // And chunked, in pieces.
    let chunked = format!(
        "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        &plain[..5],
        plain.len() - 5,
        &plain[5..]
    );
    assert_refused(&proxy, "chunked create", chunked.as_bytes());
}

// === indirect routes to the host ===

#[test]
fn indirect_routes_to_the_host_are_refused() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let cleanup = Cleanup::new();
    let c = running_container(&cleanup);
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        (
            "privileged exec in an allowed container",
            post_json(
                &format!("/containers/{c}/exec"),
                r#"{"Cmd":["id"],"Privileged":true,"AttachStdout":true}"#,
            ),
        ),
        (
            "bind-mount volume via driver options",
            post_json(
                "/volumes/create",
                r#"{"Name":"sw-evil","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"}}"#,
            ),
        ),
        (
            "volume with a plugin driver",
            post_json("/volumes/create", r#"{"Name":"sw-evil2","Driver":"rexray"}"#),
        ),
        (
            "service with a bind mount",
            post_json(
                "/services/create",
                r#"{"Name":"x","TaskTemplate":{"ContainerSpec":{"Image":"x","Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}}"#,
            ),
        ),
        (
            "plugin install",
            post_json("/plugins/pull?remote=evil/plugin", r#"[{"Name":"network","Value":["host"]}]"#),
        ),
        (
            "build with host networking",
            b"POST /build?networkmode=host&t=x HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "build from a remote URL",
            b"POST /build?remote=http://127.0.0.1:1/x.tar HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "macvlan network",
            post_json("/networks/create", r#"{"Name":"sw-evil","Driver":"macvlan","Options":{"parent":"eth0"}}"#),
        ),
        (
            "BuildKit session tunnel",
            b"POST /session HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        (
            "image load",
            b"POST /images/load HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "archive upload",
            format!("PUT /containers/{c}/archive?path=/ HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(),
        ),
        (
            "container update to unlimited",
            post_json(&format!("/containers/{c}/update"), r#"{"Memory":0,"PidsLimit":-1}"#),
        ),
        (
            "swarm init",
            post_json("/swarm/init", r#"{"ListenAddr":"127.0.0.1:2377"}"#),
        ),
    ];
    for (what, raw) in &attempts {
        assert_refused(&proxy, what, raw);
    }
}

// === what must still work ===

#[test]
fn legitimate_requests_still_work() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let cleanup = Cleanup::new();
    let cli = proxy.docker();
    let image = test_image();
    // run --rm with output and exit code.
    let name = cleanup.container("legit");
    let out = cli.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo ok; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    // run -i through attach.
    let out = proxy.docker().stdin(b"abc".to_vec()).run(&[
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        &image,
        "cat",
    ]);
    assert_eq!(
        out.stdout,
        b"abc",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Explicit safe settings pass the inspection.
    let c = cleanup.container("safe");
    cli.ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--read-only",
        "--security-opt",
        "no-new-privileges",
        "--memory",
        "64m",
        "--pids-limit",
        "64",
        "--tmpfs",
        "/scratch",
        "-e",
        "A=B",
        "--label",
        "x=y",
        &image,
        "sleep",
        "600",
    ]);
    // exec without privileges is allowed by this policy.
    assert_eq!(cli.ok_str(&["exec", &c, "echo", "in"]).trim(), "in");
    // Read-only operations.
    assert!(cli.ok_str(&["ps", "--format", "{{.Names}}"]).contains(&c));
    cli.ok(&["inspect", &c]);
    cli.ok(&["logs", &c]);
    cli.ok(&["images"]);
    cli.ok(&["version"]);
    cli.ok(&["info"]);
    // A named volume (local driver, no options) and a container using it.
    let vol = support::unique_name("vol");
    cli.ok(&["volume", "create", &vol]);
    let out = cli.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{vol}:/data"),
        &image,
        "sh",
        "-c",
        "echo hi > /data/f && cat /data/f",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli.ok(&["volume", "rm", &vol]);
    // Build with the classic builder, tag, remove.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY f /f\n").unwrap();
    std::fs::write(ctx.path().join("f"), "data").unwrap();
    let tag = cleanup.image("legit-build");
    let out = proxy.docker().env("DOCKER_BUILDKIT", "0").run(&[
        "build",
        "-q",
        "-t",
        &tag,
        path_str(ctx.path()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli.ok(&["rmi", &tag]);
    // stop and remove.
    cli.ok(&["rm", "-f", &c]);
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn refusals_reach_the_cli_as_daemon_errors() {
    let _serial = serial();
    let proxy = restricted_proxy();
    let out = proxy.docker().run(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        &test_image(),
        "true",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error response from daemon: sockwarden:"),
        "{err}"
    );
    assert!(err.contains("policy ci-exec"), "{err}");
    let out = proxy.docker().run(&["export", "nonexistent"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container.export") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn read_only_clients_see_inspect_without_env_values() {
    let _serial = serial();
    let uid = current_uid();
    let proxy = Proxy::start_with(
        &format!("[[client]]\nname = \"dash\"\npolicy = \"read-only\"\nuids = [{uid}]\n"),
        &daemon_socket(),
    );
    let cleanup = Cleanup::new();
    let name = cleanup.container("secret");
    Docker::new(&daemon_socket()).ok(&[
        "create",
        "--name",
        &name,
        "--network",
        "none",
        "-e",
        "DB_PASSWORD=hunter2",
        &test_image(),
        "true",
    ]);
    let direct = Docker::new(&daemon_socket()).ok_str(&["inspect", &name]);
    assert!(direct.contains("DB_PASSWORD=hunter2"));
    let proxied = proxy.docker().ok_str(&["inspect", &name]);
    assert!(proxied.contains("DB_PASSWORD=<redacted>"), "{proxied}");
    assert!(!proxied.contains("hunter2"), "{proxied}");
    let format =
        proxy
            .docker()
            .ok_str(&["inspect", "--format", "{{.Name}} {{.Config.Image}}", &name]);
    assert!(format.contains(&name), "{format}");
    // Image inspect goes through the same rewrite (the fixture image may have no Env at all).
    let image = proxy.docker().ok_str(&["image", "inspect", &test_image()]);
    let image_direct = Docker::new(&daemon_socket()).ok_str(&["image", "inspect", &test_image()]);
    if image_direct.contains("\"Env\": [") {
        assert!(image.contains("<redacted>"), "{image}");
    } else {
        assert_eq!(image.len(), image_direct.len());
    }
}

// === swarm services and plugins, refused by inspection ===

/// The `ci` profile with service and plugin writes acknowledged, so that they reach body
/// inspection; plugins only from the unreachable registry `sw-nx.invalid:1` (not on this host: the fetch rule refuses a loopback registry), with no privileges.
fn swarm_proxy() -> Proxy {
    let uid = current_uid();
    Proxy::start_with(
        &format!(
            r#"
[[client]]
name = "ci"
policy = "ci-swarm"
uids = [{uid}]

[policy.ci-swarm]
profile = "ci"
allow = ["service.create", "service.update", "plugin.pull", "plugin.upgrade", "plugin.privileges"]
allow_dangerous = ["service.create", "service.update", "plugin.pull", "plugin.upgrade"]

[policy.ci-swarm.plugin]
names = ["sw-nx.invalid:1/sw/*", "sw-nx-plugin"]
"#
        ),
        &daemon_socket(),
    )
}

/// Status line and body of the last response to `raw`.
fn last_response(proxy: &Proxy, raw: &[u8]) -> (u16, String) {
    let resp = http_request(&proxy.socket, raw, T).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let at = text.rfind("HTTP/1.1 ").expect("a response");
    let status = text[at + 9..at + 12].parse().unwrap();
    let body = text[at..]
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Refused by inspection: 403 from sockwarden naming `field`, and the daemon's state unchanged.
fn assert_inspection_refuses(proxy: &Proxy, what: &str, raw: &[u8], field: &str) {
    let before = state();
    let (status, body) = last_response(proxy, raw);
    assert_eq!(status, 403, "{what}: {body}");
    assert!(
        body.contains("sockwarden:") && body.contains(field),
        "{what}: the refusal should name {field}: {body}"
    );
    assert_eq!(before, state(), "{what}: the daemon's state changed");
}

/// Passed inspection and answered by the daemon itself (`status`, a message containing
/// `daemon_says`); the daemon's state unchanged (it cannot run services or reach the registry).
fn assert_forwarded(proxy: &Proxy, what: &str, raw: &[u8], status: u16, daemon_says: &str) {
    let before = state();
    let (got, body) = last_response(proxy, raw);
    assert_eq!(got, status, "{what}: {body}");
    assert!(
        !body.contains("sockwarden") && body.contains(daemon_says),
        "{what}: expected the daemon's answer ({daemon_says}): {body}"
    );
    assert_eq!(before, state(), "{what}: the daemon's state changed");
}

fn service_body(container_spec: &str) -> String {
    format!(
        r#"{{"Name":"sw-svc","TaskTemplate":{{"ContainerSpec":{{"Image":"{}","Args":["top"]{container_spec}}}}},"Mode":{{"Replicated":{{}}}}}}"#,
        test_image()
    )
}

const NOT_A_MANAGER: &str = "not a swarm manager";

#[test]
fn service_mounts_are_inspected() {
    let _serial = serial();
    let proxy = swarm_proxy();
    let image = test_image();
    let refused: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "bind mount of /",
            "/services/create".into(),
            service_body(r#","Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]"#).into(),
            "TaskTemplate.ContainerSpec.Mounts[0].Source",
        ),
        (
            "bind mount of the docker socket",
            "/v1.41/services/create".into(),
            service_body(
                r#","Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/var/run/docker.sock"}]"#,
            )
            .into(),
            "host path /var/run/docker.sock is not allowed (bind_sources)",
        ),
        (
            "volume with local bind options",
            "/services/create".into(),
            service_body(
                r#","Mounts":[{"Type":"volume","Source":"swv","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]"#,
            )
            .into(),
            "(allow_mount_driver_config)",
        ),
        (
            "seccomp unconfined",
            "/services/create".into(),
            service_body(r#","Privileges":{"Seccomp":{"Mode":"unconfined"}}"#).into(),
            "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode",
        ),
        (
            "AppArmor disabled",
            "/services/create".into(),
            service_body(r#","Privileges":{"AppArmor":{"Mode":"disabled"}}"#).into(),
            "(security_opt)",
        ),
        (
            "CapabilityAdd ALL",
            "/services/create".into(),
            service_body(r#","CapabilityAdd":["ALL"]"#).into(),
            "TaskTemplate.ContainerSpec.CapabilityAdd[0]",
        ),
        (
            "lower-case mounts",
            "/services/create".into(),
            format!(r#"{{"tasktemplate":{{"containerspec":{{"image":"{image}","mounts":[{{"type":"bind","source":"/","target":"/h"}}]}}}}}}"#).into(),
            "(bind_sources)",
        ),
        (
            "Mounts and MOUNTS",
            "/services/create".into(),
            service_body(r#","Mounts":[],"MOUNTS":[{"Type":"bind","Source":"/","Target":"/h"}]"#).into(),
            "name the same field",
        ),
        (
            "host network",
            "/services/create".into(),
            format!(r#"{{"TaskTemplate":{{"ContainerSpec":{{"Image":"{image}"}},"Networks":[{{"Target":"host"}}]}}}}"#).into(),
            "TaskTemplate.Networks[0].Target",
        ),
        (
            "plugin runtime",
            "/services/create".into(),
            r#"{"TaskTemplate":{"Runtime":"plugin","PluginSpec":{"Name":"p","Remote":"sw-nx.invalid:1/sw/p"}}}"#.into(),
            "TaskTemplate",
        ),
        (
            "update with a bind mount",
            "/services/sw-nx-svc/update?version=1".into(),
            service_body(r#","Mounts":[{"Type":"bind","Source":"/etc","Target":"/e"}]"#).into(),
            "TaskTemplate.ContainerSpec.Mounts[0].Source",
        ),
        (
            "update rolling back to an uninspected spec",
            "/services/sw-nx-svc/update?version=1&rollback=previous".into(),
            service_body("").into(),
            "?rollback",
        ),
    ];
    let legitimate: Vec<(&str, String, String)> = vec![
        (
            "what the CLI sends",
            "/services/create".into(),
            format!(
                r#"{{"Name":"sw-svc","Labels":{{}},"TaskTemplate":{{"ContainerSpec":{{"Image":"{image}","Args":["top"],"Init":false,"DNSConfig":{{}}}},"Resources":{{"Limits":{{}},"Reservations":{{}}}},"Placement":{{}},"ForceUpdate":0}},"Mode":{{"Replicated":{{}}}},"EndpointSpec":{{"Mode":"vip"}}}}"#
            ),
        ),
        (
            "named volume",
            "/services/create".into(),
            service_body(r#","Mounts":[{"Type":"volume","Source":"swv","Target":"/data"}]"#),
        ),
        (
            "tmpfs",
            "/v1.41/services/create".into(),
            service_body(r#","Mounts":[{"Type":"tmpfs","Target":"/scratch"}]"#),
        ),
        (
            "seccomp default",
            "/services/create".into(),
            service_body(r#","Privileges":{"Seccomp":{"Mode":"default"},"NoNewPrivileges":true}"#),
        ),
        (
            "AppArmor default",
            "/services/create".into(),
            service_body(r#","Privileges":{"AppArmor":{"Mode":"default"}}"#),
        ),
        (
            "capabilities dropped",
            "/services/create".into(),
            service_body(r#","CapabilityDrop":["ALL"]"#),
        ),
        (
            "lower-case keys",
            "/services/create".into(),
            format!(
                r#"{{"tasktemplate":{{"containerspec":{{"image":"{image}","mounts":[{{"type":"tmpfs","target":"/t"}}]}}}}}}"#
            ),
        ),
        (
            "env and healthcheck",
            "/services/create".into(),
            service_body(
                r#","Env":["A=B"],"Healthcheck":{"Test":["CMD","true"],"Interval":5000000000}"#,
            ),
        ),
        (
            "bridge-less overlay-free spec with limits",
            "/services/create".into(),
            format!(
                r#"{{"TaskTemplate":{{"ContainerSpec":{{"Image":"{image}"}},"Resources":{{"Limits":{{"MemoryBytes":67108864,"Pids":64}}}}}}}}"#
            ),
        ),
        (
            "restart policy",
            "/services/create".into(),
            format!(
                r#"{{"TaskTemplate":{{"ContainerSpec":{{"Image":"{image}"}},"RestartPolicy":{{"Condition":"on-failure","MaxAttempts":3}}}}}}"#
            ),
        ),
        (
            "update",
            "/services/sw-nx-svc/update?version=1".into(),
            service_body(""),
        ),
        (
            "update with rollback none",
            "/services/sw-nx-svc/update?version=1&rollback=none".into(),
            service_body(""),
        ),
    ];
    assert_eq!(refused.len(), legitimate.len());
    for (what, path, body, field) in &refused {
        let body = String::from_utf8_lossy(body);
        assert_inspection_refuses(&proxy, what, &post_json(path, &body), field);
    }
    for (what, path, body) in &legitimate {
        assert_forwarded(&proxy, what, &post_json(path, body), 503, NOT_A_MANAGER);
    }
    // The docker CLI sees the same: the refusal names the field, a clean spec reaches the daemon.
    let out = proxy.docker().run(&[
        "service",
        "create",
        "--no-resolve-image",
        "--mount",
        "type=bind,src=/,dst=/host",
        &image,
        "top",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("sockwarden:") && err.contains("Mounts[0].Source"),
        "{err}"
    );
    let out = proxy
        .docker()
        .run(&["service", "create", "--no-resolve-image", &image, "top"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !err.contains("sockwarden") && err.contains(NOT_A_MANAGER),
        "{err}"
    );
}

#[test]
fn plugin_install_privileges_are_inspected() {
    let _serial = serial();
    let proxy = swarm_proxy();
    let pull = |query: &str, body: &str| post_json(&format!("/plugins/pull?{query}"), body);
    let remote = "remote=sw-nx.invalid%3A1%2Fsw%2Fplugin";
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "host network",
            pull(remote, r#"[{"Name":"network","Description":"","Value":["host"]}]"#),
            "[0].Value[0]: plugin privilege \\\"network\\\" with value \\\"host\\\" is not allowed (privileges)",
        ),
        (
            "mount of /",
            pull(remote, r#"[{"Name":"mount","Description":"","Value":["/"]}]"#),
            "(privileges)",
        ),
        (
            "all devices",
            pull(remote, r#"[{"Name":"allow-all-devices","Description":"","Value":["true"]}]"#),
            "(privileges)",
        ),
        (
            "capabilities",
            pull(remote, r#"[{"Name":"capabilities","Value":["CAP_SYS_ADMIN"]}]"#),
            "(privileges)",
        ),
        (
            "case-folded keys",
            pull(remote, r#"[{"name":"mount","VALUE":["/"]}]"#),
            "(privileges)",
        ),
        (
            "duplicate value keys",
            pull(remote, r#"[{"Name":"network","Value":[],"value":["host"]}]"#),
            "name the same field",
        ),
        (
            "a plugin not in names",
            pull("remote=vieux%2Fsshfs", "[]"),
            "?remote",
        ),
        (
            "installed under a trusted name",
            pull(&format!("{remote}&name=trusted%2Fauthz"), "[]"),
            "?name",
        ),
        (
            "upgrade with privileges",
            post_json(
                "/plugins/sw-nx-plugin/upgrade?remote=sw-nx.invalid%3A1%2Fsw%2Fplugin",
                r#"[{"Name":"device","Value":["/dev/sda"]}]"#,
            ),
            "(privileges)",
        ),
    ];
    let legitimate: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("no privileges", pull(remote, "[]"), 500, "sw-nx.invalid:1"),
        (
            "null privileges",
            pull(remote, "null"),
            500,
            "sw-nx.invalid:1",
        ),
        (
            "with an allowed alias",
            pull(
                &format!("{remote}&name=sw-nx.invalid%3A1%2Fsw%2Fmine"),
                "[]",
            ),
            500,
            "sw-nx.invalid:1",
        ),
        (
            "a tagged reference",
            pull("remote=sw-nx.invalid%3A1%2Fsw%2Fplugin%3Av2", "[]"),
            500,
            "sw-nx.invalid:1",
        ),
        (
            "whitespace in the body",
            pull(remote, " [ ] "),
            500,
            "sw-nx.invalid:1",
        ),
        (
            "upgrade of an allowed plugin",
            post_json(
                "/plugins/sw-nx-plugin/upgrade?remote=sw-nx.invalid%3A1%2Fsw%2Fplugin",
                "[]",
            ),
            404,
            "not found",
        ),
        (
            "upgrade with a null body",
            post_json(
                "/plugins/sw-nx-plugin/upgrade?remote=sw-nx.invalid%3A1%2Fsw%2Fplugin",
                "null",
            ),
            404,
            "not found",
        ),
        (
            "v1.41 prefix",
            post_json(&format!("/v1.41/plugins/pull?{remote}"), "[]"),
            500,
            "sw-nx.invalid:1",
        ),
        (
            "empty name",
            pull(&format!("name=&{remote}"), "[]"),
            500,
            "sw-nx.invalid:1",
        ),
    ];
    assert_eq!(refused.len(), legitimate.len());
    for (what, raw, field) in &refused {
        assert_inspection_refuses(&proxy, what, raw, field);
    }
    for (what, raw, status, says) in &legitimate {
        assert_forwarded(&proxy, what, raw, *status, says);
    }
    // The CLI: privileges are asked for, granted, and the pull reaches the daemon, which cannot
    // reach the registry.
    let out = proxy.docker().run(&[
        "plugin",
        "install",
        "--grant-all-permissions",
        "sw-nx.invalid:1/sw/plugin",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !err.contains("sockwarden") && err.contains("sw-nx.invalid:1"),
        "{err}"
    );
}
