//! Tests of configuration loading and validation.

use super::*;

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../config/sockwarden.toml");
    // The example names the "docker" group, which may not exist on a build machine.
    let text = text.replace("group = \"docker\"", "group = \"0\"");
    let config = Config::parse(&text, "config/sockwarden.toml").unwrap();
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.shutdown_grace, Duration::from_secs(10));
    assert_eq!(
        config.upstream.addr,
        UpstreamAddr::Unix(PathBuf::from("/var/run/docker.sock"))
    );
    assert!(matches!(
        config.listeners[0].addr,
        ListenAddr::Unix {
            mode: 0o660,
            group: Some(0),
            ..
        }
    ));
}

#[test]
fn every_shipped_example_is_valid() {
    let examples = [
        (
            "ci-runner",
            include_str!("../../config/examples/ci-runner.toml"),
        ),
        (
            "dashboard",
            include_str!("../../config/examples/dashboard.toml"),
        ),
        (
            "watchtower",
            include_str!("../../config/examples/watchtower.toml"),
        ),
        (
            "multi-user",
            include_str!("../../config/examples/multi-user.toml"),
        ),
    ];
    for (name, text) in examples {
        let config = Config::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!config.listeners.is_empty(), "{name}");
    }
}

#[test]
fn remote_audit_example_is_valid_with_its_ca_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert.pem()).unwrap();
    let text = include_str!("../../config/examples/remote-audit.toml").replace(
        "/etc/sockwarden/collector-ca.pem",
        ca_path.to_str().unwrap(),
    );
    let config = Config::parse(&text, "remote-audit").unwrap();
    let sinks = &config.audit.sinks;
    assert_eq!(sinks.len(), 2);
    assert_eq!(sinks[0].name, "file");
    assert_eq!(sinks[0].on_failure, crate::audit::OnFailure::Closed);
    assert_eq!(sinks[1].name, "collector");
    assert_eq!(sinks[1].on_failure, crate::audit::OnFailure::Open);
    let crate::audit::SinkConfig::Remote(remote) = &sinks[1].config else {
        panic!("{:?}", sinks[1]);
    };
    assert_eq!(remote.address, "logs.example.net:6514");
    assert_eq!(remote.protocol(), crate::audit::remote::Protocol::Tls);
    assert_eq!(remote.spool_max_bytes, 1 << 30);
    assert_eq!(remote.facility, 10);
    // Without its CA file, `check` names the setting and its line.
    let text = include_str!("../../config/examples/remote-audit.toml");
    let err = Config::parse(text, "remote-audit").unwrap_err().to_string();
    let line = text.lines().position(|l| l.starts_with("ca = ")).unwrap() + 1;
    assert!(
        err.starts_with(&format!(
            "remote-audit line {line}: audit.sinks[1].ca: cannot read"
        )),
        "{err}"
    );
}

