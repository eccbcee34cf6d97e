//! Query parameters of `POST /build` (classic builder; `version=2` is BuildKit).
//!
//! The build context (tar body) is not inspected here.

use super::common::{
    all, check_labels, check_query_keys, check_query_repeats, first, image_matches,
    normalize_image, qdeny, qdeny_rule, query_int, str_list, str_map, strukt,
};
use super::docker_json::{self, quote, Path, Value};
use super::rules::{BuildRules, ContainerRules};
use super::{Summary, Violation};

pub(crate) const BUILD_PARAMS: &[&str] = &[
    "dockerfile",
    "t",
    "extrahosts",
    "remote",
    "q",
    "nocache",
    "cachefrom",
    "pull",
    "rm",
    "forcerm",
    "memory",
    "memswap",
    "cpushares",
    "cpusetcpus",
    "cpusetmems",
    "cpuperiod",
    "cpuquota",
    "cgroupparent",
    "buildargs",
    "shmsize",
    "squash",
    "labels",
    "networkmode",
    "platform",
    "target",
    "outputs",
    "version",
    "session",
    "buildid",
    "isolation",
    "ulimits",
    "securityopt",
];

/// Repeatable parameters (`r.Form[key]` in the daemon).
const LIST_PARAMS: &[&str] = &["t", "extrahosts", "securityopt"];

/// Parses a JSON-valued query parameter strictly.
fn query_json<'a>(key: &'static str, v: &'a str) -> Result<Value<'a>, Violation> {
    docker_json::parser::parse(v.as_bytes()).map_err(|e| {
        let at = if e.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", e.path)
        };
        qdeny(key, format!("invalid JSON{at}: {}", e.message))
    })
}

/// A JSON-valued parameter, decoded; `None` when absent, empty or `null` (Go's decoder leaves
/// the daemon's slice or map nil for `null`, as the 20.10 CLI sends `ulimits=null`).
fn json_param<'q>(
    query: &'q [(String, String)],
    key: &'static str,
) -> Result<Option<Value<'q>>, Violation> {
    match nonempty(query, key) {
        None => Ok(None),
        Some(text) => {
            let v = query_json(key, text)?;
            Ok((!v.is_null()).then_some(v))
        }
    }
}

fn nonempty<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    first(query, key).filter(|v| !v.is_empty())
}

/// The `remote` value by which a BuildKit build (`version=2`) says its context comes over the
/// client's session (`/session`), not from a URL: moby's BuildKit backend then passes no
/// `context` to the frontend (`builder-next/builder.go`), and the daemon fetches nothing.
const CLIENT_SESSION_REMOTE: &str = "client-session";

/// Whether a build query makes the daemon fetch its context from elsewhere (`allow_remote`):
/// any non-empty `remote`, except BuildKit's `client-session`. The classic builder (any
/// `version` but `2`) reads `client-session` differently (an old daemon's experimental session
/// context, a newer one's error), so there it still counts as remote. Also read by
/// `audit suggest`, so that it proposes `allow_remote` exactly when this refuses without it.
pub(crate) fn fetches_remote_context(query: &[(String, String)]) -> bool {
    match nonempty(query, "remote") {
        None => false,
        Some(CLIENT_SESSION_REMOTE) => first(query, "version") != Some("2"),
        Some(_) => true,
    }
}

/// Whether a build query sets ulimits (`allow_ulimits`): a `ulimits` JSON list with at least
/// one entry (entries that are not objects are refused whatever the policy says). Absent,
/// empty, `null` (what the 20.10 CLI's classic builder sends) and `[]` leave the build without
/// ulimits, as the daemon decodes them into an empty list; malformed JSON is refused whatever
/// the policy says. Also read by `audit suggest`.
pub(crate) fn sets_ulimits(query: &[(String, String)]) -> bool {
    matches!(
        json_param(query, "ulimits"),
        Ok(Some(Value::Array(items)))
            if !items.is_empty() && items.iter().all(|i| matches!(i, Value::Object(_)))
    )
}

/// Inspects the query parameters of `POST /build`: `query` are the percent-decoded pairs in
/// order. Repeated parameters are refused except `t` and `extrahosts`.
pub fn build_query(query: &[(String, String)], rules: &BuildRules) -> Result<Summary, Violation> {
    build_query_prepared(query, rules, None)
}

