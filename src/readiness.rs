//! Can sockwarden reach the Docker daemon? Checked once at start, where a failure is a warning
//! naming the socket, the reason and the fix (sockwarden serves on: the daemon may come later,
//! and every request until then fails with 502), and by the admin listener's `/readyz`, which
//! reuses a result younger than [`CACHE_FOR`] so that probes cannot load the daemon.
//!
//! For a unix socket, the path is looked at first, so that a missing file, a file that is not a
//! socket and a socket sockwarden's user may not open each get their own reason and fix. The
//! check at start then only opens a connection and closes it (it sends no request, so the
//! daemon, or a test's stand-in, sees no extra request); `/readyz` asks the daemon's own
//! `GET /_ping` through the pooled upstream client.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Request, StatusCode};
use tokio::sync::Mutex;

use crate::body;
use crate::config::UpstreamAddr;
use crate::upstream::Upstream;

/// How long one check waits for the daemon's `/_ping`.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `/readyz` reuses the last check's result.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// Why the daemon cannot be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The daemon's address, `unix:///var/run/docker.sock`.
    pub addr: String,
    /// What went wrong.
    pub reason: String,
    /// What the operator can do.
    pub fix: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot reach the Docker daemon at {}: {}; fix: {}",
            self.addr, self.reason, self.fix
        )
    }
}

/// The daemon's reachability, checked on demand and cached for [`CACHE_FOR`].
#[derive(Clone, Debug)]
pub struct Readiness {
    upstream: Upstream,
    last: Arc<Mutex<Option<Checked>>>,
}

/// A check's result and when it was taken.
type Checked = (Instant, Result<(), Unreachable>);

impl Readiness {
    /// Nothing is checked until [`Readiness::check`].
    pub fn new(upstream: Upstream) -> Readiness {
        Readiness {
            upstream,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// The result of a check at most [`CACHE_FOR`] old (concurrent callers share one check).
    pub async fn check(&self) -> Result<(), Unreachable> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return result.clone();
            }
        }
        let result = probe(&self.upstream).await;
        *last = Some((Instant::now(), result.clone()));
        result
    }

    /// The check at start: the socket file and a connection (opened and closed again, no
    /// request: the daemon sees nothing). Logs a warning with the reason and the fix, or that
    /// the daemon's socket accepts connections.
    pub async fn check_at_start(&self) {
        match connect(self.upstream.addr()).await {
            Ok(()) => tracing::info!(
                upstream = %self.upstream.addr(),
                "the Docker daemon's socket accepts connections"
            ),
            Err(unreachable) => tracing::warn!(
                "{unreachable}. Serving anyway: requests fail with 502 (and /readyz says not ready) until the daemon can be reached"
            ),
        }
    }
}

/// Whether a connection to the daemon can be opened (within [`CHECK_TIMEOUT`]); closed at once.
pub async fn connect(addr: &UpstreamAddr) -> Result<(), Unreachable> {
    let unreachable = |(reason, fix): (String, String)| Unreachable {
        addr: addr.to_string(),
        reason,
        fix,
    };
    let opened = match addr {
        UpstreamAddr::Unix(path) => {
            look_at_socket(path).map_err(unreachable)?;
            tokio::time::timeout(CHECK_TIMEOUT, tokio::net::UnixStream::connect(path))
                .await
                .map(|r| r.map(drop))
        }
        UpstreamAddr::Tcp(host_port) => tokio::time::timeout(
            CHECK_TIMEOUT,
            tokio::net::TcpStream::connect(host_port.as_str()),
        )
        .await
        .map(|r| r.map(drop)),
    };
    match opened {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(unreachable(classify(addr, &e))),
        Err(_) => Err(unreachable((
            format!("connecting took longer than {CHECK_TIMEOUT:?}"),
            "check that the Docker daemon is running and not hung (its log, `systemctl status docker`)".to_owned(),
        ))),
    }
}

/// One check: the path (unix sockets), then `GET /_ping` within [`CHECK_TIMEOUT`].
pub async fn probe(upstream: &Upstream) -> Result<(), Unreachable> {
    let addr = upstream.addr();
    let unreachable = |reason: String, fix: &str| Unreachable {
        addr: addr.to_string(),
        reason,
        fix: fix.to_owned(),
    };
    if let UpstreamAddr::Unix(path) = addr {
        look_at_socket(path).map_err(|(reason, fix)| unreachable(reason, &fix))?;
    }
    let uri = upstream
        .uri_for(http::uri::PathAndQuery::from_static("/_ping"))
        .map_err(|e| unreachable(e.to_string(), "check the [upstream] settings"))?;
    let mut request = Request::new(body::empty());
    *request.uri_mut() = uri;
    // The daemon's Go server wants a plain host name; the CLI sends this one.
    request
        .headers_mut()
        .insert(header::HOST, HeaderValue::from_static("api.moby.localhost"));
    match tokio::time::timeout(CHECK_TIMEOUT, upstream.send(request)).await {
        Ok(Ok(response)) if response.status() == StatusCode::OK => Ok(()),
        Ok(Ok(response)) => Err(unreachable(
            format!("the daemon answered /_ping with {}", response.status()),
            "see the Docker daemon's log",
        )),
        Ok(Err(e)) => {
            let (reason, fix) = classify(addr, &e);
            Err(unreachable(reason, &fix))
        }
        Err(_) => Err(unreachable(
            format!("no answer to /_ping within {CHECK_TIMEOUT:?}"),
            "check that the Docker daemon is running and not hung (its log, `systemctl status docker`)",
        )),
    }
}

