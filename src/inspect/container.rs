//! `POST /containers/create`, `POST /containers/{id}/update`, `POST /containers/{id}/start`.
//!
//! Every field of Docker's `ContainerConfig`, `HostConfig` (with `Resources`), `Mount` and
//! `EndpointSettings` (API 1.41 plus the newer fields up to 1.56) is either checked against
//! [`ContainerRules`] or refused. Unknown fields inside `HostConfig`, `Mount` (and its option
//! objects), `NetworkingConfig` and `EndpointSettings` are refused; unknown top-level fields are
//! refused unless `allow_unknown_config_fields`.

use std::sync::OnceLock;

use super::common::{
    array, boolean, canon, check_labels, check_query_keys, check_target, check_user_and_image,
    clean_path, deny, deny_rule, first, glob, host_path_allowed, image_matches, int, int64, is_hex,
    is_under, kernel_size, known_fields, local_tmpfs_opts_only, normalize_cap, normalize_image,
    parse_body, qdeny, qdeny_rule, ram_in_bytes, set_keys, str_list, str_map, str_slice, string,
    strukt, valid_object_name, FieldIndex,
};
use super::docker_json::{quote, GoInt, Path, Struct, Value};
use super::rules::ContainerRules;
use super::{MountSummary, Summary, Violation};

/// Fields of `container.Config` (the top level of a create body), plus the wrapper's
/// `HostConfig` and `NetworkingConfig`.
const CONFIG_FIELDS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
    "HostConfig",
    "NetworkingConfig",
];

/// Legacy top-level fields of the 20.10 create wrapper that are not HostConfig fields.
const LEGACY_TOP_FIELDS: &[&str] = &["Cpuset"];

/// `container.Resources` (also the body of `/update`, with `RestartPolicy`).
pub(crate) const RESOURCE_FIELDS: &[&str] = &[
    "CpuShares",
    "Memory",
    "NanoCpus",
    "CgroupParent",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "KernelMemory",
    "KernelMemoryTCP",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "OomKillDisable",
    "PidsLimit",
    "Ulimits",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
];

/// `container.HostConfig` fields outside `Resources` (`Capabilities`: 19.03 only; `Annotations`:
/// API 1.43).
const HOST_FIELDS: &[&str] = &[
    "Binds",
    "ContainerIDFile",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "VolumeDriver",
    "VolumesFrom",
    "ConsoleSize",
    "Annotations",
    "CapAdd",
    "CapDrop",
    "CgroupnsMode",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IpcMode",
    "Cgroup",
    "Links",
    "OomScoreAdj",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "StorageOpt",
    "Tmpfs",
    "UTSMode",
    "UsernsMode",
    "ShmSize",
    "Sysctls",
    "Runtime",
    "Isolation",
    "Mounts",
    "MaskedPaths",
    "ReadonlyPaths",
    "Init",
    "Capabilities",
];

const MOUNT_FIELDS: &[&str] = &[
    "Type",
    "Source",
    "Target",
    "ReadOnly",
    "Consistency",
    "BindOptions",
    "VolumeOptions",
    "ImageOptions",
    "TmpfsOptions",
    "ClusterOptions",
];

const ENDPOINT_FIELDS: &[&str] = &[
    "IPAMConfig",
    "Links",
    "Aliases",
    "DNSNames",
    "MacAddress",
    "DriverOpts",
    "GwPriority",
    "NetworkID",
    "EndpointID",
    "Gateway",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
];

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

const LD_VARS: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"];

/// Which table a top-level or `HostConfig` key belongs to (tags of [`field_index`]).
const TAG_HOST: usize = 0;
const TAG_RESOURCE: usize = 1;
const TAG_LEGACY_TOP: usize = 2;
const TAG_CONFIG: usize = 3;

/// The field tables of a create body, for the lookup of every top-level and `HostConfig` key.
fn field_index() -> &'static FieldIndex {
    static INDEX: OnceLock<FieldIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        FieldIndex::new(&[
            HOST_FIELDS,
            RESOURCE_FIELDS,
            LEGACY_TOP_FIELDS,
            CONFIG_FIELDS,
        ])
    })
}

