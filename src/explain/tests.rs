use super::*;

const CONFIG: &str = r#"
[upstream]
socket = "/nonexistent/docker.sock"
[[listen]]
unix = "/nonexistent/sockwarden.sock"
[[client]]
name = "ci"
policy = "ci"
uids = [1001]
[[client]]
name = "ro"
policy = "read-only"
uids = [1002]
[policy.ci]
profile = "ci"
deny = ["volume.create"]
[[policy.ci.rule]]
name = "logs-no-follow"
effect = "allow"
operations = ["container.top"]
query = { ps_args = "aux" }
[policy.ci.container]
bind_sources = ["/srv/ci"]
max_pids = 100
default_pids = 100
[policy.ci.container.ulimits]
nofile = 1024
"#;

fn run(client: Option<&str>, method: &str, target: &str, body: Option<&str>) -> Explanation {
    let config = Config::parse(CONFIG, "t.toml").unwrap();
    explain(&config, client, method, target, body.map(str::as_bytes)).unwrap()
}

fn change(e: &Explanation) -> &Change {
    e.change
        .as_ref()
        .unwrap_or_else(|| panic!("no change: {e:?}"))
}

#[test]
fn top_that_would_print_environments_is_refused_naming_redact_env() {
    let e = run(
        Some("ro"),
        "GET",
        "/v1.41/containers/x/top?ps_args=aux%20e",
        None,
    );
    assert_eq!(e.decision, "deny");
    assert_eq!(e.rule.as_deref(), Some("read-only.redact_env"));
    assert!(e.reason.contains("?ps_args"), "{e:?}");
    let c = change(&e);
    assert!(
        c.text
            .starts_with("set redact_env = false in [policy.NAME]"),
        "{c:?}"
    );
    assert!(c.dangerous, "{c:?}");
    for ok in [
        "",
        "?ps_args=-ef",
        "?ps_args=aux",
        "?ps_args=-o%20pid%2Cargs",
    ] {
        let e = run(Some("ro"), "GET", &format!("/containers/x/top{ok}"), None);
        assert_eq!(e.decision, "allow", "{ok}: {e:?}");
    }
    // A policy without redact_env runs any ps options, as before.
    let e = run(Some("ci"), "GET", "/containers/x/top?ps_args=aux", None);
    assert_eq!(e.decision, "allow", "{e:?}");
}

#[test]
fn policy_refusals_say_what_to_add_or_remove() {
    // Not allowed: the allow entry, in the policy's own table.
    let e = run(Some("ci"), "GET", "/v1.43/images/x/get", None);
    assert_eq!(e.decision, "deny");
    let c = change(&e);
    assert_eq!(
        c.text,
        "add \"image.save\" to allow and to allow_dangerous in [policy.ci]"
    );
    assert!(c.dangerous, "{c:?}");
    assert_eq!(c.setting.as_deref(), Some("allow"));
    assert!(
        e.to_string().contains("\nchange:    add \"image.save\""),
        "{e}"
    );
    let e = run(Some("ci"), "POST", "/containers/x/pause", None);
    let c = change(&e);
    assert_eq!(c.text, "add \"container.pause\" to allow in [policy.ci]");
    assert!(!c.dangerous);
    // A deny rule: remove it.
    let e = run(Some("ci"), "POST", "/volumes/create", Some("{}"));
    assert_eq!(
        change(&e).text,
        "remove \"volume.create\" from deny in [policy.ci]"
    );
    // A built-in profile used by name cannot be edited: a policy of one's own.
    let e = run(Some("ro"), "POST", "/containers/x/exec", None);
    let c = change(&e);
    assert!(c.text.starts_with("add \"exec.create\" to allow and to allow_dangerous in [policy.NAME] (with profile = \"read-only\""), "{c:?}");
    // No client: the [[client]] to add.
    let e = run(None, "GET", "/_ping", None);
    assert_eq!(e.rule.as_deref(), Some("no-client"));
    assert!(change(&e).text.starts_with("add a [[client]]"), "{e:?}");
    // An allowed request has no change.
    assert!(run(Some("ci"), "GET", "/_ping", None).change.is_none());
}

