//! Relaying a hijacked connection (attach, exec start, BuildKit's `/session` and `/grpc`).
//!
//! Both halves are taken only after the daemon answered `101`, so nothing the client sends
//! after its request head reaches the daemon before the daemon agreed to switch protocols.
//! Half-close carries: when the client shuts its write side (stdin EOF in `docker run -i`),
//! the daemon's side is shut for writing and output keeps flowing back until the daemon
//! closes. When both sides are plain sockets (unix or TCP, not TLS) the bytes are moved inside
//! the kernel ([`crate::splice`]); otherwise they are copied (`copy_bidirectional`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use std::io;

use hyper::upgrade::OnUpgrade;
use tracing::Instrument;

use super::Session;
use crate::listener::framing::FramingWatch;
use crate::listener::Stream;
use crate::route::Hijack;
use crate::shutdown::Drain;
use crate::splice::{self, taken::Connection, taken::Side};

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
    let span =
        tracing::info_span!(parent: &crate::logging::request::parent(), "hijack", kind = ?kind);
    spawn_recorded(drain, span, session, move |counts, forced| async move {
        relay(client, daemon, &forced, counts).await
    });
}

/// Spawns `relay` (given the counters of the client's side and the drain) inside `span`, and
/// writes the session's closing audit record with what it carried when it ends, however it
/// ends; the session's connection slot is held until then.
pub(super) fn spawn_recorded<F, Fut>(drain: &Drain, span: tracing::Span, session: Session, relay: F)
where
    F: FnOnce(Counts, Drain) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = &'static str> + Send,
{
    let forced = drain.clone();
    drain.spawn(
        async move {
            let _open = session.trail.as_ref().map(|t| t.metrics().session_opened());
            let counts = Counts::default();
            let end = match &session.ending {
                None => relay(counts.clone(), forced).await,
                Some(ending) => tokio::select! {
                    end = relay(counts.clone(), forced) => end,
                    () = ending.ended() => {
                        tracing::info!(
                            "BuildKit session ended: the build that names it failed \
                             (the CLI would otherwise wait on it)"
                        );
                        "build_failed"
                    }
                },
            };
            if let Some(trail) = &session.trail {
                let (to_daemon, to_client) = counts.get();
                crate::audit::layer::close_session(trail, to_daemon, to_client, end);
            }
            drop(session.slot);
        }
        .instrument(span),
    );
}

/// Relays until either side closes; returns how it ended.
async fn relay(
    client: OnUpgrade,
    daemon: OnUpgrade,
    forced: &Drain,
    counts: Counts,
) -> &'static str {
    let started = Instant::now();
    let (client, daemon) = match tokio::try_join!(client, daemon) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return "error";
        }
    };
    let client = Side::take(client, FramingWatch::<Stream>::into_inner);
    let daemon = crate::upstream::taken(daemon);
    let how = if client.socket().is_some() && daemon.socket().is_some() {
        "splice"
    } else {
        "copy"
    };
    let copied = tokio::select! {
        r = carry(client, daemon, counts) => r,
        _ = forced.forced() => {
            tracing::info!("hijacked session closed by shutdown");
            return "shutdown";
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match copied {
        Ok((to_daemon, to_client)) => {
            tracing::debug!(
                to_daemon,
                to_client,
                duration_ms,
                relay = how,
                "hijacked session ended"
            );
            "complete"
        }
        Err(e) => {
            tracing::debug!(error = %e, duration_ms, relay = how, "hijacked session broke");
            "error"
        }
    }
}

/// Carries a session both ways until both sides have ended: inside the kernel when both are
/// plain sockets ([`splice`]), by copying otherwise. `(to the daemon, to the client)`.
async fn carry<C: Connection, D: Connection>(
    client: Side<C>,
    daemon: Side<D>,
    counts: Counts,
) -> io::Result<(u64, u64)> {
    if let (Some((c, c_early)), Some((d, d_early))) = (client.socket(), daemon.socket()) {
        let (up, down) = (counts.clone(), counts.clone());
        return splice::relay(
            splice::Direction {
                from: c,
                to: d,
                pending: c_early,
            },
            splice::Direction {
                from: d,
                to: c,
                pending: d_early,
            },
            move |n| {
                up.to_daemon.fetch_add(n, Ordering::Relaxed);
            },
            move |n| {
                down.to_client.fetch_add(n, Ordering::Relaxed);
            },
        )
        .await;
    }
    let mut client = Counted::new(client.into_stream(), counts);
    let mut daemon = daemon.into_stream();
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut daemon, BUFFER, BUFFER).await
}

/// Bytes through the client's side of a hijacked connection, shared with whoever writes the
/// session's record (the connection itself may be owned by another task, as HTTP/2's is).
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    to_daemon: Arc<AtomicU64>,
    to_client: Arc<AtomicU64>,
}

impl Counts {
    /// Bytes to the daemon and to the client so far.
    pub(super) fn get(&self) -> (u64, u64) {
        (
            self.to_daemon.load(Ordering::Relaxed),
            self.to_client.load(Ordering::Relaxed),
        )
    }
}

pin_project_lite::pin_project! {
    /// Counts the bytes through the client's side, so a session that breaks or is cut by
    /// shutdown still reports what it carried.
    pub(super) struct Counted<T> {
        #[pin]
        inner: T,
        counts: Counts,
    }
}

impl<T> Counted<T> {
    pub(super) fn new(inner: T, counts: Counts) -> Self {
        Counted { inner, counts }
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
        let n = (buf.filled().len() - before) as u64;
        this.counts.to_daemon.fetch_add(n, Ordering::Relaxed);
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
            this.counts
                .to_client
                .fetch_add(*n as u64, Ordering::Relaxed);
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
