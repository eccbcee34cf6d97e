//! Issue 12, classes 4 and 5, end to end through the real daemon and both CLIs.
//!
//! Class 4: a read-only (dashboard) client gets no secret values in any answer: container,
//! image, history, volume, disk-usage answers and the event stream are checked for each secret
//! string, which the daemon itself does show (so each check can fail); `docker top` with ps
//! options that print environments is refused, safe ones still work.
//!
//! Class 5: with the container `images` allowlist restricted, no client writes an allowed name
//! (tag, build, commit, import, load, both CLIs, several spellings of the name); writing a
//! permitted other name works, and the allowed image still runs, unchanged.
//!
//! Also: a refused h2c upgrade (which the CLI cannot show) is logged at warn with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use support::{current_uid, daemon_socket, http_request, test_image, Cleanup, Docker, Proxy};

const T: Duration = Duration::from_secs(20);
const OLD_CLI: &str = "/usr/bin/docker";

/// The dashboard example's policy: the read-only profile (redact_env on) plus logs without
/// follow.
fn dashboard_proxy() -> Proxy {
    let uid = current_uid();
    Proxy::start_with(
        &format!(
            r#"
[[client]]
name = "dashboard"
policy = "dashboard"
uids = [{uid}]

[policy.dashboard]
profile = "read-only"
allow = ["exec.inspect"]

[[policy.dashboard.rule]]
name = "logs-snapshot"
effect = "allow"
operations = ["container.logs"]
query = {{ follow = false }}
"#
        ),
        &daemon_socket(),
    )
}

fn direct() -> Docker {
    Docker::new(&daemon_socket())
}

/// The body of a GET on `sock` (de-chunked), and its status line.
fn get(sock: &Path, path: &str) -> (String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    let resp = http_request(sock, req.as_bytes(), T).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// `secret` is in the daemon's own answer to `path` (so the test can fail) and in none of
/// sockwarden's (at API versions old and new), whose answer is still JSON with `field` in it.
fn hidden(p: &Proxy, path: &str, secrets: &[&str], field: &str) {
    let (status, body) = get(&daemon_socket(), &format!("/v1.41{path}"));
    assert!(status.contains("200"), "daemon {path}: {status} {body}");
    for secret in secrets {
        assert!(
            body.contains(secret),
            "the daemon's {path} should show {secret}: {body}"
        );
    }
    for version in ["/v1.41", "/v1.25", ""] {
        let (status, body) = get(&p.socket, &format!("{version}{path}"));
        assert!(status.contains("200"), "{version}{path}: {status} {body}");
        for secret in secrets {
            assert!(
                !body.contains(secret),
                "{version}{path} leaks {secret}: {body}"
            );
        }
        let _: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{version}{path} is not JSON ({e}): {body}"));
        assert!(body.contains(field), "{version}{path} lost {field}: {body}");
    }
}

#[test]
fn container_env_log_options_and_mount_options_are_hidden() {
    let clean = Cleanup::new();
    let p = dashboard_proxy();
    let name = clean.container("sec-ctr");
    direct().ok(&[
        "create",
        "--name",
        &name,
        "-e",
        "DB_PASSWORD=envsecret1",
        "--env",
        "TOKEN=envsecret2",
        "--log-driver",
        "splunk",
        "--log-opt",
        "splunk-token=logsecret3",
        "--log-opt",
        "splunk-url=https://127.0.0.1:1",
        "--mount",
        "type=volume,dst=/v,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=mountsecret4",
        &test_image(),
        "true",
    ]);
    let secrets = ["envsecret1", "envsecret2", "logsecret3", "mountsecret4"];
    hidden(
        &p,
        &format!("/containers/{name}/json"),
        &secrets,
        "DB_PASSWORD=<redacted>",
    );
    // Both CLIs' inspect, and its --format views.
    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let cli = p.docker().bin(bin);
        for args in [
            vec!["inspect", name.as_str()],
            vec!["container", "inspect", name.as_str()],
            vec![
                "inspect",
                "--format",
                "{{json .Config.Env}} {{json .HostConfig.LogConfig}}",
                name.as_str(),
            ],
        ] {
            let out = cli.ok_str(&args);
            for s in secrets {
                assert!(!out.contains(s), "{bin} {args:?} leaks {s}: {out}");
            }
            assert!(out.contains("splunk-token"), "{bin} {args:?}: {out}");
        }
    }
}

