//! An upgraded connection taken back from hyper: the connection sockwarden handed it (its
//! own stream type) and the bytes hyper had already read past the last head, so that a
//! hijacked session can be relayed on the sockets themselves ([`super::splice`]). Where the
//! connection is not of the expected type it stays hyper's `Upgraded`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Socket;

/// A connection that may be a plain socket underneath (not TLS).
pub trait MaybeSocket {
    /// The socket, when the connection is one.
    fn socket(&self) -> Option<Socket<'_>>;
}

/// A connection a side can hold: a byte stream both ways that may be a plain socket.
pub trait Connection: MaybeSocket + AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: MaybeSocket + AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// One side of a hijacked session.
pub enum Side<T> {
    /// The connection itself, and the bytes already read from it.
    Taken(T, Bytes),
    /// Not of the expected type: hyper's.
    Upgraded(Upgraded),
}

impl<T: Connection> Side<T> {
    /// Takes `upgraded` back if hyper was handed a `TokioIo<W>`, with `unwrap` giving the
    /// connection out of `W`.
    pub fn take<W>(upgraded: Upgraded, unwrap: impl FnOnce(W) -> T) -> Side<T>
    where
        W: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        match upgraded.downcast::<TokioIo<W>>() {
            Ok(parts) => Side::Taken(unwrap(parts.io.into_inner()), parts.read_buf),
            Err(upgraded) => Side::Upgraded(upgraded),
        }
    }

    /// The socket and the bytes already read, when the side is a plain socket.
    pub fn socket(&self) -> Option<(Socket<'_>, &[u8])> {
        match self {
            Side::Taken(io, pending) => io.socket().map(|s| (s, pending.as_ref())),
            Side::Upgraded(_) => None,
        }
    }

    /// The side as a byte stream (the bytes already read first), for copying.
    pub fn into_stream(self) -> Box<dyn Stream> {
        match self {
            Side::Taken(io, pending) => Box::new(Prefixed { pending, inner: io }),
            Side::Upgraded(upgraded) => Box::new(TokioIo::new(upgraded)),
        }
    }
}

/// A byte stream both ways.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection whose first reads give back the bytes read from it before.
struct Prefixed<T> {
    pending: Bytes,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            buf.put_slice(&self.pending[..n]);
            self.pending.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_read_before_come_first_then_the_connection() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut prefixed = Prefixed {
            pending: Bytes::from_static(b"early "),
            inner: a,
        };
        b.write_all(b"later").await.expect("write");
        drop(b);
        let mut got = Vec::new();
        prefixed.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"early later");
    }

    #[tokio::test]
    async fn a_small_read_takes_the_pending_bytes_piece_by_piece() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let mut prefixed = Prefixed {
            pending: Bytes::from_static(b"abcdef"),
            inner: a,
        };
        let mut two = [0u8; 2];
        prefixed.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"ab");
        let mut rest = Vec::new();
        prefixed.read_to_end(&mut rest).await.expect("read");
        assert_eq!(rest, b"cdef");
    }
}
