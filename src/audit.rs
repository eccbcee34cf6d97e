//! The audit trail: one JSON record per request (and, for a hijacked session, one when it opens
//! and one when it closes), saying who asked for what, what was decided and why, and what
//! happened.
//!
//! Each request carries a [`Trail`] that the layers fill in as they learn things (the
//! authorization layer the client, operation and decision; the inspection layer the settings
//! it saw; the error boundary any refusal); the outermost [`AuditLayer`] writes it as one JSON
//! line when the response is complete and appends it to the sink's pending batch, which a
//! separate thread writes out (`sink`). The same moment feeds the metrics.
//!
//! Secrets never reach a record: headers are not logged (so neither `X-Registry-Auth` nor
//! `Authorization`), query parameters that carry credentials or build arguments are redacted,
//! and bodies are logged only when `audit.log_bodies` asks for it, with `Env` values, build
//! arguments and credentials replaced by `<redacted>`.
//!
//! With `on_failure = "closed"` (the default) a request is refused with 503 while the sink is
//! failing or its queue is full, so nothing happens that is not recorded; `"open"` serves on
//! and counts the loss. Either way a lost record is a metric and a log line.

mod line;
pub mod report;
mod sink;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use serde::Serialize;
use tower::{Layer, Service};

use crate::body::{self, EndOfBody, Observed, ProxyBody};
use crate::error::ProxyError;
use crate::identity::Evidence;
use crate::inspect::Summary;
use crate::listener::{ConnInfo, Peer};
use crate::metrics::Metrics;
use crate::policy::Reason;
use crate::route::{Normalized, Operation};

pub use sink::SinkConfig;

/// An error opening the sink, as `serve` (and `check`) report it.
fn sink_error(config: &SinkConfig, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("audit {config}: {e}"))
}

/// The response header that carries the request id, to find a request's record.
pub const REQUEST_ID_HEADER: &str = "x-sockwarden-request-id";

/// What a full or failing sink does to requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refuse requests (503) while records cannot be written: nothing unrecorded happens.
    #[default]
    Closed,
    /// Serve on; lost records are counted and logged.
    Open,
}

/// The validated `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Where records go; `None` turns the audit log off.
    pub sink: Option<SinkConfig>,
    /// Queue size between requests and the writer.
    pub queue: usize,
    /// Fail closed or open.
    pub on_failure: OnFailure,
    /// Whether inspected request bodies are logged (redacted).
    pub log_bodies: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            sink: Some(SinkConfig::Stdout),
            queue: 8192,
            on_failure: OnFailure::Closed,
            log_bodies: false,
        }
    }
}

/// The running audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    /// The writer's intake; `None` when the audit log is off.
    sink: Option<Arc<sink::SinkState>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    settings: AuditSettings,
    metrics: Metrics,
    next_id: AtomicU64,
    id_prefix: u32,
    last_complaint: Mutex<Option<Instant>>,
}

impl Audit {
    /// Opens the sink (an error here keeps sockwarden from starting) and starts its writer.
    pub fn start(settings: AuditSettings, metrics: Metrics) -> std::io::Result<Audit> {
        let (sink, writer) = match &settings.sink {
            Some(config) => {
                let (state, handle) = sink::start(config, settings.queue, metrics.clone())
                    .map_err(|e| sink_error(config, e))?;
                (Some(state), Some(handle))
            }
            None => (None, None),
        };
        metrics.audit_queue(0, settings.queue);
        let id_prefix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        Ok(Audit {
            core: Arc::new(Core {
                sink,
                writer: Mutex::new(writer),
                settings,
                metrics,
                next_id: AtomicU64::new(1),
                id_prefix,
                last_complaint: Mutex::new(None),
            }),
        })
    }

    /// Whether [`Audit::start`] could open the sink, without opening it (no file is created):
    /// the same error `start` would give, for `sockwarden check`.
    pub fn preflight(settings: &AuditSettings) -> std::io::Result<()> {
        match &settings.sink {
            Some(config) => sink::preflight(config).map_err(|e| sink_error(config, e)),
            None => Ok(()),
        }
    }

