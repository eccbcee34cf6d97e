//! Host paths the daemon resolves when a container starts: the checks that a bind source is,
//! on the host, what its spelling says, and stays so.
//!
//! The daemon resolves a bind source (`-v SRC:DST`, `--mount type=bind,source=SRC`, a local
//! volume with `o=bind,device=SRC`) on the host, following symlinks, each time the container
//! starts. A container with a writable bind can plant a symlink in the bound directory, so a
//! check of the spelling alone cannot keep a later bind inside the allowed directories.
//! sockwarden's design (checked at create and again at every start, from the stored
//! configuration):
//!
//! 1. No component of the source is a symlink, now (`lstat` of every prefix from `/`, and the
//!    canonical path equals the spelling); the source must exist.
//! 2. A source strictly below a directory that any policy lets containers write to
//!    ([`WritableSources`]) is refused: only such a directory itself may be bound. Between this
//!    check and the daemon's mount, a container can change what is *inside* a writable
//!    directory (swap a subdirectory for a symlink), but not the directory itself or its
//!    parents, which no container can write (if a parent were writable, the directory would
//!    be strictly below a writable one and refused in turn). So every component the daemon
//!    resolves is one no container can change, and 1. stays true until the mount.
//! 3. A writable bind's source must be on a mount with `nosuid` and `nodev`, and no other
//!    mount of the same filesystem covering it may lack them: setuid binaries and device nodes
//!    a container leaves there can then not act on the host.
//!
//! These read the host as sockwarden sees it: sockwarden must share the daemon's mount
//! namespace for the bind sources (a private `/tmp` or a hidden `/home` makes sources there
//! "missing", which is refused).

use std::io;
use std::path::Path;

use crate::inspect::is_under;

/// The bind sources containers may write to, under any policy: binds below them are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WritableSources(pub Vec<String>);

impl WritableSources {
    /// The writable source `path` lies strictly below, if any.
    pub fn strictly_below(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .map(String::as_str)
            .find(|w| path != *w && is_under(path, w))
    }
}

/// Why a bind source is refused on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostProblem {
    /// A component is a symlink (the daemon would follow it).
    Symlink(String),
    /// The source (or a component) does not exist as sockwarden sees the host.
    Missing(String),
    /// The source cannot be read (`lstat`/`mountinfo` failed).
    Unreadable(String),
    /// The canonical path differs from the spelling.
    NotCanonical(String),
    /// Strictly below a directory containers may write to.
    BelowWritable(String),
    /// A writable source on a mount without `nosuid`/`nodev` (the mount point, what is missing).
    UnsafeMount {
        /// The mount point that lacks the options.
        mount_point: String,
        /// `nosuid`, `nodev` or both.
        missing: String,
    },
}

impl HostProblem {
    /// The reason, for a refusal naming `source`.
    pub fn reason(&self, source: &str) -> String {
        match self {
            HostProblem::Symlink(c) => format!(
                "host path {source}: {c} is a symlink on the host (the daemon would follow it)"
            ),
            HostProblem::Missing(c) => format!(
                "host path {source}: {c} does not exist on the host as sockwarden sees it \
                 (create it first; sockwarden must share the daemon's view of the host)"
            ),
            HostProblem::Unreadable(e) => format!("host path {source} cannot be checked: {e}"),
            HostProblem::NotCanonical(c) => {
                format!("host path {source} resolves to {c} on the host")
            }
            HostProblem::BelowWritable(w) => format!(
                "host path {source} is below {w}, which containers may write to \
                 (a container could replace part of it with a symlink): bind {w} itself"
            ),
            HostProblem::UnsafeMount {
                mount_point,
                missing,
            } => format!(
                "writable host path {source} is on the mount {mount_point} without {missing}: \
                 setuid files and device nodes a container leaves there would act on the host; \
                 fix: put it on a filesystem mounted with nosuid,nodev \
                 (e.g. `mount -t tmpfs -o nosuid,nodev tmpfs {source}`)"
            ),
        }
    }
}

/// Checks a cleaned absolute bind source on the host (see the module documentation).
pub fn check_bind(
    source: &str,
    read_only: bool,
    writable: &WritableSources,
) -> Result<(), HostProblem> {
    if let Some(w) = writable.strictly_below(source) {
        return Err(HostProblem::BelowWritable(w.to_owned()));
    }
    no_symlinks(source)?;
    if !read_only {
        safe_mount(source, &read_mountinfo()?)?;
    }
    Ok(())
}

/// Every prefix of `path`, from the first component, is a real (non-symlink) file that exists,
/// and `path` is its own canonical form.
pub fn no_symlinks(path: &str) -> Result<(), HostProblem> {
    let mut prefix = String::new();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        prefix.push('/');
        prefix.push_str(component);
        match std::fs::symlink_metadata(&prefix) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(HostProblem::Symlink(prefix));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HostProblem::Missing(prefix));
            }
            Err(e) => return Err(HostProblem::Unreadable(format!("{prefix}: {e}"))),
        }
    }
    match std::fs::canonicalize(path) {
        Ok(c) if c == Path::new(path) => Ok(()),
        Ok(c) => Err(HostProblem::NotCanonical(c.display().to_string())),
        Err(e) => Err(HostProblem::Unreadable(format!("{path}: {e}"))),
    }
}

