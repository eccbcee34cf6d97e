//! Writing one audit record as a JSON line, straight from the request's trail into a scratch
//! buffer that is appended to the writer's batch: no intermediate record to build and drop.
//! This is the audit log's hot path: it runs once per request, on the thread that served it.
//! So each key is one constant with its punctuation (`,"status":`, [`key!`]); string escaping
//! checks eight bytes at a time (most of a record is plain ASCII) and copies plain text in one
//! go; sockwarden's own names are copied unchecked; numbers go through `itoa`, never the
//! formatting machinery; and the time's text up to the second is kept per thread.

use std::fmt::Display;
use std::io::Write as _;

/// A member's key as it follows another member: `,"name":`, one constant byte string (copied
/// with a few stores: the compiler knows its length). A key that comes from a client goes
/// through [`Obj::escaped_key`].
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}
pub(super) use key;

/// A member's key and the opening quote of its string value: `,"name":"`.
macro_rules! key_quote {
    ($name:literal) => {
        concat!(",\"", $name, "\":\"").as_bytes()
    };
}
pub(super) use key_quote;

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
    /// spliced into records later (`record::write_line`).
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
    pub fn plain_display(&mut self, key: &'static [u8], value: impl Display) {
        let out = self.key(key);
        out.push(b'"');
        push_display(out, value);
        out.push(b'"');
    }

    /// A member's key (`,"name":`, from [`key!`]; the comma left out before the first
    /// member). Keys are sockwarden's own field names: plain ASCII, nothing to escape.
    #[inline]
    fn key(&mut self, key: &'static [u8]) -> &mut Vec<u8> {
        debug_assert!(
            key.len() > 3 && key[0] == b',' && !key[2..key.len() - 2].iter().any(|&b| special(b))
        );
        if std::mem::take(&mut self.first) {
            self.out.extend_from_slice(&key[1..]);
        } else {
            self.out.extend_from_slice(key);
        }
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
    pub fn str(&mut self, key: &'static [u8], value: &str) {
        let out = self.key(key);
        string(out, value);
    }

    /// `"key":"value"` when there is a value.
    pub fn opt_str(&mut self, key: &'static [u8], value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// `"key":n`.
    pub fn uint(&mut self, key: &'static [u8], n: u64) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `"key":n` when there is a number.
    pub fn opt_uint(&mut self, key: &'static [u8], n: Option<u64>) {
        if let Some(n) = n {
            self.uint(key, n);
        }
    }

    /// `"key":n`, a signed number when there is one.
    pub fn opt_int(&mut self, key: &'static [u8], n: Option<i64>) {
        if let Some(n) = n {
            let out = self.key(key);
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
    }

    /// `"key":[strings]` unless empty.
    pub fn strs<'s>(&mut self, key: &'static [u8], values: impl ExactSizeIterator<Item = &'s str>) {
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

    /// `"key":` followed by whatever `write` puts there (a nested object, or serde output).
    pub fn with(&mut self, key: &'static [u8], write: impl FnOnce(&mut Vec<u8>)) {
        let out = self.key(key);
        write(out);
    }

    /// Closes the object (`}`).
    pub fn close(self) {
        self.out.push(b'}');
    }
}

pub(super) fn array<'s>(out: &mut Vec<u8>, values: impl ExactSizeIterator<Item = &'s str>) {
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
/// quoted. Times before 1970 are written as the epoch. The text up to the second changes once
/// a second: each thread keeps the last one it wrote and only writes the microseconds anew.
pub(super) fn rfc3339(out: &mut Vec<u8>, time: std::time::SystemTime) {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let head = LAST_SECOND.with(|last| {
        let (at, head) = last.get();
        if at == secs && head[0] == b'"' {
            return head;
        }
        let head = second_text(secs);
        last.set((secs, head));
        head
    });
    let mut text = [0u8; 29];
    text[..20].copy_from_slice(&head);
    text[20] = b'.';
    let micros = since.subsec_micros();
    text[21..23].copy_from_slice(two_digits(micros / 10_000));
    text[23..25].copy_from_slice(two_digits(micros / 100 % 100));
    text[25..27].copy_from_slice(two_digits(micros % 100));
    text[27] = b'Z';
    text[28] = b'"';
    out.extend_from_slice(&text);
}

thread_local! {
    /// The second [`rfc3339`] wrote last on this thread, and its text (`"2026-11-29T08:26:54`);
    /// all zeros before the first.
    static LAST_SECOND: std::cell::Cell<(u64, [u8; 20])> = const {
        std::cell::Cell::new((0, [0; 20]))
    };
}

/// `"YYYY-MM-DDTHH:MM:SS` of `secs` after the epoch (with the opening quote).
fn second_text(secs: u64) -> [u8; 20] {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 20];
    text[0] = b'"';
    text[1..3].copy_from_slice(two_digits((year / 100 % 100) as u32));
    text[3..5].copy_from_slice(two_digits((year % 100) as u32));
    text[5] = b'-';
    text[6..8].copy_from_slice(two_digits(month as u32));
    text[8] = b'-';
    text[9..11].copy_from_slice(two_digits(day as u32));
    text[11] = b'T';
    text[12..14].copy_from_slice(two_digits((rem / 3600) as u32));
    text[14] = b':';
    text[15..17].copy_from_slice(two_digits((rem / 60 % 60) as u32));
    text[17] = b':';
    text[18..20].copy_from_slice(two_digits((rem % 60) as u32));
    text
}

/// The two decimal digits of `n % 100`.
fn two_digits(n: u32) -> &'static [u8; 2] {
    const PAIRS: [[u8; 2]; 100] = {
        let mut pairs = [[0u8; 2]; 100];
        let mut i = 0;
        while i < 100 {
            pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
            i += 1;
        }
        pairs
    };
    &PAIRS[(n % 100) as usize]
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

/// Writes a value whose text needs no escaping (`Display`) without a temporary.
fn push_display(out: &mut Vec<u8>, value: impl Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// Writes `n` in decimal.
#[inline]
pub(super) fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes a duration of `micros` microseconds as milliseconds with microsecond resolution
/// (`151.171`).
pub(super) fn millis(out: &mut Vec<u8>, micros: u128) {
    // A u64 of microseconds lasts 584,000 years; longer is written as that.
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    uint(out, micros / 1000);
    let frac = (micros % 1000) as u32;
    let mut text = [b'.', b'0', 0, 0];
    text[1] = b'0' + (frac / 100) as u8;
    text[2..].copy_from_slice(two_digits(frac));
    out.extend_from_slice(&text);
}

/// Whether JSON needs byte `b` escaped in a string: `"`, `\` or a control character.
fn special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Bytes of `word` that are `"`, `\` or a control character (below 0x20), as their high bits.
#[inline]
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
#[inline]
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    string_rest(out, s);
}

/// Writes what follows a string's opening quote: `s` escaped and the closing quote. The text
/// is checked eight bytes at a time and, when plain (the common case), copied in one go.
#[inline]
pub(super) fn string_rest(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
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

/// `,"name":"value"` (`key` from [`key_quote!`]).
#[inline]
pub(super) fn str_member(out: &mut Vec<u8>, key: &'static [u8], value: &str) {
    out.extend_from_slice(key);
    string_rest(out, value);
}

/// `,"name":"value"` for sockwarden's own text (an operation's or an event's name, a request
/// id): nothing to escape, copied as it is.
#[inline]
pub(super) fn plain_member(out: &mut Vec<u8>, key: &'static [u8], value: &str) {
    debug_assert!(!value.bytes().any(special), "{value:?}");
    out.extend_from_slice(key);
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// Where the first eight-byte word of `bytes` that may hold a byte to escape starts (`None`:
/// nothing to escape). Words are read whole (a text shorter than a word as two overlapping
/// halves or its first, middle and last byte), never copied byte by byte.
#[inline]
fn first_special_word(bytes: &[u8]) -> Option<usize> {
    let n = bytes.len();
    if n < 8 {
        return (needs_escape(short_word(bytes)) != 0).then_some(0);
    }
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        if needs_escape(u64::from_le_bytes(word_of(chunk))) != 0 {
            return Some(at);
        }
        at += 8;
    }
    if chunks.remainder().is_empty() {
        return None;
    }
    // The last (overlapping) word covers the rest.
    let last = &bytes[n - 8..];
    (needs_escape(u64::from_le_bytes(word_of(last))) != 0).then_some(n - 8)
}

/// Eight bytes as an array (the slice is eight long).
#[inline]
fn word_of(chunk: &[u8]) -> [u8; 8] {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    word
}

/// A word holding every byte of `bytes` (fewer than eight; some twice) and plain bytes.
#[inline]
fn short_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if n >= 4 {
        let mut lo = [0u8; 4];
        let mut hi = [0u8; 4];
        lo.copy_from_slice(&bytes[..4]);
        hi.copy_from_slice(&bytes[n - 4..]);
        u64::from(u32::from_le_bytes(lo)) | u64::from(u32::from_le_bytes(hi)) << 32
    } else if n > 0 {
        let (a, b, c) = (bytes[0], bytes[n / 2], bytes[n - 1]);
        u64::from_le_bytes([a, b, c, b'a', b'a', b'a', b'a', b'a'])
    } else {
        u64::from_le_bytes([b'a'; 8])
    }
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
        // Every special byte at every position of strings up to 40 bytes long (short ones read
        // as overlapping halves, long ones ending in an overlapping word).
        for len in 1..41 {
            for pos in 0..len {
                for special in ['"', '\\', '\n', '\u{0}', '\u{1f}', ' ', '\u{7f}', 'é'] {
                    let mut s: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
                        .chars()
                        .take(len)
                        .collect();
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
        let seconds = [
            0u64,
            59,
            86_399,
            951_782_400,
            1_709_164_800,
            1_796_000_000,
            1_796_000_001,
            4_102_444_800,
        ];
        // Forward, back, and each second again after another (the per-thread last second).
        let order = seconds
            .iter()
            .chain(seconds.iter().rev())
            .chain(seconds.iter());
        for &secs in order {
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
        o.str(key!("a"), "x");
        o.opt_str(key!("skip"), None);
        o.uint(key!("u"), 7);
        o.opt_int(key!("i"), Some(-3));
        o.with(key!("ms"), |out| millis(out, 151_171));
        o.strs(key!("l"), ["p", "q"].into_iter());
        o.strs(key!("empty"), std::iter::empty());
        o.with(key!("o"), |out| out.extend_from_slice(b"{}"));
        o.close();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":"x","u":7,"i":-3,"ms":151.171,"l":["p","q"],"o":{}})
        );
        for (micros, text) in [
            (0u128, "0.000"),
            (5, "0.005"),
            (42, "0.042"),
            (999_999, "999.999"),
            (1_000, "1.000"),
            (61_000_123, "61000.123"),
            (u128::MAX, "18446744073709551.615"),
        ] {
            let mut out = Vec::new();
            millis(&mut out, micros);
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        let mut out = Vec::new();
        str_member(&mut out, key_quote!("k"), "a\"b");
        plain_member(&mut out, key_quote!("e"), "request");
        assert_eq!(out, br#","k":"a\"b","e":"request""#);
    }
}
