//! Per-user isolation (issue 13), the gaps closed after the first cut: builds from another
//! tenant's image, networks forwarded as full IDs, quotas under concurrency, `docker system
//! prune` as a tenant, and name conflicts that named the other tenant's container. Two tenants
//! (real unix uids in the "users" group) and an admin (root) drive both docker CLIs through one
//! socket configured by `config/examples/multi-user.toml`.
//!
//! Each test uses its own uids (29xx), so tests running at once never share a tenant.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::isolation::*;
use support::*;

/// sockwarden with the multi-user example (its paths replaced), an audit file, and `replace`
/// applied to the text.
fn start(replace: &[(&str, &str)]) -> (Proxy, PathBuf) {
    let mut audit = PathBuf::new();
    let proxy = Proxy::start_config(|dir| {
        audit = dir.join("audit.jsonl");
        let text = multi_user_example(dir, replace);
        // The image ledger in the proxy's own directory (not the system's default).
        format!(
            "{text}\n[audit]\nsink = \"file\"\npath = {}\n\n[isolation]\nimage_ledger = {}\n",
            toml_str(&audit.display().to_string()),
            toml_str(&dir.join("image-owners").display().to_string())
        )
    });
    (proxy, audit)
}

/// A raw request as `uid` (`None`: root) to `sock`: status and body. `body` is JSON, or
/// `@file` sent as a tar.
fn raw(
    sock: &Path,
    uid: Option<u32>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--path-as-is", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--unix-socket")
        .arg(sock)
        .args(["-X", method]);
    if let Some(body) = body {
        let kind = if body.starts_with('@') {
            "Content-Type: application/x-tar"
        } else {
            "Content-Type: application/json"
        };
        cmd.args(["-H", kind, "--data-binary", body]);
    }
    cmd.arg(format!("http://docker{path}"));
    if let Some(uid) = uid {
        cmd.uid(uid).gid(USERS_GID);
    }
    let out = cmd.output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

fn failed_with(out: &Output, wanted: &str) -> bool {
    !out.status.success() && stderr_str(out).contains(wanted)
}

/// The context as a tar file beside it (for raw requests), world-readable.
fn context_tar(ctx: &tempfile::TempDir) -> PathBuf {
    let tar = ctx.path().join("context.tar");
    let out = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(ctx.path())
        .args(["Dockerfile", "f"])
        .output()
        .expect("tar");
    assert!(out.status.success(), "{}", describe(&out));
    std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    tar
}

/// Removes the networks it was given (on the daemon directly) when dropped, a failed test's
/// too: a network left behind keeps its bridge and address pool on the shared host.
#[derive(Default)]
struct NetworkCleanup(std::sync::Mutex<Vec<String>>);

impl NetworkCleanup {
    fn add(&self, name_or_id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name_or_id.to_owned());
    }
}

