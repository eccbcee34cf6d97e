//! Issue 12, classes 1, 2 and the image half of 7, end to end against the private daemon:
//! host paths the daemon resolves at start, objects the policy could never have created
//! (another client's containers, execs and bind volumes), and settings an image brings.
//!
//! Three sockets: `admin` (allow-all, makes what a restricted client must not reach), `ci` (the
//! `ci` profile plus exec, restart, archive and a writable cache: `cache` on a nosuid,nodev
//! tmpfs, `plain` on an ordinary mount) and `ro` (read-only binds of `ro` only). Every refusal
//! is checked in the daemon's state (nothing created, started or run) and on the host.
//!
//! Run as root (mounts a tmpfs, `setpriv`): `bash scripts/test.sh reach_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{
    daemon_socket, http_request, stderr_str, stdout_str, test_image, toml_str, Cleanup, Docker,
    Proxy, DEBIAN_DOCKER_CLI,
};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mount -t tmpfs -o {options} {}",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The three clients' sockets, their host directories and a daemon-side cleanup.
struct Env {
    proxy: Proxy,
    ci: PathBuf,
    ro: PathBuf,
    /// Writable source on a nosuid,nodev tmpfs.
    cache: PathBuf,
    /// Writable source on an ordinary mount (no nosuid, nodev).
    plain: PathBuf,
    /// Read-only source of the `ro` policy.
    rodir: PathBuf,
    /// Outside every source: what symlinks point at.
    outside: PathBuf,
    cleanup: Cleanup,
    // Dropped last: unmounted after the containers using it are gone.
    _tmpfs: Tmpfs,
    base: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let base = tempfile::Builder::new()
            .prefix("swr.")
            .tempdir_in("/tmp")
            .unwrap();
        // Canonical: the host checks compare spellings with canonical paths.
        let b = std::fs::canonicalize(base.path()).unwrap();
        let cache = b.join("cache");
        let tmpfs = Tmpfs::mount(&cache, "nosuid,nodev,mode=0777");
        let plain = b.join("plain");
        let rodir = b.join("ro");
        let outside = b.join("outside");
        for d in [&plain, &rodir, &rodir.join("sub"), &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(outside.join("secret"), "host secret\n").unwrap();
        let (c, p, r) = (
            toml_str(&cache.display().to_string()),
            toml_str(&plain.display().to_string()),
            toml_str(&rodir.display().to_string()),
        );
        let upstream = toml_str(&daemon_socket().display().to_string());
        let proxy = Proxy::start_config(|dir| {
            let sock = |n: &str| toml_str(&dir.join(n).display().to_string());
            format!(
                r#"
[upstream]
socket = {upstream}

[[client]]
name = "admin"
policy = "allow-all"

[[client]]
name = "ci"
policy = "ci"

[[client]]
name = "ro"
policy = "ro"

[policy.ci]
profile = "ci"
allow = ["exec.create", "exec.start", "exec.inspect", "container.restart",
         "container.archive.put", "container.archive.get", "container.archive.head",
         "container.attach.websocket"]
allow_dangerous = ["exec.create", "exec.start", "container.archive.put",
                   "container.archive.get", "container.archive.head", "container.attach.websocket"]

[policy.ci.container]
bind_sources = [{c}, {p}]
require_read_only_binds = false
allow_volumes_from = true

[policy.ro]
profile = "ci"

[policy.ro.container]
bind_sources = [{r}]

[[listen]]
unix = {admin}
client = "admin"

[[listen]]
unix = {ci}
client = "ci"

[[listen]]
unix = {ro}
client = "ro"
"#,
                admin = sock("proxy.sock"),
                ci = sock("ci.sock"),
                ro = sock("ro.sock"),
            )
        });
        let ci = proxy.dir.path().join("ci.sock");
        let ro = proxy.dir.path().join("ro.sock");
        Env {
            proxy,
            ci,
            ro,
            cache,
            plain,
            rodir,
            outside,
            cleanup: Cleanup::new(),
            _tmpfs: tmpfs,
            base,
        }
    }

    fn admin(&self) -> Docker {
        self.proxy.docker()
    }

    fn ci(&self) -> Docker {
        Docker::new(&self.ci)
    }

    fn ro(&self) -> Docker {
        Docker::new(&self.ro)
    }

