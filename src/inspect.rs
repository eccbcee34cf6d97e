//! Deep inspection of request bodies (and query parameters) that can change the host's security.
//!
//! Pure functions, no I/O: each inspector reads the raw body exactly as the Docker daemon's Go
//! `encoding/json` would ([`docker_json`]), refuses every ambiguity (duplicate or case-folded
//! keys, non-ASCII field names, trailing data, type mismatches), and checks every
//! security-relevant field against a rule set whose `Default` is the safe profile P0 of
//! `security-fields.md`.
//!
//! | route                               | inspector                 | rules            |
//! |-------------------------------------|---------------------------|------------------|
//! | `POST /containers/create`           | [`container_create`]      | [`ContainerRules`] |
//! | `POST /containers/{id}/update`      | [`container_update`]      | [`ContainerRules`] |
//! | `POST /containers/{id}/start`       | [`container_start`], [`container_start_query`] | – |
//! | `POST /containers/{id}/exec`        | [`exec_create`]           | [`ExecRules`]    |
//! | `POST /volumes/create`              | [`volume_create`]         | [`VolumeRules`]  |
//! | `POST /networks/create`             | [`network_create`]        | [`NetworkRules`] |
//! | `POST /build` (query only)          | [`build_query`]           | [`BuildRules`]   |
//! | `POST /services/create`, `/{id}/update` | [`service_create`], [`service_update`] | [`ContainerRules`] |
//! | `POST /plugins/pull`, `/{name}/upgrade` | [`plugin_pull`], [`plugin_upgrade`] | [`PluginRules`] |
//! | `POST /build` (the context, as it streams) | [`context`], [`dockerfile`] | [`BuildRules`] |
//! | every operation that fetches (`route::Fetch`) | [`fetch`]       | – (one rule)     |
//!
//! What the inspectors cannot do (needs I/O, left to the caller): resolve names to IDs and check
//! ownership of images, volumes (`Summary::named_volumes`), networks (`Summary::networks`) and
//! containers; look at the host's bind sources; see the daemon's defaults
//! (`default-cgroupns-mode`, `default-ipc-mode`, API-version dependent defaults); rewrite bodies.
//! `crate::reach` does the lookups and host checks, and hands what the daemon stored to the
//! pure [`stored_container`], [`stored_exec`], [`volume_as_mount`] and [`image_settings`].

use serde::Serialize;
use std::fmt;

pub mod build;
pub mod container;
pub mod context;
pub mod defaults;
pub mod docker_json;
pub mod dockerfile;
pub mod exec;
pub mod fetch;
pub mod image_names;
pub mod layer;
pub mod members;
pub mod network;
pub mod plugin;
pub mod rules;
pub mod samples;
pub mod service;
pub mod volume;

pub(crate) mod common;
mod table;

#[cfg(test)]
mod tests;

pub use build::{
    build_caps, build_caps_prepared, build_defaults, build_pids, build_query, build_query_prepared,
    wants_build_cgroup, UNCAPPED_BUILD_FIX,
};
pub use common::go_bool;
pub(crate) use common::{clean_path, glob, is_host_like, is_under, normalize_image};
pub use container::{container_create, container_start, container_start_query, container_update};
pub(crate) use container::{image_settings, stored_container, volume_as_mount, DaemonDefaults};
pub use exec::{exec_create, stored_exec};
pub use network::{network_connect, network_create};
pub use plugin::{plugin_pull, plugin_upgrade};
pub use rules::{BuildRules, ContainerRules, ExecRules, NetworkRules, PluginRules, VolumeRules};
pub use service::{service_create, service_update};
pub use volume::volume_create;

/// Why a request is refused: the JSON path (`HostConfig.Binds[0]`) or query parameter
/// (`?networkmode`) and a reason that names the policy setting allowing it, where one exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON path (`HostConfig.Binds[0]`, `(body)` for the whole document) or `?param`.
    pub field: String,
    /// Human-readable reason; ends with `(setting_name)` when a rule setting would allow it.
    pub reason: String,
    /// That setting (`allow_privileged`, `bind_sources`, `max_pids`), when one would allow it.
    pub setting: Option<String>,
    /// The request's value the setting would have to admit, where there is one: the entry a
    /// list setting would need (a host path, a capability, `nofile = 65536` for `ulimits`), or
    /// the amount a cap would have to reach. Read by `sockwarden explain`.
    pub value: Option<String>,
}

impl Violation {
    /// The same refusal, noting the request's value (see [`Violation::value`]).
    pub fn with_value(mut self, value: impl fmt::Display) -> Violation {
        self.value = Some(value.to_string());
        self
    }

    /// [`Violation::with_value`] when `known`: the request has a value that could be admitted.
    pub fn with_value_if(self, known: bool, value: impl fmt::Display) -> Violation {
        if known {
            self.with_value(value)
        } else {
            self
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Violation {}

impl From<docker_json::JsonError> for Violation {
    fn from(e: docker_json::JsonError) -> Self {
        Violation {
            field: if e.path.is_empty() {
                "(body)".to_string()
            } else {
                e.path
            },
            reason: format!("invalid JSON: {}", e.message),
            setting: None,
            value: None,
        }
    }
}

/// One filesystem mount a request asks for, for the audit log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MountSummary {
    /// `bind` (host path), `volume` (named), `anonymous`, or `tmpfs`.
    pub kind: &'static str,
    /// Host path (cleaned) for `bind`, volume name for `volume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Where it came from: `Binds`, `Mounts`, `Tmpfs`, `Volumes`.
    pub from: &'static str,
}

/// Resource limits seen in the request.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<i64>,
}

impl Limits {
    fn is_empty(&self) -> bool {
        self == &Limits::default()
    }
}

/// The security-relevant settings of an accepted request, for the audit log. Empty fields are
/// not serialized.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Which inspector produced it (`container_create`, `exec_create`, ...).
    pub kind: &'static str,
    /// Object name (container `name` parameter, volume or network `Name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Image (or plugin reference), normalized (`docker.io/library/busybox:latest`) when it
    /// parses as a reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Normalized (`SYS_ADMIN`, no `CAP_`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountSummary>,
    /// Named volumes used (the caller must check ownership).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_volumes: Vec<String>,
    /// User-defined networks joined (the caller must resolve and check ownership).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Namespace settings that are not empty: `network=none`, `ipc=private`, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Devices, device requests and cgroup rules (only with `allow_devices`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// `Ulimits`: name -> largest hard limit asked for.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ulimits: std::collections::BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `HostIp:HostPort->port/proto`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_bindings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// Volume or network driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Build tags (`t`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Privileges granted to a plugin (`NAME=VALUE`, or `NAME` without values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugin_privileges: Vec<String>,
}

impl Summary {
    fn new(kind: &'static str) -> Summary {
        Summary {
            kind,
            ..Summary::default()
        }
    }
}
