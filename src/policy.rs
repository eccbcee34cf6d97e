//! Who may do what: named policies of allow/deny rules over named operations, default deny.
//!
//! A request is first classified into an operation (`container.create`, `system.events`, ...;
//! see `route`). Each policy is an ordered list of rules; a matching `deny` rule always wins
//! over a matching `allow`, and a request no rule allows is refused. Every decision names the
//! policy and the rule that made it, so a refusal can be explained and audited.

mod engine;
mod guardrails;
pub mod layer;
mod profiles;
pub mod rules;

pub use engine::{unmet_allow_rules, Authority, Decision, Reason, DEFAULT_OWNER_LABEL};
pub use profiles::{profile_names, BUILTIN_DEFAULT_PROFILE};
pub use rules::{
    Effect, InspectRules, Isolation, Mode, Pattern, Policy, RawPolicy, RawRule, RequestFacts, Rule,
    UnmetCondition,
};

/// Every operation name with why it is dangerous, if it is (from the operation table): what
/// rules and guardrails are checked against.
pub fn catalogue() -> Vec<(&'static str, Option<&'static str>)> {
    crate::route::OPERATION_TABLE
        .iter()
        .map(|info| (info.name, info.danger))
        .collect()
}

/// Compiles a stand-alone policy with the guardrails, as a configuration would.
#[cfg(test)]
pub(crate) fn compile_for_test(
    name: &str,
    raw: &RawPolicy,
) -> Result<Policy, crate::error::ConfigError> {
    engine::compile_policy(name, name, raw, &catalogue())
}
