//! Issue 13's shared host and the limits: under `isolation = "user"` each unix user of a
//! client is a tenant, with the client's request rate and `max_connections` for itself, so
//! that one tenant's burst or held-open streams never get another tenant a 429; and every
//! audit record of an isolated client carries its tenant, also of the requests the rate limit
//! or the policy refuse. Real unix users drive both docker CLIs (and curl) through one socket
//! against the test daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use support::isolation::shared_host_toml;
use support::{
    audit_records, toml_str, wait_audit_record, wait_for, Docker, Proxy, DEBIAN_DOCKER_CLI,
};

const T: Duration = Duration::from_secs(20);

fn audit_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("audit.log")
}

/// Runs `docker ps` as `user` until sockwarden refuses it (at most 12 times) and returns the
/// refusal's message.
fn ps_until_refused(user: &Docker) -> String {
    for _ in 0..12 {
        let out = user.run(&["ps", "-q"]);
        if !out.status.success() {
            return support::stderr_str(&out);
        }
    }
    panic!("never refused")
}

/// Users of the clients in [`per_user_proxy`]: `tenants` (isolated per user) and `team`.
const TENANT_A: u32 = 23_901;
const TENANT_B: u32 = 23_902;
const TEAM_C: u32 = 23_903;
const TEAM_D: u32 = 23_904;

