//! Per-user isolation on a shared host (issue 13), objects that are named or created: two
//! tenants (two real unix uids in the "users" group) and an admin (root) drive the docker CLI
//! through one socket configured by `config/examples/multi-user.toml`.
//!
//! Each test uses its own pair of uids, so tests running at once never share a tenant.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
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

/// A raw request as `uid` (`None`: root) to `sock`: status and body.
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
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
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

/// A failed CLI run whose error is exactly `wanted`.
fn assert_missing(out: &std::process::Output, wanted: &str, what: &str) {
    let err = stderr_str(out);
    assert!(
        !out.status.success() && err.contains(wanted) && !err.contains("sockwarden"),
        "{what}: expected {wanted:?}\n{}",
        describe(out)
    );
}

fn run_detached(docker: &Docker, name: &str, extra: &[&str]) -> String {
    let image = test_image();
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&image, "sleep", "300"]);
    docker.ok_str(&args).trim().to_owned()
}

#[test]
fn a_tenants_own_workflow_works_and_is_labelled() {
    let (proxy, audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2101);
    let web = c.container("iso-web");
    let id = run_detached(&a, &web, &[]);
    assert_eq!(owner_of("container", &id), "uid:2101");
    // exec, logs, top, inspect by each spelling, stop/start, rename.
    assert_eq!(a.ok_str(&["exec", &web, "echo", "hi"]).trim(), "hi");
    a.ok(&["logs", &web]);
    a.ok(&["top", &web]);
    for spelling in [
        web.clone(),
        format!("/{web}"),
        id.clone(),
        id[..12].to_owned(),
    ] {
        let got = a.ok_str(&["inspect", "--format", "{{.Id}}", &spelling]);
        assert_eq!(got.trim(), id, "{spelling}");
    }
    a.ok(&["restart", "-t", "0", &web]);
    let renamed = format!("{web}-2");
    a.ok(&["rename", &web, &renamed]);
    c.add_container(&renamed);
    // Volumes: explicit, implicit through -v and --mount.
    let vol = unique_name("iso-vol");
    a.ok(&["volume", "create", &vol]);
    assert_eq!(owner_of("volume", &vol), "uid:2101");
    let implicit = unique_name("iso-implicit");
    let mounted = unique_name("iso-mounted");
    let image = test_image();
    a.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{implicit}:/x"),
        "--mount",
        &format!("type=volume,src={mounted},dst=/y"),
        "-v",
        &format!("{vol}:/z"),
        &image,
        "touch",
        "/x/f",
    ]);
    assert_eq!(owner_of("volume", &implicit), "uid:2101");
    assert_eq!(owner_of("volume", &mounted), "uid:2101");
    a.ok(&["volume", "inspect", &implicit]);
    // Networks.
    let net = unique_name("iso-net");
    let made = a.run(&["network", "create", &net]);
    if made.status.success() {
        assert_eq!(owner_of("network", &net), "uid:2101");
        a.ok(&["network", "inspect", &net]);
        let joined = c.container("iso-joined");
        a.ok(&[
            "create",
            "--name",
            &joined,
            "--network",
            &net,
            &image,
            "true",
        ]);
        a.ok(&["network", "disconnect", &net, &joined]);
        a.ok(&["network", "connect", &net, &joined]);
        a.ok(&["rm", &joined]);
        a.ok(&["network", "rm", &net]);
    } else {
        eprintln!(
            "network create not possible on this daemon: {}",
            describe(&made)
        );
    }
    // Commit: the image is the tenant's.
    let committed = c.image("iso-commit");
    a.ok(&["commit", &renamed, &committed]);
    assert_eq!(owner_of("image", &committed), "uid:2101");
    a.ok(&["rm", "-f", &renamed]);
    for v in [&vol, &implicit, &mounted] {
        a.ok(&["volume", "rm", v]);
    }
    // The admin sees the tenant's objects, owner label and all.
    let owned = c.container("iso-owned");
    run_detached(&a, &owned, &[]);
    let admin = proxy.docker();
    assert_eq!(
        admin
            .ok_str(&[
                "inspect",
                "--format",
                &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
                &owned
            ])
            .trim(),
        "uid:2101"
    );
    admin.ok(&["stop", "-t", "0", &owned]);
    // Every record of the tenant carries it.
    let record = wait_audit_record(&audit, Duration::from_secs(5), |r| {
        r["operation"] == "container.create" && r["tenant"] == "uid:2101"
    });
    assert_eq!(record["decision"], "allow");
    let records = audit_records(&audit);
    assert!(records
        .iter()
        .filter(|r| r["peer"]["uid"] == 2101)
        .all(|r| r["tenant"] == "uid:2101"));
    assert!(records
        .iter()
        .filter(|r| r["client"] == "admins")
        .all(|r| r.get("tenant").is_none()));
}

