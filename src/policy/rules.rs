//! Policies and rules: the TOML shape (`Raw*`) and the compiled form the engine evaluates.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::Method;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::inspect::{
    glob, BuildRules, ContainerRules, ExecRules, NetworkRules, PluginRules, VolumeRules,
};

/// What the engine needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The classified operation (`unknown` when the route has no name); a name from the
    /// operation table.
    pub operation: &'static str,
    /// HTTP method.
    pub method: &'a Method,
    /// Normalized path without the version prefix.
    pub path: &'a str,
    /// Decoded query parameters in order.
    pub query: &'a [(String, String)],
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Let the request through (subject to body inspection).
    Allow,
    /// Refuse it; wins over any allow.
    Deny,
}

/// Whether refusals are enforced or only recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse what the policy does not allow (the default).
    #[default]
    Enforce,
    /// Dry run: forward what the policy would refuse and record it as `would-deny`, so a new
    /// policy can be tried on live traffic before it is enforced.
    Audit,
}

/// `isolation`: whose containers, volumes, networks, images and execs a client of the policy
/// sees and touches (see `crate::isolation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Every object the daemon has (the default: the policy alone decides).
    #[default]
    None,
    /// Each unix peer uid is its own tenant; a TCP or TLS peer is a tenant per client name.
    User,
    /// Every peer matched as the same client shares one tenant.
    Client,
}

impl Isolation {
    /// The setting's value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::None => "none",
            Isolation::User => "user",
            Isolation::Client => "client",
        }
    }
}

/// A `[policy.NAME]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// A built-in profile whose rules and inspection settings this policy starts from.
    pub profile: Option<String>,
    /// Shorthand: one allow rule per operation pattern.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Shorthand: one deny rule per operation pattern.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Dangerous operations this policy opens on purpose (exact names or patterns).
    #[serde(default)]
    pub allow_dangerous: Vec<String>,
    /// `false` forwards bodies uninspected, as the bare socket would; only accepted together
    /// with `allow_dangerous = ["*", ...]` (the `allow-all` profile).
    pub inspection: Option<bool>,
    /// Replace the values of `Env` in container and image inspect responses.
    pub redact_env: Option<bool>,
    /// `audit` forwards what the policy would refuse, recording it as would-deny.
    pub mode: Option<Mode>,
    /// Whose objects its clients see and touch.
    pub isolation: Option<Isolation>,
    /// Under isolation: most containers (running or not) one tenant may have.
    pub max_containers: Option<u64>,
    /// Under isolation: most volumes one tenant may have.
    pub max_volumes: Option<u64>,
    /// Full rules, evaluated with the shorthand ones.
    #[serde(default)]
    pub rule: Vec<RawRule>,
    /// `[policy.NAME.container]`: what a container create/update (and a swarm service's
    /// containers) may ask for.
    pub container: Option<toml::Value>,
    /// `[policy.NAME.exec]`: what an exec may ask for.
    pub exec: Option<toml::Value>,
    /// `[policy.NAME.volume]`: what a volume create may ask for.
    pub volume: Option<toml::Value>,
    /// `[policy.NAME.network]`: what a network create may ask for.
    pub network: Option<toml::Value>,
    /// `[policy.NAME.build]`: which build parameters are allowed.
    pub build: Option<toml::Value>,
    /// `[policy.NAME.plugin]`: which plugins may be pulled or upgraded, with which privileges.
    pub plugin: Option<toml::Value>,
}

/// A `[[policy.NAME.rule]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Name shown in decisions and the audit log.
    pub name: String,
    /// `allow` or `deny`.
    pub effect: Effect,
    /// Operation patterns (`container.*`, `image.pull`); `*` matches any characters.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Fallback for what has no name: HTTP methods (with `paths`).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Fallback for what has no name: path patterns, matched against the normalized path
    /// (version prefix removed) of requests whose operation is `unknown`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Conditions on query parameters: a string must equal the parameter's first value; a
    /// boolean compares with Docker's boolean reading (absent is false).
    #[serde(default)]
    pub query: BTreeMap<String, toml::Value>,
}

