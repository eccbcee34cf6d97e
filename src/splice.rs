//! Relaying a hijacked connection inside the kernel: `splice(2)` moves the bytes from one
//! socket into a pipe and from the pipe into the other socket, so they never come up into
//! sockwarden's memory (on Linux 6.5+ a unix socket takes the pipe's pages without copying
//! them). Used when both sides of an upgraded connection are plain sockets (unix or TCP, no
//! TLS); anything else is relayed by copying (`crate::forward`'s hijack relay). [`taken`]
//! takes the connections back from hyper.
//!
//! Each direction has its own pipe and runs until its source ends (its write side is then
//! shut on the destination: half-close carries, as `copy_bidirectional`'s does) or fails; the
//! relay ends when both directions have ended, or at the first error. The pipe is emptied
//! before the next read, so a would-block answer to a read is always the socket's (never a
//! full pipe's), which keeps the runtime's readiness bookkeeping true.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

pub mod taken;

/// Most bytes moved by one `splice` call (and the pipe's size, where the system allows it).
const CHUNK: usize = 1 << 20;

/// The send buffer asked for on each socket a relay writes to: a pipe's worth, so one splice
/// can hand the whole pipe on. A socket's default (`net.core.wmem_default`, ~208 KiB) took a
/// 1 MiB pipe in several calls, each a wake-up of the reader and of the relay: a 256 MiB
/// `exec` stream went ~3,250 MiB/s through the relay against ~4,450-4,850 with this (stub
/// upstream, medians of 8-10 alternating runs; ~4,000 direct). The kernel caps it at
/// `net.core.wmem_max` (and doubles it for its own bookkeeping); the bytes held stay bounded
/// per relayed session.
const SEND_BUFFER: usize = CHUNK;

/// A socket the relay can splice: the tokio socket behind an upgraded connection.
#[derive(Debug, Clone, Copy)]
pub enum Socket<'a> {
    /// A unix stream socket.
    Unix(&'a UnixStream),
    /// A TCP socket.
    Tcp(&'a TcpStream),
}

impl Socket<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Unix(s) => s.as_fd(),
            Socket::Tcp(s) => s.as_fd(),
        }
    }

    async fn ready(&self, interest: Interest) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.ready(interest).await.map(drop),
            Socket::Tcp(s) => s.ready(interest).await.map(drop),
        }
    }

    fn try_io(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<usize>,
    ) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.try_io(interest, f),
            Socket::Tcp(s) => s.try_io(interest, f),
        }
    }

    /// Writes `bytes` whole (bytes read before the relay began).
    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let written = match self {
                Socket::Unix(s) => s.try_write(bytes),
                Socket::Tcp(s) => s.try_write(bytes),
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready(Interest::WRITABLE).await?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Asks for a larger send buffer (see [`SEND_BUFFER`]). Best effort: a refusal only means
    /// more, smaller splices.
    fn widen_send_buffer(&self) {
        let _ = nix::sys::socket::setsockopt(
            &self.fd(),
            nix::sys::socket::sockopt::SndBuf,
            &SEND_BUFFER,
        );
    }

    fn shutdown_write(&self) -> io::Result<()> {
        nix::sys::socket::shutdown(self.fd().as_raw_fd(), nix::sys::socket::Shutdown::Write)
            .map_err(io::Error::from)
    }
}

/// One direction: what was already read from `from` (sent first), then everything `from`
/// sends until it ends. `moved` is told each count of bytes as it is delivered.
pub struct Direction<'a> {
    /// The source.
    pub from: Socket<'a>,
    /// The destination.
    pub to: Socket<'a>,
    /// Bytes of `from` read before the relay began (a hijack's early bytes).
    pub pending: &'a [u8],
}

/// Relays both directions until both have ended; the bytes each delivered (`a`'s, `b`'s).
pub async fn relay(
    a: Direction<'_>,
    b: Direction<'_>,
    moved_a: impl FnMut(u64),
    moved_b: impl FnMut(u64),
) -> io::Result<(u64, u64)> {
    tokio::try_join!(one_way(a, moved_a), one_way(b, moved_b))
}

