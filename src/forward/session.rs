//! Relaying BuildKit's `/session` as HTTP/2, so that the Dockerfile it carries is checked.
//!
//! After `POST /session` is upgraded, the daemon is the HTTP/2 (gRPC) client and the CLI the
//! server: the daemon calls the CLI's services (file sync, auth, secrets, ssh, health). Here
//! sockwarden is an HTTP/2 server toward the daemon and an HTTP/2 client toward the CLI, and
//! forwards each stream the daemon opens: its headers, body and trailers both ways, with each
//! side's flow control (a chunk's window is given back to its sender only once the chunk was
//! handed to the other side), resets passed on with their reason.
//!
//! One kind of call is read: `/moby.filesync.v1.FileSync/DiffCopy` with the gRPC metadata
//! `dir-name: dockerfile`, by which BuildKit's Dockerfile frontend reads the Dockerfile. Its
//! answer from the CLI is read as fsutil packets ([`fsutil::Capture`]), each file is checked
//! by [`DockerfileGate`] before the bytes that complete it move on, and a refusal ends the
//! call with an fsutil `ERR` packet and gRPC status `PERMISSION_DENIED`, whose message the CLI
//! prints. Any other method
//! for that directory is refused. Every other stream (the build context, auth, secrets, ssh,
//! health) is forwarded chunk by chunk, unread.

mod fsutil;

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use super::upgrade::{Counted, Counts};
use super::Session;
use crate::inspect::layer::session::DockerfileGate;
use crate::shutdown::Drain;

pub use fsutil::File;

/// Each stream's and the connection's receive windows (gRPC-go grows its own to about this).
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;

/// The most header bytes one block from the CLI may decode to (h2's default is 16 MiB).
const HEADER_LIST_LIMIT: u32 = 64 << 10;

/// The call by which the Dockerfile frontend reads a local directory, and the one that is not
/// read here.
const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";

/// The local directory the Dockerfile frontend reads the Dockerfile from.
const DOCKERFILE_DIR: &str = "dockerfile";

/// How long a refusal waits for the daemon's window (it reads without pause while it syncs).
const REFUSAL_SEND: std::time::Duration = std::time::Duration::from_secs(5);

/// gRPC status `PERMISSION_DENIED`.
const PERMISSION_DENIED: &str = "7";

/// Spawns the HTTP/2 relay of a BuildKit session. Its closing audit record is written when the
/// relay ends, however it ends.
pub fn spawn_relay(
    drain: &Drain,
    client: OnUpgrade,
    daemon: OnUpgrade,
    session: Session,
    gate: DockerfileGate,
) {
    let span = tracing::info_span!(
        parent: &crate::logging::request::parent(),
        "hijack",
        kind = "session-h2"
    );
    super::upgrade::spawn_recorded(drain, span, session, move |counts, forced| async move {
        relay(client, daemon, &forced, counts, Arc::new(gate)).await
    });
}

async fn relay(
    client: OnUpgrade,
    daemon: OnUpgrade,
    forced: &Drain,
    counts: Counts,
    gate: Arc<DockerfileGate>,
) -> &'static str {
    let started = Instant::now();
    let (client, daemon) = match tokio::try_join!(client, daemon) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return "error";
        }
    };
    let client = Counted::new(TokioIo::new(client), counts);
    let daemon = TokioIo::new(daemon);
    let ended = tokio::select! {
        r = serve(client, daemon, gate) => r,
        _ = forced.forced() => {
            tracing::info!("BuildKit session closed by shutdown");
            return "shutdown";
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    match ended {
        Ok(()) => {
            tracing::debug!(duration_ms, "BuildKit session ended");
            "complete"
        }
        Err(e) => {
            tracing::debug!(error = %e, duration_ms, "BuildKit session broke");
            "error"
        }
    }
}

/// Runs both HTTP/2 connections until either ends.
async fn serve(
    client: Counted<TokioIo<hyper::upgrade::Upgraded>>,
    daemon: TokioIo<hyper::upgrade::Upgraded>,
    gate: Arc<DockerfileGate>,
) -> Result<(), h2::Error> {
    let mut server = h2::server::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(daemon)
        .await?;
    let (to_client, client_conn) = h2::client::Builder::new()
        // The daemon asks; the CLI answers. A push from the CLI has no place here.
        .enable_push(false)
        // The CLI's answers carry gRPC metadata only: a header block is small.
        .max_header_list_size(HEADER_LIST_LIMIT)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(client)
        .await?;
    let mut client_conn = std::pin::pin!(client_conn);
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = server.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let to_client = to_client.clone();
                    let gate = gate.clone();
                    streams.spawn(
                        relay_stream(request, respond, to_client, gate).in_current_span(),
                    );
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            ended = &mut client_conn => return ended,
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
}

/// How a stream's relay ended early.
#[derive(Debug)]
enum Broke {
    /// An HTTP/2 error on one side; the other is reset with its reason.
    H2(h2::Error),
    /// The Dockerfile is refused (the gRPC message) or could not be read.
    Refused(String),
}

impl std::fmt::Display for Broke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broke::H2(e) => write!(f, "{e}"),
            Broke::Refused(message) => write!(f, "refused: {message}"),
        }
    }
}

