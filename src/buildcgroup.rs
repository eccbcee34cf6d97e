//! Per-build cgroups that carry a policy's pids cap to a classic build's `RUN` containers.
//!
//! The build API has no pids parameter, but the classic builder gives every `RUN` container the
//! build's `cgroupparent` (moby `daemon/builder/dockerfile/internals.go`,
//! `hostConfigFromOptions`), and with the `cgroupfs` driver the daemon places the container's
//! cgroup at `<cgroupparent>/<container id>` (`daemon/oci_linux.go`, `withCgroups`). A parent
//! whose `pids.max` is the policy's cap limits everything below it. So for each classic build
//! under a pids cap sockwarden creates a fresh cgroup below `[upstream] build_cgroup`, writes
//! its `pids.max`, forwards the build with `cgroupparent=` naming it, and removes it when the
//! build's response ends (or the client goes away).
//!
//! The directory is found by itself by default (`build_cgroup = "auto"`, [`detect`]): the
//! `sockwarden-builds` cgroup at the root of the hierarchy the daemon's `CgroupVersion` puts
//! pids under (cgroup v1's `pids` hierarchy, or the cgroup2 hierarchy when its root lists the
//! pids controller). `"off"` makes none; a path names one.
//!
//! One cgroup per build, not per client: a shared parent would pool the cap, so one build that
//! forks up to it would starve every other build of the same client.
//!
//! Only `rmdir` is used to remove: the kernel refuses it while a cgroup has processes or
//! children, so a cgroup still in use is never torn down; removal is retried for a while, and
//! what is left is retried at the next build and at the next start.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The prefix of every build cgroup's directory name: `b<sockwarden pid>-<n>`.
const LEAF_PREFIX: &str = "b";

/// How long a busy build cgroup's removal is retried before it is left for the next build.
const RELEASE_RETRY: Duration = Duration::from_secs(60);

/// After a build cgroup is gone, how long until it is looked for again ...
const RELEASE_RECHECK_AFTER: Duration = Duration::from_secs(3);

/// ... and how many times.
const RELEASE_RECHECKS: u32 = 2;

/// How the cgroup directory is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy (cgroup v2).
    V2,
    /// A cgroup v1 hierarchy with the pids controller.
    V1Pids,
}

impl Hierarchy {
    /// The daemon's `CgroupVersion` (`docker info`) this hierarchy goes with.
    fn daemon_version(self) -> &'static str {
        match self {
            Hierarchy::V2 => "2",
            Hierarchy::V1Pids => "1",
        }
    }
}

/// One cgroup filesystem mount, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// Where it is mounted.
    point: PathBuf,
    /// The cgroup shown at the mount point (`/` unless a sub-tree is mounted).
    root: String,
    /// `cgroup2`, or `cgroup` for a v1 hierarchy.
    fstype: String,
    /// Super options (a v1 hierarchy's controllers).
    options: String,
}

/// Where the configured directory is: its hierarchy, and its cgroup name as the daemon reads
/// a `cgroupparent` (the path from the hierarchy's root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The hierarchy.
    pub hierarchy: Hierarchy,
    /// The cgroup name, from the root: `/sockwarden-builds`.
    pub name: String,
    /// Every cgroup mount, for removing what the runtime creates in the other hierarchies.
    mounts: Vec<Mount>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup mounts in a mountinfo text.
fn cgroup_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            let fstype = tail.next()?;
            let _source = tail.next();
            let options = tail.next().unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(Mount {
                point: PathBuf::from(unescape(head.get(4)?)),
                root: unescape(head.get(3)?),
                fstype: fstype.to_owned(),
                options: options.to_owned(),
            })
        })
        .collect()
}