async fn one_way(direction: Direction<'_>, mut moved: impl FnMut(u64)) -> io::Result<u64> {
    let Direction { from, to, pending } = direction;
    to.write_all(pending).await?;
    moved(pending.len() as u64);
    let mut total = pending.len() as u64;
    let (pipe_out, pipe_in) = pipe()?;
    to.widen_send_buffer();
    loop {
        // The pipe is empty here: a would-block is the source's.
        let n = loop {
            let read = from.try_io(Interest::READABLE, || {
                splice(from.fd(), pipe_in.as_fd(), CHUNK)
            });
            match read {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    from.ready(Interest::READABLE).await?
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            to.shutdown_write()?;
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            let written = to.try_io(Interest::WRITABLE, || {
                splice(pipe_out.as_fd(), to.fd(), left)
            });
            match written {
                Ok(m) => {
                    left -= m;
                    total += m as u64;
                    moved(m as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    to.ready(Interest::WRITABLE).await?
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A non-blocking pipe (read end, write end), as large as allowed up to [`CHUNK`].
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (out, inp) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    // A smaller pipe only means more calls.
    let _ = nix::fcntl::fcntl(inp.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(CHUNK as i32));
    Ok((out, inp))
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    nix::fcntl::splice(
        from,
        None,
        to,
        None,
        len,
        SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A relay between two socket pairs: (client end, relay's client side, relay's daemon
    /// side, daemon end).
    fn pairs() -> (UnixStream, UnixStream, UnixStream, UnixStream) {
        let (client, near) = UnixStream::pair().expect("pair");
        let (far, daemon) = UnixStream::pair().expect("pair");
        (client, near, far, daemon)
    }

    /// The relay between the client's side `near` and the daemon's side `far`, nothing read
    /// before it, its counts ignored.
    async fn plain_relay(near: &UnixStream, far: &UnixStream) -> io::Result<(u64, u64)> {
        let direction = |from, to| Direction {
            from: Socket::Unix(from),
            to: Socket::Unix(to),
            pending: b"",
        };
        relay(direction(near, far), direction(far, near), |_| {}, |_| {}).await
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_whole_in_order_with_half_close() {
        let (mut client, near, far, mut daemon) = pairs();
        let up = pattern(24 << 20, 1);
        let down = pattern(9 << 20, 7);
        let relay = tokio::spawn(async move {
            let (mut to_daemon, mut to_client) = (0u64, 0u64);
            let result = relay(
                Direction {
                    from: Socket::Unix(&near),
                    to: Socket::Unix(&far),
                    pending: b"early-",
                },
                Direction {
                    from: Socket::Unix(&far),
                    to: Socket::Unix(&near),
                    pending: b"",
                },
                |n| to_daemon += n,
                |n| to_client += n,
            )
            .await;
            (result.expect("relay"), to_daemon, to_client)
        });
        let (up2, down2) = (up.clone(), down.clone());
        let client_side = tokio::spawn(async move {
            client.write_all(&up2).await.expect("write");
            // Half-close: the daemon sees the end, and its answer still comes back.
            client.shutdown().await.expect("shutdown");
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("read");
            assert_eq!(got.len(), down2.len());
            assert!(got == down2, "the daemon's bytes changed on the way");
        });
        let mut got = Vec::new();
        daemon.read_to_end(&mut got).await.expect("read");
        let mut expected = b"early-".to_vec();
        expected.extend_from_slice(&up);
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the client's bytes changed on the way");
        daemon.write_all(&down).await.expect("write");
        daemon.shutdown().await.expect("shutdown");
        client_side.await.expect("client");
        let ((a, b), to_daemon, to_client) = relay.await.expect("join");
        assert_eq!((a, b), (expected.len() as u64, down.len() as u64));
        assert_eq!((to_daemon, to_client), (a, b));
    }

    /// What `SO_SNDBUF` reads back after asking for `asked`: the kernel caps the request at
    /// `net.core.wmem_max` and doubles it.
    fn granted(asked: usize) -> usize {
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .expect("wmem_max")
            .trim()
            .parse()
            .expect("a number");
        2 * asked.min(max)
    }

    fn send_buffer(socket: &UnixStream) -> usize {
        nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::SndBuf).expect("SO_SNDBUF")
    }

    #[tokio::test]
    async fn both_sockets_written_to_get_a_pipes_worth_of_send_buffer() {
        let (mut client, near, far, mut daemon) = pairs();
        let default = send_buffer(&near);
        let relay = tokio::spawn(async move {
            let result = plain_relay(&near, &far);
            // Both directions have begun once a byte crossed each way.
            let sizes = async {
                let mut byte = [0u8; 1];
                client.write_all(b"u").await.expect("write");
                daemon.read_exact(&mut byte).await.expect("read");
                daemon.write_all(b"d").await.expect("write");
                client.read_exact(&mut byte).await.expect("read");
                let sizes = (send_buffer(&far), send_buffer(&near));
                drop((client, daemon));
                sizes
            };
            let (result, sizes) = tokio::join!(result, sizes);
            result.expect("relay");
            sizes
        });
        let (to_daemon, to_client) = relay.await.expect("join");
        assert_eq!(to_daemon, granted(SEND_BUFFER), "default was {default}");
        assert_eq!(to_client, granted(SEND_BUFFER), "default was {default}");
    }

    #[tokio::test]
    async fn a_side_that_breaks_ends_the_relay_with_an_error() {
        let (client, near, far, daemon) = pairs();
        let relay = tokio::spawn(async move { plain_relay(&near, &far).await });
        // The daemon goes away while the client keeps sending.
        drop(daemon);
        let mut client = client;
        let payload = pattern(8 << 20, 3);
        let _ = client.write_all(&payload).await;
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), relay)
            .await
            .expect("the relay ended")
            .expect("join");
        assert!(ended.is_err(), "{ended:?}");
    }
}
