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
use crate::inspect::dockerfile::{base_images, check_dockerfile, DockerfileRules};
use crate::inspect::Violation;
use crate::isolation::owners::{ImageOwner, Owners};
use crate::isolation::pins::{self, Pins};
use crate::isolation::Tenant;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;
use crate::refusal::{Isolated, Refusal, RefusalKind};
use crate::route::ObjectKind;

/// Whether a build's body is a context the daemon reads a Dockerfile from: a classic build
/// without a `remote` context (BuildKit's Dockerfile comes over its session).
pub(super) fn scans(authorized: &Authorized) -> bool {
    let query = authorized.normalized.query.pairs();
    authorized.policy.inspection
        && authorized.operation.info.fetch == Some(crate::route::Fetch::Build)
        && crate::inspect::common::first(query, "version") != Some("2")
        && !crate::inspect::build::fetches_remote_context(query)
}

/// Whether a build's Dockerfile is one sockwarden cannot read although the classic builder
/// reads it: a classic build of a context the daemon fetches itself (`remote`). Under
/// isolation such a build is refused (its `FROM` cannot be checked).
pub(super) fn unscannable_under_isolation(authorized: &Authorized) -> bool {
    let query = authorized.normalized.query.pairs();
    authorized.operation.info.fetch == Some(crate::route::Fetch::Build)
        && crate::inspect::common::first(query, "version") != Some("2")
        && crate::inspect::build::fetches_remote_context(query)
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
    tenancy: Option<TenantImages>,
) -> (ProxyBody, impl Future<Output = Option<ProxyError>> + Send) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(2);
    let upstream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let upstream = body::boxed(http_body_util::StreamBody::new(upstream));
    let authorized = authorized.clone();
    (upstream, pump(body, tx, authorized, trail, tenancy))
}

/// Under isolation: the tenant whose build it is, so that the images its Dockerfile builds
/// from are checked (another tenant's answers as missing, as everywhere else).
#[derive(Debug, Clone)]
pub(super) struct TenantImages {
    /// The daemon.
    pub lookup: Lookup,
    /// The owner label's key.
    pub label: Arc<str>,
    /// The tenant.
    pub tenant: Tenant,
    /// The build's pins: the tenant's own images it uses stay until it has ended.
    pub pins: Arc<Pins>,
}

/// Why the context is refused.
pub(super) enum Refused {
    /// Inspection (enforced, or only noted in audit mode).
    Violation(Violation),
    /// Isolation: always enforced.
    Isolation(ProxyError),
}

impl From<Violation> for Refused {
    fn from(violation: Violation) -> Refused {
        Refused::Violation(violation)
    }
}

struct Scan {
    scanner: ContextScanner,
    build_args: std::collections::BTreeMap<String, Option<String>>,
    allow_remote: bool,
    tenancy: Option<TenantImages>,
    /// Under isolation: the images the Dockerfiles found so far build from, checked again
    /// when the context has ended (just before the daemon reads its Dockerfile).
    images: Vec<(usize, String)>,
    /// Of those, the ones that must exist when the build starts ([`must_exist`]).
    later: Vec<(usize, String)>,
}

