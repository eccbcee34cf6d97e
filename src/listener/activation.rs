//! systemd socket activation: listening sockets passed by systemd (or anything speaking its
//! protocol: `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, descriptors from 3 on), matched to
//! the `[[listen]]` entries and the `[admin]` listener.
//!
//! Matching, for each passed socket in order:
//! 1. its `FileDescriptorName=` equal to an entry's `name`; otherwise
//! 2. its bound address equal to an entry's `unix` path (the same path, or the same file
//!    through a symlink such as `/var/run`) or `tcp` address.
//!
//! Either way the socket must be a listening stream socket of the entry's kind, bound at the
//! entry's address: the configuration stays the truth about where sockwarden listens, so
//! `check`, the loop test and the logs never disagree with what clients reach. A socket that
//! matches no entry, two sockets for one entry, or an entry with `activation = "required"`
//! left without one are start-up errors; an entry with `activation = "off"` never takes one.
//! An entry without a passed socket (`"auto"`, the default) binds its own, so one
//! configuration serves with and without the socket unit.
//!
//! An inherited unix socket belongs to systemd: sockwarden neither re-creates it, nor changes
//! its mode or group (the socket unit's `SocketMode=`/`SocketGroup=` decide those), nor
//! removes it at exit.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ListenAddr;

/// What matching needs of one `[[listen]]` entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Its address.
    pub addr: &'a ListenAddr,
    /// Its `name` (`FileDescriptorName=`).
    pub name: Option<&'a str>,
    /// Its `activation`.
    pub activation: Activation,
}

/// Whether a listener's socket may come from systemd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// A passed socket that matches is used; without one, sockwarden binds its own.
    #[default]
    Auto,
    /// A passed socket is required: starting without one is an error.
    Required,
    /// Never a passed socket: sockwarden always binds its own.
    Off,
}

/// A `name` for `FileDescriptorName=`: what systemd accepts there (printable ASCII without
/// `:`, at most 255 bytes).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 characters (systemd's FileDescriptorName= limit)");
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err("must be printable ASCII without spaces or `:` (as FileDescriptorName= is)");
    }
    Ok(())
}

/// A listening socket passed by systemd, as std types (tokio's need the runtime).
#[derive(Debug)]
pub enum StdListener {
    /// A unix stream socket; `path` is where it is bound, if it has a path.
    Unix(std::os::unix::net::UnixListener, Option<PathBuf>),
    /// A TCP socket and its bound address.
    Tcp(std::net::TcpListener, SocketAddr),
}

impl StdListener {
    fn describe(&self) -> String {
        match self {
            StdListener::Unix(_, Some(path)) => format!("unix://{}", path.display()),
            StdListener::Unix(_, None) => "an unnamed or abstract unix socket".to_owned(),
            StdListener::Tcp(_, addr) => format!("tcp://{addr}"),
        }
    }

    /// Whether this socket is the one `addr` configures.
    fn is_at(&self, addr: &ListenAddr) -> bool {
        match (self, addr) {
            (StdListener::Unix(_, Some(bound)), ListenAddr::Unix { path, .. }) => {
                same_file(bound, path)
            }
            (StdListener::Tcp(_, bound), ListenAddr::Tcp(addr))
            | (StdListener::Tcp(_, bound), ListenAddr::Tls { addr, .. }) => bound == addr,
            _ => false,
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[derive(Debug)]
struct Passed {
    fd: i32,
    name: Option<String>,
    listener: StdListener,
}

impl Passed {
    fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!(
                "fd {} (FileDescriptorName={name}, bound at {})",
                self.fd,
                self.listener.describe()
            ),
            None => format!("fd {} (bound at {})", self.fd, self.listener.describe()),
        }
    }
}

/// Why the passed sockets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` is not a number.
    #[error("systemd socket activation: LISTEN_FDS={0:?} is not a number")]
    BadCount(String),
    /// A passed descriptor is not a listening stream socket.
    #[error("systemd socket activation: fd {fd} is not a listening unix or TCP stream socket ({reason}); sockwarden takes ListenStream= sockets with Accept=no")]
    NotListener {
        /// The descriptor.
        fd: i32,
        /// What it is instead.
        reason: String,
    },
    /// A passed socket matches no entry.
    #[error("systemd socket activation: the socket passed as {0} matches no [[listen]] entry or [admin]: give the entry `name` = its FileDescriptorName=, or the socket's address (an entry with activation = \"off\" takes none)")]
    NoEntry(String),
    /// A passed socket matched an entry by name but is bound elsewhere.
    #[error("systemd socket activation: {setting} is named by the socket passed as {passed}, but that entry is configured as {configured}; make ListenStream= and the entry's address the same")]
    Elsewhere {
        /// `listen[N]`.
        setting: String,
        /// The passed socket.
        passed: String,
        /// The entry's address.
        configured: String,
    },
    /// Two passed sockets for one entry.
    #[error(
        "systemd socket activation: {setting} matches two passed sockets: {first} and {second}"
    )]
    Twice {
        /// `listen[N]` or `admin`.
        setting: String,
        /// The first socket.
        first: String,
        /// The second socket.
        second: String,
    },
    /// An entry that requires a passed socket got none.
    #[error("{setting}: activation = \"required\" but systemd passed no socket for {configured} (start it through its .socket unit, whose ListenStream= is that address or whose FileDescriptorName= is the entry's name)")]
    Missing {
        /// `listen[N]`.
        setting: String,
        /// The entry's address.
        configured: String,
    },
}

/// The sockets passed to this process, not yet matched.
#[derive(Debug, Default)]
pub struct Inherited {
    passed: Vec<Passed>,
}

