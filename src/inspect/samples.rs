//! Sample request bodies, for tests and benchmarks.

/// The body docker CLI 28.2.2 sends (negotiated down to API 1.41) for
/// `docker run --rm -i --network none busybox cat`: every `Config` and `HostConfig` field with
/// the Go zero values, nulls and empty lists the Go client marshals. Passes `ContainerRules::default()`.
pub const CLI_RUN_BODY: &str = concat!(
    r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"#,
    r#""Tty":false,"OpenStdin":true,"StdinOnce":true,"Env":null,"Cmd":["cat"],"Image":"busybox","Volumes":null,"#,
    r#""WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"#,
    r#""HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","#,
    r#""PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","#,
    r#""VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"#,
    r#""DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"#,
    r#""OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"#,
    r#""SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"#,
    r#""NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"#,
    r#""BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"#,
    r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"#,
    r#""DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"#,
    r#""MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"#,
    r#""IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"#,
    r#""NetworkingConfig":{"EndpointsConfig":{"none":{"IPAMConfig":null,"Links":null,"Aliases":null,"#,
    r#""MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","#,
    r#""IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"#,
    r#""DNSNames":null}}}}"#
);

/// A container-create body of at least `min_len` bytes that passes `ContainerRules::default()`:
/// [`CLI_RUN_BODY`] with `Env` and `Labels` padded (for the "16 KiB under 100 µs" benchmark).
pub fn large_create_body(min_len: usize) -> Vec<u8> {
    let mut env = String::from("[");
    let mut labels = String::from("{");
    let mut i = 0usize;
    while env.len() + labels.len() + CLI_RUN_BODY.len() < min_len {
        if i > 0 {
            env.push(',');
            labels.push(',');
        }
        env.push_str(&format!("\"VAR_{i}=value-{i}-abcdefghijklmnopqrstuvwxyz\""));
        labels.push_str(&format!(
            "\"com.example.label.{i}\":\"value {i} \\u00e9\\n\""
        ));
        i += 1;
    }
    env.push(']');
    labels.push('}');
    CLI_RUN_BODY
        .replacen("\"Env\":null", &format!("\"Env\":{env}"), 1)
        .replacen("\"Labels\":{}", &format!("\"Labels\":{labels}"), 1)
        .into_bytes()
}
