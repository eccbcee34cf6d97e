//! Unit tests: reading, summarizing, and suggestions checked against the real inspectors.
//!
//! The suggestion tests run request bodies through the real inspector (under settings wide
//! enough to accept them) to get the `settings` the audit log records, suggest a policy from
//! those records, and then check the same bodies against the suggested policy, together with
//! bodies that ask for one thing more, which must be refused.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::*;
use crate::config::Config;
use crate::inspect::{self, ContainerRules};

const CLIENT: &str = "ci";

fn request(op: &str, method: &str, path: &str, decision: &str) -> Record {
    Record {
        time: Some("2026-11-29T08:30:00Z".into()),
        id: Some("r1".into()),
        event: Some("request".into()),
        client: Some(CLIENT.into()),
        method: Some(method.into()),
        raw_path: Some(format!("/v1.43{path}")),
        path: Some(path.into()),
        operation: Some(op.into()),
        decision: Some(decision.into()),
        status: Some(200),
        ..Record::default()
    }
}

fn settings_of(summary: &inspect::Summary) -> Settings {
    let json = serde_json::to_value(summary).unwrap();
    serde_json::from_value(json).unwrap()
}

/// Settings wide enough for every body used here, as a policy that already allowed them would be.
fn wide_rules() -> ContainerRules {
    ContainerRules {
        allow_privileged: true,
        cap_add: vec!["NET_ADMIN".into(), "SYS_PTRACE".into()],
        bind_sources: vec![
            "/srv/ci".into(),
            "/etc/ssl/certs".into(),
            "/var/run/docker.sock".into(),
        ],
        require_read_only_binds: false,
        allow_host_namespaces: true,
        networks: vec!["*".into()],
        allow_devices: true,
        security_opt: vec!["apparmor=ci-profile".into()],
        runtimes: vec!["runsc".into()],
        allow_port_bindings: true,
        port_host_ips: vec!["127.0.0.1".into(), "0.0.0.0".into()],
        min_host_port: 1,
        allow_restart_always: true,
        ulimits: [
            ("nofile".to_owned(), 1 << 20),
            ("nproc".to_owned(), 1 << 20),
        ]
        .into(),
        ..ContainerRules::default()
    }
}

/// A create record as the audit log would hold it for an allowed body.
fn create(body: &str, name: &str) -> Record {
    let query = vec![("name".to_string(), name.to_string())];
    let summary = inspect::container_create(body.as_bytes(), &query, &wide_rules())
        .unwrap_or_else(|v| panic!("wide rules refuse {body}: {v}"));
    let mut r = request("container.create", "POST", "/containers/create", "allow");
    r.query.insert("name".into(), vec![name.into()]);
    r.settings = Some(settings_of(&summary));
    r
}

fn config(policy: &str, policy_name: &str) -> Config {
    let text = format!(
        "[upstream]\nsocket = \"/var/run/docker.sock\"\n[[listen]]\nunix = \"/run/x.sock\"\n\
         client = \"{CLIENT}\"\n[[client]]\nname = \"{CLIENT}\"\npolicy = \"{policy_name}\"\n{policy}"
    );
    Config::parse(&text, "suggestion").unwrap_or_else(|e| panic!("{e}\n{policy}"))
}

/// Whether `config` lets the request through, inspection included.
fn passes(config: &Config, method: &str, target: &str, body: &str) -> Result<(), String> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let authorized = crate::policy::layer::authorize(
        &config.authority,
        Some(Arc::from(CLIENT)),
        &method,
        &uri,
        &HeaderMap::new(),
    )
    .map_err(|e| e.to_string())?;
    crate::inspect::layer::check_request(&authorized, body.as_bytes())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn suggested(records: &[Record]) -> (String, Config) {
    let text = suggest(records, CLIENT, "suggested").unwrap();
    let config = config(&text, "suggested");
    (text, config)
}

fn policy_table(text: &str) -> toml::Table {
    let doc: toml::Table = text.parse().unwrap();
    doc["policy"]["suggested"].as_table().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// Reading

#[test]
fn records_read_leniently() {
    let r = parse_record(
        r#"{"time":"2026-11-29T08:30:00Z","event":"request","client":null,"query":null,
            "violations":null,"settings":{"kind":"container_create","privileged":null,
            "mounts":[{"kind":"bind","source":"/srv","target":"/x","read_only":true,"from":"Binds","new":1}],
            "limits":null,"future":[1,2]},"brand_new_field":{"a":1}}"#,
    )
    .unwrap();
    assert_eq!(r.client, None);
    assert!(r.query.is_empty());
    let s = r.settings.unwrap();
    assert!(!s.privileged);
    assert_eq!(s.mounts[0].source.as_deref(), Some("/srv"));
    // Missing fields are fine too; the event defaults to a request.
    let r = parse_record("{}").unwrap();
    assert!(r.is_request());
    for (line, want) in [
        ("[1,2]", "not a JSON object (a JSON array)"),
        ("\"x\"", "not a JSON object (a JSON string)"),
        ("{\"time\":", "not JSON"),
        ("{\"status\":\"teapot\"}", "not an audit record"),
    ] {
        let err = parse_record(line).unwrap_err();
        assert!(err.starts_with(want), "{line}: {err}");
    }
}

#[test]
fn lines_are_numbered_and_blank_lines_skipped() {
    let text = "{\"event\":\"reload\",\"result\":\"ok\"}\n\n garbage \n{}\n";
    let mut seen = Vec::new();
    read_lines("mem", text.as_bytes(), &mut |at, r| {
        seen.push((at.line, r.is_ok()))
    })
    .unwrap();
    assert_eq!(seen, vec![(1, true), (3, false), (4, true)]);
}