#[test]
fn another_tenants_objects_answer_as_missing() {
    let (proxy, audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2201);
    let b = tenant(&proxy, 2202);
    let web = c.container("iso-a-web");
    let id = run_detached(&a, &web, &[]);
    let vol = unique_name("iso-a-vol");
    a.ok(&["volume", "create", &vol]);
    let exec_id = {
        let (status, body) = raw(
            &proxy.socket,
            Some(2201),
            "POST",
            &format!("/containers/{web}/exec"),
            Some(r#"{"Cmd":["true"]}"#),
        );
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["Id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Every container route, every spelling: "No such container: <as written>".
    let spellings = [
        web.clone(),
        format!("/{web}"),
        id.clone(),
        id[..10].to_owned(),
    ];
    // The daemon's words for a missing container named with a slash (the path's `//` reads
    // as one).
    let missing = "sw-iso-nothing-here";
    let slashed =
        stderr_str(&direct().run(&["inspect", "--type", "container", &format!("/{missing}")]));
    let slashed = slashed
        .trim()
        .trim_start_matches("Error response from daemon: ")
        .replace(missing, &web);
    for s in &spellings {
        let wanted = if s.starts_with('/') {
            slashed.clone()
        } else {
            format!("No such container: {s}")
        };
        for args in [
            vec!["inspect", "--type", "container", s.as_str()],
            vec!["logs", s],
            vec!["top", s],
            vec!["exec", s, "true"],
            vec!["stop", "-t", "0", s],
            vec!["kill", s],
            vec!["restart", s],
            vec!["pause", s],
            // (`rm -f` of a missing container succeeds in the CLI: plain `rm` shows it.)
            vec!["rm", s],
            vec!["rename", s, "iso-stolen"],
            vec!["update", "--memory", "64m", s],
            vec!["port", s],
            vec!["diff", s],
            vec!["export", s],
            vec!["commit", s],
        ] {
            let out = b.run(&args);
            // A query names the container as written (commit's `container=/web`).
            let wanted = if args[0] == "commit" {
                format!("No such container: {s}")
            } else {
                wanted.clone()
            };
            assert_missing(&out, &wanted, &format!("{args:?}"));
        }
        let out = b.run(&["cp", &format!("{s}:/etc/passwd"), "-"]);
        assert!(!out.status.success(), "cp from {s}: {}", describe(&out));
        // Both CLIs, and the routes that wait or stream: exactly what each CLI prints for a
        // missing container of the same spelling on the daemon itself.
        let same_shape = if s.starts_with('/') {
            format!("/{missing}")
        } else {
            missing.to_owned()
        };
        for bin in ["docker", DEBIAN_DOCKER_CLI] {
            for args in [
                vec!["inspect", "--type", "container", "{}"],
                vec!["exec", "{}", "true"],
                vec!["logs", "{}"],
                vec!["start", "{}"],
                vec!["wait", "{}"],
                vec!["attach", "{}"],
                vec!["unpause", "{}"],
            ] {
                let with = |name: &str| -> Vec<String> {
                    args.iter().map(|a| a.replace("{}", name)).collect()
                };
                let direct_args = with(&same_shape);
                let direct_args: Vec<&str> = direct_args.iter().map(String::as_str).collect();
                let want = direct().bin(bin).run(&direct_args);
                let tenant_args = with(s);
                let tenant_args: Vec<&str> = tenant_args.iter().map(String::as_str).collect();
                let got = b.clone().bin(bin).run(&tenant_args);
                assert!(
                    !want.status.success() && !got.status.success(),
                    "{bin} {args:?}"
                );
                assert_eq!(
                    stderr_str(&got),
                    stderr_str(&want).replace(missing, s.trim_start_matches('/')),
                    "{bin} {tenant_args:?}"
                );
            }
        }
    }
    // Create-time references to A's container and volume.
    let image = test_image();
    // (Raw: the CLI answers a 404 on create by pulling the image and trying again, as it
    // does for the daemon's own "No such container".)
    let short = id[..12].to_owned();
    for (field, value, named) in [
        ("VolumesFrom", format!(r#"["{web}:ro"]"#), web.as_str()),
        ("VolumesFrom", format!(r#"["{short}"]"#), short.as_str()),
        ("Links", format!(r#"["/{web}:/me/db"]"#), web.as_str()),
        ("NetworkMode", format!(r#""container:{web}""#), web.as_str()),
        ("PidMode", format!(r#""container:{id}""#), id.as_str()),
        ("IpcMode", format!(r#""container:{short}""#), short.as_str()),
    ] {
        let body = format!(r#"{{"Image":"{image}","HostConfig":{{"{field}":{value}}}}}"#);
        // Go reads keys in any case: `hostconfig.volumesfrom` is `HostConfig.VolumesFrom`.
        let folded = format!(
            r#"{{"Image":"{image}","hostconfig":{{"{}":{value}}}}}"#,
            field.to_ascii_lowercase()
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2202),
            "POST",
            "/containers/create",
            Some(&folded),
        );
        assert_eq!(
            (status, message(&got)),
            (404, format!("No such container: {named}")),
            "folded {field} {value}"
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2202),
            "POST",
            "/v1.41/containers/create",
            Some(&body),
        );
        assert_eq!(
            (status, message(&got)),
            (404, format!("No such container: {named}")),
            "{field} {value}"
        );
    }
    for (field, value) in [
        ("Binds", format!(r#"["{vol}:/x"]"#)),
        (
            "Mounts",
            format!(r#"[{{"Type":"volume","Source":"{vol}","Target":"/x"}}]"#),
        ),
    ] {
        let body = format!(
            r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"none","{field}":{value}}}}}"#
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2202),
            "POST",
            "/containers/create",
            Some(&body),
        );
        assert_eq!(status, 403, "{field}: {got}");
        assert!(message(&got).contains("is taken"), "{field}: {got}");
    }
    // Volumes.
    for args in [
        vec!["volume", "inspect", vol.as_str()],
        vec!["volume", "rm", vol.as_str()],
    ] {
        let out = b.run(&args);
        assert!(
            !out.status.success() && stderr_str(&out).to_lowercase().contains("no such volume"),
            "{args:?}: {}",
            describe(&out)
        );
    }
    // Raw API: versions, percent-encoding, execs; the answer is the daemon's own 404 for a
    // missing object, word for word.
    let daemon = daemon_socket();
    let cases = [
        ("GET", format!("/containers/{}/json", "{}"), web.clone()),
        ("GET", "/v1.41/containers/{}/json".to_owned(), web.clone()),
        ("GET", "/v1.41/containers/{}/json".to_owned(), id.clone()),
        ("POST", "/v1.41/containers/{}/stop".to_owned(), web.clone()),
        ("DELETE", "/containers/{}?force=1".to_owned(), web.clone()),
        (
            "GET",
            "/v1.41/containers/{}/attach/ws?stream=1&stdout=1".to_owned(),
            web.clone(),
        ),
        (
            "GET",
            "/v1.41/containers/{}/stats?stream=0".to_owned(),
            web.clone(),
        ),
        ("GET", "/v1.41/containers/{}/changes".to_owned(), id.clone()),
        (
            "POST",
            "/v1.41/containers/{}/resize?h=1&w=1".to_owned(),
            web.clone(),
        ),
        (
            "GET",
            "/v1.41/containers/{}/archive?path=/".to_owned(),
            id[..12].to_owned(),
        ),
        ("GET", "/volumes/{}".to_owned(), vol.clone()),
        ("DELETE", "/v1.41/volumes/{}".to_owned(), vol.clone()),
        ("GET", "/exec/{}/json".to_owned(), exec_id.clone()),
        (
            "POST",
            "/v1.41/exec/{}/resize?h=1&w=1".to_owned(),
            exec_id.clone(),
        ),
    ];
    for (method, template, name) in &cases {
        let (want_status, want) = raw(
            &daemon,
            None,
            method,
            &template.replace("{}", missing),
            None,
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2202),
            method,
            &template.replace("{}", name),
            None,
        );
        assert_eq!(
            (status, message(&got)),
            (want_status, message(&want).replace(missing, name)),
            "{method} {template} {name}"
        );
    }
    // Percent-encoded name.
    let encoded: String = web.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, got) = raw(
        &proxy.socket,
        Some(2202),
        "GET",
        &format!("/containers/{encoded}/json"),
        None,
    );
    assert_eq!(status, 404, "{got}");
    assert_eq!(message(&got), format!("No such container: {web}"));
    let (status, got) = raw(
        &proxy.socket,
        Some(2202),
        "POST",
        &format!("/exec/{exec_id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(status, 404, "{got}");
    // A's objects are unchanged.
    assert!(
        direct()
            .ok_str(&["inspect", "--format", "{{.State.Running}} {{.Name}}", &id])
            .trim()
            == format!("true /{web}")
    );
    assert!(exists("volume", &vol));
    // The refusal is recorded with its reason; the client read only "No such ...".
    let record = wait_audit_record(&audit, Duration::from_secs(5), |r| {
        r["tenant"] == "uid:2202" && r["operation"] == "container.delete"
    });
    assert_eq!(record["decision"], "deny");
    assert!(
        record["reason"]
            .as_str()
            .unwrap_or("")
            .contains("is not this tenant's"),
        "{record}"
    );
    // Objects made on the daemon directly (no owner) are invisible to tenants too.
    let plain = c.container("iso-plain");
    run_detached(&direct(), &plain, &[]);
    assert_missing(
        &a.run(&["inspect", "--type", "container", &plain]),
        &format!("No such container: {plain}"),
        "unowned",
    );
    // And A's still work for A.
    a.ok(&["exec", &web, "true"]);
}

#[test]
fn networks_of_another_tenant_answer_as_missing() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2301);
    let b = tenant(&proxy, 2302);
    let net = unique_name("iso-net");
    let made = a.run(&["network", "create", &net]);
    // The test daemon has an address pool of its own (scripts/test.sh): this must work.
    assert!(made.status.success(), "network create: {}", describe(&made));
    let net_id = direct()
        .ok_str(&["network", "inspect", "--format", "{{.Id}}", &net])
        .trim()
        .to_owned();
    let mine = c.container("iso-b-box");
    run_detached(&b, &mine, &[]);
    let image = test_image();
    for s in [net.clone(), net_id.clone(), net_id[..12].to_owned()] {
        let wanted = format!("network {s} not found");
        assert_missing(&b.run(&["network", "inspect", &s]), &wanted, "inspect");
        assert_missing(&b.run(&["network", "rm", &s]), &wanted, "rm");
        assert_missing(
            &b.run(&["network", "connect", &s, &mine]),
            &wanted,
            "connect",
        );
        assert_missing(
            &b.run(&["network", "disconnect", &s, &mine]),
            &wanted,
            "disconnect",
        );
        // Raw: the CLI answers a 404 on create by pulling the image, as it does for the
        // daemon's own "network not found".
        let body = format!(r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"{s}"}}}}"#);
        let (status, got) = raw(
            &proxy.socket,
            Some(2302),
            "POST",
            "/containers/create",
            Some(&body),
        );
        assert_eq!(
            (status, message(&got)),
            (404, wanted.clone()),
            "create --network {s}"
        );
        let body = format!(
            r#"{{"Image":"{image}","HostConfig":{{"NetworkMode":"none"}},"NetworkingConfig":{{"EndpointsConfig":{{"{s}":{{}}}}}}}}"#
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2302),
            "POST",
            "/v1.41/containers/create",
            Some(&body),
        );
        assert_eq!(
            (status, message(&got)),
            (404, wanted.clone()),
            "EndpointsConfig {s}"
        );
    }
    // A's network, B's container by name in the body: A cannot connect B's container either.
    let other = c.container("iso-a-box");
    run_detached(&a, &other, &[]);
    assert_missing(
        &b.run(&["network", "connect", "none", &other]),
        "network none not found",
        "none",
    );
    assert_missing(
        &a.run(&["network", "connect", &net, &mine]),
        &format!("No such container: {mine}"),
        "connect other's",
    );
    assert!(exists("network", &net));
    a.ok(&["network", "rm", &net]);
}

#[test]
fn forged_owner_labels_are_refused() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2401);
    let image = test_image();
    let name = c.container("iso-forged");
    let forged = format!("{LABEL}=uid:2402");
    for args in [
        vec![
            "create",
            "--network",
            "none",
            "--name",
            name.as_str(),
            "--label",
            &forged,
            &image,
        ],
        vec!["volume", "create", "--label", &forged],
        vec!["network", "create", "--label", &forged, "iso-forged-net"],
    ] {
        let out = a.run(&args);
        assert!(
            !out.status.success()
                && stderr_str(&out).contains("the owner label is set by sockwarden only"),
            "{args:?}: {}",
            describe(&out)
        );
    }
    assert!(!exists("container", &name));
    assert!(!exists("network", "iso-forged-net"));
    // Raw bodies: key case variants, folded duplicates, non-ASCII keys, volume mounts.
    let sock = &proxy.socket;
    for (path, body, wanted) in [
        (
            "/containers/create",
            format!(r#"{{"Image":"{image}","labels":{{"{LABEL}":"uid:2402"}}}}"#),
            403,
        ),
        (
            "/v1.41/containers/create",
            format!(r#"{{"Image":"{image}","LABELS":{{"{LABEL}":"x"}}}}"#),
            403,
        ),
        (
            "/containers/create",
            format!(r#"{{"Image":"{image}","Labels":{{}},"labels":{{"{LABEL}":"x"}}}}"#),
            400,
        ),
        (
            "/containers/create",
            format!("{{\"Image\":\"{image}\",\"Label\u{17f}\":{{\"{LABEL}\":\"x\"}}}}"),
            400,
        ),
        (
            "/volumes/create",
            format!(r#"{{"Name":"iso-forged-v","labels":{{"{LABEL}":"uid:1"}}}}"#),
            403,
        ),
        (
            "/networks/create",
            format!(r#"{{"Name":"iso-forged-n","Labels":{{"{LABEL}":"uid:1"}}}}"#),
            403,
        ),
        (
            "/containers/create",
            format!(
                r#"{{"Image":"{image}","HostConfig":{{"Mounts":[{{"Type":"volume","Source":"iso-forged-m","Target":"/x","VolumeOptions":{{"Labels":{{"{LABEL}":"uid:1"}}}}}}]}}}}"#
            ),
            403,
        ),
    ] {
        let (status, got) = raw(sock, Some(2401), "POST", path, Some(&body));
        assert_eq!(status, wanted, "{path} {body}: {got}");
    }
    assert!(!exists("volume", "iso-forged-v"));
    assert!(!exists("volume", "iso-forged-m"));
    // Commit changes and build labels.
    let box_ = c.container("iso-box");
    run_detached(&a, &box_, &[]);
    let out = a.run(&[
        "commit",
        "--change",
        &format!("LABEL {forged}"),
        &box_,
        "iso-forged-img",
    ]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("owner label"),
        "{}",
        describe(&out)
    );
    let out = a.run(&[
        "commit",
        "--change",
        "label SOCKWARDEN.OWNER=x",
        &box_,
        "iso-forged-img",
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    let out = a.clone().env("DOCKER_BUILDKIT", "0").run(&[
        "build",
        "--label",
        &forged,
        "-t",
        "iso-forged-img",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("owner label"),
        "{}",
        describe(&out)
    );
    let (status, got) = raw(
        sock,
        Some(2401),
        "POST",
        "/build?t=iso-forged-img&labels=%7B%7D&labels=%7B%7D",
        None,
    );
    assert_eq!(status, 400, "repeated labels: {got}");
    assert!(!exists("image", "iso-forged-img"));
}

#[test]
fn built_images_are_owned_and_shared_images_protected() {
    // BuildKit is off in the example (its RUN steps escape the caps): turned on here to show
    // its images are labelled too and its FROM is checked over the session.
    let (proxy, _audit) = start(&BUILDKIT_ON);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2501);
    let b = tenant(&proxy, 2502);
    // A Dockerfile LABEL cannot forge the owner either: the query's label is applied last.
    let ctx = build_context(&format!(
        "FROM scratch\nLABEL {LABEL}=uid:2502\nCOPY f /f\n"
    ));
    let ctx_s = ctx.path().to_str().unwrap();
    let classic = c.image("iso-classic");
    a.clone()
        .env("DOCKER_BUILDKIT", "0")
        .ok(&["build", "-t", &classic, ctx_s]);
    assert_eq!(owner_of("image", &classic), "uid:2501");
    let bk = c.image("iso-buildkit");
    let out = a
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(180))
        .run(&["build", "-t", &bk, ctx_s]);
    assert!(out.status.success(), "BuildKit: {}", describe(&out));
    assert_eq!(owner_of("image", &bk), "uid:2501");
    // B cannot build from A's image with BuildKit either: its Dockerfile is read from the
    // session and FROM is checked as a classic build's is.
    let from_a = build_context(&format!("FROM {classic}\nCOPY f /g\n"));
    let stolen = c.image("iso-bk-from-a");
    let out = b
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(180))
        .run(&["build", "-t", &stolen, from_a.path().to_str().unwrap()]);
    assert!(
        !out.status.success() && describe(&out).contains("sockwarden"),
        "BuildKit FROM another tenant's image: {}",
        describe(&out)
    );
    assert!(
        !direct()
            .run(&["image", "inspect", &stolen])
            .status
            .success(),
        "built from another tenant's image"
    );
    let classic_id = direct()
        .ok_str(&["image", "inspect", "--format", "{{.Id}}", &classic])
        .trim()
        .to_owned();
    // A uses its image; B cannot touch it, nor see it, by name or ID.
    let made = c.container("iso-from-own");
    a.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &made,
        &classic,
        "/f",
    ]);
    for s in [classic.clone(), classic_id.clone()] {
        let out = b.run(&["rmi", &s]);
        assert!(
            !out.status.success() && stderr_str(&out).contains("No such image"),
            "rmi {s}: {}",
            describe(&out)
        );
        let out = b.run(&["tag", &s, "iso-b-copy"]);
        assert!(
            !out.status.success() && stderr_str(&out).contains("No such image"),
            "tag {s}: {}",
            describe(&out)
        );
        let out = b.run(&["image", "inspect", &s]);
        assert!(!out.status.success(), "inspect {s}: {}", describe(&out));
        let body = format!(r#"{{"Image":"{s}","HostConfig":{{"NetworkMode":"none"}}}}"#);
        let (status, got) = raw(
            &proxy.socket,
            Some(2502),
            "POST",
            "/containers/create",
            Some(&body),
        );
        assert_eq!(status, 404, "create from {s}: {got}");
        assert!(message(&got).starts_with("No such image: "), "{got}");
        let out = b.run(&["create", "--network", "none", &s]);
        assert!(!out.status.success(), "create {s}: {}", describe(&out));
    }
    // B cannot re-point A's tag: tag, build -t, commit onto it.
    let b_img = c.image("iso-b-img");
    b.clone()
        .env("DOCKER_BUILDKIT", "0")
        .ok(&["build", "-t", &b_img, ctx_s]);
    let out = b.run(&["tag", &b_img, &classic]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("is taken"),
        "{}",
        describe(&out)
    );
    let out = b
        .clone()
        .env("DOCKER_BUILDKIT", "0")
        .run(&["build", "-t", &classic, ctx_s]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("is taken"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        direct()
            .ok_str(&["image", "inspect", "--format", "{{.Id}}", &classic])
            .trim(),
        classic_id
    );
    // The shared base image: everyone runs it, nobody but admins removes or re-points it.
    let base = test_image();
    b.ok(&["image", "inspect", &base]);
    let out = b.run(&["rmi", &base]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("shared base image"),
        "{}",
        describe(&out)
    );
    let out = b.run(&["tag", &b_img, &base]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("shared base image"),
        "{}",
        describe(&out)
    );
    assert!(exists("image", &base));
    // The daemon's own words for a missing image (they differ by route), tag-less name, tag
    // and full ID alike.
    let bare = classic.trim_end_matches(":latest");
    let hex_id = classic_id.trim_start_matches("sha256:");
    let no_image = "sw-iso-no-image".to_owned();
    for (method, template, name, missing) in [
        (
            "DELETE",
            "/v1.41/images/{}",
            bare.to_owned(),
            no_image.clone(),
        ),
        ("GET", "/images/{}/json", bare.to_owned(), no_image.clone()),
        (
            "GET",
            "/v1.41/images/{}/history",
            classic.clone(),
            format!("{no_image}:latest"),
        ),
        ("DELETE", "/images/{}", hex_id.to_owned(), "0".repeat(64)),
        (
            "GET",
            "/images/{}/json",
            classic_id.clone(),
            format!("sha256:{}", "0".repeat(64)),
        ),
        (
            "POST",
            "/images/{}/tag?repo=sw-iso-b-copy&tag=1",
            bare.to_owned(),
            no_image.clone(),
        ),
        // Missing for everyone: answered by sockwarden (not passed on), in the same words.
        ("DELETE", "/images/{}", no_image.clone(), no_image.clone()),
        (
            "GET",
            "/v1.41/images/{}/json",
            format!("{no_image}:9"),
            format!("{no_image}:9"),
        ),
    ] {
        let (want_status, want) = raw(
            &daemon_socket(),
            None,
            method,
            &template.replace("{}", &missing),
            None,
        );
        let (status, got) = raw(
            &proxy.socket,
            Some(2502),
            method,
            &template.replace("{}", &name),
            None,
        );
        let missing_text = missing
            .trim_start_matches("sha256:")
            .trim_end_matches(":latest");
        let name_text = name
            .trim_start_matches("sha256:")
            .trim_end_matches(":latest");
        assert_eq!(
            (status, message(&got)),
            (want_status, message(&want).replace(missing_text, name_text)),
            "{method} {template} {name}"
        );
    }
    // Pulls may not re-point a name another tenant's image or a shared image holds.
    for (image, wanted) in [
        (classic.as_str(), "is taken"),
        (base.as_str(), "shared base image"),
    ] {
        let (repo, tag) = image.rsplit_once(':').unwrap();
        let (status, got) = raw(
            &proxy.socket,
            Some(2502),
            "POST",
            &format!("/images/create?fromImage={repo}&tag={tag}"),
            None,
        );
        assert_eq!(status, 403, "pull {image}: {got}");
        assert!(message(&got).contains(wanted), "pull {image}: {got}");
    }
    // Builds from another tenant's image fail as missing (FROM, COPY --from); from a shared
    // image or one's own they work.
    let bb = b.clone().env("DOCKER_BUILDKIT", "0");
    for dockerfile in [
        format!("FROM {classic}\n"),
        format!("FROM {classic_id}\n"),
        format!("FROM scratch\nCOPY --from={classic} /f /f\n"),
        format!("ARG BASE={classic}\nFROM $BASE\n"),
    ] {
        let ctx = build_context(&dockerfile);
        let out = bb.run(&[
            "build",
            "-t",
            "iso-from-other",
            ctx.path().to_str().unwrap(),
        ]);
        assert!(
            !out.status.success() && stderr_str(&out).contains("No such image"),
            "{dockerfile}: {}",
            describe(&out)
        );
    }
    assert!(!exists("image", "iso-from-other"));
    let from_shared = c.image("iso-from-shared");
    let ctx = build_context(&format!("FROM {base}\nCOPY f /f\n"));
    bb.ok(&["build", "-t", &from_shared, ctx.path().to_str().unwrap()]);
    assert_eq!(owner_of("image", &from_shared), "uid:2502");
    let from_own = c.image("iso-from-own");
    let ctx = build_context(&format!("FROM {classic}\nCOPY f /g\n"));
    a.clone().env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "-t",
        &from_own,
        ctx.path().to_str().unwrap(),
    ]);
    // A removes its own.
    a.ok(&["rm", &made]);
    a.ok(&["rmi", &bk]);
}

#[test]
fn reused_names_and_a_restart_keep_tenants_apart() {
    let (proxy, _audit) = start(&[]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2601);
    let b = tenant(&proxy, 2602);
    let x = c.container("iso-x");
    run_detached(&a, &x, &[]);
    a.ok(&["exec", &x, "true"]);
    a.ok(&["rm", "-f", &x]);
    let b_id = run_detached(&b, &x, &[]);
    assert_missing(
        &a.run(&["inspect", "--type", "container", &x]),
        &format!("No such container: {x}"),
        "reused inspect",
    );
    assert_missing(
        &a.run(&["exec", &x, "true"]),
        &format!("No such container: {x}"),
        "reused exec",
    );
    // Renamed: the new name is B's, the old one nobody's.
    let y = format!("{x}-renamed");
    c.add_container(&y);
    b.ok(&["rename", &x, &y]);
    assert_eq!(
        b.ok_str(&["inspect", "--format", "{{.Id}}", &y]).trim(),
        b_id
    );
    assert_missing(
        &a.run(&["inspect", "--type", "container", &y]),
        &format!("No such container: {y}"),
        "renamed",
    );
    // A restart of sockwarden reads ownership back from the labels.
    drop(proxy);
    let (proxy, _audit) = start(&[]);
    let a = tenant(&proxy, 2601);
    let b = tenant(&proxy, 2602);
    assert_eq!(
        b.ok_str(&["inspect", "--format", "{{.Id}}", &y]).trim(),
        b_id
    );
    assert_missing(
        &a.run(&["inspect", "--type", "container", &y]),
        &format!("No such container: {y}"),
        "after restart",
    );
    assert_missing(
        &a.run(&["inspect", "--type", "container", &b_id]),
        &format!("No such container: {b_id}"),
        "ID after restart",
    );
}

#[test]
fn quotas_are_enforced_per_tenant() {
    let (proxy, _audit) = start(&[
        ("max_containers = 50", "max_containers = 2"),
        ("max_volumes = 20", "max_volumes = 1"),
    ]);
    let c = Cleanup::new();
    let a = tenant(&proxy, 2701);
    let b = tenant(&proxy, 2702);
    run_detached(&a, &c.container("iso-q1"), &[]);
    run_detached(&a, &c.container("iso-q2"), &[]);
    let third = c.container("iso-q3");
    let out = a.run(&[
        "create",
        "--network",
        "none",
        "--name",
        &third,
        &test_image(),
    ]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("already has 2 containers"),
        "{}",
        describe(&out)
    );
    assert!(!exists("container", &third));
    // Another tenant has its own count.
    run_detached(&b, &c.container("iso-qb"), &[]);
    let v1 = unique_name("iso-qv1");
    a.ok(&["volume", "create", &v1]);
    let v2 = unique_name("iso-qv2");
    let out = a.run(&["volume", "create", &v2]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("already has 1 volumes"),
        "{}",
        describe(&out)
    );
    assert!(!exists("volume", &v2));
    a.ok(&["volume", "rm", &v1]);
}
