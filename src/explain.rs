//! `sockwarden explain`: what sockwarden would do with one request, without contacting the
//! daemon. It runs the same normalization, classification, policy and inspection code as the
//! request path, so its answer is the proxy's answer.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};
use serde::Serialize;

use crate::config::Config;
use crate::error::ProxyError;
use crate::inspect::Violation;
use crate::policy::layer::Authorized;
use crate::policy::{self, Effect, Policy, RequestFacts};
use crate::refusal::{Refusal, RefusalKind, UnmetRule};
use crate::route::Normalized;

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
    /// For a refusal: what in the configuration would allow the request (`None` when nothing
    /// would, or the request was not refused).
    pub change: Option<Change>,
    /// Under the policy's isolation: what ownership decides for this request when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

/// What to change in the configuration so that a refused request would be allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The change in words, naming the TOML table and setting:
    /// `add "container.logs" to allow in [policy.ci]`.
    pub text: String,
    /// The TOML table it goes in (`[policy.ci.container]`), when it is one.
    pub section: Option<String>,
    /// The setting (`allow`, `bind_sources`, `allow_privileged`), when it is one.
    pub setting: Option<String>,
    /// The value to set or add, as TOML (`"container.logs"`, `true`, `"/srv/cache"`, `500`,
    /// `nofile = 65536` for a table entry), when there is one.
    pub value: Option<String>,
    /// Whether the change opens something that reaches the host or its data.
    pub dangerous: bool,
    /// Why it is dangerous.
    pub danger: Option<String>,
}

impl Change {
    fn text(text: String) -> Change {
        Change {
            text,
            section: None,
            setting: None,
            value: None,
            dangerous: false,
            danger: None,
        }
    }

    fn setting(text: String, section: &str, setting: &str, value: Option<String>) -> Change {
        Change {
            section: Some(section.to_owned()),
            setting: Some(setting.to_owned()),
            value,
            ..Change::text(text)
        }
    }

    fn danger(mut self, why: Option<&str>) -> Change {
        if let Some(why) = why {
            self.dangerous = true;
            self.danger = Some(why.to_owned());
        }
        self
    }
}

/// Explains `method target` for `client` under `config`, with an optional request body.
/// `client` `None` explains a connection that matches no configured client. Without a body, an
/// operation whose body is inspected is not decided (`undecided`): the body decides it.
pub fn explain(
    config: &Config,
    client: Option<&str>,
    method: &str,
    target: &str,
    body: Option<&[u8]>,
) -> Result<Explanation, String> {
    if let Some(client) = client.filter(|c| !config.authority.has_client(c)) {
        return Err(format!("no client named {client:?} in the configuration"));
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("{method:?} is not an HTTP method"))?;
    let uri: Uri = target
        .parse()
        .map_err(|e| format!("{target:?} is not a request target: {e}"))?;
    let mut out = Explanation {
        client: client.unwrap_or(NO_CLIENT).to_owned(),
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
        change: None,
        isolation: None,
    };
    // Read once, as the request path does: the refusal's explanation uses the same reading.
    let (normalized, operation) = match policy::layer::read_request(&method, &uri) {
        Ok(read) => read,
        Err(error) => {
            refused(&mut out, error);
            return Ok(out);
        }
    };
    let authorized = match policy::layer::decide(
        &config.authority,
        client.map(Arc::from),
        &method,
        &HeaderMap::new(),
        normalized.clone(),
        operation,
    ) {
        Ok(authorized) => authorized,
        Err(error) => {
            if let ProxyError::Denied(refusal) = &error {
                out.change = policy_change(config, client, &method, &normalized, refusal);
            }
            refused(&mut out, error);
            return Ok(out);
        }
    };
    out.operation = Some(authorized.operation.name.to_owned());
    out.object = authorized.operation.object.clone();
    out.policy = authorized.decision.policy.as_deref().map(str::to_owned);
    out.rule = Some(authorized.decision.rule.to_string());
    out.reason = authorized.decision.reason.to_string();
    if let Some(kind) = authorized
        .decision
        .refusal()
        .filter(|_| authorized.would_deny)
    {
        let refusal = Refusal {
            operation: authorized.operation.name,
            method: method.clone(),
            path: authorized.normalized.path.clone(),
            policy: authorized.decision.policy.clone(),
            rule: authorized.decision.rule.clone(),
            kind: kind.clone(),
        };
        out.change = policy_change(config, client, &method, &authorized.normalized, &refusal);
    }
    if let Some(note) = isolation_note(&authorized) {
        out.isolation = Some(match ledger_note(&authorized) {
            Some(ledger) => format!(
                "{note}; {ledger} ([isolation] image_ledger = {})",
                config.image_ledger.display()
            ),
            None => note.to_owned(),
        });
        // Isolation is enforced in audit mode too.
        if authorized.operation.info.tenancy == crate::route::Tenancy::Unavailable {
            refused(
                &mut out,
                ProxyError::Denied(Box::new(Refusal {
                    operation: authorized.operation.name,
                    method: method.clone(),
                    path: authorized.normalized.path.clone(),
                    policy: Some(authorized.policy.name.clone()),
                    rule: Arc::from(format!("{}.isolation", authorized.policy.name)),
                    kind: RefusalKind::Isolation(crate::refusal::Isolated::Unavailable),
                })),
            );
            return Ok(out);
        }
    }
    // A build's query gets the policy's limits written in before it is inspected.
    let mut authorized = authorized;
    let placed = explained_build_cgroup(config, &authorized);
    let cgroup = placed.as_ref().map(|(name, pids)| (name.as_str(), *pids));
    if let Ok(Some((_, normalized, applied))) =
        crate::inspect::layer::rewritten_build_query(&authorized, &uri, cgroup)
    {
        authorized.normalized = Arc::new(normalized);
        authorized.build_cgroup = cgroup.map(|(name, _)| Arc::from(name));
        out.defaults_applied = applied;
    }
    let inspected = authorized.policy.inspection;
    let Some(body) = body.filter(|_| inspected && inspects_body(authorized.operation.name)) else {
        return Ok(decide_without_body(out, &authorized, body));
    };
    let rewritten = crate::inspect::layer::apply_defaults(&authorized, body);
    if let Some((_, applied)) = &rewritten {
        out.defaults_applied = applied.clone();
    }
    let body = rewritten.as_ref().map_or(body, |(b, _)| b.as_slice());
    judge(&mut out, &authorized, body);
    Ok(out)
}

