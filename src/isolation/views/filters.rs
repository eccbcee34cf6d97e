//! The `filters` query parameter, read exactly as the daemon's `filters.FromJSON` reads it,
//! checked, scoped to a tenant and written back in one canonical form.
//!
//! The daemon accepts two JSON shapes: `{"key":{"value":true}}` (`map[string]map[string]bool`,
//! tried first) and the legacy `{"key":["value"]}` (`map[string][]string`). Within one key the
//! values are a set (the bools do not matter: `{"label":{"a":false}}` still filters on `a`);
//! a repeated JSON key keeps its last value (Go's decoder); `null` reads as empty. Anything
//! else is refused with the daemon's own 400 ("invalid filter"), never forwarded unscoped.
//! Because the daemon then sees only what [`Filters::to_json`] writes, the reading here is the
//! daemon's reading: no second interpretation of the client's bytes remains.
//!
//! Scoping relies on the daemon's `label` semantics: every `label` value must match (unlike
//! every other key, whose values are ORed), so an added `label=OWNER=TENANT` can only narrow
//! whatever else the client asked for. Client filters that name the owner label at all are
//! refused ([`Filters::names_owner_label`]): they could only narrow, but a tenant has no use
//! for them and refusing keeps every spelling (`label!=`, case variants, a bare key) out.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parsed `filters` value: each key with its set of values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeMap<String, ()>>,
}

/// Why a `filters` value was refused (the daemon's 400 "invalid filter").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFilter;

impl std::fmt::Display for InvalidFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid filter")
    }
}

impl Filters {
    /// Reads `raw` as `filters.FromJSON` does: empty is no filter.
    pub fn parse(raw: &str) -> Result<Filters, InvalidFilter> {
        if raw.is_empty() {
            return Ok(Filters::default());
        }
        // serde_json keeps the last of repeated keys, as Go's decoder does.
        let value: Value = serde_json::from_str(raw).map_err(|_| InvalidFilter)?;
        let top = match value {
            Value::Null => return Ok(Filters::default()),
            Value::Object(map) => map,
            _ => return Err(InvalidFilter),
        };
        // First shape: map[string]map[string]bool.
        let modern = top
            .iter()
            .try_fold(Filters::default(), |mut f, (key, inner)| {
                let set = f.fields.entry(key.clone()).or_default();
                match inner {
                    Value::Null => {}
                    Value::Object(values) => {
                        for (v, b) in values {
                            // Go reads `null` into a bool as "leave it": no error.
                            if !matches!(b, Value::Bool(_) | Value::Null) {
                                return Err(InvalidFilter);
                            }
                            set.insert(v.clone(), ());
                        }
                    }
                    _ => return Err(InvalidFilter),
                }
                Ok(f)
            });
        if let Ok(filters) = modern {
            return Ok(filters);
        }
        // Legacy shape: map[string][]string; the decoder left the new map untouched on
        // error, and the legacy one is decoded afresh.
        let mut filters = Filters::default();
        for (key, inner) in &top {
            let set = filters.fields.entry(key.clone()).or_default();
            match inner {
                // A nil slice: the key is there with no values... and the daemon's
                // deprecatedArgs skips it (no values, no key).
                Value::Null => {}
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::String(s) => {
                                set.insert(s.clone(), ());
                            }
                            // Go decodes `null` into a string as "".
                            Value::Null => {
                                set.insert(String::new(), ());
                            }
                            _ => return Err(InvalidFilter),
                        }
                    }
                }
                _ => return Err(InvalidFilter),
            }
        }
        // deprecatedArgs builds the map only from values: keys without values vanish.
        filters.fields.retain(|_, set| !set.is_empty());
        Ok(filters)
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.fields
            .get(key)
            .into_iter()
            .flat_map(|set| set.keys().map(String::as_str))
    }

    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Whether `key` is present (even without values).
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// Adds `value` to the set of `key`.
    pub fn add(&mut self, key: &str, value: &str) {
        self.fields
            .entry(key.to_owned())
            .or_default()
            .insert(value.to_owned(), ());
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The first `label`-like filter value (`label`, `label!`, in any case) that names the
    /// label key `owner` (compared case-insensitively, surrounding blanks ignored), as
    /// `key=value` for the refusal.
    pub fn names_owner_label(&self, owner: &str) -> Option<String> {
        self.fields
            .iter()
            .filter(|(key, _)| {
                let key = key.trim().to_ascii_lowercase();
                key == "label" || key == "label!"
            })
            .flat_map(|(key, set)| set.keys().map(move |v| (key, v)))
            .find(|(_, value)| {
                let name = value.split_once('=').map_or(value.as_str(), |(k, _)| k);
                name.trim().eq_ignore_ascii_case(owner.trim())
            })
            .map(|(key, value)| format!("{key}={value}"))
    }

    /// The canonical JSON (`{"key":{"value":true}}`), or `None` when empty (the parameter is
    /// then left out).
    pub fn to_json(&self) -> Option<String> {
        if self.fields.is_empty() {
            return None;
        }
        // Written directly (this runs on every isolated list): keys in order, strings escaped
        // by serde_json.
        let mut out = String::with_capacity(64);
        out.push('{');
        for (i, (key, set)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, key);
            out.push_str(":{");
            for (j, value) in set.keys().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, value);
                out.push_str(":true");
            }
            out.push('}');
        }
        out.push('}');
        Some(out)
    }
}

