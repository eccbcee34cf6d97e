//! exec, volume, network, build, and the rule structs.

use super::{assert_table, Deny, Expect, Pairs, Pass};
use crate::inspect::{
    build_query, exec_create, network_connect, network_create, volume_create, BuildRules,
    ContainerRules, ExecRules, NetworkRules, VolumeRules,
};

/// What docker CLI 28 sends for `docker exec -i web cat` (wire-20.10.txt).
const CLI_EXEC: &str = r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cat"]}"#;

#[test]
fn inspect_exec() {
    type T = fn(&mut ExecRules);
    let none: T = |_| {};
    let nonroot: T = |r| r.allow_root_user = false;
    let cases: Vec<(&str, String, T, Expect)> = vec![
        ("cli body", CLI_EXEC.into(), none, Pass),
        (
            "privileged",
            r#"{"Cmd":["sh"],"Privileged":true}"#.into(),
            none,
            Deny("Privileged", "(allow_privileged)"),
        ),
        (
            "privileged allowed",
            r#"{"Cmd":["sh"],"Privileged":true}"#.into(),
            |r| r.allow_privileged = true,
            Pass,
        ),
        (
            "PRIVILEGED",
            r#"{"Cmd":["sh"],"PRIVILEGED":true}"#.into(),
            none,
            Deny("Privileged", "(allow_privileged)"),
        ),
        (
            "escaped privileged",
            r#"{"Cmd":["sh"],"\u0050rivileged":true}"#.into(),
            none,
            Deny("Privileged", "(allow_privileged)"),
        ),
        (
            "duplicate privileged",
            r#"{"Privileged":true,"Privileged":false}"#.into(),
            none,
            Deny("Privileged", "duplicate key"),
        ),
        (
            "folded duplicate",
            r#"{"Privileged":true,"privileged":false}"#.into(),
            none,
            Deny("privileged", "name the same field"),
        ),
        (
            "non-ASCII key",
            "{\"Privileged\":false,\"Privileged\u{17f}\":true}".into(),
            none,
            Deny("[\"Privilegedſ\"]", "non-ASCII"),
        ),
        (
            "string bool",
            r#"{"Privileged":"false"}"#.into(),
            none,
            Deny("Privileged", "expected a boolean"),
        ),
        (
            "root user refused",
            r#"{"Cmd":["sh"],"User":"root"}"#.into(),
            nonroot,
            Deny("User", "(allow_root_user)"),
        ),
        (
            "0:0 refused",
            r#"{"Cmd":["sh"],"User":"0:0"}"#.into(),
            nonroot,
            Deny("User", "(allow_root_user)"),
        ),
        (
            "empty user refused",
            CLI_EXEC.into(),
            nonroot,
            Deny("User", "container's user"),
        ),
        (
            "1000 ok",
            r#"{"Cmd":["sh"],"User":"1000"}"#.into(),
            nonroot,
            Pass,
        ),
        (
            "WorkingDir /proc",
            r#"{"Cmd":["sh"],"WorkingDir":"/proc/self/cwd"}"#.into(),
            none,
            Deny("WorkingDir", "CVE-2024-21626"),
        ),
        ("Cmd string", r#"{"Cmd":"sh"}"#.into(), none, Pass),
        (
            "ConsoleSize",
            r#"{"Cmd":["sh"],"ConsoleSize":[24,80]}"#.into(),
            none,
            Pass,
        ),
        (
            "unknown field",
            r#"{"Cmd":["sh"],"Capabilities":["ALL"]}"#.into(),
            none,
            Deny("Capabilities", "unknown field"),
        ),
        (
            "trailing",
            format!("{CLI_EXEC}{{\"Privileged\":true}}"),
            none,
            Deny("(body)", "trailing"),
        ),
        (
            "empty body",
            String::new(),
            none,
            Deny("(body)", "empty body"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, body, t, want)| {
            let mut r = ExecRules::default();
            t(&mut r);
            (name.to_string(), exec_create(body.as_bytes(), &r), want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_volume() {
    type T = fn(&mut VolumeRules);
    let none: T = |_| {};
    let cases: Vec<(&str, &str, T, Expect)> = vec![
        (
            "cli body",
            r#"{"Driver":"local","DriverOpts":{},"Labels":{},"Name":"v1"}"#,
            none,
            Pass,
        ),
        ("empty", "{}", none, Pass),
        (
            "plugin driver",
            r#"{"Name":"v1","Driver":"rexray"}"#,
            none,
            Deny("Driver", "(drivers)"),
        ),
        (
            "plugin driver allowed",
            r#"{"Name":"v1","Driver":"rexray"}"#,
            |r| r.drivers = vec!["rexray".into()],
            Pass,
        ),
        (
            "local bind",
            r#"{"Name":"v2","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/host/dir"}}"#,
            none,
            Deny("DriverOpts", "(allow_driver_opts)"),
        ),
        (
            "local bind, default driver",
            r#"{"Name":"v2","DriverOpts":{"type":"none","o":"bind","device":"/"}}"#,
            none,
            Deny("DriverOpts", "type=none"),
        ),
        (
            "local block device",
            r#"{"DriverOpts":{"type":"ext4","device":"/dev/sda1"}}"#,
            none,
            Deny("DriverOpts", "(allow_driver_opts)"),
        ),
        (
            "nfs",
            r#"{"DriverOpts":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}}"#,
            none,
            Deny("DriverOpts", "(allow_driver_opts)"),
        ),
        (
            "tmpfs",
            r#"{"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=100m,uid=1000"}}"#,
            none,
            Pass,
        ),
        (
            "tmpfs o=bind",
            r#"{"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m,bind"}}"#,
            none,
            Deny("DriverOpts", "\"bind\" is refused"),
        ),
        (
            "tmpfs rbind",
            r#"{"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"rbind"}}"#,
            none,
            Deny("DriverOpts", "refused"),
        ),
        (
            "tmpfs device path",
            r#"{"DriverOpts":{"type":"tmpfs","device":"/etc","o":"size=1m"}}"#,
            none,
            Deny("DriverOpts", "device=/etc"),
        ),
        (
            "tmpfs key case",
            r#"{"DriverOpts":{"Type":"tmpfs"}}"#,
            none,
            Deny("DriverOpts", "\"Type\" is refused"),
        ),
        (
            "tmpfs exception off",
            r#"{"DriverOpts":{"type":"tmpfs","device":"tmpfs"}}"#,
            |r| r.allow_tmpfs_driver_opts = false,
            Deny("DriverOpts", "(allow_driver_opts)"),
        ),
        (
            "opts allowed",
            r#"{"DriverOpts":{"type":"none","o":"bind","device":"/srv"}}"#,
            |r| r.allow_driver_opts = true,
            Pass,
        ),
        (
            "duplicate opts key",
            r#"{"DriverOpts":{"type":"tmpfs","type":"none"}}"#,
            none,
            Deny("DriverOpts.type", "duplicate key"),
        ),
        (
            "folded DriverOpts",
            r#"{"driveropts":{"type":"none"},"DriverOpts":{}}"#,
            none,
            Deny("DriverOpts", "name the same field"),
        ),
        (
            "ClusterVolumeSpec",
            r#"{"ClusterVolumeSpec":{"Group":"x"}}"#,
            none,
            Deny("ClusterVolumeSpec", "cluster"),
        ),
        (
            "ClusterVolumeSpec null",
            r#"{"ClusterVolumeSpec":null}"#,
            none,
            Pass,
        ),
        (
            "unknown field",
            r#"{"Foo":1}"#,
            none,
            Deny("Foo", "unknown field"),
        ),
        (
            "invalid name",
            r#"{"Name":"../x"}"#,
            none,
            Deny("Name", "invalid volume name"),
        ),
        (
            "reserved label",
            r#"{"Labels":{"owner":"x"}}"#,
            |r| r.reserved_labels = vec!["owner".into()],
            Deny("Labels.owner", "reserved"),
        ),
        (
            "opts not strings",
            r#"{"DriverOpts":{"type":1}}"#,
            none,
            Deny("DriverOpts.type", "expected a string"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, body, t, want)| {
            let mut r = VolumeRules::default();
            t(&mut r);
            (name.to_string(), volume_create(body.as_bytes(), &r), want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_network() {
    type T = fn(&mut NetworkRules);
    let none: T = |_| {};
    const CLI: &str = r#"{"Name":"ci-net","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{}}"#;
    let cases: Vec<(&str, &str, T, Expect)> = vec![
        ("cli body", CLI, none, Pass),
        ("minimal", r#"{"Name":"n1"}"#, none, Pass),
        (
            "macvlan",
            r#"{"Name":"n1","Driver":"macvlan","Options":{"parent":"eth0"}}"#,
            none,
            Deny("Options.parent", "(allow_options)"),
        ),
        (
            "macvlan no options",
            r#"{"Name":"n1","Driver":"macvlan"}"#,
            none,
            Deny("Driver", "\"macvlan\" is not allowed (drivers)"),
        ),
        (
            "ipvlan",
            r#"{"Name":"n1","Driver":"ipvlan"}"#,
            none,
            Deny("Driver", "(drivers)"),
        ),
        (
            "bridge name option",
            r#"{"Name":"n1","Options":{"com.docker.network.bridge.name":"docker0"}}"#,
            none,
            Deny(
                "Options[\"com.docker.network.bridge.name\"]",
                "(allow_options)",
            ),
        ),
        (
            "options allowed",
            r#"{"Name":"n1","Options":{"com.docker.network.driver.mtu":"1400"}}"#,
            |r| r.allow_options = true,
            Pass,
        ),
        (
            "Ingress",
            r#"{"Name":"n1","Ingress":true}"#,
            none,
            Deny("Ingress", "routing mesh"),
        ),
        (
            "ConfigOnly",
            r#"{"Name":"n1","ConfigOnly":true}"#,
            none,
            Deny("ConfigOnly", "(allow_config_networks)"),
        ),
        (
            "ConfigFrom",
            r#"{"Name":"n1","ConfigFrom":{"Network":"other"}}"#,
            none,
            Deny("ConfigFrom", "(allow_config_networks)"),
        ),
        (
            "IPAM subnet",
            r#"{"Name":"n1","IPAM":{"Config":[{"Subnet":"10.0.0.0/8"}]}}"#,
            none,
            Deny("IPAM.Config[0]", "(allow_ipam_config)"),
        ),
        (
            "IPAM subnet allowed",
            r#"{"Name":"n1","IPAM":{"Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1","AuxiliaryAddresses":{}}]}}"#,
            |r| r.allow_ipam_config = true,
            Pass,
        ),
        (
            "IPAM driver",
            r#"{"Name":"n1","IPAM":{"Driver":"infoblox"}}"#,
            none,
            Deny("IPAM.Driver", "refused"),
        ),
        (
            "IPAM options",
            r#"{"Name":"n1","IPAM":{"Options":{"x":"y"}}}"#,
            none,
            Deny("IPAM.Options.x", "(allow_ipam_config)"),
        ),
        (
            "IPAM unknown",
            r#"{"Name":"n1","IPAM":{"Foo":1}}"#,
            none,
            Deny("IPAM.Foo", "unknown field"),
        ),
        (
            "IPv6",
            r#"{"Name":"n1","EnableIPv6":true}"#,
            none,
            Deny("EnableIPv6", "(allow_ipv6)"),
        ),
        (
            "scope swarm",
            r#"{"Name":"n1","Scope":"swarm"}"#,
            none,
            Deny("Scope", "refused"),
        ),
        (
            "hex name",
            r#"{"Name":"deadbeef"}"#,
            none,
            Deny("Name", "ID prefix"),
        ),
        (
            "unknown field",
            r#"{"Name":"n1","Foo":1}"#,
            none,
            Deny("Foo", "unknown field"),
        ),
        (
            "folded duplicate",
            r#"{"Name":"n1","driver":"macvlan","Driver":"bridge"}"#,
            none,
            Deny("Driver", "name the same field"),
        ),
        (
            "reserved label",
            r#"{"Name":"n1","Labels":{"OWNER":"x"}}"#,
            |r| r.reserved_labels = vec!["owner".into()],
            Deny("Labels.OWNER", "reserved"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, body, t, want)| {
            let mut r = NetworkRules::default();
            t(&mut r);
            (name.to_string(), network_create(body.as_bytes(), &r), want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_build() {
    type T = fn(&mut BuildRules);
    let none: T = |_| {};
    let cases: Vec<(&str, Pairs, T, Expect)> = vec![
        (
            "cli query",
            vec![
                ("dockerfile", "Dockerfile"),
                ("q", "1"),
                ("t", "bb:built"),
                ("version", "1"),
            ],
            none,
            Pass,
        ),
        ("empty", vec![], none, Pass),
        ("many tags", vec![("t", "a:1"), ("t", "b:2")], none, Pass),
        (
            "version 2",
            vec![("version", "2")],
            none,
            Deny("?version", "(allow_buildkit)"),
        ),
        (
            "version 2 allowed",
            vec![("version", "2"), ("session", "abc")],
            |r| r.allow_buildkit = true,
            Pass,
        ),
        (
            "version 3",
            vec![("version", "3")],
            none,
            Deny("?version", "invalid"),
        ),
        (
            "session",
            vec![("session", "abc")],
            none,
            Deny("?session", "(allow_buildkit)"),
        ),
        (
            "outputs",
            vec![("outputs", "[{\"type\":\"local\"}]")],
            none,
            Deny("?outputs", "(allow_buildkit)"),
        ),
        (
            "remote",
            vec![("remote", "https://example.com/x.git")],
            none,
            Deny("?remote", "(allow_remote)"),
        ),
        ("remote empty", vec![("remote", "")], none, Pass),
        (
            // BuildKit's context over the session: nothing is fetched.
            "remote client-session buildkit",
            vec![
                ("version", "2"),
                ("session", "s"),
                ("remote", "client-session"),
            ],
            |r| r.allow_buildkit = true,
            Pass,
        ),
        (
            "remote client-session buildkit not allowed",
            vec![("version", "2"), ("remote", "client-session")],
            none,
            Deny("?version", "(allow_buildkit)"),
        ),
        (
            "remote client-session classic",
            vec![("remote", "client-session")],
            |r| r.allow_buildkit = true,
            Deny("?remote", "(allow_remote)"),
        ),
        (
            "remote client-session version 1",
            vec![("version", "1"), ("remote", "client-session")],
            |r| r.allow_buildkit = true,
            Deny("?remote", "(allow_remote)"),
        ),
        (
            "remote client-session other case",
            vec![("version", "2"), ("remote", "Client-Session")],
            |r| r.allow_buildkit = true,
            Deny("?remote", "(allow_remote)"),
        ),
        (
            "remote url buildkit",
            vec![("version", "2"), ("remote", "https://example.com/x.git")],
            |r| r.allow_buildkit = true,
            Deny("?remote", "(allow_remote)"),
        ),
        (
            "remote client-session allowed",
            vec![("remote", "client-session")],
            |r| r.allow_remote = true,
            Pass,
        ),
        (
            "networkmode host",
            vec![("networkmode", "host")],
            none,
            Deny("?networkmode", "(network_modes)"),
        ),
        (
            "networkmode container",
            vec![("networkmode", "container:abc")],
            none,
            Deny("?networkmode", "(network_modes)"),
        ),
        (
            "networkmode none",
            vec![("networkmode", "none")],
            none,
            Pass,
        ),
        (
            "networkmode repeated",
            vec![("networkmode", "none"), ("networkmode", "host")],
            none,
            Deny("?networkmode", "repeated"),
        ),
        (
            "extrahosts",
            vec![("extrahosts", "a:1.2.3.4")],
            none,
            Deny("?extrahosts", "(allow_extra_hosts)"),
        ),
        (
            "cgroupparent",
            vec![("cgroupparent", "/")],
            none,
            Deny("?cgroupparent", "(allow_cgroup_parent)"),
        ),
        (
            "securityopt",
            vec![("securityopt", "seccomp=unconfined")],
            none,
            Deny("?securityopt", "refused"),
        ),
        (
            "isolation",
            vec![("isolation", "hyperv")],
            none,
            Deny("?isolation", "refused"),
        ),
        (
            "isolation default",
            vec![("isolation", "default")],
            none,
            Pass,
        ),
        (
            "memswap -1",
            vec![("memswap", "-1")],
            none,
            Deny("?memswap", "unlimited"),
        ),
        (
            "cpuquota -1",
            vec![("cpuquota", "-1")],
            none,
            Deny("?cpuquota", "unlimited"),
        ),
        (
            "memory garbage",
            vec![("memory", "1g")],
            none,
            Deny("?memory", "not an integer"),
        ),
        (
            "memory cap",
            vec![("memory", "2147483648")],
            |r| r.max_memory_bytes = Some(1 << 30),
            Deny("?memory", "(max_memory_bytes)"),
        ),
        (
            "shmsize cap",
            vec![("shmsize", "2147483648")],
            |r| r.max_shm_size_bytes = Some(1 << 30),
            Deny("?shmsize", "(max_shm_size_bytes)"),
        ),
        (
            "cpusetcpus",
            vec![("cpusetcpus", "0")],
            none,
            Deny("?cpusetcpus", "(allow_cpuset)"),
        ),
        (
            "ulimits",
            vec![("ulimits", "[{\"Name\":\"nofile\",\"Hard\":1,\"Soft\":1}]")],
            none,
            Deny("?ulimits", "(allow_ulimits)"),
        ),
        (
            // The 20.10 CLI's classic builder sends these; Go decodes null into nil.
            "json parameters null",
            vec![
                ("ulimits", "null"),
                ("labels", "null"),
                ("buildargs", "null"),
                ("cachefrom", "null"),
            ],
            none,
            Pass,
        ),
        (
            // Go decodes `[]` into an empty list: no ulimits.
            "ulimits empty list",
            vec![("ulimits", "[]")],
            none,
            Pass,
        ),
        (
            "ulimits not objects",
            vec![("ulimits", "[1]")],
            |r| r.allow_ulimits = true,
            Deny("?ulimits[0]", "object"),
        ),
        (
            "ulimits bad json",
            vec![("ulimits", "[{]")],
            |r| r.allow_ulimits = true,
            Deny("?ulimits", "invalid JSON"),
        ),
        (
            "cachefrom",
            vec![("cachefrom", "[\"other:latest\"]")],
            none,
            Deny("?cachefrom", "(allow_cache_from)"),
        ),
        (
            "cachefrom empty list",
            vec![("cachefrom", "[]")],
            none,
            Pass,
        ),
        ("labels", vec![("labels", "{\"a\":\"b\"}")], none, Pass),
        (
            "labels duplicate",
            vec![("labels", "{\"a\":\"b\",\"a\":\"c\"}")],
            none,
            Deny("?labels", "duplicate key"),
        ),
        (
            "labels reserved",
            vec![("labels", "{\"Owner\":\"b\"}")],
            |r| r.reserved_labels = vec!["owner".into()],
            Deny("?labels.Owner", "reserved"),
        ),
        (
            "labels trailing",
            vec![("labels", "{} {}")],
            none,
            Deny("?labels", "trailing"),
        ),
        (
            "buildargs",
            vec![("buildargs", "{\"A\":\"1\",\"B\":null}")],
            none,
            Pass,
        ),
        (
            "buildargs number",
            vec![("buildargs", "{\"A\":1}")],
            none,
            Deny("?buildargs", "string or null"),
        ),
        (
            "dockerfile ..",
            vec![("dockerfile", "../Dockerfile")],
            none,
            Deny("?dockerfile", "'..'"),
        ),
        (
            "dockerfile abs",
            vec![("dockerfile", "/etc/passwd")],
            none,
            Deny("?dockerfile", "relative"),
        ),
        (
            "dockerfile sub",
            vec![("dockerfile", "build/Dockerfile.ci")],
            none,
            Pass,
        ),
        (
            "tag pattern",
            vec![("t", "ci/app:1")],
            |r| r.tags = vec!["docker.io/ci/*".into()],
            Pass,
        ),
        (
            "tag pattern other",
            vec![("t", "ci/app:1"), ("t", "busybox:latest")],
            |r| r.tags = vec!["docker.io/ci/*".into()],
            Deny("?t", "(tags)"),
        ),
        (
            "tag invalid",
            vec![("t", "Bad:tag")],
            none,
            Deny("?t", "invalid"),
        ),
        (
            "unknown param",
            vec![("foo", "1")],
            none,
            Deny("?foo", "(allow_unknown_params)"),
        ),
        (
            "unknown allowed",
            vec![("foo", "1"), ("foo", "2")],
            |r| r.allow_unknown_params = true,
            Deny("?foo", "repeated"),
        ),
        (
            "pull/nocache/rm",
            vec![
                ("pull", "1"),
                ("nocache", "true"),
                ("rm", "0"),
                ("forcerm", "1"),
                ("squash", "0"),
                ("platform", "linux/amd64"),
                ("target", "x"),
            ],
            none,
            Pass,
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, q, t, want)| {
            let mut r = BuildRules::default();
            t(&mut r);
            let q: Vec<(String, String)> = q
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            (name.to_string(), build_query(&q, &r), want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_rules_config() {
    // Missing keys take the P0 defaults; unknown keys are errors.
    let c: ContainerRules = toml::from_str("").unwrap();
    assert_eq!(c, ContainerRules::default());
    let c: ContainerRules = toml::from_str(
        "allow_privileged = false\ncap_add = [\"NET_BIND_SERVICE\"]\nmax_pids = 256\n[ulimits]\nnofile = 65536\n",
    )
    .unwrap();
    assert_eq!(c.cap_add, vec!["NET_BIND_SERVICE"]);
    assert_eq!(c.max_pids, Some(256));
    assert_eq!(c.ulimits.get("nofile"), Some(&65536));
    assert!(toml::from_str::<ContainerRules>("allow_privileges = true").is_err());
    assert_eq!(
        toml::from_str::<ExecRules>("").unwrap(),
        ExecRules::default()
    );
    assert_eq!(
        toml::from_str::<VolumeRules>("").unwrap().drivers,
        vec!["local"]
    );
    assert_eq!(
        toml::from_str::<NetworkRules>("").unwrap().drivers,
        vec!["bridge"]
    );
    assert!(toml::from_str::<BuildRules>("remote = true").is_err());
    // Round trip.
    let text = toml::to_string(&ContainerRules::default()).unwrap();
    assert_eq!(
        toml::from_str::<ContainerRules>(&text).unwrap(),
        ContainerRules::default()
    );
}

#[test]
fn inspect_network_connect() {
    let cases: Vec<(&str, &str, Expect)> = vec![
        (
            "plain",
            r#"{"Container":"web","EndpointConfig":{"Aliases":["web"]}}"#,
            Pass,
        ),
        (
            "cli body",
            r#"{"Container":"web","EndpointConfig":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#,
            Pass,
        ),
        (
            "static ip",
            r#"{"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.0.0.5"}}}"#,
            Deny(
                "EndpointConfig.IPAMConfig.IPv4Address",
                "(allow_static_ips)",
            ),
        ),
        (
            "driver opts",
            r#"{"Container":"web","EndpointConfig":{"DriverOpts":{"x":"y"}}}"#,
            Deny("EndpointConfig.DriverOpts.x", "refused"),
        ),
        (
            "unknown endpoint field",
            r#"{"Container":"web","EndpointConfig":{"Foo":1}}"#,
            Deny("EndpointConfig.Foo", "unknown field"),
        ),
        (
            "unknown field",
            r#"{"Container":"web","Force":true}"#,
            Deny("Force", "unknown field"),
        ),
        (
            "no container",
            r#"{"EndpointConfig":{}}"#,
            Deny("Container", "required"),
        ),
        (
            "folded duplicate",
            r#"{"Container":"web","container":"db"}"#,
            Deny("container", "name the same field"),
        ),
    ];
    let rules = ContainerRules::default();
    let results = cases
        .into_iter()
        .map(|(name, body, want)| {
            (
                name.to_string(),
                network_connect(body.as_bytes(), &rules),
                want,
            )
        })
        .collect();
    assert_table(results);
}

/// Deterministic mutation smoke test: no input makes an inspector panic.
#[test]
fn inspect_mutations_never_panic() {
    use crate::inspect::samples::CLI_RUN_BODY;
    use crate::inspect::{container_create, container_update};
    let seeds: [&[u8]; 4] = [
        CLI_RUN_BODY.as_bytes(),
        br#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/a","Target":"/b","BindOptions":{"Propagation":"x"}}],"Binds":["a:/b:ro"],"Tmpfs":{"/t":"size=1m"}}}"#,
        br#"{"Name":"n","Driver":"local","DriverOpts":{"type":"tmpfs","o":"size=1m"},"IPAM":{"Config":[{"Subnet":"x"}]}}"#,
        br#"{"User":"0:0","Cmd":"x","Env":["A=\u00e9"],"Privileged":false,"ConsoleSize":[1,2]}"#,
    ];
    let tokens: [&[u8]; 12] = [
        b"{", b"}", b"[", b"]", b"\"", b":", b",", b"null", b"-0", b"\\u017f", b"\xff", b"1e999",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let rules = ContainerRules {
        bind_sources: vec!["/".into()],
        max_memory_bytes: Some(1),
        max_tmpfs_bytes: Some(1 << 20),
        images: vec!["*".into()],
        allow_root_user: false,
        ..Default::default()
    };
    for _ in 0..4000 {
        let seed = seeds[(next() % seeds.len() as u64) as usize];
        let mut body = seed.to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() % (body.len() as u64 + 1)) as usize;
            match next() % 3 {
                0 if at < body.len() => {
                    body.remove(at);
                }
                1 => {
                    let t = tokens[(next() % tokens.len() as u64) as usize];
                    body.splice(at..at, t.iter().copied());
                }
                _ if at < body.len() => body[at] = (next() & 0xff) as u8,
                _ => {}
            }
        }
        let _ = container_create(&body, &[], &rules);
        let _ = container_create(&body, &[], &ContainerRules::default());
        let _ = container_update(&body, &rules);
        let _ = exec_create(&body, &ExecRules::default());
        let _ = volume_create(&body, &VolumeRules::default());
        let _ = network_create(&body, &NetworkRules::default());
        let _ = network_connect(&body, &rules);
        let q = vec![(
            "labels".to_string(),
            String::from_utf8_lossy(&body).into_owned(),
        )];
        let _ = build_query(&q, &BuildRules::default());
    }
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn build_gets_the_container_limits_it_leaves_unset() {
    use crate::inspect::build_defaults;
    let build = BuildRules::default();
    let capped = ContainerRules {
        default_memory_bytes: Some(1 << 30),
        max_memory_bytes: Some(4 << 30),
        max_memory_swap_bytes: Some(3 << 30),
        default_nano_cpus: Some(1_500_000_000),
        ..ContainerRules::default()
    };
    let written = |pairs: &[(&str, &str)], c: &ContainerRules, b: &BuildRules| {
        build_defaults(&query(pairs), b, c)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    for unset in [vec![], vec![("memory", "")], vec![("memory", "0")]] {
        assert_eq!(
            written(&unset, &capped, &build),
            [
                "memory=1073741824",
                "memswap=2147483648",
                "cpuperiod=100000",
                "cpuquota=150000"
            ],
            "{unset:?}"
        );
    }
    // The client's own values are kept (and checked by build_caps).
    assert_eq!(
        written(
            &[
                ("memory", "104857600"),
                ("memswap", "209715200"),
                ("cpuquota", "50000")
            ],
            &capped,
            &build
        ),
        Vec::<String>::new()
    );
    // No default: the tighter cap; swap never below the memory.
    let caps_only = ContainerRules {
        max_memory_bytes: Some(8 << 30),
        max_memory_swap_bytes: Some(1 << 30),
        ..ContainerRules::default()
    };
    let tighter = BuildRules {
        max_memory_bytes: Some(2 << 30),
        ..BuildRules::default()
    };
    assert_eq!(
        written(&[], &caps_only, &tighter),
        ["memory=2147483648", "memswap=2147483648"]
    );
    assert!(written(&[], &ContainerRules::default(), &build).is_empty());
}

#[test]
fn build_caps_follow_the_container_section() {
    use crate::inspect::build_caps;
    let ci = ContainerRules {
        max_memory_bytes: Some(8 << 30),
        max_shm_size_bytes: Some(1 << 30),
        max_cpu_shares: Some(1024),
        default_pids: Some(1024),
        ..ContainerRules::default()
    };
    let acked = BuildRules {
        allow_uncapped_builds: true,
        ..BuildRules::default()
    };
    let check = |pairs: &[(&str, &str)], b: &BuildRules| build_caps(&query(pairs), b, &ci);
    assert!(check(&[("memory", "1073741824")], &acked).is_ok());
    for (key, value, setting) in [
        ("memory", "17179869184", "max_memory_bytes"),
        ("shmsize", "4294967296", "max_shm_size_bytes"),
        ("cpushares", "2048", "max_cpu_shares"),
    ] {
        let v = check(&[(key, value)], &acked).unwrap_err();
        assert_eq!(v.setting.as_deref(), Some(setting), "{v:?}");
        assert_eq!(v.field, format!("?{key}"));
    }
    // Pids cannot reach a build without its build cgroup: refused, naming build_cgroup (and
    // allow_uncapped_builds as the unsafe alternative), unless acknowledged; BuildKit likewise.
    let v = check(&[], &BuildRules::default()).unwrap_err();
    assert_eq!(v.setting.as_deref(), Some("build_cgroup"));
    assert!(v.reason.contains("allow_uncapped_builds = true"), "{v:?}");
    let v = check(&[("version", "2")], &BuildRules::default()).unwrap_err();
    assert_eq!(v.field, "?version");
    assert!(check(&[("version", "2")], &acked).is_ok());
    // Under a CPU cap the quota must be set and within it.
    let cpu = ContainerRules {
        max_nano_cpus: Some(2_000_000_000),
        ..ContainerRules::default()
    };
    let cpu_check =
        |pairs: &[(&str, &str)]| build_caps(&query(pairs), &BuildRules::default(), &cpu);
    assert!(cpu_check(&[("cpuquota", "200000"), ("cpuperiod", "100000")]).is_ok());
    assert!(cpu_check(&[("cpuquota", "300000")]).is_err());
    assert!(cpu_check(&[]).is_err());
    // Without any cap nothing is refused.
    assert!(build_caps(
        &query(&[("memory", "99999999999")]),
        &BuildRules::default(),
        &ContainerRules::default()
    )
    .is_ok());
}

#[test]
fn a_build_in_its_prepared_cgroup_is_capped_and_only_that_parent_passes() {
    use crate::inspect::{
        build_caps_prepared, build_pids, build_query_prepared, wants_build_cgroup,
    };
    let ci = ContainerRules {
        default_pids: Some(1024),
        max_pids: Some(4096),
        ..ContainerRules::default()
    };
    let strict = BuildRules::default();
    let ours = "/sockwarden-builds/b7-1";
    let check = |pairs: &[(&str, &str)], prepared: Option<&str>| {
        let q = query(pairs);
        build_query_prepared(&q, &strict, prepared)
            .and_then(|_| build_caps_prepared(&q, &strict, &ci, prepared))
    };
    // Placed in the cgroup sockwarden prepared: no allow_uncapped_builds needed.
    assert!(check(&[("cgroupparent", ours), ("t", "x:1")], Some(ours)).is_ok());
    // Not placed: refused, naming the setting that gives it a build cgroup (and the one that
    // would let it run uncapped, as unsafe).
    for (pairs, prepared) in [
        (vec![], None),
        (vec![], Some(ours)),
        (vec![("cgroupparent", "")], Some(ours)),
    ] {
        let v = check(&pairs, prepared).unwrap_err();
        assert_eq!(v.setting.as_deref(), Some("build_cgroup"), "{pairs:?}");
        assert!(v.reason.contains("build_cgroup = \"auto\""), "{v:?}");
        assert!(v.reason.contains("allow_uncapped_builds"), "{v:?}");
    }
    // A client's own parent, whatever it names (another build's cgroup, ours without having
    // been prepared for this request, the host's root), is refused without allow_cgroup_parent.
    for theirs in [
        "/sockwarden-builds/b7-2",
        ours,
        "/",
        "/sockwarden-builds",
        "system.slice",
        "/sockwarden-builds/b7-1/..",
    ] {
        let prepared = (theirs != ours).then_some(ours);
        let v = check(&[("cgroupparent", theirs)], prepared).unwrap_err();
        assert_eq!(v.field, "?cgroupparent", "{theirs}");
        assert_eq!(
            v.setting.as_deref(),
            Some("allow_cgroup_parent"),
            "{theirs}"
        );
    }
    // A client's own parent, allowed: not capped, so still refused without the acknowledgement.
    let open = BuildRules {
        allow_cgroup_parent: true,
        ..BuildRules::default()
    };
    let q = query(&[("cgroupparent", "/elsewhere")]);
    assert!(build_query_prepared(&q, &open, None).is_ok());
    let v = build_caps_prepared(&q, &open, &ci, None).unwrap_err();
    assert_eq!(v.setting.as_deref(), Some("allow_uncapped_builds"));
    // Which builds get a cgroup, and with what limit.
    assert!(wants_build_cgroup(&query(&[]), &ci));
    assert!(wants_build_cgroup(&query(&[("cgroupparent", "")]), &ci));
    assert!(wants_build_cgroup(&query(&[("version", "1")]), &ci));
    assert!(!wants_build_cgroup(&query(&[("version", "2")]), &ci));
    assert!(!wants_build_cgroup(&query(&[("cgroupparent", "/x")]), &ci));
    assert!(!wants_build_cgroup(&query(&[]), &ContainerRules::default()));
    assert_eq!(build_pids(&ci), Some(1024));
    let tight = ContainerRules {
        default_pids: Some(9000),
        max_pids: Some(100),
        ..ContainerRules::default()
    };
    assert_eq!(build_pids(&tight), Some(100));
    let max_only = ContainerRules {
        max_pids: Some(300),
        ..ContainerRules::default()
    };
    assert_eq!(build_pids(&max_only), Some(300));
    assert_eq!(build_pids(&ContainerRules::default()), None);
}
