//! Who may do what: named policies of allow/deny rules over named operations, default deny.
//!
//! A request is first classified into an operation (`container.create`, `system.events`, ...;
//! see `route`). Each policy is an ordered list of rules; a matching `deny` rule always wins
//! over a matching `allow`, and a request no rule allows is refused. Every decision names the
//! policy and the rule that made it, so a refusal can be explained and audited.

mod engine;
mod guardrails;
mod layer;
mod profiles;
mod rules;

pub use engine::{unmet_allow_rules, Authority, Decision, Reason, RequestFacts};
pub use layer::{authorize, AuthorizeLayer, Authorized};
pub use profiles::{profile_names, BUILTIN_DEFAULT_PROFILE};
pub use rules::{
    Effect, InspectRules, Mode, Pattern, Policy, RawPolicy, RawRule, Rule, UnmetCondition,
};

/// Every operation name with why it is dangerous, if it is: what rules and guardrails are
/// checked against.
pub fn catalogue() -> Vec<(&'static str, Option<&'static str>)> {
    crate::route::OPERATION_TABLE
        .iter()
        .map(|info| {
            let why = guardrails::DANGEROUS
                .iter()
                .find(|(n, _)| *n == info.name)
                .map(|(_, why)| *why)
                .or(info
                    .dangerous
                    .then_some("can exfiltrate data or escalate to the host"));
            (info.name, why)
        })
        .collect()
}

/// Compiles a stand-alone policy with the guardrails, as a configuration would.
#[cfg(test)]
pub(crate) fn compile_for_test(
    name: &str,
    raw: &RawPolicy,
) -> Result<Policy, crate::config::ConfigError> {
    engine::compile_policy(name, name, raw, &catalogue())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dangerous_entry_is_a_real_operation() {
        let names: Vec<&str> = crate::route::operation_names().collect();
        for (name, _) in guardrails::DANGEROUS {
            assert!(names.contains(name), "{name} is not an operation");
        }
    }
}
