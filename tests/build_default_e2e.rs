//! Issue 12, class 6 (caps that builds escape), out of the box, end to end against the real
//! daemon: under the plain built-in `ci` profile with no `build_cgroup` configured (the default
//! "auto"), a classic build's RUN containers get the profile's pids cap in a build cgroup found
//! by itself (a fork bomb stops at 1,024) and no cgroup is left afterwards, with both CLIs;
//! where no build cgroup can be made (`build_cgroup = "off"`, or the cgroup hierarchies
//! read-only as systemd's `ProtectControlGroups=` makes them) the classic build is refused,
//! saying what to set, and the daemon is unchanged; with the writable exception the systemd
//! unit makes (`ReadWritePaths=` for `sockwarden-builds`), capped builds work again.
//! `check --no-fs` reads no cgroup mounts.

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
    assert_nothing_added, current_uid, daemon_socket, daemon_state, test_image, toml_str, wait_for,
    Cleanup, Proxy, SOCKWARDEN,
};

const T: Duration = Duration::from_secs(20);

/// The ci profile's pids cap (`default_pids`).
const CI_PIDS: u32 = 1024;

/// How many background `sleep`s the fork test tries to start: more than the cap.
const FORKS: u32 = 1100;

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The name `build_cgroup = "auto"` uses.
const AUTO_NAME: &str = "sockwarden-builds";

/// The build cgroups of sockwarden process `pid` (`b<pid>-<n>`) in any hierarchy's
/// `sockwarden-builds` (cgroup v2's, and each v1 hierarchy's, where the runtime makes the
/// parent too).
fn build_cgroups_of(pid: u32) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    let prefix = format!("b{pid}-");
    roots
        .into_iter()
        .filter_map(|r| std::fs::read_dir(r.join(AUTO_NAME)).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// Waits until sockwarden process `pid` has no build cgroup left; fails naming what is.
fn assert_no_cgroups_left(pid: u32, what: &str) {
    let gone = wait_for(Duration::from_secs(75), || {
        build_cgroups_of(pid).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "{what}: build cgroups left: {:?}",
        build_cgroups_of(pid)
    );
}

/// A config with a file audit log and one listener (`proxy.sock`, client `main`) under the
/// plain built-in `ci` profile; `upstream` lines added to `[upstream]` (none: the defaults).
fn config(dir: &Path, upstream: &str) -> String {
    format!(
        r#"
[upstream]
socket = {up}
{upstream}

[audit]
sink = "file"
path = {audit}

[[client]]
name = "main"
policy = "ci"
uids = [{uid}]

[[listen]]
unix = {sock}
client = "main"
"#,
        up = toml_str(&daemon_socket().display().to_string()),
        audit = toml_str(&dir.join("audit.log").display().to_string()),
        sock = toml_str(&dir.join("proxy.sock").display().to_string()),
        uid = current_uid(),
    )
}

fn start(upstream: &str) -> Proxy {
    let upstream = upstream.to_owned();
    Proxy::start_config(move |dir| config(dir, &upstream))
}

/// The systemd unit's preparation of the build cgroups: the script its `ExecStartPre=+` runs
/// (systemd's `$$` read as `$`), and the `/sys/fs/cgroup` paths its `ReadWritePaths=` keep
/// writable (optional ones without their `-`).
fn unit_cgroup_exception() -> (String, Vec<String>) {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/sockwarden.service"),
    )
    .unwrap();
    let script = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre=+/bin/sh -c '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("the unit's ExecStartPre=+/bin/sh -c '...' line")
        .replace("$$", "$");
    let paths: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ReadWritePaths="))
        .flat_map(|l| l.split_whitespace())
        .map(|p| p.trim_start_matches('-').to_owned())
        .filter(|p| p.starts_with(CGROUP_ROOT))
        .collect();
    assert!(!paths.is_empty(), "no cgroup ReadWritePaths= in the unit");
    (script, paths)
}

/// sockwarden started in a mount namespace of its own where every cgroup hierarchy is
/// read-only, as systemd's `ProtectControlGroups=yes` makes them; with `exception`, as the
/// systemd unit arranges it: its `ExecStartPre=+` script run first, and its cgroup
/// `ReadWritePaths=` that exist made writable again.
fn start_read_only_cgroups(exception: bool) -> Proxy {
    let (prepare, writable) = match exception {
        true => unit_cgroup_exception(),
        false => ("true".to_owned(), Vec::new()),
    };
    let writable = writable.join(" ");
    let script = format!(
        "set -e; ({prepare}); for h in {CGROUP_ROOT}/*; do [ -L \"$h\" ] && continue; \
         mount -o remount,bind,ro \"$h\"; done; \
         for w in {writable}; do [ -L \"$w\" ] && continue; [ -d \"$w\" ] || continue; \
         mount --bind \"$w\" \"$w\"; mount -o remount,bind,rw \"$w\"; done; exec \"$@\""
    );
    Proxy::start_launched(
        move |_| {
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ]
            .map(String::from)
            .to_vec()
        },
        |dir| config(dir, ""),
        &[],
    )
}

