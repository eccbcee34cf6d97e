//! `sockwarden audit suggest`: the smallest policy that would have allowed every request one
//! client made in the logs.
//!
//! - Rules: one `allow` entry per operation seen (allowed, denied and would-deny alike);
//!   requests without an operation (400s: the target could not be normalized) are skipped.
//!   Routes without an operation name (`unknown`) get one `[[rule]]` per exact path with the
//!   methods seen on it.
//! - `allow_dangerous` lists exactly the dangerous operations among those (and `unknown` when
//!   raw-path rules open unknown routes).
//! - Inspection sections come from the `settings` the inspector recorded for creates (bind
//!   sources, capabilities, images, networks, namespaces, runtimes, ports, security options,
//!   devices, restart policies, limits, ulimits), the query of builds (read as the inspector
//!   reads it), and the `violations` of refused requests (dry-run and enforced alike), which
//!   name the setting that would have allowed them. Every other setting keeps its safe default
//!   and is omitted. Limits (`max_*`) are only added where they cost the observed traffic
//!   nothing: the largest value seen, when every create set it; `ulimits` holds the largest
//!   hard limit seen per name.
//!
//! The result is checked before it is printed: it must parse as part of a configuration, and
//! every distinct operation/route seen, and every build query, must pass it. What cannot be
//! derived (a refusal naming a setting the log holds no value for, a create with no recorded
//! settings) is said in comments at the top.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use http::Method;

use super::{read_file, Period, Record};
use crate::config::Config;
use crate::inspect::{BuildRules, ContainerRules, ExecRules, NetworkRules, VolumeRules};
use crate::policy::RequestFacts;
use crate::route::Section as Inspected;

/// Why no policy could be suggested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestError(pub String);

impl fmt::Display for SuggestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SuggestError {}

/// Reads `files` (`-`: stdin) and suggests a policy named `policy_name` for `client`.
pub fn suggest_files(
    files: &[String],
    client: &str,
    policy_name: &str,
) -> Result<String, SuggestError> {
    let mut collector = Collector::new(client);
    for file in files {
        read_file(file, &mut |_, record| {
            if let Ok(record) = record {
                collector.add(&record);
            } else {
                collector.unparseable += 1;
            }
        })
        .map_err(SuggestError)?;
    }
    collector.finish(policy_name, files)
}

/// Suggests a policy named `policy_name` for `client` from records already read.
pub fn suggest<'r>(
    records: impl IntoIterator<Item = &'r Record>,
    client: &str,
    policy_name: &str,
) -> Result<String, SuggestError> {
    let mut collector = Collector::new(client);
    for record in records {
        collector.add(record);
    }
    collector.finish(policy_name, &[])
}

// ---------------------------------------------------------------------------------------------
// Evidence

/// How many requests back one line of the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Ev {
    /// Allowed requests that needed it.
    allowed: u64,
    /// Refused (or would-be refused) requests that needed it.
    refused: u64,
}

impl Ev {
    fn add(&mut self, refused: bool) {
        if refused {
            self.refused += 1;
        } else {
            self.allowed += 1;
        }
    }
}

impl fmt::Display for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.allowed + self.refused;
        let noun = if total == 1 { "request" } else { "requests" };
        match (self.allowed, self.refused) {
            (_, 0) => write!(f, "{total} {noun}"),
            (0, _) => write!(f, "{total} refused {noun}"),
            (_, r) => write!(f, "{total} {noun}, {r} of them refused"),
        }
    }
}

/// What one inspection section must allow.
#[derive(Debug, Default)]
struct Section {
    /// Boolean settings switched away from their default: key -> evidence.
    flags: BTreeMap<String, Ev>,
    /// List settings: key -> value -> evidence.
    lists: BTreeMap<String, BTreeMap<String, Ev>>,
    /// Integer settings set explicitly: key -> (value, comment).
    ints: BTreeMap<String, (i64, String)>,
    /// Table settings of largest values (`ulimits`): key -> name -> (largest, evidence).
    maxima: BTreeMap<String, BTreeMap<String, (i64, Ev)>>,
    /// What the current record already counted for (a record counts once per line).
    marked: BTreeSet<(String, String)>,
}

impl Section {
    fn flag(&mut self, key: &str, refused: bool) {
        if !self.marked.insert((key.to_owned(), String::new())) {
            return;
        }
        self.flags.entry(key.to_owned()).or_default().add(refused);
    }

    fn item(&mut self, key: &str, value: &str, refused: bool) {
        if !self.marked.insert((key.to_owned(), value.to_owned())) {
            return;
        }
        self.lists
            .entry(key.to_owned())
            .or_default()
            .entry(value.to_owned())
            .or_default()
            .add(refused);
    }

