//! Connections the Docker daemon itself makes to sockwarden's TCP listeners. A client can make
//! the daemon fetch a URL (a build's `ADD`, an import's `fromSrc`, a pull from a registry on
//! this host); if that URL is one of sockwarden's TCP listeners, the daemon's request would be
//! attributed to whichever client that listener's source address matches (a confused
//! deputy). The fetch rule (`inspect::fetch`) refuses such sources; this is the second line:
//! a TCP peer is looked up in the kernel's socket table, and a socket held by the daemon or a
//! process it started is never attributed to any client.
//!
//! How: the peer's socket is the entry of `/proc/net/tcp` (or `tcp6`) whose local address is
//! the peer's and whose remote address is ours. Not found: the peer is not in this network
//! namespace (another host, a container), so it is not the daemon. Found: its owner uid is
//! compared with the daemon's (SO_PEERCRED on the daemon's socket); a different uid is not
//! the daemon. Same uid: the daemon's process tree (its pid and every descendant, from
//! `/proc/*/stat`) is searched for the socket's inode among its open descriptors. Where
//! that cannot be read (sockwarden not running as root), the connection is refused as if it
//! were the daemon's: it cannot be shown not to be.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;

/// Who holds a TCP peer's socket, as far as it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not the daemon: attribute the connection as usual.
    Other,
    /// The daemon (pid) or a process it started.
    Daemon(i32),
    /// Could be the daemon and cannot be shown not to be (why).
    Unknown(String),
}

/// Looks up the process behind the TCP connection `peer` → `local` (our side), given the
/// daemon's unix socket. Blocking (reads /proc): run it off the async workers.
pub fn tcp_origin(local: SocketAddr, peer: SocketAddr, daemon_socket: &Path) -> Origin {
    let Some((uid, inode)) = find_socket(peer, local) else {
        return Origin::Other;
    };
    let (daemon_pid, daemon_uid) = match daemon_credentials(daemon_socket) {
        Ok(cred) => cred,
        // No daemon to ask: nothing of its can be connecting.
        Err(_) => return Origin::Other,
    };
    if uid != daemon_uid {
        return Origin::Other;
    }
    match holder(&process_tree(daemon_pid), inode) {
        Holder::Found(pid) => Origin::Daemon(pid),
        Holder::NotFound => Origin::Other,
        Holder::Unreadable => Origin::Unknown(format!(
            "the peer's socket belongs to uid {uid}, as the daemon's does, and the daemon's \
             descriptors cannot be read to tell them apart"
        )),
    }
}

/// Whether one of `pids` holds the socket `inode`, as far as their descriptors can be read.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    Found(i32),
    NotFound,
    Unreadable,
}

/// Searches the descriptors of `pids` for the socket `inode`. A process that has exited since
/// the tree was listed (its `/proc` entry gone) holds nothing and is skipped: the daemon's
/// containers come and go all the time. Any other failure to read (not root, a ptrace rule)
/// leaves the question open.
fn holder(pids: &[i32], inode: u64) -> Holder {
    let needle = format!("socket:[{inode}]");
    let mut unreadable = false;
    for pid in pids {
        let fds = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                unreadable = true;
                continue;
            }
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == needle.as_str()) {
                return Holder::Found(*pid);
            }
        }
    }
    if unreadable {
        Holder::Unreadable
    } else {
        Holder::NotFound
    }
}

/// The daemon's pid and uid: SO_PEERCRED on a fresh connection to its socket.
fn daemon_credentials(socket: &Path) -> std::io::Result<(i32, u32)> {
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    let cred =
        nix::sys::socket::getsockopt(&stream.as_fd(), nix::sys::socket::sockopt::PeerCredentials)
            .map_err(std::io::Error::from)?;
    Ok((cred.pid(), cred.uid()))
}

/// `pid` and every process descended from it.
fn process_tree(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(ppid) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
            {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while let Some(&p) = tree.get(i) {
        for &(child, parent) in &parents {
            if parent == p && !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    tree
}

/// The parent pid from `/proc/PID/stat` (`pid (comm) state ppid ...`; `comm` may hold
/// spaces and parentheses, so read after the last `)`).
fn parent_of(stat: &str) -> Option<i32> {
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The owner uid and inode of the socket whose local address is `ours` and remote is
/// `theirs`, from `/proc/net/tcp` and `/proc/net/tcp6`.
fn find_socket(ours: SocketAddr, theirs: SocketAddr) -> Option<(u32, u64)> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines()
                .skip(1)
                .find_map(|line| socket_line(line, ours, theirs))
        })
}

fn socket_line(line: &str, ours: SocketAddr, theirs: SocketAddr) -> Option<(u32, u64)> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let local = parse_addr(cols.get(1)?)?;
    let remote = parse_addr(cols.get(2)?)?;
    if !same(local, ours) || !same(remote, theirs) {
        return None;
    }
    Some((cols.get(7)?.parse().ok()?, cols.get(9)?.parse().ok()?))
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a.ip()) == canon(b.ip())
}

/// `0100007F:1F90` (IPv4, the address as the kernel's 32-bit word in host order) or 32 hex
/// digits (IPv6, four such words).
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(|w| w.to_ne_bytes());
    let ip = match ip.len() {
        8 => IpAddr::from(word(ip)?),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_parse() {
        let a = parse_addr("0100007F:1F90").unwrap();
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        let b = parse_addr("0000000000000000FFFF00000100007F:0050").unwrap();
        assert!(same(b, "127.0.0.1:80".parse().unwrap()));
        assert_eq!(parent_of("12 (a b) c) S 7 12 12"), Some(7));
    }

    #[test]
    fn own_loopback_connection_is_found_and_is_not_the_daemon() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        let found = find_socket(peer, local);
        assert!(found.is_some(), "the test's own socket is in /proc/net/tcp");
        // A socket of this process is in this process's tree, never the daemon's: with this
        // process standing in for the daemon, it is found.
        let (_, inode) = found.unwrap();
        let me = std::process::id() as i32;
        let fds: Vec<_> = std::fs::read_dir(format!("/proc/{me}/fd"))
            .unwrap()
            .flatten()
            .collect();
        assert!(fds.iter().any(|fd| std::fs::read_link(fd.path())
            .is_ok_and(|t| t.to_string_lossy() == format!("socket:[{inode}]"))));
        drop(client);
        // Not a socket of this host: someone else.
        assert_eq!(find_socket("10.255.255.1:1".parse().unwrap(), local), None);
    }

    #[test]
    fn a_process_that_has_exited_holds_nothing_and_leaves_no_doubt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let (_, inode) = find_socket(peer, listener.local_addr().unwrap()).unwrap();
        // A child that has exited and been reaped: its /proc entry is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id() as i32;
        child.wait().unwrap();
        let me = std::process::id() as i32;
        assert_eq!(holder(&[gone, me], inode), Holder::Found(me));
        assert_eq!(holder(&[gone], inode), Holder::NotFound);
        assert_eq!(holder(&[], inode), Holder::NotFound);
    }
}
