//! Policy allowances for body inspection. Every `Default` is the safe profile **P0** of
//! `security-fields.md`: unprivileged containers, no host access. A field set to its default
//! never widens what a client may do.
//!
//! These structs are deserialized from the policy configuration
//! (`[policy.NAME.container]`, `.exec`, `.volume`, `.network`, `.build`); unknown keys are an
//! error, missing keys take the P0 default.
//!
//! Limits named `max_*` that are `None` impose no cap. When a cap is set on a create body, the
//! field must be present and within `1..=cap` (absent means "unlimited" or a daemon default
//! the proxy cannot see).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Allowances for `POST /containers/create` (and the resource part of `POST /containers/{id}/update`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerRules {
    /// Allow `HostConfig.Privileged: true` (full root on the host).
    pub allow_privileged: bool,
    /// Capabilities that `HostConfig.CapAdd` may add, compared after Go-style normalization
    /// (ASCII upper-case, `CAP_` prefix optional): `["NET_ADMIN"]`. `ALL` is accepted only if
    /// `ALL` itself is listed. Non-ASCII capability names are always refused.
    pub cap_add: Vec<String>,
    /// Host paths that bind mounts (`Binds` with an absolute source, `Mounts` of type `bind`)
    /// may use, as prefixes on whole path components after `path.Clean` of both sides:
    /// `/srv/ci` allows `/srv/ci` and `/srv/ci/x`, not `/srv/ci2`. The root `/` and the Docker /
    /// containerd sockets (or a directory containing them, e.g. `/run`) are only allowed when
    /// listed exactly. On the host (`crate::hostpath`, at create and at every start) the source
    /// must exist with no symlink in its path, and nothing strictly below a source that any
    /// policy lets containers write to may be bound.
    pub bind_sources: Vec<String>,
    /// Require every allowed host bind to be read-only (`:ro` / `ReadOnly: true`). When false,
    /// the sources are writable: only each source itself may be bound, and it must be on a
    /// `nosuid,nodev` mount (setuid files and device nodes left there must not act on the host).
    pub require_read_only_binds: bool,
    /// Allow named volumes (`Binds` `name:/dst`, `Mounts` type `volume` with a `Source`). An
    /// existing volume whose stored options bind a host path is judged as that host bind
    /// (`bind_sources`), other driver options and drivers are refused (`crate::reach`). Who owns
    /// a volume is not checked.
    pub allow_named_volumes: bool,
    /// Allow `Mounts[].VolumeOptions.DriverConfig` (on-the-fly volumes). Even when true, only the
    /// `local` driver with tmpfs options (`type=tmpfs`, `device=tmpfs`, `o=size=..,uid=..`) is
    /// accepted: bind/device/nfs options are host access.
    pub allow_mount_driver_config: bool,
    /// Allow mount targets (Binds, Mounts, Tmpfs, Config.Volumes) under `/proc`, `/sys` or `/dev`.
    pub allow_special_mount_targets: bool,
    /// Allow `HostConfig.VolumesFrom` (inherits another container's mounts, including binds).
    pub allow_volumes_from: bool,
    /// Allow host or other containers' namespaces: `NetworkMode`, `PidMode`, `IpcMode`,
    /// `UTSMode`, `UsernsMode`, `CgroupnsMode` set to `host` or `container:<id>`, and
    /// `Cgroup: container:<id>`.
    pub allow_host_namespaces: bool,
    /// Allow `IpcMode: shareable` (lets other containers join this IPC namespace).
    pub allow_shareable_ipc: bool,
    /// User-defined networks a container may join (`NetworkMode`, `NetworkingConfig` keys), as
    /// glob patterns with `*` (e.g. `["ci-*"]`). `default`, `bridge` and `none` are always
    /// allowed; `host` and `container:` follow `allow_host_namespaces`. Names made only of hex
    /// digits are refused (they could be an ID prefix of another network). The caller should
    /// still resolve and owner-check `Summary.networks`.
    pub networks: Vec<String>,
    /// Allow static addresses: `EndpointSettings.IPAMConfig` (`IPv4Address`, `IPv6Address`,
    /// `LinkLocalIPs`).
    pub allow_static_ips: bool,
    /// Allow `MacAddress` (top-level, deprecated, and per endpoint).
    pub allow_mac_address: bool,
    /// Allow container links (`HostConfig.Links`, `EndpointSettings.Links`).
    pub allow_links: bool,
    /// Allow device access: `Devices`, `DeviceRequests` (GPUs, vendor hooks),
    /// `DeviceCgroupRules`. When device requests are present, `LD_PRELOAD`, `LD_LIBRARY_PATH`
    /// and `LD_AUDIT` in `Env` are refused (CVE-2025-23266).
    pub allow_devices: bool,
    /// `SecurityOpt` entries allowed beyond `no-new-privileges[=true]`, compared after the
    /// daemon's parsing (`seccomp:x` and `seccomp=x` are the same): e.g.
    /// `["apparmor=my-profile"]`. `seccomp=unconfined`, `apparmor=unconfined`, `label=disable`
    /// and `no-new-privileges=false` are refused unless listed.
    pub security_opt: Vec<String>,
    /// `Sysctls` keys allowed, as glob patterns (`["net.ipv4.ping_group_range", "kernel.msg*"]`).
    pub sysctls: Vec<String>,
    /// Allow `HostConfig.CgroupParent` (placing the container outside the daemon's cgroup).
    pub allow_cgroup_parent: bool,
    /// OCI runtimes allowed in `HostConfig.Runtime` besides the daemon default (empty value).
    pub runtimes: Vec<String>,
    /// Images allowed, as patterns matched against the normalized reference
    /// (`busybox` -> `docker.io/library/busybox:latest`). A pattern without `*` and without a tag
    /// or digest allows every tag of that repository (`busybox`, `ghcr.io/org/app`); `*` matches
    /// any text (`docker.io/library/*`, `ghcr.io/org/*:v1*`); a pattern naming no registry gets
    /// Docker's defaults (`myorg/*` is `docker.io/myorg/*`, `busy*` `docker.io/library/busy*`).
    /// Empty list: any image. With a list,
    /// image IDs (`sha256:...`) and untagged hex-only names (possible ID prefixes) are refused.
    pub images: Vec<String>,
    /// Allow the container to run as root. When false, `User` must name a non-root user:
    /// `""` (image default), `0`, `00`, `+0`, `root`, `0:0`, `x:0`, `x:root` are refused. A user
    /// name other than `root` passes (it is resolved inside the image).
    pub allow_root_user: bool,
    /// Cap on `Memory` in bytes.
    pub max_memory_bytes: Option<i64>,
    /// Cap on `MemorySwap` (memory + swap) in bytes. `-1` (unlimited swap) is always refused.
    pub max_memory_swap_bytes: Option<i64>,
    /// Cap on `NanoCpus` (1e9 = one CPU). When set, `CpuQuota` must be 0 (use `NanoCpus`).
    pub max_nano_cpus: Option<i64>,
    /// Cap on `CpuShares` (relative weight; 1024 is the default).
    pub max_cpu_shares: Option<i64>,
    /// Cap on `PidsLimit`. `0` and negative values mean unlimited.
    pub max_pids: Option<i64>,
    /// `Memory` set on a create that leaves it unset (absent, `null` or 0).
    pub default_memory_bytes: Option<i64>,
    /// `NanoCpus` set on a create that limits CPUs in no way (no `NanoCpus`, `CpuQuota`, `CpuPeriod`).
    pub default_nano_cpus: Option<i64>,
    /// `PidsLimit` set on a create that leaves it unlimited (absent, `null`, 0 or negative).
    pub default_pids: Option<i64>,
    /// Cap on `ShmSize` in bytes (0/absent = daemon default, 64 MiB, is always accepted).
    pub max_shm_size_bytes: Option<i64>,
    /// Cap on tmpfs sizes (`HostConfig.Tmpfs` `size=`, `Mounts[].TmpfsOptions.SizeBytes`).
    pub max_tmpfs_bytes: Option<i64>,
    /// Cap on `StorageOpt.size` in bytes; `None` means `StorageOpt` must be empty.
    pub max_storage_size_bytes: Option<i64>,
    /// Allow `CpusetCpus` / `CpusetMems` (pinning).
    pub allow_cpuset: bool,
    /// Allow block-IO settings (`BlkioWeight`, `BlkioWeightDevice`, `BlkioDevice*Bps/IOps`).
    pub allow_blkio: bool,
    /// Allow `OomKillDisable: true`.
    pub allow_oom_kill_disable: bool,
    /// Allow a negative `OomScoreAdj` (protects the container from the OOM killer).
    pub allow_negative_oom_score_adj: bool,
    /// Allowed `Ulimits`, name -> maximum hard limit (`{ nofile = 65536 }`). Empty: no ulimits.
    /// `-1` (unlimited) is always refused.
    pub ulimits: BTreeMap<String, i64>,
    /// Allow `MaskedPaths` / `ReadonlyPaths` that drop entries of the daemon defaults (`[]`
    /// unmasks `/proc/kcore` and makes `/proc/sys` writable).
    pub allow_unmasked_paths: bool,
    /// Allow `PortBindings` (publishing ports on the host). See `port_host_ips`, `min_host_port`.
    pub allow_port_bindings: bool,
    /// Host addresses that port bindings may use. An empty `HostIp` means all interfaces and is
    /// matched as `0.0.0.0`.
    pub port_host_ips: Vec<String>,
    /// Lowest host port a binding may use (an empty `HostPort` = ephemeral, always accepted).
    pub min_host_port: u16,
    /// Allow `PublishAllPorts: true` (every exposed port on all interfaces).
    pub allow_publish_all_ports: bool,
    /// Logging drivers allowed in `LogConfig.Type` (empty `Type` = daemon default).
    pub log_drivers: Vec<String>,
    /// Cap on `LogConfig.Config.max-size` in bytes.
    pub max_log_size_bytes: Option<i64>,
    /// Cap on `LogConfig.Config.max-file`.
    pub max_log_files: Option<i64>,
    /// Allow `RestartPolicy` `always` / `unless-stopped` (persistence across daemon restarts).
    pub allow_restart_always: bool,
    /// Maximum `RestartPolicy.MaximumRetryCount` for `on-failure` (0 = unlimited is refused).
    pub max_restart_retries: i64,
    /// Allow `ExtraHosts` entries that map to `host-gateway` (the host's address).
    pub allow_host_gateway: bool,
    /// Supplementary groups allowed in `GroupAdd` (exact strings).
    pub group_add: Vec<String>,
    /// Allow `HostConfig.Annotations` (passed to the OCI runtime).
    pub allow_annotations: bool,
    /// Cap on `StopTimeout` in seconds (`-1`, wait forever, is refused when set).
    pub max_stop_timeout_secs: Option<i64>,
    /// Accept top-level (`Config`), `Healthcheck` and `NetworkingConfig` fields unknown to this
    /// inspector (future daemon fields arrive uninspected). HostConfig, Mount and
    /// EndpointSettings never accept unknown fields.
    pub allow_unknown_config_fields: bool,
    /// Values allowed for the `platform` query parameter (empty: the parameter must be absent).
    pub platforms: Vec<String>,
    /// Label keys only the proxy may set (e.g. its owner label). Keys equal after removing
    /// whitespace and ASCII case, and non-ASCII keys (possible lookalikes), are refused in
    /// `Labels` and `Mounts[].VolumeOptions.Labels`.
    pub reserved_labels: Vec<String>,
}