fn audit_path(proxy: &Proxy) -> PathBuf {
    proxy.dir.path().join("audit.log")
}

/// Runs the fork build with both CLIs through `proxy` and checks it stopped at the ci cap in
/// a build cgroup of `proxy`'s own, recorded, and removed afterwards.
fn assert_fork_bomb_capped(proxy: &Proxy, what: &str) {
    let cleanup = Cleanup::new();
    let ctx = build_context(&fork_dockerfile(&test_image(), FORKS, 30));
    let path = ctx.path().to_str().unwrap().to_owned();
    let pid = proxy.pid();
    for (cli, docker) in classic_clis(proxy) {
        let tag = cleanup.image("bdf");
        let out = docker.clone().timeout(Duration::from_secs(240)).run(&[
            "build",
            "--no-cache",
            "-t",
            &tag,
            &path,
        ]);
        let text = output_text(&out);
        assert!(out.status.success(), "{what} {cli}: {text}");
        assert!(text.contains("mem=2147483648"), "{what} {cli}: {text}");
        let n = started(&text);
        assert!(
            (5..=CI_PIDS).contains(&n),
            "{what} {cli}: started {n} of {FORKS}\n{text}"
        );
        let r = build_record_for_tag(&audit_path(proxy), &tag, T);
        assert_eq!(r["decision"], "allow", "{what} {cli}: {r}");
        let parent = r["query"]["cgroupparent"][0].as_str().unwrap_or("");
        assert!(
            parent.starts_with(&format!("/{AUTO_NAME}/b{pid}-")),
            "{what} {cli}: {parent}: {r}"
        );
        let applied = r["defaults_applied"].to_string();
        assert!(
            applied.contains(&format!("pids.max={CI_PIDS}")),
            "{what} {cli}: {r}"
        );
        assert!(
            applied.contains(&format!("cgroupparent={parent}")),
            "{what} {cli}: {r}"
        );
        assert_no_cgroups_left(pid, &format!("{what} {cli}"));
    }
}

/// The plain ci profile, nothing configured about build cgroups: a fork bomb in a classic
/// RUN step stops at the profile's 1,024 processes (both CLIs), in a cgroup found by itself
/// and removed afterwards.
#[test]
fn under_the_plain_ci_profile_a_classic_fork_bomb_stops_at_the_cap() {
    let _serial = serial();
    let proxy = start("");
    assert_fork_bomb_capped(&proxy, "default");
    // Named explicitly, the same.
    drop(proxy);
    let proxy = start("build_cgroup = \"auto\"");
    assert_fork_bomb_capped(&proxy, "auto");
}

/// Where no build cgroup can be made, the ci profile's classic builds are refused (both CLIs,
/// with and without a RUN step), saying what to set: with `build_cgroup = "off"`, and with the
/// cgroup hierarchies read-only (systemd's `ProtectControlGroups=` without the unit's
/// exception). Nothing is built, no container is left, no cgroup is made.
#[test]
fn a_classic_build_that_cannot_be_capped_is_refused_saying_what_to_set() {
    let _serial = serial();
    let with_run = build_context(&format!("FROM {}\nRUN touch /built\n", test_image()));
    let without_run = build_context(&format!("FROM {}\nLABEL x=y\n", test_image()));
    for (case, proxy) in [
        ("off", start("build_cgroup = \"off\"")),
        ("read-only cgroups", start_read_only_cgroups(false)),
    ] {
        let pid = proxy.pid();
        let before = daemon_state();
        for (cli, docker) in classic_clis(&proxy) {
            for ctx in [&with_run, &without_run] {
                let out = docker.run(&[
                    "build",
                    "--no-cache",
                    "-t",
                    "sw-bdf-refused:1",
                    ctx.path().to_str().unwrap(),
                ]);
                let t = output_text(&out);
                assert!(!out.status.success(), "{case} {cli}: {t}");
                assert!(t.contains("pids limit"), "{case} {cli}: {t}");
                assert!(t.contains("build_cgroup = \"auto\""), "{case} {cli}: {t}");
                assert!(
                    t.contains("allow_uncapped_builds = true") && t.contains("unsafe"),
                    "{case} {cli}: {t}"
                );
                match case {
                    "off" => assert!(t.contains("build_cgroup is \"off\""), "{cli}: {t}"),
                    _ => assert!(
                        t.contains("read-only") && t.contains("ReadWritePaths"),
                        "{case} {cli}: {t}"
                    ),
                }
            }
        }
        assert_nothing_added(&before, case);
        assert!(build_cgroups_of(pid).is_empty(), "{case}");
        let records = support::wait_audit_records(&audit_path(&proxy), 4, T, |r| {
            r["operation"] == "image.build"
        });
        assert_eq!(records.len(), 4, "{case}: {records:#?}");
        for r in &records {
            assert_eq!(r["decision"], "deny", "{case}: {r}");
            assert_eq!(r["violations"][0]["setting"], "build_cgroup", "{case}: {r}");
        }
    }
}

