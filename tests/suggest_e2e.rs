//! `sockwarden audit suggest` checked against logs the real docker CLIs produce through a real
//! sockwarden: record a CI job's workload, suggest a policy from the log, then run the same
//! workload again under the suggestion, enforced: nothing is refused, and nothing the workload
//! never needed is open.
//!
//! The workload: `docker version`/`ps`, `docker volume create`, `docker run --ulimit`, `docker
//! run` with a read-only bind of a temporary directory, the volume, a memory limit and
//! environment, a detached container started by Debian's 20.10 CLI (whose create body says
//! `"Ulimits": null`), `docker exec`, `docker logs`, a classic build by each CLI
//! (`DOCKER_BUILDKIT=0`, `FROM` the fixture image; the 20.10 CLI sends `ulimits=null`), a
//! BuildKit build by the 20.10 CLI (over `/session`, with `remote=client-session`), `docker
//! image inspect`, `docker rm`, `docker volume rm`, `docker rmi`.
//!
//! Two recordings: one under a dry-run policy that lets everything through while inspection
//! records what each request asked for, and one enforced under a policy that is too tight
//! (no host paths, no BuildKit), whose refusals (with their violations) drive the suggestion.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use support::{
    current_uid, daemon_socket, describe, http_request, stdout_str, test_image, toml_str,
    unique_name, Cleanup, Docker, Proxy, DEBIAN_DOCKER_CLI, SOCKWARDEN,
};

const CLIENT: &str = "ci";
const SUGGESTED: &str = "suggested";
const MEMORY: &str = "64m";
const MEMORY_BYTES: i64 = 64 << 20;
/// The warm-up run's `--ulimit`.
const ULIMIT: &str = "nofile=1024:1024";
/// What the recording policies allow of it.
const ULIMITS_ALLOWED: &str = "ulimits = { nofile = 65536 }";

/// A proxy for the client `ci` (the test's uid) under `policy` (the whole `[policy.NAME]`
/// text), writing its audit log to `audit.log` in its directory.
fn proxy(policy_name: &str, policy: &str, log_bodies: bool) -> Proxy {
    let policy = policy.to_owned();
    let policy_name = policy_name.to_owned();
    Proxy::start_config(move |dir| {
        format!(
            "[upstream]\nsocket = {up}\n\n[audit]\nsink = \"file\"\npath = {audit}\n\
             log_bodies = {log_bodies}\n\n[[listen]]\nunix = {sock}\n\n\
             [[client]]\nname = \"{CLIENT}\"\npolicy = {name}\nuids = [{uid}]\n\n{policy}\n",
            up = toml_str(&daemon_socket().display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            name = toml_str(&policy_name),
            uid = current_uid(),
        )
    })
}

/// Stops the proxy (its audit writer flushes on SIGTERM) and returns its audit log.
fn stop(mut proxy: Proxy) -> (PathBuf, Vec<Value>, tempfile::TempDir) {
    let status = proxy.terminate(Duration::from_secs(15));
    assert!(status.success(), "sockwarden exited with {status}");
    let path = proxy.dir.path().join("audit.log");
    let text = std::fs::read_to_string(&path).unwrap();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Keep the directory (and so the log) alive for the caller.
    let dir = std::mem::replace(&mut proxy.dir, tempfile::tempdir().unwrap());
    (path, records, dir)
}

/// The request records (and session opens) of the client.
fn requests(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| {
            r["client"] == CLIENT && matches!(r["event"].as_str(), Some("request" | "session_open"))
        })
        .collect()
}

fn refused(records: &[Value]) -> Vec<&Value> {
    requests(records)
        .into_iter()
        .filter(|r| r["decision"] != "allow")
        .collect()
}

/// What the workload works on, the same for every run.
struct Job {
    /// Bound read-only into the job container.
    data: tempfile::TempDir,
    /// Another directory, never bound by the workload.
    other: tempfile::TempDir,
    classic_ctx: tempfile::TempDir,
    buildkit_ctx: tempfile::TempDir,
    /// The repository the builds tag (the tags differ per build).
    repo: String,
}