#[test]
fn image_env_arg_and_build_args_are_hidden() {
    let clean = Cleanup::new();
    let p = dashboard_proxy();
    let image = clean.image("sec-img");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {}\nENV K1=imgsecret1\nENV K2 imgsecret2\nARG A1=imgsecret3\nARG BA\n\
             RUN true\nONBUILD ENV OB=imgsecret5\nENV LAST=imgsecret6\n",
            test_image()
        ),
    )
    .unwrap();
    direct().bin(OLD_CLI).env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "-q",
        "-t",
        &image,
        "--build-arg",
        "BA=imgsecret4",
        ctx.path().to_str().unwrap(),
    ]);
    let secrets = [
        "imgsecret1",
        "imgsecret2",
        "imgsecret3",
        "imgsecret4",
        "imgsecret5",
        "imgsecret6",
    ];
    hidden(
        &p,
        &format!("/images/{image}/history"),
        &secrets,
        "CreatedBy",
    );
    hidden(
        &p,
        &format!("/images/{image}/json"),
        &["imgsecret1", "imgsecret2", "imgsecret5", "imgsecret6"],
        "K1=<redacted>",
    );
    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let cli = p.docker().bin(bin);
        for args in [
            vec!["history", "--no-trunc", image.as_str()],
            vec!["image", "inspect", image.as_str()],
            vec!["inspect", image.as_str()],
        ] {
            let out = cli.ok_str(&args);
            for s in secrets {
                assert!(!out.contains(s), "{bin} {args:?} leaks {s}: {out}");
            }
        }
        let history = cli.ok_str(&["history", "--no-trunc", image.as_str()]);
        assert!(history.contains("ENV K1=<redacted>"), "{history}");
        assert!(history.contains("/bin/sh -c true"), "{history}");
    }
}

#[test]
fn volume_options_are_hidden_in_inspect_list_and_disk_usage() {
    let clean = Cleanup::new();
    let p = dashboard_proxy();
    let volume = support::unique_name("sec-vol");
    let _guard = VolumeGuard(volume.clone());
    direct().ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=nfs",
        "--opt",
        "o=addr=127.0.0.1,password=volsecret1,vers=4",
        "--opt",
        "device=:/volsecret2",
        &volume,
    ]);
    hidden(
        &p,
        &format!("/volumes/{volume}"),
        &["volsecret1", "volsecret2"],
        "password=<redacted>",
    );
    hidden(&p, "/volumes", &["volsecret1", "volsecret2"], &volume);
    // This daemon's disk usage lists no volume that no container uses: checked for leaks only
    // (the shape is unit-tested).
    let (status, df) = get(&p.socket, "/system/df");
    assert!(
        status.contains("200") && !df.contains("volsecret"),
        "{status} {df}"
    );
    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let cli = p.docker().bin(bin);
        for args in [
            vec!["volume", "inspect", volume.as_str()],
            vec!["volume", "ls"],
            vec!["system", "df", "-v"],
        ] {
            let out = cli.ok_str(&args);
            assert!(
                !out.contains("volsecret"),
                "{bin} {args:?} leaks a mount option: {out}"
            );
        }
        let out = cli.ok_str(&["volume", "inspect", volume.as_str()]);
        assert!(out.contains("\"type\": \"nfs\""), "{out}");
    }
    drop(clean);
}

struct VolumeGuard(String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let _ = direct().try_run(&["volume", "rm", "-f", &self.0]);
    }
}

