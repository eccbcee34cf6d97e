//! The parser: one pass over the bytes, strings borrowed from the input where they have no
//! escapes, the key checks of each object run as it closes.

use super::{push_key, quote, JsonError, Object, Str, Value, MAX_DEPTH};

/// Parses one JSON document. Only JSON whitespace (space, tab, CR, LF) may surround the value.
/// Strings without escapes (and numbers) borrow from `input`.
pub fn parse(input: &[u8]) -> Result<Value<'_>, JsonError> {
    // A first guess at the number of values being read at once (a JSON value and its
    // separator take at least two bytes; Docker bodies average more than 16 per value).
    let guess = (input.len() / 32).min(1024);
    let mut p = Parser {
        b: input,
        text: std::str::from_utf8(input).ok(),
        i: 0,
        vals: Vec::with_capacity(guess),
        ents: Vec::with_capacity(guess),
        hashes: Vec::new(),
    };
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
    /// The whole input as text, when it is valid UTF-8. A string without escapes is then a
    /// slice of it (its delimiters are ASCII, so the slice is on character boundaries); when
    /// the input is not valid UTF-8, each string is validated on its own and the first invalid
    /// one is reported.
    text: Option<&'a str>,
    i: usize,
    /// Scratch stacks for the elements of the arrays and objects being read: each closed array
    /// or object moves its elements into one exactly sized `Vec`.
    vals: Vec<Value<'a>>,
    ents: Vec<(Str<'a>, Value<'a>)>,
    /// Scratch for the duplicate-key check of large objects.
    hashes: Vec<u64>,
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

/// The length of the plain run at the start of `s`: the position of the first byte that ends
/// it (the closing quote, a backslash, a control character below 0x20), or `s.len()`. Reads
/// eight bytes at a time (the tail padded with a plain byte).
fn plain_len(s: &[u8]) -> usize {
    let mut chunks = s.chunks_exact(8);
    let mut n = 0;
    for chunk in &mut chunks {
        let hits = special_bytes(<[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes));
        if hits != 0 {
            return n + first_hit(hits);
        }
        n += 8;
    }
    let rest = chunks.remainder();
    let mut tail = [b'a'; 8];
    if let Some(dst) = tail.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    match special_bytes(u64::from_le_bytes(tail)) {
        0 => n + rest.len(),
        hits => n + first_hit(hits),
    }
}

/// For eight bytes read little-endian: the high bit of every byte that is a quote, a backslash
/// or below 0x20 is set, and of no byte before the first such byte. (The usual "has zero
/// byte" word test: a borrow can only mark bytes after a byte that really matches.)
fn special_bytes(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    const SPACE: u64 = LO * 0x20;
    let q = w ^ QUOTE;
    let b = w ^ BACKSLASH;
    ((q.wrapping_sub(LO) & !q) | (b.wrapping_sub(LO) & !b) | (w.wrapping_sub(SPACE) & !w)) & HI
}

