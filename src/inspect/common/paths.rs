//! Paths: Go's `path.Clean`, host paths under `bind_sources`, mount targets.

use super::json::{deny, deny_rule};
use crate::inspect::docker_json::{quote, Path};
use crate::inspect::Violation;

/// Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Whether cleaned absolute `path` equals `prefix` or lies below it (whole components).
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Host paths that are never reachable through a bind prefix: only an exact listing allows the
/// path itself or any directory containing it.
const PROTECTED_HOST_PATHS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
];

/// Checks a cleaned absolute host path against `bind_sources`.
pub(crate) fn host_path_allowed(path: &str, allowed: &[String]) -> bool {
    let exact = allowed.iter().any(|a| clean_path(a) == path);
    if exact {
        return true;
    }
    let protected = path == "/" || PROTECTED_HOST_PATHS.iter().any(|s| is_under(s, path));
    if protected {
        return false;
    }
    allowed
        .iter()
        .map(|a| clean_path(a))
        .any(|a| a.starts_with('/') && is_under(path, &a))
}

/// Container paths where mounts are refused unless allowed.
fn is_special_target(cleaned: &str) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|s| is_under(cleaned, s))
}

/// A mount target: absolute, not `/`, not under `/proc`, `/sys`, `/dev` (unless allowed).
/// Returns the cleaned target.
pub(crate) fn check_target(
    target: &str,
    p: &Path<'_>,
    allow_special: bool,
) -> Result<String, Violation> {
    if !target.starts_with('/') {
        return Err(deny(
            p,
            format!("mount target {} must be an absolute path", quote(target)),
        ));
    }
    let c = clean_path(target);
    if c == "/" {
        return Err(deny(p, "mount target / is refused"));
    }
    if !allow_special && is_special_target(&c) {
        return Err(deny_rule(
            p,
            format!("mount target {c} under /proc, /sys or /dev is not allowed"),
            "allow_special_mount_targets",
        ));
    }
    Ok(c)
}
