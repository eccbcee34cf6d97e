//! Collecting: what each recorded request asks for, widened into the sections of the
//! suggested policy (container creates' settings, build queries, refusals' violations).

use super::*;
use crate::inspect::is_host_like;

/// Defaults of one section, serialized: which keys exist, their types and default values.
pub(super) fn defaults(section: &str) -> toml::Table {
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
/// `None` for an operation nothing inspects (and that writes no image name), or whose section
/// (`plugin`) `suggest` does not write.
pub(super) fn section_of(operation: &str) -> Option<&'static str> {
    let info = crate::route::operation_info(operation)?;
    // An operation that only writes image names is decided by the build section (`tags`,
    // `allow_writing_run_images`).
    let section = match info.inspector() {
        Some(inspector) => inspector.section(),
        None if info.writes_image.is_some() => Inspected::Build,
        None => return None,
    };
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
pub(super) fn repository(image: &str) -> Option<String> {
    crate::inspect::normalize_image(image).ok().map(|r| r.repo)
}

/// The settings `suggest` widens to the value a refusal names: the lists (a host path, a
/// capability, a network, ...) and the two caps a request cannot simply stay within. Other
/// caps are left to the operator (a refused amount is not a reason to raise a limit).
fn widens_by_value(setting: &str) -> bool {
    matches!(
        setting,
        "bind_sources"
            | "require_read_only_binds"
            | "cap_add"
            | "port_host_ips"
            | "min_host_port"
            | "security_opt"
            | "sysctls"
            | "max_restart_retries"
            | "networks"
            | "runtimes"
            | "platforms"
            | "drivers"
            | "network_modes"
            | "log_drivers"
            | "group_add"
    )
}

/// `no-new-privileges` in any spelling that enables it (always allowed).
pub(super) fn harmless_security_opt(o: &str) -> bool {
    let o = o.replace(':', "=");
    o == "no-new-privileges" || o == "no-new-privileges=true" || o == "no-new-privileges=1"
}

impl Collector {
    pub(super) fn container_request(&mut self, op: &str, r: &Record) {
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

    pub(super) fn build_request(&mut self, r: &Record) {
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
        if r.query_first("version") == Some("2") {
            self.buildkit_builds.add(refused);
        } else {
            self.classic_builds.add(refused);
        }
        let b = &mut self.build;
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

    /// Widens the right section for one violation of a refused (or would-be refused) request,
    /// from the setting and value the violation carries (old logs' text is read into the
    /// same form by `schema::Violation::from_legacy`).
    pub(super) fn violation(&mut self, op: &str, v: &Violation) {
        let refused = self.refused;
        let (Some(setting), Some(name)) = (v.setting.as_deref(), section_of(op)) else {
            *self.unallowable.entry(v.to_string()).or_default() += 1;
            return;
        };
        // A classic build refused for want of a build cgroup: the fix is [upstream]
        // build_cgroup, not a policy setting (older logs named allow_uncapped_builds).
        if setting == "build_cgroup" || (setting == "allow_uncapped_builds" && v.field == "(build)")
        {
            self.from_violations = true;
            self.build_cgroup.add(refused);
            return;
        }
        let reason = v.reason.as_str();
        let defaults = defaults(name);
        let value: Option<String> = match setting {
            "images" | "tags" => v.value.as_deref().and_then(repository),
            _ if widens_by_value(setting) => v.value.clone(),
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
                    if let Some(path) = v.value.as_deref() {
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
                *self.unresolved.entry(v.to_string()).or_default() += 1;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering
}