/// A `HostConfig` field (canonical name) and whether it belongs to `Resources`.
fn host_canon(key: &str) -> Option<(&'static str, bool)> {
    match field_index().canon(key) {
        Some((c, TAG_HOST)) => Some((c, false)),
        Some((c, TAG_RESOURCE)) => Some((c, true)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Values needed for checks that span several fields.
#[derive(Debug, Default)]
struct Seen {
    user: Option<String>,
    image: bool,
    ld_env: Option<usize>,
    device_requests: bool,
    memory: Option<i64>,
    memory_swap: Option<i64>,
    memory_reservation: Option<i64>,
    nano_cpus: Option<i64>,
    cpu_quota: Option<i64>,
    pids: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Inspects `POST /containers/create`: query (`name`, `platform`) and body.
pub fn container_create(
    body: &[u8],
    query: &[(String, String)],
    rules: &ContainerRules,
) -> Result<Summary, Violation> {
    let mut sum = Summary::new("container_create");
    create_query(query, rules, &mut sum)?;
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let mut seen = Seen::default();
    for (key, val) in top.entries() {
        let found = field_index().canon(key);
        if let Some((_, TAG_HOST | TAG_RESOURCE | TAG_LEGACY_TOP)) = found {
            return Err(deny(
                &p.field(key),
                "HostConfig field at the top level of the body is refused (Docker <= 26 applies it when HostConfig is absent or null)",
            ));
        }
        let Some((c, TAG_CONFIG)) = found else {
            if rules.allow_unknown_config_fields {
                continue;
            }
            return Err(deny_rule(
                &p.field(key),
                "unknown field refused",
                "allow_unknown_config_fields",
            ));
        };
        if val.is_null() {
            continue;
        }
        config_field(c, val, &p.field(c), rules, &mut seen, &mut sum)?;
    }
    let hp = p.field("HostConfig");
    finish_resources(&seen, &hp, rules, Mode::Create, &mut sum)?;
    check_user_and_image(
        seen.user.as_deref(),
        seen.image,
        &p.field("User"),
        &p.field("Image"),
        "the container runs",
        rules,
    )?;
    if let (true, Some(i)) = (seen.device_requests, seen.ld_env) {
        return Err(deny(
            &p.field("Env").index(i),
            "LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT are refused together with device requests (vendor hooks, CVE-2025-23266)",
        ));
    }
    Ok(sum)
}

/// Inspects `POST /containers/{id}/update`: `Resources` fields and `RestartPolicy`, with the same
/// caps as create. Absent or zero values mean "unchanged" and pass.
pub fn container_update(body: &[u8], rules: &ContainerRules) -> Result<Summary, Violation> {
    let mut sum = Summary::new("container_update");
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let mut seen = Seen::default();
    for (key, val) in top.entries() {
        let c = canon(key, RESOURCE_FIELDS).or_else(|| canon(key, &["RestartPolicy"]));
        let Some(c) = c else {
            return Err(deny(
                &p.field(key),
                "unknown field in update body refused (it would reach the daemon uninspected)",
            ));
        };
        if val.is_null() {
            continue;
        }
        let fp = p.field(c);
        if c == "RestartPolicy" {
            restart_policy(val, &fp, rules, &mut sum)?;
        } else {
            resource_field(c, val, &fp, rules, &mut seen, &mut sum)?;
        }
    }
    finish_resources(&seen, &p, rules, Mode::Update, &mut sum)?;
    Ok(sum)
}

/// Inspects the body of `POST /containers/{id}/start`: any body is refused (API < 1.24 applies
/// a HostConfig body; newer daemons reject it anyway).
pub fn container_start(body: &[u8]) -> Result<Summary, Violation> {
    if body.is_empty() {
        Ok(Summary::new("container_start"))
    } else {
        Err(deny(
            &Path::ROOT,
            "a request body on container start is refused (API < 1.24 applies it as the HostConfig)",
        ))
    }
}

/// Inspects the query of `POST /containers/{id}/start`: `checkpoint` / `checkpoint-dir` (CRIU
/// restore from host paths) refused; `detachKeys` allowed.
pub fn container_start_query(query: &[(String, String)]) -> Result<(), Violation> {
    check_query_keys(
        query,
        &["detachKeys", "checkpoint", "checkpoint-dir"],
        &[],
        None,
    )?;
    for key in ["checkpoint", "checkpoint-dir"] {
        if first(query, key).is_some_and(|v| !v.is_empty()) {
            return Err(qdeny(key, "restoring a checkpoint is refused"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Query

fn create_query(
    query: &[(String, String)],
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    check_query_keys(query, &["name", "platform"], &[], None)?;
    if let Some(name) = first(query, "name").filter(|n| !n.is_empty()) {
        let bare = name.strip_prefix('/').unwrap_or(name);
        if !valid_object_name(bare) {
            return Err(qdeny(
                "name",
                format!("invalid container name {}", quote(name)),
            ));
        }
        if bare.len() >= 4 && is_hex(bare) {
            return Err(qdeny(
                "name",
                format!(
                    "container name {} looks like an ID prefix and could shadow another container",
                    quote(name)
                ),
            ));
        }
        sum.name = Some(bare.to_string());
    }
    if let Some(pl) = first(query, "platform").filter(|v| !v.is_empty()) {
        if !rules.platforms.iter().any(|a| a == pl) {
            return Err(qdeny_rule(
                "platform",
                format!("platform {} is not allowed", quote(pl)),
                "platforms",
            )
            .with_value(pl));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Config (top level)

fn config_field(
    c: &'static str,
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    match c {
        "Hostname" | "Domainname" | "StopSignal" => {
            string(v, fp)?;
        }
        "User" => {
            let u = string(v, fp)?;
            seen.user = Some(u.to_string());
            if !u.is_empty() {
                sum.user = Some(u.to_string());
            }
        }
        "AttachStdin" | "AttachStdout" | "AttachStderr" | "Tty" | "OpenStdin" | "StdinOnce"
        | "ArgsEscaped" | "NetworkDisabled" => {
            boolean(v, fp)?;
        }
        "ExposedPorts" => {
            set_keys(v, fp)?;
        }
        "Env" => {
            for (i, e) in str_list(v, fp)?.iter().enumerate() {
                // Every name in LD_VARS starts with "LD_": skip the split for the others.
                if !e.starts_with("LD_") {
                    continue;
                }
                let name = e.split('=').next().unwrap_or("");
                if LD_VARS.contains(&name) && seen.ld_env.is_none() {
                    seen.ld_env = Some(i);
                }
            }
        }
        "Cmd" | "Entrypoint" | "Shell" => {
            str_slice(v, fp)?;
        }
        "OnBuild" => {
            str_list(v, fp)?;
        }
        "Healthcheck" => healthcheck(v, fp, rules)?,
        "Image" => seen.image |= image(v, fp, rules, sum)?,
        "Volumes" => {
            for k in set_keys(v, fp)? {
                let t = check_target(k, &fp.key(k), rules.allow_special_mount_targets)?;
                sum.mounts.push(MountSummary {
                    kind: "anonymous",
                    source: None,
                    target: t,
                    read_only: false,
                    from: "Volumes",
                });
            }
        }
        "WorkingDir" => {
            let s = string(v, fp)?;
            working_dir(s, fp)?;
        }
        "MacAddress" => {
            if !string(v, fp)?.is_empty() && !rules.allow_mac_address {
                return Err(deny_rule(
                    fp,
                    "setting a MAC address is not allowed",
                    "allow_mac_address",
                ));
            }
        }
        "Labels" => {
            let m = str_map(v, fp)?;
            check_labels(&m, fp, &rules.reserved_labels)?;
        }
        "StopTimeout" => {
            let n = int64(v, fp)?;
            if let Some(max) = rules.max_stop_timeout_secs {
                if n < 0 || n > max {
                    return Err(deny_rule(
                        fp,
                        format!("StopTimeout {n} is outside 0..={max}"),
                        "max_stop_timeout_secs",
                    )
                    .with_value(n));
                }
            }
        }
        "HostConfig" => {
            let s = strukt(v, fp)?;
            host_config(&s, fp, rules, seen, sum)?;
        }
        "NetworkingConfig" => networking_config(v, fp, rules, sum)?,
        _ => return Err(deny(fp, "internal: unhandled field")),
    }
    Ok(())
}

/// `Image` (container create, service `ContainerSpec.Image`): checked against `images`.
/// Returns whether an image was named.
pub(crate) fn image(
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<bool, Violation> {
    let s = string(v, fp)?;
    if s.is_empty() {
        return Ok(false);
    }
    match normalize_image(s) {
        Ok(r) => {
            if !rules.images.is_empty() && !image_matches(&r, &rules.images) {
                return Err(
                    deny_rule(fp, format!("image {} is not allowed", r.full()), "images")
                        .with_value(r.full()),
                );
            }
            sum.image = Some(r.full());
        }
        Err(m) => {
            if !rules.images.is_empty() {
                return Err(deny_rule(fp, m, "images"));
            }
            sum.image = Some(s.to_string());
        }
    }
    Ok(true)
}

/// `WorkingDir` (also used by exec): absolute and not under `/proc` (CVE-2024-21626).
pub(crate) fn working_dir(s: &str, fp: &Path<'_>) -> Result<(), Violation> {
    if s.is_empty() {
        return Ok(());
    }
    if !s.starts_with('/') {
        return Err(deny(fp, "WorkingDir must be an absolute path"));
    }
    let c = clean_path(s);
    if is_under(&c, "/proc") {
        return Err(deny(
            fp,
            format!("WorkingDir {c} under /proc is refused (CVE-2024-21626)"),
        ));
    }
    Ok(())
}

pub(crate) fn healthcheck(
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    const FIELDS: &[&str] = &[
        "Test",
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ];
    let s = strukt(v, fp)?;
    for (k, val) in s.entries() {
        let Some(c) = canon(k, FIELDS) else {
            if rules.allow_unknown_config_fields {
                continue;
            }
            return Err(deny_rule(
                &fp.field(k),
                "unknown field refused",
                "allow_unknown_config_fields",
            ));
        };
        if val.is_null() {
            continue;
        }
        let p = fp.field(c);
        match c {
            "Test" => {
                str_list(val, &p)?;
            }
            "Retries" => {
                int64(val, &p)?;
            }
            _ => {
                let ns = int64(val, &p)?;
                if ns < 0 || (ns > 0 && ns < 1_000_000_000) {
                    return Err(deny(
                        &p,
                        format!("{c} must be 0 (default) or at least 1s, got {ns}ns"),
                    ));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HostConfig

fn host_config(
    s: &Struct<'_>,
    hp: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    for (key, v) in s.entries() {
        let Some((c, is_resource)) = host_canon(key) else {
            return Err(deny(
                &hp.field(key),
                "unknown field in HostConfig refused (it would reach the daemon uninspected)",
            ));
        };
        if v.is_null() {
            continue;
        }
        let fp = hp.field(c);
        if is_resource {
            resource_field(c, v, &fp, rules, seen, sum)?;
        } else {
            host_field(c, v, &fp, rules, sum)?;
        }
    }
    Ok(())
}

fn host_field(
    c: &'static str,
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    match c {
        "Binds" => {
            for (i, b) in str_list(v, fp)?.iter().enumerate() {
                bind(b, &fp.index(i), rules, sum)?;
            }
        }
        "ContainerIDFile" => {
            string(v, fp)?;
        }
        "LogConfig" => log_config(v, fp, rules)?,
        "NetworkMode" => {
            let s = string(v, fp)?;
            network_name(s, fp, rules, sum, true)?;
        }
        "PortBindings" => port_bindings(v, fp, rules, sum)?,
        "RestartPolicy" => restart_policy(v, fp, rules, sum)?,
        "AutoRemove" | "ReadonlyRootfs" | "Init" => {
            boolean(v, fp)?;
        }
        "Privileged" => {
            if boolean(v, fp)? {
                if !rules.allow_privileged {
                    return Err(deny_rule(
                        fp,
                        "privileged containers are not allowed",
                        "allow_privileged",
                    ));
                }
                sum.privileged = true;
            }
        }
        "PublishAllPorts" => {
            if boolean(v, fp)? && !rules.allow_publish_all_ports {
                return Err(deny_rule(
                    fp,
                    "publishing all exposed ports on the host is not allowed",
                    "allow_publish_all_ports",
                ));
            }
        }
        "VolumeDriver" => {
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
        }
        "VolumesFrom" => {
            let l = str_list(v, fp)?;
            if !l.is_empty() && !rules.allow_volumes_from {
                return Err(deny_rule(
                    &fp.index(0),
                    "mounting another container's volumes (including its binds) is not allowed",
                    "allow_volumes_from",
                ));
            }
        }
        "Mounts" => {
            for (i, m) in array(v, fp)?.iter().enumerate() {
                mount(m, &fp.index(i), rules, sum)?;
            }
        }
        "ConsoleSize" => {
            for (i, n) in array(v, fp)?.iter().enumerate() {
                int(n, &fp.index(i), GoInt::Uint64)?;
            }
        }
        "Annotations" => {
            let m = str_map(v, fp)?;
            if let Some((k, _)) = m.first() {
                if !rules.allow_annotations {
                    return Err(deny_rule(
                        &fp.key(k),
                        "OCI runtime annotations are not allowed",
                        "allow_annotations",
                    ));
                }
            }
        }
        "CapAdd" => cap_add(v, fp, rules, sum)?,
        "CapDrop" => {
            for cap in str_slice(v, fp)? {
                sum.cap_drop
                    .push(normalize_cap(cap).unwrap_or_else(|| cap.to_string()));
            }
        }
        "CgroupnsMode" => ns_mode("cgroupns", string(v, fp)?, fp, &["private"], rules, sum)?,
        "PidMode" => ns_mode("pid", string(v, fp)?, fp, &[], rules, sum)?,
        "UTSMode" => ns_mode("uts", string(v, fp)?, fp, &[], rules, sum)?,
        "UsernsMode" => ns_mode("userns", string(v, fp)?, fp, &[], rules, sum)?,
        "Cgroup" => ns_mode("cgroup", string(v, fp)?, fp, &[], rules, sum)?,
        "IpcMode" => {
            let s = string(v, fp)?;
            if s == "shareable" {
                if !rules.allow_shareable_ipc {
                    return Err(deny_rule(
                        fp,
                        "IpcMode shareable is not allowed",
                        "allow_shareable_ipc",
                    ));
                }
                sum.namespaces.push("ipc=shareable".into());
            } else {
                ns_mode("ipc", s, fp, &["private", "none"], rules, sum)?;
            }
        }
        "Dns" | "DnsOptions" | "DnsSearch" => {
            str_list(v, fp)?;
        }
        "ExtraHosts" => extra_hosts(v, fp, rules)?,
        "GroupAdd" => group_add(v, fp, rules)?,
        "Links" => {
            if !str_list(v, fp)?.is_empty() && !rules.allow_links {
                return Err(deny_rule(
                    &fp.index(0),
                    "container links are not allowed",
                    "allow_links",
                ));
            }
        }
        "OomScoreAdj" => oom_score_adj(v, fp, rules)?,
        "SecurityOpt" => {
            for (i, o) in str_list(v, fp)?.iter().enumerate() {
                security_opt(o, &fp.index(i), rules)?;
                sum.security_opt.push(o.to_string());
            }
        }
        "StorageOpt" => {
            for (k, val) in str_map(v, fp)? {
                let kp = fp.key(k);
                match (k, rules.max_storage_size_bytes) {
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
        }
        "Tmpfs" => {
            for (k, opts) in str_map(v, fp)? {
                let kp = fp.key(k);
                let t = check_target(k, &kp, rules.allow_special_mount_targets)?;
                tmpfs_map_options(opts, &kp, rules)?;
                sum.mounts.push(MountSummary {
                    kind: "tmpfs",
                    source: None,
                    target: t,
                    read_only: opts.split(',').any(|o| o == "ro"),
                    from: "Tmpfs",
                });
            }
        }
        "ShmSize" => {
            let n = int64(v, fp)?;
            if n < 0 {
                return Err(deny(fp, "negative ShmSize"));
            }
            if let Some(max) = rules.max_shm_size_bytes {
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
                sum.limits.shm_size = Some(n);
            }
        }
        "Sysctls" => sysctls(v, fp, rules)?,
        "Runtime" => {
            let s = string(v, fp)?;
            if !s.is_empty() {
                if !rules.runtimes.iter().any(|r| r == s) {
                    return Err(deny_rule(
                        fp,
                        format!("runtime {} is not allowed", quote(s)),
                        "runtimes",
                    )
                    .with_value(s));
                }
                sum.runtime = Some(s.to_string());
            }
        }
        "Isolation" => isolation(v, fp)?,
        "MaskedPaths" | "ReadonlyPaths" => {
            let l = str_list(v, fp)?;
            let defaults = if c == "MaskedPaths" {
                DEFAULT_MASKED_PATHS
            } else {
                DEFAULT_READONLY_PATHS
            };
            if !rules.allow_unmasked_paths {
                if let Some(missing) = defaults.iter().find(|d| !l.contains(d)) {
                    return Err(deny_rule(
                        fp,
                        format!("{c} must include the daemon defaults (missing {missing}); [] unmasks /proc"),
                        "allow_unmasked_paths",
                    ));
                }
            }
        }
        "Capabilities" => {
            if !str_list(v, fp)?.is_empty() {
                return Err(deny(
                    fp,
                    "Capabilities (API 1.40) replaces the whole capability set; use CapAdd",
                ));
            }
        }
        _ => return Err(deny(fp, "internal: unhandled field")),
    }
    Ok(())
}

/// `CapAdd` (and a service's `CapabilityAdd`): each capability, normalized the Go way, must be
/// listed in `cap_add`.
pub(crate) fn cap_add(
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let allowed: Vec<String> = rules
        .cap_add
        .iter()
        .filter_map(|c| normalize_cap(c))
        .collect();
    for (i, cap) in str_slice(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        let Some(n) = normalize_cap(cap) else {
            return Err(deny(
                &ip,
                "non-ASCII capability name refused (Go upper-cases it Unicode-aware)",
            ));
        };
        if !allowed.contains(&n) {
            return Err(
                deny_rule(&ip, format!("capability {n} is not allowed"), "cap_add").with_value(&n),
            );
        }
        sum.cap_add.push(n);
    }
    Ok(())
}

/// `ExtraHosts` (and a service's `Hosts`): `host-gateway` needs `allow_host_gateway`.
pub(crate) fn extra_hosts(
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    for (i, h) in str_list(v, fp)?.iter().enumerate() {
        if h.to_ascii_lowercase().contains("host-gateway") && !rules.allow_host_gateway {
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
pub(crate) fn group_add(v: &Value, fp: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    for (i, g) in str_list(v, fp)?.iter().enumerate() {
        if !rules.group_add.iter().any(|a| a == g) {
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
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if !(-1000..=1000).contains(&n) {
        return Err(deny(fp, format!("OomScoreAdj {n} is outside -1000..=1000")));
    }
    if n < 0 && !rules.allow_negative_oom_score_adj {
        return Err(deny_rule(
            fp,
            "a negative OomScoreAdj (protection from the OOM killer) is not allowed",
            "allow_negative_oom_score_adj",
        ));
    }
    Ok(())
}

/// `Sysctls` (container and service): each key must match a `sysctls` pattern.
pub(crate) fn sysctls(v: &Value, fp: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    for (k, _) in str_map(v, fp)? {
        if !rules.sysctls.iter().any(|pat| glob(pat, k)) {
            return Err(
                deny_rule(&fp.key(k), format!("sysctl {k} is not allowed"), "sysctls")
                    .with_value(k),
            );
        }
    }
    Ok(())
}

/// `Isolation` (container and service): empty or `default` (Windows-only values refused).
pub(crate) fn isolation(v: &Value, fp: &Path<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if !s.is_empty() && !s.eq_ignore_ascii_case("default") {
        return Err(deny(fp, format!("isolation {} is refused", quote(s))));
    }
    Ok(())
}

/// `Ulimits` (container and service): each name listed in `ulimits`, with
/// `0 <= soft <= hard <= max`. The summary records each name's largest hard limit.
pub(crate) fn ulimits(
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    for (i, u) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if u.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(u, &ip)?;
        let (mut name, mut soft, mut hard) = ("", 0i64, 0i64);
        for (uc, uv) in known_fields(&s, &ip, &["Name", "Soft", "Hard"], "Ulimit")? {
            let up = ip.field(uc);
            match uc {
                "Name" => name = string(uv, &up)?,
                "Soft" => soft = int64(uv, &up)?,
                _ => hard = int64(uv, &up)?,
            }
        }
        let Some(max) = rules.ulimits.get(name) else {
            return Err(deny_rule(
                &ip,
                format!("ulimit {} is not allowed", quote(name)),
                "ulimits",
            )
            .with_value(format!("{name} = {hard}")));
        };
        if soft < 0 || hard < 0 || soft > hard || hard > *max {
            let refused = deny_rule(
                &ip,
                format!("ulimit {name} soft {soft} / hard {hard} must satisfy 0 <= soft <= hard <= {max}"),
                "ulimits",
            );
            // Only a higher maximum can allow it; a negative or inverted pair never passes.
            return Err(if soft >= 0 && soft <= hard {
                refused.with_value(format!("{name} = {hard}"))
            } else {
                refused
            });
        }
        let seen = sum.ulimits.entry(name.to_owned()).or_insert(hard);
        *seen = (*seen).max(hard);
    }
    Ok(())
}

fn is_host_like(s: &str) -> bool {
    s.eq_ignore_ascii_case("host")
        || s.get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"))
}

fn ns_mode(
    name: &str,
    s: &str,
    fp: &Path<'_>,
    safe: &[&str],
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    if s.is_empty() {
        return Ok(());
    }
    if safe.contains(&s) {
        sum.namespaces.push(format!("{name}={s}"));
        return Ok(());
    }
    if is_host_like(s) {
        if !rules.allow_host_namespaces {
            return Err(deny_rule(
                fp,
                format!(
                    "{name} namespace {} shares the host's or another container's namespace",
                    quote(s)
                ),
                "allow_host_namespaces",
            ));
        }
        sum.namespaces.push(format!("{name}={s}"));
        return Ok(());
    }
    Err(deny(fp, format!("unknown {name} mode {}", quote(s))))
}

/// A network name in `NetworkMode` (mode = true) or an `EndpointsConfig` key.
pub(crate) fn network_name(
    s: &str,
    fp: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
    is_mode: bool,
) -> Result<(), Violation> {
    if s.is_empty() {
        if is_mode {
            return Ok(());
        }
        return Err(deny(fp, "empty network name"));
    }
    if ["default", "bridge", "none"].contains(&s) {
        if is_mode {
            sum.namespaces.push(format!("network={s}"));
        }
        return Ok(());
    }
    if is_host_like(s) {
        if !rules.allow_host_namespaces {
            return Err(deny_rule(
                fp,
                format!(
                    "network {} shares the host's or another container's network namespace",
                    quote(s)
                ),
                "allow_host_namespaces",
            ));
        }
        if is_mode {
            sum.namespaces.push(format!("network={s}"));
        }
        return Ok(());
    }
    let exact = rules.networks.iter().any(|n| n == s);
    if !exact {
        if is_hex(s) {
            return Err(deny_rule(
                fp,
                format!(
                    "network {} looks like a network ID prefix; name it exactly",
                    quote(s)
                ),
                "networks",
            ));
        }
        if !rules.networks.iter().any(|n| glob(n, s)) {
            return Err(deny_rule(
                fp,
                format!("network {} is not allowed", quote(s)),
                "networks",
            )
            .with_value(s));
        }
    }
    if !sum.networks.iter().any(|n| n == s) {
        sum.networks.push(s.to_string());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Binds and Mounts

#[derive(Default)]
struct BindMode<'a> {
    read_only: bool,
    relabel: bool,
    propagation: Option<&'a str>,
}

/// moby `linuxValidMountMode` + `ReadWrite`: comma list, at most one option per category.
fn bind_mode(mode: &str) -> Option<BindMode<'_>> {
    let mut m = BindMode::default();
    if mode.is_empty() {
        return Some(m);
    }
    let (mut rw, mut label, mut prop, mut copy, mut cons) = (0, 0, 0, 0, 0);
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => {
                rw += 1;
                m.read_only |= o == "ro";
            }
            "z" | "Z" => {
                label += 1;
                m.relabel = true;
            }
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                prop += 1;
                m.propagation = Some(o);
            }
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => cons += 1,
            _ => return None,
        }
    }
    if rw > 1 || label > 1 || prop > 1 || copy > 1 || cons > 1 {
        return None;
    }
    Some(m)
}

fn bind(
    spec: &str,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let parts: Vec<&str> = spec.splitn(4, ':').collect();
    let invalid = || deny(p, format!("invalid bind specification {}", quote(spec)));
    if parts.first().is_none_or(|s| s.is_empty()) {
        return Err(invalid());
    }
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => {
            if bind_mode(d).is_some() {
                return Err(invalid());
            }
            (Some(*s), *d, "")
        }
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err(invalid()),
    };
    let Some(m) = bind_mode(mode) else {
        return Err(deny(p, format!("invalid bind options {}", quote(mode))));
    };
    if m.relabel {
        return Err(deny(
            p,
            "SELinux relabeling (z/Z) is refused: it relabels the source on the host",
        ));
    }
    if let Some(pr) = m
        .propagation
        .filter(|pr| !["private", "rprivate"].contains(pr))
    {
        return Err(deny(p, format!("mount propagation {pr} is refused")));
    }
    let target = check_target(dst, p, rules.allow_special_mount_targets)?;
    match src {
        None => sum.mounts.push(MountSummary {
            kind: "anonymous",
            source: None,
            target,
            read_only: m.read_only,
            from: "Binds",
        }),
        Some(s) if s.starts_with('/') => {
            let c = host_bind(s, m.read_only, p, rules)?;
            sum.mounts.push(MountSummary {
                kind: "bind",
                source: Some(c),
                target,
                read_only: m.read_only,
                from: "Binds",
            });
        }
        Some(s) => {
            named_volume(s, p, rules, sum)?;
            sum.mounts.push(MountSummary {
                kind: "volume",
                source: Some(s.to_string()),
                target,
                read_only: m.read_only,
                from: "Binds",
            });
        }
    }
    Ok(())
}

/// Checks a host path; returns it cleaned.
fn host_bind(
    src: &str,
    read_only: bool,
    p: &Path<'_>,
    rules: &ContainerRules,
) -> Result<String, Violation> {
    let c = clean_path(src);
    if !host_path_allowed(&c, &rules.bind_sources) {
        return Err(
            deny_rule(p, format!("host path {c} is not allowed"), "bind_sources").with_value(&c),
        );
    }
    if rules.require_read_only_binds && !read_only {
        return Err(deny_rule(
            p,
            format!("host path {c} must be mounted read-only"),
            "require_read_only_binds",
        )
        .with_value(&c));
    }
    Ok(c)
}

fn named_volume(
    name: &str,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    if !valid_object_name(name) {
        return Err(deny(p, format!("invalid volume name {}", quote(name))));
    }
    if !rules.allow_named_volumes {
        return Err(deny_rule(
            p,
            format!("named volume {name} is not allowed"),
            "allow_named_volumes",
        ));
    }
    if !sum.named_volumes.iter().any(|n| n == name) {
        sum.named_volumes.push(name.to_string());
    }
    Ok(())
}

pub(crate) fn mount(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    let fields = known_fields(&s, p, MOUNT_FIELDS, "Mount")?;
    let (mut typ, mut source, mut target, mut ro) = ("", "", "", false);
    let (mut bind_o, mut vol_o, mut tmpfs_o) = (None, None, None);
    for (c, val) in fields {
        let fp = p.field(c);
        match c {
            "Type" => typ = string(val, &fp)?,
            "Source" => source = string(val, &fp)?,
            "Target" => target = string(val, &fp)?,
            "ReadOnly" => ro = boolean(val, &fp)?,
            "Consistency" => {
                string(val, &fp)?;
            }
            "BindOptions" => bind_o = Some(val),
            "VolumeOptions" => vol_o = Some(val),
            "TmpfsOptions" => tmpfs_o = Some(val),
            "ImageOptions" => return Err(deny(&fp, "image mounts are refused")),
            "ClusterOptions" => return Err(deny(&fp, "cluster (CSI) mounts are refused")),
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    let misplaced = |name: &str| {
        deny(
            &p.field(name),
            format!("{name} is not valid for mount type {}", quote(typ)),
        )
    };
    let tgt = check_target(
        target,
        &p.field("Target"),
        rules.allow_special_mount_targets,
    )?;
    match typ {
        "bind" => {
            if vol_o.is_some() {
                return Err(misplaced("VolumeOptions"));
            }
            if tmpfs_o.is_some() {
                return Err(misplaced("TmpfsOptions"));
            }
            let sp = p.field("Source");
            if !source.starts_with('/') {
                return Err(deny(&sp, "bind source must be an absolute host path"));
            }
            let c = host_bind(source, ro, &sp, rules)?;
            if let Some(b) = bind_o {
                bind_options(b, &p.field("BindOptions"))?;
            }
            sum.mounts.push(MountSummary {
                kind: "bind",
                source: Some(c),
                target: tgt,
                read_only: ro,
                from: "Mounts",
            });
        }
        "volume" => {
            if bind_o.is_some() {
                return Err(misplaced("BindOptions"));
            }
            if tmpfs_o.is_some() {
                return Err(misplaced("TmpfsOptions"));
            }
            if !source.is_empty() {
                named_volume(source, &p.field("Source"), rules, sum)?;
            }
            if let Some(vo) = vol_o {
                volume_options(vo, &p.field("VolumeOptions"), rules)?;
            }
            sum.mounts.push(MountSummary {
                kind: if source.is_empty() {
                    "anonymous"
                } else {
                    "volume"
                },
                source: (!source.is_empty()).then(|| source.to_string()),
                target: tgt,
                read_only: ro,
                from: "Mounts",
            });
        }
        "tmpfs" => {
            if bind_o.is_some() {
                return Err(misplaced("BindOptions"));
            }
            if vol_o.is_some() {
                return Err(misplaced("VolumeOptions"));
            }
            if !source.is_empty() {
                return Err(deny(&p.field("Source"), "a tmpfs mount has no source"));
            }
            tmpfs_options(tmpfs_o, &p.field("TmpfsOptions"), rules)?;
            sum.mounts.push(MountSummary {
                kind: "tmpfs",
                source: None,
                target: tgt,
                read_only: ro,
                from: "Mounts",
            });
        }
        "" => return Err(deny(&p.field("Type"), "mount type is required")),
        other => {
            return Err(deny(
                &p.field("Type"),
                format!("mount type {} is refused", quote(other)),
            ))
        }
    }
    Ok(())
}

fn bind_options(v: &Value, p: &Path<'_>) -> Result<(), Violation> {
    const FIELDS: &[&str] = &[
        "Propagation",
        "NonRecursive",
        "CreateMountpoint",
        "ReadOnlyNonRecursive",
        "ReadOnlyForceRecursive",
    ];
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, FIELDS, "BindOptions")? {
        let fp = p.field(c);
        match c {
            "Propagation" => {
                let pr = string(val, &fp)?;
                if !["", "private", "rprivate"].contains(&pr) {
                    return Err(deny(
                        &fp,
                        format!("mount propagation {} is refused", quote(pr)),
                    ));
                }
            }
            "CreateMountpoint" => {
                if boolean(val, &fp)? {
                    return Err(deny(
                        &fp,
                        "CreateMountpoint creates directories on the host",
                    ));
                }
            }
            "ReadOnlyNonRecursive" => {
                if boolean(val, &fp)? {
                    return Err(deny(&fp, "ReadOnlyNonRecursive leaves submounts writable"));
                }
            }
            _ => {
                boolean(val, &fp)?;
            }
        }
    }
    Ok(())
}

fn volume_options(v: &Value, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    const FIELDS: &[&str] = &["NoCopy", "Labels", "DriverConfig", "Subpath"];
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, FIELDS, "VolumeOptions")? {
        let fp = p.field(c);
        match c {
            "NoCopy" => {
                boolean(val, &fp)?;
            }
            "Labels" => {
                let m = str_map(val, &fp)?;
                check_labels(&m, &fp, &rules.reserved_labels)?;
            }
            "Subpath" => {
                let sp = string(val, &fp)?;
                if sp.starts_with('/') || sp.split('/').any(|c| c == "..") {
                    return Err(deny(
                        &fp,
                        "Subpath must be relative and must not contain '..'",
                    ));
                }
            }
            "DriverConfig" => {
                let d = strukt(val, &fp)?;
                let mut name = "";
                let mut opts = Vec::new();
                for (dc, dv) in known_fields(&d, &fp, &["Name", "Options"], "DriverConfig")? {
                    if dc == "Name" {
                        name = string(dv, &fp.field("Name"))?;
                    } else {
                        opts = str_map(dv, &fp.field("Options"))?;
                    }
                }
                if name.is_empty() && opts.is_empty() {
                    continue;
                }
                if !rules.allow_mount_driver_config {
                    return Err(deny_rule(
                        &fp,
                        "volume driver configuration is refused (a local volume with o=bind is a host bind)",
                        "allow_mount_driver_config",
                    ));
                }
                if !name.is_empty() && name != "local" {
                    return Err(deny(
                        &fp.field("Name"),
                        format!("volume driver {} is refused", quote(name)),
                    ));
                }
                if !opts.is_empty() {
                    local_tmpfs_opts_only(&opts).map_err(|m| deny(&fp.field("Options"), m))?;
                }
            }
            _ => return Err(deny(&fp, "internal: unhandled field")),
        }
    }
    Ok(())
}

fn tmpfs_options(v: Option<&Value>, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    const FIELDS: &[&str] = &["SizeBytes", "Mode", "Options"];
    let mut size: i64 = 0;
    if let Some(v) = v {
        let s = strukt(v, p)?;
        for (c, val) in known_fields(&s, p, FIELDS, "TmpfsOptions")? {
            let fp = p.field(c);
            match c {
                "SizeBytes" => {
                    size = int64(val, &fp)?;
                    if size < 0 {
                        return Err(deny(&fp, "negative tmpfs size"));
                    }
                }
                "Mode" => {
                    let m = int(val, &fp, GoInt::Uint32)?;
                    if m > 0o1777 {
                        return Err(deny(
                            &fp,
                            format!("tmpfs mode {m:o} is above 1777 (setuid/setgid bits)"),
                        ));
                    }
                }
                "Options" => {
                    for (i, o) in array(val, &fp)?.iter().enumerate() {
                        let op = fp.index(i);
                        let l = str_list(o, &op)?;
                        match l.as_slice() {
                            [name] if ["noexec", "nosuid", "nodev"].contains(name) => {}
                            _ => {
                                return Err(deny(
                                    &op,
                                    "only noexec, nosuid and nodev tmpfs options are accepted",
                                ))
                            }
                        }
                    }
                }
                _ => return Err(deny(&fp, "internal: unhandled field")),
            }
        }
    }
    if let Some(max) = rules.max_tmpfs_bytes {
        if size == 0 || size > max {
            return Err(deny_rule(
                &p.field("SizeBytes"),
                format!("tmpfs size must be set and at most {max} bytes"),
                "max_tmpfs_bytes",
            )
            .with_value_if(size > 0, size));
        }
    }
    Ok(())
}

/// Options of a `HostConfig.Tmpfs` entry (`size=64m,mode=1777,noexec`).
fn tmpfs_map_options(opts: &str, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    let mut size = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (name, val) = match o.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (o, None),
        };
        match (name, val) {
            ("size", Some(v)) => match kernel_size(v) {
                Some(n) => size = Some(n),
                None if rules.max_tmpfs_bytes.is_some() => {
                    return Err(deny_rule(
                        p,
                        format!("tmpfs size {} is not a byte count", quote(v)),
                        "max_tmpfs_bytes",
                    ))
                }
                None => size = Some(0),
            },
            ("mode", Some(v)) if !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            }
            ("noexec" | "nosuid" | "nodev" | "ro" | "rw", None) => {}
            _ => return Err(deny(p, format!("tmpfs option {} is refused", quote(o)))),
        }
    }
    if let Some(max) = rules.max_tmpfs_bytes {
        match size {
            Some(n) if n > 0 && n <= max => {}
            _ => {
                return Err(deny_rule(
                    p,
                    format!("tmpfs size must be set and at most {max} bytes"),
                    "max_tmpfs_bytes",
                )
                .with_value_if(size.is_some_and(|n| n > 0), size.unwrap_or(0)))
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SecurityOpt, LogConfig, PortBindings, RestartPolicy

fn parse_bool_go(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// moby `parseSecurityOpt`: `key=value`, or `key:value` when there is no `=`.
fn split_security_opt(o: &str) -> Option<(&str, &str)> {
    if o.contains('=') {
        o.split_once('=')
    } else {
        o.split_once(':')
    }
}

fn normalized_security_opt(o: &str) -> String {
    if o == "disable" {
        return "label=disable".into();
    }
    match split_security_opt(o) {
        Some((k, v)) => format!("{k}={v}"),
        None => o.to_string(),
    }
}

pub(crate) fn security_opt(o: &str, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    if o == "no-new-privileges" {
        return Ok(());
    }
    let norm = normalized_security_opt(o);
    let listed = rules
        .security_opt
        .iter()
        .any(|a| normalized_security_opt(a) == norm);
    let Some((k, v)) = split_security_opt(o).or(if o == "disable" {
        Some(("label", "disable"))
    } else {
        None
    }) else {
        return Err(deny(p, format!("invalid security option {}", quote(o))));
    };
    match k {
        "no-new-privileges" => match parse_bool_go(v) {
            Some(true) => Ok(()),
            Some(false) if listed => Ok(()),
            Some(false) => Err(deny_rule(
                p,
                "disabling no-new-privileges is not allowed",
                "security_opt",
            )
            .with_value("no-new-privileges=false")),
            None => Err(deny(p, format!("invalid security option {}", quote(o)))),
        },
        "label" | "apparmor" | "seccomp" | "writable-cgroups" => {
            if listed {
                Ok(())
            } else {
                Err(deny_rule(
                    p,
                    format!("security option {} is not allowed", quote(&norm)),
                    "security_opt",
                )
                .with_value(&norm))
            }
        }
        _ => Err(deny(p, format!("unknown security option {}", quote(o)))),
    }
}

fn log_config(v: &Value, p: &Path<'_>, rules: &ContainerRules) -> Result<(), Violation> {
    log_driver(v, p, rules, ["Type", "Config"], "LogConfig")
}

/// A logging driver and its options: `HostConfig.LogConfig` (`Type`, `Config`) or a service's
/// `TaskTemplate.LogDriver` (`Name`, `Options`), given as `[driver field, options field]`.
pub(crate) fn log_driver(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    fields: [&'static str; 2],
    what: &str,
) -> Result<(), Violation> {
    let [driver_field, options_field] = fields;
    let s = strukt(v, p)?;
    let mut opts = Vec::new();
    for (c, val) in known_fields(&s, p, &fields, what)? {
        let fp = p.field(c);
        if c == driver_field {
            let t = string(val, &fp)?;
            if !t.is_empty() && !rules.log_drivers.iter().any(|d| d == t) {
                return Err(deny_rule(
                    &fp,
                    format!("log driver {} is not allowed", quote(t)),
                    "log_drivers",
                )
                .with_value(t));
            }
        } else {
            opts = str_map(val, &fp)?;
        }
    }
    let cp = p.field(options_field);
    let mut size = None;
    let mut files = None;
    for (k, val) in &opts {
        let kp = cp.key(k);
        match *k {
            "max-size" => {
                size = Some(
                    ram_in_bytes(val)
                        .ok_or_else(|| deny(&kp, format!("invalid size {}", quote(val))))?,
                );
            }
            "max-file" => {
                let n = val
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| deny(&kp, format!("invalid max-file {}", quote(val))))?;
                files = Some(n);
            }
            "compress" | "mode" | "max-buffer-size" => {}
            _ => return Err(deny(&kp, format!("log option {} is refused", quote(k)))),
        }
    }
    if let Some(max) = rules.max_log_size_bytes {
        if size.is_none_or(|n| n <= 0 || n > max) {
            return Err(deny_rule(
                &cp.key("max-size"),
                format!("max-size must be set and at most {max} bytes"),
                "max_log_size_bytes",
            )
            .with_value_if(size.is_some_and(|n| n > 0), size.unwrap_or(0)));
        }
    }
    if let Some(max) = rules.max_log_files {
        if files.is_none_or(|n| n > max) {
            return Err(deny_rule(
                &cp.key("max-file"),
                format!("max-file must be set and at most {max}"),
                "max_log_files",
            )
            .with_value_if(files.is_some(), files.unwrap_or(0)));
        }
    }
    Ok(())
}

fn port_bindings(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let o = super::common::object(v, p)?;
    for (port, list) in o.map_entries() {
        let kp = p.key(port);
        if list.is_null() {
            continue;
        }
        for (i, b) in array(list, &kp)?.iter().enumerate() {
            let bp = kp.index(i);
            if b.is_null() {
                return Err(deny(&bp, "null port binding refused"));
            }
            let s = strukt(b, &bp)?;
            let (mut ip, mut hport) = ("", "");
            for (c, val) in known_fields(&s, &bp, &["HostIp", "HostPort"], "PortBinding")? {
                if c == "HostIp" {
                    ip = string(val, &bp.field(c))?;
                } else {
                    hport = string(val, &bp.field(c))?;
                }
            }
            if !rules.allow_port_bindings {
                return Err(deny_rule(
                    &bp,
                    "publishing ports on the host is not allowed",
                    "allow_port_bindings",
                ));
            }
            let eff_ip = if ip.is_empty() { "0.0.0.0" } else { ip };
            if !rules.port_host_ips.iter().any(|a| a == eff_ip) {
                return Err(deny_rule(
                    &bp.field("HostIp"),
                    format!("host address {eff_ip} is not allowed"),
                    "port_host_ips",
                )
                .with_value(eff_ip));
            }
            if !hport.is_empty() {
                let (lo, hi) = hport.split_once('-').unwrap_or((hport, hport));
                for part in [lo, hi] {
                    match part.parse::<u16>() {
                        Ok(n) if n >= rules.min_host_port => {}
                        Ok(n) => {
                            return Err(deny_rule(
                                &bp.field("HostPort"),
                                format!("host port {n} is below {}", rules.min_host_port),
                                "min_host_port",
                            )
                            .with_value(n))
                        }
                        Err(_) => {
                            return Err(deny(
                                &bp.field("HostPort"),
                                format!("invalid host port {}", quote(hport)),
                            ))
                        }
                    }
                }
            }
            sum.port_bindings.push(format!("{eff_ip}:{hport}->{port}"));
        }
    }
    Ok(())
}

fn restart_policy(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    let (mut name, mut count) = ("", 0i64);
    for (c, val) in known_fields(&s, p, &["Name", "MaximumRetryCount"], "RestartPolicy")? {
        if c == "Name" {
            name = string(val, &p.field(c))?;
        } else {
            count = int64(val, &p.field(c))?;
        }
    }
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
        sum.restart_policy = Some(name.to_string());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Resources

fn resource_field(
    c: &'static str,
    v: &Value,
    fp: &Path<'_>,
    rules: &ContainerRules,
    seen: &mut Seen,
    sum: &mut Summary,
) -> Result<(), Violation> {
    match c {
        "CpuShares" => {
            let n = int64(v, fp)?;
            if n < 0 {
                return Err(deny(fp, "negative CpuShares"));
            }
            if let Some(max) = rules.max_cpu_shares {
                if n > max {
                    return Err(deny_rule(
                        fp,
                        format!("CpuShares {n} exceeds {max}"),
                        "max_cpu_shares",
                    )
                    .with_value(n));
                }
            }
            if n > 0 {
                sum.limits.cpu_shares = Some(n);
            }
        }
        "Memory" => seen.memory = Some(int64(v, fp)?),
        "NanoCpus" => seen.nano_cpus = Some(int64(v, fp)?),
        "MemoryReservation" => seen.memory_reservation = Some(int64(v, fp)?),
        "MemorySwap" => seen.memory_swap = Some(int64(v, fp)?),
        "PidsLimit" => seen.pids = Some(int64(v, fp)?),
        "CpuQuota" => {
            let n = int64(v, fp)?;
            if n < 0 {
                return Err(deny(fp, format!("CpuQuota {n} (unlimited) is refused")));
            }
            seen.cpu_quota = Some(n);
        }
        "CpuPeriod" => {
            if int64(v, fp)? < 0 {
                return Err(deny(fp, "negative CpuPeriod"));
            }
        }
        "CgroupParent" => {
            let s = string(v, fp)?;
            if !s.is_empty() && !rules.allow_cgroup_parent {
                return Err(deny_rule(
                    fp,
                    "setting the parent cgroup is not allowed",
                    "allow_cgroup_parent",
                ));
            }
        }
        "BlkioWeight" => {
            if int(v, fp, GoInt::Uint16)? != 0 && !rules.allow_blkio {
                return Err(deny_rule(
                    fp,
                    "block-IO settings are not allowed",
                    "allow_blkio",
                ));
            }
        }
        "BlkioWeightDevice"
        | "BlkioDeviceReadBps"
        | "BlkioDeviceWriteBps"
        | "BlkioDeviceReadIOps"
        | "BlkioDeviceWriteIOps" => {
            let (num, ty) = if c == "BlkioWeightDevice" {
                ("Weight", GoInt::Uint16)
            } else {
                ("Rate", GoInt::Uint64)
            };
            for (i, d) in array(v, fp)?.iter().enumerate() {
                let ip = fp.index(i);
                if d.is_null() {
                    return Err(deny(&ip, "null element refused"));
                }
                let s = strukt(d, &ip)?;
                for (dc, dv) in known_fields(&s, &ip, &["Path", num], c)? {
                    if dc == "Path" {
                        string(dv, &ip.field(dc))?;
                    } else {
                        int(dv, &ip.field(dc), ty)?;
                    }
                }
                if !rules.allow_blkio {
                    return Err(deny_rule(
                        &ip,
                        "block-IO device settings are not allowed",
                        "allow_blkio",
                    ));
                }
            }
        }
        "CpuRealtimePeriod" | "CpuRealtimeRuntime" => {
            if int64(v, fp)? != 0 {
                return Err(deny(fp, "real-time CPU scheduling is refused"));
            }
        }
        "CpusetCpus" | "CpusetMems" => {
            if !string(v, fp)?.is_empty() && !rules.allow_cpuset {
                return Err(deny_rule(
                    fp,
                    "CPU / memory-node pinning is not allowed",
                    "allow_cpuset",
                ));
            }
        }
        "Devices" => {
            for (i, d) in array(v, fp)?.iter().enumerate() {
                let ip = fp.index(i);
                if d.is_null() {
                    return Err(deny(&ip, "null element refused"));
                }
                let s = strukt(d, &ip)?;
                let mut host = "";
                for (dc, dv) in known_fields(
                    &s,
                    &ip,
                    &["PathOnHost", "PathInContainer", "CgroupPermissions"],
                    "DeviceMapping",
                )? {
                    let x = string(dv, &ip.field(dc))?;
                    if dc == "PathOnHost" {
                        host = x;
                    }
                }
                if !rules.allow_devices {
                    return Err(deny_rule(
                        &ip,
                        format!("host device {} is not allowed", quote(host)),
                        "allow_devices",
                    ));
                }
                sum.devices.push(format!("device:{host}"));
            }
        }
        "DeviceCgroupRules" => {
            for (i, r) in str_list(v, fp)?.iter().enumerate() {
                if !rules.allow_devices {
                    return Err(deny_rule(
                        &fp.index(i),
                        "device cgroup rules are not allowed",
                        "allow_devices",
                    ));
                }
                sum.devices.push(format!("cgroup-rule:{r}"));
            }
        }
        "DeviceRequests" => {
            for (i, d) in array(v, fp)?.iter().enumerate() {
                let ip = fp.index(i);
                if d.is_null() {
                    return Err(deny(&ip, "null element refused"));
                }
                let s = strukt(d, &ip)?;
                let mut driver = "";
                for (dc, dv) in known_fields(
                    &s,
                    &ip,
                    &["Driver", "Count", "DeviceIDs", "Capabilities", "Options"],
                    "DeviceRequest",
                )? {
                    let dp = ip.field(dc);
                    match dc {
                        "Driver" => driver = string(dv, &dp)?,
                        "Count" => {
                            int64(dv, &dp)?;
                        }
                        "DeviceIDs" => {
                            str_list(dv, &dp)?;
                        }
                        "Capabilities" => {
                            for (j, inner) in array(dv, &dp)?.iter().enumerate() {
                                str_list(inner, &dp.index(j))?;
                            }
                        }
                        _ => {
                            str_map(dv, &dp)?;
                        }
                    }
                }
                if !rules.allow_devices {
                    return Err(deny_rule(
                        &ip,
                        "device requests (GPUs, vendor hooks) are not allowed",
                        "allow_devices",
                    ));
                }
                seen.device_requests = true;
                sum.devices.push(format!("request:{driver}"));
            }
        }
        "KernelMemory" | "KernelMemoryTCP" => {
            if int64(v, fp)? != 0 {
                return Err(deny(
                    fp,
                    "kernel memory limits (deprecated kmem accounting) are refused",
                ));
            }
        }
        "MemorySwappiness" => {
            let n = int64(v, fp)?;
            if !(-1..=100).contains(&n) {
                return Err(deny(fp, format!("MemorySwappiness {n} is outside 0..=100")));
            }
        }
        "OomKillDisable" => {
            if boolean(v, fp)? && !rules.allow_oom_kill_disable {
                return Err(deny_rule(
                    fp,
                    "disabling the OOM killer is not allowed",
                    "allow_oom_kill_disable",
                ));
            }
        }
        "Ulimits" => ulimits(v, fp, rules, sum)?,
        "CpuCount" | "CpuPercent" => {
            if int64(v, fp)? != 0 {
                return Err(deny(fp, "Windows-only resource setting refused"));
            }
        }
        "IOMaximumIOps" | "IOMaximumBandwidth" => {
            if int(v, fp, GoInt::Uint64)? != 0 {
                return Err(deny(fp, "Windows-only resource setting refused"));
            }
        }
        _ => return Err(deny(fp, "internal: unhandled field")),
    }
    Ok(())
}

/// Cross-field resource checks. `base` is the object holding the resource fields
/// (`HostConfig` for create, the root for update).
fn finish_resources(
    seen: &Seen,
    base: &Path<'_>,
    rules: &ContainerRules,
    mode: Mode,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let create = mode == Mode::Create;
    // A capped value: create needs it present and in 1..=max; update checks it when non-zero.
    let capped =
        |name: &str, val: Option<i64>, max: Option<i64>, setting: &str| -> Result<(), Violation> {
            let fp = base.field(name);
            let n = val.unwrap_or(0);
            if n < 0 {
                return Err(deny(&fp, format!("negative {name}")));
            }
            if let Some(max) = max {
                if create && n == 0 {
                    return Err(deny_rule(
                        &fp,
                        format!("{name} is required (at most {max})"),
                        setting,
                    ));
                }
                if n > max {
                    return Err(
                        deny_rule(&fp, format!("{name} {n} exceeds {max}"), setting).with_value(n)
                    );
                }
            }
            Ok(())
        };
    capped(
        "Memory",
        seen.memory,
        rules.max_memory_bytes,
        "max_memory_bytes",
    )?;
    capped(
        "NanoCpus",
        seen.nano_cpus,
        rules.max_nano_cpus,
        "max_nano_cpus",
    )?;

    let mem = seen.memory.unwrap_or(0);
    match seen.memory_swap {
        Some(s) if s < 0 => {
            return Err(deny(
                &base.field("MemorySwap"),
                format!("MemorySwap {s} (unlimited swap) is refused"),
            ))
        }
        Some(s) if s > 0 && mem > 0 && s < mem => {
            return Err(deny(
                &base.field("MemorySwap"),
                "MemorySwap must be at least Memory",
            ))
        }
        _ => {}
    }
    capped(
        "MemorySwap",
        seen.memory_swap,
        rules.max_memory_swap_bytes,
        "max_memory_swap_bytes",
    )?;
    if let Some(r) = seen.memory_reservation {
        let fp = base.field("MemoryReservation");
        if r < 0 || (mem > 0 && r > mem) {
            return Err(deny(&fp, "MemoryReservation must be between 0 and Memory"));
        }
        if let Some(max) = rules.max_memory_bytes {
            if r > max {
                return Err(deny_rule(
                    &fp,
                    format!("MemoryReservation {r} exceeds {max}"),
                    "max_memory_bytes",
                )
                .with_value(r));
            }
        }
    }
    if rules.max_nano_cpus.is_some() && seen.cpu_quota.unwrap_or(0) > 0 {
        return Err(deny_rule(
            &base.field("CpuQuota"),
            "CpuQuota cannot be used while NanoCpus is capped; set NanoCpus",
            "max_nano_cpus",
        ));
    }
    if let Some(max) = rules.max_pids {
        let fp = base.field("PidsLimit");
        match (seen.pids, create) {
            (Some(n), _) if n > 0 && n <= max => {}
            (None, false) => {}
            (Some(n), _) if n > max => {
                return Err(
                    deny_rule(&fp, format!("PidsLimit {n} exceeds {max}"), "max_pids")
                        .with_value(n),
                );
            }
            (Some(n), _) => {
                return Err(deny_rule(
                    &fp,
                    format!("PidsLimit {n} means unlimited"),
                    "max_pids",
                ));
            }
            (None, true) => {
                return Err(deny_rule(
                    &fp,
                    format!("PidsLimit is required (at most {max})"),
                    "max_pids",
                ))
            }
        }
    }
    let nz = |v: Option<i64>| v.filter(|n| *n != 0);
    sum.limits.memory = nz(seen.memory);
    sum.limits.memory_swap = nz(seen.memory_swap);
    sum.limits.nano_cpus = nz(seen.nano_cpus);
    sum.limits.cpu_quota = nz(seen.cpu_quota);
    sum.limits.pids = seen.pids;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// NetworkingConfig

fn networking_config(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
    sum: &mut Summary,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (_, ec) in known_fields(&s, p, &["EndpointsConfig"], "NetworkingConfig")? {
        let ep = p.field("EndpointsConfig");
        let o = super::common::object(ec, &ep)?;
        for (name, es) in o.map_entries() {
            let np = ep.key(name);
            network_name(name, &np, rules, sum, false)?;
            if es.is_null() {
                return Err(deny(&np, "null endpoint settings refused"));
            }
            endpoint_settings(es, &np, rules)?;
        }
    }
    Ok(())
}

/// `EndpointSettings` (create's `NetworkingConfig` entries and network connect's `EndpointConfig`).
pub(crate) fn endpoint_settings(
    v: &Value,
    p: &Path<'_>,
    rules: &ContainerRules,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    for (c, val) in known_fields(&s, p, ENDPOINT_FIELDS, "EndpointSettings")? {
        let fp = p.field(c);
        match c {
            "IPAMConfig" => {
                let ipam = strukt(val, &fp)?;
                for (ic, iv) in known_fields(
                    &ipam,
                    &fp,
                    &["IPv4Address", "IPv6Address", "LinkLocalIPs"],
                    "IPAMConfig",
                )? {
                    let ip = fp.field(ic);
                    let set = if ic == "LinkLocalIPs" {
                        !str_list(iv, &ip)?.is_empty()
                    } else {
                        !string(iv, &ip)?.is_empty()
                    };
                    if set && !rules.allow_static_ips {
                        return Err(deny_rule(
                            &ip,
                            "static IP addresses are not allowed",
                            "allow_static_ips",
                        ));
                    }
                }
            }
            "Links" => {
                if !str_list(val, &fp)?.is_empty() && !rules.allow_links {
                    return Err(deny_rule(
                        &fp.index(0),
                        "container links are not allowed",
                        "allow_links",
                    ));
                }
            }
            "Aliases" | "DNSNames" => {
                str_list(val, &fp)?;
            }
            "MacAddress" => {
                if !string(val, &fp)?.is_empty() && !rules.allow_mac_address {
                    return Err(deny_rule(
                        &fp,
                        "setting a MAC address is not allowed",
                        "allow_mac_address",
                    ));
                }
            }
            "DriverOpts" => {
                if let Some((k, _)) = str_map(val, &fp)?.first() {
                    return Err(deny(&fp.key(k), "endpoint driver options are refused"));
                }
            }
            "GwPriority" => {
                int64(val, &fp)?;
            }
            "IPPrefixLen" | "GlobalIPv6PrefixLen" => {
                if int64(val, &fp)? != 0 {
                    return Err(deny(&fp, "read-only endpoint field must not be set"));
                }
            }
            _ => {
                if !string(val, &fp)?.is_empty() {
                    return Err(deny(&fp, "read-only endpoint field must not be set"));
                }
            }
        }
    }
    Ok(())
}
