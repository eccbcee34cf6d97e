//! `container.HostConfig` outside `Resources`, and the checks a service's `ContainerSpec`
//! shares with it (`ExtraHosts`, `GroupAdd`, `OomScoreAdj`, `Sysctls`, `Isolation`).

use super::super::common::{
    boolean, deny, deny_rule, glob, int64, ram_in_bytes, str_list, str_map, string, strukt,
};
use super::super::docker_json::{quote, Path, Value};
use super::super::table::{unknown_in, Joined, Table};
use super::super::Violation;
use super::{
    a_bool, a_str_list, a_string, logging, mounts, namespaces, networking, resources, security,
    uint64_list, Check, Ctx,
};

/// `container.HostConfig` fields outside `Resources` (`Capabilities`: 19.03 only;
/// `Annotations`: API 1.43). A `HostConfig` object is read with this table and [`RESOURCES`].
///
/// [`RESOURCES`]: super::resources::RESOURCES
pub(crate) static HOST: Table<Check> = Table::new(
    "HostConfig",
    &[
        ("Binds", mounts::binds),
        ("ContainerIDFile", a_string),
        ("LogConfig", logging::log_config),
        ("NetworkMode", namespaces::network_mode),
        ("PortBindings", networking::port_bindings),
        ("RestartPolicy", restart_policy),
        ("AutoRemove", a_bool),
        ("VolumeDriver", volume_driver),
        ("VolumesFrom", volumes_from),
        ("ConsoleSize", uint64_list),
        ("Annotations", annotations),
        ("CapAdd", security::cap_add),
        ("CapDrop", security::cap_drop),
        ("CgroupnsMode", namespaces::cgroupns_mode),
        ("Dns", a_str_list),
        ("DnsOptions", a_str_list),
        ("DnsSearch", a_str_list),
        ("ExtraHosts", extra_hosts),
        ("GroupAdd", group_add),
        ("IpcMode", namespaces::ipc_mode),
        ("Cgroup", namespaces::cgroup),
        ("Links", networking::links),
        ("OomScoreAdj", oom_score_adj),
        ("PidMode", namespaces::pid_mode),
        ("Privileged", privileged),
        ("PublishAllPorts", publish_all_ports),
        ("ReadonlyRootfs", a_bool),
        ("SecurityOpt", security::security_opts),
        ("StorageOpt", storage_opt),
        ("Tmpfs", mounts::tmpfs),
        ("UTSMode", namespaces::uts_mode),
        ("UsernsMode", namespaces::userns_mode),
        ("ShmSize", shm_size),
        ("Sysctls", sysctls),
        ("Runtime", runtime),
        ("Isolation", isolation),
        ("Mounts", mounts::mounts),
        ("MaskedPaths", |v, p, ctx| {
            default_paths("MaskedPaths", DEFAULT_MASKED_PATHS, v, p, ctx)
        }),
        ("ReadonlyPaths", |v, p, ctx| {
            default_paths("ReadonlyPaths", DEFAULT_READONLY_PATHS, v, p, ctx)
        }),
        ("Init", a_bool),
        ("Capabilities", capabilities),
    ],
);

/// A `HostConfig` object: [`HOST`] and the embedded [`RESOURCES`].
///
/// [`RESOURCES`]: super::resources::RESOURCES
pub(crate) static HOST_CONFIG: Joined<Check> = Joined::new(&[&HOST, &resources::RESOURCES]);

/// moby `oci.DefaultSpec` masked paths (20.10; `/sys/devices/virtual/powercap` added in 25).
const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The `HostConfig` object: its own fields and the embedded `Resources`.
pub(super) fn host_config(
    v: &Value<'_>,
    hp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = strukt(v, hp)?;
    let index = HOST_CONFIG.index();
    for (key, v) in s.entries() {
        let Some((c, check)) = index.find(key) else {
            return Err(unknown_in("HostConfig", &hp.field(key)));
        };
        if !v.is_null() {
            check(v, &hp.field(c), ctx)?;
        }
    }
    Ok(())
}

