//! The field tables: every field a struct table declares is accepted by name and reaches a check
//! (some value of the wrong shape is refused at that field, never as unknown), and a field the
//! table does not declare is refused as unknown, at every place the struct appears in a body.

use crate::inspect::container::{
    BIND_OPTIONS, CONFIG, DEVICE_MAPPING, DEVICE_REQUEST, DRIVER_CONFIG, ENDPOINT_SETTINGS,
    HEALTHCHECK, HOST, IPAM_CONFIG, LOG_CONFIG, LOG_DRIVER, MOUNT, NETWORKING_CONFIG, PORT_BINDING,
    RESOURCES, RESTART_POLICY as CONTAINER_RESTART_POLICY, THROTTLE_DEVICE, TMPFS_OPTIONS, ULIMIT,
    UPDATE_EXTRA, VOLUME_OPTIONS, WEIGHT_DEVICE,
};
use crate::inspect::exec::EXEC;
use crate::inspect::network::{CONFIG_FROM, CONNECT, IPAM, IPAM_POOL, NETWORK};
use crate::inspect::plugin::PLUGIN_PRIVILEGE;
use crate::inspect::service::{
    APPARMOR, CONFIG_REFERENCE, CONTAINER_SPEC, CREDENTIAL_SPEC, DISCRETE_RESOURCE, DNS_CONFIG,
    ENDPOINT_SPEC, FILE_TARGET, GENERIC_RESOURCE, LIMIT, MODE, NAMED_RESOURCE, NETWORK_ATTACHMENT,
    PLACEMENT, PLACEMENT_PREFERENCE, PLATFORM, PORT_CONFIG, PRIVILEGES, REPLICATED, REPLICATED_JOB,
    RESERVATIONS, RESOURCE_REQUIREMENTS, RESTART_POLICY, RUNTIME_TARGET, SECCOMP, SECRET_REFERENCE,
    SELINUX_CONTEXT, SPEC, SPREAD_OVER, TASK, UPDATE_CONFIG,
};
use crate::inspect::table::Table;
use crate::inspect::volume::VOLUME;
use crate::inspect::{
    container_create, container_update, exec_create, network_connect, network_create, plugin_pull,
    service_create, volume_create, ContainerRules, ExecRules, NetworkRules, PluginRules, Summary,
    Violation, VolumeRules,
};

/// Values of every JSON shape but null: each field's check refuses at least one of them.
const VALUES: &[&str] = &[
    "\"\"", "\"x\"", "0", "1", "false", "[]", "{}", "[0]", "{\"\":0}",
];

/// Where a struct appears in a body.
struct Place {
    /// The struct's declared field names.
    names: Vec<&'static str>,
    what: &'static str,
    /// The body around the struct's object (`{}` is replaced by its members).
    around: &'static str,
    /// Members the object needs besides the one under test (dropped when it is the one tested).
    base: &'static [(&'static str, &'static str)],
    /// The path of the object in refusals (empty for the root).
    path: &'static str,
    run: fn(&[u8]) -> Result<Summary, Violation>,
}

fn rules() -> ContainerRules {
    ContainerRules {
        bind_sources: vec!["/tmp".into()],
        require_read_only_binds: false,
        ..ContainerRules::default()
    }
}

fn create(body: &[u8]) -> Result<Summary, Violation> {
    container_create(body, &[], &rules())
}

fn update(body: &[u8]) -> Result<Summary, Violation> {
    container_update(body, &rules())
}

fn service(body: &[u8]) -> Result<Summary, Violation> {
    service_create(body, &[], &rules())
}

fn exec(body: &[u8]) -> Result<Summary, Violation> {
    exec_create(body, &ExecRules::default())
}

fn volume(body: &[u8]) -> Result<Summary, Violation> {
    volume_create(body, &VolumeRules::default())
}

fn network(body: &[u8]) -> Result<Summary, Violation> {
    network_create(body, &NetworkRules::default())
}

