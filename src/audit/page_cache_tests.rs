//! Test helpers for the audit writers that keep their files out of the page cache (the file
//! sink's drop-behind, the spool's punched holes).

#![allow(clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

/// A temporary directory on the disk the build is on: a tmpfs (a common /tmp) is the page
/// cache itself, so nothing could leave it.
pub(crate) fn on_disk_tempdir() -> tempfile::TempDir {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).expect("target directory");
    tempfile::Builder::new()
        .tempdir_in(&target)
        .expect("tempdir under target/")
}

/// Bytes of `path` in the page cache, as util-linux's `fincore` counts them (scripts/test.sh
/// installs it).
pub(crate) fn cached_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) must be installed: scripts/test.sh installs it");
    assert!(
        out.status.success(),
        "fincore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("fincore's RES column")
}
