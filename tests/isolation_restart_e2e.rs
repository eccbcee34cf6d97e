//! Per-user isolation (issue 13) across a restart of the Docker daemon itself: ownership is
//! read back from the daemon's labels, the container names sockwarden remembered are forgotten
//! when the daemon's event stream breaks, and a name reused after the restart never leads a
//! tenant to another tenant's container.
//!
//! The suite's shared daemon cannot be restarted under the other tests, so this test starts a
//! daemon of its own (private data and exec roots under /tmp, its own managed containerd) and
//! loads the fixture image into it. Tenants are real unix uids (30xx) in the "users" group
//! driving the docker CLI through one socket configured by `config/examples/multi-user.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::isolation::*;
use support::*;

/// A Docker daemon of this test's own, restartable.
struct PrivateDaemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateDaemon {
    fn start() -> PrivateDaemon {
        // Short paths: containerd's sockets live under the exec root (108-byte limit).
        let dir = tempfile::Builder::new()
            .prefix("swd.")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut daemon = PrivateDaemon { dir, child: None };
        daemon.launch();
        daemon
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .expect("log");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(docker_host(&self.socket()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd (scripts/test.sh installs docker.io)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ping = http_request(
                &self.socket(),
                b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
                Duration::from_secs(2),
            );
            if ping.is_ok_and(|r| head_line(&r).contains(" 200 ")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not answer /_ping in 60 s: {}",
                std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the daemon (SIGTERM, as systemd would) and waits for it to exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The docker CLI on this daemon's own socket (an admin, past sockwarden).
    fn direct(&self) -> Docker {
        Docker::new(&self.socket())
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Whatever the test left: its containers go with the daemon's directory.
            let _ = self
                .direct()
                .timeout(Duration::from_secs(20))
                .try_run(&["rm", "-f", "rn-a", "rn-b", "rn-c"]);
        }
        self.stop();
        // The vfs layers and the managed containerd's files are root's: remove them now.
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

/// sockwarden with the multi-user example in front of `daemon`.
fn proxy_for(daemon: &Path) -> Proxy {
    let shared = format!(
        "socket = {}",
        toml_str(&daemon_socket().display().to_string())
    );
    let private = format!("socket = {}", toml_str(&daemon.display().to_string()));
    Proxy::start_config(|dir| {
        let text = multi_user_example(dir, &[(&shared, &private)]);
        format!(
            "{text}\n[isolation]\nimage_ledger = {}\n",
            toml_str(&dir.join("image-owners").display().to_string())
        )
    })
}

fn missing(out: &Output, name: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("No such container: {name}")),
        "{what}: expected Docker's own 'No such container: {name}', got status {:?}, stdout {:?}, stderr {stderr:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn id_seen_by(who: &Docker, name: &str) -> String {
    who.ok_str(&[
        "inspect",
        "--type",
        "container",
        "--format",
        "{{.Id}}",
        name,
    ])
    .trim()
    .to_owned()
}

#[test]
fn a_daemon_restart_keeps_owners_and_forgets_remembered_names() {
    let mut daemon = PrivateDaemon::start();
    // The fixture image, loaded from the suite's daemon (no registry here).
    let image = test_image();
    let saved = direct().ok(&["save", &image]);
    daemon.direct().stdin(saved).ok(&["load"]);
    let proxy = proxy_for(&daemon.socket());
    let a = tenant(&proxy, 3001);
    let b = tenant(&proxy, 3002);

    let create = |who: &Docker, name: &str| {
        who.ok_str(&["create", "--network", "none", "--name", name, &image])
            .trim()
            .to_owned()
    };
    let a_id = create(&a, "rn-a");
    // A's name is looked up (and remembered) before the restart.
    assert_eq!(id_seen_by(&a, "rn-a"), a_id);
    missing(
        &b.run(&["inspect", "--type", "container", "rn-a"]),
        "rn-a",
        "B before the restart",
    );

    daemon.stop();
    daemon.launch();

    // Ownership comes back from the labels the daemon kept.
    assert_eq!(
        id_seen_by(&a, "rn-a"),
        a_id,
        "A's container after the restart"
    );
    missing(
        &b.run(&["inspect", "--type", "container", "rn-a"]),
        "rn-a",
        "B after the restart",
    );
    missing(&b.run(&["rm", "rn-a"]), "rn-a", "B removing A's");
    missing(&b.run(&["rm", &a_id]), &a_id, "B removing A's by ID");
    assert_eq!(id_seen_by(&a, &a_id[..12]), a_id, "A's ID prefix");

    // An admin moves A's container away on the daemon directly and gives its name to a
    // container of B's, right after the restart: A's remembered name must not lead there.
    daemon.direct().ok(&["rename", "rn-a", "rn-c"]);
    let label = format!("{LABEL}=uid:3002");
    let b_id = daemon
        .direct()
        .ok_str(&[
            "create",
            "--network",
            "none",
            "--label",
            &label,
            "--name",
            "rn-a",
            &image,
        ])
        .trim()
        .to_owned();
    missing(
        &a.run(&["inspect", "--type", "container", "rn-a"]),
        "rn-a",
        "A's old name, now B's",
    );
    missing(&a.run(&["rm", "rn-a"]), "rn-a", "A removing B's");
    assert_eq!(id_seen_by(&b, "rn-a"), b_id, "B's container by its name");
    assert_eq!(
        id_seen_by(&a, "rn-c"),
        a_id,
        "A's container by its new name"
    );

    // Restarted once more, then a name freed by B and reused by A: each sees only its own.
    daemon.stop();
    daemon.launch();
    b.ok(&["rm", "rn-a"]);
    let a2 = create(&a, "rn-a");
    missing(
        &b.run(&["inspect", "--type", "container", "rn-a"]),
        "rn-a",
        "B after A reused the name",
    );
    assert_eq!(id_seen_by(&a, "rn-a"), a2);
    assert_eq!(
        owner_on(&daemon, &a_id),
        "uid:3001",
        "the label survived both restarts"
    );
    a.ok(&["rm", "rn-a", "rn-c"]);
}

/// The owner label of a container, read on `daemon` directly.
fn owner_on(daemon: &PrivateDaemon, id: &str) -> String {
    let format = format!("{{{{index .Config.Labels \"{LABEL}\"}}}}");
    daemon
        .direct()
        .ok_str(&["inspect", "--format", &format, id])
        .trim()
        .to_owned()
}
