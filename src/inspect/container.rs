//! `POST /containers/create`, `POST /containers/{id}/update`, `POST /containers/{id}/start`.
//!
//! Every field of Docker's `ContainerConfig`, `HostConfig` (with `Resources`), `Mount` and
//! `EndpointSettings` (API 1.41 plus the newer fields up to 1.56) is either checked against
//! [`ContainerRules`] or refused. Unknown fields inside `HostConfig`, `Mount` (and its option
//! objects), `NetworkingConfig` and `EndpointSettings` are refused; unknown top-level fields are
//! refused unless `allow_unknown_config_fields`.
//!
//! Each Docker struct is one [`Table`] of `(field, check)` in the module of its concern:
//! [`config`] (`container.Config`, the top level), [`host`] (`HostConfig` outside `Resources`),
//! [`resources`], [`mounts`] (`Binds`, `Mounts`, `Tmpfs`, `Volumes`), [`namespaces`],
//! [`security`] (capabilities, `SecurityOpt`), [`logging`] and [`networking`]
//! (`NetworkingConfig`, `EndpointSettings`, `PortBindings`). The service inspector reuses the
//! checks of the fields a `ContainerSpec` shares with a container.

mod config;
mod host;
mod logging;
mod mounts;
mod namespaces;
mod networking;
mod resources;
mod security;
mod stored;

use super::common::{
    array, boolean, canon, check_labels, check_query_keys, check_user_and_image, deny, first, int,
    int64, is_hex, parse_body, qdeny, qdeny_rule, str_list, str_map, str_slice, string, strukt,
    valid_object_name,
};
use super::docker_json::{quote, GoInt, Path, Value};
use super::rules::ContainerRules;
use super::table::{unknown_in, unknown_lenient, Joined, Table};
use super::{Summary, Violation};

pub(crate) use config::{healthcheck, image, user, working_dir};
pub(crate) use host::{extra_hosts, group_add, isolation, oom_score_adj, sysctls};
pub(crate) use logging::{log_driver, LOG_DRIVER};
pub(crate) use mounts::mounts;
pub(crate) use mounts::volume_as_mount;
pub(crate) use namespaces::network_name;
pub(crate) use networking::endpoint_settings;
pub(crate) use resources::{capped, ulimits};
pub(crate) use security::{cap_add, security_opt};
pub(crate) use stored::{image_settings, stored_container, DaemonDefaults};

/// The struct tables, for the test that every declared field is checked.
#[cfg(test)]
pub(crate) use self::{
    config::{CONFIG, HEALTHCHECK},
    host::HOST,
    host::RESTART_POLICY,
    logging::LOG_CONFIG,
    mounts::{BIND_OPTIONS, DRIVER_CONFIG, MOUNT, TMPFS_OPTIONS, VOLUME_OPTIONS},
    networking::{ENDPOINT_SETTINGS, IPAM_CONFIG, NETWORKING_CONFIG, PORT_BINDING},
    resources::{
        DEVICE_MAPPING, DEVICE_REQUEST, RESOURCES, THROTTLE_DEVICE, ULIMIT, WEIGHT_DEVICE,
    },
};

/// `Labels` (container, service, service `ContainerSpec`): reserved keys refused.
pub(crate) fn labels(v: &Value<'_>, fp: &Path<'_>, ctx: &mut Ctx<'_>) -> Result<(), Violation> {
    let m = str_map(v, fp)?;
    check_labels(&m, fp, &ctx.rules.reserved_labels)
}

/// The state of one inspection of a container (or service) spec, handed to every check: the
/// rules, the values that later checks span several fields with, and the summary being filled.
pub(crate) struct Ctx<'r> {
    pub(crate) rules: &'r ContainerRules,
    pub(crate) seen: Seen,
    pub(crate) sum: Summary,
}

impl<'r> Ctx<'r> {
    pub(crate) fn new(kind: &'static str, rules: &'r ContainerRules) -> Ctx<'r> {
        Ctx {
            rules,
            seen: Seen::default(),
            sum: Summary::new(kind),
        }
    }
}

/// Values needed for checks that span several fields.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) user: Option<String>,
    pub(crate) image: bool,
    pub(crate) ld_env: Option<usize>,
    pub(crate) device_requests: bool,
    pub(crate) memory: Option<i64>,
    pub(crate) memory_swap: Option<i64>,
    pub(crate) memory_reservation: Option<i64>,
    pub(crate) nano_cpus: Option<i64>,
    pub(crate) cpu_quota: Option<i64>,
    pub(crate) pids: Option<i64>,
}

