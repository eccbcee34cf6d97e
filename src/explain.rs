//! `sockwarden explain`: what sockwarden would do with one request, without contacting the
//! daemon. It runs the same normalization, classification, policy and inspection code as the
//! request path, so its answer is the proxy's answer.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use serde::Serialize;

use crate::config::Config;
use crate::error::ProxyError;
use crate::policy;

/// The outcome for one request.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The client it was decided for.
    pub client: String,
    /// Request method.
    pub method: String,
    /// Request target as given.
    pub target: String,
    /// The classified operation, when the request could be read.
    pub operation: Option<String>,
    /// The object the route names (container, image, ...), if any.
    pub object: Option<String>,
    /// `allow`, `deny`, or `would-deny` (audit mode: forwarded, recorded as a refusal).
    pub decision: &'static str,
    /// HTTP status a client would get from sockwarden itself (`None`: forwarded).
    pub status: Option<u16>,
    /// Policy consulted.
    pub policy: Option<String>,
    /// Rule (or inspection setting) that decided.
    pub rule: Option<String>,
    /// Why.
    pub reason: String,
    /// Enforced defaults the policy would add to the body before forwarding it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub defaults_applied: Vec<String>,
}

/// Explains `method target` for `client` under `config`, with an optional request body.
pub fn explain(
    config: &Config,
    client: &str,
    method: &str,
    target: &str,
    body: Option<&[u8]>,
) -> Result<Explanation, String> {
    if !config.authority.has_client(client) {
        return Err(format!("no client named {client:?} in the configuration"));
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("{method:?} is not an HTTP method"))?;
    let uri: Uri = target
        .parse()
        .map_err(|e| format!("{target:?} is not a request target: {e}"))?;
    let mut out = Explanation {
        client: client.to_owned(),
        method: method.to_string(),
        target: target.to_owned(),
        operation: None,
        object: None,
        decision: "deny",
        status: None,
        policy: None,
        rule: None,
        reason: String::new(),
        defaults_applied: Vec::new(),
    };
    let authorized = match policy::layer::authorize(
        &config.authority,
        Some(Arc::from(client)),
        &method,
        &uri,
        &HeaderMap::new(),
    ) {
        Ok(authorized) => authorized,
        Err(refusal) => {
            refused(&mut out, refusal);
            return Ok(out);
        }
    };
    out.operation = Some(authorized.operation.name.to_owned());
    out.object = authorized.operation.object.clone();
    out.policy = authorized.decision.policy.as_deref().map(str::to_owned);
    out.rule = Some(authorized.decision.rule.to_string());
    out.reason = authorized.decision.reason.to_string();
    let body = body.unwrap_or_default();
    let rewritten = crate::inspection::apply_defaults(&authorized, body);
    if let Some((_, applied)) = &rewritten {
        out.defaults_applied = applied.clone();
    }
    let body = rewritten.as_ref().map_or(body, |(b, _)| b.as_slice());
    match crate::inspection::check_request(&authorized, body) {
        Ok(_) if authorized.would_deny => out.decision = "would-deny",
        Ok(_) => out.decision = "allow",
        Err(refusal) if authorized.dry_run => {
            refused(&mut out, refusal);
            out.decision = "would-deny";
            out.status = None;
        }
        Err(refusal) => refused(&mut out, refusal),
    }
    Ok(out)
}

fn refused(out: &mut Explanation, refusal: ProxyError) {
    out.decision = "deny";
    out.status = Some(refusal.status().as_u16());
    if let ProxyError::Denied {
        what,
        reason,
        policy,
        rule,
    } = &refusal
    {
        if let Some((operation, _)) = what.split_once(' ') {
            out.operation = Some(operation.to_owned());
        }
        out.policy = Some(policy.clone());
        out.rule = Some(rule.clone());
        out.reason = reason.clone();
    } else {
        out.reason = refusal.to_string();
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "request:   {} {}", self.method, self.target)?;
        writeln!(f, "client:    {}", self.client)?;
        if let Some(op) = &self.operation {
            write!(f, "operation: {op}")?;
            if let Some(object) = &self.object {
                write!(f, " (object {object})")?;
            }
            writeln!(f)?;
        }
        match self.status {
            None if self.decision == "would-deny" => writeln!(
                f,
                "decision:  WOULD-DENY (audit mode: forwarded, recorded as would-deny)"
            )?,
            None => writeln!(f, "decision:  ALLOW (forwarded to the daemon)")?,
            Some(status) => writeln!(f, "decision:  DENY (HTTP {status})")?,
        }
        if let Some(policy) = &self.policy {
            writeln!(f, "policy:    {policy}")?;
        }
        if let Some(rule) = &self.rule {
            writeln!(f, "rule:      {rule}")?;
        }
        if !self.defaults_applied.is_empty() {
            writeln!(
                f,
                "defaults:  {} (added to the body)",
                self.defaults_applied.join(", ")
            )?;
        }
        write!(f, "reason:    {}", self.reason)
    }
}
