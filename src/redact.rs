//! What must never be shown: the one set of redaction rules, shared by the audit log (query
//! parameters, logged bodies) and by responses (`redact_env`: container and image inspect
//! results; the response layer is `redact::layer`). A value is replaced by `<redacted>`; names
//! (of variables, arguments, keys) stay, so a reader still sees what was set.

pub mod layer;

/// What replaces each value.
pub const REDACTED: &str = "<redacted>";

/// Whether a query parameter or document key names a secret or carries one (build args hold
/// tokens as often as not): its value becomes `<redacted>`.
pub fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "buildargs"
        || [
            "auth",
            "password",
            "passwd",
            "secret",
            "token",
            "credential",
        ]
        .iter()
        .any(|word| lower.contains(word))
}

/// A secret query parameter's value as it may be shown: `buildargs` keeps its keys (which
/// arguments were set) and loses its values; anything else is replaced whole.
pub fn query_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("buildargs") {
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(value) {
            for v in map.values_mut() {
                *v = serde_json::Value::String(REDACTED.into());
            }
            return serde_json::Value::Object(map).to_string();
        }
    }
    REDACTED.into()
}

/// Redacts a logged body in place: `Env` entries keep their names, build arguments and
/// anything that looks like a credential lose their values. Keys compare case-insensitively,
/// as the daemon reads them.
pub fn document(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower == "env" {
                    env_list(v);
                } else if lower == "buildargs" || secret_name(&lower) {
                    *v = serde_json::Value::String(REDACTED.into());
                } else {
                    document(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(document),
        _ => {}
    }
}

/// An `Env` list with its values replaced: `NAME=<redacted>` (a bare `NAME`, which sets no
/// value, stays as it is); anything that is not a string is replaced whole.
pub fn env_list(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                if let serde_json::Value::String(s) = item {
                    let name = s.split('=').next().unwrap_or_default();
                    *s = if s.contains('=') {
                        format!("{name}={REDACTED}")
                    } else {
                        name.to_owned()
                    };
                } else {
                    *item = serde_json::Value::String(REDACTED.into());
                }
            }
        }
        serde_json::Value::Null => {}
        other => *other = serde_json::Value::String(REDACTED.into()),
    }
}

/// Replaces the values of every `Env` list under `Config` and `ContainerConfig` (image inspect
/// carries both), keeping the variable names.
pub fn inspect_env(document: &mut serde_json::Value) {
    for section in ["Config", "ContainerConfig"] {
        if let Some(env) = document.get_mut(section).and_then(|c| c.get_mut("Env")) {
            env_list(env);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_names_stay() {
        let mut doc = serde_json::json!({
            "Id": "abc",
            "Config": {"Env": ["PATH=/bin", "DB_PASSWORD=hunter2", "EMPTY", "X=a=b"], "Labels": {"k": "v"}},
            "ContainerConfig": {"Env": ["TOKEN=t"]}
        });
        inspect_env(&mut doc);
        assert_eq!(
            doc["Config"]["Env"],
            serde_json::json!([
                "PATH=<redacted>",
                "DB_PASSWORD=<redacted>",
                // A bare name sets no value: nothing to hide (the audit log's rule, now the
                // only one).
                "EMPTY",
                "X=<redacted>"
            ])
        );
        assert_eq!(
            doc["ContainerConfig"]["Env"],
            serde_json::json!(["TOKEN=<redacted>"])
        );
        assert_eq!(doc["Config"]["Labels"]["k"], "v");
        assert!(!doc.to_string().contains("hunter2"));
    }
}
