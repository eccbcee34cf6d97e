//! A refusal as a value: which operation was refused, by which policy and rule, and why (its
//! [`RefusalKind`]: no client, a deny rule, nothing allowing it, unmet conditions of
//! conditional allow rules, or an inspection [`Violation`] with its field, the setting that
//! would allow it and the offending value).
//!
//! The layer that decides builds it once; the response (its `Display` is the message the
//! client reads), the audit record (the violation as a structured object), the metrics,
//! `explain` and `audit suggest` read its parts. Nothing downstream parses its text.
//!
//! Low in the module graph: it depends only on the inspectors' [`Violation`] type.

use std::fmt;
use std::sync::Arc;

use http::Method;

use crate::inspect::Violation;
use crate::route::ObjectKind;

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The classified operation (a name from the operation table).
    pub operation: &'static str,
    /// The request method, for the message.
    pub method: Method,
    /// The normalized path, for the message.
    pub path: String,
    /// The policy consulted (`None`: the connection matched no client).
    pub policy: Option<Arc<str>>,
    /// The rule that refused: a rule's name, `default-deny`, `no-client`, or for inspection
    /// `POLICY.SECTION` (the policy's inspection section).
    pub rule: Arc<str>,
    /// Why.
    pub kind: RefusalKind,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// The connection matches no configured client.
    NoClient,
    /// The client has no policy (a client name the configuration does not know).
    UnknownClient(Arc<str>),
    /// A deny rule matches the request.
    DenyRule,
    /// No rule allows the operation (default deny).
    NotAllowed,
    /// Allow rules name the operation, but their query conditions do not hold.
    Conditions(Vec<UnmetRule>),
    /// Inspection refused the body or query.
    Inspection(Violation),
    /// The client's isolation refused it (see `crate::isolation`).
    Isolation(Isolated),
}

/// Why isolation refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolated {
    /// The operation is not available to isolated clients (`Tenancy::Unavailable`).
    Unavailable,
    /// The object is another tenant's or no tenant's. The client reads exactly what the
    /// daemon answers for a missing object ([`Isolated::docker_message`], 404), so tenants
    /// cannot probe for each other; the audit record says why.
    NotOwned {
        /// What kind of object was named.
        kind: ObjectKind,
        /// The name, ID or ID prefix as the client wrote it.
        name: String,
    },
    /// As [`Isolated::NotOwned`], answered with the daemon's own message for a missing
    /// object of the same request shape (asked of the daemon: its words vary by operation
    /// and version, as an image's do).
    NotOwnedAs {
        /// What kind of object was named.
        kind: ObjectKind,
        /// The name as the client wrote it.
        name: String,
        /// The daemon's message, with the name put in.
        message: String,
    },
    /// The client set the owner label itself: ownership cannot be forged.
    ForgedOwner {
        /// Where it was set (`Labels`, `labels` query).
        field: String,
    },
    /// The name is taken by an object the tenant may not change or use this way: an image
    /// tag another tenant's image (or a shared base image) holds, another tenant's volume
    /// named in a create.
    Held {
        /// What kind of object holds the name.
        kind: ObjectKind,
        /// The name.
        name: String,
    },
    /// A shared base image (one no tenant owns): every tenant uses it, none may tag, push or
    /// remove it.
    Shared {
        /// The image as the client named it.
        name: String,
    },
    /// A container create would make the daemon create a volume with driver settings
    /// sockwarden cannot create owned for it.
    ImplicitVolume {
        /// The volume's name.
        name: String,
    },
    /// The request would make an image sockwarden could not record as the tenant's (see
    /// `isolation::ledger`).
    Unrecordable {
        /// Why, in words.
        reason: String,
    },
    /// The image holds a name or ID one of the tenant's running builds uses (see
    /// `isolation::pins`): removing it could hand the name to another tenant mid-build.
    Building {
        /// The image as the client named it.
        name: String,
    },
    /// The tenant already has as many objects of this kind as its policy allows.
    Quota {
        /// What kind of object.
        kind: ObjectKind,
        /// The policy's limit.
        limit: u64,
    },
}