/// A glob over operation names or paths: `*` matches any run of characters. The operation
/// `unknown` is only matched by a pattern that names it literally.
///
/// Every request is matched against its policy's patterns, and nearly all are a name
/// (`image.pull`), a name's prefix (`container.*`) or `*`: those are told apart once, here,
/// and matched with one comparison; only other globs go through [`glob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    shape: Shape,
}

/// What a pattern's text is, for matching it without the general glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No `*`: the text itself.
    Exact,
    /// One `*`, at the end: text starting with the rest.
    Prefix,
    /// Only `*`s: anything.
    Any,
    /// Any other glob.
    Glob,
}

impl Pattern {
    /// A pattern from its text.
    pub fn new(text: &str) -> Pattern {
        let stars = text.bytes().filter(|&b| b == b'*').count();
        let shape = if stars == 0 {
            Shape::Exact
        } else if stars == text.len() {
            Shape::Any
        } else if stars == 1 && text.ends_with('*') {
            Shape::Prefix
        } else {
            Shape::Glob
        };
        Pattern {
            text: text.to_owned(),
            shape,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern contains a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.shape != Shape::Exact
    }

    /// Matches an operation name.
    pub fn matches_operation(&self, operation: &str) -> bool {
        if operation == "unknown" {
            return self.text == "unknown";
        }
        self.matches(operation)
    }

    /// Matches a path (or any other text).
    pub fn matches(&self, text: &str) -> bool {
        match self.shape {
            Shape::Exact => self.text == text,
            Shape::Prefix => text.starts_with(&self.text[..self.text.len() - 1]),
            Shape::Any => true,
            Shape::Glob => glob(&self.text, text),
        }
    }
}

/// A condition on one query parameter.
#[derive(Debug, Clone)]
pub enum QueryCondition {
    /// The first value equals this string.
    Equals(String, String),
    /// Docker's boolean reading of the parameter (absent = false) is this.
    Bool(String, bool),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name for decisions.
    pub name: Arc<str>,
    /// Allow or deny.
    pub effect: Effect,
    /// Operation patterns.
    pub operations: Vec<Pattern>,
    methods: Vec<Method>,
    paths: Vec<Pattern>,
    query: Vec<QueryCondition>,
    /// Where the rule is written (`policy.ci.allow[2]`, `policy.ci.rule[0]`), so an error
    /// about it names that entry's line; `None` for rules made in code.
    pub key: Option<String>,
}

impl Rule {
    /// A rule with operation patterns only.
    pub fn for_operations(name: &str, effect: Effect, patterns: &[&str]) -> Rule {
        Rule {
            name: Arc::from(name),
            effect,
            operations: patterns.iter().map(|p| Pattern::new(p)).collect(),
            methods: Vec::new(),
            paths: Vec::new(),
            query: Vec::new(),
            key: None,
        }
    }