#[test]
fn audit_sinks_are_validated_with_their_line() {
    let base = "[[listen]]\nunix = \"/tmp/x.sock\"\n[audit]\n";
    let cases: &[(&str, &str)] = &[
        ("[[audit.sinks]]\npath = \"/a\"\n", "audit.sinks[0].type: required"),
        ("[[audit.sinks]]\ntype = \"tcp\"\n", "audit.sinks[0].type: \"tcp\" is not one of"),
        ("[[audit.sinks]]\ntype = \"file\"\n", "audit.sinks[0].path: required"),
        ("[[audit.sinks]]\ntype = \"file\"\npath = \"a.log\"\n", "audit.sinks[0].path: must be an absolute path"),
        ("[[audit.sinks]]\ntype = \"stdout\"\npath = \"/a\"\n", "audit.sinks[0].path: does not apply to type = \"stdout\""),
        ("[[audit.sinks]]\ntype = \"stdout\"\n[[audit.sinks]]\ntype = \"stdout\"\n", "audit.sinks[1].name: another sink is already named \"stdout\""),
        ("[[audit.sinks]]\ntype = \"remote\"\nspool_dir = \"/s\"\n", "audit.sinks[0].address: required"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"logs:0\"\nspool_dir = \"/s\"\n", "audit.sinks[0].address: \"logs:0\" is not a host:port address (the port must be 1 to 65535)"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"a b:514\"\nspool_dir = \"/s\"\n", "audit.sinks[0].address: \"a b:514\" is not a host:port address (not an IP address or a DNS name)"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"[::1:514\"\nspool_dir = \"/s\"\n", "audit.sinks[0].address:"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\n", "audit.sinks[0].spool_dir: required"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nspool_max_bytes = 10\n", "audit.sinks[0].spool_max_bytes: must be at least 65536"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nprotocol = \"udp\"\n", "audit.sinks[0].protocol: \"udp\" is not one of"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nprotocol = \"tls\"\n", "audit.sinks[0].ca: required with protocol = \"tls\""),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nca = \"/ca.pem\"\n", "audit.sinks[0].ca: only applies with protocol = \"tls\""),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nfacility = \"mars\"\n", "audit.sinks[0].facility: \"mars\" is not one of kern,"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nhostname = \"a b\"\n", "audit.sinks[0].hostname: must be 1 to 255"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\napp_name = \"\"\n", "audit.sinks[0].app_name: must be 1 to 48"),
        ("[[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:514\"\nspool_dir = \"/s\"\nname = \"a b\"\n", "audit.sinks[0].name: must be letters"),
        ("sink = \"file\"\n[[audit.sinks]]\ntype = \"stdout\"\n", "audit.sink: set the sinks either with audit.sink"),
    ];
    for (audit, want) in cases {
        let text = format!("{base}{audit}");
        let err = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(err.contains(want), "{audit}: {err}");
        assert!(err.starts_with("t.toml line "), "{audit}: {err}");
    }
    // The line is the entry's own: the second entry's key, not the first's.
    let text = format!(
        "{base}[[audit.sinks]]\ntype = \"file\"\npath = \"/a.log\"\n[[audit.sinks]]\ntype = \"file\"\npath = \"b.log\"\nname = \"b\"\n"
    );
    let err = Config::parse(&text, "t.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("t.toml line 9: audit.sinks[1].path"),
        "{err}"
    );
    // The single-sink form is unchanged; a valid list keeps its order and on_failure default.
    let config = Config::parse(
        &format!("{base}on_failure = \"open\"\n[[audit.sinks]]\ntype = \"stdout\"\n[[audit.sinks]]\ntype = \"remote\"\naddress = \"[::1]:6514\"\nspool_dir = \"/s\"\non_failure = \"closed\"\n"),
        "t.toml",
    )
    .unwrap();
    let sinks = &config.audit.sinks;
    assert_eq!(
        (sinks[0].name.as_str(), sinks[0].on_failure),
        ("stdout", crate::audit::OnFailure::Open)
    );
    assert_eq!(
        (sinks[1].name.as_str(), sinks[1].on_failure),
        ("remote", crate::audit::OnFailure::Closed)
    );
}

#[test]
fn example_documents_every_inspection_setting() {
    use crate::inspect::{
        BuildRules, ContainerRules, ExecRules, NetworkRules, PluginRules, VolumeRules,
    };
    let text = include_str!("../../config/sockwarden.toml");
    let sections = [
        (
            "container",
            toml::to_string(&ContainerRules::default()).unwrap(),
        ),
        ("exec", toml::to_string(&ExecRules::default()).unwrap()),
        ("volume", toml::to_string(&VolumeRules::default()).unwrap()),
        (
            "network",
            toml::to_string(&NetworkRules::default()).unwrap(),
        ),
        ("build", toml::to_string(&BuildRules::default()).unwrap()),
        ("plugin", toml::to_string(&PluginRules::default()).unwrap()),
    ];
    for (section, defaults) in sections {
        for line in defaults.lines().filter(|l| l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap();
            assert!(
                text.contains(&format!("\n{key} = ")) || text.contains(&format!("# {key} = ")),
                "config/sockwarden.toml does not document {section}.{key}"
            );
        }
    }
}

#[test]
fn unknown_key_names_line_and_key() {
    let err = Config::parse("[server]\nheader_read_timout = \"1s\"\n", "f.toml").unwrap_err();
    assert!(err.0.contains("f.toml line 2"), "{err}");
    assert!(err.0.contains("header_read_timout"), "{err}");
}

