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
//!
//! Each swarm struct is one [`Table`] of `(field, check)`: the `ServiceSpec` itself, `Mode` and
//! `UpdateConfig` here, the task and its container in [`task`], `Privileges` in [`privileges`],
//! resources, restart policy and placement in [`resources`], networks and the endpoint spec in
//! [`endpoints`]. The checks of the fields a `ContainerSpec` shares with a container are the
//! container inspector's.

mod endpoints;
mod privileges;
mod resources;
mod task;

use super::common::{
    check_query_keys, check_user_and_image, deny, first, int64, parse_body, qdeny, string,
};
use super::container::{a_uint64, capped, labels, walk_lenient, Check, Ctx};
use super::docker_json::{quote, Path, Value};
use super::rules::ContainerRules;
use super::table::Table;
use super::{Summary, Violation};

/// The struct tables, for the test that every declared field is checked.
#[cfg(test)]
pub(crate) use self::{
    endpoints::{ENDPOINT_SPEC, NETWORK_ATTACHMENT, PORT_CONFIG},
    privileges::{APPARMOR, CREDENTIAL_SPEC, PRIVILEGES, SECCOMP, SELINUX_CONTEXT},
    resources::{
        DISCRETE_RESOURCE, GENERIC_RESOURCE, LIMIT, NAMED_RESOURCE, PLACEMENT,
        PLACEMENT_PREFERENCE, PLATFORM, RESERVATIONS, RESOURCE_REQUIREMENTS, RESTART_POLICY,
        SPREAD_OVER,
    },
    task::{
        CONFIG_REFERENCE, CONTAINER_SPEC, DNS_CONFIG, FILE_TARGET, RUNTIME_TARGET,
        SECRET_REFERENCE, TASK,
    },
};

/// `swarm.ServiceSpec` (with the embedded `Annotations`). Unknown fields pass only with
/// `allow_unknown_config_fields`.
pub(crate) static SPEC: Table<Check> = Table::new(
    "ServiceSpec",
    &[
        ("Name", |v, p, ctx| {
            let n = string(v, p)?;
            if !n.is_empty() {
                ctx.sum.name = Some(n.to_string());
            }
            Ok(())
        }),
        ("Labels", labels),
        ("TaskTemplate", task::task_template),
        ("Mode", |v, p, ctx| walk_lenient(&MODE, v, p, ctx)),
        ("UpdateConfig", |v, p, ctx| {
            walk_lenient(&UPDATE_CONFIG, v, p, ctx)
        }),
        ("RollbackConfig", |v, p, ctx| {
            walk_lenient(&UPDATE_CONFIG, v, p, ctx)
        }),
        ("Networks", endpoints::networks),
        ("EndpointSpec", endpoints::endpoint_spec),
    ],
);

/// `swarm.ServiceMode`.
pub(crate) static MODE: Table<Check> = Table::new(
    "ServiceMode",
    &[
        ("Replicated", |v, p, ctx| {
            walk_lenient(&REPLICATED, v, p, ctx)
        }),
        ("Global", |v, p, ctx| walk_lenient(&EMPTY, v, p, ctx)),
        ("ReplicatedJob", |v, p, ctx| {
            walk_lenient(&REPLICATED_JOB, v, p, ctx)
        }),
        ("GlobalJob", |v, p, ctx| walk_lenient(&EMPTY, v, p, ctx)),
    ],
);

/// `swarm.ReplicatedService`.
pub(crate) static REPLICATED: Table<Check> =
    Table::new("ReplicatedService", &[("Replicas", a_uint64)]);

/// `swarm.ReplicatedJob`.
pub(crate) static REPLICATED_JOB: Table<Check> = Table::new(
    "ReplicatedJob",
    &[("MaxConcurrent", a_uint64), ("TotalCompletions", a_uint64)],
);

/// `swarm.GlobalService` and `swarm.GlobalJob`: no fields.
static EMPTY: Table<Check> = Table::new("GlobalService", &[]);

/// `swarm.UpdateConfig` (also `RollbackConfig`).
pub(crate) static UPDATE_CONFIG: Table<Check> = Table::new(
    "UpdateConfig",
    &[
        ("Parallelism", a_uint64),
        ("Delay", |v, p, _| int64(v, p).map(drop)),
        ("FailureAction", |v, p, _| string(v, p).map(drop)),
        ("Monitor", |v, p, _| int64(v, p).map(drop)),
        ("MaxFailureRatio", |v, p, _| {
            if !matches!(v, Value::Number(_)) {
                return Err(deny(p, format!("expected a number, got {}", v.kind())));
            }
            Ok(())
        }),
        ("Order", |v, p, _| string(v, p).map(drop)),
    ],
);

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Inspects `POST /services/create`: no query parameters; the body is a `ServiceSpec`.
pub fn service_create(
    body: &[u8],
    query: &[(String, String)],
    rules: &ContainerRules,
) -> Result<Summary, Violation> {
    check_query_keys(query, &[], &[], None)?;
    service_spec(body, Ctx::new("service_create", rules))
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
    service_spec(body, Ctx::new("service_update", rules))
}

// ---------------------------------------------------------------------------------------------
// ServiceSpec

fn service_spec(body: &[u8], mut ctx: Ctx<'_>) -> Result<Summary, Violation> {
    let root = parse_body(body)?;
    let p = Path::ROOT;
    walk_lenient(&SPEC, &root, &p, &mut ctx)?;
    let rules = ctx.rules;
    let seen = &ctx.seen;
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
        true,
        "MemoryBytes",
        seen.memory,
        rules.max_memory_bytes,
        "max_memory_bytes",
    )?;
    capped(
        &lp,
        true,
        "NanoCPUs",
        seen.nano_cpus,
        rules.max_nano_cpus,
        "max_nano_cpus",
    )?;
    capped(&lp, true, "Pids", seen.pids, rules.max_pids, "max_pids")?;
    let limits = &mut ctx.sum.limits;
    limits.memory = seen.memory.filter(|n| *n != 0);
    limits.nano_cpus = seen.nano_cpus.filter(|n| *n != 0);
    limits.pids = seen.pids.filter(|n| *n != 0);
    Ok(ctx.sum)
}