    fn name(&self, tag: &str) -> String {
        self.cleanup.container(tag)
    }

    /// Whether a container of that name exists on the daemon (asked directly).
    fn exists(&self, name: &str) -> bool {
        Docker::new(&daemon_socket())
            .run(&["inspect", "--type", "container", name])
            .status
            .success()
    }

    /// `docker inspect -f FORMAT` on the daemon directly.
    fn inspect(&self, name: &str, format: &str) -> String {
        Docker::new(&daemon_socket()).ok_str(&["inspect", "-f", format, name])
    }

    /// `docker create --name NAME --network none FLAG VALUE IMAGE CMD...` as `who`, with a
    /// fresh name from `tag`: the name and the CLI's output.
    fn create(&self, who: &Docker, tag: &str, mount: [&str; 2], cmd: &[&str]) -> (String, Output) {
        let name = self.name(tag);
        let image = test_image();
        let mut args = vec!["create", "--name", &name, "--network", "none"];
        args.extend(mount);
        args.push(&image);
        args.extend(cmd);
        let out = who.run(&args);
        (name, out)
    }

    fn path(&self, p: &Path) -> String {
        p.display().to_string()
    }
}

/// The command failed with sockwarden's refusal, whose text contains every `needle`.
#[track_caller]
fn refused(out: &Output, needles: &[&str]) {
    let err = stderr_str(out);
    assert!(
        !out.status.success(),
        "not refused:\n{}",
        support::describe(out)
    );
    assert!(
        err.contains("sockwarden"),
        "not sockwarden's refusal:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "refusal lacks {n:?}:\n{err}");
    }
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "failed:\n{}", support::describe(out));
    stdout_str(out)
}

