//! A task's `Resources`, `RestartPolicy` and `Placement`.

use super::super::common::{array, deny, deny_rule, int, int64, str_list, string, strukt};
use super::super::container::{walk, Check, Ctx};
use super::super::docker_json::{quote, GoInt, Path, Value};
use super::super::table::Table;
use super::super::Violation;

/// `swarm.ResourceRequirements`.
pub(crate) static RESOURCE_REQUIREMENTS: Table<Check> = Table::new(
    "ResourceRequirements",
    &[
        ("Limits", |v, p, ctx| walk(&LIMIT, v, p, ctx)),
        ("Reservations", |v, p, ctx| walk(&RESERVATIONS, v, p, ctx)),
        ("SwapBytes", swap_bytes),
        ("MemorySwappiness", |v, p, _| {
            let n = int64(v, p)?;
            if !(0..=100).contains(&n) {
                return Err(deny(p, format!("MemorySwappiness {n} is outside 0..=100")));
            }
            Ok(())
        }),
    ],
);

/// `swarm.Limit`: remembered, checked against the caps once the spec is read.
pub(crate) static LIMIT: Table<Check> = Table::new(
    "Limit",
    &[
        ("NanoCPUs", |v, p, ctx| {
            ctx.seen.nano_cpus = Some(int64(v, p)?);
            Ok(())
        }),
        ("MemoryBytes", |v, p, ctx| {
            ctx.seen.memory = Some(int64(v, p)?);
            Ok(())
        }),
        ("Pids", |v, p, ctx| {
            ctx.seen.pids = Some(int64(v, p)?);
            Ok(())
        }),
    ],
);

/// `swarm.Resources` as `Reservations`: held to the same caps as the limits.
pub(crate) static RESERVATIONS: Table<Check> = Table::new(
    "Resources",
    &[
        ("NanoCPUs", |v, p, ctx| {
            reservation("NanoCPUs", ctx.rules.max_nano_cpus, "max_nano_cpus", v, p)
        }),
        ("MemoryBytes", |v, p, ctx| {
            reservation(
                "MemoryBytes",
                ctx.rules.max_memory_bytes,
                "max_memory_bytes",
                v,
                p,
            )
        }),
        ("GenericResources", generic_resources),
    ],
);

/// `swarm.RestartPolicy`.
pub(crate) static RESTART_POLICY: Table<Check> = Table::new(
    "RestartPolicy",
    &[
        ("Condition", |v, p, _| {
            let cond = string(v, p)?;
            if !["", "none", "on-failure", "any"].contains(&cond) {
                return Err(deny(
                    p,
                    format!("unknown restart condition {}", quote(cond)),
                ));
            }
            Ok(())
        }),
        ("Delay", |v, p, _| non_negative("Delay", v, p)),
        ("MaxAttempts", |v, p, _| int(v, p, GoInt::Uint64).map(drop)),
        ("Window", |v, p, _| non_negative("Window", v, p)),
    ],
);

/// `swarm.Placement`.
pub(crate) static PLACEMENT: Table<Check> = Table::new(
    "Placement",
    &[
        ("Constraints", constraints),
        ("Preferences", preferences),
        ("MaxReplicas", |v, p, _| int(v, p, GoInt::Uint64).map(drop)),
        ("Platforms", platforms),
    ],
);

/// `swarm.PlacementPreference`.
pub(crate) static PLACEMENT_PREFERENCE: Table<Check> = Table::new(
    "PlacementPreference",
    &[("Spread", |v, p, ctx| walk(&SPREAD_OVER, v, p, ctx))],
);

/// `swarm.SpreadOver`.
pub(crate) static SPREAD_OVER: Table<Check> = Table::new(
    "SpreadOver",
    &[("SpreadDescriptor", |v, p, _| string(v, p).map(drop))],
);

/// `swarm.Platform`.
pub(crate) static PLATFORM: Table<Check> = Table::new(
    "Platform",
    &[
        ("Architecture", |v, p, _| string(v, p).map(drop)),
        ("OS", |v, p, _| string(v, p).map(drop)),
    ],
);

/// The check of one field of a generic resource: it leaves the resource's kind.
type KindCheck = for<'v> fn(&'v Value<'v>, &Path<'_>, &mut &'v str) -> Result<(), Violation>;

