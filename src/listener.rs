//! Listening sockets: unix sockets (with file mode, group, stale-file handling), TCP, and TCP
//! with TLS and mandatory client certificates.
//!
//! A unix socket is bound under a temporary name, given its mode and group, and only then
//! renamed into place, so there is never a moment when it is reachable with the wrong
//! permissions. A socket file left by a dead process is replaced; one that a live process still
//! answers on is an error, so two proxies never silently steal each other's socket.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix socket file.
    Unix {
        /// The socket's path.
        path: PathBuf,
        /// File mode applied before the socket becomes reachable.
        mode: u32,
        /// Group owning the socket file, if not our own.
        group: Option<u32>,
    },
    /// A TCP address.
    Tcp(SocketAddr),
    /// A TCP address speaking TLS, with client certificates required.
    Tls {
        /// The address.
        addr: SocketAddr,
        /// Server certificate, key and client CA, loaded.
        tls: TlsSettings,
    },
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix { path, .. } => write!(f, "unix://{}", path.display()),
            ListenAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
            ListenAddr::Tls { addr, .. } => write!(f, "tcp://{addr} (tls)"),
        }
    }
}

pub mod activation;
pub mod framing;
pub mod tls;

pub use tls::{ClientCert, TlsSettings};

/// A bound listener, ready to accept.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket; `owned` identifies the file we created, for removal at shutdown (none
    /// for a socket systemd passed: its file is systemd's).
    Unix {
        /// The accepting socket.
        listener: UnixListener,
        /// The socket file we created.
        owned: Option<OwnedSocketFile>,
    },
    /// A TCP socket.
    Tcp(TcpListener),
    /// A TCP socket whose connections must complete a TLS handshake with a client certificate.
    Tls {
        /// The accepting socket.
        listener: TcpListener,
        /// The TLS configuration for each accepted connection's handshake.
        config: Arc<rustls::ServerConfig>,
    },
}

/// Who is on the other end of a connection, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A unix peer's credentials (SO_PEERCRED), captured when the connection was accepted.
    Unix {
        /// User id.
        uid: u32,
        /// Primary group id.
        gid: u32,
        /// Process id, when the kernel knows it.
        pid: Option<i32>,
    },
    /// A TCP peer's address.
    Tcp(SocketAddr),
    /// A TLS peer: its address and the client certificate it proved to hold.
    Tls {
        /// The peer's address.
        addr: SocketAddr,
        /// The verified client certificate.
        cert: Arc<ClientCert>,
    },
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Unix { uid, gid, pid } => {
                write!(f, "uid={uid} gid={gid}")?;
                if let Some(pid) = pid {
                    write!(f, " pid={pid}")?;
                }
                Ok(())
            }
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Tls { addr, cert } => write!(f, "{addr} cert={:?}", cert.subject),
        }
    }
}

/// Facts about the connection a request arrived on; put into every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The listener's address, as configured.
    pub listener: Arc<str>,
    /// The peer.
    pub peer: Peer,
    /// The client the peer was identified as; `None` refuses everything.
    pub client: Option<Arc<str>>,
    /// The connection's part of every audit record (listener, and the peer with what /proc
    /// told about it), written as JSON once per connection rather than once per request.
    pub audit_fields: Arc<[u8]>,
    /// The configuration generation `client` was identified under; after a reload the peer
    /// is identified again, request by request.
    pub generation: u64,
    /// The client's connection count, held while the connection (or the hijacked session it
    /// becomes) lives.
    pub slot: Option<Arc<crate::limits::ConnectionSlot>>,
    /// Set when the client was over its connection limit: every request is answered 429.
    pub over_limit: Option<crate::limits::Exceeded>,
    /// Set when the peer is the Docker daemon itself (or may be): the connection is never
    /// attributed to a client, not even after a reload (`identity::deputy`).
    pub from_daemon: bool,
}

/// An accepted connection of either kind.
#[derive(Debug)]
pub enum Stream {
    /// From a unix listener.
    Unix(UnixStream),
    /// From a TCP listener.
    Tcp(TcpStream),
    /// From a TLS listener, handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// Our side's address of a TCP or TLS connection.
    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Unix(_) => None,
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Tls(s) => s.get_ref().0.local_addr().ok(),
        }
    }
}

impl crate::splice::taken::MaybeSocket for Stream {
    fn socket(&self) -> Option<crate::splice::Socket<'_>> {
        match self {
            Stream::Unix(s) => Some(crate::splice::Socket::Unix(s)),
            Stream::Tcp(s) => Some(crate::splice::Socket::Tcp(s)),
            Stream::Tls(_) => None,
        }
    }
}

/// An accepted connection, possibly still owing its TLS handshake. The handshake runs in the
/// connection's own task ([`Accepted::establish`]), so a slow client never holds up accepts.
#[derive(Debug)]
pub enum Accepted {
    /// Ready to serve.
    Ready(Stream, Peer),
    /// A TCP connection on a TLS listener.
    Tls {
        /// The connection.
        stream: TcpStream,
        /// The peer's address.
        addr: SocketAddr,
        /// The listener's TLS configuration.
        config: Arc<rustls::ServerConfig>,
    },
}