impl From<h2::Error> for Broke {
    fn from(e: h2::Error) -> Broke {
        Broke::H2(e)
    }
}

/// Whether a request is the Dockerfile frontend's read of its `dockerfile` directory: any
/// `dir-name` value naming it counts.
fn reads_dockerfile_dir(headers: &HeaderMap) -> bool {
    headers
        .get_all("dir-name")
        .iter()
        .any(|v| v.as_bytes() == DOCKERFILE_DIR.as_bytes())
}

/// Relays one stream the daemon opened.
async fn relay_stream(
    request: Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    to_client: h2::client::SendRequest<Bytes>,
    gate: Arc<DockerfileGate>,
) {
    let inspect = reads_dockerfile_dir(request.headers());
    if inspect && request.uri().path() != DIFF_COPY {
        let reason = format!(
            "the Dockerfile is read with {}, which sockwarden cannot check",
            request.uri().path()
        );
        if let Err(message) = gate.unreadable(&reason) {
            refuse_head(&mut respond, &message);
            return;
        }
    }
    let (parts, body) = request.into_parts();
    let end = body.is_end_stream();
    let mut to_client = match to_client.ready().await {
        Ok(ready) => ready,
        Err(e) => {
            respond.send_reset(e.reason().unwrap_or(h2::Reason::REFUSED_STREAM));
            return;
        }
    };
    let (response, client_send) = match to_client.send_request(Request::from_parts(parts, ()), end)
    {
        Ok(pair) => pair,
        Err(e) => {
            respond.send_reset(e.reason().unwrap_or(h2::Reason::REFUSED_STREAM));
            return;
        }
    };
    let upward = async move {
        if !end {
            pump(body, client_send, None).await?;
        }
        Ok::<(), Broke>(())
    };
    let downward = async move {
        let response = match response.await {
            Ok(response) => response,
            Err(e) => {
                respond.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
                return Err(Broke::H2(e));
            }
        };
        let (parts, body) = response.into_parts();
        let end = body.is_end_stream();
        let send = respond.send_response(Response::from_parts(parts, ()), end)?;
        if end {
            return Ok(());
        }
        let capture = inspect.then(|| Inspect {
            capture: fsutil::Capture::default(),
            gate,
        });
        pump(body, send, capture).await
    };
    let mut upward = std::pin::pin!(upward);
    let mut downward = std::pin::pin!(downward);
    let mut upward_done = false;
    loop {
        tokio::select! {
            r = &mut upward, if !upward_done => {
                upward_done = true;
                // The CLI may end its side of a call (gRPC servers reset the request once
                // they answered) while its answer is still on the way to the daemon: that
                // answer is still delivered whole. A broken answer ends the stream below.
                if let Err(e) = r {
                    tracing::debug!(error = %e, "session stream: the daemon's side stopped");
                }
            }
            r = &mut downward => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "session stream broke (CLI to daemon)");
                }
                // Dropping the CLI's side resets it if it is still open.
                return;
            }
        }
    }
}

/// Answers a call the daemon made with a refusal, without asking the CLI.
fn refuse_head(respond: &mut h2::server::SendResponse<Bytes>, message: &str) {
    let mut response = Response::new(());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
        .headers_mut()
        .insert("grpc-status", HeaderValue::from_static(PERMISSION_DENIED));
    if let Ok(value) = HeaderValue::from_str(&grpc_message(message)) {
        response.headers_mut().insert("grpc-message", value);
    }
    if respond.send_response(response, true).is_err() {
        respond.send_reset(h2::Reason::CANCEL);
    }
}