/// A raw request on `sock`: status code and body.
fn raw(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = http_request(sock, req.as_bytes(), Duration::from_secs(30)).expect("request");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A tar archive of one regular file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    let size = format!("{:011o}", data.len());
    header[124..135].copy_from_slice(size.as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

fn both_clis(d: Docker) -> [Docker; 2] {
    [d.clone(), d.bin(DEBIAN_DOCKER_CLI)]
}

// ---------------------------------------------------------------------------------------------
// Class 1: host paths the daemon resolves at start

#[test]
fn symlinks_planted_in_a_writable_cache_never_become_binds() {
    let env = Env::new();
    let image = test_image();
    let cache = env.path(&env.cache);
    let sock_path = daemon_socket().display().to_string();
    // A CI job plants every kind of link in its cache: to /, to another host directory, to
    // the daemon's socket, a relative one, a nested one, and a real directory.
    let plant = format!(
        "ln -s / /c/root && ln -s {out} /c/out && ln -s {sock_path} /c/sock && ln -s ../.. /c/up \
         && mkdir -p /c/d/e && ln -s /etc /c/d/e/etc && mkdir /c/real && echo ok",
        out = env.path(&env.outside)
    );
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{cache}:/c"),
        &image,
        "sh",
        "-c",
        &plant,
    ]);
    assert_eq!(succeeded(&out).trim(), "ok");
    assert!(std::fs::symlink_metadata(env.cache.join("root"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Binds below the cache, however spelled: refused at create, nothing created.
    let spellings = [
        format!("{cache}/root:/h"),
        format!("{cache}/root/etc:/h:ro"),
        format!("{cache}/out:/h"),
        format!("{cache}/sock:/var/run/docker.sock"),
        format!("{cache}/up/tmp:/h"),
        format!("{cache}/d/e/etc:/h:ro"),
        format!("{cache}//root/:/h"),
        format!("{cache}/./d/e/etc:/h"),
        format!("{cache}/real:/h"),
    ];
    for (i, spec) in spellings.iter().enumerate() {
        for docker in both_clis(env.ci()) {
            let (name, out) = env.create(&docker, "below", ["-v", spec], &["true"]);
            refused(&out, &["which containers may write to", &cache]);
            assert!(!env.exists(&name), "{spec} ({i}) created a container");
        }
    }
    for src in ["root", "d/e/etc", "sock", "real"] {
        let (name, out) = env.create(
            &env.ci(),
            "below-mount",
            [
                "--mount",
                &format!("type=bind,source={cache}/{src},target=/h"),
            ],
            &["true"],
        );
        refused(&out, &["which containers may write to"]);
        assert!(!env.exists(&name));
    }
    // The cache itself stays usable, and what it holds is still the container's own business.
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{cache}:/c"),
        &image,
        "sh",
        "-c",
        "ls /c/root/ >/dev/null && echo fine",
    ]);
    assert_eq!(succeeded(&out).trim(), "fine");
    assert_eq!(
        std::fs::read_to_string(env.outside.join("secret")).unwrap(),
        "host secret\n"
    );
}

#[test]
fn symlinks_in_a_read_only_source_are_refused_at_create_and_at_start() {
    let env = Env::new();
    let image = test_image();
    let ro = env.path(&env.rodir);
    // Planted before the create (by whoever can write there): every component is checked.
    symlink(&env.outside, env.rodir.join("link")).unwrap();
    std::fs::create_dir_all(env.rodir.join("nest/deeper")).unwrap();
    symlink("/etc", env.rodir.join("nest/deeper/etc")).unwrap();
    for spec in [
        format!("{ro}/link:/h:ro"),
        format!("{ro}/link/:/h:ro"),
        format!("{ro}/nest/deeper/etc:/h:ro"),
        format!("{ro}/nest/./deeper/etc/ssl:/h:ro"),
    ] {
        let (name, out) = env.create(&env.ro(), "ro-link", ["-v", &spec], &["true"]);
        refused(&out, &["is a symlink on the host"]);
        assert!(!env.exists(&name), "{spec}");
    }
    let (name, out) = env.create(
        &env.ro(),
        "ro-link-mount",
        [
            "--mount",
            &format!("type=bind,source={ro}/link,target=/h,readonly"),
        ],
        &["true"],
    );
    refused(&out, &["is a symlink on the host"]);
    assert!(!env.exists(&name));

    // Planted between the create and the start: the start checks the stored binds again.
    let (name, out) = env.create(
        &env.ro(),
        "ro-swap",
        ["-v", &format!("{ro}/sub:/h:ro")],
        &["cat", "/h/secret"],
    );
    succeeded(&out);
    std::fs::remove_dir(env.rodir.join("sub")).unwrap();
    symlink(&env.outside, env.rodir.join("sub")).unwrap();
    for docker in both_clis(env.ro()) {
        let out = docker.run(&["start", &name]);
        refused(&out, &["is a symlink on the host", "container.start"]);
        // `start -a` attaches first: the attach is refused (the CLI shows only the 403).
        assert!(!docker.run(&["start", "-a", &name]).status.success());
    }
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "created");
    // A bind that exists when created and is read-only passes, and runs.
    std::fs::create_dir_all(env.rodir.join("data")).unwrap();
    std::fs::write(env.rodir.join("data/f"), "data\n").unwrap();
    let out = env.ro().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{ro}/data:/d:ro"),
        &image,
        "cat",
        "/d/f",
    ]);
    assert_eq!(succeeded(&out), "data\n");
}

#[test]
fn a_running_container_swaps_a_bind_before_the_start() {
    let env = Env::new();
    let image = test_image();
    let cache = env.path(&env.cache);
    std::fs::create_dir_all(env.cache.join("job")).unwrap();
    // The admin made a container binding a directory below the cache (allowed to it); a CI
    // container then swaps that directory for a link to the host's secrets.
    let victim = env.name("victim");
    env.admin().ok(&[
        "create",
        "--name",
        &victim,
        "--network",
        "none",
        "-v",
        &format!("{cache}/job:/job"),
        &image,
        "cat",
        "/job/secret",
    ]);
    let swapper = env.name("swapper");
    env.ci().ok(&[
        "run",
        "-d",
        "--name",
        &swapper,
        "--network",
        "none",
        "-v",
        &format!("{cache}:/c"),
        &image,
        "sleep",
        "300",
    ]);
    let out = env.ci().run(&[
        "exec",
        &swapper,
        "sh",
        "-c",
        &format!(
            "rmdir /c/job && ln -s {} /c/job && echo swapped",
            env.path(&env.outside)
        ),
    ]);
    assert_eq!(succeeded(&out).trim(), "swapped");
    for docker in both_clis(env.ci()) {
        let out = docker.run(&["start", &victim]);
        refused(&out, &["container.start", "which containers may write to"]);
        assert!(!docker.run(&["start", "-a", &victim]).status.success());
        let out = docker.run(&["restart", &victim]);
        refused(
            &out,
            &["container.restart", "which containers may write to"],
        );
    }
    assert_eq!(env.inspect(&victim, "{{.State.Status}}"), "created");
}

