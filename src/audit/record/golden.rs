//! The exact bytes of audit records, pinned: the writer may get faster, but no record may
//! change by a single byte (readers, `audit verify` and the seal chain depend on them).
//!
//! Each case builds a request's trail as the layers leave it, with a fixed time, id and
//! counts, and writes its line; the lines are compared with `golden.jsonl` next to this file.
//! `SOCKWARDEN_BLESS_AUDIT=1 cargo test --lib audit::record::golden` rewrites that file (only
//! for a deliberate format change: review its diff).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Uri};

use super::tests::quiet_audit;
use super::{connection_fields, write_line, Counts};
use crate::audit::schema::Record;
use crate::audit::Audit;
use crate::context::{Facts, Trail, Verdict};
use crate::error::{Limit, ProxyError};
use crate::identity::Evidence;
use crate::inspect::{Summary, Violation};
use crate::listener::Peer;
use crate::policy::Reason;
use crate::refusal::{Isolated, Refusal, RefusalKind, UnmetCondition, UnmetRule};
use crate::route::ObjectKind;

const GOLDEN: &str = include_str!("golden.jsonl");

/// A fixed moment: 2026-11-30T00:53:20.123456Z.
fn at(micros_after: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_796_000_000_123_456 + micros_after)
}

fn unix_conn() -> Arc<[u8]> {
    connection_fields(
        "unix:///run/sockwarden/docker.sock",
        &Peer::Unix {
            uid: 1000,
            gid: 1000,
            pid: Some(4242),
        },
        &Evidence {
            exe: Some("/usr/bin/docker".into()),
            loginuid: Some(1000),
            cert_subject: None,
            cert_san: Vec::new(),
        },
    )
}

