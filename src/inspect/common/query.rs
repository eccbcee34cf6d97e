//! Query parameters.

use crate::inspect::docker_json::quote;
use crate::inspect::Violation;

/// Go's `httputils.BoolValue`: false only for "", "0", "no", "false", "none" (trimmed,
/// case-insensitive).
pub fn go_bool(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    !matches!(t.as_str(), "" | "0" | "no" | "false" | "none")
}

/// Checks query keys: unknown keys refused (naming `unknown_setting` when a rule could allow
/// them), repeated keys refused except `list_keys`. Read values with [`first`] / [`all`].
pub(crate) fn check_query_keys(
    query: &[(String, String)],
    known: &[&'static str],
    list_keys: &[&str],
    unknown_setting: Option<&str>,
) -> Result<(), Violation> {
    for (k, _) in query {
        if !known.contains(&k.as_str()) {
            return Err(match unknown_setting {
                Some(setting) => qdeny_rule(k, "unknown query parameter", setting),
                None => qdeny(k, "unknown query parameter"),
            });
        }
    }
    check_query_repeats(query, list_keys)
}

/// Refuses repeated keys except `list_keys` (unknown keys pass).
pub(crate) fn check_query_repeats(
    query: &[(String, String)],
    list_keys: &[&str],
) -> Result<(), Violation> {
    for (i, (k, _)) in query.iter().enumerate() {
        if !list_keys.contains(&k.as_str()) && query.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
            return Err(Violation {
                field: format!("?{k}"),
                reason: "repeated query parameter refused (the daemon uses the first one)".into(),
                setting: None,
                value: None,
            });
        }
    }
    Ok(())
}

/// The first value of `key` (Go's `FormValue`).
pub(crate) fn first<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// All values of `key` (Go's `r.Form[key]`).
pub(crate) fn all<'q>(query: &'q [(String, String)], key: &str) -> Vec<&'q str> {
    query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(crate) fn qdeny(key: &str, reason: impl Into<String>) -> Violation {
    Violation {
        field: format!("?{key}"),
        reason: reason.into(),
        setting: None,
        value: None,
    }
}

pub(crate) fn qdeny_rule(key: &str, reason: impl AsRef<str>, setting: &str) -> Violation {
    Violation {
        field: format!("?{key}"),
        reason: format!("{} ({setting})", reason.as_ref()),
        setting: Some(setting.to_owned()),
        value: None,
    }
}

/// `strconv.ParseInt(s, 10, 64)`; the empty string is 0 (Go's `Int64ValueOrZero`). Invalid
/// text is refused (the daemon would silently use 0).
pub(crate) fn query_int(key: &str, v: &str) -> Result<i64, Violation> {
    if v.is_empty() {
        return Ok(0);
    }
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(qdeny(key, format!("{} is not an integer", quote(v))));
    }
    v.parse::<i64>()
        .map_err(|_| qdeny(key, format!("{} is out of range", quote(v))))
}