#[test]
fn time_key_orders_fractions() {
    let mut times = vec![
        "2026-11-29T08:30:01Z",
        "2026-11-29T08:30:00.5Z",
        "2026-11-29T08:30:00Z",
        "2026-11-29T08:30:00.123456Z",
    ];
    times.sort_by_key(|t| time_key(t));
    assert_eq!(
        times,
        vec![
            "2026-11-29T08:30:00Z",
            "2026-11-29T08:30:00.123456Z",
            "2026-11-29T08:30:00.5Z",
            "2026-11-29T08:30:01Z",
        ]
    );
    let mut p = Period::default();
    for t in &times {
        p.see(Some(t));
    }
    assert_eq!(p.first.as_deref(), Some("2026-11-29T08:30:00Z"));
    assert_eq!(p.last.as_deref(), Some("2026-11-29T08:30:01Z"));
}

// ---------------------------------------------------------------------------------------------
// Summarize

#[test]
fn summary_counts_clients_rules_refusals_sessions() {
    let mut s = Summarizer::new();
    let mut ping = request("system.ping", "GET", "/_ping", "allow");
    ping.rule = Some("allow system.ping".into());
    ping.policy = Some("ci".into());
    s.record(&ping);
    s.record(&ping);
    let mut exec = request("exec.create", "POST", "/containers/x/exec", "deny");
    exec.policy = Some("ci".into());
    exec.rule = Some("default-deny".into());
    exec.reason = Some("no rule allows exec.create".into());
    exec.status = Some(403);
    exec.time = Some("2026-11-29T08:31:00Z".into());
    s.record(&exec);
    exec.time = Some("2026-11-29T08:29:00Z".into());
    s.record(&exec);
    let mut open = request("container.attach", "POST", "/containers/x/attach", "allow");
    open.event = Some("session_open".into());
    open.id = Some("s1".into());
    open.status = Some(101);
    s.record(&open);
    open.id = Some("s2".into());
    s.record(&open);
    s.record(&Record {
        event: Some("session_close".into()),
        id: Some("s1".into()),
        end: Some("client_gone".into()),
        bytes_out: Some(10),
        ..Record::default()
    });
    s.record(&Record {
        event: Some("reload".into()),
        result: Some("error".into()),
        error: Some("bad".into()),
        ..Record::default()
    });
    let mut stranger = request("container.list", "GET", "/containers/json", "deny");
    stranger.client = None;
    s.record(&stranger);
    s.line(
        LineRef {
            file: "f".into(),
            line: 9,
        },
        Err("not JSON".into()),
    );
    let sum = s.finish();
    assert_eq!(sum.totals.requests, 7);
    assert_eq!(sum.totals.allowed, 4);
    assert_eq!(sum.totals.denied, 3);
    assert_eq!(sum.clients.len(), 2);
    assert_eq!(sum.clients[0].client, "ci");
    assert_eq!(sum.clients[1].client, NO_CLIENT);
    assert_eq!(sum.clients[0].operations["exec.create"].denied, 2);
    assert_eq!(sum.clients[0].statuses["101"], 2);
    let exec_refusal = sum
        .refusals
        .iter()
        .find(|r| r.operation == "exec.create")
        .unwrap();
    assert_eq!(exec_refusal.count, 2);
    assert_eq!(
        exec_refusal.period.first.as_deref(),
        Some("2026-11-29T08:29:00Z")
    );
    assert_eq!(
        exec_refusal.period.last.as_deref(),
        Some("2026-11-29T08:31:00Z")
    );
    assert_eq!(sum.rules[0].rule, "allow system.ping");
    assert_eq!(sum.rules[0].decisions.requests, 2);
    assert_eq!(sum.sessions.opened, 2);
    assert_eq!(sum.sessions.closed, 1);
    assert_eq!(sum.sessions.unclosed, vec!["s2".to_string()]);
    assert_eq!(sum.sessions.ends["client_gone"], 1);
    assert_eq!(sum.reloads.len(), 1);
    assert_eq!(sum.unparseable.len(), 1);
    let text = sum.to_string();
    assert!(text.contains("3 denied"), "{text}");
    assert!(text.contains("f:9: not JSON"), "{text}");
    assert!(text.contains("without a close in the log: s2"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Suggest: rules

#[test]
fn rules_cover_every_operation_seen_and_nothing_else() {
    let records = vec![
        request("system.ping", "GET", "/_ping", "allow"),
        request("container.list", "GET", "/containers/json", "allow"),
        request("exec.create", "POST", "/containers/web/exec", "deny"),
        request(
            "container.logs",
            "GET",
            "/containers/web/logs",
            "would-deny",
        ),
        request("unknown", "GET", "/libpod/info", "deny"),
        {
            let mut bad = request("container.list", "GET", "/x", "deny");
            bad.operation = None;
            bad.path = None;
            bad.status = Some(400);
            bad
        },
        {
            let mut other = request("container.export", "GET", "/containers/web/export", "allow");
            other.client = Some("someone-else".into());
            other
        },
    ];
    let (text, config) = suggested(&records);
    let table = policy_table(&text);
    let allow: Vec<&str> = table["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        allow,
        vec![
            "container.list",
            "container.logs",
            "exec.create",
            "system.ping"
        ]
    );
    let dangerous: Vec<&str> = table["allow_dangerous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(dangerous, vec!["exec.create", "unknown"]);
    assert!(
        text.contains("# NOTE: 1 request without an operation"),
        "{text}"
    );
    assert!(
        text.contains("5 of 5 distinct operation/route pairs"),
        "{text}"
    );

    assert!(passes(&config, "GET", "/v1.43/_ping", "").is_ok());
    assert!(passes(&config, "GET", "/containers/web/logs?follow=1", "").is_ok());
    assert!(passes(&config, "POST", "/containers/web/exec", "{}").is_ok());
    assert!(passes(&config, "GET", "/libpod/info", "").is_ok());
    // What was not seen stays refused: other operations, other methods and paths of unknown
    // routes, another client's operations.
    for (method, target) in [
        ("GET", "/containers/web/export"),
        ("POST", "/containers/create"),
        ("POST", "/exec/abc/start"),
        ("POST", "/libpod/info"),
        ("GET", "/libpod/other"),
        ("GET", "/containers/web/archive?path=/"),
    ] {
        let err = passes(&config, method, target, "").unwrap_err();
        assert!(err.contains("refused"), "{method} {target}: {err}");
    }
}

#[test]
fn session_opens_count_as_requests_and_closes_do_not() {
    let mut open = request(
        "container.attach",
        "POST",
        "/containers/web/attach",
        "allow",
    );
    open.event = Some("session_open".into());
    let mut close = request("exec.start", "POST", "/exec/abc/start", "allow");
    close.event = Some("session_close".into());
    let text = suggest(&[open, close], CLIENT, "suggested").unwrap();
    let table = policy_table(&text);
    assert_eq!(table["allow"].as_array().unwrap().len(), 1);
    assert_eq!(
        table["allow_dangerous"].as_array().unwrap()[0].as_str(),
        Some("container.attach")
    );
}

#[test]
fn no_requests_is_an_error_naming_the_clients_seen() {
    let err = suggest(
        &[request("system.ping", "GET", "/_ping", "allow")],
        "nope",
        "p",
    )
    .unwrap_err();
    assert!(err.0.contains("clients seen: ci"), "{err}");
}

#[test]
fn odd_policy_names_are_quoted() {
    let text = suggest(
        &[request("system.ping", "GET", "/_ping", "allow")],
        CLIENT,
        "ci runner \"x\"",
    )
    .unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert!(doc["policy"].get("ci runner \"x\"").is_some(), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Suggest: inspection, checked with the real inspector

const PLAIN: &str = r#"{"Image":"busybox:1.36","Cmd":["true"]}"#;
const BINDS: &str = r#"{"Image":"golang:1.23","HostConfig":{"Binds":["/srv/ci/cache:/cache","/etc/ssl/certs:/etc/ssl/certs:ro"],"CapAdd":["NET_ADMIN"],"NetworkMode":"ci-4711","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"SecurityOpt":["apparmor=ci-profile","no-new-privileges"]}}"#;
const HOSTNET: &str = r#"{"Image":"ghcr.io/org/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","HostConfig":{"NetworkMode":"host","Runtime":"runsc","RestartPolicy":{"Name":"always"}}}"#;

#[test]
fn inspection_sections_allow_exactly_what_was_seen() {
    let records = vec![
        create(PLAIN, "ci-a"),
        create(BINDS, "ci-b"),
        create(HOSTNET, "ci-c"),
    ];
    let (text, config) = suggested(&records);
    let table = policy_table(&text);
    let c = table["container"].as_table().unwrap();
    assert_eq!(
        c["require_read_only_binds"].as_bool(),
        Some(false),
        "{text}"
    );
    assert_eq!(c["allow_host_namespaces"].as_bool(), Some(true));
    assert_eq!(c["allow_port_bindings"].as_bool(), Some(true));
    assert_eq!(c["allow_restart_always"].as_bool(), Some(true));
    assert!(!c.contains_key("allow_privileged"));
    assert!(
        !c.contains_key("port_host_ips"),
        "127.0.0.1 is in the default"
    );
    let list = |k: &str| -> Vec<String> {
        c[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        list("bind_sources"),
        vec!["/etc/ssl/certs", "/srv/ci/cache"]
    );
    assert_eq!(list("cap_add"), vec!["NET_ADMIN"]);
    assert_eq!(list("networks"), vec!["ci-4711"]);
    assert_eq!(list("runtimes"), vec!["runsc"]);
    assert_eq!(list("security_opt"), vec!["apparmor=ci-profile"]);
    assert_eq!(
        list("images"),
        vec![
            "docker.io/library/busybox",
            "docker.io/library/golang",
            "ghcr.io/org/tool"
        ]
    );

    for body in [PLAIN, BINDS, HOSTNET] {
        passes(&config, "POST", "/v1.43/containers/create?name=ci-x", body)
            .unwrap_or_else(|e| panic!("{body}: {e}\n{text}"));
    }
    // Another tag of a repository seen is fine; everything else seen nowhere is refused.
    passes(
        &config,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox:latest"}"#,
    )
    .unwrap();
    for (body, setting) in [
        (r#"{"Image":"alpine"}"#, "images"),
        (
            r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
            "allow_privileged",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"CapAdd":["SYS_PTRACE"]}}"#,
            "cap_add",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"Binds":["/srv/other:/x:ro"]}}"#,
            "bind_sources",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"Binds":["/var/run/docker.sock:/s:ro"]}}"#,
            "bind_sources",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"NetworkMode":"other"}}"#,
            "networks",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"Runtime":"kata"}}"#,
            "runtimes",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}"#,
            "security_opt",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/kvm","PathInContainer":"/dev/kvm","CgroupPermissions":"rwm"}]}}"#,
            "allow_devices",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"80"}]}}}"#,
            "port_host_ips",
        ),
    ] {
        let err = passes(&config, "POST", "/containers/create", body).unwrap_err();
        assert!(err.contains(setting), "{body}: {err}");
    }
    // Operations never seen stay refused.
    assert!(passes(&config, "POST", "/containers/x/exec", "{}").is_err());
}

