//! The byte stream to the daemon: its unix socket or a TCP connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::config::UpstreamAddr;
use crate::error::BoxError;

/// A connection to the daemon.
#[derive(Debug)]
pub(super) enum UpstreamIo {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl UpstreamIo {
    /// Connects within `timeout`: a daemon whose accept backlog is full must give a 502, not
    /// a request that hangs forever.
    pub(super) async fn connect(
        addr: &UpstreamAddr,
        timeout: Duration,
    ) -> Result<UpstreamIo, BoxError> {
        let connecting = async {
            match addr {
                UpstreamAddr::Unix(path) => UnixStream::connect(path).await.map(UpstreamIo::Unix),
                UpstreamAddr::Tcp(host_port) => {
                    let stream = TcpStream::connect(host_port.as_str()).await?;
                    stream.set_nodelay(true)?;
                    Ok(UpstreamIo::Tcp(stream))
                }
            }
        };
        match tokio::time::timeout(timeout, connecting).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(format!("connecting took longer than {timeout:?}").into()),
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Unix(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Unix(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamIo::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Unix(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Unix(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl crate::splice::taken::MaybeSocket for UpstreamIo {
    fn socket(&self) -> Option<crate::splice::Socket<'_>> {
        Some(match self {
            UpstreamIo::Unix(s) => crate::splice::Socket::Unix(s),
            UpstreamIo::Tcp(s) => crate::splice::Socket::Tcp(s),
        })
    }
}