impl Accepted {
    /// The peer's address or credentials as known before any handshake, for logging.
    pub fn peer_hint(&self) -> String {
        match self {
            Accepted::Ready(_, peer) => peer.to_string(),
            Accepted::Tls { addr, .. } => addr.to_string(),
        }
    }

    /// The same connection, registered with the current runtime's I/O driver. It was accepted
    /// on the listener's runtime and is served on a worker's (`workers`): left with the
    /// listener's driver, every readiness event would wake the listener's thread first, which
    /// would then wake the worker's.
    pub fn rehome(self) -> io::Result<Accepted> {
        Ok(match self {
            Accepted::Ready(Stream::Unix(s), peer) => {
                Accepted::Ready(Stream::Unix(UnixStream::from_std(s.into_std()?)?), peer)
            }
            Accepted::Ready(Stream::Tcp(s), peer) => {
                Accepted::Ready(Stream::Tcp(TcpStream::from_std(s.into_std()?)?), peer)
            }
            // Only `establish` makes these, on the serving runtime already.
            ready @ Accepted::Ready(Stream::Tls(_), _) => ready,
            Accepted::Tls {
                stream,
                addr,
                config,
            } => Accepted::Tls {
                stream: TcpStream::from_std(stream.into_std()?)?,
                addr,
                config,
            },
        })
    }

    /// Completes the TLS handshake (within `timeout`) if there is one, and reports the peer
    /// with its verified client certificate.
    pub async fn establish(self, timeout: Duration) -> io::Result<(Stream, Peer)> {
        match self {
            Accepted::Ready(stream, peer) => Ok((stream, peer)),
            Accepted::Tls {
                stream,
                addr,
                config,
            } => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })??;
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|der| ClientCert::parse(der))
                    // The verifier requires a certificate; this is only a parse failure.
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "client certificate cannot be parsed",
                        )
                    })?;
                Ok((
                    Stream::Tls(Box::new(tls)),
                    Peer::Tls {
                        addr,
                        cert: Arc::new(cert),
                    },
                ))
            }
        }
    }
}

impl Listener {
    /// Binds `addr`.
    pub async fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        match addr {
            ListenAddr::Unix { path, mode, group } => bind_unix(path, *mode, *group).await,
            ListenAddr::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            ListenAddr::Tls { addr, tls } => Ok(Listener::Tls {
                listener: TcpListener::bind(addr).await?,
                config: tls.config.clone(),
            }),
        }
    }

    /// Takes over a socket systemd passed for `addr` (see [`activation`]): made non-blocking
    /// and registered with the runtime; a unix socket's file is left as systemd made it.
    pub fn inherited(socket: activation::StdListener, addr: &ListenAddr) -> io::Result<Listener> {
        match socket {
            activation::StdListener::Unix(listener, path) => {
                listener.set_nonblocking(true)?;
                if let (ListenAddr::Unix { mode, group, .. }, Some(path)) = (addr, &path) {
                    if let Ok(meta) = std::fs::metadata(path) {
                        let actual = meta.mode() & 0o7777;
                        if actual != *mode || group.is_some_and(|g| g != meta.gid()) {
                            tracing::warn!(
                                path = %path.display(),
                                mode = format!("{actual:04o}"),
                                gid = meta.gid(),
                                configured_mode = format!("{mode:04o}"),
                                configured_group = ?group,
                                "socket passed by systemd: its SocketMode=/SocketGroup= differ from the entry's mode/group, and they are what applies"
                            );
                        }
                    }
                }
                Ok(Listener::Unix {
                    listener: UnixListener::from_std(listener)?,
                    owned: None,
                })
            }
            activation::StdListener::Tcp(listener, _) => {
                listener.set_nonblocking(true)?;
                let listener = TcpListener::from_std(listener)?;
                Ok(match addr {
                    ListenAddr::Tls { tls, .. } => Listener::Tls {
                        listener,
                        config: tls.config.clone(),
                    },
                    _ => Listener::Tcp(listener),
                })
            }
        }
    }

    /// Accepts one connection with its peer's identity (TLS: before the handshake).
    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                let cred = stream.peer_cred()?;
                let peer = Peer::Unix {
                    uid: cred.uid(),
                    gid: cred.gid(),
                    pid: cred.pid(),
                };
                Ok(Accepted::Ready(Stream::Unix(stream), peer))
            }
            Listener::Tcp(listener) => {
                let (stream, addr) = listener.accept().await?;
                // Small requests and interactive streams must not wait for Nagle.
                stream.set_nodelay(true)?;
                Ok(Accepted::Ready(Stream::Tcp(stream), Peer::Tcp(addr)))
            }
            Listener::Tls { listener, config } => {
                let (stream, addr) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Accepted::Tls {
                    stream,
                    addr,
                    config: config.clone(),
                })
            }
        }
    }

    /// The TCP address actually bound (useful with port 0).
    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) | Listener::Tls { listener: l, .. } => l.local_addr().ok(),
            Listener::Unix { .. } => None,
        }
    }
}