/// Passed sockets by entry: one slot per `[[listen]]` entry, and the admin listener's.
#[derive(Debug, Default)]
pub struct Assigned {
    /// By listen entry, in order.
    pub listeners: Vec<Option<StdListener>>,
    /// The admin listener's.
    pub admin: Option<StdListener>,
}

impl Inherited {
    /// No passed sockets.
    pub fn none() -> Inherited {
        Inherited::default()
    }

    /// How many sockets were passed.
    pub fn len(&self) -> usize {
        self.passed.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.passed.is_empty()
    }

    /// Takes the sockets systemd passed to this process and removes `LISTEN_PID`,
    /// `LISTEN_FDS` and `LISTEN_FDNAMES` from the environment, as `sd_listen_fds(1)` does. As
    /// systemd's own library, sockets are taken only when `LISTEN_PID` is this process:
    /// variables meant for another process (a parent that did not clear them) are ignored.
    /// Call before any other thread starts (it changes the environment).
    pub fn from_env() -> Result<Inherited, ActivationError> {
        let count = std::env::var("LISTEN_FDS").ok();
        let pid = std::env::var("LISTEN_PID").ok();
        let names = std::env::var("LISTEN_FDNAMES").ok();
        let Some(count) = count else {
            return Ok(Inherited::none());
        };
        let ours = pid
            .as_deref()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| p == std::process::id());
        if !ours {
            for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                std::env::remove_var(var);
            }
            return Ok(Inherited::none());
        }
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| ActivationError::BadCount(count.clone()))?;
        // listenfd reads LISTEN_FDS and LISTEN_PID (checked above) and removes them.
        std::env::remove_var("LISTEN_FDNAMES");
        let mut fds = listenfd::ListenFd::from_env();
        let names: Vec<Option<String>> = match names {
            Some(names) => names
                .split(':')
                .map(|n| (!n.is_empty()).then(|| n.to_owned()))
                .collect(),
            None => Vec::new(),
        };
        let mut passed = Vec::with_capacity(count);
        for index in 0..count.min(fds.len()) {
            let fd = 3 + index as i32;
            let listener = take(&mut fds, index, fd)?;
            passed.push(Passed {
                fd,
                name: names.get(index).cloned().flatten(),
                listener,
            });
        }
        Ok(Inherited { passed })
    }

    /// Matches the passed sockets to `listeners` and `admin` (see the module's rules).
    pub fn assign(
        self,
        listeners: &[Entry<'_>],
        admin: Option<&ListenAddr>,
    ) -> Result<Assigned, ActivationError> {
        let mut assigned = Assigned {
            listeners: listeners.iter().map(|_| None).collect(),
            admin: None,
        };
        let mut by: Vec<Option<String>> = listeners.iter().map(|_| None).collect();
        let mut admin_by: Option<String> = None;
        for passed in self.passed {
            let candidates = || {
                listeners
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.activation != Activation::Off)
            };
            let by_name = passed
                .name
                .as_deref()
                .and_then(|name| candidates().find(|(_, l)| l.name == Some(name)));
            let slot = match by_name {
                Some((i, listen)) => {
                    if !passed.listener.is_at(listen.addr) {
                        return Err(ActivationError::Elsewhere {
                            setting: format!("listen[{i}]"),
                            passed: passed.describe(),
                            configured: listen.addr.to_string(),
                        });
                    }
                    Some(i)
                }
                None => candidates()
                    .find(|(_, l)| passed.listener.is_at(l.addr))
                    .map(|(i, _)| i),
            };
            let (setting, holder, place) = match slot {
                Some(i) => (
                    format!("listen[{i}]"),
                    &mut by[i],
                    &mut assigned.listeners[i],
                ),
                None => match admin {
                    Some(addr) if passed.listener.is_at(addr) => {
                        ("admin".to_owned(), &mut admin_by, &mut assigned.admin)
                    }
                    _ => return Err(ActivationError::NoEntry(passed.describe())),
                },
            };
            if let Some(first) = holder.take() {
                return Err(ActivationError::Twice {
                    setting,
                    first,
                    second: passed.describe(),
                });
            }
            *holder = Some(passed.describe());
            *place = Some(passed.listener);
        }
        for (i, listen) in listeners.iter().enumerate() {
            if listen.activation == Activation::Required && assigned.listeners[i].is_none() {
                return Err(ActivationError::Missing {
                    setting: format!("listen[{i}]"),
                    configured: listen.addr.to_string(),
                });
            }
        }
        Ok(assigned)
    }
}

fn take(
    fds: &mut listenfd::ListenFd,
    index: usize,
    fd: i32,
) -> Result<StdListener, ActivationError> {
    let not_listener = |reason: String| ActivationError::NotListener { fd, reason };
    let listener = match fds.take_unix_listener(index) {
        Ok(Some(l)) => {
            let path = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf));
            listening(&l).map_err(|e| not_listener(e.to_string()))?;
            StdListener::Unix(l, path)
        }
        Ok(None) => return Err(not_listener("already taken".to_owned())),
        Err(_) => match fds.take_tcp_listener(index) {
            Ok(Some(l)) => {
                listening(&l).map_err(|e| not_listener(e.to_string()))?;
                let addr = l.local_addr().map_err(|e| not_listener(e.to_string()))?;
                StdListener::Tcp(l, addr)
            }
            Ok(None) => return Err(not_listener("already taken".to_owned())),
            Err(e) => return Err(not_listener(e.to_string())),
        },
    };
    Ok(listener)
}

/// A socket passed with `Accept=yes` is one connection, not a listener.
fn listening(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    match nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::AcceptConn) {
        Ok(true) => Ok(()),
        Ok(false) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a socket that is not listening (Accept=yes passes connections)",
        )),
        Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_systemd() {
        assert!(check_name("docker").is_ok());
        assert!(check_name("/run/sockwarden/docker.sock").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
    }
}
