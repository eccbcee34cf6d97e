//! Fleet deployment paths, exercised offline:
//! - config watching (`serve --watch-config`, the base of the Kubernetes path): the exact
//!   layout kubelet gives a mounted ConfigMap (`sockwarden.toml -> ..data/sockwarden.toml`,
//!   `..data -> ..2026_...`, updated by renaming a new `..data_tmp` symlink over `..data`) is
//!   updated under a running sockwarden, and the docker CLI sees the new policy without a
//!   restart; a broken config swapped in keeps the old one (logged, audited, counted); plain
//!   files edited in place and renamed over by an editor reload too; without the flag nothing
//!   changes.
//! - Kubernetes: deploy/kubernetes validates offline with `kubernetes-validate` (installed by
//!   scripts/test.sh; SOCKWARDEN_KUBERNETES_VALIDATE names it), and its references hold: the
//!   ConfigMap's policy passes `sockwarden check --no-fs`, probes and the Prometheus
//!   annotations name the admin listener of that policy, the image is the one
//!   deploy/container/build.sh tags, the socket is the node's.
//! - Swarm: a second private dockerd of the test's own, in a network namespace the test makes
//!   (a veth pair with a private address inside it only), `docker swarm init`, the image built
//!   on it with deploy/container/build.sh, deploy/swarm/stack.yaml deployed as a stack, and the
//!   docker CLI driven through the containerised sockwarden's socket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{
    audit_records, current_uid, daemon_socket, http_request, toml_str, wait_audit_record, wait_for,
    Docker, Proxy, SOCKWARDEN,
};

const T: Duration = Duration::from_secs(20);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// -------------------------------------------------------------------------------------------
// Config watching
// -------------------------------------------------------------------------------------------