impl Default for ContainerRules {
    fn default() -> Self {
        ContainerRules {
            allow_privileged: false,
            cap_add: Vec::new(),
            bind_sources: Vec::new(),
            require_read_only_binds: true,
            allow_named_volumes: true,
            allow_mount_driver_config: false,
            allow_special_mount_targets: false,
            allow_volumes_from: false,
            allow_host_namespaces: false,
            allow_shareable_ipc: false,
            networks: Vec::new(),
            allow_static_ips: false,
            allow_mac_address: false,
            allow_links: false,
            allow_devices: false,
            security_opt: Vec::new(),
            sysctls: Vec::new(),
            allow_cgroup_parent: false,
            runtimes: Vec::new(),
            images: Vec::new(),
            allow_root_user: true,
            max_memory_bytes: None,
            max_memory_swap_bytes: None,
            max_nano_cpus: None,
            max_cpu_shares: None,
            max_pids: None,
            default_memory_bytes: None,
            default_nano_cpus: None,
            default_pids: None,
            max_shm_size_bytes: None,
            max_tmpfs_bytes: None,
            max_storage_size_bytes: None,
            allow_cpuset: false,
            allow_blkio: false,
            allow_oom_kill_disable: false,
            allow_negative_oom_score_adj: false,
            ulimits: BTreeMap::new(),
            allow_unmasked_paths: false,
            allow_port_bindings: false,
            port_host_ips: vec!["127.0.0.1".into(), "::1".into()],
            min_host_port: 1024,
            allow_publish_all_ports: false,
            log_drivers: vec!["json-file".into(), "local".into()],
            max_log_size_bytes: None,
            max_log_files: None,
            allow_restart_always: false,
            max_restart_retries: 10,
            allow_host_gateway: false,
            group_add: Vec::new(),
            allow_annotations: false,
            max_stop_timeout_secs: None,
            allow_unknown_config_fields: false,
            platforms: Vec::new(),
            reserved_labels: Vec::new(),
        }
    }
}

