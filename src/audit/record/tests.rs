//! Tests of the record writer.

use super::*;
use crate::redact::REDACTED;
use http::{Method, Uri};

/// The objects the audit record names for `method target`.
fn objects_of(method: &str, target: &str, name: Option<&str>) -> BTreeMap<&'static str, String> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let normalized = crate::route::normalize(&method, &uri).unwrap();
    let op = crate::route::classify(&method, &normalized.path, &normalized.query);
    let summary = name.map(|n| Summary {
        name: Some(n.to_owned()),
        ..Summary::default()
    });
    objects(Some(&op), Some(&normalized), summary.as_ref())
}

#[test]
fn objects_follow_the_operation_table() {
    let o = objects_of("POST", "/images/create?fromImage=busybox&tag=1.36", None);
    assert_eq!(o.get("image").map(String::as_str), Some("busybox:1.36"));
    let o = objects_of("POST", "/images/create?fromSrc=-&repo=mine&tag=2", None);
    assert_eq!(o.get("image").map(String::as_str), Some("mine:2"));
    let o = objects_of("POST", "/v1.41/containers/web/exec", None);
    assert_eq!(o.get("container").map(String::as_str), Some("web"));
    assert!(!o.contains_key("exec"), "{o:?}");
    let o = objects_of("POST", "/exec/abc/start", None);
    assert_eq!(o.get("exec").map(String::as_str), Some("abc"));
    let o = objects_of("POST", "/containers/create?name=job", None);
    assert_eq!(o.get("container").map(String::as_str), Some("job"));
    let o = objects_of("POST", "/volumes/create", Some("cache"));
    assert_eq!(o.get("volume").map(String::as_str), Some("cache"));
    let o = objects_of("POST", "/build?t=app:1", None);
    assert_eq!(o.get("image").map(String::as_str), Some("app:1"));
    let o = objects_of("GET", "/distribution/busybox/json", None);
    assert_eq!(o.get("image").map(String::as_str), Some("busybox"));
    let o = objects_of("GET", "/_ping", None);
    assert!(o.is_empty(), "{o:?}");
}

// ---- One record type: whatever the writer writes, `schema::Record` reads back whole. ----

use std::sync::Mutex;

use crate::audit::schema::Record;
use crate::audit::Audit;
use crate::context::{Facts, Verdict};
use crate::error::ProxyError;
use crate::refusal::{Refusal, RefusalKind};

/// An audit with no sinks (also the golden cases').
pub(super) fn quiet_audit() -> Audit {
    Audit::quiet()
}

/// Notes the allow decision of the client's policy `ci` (rule `ci-allow`) for `operation`.
fn allow(t: &Trail, operation: &'static str) {
    t.note_decision(
        Verdict::Allow,
        Some(Arc::from("ci")),
        Arc::from("ci-allow"),
        Reason::Allowed(operation),
    );
}

/// A request's trail as the layers leave it: classified, with a client and connection.
fn trail(audit: &Audit, method: &str, target: &str) -> Trail {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let peer = Peer::Unix {
        uid: 1000,
        gid: 1000,
        pid: Some(4242),
    };
    let evidence = Evidence {
        exe: Some("/usr/bin/docker".into()),
        loginuid: Some(1000),
        cert_subject: None,
        cert_san: Vec::new(),
    };
    let trail = Trail {
        conn_fields: Some(connection_fields("ci", &peer, &evidence)),
        user_agent: Some(http::HeaderValue::from_static(
            "Docker-Client/20.10.24 (linux)",
        )),
        facts: Mutex::new(Facts {
            client: Some(Arc::from("ci")),
            ..Facts::default()
        }),
        ..Trail::for_test(audit, method.clone(), uri.clone())
    };
    if let Ok(normalized) = crate::route::normalize(&method, &uri) {
        let op = crate::route::classify(&method, &normalized.path, &normalized.query);
        trail.note_request(Arc::new(normalized), Arc::new(op));
    }
    trail
}

