//! The decision: one client, one request, one answer naming the rule that gave it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::Method;

use super::rules::{Effect, Pattern, Policy, RawPolicy, Rule};
use super::{guardrails, profiles};
use crate::config::ConfigError;
use crate::identity::{ClientDef, RawClient};

/// What the engine needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The classified operation (`unknown` when the route has no name).
    pub operation: &'a str,
    /// HTTP method.
    pub method: &'a Method,
    /// Normalized path without the version prefix.
    pub path: &'a str,
    /// Decoded query parameters in order.
    pub query: &'a [(String, String)],
}

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
    pub reason: String,
}

impl Decision {
    fn deny(policy: Option<Arc<str>>, rule: &str, reason: String) -> Decision {
        Decision {
            allowed: false,
            policy,
            rule: Arc::from(rule),
            reason,
        }
    }
}

/// Every client and policy of one configuration, compiled. Immutable: a reload builds a new one.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    clients: Vec<ClientDef>,
    policies: HashMap<Arc<str>, Arc<Policy>>,
}

impl Authority {
    /// Compiles clients and policies, checking every reference and the guardrails.
    /// `catalogue` lists every operation name with why it is dangerous, if it is.
    pub fn compile(
        raw_clients: Vec<RawClient>,
        raw_policies: &BTreeMap<String, RawPolicy>,
        catalogue: &[(&str, Option<&str>)],
    ) -> Result<Authority, ConfigError> {
        let mut policies = HashMap::new();
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
        Ok(Authority { clients, policies })
    }

    /// Adds a client (the built-in default's owner), compiling its policy if it is a profile.
    pub fn with_client(
        mut self,
        client: ClientDef,
        catalogue: &[(&str, Option<&str>)],
    ) -> Result<Authority, ConfigError> {
        ensure_policy(&mut self.policies, &client.policy, "client", catalogue)?;
        self.clients.push(client);
        Ok(self)
    }

    /// The configured clients, in match order.
    pub fn clients(&self) -> &[ClientDef] {
        &self.clients
    }

    /// Whether a client of this name exists.
    pub fn has_client(&self, name: &str) -> bool {
        self.clients.iter().any(|c| &*c.name == name)
    }

    /// The policy that governs `client`.
    pub fn policy_for(&self, client: &str) -> Option<&Arc<Policy>> {
        let def = self.clients.iter().find(|c| &*c.name == client)?;
        self.policies.get(&def.policy)
    }

    /// Decides one request for `client` (`None`: the connection matched no client).
    pub fn decide(&self, client: Option<&str>, facts: &RequestFacts<'_>) -> Decision {
        let Some(client) = client else {
            return Decision::deny(
                None,
                "no-client",
                "this connection matches no configured client".into(),
            );
        };
        let Some(policy) = self.policy_for(client) else {
            return Decision::deny(None, "no-client", format!("unknown client {client:?}"));
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
                    format!("{} is denied", facts.operation),
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
            reason: format!("{} is allowed", facts.operation),
        },
        None => Decision::deny(
            Some(policy.name.clone()),
            "default-deny",
            format!("no rule allows {}", facts.operation),
        ),
    }
}

/// Makes sure `name` is a policy, compiling a built-in profile of that name on first use.
fn ensure_policy(
    policies: &mut HashMap<Arc<str>, Arc<Policy>>,
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
    let policy = compile_policy(&format!("profile {name}"), name, &raw, catalogue)?;
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
    }
    own_rules(key, raw, catalogue, &mut rules)?;
    allow_dangerous.extend(raw.allow_dangerous.iter().map(|p| Pattern::new(p)));
    check_patterns(
        &format!("{key}.allow_dangerous"),
        &allow_dangerous,
        catalogue,
    )?;
    let policy = Policy {
        name: Arc::from(name),
        rules,
        allow_dangerous,
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
        for pattern in list {
            let rule = Rule::for_operations(&format!("{word} {pattern}"), effect, &[pattern]);
            check_patterns(&format!("{key}.{word}"), &rule.operations, catalogue)?;
            out.push(rule);
        }
    }
    for (i, raw_rule) in raw.rule.iter().enumerate() {
        let rule_key = format!("{key}.rule[{i}]");
        let rule = Rule::from_raw(&rule_key, raw_rule)?;
        check_patterns(
            &format!("{rule_key}.operations"),
            &rule.operations,
            catalogue,
        )?;
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