#[test]
fn conditional_rule_refusal_names_rule_condition_and_change() {
    let e = run(Some("ci"), "GET", "/containers/x/top?ps_args=ef", None);
    assert_eq!(
        e.reason,
        "rule logs-no-follow allows container.top only when ps_args=aux; this request has ps_args=ef"
    );
    let c = change(&e);
    assert!(
        c.text.starts_with(
            "change or remove query.ps_args of rule logs-no-follow in [[policy.ci.rule]]"
        ),
        "{c:?}"
    );
    assert!(
        c.text
            .ends_with("add \"container.top\" to allow in [policy.ci]"),
        "{c:?}"
    );
}

#[test]
fn inspection_refusals_name_setting_and_value() {
    let create = "/v1.43/containers/create";
    let case = |host_config: &str| {
        let body = format!(r#"{{"Image":"busybox","HostConfig":{{{host_config}}}}}"#);
        let e = run(Some("ci"), "POST", create, Some(&body));
        assert_eq!(e.decision, "deny", "{e:?}");
        change(&e).clone()
    };
    let c = case(r#""Privileged":true,"PidsLimit":10"#);
    assert_eq!(
        c.text,
        "set allow_privileged = true in [policy.ci.container]"
    );
    assert!(c.dangerous);
    let c = case(r#""Binds":["/srv/cache:/c:ro"],"PidsLimit":10"#);
    assert_eq!(
        c.text,
        "add \"/srv/cache\" to bind_sources in [policy.ci.container]"
    );
    assert_eq!(c.value.as_deref(), Some("\"/srv/cache\""));
    assert!(c.dangerous);
    let c = case(r#""Binds":["/srv/ci/x:/c"],"PidsLimit":10"#);
    assert_eq!(
        c.text,
        "set require_read_only_binds = false in [policy.ci.container]"
    );
    let c = case(r#""PidsLimit":500"#);
    assert_eq!(c.text, "set max_pids = 500 in [policy.ci.container]");
    assert!(!c.dangerous);
    let c = case(r#""PidsLimit":10,"Ulimits":[{"Name":"nofile","Soft":10,"Hard":4096}]"#);
    assert_eq!(c.text, "add nofile = 4096 to [policy.ci.container.ulimits]");
    let c = case(r#""PidsLimit":10,"CapAdd":["NET_ADMIN"]"#);
    assert_eq!(
        c.text,
        "add \"NET_ADMIN\" to cap_add in [policy.ci.container]"
    );
    // Nothing allows a malformed body.
    let e = run(Some("ci"), "POST", create, Some("{"));
    assert!(
        change(&e).text.starts_with("none: no setting allows this"),
        "{e:?}"
    );
}

#[test]
fn inspected_body_is_needed_to_decide() {
    let e = run(Some("ci"), "POST", "/v1.43/containers/create", None);
    assert_eq!(e.decision, "undecided");
    assert_eq!(e.status, None);
    assert!(e.reason.contains("--body FILE"), "{e:?}");
    assert!(!e.reason.contains("invalid JSON"), "{e:?}");
    assert!(e.to_string().contains("UNDECIDED"), "{e}");
    // An empty body is a body: decided (and refused) as the proxy would.
    let e = run(Some("ci"), "POST", "/v1.43/containers/create", Some(""));
    assert_eq!(e.decision, "deny");
    assert!(e.reason.contains("invalid JSON"), "{e:?}");
    // Operations that take no inspected body are decided without one.
    let e = run(Some("ci"), "POST", "/v1.43/containers/x/start", None);
    assert_eq!(e.decision, "allow");
}

#[test]
fn isolation_is_explained_as_decided_by_ownership() {
    let text = CONFIG.replace(
        "[policy.ci]\nprofile = \"ci\"\n",
        "[policy.ci]\nprofile = \"ci\"\nisolation = \"user\"\n\
         allow = [\"build.prune\", \"build.cancel\"]\n",
    );
    let config = Config::parse(&text, "t.toml").unwrap();
    let run =
        |method: &str, target: &str| explain(&config, Some("ci"), method, target, None).unwrap();
    let inspect = run("GET", "/v1.41/containers/web/json");
    assert_eq!(inspect.decision, "allow");
    let note = inspect.isolation.clone().unwrap();
    assert!(note.contains("decided by ownership at run time"), "{note}");
    assert!(inspect
        .to_string()
        .contains("isolation: decided by ownership"));
    let create = run("POST", "/containers/create");
    assert!(create.isolation.unwrap().contains("owner label"));
    // BuildKit's Dockerfile is not read: said so, for its build and its session.
    let classic = run("POST", "/build?t=x");
    assert!(!classic.isolation.unwrap().contains("BuildKit"));
    let buildkit = Config::parse(
        &CONFIG.replace(
            "[policy.ci]\nprofile = \"ci\"\n",
            "[policy.ci]\nprofile = \"ci\"\nisolation = \"user\"\n\
             allow = [\"build.session\"]\nallow_dangerous = [\"build.session\"]\n",
        ),
        "t.toml",
    )
    .unwrap();
    for (method, target) in [("POST", "/v1.41/build?version=2&t=x"), ("POST", "/session")] {
        let e = explain(&buildkit, Some("ci"), method, target, None).unwrap();
        let note = e.isolation.clone().unwrap_or_else(|| panic!("{e}"));
        assert!(
            note.contains("BuildKit") && note.contains("another tenant's image"),
            "{target}: {note}"
        );
    }
    assert!(run("GET", "/_ping")
        .isolation
        .unwrap()
        .contains("no tenant's objects"));
    // What isolated clients cannot use at all is refused, naming isolation.
    let cache = explain(&config, Some("ci"), "POST", "/build/cancel", None).unwrap();
    assert_eq!(cache.decision, "deny");
    assert_eq!(cache.rule.as_deref(), Some("ci.isolation"), "{cache}");
    assert!(cache.reason.contains("not available to isolated clients"));
    // The shared build cache's prune is answered empty, not forwarded.
    let prune = explain(&config, Some("ci"), "POST", "/build/prune", None).unwrap();
    assert_eq!(prune.decision, "allow", "{prune}");
    assert!(prune.isolation.unwrap().contains("empty result"));
    // Without isolation nothing is said.
    assert!(
        explain(&config, Some("ro"), "GET", "/containers/web/json", None)
            .unwrap()
            .isolation
            .is_none()
    );
}

#[test]
fn isolation_names_the_image_ledger_where_it_decides() {
    let text = CONFIG.replace(
        "[policy.ci]\nprofile = \"ci\"\n",
        "[policy.ci]\nprofile = \"ci\"\nisolation = \"user\"\n",
    ) + "\n[isolation]\nimage_ledger = \"/srv/sw/image-owners\"\n";
    let config = Config::parse(&text, "t.toml").unwrap();
    let note = |method: &str, target: &str| {
        explain(&config, Some("ci"), method, target, None)
            .unwrap()
            .isolation
            .unwrap_or_default()
    };
    for (method, target) in [
        ("POST", "/build?t=x"),
        ("GET", "/images/x/json"),
        ("GET", "/images/json"),
        ("POST", "/containers/create"),
    ] {
        let n = note(method, target);
        assert!(
            n.contains("image ledger") && n.contains("/srv/sw/image-owners"),
            "{method} {target}: {n}"
        );
    }
    assert!(note("POST", "/build?t=x").contains("recorded"));
    // Nothing to do with images: not mentioned.
    assert!(!note("GET", "/containers/web/json").contains("ledger"));
    // A relative path is refused.
    let relative = CONFIG.to_owned() + "\n[isolation]\nimage_ledger = \"image-owners\"\n";
    let e = Config::parse(&relative, "t.toml").unwrap_err().to_string();
    assert!(e.contains("isolation.image_ledger"), "{e}");
}
