//! A refused request whose body is large (an image archive, a tar into a container, a build
//! context) still gets its refusal to the client: the docker CLI prints sockwarden's message,
//! not "broken pipe" or "connection reset".
//!
//! Run as root: `bash scripts/test.sh refused_uploads_e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use support::{random_bytes, toml_str, Proxy, DEBIAN_DOCKER_CLI};

/// A read-only client: every upload below is refused by policy.
fn proxy() -> Proxy {
    Proxy::start_config(|dir| {
        format!(
            r#"
[upstream]
socket = {upstream}

[[client]]
name = "ro"
policy = "read-only"
uids = [0]

[[listen]]
unix = {sock}
"#,
            upstream = toml_str(&support::daemon_socket().display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        )
    })
}

/// A tar archive of `size` random bytes in one file.
fn archive(dir: &std::path::Path, size: usize) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("blob"), random_bytes(size)).unwrap();
    let tar = dir.join("a.tar");
    let ok = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar");
    tar
}

/// `docker load`, `docker import` and `docker build` (classic) of bodies from a few KiB to
/// 64 MiB, with both CLIs, are refused with the policy's message.
#[test]
fn large_refused_uploads_show_the_refusal() {
    let proxy = proxy();
    let dir = tempfile::tempdir().unwrap();
    for size in [4 << 10, 3 << 20, 64 << 20] {
        let case = dir.path().join(format!("s{size}"));
        std::fs::create_dir_all(&case).unwrap();
        let tar = archive(&case, size);
        let tar = tar.to_str().unwrap();
        std::fs::write(case.join("src/Dockerfile"), "FROM scratch\nCOPY blob /\n").unwrap();
        let ctx = case.join("src");
        let ctx = ctx.to_str().unwrap();
        for cli in [proxy.docker(), proxy.docker().bin(DEBIAN_DOCKER_CLI)] {
            for (what, args, op) in [
                ("load", vec!["load", "-i", tar], "image.load"),
                (
                    "import",
                    vec!["import", tar, "sw-refused:1"],
                    "image.import",
                ),
                (
                    "build",
                    vec!["build", "-t", "sw-refused:2", ctx],
                    "image.build",
                ),
            ] {
                let out = cli.clone().env("DOCKER_BUILDKIT", "0").run(&args);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    !out.status.success(),
                    "{what} {size}: {}",
                    support::describe(&out)
                );
                assert!(
                    stderr.contains("sockwarden")
                        && stderr.contains(op)
                        && stderr.contains("refused"),
                    "{what} of {size} bytes: {stderr}"
                );
            }
        }
    }
}