/// Whether `dir` is a clean absolute path (no `.`, `..`, and only characters that need no
/// escaping in a query: the daemon gets its name in `cgroupparent=`).
pub fn valid_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_absolute() {
        return Err("must be an absolute path".into());
    }
    if dir
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return Err("must not contain . or .. components".into());
    }
    let text = dir.to_str().unwrap_or("\u{0}");
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
    {
        return Err("may contain only ASCII letters, digits, '/', '_', '-' and '.'".into());
    }
    Ok(())
}

/// Where `dir` is, from a mountinfo text: in the cgroup2 hierarchy or a v1 hierarchy with the
/// pids controller, below its mount point (not the mount point itself).
pub fn locate(dir: &Path, mountinfo: &str) -> Result<Place, String> {
    valid_dir(dir)?;
    let mounts = cgroup_mounts(mountinfo);
    let mount = mounts
        .iter()
        .filter(|m| dir.starts_with(&m.point) && dir != m.point)
        .max_by_key(|m| m.point.components().count())
        .ok_or_else(|| {
            format!(
                "{} is not below a cgroup filesystem mount (cgroup2, or cgroup v1 with the pids \
                 controller)",
                dir.display()
            )
        })?;
    let hierarchy = match mount.fstype.as_str() {
        "cgroup2" => Hierarchy::V2,
        _ if mount.options.split(',').any(|o| o == "pids") => Hierarchy::V1Pids,
        _ => {
            return Err(format!(
                "{} is in the cgroup v1 hierarchy at {} ({}), which has no pids controller",
                dir.display(),
                mount.point.display(),
                mount.options
            ))
        }
    };
    if mount.root.split('/').any(|c| c == "..") {
        return Err(format!(
            "the cgroup mount at {} shows a cgroup outside this process's cgroup namespace",
            mount.point.display()
        ));
    }
    let rel = dir.strip_prefix(&mount.point).unwrap_or(dir);
    let name = Path::new("/")
        .join(mount.root.trim_start_matches('/'))
        .join(rel);
    // The name goes into the query as it is: the mounted sub-tree must be as plain as `dir`.
    valid_dir(&name).map_err(|e| format!("the cgroup name {}: {e}", name.display()))?;
    Ok(Place {
        hierarchy,
        name: name.to_string_lossy().into_owned(),
        mounts,
    })
}

/// The name of the cgroup `build_cgroup = "auto"` makes at the root of the pids hierarchy.
pub const AUTO_NAME: &str = "sockwarden-builds";

/// `[upstream] build_cgroup`: where classic builds' cgroups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Found at each build from this host's cgroup mounts and the daemon's `CgroupVersion`
    /// ([`detect`]); the default.
    Auto,
    /// None: a classic build under a pids cap is refused (or, with `allow_uncapped_builds`,
    /// runs without a pids limit).
    Off,
    /// This directory.
    Dir(PathBuf),
}

