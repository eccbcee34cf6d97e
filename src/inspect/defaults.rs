//! Enforced defaults: resource limits a policy puts on a container whose create request does
//! not set them (`default_memory_bytes`, `default_nano_cpus`, `default_pids`), so a CI job that
//! asks for nothing still runs bounded.
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

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::rules::ContainerRules;

/// A JSON object as its members, in order, with their values' original bytes.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Serialize for Members {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

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

    fn position(&self, name: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
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

    /// Sets `name` to `value`, replacing a member that matches it case-insensitively.
    fn set(&mut self, name: &str, value: Box<RawValue>) {
        match self.position(name) {
            Some(i) => self.0[i] = (name.to_owned(), value),
            None => self.0.push((name.to_owned(), value)),
        }
    }
}

fn raw_int(n: i64) -> Option<Box<RawValue>> {
    RawValue::from_string(n.to_string()).ok()
}

/// What was added, for the audit log (`Memory=268435456`, ...).
pub type Applied = Vec<String>;

/// Applies the policy's default resource limits to a container create body. Returns the new
/// body and what was set, or `None` when nothing applies (no defaults configured, the body sets
/// the limits itself, or the body is not one this can rewrite unambiguously).
pub fn container_defaults(body: &[u8], rules: &ContainerRules) -> Option<(Vec<u8>, Applied)> {
    if rules.default_memory_bytes.is_none()
        && rules.default_nano_cpus.is_none()
        && rules.default_pids.is_none()
    {
        return None;
    }
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
    if applied.is_empty() {
        return None;
    }
    let host = RawValue::from_string(serde_json::to_string(&host).ok()?).ok()?;
    top.set("HostConfig", host);
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
        container_defaults(body.as_bytes(), &rules())
            .map(|(b, _)| serde_json::from_slice(&b).unwrap())
    }

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
        let v = apply(r#"{"hostconfig":{"memory":1048576,"nanocpus":5,"pidslimit":7}}"#);
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
        let v = apply(r#"{"HostConfig":{"CpuQuota":50000,"Memory":1,"PidsLimit":1}}"#);
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
                container_defaults(body.as_bytes(), &rules()).is_none(),
                "{body}"
            );
        }
        assert!(container_defaults(b"{}", &ContainerRules::default()).is_none());
    }

    #[test]
    fn other_values_keep_their_exact_bytes() {
        let body = r#"{"Image":"busybox","Labels":{"a":"\u0041","big":123456789012345678901234567890},"HostConfig":{"Binds":["/x:/y"]}}"#;
        let (out, applied) = container_defaults(body.as_bytes(), &rules()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"{"a":"\u0041","big":123456789012345678901234567890}"#),
            "{text}"
        );
        assert!(text.contains(r#""Binds":["/x:/y"]"#), "{text}");
        assert_eq!(
            applied,
            ["Memory=268435456", "NanoCpus=1000000000", "PidsLimit=512"]
        );
    }
}
