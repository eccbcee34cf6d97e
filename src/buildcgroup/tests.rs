use super::*;

const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const V2: &str = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
28 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";

#[test]
fn the_cgroup_name_is_the_path_below_the_hierarchy() {
    let p = locate(Path::new("/sys/fs/cgroup/sockwarden-builds"), V2).unwrap();
    assert_eq!(p.hierarchy, Hierarchy::V2);
    assert_eq!(p.name, "/sockwarden-builds");
    let p = locate(Path::new("/sys/fs/cgroup/pids/sw/builds"), V1).unwrap();
    assert_eq!(p.hierarchy, Hierarchy::V1Pids);
    assert_eq!(p.name, "/sw/builds");
    // A mounted sub-tree: its root is part of the name.
    let sub = "5 1 0:3 /docker/abc /cg rw - cgroup2 cgroup2 rw\n";
    assert_eq!(
        locate(Path::new("/cg/b"), sub).unwrap().name,
        "/docker/abc/b"
    );
    let odd = "5 1 0:3 /a\\040b /cg rw - cgroup2 cgroup2 rw\n";
    assert!(locate(Path::new("/cg/b"), odd)
        .unwrap_err()
        .contains("ASCII"));
    // Escaped mount points.
    let esc = "5 1 0:3 / /my\\040cg rw - cgroup2 cgroup2 rw\n";
    assert!(locate(Path::new("/my cg/b"), esc)
        .unwrap_err()
        .contains("ASCII"));
}

#[test]
fn only_a_hierarchy_with_the_pids_controller_will_do() {
    for (dir, text, want) in [
        ("/sys/fs/cgroup/memory/b", V1, "no pids controller"),
        ("/sys/fs/cgroup/b", V1, "not below a cgroup"),
        ("/sys/fs/cgroup", V2, "not below a cgroup"),
        ("/tmp/b", V2, "not below a cgroup"),
        ("sys/fs/cgroup/b", V2, "absolute"),
        ("/sys/fs/cgroup/../b", V2, ".."),
        ("/sys/fs/cgroup/a&b=c", V2, "ASCII"),
        ("/sys/fs/cgroup/a%2f", V2, "ASCII"),
    ] {
        let e = locate(Path::new(dir), text).unwrap_err();
        assert!(e.contains(want), "{dir}: {e}");
    }
    let outside = "5 1 0:3 /../.. /cg rw - cgroup2 cgroup2 rw\n";
    assert!(locate(Path::new("/cg/b"), outside)
        .unwrap_err()
        .contains("namespace"));
}

/// A fake cgroup tree: `mounts` (mountinfo lines with `{root}` for the tree's directory),
/// and the files written below it.
fn fake_tree(mounts: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let tree = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = tree.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root = tree.path().display().to_string();
    (tree, mounts.replace("{root}", &root))
}

#[test]
fn auto_finds_the_pids_hierarchy_of_the_daemons_cgroup_version() {
    // cgroup v1 (hybrid: a cgroup2 hierarchy without controllers beside it).
    let v1 = "\
31 23 0:28 / {root} rw - tmpfs tmpfs rw\n\
35 31 0:32 / {root}/memory rw - cgroup cgroup rw,memory\n\
39 31 0:36 / {root}/pids rw - cgroup cgroup rw,pids\n\
41 31 0:38 / {root}/unified rw - cgroup2 cgroup2 rw\n";
    let (tree, text) = fake_tree(v1, &[("unified/cgroup.controllers", "")]);
    let want = tree.path().join("pids").join(AUTO_NAME);
    assert_eq!(detect(&text, Some("1")).unwrap(), want);
    // The daemon not saying its version: v1, since a v1 pids hierarchy is mounted.
    assert_eq!(detect(&text, None).unwrap(), want);
    assert_eq!(locate(&want, &text).unwrap().hierarchy, Hierarchy::V1Pids);
    // A daemon on cgroup v2 here: the unified hierarchy has no pids controller.
    let e = detect(&text, Some("2")).unwrap_err();
    assert!(e.contains("no pids controller"), "{e}");
    // cgroup v2, the pids controller at the root.
    let v2 = "28 22 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let (tree, text) = fake_tree(v2, &[("cgroup.controllers", "cpuset cpu io memory pids\n")]);
    let want = tree.path().join(AUTO_NAME);
    assert_eq!(detect(&text, Some("2")).unwrap(), want);
    assert_eq!(detect(&text, None).unwrap(), want);
    let place = locate(&want, &text).unwrap();
    assert_eq!(place.hierarchy, Hierarchy::V2);
    assert_eq!(place.name, format!("/{AUTO_NAME}"));
    let e = detect(&text, Some("1")).unwrap_err();
    assert!(e.contains("no cgroup v1 hierarchy with the pids"), "{e}");
    // cgroup v2 without the pids controller; unreadable controllers.
    let (_tree, text) = fake_tree(v2, &[("cgroup.controllers", "cpu io memory\n")]);
    let e = detect(&text, Some("2")).unwrap_err();
    assert!(e.contains("no pids controller"), "{e}");
    let (_tree, text) = fake_tree(v2, &[]);
    let e = detect(&text, None).unwrap_err();
    assert!(e.contains("cgroup.controllers"), "{e}");
    // cgroup v1 without a pids hierarchy; no cgroup mounts at all; an unknown version.
    let no_pids = "35 31 0:32 / {root}/memory rw - cgroup cgroup rw,memory\n";
    let (_tree, text) = fake_tree(no_pids, &[]);
    let e = detect(&text, Some("1")).unwrap_err();
    assert!(e.contains("no cgroup v1 hierarchy with the pids"), "{e}");
    let e = detect("22 1 0:21 / / rw - ext4 /dev/sda1 rw\n", None).unwrap_err();
    assert!(e.contains("no cgroup2 hierarchy"), "{e}");
    let e = detect(V2, Some("3")).unwrap_err();
    assert!(e.contains("not 1 or 2"), "{e}");
    // Of several pids hierarchies, the one mounted from its root below /sys/fs/cgroup.
    let two = "5 1 0:3 /docker/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
               6 1 0:3 / /srv/pids rw - cgroup cgroup rw,pids\n\
               7 1 0:3 / /sys/fs/cgroup/pids2 rw - cgroup cgroup rw,pids\n";
    assert_eq!(
        detect(two, Some("1")).unwrap(),
        Path::new("/sys/fs/cgroup/pids2").join(AUTO_NAME)
    );
}

