//! Warnings `sockwarden check` gives about a valid configuration that invites one client to
//! exhaust what every client shares (descriptors, memory, the audit log's disk, the host's
//! processes through an uncapped build), or lets builds escape the rules (BuildKit's unlimited
//! RUN steps).

use std::time::Duration;

use super::Config;

/// Longest `server.body_read_timeout` `sockwarden check` accepts without a warning.
const LONG_BODY_TIMEOUT: Duration = Duration::from_secs(600);

/// What in `config` lets one client exhaust what every client shares (descriptors, memory,
/// the audit log's disk, processes: a policy that caps pids and allows builds without a usable
/// `[upstream] build_cgroup`), or lets a build escape the rules (`allow_buildkit`), for
/// `sockwarden check` to warn about: each a sentence naming the setting and the risk. Empty
/// when nothing does.
/// `fs`: whether this machine may be looked at (`check` without `--no-fs`): then a
/// `build_cgroup` is looked for in its cgroup mounts, as `serve` would (for the cgroup version
/// the mounts suggest: the daemon's is not asked); without, only an explicit `"off"` is said.
pub fn exhaustion_warnings(config: &Config, fs: bool) -> Vec<String> {
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
        // Whether a plain classic build (`POST /build`) is allowed to this client.
        let method = http::Method::POST;
        let facts = crate::policy::RequestFacts {
            operation: "image.build",
            method: &method,
            path: "/build",
            query: &[],
        };
        let builds = config.authority.decide(Some(&client.name), &facts).allowed;
        if builds && build.allow_buildkit {
            out.push(format!(
                "policy {}: allow_buildkit: a BuildKit build's RUN steps get none of the \
                 policy's container limits (its Dockerfile is read from its session and checked \
                 as a classic build's is)",
                policy.name
            ));
        }
        if !builds || crate::inspect::build_pids(container).is_none() {
            continue;
        }
        let Some(why) = build_cgroup_problem(&config.upstream.build_cgroup, fs) else {
            continue;
        };
        out.push(if build.allow_uncapped_builds {
            format!(
                "policy {}: allow_uncapped_builds: {why}, so a classic build's RUN steps run \
                 without the pids limit containers get (a fork bomb in a Dockerfile is not \
                 stopped); set build_cgroup = \"auto\" or a cgroup directory (sockwarden as \
                 root on the daemon's host, daemon with the cgroupfs driver)",
                policy.name
            )
        } else {
            format!(
                "policy {}: caps pids and allows image.build, and {why}: classic builds are \
                 refused (set [upstream] build_cgroup = \"auto\" or a cgroup directory \
                 sockwarden can create; allow_uncapped_builds = true would let them run without \
                 a pids limit: unsafe)",
                policy.name
            )
        });
    }
    out
}

/// Why classic builds would get no build cgroup under `setting`, as far as can be told
/// without the daemon: `"off"` always; with `fs`, a configured directory not in a hierarchy
/// with the pids controller, or (for `"auto"`) none found, not root, or read-only. `None`:
/// nothing known against it.
fn build_cgroup_problem(setting: &crate::buildcgroup::Setting, fs: bool) -> Option<String> {
    use crate::buildcgroup::{check_writable, detect, locate, Setting};
    if *setting == Setting::Off {
        return Some("[upstream] build_cgroup = \"off\"".to_owned());
    }
    if !fs {
        return None;
    }
    let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(m) => m,
        Err(e) => return Some(format!("/proc/self/mountinfo: {e}")),
    };
    let found = match setting {
        Setting::Dir(dir) => locate(dir, &mountinfo)
            .and_then(|_| check_writable(dir, false))
            .map_err(|e| format!("upstream.build_cgroup: {e}")),
        _ => detect(&mountinfo, None)
            .and_then(|dir| {
                locate(&dir, &mountinfo)?;
                check_writable(&dir, true)
            })
            .map_err(|e| format!("build_cgroup = \"auto\" finds no build cgroup: {e}")),
    };
    found.err()
}
