//! Isolation's filtered views (issue 13), end to end: two tenants (two real unix uids under a
//! policy with `isolation = "user"`) and an admin (`isolation = "none"`) on one socket, the
//! real docker CLIs (28 and Debian's 20.10) and raw API requests through sockwarden against
//! the test daemon. Lists, events and disk usage show nothing of the other tenant nor of
//! unowned objects (images: own plus shared), with and without client filters; prunes leave
//! the other tenant's and unowned objects on the daemon; the admin sees everything.
//!
//! Objects are created through the tenant's own CLI when sockwarden labels them (isolation's
//! object half), and otherwise directly on the daemon with the owner label set: the label
//! `sockwarden.owner=uid:N` is the contract, and every test checks it on the daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::isolation::shared_host_toml;
use support::{
    daemon_socket, stdout_str, test_image, toml_str, unique_name, Cleanup, Docker, Proxy,
    DEBIAN_DOCKER_CLI,
};

const OWNER: &str = "sockwarden.owner";

/// Each test's tenants are uids of their own, so tests running at once never share a view.
static NEXT_UID: AtomicU32 = AtomicU32::new(23_000);

fn two_uids() -> (u32, u32) {
    let a = NEXT_UID.fetch_add(2, Ordering::Relaxed);
    (a, a + 1)
}

/// sockwarden with a tenant client (the `ci` profile plus prunes and networks, isolated per
/// user) for `tenants` and the root admin (allow-all, no isolation), on one 0666 socket.
fn proxy(tenants: &[u32]) -> Proxy {
    let uids: Vec<String> = tenants.iter().map(u32::to_string).collect();
    Proxy::start_config(|dir| {
        format!(
            r#"{head}
[[client]]
name = "developers"
policy = "tenant"
uids = [{uids}]

[policy.tenant]
profile = "ci"
allow = ["container.prune", "image.prune", "volume.prune", "network.prune",
         "network.create", "network.delete", "exec.create", "exec.start",
         "container.commit"]
allow_dangerous = ["exec.create", "exec.start", "container.commit"]
isolation = "user"

[isolation]
image_ledger = {ledger}

# These tests drive the CLI at a few hundred requests in seconds, past the default rate
# (50 a second, bursts of 200) on a fast machine; the rate limit is not what they test.
[limits]
requests_per_second = 0
"#,
            head = shared_host_toml(dir),
            uids = uids.join(", "),
            ledger = toml_str(&dir.join("image-owners").display().to_string()),
        )
    })
}

fn daemon() -> Docker {
    Docker::new(&daemon_socket())
}

fn tenant(proxy: &Proxy, uid: u32) -> Docker {
    proxy.docker().user(uid, uid)
}

fn clis(cli: &Docker) -> [Docker; 2] {
    [cli.clone(), cli.clone().bin(DEBIAN_DOCKER_CLI)]
}

fn owner_value(uid: u32) -> String {
    format!("uid:{uid}")
}

fn label_on_daemon(kind: &str, name: &str) -> String {
    let format = format!("{{{{index .{} \"{OWNER}\"}}}}", label_path(kind));
    daemon().ok_str(&[kind, "inspect", "--format", &format, name])
}

fn label_path(kind: &str) -> &'static str {
    match kind {
        "container" | "image" => "Config.Labels",
        _ => "Labels",
    }
}

/// Creates an object as tenant `uid`: through sockwarden when it labels creates for the
/// tenant, otherwise directly on the daemon with the owner label (`owned`), or without it
/// (`owned == None`: an object from elsewhere). Returns its name; checks the label.
struct Maker<'a> {
    proxy: &'a Proxy,
    cleanup: &'a Cleanup,
}

