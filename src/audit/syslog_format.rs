//! Audit records as RFC 5424 syslog messages, framed by octet counting (RFC 6587 §3.4.1), as
//! the remote sink sends them over TCP and TLS (RFC 5425):
//!
//! ```text
//! 412 <86>1 2026-11-29T08:26:54.893604Z host1 sockwarden 4242 request - {"time":...}
//! ```
//!
//! The header's TIMESTAMP is the record's own `time` (so a spooled record keeps the time it was
//! made), MSGID its `event`, STRUCTURED-DATA is empty (`-`) and MSG the record's JSON line
//! without its newline and without a BOM (MSG-ANY: JSON consumers read it as it is). Header
//! fields are PRINTUSASCII with RFC 5424's lengths: a configured value that is not is refused
//! by `check`; a value taken from a record (time, event) that is not becomes `-`.

use std::fmt::Write as _;

/// RFC 5424 facility names and numbers.
const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("console", 14),
    ("solaris-cron", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Severity of every audit record: informational (6).
const SEVERITY_INFO: u8 = 6;

/// The facility called `name` (`authpriv`, `local0`, ...).
pub fn facility(name: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, code)| *code)
}

/// The facility names, for an error message.
pub fn facility_names() -> String {
    FACILITIES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `value` may stand as a header field of at most `max` octets: 1 to `max` printable
/// US-ASCII characters (33-126), no spaces.
pub fn valid_field(value: &str, max: usize) -> bool {
    valid_field_bytes(value.as_bytes(), max)
}

/// [`valid_field`] of bytes (printable US-ASCII is UTF-8 too).
fn valid_field_bytes(value: &[u8], max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.iter().all(|b| (33..=126).contains(b))
}

/// RFC 5424's longest HOSTNAME, APP-NAME, PROCID and MSGID.
pub const HOSTNAME_MAX: usize = 255;
/// See [`HOSTNAME_MAX`].
pub const APP_NAME_MAX: usize = 48;
/// See [`HOSTNAME_MAX`].
pub const PROCID_MAX: usize = 128;
/// See [`HOSTNAME_MAX`].
pub const MSGID_MAX: usize = 32;

/// The fixed part of every message's header: `<PRI>1 ` is built per facility, HOSTNAME,
/// APP-NAME and PROCID once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `<PRI>1 `.
    pri: Vec<u8>,
    /// ` HOSTNAME APP-NAME PROCID `, with its spaces.
    middle: String,
}

impl Header {
    /// A header for `facility`; `hostname` and `app_name` must be valid fields (else `-`).
    pub fn new(facility: u8, hostname: &str, app_name: &str, procid: u32) -> Header {
        let field = |v: &str, max| {
            if valid_field(v, max) {
                v.to_owned()
            } else {
                "-".to_owned()
            }
        };
        let mut middle = String::new();
        let _ = write!(
            middle,
            " {} {} {} ",
            field(hostname, HOSTNAME_MAX),
            field(app_name, APP_NAME_MAX),
            field(&procid.to_string(), PROCID_MAX)
        );
        let pri = facility.saturating_mul(8).saturating_add(SEVERITY_INFO);
        Header {
            pri: format!("<{pri}>1 ").into_bytes(),
            middle,
        }
    }

    /// Appends one octet-counted frame for the JSON `line` (its newline, if any, left out):
    /// `LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`.
    pub fn frame(&self, line: &[u8], out: &mut Vec<u8>) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let (time, event) = match leading_fields(body) {
            Some(found) => found,
            None => (
                string_field(body, b"\"time\":\""),
                string_field(body, b"\"event\":\""),
            ),
        };
        let timestamp = time.filter(|t| valid_timestamp(t)).unwrap_or(b"-");
        let msgid = event
            .filter(|e| valid_field_bytes(e, MSGID_MAX))
            .unwrap_or(b"request");
        // "<" PRI ">1 " TIMESTAMP middle MSGID " - " MSG
        let len =
            self.pri.len() + timestamp.len() + self.middle.len() + msgid.len() + 3 + body.len();
        let mut n = itoa::Buffer::new();
        out.reserve(len + 8);
        out.extend_from_slice(n.format(len).as_bytes());
        out.push(b' ');
        let start = out.len();
        out.extend_from_slice(&self.pri);
        out.extend_from_slice(timestamp);
        out.extend_from_slice(self.middle.as_bytes());
        out.extend_from_slice(msgid);
        out.extend_from_slice(b" - ");
        out.extend_from_slice(body);
        debug_assert_eq!(out.len() - start, len);
    }
}

