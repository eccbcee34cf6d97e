//! Guardrails: a policy that opens an operation able to exfiltrate data or escalate to the
//! host (archive, export, image save, exec, attach, opaque build tunnels, uninspected writes)
//! is refused at start unless it acknowledges that operation in `allow_dangerous`, so no one
//! opens it by accident with a wildcard such as `container.*`.

use super::rules::{Effect, Policy};
use crate::error::ConfigError;

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