/// The build cgroup `serve` would give this classic build (see `crate::buildcgroup`): its
/// name with a stand-in leaf (`b0-0`) and `pids.max`. `None` when the build gets none, or
/// `[upstream] build_cgroup` is not a usable cgroup directory on this host (`auto`: none is
/// found for the cgroup version this host's mounts suggest). Whether the daemon can use it
/// (its cgroup driver and version) is not known here.
fn explained_build_cgroup(config: &Config, authorized: &Authorized) -> Option<(String, i64)> {
    use crate::buildcgroup::Setting;
    let setting = &config.upstream.build_cgroup;
    if *setting == Setting::Off {
        return None;
    }
    let rules = &authorized.policy.inspect;
    let pids = crate::inspect::build_pids(&rules.container)?;
    let query = authorized.normalized.query.pairs();
    let build = authorized.operation.info.inspector() == Some(crate::route::Inspector::Build);
    if !authorized.policy.inspection
        || !build
        || !crate::inspect::wants_build_cgroup(query, &rules.container)
    {
        return None;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = match setting {
        Setting::Dir(dir) => dir.clone(),
        _ => crate::buildcgroup::detect(&mountinfo, None).ok()?,
    };
    let place = crate::buildcgroup::locate(&dir, &mountinfo).ok()?;
    Some((format!("{}/b0-0", place.name.trim_end_matches('/')), pids))
}

/// What the image ledger has to do with an isolated request (`None`: nothing).
fn ledger_note(authorized: &Authorized) -> Option<&'static str> {
    let names_images = authorized.operation.info.object == Some(crate::route::ObjectKind::Image);
    match authorized.operation.name {
        "image.build" | "container.commit" | "image.import" => Some(
            "the ID of the image it makes is read from the daemon's answer and recorded in the \
             image ledger as the tenant's (a classic build below API 1.30 without -q is refused: \
             its answer names no image)",
        ),
        "image.list" | "system.df" | "system.events" => Some(
            "an image labelled with the tenant's owner label is shown only when the image ledger \
             records sockwarden made it for the tenant",
        ),
        _ if names_images || authorized.operation.name == "container.create" => Some(
            "an image labelled with an owner is that tenant's only when the image ledger records \
             sockwarden made it for the tenant; otherwise it answers as missing to every tenant",
        ),
        _ => None,
    }
}