#[test]
fn semantic_errors_name_the_line_too() {
    let text = "[[listen]]\nunix = \"/tmp/a.sock\"\n\n[[listen]]\nunix = \"/tmp/b.sock\"\nmode = \"999\"\n";
    let err = Config::parse(text, "f.toml").unwrap_err();
    assert!(err.0.starts_with("f.toml line 6: listen[1].mode"), "{err}");
    let text = "[policy.p]\ndeny = []\nallow = [\"contianer.list\"]\n[[client]]\nname = \"c\"\npolicy = \"p\"\n[[listen]]\nunix = \"/tmp/c.sock\"\n";
    let err = Config::parse(text, "f.toml").unwrap_err();
    assert!(err.0.starts_with("f.toml line 3: policy.p.allow"), "{err}");
    // In a list over several lines, the entry's own line, not the list's or the table's.
    let listen = "[[client]]\nname = \"c\"\npolicy = \"p\"\n[[listen]]\nunix = \"/tmp/c.sock\"\n";
    let text = format!(
        "[policy.p]\nprofile = \"read-only\"\nallow = [\n  \"container.list\",\n  \"contianer.logs\",\n]\n{listen}"
    );
    let err = Config::parse(&text, "f.toml").unwrap_err();
    assert!(
        err.0.starts_with(
            "f.toml line 5: policy.p.allow[1]: \"contianer.logs\" matches no operation"
        ),
        "{err}"
    );
    // A guardrail refusal names the entry that opens the dangerous operation.
    let text = format!(
        "[policy.p]\nprofile = \"read-only\"\nallow = [\n  \"container.list\",\n  \"container.export\",\n]\n{listen}"
    );
    let err = Config::parse(&text, "f.toml").unwrap_err();
    assert!(err.0.starts_with("f.toml line 5: policy.p.allow[1]: rule \"allow container.export\" opens container.export"), "{err}");
    let text = format!(
        "[policy.p]\ndeny = [\"system.ping\"]\n\n[[policy.p.rule]]\nname = \"r\"\neffect = \"allow\"\noperations = [\n  \"container.list\",\n  \"image.save\",\n]\n{listen}"
    );
    let err = Config::parse(&text, "f.toml").unwrap_err();
    assert!(
        err.0
            .starts_with("f.toml line 4: policy.p.rule[0]: rule \"r\" opens image.save"),
        "{err}"
    );
    let acknowledged = format!(
        "[policy.p]\nallow = [\"image.save\"]\nallow_dangerous = [\n  \"image.save\",\n  \"image.sav\",\n]\n{listen}"
    );
    let err = Config::parse(&acknowledged, "f.toml").unwrap_err();
    assert!(
        err.0
            .starts_with("f.toml line 5: policy.p.allow_dangerous[1]: \"image.sav\""),
        "{err}"
    );
    let text = text.replace("image.save", "imgae.save");
    let err = Config::parse(&text, "f.toml").unwrap_err();
    assert!(
        err.0
            .starts_with("f.toml line 9: policy.p.rule[0].operations[1]: \"imgae.save\""),
        "{err}"
    );
    let text = "[[client]]\nname = \"c\"\npolicy = \"nope\"\n[[listen]]\nunix = \"/tmp/c.sock\"\n";
    let err = Config::parse(text, "f.toml").unwrap_err();
    assert!(
        err.0.starts_with("f.toml line 3: client[0].policy"),
        "{err}"
    );
    assert_eq!(locate("[server]\nx = 1\n", "upstream.socket"), None);
}

#[test]
fn bad_duration_names_setting() {
    let text = "[server]\nshutdown_grace = \"soon\"\n[[listen]]\nunix = \"/tmp/x.sock\"\n";
    let err = Config::parse(text, "f.toml").unwrap_err();
    assert!(err.0.contains("server.shutdown_grace"), "{err}");
}

#[test]
fn listener_needs_exactly_one_address() {
    let err = Config::parse("[[listen]]\nmode = \"0600\"\n", "f").unwrap_err();
    assert!(err.0.contains("listen[0]"), "{err}");
    let err =
        Config::parse("[[listen]]\ntcp = \"127.0.0.1:1\"\nmode = \"0600\"\n", "f").unwrap_err();
    assert!(err.0.contains("listen[0].mode"), "{err}");
}