impl Drop for NetworkCleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for name in names {
            let _ = direct().try_run(&["network", "rm", &name]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Classic builds from another tenant's image
// ---------------------------------------------------------------------------------------------

#[test]
fn builds_from_another_tenants_image_answer_as_missing() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2901).env("DOCKER_BUILDKIT", "0");
    let base = test_image();
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    let a_img = c.image("iso-gap-a-img");
    a.ok(&["build", "-t", &a_img, ctx.path().to_str().unwrap()]);
    let a_id = id_of("image", &a_img);
    let a_hex = a_id.trim_start_matches("sha256:").to_owned();
    let bare = a_img.trim_end_matches(":latest").to_owned();
    let out_name = c.image("iso-gap-b-out");
    let attacks = [
        format!("FROM {a_img}\n"),
        format!("FROM {bare}\n"),
        format!("from {bare}\nCOPY f /g\n"),
        format!("FROM {a_id}\n"),
        format!("FROM {a_hex}\n"),
        format!("FROM {}\n", &a_hex[..12]),
        format!("FROM --platform=linux/amd64 {bare} AS x\n"),
        format!("FROM scratch\nCOPY --from={bare} /f /f\n"),
        format!(
            "FROM scratch\ncopy --chown=0:0 --from={} /f /f\n",
            &a_hex[..12]
        ),
        format!("FROM scratch AS base\nCOPY f /f\nFROM {bare}\nCOPY --from=base /f /g\n"),
        format!("FROM scratch\nCOPY --from=later /f /f\nFROM {bare} AS later\n"),
        format!("ARG BASE={bare}\nFROM $BASE\n"),
        "ARG BASE\nFROM ${BASE}\n".to_owned(),
        "# escape=`\nFROM scratch\nCOPY `\n  --from=IMG /f /f\n".replace("IMG", &bare),
    ];
    for (cli, b) in tenant_clis(&proxy, 2902) {
        for dockerfile in &attacks {
            let ctx = build_context(dockerfile);
            let out = b.run(&[
                "build",
                "--build-arg",
                &format!("BASE={bare}"),
                "-t",
                &out_name,
                ctx.path().to_str().unwrap(),
            ]);
            assert!(
                failed_with(&out, "No such image") && !stderr_str(&out).contains("sockwarden"),
                "{cli} {dockerfile}: {}",
                describe(&out)
            );
            assert!(!exists("image", &out_name), "{cli} {dockerfile}");
        }
        // A value sockwarden cannot know is refused, even for what would be a shared image.
        for dockerfile in [
            format!("FROM ${{BASE:-{base}}}\n"),
            format!("FROM {base}\nCOPY --from=$BASE /f /f\n"),
            "FROM scratch\nCOPY --from=${IMG} /f /f\n".to_owned(),
        ] {
            let ctx = build_context(&dockerfile);
            let out = b.run(&[
                "build",
                "--build-arg",
                &format!("BASE={base}"),
                "-t",
                &out_name,
                ctx.path().to_str().unwrap(),
            ]);
            assert!(
                failed_with(&out, "cannot") && !exists("image", &out_name),
                "{cli} {dockerfile}: {}",
                describe(&out)
            );
        }
        // Legitimate builds: stages, stage indexes, scratch, a shared image by name.
        let ok = format!(
            "FROM scratch AS Base\nCOPY f /f\nFROM base AS second\nCOPY --from=0 /f /g\n\
             FROM {base}\nCOPY --from=BASE /f /h\nCOPY --from=second /g /i\n"
        );
        let ctx = build_context(&ok);
        let own = c.image(&format!("iso-gap-b-{}", cli.replace('.', "")));
        b.ok(&["build", "-t", &own, ctx.path().to_str().unwrap()]);
        assert_eq!(owner_of("image", &own), "uid:2902");
        // Its own image, by ID prefix and by name, it builds from.
        let own_hex = id_of("image", &own)
            .trim_start_matches("sha256:")
            .to_owned();
        let ctx = build_context(&format!(
            "FROM {}\nCOPY --from={own} /h /j\n",
            &own_hex[..12]
        ));
        let child = c.image(&format!("iso-gap-b-child-{}", cli.replace('.', "")));
        b.ok(&["build", "-t", &child, ctx.path().to_str().unwrap()]);
        assert_eq!(owner_of("image", &child), "uid:2902");
    }
    // A raw request under an API version prefix: the same answer.
    let ctx = build_context(&format!("FROM {bare}\n"));
    let tar = context_tar(&ctx);
    let (status, body) = raw(
        &proxy.socket,
        Some(2902),
        "POST",
        &format!("/v1.41/build?t={}", out_name),
        Some(&format!("@{}", tar.display())),
    );
    assert!(
        status == 404 && message(&body).starts_with("No such image"),
        "{status} {body}"
    );
    assert!(!exists("image", &out_name));
    // A's image is unchanged, and A still builds from it.
    assert_eq!(id_of("image", &a_img), a_id);
    assert_eq!(owner_of("image", &a_img), "uid:2901");
    let ctx = build_context(&format!("FROM {}\nCOPY f /g\n", &a_hex[..12]));
    let a_child = c.image("iso-gap-a-child");
    a.ok(&["build", "-t", &a_child, ctx.path().to_str().unwrap()]);
    assert_eq!(owner_of("image", &a_child), "uid:2901");
}