impl Job {
    fn new() -> Job {
        let in_tmp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in("/tmp")
                .unwrap()
        };
        let data = in_tmp("sw-suggest-data.");
        std::fs::write(data.path().join("input.txt"), "input-from-the-checkout\n").unwrap();
        let other = in_tmp("sw-suggest-other.");
        let context = |prefix: &str, file: &str| {
            let ctx = in_tmp(prefix);
            std::fs::write(ctx.path().join("file"), file).unwrap();
            std::fs::write(
                ctx.path().join("Dockerfile"),
                format!("FROM {}\nCOPY file /file\n", test_image()),
            )
            .unwrap();
            ctx
        };
        Job {
            data,
            other,
            classic_ctx: context("sw-suggest-classic.", "classic\n"),
            buildkit_ctx: context("sw-suggest-bk.", "buildkit\n"),
            repo: unique_name("suggest-app"),
        }
    }

    fn data(&self) -> String {
        self.data.path().display().to_string()
    }
}

/// One step of the workload: what was run and how it ended.
struct Step {
    what: String,
    out: Output,
}

/// Runs the workload through `proxy`. With `strict`, every step must succeed (and say what it
/// should); otherwise failures (refusals) are only collected.
fn workload(proxy: &Proxy, job: &Job, cleanup: &Cleanup, strict: bool) -> Vec<Step> {
    let image = test_image();
    let cli = proxy.docker().timeout(Duration::from_secs(120));
    let cli2010 = proxy
        .docker()
        .bin(DEBIAN_DOCKER_CLI)
        .timeout(Duration::from_secs(180));
    let classic2010 = cli2010.clone().env("DOCKER_BUILDKIT", "0");
    let classic = cli.clone().env("DOCKER_BUILDKIT", "0");
    let buildkit = cli2010
        .clone()
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain");
    let volume = unique_name("suggest-cache");
    let job_name = cleanup.container("suggest-job");
    let svc = cleanup.container("suggest-svc");
    let tags = [
        format!("{}:classic-2010", job.repo),
        format!("{}:classic", job.repo),
        format!("{}:bk", job.repo),
    ];
    for tag in &tags {
        cleanup.add_image(tag);
    }
    let bind = format!("{}:/data:ro", job.data());
    let cache = format!("{volume}:/cache");
    let classic_ctx = job.classic_ctx.path().to_str().unwrap();
    let buildkit_ctx = job.buildkit_ctx.path().to_str().unwrap();

    let plan: Vec<(&Docker, Vec<&str>, Option<&str>)> = vec![
        (&cli, vec!["version"], Some("Server")),
        (&cli, vec!["ps", "-a"], None),
        (&cli, vec!["volume", "create", &volume], Some(&volume)),
        (
            &cli,
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "--ulimit",
                ULIMIT,
                &image,
                "sh",
                "-c",
                "echo warm-up $(ulimit -n)",
            ],
            Some("warm-up 1024"),
        ),
        (
            &cli,
            vec![
                "run",
                "--name",
                &job_name,
                "--network",
                "none",
                "--memory",
                MEMORY,
                "-e",
                "CI_JOB_ID=4711",
                "-v",
                &bind,
                "-v",
                &cache,
                &image,
                "cat",
                "/data/input.txt",
            ],
            Some("input-from-the-checkout"),
        ),
        (
            &cli2010,
            vec![
                "run",
                "-d",
                "--name",
                &svc,
                "--network",
                "none",
                "--memory",
                MEMORY,
                "-e",
                "SERVICE=db",
                &image,
                "sh",
                "-c",
                "echo service-up; exec sleep 120",
            ],
            None,
        ),
        (
            &cli,
            vec![
                "exec",
                "-e",
                "STEP=test",
                &svc,
                "sh",
                "-c",
                "echo exec-$STEP",
            ],
            Some("exec-test"),
        ),
        (
            &cli,
            vec!["logs", &job_name],
            Some("input-from-the-checkout"),
        ),
        (&cli, vec!["ps"], Some(&svc)),
        (
            &classic2010,
            vec!["build", "-t", &tags[0], classic_ctx],
            Some("Successfully tagged"),
        ),
        (
            &classic,
            vec!["build", "-t", &tags[1], classic_ctx],
            Some("Successfully tagged"),
        ),
        (
            &buildkit,
            vec!["build", "-t", &tags[2], buildkit_ctx],
            Some("naming to"),
        ),
        (
            &cli,
            vec!["image", "inspect", "--format", "{{.Id}}", &tags[2]],
            Some("sha256:"),
        ),
        (&cli, vec!["logs", &svc], Some("service-up")),
        (&cli, vec!["rm", "-f", &svc], Some(&svc)),
        (&cli, vec!["rm", &job_name], Some(&job_name)),
        (&cli, vec!["volume", "rm", &volume], Some(&volume)),
        (
            &cli,
            vec!["rmi", &tags[0], &tags[1], &tags[2]],
            Some("Untagged"),
        ),
    ];
    let mut steps = Vec::new();
    for (docker, args, expect) in plan {
        let out = docker.run(&args);
        let what = format!("docker {}", args.join(" "));
        if strict {
            assert!(out.status.success(), "`{what}` failed:\n{}", describe(&out));
            if let Some(expect) = expect {
                let text = format!(
                    "{}{}",
                    stdout_str(&out),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    text.contains(expect),
                    "`{what}`: no {expect:?} in\n{}",
                    describe(&out)
                );
            }
        }
        steps.push(Step { what, out });
    }
    steps
}