#[test]
fn bad_mode_and_group() {
    let err = Config::parse("[[listen]]\nunix = \"/tmp/a\"\nmode = \"999\"\n", "f").unwrap_err();
    assert!(err.0.contains("listen[0].mode"), "{err}");
    let err = Config::parse(
        "[[listen]]\nunix = \"/tmp/a\"\ngroup = \"no-such-group-xyz\"\n",
        "f",
    )
    .unwrap_err();
    assert!(err.0.contains("listen[0].group"), "{err}");
}

#[test]
fn forwarding_to_itself_is_refused() {
    let text = "[upstream]\nsocket = \"/tmp/s.sock\"\n[[listen]]\nunix = \"/tmp/s.sock\"\n";
    let err = Config::parse(text, "f").unwrap_err();
    assert!(err.0.contains("forward to itself"), "{err}");
}

#[test]
fn no_listener_in_file_is_an_error_but_builtin_has_one() {
    assert!(Config::parse("", "f").is_err());
    let builtin = Config::builtin().unwrap();
    assert!(matches!(
        builtin.listeners[0].addr,
        ListenAddr::Unix {
            mode: DEFAULT_SOCKET_MODE,
            ..
        }
    ));
}

#[test]
fn tls_listener_files_are_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(path("other-key.pem"), other_key.serialize_pem()).unwrap();
    std::fs::write(path("ca.pem"), cert.pem()).unwrap();
    let config = |cert: &str, key: &str, ca: &str| {
        format!(
            "[[listen]]\nunix = \"/tmp/x.sock\"\n[[listen]]\ntcp = \"127.0.0.1:2376\"\n\
             tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\n",
            path(cert),
            path(key),
            path(ca)
        )
    };
    let ok = Config::parse(&config("cert.pem", "key.pem", "ca.pem"), "f").unwrap();
    assert!(matches!(ok.listeners[1].addr, ListenAddr::Tls { .. }));
    assert_eq!(
        ok.listeners[1].addr.to_string(),
        "tcp://127.0.0.1:2376 (tls)"
    );
    let err = Config::parse(&config("cert.pem", "missing.pem", "ca.pem"), "f").unwrap_err();
    assert!(err.0.contains("listen[1].tls_key: cannot read"), "{err}");
    let err = Config::parse(&config("cert.pem", "other-key.pem", "ca.pem"), "f").unwrap_err();
    assert!(err.0.contains("listen[1].tls_key:"), "{err}");
    let err = Config::parse(&config("cert.pem", "key.pem", "key.pem"), "f").unwrap_err();
    assert!(err.0.contains("listen[1].tls_client_ca:"), "{err}");
    let err = Config::parse(
        &format!(
            "[[listen]]\ntcp = \"127.0.0.1:2376\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            path("cert.pem"),
            path("key.pem")
        ),
        "f",
    )
    .unwrap_err();
    assert!(err.0.contains("listen[0].tls_client_ca: required"), "{err}");
    let err = Config::parse(
        "[[listen]]\nunix = \"/tmp/x.sock\"\ntls_cert = \"/c.pem\"\n",
        "f",
    )
    .unwrap_err();
    assert!(err.0.contains("listen[0].tls_cert: only applies"), "{err}");
}

#[test]
fn listen_name_and_activation_for_socket_activation() {
    use crate::listener::activation::Activation;
    let base = |extra: &str| {
        format!(
            "[upstream]\nsocket = \"/var/run/docker.sock\"\n\
             [[listen]]\nunix = \"/run/sw/a.sock\"\n{extra}\n\
             [[listen]]\ntcp = \"127.0.0.1:2375\"\nname = \"api\"\n"
        )
    };
    let config =
        Config::parse(&base("name = \"docker\"\nactivation = \"required\""), "t").expect("valid");
    assert_eq!(config.listeners[0].name.as_deref(), Some("docker"));
    assert_eq!(config.listeners[0].activation, Activation::Required);
    assert_eq!(config.listeners[1].activation, Activation::Auto);
    let entries = config.activation_entries();
    assert_eq!(entries[1].name, Some("api"));
    for (extra, expect) in [
        ("name = \"a:b\"", "listen[0].name"),
        ("name = \"\"", "listen[0].name"),
        ("name = \"two words\"", "listen[0].name"),
        ("name = \"api\"", "listen[1].name"),
        (
            "activation = \"sometimes\"",
            "expected one of `auto`, `required`, `off`",
        ),
    ] {
        let err = Config::parse(&base(extra), "t")
            .expect_err(extra)
            .to_string();
        assert!(err.contains(expect), "{extra}: {err}");
    }
}

