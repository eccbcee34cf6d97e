//! Refusals and typed access to JSON values with Go's decoding rules (callers skip `null`
//! fields before calling these).

use crate::inspect::docker_json::{self, go_int, GoInt, Object, Path, Struct, Value};
use crate::inspect::Violation;

pub(crate) fn deny(p: &Path<'_>, reason: impl Into<String>) -> Violation {
    Violation {
        field: p.render(),
        reason: reason.into(),
        setting: None,
        value: None,
    }
}

/// A refusal that a rule setting would allow: the reason ends with `(setting)`.
pub(crate) fn deny_rule(p: &Path<'_>, reason: impl AsRef<str>, setting: &str) -> Violation {
    Violation {
        field: p.render(),
        reason: format!("{} ({setting})", reason.as_ref()),
        setting: Some(setting.to_owned()),
        value: None,
    }
}

// Typed access (Go decoding rules).

pub(crate) fn parse_body(body: &[u8]) -> Result<Value<'_>, Violation> {
    Ok(docker_json::parser::parse(body)?)
}

fn type_error(v: &Value, p: &Path<'_>, want: &str) -> Violation {
    deny(
        p,
        format!(
            "expected {want}, got {} (Go cannot decode it; the daemon answers 400)",
            v.kind()
        ),
    )
}

pub(crate) fn object<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v Object<'v>, Violation> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(type_error(v, p, "an object")),
    }
}

/// An object decoded into a Go struct.
pub(crate) fn strukt<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Struct<'v>, Violation> {
    object(v, p)?
        .as_struct()
        .map_err(|e| deny(&p.field(&e.key), e.message))
}

pub(crate) fn array<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v [Value<'v>], Violation> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(type_error(v, p, "an array")),
    }
}

pub(crate) fn boolean(v: &Value, p: &Path<'_>) -> Result<bool, Violation> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_error(v, p, "a boolean")),
    }
}

pub(crate) fn string<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v str, Violation> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(type_error(v, p, "a string")),
    }
}

pub(crate) fn int(v: &Value, p: &Path<'_>, ty: GoInt) -> Result<i128, Violation> {
    match v {
        Value::Number(n) => go_int(n, ty).map_err(|m| deny(p, m)),
        _ => Err(type_error(v, p, "an integer")),
    }
}

pub(crate) fn int64(v: &Value, p: &Path<'_>) -> Result<i64, Violation> {
    let n = int(v, p, GoInt::Int64)?;
    i64::try_from(n).map_err(|_| deny(p, "integer out of range"))
}

/// `[]string`: an array of strings (`null` elements are refused: Go would turn them into `""`).
pub(crate) fn str_list<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    let items = array(v, p)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match it {
            Value::String(s) => out.push(s.as_str()),
            Value::Null => {
                return Err(deny(
                    &p.index(i),
                    "null element refused (Go would decode it as an empty string)",
                ))
            }
            _ => return Err(type_error(it, &p.index(i), "a string")),
        }
    }
    Ok(out)
}

/// `strslice.StrSlice`: an array of strings, or a single string (accepted by the daemon).
pub(crate) fn str_slice<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(_) => str_list(v, p),
        _ => Err(type_error(v, p, "a string or an array of strings")),
    }
}

/// `map[string]string`: exact keys; `null` values refused.
pub(crate) fn str_map<'v>(
    v: &'v Value<'v>,
    p: &Path<'_>,
) -> Result<Vec<(&'v str, &'v str)>, Violation> {
    let o = object(v, p)?;
    let mut out = Vec::with_capacity(o.len());
    for (k, val) in o.map_entries() {
        match val {
            Value::String(s) => out.push((k.as_str(), s.as_str())),
            Value::Null => {
                return Err(deny(
                    &p.key(k),
                    "null value refused (Go would decode it as an empty string)",
                ))
            }
            _ => return Err(type_error(val, &p.key(k), "a string")),
        }
    }
    Ok(out)
}

/// `map[string]struct{}` (`Volumes`, `ExposedPorts`): values must be objects (contents ignored
/// by Go) or null.
pub(crate) fn set_keys<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    let o = object(v, p)?;
    let mut out = Vec::with_capacity(o.len());
    for (k, val) in o.map_entries() {
        match val {
            Value::Object(_) | Value::Null => out.push(k.as_str()),
            _ => return Err(type_error(val, &p.key(k), "an object")),
        }
    }
    Ok(out)
}

/// The canonical spelling of `key` among `table` (Go's case-insensitive struct field match).
pub(crate) fn canon(key: &str, table: &[&'static str]) -> Option<&'static str> {
    table.iter().copied().find(|n| n.eq_ignore_ascii_case(key))
}
