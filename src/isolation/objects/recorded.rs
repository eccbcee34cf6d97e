//! The daemon's answer to a build, commit or import sockwarden labelled for a tenant: the ID of
//! the image it made is recorded in the image ledger ([`crate::isolation::ledger`]) as the
//! tenant's. Build and import answers stream: each piece is passed on as it comes and read by
//! the ledger's scanner on the way ([`crate::isolation::ledger::scan`]); the record is
//! appended and synced to disk before the answer's end is passed on. A commit's answer is one
//! short JSON object, read whole (bounded) and passed on once recorded, since the client stops
//! reading at its end.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited};

use super::super::layer::Isolating;
use super::super::ledger::scan::{Made, Scanner};
use super::super::ledger::{self, Ledger};
use crate::body::{self, BodyError, ProxyBody};
use crate::error::ProxyError;
use crate::lookup::Lookup;
use crate::route::{Admit, ImageMaker};

/// Largest commit answer read (the daemon's is `{"Id":"sha256:..."}`).
const COMMIT_LIMIT: usize = 64 << 10;

/// What made the image, for the request `isolating` describes (`None`: no image to record).
pub fn made(isolating: &Isolating) -> Option<Made> {
    let authorized = &isolating.authorized;
    match authorized.operation.info.tenancy.admit()? {
        Admit::MakesImage(ImageMaker::Build) => Some(Made::Build {
            quiet: authorized.normalized.query.bool("q").unwrap_or(false),
        }),
        Admit::MakesImage(ImageMaker::Import) => Some(Made::Import),
        Admit::MakesImage(ImageMaker::Commit) => Some(Made::Commit),
        _ => None,
    }
}

/// Whose records one answer writes.
struct Recorder {
    ledger: Arc<Ledger>,
    lookup: Lookup,
    owner_label: Arc<str>,
    tenant: String,
    op: &'static str,
}

impl Recorder {
    async fn record(&self, id: &str) -> Result<(), ledger::LedgerError> {
        let recorded = ledger::adopt::record(
            &self.ledger,
            &self.lookup,
            &self.owner_label,
            id,
            &self.tenant,
            self.op,
        )
        .await;
        match &recorded {
            Ok(()) => {
                tracing::debug!(image = id, tenant = %self.tenant, op = self.op, "image recorded")
            }
            Err(e) => crate::logging::request::in_span(|| {
                tracing::error!(
                    image = id,
                    tenant = %self.tenant,
                    error = %e,
                    "the image made for a tenant could not be recorded in the image ledger: it \
                     stays the tenant's until sockwarden restarts"
                )
            }),
        }
        recorded
    }
}

/// The answer as the tenant gets it, with the image it made recorded.
pub async fn recorded(
    isolating: &Isolating,
    response: Response<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Some(made) = made(isolating) else {
        return Ok(response);
    };
    let Some(ledger) = ledger::global() else {
        return Ok(response);
    };
    if !response.status().is_success() {
        return Ok(response);
    }
    let recorder = Recorder {
        ledger: Arc::clone(ledger),
        lookup: isolating.lookup.clone(),
        owner_label: isolating.owner_label.clone(),
        tenant: isolating.tenant.label_value().to_owned(),
        op: isolating.authorized.operation.name,
    };
    let (mut parts, body) = response.into_parts();
    if made == Made::Commit {
        let bytes = Limited::new(body, COMMIT_LIMIT)
            .collect()
            .await
            .map_err(|e| ProxyError::BadUpstream(format!("commit answer not readable: {e}")))?
            .to_bytes();
        let mut scanner = Scanner::new(made);
        scanner.push(&bytes);
        if let Some(id) = scanner.finish() {
            recorder.record(&id).await.map_err(|e| {
                ProxyError::BadUpstream(format!(
                    "the committed image {id} could not be recorded as this tenant's: {e}"
                ))
            })?;
        }
        return Ok(Response::from_parts(parts, body::boxed(Full::new(bytes))));
    }
    // The end of the body is the end of the answer (a length would end it before the record).
    parts.headers.remove(header::CONTENT_LENGTH);
    let state = Streaming {
        body,
        scanner: Some(Scanner::new(made)),
        recorder,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    });
    Ok(Response::from_parts(
        parts,
        body::boxed(http_body_util::StreamBody::new(stream)),
    ))
}

/// A build's or import's answer passing, read on the way.
struct Streaming {
    body: ProxyBody,
    /// `None` once the answer broke: nothing is recorded from it.
    scanner: Option<Scanner>,
    recorder: Recorder,
    done: bool,
}

