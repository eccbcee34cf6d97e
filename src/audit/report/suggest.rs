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
use crate::audit::schema::Violation;
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
    /// Classic and BuildKit builds seen: under container caps the policy must acknowledge that
    /// their containers escape them (`allow_uncapped_builds`).
    classic_builds: Ev,
    buildkit_builds: Ev,
    /// Classic builds whose RUN steps need a build cgroup for the pids cap (under a proposed
    /// `max_pids`, or refused for want of one): `[upstream] build_cgroup`, said in a note.
    build_cgroup: Ev,
    /// Whether a violation widened a setting.
    from_violations: bool,
    /// Violations that no setting can allow, with counts.
    unallowable: BTreeMap<String, u64>,
    /// Violations naming a setting this tool cannot size from the log.
    unresolved: BTreeMap<String, u64>,
}

mod collect;
mod render;

use collect::*;
use render::toml_key;

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
}

#[cfg(test)]
pub(super) mod tests_support {
    /// The legacy reader's split (`schema::legacy::split`).
    pub fn split(v: &str) -> (&str, Option<&str>) {
        crate::audit::schema::legacy::split(v)
    }

    /// The legacy reader's `quoted` (`schema::legacy::quoted`).
    pub fn quoted(text: &str) -> Option<String> {
        crate::audit::schema::legacy::quoted(text)
    }
}
