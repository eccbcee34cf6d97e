//! The audit record: the one type that describes a line of the audit log, written by the
//! request path (`record::write_line`, a fast writer that fills it in field by field, and the
//! reload record, serialized from this type) and read by `audit summarize`/`suggest`.
//!
//! Reading is lenient: every field is optional, unknown fields are ignored and `null` reads as
//! empty, so records of every kind and of other versions read without error. Serializing
//! leaves out what is absent, as the writer does; a round-trip test (in `record`) holds the
//! writer and this type to the same fields and shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// `null` reads as the type's default (an empty list, `false`, ...).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One line of the audit log. Every field is optional so that records of every kind (requests,
/// sessions, reloads) and of other versions read without error.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Record {
    /// RFC 3339 UTC time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Record id (a session's open and close share it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `request`, `session_open`, `session_close` or `reload` (absent: `request`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The listener the connection came in on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<String>,
    /// The client name; `None` when the connection matched no client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Who was on the other end of the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<Peer>,
    /// The client's `User-Agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The request path as sent (with `/vX.Y`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_path: Option<String>,
    /// Normalized path without the version; `None` when the request could not be normalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// API version of the path prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Query parameters (secrets already redacted).
    #[serde(deserialize_with = "nullable")]
    pub query: BTreeMap<String, Vec<String>>,
    /// The classified operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `allow`, `deny` or `would-deny`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Policy consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The client's tenant, under a policy's isolation (`uid:1001`, `client:ci`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Rule that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Inspection refusals, as objects (older logs wrote `FIELD: reason (setting)` strings:
    /// read through [`Violation::from_legacy`]).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// Status returned to the client (101 for an opened session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Request body bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Response body bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// `complete`, `client_gone` or `error`; a session's close also `shutdown` or, for a
    /// BuildKit session ended because the build that names it failed, `build_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Rate-limit refusals of this client since its last recorded one that have no record of
    /// their own (at most one such refusal is recorded per client and second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    /// Objects the request names.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub objects: BTreeMap<String, Option<String>>,
    /// The inspector's summary of an inspected request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// Enforced defaults the policy added to the body (`Memory=268435456`, ...).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub defaults_applied: Vec<String>,
    /// The inspected body, redacted (with `audit.log_bodies`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Reloads: `ok` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Reloads: the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Reloads: what triggered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Reloads: the configuration generation now in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Reloads: changed settings that take effect only after a restart.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub restart_needed: Vec<String>,
}

/// One inspection refusal of a record: what `inspect::Violation` holds, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawViolation")]
pub struct Violation {
    /// JSON path (`HostConfig.Binds[0]`, `(body)`) or query parameter (`?networkmode`).
    pub field: String,
    /// Why, in words (ends with `(setting)` when a setting would allow it).
    pub reason: String,
    /// The setting that would allow it (`bind_sources`, `allow_privileged`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
    /// The request's value that setting would have to admit (a host path, a capability, an
    /// image reference, an amount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A violation as found in a log: an object, or (older logs, the fixtures) a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawViolation {
    Text(String),
    Object {
        #[serde(default, deserialize_with = "nullable")]
        field: String,
        #[serde(default, deserialize_with = "nullable")]
        reason: String,
        #[serde(default)]
        setting: Option<String>,
        #[serde(default)]
        value: Option<String>,
    },
}

impl From<RawViolation> for Violation {
    fn from(raw: RawViolation) -> Violation {
        match raw {
            RawViolation::Text(text) => Violation::from_legacy(&text),
            RawViolation::Object {
                field,
                reason,
                setting,
                value,
            } => Violation {
                field,
                reason,
                setting,
                value,
            },
        }
    }
}

impl From<&crate::inspect::Violation> for Violation {
    fn from(v: &crate::inspect::Violation) -> Violation {
        Violation {
            field: v.field.clone(),
            reason: v.reason.clone(),
            setting: v.setting.clone(),
            value: v.value.clone(),
        }
    }
}

/// `FIELD: reason`, as the client read it.
impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// Legacy reader: the one place that reads a violation's English text. Audit logs written
/// before violations were objects hold `FIELD: reason (setting)` strings; each is turned into
/// the structured form once, when read, recovering the setting from the reason's
/// `(setting)` suffix and the value from the inspectors' wording of that setting's refusal.
/// Nothing else parses violation text; new records carry setting and value themselves.
impl Violation {
    /// Reads one legacy violation string.
    pub fn from_legacy(text: &str) -> Violation {
        let (field, reason) = text.split_once(": ").unwrap_or(("", text));
        let (_, setting) = legacy::split(text);
        let value = setting.and_then(|setting| legacy::value(reason, setting));
        Violation {
            field: field.to_owned(),
            reason: reason.to_owned(),
            setting: setting.map(str::to_owned),
            value,
        }
    }
}

impl From<&str> for Violation {
    fn from(text: &str) -> Violation {
        Violation::from_legacy(text)
    }
}

impl From<String> for Violation {
    fn from(text: String) -> Violation {
        Violation::from_legacy(&text)
    }
}

/// The legacy reader's text parsing (see [`Violation::from_legacy`]).
pub(crate) mod legacy {
    /// Splits a violation `FIELD: REASON (setting)` into the reason and the setting, if any.
    pub(crate) fn split(v: &str) -> (&str, Option<&str>) {
        let reason = v.split_once(": ").map_or(v, |(_, r)| r);
        let setting = reason
            .strip_suffix(')')
            .and_then(|r| r.rfind('(').and_then(|i| r.get(i + 1..)))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        (reason, setting)
    }

