//! Writing one audit record as a JSON line, straight from the request's trail into a scratch
//! buffer that is appended to the writer's batch: no intermediate record to build and drop,
//! and string escaping that skips eight plain bytes at a time (most of a record is plain
//! ASCII). This is the audit log's hot path: it runs once per request, on the thread that
//! served it.

use std::fmt::Display;
use std::io::Write as _;

/// An object being written; members are separated and keys quoted as they come.
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object (`{`).
    pub fn open(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Members on their own, without braces (`"a":1,"b":"x"`), appended to `out`, to be
    /// spliced into records later with [`Obj::fields`].
    pub fn members(out: &'a mut Vec<u8>) -> Obj<'a> {
        Obj { out, first: true }
    }

    /// Starts a member: the comma before every member but the first.
    fn member(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// `"key":"text"` for a value whose text (`Display`) needs no escaping: a number, an
    /// address, an API version.
    pub fn plain_display<const N: usize>(&mut self, key: &'static [u8; N], value: impl Display) {
        let out = self.key(key);
        out.push(b'"');
        push_display(out, value);
        out.push(b'"');
    }

    /// A member's key. Keys are sockwarden's own field names (plain ASCII, nothing to
    /// escape), as byte arrays: copying a fixed-size array compiles to a few stores where a
    /// `&str` would cost a `memcpy` call, and a record has some twenty keys. A key that comes
    /// from a client goes through [`Obj::escaped_key`].
    fn key<const N: usize>(&mut self, key: &'static [u8; N]) -> &mut Vec<u8> {
        debug_assert!(!key.iter().any(|&b| special(b)));
        self.out.reserve(N + 4);
        self.member();
        self.out.push(b'"');
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A member's key that a client chose (a query parameter's name): escaped.
    fn escaped_key(&mut self, key: &str) -> &mut Vec<u8> {
        self.member();
        string(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// `"key":"value"`.
    pub fn str<const N: usize>(&mut self, key: &'static [u8; N], value: &str) {
        let out = self.key(key);
        string(out, value);
    }

    /// `"key":"value"` when there is a value.
    pub fn opt_str<const N: usize>(&mut self, key: &'static [u8; N], value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// `"key":"value"` or `"key":null`.
    pub fn str_or_null<const N: usize>(&mut self, key: &'static [u8; N], value: Option<&str>) {
        let out = self.key(key);
        match value {
            Some(value) => string(out, value),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// `"key":n`.
    pub fn uint<const N: usize>(&mut self, key: &'static [u8; N], n: u64) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `"key":n` when there is a number.
    pub fn opt_uint<const N: usize>(&mut self, key: &'static [u8; N], n: Option<u64>) {
        if let Some(n) = n {
            self.uint(key, n);
        }
    }

    /// `"key":n`, a signed number when there is one.
    pub fn opt_int<const N: usize>(&mut self, key: &'static [u8; N], n: Option<i64>) {
        if let Some(n) = n {
            let out = self.key(key);
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
    }

    /// `"key":ms` with microsecond resolution (`151.171`).
    pub fn millis<const N: usize>(&mut self, key: &'static [u8; N], micros: u128) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
        let frac = (micros % 1000) as u16;
        out.push(b'.');
        out.extend_from_slice(&[
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }

    /// `"key":[strings]` unless empty.
    pub fn strs<'s, const N: usize>(
        &mut self,
        key: &'static [u8; N],
        values: impl ExactSizeIterator<Item = &'s str>,
    ) {
        if values.len() == 0 {
            return;
        }
        let out = self.key(key);
        array(out, values);
    }

    /// `"key":[strings]` for a key a client chose.
    pub fn escaped_strs<'s>(&mut self, key: &str, values: impl ExactSizeIterator<Item = &'s str>) {
        let out = self.escaped_key(key);
        array(out, values);
    }

    /// `"key":"value"` for a key a client chose.
    pub fn escaped_str(&mut self, key: &str, value: &str) {
        let out = self.escaped_key(key);
        string(out, value);
    }

    /// Members written beforehand (`"a":1,"b":"x"`, no braces), spliced in as they are.
    pub fn fields(&mut self, members: &[u8]) {
        if members.is_empty() {
            return;
        }
        self.member();
        self.out.extend_from_slice(members);
    }

    /// `"key":` followed by whatever `write` puts there (a nested object, or serde output).
    pub fn with<const N: usize>(
        &mut self,
        key: &'static [u8; N],
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let out = self.key(key);
        write(out);
    }

    /// Closes the object (`}`).
    pub fn close(self) {
        self.out.push(b'}');
    }
}

fn array<'s>(out: &mut Vec<u8>, values: impl ExactSizeIterator<Item = &'s str>) {
    out.push(b'[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, v);
    }
    out.push(b']');
}

/// Writes `time` as RFC 3339 in UTC with microseconds (`"2026-11-29T08:26:54.893604Z"`),
/// quoted. Times before 1970 are written as the epoch.
pub(super) fn rfc3339(out: &mut Vec<u8>, time: std::time::SystemTime) {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 29];
    let mut put = |at: usize, n: u64, width: usize| {
        let mut n = n;
        for i in (0..width).rev() {
            text[at + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(1, year, 4);
    put(6, month, 2);
    put(9, day, 2);
    put(12, rem / 3600, 2);
    put(15, rem / 60 % 60, 2);
    put(18, rem % 60, 2);
    put(21, u64::from(since.subsec_micros()), 6);
    for (at, c) in [
        (0, b'"'),
        (5, b'-'),
        (8, b'-'),
        (11, b'T'),
        (14, b':'),
        (17, b':'),
        (20, b'.'),
    ] {
        text[at] = c;
    }
    text[27] = b'Z';
    text[28] = b'"';
    out.extend_from_slice(&text);
}

/// Year, month and day of the `days`-th day after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes a number (or anything else whose text needs no escaping) without a temporary.
fn push_display(out: &mut Vec<u8>, value: impl Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// Whether JSON needs byte `b` escaped in a string: `"`, `\` or a control character.
fn special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Bytes of `word` that are `"`, `\` or a control character (below 0x20), as their high bits.
fn needs_escape(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')))
        | below_space
}

/// Writes `s` as a JSON string. Non-ASCII text is valid UTF-8 (a `&str`) and passes through.
/// The text is checked eight bytes at a time (the last few padded to a word) and, when plain
/// (the common case), copied with one `memcpy`: most strings of a record are a few to a few
/// dozen bytes, where copying word by word and byte by byte cost more than the check.
#[inline]
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    match first_special_word(bytes) {
        None => {
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        Some(start) => {
            out.extend_from_slice(&bytes[..start]);
            escaped(out, bytes, start);
        }
    }
}

/// Where the first eight-byte word of `bytes` that may hold a byte to escape starts (`None`:
/// nothing to escape). The tail shorter than a word is checked padded with plain bytes.
fn first_special_word(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if needs_escape(u64::from_le_bytes(word)) != 0 {
            return Some(at);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    let mut word = [b'a'; 8];
    word[..tail.len()].copy_from_slice(tail);
    (needs_escape(u64::from_le_bytes(word)) != 0).then_some(at)
}

/// Writes `s` followed by `suffix` as one JSON string; `suffix` is sockwarden's own text,
/// with nothing to escape.
pub(super) fn string_with_suffix(out: &mut Vec<u8>, s: &str, suffix: &'static str) {
    #[cfg(debug_assertions)]
    debug_assert!(plain(suffix.as_bytes()));
    string(out, s);
    out.pop();
    out.extend_from_slice(suffix.as_bytes());
    out.push(b'"');
}

/// Whether `bytes` holds nothing to escape (for debug assertions).
#[cfg(debug_assertions)]
fn plain(bytes: &[u8]) -> bool {
    !bytes.iter().any(|&b| special(b))
}

/// The rest of [`string`] from `bytes[start..]`, which holds something to escape (the opening
/// quote and `bytes[..start]` are written).
fn escaped(out: &mut Vec<u8>, bytes: &[u8], start: usize) {
    let mut start = start;
    let mut i = start;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if needs_escape(u64::from_le_bytes(word)) == 0 {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if special(b) {
            out.extend_from_slice(&bytes[start..i]);
            escape(out, b);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_exactly_as_json_requires() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than eight bytes".into(),
            "quote \" backslash \\ newline \n tab \t cr \r nul \u{0} esc \u{1b} del \u{7f}".into(),
            "ünïcödé ✓ 𝄞 and \"quotes\"".into(),
        ];
        // Every special byte at every position of strings up to 20 bytes long.
        for len in 1..20 {
            for pos in 0..len {
                for special in ['"', '\\', '\n', '\u{1f}', 'é'] {
                    let mut s: String = "abcdefghijklmnopqrstu".chars().take(len).collect();
                    s.replace_range(pos..pos + 1, &special.to_string());
                    samples.push(s);
                }
            }
        }
        for s in samples {
            let mut out = Vec::new();
            string(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn timestamps_match_humantime() {
        let base = std::time::UNIX_EPOCH;
        for secs in [
            0u64,
            59,
            86_399,
            951_782_400,
            1_709_164_800,
            1_796_000_000,
            4_102_444_800,
        ] {
            for micros in [0u64, 1, 893_604, 999_999] {
                let t = base + std::time::Duration::from_micros(secs * 1_000_000 + micros);
                let mut out = Vec::new();
                rfc3339(&mut out, t);
                let want = format!("\"{}\"", humantime::format_rfc3339_micros(t));
                assert_eq!(String::from_utf8(out).unwrap(), want);
            }
        }
    }

    #[test]
    fn objects_and_numbers() {
        let mut out = Vec::new();
        let mut o = Obj::open(&mut out);
        o.str(b"a", "x");
        o.opt_str(b"skip", None);
        o.str_or_null(b"n", None);
        o.uint(b"u", 7);
        o.opt_int(b"i", Some(-3));
        o.millis(b"ms", 151_171);
        o.strs(b"l", ["p", "q"].into_iter());
        o.strs(b"empty", std::iter::empty());
        o.with(b"o", |out| out.extend_from_slice(b"{}"));
        o.close();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":"x","n":null,"u":7,"i":-3,"ms":151.171,"l":["p","q"],"o":{}})
        );
        let mut out = Vec::new();
        let mut o = Obj::open(&mut out);
        o.millis(b"ms", 5);
        o.close();
        assert_eq!(out, br#"{"ms":0.005}"#);
    }
}
