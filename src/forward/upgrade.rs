//! Relaying a hijacked connection (attach, exec start, BuildKit's `/session` and `/grpc`).
//!
//! Both halves are taken only after the daemon answered `101`, so nothing the client sends
//! after its request head reaches the daemon before the daemon agreed to switch protocols.
//! `copy_bidirectional` carries half-close: when the client shuts its write side (stdin EOF in
//! `docker run -i`), the daemon's side is shut for writing and output keeps flowing back until
//! the daemon closes.

use std::time::Instant;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use super::Session;
use crate::route::Hijack;
use crate::shutdown::Drain;

/// Buffer size for each direction; large enough for `docker cp`-sized streams.
const BUFFER: usize = 64 * 1024;

/// Spawns the relay between the client's and the daemon's upgraded connections. The session's
/// closing audit record is written when the relay ends, however it ends.
pub fn spawn_bridge(
    drain: &Drain,
    kind: Hijack,
    client: OnUpgrade,
    daemon: OnUpgrade,
    session: Session,
) {
    // Info level, so that the relay keeps its request's and connection's spans as parents
    // whatever the log level.
    let span = tracing::info_span!("hijack", kind = ?kind);
    let forced = drain.clone();
    drain.spawn(
        async move {
            let _open = session.trail.as_ref().map(|t| t.metrics().session_opened());
            let (to_daemon, to_client, end) = relay(client, daemon, &forced).await;
            if let Some(trail) = &session.trail {
                crate::audit::layer::close_session(trail, to_daemon, to_client, end);
            }
            drop(session.slot);
        }
        .instrument(span),
    );
}

/// Relays until either side closes; returns bytes each way and how it ended.
async fn relay(client: OnUpgrade, daemon: OnUpgrade, forced: &Drain) -> (u64, u64, &'static str) {
    let started = Instant::now();
    let (client, daemon) = match tokio::try_join!(client, daemon) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return (0, 0, "error");
        }
    };
    let mut client = Counted::new(TokioIo::new(client));
    let mut daemon = TokioIo::new(daemon);
    let copied = tokio::select! {
        r = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut daemon, BUFFER, BUFFER) => r,
        _ = forced.forced() => {
            tracing::info!("hijacked session closed by shutdown");
            return (client.read, client.written, "shutdown");
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match copied {
        Ok((to_daemon, to_client)) => {
            tracing::debug!(to_daemon, to_client, duration_ms, "hijacked session ended");
            (to_daemon, to_client, "complete")
        }
        Err(e) => {
            tracing::debug!(error = %e, duration_ms, "hijacked session broke");
            (client.read, client.written, "error")
        }
    }
}

pin_project_lite::pin_project! {
    /// Counts the bytes through the client's side, so a session that breaks or is cut by
    /// shutdown still reports what it carried.
    struct Counted<T> {
        #[pin]
        inner: T,
        read: u64,
        written: u64,
    }
}

impl<T> Counted<T> {
    fn new(inner: T) -> Self {
        Counted {
            inner,
            read: 0,
            written: 0,
        }
    }
}

impl<T: tokio::io::AsyncRead> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        *this.read += (buf.filled().len() - before) as u64;
        result
    }
}

impl<T: tokio::io::AsyncWrite> tokio::io::AsyncWrite for Counted<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &result {
            *this.written += *n as u64;
        }
        result
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
