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
use std::process::{Command, Output};
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

// -------------------------------------------------------------------------------------------
// Kubernetes
// -------------------------------------------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_docs(path: &Path) -> Vec<serde_yaml::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

fn kube(file: &str) -> serde_yaml::Value {
    let mut docs = yaml_docs(&repo().join("deploy/kubernetes").join(file));
    assert_eq!(docs.len(), 1, "{file}: one resource");
    docs.remove(0)
}

fn s(v: &serde_yaml::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

/// The validator scripts/test.sh installed, or None when it reported it skipped (the summary
/// lists it). Run outside test.sh, `kubernetes-validate` must be on PATH: a missing validator
/// fails the test, never passes it.
fn kubernetes_validate() -> Option<PathBuf> {
    match std::env::var("SOCKWARDEN_KUBERNETES_VALIDATE") {
        Ok(v) if v.starts_with("skip:") => {
            println!("skipped: kubernetes-validate ({v}); scripts/test.sh lists it as skipped");
            None
        }
        Ok(v) => Some(PathBuf::from(v)),
        Err(_) => {
            let found = Command::new("sh")
                .args(["-c", "command -v kubernetes-validate"])
                .output()
                .unwrap();
            assert!(
                found.status.success(),
                "kubernetes-validate is not installed: run through scripts/test.sh (it installs it) or pip install kubernetes-validate"
            );
            Some(PathBuf::from(text(&found.stdout).trim()))
        }
    }
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate_strict() {
    let Some(validate) = kubernetes_validate() else {
        return;
    };
    let dir = repo().join("deploy/kubernetes");
    // Every resource the kustomization lists, and nothing in the directory left out of it.
    let kustomization = kube("kustomization.yaml");
    let resources: Vec<String> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| s(r).to_owned())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut listed = resources.clone();
    listed.sort();
    assert_eq!(listed, on_disk, "kustomization resources");
    let out = Command::new(&validate)
        .arg("--strict")
        .args(resources.iter().map(|r| dir.join(r)))
        .output()
        .unwrap();
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    for r in &resources {
        assert!(report.contains(&format!("{r} passed")), "{r}: {report}");
    }
    // The validator does reject what is wrong: a misspelled field, a wrong type.
    let tmp = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(dir.join("daemonset.yaml")).unwrap();
    for (from, to) in [
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesytem: true",
        ),
        ("containerPort: 9100", "containerPort: \"nine\""),
    ] {
        assert!(manifest.contains(from));
        let bad = tmp.path().join("daemonset.yaml");
        std::fs::write(&bad, manifest.replace(from, to)).unwrap();
        let out = Command::new(&validate)
            .arg("--strict")
            .arg(&bad)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{to}: accepted: {}",
            text(&out.stdout)
        );
    }
}

/// The policy the ConfigMap carries, written to `dir/sockwarden.toml`.
fn configmap_policy(dir: &Path) -> (PathBuf, toml::Value) {
    let cm = kube("configmap.yaml");
    assert_eq!(s(&cm["kind"]), "ConfigMap");
    let policy = s(&cm["data"]["sockwarden.toml"]).to_owned();
    let file = dir.join("sockwarden.toml");
    std::fs::write(&file, &policy).unwrap();
    (file, toml::from_str(&policy).unwrap())
}