#[test]
fn builds_isolation_holds_in_audit_mode_and_for_remote_contexts() {
    // The developers' policy as a dry run, with remote contexts allowed: isolation is still
    // enforced, and a context the daemon fetches itself cannot be checked.
    let (proxy, audit) = start(&[
        (
            "[policy.developers]\nprofile = \"ci\"\n",
            "[policy.developers]\nprofile = \"ci\"\nmode = \"audit\"\n",
        ),
        (
            "allow_buildkit = false\n",
            "allow_buildkit = false\nallow_remote = true\n",
        ),
    ]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2911).env("DOCKER_BUILDKIT", "0");
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    let a_img = c.image("iso-gap-audit-a");
    a.ok(&["build", "-t", &a_img, ctx.path().to_str().unwrap()]);
    let bare = a_img.trim_end_matches(":latest").to_owned();
    let out_name = c.image("iso-gap-audit-b");
    for (cli, b) in tenant_clis(&proxy, 2912) {
        for (dockerfile, wanted) in [
            (format!("FROM {bare}\n"), "No such image"),
            (format!("FROM ${{X:-{bare}}}\n"), "cannot be resolved"),
            (
                format!("FROM scratch\nCOPY --from=${{X}} /f /f\nFROM {bare}\n"),
                "cannot resolve",
            ),
        ] {
            let ctx = build_context(&dockerfile);
            let out = b.run(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
            assert!(
                failed_with(&out, wanted) && !exists("image", &out_name),
                "{cli} {dockerfile}: {}",
                describe(&out)
            );
        }
    }
    // Remote contexts: refused under isolation, whichever URL.
    for remote in [
        "https://example.invalid/context.tar",
        "git%40example.invalid%3Aa%2Fb.git",
    ] {
        let (status, body) = raw(
            &proxy.socket,
            Some(2912),
            "POST",
            &format!("/v1.41/build?remote={remote}&t={out_name}"),
            None,
        );
        assert!(
            status == 403 && message(&body).contains("remote build context"),
            "{remote}: {status} {body}"
        );
    }
    assert!(!exists("image", &out_name));
    // The refusals are recorded as such (deny, not a would-deny).
    let records = wait_audit_records(&audit, 1, Duration::from_secs(10), |r| {
        r.to_string().contains("remote build context")
    });
    assert!(
        records.iter().any(|r| r.to_string().contains("\"deny\"")),
        "{records:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Networks forwarded as full IDs
// ---------------------------------------------------------------------------------------------

fn run_detached(docker: &Docker, name: &str, network: &str) -> String {
    let image = test_image();
    docker
        .ok_str(&[
            "run",
            "-d",
            "--network",
            network,
            "--name",
            name,
            &image,
            "sleep",
            "300",
        ])
        .trim()
        .to_owned()
}

/// The networks a container is attached to, on the daemon: `name=NetworkID` each.
fn attached(container: &str) -> Vec<String> {
    let out = direct().ok_str(&[
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.NetworkID}} {{end}}",
        container,
    ]);
    let mut list: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    list.sort();
    list
}

fn containers_on(network: &str) -> String {
    direct()
        .ok_str(&[
            "network",
            "inspect",
            "--format",
            "{{range $k, $v := .Containers}}{{$k}} {{end}}",
            network,
        ])
        .trim()
        .to_owned()
}

#[test]
fn networks_are_forwarded_as_full_ids() {
    let (proxy, _audit) = start(&[]);
    let nets = NetworkCleanup::default();
    let c = Cleanup::new();
    let a = tenant(&proxy, 2921);
    let b = tenant(&proxy, 2922);
    let a_net = unique_name("iso-gap-anet");
    let made = a.run(&["network", "create", &a_net]);
    // The test daemon has an address pool of its own (scripts/test.sh): this must work.
    assert!(made.status.success(), "network create: {}", describe(&made));
    let a_net_id = id_of("network", &a_net);
    nets.add(&a_net_id);
    let b_net = unique_name("iso-gap-bnet");
    b.ok(&["network", "create", &b_net]);
    let b_net_id = id_of("network", &b_net);
    nets.add(&b_net_id);
    // B also makes a network with A's name (the daemon allows duplicates when asked): A's
    // name then resolves among A's networks only.
    let (status, body) = raw(
        &proxy.socket,
        Some(2922),
        "POST",
        "/v1.41/networks/create",
        Some(&format!(r#"{{"Name":"{a_net}","CheckDuplicate":false}}"#)),
    );
    assert_eq!(status, 201, "{body}");
    let b_dup_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    nets.add(&b_dup_id);
    let image = test_image();
    for (cli, docker) in [
        ("cli28", a.clone()),
        ("cli20.10", a.clone().bin(DEBIAN_DOCKER_CLI)),
    ] {
        // A names its network as the policy's `networks` rule wants it: by name (B's network
        // of the same name is not reached).
        let name = c.container(&format!("iso-gap-on-{cli}"));
        run_detached(&docker, &name, &a_net);
        assert_eq!(
            attached(&name),
            [format!("{a_net}={a_net_id}")],
            "{cli} run"
        );
        // What the user sees: the network by its name.
        let ps = docker.ok_str(&[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Networks}}",
        ]);
        assert_eq!(ps.trim(), a_net, "{cli} ps");
        let shown = docker.ok_str(&[
            "inspect",
            "--format",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
            &name,
        ]);
        assert_eq!(shown.trim(), a_net, "{cli} inspect");
        // Disconnect and connect again by each spelling, running and stopped.
        for spelling in [a_net.clone(), a_net_id.clone(), a_net_id[..12].to_owned()] {
            docker.ok(&["network", "disconnect", &spelling, &name]);
            assert!(attached(&name).is_empty(), "{cli} disconnect {spelling}");
            docker.ok(&["network", "connect", &spelling, &name]);
            assert_eq!(attached(&name), [format!("{a_net}={a_net_id}")]);
        }
        docker.ok(&["stop", "-t", "0", &name]);
        docker.ok(&["network", "disconnect", &a_net, &name]);
        docker.ok(&["network", "connect", &a_net, &name]);
        docker.ok(&["start", &name]);
        assert_eq!(
            attached(&name),
            [format!("{a_net}={a_net_id}")],
            "{cli} start"
        );
        // Created, not started: connected at its start.
        let created = c.container(&format!("iso-gap-created-{cli}"));
        docker.ok(&[
            "create",
            "--network",
            &a_net,
            "--name",
            &created,
            &image,
            "sleep",
            "300",
        ]);
        docker.ok(&["start", &created]);
        assert_eq!(
            attached(&created),
            [format!("{a_net}={a_net_id}")],
            "{cli} created"
        );
        direct().ok(&["rm", "-f", &name, &created]);
    }
    // Raw, under each version prefix, EndpointsConfig keyed by the name: pinned too. A
    // NetworkID the client sets itself is refused (the daemon fills it in).
    for prefix in ["", "/v1.41", "/v1.40"] {
        let name = c.container("iso-gap-raw");
        let body = format!(
            r#"{{"Image":"{image}","Cmd":["sleep","300"],"HostConfig":{{"NetworkMode":"{a_net}"}},"NetworkingConfig":{{"EndpointsConfig":{{"{a_net}":{{"Aliases":["x"]}}}}}}}}"#
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2921),
            "POST",
            &format!("{prefix}/containers/create?name={name}"),
            Some(&body),
        );
        assert_eq!(status, 201, "{prefix} create: {got}");
        a.ok(&["start", &name]);
        assert_eq!(attached(&name), [format!("{a_net}={a_net_id}")], "{prefix}");
        let forged = body.replace(
            r#""Aliases""#,
            &format!(r#""NetworkID":"{b_net_id}","Aliases""#),
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2921),
            "POST",
            &format!("{prefix}/containers/create"),
            Some(&forged),
        );
        assert_eq!(status, 403, "{prefix} forged create: {got}");
        a.ok(&["network", "disconnect", &a_net, &name]);
        let (status, got) = raw(
            &proxy.socket,
            Some(2921),
            "POST",
            &format!("{prefix}/networks/{a_net}/connect"),
            Some(&format!(
                r#"{{"Container":"{name}","EndpointConfig":{{"networkid":"{b_net_id}"}}}}"#
            )),
        );
        assert_eq!(status, 403, "{prefix} forged connect: {got}");
        let (status, got) = raw(
            &proxy.socket,
            Some(2921),
            "POST",
            &format!("{prefix}/networks/{a_net}/connect"),
            Some(&format!(
                r#"{{"Container":"{name}","EndpointConfig":null}}"#
            )),
        );
        assert_eq!(status, 200, "{prefix} connect: {got}");
        assert_eq!(attached(&name), [format!("{a_net}={a_net_id}")], "{prefix}");
        direct().ok(&["rm", "-f", &name]);
    }
    // B's networks: still answered as missing, by each spelling, in the body too.
    for s in [b_net.clone(), b_net_id.clone(), b_net_id[..12].to_owned()] {
        let body = format!(
            r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"none"}},"NetworkingConfig":{{"EndpointsConfig":{{"{s}":{{}}}}}}}}"#
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2921),
            "POST",
            "/v1.41/containers/create",
            Some(&body),
        );
        assert_eq!(
            (status, message(&got)),
            (404, format!("network {s} not found"))
        );
    }
    // Nothing of A's reached B's networks, and they are unchanged.
    assert_eq!(containers_on(&b_net_id), "");
    assert_eq!(containers_on(&b_dup_id), "");
    assert_eq!(owner_of("network", &b_net_id), "uid:2922");
    assert_eq!(owner_of("network", &b_dup_id), "uid:2922");
    drop(c);
    drop(nets);
    assert!(!exists("network", &a_net_id) && !exists("network", &b_dup_id));
}

