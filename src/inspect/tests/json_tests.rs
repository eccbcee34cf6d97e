//! The strict JSON reader and the shared helpers.

use crate::inspect::common::{
    clean_path, glob, host_path_allowed, kernel_size, normalize_cap, normalize_image, ram_in_bytes,
    user_is_root,
};
use crate::inspect::docker_json::parser::parse;
use crate::inspect::docker_json::{go_int, GoInt, Path, Value, MAX_DEPTH};
use crate::inspect::go_bool;

#[test]
fn inspect_json_accepts_valid_documents() {
    let cases: &[(&str, Value)] = &[
        ("null", Value::Null),
        (" true ", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("0", Value::Number("0")),
        ("-0", Value::Number("-0")),
        ("12.5e-3", Value::Number("12.5e-3")),
        ("1E+2", Value::Number("1E+2")),
        (
            "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
            Value::String("a\"b\\c/d\u{8}\u{c}\n\r\t".into()),
        ),
        ("\"\\u00e9\\u017f\"", Value::String("é\u{17f}".into())),
        ("\"\\ud83d\\ude00\"", Value::String("\u{1F600}".into())),
        ("\"\\u0000\"", Value::String("\0".into())),
        ("\"ſ\"", Value::String("ſ".into())),
        ("[]", Value::Array(vec![])),
        (
            "[1, \"x\" ,null]",
            Value::Array(vec![
                Value::Number("1"),
                Value::String("x".into()),
                Value::Null,
            ]),
        ),
        ("\t\r\n{}\n", Value::Object(Default::default())),
    ];
    for (text, want) in cases {
        let got = parse(text.as_bytes());
        assert_eq!(got.as_ref().ok(), Some(want), "{text}: {got:?}");
    }
}

#[test]
fn inspect_json_refuses_invalid_documents() {
    let cases: &[(&[u8], &str, &str)] = &[
        (b"", "", "empty body"),
        (b"   ", "", "empty body"),
        (b"{} x", "", "trailing data"),
        (b"{}{}", "", "trailing data"),
        (b"{\"a\":1}{\"HostConfig\":{}}", "", "trailing data"),
        (b"01", "", "leading zeros"),
        (b"{\"Memory\":-01}", "Memory", "leading zeros"),
        (b"1.", "", "digit after '.'"),
        (b".5", "", "expected a JSON value"),
        (b"1e", "", "exponent"),
        (b"+1", "", "expected a JSON value"),
        (b"NaN", "", "expected a JSON value"),
        (b"tru", "", "invalid literal"),
        (b"True", "", "expected a JSON value"),
        (b"\"abc", "", "unterminated"),
        (b"\"a\x01b\"", "", "control character"),
        (b"\"\\x\"", "", "invalid escape"),
        (b"\"\\u12g4\"", "", "hex digits"),
        (b"\"\\ud800\"", "", "lone surrogate"),
        (b"\"\\ud800\\u0041\"", "", "lone surrogate"),
        (b"\"\\udc00\"", "", "lone surrogate"),
        (b"{\"k\":\"\xff\"}", "k", "invalid UTF-8"),
        (b"{\"k\":\"\xc3\"}", "k", "invalid UTF-8"),
        (
            b"{\"k\\n\":\"\xed\xa0\x80\"}",
            "[\"k\\n\"]",
            "invalid UTF-8",
        ),
        (b"{\"\xff\":1}", "", "invalid UTF-8"),
        (b"\xef\xbb\xbf{}", "", "invalid byte 0xef"),
        (b"{\"a\" 1}", "", "expected ':'"),
        (b"{\"a\":1,}", "", "string object key"),
        (b"{a:1}", "", "string object key"),
        (b"[1,]", "[1]", "expected a JSON value"),
        (b"[1 2]", "", "expected ',' or ']'"),
        (b"{\"a\":1 \"b\":2}", "", "expected ',' or '}'"),
        (b"{\"a\":1,\"a\":2}", "a", "duplicate key"),
        (
            b"{\"x\":[{\"a\":{},\"b\":1,\"a\":{}}]}",
            "x[0].a",
            "duplicate key",
        ),
        (b"{\"P\":1,\"\\u0050\":2}", "P", "duplicate key"),
    ];
    for (text, path, msg) in cases {
        match parse(text) {
            Ok(v) => panic!("{:?}: accepted as {v:?}", String::from_utf8_lossy(text)),
            Err(e) => assert!(
                e.path == *path && e.message.contains(msg),
                "{:?}: got {e:?}, expected path {path:?} and {msg:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }
}

#[test]
fn inspect_json_nesting_limit() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(parse(ok.as_bytes()).is_ok());
    let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    let e = parse(too_deep.as_bytes())
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(e.contains("nesting deeper than 64"), "{e}");
    let objs = format!(
        "{}1{}",
        "{\"a\":".repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    let e = parse(objs.as_bytes()).err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.message.contains("nesting") && e.path.starts_with("a.a.a")),
        "{e:?}"
    );
    // A huge nesting does not overflow the stack.
    let huge = "[".repeat(1_000_000);
    assert!(parse(huge.as_bytes()).is_err());
}

#[test]
fn inspect_json_struct_view() {
    let v = parse(br#"{"Privileged":true,"binds":null,"Labels":{"a":"1","A":"2","\u017f":"x"}}"#)
        .unwrap();
    let o = v.as_object().unwrap();
    let s = o.as_struct().unwrap();
    assert_eq!(s.get("privileged"), Some(&Value::Bool(true)));
    assert_eq!(s.get("PRIVILEGED"), Some(&Value::Bool(true)));
    assert_eq!(s.get("Binds"), None, "null is absent");
    assert_eq!(s.get("Nope"), None);
    assert_eq!(o.field("privileged").unwrap(), Some(&Value::Bool(true)));
    assert_eq!(o.unknown_fields(&["Privileged", "Binds"]), vec!["Labels"]);
    // A map keeps exact keys, including non-ASCII and case variants, in order.
    let labels = s.get("Labels").and_then(Value::as_object).unwrap();
    let keys: Vec<&str> = labels
        .map_entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, vec!["a", "A", "ſ"]);
    // ... but it is not a struct.
    assert!(labels
        .as_struct()
        .unwrap_err()
        .message
        .contains("non-ASCII"));

    let cases: &[(&[u8], &str, &str)] = &[
        (br#"{"Bind\u017f":[]}"#, "Bindſ", "non-ASCII"),
        ("{\"Bindſ\":[]}".as_bytes(), "Bindſ", "non-ASCII"),
        ("{\"\u{212A}ernelMemory\":1}".as_bytes(), "\u{212A}ernelMemory", "non-ASCII"),
        (br#"{"Privileged":true,"privileged":false}"#, "privileged", "name the same field"),
        (br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"s":19,"t":20,"u":21,"v":22,"w":23,"x":24,"y":25,"Q":26}"#, "q", "name the same field"),
    ];
    for (text, key, msg) in cases {
        let v = parse(text).unwrap();
        let e = v.as_object().unwrap().as_struct().unwrap_err();
        assert!(e.key == *key && e.message.contains(msg), "{e:?}");
        assert!(v.as_object().unwrap().field("x").is_err());
    }
}

#[test]
fn inspect_json_go_int() {
    let ok: &[(&str, GoInt, i128)] = &[
        ("0", GoInt::Int64, 0),
        ("-0", GoInt::Int64, 0),
        ("9223372036854775807", GoInt::Int64, i128::from(i64::MAX)),
        ("-9223372036854775808", GoInt::Int64, i128::from(i64::MIN)),
        ("18446744073709551615", GoInt::Uint64, i128::from(u64::MAX)),
        ("65535", GoInt::Uint16, 65535),
        ("4294967295", GoInt::Uint32, 4294967295),
    ];
    for (t, ty, want) in ok {
        assert_eq!(go_int(t, *ty), Ok(*want), "{t}");
    }
    let bad: &[(&str, GoInt, &str)] = &[
        ("1.0", GoInt::Int64, "not an integer"),
        ("1e3", GoInt::Int64, "not an integer"),
        ("1E3", GoInt::Int64, "not an integer"),
        ("9223372036854775808", GoInt::Int64, "overflows"),
        ("-9223372036854775809", GoInt::Int64, "overflows"),
        (
            "99999999999999999999999999999999999999999999",
            GoInt::Int64,
            "overflows",
        ),
        ("-1", GoInt::Uint64, "negative"),
        ("-0", GoInt::Uint16, "negative"),
        ("65536", GoInt::Uint16, "overflows"),
        ("4294967296", GoInt::Uint32, "overflows"),
    ];
    for (t, ty, msg) in bad {
        let e = go_int(t, *ty).unwrap_err();
        assert!(e.contains(msg), "{t}: {e}");
    }
}

#[test]
fn inspect_json_path_render() {
    let root = Path::ROOT;
    assert_eq!(root.render(), "(body)");
    let hc = root.field("HostConfig");
    assert_eq!(hc.field("Binds").index(2).render(), "HostConfig.Binds[2]");
    assert_eq!(
        hc.field("Sysctls").key("kernel.x").render(),
        "HostConfig.Sysctls[\"kernel.x\"]"
    );
    assert_eq!(
        hc.field("Tmpfs").key("/run").render(),
        "HostConfig.Tmpfs[\"/run\"]"
    );
    assert_eq!(root.field("Labels").key("a-b_c").render(), "Labels.a-b_c");
    assert_eq!(Path::query("labels").key("x").render(), "?labels.x");
}

#[test]
fn inspect_clean_path_like_go() {
    let cases = [
        ("/", "/"),
        ("//etc", "/etc"),
        ("/etc/", "/etc"),
        ("/etc/./x", "/etc/x"),
        ("/tmp/../etc", "/etc"),
        ("/../../etc", "/etc"),
        ("/srv/ci/../../etc", "/etc"),
        ("/a/b/../../..", "/"),
        ("", "."),
        ("a/../..", ".."),
        ("a//b/", "a/b"),
        ("./x", "x"),
    ];
    for (input, want) in cases {
        assert_eq!(clean_path(input), want, "{input}");
    }
}

#[test]
fn inspect_host_path_allowlist() {
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: &[(&str, &[&str], bool)] = &[
        ("/srv/ci", &["/srv/ci"], true),
        ("/srv/ci/x", &["/srv/ci"], true),
        ("/srv/ci/x", &["/srv/ci/"], true),
        ("/srv/ci/x", &["//srv//ci"], true),
        ("/srv/ci2", &["/srv/ci"], false),
        ("/srv", &["/srv/ci"], false),
        ("/etc", &[], false),
        ("/", &["/"], true),
        ("/etc", &["/"], true),
        ("/var/run/docker.sock", &["/"], false),
        ("/var/run/docker.sock", &["/var/run"], false),
        ("/var/run", &["/var"], false),
        ("/var/run", &["/var/run"], true),
        ("/var", &["/"], false),
        ("/run/docker.sock", &["/run"], false),
        ("/run/docker.sock", &["/run/docker.sock"], true),
        (
            "/run/containerd/containerd.sock",
            &["/run/containerd"],
            false,
        ),
        ("/var/run/docker.sock.bak", &["/var/run"], true),
    ];
    for (path, allowed, want) in cases {
        assert_eq!(
            host_path_allowed(path, &l(allowed)),
            *want,
            "{path} in {allowed:?}"
        );
    }
}

#[test]
fn inspect_glob() {
    let cases = [
        ("*", "", true),
        ("*", "abc", true),
        ("a*", "abc", true),
        ("*c", "abc", true),
        ("a*c", "abbbc", true),
        ("a*c", "abcd", false),
        ("ci-*", "ci-web", true),
        ("ci-*", "xci-web", false),
        ("*.*.x", "a.b.x", true),
        ("kernel.msg*", "kernel.msgmax", true),
        ("abc", "abc", true),
        ("abc", "abcd", false),
        ("a**b", "ab", true),
    ];
    for (p, t, want) in cases {
        assert_eq!(glob(p, t), want, "{p} ~ {t}");
    }
}

#[test]
fn inspect_user_is_root() {
    let cases = [
        ("", true),
        ("0", true),
        ("00", true),
        ("+0", true),
        ("-0", true),
        ("0:0", true),
        ("root", true),
        ("root:x", true),
        ("root:1000", true),
        ("1000:0", true),
        ("1000:root", true),
        (":", true),
        ("1000", false),
        ("1000:1000", false),
        ("1000:", false),
        ("app", false),
        ("app:app", false),
        ("ROOT", false),
        ("nobody:nogroup", false),
        ("10", false),
        ("0x0", false),
    ];
    for (u, want) in cases {
        assert_eq!(user_is_root(u), want, "{u:?}");
    }
}

#[test]
fn inspect_normalize_cap() {
    let cases = [
        ("SYS_ADMIN", Some("SYS_ADMIN")),
        ("cap_sys_admin", Some("SYS_ADMIN")),
        ("Cap_Net_Admin", Some("NET_ADMIN")),
        ("ALL", Some("ALL")),
        ("all", Some("ALL")),
        ("CAP_ALL", Some("ALL")),
        ("ſys_admin", None),
    ];
    for (c, want) in cases {
        assert_eq!(normalize_cap(c).as_deref(), want, "{c}");
    }
}

#[test]
fn inspect_normalize_image() {
    let ok = [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("user/app", "docker.io/user/app:latest"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
        ("localhost/app", "localhost/app:latest"),
        ("registry:5000/app", "registry:5000/app:latest"),
        ("registry:5000/app:2", "registry:5000/app:2"),
        ("cafe:1", "docker.io/library/cafe:1"),
        (
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ];
    for (input, want) in ok {
        assert_eq!(
            normalize_image(input).map(|r| r.full()),
            Ok(want.to_string()),
            "{input}"
        );
    }
    let bad = [
        "",
        "Busybox",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "cafe",
        "abc123",
        "busybox:",
        "busybox@sha256:12",
        "a//b",
        "-x",
    ];
    for input in bad {
        assert!(normalize_image(input).is_err(), "{input}");
    }
}

#[test]
fn inspect_sizes() {
    let ram = [
        ("10", Some(10)),
        ("10k", Some(10 * 1024)),
        ("10m", Some(10 << 20)),
        ("10MB", Some(10 << 20)),
        ("10 MiB", Some(10 << 20)),
        ("1.5g", Some(3 << 29)),
        ("-1", None),
        ("10x", None),
        ("", None),
        ("m", None),
    ];
    for (s, want) in ram {
        assert_eq!(ram_in_bytes(s), want, "{s}");
    }
    let kern = [
        ("64m", Some(64 << 20)),
        ("1G", Some(1 << 30)),
        ("4096", Some(4096)),
        ("0", Some(0)),
        ("010m", None),
        ("50%", None),
        ("1.5g", None),
        ("", None),
        ("99999999999999999999", None),
        ("9000000000000e", None),
    ];
    for (s, want) in kern {
        assert_eq!(kernel_size(s), want, "{s}");
    }
}

#[test]
fn inspect_go_bool() {
    for f in ["", "0", "no", "false", "none", " FALSE ", "No", "NONE"] {
        assert!(!go_bool(f), "{f:?}");
    }
    for t in ["1", "true", "yes", "on", "2", "x", "f"] {
        assert!(go_bool(t), "{t:?}");
    }
}

#[test]
fn inspect_json_strings_at_word_boundaries() {
    // Plain runs are scanned eight bytes at a time: put each kind of special text at every
    // position of strings of every length around the word size, and compare with serde_json.
    let specials = [
        "\\\"",
        "\\\\",
        "\\n",
        "\\u00e9",
        "\\ud83d\\ude00",
        "é",
        "\u{1F600}",
        "",
    ];
    for len in 0..40 {
        for pos in 0..=len {
            for special in specials {
                let s = format!("{}{special}{}", "a".repeat(pos), "b".repeat(len - pos));
                let doc = format!("{{\"{s}\":[\"{s}\",\"{s}x\"]}}");
                let want: serde_json::Value = serde_json::from_str(&doc).unwrap();
                let got = parse(doc.as_bytes()).unwrap();
                let (wk, wv) = want.as_object().unwrap().iter().next().unwrap();
                let (gk, gv) = got.as_object().unwrap().entries().first().unwrap();
                assert_eq!(gk.as_str(), wk, "{doc}");
                let Value::Array(items) = gv else {
                    panic!("{doc}: {gv:?}")
                };
                let want_items: Vec<&str> = wv
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let got_items: Vec<&str> = items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => s.as_str(),
                        _ => "(not a string)",
                    })
                    .collect();
                assert_eq!(got_items, want_items, "{doc}");
            }
            for (bad, msg) in [
                ("\u{1}", "control character"),
                ("\n", "control character"),
                ("\\x", "invalid escape"),
            ] {
                let doc = format!("\"{}{bad}{}\"", "a".repeat(pos), "b".repeat(len - pos));
                let e = parse(doc.as_bytes()).unwrap_err();
                assert!(e.message.contains(msg), "{doc:?}: {e:?}");
            }
            let mut raw = format!("\"{}", "a".repeat(pos)).into_bytes();
            raw.push(0xff);
            raw.extend_from_slice(format!("{}\"", "b".repeat(len - pos)).as_bytes());
            let e = parse(&raw).unwrap_err();
            assert!(
                e.message
                    .contains(&format!("invalid UTF-8 in string at byte {}", pos + 1)),
                "{e:?}"
            );
            let unterminated = format!("\"{}", "a".repeat(len));
            assert!(parse(unterminated.as_bytes())
                .unwrap_err()
                .message
                .contains("unterminated"));
        }
    }
}

#[test]
fn inspect_json_key_checks_in_large_and_small_objects() {
    for n in [2usize, 5, 24, 25, 100, 300] {
        let fields: Vec<String> = (0..n).map(|i| format!("\"key{i}\":{i}")).collect();
        let fields = fields.join(",");
        let doc = format!("{{{fields}}}");
        let v = parse(doc.as_bytes()).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), n);
        assert!(o.as_struct().is_ok(), "{n}");
        // Exact duplicates are refused, also when written with escapes.
        for dup in ["\"key1\":0", "\"k\\u0065y1\":0"] {
            let e = parse(format!("{{{fields},{dup}}}").as_bytes()).unwrap_err();
            assert!(
                e.path == "key1" && e.message.contains("duplicate key \"key1\""),
                "{n}: {e:?}"
            );
        }
        // Keys equal after folding: a valid map, not a valid struct.
        let doc = format!("{{{fields},\"KEY1\":0}}");
        let v = parse(doc.as_bytes()).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), n + 1);
        let e = o.as_struct().unwrap_err();
        assert!(
            e.message.contains("\"key1\"") && e.message.contains("\"KEY1\""),
            "{n}: {e:?}"
        );
        // A non-ASCII key: a valid map, not a valid struct.
        let doc = format!("{{{fields},\"k\u{17f}\":0}}");
        let v = parse(doc.as_bytes()).unwrap();
        let e = v.as_object().unwrap().as_struct().unwrap_err();
        assert!(e.message.contains("non-ASCII"), "{n}: {e:?}");
        // Keys that only differ in bytes the quick check reads alike (`@` and `` ` ``, 0x40
        // and 0x60) are distinct fields.
        let doc = format!("{{{fields},\"a@\":1,\"a`\":2}}");
        let v = parse(doc.as_bytes()).unwrap();
        let o = v.as_object().unwrap();
        assert!(o.as_struct().is_ok(), "{n}");
        assert_eq!(o.field("A@").unwrap(), Some(&Value::Number("1")));
        assert_eq!(o.field("a`").unwrap(), Some(&Value::Number("2")));
    }
}