fn privileged(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    if boolean(v, fp)? {
        if !ctx.rules.allow_privileged {
            return Err(deny_rule(
                fp,
                "privileged containers are not allowed",
                "allow_privileged",
            ));
        }
        ctx.sum.privileged = true;
    }
    Ok(())
}

fn publish_all_ports(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    if boolean(v, fp)? && !ctx.rules.allow_publish_all_ports {
        return Err(deny_rule(
            fp,
            "publishing all exposed ports on the host is not allowed",
            "allow_publish_all_ports",
        ));
    }
    Ok(())
}

fn volume_driver(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if !s.is_empty() {
        return Err(deny(
            fp,
            format!(
                "volume driver {} is refused (plugin-defined semantics)",
                quote(s)
            ),
        ));
    }
    Ok(())
}

fn volumes_from(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let l = str_list(v, fp)?;
    if !l.is_empty() && !ctx.rules.allow_volumes_from {
        return Err(deny_rule(
            &fp.index(0),
            "mounting another container's volumes (including its binds) is not allowed",
            "allow_volumes_from",
        ));
    }
    Ok(())
}

fn annotations(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let m = str_map(v, fp)?;
    if let Some((k, _)) = m.first() {
        if !ctx.rules.allow_annotations {
            return Err(deny_rule(
                &fp.key(k),
                "OCI runtime annotations are not allowed",
                "allow_annotations",
            ));
        }
    }
    Ok(())
}

fn storage_opt(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (k, val) in str_map(v, fp)? {
        let kp = fp.key(k);
        match (k, ctx.rules.max_storage_size_bytes) {
            ("size", Some(max)) => match ram_in_bytes(val) {
                Some(n) if n > 0 && n <= max => {}
                _ => {
                    return Err(deny_rule(
                        &kp,
                        format!("storage size {} is invalid or above {max}", quote(val)),
                        "max_storage_size_bytes",
                    ))
                }
            },
            ("size", None) => {
                return Err(deny_rule(
                    &kp,
                    "storage options are not allowed",
                    "max_storage_size_bytes",
                ))
            }
            _ => return Err(deny(&kp, format!("storage option {} is refused", quote(k)))),
        }
    }
    Ok(())
}

fn shm_size(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if n < 0 {
        return Err(deny(fp, "negative ShmSize"));
    }
    if let Some(max) = ctx.rules.max_shm_size_bytes {
        if n > max {
            return Err(deny_rule(
                fp,
                format!("ShmSize {n} exceeds {max}"),
                "max_shm_size_bytes",
            )
            .with_value(n));
        }
    }
    if n > 0 {
        ctx.sum.limits.shm_size = Some(n);
    }
    Ok(())
}

fn runtime(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if !s.is_empty() {
        if !ctx.rules.runtimes.iter().any(|r| r == s) {
            return Err(deny_rule(
                fp,
                format!("runtime {} is not allowed", quote(s)),
                "runtimes",
            )
            .with_value(s));
        }
        ctx.sum.runtime = Some(s.to_string());
    }
    Ok(())
}

/// `MaskedPaths` / `ReadonlyPaths`: must keep the daemon's defaults unless
/// `allow_unmasked_paths` (an empty list unmasks `/proc`).
fn default_paths(
    name: &str,
    defaults: &[&str],
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let l = str_list(v, fp)?;
    if !ctx.rules.allow_unmasked_paths {
        if let Some(missing) = defaults.iter().find(|d| !l.contains(d)) {
            return Err(deny_rule(
                fp,
                format!(
                    "{name} must include the daemon defaults (missing {missing}); [] unmasks /proc"
                ),
                "allow_unmasked_paths",
            ));
        }
    }
    Ok(())
}

fn capabilities(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if !str_list(v, fp)?.is_empty() {
        return Err(deny(
            fp,
            "Capabilities (API 1.40) replaces the whole capability set; use CapAdd",
        ));
    }
    Ok(())
}

/// What the fields of a `RestartPolicy` leave for its check.
#[derive(Default)]
pub(crate) struct RestartFields<'v> {
    name: &'v str,
    count: i64,
}

