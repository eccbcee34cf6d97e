//! The audit record of a request or hijacked session: one JSON line written straight from the
//! request's [`Trail`] (no intermediate structure), with the connection's part written once
//! per connection, and the redaction of what a record must never show.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::line;
use crate::context::{verdict, Trail};
use crate::identity::Evidence;
use crate::inspect::{Summary, Violation};
use crate::listener::Peer;
use crate::policy::Reason;
use crate::redact;
use crate::route::{Creates, Normalized, ObjectKind, Operation};

/// What is known when a request or session ends.
#[derive(Debug)]
pub(crate) struct Counts {
    /// When the event happened, if not when the request arrived.
    pub(crate) at: Option<SystemTime>,
    pub(crate) status: Option<u16>,
    pub(crate) duration: Duration,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) end: &'static str,
}

/// Longest client-chosen text (a path, a query parameter's name or value, a user agent, an
/// object name, a refused value) a record holds whole. Longer text is cut there and ends with
/// [`TRUNCATED`] and its full length, so that a flood of 60 KB queries writes small records
/// (the disk of a fail-closed audit log is everyone's) and the record still says what it was.
pub const MAX_TEXT: usize = 1024;

/// Most query parameters a record lists; the rest are counted under [`MORE_PARAMS`].
pub const MAX_PARAMS: usize = 64;

/// Most bytes of parameter names and values (each as bounded) a record lists.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// The marker that ends a cut text: `…[truncated: 61440 bytes]`.
pub const TRUNCATED: &str = "…[truncated: ";

/// The key under which the parameters beyond [`MAX_PARAMS`] are counted.
pub const MORE_PARAMS: &str = "…";

/// `text`, or its first [`MAX_TEXT`] bytes (cut at a character boundary) followed by the
/// [`TRUNCATED`] marker and the full length in bytes.
pub fn bounded(text: &str) -> Cow<'_, str> {
    bounded_to(text, MAX_TEXT)
}

fn bounded_to(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}{TRUNCATED}{} bytes]", &text[..cut], text.len()))
}