// ---------------------------------------------------------------------------------------------
// 3. Quotas under concurrency
// ---------------------------------------------------------------------------------------------

/// The tenant's containers and volumes, counted on the daemon by owner label.
fn owned(kind: &str, uid: u32) -> usize {
    let filter = format!("label={LABEL}=uid:{uid}");
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-aq", "--filter", &filter],
        _ => vec!["volume", "ls", "-q", "--filter", &filter],
    };
    direct()
        .ok_str(&args)
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

#[test]
fn quotas_hold_under_parallel_creates() {
    let (proxy, _audit) = start(&[
        ("max_containers = 50", "max_containers = 3"),
        ("max_volumes = 20", "max_volumes = 2"),
    ]);
    let c = Cleanup::new();
    let image = test_image();
    let (a_uid, b_uid) = (2931, 2932);
    // Rounds: parallel CLI processes (both CLIs) race for the quota.
    for round in 0..2 {
        let mut handles = Vec::new();
        for i in 0..8 {
            let docker = if i % 2 == 0 {
                tenant(&proxy, a_uid)
            } else {
                tenant(&proxy, a_uid).bin(DEBIAN_DOCKER_CLI)
            };
            let name = c.container(&format!("iso-gap-q{round}-{i}"));
            let image = image.clone();
            handles.push(std::thread::spawn(move || {
                docker.run(&["create", "--network", "none", "--name", &name, &image])
            }));
        }
        // B creates at the same time: its own count, not held up by A's.
        let b_name = c.container(&format!("iso-gap-qb{round}"));
        tenant(&proxy, b_uid).ok(&["create", "--network", "none", "--name", &b_name, &image]);
        let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let made = outs.iter().filter(|o| o.status.success()).count();
        for out in outs.iter().filter(|o| !o.status.success()) {
            assert!(
                stderr_str(out).contains("already has 3 containers"),
                "{}",
                describe(out)
            );
        }
        let expected = if round == 0 { 3 } else { 0 };
        assert_eq!(made, expected, "round {round}");
        assert_eq!(owned("container", a_uid), 3, "round {round}");
    }
    assert_eq!(owned("container", b_uid), 2);
    // Volumes: explicit creates and the implicit ones of `docker run -v` race together.
    let mut handles = Vec::new();
    let mut names = Vec::new();
    for i in 0..8 {
        let vol = unique_name(&format!("iso-gap-qv{i}"));
        names.push(vol.clone());
        let docker = if i % 2 == 0 {
            tenant(&proxy, b_uid)
        } else {
            tenant(&proxy, b_uid).bin(DEBIAN_DOCKER_CLI)
        };
        let image = image.clone();
        let name = c.container(&format!("iso-gap-qvc{i}"));
        handles.push(std::thread::spawn(move || {
            if i % 3 == 0 {
                docker.run(&[
                    "create",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    "-v",
                    &format!("{vol}:/x"),
                    &image,
                ])
            } else {
                docker.run(&["volume", "create", &vol])
            }
        }));
    }
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for out in outs.iter().filter(|o| !o.status.success()) {
        let err = stderr_str(out);
        assert!(
            err.contains("already has 2 volumes") || err.contains("already has 3 containers"),
            "{}",
            describe(out)
        );
    }
    assert_eq!(owned("volume", b_uid), 2);
    assert_eq!(owned("volume", a_uid), 0);
    drop(c);
    for vol in names {
        let _ = direct().run(&["volume", "rm", &vol]);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. `docker system prune` as a tenant
// ---------------------------------------------------------------------------------------------

#[test]
fn system_prune_as_a_tenant_succeeds_and_is_scoped() {
    let (proxy, audit) = start(&[]);
    let c = Cleanup::new();
    let image = test_image();
    let (a_uid, b_uid) = (2941, 2942);
    let a = tenant(&proxy, a_uid);
    let b = tenant(&proxy, b_uid);
    let b_stopped = c.container("iso-gap-prune-b");
    b.ok(&["create", "--network", "none", "--name", &b_stopped, &image]);
    let admin_stopped = c.container("iso-gap-prune-admin");
    direct().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &admin_stopped,
        &image,
    ]);
    let nets = NetworkCleanup::default();
    let b_net = unique_name("iso-gap-prune-bnet");
    let networks = b.run(&["network", "create", &b_net]).status.success();
    nets.add(&b_net);
    for (cli, docker) in [
        ("cli28", a.clone()),
        ("cli20.10", a.clone().bin(DEBIAN_DOCKER_CLI)),
    ] {
        let a_stopped = c.container(&format!("iso-gap-prune-a-{cli}"));
        docker.ok(&["create", "--network", "none", "--name", &a_stopped, &image]);
        let a_net = unique_name("iso-gap-prune-anet");
        if networks {
            docker.ok(&["network", "create", &a_net]);
            nets.add(&a_net);
        }
        let out = docker.run(&["system", "prune", "-f"]);
        assert!(out.status.success(), "{cli}: {}", describe(&out));
        let text = stdout_str(&out);
        assert!(text.contains("Total reclaimed space"), "{cli}: {text}");
        // A's unused objects went; B's and the admin's stayed.
        assert!(!exists("container", &a_stopped), "{cli}");
        if networks {
            assert!(!exists("network", &a_net), "{cli}");
            assert!(exists("network", &b_net), "{cli}");
        }
        assert!(exists("container", &b_stopped), "{cli}");
        assert!(exists("container", &admin_stopped), "{cli}");
        // `builder prune` alone: nothing pruned, as the daemon says when it has nothing.
        let out = docker.run(&["builder", "prune", "-f"]);
        assert!(out.status.success(), "{cli}: {}", describe(&out));
    }
    // Raw, under version prefixes and with the CLI's parameters: the empty answer, never
    // forwarded; recorded as answered by sockwarden.
    for path in [
        "/build/prune",
        "/v1.41/build/prune?all=1",
        "/v1.40/build/prune?filters=%7B%22until%22%3A%5B%2224h%22%5D%7D",
    ] {
        let (status, body) = raw(&proxy.socket, Some(b_uid), "POST", path, None);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["SpaceReclaimed"], 0, "{path}");
        assert!(v["CachesDeleted"].is_null(), "{path}");
    }
    // Two per CLI (`system prune`, `builder prune`) and the three raw ones.
    let records = wait_audit_records(&audit, 7, Duration::from_secs(10), |r| {
        r["operation"] == "build.prune"
    });
    assert!(records.len() >= 7, "{records:?}");
    for r in &records {
        assert_eq!(r["decision"], "allow", "{r}");
        assert_eq!(r["rule"], "developers.isolation", "{r}");
        assert!(
            r["reason"].as_str().unwrap_or("").contains("not forwarded"),
            "{r}"
        );
        assert!(
            r["tenant"].as_str().unwrap_or("").starts_with("uid:29"),
            "{r}"
        );
    }
    // The admin's prune still reaches the daemon's build cache.
    let (status, body) = raw(&proxy.socket, None, "POST", "/build/prune", None);
    assert_eq!(status, 200, "{body}");
    let admin_records = wait_audit_records(&audit, 1, Duration::from_secs(5), |r| {
        r["operation"] == "build.prune" && r["tenant"].is_null()
    });
    assert_eq!(admin_records.len(), 1, "{admin_records:?}");
    assert_ne!(admin_records[0]["rule"], "developers.isolation");
    drop(nets);
}

