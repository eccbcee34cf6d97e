//! A strict JSON reader that sees a body the way Docker's Go `encoding/json` does, and refuses
//! every construct where Go's reading is ambiguous or lenient.
//!
//! What Go does and what we do instead:
//!
//! | Go `encoding/json` (daemon 20.10)                          | here                                   |
//! |------------------------------------------------------------|----------------------------------------|
//! | struct fields match keys case-insensitively, with Unicode  | [`Struct`] matches ASCII-case-insensitively |
//! | folding (`ſ` = `s`, `K` = `k`)                             | and refuses any non-ASCII key           |
//! | duplicate keys: last scalar wins, objects merge            | exact duplicates refused everywhere; folded |
//! |                                                            | duplicates refused in struct objects     |
//! | invalid UTF-8 / lone surrogates become U+FFFD              | refused                                 |
//! | data after the first value ignored (20.10)                 | refused (only whitespace may follow)    |
//! | `null` leaves the zero value                               | [`Struct::get`] reports `null` as absent |
//!
//! Numbers keep their original text ([`Value::Number`]) so that callers can apply Go's integer
//! rules (`strconv.ParseInt`: no fraction, no exponent, range of the Go type).
//!
//! Objects keep their entries in document order with the decoded keys. Whether an object is a Go
//! struct (keys fold) or a Go map (keys exact) is decided by the caller: [`Object::as_struct`]
//! for the former, [`Object::map_entries`] for the latter.
//!
//! The tree borrows from the input: numbers, keys and strings without escapes are slices of it
//! ([`Str`] owns its text only when escapes were decoded). The key checks run once per object
//! while parsing (see `check_keys`); their exact, message-producing forms only run when a
//! quick check finds a possible duplicate or a non-ASCII key.

pub(crate) mod parser;

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// Maximum nesting depth of arrays and objects. Docker bodies nest at most ~6 levels.
pub const MAX_DEPTH: usize = 64;

/// Decoded string text (a key or a string value): borrowed from the input when the string has
/// no escapes, owned when escapes had to be resolved.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str<'a>(Cow<'a, str>);

impl<'a> Str<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Str<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Str<'a> {
        Str(Cow::Borrowed(s))
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str(Cow::Owned(s))
    }
}

impl PartialEq<str> for Str<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Str<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

/// A parsed JSON value, borrowing from the parsed input where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// The number exactly as written (already checked against the JSON grammar).
    Number(&'a str),
    String(Str<'a>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

impl<'a> Value<'a> {
    /// A short name of the JSON type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// A JSON object: entries in document order, keys decoded (escapes resolved), no two keys
/// exactly equal (the parser refuses exact duplicates).
#[derive(Debug, Clone)]
pub struct Object<'a> {
    entries: Vec<(Str<'a>, Value<'a>)>,
    /// Set by the parser when every key is ASCII and no two keys are equal after ASCII case
    /// folding: the object is a valid Go struct and [`Object::as_struct`] needs no check. When
    /// false, the full check runs (and names the offending key).
    struct_ok: bool,
}

impl Default for Object<'_> {
    fn default() -> Self {
        Object {
            entries: Vec::new(),
            struct_ok: true,
        }
    }
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// Why an object cannot be read as a Go struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructError {
    /// The offending key, as written (decoded).
    pub key: String,
    pub message: String,
}

impl<'a> Object<'a> {
    /// All entries in document order.
    pub fn entries(&self) -> &[(Str<'a>, Value<'a>)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries of a Go map (`map[string]T`): keys are exact and case-sensitive; non-ASCII keys are
    /// allowed. Exact duplicates were already refused by the parser.
    pub fn map_entries(&self) -> &[(Str<'a>, Value<'a>)] {
        &self.entries
    }

    /// Views the object as a Go struct: refuses any non-ASCII key (Go folds `ſ`/`K` into field
    /// names) and any two keys equal after ASCII case folding (Go would merge or overwrite).
    pub fn as_struct(&self) -> Result<Struct<'_>, StructError> {
        if !self.struct_ok {
            self.check_struct()?;
        }
        Ok(Struct { obj: self })
    }

    /// The full struct check (only run when the parser's quick check did not clear the object).
    fn check_struct(&self) -> Result<(), StructError> {
        for (k, _) in &self.entries {
            if !k.is_ascii() {
                return Err(StructError {
                    key: k.to_string(),
                    message: format!(
                        "non-ASCII field name {} is refused (Go matches it to a field by Unicode case folding)",
                        quote(k)
                    ),
                });
            }
        }
        let n = self.entries.len();
        if n <= 24 {
            for (i, (a, _)) in self.entries.iter().enumerate() {
                for (b, _) in self.entries.iter().skip(i + 1) {
                    if a.eq_ignore_ascii_case(b) {
                        return Err(dup_error(a, b));
                    }
                }
            }
        } else {
            let mut keys: Vec<(String, &str)> = self
                .entries
                .iter()
                .map(|(k, _)| (k.to_ascii_lowercase(), k.as_str()))
                .collect();
            keys.sort();
            for w in keys.windows(2) {
                if let [(la, a), (lb, b)] = w {
                    if la == lb {
                        return Err(dup_error(a, b));
                    }
                }
            }
        }
        Ok(())
    }

    /// Go-struct lookup of one field (ASCII case-insensitive), `null` reported as absent. Fails
    /// when the object is not a valid struct (see [`Object::as_struct`]).
    pub fn field(&self, name: &str) -> Result<Option<&Value<'a>>, StructError> {
        self.as_struct()?;
        Ok(Struct::lookup(&self.entries, name))
    }

    /// Keys that match none of `known` (ASCII case-insensitively), in document order. (The
    /// inspectors' field tables refuse unknown keys themselves; only the JSON tests use it.)
    #[cfg(test)]
    pub fn unknown_fields(&self, known: &[&str]) -> Vec<&str> {
        self.entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
            .collect()
    }
}