fn check_no_fs(file: &Path) {
    let out = Command::new(SOCKWARDEN)
        .args(["check", "--no-fs", "--config"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}{}",
        file.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The tag deploy/container/build.sh gives the image unless told otherwise.
fn build_sh_default_tag() -> String {
    let script = std::fs::read_to_string(repo().join("deploy/container/build.sh")).unwrap();
    script
        .lines()
        .find_map(|l| l.strip_prefix("tag="))
        .expect("build.sh sets tag=")
        .trim()
        .to_owned()
}

#[test]
fn kubernetes_references_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let (policy_file, policy) = configmap_policy(tmp.path());
    check_no_fs(&policy_file);
    assert_eq!(
        policy["audit"]["sink"].as_str(),
        Some("stdout"),
        "audit on stdout"
    );
    let admin = policy["admin"]["tcp"].as_str().expect("[admin] tcp");
    let admin_port: u16 = admin.rsplit_once(':').unwrap().1.parse().unwrap();
    // Reachable by the kubelet's probes and Prometheus: the pod's address, not loopback.
    assert!(admin.starts_with("0.0.0.0:"), "{admin}");
    // Every client of the ConfigMap's policy is read-only.
    for (name, p) in policy["policy"].as_table().unwrap() {
        assert_eq!(p["profile"].as_str(), Some("read-only"), "policy {name}");
    }

    let ds = kube("daemonset.yaml");
    assert_eq!(s(&ds["kind"]), "DaemonSet");
    let cm = kube("configmap.yaml");
    assert_eq!(ds["metadata"]["namespace"], cm["metadata"]["namespace"]);
    let pod = &ds["spec"]["template"];
    let spec = &pod["spec"];
    let containers = spec["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // The image deploy/container/build.sh builds, pulled only when not on the node.
    assert_eq!(s(&c["image"]), build_sh_default_tag());
    assert_eq!(s(&c["imagePullPolicy"]), "IfNotPresent");

    // The config the container runs is the ConfigMap's, mounted as a directory (a subPath
    // mount never sees updates), and watched.
    let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().map(s).collect();
    let config_arg = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    assert!(args.contains(&"--watch-config"), "{args:?}");
    assert_eq!(args[0], "serve");
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let volumes = spec["volumes"].as_sequence().unwrap();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| s(&v["name"]) == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let mount_at = |path: &Path| {
        mounts
            .iter()
            .find(|m| path.starts_with(s(&m["mountPath"])))
            .unwrap_or_else(|| panic!("nothing mounted at {}", path.display()))
    };
    let config_mount = mount_at(Path::new(config_arg));
    assert_eq!(
        Path::new(config_arg),
        Path::new(s(&config_mount["mountPath"])).join("sockwarden.toml")
    );
    assert!(config_mount.get("subPath").is_none(), "no subPath");
    assert_eq!(config_mount["readOnly"].as_bool(), Some(true));
    assert_eq!(
        volume(s(&config_mount["name"]))["configMap"]["name"],
        cm["metadata"]["name"]
    );

    // The upstream socket is the node's Docker socket; the unix listener's directory is the
    // node's, so processes on the node reach it.
    let upstream = policy["upstream"]["socket"].as_str().unwrap();
    let sock_mount = mount_at(Path::new(upstream));
    assert_eq!(s(&sock_mount["mountPath"]), upstream);
    let host = &volume(s(&sock_mount["name"]))["hostPath"];
    assert_eq!(s(&host["path"]), "/var/run/docker.sock");
    assert_eq!(s(&host["type"]), "Socket");
    for l in policy["listen"].as_array().unwrap() {
        if let Some(unix) = l.get("unix").and_then(|u| u.as_str()) {
            let m = mount_at(Path::new(unix));
            assert!(volume(s(&m["name"])).get("hostPath").is_some(), "{unix}");
            assert!(m.get("readOnly").is_none(), "{unix}: writable");
        }
    }

    // Probes and Prometheus on the admin listener.
    let ports = c["ports"].as_sequence().unwrap();
    let port_of = |p: &serde_yaml::Value| -> u16 {
        match p.as_u64() {
            Some(n) => n as u16,
            None => ports
                .iter()
                .find(|x| x["name"] == *p)
                .and_then(|x| x["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no port {p:?}")) as u16,
        }
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(s(&get["path"]), path, "{probe}");
        assert_eq!(port_of(&get["port"]), admin_port, "{probe}");
    }
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(s(&ann["prometheus.io/scrape"]), "true");
    assert_eq!(s(&ann["prometheus.io/port"]), admin_port.to_string());
    assert_eq!(s(&ann["prometheus.io/path"]), "/metrics");

    // As tight as the socket allows: not root, nothing to escalate, no capability, a
    // read-only root, no service account token, no host network, requests and limits.
    let psc = &spec["securityContext"];
    assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(psc["runAsUser"].as_u64(), Some(65532));
    assert!(!psc["supplementalGroups"].as_sequence().unwrap().is_empty());
    assert_eq!(s(&psc["seccompProfile"]["type"]), "RuntimeDefault");
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["privileged"].as_bool(), Some(false));
    let drop: Vec<&str> = sc["capabilities"]["drop"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(drop, ["ALL"]);
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(spec["automountServiceAccountToken"].as_bool(), Some(false));
    assert!(spec
        .get("hostNetwork")
        .is_none_or(|h| h.as_bool() == Some(false)));
    assert!(spec.get("hostPID").is_none());
    for kind in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(c["resources"][kind][res].as_str().is_some(), "{kind}.{res}");
        }
    }
}

