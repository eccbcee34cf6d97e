//! Watching the configuration file (`serve --watch-config`): a change to its content reloads
//! it, exactly as SIGHUP does ([`super::Live::reload`]: an invalid file keeps the configuration
//! in force, and says why in the log, the audit and the metrics).
//!
//! The file's inode is not what is watched, since most updates replace it: an editor writes a
//! new file and renames it over the old one, and Kubernetes updates a mounted ConfigMap by
//! swapping a symlink (`sockwarden.toml -> ..data/sockwarden.toml`, `..data ->
//! ..2026_12_03_13_05_08.123`, the new `..data` renamed over the old). The watcher watches the
//! directories instead (inotify): the one the configured path is in and the one the path
//! resolves to now, resolving the path again after every change. Any event there, after a quiet
//! [`DEBOUNCE`] (an update is a burst of events), re-reads the file through every symlink and
//! compares its content with the content last seen: only a different content reloads. A file
//! that cannot be read (gone for a moment) is logged and the configuration in force kept; the
//! next content seen is compared with the last one read. Every [`POLL`] the file is read again
//! even without an event, for file systems whose changes inotify does not report and in case
//! inotify cannot be used (then polling is all there is, and the log says so).

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::Live;

/// How long the directories must be quiet after an event before the file is read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// The longest a burst of events postpones reading the file.
const DEBOUNCE_MAX: Duration = Duration::from_secs(2);
/// How often the file is read without an event.
pub const POLL: Duration = Duration::from_secs(10);

/// Reloads `live` whenever the content of the file at `path` changes. Runs until aborted.
pub async fn watch(live: Live, path: PathBuf) {
    tracing::info!(config = %path.display(), "watching the configuration file: a changed file is reloaded");
    watch_with(&path, POLL, move || {
        let live = live.clone();
        async move {
            // The outcome is logged, audited and counted by `reload` itself.
            let _ = live.reload("file watch").await;
        }
    })
    .await;
}

/// The watch loop: calls `changed` after each change of the content at `path`.
pub async fn watch_with<F, Fut>(path: &Path, poll: Duration, mut changed: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut last = read(path);
    let mut dirs = match Dirs::new() {
        Ok(dirs) => Some(dirs),
        Err(e) => {
            tracing::warn!(error = %e, poll = ?poll, "cannot watch the configuration file's directory (inotify); reading it periodically instead");
            None
        }
    };
    loop {
        if let Some(d) = dirs.as_mut() {
            d.arm(path);
        }
        match dirs.as_mut() {
            Some(d) => {
                if tokio::time::timeout(poll, d.event()).await.is_ok() {
                    // Let the burst end: an update is several events (write, rename, unlink).
                    let start = tokio::time::Instant::now();
                    while start.elapsed() < DEBOUNCE_MAX
                        && tokio::time::timeout(DEBOUNCE, d.event()).await.is_ok()
                    {
                    }
                }
            }
            None => tokio::time::sleep(poll).await,
        }
        let now = read(path);
        if now == last {
            continue;
        }
        match &now {
            Ok(_) => {
                tracing::info!(config = %path.display(), "configuration file changed: reloading");
                last = now;
                changed().await;
            }
            Err(e) => {
                // Once per failure, not at every event.
                if !matches!(&last, Err(old) if old == e) {
                    tracing::warn!(config = %path.display(), error = %e, "configuration file cannot be read; the configuration in force is kept");
                }
                last = now;
            }
        }
    }
}

/// The file's content through every symlink, or why it cannot be read.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The directories whose changes can change what `path` reads: its own directory (where an
/// editor renames, or a symlink like `..data` is swapped) and the directory of each file a
/// symlink on the way leads to (where the file is written in place).
fn watched_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut add = |p: &Path| {
        let dir = match p.parent() {
            Some(d) if d.as_os_str().is_empty() => PathBuf::from("."),
            Some(d) => d.to_path_buf(),
            None => return,
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    };
    add(path);
    // The symlinks, hop by hop (bounded, as the kernel bounds them).
    let mut hop = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&hop) {
            Ok(target) => {
                hop = match hop.parent() {
                    Some(parent) => parent.join(target),
                    None => target,
                };
                add(&hop);
            }
            Err(_) => break,
        }
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        add(&real);
    }
    dirs
}