    /// Validates a raw rule; `key` names it in errors.
    pub fn from_raw(key: &str, raw: &RawRule) -> Result<Rule, ConfigError> {
        if raw.name.trim().is_empty() {
            return Err(ConfigError(format!("{key}.name: must not be empty")));
        }
        if raw.operations.is_empty() && raw.paths.is_empty() {
            return Err(ConfigError(format!(
                "{key}: give `operations` (or `paths` for routes that have no operation name)"
            )));
        }
        if !raw.methods.is_empty() && raw.paths.is_empty() {
            return Err(ConfigError(format!(
                "{key}.methods: only applies together with `paths`"
            )));
        }
        let methods = raw
            .methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| ConfigError(format!("{key}.methods: {m:?} is not a method")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for path in &raw.paths {
            if !path.starts_with('/') {
                return Err(ConfigError(format!(
                    "{key}.paths: {path:?} must start with / (without a /vX.Y prefix)"
                )));
            }
        }
        let query = raw
            .query
            .iter()
            .map(|(param, value)| match value {
                toml::Value::String(s) => Ok(QueryCondition::Equals(param.clone(), s.clone())),
                toml::Value::Boolean(b) => Ok(QueryCondition::Bool(param.clone(), *b)),
                other => Err(ConfigError(format!(
                    "{key}.query.{param}: expected a string or a boolean, found {}",
                    other.type_str()
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            name: Arc::from(raw.name.as_str()),
            effect: raw.effect,
            operations: raw.operations.iter().map(|p| Pattern::new(p)).collect(),
            methods,
            paths: raw.paths.iter().map(|p| Pattern::new(p)).collect(),
            query,
            key: Some(key.to_owned()),
        })
    }

    /// Whether the rule has conditions beyond the operation (it then applies to fewer requests).
    pub fn is_conditional(&self) -> bool {
        !self.query.is_empty()
    }

    /// Whether the rule has raw path patterns (which apply to the operation `unknown`).
    pub fn has_paths(&self) -> bool {
        !self.paths.is_empty()
    }

    /// Whether the rule applies to a request.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.names(facts) && self.query.iter().all(|c| c.holds(facts.query))
    }

    /// Whether the rule names the request's operation (or, for `unknown`, its method and
    /// path), its query conditions aside.
    pub fn names(&self, facts: &RequestFacts<'_>) -> bool {
        let by_operation = self
            .operations
            .iter()
            .any(|p| p.matches_operation(facts.operation));
        let by_path = facts.operation == "unknown"
            && !self.paths.is_empty()
            && self.paths.iter().any(|p| p.matches(facts.path))
            && (self.methods.is_empty() || self.methods.contains(facts.method));
        by_operation || by_path
    }

    /// The query conditions this request does not meet, each in words: what the rule wants
    /// and what the request has (`follow is not set`, `follow=1`). Only for refusals: it
    /// allocates.
    pub fn unmet_conditions(&self, query: &[(String, String)]) -> Vec<UnmetCondition> {
        self.query
            .iter()
            .filter(|c| !c.holds(query))
            .map(|c| {
                let name = c.param();
                UnmetCondition {
                    param: name.to_owned(),
                    wanted: c.to_string(),
                    found: match query.iter().find(|(k, _)| k == name) {
                        Some((_, value)) => format!("{name}={}", shown(value)),
                        None => format!("no {name}"),
                    },
                }
            })
            .collect()
    }
}

pub use crate::refusal::UnmetCondition;

/// A client's query value as shown in a refusal: escaped, at most 64 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = value
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

impl std::fmt::Display for QueryCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryCondition::Equals(name, want) => write!(f, "{name}={}", shown(want)),
            QueryCondition::Bool(name, true) => write!(f, "{name} is set (true, 1, yes)"),
            QueryCondition::Bool(name, false) => write!(f, "{name} is not set"),
        }
    }
}

impl QueryCondition {
    fn param(&self) -> &str {
        match self {
            QueryCondition::Equals(name, _) | QueryCondition::Bool(name, _) => name,
        }
    }

