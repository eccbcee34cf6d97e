//! The Dockerfile of a BuildKit build, checked as it comes over the build's session
//! (`/session`, see `forward::session`) with the same checks as a classic build's
//! (`inspect::dockerfile`, the fetch rule, and isolation's image check), plus what only
//! BuildKit reads: a `# syntax=` directive or `BUILDKIT_SYNTAX` build argument (another
//! frontend, pulled and run by the daemon) and `RUN --mount=from=` an image.
//!
//! The build arguments are those of the `POST /build` requests that name the session
//! (`session=<id>`, the id the session announced in `X-Docker-Expose-Session-Uuid`):
//! [`register_build`] records each while it runs, and the Dockerfile must pass with the
//! arguments of every one of them. A Dockerfile read for a session no running build names is
//! refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use super::context::{check_images, isolation_violation, Refused, TenantImages};
use super::fetch::{check_names, local_facts};
use crate::context::Trail;
use crate::error::ProxyError;
use crate::inspect::dockerfile::{
    base_images, builder_flags, check_dockerfile, instructions, DockerfileRules,
};
use crate::inspect::Violation;
use crate::isolation::Tenant;
use crate::lookup::Lookup;
use crate::policy::layer::Authorized;

/// The header by which the CLI names its session.
pub const SESSION_ID_HEADER: &str = "x-docker-expose-session-uuid";

/// The header by which the CLI names the daemon's cache of its local directories.
pub const SHARED_KEY_HEADER: &str = "x-docker-expose-session-sharedkey";

/// Gives a session a shared key never used before, whatever the CLI sent. The daemon keeps
/// the directories a session sent (the context, the Dockerfile's) under this key and, when a
/// later session with the same key announces a file with the same metadata, reuses its copy
/// instead of asking for it. A reused file is never read here: a Dockerfile checked with one
/// build's arguments (or an earlier policy, or when the image it names was another's) would be
/// built with another's, and a client could reach what another client sent. With a fresh key
/// the daemon asks for every file, so each build's Dockerfile is read and checked with its own
/// arguments. The cost: a build's context is sent whole every time (no incremental transfer).
pub fn fresh_shared_key(headers: &mut http::HeaderMap) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let mut nonce = [0u8; 16];
    if getrandom::getrandom(&mut nonce).is_err() {
        // Unique within this process is what matters; across restarts the start time differs.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        nonce = now.to_le_bytes();
    }
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(value) = http::HeaderValue::from_str(&format!("sw-{hex}-{n:x}")) {
        headers.insert(SHARED_KEY_HEADER, value);
    }
}

/// A file a session's `dockerfile` directory sent whole (read by `forward::session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path in the directory, as announced.
    pub path: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The build argument by which BuildKit's Dockerfile frontend runs another frontend.
const SYNTAX_ARG: &str = "BUILDKIT_SYNTAX";

/// What a running BuildKit build brings to its session's Dockerfile check.
#[derive(Debug)]
struct Build {
    build_args: BTreeMap<String, Option<String>>,
    allow_remote: bool,
}

type Builds = HashMap<String, Vec<(u64, Arc<Build>)>>;

fn builds() -> &'static Mutex<(u64, Builds)> {
    static BUILDS: OnceLock<Mutex<(u64, Builds)>> = OnceLock::new();
    BUILDS.get_or_init(|| Mutex::new((0, HashMap::new())))
}

fn lock() -> std::sync::MutexGuard<'static, (u64, Builds)> {
    builds().lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a build registered for its session until dropped (when its response has ended).
#[derive(Debug)]
pub struct BuildGuard {
    session: String,
    id: u64,
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        let mut all = lock();
        if let Some(list) = all.1.get_mut(&self.session) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                all.1.remove(&self.session);
            }
        }
    }
}

/// The session a BuildKit build names (`version=2` and a non-empty `session`, the first
/// values, as the daemon reads them); `None` for any other request.
pub fn buildkit_session<'q>(
    operation: &crate::route::Operation,
    query: &'q [(String, String)],
) -> Option<&'q str> {
    if operation.info.fetch != Some(crate::route::Fetch::Build) {
        return None;
    }
    let first = |key: &str| crate::inspect::common::first(query, key);
    if first("version") != Some("2") {
        return None;
    }
    first("session").filter(|s| !s.is_empty())
}

/// Registers a BuildKit build (`version=2` with a `session`) that is about to be forwarded.
pub fn register_build(authorized: &Authorized) -> Option<BuildGuard> {
    let query = authorized.normalized.query.pairs();
    let session = buildkit_session(&authorized.operation, query)?;
    let build_args = crate::inspect::common::first(query, "buildargs")
        .filter(|v| !v.is_empty())
        .map(|text| serde_json::from_str(text).unwrap_or_default())
        .unwrap_or_default();
    Some(running(
        session,
        Build {
            build_args,
            allow_remote: authorized.policy.inspect.build.allow_remote,
        },
    ))
}

