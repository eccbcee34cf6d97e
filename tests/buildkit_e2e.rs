//! BuildKit through sockwarden with the Debian docker CLI 20.10 (the one that builds with
//! BuildKit through `/session`): a build the policy refuses ends promptly with the refusal,
//! the session the CLI opened first included; an allowed one builds.
//!
//! Run as root: `bash scripts/test.sh buildkit_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::time::Duration;

use support::{test_image, toml_str, Cleanup, Proxy, DEBIAN_DOCKER_CLI};

/// A policy that opens BuildKit builds but only for tags under `sw-bk-ok/`.
fn proxy() -> Proxy {
    Proxy::start_config(|dir| {
        format!(
            r#"
[upstream]
socket = {upstream}

[[client]]
name = "builder"
policy = "builder"
uids = [0]

[policy.builder]
allow = ["system.ping", "system.version", "system.info", "image.build", "build.session",
         "image.inspect", "image.list", "image.delete"]
allow_dangerous = ["image.build", "build.session"]

[policy.builder.build]
allow_buildkit = true
tags = ["sw-bk-ok/*"]

[[listen]]
unix = {sock}
"#,
            upstream = toml_str(&support::daemon_socket().display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        )
    })
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nLABEL sw-bk=built\n", test_image()),
    )
    .expect("write Dockerfile");
    dir
}

/// A refused BuildKit build returns the refusal and exits, for each way it can be refused
/// (a tag outside the allowed names; several tags, one refused): a CLI left hanging on its
/// session fails the run at its time limit (90 s); an allowed build after them still works (the refused sessions left nothing
/// behind that blocks it).
#[test]
fn refused_buildkit_builds_end_with_the_refusal() {
    let proxy = proxy();
    let ctx = context();
    let path = ctx.path().to_str().expect("utf-8 path");
    let cli = || {
        proxy
            .docker()
            .bin(DEBIAN_DOCKER_CLI)
            .env("DOCKER_BUILDKIT", "1")
            .timeout(Duration::from_secs(90))
    };
    for tags in [vec!["sw-bk-no:1"], vec!["sw-bk-ok/a:1", "sw-bk-no:2"]] {
        let mut args = vec!["build"];
        for tag in &tags {
            args.extend(["-t", tag]);
        }
        args.push(path);
        let out = cli().run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{tags:?}: {}",
            support::describe(&out)
        );
        assert!(
            stderr.contains("refused") && stderr.contains("tags"),
            "{tags:?}: {stderr}"
        );
    }
    let cleanup = Cleanup::new();
    let tag = "sw-bk-ok/built:1";
    cleanup.add_image(tag);
    let out = cli().run(&["build", "-t", tag, path]);
    assert!(out.status.success(), "{}", support::describe(&out));
}