/// A listener, which every configuration file needs (appended last: it closes any table).
const LISTEN: &str = "\n[[listen]]\nunix = \"/tmp/sw-test.sock\"\n";

#[test]
fn server_limits_are_read_and_checked() {
    let config = Config::parse(LISTEN, "t").unwrap();
    assert_eq!(config.body_read_timeout, DEFAULT_BODY_READ_TIMEOUT);
    assert_eq!(config.max_connections, None);
    assert_eq!(config.workers, None);
    assert!(config.pin_workers, "pinned by default");
    let config = Config::parse(
        &format!(
            "[server]\nbody_read_timeout = \"2s\"\nmax_connections = 300\nworkers = 3\npin_workers = false\n{LISTEN}"
        ),
        "t",
    )
    .unwrap();
    assert_eq!(config.body_read_timeout, Duration::from_secs(2));
    assert_eq!(config.max_connections, Some(300));
    assert_eq!(config.workers, Some(3));
    assert!(!config.pin_workers);
    for (text, setting) in [
        (
            "[server]\nbody_read_timeout = \"0s\"\n",
            "server.body_read_timeout",
        ),
        (
            "[server]\nbody_read_timeout = \"soon\"\n",
            "server.body_read_timeout",
        ),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ("[server]\nworkers = 0\n", "server.workers"),
    ] {
        let err = Config::parse(&format!("{text}{LISTEN}"), "t").unwrap_err();
        assert!(err.0.contains(setting), "{text}: {err}");
    }
}

#[test]
fn check_warns_about_settings_that_invite_exhaustion() {
    let warnings = |text: &str| {
        crate::config::exhaustion_warnings(
            &Config::parse(&format!("{text}{LISTEN}"), "t").unwrap(),
            false,
        )
    };
    // The defaults invite nothing.
    assert_eq!(warnings(""), Vec::<String>::new());
    assert!(LISTEN.starts_with("\n[[listen]]"));
    let w = warnings(
        "[audit]\nsink = \"file\"\npath = \"/var/log/sw.jsonl\"\n[limits]\nmax_connections = 0\nrequests_per_second = 0\n[server]\nbody_read_timeout = \"1h\"\n",
    );
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(w[0].contains("max_connections = 0"), "{w:#?}");
    assert!(w[1].contains("fail-closed file audit log"), "{w:#?}");
    assert!(w[2].contains("server.body_read_timeout"), "{w:#?}");
    // An open audit log cannot refuse everyone; a client's own limits are named.
    let client = "[audit]\nsink = \"file\"\npath = \"/var/log/sw.jsonl\"\non_failure = \"open\"\n[[client]]\nname = \"ci\"\npolicy = \"ci\"\nuids = [1]\n[client.limits]\nmax_connections = 0\n";
    let w = warnings(client);
    // The ci profile's classic builds get a build cgroup found by itself (the default "auto",
    // not looked for without the file system): nothing said about them.
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with("client ci: max_connections"), "{w:#?}");
    // With build_cgroup = "off" they are refused, and said so.
    let w = warnings(&format!("[upstream]\nbuild_cgroup = \"off\"\n{client}"));
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[1].contains("policy ci: caps pids"), "{w:#?}");
    assert!(w[1].contains("classic builds are refused"), "{w:#?}");
}