fn running_container(clean: &Cleanup, tag: &str, env: &str) -> String {
    let name = clean.container(tag);
    direct().ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        "-e",
        env,
        &test_image(),
        "sleep",
        "300",
    ]);
    name
}

#[test]
fn top_refuses_ps_options_that_print_environments() {
    let clean = Cleanup::new();
    let p = dashboard_proxy();
    let name = running_container(&clean, "sec-top", "TOPSECRET=topsecret1");
    // The daemon itself shows the environment to `ps e`: the refusals below matter.
    let shown = direct().ok_str(&["top", &name, "aux", "e"]);
    assert!(shown.contains("topsecret1"), "{shown}");
    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let cli = p.docker().bin(bin);
        for safe in [
            vec![],
            vec!["-ef"],
            vec!["aux"],
            vec!["-eLf"],
            vec!["-o", "pid,args"],
        ] {
            let mut args = vec!["top", name.as_str()];
            args.extend(safe.iter().copied());
            let out = cli.ok_str(&args);
            assert!(out.contains("sleep 300"), "{bin} {args:?}: {out}");
            assert!(!out.contains("topsecret1"), "{bin} {args:?}: {out}");
        }
        for bad in [
            vec!["e"],
            vec!["eww"],
            vec!["auxe"],
            vec!["aux", "e"],
            vec!["axeww"],
            vec!["-ef", "e"],
            vec!["-H", "-em"],
            vec!["-o", "pid,environ"],
            vec!["--format=env"],
            vec!["-aux"],
        ] {
            let mut args = vec!["top", name.as_str()];
            args.extend(bad.iter().copied());
            let out = cli.run(&args);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success(), "{bin} {args:?} passed: {all}");
            assert!(!all.contains("topsecret1"), "{bin} {args:?}: {all}");
            assert!(
                all.contains("redact_env") && all.contains("ps_args"),
                "{bin} {args:?}: the refusal names the setting: {all}"
            );
        }
    }
}

