//! Guardrails: a policy that opens an operation able to exfiltrate data or escalate to the
//! host (archive, export, image save, exec, attach, opaque build tunnels, uninspected writes)
//! is refused at start unless it acknowledges that operation in `allow_dangerous`, so no one
//! opens it by accident with a wildcard such as `container.*`.

use super::rules::{Effect, Policy};
use crate::config::ConfigError;

/// Fails if an allow rule of `policy` reaches a dangerous operation that is neither
/// acknowledged nor unconditionally denied.
pub fn check(
    key: &str,
    policy: &Policy,
    catalogue: &[(&str, Option<&str>)],
) -> Result<(), ConfigError> {
    for rule in policy.rules.iter().filter(|r| r.effect == Effect::Allow) {
        for (operation, why) in catalogue {
            let Some(why) = why else { continue };
            // Path patterns apply to the operation `unknown`: they open it as much as naming it.
            let opened = rule
                .operations
                .iter()
                .any(|p| p.matches_operation(operation))
                || (*operation == crate::route::UNKNOWN && rule.has_paths());
            if !opened {
                continue;
            }
            let acknowledged = policy
                .allow_dangerous
                .iter()
                .any(|p| p.matches_operation(operation));
            let denied = policy.rules.iter().any(|r| {
                r.effect == Effect::Deny
                    && !r.is_conditional()
                    && r.operations.iter().any(|p| p.matches_operation(operation))
            });
            if !acknowledged && !denied {
                // Named by the rule's own entry (its line), else by the policy.
                let key = rule.key.as_deref().unwrap_or(key);
                return Err(ConfigError(format!(
                    "{key}: rule {:?} opens {operation}, which {why}; \
                     add it to allow_dangerous to open it on purpose, or deny it",
                    &*rule.name
                )));
            }
        }
    }
    Ok(())
}

/// Operations that can exfiltrate data or escalate to the host, and why.
pub const DANGEROUS: &[(&str, &str)] = &[
    ("container.archive.get", "reads files out of a container"),
    ("container.archive.head", "probes files inside a container"),
    ("container.archive.put", "writes files into a container"),
    ("container.export", "reads a container's whole filesystem"),
    (
        "container.copy",
        "reads files out of a container (legacy API)",
    ),
    (
        "container.commit",
        "turns a container's files into an image",
    ),
    (
        "container.attach",
        "writes to a container's stdin and reads its output",
    ),
    (
        "container.attach.websocket",
        "writes to a container's stdin and reads its output",
    ),
    (
        "container.update",
        "changes a running container's limits and restart policy",
    ),
    (
        "container.checkpoint.create",
        "dumps a container's memory to disk",
    ),
    (
        "container.checkpoint.delete",
        "is experimental and uninspected",
    ),
    (
        "volume.update",
        "changes cluster volumes without body inspection",
    ),
    ("exec.create", "runs commands inside a container"),
    ("exec.start", "runs commands inside a container"),
    ("image.save", "exports images, layers and all"),
    (
        "image.load",
        "loads arbitrary image content and retags silently",
    ),
    (
        "image.import",
        "imports an arbitrary root filesystem (or fetches a URL)",
    ),
    ("image.push", "sends images to a registry"),
    (
        "build.session",
        "opens an uninspected BuildKit tunnel (host network, secrets, SSH)",
    ),
    (
        "build.grpc",
        "opens an uninspected BuildKit tunnel (host network, secrets, SSH)",
    ),
    (
        "system.debug",
        "exposes the daemon's profiler and internal state",
    ),
    (
        "system.auth",
        "makes the daemon log in to a registry of the client's choosing",
    ),
    ("swarm.init", "changes the host's cluster membership"),
    (
        "swarm.join",
        "joins the host to a cluster of the client's choosing",
    ),
    ("swarm.leave", "changes the host's cluster membership"),
    ("swarm.update", "changes cluster settings and tokens"),
    ("swarm.unlock", "handles the swarm unlock key"),
    ("swarm.unlockkey", "reveals the swarm unlock key"),
    (
        "service.create",
        "runs containers on every node of a swarm (their spec is inspected, but a swarm reaches other hosts)",
    ),
    (
        "service.update",
        "changes services on every node of a swarm (their spec is inspected, but a swarm reaches other hosts)",
    ),
    ("secret.create", "writes swarm secrets"),
    ("secret.update", "writes swarm secrets"),
    ("config.create", "writes swarm configs"),
    ("config.update", "writes swarm configs"),
    ("node.update", "changes node roles and placement"),
    ("plugin.pull", "installs plugins, which run as root"),
    ("plugin.create", "installs plugins, which run as root"),
    ("plugin.upgrade", "replaces plugins, which run as root"),
    ("plugin.enable", "starts plugins, which run as root"),
    (
        "plugin.disable",
        "can remove an authorization or storage plugin",
    ),
    ("plugin.set", "changes plugin mounts, devices and arguments"),
    ("plugin.push", "sends plugins to a registry"),
    ("plugin.delete", "removes plugins"),
    (
        "unknown",
        "is a route sockwarden cannot classify or inspect",
    ),
];