/// Records `build` as running for `session` until the guard is dropped.
fn running(session: &str, build: Build) -> BuildGuard {
    let mut all = lock();
    all.0 += 1;
    let id = all.0;
    all.1
        .entry(session.to_owned())
        .or_default()
        .push((id, Arc::new(build)));
    BuildGuard {
        session: session.to_owned(),
        id,
    }
}

/// Whether a running build names `session`.
pub fn session_in_use(session: &str) -> bool {
    lock().1.contains_key(session)
}

/// For other modules' tests: a build that names a session while the guard lives.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    pub fn running(session: &str) -> BuildGuard {
        super::running(
            session,
            Build {
                build_args: BTreeMap::new(),
                allow_remote: false,
            },
        )
    }
}

fn running_builds(session: &str) -> Vec<Arc<Build>> {
    lock()
        .1
        .get(session)
        .map(|list| list.iter().map(|(_, b)| b.clone()).collect())
        .unwrap_or_default()
}

/// Checks the Dockerfiles one BuildKit session carries.
#[derive(Debug)]
pub struct DockerfileGate {
    session: Option<String>,
    authorized: Authorized,
    trail: Option<Arc<Trail>>,
    tenancy: Option<TenantImages>,
}

impl DockerfileGate {
    /// The gate for a `/session` request about to be forwarded, from its extensions; `None`
    /// when its policy does not inspect (the session is relayed unread, as before).
    pub fn for_session(
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
        lookup: impl FnOnce() -> Lookup,
    ) -> Option<DockerfileGate> {
        let authorized = extensions.get::<Authorized>()?.clone();
        if !authorized.policy.inspection {
            return None;
        }
        let tenancy = extensions.get::<Tenant>().map(|tenant| {
            let label = crate::context::owner_label(extensions);
            TenantImages {
                lookup: lookup(),
                // Held by the gate, which lives as long as the session: the builds it serves
                // end before it does.
                pins: crate::isolation::pins::Pins::open(&label, tenant.label_value()),
                label,
                tenant: tenant.clone(),
            }
        });
        Some(DockerfileGate {
            session: headers
                .get(SESSION_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            authorized,
            trail: extensions.get::<Arc<Trail>>().cloned(),
            tenancy,
        })
    }

    /// Checks the files the `dockerfile` directory sent. `Err` is the gRPC message of the
    /// refusal (audited); in audit mode a violation is recorded and passes.
    pub async fn check(&self, files: &[File]) -> Result<(), String> {
        for file in files {
            if let Err(refused) = self.check_file(&file.path, &file.data).await {
                return self.refuse(refused);
            }
        }
        Ok(())
    }

    /// A `dockerfile` stream that cannot be read: refused like a violation (always under
    /// isolation).
    pub fn unreadable(&self, reason: &str) -> Result<(), String> {
        let violation = Violation {
            field: "(BuildKit session)".into(),
            reason: format!("the Dockerfile cannot be read: {reason}"),
            setting: None,
            value: None,
        };
        let refused = match self.tenancy {
            Some(_) => isolation_violation(&self.authorized, violation),
            None => Refused::Violation(violation),
        };
        self.refuse(refused)
    }

    async fn check_file(&self, path: &str, data: &[u8]) -> Result<(), Refused> {
        let deny = |reason: String| {
            Refused::Violation(Violation {
                field: path.to_owned(),
                reason,
                setting: None,
                value: None,
            })
        };
        let Some(session) = &self.session else {
            return Err(deny(
                "the session has no id, so no build can be matched to it".into(),
            ));
        };
        let running = running_builds(session);
        if running.is_empty() {
            return Err(deny(
                "no build sockwarden forwarded names this session".into(),
            ));
        }
        buildkit_only(path, data)?;
        let session_remote = self.authorized.policy.inspect.build.allow_remote;
        for build in running {
            if build.build_args.contains_key(SYNTAX_ARG) {
                return Err(deny(format!(
                    "the build argument {SYNTAX_ARG} runs another frontend, which sockwarden \
                     cannot check"
                )));
            }
            if let Some(tenancy) = &self.tenancy {
                let images = base_images(path, data, &build.build_args)
                    .map_err(|v| isolation_violation(&self.authorized, v))?;
                check_images(tenancy, &self.authorized, &images).await?;
            }
            let local = local_facts();
            let rules = DockerfileRules {
                build_args: &build.build_args,
                allow_remote: session_remote && build.allow_remote,
                local: &local,
            };
            let names = check_dockerfile(path, data, rules)?;
            check_names(&names, &local).await?;
        }
        Ok(())
    }

    /// Records a refusal (or, in audit mode, a would-deny that passes) and makes its message.
    fn refuse(&self, refused: Refused) -> Result<(), String> {
        let error = match refused {
            Refused::Isolation(error) => error,
            Refused::Violation(violation) => {
                if self.authorized.dry_run {
                    tracing::warn!(reason = %violation.reason, "BuildKit Dockerfile would be refused (audit mode)");
                    if let Some(trail) = &self.trail {
                        trail.note_inspection(
                            None,
                            Some((self.authorized.operation.name, violation)),
                        );
                    }
                    return Ok(());
                }
                super::refusal(&self.authorized, &violation)
            }
        };
        if let Some(trail) = &self.trail {
            trail.note_error(&error);
        }
        let message = match &error {
            ProxyError::Denied(refusal) => format!("sockwarden: {refusal}"),
            other => format!("sockwarden: {other}"),
        };
        tracing::warn!(%message, "BuildKit Dockerfile refused");
        Err(message)
    }
}

/// What only BuildKit reads: a `# syntax=` directive among the comment lines the file starts
/// with (any spelling BuildKit's `DetectSyntax` could read, and more), and `RUN --mount` with
/// `from=` something other than a stage of the file (an image the daemon pulls).
fn buildkit_only(path: &str, data: &[u8]) -> Result<(), Refused> {
    let deny = |line: usize, reason: String| {
        Refused::Violation(Violation {
            field: format!("{path}:{line}"),
            reason,
            setting: None,
            value: None,
        })
    };
    let text = String::from_utf8_lossy(data);
    for (i, line) in text.split('\n').enumerate() {
        let t = line.trim_start_matches('\u{feff}').trim();
        if t.is_empty() {
            continue;
        }
        let Some(comment) = t.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim_start().to_ascii_lowercase();
        if let Some(rest) = comment.strip_prefix("syntax") {
            if rest.trim_start().starts_with('=') {
                return Err(deny(
                    i + 1,
                    "a `# syntax=` directive runs another frontend image, which sockwarden \
                     cannot check"
                        .into(),
                ));
            }
        }
    }
    let (lines, _) = instructions(data).map_err(Refused::Violation)?;
    let mut stages: Vec<String> = Vec::new();
    for (line_no, line) in lines {
        let line = line.trim();
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let cmd = cmd.to_ascii_lowercase();
        let (flags, args) = builder_flags(rest);
        if cmd == "from" {
            let words: Vec<&str> = args.split_whitespace().collect();
            if let (Some(kw), Some(name)) = (words.get(1), words.get(2)) {
                if kw.eq_ignore_ascii_case("as") {
                    stages.push(name.to_ascii_lowercase());
                }
            }
            continue;
        }
        if cmd != "run" {
            continue;
        }
        for flag in flags {
            let Some(mount) = flag.strip_prefix("--mount=") else {
                continue;
            };
            for field in mount.split(',') {
                let (key, value) = field.split_once('=').unwrap_or((field, ""));
                if !key.trim().eq_ignore_ascii_case("from") {
                    continue;
                }
                let value = value.trim().trim_matches('"').to_ascii_lowercase();
                if !stages.contains(&value) {
                    return Err(deny(
                        line_no,
                        format!(
                            "RUN --mount from={value:?}: mounting from an image is not checked \
                             by sockwarden"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        buildkit_only("Dockerfile", text.as_bytes()).is_err()
    }

    #[test]
    fn every_session_gets_a_shared_key_of_its_own() {
        let key = |given: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(given) = given {
                headers.insert(
                    SHARED_KEY_HEADER,
                    http::HeaderValue::from_str(given).unwrap(),
                );
            }
            fresh_shared_key(&mut headers);
            headers[SHARED_KEY_HEADER].to_str().unwrap().to_owned()
        };
        let a = key(Some("k1"));
        assert!(a.starts_with("sw-") && a != "k1");
        assert_ne!(a, key(Some("k1")), "the same CLI key twice: two keys");
        assert!(key(None).starts_with("sw-"), "set when the CLI sent none");
        assert_ne!(key(None), key(None));
    }

    #[test]
    fn builds_are_known_to_their_session_while_they_run() {
        assert!(running_builds("sw-test-none").is_empty());
        assert!(!session_in_use("sw-test-s"));
        let guard = tests_support::running("sw-test-s");
        assert!(session_in_use("sw-test-s"));
        assert_eq!(running_builds("sw-test-s").len(), 1);
        drop(guard);
        assert!(running_builds("sw-test-s").is_empty());
        assert!(!lock().1.contains_key("sw-test-s"));
    }

    #[test]
    fn syntax_directives_are_refused_in_any_spelling() {
        assert!(refused("# syntax=docker/dockerfile:1\nFROM scratch\n"));
        assert!(refused("#SYNTAX = x\nFROM scratch\n"));
        assert!(refused("\u{feff}# escape=`\n#  Syntax=x\nFROM scratch\n"));
        assert!(refused("\n\n# syntax=x\n"));
        assert!(!refused("FROM scratch\n# syntax=x\n"));
        assert!(!refused("# a comment about syntax\nFROM scratch\n"));
    }

    #[test]
    fn run_mounts_from_images_are_refused_and_from_stages_pass() {
        assert!(refused("FROM a\nRUN --mount=type=bind,from=alpine true\n"));
        assert!(refused("FROM a\nrun --mount=FROM=127.0.0.1:5000/x true\n"));
        assert!(!refused(
            "FROM a AS base\nFROM b\nRUN --mount=type=bind,from=base,target=/b true\n"
        ));
        assert!(!refused("FROM a\nRUN --mount=type=cache,target=/c true\n"));
    }
}
