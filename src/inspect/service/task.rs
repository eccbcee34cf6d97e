//! `swarm.TaskSpec` and its `ContainerSpec` (with `DNSConfig` and the secret and config
//! references).

use super::super::common::{
    array, check_target, deny, deny_rule, int, int64, str_list, string, strukt,
};
use super::super::container::{
    a_bool, a_str_list, a_string, cap_add, extra_hosts, group_add, healthcheck, image, isolation,
    labels, log_driver, mounts, oom_score_adj, sysctls, ulimits, user, walk, working_dir, Check,
    Ctx, LOG_DRIVER,
};
use super::super::docker_json::{quote, GoInt, Path, Value};
use super::super::table::Table;
use super::super::Violation;
use super::{endpoints, privileges, resources};

/// `swarm.TaskSpec` (`NetworkAttachmentSpec` is in the spec, not in the Go type; it is refused).
pub(crate) static TASK: Table<Check> = Table::new(
    "TaskTemplate",
    &[
        ("ContainerSpec", |v, p, ctx| {
            walk(&CONTAINER_SPEC, v, p, ctx)
        }),
        ("PluginSpec", |_, p, _| {
            Err(deny(
                p,
                "plugin services are refused: they install a plugin (root on every node); use plugin.pull",
            ))
        }),
        ("NetworkAttachmentSpec", |_, p, _| {
            Err(deny(p, "network attachment tasks are refused"))
        }),
        ("Resources", resources::resources),
        ("RestartPolicy", resources::restart_policy),
        ("Placement", resources::placement),
        ("Networks", endpoints::networks),
        ("LogDriver", |v, p, ctx| {
            log_driver(v, p, ctx, &LOG_DRIVER, "Options")
        }),
        ("ForceUpdate", |v, p, _| int(v, p, GoInt::Uint64).map(drop)),
        ("Runtime", |v, p, _| {
            let r = string(v, p)?;
            if !r.is_empty() && r != "container" {
                return Err(deny(
                    p,
                    format!(
                        "task runtime {} is refused (only container; plugin installs a plugin)",
                        quote(r)
                    ),
                ));
            }
            Ok(())
        }),
    ],
);

/// `swarm.ContainerSpec` (API 1.41 plus `OomScoreAdj`, 1.46).
pub(crate) static CONTAINER_SPEC: Table<Check> = Table::new(
    "ContainerSpec",
    &[
        ("Image", image),
        ("Labels", labels),
        ("Command", a_str_list),
        ("Args", a_str_list),
        ("Hostname", a_string),
        ("Env", a_str_list),
        ("Dir", |v, p, _| working_dir(string(v, p)?, p)),
        ("User", user),
        ("Groups", group_add),
        ("Privileges", privileges::privileges),
        ("Init", a_bool),
        ("StopSignal", a_string),
        ("TTY", a_bool),
        ("OpenStdin", a_bool),
        ("ReadOnly", a_bool),
        ("Mounts", mounts),
        ("StopGracePeriod", stop_grace_period),
        ("Healthcheck", healthcheck),
        ("Hosts", extra_hosts),
        ("DNSConfig", |v, p, ctx| walk(&DNS_CONFIG, v, p, ctx)),
        ("Secrets", |v, p, _| {
            file_references(v, p, &SECRET_REFERENCE)
        }),
        ("Configs", |v, p, _| {
            file_references(v, p, &CONFIG_REFERENCE)
        }),
        ("Isolation", isolation),
        ("Sysctls", sysctls),
        ("CapabilityAdd", cap_add),
        ("CapabilityDrop", |v, p, ctx| {
            let l = str_list(v, p)?;
            ctx.sum
                .cap_drop
                .extend(l.iter().map(|c| c.to_ascii_uppercase()));
            Ok(())
        }),
        ("Ulimits", ulimits),
        ("OomScoreAdj", oom_score_adj),
    ],
);