impl Isolated {
    /// What the Docker daemon answers for a missing object, word for word, when this refusal
    /// stands in for that answer (`None`: the refusal is sockwarden's own message).
    pub fn docker_message(&self) -> Option<String> {
        if let Isolated::NotOwnedAs { message, .. } = self {
            return Some(message.clone());
        }
        let Isolated::NotOwned { kind, name } = self else {
            return None;
        };
        Some(match kind {
            ObjectKind::Container => format!("No such container: {name}"),
            ObjectKind::Exec => format!("No such exec instance: {name}"),
            ObjectKind::Image => format!("No such image: {}", familiar_image(name)),
            ObjectKind::Volume => format!("get {name}: no such volume"),
            ObjectKind::Network => format!("network {name} not found"),
            other => format!("No such {}: {name}", other.as_str()),
        })
    }
}

/// An image name as the daemon's "No such image" shows it (`reference.FamiliarString` of the
/// name with `latest` added when it has no tag): `busybox` is `busybox:latest`,
/// `docker.io/library/busybox` too; a full hex ID is `sha256:ID`; a digest stays as given.
fn familiar_image(name: &str) -> String {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(name) {
        return format!("sha256:{name}");
    }
    if name.starts_with("sha256:") {
        return name.to_owned();
    }
    let short = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    let last = short.rsplit('/').next().unwrap_or(short);
    if short.contains('@') || last.contains(':') {
        short.to_owned()
    } else {
        format!("{short}:latest")
    }
}

impl fmt::Display for Isolated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Isolated::Unavailable => f.write_str("not available to isolated clients (isolation)"),
            Isolated::NotOwned { kind, name } | Isolated::NotOwnedAs { kind, name, .. } => write!(
                f,
                "{} {name} is not this tenant's (isolation): answered as missing",
                kind.as_str()
            ),
            Isolated::ForgedOwner { field } => write!(
                f,
                "{field}: the owner label is set by sockwarden only (isolation)"
            ),
            Isolated::Held { kind, name } => write!(
                f,
                "the {} name {name} is taken by an object this tenant does not own (isolation)",
                kind.as_str()
            ),
            Isolated::Shared { name } => write!(
                f,
                "{name} is a shared base image: tenants may use it but not tag, push, \
                 overwrite or remove it (isolation)"
            ),
            Isolated::ImplicitVolume { name } => write!(
                f,
                "volume {name} does not exist and the mount sets a volume driver or its \
                 options: create it first with `docker volume create` (isolation)"
            ),
            Isolated::Unrecordable { reason } => write!(f, "{reason} (isolation)"),
            Isolated::Building { name } => write!(
                f,
                "image {name} is used by a build of this tenant that is still running: remove \
                 it once the build has ended (isolation)"
            ),
            Isolated::Quota { kind, limit } => write!(
                f,
                "this tenant already has {limit} {}s, the most its policy allows (isolation)",
                kind.as_str()
            ),
        }
    }
}

/// A conditional allow rule the request fails, with the conditions it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmetRule {
    /// The rule's name.
    pub rule: Arc<str>,
    /// What it wants and what the request has.
    pub conditions: Vec<UnmetCondition>,
}

/// A query condition a request fails (see `policy::Rule::unmet_conditions`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnmetCondition {
    /// The query parameter.
    pub param: String,
    /// What the rule wants, in words (`follow is not set`, `all=1`).
    pub wanted: String,
    /// What the request has (`follow=1`, `no all`).
    pub found: String,
}

impl RefusalKind {
    /// The reason in words, as the client and the audit record read it, for `operation`.
    pub fn reason(&self, operation: &'static str) -> ReasonText<'_> {
        ReasonText {
            kind: self,
            operation,
        }
    }

    /// The inspection violation, for an inspection refusal.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            RefusalKind::Inspection(violation) => Some(violation),
            _ => None,
        }
    }

    /// A short name of the kind (`no-client`, `deny-rule`, `not-allowed`, `conditions`,
    /// `inspection`).
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalKind::NoClient | RefusalKind::UnknownClient(_) => "no-client",
            RefusalKind::DenyRule => "deny-rule",
            RefusalKind::NotAllowed => "not-allowed",
            RefusalKind::Conditions(_) => "conditions",
            RefusalKind::Inspection(_) => "inspection",
            RefusalKind::Isolation(_) => "isolation",
        }
    }
}

/// [`RefusalKind::reason`]: written when displayed, so building a refusal allocates no text.
#[derive(Debug, Clone, Copy)]
pub struct ReasonText<'a> {
    kind: &'a RefusalKind,
    operation: &'static str,
}

