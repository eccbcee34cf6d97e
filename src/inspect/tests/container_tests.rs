//! `container_create` / `container_update` / `container_start` tables.

use super::{assert_table, Deny, Expect, Pairs, Pass};
use crate::inspect::samples::{large_create_body, CLI_RUN_BODY};
use crate::inspect::{
    container_create, container_start, container_start_query, container_update, ContainerRules,
};

type Tweak = fn(&mut ContainerRules);

fn none(_: &mut ContainerRules) {}

/// A create body with `inner` as the HostConfig members.
fn hc(inner: &str) -> String {
    format!(r#"{{"Image":"busybox","HostConfig":{{{inner}}}}}"#)
}

/// A create body with `inner` as extra top-level members.
fn top(inner: &str) -> String {
    format!(r#"{{"Image":"busybox",{inner}}}"#)
}

fn mount(m: &str) -> String {
    hc(&format!(r#""Mounts":[{m}]"#))
}

fn run(cases: Vec<(&str, String, Tweak, Expect)>) {
    let results = cases
        .into_iter()
        .map(|(name, body, tweak, want)| {
            let mut rules = ContainerRules::default();
            tweak(&mut rules);
            let got = container_create(body.as_bytes(), &[], &rules);
            (format!("{name} [{body}]"), got, want)
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_create_parser_traps() {
    let deep = format!(
        r#"{{"Image":"busybox","Labels":{}1{}}}"#,
        "{\"a\":".repeat(70),
        "}".repeat(70)
    );
    let deep_path: &'static str = Box::leak(format!("Labels{}", ".a".repeat(63)).into_boxed_str());
    run(vec![
        ("cli body", CLI_RUN_BODY.to_string(), none, Pass),
        ("minimal", r#"{"Image":"busybox"}"#.into(), none, Pass),
        ("HostConfig null", r#"{"Image":"busybox","HostConfig":null}"#.into(), none, Pass),
        ("lowercase keys", r#"{"image":"bb","cmd":["true"],"hostconfig":{"privileged":true,"NETWORKMODE":"none"}}"#.into(), none, Deny("HostConfig.Privileged", "(allow_privileged)")),
        ("PRIVILEGED", hc(r#""PRIVILEGED":true"#), none, Deny("HostConfig.Privileged", "privileged containers are not allowed (allow_privileged)")),
        ("privileged false", hc(r#""Privileged":false"#), none, Pass),
        ("Bindſ literal", hc("\"Bind\u{17f}\":[\"/etc:/x\"]"), none, Deny("HostConfig[\"Bindſ\"]", "non-ASCII field name")),
        ("Bindſ escaped", hc(r#""Bind\u017f":["/etc:/x"]"#), none, Deny("HostConfig[\"Bindſ\"]", "non-ASCII field name")),
        ("Kelvin sign", hc("\"\u{212A}ernelMemory\":1"), none, Deny("HostConfig[\"\u{212A}ernelMemory\"]", "non-ASCII")),
        ("non-ASCII top-level key", "{\"Image\":\"busybox\",\"\u{17f}\":1}".into(), none, Deny("[\"ſ\"]", "non-ASCII")),
        ("duplicate HostConfig objects", r#"{"Image":"busybox","HostConfig":{"Privileged":true},"HostConfig":{"NetworkMode":"none"}}"#.into(), none, Deny("HostConfig", "duplicate key")),
        ("folded duplicate HostConfig", r#"{"Image":"busybox","HostConfig":{},"hostconfig":{"Privileged":true}}"#.into(), none, Deny("hostconfig", "name the same field")),
        ("duplicate Privileged last false", hc(r#""CapAdd":"SYS_ADMIN","Privileged":true,"Privileged":false"#), none, Deny("HostConfig.Privileged", "duplicate key")),
        ("folded duplicate Privileged", hc(r#""Privileged":true,"privileged":false"#), none, Deny("HostConfig.privileged", "name the same field")),
        ("escaped duplicate Privileged", hc(r#""Privileged":true,"\u0050rivileged":false"#), none, Deny("HostConfig.Privileged", "duplicate key")),
        ("escaped key \\u0050rivileged", hc(r#""\u0050rivileged":true"#), none, Deny("HostConfig.Privileged", "(allow_privileged)")),
        ("escaped key \\u0050rivileged at top", top(r#""\u0050rivileged":true"#), none, Deny("Privileged", "top level")),
        ("top-level Privileged, no HostConfig", top(r#""Privileged":true"#), none, Deny("Privileged", "HostConfig field at the top level")),
        ("top-level Privileged false", top(r#""Privileged":false"#), none, Deny("Privileged", "top level")),
        ("HostConfig null + top-level Binds", r#"{"Image":"busybox","HostConfig":null,"Binds":["/etc:/x"]}"#.into(), none, Deny("Binds", "top level")),
        ("top-level binds lowercase", top(r#""binds":[]"#), none, Deny("binds", "top level")),
        ("top-level Memory", top(r#""Memory":1"#), none, Deny("Memory", "top level")),
        ("top-level MemorySwap", top(r#""MemorySwap":-1"#), none, Deny("MemorySwap", "top level")),
        ("top-level CpuShares", top(r#""CpuShares":2"#), none, Deny("CpuShares", "top level")),
        ("top-level Cpuset", top(r#""Cpuset":"0""#), none, Deny("Cpuset", "top level")),
        ("top-level VolumeDriver", top(r#""VolumeDriver":"x""#), none, Deny("VolumeDriver", "top level")),
        ("top-level NetworkMode null", top(r#""NetworkMode":null"#), none, Deny("NetworkMode", "top level")),
        ("trailing object", format!("{CLI_RUN_BODY}{{\"HostConfig\":{{\"Privileged\":true}}}}"), none, Deny("(body)", "trailing data")),
        ("trailing garbage", format!("{CLI_RUN_BODY} garbage"), none, Deny("(body)", "trailing data")),
        ("trailing newline ok", format!("{CLI_RUN_BODY}\n"), none, Pass),
        ("deep nesting", deep, none, Deny(deep_path, "nesting deeper than 64")),
        ("NUL escape in a value", "{\"Image\":\"busy\u{0}box\"}".replace('\u{0}', "\\u0000"), none, Pass),
        ("lone surrogate", r#"{"Image":"busybox","Hostname":"\ud800"}"#.into(), none, Deny("Hostname", "lone surrogate")),
        ("leading zero", hc(r#""Memory":01"#), none, Deny("HostConfig.Memory", "leading zeros")),
        ("float into int64", hc(r#""Memory":1.5"#), none, Deny("HostConfig.Memory", "not an integer")),
        ("exponent into int64", hc(r#""Memory":1e9"#), none, Deny("HostConfig.Memory", "not an integer")),
        ("int64 overflow", hc(r#""Memory":9223372036854775808"#), none, Deny("HostConfig.Memory", "overflows")),
        ("uint16 overflow", hc(r#""BlkioWeight":65536"#), none, Deny("HostConfig.BlkioWeight", "overflows")),
        ("string into bool", hc(r#""Privileged":"true""#), none, Deny("HostConfig.Privileged", "expected a boolean, got string")),
        ("number into bool", hc(r#""Privileged":1"#), none, Deny("HostConfig.Privileged", "expected a boolean")),
        ("string into []string", hc(r#""Binds":"/etc:/x""#), none, Deny("HostConfig.Binds", "expected an array")),
        ("object into []string", hc(r#""Dns":{}"#), none, Deny("HostConfig.Dns", "expected an array")),
        ("null element in Binds", hc(r#""Binds":[null]"#), none, Deny("HostConfig.Binds[0]", "null element")),
        ("null map value", top(r#""Labels":{"a":null}"#), none, Deny("Labels.a", "null value")),
        ("HostConfig array", r#"{"Image":"busybox","HostConfig":[]}"#.into(), none, Deny("HostConfig", "expected an object")),
        ("body null", "null".into(), none, Deny("(body)", "expected an object")),
        ("body array", "[]".into(), none, Deny("(body)", "expected an object")),
        ("empty body", String::new(), none, Deny("(body)", "empty body")),
        ("unknown HostConfig field", hc(r#""Foo":1"#), none, Deny("HostConfig.Foo", "unknown field in HostConfig")),
        ("unknown HostConfig field null", hc(r#""Foo":null"#), none, Deny("HostConfig.Foo", "unknown field")),
        ("HostConfig key with space", hc(r#""Privileged ":true"#), none, Deny("HostConfig[\"Privileged \"]", "unknown field")),
        ("Resources wrapper", hc(r#""Resources":{"Memory":1}"#), none, Deny("HostConfig.Resources", "unknown field")),
        ("unknown top-level field", top(r#""Foo":1"#), none, Deny("Foo", "(allow_unknown_config_fields)")),
        ("unknown top-level allowed", top(r#""Foo":{"x":[1]}"#), |r| r.allow_unknown_config_fields = true, Pass),
        ("CapAdd single string", hc(r#""CapAdd":"SYS_ADMIN""#), none, Deny("HostConfig.CapAdd[0]", "capability SYS_ADMIN is not allowed (cap_add)")),
        ("Cmd single string", top(r#""Cmd":"true""#), none, Pass),
        ("Cmd number", top(r#""Cmd":1"#), none, Deny("Cmd", "expected a string or an array")),
        ("Entrypoint array", top(r#""Entrypoint":["/bin/sh","-c"]"#), none, Pass),
    ]);
}

#[test]
fn inspect_create_capabilities_and_security_opt() {
    run(vec![
        (
            "cap_sys_admin",
            hc(r#""CapAdd":["cap_sys_admin"]"#),
            none,
            Deny("HostConfig.CapAdd[0]", "SYS_ADMIN is not allowed (cap_add)"),
        ),
        (
            "cap_sys_admin allowed",
            hc(r#""CapAdd":["cap_sys_admin"]"#),
            |r| r.cap_add = vec!["SYS_ADMIN".into()],
            Pass,
        ),
        (
            "allowlist with CAP_ prefix",
            hc(r#""CapAdd":["net_bind_service"]"#),
            |r| r.cap_add = vec!["CAP_NET_BIND_SERVICE".into()],
            Pass,
        ),
        (
            "second cap refused",
            hc(r#""CapAdd":["NET_BIND_SERVICE","NET_ADMIN"]"#),
            |r| r.cap_add = vec!["NET_BIND_SERVICE".into()],
            Deny("HostConfig.CapAdd[1]", "NET_ADMIN"),
        ),
        (
            "ALL",
            hc(r#""CapAdd":["ALL"]"#),
            |r| r.cap_add = vec!["SYS_ADMIN".into()],
            Deny("HostConfig.CapAdd[0]", "ALL is not allowed"),
        ),
        (
            "CAP_ALL",
            hc(r#""CapAdd":["CAP_ALL"]"#),
            |r| r.cap_add = vec!["SYS_ADMIN".into()],
            Deny("HostConfig.CapAdd[0]", "ALL is not allowed"),
        ),
        (
            "ALL listed",
            hc(r#""CapAdd":["all"]"#),
            |r| r.cap_add = vec!["ALL".into()],
            Pass,
        ),
        (
            "non-ASCII cap",
            hc("\"CapAdd\":[\"\u{17f}ys_admin\"]"),
            |r| r.cap_add = vec!["SYS_ADMIN".into()],
            Deny("HostConfig.CapAdd[0]", "non-ASCII"),
        ),
        ("CapDrop ALL", hc(r#""CapDrop":["ALL"]"#), none, Pass),
        ("CapDrop string", hc(r#""CapDrop":"ALL""#), none, Pass),
        (
            "Capabilities 19.03",
            hc(r#""Capabilities":["CAP_SYS_ADMIN"]"#),
            none,
            Deny(
                "HostConfig.Capabilities",
                "replaces the whole capability set",
            ),
        ),
        ("Capabilities empty", hc(r#""Capabilities":[]"#), none, Pass),
        (
            "seccomp=unconfined",
            hc(r#""SecurityOpt":["seccomp=unconfined"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
        (
            "seccomp:unconfined",
            hc(r#""SecurityOpt":["seccomp:unconfined"]"#),
            none,
            Deny(
                "HostConfig.SecurityOpt[0]",
                "\"seccomp=unconfined\" is not allowed (security_opt)",
            ),
        ),
        (
            "seccomp inline profile",
            hc(r#""SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
        (
            "label=disable",
            hc(r#""SecurityOpt":["label=disable"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
        (
            "label:disable",
            hc(r#""SecurityOpt":["label:disable"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "label=disable"),
        ),
        (
            "bare disable",
            hc(r#""SecurityOpt":["disable"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "label=disable"),
        ),
        (
            "apparmor=unconfined",
            hc(r#""SecurityOpt":["apparmor=unconfined"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
        (
            "no-new-privileges=false",
            hc(r#""SecurityOpt":["no-new-privileges=false"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "disabling no-new-privileges"),
        ),
        (
            "no-new-privileges:0 after true",
            hc(r#""SecurityOpt":["no-new-privileges","no-new-privileges:0"]"#),
            none,
            Deny("HostConfig.SecurityOpt[1]", "disabling no-new-privileges"),
        ),
        (
            "no-new-privileges",
            hc(r#""SecurityOpt":["no-new-privileges"]"#),
            none,
            Pass,
        ),
        (
            "no-new-privileges=true",
            hc(
                r#""SecurityOpt":["no-new-privileges=true","no-new-privileges:True","no-new-privileges=1"]"#,
            ),
            none,
            Pass,
        ),
        (
            "no-new-privileges=yes",
            hc(r#""SecurityOpt":["no-new-privileges=yes"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "invalid security option"),
        ),
        (
            "writable-cgroups",
            hc(r#""SecurityOpt":["writable-cgroups=true"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
        (
            "unknown opt",
            hc(r#""SecurityOpt":["foo=bar"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "unknown security option"),
        ),
        (
            "no separator",
            hc(r#""SecurityOpt":["bogus"]"#),
            none,
            Deny("HostConfig.SecurityOpt[0]", "invalid security option"),
        ),
        (
            "allowlisted apparmor",
            hc(r#""SecurityOpt":["apparmor:my-profile"]"#),
            |r| r.security_opt = vec!["apparmor=my-profile".into()],
            Pass,
        ),
        (
            "allowlisted seccomp via ':'",
            hc(r#""SecurityOpt":["seccomp=unconfined"]"#),
            |r| r.security_opt = vec!["seccomp:unconfined".into()],
            Pass,
        ),
        (
            "allowlist is exact",
            hc(r#""SecurityOpt":["apparmor=other"]"#),
            |r| r.security_opt = vec!["apparmor=my-profile".into()],
            Deny("HostConfig.SecurityOpt[0]", "(security_opt)"),
        ),
    ]);
}

#[test]
fn inspect_create_binds() {
    run(vec![
        (
            "docker.sock",
            hc(r#""Binds":["/var/run/docker.sock:/s"]"#),
            none,
            Deny(
                "HostConfig.Binds[0]",
                "host path /var/run/docker.sock is not allowed (bind_sources)",
            ),
        ),
        (
            "docker.sock under allowed /var/run",
            hc(r#""Binds":["/var/run/docker.sock:/s:ro"]"#),
            |r| r.bind_sources = vec!["/var/run".into()],
            Deny("HostConfig.Binds[0]", "(bind_sources)"),
        ),
        (
            "docker.sock under allowed /",
            hc(r#""Binds":["/var/run/docker.sock:/s:ro"]"#),
            |r| r.bind_sources = vec!["/".into()],
            Deny("HostConfig.Binds[0]", "(bind_sources)"),
        ),
        (
            "docker.sock listed exactly",
            hc(r#""Binds":["/var/run/docker.sock:/s:ro"]"#),
            |r| r.bind_sources = vec!["/var/run/docker.sock".into()],
            Pass,
        ),
        (
            "/run ancestor of socket",
            hc(r#""Binds":["/run:/r:ro"]"#),
            |r| r.bind_sources = vec!["/".into()],
            Deny("HostConfig.Binds[0]", "host path /run is not allowed"),
        ),
        (
            "/ listed exactly",
            hc(r#""Binds":["/:/host:ro"]"#),
            |r| r.bind_sources = vec!["/".into()],
            Pass,
        ),
        (
            "/etc",
            hc(r#""Binds":["/etc:/x"]"#),
            none,
            Deny(
                "HostConfig.Binds[0]",
                "host path /etc is not allowed (bind_sources)",
            ),
        ),
        (
            "//etc",
            hc(r#""Binds":["//etc:/x"]"#),
            none,
            Deny(
                "HostConfig.Binds[0]",
                "host path /etc is not allowed (bind_sources)",
            ),
        ),
        (
            "/srv/ci/../../etc",
            hc(r#""Binds":["/srv/ci/../../etc:/x:ro"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "HostConfig.Binds[0]",
                "host path /etc is not allowed (bind_sources)",
            ),
        ),
        (
            "/srv/ci2 vs /srv/ci",
            hc(r#""Binds":["/srv/ci2:/x:ro"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Binds[0]", "host path /srv/ci2 is not allowed"),
        ),
        (
            "/srv/ci itself",
            hc(r#""Binds":["/srv/ci:/x:ro"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Pass,
        ),
        (
            "/srv/ci/sub",
            hc(r#""Binds":["/srv/ci/./sub/:/x:ro"]"#),
            |r| r.bind_sources = vec!["/srv/ci/".into()],
            Pass,
        ),
        (
            "/srv/ci/sub writable",
            hc(r#""Binds":["/srv/ci/sub:/x"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "HostConfig.Binds[0]",
                "must be mounted read-only (require_read_only_binds)",
            ),
        ),
        (
            "/srv/ci/sub rw explicit",
            hc(r#""Binds":["/srv/ci/sub:/x:rw"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Binds[0]", "(require_read_only_binds)"),
        ),
        (
            "/srv/ci/sub writable allowed",
            hc(r#""Binds":["/srv/ci/sub:/x:rw"]"#),
            |r| {
                r.bind_sources = vec!["/srv/ci".into()];
                r.require_read_only_binds = false
            },
            Pass,
        ),
        (
            "relabel Z",
            hc(r#""Binds":["/srv/ci/x:/x:ro,Z"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Binds[0]", "relabel"),
        ),
        (
            "relabel z on volume",
            hc(r#""Binds":["vol:/x:z"]"#),
            none,
            Deny("HostConfig.Binds[0]", "relabel"),
        ),
        (
            "rshared",
            hc(r#""Binds":["/srv/ci/x:/x:ro,rshared"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Binds[0]", "propagation rshared"),
        ),
        (
            "rprivate ok",
            hc(r#""Binds":["/srv/ci/x:/x:ro,rprivate"]"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Pass,
        ),
        (
            "two rw modes",
            hc(r#""Binds":["vol:/x:ro,rw"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind options"),
        ),
        (
            "unknown option",
            hc(r#""Binds":["vol:/x:bogus"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind options"),
        ),
        (
            "named volume",
            hc(r#""Binds":["vol:/data","vol2:/d2:ro,nocopy"]"#),
            none,
            Pass,
        ),
        (
            "named volume refused",
            hc(r#""Binds":["vol:/data"]"#),
            |r| r.allow_named_volumes = false,
            Deny("HostConfig.Binds[0]", "(allow_named_volumes)"),
        ),
        ("anonymous volume", hc(r#""Binds":["/data"]"#), none, Pass),
        (
            "anonymous at /etc is not a bind",
            hc(r#""Binds":["/etc"]"#),
            none,
            Pass,
        ),
        (
            "target /proc",
            hc(r#""Binds":["vol:/proc/x"]"#),
            none,
            Deny("HostConfig.Binds[0]", "(allow_special_mount_targets)"),
        ),
        (
            "target /x/../sys",
            hc(r#""Binds":["vol:/x/../sys"]"#),
            none,
            Deny("HostConfig.Binds[0]", "mount target /sys"),
        ),
        (
            "target / ",
            hc(r#""Binds":["vol:/"]"#),
            none,
            Deny("HostConfig.Binds[0]", "mount target / is refused"),
        ),
        (
            "relative target",
            hc(r#""Binds":["vol:data"]"#),
            none,
            Deny("HostConfig.Binds[0]", "absolute"),
        ),
        (
            "too many colons",
            hc(r#""Binds":["a:/b:ro:x"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind specification"),
        ),
        (
            "dest is a mode",
            hc(r#""Binds":["/foo:ro"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind specification"),
        ),
        (
            "empty dest",
            hc(r#""Binds":["vol:"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind specification"),
        ),
        (
            "empty source",
            hc(r#""Binds":[":/x"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid bind specification"),
        ),
        (
            "relative source",
            hc(r#""Binds":["../etc:/x"]"#),
            none,
            Deny("HostConfig.Binds[0]", "invalid volume name"),
        ),
        (
            "second bind refused",
            hc(r#""Binds":["vol:/a","/etc:/b"]"#),
            none,
            Deny("HostConfig.Binds[1]", "host path /etc"),
        ),
        (
            "VolumesFrom",
            hc(r#""VolumesFrom":["other:ro"]"#),
            none,
            Deny("HostConfig.VolumesFrom[0]", "(allow_volumes_from)"),
        ),
        (
            "VolumesFrom allowed",
            hc(r#""VolumesFrom":["other:ro"]"#),
            |r| r.allow_volumes_from = true,
            Pass,
        ),
        ("VolumesFrom empty", hc(r#""VolumesFrom":[]"#), none, Pass),
        (
            "VolumeDriver",
            hc(r#""VolumeDriver":"convoy""#),
            none,
            Deny("HostConfig.VolumeDriver", "refused"),
        ),
        (
            "Config.Volumes",
            top(r#""Volumes":{"/data":{}}"#),
            none,
            Pass,
        ),
        (
            "Config.Volumes /dev",
            top(r#""Volumes":{"/dev/x":{}}"#),
            none,
            Deny("Volumes[\"/dev/x\"]", "(allow_special_mount_targets)"),
        ),
        (
            "Config.Volumes value string",
            top(r#""Volumes":{"/data":"x"}"#),
            none,
            Deny("Volumes[\"/data\"]", "expected an object"),
        ),
    ]);
}

#[test]
fn inspect_create_mounts() {
    const DRIVER_BIND: &str = r#"{"Type":"volume","Source":"v1","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}"#;
    run(vec![
        (
            "bind /etc",
            mount(r#"{"Type":"bind","Source":"/etc","Target":"/x"}"#),
            none,
            Deny(
                "HostConfig.Mounts[0].Source",
                "host path /etc is not allowed (bind_sources)",
            ),
        ),
        (
            "bind allowed ro",
            mount(r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true}"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Pass,
        ),
        (
            "bind allowed rw",
            mount(r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x"}"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Mounts[0].Source", "(require_read_only_binds)"),
        ),
        (
            "bind ../",
            mount(r#"{"Type":"bind","Source":"/srv/ci/../../etc","Target":"/x","ReadOnly":true}"#),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Mounts[0].Source", "host path /etc"),
        ),
        (
            "bind relative source",
            mount(r#"{"Type":"bind","Source":"etc","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Source", "absolute"),
        ),
        (
            "bind CreateMountpoint",
            mount(
                r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true,"BindOptions":{"CreateMountpoint":true}}"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "HostConfig.Mounts[0].BindOptions.CreateMountpoint",
                "creates directories",
            ),
        ),
        (
            "bind rshared",
            mount(
                r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true,"BindOptions":{"Propagation":"rshared"}}"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Mounts[0].BindOptions.Propagation", "rshared"),
        ),
        (
            "bind ReadOnlyNonRecursive",
            mount(
                r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true,"BindOptions":{"ReadOnlyNonRecursive":true}}"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny(
                "HostConfig.Mounts[0].BindOptions.ReadOnlyNonRecursive",
                "writable",
            ),
        ),
        (
            "bind options ok",
            mount(
                r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true,"BindOptions":{"Propagation":"rprivate","NonRecursive":true,"ReadOnlyForceRecursive":true}}"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Pass,
        ),
        (
            "BindOptions unknown field",
            mount(
                r#"{"Type":"bind","Source":"/srv/ci/x","Target":"/x","ReadOnly":true,"BindOptions":{"Foo":true}}"#,
            ),
            |r| r.bind_sources = vec!["/srv/ci".into()],
            Deny("HostConfig.Mounts[0].BindOptions.Foo", "unknown field"),
        ),
        (
            "volume local bind DriverConfig",
            hc(&format!(r#""Mounts":[{DRIVER_BIND}]"#)),
            none,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig",
                "(allow_mount_driver_config)",
            ),
        ),
        (
            "volume local bind DriverConfig allowed rule",
            hc(&format!(r#""Mounts":[{DRIVER_BIND}]"#)),
            |r| r.allow_mount_driver_config = true,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options",
                "type=none",
            ),
        ),
        (
            "volume local tmpfs DriverConfig",
            mount(
                r#"{"Type":"volume","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs","o":"size=10m"}}}}"#,
            ),
            |r| r.allow_mount_driver_config = true,
            Pass,
        ),
        (
            "volume tmpfs o=bind",
            mount(
                r#"{"Type":"volume","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"/etc","o":"bind"}}}}"#,
            ),
            |r| r.allow_mount_driver_config = true,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options",
                "device=/etc",
            ),
        ),
        (
            "volume DriverConfig other driver",
            mount(
                r#"{"Type":"volume","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"nfs"}}}"#,
            ),
            |r| r.allow_mount_driver_config = true,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Name",
                "refused",
            ),
        ),
        (
            "volume DriverConfig name only",
            mount(
                r#"{"Type":"volume","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"local"}}}"#,
            ),
            none,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig",
                "(allow_mount_driver_config)",
            ),
        ),
        (
            "volume DriverConfig empty",
            mount(
                r#"{"Type":"volume","Source":"v1","Target":"/t","VolumeOptions":{"NoCopy":true,"DriverConfig":{}}}"#,
            ),
            none,
            Pass,
        ),
        (
            "volume DriverConfig null",
            mount(
                r#"{"Type":"volume","Source":"v1","Target":"/t","VolumeOptions":{"DriverConfig":null,"Labels":{"a":"b"}}}"#,
            ),
            none,
            Pass,
        ),
        (
            "volume DriverConfig unknown",
            mount(
                r#"{"Type":"volume","Target":"/t","VolumeOptions":{"DriverConfig":{"Opts":{}}}}"#,
            ),
            none,
            Deny(
                "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Opts",
                "unknown field",
            ),
        ),
        (
            "volume Subpath ..",
            mount(
                r#"{"Type":"volume","Source":"v1","Target":"/t","VolumeOptions":{"Subpath":"a/../../x"}}"#,
            ),
            none,
            Deny("HostConfig.Mounts[0].VolumeOptions.Subpath", "'..'"),
        ),
        (
            "volume Subpath abs",
            mount(
                r#"{"Type":"volume","Source":"v1","Target":"/t","VolumeOptions":{"Subpath":"/x"}}"#,
            ),
            none,
            Deny("HostConfig.Mounts[0].VolumeOptions.Subpath", "relative"),
        ),
        (
            "volume Subpath ok",
            mount(
                r#"{"Type":"volume","Source":"v1","Target":"/t","VolumeOptions":{"Subpath":"a/b"}}"#,
            ),
            none,
            Pass,
        ),
        (
            "volume BindOptions",
            mount(r#"{"Type":"volume","Source":"v1","Target":"/t","BindOptions":{}}"#),
            none,
            Deny(
                "HostConfig.Mounts[0].BindOptions",
                "not valid for mount type",
            ),
        ),
        (
            "volume invalid name",
            mount(r#"{"Type":"volume","Source":"/etc","Target":"/t"}"#),
            none,
            Deny("HostConfig.Mounts[0].Source", "invalid volume name"),
        ),
        (
            "type BIND",
            mount(r#"{"Type":"BIND","Source":"/etc","Target":"/x"}"#),
            none,
            Deny(
                "HostConfig.Mounts[0].Type",
                "mount type \"BIND\" is refused",
            ),
        ),
        (
            "type npipe",
            mount(r#"{"Type":"npipe","Source":"x","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Type", "refused"),
        ),
        (
            "type cluster",
            mount(r#"{"Type":"cluster","Source":"x","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Type", "refused"),
        ),
        (
            "type image",
            mount(r#"{"Type":"image","Source":"busybox","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Type", "refused"),
        ),
        (
            "ImageOptions",
            mount(r#"{"Type":"volume","Target":"/x","ImageOptions":{"Subpath":"x"}}"#),
            none,
            Deny("HostConfig.Mounts[0].ImageOptions", "image mounts"),
        ),
        (
            "no type",
            mount(r#"{"Source":"v","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Type", "required"),
        ),
        (
            "lowercase keys",
            mount(r#"{"type":"bind","source":"/etc","target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].Source", "host path /etc"),
        ),
        (
            "duplicate Source folded",
            mount(r#"{"Type":"volume","Source":"v","source":"/etc","Target":"/x"}"#),
            none,
            Deny("HostConfig.Mounts[0].source", "name the same field"),
        ),
        (
            "unknown Mount field",
            mount(r#"{"Type":"volume","Target":"/x","Foo":1}"#),
            none,
            Deny("HostConfig.Mounts[0].Foo", "unknown field in Mount"),
        ),
        (
            "target /sys",
            mount(r#"{"Type":"volume","Target":"/sys/fs"}"#),
            none,
            Deny(
                "HostConfig.Mounts[0].Target",
                "(allow_special_mount_targets)",
            ),
        ),
        (
            "target /sys allowed",
            mount(r#"{"Type":"volume","Target":"/sys/fs"}"#),
            |r| r.allow_special_mount_targets = true,
            Pass,
        ),
        (
            "tmpfs",
            mount(
                r#"{"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023,"Options":[["noexec"],["nosuid"]]}}"#,
            ),
            none,
            Pass,
        ),
        (
            "tmpfs exec",
            mount(r#"{"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"Options":[["exec"]]}}"#),
            none,
            Deny("HostConfig.Mounts[0].TmpfsOptions.Options[0]", "noexec"),
        ),
        (
            "tmpfs setuid mode",
            mount(r#"{"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"Mode":2559}}"#),
            none,
            Deny("HostConfig.Mounts[0].TmpfsOptions.Mode", "above 1777"),
        ),
        (
            "tmpfs with source",
            mount(r#"{"Type":"tmpfs","Source":"/etc","Target":"/tmp"}"#),
            none,
            Deny("HostConfig.Mounts[0].Source", "no source"),
        ),
        (
            "tmpfs size cap missing",
            mount(r#"{"Type":"tmpfs","Target":"/tmp"}"#),
            |r| r.max_tmpfs_bytes = Some(1 << 20),
            Deny(
                "HostConfig.Mounts[0].TmpfsOptions.SizeBytes",
                "(max_tmpfs_bytes)",
            ),
        ),
        (
            "tmpfs size cap over",
            mount(r#"{"Type":"tmpfs","Target":"/tmp","TmpfsOptions":{"SizeBytes":2097152}}"#),
            |r| r.max_tmpfs_bytes = Some(1 << 20),
            Deny(
                "HostConfig.Mounts[0].TmpfsOptions.SizeBytes",
                "(max_tmpfs_bytes)",
            ),
        ),
        (
            "Mounts null element",
            hc(r#""Mounts":[null]"#),
            none,
            Deny("HostConfig.Mounts[0]", "expected an object"),
        ),
        (
            "HostConfig.Tmpfs",
            hc(r#""Tmpfs":{"/run":"size=64m,mode=1777,noexec,nosuid"}"#),
            none,
            Pass,
        ),
        (
            "HostConfig.Tmpfs /proc",
            hc(r#""Tmpfs":{"/proc/x":""}"#),
            none,
            Deny(
                "HostConfig.Tmpfs[\"/proc/x\"]",
                "(allow_special_mount_targets)",
            ),
        ),
        (
            "HostConfig.Tmpfs exec",
            hc(r#""Tmpfs":{"/run":"exec"}"#),
            none,
            Deny("HostConfig.Tmpfs[\"/run\"]", "tmpfs option \"exec\""),
        ),
        (
            "HostConfig.Tmpfs size cap",
            hc(r#""Tmpfs":{"/run":"noexec"}"#),
            |r| r.max_tmpfs_bytes = Some(1 << 26),
            Deny("HostConfig.Tmpfs[\"/run\"]", "(max_tmpfs_bytes)"),
        ),
        (
            "HostConfig.Tmpfs size ok",
            hc(r#""Tmpfs":{"/run":"size=64m"}"#),
            |r| r.max_tmpfs_bytes = Some(1 << 26),
            Pass,
        ),
        (
            "HostConfig.Tmpfs size 0 = unlimited",
            hc(r#""Tmpfs":{"/run":"size=0"}"#),
            |r| r.max_tmpfs_bytes = Some(1 << 26),
            Deny("HostConfig.Tmpfs[\"/run\"]", "(max_tmpfs_bytes)"),
        ),
    ]);
}

#[test]
fn inspect_create_namespaces_and_networks() {
    let allow_ns: Tweak = |r| r.allow_host_namespaces = true;
    run(vec![
        ("NetworkMode host", hc(r#""NetworkMode":"host""#), none, Deny("HostConfig.NetworkMode", "(allow_host_namespaces)")),
        ("NetworkMode HOST", hc(r#""NetworkMode":"HOST""#), none, Deny("HostConfig.NetworkMode", "(allow_host_namespaces)")),
        ("NetworkMode container:abc", hc(r#""NetworkMode":"container:abc""#), none, Deny("HostConfig.NetworkMode", "(allow_host_namespaces)")),
        ("NetworkMode host allowed", hc(r#""NetworkMode":"host""#), allow_ns, Pass),
        ("NetworkMode none/bridge/default", hc(r#""NetworkMode":"bridge""#), none, Pass),
        ("NetworkMode default", hc(r#""NetworkMode":"default""#), none, Pass),
        ("PidMode host", hc(r#""PidMode":"host""#), none, Deny("HostConfig.PidMode", "(allow_host_namespaces)")),
        ("PidMode container:abc", hc(r#""PidMode":"container:abc""#), none, Deny("HostConfig.PidMode", "(allow_host_namespaces)")),
        ("PidMode container:abc allowed", hc(r#""PidMode":"container:abc""#), allow_ns, Pass),
        ("PidMode private", hc(r#""PidMode":"private""#), none, Deny("HostConfig.PidMode", "unknown pid mode")),
        ("IpcMode host", hc(r#""IpcMode":"host""#), none, Deny("HostConfig.IpcMode", "(allow_host_namespaces)")),
        ("IpcMode container:abc", hc(r#""IpcMode":"container:abc""#), none, Deny("HostConfig.IpcMode", "(allow_host_namespaces)")),
        ("IpcMode shareable", hc(r#""IpcMode":"shareable""#), none, Deny("HostConfig.IpcMode", "(allow_shareable_ipc)")),
        ("IpcMode private/none", hc(r#""IpcMode":"private""#), none, Pass),
        ("IpcMode none", hc(r#""IpcMode":"none""#), none, Pass),
        ("UTSMode host", hc(r#""UTSMode":"host""#), none, Deny("HostConfig.UTSMode", "(allow_host_namespaces)")),
        ("UsernsMode host", hc(r#""UsernsMode":"host""#), none, Deny("HostConfig.UsernsMode", "(allow_host_namespaces)")),
        ("UsernsMode bogus", hc(r#""UsernsMode":"private""#), none, Deny("HostConfig.UsernsMode", "unknown userns mode")),
        ("CgroupnsMode host", hc(r#""CgroupnsMode":"host""#), none, Deny("HostConfig.CgroupnsMode", "(allow_host_namespaces)")),
        ("CgroupnsMode private", hc(r#""CgroupnsMode":"private""#), none, Pass),
        ("Cgroup container:abc", hc(r#""Cgroup":"container:abc""#), none, Deny("HostConfig.Cgroup", "(allow_host_namespaces)")),
        ("Cgroup other", hc(r#""Cgroup":"foo""#), none, Deny("HostConfig.Cgroup", "unknown cgroup mode")),
        ("user network", hc(r#""NetworkMode":"mynet""#), none, Deny("HostConfig.NetworkMode", "network \"mynet\" is not allowed (networks)")),
        ("user network allowed", hc(r#""NetworkMode":"ci-net""#), |r| r.networks = vec!["ci-*".into()], Pass),
        ("hex network name", hc(r#""NetworkMode":"abc123""#), |r| r.networks = vec!["*".into()], Deny("HostConfig.NetworkMode", "ID prefix")),
        ("hex network listed exactly", hc(r#""NetworkMode":"abc123""#), |r| r.networks = vec!["abc123".into()], Pass),
        ("endpoint host", top(r#""NetworkingConfig":{"EndpointsConfig":{"host":{}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.host", "(allow_host_namespaces)")),
        ("endpoint user network", top(r#""NetworkingConfig":{"EndpointsConfig":{"other":{}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.other", "(networks)")),
        ("endpoint static ip", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":"172.17.0.9"}}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.IPAMConfig.IPv4Address", "(allow_static_ips)")),
        ("endpoint static ip allowed", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":"172.17.0.9","LinkLocalIPs":["169.254.1.1"]}}}}"#), |r| r.allow_static_ips = true, Pass),
        ("endpoint empty IPAMConfig", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":"","IPv6Address":"","LinkLocalIPs":[]}}}}"#), none, Pass),
        ("endpoint DriverOpts", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"x"}}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.DriverOpts[\"com.docker.network.endpoint.sysctls\"]", "refused")),
        ("endpoint MacAddress", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"02:42:ac:11:00:04"}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.MacAddress", "(allow_mac_address)")),
        ("endpoint Links", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"Links":["db"]}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.Links[0]", "(allow_links)")),
        ("endpoint NetworkID", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"NetworkID":"abc"}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.NetworkID", "read-only")),
        ("endpoint unknown field", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"Foo":1}}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge.Foo", "unknown field in EndpointSettings")),
        ("endpoint aliases", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["web"],"DNSNames":["web"],"GwPriority":1}}}"#), none, Pass),
        ("endpoint null", top(r#""NetworkingConfig":{"EndpointsConfig":{"bridge":null}}"#), none, Deny("NetworkingConfig.EndpointsConfig.bridge", "null")),
        ("NetworkingConfig unknown", top(r#""NetworkingConfig":{"Foo":{}}"#), none, Deny("NetworkingConfig.Foo", "unknown field")),
        ("MacAddress top", top(r#""MacAddress":"02:42:ac:11:00:04""#), none, Deny("MacAddress", "(allow_mac_address)")),
        ("MacAddress empty", top(r#""MacAddress":"""#), none, Pass),
        ("Links", hc(r#""Links":["db:db"]"#), none, Deny("HostConfig.Links[0]", "(allow_links)")),
        ("PortBindings", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#), none, Deny("HostConfig.PortBindings[\"80/tcp\"][0]", "(allow_port_bindings)")),
        ("PortBindings all interfaces", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#), |r| r.allow_port_bindings = true, Deny("HostConfig.PortBindings[\"80/tcp\"][0].HostIp", "0.0.0.0 is not allowed (port_host_ips)")),
        ("PortBindings low port", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"80"}]}"#), |r| r.allow_port_bindings = true, Deny("HostConfig.PortBindings[\"80/tcp\"][0].HostPort", "(min_host_port)")),
        ("PortBindings range", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"900-9000"}]}"#), |r| r.allow_port_bindings = true, Deny("HostConfig.PortBindings[\"80/tcp\"][0].HostPort", "(min_host_port)")),
        ("PortBindings ok", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"},{"HostIp":"::1"}]}"#), |r| r.allow_port_bindings = true, Pass),
        ("PortBindings null list", hc(r#""PortBindings":{"80/tcp":null,"81/tcp":[]}"#), none, Pass),
        ("PortBindings unknown", hc(r#""PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","Foo":1}]}"#), |r| r.allow_port_bindings = true, Deny("HostConfig.PortBindings[\"80/tcp\"][0].Foo", "unknown field")),
        ("PublishAllPorts", hc(r#""PublishAllPorts":true"#), none, Deny("HostConfig.PublishAllPorts", "(allow_publish_all_ports)")),
        ("ExtraHosts host-gateway", hc(r#""ExtraHosts":["a:1.2.3.4","h:host-gateway"]"#), none, Deny("HostConfig.ExtraHosts[1]", "(allow_host_gateway)")),
        ("ExtraHosts ok", hc(r#""ExtraHosts":["a:1.2.3.4"],"Dns":["1.1.1.1"],"DnsSearch":["x"],"DnsOptions":["ndots:1"]"#), none, Pass),
    ]);
}

#[test]
fn inspect_create_devices_sysctls_runtime_paths() {
    run(vec![
        ("Devices", hc(r#""Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]"#), none, Deny("HostConfig.Devices[0]", "host device \"/dev/sda\" is not allowed (allow_devices)")),
        ("Devices allowed", hc(r#""Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"}]"#), |r| r.allow_devices = true, Pass),
        ("Devices unknown field", hc(r#""Devices":[{"PathOnHost":"/dev/fuse","Foo":1}]"#), |r| r.allow_devices = true, Deny("HostConfig.Devices[0].Foo", "unknown field")),
        ("DeviceRequests", hc(r#""DeviceRequests":[{"Driver":"nvidia","Count":-1,"Capabilities":[["gpu"]]}]"#), none, Deny("HostConfig.DeviceRequests[0]", "(allow_devices)")),
        ("DeviceCgroupRules", hc(r#""DeviceCgroupRules":["c *:* rwm"]"#), none, Deny("HostConfig.DeviceCgroupRules[0]", "(allow_devices)")),
        ("LD_PRELOAD with GPU", r#"{"Image":"busybox","Env":["A=1","LD_PRELOAD=/x.so"],"HostConfig":{"DeviceRequests":[{"Driver":"nvidia","Count":1}]}}"#.into(), |r| r.allow_devices = true, Deny("Env[1]", "CVE-2025-23266")),
        ("LD_PRELOAD without GPU", r#"{"Image":"busybox","Env":["LD_PRELOAD=/x.so"]}"#.into(), none, Pass),
        ("Sysctls", hc(r#""Sysctls":{"kernel.shm_rmid_forced":"1"}"#), none, Deny("HostConfig.Sysctls[\"kernel.shm_rmid_forced\"]", "(sysctls)")),
        ("Sysctls allowed", hc(r#""Sysctls":{"net.ipv4.ping_group_range":"0 0"}"#), |r| r.sysctls = vec!["net.ipv4.*".into()], Pass),
        ("Sysctls case-sensitive", hc(r#""Sysctls":{"NET.ipv4.x":"1"}"#), |r| r.sysctls = vec!["net.ipv4.*".into()], Deny("HostConfig.Sysctls[\"NET.ipv4.x\"]", "(sysctls)")),
        ("CgroupParent", hc(r#""CgroupParent":"/""#), none, Deny("HostConfig.CgroupParent", "(allow_cgroup_parent)")),
        ("CgroupParent allowed", hc(r#""CgroupParent":"ci.slice""#), |r| r.allow_cgroup_parent = true, Pass),
        ("Runtime", hc(r#""Runtime":"runsc""#), none, Deny("HostConfig.Runtime", "(runtimes)")),
        ("Runtime allowed", hc(r#""Runtime":"runsc""#), |r| r.runtimes = vec!["runsc".into()], Pass),
        ("Isolation hyperv", hc(r#""Isolation":"hyperv""#), none, Deny("HostConfig.Isolation", "refused")),
        ("Isolation default", hc(r#""Isolation":"Default""#), none, Pass),
        ("MaskedPaths []", hc(r#""MaskedPaths":[]"#), none, Deny("HostConfig.MaskedPaths", "(allow_unmasked_paths)")),
        ("ReadonlyPaths []", hc(r#""ReadonlyPaths":[]"#), none, Deny("HostConfig.ReadonlyPaths", "missing /proc/bus")),
        ("ReadonlyPaths shrunk", hc(r#""ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sysrq-trigger"]"#), none, Deny("HostConfig.ReadonlyPaths", "missing /proc/sys")),
        ("MaskedPaths superset", hc(r#""MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware","/proc/extra"]"#), none, Pass),
        ("MaskedPaths [] allowed", hc(r#""MaskedPaths":[],"ReadonlyPaths":[]"#), |r| r.allow_unmasked_paths = true, Pass),
        ("MaskedPaths null", hc(r#""MaskedPaths":null,"ReadonlyPaths":null"#), none, Pass),
        ("Annotations", hc(r#""Annotations":{"io.kubernetes.cri.x":"y"}"#), none, Deny("HostConfig.Annotations[\"io.kubernetes.cri.x\"]", "(allow_annotations)")),
        ("Annotations empty", hc(r#""Annotations":{}"#), none, Pass),
        ("GroupAdd", hc(r#""GroupAdd":["disk"]"#), none, Deny("HostConfig.GroupAdd[0]", "(group_add)")),
        ("GroupAdd allowed", hc(r#""GroupAdd":["audio"]"#), |r| r.group_add = vec!["audio".into()], Pass),
        ("StorageOpt", hc(r#""StorageOpt":{"size":"10G"}"#), none, Deny("HostConfig.StorageOpt.size", "(max_storage_size_bytes)")),
        ("StorageOpt capped ok", hc(r#""StorageOpt":{"size":"10G"}"#), |r| r.max_storage_size_bytes = Some(20 << 30), Pass),
        ("StorageOpt capped over", hc(r#""StorageOpt":{"size":"30G"}"#), |r| r.max_storage_size_bytes = Some(20 << 30), Deny("HostConfig.StorageOpt.size", "(max_storage_size_bytes)")),
        ("StorageOpt other key", hc(r#""StorageOpt":{"dm.basesize":"1"}"#), |r| r.max_storage_size_bytes = Some(20 << 30), Deny("HostConfig.StorageOpt[\"dm.basesize\"]", "refused")),
        ("LogConfig syslog", hc(r#""LogConfig":{"Type":"syslog","Config":{}}"#), none, Deny("HostConfig.LogConfig.Type", "(log_drivers)")),
        ("LogConfig json-file", hc(r#""LogConfig":{"Type":"json-file","Config":{"max-size":"10m","max-file":"3","compress":"true"}}"#), none, Pass),
        ("LogConfig option", hc(r#""LogConfig":{"Type":"json-file","Config":{"env":"X"}}"#), none, Deny("HostConfig.LogConfig.Config.env", "refused")),
        ("LogConfig size cap", hc(r#""LogConfig":{"Type":"json-file","Config":{"max-size":"1g"}}"#), |r| r.max_log_size_bytes = Some(100 << 20), Deny("HostConfig.LogConfig.Config.max-size", "(max_log_size_bytes)")),
        ("LogConfig unknown", hc(r#""LogConfig":{"Type":"","Driver":"x"}"#), none, Deny("HostConfig.LogConfig.Driver", "unknown field")),
        ("VolumeDriver empty", hc(r#""VolumeDriver":"""#), none, Pass),
        ("ConsoleSize negative", hc(r#""ConsoleSize":[-1,0]"#), none, Deny("HostConfig.ConsoleSize[0]", "negative")),
        ("WorkingDir /proc", top(r#""WorkingDir":"/proc/self/fd/8""#), none, Deny("WorkingDir", "CVE-2024-21626")),
        ("WorkingDir /x/../proc", top(r#""WorkingDir":"/x/../proc/1/cwd""#), none, Deny("WorkingDir", "/proc")),
        ("WorkingDir relative", top(r#""WorkingDir":"app""#), none, Deny("WorkingDir", "absolute")),
        ("WorkingDir ok", top(r#""WorkingDir":"/app""#), none, Pass),
        ("Healthcheck tiny interval", top(r#""Healthcheck":{"Test":["CMD","true"],"Interval":1000}"#), none, Deny("Healthcheck.Interval", "at least 1s")),
        ("Healthcheck ok", top(r#""Healthcheck":{"Test":["CMD","true"],"Interval":2000000000,"Timeout":1000000000,"Retries":3}"#), none, Pass),
        ("StopTimeout cap", top(r#""StopTimeout":-1"#), |r| r.max_stop_timeout_secs = Some(600), Deny("StopTimeout", "(max_stop_timeout_secs)")),
        ("StopTimeout any", top(r#""StopTimeout":-1"#), none, Pass),
        ("reserved label", top(r#""Labels":{"Sockwarden.Owner ":"me"}"#), |r| r.reserved_labels = vec!["sockwarden.owner".into()], Deny("Labels[\"Sockwarden.Owner \"]", "reserved")),
        ("non-ASCII label", top("\"Labels\":{\"sockwarden.\u{43e}wner\":\"me\"}"), |r| r.reserved_labels = vec!["sockwarden.owner".into()], Deny("Labels[\"sockwarden.оwner\"]", "non-ASCII")),
        ("other label", top(r#""Labels":{"app":"x"}"#), |r| r.reserved_labels = vec!["sockwarden.owner".into()], Pass),
        ("volume mount reserved label", mount(r#"{"Type":"volume","Target":"/x","VolumeOptions":{"Labels":{"sockwarden.owner":"x"}}}"#), |r| r.reserved_labels = vec!["sockwarden.owner".into()], Deny("HostConfig.Mounts[0].VolumeOptions.Labels[\"sockwarden.owner\"]", "reserved")),
    ]);
}

#[test]
fn inspect_create_users_images_limits() {
    let nonroot: Tweak = |r| r.allow_root_user = false;
    let mem: Tweak = |r| r.max_memory_bytes = Some(1 << 30);
    let pids: Tweak = |r| r.max_pids = Some(100);
    let cpus: Tweak = |r| r.max_nano_cpus = Some(2_000_000_000);
    let images: Tweak = |r| r.images = vec!["docker.io/library/*".into(), "ghcr.io/org/app".into()];
    run(vec![
        ("User 0", top(r#""User":"0""#), nonroot, Deny("User", "User \"0\" runs as root (allow_root_user)")),
        ("User 00", top(r#""User":"00""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User +0", top(r#""User":"+0""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User 0:0", top(r#""User":"0:0""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User root", top(r#""User":"root""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User root:x", top(r#""User":"root:x""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User 1000:0", top(r#""User":"1000:0""#), nonroot, Deny("User", "(allow_root_user)")),
        ("User empty", top(r#""User":"""#), nonroot, Deny("User", "image's default user")),
        ("User absent", r#"{"Image":"busybox"}"#.into(), nonroot, Deny("User", "(allow_root_user)")),
        ("User null", top(r#""User":null"#), nonroot, Deny("User", "(allow_root_user)")),
        ("User 1000", top(r#""User":"1000""#), nonroot, Pass),
        ("User 1000:1000", top(r#""User":"1000:1000""#), nonroot, Pass),
        ("User app", top(r#""User":"app""#), nonroot, Pass),
        ("User root allowed by default", top(r#""User":"root""#), none, Pass),
        ("User lowercase key", top(r#""user":"0""#), nonroot, Deny("User", "(allow_root_user)")),
        ("image busybox", r#"{"Image":"busybox"}"#.into(), images, Pass),
        ("image busybox tag", r#"{"Image":"busybox:1.36"}"#.into(), images, Pass),
        ("image ghcr app", r#"{"Image":"ghcr.io/org/app:v2"}"#.into(), images, Pass),
        ("image ghcr other", r#"{"Image":"ghcr.io/org/other"}"#.into(), images, Deny("Image", "image ghcr.io/org/other:latest is not allowed (images)")),
        ("image user repo", r#"{"Image":"evil/busybox"}"#.into(), images, Deny("Image", "(images)")),
        ("image ID", r#"{"Image":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#.into(), images, Deny("Image", "image ID")),
        ("image hex prefix", r#"{"Image":"a1b2c3"}"#.into(), images, Deny("Image", "ID prefix")),
        ("image uppercase", r#"{"Image":"BusyBox"}"#.into(), images, Deny("Image", "(images)")),
        ("image absent", r#"{"Cmd":["x"]}"#.into(), images, Deny("Image", "Image is required")),
        ("image any by default", r#"{"Image":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#.into(), none, Pass),
        ("image literal pattern", r#"{"Image":"docker.io/library/busybox:1"}"#.into(), |r| r.images = vec!["busybox".into()], Pass),
        ("image literal pattern other", r#"{"Image":"busyboxx"}"#.into(), |r| r.images = vec!["busybox".into()], Deny("Image", "(images)")),
        // Glob patterns naming no registry get Docker's defaults, as references do.
        ("glob org pattern", r#"{"Image":"myorg/app:1"}"#.into(), |r| r.images = vec!["myorg/*".into()], Pass),
        ("glob org pattern other org", r#"{"Image":"evil/myorg-app"}"#.into(), |r| r.images = vec!["myorg/*".into()], Deny("Image", "(images)")),
        ("glob org pattern other registry", r#"{"Image":"ghcr.io/myorg/app"}"#.into(), |r| r.images = vec!["myorg/*".into()], Deny("Image", "(images)")),
        ("glob official pattern", r#"{"Image":"busybox:1.36"}"#.into(), |r| r.images = vec!["busy*".into()], Pass),
        ("glob official pattern user repo", r#"{"Image":"busyuser/x"}"#.into(), |r| r.images = vec!["busy*".into()], Deny("Image", "(images)")),
        ("glob index.docker.io", r#"{"Image":"myorg/app"}"#.into(), |r| r.images = vec!["index.docker.io/myorg/*".into()], Pass),
        ("glob any registry", r#"{"Image":"ghcr.io/x/app"}"#.into(), |r| r.images = vec!["*/app".into()], Pass),
        ("glob everything", r#"{"Image":"ghcr.io/x/app"}"#.into(), |r| r.images = vec!["*".into()], Pass),
        ("image tag pattern", r#"{"Image":"busybox:1.36"}"#.into(), |r| r.images = vec!["busybox:1.35".into()], Deny("Image", "(images)")),
        ("memory missing", r#"{"Image":"busybox"}"#.into(), mem, Deny("HostConfig.Memory", "Memory is required (at most 1073741824) (max_memory_bytes)")),
        ("memory zero", hc(r#""Memory":0"#), mem, Deny("HostConfig.Memory", "(max_memory_bytes)")),
        ("memory over", hc(r#""Memory":2147483648"#), mem, Deny("HostConfig.Memory", "exceeds")),
        ("memory ok", hc(r#""Memory":536870912"#), mem, Pass),
        ("memory negative", hc(r#""Memory":-1"#), none, Deny("HostConfig.Memory", "negative")),
        ("MemorySwap -1", hc(r#""Memory":536870912,"MemorySwap":-1"#), none, Deny("HostConfig.MemorySwap", "unlimited swap")),
        ("MemorySwap < Memory", hc(r#""Memory":536870912,"MemorySwap":1024"#), none, Deny("HostConfig.MemorySwap", "at least Memory")),
        ("MemoryReservation > Memory", hc(r#""Memory":536870912,"MemoryReservation":636870912"#), none, Deny("HostConfig.MemoryReservation", "between 0 and Memory")),
        ("MemorySwappiness", hc(r#""MemorySwappiness":101"#), none, Deny("HostConfig.MemorySwappiness", "0..=100")),
        ("pids missing", r#"{"Image":"busybox"}"#.into(), pids, Deny("HostConfig.PidsLimit", "(max_pids)")),
        ("pids null", hc(r#""PidsLimit":null"#), pids, Deny("HostConfig.PidsLimit", "required")),
        ("pids 0", hc(r#""PidsLimit":0"#), pids, Deny("HostConfig.PidsLimit", "unlimited")),
        ("pids -1", hc(r#""PidsLimit":-1"#), pids, Deny("HostConfig.PidsLimit", "unlimited")),
        ("pids over", hc(r#""PidsLimit":200"#), pids, Deny("HostConfig.PidsLimit", "exceeds")),
        ("pids ok", hc(r#""PidsLimit":50"#), pids, Pass),
        ("pids -1 without cap", hc(r#""PidsLimit":-1"#), none, Pass),
        ("nano missing", r#"{"Image":"busybox"}"#.into(), cpus, Deny("HostConfig.NanoCpus", "(max_nano_cpus)")),
        ("nano ok", hc(r#""NanoCpus":1000000000"#), cpus, Pass),
        ("nano + CpuQuota", hc(r#""NanoCpus":1000000000,"CpuQuota":500000"#), cpus, Deny("HostConfig.CpuQuota", "(max_nano_cpus)")),
        ("CpuQuota -1", hc(r#""CpuQuota":-1"#), none, Deny("HostConfig.CpuQuota", "unlimited")),
        ("CpuShares cap", hc(r#""CpuShares":4096"#), |r| r.max_cpu_shares = Some(1024), Deny("HostConfig.CpuShares", "(max_cpu_shares)")),
        ("CpuRealtimeRuntime", hc(r#""CpuRealtimeRuntime":950000"#), none, Deny("HostConfig.CpuRealtimeRuntime", "real-time")),
        ("CpusetCpus", hc(r#""CpusetCpus":"0-3""#), none, Deny("HostConfig.CpusetCpus", "(allow_cpuset)")),
        ("KernelMemory", hc(r#""KernelMemory":1048576"#), none, Deny("HostConfig.KernelMemory", "kernel memory")),
        ("BlkioWeight", hc(r#""BlkioWeight":500"#), none, Deny("HostConfig.BlkioWeight", "(allow_blkio)")),
        ("BlkioDeviceReadBps", hc(r#""BlkioDeviceReadBps":[{"Path":"/dev/sda","Rate":1}]"#), none, Deny("HostConfig.BlkioDeviceReadBps[0]", "(allow_blkio)")),
        ("OomKillDisable", hc(r#""OomKillDisable":true"#), none, Deny("HostConfig.OomKillDisable", "(allow_oom_kill_disable)")),
        ("OomScoreAdj negative", hc(r#""OomScoreAdj":-500"#), none, Deny("HostConfig.OomScoreAdj", "(allow_negative_oom_score_adj)")),
        ("OomScoreAdj positive", hc(r#""OomScoreAdj":500"#), none, Pass),
        ("OomScoreAdj range", hc(r#""OomScoreAdj":1001"#), none, Deny("HostConfig.OomScoreAdj", "-1000..=1000")),
        ("ShmSize cap", hc(r#""ShmSize":1073741824"#), |r| r.max_shm_size_bytes = Some(64 << 20), Deny("HostConfig.ShmSize", "(max_shm_size_bytes)")),
        ("Ulimits", hc(r#""Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]"#), none, Deny("HostConfig.Ulimits[0]", "(ulimits)")),
        ("Ulimits allowed", hc(r#""Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]"#), |r| { r.ulimits.insert("nofile".into(), 65536); }, Pass),
        ("Ulimits over", hc(r#""Ulimits":[{"Name":"nofile","Soft":1024,"Hard":100000}]"#), |r| { r.ulimits.insert("nofile".into(), 65536); }, Deny("HostConfig.Ulimits[0]", "(ulimits)")),
        ("Ulimits unlimited", hc(r#""Ulimits":[{"Name":"nofile","Soft":-1,"Hard":-1}]"#), |r| { r.ulimits.insert("nofile".into(), 65536); }, Deny("HostConfig.Ulimits[0]", "(ulimits)")),
        ("Ulimits memlock", hc(r#""Ulimits":[{"Name":"memlock","Soft":1,"Hard":1}]"#), |r| { r.ulimits.insert("nofile".into(), 65536); }, Deny("HostConfig.Ulimits[0]", "ulimit \"memlock\" is not allowed")),
        ("Windows CpuCount", hc(r#""CpuCount":2"#), none, Deny("HostConfig.CpuCount", "Windows-only")),
        ("RestartPolicy always", hc(r#""RestartPolicy":{"Name":"always"}"#), none, Deny("HostConfig.RestartPolicy.Name", "(allow_restart_always)")),
        ("RestartPolicy unless-stopped", hc(r#""RestartPolicy":{"Name":"unless-stopped"}"#), none, Deny("HostConfig.RestartPolicy.Name", "(allow_restart_always)")),
        ("RestartPolicy on-failure 0", hc(r#""RestartPolicy":{"Name":"on-failure","MaximumRetryCount":0}"#), none, Deny("HostConfig.RestartPolicy.MaximumRetryCount", "(max_restart_retries)")),
        ("RestartPolicy on-failure 3", hc(r#""RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}"#), none, Pass),
        ("RestartPolicy Always", hc(r#""RestartPolicy":{"Name":"Always"}"#), none, Deny("HostConfig.RestartPolicy.Name", "unknown restart policy")),
        ("RestartPolicy unknown field", hc(r#""RestartPolicy":{"Name":"no","Delay":1}"#), none, Deny("HostConfig.RestartPolicy.Delay", "unknown field")),
        ("all caps together", hc(r#""Memory":536870912,"MemorySwap":536870912,"NanoCpus":1000000000,"PidsLimit":64"#), |r| { r.max_memory_bytes = Some(1 << 30); r.max_memory_swap_bytes = Some(1 << 30); r.max_nano_cpus = Some(2_000_000_000); r.max_pids = Some(100); }, Pass),
    ]);
}

#[test]
fn inspect_create_query() {
    let cases: Vec<(&str, Pairs, Tweak, Expect)> = vec![
        ("no query", vec![], none, Pass),
        ("name", vec![("name", "web")], none, Pass),
        ("name with slash", vec![("name", "/web-1")], none, Pass),
        ("name empty", vec![("name", "")], none, Pass),
        (
            "hex name",
            vec![("name", "abcd1234")],
            none,
            Deny("?name", "ID prefix"),
        ),
        ("short hex name ok", vec![("name", "abc")], none, Pass),
        (
            "invalid name",
            vec![("name", "a b")],
            none,
            Deny("?name", "invalid container name"),
        ),
        (
            "repeated name",
            vec![("name", "a1"), ("name", "b2")],
            none,
            Deny("?name", "repeated"),
        ),
        (
            "platform",
            vec![("platform", "linux/arm64")],
            none,
            Deny("?platform", "(platforms)"),
        ),
        (
            "platform allowed",
            vec![("platform", "linux/arm64")],
            |r| r.platforms = vec!["linux/arm64".into()],
            Pass,
        ),
        (
            "unknown param",
            vec![("Name", "x")],
            none,
            Deny("?Name", "unknown query parameter"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, q, tweak, want)| {
            let mut rules = ContainerRules::default();
            tweak(&mut rules);
            let q: Vec<(String, String)> = q
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            (
                name.to_string(),
                container_create(br#"{"Image":"busybox"}"#, &q, &rules),
                want,
            )
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_create_summary() {
    let body = r#"{"Image":"busybox","User":"1000","HostConfig":{"Binds":["/srv/ci/x:/x:ro","vol:/v"],"CapAdd":["net_bind_service"],"CapDrop":["ALL"],"NetworkMode":"ci-net","Memory":1048576,"PidsLimit":10,"SecurityOpt":["no-new-privileges"],"Tmpfs":{"/run":""}}}"#;
    let rules = ContainerRules {
        bind_sources: vec!["/srv/ci".into()],
        cap_add: vec!["NET_BIND_SERVICE".into()],
        networks: vec!["ci-*".into()],
        ..Default::default()
    };
    let s = container_create(body.as_bytes(), &[("name".into(), "web".into())], &rules).unwrap();
    assert_eq!(s.kind, "container_create");
    assert_eq!(s.name.as_deref(), Some("web"));
    assert_eq!(s.image.as_deref(), Some("docker.io/library/busybox:latest"));
    assert_eq!(s.user.as_deref(), Some("1000"));
    assert_eq!(s.cap_add, vec!["NET_BIND_SERVICE"]);
    assert_eq!(s.cap_drop, vec!["ALL"]);
    assert_eq!(s.named_volumes, vec!["vol"]);
    assert_eq!(s.networks, vec!["ci-net"]);
    assert_eq!(s.limits.memory, Some(1048576));
    assert_eq!(s.limits.pids, Some(10));
    assert_eq!(s.mounts.len(), 3);
    assert_eq!(s.mounts[0].kind, "bind");
    assert_eq!(s.mounts[0].source.as_deref(), Some("/srv/ci/x"));
    assert!(s.mounts[0].read_only);
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"kind\":\"container_create\""), "{json}");
    assert!(
        !json.contains("privileged"),
        "empty fields are skipped: {json}"
    );

    let cli = container_create(CLI_RUN_BODY.as_bytes(), &[], &ContainerRules::default()).unwrap();
    assert_eq!(cli.namespaces, vec!["network=none"]);
    assert!(!cli.privileged && cli.mounts.is_empty() && cli.cap_add.is_empty());
    assert_eq!(cli.restart_policy.as_deref(), Some("no"));
}

#[test]
fn inspect_create_violation_display() {
    let v = container_create(
        &hc(r#""Binds":["/etc:/x"]"#).into_bytes(),
        &[],
        &ContainerRules::default(),
    )
    .unwrap_err();
    assert_eq!(
        v.to_string(),
        "HostConfig.Binds[0]: host path /etc is not allowed (bind_sources)"
    );
}

#[test]
fn inspect_create_large_body() {
    let body = large_create_body(16 * 1024);
    assert!(body.len() >= 16 * 1024);
    let rules = ContainerRules::default();
    assert!(container_create(&body, &[], &rules).is_ok());
    // Rough timing (debug builds are much slower than the release bench).
    let n = 200;
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert!(container_create(&body, &[], &rules).is_ok());
    }
    let per = start.elapsed() / n;
    eprintln!("16 KiB container-create inspection: {per:?} per body");
}

#[test]
fn inspect_update() {
    let mem: Tweak = |r| {
        r.max_memory_bytes = Some(1 << 30);
        r.max_pids = Some(100)
    };
    let cases: Vec<(&str, &str, Tweak, Expect)> = vec![
        ("empty", "{}", none, Pass),
        ("memory ok", r#"{"Memory":536870912}"#, mem, Pass),
        (
            "memory absent = unchanged",
            r#"{"CpuShares":512}"#,
            mem,
            Pass,
        ),
        ("memory 0 = unchanged", r#"{"Memory":0}"#, mem, Pass),
        (
            "memory over",
            r#"{"Memory":2147483648}"#,
            mem,
            Deny("Memory", "(max_memory_bytes)"),
        ),
        (
            "pids 0 unlimited",
            r#"{"PidsLimit":0}"#,
            mem,
            Deny("PidsLimit", "unlimited"),
        ),
        (
            "pids -1",
            r#"{"PidsLimit":-1}"#,
            mem,
            Deny("PidsLimit", "unlimited"),
        ),
        ("pids ok", r#"{"PidsLimit":10}"#, mem, Pass),
        (
            "swap -1",
            r#"{"MemorySwap":-1}"#,
            none,
            Deny("MemorySwap", "unlimited swap"),
        ),
        (
            "quota -1",
            r#"{"CpuQuota":-1}"#,
            none,
            Deny("CpuQuota", "unlimited"),
        ),
        (
            "restart always",
            r#"{"RestartPolicy":{"Name":"always"}}"#,
            none,
            Deny("RestartPolicy.Name", "(allow_restart_always)"),
        ),
        (
            "restart on-failure",
            r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}"#,
            none,
            Pass,
        ),
        (
            "Privileged in update",
            r#"{"Privileged":true}"#,
            none,
            Deny("Privileged", "unknown field in update"),
        ),
        (
            "Binds in update",
            r#"{"Binds":["/:/h"]}"#,
            none,
            Deny("Binds", "unknown field"),
        ),
        (
            "Init in update",
            r#"{"Init":true}"#,
            none,
            Deny("Init", "unknown field"),
        ),
        (
            "devices in update",
            r#"{"Devices":[{"PathOnHost":"/dev/sda"}]}"#,
            none,
            Deny("Devices[0]", "(allow_devices)"),
        ),
        (
            "cgroup parent",
            r#"{"CgroupParent":"/"}"#,
            none,
            Deny("CgroupParent", "(allow_cgroup_parent)"),
        ),
        (
            "lowercase + dup",
            r#"{"memory":1,"Memory":2}"#,
            none,
            Deny("Memory", "name the same field"),
        ),
        (
            "trailing",
            r#"{}{"Memory":1}"#,
            none,
            Deny("(body)", "trailing"),
        ),
        (
            "cpuset",
            r#"{"CpusetCpus":"0"}"#,
            none,
            Deny("CpusetCpus", "(allow_cpuset)"),
        ),
        (
            "oom",
            r#"{"OomKillDisable":true}"#,
            none,
            Deny("OomKillDisable", "(allow_oom_kill_disable)"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, body, tweak, want)| {
            let mut rules = ContainerRules::default();
            tweak(&mut rules);
            (
                name.to_string(),
                container_update(body.as_bytes(), &rules),
                want,
            )
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_start() {
    assert!(container_start(b"").is_ok());
    for body in [
        &b"{}"[..],
        b" ",
        b"null",
        br#"{"Privileged":true,"Binds":["/:/h"]}"#,
    ] {
        let v = container_start(body).unwrap_err();
        assert_eq!(v.field, "(body)");
        assert!(v.reason.contains("API < 1.24"), "{v}");
    }
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert!(container_start_query(&q(&[])).is_ok());
    assert!(container_start_query(&q(&[("detachKeys", "ctrl-x")])).is_ok());
    assert!(container_start_query(&q(&[("checkpoint", "")])).is_ok());
    assert_eq!(
        container_start_query(&q(&[("checkpoint", "cp1")]))
            .unwrap_err()
            .field,
        "?checkpoint"
    );
    assert_eq!(
        container_start_query(&q(&[("checkpoint-dir", "/x")]))
            .unwrap_err()
            .field,
        "?checkpoint-dir"
    );
    assert_eq!(
        container_start_query(&q(&[("foo", "1")]))
            .unwrap_err()
            .field,
        "?foo"
    );
}

#[test]
#[ignore]
fn inspect_perf_probe() {
    let body = large_create_body(16 * 1024);
    let rules = ContainerRules::default();
    let n = 2000u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(crate::inspect::docker_json::parser::parse(&body).is_ok());
    }
    eprintln!("parse: {:?}", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    }
    eprintln!("serde_json::Value: {:?}", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(container_create(&body, &[], &rules).is_ok());
    }
    eprintln!("full: {:?}", t.elapsed() / n);
}
