//! What the daemon stored, held to the rules a create faces: a container's configuration as
//! `GET /containers/{id}/json` returns it (for operations that reach an existing container),
//! and an image's own settings (for a create that leaves them to the image).
//!
//! The stored `HostConfig` is the create's, plus what the daemon wrote itself: the default
//! `MaskedPaths` and `ReadonlyPaths`, `LogConfig` with the default driver, `Runtime` set to the
//! default runtime, `CgroupnsMode` and `IpcMode` set to the daemon's defaults, zero values for
//! everything else. Those are recognised as the daemon's ([`DaemonDefaults`]), so an ordinary
//! `docker run` container passes. Checked are the fields that give a process in the container
//! (or a mount at its start) more than an ordinary container has, see [`REACH_FREE`] for the
//! ones that are not; an unknown non-zero field is refused.

use super::super::common::{
    array, boolean, check_user_and_image, deny, parse_body, string, strukt,
};
use super::super::docker_json::{quote, Path, Value};
use super::super::rules::ContainerRules;
use super::super::{MountSummary, Summary, Violation};
use super::{config, host, Ctx};

/// What the daemon fills in itself, read from its `/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonDefaults {
    /// `DefaultRuntime` (`runc`): written into `HostConfig.Runtime` of every container.
    pub runtime: String,
    /// The daemon's default cgroup namespace is the host's (cgroup v1 hosts), so a stored
    /// `CgroupnsMode: host` may be its default.
    pub cgroupns_host: bool,
}

impl DaemonDefaults {
    /// From the daemon's `/info` answer; missing fields keep the safe reading (no default
    /// runtime recognised, `host` cgroup namespaces not a default).
    pub fn from_info(info: &[u8]) -> DaemonDefaults {
        let v: serde_json::Value = serde_json::from_slice(info).unwrap_or_default();
        DaemonDefaults {
            runtime: v
                .get("DefaultRuntime")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_owned(),
            cgroupns_host: v.get("CgroupVersion").and_then(|c| c.as_str()) == Some("1"),
        }
    }
}

/// Stored `HostConfig` fields that are not checked when an existing container is reached: the
/// daemon's own defaults for logging, and resource caps, restart and port settings, DNS and
/// the container's own tmpfs mounts. Reaching a container with any of them gives the client
/// no access to the host, other containers or devices that a create under its rules lacks.
pub const REACH_FREE: &[&str] = &[
    "ContainerIDFile",
    "LogConfig",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "ConsoleSize",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "OomScoreAdj",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "ShmSize",
    "StorageOpt",
    "Tmpfs",
    "CpuShares",
    "Memory",
    "NanoCpus",
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

/// The `Config` fields checked on a stored container (the image's values merged in by the
/// daemon): who runs, what image, where, which anonymous volumes, and the environment (for
/// the loader variables refused with device requests).
const STORED_CONFIG: &[&str] = &["User", "Image", "WorkingDir", "Volumes", "Env"];

/// A stored container that passed: its full ID and what it mounts.
#[derive(Debug, Clone)]
pub struct StoredContainer {
    /// The container's full ID (`Id`).
    pub id: String,
    /// What the checks saw: binds and named volumes (in `mounts`), privileges.
    pub summary: Summary,
}

/// Checks a container's stored configuration (`GET /containers/{id}/json`) against the rules a
/// create of it would face (see the module documentation).
pub fn stored_container(
    doc: &[u8],
    rules: &ContainerRules,
    defaults: &DaemonDefaults,
) -> Result<StoredContainer, Violation> {
    let root = parse_body(doc)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let id = match top.get("Id") {
        Some(v) => string(v, &p.field("Id"))?.to_owned(),
        None => String::new(),
    };
    let mut ctx = Ctx::new("container_stored", rules);
    let cp = p.field("Config");
    if let Some(config) = top.get("Config").filter(|v| !v.is_null()) {
        let s = strukt(config, &cp)?;
        let index = config::CONFIG.index();
        for key in STORED_CONFIG {
            let (Some(val), Some((c, check))) = (s.get(key), index.find(key)) else {
                continue;
            };
            if !val.is_null() {
                check(val, &cp.field(c), &mut ctx)?;
            }
        }
    }
    let hp = p.field("HostConfig");
    if let Some(hc) = top.get("HostConfig").filter(|v| !v.is_null()) {
        stored_host_config(hc, &hp, &mut ctx, defaults)?;
    }
    if let Some(mounts) = top.get("Mounts").filter(|v| !v.is_null()) {
        mount_points(mounts, &p.field("Mounts"), &mut ctx)?;
    }
    check_user_and_image(
        ctx.seen.user.as_deref(),
        ctx.seen.image,
        &cp.field("User"),
        &cp.field("Image"),
        "the container runs",
        rules,
    )?;
    if let (true, Some(i)) = (ctx.seen.device_requests, ctx.seen.ld_env) {
        return Err(deny(
            &cp.field("Env").index(i),
            "LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT are refused together with device requests (vendor hooks, CVE-2025-23266)",
        ));
    }
    Ok(StoredContainer {
        id,
        summary: ctx.sum,
    })
}

fn stored_host_config(
    v: &Value<'_>,
    hp: &Path<'_>,
    ctx: &mut Ctx<'_>,
    defaults: &DaemonDefaults,
) -> Result<(), Violation> {
    let s = strukt(v, hp)?;
    let index = host::HOST_CONFIG.index();
    for (key, val) in s.entries() {
        let fp = hp.field(key);
        let Some((c, check)) = index.find(key) else {
            if is_zero(val) {
                continue;
            }
            return Err(deny(
                &fp,
                "a stored HostConfig field sockwarden does not know is set: the container cannot be checked",
            ));
        };
        if val.is_null() || REACH_FREE.contains(&c) || daemon_default(c, val, defaults) {
            continue;
        }
        check(val, &hp.field(c), ctx)?;
    }
    Ok(())
}

/// The container's mount points as the daemon resolved them (`Mounts` of the inspect answer):
/// every bind and named volume it mounts at start, including those inherited through
/// `VolumesFrom`, which its `HostConfig` does not list.
fn mount_points(v: &Value<'_>, mp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, m) in array(v, mp)?.iter().enumerate() {
        let ip = mp.index(i);
        let s = strukt(m, &ip)?;
        let text = |name: &str| -> Result<&str, Violation> {
            match s.get(name).filter(|v| !v.is_null()) {
                Some(v) => string(v, &ip.field(name)),
                None => Ok(""),
            }
        };
        let rw = match s.get("RW").filter(|v| !v.is_null()) {
            Some(v) => boolean(v, &ip.field("RW"))?,
            None => true,
        };
        let (typ, target) = (text("Type")?, text("Destination")?.to_owned());
        let (kind, source) = match typ {
            "bind" => (
                "bind",
                super::mounts::host_bind(text("Source")?, !rw, &ip.field("Source"), ctx.rules)?,
            ),
            "volume" => {
                let name = text("Name")?;
                if name.is_empty() {
                    continue;
                }
                if !ctx.sum.named_volumes.iter().any(|n| n == name) {
                    ctx.sum.named_volumes.push(name.to_owned());
                }
                ("volume", name.to_owned())
            }
            "tmpfs" => continue,
            other => {
                return Err(deny(
                    &ip.field("Type"),
                    format!("mount type {} is refused", quote(other)),
                ))
            }
        };
        ctx.sum.mounts.push(MountSummary {
            kind,
            source: Some(source),
            target,
            read_only: !rw,
            from: STORED_MOUNTS,
        });
    }
    Ok(())
}