/// `swarm.DNSConfig`.
pub(crate) static DNS_CONFIG: Table<Check> = Table::new(
    "DNSConfig",
    &[
        ("Nameservers", a_str_list),
        ("Search", a_str_list),
        ("Options", a_str_list),
    ],
);

/// The check of one field of a secret or config reference.
type RefCheck = fn(&Value<'_>, &Path<'_>) -> Result<(), Violation>;

/// `swarm.SecretReference`.
pub(crate) static SECRET_REFERENCE: Table<RefCheck> = Table::new(
    "SecretReference",
    &[
        ("File", file_target),
        ("SecretID", |v, p| string(v, p).map(drop)),
        ("SecretName", |v, p| string(v, p).map(drop)),
    ],
);

/// `swarm.ConfigReference` (`Runtime` is an empty struct).
pub(crate) static CONFIG_REFERENCE: Table<RefCheck> = Table::new(
    "ConfigReference",
    &[
        ("File", file_target),
        ("Runtime", |v, p| {
            let rt = strukt(v, p)?;
            RUNTIME_TARGET.strict(&rt, p, |check, val, fp| check(val, fp))
        }),
        ("ConfigID", |v, p| string(v, p).map(drop)),
        ("ConfigName", |v, p| string(v, p).map(drop)),
    ],
);

/// `swarm.ConfigReferenceRuntimeTarget`: no fields.
pub(crate) static RUNTIME_TARGET: Table<RefCheck> = Table::new("ConfigReferenceRuntimeTarget", &[]);

/// `swarm.SecretReferenceFileTarget` / `ConfigReferenceFileTarget`.
pub(crate) static FILE_TARGET: Table<RefCheck> = Table::new(
    "file target",
    &[
        ("Name", |v, p| {
            let n = string(v, p)?;
            // Never under /proc, /sys or /dev, whatever allow_special_mount_targets says (no
            // daemon feature needs it).
            if n.starts_with('/') {
                check_target(n, p, false)?;
            }
            Ok(())
        }),
        ("UID", |v, p| string(v, p).map(drop)),
        ("GID", |v, p| string(v, p).map(drop)),
        ("Mode", |v, p| {
            let m = int(v, p, GoInt::Uint32)?;
            if m > 0o777 {
                return Err(deny(
                    p,
                    format!("file mode {m:o} has set-id or sticky bits"),
                ));
            }
            Ok(())
        }),
    ],
);

fn stop_grace_period(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let ns = int64(v, fp)?;
    if ns < 0 {
        return Err(deny(fp, "negative StopGracePeriod"));
    }
    if let Some(max) = ctx.rules.max_stop_timeout_secs {
        if ns > max.saturating_mul(1_000_000_000) {
            return Err(deny_rule(
                fp,
                format!("StopGracePeriod {ns}ns exceeds {max}s"),
                "max_stop_timeout_secs",
            )
            .with_value(ns / 1_000_000_000 + i64::from(ns % 1_000_000_000 != 0)));
        }
    }
    Ok(())
}

/// `Secrets[]` / `Configs[]`: references by ID; a file target must not land under `/proc`,
/// `/sys` or `/dev` (when absolute) and must not carry set-id or sticky bits.
fn file_references(v: &Value<'_>, p: &Path<'_>, table: &Table<RefCheck>) -> Result<(), Violation> {
    for (i, r) in array(v, p)?.iter().enumerate() {
        let ip = p.index(i);
        if r.is_null() {
            return Err(deny(&ip, "null element refused"));
        }
        let s = strukt(r, &ip)?;
        table.strict(&s, &ip, |check, val, fp| check(val, fp))?;
    }
    Ok(())
}

fn file_target(v: &Value<'_>, fp: &Path<'_>) -> Result<(), Violation> {
    let f = strukt(v, fp)?;
    FILE_TARGET.strict(&f, fp, |check, val, p| check(val, p))
}

/// `TaskTemplate`.
pub(super) fn task_template(
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    walk(&TASK, v, p, ctx)
}
