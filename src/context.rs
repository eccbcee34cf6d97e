//! The per-request context: who is asking under which configuration ([`Caller`], put on each
//! request by the server) and what the layers learned about the request ([`Trail`], created
//! by the audit layer, filled in by the authorization and inspection layers and the error
//! boundary, and written out as the request's audit record).
//!
//! It sits below the request layers: they all read and write it, and it depends on none of
//! them, so no layer depends on another through it.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Method, Uri};
use serde::Serialize;

use crate::audit::Audit;
use crate::error::ProxyError;
use crate::inspect::Summary;
use crate::metrics::Metrics;
use crate::policy::Reason;
use crate::reload::Runtime;
use crate::route::{Normalized, Operation};

/// Who is asking, under which configuration: the snapshot one request is decided with.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client, if the peer matched one.
    pub client: Option<Arc<str>>,
    /// The configuration in force when the request arrived.
    pub runtime: Arc<Runtime>,
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
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::WouldDeny => "would-deny",
        }
    }
}

/// The decision a request's facts amount to: what the layers noted, else a refusal (nothing
/// noted a decision: sockwarden answered before authorization), unless the daemon failed.
pub(crate) fn verdict(facts: &Facts) -> Verdict {
    facts.verdict.unwrap_or(if facts.error.is_some() {
        Verdict::Allow
    } else {
        Verdict::Deny
    })
}

/// What the layers learned about one request. Filled in as it passes through.
#[derive(Debug)]
pub struct Trail {
    pub(crate) audit: Audit,
    pub(crate) id: String,
    pub(crate) time: SystemTime,
    pub(crate) started: Instant,
    /// `"listener":...,"peer":{...}`, from the connection (see `audit::record::connection_fields`).
    pub(crate) conn_fields: Option<Arc<[u8]>>,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) facts: Mutex<Facts>,
}

#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) client: Option<Arc<str>>,
    pub(crate) normalized: Option<Arc<Normalized>>,
    pub(crate) operation: Option<Arc<Operation>>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) policy: Option<Arc<str>>,
    pub(crate) rule: Option<Arc<str>>,
    pub(crate) reason: Option<Reason>,
    pub(crate) violations: Vec<String>,
    pub(crate) settings: Option<Summary>,
    pub(crate) body: Option<bytes::Bytes>,
    pub(crate) defaults: Vec<String>,
    pub(crate) error: Option<String>,
}

impl Trail {
    pub(crate) fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether inspected bodies should be handed over for the record.
    pub fn wants_body(&self) -> bool {
        self.audit.logs_bodies()
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

    /// Inspection refused the request (enforced): what it refused, for the record's
    /// `violations`. The decision, rule and reason come with the refusal itself
    /// ([`Trail::note_error`]).
    pub fn note_violations(&self, violations: Vec<String>) {
        self.facts().violations = violations;
    }

    /// Enforced defaults the policy added to the body (`Memory=268435456`, ...).
    pub fn note_defaults(&self, applied: Vec<String>) {
        self.facts().defaults = applied;
    }

    /// The inspected body, for `log_bodies` (redacted when the record is written).
    pub fn note_body(&self, bytes: &bytes::Bytes) {
        self.facts().body = Some(bytes.clone());
    }

    /// sockwarden answered the request itself with `error`.
    pub fn note_error(&self, error: &ProxyError) {
        let mut facts = self.facts();
        match error {
            ProxyError::Upstream { detail, .. } => {
                facts.error = Some(detail.clone());
                self.audit.metrics().upstream_error();
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
                    .metrics()
                    .limited(client.as_deref().unwrap_or(""), limit);
            }
            ProxyError::Unavailable(reason) => {
                facts.verdict = Some(Verdict::Deny);
                facts.rule = Some(Arc::from("audit-unavailable"));
                facts.reason = Some(Reason::Text(reason.clone()));
            }
        }
    }

    /// The metrics, for the session gauge.
    pub fn metrics(&self) -> &Metrics {
        self.audit.metrics()
    }

    /// The request id (the audit record's `id`).
    pub fn id(&self) -> &str {
        &self.id
    }
}