/// Ends a refused `dockerfile` stream toward the daemon. First an fsutil `ERR` packet, as the
/// CLI's sender writes when it fails: the daemon's receiver returns its text as the build's
/// error the moment it reads it. A gRPC status alone ends the stream, and the end of a stream
/// cancels the daemon's read, which at times reported "context canceled" in place of the
/// refusal. Then the status, for any reader that is not fsutil's.
async fn refuse_stream(to: &mut SendStream<Bytes>, message: &str) {
    let packet = fsutil::error_message(message);
    if let Ok(Ok(())) = tokio::time::timeout(REFUSAL_SEND, send_all(to, packet)).await {
        let _ = to.send_trailers(refusal_trailers(message));
    }
}

/// The trailers of a refused call.
fn refusal_trailers(message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(PERMISSION_DENIED));
    if let Ok(value) = HeaderValue::from_str(&grpc_message(message)) {
        trailers.insert("grpc-message", value);
    }
    trailers
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn grpc_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The reading of a `dockerfile` stream.
struct Inspect {
    capture: fsutil::Capture,
    gate: Arc<DockerfileGate>,
}

/// Why a `dockerfile` stream stops.
enum Fail {
    /// It cannot be read as fsutil writes it.
    Unreadable(String),
    /// A file in it is refused (the gRPC message).
    Refused(String),
}

impl Inspect {
    /// Reads a chunk; returns what may move on now.
    async fn push(&mut self, chunk: &Bytes) -> Result<Vec<Bytes>, Fail> {
        let step = self.capture.push(chunk).map_err(Fail::Unreadable)?;
        self.gate.check(&step.files).await.map_err(Fail::Refused)?;
        Ok(step.release)
    }

    /// The message to end the call with, or `None` when the session's policy only records
    /// it (audit mode).
    fn refusal(&self, fail: Fail) -> Option<String> {
        match fail {
            Fail::Refused(message) => Some(message),
            Fail::Unreadable(reason) => self.gate.unreadable(&reason).err(),
        }
    }
}

/// Forwards a body (data, then trailers or its end) from one side to the other. With
/// `inspect`, the body is read and checked first, and refused with gRPC trailers.
async fn pump(
    mut from: RecvStream,
    mut to: SendStream<Bytes>,
    mut inspect: Option<Inspect>,
) -> Result<(), Broke> {
    loop {
        let chunk = match from.data().await {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                to.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
                return Err(Broke::H2(e));
            }
        };
        let len = chunk.len();
        let pieces = match inspect.as_mut() {
            None => vec![chunk],
            Some(i) => match i.push(&chunk).await {
                Ok(pieces) => pieces,
                Err(fail) => match i.refusal(fail) {
                    Some(message) => {
                        refuse_stream(&mut to, &message).await;
                        return Err(Broke::Refused(message));
                    }
                    // Audit mode: noted; what was held and the rest pass unread.
                    None => {
                        let mut held = std::mem::take(&mut i.capture).into_held();
                        held.push(chunk);
                        inspect = None;
                        held
                    }
                },
            },
        };
        for piece in pieces {
            send_all(&mut to, piece).await?;
        }
        let _ = from.flow_control().release_capacity(len);
    }
    let trailers = match from.trailers().await {
        Ok(trailers) => trailers,
        Err(e) => {
            to.send_reset(e.reason().unwrap_or(h2::Reason::CANCEL));
            return Err(Broke::H2(e));
        }
    };
    if let Some(i) = inspect.as_mut() {
        if let Err(reason) = i.capture.finish() {
            match i.refusal(Fail::Unreadable(reason)) {
                Some(message) => {
                    refuse_stream(&mut to, &message).await;
                    return Err(Broke::Refused(message));
                }
                None => {
                    for piece in std::mem::take(&mut i.capture).into_held() {
                        send_all(&mut to, piece).await?;
                    }
                }
            }
        }
    }
    match trailers {
        Some(trailers) => to.send_trailers(trailers)?,
        None => to.send_data(Bytes::new(), true)?,
    }
    Ok(())
}

/// Sends `data`, waiting for the receiver's window.
async fn send_all(to: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        to.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| to.poll_capacity(cx)).await {
            Some(granted) => granted?,
            // The stream is gone: the other side reset it.
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if granted == 0 {
            continue;
        }
        let n = granted.min(data.len());
        to.send_data(data.split_to(n), false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(grpc_message("a b"), "a b");
        assert_eq!(grpc_message("100%"), "100%25");
        assert_eq!(grpc_message("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn only_the_dockerfile_dir_is_read() {
        let mut h = HeaderMap::new();
        assert!(!reads_dockerfile_dir(&h));
        h.append("dir-name", HeaderValue::from_static("context"));
        assert!(!reads_dockerfile_dir(&h));
        h.append("dir-name", HeaderValue::from_static("dockerfile"));
        assert!(reads_dockerfile_dir(&h));
    }
}
