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

use std::fmt;

/// Maximum nesting depth of arrays and objects. Docker bodies nest at most ~6 levels.
pub const MAX_DEPTH: usize = 64;

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number exactly as written (already checked against the JSON grammar).
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Object),
}

impl Value {
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

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// A JSON object: entries in document order, keys decoded (escapes resolved), no two keys
/// exactly equal (the parser refuses exact duplicates).
#[derive(Debug, Clone, Default)]
pub struct Object {
    entries: Vec<(String, Value)>,
    /// The outcome of the struct check, computed on the first field lookup: an inspector looks
    /// up dozens of fields of the same object, and the check must not run each time.
    struct_check: std::cell::OnceCell<Result<(), StructError>>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
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

impl Object {
    /// All entries in document order.
    pub fn entries(&self) -> &[(String, Value)] {
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
    pub fn map_entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Views the object as a Go struct: refuses any non-ASCII key (Go folds `ſ`/`K` into field
    /// names) and any two keys equal after ASCII case folding (Go would merge or overwrite).
    pub fn as_struct(&self) -> Result<Struct<'_>, StructError> {
        self.struct_check
            .get_or_init(|| self.check_struct())
            .clone()
            .map(|()| Struct { obj: self })
    }

    fn check_struct(&self) -> Result<(), StructError> {
        for (k, _) in &self.entries {
            if !k.is_ascii() {
                return Err(StructError {
                    key: k.clone(),
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
    pub fn field(&self, name: &str) -> Result<Option<&Value>, StructError> {
        Ok(self.as_struct()?.get(name))
    }

    /// Keys that match none of `known` (ASCII case-insensitively), in document order.
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
    obj: &'v Object,
}

impl<'v> Struct<'v> {
    /// The value of field `name` (ASCII case-insensitive); `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&'v Value> {
        self.obj
            .entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// All entries in document order (including `null` values).
    pub fn entries(&self) -> &'v [(String, Value)] {
        &self.obj.entries
    }

    pub fn object(&self) -> &'v Object {
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
// Parser

/// Parses one JSON document. Only JSON whitespace (space, tab, CR, LF) may surround the value.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    let mut p = Parser { b: input, i: 0 };
    p.skip_ws();
    if p.i >= p.b.len() {
        return Err(JsonError {
            path: String::new(),
            message: "empty body (expected a JSON value)".into(),
        });
    }
    let v = p.value(1).map_err(PErr::into_json)?;
    p.skip_ws();
    if p.i < p.b.len() {
        return Err(JsonError {
            path: String::new(),
            message: format!(
                "trailing data after the JSON value at byte {} (the 20.10 daemon ignores it; refused)",
                p.i
            ),
        });
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

enum OwnedSeg {
    Key(String),
    Index(usize),
}

struct PErr {
    /// Innermost segment first.
    segs: Vec<OwnedSeg>,
    message: String,
}

impl PErr {
    fn new(message: String) -> PErr {
        PErr {
            segs: Vec::new(),
            message,
        }
    }

    fn into_json(self) -> JsonError {
        let mut path = String::new();
        for seg in self.segs.iter().rev() {
            match seg {
                OwnedSeg::Key(k) => push_key(&mut path, k),
                OwnedSeg::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        JsonError {
            path,
            message: self.message,
        }
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn err_here(&self, what: &str) -> PErr {
        match self.peek() {
            None => PErr::new(format!("unexpected end of input ({what})")),
            Some(c) if c.is_ascii_graphic() => PErr::new(format!(
                "invalid character '{}' at byte {} ({what})",
                c as char, self.i
            )),
            Some(c) => PErr::new(format!(
                "invalid byte 0x{c:02x} at byte {} ({what})",
                self.i
            )),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, PErr> {
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.err_here("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, PErr> {
        let end = self.i + word.len();
        if self.b.get(self.i..end) == Some(word) {
            self.i = end;
            Ok(v)
        } else {
            Err(self.err_here("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Value, PErr> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(PErr::new(format!(
                        "invalid number at byte {start}: leading zeros are not allowed"
                    )));
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            _ => return Err(self.err_here("invalid number: expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err_here("invalid number: expected a digit after '.'"));
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
        }
        if matches!(self.peek(), Some(b'e') | Some(b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err_here("invalid number: expected an exponent digit"));
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
        }
        let text = self.b.get(start..self.i).unwrap_or_default();
        // The grammar above only admits ASCII.
        let text = String::from_utf8_lossy(text).into_owned();
        Ok(Value::Number(text))
    }

    fn hex4(&mut self) -> Result<u32, PErr> {
        let mut v: u32 = 0;
        for _ in 0..4 {
            let c = self.peek();
            let d = match c {
                Some(c @ b'0'..=b'9') => u32::from(c - b'0'),
                Some(c @ b'a'..=b'f') => u32::from(c - b'a' + 10),
                Some(c @ b'A'..=b'F') => u32::from(c - b'A' + 10),
                _ => return Err(self.err_here("invalid \\u escape: expected 4 hex digits")),
            };
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    /// Reads a string starting at the opening quote.
    fn string(&mut self) -> Result<String, PErr> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes.
        while let Some(c) = self.peek() {
            if c == b'"' {
                let raw = self.b.get(start..self.i).unwrap_or_default();
                let s = std::str::from_utf8(raw).map_err(|e| {
                    PErr::new(format!(
                        "invalid UTF-8 in string at byte {}",
                        start + e.valid_up_to()
                    ))
                })?;
                self.i += 1;
                return Ok(s.to_string());
            }
            if c == b'\\' {
                break;
            }
            if c < 0x20 {
                return Err(self.err_here("control character in string"));
            }
            self.i += 1;
        }
        // Slow path with escapes.
        let mut buf: Vec<u8> = self.b.get(start..self.i).unwrap_or_default().to_vec();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_here("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(buf).map_err(|e| {
                        PErr::new(format!(
                            "invalid UTF-8 in string starting at byte {} (offset {} of the decoded text)",
                            start,
                            e.utf8_error().valid_up_to()
                        ))
                    });
                }
                b'\\' => {
                    self.i += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err_here("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => buf.push(b'/'),
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0c),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let at = self.i;
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(PErr::new(format!(
                                        "lone surrogate \\u{hi:04X} in string at byte {at}"
                                    )));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(PErr::new(format!(
                                        "lone surrogate \\u{hi:04X} in string at byte {at}"
                                    )));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(PErr::new(format!(
                                    "lone surrogate \\u{hi:04X} in string at byte {at}"
                                )));
                            } else {
                                hi
                            };
                            let ch = char::from_u32(cp).ok_or_else(|| {
                                PErr::new(format!("invalid \\u escape at byte {at}"))
                            })?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err_here("invalid escape"));
                        }
                    }
                }
                c if c < 0x20 => return Err(self.err_here("control character in string")),
                c => {
                    buf.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, PErr> {
        if depth > MAX_DEPTH {
            return Err(PErr::new(format!(
                "nesting deeper than {MAX_DEPTH} levels is refused"
            )));
        }
        self.i += 1; // [
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            let idx = items.len();
            let v = self.value(depth + 1).map_err(|mut e| {
                e.segs.push(OwnedSeg::Index(idx));
                e
            })?;
            items.push(v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err_here("expected ',' or ']' in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, PErr> {
        if depth > MAX_DEPTH {
            return Err(PErr::new(format!(
                "nesting deeper than {MAX_DEPTH} levels is refused"
            )));
        }
        self.i += 1; // {
        let mut entries: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(Object {
                entries,
                struct_check: std::cell::OnceCell::new(),
            }));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err_here("expected a string object key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err_here("expected ':' after object key"));
            }
            self.i += 1;
            self.skip_ws();
            let v = match self.value(depth + 1) {
                Ok(v) => v,
                Err(mut e) => {
                    e.segs.push(OwnedSeg::Key(key));
                    return Err(e);
                }
            };
            entries.push((key, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    check_exact_dups(&entries)?;
                    return Ok(Value::Object(Object {
                        entries,
                        struct_check: std::cell::OnceCell::new(),
                    }));
                }
                _ => return Err(self.err_here("expected ',' or '}' in object")),
            }
        }
    }
}

fn check_exact_dups(entries: &[(String, Value)]) -> Result<(), PErr> {
    let dup = if entries.len() <= 24 {
        let mut found = None;
        'outer: for (i, (a, _)) in entries.iter().enumerate() {
            for (b, _) in entries.iter().skip(i + 1) {
                if a == b {
                    found = Some(a.as_str());
                    break 'outer;
                }
            }
        }
        found
    } else {
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.windows(2).find_map(|w| match w {
            [a, b] if a == b => Some(*a),
            _ => None,
        })
    };
    match dup {
        Some(k) => Err(PErr {
            segs: vec![OwnedSeg::Key(k.to_string())],
            message: format!(
                "duplicate key {} (Go keeps the last value and merges objects; refused)",
                quote(k)
            ),
        }),
        None => Ok(()),
    }
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