/// A whole config: the test daemon upstream, `dir/proxy.sock`, a file audit log and an admin
/// socket in `dir`, and the test's uid under `policy` (`allow-all`, or `ro`: read-only).
fn policy_config(dir: &Path, policy: &str) -> String {
    format!(
        r#"[upstream]
socket = {up}

[audit]
sink = "file"
path = {audit}

[admin]
unix = {admin}

[[listen]]
unix = {sock}
mode = "0600"

[[client]]
name = "sw-test"
policy = "{policy}"
uids = [{uid}]

[policy.ro]
profile = "read-only"
"#,
        up = toml_str(&daemon_socket().display().to_string()),
        audit = toml_str(&dir.join("audit.log").display().to_string()),
        admin = toml_str(&dir.join("admin.sock").display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        uid = current_uid(),
    )
}

/// Not a valid config: an unknown key (a typo), which `check` refuses.
fn broken_config(dir: &Path) -> String {
    policy_config(dir, "allow-all").replace("[[client]]", "[[client]]\npolicyy = \"x\"")
}

/// The volume-create probe: Ok when the proxy let `docker volume create` through (the volume
/// is then removed directly on the daemon), Err(stderr) when it refused it (and the volume
/// does not exist).
fn try_create_volume(proxy: &Proxy) -> Result<(), String> {
    let name = support::unique_name("fleet-vol");
    let out = proxy.docker().run(&["volume", "create", &name]);
    let direct = Docker::new(&daemon_socket());
    let exists = direct.run(&["volume", "inspect", &name]).status.success();
    if out.status.success() {
        assert!(exists, "created through the proxy but not on the daemon");
        direct.ok(&["volume", "rm", &name]);
        Ok(())
    } else {
        assert!(
            !exists,
            "refused, yet the volume exists: {}",
            text(&out.stderr)
        );
        Err(text(&out.stderr))
    }
}

/// Waits until `want_allowed` holds for volume creation through `proxy`.
fn wait_policy(proxy: &Proxy, want_allowed: bool, what: &str) {
    let ok = wait_for(T, || {
        (try_create_volume(proxy).is_ok() == want_allowed).then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: volume create still {} after {T:?}\n--- proxy log ---\n{}",
        if want_allowed { "refused" } else { "allowed" },
        proxy.log_text()
    );
}

fn refused_in_dockers_shape(err: &str) {
    assert!(
        err.contains("Error response from daemon: sockwarden: volume.create"),
        "not Docker's shape: {err}"
    );
}

fn reloads(dir: &Path) -> Vec<Value> {
    audit_records(&dir.join("audit.log"))
        .into_iter()
        .filter(|r| r["event"] == "reload")
        .collect()
}

/// `name{labels} value` from the admin listener's /metrics.
fn metric(dir: &Path, name_and_labels: &str) -> f64 {
    let resp = http_request(
        &dir.join("admin.sock"),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    let body = text(&resp);
    body.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The layout kubelet's AtomicWriter gives a mounted ConfigMap in `dir`.
struct ConfigMap {
    dir: PathBuf,
    n: u32,
}

impl ConfigMap {
    fn create(dir: &Path, content: &str) -> ConfigMap {
        let mut cm = ConfigMap {
            dir: dir.to_path_buf(),
            n: 0,
        };
        cm.update(content);
        symlink("..data/sockwarden.toml", dir.join("sockwarden.toml")).unwrap();
        cm
    }

    /// A new timestamped directory with the content, a `..data_tmp` symlink to it renamed over
    /// `..data` (atomic), the old directory removed.
    fn update(&mut self, content: &str) {
        self.n += 1;
        let ts = format!(
            "..2026_12_03_13_{:02}_{:02}.{}",
            self.n / 60,
            self.n % 60,
            400_000 + self.n
        );
        std::fs::create_dir(self.dir.join(&ts)).unwrap();
        std::fs::write(self.dir.join(&ts).join("sockwarden.toml"), content).unwrap();
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        symlink(&ts, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

#[test]
fn configmap_update_changes_the_policy_without_a_restart() {
    let mut cm = None;
    let mut proxy = Proxy::start_prepared(
        |dir| {
            let mount = dir.join("config");
            std::fs::create_dir(&mount).unwrap();
            cm = Some(ConfigMap::create(&mount, &policy_config(dir, "ro")));
            mount.join("sockwarden.toml")
        },
        &["--watch-config"],
    );
    let mut cm = cm.unwrap();
    let dir = proxy.dir.path().to_path_buf();
    let pid = proxy.pid();
    refused_in_dockers_shape(&try_create_volume(&proxy).unwrap_err());

    // The ConfigMap changes: the new policy applies to the next request, same process.
    cm.update(&policy_config(&dir, "allow-all"));
    wait_policy(&proxy, true, "after the ConfigMap update");
    let ok = wait_audit_record(&dir.join("audit.log"), T, |r| {
        r["event"] == "reload" && r["result"] == "ok"
    });
    assert_eq!(ok["source"], "file watch", "{ok}");
    assert_eq!(ok["generation"], 2, "{ok}");

    // A broken config swapped in: refused, the one in force stays, and it says why.
    cm.update(&broken_config(&dir));
    let bad = wait_audit_record(&dir.join("audit.log"), T, |r| {
        r["event"] == "reload" && r["result"] == "error"
    });
    assert_eq!(bad["source"], "file watch", "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("policyy"), "{bad}");
    assert!(try_create_volume(&proxy).is_ok(), "old policy kept");
    assert_eq!(
        metric(&dir, "sockwarden_reloads_total{result=\"error\"}"),
        1.0
    );
    assert!(
        proxy.log_text().contains("reload refused"),
        "{}",
        proxy.log_text()
    );

    // Fixed again (read-only): applies; the broken one was counted once, not retried.
    cm.update(&policy_config(&dir, "ro"));
    wait_policy(&proxy, false, "after the fix");
    refused_in_dockers_shape(&try_create_volume(&proxy).unwrap_err());
    // The same content again (another key of the ConfigMap changed): no reload.
    let before = reloads(&dir).len();
    cm.update(&policy_config(&dir, "ro"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(reloads(&dir).len(), before, "{:?}", reloads(&dir));
    assert_eq!(metric(&dir, "sockwarden_reloads_total{result=\"ok\"}"), 2.0);
    assert_eq!(
        metric(&dir, "sockwarden_reloads_total{result=\"error\"}"),
        1.0
    );
    assert!(proxy.is_running());
    assert_eq!(proxy.pid(), pid);
}

#[test]
fn plain_file_edits_in_place_and_by_rename_reload() {
    let proxy = Proxy::start_config_args(|dir| policy_config(dir, "ro"), &["--watch-config"]);
    let dir = proxy.dir.path().to_path_buf();
    assert!(try_create_volume(&proxy).is_err());

    // In place: the same inode, truncated and written (as `cat > file` or sed -i's fallback).
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&proxy.config)
            .unwrap();
        f.write_all(policy_config(&dir, "allow-all").as_bytes())
            .unwrap();
    }
    wait_policy(&proxy, true, "after the in-place write");

    // As an editor saves: a new file, renamed over the config.
    let tmp = dir.join(".sockwarden.toml.swp");
    std::fs::write(&tmp, policy_config(&dir, "ro")).unwrap();
    std::fs::rename(&tmp, &proxy.config).unwrap();
    wait_policy(&proxy, false, "after the editor's rename");

    // A broken file, in place: the read-only policy stays.
    std::fs::write(&proxy.config, broken_config(&dir)).unwrap();
    wait_audit_record(&dir.join("audit.log"), T, |r| {
        r["event"] == "reload" && r["result"] == "error"
    });
    refused_in_dockers_shape(&try_create_volume(&proxy).unwrap_err());
    let sources: Vec<Value> = reloads(&dir).iter().map(|r| r["source"].clone()).collect();
    assert!(sources.iter().all(|s| s == "file watch"), "{sources:?}");
    assert_eq!(sources.len(), 3, "one reload per change: {sources:?}");
}

#[test]
fn without_the_flag_a_changed_file_is_not_reloaded() {
    let proxy = Proxy::start_config(|dir| policy_config(dir, "ro"));
    let dir = proxy.dir.path().to_path_buf();
    std::fs::write(&proxy.config, policy_config(&dir, "allow-all")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    refused_in_dockers_shape(&try_create_volume(&proxy).unwrap_err());
    assert!(reloads(&dir).is_empty());
    // SIGHUP still reloads it.
    proxy.signal("HUP");
    wait_policy(&proxy, true, "after SIGHUP");
}

#[test]
fn watch_config_needs_a_config_file() {
    let out = Command::new(SOCKWARDEN)
        .args(["serve", "--watch-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("--config"),
        "{}",
        text(&out.stderr)
    );
    let help = Command::new(SOCKWARDEN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(text(&help.stdout).contains("--watch-config"));
}
