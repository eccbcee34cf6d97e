//! The per-request context: who is asking under which configuration ([`Caller`], put on each
//! request by the server with the rest of what it knows of the request's arrival, [`Arrival`])
//! and what the layers learned about the request ([`Trail`], created
//! by the audit layer, filled in by the authorization and inspection layers and the error
//! boundary, and written out as the request's audit record).
//!
//! It sits below the request layers: they all read and write it, and it depends on none of
//! them, so no layer depends on another through it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Method, Uri};
use serde::Serialize;

use crate::audit::Audit;
use crate::error::ProxyError;
use crate::inspect::{Summary, Violation};
use crate::metrics::Metrics;
use crate::policy::Reason;
use crate::refusal::RefusalKind;
use crate::reload::Runtime;
use crate::route::{Normalized, Operation, Reading};

/// What the server knows of a request as it arrives, put on it as one extension: each
/// extension is an allocation and a map insert (four of them were ~1,000 instructions of a
/// `/_ping`'s ~60,000), and the layers read the parts through [`caller`] and [`conn`].
#[derive(Debug, Clone)]
pub struct Arrival {
    pub caller: Caller,
    /// The connection it came on.
    pub conn: Arc<crate::listener::ConnInfo>,
    /// What the framing watch saw of its head (duplicate or conflicting lengths).
    pub framing: crate::listener::framing::Framing,
    /// The client connection's own upstream connections, for the forwarder.
    pub conns: Arc<crate::upstream::ClientConns>,
}

/// The request's [`Caller`] (none outside a server).
pub fn caller(extensions: &http::Extensions) -> Option<&Caller> {
    extensions.get::<Arrival>().map(|a| &a.caller)
}

/// The connection the request came on (none outside a server).
pub fn conn(extensions: &http::Extensions) -> Option<&crate::listener::ConnInfo> {
    extensions.get::<Arrival>().map(|a| &*a.conn)
}

/// The label that records an object's tenant under the request's configuration (the
/// default outside a server).
pub fn owner_label(extensions: &http::Extensions) -> Arc<str> {
    caller(extensions)
        .map(|c| c.runtime.authority.owner_label().clone())
        .unwrap_or_else(|| Arc::from(crate::policy::DEFAULT_OWNER_LABEL))
}

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
    /// The request id's text (made once: the record and the response header both carry it).
    pub(crate) id: crate::logging::request::IdText,
    pub(crate) time: SystemTime,
    pub(crate) started: Instant,
    /// `"listener":...,"peer":{...}`, from the connection (see `audit::record::connection_fields`).
    pub(crate) conn_fields: Option<Arc<[u8]>>,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) facts: Mutex<Facts>,
    /// Bytes of the request's and the response's bodies, counted as they stream (kept here,
    /// not in counters of their own: no allocation per request for them).
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) client: Option<Arc<str>>,
    pub(crate) normalized: Option<Arc<Normalized>>,
    pub(crate) operation: Option<Arc<Operation>>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) policy: Option<Arc<str>>,
    /// The client's tenant, under a policy's isolation (`uid:1001`).
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) rule: Option<Arc<str>>,
    pub(crate) reason: Option<Reason>,
    /// Inspection's refusal (enforced, or only recorded in audit mode).
    pub(crate) violations: Vec<Violation>,
    pub(crate) settings: Option<Summary>,
    pub(crate) body: Option<bytes::Bytes>,
    pub(crate) defaults: Vec<String>,
    pub(crate) error: Option<String>,
    /// A rate-limit refusal whose record is left out (one a second is written per client).
    pub(crate) unrecorded: bool,
    /// Rate-limit refusals of the client left unrecorded since its last recorded one.
    pub(crate) suppressed: u64,
    /// The request as the audit layer read it, until the authorize layer takes it (not part
    /// of the record: the authorize layer notes what it decided on).
    pub(crate) reading: Option<Reading>,
}

impl Facts {
    /// Notes a decision, by rank rather than by order: a refusal (`deny`) replaces an allow or
    /// a `would-deny` and is never replaced (it is the answer the client got); a `would-deny`
    /// replaces an allow but not an earlier `would-deny` (audit mode keeps the first reason:
    /// the rule's, before inspection's); an allow only fills in a missing decision. A
    /// decision without a policy keeps the one already noted.
    fn settle(
        &mut self,
        verdict: Verdict,
        policy: Option<Arc<str>>,
        rule: Arc<str>,
        reason: Reason,
    ) {
        let rank = |v: Option<Verdict>| match v {
            None => 0,
            Some(Verdict::Allow) => 1,
            Some(Verdict::WouldDeny) => 2,
            Some(Verdict::Deny) => 3,
        };
        if rank(Some(verdict)) <= rank(self.verdict) {
            return;
        }
        self.verdict = Some(verdict);
        if policy.is_some() {
            self.policy = policy;
        }
        self.rule = Some(rule);
        self.reason = Some(reason);
    }
}