impl fmt::Display for ReasonText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = self.operation;
        match self.kind {
            RefusalKind::NoClient => f.write_str("this connection matches no configured client"),
            RefusalKind::UnknownClient(client) => write!(f, "unknown client {client:?}"),
            RefusalKind::DenyRule => write!(f, "{operation} is denied"),
            RefusalKind::NotAllowed => write!(f, "no rule allows {operation}"),
            RefusalKind::Conditions(rules) => {
                for (i, unmet) in rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "rule {} allows {operation} only when ", unmet.rule)?;
                    join(f, unmet.conditions.iter().map(|c| c.wanted.as_str()))?;
                    f.write_str("; this request has ")?;
                    join(f, unmet.conditions.iter().map(|c| c.found.as_str()))?;
                }
                Ok(())
            }
            RefusalKind::Inspection(violation) => violation.fmt(f),
            RefusalKind::Isolation(isolated) => isolated.fmt(f),
        }
    }
}

fn join<'s>(f: &mut fmt::Formatter<'_>, parts: impl Iterator<Item = &'s str>) -> fmt::Result {
    for (i, part) in parts.enumerate() {
        if i > 0 {
            f.write_str(" and ")?;
        }
        f.write_str(part)?;
    }
    Ok(())
}

impl Refusal {
    /// The daemon's own words, when the refusal stands in for the daemon's answer (isolation
    /// answers another tenant's object as a missing one).
    pub fn docker_message(&self) -> Option<String> {
        match &self.kind {
            RefusalKind::Isolation(isolated) => isolated.docker_message(),
            _ => None,
        }
    }

    /// The reason in words (`no rule allows system.info`, `FIELD: why (setting)`).
    pub fn reason(&self) -> ReasonText<'_> {
        self.kind.reason(self.operation)
    }
}

/// The message a client reads (after `sockwarden: `):
/// `OPERATION (METHOD PATH) refused: REASON (policy POLICY, rule RULE)`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} {}) refused: {} (policy {}, rule {})",
            self.operation,
            self.method,
            self.path,
            self.reason(),
            self.policy.as_deref().unwrap_or("none"),
            self.rule
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(kind: RefusalKind, policy: Option<&str>, rule: &str) -> Refusal {
        Refusal {
            operation: "container.create",
            method: Method::POST,
            path: "/containers/create".into(),
            policy: policy.map(Arc::from),
            rule: Arc::from(rule),
            kind,
        }
    }

    #[test]
    fn every_kind_renders_the_clients_message() {
        let cases = [
            (
                refusal(RefusalKind::NotAllowed, Some("read-only"), "default-deny"),
                "container.create (POST /containers/create) refused: no rule allows \
                 container.create (policy read-only, rule default-deny)",
            ),
            (
                refusal(RefusalKind::DenyRule, Some("ci"), "deny container.*"),
                "container.create (POST /containers/create) refused: container.create is \
                 denied (policy ci, rule deny container.*)",
            ),
            (
                refusal(RefusalKind::NoClient, None, "no-client"),
                "container.create (POST /containers/create) refused: this connection matches \
                 no configured client (policy none, rule no-client)",
            ),
            (
                refusal(
                    RefusalKind::UnknownClient(Arc::from("x")),
                    None,
                    "no-client",
                ),
                "container.create (POST /containers/create) refused: unknown client \"x\" \
                 (policy none, rule no-client)",
            ),
            (
                refusal(
                    RefusalKind::Conditions(vec![UnmetRule {
                        rule: Arc::from("logs"),
                        conditions: vec![
                            UnmetCondition {
                                param: "follow".into(),
                                wanted: "follow is not set".into(),
                                found: "follow=1".into(),
                            },
                            UnmetCondition {
                                param: "tail".into(),
                                wanted: "tail=10".into(),
                                found: "no tail".into(),
                            },
                        ],
                    }]),
                    Some("ci"),
                    "default-deny",
                ),
                "container.create (POST /containers/create) refused: rule logs allows \
                 container.create only when follow is not set and tail=10; this request has \
                 follow=1 and no tail (policy ci, rule default-deny)",
            ),
            (
                refusal(
                    RefusalKind::Inspection(Violation {
                        field: "HostConfig.Privileged".into(),
                        reason: "privileged containers are not allowed (allow_privileged)".into(),
                        setting: Some("allow_privileged".into()),
                        value: None,
                    }),
                    Some("ci"),
                    "ci.container",
                ),
                "container.create (POST /containers/create) refused: HostConfig.Privileged: \
                 privileged containers are not allowed (allow_privileged) (policy ci, rule \
                 ci.container)",
            ),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text);
        }
    }
}