impl Streaming {
    async fn next(&mut self) -> Option<Result<Frame<Bytes>, BodyError>> {
        if self.done {
            return None;
        }
        match self.body.frame().await {
            Some(Ok(frame)) => {
                if let (Some(scanner), Some(data)) = (self.scanner.as_mut(), frame.data_ref()) {
                    scanner.push(data);
                }
                Some(Ok(frame))
            }
            Some(Err(e)) => {
                self.scanner = None;
                self.done = true;
                Some(Err(e))
            }
            None => {
                self.done = true;
                let id = self.scanner.take().and_then(Scanner::finish)?;
                match self.recorder.record(&id).await {
                    Ok(()) => None,
                    // Said in the answer's own terms: the CLI prints it and fails.
                    Err(e) => {
                        let message = format!(
                            "sockwarden: the image {id} was made but could not be recorded as \
                             this tenant's (it is until sockwarden restarts): {e}"
                        );
                        let line = serde_json::json!({
                            "errorDetail": { "message": message },
                            "error": message,
                        });
                        let mut bytes = line.to_string().into_bytes();
                        bytes.extend_from_slice(b"\r\n");
                        Some(Ok(Frame::data(Bytes::from(bytes))))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> Lookup {
        Lookup::unreachable()
    }

    /// A body fed by the test, piece by piece.
    fn fed() -> (tokio::sync::mpsc::UnboundedSender<Bytes>, ProxyBody) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
        });
        (tx, body::boxed(http_body_util::StreamBody::new(stream)))
    }

    #[tokio::test]
    async fn pieces_pass_at_once_and_the_record_comes_before_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image-owners");
        std::fs::write(&path, b"").expect("write");
        let ledger = Arc::new(Ledger::open(&path).expect("open"));
        let id = format!("sha256:{}", "5e".repeat(32));
        let (tx, body) = fed();
        let mut streaming = Streaming {
            body,
            scanner: Some(Scanner::new(Made::Build { quiet: false })),
            recorder: Recorder {
                ledger: Arc::clone(&ledger),
                lookup: lookup(),
                owner_label: Arc::from("sockwarden.owner"),
                tenant: "uid:7".into(),
                op: "image.build",
            },
            done: false,
        };
        let line = format!("{{\"aux\":{{\"ID\":\"{id}\"}}}}\r\n");
        let (first, second) = line.split_at(20);
        for piece in [first, second, "{\"stream\":\"Successfully built\\n\"}\r\n"] {
            tx.send(Bytes::from(piece.to_owned())).expect("send");
            // Each piece is passed on as it comes, the answer still open.
            let got = streaming.next().await.expect("a piece").expect("data");
            assert_eq!(got.into_data().expect("data"), piece.as_bytes());
            assert!(!ledger.has(&id, "uid:7"), "recorded before the end");
        }
        drop(tx);
        // The end: recorded (in memory and in the file) before it is passed on.
        assert!(streaming.next().await.is_none());
        assert!(ledger.has(&id, "uid:7"));
        let reread = Ledger::open(&path).expect("reopen");
        assert!(reread.has(&id, "uid:7"));
        assert!(streaming.next().await.is_none());
    }

    #[tokio::test]
    async fn a_failed_or_broken_answer_records_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image-owners");
        std::fs::write(&path, b"").expect("write");
        let ledger = Arc::new(Ledger::open(&path).expect("open"));
        let id = format!("sha256:{}", "6f".repeat(32));
        let (tx, body) = fed();
        let mut streaming = Streaming {
            body,
            scanner: Some(Scanner::new(Made::Import)),
            recorder: Recorder {
                ledger: Arc::clone(&ledger),
                lookup: lookup(),
                owner_label: Arc::from("sockwarden.owner"),
                tenant: "uid:7".into(),
                op: "image.import",
            },
            done: false,
        };
        for piece in [
            format!("{{\"status\":\"{id}\"}}\r\n"),
            "{\"errorDetail\":{\"message\":\"x\"},\"error\":\"x\"}\r\n".to_owned(),
        ] {
            tx.send(Bytes::from(piece)).expect("send");
            streaming.next().await.expect("a piece").expect("data");
        }
        drop(tx);
        assert!(streaming.next().await.is_none());
        assert!(!ledger.has(&id, "uid:7"));
        assert_eq!(std::fs::read(&path).expect("read"), b"");
    }
}