impl Scan {
    async fn check(&mut self, found: Vec<Found>, authorized: &Authorized) -> Result<(), Refused> {
        for f in found {
            if let Some(tenancy) = &self.tenancy {
                // Isolation reads the images first, on its own: whatever the fetch rule says
                // (and in audit mode too), an image it cannot know is refused.
                let images = base_images(&f.path, &f.data, &self.build_args)
                    .map_err(|v| isolation_violation(authorized, v))?;
                check_images(tenancy, authorized, &images).await?;
                let pulls = authorized.normalized.query.bool("pull").unwrap_or(false);
                let later = must_exist(&f.data, &images, pulls);
                check_present(tenancy, authorized, &f.path, &later).await?;
                self.images.extend(images);
                self.later.extend(later);
            }
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

    /// A context sockwarden cannot read through is refused under isolation in either mode.
    fn unreadable(&self, authorized: &Authorized, reason: String) -> Refused {
        let violation = context_violation(reason);
        match self.tenancy {
            Some(_) => isolation_violation(authorized, violation),
            None => Refused::Violation(violation),
        }
    }

    async fn push(&mut self, chunk: &[u8], authorized: &Authorized) -> Result<(), Refused> {
        let found = match self.scanner.push(chunk) {
            Ok(found) => found,
            Err(reason) => return Err(self.unreadable(authorized, reason)),
        };
        self.check(found, authorized).await
    }

    async fn finish(&mut self, authorized: &Authorized) -> Result<(), Refused> {
        let found = match self.scanner.finish() {
            Ok(found) => found,
            Err(reason) => return Err(self.unreadable(authorized, reason)),
        };
        self.check(found, authorized).await?;
        // The images checked when the Dockerfile streamed past are checked again now: the
        // context may have taken long to send, and a name may have changed hands since.
        if let Some(tenancy) = &self.tenancy {
            check_images(tenancy, authorized, &self.images).await?;
            check_present(tenancy, authorized, "Dockerfile", &self.later).await?;
        }
        Ok(())
    }
}

/// The images a classic build names that must exist when it starts, under isolation: every
/// one the daemon resolves by name only when its step runs — a later stage's `FROM` and any
/// `COPY --from` (after the tenant's own `RUN` steps, however long they take), and the first
/// `FROM` too unless the build pulls (`pull=1`: the daemon then pulls the image, which takes
/// the name from whoever holds it, and uses what it pulled). An `ONBUILD` line's image is left
/// out: it runs in another build, which checks it then.
fn must_exist(dockerfile: &[u8], images: &[(usize, String)], pulls: bool) -> Vec<(usize, String)> {
    let lines = crate::inspect::dockerfile::instructions(dockerfile)
        .map(|(lines, _)| lines)
        .unwrap_or_default();
    let word = |no: usize| {
        lines
            .iter()
            .find(|(n, _)| *n == no)
            .and_then(|(_, line)| line.split_whitespace().next())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let first_from = lines.iter().find_map(|(no, line)| {
        let word = line.split_whitespace().next().unwrap_or("");
        word.eq_ignore_ascii_case("from").then_some(*no)
    });
    images
        .iter()
        .filter(|(line, _)| !(pulls && Some(*line) == first_from) && word(*line) != "onbuild")
        .cloned()
        .collect()
}

/// Under isolation, an image a build step names must exist when the build starts
/// ([`must_exist`]). A name that is missing now could be taken by another tenant's image
/// before the daemon resolves it: refused, saying to pull it first. A name that
/// exists stays with its holder: no tenant can re-point another's or a shared image's name.
async fn check_present(
    tenancy: &TenantImages,
    authorized: &Authorized,
    file: &str,
    later: &[(usize, String)],
) -> Result<(), Refused> {
    let owners = Owners {
        lookup: &tenancy.lookup,
        label: &tenancy.label,
        tenant: tenancy.tenant.label_value(),
    };
    for (line, image) in later {
        let missing = match owners.image(image).await {
            Ok(owner) => owner == ImageOwner::Missing,
            // Not a reference the daemon reads: its own error, when it parses the Dockerfile.
            Err(crate::lookup::LookupError::Daemon { status, .. })
                if (400..500).contains(&status) =>
            {
                false
            }
            Err(e) => {
                return Err(Refused::Isolation(ProxyError::BadUpstream(format!(
                    "isolation could not check ownership: {e}"
                ))))
            }
        };
        if missing {
            return Err(isolation_violation(
                authorized,
                Violation {
                    field: format!("{file}:{line}"),
                    reason: format!(
                        "{image:?} is not on the daemon: a build step's image is resolved only \
                         when that step runs, when the name could be another tenant's; pull it \
                         first (a first FROM may also be pulled by the build: --pull)"
                    ),
                    setting: None,
                    value: Some(image.clone()),
                },
            ));
        }
    }
    Ok(())
}

/// A violation that stands in the way of isolation's check: enforced in either mode.
pub(super) fn isolation_violation(authorized: &Authorized, violation: Violation) -> Refused {
    let violation = Violation {
        reason: format!(
            "{} (isolation: the images a build uses must be known)",
            violation.reason
        ),
        ..violation
    };
    Refused::Isolation(super::refusal(authorized, &violation))
}

/// The images a tenant's Dockerfile builds from must be its own or shared ones: another
/// tenant's answers as missing. Every name is pinned before it is resolved, and the tenant's
/// removals in flight are waited for, so that its own images stay until the build has ended
/// ([`crate::isolation::pins`]).
pub(super) async fn check_images(
    tenancy: &TenantImages,
    authorized: &Authorized,
    images: &[(usize, String)],
) -> Result<(), Refused> {
    let owners = Owners {
        lookup: &tenancy.lookup,
        label: &tenancy.label,
        tenant: tenancy.tenant.label_value(),
    };
    let mut sources: Vec<String> = Vec::new();
    for (_, image) in images {
        // The images its `ONBUILD` triggers copy from run in this build: held the same way
        // (one level: a trigger's own source image runs no triggers here).
        for source in trigger_sources(&tenancy.lookup, image).await? {
            if !sources.contains(&source) && !images.iter().any(|(_, i)| *i == source) {
                sources.push(source);
            }
        }
    }
    let all: Vec<&String> = images
        .iter()
        .map(|(_, i)| i)
        .chain(sources.iter())
        .collect();
    for image in &all {
        tenancy.pins.name(image);
    }
    pins::barrier(&tenancy.label, tenancy.tenant.label_value()).await;
    for image in all {
        let owner = match owners.image(image).await {
            Ok(owner) => owner,
            // Not a reference the daemon reads: its own error, when it parses the Dockerfile.
            Err(crate::lookup::LookupError::Daemon { status, .. })
                if (400..500).contains(&status) =>
            {
                ImageOwner::Missing
            }
            Err(e) => {
                return Err(Refused::Isolation(ProxyError::BadUpstream(format!(
                    "isolation could not check ownership: {e}"
                ))))
            }
        };
        match owner {
            ImageOwner::Own(id) => tenancy.pins.id(&id),
            ImageOwner::Other => {
                return Err(Refused::Isolation(ProxyError::Denied(Box::new(Refusal {
                    operation: authorized.operation.name,
                    method: authorized.method.clone(),
                    path: authorized.normalized.path.clone(),
                    policy: Some(authorized.policy.name.clone()),
                    rule: Arc::from(format!("{}.isolation", authorized.policy.name)),
                    kind: RefusalKind::Isolation(Isolated::NotOwned {
                        kind: ObjectKind::Image,
                        name: image.clone(),
                    }),
                }))));
            }
            ImageOwner::Shared(_) | ImageOwner::Missing => {}
        }
    }
    Ok(())
}

/// The images the `ONBUILD` triggers of image `name` copy from (`COPY --from=X`, `ADD
/// --from=X`, as the trigger was written): they run in the build that starts `FROM` it. A
/// source named through a variable cannot be resolved here and is refused. A missing image or
/// a name the daemon cannot read has no triggers (the daemon fails the build itself).
async fn trigger_sources(lookup: &Lookup, name: &str) -> Result<Vec<String>, Refused> {
    if name.starts_with('/') {
        return Ok(Vec::new());
    }
    let bytes = match lookup.image(name).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Vec::new()),
        Err(crate::lookup::LookupError::Daemon { status, .. }) if (400..500).contains(&status) => {
            return Ok(Vec::new())
        }
        Err(e) => {
            return Err(Refused::Isolation(ProxyError::BadUpstream(format!(
                "isolation could not check ownership: {e}"
            ))))
        }
    };
    let triggers: Vec<String> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/Config/OnBuild")
                .and_then(|t| serde_json::from_value(t.clone()).ok())
        })
        .unwrap_or_default();
    let mut sources = Vec::new();
    for trigger in &triggers {
        if let Some(source) = trigger_source(trigger).map_err(|reason| {
            Refused::Violation(Violation {
                field: format!("{name} ONBUILD"),
                reason,
                setting: None,
                value: Some(trigger.clone()),
            })
        })? {
            sources.push(source);
        }
    }
    Ok(sources)
}

