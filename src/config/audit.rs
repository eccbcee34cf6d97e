//! The `[audit]` section: one sink (`sink`, `path`, `syslog_socket`) or several
//! (`[[audit.sinks]]`, remote collectors included), the queue, and sealing (`seal_key`).

use std::path::PathBuf;

use serde::Deserialize;

use super::duration;
use crate::error::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    sink: Option<String>,
    path: Option<PathBuf>,
    syslog_socket: Option<PathBuf>,
    queue: Option<usize>,
    on_failure: Option<crate::audit::OnFailure>,
    log_bodies: Option<bool>,
    seal_key: Option<PathBuf>,
    seal_state: Option<PathBuf>,
    seal_checkpoint: Option<String>,
    sinks: Option<Vec<RawSink>>,
}

/// One `[[audit.sinks]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    on_failure: Option<crate::audit::OnFailure>,
    path: Option<PathBuf>,
    syslog_socket: Option<PathBuf>,
    address: Option<String>,
    protocol: Option<String>,
    ca: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    server_name: Option<String>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    facility: Option<String>,
    hostname: Option<String>,
    app_name: Option<String>,
}

pub(super) fn validate_audit(
    mut raw: RawAudit,
) -> Result<crate::audit::AuditSettings, ConfigError> {
    use crate::audit::{AuditSettings, OnFailure, SinkConfig, SinkSettings};
    let defaults = AuditSettings::default();
    let queue = raw.queue.unwrap_or(defaults.queue);
    if queue == 0 {
        return Err(ConfigError::setting("audit.queue", "must be at least 1"));
    }
    let on_failure = raw.on_failure.unwrap_or(OnFailure::Closed);
    let log_bodies = raw.log_bodies.unwrap_or(defaults.log_bodies);
    if let Some(entries) = raw.sinks.take() {
        for (key, set) in [
            ("sink", raw.sink.is_some()),
            ("path", raw.path.is_some()),
            ("syslog_socket", raw.syslog_socket.is_some()),
        ] {
            if set {
                return Err(ConfigError::setting(
                    &format!("audit.{key}"),
                    "set the sinks either with audit.sink (one sink) or with [[audit.sinks]] \
                     entries, not both (move it into an entry)",
                ));
            }
        }
        let mut sinks: Vec<SinkSettings> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let sink = validate_sink(i, entry, on_failure)?;
            if sinks.iter().any(|s| s.name == sink.name) {
                return Err(ConfigError::setting(
                    &format!("audit.sinks[{i}].name"),
                    format!(
                        "another sink is already named {:?}: give each sink of the same type \
                         its own name",
                        sink.name
                    ),
                ));
            }
            sinks.push(sink);
        }
        // A seal_key seals the one file sink of the list.
        let files: Vec<&SinkConfig> = sinks
            .iter()
            .map(|s| &s.config)
            .filter(|c| matches!(c, SinkConfig::File(_)))
            .collect();
        if raw.seal_key.is_some() && files.len() > 1 {
            return Err(ConfigError::setting(
                "audit.seal_key",
                format!(
                    "seals one file sink, and [[audit.sinks]] has {}: keep one file entry",
                    files.len()
                ),
            ));
        }
        let seal = validate_seal(&raw, files.first().copied())?;
        return Ok(AuditSettings {
            sinks,
            queue,
            log_bodies,
            seal,
        });
    }
    let sink = match raw.sink.as_deref().unwrap_or("stdout") {
        "stdout" => Some(SinkConfig::Stdout),
        "off" => None,
        "file" => {
            let Some(path) = raw.path.clone() else {
                return Err(ConfigError::setting(
                    "audit.path",
                    "required with sink = \"file\"",
                ));
            };
            if !path.is_absolute() {
                return Err(ConfigError::setting(
                    "audit.path",
                    "must be an absolute path",
                ));
            }
            Some(SinkConfig::File(path))
        }
        "syslog" => Some(SinkConfig::Syslog(
            raw.syslog_socket
                .clone()
                .unwrap_or_else(|| PathBuf::from("/dev/log")),
        )),
        other => {
            return Err(ConfigError::setting(
                "audit.sink",
                format!("{other:?} is not one of \"stdout\", \"file\", \"syslog\", \"off\""),
            ))
        }
    };
    if raw.path.is_some() && !matches!(sink, Some(SinkConfig::File(_))) {
        return Err(ConfigError::setting(
            "audit.path",
            "only applies with sink = \"file\"",
        ));
    }
    if raw.syslog_socket.is_some() && !matches!(sink, Some(SinkConfig::Syslog(_))) {
        return Err(ConfigError::setting(
            "audit.syslog_socket",
            "only applies with sink = \"syslog\"",
        ));
    }
    let seal = validate_seal(&raw, sink.as_ref())?;
    let sinks = sink
        .map(|config| {
            let (name, setting) = match &config {
                SinkConfig::File(_) => ("file", "audit.path"),
                SinkConfig::Syslog(_) => ("syslog", "audit.syslog_socket"),
                _ => ("stdout", "audit.sink"),
            };
            SinkSettings {
                name: name.to_owned(),
                config,
                on_failure,
                setting: setting.to_owned(),
            }
        })
        .into_iter()
        .collect();
    Ok(AuditSettings {
        sinks,
        queue,
        log_bodies,
        seal,
    })
}

