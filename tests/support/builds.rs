//! Helpers for tests that run builds through sockwarden: a context with a Dockerfile, a fork
//! bomb RUN step and reading its count back, the two classic-build CLIs, the audit record of
//! a build, and a lock for tests that compare the daemon's state.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::{wait_audit_record, Docker, Proxy, DEBIAN_DOCKER_CLI};

/// A build context (a temp dir) holding only `Dockerfile`.
pub fn build_context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    dir
}

/// A Dockerfile `FROM image` whose RUN step prints the memory limit it sees and how many of
/// `forks` background `sleep`s (of `sleep_secs`) it could start, counted without forking: a
/// shell that cannot fork stops there. [`started`] reads the count back.
pub fn fork_dockerfile(image: &str, forks: u32, sleep_secs: u32) -> String {
    format!(
        "FROM {image}\nRUN echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || \
         cat /sys/fs/cgroup/memory.max); \
         sh -c 'i=0; while [ $i -lt {forks} ]; do sleep {sleep_secs} & i=$((i+1)); echo $i > /tmp/n; done' \
         2>/dev/null; read n < /tmp/n; echo started=$n\n"
    )
}

/// A command's stdout then stderr, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The number after the last `started=` in a build's output (the classic builder echoes the
/// step's own command line, which has one too).
pub fn started(text: &str) -> u32 {
    text.rsplit("started=")
        .next()
        .filter(|_| text.contains("started="))
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no started= in:\n{text}"))
}

/// The classic-build CLIs: docker 28 and 20.10, both with `DOCKER_BUILDKIT=0`.
pub fn classic_clis(proxy: &Proxy) -> [(&'static str, Docker); 2] {
    [
        ("docker 28", proxy.docker().env("DOCKER_BUILDKIT", "0")),
        (
            "docker 20.10",
            proxy
                .docker()
                .bin(DEBIAN_DOCKER_CLI)
                .env("DOCKER_BUILDKIT", "0"),
        ),
    ]
}

/// The audit record (in `audit`) of the build that wrote the image name containing `tag`.
pub fn build_record_for_tag(audit: &Path, tag: &str, timeout: Duration) -> Value {
    wait_audit_record(audit, timeout, |r| {
        r["operation"] == "image.build"
            && r["objects"]["image"]
                .as_str()
                .is_some_and(|i| i.contains(tag))
    })
}

/// One test at a time in this binary: for tests that fork up to a cap or compare the
/// daemon's state before and after.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DAEMON
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