#[test]
fn writable_binds_need_a_nosuid_nodev_mount() {
    let env = Env::new();
    let image = test_image();
    let plain = env.path(&env.plain);
    let cache = env.path(&env.cache);
    for args in [
        vec!["-v".to_string(), format!("{plain}:/p")],
        vec!["-v".to_string(), format!("{plain}:/p:rw")],
        vec![
            "--mount".to_string(),
            format!("type=bind,source={plain},target=/p"),
        ],
    ] {
        let name = env.name("plain-rw");
        let mut a = vec!["create", "--name", &name, "--network", "none"];
        a.extend(args.iter().map(String::as_str));
        a.extend([image.as_str(), "true"]);
        refused(
            &env.ci().run(&a),
            &["without nosuid", "fix:", "nosuid,nodev"],
        );
        assert!(!env.exists(&name));
    }
    // Read-only, the same directory is fine.
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{plain}:/p:ro"),
        &image,
        "true",
    ]);
    succeeded(&out);
    // On the nosuid,nodev cache, a job may leave a setuid-root binary and a device node: on
    // the host they act as neither. (The binary is the host's own `id`, made setuid root by
    // the container; without nosuid it would print 0.)
    let id_bin = env.cache.join("id");
    std::fs::copy("/usr/bin/id", &id_bin).unwrap();
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{cache}:/c"),
        &image,
        "sh",
        "-c",
        "chmod 4755 /c/id && mknod /c/null c 1 3 && echo planted",
    ]);
    assert_eq!(succeeded(&out).trim(), "planted");
    assert_eq!(
        std::fs::metadata(&id_bin).unwrap().permissions().mode() & 0o7777,
        0o4755
    );
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&id_bin)
        .arg("-u")
        .output()
        .unwrap();
    assert_eq!(
        stdout_str(&out).trim(),
        "65534",
        "{}",
        support::describe(&out)
    );
    let opened = std::fs::File::open(env.cache.join("null"));
    assert!(
        opened.is_err(),
        "a device node on the cache opened on the host"
    );
}

// ---------------------------------------------------------------------------------------------
// Class 2: objects the policy could never have created

/// Containers the admin made, each with one thing the ci policy refuses, and the words of
/// that refusal.
fn admin_containers(env: &Env) -> Vec<(String, &'static str)> {
    let image = test_image();
    let variants: Vec<(Vec<String>, &'static str)> = vec![
        (vec!["--privileged".into()], "allow_privileged"),
        (vec!["-v".into(), "/etc:/host-etc".into()], "bind_sources"),
        (
            vec!["--mount".into(), "type=bind,source=/,target=/host".into()],
            "bind_sources",
        ),
        (vec!["--cap-add".into(), "SYS_ADMIN".into()], "cap_add"),
        (vec!["--pid".into(), "host".into()], "allow_host_namespaces"),
        (
            vec!["--device".into(), "/dev/null:/dev/xnull".into()],
            "allow_devices",
        ),
        (
            vec!["--security-opt".into(), "seccomp=unconfined".into()],
            "security_opt",
        ),
    ];
    variants
        .into_iter()
        .map(|(args, why)| {
            let name = env.name("admin");
            let mut a = vec!["create", "--name", &name, "--network", "none"];
            a.extend(args.iter().map(String::as_str));
            a.extend([image.as_str(), "sleep", "300"]);
            env.admin().ok(&a);
            (name, why)
        })
        .collect()
}

