//! Warnings `sockwarden check` gives about a valid configuration that invites one client to
//! exhaust what every client shares (descriptors, memory, the audit log's disk).

use std::time::Duration;

use super::Config;

/// Longest `server.body_read_timeout` `sockwarden check` accepts without a warning.
const LONG_BODY_TIMEOUT: Duration = Duration::from_secs(600);

/// What in `config` lets one client exhaust what every client shares (descriptors, memory,
/// the audit log's disk), for `sockwarden check` to warn about: each a sentence naming the
/// setting and the risk. Empty when nothing does.
pub fn exhaustion_warnings(config: &Config) -> Vec<String> {
    use crate::audit::{OnFailure, SinkConfig};
    let mut out = Vec::new();
    let fail_closed_file = config
        .audit
        .sinks
        .iter()
        .any(|s| matches!(s.config, SinkConfig::File(_)) && s.on_failure == OnFailure::Closed);
    let mut who: Vec<(String, &crate::limits::LimitSettings)> =
        vec![("[limits]".to_owned(), config.limits.settings(None))];
    for client in config.authority.clients() {
        let settings = config.limits.settings(Some(&client.name));
        if settings != config.limits.settings(None) {
            who.push((format!("client {}", client.name), settings));
        }
    }
    for (name, settings) in who {
        if settings.max_connections.is_none() {
            out.push(format!(
                "{name}: max_connections = 0 lets one client hold three quarters of \
                 server.max_connections, so clients on other listeners may be refused"
            ));
        }
        if settings.rate.is_none() && fail_closed_file {
            out.push(format!(
                "{name}: requests_per_second = 0 with a fail-closed file audit log \
                 (audit.on_failure = \"closed\"): a flood of requests can fill the log's disk, \
                 and then every client is refused"
            ));
        }
    }
    if config.body_read_timeout > LONG_BODY_TIMEOUT {
        out.push(format!(
            "server.body_read_timeout = {}: a client trickling request bodies holds its \
             connections that long",
            humantime::format_duration(config.body_read_timeout)
        ));
    }
    if let (Some(set), Ok((_, hard))) = (
        config.max_connections,
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE),
    ) {
        let allowed = crate::limits::connection_budget(hard, config.upstream.pool_max_idle);
        if set > allowed {
            out.push(format!(
                "server.max_connections = {set} exceeds what the descriptor limit \
                 (RLIMIT_NOFILE {hard}) allows ({allowed}): accepting fails before it is reached"
            ));
        }
    }
    let mut seen = Vec::new();
    for client in config.authority.clients() {
        let Some(policy) = config.authority.policy_for(&client.name) else {
            continue;
        };
        if seen.contains(&policy.name) || !policy.inspection {
            continue;
        }
        seen.push(policy.name.clone());
        let container = &policy.inspect.container;
        let build = &policy.inspect.build;
        if build.allow_uncapped_builds
            && (container.default_pids.is_some() || container.max_pids.is_some())
        {
            out.push(format!(
                "policy {}: allow_uncapped_builds: a classic build's RUN steps run without the \
                 pids limit containers get (a fork bomb in a Dockerfile is not stopped; cap it \
                 on the daemon's side with dockerd --cgroup-parent)",
                policy.name
            ));
        }
    }
    out
}