/// `swarm.GenericResource`.
pub(crate) static GENERIC_RESOURCE: Table<KindCheck> = Table::new(
    "GenericResource",
    &[
        ("NamedResourceSpec", |v, p, kind| {
            let s = strukt(v, p)?;
            NAMED_RESOURCE.strict(&s, p, |check, val, fp| check(val, fp, kind))
        }),
        ("DiscreteResourceSpec", |v, p, kind| {
            let s = strukt(v, p)?;
            DISCRETE_RESOURCE.strict(&s, p, |check, val, fp| check(val, fp, kind))
        }),
    ],
);

/// `swarm.NamedGenericResource`.
pub(crate) static NAMED_RESOURCE: Table<KindCheck> = Table::new(
    "NamedResourceSpec",
    &[
        ("Kind", |v, p, kind| {
            *kind = string(v, p)?;
            Ok(())
        }),
        ("Value", |v, p, _| string(v, p).map(drop)),
    ],
);

/// `swarm.DiscreteGenericResource`.
pub(crate) static DISCRETE_RESOURCE: Table<KindCheck> = Table::new(
    "DiscreteResourceSpec",
    &[
        ("Kind", |v, p, kind| {
            *kind = string(v, p)?;
            Ok(())
        }),
        ("Value", |v, p, _| int64(v, p).map(drop)),
    ],
);

/// `TaskTemplate.Resources`.
pub(super) fn resources(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    walk(&RESOURCE_REQUIREMENTS, v, p, ctx)
}

/// `TaskTemplate.RestartPolicy`.
pub(super) fn restart_policy(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    walk(&RESTART_POLICY, v, p, ctx)
}

/// `TaskTemplate.Placement`.
pub(super) fn placement(v: &Value<'_>, p: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    walk(&PLACEMENT, v, p, ctx)
}

fn swap_bytes(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if n < 0 {
        return Err(deny(
            fp,
            format!("SwapBytes {n} (unlimited swap) is refused"),
        ));
    }
    if let Some(max) = ctx.rules.max_memory_swap_bytes {
        if n > max {
            return Err(deny_rule(
                fp,
                format!("SwapBytes {n} exceeds {max}"),
                "max_memory_swap_bytes",
            )
            .with_value(n));
        }
    }
    ctx.sum.limits.memory_swap = Some(n);
    Ok(())
}

/// A reservation: not negative, and not above the cap on the matching limit.
fn reservation(
    name: &str,
    max: Option<i64>,
    setting: &str,
    v: &Value<'_>,
    fp: &Path<'_>,
) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if n < 0 {
        return Err(deny(fp, format!("negative {name}")));
    }
    if let Some(max) = max.filter(|m| n > *m) {
        return Err(deny_rule(fp, format!("{name} {n} exceeds {max}"), setting).with_value(n));
    }
    Ok(())
}

/// `GenericResources`: node devices, only with `allow_devices`.
fn generic_resources(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, g) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        if g.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let gs = strukt(g, &ip)?;
        let mut kind = "";
        GENERIC_RESOURCE.strict(&gs, &ip, |check, gv, gp| check(gv, gp, &mut kind))?;
        if !ctx.rules.allow_devices {
            return Err(deny_rule(
                &ip,
                "generic resources (GPUs and other node devices) are not allowed",
                "allow_devices",
            ));
        }
        ctx.sum.devices.push(format!("generic:{kind}"));
    }
    Ok(())
}

fn non_negative(name: &str, v: &Value<'_>, fp: &Path<'_>) -> Result<(), Violation> {
    if int64(v, fp)? < 0 {
        return Err(deny(fp, format!("negative {name}")));
    }
    Ok(())
}

/// `Placement.Constraints`: pinning to manager nodes is refused.
fn constraints(v: &Value<'_>, fp: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, con) in str_list(v, fp)?.iter().enumerate() {
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
    Ok(())
}

/// `Placement.Preferences`: `[{"Spread": {"SpreadDescriptor": "..."}}]`.
fn preferences(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, pref) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        walk(&PLACEMENT_PREFERENCE, pref, &ip, ctx)?;
    }
    Ok(())
}

/// `Placement.Platforms`: `[{"Architecture": "...", "OS": "..."}]`.
fn platforms(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, pl) in array(v, fp)?.iter().enumerate() {
        let ip = fp.index(i);
        walk(&PLATFORM, pl, &ip, ctx)?;
    }
    Ok(())
}