/// The index of the first marked byte of a non-zero [`special_bytes`] result.
fn first_hit(hits: u64) -> usize {
    (hits.trailing_zeros() / 8) as usize
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

    fn value(&mut self, depth: usize) -> Result<Value<'a>, PErr> {
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

    fn literal(&mut self, word: &[u8], v: Value<'a>) -> Result<Value<'a>, PErr> {
        let end = self.i + word.len();
        if self.b.get(self.i..end) == Some(word) {
            self.i = end;
            Ok(v)
        } else {
            Err(self.err_here("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Value<'a>, PErr> {
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
        // The grammar above only admits ASCII, so the text is always valid.
        let text = match self.text.and_then(|t| t.get(start..self.i)) {
            Some(t) => t,
            None => std::str::from_utf8(self.b.get(start..self.i).unwrap_or_default())
                .unwrap_or_default(),
        };
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

    /// Moves `self.i` to the next byte at or after it that ends a plain string run (or to the
    /// end of the input).
    fn skip_plain(&mut self) {
        self.i += plain_len(self.b.get(self.i..).unwrap_or_default());
    }

    /// Reads a string starting at the opening quote.
    fn string(&mut self) -> Result<Str<'a>, PErr> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes, borrowed from the input.
        self.skip_plain();
        match self.peek() {
            Some(b'"') => {
                let end = self.i;
                let s = match self.text.and_then(|t| t.get(start..end)) {
                    Some(s) => s,
                    None => std::str::from_utf8(self.b.get(start..end).unwrap_or_default())
                        .map_err(|e| {
                            PErr::new(format!(
                                "invalid UTF-8 in string at byte {}",
                                start + e.valid_up_to()
                            ))
                        })?,
                };
                self.i += 1;
                return Ok(Str::from(s));
            }
            Some(b'\\') | None => {}
            Some(_) => return Err(self.err_here("control character in string")),
        }
        // Slow path with escapes.
        let prefix = self.b.get(start..self.i).unwrap_or_default();
        let mut buf: Vec<u8> = Vec::with_capacity(prefix.len() + 16);
        buf.extend_from_slice(prefix);
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err_here("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(buf).map(Str::from).map_err(|e| {
                        PErr::new(format!(
                            "invalid UTF-8 in string starting at byte {} (offset {} of the decoded text)",
                            start,
                            e.utf8_error().valid_up_to()
                        ))
                    });
                }
                b'\\' => self.escape(&mut buf)?,
                c if c < 0x20 => return Err(self.err_here("control character in string")),
                _ => {
                    // A plain run: copied as is (validated as UTF-8 with the rest at the end).
                    let run = self.i;
                    self.skip_plain();
                    buf.extend_from_slice(self.b.get(run..self.i).unwrap_or_default());
                }
            }
        }
    }

    /// Decodes the escape at the backslash at `self.i` into `buf`.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), PErr> {
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
                let ch = char::from_u32(cp)
                    .ok_or_else(|| PErr::new(format!("invalid \\u escape at byte {at}")))?;
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            _ => {
                self.i -= 1;
                return Err(self.err_here("invalid escape"));
            }
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, PErr> {
        if depth > MAX_DEPTH {
            return Err(PErr::new(format!(
                "nesting deeper than {MAX_DEPTH} levels is refused"
            )));
        }
        self.i += 1; // [
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(Vec::new()));
        }
        let base = self.vals.len();
        loop {
            self.skip_ws();
            let idx = self.vals.len() - base;
            let v = self.value(depth + 1).map_err(|mut e| {
                e.segs.push(OwnedSeg::Index(idx));
                e
            })?;
            self.vals.push(v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    let items: Vec<Value<'a>> = self.vals.drain(base..).collect();
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.err_here("expected ',' or ']' in array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, PErr> {
        if depth > MAX_DEPTH {
            return Err(PErr::new(format!(
                "nesting deeper than {MAX_DEPTH} levels is refused"
            )));
        }
        self.i += 1; // {
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(Object::default()));
        }
        let base = self.ents.len();
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
                    e.segs.push(OwnedSeg::Key(key.to_string()));
                    return Err(e);
                }
            };
            self.ents.push((key, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    let entries = self.ents.get(base..).unwrap_or_default();
                    let struct_ok = check_keys(entries, &mut self.hashes)?;
                    let entries: Vec<(Str<'a>, Value<'a>)> = self.ents.drain(base..).collect();
                    return Ok(Value::Object(Object { entries, struct_ok }));
                }
                _ => return Err(self.err_here("expected ',' or '}' in object")),
            }
        }
    }
}

/// The key checks of a closed object: refuses exact duplicates; returns whether the object is
/// certainly a valid Go struct (every key ASCII, no two keys equal after ASCII case folding).
///
/// Compares hashes of the keys that are invariant under ASCII case: only when two hashes are
/// equal do the exact checks run (the exact duplicate check here, the struct check when the
/// object is read as a struct), so they report exactly what they did without the hashes.
fn check_keys(entries: &[(Str<'_>, Value<'_>)], hashes: &mut Vec<u64>) -> Result<bool, PErr> {
    let all_ascii = entries.iter().all(|(k, _)| k.is_ascii());
    let maybe_fold_dup = entries.len() > 1 && {
        hashes.clear();
        hashes.extend(entries.iter().map(|(k, _)| fold_hash(k)));
        hashes.sort_unstable();
        hashes.windows(2).any(|w| matches!(w, [a, b] if a == b))
    };
    if maybe_fold_dup {
        // Exact duplicates are also equal after folding: only then can there be one.
        check_exact_dups(entries)?;
    }
    Ok(all_ascii && !maybe_fold_dup)
}

/// A hash of `k` that is the same for keys equal after ASCII case folding (every byte is read
/// with bit 0x20 set, so it may also collide for some other pairs: collisions only cost the
/// exact check).
fn fold_hash(k: &str) -> u64 {
    const MUL: u64 = 0x517c_c1b7_2722_0a95;
    let b = k.as_bytes();
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes);
        h = (h.rotate_left(5) ^ (w | 0x2020_2020_2020_2020)).wrapping_mul(MUL);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        if let Some(dst) = tail.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        let w = u64::from_le_bytes(tail);
        h = (h.rotate_left(5) ^ (w | 0x2020_2020_2020_2020)).wrapping_mul(MUL);
    }
    h
}

fn check_exact_dups(entries: &[(Str<'_>, Value<'_>)]) -> Result<(), PErr> {
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
