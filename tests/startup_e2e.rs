//! The start-up check of the daemon's socket, through a real sockwarden: a user who cannot open
//! the daemon's socket (permission denied), a socket that does not exist, a path that is not a
//! socket each give a warning at start naming the socket, the reason and the fix, and
//! `/readyz` on the admin listener says not ready with the same reason; sockwarden serves on
//! and becomes ready when the daemon appears. With access: no warning, ready.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{daemon_socket, http_request, toml_str, wait_for, Proxy, SOCKWARDEN};

const T: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;
const WARNING: &str = "cannot reach the Docker daemon at";

/// A sockwarden started by hand (as another user, or in front of no daemon), which
/// [`Proxy::start`] cannot wait for: its `/_ping` is a 502.
struct Started {
    dir: tempfile::TempDir,
    child: Child,
}

impl Started {
    /// `serve` with an admin socket and one listener in a fresh dir (owned by `uid`), in front
    /// of `upstream`; as `uid` through setpriv unless it is 0.
    fn serve(uid: u32, upstream: &Path) -> Started {
        let dir = tempfile::Builder::new()
            .prefix("swst.")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
        let config = dir.path().join("sockwarden.toml");
        std::fs::write(
            &config,
            format!(
                "[upstream]\nsocket = {up}\n\n[admin]\nunix = {admin}\n\n[[listen]]\nunix = {sock}\n\n[[client]]\nname = \"root\"\npolicy = \"allow-all\"\nuids = [0]\n",
                up = toml_str(&upstream.display().to_string()),
                admin = toml_str(&dir.path().join("admin.sock").display().to_string()),
                sock = toml_str(&dir.path().join("proxy.sock").display().to_string()),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = if uid == 0 {
            Command::new(SOCKWARDEN)
        } else {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .args(["--clear-groups", "--", SOCKWARDEN]);
            c
        };
        let child = cmd
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "sockwarden=info")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let started = Started { dir, child };
        let admin = started.admin();
        assert!(
            wait_for(T, || admin.exists().then_some(())).is_some(),
            "no admin socket\n{}",
            started.log()
        );
        started
    }

    fn admin(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The log once the start-up check has logged its outcome.
    fn log_after_check(&self) -> String {
        wait_for(T, || {
            let log = self.log();
            (log.contains(WARNING)
                || log.contains("the Docker daemon's socket accepts connections"))
            .then_some(log)
        })
        .unwrap_or_else(|| panic!("the start-up check logged nothing\n{}", self.log()))
    }

    fn get(&self, sock: &Path, path: &str) -> (u16, String) {
        get(sock, path)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- sockwarden log ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(sock: &Path, path: &str) -> (u16, String) {
    let resp = http_request(
        sock,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
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

/// The warning's line in the log.
fn warning_line(log: &str) -> String {
    log.lines()
        .find(|l| l.contains(WARNING))
        .unwrap_or_else(|| panic!("no start-up warning in\n{log}"))
        .to_owned()
}

#[test]
fn a_user_who_cannot_open_the_daemon_socket_is_warned_at_start_and_not_ready() {
    let daemon = daemon_socket();
    let started = Started::serve(NOBODY, &daemon);
    let log = started.log_after_check();
    let line = warning_line(&log);
    assert!(line.contains("WARN"), "{line}");
    for part in [
        format!("{WARNING} unix://{}: permission denied", daemon.display()),
        "sockwarden runs as uid 65534".to_owned(),
        "fix: run sockwarden as root".to_owned(),
        "Serving anyway".to_owned(),
    ] {
        assert!(line.contains(&part), "{part:?} missing in {line}");
    }
    let (status, body) = started.get(&started.admin(), "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(&format!(
            "not ready: {WARNING} unix://{}: permission denied: sockwarden runs as uid 65534",
            daemon.display()
        )),
        "{body}"
    );
    assert!(body.contains("; fix: run sockwarden as root"), "{body}");
    // It serves on: health is fine and requests get the daemon's absence as a 502.
    assert_eq!(started.get(&started.admin(), "/healthz").0, 200);
    let (status, body) = started.get(&started.dir.path().join("proxy.sock"), "/_ping");
    assert_eq!(status, 502, "{body}");
}

#[test]
fn a_socket_closed_to_the_user_names_owner_mode_and_group() {
    // A socket of root's, mode 0660, group root, in an open directory: uid 65534 may see it
    // but not open it.
    let dir = tempfile::Builder::new()
        .prefix("swsk.")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = dir.path().join("docker.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).unwrap();
    let started = Started::serve(NOBODY, &sock);
    let line = warning_line(&started.log_after_check());
    assert!(
        line.contains(&format!(
            "permission denied: sockwarden runs as uid 65534 (nobody), which may not open {} (owner root, group root, mode 0660); fix: add the user sockwarden runs as to the root group",
            sock.display()
        )),
        "{line}"
    );
    let (status, body) = started.get(&started.admin(), "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("(owner root, group root, mode 0660)"),
        "{body}"
    );
}

#[test]
fn a_missing_socket_and_a_file_that_is_not_a_socket_are_warned_and_ready_once_the_daemon_appears() {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    // Not a socket.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"").unwrap();
    let started = Started::serve(0, &file);
    let line = warning_line(&started.log_after_check());
    assert!(
        line.contains(&format!(
            "{} is not a socket; fix: point [upstream] socket",
            file.display()
        )),
        "{line}"
    );
    let (status, body) = started.get(&started.admin(), "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("is not a socket"), "{body}");
    drop(started);

    // Missing: not ready, until a daemon answers there.
    let missing = dir.path().join("later.sock");
    let started = Started::serve(0, &missing);
    let line = warning_line(&started.log_after_check());
    assert!(
        line.contains(&format!(
            "the socket {} does not exist; fix: start the Docker daemon",
            missing.display()
        )),
        "{line}"
    );
    let (status, body) = started.get(&started.admin(), "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("does not exist"), "{body}");

    let listener = UnixListener::bind(&missing).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                if line.starts_with("GET /_ping ") {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                    );
                }
            });
        }
    });
    let ready = wait_for(T, || {
        let (status, body) = started.get(&started.admin(), "/readyz");
        (status == 200).then_some(body)
    });
    assert_eq!(ready.as_deref(), Some("ready\n"));
}

#[test]
fn with_access_to_the_daemon_there_is_no_warning_and_it_is_ready() {
    let proxy = Proxy::start_config(|dir| {
        format!(
            "[upstream]\nsocket = {up}\n\n[admin]\nunix = {admin}\n\n[[listen]]\nunix = {sock}\n\n{client}",
            up = toml_str(&daemon_socket().display().to_string()),
            admin = toml_str(&dir.join("admin.sock").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            client = support::allow_all_client_toml(),
        )
    });
    let log = wait_for(T, || {
        let log = proxy.log_text();
        log.contains("the Docker daemon's socket accepts connections")
            .then_some(log)
    })
    .unwrap_or_else(|| panic!("no start-up check outcome\n{}", proxy.log_text()));
    assert!(!log.contains(WARNING), "{log}");
    let (status, body) = get(&proxy.dir.path().join("admin.sock"), "/readyz");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
}