/// Writes the record of this request as it stands, one JSON line, into `out` (on the
/// thread that served the request: its data is still in that CPU's caches). Members are
/// written in a fixed order, each key with its punctuation as one constant; the text
/// sockwarden writes itself (ids, event, operation and decision names) is copied without an
/// escape check, everything else through [`line::str_member`].
pub(crate) fn write_line(trail: &Trail, event: &'static str, counts: &Counts, out: &mut Vec<u8>) {
    use line::{key, key_quote, plain_member, str_member};
    let facts = trail.facts();
    let operation = facts.operation.as_deref();
    let normalized = facts.normalized.as_deref();
    out.extend_from_slice(b"{\"time\":");
    line::rfc3339(out, counts.at.unwrap_or(trail.time));
    plain_member(out, key_quote!("id"), &trail.id);
    plain_member(out, key_quote!("event"), event);
    if let Some(fields) = trail.conn_fields.as_deref().filter(|f| !f.is_empty()) {
        out.push(b',');
        out.extend_from_slice(fields);
    }
    match facts.client.as_deref() {
        Some(client) => str_member(out, key_quote!("client"), client),
        None => {
            out.extend_from_slice(key!("client"));
            out.extend_from_slice(b"null");
        }
    }
    if let Some(agent) = trail.user_agent.as_ref().and_then(|v| v.to_str().ok()) {
        str_member(out, key_quote!("user_agent"), &bounded(agent));
    }
    str_member(out, key_quote!("method"), &bounded(trail.method.as_str()));
    str_member(
        out,
        key_quote!("raw_path"),
        &bounded(normalized.map_or(trail.uri.path(), |n| n.raw_path.as_str())),
    );
    if let Some(n) = normalized {
        str_member(out, key_quote!("path"), &bounded(&n.path));
        if let Some(version) = n.version {
            out.extend_from_slice(key_quote!("api_version"));
            line::uint(out, u64::from(version.major));
            out.push(b'.');
            line::uint(out, u64::from(version.minor));
            out.push(b'"');
        }
    }
    out.extend_from_slice(key!("query"));
    write_query(out, normalized.map_or(&[], |n| n.query.pairs()));
    if let Some(op) = operation {
        plain_member(out, key_quote!("operation"), op.name);
    }
    plain_member(out, key_quote!("decision"), verdict(&facts).as_str());
    if let Some(policy) = facts.policy.as_deref() {
        str_member(out, key_quote!("policy"), policy);
    }
    if let Some(tenant) = facts.tenant.as_deref() {
        str_member(out, key_quote!("tenant"), tenant);
    }
    if let Some(rule) = facts.rule.as_deref() {
        str_member(out, key_quote!("rule"), rule);
    }
    match &facts.reason {
        Some(Reason::Allowed(operation)) => {
            // An operation's name (the table's): nothing to escape.
            plain_member(out, key_quote!("reason"), operation);
            out.pop();
            out.extend_from_slice(b" is allowed\"");
        }
        Some(Reason::Text(text)) => {
            str_member(out, key_quote!("reason"), &bounded_to(text, 4 * MAX_TEXT));
        }
        // A refusal is put into words only here, when its record is written.
        Some(reason @ Reason::Refused(..)) => {
            let text = reason.to_string();
            str_member(out, key_quote!("reason"), &bounded_to(&text, 4 * MAX_TEXT));
        }
        None => {}
    }
    if !facts.violations.is_empty() {
        out.extend_from_slice(key!("violations"));
        write_violations(out, &facts.violations);
    }
    if let Some(status) = counts.status {
        out.extend_from_slice(key!("status"));
        line::uint(out, u64::from(status));
    }
    out.extend_from_slice(key!("duration_ms"));
    line::millis(out, counts.duration.as_micros());
    out.extend_from_slice(key!("bytes_in"));
    line::uint(out, counts.bytes_in);
    out.extend_from_slice(key!("bytes_out"));
    line::uint(out, counts.bytes_out);
    plain_member(out, key_quote!("end"), counts.end);
    if facts.suppressed > 0 {
        out.extend_from_slice(key!("suppressed"));
        line::uint(out, facts.suppressed);
    }
    if let Some(error) = facts.error.as_deref() {
        str_member(out, key_quote!("error"), &bounded_to(error, 4 * MAX_TEXT));
    }
    // The objects a request concerns: none for most requests (no map to build).
    if operation.is_some_and(|op| op.object.is_some() || op.info.creates.is_some())
        || facts.settings.is_some()
    {
        let objects = objects(operation, normalized, facts.settings.as_ref());
        if !objects.is_empty() {
            out.extend_from_slice(key!("objects"));
            let mut m = line::Obj::open(out);
            for (kind, name) in &objects {
                m.escaped_str(kind, &bounded(name));
            }
            m.close();
        }
    }
    if let Some(settings) = &facts.settings {
        out.extend_from_slice(key!("settings"));
        // Plain data: serializing cannot fail; `null` keeps the line valid if it did.
        if serde_json::to_writer(&mut *out, settings).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    if !facts.defaults.is_empty() {
        out.extend_from_slice(key!("defaults_applied"));
        line::array(out, facts.defaults.iter().map(String::as_str));
    }
    if let Some(body) = facts.body.as_deref().and_then(redacted_body) {
        out.extend_from_slice(key!("body"));
        if serde_json::to_writer(&mut *out, &body).is_err() {
            out.extend_from_slice(b"null");
        }
    }
    out.extend_from_slice(b"}\n");
}

/// Inspection refusals as objects: `[{"field":..,"reason":..,"setting":..,"value":..}]`,
/// absent members left out.
fn write_violations(out: &mut Vec<u8>, violations: &[Violation]) {
    out.push(b'[');
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut o = line::Obj::open(out);
        o.str(line::key!("field"), &bounded(&v.field));
        o.str(line::key!("reason"), &bounded_to(&v.reason, 4 * MAX_TEXT));
        o.opt_str(line::key!("setting"), v.setting.as_deref());
        o.opt_str(
            line::key!("value"),
            v.value.as_deref().map(bounded).as_deref(),
        );
        o.close();
    }
    out.push(b']');
}