// ---------------------------------------------------------------------------------------------
// 5. Name conflicts do not name another tenant's container
// ---------------------------------------------------------------------------------------------

#[test]
fn name_conflicts_leave_out_another_tenants_id() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let image = test_image();
    let (a_uid, b_uid) = (2951, 2952);
    let a = tenant(&proxy, a_uid);
    let held = c.container("iso-gap-held");
    let a_id = run_detached(&a, &held, "none");
    let b_own = c.container("iso-gap-bown");
    let b_id = tenant(&proxy, b_uid)
        .ok_str(&["create", "--network", "none", "--name", &b_own, &image])
        .trim()
        .to_owned();
    let leaks = |text: &str| text.contains(&a_id[..12]);
    for (cli, b) in [
        ("cli28", tenant(&proxy, b_uid)),
        ("cli20.10", tenant(&proxy, b_uid).bin(DEBIAN_DOCKER_CLI)),
    ] {
        for args in [
            vec![
                "create",
                "--network",
                "none",
                "--name",
                held.as_str(),
                image.as_str(),
            ],
            vec![
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                held.as_str(),
                image.as_str(),
            ],
            vec!["rename", b_own.as_str(), held.as_str()],
        ] {
            let out = b.run(&args);
            let err = stderr_str(&out);
            assert!(
                !out.status.success() && err.contains("is already in use") && !leaks(&err),
                "{cli} {args:?}: {}",
                describe(&out)
            );
            assert!(err.contains("does not own"), "{cli} {args:?}: {err}");
        }
        // Its own conflict names its own container, as the daemon does.
        let out = b.run(&["create", "--network", "none", "--name", &b_own, &image]);
        assert!(
            !out.status.success() && stderr_str(&out).contains(&b_id),
            "{cli}: {}",
            describe(&out)
        );
    }
    // Raw: spellings of the name and version prefixes.
    let body = format!(r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"none"}}}}"#);
    for prefix in ["", "/v1.41", "/v1.40"] {
        for name in [held.clone(), format!("/{held}"), format!("%2F{held}")] {
            let (status, got) = raw(
                &proxy.socket,
                Some(b_uid),
                "POST",
                &format!("{prefix}/containers/create?name={name}"),
                Some(&body),
            );
            assert_eq!(status, 409, "{prefix} {name}: {got}");
            assert!(
                !leaks(&got) && message(&got).contains("does not own"),
                "{got}"
            );
            let (status, got) = raw(
                &proxy.socket,
                Some(b_uid),
                "POST",
                &format!("{prefix}/containers/{b_own}/rename?name={name}"),
                None,
            );
            assert_eq!(status, 409, "{prefix} rename {name}: {got}");
            assert!(
                !leaks(&got) && message(&got).contains("does not own"),
                "{got}"
            );
        }
    }
    // A's container is unchanged; B's keeps its name.
    assert_eq!(id_of("container", &held), a_id);
    assert_eq!(owner_of("container", &held), format!("uid:{a_uid}"));
    assert_eq!(id_of("container", &b_own), b_id);
    // The admin (through sockwarden) still gets the daemon's own words.
    let out = proxy
        .docker()
        .run(&["create", "--network", "none", "--name", &held, &image]);
    assert!(stderr_str(&out).contains(&a_id), "{}", describe(&out));
}

