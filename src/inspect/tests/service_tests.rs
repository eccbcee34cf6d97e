//! `service_create` / `service_update` tables: a service's containers under [`ContainerRules`].

use super::{assert_table, Deny, Expect, Pairs, Pass};
use crate::inspect::{service_create, service_update, ContainerRules};

type Tweak = fn(&mut ContainerRules);

fn none(_: &mut ContainerRules) {}

/// What docker CLI 28.2.2 (API 1.41) sends for
/// `docker service create --no-resolve-image --name web sw-busybox:latest top`.
const CLI_SERVICE: &str = r#"{"Name":"web","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"sw-busybox:latest","Args":["top"],"Init":false,"DNSConfig":{}},"Resources":{"Limits":{},"Reservations":{}},"Placement":{},"ForceUpdate":0},"Mode":{"Replicated":{}},"EndpointSpec":{"Mode":"vip"}}"#;

/// What the same CLI sends for `--mount type=bind,src=/,dst=/host --publish 8080:80
/// --cap-add ALL --limit-memory 64m --network host` (the CLI resolves `host` to its ID).
const CLI_SERVICE_HOSTILE: &str = r#"{"Name":"web2","Labels":{},"TaskTemplate":{"ContainerSpec":{"Image":"sw-busybox:latest","Args":["top"],"Init":false,"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}],"DNSConfig":{},"CapabilityAdd":["ALL"]},"Resources":{"Limits":{"MemoryBytes":67108864},"Reservations":{}},"Placement":{},"Networks":[{"Target":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}],"ForceUpdate":0},"Mode":{"Replicated":{}},"EndpointSpec":{"Mode":"vip","Ports":[{"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"}]}}"#;

