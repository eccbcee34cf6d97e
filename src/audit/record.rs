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
    plain_member(out, key_quote!("id"), trail.id.as_str());
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
mod tests;