#[test]
fn limits_become_caps_only_when_every_create_set_them() {
    let small = r#"{"Image":"busybox","HostConfig":{"Memory":536870912,"PidsLimit":100,"ShmSize":1048576}}"#;
    let big = r#"{"Image":"busybox","HostConfig":{"Memory":1073741824,"PidsLimit":200}}"#;
    let (text, config) = suggested(&[create(small, "ci-a"), create(big, "ci-b")]);
    let c = policy_table(&text)["container"].as_table().unwrap().clone();
    assert_eq!(
        c["max_memory_bytes"].as_integer(),
        Some(1073741824),
        "{text}"
    );
    assert_eq!(c["max_pids"].as_integer(), Some(200));
    assert_eq!(c["max_shm_size_bytes"].as_integer(), Some(1048576));
    assert!(!c.contains_key("max_nano_cpus"));
    for body in [small, big] {
        passes(&config, "POST", "/containers/create", body).unwrap();
    }
    let over = r#"{"Image":"busybox","HostConfig":{"Memory":2147483648,"PidsLimit":100}}"#;
    let err = passes(&config, "POST", "/containers/create", over).unwrap_err();
    assert!(err.contains("max_memory_bytes"), "{err}");

    // One create without a memory limit: no memory cap (it would refuse that create).
    let (text, config) = suggested(&[create(small, "ci-a"), create(PLAIN, "ci-b")]);
    let c = policy_table(&text)["container"].as_table().cloned();
    assert!(
        c.is_none_or(|c| !c.contains_key("max_memory_bytes")),
        "{text}"
    );
    passes(&config, "POST", "/containers/create", PLAIN).unwrap();
}