/// The grammar against the host's own `ps` (the one the daemon runs): no pair of admitted
/// option words makes procps fall back to its BSD reading (where `-ef`'s `e` prints
/// environments), and none prints a process's environment.
#[test]
fn ps_grammar_never_prints_environments_on_this_host() {
    let mut child = std::process::Command::new("sleep")
        .arg("120")
        .env("PSGRAMMARSECRET", "psgrammar1")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut words = Vec::new();
    for c in "eAadNfFlyjcMLTw".chars() {
        words.push(format!("-{c}"));
        words.push(format!("-e{c}"));
    }
    for c in "axujlsvZfrwcnS".chars() {
        words.push(c.to_string());
        words.push(format!("ax{c}"));
    }
    words.push("--forest".into());
    // Beside a format list only selection, thread and width letters are admitted.
    let mut with_format = Vec::new();
    for c in "eAadNLTw".chars() {
        with_format.push(format!("-{c}"));
        with_format.push(format!("-e{c}"));
    }
    for c in "axrw".chars() {
        with_format.push(c.to_string());
        with_format.push(format!("ax{c}"));
    }
    with_format.push("--forest".into());
    let formats = [
        "-o pid,args",
        "o pid,comm",
        "--format pid,args",
        "-eo pid,args",
        "-O pid",
        "axo pid,args",
    ];
    let mut pairs = Vec::new();
    for a in &words {
        for b in &words {
            pairs.push(format!("{a} {b}"));
        }
    }
    for f in formats {
        for w in &with_format {
            pairs.push(format!("{f} {w}"));
            pairs.push(format!("{w} {f}"));
        }
    }
    // sockwarden admits them (a sample: the grammar reads word by word) and refuses the
    // spellings that print environments.
    for sample in pairs.iter().step_by(97) {
        assert!(admitted(sample), "the grammar should admit {sample:?}");
    }
    for refused in ["e", "-ef e", "-ec -o pid,args", "-H -em", "aux e"] {
        assert!(!admitted(refused), "the grammar should refuse {refused:?}");
    }
    let mut checked = 0;
    for ps_args in &pairs {
        let out = std::process::Command::new("ps")
            .args(ps_args.split(' '))
            .args(["-q", &pid])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A conflict both readings refuse ("error: ...") shows nothing; what must never
        // happen is procps' fallback ("bad syntax") or an environment.
        assert!(
            !text.contains("psgrammar1") && !text.contains("bad syntax"),
            "ps {ps_args} -q PID: {text}"
        );
        checked += 1;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(checked > 1000, "{checked}");
}

/// Whether sockwarden's `explain` admits `ps_args` for `container.top` under the dashboard
/// example (the read-only profile).
fn admitted(ps_args: &str) -> bool {
    let encoded: String = ps_args
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sockwarden"))
        .args([
            "explain",
            "--config",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/examples/dashboard.toml"
            ),
            "--client",
            "dashboard",
            "GET",
            &format!("/v1.47/containers/c/top?ps_args={encoded}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("ALLOW")
}

#[test]
fn events_stream_live_without_exec_command_lines() {
    let clean = Cleanup::new();
    let p = dashboard_proxy();
    let name = running_container(&clean, "sec-ev", "X=1");
    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let mut watched = p.docker().bin(bin).stream(&[
            "events",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{json .}}",
        ]);
        let mut raw = direct().stream(&[
            "events",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{json .}}",
        ]);
        // Give both streams a moment to subscribe (the stream is live: later events arrive
        // while it runs).
        std::thread::sleep(Duration::from_millis(500));
        let marker = format!("execsecret-{}", support::unique_name("m"));
        direct().ok(&[
            "exec",
            &name,
            "sh",
            "-c",
            &format!("echo {marker} >/dev/null"),
        ]);
        let seen = raw.wait_for(T, |l| l.contains("exec_die")).to_vec();
        assert!(
            seen.iter().any(|l| l.contains(&marker)),
            "the daemon's events carry the exec command line: {seen:?}"
        );
        let lines = watched.wait_for(T, |l| l.contains("exec_die")).to_vec();
        assert!(
            lines.iter().any(|l| l.contains("exec_create: <redacted>")),
            "{bin}: {lines:?}"
        );
        for l in &lines {
            assert!(!l.contains(&marker), "{bin} events leak the command: {l}");
        }
        assert!(watched.is_running(), "{bin}: the event stream stays open");
    }
    // Exec inspect, if allowed, hides the command too.
    direct().ok(&["exec", "-d", &name, "sh", "-c", "sleep 1 # execsecret2"]);
    let (_, list) = get(&daemon_socket(), &format!("/containers/{name}/json"));
    let doc: serde_json::Value = serde_json::from_str(&list).unwrap();
    let exec_id = doc["ExecIDs"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|v| v.as_str())
        .unwrap()
        .to_owned();
    hidden(
        &p,
        &format!("/exec/{exec_id}/json"),
        &["execsecret2"],
        "ProcessConfig",
    );
}