/// Allowances for `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecRules {
    /// Allow `Privileged: true` (all capabilities for the exec'd process).
    pub allow_privileged: bool,
    /// Allow exec as root. When false, `User` must name a non-root user; `""` (the container's
    /// user, which may be root) is refused too.
    pub allow_root_user: bool,
}

impl Default for ExecRules {
    fn default() -> Self {
        ExecRules {
            allow_privileged: false,
            allow_root_user: true,
        }
    }
}

/// Allowances for `POST /volumes/create`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeRules {
    /// Volume drivers allowed (`Driver`; empty means `local`).
    pub drivers: Vec<String>,
    /// Allow any `DriverOpts` (for `local`: `type=none,o=bind,device=/` is a host bind).
    pub allow_driver_opts: bool,
    /// Allow `local` tmpfs volumes even when `allow_driver_opts` is false: only the keys `type`
    /// (`tmpfs`), `device` (`tmpfs`) and `o` (a comma list of `size=`, `uid=`, `gid=`, `mode=`,
    /// `nr_inodes=`).
    pub allow_tmpfs_driver_opts: bool,
    /// Label keys only the proxy may set (see `ContainerRules::reserved_labels`).
    pub reserved_labels: Vec<String>,
}

impl Default for VolumeRules {
    fn default() -> Self {
        VolumeRules {
            drivers: vec!["local".into()],
            allow_driver_opts: false,
            allow_tmpfs_driver_opts: true,
            reserved_labels: Vec::new(),
        }
    }
}