/// A socket file this process created. Removed by [`OwnedSocketFile::remove`] only if the
/// path still holds the same file, so a successor's socket is never deleted by mistake.
#[derive(Debug, Clone)]
pub struct OwnedSocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl OwnedSocketFile {
    /// Removes the socket file if it is still ours.
    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.dev() == self.dev && meta.ino() == self.ino {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove socket");
                }
            }
        }
    }
}

async fn bind_unix(path: &Path, mode: u32, group: Option<u32>) -> io::Result<Listener> {
    prepare_socket_path(path).await?;
    let temp = temp_socket_path(path, std::process::id());
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)?;
    let placed = (|| {
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(&temp, None, Some(gid))?;
        }
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    let meta = std::fs::symlink_metadata(path)?;
    Ok(Listener::Unix {
        listener,
        owned: Some(OwnedSocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        }),
    })
}

/// The socket is bound under a temporary name beside `path` (`.NAME.PID.tmp`) and renamed into
/// place once its mode and group are set.
fn temp_socket_path(path: &Path, pid: u32) -> PathBuf {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent.join(format!(".{file_name}.{pid}.tmp"))
}

/// The largest pid Linux hands out (`pid_max` is at most 2^22): the longest temporary name.
const PID_MAX: u32 = 1 << 22;

fn not_a_socket(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} exists and is not a socket", path.display()),
    )
}

/// What [`Listener::bind`] would fail with, found without binding anything that stays or
/// creating any file, for `sockwarden check`: a unix socket's directory must exist or be
/// creatable, and be writable; its path must not hold another kind of file; its group must
/// be one this user may give files to. A TCP address is bound and released at once; an address
/// in use is not reported (it may be the running server's, before a reload), nor a live socket.
pub fn preflight(addr: &ListenAddr) -> io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    match addr {
        ListenAddr::Unix { path, group, .. } => {
            // The temporary name must fit in sun_path (108 bytes with its NUL) too, whatever
            // serve's pid: otherwise serve fails as std does for a long path, or only sometimes.
            if temp_socket_path(path, PID_MAX).as_os_str().len() > 107 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path must be shorter than SUN_LEN",
                ));
            }
            // The nearest existing ancestor: the directory itself, or where serve would
            // create it (`create_dir_all`).
            let mut dir = path.parent().unwrap_or(Path::new("/"));
            while !dir.exists() {
                dir = dir.parent().unwrap_or(Path::new("/"));
            }
            if !dir.is_dir() {
                return Err(errno(nix::errno::Errno::ENOTDIR));
            }
            access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(errno)?;
            match std::fs::symlink_metadata(path) {
                Ok(meta) if !meta.file_type().is_socket() => return Err(not_a_socket(path)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(gid) = group {
                let gid = nix::unistd::Gid::from_raw(*gid);
                let may = nix::unistd::geteuid().is_root()
                    || nix::unistd::getegid() == gid
                    || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid));
                if !may {
                    return Err(errno(nix::errno::Errno::EPERM));
                }
            }
            Ok(())
        }
        ListenAddr::Tcp(addr) | ListenAddr::Tls { addr, .. } => {
            match std::net::TcpListener::bind(addr) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// Creates the parent directory if needed and clears a stale socket file.
async fn prepare_socket_path(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(not_a_socket(path));
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a running process", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing stale socket file");
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

// === impl Stream ===

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => match Pin::new(s.as_mut()).poll_read(cx, buf) {
                // The docker CLI half-closes a hijacked TLS session (`docker run -i`, stdin EOF)
                // by shutting down the raw TCP write side, without close_notify. Like Go's TLS
                // (which dockerd uses), take a TCP EOF between records as EOF, not an error.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    Poll::Ready(Ok(()))
                }
                other => other,
            },
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Shuts down the write side only: a hijacked session relies on this to carry half-close.
    /// TLS sends close_notify and then shuts down the TCP write side; reading goes on, so the
    /// client may keep sending (Go's TLS client keeps writing after close_notify).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_socket_is_replaced_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let addr = ListenAddr::Unix {
            path: path.clone(),
            mode: 0o640,
            group: None,
        };
        {
            // A std listener dropped without unlinking leaves a stale file behind.
            let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
            drop(stale);
        }
        let live = Listener::bind(&addr).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let err = Listener::bind(&addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        if let Listener::Unix {
            owned: Some(owned), ..
        } = &live
        {
            owned.remove();
        }
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn regular_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"data").unwrap();
        let addr = ListenAddr::Unix {
            path: path.clone(),
            mode: 0o600,
            group: None,
        };
        assert!(Listener::bind(&addr).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }
}
