use super::*;

fn local() -> LocalFacts {
    LocalFacts {
        addrs: vec!["10.9.9.9".parse().unwrap()],
        listeners: vec![
            "127.0.0.1:2375".parse().unwrap(),
            "0.0.0.0:2399".parse().unwrap(),
        ],
    }
}

fn run(
    text: &str,
    args: &[(&str, Option<&str>)],
    allow_remote: bool,
) -> Result<Vec<Source>, Violation> {
    let build_args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
    let local = local();
    check_dockerfile(
        "Dockerfile",
        text.as_bytes(),
        DockerfileRules {
            build_args: &build_args,
            allow_remote,
            local: &local,
        },
    )
}

#[track_caller]
fn refused(text: &str, args: &[(&str, Option<&str>)], allow_remote: bool) -> Violation {
    match run(text, args, allow_remote) {
        Err(v) => v,
        Ok(_) => panic!("not refused:\n{text}"),
    }
}

#[test]
fn add_urls_in_every_spelling_are_refused_without_allow_remote() {
    let f = "FROM sw-busybox\n";
    for add in [
        "ADD http://127.0.0.1:1/x /x",
        "add http://example.com/x /x",
        "Add https://example.com/x /x",
        "ADD [\"http://example.com/x\", \"/x\"]",
        "ADD [\"http://example.com/x\", \"/x\"] trailing",
        "ADD --chown=1:1 http://example.com/x /x",
        "ADD \"http://example.com/x\" /x",
        "ADD h\"tt\"p://example.com/x /x",
        "ADD h\\ttp://example.com/x /x",
        "ADD 'http://example.com/x' /x",
        "ADD HTTP://example.com/x /x",
        "ADD \\\n  http://example.com/x \\\n  /x",
        "ADD \\\n# a comment inside\n\n  http://example.com/x /x",
        "ONBUILD ADD http://example.com/x /x",
        "  \tADD http://example.com/x /x",
    ] {
        let v = refused(&format!("{f}{add}\n"), &[], false);
        assert_eq!(v.setting.as_deref(), Some("allow_remote"), "{add}: {v}");
    }
}

#[test]
fn escape_directive_and_crlf() {
    let text = "# escape=`\r\nFROM sw-busybox\r\nADD `\r\n http://example.com/x /x\r\n";
    refused(text, &[], false);
    // After the directive, a backslash is an ordinary character: no continuation.
    let text = "# escape=`\nFROM sw-busybox\nADD h`ttp://example.com/x /x\n";
    refused(text, &[], false);
    // A directive after another line is a comment, and the escape stays a backslash.
    let text = "\n# escape=`\nFROM sw-busybox\nADD \\\n http://example.com/x /x\n";
    refused(text, &[], false);
    // A BOM is dropped before the directive.
    let text = "\u{feff}# escape=`\nFROM sw-busybox\nADD `\n http://example.com/x /x\n";
    refused(text, &[], false);
}

#[test]
fn variables_that_could_be_urls_are_refused() {
    let f = "FROM sw-busybox\n";
    // An ARG can be shadowed by the base image's ENV: unknown whatever its default.
    refused(
        &format!("{f}ARG U=http://127.0.0.1/x\nADD $U /x\n"),
        &[],
        true,
    );
    refused(&format!("{f}ARG U=./ok\nADD ${{U}} /x\n"), &[], true);
    refused(
        &format!("{f}ARG U\nADD $U /x\n"),
        &[("U", Some("http://127.0.0.1/"))],
        true,
    );
    refused(&format!("{f}ADD ${{U:-http://x}} /x\n"), &[], true);
    refused(&format!("{f}ADD ht$P://127.0.0.1/ /x\n"), &[], true);
    // Local paths with variables after a local prefix pass.
    run(&format!("{f}ARG V=1\nADD files/$V/a.txt /x\n"), &[], false).unwrap();
    // ENV set in the Dockerfile is known.
    run(&format!("{f}ENV D=./files\nADD $D/a.txt /x\n"), &[], false).unwrap();
    let v = refused(
        &format!("{f}ENV U=http://127.0.0.1:9/x\nADD $U /x\n"),
        &[],
        true,
    );
    assert!(v.reason.contains("loopback"), "{v}");
    // In a stage from scratch, ARG values are known.
    let v = refused(
        "FROM scratch\nARG U=http://[::1]:9/\nADD $U /x\n",
        &[],
        true,
    );
    assert!(v.reason.contains("loopback"), "{v}");
    let v = refused(
        "FROM scratch\nARG U\nADD $U /x\n",
        &[("U", Some("http://169.254.169.254/latest"))],
        true,
    );
    assert!(v.reason.contains("link-local"), "{v}");
}