/// A connection's part of each of its records: `"listener":"...","peer":{...}`, written once
/// when the connection is accepted (the members only, to be spliced into a record).
pub fn connection_fields(listener: &str, peer: &Peer, evidence: &Evidence) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(160);
    let mut o = line::Obj::members(&mut out);
    o.str(line::key!("listener"), listener);
    o.with(line::key!("peer"), |out| write_peer(out, peer, evidence));
    Arc::from(out)
}

/// The identity evidence of the peer: `{"uid":..,"gid":..,"pid":..,"exe":..,"loginuid":..}`
/// for unix peers, `{"addr":..}` (and the certificate's subject and SANs) for TCP and TLS.
fn write_peer(out: &mut Vec<u8>, peer: &Peer, evidence: &Evidence) {
    let mut o = line::Obj::open(out);
    match peer {
        Peer::Unix { uid, gid, pid } => {
            o.uint(line::key!("uid"), u64::from(*uid));
            o.uint(line::key!("gid"), u64::from(*gid));
            o.opt_int(line::key!("pid"), pid.map(i64::from));
        }
        Peer::Tcp(addr) | Peer::Tls { addr, .. } => o.plain_display(line::key!("addr"), addr),
    }
    if let Some(exe) = &evidence.exe {
        o.str(line::key!("exe"), &exe.to_string_lossy());
    }
    o.opt_uint(line::key!("loginuid"), evidence.loginuid.map(u64::from));
    o.opt_str(line::key!("cert_subject"), evidence.cert_subject.as_deref());
    o.strs(
        line::key!("cert_san"),
        evidence.cert_san.iter().map(String::as_str),
    );
    o.close();
}

/// The query as `{"name":["value",...]}`, secrets redacted, each name and value bounded
/// ([`bounded`]); beyond [`MAX_PARAMS`] parameters or [`MAX_QUERY_BYTES`], the rest are counted under
/// [`MORE_PARAMS`]: `"…":["1000 more parameters, 61440 bytes"]`.
fn write_query(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        // Most requests: no map to build and drop.
        out.extend_from_slice(b"{}");
        return;
    }
    let mut o = line::Obj::open(out);
    // As many parameters as fit in MAX_PARAMS and MAX_QUERY_BYTES (each counted as bounded).
    let mut bytes = 0;
    let fit = pairs
        .iter()
        .take(MAX_PARAMS)
        .take_while(|(k, v)| {
            bytes += k.len().min(MAX_TEXT) + v.len().min(MAX_TEXT);
            bytes <= MAX_QUERY_BYTES
        })
        .count()
        .max(1)
        .min(pairs.len());
    let (listed, more) = pairs.split_at(fit);
    for (name, values) in redacted_query(listed) {
        o.escaped_strs(&name, values.iter().map(String::as_str));
    }
    if !more.is_empty() {
        let bytes: usize = more.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let note = format!("{} more parameters, {bytes} bytes", more.len());
        o.escaped_strs(MORE_PARAMS, std::iter::once(note.as_str()));
    }
    o.close();
}

fn redacted_query(pairs: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in pairs {
        let value = if redact::secret_name(name) {
            bounded(&redact::query_value(name, value)).into_owned()
        } else if redact::secret_values(name) {
            bounded(&redact::changes_value(value)).into_owned()
        } else {
            bounded(value).into_owned()
        };
        out.entry(bounded(name).into_owned())
            .or_default()
            .push(value);
    }
    out
}

/// An inspected body as the record shows it: parsed, credentials and `Env` values redacted;
/// `None` when it is not JSON.
fn redacted_body(bytes: &[u8]) -> Option<serde_json::Value> {
    let mut value = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
    redact::document(&mut value);
    Some(value)
}