/// The check of one field of a `RestartPolicy`.
type RestartCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut RestartFields<'v>) -> Result<(), Violation>;

/// `container.RestartPolicy`.
pub(crate) static RESTART_POLICY: Table<RestartCheck> = Table::new(
    "RestartPolicy",
    &[
        ("Name", |v, p, r| {
            r.name = string(v, p)?;
            Ok(())
        }),
        ("MaximumRetryCount", |v, p, r| {
            r.count = int64(v, p)?;
            Ok(())
        }),
    ],
);

/// `RestartPolicy` (create's `HostConfig`, update body).
pub(super) fn restart_policy(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    let mut f = RestartFields::default();
    RESTART_POLICY.strict(&s, p, |check, val, fp| check(val, fp, &mut f))?;
    let RestartFields { name, count } = f;
    let rules = ctx.rules;
    let np = p.field("Name");
    match name {
        "" | "no" => {}
        "on-failure" => {
            if count < 1 || count > rules.max_restart_retries {
                return Err(deny_rule(
                    &p.field("MaximumRetryCount"),
                    format!(
                        "on-failure needs a MaximumRetryCount in 1..={} (0 = unlimited), got {count}",
                        rules.max_restart_retries
                    ),
                    "max_restart_retries",
                )
                .with_value_if(count >= 1, count));
            }
        }
        "always" | "unless-stopped" => {
            if !rules.allow_restart_always {
                return Err(deny_rule(
                    &np,
                    format!("restart policy {name} (survives daemon restarts) is not allowed"),
                    "allow_restart_always",
                ));
            }
        }
        other => {
            return Err(deny(
                &np,
                format!("unknown restart policy {}", quote(other)),
            ))
        }
    }
    if !name.is_empty() {
        ctx.sum.restart_policy = Some(name.to_string());
    }
    Ok(())
}

/// `ExtraHosts` (and a service's `Hosts`): `host-gateway` needs `allow_host_gateway`.
pub(crate) fn extra_hosts(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    for (i, h) in str_list(v, fp)?.iter().enumerate() {
        if h.to_ascii_lowercase().contains("host-gateway") && !ctx.rules.allow_host_gateway {
            return Err(deny_rule(
                &fp.index(i),
                "host-gateway (the host's address) is not allowed",
                "allow_host_gateway",
            ));
        }
    }
    Ok(())
}

/// `GroupAdd` (and a service's `Groups`): each group must be listed in `group_add`.
pub(crate) fn group_add(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, g) in str_list(v, fp)?.iter().enumerate() {
        if !ctx.rules.group_add.iter().any(|a| a == g) {
            return Err(deny_rule(
                &fp.index(i),
                format!("supplementary group {} is not allowed", quote(g)),
                "group_add",
            )
            .with_value(g));
        }
    }
    Ok(())
}

/// `OomScoreAdj` (container and service): -1000..=1000, negative only with
/// `allow_negative_oom_score_adj`.
pub(crate) fn oom_score_adj(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if !(-1000..=1000).contains(&n) {
        return Err(deny(fp, format!("OomScoreAdj {n} is outside -1000..=1000")));
    }
    if n < 0 && !ctx.rules.allow_negative_oom_score_adj {
        return Err(deny_rule(
            fp,
            "a negative OomScoreAdj (protection from the OOM killer) is not allowed",
            "allow_negative_oom_score_adj",
        ));
    }
    Ok(())
}

/// `Sysctls` (container and service): each key must match a `sysctls` pattern.
pub(crate) fn sysctls(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (k, _) in str_map(v, fp)? {
        if !ctx.rules.sysctls.iter().any(|pat| glob(pat, k)) {
            return Err(
                deny_rule(&fp.key(k), format!("sysctl {k} is not allowed"), "sysctls")
                    .with_value(k),
            );
        }
    }
    Ok(())
}

/// `Isolation` (container and service): empty or `default` (Windows-only values refused).
pub(crate) fn isolation(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if !s.is_empty() && !s.eq_ignore_ascii_case("default") {
        return Err(deny(fp, format!("isolation {} is refused", quote(s))));
    }
    Ok(())
}
