//! `plugin_pull` / `plugin_upgrade` tables.

use super::{assert_table, Deny, Expect, Pairs, Pass};
use crate::inspect::{plugin_pull, plugin_upgrade, PluginRules};

type Tweak = fn(&mut PluginRules);

fn none(_: &mut PluginRules) {}

fn sshfs(r: &mut PluginRules) {
    r.names = vec!["vieux/sshfs".into()];
}

fn sshfs_network(r: &mut PluginRules) {
    sshfs(r);
    r.privileges = vec!["network=host".into()];
}

/// What docker CLI 28.2.2 sends for `docker plugin install --grant-all-permissions vieux/sshfs`
/// (`POST /plugins/pull?name=&remote=docker.io%2Fvieux%2Fsshfs`).
const CLI_SSHFS: &str = r#"[{"Name":"network","Description":"","Value":["host"]},{"Name":"mount","Description":"","Value":["/var/lib/docker/plugins/"]},{"Name":"device","Description":"","Value":["/dev/fuse"]},{"Name":"capabilities","Description":"","Value":["CAP_SYS_ADMIN"]}]"#;

const REMOTE: &[(&str, &str)] = &[("name", ""), ("remote", "docker.io/vieux/sshfs")];

#[test]
fn inspect_plugin_pull() {
    let cases: Vec<(&str, Pairs, String, Tweak, Expect)> = vec![
        ("no privileges", REMOTE.to_vec(), "[]".into(), sshfs, Pass),
        ("null body", REMOTE.to_vec(), "null".into(), sshfs, Pass),
        (
            "default refuses every plugin",
            REMOTE.to_vec(),
            "[]".into(),
            none,
            Deny(
                "?remote",
                "plugin docker.io/vieux/sshfs:latest is not allowed (names)",
            ),
        ),
        (
            "other plugin",
            vec![("remote", "evil/rootkit")],
            "[]".into(),
            sshfs,
            Deny("?remote", "(names)"),
        ),
        (
            "tagged remote",
            vec![("remote", "vieux/sshfs:next")],
            "[]".into(),
            sshfs,
            Pass,
        ),
        (
            "wildcard names",
            vec![("remote", "registry.example.com/plugins/x:1")],
            "[]".into(),
            |r| r.names = vec!["registry.example.com/plugins/*".into()],
            Pass,
        ),
        (
            "remote missing",
            vec![],
            "[]".into(),
            sshfs,
            Deny("?remote", "required"),
        ),
        (
            "alias not allowed",
            vec![("remote", "vieux/sshfs"), ("name", "trusted/authz")],
            "[]".into(),
            sshfs,
            Deny("?name", "(names)"),
        ),
        (
            "alias allowed",
            vec![("remote", "vieux/sshfs"), ("name", "vieux/sshfs:v2")],
            "[]".into(),
            sshfs,
            Pass,
        ),
        (
            "unknown query",
            vec![("remote", "vieux/sshfs"), ("tag", "x")],
            "[]".into(),
            sshfs,
            Deny("?tag", "unknown query parameter"),
        ),
        (
            "repeated remote",
            vec![("remote", "vieux/sshfs"), ("remote", "evil/x")],
            "[]".into(),
            sshfs,
            Deny("?remote", "repeated"),
        ),
        (
            "cli sshfs body",
            REMOTE.to_vec(),
            CLI_SSHFS.into(),
            sshfs,
            Deny(
                "[0].Value[0]",
                "plugin privilege \"network\" with value \"host\" is not allowed (privileges)",
            ),
        ),
        (
            "cli sshfs body, network allowed",
            REMOTE.to_vec(),
            CLI_SSHFS.into(),
            sshfs_network,
            Deny(
                "[1].Value[0]",
                "\"mount\" with value \"/var/lib/docker/plugins/\" is not allowed (privileges)",
            ),
        ),
        (
            "all granted",
            REMOTE.to_vec(),
            CLI_SSHFS.into(),
            |r| {
                sshfs(r);
                r.privileges = vec![
                    "network".into(),
                    "mount=/var/lib/docker/plugins/".into(),
                    "device=/dev/fuse".into(),
                    "capabilities=CAP_SYS_ADMIN".into(),
                ]
            },
            Pass,
        ),
        (
            "mount /",
            REMOTE.to_vec(),
            r#"[{"Name":"mount","Description":"","Value":["/"]}]"#.into(),
            |r| {
                sshfs(r);
                r.privileges = vec!["mount=/var/lib/docker/plugins/".into()]
            },
            Deny("[0].Value[0]", "\"mount\" with value \"/\""),
        ),
        (
            "allow-all-devices",
            REMOTE.to_vec(),
            r#"[{"Name":"allow-all-devices","Value":["true"]}]"#.into(),
            sshfs,
            Deny("[0].Value[0]", "(privileges)"),
        ),
        (
            "capabilities",
            REMOTE.to_vec(),
            r#"[{"Name":"capabilities","Value":["CAP_SYS_ADMIN"]}]"#.into(),
            sshfs,
            Deny("[0].Value[0]", "(privileges)"),
        ),
        (
            "host pid",
            REMOTE.to_vec(),
            r#"[{"Name":"host pid namespace","Value":["true"]}]"#.into(),
            sshfs,
            Deny("[0].Value[0]", "(privileges)"),
        ),
        (
            "no values",
            REMOTE.to_vec(),
            r#"[{"Name":"mount"}]"#.into(),
            sshfs,
            Deny(
                "[0].Name",
                "plugin privilege \"mount\" is not allowed (privileges)",
            ),
        ),
        (
            "lowercase keys",
            REMOTE.to_vec(),
            r#"[{"name":"mount","value":["/"]}]"#.into(),
            sshfs,
            Deny("[0].Value[0]", "(privileges)"),
        ),
        (
            "folded duplicate",
            REMOTE.to_vec(),
            r#"[{"Name":"network","Value":["host"],"VALUE":["/"]}]"#.into(),
            sshfs_network,
            Deny("[0].VALUE", "name the same field"),
        ),
        (
            "exact duplicate",
            REMOTE.to_vec(),
            r#"[{"Name":"network","Name":"mount","Value":["host"]}]"#.into(),
            sshfs_network,
            Deny("[0].Name", "duplicate key"),
        ),
        (
            "unknown field",
            REMOTE.to_vec(),
            r#"[{"Name":"network","Value":["host"],"Extra":1}]"#.into(),
            sshfs_network,
            Deny("[0].Extra", "unknown field in PluginPrivilege"),
        ),
        (
            "null element",
            REMOTE.to_vec(),
            "[null]".into(),
            sshfs,
            Deny("[0]", "null element"),
        ),
        (
            "object body",
            REMOTE.to_vec(),
            "{}".into(),
            sshfs,
            Deny("(body)", "expected an array"),
        ),
        (
            "trailing",
            REMOTE.to_vec(),
            "[] []".into(),
            sshfs,
            Deny("(body)", "trailing data"),
        ),
        (
            "non-ASCII key",
            REMOTE.to_vec(),
            "[{\"Name\":\"network\",\"Valu\u{212A}\":[\"host\"]}]".into(),
            sshfs_network,
            Deny("[0][\"Valu\u{212A}\"]", "non-ASCII"),
        ),
    ];
    let results = cases
        .into_iter()
        .map(|(name, query, body, tweak, want)| {
            let mut rules = PluginRules::default();
            tweak(&mut rules);
            let q: Vec<(String, String)> = query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (
                format!("{name} [{body}]"),
                plugin_pull(body.as_bytes(), &q, &rules),
                want,
            )
        })
        .collect();
    assert_table(results);
}