fn push_json_string(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a str cannot fail; an empty string keeps the JSON well-formed.
        Err(_) => out.push_str("\"\""),
    }
}

/// Go's `url.QueryEscape`: unreserved bytes stay, a space becomes `+`, the rest `%XX`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(f: &Filters, key: &str) -> Vec<String> {
        f.get(key).map(str::to_owned).collect()
    }

    #[test]
    fn both_json_shapes_read_as_the_daemon_reads_them() {
        let modern = Filters::parse(r#"{"label":{"a=1":true,"b":false},"name":{"web":true}}"#)
            .expect("modern");
        assert_eq!(values(&modern, "label"), ["a=1", "b"]);
        assert_eq!(values(&modern, "name"), ["web"]);
        let legacy = Filters::parse(r#"{"label":["a=1","b"],"name":["web"]}"#).expect("legacy");
        assert_eq!(legacy, modern);
        // Empty and null: no filter at all.
        assert!(Filters::parse("").expect("empty").is_empty());
        assert!(Filters::parse("null").expect("null").is_empty());
        assert!(Filters::parse("{}").expect("{}").is_empty());
        // A null set keeps the key (modern); legacy keys without values vanish.
        assert!(Filters::parse(r#"{"dangling":null}"#)
            .expect("null set")
            .contains("dangling"));
        assert!(!Filters::parse(r#"{"dangling":[]}"#)
            .expect("empty list")
            .contains("dangling"));
        // Repeated keys: the last wins, as in Go's decoder.
        let repeated = Filters::parse(r#"{"label":{"a":true},"label":{"b":true}}"#).expect("rep");
        assert_eq!(values(&repeated, "label"), ["b"]);
        // A legacy null string element is "".
        assert_eq!(
            values(&Filters::parse(r#"{"name":[null]}"#).expect("null"), "name"),
            [""]
        );
    }

    #[test]
    fn malformed_filters_are_refused_not_guessed() {
        for raw in [
            "x",
            "[]",
            "\"label\"",
            "1",
            r#"{"label":"a"}"#,
            r#"{"label":{"a":"true"}}"#,
            r#"{"label":[1]}"#,
            r#"{"label":{"a":true},"name":["x"]}"#,
            r#"{"label":{"a":true}} x"#,
            r#"{"label":{"a":true}"#,
            r#"{"label":[["a"]]}"#,
        ] {
            assert_eq!(Filters::parse(raw), Err(InvalidFilter), "{raw}");
        }
    }

    #[test]
    fn owner_label_filters_are_found_in_every_spelling() {
        let owner = "sockwarden.owner";
        for raw in [
            r#"{"label":{"sockwarden.owner":true}}"#,
            r#"{"label":{"sockwarden.owner=uid:1":true}}"#,
            r#"{"label":["x=1","sockwarden.owner=uid:2"]}"#,
            r#"{"label!":{"sockwarden.owner":true}}"#,
            r#"{"label!":{"sockwarden.owner=uid:1":true}}"#,
            r#"{"LABEL":{"Sockwarden.Owner=uid:1":true}}"#,
            r#"{"label":{" sockwarden.owner =uid:1":true}}"#,
        ] {
            let f = Filters::parse(raw).expect(raw);
            assert!(f.names_owner_label(owner).is_some(), "{raw}");
        }
        for raw in [
            r#"{"label":{"sockwarden.owners=x":true}}"#,
            r#"{"label":{"other=sockwarden.owner":true}}"#,
            r#"{"name":{"sockwarden.owner":true}}"#,
        ] {
            let f = Filters::parse(raw).expect(raw);
            assert_eq!(f.names_owner_label(owner), None, "{raw}");
        }
    }

    #[test]
    fn canonical_json_round_trips_and_scopes() {
        let mut f =
            Filters::parse(r#"{"status":["running","exited"],"label":["a=1"]}"#).expect("parse");
        f.add("label", "sockwarden.owner=uid:1001");
        let json = f.to_json().expect("json");
        assert_eq!(
            json,
            r#"{"label":{"a=1":true,"sockwarden.owner=uid:1001":true},"status":{"exited":true,"running":true}}"#
        );
        assert_eq!(Filters::parse(&json).expect("again"), f);
        assert_eq!(Filters::default().to_json(), None);
        assert_eq!(query_escape("{\"a b\":1}&"), "%7B%22a+b%22%3A1%7D%26");
    }
}