/// A trail for `method target`, classified, from client `ci` on a unix connection.
fn trail(audit: &Audit, n: u64, method: &str, target: &str) -> Trail {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = target.parse().unwrap();
    let trail = Trail {
        id: crate::logging::request::RequestId {
            prefix: 0x6b11_6ce1,
            number: n,
        }
        .text(),
        time: at(n * 1_001),
        conn_fields: Some(unix_conn()),
        user_agent: Some(HeaderValue::from_static("Docker-Client/28.0.1 (linux)")),
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

fn allow(t: &Trail, operation: &'static str) {
    t.note_decision(
        Verdict::Allow,
        Some(Arc::from("ci")),
        Arc::from("allow[0]"),
        Reason::Allowed(operation),
    );
}

fn counts(status: Option<u16>, micros: u64) -> Counts {
    Counts {
        at: None,
        status,
        duration: Duration::from_micros(micros),
        bytes_in: 0,
        bytes_out: 3456,
        end: "complete",
    }
}

fn line(t: &Trail, event: &'static str, counts: &Counts) -> String {
    let mut out = Vec::new();
    write_line(t, event, counts, &mut out);
    String::from_utf8(out).unwrap()
}

fn summary() -> Summary {
    let mut ulimits = BTreeMap::new();
    ulimits.insert("nofile".to_owned(), 1024);
    Summary {
        kind: "container_create",
        name: Some("job".into()),
        image: Some("docker.io/library/busybox:latest".into()),
        user: Some("1000:1000".into()),
        privileged: false,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["ALL".into()],
        mounts: vec![crate::inspect::MountSummary {
            kind: "bind",
            source: Some("/srv/cache \"x\"".into()),
            target: "/cache".into(),
            read_only: true,
            from: "Binds",
        }],
        named_volumes: vec!["data".into()],
        networks: vec!["ci-net".into()],
        namespaces: vec!["network=none".into()],
        security_opt: vec!["no-new-privileges".into()],
        devices: vec![],
        limits: crate::inspect::Limits {
            memory: Some(1 << 28),
            pids: Some(256),
            ..Default::default()
        },
        ulimits,
        runtime: None,
        port_bindings: vec!["127.0.0.1:8080->80/tcp".into()],
        restart_policy: Some("on-failure".into()),
        driver: None,
        tags: vec![],
        plugin_privileges: vec![],
    }
}

fn refusal(kind: RefusalKind, rule: &str) -> ProxyError {
    ProxyError::Denied(Box::new(Refusal {
        operation: "container.create",
        method: Method::POST,
        path: "/containers/create".into(),
        policy: Some(Arc::from("ci")),
        rule: Arc::from(rule),
        kind,
    }))
}

/// Every case's line, in order.
fn lines() -> Vec<String> {
    let audit = quiet_audit();
    let mut out = Vec::new();
    let mut n = 0u64;
    let mut next = |method: &str, target: &str| {
        n += 1;
        trail(&audit, n, method, target)
    };

    // The benchmark's request: an allowed list, and a ping.
    let t = next("GET", "/v1.41/containers/json");
    allow(&t, "container.list");
    out.push(line(&t, "request", &counts(Some(200), 1_234)));
    let t = next("GET", "/_ping");
    allow(&t, "system.ping");
    out.push(line(&t, "request", &counts(Some(200), 5)));
    let t = next("HEAD", "/v1.47/_ping");
    allow(&t, "system.ping");
    out.push(line(&t, "request", &counts(Some(200), 0)));

    // Queries: escapes, JSON values, repeated names, secrets, non-ASCII, control characters.
    let t = next(
        "GET",
        "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D&limit=5&all=0",
    );
    allow(&t, "container.list");
    out.push(line(&t, "request", &counts(Some(200), 999_999)));
    let t = next(
        "POST",
        "/v1.41/build?t=app:1&t=app:latest&buildargs=%7B%22NPM_TOKEN%22%3A%22s3cr3t%22%7D&registryAuth=abc&labels=%7B%7D",
    );
    allow(&t, "image.build");
    out.push(line(&t, "request", &counts(Some(200), 61_000_123)));
    let t = next(
        "GET",
        "/v1.41/images/json?filters=%C3%A9t%C3%A9%20%E2%9C%93%F0%9D%84%9E&x%01y=%0A%0D%09%1F%7F%5C%22",
    );
    allow(&t, "image.list");
    out.push(line(&t, "request", &counts(Some(200), 42)));
    let t = next(
        "GET",
        "/v1.41/images/json?filters=%C3%A9t%C3%A9%20%E2%9C%93%F0%9D%84%9E%22%5C%2F&%22q%22=%5Cx",
    );
    allow(&t, "image.list");
    out.push(line(&t, "request", &counts(Some(200), 42)));
    let t = next("GET", "/v1.41/containers/%C3%A9t%C3%A9-%E2%9C%93/json");
    allow(&t, "container.inspect");
    out.push(line(&t, "request", &counts(Some(200), 42)));
    let t = next(
        "POST",
        "/v1.41/images/create?fromImage=busybox&tag=1.36&X-Registry-Auth=zzz",
    );
    allow(&t, "image.create");
    out.push(line(&t, "request", &counts(Some(200), 3_000)));
    let t = next("POST", "/v1.41/containers/create?name=job");
    allow(&t, "container.create");
    t.note_inspection(Some(summary()), None);
    t.note_defaults(vec!["Memory=268435456".into(), "PidsLimit=256".into()]);
    t.note_body(&bytes::Bytes::from_static(
        br#"{"Image":"busybox","Env":["TOKEN=x","PLAIN"],"HostConfig":{"Binds":["/srv/cache:/cache:ro"]},"Labels":{"a\"b":"\u00e9"}}"#,
    ));
    out.push(line(&t, "request", &counts(Some(201), 15_151)));
    // A body that is not JSON is left out.
    let t = next("POST", "/v1.41/containers/create");
    allow(&t, "container.create");
    t.note_body(&bytes::Bytes::from_static(b"not json"));
    out.push(line(&t, "request", &counts(Some(201), 1)));

    // Paths: escaped, long (cut), unclean (not normalized), percent-encoded names.
    let t = next("GET", "/v1.41/containers/a%22b%5Cc%0A/json");
    allow(&t, "container.inspect");
    out.push(line(&t, "request", &counts(Some(404), 77)));
    let long = "x".repeat(1500);
    let t = next(
        "GET",
        &format!("/v1.41/containers/{long}/json?{long}={long}"),
    );
    allow(&t, "container.inspect");
    out.push(line(&t, "request", &counts(Some(404), 77)));
    let many: String = (0..80).map(|i| format!("&p{i}=v{i}")).collect();
    let t = next("GET", &format!("/_ping?a=1{many}"));
    allow(&t, "system.ping");
    out.push(line(&t, "request", &counts(Some(200), 10)));
    let t = next("GET", "/containers/../json");
    t.note_error(&ProxyError::BadRequest("unclean path".into()));
    out.push(line(&t, "request", &counts(Some(400), 10)));
    let t = next("PURGE", "/v1.41/containers/json");
    t.note_error(&ProxyError::BadRequest("method PURGE \"unknown\"".into()));
    out.push(line(&t, "request", &counts(Some(400), 10)));

    // Refusals of each kind, and audit mode.
    let bind = Violation {
        field: "HostConfig.Binds[0]".into(),
        reason: "host path /var/run/docker.sock is not allowed (bind_sources)".into(),
        setting: Some("bind_sources".into()),
        value: Some("/var/run/docker.sock".into()),
    };
    let kinds = [
        (RefusalKind::NotAllowed, "default-deny"),
        (RefusalKind::DenyRule, "deny container.*"),
        (RefusalKind::NoClient, "no-client"),
        (RefusalKind::UnknownClient(Arc::from("ghost")), "no-policy"),
        (
            RefusalKind::Conditions(vec![UnmetRule {
                rule: Arc::from("create"),
                conditions: vec![UnmetCondition {
                    param: "name".into(),
                    wanted: "name matches ci-*".into(),
                    found: "name=job".into(),
                }],
            }]),
            "default-deny",
        ),
        (RefusalKind::Inspection(bind.clone()), "ci.container"),
        (RefusalKind::Isolation(Isolated::Unavailable), "isolation"),
        (
            RefusalKind::Isolation(Isolated::NotOwned {
                kind: ObjectKind::Container,
                name: "web".into(),
            }),
            "isolation",
        ),
    ];
    for (kind, rule) in kinds {
        let t = next("POST", "/v1.41/containers/create?name=job");
        allow(&t, "container.create");
        t.note_error(&refusal(kind, rule));
        out.push(line(&t, "request", &counts(Some(403), 300)));
    }
    let t = next("POST", "/containers/create");
    t.note_decision(
        Verdict::WouldDeny,
        Some(Arc::from("ro")),
        Arc::from("default-deny"),
        Reason::Refused("container.create", RefusalKind::NotAllowed),
    );
    t.note_inspection(
        None,
        Some((
            "container.create",
            Violation {
                field: "HostConfig.Privileged".into(),
                reason: "privileged containers are not allowed (allow_privileged)".into(),
                setting: None,
                value: None,
            },
        )),
    );
    t.note_tenant("uid:1001");
    out.push(line(&t, "request", &counts(Some(201), 300)));
    let t = next("GET", "/v1.41/info");
    t.note_error(&ProxyError::Limited {
        limit: Limit::Rate,
        what: "client ci is over 10 requests/s".into(),
        retry_after: None,
    });
    t.note_rate_refusal(Some(17));
    out.push(line(&t, "request", &counts(Some(429), 8)));
    let t = next("GET", "/v1.41/info");
    t.note_error(&ProxyError::Unavailable(
        "the audit log cannot be written (audit.on_failure = \"closed\")".into(),
    ));
    out.push(line(&t, "request", &counts(Some(503), 8)));
    let t = next("GET", "/v1.41/containers/json");
    allow(&t, "container.list");
    t.note_error(&ProxyError::Upstream {
        addr: "unix:///run/docker.sock".into(),
        detail: "connection refused".into(),
    });
    out.push(line(&t, "request", &counts(Some(502), 3_001)));
    let t = next("GET", "/v1.41/containers/json");
    allow(&t, "container.list");
    t.note_answered(Arc::from("isolation"), "answered by sockwarden: \"empty\"");
    out.push(line(&t, "request", &counts(Some(200), 3_001)));

    // A hijacked session opening and closing, and a client that went away.
    let t = next(
        "POST",
        "/v1.41/containers/job/attach?stream=1&stdin=1&stdout=1",
    );
    allow(&t, "container.attach");
    out.push(line(&t, "session_open", &counts(Some(101), 2_000)));
    let close = Counts {
        at: Some(at(86_400_000_000)),
        status: None,
        duration: Duration::from_secs(3_600),
        bytes_in: 12,
        bytes_out: u64::MAX,
        end: "client_gone",
    };
    out.push(line(&t, "session_close", &close));

    // Other connections: no client, no user agent, TCP and TLS peers, none at all.
    let t = next("GET", "/v1.41/version");
    {
        let mut facts = t.facts();
        facts.client = None;
    }
    let t = Trail {
        user_agent: None,
        conn_fields: Some(connection_fields(
            "tcp://127.0.0.1:2375",
            &Peer::Tcp("[::1]:50000".parse().unwrap()),
            &Evidence::default(),
        )),
        ..t
    };
    t.note_error(&refusal(RefusalKind::NoClient, "no-client"));
    out.push(line(&t, "request", &counts(Some(403), 1)));
    let t = next("GET", "/v1.41/version");
    let t = Trail {
        user_agent: Some(HeaderValue::from_static("curl/8.5 \"quoted\"\tand tab")),
        conn_fields: Some(connection_fields(
            "tls://0.0.0.0:2376",
            &Peer::Tcp("10.0.0.7:41000".parse().unwrap()),
            &Evidence {
                exe: None,
                loginuid: None,
                cert_subject: Some("CN=ci-bot, O=\"example\"".into()),
                cert_san: vec!["ci-bot.example".into(), "10.0.0.7".into()],
            },
        )),
        ..t
    };
    allow(&t, "system.version");
    out.push(line(&t, "request", &counts(Some(200), 1)));
    let t = next("GET", "/v1.41/version");
    let t = Trail {
        user_agent: Some(HeaderValue::from_bytes(b"bin\xffary").unwrap()),
        conn_fields: None,
        ..t
    };
    allow(&t, "system.version");
    let mut c = counts(Some(200), 1);
    c.end = "error";
    out.push(line(&t, "request", &c));

    // A record that is not a request's (reload), written from the record type.
    let reload = Record {
        time: Some("2026-12-03T08:00:00.000000Z".into()),
        id: Some("6b116ce1-000000ff".into()),
        event: Some("reload".into()),
        result: Some("error".into()),
        source: Some("SIGHUP".into()),
        error: Some("policy \"x\": unknown operation".into()),
        restart_needed: vec!["listen".into()],
        ..Record::default()
    };
    let mut bytes = Vec::new();
    crate::audit::sink::record_line(&reload, &mut bytes);
    out.push(String::from_utf8(bytes).unwrap());
    out
}

#[test]
fn records_are_byte_identical_to_the_pinned_lines() {
    let lines = lines();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/audit/record/golden.jsonl");
    if std::env::var_os("SOCKWARDEN_BLESS_AUDIT").is_some() {
        std::fs::write(&path, lines.concat()).unwrap();
        return;
    }
    let pinned: Vec<&str> = GOLDEN.split_inclusive('\n').collect();
    assert_eq!(lines.len(), pinned.len(), "number of cases");
    for (i, (got, want)) in lines.iter().zip(&pinned).enumerate() {
        assert_eq!(got, want, "case {i} differs");
    }
}

/// The pinned lines are what readers read: every one parses as JSON (a guard on the file).
#[test]
fn pinned_lines_are_json() {
    for line in GOLDEN.lines() {
        let _: serde_json::Value = serde_json::from_str(line).unwrap();
    }
}