/// What the policy's isolation does to the request at run time (`None`: no isolation).
fn isolation_note(authorized: &Authorized) -> Option<&'static str> {
    use crate::route::Tenancy;
    if authorized.policy.isolation == crate::policy::Isolation::None {
        return None;
    }
    let query = authorized.normalized.query.pairs();
    let buildkit = match authorized.operation.name {
        "build.session" => true,
        "image.build" => crate::inspect::common::first(query, "version") == Some("2"),
        _ => false,
    };
    if authorized.operation.name == "build.grpc" {
        return Some(
            "BuildKit's control API (/grpc) is an opaque tunnel: what it builds is not checked, \
             so a tenant can build from another tenant's image by its name or ID",
        );
    }
    if buildkit {
        return Some(
            "BuildKit (allow_buildkit): the Dockerfile is read from the build's session and its \
             FROM and COPY --from images checked as a classic build's: another tenant's image \
             answers as missing (the image built is labelled the tenant's)",
        );
    }
    Some(match authorized.operation.info.tenancy {
        Tenancy::Shared => "touches no tenant's objects: forwarded as decided here",
        Tenancy::Owned(_) => {
            "decided by ownership at run time: the object it names must be the tenant's \
             (another tenant's, or no tenant's except shared images, answers as missing); \
             names resolve among the tenant's own objects and are forwarded as full IDs"
        }
        Tenancy::Creates(_) => {
            "decided by ownership at run time: what it creates gets the tenant's owner label \
             (an owner label sent by the client is refused), the objects it refers to must be \
             the tenant's, image names it writes must not be held by others' or shared images, \
             and the policy's max_containers/max_volumes apply"
        }
        Tenancy::Lists(_) | Tenancy::Events | Tenancy::DiskUsage => {
            "answered at run time with the tenant's objects only (plus shared images)"
        }
        Tenancy::Prunes(_) => "acts at run time on the tenant's objects only",
        Tenancy::AnsweredEmpty(_) => {
            "answered by sockwarden as an empty result, not forwarded: what it acts on (the \
             build cache) is shared by every tenant and cannot be scoped to one"
        }
        Tenancy::Unavailable => "not available to isolated clients",
    })
}

/// The name shown for a connection that matches no client.
const NO_CLIENT: &str = "(none: matches no client)";

fn inspects_body(operation: &str) -> bool {
    crate::inspect::layer::inspects_body(operation)
}

/// Runs the inspection on `body` and records the outcome.
fn judge(out: &mut Explanation, authorized: &Authorized, body: &[u8]) {
    // An answer that could not be redacted is refused first, in either mode (as the redaction
    // layer does).
    if let Some(violation) = crate::redact::layer::violation(authorized) {
        let change = inspection_change(authorized, &violation);
        refused(out, crate::redact::layer::refusal(authorized, violation));
        if out.change.is_none() {
            out.change = change;
        }
        return;
    }
    match crate::inspect::layer::check_violation(authorized, body) {
        Ok(_) if authorized.would_deny => out.decision = "would-deny",
        Ok(_) => out.decision = "allow",
        Err(violation) => {
            let change = inspection_change(authorized, &violation);
            refused(out, crate::inspect::layer::refusal(authorized, &violation));
            if authorized.dry_run {
                out.decision = "would-deny";
                out.status = None;
            }
            // A policy refusal recorded in audit mode keeps its own change first.
            if out.change.is_none() {
                out.change = change;
            }
        }
    }
}

/// No body was given: an operation whose body is inspected is left undecided (the policy's
/// answer is reported, and that the body decides the rest); any other is decided on an empty
/// body, as the proxy would.
fn decide_without_body(
    mut out: Explanation,
    authorized: &Authorized,
    body: Option<&[u8]>,
) -> Explanation {
    let operation = authorized.operation.name;
    if body.is_none() && authorized.policy.inspection && inspects_body(operation) {
        if authorized.would_deny {
            // The rules already refuse it (audit mode): no body could change that.
            out.decision = "would-deny";
            return out;
        }
        out.decision = "undecided";
        out.status = None;
        out.reason = format!(
            "{operation}'s request body is inspected and decides the answer: give the body \
             with --body FILE (the policy's rules allow the operation: {})",
            out.reason
        );
        return out;
    }
    judge(&mut out, authorized, body.unwrap_or_default());
    out
}