/// The objects a request concerns, by kind: the route's object (from the operation table),
/// what a create names in its query or body, and the image a create or build uses.
fn objects(
    operation: Option<&Operation>,
    normalized: Option<&Normalized>,
    settings: Option<&Summary>,
) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let Some(op) = operation else { return out };
    if let (Some(kind), Some(object)) = (op.info.object, &op.object) {
        out.insert(kind.as_str(), object.clone());
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
    let creates = op.info.creates;
    if let Some(Creates {
        kind,
        query: Some(param),
    }) = creates
    {
        if let Some(name) = query(param).filter(|n| !n.is_empty()) {
            // Image references come with their tag in a parameter of its own.
            let tag = (kind == ObjectKind::Image)
                .then(|| query("tag"))
                .flatten()
                .filter(|t| !t.is_empty());
            out.insert(
                kind.as_str(),
                match tag {
                    Some(tag) => format!("{name}:{tag}"),
                    None => name,
                },
            );
        }
    }
    if let Some(summary) = settings {
        if let Some(image) = &summary.image {
            out.entry("image").or_insert_with(|| image.clone());
        }
        if let (Some(name), Some(creates)) = (&summary.name, creates) {
            out.entry(creates.kind.as_str())
                .or_insert_with(|| name.clone());
        }
    }
    out
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;
    use http::{Method, Uri};

    /// The objects the audit record names for `method target`.
    fn objects_of(
        method: &str,
        target: &str,
        name: Option<&str>,
    ) -> BTreeMap<&'static str, String> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = target.parse().unwrap();
        let normalized = crate::route::normalize(&method, &uri).unwrap();
        let op = crate::route::classify(&method, &normalized.path, &normalized.query);
        let summary = name.map(|n| Summary {
            name: Some(n.to_owned()),
            ..Summary::default()
        });
        objects(Some(&op), Some(&normalized), summary.as_ref())
    }

    #[test]
    fn objects_follow_the_operation_table() {
        let o = objects_of("POST", "/images/create?fromImage=busybox&tag=1.36", None);
        assert_eq!(o.get("image").map(String::as_str), Some("busybox:1.36"));
        let o = objects_of("POST", "/images/create?fromSrc=-&repo=mine&tag=2", None);
        assert_eq!(o.get("image").map(String::as_str), Some("mine:2"));
        let o = objects_of("POST", "/v1.41/containers/web/exec", None);
        assert_eq!(o.get("container").map(String::as_str), Some("web"));
        assert!(!o.contains_key("exec"), "{o:?}");
        let o = objects_of("POST", "/exec/abc/start", None);
        assert_eq!(o.get("exec").map(String::as_str), Some("abc"));
        let o = objects_of("POST", "/containers/create?name=job", None);
        assert_eq!(o.get("container").map(String::as_str), Some("job"));
        let o = objects_of("POST", "/volumes/create", Some("cache"));
        assert_eq!(o.get("volume").map(String::as_str), Some("cache"));
        let o = objects_of("POST", "/build?t=app:1", None);
        assert_eq!(o.get("image").map(String::as_str), Some("app:1"));
        let o = objects_of("GET", "/distribution/busybox/json", None);
        assert_eq!(o.get("image").map(String::as_str), Some("busybox"));
        let o = objects_of("GET", "/_ping", None);
        assert!(o.is_empty(), "{o:?}");
    }

    // ---- One record type: whatever the writer writes, `schema::Record` reads back whole. ----

    use std::sync::Mutex;
    use std::time::Instant;

    use crate::audit::schema::Record;
    use crate::audit::{Audit, AuditSettings};
    use crate::context::{Facts, Verdict};
    use crate::error::ProxyError;
    use crate::metrics::Metrics;
    use crate::refusal::{Refusal, RefusalKind};

    fn quiet_audit() -> Audit {
        let settings = AuditSettings {
            sinks: Vec::new(),
            ..AuditSettings::default()
        };
        Audit::start(settings, Metrics::new()).unwrap()
    }

    /// A request's trail as the layers leave it: classified, with a client and connection.
    fn trail(audit: &Audit, method: &str, target: &str) -> Trail {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = target.parse().unwrap();
        let peer = Peer::Unix {
            uid: 1000,
            gid: 1000,
            pid: Some(4242),
        };
        let evidence = Evidence {
            exe: Some("/usr/bin/docker".into()),
            loginuid: Some(1000),
            cert_subject: None,
            cert_san: Vec::new(),
        };
        let trail = Trail {
            audit: audit.clone(),
            id: audit.next_id(),
            time: SystemTime::now(),
            started: Instant::now(),
            conn_fields: Some(connection_fields("ci", &peer, &evidence)),
            method: method.clone(),
            uri: uri.clone(),
            user_agent: Some(http::HeaderValue::from_static(
                "Docker-Client/20.10.24 (linux)",
            )),
            facts: Mutex::new(Facts {
                client: Some(Arc::from("ci")),
                ..Facts::default()
            }),
        };
        if let Ok(normalized) = crate::route::normalize(&method, &uri) {
            let op = crate::route::classify(&method, &normalized.path, &normalized.query);
            trail.note_request(Arc::new(normalized), Arc::new(op));
        }
        trail
    }

    fn written(trail: &Trail, event: &'static str, status: Option<u16>) -> Vec<u8> {
        let counts = Counts {
            at: None,
            status,
            duration: Duration::from_micros(12_345),
            bytes_in: 321,
            bytes_out: 4567,
            end: "complete",
        };
        let mut out = Vec::new();
        write_line(trail, event, &counts, &mut out);
        out
    }

    /// Every member of a summary filled in, as an inspector could.
    fn full_summary() -> Summary {
        let mut ulimits = BTreeMap::new();
        ulimits.insert("nofile".to_owned(), 1024);
        Summary {
            kind: "container_create",
            name: Some("job".into()),
            image: Some("docker.io/library/busybox:latest".into()),
            user: Some("1000:1000".into()),
            privileged: true,
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            mounts: vec![crate::inspect::MountSummary {
                kind: "bind",
                source: Some("/srv/cache".into()),
                target: "/cache".into(),
                read_only: true,
                from: "Binds",
            }],
            named_volumes: vec!["data".into()],
            networks: vec!["ci-net".into()],
            namespaces: vec!["network=none".into()],
            security_opt: vec!["no-new-privileges".into()],
            devices: vec!["/dev/fuse".into()],
            limits: crate::inspect::Limits {
                memory: Some(1 << 28),
                memory_swap: Some(1 << 29),
                nano_cpus: Some(1_000_000_000),
                cpu_shares: Some(512),
                cpu_quota: Some(50_000),
                pids: Some(256),
                shm_size: Some(1 << 26),
            },
            ulimits,
            runtime: Some("runc".into()),
            port_bindings: vec!["127.0.0.1:8080->80/tcp".into()],
            restart_policy: Some("on-failure".into()),
            driver: Some("local".into()),
            tags: vec!["docker.io/library/app:1".into()],
            plugin_privileges: vec!["network=host".into()],
        }
    }

    /// `null` members dropped (the type reads them as absent, and writes absent as nothing).
    fn without_nulls(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, without_nulls(v)))
                    .collect(),
            ),
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
            }
            other => other,
        }
    }

    /// Numbers compared by value (`12.345` read as f64 and written back is the same number).
    fn same(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Result<(), String> {
        use serde_json::Value as V;
        match (a, b) {
            (V::Number(x), V::Number(y)) if x.as_f64() == y.as_f64() => Ok(()),
            (V::Object(x), V::Object(y)) => {
                for key in x.keys().chain(y.keys()) {
                    let (Some(p), Some(q)) = (x.get(key), y.get(key)) else {
                        return Err(format!("{at}.{key}: only on one side"));
                    };
                    same(p, q, &format!("{at}.{key}"))?;
                }
                Ok(())
            }
            (V::Array(x), V::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .try_for_each(|(i, (p, q))| same(p, q, &format!("{at}[{i}]"))),
            _ if a == b => Ok(()),
            _ => Err(format!("{at}: {a} != {b}")),
        }
    }

    /// The line reads as a [`Record`] that serializes back to the same members and values:
    /// the writer writes nothing the type does not know, in no other shape.
    fn round_trips(line: &[u8]) -> Record {
        let text = std::str::from_utf8(line).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        let written: serde_json::Value = serde_json::from_str(text).unwrap();
        let record: Record = serde_json::from_value(written.clone()).unwrap();
        let again = serde_json::to_value(&record).unwrap();
        if let Err(diff) = same(&without_nulls(written), &again, "record") {
            panic!("{diff}\nwritten: {text}read back: {again}");
        }
        record
    }

    #[test]
    fn every_kind_of_record_round_trips_through_the_one_record_type() {
        let audit = quiet_audit();

        // Allowed, inspected, with defaults applied and the body logged.
        let t = trail(&audit, "POST", "/v1.41/containers/create?name=job");
        t.note_decision(
            Verdict::Allow,
            Some(Arc::from("ci")),
            Arc::from("ci-allow"),
            Reason::Allowed("container.create"),
        );
        t.note_inspection(Some(full_summary()), None);
        t.note_defaults(vec!["Memory=268435456".into()]);
        t.note_body(&bytes::Bytes::from_static(
            br#"{"Image":"busybox","Env":["TOKEN=x"],"HostConfig":{"Binds":["/srv/cache:/cache:ro"]}}"#,
        ));
        let r = round_trips(&written(&t, "request", Some(201)));
        assert_eq!(r.decision.as_deref(), Some("allow"));
        assert_eq!(r.settings.as_ref().unwrap().mounts.len(), 1);
        assert_eq!(
            r.user_agent.as_deref(),
            Some("Docker-Client/20.10.24 (linux)")
        );
        assert_eq!(r.defaults_applied, vec!["Memory=268435456".to_owned()]);
        assert!(r.body.is_some());
        assert_eq!(r.peer.as_ref().unwrap().pid, Some(4242));

        // Would-deny with violations (audit mode).
        let t = trail(&audit, "POST", "/containers/create");
        t.note_decision(
            Verdict::Allow,
            Some(Arc::from("ci")),
            Arc::from("ci-allow"),
            Reason::Allowed("container.create"),
        );
        t.note_inspection(
            None,
            Some((
                "container.create",
                Violation {
                    field: "HostConfig.Privileged".into(),
                    reason: "privileged containers are not allowed (allow_privileged)".into(),
                    setting: Some("allow_privileged".into()),
                    value: None,
                },
            )),
        );
        let line = written(&t, "request", Some(201));
        let r = round_trips(&line);
        assert_eq!(r.decision.as_deref(), Some("would-deny"));
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].setting.as_deref(), Some("allow_privileged"));
        assert_eq!(
            r.reason.as_deref(),
            Some("HostConfig.Privileged: privileged containers are not allowed (allow_privileged)")
        );
        let raw: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            raw["violations"],
            serde_json::json!([{
                "field": "HostConfig.Privileged",
                "reason": "privileged containers are not allowed (allow_privileged)",
                "setting": "allow_privileged",
            }])
        );

        // Refused by a rule (of each kind), by inspection (enforced), as malformed, by the rate
        // limit, by the audit gate.
        let denied = |kind: RefusalKind, rule: &str| {
            ProxyError::Denied(Box::new(Refusal {
                operation: "system.info",
                method: Method::GET,
                path: "/info".into(),
                policy: Some(Arc::from("ci")),
                rule: Arc::from(rule),
                kind,
            }))
        };
        let bind = Violation {
            field: "HostConfig.Binds[0]".into(),
            reason: "host path /var/run/docker.sock is not allowed (bind_sources)".into(),
            setting: Some("bind_sources".into()),
            value: Some("/var/run/docker.sock".into()),
        };
        let refusals = [
            denied(RefusalKind::NotAllowed, "default-deny"),
            denied(RefusalKind::DenyRule, "deny system.*"),
            denied(RefusalKind::NoClient, "no-client"),
            denied(
                RefusalKind::Conditions(vec![crate::refusal::UnmetRule {
                    rule: Arc::from("info"),
                    conditions: vec![crate::refusal::UnmetCondition {
                        param: "x".into(),
                        wanted: "x is not set".into(),
                        found: "x=1".into(),
                    }],
                }]),
                "default-deny",
            ),
            denied(RefusalKind::Inspection(bind.clone()), "ci.container"),
            ProxyError::BadRequest("unclean path".into()),
            ProxyError::Limited {
                limit: crate::error::Limit::Rate,
                what: "client ci is over 10 requests/s".into(),
                retry_after: None,
            },
            ProxyError::Unavailable("the audit log cannot be written".into()),
        ];
        for refusal in &refusals {
            let t = trail(&audit, "GET", "/v1.41/info?x=1");
            // Allowed first: the refusal that follows decides the record.
            t.note_decision(
                Verdict::Allow,
                Some(Arc::from("ci")),
                Arc::from("ci-allow"),
                Reason::Allowed("system.info"),
            );
            t.note_error(refusal);
            let line = written(&t, "request", Some(refusal.status().as_u16()));
            let r = round_trips(&line);
            assert_eq!(r.decision.as_deref(), Some("deny"), "{refusal}");
            assert_ne!(r.rule.as_deref(), Some("ci-allow"), "{refusal}");
            if let ProxyError::Denied(refusal) = refusal {
                assert_eq!(r.reason, Some(refusal.reason().to_string()));
                assert_eq!(r.rule.as_deref(), Some(&*refusal.rule));
                assert_eq!(r.operation.as_deref(), Some("system.info"));
                if let RefusalKind::Inspection(v) = &refusal.kind {
                    assert_eq!(r.violations, vec![crate::audit::schema::Violation::from(v)]);
                    assert_eq!(
                        r.violations[0].value.as_deref(),
                        Some("/var/run/docker.sock")
                    );
                    let raw: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    assert_eq!(raw["violations"][0]["setting"], "bind_sources");
                    assert_eq!(raw["violations"][0]["value"], "/var/run/docker.sock");
                    assert_eq!(raw["violations"][0]["field"], "HostConfig.Binds[0]");
                } else {
                    assert!(r.violations.is_empty(), "{refusal}");
                }
            }
        }
        let t = trail(&audit, "GET", "/v1.41/info");
        t.note_error(&refusals[0]);
        let r = round_trips(&written(&t, "request", Some(403)));
        assert_eq!(
            r.reason.as_deref(),
            Some("no rule allows system.info"),
            "a refusal's reason is today's text"
        );

        // The daemon failed; a request the router cannot read at all.
        let t = trail(&audit, "GET", "/containers/json");
        t.note_error(&ProxyError::Upstream {
            addr: "unix:///run/docker.sock".into(),
            detail: "connection refused".into(),
        });
        let r = round_trips(&written(&t, "request", Some(502)));
        assert_eq!(r.error.as_deref(), Some("connection refused"));
        let t = trail(&audit, "GET", "/containers/../json");
        round_trips(&written(&t, "request", Some(400)));

        // A hijacked session opening and closing.
        let t = trail(&audit, "POST", "/containers/job/attach?stream=1&stdin=1");
        t.note_decision(
            Verdict::Allow,
            Some(Arc::from("ci")),
            Arc::from("ci-allow"),
            Reason::Allowed("container.attach"),
        );
        let r = round_trips(&written(&t, "session_open", Some(101)));
        assert!(r.is_request());
        let r = round_trips(&written(&t, "session_close", None));
        assert!(!r.is_request());
        assert_eq!(r.objects.get("container"), Some(&Some("job".to_owned())));

        // A reload record, serialized from the type itself.
        let reload = Record {
            time: Some("2026-12-03T08:00:00.000000Z".into()),
            id: Some(audit.next_id()),
            event: Some("reload".into()),
            result: Some("ok".into()),
            source: Some("SIGHUP".into()),
            generation: Some(3),
            restart_needed: vec!["listen".into()],
            ..Record::default()
        };
        let mut out = Vec::new();
        super::super::sink::record_line(&reload, &mut out);
        assert_eq!(round_trips(&out), reload);
    }

    /// Which decision a record keeps is a rule, not the order of writes: audit mode keeps the
    /// rule's would-deny over inspection's; a refusal beats any earlier allow or would-deny.
    #[test]
    fn decisions_settle_by_rank_not_by_order() {
        let audit = quiet_audit();
        let violation = Violation {
            field: "HostConfig.Privileged".into(),
            reason: "privileged containers are not allowed (allow_privileged)".into(),
            setting: Some("allow_privileged".into()),
            value: None,
        };
        let t = trail(&audit, "POST", "/containers/create");
        t.note_decision(
            Verdict::WouldDeny,
            Some(Arc::from("ro")),
            Arc::from("default-deny"),
            Reason::Refused("container.create", RefusalKind::NotAllowed),
        );
        t.note_inspection(None, Some(("container.create", violation.clone())));
        let r = round_trips(&written(&t, "request", Some(201)));
        assert_eq!(r.decision.as_deref(), Some("would-deny"));
        assert_eq!(r.rule.as_deref(), Some("default-deny"));
        assert_eq!(r.reason.as_deref(), Some("no rule allows container.create"));
        assert_eq!(r.violations.len(), 1);

        // Enforced: allowed by a rule, then refused by inspection.
        let t = trail(&audit, "POST", "/containers/create");
        t.note_decision(
            Verdict::Allow,
            Some(Arc::from("ci")),
            Arc::from("ci-allow"),
            Reason::Allowed("container.create"),
        );
        t.note_error(&ProxyError::Denied(Box::new(Refusal {
            operation: "container.create",
            method: Method::POST,
            path: "/containers/create".into(),
            policy: Some(Arc::from("ci")),
            rule: Arc::from("ci.container"),
            kind: RefusalKind::Inspection(violation),
        })));
        // A later allow changes nothing.
        t.note_decision(
            Verdict::Allow,
            Some(Arc::from("ci")),
            Arc::from("ci-allow"),
            Reason::Allowed("container.create"),
        );
        let r = round_trips(&written(&t, "request", Some(403)));
        assert_eq!(r.decision.as_deref(), Some("deny"));
        assert_eq!(r.rule.as_deref(), Some("ci.container"));
        assert_eq!(r.violations[0].setting.as_deref(), Some("allow_privileged"));
    }

    #[test]
    fn long_paths_and_queries_are_cut_with_their_length() {
        let audit = quiet_audit();
        // An URI holds at most 64 KiB (hyper refuses longer request heads anyway).
        let long = "a".repeat(30 * 1024);
        let many: String = (0..200).map(|i| format!("&p{i}=x")).collect();
        let target = format!("/v1.41/_ping?q={long}&{long}=v{many}");
        let t = trail(&audit, "GET", &target);
        let line = written(&t, "request", Some(200));
        assert!(line.len() < 16 * 1024, "{} bytes", line.len());
        let r = round_trips(&line);
        let q = &r.query["q"][0];
        assert!(q.starts_with(&"a".repeat(MAX_TEXT)), "{q}");
        assert!(
            q.ends_with(&format!("{TRUNCATED}{} bytes]", 30 * 1024)),
            "{q}"
        );
        let key = r.query.keys().find(|k| k.len() > MAX_TEXT).unwrap();
        assert!(
            key.ends_with(&format!("{TRUNCATED}{} bytes]", 30 * 1024)),
            "{key}"
        );
        assert_eq!(r.query[MORE_PARAMS], vec!["138 more parameters, 928 bytes"]);
        // Many long values: the record stays small all the same.
        let long = "b".repeat(2000);
        let many: String = (0..30).map(|i| format!("&v{i}={long}")).collect();
        let t = trail(&audit, "GET", &format!("/_ping?x=1{many}"));
        let line = written(&t, "request", Some(200));
        assert!(line.len() < 2 * MAX_QUERY_BYTES, "{} bytes", line.len());
        let r = round_trips(&line);
        assert!(
            r.query[MORE_PARAMS][0].starts_with("23 more parameters"),
            "{:?}",
            r.query
        );
        // Short text is untouched; a multi-byte character is never split.
        assert_eq!(bounded("short"), "short");
        let cut = bounded_to("ééé", 3);
        assert!(cut.starts_with('é') && cut.contains("6 bytes"), "{cut}");
    }

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
        redact::document(&mut body);
        let text = body.to_string();
        for secret in ["hunter2", "\"x\"", "\"pw\"", "tok\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(body["env"][0], "DB_PASSWORD=<redacted>");
        assert_eq!(body["env"][1], "PLAIN");
        assert_eq!(body["HostConfig"]["Binds"][0], "/srv:/srv");
    }
}