/// The Kubernetes ConfigMap's policy, served by the binary as the pod would (paths moved into
/// a temp dir), answers the probes on the admin port and refuses a write: the file is not only
/// valid but does what the manifests say.
#[test]
fn kubernetes_policy_serves_probes_and_refuses_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _) = configmap_policy(tmp.path());
    let policy = std::fs::read_to_string(tmp.path().join("sockwarden.toml")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start_prepared(
        |dir| {
            let file = dir.join("sockwarden.toml");
            let moved = policy
                .replace(
                    "\"/var/run/docker.sock\"",
                    &toml_str(&daemon_socket().display().to_string()),
                )
                .replace(
                    "\"/run/sockwarden/docker.sock\"",
                    &toml_str(&dir.join("proxy.sock").display().to_string()),
                )
                .replace("0.0.0.0:9100", &format!("127.0.0.1:{port}"));
            assert_ne!(moved, policy);
            std::fs::write(&file, moved).unwrap();
            file
        },
        &["--watch-config"],
    );
    let log = proxy.log_text();
    assert!(log.contains("watching the configuration file"), "{log}");
    for path in ["/healthz", "/readyz"] {
        let answer = wait_for(T, || {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            use std::io::{Read, Write};
            write!(
                conn,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .ok()?;
            let mut resp = String::new();
            conn.read_to_string(&mut resp).ok()?;
            resp.starts_with("HTTP/1.1 200").then_some(resp)
        });
        assert!(
            answer.is_some(),
            "{path} on the admin port:\n{}",
            proxy.log_text()
        );
    }
    let docker = proxy.docker();
    docker.ok(&["ps"]);
    let out = docker.run(&["volume", "create", &support::unique_name("k8s-vol")]);
    refused_in_dockers_shape(&text(&out.stderr));
    // Audit records on stdout (the container log the cluster collects).
    let denied = wait_for(T, || {
        let log = proxy.log_text();
        log.lines()
            .any(|l| {
                l.contains("\"operation\":\"volume.create\"") && l.contains("\"decision\":\"deny\"")
            })
            .then_some(())
    });
    assert!(denied.is_some(), "{}", proxy.log_text());
}

// -------------------------------------------------------------------------------------------
// Swarm
// -------------------------------------------------------------------------------------------

/// Runs a command that must succeed; returns its stdout.
fn must(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A second private containerd and dockerd of this test's own, inside a network namespace it
/// creates, with a veth pair carrying a private address that exists only in there. Dropping it
/// (also when the test fails) leaves the swarm, stops both daemons, kills their container
/// shims, unmounts what they left under its directory and deletes the namespace.
struct SwarmDaemon {
    ns: String,
    dir: tempfile::TempDir,
    sock: PathBuf,
    containerd: Option<std::process::Child>,
    dockerd: Option<std::process::Child>,
}

const SWARM_ADDR: &str = "10.213.47.1";

impl SwarmDaemon {
    fn start() -> SwarmDaemon {
        let dir = tempfile::Builder::new()
            .prefix("swf.")
            .tempdir_in("/tmp")
            .unwrap();
        let ns = format!("swf-{}", std::process::id());
        let mut daemon = SwarmDaemon {
            ns: ns.clone(),
            sock: dir.path().join("d.sock"),
            dir,
            containerd: None,
            dockerd: None,
        };
        must(Command::new("ip").args(["netns", "add", &ns]));
        for args in [
            vec!["link", "set", "lo", "up"],
            vec![
                "link", "add", "swf0", "type", "veth", "peer", "name", "swf1",
            ],
            vec!["addr", "add", &format!("{SWARM_ADDR}/24"), "dev", "swf0"],
            vec!["link", "set", "swf0", "up"],
            vec!["link", "set", "swf1", "up"],
        ] {
            must(Command::new("ip").args(["-n", &ns]).args(&args));
        }
        let d = daemon.dir.path().to_path_buf();
        let netns = format!("--net=/run/netns/{ns}");
        std::fs::create_dir(d.join("ctd")).unwrap();
        std::fs::write(
            d.join("ctd/config.toml"),
            format!(
                "version = 2\nroot = {root}\nstate = {state}\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = {addr}\n",
                root = toml_str(&d.join("ctd/root").display().to_string()),
                state = toml_str(&d.join("ctd/state").display().to_string()),
                addr = toml_str(&d.join("ctd/ctd.sock").display().to_string()),
            ),
        )
        .unwrap();
        let log = |name: &str| std::fs::File::create(d.join(name)).unwrap();
        // nsenter with --net only: the daemons keep the host's mounts (cgroups) and see the
        // namespace's network alone.
        daemon.containerd = Some(
            Command::new("nsenter")
                .arg(&netns)
                .arg("containerd")
                .arg("--config")
                .arg(d.join("ctd/config.toml"))
                .stdout(log("containerd.log"))
                .stderr(log("containerd.err"))
                .spawn()
                .unwrap(),
        );
        let ctd_sock = d.join("ctd/ctd.sock");
        assert!(
            wait_for(T, || ctd_sock.exists().then_some(())).is_some(),
            "containerd did not start: {}",
            std::fs::read_to_string(d.join("containerd.err")).unwrap_or_default()
        );
        daemon.dockerd = Some(
            Command::new("nsenter")
                .arg(&netns)
                .arg("dockerd")
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("dockerd.pid"))
                .arg("-H")
                .arg(format!("unix://{}", daemon.sock.display()))
                .arg("--containerd")
                .arg(&ctd_sock)
                .args([
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    "--storage-driver=vfs",
                ])
                .stdout(log("dockerd.log"))
                .stderr(log("dockerd.err"))
                .spawn()
                .unwrap(),
        );
        let docker = daemon.docker();
        let up = wait_for(Duration::from_secs(60), || {
            docker.run(&["version"]).status.success().then_some(())
        });
        assert!(
            up.is_some(),
            "swarm dockerd did not start: {}",
            daemon.logs()
        );
        daemon
    }

    fn docker(&self) -> Docker {
        Docker::new(&self.sock)
    }

    /// Runs `program args` inside the namespace.
    fn inside(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(program)
            .args(args)
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "--- dockerd ---\n{}\n--- containerd ---\n{}",
            tail(read("dockerd.err")),
            tail(read("containerd.err"))
        )
    }
}

