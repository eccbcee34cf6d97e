//! Namespace modes (`NetworkMode`, `PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`, `Cgroup`,
//! `CgroupnsMode`) and network names (also for `EndpointsConfig` keys and service networks).

use super::super::common::{deny, deny_rule, glob, is_hex, is_host_like, string};
use super::super::docker_json::{quote, Path, Value};
use super::super::rules::ContainerRules;
use super::super::{Summary, Violation};
use super::Ctx;

pub(super) fn network_mode(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = string(v, fp)?;
    network_name(s, fp, ctx.rules, &mut ctx.sum, true)
}

pub(super) fn cgroupns_mode(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    ns_mode("cgroupns", string(v, fp)?, fp, &["private"], ctx)
}

pub(super) fn pid_mode(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    ns_mode("pid", string(v, fp)?, fp, &[], ctx)
}

pub(super) fn uts_mode(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    ns_mode("uts", string(v, fp)?, fp, &[], ctx)
}

pub(super) fn userns_mode(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    ns_mode("userns", string(v, fp)?, fp, &[], ctx)
}

pub(super) fn cgroup(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    ns_mode("cgroup", string(v, fp)?, fp, &[], ctx)
}

pub(super) fn ipc_mode(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if s == "shareable" {
        if !ctx.rules.allow_shareable_ipc {
            return Err(deny_rule(
                fp,
                "IpcMode shareable is not allowed",
                "allow_shareable_ipc",
            ));
        }
        ctx.sum.namespaces.push("ipc=shareable".into());
        Ok(())
    } else {
        ns_mode("ipc", s, fp, &["private", "none"], ctx)
    }
}

fn ns_mode(
    name: &str,
    s: &str,
    fp: &Path<'_>,
    safe: &[&str],
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    if s.is_empty() {
        return Ok(());
    }
    if safe.contains(&s) {
        ctx.sum.namespaces.push(format!("{name}={s}"));
        return Ok(());
    }
    if is_host_like(s) {
        if !ctx.rules.allow_host_namespaces {
            return Err(deny_rule(
                fp,
                format!(
                    "{name} namespace {} shares the host's or another container's namespace",
                    quote(s)
                ),
                "allow_host_namespaces",
            ));
        }
        ctx.sum.namespaces.push(format!("{name}={s}"));
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
