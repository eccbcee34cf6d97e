//! A classic build's context, inspected as it streams to the daemon: each chunk is read
//! (decompressed, its tar entries followed, its Dockerfile parsed and checked) *before* it is
//! forwarded, and the last chunk is held back until the body has ended and the reading is
//! complete. A refused Dockerfile aborts the upstream body before it completes; the client
//! gets the refusal.
//!
//! A truncated context builds nothing: the classic builder reads the whole context before it
//! runs any instruction. moby v20.10 `builder/dockerfile/builder.go` `BuildManager.Build`
//! calls `remotecontext.Detect`, whose `newArchiveRemote` → `FromArchive`
//! (`builder/remotecontext/archive.go`) untars the complete stream (`chrootarchive.Untar`
//! through `tarsum`) and returns its error; a body that ends early fails that read, so
//! `Detect` fails and `Builder.build` never runs. Only then is the Dockerfile opened and
//! parsed (`withDockerfileFromContext`).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;

use super::fetch::{check_names, local_facts};
use crate::body::{self, BodyError, ProxyBody};
use crate::context::Trail;
use crate::error::ProxyError;
use crate::inspect::context::{clean, ContextScanner, Found};
use crate::inspect::dockerfile::{check_dockerfile, DockerfileRules};
use crate::inspect::Violation;
use crate::policy::layer::Authorized;

/// Whether a build's body is a context the daemon reads a Dockerfile from: a classic build
/// without a `remote` context (BuildKit's Dockerfile comes over its session).
pub(super) fn scans(authorized: &Authorized) -> bool {
    let query = authorized.normalized.query.pairs();
    authorized.policy.inspection
        && authorized.operation.info.fetch == Some(crate::route::Fetch::Build)
        && crate::inspect::common::first(query, "version") != Some("2")
        && !crate::inspect::build::fetches_remote_context(query)
}

/// The Dockerfile paths the daemon may read: the `dockerfile` parameter cleaned (default
/// `Dockerfile`), and for `Dockerfile` also `dockerfile`, which `withDockerfileFromContext`
/// falls back to when `Dockerfile` does not exist.
fn candidates(query: &[(String, String)]) -> Vec<String> {
    let given = crate::inspect::common::first(query, "dockerfile")
        .filter(|v| !v.is_empty())
        .unwrap_or("Dockerfile");
    let mut out = vec![clean(given)];
    if given == "Dockerfile" {
        out.push("dockerfile".into());
    }
    out
}

fn build_args(query: &[(String, String)]) -> std::collections::BTreeMap<String, Option<String>> {
    let Some(text) = crate::inspect::common::first(query, "buildargs").filter(|v| !v.is_empty())
    else {
        return Default::default();
    };
    serde_json::from_str(text).unwrap_or_default()
}

/// Splits the build body: the body to forward upstream, and the future that reads the
/// client's body into it (to run beside the upstream call). The future yields the refusal
/// when the context is refused.
pub(super) fn stream(
    body: ProxyBody,
    authorized: &Authorized,
    trail: Option<Arc<Trail>>,
) -> (ProxyBody, impl Future<Output = Option<ProxyError>> + Send) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(2);
    let upstream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let upstream = body::boxed(http_body_util::StreamBody::new(upstream));
    let authorized = authorized.clone();
    (upstream, pump(body, tx, authorized, trail))
}

struct Scan {
    scanner: ContextScanner,
    build_args: std::collections::BTreeMap<String, Option<String>>,
    allow_remote: bool,
}

impl Scan {
    async fn check(&mut self, found: Vec<Found>) -> Result<(), Violation> {
        for f in found {
            let local = local_facts();
            let rules = DockerfileRules {
                build_args: &self.build_args,
                allow_remote: self.allow_remote,
                local: &local,
            };
            let names = check_dockerfile(&f.path, &f.data, rules)?;
            check_names(&names, &local).await?;
        }
        Ok(())
    }

    async fn push(&mut self, chunk: &[u8]) -> Result<(), Violation> {
        let found = self.scanner.push(chunk).map_err(context_violation)?;
        self.check(found).await
    }

    async fn finish(&mut self) -> Result<(), Violation> {
        let found = self.scanner.finish().map_err(context_violation)?;
        self.check(found).await
    }
}

fn context_violation(reason: String) -> Violation {
    Violation {
        field: "(build context)".into(),
        reason,
        setting: None,
        value: None,
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BodyError>>;

async fn pump(
    mut body: ProxyBody,
    tx: Sender,
    authorized: Authorized,
    trail: Option<Arc<Trail>>,
) -> Option<ProxyError> {
    let query = authorized.normalized.query.pairs();
    let mut scan = Some(Scan {
        scanner: ContextScanner::new(candidates(query)),
        build_args: build_args(query),
        allow_remote: authorized.policy.inspect.build.allow_remote,
    });
    let mut held: Option<Frame<Bytes>> = None;
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Err(e)) => {
                // The client's body broke: the daemon's must too.
                let _ = tx.send(Err(e)).await;
                return None;
            }
            Some(Ok(frame)) => frame,
        };
        if let (Some(s), Some(data)) = (scan.as_mut(), frame.data_ref()) {
            if let Err(violation) = s.push(data).await {
                match refuse(&authorized, trail.as_deref(), violation) {
                    Some(refusal) => return Some(abort(tx, body, refusal).await),
                    None => scan = None,
                }
            }
        }
        if let Some(previous) = held.replace(frame) {
            if tx.send(Ok(previous)).await.is_err() {
                // The daemon stopped reading (it answered already).
                return None;
            }
        }
    }
    if let Some(s) = scan.as_mut() {
        if let Err(violation) = s.finish().await {
            if let Some(refusal) = refuse(&authorized, trail.as_deref(), violation) {
                return Some(abort(tx, body, refusal).await);
            }
        }
    }
    if let Some(last) = held {
        let _ = tx.send(Ok(last)).await;
    }
    None
}

/// The refusal to answer with, or `None` in audit mode (noted as would-deny, forwarded).
fn refuse(
    authorized: &Authorized,
    trail: Option<&Trail>,
    violation: Violation,
) -> Option<ProxyError> {
    if authorized.dry_run {
        if let Some(trail) = trail {
            trail.note_inspection(None, Some((authorized.operation.name, violation)));
        }
        return None;
    }
    Some(super::refusal(authorized, &violation))
}

/// Breaks the upstream body (the daemon's read of the context fails, so it builds nothing),
/// then reads what the client still sends, so that it reads the refusal.
async fn abort(tx: Sender, body: ProxyBody, refusal: ProxyError) -> ProxyError {
    let _ = tx
        .send(Err(BodyError("build context refused by sockwarden".into())))
        .await;
    drop(tx);
    body::drain_refused(body).await;
    refusal
}
