//! Enforced defaults: resource limits a policy puts on a container whose create request does
//! not set them (`default_memory_bytes`, `default_nano_cpus`, `default_pids`), so a CI job that
//! asks for nothing still runs bounded; and the namespace modes the daemon would otherwise fill
//! in unsafely on some hosts and API versions (`IpcMode`, `CgroupnsMode`: `private`).
//!
//! The body is rewritten before it is inspected, and the rewritten bytes are what the inspector
//! checks and what the daemon receives: the rule "what was inspected is exactly what is
//! forwarded" holds. Only the top-level object and `HostConfig` are rebuilt; every other value
//! keeps its original bytes. A body that could be read two ways at those two levels (a
//! duplicate key, keys equal after case folding, a non-ASCII key that Go might fold onto a
//! known one) or that is not a JSON object is left alone: the inspector refuses it anyway.
//!
//! A value counts as unset when it is absent, `null` or `0` (and, for `PidsLimit`, negative:
//! the daemon reads all of these as "unlimited"). `NanoCpus` is not added when `CpuQuota` or
//! `CpuPeriod` is set, since the daemon refuses both ways of limiting CPUs together.

use serde_json::value::RawValue;

use super::members::Members;

use super::rules::ContainerRules;
use super::Violation;
use crate::route::ApiVersion;

impl Members {
    /// Parses `bytes` as an object whose keys are unambiguous: ASCII, and distinct even when
    /// compared case-insensitively (as Go matches them to struct fields).
    fn parse(bytes: &[u8]) -> Option<Members> {
        let members: Members = serde_json::from_slice(bytes).ok()?;
        let mut seen: Vec<String> = Vec::with_capacity(members.0.len());
        for (key, _) in &members.0 {
            if !key.is_ascii() {
                return None;
            }
            let folded = key.to_ascii_lowercase();
            if seen.contains(&folded) {
                return None;
            }
            seen.push(folded);
        }
        Some(members)
    }

    /// The integer value of `name`: `Some(None)` when absent or `null`, `None` when it is not
    /// an integer (left to the inspector to refuse).
    fn int(&self, name: &str) -> Option<Option<i64>> {
        let Some(i) = self.position(name) else {
            return Some(None);
        };
        match serde_json::from_str::<serde_json::Value>(self.0[i].1.get()).ok()? {
            serde_json::Value::Null => Some(None),
            serde_json::Value::Number(n) => n.as_i64().map(Some),
            _ => None,
        }
    }
}

impl Members {
    /// The string value of `name`: `Some(None)` when absent, `null` or empty, `None` when it
    /// is not a string (left to the inspector to refuse).
    fn string(&self, name: &str) -> Option<Option<String>> {
        let Some(i) = self.position(name) else {
            return Some(None);
        };
        match serde_json::from_str::<serde_json::Value>(self.0[i].1.get()).ok()? {
            serde_json::Value::Null => Some(None),
            serde_json::Value::String(s) if s.is_empty() => Some(None),
            serde_json::Value::String(s) => Some(Some(s)),
            _ => None,
        }
    }
}

fn raw_int(n: i64) -> Option<Box<RawValue>> {
    RawValue::from_string(n.to_string()).ok()
}

/// What was added, for the audit log (`Memory=268435456`, ...).
pub type Applied = Vec<String>;

/// The first API version whose `HostConfig` has `CgroupnsMode`. Below it a create cannot ask
/// for a private cgroup namespace, and on a cgroup v1 host the daemon gives the container the
/// host's (moby `postContainersCreate`: API < 1.41 on cgroup v1 defaults to `host`).
pub const CGROUPNS_MODE_SINCE: ApiVersion = ApiVersion {
    major: 1,
    minor: 40,
};

/// The namespace modes the daemon fills in when a create leaves them empty, unsafely on some
/// hosts and API versions, written explicitly instead: `IpcMode` (API < 1.40 defaults to
/// `shareable`, and `default-ipc-mode` in daemon.json may say so too) and `CgroupnsMode` (the
/// host's on cgroup v1 hosts for API < 1.41, or by `default-cgroupns-mode`). `private` is what
/// a current daemon on a cgroup v2 host gives anyway.
const SAFE_NAMESPACE_MODES: [(&str, &str); 2] =
    [("IpcMode", "private"), ("CgroupnsMode", "private")];