fn written(trail: &Trail, event: &'static str, status: Option<u16>) -> Vec<u8> {
    let counts = Counts {
        at: None,
        status,
        duration: Duration::from_micros(12_345),
        bytes_in: 321,
        bytes_out: 4567,
        end: "complete",
    };
    let mut out = Vec::new();
    write_line(trail, event, &counts, &mut out);
    out
}

/// Every member of a summary filled in, as an inspector could.
fn full_summary() -> Summary {
    let mut ulimits = BTreeMap::new();
    ulimits.insert("nofile".to_owned(), 1024);
    Summary {
        kind: "container_create",
        name: Some("job".into()),
        image: Some("docker.io/library/busybox:latest".into()),
        user: Some("1000:1000".into()),
        privileged: true,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["ALL".into()],
        mounts: vec![crate::inspect::MountSummary {
            kind: "bind",
            source: Some("/srv/cache".into()),
            target: "/cache".into(),
            read_only: true,
            from: "Binds",
        }],
        named_volumes: vec!["data".into()],
        networks: vec!["ci-net".into()],
        namespaces: vec!["network=none".into()],
        security_opt: vec!["no-new-privileges".into()],
        devices: vec!["/dev/fuse".into()],
        limits: crate::inspect::Limits {
            memory: Some(1 << 28),
            memory_swap: Some(1 << 29),
            nano_cpus: Some(1_000_000_000),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            pids: Some(256),
            shm_size: Some(1 << 26),
        },
        ulimits,
        runtime: Some("runc".into()),
        port_bindings: vec!["127.0.0.1:8080->80/tcp".into()],
        restart_policy: Some("on-failure".into()),
        driver: Some("local".into()),
        tags: vec!["docker.io/library/app:1".into()],
        plugin_privileges: vec!["network=host".into()],
    }
}

/// `null` members dropped (the type reads them as absent, and writes absent as nothing).
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
        }
        other => other,
    }
}

/// Numbers compared by value (`12.345` read as f64 and written back is the same number).
fn same(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Result<(), String> {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) if x.as_f64() == y.as_f64() => Ok(()),
        (V::Object(x), V::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (Some(p), Some(q)) = (x.get(key), y.get(key)) else {
                    return Err(format!("{at}.{key}: only on one side"));
                };
                same(p, q, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (V::Array(x), V::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (p, q))| same(p, q, &format!("{at}[{i}]"))),
        _ if a == b => Ok(()),
        _ => Err(format!("{at}: {a} != {b}")),
    }
}

/// The line reads as a [`Record`] that serializes back to the same members and values:
/// the writer writes nothing the type does not know, in no other shape.
fn round_trips(line: &[u8]) -> Record {
    let text = std::str::from_utf8(line).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    let written: serde_json::Value = serde_json::from_str(text).unwrap();
    let record: Record = serde_json::from_value(written.clone()).unwrap();
    let again = serde_json::to_value(&record).unwrap();
    if let Err(diff) = same(&without_nulls(written), &again, "record") {
        panic!("{diff}\nwritten: {text}read back: {again}");
    }
    record
}