impl Trail {
    /// A trail for `method uri` as a unit test needs it: no connection, no user agent, no
    /// facts yet (tests fill in what they look at).
    #[cfg(test)]
    pub(crate) fn for_test(audit: &Audit, method: Method, uri: Uri) -> Trail {
        Trail {
            audit: audit.clone(),
            id: audit.next_id().text(),
            time: SystemTime::now(),
            started: Instant::now(),
            conn_fields: None,
            method,
            uri,
            user_agent: None,
            facts: Mutex::default(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

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
        self.facts().settle(verdict, policy, rule, reason);
    }

    /// Inspection passed (`violation` `None`), or in audit mode would have refused the
    /// request of `operation` with `violation`; it saw these settings.
    pub fn note_inspection(
        &self,
        settings: Option<Summary>,
        violation: Option<(&'static str, Violation)>,
    ) {
        let mut facts = self.facts();
        if let Some((operation, violation)) = violation {
            // A request a rule already refuses (in audit mode) keeps that rule as its reason
            // (see `Facts::settle`); the violation is listed as well.
            facts.settle(
                Verdict::WouldDeny,
                None,
                Arc::from("inspection"),
                Reason::Refused(operation, RefusalKind::Inspection(violation.clone())),
            );
            facts.violations = vec![violation];
        }
        facts.settings = settings;
    }

    /// A rate-limit refusal: `Some(n)` writes its record, counting the `n` refusals left
    /// unrecorded before it; `None` leaves its record out (see `limits::RateExceeded::record`).
    pub fn note_rate_refusal(&self, record: Option<u64>) {
        let mut facts = self.facts();
        match record {
            Some(n) => facts.suppressed = n,
            None => facts.unrecorded = true,
        }
    }

    /// sockwarden answered an allowed request itself, without forwarding it (isolation's
    /// answer for what cannot be scoped to a tenant): `rule` and `reason` say so in the
    /// record. A refusal or would-deny already noted stays.
    pub fn note_answered(&self, rule: Arc<str>, reason: &str) {
        let mut facts = self.facts();
        if matches!(facts.verdict, None | Some(Verdict::Allow)) {
            facts.verdict = Some(Verdict::Allow);
            facts.rule = Some(rule);
            facts.reason = Some(Reason::Text(reason.to_owned()));
        }
    }

    /// The client's tenant, under a policy's isolation. (The audit layer notes it when it
    /// starts the record, `isolation::Tenant::of_caller`; tests build trails by hand.)
    #[cfg(test)]
    pub fn note_tenant(&self, tenant: &str) {
        self.facts().tenant = Some(Arc::from(tenant));
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
        let deny =
            |rule: &'static str, reason: &str| (Arc::from(rule), Reason::Text(reason.to_owned()));
        let (rule, reason) = match error {
            ProxyError::Upstream { detail, .. } => {
                facts.error = Some(detail.clone());
                self.audit.metrics().upstream_error();
                return;
            }
            ProxyError::BadUpstream(detail) => {
                facts.error = Some(detail.clone());
                return;
            }
            ProxyError::Denied(refusal) => {
                if let Some(violation) = refusal.kind.violation() {
                    facts.violations = vec![violation.clone()];
                }
                let reason = Reason::Refused(refusal.operation, refusal.kind.clone());
                facts.settle(
                    Verdict::Deny,
                    refusal.policy.clone(),
                    refusal.rule.clone(),
                    reason,
                );
                return;
            }
            ProxyError::BadRequest(reason) => deny("bad-request", reason),
            ProxyError::Limited { limit, what, .. } => {
                let client = facts.client.clone();
                self.audit
                    .metrics()
                    .limited(client.as_deref().unwrap_or(""), limit.as_str());
                deny(limit.rule(), what)
            }
            ProxyError::Unavailable(reason) => deny("audit-unavailable", reason),
            ProxyError::BodyTimeout(timeout) => deny("body-timeout", &timeout.to_string()),
        };
        facts.settle(Verdict::Deny, None, rule, reason);
    }

    /// The metrics, for the session gauge.
    pub fn metrics(&self) -> &Metrics {
        self.audit.metrics()
    }
}