impl Drop for SwarmDaemon {
    fn drop(&mut self) {
        let _ = self
            .docker()
            .timeout(Duration::from_secs(30))
            .try_run(&["swarm", "leave", "--force"]);
        let stop = |child: &mut Option<std::process::Child>, secs: u64| {
            if let Some(mut c) = child.take() {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let gone = wait_for(Duration::from_secs(secs), || {
                    c.try_wait().ok().flatten().map(|_| ())
                });
                if gone.is_none() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        };
        stop(&mut self.dockerd, 30);
        stop(&mut self.containerd, 15);
        // Container shims outlive containerd; ours name our directory on their command line.
        let dir = self.dir.path().display().to_string();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let name = p.file_name().to_string_lossy().into_owned();
                if name.parse::<u32>().is_err() || name == std::process::id().to_string() {
                    continue;
                }
                let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
                if text(&cmdline).contains(&format!("{dir}/")) {
                    let _ = Command::new("kill").args(["-KILL", &name]).status();
                }
            }
        }
        // Mounts left below the directory (netns files, shm), deepest first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&format!("{dir}/")))
            .collect();
        ours.sort_by(|a, b| b.cmp(a));
        for m in ours {
            if !Command::new("umount")
                .arg(m)
                .status()
                .is_ok_and(|s| s.success())
            {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn swarm_stack_runs_sockwarden_as_a_global_service() {
    let swarm = SwarmDaemon::start();
    let docker = swarm.docker();
    // The namespace has its own address and nothing else; the swarm advertises it.
    let addrs = text(&swarm.inside("ip", &["-o", "addr"]).stdout);
    assert!(addrs.contains(SWARM_ADDR), "{addrs}");
    docker.ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        SWARM_ADDR,
        "--listen-addr",
        &format!("{SWARM_ADDR}:2377"),
    ]);
    assert_eq!(
        docker
            .ok_str(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .trim(),
        "active"
    );

    // The image, built on that daemon with deploy/container/build.sh (no registry).
    let tag = format!("sockwarden-fleet:{}", std::process::id());
    support::build_image_on(&swarm.sock, &tag);

    // The stack file as documented, the node paths pointed at this test's.
    let run_dir = swarm.dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    std::os::unix::fs::chown(&run_dir, Some(65532), Some(65532)).unwrap();
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata(&swarm.sock).unwrap().gid().to_string();
    let deployed = docker
        .clone()
        .env("DOCKER_GID", &gid)
        .env("SOCKWARDEN_IMAGE", &tag)
        .env(
            "SOCKWARDEN_DOCKER_SOCKET",
            &swarm.sock.display().to_string(),
        )
        .env("SOCKWARDEN_RUN_DIR", &run_dir.display().to_string())
        .run(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &repo().join("deploy/swarm/stack.yaml").display().to_string(),
            "fleet",
        ]);
    assert!(
        deployed.status.success(),
        "stack deploy: {}{}",
        text(&deployed.stdout),
        text(&deployed.stderr)
    );
    let service = "fleet_sockwarden";
    assert_eq!(
        docker
            .ok_str(&[
                "service",
                "inspect",
                "--format",
                "{{.Spec.Mode.Global}}",
                service
            ])
            .trim(),
        "{}",
        "a global service"
    );
    let sock = run_dir.join("docker.sock");
    let running = wait_for(Duration::from_secs(90), || {
        let states = docker.ok_str(&["service", "ps", "--format", "{{.CurrentState}}", service]);
        (states.starts_with("Running") && sock.exists()).then_some(())
    });
    assert!(
        running.is_some(),
        "task not running: {}\n{}\n{}",
        docker.ok_str(&["service", "ps", "--no-trunc", service]),
        text(&docker.run(&["service", "logs", service]).stdout),
        swarm.logs()
    );
    // Its socket, made by the image's user with the Docker socket's group, 0660.
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!((meta.uid(), meta.gid().to_string()), (65532, gid.clone()));
    assert_eq!(meta.mode() & 0o777, 0o660);

    // Allowed calls work through it, for both CLIs: the same answers as the daemon's.
    let through = Docker::new(&sock);
    for cli in ["/usr/local/bin/docker", "/usr/bin/docker"] {
        let through = through.clone().bin(cli);
        let ids = through.ok_str(&["ps", "-q", "--no-trunc"]);
        assert_eq!(ids, docker.ok_str(&["ps", "-q", "--no-trunc"]), "{cli}");
        assert!(!ids.trim().is_empty(), "the task's container is listed");
        let services = through.ok_str(&["service", "ls", "--format", "{{.Name}} {{.Mode}}"]);
        assert_eq!(services.trim(), format!("{service} global"), "{cli}");
        // Refused ones are refused in Docker's shape, and nothing changes.
        let volume = support::unique_name("swarm-vol");
        for (args, op) in [
            (vec!["volume", "create", volume.as_str()], "volume.create"),
            (
                vec!["network", "create", "--driver", "overlay", "fleet-net"],
                "network.create",
            ),
            (vec!["service", "rm", service], "service.delete"),
            (vec!["swarm", "leave", "--force"], "swarm.leave"),
        ] {
            let out = through.run(&args);
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{cli} {args:?} allowed");
            assert!(
                err.contains(&format!("Error response from daemon: sockwarden: {op}")),
                "{cli} {args:?}: {err}"
            );
        }
        assert!(!docker.run(&["volume", "inspect", &volume]).status.success());
    }
    assert!(!docker
        .run(&["network", "inspect", "fleet-net"])
        .status
        .success());
    assert_eq!(
        docker.ok_str(&["service", "ls", "-q"]).lines().count(),
        1,
        "the service is still there"
    );
    assert_eq!(
        docker
            .ok_str(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .trim(),
        "active"
    );

    // Audit records in the service's log; the admin listener on the node's loopback.
    let audited = wait_for(T, || {
        let logs = text(&docker.run(&["service", "logs", "--raw", service]).stdout);
        (logs.contains("\"operation\":\"service.delete\"")
            && logs.contains("\"decision\":\"deny\""))
        .then_some(())
    });
    assert!(
        audited.is_some(),
        "{}",
        text(&docker.run(&["service", "logs", service]).stdout)
    );
    let policy = std::fs::read_to_string(repo().join("deploy/swarm/sockwarden.toml")).unwrap();
    let policy: toml::Value = toml::from_str(&policy).unwrap();
    let admin = policy["admin"]["tcp"].as_str().unwrap();
    assert!(admin.starts_with("127.0.0.1:"), "{admin}");
    let ready = swarm.inside(
        "curl",
        &["-s", "--max-time", "5", &format!("http://{admin}/readyz")],
    );
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    let metrics = swarm.inside(
        "curl",
        &["-s", "--max-time", "5", &format!("http://{admin}/metrics")],
    );
    assert!(
        text(&metrics.stdout).contains("sockwarden_requests_total"),
        "{}",
        text(&metrics.stdout)
    );
}

#[test]
fn swarm_files_hold_together() {
    check_no_fs(&repo().join("deploy/swarm/sockwarden.toml"));
    let stack = &yaml_docs(&repo().join("deploy/swarm/stack.yaml"))[0];
    let svc = &stack["services"]["sockwarden"];
    assert_eq!(s(&svc["deploy"]["mode"]), "global");
    assert_eq!(
        s(&svc["image"]),
        format!("${{SOCKWARDEN_IMAGE:-{}}}", build_sh_default_tag())
    );
    assert_eq!(svc["read_only"].as_bool(), Some(true));
    let caps: Vec<&str> = svc["cap_drop"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(caps, ["ALL"]);
    assert!(s(&svc["user"]).starts_with("65532:"));
    let config = &svc["configs"][0];
    assert_eq!(s(&config["target"]), "/etc/sockwarden/sockwarden.toml");
    let args: Vec<&str> = svc["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert!(
        args.ends_with(&["--config", "/etc/sockwarden/sockwarden.toml"]),
        "{args:?}"
    );
    assert_eq!(
        s(&stack["configs"][s(&config["source"])]["file"]),
        "./sockwarden.toml"
    );
}

// -------------------------------------------------------------------------------------------
// The static (musl) image build
// -------------------------------------------------------------------------------------------

/// deploy/container/build.sh without --binary, where musl-gcc and the Rust musl target are
/// installed: it builds a static binary for x86_64-unknown-linux-musl and an image holding
/// nothing but it and its files (no library), which runs. The build uses its own target
/// directory and a quick release profile (cargo's CARGO_PROFILE_RELEASE_* variables), so it
/// neither replaces a real release build nor takes as long.
#[test]
fn build_sh_builds_a_static_musl_image() {
    match std::env::var("SOCKWARDEN_MUSL") {
        Ok(v) if v.starts_with("skip:") => {
            println!("skipped: the musl build ({v}); scripts/test.sh lists it as skipped");
            return;
        }
        Ok(_) => {}
        Err(_) => {
            let musl_gcc = Command::new("sh")
                .args(["-c", "command -v musl-gcc"])
                .status()
                .unwrap();
            assert!(
                musl_gcc.success(),
                "musl-gcc is not installed: run through scripts/test.sh (it installs musl-tools)"
            );
        }
    }
    let cleanup = support::Cleanup::new();
    let tag = cleanup.image("fleet-musl");
    let out = Command::new("bash")
        .arg(repo().join("deploy/container/build.sh"))
        .args(["--tag", &tag])
        .env("DOCKER_HOST", support::docker_host(&daemon_socket()))
        .env("DOCKER_CONFIG", support::empty_docker_config())
        .env("CARGO_TARGET_DIR", "target/fleet-musl")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "build.sh: {err}");
    assert_eq!(text(&out.stdout).trim(), tag);
    assert!(
        err.contains("building a static binary (x86_64-unknown-linux-musl)"),
        "{err}"
    );
    assert!(err.contains("build.sh: statically linked"), "{err}");
    let binary = repo().join("target/fleet-musl/x86_64-unknown-linux-musl/release/sockwarden");
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let ldd = format!("{}{}", text(&ldd.stdout), text(&ldd.stderr));
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "{ldd}"
    );

    // The image holds the binary and its files, no library, no loader.
    let docker = Docker::new(&daemon_socket());
    let name = cleanup.container("fleet-musl");
    docker.ok(&["create", "--name", &name, &tag]);
    let tar = docker.ok(&["export", &name]);
    let listing = Command::new("tar")
        .args(["-t", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&tar)?;
            child.wait_with_output()
        })
        .unwrap();
    let files: Vec<String> = text(&listing.stdout)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| l.trim_start_matches("./").to_owned())
        .collect();
    let mut expected = vec![
        "etc/group",
        "etc/passwd",
        "etc/sockwarden/sockwarden.toml",
        "usr/local/bin/sockwarden",
    ];
    let mut seen: Vec<&str> = files
        .iter()
        .map(String::as_str)
        // What the daemon adds to every container's root.
        .filter(|f| {
            !matches!(
                *f,
                ".dockerenv" | "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | "etc/mtab"
            ) && !f.starts_with("proc")
                && !f.starts_with("dev")
                && !f.starts_with("sys")
        })
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "{files:?}");

    // It runs: the version, and its own configuration checks.
    let version = docker.ok_str(&["run", "--rm", "--network", "none", &tag, "--version"]);
    assert!(version.starts_with("sockwarden "), "{version}");
    let check = docker.ok_str(&[
        "run",
        "--rm",
        "--network",
        "none",
        &tag,
        "check",
        "--no-fs",
        "--config",
        "/etc/sockwarden/sockwarden.toml",
    ]);
    assert!(check.contains("sockwarden.toml: ok"), "{check}");
}
