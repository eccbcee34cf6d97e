//! The decision: one client, one request, one answer naming the rule that gave it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rules::{
    Effect, InspectRules, Isolation, Pattern, Policy, RawPolicy, RequestFacts, Rule, UnmetCondition,
};
use super::{guardrails, profiles};
use crate::error::ConfigError;
use crate::fasthash::NameMap;
use crate::identity::{ClientDef, RawClient};
use crate::refusal::{RefusalKind, UnmetRule};

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Whether the request may go on (to inspection, then the daemon).
    pub allowed: bool,
    /// The policy consulted, if the client has one.
    pub policy: Option<Arc<str>>,
    /// The rule that decided (`default-deny` when none matched).
    pub rule: Arc<str>,
    /// Why, in words for the client and the audit log.
    pub reason: Reason,
}

impl Decision {
    fn deny(
        policy: Option<Arc<str>>,
        rule: &str,
        operation: &'static str,
        kind: RefusalKind,
    ) -> Decision {
        Decision {
            allowed: false,
            policy,
            rule: Arc::from(rule),
            reason: Reason::Refused(operation, kind),
        }
    }

    /// Why the rules refuse the request (`None` for an allow).
    pub fn refusal(&self) -> Option<&RefusalKind> {
        match &self.reason {
            Reason::Refused(_, kind) => Some(kind),
            _ => None,
        }
    }
}