/// The systemd unit's arrangement, read from deploy/systemd/sockwarden.service: cgroup
/// hierarchies read-only (`ProtectControlGroups=yes`) but for the `sockwarden-builds` its
/// `ExecStartPre=+` creates and its `ReadWritePaths=` keep writable: capped builds work, and
/// sockwarden removes the cgroups the runtime made in every hierarchy.
#[test]
fn with_the_units_writable_exception_capped_builds_work() {
    let _serial = serial();
    let proxy = start_read_only_cgroups(true);
    assert_fork_bomb_capped(&proxy, "read-only cgroups with the exception");
}

/// `sockwarden check`: with `build_cgroup = "off"` it warns that the ci profile's classic
/// builds are refused, with or without `--no-fs`; a build_cgroup that is no cgroup directory
/// is named only when the file system may be read; `--no-fs` opens neither mountinfo nor
/// anything under /sys/fs/cgroup (traced).
#[test]
fn check_warns_and_no_fs_reads_no_cgroups() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |upstream: &str, no_fs: bool| {
        let file = tmp.path().join("c.toml");
        std::fs::write(&file, config(tmp.path(), upstream)).unwrap();
        let mut cmd = std::process::Command::new("strace");
        cmd.args([
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,access,faccessat,faccessat2",
        ])
        .args(["-o"])
        .arg(tmp.path().join("trace"))
        .arg(SOCKWARDEN)
        .args(["check", "--config"])
        .arg(&file);
        if no_fs {
            cmd.arg("--no-fs");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        let trace = std::fs::read_to_string(tmp.path().join("trace")).unwrap();
        let read_cgroups = trace.contains("mountinfo") || trace.contains(CGROUP_ROOT);
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            read_cgroups,
        )
    };
    for no_fs in [false, true] {
        let (warn, _) = check("build_cgroup = \"off\"", no_fs);
        assert!(
            warn.contains("policy ci: caps pids") && warn.contains("classic builds are refused"),
            "no_fs {no_fs}: {warn}"
        );
    }
    let not_cgroup = "build_cgroup = \"/tmp/sw-not-a-cgroup/builds\"";
    let (warn, read) = check(not_cgroup, false);
    assert!(warn.contains("not below a cgroup"), "{warn}");
    assert!(read, "check without --no-fs read no mountinfo");
    let (warn, read) = check(not_cgroup, true);
    assert!(!warn.contains("build_cgroup"), "{warn}");
    assert!(!read, "check --no-fs read cgroup mounts");
    // The default ("auto") on this host (root, a pids hierarchy): nothing to warn about.
    let (warn, _) = check("", false);
    assert!(!warn.contains("policy ci"), "{warn}");
    let (_, read) = check("", true);
    assert!(!read, "check --no-fs read cgroup mounts");
}

/// `sockwarden explain` for a classic build under the plain ci profile: with the default, the
/// build cgroup found on this host (a stand-in name) and allowed; with `build_cgroup = "off"`,
/// refused, with the change naming `build_cgroup` in `[upstream]` (not allow_uncapped_builds).
#[test]
fn explain_names_the_build_cgroup_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let explain = |upstream: &str| {
        let file = tmp.path().join("c.toml");
        std::fs::write(&file, config(tmp.path(), upstream)).unwrap();
        let out = std::process::Command::new(SOCKWARDEN)
            .args(["explain", "--json", "--client", "main", "--config"])
            .arg(&file)
            .args(["POST", "/v1.41/build?t=app:1"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", output_text(&out)))
    };
    let placed = explain("");
    assert_eq!(placed["decision"], "allow", "{placed}");
    let applied = placed["defaults_applied"].to_string();
    assert!(
        applied.contains(&format!("cgroupparent=/{AUTO_NAME}/b0-0")),
        "{placed}"
    );
    assert!(applied.contains(&format!("pids.max={CI_PIDS}")), "{placed}");
    let off = explain("build_cgroup = \"off\"");
    assert_eq!(off["decision"], "deny", "{off}");
    let change = &off["change"];
    assert_eq!(change["setting"], "build_cgroup", "{off}");
    assert_eq!(change["section"], "[upstream]", "{off}");
    assert_eq!(change["value"], "\"auto\"", "{off}");
    assert!(
        change["text"].as_str().unwrap_or("").contains("unsafe"),
        "{off}"
    );
}