/// `sockwarden audit suggest` on `log`: the suggestion's text.
fn suggest(log: &Path) -> String {
    let out = Command::new(SOCKWARDEN)
        .args([
            "audit",
            "suggest",
            "--client",
            CLIENT,
            "--policy-name",
            SUGGESTED,
        ])
        .arg(log)
        .output()
        .unwrap();
    assert!(out.status.success(), "audit suggest:\n{}", describe(&out));
    stdout_str(&out)
}

fn policy_table(text: &str) -> toml::Table {
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("suggestion is not TOML ({e}):\n{text}"));
    doc["policy"][SUGGESTED].as_table().unwrap().clone()
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(toml::Value::as_array)
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// What every suggestion from this workload must and must not hold, whatever the recording.
fn check_suggestion(text: &str, records: &[Value], job: &Job) -> toml::Table {
    assert!(!text.contains("STILL REFUSED"), "{text}");
    assert!(!text.contains("inspection off?"), "{text}");
    let policy = policy_table(text);
    // Rules: exactly the operations the log holds for the client, none by pattern.
    let allow: BTreeSet<String> = strings(policy.get("allow")).into_iter().collect();
    let seen: BTreeSet<String> = requests(records)
        .iter()
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(allow, seen, "{text}");
    assert!(allow.iter().all(|op| !op.contains('*')), "{text}");
    for used in [
        "container.create",
        "container.start",
        "container.attach",
        "container.logs",
        "container.delete",
        "exec.create",
        "exec.start",
        "image.build",
        "build.session",
        "volume.create",
        "volume.delete",
        "image.delete",
    ] {
        assert!(allow.contains(used), "{used} not allowed:\n{text}");
    }
    for unused in [
        "network.create",
        "container.pause",
        "image.push",
        "image.pull",
        "container.archive.put",
    ] {
        assert!(!allow.contains(unused), "{unused} allowed:\n{text}");
    }
    let dangerous: BTreeSet<String> = strings(policy.get("allow_dangerous")).into_iter().collect();
    assert!(dangerous.is_subset(&allow), "{text}");
    assert!(
        policy.get("rule").is_none(),
        "no unknown route was used:\n{text}"
    );

    let container = policy["container"].as_table().unwrap();
    assert_eq!(
        strings(container.get("bind_sources")),
        vec![job.data()],
        "{text}"
    );
    for never in [
        "allow_privileged",
        "require_read_only_binds",
        "allow_host_namespaces",
        "allow_devices",
        "cap_add",
        "allow_port_bindings",
    ] {
        assert!(!container.contains_key(never), "container {never}:\n{text}");
    }
    // The ulimit the warm-up run set, no higher, and no other.
    let ulimits = container.get("ulimits").and_then(toml::Value::as_table);
    assert_eq!(
        ulimits.map(|u| u
            .iter()
            .map(|(k, v)| (k.clone(), v.as_integer()))
            .collect::<Vec<_>>()),
        Some(vec![("nofile".to_owned(), Some(1024))]),
        "{text}"
    );
    let build = policy["build"].as_table().unwrap();
    assert_eq!(
        build.get("allow_buildkit").and_then(toml::Value::as_bool),
        Some(true),
        "{text}"
    );
    for never in [
        "allow_remote",
        "allow_ulimits",
        "allow_unknown_params",
        "allow_cache_from",
    ] {
        assert!(!build.contains_key(never), "build {never}:\n{text}");
    }
    for section in ["exec", "volume", "network", "plugin"] {
        assert!(!policy.contains_key(section), "{section}:\n{text}");
    }
    policy
}