/// The reason of a decision, as the audit record gives it. An allow (every forwarded request)
/// keeps only the operation name, and a refusal its typed kind: both are put into words when
/// displayed, so deciding allocates no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `{operation} is allowed`.
    Allowed(&'static str),
    /// The operation is refused, for this reason.
    Refused(&'static str, RefusalKind),
    /// Any other reason (a malformed request, a limit), already in words.
    Text(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Allowed(operation) => write!(f, "{operation} is allowed"),
            Reason::Refused(operation, kind) => kind.reason(operation).fmt(f),
            Reason::Text(text) => f.write_str(text),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Every client and policy of one configuration, compiled. Immutable: a reload builds a new one.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    clients: Vec<ClientDef>,
    policies: NameMap<Arc<str>, Arc<Policy>>,
    /// Whether any policy isolates its clients: asked for every request (the audit record's
    /// tenant), so known once, whenever the policies change.
    isolating: bool,
    /// The label that records an object's tenant (`[isolation] owner_label`).
    owner_label: Arc<str>,
}

/// Whether any of `policies` isolates its clients.
fn any_isolation(policies: &NameMap<Arc<str>, Arc<Policy>>) -> bool {
    policies.values().any(|p| p.isolation != Isolation::None)
}

/// The owner label's key unless `[isolation] owner_label` names another.
pub const DEFAULT_OWNER_LABEL: &str = "sockwarden.owner";

impl Authority {
    /// The bind sources containers may write to, under any inspected policy (one that does
    /// not require read-only binds), cleaned, with the policy's name: binds strictly below
    /// them are refused (see `crate::hostpath`).
    pub fn writable_bind_sources(&self) -> Vec<(Arc<str>, String)> {
        self.bind_sources(true)
    }

    /// Whether any policy isolates its clients (`isolation` other than `"none"`).
    pub fn isolates(&self) -> bool {
        self.isolating
    }

    /// The bind sources of every inspected policy (`writable_only`: of those that allow
    /// writable binds), cleaned, with the policy's name.
    pub fn bind_sources(&self, writable_only: bool) -> Vec<(Arc<str>, String)> {
        let mut out: Vec<(Arc<str>, String)> = self
            .policies
            .values()
            .filter(|p| {
                p.inspection && !(writable_only && p.inspect.container.require_read_only_binds)
            })
            .flat_map(|p| {
                p.inspect
                    .container
                    .bind_sources
                    .iter()
                    .map(|s| crate::inspect::clean_path(s))
                    .filter(|s| s.starts_with('/'))
                    .map(|s| (Arc::clone(&p.name), s))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Compiles clients and policies, checking every reference and the guardrails.
    /// `catalogue` lists every operation name with why it is dangerous, if it is.
    pub fn compile(
        raw_clients: Vec<RawClient>,
        raw_policies: &BTreeMap<String, RawPolicy>,
        catalogue: &[(&str, Option<&str>)],
    ) -> Result<Authority, ConfigError> {
        let mut policies = NameMap::default();
        for (name, raw) in raw_policies {
            let key = format!("policy.{name}");
            let policy = compile_policy(&key, name, raw, catalogue)?;
            policies.insert(Arc::clone(&policy.name), Arc::new(policy));
        }
        let mut clients = Vec::with_capacity(raw_clients.len());
        for (i, raw) in raw_clients.into_iter().enumerate() {
            let key = format!("client[{i}]");
            if clients.iter().any(|c: &ClientDef| *c.name == *raw.name) {
                return Err(ConfigError(format!(
                    "{key}.name: {:?} is defined twice",
                    raw.name
                )));
            }
            let client = ClientDef::from_raw(&key, raw)?;
            ensure_policy(
                &mut policies,
                &client.policy,
                &format!("{key}.policy"),
                catalogue,
            )?;
            clients.push(client);
        }
        Ok(Authority {
            isolating: any_isolation(&policies),
            clients,
            policies,
            owner_label: Arc::from(DEFAULT_OWNER_LABEL),
        })
    }

    /// Adds a client (the built-in default's owner), compiling its policy if it is a profile.
    pub fn with_client(
        mut self,
        client: ClientDef,
        catalogue: &[(&str, Option<&str>)],
    ) -> Result<Authority, ConfigError> {
        ensure_policy(&mut self.policies, &client.policy, "client", catalogue)?;
        self.clients.push(client);
        self.isolating = any_isolation(&self.policies);
        Ok(self)
    }

    /// Records objects' tenants under `label` instead of [`DEFAULT_OWNER_LABEL`].
    pub fn with_owner_label(mut self, label: &str) -> Authority {
        self.owner_label = Arc::from(label);
        self
    }

    /// The label key that records an object's tenant.
    pub fn owner_label(&self) -> &Arc<str> {
        &self.owner_label
    }

    /// The configured clients, in match order.
    pub fn clients(&self) -> &[ClientDef] {
        &self.clients
    }

    /// Whether a client of this name exists.
    pub fn has_client(&self, name: &str) -> bool {
        self.clients.iter().any(|c| &*c.name == name)
    }

    /// Whether `client` runs in audit mode (its own `mode` or its policy's).
    pub fn dry_run(&self, client: &str) -> bool {
        let Some(def) = self.clients.iter().find(|c| &*c.name == client) else {
            return false;
        };
        def.mode == Some(super::rules::Mode::Audit)
            || self
                .policies
                .get(&def.policy)
                .is_some_and(|p| p.mode == super::rules::Mode::Audit)
    }

    /// The policy that governs `client`.
    pub fn policy_for(&self, client: &str) -> Option<&Arc<Policy>> {
        let def = self.clients.iter().find(|c| &*c.name == client)?;
        self.policies.get(&def.policy)
    }

    /// Decides one request for `client` (`None`: the connection matched no client).
    pub fn decide(&self, client: Option<&str>, facts: &RequestFacts<'_>) -> Decision {
        let Some(client) = client else {
            return Decision::deny(None, "no-client", facts.operation, RefusalKind::NoClient);
        };
        let Some(policy) = self.policy_for(client) else {
            return Decision::deny(
                None,
                "no-client",
                facts.operation,
                RefusalKind::UnknownClient(Arc::from(client)),
            );
        };
        decide_with(policy, facts)
    }
}

/// Evaluates one policy: any matching deny wins, else the first matching allow, else deny.
pub(super) fn decide_with(policy: &Policy, facts: &RequestFacts<'_>) -> Decision {
    let mut allowed_by: Option<&Rule> = None;
    for rule in &policy.rules {
        if !rule.matches(facts) {
            continue;
        }
        match rule.effect {
            Effect::Deny => {
                return Decision::deny(
                    Some(policy.name.clone()),
                    &rule.name,
                    facts.operation,
                    RefusalKind::DenyRule,
                )
            }
            Effect::Allow => {
                allowed_by.get_or_insert(rule);
            }
        }
    }
    match allowed_by {
        Some(rule) => Decision {
            allowed: true,
            policy: Some(policy.name.clone()),
            rule: rule.name.clone(),
            reason: Reason::Allowed(facts.operation),
        },
        None => Decision::deny(
            Some(policy.name.clone()),
            "default-deny",
            facts.operation,
            default_deny_kind(policy, facts),
        ),
    }
}

/// Why nothing allowed the request: no rule allows it, or allow rules name the operation but
/// their query conditions do not hold (which rule, which condition). Only computed on a
/// refusal, so the allowed path stays as fast as before.
fn default_deny_kind(policy: &Policy, facts: &RequestFacts<'_>) -> RefusalKind {
    let unmet = unmet_allow_rules(policy, facts);
    if unmet.is_empty() {
        return RefusalKind::NotAllowed;
    }
    RefusalKind::Conditions(
        unmet
            .into_iter()
            .map(|(rule, conditions)| UnmetRule {
                rule: rule.name.clone(),
                conditions,
            })
            .collect(),
    )
}

/// The allow rules that name the request's operation but whose query conditions it fails,
/// with those conditions.
pub fn unmet_allow_rules<'p>(
    policy: &'p Policy,
    facts: &RequestFacts<'_>,
) -> Vec<(&'p Rule, Vec<UnmetCondition>)> {
    policy
        .rules
        .iter()
        .filter(|r| r.effect == Effect::Allow && r.is_conditional() && r.names(facts))
        .map(|r| (r, r.unmet_conditions(facts.query)))
        .filter(|(_, unmet)| !unmet.is_empty())
        .collect()
}

/// Makes sure `name` is a policy, compiling a built-in profile of that name on first use.
fn ensure_policy(
    policies: &mut NameMap<Arc<str>, Arc<Policy>>,
    name: &str,
    key: &str,
    catalogue: &[(&str, Option<&str>)],
) -> Result<(), ConfigError> {
    if policies.contains_key(name) {
        return Ok(());
    }
    let Some(raw) = profiles::get(name)? else {
        return Err(ConfigError(format!(
            "{key}: no policy named {name:?} (define [policy.{name}] or use a built-in profile: {})",
            profiles::profile_names().join(", ")
        )));
    };
    let mut policy = compile_policy(&format!("profile {name}"), name, &raw, catalogue)?;
    policy.builtin_profile = true;
    policies.insert(Arc::from(name), Arc::new(policy));
    Ok(())
}

/// Compiles one policy: its profile's rules first, then its own.
pub(super) fn compile_policy(
    key: &str,
    name: &str,
    raw: &RawPolicy,
    catalogue: &[(&str, Option<&str>)],
) -> Result<Policy, ConfigError> {
    let mut rules = Vec::new();
    let mut allow_dangerous = Vec::new();
    let mut base_policy = None;
    if let Some(profile) = &raw.profile {
        let Some(base) = profiles::get(profile)? else {
            return Err(ConfigError(format!(
                "{key}.profile: no built-in profile {profile:?} (there are: {})",
                profiles::profile_names().join(", ")
            )));
        };
        if base.profile.is_some() {
            return Err(ConfigError(format!("{key}.profile: profiles do not nest")));
        }
        own_rules(&format!("profile {profile}"), &base, catalogue, &mut rules)?;
        allow_dangerous.extend(base.allow_dangerous.iter().map(|p| Pattern::new(p)));
        base_policy = Some(base);
    }
    let inspect = InspectRules::from_raw(key, raw, base_policy.as_ref())?;
    own_rules(key, raw, catalogue, &mut rules)?;
    check_patterns(
        &format!("{key}.allow_dangerous"),
        &allow_dangerous,
        catalogue,
    )?;
    // The policy's own entries one by one, so an error names the entry (and its line).
    for (i, pattern) in raw.allow_dangerous.iter().enumerate() {
        let pattern = Pattern::new(pattern);
        check_patterns(
            &format!("{key}.allow_dangerous[{i}]"),
            std::slice::from_ref(&pattern),
            catalogue,
        )?;
        allow_dangerous.push(pattern);
    }
    let inspection = raw
        .inspection
        .or(base_policy.as_ref().and_then(|b| b.inspection))
        .unwrap_or(true);
    if !inspection && !allow_dangerous.iter().any(|p| p.as_str() == "*") {
        return Err(ConfigError(format!(
            "{key}.inspection: false forwards bodies uninspected; only a policy that opens \
             everything (allow_dangerous = [\"*\"]) may turn inspection off"
        )));
    }
    let isolation = raw
        .isolation
        .or(base_policy.as_ref().and_then(|b| b.isolation))
        .unwrap_or_default();
    if isolation != Isolation::None && !inspection {
        return Err(ConfigError(format!(
            "{key}.isolation: {} needs inspection (owner labels are written into create \
             bodies); remove inspection = false",
            isolation.as_str()
        )));
    }
    let max_containers = raw
        .max_containers
        .or(base_policy.as_ref().and_then(|b| b.max_containers));
    let max_volumes = raw
        .max_volumes
        .or(base_policy.as_ref().and_then(|b| b.max_volumes));
    for (setting, value) in [
        ("max_containers", max_containers),
        ("max_volumes", max_volumes),
    ] {
        if value.is_some() && isolation == Isolation::None {
            return Err(ConfigError(format!(
                "{key}.{setting}: a per-tenant limit needs isolation = \"user\" or \"client\""
            )));
        }
        if value == Some(0) {
            return Err(ConfigError(format!(
                "{key}.{setting}: 0 would refuse every create; leave it out for no limit"
            )));
        }
    }
    let policy = Policy {
        name: Arc::from(name),
        rules,
        allow_dangerous,
        inspect,
        inspection,
        redact_env: raw
            .redact_env
            .or(base_policy.as_ref().and_then(|b| b.redact_env))
            .unwrap_or(false),
        mode: raw
            .mode
            .or(base_policy.as_ref().and_then(|b| b.mode))
            .unwrap_or_default(),
        isolation,
        max_containers,
        max_volumes,
        builtin_profile: false,
    };
    guardrails::check(key, &policy, catalogue)?;
    Ok(policy)
}

fn own_rules(
    key: &str,
    raw: &RawPolicy,
    catalogue: &[(&str, Option<&str>)],
    out: &mut Vec<Rule>,
) -> Result<(), ConfigError> {
    for (list, effect, word) in [
        (&raw.allow, Effect::Allow, "allow"),
        (&raw.deny, Effect::Deny, "deny"),
    ] {
        for (i, pattern) in list.iter().enumerate() {
            let mut rule = Rule::for_operations(&format!("{word} {pattern}"), effect, &[pattern]);
            let entry = format!("{key}.{word}[{i}]");
            check_patterns(&entry, &rule.operations, catalogue)?;
            rule.key = Some(entry);
            out.push(rule);
        }
    }
    for (i, raw_rule) in raw.rule.iter().enumerate() {
        let rule_key = format!("{key}.rule[{i}]");
        let rule = Rule::from_raw(&rule_key, raw_rule)?;
        for (j, pattern) in rule.operations.iter().enumerate() {
            check_patterns(
                &format!("{rule_key}.operations[{j}]"),
                std::slice::from_ref(pattern),
                catalogue,
            )?;
        }
        if out.iter().any(|r| r.name == rule.name) {
            return Err(ConfigError(format!(
                "{rule_key}.name: {:?} is used twice",
                raw_rule.name
            )));
        }
        out.push(rule);
    }
    Ok(())
}

/// Every pattern must match at least one operation: a typo must not silently match nothing.
fn check_patterns(
    key: &str,
    patterns: &[Pattern],
    catalogue: &[(&str, Option<&str>)],
) -> Result<(), ConfigError> {
    for pattern in patterns {
        if !catalogue
            .iter()
            .any(|(name, _)| pattern.matches_operation(name))
        {
            return Err(ConfigError(format!(
                "{key}: {:?} matches no operation (see `sockwarden operations`)",
                pattern.as_str()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn authority(policies: &str, clients: &str) -> Result<Authority, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(default)]
            policy: BTreeMap<String, RawPolicy>,
            #[serde(default)]
            client: Vec<RawClient>,
        }
        let doc: Doc = toml::from_str(&format!("{policies}\n{clients}"))
            .map_err(|e| ConfigError(e.message().to_owned()))?;
        Authority::compile(doc.client, &doc.policy, &crate::policy::catalogue())
    }

    fn decide(a: &Authority, client: &str, op: &'static str, query: &[(&str, &str)]) -> Decision {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let facts = RequestFacts {
            operation: op,
            method: &Method::GET,
            path: "/x",
            query: &query,
        };
        a.decide(Some(client), &facts)
    }

    const CLIENT: &str = "[[client]]\nname = \"c\"\npolicy = \"p\"\nuids = [1]\n";

    #[test]
    fn default_deny_allow_and_deny_wins() {
        let a = authority(
            "[policy.p]\nallow = [\"container.list\", \"image.*\"]\nallow_dangerous = [\"image.*\"]\ndeny = [\"image.delete\"]",
            CLIENT,
        )
        .unwrap();
        let d = decide(&a, "c", "container.list", &[]);
        assert!(d.allowed);
        assert_eq!(&*d.rule, "allow container.list");
        let d = decide(&a, "c", "image.delete", &[]);
        assert!(!d.allowed);
        assert_eq!(&*d.rule, "deny image.delete");
        let d = decide(&a, "c", "container.create", &[]);
        assert!(!d.allowed);
        assert_eq!(&*d.rule, "default-deny");
        assert_eq!(d.policy.as_deref(), Some("p"));
        // An unknown client or none at all is refused.
        assert!(!decide(&a, "nobody", "container.list", &[]).allowed);
        let facts = RequestFacts {
            operation: "container.list",
            method: &Method::GET,
            path: "/containers/json",
            query: &[],
        };
        assert_eq!(&*a.decide(None, &facts).rule, "no-client");
    }

    #[test]
    fn path_rules_open_unknown_only_when_acknowledged() {
        let rule =
            "[[policy.p.rule]]\nname = \"raw\"\neffect = \"allow\"\npaths = [\"/libpod/*\"]\n";
        let err = authority(&format!("[policy.p]\n{rule}"), CLIENT).unwrap_err();
        assert!(err.0.contains("opens unknown"), "{err}");
        let a = authority(
            &format!("[policy.p]\nallow_dangerous = [\"unknown\"]\n{rule}"),
            CLIENT,
        )
        .unwrap();
        let facts = RequestFacts {
            operation: "unknown",
            method: &Method::GET,
            path: "/libpod/info",
            query: &[],
        };
        assert!(a.decide(Some("c"), &facts).allowed);
    }

    #[test]
    fn query_conditions() {
        let a = authority(
            r#"[policy.p]
[[policy.p.rule]]
name = "logs-without-follow"
effect = "allow"
operations = ["container.logs"]
query = { follow = false }
[[policy.p.rule]]
name = "only-all"
effect = "allow"
operations = ["container.list"]
query = { all = "1" }
"#,
            CLIENT,
        )
        .unwrap();
        assert!(decide(&a, "c", "container.logs", &[]).allowed);
        assert!(decide(&a, "c", "container.logs", &[("follow", "0")]).allowed);
        assert!(!decide(&a, "c", "container.logs", &[("follow", "1")]).allowed);
        assert!(!decide(&a, "c", "container.logs", &[("follow", "yes")]).allowed);
        // The first of repeated parameters counts, as in the daemon.
        assert!(
            !decide(
                &a,
                "c",
                "container.logs",
                &[("follow", "1"), ("follow", "0")]
            )
            .allowed
        );
        assert!(decide(&a, "c", "container.list", &[("all", "1")]).allowed);
        assert!(!decide(&a, "c", "container.list", &[("all", "true")]).allowed);
        // A refusal names the conditional rule and the condition the request fails.
        let d = decide(&a, "c", "container.logs", &[("follow", "1")]);
        assert_eq!(&*d.rule, "default-deny");
        assert_eq!(
            d.reason.to_string(),
            "rule logs-without-follow allows container.logs only when follow is not set; \
             this request has follow=1"
        );
        let d = decide(&a, "c", "container.list", &[]);
        assert_eq!(
            d.reason.to_string(),
            "rule only-all allows container.list only when all=1; this request has no all"
        );
        let d = decide(&a, "c", "container.list", &[("all", "a\nb")]);
        assert!(
            d.reason.to_string().ends_with("has all=a\\nb"),
            "{}",
            d.reason
        );
        // No conditional rule names the operation: the plain reason.
        let d = decide(&a, "c", "container.create", &[]);
        assert_eq!(d.reason.to_string(), "no rule allows container.create");
    }

    #[test]
    fn unknown_needs_a_literal_rule_and_raw_paths_apply_only_to_it() {
        let a = authority(
            r#"[policy.p]
allow = ["*"]
allow_dangerous = ["*"]
"#,
            CLIENT,
        )
        .unwrap();
        assert!(decide(&a, "c", "container.export", &[]).allowed);
        assert!(!decide(&a, "c", "unknown", &[]).allowed);
        let a = authority(
            r#"[policy.p]
[[policy.p.rule]]
name = "libpod-read"
effect = "allow"
methods = ["GET"]
paths = ["/libpod/*"]
allow_dangerous = []
"#,
            CLIENT,
        );
        assert!(a.is_err(), "allow_dangerous is not a rule key");
        let a = authority(
            r#"[policy.p]
allow_dangerous = ["unknown"]
[[policy.p.rule]]
name = "libpod-read"
effect = "allow"
methods = ["GET"]
paths = ["/libpod/*"]
"#,
            CLIENT,
        )
        .unwrap();
        let facts = |method, path| RequestFacts {
            operation: "unknown",
            method,
            path,
            query: &[],
        };
        let p = a.policy_for("c").unwrap();
        assert!(decide_with(p, &facts(&Method::GET, "/libpod/info")).allowed);
        assert!(!decide_with(p, &facts(&Method::POST, "/libpod/info")).allowed);
        let named = RequestFacts {
            operation: "container.list",
            method: &Method::GET,
            path: "/libpod/x",
            query: &[],
        };
        assert!(
            !decide_with(p, &named).allowed,
            "raw paths never reach named operations"
        );
    }

    #[test]
    fn guardrails_refuse_unacknowledged_dangerous_wildcards() {
        let err = authority("[policy.p]\nallow = [\"container.*\"]", CLIENT).unwrap_err();
        assert!(err.0.contains("policy.p"), "{err}");
        assert!(err.0.contains("allow_dangerous"), "{err}");
        assert!(
            err.0.contains("container.archive.get")
                || err.0.contains("container.export")
                || err.0.contains("container.attach"),
            "{err}"
        );
        // Acknowledged or explicitly denied: fine.
        authority(
            "[policy.p]\nallow = [\"container.*\"]\nallow_dangerous = [\"container.*\"]",
            CLIENT,
        )
        .unwrap();
        let dangerous: Vec<&str> = crate::policy::catalogue()
            .into_iter()
            .filter(|(n, why)| n.starts_with("container.") && why.is_some())
            .map(|(n, _)| n)
            .collect();
        let deny = dangerous
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        authority(
            &format!("[policy.p]\nallow = [\"container.*\"]\ndeny = [{deny}]"),
            CLIENT,
        )
        .unwrap();
        // A single dangerous operation named exactly still needs the acknowledgement.
        let err = authority("[policy.p]\nallow = [\"container.export\"]", CLIENT).unwrap_err();
        assert!(err.0.contains("container.export"), "{err}");
    }

    #[test]
    fn guardrail_agrees_with_the_operation_table_for_every_operation() {
        // `sockwarden operations` prints `OperationInfo::dangerous`; the guardrail must refuse
        // exactly those operations when a policy names them without acknowledging them.
        for info in crate::route::OPERATION_TABLE {
            let name = info.name;
            let opened = authority(&format!("[policy.p]\nallow = [{name:?}]"), CLIENT);
            assert_eq!(
                opened.is_err(),
                info.dangerous(),
                "{name}: guardrail {opened:?}, table says dangerous = {}",
                info.dangerous()
            );
            if let (Err(err), Some(why)) = (&opened, info.danger) {
                assert!(err.0.contains(why), "{name}: {err} lacks {why:?}");
            }
            if info.dangerous() {
                authority(
                    &format!("[policy.p]\nallow = [{name:?}]\nallow_dangerous = [{name:?}]"),
                    CLIENT,
                )
                .unwrap_or_else(|e| panic!("{name} acknowledged: {e}"));
            }
        }
    }

    #[test]
    fn inspection_can_only_be_off_when_everything_is_open() {
        let err = authority(
            "[policy.p]\nallow = [\"container.create\"]\ninspection = false",
            CLIENT,
        )
        .unwrap_err();
        assert!(err.0.contains("policy.p.inspection"), "{err}");
        let a = authority("[policy.p]\nprofile = \"allow-all\"", CLIENT).unwrap();
        assert!(!a.policy_for("c").unwrap().inspection);
        let a = authority("[policy.p]\nprofile = \"ci\"", CLIENT).unwrap();
        assert!(a.policy_for("c").unwrap().inspection);
    }

    #[test]
    fn typos_and_dangling_references_are_config_errors() {
        let err = authority("[policy.p]\nallow = [\"contianer.list\"]", CLIENT).unwrap_err();
        assert!(err.0.contains("policy.p.allow"), "{err}");
        assert!(err.0.contains("matches no operation"), "{err}");
        let err = authority("", "[[client]]\nname = \"c\"\npolicy = \"nope\"\n").unwrap_err();
        assert!(err.0.contains("client[0].policy"), "{err}");
        let err = authority("[policy.p]\nprofile = \"nope\"", CLIENT).unwrap_err();
        assert!(err.0.contains("policy.p.profile"), "{err}");
        let err = authority(
            "",
            "[[client]]\nname = \"c\"\npolicy = \"read-only\"\n[[client]]\nname = \"c\"\npolicy = \"ci\"\n",
        )
        .unwrap_err();
        assert!(err.0.contains("client[1].name"), "{err}");
    }

    #[test]
    fn profiles_by_name_and_as_base() {
        let a = authority(
            "[policy.p]\nprofile = \"read-only\"\nallow = [\"container.logs\"]",
            "[[client]]\nname = \"c\"\npolicy = \"p\"\n[[client]]\nname = \"ro\"\npolicy = \"read-only\"\n",
        )
        .unwrap();
        assert!(decide(&a, "c", "container.logs", &[]).allowed);
        assert!(decide(&a, "c", "container.list", &[]).allowed);
        assert!(!decide(&a, "ro", "container.logs", &[]).allowed);
        for op in [
            "container.archive.get",
            "container.export",
            "exec.create",
            "exec.start",
            "image.save",
            "secret.inspect",
            "swarm.unlockkey",
            "container.create",
            "container.attach",
        ] {
            assert!(!decide(&a, "ro", op, &[]).allowed, "read-only allows {op}");
        }
        assert!(decide(&a, "ro", "system.events", &[]).allowed);
    }
}