#[test]
fn every_kind_of_record_round_trips_through_the_one_record_type() {
    let audit = quiet_audit();

    // Allowed, inspected, with defaults applied and the body logged.
    let t = trail(&audit, "POST", "/v1.41/containers/create?name=job");
    allow(&t, "container.create");
    t.note_inspection(Some(full_summary()), None);
    t.note_defaults(vec!["Memory=268435456".into()]);
    t.note_body(&bytes::Bytes::from_static(
        br#"{"Image":"busybox","Env":["TOKEN=x"],"HostConfig":{"Binds":["/srv/cache:/cache:ro"]}}"#,
    ));
    let r = round_trips(&written(&t, "request", Some(201)));
    assert_eq!(r.decision.as_deref(), Some("allow"));
    assert_eq!(r.settings.as_ref().unwrap().mounts.len(), 1);
    assert_eq!(
        r.user_agent.as_deref(),
        Some("Docker-Client/20.10.24 (linux)")
    );
    assert_eq!(r.defaults_applied, vec!["Memory=268435456".to_owned()]);
    assert!(r.body.is_some());
    assert_eq!(r.peer.as_ref().unwrap().pid, Some(4242));

    // Would-deny with violations (audit mode).
    let t = trail(&audit, "POST", "/containers/create");
    allow(&t, "container.create");
    t.note_inspection(
        None,
        Some((
            "container.create",
            Violation {
                field: "HostConfig.Privileged".into(),
                reason: "privileged containers are not allowed (allow_privileged)".into(),
                setting: Some("allow_privileged".into()),
                value: None,
            },
        )),
    );
    let line = written(&t, "request", Some(201));
    let r = round_trips(&line);
    assert_eq!(r.decision.as_deref(), Some("would-deny"));
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].setting.as_deref(), Some("allow_privileged"));
    assert_eq!(
        r.reason.as_deref(),
        Some("HostConfig.Privileged: privileged containers are not allowed (allow_privileged)")
    );
    let raw: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(
        raw["violations"],
        serde_json::json!([{
            "field": "HostConfig.Privileged",
            "reason": "privileged containers are not allowed (allow_privileged)",
            "setting": "allow_privileged",
        }])
    );

    // Refused by a rule (of each kind), by inspection (enforced), as malformed, by the rate
    // limit, by the audit gate.
    let denied = |kind: RefusalKind, rule: &str| {
        ProxyError::Denied(Box::new(Refusal {
            operation: "system.info",
            method: Method::GET,
            path: "/info".into(),
            policy: Some(Arc::from("ci")),
            rule: Arc::from(rule),
            kind,
        }))
    };
    let bind = Violation {
        field: "HostConfig.Binds[0]".into(),
        reason: "host path /var/run/docker.sock is not allowed (bind_sources)".into(),
        setting: Some("bind_sources".into()),
        value: Some("/var/run/docker.sock".into()),
    };
    let refusals = [
        denied(RefusalKind::NotAllowed, "default-deny"),
        denied(RefusalKind::DenyRule, "deny system.*"),
        denied(RefusalKind::NoClient, "no-client"),
        denied(
            RefusalKind::Conditions(vec![crate::refusal::UnmetRule {
                rule: Arc::from("info"),
                conditions: vec![crate::refusal::UnmetCondition {
                    param: "x".into(),
                    wanted: "x is not set".into(),
                    found: "x=1".into(),
                }],
            }]),
            "default-deny",
        ),
        denied(RefusalKind::Inspection(bind.clone()), "ci.container"),
        ProxyError::BadRequest("unclean path".into()),
        ProxyError::Limited {
            limit: crate::error::Limit::Rate,
            what: "client ci is over 10 requests/s".into(),
            retry_after: None,
        },
        ProxyError::Unavailable("the audit log cannot be written".into()),
    ];
    for refusal in &refusals {
        let t = trail(&audit, "GET", "/v1.41/info?x=1");
        // Allowed first: the refusal that follows decides the record.
        allow(&t, "system.info");
        t.note_error(refusal);
        let line = written(&t, "request", Some(refusal.status().as_u16()));
        let r = round_trips(&line);
        assert_eq!(r.decision.as_deref(), Some("deny"), "{refusal}");
        assert_ne!(r.rule.as_deref(), Some("ci-allow"), "{refusal}");
        if let ProxyError::Denied(refusal) = refusal {
            assert_eq!(r.reason, Some(refusal.reason().to_string()));
            assert_eq!(r.rule.as_deref(), Some(&*refusal.rule));
            assert_eq!(r.operation.as_deref(), Some("system.info"));
            if let RefusalKind::Inspection(v) = &refusal.kind {
                assert_eq!(r.violations, vec![crate::audit::schema::Violation::from(v)]);
                assert_eq!(
                    r.violations[0].value.as_deref(),
                    Some("/var/run/docker.sock")
                );
                let raw: serde_json::Value = serde_json::from_slice(&line).unwrap();
                assert_eq!(raw["violations"][0]["setting"], "bind_sources");
                assert_eq!(raw["violations"][0]["value"], "/var/run/docker.sock");
                assert_eq!(raw["violations"][0]["field"], "HostConfig.Binds[0]");
            } else {
                assert!(r.violations.is_empty(), "{refusal}");
            }
        }
    }
    let t = trail(&audit, "GET", "/v1.41/info");
    t.note_error(&refusals[0]);
    let r = round_trips(&written(&t, "request", Some(403)));
    assert_eq!(
        r.reason.as_deref(),
        Some("no rule allows system.info"),
        "a refusal's reason is today's text"
    );

    // The daemon failed; a request the router cannot read at all.
    let t = trail(&audit, "GET", "/containers/json");
    t.note_error(&ProxyError::Upstream {
        addr: "unix:///run/docker.sock".into(),
        detail: "connection refused".into(),
    });
    let r = round_trips(&written(&t, "request", Some(502)));
    assert_eq!(r.error.as_deref(), Some("connection refused"));
    let t = trail(&audit, "GET", "/containers/../json");
    round_trips(&written(&t, "request", Some(400)));

    // A hijacked session opening and closing.
    let t = trail(&audit, "POST", "/containers/job/attach?stream=1&stdin=1");
    allow(&t, "container.attach");
    let r = round_trips(&written(&t, "session_open", Some(101)));
    assert!(r.is_request());
    let r = round_trips(&written(&t, "session_close", None));
    assert!(!r.is_request());
    assert_eq!(r.objects.get("container"), Some(&Some("job".to_owned())));

    // A reload record, serialized from the type itself.
    let reload = Record {
        time: Some("2026-12-03T08:00:00.000000Z".into()),
        id: Some(audit.next_id().to_string()),
        event: Some("reload".into()),
        result: Some("ok".into()),
        source: Some("SIGHUP".into()),
        generation: Some(3),
        restart_needed: vec!["listen".into()],
        ..Record::default()
    };
    let mut out = Vec::new();
    super::super::sink::record_line(&reload, &mut out);
    assert_eq!(round_trips(&out), reload);
}

