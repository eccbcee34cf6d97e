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

use crate::route::Hijack;
use crate::shutdown::Drain;

/// Buffer size for each direction; large enough for `docker cp`-sized streams.
const BUFFER: usize = 64 * 1024;

/// Spawns the relay between the client's and the daemon's upgraded connections.
pub fn spawn_bridge(drain: &Drain, kind: Hijack, client: OnUpgrade, daemon: OnUpgrade) {
    let span = tracing::debug_span!("hijack", kind = ?kind);
    let forced = drain.clone();
    drain.spawn(
        async move {
            let started = Instant::now();
            let (client, daemon) = match tokio::try_join!(client, daemon) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut daemon = TokioIo::new(daemon);
            let copied = tokio::select! {
                r = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut daemon, BUFFER, BUFFER) => r,
                _ = forced.forced() => {
                    tracing::info!("hijacked session closed by shutdown");
                    return;
                }
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            match copied {
                Ok((to_daemon, to_client)) => {
                    tracing::debug!(to_daemon, to_client, duration_ms, "hijacked session ended")
                }
                Err(e) => tracing::debug!(error = %e, duration_ms, "hijacked session broke"),
            }
        }
        .instrument(span),
    );
}