#[test]
fn the_setting_is_auto_off_or_an_absolute_directory() {
    assert_eq!(Setting::parse("auto").unwrap(), Setting::Auto);
    assert_eq!(Setting::parse("off").unwrap(), Setting::Off);
    assert_eq!(
        Setting::parse("/sys/fs/cgroup/b").unwrap(),
        Setting::Dir("/sys/fs/cgroup/b".into())
    );
    for bad in [
        "",
        "Auto",
        "none",
        "false",
        "sys/fs/cgroup",
        "/sys/fs/../b",
        "/a b",
    ] {
        assert!(Setting::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Setting::Auto.to_string(), "auto");
    assert_eq!(Setting::Dir("/x/y".into()).to_string(), "/x/y");
}

#[test]
fn writable_means_root_and_a_writable_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Not existing yet: the nearest directory above it decides.
    check_writable(&dir.path().join("a/b"), false).unwrap();
    if nix::unistd::geteuid().is_root() {
        check_writable(&dir.path().join("a/b"), true).unwrap();
    } else {
        let e = check_writable(dir.path(), true).unwrap_err();
        assert!(e.contains("not root"), "{e}");
    }
}

#[test]
fn the_daemon_must_use_cgroupfs_on_the_same_version() {
    let v2 = locate(Path::new("/sys/fs/cgroup/b"), V2).unwrap();
    let v1 = locate(Path::new("/sys/fs/cgroup/pids/b"), V1).unwrap();
    let info = |driver: &str, version: &str| {
        format!(r#"{{"CgroupDriver":"{driver}","CgroupVersion":"{version}"}}"#)
    };
    assert!(check_daemon(info("cgroupfs", "2").as_bytes(), &v2).is_ok());
    assert!(check_daemon(info("cgroupfs", "1").as_bytes(), &v1).is_ok());
    let e = check_daemon(info("systemd", "2").as_bytes(), &v2).unwrap_err();
    assert!(e.contains("systemd cgroup driver"), "{e}");
    assert!(e.contains("native.cgroupdriver=cgroupfs"), "{e}");
    // What auto reads: the version, after the driver.
    let version = daemon_cgroups(info("cgroupfs", "2").as_bytes()).unwrap();
    assert_eq!(version.as_deref(), Some("2"));
    assert_eq!(
        daemon_cgroups(br#"{"CgroupDriver":"cgroupfs"}"#).unwrap(),
        None
    );
    assert!(daemon_cgroups(info("systemd", "1").as_bytes()).is_err());
    let e = check_daemon(info("cgroupfs", "1").as_bytes(), &v2).unwrap_err();
    assert!(e.contains("cgroup v1"), "{e}");
    assert!(check_daemon(info("none", "2").as_bytes(), &v2).is_err());
    assert!(check_daemon(b"not json", &v2).is_err());
}

#[test]
fn the_daemon_must_see_the_same_cgroups() {
    // A listener in this process: same pid and cgroup namespace.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    check_same_cgroups(&sock).unwrap();
    let e = check_same_cgroups(&dir.path().join("none.sock")).unwrap_err();
    assert!(e.contains("connecting"), "{e}");
}

#[test]
fn removal_covers_every_hierarchy_the_runtime_creates_the_parent_in() {
    let p = locate(Path::new("/sys/fs/cgroup/pids/sw"), V1).unwrap();
    let dirs = directories(&p.mounts, "/sw/b1-2");
    assert_eq!(
        dirs,
        [
            "/sys/fs/cgroup/memory/sw/b1-2",
            "/sys/fs/cgroup/pids/sw/b1-2",
            "/sys/fs/cgroup/systemd/sw/b1-2",
            "/sys/fs/cgroup/unified/sw/b1-2",
        ]
        .map(PathBuf::from)
    );
    // A hierarchy mounted from a sub-tree that does not hold the name is left alone.
    let sub = "5 1 0:3 /other /cg rw - cgroup cgroup rw,pids\n";
    assert!(directories(&cgroup_mounts(sub), "/sw/b1-2").is_empty());
    let sub = "5 1 0:3 /sw /cg rw - cgroup cgroup rw,pids\n";
    assert_eq!(
        directories(&cgroup_mounts(sub), "/sw/b1-2"),
        [PathBuf::from("/cg/b1-2")]
    );
}