/// [`build_query`] for a query into which sockwarden wrote `cgroupparent=prepared` (the
/// build's own cgroup, see `crate::buildcgroup`): that value, and only that value, passes
/// without `allow_cgroup_parent`.
pub fn build_query_prepared(
    query: &[(String, String)],
    rules: &BuildRules,
    prepared: Option<&str>,
) -> Result<Summary, Violation> {
    let mut sum = Summary::new("build");
    build_params_known(query, rules)?;
    builder_version(query, rules)?;
    build_sandbox(query, rules, prepared)?;
    build_resources(query, rules)?;
    build_json_params(query, rules)?;
    dockerfile_and_tags(query, rules, &mut sum)?;
    Ok(sum)
}

/// Every parameter is one the daemon knows (unless `allow_unknown_params`), none repeated
/// where the daemon reads only the first.
fn build_params_known(query: &[(String, String)], rules: &BuildRules) -> Result<(), Violation> {
    if rules.allow_unknown_params {
        check_query_repeats(query, LIST_PARAMS)?;
    } else {
        check_query_keys(
            query,
            BUILD_PARAMS,
            LIST_PARAMS,
            Some("allow_unknown_params"),
        )?;
    }
    Ok(())
}

/// The builder: classic, or BuildKit (and its parameters) only with `allow_buildkit`.
fn builder_version(query: &[(String, String)], rules: &BuildRules) -> Result<(), Violation> {
    match first(query, "version").unwrap_or("") {
        "" | "1" => {}
        "2" => {
            if !rules.allow_buildkit {
                return Err(qdeny_rule(
                    "version",
                    "BuildKit (version=2) is not allowed",
                    "allow_buildkit",
                ));
            }
        }
        other => {
            return Err(qdeny(
                "version",
                format!("invalid builder version {}", quote(other)),
            ))
        }
    }
    for key in ["session", "buildid", "outputs"] {
        if nonempty(query, key).is_some() && !rules.allow_buildkit {
            return Err(qdeny_rule(
                key,
                "BuildKit parameters are not allowed",
                "allow_buildkit",
            ));
        }
    }
    Ok(())
}

/// What the build's containers may reach: remote contexts, network mode, extra hosts, security
/// options, cgroup parent, isolation, CPU and memory-node pinning.
fn build_sandbox(
    query: &[(String, String)],
    rules: &BuildRules,
    prepared: Option<&str>,
) -> Result<(), Violation> {
    if fetches_remote_context(query) && !rules.allow_remote {
        return Err(qdeny_rule(
            "remote",
            "remote build contexts (fetched by the daemon) are not allowed",
            "allow_remote",
        ));
    }
    if let Some(nm) = nonempty(query, "networkmode") {
        if !rules.network_modes.iter().any(|m| m == nm) {
            return Err(qdeny_rule(
                "networkmode",
                format!("build network mode {} is not allowed", quote(nm)),
                "network_modes",
            )
            .with_value(nm));
        }
    }
    if all(query, "extrahosts").iter().any(|v| !v.is_empty()) && !rules.allow_extra_hosts {
        return Err(qdeny_rule(
            "extrahosts",
            "extra hosts are not allowed",
            "allow_extra_hosts",
        ));
    }
    if !all(query, "securityopt").is_empty() {
        return Err(qdeny(
            "securityopt",
            "security options on build are refused",
        ));
    }
    let parent = nonempty(query, "cgroupparent");
    if parent.is_some() && parent != prepared && !rules.allow_cgroup_parent {
        return Err(qdeny_rule(
            "cgroupparent",
            "setting the parent cgroup is not allowed",
            "allow_cgroup_parent",
        ));
    }
    if let Some(iso) = nonempty(query, "isolation") {
        if !iso.eq_ignore_ascii_case("default") {
            return Err(qdeny(
                "isolation",
                format!("isolation {} is refused", quote(iso)),
            ));
        }
    }
    for key in ["cpusetcpus", "cpusetmems"] {
        if nonempty(query, key).is_some() && !rules.allow_cpuset {
            return Err(qdeny_rule(
                key,
                "CPU / memory-node pinning is not allowed",
                "allow_cpuset",
            ));
        }
    }
    Ok(())
}