/// The watched directories: an inotify descriptor, read by a thread of its own that wakes the
/// watch loop (tokio's `AsyncFd` would need `unsafe` to register it soundly).
struct Dirs {
    inotify: Arc<Inotify>,
    events: tokio::sync::mpsc::Receiver<()>,
    watches: HashMap<PathBuf, WatchDescriptor>,
}

impl Dirs {
    fn new() -> std::io::Result<Dirs> {
        let inotify = Arc::new(Inotify::init(
            InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC,
        )?);
        let (tx, events) = tokio::sync::mpsc::channel(1);
        let reader = inotify.clone();
        std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || read_loop(&reader, &tx))?;
        Ok(Dirs {
            inotify,
            events,
            watches: HashMap::new(),
        })
    }

    /// Watches the directories `path` depends on now, and no others.
    fn arm(&mut self, path: &Path) {
        let want = watched_dirs(path);
        let inotify = &self.inotify;
        self.watches.retain(|dir, wd| {
            let keep = want.contains(dir);
            if !keep {
                // Fails when the directory is gone (its watch went with it): nothing to do.
                let _ = inotify.rm_watch(*wd);
            }
            keep
        });
        let mask = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for dir in want {
            // Adding again is cheap and re-arms a watch the kernel dropped (directory replaced).
            match inotify.add_watch(dir.as_path(), mask) {
                Ok(wd) => {
                    self.watches.insert(dir, wd);
                }
                Err(e) => {
                    if self.watches.remove(&dir).is_none() {
                        tracing::debug!(dir = %dir.display(), error = %e, "cannot watch directory");
                    }
                }
            }
        }
    }

    /// Waits for events; they only mean "look again". Never returns when the reader is gone
    /// (the periodic read goes on).
    async fn event(&mut self) {
        if self.events.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// Reads the events and wakes the watch loop, until the loop is gone (checked every second).
fn read_loop(inotify: &Inotify, tx: &tokio::sync::mpsc::Sender<()>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !tx.is_closed() {
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "configuration watch stopped; the file is still read periodically");
                return;
            }
        }
        match inotify.read_events() {
            Ok(events) if !events.is_empty() => {
                // Full: a wake-up is already pending, which is all an event means.
                let _ = tx.try_send(());
            }
            Ok(_) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "configuration watch stopped; the file is still read periodically");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs the watcher on `path` (no periodic read within a test's time), counting changes.
    fn start(path: &Path) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let count = Arc::new(AtomicUsize::new(0));
        let path = path.to_path_buf();
        let c = count.clone();
        let task = tokio::spawn(async move {
            watch_with(&path, Duration::from_secs(3600), move || {
                c.fetch_add(1, Ordering::SeqCst);
                async {}
            })
            .await
        });
        (count, task)
    }

    async fn settle() {
        // The watcher arms its watches when it starts; give it that moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn wait_count(count: &AtomicUsize, want: usize) {
        for _ in 0..50 {
            if count.load(Ordering::SeqCst) >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // And nothing more than that: one change, one reload.
        tokio::time::sleep(DEBOUNCE * 3).await;
        assert_eq!(count.load(Ordering::SeqCst), want);
    }

    /// The layout kubelet makes for a mounted ConfigMap, and its update.
    struct ConfigMap {
        dir: PathBuf,
        n: usize,
    }

    impl ConfigMap {
        fn new(dir: &Path, content: &str) -> ConfigMap {
            let mut cm = ConfigMap {
                dir: dir.to_path_buf(),
                n: 0,
            };
            cm.update(content);
            symlink("..data/sockwarden.toml", dir.join("sockwarden.toml")).unwrap();
            cm
        }

        /// A new timestamped directory, `..data_tmp` pointing at it renamed over `..data`, the
        /// old directory removed: as kubelet's AtomicWriter does it.
        fn update(&mut self, content: &str) {
            self.n += 1;
            let ts = format!("..2026_12_03_13_05_{:02}.{}", self.n, 1000 + self.n);
            std::fs::create_dir(self.dir.join(&ts)).unwrap();
            std::fs::write(self.dir.join(&ts).join("sockwarden.toml"), content).unwrap();
            let old = std::fs::read_link(self.dir.join("..data")).ok();
            symlink(&ts, self.dir.join("..data_tmp")).unwrap();
            std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
            if let Some(old) = old {
                std::fs::remove_dir_all(self.dir.join(old)).unwrap();
            }
        }
    }

    #[tokio::test]
    async fn configmap_symlink_swaps_are_seen_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut cm = ConfigMap::new(dir.path(), "a = 1\n");
        let (count, task) = start(&dir.path().join("sockwarden.toml"));
        settle().await;
        cm.update("a = 2\n");
        wait_count(&count, 1).await;
        // The next swap goes to a directory that did not exist when the watcher started.
        cm.update("a = 3\n");
        wait_count(&count, 2).await;
        // A swap to the same content (another key of the ConfigMap changed) is no change.
        cm.update("a = 3\n");
        wait_count(&count, 2).await;
        cm.update("a = 4\n");
        wait_count(&count, 3).await;
        task.abort();
    }

    #[tokio::test]
    async fn plain_file_in_place_and_editor_rename() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sockwarden.toml");
        std::fs::write(&file, "a = 1\n").unwrap();
        let (count, task) = start(&file);
        settle().await;
        // In place (the inode stays).
        std::fs::write(&file, "a = 2\n").unwrap();
        wait_count(&count, 1).await;
        // As an editor saves: a new file renamed over the old one.
        std::fs::write(dir.path().join(".sockwarden.toml.swp"), "a = 3\n").unwrap();
        std::fs::rename(dir.path().join(".sockwarden.toml.swp"), &file).unwrap();
        wait_count(&count, 2).await;
        // Written again with the same content, touched, other files in the directory: nothing.
        std::fs::write(&file, "a = 3\n").unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        wait_count(&count, 2).await;
        // Removed for a moment, then back with a new content: one reload, for the new content.
        std::fs::remove_file(&file).unwrap();
        tokio::time::sleep(DEBOUNCE * 3).await;
        std::fs::write(&file, "a = 4\n").unwrap();
        wait_count(&count, 3).await;
        task.abort();
    }

    #[tokio::test]
    async fn a_symlinked_file_written_in_place_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::create_dir(dir.path().join("srv")).unwrap();
        let real = dir.path().join("srv/policy.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        let link = dir.path().join("etc/sockwarden.toml");
        symlink(&real, &link).unwrap();
        let (count, task) = start(&link);
        settle().await;
        std::fs::write(&real, "a = 2\n").unwrap();
        wait_count(&count, 1).await;
        task.abort();
    }

    #[test]
    fn watched_dirs_follow_the_configmap_links() {
        let dir = tempfile::tempdir().unwrap();
        let _cm = ConfigMap::new(dir.path(), "a = 1\n");
        let dirs = watched_dirs(&dir.path().join("sockwarden.toml"));
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert!(dirs.contains(&dir.path().to_path_buf()), "{dirs:?}");
        assert!(
            dirs.iter()
                .any(|d| std::fs::canonicalize(d).ok()
                    == Some(real.join("..2026_12_03_13_05_01.1001"))),
            "{dirs:?}"
        );
    }

    #[tokio::test]
    async fn a_short_poll_does_not_reload_twice() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sockwarden.toml");
        std::fs::write(&file, "a = 1\n").unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let path = file.clone();
        // A short poll: the change is seen by the event or the poll, once.
        let task = tokio::spawn(async move {
            watch_with(&path, Duration::from_millis(100), move || {
                c.fetch_add(1, Ordering::SeqCst);
                async {}
            })
            .await
        });
        settle().await;
        std::fs::write(&file, "a = 2\n").unwrap();
        wait_count(&count, 1).await;
        task.abort();
    }
}