#[test]
fn an_admins_containers_cannot_be_started_or_reached_by_ci() {
    let env = Env::new();
    let mut ran = 0;
    for (name, why) in admin_containers(&env) {
        // start and restart (by name, by /name, by ID prefix, on an old API version).
        refused(&env.ci().run(&["start", &name]), &["container.start", why]);
        refused(
            &env.ci().run(&["restart", &name]),
            &["container.restart", why],
        );
        let id = env.inspect(&name, "{{.Id}}");
        refused(&env.ci().run(&["start", &id[..12]]), &[why]);
        let (status, body) = raw(
            &env.ci,
            "POST",
            &format!("/v1.24/containers/{name}/start"),
            "",
        );
        assert_eq!(status, 403, "{body}");
        assert_eq!(env.inspect(&name, "{{.State.Status}}"), "created", "{name}");
        // The admin runs it; ci still cannot exec, attach, copy into or out of it.
        // (Some cannot run on every host: a nested container may not grant full caps.)
        if !env.admin().run(&["start", &name]).status.success() {
            continue;
        }
        ran += 1;
        for docker in both_clis(env.ci()) {
            refused(&docker.run(&["exec", &name, "true"]), &["exec.create", why]);
        }
        // The CLI shows only "unable to upgrade to tcp, received 403"; the answer says why.
        let out = env
            .ci()
            .timeout(Duration::from_secs(20))
            .run(&["attach", "--no-stdin", &name]);
        assert!(
            stderr_str(&out).contains("403"),
            "{}",
            support::describe(&out)
        );
        let req = format!(
            "POST /v1.41/containers/{name}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\
             Connection: Upgrade, close\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        );
        let resp = http_request(&env.ci, req.as_bytes(), Duration::from_secs(10)).unwrap();
        let resp = String::from_utf8_lossy(&resp);
        assert!(
            resp.starts_with("HTTP/1.1 403")
                && resp.contains("container.attach")
                && resp.contains(why),
            "{resp}"
        );
        let (status, body) = raw(
            &env.ci,
            "GET",
            &format!("/containers/{name}/attach/ws?stream=1"),
            "",
        );
        assert_eq!(status, 403, "{body}");
        // docker cp (the CLI first probes with HEAD, which cannot carry a message).
        let local = env.base.path().join("f");
        std::fs::write(&local, "x").unwrap();
        let out = env
            .ci()
            .run(&["cp", &local.display().to_string(), &format!("{name}:/tmp/")]);
        assert!(!out.status.success());
        let out = env.ci().run(&["cp", &format!("{name}:/etc/passwd"), "-"]);
        assert!(!out.status.success());
        let tar = tar_of("planted", b"x");
        let mut req = format!(
            "PUT /v1.41/containers/{name}/archive?path=/tmp HTTP/1.1\r\nHost: d\r\n\
             Content-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            tar.len()
        )
        .into_bytes();
        req.extend_from_slice(&tar);
        let resp = http_request(&env.ci, &req, Duration::from_secs(10)).unwrap();
        let resp = String::from_utf8_lossy(&resp);
        assert!(
            resp.starts_with("HTTP/1.1 403")
                && resp.contains("container.archive.put")
                && resp.contains(why),
            "{resp}"
        );
        for (method, op) in [
            ("GET", "container.archive.get"),
            ("HEAD", "container.archive.head"),
        ] {
            let (status, body) = raw(
                &env.ci,
                method,
                &format!("/containers/{name}/archive?path=/etc/passwd"),
                "",
            );
            assert_eq!(status, 403, "{body}");
            assert!(method == "HEAD" || body.contains(op), "{body}");
        }
        let out = env
            .admin()
            .run(&["exec", &name, "test", "-e", "/tmp/planted"]);
        assert!(!out.status.success(), "the archive was written");
        assert_eq!(env.inspect(&name, "{{.RestartCount}}"), "0", "{name}");
        env.admin().ok(&["kill", &name]);
    }
    assert!(
        ran >= 5,
        "only {ran} of the admin's containers could run here"
    );
}

#[test]
fn an_exec_the_admin_created_is_started_only_if_ci_could_have_created_it() {
    let env = Env::new();
    let image = test_image();
    let bound = env.name("bound");
    env.admin().ok(&[
        "run",
        "-d",
        "--name",
        &bound,
        "--network",
        "none",
        "-v",
        "/etc:/host-etc",
        &image,
        "sleep",
        "300",
    ]);
    let ordinary = env.name("ordinary");
    env.admin().ok(&[
        "run",
        "-d",
        "--name",
        &ordinary,
        "--network",
        "none",
        &image,
        "sleep",
        "300",
    ]);
    let admin = env.proxy.socket.clone();
    let exec = |container: &str, body: &str| {
        let (status, text) = raw(
            &admin,
            "POST",
            &format!("/containers/{container}/exec"),
            body,
        );
        assert_eq!(status, 201, "{text}");
        let json = &text[text.find('{').unwrap()..];
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        v["Id"].as_str().unwrap().to_owned()
    };
    let cmd = r#""Cmd":["sh","-c","echo pwned > /host-etc/sw-reach-pwned"]"#;
    let cases = [
        (exec(&bound, &format!("{{{cmd}}}")), "bind_sources"),
        (
            exec(&ordinary, r#"{"Cmd":["true"],"Privileged":true}"#),
            "allow_privileged",
        ),
    ];
    for (id, why) in &cases {
        for version in ["", "/v1.41", "/v1.24"] {
            let (status, body) = raw(
                &env.ci,
                "POST",
                &format!("{version}/exec/{id}/start"),
                r#"{"Detach":true,"Tty":false}"#,
            );
            assert_eq!(status, 403, "{body}");
            assert!(body.contains(why) && body.contains("exec.start"), "{body}");
        }
        let (_, body) = raw(&admin, "GET", &format!("/exec/{id}/json"), "");
        assert!(
            body.contains("\"Running\":false") && body.contains("\"Pid\":0"),
            "{body}"
        );
    }
    assert!(!Path::new("/etc/sw-reach-pwned").exists());
    // An ordinary exec in an ordinary container is as ci could have made it: it runs.
    let id = exec(&ordinary, r#"{"Cmd":["true"]}"#);
    let (status, body) = raw(
        &env.ci,
        "POST",
        &format!("/exec/{id}/start"),
        r#"{"Detach":true}"#,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn volumes_with_bind_options_are_the_host_binds_they_are() {
    let env = Env::new();
    let image = test_image();
    let etc = support::unique_name("vol-etc");
    let cached = support::unique_name("vol-cache");
    let odd = support::unique_name("vol-odd");
    let plainvol = support::unique_name("vol-plain");
    env.admin().ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/etc",
        &etc,
    ]);
    env.admin().ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &format!("device={}", env.path(&env.cache)),
        &cached,
    ]);
    env.admin().ok(&[
        "volume",
        "create",
        "--opt",
        "type=ext4",
        "--opt",
        "device=/dev/sw-none",
        &odd,
    ]);
    let _volumes = VolumeCleanup(vec![
        etc.clone(),
        cached.clone(),
        odd.clone(),
        plainvol.clone(),
    ]);
    for (vol, why) in [(&etc, "bind_sources"), (&odd, "outside the daemon's own")] {
        for spec in [
            vec!["-v".to_string(), format!("{vol}:/v")],
            vec!["-v".to_string(), format!("{vol}:/v:ro")],
            vec![
                "--mount".to_string(),
                format!("type=volume,source={vol},target=/v"),
            ],
        ] {
            for docker in both_clis(env.ci()) {
                let name = env.name("volbind");
                let mut a = vec!["create", "--name", &name, "--network", "none"];
                a.extend(spec.iter().map(String::as_str));
                a.extend([image.as_str(), "true"]);
                refused(&docker.run(&a), &["volume", why]);
                assert!(!env.exists(&name));
            }
        }
        // A container the admin made with it cannot be started by ci.
        let name = env.name("admin-vol");
        env.admin().ok(&[
            "create",
            "--name",
            &name,
            "--network",
            "none",
            "-v",
            &format!("{vol}:/v"),
            &image,
            "true",
        ]);
        refused(&env.ci().run(&["start", &name]), &["container.start", why]);
        assert_eq!(env.inspect(&name, "{{.State.Status}}"), "created");
    }
    // A bind volume of the allowed cache is that bind: allowed (it is on nosuid,nodev).
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{cached}:/v"),
        &image,
        "sh",
        "-c",
        "echo hi > /v/from-volume && echo ok",
    ]);
    assert_eq!(succeeded(&out).trim(), "ok");
    assert_eq!(
        std::fs::read_to_string(env.cache.join("from-volume")).unwrap(),
        "hi\n"
    );
    // Plain named volumes, new or existing, keep working.
    for _ in 0..2 {
        let out = env.ci().run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{plainvol}:/data"),
            &image,
            "sh",
            "-c",
            "echo x >> /data/log && wc -l < /data/log",
        ]);
        succeeded(&out);
    }
}