/// What would allow a request the policy's rules refuse.
fn policy_change(
    config: &Config,
    client: Option<&str>,
    method: &Method,
    normalized: &Normalized,
    refusal: &Refusal,
) -> Option<Change> {
    let rule: &str = &refusal.rule;
    let Some(client) = client else {
        return Some(Change::text(
            "add a [[client]] (name, policy) whose match covers this connection: uids, users, \
             gids or groups for a unix peer, sources for a TCP peer, cert_cn or cert_san for a \
             TLS peer; or set fallback = \"CLIENT\" on the [[listen]] it connects to"
                .into(),
        ));
    };
    let policy = config.authority.policy_for(client)?;
    let operation = refusal.operation;
    let facts = RequestFacts {
        operation,
        method,
        path: &normalized.path,
        query: normalized.query.pairs(),
    };
    let table = format!("[policy.{}]", policy.name);
    let danger = policy::catalogue()
        .into_iter()
        .find(|(name, _)| *name == operation)
        .and_then(|(_, why)| why);
    let allow = allow_change(policy, &facts, client, danger);
    match &refusal.kind {
        RefusalKind::DenyRule => {}
        RefusalKind::Conditions(unmet) => {
            let Some(UnmetRule {
                rule: conditional,
                conditions,
            }) = unmet.first()
            else {
                return Some(allow);
            };
            let params: Vec<String> = conditions
                .iter()
                .map(|c| format!("query.{}", c.param))
                .collect();
            let text = format!(
                "change or remove {} of rule {} in [[policy.{}.rule]] (it wants {}), or {}",
                params.join(" and "),
                conditional,
                policy.name,
                conditions
                    .iter()
                    .map(|c| c.wanted.as_str())
                    .collect::<Vec<_>>()
                    .join(" and "),
                allow.text
            );
            return Some(Change { text, ..allow });
        }
        RefusalKind::NotAllowed => return Some(allow),
        RefusalKind::NoClient
        | RefusalKind::UnknownClient(_)
        | RefusalKind::Inspection(_)
        | RefusalKind::Isolation(_) => return None,
    }
    // A deny rule decided: it must go or stop matching, and an allow must remain.
    let deny = policy.rules.iter().find(|r| *r.name == *rule)?;
    let pattern = deny.operations.first().map(|p| p.as_str().to_owned());
    let mut text = match (rule.strip_prefix("deny "), &pattern) {
        (Some(shorthand), Some(pattern)) if shorthand == pattern && !deny.is_conditional() => {
            if deny.operations.iter().any(|p| p.is_wildcard()) {
                format!(
                    "narrow \"{pattern}\" in deny of {table} so that it no longer matches {}",
                    operation
                )
            } else {
                format!("remove \"{pattern}\" from deny in {table}")
            }
        }
        _ => format!(
            "remove or narrow the deny rule {} in [[policy.{}.rule]] (it matches this request)",
            deny.name, policy.name
        ),
    };
    if policy.builtin_profile {
        text = format!(
            "the built-in profile {} denies it: give client {client} its own [policy.NAME] \
             without that rule",
            policy.name
        );
    }
    let allowed_otherwise = policy
        .rules
        .iter()
        .any(|r| r.effect == Effect::Allow && r.matches(&facts));
    if !allowed_otherwise {
        text = format!("{text}, and {}", allow.text);
    }
    Some(Change {
        text,
        section: Some(table),
        setting: Some("deny".into()),
        value: pattern,
        dangerous: allow.dangerous,
        danger: allow.danger,
    })
}

/// The allow entry that would open the request's operation in `policy`.
fn allow_change(
    policy: &Policy,
    facts: &RequestFacts<'_>,
    client: &str,
    danger: Option<&str>,
) -> Change {
    let operation = facts.operation;
    let (table, how) = if policy.builtin_profile {
        (
            "[policy.NAME]".to_owned(),
            format!(
                " (with profile = \"{}\", and policy = \"NAME\" for client {client}: the \
                 built-in profile itself cannot change)",
                policy.name
            ),
        )
    } else {
        (format!("[policy.{}]", policy.name), String::new())
    };
    let text = if operation == "unknown" {
        format!(
            "add a rule with effect = \"allow\", methods = [\"{}\"], paths = [\"{}\"] to \
             [[policy.{}.rule]], and \"unknown\" to allow_dangerous in {table}{how}",
            facts.method,
            facts.path.escape_debug(),
            policy.name
        )
    } else if danger.is_some() {
        format!("add \"{operation}\" to allow and to allow_dangerous in {table}{how}")
    } else {
        format!("add \"{operation}\" to allow in {table}{how}")
    };
    let danger = if operation == "unknown" {
        Some("routes sockwarden cannot name pass unchecked")
    } else {
        danger
    };
    Change::setting(text, &table, "allow", Some(format!("\"{operation}\""))).danger(danger)
}

