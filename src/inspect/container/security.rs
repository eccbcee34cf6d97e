//! Capabilities (`CapAdd`, `CapDrop`) and `SecurityOpt` (also for the options a service's
//! `Privileges` turn into).

use super::super::common::{deny, deny_rule, normalize_cap, str_list, str_slice};
use super::super::docker_json::{quote, Path, Value};
use super::super::rules::ContainerRules;
use super::super::Violation;
use super::Ctx;

/// `CapAdd` (and a service's `CapabilityAdd`): each capability, normalized the Go way, must be
/// listed in `cap_add`.
pub(crate) fn cap_add(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let allowed: Vec<String> = ctx
        .rules
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
        ctx.sum.cap_add.push(n);
    }
    Ok(())
}

/// `CapDrop`: recorded, normalized.
pub(super) fn cap_drop(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    for cap in str_slice(v, fp)? {
        ctx.sum
            .cap_drop
            .push(normalize_cap(cap).unwrap_or_else(|| cap.to_string()));
    }
    Ok(())
}

/// `SecurityOpt`: each option checked and recorded.
pub(super) fn security_opts(
    v: &Value<'_>,
    fp: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    for (i, o) in str_list(v, fp)?.iter().enumerate() {
        security_opt(o, &fp.index(i), ctx.rules)?;
        ctx.sum.security_opt.push(o.to_string());
    }
    Ok(())
}

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

/// One security option: `no-new-privileges` always passes; disabling it, `label`, `apparmor`,
/// `seccomp` and `writable-cgroups` options need an entry in `security_opt`.
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