    /// A table setting of largest values (`ulimits = { nofile = 1024 }`): `name` asked for
    /// `value`.
    fn maximum(&mut self, key: &str, name: &str, value: i64, refused: bool) {
        // Marked apart from list items of the same key (a NUL ends no list value).
        if !self.marked.insert((key.to_owned(), format!("{name}\0"))) {
            return;
        }
        let entry = self
            .maxima
            .entry(key.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_insert((value, Ev::default()));
        entry.0 = entry.0.max(value);
        entry.1.add(refused);
    }
}

/// Tracks the largest value of a limit and whether every create set it.
#[derive(Debug, Clone, Copy, Default)]
struct Cap {
    max: Option<i64>,
    missing: bool,
}

impl Cap {
    fn see(&mut self, value: Option<i64>, required: bool) {
        match value.filter(|v| *v > 0) {
            Some(v) => self.max = Some(self.max.map_or(v, |m| m.max(v))),
            None if required => self.missing = true,
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Collecting

#[derive(Debug, Default)]
struct Collector {
    client: String,
    /// Other clients seen, for the error when the client made no request.
    others: BTreeSet<String>,
    /// Whether the record being read was refused (or would have been).
    refused: bool,
    period: Period,
    requests: u64,
    unparseable: u64,
    no_operation: u64,
    /// Operation -> (allowed, denied, would-deny).
    operations: BTreeMap<&'static str, [u64; 3]>,
    /// Operation names this version does not know.
    strange: BTreeMap<String, u64>,
    /// Unknown routes: path -> method -> count.
    raw: BTreeMap<String, BTreeMap<String, u64>>,
    raw_without_path: u64,
    /// Distinct (operation, method, path) to replay against the result.
    replay: BTreeSet<(&'static str, String, String)>,
    /// Distinct build queries to replay against the result.
    builds: BTreeSet<Vec<(String, String)>>,
    container: Section,
    exec: Section,
    volume: Section,
    network: Section,
    build: Section,
    /// Container creates/updates with neither settings nor violations.
    blind_creates: u64,
    /// Whether an `images` list can be given (every create named a parseable image).
    images_unknowable: Option<String>,
    /// Whether a build `tags` list can be given.
    tags_unknowable: Option<String>,
    caps: BTreeMap<&'static str, Cap>,
    /// A create or update without settings: its limits are unknown, so no cap is given.
    caps_unknowable: bool,
    cpu_quota_seen: bool,
    pids_unlimited_seen: bool,
    build_caps: BTreeMap<&'static str, Cap>,
    build_caps_unknowable: bool,
    /// Whether a violation widened a setting.
    from_violations: bool,
    /// Violations that no setting can allow, with counts.
    unallowable: BTreeMap<String, u64>,
    /// Violations naming a setting this tool cannot size from the log.
    unresolved: BTreeMap<String, u64>,
}

/// Defaults of one section, serialized: which keys exist, their types and default values.
fn defaults(section: &str) -> toml::Table {
    let value = match section {
        "container" => toml::Value::try_from(ContainerRules::default()),
        "exec" => toml::Value::try_from(ExecRules::default()),
        "volume" => toml::Value::try_from(VolumeRules::default()),
        "network" => toml::Value::try_from(NetworkRules::default()),
        _ => toml::Value::try_from(BuildRules::default()),
    };
    match value {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

/// The section whose settings decide an operation's inspection, from the operation table;
/// `None` for an operation nothing inspects, or whose section (`plugin`) `suggest` does not
/// write.
fn section_of(operation: &str) -> Option<&'static str> {
    let section = crate::route::operation_info(operation)?
        .inspector()?
        .section();
    match section {
        Inspected::Plugin => None,
        Inspected::Container
        | Inspected::Exec
        | Inspected::Volume
        | Inspected::Network
        | Inspected::Build => Some(section.as_str()),
    }
}

/// The repository of an image reference, normalized (`busybox:1` -> `docker.io/library/busybox`).
fn repository(image: &str) -> Option<String> {
    crate::inspect::normalize_image(image).ok().map(|r| r.repo)
}

/// The first JSON-quoted string in `text`.
fn quoted(text: &str) -> Option<String> {
    let start = text.find('"')?;
    let rest = text.get(start..)?;
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return serde_json::from_str(rest.get(..=i)?).ok(),
            _ => escaped = false,
        }
    }
    None
}

/// The text between `prefix` and `suffix` in `reason`.
fn between<'a>(reason: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    reason
        .find(prefix)
        .and_then(|i| reason.get(i + prefix.len()..))
        .and_then(|rest| rest.find(suffix).and_then(|j| rest.get(..j)))
        .filter(|s| !s.is_empty())
}

/// Splits a violation `FIELD: REASON (setting)` into the reason and the setting, if any.
fn split_violation(v: &str) -> (&str, Option<&str>) {
    let reason = v.split_once(": ").map_or(v, |(_, r)| r);
    let setting = reason
        .strip_suffix(')')
        .and_then(|r| r.rfind('(').and_then(|i| r.get(i + 1..)))
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    (reason, setting)
}

fn is_host_like(mode: &str) -> bool {
    mode.eq_ignore_ascii_case("host")
        || mode
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"))
}

/// `no-new-privileges` in any spelling that enables it (always allowed).
fn harmless_security_opt(o: &str) -> bool {
    let o = o.replace(':', "=");
    o == "no-new-privileges" || o == "no-new-privileges=true" || o == "no-new-privileges=1"
}

impl Collector {
    fn new(client: &str) -> Collector {
        Collector {
            client: client.to_owned(),
            ..Collector::default()
        }
    }

    fn section(&mut self, name: &str) -> &mut Section {
        match name {
            "exec" => &mut self.exec,
            "volume" => &mut self.volume,
            "network" => &mut self.network,
            "build" => &mut self.build,
            _ => &mut self.container,
        }
    }

    fn add(&mut self, r: &Record) {
        if !r.is_request() {
            return;
        }
        if r.client.as_deref() != Some(self.client.as_str()) {
            if let Some(other) = &r.client {
                self.others.insert(other.clone());
            }
            return;
        }
        self.requests += 1;
        self.period.see(r.time.as_deref());
        self.refused = matches!(r.decision.as_deref(), Some("deny" | "would-deny"));
        for section in [
            &mut self.container,
            &mut self.exec,
            &mut self.volume,
            &mut self.network,
            &mut self.build,
        ] {
            section.marked.clear();
        }
        let Some(op) = r.operation.as_deref() else {
            self.no_operation += 1;
            return;
        };
        let Some(op) = crate::route::operation_info(op).map(|i| i.name) else {
            *self.strange.entry(op.to_owned()).or_default() += 1;
            return;
        };
        let slot = match r.decision.as_deref() {
            Some("deny") => 1,
            Some("would-deny") => 2,
            _ => 0,
        };
        if let Some(counts) = self.operations.entry(op).or_default().get_mut(slot) {
            *counts += 1;
        }
        let method = r.method.clone().unwrap_or_default().to_ascii_uppercase();
        if op == crate::route::UNKNOWN {
            match &r.path {
                Some(path) => {
                    *self
                        .raw
                        .entry(path.clone())
                        .or_default()
                        .entry(method.clone())
                        .or_default() += 1;
                }
                None => self.raw_without_path += 1,
            }
        }
        if let Some(path) = &r.path {
            self.replay.insert((op, method, path.clone()));
        }
        let refused = self.refused;
        match op {
            "container.create" | "container.update" => self.container_request(op, r),
            "exec.create" if r.settings.as_ref().is_some_and(|s| s.privileged) => {
                self.exec.flag("allow_privileged", refused);
            }
            "volume.create" => {
                if let Some(driver) = r.settings.as_ref().and_then(|s| s.driver.as_deref()) {
                    self.volume.item("drivers", driver, refused);
                }
            }
            "network.create" => {
                if let Some(driver) = r.settings.as_ref().and_then(|s| s.driver.as_deref()) {
                    self.network.item("drivers", driver, refused);
                }
            }
            "image.build" => self.build_request(r),
            _ => {}
        }
        for v in &r.violations {
            self.violation(op, v);
        }
    }

    fn container_request(&mut self, op: &str, r: &Record) {
        let refused = self.refused;
        let create = op == "container.create";
        if create {
            for platform in r.query.get("platform").into_iter().flatten() {
                if !platform.is_empty() {
                    self.container.item("platforms", platform, refused);
                }
            }
        }
        let Some(s) = &r.settings else {
            if r.violations.is_empty() {
                self.blind_creates += 1;
            }
            // Without settings the image and limits are unknown: no list or cap may refuse them.
            if create {
                self.images_unknowable
                    .get_or_insert_with(|| "a create has no recorded settings".into());
            }
            self.caps_unknowable = true;
            return;
        };
        let c = &mut self.container;
        if s.privileged {
            c.flag("allow_privileged", refused);
        }
        for cap in &s.cap_add {
            c.item("cap_add", cap, refused);
        }
        for m in &s.mounts {
            if m.kind == "bind" {
                if let Some(source) = &m.source {
                    c.item("bind_sources", source, refused);
                }
                if !m.read_only {
                    c.flag("require_read_only_binds", refused);
                }
            }
            let t = m.target.as_str();
            if ["/proc", "/sys", "/dev"]
                .iter()
                .any(|p| t == *p || t.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
            {
                c.flag("allow_special_mount_targets", refused);
            }
        }
        for n in &s.networks {
            c.item("networks", n, refused);
        }
        for ns in &s.namespaces {
            if let Some((_, mode)) = ns.split_once('=') {
                if is_host_like(mode) {
                    c.flag("allow_host_namespaces", refused);
                } else if ns == "ipc=shareable" {
                    c.flag("allow_shareable_ipc", refused);
                }
            }
        }
        for o in &s.security_opt {
            if !harmless_security_opt(o) {
                c.item("security_opt", o, refused);
            }
        }
        if !s.devices.is_empty() {
            c.flag("allow_devices", refused);
        }
        if let Some(runtime) = &s.runtime {
            c.item("runtimes", runtime, refused);
        }
        for (name, hard) in &s.ulimits {
            c.maximum("ulimits", name, *hard, refused);
        }
        for b in &s.port_bindings {
            c.flag("allow_port_bindings", refused);
            let Some((host, _)) = b.split_once("->") else {
                continue;
            };
            let Some((ip, port)) = host.rsplit_once(':') else {
                continue;
            };
            c.item("port_host_ips", ip, refused);
            let low = port.split('-').next().and_then(|p| p.parse::<i64>().ok());
            if let Some(low) = low {
                let min = c
                    .ints
                    .get("min_host_port")
                    .map_or(i64::from(ContainerRules::default().min_host_port), |v| v.0);
                if low < min {
                    c.ints.insert(
                        "min_host_port".into(),
                        (low, format!("host port {low} was bound")),
                    );
                }
            }
        }
        if matches!(
            s.restart_policy.as_deref(),
            Some("always" | "unless-stopped")
        ) {
            c.flag("allow_restart_always", refused);
        }
        if create {
            match s.image.as_deref().map(|i| (i, repository(i))) {
                Some((_, Some(repo))) => c.item("images", &repo, refused),
                Some((image, None)) => {
                    self.images_unknowable.get_or_insert_with(|| {
                        format!("image {image:?} is not a reference an images list can match")
                    });
                }
                None => {
                    self.images_unknowable
                        .get_or_insert_with(|| "a create named no image".into());
                }
            }
        }
        let l = &s.limits;
        for (name, value, required) in [
            ("memory", l.memory, true),
            ("memory_swap", l.memory_swap, true),
            ("nano_cpus", l.nano_cpus, true),
            ("cpu_shares", l.cpu_shares, false),
            ("pids", l.pids, true),
            ("shm_size", l.shm_size, false),
        ] {
            self.caps
                .entry(name)
                .or_default()
                .see(value, required && create);
        }
        if l.cpu_quota.is_some_and(|q| q > 0) {
            self.cpu_quota_seen = true;
        }
        if l.pids.is_some_and(|p| p <= 0) {
            self.pids_unlimited_seen = true;
        }
    }

    fn build_request(&mut self, r: &Record) {
        let refused = self.refused;
        let known = crate::inspect::build::BUILD_PARAMS;
        let nonempty = |key: &str| {
            r.query
                .get(key)
                .is_some_and(|vs| vs.iter().any(|v| !v.is_empty()))
        };
        let b = &mut self.build;
        if r.query_first("version") == Some("2")
            || ["session", "buildid", "outputs"]
                .iter()
                .any(|k| nonempty(k))
        {
            b.flag("allow_buildkit", refused);
        }
        for (key, flag) in [
            ("extrahosts", "allow_extra_hosts"),
            ("cgroupparent", "allow_cgroup_parent"),
            ("cpusetcpus", "allow_cpuset"),
            ("cpusetmems", "allow_cpuset"),
        ] {
            if nonempty(key) {
                b.flag(flag, refused);
            }
        }
        // Asked as the inspector asks (the query's values, in order; redacted ones are not
        // among these parameters): BuildKit's `remote=client-session` fetches nothing, and
        // `ulimits=null` (the 20.10 CLI) or `[]` sets none.
        let pairs: Vec<(String, String)> = r
            .query
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        if crate::inspect::build::fetches_remote_context(&pairs) {
            b.flag("allow_remote", refused);
        }
        if crate::inspect::build::sets_ulimits(&pairs) {
            b.flag("allow_ulimits", refused);
        }
        if let Some(cache) = r.query_first("cachefrom").filter(|c| !c.is_empty()) {
            if serde_json::from_str::<Vec<String>>(cache).map_or(true, |l| !l.is_empty()) {
                b.flag("allow_cache_from", refused);
            }
        }
        if r.query.keys().any(|k| !known.contains(&k.as_str())) {
            b.flag("allow_unknown_params", refused);
        }
        if let Some(mode) = r.query_first("networkmode").filter(|m| !m.is_empty()) {
            b.item("network_modes", mode, refused);
        }
        for (param, cap) in [
            ("memory", "max_memory_bytes"),
            ("cpushares", "max_cpu_shares"),
            ("shmsize", "max_shm_size_bytes"),
        ] {
            match r.query_first(param).filter(|v| !v.is_empty()) {
                None => {}
                Some(v) => match v.parse::<i64>() {
                    Ok(n) => self.build_caps.entry(cap).or_default().see(Some(n), false),
                    Err(_) => self.build_caps_unknowable = true,
                },
            }
        }
        let tags: Vec<String> = match &r.settings {
            Some(s) if !s.tags.is_empty() => s.tags.clone(),
            _ => r
                .query
                .get("t")
                .into_iter()
                .flatten()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect(),
        };
        for tag in tags {
            match repository(&tag) {
                Some(repo) => self.build.item("tags", &repo, refused),
                None => {
                    self.tags_unknowable
                        .get_or_insert_with(|| format!("tag {tag:?} is not a valid reference"));
                }
            }
        }
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(_, v)| v != "<redacted>")
            .collect();
        self.builds.insert(pairs);
    }

    /// Widens the right section for one violation of a refused (or would-be refused) request.
    fn violation(&mut self, op: &str, v: &str) {
        let refused = self.refused;
        let (reason, setting) = split_violation(v);
        let (Some(setting), Some(name)) = (setting, section_of(op)) else {
            *self.unallowable.entry(v.to_owned()).or_default() += 1;
            return;
        };
        let defaults = defaults(name);
        let value: Option<String> = match setting {
            "bind_sources" => between(reason, "host path ", " is not allowed").map(str::to_owned),
            "require_read_only_binds" => {
                between(reason, "host path ", " must be mounted").map(str::to_owned)
            }
            "cap_add" => between(reason, "capability ", " is not allowed").map(str::to_owned),
            "images" => between(reason, "image ", " is not allowed").and_then(repository),
            "tags" => between(reason, "tag ", " is not allowed").and_then(repository),
            "port_host_ips" => {
                between(reason, "host address ", " is not allowed").map(str::to_owned)
            }
            "min_host_port" => between(reason, "host port ", " is below").map(str::to_owned),
            "security_opt" if reason.starts_with("disabling no-new-privileges") => {
                Some("no-new-privileges=false".into())
            }
            "sysctls" => between(reason, "sysctl ", " is not allowed").map(str::to_owned),
            "max_restart_retries" => between(reason, ", got ", " (").map(str::to_owned),
            "networks" | "runtimes" | "security_opt" | "platforms" | "drivers"
            | "network_modes" | "log_drivers" | "group_add" => quoted(reason),
            _ => None,
        };
        self.from_violations = true;
        let section = self.section(name);
        match (defaults.get(setting), value) {
            (Some(toml::Value::Boolean(default)), _) => {
                let allowing = !setting.starts_with("require_");
                if allowing != *default {
                    section.flag(setting, refused);
                }
                if setting == "require_read_only_binds" {
                    if let Some(path) = between(reason, "host path ", " must be mounted") {
                        section.item("bind_sources", path, refused);
                    }
                }
            }
            (Some(toml::Value::Array(_)), Some(value)) => section.item(setting, &value, refused),
            (Some(toml::Value::Integer(default)), Some(value))
                if value.parse::<i64>().is_ok_and(|n| n >= 1) =>
            {
                let n = value.parse::<i64>().unwrap_or(*default);
                let current = section.ints.get(setting).map_or(*default, |v| v.0);
                let (wider, why) = if setting == "min_host_port" {
                    (n < current, format!("host port {n} was refused"))
                } else {
                    (n > current, format!("{n} was refused"))
                };
                if wider {
                    section.ints.insert(setting.to_owned(), (n, why));
                }
            }
            _ => {
                if setting == "images" {
                    self.images_unknowable
                        .get_or_insert_with(|| format!("a create was refused: {reason}"));
                }
                *self.unresolved.entry(v.to_owned()).or_default() += 1;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering

    fn finish(mut self, policy_name: &str, files: &[String]) -> Result<String, SuggestError> {
        if self.operations.is_empty() {
            let why = if self.requests == 0 {
                let others: Vec<&str> = self.others.iter().map(String::as_str).collect();
                format!(
                    "no requests from client {:?} in the log (clients seen: {})",
                    self.client,
                    if others.is_empty() {
                        "none".into()
                    } else {
                        others.join(", ")
                    }
                )
            } else {
                format!(
                    "none of the {} requests from client {:?} has an operation",
                    self.requests, self.client
                )
            };
            return Err(SuggestError(why));
        }
        self.settle_caps();
        let key = toml_key(policy_name);
        let mut header = String::new();
        self.header(&mut header, policy_name, files);
        let mut out = format!("[policy.{key}]\n");
        self.rules(&mut out, &key);
        for name in ["container", "exec", "volume", "network", "build"] {
            let table = self.render_section(name);
            if !table.is_empty() {
                out.push_str(&format!("\n[policy.{key}.{name}]\n{table}"));
            }
        }
        let check = self.check(&out, policy_name)?;
        Ok(format!("{header}{check}{out}"))
    }

    /// Turns the limit trackers into `max_*` settings where every create set the value.
    fn settle_caps(&mut self) {
        let caps = std::mem::take(&mut self.caps);
        for (name, setting) in [
            ("memory", "max_memory_bytes"),
            ("memory_swap", "max_memory_swap_bytes"),
            ("nano_cpus", "max_nano_cpus"),
            ("cpu_shares", "max_cpu_shares"),
            ("pids", "max_pids"),
            ("shm_size", "max_shm_size_bytes"),
        ] {
            let Some(cap) = caps.get(name) else { continue };
            let blocked = cap.missing
                || self.caps_unknowable
                || (name == "nano_cpus" && self.cpu_quota_seen)
                || (name == "pids" && self.pids_unlimited_seen);
            if let (Some(max), false) = (cap.max, blocked) {
                let why = if matches!(name, "cpu_shares" | "shm_size") {
                    "the largest value seen"
                } else {
                    "the largest value seen; every create set it"
                };
                self.container
                    .ints
                    .insert(setting.to_owned(), (max, why.to_owned()));
            }
        }
        if !self.build_caps_unknowable {
            for (setting, cap) in std::mem::take(&mut self.build_caps) {
                if let Some(max) = cap.max {
                    self.build.ints.insert(
                        setting.to_owned(),
                        (max, "the largest value seen".to_owned()),
                    );
                }
            }
        }
    }

    fn header(&self, out: &mut String, policy_name: &str, files: &[String]) {
        let totals = self.operations.values().fold([0u64; 3], |mut acc, c| {
            for (a, b) in acc.iter_mut().zip(c) {
                *a += b;
            }
            acc
        });
        out.push_str(&format!(
            "# Suggested by `sockwarden audit suggest` for client {:?} (policy {:?})",
            self.client, policy_name
        ));
        if !files.is_empty() {
            out.push_str(&format!(" from {}", files.join(", ")));
        }
        out.push('\n');
        if let (Some(first), Some(last)) = (&self.period.first, &self.period.last) {
            out.push_str(&format!("# Requests from {first} to {last}: "));
        } else {
            out.push_str("# Requests: ");
        }
        out.push_str(&format!(
            "{} with an operation ({} allowed, {} denied, {} would-deny).\n",
            totals.iter().sum::<u64>(),
            totals[0],
            totals[1],
            totals[2]
        ));
        out.push_str(
            "# Only what was seen is allowed; every other setting keeps its safe default.\n",
        );
        let mut notes = Vec::new();
        if self.no_operation > 0 {
            notes.push(format!(
                "{} without an operation (400: not normalized) not covered",
                if self.no_operation == 1 {
                    "1 request".to_owned()
                } else {
                    format!("{} requests", self.no_operation)
                }
            ));
        }
        for (op, n) in &self.strange {
            notes.push(format!(
                "{n} requests name the operation {op:?}, which this version does not know; not covered"
            ));
        }
        if self.raw_without_path > 0 {
            notes.push(format!(
                "{} unknown-route requests have no recorded path; not covered",
                self.raw_without_path
            ));
        }
        if self.blind_creates > 0 {
            notes.push(format!(
                "{} container creates/updates have no recorded settings (inspection off?): the \
                 [container] section may still refuse them",
                self.blind_creates
            ));
        }
        if let Some(why) = &self.images_unknowable {
            notes.push(format!("no `images` list: {why}"));
        }
        if self.caps_unknowable {
            notes.push(
                "no `max_*` limits: a container create or update has no recorded settings".into(),
            );
        }
        if let Some(why) = &self.tags_unknowable {
            notes.push(format!("no build `tags` list: {why}"));
        }
        for (v, n) in &self.unresolved {
            notes.push(format!(
                "{n} x refused by inspection: {v}; the log holds no value for that setting: \
                 set it by hand"
            ));
        }
        for (v, n) in &self.unallowable {
            notes.push(format!(
                "{n} x refused by inspection: {v}; no setting allows this"
            ));
        }
        if self.unparseable > 0 {
            notes.push(match self.unparseable {
                1 => "1 unparseable line skipped".to_owned(),
                n => format!("{n} unparseable lines skipped"),
            });
        }
        if self.from_violations {
            notes.push(
                "inspection stops at the first refusal: a refused request may need more once \
                 this policy lets it through (run it under this policy in audit mode)"
                    .into(),
            );
        }
        for note in notes {
            out.push_str(&format!("# NOTE: {note}\n"));
        }
    }

    fn rules(&self, out: &mut String, key: &str) {
        let catalogue = crate::policy::catalogue();
        let order = |op: &str| crate::route::OPERATIONS.iter().position(|o| *o == op);
        let mut named: Vec<(&&'static str, &[u64; 3])> = self
            .operations
            .iter()
            .filter(|(op, _)| **op != crate::route::UNKNOWN)
            .collect();
        named.sort_by_key(|(op, _)| order(op));
        let describe = |c: &[u64; 3]| {
            let total: u64 = c.iter().sum();
            let mut parts = Vec::new();
            for (n, word) in c.iter().zip(["allowed", "denied", "would-deny"]) {
                if *n > 0 {
                    parts.push(format!("{n} {word}"));
                }
            }
            let noun = if total == 1 { "request" } else { "requests" };
            format!("{total} {noun}: {}", parts.join(", "))
        };
        let width = named.iter().map(|(op, _)| op.len() + 3).max().unwrap_or(0);
        out.push_str("allow = [\n");
        for (op, counts) in &named {
            let quoted = format!("{}", toml::Value::String((**op).to_owned()));
            out.push_str(&format!(
                "  {:<width$} # {}\n",
                format!("{quoted},"),
                describe(counts)
            ));
        }
        out.push_str("]\n");
        let mut dangerous: Vec<(&str, String)> = named
            .iter()
            .filter_map(|(op, counts)| {
                let why = catalogue.iter().find(|(n, _)| n == *op)?.1?;
                Some((**op, format!("{}; {why}", describe(counts))))
            })
            .collect();
        if let Some(counts) = self.operations.get(crate::route::UNKNOWN) {
            if !self.raw.is_empty() {
                dangerous.push((
                    crate::route::UNKNOWN,
                    format!(
                        "{}; routes sockwarden cannot name, opened by method and path in the rules below",
                        describe(counts)
                    ),
                ));
            }
        }
        if dangerous.is_empty() {
            out.push_str("allow_dangerous = []\n");
        } else {
            out.push_str("allow_dangerous = [\n");
            for (op, why) in dangerous {
                let quoted = format!("{}", toml::Value::String(op.to_owned()));
                out.push_str(&format!("  {:<width$} # {why}\n", format!("{quoted},")));
            }
            out.push_str("]\n");
        }
        for (i, (path, methods)) in self.raw.iter().enumerate() {
            let total: u64 = methods.values().sum();
            let seen: Vec<String> = methods
                .iter()
                .map(|(m, n)| format!("{m} {path} x{n}"))
                .collect();
            out.push_str(&format!("\n[[policy.{key}.rule]]\n"));
            out.push_str(&format!(
                "# {total} request{} to a route without an operation name: {}\n",
                if total == 1 { "" } else { "s" },
                seen.join(", ")
            ));
            if path.contains('*') {
                out.push_str("# NOTE: `*` in a path pattern matches any text: this rule is wider than the path seen\n");
            }
            out.push_str(&format!("name = \"unknown-route-{}\"\n", i + 1));
            out.push_str("effect = \"allow\"\n");
            let methods: Vec<String> = methods
                .keys()
                .filter(|m| Method::from_bytes(m.as_bytes()).is_ok())
                .map(|m| toml::Value::String(m.clone()).to_string())
                .collect();
            if !methods.is_empty() {
                out.push_str(&format!("methods = [{}]\n", methods.join(", ")));
            }
            out.push_str(&format!(
                "paths = [{}]\n",
                toml::Value::String(path.clone())
            ));
        }
    }

    fn render_section(&self, name: &str) -> String {
        let section = match name {
            "exec" => &self.exec,
            "volume" => &self.volume,
            "network" => &self.network,
            "build" => &self.build,
            _ => &self.container,
        };
        let defaults = defaults(name);
        let mut out = String::new();
        for (key, ev) in &section.flags {
            let Some(toml::Value::Boolean(default)) = defaults.get(key) else {
                continue;
            };
            out.push_str(&format!("{key} = {}  # {ev}\n", !default));
        }
        for (key, values) in &section.lists {
            let Some(toml::Value::Array(default)) = defaults.get(key) else {
                continue;
            };
            if key == "images" && self.images_unknowable.is_some() {
                continue;
            }
            if key == "tags" && self.tags_unknowable.is_some() {
                continue;
            }
            let default: Vec<&str> = default.iter().filter_map(toml::Value::as_str).collect();
            // A list whose default is not empty (drivers, port_host_ips, network_modes, ...) is
            // only given when something outside the default was seen; it then holds exactly
            // what was seen.
            if !default.is_empty() && values.keys().all(|v| default.contains(&v.as_str())) {
                continue;
            }
            let what = match key.as_str() {
                "images" => "  # repositories seen (any tag)",
                "tags" => "  # repositories tagged (any tag)",
                "bind_sources" => "  # host paths bound (each also allows paths below it)",
                _ => "",
            };
            out.push_str(&format!("{key} = [{what}\n"));
            let width = values
                .keys()
                .map(|v| toml::Value::String(v.clone()).to_string().len() + 1)
                .max()
                .unwrap_or(0);
            for (value, ev) in values {
                let quoted = format!("{},", toml::Value::String(value.clone()));
                out.push_str(&format!("  {quoted:<width$} # {ev}\n"));
            }
            out.push_str("]\n");
        }
        for (key, (value, why)) in &section.ints {
            out.push_str(&format!("{key} = {value}  # {why}\n"));
        }
        for (key, names) in &section.maxima {
            if !matches!(defaults.get(key), Some(toml::Value::Table(_))) {
                continue;
            }
            let entries: Vec<String> = names
                .iter()
                .map(|(name, (max, _))| format!("{} = {max}", inline_key(name)))
                .collect();
            let evidence: Vec<String> = names
                .iter()
                .map(|(name, (_, ev))| format!("{}: {ev}", inline_key(name)))
                .collect();
            out.push_str(&format!(
                "{key} = {{ {} }}  # the largest hard limits seen ({})\n",
                entries.join(", "),
                evidence.join("; ")
            ));
        }
        out
    }

    /// Parses the suggestion inside a configuration and replays what was seen through it.
    /// Returns the comment lines saying what was checked.
    fn check(&self, policy: &str, policy_name: &str) -> Result<String, SuggestError> {
        let client = toml::Value::String(self.client.clone());
        let config = format!(
            "[upstream]\nsocket = \"/var/run/docker.sock\"\n\n[[listen]]\n\
             unix = \"/run/sockwarden-audit-suggest.sock\"\nclient = {client}\n\n\
             [[client]]\nname = {client}\npolicy = {}\n\n{policy}",
            toml::Value::String(policy_name.to_owned())
        );
        let config = Config::parse(&config, "suggested policy").map_err(|e| {
            SuggestError(format!(
                "internal error: the suggested policy is not valid ({e}); it was:\n{policy}"
            ))
        })?;
        let mut refused = Vec::new();
        for (op, method, path) in &self.replay {
            let Ok(m) = Method::from_bytes(method.as_bytes()) else {
                continue;
            };
            let facts = RequestFacts {
                operation: op,
                method: &m,
                path,
                query: &[],
            };
            let decision = config.authority.decide(Some(&self.client), &facts);
            if !decision.allowed {
                refused.push(format!("{op} ({method} {path}): {}", decision.reason));
            }
        }
        let compiled = config.authority.policy_for(&self.client).map(Arc::clone);
        let mut builds_ok = 0;
        if let Some(compiled) = &compiled {
            for query in &self.builds {
                match crate::inspect::build_query(query, &compiled.inspect.build) {
                    Ok(_) => builds_ok += 1,
                    Err(v) if v.reason.ends_with(')') => {
                        refused.push(format!("image.build query: {v}"));
                    }
                    // Refused whatever the policy says (bad JSON, ...): already a NOTE if seen.
                    Err(_) => {}
                }
            }
        }
        let rule_refusals = refused
            .iter()
            .filter(|r| !r.starts_with("image.build"))
            .count();
        let mut out = format!(
            "# Checked: parses as a policy; {} of {} distinct operation/route pairs seen are \
             allowed by its rules",
            self.replay.len() - rule_refusals,
            self.replay.len()
        );
        if !self.builds.is_empty() {
            out.push_str(&format!(
                "; {builds_ok} of {} distinct build queries pass its [build] section",
                self.builds.len()
            ));
        }
        out.push_str(".\n");
        for r in refused {
            out.push_str(&format!("# STILL REFUSED: {r}\n"));
        }
        Ok(out)
    }
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}

/// A TOML key on one line (inline tables and comments cannot span lines): bare when it can
/// be, else a basic string with JSON's escapes, which TOML reads the same.
fn inline_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        name.to_owned()
    } else {
        serde_json::to_string(name).unwrap_or_else(|_| "\"\"".to_owned())
    }
}

#[cfg(test)]
pub(super) mod tests_support {
    /// [`super::split_violation`].
    pub fn split(v: &str) -> (&str, Option<&str>) {
        super::split_violation(v)
    }

    /// [`super::quoted`].
    pub fn quoted(text: &str) -> Option<String> {
        super::quoted(text)
    }
}