/// The suggested policy's proxy: the suggestion as the client's policy, enforced.
fn under_suggestion(text: &str) -> Proxy {
    proxy(SUGGESTED, text, false)
}

/// A request the workload never made is refused under the suggestion, by `setting`.
fn assert_refused(docker: &Docker, args: &[&str], setting: &str) {
    let out = docker.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("sockwarden") && err.contains(setting),
        "`docker {}` should be refused by {setting}:\n{}",
        args.join(" "),
        describe(&out)
    );
}

/// Replays the workload under the suggestion (nothing refused), then asks for more: what the
/// workload never did, and `probes` (`docker` arguments, the setting that refuses them).
fn replay(text: &str, job: &Job, probes: &[(Vec<&str>, &str)]) {
    let cleanup = Cleanup::new();
    let proxy = under_suggestion(text);
    workload(&proxy, job, &cleanup, true);
    let (_, records, _dir) = stop(proxy);
    let refusals = refused(&records);
    assert!(refusals.is_empty(), "{refusals:#?}\n{text}");
    assert!(requests(&records).len() > 30, "{records:#?}");

    // What the workload never asked for stays closed.
    let proxy = under_suggestion(text);
    let image = test_image();
    let docker = proxy.docker();
    let other = format!("{}:/data:ro", job.other.path().display());
    let rw = format!("{}:/data", job.data());
    for (args, setting) in [
        (
            vec![
                "run",
                "--rm",
                "--privileged",
                "--network",
                "none",
                "--memory",
                MEMORY,
                &image,
                "true",
            ],
            "allow_privileged",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "-v",
                &other,
                &image,
                "true",
            ],
            "bind_sources",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "-v",
                &rw,
                &image,
                "true",
            ],
            "require_read_only_binds",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "--ulimit",
                "nofile=2048:2048",
                &image,
                "true",
            ],
            "ulimits",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "--ulimit",
                "nproc=64:64",
                &image,
                "true",
            ],
            "ulimits",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--memory",
                MEMORY,
                "--cap-add",
                "NET_ADMIN",
                &image,
                "true",
            ],
            "cap_add",
        ),
        (
            vec!["network", "create", &unique_name("suggest-net")],
            "network.create",
        ),
        (vec!["pause", "sw-suggest-none"], "container.pause"),
    ] {
        assert_refused(&docker, &args, setting);
    }
    for (args, setting) in probes {
        assert_refused(&docker, args, setting);
    }
    let ulimit_build = docker
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "0")
        .timeout(Duration::from_secs(120));
    let tag = format!("{}:ulimit", job.repo);
    cleanup.add_image(&tag);
    assert_refused(
        &ulimit_build,
        &[
            "build",
            "--ulimit",
            "nofile=1024:1024",
            "-t",
            &tag,
            job.classic_ctx.path().to_str().unwrap(),
        ],
        "allow_ulimits",
    );
    // A context the daemon would fetch itself; and a build refused by inspection reads the
    // context the client writes in full before reading the answer (768 KiB, more than a unix
    // socket buffers), so that the client reads the refusal, not a broken pipe.
    for (query, setting) in [
        ("remote=http%3A%2F%2F127.0.0.1%3A1%2Fx.tar", "allow_remote"),
        (
            "ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A1%7D%5D",
            "allow_ulimits",
        ),
    ] {
        let context = vec![0u8; 768 * 1024];
        let mut request = format!(
            "POST /v1.41/build?{query} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            context.len()
        )
        .into_bytes();
        request.extend_from_slice(&context);
        let resp = http_request(&proxy.socket, &request, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{query}: the refusal was not read: {e}"));
        let resp = String::from_utf8_lossy(&resp);
        assert!(
            resp.starts_with("HTTP/1.1 403") && resp.contains(setting),
            "{resp}"
        );
    }
}