/// `MountSummary::from` of a stored mount point.
pub const STORED_MOUNTS: &str = "stored Mounts";

/// Whether a stored value is one the daemon writes by itself.
fn daemon_default(field: &str, v: &Value<'_>, defaults: &DaemonDefaults) -> bool {
    let Value::String(s) = v else {
        return false;
    };
    match field {
        "Runtime" => s.as_str() == defaults.runtime,
        "CgroupnsMode" => defaults.cgroupns_host && s.as_str() == "host",
        // `shareable` lets other containers join this IPC namespace (refused to them by
        // allow_host_namespaces); reaching such a container gives nothing more.
        "IpcMode" => s.as_str() == "shareable",
        _ => false,
    }
}

/// Go's zero value (or an empty collection), as the daemon writes unset fields.
fn is_zero(v: &Value<'_>) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n
            .trim_start_matches('-')
            .bytes()
            .all(|b| b == b'0' || b == b'.'),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The settings an image brings to a create that leaves them unset, held to the body's rules
/// as if the body had set them (the body wins where it sets the value, as in the daemon):
/// `WorkingDir` (not under `/proc`), the `Volumes` targets (not under `/proc`, `/sys`, `/dev`),
/// `Labels` (merged into the container's: no reserved keys) and `Env` (no loader variables
/// with device requests). The image's `User` needs nothing more: under a non-root rule a create
/// without `User` is already refused. `image` names the image for messages; `doc` is its
/// `GET /images/{name}/json`, `body` the create body (already inspected).
pub fn image_settings(
    image: &str,
    doc: &[u8],
    body: &[u8],
    rules: &ContainerRules,
) -> Result<(), Violation> {
    let named = |mut v: Violation| {
        v.field = format!("image {} {}", quote(image), v.field);
        v
    };
    let body_root = parse_body(body)?;
    let body_top = strukt(&body_root, &Path::ROOT)?;
    let body_sets = |name: &str| {
        body_top.get(name).is_some_and(|v| {
            !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty())
        })
    };
    let device_requests = body_top
        .get("HostConfig")
        .and_then(Value::as_object)
        .and_then(|h| h.as_struct().ok())
        .and_then(|h| h.get("DeviceRequests"))
        .is_some_and(|d| matches!(d, Value::Array(a) if !a.is_empty()));
    let root = parse_body(doc).map_err(named)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p).map_err(named)?;
    let cp = p.field("Config");
    let Some(config) = top.get("Config").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let s = strukt(config, &cp).map_err(named)?;
    let mut ctx = Ctx::new("image_settings", rules);
    if !body_sets("WorkingDir") {
        if let Some(wd) = s.get("WorkingDir").filter(|v| !v.is_null()) {
            let wp = cp.field("WorkingDir");
            config::working_dir(string(wd, &wp).map_err(named)?, &wp).map_err(named)?;
        }
    }
    // Image fields through the create checks of the same name (which also read their type).
    for field in ["Volumes", "Labels", "Env"] {
        let Some(v) = s.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        let check = config::CONFIG.index().find(field).map(|(_, check)| check);
        if let Some(check) = check {
            check(v, &cp.field(field), &mut ctx).map_err(named)?;
        }
    }
    if let (true, Some(i)) = (device_requests, ctx.seen.ld_env) {
        return Err(named(deny(
            &cp.field("Env").index(i),
            "LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT are refused together with device requests (vendor hooks, CVE-2025-23266)",
        )));
    }
    Ok(())
}