#[test]
fn refused_h2c_upgrade_is_logged_at_warn() {
    let p = dashboard_proxy();
    let req = b"POST /v1.41/session HTTP/1.1\r\nHost: d\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nX-Docker-Expose-Session-Uuid: x\r\n\r\n";
    let resp = http_request(&p.socket, req, T).unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    let log = support::wait_for(T, || {
        let log = p.log_text();
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("h2c upgrade refused"))
            .then_some(log)
    })
    .unwrap_or_else(|| panic!("no warn line: {}", p.log_text()));
    let line = log
        .lines()
        .find(|l| l.contains("h2c upgrade refused"))
        .unwrap();
    assert!(line.contains("no rule allows build.session"), "{line}");
    assert!(line.contains("request"), "inside the request span: {line}");
    // An HTTP/2 client with prior knowledge gets nothing it can show: logged too.
    let _ = http_request(
        &p.socket,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Duration::from_secs(5),
    );
    support::wait_for(T, || {
        p.log_text()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("HTTP/2 connection refused"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no HTTP/2 warn line: {}", p.log_text()));
}

// -------------------------------------------------------------------------------------------
// Class 5: names the images allowlist trusts cannot be written
// -------------------------------------------------------------------------------------------

/// The ci profile with commit, import and load opened, and the container `images` allowlist
/// restricted to the fixture image: the fixture's name is trusted for running.
fn names_proxy() -> Proxy {
    let uid = current_uid();
    Proxy::start_with(
        &format!(
            r#"
[[client]]
name = "ci"
policy = "ci-names"
uids = [{uid}]

[policy.ci-names]
profile = "ci"
allow = ["container.commit", "image.import", "image.load"]
allow_dangerous = ["container.commit", "image.import", "image.load"]

[policy.ci-names.container]
images = [{image}, "docker.io/library/sw-trusted-*"]
"#,
            image = support::toml_str(&test_image()),
        ),
        &daemon_socket(),
    )
}

fn image_id(reference: &str) -> Option<String> {
    let out = direct().run(&["image", "inspect", "--format", "{{.Id}}", reference]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Spellings of the fixture image's name the daemon reads as the same name.
fn trusted_spellings() -> Vec<String> {
    let image = test_image();
    let (repo, tag) = image.rsplit_once(':').unwrap_or((&image, "latest"));
    let mut out = vec![
        image.clone(),
        format!("docker.io/library/{repo}:{tag}"),
        format!("index.docker.io/library/{repo}:{tag}"),
        format!("library/{repo}:{tag}"),
    ];
    if tag == "latest" {
        out.push(repo.to_owned());
        out.push(format!("docker.io/library/{repo}"));
    }
    out
}

fn refused(out: &std::process::Output, what: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{what} passed: {all}");
    assert!(
        all.contains("allow_writing_run_images"),
        "{what}: the refusal names the setting: {all}"
    );
}

#[test]
fn tag_build_commit_import_and_load_cannot_write_a_trusted_name() {
    let clean = Cleanup::new();
    let p = names_proxy();
    let trusted_id = image_id(&test_image()).expect("fixture image");
    // Another image's content: what a client would like to run under the trusted name.
    let other = clean.image("sec-other");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nLABEL evil=1\n", test_image()),
    )
    .unwrap();
    direct().bin(OLD_CLI).env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "-q",
        "-t",
        &other,
        ctx.path().to_str().unwrap(),
    ]);
    let ctr = clean.container("sec-commit");
    direct().ok(&["create", "--name", &ctr, &test_image(), "true"]);
    let tar = ctx.path().join("rootfs.tar");
    let status = std::process::Command::new("tar")
        .args([
            "-cf",
            tar.to_str().unwrap(),
            "-C",
            ctx.path().to_str().unwrap(),
            "Dockerfile",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let tar_bytes = std::fs::read(&tar).unwrap();

    for bin in ["/usr/local/bin/docker", OLD_CLI] {
        let cli = p.docker().bin(bin);
        for name in trusted_spellings() {
            refused(
                &cli.run(&["tag", &other, &name]),
                &format!("{bin} tag onto {name}"),
            );
            refused(
                &cli.clone().env("DOCKER_BUILDKIT", "0").run(&[
                    "build",
                    "-q",
                    "-t",
                    &name,
                    ctx.path().to_str().unwrap(),
                ]),
                &format!("{bin} build -t {name}"),
            );
            refused(
                &cli.run(&["commit", &ctr, &name]),
                &format!("{bin} commit onto {name}"),
            );
            refused(
                &cli.clone()
                    .stdin(tar_bytes.clone())
                    .run(&["import", "-", &name]),
                &format!("{bin} import onto {name}"),
            );
        }
        // A pattern entry is trusted too.
        refused(
            &cli.run(&["tag", &other, "sw-trusted-x:1"]),
            &format!("{bin} tag onto a pattern"),
        );
        // Load: the names are inside the archive, which is not read.
        refused(
            &cli.clone().stdin(tar_bytes.clone()).run(&["load"]),
            &format!("{bin} load"),
        );
        assert_eq!(
            image_id(&test_image()).as_deref(),
            Some(trusted_id.as_str()),
            "{bin}: the trusted name still points at the fixture"
        );

        // Permitted names that the allowlist does not trust: allowed.
        let mine = clean.image("sec-mine");
        cli.ok(&["tag", &other, &mine]);
        assert_eq!(image_id(&mine), image_id(&other));
        let built = clean.image("sec-built");
        cli.clone().env("DOCKER_BUILDKIT", "0").ok(&[
            "build",
            "-q",
            "-t",
            &built,
            ctx.path().to_str().unwrap(),
        ]);
        assert!(image_id(&built).is_some());
        let committed = clean.image("sec-commit");
        cli.ok(&["commit", &ctr, &committed]);
        assert!(image_id(&committed).is_some());
        let imported = clean.image("sec-import");
        cli.clone()
            .stdin(tar_bytes.clone())
            .ok(&["import", "-", &imported]);
        assert!(image_id(&imported).is_some());

        // The allowed image still runs, as itself.
        let out = cli.ok_str(&[
            "run",
            "--rm",
            "--network",
            "none",
            &test_image(),
            "echo",
            "still-runs",
        ]);
        assert_eq!(out, "still-runs");
    }
    // The API directly, at old and new versions, with the name split and spelled differently.
    let image = test_image();
    let repo = image.rsplit_once(':').map_or(image.as_str(), |(r, _)| r);
    let tag = image.rsplit_once(':').map_or("latest", |(_, t)| t);
    for version in ["/v1.24", "/v1.41", ""] {
        for query in [
            format!("repo={repo}&tag={tag}"),
            format!("repo=docker.io%2Flibrary%2F{repo}&tag={tag}"),
            format!("repo={repo}%3Aother&tag={tag}"),
            format!("repo={image}"),
            format!("tag={tag}&repo=index.docker.io/library/{repo}"),
            format!("repo={repo}&repo=unrelated&tag={tag}"),
        ] {
            let target = format!("{version}/images/{other}/tag?{query}");
            let req = format!(
                "POST {target} HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let resp = http_request(&p.socket, req.as_bytes(), T).unwrap();
            let resp = String::from_utf8_lossy(&resp).into_owned();
            assert!(resp.starts_with("HTTP/1.1 403"), "{target}: {resp}");
            assert!(
                resp.contains("allow_writing_run_images"),
                "{target}: {resp}"
            );
        }
    }
    assert_eq!(
        image_id(&test_image()).as_deref(),
        Some(trusted_id.as_str())
    );
}

/// The Debian CLI's BuildKit build under the ci profile: the session's h2c upgrade is refused,
/// the CLI shows only `received 403`, and sockwarden's log says why at warn level.
#[test]
fn buildkit_session_refusal_the_cli_cannot_show_is_logged() {
    let clean = Cleanup::new();
    let p = names_proxy();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nLABEL x=1\n", test_image()),
    )
    .unwrap();
    let tag = clean.image("sec-bk");
    let out = p
        .docker()
        .bin(OLD_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(120))
        .run(&["build", "-t", &tag, ctx.path().to_str().unwrap()]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(
        !shown.contains("no rule allows build.session"),
        "the CLI could show the reason after all: {shown}"
    );
    let line = support::wait_for(T, || {
        p.log_text()
            .lines()
            .find(|l| l.contains("WARN") && l.contains("h2c upgrade refused"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no warn line; CLI said {shown}\n{}", p.log_text()));
    assert!(
        line.contains("build.session") && line.contains("policy ci-names"),
        "{line}"
    );
}