/// sockwarden with two clients under the same `limits` (a `[client.limits]` body): `tenants`
/// (users A and B, `isolation = "user"`, read-only) and `team` (users C and D, read-only, not
/// isolated), and root as an unlimited admin, on one 0666 socket.
fn per_user_proxy(limits: &str) -> Proxy {
    let limits = limits.to_owned();
    Proxy::start_config(move |dir| {
        format!(
            r#"{head}
[[client]]
name = "tenants"
policy = "isolated"
uids = [{TENANT_A}, {TENANT_B}]

[client.limits]
{limits}

[[client]]
name = "team"
policy = "read-only"
uids = [{TEAM_C}, {TEAM_D}]

[client.limits]
{limits}

[policy.isolated]
profile = "read-only"
isolation = "user"

[isolation]
image_ledger = {ledger}

[audit]
sink = "file"
path = {audit}
"#,
            head = shared_host_toml(dir),
            ledger = toml_str(&dir.join("image-owners").display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
        )
    })
}

/// Under `isolation = "user"` each unix user of a client is a tenant of its own, with the
/// client's request rate for itself: one user's flood leaves the next user's `docker ps` alone.
/// Without isolation the users of a client share its rate, as before.
#[test]
fn each_user_of_an_isolated_client_has_a_rate_of_its_own() {
    let proxy = per_user_proxy("requests_per_second = 0.2\nburst = 6");
    let as_user = |uid: u32| proxy.docker().user(uid, uid);
    // The policy's refusal (read-only) of an isolated client's request: before the isolation
    // layer, and still its tenant's record.
    let out = as_user(TENANT_A).run(&["network", "create", "sw-denied"]);
    assert!(!out.status.success(), "{}", support::describe(&out));
    let denied = wait_audit_record(&audit_path(&proxy), T, |r| {
        r["operation"] == "network.create"
    });
    assert_eq!(denied["decision"], "deny", "{denied}");
    assert_eq!(denied["tenant"], format!("uid:{TENANT_A}"), "{denied}");
    let refused = ps_until_refused(&as_user(TENANT_A));
    assert!(
        refused.contains(&format!(
            "too many requests: user {TENANT_A} of client tenants is limited to 0.2 requests per second"
        )),
        "{refused}"
    );
    // The other tenant of the same client is not held back, with either CLI.
    as_user(TENANT_B).ok(&["ps", "-q"]);
    as_user(TENANT_B).bin(DEBIAN_DOCKER_CLI).ok(&["ps", "-q"]);
    // The first one's bucket stays empty: the other's requests did not refill it.
    assert!(!as_user(TENANT_A).run(&["ps", "-q"]).status.success());
    // A client without isolation: its users share one bucket.
    let refused = ps_until_refused(&as_user(TEAM_C));
    assert!(
        refused.contains("too many requests: client team is limited to 0.2 requests per second"),
        "{refused}"
    );
    let out = as_user(TEAM_D).run(&["ps", "-q"]);
    assert!(!out.status.success(), "{}", support::describe(&out));
    assert!(support::stderr_str(&out).contains("client team is limited"));
    // Every record of an isolated client carries its tenant, also of a request the rate limit
    // refused before anything else looked at it; a client without isolation has none.
    let limited = wait_audit_record(&audit_path(&proxy), T, |r| {
        r["rule"] == "rate-limit" && r["peer"]["uid"] == TENANT_A
    });
    assert_eq!(limited["tenant"], format!("uid:{TENANT_A}"), "{limited}");
    let records = audit_records(&audit_path(&proxy));
    for r in &records {
        match r["peer"]["uid"].as_u64() {
            Some(uid) if [TENANT_A, TENANT_B].contains(&(uid as u32)) => {
                assert_eq!(r["tenant"], format!("uid:{uid}"), "{r}")
            }
            _ => assert!(r.get("tenant").is_none(), "{r}"),
        }
    }
    assert!(records
        .iter()
        .any(|r| r["rule"] == "rate-limit" && r["peer"]["uid"] == TEAM_C));
}

/// Holds one connection to `proxy` open as unix user `uid`: curl following the event stream
/// (killed on drop).
struct HeldConnection(std::process::Child);

impl HeldConnection {
    fn open(proxy: &Proxy, uid: u32) -> HeldConnection {
        use std::os::unix::process::CommandExt;
        // As `Docker::user` runs the CLI: std drops the supplementary groups with the uid.
        let child = std::process::Command::new("curl")
            .uid(uid)
            .gid(uid)
            .args(["-sN", "--unix-socket"])
            .arg(&proxy.socket)
            .arg("http://docker/events")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        HeldConnection(child)
    }
}

/// `n` connections held open as `uid`: one refused while the user's earlier connections were
/// still being closed ends at once, and is opened again.
fn hold_connections(proxy: &Proxy, uid: u32, n: usize) -> Vec<HeldConnection> {
    let mut held: Vec<HeldConnection> = Vec::new();
    wait_for(T, || {
        held.retain_mut(|h| matches!(h.0.try_wait(), Ok(None)));
        while held.len() < n {
            held.push(HeldConnection::open(proxy, uid));
        }
        thread::sleep(Duration::from_millis(300));
        held.iter_mut()
            .all(|h| matches!(h.0.try_wait(), Ok(None)))
            .then_some(())
    })
    .expect("connections held open");
    held
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same for connections: a user of an isolated client holding its `max_connections` open
/// keeps no other user out; the users of a client without isolation share the client's.
#[test]
fn each_user_of_an_isolated_client_has_its_own_connections() {
    let proxy = per_user_proxy("max_connections = 3\nrequests_per_second = 0");
    let as_user = |uid: u32| proxy.docker().user(uid, uid);
    for (holder, other, refusal, other_ok) in [
        (
            TENANT_A,
            TENANT_B,
            format!("user {TENANT_A} of client tenants is limited to 3 concurrent connections"),
            true,
        ),
        (
            TEAM_C,
            TEAM_D,
            "client team is limited to 3 concurrent connections".to_owned(),
            false,
        ),
    ] {
        as_user(holder).ok(&["ps", "-q"]);
        let held = hold_connections(&proxy, holder, 3);
        // Once the three are open, the holder's next connection is refused.
        let refused = wait_for(T, || {
            let out = as_user(holder).run(&["ps", "-q"]);
            (!out.status.success()).then(|| support::stderr_str(&out))
        })
        .expect("the holder's fourth connection was never refused");
        assert!(refused.contains(&refusal), "{refused}");
        for cli in [as_user(other), as_user(other).bin(DEBIAN_DOCKER_CLI)] {
            let out = cli.run(&["ps", "-q"]);
            assert_eq!(
                out.status.success(),
                other_ok,
                "{}",
                support::describe(&out)
            );
            if !other_ok {
                assert!(support::stderr_str(&out).contains(&refusal));
            }
        }
        drop(held);
        // Closed connections are given back.
        wait_for(T, || {
            as_user(holder)
                .run(&["ps", "-q"])
                .status
                .success()
                .then_some(())
        })
        .expect("connections given back");
    }
}