    /// The metrics this audit log feeds.
    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// Whether a new request may be served: always when failing open or when the audit log is
    /// off; otherwise only while the sink works and the queue has room.
    pub fn admits(&self) -> bool {
        let Some(sink) = &self.core.sink else {
            return true;
        };
        if self.core.settings.on_failure == OnFailure::Open {
            return true;
        }
        sink.has_room() && sink.healthy.load(Ordering::Relaxed)
    }

    /// Asks the writer to reopen its file (SIGUSR1, after logrotate moved it).
    pub fn reopen(&self) {
        if let Some(sink) = &self.core.sink {
            sink.reopen();
        }
    }

    /// Writes what is queued and stops the writer (at shutdown), waiting at most `limit`.
    pub async fn close(&self, limit: Duration) {
        let Some(sink) = &self.core.sink else { return };
        sink.stop();
        let handle = self
            .core
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join());
            if tokio::time::timeout(limit, joined).await.is_err() {
                tracing::warn!("audit writer did not finish in time; records may be lost");
            }
        }
    }

    /// Queues a record; a record that cannot be queued is counted and logged, never dropped
    /// silently.
    pub fn submit(&self, record: Record) {
        self.push(|out| sink::record_line(&record, out));
    }

    /// Queues the record of a request or session, written from its trail.
    fn submit_trail(&self, trail: &Trail, event: &'static str, counts: Counts) {
        self.push(|out| trail.write_line(event, &counts, out));
    }

    fn push(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(sink) = &self.core.sink else { return };
        if !sink.push(write) {
            self.core.metrics.audit_lost("queue_full", 1);
            self.complain();
        }
    }

    fn complain(&self) {
        let mut last = self
            .core
            .last_complaint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        tracing::error!(
            lost_total = self.core.metrics.audit_lost_total(),
            "audit queue full: record lost"
        );
    }

    /// A fresh request id: the process's start second and a counter, in hex.
    fn next_id(&self) -> String {
        let n = self.core.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:08x}", self.core.id_prefix)
    }

    /// Records a configuration reload.
    pub fn reload(&self, source: &str, result: Result<u64, &str>, restart_needed: &[String]) {
        let (ok, generation, error) = match result {
            Ok(generation) => (true, Some(generation), None),
            Err(e) => (false, None, Some(e.to_owned())),
        };
        self.submit(Record {
            time: now_rfc3339(),
            id: self.next_id(),
            event: "reload",
            result: Some(if ok { "ok" } else { "error" }),
            source: Some(source.to_owned()),
            generation,
            error,
            restart_needed: restart_needed.to_vec(),
        });
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// How a request was decided, as the record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Verdict {
    /// Forwarded under the policy.
    #[serde(rename = "allow")]
    #[default]
    Allow,
    /// Refused (by policy, inspection, limits, a malformed request or the audit gate).
    #[serde(rename = "deny")]
    Deny,
    /// Forwarded although the policy refuses it: the policy or client is in audit mode.
    #[serde(rename = "would-deny")]
    WouldDeny,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::WouldDeny => "would-deny",
        }
    }
}

/// The decision a request's facts amount to: what the layers noted, else a refusal (nothing
/// noted a decision: sockwarden answered before authorization), unless the daemon failed.
fn verdict(facts: &Facts) -> Verdict {
    facts.verdict.unwrap_or(if facts.error.is_some() {
        Verdict::Allow
    } else {
        Verdict::Deny
    })
}

/// What the layers learned about one request. Filled in as it passes through.
#[derive(Debug)]
pub struct Trail {
    audit: Audit,
    id: String,
    time: SystemTime,
    started: Instant,
    /// `"listener":...,"peer":{...}`, from the connection (see [`connection_fields`]).
    conn_fields: Option<Arc<[u8]>>,
    method: Method,
    uri: Uri,
    user_agent: Option<HeaderValue>,
    facts: Mutex<Facts>,
}