const FIX_START: &str =
    "start the Docker daemon, or point [upstream] socket (or DOCKER_HOST, without --config) at its socket";

/// The socket file as sockwarden's user sees it: missing, not a socket, or not for us.
fn look_at_socket(path: &Path) -> Result<(), (String, String)> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err((
                format!("the socket {} does not exist", path.display()),
                FIX_START.to_owned(),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err((
                format!(
                    "permission denied: sockwarden runs as {}, which may not enter a directory on the way to {}",
                    whoami(),
                    path.display()
                ),
                "run sockwarden as root, or as a user who may reach and open the daemon's socket (usually: a member of the docker group)".to_owned(),
            ))
        }
        Err(e) => {
            return Err((
                format!("cannot look at {}: {e}", path.display()),
                FIX_START.to_owned(),
            ))
        }
    };
    if !meta.file_type().is_socket() {
        return Err((
            format!("{} is not a socket", path.display()),
            "point [upstream] socket (or DOCKER_HOST, without --config) at the Docker daemon's socket".to_owned(),
        ));
    }
    if !may_open(&meta) {
        let group = group_name(meta.gid());
        return Err((
            format!(
                "permission denied: sockwarden runs as {}, which may not open {} (owner {}, group {group}, mode {:04o})",
                whoami(),
                path.display(),
                user_name(meta.uid()),
                meta.mode() & 0o7777
            ),
            if meta.mode() & 0o060 == 0o060 {
                format!(
                    "add the user sockwarden runs as to the {group} group (`usermod -aG {group} USER`, then restart sockwarden), or run sockwarden as root"
                )
            } else {
                format!(
                    "run sockwarden as root (or as {}): the socket is open to no group",
                    user_name(meta.uid())
                )
            },
        ));
    }
    Ok(())
}

/// Whether our effective user may write (connect to) a socket with this owner and mode, as the
/// kernel decides it (root may always).
fn may_open(meta: &std::fs::Metadata) -> bool {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return true;
    }
    let mode = meta.mode();
    if meta.uid() == uid {
        return mode & 0o200 != 0;
    }
    let in_group = nix::unistd::getegid().as_raw() == meta.gid()
        || nix::unistd::getgroups()
            .map(|groups| groups.iter().any(|g| g.as_raw() == meta.gid()))
            .unwrap_or(false);
    if in_group {
        return mode & 0o020 != 0;
    }
    mode & 0o002 != 0
}

/// Reason and fix for a failed `/_ping`, from the I/O error underneath.
fn classify(addr: &UpstreamAddr, err: &(dyn std::error::Error + 'static)) -> (String, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    return (
                        format!("permission denied: sockwarden runs as {}: {io}", whoami()),
                        "add the user sockwarden runs as to the socket's group (usually docker), or run sockwarden as root".to_owned(),
                    )
                }
                std::io::ErrorKind::ConnectionRefused => {
                    return (
                        format!("connection refused: nothing listens at {addr}"),
                        FIX_START.to_owned(),
                    )
                }
                std::io::ErrorKind::NotFound => {
                    return (format!("{addr} does not exist"), FIX_START.to_owned())
                }
                _ => {}
            }
        }
        source = e.source();
    }
    (
        crate::error::chain(err),
        "check that the Docker daemon is running and [upstream] names it".to_owned(),
    )
}

/// `uid 1000 (alice)`: the user sockwarden runs as.
fn whoami() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    format!("uid {uid} ({})", user_name(uid))
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_not_a_socket_have_their_own_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.sock");
        let (reason, fix) = look_at_socket(&missing).unwrap_err();
        assert!(reason.contains("does not exist"), "{reason}");
        assert!(fix.starts_with("start the Docker daemon"), "{fix}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let (reason, _) = look_at_socket(&file).unwrap_err();
        assert_eq!(reason, format!("{} is not a socket", file.display()));
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(look_at_socket(&sock), Ok(()));
    }

    #[test]
    fn display_names_address_reason_and_fix() {
        let u = Unreachable {
            addr: "unix:///x.sock".into(),
            reason: "why".into(),
            fix: "do this".into(),
        };
        assert_eq!(
            u.to_string(),
            "cannot reach the Docker daemon at unix:///x.sock: why; fix: do this"
        );
    }
}
