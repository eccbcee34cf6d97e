//! Built-in profiles: policies usable by name (`policy = "read-only"`) and as starting points
//! (`profile = "ci"` in a `[policy.NAME]` table). Their text lives in `config/profiles/`, so the
//! README, the examples and the binary show the same rules.

use super::rules::RawPolicy;
use crate::error::ConfigError;

/// The profile the built-in default (no config file) applies to its owner.
pub const BUILTIN_DEFAULT_PROFILE: &str = "read-only";

const PROFILES: [(&str, &str); 4] = [
    (
        "read-only",
        include_str!("../../config/profiles/read-only.toml"),
    ),
    (
        "watchtower",
        include_str!("../../config/profiles/watchtower.toml"),
    ),
    ("ci", include_str!("../../config/profiles/ci.toml")),
    (
        "allow-all",
        include_str!("../../config/profiles/allow-all.toml"),
    ),
];

/// The names of the built-in profiles.
pub fn profile_names() -> Vec<&'static str> {
    PROFILES.iter().map(|(name, _)| *name).collect()
}

/// The built-in profile `name`, parsed; `Ok(None)` if there is none by that name.
pub fn get(name: &str) -> Result<Option<RawPolicy>, ConfigError> {
    let Some((_, text)) = PROFILES.iter().find(|(n, _)| *n == name) else {
        return Ok(None);
    };
    toml::from_str(text)
        .map(Some)
        .map_err(|e| ConfigError(format!("built-in profile {name}: {}", e.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_parses() {
        for name in profile_names() {
            assert!(get(name).unwrap().is_some(), "{name}");
        }
        assert!(get("nope").unwrap().is_none());
    }

    #[test]
    fn every_profile_passes_its_own_guardrails() {
        let catalogue = crate::policy::catalogue();
        for name in profile_names() {
            let raw = get(name).unwrap().unwrap();
            super::super::engine::compile_policy(name, name, &raw, &catalogue)
                .unwrap_or_else(|e| panic!("profile {name}: {e}"));
        }
    }
}
