//! Drop-in migration from the HAProxy-based docker-socket-proxy images: their environment
//! switches (`CONTAINERS=1`, `POST=0`, `ALLOW_START=1`, ...) mapped to an equivalent policy.
//!
//! Those images allow, per enabled section, every path that starts with `/<section>` (with or
//! without a version prefix); without `POST=1` only GET and HEAD pass. The equivalent policy
//! allows exactly the operations whose routes fall in the enabled sections with an allowed
//! method, and acknowledges the dangerous ones among them, because that image opened them too
//! (`CONTAINERS=1` alone lets a client read any container's files through `archive`). Unlike
//! those images, sockwarden still inspects bodies: a privileged `container.create` is refused
//! even with `CONTAINERS=1 POST=1`.

use crate::policy::RawPolicy;
use crate::route::OPERATION_TABLE;

/// The switches and the first path segment each one opens.
const SECTIONS: &[(&str, &str)] = &[
    ("AUTH", "auth"),
    ("BUILD", "build"),
    ("COMMIT", "commit"),
    ("CONFIGS", "configs"),
    ("CONTAINERS", "containers"),
    ("DISTRIBUTION", "distribution"),
    ("EVENTS", "events"),
    ("EXEC", "exec"),
    ("GRPC", "grpc"),
    ("IMAGES", "images"),
    ("INFO", "info"),
    ("NETWORKS", "networks"),
    ("NODES", "nodes"),
    ("PING", "_ping"),
    ("PLUGINS", "plugins"),
    ("SECRETS", "secrets"),
    ("SERVICES", "services"),
    ("SESSION", "session"),
    ("SWARM", "swarm"),
    ("SYSTEM", "system"),
    ("TASKS", "tasks"),
    ("VERSION", "version"),
    ("VOLUMES", "volumes"),
];

/// Switches that are on unless set to 0.
const GRANTED_BY_DEFAULT: &[&str] = &["EVENTS", "PING", "VERSION"];

/// Container actions opened by their own switches even without `POST=1`.
const CONTAINER_ACTIONS: &[(&str, &[&str])] = &[
    ("ALLOW_START", &["container.start"]),
    ("ALLOW_STOP", &["container.stop"]),
    (
        "ALLOW_RESTARTS",
        &["container.stop", "container.restart", "container.kill"],
    ),
];

/// The variables this module reads (for documentation and `--help`).
pub fn variables() -> Vec<&'static str> {
    let mut v: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    v.push("POST");
    v.extend(CONTAINER_ACTIONS.iter().map(|(name, _)| *name));
    v
}

/// HAProxy's `-m bool` reading as those images use it: a non-zero number or "true".
fn switch(env: &dyn Fn(&str) -> Option<String>, name: &str) -> bool {
    match env(name) {
        Some(value) => {
            let v = value.trim().to_ascii_lowercase();
            v == "true" || v.parse::<i64>().is_ok_and(|n| n != 0)
        }
        None => GRANTED_BY_DEFAULT.contains(&name),
    }
}

/// The policy equivalent to the switches `env` reports.
pub fn docker_socket_proxy(env: &dyn Fn(&str) -> Option<String>) -> RawPolicy {
    let post = switch(env, "POST");
    let mut allow: Vec<String> = Vec::new();
    for info in OPERATION_TABLE {
        let opened = routes(info.routes).any(|(method, segment)| {
            let read = matches!(method, "GET" | "HEAD");
            SECTIONS
                .iter()
                .any(|(name, section)| *section == segment && switch(env, name))
                && (read || post)
        });
        if opened {
            allow.push(info.name.to_owned());
        }
    }
    for (name, operations) in CONTAINER_ACTIONS {
        if switch(env, name) {
            for op in *operations {
                if !allow.iter().any(|a| a == op) {
                    allow.push((*op).to_owned());
                }
            }
        }
    }
    let catalogue = crate::policy::catalogue();
    let allow_dangerous = allow
        .iter()
        .filter(|op| {
            catalogue
                .iter()
                .any(|(name, why)| name == op && why.is_some())
        })
        .cloned()
        .collect();
    RawPolicy {
        allow,
        allow_dangerous,
        ..RawPolicy::default()
    }
}

/// `(METHOD, first path segment)` of each route in an operation's route list such as
/// `"GET /_ping, HEAD /_ping"`. Routes without a fixed method (`any method ...`, `OPTIONS`) are
/// not part of those images' rules.
fn routes(text: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    text.split(", ").filter_map(|route| {
        let (method, path) = route.split_once(' ')?;
        if !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let segment = path.strip_prefix('/')?.split(['/', ' ']).next()?;
        Some((method, segment))
    })
}

/// The policy as TOML, for `sockwarden compat` and the README.
pub fn to_toml(policy: &RawPolicy, name: &str) -> String {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("  {i:?},"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "[policy.{name}]\nallow = [\n{}\n]\nallow_dangerous = [\n{}\n]\n",
        list(&policy.allow),
        list(&policy.allow_dangerous)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(vars: &[(&str, &str)]) -> RawPolicy {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        docker_socket_proxy(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_events_ping_version() {
        let p = policy(&[]);
        assert_eq!(p.allow, ["system.ping", "system.events", "system.version"]);
        assert!(p.allow_dangerous.is_empty());
    }

    #[test]
    fn containers_read_only_opens_reads_including_archive_like_the_image() {
        let p = policy(&[("CONTAINERS", "1"), ("PING", "0")]);
        assert!(p.allow.contains(&"container.list".to_owned()));
        assert!(p.allow.contains(&"container.logs".to_owned()));
        assert!(!p.allow.contains(&"container.create".to_owned()));
        assert!(!p.allow.contains(&"system.ping".to_owned()));
        assert!(p
            .allow_dangerous
            .contains(&"container.archive.get".to_owned()));
        assert!(!p.allow.contains(&"image.list".to_owned()));
    }

    #[test]
    fn post_and_container_actions() {
        let p = policy(&[("CONTAINERS", "1"), ("POST", "1")]);
        assert!(p.allow.contains(&"container.create".to_owned()));
        assert!(p.allow.contains(&"exec.create".to_owned()));
        assert!(
            !p.allow.contains(&"exec.start".to_owned()),
            "EXEC is its own section"
        );
        let p = policy(&[("ALLOW_START", "1"), ("ALLOW_RESTARTS", "true")]);
        for op in [
            "container.start",
            "container.restart",
            "container.kill",
            "container.stop",
        ] {
            assert!(p.allow.contains(&op.to_owned()), "{op}");
        }
        assert!(!p.allow.contains(&"container.list".to_owned()));
    }

    #[test]
    fn every_combination_compiles_under_the_guardrails() {
        let everything: Vec<(&str, &str)> = variables().into_iter().map(|v| (v, "1")).collect();
        let p = policy(&everything);
        crate::policy::compile_for_test("compat", &p).unwrap();
        crate::policy::compile_for_test("compat", &policy(&[])).unwrap();
    }
}