/// Integer resource parameters: never negative (unlimited), within the policy's caps.
fn build_resources(query: &[(String, String)], rules: &BuildRules) -> Result<(), Violation> {
    let caps: [(&str, Option<(i64, &str)>); 6] = [
        (
            "memory",
            rules.max_memory_bytes.map(|m| (m, "max_memory_bytes")),
        ),
        ("memswap", None),
        (
            "cpushares",
            rules.max_cpu_shares.map(|m| (m, "max_cpu_shares")),
        ),
        ("cpuperiod", None),
        ("cpuquota", None),
        (
            "shmsize",
            rules.max_shm_size_bytes.map(|m| (m, "max_shm_size_bytes")),
        ),
    ];
    for (key, cap) in caps {
        let n = query_int(key, first(query, key).unwrap_or(""))?;
        if n < 0 {
            return Err(qdeny(
                key,
                format!("negative {key} ({n}: unlimited) is refused"),
            ));
        }
        if let Some((max, setting)) = cap {
            if n > max {
                return Err(
                    qdeny_rule(key, format!("{key} {n} exceeds {max}"), setting).with_value(n)
                );
            }
        }
    }
    Ok(())
}

/// The JSON-valued parameters: ulimits, labels, build args, cache sources.
fn build_json_params(query: &[(String, String)], rules: &BuildRules) -> Result<(), Violation> {
    if let Some(v) = json_param(query, "ulimits")? {
        let p = Path::query("ulimits");
        let items = super::common::array(&v, &p)?;
        for (i, item) in items.iter().enumerate() {
            strukt(item, &p.index(i))?;
        }
        if !items.is_empty() && !rules.allow_ulimits {
            return Err(qdeny_rule(
                "ulimits",
                "ulimits on build are not allowed",
                "allow_ulimits",
            ));
        }
    }
    if let Some(v) = json_param(query, "labels")? {
        let p = Path::query("labels");
        let m = str_map(&v, &p)?;
        check_labels(&m, &p, &rules.reserved_labels)?;
    }
    if let Some(v) = json_param(query, "buildargs")? {
        let p = Path::query("buildargs");
        let o = super::common::object(&v, &p)?;
        for (k, val) in o.map_entries() {
            if !matches!(val, Value::String(_) | Value::Null) {
                return Err(qdeny(
                    "buildargs",
                    format!("build arg {} must be a string or null", quote(k)),
                ));
            }
        }
    }
    if let Some(v) = json_param(query, "cachefrom")? {
        let l = str_list(&v, &Path::query("cachefrom"))?;
        if !l.is_empty() && !rules.allow_cache_from {
            return Err(qdeny_rule(
                "cachefrom",
                "cache sources are not allowed",
                "allow_cache_from",
            ));
        }
    }
    Ok(())
}

/// The Dockerfile path stays inside the context; tags are allowed names (noted in `sum`).
fn dockerfile_and_tags(
    query: &[(String, String)],
    rules: &BuildRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    if let Some(df) = nonempty(query, "dockerfile") {
        if df.starts_with('/') || df.split(['/', '\\']).any(|c| c == "..") {
            return Err(qdeny(
                "dockerfile",
                "dockerfile must be a relative path without '..'",
            ));
        }
    }
    for t in all(query, "t") {
        if t.is_empty() {
            continue;
        }
        let r = normalize_image(t).map_err(|m| qdeny("t", m))?;
        if !rules.tags.is_empty() && !image_matches(&r, &rules.tags) {
            return Err(
                qdeny_rule("t", format!("tag {} is not allowed", r.full()), "tags")
                    .with_value(r.full()),
            );
        }
        sum.tags.push(r.full());
    }
    Ok(())
}

/// The CPU period written with a default CPU quota (the kernel's own default, 100 ms).
const CPU_PERIOD: i64 = 100_000;

