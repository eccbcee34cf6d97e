//! `POST /services/create` and `POST /services/{id}/update`: the swarm `ServiceSpec`.
//!
//! A service's containers get the same scrutiny as `docker run`, under the same
//! [`ContainerRules`] (the policy's `[policy.NAME.container]` section): the
//! `TaskTemplate.ContainerSpec` fields map onto their container equivalents (`Mounts` are the
//! same `Mount` type, `CapabilityAdd` is `CapAdd`, `Groups` is `GroupAdd`, `Hosts` is
//! `ExtraHosts`, `Privileges` become `SecurityOpt` entries the way the daemon's executor turns
//! them into `label=`, `seccomp=`, `apparmor=` options), `TaskTemplate.Resources.Limits` are held
//! to the same caps as `Memory`, `NanoCpus` and `PidsLimit`, `TaskTemplate.Networks` and the
//! deprecated top-level `Networks` to the same network rules as `NetworkMode` (`host` needs
//! `allow_host_namespaces`), `EndpointSpec.Ports` to the port-binding rules (a swarm publishes on
//! every interface, so `0.0.0.0` must be in `port_host_ips`), and `TaskTemplate.LogDriver` to
//! the log-driver rules.
//!
//! Refused outright: plugin services (`TaskTemplate.Runtime` other than `container`, any
//! `PluginSpec` or `NetworkAttachmentSpec`; plugins are installed with `plugin.pull`, which
//! `[policy.NAME.plugin]` governs), Windows credential specs, custom seccomp profiles, pinning to
//! manager nodes, secret and config files under `/proc`, `/sys`, `/dev` or with set-id bits, and
//! `?rollback=previous` (it applies a spec that is not in the request).
//!
//! Unknown fields are refused inside `TaskTemplate` and everything below it (`ContainerSpec`,
//! `Privileges`, `Mount`, `Resources`, ...) and inside `EndpointSpec` and network attachments;
//! unknown fields of the `ServiceSpec` itself, of `Mode`, `UpdateConfig`, `RollbackConfig` and
//! `Healthcheck` are refused unless `allow_unknown_config_fields`, as for a container's `Config`.

use super::common::{
    array, boolean, check_labels, check_query_keys, check_target, check_user_and_image, deny,
    deny_rule, first, int, int64, known_fields, parse_body, qdeny, str_list, str_map, string,
    strukt,
};
use super::container::{
    cap_add, extra_hosts, group_add, healthcheck, image, isolation, log_driver, mount,
    network_name, oom_score_adj, security_opt, sysctls, ulimits, working_dir,
};
use super::docker_json::{quote, GoInt, Path, Struct, Value};
use super::rules::ContainerRules;
use super::{Summary, Violation};

/// `swarm.ServiceSpec` (with the embedded `Annotations`).
const SPEC_FIELDS: &[&str] = &[
    "Name",
    "Labels",
    "TaskTemplate",
    "Mode",
    "UpdateConfig",
    "RollbackConfig",
    "Networks",
    "EndpointSpec",
];

/// `swarm.TaskSpec` (`NetworkAttachmentSpec` is in the spec, not in the Go type; it is refused).
const TASK_FIELDS: &[&str] = &[
    "ContainerSpec",
    "PluginSpec",
    "NetworkAttachmentSpec",
    "Resources",
    "RestartPolicy",
    "Placement",
    "Networks",
    "LogDriver",
    "ForceUpdate",
    "Runtime",
];

/// `swarm.ContainerSpec` (API 1.41 plus `OomScoreAdj`, 1.46).
const CONTAINER_SPEC_FIELDS: &[&str] = &[
    "Image",
    "Labels",
    "Command",
    "Args",
    "Hostname",
    "Env",
    "Dir",
    "User",
    "Groups",
    "Privileges",
    "Init",
    "StopSignal",
    "TTY",
    "OpenStdin",
    "ReadOnly",
    "Mounts",
    "StopGracePeriod",
    "Healthcheck",
    "Hosts",
    "DNSConfig",
    "Secrets",
    "Configs",
    "Isolation",
    "Sysctls",
    "CapabilityAdd",
    "CapabilityDrop",
    "Ulimits",
    "OomScoreAdj",
];