#[test]
fn isolation_and_owner_label_are_read_and_checked() {
    let base = "[[listen]]\nunix = \"/tmp/sw-iso.sock\"\nclient = \"dev\"\n\
                [[client]]\nname = \"dev\"\npolicy = \"p\"\n";
    let config = Config::parse(
        &format!("{base}[policy.p]\nallow = [\"container.list\"]\nisolation = \"user\"\n"),
        "t.toml",
    )
    .unwrap();
    let policy = config.authority.policy_for("dev").unwrap();
    assert_eq!(policy.isolation, crate::policy::Isolation::User);
    assert_eq!(&**config.authority.owner_label(), "sockwarden.owner");
    // Profiles and policies without the setting do not isolate.
    let config = Config::parse(&format!("{base}[policy.p]\nprofile = \"ci\"\n"), "t.toml").unwrap();
    assert_eq!(
        config.authority.policy_for("dev").unwrap().isolation,
        crate::policy::Isolation::None
    );
    let config = Config::parse(
        &format!("{base}[policy.p]\nisolation = \"client\"\n[isolation]\nowner_label = \"example.com/tenant\"\n"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(&**config.authority.owner_label(), "example.com/tenant");
    for (extra, wanted) in [
        (
            "[policy.p]\nisolation = \"users\"\n",
            "expected one of `none`, `user`, `client`",
        ),
        (
            "[policy.p]\nisolation = \"user\"\ninspection = false\nallow_dangerous = [\"*\"]\n",
            "needs inspection",
        ),
        (
            "[policy.p]\n[isolation]\nowner_label = \"a=b\"\n",
            "isolation.owner_label",
        ),
        (
            "[policy.p]\n[isolation]\nowner_label = \"\"\n",
            "isolation.owner_label",
        ),
        (
            "[policy.p]\n[isolation]\nowner_label = \"a b\"\n",
            "isolation.owner_label",
        ),
        ("[policy.p]\n[isolation]\nlabel = \"x\"\n", "label"),
    ] {
        let err = Config::parse(&format!("{base}{extra}"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{extra}: {err}");
    }
}

#[test]
fn check_warns_about_builds_that_escape_the_caps() {
    let warnings_fs = |text: &str, fs: bool| {
        crate::config::exhaustion_warnings(
            &Config::parse(&format!("{text}{LISTEN}"), "t").unwrap(),
            fs,
        )
        .into_iter()
        .filter(|w| w.starts_with("policy "))
        .collect::<Vec<_>>()
    };
    let warnings = |text: &str| warnings_fs(text, false);
    let ci =
        "[[client]]\nname = \"ci\"\npolicy = \"p\"\nuids = [1]\n[policy.p]\nprofile = \"ci\"\n";
    let off = "[upstream]\nbuild_cgroup = \"off\"\n";
    // Caps pids, allows builds, refuses uncapped ones (the ci profile's default): with
    // build_cgroup "off" they are refused, naming what to set.
    let w = warnings(&format!("{off}{ci}"));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].contains("classic builds are refused"), "{w:#?}");
    assert!(w[0].contains("build_cgroup = \"off\""), "{w:#?}");
    assert!(w[0].contains("build_cgroup = \"auto\""), "{w:#?}");
    // Acknowledged as uncapped: said to be unsafe.
    let acked = format!("{off}{ci}[policy.p.build]\nallow_uncapped_builds = true\n");
    let w = warnings(&acked);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].contains("allow_uncapped_builds"), "{w:#?}");
    assert!(w[0].contains("fork bomb"), "{w:#?}");
    // The default ("auto") and a directory: --no-fs reads no mounts, so nothing is said.
    assert!(warnings(ci).is_empty(), "{:#?}", warnings(ci));
    let not_cgroup = format!("[upstream]\nbuild_cgroup = \"/tmp/not-a-cgroup/builds\"\n{ci}");
    assert!(warnings(&not_cgroup).is_empty());
    // Looked at on this machine: a build_cgroup that is no cgroup directory is named.
    let w = warnings_fs(&not_cgroup, true);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].contains("upstream.build_cgroup"), "{w:#?}");
    assert!(w[0].contains("not below a cgroup"), "{w:#?}");
    // BuildKit: its RUN steps escape the rules (its Dockerfile's fetches are checked over
    // the session now: no warning about them).
    let w = warnings(&format!(
        "{ci}allow = [\"build.session\"]\nallow_dangerous = [\"build.session\"]\n\
         [policy.p.build]\nallow_buildkit = true\nallow_uncapped_builds = true\n"
    ));
    assert!(
        w.iter()
            .any(|w| w.contains("allow_buildkit") && w.contains("RUN steps")),
        "{w:#?}"
    );
    assert!(w.iter().all(|w| !w.contains("ADD <url>")), "{w:#?}");
    assert!(w.iter().all(|w| !w.contains("isolation")), "{w:#?}");
    // Under isolation: its FROM and COPY --from are checked over the session now, so nothing
    // is said about isolation.
    let isolated = format!(
        "{ci}isolation = \"user\"\nallow = [\"build.session\"]\n\
         allow_dangerous = [\"build.session\"]\n\
         [policy.p.build]\nallow_buildkit = true\nallow_uncapped_builds = true\n"
    );
    let w = warnings(&isolated);
    assert!(w.iter().all(|w| !w.contains("isolation")), "{w:#?}");
    assert!(w.iter().any(|w| w.contains("RUN steps")), "{w:#?}");
    let w = warnings(&isolated.replace("allow_buildkit = true", "allow_buildkit = false"));
    assert!(w.iter().all(|w| !w.contains("isolation")), "{w:#?}");
    // No pids cap (a policy of its own; a profile's caps stay under a section of one's own),
    // or no builds: nothing about builds.
    let open = "[[client]]\nname = \"ci\"\npolicy = \"p\"\nuids = [1]\n[policy.p]\n\
                allow = [\"image.build\"]\nallow_dangerous = [\"image.build\"]\n";
    assert!(warnings(open).is_empty(), "{:#?}", warnings(open));
    let no_builds = format!("{off}{ci}deny = [\"image.build\"]\n");
    let w = warnings(&no_builds);
    assert!(w.iter().all(|w| !w.contains("build")), "{w:#?}");
}