/// What would allow a request the inspection refused: the setting the violation names, set to
/// admit this request's value.
fn inspection_change(authorized: &Authorized, violation: &Violation) -> Option<Change> {
    let policy = &authorized.policy;
    let Some(setting) = violation.setting.as_deref() else {
        return Some(Change::text(format!(
            "none: no setting allows this ({}); change the request",
            violation
        )));
    };
    if setting == "build_cgroup" {
        return Some(Change::setting(
            "set build_cgroup = \"auto\" (the default; sockwarden as root on the daemon's \
                 host, the daemon with the cgroupfs cgroup driver) or a cgroup directory \
                 sockwarden can create, in [upstream]; allow_uncapped_builds = true in the \
                 policy's [build] section would instead let classic builds run without a pids \
                 limit (unsafe)"
                .to_owned(),
            "[upstream]",
            setting,
            Some("\"auto\"".into()),
        ));
    }
    if setting == "redact_env" {
        let table = if policy.builtin_profile {
            "[policy.NAME]".to_owned()
        } else {
            format!("[policy.{}]", policy.name)
        };
        return Some(
            Change::setting(
                format!("set redact_env = false in {table}"),
                &table,
                setting,
                Some("false".into()),
            )
            .danger(dangerous_setting(setting, violation)),
        );
    }
    let section = crate::inspect::layer::section(authorized.operation.name);
    let table = if policy.builtin_profile {
        format!("[policy.NAME.{section}]")
    } else {
        format!("[policy.{}.{section}]", policy.name)
    };
    let current = current_setting(&policy.inspect, section, setting);
    let value = violation.value.as_deref();
    let (text, value) = match (&current, value) {
        (Some(serde_json::Value::Bool(now)), _) => (
            format!("set {setting} = {} in {table}", !now),
            Some((!now).to_string()),
        ),
        (Some(serde_json::Value::Object(_)), Some(entry)) => (
            format!(
                "add {entry} to [{}.{setting}]",
                table.trim_matches(['[', ']'])
            ),
            Some(entry.to_owned()),
        ),
        (Some(serde_json::Value::Array(_)), Some(entry)) => {
            let quoted = format!("\"{}\"", entry.escape_debug());
            (
                format!("add {quoted} to {setting} in {table}"),
                Some(quoted),
            )
        }
        (Some(serde_json::Value::Number(_) | serde_json::Value::Null), Some(amount)) => (
            format!("set {setting} = {amount} in {table}"),
            Some(amount.to_owned()),
        ),
        // Caps that are always in force: a request without an admissible value is refused.
        (Some(serde_json::Value::Number(_)), None)
            if matches!(setting, "max_restart_retries" | "min_host_port") =>
        {
            (
                format!("no value of {setting} allows this; change the request"),
                None,
            )
        }
        (Some(serde_json::Value::Number(_) | serde_json::Value::Null), None) => (
            format!(
                "give a value within {setting} in the request, or remove {setting} from {table}"
            ),
            None,
        ),
        _ => (
            format!("no value of {setting} allows this; change the request"),
            None,
        ),
    };
    let text = if policy.builtin_profile {
        format!(
            "{text} (in a [policy.NAME] with profile = \"{}\", used by this client instead)",
            policy.name
        )
    } else {
        text
    };
    Some(
        Change::setting(text, &table, setting, value).danger(dangerous_setting(setting, violation)),
    )
}

/// A setting's value in force, as JSON (`null` for an unset cap).
fn current_setting(
    rules: &crate::policy::InspectRules,
    section: &str,
    setting: &str,
) -> Option<serde_json::Value> {
    let section = match section {
        "container" => serde_json::to_value(&rules.container),
        "exec" => serde_json::to_value(&rules.exec),
        "volume" => serde_json::to_value(&rules.volume),
        "network" => serde_json::to_value(&rules.network),
        "build" => serde_json::to_value(&rules.build),
        "plugin" => serde_json::to_value(&rules.plugin),
        _ => return None,
    };
    section.ok()?.get(setting).cloned()
}