/// Which decision a record keeps is a rule, not the order of writes: audit mode keeps the
/// rule's would-deny over inspection's; a refusal beats any earlier allow or would-deny.
#[test]
fn decisions_settle_by_rank_not_by_order() {
    let audit = quiet_audit();
    let violation = Violation {
        field: "HostConfig.Privileged".into(),
        reason: "privileged containers are not allowed (allow_privileged)".into(),
        setting: Some("allow_privileged".into()),
        value: None,
    };
    let t = trail(&audit, "POST", "/containers/create");
    t.note_decision(
        Verdict::WouldDeny,
        Some(Arc::from("ro")),
        Arc::from("default-deny"),
        Reason::Refused("container.create", RefusalKind::NotAllowed),
    );
    t.note_inspection(None, Some(("container.create", violation.clone())));
    let r = round_trips(&written(&t, "request", Some(201)));
    assert_eq!(r.decision.as_deref(), Some("would-deny"));
    assert_eq!(r.rule.as_deref(), Some("default-deny"));
    assert_eq!(r.reason.as_deref(), Some("no rule allows container.create"));
    assert_eq!(r.violations.len(), 1);

    // Enforced: allowed by a rule, then refused by inspection.
    let t = trail(&audit, "POST", "/containers/create");
    allow(&t, "container.create");
    t.note_error(&ProxyError::Denied(Box::new(Refusal {
        operation: "container.create",
        method: Method::POST,
        path: "/containers/create".into(),
        policy: Some(Arc::from("ci")),
        rule: Arc::from("ci.container"),
        kind: RefusalKind::Inspection(violation),
    })));
    // A later allow changes nothing.
    allow(&t, "container.create");
    let r = round_trips(&written(&t, "request", Some(403)));
    assert_eq!(r.decision.as_deref(), Some("deny"));
    assert_eq!(r.rule.as_deref(), Some("ci.container"));
    assert_eq!(r.violations[0].setting.as_deref(), Some("allow_privileged"));
}