/// Allowances for `POST /networks/create`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkRules {
    /// Network drivers allowed (`Driver`; empty means `bridge`). `macvlan`/`ipvlan` put
    /// containers on the host's LAN.
    pub drivers: Vec<String>,
    /// Allow driver `Options` (`com.docker.network.bridge.name`, `parent`, ...).
    pub allow_options: bool,
    /// Allow `IPAM.Config` (explicit subnets/gateways) and `IPAM.Options`.
    pub allow_ipam_config: bool,
    /// Allow `EnableIPv6: true`.
    pub allow_ipv6: bool,
    /// Allow `ConfigOnly` networks and `ConfigFrom` (reusing another network's configuration).
    pub allow_config_networks: bool,
    /// Label keys only the proxy may set (see `ContainerRules::reserved_labels`).
    pub reserved_labels: Vec<String>,
}

impl Default for NetworkRules {
    fn default() -> Self {
        NetworkRules {
            drivers: vec!["bridge".into()],
            allow_options: false,
            allow_ipam_config: false,
            allow_ipv6: false,
            allow_config_networks: false,
            reserved_labels: Vec::new(),
        }
    }
}

/// Allowances for the query parameters of `POST /build` (the classic builder).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BuildRules {
    /// `networkmode` values allowed (absent is always allowed). `host` or `container:<id>`
    /// only when listed.
    pub network_modes: Vec<String>,
    /// Allow `remote` (the daemon fetches a git/HTTP context: SSRF, git CVEs) and a classic
    /// build's Dockerfile `ADD <url>`. Even then, no URL on a loopback, link-local or
    /// unspecified address or on one of sockwarden's listeners is fetched (a URL the daemon is
    /// redirected to is not seen).
    pub allow_remote: bool,
    /// Allow `extrahosts`.
    pub allow_extra_hosts: bool,
    /// Allow `cgroupparent`.
    pub allow_cgroup_parent: bool,
    /// Allow BuildKit: `version=2`, `session`, `buildid`, `outputs`. BuildKit's solve options
    /// and its Dockerfile travel inside `/session` and cannot be inspected here: its `ADD`
    /// URLs and `FROM` images escape the fetch rule.
    pub allow_buildkit: bool,
    /// Allow `cachefrom` (cache poisoning from images the client does not own).
    pub allow_cache_from: bool,
    /// Allow `ulimits`.
    pub allow_ulimits: bool,
    /// Allow `cpusetcpus` / `cpusetmems`.
    pub allow_cpuset: bool,
    /// Cap on `memory` in bytes.
    pub max_memory_bytes: Option<i64>,
    /// Cap on `shmsize` in bytes.
    pub max_shm_size_bytes: Option<i64>,
    /// Cap on `cpushares`.
    pub max_cpu_shares: Option<i64>,
    /// Tags (`t`, repeatable) allowed, as image patterns (see `ContainerRules::images`).
    /// Empty: any tag.
    pub tags: Vec<String>,
    /// Label keys only the proxy may set (`labels` parameter).
    pub reserved_labels: Vec<String>,
    /// Allow tag, build (`t`), commit, import and load to write an image name that
    /// `[policy.NAME.container] images` allows to run. Off: such a write is refused, so no
    /// client can put its own content under a name the allowlist trusts (`docker tag evil
    /// busybox`). Without an `images` list there is nothing to protect and this is not read.
    pub allow_writing_run_images: bool,
    /// Accept query parameters unknown to this inspector.
    pub allow_unknown_params: bool,
    /// Allow builds whose containers cannot be held to the container section's limits: a
    /// classic build while containers' pids are capped (`default_pids`, `max_pids`: the build
    /// API has no pids parameter, so `RUN` steps run without a pids limit), and a BuildKit
    /// build under any container limit (BuildKit's containers get none of them). Memory and
    /// CPU limits reach classic builds without it (written into the query).
    pub allow_uncapped_builds: bool,
}