impl Setting {
    /// Reads the setting: `"auto"`, `"off"` or an absolute directory ([`valid_dir`]).
    pub fn parse(text: &str) -> Result<Setting, String> {
        match text {
            "auto" => Ok(Setting::Auto),
            "off" => Ok(Setting::Off),
            _ if !text.starts_with('/') => Err(format!(
                "{text:?}: must be \"auto\", \"off\" or an absolute cgroup directory"
            )),
            _ => {
                let dir = PathBuf::from(text);
                valid_dir(&dir)?;
                Ok(Setting::Dir(dir))
            }
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Auto => f.write_str("auto"),
            Setting::Off => f.write_str("off"),
            Setting::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// The cgroup version the daemon's `/info` names (`CgroupVersion`: "1" or "2"), after checking
/// its driver is `cgroupfs`: with the `systemd` driver a cgroup parent must be a slice, whose
/// `TasksMax` only systemd (over D-Bus) can set: not done, refused. `None` when the daemon
/// does not say (before API 1.40).
pub fn daemon_cgroups(info: &[u8]) -> Result<Option<String>, String> {
    let info: serde_json::Value = serde_json::from_slice(info)
        .map_err(|e| format!("the daemon's /info is unreadable: {e}"))?;
    let driver = info["CgroupDriver"].as_str().unwrap_or("");
    let version = info["CgroupVersion"].as_str().unwrap_or("");
    match driver {
        "cgroupfs" => {}
        "systemd" => {
            return Err(
                "the daemon uses the systemd cgroup driver, where a build's cgroup \
                        parent must be a systemd slice, which sockwarden cannot create with a \
                        TasksMax (no D-Bus); run the daemon with the cgroupfs driver \
                        (dockerd --exec-opt native.cgroupdriver=cgroupfs) for capped builds"
                    .into(),
            )
        }
        other => {
            return Err(format!(
                "the daemon's cgroup driver is {other:?}, not cgroupfs"
            ))
        }
    }
    Ok((!version.is_empty()).then(|| version.to_owned()))
}

/// Whether the cgroup directory at `dir` lists the pids controller in `cgroup.controllers`
/// (cgroup v2).
fn lists_pids(dir: &Path) -> Result<bool, String> {
    let file = dir.join("cgroup.controllers");
    std::fs::read_to_string(&file)
        .map(|c| c.split_whitespace().any(|w| w == "pids"))
        .map_err(|e| format!("reading {}: {e}", file.display()))
}

/// The directory `build_cgroup = "auto"` uses, from a mountinfo text and the daemon's cgroup
/// version (`None`: unknown; then cgroup v1 where a v1 `pids` hierarchy is mounted, else v2):
/// [`AUTO_NAME`] at the root of the cgroup v1 hierarchy with the pids controller, or of the
/// cgroup2 hierarchy when its root's `cgroup.controllers` lists pids (read from the file
/// system). A hierarchy mounted from its root is preferred, then one below `/sys/fs/cgroup`.
pub fn detect(mountinfo: &str, daemon_version: Option<&str>) -> Result<PathBuf, String> {
    let mounts = cgroup_mounts(mountinfo);
    let v1 = |m: &&Mount| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "pids");
    let v2 = |m: &&Mount| m.fstype == "cgroup2";
    let version = match daemon_version {
        Some(v) => v,
        None if mounts.iter().any(|m| v1(&m)) => "1",
        None => "2",
    };
    fn best<'m>(found: impl Iterator<Item = &'m Mount>) -> Option<&'m Mount> {
        found.min_by_key(|m| {
            (
                m.root != "/",
                !m.point.starts_with("/sys/fs/cgroup"),
                m.point.components().count(),
            )
        })
    }
    match version {
        "1" => {
            let mount = best(mounts.iter().filter(v1)).ok_or(
                "the daemon uses cgroup v1 and no cgroup v1 hierarchy with the pids \
                 controller is mounted here",
            )?;
            Ok(mount.point.join(AUTO_NAME))
        }
        "2" => {
            let mount = best(mounts.iter().filter(v2))
                .ok_or("the daemon uses cgroup v2 and no cgroup2 hierarchy is mounted here")?;
            if !lists_pids(&mount.point)? {
                return Err(format!(
                    "the cgroup2 hierarchy at {} has no pids controller (its \
                     cgroup.controllers does not list pids)",
                    mount.point.display()
                ));
            }
            Ok(mount.point.join(AUTO_NAME))
        }
        other => Err(format!(
            "the daemon's CgroupVersion {other:?} is not 1 or 2"
        )),
    }
}

/// Whether this process may create build cgroups in `dir` (or, while it does not exist, in
/// the nearest existing directory above it): root, and writable (not a read-only mount such
/// as systemd's `ProtectControlGroups=` or a container's `/sys/fs/cgroup`).
pub fn check_writable(dir: &Path, need_root: bool) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    let uid = nix::unistd::geteuid();
    if need_root && !uid.is_root() {
        return Err(format!(
            "sockwarden runs as uid {uid}, not root, so it cannot create cgroups (name a \
             cgroup directory delegated to this user instead)"
        ));
    }
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    match access(existing, AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EROFS) => Err(format!(
            "{} is read-only here (systemd's ProtectControlGroups=, or a container's \
             /sys/fs/cgroup): the unit in deploy/systemd/sockwarden.service makes \
             {} writable with ReadWritePaths=",
            existing.display(),
            dir.display()
        )),
        Err(e) => Err(format!("{} is not writable: {e}", existing.display())),
    }
}