#[test]
fn tenant_quotas_are_read_and_need_isolation() {
    let base = "[[listen]]\nunix = \"/tmp/sw-iso.sock\"\nclient = \"dev\"\n\
                [[client]]\nname = \"dev\"\npolicy = \"p\"\n";
    let config = Config::parse(
        &format!(
            "{base}[policy.p]\nprofile = \"ci\"\nisolation = \"user\"\nmax_containers = 5\nmax_volumes = 2\n"
        ),
        "t.toml",
    )
    .unwrap();
    let policy = config.authority.policy_for("dev").unwrap();
    assert_eq!(policy.max_containers, Some(5));
    assert_eq!(policy.max_volumes, Some(2));
    for (extra, wanted) in [
        (
            "max_containers = 5\n",
            "policy.p.max_containers: a per-tenant limit needs isolation",
        ),
        (
            "max_volumes = 1\n",
            "policy.p.max_volumes: a per-tenant limit needs isolation",
        ),
        (
            "isolation = \"user\"\nmax_containers = 0\n",
            "policy.p.max_containers: 0",
        ),
        ("isolation = \"user\"\nmax_volumes = -1\n", "expected u64"),
    ] {
        let err = Config::parse(&format!("{base}[policy.p]\n{extra}"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{extra}: {err}");
    }
}

#[test]
fn a_seal_applies_to_the_one_file_sink_of_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let log = |n: &str| dir.path().join(n).display().to_string();
    let seed = log("seed");
    let base = format!(
        "[[listen]]\nunix = \"/tmp/sw-seal.sock\"\nclient = \"c\"\n\
         [[client]]\nname = \"c\"\npolicy = \"read-only\"\n\
         [audit]\nseal_key = {seed:?}\n"
    );
    let file = |path: &str, name: &str| {
        format!("[[audit.sinks]]\ntype = \"file\"\nname = {name:?}\npath = {path:?}\n")
    };
    // One file entry (beside stdout): sealed, its state next to it.
    let one = format!(
        "{base}{}[[audit.sinks]]\ntype = \"stdout\"\n",
        file(&log("a.log"), "a")
    );
    let config = Config::parse(&one, "t.toml").unwrap();
    let seal = config.audit.seal.as_ref().expect("sealed");
    assert_eq!(config.audit.sinks.len(), 2);
    assert_eq!(
        seal.state,
        std::path::PathBuf::from(format!("{}.seal-state", log("a.log")))
    );
    // Two file entries: which one is sealed would be a guess.
    let two = format!(
        "{base}{}{}",
        file(&log("a.log"), "a"),
        file(&log("b.log"), "b")
    );
    let err = Config::parse(&two, "t.toml").unwrap_err().to_string();
    assert!(
        err.contains("audit.seal_key") && err.contains("has 2"),
        "{err}"
    );
    // No file entry: nothing to seal.
    let none = format!("{base}[[audit.sinks]]\ntype = \"stdout\"\n");
    let err = Config::parse(&none, "t.toml").unwrap_err().to_string();
    assert!(
        err.contains("audit.seal_key") && err.contains("file sink"),
        "{err}"
    );
}