/// The check of one field of a container or service struct: its (non-null) value, its path.
pub(crate) type Check = fn(&Value<'_>, &Path<'_>, &mut Ctx<'_>) -> Result<(), Violation>;

/// Walks a struct whose unknown fields are refused, running each field's check.
pub(crate) fn walk(
    table: &Table<Check>,
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    table.strict(&s, p, |check, val, fp| check(val, fp, ctx))
}

/// Walks a struct whose unknown fields pass with `allow_unknown_config_fields`.
pub(crate) fn walk_lenient(
    table: &Table<Check>,
    v: &Value<'_>,
    p: &Path<'_>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Violation> {
    let s = strukt(v, p)?;
    let allow = ctx.rules.allow_unknown_config_fields;
    table.lenient(&s, p, allow, |check, val, fp| check(val, fp, ctx))
}

// Checks of fields that only need their Go type.

pub(crate) fn a_string(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    string(v, p).map(drop)
}

pub(crate) fn a_bool(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    boolean(v, p).map(drop)
}

pub(crate) fn a_str_list(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    str_list(v, p).map(drop)
}

pub(crate) fn a_str_slice(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    str_slice(v, p).map(drop)
}

pub(crate) fn an_int64(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    int64(v, p).map(drop)
}

pub(crate) fn a_uint64(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    int(v, p, GoInt::Uint64).map(drop)
}

/// `[]uint64` (`ConsoleSize`).
pub(crate) fn uint64_list(v: &Value<'_>, p: &Path<'_>, _: &mut Ctx<'_>) -> Result<(), Violation> {
    for (i, n) in array(v, p)?.iter().enumerate() {
        int(n, &p.index(i), GoInt::Uint64)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Legacy top-level fields of the 20.10 create wrapper that are not HostConfig fields (always
/// refused at the top level, like the HostConfig fields).
const LEGACY_TOP_FIELDS: &[&str] = &["Cpuset"];

/// Whether `key` names a `HostConfig` field (or a legacy wrapper field) written at the top level.
fn is_top_level_host_field(key: &str) -> bool {
    host::HOST_CONFIG.index().find(key).is_some() || canon(key, LEGACY_TOP_FIELDS).is_some()
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Inspects `POST /containers/create`: query (`name`, `platform`) and body.
pub fn container_create(
    body: &[u8],
    query: &[(String, String)],
    rules: &ContainerRules,
) -> Result<Summary, Violation> {
    let mut ctx = Ctx::new("container_create", rules);
    create_query(query, rules, &mut ctx.sum)?;
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let index = config::CONFIG.index();
    for (key, val) in top.entries() {
        let Some((c, check)) = index.find(key) else {
            if is_top_level_host_field(key) {
                return Err(deny(
                    &p.field(key),
                    "HostConfig field at the top level of the body is refused (Docker <= 26 applies it when HostConfig is absent or null)",
                ));
            }
            if rules.allow_unknown_config_fields {
                continue;
            }
            return Err(unknown_lenient(&p.field(key)));
        };
        if !val.is_null() {
            check(val, &p.field(c), &mut ctx)?;
        }
    }
    let hp = p.field("HostConfig");
    resources::finish(&mut ctx, &hp, Mode::Create)?;
    check_user_and_image(
        ctx.seen.user.as_deref(),
        ctx.seen.image,
        &p.field("User"),
        &p.field("Image"),
        "the container runs",
        rules,
    )?;
    if let (true, Some(i)) = (ctx.seen.device_requests, ctx.seen.ld_env) {
        return Err(deny(
            &p.field("Env").index(i),
            "LD_PRELOAD / LD_LIBRARY_PATH / LD_AUDIT are refused together with device requests (vendor hooks, CVE-2025-23266)",
        ));
    }
    Ok(ctx.sum)
}

/// The fields of an update body besides `Resources`.
pub(crate) static UPDATE_EXTRA: Table<Check> =
    Table::new("update body", &[("RestartPolicy", host::restart_policy)]);

/// An update body: [`resources::RESOURCES`] and [`UPDATE_EXTRA`].
static UPDATE: Joined<Check> = Joined::new(&[&resources::RESOURCES, &UPDATE_EXTRA]);

/// Inspects `POST /containers/{id}/update`: `Resources` fields and `RestartPolicy`, with the same
/// caps as create. Absent or zero values mean "unchanged" and pass.
pub fn container_update(body: &[u8], rules: &ContainerRules) -> Result<Summary, Violation> {
    let mut ctx = Ctx::new("container_update", rules);
    let root = parse_body(body)?;
    let p = Path::ROOT;
    let top = strukt(&root, &p)?;
    let index = UPDATE.index();
    for (key, val) in top.entries() {
        let Some((c, check)) = index.find(key) else {
            return Err(unknown_in("update body", &p.field(key)));
        };
        if !val.is_null() {
            check(val, &p.field(c), &mut ctx)?;
        }
    }
    resources::finish(&mut ctx, &p, Mode::Update)?;
    Ok(ctx.sum)
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

/// The query of a create: `name` (a valid name that cannot shadow an ID) and `platform`.
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