struct VolumeCleanup(Vec<String>);

impl Drop for VolumeCleanup {
    fn drop(&mut self) {
        let mut a = vec!["volume", "rm", "-f"];
        a.extend(self.0.iter().map(String::as_str));
        let _ = Docker::new(&daemon_socket()).try_run(&a);
    }
}

// ---------------------------------------------------------------------------------------------
// Class 7 (image half): settings the image brings

#[test]
fn an_images_own_settings_are_held_to_the_body_rules() {
    let env = Env::new();
    let image = test_image();
    let base = env.name("img-base");
    env.admin().ok(&[
        "create",
        "--name",
        &base,
        "--network",
        "none",
        &image,
        "true",
    ]);
    let cases = [
        ("WORKDIR /proc/self/fd", "CVE-2024-21626"),
        ("WORKDIR /proc/1/cwd", "CVE-2024-21626"),
        ("VOLUME /sys/kernel/x", "allow_special_mount_targets"),
    ];
    for (change, why) in cases {
        let img = env.cleanup.image("img-bad");
        env.admin().ok(&["commit", "--change", change, &base, &img]);
        for docker in both_clis(env.ci()) {
            let name = env.name("img-run");
            refused(
                &docker.run(&["create", "--name", &name, "--network", "none", &img, "true"]),
                &["image", why],
            );
            assert!(!env.exists(&name));
        }
        // A container the admin made from it cannot be started by ci (the stored config has
        // the image's values).
        let name = env.name("img-admin");
        env.admin()
            .ok(&["create", "--name", &name, "--network", "none", &img, "true"]);
        refused(&env.ci().run(&["start", &name]), &["container.start", why]);
        assert_eq!(env.inspect(&name, "{{.State.Status}}"), "created");
    }
    // The body wins where it sets the value, as in the daemon.
    let img = env.cleanup.image("img-wd");
    env.admin()
        .ok(&["commit", "--change", "WORKDIR /proc/self/fd", &base, &img]);
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-w",
        "/tmp",
        &img,
        "pwd",
    ]);
    assert_eq!(succeeded(&out).trim(), "/tmp");
    // An ordinary WORKDIR is fine.
    let img = env.cleanup.image("img-ok");
    env.admin()
        .ok(&["commit", "--change", "WORKDIR /srv", &base, &img]);
    let out = env
        .ci()
        .run(&["run", "--rm", "--network", "none", &img, "pwd"]);
    assert_eq!(succeeded(&out).trim(), "/srv");
}