/// Checks the daemon's `/info` answer: a `cgroupfs` driver on the cgroup version `place` is
/// on. With the `systemd` driver a cgroup parent must be a slice, whose `TasksMax` only
/// systemd (over D-Bus) can set: not done, refused.
pub fn check_daemon(info: &[u8], place: &Place) -> Result<(), String> {
    let version = daemon_cgroups(info)?.unwrap_or_default();
    let want = place.hierarchy.daemon_version();
    if !version.is_empty() && version != want {
        return Err(format!(
            "the daemon uses cgroup v{version}, and build_cgroup is in a cgroup v{want} hierarchy"
        ));
    }
    Ok(())
}

/// Checks that the daemon behind the unix socket `socket` sees the same cgroups as this
/// process: its listening process (dockerd, or systemd for a socket-activated daemon) must be
/// visible here (the same pid namespace or a parent of it) and in the same cgroup namespace.
/// Otherwise the daemon would read `cgroupparent` in its own view and make an unlimited cgroup
/// of that name.
pub fn check_same_cgroups(socket: &Path) -> Result<(), String> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let pid = getsockopt(&stream, PeerCredentials)
        .map_err(|e| format!("reading the daemon socket's peer credentials: {e}"))?
        .pid();
    if pid <= 0 {
        return Err(
            "the daemon's process is not visible from here (another pid namespace): \
                    sockwarden must run on the daemon's host"
                .into(),
        );
    }
    let ns = |pid: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/cgroup"))
            .map_err(|e| format!("reading /proc/{pid}/ns/cgroup: {e}"))
    };
    if ns(&pid.to_string())? != ns("self")? {
        return Err(format!(
            "sockwarden and the daemon (pid {pid}) are in different cgroup namespaces"
        ));
    }
    Ok(())
}

/// The directories a build's cgroup `name` has (or gets, from the runtime) in every mounted
/// hierarchy: the runtime creates the parent in each v1 hierarchy it uses.
fn directories(mounts: &[Mount], name: &str) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter_map(|m| {
            let root = m.root.trim_end_matches('/');
            let rest = name.strip_prefix(root)?;
            (rest.starts_with('/') || root.is_empty())
                .then(|| m.point.join(rest.trim_start_matches('/')))
        })
        .collect()
}