/// A record's `time` and `event`, each if found.
type TimeAndEvent<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// `time` and `event` of a record that starts as sockwarden writes it,
/// `{"time":"...","id":"...","event":"..."`, read without searching; `None` for any other
/// shape (then [`string_field`] searches).
fn leading_fields(json: &[u8]) -> Option<TimeAndEvent<'_>> {
    fn string(rest: &[u8]) -> Option<(&[u8], &[u8])> {
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        (rest[end] == b'"').then(|| (&rest[..end], &rest[end + 1..]))
    }
    let rest = json.strip_prefix(b"{\"time\":\"")?;
    let (time, rest) = string(rest)?;
    let rest = rest.strip_prefix(b",\"id\":\"")?;
    let (_, rest) = string(rest)?;
    let Some(rest) = rest.strip_prefix(b",\"event\":\"") else {
        return Some((Some(time), None));
    };
    let (event, _) = string(rest)?;
    Some((Some(time), Some(event)))
}

/// The value of the first `"key":"` string in the first 200 bytes of a record's JSON (sockwarden
/// writes `time`, `id` and `event` first, and none of them holds an escaped quote), without
/// unescaping: `None` when absent or escaped.
fn string_field<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let head = &json[..json.len().min(200)];
    let at = head.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &json[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let value = &rest[..end];
    if value.contains(&b'\\') {
        return None;
    }
    Some(value)
}