#[test]
fn long_paths_and_queries_are_cut_with_their_length() {
    let audit = quiet_audit();
    // An URI holds at most 64 KiB (hyper refuses longer request heads anyway).
    let long = "a".repeat(30 * 1024);
    let many: String = (0..200).map(|i| format!("&p{i}=x")).collect();
    let target = format!("/v1.41/_ping?q={long}&{long}=v{many}");
    let t = trail(&audit, "GET", &target);
    let line = written(&t, "request", Some(200));
    assert!(line.len() < 16 * 1024, "{} bytes", line.len());
    let r = round_trips(&line);
    let q = &r.query["q"][0];
    assert!(q.starts_with(&"a".repeat(MAX_TEXT)), "{q}");
    assert!(
        q.ends_with(&format!("{TRUNCATED}{} bytes]", 30 * 1024)),
        "{q}"
    );
    let key = r.query.keys().find(|k| k.len() > MAX_TEXT).unwrap();
    assert!(
        key.ends_with(&format!("{TRUNCATED}{} bytes]", 30 * 1024)),
        "{key}"
    );
    assert_eq!(r.query[MORE_PARAMS], vec!["138 more parameters, 928 bytes"]);
    // Many long values: the record stays small all the same.
    let long = "b".repeat(2000);
    let many: String = (0..30).map(|i| format!("&v{i}={long}")).collect();
    let t = trail(&audit, "GET", &format!("/_ping?x=1{many}"));
    let line = written(&t, "request", Some(200));
    assert!(line.len() < 2 * MAX_QUERY_BYTES, "{} bytes", line.len());
    let r = round_trips(&line);
    assert!(
        r.query[MORE_PARAMS][0].starts_with("23 more parameters"),
        "{:?}",
        r.query
    );
    // Short text is untouched; a multi-byte character is never split.
    assert_eq!(bounded("short"), "short");
    let cut = bounded_to("ééé", 3);
    assert!(cut.starts_with('é') && cut.contains("6 bytes"), "{cut}");
}

#[test]
fn secrets_in_query_are_redacted() {
    let pairs = vec![
        ("t".to_owned(), "app:1".to_owned()),
        (
            "buildargs".to_owned(),
            r#"{"NPM_TOKEN":"s3cr3t","VERSION":"1"}"#.to_owned(),
        ),
        ("registryAuth".to_owned(), "abc".to_owned()),
    ];
    let q = redacted_query(&pairs);
    assert_eq!(q["t"], vec!["app:1"]);
    let args: serde_json::Value = serde_json::from_str(&q["buildargs"][0]).unwrap();
    assert_eq!(args["NPM_TOKEN"], REDACTED);
    assert_eq!(args["VERSION"], REDACTED);
    assert_eq!(q["registryAuth"], vec![REDACTED]);
    let text = serde_json::to_string(&q).unwrap();
    assert!(!text.contains("s3cr3t") && !text.contains("abc"));
}

#[test]
fn bodies_lose_env_values_and_credentials() {
    let mut body = serde_json::json!({
        "Image": "busybox",
        "env": ["DB_PASSWORD=hunter2", "PLAIN"],
        "HostConfig": {"Binds": ["/srv:/srv"]},
        "BuildArgs": {"TOKEN": "x"},
        "auth": {"password": "pw", "Username": "u"},
        "IdentityToken": "tok",
    });
    redact::document(&mut body);
    let text = body.to_string();
    for secret in ["hunter2", "\"x\"", "\"pw\"", "tok\""] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(body["env"][0], "DB_PASSWORD=<redacted>");
    assert_eq!(body["env"][1], "PLAIN");
    assert_eq!(body["HostConfig"]["Binds"][0], "/srv:/srv");
}