// ---------------------------------------------------------------------------------------------
// What must keep working

#[test]
fn ci_jobs_own_containers_and_cache_keep_working() {
    let env = Env::new();
    let image = test_image();
    let cache = env.path(&env.cache);
    for docker in both_clis(env.ci()) {
        let out = docker.run(&["run", "--rm", "--network", "none", &image, "echo", "hello"]);
        assert_eq!(succeeded(&out).trim(), "hello");
        let out = docker.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{cache}:/cache"),
            &image,
            "sh",
            "-c",
            "echo built >> /cache/artifact && cat /cache/artifact | wc -l",
        ]);
        succeeded(&out);
        let svc = env.name("svc");
        docker.ok(&[
            "run",
            "-d",
            "--name",
            &svc,
            "--network",
            "none",
            &image,
            "sleep",
            "300",
        ]);
        assert_eq!(docker.ok_str(&["exec", &svc, "echo", "in"]), "in");
        docker.ok(&["restart", "-t", "0", &svc]);
        assert_eq!(env.inspect(&svc, "{{.State.Running}}"), "true");
        let local = env.base.path().join("upload");
        std::fs::write(&local, "up\n").unwrap();
        docker.ok(&[
            "cp",
            &local.display().to_string(),
            &format!("{svc}:/tmp/upload"),
        ]);
        assert_eq!(docker.ok_str(&["exec", &svc, "cat", "/tmp/upload"]), "up");
        let job = env.name("job");
        docker.ok(&[
            "create",
            "--name",
            &job,
            "--network",
            "none",
            &image,
            "echo",
            "attached",
        ]);
        let out = docker.run(&["start", "-a", &job]);
        assert_eq!(succeeded(&out).trim(), "attached");
        let out = docker.run(&["start", "-a", &job]);
        assert_eq!(succeeded(&out).trim(), "attached");
        docker.ok(&["kill", &svc]);
    }
    // An admin's ordinary container is as ci could have made it: ci may run things in it.
    let plain = env.name("admin-plain");
    env.admin().ok(&[
        "run",
        "-d",
        "--name",
        &plain,
        "--network",
        "none",
        &image,
        "sleep",
        "300",
    ]);
    assert_eq!(env.ci().ok_str(&["exec", &plain, "echo", "ok"]), "ok");
    env.admin().ok(&["kill", &plain]);
}