#[test]
fn allowed_remote_urls_are_held_to_the_host_rule() {
    let f = "FROM sw-busybox\n";
    for (url, why) in [
        ("http://127.0.0.1:8080/x", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://169.254.169.254/x", "link-local"),
        ("http://0.0.0.0:80/", "unspecified"),
        ("http://10.9.9.9:2399/containers/json", "own listeners"),
        ("https://user@127.0.0.2/", "loopback"),
    ] {
        let v = refused(&format!("{f}ADD {url} /x\n"), &[], true);
        assert!(v.reason.contains(why), "{url}: {v}");
        assert_eq!(v.field, "Dockerfile:2");
    }
    let names = run(&format!("{f}ADD http://example.com/x /x\n"), &[], true).unwrap();
    assert_eq!(names.len(), 1);
}

#[test]
fn from_and_copy_from_registries() {
    for text in [
        "FROM 127.0.0.1:5000/x\n",
        "FROM localhost:5000/x AS a\n",
        "FROM --platform=linux/amd64 localhost/x\n",
        "ARG R=127.0.0.1:5000\nFROM $R/x\n",
        "ARG R\nFROM ${R}/x\n",
        "FROM sw-busybox\nCOPY --from=127.0.0.1:5000/x /a /b\n",
        "FROM sw-busybox\nCOPY --from=$X /a /b\n",
    ] {
        let args: &[(&str, Option<&str>)] = &[("R", Some("[::1]:5000"))];
        refused(text, args, false);
    }
    run(
        "FROM sw-busybox AS base\nFROM base\nCOPY --from=base /a /b\nCOPY --from=0 /a /b\nFROM scratch\n",
        &[],
        false,
    )
    .unwrap();
    assert_eq!(run("FROM ghcr.io/o/x\n", &[], false).unwrap().len(), 1);
}

#[test]
fn ordinary_dockerfiles_pass() {
    let text = "# syntax=docker/dockerfile:1\nFROM sw-busybox\nARG VERSION=1\nENV A=b\n\
                COPY . /src\nADD a.tar.gz /opt/\nADD [\"x y\", \"/z\"]\nRUN echo http://x\n\
                LABEL url=http://127.0.0.1\n";
    assert!(run(text, &[], false).unwrap().is_empty());
}

#[test]
fn base_images_are_read_whatever_the_fetch_rule() {
    let images = |text: &str, args: &[(&str, Option<&str>)]| {
        let build_args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        base_images("Dockerfile", text.as_bytes(), &build_args)
            .map(|list| list.into_iter().map(|(_, i)| i).collect::<Vec<_>>())
    };
    // Stages (any case) and scratch are not images; stage indexes neither; an image a
    // `COPY --from` names is, and a stage named later is an image when it is copied from.
    let text = "FROM scratch AS Base\nFROM base\nFROM app:1 AS two\nCOPY --from=0 /a /a\n\
                COPY --from=TWO /b /b\nCOPY --from=other /c /c\nCOPY --from=later /d /d\n\
                FROM busybox AS later\n";
    assert_eq!(
        images(text, &[]).unwrap(),
        ["app:1", "other", "later", "busybox"]
    );
    // The fetch rule does not apply here (a loopback registry, an ADD URL): images only.
    assert_eq!(
        images("FROM 127.0.0.1:5000/x\nADD http://127.0.0.1/f /f\n", &[]).unwrap(),
        ["127.0.0.1:5000/x"]
    );
    // Variables: known from the build args or an ARG default; otherwise refused.
    assert_eq!(images("ARG B=app\nFROM $B\n", &[]).unwrap(), ["app"]);
    assert_eq!(
        images("ARG B=app\nFROM ${B}:2\n", &[("B", Some("other"))]).unwrap(),
        ["other:2"]
    );
    for (text, args) in [
        ("FROM ${B:-app}\n", vec![]),
        (
            "FROM scratch\nCOPY --from=$X /a /a\n",
            vec![("X", Some("app"))],
        ),
        ("FROM scratch\nCOPY --from=${X} /a /a\n", vec![]),
    ] {
        let v = images(text, &args).unwrap_err();
        assert!(
            v.reason.contains("cannot resolve") || v.reason.contains("cannot be resolved"),
            "{text}: {v:?}"
        );
    }
}
