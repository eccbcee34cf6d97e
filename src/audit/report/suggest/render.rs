//! Rendering: the collected evidence as the TOML of a policy, commented with where each
//! grant came from, and checked against the requests it must allow.

use super::*;

impl Collector {
    /// Turns the limit trackers into `max_*` settings where every create set the value.
    pub(super) fn settle_caps(&mut self) {
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
        // A classic build's RUN steps get a pids cap proposed above only in a build cgroup
        // ([upstream] build_cgroup, said in a note); BuildKit's get no limit at all: BuildKit
        // builds that were seen need the (unsafe) acknowledgement, or the policy would refuse
        // them.
        let capped = |keys: &[&str]| keys.iter().any(|k| self.container.ints.contains_key(*k));
        let classic = std::mem::take(&mut self.classic_builds);
        let buildkit = std::mem::take(&mut self.buildkit_builds);
        if capped(&["max_pids"]) {
            self.build_cgroup.allowed += classic.allowed;
            self.build_cgroup.refused += classic.refused;
        }
        let any = capped(&["max_pids", "max_memory_bytes", "max_nano_cpus"]);
        if any && buildkit.allowed + buildkit.refused > 0 {
            let ev = self
                .build
                .flags
                .entry("allow_uncapped_builds".to_owned())
                .or_default();
            ev.allowed += buildkit.allowed;
            ev.refused += buildkit.refused;
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

    pub(super) fn header(&self, out: &mut String, policy_name: &str, files: &[String]) {
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
        if self.build_cgroup.allowed + self.build_cgroup.refused > 0 {
            notes.push(format!(
                "classic builds ({}) get the pids cap in their RUN steps only in a build \
                 cgroup: keep [upstream] build_cgroup = \"auto\" (the default: sockwarden as \
                 root on the daemon's host, the daemon with the cgroupfs cgroup driver) or set \
                 it to a cgroup directory sockwarden can create; allow_uncapped_builds = true \
                 in [build] would let them run without a pids limit instead (unsafe: a fork \
                 bomb in a RUN step is not stopped)",
                self.build_cgroup
            ));
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

    pub(super) fn rules(&self, out: &mut String, key: &str) {
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

    pub(super) fn render_section(&self, name: &str) -> String {
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
            let unsafe_note = match key.as_str() {
                "allow_uncapped_builds" => {
                    " (unsafe: BuildKit's RUN steps get none of the container limits)"
                }
                _ => "",
            };
            out.push_str(&format!("{key} = {}  # {ev}{unsafe_note}\n", !default));
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
    pub(super) fn check(&self, policy: &str, policy_name: &str) -> Result<String, SuggestError> {
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
pub(super) fn toml_key(name: &str) -> String {
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
pub(super) fn inline_key(name: &str) -> String {
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