/// The refusal of a create at an API version that cannot say `CgroupnsMode` (see
/// [`CGROUPNS_MODE_SINCE`]), when it leaves the mode to the daemon and the policy does not
/// allow host namespaces: sockwarden does not write a field the requested version does not
/// know, and the daemon's choice may be the host's cgroup namespace. `None` when the create is
/// fine (or not one this can read unambiguously: the inspector decides).
pub fn cgroupns_unwritable(
    body: &[u8],
    rules: &ContainerRules,
    version: Option<ApiVersion>,
) -> Option<Violation> {
    let version = version.filter(|v| *v < CGROUPNS_MODE_SINCE)?;
    if rules.allow_host_namespaces {
        return None;
    }
    let top = Members::parse(body)?;
    let mode = match top.position("HostConfig") {
        None => None,
        Some(i) => match top.0[i].1.get().trim() {
            "null" => None,
            raw => Members::parse(raw.as_bytes())?.string("CgroupnsMode")?,
        },
    };
    if mode.is_some() {
        return None;
    }
    Some(Violation {
        field: "HostConfig.CgroupnsMode".into(),
        reason: format!(
            "API version {version} predates CgroupnsMode ({CGROUPNS_MODE_SINCE}), so the daemon \
             chooses the cgroup namespace and may give the host's; use API \
             {CGROUPNS_MODE_SINCE} or later (allow_host_namespaces)"
        ),
        setting: Some("allow_host_namespaces".into()),
        value: Some(format!("API {version}")),
    })
}

/// Applies the policy's default resource limits, and the safe namespace modes (see
/// [`SAFE_NAMESPACE_MODES`]; `CgroupnsMode` only from [`CGROUPNS_MODE_SINCE`] on: an
/// unversioned path is the daemon's current version), to a container create body. Returns the
/// new body and what was set, or `None` when nothing applies (the body sets everything itself,
/// or is not one this can rewrite unambiguously).
pub fn container_defaults(
    body: &[u8],
    rules: &ContainerRules,
    version: Option<ApiVersion>,
) -> Option<(Vec<u8>, Applied)> {
    if body.is_empty() {
        return None;
    }
    let mut top = Members::parse(body)?;
    let mut host = match top.position("HostConfig") {
        None => Members(Vec::new()),
        Some(i) => match top.0[i].1.get().trim() {
            "null" => Members(Vec::new()),
            raw => Members::parse(raw.as_bytes())?,
        },
    };
    let mut applied = Vec::new();
    let unset = |v: Option<i64>| v.is_none_or(|n| n == 0);
    if let Some(memory) = rules.default_memory_bytes {
        if unset(host.int("Memory")?) {
            host.set("Memory", raw_int(memory)?);
            applied.push(format!("Memory={memory}"));
        }
    }
    if let Some(cpus) = rules.default_nano_cpus {
        let other_cpu_limit = !unset(host.int("CpuQuota")?) || !unset(host.int("CpuPeriod")?);
        if unset(host.int("NanoCpus")?) && !other_cpu_limit {
            host.set("NanoCpus", raw_int(cpus)?);
            applied.push(format!("NanoCpus={cpus}"));
        }
    }
    if let Some(pids) = rules.default_pids {
        if host.int("PidsLimit")?.is_none_or(|n| n <= 0) {
            host.set("PidsLimit", raw_int(pids)?);
            applied.push(format!("PidsLimit={pids}"));
        }
    }
    for (field, safe) in SAFE_NAMESPACE_MODES {
        if field == "CgroupnsMode" && version.is_some_and(|v| v < CGROUPNS_MODE_SINCE) {
            continue;
        }
        if host.string(field)?.is_none() {
            host.set(field, RawValue::from_string(format!("\"{safe}\"")).ok()?);
            applied.push(format!("{field}={safe}"));
        }
    }
    if applied.is_empty() {
        return None;
    }
    let host = RawValue::from_string(serde_json::to_string(&host).ok()?).ok()?;
    top.set("HostConfig", host);
    Some((serde_json::to_vec(&top).ok()?, applied))
}