impl Default for BuildRules {
    fn default() -> Self {
        BuildRules {
            network_modes: vec!["default".into(), "bridge".into(), "none".into()],
            allow_remote: false,
            allow_extra_hosts: false,
            allow_cgroup_parent: false,
            allow_buildkit: false,
            allow_cache_from: false,
            allow_ulimits: false,
            allow_cpuset: false,
            max_memory_bytes: None,
            max_shm_size_bytes: None,
            max_cpu_shares: None,
            tags: Vec::new(),
            reserved_labels: Vec::new(),
            allow_writing_run_images: false,
            allow_unknown_params: false,
            allow_uncapped_builds: false,
        }
    }
}

/// Allowances for `POST /plugins/pull` and `POST /plugins/{name}/upgrade`. Plugins run as root
/// on the host with the privileges the client grants them, so the default allows no plugin at
/// all.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginRules {
    /// Plugin references that `?remote=`, `?name=` (pull) and the upgraded plugin may name, as
    /// image patterns (see `ContainerRules::images`): `["docker.io/vieux/sshfs"]`,
    /// `["registry.example.com/plugins/*"]`. Empty: no plugin may be pulled or upgraded.
    pub names: Vec<String>,
    /// Privileges a plugin may be granted in the request body, as `NAME` (any value) or
    /// `NAME=VALUE` (that value only), compared exactly: `["network=host"]`. The daemon's
    /// privilege names are `network`, `host pid namespace`, `host ipc namespace`, `mount`,
    /// `device`, `allow-all-devices` and `capabilities`; every value of a granted privilege
    /// must be allowed. Empty: only plugins that need no privileges.
    pub privileges: Vec<String>,
}