#[test]
fn refusals_widen_by_the_setting_their_violation_names() {
    let mut refused = request("container.create", "POST", "/containers/create", "deny");
    refused.violations = vec![
        "HostConfig.Binds[0]: host path /var/run/docker.sock is not allowed (bind_sources)".into(),
    ];
    let mut privileged = request(
        "container.create",
        "POST",
        "/containers/create",
        "would-deny",
    );
    privileged.violations = vec![
        "HostConfig.Privileged: privileged containers are not allowed (allow_privileged)".into(),
    ];
    let mut rw = request("container.create", "POST", "/containers/create", "deny");
    rw.violations = vec![
        "HostConfig.Binds[0]: host path /srv/ci must be mounted read-only (require_read_only_binds)"
            .into(),
    ];
    let mut net = request("container.create", "POST", "/containers/create", "deny");
    net.violations =
        vec![r#"HostConfig.NetworkMode: network "ci-net" is not allowed (networks)"#.into()];
    let mut build = request("image.build", "POST", "/build", "would-deny");
    build.query.insert("version".into(), vec!["2".into()]);
    build
        .query
        .insert("networkmode".into(), vec!["host".into()]);
    build.violations =
        vec!["?version: BuildKit (version=2) is not allowed (allow_buildkit)".into()];
    let mut volume = request("volume.create", "POST", "/volumes/create", "deny");
    volume.violations = vec![r#"Driver: volume driver "nfs" is not allowed (drivers)"#.into()];
    let mut sysctl = request("container.create", "POST", "/containers/create", "deny");
    sysctl.violations =
        vec!["HostConfig.Ulimits[0]: ulimit \"nofile\" is not allowed (ulimits)".into()];
    let mut hopeless = request("container.start", "POST", "/containers/x/start", "deny");
    hopeless.violations = vec![
        "(body): a request body on container start is refused (API < 1.24 applies it as the HostConfig)"
            .into(),
    ];
    let records = vec![
        refused, privileged, rw, net, build, volume, sysctl, hopeless,
    ];
    let (text, config) = suggested(&records);
    let table = policy_table(&text);
    let c = table["container"].as_table().unwrap();
    assert_eq!(c["allow_privileged"].as_bool(), Some(true), "{text}");
    assert_eq!(c["require_read_only_binds"].as_bool(), Some(false));
    assert_eq!(
        c["bind_sources"].as_array().unwrap(),
        &vec![
            toml::Value::String("/srv/ci".into()),
            toml::Value::String("/var/run/docker.sock".into())
        ]
    );
    assert_eq!(c["networks"].as_array().unwrap().len(), 1);
    assert!(!c.contains_key("images"), "no create recorded its image");
    let b = table["build"].as_table().unwrap();
    assert_eq!(b["allow_buildkit"].as_bool(), Some(true));
    assert_eq!(
        b["network_modes"].as_array().unwrap(),
        &vec![toml::Value::String("host".into())]
    );
    let v = table["volume"].as_table().unwrap();
    assert_eq!(
        v["drivers"].as_array().unwrap(),
        &vec![toml::Value::String("nfs".into())]
    );
    assert!(
        text.contains("ulimit \\\"nofile\\\"") || text.contains("ulimit \"nofile\""),
        "{text}"
    );
    assert!(text.contains("set it by hand"), "{text}");
    assert!(text.contains("no setting allows this"), "{text}");
    assert!(
        text.contains("inspection stops at the first refusal"),
        "{text}"
    );

    let body = r#"{"Image":"busybox","HostConfig":{"Privileged":true,"NetworkMode":"ci-net","Binds":["/var/run/docker.sock:/var/run/docker.sock","/srv/ci/w:/w"]}}"#;
    passes(&config, "POST", "/containers/create", body).unwrap();
    passes(&config, "POST", "/build?version=2&networkmode=host", "").unwrap();
    passes(&config, "POST", "/volumes/create", r#"{"Driver":"nfs"}"#).unwrap();
    let err = passes(&config, "POST", "/volumes/create", r#"{"Driver":"local"}"#).unwrap_err();
    assert!(err.contains("drivers"), "{err}");
}

#[test]
fn build_queries_shape_the_build_section() {
    let mut plain = request("image.build", "POST", "/build", "allow");
    plain.query.insert(
        "t".into(),
        vec!["registry.example.com/team/app:ci-1".into()],
    );
    plain
        .query
        .insert("buildargs".into(), vec!["<redacted>".into()]);
    plain
        .query
        .insert("memory".into(), vec!["1073741824".into()]);
    let mut cached = request("image.build", "POST", "/build", "allow");
    cached.query.insert(
        "cachefrom".into(),
        vec!["[\"registry.example.com/team/app:cache\"]".into()],
    );
    cached.query.insert(
        "t".into(),
        vec!["registry.example.com/team/app:ci-2".into()],
    );
    let (text, config) = suggested(&[plain, cached]);
    let b = policy_table(&text)["build"].as_table().unwrap().clone();
    assert_eq!(b["allow_cache_from"].as_bool(), Some(true), "{text}");
    assert!(!b.contains_key("allow_buildkit"));
    assert_eq!(b["max_memory_bytes"].as_integer(), Some(1073741824));
    assert_eq!(
        b["tags"].as_array().unwrap(),
        &vec![toml::Value::String("registry.example.com/team/app".into())]
    );
    assert!(text.contains("2 of 2 distinct build queries"), "{text}");
    passes(
        &config,
        "POST",
        "/build?t=registry.example.com/team/app:ci-3",
        "",
    )
    .unwrap();
    for (target, setting) in [
        ("/build?t=registry.example.com/team/other:1", "tags"),
        ("/build?version=2", "allow_buildkit"),
        ("/build?remote=https://example.com/x.git", "allow_remote"),
        ("/build?memory=2147483648", "max_memory_bytes"),
    ] {
        let err = passes(&config, "POST", target, "").unwrap_err();
        assert!(err.contains(setting), "{target}: {err}");
    }
}

#[test]
fn exec_network_and_volume_settings() {
    let exec_body = r#"{"Cmd":["sh"],"Privileged":true}"#;
    let exec_summary = inspect::exec_create(
        exec_body.as_bytes(),
        &inspect::ExecRules {
            allow_privileged: true,
            allow_root_user: true,
        },
    )
    .unwrap();
    let mut exec = request("exec.create", "POST", "/containers/web/exec", "allow");
    exec.settings = Some(settings_of(&exec_summary));
    let net_body = r#"{"Name":"ci-net","Driver":"bridge"}"#;
    let net_summary =
        inspect::network_create(net_body.as_bytes(), &inspect::NetworkRules::default()).unwrap();
    let mut net = request("network.create", "POST", "/networks/create", "allow");
    net.settings = Some(settings_of(&net_summary));
    let (text, config) = suggested(&[exec, net]);
    let table = policy_table(&text);
    assert_eq!(
        table["exec"]["allow_privileged"].as_bool(),
        Some(true),
        "{text}"
    );
    assert!(
        !table.contains_key("network"),
        "bridge is the default: {text}"
    );
    passes(&config, "POST", "/containers/web/exec", exec_body).unwrap();
    passes(&config, "POST", "/networks/create", net_body).unwrap();
    let err = passes(
        &config,
        "POST",
        "/networks/create",
        r#"{"Name":"lan","Driver":"macvlan"}"#,
    )
    .unwrap_err();
    assert!(err.contains("drivers"), "{err}");
}

#[test]
fn creates_without_settings_leave_images_and_caps_open() {
    let mut blind = request("container.create", "POST", "/containers/create", "allow");
    blind.settings = None;
    let memory = r#"{"Image":"busybox","HostConfig":{"Memory":536870912,"PidsLimit":10}}"#;
    let (text, config) = suggested(&[blind, create(memory, "ci-a")]);
    assert!(text.contains("no recorded settings"), "{text}");
    assert!(!text.contains("images ="), "{text}");
    assert!(!text.contains("max_memory_bytes"), "{text}");
    passes(
        &config,
        "POST",
        "/containers/create",
        r#"{"Image":"alpine"}"#,
    )
    .unwrap();
}

#[test]
fn violation_parsing() {
    assert_eq!(
        suggest::tests_support::split("A.B: host path /x is not allowed (bind_sources)"),
        (
            "host path /x is not allowed (bind_sources)",
            Some("bind_sources")
        )
    );
    assert_eq!(
        suggest::tests_support::split("(body): invalid JSON: x"),
        ("invalid JSON: x", None)
    );
    assert_eq!(
        suggest::tests_support::quoted(r#"network "a\"b" is not allowed"#),
        Some("a\"b".to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// Builds as real CLIs send them, and refusals as the real inspectors word them

/// A build record: `query` as sent (`a=1&b=2`, percent-encoded), decoded as the audit log
/// holds it.
fn build(query: &str, decision: &str) -> Record {
    let mut r = request("image.build", "POST", "/build", decision);
    let target: Uri = format!("/build?{query}").parse().unwrap();
    let normalized = crate::route::normalize(&Method::POST, &target).unwrap();
    for (k, v) in normalized.query.pairs() {
        r.query.entry(k.clone()).or_default().push(v.clone());
    }
    r
}

/// What the 20.10 CLI's classic builder (`DOCKER_BUILDKIT=0`) sends: `ulimits=null`.
const CLASSIC_2010: &str = "buildargs=%7B%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0\
    &cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D&memory=0&memswap=0\
    &networkmode=default&rm=1&shmsize=0&t=ci%2Fapp%3A1&target=&ulimits=null&version=1";
/// What it sends for a BuildKit build: the context comes over `/session`, `remote=client-session`.
const BUILDKIT_2010: &str = "buildargs=%7B%7D&buildid=b1&cachefrom=%5B%5D&cgroupparent=\
    &cpuperiod=0&cpuquota=0&cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile\
    &labels=%7B%7D&memory=0&memswap=0&networkmode=default&remote=client-session&rm=1\
    &session=s1&shmsize=0&t=ci%2Fapp%3A2&target=&ulimits=null&version=2";

#[test]
fn null_ulimits_and_client_session_ask_for_nothing() {
    let (text, config) = suggested(&[build(CLASSIC_2010, "allow"), build(BUILDKIT_2010, "allow")]);
    let b = policy_table(&text)["build"].as_table().unwrap().clone();
    assert_eq!(b["allow_buildkit"].as_bool(), Some(true), "{text}");
    for widened in ["allow_ulimits", "allow_remote", "allow_unknown_params"] {
        assert!(!b.contains_key(widened), "{widened}:\n{text}");
    }
    assert!(text.contains("2 of 2 distinct build queries"), "{text}");
    for query in [CLASSIC_2010, BUILDKIT_2010] {
        passes(&config, "POST", &format!("/build?{query}"), "").unwrap();
    }
    // `[]` sets no ulimits either; a list with one does, and a remote URL, or
    // `client-session` on the classic builder, is still a remote context.
    passes(&config, "POST", "/build?ulimits=%5B%5D&t=ci/app:3", "").unwrap();
    for (target, setting) in [
        (
            "/build?ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A1%7D%5D",
            "allow_ulimits",
        ),
        ("/build?remote=client-session&version=1", "allow_remote"),
        ("/build?remote=client-session", "allow_remote"),
        (
            "/build?version=2&session=s&remote=https://example.com/x.git",
            "allow_remote",
        ),
    ] {
        let err = passes(&config, "POST", target, "").unwrap_err();
        assert!(err.contains(setting), "{target}: {err}");
    }

    // The same parameters where they do ask: the suggestion widens for them.
    let ulimits = build(
        "ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A1%7D%5D",
        "allow",
    );
    let remote = build("remote=https%3A%2F%2Fexample.com%2Fx.git", "allow");
    let classic_session = build("remote=client-session&version=1", "allow");
    let (text, _) = suggested(&[ulimits]);
    assert_eq!(
        policy_table(&text)["build"]["allow_ulimits"].as_bool(),
        Some(true),
        "{text}"
    );
    for r in [remote, classic_session] {
        let (text, _) = suggested(&[r]);
        let b = policy_table(&text)["build"].as_table().unwrap().clone();
        assert_eq!(b["allow_remote"].as_bool(), Some(true), "{text}");
        assert!(!b.contains_key("allow_buildkit"), "{text}");
    }
}

/// The record the audit log holds for a request under `config`, as the inspection layer notes
/// it: allowed with the inspected settings, or refused with the inspector's own violation
/// (enforced: `deny`, as the error boundary records it).
fn recorded(config: &Config, method: &str, target: &str, body: &str) -> Record {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let authorized = crate::policy::layer::authorize(
        &config.authority,
        Some(Arc::from(CLIENT)),
        &m,
        &uri,
        &HeaderMap::new(),
    )
    .unwrap_or_else(|e| panic!("{target}: {e}"));
    let mut r = request(
        authorized.operation.name,
        method,
        &authorized.normalized.path,
        "allow",
    );
    for (k, v) in authorized.normalized.query.pairs() {
        r.query.entry(k.clone()).or_default().push(v.clone());
    }
    match crate::inspect::layer::check_request(&authorized, body.as_bytes()) {
        Ok(summary) => r.settings = summary.as_ref().map(settings_of),
        Err(crate::error::ProxyError::Denied(refusal)) => {
            r.decision = Some("deny".into());
            r.status = Some(403);
            r.rule = Some(refusal.rule.to_string());
            r.violations = refusal
                .kind
                .violation()
                .map(crate::audit::schema::Violation::from)
                .into_iter()
                .collect();
            r.reason = Some(refusal.reason().to_string());
        }
        Err(e) => panic!("{target}: not an inspection refusal: {e}"),
    }
    r
}

/// `suggest` reads values out of refusal text (`host path X is not allowed`); a refusal worded
/// differently would silently stop widening. Each request here is refused by the real
/// inspector, one setting at a time, and the policy suggested from those refusals is tried
/// again until nothing is refused: every setting a CI job typically trips over must be
/// recovered from the inspector's own words, and nothing else widened.
#[test]
fn enforced_refusals_from_the_real_inspectors_converge() {
    let requests: &[(&str, &str, &str)] = &[
        (
            "POST",
            "/containers/create?name=ci-a",
            r#"{"Image":"busybox","Env":["A=1"],"HostConfig":{"Binds":["/srv/ci/work:/work"],"Memory":67108864,"NetworkMode":"none"}}"#,
        ),
        (
            "POST",
            "/containers/create?name=ci-b",
            r#"{"Image":"ghcr.io/org/tool:1","HostConfig":{"CapAdd":["NET_ADMIN"],"NetworkMode":"ci-net","SecurityOpt":["apparmor=ci-profile"],"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":20}}}"#,
        ),
        (
            "POST",
            "/containers/create?name=ci-c",
            r#"{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"80"}]}}}"#,
        ),
        ("POST", &*format!("/build?{BUILDKIT_2010}"), ""),
        ("POST", "/build?networkmode=host&t=ci/app:4", ""),
        (
            "POST",
            "/volumes/create",
            r#"{"Name":"ci-vol","Driver":"nfs"}"#,
        ),
        (
            "POST",
            "/networks/create",
            r#"{"Name":"n","Driver":"macvlan"}"#,
        ),
    ];
    let mut config = config(
        "[policy.start]\nallow = [\"*\"]\nallow_dangerous = [\"*\"]\n",
        "start",
    );
    let mut records = Vec::new();
    let mut text = String::new();
    for round in 0.. {
        let now: Vec<Record> = requests
            .iter()
            .map(|(m, t, b)| recorded(&config, m, t, b))
            .collect();
        let refused = now.iter().filter(|r| !r.violations.is_empty()).count();
        if refused == 0 {
            break;
        }
        assert!(
            round < 6,
            "still refused after {round} rounds:\n{:#?}\n{text}",
            now.iter().flat_map(|r| &r.violations).collect::<Vec<_>>()
        );
        records.extend(now);
        (text, config) = suggested(&records);
    }
    let table = policy_table(&text);
    let c = table["container"].as_table().unwrap();
    let strs = |v: &toml::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(strs(&c["bind_sources"]), vec!["/srv/ci/work"], "{text}");
    assert_eq!(c["require_read_only_binds"].as_bool(), Some(false));
    assert_eq!(strs(&c["cap_add"]), vec!["NET_ADMIN"]);
    assert_eq!(strs(&c["networks"]), vec!["ci-net"]);
    assert_eq!(strs(&c["security_opt"]), vec!["apparmor=ci-profile"]);
    assert_eq!(c["max_restart_retries"].as_integer(), Some(20));
    assert_eq!(c["allow_port_bindings"].as_bool(), Some(true));
    assert_eq!(strs(&c["port_host_ips"]), vec!["0.0.0.0"]);
    assert_eq!(c["min_host_port"].as_integer(), Some(80));
    let b = table["build"].as_table().unwrap();
    assert_eq!(b["allow_buildkit"].as_bool(), Some(true), "{text}");
    assert_eq!(strs(&b["network_modes"]), vec!["default", "host"]);
    assert!(!b.contains_key("allow_remote") && !b.contains_key("allow_ulimits"));
    assert_eq!(strs(&table["volume"]["drivers"]), vec!["nfs"]);
    assert_eq!(strs(&table["network"]["drivers"]), vec!["macvlan"]);
    for never in ["allow_privileged", "allow_host_namespaces", "allow_devices"] {
        assert!(!c.contains_key(never), "{never}:\n{text}");
    }
    // Beside what was refused, nothing more: another host path, another capability.
    for body in [
        r#"{"Image":"busybox","HostConfig":{"Binds":["/srv/other:/work"]}}"#,
        r#"{"Image":"busybox","HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#,
        r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
    ] {
        assert!(
            passes(&config, "POST", "/containers/create", body).is_err(),
            "{body}"
        );
    }
}

#[test]
fn ulimits_asked_for_become_the_largest_seen_and_null_asks_for_none() {
    // The 20.10 CLI's create body says `"Ulimits": null`: no ulimits.
    let null = r#"{"Image":"busybox","HostConfig":{"Ulimits":null,"Memory":0}}"#;
    let (text, config) = suggested(&[create(null, "ci-a")]);
    assert!(!text.contains("ulimits"), "{text}");
    passes(&config, "POST", "/containers/create", null).unwrap();
    let err = passes(
        &config,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":1,"Hard":1}]}}"#,
    )
    .unwrap_err();
    assert!(err.contains("(ulimits)"), "{err}");

    let small = r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]}}"#;
    let big = r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":4096,"Hard":4096},{"Name":"nproc","Soft":64,"Hard":64}]}}"#;
    let (text, config) = suggested(&[
        create(null, "ci-a"),
        create(small, "ci-b"),
        create(big, "ci-c"),
    ]);
    let c = policy_table(&text)["container"].as_table().unwrap().clone();
    let ulimits = c["ulimits"].as_table().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(ulimits.len(), 2, "{text}");
    assert_eq!(ulimits["nofile"].as_integer(), Some(4096));
    assert_eq!(ulimits["nproc"].as_integer(), Some(64));
    for body in [null, small, big] {
        passes(&config, "POST", "/containers/create", body).unwrap();
    }
    for body in [
        r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":1,"Hard":8192}]}}"#,
        r#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"core","Soft":0,"Hard":0}]}}"#,
    ] {
        let err = passes(&config, "POST", "/containers/create", body).unwrap_err();
        assert!(err.contains("(ulimits)"), "{body}: {err}");
    }
    // A name that needs quoting (a log is input too) stays one valid line.
    let mut odd = create(PLAIN, "ci-d");
    if let Some(s) = odd.settings.as_mut() {
        s.ulimits.insert("we\"ird\nname".into(), 5);
    }
    let (text, _) = suggested(&[odd]);
    let c = policy_table(&text)["container"].as_table().unwrap().clone();
    assert_eq!(
        c["ulimits"]["we\"ird\nname"].as_integer(),
        Some(5),
        "{text}"
    );
}

#[test]
fn plugin_violations_widen_no_container_setting() {
    // The plugin section is not one `suggest` writes: its refusals are left to the operator,
    // never read as container settings of the same name.
    let mut pull = request("plugin.pull", "POST", "/plugins/pull", "deny");
    pull.violations =
        vec!["(body): plugin privilege \"network\" is not allowed (allow_network)".into()];
    let (text, _) = suggested(&[pull]);
    let table = policy_table(&text);
    assert!(
        table
            .get("container")
            .and_then(|c| c.as_table())
            .is_none_or(|c| !c.contains_key("allow_network")),
        "{text}"
    );
    assert!(
        text.contains("allow_network"),
        "the refusal is still reported: {text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Structured violations, and the legacy string form

/// A violation as new records hold it: the setting and value are read as they are, whatever
/// the reason's words.
fn structured(field: &str, setting: &str, value: &str) -> crate::audit::schema::Violation {
    crate::audit::schema::Violation {
        field: field.into(),
        reason: "worded in any way at all".into(),
        setting: Some(setting.into()),
        value: Some(value.into()),
    }
}

#[test]
fn structured_violations_widen_without_reading_their_text() {
    let create = |violation| {
        let mut r = request("container.create", "POST", "/containers/create", "deny");
        r.settings = Some(Settings {
            kind: Some("container_create".into()),
            image: Some("docker.io/library/busybox:latest".into()),
            ..Settings::default()
        });
        r.violations = vec![violation];
        r
    };
    let records = [
        create(structured(
            "HostConfig.Binds[0]",
            "bind_sources",
            "/srv/cache",
        )),
        create(structured("HostConfig.CapAdd[0]", "cap_add", "NET_ADMIN")),
        create(structured("Image", "images", "ghcr.io/org/tool:1")),
        create(structured(
            "HostConfig.Binds[1]",
            "require_read_only_binds",
            "/srv/ci",
        )),
    ];
    let (text, _) = suggested(&records);
    let table = policy_table(&text);
    let c = table["container"].as_table().unwrap();
    let strs = |key: &str| -> Vec<String> {
        c.get(key)
            .and_then(|v| v.as_array())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        strs("bind_sources").contains(&"/srv/cache".to_owned()),
        "{text}"
    );
    assert!(strs("cap_add").contains(&"NET_ADMIN".to_owned()), "{text}");
    assert!(
        strs("images").contains(&"ghcr.io/org/tool".to_owned()),
        "{text}"
    );
    assert!(
        strs("bind_sources").contains(&"/srv/ci".to_owned()),
        "{text}"
    );
    assert_eq!(
        c["require_read_only_binds"].as_bool(),
        Some(false),
        "{text}"
    );
}

#[test]
fn legacy_violation_strings_read_into_the_structured_form() {
    let line = r#"{"event":"request","operation":"container.create","decision":"deny","violations":["HostConfig.Binds[0]: host path /var/run/docker.sock is not allowed (bind_sources)","HostConfig.NetworkMode: network \"ci-net\" is not allowed (networks)","(body): a request body on container start is refused (API < 1.24 applies it as the HostConfig)",{"field":"HostConfig.CapAdd[0]","reason":"capability NET_ADMIN is not allowed (cap_add)","setting":"cap_add","value":"NET_ADMIN"}]}"#;
    let r: Record = serde_json::from_str(line).unwrap();
    let v = &r.violations;
    assert_eq!(v.len(), 4);
    assert_eq!(v[0].field, "HostConfig.Binds[0]");
    assert_eq!(
        v[0].reason,
        "host path /var/run/docker.sock is not allowed (bind_sources)"
    );
    assert_eq!(v[0].setting.as_deref(), Some("bind_sources"));
    assert_eq!(v[0].value.as_deref(), Some("/var/run/docker.sock"));
    assert_eq!(v[1].setting.as_deref(), Some("networks"));
    assert_eq!(v[1].value.as_deref(), Some("ci-net"));
    assert_eq!(v[2].field, "(body)");
    assert_eq!(v[2].setting, None);
    assert_eq!(v[2].value, None);
    assert_eq!(v[3].value.as_deref(), Some("NET_ADMIN"));
    // Shown as the client read it, whichever form it was read from.
    assert_eq!(
        v[1].to_string(),
        r#"HostConfig.NetworkMode: network "ci-net" is not allowed (networks)"#
    );
    assert_eq!(
        v[3].to_string(),
        "HostConfig.CapAdd[0]: capability NET_ADMIN is not allowed (cap_add)"
    );
    // Written back, a legacy violation is an object.
    let again = serde_json::to_value(&r).unwrap();
    assert_eq!(again["violations"][0]["setting"], "bind_sources");
    assert_eq!(again["violations"][0]["value"], "/var/run/docker.sock");
}

#[test]
fn the_fixture_logs_legacy_violations_read_structured() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/audit/ci-run.jsonl"
    ))
    .unwrap();
    let violations: Vec<crate::audit::schema::Violation> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .flat_map(|r| r.violations)
        .collect();
    assert!(!violations.is_empty());
    assert!(
        violations.iter().all(|v| v.setting.is_some()),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.setting.as_deref() == Some("allow_buildkit")),
        "{violations:?}"
    );
}

#[test]
fn a_refused_write_onto_a_run_image_suggests_the_setting_in_build() {
    let mut tag = request("image.tag", "POST", "/images/x/tag", "deny");
    tag.query.insert("repo".into(), vec!["busybox".into()]);
    tag.violations = vec![
        "?repo: docker.io/library/busybox:latest is an image the policy allows to run (images); \
         writing it would let any content run under that name (allow_writing_run_images)"
            .into(),
    ];
    let (text, _) = suggested(&[tag]);
    let b = policy_table(&text)["build"].as_table().unwrap().clone();
    assert_eq!(
        b["allow_writing_run_images"].as_bool(),
        Some(true),
        "{text}"
    );
}

/// A classic build refused for want of a build cgroup (the ci profile's pids cap, with
/// `build_cgroup = "off"`) is answered with a note naming `[upstream] build_cgroup`, not with
/// `allow_uncapped_builds` (an older log's wording of the same refusal too); BuildKit builds
/// under a proposed cap still need the acknowledgement, marked unsafe.
#[test]
fn refused_uncapped_classic_builds_suggest_the_build_cgroup() {
    // The inspector alone, as with no build cgroup prepared.
    let ci = config("[policy.p]\nprofile = \"ci\"\n", "p");
    let refused = recorded(&ci, "POST", "/build?t=ci/app:1", "");
    assert_eq!(
        refused.violations[0].setting.as_deref(),
        Some("build_cgroup"),
        "{refused:#?}"
    );
    let mut legacy = refused.clone();
    legacy.violations[0].setting = Some("allow_uncapped_builds".into());
    for records in [vec![refused], vec![legacy]] {
        let text = suggest(&records, CLIENT, "suggested").unwrap();
        assert!(
            text.contains("# NOTE: classic builds (1 refused request)"),
            "{text}"
        );
        assert!(text.contains("build_cgroup = \"auto\""), "{text}");
        assert!(text.contains("(unsafe"), "{text}");
        let table = policy_table(&text);
        let flagged = table
            .get("build")
            .and_then(|b| b.get("allow_uncapped_builds"))
            .is_some();
        assert!(!flagged, "{text}");
    }
    // Allowed classic builds under a proposed max_pids: the same note.
    let open = config(
        "[policy.p]\nallow = [\"*\"]\nallow_dangerous = [\"*\"]\n",
        "p",
    );
    let create = recorded(
        &open,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"PidsLimit":100}}"#,
    );
    let build = recorded(&open, "POST", "/build?t=ci/app:1", "");
    assert!(build.violations.is_empty(), "{build:#?}");
    let text = suggest(&[create, build], CLIENT, "suggested").unwrap();
    assert!(text.contains("max_pids = 100"), "{text}");
    assert!(
        text.contains("# NOTE: classic builds (1 request)"),
        "{text}"
    );
    let table = policy_table(&text);
    let flagged = table
        .get("build")
        .and_then(|b| b.get("allow_uncapped_builds"))
        .is_some();
    assert!(!flagged, "{text}");
}