/// Names a tenant resolved lately are remembered for a moment: whatever happens to the name
/// meanwhile — removed and taken by another tenant, renamed away, or changed directly on the
/// daemon behind sockwarden's back — a tenant's request never reaches another's container.
#[test]
fn remembered_names_never_reach_another_tenants_container() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let image = test_image();
    let (a_uid, b_uid) = (2961, 2962);
    let a = tenant(&proxy, a_uid);
    let b = tenant(&proxy, b_uid);
    let create = |who: &Docker, name: &str| {
        who.ok_str(&["create", "--network", "none", "--name", name, &image])
            .trim()
            .to_owned()
    };
    // A's view of NAME: its ID, or the failure.
    let a_sees = |name: &str| {
        let out = a.run(&["inspect", "--format", "{{.Id}}", name]);
        (out.status.success(), stdout_str(&out).trim().to_owned())
    };
    // Removed through sockwarden, then the name taken by B.
    let gone = c.container("iso-names-gone");
    let a_first = create(&a, &gone);
    for _ in 0..3 {
        assert_eq!(a_sees(&gone), (true, a_first.clone()));
    }
    a.ok(&["rm", &gone]);
    let b_gone = create(&b, &gone);
    let (ok, seen) = a_sees(&gone);
    assert!(!ok && seen != b_gone, "A reached B's container: {seen}");
    // A's own new container of the same name is found at once.
    b.ok(&["rm", &gone]);
    let a_second = create(&a, &gone);
    assert_eq!(a_sees(&gone), (true, a_second));
    // Renamed away by A; B takes the name.
    let moved = c.container("iso-names-moved");
    let moved_to = c.container("iso-names-moved-to");
    let a_moved = create(&a, &moved);
    assert_eq!(a_sees(&moved), (true, a_moved.clone()));
    a.ok(&["rename", &moved, &moved_to]);
    let b_moved = create(&b, &moved);
    let (ok, seen) = a_sees(&moved);
    assert!(!ok && seen != b_moved, "A reached B's container: {seen}");
    assert_eq!(a_sees(&moved_to), (true, a_moved));
    // Changed directly on the daemon (not through sockwarden): removed, and the name given
    // to a container labelled as B's. Right away and after the name's memory ends, A never
    // gets B's.
    let behind = c.container("iso-names-behind");
    let a_behind = create(&a, &behind);
    assert_eq!(a_sees(&behind), (true, a_behind));
    direct().ok(&["rm", &behind]);
    let owner = format!("{LABEL}=uid:{b_uid}");
    let b_behind = direct()
        .ok_str(&[
            "create",
            "--network",
            "none",
            "--label",
            &owner,
            "--name",
            &behind,
            &image,
        ])
        .trim()
        .to_owned();
    for wait in [0, 1200] {
        std::thread::sleep(Duration::from_millis(wait));
        let (ok, seen) = a_sees(&behind);
        assert!(
            !ok && seen != b_behind,
            "after {wait} ms A reached B's container: {seen}"
        );
        let out = a.run(&["stop", "-t", "0", &behind]);
        assert!(!out.status.success(), "{}", describe(&out));
    }
    assert!(exists("container", &behind));
    assert_eq!(owner_of("container", &behind), format!("uid:{b_uid}"));
    // Changed directly on the daemon to another of A's own: the daemon's event makes
    // sockwarden forget the name long before its memory would end by itself (10 s).
    let swap = c.container("iso-names-swap");
    let swapped = c.container("iso-names-swapped");
    let a_old = create(&a, &swap);
    assert_eq!(a_sees(&swap), (true, a_old));
    direct().ok(&["rename", &swap, &swapped]);
    let a_owner = format!("{LABEL}=uid:{a_uid}");
    let a_new = direct()
        .ok_str(&[
            "create",
            "--network",
            "none",
            "--label",
            &a_owner,
            "--name",
            &swap,
            &image,
        ])
        .trim()
        .to_owned();
    let followed = wait_for(Duration::from_secs(5), || {
        (a_sees(&swap) == (true, a_new.clone())).then_some(())
    });
    assert!(
        followed.is_some(),
        "A still sees the old container: {:?}",
        a_sees(&swap)
    );
}

