use super::*;
use http::{HeaderMap, Method, Uri};

fn authorized(target: &str) -> (Authorized, Uri) {
    let text =
        "[upstream]\nsocket = \"/var/run/docker.sock\"\n[[listen]]\nunix = \"/run/x.sock\"\n\
                client = \"c\"\n[[client]]\nname = \"c\"\npolicy = \"ci\"\n";
    let config = crate::config::Config::parse(text, "t").unwrap();
    let uri: Uri = target.parse().unwrap();
    let a = crate::policy::layer::authorize(
        &config.authority,
        Some(Arc::from("c")),
        &Method::POST,
        &uri,
        &HeaderMap::new(),
    )
    .unwrap();
    (a, uri)
}

/// The build's cgroup is written into the query the daemon gets, replacing a client's
/// empty `cgroupparent`, and recorded with its `pids.max`; the rewritten query is what is
/// inspected, and passes only with the cgroup it names.
#[test]
fn the_build_cgroup_is_written_into_the_inspected_query() {
    let ours = "/sockwarden-builds/b1-1";
    for target in [
        "/v1.41/build?t=app:1",
        "/v1.41/build?cgroupparent=&t=app:1",
        "/build?t=app:1&memory=0",
    ] {
        let (a, uri) = authorized(target);
        let (new_uri, normalized, applied) = rewritten_build_query(&a, &uri, Some((ours, 1024)))
            .unwrap()
            .unwrap();
        let q = new_uri.query().unwrap();
        assert_eq!(q.matches("cgroupparent=").count(), 1, "{q}");
        assert!(q.contains("cgroupparent=/sockwarden-builds/b1-1"), "{q}");
        assert!(q.contains("memory=2147483648"), "{q}");
        assert!(new_uri.path().ends_with("/build"), "{new_uri}");
        assert_eq!(
            applied,
            [
                "memory=2147483648",
                "cgroupparent=/sockwarden-builds/b1-1",
                "pids.max=1024"
            ]
        );
        let placed = Authorized {
            normalized: Arc::new(normalized),
            build_cgroup: Some(Arc::from(ours)),
            ..a.clone()
        };
        assert!(check_violation(&placed, b"").is_ok(), "{target}");
        // The same query without the record of having prepared it: refused.
        let unplaced = Authorized {
            build_cgroup: None,
            ..placed.clone()
        };
        let v = check_violation(&unplaced, b"").unwrap_err();
        assert_eq!(v.setting.as_deref(), Some("allow_cgroup_parent"), "{v:?}");
    }
    // Without a cgroup only the memory cap is written, as before.
    let (a, uri) = authorized("/build?t=app:1");
    let (new_uri, _, applied) = rewritten_build_query(&a, &uri, None).unwrap().unwrap();
    assert!(!new_uri.query().unwrap().contains("cgroupparent"));
    assert_eq!(applied, ["memory=2147483648"]);
}
