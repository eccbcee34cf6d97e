//! `container.Resources` (part of `HostConfig`, and the body of an update) and the checks that
//! span several of its fields.

use super::super::common::{
    array, boolean, deny, deny_rule, int, int64, str_list, str_map, string, strukt,
};
use super::super::docker_json::{quote, GoInt, Path, Value};
use super::super::table::{unknown_in, Table};
use super::super::Violation;
use super::{Check, Ctx, Mode};

/// `container.Resources` (also the body of `/update`, with `RestartPolicy`).
pub(crate) static RESOURCES: Table<Check> = Table::new(
    "Resources",
    &[
        ("CpuShares", cpu_shares),
        ("Memory", |v, p, ctx| {
            ctx.seen.memory = Some(int64(v, p)?);
            Ok(())
        }),
        ("NanoCpus", |v, p, ctx| {
            ctx.seen.nano_cpus = Some(int64(v, p)?);
            Ok(())
        }),
        ("CgroupParent", cgroup_parent),
        ("BlkioWeight", blkio_weight),
        ("BlkioWeightDevice", |v, p, ctx| {
            blkio_devices("BlkioWeightDevice", &WEIGHT_DEVICE, v, p, ctx)
        }),
        ("BlkioDeviceReadBps", |v, p, ctx| {
            blkio_devices("BlkioDeviceReadBps", &THROTTLE_DEVICE, v, p, ctx)
        }),
        ("BlkioDeviceWriteBps", |v, p, ctx| {
            blkio_devices("BlkioDeviceWriteBps", &THROTTLE_DEVICE, v, p, ctx)
        }),
        ("BlkioDeviceReadIOps", |v, p, ctx| {
            blkio_devices("BlkioDeviceReadIOps", &THROTTLE_DEVICE, v, p, ctx)
        }),
        ("BlkioDeviceWriteIOps", |v, p, ctx| {
            blkio_devices("BlkioDeviceWriteIOps", &THROTTLE_DEVICE, v, p, ctx)
        }),
        ("CpuPeriod", cpu_period),
        ("CpuQuota", cpu_quota),
        ("CpuRealtimePeriod", realtime),
        ("CpuRealtimeRuntime", realtime),
        ("CpusetCpus", cpuset),
        ("CpusetMems", cpuset),
        ("Devices", devices),
        ("DeviceCgroupRules", device_cgroup_rules),
        ("DeviceRequests", device_requests),
        ("KernelMemory", kernel_memory),
        ("KernelMemoryTCP", kernel_memory),
        ("MemoryReservation", |v, p, ctx| {
            ctx.seen.memory_reservation = Some(int64(v, p)?);
            Ok(())
        }),
        ("MemorySwap", |v, p, ctx| {
            ctx.seen.memory_swap = Some(int64(v, p)?);
            Ok(())
        }),
        ("MemorySwappiness", memory_swappiness),
        ("OomKillDisable", oom_kill_disable),
        ("PidsLimit", |v, p, ctx| {
            ctx.seen.pids = Some(int64(v, p)?);
            Ok(())
        }),
        ("Ulimits", ulimits),
        ("CpuCount", windows_int64),
        ("CpuPercent", windows_int64),
        ("IOMaximumIOps", windows_uint64),
        ("IOMaximumBandwidth", windows_uint64),
    ],
);

fn cpu_shares(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if n < 0 {
        return Err(deny(fp, "negative CpuShares"));
    }
    if let Some(max) = ctx.rules.max_cpu_shares {
        if n > max {
            return Err(
                deny_rule(fp, format!("CpuShares {n} exceeds {max}"), "max_cpu_shares")
                    .with_value(n),
            );
        }
    }
    if n > 0 {
        ctx.sum.limits.cpu_shares = Some(n);
    }
    Ok(())
}

fn cpu_quota(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if n < 0 {
        return Err(deny(fp, format!("CpuQuota {n} (unlimited) is refused")));
    }
    ctx.seen.cpu_quota = Some(n);
    Ok(())
}

fn cpu_period(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if int64(v, fp)? < 0 {
        return Err(deny(fp, "negative CpuPeriod"));
    }
    Ok(())
}

fn cgroup_parent(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if !s.is_empty() && !ctx.rules.allow_cgroup_parent {
        return Err(deny_rule(
            fp,
            "setting the parent cgroup is not allowed",
            "allow_cgroup_parent",
        ));
    }
    Ok(())
}

fn blkio_weight(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    if int(v, fp, GoInt::Uint16)? != 0 && !ctx.rules.allow_blkio {
        return Err(deny_rule(
            fp,
            "block-IO settings are not allowed",
            "allow_blkio",
        ));
    }
    Ok(())
}

