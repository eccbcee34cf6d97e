//! Table-driven tests of normalization, query parsing and classification.

use std::collections::BTreeSet;

use http::{HeaderMap, HeaderValue, Method, Uri};

use super::operation::{pattern_tokens_ok, route_table};
use super::*;

/// What a normalization case expects.
enum N {
    /// Accepted: the version (as `(major, minor)`) and the decoded path.
    Ok(Option<(u16, u16)>, &'static str),
    /// Refused with this kind.
    Err(RouteErrorKind),
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

#[test]
fn normalization_table() {
    use RouteErrorKind as K;
    use N::{Err, Ok};
    let v41 = Some((1, 41));
    let cases: &[(&str, &str, N)] = &[
        // accepted forms
        ("GET", "/_ping", Ok(None, "/_ping")),
        ("HEAD", "/_ping", Ok(None, "/_ping")),
        ("GET", "/v1.41/_ping", Ok(v41, "/_ping")),
        ("GET", "/v1.24/_ping", Ok(Some((1, 24)), "/_ping")),
        ("GET", "/v01.041/_ping", Ok(v41, "/_ping")),
        ("GET", "/v1.41.0/_ping", Ok(v41, "/_ping")),
        ("GET", "/v1.41.0.0/_ping", Ok(v41, "/_ping")),
        ("GET", "/v1.56/info", Ok(Some((1, 56)), "/info")),
        ("GET", "/v2.0/info", Ok(Some((2, 0)), "/info")),
        ("GET", "/containers/json", Ok(None, "/containers/json")),
        (
            "GET",
            "/v1.41/containers/json?all=1",
            Ok(v41, "/containers/json"),
        ),
        (
            "GET",
            "/containers/a/b/json",
            Ok(None, "/containers/a/b/json"),
        ),
        ("GET", "/images/a/b:c/json", Ok(None, "/images/a/b:c/json")),
        (
            "GET",
            "/images/busybox%40sha256:abc/json",
            Ok(None, "/images/busybox@sha256:abc/json"),
        ),
        (
            "GET",
            "/containers/%61bc/json",
            Ok(None, "/containers/abc/json"),
        ),
        (
            "GET",
            "/containers/a%20b/json",
            Ok(None, "/containers/a b/json"),
        ),
        (
            "GET",
            "/containers/a+b/json",
            Ok(None, "/containers/a+b/json"),
        ),
        (
            "GET",
            "/containers/a.b/json",
            Ok(None, "/containers/a.b/json"),
        ),
        (
            "GET",
            "/containers/..a/json",
            Ok(None, "/containers/..a/json"),
        ),
        (
            "GET",
            "/containers/a../json",
            Ok(None, "/containers/a../json"),
        ),
        (
            "GET",
            "/containers/.../json",
            Ok(None, "/containers/.../json"),
        ),
        (
            "GET",
            "/containers/a%3Fb/json",
            Ok(None, "/containers/a?b/json"),
        ),
        ("GET", "/networks/", Ok(None, "/networks/")),
        ("GET", "/v1.41/networks/", Ok(v41, "/networks/")),
        ("GET", "/debug/pprof/", Ok(None, "/debug/pprof/")),
        ("GET", "/", Ok(None, "/")),
        ("GET", "/v1.41/", Ok(v41, "/")),
        ("GET", "/version", Ok(None, "/version")),
        ("GET", "/volumes", Ok(None, "/volumes")),
        ("GET", "/v1.41/v1.41/_ping", Ok(v41, "/v1.41/_ping")),
        ("GET", "/%761.41/_ping", Ok(v41, "/_ping")),
        ("GET", "/Containers/json", Ok(None, "/Containers/json")),
        ("GET", "/vx/_ping", Ok(None, "/vx/_ping")),
        ("OPTIONS", "/anything/at/all", Ok(None, "/anything/at/all")),
        (
            "PUT",
            "/containers/x/archive?path=/",
            Ok(None, "/containers/x/archive"),
        ),
        ("DELETE", "/containers/x?force=1", Ok(None, "/containers/x")),
        (
            "POST",
            "/containers/create?name=a",
            Ok(None, "/containers/create"),
        ),
        // methods
        ("get", "/_ping", Err(K::Method)),
        ("Get", "/_ping", Err(K::Method)),
        ("TRACE", "/_ping", Err(K::Method)),
        ("PATCH", "/containers/x/json", Err(K::Method)),
        ("CONNECT", "/_ping", Err(K::Method)),
        ("PROPFIND", "/debug/vars", Err(K::Method)),
        // not origin form
        ("GET", "http://docker/_ping", Err(K::NotOriginForm)),
        ("OPTIONS", "*", Err(K::NotOriginForm)),
        // dot segments, literal and encoded
        ("GET", "/containers/../_ping", Err(K::DotSegment)),
        ("GET", "/v1.41/containers/../_ping", Err(K::DotSegment)),
        ("GET", "/containers/./json", Err(K::DotSegment)),
        ("GET", "/..", Err(K::DotSegment)),
        ("GET", "/.", Err(K::DotSegment)),
        ("GET", "/containers/a/..", Err(K::DotSegment)),
        ("GET", "/containers/%2E%2E/json", Err(K::EncodedDot)),
        ("GET", "/containers/%2e/json", Err(K::EncodedDot)),
        ("GET", "/containers/.%2E/json", Err(K::EncodedDot)),
        ("GET", "/containers/a%2Eb/json", Err(K::EncodedDot)),
        // empty segments and trailing slashes
        ("GET", "//containers/json", Err(K::EmptySegment)),
        ("GET", "/containers//json", Err(K::EmptySegment)),
        ("GET", "/v1.41//containers/json", Err(K::EmptySegment)),
        ("GET", "//", Err(K::EmptySegment)),
        ("GET", "/containers/json/", Err(K::TrailingSlash)),
        ("GET", "/volumes/", Err(K::TrailingSlash)),
        ("DELETE", "/containers/", Err(K::TrailingSlash)),
        ("DELETE", "/images/", Err(K::TrailingSlash)),
        ("GET", "/v1.41/volumes/", Err(K::TrailingSlash)),
        ("GET", "/networks/x/", Err(K::TrailingSlash)),
        ("GET", "/debug/pprof/heap/", Err(K::TrailingSlash)),
        ("GET", "/_ping/", Err(K::TrailingSlash)),
        // encoded slash, backslash, percent
        ("GET", "/containers/a%2Fb/json", Err(K::EncodedSlash)),
        ("GET", "/containers/a%2fb/json", Err(K::EncodedSlash)),
        ("GET", "/containers/%2Fweb/json", Err(K::EncodedSlash)),
        ("GET", "/containers/a%5Cb/json", Err(K::Backslash)),
        ("GET", "/containers/a\\b/json", Err(K::Backslash)),
        ("GET", "/containers/a%252Fb/json", Err(K::DoubleEncoding)),
        ("GET", "/containers/a%25/json", Err(K::DoubleEncoding)),
        // control bytes and non-ASCII
        ("GET", "/containers/a%00b/json", Err(K::ControlByte)),
        ("GET", "/containers/a%0Ab/json", Err(K::ControlByte)),
        ("GET", "/containers/a%0db/json", Err(K::ControlByte)),
        ("GET", "/containers/a%09b/json", Err(K::ControlByte)),
        ("GET", "/containers/a%7Fb/json", Err(K::ControlByte)),
        ("GET", "/containers/a%C3%A9/json", Err(K::NonAscii)),
        ("GET", "/containers/a%FF/json", Err(K::NonAscii)),
        ("GET", "/containers/\u{e9}/json", Err(K::NonAscii)),
        // escapes
        ("GET", "/containers/%zz/json", Err(K::BadEscape)),
        ("GET", "/containers/%4/json", Err(K::BadEscape)),
        ("GET", "/containers/x%", Err(K::BadEscape)),
        ("GET", "/containers/x%4", Err(K::BadEscape)),
        ("GET", "/containers/%%41/json", Err(K::BadEscape)),
        ("GET", "/containers/%G0/json", Err(K::BadEscape)),
        // versions
        ("GET", "/v1.23/_ping", Err(K::VersionTooOld)),
        ("GET", "/v1.12/containers/x/start", Err(K::VersionTooOld)),
        ("GET", "/v0.99/_ping", Err(K::VersionTooOld)),
        ("GET", "/v1.023/_ping", Err(K::VersionTooOld)),
        ("GET", "/v/_ping", Err(K::BadVersion)),
        ("GET", "/v./_ping", Err(K::BadVersion)),
        ("GET", "/v1..41/_ping", Err(K::BadVersion)),
        ("GET", "/v1.41./_ping", Err(K::BadVersion)),
        ("GET", "/v.41/_ping", Err(K::BadVersion)),
        ("GET", "/v1/_ping", Err(K::BadVersion)),
        ("GET", "/v1.41.1/_ping", Err(K::BadVersion)),
        ("GET", "/v1.41.0.0.0/_ping", Err(K::BadVersion)),
        ("GET", "/v1.1000/_ping", Err(K::BadVersion)),
        ("GET", "/v99999999999999999999.41/_ping", Err(K::BadVersion)),
        ("GET", "/V1.41/_ping", Err(K::BadVersion)),
        ("GET", "/v1.41", Err(K::BadVersion)),
        ("GET", "/v", Err(K::BadVersion)),
        // query
        ("GET", "/containers/json?all=1;x=y", Err(K::QuerySemicolon)),
        ("GET", "/_ping?;", Err(K::QuerySemicolon)),
        (
            "GET",
            "/containers/json?all=%3B",
            Ok(None, "/containers/json"),
        ),
        ("GET", "/containers/json?all=%zz", Err(K::QueryEncoding)),
        ("GET", "/containers/json?all=%4", Err(K::QueryEncoding)),
        ("GET", "/containers/json?a%zz=1", Err(K::QueryEncoding)),
        ("GET", "/containers/json?all=%00", Err(K::QueryEncoding)),
        ("GET", "/containers/json?all=%1B", Err(K::QueryEncoding)),
        ("GET", "/containers/json?all=%FF", Err(K::QueryEncoding)),
    ];
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (m, target, want) in cases {
        let uri: Uri = match target.parse() {
            Result::Ok(uri) => uri,
            Result::Err(e) => panic!("test target {target:?} does not parse: {e}"),
        };
        let got = normalize(&method(m), &uri);
        let ok = match (&got, want) {
            (Result::Ok(n), Ok(version, path)) => {
                n.version == version.map(|(a, b)| ApiVersion::new(a, b)) && n.path == *path
            }
            (Result::Err(e), Err(kind)) => e.kind() == *kind,
            _ => false,
        };
        if !ok {
            failures.push(format!("{m} {target}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn long_paths_refused() {
    let ok = format!("/containers/{}/json", "a".repeat(MAX_PATH_LEN - 17));
    assert_eq!(ok.len(), MAX_PATH_LEN);
    assert!(normalize(&Method::GET, &ok.parse().unwrap()).is_ok());
    let long = format!("/containers/{}/json", "a".repeat(MAX_PATH_LEN - 16));
    let err = normalize(&Method::GET, &long.parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), RouteErrorKind::PathTooLong);
}

#[test]
fn normalized_keeps_raw_path_and_query() {
    let uri: Uri = "/v1.41/containers/a%20b/json?size=1&x=%2F".parse().unwrap();
    let n = normalize(&Method::GET, &uri).unwrap();
    assert_eq!(n.raw_path, "/v1.41/containers/a%20b/json");
    assert_eq!(n.path, "/containers/a b/json");
    assert_eq!(n.query.get("x"), Some("/"));
    assert_eq!(n.query.get("size"), Some("1"));
}

#[test]
fn error_messages_say_what_and_why() {
    let err = normalize(&Method::GET, &"/containers/../_ping".parse().unwrap()).unwrap_err();
    assert!(err.message().contains("GET /containers/../_ping"), "{err}");
    assert!(err.message().contains("\"..\" segment"), "{err}");
    let err = normalize(&Method::GET, &"/v1.12/_ping".parse().unwrap()).unwrap_err();
    assert!(err.message().contains("1.12 is below 1.24"), "{err}");
    let err = normalize(&method("get"), &"/_ping".parse().unwrap()).unwrap_err();
    assert!(err.message().contains("method get"), "{err}");
    let proxy: crate::error::ProxyError = err.into();
    assert_eq!(proxy.status(), http::StatusCode::BAD_REQUEST);
    // Control characters never reach a message unescaped.
    let err = Query::parse("a=%zz\u{1b}").unwrap_err();
    assert!(!err.message().contains('\u{1b}'), "{err}");
}

#[test]
fn api_versions() {
    assert_eq!(ApiVersion::parse("1.41"), Ok(ApiVersion::new(1, 41)));
    assert_eq!(ApiVersion::parse("01.041"), Ok(ApiVersion::new(1, 41)));
    assert!(ApiVersion::new(1, 9) < ApiVersion::new(1, 24));
    assert!(ApiVersion::new(1, 41) < ApiVersion::new(2, 0));
    assert_eq!(ApiVersion::new(1, 41).to_string(), "1.41");
    for bad in [
        "",
        ".",
        "1.",
        ".1",
        "1..2",
        "1",
        "a.b",
        "1.41.2",
        "1.1000",
        "1.0000001",
    ] {
        assert!(ApiVersion::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn query_parsing() {
    let q = Query::parse("a=1&b=x+y&a=2&&c&=e&d=%2B%20%26&t=caf%C3%A9").unwrap();
    assert_eq!(q.get("a"), Some("1"));
    assert_eq!(q.get_all("a"), vec!["1", "2"]);
    assert!(q.has_repeated("a"));
    assert!(!q.has_repeated("b"));
    assert_eq!(q.get("b"), Some("x y"));
    assert_eq!(q.get("c"), Some(""));
    assert!(q.contains("c"));
    assert_eq!(q.get(""), Some("e"));
    assert_eq!(q.get("d"), Some("+ &"));
    assert_eq!(q.get("t"), Some("café"));
    assert_eq!(q.get("missing"), None);
    assert_eq!(q.get("A"), None, "keys are case-sensitive");
    assert_eq!(q.pairs().len(), 7);
    assert_eq!(q.pairs()[0], ("a".to_owned(), "1".to_owned()));
    assert!(Query::parse("").unwrap().is_empty());
    assert!(Query::parse("&&").unwrap().is_empty());
    // Line breaks are allowed in values (commit messages), other controls are not.
    assert_eq!(
        Query::parse("comment=a%0Ab").unwrap().get("comment"),
        Some("a\nb")
    );
    for bad in [
        "a=1;b=2", "a;", "a=%", "a=%2", "a=%g1", "%=1", "a=%00", "a=%C3",
    ] {
        assert!(Query::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn query_booleans_like_docker() {
    let cases = [
        ("", Some(false)),
        ("0", Some(false)),
        ("no", Some(false)),
        ("false", Some(false)),
        ("none", Some(false)),
        ("FALSE", Some(false)),
        ("No", Some(false)),
        ("NONE", Some(false)),
        ("%20false%20", Some(false)),
        ("%09no", Some(false)),
        ("%C2%A0false", Some(false)),
        ("1", Some(true)),
        ("true", Some(true)),
        ("yes", Some(true)),
        ("off", Some(true)),
        ("00", Some(true)),
        ("f", Some(true)),
        ("nope", Some(true)),
    ];
    for (value, want) in cases {
        let q = Query::parse(&format!("force={value}")).unwrap();
        assert_eq!(q.bool("force"), want, "force={value}");
    }
    let q = Query::parse("force&v=0&v=1").unwrap();
    assert_eq!(
        q.bool("force"),
        Some(false),
        "a bare key is empty, so false"
    );
    assert_eq!(q.bool("v"), Some(false), "the first value wins");
    assert_eq!(q.bool("absent"), None);
    assert!(q.bool_or("absent", true));
    assert!(!q.bool_or("v", true));
}

#[test]
fn content_types() {
    let check = |values: &[&str]| {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                http::header::CONTENT_TYPE,
                HeaderValue::from_str(v).unwrap(),
            );
        }
        check_content_type(&headers)
    };
    for ok in [
        &[][..],
        &["application/json"],
        &["Application/JSON; charset=utf-8"],
        &["application/x-tar"],
        &["text/plain"],
        &["application/x-www-form-urlencodedx"],
        &["multipart/mixed; boundary=x"],
    ] {
        assert!(check(ok).is_ok(), "{ok:?}");
    }
    for bad in [
        &["application/x-www-form-urlencoded"][..],
        &["Application/X-WWW-Form-Urlencoded"],
        &["application/x-www-form-urlencoded; charset=utf-8"],
        &[" application/x-www-form-urlencoded ;x"],
        &["application/x-www-form-urlencoded;;garbage"],
        &["multipart/form-data; boundary=xyz"],
        &["MULTIPART/FORM-DATA"],
        &["\tmultipart/form-data"],
        &["application/json", "application/x-www-form-urlencoded"],
        &["application/json", "application/json"],
    ] {
        let err = check(bad).unwrap_err();
        assert_eq!(err.kind(), RouteErrorKind::ContentType, "{bad:?}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_bytes(b"application/x-www-form-urlencoded\xe2\x84\xaa").unwrap(),
    );
    assert!(check_content_type(&headers).is_err(), "non-ASCII refused");
}

/// Normalizes and classifies one request.
fn classify_target(m: &str, target: &str) -> Operation {
    let method = method(m);
    let n = normalize(&method, &target.parse().unwrap())
        .unwrap_or_else(|e| panic!("{m} {target} refused: {e}"));
    classify(&method, &n.path, &n.query)
}

#[test]
fn classification_table() {
    // (method, target, operation, object, sub)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        ("GET", "/containers/json", "container.list", None, None),
        (
            "GET",
            "/v1.41/containers/json",
            "container.list",
            None,
            None,
        ),
        ("POST", "/containers/create", "container.create", None, None),
        (
            "GET",
            "/containers/a/json",
            "container.inspect",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/json/json",
            "container.inspect",
            Some("json"),
            None,
        ),
        (
            "GET",
            "/containers/a/b/json",
            "container.inspect",
            Some("a/b"),
            None,
        ),
        (
            "GET",
            "/containers/a/json/json",
            "container.inspect",
            Some("a/json"),
            None,
        ),
        ("GET", "/containers/a/top", "container.top", Some("a"), None),
        (
            "GET",
            "/containers/a/logs",
            "container.logs",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/a/stats",
            "container.stats",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/a/changes",
            "container.changes",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/a/export",
            "container.export",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/a/archive?path=/",
            "container.archive.get",
            Some("a"),
            None,
        ),
        (
            "HEAD",
            "/containers/a/archive?path=/",
            "container.archive.head",
            Some("a"),
            None,
        ),
        (
            "PUT",
            "/containers/a/archive?path=/",
            "container.archive.put",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/start",
            "container.start",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/stop",
            "container.stop",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/restart",
            "container.restart",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/kill",
            "container.kill",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/pause",
            "container.pause",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/unpause",
            "container.unpause",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/wait",
            "container.wait",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/resize",
            "container.resize",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/attach",
            "container.attach",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/b/attach",
            "container.attach",
            Some("a/b"),
            None,
        ),
        (
            "GET",
            "/containers/a/attach/ws",
            "container.attach.websocket",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/rename?name=b",
            "container.rename",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/update",
            "container.update",
            Some("a"),
            None,
        ),
        ("POST", "/containers/prune", "container.prune", None, None),
        (
            "DELETE",
            "/containers/a",
            "container.delete",
            Some("a"),
            None,
        ),
        (
            "DELETE",
            "/containers/a/b",
            "container.delete",
            Some("a/b"),
            None,
        ),
        (
            "POST",
            "/commit?container=a",
            "container.commit",
            None,
            None,
        ),
        (
            "POST",
            "/containers/a/copy",
            "container.copy",
            Some("a"),
            None,
        ),
        (
            "GET",
            "/containers/a/checkpoints",
            "container.checkpoint.list",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/containers/a/checkpoints",
            "container.checkpoint.create",
            Some("a"),
            None,
        ),
        (
            "DELETE",
            "/containers/a/checkpoints/c1",
            "container.checkpoint.delete",
            Some("a"),
            Some("c1"),
        ),
        // {name} has no '/': this is a container delete of "a/b/checkpoints/c1".
        (
            "DELETE",
            "/containers/a/b/checkpoints/c1",
            "container.delete",
            Some("a/b/checkpoints/c1"),
            None,
        ),
        ("POST", "/containers/a/exec", "exec.create", Some("a"), None),
        ("POST", "/exec/x/start", "exec.start", Some("x"), None),
        ("POST", "/exec/x/resize", "exec.resize", Some("x"), None),
        ("GET", "/exec/x/json", "exec.inspect", Some("x"), None),
        ("GET", "/images/json", "image.list", None, None),
        ("GET", "/images/search?term=x", "image.search", None, None),
        ("GET", "/images/get?names=a", "image.save", None, None),
        (
            "GET",
            "/images/a/b:c/get",
            "image.save",
            Some("a/b:c"),
            None,
        ),
        ("GET", "/images/a/history", "image.history", Some("a"), None),
        (
            "GET",
            "/images/a/b:c/json",
            "image.inspect",
            Some("a/b:c"),
            None,
        ),
        (
            "GET",
            "/images/reg:5000/a/b@sha256:00/json",
            "image.inspect",
            Some("reg:5000/a/b@sha256:00"),
            None,
        ),
        (
            "GET",
            "/images/json/json",
            "image.inspect",
            Some("json"),
            None,
        ),
        (
            "GET",
            "/images/a/attestations",
            "image.attestations",
            Some("a"),
            None,
        ),
        ("POST", "/images/load", "image.load", None, None),
        (
            "POST",
            "/images/create?fromImage=busybox&tag=1",
            "image.pull",
            None,
            None,
        ),
        (
            "POST",
            "/images/create?fromSrc=-&repo=x",
            "image.import",
            None,
            None,
        ),
        (
            "POST",
            "/images/create?fromImage=a&fromSrc=-",
            "image.import",
            None,
            None,
        ),
        (
            "POST",
            "/images/create?fromImage=&fromSrc=-",
            "image.import",
            None,
            None,
        ),
        (
            "POST",
            "/images/create?fromImage=",
            "image.import",
            None,
            None,
        ),
        ("POST", "/images/create?repo=x", "image.import", None, None),
        ("POST", "/images/create", "image.import", None, None),
        ("POST", "/images/a/b/push", "image.push", Some("a/b"), None),
        ("POST", "/images/a/tag?repo=b", "image.tag", Some("a"), None),
        ("POST", "/images/prune", "image.prune", None, None),
        (
            "DELETE",
            "/images/a/b:c",
            "image.delete",
            Some("a/b:c"),
            None,
        ),
        ("POST", "/build", "image.build", None, None),
        ("POST", "/build/prune", "build.prune", None, None),
        ("POST", "/build/cancel?id=x", "build.cancel", None, None),
        ("POST", "/session", "build.session", None, None),
        ("POST", "/grpc", "build.grpc", None, None),
        ("GET", "/_ping", "system.ping", None, None),
        ("HEAD", "/_ping", "system.ping", None, None),
        ("GET", "/events", "system.events", None, None),
        ("GET", "/info", "system.info", None, None),
        ("GET", "/version", "system.version", None, None),
        ("GET", "/system/df", "system.df", None, None),
        ("POST", "/auth", "system.auth", None, None),
        ("OPTIONS", "/containers/json", "system.options", None, None),
        ("OPTIONS", "/anything/at/all", "system.options", None, None),
        ("OPTIONS", "/debug/vars", "system.options", None, None),
        ("GET", "/debug/vars", "system.debug", None, None),
        ("POST", "/debug/vars", "system.debug", None, None),
        (
            "DELETE",
            "/debug/pprof/heap",
            "system.debug",
            Some("heap"),
            None,
        ),
        ("HEAD", "/debug/pprof/", "system.debug", None, None),
        (
            "PUT",
            "/debug/pprof/cmdline",
            "system.debug",
            Some("cmdline"),
            None,
        ),
        ("GET", "/v1.41/debug/vars", "system.debug", None, None),
        ("GET", "/volumes", "volume.list", None, None),
        ("GET", "/volumes/a", "volume.inspect", Some("a"), None),
        (
            "GET",
            "/volumes/create",
            "volume.inspect",
            Some("create"),
            None,
        ),
        ("POST", "/volumes/create", "volume.create", None, None),
        ("POST", "/volumes/prune", "volume.prune", None, None),
        ("PUT", "/volumes/a", "volume.update", Some("a"), None),
        ("DELETE", "/volumes/a", "volume.delete", Some("a"), None),
        ("GET", "/networks", "network.list", None, None),
        ("GET", "/networks/", "network.list", None, None),
        ("GET", "/networks/a", "network.inspect", Some("a"), None),
        ("GET", "/networks/a/b", "network.inspect", Some("a/b"), None),
        ("POST", "/networks/create", "network.create", None, None),
        (
            "POST",
            "/networks/a/connect",
            "network.connect",
            Some("a"),
            None,
        ),
        (
            "POST",
            "/networks/a/disconnect",
            "network.disconnect",
            Some("a"),
            None,
        ),
        ("POST", "/networks/prune", "network.prune", None, None),
        ("DELETE", "/networks/a", "network.delete", Some("a"), None),
        ("POST", "/swarm/init", "swarm.init", None, None),
        ("POST", "/swarm/join", "swarm.join", None, None),
        ("POST", "/swarm/leave", "swarm.leave", None, None),
        ("GET", "/swarm", "swarm.inspect", None, None),
        ("GET", "/swarm/unlockkey", "swarm.unlockkey", None, None),
        ("POST", "/swarm/update", "swarm.update", None, None),
        ("POST", "/swarm/unlock", "swarm.unlock", None, None),
        ("GET", "/services", "service.list", None, None),
        ("GET", "/services/s", "service.inspect", Some("s"), None),
        ("POST", "/services/create", "service.create", None, None),
        (
            "POST",
            "/services/s/update",
            "service.update",
            Some("s"),
            None,
        ),
        ("DELETE", "/services/s", "service.delete", Some("s"), None),
        ("GET", "/services/s/logs", "service.logs", Some("s"), None),
        ("GET", "/nodes", "node.list", None, None),
        ("GET", "/nodes/n", "node.inspect", Some("n"), None),
        ("DELETE", "/nodes/n", "node.delete", Some("n"), None),
        ("POST", "/nodes/n/update", "node.update", Some("n"), None),
        ("GET", "/tasks", "task.list", None, None),
        ("GET", "/tasks/t", "task.inspect", Some("t"), None),
        ("GET", "/tasks/t/logs", "task.logs", Some("t"), None),
        ("GET", "/secrets", "secret.list", None, None),
        ("POST", "/secrets/create", "secret.create", None, None),
        ("DELETE", "/secrets/s", "secret.delete", Some("s"), None),
        ("GET", "/secrets/s", "secret.inspect", Some("s"), None),
        (
            "POST",
            "/secrets/s/update",
            "secret.update",
            Some("s"),
            None,
        ),
        ("GET", "/configs", "config.list", None, None),
        ("POST", "/configs/create", "config.create", None, None),
        ("DELETE", "/configs/c", "config.delete", Some("c"), None),
        ("GET", "/configs/c", "config.inspect", Some("c"), None),
        (
            "POST",
            "/configs/c/update",
            "config.update",
            Some("c"),
            None,
        ),
        ("GET", "/plugins", "plugin.list", None, None),
        (
            "GET",
            "/plugins/a/b:c/json",
            "plugin.inspect",
            Some("a/b:c"),
            None,
        ),
        (
            "GET",
            "/plugins/privileges?remote=x",
            "plugin.privileges",
            None,
            None,
        ),
        ("DELETE", "/plugins/p", "plugin.delete", Some("p"), None),
        (
            "POST",
            "/plugins/p/enable",
            "plugin.enable",
            Some("p"),
            None,
        ),
        (
            "POST",
            "/plugins/p/disable",
            "plugin.disable",
            Some("p"),
            None,
        ),
        ("POST", "/plugins/pull?remote=x", "plugin.pull", None, None),
        ("POST", "/plugins/p/push", "plugin.push", Some("p"), None),
        (
            "POST",
            "/plugins/p/upgrade",
            "plugin.upgrade",
            Some("p"),
            None,
        ),
        ("POST", "/plugins/p/set", "plugin.set", Some("p"), None),
        (
            "POST",
            "/plugins/create?name=p",
            "plugin.create",
            None,
            None,
        ),
        (
            "POST",
            "/plugins/pull/push",
            "plugin.push",
            Some("pull"),
            None,
        ),
        (
            "GET",
            "/distribution/a/b:c/json",
            "distribution.inspect",
            Some("a/b:c"),
            None,
        ),
        // unknown: wrong method, wrong case, no such route
        ("GET", "/containers/create", "unknown", None, None),
        ("POST", "/containers/json", "unknown", None, None),
        ("HEAD", "/containers/json", "unknown", None, None),
        ("HEAD", "/containers/a/json", "unknown", None, None),
        ("PUT", "/containers/a/json", "unknown", None, None),
        ("GET", "/Containers/json", "unknown", None, None),
        ("GET", "/containers/JSON", "unknown", None, None),
        ("GET", "/containers", "unknown", None, None),
        ("GET", "/containers/a", "unknown", None, None),
        ("GET", "/", "unknown", None, None),
        ("GET", "/v1.41/", "unknown", None, None),
        ("GET", "/nope", "unknown", None, None),
        ("GET", "/v1.41/v1.41/_ping", "unknown", None, None),
        ("GET", "/vx/_ping", "unknown", None, None),
        ("GET", "/services/a/b", "unknown", None, None),
        ("DELETE", "/services/a/b", "unknown", None, None),
        ("GET", "/nodes/a/b", "unknown", None, None),
        ("GET", "/debug/pprof/a/b", "unknown", None, None),
        ("GET", "/debug/nope", "unknown", None, None),
        ("GET", "/debug", "unknown", None, None),
        ("GET", "/session", "unknown", None, None),
        ("GET", "/grpc", "unknown", None, None),
        ("POST", "/commit/x", "unknown", None, None),
        ("GET", "/exec/x/start", "unknown", None, None),
        ("POST", "/exec/x", "unknown", None, None),
        ("DELETE", "/exec/x", "unknown", None, None),
        ("GET", "/images/a", "unknown", None, None),
        ("DELETE", "/networks", "unknown", None, None),
        ("GET", "/swarm/init", "unknown", None, None),
        ("PUT", "/volumes", "unknown", None, None),
        ("GET", "/_ping/x", "unknown", None, None),
        ("GET", "/libpod/containers/json", "unknown", None, None),
    ];
    let mut failures = Vec::new();
    for (m, target, name, object, sub) in cases {
        let op = classify_target(m, target);
        if op.name != *name || op.object.as_deref() != *object || op.sub.as_deref() != *sub {
            failures.push(format!(
                "{m} {target}: want {name} {object:?} {sub:?}, got {} {:?} {:?}",
                op.name, op.object, op.sub
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every operation but `unknown` has a case above.
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.2).collect();
    let missing: Vec<&str> = OPERATIONS
        .iter()
        .copied()
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(missing.is_empty(), "operations without a case: {missing:?}");
}

#[test]
fn extension_methods_on_debug_routes_are_still_debug() {
    // normalize refuses them, but classify alone must not call them unknown: the daemon serves
    // /debug/* for any method.
    let op = classify(&method("get"), "/debug/vars", &Query::default());
    assert_eq!(op.name, "system.debug");
    let op = classify(&method("get"), "/containers/json", &Query::default());
    assert_eq!(op.name, "unknown");
}

#[test]
fn operations_table_is_consistent() {
    let names: BTreeSet<&str> = OPERATIONS.iter().copied().collect();
    assert_eq!(names.len(), OPERATIONS.len(), "duplicate operation names");
    assert_eq!(OPERATIONS.len(), OPERATION_TABLE.len());
    assert_eq!(OPERATIONS.last(), Some(&UNKNOWN));
    for (name, info) in OPERATIONS.iter().zip(OPERATION_TABLE) {
        assert_eq!(*name, info.name);
        assert_eq!(operation_info(name), Some(info));
    }
    // Every route names a known operation and uses a pattern the matcher understands.
    for (_, pattern, name) in route_table() {
        assert!(pattern_tokens_ok(pattern), "{pattern}");
        assert!(
            name == "image.pull" || names.contains(name),
            "route {pattern} names {name}"
        );
    }
    // Access classes and danger flags the policy relies on.
    let expect = [
        ("container.list", Access::Read, false),
        ("container.create", Access::Write, false),
        ("container.attach", Access::Exec, true),
        ("container.attach.websocket", Access::Exec, true),
        ("exec.create", Access::Exec, true),
        ("exec.start", Access::Exec, true),
        ("exec.resize", Access::Write, false),
        ("build.session", Access::Tunnel, true),
        ("build.grpc", Access::Tunnel, true),
        ("container.wait", Access::Read, false),
        ("container.archive.get", Access::Read, true),
        ("container.archive.head", Access::Read, true),
        ("container.archive.put", Access::Write, true),
        ("container.export", Access::Read, true),
        ("container.copy", Access::Read, true),
        ("container.commit", Access::Write, true),
        ("image.save", Access::Read, true),
        ("image.load", Access::Write, true),
        ("image.import", Access::Write, true),
        ("image.pull", Access::Write, false),
        ("image.push", Access::Write, true),
        ("system.debug", Access::Read, true),
        ("system.auth", Access::Write, true),
        ("swarm.unlockkey", Access::Read, true),
        ("swarm.inspect", Access::Read, true),
        ("swarm.init", Access::Write, true),
        ("service.create", Access::Write, true),
        ("service.update", Access::Write, true),
        ("secret.inspect", Access::Read, false),
        ("plugin.enable", Access::Write, true),
        ("plugin.list", Access::Read, false),
        ("system.ping", Access::Read, false),
        ("unknown", Access::Write, true),
    ];
    for (name, access, dangerous) in expect {
        let info = operation_info(name).unwrap();
        assert_eq!(
            (info.access, info.dangerous()),
            (access, dangerous),
            "{name}"
        );
    }
    // Every plugin write is dangerous.
    for info in OPERATION_TABLE {
        if info.name.starts_with("plugin.") && info.access == Access::Write {
            assert!(info.dangerous(), "{}", info.name);
        }
        if info.name.starts_with("swarm.") {
            assert!(info.dangerous(), "{}", info.name);
        }
    }
}

#[test]
fn operations_carry_access_and_hijack() {
    let cases = [
        (
            "POST",
            "/containers/a/attach",
            Some(Hijack::Attach),
            Access::Exec,
        ),
        (
            "GET",
            "/containers/a/attach/ws",
            Some(Hijack::AttachWebsocket),
            Access::Exec,
        ),
        (
            "POST",
            "/exec/a/start",
            Some(Hijack::ExecStart),
            Access::Exec,
        ),
        ("POST", "/session", Some(Hijack::Session), Access::Tunnel),
        ("POST", "/grpc", Some(Hijack::Grpc), Access::Tunnel),
        ("GET", "/containers/a/json", None, Access::Read),
        ("GET", "/nope", None, Access::Write),
    ];
    for (m, target, hijack, access) in cases {
        let op = classify_target(m, target);
        assert_eq!(op.hijack, hijack, "{m} {target}");
        assert_eq!(op.access, access, "{m} {target}");
    }
    assert!(classify_target("GET", "/nope").is_unknown());
    assert!(classify_target("GET", "/nope").is_dangerous());
    assert!(!classify_target("GET", "/_ping").is_dangerous());
}

/// The hijack endpoint a raw (still percent-encoded) path addresses, as the request path decides
/// it: normalize, then classify; a path `normalize` refuses is no hijack.
fn hijack_endpoint(method: &Method, path: &str) -> Option<Hijack> {
    let uri: http::Uri = path.parse().ok()?;
    let normalized = normalize(method, &uri).ok()?;
    classify(method, &normalized.path, &normalized.query).hijack
}

#[test]
fn hijack_endpoint_reads_raw_paths() {
    let post = Method::POST;
    let get = Method::GET;
    let cases = [
        (&post, "/v1.41/containers/abc/attach", Some(Hijack::Attach)),
        (&post, "/containers/a/b/attach", Some(Hijack::Attach)),
        (&post, "/containers/a%20b/attach", Some(Hijack::Attach)),
        (
            &get,
            "/containers/abc/attach/ws",
            Some(Hijack::AttachWebsocket),
        ),
        (&post, "/v1.41/exec/123/start", Some(Hijack::ExecStart)),
        (&post, "/session", Some(Hijack::Session)),
        (&post, "/v1.41/grpc", Some(Hijack::Grpc)),
        (&post, "/%73ession", Some(Hijack::Session)),
        (&get, "/containers/abc/attach", None),
        (&post, "/containers//attach", None),
        (&post, "/containers/abc/json", None),
        (&post, "/exec/abc/resize", None),
        (&get, "/session", None),
        (&post, "/v1.23/containers/abc/attach", None),
        (&post, "/containers/a%2F/attach", None),
        (&post, "/containers/x/../attach", None),
        (&post, "/containers/abc/attach/", None),
    ];
    for (method, path, want) in cases {
        assert_eq!(hijack_endpoint(method, path), want, "{method} {path}");
    }
}

#[test]
fn escape_object_round_trips() {
    for name in [
        "web",
        "a/b:c",
        "reg:5000/a@sha256:00",
        "a b",
        "a?b#c",
        "a%b",
        "ü",
    ] {
        let path = format!("/containers/{}/json", escape_object(name));
        let n = normalize(&Method::GET, &path.parse().unwrap());
        match n {
            Ok(n) => {
                let op = classify(&Method::GET, &n.path, &n.query);
                assert_eq!(op.object.as_deref(), Some(name), "{path}");
            }
            // `%` and non-ASCII names are refused on the way in, so never resolved.
            Err(e) => assert!(name.contains('%') || !name.is_ascii(), "{name}: {e}"),
        }
    }
}

#[test]
fn every_route_variable_names_an_object_kind() {
    for (_, pattern, name) in route_table() {
        let info = operation_info(name).unwrap();
        if pattern.contains('{') && name != "system.debug" {
            assert!(
                info.object.is_some(),
                "{name} ({pattern}) names no object kind"
            );
        }
    }
    // The exec create route's variable is the container the exec runs in.
    let op = classify_target("POST", "/containers/web/exec");
    assert_eq!(op.info.object, Some(ObjectKind::Container));
    assert_eq!(
        classify_target("POST", "/exec/abc/start").info.object,
        Some(ObjectKind::Exec)
    );
}

#[test]
fn every_inspector_reads_exactly_one_operation_and_hijacks_match_the_table() {
    use crate::route::{BodyUse, Inspector};
    let inspectors = [
        Inspector::ContainerCreate,
        Inspector::ContainerUpdate,
        Inspector::ContainerStart,
        Inspector::ExecCreate,
        Inspector::VolumeCreate,
        Inspector::NetworkCreate,
        Inspector::NetworkConnect,
        Inspector::Build,
        Inspector::ServiceCreate,
        Inspector::ServiceUpdate,
        Inspector::PluginPull,
        Inspector::PluginUpgrade,
    ];
    for inspector in inspectors {
        let readers: Vec<&str> = OPERATION_TABLE
            .iter()
            .filter(|i| i.body == BodyUse::Inspected(inspector))
            .map(|i| i.name)
            .collect();
        assert_eq!(readers.len(), 1, "{inspector:?} read by {readers:?}");
    }
    // Only exec and tunnel operations hijack, and every one of them does but exec.create.
    for info in OPERATION_TABLE {
        match info.access {
            Access::Tunnel => assert!(info.hijack.is_some(), "{}", info.name),
            Access::Exec if info.name != "exec.create" => {
                assert!(info.hijack.is_some(), "{}", info.name)
            }
            _ => assert!(info.hijack.is_none(), "{}", info.name),
        }
    }
}

#[test]
fn reaching_operations_name_a_container_or_an_exec() {
    let reaching: Vec<&str> = OPERATION_TABLE
        .iter()
        .filter(|i| i.reaches)
        .map(|i| i.name)
        .collect();
    assert_eq!(
        reaching,
        [
            "container.archive.get",
            "container.archive.head",
            "container.archive.put",
            "container.start",
            "container.restart",
            "container.attach",
            "container.attach.websocket",
            "container.copy",
            "exec.create",
            "exec.start",
        ]
    );
    for info in OPERATION_TABLE.iter().filter(|i| i.reaches) {
        assert!(
            matches!(info.object, Some(ObjectKind::Container | ObjectKind::Exec)),
            "{}",
            info.name
        );
    }
    // Every process-running operation reaches what it runs in.
    for info in OPERATION_TABLE.iter().filter(|i| i.access == Access::Exec) {
        assert!(info.reaches, "{}", info.name);
    }
}

#[test]
fn image_writes_and_redactions_are_table_facts() {
    let writers: BTreeSet<&str> = OPERATION_TABLE
        .iter()
        .filter(|i| i.writes_image.is_some())
        .map(|i| i.name)
        .collect();
    assert_eq!(
        writers,
        BTreeSet::from([
            "container.commit",
            "image.build",
            "image.import",
            "image.load",
            "image.tag"
        ])
    );
    // Every read the read-only profile opens whose answer can carry a secret redacts it.
    for name in [
        "container.inspect",
        "container.top",
        "image.inspect",
        "image.history",
        "volume.list",
        "volume.inspect",
        "service.list",
        "service.inspect",
        "task.list",
        "task.inspect",
        "plugin.list",
        "plugin.inspect",
        "system.events",
        "system.df",
        "exec.inspect",
    ] {
        let info = operation_info(name).unwrap();
        assert!(info.redacts.is_some(), "{name}");
        assert_eq!(info.access, Access::Read, "{name}");
    }
    assert_eq!(
        operation_info("system.events").unwrap().redacts,
        Some(Redaction::Events)
    );
}

#[test]
fn tenancy_covers_every_tenant_object_and_denies_the_rest() {
    let tenant_kinds = |kind: Option<ObjectKind>| {
        matches!(
            kind,
            Some(
                ObjectKind::Container
                    | ObjectKind::Exec
                    | ObjectKind::Image
                    | ObjectKind::Volume
                    | ObjectKind::Network
            )
        )
    };
    for info in OPERATION_TABLE {
        match info.tenancy {
            // What names a tenant's object in its path is checked as owned, or unavailable.
            Tenancy::Owned(admit) => {
                assert!(tenant_kinds(info.object), "{}", info.name);
                admitted_as_the_table_says(info, admit);
            }
            // Creates make a tenant object (the audit's `creates` fact agrees).
            Tenancy::Creates(admit) => {
                assert!(
                    info.creates.is_some_and(|c| tenant_kinds(Some(c.kind))),
                    "{}",
                    info.name
                );
                admitted_as_the_table_says(info, admit);
            }
            // Shared operations name no local object (a registry lookup names a remote one).
            Tenancy::Shared => assert!(
                info.object.is_none() || info.name == "distribution.inspect",
                "{}",
                info.name
            ),
            Tenancy::Lists(kind) | Tenancy::Prunes(kind) => {
                assert!(tenant_kinds(Some(kind)), "{}", info.name);
                assert!(info.object.is_none(), "{}", info.name);
            }
            Tenancy::Events
            | Tenancy::DiskUsage
            | Tenancy::AnsweredEmpty(_)
            | Tenancy::Unavailable => {}
        }
        if tenant_kinds(info.object)
            && !matches!(info.tenancy, Tenancy::Unavailable | Tenancy::Shared)
        {
            assert!(matches!(info.tenancy, Tenancy::Owned(_)), "{}", info.name);
        }
        // Nothing that reaches into a process or tunnels is shared between tenants.
        if info.tenancy == Tenancy::Shared {
            assert!(
                info.access == Access::Read || matches!(info.name, "system.auth" | "build.session"),
                "{}",
                info.name
            );
        }
    }
    // Swarm, plugins, the build cache and anything unknown stay closed to tenants.
    for name in [
        "swarm.init",
        "service.create",
        "plugin.pull",
        "build.cancel",
        "unknown",
    ] {
        let info = operation_info(name).expect(name);
        assert_eq!(info.tenancy, Tenancy::Unavailable, "{name}");
    }
    // The build cache's prune (part of `docker system prune`) is answered empty.
    let Tenancy::AnsweredEmpty(body) = operation_info("build.prune").expect("build.prune").tenancy
    else {
        panic!("build.prune is not answered empty");
    };
    assert_eq!(body, r#"{"CachesDeleted":null,"SpaceReclaimed":0}"#);
}

/// An operation's [`Admit`] agrees with the rest of its facts: what it names in its path,
/// what it creates, which inspector reads its body.
fn admitted_as_the_table_says(info: &OperationInfo, admit: Admit) {
    let name = info.name;
    let creates = |kind| info.creates.is_some_and(|c| c.kind == kind);
    let names = |kind| info.object == Some(kind);
    let fits = match admit {
        Admit::PathObject => info.object.is_some(),
        Admit::Renames | Admit::FreesName => {
            names(ObjectKind::Container) && info.access == Access::Write
        }
        Admit::ReadsImage { .. } | Admit::SavesImages => {
            names(ObjectKind::Image) && info.access == Access::Read
        }
        Admit::PushesImage | Admit::TagsImage | Admit::RemovesImage => {
            names(ObjectKind::Image) && info.access == Access::Write
        }
        Admit::ConnectsNetwork | Admit::DisconnectsNetwork => names(ObjectKind::Network),
        Admit::ContainerBody => {
            creates(ObjectKind::Container) && info.inspector() == Some(Inspector::ContainerCreate)
        }
        Admit::VolumeBody => {
            creates(ObjectKind::Volume) && info.inspector() == Some(Inspector::VolumeCreate)
        }
        Admit::NetworkBody => {
            creates(ObjectKind::Network) && info.inspector() == Some(Inspector::NetworkCreate)
        }
        Admit::Pull => creates(ObjectKind::Image) && info.fetch.is_some(),
        Admit::MakesImage(_) => creates(ObjectKind::Image) && info.writes_image.is_some(),
    };
    assert!(fits, "{name}: admitted as {admit:?}");
    // Every Tenancy::Creates says how; an owned image is never checked as a bare path object
    // (the image's admit says whether it is read, written or removed).
    if names(ObjectKind::Image) {
        assert_ne!(admit, Admit::PathObject, "{name}");
    }
}