#[test]
fn suggestion_from_a_dry_run_recording_replays_and_opens_nothing_more() {
    let job = Job::new();
    let cleanup = Cleanup::new();
    // Everything goes through (audit mode); inspection records what each request asks for,
    // and read-only host paths under /tmp pass it, so the creates' settings are recorded.
    // (Read-only: were /tmp a writable source, binds below it would be refused.)
    let recorder = proxy(
        "record",
        &format!(
            r#"[policy.record]
allow = ["*", "unknown"]
allow_dangerous = ["*", "unknown"]
mode = "audit"

[policy.record.container]
bind_sources = ["/tmp"]
{ULIMITS_ALLOWED}
"#
        ),
        true,
    );
    workload(&recorder, &job, &cleanup, true);
    let (log, records, _dir) = stop(recorder);
    drop(cleanup);

    // The log holds what the issue is about: the 20.10 CLI's `ulimits=null` on a classic build
    // and `"Ulimits": null` in a create, and BuildKit's `remote=client-session`.
    let reqs = requests(&records);
    let builds: Vec<&&Value> = reqs
        .iter()
        .filter(|r| r["operation"] == "image.build")
        .collect();
    assert!(
        builds
            .iter()
            .any(|r| r["query"]["ulimits"] == serde_json::json!(["null"])),
        "{builds:#?}"
    );
    assert!(
        builds.iter().any(
            |r| r["query"]["remote"] == serde_json::json!(["client-session"])
                && r["query"]["version"] == serde_json::json!(["2"])
        ),
        "{builds:#?}"
    );
    assert!(
        reqs.iter().any(|r| r["operation"] == "container.create"
            && r["body"]["HostConfig"].get("Ulimits") == Some(&Value::Null)),
        "no create with \"Ulimits\": null"
    );

    let text = suggest(&log);
    let policy = check_suggestion(&text, &records, &job);
    let container = policy["container"].as_table().unwrap();
    // Every create was inspected: the image and the memory limit are known.
    assert_eq!(
        container["max_memory_bytes"].as_integer(),
        Some(MEMORY_BYTES),
        "{text}"
    );
    let repo = test_image().split(':').next().unwrap().to_owned();
    let images = strings(container.get("images"));
    assert!(
        images.len() == 1 && images[0].ends_with(&format!("/{repo}")),
        "{text}"
    );
    let image = test_image();
    replay(
        &text,
        &job,
        &[
            (
                vec![
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--memory",
                    "128m",
                    &image,
                    "true",
                ],
                "max_memory_bytes",
            ),
            (
                vec![
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--memory",
                    MEMORY,
                    "alpine:3",
                    "true",
                ],
                "images",
            ),
        ],
    );
}

#[test]
fn suggestion_from_enforced_refusals_replays() {
    let job = Job::new();
    let cleanup = Cleanup::new();
    // Too tight: no host path may be bound and BuildKit is closed; refused requests fail.
    let recorder = proxy(
        "tight",
        &format!(
            r#"[policy.tight]
allow = ["*", "unknown"]
allow_dangerous = ["*", "unknown"]

[policy.tight.container]
{ULIMITS_ALLOWED}
"#
        ),
        false,
    );
    let steps = workload(&recorder, &job, &cleanup, false);
    let (log, records, _dir) = stop(recorder);
    drop(cleanup);
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| !s.out.status.success())
        .map(|s| s.what.as_str())
        .collect();
    assert!(failed.iter().any(|w| w.contains("-v /tmp")), "{failed:#?}");
    assert!(
        failed
            .iter()
            .any(|w| w.contains("build") && w.contains("sw-suggest-bk.")),
        "{failed:#?}"
    );

    // Enforced refusals carry their violations, as dry-run ones do.
    let refusals = refused(&records);
    let violation = |op: &str, setting: &str| {
        refusals.iter().any(|r| {
            r["operation"] == op
                && r["decision"] == "deny"
                && r["status"] == 403
                && r["violations"].as_array().is_some_and(|v| {
                    v.len() == 1
                        && r["reason"].as_str()
                            == Some(&format!(
                                "{}: {}",
                                v[0]["field"].as_str().unwrap_or(""),
                                v[0]["reason"].as_str().unwrap_or("")
                            ))
                        && v[0]["reason"]
                            .as_str()
                            .is_some_and(|t| t.ends_with(&format!("({setting})")))
                        && v[0]["setting"] == setting
                        // A list setting's refusal names the entry it would need.
                        && (setting != "bind_sources" || v[0]["value"].is_string())
                })
        })
    };
    assert!(
        violation("container.create", "bind_sources"),
        "{refusals:#?}"
    );
    assert!(violation("image.build", "allow_buildkit"), "{refusals:#?}");

    let text = suggest(&log);
    assert!(text.contains("denied"), "{text}");
    check_suggestion(&text, &records, &job);
    replay(&text, &job, &[]);
}
