//! Issue 12, class 6 (caps that builds escape), end to end against the real daemon: with
//! `[upstream] build_cgroup`, a classic build under a pids cap runs its RUN containers in a
//! cgroup of its own whose `pids.max` is the policy's cap (a fork bomb stops there), gets the
//! memory cap, and leaves no cgroup behind, whether it succeeds, fails, is refused or its client
//! is killed mid-build; a client's own `cgroupparent` stays refused; builds under a policy
//! without caps are unchanged; a build cgroup that cannot be prepared refuses the build unless
//! `allow_uncapped_builds`. BuildKit builds: the daemon ignores their `cgroupparent` (measured).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::builds::{
    build_context, build_record_for_tag, classic_clis, fork_dockerfile, output_text, serial,
    started,
};
use support::{
    assert_nothing_added, current_uid, daemon_socket, daemon_state, test_image, toml_str,
    unique_name, wait_for, Cleanup, Proxy, DEBIAN_DOCKER_CLI,
};

const T: Duration = Duration::from_secs(20);

/// How many background `sleep`s the fork test tries to start.
const FORKS: u32 = 100;

/// The cap the test policy writes (`default_pids`).
const PIDS: u32 = 40;

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The directory for this test's build cgroups, in the hierarchy that has the pids controller
/// (cgroup v2's unified one, or v1's `pids`), named `leaf`.
fn build_cgroup_dir(leaf: &str) -> PathBuf {
    let v1 = Path::new(CGROUP_ROOT).join("pids");
    if v1.join("pids.max").exists() || v1.join("cgroup.procs").exists() {
        v1.join(leaf)
    } else {
        Path::new(CGROUP_ROOT).join(leaf)
    }
}

/// The cgroup directories below `leaf` in every hierarchy (the build cgroups sockwarden made
/// and the ones the runtime made in the other v1 hierarchies).
fn build_cgroups_left(leaf: &str) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    roots
        .into_iter()
        .filter_map(|r| std::fs::read_dir(r.join(leaf)).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect()
}

/// Waits until no build cgroup is left below `leaf`; fails naming what is.
fn assert_no_cgroups_left(leaf: &str, what: &str) {
    let gone = wait_for(Duration::from_secs(75), || {
        build_cgroups_left(leaf).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "{what}: build cgroups left: {:?}",
        build_cgroups_left(leaf)
    );
}

/// Removes the test's (empty) cgroup directories in every hierarchy.
struct CgroupDirs(String);

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        for p in build_cgroups_left(&self.0) {
            let _ = std::fs::remove_dir(p);
        }
        let _ = std::fs::remove_dir(Path::new(CGROUP_ROOT).join(&self.0));
        if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path().join(&self.0));
            }
        }
    }
}

/// A config with a file audit log and one listener (`proxy.sock`, client `main`) whose policy
/// is `policy` (tables in `extra`); `build_cgroup` as given (`None`: "off", since the default
/// finds one by itself).
fn start(policy: &str, extra: &str, build_cgroup: Option<&Path>) -> Proxy {
    let (policy, extra) = (policy.to_owned(), extra.to_owned());
    let cgroup = build_cgroup
        .map(|d| format!("build_cgroup = {}\n", toml_str(&d.display().to_string())))
        .unwrap_or_else(|| "build_cgroup = \"off\"\n".to_owned());
    Proxy::start_config(move |dir| {
        format!(
            r#"
[upstream]
socket = {up}
{cgroup}
[audit]
sink = "file"
path = {audit}

{extra}

[[client]]
name = "main"
policy = {policy}
uids = [{uid}]

[[listen]]
unix = {sock}
client = "main"
"#,
            up = toml_str(&daemon_socket().display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            policy = toml_str(&policy),
            uid = current_uid(),
        )
    })
}

/// A policy `capped` from the `ci` profile with a pids cap of [`PIDS`] and 1 GiB of memory,
/// and a build section of its own (`build` lines added).
fn capped(build: &str) -> String {
    format!(
        "[policy.capped]\nprofile = \"ci\"\nallow = [\"build.session\"]\n\
         allow_dangerous = [\"build.session\"]\n\n\
         [policy.capped.container]\ndefault_memory_bytes = 1073741824\n\
         max_memory_bytes = 2147483648\ndefault_pids = {PIDS}\nmax_pids = 4096\n\n\
         [policy.capped.build]\n{build}\n"
    )
}

fn audit_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("audit.log")
}