/// On cgroup v2, makes the pids controller available in the configured directory and its
/// children (the parent's and its own `cgroup.subtree_control`).
fn delegate_pids(dir: &Path) -> Result<(), String> {
    let has_pids = |dir: &Path| {
        std::fs::read_to_string(dir.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"))
    };
    if !has_pids(dir) {
        if let Some(parent) = dir.parent() {
            write(&parent.join("cgroup.subtree_control"), "+pids")?;
        }
    }
    let control = dir.join("cgroup.subtree_control");
    let enabled =
        std::fs::read_to_string(&control).is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"));
    if !enabled {
        write(&control, "+pids")?;
    }
    Ok(())
}

/// The build cgroups under one configured directory.
#[derive(Debug)]
pub struct BuildCgroups {
    /// The configured directory; `None`: found at each build ([`detect`]).
    dir: Option<PathBuf>,
    /// The daemon's unix socket, for [`check_same_cgroups`]; `None` for a TCP daemon, which
    /// cannot be checked (and is refused).
    daemon_socket: Option<PathBuf>,
    next: AtomicU64,
    /// Names of the cgroups prepared and not yet removed (never swept).
    live: Mutex<HashSet<String>>,
    /// Directories whose removal gave up, retried at the next build.
    stale: Mutex<Vec<PathBuf>>,
    /// Directories already swept of what earlier sockwarden processes left.
    swept: Mutex<HashSet<PathBuf>>,
}

/// A build's cgroup, removed (in the background, with retries) when dropped.
#[derive(Debug)]
pub struct BuildCgroup {
    owner: Arc<BuildCgroups>,
    /// The `cgroupparent` value.
    name: String,
    /// The directory with `pids.max`, then the others the runtime may create.
    dirs: Vec<PathBuf>,
    pids: i64,
}

impl BuildCgroup {
    /// The cgroup's name for `cgroupparent=`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `pids.max` written.
    pub fn pids(&self) -> i64 {
        self.pids
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

impl BuildCgroups {
    /// Build cgroups below `dir` (`None`: the directory [`detect`] finds at each build) for
    /// the daemon on the unix socket `daemon_socket` (`None`: a TCP daemon, whose builds cannot
    /// be placed); removes what an earlier sockwarden process left in a configured `dir` (in
    /// a detected one, when it is first found).
    pub fn new(dir: Option<PathBuf>, daemon_socket: Option<PathBuf>) -> Arc<BuildCgroups> {
        let cgroups = Arc::new(BuildCgroups {
            dir,
            daemon_socket,
            next: AtomicU64::new(1),
            live: Mutex::default(),
            stale: Mutex::default(),
            swept: Mutex::default(),
        });
        if let Some(dir) = cgroups.dir.clone() {
            cgroups.sweep_once(&dir);
        }
        cgroups
    }

    /// The setting, for messages: the configured directory, or `auto`.
    pub fn setting(&self) -> Setting {
        self.dir.clone().map_or(Setting::Auto, Setting::Dir)
    }

    /// Sweeps `dir` ([`Self::sweep_dead`]) the first time it is used.
    fn sweep_once(&self, dir: &Path) {
        let first = self
            .swept
            .lock()
            .is_ok_and(|mut swept| swept.insert(dir.to_path_buf()));
        if first {
            self.sweep_dead(dir);
        }
    }

    /// Removes build cgroups of sockwarden processes that are gone (`b<pid>-<n>` with no such
    /// process), in every hierarchy. Only empty cgroups can be removed.
    fn sweep_dead(&self, dir: &Path) {
        let Ok(place) = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| e.to_string())
            .and_then(|m| locate(dir, &m))
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let leaf = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = leaf
                .strip_prefix(LEAF_PREFIX)
                .and_then(|r| r.split_once('-'))
                .and_then(|(p, _)| p.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let name = format!("{}/{leaf}", place.name.trim_end_matches('/'));
            for dir in directories(&place.mounts, &name) {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    /// Prepares a cgroup with `pids.max = pids` for one build; `info` is the daemon's `/info`.
    pub fn prepare(self: &Arc<Self>, pids: i64, info: &[u8]) -> Result<BuildCgroup, String> {
        self.retry_stale();
        if pids <= 0 {
            return Err(format!("invalid pids limit {pids}"));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let (dir, place) = match &self.dir {
            Some(dir) => {
                let place = locate(dir, &mountinfo)?;
                check_daemon(info, &place)?;
                (dir.clone(), place)
            }
            None => {
                let version = daemon_cgroups(info)?;
                let dir = detect(&mountinfo, version.as_deref())?;
                let place = locate(&dir, &mountinfo)?;
                check_daemon(info, &place)?;
                (dir, place)
            }
        };
        match &self.daemon_socket {
            Some(socket) => check_same_cgroups(socket)?,
            None => {
                return Err(
                    "the daemon is reached over TCP, so whether it sees the same \
                            cgroups cannot be checked"
                        .into(),
                )
            }
        }
        check_writable(&dir, self.dir.is_none())?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        self.sweep_once(&dir);
        if place.hierarchy == Hierarchy::V2 {
            delegate_pids(&dir)?;
        }
        let pid = std::process::id();
        let (leaf, path) = loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let leaf = format!("{LEAF_PREFIX}{pid}-{n}");
            let path = dir.join(&leaf);
            match std::fs::create_dir(&path) {
                Ok(()) => break (leaf, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("creating {}: {e}", path.display())),
            }
        };
        let name = format!("{}/{leaf}", place.name.trim_end_matches('/'));
        let mut dirs = vec![path.clone()];
        dirs.extend(
            directories(&place.mounts, &name)
                .into_iter()
                .filter(|d| *d != path),
        );
        if let Ok(mut live) = self.live.lock() {
            live.insert(name.clone());
        }
        // From here on the guard removes the directory on any failure.
        let cgroup = BuildCgroup {
            owner: Arc::clone(self),
            name,
            dirs,
            pids,
        };
        let limit = path.join("pids.max");
        write(&limit, &pids.to_string())?;
        let read = std::fs::read_to_string(&limit)
            .map_err(|e| format!("reading {}: {e}", limit.display()))?;
        if read.trim() != pids.to_string() {
            return Err(format!(
                "{} reads {:?} after writing {pids}",
                limit.display(),
                read.trim()
            ));
        }
        Ok(cgroup)
    }

    fn retry_stale(&self) {
        let Ok(mut stale) = self.stale.lock() else {
            return;
        };
        stale.retain(|dir| dir.exists() && std::fs::remove_dir(dir).is_err());
    }

    /// Removes a build's directories: at once, then again over about a minute while any is
    /// still busy (the daemon removes a step's container shortly after the response ends), and
    /// once more a few seconds after they are gone (a step the daemon started as the client
    /// left would have its parent created again by the runtime, without `pids.max`: it gets
    /// the limit written back, then is removed).
    fn release(self: Arc<Self>, name: String, dirs: Vec<PathBuf>, pids: i64) {
        let limit = dirs.first().map(|d| d.join("pids.max"));
        let attempt = move |dirs: &[PathBuf]| -> Vec<PathBuf> {
            if let Some(limit) = limit.as_ref().filter(|l| l.exists()) {
                let _ = std::fs::write(limit, pids.to_string());
            }
            // Children before parents is not needed: each is one level, in its own hierarchy.
            dirs.iter()
                .filter(|d| d.exists() && std::fs::remove_dir(d).is_err())
                .cloned()
                .collect()
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            let left = attempt(&dirs);
            self.finish(&name, left);
            return;
        };
        handle.spawn(async move {
            let mut left = attempt(&dirs);
            let mut delay = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            let mut rechecks = 0;
            loop {
                while !left.is_empty() && waited < RELEASE_RETRY {
                    tokio::time::sleep(delay).await;
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    left = attempt(&left);
                }
                if !left.is_empty() || rechecks == RELEASE_RECHECKS {
                    break;
                }
                // Gone: look again, in case the runtime made it again for a late step.
                rechecks += 1;
                tokio::time::sleep(RELEASE_RECHECK_AFTER).await;
                left = attempt(&dirs);
                if left.is_empty() {
                    break;
                }
            }
            self.finish(&name, left);
        });
    }

    fn finish(&self, name: &str, left: Vec<PathBuf>) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(name);
        }
        if left.is_empty() {
            return;
        }
        tracing::warn!(
            cgroup = %name,
            left = ?left,
            "a build's cgroup could not be removed yet; retried at the next build"
        );
        if let Ok(mut stale) = self.stale.lock() {
            stale.extend(left);
        }
    }

    /// How many build cgroups are prepared and not yet removed.
    pub fn live(&self) -> usize {
        self.live.lock().map_or(0, |l| l.len())
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        let owner = Arc::clone(&self.owner);
        owner.release(
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.dirs),
            self.pids,
        );
    }
}

#[cfg(test)]
mod tests;