/// Inspection settings whose widening gives a client's containers (or the daemon acting for
/// it) reach into the host, and why.
const DANGEROUS_SETTINGS: &[(&str, &str)] = &[
    ("allow_privileged", "privileged means full root on the host"),
    ("cap_add", "added capabilities widen what a container can do to the host kernel"),
    ("bind_sources", "the client's containers reach these host files"),
    (
        "require_read_only_binds",
        "a writable bind lets a container plant symlinks that later binds follow outside bind_sources",
    ),
    ("allow_mount_driver_config", "volume driver options can bind host paths"),
    ("allow_special_mount_targets", "mounts over /proc, /sys or /dev reach the host kernel"),
    ("allow_volumes_from", "inherits another container's mounts, including host binds"),
    ("allow_host_namespaces", "host namespaces see and reach the host's processes and network"),
    ("allow_devices", "host devices are host access"),
    ("security_opt", "disabling seccomp, AppArmor or SELinux removes a confinement"),
    ("allow_cgroup_parent", "places the container outside the daemon's resource control"),
    ("allow_unmasked_paths", "unmasked /proc paths expose the host kernel"),
    ("sysctls", "kernel settings"),
    ("runtimes", "another OCI runtime may not isolate the same way"),
    ("allow_unknown_config_fields", "fields the inspector does not know pass uninspected"),
    ("allow_unknown_params", "parameters the inspector does not know pass uninspected"),
    (
        "allow_remote",
        "the daemon fetches URLs from the host's network (loopback and link-local hosts stay refused, but a URL may redirect there)",
    ),
    (
        "allow_buildkit",
        "BuildKit's RUN steps get no container limits, and its session passes secrets, SSH and the host network unread (only its Dockerfile is read from the session and checked as a classic build's)",
    ),
    ("allow_driver_opts", "a local volume with o=bind is a host bind"),
    ("names", "plugins run as root on the host"),
    (
        "redact_env",
        "answers then carry environments, tokens and passwords (process environments in top)",
    ),
    (
        "allow_writing_run_images",
        "a client can put any content under a name the images allowlist trusts, and run it",
    ),
    ("privileges", "plugin privileges are host access"),
    (
        "allow_uncapped_builds",
        "builds' RUN steps escape the container limits: a fork bomb in a Dockerfile is not stopped",
    ),
];

/// Whether widening `setting` to admit the violation's value is dangerous, and why.
fn dangerous_setting(setting: &str, violation: &Violation) -> Option<&'static str> {
    if setting == "network_modes" && violation.value.as_deref() == Some("host") {
        return Some("the build shares the host's network namespace");
    }
    if setting == "drivers" && matches!(violation.value.as_deref(), Some("macvlan" | "ipvlan")) {
        return Some("puts containers on the host's LAN");
    }
    if setting == "allow_privileged" && violation.field.starts_with("Privileged") {
        return Some("a privileged exec has every capability in the container");
    }
    DANGEROUS_SETTINGS
        .iter()
        .find(|(name, _)| *name == setting)
        .map(|(_, why)| *why)
}

fn refused(out: &mut Explanation, error: ProxyError) {
    out.decision = "deny";
    out.status = Some(error.status().as_u16());
    match &error {
        ProxyError::Denied(refusal) => {
            out.operation = Some(refusal.operation.to_owned());
            out.policy = Some(refusal.policy.as_deref().unwrap_or("none").to_owned());
            out.rule = Some(refusal.rule.to_string());
            out.reason = refusal.reason().to_string();
        }
        _ => out.reason = error.to_string(),
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
            None if self.decision == "undecided" => writeln!(
                f,
                "decision:  UNDECIDED (the request body decides: --body FILE)"
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
                "defaults:  {} (added to the {})",
                self.defaults_applied.join(", "),
                // A build's limits go into its query; everything else's into its body.
                if self.operation.as_deref() == Some("image.build") {
                    "query"
                } else {
                    "body"
                }
            )?;
        }
        if let Some(note) = &self.isolation {
            writeln!(f, "isolation: {note}")?;
        }
        write!(f, "reason:    {}", self.reason)?;
        if let Some(change) = &self.change {
            write!(f, "\nchange:    {}", change.text)?;
            if let Some(why) = &change.danger {
                write!(f, "\n           DANGEROUS: {why}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
