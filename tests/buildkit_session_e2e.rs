//! Issue 12, class 3, for BuildKit: the Dockerfile of a BuildKit build travels inside the
//! build's `/session` (HTTP/2), and sockwarden reads it there and checks it as it checks a
//! classic build's. With Debian's docker CLI 20.10 (`DOCKER_BUILDKIT=1`), a Dockerfile that
//! would make the daemon fetch from a loopback HTTP listener is refused in each spelling (and
//! what BuildKit alone runs: `# syntax=`, `BUILDKIT_SYNTAX`, `RUN --mount=from=`): the build
//! fails with sockwarden's message, the listener saw no connection, nothing was built, and the
//! refusal is in the audit log. Legitimate BuildKit builds still work: COPY from the context,
//! multi-stage, `.dockerignore`, a 50 MiB context file, `-f` in a subdirectory.
//!
//! Run as root: `bash scripts/test.sh buildkit_session_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::builds::serial;
use support::{
    assert_nothing_added, current_uid, daemon_socket, daemon_state, test_image, toml_str, Cleanup,
    Docker, Proxy, DEBIAN_DOCKER_CLI,
};

/// A loopback HTTP server that counts connections and answers each with a small file.
struct Recorder {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
                );
            }
        });
        Recorder { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// sockwarden with an audit file and one unix listener for the test's uid, whose policy `bk`
/// opens BuildKit (and remote fetches, so that only the loopback rule stands in the way).
fn start() -> Proxy {
    start_with("")
}

/// [`start`], with `policy_extra` lines in `[policy.bk]`.
fn start_with(policy_extra: &str) -> Proxy {
    let extra = policy_extra.to_owned();
    Proxy::start_config(move |dir| {
        format!(
            r#"
[upstream]
socket = {up}
build_cgroup = "off"

[audit]
sink = "file"
path = {audit}

[[client]]
name = "main"
policy = "bk"
uids = [{uid}]

[[listen]]
unix = {sock}

[policy.bk]
allow = ["system.ping", "system.version", "system.info", "image.build", "build.session",
         "image.inspect", "image.list", "image.delete", "container.create", "container.start",
         "container.wait", "container.delete", "container.attach", "container.logs"]
allow_dangerous = ["image.build", "build.session", "container.attach"]
{extra}

[policy.bk.build]
allow_buildkit = true
allow_remote = true
"#,
            up = toml_str(&daemon_socket().display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            uid = current_uid(),
        )
    })
}

fn records(proxy: &Proxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn bk(proxy: &Proxy) -> Docker {
    proxy
        .docker()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .timeout(Duration::from_secs(120))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A context directory with `files` (paths may have directories).
fn context(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, data) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    dir
}

fn build(proxy: &Proxy, ctx: &Path, tag: &str, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "plain", "--no-cache", "-t", tag];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    bk(proxy).run(&args)
}

/// Each way a Dockerfile can make the daemon fetch from loopback, and what BuildKit alone
/// runs, is refused over the session: sockwarden's message reaches the CLI, the loopback
/// listener is never contacted, nothing is built, and the refusal is audited.
#[test]
fn buildkit_dockerfiles_that_fetch_are_refused() {
    // The daemon's images are compared before and after: one build test at a time.
    let _serial = serial();
    let rec = Recorder::start();
    let proxy = start();
    let cleanup = Cleanup::new();
    let img = test_image();
    let url = format!("http://127.0.0.1:{}/f", rec.port);
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        ("ADD url", format!("FROM {img}\nADD {url} /f\n"), vec![]),
        ("lower case", format!("from {img}\nadd {url} /f\n"), vec![]),
        ("JSON form", format!("FROM {img}\nADD [\"{url}\", \"/f\"]\n"), vec![]),
        (
            "ARG default",
            format!("FROM {img}\nARG U={url}\nADD ${{U}} /f\n"),
            vec![],
        ),
        (
            "ARG before FROM",
            format!("ARG U={url}\nFROM {img}\nARG U\nADD $U /f\n"),
            vec![],
        ),
        (
            "--build-arg",
            format!("FROM {img}\nARG U\nADD $U /f\n"),
            vec!["--build-arg".into(), format!("U={url}")],
        ),
        (
            "git URL",
            format!("FROM {img}\nADD http://127.0.0.1:{}/r.git#main /r\n", rec.port),
            vec![],
        ),
        (
            "second stage",
            format!("FROM {img} AS one\nRUN true\nFROM {img}\nCOPY --from=one /bin/sh /sh\nADD {url} /f\n"),
            vec![],
        ),
        (
            "continuation line",
            format!("FROM {img}\nADD \\\n  {url} \\\n  /f\n"),
            vec![],
        ),
        (
            "# syntax=",
            format!("# syntax=127.0.0.1:{}/frontend\nFROM {img}\n", rec.port),
            vec![],
        ),
        (
            "BUILDKIT_SYNTAX",
            format!("FROM {img}\n"),
            vec![
                "--build-arg".into(),
                format!("BUILDKIT_SYNTAX=127.0.0.1:{}/frontend", rec.port),
            ],
        ),
        (
            "RUN --mount=from=",
            format!(
                "FROM {img}\nRUN --mount=type=bind,from=127.0.0.1:{}/x,target=/x true\n",
                rec.port
            ),
            vec![],
        ),
        (
            "FROM loopback registry",
            format!("FROM 127.0.0.1:{}/x\n", rec.port),
            vec![],
        ),
    ];
    for (case, dockerfile, extra) in &cases {
        let before = daemon_state();
        let ctx = context(&[("Dockerfile", dockerfile.as_bytes())]);
        let tag = cleanup.image("bks-refused");
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = build(&proxy, ctx.path(), &tag, &extra);
        let t = text(&out);
        assert!(!out.status.success(), "{case}: built:\n{t}");
        assert!(
            t.contains("sockwarden"),
            "{case}: no sockwarden message:\n{t}"
        );
        assert_eq!(rec.hits(), 0, "{case}: the daemon fetched:\n{t}");
        assert_nothing_added(&before, case);
    }
    // The Dockerfile from stdin (`-f -`), and one in a subdirectory (`-f sub/x`).
    let evil = format!("FROM {img}\nADD {url} /f\n");
    let ctx = context(&[("sub/evil.Dockerfile", evil.as_bytes()), ("f", b"x")]);
    let ctx_s = ctx.path().to_str().unwrap().to_owned();
    let sub = ctx.path().join("sub/evil.Dockerfile");
    for (case, docker, df) in [
        ("-f -", bk(&proxy).stdin(evil.clone()), "-".to_owned()),
        ("-f sub/", bk(&proxy), sub.display().to_string()),
    ] {
        let before = daemon_state();
        let tag = cleanup.image("bks-refused");
        let out = docker.run(&[
            "build",
            "--progress",
            "plain",
            "-t",
            &tag,
            "-f",
            &df,
            &ctx_s,
        ]);
        let t = text(&out);
        assert!(!out.status.success(), "{case}: built:\n{t}");
        assert!(
            t.contains("sockwarden"),
            "{case}: no sockwarden message:\n{t}"
        );
        assert_eq!(rec.hits(), 0, "{case}: the daemon fetched:\n{t}");
        assert_nothing_added(&before, case);
    }
    std::thread::sleep(Duration::from_secs(1));
    let denied = records(&proxy)
        .into_iter()
        .filter(|r| r["operation"] == "build.session" && r["decision"] == "deny")
        .count();
    assert!(denied >= cases.len(), "{denied} session refusals audited");
    assert_eq!(rec.hits(), 0);
}

/// The refusal names the Dockerfile line and reason, and the audit record carries the
/// violation.
#[test]
fn a_refusal_says_why_and_is_audited() {
    // The daemon's images are compared before and after: one build test at a time.
    let _serial = serial();
    let rec = Recorder::start();
    let proxy = start();
    let cleanup = Cleanup::new();
    let url = format!("http://127.0.0.1:{}/f", rec.port);
    let ctx = context(&[(
        "Dockerfile",
        format!("FROM {}\nADD {url} /f\n", test_image()).as_bytes(),
    )]);
    let out = build(&proxy, ctx.path(), &cleanup.image("bks-why"), &[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("Dockerfile:2"), "{t}");
    assert!(t.contains("build.session"), "{t}");
    assert_eq!(rec.hits(), 0);
    let found = support::wait_for(Duration::from_secs(5), || {
        records(&proxy).into_iter().find(|r| {
            r["operation"] == "build.session"
                && r["decision"] == "deny"
                && r.to_string().contains("Dockerfile:2")
        })
    });
    assert!(found.is_some(), "no audited refusal: {:?}", records(&proxy));
}

/// Legitimate BuildKit builds still work through the session relay: COPY from the context,
/// multi-stage with COPY --from a stage, `.dockerignore`, a 50 MiB context file (streamed),
/// `-f` naming a Dockerfile in a subdirectory. (The test daemon has no bridge network, so no
/// `RUN`: the result is exported over the session with `-o type=local` and read back.)
#[test]
fn legitimate_buildkit_builds_still_work() {
    // The daemon's images are compared before and after: one build test at a time.
    let _serial = serial();
    let proxy = start();
    let cleanup = Cleanup::new();
    let img = test_image();
    let big: Vec<u8> = (0..50u32 << 20).map(|i| (i % 251) as u8).collect();
    let dockerfile = format!(
        "FROM {img} AS first\nCOPY hello.txt /staged/hello.txt\n\
         FROM scratch\nCOPY --from=first /staged /staged\nCOPY . /ctx\n"
    );
    let ctx = context(&[
        ("Dockerfile", dockerfile.as_bytes()),
        ("hello.txt", b"hi"),
        ("secret.txt", b"ignored"),
        (".dockerignore", b"secret.txt\n"),
        ("big.bin", &big),
    ]);
    let out_dir = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out_dir.path().display());
    let tag = cleanup.image("bks-ok");
    let out = build(&proxy, ctx.path(), &tag, &["-o", &dest]);
    assert!(out.status.success(), "build failed:\n{}", text(&out));
    let o = out_dir.path();
    assert_eq!(std::fs::read(o.join("staged/hello.txt")).unwrap(), b"hi");
    assert_eq!(std::fs::read(o.join("ctx/hello.txt")).unwrap(), b"hi");
    assert!(
        !o.join("ctx/secret.txt").exists(),
        ".dockerignore not applied"
    );
    let got = std::fs::read(o.join("ctx/big.bin")).unwrap();
    assert!(
        got == big,
        "the 50 MiB file changed on the way ({} bytes)",
        got.len()
    );

    // -f in a subdirectory, built into an image.
    let ctx = context(&[
        (
            "sub/dir/Build.dockerfile",
            format!("FROM {img}\nCOPY hello.txt /h\nLABEL sw-bks=sub\n").as_bytes(),
        ),
        ("hello.txt", b"hi"),
    ]);
    let tag = cleanup.image("bks-sub");
    let df = ctx.path().join("sub/dir/Build.dockerfile");
    let out = build(&proxy, ctx.path(), &tag, &["-f", df.to_str().unwrap()]);
    assert!(out.status.success(), "-f build failed:\n{}", text(&out));
    let out = proxy.docker().run(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"sw-bks\"}}",
        &tag,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sub",
        "{}",
        text(&out)
    );
}

/// In audit mode (`mode = "audit"`) the refusal is only recorded, as for a classic build's
/// Dockerfile: the build goes on, and the session's record says would-deny with the violation.
#[test]
fn audit_mode_records_the_dockerfile_and_lets_it_through() {
    // The daemon's images are compared before and after: one build test at a time.
    let _serial = serial();
    let rec = Recorder::start();
    let proxy = start_with("mode = \"audit\"");
    let cleanup = Cleanup::new();
    let url = format!("http://127.0.0.1:{}/f", rec.port);
    let ctx = context(&[(
        "Dockerfile",
        format!("FROM {}\nADD {url} /f\n", test_image()).as_bytes(),
    )]);
    let out = build(&proxy, ctx.path(), &cleanup.image("bks-audit"), &[]);
    assert!(
        out.status.success(),
        "audit mode stopped the build:\n{}",
        text(&out)
    );
    let found = support::wait_for(Duration::from_secs(5), || {
        records(&proxy).into_iter().find(|r| {
            r["operation"] == "build.session"
                && r["decision"] == "would-deny"
                && r.to_string().contains("Dockerfile:2")
        })
    });
    assert!(
        found.is_some(),
        "no would-deny recorded: {:?}",
        records(&proxy)
    );
}

/// The daemon keeps what a session sent and reuses a file whose metadata matches instead of
/// asking for it; sockwarden gives every session a fresh shared key, so a Dockerfile that
/// passed with one build's arguments is sent, read and checked again with the next build's:
/// the same unchanged context, first with an allowed base image, then with one on a loopback
/// registry, is refused the second time and nothing is fetched.
#[test]
fn a_dockerfile_built_before_is_checked_again_with_new_arguments() {
    // The daemon's images are compared before and after: one build test at a time.
    let _serial = serial();
    let rec = Recorder::start();
    let proxy = start();
    let _cleanup = Cleanup::new();
    let img = test_image();
    let out = tempfile::tempdir().unwrap();
    let ctx = context(&[
        (
            "Dockerfile",
            b"ARG BASE\nFROM $BASE\nCOPY f /f\n".as_slice(),
        ),
        ("f", b"local"),
    ]);
    let dest = |n: &str| format!("type=local,dest={}", out.path().join(n).display());
    let first = build(
        &proxy,
        ctx.path(),
        "sw-bks-again:1",
        &["--build-arg", &format!("BASE={img}"), "-o", &dest("one")],
    );
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(std::fs::read(out.path().join("one/f")).unwrap(), b"local");
    for registry in ["127.0.0.1", "localhost", "[::1]"] {
        let base = format!("{registry}:{}/x", rec.port);
        let again = build(
            &proxy,
            ctx.path(),
            "sw-bks-again:2",
            &["--build-arg", &format!("BASE={base}"), "-o", &dest("two")],
        );
        let t = text(&again);
        assert!(!again.status.success(), "{base}: {t}");
        assert!(t.contains("sockwarden"), "{base}: {t}");
        assert_eq!(rec.hits(), 0, "{base}: the daemon fetched:\n{t}");
    }
    // And the first build's arguments still pass with the same context.
    let third = build(
        &proxy,
        ctx.path(),
        "sw-bks-again:3",
        &["--build-arg", &format!("BASE={img}"), "-o", &dest("three")],
    );
    assert!(third.status.success(), "{}", text(&third));
}