#[derive(Debug, Default)]
struct Facts {
    client: Option<Arc<str>>,
    normalized: Option<Arc<Normalized>>,
    operation: Option<Arc<Operation>>,
    verdict: Option<Verdict>,
    policy: Option<Arc<str>>,
    rule: Option<Arc<str>>,
    reason: Option<Reason>,
    violations: Vec<String>,
    settings: Option<Summary>,
    body: Option<serde_json::Value>,
    defaults: Vec<String>,
    error: Option<String>,
}

impl Trail {
    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether inspected bodies should be handed over for the record.
    pub fn wants_body(&self) -> bool {
        self.audit.core.settings.log_bodies && self.audit.core.sink.is_some()
    }

    /// The request as the daemon reads it, and its operation.
    pub fn note_request(&self, normalized: Arc<Normalized>, operation: Arc<Operation>) {
        let mut facts = self.facts();
        facts.normalized = Some(normalized);
        facts.operation = Some(operation);
    }

    /// The authorization decision.
    pub fn note_decision(
        &self,
        verdict: Verdict,
        policy: Option<Arc<str>>,
        rule: Arc<str>,
        reason: Reason,
    ) {
        let mut facts = self.facts();
        facts.verdict = Some(verdict);
        facts.policy = policy;
        facts.rule = Some(rule);
        facts.reason = Some(reason);
    }

    /// Inspection passed (or, in audit mode, would have refused with `violations`) and saw
    /// these settings.
    pub fn note_inspection(&self, settings: Option<Summary>, violations: Vec<String>) {
        let mut facts = self.facts();
        // A request a rule already refuses (in audit mode) keeps that rule as its reason;
        // the violations are listed as well.
        if !violations.is_empty() && facts.verdict != Some(Verdict::WouldDeny) {
            facts.verdict = Some(Verdict::WouldDeny);
            facts.rule = Some(Arc::from("inspection"));
            facts.reason = violations.first().cloned().map(Reason::Text);
        }
        facts.settings = settings;
        facts.violations = violations;
    }

    /// Enforced defaults the policy added to the body (`Memory=268435456`, ...).
    pub fn note_defaults(&self, applied: Vec<String>) {
        self.facts().defaults = applied;
    }