impl Maker<'_> {
    /// `args` with the owner label added when run on the daemon for a tenant.
    fn create(&self, owned: Option<u32>, kind: &str, name: &str, args: &[&str]) {
        let mut tried = None;
        if let Some(uid) = owned {
            let out = tenant(self.proxy, uid).run(args);
            if out.status.success() {
                tried = Some(uid);
            }
        }
        if tried.is_none() {
            let mut direct: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if let Some(uid) = owned {
                // After the subcommand words (`run`, `volume create`, `network create`, `commit`).
                let at = if matches!(args.first(), Some(&"volume" | &"network")) {
                    2
                } else {
                    1
                };
                let flag = if args.first() == Some(&"commit") {
                    vec![
                        "--change".to_string(),
                        format!("LABEL {OWNER}={}", owner_value(uid)),
                    ]
                } else {
                    vec![
                        "--label".to_string(),
                        format!("{OWNER}={}", owner_value(uid)),
                    ]
                };
                direct.splice(at..at, flag);
            }
            let direct: Vec<&str> = direct.iter().map(String::as_str).collect();
            daemon().ok(&direct);
        }
        let label = label_on_daemon(kind, name);
        let label = if label == "<no value>" {
            String::new()
        } else {
            label
        };
        let wanted = owned.map(owner_value).unwrap_or_default();
        assert_eq!(label, wanted, "{kind} {name}: owner label on the daemon");
    }

    fn container(&self, owned: Option<u32>, tag: &str, running: bool, role: &str) -> String {
        let name = self.cleanup.container(tag);
        let role = format!("role={role}");
        let image = test_image();
        let mut args = vec![if running { "run" } else { "create" }];
        if running {
            args.push("-d");
        }
        args.extend([
            "--name",
            &name,
            "--label",
            &role,
            "--network",
            "none",
            &image,
            "sleep",
            "600",
        ]);
        self.create(owned, "container", &name, &args);
        name
    }

    fn volume(&self, owned: Option<u32>, tag: &str, role: &str) -> String {
        let name = unique_name(tag);
        let role = format!("role={role}");
        self.create(
            owned,
            "volume",
            &name,
            &["volume", "create", "--label", &role, &name],
        );
        name
    }

    fn network(&self, owned: Option<u32>, tag: &str, role: &str) -> String {
        let name = unique_name(tag);
        let role = format!("role={role}");
        self.create(
            owned,
            "network",
            &name,
            &["network", "create", "--internal", "--label", &role, &name],
        );
        name
    }

    /// An image of the tenant's: a commit of a fresh container of the fixture. A tenant's is
    /// committed through sockwarden (only images sockwarden made are a tenant's: the image
    /// ledger), from a container of its own.
    fn image(&self, owned: Option<u32>, tag: &str) -> String {
        let from = self.cleanup.container(&format!("{tag}-src"));
        let create = [
            "create",
            "--network",
            "none",
            "--name",
            &from,
            &test_image(),
            "true",
        ];
        match owned {
            Some(uid) => {
                tenant(self.proxy, uid).ok(&create);
            }
            None => {
                daemon().ok(&create);
            }
        }
        let name = self.cleanup.image(tag);
        self.create(owned, "image", &name, &["commit", &from, &name]);
        if let Some(uid) = owned {
            // Not one of the tenant's containers the lists are checked against.
            tenant(self.proxy, uid).ok(&["rm", &from]);
        }
        name
    }
}