/// An RFC 3339 time as RFC 5424 takes it: `2026-11-29T08:26:54.893604Z` (at most 6 fraction
/// digits, `Z` or an offset).
fn valid_timestamp(t: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        t.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let shape = t.len() >= 20
        && digits(0..4)
        && t[4] == b'-'
        && digits(5..7)
        && t[7] == b'-'
        && digits(8..10)
        && t[10] == b'T'
        && digits(11..13)
        && t[13] == b':'
        && digits(14..16)
        && t[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        b"Z" => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Splits octet-counted frames (`LEN SP MSG`) off the front of `input`: the messages, and how
/// many bytes they took (a trailing partial frame is left). `None` on a malformed length.
/// Used by the tests and the benchmark's collector.
pub fn split_frames(input: &[u8]) -> Option<(Vec<&[u8]>, usize)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let rest = &input[at..];
        let Some(space) = rest.iter().position(|&b| b == b' ') else {
            if rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
                return None;
            }
            break;
        };
        let digits = &rest[..space];
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if digits[0] == b'0' {
            return None;
        }
        let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let Some(msg) = rest.get(space + 1..space + 1 + len) else {
            break;
        };
        frames.push(msg);
        at += space + 1 + len;
    }
    Some((frames, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &[u8] =
        b"{\"time\":\"2026-11-29T08:26:54.893604Z\",\"id\":\"6b0be1cd-00000004\",\"event\":\"request\",\"path\":\"/_ping \\\"x\\\" \xc3\xa9\"}\n";

    #[test]
    fn frames_a_record_with_its_time_event_and_exact_length() {
        let header = Header::new(10, "host1", "sockwarden", 4242);
        let mut out = Vec::new();
        header.frame(RECORD, &mut out);
        let body = &RECORD[..RECORD.len() - 1];
        let mut expected =
            b"<86>1 2026-11-29T08:26:54.893604Z host1 sockwarden 4242 request - ".to_vec();
        expected.extend_from_slice(body);
        let framed = format!("{} ", expected.len()).into_bytes();
        assert_eq!(&out[..framed.len()], framed.as_slice());
        assert_eq!(&out[framed.len()..], expected.as_slice());
        // The length counts octets, not characters (é is two).
        let (frames, used) = split_frames(&out).unwrap();
        assert_eq!(frames, vec![expected.as_slice()]);
        assert_eq!(used, out.len());
    }

    /// Every pinned record (`record::golden`) framed exactly as RFC 5424 and 6587 put it.
    #[test]
    fn pinned_records_frame_byte_for_byte() {
        let header = Header::new(10, "host1", "sockwarden", 4242);
        let mut all = Vec::new();
        let mut want_all = String::new();
        for line in include_str!("record/golden.jsonl").lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let time = v["time"].as_str().unwrap();
            let event = v["event"].as_str().unwrap();
            let msg = format!("<86>1 {time} host1 sockwarden 4242 {event} - {line}");
            let want = format!("{} {msg}", msg.len());
            let mut out = Vec::new();
            header.frame(format!("{line}\n").as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
            all.extend_from_slice(&out);
            want_all.push_str(&want);
        }
        assert_eq!(String::from_utf8(all).unwrap(), want_all);
    }

    #[test]
    fn header_fields_outside_printusascii_or_too_long_become_nil() {
        let header = Header::new(16, "bad host", &"a".repeat(49), 1);
        let mut out = Vec::new();
        header.frame(b"{\"event\":\"reload\"}", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("<134>1 - - - 1 reload - {\"event\":\"reload\"}"),
            "{text}"
        );
        assert!(valid_field(&"a".repeat(48), APP_NAME_MAX));
        assert!(!valid_field("", APP_NAME_MAX));
        assert!(!valid_field("h\u{e9}", HOSTNAME_MAX));
        assert!(!valid_field("a\tb", HOSTNAME_MAX));
    }

    #[test]
    fn record_values_that_are_not_valid_header_fields_become_nil_or_the_default() {
        let header = Header::new(10, "h", "a", 1);
        for (record, want) in [
            (
                &b"{\"time\":\"yesterday\",\"event\":\"a b\"}"[..],
                "<86>1 - h a 1 request - ",
            ),
            (
                b"{\"time\":\"2026-11-29T08:26:54.1234567Z\"}",
                "<86>1 - h a 1 request - ",
            ),
            (
                b"{\"time\":\"2026-11-29T08:26:54+01:00\",\"event\":\"x\\\"y\"}",
                "<86>1 2026-11-29T08:26:54+01:00 h a 1 request - ",
            ),
            (
                b"{\"event\":\"session_open\"}",
                "<86>1 - h a 1 session_open - ",
            ),
            (
                b"{\"event\":\"abcdefghijabcdefghijabcdefghijabc\"}",
                "<86>1 - h a 1 request - ",
            ),
        ] {
            let mut out = Vec::new();
            header.frame(record, &mut out);
            let (frames, _) = split_frames(&out).unwrap();
            let text = String::from_utf8(frames[0].to_vec()).unwrap();
            assert!(text.starts_with(want), "{text} / {want}");
            assert!(text.ends_with(std::str::from_utf8(record).unwrap()));
        }
    }

    #[test]
    fn octet_counting_splits_back_to_back_frames_and_leaves_a_partial_one() {
        let header = Header::new(10, "h", "a", 1);
        let mut out = Vec::new();
        for i in 0..3 {
            header.frame(
                format!("{{\"n\":{i},\"s\":\"a b\\nc\"}}\n").as_bytes(),
                &mut out,
            );
        }
        let whole = out.len();
        header.frame(b"{\"n\":3}", &mut out);
        let cut = &out[..out.len() - 2];
        let (frames, used) = split_frames(cut).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(used, whole);
        assert!(frames[2].ends_with(b"{\"n\":2,\"s\":\"a b\\nc\"}"));
        assert!(split_frames(b"0 x").is_none());
        assert!(split_frames(b"x1 a").is_none());
        assert_eq!(split_frames(b"12").unwrap().0.len(), 0);
    }

    #[test]
    fn the_leading_fields_are_read_without_a_search_and_agree_with_it() {
        let body = &RECORD[..RECORD.len() - 1];
        let fast = leading_fields(body).unwrap();
        assert_eq!(fast.0, Some(&b"2026-11-29T08:26:54.893604Z"[..]));
        assert_eq!(fast.1, Some(&b"request"[..]));
        assert_eq!(fast.0, string_field(body, b"\"time\":\""));
        assert_eq!(fast.1, string_field(body, b"\"event\":\""));
        // No event: time only; another order: the search.
        assert_eq!(
            leading_fields(b"{\"time\":\"t\",\"id\":\"i\",\"path\":\"/\"}"),
            Some((Some(&b"t"[..]), None))
        );
        assert_eq!(
            leading_fields(b"{\"event\":\"reload\",\"time\":\"t\"}"),
            None
        );
        assert_eq!(leading_fields(b"{\"time\":\"a\\\"b\",\"id\":\"i\"}"), None);
    }

    #[test]
    fn facilities_are_named_as_rfc_5424_numbers_them() {
        assert_eq!(facility("kern"), Some(0));
        assert_eq!(facility("authpriv"), Some(10));
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("LOCAL7"), None);
        assert!(facility_names().contains("local0"));
    }
}