    /// The inspected body, for `log_bodies` (redacted here).
    pub fn note_body(&self, bytes: &[u8]) {
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            redact_json(&mut value);
            self.facts().body = Some(value);
        }
    }

    /// sockwarden answered the request itself with `error`.
    pub fn note_error(&self, error: &ProxyError) {
        let mut facts = self.facts();
        match error {
            ProxyError::Upstream { detail, .. } => {
                facts.error = Some(detail.clone());
                self.audit.core.metrics.upstream_error();
            }
            ProxyError::BadUpstream(detail) => facts.error = Some(detail.clone()),
            ProxyError::Denied {
                reason,
                policy,
                rule,
                ..
            } => {
                facts.verdict = Some(Verdict::Deny);
                if policy != "none" {
                    facts.policy = Some(Arc::from(policy.as_str()));
                }
                facts.rule = Some(Arc::from(rule.as_str()));
                facts.reason = Some(Reason::Text(reason.clone()));
            }
            ProxyError::BadRequest(reason) => {
                facts.verdict = Some(Verdict::Deny);
                facts.rule = Some(Arc::from("bad-request"));
                facts.reason = Some(Reason::Text(reason.clone()));
            }
            ProxyError::Limited { limit, what, .. } => {
                facts.verdict = Some(Verdict::Deny);
                facts.rule = Some(Arc::from(match *limit {
                    "connections" => "connection-limit",
                    _ => "rate-limit",
                }));
                facts.reason = Some(Reason::Text(what.clone()));
                let client = facts.client.clone();
                self.audit
                    .core
                    .metrics
                    .limited(client.as_deref().unwrap_or(""), limit);
            }
            ProxyError::Unavailable(reason) => {
                facts.verdict = Some(Verdict::Deny);
                facts.rule = Some(Arc::from("audit-unavailable"));
                facts.reason = Some(Reason::Text(reason.clone()));
            }
        }
    }

    /// Writes the record of this request as it stands, one JSON line, into `out` (on the
    /// thread that served the request: its data is still in that CPU's caches).
    pub(crate) fn write_line(&self, event: &'static str, counts: &Counts, out: &mut Vec<u8>) {
        let facts = self.facts();
        let operation = facts.operation.as_deref();
        let normalized = facts.normalized.as_deref();
        let mut o = line::Obj::open(out);
        o.with(b"time", |out| {
            line::rfc3339(out, counts.at.unwrap_or(self.time))
        });
        o.str(b"id", &self.id);
        o.str(b"event", event);
        if let Some(fields) = &self.conn_fields {
            o.fields(fields);
        }
        o.str_or_null(b"client", facts.client.as_deref());
        o.opt_str(
            b"user_agent",
            self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
        );
        o.str(b"method", self.method.as_str());
        o.str(
            b"raw_path",
            normalized.map_or(self.uri.path(), |n| n.raw_path.as_str()),
        );
        o.opt_str(b"path", normalized.map(|n| n.path.as_str()));
        if let Some(version) = normalized.and_then(|n| n.version) {
            o.plain_display(b"api_version", version);
        }
        o.with(b"query", |out| {
            write_query(out, normalized.map_or(&[], |n| n.query.pairs()))
        });
        o.opt_str(b"operation", operation.map(|op| op.name));
        o.str(b"decision", verdict(&facts).as_str());
        o.opt_str(b"policy", facts.policy.as_deref());
        o.opt_str(b"rule", facts.rule.as_deref());
        match &facts.reason {
            Some(Reason::Allowed(operation)) => o.with(b"reason", |out| {
                line::string_with_suffix(out, operation, " is allowed")
            }),
            Some(Reason::Text(text)) => o.str(b"reason", text),
            None => {}
        }
        o.strs(b"violations", facts.violations.iter().map(String::as_str));
        o.opt_uint(b"status", counts.status.map(u64::from));
        o.millis(b"duration_ms", counts.duration.as_micros());
        o.uint(b"bytes_in", counts.bytes_in);
        o.uint(b"bytes_out", counts.bytes_out);
        o.str(b"end", counts.end);
        o.opt_str(b"error", facts.error.as_deref());
        let objects = objects(operation, normalized, facts.settings.as_ref());
        if !objects.is_empty() {
            o.with(b"objects", |out| {
                let mut m = line::Obj::open(out);
                for (kind, name) in &objects {
                    m.escaped_str(kind, name);
                }
                m.close();
            });
        }
        if let Some(settings) = &facts.settings {
            o.with(b"settings", |out| {
                // Plain data: serializing cannot fail; `null` keeps the line valid if it did.
                if serde_json::to_writer(&mut *out, settings).is_err() {
                    out.extend_from_slice(b"null");
                }
            });
        }
        o.strs(
            b"defaults_applied",
            facts.defaults.iter().map(String::as_str),
        );
        if let Some(body) = &facts.body {
            o.with(b"body", |out| {
                if serde_json::to_writer(&mut *out, body).is_err() {
                    out.extend_from_slice(b"null");
                }
            });
        }
        o.close();
        out.push(b'\n');
    }

    /// Writes the `session_close` record of a hijacked session.
    pub fn close_session(&self, to_daemon: u64, to_client: u64, end: &'static str) {
        let counts = Counts {
            at: Some(SystemTime::now()),
            status: None,
            duration: self.started.elapsed(),
            bytes_in: to_daemon,
            bytes_out: to_client,
            end,
        };
        self.audit.submit_trail(self, "session_close", counts);
    }

    /// The metrics, for the session gauge.
    pub fn metrics(&self) -> &Metrics {
        &self.audit.core.metrics
    }
}