#[test]
fn inspect_plugin_upgrade() {
    let q = |r: &str| vec![("remote".to_string(), r.to_string())];
    let mut rules = PluginRules::default();
    sshfs(&mut rules);
    let results = vec![
        (
            "same plugin".to_string(),
            plugin_upgrade(
                b"[]",
                &q("vieux/sshfs:next"),
                Some("vieux/sshfs:latest"),
                &rules,
            ),
            Pass,
        ),
        (
            "foreign installed plugin".to_string(),
            plugin_upgrade(b"[]", &q("vieux/sshfs"), Some("trusted/authz"), &rules),
            Deny("(path)", "(names)"),
        ),
        (
            "no path name".to_string(),
            plugin_upgrade(b"[]", &q("vieux/sshfs"), None, &rules),
            Deny("(path)", "(names)"),
        ),
        (
            "foreign remote".to_string(),
            plugin_upgrade(b"[]", &q("evil/x"), Some("vieux/sshfs"), &rules),
            Deny("?remote", "(names)"),
        ),
        (
            "privileges".to_string(),
            plugin_upgrade(
                CLI_SSHFS.as_bytes(),
                &q("vieux/sshfs"),
                Some("vieux/sshfs"),
                &rules,
            ),
            Deny("[0].Value[0]", "(privileges)"),
        ),
        (
            "name query".to_string(),
            plugin_upgrade(
                b"[]",
                &[
                    ("remote".into(), "vieux/sshfs".into()),
                    ("name".into(), "x".into()),
                ],
                Some("vieux/sshfs"),
                &rules,
            ),
            Deny("?name", "unknown query parameter"),
        ),
    ];
    assert_table(results);
}