/// The smaller of two optional caps.
fn tighter(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the policy's container section caps pids: then a classic build's containers, which
/// the build API cannot give a pids limit, need a build cgroup (`crate::buildcgroup`) or
/// `allow_uncapped_builds`.
fn caps_pids(container: &ContainerRules) -> bool {
    container.default_pids.is_some() || container.max_pids.is_some()
}

/// The `pids.max` a classic build's cgroup gets under the policy's container section:
/// `default_pids` (within `max_pids`), else `max_pids`; `None` when pids are not capped.
pub fn build_pids(container: &ContainerRules) -> Option<i64> {
    container
        .default_pids
        .map(|d| container.max_pids.map_or(d, |m| d.min(m)))
        .or(container.max_pids)
        .filter(|n| *n > 0)
}

/// Whether a build query is one that gets a build cgroup for the policy's pids cap: a classic
/// build (not `version=2`: BuildKit ignores the query's `cgroupparent`) under a pids cap that
/// leaves `cgroupparent` unset (a client's own is refused without `allow_cgroup_parent`).
pub fn wants_build_cgroup(query: &[(String, String)], container: &ContainerRules) -> bool {
    caps_pids(container)
        && build_pids(container).is_some()
        && first(query, "version") != Some("2")
        && nonempty(query, "cgroupparent").is_none()
}

/// The value of an integer parameter, 0 when absent or empty (as the daemon reads it); `None`
/// when it is not an integer (the inspector refuses it).
fn int_param(query: &[(String, String)], key: &'static str) -> Option<i64> {
    query_int(key, first(query, key).unwrap_or("")).ok()
}

/// The parameters a build query gets so that its classic-build `RUN` containers are held to
/// the policy's container limits, as a container create is (`memory`, `memswap`, `cpuperiod`
/// with `cpuquota`), each only where the query leaves it unset (absent, empty or 0):
/// - `memory`: `default_memory_bytes`, else the tighter of the build's and the container's
///   `max_memory_bytes`;
/// - `memswap`: with a `max_memory_swap_bytes`, twice the memory (the daemon's own default)
///   up to that cap, never below the memory;
/// - `cpuquota` (with `cpuperiod` 100000): `default_nano_cpus`, else `max_nano_cpus`, as a
///   share of the period.
///
/// The caller writes them into the query (replacing unset occurrences) before the query is
/// inspected, so the inspected query is the one forwarded.
pub fn build_defaults(
    query: &[(String, String)],
    build: &BuildRules,
    container: &ContainerRules,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut memory = int_param(query, "memory").unwrap_or(0);
    if memory == 0 {
        let cap = tighter(build.max_memory_bytes, container.max_memory_bytes);
        if let Some(m) = container
            .default_memory_bytes
            .map(|d| cap.map_or(d, |c| d.min(c)))
            .or(cap)
        {
            memory = m;
            out.push(("memory", m.to_string()));
        }
    }
    if let (Some(cap), Some(0)) = (container.max_memory_swap_bytes, int_param(query, "memswap")) {
        if memory > 0 {
            out.push((
                "memswap",
                memory.saturating_mul(2).min(cap).max(memory).to_string(),
            ));
        }
    }
    let quota_unset =
        int_param(query, "cpuquota") == Some(0) && int_param(query, "cpuperiod") == Some(0);
    if let Some(nano) = container.default_nano_cpus.or(container.max_nano_cpus) {
        if quota_unset && nano > 0 {
            let quota = (nano.saturating_mul(CPU_PERIOD) / 1_000_000_000).max(1000);
            out.push(("cpuperiod", CPU_PERIOD.to_string()));
            out.push(("cpuquota", quota.to_string()));
        }
    }
    out
}

/// What to set when a classic build under a pids cap gets no build cgroup: said in its refusal.
pub const UNCAPPED_BUILD_FIX: &str = "Set [upstream] build_cgroup = \"auto\" (the default: \
     sockwarden as root on the daemon's host, the daemon on a unix socket with the cgroupfs \
     cgroup driver) or a cgroup directory sockwarden can create; only if a build may take the \
     host's processes, set allow_uncapped_builds = true in the policy's [build] section \
     (unsafe: a fork bomb in a RUN step is then not stopped)";

/// The policy's container limits applied to a build (after [`build_defaults`] were written):
/// `memory`, `memswap`, `cpushares`, `shmsize` and the CPU quota within the container section's
/// caps, as for a container create; and, where the container section caps pids, a classic
/// build only in the build cgroup sockwarden prepared (see [`build_caps_prepared`]) or with
/// `allow_uncapped_builds` (the build API has no pids parameter, so a `RUN` step's containers
/// would run without a pids limit), as for any BuildKit build under a cap (BuildKit's
/// containers get none of the build's resource parameters, nor its `cgroupparent`).
pub fn build_caps(
    query: &[(String, String)],
    build: &BuildRules,
    container: &ContainerRules,
) -> Result<(), Violation> {
    build_caps_prepared(query, build, container, None)
}

/// [`build_caps`] for a query into which sockwarden wrote `cgroupparent=prepared`, a cgroup
/// whose `pids.max` is the policy's cap: a classic build so placed needs no
/// `allow_uncapped_builds`.
pub fn build_caps_prepared(
    query: &[(String, String)],
    build: &BuildRules,
    container: &ContainerRules,
    prepared: Option<&str>,
) -> Result<(), Violation> {
    let caps: [(&'static str, Option<i64>, &str); 4] = [
        ("memory", container.max_memory_bytes, "max_memory_bytes"),
        (
            "memswap",
            container.max_memory_swap_bytes,
            "max_memory_swap_bytes",
        ),
        ("cpushares", container.max_cpu_shares, "max_cpu_shares"),
        (
            "shmsize",
            container.max_shm_size_bytes,
            "max_shm_size_bytes",
        ),
    ];
    for (key, cap, setting) in caps {
        let (Some(max), Some(n)) = (cap, int_param(query, key)) else {
            continue;
        };
        if n > max {
            return Err(qdeny_rule(
                key,
                format!("{key} {n} exceeds the container limit {max}"),
                setting,
            )
            .with_value(n));
        }
    }
    if let Some(max) = container.max_nano_cpus {
        let quota = int_param(query, "cpuquota").unwrap_or(0);
        let period = match int_param(query, "cpuperiod").unwrap_or(0) {
            0 => CPU_PERIOD,
            p => p,
        };
        let nano = i128::from(quota) * 1_000_000_000 / i128::from(period.max(1));
        if quota <= 0 || nano > i128::from(max) {
            return Err(qdeny_rule(
                "cpuquota",
                format!("a build's CPU quota must be set and at most {max} NanoCpus"),
                "max_nano_cpus",
            )
            .with_value(nano));
        }
    }
    if build.allow_uncapped_builds {
        return Ok(());
    }
    let placed = prepared.is_some() && nonempty(query, "cgroupparent") == prepared;
    let classic = caps_pids(container) && first(query, "version") != Some("2");
    if classic && !placed && nonempty(query, "cgroupparent").is_some() {
        // The client's own parent (allow_cgroup_parent): no build cgroup is made for it.
        return Err(Violation {
            field: "?cgroupparent".into(),
            reason: "a classic build under a cgroup parent of the client's own gets none of \
                     this policy's pids limit (sockwarden gives a build cgroup only to builds \
                     that leave cgroupparent unset): leave it unset, or set \
                     allow_uncapped_builds = true (unsafe: a fork bomb in a RUN step is then \
                     not stopped)"
                .into(),
            setting: Some("allow_uncapped_builds".into()),
            value: None,
        });
    }
    if classic && !placed {
        return Err(Violation {
            field: "(build)".into(),
            reason: format!(
                "a classic build's RUN containers get this policy's pids limit only in a \
                 build cgroup sockwarden prepares, and this build gets none ([upstream] \
                 build_cgroup is \"off\", or none can be found here). {UNCAPPED_BUILD_FIX}"
            ),
            setting: Some("build_cgroup".into()),
            value: None,
        });
    }
    let capped = caps_pids(container)
        || container.default_memory_bytes.is_some()
        || container.max_memory_bytes.is_some()
        || container.default_nano_cpus.is_some()
        || container.max_nano_cpus.is_some();
    if capped && first(query, "version") == Some("2") {
        return Err(qdeny_rule(
            "version",
            "BuildKit's build containers get none of the policy's container limits",
            "allow_uncapped_builds",
        ));
    }
    Ok(())
}