/// What is known when a request or session ends.
#[derive(Debug)]
pub(crate) struct Counts {
    /// When the event happened, if not when the request arrived.
    at: Option<SystemTime>,
    status: Option<u16>,
    duration: Duration,
    bytes_in: u64,
    bytes_out: u64,
    end: &'static str,
}

/// A record that is not a request's: a reload. (Request and session records are written
/// straight from their trail, see [`Trail::write_line`].)
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    /// Record id.
    pub id: String,
    /// `reload`.
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    restart_needed: Vec<String>,
}

/// A connection's part of each of its records: `"listener":"...","peer":{...}`, written once
/// when the connection is accepted (the members only, to be spliced into a record).
pub fn connection_fields(listener: &str, peer: &Peer, evidence: &Evidence) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(160);
    let mut o = line::Obj::members(&mut out);
    o.str(b"listener", listener);
    o.with(b"peer", |out| write_peer(out, peer, evidence));
    Arc::from(out)
}

/// The identity evidence of the peer: `{"uid":..,"gid":..,"pid":..,"exe":..,"loginuid":..}`
/// for unix peers, `{"addr":..}` (and the certificate's subject and SANs) for TCP and TLS.
fn write_peer(out: &mut Vec<u8>, peer: &Peer, evidence: &Evidence) {
    let mut o = line::Obj::open(out);
    match peer {
        Peer::Unix { uid, gid, pid } => {
            o.uint(b"uid", u64::from(*uid));
            o.uint(b"gid", u64::from(*gid));
            o.opt_int(b"pid", pid.map(i64::from));
        }
        Peer::Tcp(addr) | Peer::Tls { addr, .. } => o.plain_display(b"addr", addr),
    }
    if let Some(exe) = &evidence.exe {
        o.str(b"exe", &exe.to_string_lossy());
    }
    o.opt_uint(b"loginuid", evidence.loginuid.map(u64::from));
    o.opt_str(b"cert_subject", evidence.cert_subject.as_deref());
    o.strs(b"cert_san", evidence.cert_san.iter().map(String::as_str));
    o.close();
}

/// The query as `{"name":["value",...]}`, secrets redacted.
fn write_query(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    let mut o = line::Obj::open(out);
    for (name, values) in redacted_query(pairs) {
        o.escaped_strs(&name, values.iter().map(String::as_str));
    }
    o.close();
}

/// Query parameters whose values are secrets or carry them (build args hold tokens as often
/// as not): their values become `<redacted>`.
fn secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "buildargs"
        || [
            "auth",
            "password",
            "passwd",
            "secret",
            "token",
            "credential",
        ]
        .iter()
        .any(|word| lower.contains(word))
}

const REDACTED: &str = "<redacted>";

fn redacted_query(pairs: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in pairs {
        let value = if secret_param(name) {
            redact_param(name, value)
        } else {
            value.clone()
        };
        out.entry(name.clone()).or_default().push(value);
    }
    out
}

/// `buildargs` keeps its keys (which arguments were set) and loses its values.
fn redact_param(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("buildargs") {
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(value) {
            for v in map.values_mut() {
                *v = serde_json::Value::String(REDACTED.into());
            }
            return serde_json::Value::Object(map).to_string();
        }
    }
    REDACTED.into()
}

/// Redacts a logged body in place: `Env` entries keep their names, build arguments and
/// anything that looks like a credential lose their values. Keys compare case-insensitively,
/// as the daemon reads them.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower == "env" {
                    redact_env_list(v);
                } else if lower == "buildargs" || secret_param(&lower) {
                    *v = serde_json::Value::String(REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn redact_env_list(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                if let serde_json::Value::String(s) = item {
                    let name = s.split('=').next().unwrap_or_default();
                    *s = if s.contains('=') {
                        format!("{name}={REDACTED}")
                    } else {
                        name.to_owned()
                    };
                } else {
                    *item = serde_json::Value::String(REDACTED.into());
                }
            }
        }
        serde_json::Value::Null => {}
        other => *other = serde_json::Value::String(REDACTED.into()),
    }
}