/// The image (or stage) an `ONBUILD` trigger copies from, if it is a `COPY` or `ADD` with
/// `--from`.
fn trigger_source(trigger: &str) -> Result<Option<String>, String> {
    let trigger = trigger.trim();
    let (cmd, rest) = trigger
        .split_once(char::is_whitespace)
        .unwrap_or((trigger, ""));
    if !cmd.eq_ignore_ascii_case("copy") && !cmd.eq_ignore_ascii_case("add") {
        return Ok(None);
    }
    let (flags, _) = crate::inspect::dockerfile::builder_flags(rest);
    // Flag names as the builder reads them; the last one given counts.
    let Some(from) = flags.iter().rev().find_map(|f| {
        f.get(..7)
            .filter(|name| name.eq_ignore_ascii_case("--from="))
            .map(|_| &f[7..])
    }) else {
        return Ok(None);
    };
    if from.contains('$') {
        return Err(format!(
            "a base image's ONBUILD trigger copies from {from:?}, which sockwarden cannot resolve \
             (isolation)"
        ));
    }
    Ok(Some(from.to_owned()))
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
    tenancy: Option<TenantImages>,
) -> Option<ProxyError> {
    let query = authorized.normalized.query.pairs();
    let mut scan = Some(Scan {
        scanner: ContextScanner::new(candidates(query)),
        build_args: build_args(query),
        allow_remote: authorized.policy.inspect.build.allow_remote,
        tenancy,
        images: Vec::new(),
        later: Vec::new(),
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
            if let Err(refused) = s.push(data, &authorized).await {
                match refuse(&authorized, trail.as_deref(), refused) {
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
        if let Err(refused) = s.finish(&authorized).await {
            if let Some(refusal) = refuse(&authorized, trail.as_deref(), refused) {
                return Some(abort(tx, body, refusal).await);
            }
        }
    }
    if let Some(last) = held {
        let _ = tx.send(Ok(last)).await;
    }
    None
}

/// The refusal to answer with, or `None` in audit mode (noted as would-deny, forwarded);
/// isolation's is always enforced.
fn refuse(authorized: &Authorized, trail: Option<&Trail>, refused: Refused) -> Option<ProxyError> {
    let violation = match refused {
        Refused::Isolation(error) => return Some(error),
        Refused::Violation(violation) => violation,
    };
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

#[cfg(test)]
mod trigger_tests {
    use super::trigger_source;

    #[test]
    fn a_trigger_names_the_image_it_copies_from() {
        for (trigger, want) in [
            ("COPY --from=secret /a /b", Some("secret")),
            ("copy --chown=0:0 --from=x:1 /a /b", Some("x:1")),
            ("COPY --FROM=Upper /a /b", Some("Upper")),
            ("ADD --from=y /a /b", Some("y")),
            ("COPY --from=a --from=b /x /y", Some("b")),
            ("  COPY\t--from=\"q\" /a /b", Some("q")),
            ("COPY /a /b", None),
            ("RUN --mount=from=z true", None),
            ("ENV A=--from=w", None),
            ("COPY", None),
        ] {
            assert_eq!(
                trigger_source(trigger).unwrap().as_deref(),
                want,
                "{trigger}"
            );
        }
        for trigger in ["COPY --from=$X /a /b", "COPY --from=${X:-y} /a /b"] {
            assert!(trigger_source(trigger).is_err(), "{trigger}");
        }
    }
}
