//! Table-driven tests of the inspection module.

mod container_tests;
mod json_tests;
mod other_tests;
mod plugin_tests;
mod reach_tests;
mod service_tests;
mod table_tests;

use super::{Summary, Violation};

/// Expected outcome of one case: accepted, or refused naming `field` with `reason` containing
/// the given text.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect {
    Pass,
    Deny(&'static str, &'static str),
}

pub(super) use Expect::{Deny, Pass};

/// Query pairs as written in a table.
pub(super) type Pairs = Vec<(&'static str, &'static str)>;

/// Compares an outcome with the expectation; returns a description of the mismatch.
pub(super) fn mismatch(
    name: &str,
    got: &Result<Summary, Violation>,
    want: Expect,
) -> Option<String> {
    match (got, want) {
        (Ok(_), Pass) => None,
        (Err(v), Deny(field, reason)) if v.field == field && v.reason.contains(reason) => None,
        (Ok(_), Deny(field, reason)) => Some(format!(
            "{name}: accepted, expected refusal {field}: ...{reason}..."
        )),
        (Err(v), _) => Some(format!("{name}: got `{v}`, expected {want:?}")),
    }
}

/// Runs a table and fails listing every mismatch.
pub(super) fn assert_table(results: Vec<(String, Result<Summary, Violation>, Expect)>) {
    let n = results.len();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, got, want)| mismatch(name, got, *want))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