/// The object member `name` of `parent` (an empty one when absent or `null`); `None` when it is
/// not an object this can rewrite unambiguously.
fn child(parent: &Members, name: &str) -> Option<Members> {
    match parent.position(name) {
        None => Some(Members(Vec::new())),
        Some(i) => match parent.0[i].1.get().trim() {
            "null" => Some(Members(Vec::new())),
            raw => Members::parse(raw.as_bytes()),
        },
    }
}

/// Puts `value` back into `parent` as its member `name`.
fn put(parent: &mut Members, name: &str, value: &Members) -> Option<()> {
    parent.set(
        name,
        RawValue::from_string(serde_json::to_string(value).ok()?).ok()?,
    );
    Some(())
}

/// The first API version whose swarm `Limits` has `Pids`.
pub const SERVICE_PIDS_SINCE: ApiVersion = ApiVersion {
    major: 1,
    minor: 41,
};

/// Applies the policy's default resource limits to a service create or update body (an update
/// replaces the whole spec, so a limit it leaves out would be removed):
/// `TaskTemplate.Resources.Limits` gets `MemoryBytes` (`default_memory_bytes`), `NanoCPUs`
/// (`default_nano_cpus`) and, from API [`SERVICE_PIDS_SINCE`] on, `Pids` (`default_pids`)
/// where unset (absent, `null` or 0). A service's task spec has no `IpcMode` or
/// `CgroupnsMode`: its containers get the daemon's configured defaults. Returns the new body
/// and what was set, or `None` as [`container_defaults`] does.
pub fn service_defaults(
    body: &[u8],
    rules: &ContainerRules,
    version: Option<ApiVersion>,
) -> Option<(Vec<u8>, Applied)> {
    let pids = rules
        .default_pids
        .filter(|_| version.is_none_or(|v| v >= SERVICE_PIDS_SINCE));
    let wanted = [
        ("MemoryBytes", rules.default_memory_bytes),
        ("NanoCPUs", rules.default_nano_cpus),
        ("Pids", pids),
    ];
    if body.is_empty() || wanted.iter().all(|(_, v)| v.is_none()) {
        return None;
    }
    let mut top = Members::parse(body)?;
    let mut task = child(&top, "TaskTemplate")?;
    let mut resources = child(&task, "Resources")?;
    let mut limits = child(&resources, "Limits")?;
    let mut applied = Vec::new();
    for (field, value) in wanted {
        let Some(value) = value else { continue };
        if limits.int(field)?.is_none_or(|n| n <= 0) {
            limits.set(field, raw_int(value)?);
            applied.push(format!("TaskTemplate.Resources.Limits.{field}={value}"));
        }
    }
    if applied.is_empty() {
        return None;
    }
    put(&mut resources, "Limits", &limits)?;
    put(&mut task, "Resources", &resources)?;
    put(&mut top, "TaskTemplate", &task)?;
    Some((serde_json::to_vec(&top).ok()?, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ContainerRules {
        ContainerRules {
            default_memory_bytes: Some(256 << 20),
            default_nano_cpus: Some(1_000_000_000),
            default_pids: Some(512),
            ..ContainerRules::default()
        }
    }

    fn apply(body: &str) -> Option<serde_json::Value> {
        container_defaults(body.as_bytes(), &rules(), None)
            .map(|(b, _)| serde_json::from_slice(&b).unwrap())
    }

    const SAFE_MODES: &str = r#""IpcMode":"private","CgroupnsMode":"private""#;

    #[test]
    fn unset_limits_get_the_defaults_and_the_rest_is_kept() {
        let v = apply(r#"{"Image":"busybox","Env":["A=1"],"HostConfig":{"NetworkMode":"none","Memory":0,"PidsLimit":-1}}"#).unwrap();
        assert_eq!(v["HostConfig"]["Memory"], 256 << 20);
        assert_eq!(v["HostConfig"]["NanoCpus"], 1_000_000_000);
        assert_eq!(v["HostConfig"]["PidsLimit"], 512);
        assert_eq!(v["HostConfig"]["NetworkMode"], "none");
        assert_eq!(v["Env"][0], "A=1");
        let v = apply(r#"{"Image":"busybox"}"#).unwrap();
        assert_eq!(v["HostConfig"]["Memory"], 256 << 20);
        let v = apply(r#"{"Image":"busybox","HostConfig":null}"#).unwrap();
        assert_eq!(v["HostConfig"]["PidsLimit"], 512);
    }

    #[test]
    fn values_the_client_set_are_kept_and_key_case_is_respected() {
        let v = apply(&format!(
            r#"{{"hostconfig":{{"memory":1048576,"nanocpus":5,"pidslimit":7,{SAFE_MODES}}}}}"#
        ));
        assert!(v.is_none(), "{v:?}");
        // A value the client set under another key case is its own: kept as written.
        let v = apply(r#"{"HostConfig":{"memory":1048576}}"#).unwrap();
        assert_eq!(v["HostConfig"]["memory"], 1048576, "{v}");
        assert!(v["HostConfig"].get("Memory").is_none(), "{v}");
        // An unset one under another key case is replaced, not doubled.
        let v = apply(r#"{"HostConfig":{"memory":0}}"#).unwrap();
        assert_eq!(v["HostConfig"]["Memory"], 256 << 20, "{v}");
        assert!(v["HostConfig"].get("memory").is_none(), "{v}");
        // CpuQuota limits CPUs another way: no NanoCpus next to it.
        let v = apply(&format!(
            r#"{{"HostConfig":{{"CpuQuota":50000,"Memory":1,"PidsLimit":1,{SAFE_MODES}}}}}"#
        ));
        assert!(v.is_none(), "{v:?}");
    }

    #[test]
    fn ambiguous_or_odd_bodies_are_left_to_the_inspector() {
        for body in [
            r#"{"HostConfig":{},"hostconfig":{}}"#,
            r#"{"HostConfig":{"Memory":0,"memory":0}}"#,
            r#"{"Image":"a","Image":"b"}"#,
            r#"{"HostConfig":{"Memory":"lots"}}"#,
            r#"{"HostConfig":{"Memory":1.5}}"#,
            r#"{"Hoſtconfig":{}}"#,
            r#"[1]"#,
            r#"{"HostConfig":[]}"#,
            "not json",
        ] {
            assert!(
                container_defaults(body.as_bytes(), &rules(), None).is_none(),
                "{body}"
            );
        }
        let none = format!(r#"{{"HostConfig":{{{SAFE_MODES}}}}}"#);
        assert!(container_defaults(none.as_bytes(), &ContainerRules::default(), None).is_none());
    }

    #[test]
    fn other_values_keep_their_exact_bytes() {
        let body = r#"{"Image":"busybox","Labels":{"a":"\u0041","big":123456789012345678901234567890},"HostConfig":{"Binds":["/x:/y"]}}"#;
        let (out, applied) = container_defaults(body.as_bytes(), &rules(), None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"{"a":"\u0041","big":123456789012345678901234567890}"#),
            "{text}"
        );
        assert!(text.contains(r#""Binds":["/x:/y"]"#), "{text}");
        assert_eq!(
            applied,
            [
                "Memory=268435456",
                "NanoCpus=1000000000",
                "PidsLimit=512",
                "IpcMode=private",
                "CgroupnsMode=private"
            ]
        );
    }

    fn v(minor: u16) -> Option<ApiVersion> {
        Some(ApiVersion { major: 1, minor })
    }

    #[test]
    fn unsafe_daemon_defaults_are_written_where_the_version_knows_the_field() {
        let none = ContainerRules::default();
        let modes = |body: &str, version| {
            container_defaults(body.as_bytes(), &none, version).map(|(b, applied)| {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                (
                    v["HostConfig"]["IpcMode"].clone(),
                    v["HostConfig"]["CgroupnsMode"].clone(),
                    applied,
                )
            })
        };
        // Every spelling of "unset" gets the safe value; the other case of a key is replaced.
        for body in [
            r#"{"Image":"busybox"}"#,
            r#"{"HostConfig":null}"#,
            r#"{"HostConfig":{"IpcMode":"","CgroupnsMode":null}}"#,
            r#"{"HostConfig":{"ipcmode":"","cgroupnsmode":""}}"#,
        ] {
            for version in [None, v(41), v(44), v(40)] {
                let (ipc, cgroupns, _) = modes(body, version).unwrap();
                assert_eq!(
                    (ipc.as_str(), cgroupns.as_str()),
                    (Some("private"), Some("private")),
                    "{body}"
                );
            }
            // Before 1.40 CgroupnsMode is not written (the inspector refuses instead).
            let (ipc, cgroupns, applied) = modes(body, v(39)).unwrap();
            assert_eq!(ipc, "private", "{body}");
            assert!(cgroupns.is_null(), "{body}");
            assert_eq!(applied, ["IpcMode=private"]);
        }
        // The client's own choice is kept (and inspected as before).
        let (ipc, cgroupns, applied) =
            modes(r#"{"HostConfig":{"IpcMode":"shareable"}}"#, None).unwrap();
        assert_eq!(
            (ipc.as_str(), cgroupns.as_str()),
            (Some("shareable"), Some("private"))
        );
        assert_eq!(applied, ["CgroupnsMode=private"]);
        // A mode that is not a string is left to the inspector.
        assert!(modes(r#"{"HostConfig":{"IpcMode":1}}"#, None).is_none());
    }

    #[test]
    fn a_version_without_cgroupns_mode_is_refused_unless_set_or_allowed() {
        let none = ContainerRules::default();
        for body in [
            r#"{}"#,
            r#"{"HostConfig":{"CgroupnsMode":""}}"#,
            r#"{"HostConfig":null}"#,
        ] {
            let refused = cgroupns_unwritable(body.as_bytes(), &none, v(39)).unwrap();
            assert_eq!(refused.field, "HostConfig.CgroupnsMode");
            assert_eq!(refused.setting.as_deref(), Some("allow_host_namespaces"));
            assert!(refused.reason.contains("1.39"), "{}", refused.reason);
            assert!(cgroupns_unwritable(body.as_bytes(), &none, v(40)).is_none());
            assert!(cgroupns_unwritable(body.as_bytes(), &none, None).is_none());
        }
        let set = br#"{"HostConfig":{"CgroupnsMode":"private"}}"#;
        assert!(cgroupns_unwritable(set, &none, v(30)).is_none());
        let open = ContainerRules {
            allow_host_namespaces: true,
            ..ContainerRules::default()
        };
        assert!(cgroupns_unwritable(b"{}", &open, v(30)).is_none());
    }

    #[test]
    fn service_limits_get_the_defaults_where_the_version_knows_them() {
        let body = br#"{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{"MemoryBytes":1048576}}},"Labels":{"a":"\u0041"}}"#;
        let (out, applied) = service_defaults(body, &rules(), None).unwrap();
        let text = String::from_utf8(out).unwrap();
        let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
        let limits = &spec["TaskTemplate"]["Resources"]["Limits"];
        assert_eq!(
            limits["MemoryBytes"], 1048576,
            "the client's own value is kept"
        );
        assert_eq!(limits["NanoCPUs"], 1_000_000_000);
        assert_eq!(limits["Pids"], 512);
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], "busybox");
        assert!(text.contains(r#""Labels":{"a":"\u0041"}"#), "{text}");
        assert_eq!(
            applied,
            [
                "TaskTemplate.Resources.Limits.NanoCPUs=1000000000",
                "TaskTemplate.Resources.Limits.Pids=512"
            ]
        );
        // No TaskTemplate at all: built; before 1.41 no Pids.
        let (out, _) = service_defaults(br#"{"Name":"x"}"#, &rules(), v(40)).unwrap();
        let built: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let limits = &built["TaskTemplate"]["Resources"]["Limits"];
        assert_eq!(limits["MemoryBytes"], 256 << 20);
        assert!(limits.get("Pids").is_none());
        // Nothing configured, or an ambiguous body: left alone.
        assert!(service_defaults(br#"{}"#, &ContainerRules::default(), None).is_none());
        assert!(
            service_defaults(br#"{"TaskTemplate":{},"tasktemplate":{}}"#, &rules(), None).is_none()
        );
        assert!(service_defaults(br#"{"TaskTemplate":[]}"#, &rules(), None).is_none());
    }
}