fn dup_error(a: &str, b: &str) -> StructError {
    StructError {
        key: b.to_string(),
        message: if a == b {
            format!("duplicate field {}", quote(b))
        } else {
            format!(
                "duplicate field: {} and {} name the same field (Go matches keys case-insensitively)",
                quote(a),
                quote(b)
            )
        },
    }
}

/// An object validated as a Go struct (ASCII keys, unique after folding).
#[derive(Debug, Clone, Copy)]
pub struct Struct<'v> {
    obj: &'v Object<'v>,
}

impl<'v> Struct<'v> {
    fn lookup<'e, 'a>(entries: &'e [(Str<'a>, Value<'a>)], name: &str) -> Option<&'e Value<'a>> {
        entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// The value of field `name` (ASCII case-insensitive); `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&'v Value<'v>> {
        Self::lookup(&self.obj.entries, name)
    }

    /// All entries in document order (including `null` values).
    pub fn entries(&self) -> &'v [(Str<'v>, Value<'v>)] {
        &self.obj.entries
    }

    pub fn object(&self) -> &'v Object<'v> {
        self.obj
    }
}

/// A parse error, with the JSON path where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// JSON path such as `HostConfig.Binds[2]`; empty for the document root.
    pub path: String,
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(body): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

// ---------------------------------------------------------------------------------------------
// Paths

/// A JSON path for error messages, built on the stack without allocation (each segment borrows
/// its parent). Rendered only when an error is reported.
#[derive(Debug, Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    Root,
    /// A struct field (rendered `.Name`).
    Field(&'a str),
    /// A map key (rendered `.key` when it is a plain identifier, else `["key"]`).
    Key(&'a str),
    Index(usize),
    /// A query parameter (rendered `?name`); only meaningful at the root.
    Query(&'a str),
}

impl Path<'static> {
    /// The document root.
    pub const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    /// A query parameter (`?name`).
    pub fn query(name: &'static str) -> Path<'static> {
        Path {
            parent: None,
            seg: Seg::Query(name),
        }
    }
}

impl<'a> Path<'a> {
    /// A struct field below this path.
    pub fn field<'b>(&'b self, name: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Field(name),
        }
    }

    /// A map key below this path.
    pub fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    /// An array element below this path.
    pub fn index<'b>(&'b self, i: usize) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    /// The path as text, e.g. `HostConfig.Binds[2]`, `HostConfig.Sysctls["kernel.x"]`; the root
    /// renders as `(body)`.
    pub fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root => {}
                Seg::Query(q) => {
                    out.push('?');
                    out.push_str(q);
                }
                Seg::Field(f) => push_key(&mut out, f),
                Seg::Key(k) => push_key(&mut out, k),
                Seg::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        if out.is_empty() {
            out.push_str("(body)");
        }
        out
    }
}

fn push_key(out: &mut String, k: &str) {
    let plain = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(k);
    } else {
        out.push('[');
        out.push_str(&quote(k));
        out.push(']');
    }
}

/// `s` as a JSON string literal (for messages).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

// ---------------------------------------------------------------------------------------------
// Go integer semantics

/// The Go integer types that Docker's structs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoInt {
    Int64,
    Uint64,
    Uint32,
    Uint16,
}

impl GoInt {
    fn name(self) -> &'static str {
        match self {
            GoInt::Int64 => "int64",
            GoInt::Uint64 => "uint64",
            GoInt::Uint32 => "uint32",
            GoInt::Uint16 => "uint16",
        }
    }

    fn range(self) -> (i128, i128) {
        match self {
            GoInt::Int64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
            GoInt::Uint64 => (0, i128::from(u64::MAX)),
            GoInt::Uint32 => (0, i128::from(u32::MAX)),
            GoInt::Uint16 => (0, i128::from(u16::MAX)),
        }
    }
}

/// Parses JSON number text the way Go decodes it into an integer type: no fraction, no
/// exponent, within the type's range (`-0` is 0 for signed types and refused for unsigned ones,
/// like `strconv.ParseUint`). Returns the value widened to `i128`.
pub fn go_int(text: &str, ty: GoInt) -> Result<i128, String> {
    if text.contains(['.', 'e', 'E']) {
        return Err(format!(
            "number {text} is not an integer (Go cannot decode it into {})",
            ty.name()
        ));
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid integer {text}"));
    }
    if neg && ty != GoInt::Int64 {
        return Err(format!("negative number {text} for unsigned {}", ty.name()));
    }
    let (lo, hi) = ty.range();
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + i128::from(b - b'0');
        if v > hi + 1 {
            return Err(format!("number {text} overflows {}", ty.name()));
        }
    }
    let v = if neg { -v } else { v };
    if v < lo || v > hi {
        return Err(format!("number {text} overflows {}", ty.name()));
    }
    Ok(v)
}