fn connect(body: &[u8]) -> Result<Summary, Violation> {
    network_connect(body, &rules())
}

fn plugin(body: &[u8]) -> Result<Summary, Violation> {
    let rules = PluginRules {
        names: vec!["docker.io/vieux/sshfs".into()],
        ..PluginRules::default()
    };
    let query = [("remote".to_string(), "vieux/sshfs".to_string())];
    plugin_pull(body, &query, &rules)
}

fn place<F: Copy>(
    table: &Table<F>,
    around: &'static str,
    base: &'static [(&'static str, &'static str)],
    path: &'static str,
    run: fn(&[u8]) -> Result<Summary, Violation>,
) -> Place {
    Place {
        names: table.names().collect(),
        what: table.what(),
        around,
        base,
        path,
        run,
    }
}

const BIND: &[(&str, &str)] = &[
    ("Type", "\"bind\""),
    ("Source", "\"/tmp\""),
    ("Target", "\"/mnt\""),
];

fn places() -> Vec<Place> {
    const MOUNT_0: &str = "HostConfig.Mounts[0]";
    const EP: &str = "NetworkingConfig.EndpointsConfig.none";
    const CS: &str = "TaskTemplate.ContainerSpec";
    let c = create;
    let s = service;
    vec![
        place(&CONFIG, "{}", &[("Image", "\"busybox\"")], "", c),
        place(&HEALTHCHECK, r#"{"Healthcheck":{}}"#, &[], "Healthcheck", c),
        place(&HOST, r#"{"HostConfig":{}}"#, &[], "HostConfig", c),
        place(&RESOURCES, r#"{"HostConfig":{}}"#, &[], "HostConfig", c),
        place(&RESOURCES, "{}", &[], "", update),
        place(&UPDATE_EXTRA, "{}", &[], "", update),
        place(
            &LOG_CONFIG,
            r#"{"HostConfig":{"LogConfig":{}}}"#,
            &[],
            "HostConfig.LogConfig",
            c,
        ),
        place(
            &MOUNT,
            r#"{"HostConfig":{"Mounts":[{}]}}"#,
            BIND,
            MOUNT_0,
            c,
        ),
        place(
            &BIND_OPTIONS,
            r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/tmp","Target":"/mnt","BindOptions":{}}]}}"#,
            &[],
            "HostConfig.Mounts[0].BindOptions",
            c,
        ),
        place(
            &VOLUME_OPTIONS,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","Target":"/mnt","VolumeOptions":{}}]}}"#,
            &[],
            "HostConfig.Mounts[0].VolumeOptions",
            c,
        ),
        place(
            &DRIVER_CONFIG,
            r#"{"HostConfig":{"Mounts":[{"Type":"volume","Target":"/mnt","VolumeOptions":{"DriverConfig":{}}}]}}"#,
            &[],
            "HostConfig.Mounts[0].VolumeOptions.DriverConfig",
            c,
        ),
        place(
            &TMPFS_OPTIONS,
            r#"{"HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/mnt","TmpfsOptions":{}}]}}"#,
            &[],
            "HostConfig.Mounts[0].TmpfsOptions",
            c,
        ),
        place(
            &CONTAINER_RESTART_POLICY,
            r#"{"HostConfig":{"RestartPolicy":{}}}"#,
            &[],
            "HostConfig.RestartPolicy",
            c,
        ),
        place(
            &ULIMIT,
            r#"{"HostConfig":{"Ulimits":[{}]}}"#,
            &[],
            "HostConfig.Ulimits[0]",
            c,
        ),
        place(
            &DEVICE_MAPPING,
            r#"{"HostConfig":{"Devices":[{}]}}"#,
            &[],
            "HostConfig.Devices[0]",
            c,
        ),
        place(
            &WEIGHT_DEVICE,
            r#"{"HostConfig":{"BlkioWeightDevice":[{}]}}"#,
            &[],
            "HostConfig.BlkioWeightDevice[0]",
            c,
        ),
        place(
            &THROTTLE_DEVICE,
            r#"{"HostConfig":{"BlkioDeviceReadBps":[{}]}}"#,
            &[],
            "HostConfig.BlkioDeviceReadBps[0]",
            c,
        ),
        place(
            &PORT_BINDING,
            r#"{"HostConfig":{"PortBindings":{"80":[{}]}}}"#,
            &[],
            "HostConfig.PortBindings.80[0]",
            c,
        ),
        place(
            &DEVICE_REQUEST,
            r#"{"HostConfig":{"DeviceRequests":[{}]}}"#,
            &[],
            "HostConfig.DeviceRequests[0]",
            c,
        ),
        place(
            &NETWORKING_CONFIG,
            r#"{"NetworkingConfig":{}}"#,
            &[],
            "NetworkingConfig",
            c,
        ),
        place(
            &ENDPOINT_SETTINGS,
            r#"{"NetworkingConfig":{"EndpointsConfig":{"none":{}}}}"#,
            &[],
            EP,
            c,
        ),
        place(
            &IPAM_CONFIG,
            r#"{"NetworkingConfig":{"EndpointsConfig":{"none":{"IPAMConfig":{}}}}}"#,
            &[],
            "NetworkingConfig.EndpointsConfig.none.IPAMConfig",
            c,
        ),
        place(&SPEC, "{}", &[], "", s),
        place(&MODE, r#"{"Mode":{}}"#, &[], "Mode", s),
        place(
            &REPLICATED,
            r#"{"Mode":{"Replicated":{}}}"#,
            &[],
            "Mode.Replicated",
            s,
        ),
        place(
            &REPLICATED_JOB,
            r#"{"Mode":{"ReplicatedJob":{}}}"#,
            &[],
            "Mode.ReplicatedJob",
            s,
        ),
        place(
            &UPDATE_CONFIG,
            r#"{"UpdateConfig":{}}"#,
            &[],
            "UpdateConfig",
            s,
        ),
        place(
            &UPDATE_CONFIG,
            r#"{"RollbackConfig":{}}"#,
            &[],
            "RollbackConfig",
            s,
        ),
        place(&TASK, r#"{"TaskTemplate":{}}"#, &[], "TaskTemplate", s),
        place(
            &CONTAINER_SPEC,
            r#"{"TaskTemplate":{"ContainerSpec":{}}}"#,
            &[],
            CS,
            s,
        ),
        place(
            &DNS_CONFIG,
            r#"{"TaskTemplate":{"ContainerSpec":{"DNSConfig":{}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.DNSConfig",
            s,
        ),
        place(
            &HEALTHCHECK,
            r#"{"TaskTemplate":{"ContainerSpec":{"Healthcheck":{}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Healthcheck",
            s,
        ),
        place(
            &MOUNT,
            r#"{"TaskTemplate":{"ContainerSpec":{"Mounts":[{}]}}}"#,
            BIND,
            "TaskTemplate.ContainerSpec.Mounts[0]",
            s,
        ),
        place(
            &SECRET_REFERENCE,
            r#"{"TaskTemplate":{"ContainerSpec":{"Secrets":[{}]}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Secrets[0]",
            s,
        ),
        place(
            &CONFIG_REFERENCE,
            r#"{"TaskTemplate":{"ContainerSpec":{"Configs":[{}]}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Configs[0]",
            s,
        ),
        place(
            &FILE_TARGET,
            r#"{"TaskTemplate":{"ContainerSpec":{"Secrets":[{"File":{}}]}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Secrets[0].File",
            s,
        ),
        place(
            &PRIVILEGES,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Privileges",
            s,
        ),
        place(
            &CREDENTIAL_SPEC,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"CredentialSpec":{}}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Privileges.CredentialSpec",
            s,
        ),
        place(
            &SELINUX_CONTEXT,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"SELinuxContext":{}}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Privileges.SELinuxContext",
            s,
        ),
        place(
            &SECCOMP,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"Seccomp":{}}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Privileges.Seccomp",
            s,
        ),
        place(
            &APPARMOR,
            r#"{"TaskTemplate":{"ContainerSpec":{"Privileges":{"AppArmor":{}}}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Privileges.AppArmor",
            s,
        ),
        place(
            &RESOURCE_REQUIREMENTS,
            r#"{"TaskTemplate":{"Resources":{}}}"#,
            &[],
            "TaskTemplate.Resources",
            s,
        ),
        place(
            &LIMIT,
            r#"{"TaskTemplate":{"Resources":{"Limits":{}}}}"#,
            &[],
            "TaskTemplate.Resources.Limits",
            s,
        ),
        place(
            &RESERVATIONS,
            r#"{"TaskTemplate":{"Resources":{"Reservations":{}}}}"#,
            &[],
            "TaskTemplate.Resources.Reservations",
            s,
        ),
        place(
            &RESTART_POLICY,
            r#"{"TaskTemplate":{"RestartPolicy":{}}}"#,
            &[],
            "TaskTemplate.RestartPolicy",
            s,
        ),
        place(
            &PLACEMENT,
            r#"{"TaskTemplate":{"Placement":{}}}"#,
            &[],
            "TaskTemplate.Placement",
            s,
        ),
        place(
            &PLACEMENT_PREFERENCE,
            r#"{"TaskTemplate":{"Placement":{"Preferences":[{}]}}}"#,
            &[],
            "TaskTemplate.Placement.Preferences[0]",
            s,
        ),
        place(
            &SPREAD_OVER,
            r#"{"TaskTemplate":{"Placement":{"Preferences":[{"Spread":{}}]}}}"#,
            &[],
            "TaskTemplate.Placement.Preferences[0].Spread",
            s,
        ),
        place(
            &PLATFORM,
            r#"{"TaskTemplate":{"Placement":{"Platforms":[{}]}}}"#,
            &[],
            "TaskTemplate.Placement.Platforms[0]",
            s,
        ),
        place(
            &GENERIC_RESOURCE,
            r#"{"TaskTemplate":{"Resources":{"Reservations":{"GenericResources":[{}]}}}}"#,
            &[],
            "TaskTemplate.Resources.Reservations.GenericResources[0]",
            s,
        ),
        place(
            &NAMED_RESOURCE,
            r#"{"TaskTemplate":{"Resources":{"Reservations":{"GenericResources":[{"NamedResourceSpec":{}}]}}}}"#,
            &[],
            "TaskTemplate.Resources.Reservations.GenericResources[0].NamedResourceSpec",
            s,
        ),
        place(
            &DISCRETE_RESOURCE,
            r#"{"TaskTemplate":{"Resources":{"Reservations":{"GenericResources":[{"DiscreteResourceSpec":{}}]}}}}"#,
            &[],
            "TaskTemplate.Resources.Reservations.GenericResources[0].DiscreteResourceSpec",
            s,
        ),
        place(
            &RUNTIME_TARGET,
            r#"{"TaskTemplate":{"ContainerSpec":{"Configs":[{"Runtime":{}}]}}}"#,
            &[],
            "TaskTemplate.ContainerSpec.Configs[0].Runtime",
            s,
        ),
        place(
            &LOG_DRIVER,
            r#"{"TaskTemplate":{"LogDriver":{}}}"#,
            &[],
            "TaskTemplate.LogDriver",
            s,
        ),
        place(
            &NETWORK_ATTACHMENT,
            r#"{"TaskTemplate":{"Networks":[{}]}}"#,
            &[],
            "TaskTemplate.Networks[0]",
            s,
        ),
        place(
            &ENDPOINT_SPEC,
            r#"{"EndpointSpec":{}}"#,
            &[],
            "EndpointSpec",
            s,
        ),
        place(
            &PORT_CONFIG,
            r#"{"EndpointSpec":{"Ports":[{}]}}"#,
            &[],
            "EndpointSpec.Ports[0]",
            s,
        ),
        place(&EXEC, "{}", &[], "", exec),
        place(&VOLUME, "{}", &[], "", volume),
        place(&NETWORK, "{}", &[], "", network),
        place(&IPAM, r#"{"IPAM":{}}"#, &[], "IPAM", network),
        place(
            &IPAM_POOL,
            r#"{"IPAM":{"Config":[{}]}}"#,
            &[],
            "IPAM.Config[0]",
            network,
        ),
        place(
            &CONFIG_FROM,
            r#"{"ConfigFrom":{}}"#,
            &[],
            "ConfigFrom",
            network,
        ),
        place(&CONNECT, "{}", &[], "", connect),
        place(
            &ENDPOINT_SETTINGS,
            r#"{"Container":"c","EndpointConfig":{}}"#,
            &[],
            "EndpointConfig",
            connect,
        ),
        place(&PLUGIN_PRIVILEGE, "[{}]", &[], "[0]", plugin),
    ]
}

/// The body with `member` (`"Name":value`) first in the struct's object.
fn body(place: &Place, name: &str, member: &str) -> String {
    let mut members = vec![member.to_string()];
    for (n, v) in place.base {
        if !n.eq_ignore_ascii_case(name) {
            members.push(format!("\"{n}\":{v}"));
        }
    }
    place
        .around
        .replacen("{}", &format!("{{{}}}", members.join(",")), 1)
}

fn field_path(place: &Place, name: &str) -> String {
    if place.path.is_empty() {
        name.to_string()
    } else {
        format!("{}.{name}", place.path)
    }
}

/// Whether `field` is `path` or lies below it.
fn at_or_below(field: &str, path: &str) -> bool {
    field
        .strip_prefix(path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

#[test]
fn inspect_table_every_declared_field_is_checked() {
    let mut failures = Vec::new();
    for place in places() {
        for name in &place.names {
            let path = field_path(&place, name);
            let mut checked = false;
            // The canonical spelling, and the lower-case one Go's decoding also matches.
            for spelled in [name.to_string(), name.to_ascii_lowercase()] {
                for value in VALUES {
                    let b = body(&place, name, &format!("\"{spelled}\":{value}"));
                    let Err(v) = (place.run)(b.as_bytes()) else {
                        continue;
                    };
                    let unknown = v.field == path && v.reason.contains("unknown field");
                    if unknown || v.reason.contains("internal") {
                        failures.push(format!("{}: {b} -> {v}", place.what));
                    } else if at_or_below(&v.field, &path) {
                        checked = true;
                    }
                }
            }
            if !checked {
                failures.push(format!(
                    "{}: no value of {path} was refused at that field (is it checked?)",
                    place.what
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn inspect_table_undeclared_field_is_refused_as_unknown() {
    let mut failures = Vec::new();
    for place in places() {
        let b = body(&place, "NotAField", "\"NotAField\":0");
        let path = field_path(&place, "NotAField");
        match (place.run)(b.as_bytes()) {
            Err(v) if v.field == path && v.reason.contains("unknown field") => {}
            other => failures.push(format!("{}: {b} -> {other:?}", place.what)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn inspect_table_names_are_distinct_after_folding() {
    for place in places() {
        for (i, a) in place.names.iter().enumerate() {
            for b in place.names.iter().skip(i + 1) {
                assert!(
                    !a.eq_ignore_ascii_case(b),
                    "{}: {a} and {b} name the same field",
                    place.what
                );
            }
        }
    }
    // A top-level create key is either a Config field or a HostConfig field, never both.
    for name in CONFIG.names() {
        assert!(
            HOST.find(name).is_none() && RESOURCES.find(name).is_none(),
            "{name} is in Config and HostConfig"
        );
    }
}