/// A base image's `ONBUILD COPY --from=X` runs in the build that starts `FROM` it: X is held to
/// the tenant's images when that build runs, as the Dockerfile's own `COPY --from` is (when the
/// base image was made, X may have been no one's: a name another tenant takes later). Tenant B
/// makes an image whose trigger copies from a name not yet used, tenant A then builds an image
/// by that name, and B builds from the trap: answered as missing, nothing built (in several
/// spellings, both CLIs); a trigger naming a variable is refused; a trigger copying from B's
/// own image works.
#[test]
fn onbuild_triggers_cannot_copy_from_another_tenants_image() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2971).env("DOCKER_BUILDKIT", "0");
    let out_name = c.image("iso-gap-onb-out");
    let spellings: [fn(&str, &str) -> String; 3] = [
        |bare, _| format!("ONBUILD COPY --from={bare} /f /stolen"),
        |_, tagged| format!("onbuild copy --from={tagged} /f /stolen"),
        |bare, _| format!("ONBUILD COPY --chown=0:0 --from={bare} /f /stolen"),
    ];
    for (cli, b) in tenant_clis(&proxy, 2972) {
        let trap = c.image(&format!("iso-gap-onb-trap-{}", cli.replace('.', "")));
        for (i, spelling) in spellings.iter().enumerate() {
            // A name no one holds yet: B's trap may name it.
            let later = c.image(&format!("iso-gap-onb-a{i}-{}", cli.replace('.', "")));
            let bare = later.trim_end_matches(":latest").to_owned();
            let trigger = spelling(&bare, &later);
            let ctx = build_context(&format!("FROM scratch\nCOPY f /f\n{trigger}\n"));
            b.ok(&["build", "-t", &trap, ctx.path().to_str().unwrap()]);
            // A takes the name.
            let ctx = build_context("FROM scratch\nCOPY f /f\n");
            a.ok(&["build", "-t", &later, ctx.path().to_str().unwrap()]);
            let ctx = build_context(&format!("FROM {trap}\n"));
            let out = b.run(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
            assert!(
                failed_with(&out, "No such image") && !stderr_str(&out).contains("sockwarden"),
                "{cli} {trigger}: {}",
                describe(&out)
            );
            assert!(!exists("image", &out_name), "{cli} {trigger}");
        }
        // A shared base image (made on the daemon directly, as a pulled one is) whose trigger
        // copies from A's image, or from a variable (which sockwarden cannot resolve).
        let shared = c.image(&format!("iso-gap-onb-shared-{}", cli.replace('.', "")));
        let a_img = c.image(&format!("iso-gap-onb-a-{}", cli.replace('.', "")));
        let ctx = build_context("FROM scratch\nCOPY f /f\n");
        a.ok(&["build", "-t", &a_img, ctx.path().to_str().unwrap()]);
        for (trigger, wanted) in [
            (
                format!("ONBUILD COPY --from={a_img} /f /g"),
                "No such image",
            ),
            (
                "ONBUILD COPY --from=$SRC /f /g".to_owned(),
                "cannot resolve",
            ),
        ] {
            let ctx = build_context(&format!("FROM scratch\nCOPY f /f\n{trigger}\n"));
            direct().env("DOCKER_BUILDKIT", "0").ok(&[
                "build",
                "-t",
                &shared,
                ctx.path().to_str().unwrap(),
            ]);
            let ctx = build_context(&format!("FROM {shared}\n"));
            let out = b.run(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
            assert!(
                failed_with(&out, wanted) && !exists("image", &out_name),
                "{cli} {trigger}: {}",
                describe(&out)
            );
        }
        // Legitimate: a trigger copying from the tenant's own image.
        let own = c.image(&format!("iso-gap-onb-own-{}", cli.replace('.', "")));
        let ctx = build_context("FROM scratch\nCOPY f /f\n");
        b.ok(&["build", "-t", &own, ctx.path().to_str().unwrap()]);
        let ctx = build_context(&format!(
            "FROM scratch\nCOPY f /f\nONBUILD COPY --from={own} /f /copied\n"
        ));
        b.ok(&["build", "-t", &trap, ctx.path().to_str().unwrap()]);
        let ctx = build_context(&format!("FROM {trap}\n"));
        b.ok(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
        assert_eq!(owner_of("image", &out_name), "uid:2972");
        direct().ok(&["rmi", &out_name]);
    }
}

/// The classic builder resolves a later stage's `FROM` and a `COPY --from` image only when
/// that step runs, after the tenant's own `RUN` steps: a name missing when the build starts
/// could by then be another tenant's image. Under isolation such a name is refused (pull it
/// first), in every spelling and with both CLIs; so is a missing first `FROM` unless the build
/// pulls (`--pull`: the daemon uses what it pulled), and steps naming images that exist
/// build as before.
#[test]
fn later_build_steps_must_name_images_that_exist() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let base = test_image();
    let missing = unique_name("iso-gap-not-yet");
    let out_name = c.image("iso-gap-later-out");
    let refused = [
        format!("FROM scratch\nCOPY f /f\nFROM {missing}\n"),
        format!("FROM {base}\nRUN true\nfrom {missing}:v2 AS two\n"),
        format!("FROM scratch\nCOPY --from={missing} /f /f\n"),
        format!("FROM {base} AS one\nFROM scratch\ncopy --chown=0:0 --from={missing} /f /f\n"),
        format!("ARG LATER={missing}\nFROM scratch\nCOPY f /f\nFROM $LATER\n"),
    ];
    for (cli, b) in tenant_clis(&proxy, 2982) {
        for dockerfile in &refused {
            let ctx = build_context(dockerfile);
            let out = b.run(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
            assert!(
                failed_with(&out, "pull it first") && stderr_str(&out).contains(&missing),
                "{cli} {dockerfile}: {}",
                describe(&out)
            );
            assert!(!exists("image", &out_name), "{cli} {dockerfile}");
        }
        // The first FROM too, unless the build pulls (the daemon then uses what it pulled):
        // then isolation lets it be (this one is refused by the fetch rule instead: the
        // registry is on loopback; nothing here reaches beyond it).
        for first in [missing.clone(), format!("127.0.0.1:1/{missing}")] {
            let ctx = build_context(&format!("FROM {first}\nCOPY f /f\n"));
            let out = b.run(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
            assert!(
                failed_with(&out, "pull it first") && stderr_str(&out).contains(&first),
                "{cli} first FROM {first}: {}",
                describe(&out)
            );
        }
        let pulled = format!("127.0.0.1:1/{missing}");
        let ctx = build_context(&format!("FROM {pulled}\nCOPY f /f\n"));
        let out = b.run(&[
            "build",
            "--pull",
            "-t",
            &out_name,
            ctx.path().to_str().unwrap(),
        ]);
        assert!(
            failed_with(&out, "loopback") && !stderr_str(&out).contains("pull it first"),
            "{cli} --pull: {}",
            describe(&out)
        );
        assert!(!exists("image", &out_name), "{cli} --pull");
        // Later steps naming images that exist (shared, the tenant's own) build.
        let own = c.image(&format!("iso-gap-later-own-{}", cli.replace('.', "")));
        let ctx = build_context("FROM scratch\nCOPY f /f\n");
        b.ok(&["build", "-t", &own, ctx.path().to_str().unwrap()]);
        let ctx = build_context(&format!(
            "FROM scratch\nCOPY f /f\nFROM {base}\nCOPY --from={own} /f /g\n"
        ));
        b.ok(&["build", "-t", &out_name, ctx.path().to_str().unwrap()]);
        assert_eq!(owner_of("image", &out_name), "uid:2982");
        direct().ok(&["rmi", &out_name]);
    }
}