/// What `sockwarden check` warns about the bind sources (see the module documentation): a
/// source with a symlink in its path, or missing, refuses every bind of it; a writable source
/// off a nosuid,nodev mount refuses every writable bind of it.
pub fn source_warnings(authority: &crate::policy::Authority) -> Vec<String> {
    let mounts = read_mountinfo();
    let writable = authority.writable_bind_sources();
    authority
        .bind_sources(false)
        .into_iter()
        .filter_map(|(policy, source)| {
            let is_writable = writable.iter().any(|(p, s)| *p == policy && *s == source);
            let (problem, what) = match no_symlinks(&source) {
                Err(problem) => (problem, "binds of it are refused"),
                Ok(()) if is_writable => {
                    let problem = match &mounts {
                        Ok(m) => safe_mount(&source, m).err(),
                        Err(e) => Some(e.clone()),
                    }?;
                    (problem, "writable binds of it are refused")
                }
                Ok(()) => return None,
            };
            Some(format!(
                "policy.{policy}.container.bind_sources: {}; {what}",
                problem.reason(&source)
            ))
        })
        .collect()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the filesystem.
    pub device: String,
    /// The directory of the filesystem this mount shows.
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,nodev,relatime`).
    pub options: Vec<String>,
}

impl MountEntry {
    fn missing(&self) -> Option<String> {
        let lacks: Vec<&str> = ["nosuid", "nodev"]
            .into_iter()
            .filter(|o| !self.options.iter().any(|x| x == o))
            .collect();
        (!lacks.is_empty()).then(|| lacks.join(","))
    }
}

/// Reads this process's mount table.
pub fn read_mountinfo() -> Result<Vec<MountEntry>, HostProblem> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| HostProblem::Unreadable(format!("/proc/self/mountinfo: {e}")))?;
    Ok(parse_mountinfo(&text))
}

/// Parses `mountinfo` (proc(5)); malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                [_, _, device, root, mount_point, options, ..] => Some(MountEntry {
                    device: (*device).to_owned(),
                    root: unescape(root),
                    mount_point: unescape(mount_point),
                    options: options.split(',').map(str::to_owned).collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The kernel's octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount `path` is on (the last of the longest mount points containing it: later mounts
/// stack on top), and whether it and every other mount of the same filesystem that shows the
/// same files carry `nosuid` and `nodev`.
pub fn safe_mount(path: &str, mounts: &[MountEntry]) -> Result<(), HostProblem> {
    let on = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| is_under(path, &m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.len(), *i))
        .map(|(_, m)| m)
        .ok_or_else(|| HostProblem::Unreadable(format!("no mount holds {path}")))?;
    if let Some(missing) = on.missing() {
        return Err(HostProblem::UnsafeMount {
            mount_point: on.mount_point.clone(),
            missing,
        });
    }
    // The same files under another mount point without the options (a bind of a directory of
    // the root filesystem, say) would let the host run them there.
    let rel = path.strip_prefix(on.mount_point.as_str()).unwrap_or("");
    let file_root = format!(
        "{}/{}",
        on.root.trim_end_matches('/'),
        rel.trim_start_matches('/')
    );
    let file_root = crate::inspect::clean_path(&file_root);
    for other in mounts.iter().filter(|m| m.device == on.device) {
        let overlaps = is_under(&file_root, &other.root) || is_under(&other.root, &file_root);
        if overlaps {
            if let Some(missing) = other.missing() {
                return Err(HostProblem::UnsafeMount {
                    mount_point: other.mount_point.clone(),
                    missing,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:50 / /srv/cache rw,nosuid,nodev,relatime shared:2 - tmpfs tmpfs rw
31 22 8:1 /data /srv/data rw,nosuid,nodev - ext4 /dev/sda1 rw
32 22 0:51 / /srv/with\\040space rw,nosuid - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_parses_and_unescapes() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 4);
        assert_eq!(m[3].mount_point, "/srv/with space");
        assert_eq!(m[1].options, ["rw", "nosuid", "nodev", "relatime"]);
    }

    #[test]
    fn safe_mount_needs_both_options_on_every_view() {
        let m = parse_mountinfo(INFO);
        assert_eq!(safe_mount("/srv/cache", &m), Ok(()));
        assert_eq!(safe_mount("/srv/cache/x/y", &m), Ok(()));
        assert!(matches!(
            safe_mount("/srv/with space", &m),
            Err(HostProblem::UnsafeMount { missing, .. }) if missing == "nodev"
        ));
        assert!(matches!(
            safe_mount("/srv", &m),
            Err(HostProblem::UnsafeMount { missing, .. }) if missing == "nosuid,nodev"
        ));
        // /srv/data is nosuid,nodev, but the same files are /data on the root mount.
        assert!(matches!(
            safe_mount("/srv/data", &m),
            Err(HostProblem::UnsafeMount { mount_point, .. }) if mount_point == "/"
        ));
    }

    #[test]
    fn strictly_below_a_writable_source() {
        let w = WritableSources(vec!["/srv/cache".into()]);
        assert_eq!(w.strictly_below("/srv/cache"), None);
        assert_eq!(w.strictly_below("/srv/cache/a"), Some("/srv/cache"));
        assert_eq!(w.strictly_below("/srv/cache2"), None);
        assert_eq!(w.strictly_below("/srv"), None);
    }

    #[test]
    fn symlinks_are_found_in_any_component() {
        let dir = std::env::temp_dir().join(format!("sw-hostpath-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        let s = |p: &std::path::Path| p.display().to_string();
        assert_eq!(no_symlinks(&s(&dir.join("real/sub"))), Ok(()));
        assert_eq!(
            no_symlinks(&s(&dir.join("link/sub"))),
            Err(HostProblem::Symlink(s(&dir.join("link"))))
        );
        assert!(matches!(
            no_symlinks(&s(&dir.join("real/none"))),
            Err(HostProblem::Missing(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