    /// The request's value in a refusal's reason, as the inspectors word each setting's
    /// refusal (`host path X is not allowed`, `capability X is not allowed`, `"X"`).
    pub(crate) fn value(reason: &str, setting: &str) -> Option<String> {
        match setting {
            "bind_sources" => between(reason, "host path ", " is not allowed").map(str::to_owned),
            "require_read_only_binds" => {
                between(reason, "host path ", " must be mounted").map(str::to_owned)
            }
            "cap_add" => between(reason, "capability ", " is not allowed").map(str::to_owned),
            "images" => between(reason, "image ", " is not allowed").map(str::to_owned),
            "tags" => between(reason, "tag ", " is not allowed").map(str::to_owned),
            "port_host_ips" => {
                between(reason, "host address ", " is not allowed").map(str::to_owned)
            }
            "min_host_port" => between(reason, "host port ", " is below").map(str::to_owned),
            "security_opt" if reason.starts_with("disabling no-new-privileges") => {
                Some("no-new-privileges=false".into())
            }
            "sysctls" => between(reason, "sysctl ", " is not allowed").map(str::to_owned),
            "max_restart_retries" => between(reason, ", got ", " (")
                .filter(|n| n.parse::<i64>().is_ok_and(|n| n >= 1))
                .map(str::to_owned),
            "networks" | "runtimes" | "security_opt" | "platforms" | "drivers"
            | "network_modes" | "log_drivers" | "group_add" => quoted(reason),
            _ => None,
        }
    }

    /// The first JSON-quoted string in `text`.
    pub(crate) fn quoted(text: &str) -> Option<String> {
        let start = text.find('"')?;
        let rest = text.get(start..)?;
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return serde_json::from_str(rest.get(..=i)?).ok(),
                _ => escaped = false,
            }
        }
        None
    }

    /// The text between `prefix` and `suffix` in `reason`.
    fn between<'a>(reason: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
        reason
            .find(prefix)
            .and_then(|i| reason.get(i + prefix.len()..))
            .and_then(|rest| rest.find(suffix).and_then(|j| rest.get(..j)))
            .filter(|s| !s.is_empty())
    }
}

/// The peer of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Peer {
    /// Unix peers: user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Unix peers: group id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Unix peers: process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Unix peers: executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Unix peers: audit login uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<u32>,
    /// TCP peers: address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// TLS peers: certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// TLS peers: certificate subject alternative names.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub cert_san: Vec<String>,
}

impl Peer {
    /// A short description: `uid 1001 /usr/bin/gitlab-runner`, `10.0.0.5:4711`, `CN=ci-bot`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(uid) = self.uid {
            parts.push(format!("uid {uid}"));
        }
        if let Some(exe) = &self.exe {
            parts.push(exe.clone());
        }
        if let Some(addr) = &self.addr {
            parts.push(addr.clone());
        }
        if let Some(subject) = &self.cert_subject {
            parts.push(subject.clone());
        }
        if parts.is_empty() {
            "unknown peer".into()
        } else {
            parts.join(" ")
        }
    }
}

/// The inspector's summary of a request (`inspect::Summary` as serialized).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Settings {
    /// Which inspector produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image, normalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `User`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Privileged container or exec.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Capabilities added.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Mounts.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountSettings>,
    /// Named volumes used.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub named_volumes: Vec<String>,
    /// User-defined networks joined.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Namespace settings (`network=host`, `ipc=private`, ...).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Security options.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Devices, device requests, cgroup rules.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Resource limits.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "LimitSettings::is_empty"
    )]
    pub limits: LimitSettings,
    /// `Ulimits`: name -> largest hard limit.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub ulimits: BTreeMap<String, i64>,
    /// OCI runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `HostIp:HostPort->port/proto`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub port_bindings: Vec<String>,
    /// Restart policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Volume or network driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Build tags, normalized.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Privileges granted to a plugin (`NAME=VALUE`, or `NAME` without values).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub plugin_privileges: Vec<String>,
}

/// One mount of [`Settings::mounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct MountSettings {
    /// `bind`, `volume`, `anonymous` or `tmpfs`.
    pub kind: String,
    /// Host path (bind) or volume name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `Binds`, `Mounts`, `Tmpfs` or `Volumes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// [`Settings::limits`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct LimitSettings {
    /// `Memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// `MemorySwap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// `NanoCpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    /// `CpuShares`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// `CpuQuota`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// `PidsLimit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// `ShmSize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
}

impl LimitSettings {
    fn is_empty(&self) -> bool {
        self == &LimitSettings::default()
    }
}

impl Record {
    /// The event, `request` when absent.
    pub fn event(&self) -> &str {
        self.event.as_deref().unwrap_or("request")
    }

    /// Whether the record stands for one HTTP request (`request`, or the request that opened a
    /// session); session closes and reloads do not.
    pub fn is_request(&self) -> bool {
        matches!(self.event(), "request" | "session_open")
    }

    /// The first value of a query parameter.
    pub fn query_first(&self, key: &str) -> Option<&str> {
        self.query
            .get(key)
            .and_then(|values| values.first())
            .map(String::as_str)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