    fn holds(&self, query: &[(String, String)]) -> bool {
        let first = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        match self {
            QueryCondition::Equals(name, want) => first(name) == Some(want.as_str()),
            QueryCondition::Bool(name, want) => {
                first(name).is_some_and(crate::inspect::go_bool) == *want
            }
        }
    }
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name.
    pub name: Arc<str>,
    /// Rules in evaluation order (profile first, then the policy's own).
    pub rules: Vec<Rule>,
    /// Acknowledged dangerous operations.
    pub allow_dangerous: Vec<Pattern>,
    /// What inspected bodies and parameters may ask for.
    pub inspect: InspectRules,
    /// Whether bodies and parameters are inspected at all.
    pub inspection: bool,
    /// Whether `Env` values are removed from inspect responses.
    pub redact_env: bool,
    /// Enforce, or only record would-be refusals.
    pub mode: Mode,
    /// Whose objects its clients see and touch.
    pub isolation: Isolation,
    /// Under isolation: most containers one tenant may have (`None`: no limit).
    pub max_containers: Option<u64>,
    /// Under isolation: most volumes one tenant may have (`None`: no limit).
    pub max_volumes: Option<u64>,
    /// A built-in profile used by name: the configuration has no `[policy.NAME]` table for it.
    pub builtin_profile: bool,
}

/// A policy's own inspection section over its profile's, key by key: a policy that starts
/// from `ci` and sets `bind_sources` keeps the profile's caps. (Replacing the whole section
/// silently dropped them.) A key set in both takes the policy's value whole (lists are not
/// appended to).
fn merge_section(own: Option<&toml::Value>, base: Option<&toml::Value>) -> Option<toml::Value> {
    match (own, base) {
        (Some(toml::Value::Table(own)), Some(toml::Value::Table(base))) => {
            let mut merged = base.clone();
            for (key, value) in own {
                merged.insert(key.clone(), value.clone());
            }
            Some(toml::Value::Table(merged))
        }
        (Some(own), _) => Some(own.clone()),
        (None, base) => base.cloned(),
    }
}

/// The inspection settings of one policy, each section defaulting to the safe profile.
#[derive(Debug, Clone, Default)]
pub struct InspectRules {
    /// `[policy.NAME.container]`.
    pub container: ContainerRules,
    /// `[policy.NAME.exec]`.
    pub exec: ExecRules,
    /// `[policy.NAME.volume]`.
    pub volume: VolumeRules,
    /// `[policy.NAME.network]`.
    pub network: NetworkRules,
    /// `[policy.NAME.build]`.
    pub build: BuildRules,
    /// `[policy.NAME.plugin]`.
    pub plugin: PluginRules,
}

impl InspectRules {
    /// Reads the sections of `raw`, each falling back to `base` (a profile's) when absent.
    pub fn from_raw(
        key: &str,
        raw: &RawPolicy,
        base: Option<&RawPolicy>,
    ) -> Result<InspectRules, ConfigError> {
        fn section<T: serde::de::DeserializeOwned + Default>(
            key: &str,
            name: &str,
            own: &Option<toml::Value>,
            base: Option<&Option<toml::Value>>,
        ) -> Result<T, ConfigError> {
            let merged = merge_section(own.as_ref(), base.and_then(Option::as_ref));
            match merged {
                None => Ok(T::default()),
                Some(value) => value.try_into().map_err(|e: toml::de::Error| {
                    ConfigError(format!("{key}.{name}: {}", e.message().trim()))
                }),
            }
        }
        let container: ContainerRules =
            section(key, "container", &raw.container, base.map(|b| &b.container))?;
        check_defaults(key, &container)?;
        Ok(InspectRules {
            container,
            exec: section(key, "exec", &raw.exec, base.map(|b| &b.exec))?,
            volume: section(key, "volume", &raw.volume, base.map(|b| &b.volume))?,
            network: section(key, "network", &raw.network, base.map(|b| &b.network))?,
            build: section(key, "build", &raw.build, base.map(|b| &b.build))?,
            plugin: section(key, "plugin", &raw.plugin, base.map(|b| &b.plugin))?,
        })
    }
}

/// Enforced defaults must be positive and within their caps.
fn check_defaults(key: &str, rules: &ContainerRules) -> Result<(), ConfigError> {
    for (name, default, cap, cap_name) in [
        (
            "default_memory_bytes",
            rules.default_memory_bytes,
            rules.max_memory_bytes,
            "max_memory_bytes",
        ),
        (
            "default_nano_cpus",
            rules.default_nano_cpus,
            rules.max_nano_cpus,
            "max_nano_cpus",
        ),
        (
            "default_pids",
            rules.default_pids,
            rules.max_pids,
            "max_pids",
        ),
    ] {
        let Some(default) = default else { continue };
        if default <= 0 {
            return Err(ConfigError(format!(
                "{key}.container.{name}: must be positive"
            )));
        }
        if let Some(cap) = cap.filter(|&cap| default > cap) {
            return Err(ConfigError(format!(
                "{key}.container.{name}: {default} exceeds {cap_name} ({cap})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforced_defaults_must_be_positive_and_within_caps() {
        let raw = |container: &str| RawPolicy {
            container: Some(toml::from_str(container).unwrap()),
            ..RawPolicy::default()
        };
        let err = InspectRules::from_raw(
            "policy.p",
            &raw("max_memory_bytes = 100\ndefault_memory_bytes = 200"),
            None,
        )
        .unwrap_err();
        assert!(
            err.0.starts_with(
                "policy.p.container.default_memory_bytes: 200 exceeds max_memory_bytes"
            ),
            "{err}"
        );
        let err = InspectRules::from_raw("policy.p", &raw("default_pids = 0"), None).unwrap_err();
        assert!(err.0.contains("default_pids: must be positive"), "{err}");
        assert!(InspectRules::from_raw("policy.p", &raw("default_nano_cpus = 5"), None).is_ok());
    }

    #[test]
    fn own_sections_override_the_profiles_key_by_key() {
        let ci = super::super::profiles::get("ci").unwrap().unwrap();
        let own = |container: &str, build: &str| RawPolicy {
            container: Some(toml::from_str(container).unwrap()),
            build: Some(toml::from_str(build).unwrap()),
            ..RawPolicy::default()
        };
        let rules = InspectRules::from_raw(
            "policy.p",
            &own("bind_sources = [\"/srv/ci\"]", "allow_buildkit = true"),
            Some(&ci),
        )
        .unwrap();
        // The policy's own keys, and the profile's caps kept beside them.
        assert_eq!(rules.container.bind_sources, ["/srv/ci"]);
        assert_eq!(rules.container.default_pids, Some(1024));
        assert_eq!(rules.container.max_pids, Some(4096));
        assert!(rules.build.allow_buildkit);
        assert!(!rules.build.allow_uncapped_builds);
        // A key set in both takes the policy's value; a cap below the profile's default
        // is refused until the default follows (the profile's own check).
        let rules = InspectRules::from_raw(
            "policy.p",
            &own(
                "max_pids = 100\ndefault_pids = 50",
                "allow_uncapped_builds = true",
            ),
            Some(&ci),
        )
        .unwrap();
        assert_eq!(rules.container.max_pids, Some(100));
        assert_eq!(rules.container.default_pids, Some(50));
        assert!(rules.build.allow_uncapped_builds);
        let err =
            InspectRules::from_raw("policy.p", &own("max_pids = 100", ""), Some(&ci)).unwrap_err();
        assert!(
            err.0.contains("default_pids: 1024 exceeds max_pids (100)"),
            "{err}"
        );
    }

    #[test]
    fn glob_patterns() {
        let p = Pattern::new;
        assert!(p("container.*").matches_operation("container.archive.get"));
        assert!(p("*").matches_operation("system.ping"));
        assert!(!p("*").matches_operation("unknown"));
        assert!(p("unknown").matches_operation("unknown"));
        assert!(!p("container.*").matches_operation("containerx"));
        assert!(p("*.list").matches_operation("image.list"));
        assert!(p("image.pull").matches_operation("image.pull"));
        assert!(!p("image.pull").matches_operation("image.pulls"));
        assert!(p("/libpod/*/json").matches("/libpod/a/b/json"));
        assert!(p("a*b*c").matches("aXXbYYc"));
        assert!(!p("a*b*c").matches("aXXbYY"));
    }

    /// Each shape a pattern is matched by agrees with the general glob, on texts that do and
    /// do not match, `unknown` aside.
    #[test]
    fn pattern_shapes_match_as_the_glob_does() {
        let patterns = [
            "",
            "*",
            "**",
            "image.pull",
            "image.*",
            "image*",
            "*.list",
            "a*b*c",
            "image.pul*",
            "*image.pull",
            "container.archive.*",
            "unknown",
            "unknow*",
        ];
        let texts = [
            "",
            "image",
            "image.",
            "image.pull",
            "image.pulls",
            "image.list",
            "imagepull",
            "container.archive.get",
            "container.archive",
            "aXbYc",
            "unknown",
            "x",
        ];
        for pattern in patterns {
            let compiled = Pattern::new(pattern);
            for text in texts {
                assert_eq!(
                    compiled.matches(text),
                    glob(pattern, text),
                    "{pattern:?} on {text:?}"
                );
                if text != "unknown" {
                    assert_eq!(compiled.matches_operation(text), glob(pattern, text));
                }
            }
            assert_eq!(compiled.matches_operation("unknown"), pattern == "unknown");
            assert_eq!(compiled.is_wildcard(), pattern.contains('*'));
            assert_eq!(compiled.as_str(), pattern);
        }
    }
}
