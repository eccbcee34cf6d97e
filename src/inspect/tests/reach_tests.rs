//! What the daemon stored, held to the create rules: containers, execs, volumes, images.

use crate::inspect::docker_json::Path;
use crate::inspect::{
    image_settings, stored_container, stored_exec, volume_as_mount, ContainerRules, DaemonDefaults,
    ExecRules,
};

/// The stored configuration of `docker run -d busybox sleep 1000` on a cgroup v1 host (20.10),
/// with `host` spliced into `HostConfig` and `mounts` as the top-level `Mounts`.
fn ordinary(config: &str, host: &str, mounts: &str) -> String {
    format!(
        r#"{{"Id":"{id}","Name":"/plain","Config":{{"Hostname":"bc006c0fd81e","User":"","Env":["PATH=/bin"],"Cmd":["sleep","1000"],"Image":"sw-busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"Labels":{{}}{config}}},
"HostConfig":{{"Binds":null,"ContainerIDFile":"","LogConfig":{{"Type":"json-file","Config":{{}}}},"NetworkMode":"default","PortBindings":{{}},"RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"host","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":67108864,"Runtime":"runc","ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"],"ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]{host}}},
"Mounts":[{mounts}]}}"#,
        id = "bc006c0fd81ec334aa3973c1e834685b5f4ceeea14450da36214e246df6ad3c2"
    )
}

fn v1() -> DaemonDefaults {
    DaemonDefaults {
        runtime: "runc".into(),
        cgroupns_host: true,
    }
}

#[test]
fn an_ordinary_docker_run_container_passes_with_the_daemons_defaults() {
    let rules = ContainerRules::default();
    let doc = ordinary("", "", "");
    let stored = stored_container(doc.as_bytes(), &rules, &v1()).unwrap();
    assert_eq!(stored.id.len(), 64);
    assert!(stored.summary.mounts.is_empty());
    // On a cgroup v2 host `host` is not the default: it was asked for.
    let v2 = DaemonDefaults {
        cgroupns_host: false,
        ..v1()
    };
    let e = stored_container(doc.as_bytes(), &rules, &v2).unwrap_err();
    assert_eq!(e.field, "HostConfig.CgroupnsMode");
    // Another default runtime: runc was asked for, and is not listed.
    let other = DaemonDefaults {
        runtime: "crun".into(),
        ..v1()
    };
    let e = stored_container(doc.as_bytes(), &rules, &other).unwrap_err();
    assert_eq!(e.setting.as_deref(), Some("runtimes"));
}

