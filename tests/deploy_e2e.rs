//! Deployment paths, each exercised as a user deploys it, offline:
//! - systemd: both units pass `systemd-analyze verify`; socket activation itself, with
//!   sockwarden started holding listening sockets passed exactly as systemd passes them
//!   (`LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`, fds from 3) by a small launcher
//!   (tests/fixtures/listen_fds.py) and by `systemd-socket-activate`, the docker CLI driven
//!   through them; every way the passed sockets can disagree with the configuration is a clear
//!   start-up error, and `sockwarden check` reports the same.
//! - container image: deploy/container/build.sh builds the `FROM scratch` image on the test
//!   daemon (no registry), and the docker CLI is driven through the containerised sockwarden
//!   (non-root, `--network none`, read-only, no capabilities; the daemon's socket directory and
//!   a directory for its own socket bind-mounted).
//! - compose: deploy/compose/compose.yaml passes `docker compose config` where the plugin is
//!   installed, and is always parsed and its references checked: the files it mounts exist, the
//!   mounted config passes `sockwarden check --no-fs`, the dashboard's endpoint is a listener of
//!   that config whose client is read-only, and sockwarden sits on an internal network only.
//! - observability: every metric the Grafana dashboard (deploy/grafana/sockwarden.json) and the
//!   Prometheus rules (deploy/prometheus/alerts.yaml) name is one a running sockwarden exports
//!   on its /metrics, with the labels it exports, and the files have the shape their tools read.
//! - release: `--version` shows the version and the commit (build.rs, with its fallbacks),
//!   shell completions and the man page are generated from the command line's definition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    allow_all_client_toml, daemon_socket, head_line, http_request, test_image, toml_str, wait_for,
    Cleanup, Docker, Proxy, SOCKWARDEN,
};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command` for at most `limit`; a process still running then is killed and the test
/// fails (a sockwarden that should have refused to start is serving).
fn run_limited(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "still running after {limit:?}: {command:?}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// -------------------------------------------------------------------------------------------
// systemd
// -------------------------------------------------------------------------------------------

/// The launcher that passes sockets as systemd does; `opts` are its options (see the script).
fn listen_fds(opts: &[&str]) -> Vec<String> {
    let script = repo().join("tests/fixtures/listen_fds.py");
    let mut launcher = vec!["python3".to_owned(), script.display().to_string()];
    launcher.extend(opts.iter().map(|s| s.to_string()));
    launcher.push("--".to_owned());
    launcher
}

/// The config every activation test starts from: upstream the test daemon, one unix listener
/// at `dir/proxy.sock` (mode 0600) with `listen_extra`, the test's uid allowed everything.
fn activation_config(dir: &Path, listen_extra: &str, more: &str) -> String {
    format!(
        "{clients}\n[upstream]\nsocket = {up}\n\n[[listen]]\nunix = {sock}\nmode = \"0600\"\n{listen_extra}\n{more}\n",
        clients = allow_all_client_toml(),
        up = toml_str(&daemon_socket().display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
    )
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !has("systemd-analyze") {
        println!("skipped: systemd-analyze not installed (scripts/test.sh installs systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The units name the installed binary; verify checks it is executable, so point them at
    // the one under test. Nothing else is changed.
    for unit in ["sockwarden.service", "sockwarden.socket"] {
        let text = std::fs::read_to_string(repo().join("deploy/systemd").join(unit)).unwrap();
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/sockwarden", SOCKWARDEN),
        )
        .unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "./sockwarden.socket",
            "./sockwarden.service",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    // The socket unit and the reference configuration agree: its ListenStream= is the first
    // [[listen]] entry's path and its FileDescriptorName= that entry's name.
    let socket = std::fs::read_to_string(repo().join("deploy/systemd/sockwarden.socket")).unwrap();
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("config/sockwarden.toml")).unwrap())
            .unwrap();
    let first = &config["listen"][0];
    let key = |k: &str| {
        socket
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k}= missing"))
            .to_owned()
    };
    assert_eq!(first["unix"].as_str(), Some(key("ListenStream").as_str()));
    assert_eq!(
        first["name"].as_str(),
        Some(key("FileDescriptorName").as_str())
    );
    assert_eq!(first["mode"].as_str(), Some(key("SocketMode").as_str()));
    assert_eq!(first["group"].as_str(), Some(key("SocketGroup").as_str()));
    // The service keeps the socket unit's file when it stops.
    let service =
        std::fs::read_to_string(repo().join("deploy/systemd/sockwarden.service")).unwrap();
    assert!(service.contains("\nRuntimeDirectoryPreserve=yes\n"));
}

/// A unix socket passed by name: sockwarden serves on it as it is (systemd's mode, not the
/// entry's; no re-creation) and leaves the file behind at exit.
#[test]
fn socket_activation_unix_socket_serves_the_docker_cli() {
    let mut proxy = Proxy::start_launched(
        |dir| {
            let sock = dir.join("proxy.sock").display().to_string();
            listen_fds(&["--mode", "0660", "--unix", &sock, "--name", "docker"])
        },
        |dir| activation_config(dir, "name = \"docker\"\nactivation = \"required\"", ""),
        &[],
    );
    let before = std::fs::metadata(&proxy.socket).unwrap();
    assert_eq!(
        before.mode() & 0o7777,
        0o660,
        "the passed socket's mode is kept"
    );
    let docker = proxy.docker();
    let version = docker.ok_str(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!version.trim().is_empty());
    let out = docker.ok_str(&[
        "run",
        "--rm",
        "--network",
        "none",
        &test_image(),
        "echo",
        "activated",
    ]);
    assert_eq!(out.trim(), "activated");
    let log = proxy.log_text();
    assert!(log.contains("using the socket passed by systemd"), "{log}");
    assert!(
        log.contains("SocketMode="),
        "mode difference is logged: {log}"
    );
    let socket = proxy.socket.clone();
    let status = proxy.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    let after = std::fs::symlink_metadata(&socket).expect("systemd's socket file is left alone");
    assert_eq!((after.dev(), after.ino()), (before.dev(), before.ino()));
    assert_eq!(after.mode() & 0o7777, 0o660);
}

/// The admin listener's socket passed too (matched by address): /healthz answers on it, and
/// both files are left to systemd at exit.
#[test]
fn socket_activation_passes_the_admin_listener_too() {
    let mut proxy = Proxy::start_launched(
        |dir| {
            let sock = dir.join("proxy.sock").display().to_string();
            let admin = dir.join("admin.sock").display().to_string();
            listen_fds(&["--unix", &admin, "--unix", &sock])
        },
        |dir| {
            let admin = toml_str(&dir.join("admin.sock").display().to_string());
            activation_config(dir, "", &format!("[admin]\nunix = {admin}\n"))
        },
        &[],
    );
    let admin = proxy.dir.path().join("admin.sock");
    let resp = http_request(
        &admin,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 200"), "{}", head_line(&resp));
    proxy.docker().ok(&["ps"]);
    let log = proxy.log_text();
    assert_eq!(
        log.matches("using the socket passed by systemd").count(),
        2,
        "{log}"
    );
    let socket = proxy.socket.clone();
    assert!(proxy.terminate(Duration::from_secs(15)).success());
    assert!(
        admin.exists() && socket.exists(),
        "passed sockets are systemd's"
    );
}

/// With systemd's own tool, where installed.
#[test]
fn socket_activation_with_systemd_socket_activate() {
    if !has("systemd-socket-activate") {
        println!("skipped: systemd-socket-activate not installed (package systemd)");
        return;
    }
    let proxy = Proxy::start_launched(
        |dir| {
            let sock = dir.join("proxy.sock").display().to_string();
            ["systemd-socket-activate", "-l", &sock, "--fdname=docker"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        },
        |dir| activation_config(dir, "name = \"docker\"\nactivation = \"required\"", ""),
        &[],
    );
    let ps = proxy.docker().ok_str(&["ps", "--format", "{{.ID}}"]);
    assert!(!ps.contains("Error"), "{ps}");
    assert!(proxy
        .log_text()
        .contains("using the socket passed by systemd"));
}

/// Unix and TCP sockets passed together, matched by address (systemd's default name is the
/// unit's, which no entry carries), each serving its entry's clients.
#[test]
fn socket_activation_unix_and_tcp_matched_by_address() {
    let proxy = Proxy::start_launched(
        |dir| {
            let sock = dir.join("proxy.sock").display().to_string();
            let config = dir.join("sockwarden.toml").display().to_string();
            listen_fds(&[
                "--unix",
                &sock,
                "--subst",
                &config,
                "--tcp",
                "127.0.0.1:0",
                "--name",
                "sockwarden.socket",
                "--name",
                "sockwarden.socket",
            ])
        },
        |dir| {
            activation_config(
                dir,
                "",
                "[[listen]]\ntcp = \"127.0.0.1:@PORT@\"\nclient = \"sw-test\"\nactivation = \"required\"\n",
            )
        },
        &[],
    );
    let config = std::fs::read_to_string(&proxy.config).unwrap();
    let port = config
        .lines()
        .find_map(|l| l.strip_prefix("tcp = \"127.0.0.1:"))
        .and_then(|l| l.strip_suffix('"'))
        .expect("port substituted");
    assert_ne!(port, "@PORT@");
    // Both listeners reach the same daemon (its ID; a container list could change in between:
    // other tests share the daemon), and both serve a list.
    let over_tcp =
        || Docker::new(&proxy.socket).env("DOCKER_HOST", &format!("tcp://127.0.0.1:{port}"));
    let unix = proxy.docker().ok_str(&["info", "--format", "{{.ID}}"]);
    let tcp = over_tcp().ok_str(&["info", "--format", "{{.ID}}"]);
    assert!(!unix.trim().is_empty());
    assert_eq!(unix, tcp);
    proxy.docker().ok(&["ps", "-a"]);
    over_tcp().ok(&["ps", "-a"]);
    let log = proxy.log_text();
    assert_eq!(
        log.matches("using the socket passed by systemd").count(),
        2,
        "{log}"
    );
}

/// `LISTEN_PID` not this process (or unset): the variables were meant for someone else; the
/// sockets are not taken and the entry is bound by sockwarden as usual.
#[test]
fn socket_activation_ignores_sockets_for_another_pid() {
    for pid in ["other", "none"] {
        let proxy = Proxy::start_launched(
            |dir| {
                let elsewhere = dir.join("elsewhere.sock").display().to_string();
                listen_fds(&["--pid", pid, "--unix", &elsewhere])
            },
            |dir| activation_config(dir, "", ""),
            &[],
        );
        proxy.docker().ok_str(&["version"]);
        let log = proxy.log_text();
        assert!(!log.contains("passed by systemd"), "{pid}: {log}");
        // sockwarden made its own socket, with the entry's mode.
        let mode = std::fs::metadata(&proxy.socket).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{pid}");
    }
}

/// Each way the passed sockets and the configuration can disagree: serve refuses to start with
/// a message naming the socket and the entry, creates no socket file at the entry's path, and
/// `check` (run the same way) refuses the same.
#[test]
fn socket_activation_mismatches_are_start_up_errors() {
    struct Case {
        what: &'static str,
        listen_extra: &'static str,
        opts: fn(&Path) -> Vec<String>,
        expect: &'static str,
    }
    let cases = [
        Case {
            what: "bound elsewhere, no name",
            listen_extra: "",
            opts: |d| vec!["--unix".into(), d.join("other.sock").display().to_string()],
            expect: "matches no [[listen]] entry",
        },
        Case {
            what: "unknown name, bound elsewhere",
            listen_extra: "name = \"docker\"",
            opts: |d| {
                vec![
                    "--unix".into(),
                    d.join("other.sock").display().to_string(),
                    "--name".into(),
                    "dockr".into(),
                ]
            },
            expect: "FileDescriptorName=dockr",
        },
        Case {
            what: "named for the entry, bound elsewhere",
            listen_extra: "name = \"docker\"",
            opts: |d| {
                vec![
                    "--unix".into(),
                    d.join("other.sock").display().to_string(),
                    "--name".into(),
                    "docker".into(),
                ]
            },
            expect: "listen[0] is named by the socket passed as fd 3",
        },
        Case {
            what: "a TCP socket for a unix entry, by name",
            listen_extra: "name = \"docker\"",
            opts: |_| {
                ["--tcp", "127.0.0.1:0", "--name", "docker"]
                    .map(String::from)
                    .to_vec()
            },
            expect: "is named by the socket passed as fd 3",
        },
        Case {
            what: "a connection (Accept=yes), not a listener",
            listen_extra: "",
            opts: |_| vec!["--connected".into()],
            expect: "fd 3 is not a listening unix or TCP stream socket",
        },
        Case {
            what: "required, none passed",
            listen_extra: "activation = \"required\"",
            opts: |_| Vec::new(),
            expect: "listen[0]: activation = \"required\" but systemd passed no socket",
        },
        Case {
            what: "two sockets at its address",
            listen_extra: "",
            opts: |d| {
                let p = d.join("proxy.sock").display().to_string();
                vec!["--unix".into(), p.clone(), "--unix".into(), p]
            },
            expect: "listen[0] matches two passed sockets: fd 3",
        },
        Case {
            what: "activation off, socket at its address",
            listen_extra: "activation = \"off\"",
            opts: |d| vec!["--unix".into(), d.join("proxy.sock").display().to_string()],
            expect: "matches no [[listen]] entry",
        },
    ];
    for case in cases {
        let dir = tempfile::Builder::new()
            .prefix("swd.")
            .tempdir_in("/tmp")
            .unwrap();
        let config = dir.path().join("sockwarden.toml");
        std::fs::write(
            &config,
            activation_config(dir.path(), case.listen_extra, ""),
        )
        .unwrap();
        let opts = (case.opts)(dir.path());
        let passes_any = !opts.is_empty();
        for command in ["serve", "check"] {
            let mut launcher = if passes_any {
                let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
                listen_fds(&opts)
            } else {
                Vec::new()
            };
            launcher.push(SOCKWARDEN.to_owned());
            let mut cmd = Command::new(&launcher[0]);
            cmd.args(&launcher[1..])
                .arg(command)
                .arg("--config")
                .arg(&config)
                .env_remove("DOCKER_HOST");
            let out = run_limited(&mut cmd, Duration::from_secs(20));
            let stderr = text(&out.stderr);
            if command == "check" && !passes_any {
                // check gets no sockets under ExecStartPre= either: a required entry is noted,
                // not an error.
                assert!(out.status.success(), "{}: check: {stderr}", case.what);
                assert!(
                    text(&out.stdout).contains("socket to be passed by systemd"),
                    "{}: {}",
                    case.what,
                    text(&out.stdout)
                );
                continue;
            }
            assert!(!out.status.success(), "{}: {command} succeeded", case.what);
            assert!(
                stderr.contains(case.expect),
                "{}: {command}: expected {:?} in:\n{stderr}",
                case.what,
                case.expect
            );
        }
        if !opts.contains(&dir.path().join("proxy.sock").display().to_string()) {
            assert!(
                !dir.path().join("proxy.sock").exists(),
                "{}: no socket created",
                case.what
            );
        }
    }
}

/// `check` run the way serve is started (with the sockets): it names the passed ones and does
/// not probe their paths.
#[test]
fn check_reports_passed_sockets() {
    let dir = tempfile::Builder::new()
        .prefix("swd.")
        .tempdir_in("/tmp")
        .unwrap();
    let config = dir.path().join("sockwarden.toml");
    std::fs::write(
        &config,
        activation_config(dir.path(), "name = \"docker\"", ""),
    )
    .unwrap();
    let sock = dir.path().join("proxy.sock").display().to_string();
    let mut launcher = listen_fds(&["--unix", &sock, "--name", "docker"]);
    launcher.push(SOCKWARDEN.to_owned());
    let out = run_limited(
        Command::new(&launcher[0])
            .args(&launcher[1..])
            .arg("check")
            .arg("--config")
            .arg(&config),
        Duration::from_secs(20),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "listen[0] unix://{sock}: socket passed by systemd"
        )),
        "{stdout}"
    );
}

// -------------------------------------------------------------------------------------------
// Container image
// -------------------------------------------------------------------------------------------

/// The docker CLI on the test daemon itself (not through a proxy).
fn daemon() -> Docker {
    Docker::new(&daemon_socket())
}

/// Builds the image with deploy/container/build.sh from the binary under test; returns its tag.
fn build_image(cleanup: &Cleanup) -> String {
    let tag = cleanup.image("deploy-image");
    support::build_image_on(&daemon_socket(), &tag);
    tag
}

#[test]
fn container_image_serves_the_docker_cli() {
    let cleanup = Cleanup::new();
    let image = build_image(&cleanup);
    let docker = daemon();
    // Non-root, nothing but the binary, its libraries and its files.
    let user = docker.ok_str(&["image", "inspect", "--format", "{{.Config.User}}", &image]);
    assert_eq!(user.trim(), "65532:65532");
    let no_shell = docker.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        &image,
        "-c",
        "true",
    ]);
    assert!(!no_shell.status.success(), "the image has no shell");
    // Its default configuration is valid.
    let check = docker.ok_str(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "check",
        "--no-fs",
        "--config",
        "/etc/sockwarden/sockwarden.toml",
    ]);
    assert!(check.contains("sockwarden.toml: ok"), "{check}");

    // Run it as documented: the daemon's socket and a directory for its own socket
    // bind-mounted (the daemon's directory, /tmp/swt.*, is 0700: only its socket is shared), the daemon socket's group added, a read-only policy for root on the host.
    let dir = tempfile::Builder::new()
        .prefix("swc.")
        .tempdir_in("/tmp")
        .unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::os::unix::fs::chown(&run_dir, Some(65532), Some(65532)).unwrap();
    let config = dir.path().join("sockwarden.toml");
    std::fs::write(
        &config,
        "[upstream]\nsocket = \"/var/run/docker.sock\"\n\n[audit]\nsink = \"stdout\"\n\n\
         [[client]]\nname = \"host-root\"\npolicy = \"ro\"\nuids = [0]\n\n\
         [policy.ro]\nprofile = \"read-only\"\n\n\
         [[listen]]\nunix = \"/run/sockwarden/docker.sock\"\nmode = \"0660\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let gid = std::fs::metadata(daemon_socket())
        .unwrap()
        .gid()
        .to_string();
    let name = cleanup.container("deploy-sockwarden");
    docker.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--group-add",
        &gid,
        "-v",
        &format!("{}:/var/run/docker.sock", daemon_socket().display()),
        "-v",
        &format!("{}:/run/sockwarden", run_dir.display()),
        "-v",
        &format!("{}:/etc/sockwarden/sockwarden.toml:ro", config.display()),
        &image,
    ]);
    let sock = run_dir.join("docker.sock");
    let ready = wait_for(Duration::from_secs(20), || {
        http_request(
            &sock,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        )
        .ok()
        .filter(|r| r.starts_with(b"HTTP/1.1 200"))
        .map(|r| head_line(&r))
    });
    let logs = || text(&docker.ok(&["logs", &name]));
    assert!(
        ready.is_some(),
        "containerised sockwarden not ready:\n{}",
        logs()
    );
    // The socket was made by the container's user, not root.
    assert_eq!(std::fs::metadata(&sock).unwrap().uid(), 65532);

    let through = Docker::new(&sock);
    let direct_ids = docker.ok_str(&["ps", "-aq", "--no-trunc"]);
    let ids = through.ok_str(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(ids, direct_ids, "the same containers through the proxy");
    let version = through.ok_str(&["version", "--format", "{{.Server.Version}}"]);
    assert!(!version.trim().is_empty());
    // The policy holds: a write is refused, and nothing was created.
    let refused = through.run(&["run", "--rm", "--network", "none", &test_image(), "true"]);
    let err = text(&refused.stderr);
    assert!(!refused.status.success(), "read-only refuses docker run");
    assert!(err.contains("sockwarden"), "{err}");
    assert_eq!(docker.ok_str(&["ps", "-aq", "--no-trunc"]), direct_ids);
    // Audit records on stdout, the container log.
    let log = logs();
    assert!(log.contains("\"decision\":\"deny\""), "{log}");
    assert!(log.contains("\"operation\":\"container.list\""), "{log}");
    // A graceful stop removes its socket.
    docker.ok(&["stop", "-t", "10", &name]);
    let code = docker.ok_str(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.trim(), "0", "{}", logs());
    assert!(!sock.exists(), "socket removed at stop");
}

// -------------------------------------------------------------------------------------------
// Compose
// -------------------------------------------------------------------------------------------

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `sockwarden explain --json` for `client`: the decision.
fn decision(config: &Path, client: &str, method: &str, target: &str) -> String {
    let out = Command::new(SOCKWARDEN)
        .arg("explain")
        .arg("--config")
        .arg(config)
        .args(["--client", client, "--json", method, target])
        .output()
        .unwrap();
    assert!(out.status.success(), "explain: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["decision"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn compose_example_is_valid_and_its_references_hold() {
    let dir = repo().join("deploy/compose");
    let file = dir.join("compose.yaml");
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(&file)
            .args(["config", "--quiet"])
            .env("DOCKER_GID", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker compose config: {}",
            text(&out.stderr)
        );
    } else {
        println!(
            "skipped: docker compose config (plugin not installed); the file is parsed instead"
        );
    }
    let compose = yaml(&file);
    let services = compose["services"].as_mapping().expect("services");
    let sw = &compose["services"]["sockwarden"];
    // The image deploy/container/build.sh builds by default.
    let build = std::fs::read_to_string(repo().join("deploy/container/build.sh")).unwrap();
    let image = sw["image"].as_str().expect("sockwarden image");
    assert!(
        build.contains(&format!("tag={image}\n")),
        "{image} is build.sh's default tag"
    );
    // Hardened, not root, nothing published, only on the internal network.
    assert_eq!(sw["read_only"].as_bool(), Some(true));
    assert_eq!(strings(&sw["cap_drop"]), ["ALL"]);
    assert_eq!(sw["user"].as_str(), Some("65532:65532"));
    assert!(sw.get("ports").is_none(), "sockwarden publishes nothing");
    assert_eq!(strings(&sw["networks"]), ["docker-api"]);
    assert_eq!(
        compose["networks"]["docker-api"]["internal"].as_bool(),
        Some(true)
    );
    assert!(strings(&sw["group_add"])[0].contains("DOCKER_GID"));
    // Only sockwarden mounts the Docker socket.
    for (name, service) in services {
        let mounts = strings(&service["volumes"]);
        let has_socket = mounts
            .iter()
            .any(|m| m.starts_with("/var/run/docker.sock:"));
        assert_eq!(has_socket, name.as_str() == Some("sockwarden"), "{name:?}");
    }
    // Every relative mount exists; the config mounted where --config reads passes check.
    let mounts = strings(&sw["volumes"]);
    let command = strings(&sw["command"]);
    let config_target = command
        .iter()
        .skip_while(|a| *a != "--config")
        .nth(1)
        .expect("--config in command")
        .clone();
    let mut config = None;
    for mount in &mounts {
        let mut parts = mount.split(':');
        let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
        if let Some(rel) = source.strip_prefix("./") {
            let path = dir.join(rel);
            assert!(path.exists(), "{mount}: {} missing", path.display());
            if target == config_target {
                config = Some(path);
            }
        }
    }
    let config = config.expect("the config file is mounted where --config reads it");
    let out = Command::new(SOCKWARDEN)
        .args(["check", "--no-fs", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "check: {}", text(&out.stderr));
    let parsed: toml::Value = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        parsed["upstream"]["socket"].as_str(),
        Some("/var/run/docker.sock"),
        "upstream is the mounted socket"
    );
    // The dashboard's endpoint is a TCP listener of that config on the internal network, and
    // its client may read and not write.
    let dashboard = &compose["services"]["dashboard"];
    assert!(strings(&dashboard["networks"]).contains(&"docker-api".to_owned()));
    let endpoint = strings(&dashboard["command"])
        .into_iter()
        .find_map(|a| a.split_once("tcp://sockwarden:").map(|(_, p)| p.to_owned()))
        .expect("the dashboard points at tcp://sockwarden:PORT");
    let listen = parsed["listen"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["tcp"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(":{endpoint}")))
        })
        .expect("a listener on the dashboard's port");
    let client = listen["client"].as_str().expect("a fixed client");
    for (method, target, want) in [
        ("GET", "/v1.43/containers/json", "allow"),
        ("GET", "/v1.43/events", "allow"),
        ("POST", "/v1.43/containers/create", "deny"),
        ("POST", "/v1.43/containers/x/exec", "deny"),
        ("DELETE", "/v1.43/containers/x", "deny"),
        ("GET", "/v1.43/containers/x/archive?path=/", "deny"),
    ] {
        assert_eq!(
            decision(&config, client, method, target),
            want,
            "{method} {target}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// Observability
// -------------------------------------------------------------------------------------------

/// Series a running sockwarden exports: name -> label names seen on its samples.
type Exported = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// Scrapes a sockwarden that has answered, refused and reloaded, so that the labelled
/// families have samples; returns its series.
fn scrape_running_sockwarden() -> (Exported, String) {
    let proxy = Proxy::start_config(|dir| {
        format!(
            "[upstream]\nsocket = {up}\n\n[admin]\nunix = {admin}\n\n\
             [[client]]\nname = \"sw-test\"\npolicy = \"ro\"\nuids = [{uid}]\n\
             [client.limits]\nrequests_per_second = 1\nburst = 8\n\n\
             [policy.ro]\nprofile = \"read-only\"\n\n\
             [[listen]]\nunix = {sock}\nmode = \"0600\"\n",
            up = toml_str(&daemon_socket().display().to_string()),
            admin = toml_str(&dir.join("admin.sock").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            uid = support::current_uid(),
        )
    });
    let docker = proxy.docker();
    docker.ok(&["ps"]);
    let refused = docker.run(&["rm", "-f", "no-such-container"]);
    assert!(!refused.status.success());
    // Over the client's rate: answered 429 and counted as limited.
    let limited = (0..20).any(|_| {
        http_request(
            &proxy.socket,
            b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .is_ok_and(|r| r.starts_with(b"HTTP/1.1 429"))
    });
    assert!(limited, "the rate limit answered 429");
    proxy.signal("HUP");
    let admin = proxy.dir.path().join("admin.sock");
    let metrics = wait_for(Duration::from_secs(10), || {
        let resp = http_request(
            &admin,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        )
        .ok()?;
        let resp = text(&resp);
        let body = resp.split_once("\r\n\r\n")?.1.to_owned();
        body.contains("sockwarden_reloads_total{result=\"ok\"}")
            .then_some(body)
    })
    .expect("/metrics with a reload counted");
    let mut exported = Exported::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                exported.entry(format!("{name}{suffix}")).or_default();
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let labels = exported.entry(line[..name_end].to_owned()).or_default();
            if let Some(set) = line[name_end..].strip_prefix('{') {
                for pair in set.split("\",") {
                    if let Some((key, _)) = pair.split_once('=') {
                        labels.insert(key.trim_start_matches(',').to_owned());
                    }
                }
            }
        }
    }
    (exported, metrics)
}

/// Checks one PromQL expression against the exported series: every `sockwarden_*` name exists;
/// every label it matches on or groups by is one those series carry (or Prometheus adds).
fn check_expr(expr: &str, exported: &Exported, what: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("sockwarden_") {
                assert!(
                    exported.contains_key(word),
                    "{what}: {word} is not exported; exported: {:?}",
                    exported.keys().collect::<Vec<_>>()
                );
                names.push(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    assert!(
        !names.is_empty() || expr.contains("up{"),
        "{what}: names no sockwarden metric: {expr}"
    );
    // Labels: those in {..} matchers and by (..)/without (..) groupings.
    let known: std::collections::BTreeSet<String> = names
        .iter()
        .flat_map(|n| exported[n].iter().cloned())
        .chain(["instance", "job", "le"].map(String::from))
        .collect();
    let mut used = Vec::new();
    for (open, close) in [("{", "}"), ("by (", ")")] {
        for part in expr.split(open).skip(1) {
            let inner = part.split(close).next().unwrap_or_default();
            for item in inner.split(',') {
                let key: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() {
                    used.push(key);
                }
            }
        }
    }
    let labelled = names.iter().any(|n| !exported[n].is_empty());
    if labelled {
        for key in &used {
            assert!(
                known.contains(key),
                "{what}: label {key} is not exported on {names:?}"
            );
        }
    }
    names
}

#[test]
fn dashboard_and_alerts_name_only_exported_metrics() {
    let (exported, metrics) = scrape_running_sockwarden();
    assert!(
        metrics.contains("decision=\"deny\""),
        "a refusal is counted with decision=\"deny\": {metrics}"
    );

    // Grafana: the shape Grafana imports, every query checked.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/sockwarden.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "sockwarden");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    let mut used = std::collections::BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "{title}: id repeated"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && grid["h"].as_u64().unwrap() > 0,
            "{title}: gridPos"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            used.extend(check_expr(expr, &exported, title));
            exprs.push(expr.to_owned());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(def) = var["definition"].as_str() {
            used.extend(check_expr(def, &exported, "templating"));
        }
    }
    // What the dashboard is for: each of these is shown.
    for needed in [
        "sockwarden_requests_total",
        "sockwarden_request_duration_seconds_bucket",
        "sockwarden_hijacked_sessions_open",
        "sockwarden_audit_queue_depth",
        "sockwarden_audit_records_lost_total",
        "sockwarden_reloads_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows no {needed}");
    }
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("decision=\"deny\"") && e.contains("by (client, operation)")),
        "refusals by client and operation"
    );

    // Prometheus rules: the shape `promtool check rules` reads, every expression checked.
    let rules = yaml(&repo().join("deploy/prometheus/alerts.yaml"));
    let mut alerts = std::collections::BTreeMap::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        assert!(group["name"].as_str().is_some());
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name").to_owned();
            let expr = rule["expr"].as_str().expect("expr");
            assert!(
                ["critical", "warning"]
                    .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                "{name}: severity"
            );
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{name}: summary"
            );
            if let Some(duration) = rule.get("for") {
                let d = duration.as_str().expect("for is a duration");
                assert!(humantime::parse_duration(d).is_ok(), "{name}: for {d}");
            }
            let names = check_expr(expr, &exported, &name);
            alerts.insert(name, (expr.to_owned(), names));
        }
    }
    let covers = |metric: &str, also: &str| {
        alerts
            .values()
            .any(|(expr, names)| names.iter().any(|n| n == metric) && expr.contains(also))
    };
    assert!(
        covers("sockwarden_audit_records_lost_total", ""),
        "audit loss alert"
    );
    assert!(
        covers("sockwarden_upstream_errors_total", ""),
        "daemon unreachable alert"
    );
    assert!(
        covers("sockwarden_requests_total", "decision=\"deny\""),
        "refusal spike alert"
    );
    if has("promtool") {
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(repo().join("deploy/prometheus/alerts.yaml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool: {}", text(&out.stderr));
    } else {
        println!("skipped: promtool check rules (promtool not installed); parsed instead");
    }
}

// -------------------------------------------------------------------------------------------
// Release
// -------------------------------------------------------------------------------------------

fn sockwarden(args: &[&str]) -> String {
    let out = Command::new(SOCKWARDEN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

const SUBCOMMANDS: [&str; 10] = [
    "serve",
    "check",
    "explain",
    "compat",
    "operations",
    "reload",
    "audit",
    "completions",
    "man",
    "help",
];

#[test]
fn version_names_the_commit_built_from() {
    let version = sockwarden(&["--version"]);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    let commit = match std::env::var("SOCKWARDEN_GIT_COMMIT") {
        Ok(set) if !set.is_empty() => set,
        _ => head.unwrap_or_else(|| "unknown".to_owned()),
    };
    assert_eq!(
        version.trim(),
        format!("sockwarden {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// build.rs on its own: without git (or outside a checkout) "unknown", SOCKWARDEN_GIT_COMMIT
/// taken as given but only with the characters a version may hold.
#[test]
fn build_script_falls_back_without_git() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("build-script");
    let out = Command::new("rustc")
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&bin)
        .arg(repo().join("build.rs"))
        .env("CARGO_MANIFEST_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rustc build.rs: {}",
        text(&out.stderr)
    );
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(&bin);
        cmd.env_remove("SOCKWARDEN_GIT_COMMIT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        text(&out.stdout)
    };
    let line = "cargo:rustc-env=SOCKWARDEN_GIT_COMMIT=";
    // Not a git checkout (the temp dir), then no git at all.
    assert!(run(&[]).contains(&format!("{line}unknown\n")));
    assert!(run(&[("PATH", "/nonexistent")]).contains(&format!("{line}unknown\n")));
    let given = run(&[("SOCKWARDEN_GIT_COMMIT", "v1.2.3-4-gabc; rm -rf /\n")]);
    assert!(
        given.contains(&format!("{line}v1.2.3-4-gabcrm-rf\n")),
        "{given}"
    );
}

#[test]
fn completions_for_each_shell_cover_every_subcommand() {
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let script = sockwarden(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        if has(checker) {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("completion");
            std::fs::write(&file, &script).unwrap();
            let out = Command::new(checker).arg("-n").arg(&file).output().unwrap();
            assert!(out.status.success(), "{checker} -n: {}", text(&out.stderr));
        } else {
            println!("skipped: {checker} -n (not installed); the script was generated");
        }
    }
    // bash: completing `sockwarden ch` offers check.
    if has("bash") {
        let script = sockwarden(&["completions", "bash"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("completion.bash");
        std::fs::write(&file, &script).unwrap();
        let probe = format!(
            "source {}; COMP_WORDS=(sockwarden ch); COMP_CWORD=1; COMP_LINE='sockwarden ch'; \
             COMP_POINT=${{#COMP_LINE}}; _sockwarden sockwarden ch sockwarden; echo \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
        assert_eq!(text(&out.stdout).trim(), "check", "{}", text(&out.stderr));
    }
}

#[test]
fn man_page_renders_and_lists_every_subcommand() {
    let page = sockwarden(&["man"]);
    assert!(page.contains(".TH sockwarden 1"), "{page}");
    assert!(page.contains(&format!("sockwarden {}", env!("CARGO_PKG_VERSION"))));
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "{sub} missing");
    }
    if has("groff") {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sockwarden.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("policy"), "rendered");
    } else {
        println!("skipped: groff (not installed); the page was generated");
    }
}