/// One `[[audit.sinks]]` entry; `on_failure` is `[audit] on_failure`'s (or the default).
fn validate_sink(
    i: usize,
    raw: RawSink,
    on_failure: crate::audit::OnFailure,
) -> Result<crate::audit::SinkSettings, ConfigError> {
    use crate::audit::remote::RemoteConfig;
    use crate::audit::syslog_format as fmt;
    use crate::audit::{SinkConfig, SinkSettings};
    let key = |k: &str| format!("audit.sinks[{i}].{k}");
    let err = |k: &str, m: String| ConfigError::setting(&key(k), m);
    let Some(kind) = raw.kind.as_deref() else {
        return Err(err(
            "type",
            "required: \"file\", \"stdout\", \"syslog\" or \"remote\"".into(),
        ));
    };
    // Which settings each type takes; any other set is an error naming it.
    let given: [(&str, bool); 14] = [
        ("path", raw.path.is_some()),
        ("syslog_socket", raw.syslog_socket.is_some()),
        ("address", raw.address.is_some()),
        ("protocol", raw.protocol.is_some()),
        ("ca", raw.ca.is_some()),
        ("client_cert", raw.client_cert.is_some()),
        ("client_key", raw.client_key.is_some()),
        ("server_name", raw.server_name.is_some()),
        ("spool_dir", raw.spool_dir.is_some()),
        ("spool_max_bytes", raw.spool_max_bytes.is_some()),
        ("facility", raw.facility.is_some()),
        ("hostname", raw.hostname.is_some()),
        ("app_name", raw.app_name.is_some()),
        ("name", false),
    ];
    let takes: &[&str] = match kind {
        "file" => &["path"],
        "stdout" => &[],
        "syslog" => &["syslog_socket"],
        "remote" => &[
            "address",
            "protocol",
            "ca",
            "client_cert",
            "client_key",
            "server_name",
            "spool_dir",
            "spool_max_bytes",
            "facility",
            "hostname",
            "app_name",
        ],
        other => {
            return Err(err(
                "type",
                format!("{other:?} is not one of \"file\", \"stdout\", \"syslog\", \"remote\""),
            ))
        }
    };
    if let Some((k, _)) = given.iter().find(|(k, set)| *set && !takes.contains(k)) {
        return Err(err(k, format!("does not apply to type = {kind:?}")));
    }
    let (config, setting) = match kind {
        "stdout" => (SinkConfig::Stdout, key("type")),
        "file" => {
            let Some(path) = raw.path else {
                return Err(err("path", "required with type = \"file\"".into()));
            };
            if !path.is_absolute() {
                return Err(err("path", "must be an absolute path".into()));
            }
            (SinkConfig::File(path), key("path"))
        }
        "syslog" => (
            SinkConfig::Syslog(
                raw.syslog_socket
                    .unwrap_or_else(|| PathBuf::from("/dev/log")),
            ),
            key("syslog_socket"),
        ),
        _ => {
            let Some(address) = raw.address else {
                return Err(err(
                    "address",
                    "required with type = \"remote\" (host:port of the collector)".into(),
                ));
            };
            let host = remote_host(&key("address"), &address)?;
            let tls = match raw.protocol.as_deref().unwrap_or("tcp") {
                "tcp" => {
                    for (k, set) in [
                        ("ca", raw.ca.is_some()),
                        ("client_cert", raw.client_cert.is_some()),
                        ("client_key", raw.client_key.is_some()),
                        ("server_name", raw.server_name.is_some()),
                    ] {
                        if set {
                            return Err(err(k, "only applies with protocol = \"tls\"".into()));
                        }
                    }
                    None
                }
                "tls" => {
                    let Some(ca) = raw.ca else {
                        return Err(err(
                            "ca",
                            "required with protocol = \"tls\": the CA certificate(s) the \
                             collector's certificate must chain to"
                                .into(),
                        ));
                    };
                    let client = match (&raw.client_cert, &raw.client_key) {
                        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                        (None, None) => None,
                        (Some(_), None) => {
                            return Err(err("client_key", "required with client_cert".into()))
                        }
                        (None, Some(_)) => {
                            return Err(err("client_cert", "required with client_key".into()))
                        }
                    };
                    let server_name = raw.server_name.unwrap_or_else(|| host.clone());
                    Some(crate::audit::remote::load_tls(
                        &format!("audit.sinks[{i}]"),
                        &ca,
                        client,
                        &server_name,
                    )?)
                }
                other => {
                    return Err(err(
                        "protocol",
                        format!("{other:?} is not one of \"tcp\", \"tls\""),
                    ))
                }
            };
            let Some(spool_dir) = raw.spool_dir else {
                return Err(err(
                    "spool_dir",
                    "required with type = \"remote\": the directory where records wait \
                     for the collector (e.g. /var/lib/sockwarden/spool)"
                        .into(),
                ));
            };
            if !spool_dir.is_absolute() {
                return Err(err("spool_dir", "must be an absolute path".into()));
            }
            let spool_max_bytes = raw
                .spool_max_bytes
                .unwrap_or(crate::audit::spool::DEFAULT_BYTES);
            if spool_max_bytes < crate::audit::spool::MIN_BYTES {
                return Err(err(
                    "spool_max_bytes",
                    format!("must be at least {}", crate::audit::spool::MIN_BYTES),
                ));
            }
            let facility = match raw.facility.as_deref() {
                None => 10,
                Some(name) => fmt::facility(name).ok_or_else(|| {
                    err(
                        "facility",
                        format!("{name:?} is not one of {}", fmt::facility_names()),
                    )
                })?,
            };
            if let Some(h) = &raw.hostname {
                if !fmt::valid_field(h, fmt::HOSTNAME_MAX) {
                    return Err(err(
                        "hostname",
                        "must be 1 to 255 printable ASCII characters without spaces (RFC 5424)"
                            .into(),
                    ));
                }
            }
            let app_name = raw.app_name.unwrap_or_else(|| "sockwarden".to_owned());
            if !fmt::valid_field(&app_name, fmt::APP_NAME_MAX) {
                return Err(err(
                    "app_name",
                    "must be 1 to 48 printable ASCII characters without spaces (RFC 5424)".into(),
                ));
            }
            (
                SinkConfig::Remote(Box::new(RemoteConfig {
                    address,
                    tls,
                    spool_dir,
                    spool_max_bytes,
                    facility,
                    hostname: raw.hostname,
                    app_name,
                })),
                key("spool_dir"),
            )
        }
    };
    let name = raw.name.unwrap_or_else(|| kind.to_owned());
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(err(
            "name",
            "must be letters, digits, '-', '_' or '.' (it labels the sink's metrics)".into(),
        ));
    }
    Ok(SinkSettings {
        name,
        config,
        on_failure: raw.on_failure.unwrap_or(on_failure),
        setting,
    })
}

