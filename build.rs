//! Build script: the git commit the binary is built from, for `sockwarden --version`.
//!
//! SOCKWARDEN_GIT_COMMIT, when set, is used as it is (a build from a source tarball, or a
//! packager's own record); otherwise `git rev-parse --short=12 HEAD` in the source tree; without
//! git or outside a repository, "unknown". Never fails the build.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOCKWARDEN_GIT_COMMIT");
    let commit = match std::env::var("SOCKWARDEN_GIT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, the branch it points at, packed refs.
            for path in ["HEAD", "packed-refs"]
                .into_iter()
                .map(str::to_owned)
                .chain(git(&["symbolic-ref", "-q", "HEAD"]))
            {
                if let Some(file) = git(&["rev-parse", "--git-path", &path]) {
                    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
                    if file.exists() {
                        println!("cargo:rerun-if-changed={}", file.display());
                    }
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    // Only what a version string may hold.
    let commit: String = commit
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'))
        .take(64)
        .collect();
    println!("cargo:rustc-env=SOCKWARDEN_GIT_COMMIT={commit}");
}