/// A spec whose `ContainerSpec` has `inner` after an image.
fn cs(inner: &str) -> String {
    format!(r#"{{"Name":"s","TaskTemplate":{{"ContainerSpec":{{"Image":"busybox",{inner}}}}}}}"#)
}

/// A spec with `inner` as extra `TaskTemplate` members.
fn tt(inner: &str) -> String {
    format!(r#"{{"TaskTemplate":{{"ContainerSpec":{{"Image":"busybox"}},{inner}}}}}"#)
}

/// A spec with `inner` as extra top-level members.
fn top(inner: &str) -> String {
    format!(r#"{{"TaskTemplate":{{"ContainerSpec":{{"Image":"busybox"}}}},{inner}}}"#)
}

fn privileges(inner: &str) -> String {
    cs(&format!(r#""Privileges":{{{inner}}}"#))
}

fn run(cases: Vec<(&str, String, Tweak, Expect)>) {
    let results = cases
        .into_iter()
        .map(|(name, body, tweak, want)| {
            let mut rules = ContainerRules::default();
            tweak(&mut rules);
            let got = service_create(body.as_bytes(), &[], &rules);
            (format!("{name} [{body}]"), got, want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_service_legitimate() {
    run(vec![
        ("cli body", CLI_SERVICE.into(), none, Pass),
        (
            "minimal",
            r#"{"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}"#.into(),
            none,
            Pass,
        ),
        ("empty spec", "{}".into(), none, Pass),
        (
            "runtime container",
            tt(r#""Runtime":"container""#),
            none,
            Pass,
        ),
        (
            "named volume",
            cs(r#""Mounts":[{"Type":"volume","Source":"data","Target":"/data"}]"#),
            none,
            Pass,
        ),
        (
            "anonymous volume",
            cs(r#""Mounts":[{"Type":"volume","Target":"/data"}]"#),
            none,
            Pass,
        ),
        (
            "tmpfs mount",
            cs(
                r#""Mounts":[{"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"SizeBytes":1048576}}]"#,
            ),
            none,
            Pass,
        ),
        ("cap drop", cs(r#""CapabilityDrop":["ALL"]"#), none, Pass),
        (
            "seccomp default",
            privileges(r#""Seccomp":{"Mode":"default"}"#),
            none,
            Pass,
        ),
        (
            "apparmor default",
            privileges(r#""AppArmor":{"Mode":"default"}"#),
            none,
            Pass,
        ),
        (
            "no new privileges",
            privileges(r#""NoNewPrivileges":true"#),
            none,
            Pass,
        ),
        (
            "selinux not disabled",
            privileges(r#""SELinuxContext":{"Disable":false}"#),
            none,
            Pass,
        ),
        (
            "empty credential spec",
            privileges(r#""CredentialSpec":{"File":"","Registry":""}"#),
            none,
            Pass,
        ),
        (
            "user",
            cs(r#""User":"1000:1000""#),
            |r| r.allow_root_user = false,
            Pass,
        ),
        (
            "secret",
            cs(
                r#""Secrets":[{"File":{"Name":"db","UID":"0","GID":"0","Mode":292},"SecretID":"abc","SecretName":"db"}]"#,
            ),
            none,
            Pass,
        ),
        (
            "config runtime target",
            cs(r#""Configs":[{"Runtime":{},"ConfigID":"abc","ConfigName":"c"}]"#),
            none,
            Pass,
        ),
        (
            "dns and hosts",
            cs(
                r#""DNSConfig":{"Nameservers":["1.1.1.1"],"Search":["x"],"Options":["ndots:2"]},"Hosts":["10.0.0.1 db"]"#,
            ),
            none,
            Pass,
        ),
        (
            "healthcheck",
            cs(r#""Healthcheck":{"Test":["CMD","true"],"Interval":5000000000}"#),
            none,
            Pass,
        ),
        (
            "overlay network",
            tt(r#""Networks":[{"Target":"ci-net","Aliases":["web"]}]"#),
            |r| r.networks = vec!["ci-*".into()],
            Pass,
        ),
        (
            "limits within caps",
            tt(
                r#""Resources":{"Limits":{"MemoryBytes":1048576,"NanoCPUs":1000000000,"Pids":100}}"#,
            ),
            |r| {
                r.max_memory_bytes = Some(1 << 30);
                r.max_nano_cpus = Some(2_000_000_000);
                r.max_pids = Some(1000)
            },
            Pass,
        ),
        (
            "restart policy",
            tt(r#""RestartPolicy":{"Condition":"on-failure","Delay":5000000000,"MaxAttempts":3}"#),
            none,
            Pass,
        ),
        (
            "placement",
            tt(
                r#""Placement":{"Constraints":["node.labels.ci==true"],"Preferences":[{"Spread":{"SpreadDescriptor":"node.labels.az"}}],"Platforms":[{"Architecture":"amd64","OS":"linux"}]}"#,
            ),
            none,
            Pass,
        ),
        (
            "log driver",
            tt(r#""LogDriver":{"Name":"json-file","Options":{"max-size":"10m"}}"#),
            none,
            Pass,
        ),
        ("mode global", top(r#""Mode":{"Global":{}}"#), none, Pass),
        (
            "update config",
            top(
                r#""UpdateConfig":{"Parallelism":1,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0.5,"Order":"stop-first"}"#,
            ),
            none,
            Pass,
        ),
        (
            "published port allowed",
            top(r#""EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}"#),
            |r| {
                r.allow_port_bindings = true;
                r.port_host_ips = vec!["0.0.0.0".into()]
            },
            Pass,
        ),
        (
            "unknown top-level field allowed",
            top(r#""Future":1"#),
            |r| r.allow_unknown_config_fields = true,
            Pass,
        ),
        (
            "bind under allowed source",
            cs(r#""Mounts":[{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true}]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Pass,
        ),
    ]);
}

#[test]
fn inspect_service_hostile() {
    run(vec![
        (
            "cli hostile body",
            CLI_SERVICE_HOSTILE.into(),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "host path / is not allowed (bind_sources)",
            ),
        ),
        (
            "bind /",
            cs(r#""Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "(bind_sources)",
            ),
        ),
        (
            "bind docker.sock",
            cs(
                r#""Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/var/run/docker.sock"}]"#,
            ),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "host path /var/run/docker.sock is not allowed (bind_sources)",
            ),
        ),
        (
            "bind /run contains docker.sock",
            cs(r#""Mounts":[{"Type":"bind","Source":"/run","Target":"/r","ReadOnly":true}]"#),
            |r| r.bind_sources = vec!["/".into()],
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "(bind_sources)",
            ),
        ),
        (
            "bind dotdot",
            cs(
                r#""Mounts":[{"Type":"bind","Source":"/srv/ci/../../etc","Target":"/x","ReadOnly":true}]"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "host path /etc",
            ),
        ),
        (
            "bind writable",
            cs(r#""Mounts":[{"Type":"bind","Source":"/srv/ci","Target":"/x"}]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Source",
                "(require_read_only_binds)",
            ),
        ),
        (
            "volume driver bind",
            cs(
                r#""Mounts":[{"Type":"volume","Source":"vol","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]"#,
            ),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.DriverConfig",
                "(allow_mount_driver_config)",
            ),
        ),
        (
            "volume driver bind allowed config",
            cs(
                r#""Mounts":[{"Type":"volume","Source":"vol","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]"#,
            ),
            |r| r.allow_mount_driver_config = true,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.DriverConfig.Options",
                "type=none",
            ),
        ),
        (
            "npipe mount",
            cs(r#""Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Type",
                "mount type \"npipe\" is refused",
            ),
        ),
        (
            "mount target /proc",
            cs(r#""Mounts":[{"Type":"tmpfs","Target":"/proc/sys"}]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Target",
                "(allow_special_mount_targets)",
            ),
        ),
        (
            "unknown mount field",
            cs(r#""Mounts":[{"Type":"tmpfs","Target":"/t","Evil":1}]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Mounts[0].Evil",
                "unknown field in Mount",
            ),
        ),
        (
            "seccomp unconfined",
            privileges(r#""Seccomp":{"Mode":"unconfined"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode",
                "security option \"seccomp=unconfined\" is not allowed (security_opt)",
            ),
        ),
        (
            "seccomp unconfined listed",
            privileges(r#""Seccomp":{"Mode":"unconfined"}"#),
            |r| r.security_opt = vec!["seccomp:unconfined".into()],
            Pass,
        ),
        (
            "seccomp custom",
            privileges(r#""Seccomp":{"Mode":"custom","Profile":"e30="}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode",
                "custom seccomp profiles",
            ),
        ),
        (
            "seccomp profile without mode",
            privileges(r#""Seccomp":{"Profile":"e30="}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.Seccomp.Profile",
                "only read with Mode custom",
            ),
        ),
        (
            "seccomp odd mode",
            privileges(r#""Seccomp":{"Mode":"Unconfined"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode",
                "unknown seccomp mode",
            ),
        ),
        (
            "apparmor disabled",
            privileges(r#""AppArmor":{"Mode":"disabled"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode",
                "\"apparmor=unconfined\" is not allowed (security_opt)",
            ),
        ),
        (
            "selinux disable",
            privileges(r#""SELinuxContext":{"Disable":true}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Disable",
                "\"label=disable\" is not allowed (security_opt)",
            ),
        ),
        (
            "selinux type",
            privileges(r#""SELinuxContext":{"Type":"spc_t"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Type",
                "\"label=type:spc_t\" is not allowed (security_opt)",
            ),
        ),
        (
            "credential spec",
            privileges(r#""CredentialSpec":{"File":"spec.json"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.CredentialSpec.File",
                "credential specs",
            ),
        ),
        (
            "unknown privilege",
            privileges(r#""Privileged":true"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Privileges.Privileged",
                "unknown field in Privileges",
            ),
        ),
        (
            "privileged in container spec",
            cs(r#""Privileged":true"#),
            |r| r.allow_unknown_config_fields = true,
            Deny(
                "TaskTemplate.ContainerSpec.Privileged",
                "unknown field in ContainerSpec",
            ),
        ),
        (
            "cap add ALL",
            cs(r#""CapabilityAdd":["ALL"]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.CapabilityAdd[0]",
                "capability ALL is not allowed (cap_add)",
            ),
        ),
        (
            "cap add sys_admin",
            cs(r#""CapabilityAdd":["cap_sys_admin"]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.CapabilityAdd[0]",
                "capability SYS_ADMIN is not allowed (cap_add)",
            ),
        ),
        (
            "cap add allowed",
            cs(r#""CapabilityAdd":["CAP_NET_ADMIN"]"#),
            |r| r.cap_add = vec!["NET_ADMIN".into()],
            Pass,
        ),
        (
            "cap add non-ASCII",
            cs("\"CapabilityAdd\":[\"SYS_ADMIN\u{17f}\"]"),
            none,
            Deny("TaskTemplate.ContainerSpec.CapabilityAdd[0]", "non-ASCII"),
        ),
        (
            "sysctl",
            cs(r#""Sysctls":{"kernel.core_pattern":"|/x"}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Sysctls[\"kernel.core_pattern\"]",
                "(sysctls)",
            ),
        ),
        (
            "groups",
            cs(r#""Groups":["docker"]"#),
            none,
            Deny("TaskTemplate.ContainerSpec.Groups[0]", "(group_add)"),
        ),
        (
            "hosts host-gateway",
            cs(r#""Hosts":["host-gateway h"]"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Hosts[0]",
                "(allow_host_gateway)",
            ),
        ),
        (
            "ulimit",
            cs(r#""Ulimits":[{"Name":"memlock","Soft":-1,"Hard":-1}]"#),
            none,
            Deny("TaskTemplate.ContainerSpec.Ulimits[0]", "(ulimits)"),
        ),
        (
            "oom score",
            cs(r#""OomScoreAdj":-1000"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.OomScoreAdj",
                "(allow_negative_oom_score_adj)",
            ),
        ),
        (
            "isolation",
            cs(r#""Isolation":"hyperv""#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Isolation",
                "isolation \"hyperv\" is refused",
            ),
        ),
        (
            "dir /proc",
            cs(r#""Dir":"/proc/self/fd/7""#),
            none,
            Deny("TaskTemplate.ContainerSpec.Dir", "CVE-2024-21626"),
        ),
        (
            "root user",
            cs(r#""User":"0""#),
            |r| r.allow_root_user = false,
            Deny("TaskTemplate.ContainerSpec.User", "(allow_root_user)"),
        ),
        (
            "no user",
            cs(r#""Args":["top"]"#),
            |r| r.allow_root_user = false,
            Deny("TaskTemplate.ContainerSpec.User", "(allow_root_user)"),
        ),
        (
            "image not allowed",
            cs(r#""Args":["x"]"#),
            |r| r.images = vec!["alpine".into()],
            Deny("TaskTemplate.ContainerSpec.Image", "(images)"),
        ),
        (
            "image required",
            r#"{"TaskTemplate":{}}"#.into(),
            |r| r.images = vec!["busybox".into()],
            Deny(
                "TaskTemplate.ContainerSpec.Image",
                "Image is required (images)",
            ),
        ),
        (
            "secret under /proc",
            cs(r#""Secrets":[{"File":{"Name":"/proc/sys/kernel/core_pattern"},"SecretID":"x"}]"#),
            |r| r.allow_special_mount_targets = true,
            Deny(
                "TaskTemplate.ContainerSpec.Secrets[0].File.Name",
                "under /proc",
            ),
        ),
        (
            "setuid config",
            cs(r#""Configs":[{"File":{"Name":"x","Mode":2541},"ConfigID":"x"}]"#),
            none,
            Deny("TaskTemplate.ContainerSpec.Configs[0].File.Mode", "set-id"),
        ),
        (
            "stop grace over cap",
            cs(r#""StopGracePeriod":700000000000"#),
            |r| r.max_stop_timeout_secs = Some(600),
            Deny(
                "TaskTemplate.ContainerSpec.StopGracePeriod",
                "(max_stop_timeout_secs)",
            ),
        ),
        (
            "healthcheck tiny interval",
            cs(r#""Healthcheck":{"Test":["CMD","true"],"Interval":1000}"#),
            none,
            Deny(
                "TaskTemplate.ContainerSpec.Healthcheck.Interval",
                "at least 1s",
            ),
        ),
    ]);
}

#[test]
fn inspect_service_task_template() {
    run(vec![
        (
            "plugin runtime",
            tt(r#""Runtime":"plugin""#),
            none,
            Deny("TaskTemplate.Runtime", "task runtime \"plugin\" is refused"),
        ),
        (
            "plugin spec",
            tt(
                r#""PluginSpec":{"Name":"p","Remote":"vieux/sshfs","Privileges":[{"Name":"mount","Value":["/"]}]}"#,
            ),
            none,
            Deny("TaskTemplate.PluginSpec", "plugin services are refused"),
        ),
        (
            "attachment",
            tt(r#""NetworkAttachmentSpec":{"ContainerID":"x"}"#),
            none,
            Deny("TaskTemplate.NetworkAttachmentSpec", "refused"),
        ),
        (
            "runtime case",
            tt(r#""Runtime":"Container""#),
            none,
            Deny("TaskTemplate.Runtime", "refused"),
        ),
        (
            "unknown task field",
            tt(r#""Evil":1"#),
            |r| r.allow_unknown_config_fields = true,
            Deny("TaskTemplate.Evil", "unknown field in TaskTemplate"),
        ),
        (
            "host network",
            tt(r#""Networks":[{"Target":"host"}]"#),
            none,
            Deny("TaskTemplate.Networks[0].Target", "(allow_host_namespaces)"),
        ),
        (
            "host network allowed",
            tt(r#""Networks":[{"Target":"host"}]"#),
            |r| r.allow_host_namespaces = true,
            Pass,
        ),
        (
            "HOST network",
            tt(r#""Networks":[{"Target":"HOST"}]"#),
            none,
            Deny("TaskTemplate.Networks[0].Target", "(allow_host_namespaces)"),
        ),
        (
            "network by id",
            tt(
                r#""Networks":[{"Target":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]"#,
            ),
            |r| r.allow_host_namespaces = true,
            Deny("TaskTemplate.Networks[0].Target", "network ID prefix"),
        ),
        (
            "network not allowed",
            tt(r#""Networks":[{"Target":"prod"}]"#),
            none,
            Deny("TaskTemplate.Networks[0].Target", "(networks)"),
        ),
        (
            "network missing target",
            tt(r#""Networks":[{"Aliases":["a"]}]"#),
            none,
            Deny("TaskTemplate.Networks[0].Target", "empty network name"),
        ),
        (
            "network driver opts",
            tt(
                r#""Networks":[{"Target":"bridge","DriverOpts":{"com.docker.network.driver.mtu":"9000"}}]"#,
            ),
            none,
            Deny(
                "TaskTemplate.Networks[0].DriverOpts[\"com.docker.network.driver.mtu\"]",
                "driver options",
            ),
        ),
        (
            "deprecated top-level host network",
            top(r#""Networks":[{"Target":"host"}]"#),
            none,
            Deny("Networks[0].Target", "(allow_host_namespaces)"),
        ),
        (
            "generic resources",
            tt(
                r#""Resources":{"Reservations":{"GenericResources":[{"DiscreteResourceSpec":{"Kind":"gpu","Value":1}}]}}"#,
            ),
            none,
            Deny(
                "TaskTemplate.Resources.Reservations.GenericResources[0]",
                "(allow_devices)",
            ),
        ),
        (
            "memory over cap",
            tt(r#""Resources":{"Limits":{"MemoryBytes":4294967296}}"#),
            |r| r.max_memory_bytes = Some(1 << 30),
            Deny(
                "TaskTemplate.Resources.Limits.MemoryBytes",
                "exceeds 1073741824 (max_memory_bytes)",
            ),
        ),
        (
            "memory required",
            tt(r#""Resources":{"Limits":{}}"#),
            |r| r.max_memory_bytes = Some(1 << 30),
            Deny("TaskTemplate.Resources.Limits.MemoryBytes", "required"),
        ),
        (
            "memory required without resources",
            CLI_SERVICE.into(),
            |r| r.max_memory_bytes = Some(1 << 30),
            Deny("TaskTemplate.Resources.Limits.MemoryBytes", "required"),
        ),
        (
            "pids over cap",
            tt(r#""Resources":{"Limits":{"Pids":100000}}"#),
            |r| r.max_pids = Some(1000),
            Deny("TaskTemplate.Resources.Limits.Pids", "(max_pids)"),
        ),
        (
            "negative nanocpus",
            tt(r#""Resources":{"Limits":{"NanoCPUs":-1}}"#),
            none,
            Deny("TaskTemplate.Resources.Limits.NanoCPUs", "negative"),
        ),
        (
            "reservation over cap",
            tt(
                r#""Resources":{"Limits":{"MemoryBytes":1024},"Reservations":{"MemoryBytes":4294967296}}"#,
            ),
            |r| r.max_memory_bytes = Some(1 << 30),
            Deny(
                "TaskTemplate.Resources.Reservations.MemoryBytes",
                "(max_memory_bytes)",
            ),
        ),
        (
            "unlimited swap",
            tt(r#""Resources":{"SwapBytes":-1}"#),
            none,
            Deny("TaskTemplate.Resources.SwapBytes", "unlimited swap"),
        ),
        (
            "log driver syslog",
            tt(r#""LogDriver":{"Name":"syslog","Options":{"syslog-address":"tcp://evil:514"}}"#),
            none,
            Deny("TaskTemplate.LogDriver.Name", "(log_drivers)"),
        ),
        (
            "log option",
            tt(r#""LogDriver":{"Name":"json-file","Options":{"labels":"x"}}"#),
            none,
            Deny("TaskTemplate.LogDriver.Options.labels", "log option"),
        ),
        (
            "manager pinning",
            tt(r#""Placement":{"Constraints":["node.role == manager"]}"#),
            none,
            Deny("TaskTemplate.Placement.Constraints[0]", "manager"),
        ),
        (
            "restart condition",
            tt(r#""RestartPolicy":{"Condition":"always"}"#),
            none,
            Deny(
                "TaskTemplate.RestartPolicy.Condition",
                "unknown restart condition",
            ),
        ),
        (
            "published port",
            top(r#""EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}"#),
            none,
            Deny("EndpointSpec.Ports[0]", "(allow_port_bindings)"),
        ),
        (
            "ingress port without published",
            top(r#""EndpointSpec":{"Ports":[{"TargetPort":80}]}"#),
            none,
            Deny("EndpointSpec.Ports[0]", "(allow_port_bindings)"),
        ),
        (
            "published port on all interfaces",
            top(r#""EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}"#),
            |r| r.allow_port_bindings = true,
            Deny("EndpointSpec.Ports[0]", "(port_host_ips)"),
        ),
        (
            "host mode low port",
            top(
                r#""EndpointSpec":{"Ports":[{"TargetPort":22,"PublishedPort":22,"PublishMode":"host"}]}"#,
            ),
            |r| {
                r.allow_port_bindings = true;
                r.port_host_ips = vec!["0.0.0.0".into()]
            },
            Deny("EndpointSpec.Ports[0].PublishedPort", "(min_host_port)"),
        ),
        (
            "unknown endpoint field",
            top(r#""EndpointSpec":{"Mode":"vip","Evil":1}"#),
            none,
            Deny("EndpointSpec.Evil", "unknown field in EndpointSpec"),
        ),
    ]);
}

#[test]
fn inspect_service_parser_traps() {
    run(vec![
        ("lowercase mounts", r#"{"tasktemplate":{"containerspec":{"image":"busybox","mounts":[{"type":"bind","source":"/","target":"/h"}]}}}"#.into(), none, Deny("TaskTemplate.ContainerSpec.Mounts[0].Source", "(bind_sources)")),
        ("MOUNTS", cs(r#""MOUNTS":[{"Type":"bind","Source":"/","Target":"/h"}]"#), none, Deny("TaskTemplate.ContainerSpec.Mounts[0].Source", "(bind_sources)")),
        ("folded duplicate mounts", cs(r#""Mounts":[],"mounts":[{"Type":"bind","Source":"/","Target":"/h"}]"#), none, Deny("TaskTemplate.ContainerSpec.mounts", "name the same field")),
        ("exact duplicate mounts", cs(r#""Mounts":[{"Type":"bind","Source":"/","Target":"/h"}],"Mounts":[]"#), none, Deny("TaskTemplate.ContainerSpec.Mounts", "duplicate key")),
        ("duplicate TaskTemplate", r#"{"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"taskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}}"#.into(), none, Deny("taskTemplate", "name the same field")),
        ("duplicate ContainerSpec", tt(r#""containerSpec":{"CapabilityAdd":["ALL"]}"#), none, Deny("TaskTemplate.containerSpec", "name the same field")),
        ("duplicate privileges", privileges(r#""Seccomp":{"Mode":"default"},"SECCOMP":{"Mode":"unconfined"}"#), none, Deny("TaskTemplate.ContainerSpec.Privileges.SECCOMP", "name the same field")),
        ("non-ASCII key", cs("\"Mount\u{17f}\":[{\"Type\":\"bind\",\"Source\":\"/\",\"Target\":\"/h\"}]"), none, Deny("TaskTemplate.ContainerSpec[\"Mountſ\"]", "non-ASCII")),
        ("escaped key", cs(r#""\u004dounts":[{"Type":"bind","Source":"/","Target":"/h"}]"#), none, Deny("TaskTemplate.ContainerSpec.Mounts[0].Source", "(bind_sources)")),
        ("trailing data", format!("{CLI_SERVICE} {{}}"), none, Deny("(body)", "trailing data")),
        ("array body", "[]".into(), none, Deny("(body)", "expected an object")),
        ("empty body", String::new(), none, Deny("(body)", "empty body")),
        ("string mounts", cs(r#""Mounts":"/:/h""#), none, Deny("TaskTemplate.ContainerSpec.Mounts", "expected an array")),
        ("null ContainerSpec", r#"{"TaskTemplate":{"ContainerSpec":null}}"#.into(), none, Pass),
        ("unknown top-level", top(r#""Future":1"#), none, Deny("Future", "(allow_unknown_config_fields)")),
        ("unknown mode", top(r#""Mode":{"Replicated":{"Replicas":1,"Evil":2}}"#), none, Deny("Mode.Replicated.Evil", "(allow_unknown_config_fields)")),
        ("reserved label", top(r#""Labels":{"Owner":"x"}"#), |r| r.reserved_labels = vec!["owner".into()], Deny("Labels.Owner", "reserved")),
        ("reserved container label", cs(r#""Labels":{"owner ":"x"}"#), |r| r.reserved_labels = vec!["owner".into()], Deny("TaskTemplate.ContainerSpec.Labels[\"owner \"]", "reserved")),
    ]);
}

#[test]
fn inspect_service_query() {
    let rules = ContainerRules::default();
    let create: Vec<(Pairs, Expect)> = vec![
        (vec![], Pass),
        (
            vec![("version", "1")],
            Deny("?version", "unknown query parameter"),
        ),
    ];
    let update: Vec<(Pairs, Expect)> = vec![
        (vec![("version", "12")], Pass),
        (
            vec![("version", "12"), ("registryAuthFrom", "previous-spec")],
            Pass,
        ),
        (vec![("version", "12"), ("rollback", "none")], Pass),
        (
            vec![("version", "12"), ("rollback", "previous")],
            Deny("?rollback", "previous spec"),
        ),
        (
            vec![("version", "12"), ("registryAuthFrom", "x")],
            Deny("?registryAuthFrom", "unknown value"),
        ),
        (
            vec![("version", "12"), ("version", "13")],
            Deny("?version", "repeated"),
        ),
        (
            vec![("insertDefaults", "1")],
            Deny("?insertDefaults", "unknown query parameter"),
        ),
    ];
    let owned = |q: &Pairs| -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut results = Vec::new();
    for (q, want) in create {
        let got = service_create(CLI_SERVICE.as_bytes(), &owned(&q), &rules);
        results.push((format!("create {q:?}"), got, want));
    }
    for (q, want) in update {
        let got = service_update(CLI_SERVICE.as_bytes(), &owned(&q), &rules);
        results.push((format!("update {q:?}"), got, want));
    }
    let hostile = service_update(
        CLI_SERVICE_HOSTILE.as_bytes(),
        &owned(&vec![("version", "3")]),
        &rules,
    );
    results.push((
        "update hostile".into(),
        hostile,
        Deny(
            "TaskTemplate.ContainerSpec.Mounts[0].Source",
            "(bind_sources)",
        ),
    ));
    assert_table(results);
}

#[test]
fn inspect_service_summary() {
    let rules = ContainerRules {
        allow_port_bindings: true,
        port_host_ips: vec!["0.0.0.0".into()],
        cap_add: vec!["NET_ADMIN".into()],
        ..ContainerRules::default()
    };
    let body = r#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","User":"1000","CapabilityAdd":["net_admin"],"Mounts":[{"Type":"volume","Source":"data","Target":"/d"}]},"Resources":{"Limits":{"MemoryBytes":1024}}},"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]}}"#;
    let sum = service_create(body.as_bytes(), &[], &rules).unwrap();
    assert_eq!(sum.kind, "service_create");
    assert_eq!(sum.name.as_deref(), Some("web"));
    assert_eq!(
        sum.image.as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    assert_eq!(sum.user.as_deref(), Some("1000"));
    assert_eq!(sum.cap_add, vec!["NET_ADMIN".to_string()]);
    assert_eq!(sum.named_volumes, vec!["data".to_string()]);
    assert_eq!(sum.limits.memory, Some(1024));
    assert_eq!(sum.port_bindings, vec!["0.0.0.0:8080->80/tcp".to_string()]);
}
