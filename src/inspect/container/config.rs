//! `container.Config`: the top level of a create body (with the wrapper's `HostConfig` and
//! `NetworkingConfig`), and the checks a service's `ContainerSpec` shares with it.

use super::super::common::{
    clean_path, deny, deny_rule, image_matches, int64, is_under, normalize_image, set_keys,
    str_list, string, strukt,
};
use super::super::docker_json::{Path, Value};
use super::super::table::Table;
use super::super::Violation;
use super::{
    a_bool, a_str_list, a_str_slice, a_string, an_int64, host, labels, mounts, networking, Check,
    Ctx,
};

/// `container.Config` (the top level of a create body), plus the wrapper's `HostConfig` and
/// `NetworkingConfig`. Unknown fields pass only with `allow_unknown_config_fields`.
pub(crate) static CONFIG: Table<Check> = Table::new(
    "Config",
    &[
        ("Hostname", a_string),
        ("Domainname", a_string),
        ("User", user),
        ("AttachStdin", a_bool),
        ("AttachStdout", a_bool),
        ("AttachStderr", a_bool),
        ("ExposedPorts", |v, p, _| set_keys(v, p).map(drop)),
        ("Tty", a_bool),
        ("OpenStdin", a_bool),
        ("StdinOnce", a_bool),
        ("Env", env),
        ("Cmd", a_str_slice),
        ("Healthcheck", healthcheck),
        ("ArgsEscaped", a_bool),
        ("Image", image),
        ("Volumes", mounts::volumes),
        ("WorkingDir", |v, p, _| working_dir(string(v, p)?, p)),
        ("Entrypoint", a_str_slice),
        ("NetworkDisabled", a_bool),
        ("MacAddress", networking::mac_address),
        ("OnBuild", a_str_list),
        ("Labels", labels),
        ("StopSignal", a_string),
        ("StopTimeout", stop_timeout),
        ("Shell", a_str_slice),
        ("HostConfig", host::host_config),
        ("NetworkingConfig", networking::networking_config),
    ],
);

/// `container.HealthConfig` (also a service's `ContainerSpec.Healthcheck`). Unknown fields pass
/// only with `allow_unknown_config_fields`.
pub(crate) static HEALTHCHECK: Table<Check> = Table::new(
    "Healthcheck",
    &[
        ("Test", a_str_list),
        ("Interval", |v, p, _| health_duration("Interval", v, p)),
        ("Timeout", |v, p, _| health_duration("Timeout", v, p)),
        ("StartPeriod", |v, p, _| {
            health_duration("StartPeriod", v, p)
        }),
        ("StartInterval", |v, p, _| {
            health_duration("StartInterval", v, p)
        }),
        ("Retries", an_int64),
    ],
);

const LD_VARS: &[&str] = &["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"];

/// `User` (container and service): remembered for the root check at the end.
pub(crate) fn user(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let u = string(v, fp)?;
    ctx.seen.user = Some(u.to_string());
    if !u.is_empty() {
        ctx.sum.user = Some(u.to_string());
    }
    Ok(())
}

/// `Env`: remembers the first loader variable (refused later together with device requests).
fn env(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, e) in str_list(v, fp)?.iter().enumerate() {
        // Every name in LD_VARS starts with "LD_": skip the split for the others.
        if !e.starts_with("LD_") {
            continue;
        }
        let name = e.split('=').next().unwrap_or("");
        if LD_VARS.contains(&name) && ctx.seen.ld_env.is_none() {
            ctx.seen.ld_env = Some(i);
        }
    }
    Ok(())
}

fn stop_timeout(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let n = int64(v, fp)?;
    if let Some(max) = ctx.rules.max_stop_timeout_secs {
        if n < 0 || n > max {
            return Err(deny_rule(
                fp,
                format!("StopTimeout {n} is outside 0..={max}"),
                "max_stop_timeout_secs",
            )
            .with_value(n));
        }
    }
    Ok(())
}

/// `Image` (container create, service `ContainerSpec.Image`): checked against `images`;
/// remembers whether an image was named.
pub(crate) fn image(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let s = string(v, fp)?;
    if s.is_empty() {
        return Ok(());
    }
    let rules = ctx.rules;
    match normalize_image(s) {
        Ok(r) => {
            if !rules.images.is_empty() && !image_matches(&r, &rules.images) {
                return Err(
                    deny_rule(fp, format!("image {} is not allowed", r.full()), "images")
                        .with_value(r.full()),
                );
            }
            ctx.sum.image = Some(r.full());
        }
        Err(m) => {
            if !rules.images.is_empty() {
                return Err(deny_rule(fp, m, "images"));
            }
            ctx.sum.image = Some(s.to_string());
        }
    }
    ctx.seen.image = true;
    Ok(())
}

/// `WorkingDir` (also used by exec and a service's `Dir`): absolute and not under `/proc`
/// (CVE-2024-21626).
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

/// `Healthcheck` (container and service).
pub(crate) fn healthcheck(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    // Checked one field at a time (a bad value is refused before a later unknown key).
    let s = strukt(v, fp)?;
    let allow = ctx.rules.allow_unknown_config_fields;
    HEALTHCHECK.lenient_in_order(&s, fp, allow, |check, val, p| check(val, p, ctx))
}

/// A health-check duration in nanoseconds: 0 (default) or at least one second.
fn health_duration(name: &str, v: &Value<'_>, p: &Path<'_>) -> Result<(), Violation> {
    let ns = int64(v, p)?;
    if ns < 0 || (ns > 0 && ns < 1_000_000_000) {
        return Err(deny(
            p,
            format!("{name} must be 0 (default) or at least 1s, got {ns}ns"),
        ));
    }
    Ok(())
}