#[test]
fn check_warns_about_writable_sources_off_nosuid_nodev_mounts() {
    let env = Env::new();
    let out = Command::new(support::SOCKWARDEN)
        .arg("check")
        .arg("--config")
        .arg(&env.proxy.config)
        .output()
        .unwrap();
    let err = stderr_str(&out);
    assert!(out.status.success(), "{}", support::describe(&out));
    let plain = env.path(&env.plain);
    assert!(
        err.contains("warning")
            && err.contains("policy.ci.container.bind_sources")
            && err.contains(&format!("writable host path {plain} is on the mount"))
            && err.contains("nosuid,nodev"),
        "{err}"
    );
    // The cache is fine, and the read-only policy's source is not writable.
    let cache = env.path(&env.cache);
    let rodir = env.path(&env.rodir);
    assert!(!err.contains(&format!("path {cache} ")), "{err}");
    assert!(!err.contains(&rodir), "{err}");
    // A source spelled through a symlink refuses every bind of it: check says so.
    let alias = env.base.path().join("alias");
    symlink(&env.rodir, &alias).unwrap();
    let text = std::fs::read_to_string(&env.proxy.config).unwrap().replace(
        &format!("bind_sources = [{}]", toml_str(&rodir)),
        &format!(
            "bind_sources = [{}]",
            toml_str(&alias.display().to_string())
        ),
    );
    let config = env.base.path().join("alias.toml");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(support::SOCKWARDEN)
        .args(["check", "--no-fs", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    // (The ci profile's own warning about uncapped builds may remain: it needs no file system.)
    assert!(
        !stderr_str(&out).contains("bind_sources"),
        "--no-fs checks the file alone"
    );
    let out = Command::new(support::SOCKWARDEN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = stderr_str(&out);
    assert!(
        err.contains("policy.ro.container.bind_sources")
            && err.contains(
                "is a symlink on the host (the daemon would follow it); binds of it are refused"
            ),
        "{err}"
    );
}

#[test]
fn volumes_from_reaches_the_containers_it_names() {
    let env = Env::new();
    let image = test_image();
    let cache = env.path(&env.cache);
    let bound = env.name("vf-admin");
    env.admin().ok(&[
        "create",
        "--name",
        &bound,
        "--network",
        "none",
        "-v",
        "/etc:/host-etc",
        &image,
        "true",
    ]);
    // ci naming it in VolumesFrom: refused at create, nothing created.
    for docker in both_clis(env.ci()) {
        let (name, out) = env.create(&docker, "vf-ci", ["--volumes-from", &bound], &["true"]);
        refused(&out, &["container.create", &bound, "bind_sources"]);
        assert!(!env.exists(&name));
    }
    // A container the admin made that inherits it: its mount points hold the bind, though its
    // HostConfig does not.
    let heir = env.name("vf-heir");
    env.admin().ok(&[
        "create",
        "--name",
        &heir,
        "--network",
        "none",
        "--volumes-from",
        &bound,
        &image,
        "true",
    ]);
    refused(
        &env.ci().run(&["start", &heir]),
        &["container.start", "Mounts", "/etc", "bind_sources"],
    );
    assert_eq!(env.inspect(&heir, "{{.State.Status}}"), "created");
    // Inheriting from ci's own container with the cache works.
    let own = env.name("vf-own");
    env.ci().ok(&[
        "create",
        "--name",
        &own,
        "--network",
        "none",
        "-v",
        &format!("{cache}:/c"),
        &image,
        "true",
    ]);
    let out = env.ci().run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        &own,
        &image,
        "sh",
        "-c",
        "echo inherited > /c/vf && echo ok",
    ]);
    assert_eq!(succeeded(&out).trim(), "ok");
    assert_eq!(
        std::fs::read_to_string(env.cache.join("vf")).unwrap(),
        "inherited\n"
    );
}