/// `swarm.Privileges` (`Seccomp`, `AppArmor`, `NoNewPrivileges`: API 1.44+).
const PRIVILEGES_FIELDS: &[&str] = &[
    "CredentialSpec",
    "SELinuxContext",
    "Seccomp",
    "AppArmor",
    "NoNewPrivileges",
];

const UPDATE_CONFIG_FIELDS: &[&str] = &[
    "Parallelism",
    "Delay",
    "FailureAction",
    "Monitor",
    "MaxFailureRatio",
    "Order",
];

/// Limits seen in `TaskTemplate.Resources.Limits`, checked against the caps at the end.
#[derive(Debug, Default)]
struct Seen {
    user: Option<String>,
    image: bool,
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    pids: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Inspects `POST /services/create`: no query parameters; the body is a `ServiceSpec`.
pub fn service_create(
    body: &[u8],
    query: &[(String, String)],
    rules: &ContainerRules,
) -> Result<Summary, Violation> {
    check_query_keys(query, &[], &[], None)?;
    let mut sum = Summary::new("service_create");
    service_spec(body, rules, &mut sum)?;
    Ok(sum)
}

/// Inspects `POST /services/{id}/update`: `version`, `registryAuthFrom` and `rollback` (only
/// empty or `none`: `previous` applies the previous spec, which this request does not carry);
/// the body is the complete new `ServiceSpec`, checked as for create.
pub fn service_update(
    body: &[u8],
    query: &[(String, String)],
    rules: &ContainerRules,
) -> Result<Summary, Violation> {
    check_query_keys(
        query,
        &["version", "registryAuthFrom", "rollback"],
        &[],
        None,
    )?;
    if let Some(r) = first(query, "rollback").filter(|r| !r.is_empty() && *r != "none") {
        return Err(qdeny(
            "rollback",
            format!(
                "rollback {} is refused: it applies a previous spec that this request does not carry",
                quote(r)
            ),
        ));
    }
    if let Some(f) = first(query, "registryAuthFrom") {
        if !["", "spec", "previous-spec"].contains(&f) {
            return Err(qdeny(
                "registryAuthFrom",
                format!("unknown value {}", quote(f)),
            ));
        }
    }
    let mut sum = Summary::new("service_update");
    service_spec(body, rules, &mut sum)?;
    Ok(sum)
}

// ---------------------------------------------------------------------------------------------
// ServiceSpec

fn service_spec(body: &[u8], rules: &ContainerRules, sum: &mut Summary) -> Result<(), Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let mut seen = Seen::default();
    for (c, v) in lenient_fields(&top, &p, SPEC_FIELDS, rules)? {
        let fp = p.field(c);
        match c {
            "Name" => {
                let n = string(v, &fp)?;
                if !n.is_empty() {
                    sum.name = Some(n.to_string());
                }
            }
            "Labels" => {
                let m = str_map(v, &fp)?;
                check_labels(&m, &fp, &rules.reserved_labels)?;
            }
            "TaskTemplate" => task_template(v, &fp, rules, &mut seen, sum)?,
            "Mode" => service_mode(v, &fp, rules)?,
            "UpdateConfig" | "RollbackConfig" => update_config(v, &fp, rules)?,
            "Networks" => networks(v, &fp, rules, sum)?,
            "EndpointSpec" => endpoint_spec(v, &fp, rules, sum)?,
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    let cp = p.field("TaskTemplate");
    let csp = cp.field("ContainerSpec");
    check_user_and_image(
        seen.user.as_deref(),
        seen.image,
        &csp.field("User"),
        &csp.field("Image"),
        "the service's containers run",
        rules,
    )?;
    let lp = cp.field("Resources");
    let lp = lp.field("Limits");
    capped(
        &lp,
        "MemoryBytes",
        seen.memory,
        rules.max_memory_bytes,
        "max_memory_bytes",
    )?;
    capped(
        &lp,
        "NanoCPUs",
        seen.nano_cpus,
        rules.max_nano_cpus,
        "max_nano_cpus",
    )?;
    capped(&lp, "Pids", seen.pids, rules.max_pids, "max_pids")?;
    sum.limits.memory = seen.memory.filter(|n| *n != 0);
    sum.limits.nano_cpus = seen.nano_cpus.filter(|n| *n != 0);
    sum.limits.pids = seen.pids.filter(|n| *n != 0);
    Ok(())
}

/// Fields of a struct that is not security-relevant by itself: unknown keys pass only with
/// `allow_unknown_config_fields`. Returns the known fields (canonical name), `null` skipped.
fn lenient_fields<'v>(
    s: &Struct<'v>,
    p: &Path<'_>,
    table: &[&'static str],
    rules: &ContainerRules,
) -> Result<Vec<(&'static str, &'v Value<'v>)>, Violation> {
    let mut out = Vec::with_capacity(s.entries().len());
    for (k, v) in s.entries() {
        match super::common::canon(k, table) {
            Some(c) => {
                if !v.is_null() {
                    out.push((c, v));
                }
            }
            None if rules.allow_unknown_config_fields => {}
            None => {
                return Err(deny_rule(
                    &p.field(k),
                    "unknown field refused",
                    "allow_unknown_config_fields",
                ))
            }
        }
    }
    Ok(out)
}

/// A limit under a cap: when the cap is set it must be present and within `1..=cap`, as for a
/// container create body.
fn capped(
    base: &Path<'_>,
    name: &str,
    val: Option<i64>,
    max: Option<i64>,
    setting: &str,
) -> Result<(), Violation> {
    let fp = base.field(name);
    let n = val.unwrap_or(0);
    if n < 0 {
        return Err(deny(&fp, format!("negative {name}")));
    }
    if let Some(max) = max {
        if n == 0 {
            return Err(deny_rule(
                &fp,
                format!("{name} is required (at most {max})"),
                setting,
            ));
        }
        if n > max {
            return Err(deny_rule(&fp, format!("{name} {n} exceeds {max}"), setting).with_value(n));
        }
    }
    Ok(())
}

fn service_mode(v: &Value, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    const FIELDS: &[&str] = &["Replicated", "Global", "ReplicatedJob", "GlobalJob"];
    let s = strukt(v, p)?;
    for (c, val) in lenient_fields(&s, p, FIELDS, rules)? {
        let fp = p.field(c);
        let inner: &[&'static str] = match c {
            "Replicated" => &["Replicas"],
            "ReplicatedJob" => &["MaxConcurrent", "TotalCompletions"],
            _ => &[],
        };
        let m = strukt(val, &fp)?;
        for (ic, iv) in lenient_fields(&m, &fp, inner, rules)? {
            int(iv, &fp.field(ic), GoInt::Uint64)?;
        }
    }
    Ok(())
}

fn update_config(v: &Value, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in lenient_fields(&s, p, UPDATE_CONFIG_FIELDS, rules)? {
        let fp = p.field(c);
        match c {
            "Parallelism" => {
                int(val, &fp, GoInt::Uint64)?;
            }
            "Delay" | "Monitor" => {
                int64(val, &fp)?;
            }
            "FailureAction" | "Order" => {
                string(val, &fp)?;
            }
            "MaxFailureRatio" => {
                if !matches!(val, Value::Number(_)) {
                    return Err(deny(&fp, format!("expected a number, got {}", val.kind())));
                }
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TaskTemplate

fn task_template(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, TASK_FIELDS, "TaskTemplate")? {
        let fp = p.field(c);
        match c {
            "ContainerSpec" => container_spec(val, &fp, rules, seen, sum)?,
            "PluginSpec" => {
                return Err(deny(
                    &fp,
                    "plugin services are refused: they install a plugin (root on every node); use plugin.pull",
                ))
            }
            "NetworkAttachmentSpec" => {
                return Err(deny(&fp, "network attachment tasks are refused"));
            }
            "Resources" => resources(val, &fp, rules, seen, sum)?,
            "RestartPolicy" => restart_policy(val, &fp)?,
            "Placement" => placement(val, &fp)?,
            "Networks" => networks(val, &fp, rules, sum)?,
            "LogDriver" => log_driver(val, &fp, rules, ["Name", "Options"], "LogDriver")?,
            "ForceUpdate" => {
                int(val, &fp, GoInt::Uint64)?;
            }
            "Runtime" => {
                let r = string(val, &fp)?;
                if !r.is_empty() && r != "container" {
                    return Err(deny(
                        &fp,
                        format!(
                            "task runtime {} is refused (only container; plugin installs a plugin)",
                            quote(r)
                        ),
                    ));
                }
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

fn container_spec(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, CONTAINER_SPEC_FIELDS, "ContainerSpec")? {
        let fp = p.field(c);
        match c {
            "Image" => seen.image |= image(val, &fp, rules, sum)?,
            "Labels" => {
                let m = str_map(val, &fp)?;
                check_labels(&m, &fp, &rules.reserved_labels)?;
            }
            "Command" | "Args" | "Env" | "CapabilityDrop" => {
                let l = str_list(val, &fp)?;
                if c == "CapabilityDrop" {
                    sum.cap_drop
                        .extend(l.iter().map(|c| c.to_ascii_uppercase()));
                }
            }
            "Hostname" | "StopSignal" => {
                string(val, &fp)?;
            }
            "Dir" => working_dir(string(val, &fp)?, &fp)?,
            "User" => {
                let u = string(val, &fp)?;
                seen.user = Some(u.to_string());
                if !u.is_empty() {
                    sum.user = Some(u.to_string());
                }
            }
            "Groups" => group_add(val, &fp, rules)?,
            "Privileges" => privileges(val, &fp, rules, sum)?,
            "Init" | "TTY" | "OpenStdin" | "ReadOnly" => {
                boolean(val, &fp)?;
            }
            "Mounts" => {
                for (i, m) in array(val, &fp)?.iter().enumerate() {
                    mount(m, &fp.index(i), rules, sum)?;
                }
            }
            "StopGracePeriod" => {
                let ns = int64(val, &fp)?;
                if ns < 0 {
                    return Err(deny(&fp, "negative StopGracePeriod"));
                }
                if let Some(max) = rules.max_stop_timeout_secs {
                    if ns > max.saturating_mul(1_000_000_000) {
                        return Err(deny_rule(
                            &fp,
                            format!("StopGracePeriod {ns}ns exceeds {max}s"),
                            "max_stop_timeout_secs",
                        )
                        .with_value(ns / 1_000_000_000 + i64::from(ns % 1_000_000_000 != 0)));
                    }
                }
            }
            "Healthcheck" => healthcheck(val, &fp, rules)?,
            "Hosts" => extra_hosts(val, &fp, rules)?,
            "DNSConfig" => {
                let d = strukt(val, &fp)?;
                for (dc, dv) in
                    known_fields(&d, &fp, &["Nameservers", "Search", "Options"], "DNSConfig")?
                {
                    str_list(dv, &fp.field(dc))?;
                }
            }
            "Secrets" => file_references(val, &fp, "Secret")?,
            "Configs" => file_references(val, &fp, "Config")?,
            "Isolation" => isolation(val, &fp)?,
            "Sysctls" => sysctls(val, &fp, rules)?,
            "CapabilityAdd" => cap_add(val, &fp, rules, sum)?,
            "Ulimits" => ulimits(val, &fp, rules, sum)?,
            "OomScoreAdj" => oom_score_adj(val, &fp, rules)?,
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

/// `Privileges`, checked as the `SecurityOpt` entries the daemon's swarm executor derives from
/// them (`label=disable`, `label=type:T`, `seccomp=unconfined`, `apparmor=unconfined`,
/// `no-new-privileges=true`), so `security_opt` governs both.
fn privileges(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, PRIVILEGES_FIELDS, "Privileges")? {
        let fp = p.field(c);
        match c {
            "CredentialSpec" => {
                let cs = strukt(val, &fp)?;
                for (cc, cv) in
                    known_fields(&cs, &fp, &["Config", "File", "Registry"], "CredentialSpec")?
                {
                    let cp = fp.field(cc);
                    if !string(cv, &cp)?.is_empty() {
                        return Err(deny(&cp, "credential specs (Windows) are refused"));
                    }
                }
            }
            "SELinuxContext" => {
                let sc = strukt(val, &fp)?;
                for (sc_field, sv) in known_fields(
                    &sc,
                    &fp,
                    &["Disable", "User", "Role", "Type", "Level"],
                    "SELinuxContext",
                )? {
                    let sp = fp.field(sc_field);
                    let opt = if sc_field == "Disable" {
                        boolean(sv, &sp)?.then(|| "label=disable".to_string())
                    } else {
                        let x = string(sv, &sp)?;
                        (!x.is_empty())
                            .then(|| format!("label={}:{x}", sc_field.to_ascii_lowercase()))
                    };
                    if let Some(o) = opt {
                        security_opt(&o, &sp, rules)?;
                        sum.security_opt.push(o);
                    }
                }
            }
            "Seccomp" => {
                let sc = strukt(val, &fp)?;
                let (mut mode, mut profile) = ("", false);
                for (sc_field, sv) in known_fields(&sc, &fp, &["Mode", "Profile"], "Seccomp")? {
                    let s = string(sv, &fp.field(sc_field))?;
                    if sc_field == "Mode" {
                        mode = s;
                    } else {
                        profile = !s.is_empty();
                    }
                }
                let mp = fp.field("Mode");
                match mode {
                    "" | "default" => {
                        if profile {
                            return Err(deny(
                                &fp.field("Profile"),
                                "a seccomp Profile is only read with Mode custom; refused",
                            ));
                        }
                    }
                    "unconfined" => {
                        security_opt("seccomp=unconfined", &mp, rules)?;
                        sum.security_opt.push("seccomp=unconfined".into());
                    }
                    "custom" => {
                        return Err(deny(
                            &mp,
                            "custom seccomp profiles are refused for services",
                        ))
                    }
                    other => {
                        return Err(deny(&mp, format!("unknown seccomp mode {}", quote(other))))
                    }
                }
            }
            "AppArmor" => {
                let a = strukt(val, &fp)?;
                for (ac, av) in known_fields(&a, &fp, &["Mode"], "AppArmor")? {
                    let ap = fp.field(ac);
                    match string(av, &ap)? {
                        "" | "default" => {}
                        "disabled" => {
                            security_opt("apparmor=unconfined", &ap, rules)?;
                            sum.security_opt.push("apparmor=unconfined".into());
                        }
                        other => {
                            return Err(deny(
                                &ap,
                                format!("unknown AppArmor mode {}", quote(other)),
                            ))
                        }
                    }
                }
            }
            "NoNewPrivileges" => {
                if boolean(val, &fp)? {
                    sum.security_opt.push("no-new-privileges=true".into());
                }
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

/// `Secrets[]` / `Configs[]`: references by ID; a file target must not land under `/proc`,
/// `/sys` or `/dev` (when absolute) and must not carry set-id or sticky bits.
fn file_references(v: &Value, p: &Path<'_>, kind: &str) -> Result<(), Violation> {
    let (id, name, what) = if kind == "Secret" {
        ("SecretID", "SecretName", "SecretReference")
    } else {
        ("ConfigID", "ConfigName", "ConfigReference")
    };
    let fields: &[&'static str] = if kind == "Secret" {
        &["File", "SecretID", "SecretName"]
    } else {
        &["File", "Runtime", "ConfigID", "ConfigName"]
    };
    for (i, r) in array(v, p)?.iter().enumerate() {
        let ip = p.index(i);
        if r.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(r, &ip)?;
        for (c, val) in known_fields(&s, &ip, fields, what)? {
            let fp = ip.field(c);
            if c == id || c == name {
                string(val, &fp)?;
            } else if c == "Runtime" {
                let rt = strukt(val, &fp)?;
                known_fields(&rt, &fp, &[], "ConfigReferenceRuntimeTarget")?;
            } else {
                let f = strukt(val, &fp)?;
                for (fc, fv) in
                    known_fields(&f, &fp, &["Name", "UID", "GID", "Mode"], "file target")?
                {
                    let np = fp.field(fc);
                    match fc {
                        "Name" => {
                            let n = string(fv, &np)?;
                            // Never under /proc, /sys or /dev, whatever
                            // allow_special_mount_targets says (no daemon feature needs it).
                            if n.starts_with('/') {
                                check_target(n, &np, false)?;
                            }
                        }
                        "Mode" => {
                            let m = int(fv, &np, GoInt::Uint32)?;
                            if m > 0o777 {
                                return Err(deny(
                                    &np,
                                    format!("file mode {m:o} has set-id or sticky bits"),
                                ));
                            }
                        }
                        _ => {
                            string(fv, &np)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Resources, restart policy, placement

fn resources(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(
        &s,
        p,
        &["Limits", "Reservations", "SwapBytes", "MemorySwappiness"],
        "ResourceRequirements",
    )? {
        let fp = p.field(c);
        match c {
            "Limits" => {
                let l = strukt(val, &fp)?;
                for (lc, lv) in
                    known_fields(&l, &fp, &["NanoCPUs", "MemoryBytes", "Pids"], "Limit")?
                {
                    let n = int64(lv, &fp.field(lc))?;
                    match lc {
                        "NanoCPUs" => seen.nano_cpus = Some(n),
                        "MemoryBytes" => seen.memory = Some(n),
                        _ => seen.pids = Some(n),
                    }
                }
            }
            "Reservations" => reservations(val, &fp, rules, sum)?,
            "SwapBytes" => {
                let n = int64(val, &fp)?;
                if n < 0 {
                    return Err(deny(
                        &fp,
                        format!("SwapBytes {n} (unlimited swap) is refused"),
                    ));
                }
                if let Some(max) = rules.max_memory_swap_bytes {
                    if n > max {
                        return Err(deny_rule(
                            &fp,
                            format!("SwapBytes {n} exceeds {max}"),
                            "max_memory_swap_bytes",
                        )
                        .with_value(n));
                    }
                }
                sum.limits.memory_swap = Some(n);
            }
            "MemorySwappiness" => {
                let n = int64(val, &fp)?;
                if !(0..=100).contains(&n) {
                    return Err(deny(
                        &fp,
                        format!("MemorySwappiness {n} is outside 0..=100"),
                    ));
                }
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

fn reservations(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(
        &s,
        p,
        &["NanoCPUs", "MemoryBytes", "GenericResources"],
        "Resources",
    )? {
        let fp = p.field(c);
        let cap = match c {
            "NanoCPUs" => Some((rules.max_nano_cpus, "max_nano_cpus")),
            "MemoryBytes" => Some((rules.max_memory_bytes, "max_memory_bytes")),
            _ => None,
        };
        if let Some((max, setting)) = cap {
            let n = int64(val, &fp)?;
            if n < 0 {
                return Err(deny(&fp, format!("negative {c}")));
            }
            if let Some(max) = max.filter(|m| n > *m) {
                return Err(deny_rule(&fp, format!("{c} {n} exceeds {max}"), setting).with_value(n));
            }
            continue;
        }
        for (i, g) in array(val, &fp)?.iter().enumerate() {
            let ip = fp.index(i);
            if g.is_null() {
                return Err(deny(&ip, "null element refused"));
            }
            let gs = strukt(g, &ip)?;
            let mut kind = "";
            for (gc, gv) in known_fields(
                &gs,
                &ip,
                &["NamedResourceSpec", "DiscreteResourceSpec"],
                "GenericResource",
            )? {
                let gp = ip.field(gc);
                let spec = strukt(gv, &gp)?;
                for (sc, sv) in known_fields(&spec, &gp, &["Kind", "Value"], gc)? {
                    let sp = gp.field(sc);
                    if sc == "Kind" {
                        kind = string(sv, &sp)?;
                    } else if gc == "NamedResourceSpec" {
                        string(sv, &sp)?;
                    } else {
                        int64(sv, &sp)?;
                    }
                }
            }
            if !rules.allow_devices {
                return Err(deny_rule(
                    &ip,
                    "generic resources (GPUs and other node devices) are not allowed",
                    "allow_devices",
                ));
            }
            sum.devices.push(format!("generic:{kind}"));
        }
    }
    Ok(())
}

fn restart_policy(v: &Value, p: &Path<'_>) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(
        &s,
        p,
        &["Condition", "Delay", "MaxAttempts", "Window"],
        "RestartPolicy",
    )? {
        let fp = p.field(c);
        match c {
            "Condition" => {
                let cond = string(val, &fp)?;
                if !["", "none", "on-failure", "any"].contains(&cond) {
                    return Err(deny(
                        &fp,
                        format!("unknown restart condition {}", quote(cond)),
                    ));
                }
            }
            "MaxAttempts" => {
                int(val, &fp, GoInt::Uint64)?;
            }
            _ => {
                if int64(val, &fp)? < 0 {
                    return Err(deny(&fp, format!("negative {c}")));
                }
            }
        }
    }
    Ok(())
}

fn placement(v: &Value, p: &Path<'_>) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(
        &s,
        p,
        &["Constraints", "Preferences", "MaxReplicas", "Platforms"],
        "Placement",
    )? {
        let fp = p.field(c);
        match c {
            "Constraints" => {
                for (i, con) in str_list(val, &fp)?.iter().enumerate() {
                    let squeezed: String = con
                        .chars()
                        .filter(|ch| !ch.is_whitespace())
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if squeezed == "node.role==manager" {
                        return Err(deny(
                            &fp.index(i),
                            "pinning tasks to manager nodes is refused",
                        ));
                    }
                }
            }
            "Preferences" => {
                for (i, pref) in array(val, &fp)?.iter().enumerate() {
                    let ip = fp.index(i);
                    let ps = strukt(pref, &ip)?;
                    for (_, sv) in known_fields(&ps, &ip, &["Spread"], "PlacementPreference")? {
                        let sp = ip.field("Spread");
                        let ss = strukt(sv, &sp)?;
                        for (_, dv) in known_fields(&ss, &sp, &["SpreadDescriptor"], "SpreadOver")?
                        {
                            string(dv, &sp.field("SpreadDescriptor"))?;
                        }
                    }
                }
            }
            "MaxReplicas" => {
                int(val, &fp, GoInt::Uint64)?;
            }
            _ => {
                for (i, pl) in array(val, &fp)?.iter().enumerate() {
                    let ip = fp.index(i);
                    let ps = strukt(pl, &ip)?;
                    for (pc, pv) in known_fields(&ps, &ip, &["Architecture", "OS"], "Platform")? {
                        string(pv, &ip.field(pc))?;
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Networks and endpoints

/// `TaskTemplate.Networks` / `Networks`: each `Target` under the container network rules
/// (`host` needs `allow_host_namespaces`); driver options refused.
fn networks(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    for (i, n) in array(v, p)?.iter().enumerate() {
        let ip = p.index(i);
        if n.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(n, &ip)?;
        let mut target = "";
        for (c, val) in known_fields(
            &s,
            &ip,
            &["Target", "Aliases", "DriverOpts"],
            "NetworkAttachmentConfig",
        )? {
            let fp = ip.field(c);
            match c {
                "Target" => target = string(val, &fp)?,
                "Aliases" => {
                    str_list(val, &fp)?;
                }
                _ => {
                    if let Some((k, _)) = str_map(val, &fp)?.first() {
                        return Err(deny(&fp.key(k), "network driver options are refused"));
                    }
                }
            }
        }
        network_name(target, &ip.field("Target"), rules, sum, false)?;
    }
    Ok(())
}

/// `EndpointSpec`: every port entry publishes on all interfaces of every node (ingress picks a
/// port when `PublishedPort` is 0; host mode an ephemeral one), so each needs
/// `allow_port_bindings` and `0.0.0.0` in `port_host_ips`; a set `PublishedPort` must be at
/// least `min_host_port`.
fn endpoint_spec(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, &["Mode", "Ports"], "EndpointSpec")? {
        let fp = p.field(c);
        if c == "Mode" {
            let m = string(val, &fp)?;
            if !["", "vip", "dnsrr"].contains(&m) {
                return Err(deny(&fp, format!("unknown endpoint mode {}", quote(m))));
            }
            continue;
        }
        for (i, port) in array(val, &fp)?.iter().enumerate() {
            let ip = fp.index(i);
            if port.is_null() {
                return Err(deny(&ip, "null element refused"));
            }
            let ps = strukt(port, &ip)?;
            let (mut proto, mut target, mut published) = ("", 0i128, 0i128);
            for (pc, pv) in known_fields(
                &ps,
                &ip,
                &[
                    "Name",
                    "Protocol",
                    "TargetPort",
                    "PublishedPort",
                    "PublishMode",
                ],
                "PortConfig",
            )? {
                let pp = ip.field(pc);
                match pc {
                    "Name" => {
                        string(pv, &pp)?;
                    }
                    "Protocol" => {
                        proto = string(pv, &pp)?;
                        if !["", "tcp", "udp", "sctp"].contains(&proto) {
                            return Err(deny(&pp, format!("unknown protocol {}", quote(proto))));
                        }
                    }
                    "TargetPort" => target = int(pv, &pp, GoInt::Uint32)?,
                    "PublishedPort" => published = int(pv, &pp, GoInt::Uint32)?,
                    _ => {
                        let m = string(pv, &pp)?;
                        if !["", "ingress", "host"].contains(&m) {
                            return Err(deny(&pp, format!("unknown publish mode {}", quote(m))));
                        }
                    }
                }
            }
            if !rules.allow_port_bindings {
                return Err(deny_rule(
                    &ip,
                    "publishing ports on the host is not allowed",
                    "allow_port_bindings",
                ));
            }
            if !rules.port_host_ips.iter().any(|a| a == "0.0.0.0") {
                return Err(deny_rule(
                    &ip,
                    "a service publishes on all interfaces (0.0.0.0), which is not allowed",
                    "port_host_ips",
                )
                .with_value("0.0.0.0"));
            }
            if published != 0 && published < i128::from(rules.min_host_port) {
                return Err(deny_rule(
                    &ip.field("PublishedPort"),
                    format!("host port {published} is below {}", rules.min_host_port),
                    "min_host_port",
                )
                .with_value(published));
            }
            let proto = if proto.is_empty() { "tcp" } else { proto };
            sum.port_bindings
                .push(format!("0.0.0.0:{published}->{target}/{proto}"));
        }
    }
    Ok(())
}