/// `seal_key`, `seal_state`, `seal_checkpoint`: sealing of a file sink.
fn validate_seal(
    raw: &RawAudit,
    sink: Option<&crate::audit::SinkConfig>,
) -> Result<Option<crate::audit::seal::SealSettings>, ConfigError> {
    use crate::audit::seal::{SealSettings, DEFAULT_CHECKPOINT};
    let Some(seed) = raw.seal_key.clone() else {
        for (name, set) in [
            ("audit.seal_state", raw.seal_state.is_some()),
            ("audit.seal_checkpoint", raw.seal_checkpoint.is_some()),
        ] {
            if set {
                return Err(ConfigError::setting(name, "only applies with seal_key"));
            }
        }
        return Ok(None);
    };
    let Some(crate::audit::SinkConfig::File(log)) = sink else {
        return Err(ConfigError::setting(
            "audit.seal_key",
            "only applies with a file sink (sink = \"file\", or one [[audit.sinks]] entry of type = \"file\")",
        ));
    };
    if !seed.is_absolute() {
        return Err(ConfigError::setting(
            "audit.seal_key",
            "must be an absolute path",
        ));
    }
    let state = match raw.seal_state.clone() {
        Some(p) if !p.is_absolute() => {
            return Err(ConfigError::setting(
                "audit.seal_state",
                "must be an absolute path",
            ))
        }
        Some(p) => p,
        None => SealSettings::default_state(log),
    };
    if &state == log || state == seed {
        return Err(ConfigError::setting(
            "audit.seal_state",
            "must differ from the audit file and the seed",
        ));
    }
    let checkpoint = duration(
        "audit.seal_checkpoint",
        raw.seal_checkpoint.clone(),
        DEFAULT_CHECKPOINT,
    )?;
    if checkpoint < std::time::Duration::from_secs(1) {
        return Err(ConfigError::setting(
            "audit.seal_checkpoint",
            "must be at least 1s",
        ));
    }
    Ok(Some(SealSettings {
        seed,
        state,
        checkpoint,
    }))
}

/// The host part of a remote collector's `host:port` (an IP literal, `[v6]` in brackets, or
/// a DNS name, which is resolved at each connection attempt, not here).
fn remote_host(name: &str, text: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError::setting(
            name,
            format!("{text:?} is not a host:port address ({why}); e.g. \"logs.example.net:6514\", \"192.0.2.7:514\", \"[2001:db8::7]:6514\""),
        )
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("no port"));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && !port.starts_with('+') => {}
        _ => return Err(bad("the port must be 1 to 65535")),
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| bad("not an IPv6 address in brackets"));
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(host.to_owned());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("not an IP address or a DNS name"));
    }
    Ok(host.to_owned())
}