/// The objects a request concerns: the route's object by its kind, and what a create names.
fn objects(
    operation: Option<&Operation>,
    normalized: Option<&Normalized>,
    settings: Option<&Summary>,
) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let Some(op) = operation else { return out };
    let kind = op.name.split('.').next().unwrap_or_default();
    let kind: Option<&'static str> = match kind {
        "container" => Some("container"),
        "image" => Some("image"),
        "volume" => Some("volume"),
        "network" => Some("network"),
        "exec" => Some("exec"),
        "service" => Some("service"),
        "plugin" => Some("plugin"),
        "secret" => Some("secret"),
        "config" => Some("config"),
        "node" => Some("node"),
        "task" => Some("task"),
        _ => None,
    };
    if let (Some(kind), Some(object)) = (kind, &op.object) {
        out.insert(kind, object.clone());
    }
    let query = |name: &str| {
        normalized.and_then(|n| {
            n.query
                .pairs()
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    };
    match op.name {
        "container.create" => {
            if let Some(name) = query("name").filter(|n| !n.is_empty()) {
                out.insert("container", name);
            }
        }
        "exec.create" => {
            // The route's object is the container the exec runs in.
            if let Some(id) = out.remove("exec") {
                out.insert("container", id);
            }
        }
        "image.create" => {
            if let Some(image) = query("fromImage").or_else(|| query("fromSrc")) {
                let tag = query("tag").filter(|t| !t.is_empty());
                out.insert(
                    "image",
                    match tag {
                        Some(tag) => format!("{image}:{tag}"),
                        None => image,
                    },
                );
            }
        }
        "image.build" => {
            if let Some(tag) = query("t") {
                out.insert("image", tag);
            }
        }
        _ => {}
    }
    if let Some(summary) = settings {
        if let Some(image) = &summary.image {
            out.entry("image").or_insert_with(|| image.clone());
        }
        if let Some(name) = &summary.name {
            if let Some(kind) = kind {
                out.entry(kind).or_insert_with(|| name.clone());
            }
        }
    }
    out
}

/// Adds [`AuditLayer`]'s service around the request path.
#[derive(Clone, Debug)]
pub struct AuditLayer {
    audit: Audit,
}

impl AuditLayer {
    /// Records into `audit`.
    pub fn new(audit: Audit) -> AuditLayer {
        AuditLayer { audit }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> AuditService<S> {
        AuditService {
            inner,
            audit: self.audit.clone(),
        }
    }
}

/// Opens a [`Trail`] for each request and writes its record when the response is complete.
#[derive(Clone, Debug)]
pub struct AuditService<S> {
    inner: S,
    audit: Audit,
}

type AuditFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

impl<S> Service<Request<ProxyBody>> for AuditService<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = AuditFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> AuditFuture {
        let conn = request.extensions().get::<ConnInfo>();
        let trail = Arc::new(Trail {
            audit: self.audit.clone(),
            id: self.audit.next_id(),
            time: SystemTime::now(),
            started: Instant::now(),
            conn_fields: conn.map(|c| c.audit_fields.clone()),
            method: request.method().clone(),
            uri: request.uri().clone(),
            user_agent: request.headers().get(header::USER_AGENT).cloned(),
            facts: Mutex::new(Facts {
                client: request
                    .extensions()
                    .get::<crate::reload::Caller>()
                    .and_then(|c| c.client.clone()),
                ..Facts::default()
            }),
        });
        request.extensions_mut().insert(trail.clone());
        let bytes_in = Arc::new(AtomicU64::new(0));

        let future: Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>> =
            if self.audit.admits() {
                let request =
                    request.map(|b| body::boxed(Observed::new(b, bytes_in.clone(), |_| {})));
                Box::pin(self.inner.call(request))
            } else {
                // Fail closed: nothing happens that cannot be recorded.
                let error = ProxyError::Unavailable(
                    "the audit log cannot be written (audit.on_failure = \"closed\")".into(),
                );
                trail.note_error(&error);
                let body = std::mem::replace(request.body_mut(), body::empty());
                Box::pin(async move {
                    body::drain_refused(body).await;
                    Ok(error.into_response())
                })
            };
        Box::pin(async move {
            let Ok(mut response) = future.await;
            let status = response.status();
            {
                let facts = trail.facts();
                let operation = facts.operation.as_ref().map_or("none", |o| o.name);
                trail.metrics().latency(
                    facts.client.as_ref(),
                    operation,
                    trail.started.elapsed().as_secs_f64(),
                );
            }
            if let Ok(value) = HeaderValue::from_str(&trail.id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            let bytes_out = Arc::new(AtomicU64::new(0));
            let counted = bytes_out.clone();
            let finished = trail.clone();
            let on_end = move |end: EndOfBody| {
                finished.finish(status, &bytes_in, &counted, end);
            };
            Ok(response.map(|b| body::boxed(Observed::new(b, bytes_out, on_end))))
        })
    }
}

impl Trail {
    /// The response is complete (or the client went away): metrics and the record.
    fn finish(
        &self,
        status: StatusCode,
        bytes_in: &AtomicU64,
        bytes_out: &AtomicU64,
        end: EndOfBody,
    ) {
        let session = status == StatusCode::SWITCHING_PROTOCOLS;
        let counts = Counts {
            at: None,
            status: Some(status.as_u16()),
            duration: self.started.elapsed(),
            bytes_in: bytes_in.load(Ordering::Relaxed),
            bytes_out: bytes_out.load(Ordering::Relaxed),
            end: match end {
                EndOfBody::Complete => "complete",
                EndOfBody::Error => "error",
                EndOfBody::Dropped => "client_gone",
            },
        };
        {
            let facts = self.facts();
            let operation = facts.operation.as_ref().map_or("none", |o| o.name);
            self.metrics().request(
                facts.client.as_ref(),
                operation,
                verdict(&facts).as_str(),
                status.as_u16(),
            );
        }
        let event = if session { "session_open" } else { "request" };
        self.audit.submit_trail(self, event, counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_query_are_redacted() {
        let pairs = vec![
            ("t".to_owned(), "app:1".to_owned()),
            (
                "buildargs".to_owned(),
                r#"{"NPM_TOKEN":"s3cr3t","VERSION":"1"}"#.to_owned(),
            ),
            ("registryAuth".to_owned(), "abc".to_owned()),
        ];
        let q = redacted_query(&pairs);
        assert_eq!(q["t"], vec!["app:1"]);
        let args: serde_json::Value = serde_json::from_str(&q["buildargs"][0]).unwrap();
        assert_eq!(args["NPM_TOKEN"], REDACTED);
        assert_eq!(args["VERSION"], REDACTED);
        assert_eq!(q["registryAuth"], vec![REDACTED]);
        let text = serde_json::to_string(&q).unwrap();
        assert!(!text.contains("s3cr3t") && !text.contains("abc"));
    }

    #[test]
    fn bodies_lose_env_values_and_credentials() {
        let mut body = serde_json::json!({
            "Image": "busybox",
            "env": ["DB_PASSWORD=hunter2", "PLAIN"],
            "HostConfig": {"Binds": ["/srv:/srv"]},
            "BuildArgs": {"TOKEN": "x"},
            "auth": {"password": "pw", "Username": "u"},
            "IdentityToken": "tok",
        });
        redact_json(&mut body);
        let text = body.to_string();
        for secret in ["hunter2", "\"x\"", "\"pw\"", "tok\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(body["env"][0], "DB_PASSWORD=<redacted>");
        assert_eq!(body["env"][1], "PLAIN");
        assert_eq!(body["HostConfig"]["Binds"][0], "/srv:/srv");
    }
}