#[test]
fn what_a_create_could_not_ask_for_is_refused_in_a_stored_container() {
    let rules = ContainerRules::default();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("", r#","Privileged":true"#, "", "allow_privileged"),
        ("", r#","Binds":["/etc:/host-etc"]"#, "", "bind_sources"),
        ("", r#","CapAdd":["SYS_ADMIN"]"#, "", "cap_add"),
        ("", r#","PidMode":"host""#, "", "allow_host_namespaces"),
        (
            "",
            r#","SecurityOpt":["seccomp=unconfined"]"#,
            "",
            "security_opt",
        ),
        ("", r#","VolumesFrom":["other"]"#, "", "allow_volumes_from"),
        ("", r#","NewDaemonField":{"x":1}"#, "", "does not know"),
        (
            "",
            "",
            r#"{"Type":"bind","Source":"/","Destination":"/host","Mode":"","RW":true,"Propagation":"rprivate"}"#,
            "bind_sources",
        ),
        (r#","WorkingDir":"/proc/self/fd""#, "", "", "CVE-2024-21626"),
        (
            r#","Volumes":{"/sys/x":{}}"#,
            "",
            "",
            "allow_special_mount_targets",
        ),
    ];
    for (config, host, mounts, why) in cases {
        // Splicing a duplicate key is refused as a duplicate: replace the default instead.
        let doc = ordinary(config, host, mounts)
            .replacen(
                r#""WorkingDir":"","#,
                "",
                usize::from(config.contains("WorkingDir")),
            )
            .replacen(
                r#""Volumes":null,"#,
                "",
                usize::from(config.contains("Volumes")),
            )
            .replacen(r#""Binds":null,"#, "", usize::from(host.contains("Binds")))
            .replacen(
                r#""Privileged":false,"#,
                "",
                usize::from(host.contains("Privileged")),
            )
            .replacen(
                r#""CapAdd":null,"#,
                "",
                usize::from(host.contains("CapAdd")),
            )
            .replacen(
                r#""PidMode":"","#,
                "",
                usize::from(host.contains("PidMode")),
            )
            .replacen(
                r#""SecurityOpt":null,"#,
                "",
                usize::from(host.contains("SecurityOpt")),
            )
            .replacen(
                r#""VolumesFrom":null,"#,
                "",
                usize::from(host.contains("VolumesFrom")),
            );
        let e = stored_container(doc.as_bytes(), &rules, &v1())
            .expect_err(&format!("{config}{host}{mounts} passed"));
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    // Unknown fields at their zero value are what a newer daemon writes for unset ones.
    let doc = ordinary("", r#","NewDaemonField":"""#, "");
    assert!(stored_container(doc.as_bytes(), &rules, &v1()).is_ok());
}

#[test]
fn stored_binds_and_volumes_are_summarized_for_the_host_checks() {
    let rules = ContainerRules {
        bind_sources: vec!["/srv/cache".into()],
        require_read_only_binds: false,
        ..ContainerRules::default()
    };
    let doc = ordinary(
        "",
        "",
        r#"{"Type":"bind","Source":"/srv/cache","Destination":"/c","Mode":"","RW":true,"Propagation":"rprivate"},
           {"Type":"volume","Name":"data","Source":"/var/lib/docker/volumes/data/_data","Destination":"/d","Driver":"local","Mode":"z","RW":false,"Propagation":""}"#,
    )
    .replacen(r#""Binds":null,"#, r#""Binds":["/srv/cache:/c","data:/d:ro"],"#, 1);
    let s = stored_container(doc.as_bytes(), &rules, &v1())
        .unwrap()
        .summary;
    assert_eq!(s.named_volumes, ["data"]);
    let binds: Vec<_> = s
        .mounts
        .iter()
        .map(|m| (m.kind, m.source.as_deref(), m.read_only, m.from))
        .collect();
    assert!(
        binds.contains(&("bind", Some("/srv/cache"), false, "Binds")),
        "{binds:?}"
    );
    assert!(
        binds.contains(&("bind", Some("/srv/cache"), false, "stored Mounts")),
        "{binds:?}"
    );
    assert!(
        binds.contains(&("volume", Some("data"), true, "stored Mounts")),
        "{binds:?}"
    );
}

#[test]
fn a_stored_exec_is_held_to_the_exec_rules() {
    let doc = |privileged: bool, user: &str| {
        format!(
            r#"{{"ID":"e1","Running":false,"ExitCode":null,"ProcessConfig":{{"tty":false,"entrypoint":"sh","arguments":[],"privileged":{privileged},"user":"{user}"}},"OpenStdin":false,"ContainerID":"c1","Pid":0}}"#
        )
    };
    let rules = ExecRules::default();
    assert_eq!(
        stored_exec(doc(false, "").as_bytes(), &rules).unwrap(),
        "c1"
    );
    let e = stored_exec(doc(true, "").as_bytes(), &rules).unwrap_err();
    assert_eq!(e.setting.as_deref(), Some("allow_privileged"));
    let strict = ExecRules {
        allow_root_user: false,
        ..ExecRules::default()
    };
    let e = stored_exec(doc(false, "0:0").as_bytes(), &strict).unwrap_err();
    assert_eq!(e.setting.as_deref(), Some("allow_root_user"));
    assert!(stored_exec(doc(false, "1000").as_bytes(), &strict).is_ok());
    assert!(
        stored_exec(br#"{"ID":"e1"}"#, &rules).is_err(),
        "no container"
    );
}

#[test]
fn volumes_are_judged_by_their_driver_and_options() {
    let rules = ContainerRules {
        bind_sources: vec!["/srv/cache".into()],
        require_read_only_binds: false,
        ..ContainerRules::default()
    };
    let p = Path::ROOT;
    let vol = |driver: &str, opts: &str| {
        format!(
            r#"{{"Name":"v","Driver":"{driver}","Mountpoint":"/x","Options":{opts},"Scope":"local"}}"#
        )
    };
    let judge = |doc: String, ro: bool| volume_as_mount("v", doc.as_bytes(), ro, &p, &rules);
    assert_eq!(judge(vol("local", "null"), false), Ok(None));
    assert_eq!(judge(vol("local", "{}"), false), Ok(None));
    assert_eq!(
        judge(
            vol(
                "local",
                r#"{"type":"tmpfs","device":"tmpfs","o":"size=1m"}"#
            ),
            false
        ),
        Ok(None)
    );
    assert_eq!(
        judge(
            vol(
                "local",
                r#"{"type":"none","o":"bind","device":"/srv/cache/"}"#
            ),
            false
        ),
        Ok(Some("/srv/cache".into()))
    );
    for (driver, opts, why) in [
        (
            "local",
            r#"{"type":"none","o":"bind","device":"/etc"}"#,
            "bind_sources",
        ),
        ("local", r#"{"o":"rbind,ro","device":"/"}"#, "bind_sources"),
        (
            "local",
            r#"{"type":"ext4","device":"/dev/sda1"}"#,
            "outside the daemon's own",
        ),
        (
            "local",
            r#"{"type":"nfs","o":"addr=10.0.0.1","device":":/x"}"#,
            "outside",
        ),
        ("rexray", "{}", "driver"),
    ] {
        let e = judge(vol(driver, opts), true).unwrap_err();
        assert!(e.to_string().contains(why), "{opts}: {e}");
    }
}

#[test]
fn an_images_settings_are_checked_unless_the_body_sets_them() {
    let rules = ContainerRules::default();
    let image = |config: &str| format!(r#"{{"Id":"sha256:x","Config":{{"Cmd":["sh"]{config}}}}}"#);
    let body = br#"{"Image":"x","Cmd":["true"]}"#;
    let bad = image(r#","WorkingDir":"/proc/self/fd""#);
    let e = image_settings("x", bad.as_bytes(), body, &rules).unwrap_err();
    assert!(e.field.starts_with("image \"x\" Config.WorkingDir"), "{e}");
    assert!(image_settings(
        "x",
        bad.as_bytes(),
        br#"{"Image":"x","WorkingDir":"/tmp"}"#,
        &rules
    )
    .is_ok());
    let vols = image(r#","Volumes":{"/dev/shm/x":{}}"#);
    let e = image_settings("x", vols.as_bytes(), body, &rules).unwrap_err();
    assert_eq!(e.setting.as_deref(), Some("allow_special_mount_targets"));
    let ld = image(r#","Env":["PATH=/bin","LD_PRELOAD=/x.so"]"#);
    assert!(image_settings("x", ld.as_bytes(), body, &rules).is_ok());
    let gpu = br#"{"Image":"x","HostConfig":{"DeviceRequests":[{"Count":1}]}}"#;
    let e = image_settings("x", ld.as_bytes(), gpu, &rules).unwrap_err();
    assert_eq!(e.field, "image \"x\" Config.Env[1]");
    let owned = image(r#","Labels":{"sockwarden.owner":"alice"}"#);
    let reserving = ContainerRules {
        reserved_labels: vec!["sockwarden.owner".into()],
        ..ContainerRules::default()
    };
    assert!(image_settings("x", owned.as_bytes(), body, &rules).is_ok());
    assert!(image_settings("x", owned.as_bytes(), body, &reserving).is_err());
    let fine = image(r#","WorkingDir":"/srv","Volumes":{"/data":{}},"User":"1000""#);
    assert!(image_settings("x", fine.as_bytes(), body, &rules).is_ok());
}