/// Whether a recorded query names a cgroup parent (the 20.10 CLI sends an empty one).
fn names_cgroup_parent(r: &Value) -> bool {
    r["query"]["cgroupparent"]
        .as_array()
        .is_some_and(|v| v.iter().any(|p| p.as_str().is_some_and(|p| !p.is_empty())))
}

/// A fork bomb in a classic build's RUN step stops at the policy's pids cap (both CLIs), without
/// `allow_uncapped_builds`; the RUN container has the memory cap; the query the daemon got names
/// the build's cgroup and is the one recorded, with `pids.max`; no cgroup is left afterwards.
/// The same build without a build cgroup (acknowledged as uncapped) starts every process: the
/// cap is what stopped them.
#[test]
fn a_fork_bomb_in_a_classic_build_stops_at_the_pids_cap() {
    let _serial = serial();
    let leaf = unique_name("sw-bcg");
    let _dirs = CgroupDirs(leaf.clone());
    let dir = build_cgroup_dir(&leaf);
    let proxy = start(
        "capped",
        &capped("allow_uncapped_builds = false"),
        Some(&dir),
    );
    let cleanup = Cleanup::new();
    let ctx = build_context(&fork_dockerfile(&test_image(), FORKS, 60));
    let path = ctx.path().to_str().unwrap().to_owned();
    for (cli, docker) in classic_clis(&proxy) {
        let tag = cleanup.image("bcg");
        let out = docker.run(&["build", "--no-cache", "-t", &tag, &path]);
        let text = output_text(&out);
        assert!(out.status.success(), "{cli}: {text}");
        assert!(text.contains("mem=1073741824"), "{cli}: {text}");
        let n = started(&text);
        assert!((5..=PIDS).contains(&n), "{cli}: started {n}\n{text}");
        let r = build_record_for_tag(&audit_path(&proxy), &tag, T);
        let parent = r["query"]["cgroupparent"][0].as_str().unwrap_or("");
        assert!(
            parent.starts_with(&format!("/{leaf}/b")),
            "{cli}: {parent}: {r}"
        );
        let applied = r["defaults_applied"].to_string();
        assert!(applied.contains(&format!("pids.max={PIDS}")), "{cli}: {r}");
        assert!(
            applied.contains(&format!("cgroupparent={parent}")),
            "{cli}: {r}"
        );
        assert!(applied.contains("memory=1073741824"), "{cli}: {r}");
        assert_eq!(r["decision"], "allow", "{cli}: {r}");
        assert_no_cgroups_left(&leaf, cli);
    }
    drop(proxy);
    // Without a build cgroup, acknowledged: every fork succeeds.
    let proxy = start("capped", &capped("allow_uncapped_builds = true"), None);
    let tag = cleanup.image("uncapped");
    let out =
        proxy
            .docker()
            .env("DOCKER_BUILDKIT", "0")
            .run(&["build", "--no-cache", "-t", &tag, &path]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(started(&text), FORKS, "{text}");
    let r = build_record_for_tag(&audit_path(&proxy), &tag, T);
    assert!(!names_cgroup_parent(&r), "{r}");
}

/// A build that fails in its RUN step, one refused after its cgroup was prepared (above the
/// memory cap), and one whose client is killed mid-build all leave no cgroup behind.
#[test]
fn failed_refused_and_abandoned_builds_leave_no_cgroup() {
    let _serial = serial();
    let leaf = unique_name("sw-bcg");
    let _dirs = CgroupDirs(leaf.clone());
    let dir = build_cgroup_dir(&leaf);
    let proxy = start(
        "capped",
        &capped("allow_uncapped_builds = false"),
        Some(&dir),
    );
    let cleanup = Cleanup::new();
    let failing = build_context(&format!(
        "FROM {}\nRUN echo failing; exit 3\n",
        test_image()
    ));
    for (cli, docker) in classic_clis(&proxy) {
        let tag = cleanup.image("bcg-fail");
        let out = docker.run(&[
            "build",
            "--no-cache",
            "-t",
            &tag,
            failing.path().to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{cli}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("failing"),
            "{cli}: {}",
            output_text(&out)
        );
        assert_no_cgroups_left(&leaf, &format!("{cli} failed build"));
        // Refused by the inspector after the cgroup was made: nothing built, nothing left.
        let before = daemon_state();
        let out = docker.run(&[
            "build",
            "--memory",
            "16g",
            "-t",
            "sw-bcg-refused:1",
            failing.path().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        assert!(
            output_text(&out).contains("max_memory_bytes"),
            "{cli}: {}",
            output_text(&out)
        );
        assert_nothing_added(&before, cli);
        assert_no_cgroups_left(&leaf, &format!("{cli} refused build"));
    }
    // Killed mid-build, while the RUN container holds the cgroup.
    let slow = build_context(&format!(
        "FROM {}\nRUN echo begun-slow-step; sleep 40\n",
        test_image()
    ));
    let tag = cleanup.image("bcg-kill");
    let mut build = proxy.docker().env("DOCKER_BUILDKIT", "0").stream(&[
        "build",
        "--no-cache",
        "-t",
        &tag,
        slow.path().to_str().unwrap(),
    ]);
    build.wait_for(Duration::from_secs(60), |l| l.contains("begun-slow-step"));
    let live = build_cgroups_left(&leaf);
    assert!(
        live.iter().any(|p| p.starts_with(&dir)),
        "no build cgroup while the build runs: {live:?}"
    );
    drop(build);
    assert_no_cgroups_left(&leaf, "client killed mid-build");
}

/// A client's own `cgroupparent` stays refused (both CLIs), whatever it names: the build
/// cgroup directory, a guess at a build cgroup, the root; the daemon is unchanged and no
/// cgroup is left.
#[test]
fn a_clients_own_cgroup_parent_is_still_refused() {
    let _serial = serial();
    let leaf = unique_name("sw-bcg");
    let _dirs = CgroupDirs(leaf.clone());
    let dir = build_cgroup_dir(&leaf);
    let proxy = start(
        "capped",
        &capped("allow_uncapped_builds = false"),
        Some(&dir),
    );
    let ctx = build_context(&format!("FROM {}\nRUN true\n", test_image()));
    let path = ctx.path().to_str().unwrap().to_owned();
    let pid = proxy.pid();
    let before = daemon_state();
    for (cli, docker) in classic_clis(&proxy) {
        for parent in [
            format!("/{leaf}"),
            format!("/{leaf}/b{pid}-1"),
            format!("/{leaf}/b{pid}-2"),
            "/".to_owned(),
            "system.slice".to_owned(),
        ] {
            let out = docker.run(&[
                "build",
                "--cgroup-parent",
                &parent,
                "-t",
                "sw-bcg-cp:1",
                &path,
            ]);
            assert!(!out.status.success(), "{cli} {parent}");
            assert!(
                output_text(&out).contains("allow_cgroup_parent"),
                "{cli} {parent}: {}",
                output_text(&out)
            );
        }
    }
    assert_nothing_added(&before, "after the refusals");
    assert_no_cgroups_left(&leaf, "refused cgroup parents");
}

/// Under a policy without caps a build is forwarded as before: no cgroup made, no
/// `cgroupparent` written, nothing applied.
#[test]
fn builds_under_a_policy_without_caps_are_unchanged() {
    let _serial = serial();
    let leaf = unique_name("sw-bcg");
    let _dirs = CgroupDirs(leaf.clone());
    let dir = build_cgroup_dir(&leaf);
    // A policy of its own: a profile's caps stay under sections of one's own.
    let policy = "[policy.open]\nallow = [\"system.ping\", \"system.version\", \"system.info\", \
                  \"image.build\", \"image.inspect\", \"image.list\", \"image.delete\"]\n\
                  allow_dangerous = [\"image.build\"]\n";
    let proxy = start("open", policy, Some(&dir));
    let cleanup = Cleanup::new();
    let ctx = build_context(&fork_dockerfile(&test_image(), FORKS, 60));
    let path = ctx.path().to_str().unwrap().to_owned();
    for (cli, docker) in classic_clis(&proxy) {
        let tag = cleanup.image("bcg-open");
        let out = docker.run(&["build", "--no-cache", "-t", &tag, &path]);
        let text = output_text(&out);
        assert!(out.status.success(), "{cli}: {text}");
        assert_eq!(started(&text), FORKS, "{cli}: {text}");
        let r = build_record_for_tag(&audit_path(&proxy), &tag, T);
        assert!(!names_cgroup_parent(&r), "{cli}: {r}");
        assert!(
            r.get("defaults_applied")
                .is_none_or(|d| d.as_array().is_none_or(|a| a.is_empty())),
            "{cli}: {r}"
        );
    }
    assert!(!dir.exists(), "a build cgroup directory was made");
}

/// A build cgroup that cannot be prepared (the directory is not in a cgroup hierarchy with the
/// pids controller) refuses the classic build with the reason, naming allow_uncapped_builds;
/// acknowledged, the build runs without the pids limit.
#[test]
fn a_build_cgroup_that_cannot_be_prepared_refuses_the_build() {
    let _serial = serial();
    let not_cgroup = tempfile::tempdir().unwrap();
    let dir = not_cgroup.path().join("builds");
    let ctx = build_context(&format!("FROM {}\nRUN true\n", test_image()));
    let path = ctx.path().to_str().unwrap().to_owned();
    let proxy = start(
        "capped",
        &capped("allow_uncapped_builds = false"),
        Some(&dir),
    );
    let before = daemon_state();
    for (cli, docker) in classic_clis(&proxy) {
        let out = docker.run(&["build", "-t", "sw-bcg-unprepared:1", &path]);
        let t = output_text(&out);
        assert!(!out.status.success(), "{cli}: {t}");
        assert!(t.contains("could not be prepared"), "{cli}: {t}");
        assert!(t.contains("not below a cgroup"), "{cli}: {t}");
        assert!(t.contains("allow_uncapped_builds"), "{cli}: {t}");
    }
    assert_nothing_added(&before, "after the refusals");
    assert!(!dir.exists());
    drop(proxy);
    let proxy = start(
        "capped",
        &capped("allow_uncapped_builds = true"),
        Some(&dir),
    );
    let cleanup = Cleanup::new();
    let tag = cleanup.image("bcg-acked");
    proxy
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .ok(&["build", "-t", &tag, &path]);
    assert!(
        proxy.log_text().contains("without the pids limit"),
        "{}",
        proxy.log_text()
    );
}

/// BuildKit (`version=2`, the 20.10 CLI through `/session`): the daemon ignores a build's
/// `cgroupparent` (moby's builder-next passes it to no frontend or executor), so a BuildKit
/// RUN step runs outside the parent the query names. Measured with a client's own parent
/// (allowed here), read back from the RUN step's `/proc/self/cgroup`.
#[test]
fn buildkit_ignores_the_cgroup_parent() {
    let _serial = serial();
    let leaf = unique_name("sw-bcg-bk");
    let _dirs = CgroupDirs(leaf.clone());
    let policy = "[policy.bk]\nprofile = \"ci\"\nallow = [\"build.session\"]\n\
                  allow_dangerous = [\"build.session\"]\n\n[policy.bk.container]\n\n\
                  [policy.bk.build]\nallow_buildkit = true\nallow_cgroup_parent = true\n\
                  allow_uncapped_builds = true\n";
    let proxy = start("bk", policy, None);
    let cleanup = Cleanup::new();
    let ctx = build_context(&format!(
        "FROM {}\nRUN echo cg-begin; cat /proc/self/cgroup; echo cg-end\n",
        test_image()
    ));
    let tag = cleanup.image("bcg-bk");
    let parent = format!("/{leaf}");
    let out = proxy
        .docker()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .run(&[
            "build",
            "--progress",
            "plain",
            "--no-cache",
            // The test daemon has no bridge network; BuildKit's RUN uses it by default.
            "--network",
            "none",
            "--cgroup-parent",
            &parent,
            "-t",
            &tag,
            ctx.path().to_str().unwrap(),
        ]);
    let t = output_text(&out);
    assert!(out.status.success(), "BuildKit build failed:\n{t}");
    let r = build_record_for_tag(&audit_path(&proxy), &tag, T);
    assert_eq!(r["query"]["version"][0], "2", "{r}");
    assert_eq!(r["query"]["cgroupparent"][0], parent.as_str(), "{r}");
    let cgroups: String = t
        .split("cg-begin")
        .nth(2)
        .or_else(|| t.split("cg-begin").nth(1))
        .and_then(|r| r.split("cg-end").next())
        .unwrap_or_default()
        .to_owned();
    assert!(cgroups.contains(':'), "no cgroup lines read:\n{t}");
    assert!(
        !cgroups.contains(&leaf),
        "BuildKit honoured the cgroup parent:\n{t}"
    );
}

/// `sockwarden explain` shows the build cgroup a classic build would get (with a stand-in
/// name) and decides with it, as `serve` does; without `build_cgroup` it names the setting.
#[test]
fn explain_shows_the_build_cgroup() {
    let leaf = unique_name("sw-bcg-explain");
    let dir = build_cgroup_dir(&leaf);
    let explain = |cgroup: Option<&Path>| {
        let tmp = tempfile::tempdir().unwrap();
        let cgroup = cgroup
            .map(|d| format!("build_cgroup = {}\n", toml_str(&d.display().to_string())))
            .unwrap_or_else(|| "build_cgroup = \"off\"\n".to_owned());
        let config = format!(
            "[upstream]\nsocket = \"/var/run/docker.sock\"\n{cgroup}\n{}\n[[client]]\nname = \"main\"\n\
             policy = \"capped\"\nuids = [0]\n\n[[listen]]\nunix = {}\nclient = \"main\"\n",
            capped("allow_uncapped_builds = false"),
            toml_str(&tmp.path().join("x.sock").display().to_string())
        );
        let file = tmp.path().join("c.toml");
        std::fs::write(&file, config).unwrap();
        let out = std::process::Command::new(support::SOCKWARDEN)
            .args(["explain", "--json", "--client", "main", "--config"])
            .arg(&file)
            .args(["POST", "/v1.41/build?t=app:1"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", output_text(&out)))
    };
    let placed = explain(Some(&dir));
    let applied = placed["defaults_applied"].to_string();
    assert!(
        applied.contains(&format!("cgroupparent=/{leaf}/b0-0")),
        "{placed}"
    );
    assert!(applied.contains(&format!("pids.max={PIDS}")), "{placed}");
    assert_eq!(placed["decision"], "allow", "{placed}");
    assert!(!dir.exists(), "explain made a cgroup");
    let unplaced = explain(None);
    assert_eq!(unplaced["decision"], "deny", "{unplaced}");
    assert!(
        unplaced.to_string().contains("allow_uncapped_builds"),
        "{unplaced}"
    );
}
