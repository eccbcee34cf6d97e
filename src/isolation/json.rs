//! Rewriting the JSON of a create body the way the daemon will read it: Go's `encoding/json`
//! matches a struct field to a key case-insensitively (`labels`, `LABELS` and `Labels` all set
//! `Labels`), so a member is found by folded name, and an object where two keys fold to the same
//! name (or a key is not ASCII, which Go may fold onto a known one: `Labelſ`) is refused rather
//! than guessed at. Only the members rewritten are rebuilt; every other value keeps its bytes.

use std::fmt;

use serde::ser::Serialize;
use serde_json::value::RawValue;

pub use crate::inspect::members::Members;

/// Why a body cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    /// Not JSON, or not an object where one belongs.
    Invalid(String),
    /// Two keys the daemon reads as the same field, or a key it may fold onto one.
    Ambiguous(String),
    /// The owner label is set by the client.
    Forged(String),
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonProblem::Invalid(why) | JsonProblem::Ambiguous(why) | JsonProblem::Forged(why) => {
                f.write_str(why)
            }
        }
    }
}

impl Members {
    /// A Go struct's object: ASCII keys, distinct after case folding. `where_` names it in
    /// messages (`the body`, `HostConfig`).
    pub fn parse_struct(bytes: &[u8], where_: &str) -> Result<Members, JsonProblem> {
        let members: Members = serde_json::from_slice(bytes)
            .map_err(|e| JsonProblem::Invalid(format!("{where_} is not a JSON object: {e}")))?;
        let mut seen: Vec<String> = Vec::with_capacity(members.0.len());
        for (key, _) in &members.0 {
            if !key.is_ascii() {
                return Err(JsonProblem::Ambiguous(format!(
                    "{where_}: the key {key:?} is not ASCII (the daemon may read it as another field)"
                )));
            }
            let folded = key.to_ascii_lowercase();
            if seen.contains(&folded) {
                return Err(JsonProblem::Ambiguous(format!(
                    "{where_}: {key:?} is given twice (the daemon reads keys without regard to case)"
                )));
            }
            seen.push(folded);
        }
        Ok(members)
    }

    /// A struct member's object (`null` or absent: an empty one).
    pub fn child(&self, name: &str, where_: &str) -> Result<Members, JsonProblem> {
        match self.get(name).map(|v| v.get().trim()) {
            None | Some("null") => Ok(Members(Vec::new())),
            Some(raw) => Members::parse_struct(raw.as_bytes(), where_),
        }
    }

    /// The member the daemon reads as field `name`.
    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.position(name).map(|i| &*self.0[i].1)
    }

    /// Sets field `name` to the object `value`.
    pub fn set_object(&mut self, name: &str, value: &Members) -> Result<(), JsonProblem> {
        self.set(name, to_raw(value)?);
        Ok(())
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The object as JSON.
    pub fn to_vec(&self) -> Result<Vec<u8>, JsonProblem> {
        serde_json::to_vec(self).map_err(|e| JsonProblem::Invalid(e.to_string()))
    }
}

/// Any serializable value as raw JSON.
pub fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, JsonProblem> {
    serde_json::to_string(value)
        .and_then(RawValue::from_string)
        .map_err(|e| JsonProblem::Invalid(e.to_string()))
}

/// A string member (`None`: absent, `null`); a value of another type is [`JsonProblem::Invalid`].
pub fn string(value: Option<&RawValue>, what: &str) -> Result<Option<String>, JsonProblem> {
    match value.map(|v| serde_json::from_str::<Option<String>>(v.get())) {
        None => Ok(None),
        Some(Ok(s)) => Ok(s),
        Some(Err(_)) => Err(JsonProblem::Invalid(format!("{what} is not a string"))),
    }
}

/// A list of strings (`None`/`null`: empty).
pub fn strings(value: Option<&RawValue>, what: &str) -> Result<Vec<String>, JsonProblem> {
    match value.map(|v| serde_json::from_str::<Option<Vec<String>>>(v.get())) {
        None => Ok(Vec::new()),
        Some(Ok(list)) => Ok(list.unwrap_or_default()),
        Some(Err(_)) => Err(JsonProblem::Invalid(format!(
            "{what} is not a list of strings"
        ))),
    }
}

/// A list of objects (`None`/`null`: empty), each a Go struct.
pub fn objects(value: Option<&RawValue>, what: &str) -> Result<Vec<Members>, JsonProblem> {
    let Some(raw) = value else {
        return Ok(Vec::new());
    };
    let list: Option<Vec<Box<RawValue>>> = serde_json::from_str(raw.get())
        .map_err(|_| JsonProblem::Invalid(format!("{what} is not a list")))?;
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, item)| Members::parse_struct(item.get().as_bytes(), &format!("{what}[{i}]")))
        .collect()
}

/// The entries of a Go map of strings (`map[string]string`: keys exact, in order; `None`/`null`:
/// empty).
pub fn string_map(
    value: Option<&RawValue>,
    what: &str,
) -> Result<Vec<(String, String)>, JsonProblem> {
    let Some(raw) = value else {
        return Ok(Vec::new());
    };
    if raw.get().trim() == "null" {
        return Ok(Vec::new());
    }
    let members: Members = serde_json::from_str(raw.get())
        .map_err(|_| JsonProblem::Invalid(format!("{what} is not an object")))?;
    members
        .0
        .into_iter()
        .map(|(k, v)| match serde_json::from_str::<String>(v.get()) {
            Ok(s) => Ok((k, s)),
            Err(_) => Err(JsonProblem::Invalid(format!("{what}.{k} is not a string"))),
        })
        .collect()
}