fn cleanup_volumes_networks(volumes: &[String], networks: &[String]) {
    for v in volumes {
        let _ = daemon().try_run(&["volume", "rm", "-f", v]);
    }
    for n in networks {
        let _ = daemon().try_run(&["network", "rm", n]);
    }
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Runs curl as `uid` against the proxy: (status, body).
fn curl_as(uid: u32, proxy: &Proxy, method: &str, path_and_query: &str) -> (u16, String) {
    let out = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .args([
            "curl",
            "-s",
            "-g",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ])
        .arg("--unix-socket")
        .arg(&proxy.socket)
        .arg(format!("http://docker{path_and_query}"))
        .output()
        .expect("run setpriv curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `?filters=` for a JSON value, percent-encoded.
fn filters(value: &str) -> String {
    let mut out = String::from("filters=");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One tenant's objects and the other's, plus objects from elsewhere.
struct World {
    a: u32,
    b: u32,
    a_running: String,
    a_created: String,
    b_running: String,
    b_created: String,
    unowned_container: String,
    a_volumes: [String; 2],
    b_volume: String,
    unowned_volume: String,
    a_network: String,
    b_network: String,
    unowned_network: String,
    a_image: String,
    b_image: String,
    b_repo: String,
    unowned_image: String,
}

impl World {
    fn build(proxy: &Proxy, cleanup: &Cleanup, (a, b): (u32, u32)) -> World {
        let m = Maker { proxy, cleanup };
        World {
            a,
            b,
            a_running: m.container(Some(a), "a-run", true, "web"),
            a_created: m.container(Some(a), "a-new", false, "db"),
            b_running: m.container(Some(b), "b-run", true, "web"),
            b_created: m.container(Some(b), "b-new", false, "db"),
            unowned_container: m.container(None, "x-run", true, "web"),
            a_volumes: [
                m.volume(Some(a), "a-vol", "web"),
                m.volume(Some(a), "a-vol2", "db"),
            ],
            b_volume: m.volume(Some(b), "b-vol", "web"),
            unowned_volume: m.volume(None, "x-vol", "web"),
            a_network: m.network(Some(a), "a-net", "web"),
            b_network: m.network(Some(b), "b-net", "web"),
            unowned_network: m.network(None, "x-net", "web"),
            a_image: m.image(Some(a), "a-img"),
            b_image: String::new(),
            b_repo: String::new(),
            unowned_image: m.image(None, "x-img"),
        }
        .with_b_image(m.image(Some(b), "b-img"))
    }

    fn with_b_image(mut self, image: String) -> World {
        self.b_repo = image.split(':').next().unwrap().to_owned();
        self.b_image = image;
        self
    }

    fn foreign(&self) -> Vec<&String> {
        vec![
            &self.b_running,
            &self.b_created,
            &self.unowned_container,
            &self.b_volume,
            &self.unowned_volume,
            &self.b_network,
            &self.unowned_network,
            &self.b_repo,
        ]
    }

    fn drop_objects(&self) {
        let mut volumes = self.a_volumes.to_vec();
        volumes.extend([self.b_volume.clone(), self.unowned_volume.clone()]);
        cleanup_volumes_networks(
            &volumes,
            &[
                self.a_network.clone(),
                self.b_network.clone(),
                self.unowned_network.clone(),
            ],
        );
    }
}

fn assert_nothing_foreign(world: &World, text: &str, what: &str) {
    for name in world.foreign() {
        assert!(
            !text.contains(name.as_str()),
            "{what} shows {name}:\n{text}"
        );
    }
}

#[test]
fn lists_show_only_the_tenants_objects_with_and_without_filters() {
    let uids = two_uids();
    let proxy = proxy(&[uids.0, uids.1]);
    let cleanup = Cleanup::new();
    let w = World::build(&proxy, &cleanup, uids);
    let image = test_image();
    let image_repo = image.split(':').next().unwrap().to_owned();
    let repo = |r: &String| r.split(':').next().unwrap().to_owned();
    for cli in clis(&tenant(&proxy, w.a)) {
        for version in [None, Some("1.24"), Some("1.41")] {
            let cli = match version {
                Some(v) => cli.clone().env("DOCKER_API_VERSION", v),
                None => cli.clone(),
            };
            let names = |args: &[&str]| lines(&cli.ok_str(args));
            let ps = |extra: &[&str]| {
                let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
                args.extend(extra);
                names(&args)
            };
            // Containers.
            assert_eq!(ps(&[]), set(&[&w.a_running, &w.a_created]), "{version:?}");
            assert_eq!(
                names(&["ps", "--format", "{{.Names}}"]),
                set(&[&w.a_running])
            );
            assert_eq!(ps(&["--filter", "label=role=web"]), set(&[&w.a_running]));
            assert_eq!(ps(&["--filter", "status=created"]), set(&[&w.a_created]));
            assert_eq!(
                ps(&["--filter", "status=created", "--filter", "status=running"]),
                set(&[&w.a_running, &w.a_created])
            );
            assert_eq!(
                ps(&["--filter", &format!("name={}", w.b_running)]),
                set(&[])
            );
            assert_eq!(
                ps(&["--filter", &format!("name={}", w.a_created)]),
                set(&[&w.a_created])
            );
            assert_eq!(
                ps(&["--filter", &format!("id={}", w.b_running)]),
                set(&[]),
                "an id filter does not reach another tenant's container"
            );
            // before/since name a container; others' give nothing of theirs.
            // Another tenant's container named in before/since answers as a missing one.
            for key in ["since", "before"] {
                for other in [&w.b_running, &w.unowned_container] {
                    let out = cli.run(&["ps", "-a", "--filter", &format!("{key}={other}")]);
                    assert!(!out.status.success(), "{}", support::describe(&out));
                    assert_eq!(
                        support::stderr_str(&out).trim(),
                        format!("Error response from daemon: No such container: {other}")
                    );
                }
            }
            let since_own = ps(&["--filter", &format!("since={}", w.a_running)]);
            assert_eq!(since_own, set(&[&w.a_created]));
            assert!(ps(&["--filter", &format!("before={}", w.a_created)])
                .is_subset(&set(&[&w.a_running])));
            assert_eq!(ps(&["--filter", "label=role=none"]), set(&[]));
            // Volumes.
            let vols = |extra: &[&str]| {
                let mut args = vec!["volume", "ls", "-q"];
                args.extend(extra);
                names(&args)
            };
            assert_eq!(vols(&[]), set(&[&w.a_volumes[0], &w.a_volumes[1]]));
            assert_eq!(
                vols(&["--filter", "label=role=db"]),
                set(&[&w.a_volumes[1]])
            );
            assert_eq!(
                vols(&["--filter", &format!("name={}", w.b_volume)]),
                set(&[])
            );
            assert_eq!(
                vols(&["--filter", "dangling=true"]),
                set(&[&w.a_volumes[0], &w.a_volumes[1]])
            );
            // Networks.
            let nets = |extra: &[&str]| {
                let mut args = vec!["network", "ls", "--format", "{{.Name}}"];
                args.extend(extra);
                names(&args)
            };
            assert_eq!(nets(&[]), set(&[&w.a_network]));
            assert_eq!(nets(&["--filter", "label=role=web"]), set(&[&w.a_network]));
            assert_eq!(nets(&["--filter", "name=bridge"]), set(&[]));
            assert_eq!(
                nets(&["--filter", &format!("name={}", w.b_network)]),
                set(&[])
            );
            // Images: own and shared, never the other tenant's.
            let imgs = |extra: &[&str]| {
                let mut args = vec!["images", "--format", "{{.Repository}}"];
                args.extend(extra);
                names(&args)
            };
            let all = imgs(&[]);
            assert!(all.contains(&repo(&w.a_image)), "{all:?}");
            assert!(all.contains(&image_repo), "shared fixture image: {all:?}");
            assert!(all.contains(&repo(&w.unowned_image)), "shared: {all:?}");
            assert!(!all.contains(&repo(&w.b_image)), "{all:?}");
            assert_eq!(imgs(&[&repo(&w.b_image)]), set(&[]));
            assert_eq!(
                imgs(&["--filter", &format!("reference={}", repo(&w.b_image))]),
                set(&[])
            );
            assert_eq!(imgs(&[&repo(&w.a_image)]), [repo(&w.a_image)].into());
            assert!(imgs(&["-a"]).contains(&repo(&w.a_image)));
            assert!(!imgs(&["-a"]).contains(&repo(&w.b_image)));
            assert!(!imgs(&["--filter", "dangling=false"]).contains(&repo(&w.b_image)));
            assert!(!imgs(&["--filter", &format!("since={image}")]).contains(&repo(&w.b_image)));
        }
    }
    // The other tenant, symmetrically (one CLI).
    let b = tenant(&proxy, w.b);
    assert_eq!(
        lines(&b.ok_str(&["ps", "-a", "--format", "{{.Names}}"])),
        set(&[&w.b_running, &w.b_created])
    );
    assert_eq!(
        lines(&b.ok_str(&["volume", "ls", "-q"])),
        set(&[&w.b_volume])
    );
    // The admin sees everything.
    let admin = proxy.docker();
    let all = admin.ok_str(&["ps", "-a", "--format", "{{.Names}}"]);
    for name in [
        &w.a_running,
        &w.b_running,
        &w.b_created,
        &w.unowned_container,
    ] {
        assert!(all.contains(name.as_str()), "admin ps: {all}");
    }
    let vols = admin.ok_str(&["volume", "ls", "-q"]);
    let nets = admin.ok_str(&["network", "ls"]);
    let imgs = admin.ok_str(&["images"]);
    for (text, name) in [
        (&vols, &w.b_volume),
        (&vols, &w.unowned_volume),
        (&nets, &w.b_network),
        (&nets, &w.unowned_network),
        (&imgs, &repo(&w.b_image)),
    ] {
        assert!(text.contains(name.as_str()), "admin misses {name}: {text}");
    }
    assert!(nets.contains("bridge"));
    w.drop_objects();
}

#[test]
fn raw_filters_are_read_as_the_daemon_reads_them_and_never_widen() {
    let uids = two_uids();
    let proxy = proxy(&[uids.0, uids.1]);
    let cleanup = Cleanup::new();
    let w = World::build(&proxy, &cleanup, uids);
    let a = w.a;
    let b_owner = owner_value(w.b);
    // Owner-label filters in every spelling, on every scoped route: refused (403).
    let spellings = [
        format!(r#"{{"label":["{OWNER}"]}}"#),
        format!(r#"{{"label":{{"{OWNER}={b_owner}":true}}}}"#),
        format!(r#"{{"label":["role=web","{OWNER}={b_owner}"]}}"#),
        format!(r#"{{"label!":["{OWNER}={}"]}}"#, owner_value(a)),
        format!(r#"{{"label!":{{"{OWNER}":true}}}}"#),
        format!(r#"{{"label":["SOCKWARDEN.OWNER={b_owner}"]}}"#),
        format!(r#"{{"label":{{"x":true}},"label":{{"{OWNER}":true}}}}"#),
    ];
    let routes = [
        ("GET", "/containers/json?all=1&"),
        ("GET", "/v1.24/containers/json?all=1&"),
        ("GET", "/volumes?"),
        ("GET", "/networks?"),
        ("GET", "/images/json?"),
        ("GET", "/v1.41/images/json?"),
        ("POST", "/containers/prune?"),
        ("POST", "/v1.41/volumes/prune?"),
        ("POST", "/images/prune?"),
        ("POST", "/networks/prune?"),
    ];
    for spelling in &spellings {
        for (method, route) in routes {
            let (status, body) =
                curl_as(a, &proxy, method, &format!("{route}{}", filters(spelling)));
            assert_eq!(status, 403, "{method} {route} {spelling}: {body}");
            assert!(body.contains("owner label"), "{body}");
        }
    }
    // Malformed filters: the daemon's own 400, never an unscoped forward.
    for bad in [
        "x",
        "[]",
        r#"{"label":"a"}"#,
        r#"{"label":{"a":"yes"}}"#,
        r#"{"label":{"a":true},"name":["x"]}"#,
        r#"{"label":[1]}"#,
    ] {
        for (method, route) in routes {
            let (status, body) = curl_as(a, &proxy, method, &format!("{route}{}", filters(bad)));
            assert_eq!(status, 400, "{method} {route} {bad}: {body}");
            assert!(body.contains("invalid filter"), "{body}");
        }
    }
    // Both JSON shapes, repeated keys (the last wins) and repeated parameters (the first
    // wins) are scoped the same way.
    let names_of = |body: &str| -> BTreeSet<String> {
        json(body)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c["Names"][0]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect()
    };
    for (query, wanted) in [
        (filters(r#"{"label":["role=web"]}"#), set(&[&w.a_running])),
        (
            filters(r#"{"label":{"role=web":true}}"#),
            set(&[&w.a_running]),
        ),
        (
            filters(r#"{"label":{"role=web":false}}"#),
            set(&[&w.a_running]),
        ),
        (
            filters(r#"{"label":{"role=web":true},"label":{"role=db":true}}"#),
            set(&[&w.a_created]),
        ),
        (
            format!(
                "{}&{}",
                filters(r#"{"status":["created"]}"#),
                filters(&format!(r#"{{"label":["{OWNER}"]}}"#))
            ),
            set(&[&w.a_created]),
        ),
        (
            filters(&format!(
                r#"{{"name":["{}","{}"]}}"#,
                w.b_running, w.a_running
            )),
            set(&[&w.a_running]),
        ),
        (filters("null"), set(&[&w.a_running, &w.a_created])),
        (String::from("filters="), set(&[&w.a_running, &w.a_created])),
    ] {
        for prefix in ["", "/v1.24", "/v1.41"] {
            let (status, body) = curl_as(
                a,
                &proxy,
                "GET",
                &format!("{prefix}/containers/json?all=1&{query}"),
            );
            assert_eq!(status, 200, "{query}: {body}");
            assert_eq!(names_of(&body), wanted, "{prefix} {query}");
        }
    }
    // The legacy image `filter` (API < 1.25) and `all`: never another tenant's image.
    let b_repo = w.b_image.split(':').next().unwrap();
    let a_repo = w.a_image.split(':').next().unwrap();
    for query in [
        format!("filter={b_repo}"),
        format!("filter={b_repo}&all=1"),
        format!(
            "all=1&{}",
            filters(&format!(r#"{{"reference":["{b_repo}"]}}"#))
        ),
        filters(r#"{"dangling":["false"]}"#),
    ] {
        let (status, body) = curl_as(a, &proxy, "GET", &format!("/v1.24/images/json?{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        assert!(!body.contains(b_repo), "{query}: {body}");
    }
    let (_, body) = curl_as(
        a,
        &proxy,
        "GET",
        &format!("/v1.24/images/json?filter={a_repo}"),
    );
    assert!(body.contains(a_repo), "{body}");
    // An image list's before/since naming another tenant's image answers as a missing one;
    // own and shared images may be named.
    for (name, wanted) in [
        (w.b_image.clone(), 404),
        (w.a_image.clone(), 200),
        (test_image(), 200),
        (w.unowned_image.clone(), 200),
    ] {
        for key in ["before", "since"] {
            let query = filters(&format!(r#"{{"{key}":["{name}"]}}"#));
            let (status, body) = curl_as(a, &proxy, "GET", &format!("/images/json?{query}"));
            assert_eq!(status, wanted, "{key}={name}: {body}");
            if wanted == 404 {
                assert_eq!(json(&body)["message"], format!("No such image: {name}"));
            }
        }
    }
    // Events: owner-label filters refused too, malformed ones 400.
    let (status, body) = curl_as(
        a,
        &proxy,
        "GET",
        &format!(
            "/events?until=1&{}",
            filters(&format!(r#"{{"label":["{OWNER}={b_owner}"]}}"#))
        ),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = curl_as(
        a,
        &proxy,
        "GET",
        &format!("/events?until=1&{}", filters("[")),
    );
    assert_eq!(status, 400, "{body}");
    // The CLIs show the refusal.
    for cli in clis(&tenant(&proxy, a)) {
        let out = cli.run(&["ps", "--filter", &format!("label={OWNER}={b_owner}")]);
        assert!(!out.status.success());
        assert!(
            support::stderr_str(&out).contains("owner label"),
            "{}",
            support::describe(&out)
        );
        let out = cli.run(&[
            "volume",
            "prune",
            "-f",
            "--filter",
            &format!("label!={OWNER}"),
        ]);
        assert!(!out.status.success(), "{}", support::describe(&out));
    }
    // Nothing was pruned by any of it.
    for v in [&w.a_volumes[0], &w.b_volume, &w.unowned_volume] {
        daemon().ok(&["volume", "inspect", v]);
    }
    w.drop_objects();
}

#[test]
fn prunes_remove_only_the_tenants_objects() {
    let uids = two_uids();
    let proxy = proxy(&[uids.0, uids.1]);
    let cleanup = Cleanup::new();
    let w = World::build(&proxy, &cleanup, uids);
    let m = Maker {
        proxy: &proxy,
        cleanup: &cleanup,
    };
    // Stopped containers of everyone.
    for name in [&w.a_running, &w.b_running, &w.unowned_container] {
        daemon().ok(&["kill", name]);
    }
    let _ = &m;
    // Dangling images (no tag) of everyone, made on the daemon.
    let src = cleanup.container("dangle-src");
    daemon().ok(&["create", "--name", &src, &test_image(), "true"]);
    let dangling = |owned: Option<u32>| {
        let mut args = vec!["commit".to_string()];
        if let Some(uid) = owned {
            args.extend([
                "--change".into(),
                format!("LABEL {OWNER}={}", owner_value(uid)),
            ]);
        }
        args.push(src.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        daemon().ok_str(&args)
    };
    // Made on the daemon with A's label, not by sockwarden for A: nobody's (the image
    // ledger), so A's prune must leave it.
    let (forged_dangling_id, b_dangling_id, x_dangling_id) =
        (dangling(Some(w.a)), dangling(Some(w.b)), dangling(None));
    // A's own dangling image: an untagged commit of A's container through sockwarden.
    let a_src = cleanup.container("dangle-src-a");
    tenant(&proxy, w.a).ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &a_src,
        &test_image(),
        "true",
    ]);
    let a_dangling_id = tenant(&proxy, w.a).ok_str(&["commit", &a_src]);
    let a_dangling_id = a_dangling_id.trim().to_owned();
    tenant(&proxy, w.a).ok(&["rm", &a_src]);
    // A client filter combines with the scope: only A's role=web container goes first.
    let a_cli = tenant(&proxy, w.a);
    a_cli.ok(&["container", "prune", "-f", "--filter", "label=role=db"]);
    // a_created is created, not running: prune removes it (role=db).
    let exists = |kind: &str, name: &str| daemon().run(&[kind, "inspect", name]).status.success();
    assert!(!exists("container", &w.a_created));
    assert!(
        exists("container", &w.a_running),
        "role=web kept by the filter"
    );
    assert!(exists("container", &w.b_created) && exists("container", &w.b_running));
    a_cli.ok(&["container", "prune", "-f"]);
    a_cli
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .ok(&["volume", "prune", "-f"]);
    a_cli.ok(&["network", "prune", "-f"]);
    a_cli.ok(&["image", "prune", "-f"]);
    a_cli
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .ok(&["image", "prune", "-a", "-f"]);
    // `system prune` also prunes the build cache, which isolated clients cannot: whatever it
    // does, it is scoped.
    let out = a_cli.run(&["system", "prune", "-f"]);
    eprintln!("system prune as a tenant: {}", support::describe(&out));
    // CLI 28's `volume prune --all` (API 1.42+; refused by an older daemon, never unscoped).
    let _ = a_cli.run(&["volume", "prune", "-a", "-f"]);
    // Gone: A's.
    assert!(!exists("container", &w.a_running));
    for v in &w.a_volumes {
        assert!(!exists("volume", v), "{v}");
    }
    assert!(!exists("network", &w.a_network));
    assert!(!exists("image", &w.a_image));
    assert!(!exists("image", &a_dangling_id));
    // Kept: B's, unowned ones, the shared fixture image.
    for (kind, name) in [
        ("container", &w.b_running),
        ("container", &w.b_created),
        ("container", &w.unowned_container),
        ("volume", &w.b_volume),
        ("volume", &w.unowned_volume),
        ("network", &w.b_network),
        ("network", &w.unowned_network),
        ("image", &w.b_image),
        ("image", &w.unowned_image),
        ("image", &b_dangling_id),
        ("image", &x_dangling_id),
        ("image", &forged_dangling_id),
        ("image", &test_image()),
    ] {
        assert!(
            exists(kind, name),
            "{kind} {name} was pruned by another tenant"
        );
    }
    for image in [&b_dangling_id, &x_dangling_id, &forged_dangling_id] {
        let _ = daemon().try_run(&["rmi", "-f", image]);
    }
    w.drop_objects();
}

#[test]
fn disk_usage_shows_only_the_tenants_objects() {
    let uids = two_uids();
    let proxy = proxy(&[uids.0, uids.1]);
    let cleanup = Cleanup::new();
    let w = World::build(&proxy, &cleanup, uids);
    let built = cleanup.image("df-cache");
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {}\nRUN echo cached > /cached\n", test_image()),
    )
    .unwrap();
    daemon()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .ok(&[
            "build",
            "--network",
            "none",
            "-t",
            &built,
            &context.path().display().to_string(),
        ]);
    let (status, body) = curl_as(0, &proxy, "GET", "/system/df");
    assert_eq!(status, 200, "{body}");
    assert!(
        !json(&body)["BuildCache"].as_array().unwrap().is_empty(),
        "the admin sees the build cache: {body}"
    );
    let (status, body) = curl_as(w.a, &proxy, "GET", "/system/df");
    assert_eq!(status, 200, "{body}");
    let df = json(&body);
    let names = |key: &str, field: &str| -> BTreeSet<String> {
        df[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| match &o[field] {
                serde_json::Value::Array(n) => {
                    n[0].as_str().unwrap().trim_start_matches('/').to_owned()
                }
                v => v.as_str().unwrap().to_owned(),
            })
            .collect()
    };
    assert_eq!(
        names("Containers", "Names"),
        set(&[&w.a_running, &w.a_created])
    );
    assert_eq!(
        names("Volumes", "Name"),
        set(&[&w.a_volumes[0], &w.a_volumes[1]])
    );
    let images = df["Images"].as_array().unwrap();
    let owners: BTreeSet<Option<&str>> = images
        .iter()
        .map(|i| i["Labels"].get(OWNER).and_then(|v| v.as_str()))
        .collect();
    let a_owner = owner_value(w.a);
    assert!(owners.contains(&Some(a_owner.as_str())) && owners.contains(&None));
    assert_eq!(owners.len(), 2, "only own and shared images: {owners:?}");
    assert_eq!(
        df["BuildCache"],
        serde_json::json!([]),
        "no build cache of anyone"
    );
    // Totals follow what is shown: no more layers than the shown images hold.
    let shown: i64 = images.iter().map(|i| i["Size"].as_i64().unwrap()).sum();
    assert!(df["LayersSize"].as_i64().unwrap() <= shown);
    assert_nothing_foreign(&w, &body, "system/df");
    for cli in clis(&tenant(&proxy, w.a)) {
        let text = cli.ok_str(&["system", "df", "-v"]);
        assert!(text.contains(w.a_running.as_str()), "{text}");
        assert_nothing_foreign(&w, &text, "docker system df -v");
    }
    // The admin's answer is the daemon's.
    let admin = stdout_str(&proxy.docker().run(&["system", "df", "-v"]));
    assert!(admin.contains(w.b_running.as_str()), "{admin}");
    w.drop_objects();
}

#[test]
fn events_show_only_the_tenants_objects_live_and_replayed() {
    let uids = two_uids();
    let proxy = proxy(&[uids.0, uids.1]);
    let cleanup = Cleanup::new();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let a_cli = tenant(&proxy, uids.0);
    let mut streams: Vec<support::Streaming> = clis(&a_cli)
        .iter()
        .flat_map(|cli| {
            [
                cli.stream(&["events", "--format", "{{json .}}"]),
                cli.stream(&[
                    "events",
                    "--format",
                    "{{json .}}",
                    "--filter",
                    "type=container",
                ]),
            ]
        })
        .collect();
    // Give the streams time to subscribe.
    std::thread::sleep(Duration::from_secs(2));
    let w = World::build(&proxy, &cleanup, uids);
    // Activity on everyone's objects: execs, stops, removals, tags.
    for c in [&w.a_running, &w.b_running, &w.unowned_container] {
        daemon().ok(&["exec", c, "true"]);
    }
    daemon().ok(&[
        "tag",
        &w.a_image,
        &format!("{}:again", w.a_image.split(':').next().unwrap()),
    ]);
    daemon().ok(&[
        "tag",
        &w.b_image,
        &format!("{}:again", w.b_image.split(':').next().unwrap()),
    ]);
    daemon().ok(&["rm", "-f", &w.a_created, &w.b_created]);
    w.drop_objects();
    // A last own event marks the end.
    let marker = Maker {
        proxy: &proxy,
        cleanup: &cleanup,
    }
    .container(Some(w.a), "a-marker", false, "marker");
    for stream in &mut streams {
        stream.wait_for(Duration::from_secs(30), |l| l.contains(marker.as_str()));
    }
    let check = |text: &str, what: &str, containers_only: bool| {
        assert_nothing_foreign(&w, text, what);
        // Own events of every kind, destroys included.
        assert!(text.contains(w.a_running.as_str()), "{what}: {text}");
        assert!(text.contains("exec_start"), "{what}: exec events: {text}");
        let created_destroyed = text
            .lines()
            .any(|l| l.contains(w.a_created.as_str()) && l.contains("\"destroy\""));
        assert!(
            created_destroyed,
            "{what}: destroy of own container: {text}"
        );
        if !containers_only {
            assert!(
                text.contains(w.a_volumes[0].as_str()),
                "{what}: volume: {text}"
            );
            assert!(
                text.contains(w.a_network.as_str()),
                "{what}: network: {text}"
            );
            assert!(
                text.contains(w.a_image.split(':').next().unwrap()),
                "{what}: image: {text}"
            );
        } else {
            for l in text.lines() {
                assert!(l.contains("\"Type\":\"container\""), "{what}: {l}");
            }
        }
    };
    for (i, stream) in streams.iter_mut().enumerate() {
        let text = stream.lines().join("\n");
        check(&text, &format!("live stream {i}"), i % 2 == 1);
    }
    // Replayed with --since/--until, after the fact.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    std::thread::sleep(Duration::from_secs(2));
    for cli in clis(&a_cli) {
        let text = cli.ok_str(&[
            "events",
            "--format",
            "{{json .}}",
            "--since",
            &since,
            "--until",
            &until.to_string(),
        ]);
        assert_nothing_foreign(&w, &text, "replayed events");
        assert!(text.contains(w.a_running.as_str()), "replay: {text}");
        assert!(
            text.lines()
                .any(|l| l.contains(w.a_created.as_str()) && l.contains("\"destroy\"")),
            "replay: destroy of own container: {text}"
        );
    }
    // The admin sees the other tenant's events.
    let text = proxy.docker().ok_str(&[
        "events",
        "--format",
        "{{json .}}",
        "--since",
        &since,
        "--until",
        &until.to_string(),
    ]);
    assert!(text.contains(w.b_running.as_str()), "admin replay: {text}");
}