/// A list of `blkiodev.WeightDevice` or `ThrottleDevice` (`table`), named `c` in refusals.
fn blkio_devices(
    c: &str,
    table: &Table<Check>,
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    for (i, d) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if d.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(d, &ip)?;
        let unknown = |fp: &Path<'_>| Some(unknown_in(c, fp));
        table.walk(&s, &ip, true, unknown, |check, dv, dp| check(dv, dp, ctx))?;
        if !ctx.rules.allow_blkio {
            return Err(deny_rule(
                &ip,
                "block-IO device settings are not allowed",
                "allow_blkio",
            ));
        }
    }
    Ok(())
}

fn realtime(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if int64(v, fp)? != 0 {
        return Err(deny(fp, "real-time CPU scheduling is refused"));
    }
    Ok(())
}

fn cpuset(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    if !string(v, fp)?.is_empty() && !ctx.rules.allow_cpuset {
        return Err(deny_rule(
            fp,
            "CPU / memory-node pinning is not allowed",
            "allow_cpuset",
        ));
    }
    Ok(())
}

fn devices(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, d) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if d.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(d, &ip)?;
        let mut host = "";
        DEVICE_MAPPING.strict(&s, &ip, |check, dv, dp| check(dv, dp, &mut host))?;
        if !ctx.rules.allow_devices {
            return Err(deny_rule(
                &ip,
                format!("host device {} is not allowed", quote(host)),
                "allow_devices",
            ));
        }
        ctx.sum.devices.push(format!("device:{host}"));
    }
    Ok(())
}

fn device_cgroup_rules(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, r) in str_list(v, fp)?.iter().enumerate() {
        if !ctx.rules.allow_devices {
            return Err(deny_rule(
                &fp.index(i),
                "device cgroup rules are not allowed",
                "allow_devices",
            ));
        }
        ctx.sum.devices.push(format!("cgroup-rule:{r}"));
    }
    Ok(())
}

/// `blkiodev.WeightDevice`.
pub(crate) static WEIGHT_DEVICE: Table<Check> = Table::new(
    "WeightDevice",
    &[
        ("Path", |v, p, _| string(v, p).map(drop)),
        ("Weight", |v, p, _| int(v, p, GoInt::Uint16).map(drop)),
    ],
);

/// `blkiodev.ThrottleDevice`.
pub(crate) static THROTTLE_DEVICE: Table<Check> = Table::new(
    "ThrottleDevice",
    &[
        ("Path", |v, p, _| string(v, p).map(drop)),
        ("Rate", |v, p, _| int(v, p, GoInt::Uint64).map(drop)),
    ],
);

/// `container.DeviceMapping`: every field is a string; `PathOnHost` is left for the check.
pub(crate) static DEVICE_MAPPING: Table<NameCheck> = Table::new(
    "DeviceMapping",
    &[
        ("PathOnHost", |v, p, host| {
            *host = string(v, p)?;
            Ok(())
        }),
        ("PathInContainer", |v, p, _| string(v, p).map(drop)),
        ("CgroupPermissions", |v, p, _| string(v, p).map(drop)),
    ],
);

/// What the fields of a `Ulimit` leave for its check.
#[derive(Default)]
pub(crate) struct UlimitFields<'v> {
    name: &'v str,
    soft: i64,
    hard: i64,
}

/// The check of one field of a `Ulimit`.
type UlimitCheck =
    for<'v> fn(&'v Value<'v>, &Path<'_>, &mut UlimitFields<'v>) -> Result<(), Violation>;

/// `units.Ulimit`.
pub(crate) static ULIMIT: Table<UlimitCheck> = Table::new(
    "Ulimit",
    &[
        ("Name", |v, p, u| {
            u.name = string(v, p)?;
            Ok(())
        }),
        ("Soft", |v, p, u| {
            u.soft = int64(v, p)?;
            Ok(())
        }),
        ("Hard", |v, p, u| {
            u.hard = int64(v, p)?;
            Ok(())
        }),
    ],
);

/// A name a struct's fields leave for the check of the whole.
pub(crate) type Name<'v> = &'v str;

/// The check of one field of a struct that leaves one name for the check of the whole.
type NameCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut Name<'v>) -> Result<(), Violation>;

/// `container.DeviceRequest` fields: `Driver` is recorded; the others only need their type.
pub(crate) static DEVICE_REQUEST: Table<NameCheck> = Table::new(
    "DeviceRequest",
    &[
        ("Driver", |v, p, driver| {
            *driver = string(v, p)?;
            Ok(())
        }),
        ("Count", |v, p, _| int64(v, p).map(drop)),
        ("DeviceIDs", |v, p, _| str_list(v, p).map(drop)),
        ("Capabilities", |v, p, _| {
            for (j, inner) in array(v, p)?.iter().enumerate() {
                str_list(inner, &p.index(j))?;
            }
            Ok(())
        }),
        ("Options", |v, p, _| str_map(v, p).map(drop)),
    ],
);

fn device_requests(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, d) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if d.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(d, &ip)?;
        let mut driver = "";
        DEVICE_REQUEST.strict(&s, &ip, |check, dv, dp| check(dv, dp, &mut driver))?;
        if !ctx.rules.allow_devices {
            return Err(deny_rule(
                &ip,
                "device requests (GPUs, vendor hooks) are not allowed",
                "allow_devices",
            ));
        }
        ctx.seen.device_requests = true;
        ctx.sum.devices.push(format!("request:{driver}"));
    }
    Ok(())
}