/// The keys of a Go map (`None`/`null`: none), exactly as given.
pub fn map_keys(value: Option<&RawValue>, what: &str) -> Result<Vec<String>, JsonProblem> {
    let Some(raw) = value else {
        return Ok(Vec::new());
    };
    if raw.get().trim() == "null" {
        return Ok(Vec::new());
    }
    let members: Members = serde_json::from_str(raw.get())
        .map_err(|_| JsonProblem::Invalid(format!("{what} is not an object")))?;
    Ok(members.0.into_iter().map(|(k, _)| k).collect())
}

/// `labels` (a `Labels` value: a map of strings, `null` or absent) with the owner label
/// `key=value` added; a label `key` the client set itself is [`JsonProblem::Forged`].
pub fn with_owner(
    labels: Option<&RawValue>,
    what: &str,
    key: &str,
    value: &str,
) -> Result<Box<RawValue>, JsonProblem> {
    let mut entries = string_map(labels, what)?;
    if entries.iter().any(|(k, _)| k == key) {
        return Err(JsonProblem::Forged(what.to_owned()));
    }
    entries.push((key.to_owned(), value.to_owned()));
    let mut out = Members(Vec::with_capacity(entries.len()));
    for (k, v) in entries {
        out.0.push((k, to_raw(&v)?));
    }
    to_raw(&out)
}

/// A create body (the top-level object of a container, volume or network create) with the
/// owner label written into its `Labels`: the new body. An empty body reads as `{}`.
pub fn label_body(body: &[u8], key: &str, value: &str) -> Result<Vec<u8>, JsonProblem> {
    let mut top = if body.iter().all(u8::is_ascii_whitespace) {
        Members(Vec::new())
    } else {
        Members::parse_struct(body, "the body")?
    };
    let labels = with_owner(top.get("Labels"), "Labels", key, value)?;
    top.set("Labels", labels);
    top.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sockwarden.owner";

    fn labelled(body: &str) -> Result<serde_json::Value, JsonProblem> {
        label_body(body.as_bytes(), KEY, "uid:1001")
            .map(|b| serde_json::from_slice(&b).expect("rewritten body is JSON"))
    }

    #[test]
    fn the_owner_label_is_written_where_the_daemon_reads_labels() {
        let v = labelled(r#"{"Image":"busybox","Labels":{"a":"1"}}"#).unwrap();
        assert_eq!(v["Labels"][KEY], "uid:1001");
        assert_eq!(v["Labels"]["a"], "1");
        assert_eq!(v["Image"], "busybox");
        // Go folds key case: `labels` and `LABELS` are the daemon's `Labels`, replaced.
        for key in ["labels", "LABELS", "lAbElS"] {
            let v = labelled(&format!(r#"{{"{key}":{{"b":"2"}},"Name":"x"}}"#)).unwrap();
            assert_eq!(v["Labels"][KEY], "uid:1001", "{key}");
            assert_eq!(v["Labels"]["b"], "2", "{key}");
            assert!(v.get(key).is_none() || key == "Labels", "{key} left behind");
            assert_eq!(v.as_object().unwrap().len(), 2, "{key}");
        }
        for body in ["", "{}", r#"{"Labels":null}"#, "  "] {
            let v = labelled(body).unwrap();
            assert_eq!(v["Labels"][KEY], "uid:1001", "{body:?}");
        }
    }

    #[test]
    fn other_values_keep_their_bytes() {
        let body = br#"{"Image":"busybox","Memory":12345678901234567890123,"Labels":{}}"#;
        let out = label_body(body, KEY, "uid:1").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("12345678901234567890123"), "{text}");
    }

    #[test]
    fn forged_owner_labels_are_refused() {
        for body in [
            r#"{"Labels":{"sockwarden.owner":"uid:2"}}"#,
            r#"{"labels":{"sockwarden.owner":"uid:1001"}}"#,
            r#"{"LABELS":{"x":"y","sockwarden.owner":""}}"#,
            r#"{"Labels":{"sockwarden.owner":"a","sockwarden.owner":"b"}}"#,
        ] {
            assert!(
                matches!(labelled(body), Err(JsonProblem::Forged(_))),
                "{body}"
            );
        }
        // Label keys are a Go map's: exact. Another spelling is another label.
        let v = labelled(r#"{"Labels":{"Sockwarden.Owner":"uid:2"}}"#).unwrap();
        assert_eq!(v["Labels"][KEY], "uid:1001");
    }

    #[test]
    fn ambiguous_bodies_are_refused() {
        for body in [
            r#"{"Labels":{"a":"1"},"labels":{"sockwarden.owner":"uid:2"}}"#,
            r#"{"Labels":{},"Labels":{}}"#,
            "{\"Label\u{17f}\":{\"sockwarden.owner\":\"uid:2\"}}",
        ] {
            assert!(
                matches!(labelled(body), Err(JsonProblem::Ambiguous(_))),
                "{body}"
            );
        }
        for body in [
            "[]",
            "\"x\"",
            r#"{"Labels":["a"]}"#,
            r#"{"Labels":{"a":1}}"#,
            "{",
        ] {
            assert!(
                matches!(labelled(body), Err(JsonProblem::Invalid(_))),
                "{body}"
            );
        }
    }
}