fn kernel_memory(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if int64(v, fp)? != 0 {
        return Err(deny(
            fp,
            "kernel memory limits (deprecated kmem accounting) are refused",
        ));
    }
    Ok(())
}

fn memory_swappiness(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if !(-1..=100).contains(&n) {
        return Err(deny(fp, format!("MemorySwappiness {n} is outside 0..=100")));
    }
    Ok(())
}

fn oom_kill_disable(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    if boolean(v, fp)? && !ctx.rules.allow_oom_kill_disable {
        return Err(deny_rule(
            fp,
            "disabling the OOM killer is not allowed",
            "allow_oom_kill_disable",
        ));
    }
    Ok(())
}

fn windows_int64(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if int64(v, fp)? != 0 {
        return Err(deny(fp, "Windows-only resource setting refused"));
    }
    Ok(())
}

fn windows_uint64(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    if int(v, fp, GoInt::Uint64)? != 0 {
        return Err(deny(fp, "Windows-only resource setting refused"));
    }
    Ok(())
}

/// `Ulimits` (container and service): each name listed in `ulimits`, with
/// `0 <= soft <= hard <= max`. The summary records each name's largest hard limit.
pub(crate) fn ulimits(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, u) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if u.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(u, &ip)?;
        let mut f = UlimitFields::default();
        ULIMIT.strict(&s, &ip, |check, uv, up| check(uv, up, &mut f))?;
        let UlimitFields { name, soft, hard } = f;
        let Some(max) = ctx.rules.ulimits.get(name) else {
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
        let seen = ctx.sum.ulimits.entry(name.to_owned()).or_insert(hard);
        *seen = (*seen).max(hard);
    }
    Ok(())
}

/// Cross-field resource checks. `base` is the object holding the resource fields
/// (`HostConfig` for create, the root for update).
pub(super) fn finish(ctx: &mut Ctx<'_>, base: &Path<'_>, mode: Mode) -> Result<(), Violation> {
    let create = mode == Mode::Create;
    let (rules, seen) = (ctx.rules, &ctx.seen);
    capped(
        base,
        create,
        "Memory",
        seen.memory,
        rules.max_memory_bytes,
        "max_memory_bytes",
    )?;
    capped(
        base,
        create,
        "NanoCpus",
        seen.nano_cpus,
        rules.max_nano_cpus,
        "max_nano_cpus",
    )?;
    swap_and_reservation(ctx, base, create)?;
    let (rules, seen) = (ctx.rules, &ctx.seen);
    if rules.max_nano_cpus.is_some() && seen.cpu_quota.unwrap_or(0) > 0 {
        return Err(deny_rule(
            &base.field("CpuQuota"),
            "CpuQuota cannot be used while NanoCpus is capped; set NanoCpus",
            "max_nano_cpus",
        ));
    }
    if let Some(max) = rules.max_pids {
        pids_limit(seen.pids, max, &base.field("PidsLimit"), create)?;
    }
    let nz = |v: Option<i64>| v.filter(|n| *n != 0);
    let limits = &mut ctx.sum.limits;
    limits.memory = nz(seen.memory);
    limits.memory_swap = nz(seen.memory_swap);
    limits.nano_cpus = nz(seen.nano_cpus);
    limits.cpu_quota = nz(seen.cpu_quota);
    limits.pids = seen.pids;
    Ok(())
}

/// A capped value: create needs it present and in 1..=max; update checks it when non-zero.
/// Also a service's resource limits (as a create).
pub(crate) fn capped(
    base: &Path<'_>,
    create: bool,
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
        if create && n == 0 {
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

/// `MemorySwap` (not unlimited, at least `Memory`, capped) and `MemoryReservation` (between 0
/// and `Memory`, capped like it).
fn swap_and_reservation(ctx: &Ctx<'_>, base: &Path<'_>, create: bool) -> Result<(), Violation> {
    let (rules, seen) = (ctx.rules, &ctx.seen);
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
        base,
        create,
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
    Ok(())
}

/// `PidsLimit` under `max_pids`: create needs it in 1..=max; update checks it when present.
fn pids_limit(pids: Option<i64>, max: i64, fp: &Path<'_>, create: bool) -> Result<(), Violation> {
    match (pids, create) {
        (Some(n), _) if n > 0 && n <= max => Ok(()),
        (None, false) => Ok(()),
        (Some(n), _) if n > max => {
            Err(deny_rule(fp, format!("PidsLimit {n} exceeds {max}"), "max_pids").with_value(n))
        }
        (Some(n), _) => Err(deny_rule(
            fp,
            format!("PidsLimit {n} means unlimited"),
            "max_pids",
        )),
        (None, true) => Err(deny_rule(
            fp,
            format!("PidsLimit is required (at most {max})"),
            "max_pids",
        )),
    }
}
