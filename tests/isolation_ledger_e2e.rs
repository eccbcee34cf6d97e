//! Per-user isolation (issue 13): an image is a tenant's only if sockwarden made it for the
//! tenant (the image ledger, `[isolation] image_ledger`). An owner label written by anyone
//! else — an image built, imported or pulled directly on the daemon with
//! `sockwarden.owner=uid:N` — makes the image nobody's: it answers as missing to every tenant
//! on every route and is in no tenant's lists. A tenant's own builds (classic with both CLIs,
//! `-q`, BuildKit), commits and imports stay its own across a restart (the ledger is kept)
//! and invisible to others; a fresh ledger adopts the labelled images there are; a corrupt one
//! refuses the start.
//!
//! Two tenants (real unix uids in the "users" group) and an admin (root) drive the docker CLIs
//! through one socket configured by `config/examples/multi-user.toml`. Each test uses its own
//! uids (33xx), so tests running at once never share a tenant.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::isolation::*;
use support::*;

/// The multi-user example with its paths replaced, `replace` applied, and the image ledger
/// at `ledger`.
fn config_text(dir: &Path, ledger: &Path, replace: &[(&str, &str)]) -> String {
    let text = multi_user_example(dir, replace);
    // Imports, saves and pushes are not in the example; tenants here use them.
    let text = text
        .replacen(
            "\"build.prune\",",
            "\"build.prune\", \"image.import\", \"image.save\", \"image.push\",",
            1,
        )
        .replacen(
            "allow_dangerous = [",
            "allow_dangerous = [\n  \"image.import\", \"image.save\", \"image.push\",",
            1,
        );
    format!(
        "{text}\n[isolation]\nimage_ledger = {}\n",
        toml_str(&ledger.display().to_string())
    )
}

/// sockwarden with the multi-user example and its image ledger at `ledger`.
fn start(ledger: &Path, replace: &[(&str, &str)]) -> Proxy {
    Proxy::start_config(|dir| config_text(dir, ledger, replace))
}

/// A directory for a ledger that outlives one sockwarden.
fn ledger_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("swledger.")
        .tempdir_in("/tmp")
        .expect("tempdir")
}

fn owner_of(name: &str) -> String {
    direct()
        .ok_str(&[
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
            name,
        ])
        .trim()
        .to_owned()
}

/// A small root filesystem as a tar archive (for `docker import`).
fn rootfs_tar(content: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hello"), content).expect("write");
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "-", "hello"])
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", describe(&out));
    out.stdout
}

/// The ledger's records (id, tenant, op).
fn ledger_records(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("ledger line is JSON");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("tenant"), s("op"))
        })
        .collect()
}

fn failed_as_missing(out: &Output, what: &str) {
    let err = stderr_str(out);
    assert!(
        !out.status.success() && (err.contains("No such image") || err.contains("no such image")),
        "{what}: {}",
        describe(out)
    );
}

/// Everything a tenant may try on an image it does not own: each must fail as for a missing
/// image (or as a name it may not take), and change nothing.
fn cannot_touch(docker: &Docker, who: &str, reference: &str, cleanup: &Cleanup) {
    let what = |op: &str| format!("{who}: {op} {reference}");
    failed_as_missing(
        &docker.run(&["image", "inspect", reference]),
        &what("inspect"),
    );
    failed_as_missing(&docker.run(&["history", reference]), &what("history"));
    failed_as_missing(&docker.run(&["rmi", reference]), &what("rmi"));
    failed_as_missing(
        &docker.run(&["tag", reference, &unique_name("ledger-copy")]),
        &what("tag"),
    );
    let out = docker.run(&["save", reference]);
    failed_as_missing(&out, &what("save"));
    assert!(out.stdout.is_empty(), "{}: archive written", what("save"));
    if !reference.bytes().all(|b| b.is_ascii_hexdigit()) && !reference.starts_with("sha256:") {
        failed_as_missing(&docker.run(&["push", reference]), &what("push"));
    }
    // run/create (without the CLI's pull on a 404): nothing is created.
    let name = cleanup.container("ledger-run");
    let out = docker.run(&[
        "create",
        "--network",
        "none",
        "--pull",
        "never",
        "--name",
        &name,
        reference,
        "true",
    ]);
    failed_as_missing(&out, &what("create"));
    let out = docker.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        reference,
        "true",
    ]);
    failed_as_missing(&out, &what("run"));
    assert!(
        !direct()
            .run(&["container", "inspect", &name])
            .status
            .success(),
        "{}: a container was created",
        what("create")
    );
    // A classic build FROM it.
    let ctx = build_context(&format!("FROM {reference}\nCOPY f /f\n"));
    let built = cleanup.image("ledger-from");
    let out = docker.clone().env("DOCKER_BUILDKIT", "0").run(&[
        "build",
        "-t",
        &built,
        ctx.path().to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "{}: {}",
        what("build FROM"),
        describe(&out)
    );
    assert!(!exists("image", &built), "{}: built", what("build FROM"));
    let ctx = build_context(&format!("FROM scratch\nCOPY --from={reference} / /x\n"));
    let out = docker.clone().env("DOCKER_BUILDKIT", "0").run(&[
        "build",
        "-t",
        &built,
        ctx.path().to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "{}: {}",
        what("build COPY --from"),
        describe(&out)
    );
    // The image is still there for the admin.
    assert!(
        exists("image", reference),
        "{}: the image is gone",
        what("after")
    );
}

/// The references a tenant could use for the image `name`: its name, its ID with and
/// without `sha256:`, an ID prefix.
fn spellings(name: &str) -> Vec<String> {
    let id = id_of("image", name);
    let hex = id.trim_start_matches("sha256:").to_owned();
    vec![name.to_owned(), id, hex.clone(), hex[..12].to_owned()]
}

#[test]
fn images_labelled_on_the_daemon_are_nobodys() {
    let ledger = ledger_dir();
    let ledger_path = ledger.path().join("image-owners");
    let proxy = start(&ledger_path, &[]);
    let c = Cleanup::new();
    let (a_uid, b_uid) = (3301, 3302);
    let b_owner = format!("{LABEL}=uid:{b_uid}");
    // Forged on the daemon, with B's owner label spelled exactly as sockwarden writes it:
    // an import with a LABEL change, a build with --label.
    let imported = c.image("ledger-forged-import");
    direct().stdin(rootfs_tar("forged")).ok(&[
        "import",
        "--change",
        &format!("LABEL {b_owner}"),
        "-",
        &imported,
    ]);
    let built = c.image("ledger-forged-build");
    let ctx = build_context(&format!("FROM {}\nCOPY f /f\n", test_image()));
    direct().env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "--label",
        &b_owner,
        "-t",
        &built,
        ctx.path().to_str().unwrap(),
    ]);
    for forged in [&imported, &built] {
        assert_eq!(owner_of(forged), format!("uid:{b_uid}"));
    }
    let (imported_id, built_id) = (id_of("image", &imported), id_of("image", &built));
    // B's own image, then its name re-pointed on the daemon to the forged one.
    let b_own = c.image("ledger-b-own");
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    tenant(&proxy, b_uid).env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "-t",
        &b_own,
        ctx.path().to_str().unwrap(),
    ]);
    let b_own_id = id_of("image", &b_own);
    let repointed = c.image("ledger-b-repointed");
    tenant(&proxy, b_uid).ok(&["tag", &b_own, &repointed]);
    direct().ok(&["tag", &imported, &repointed]);
    assert_ne!(id_of("image", &repointed), b_own_id);

    for (cli, b) in tenant_clis(&proxy, b_uid) {
        for forged in [&imported, &built] {
            for reference in spellings(forged) {
                cannot_touch(&b, &format!("B {cli}"), &reference, &c);
            }
        }
        cannot_touch(&b, &format!("B {cli}"), &repointed, &c);
        // Not in B's lists, by ID or name, with or without -a; B's own image is.
        let listed = b.ok_str(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}",
        ]);
        for forged in [&imported, &built] {
            let id = id_of("image", forged);
            let repo = forged.split(':').next().unwrap();
            assert!(
                !listed.contains(&id) && !listed.contains(repo),
                "B {cli} lists {forged}: {listed}"
            );
        }
        assert!(
            listed.contains(&b_own_id),
            "B {cli}: own image not listed: {listed}"
        );
        // Names it holds cannot be taken by B (as another tenant's image's).
        let out = b.run(&["tag", &b_own, &built]);
        assert!(
            !out.status.success(),
            "B {cli}: tag onto {built}: {}",
            describe(&out)
        );
        assert_eq!(
            id_of("image", &built),
            built_id,
            "B {cli}: {built} re-pointed"
        );
        // Nor by a commit.
        let src = c.container("ledger-commit-src");
        b.ok(&[
            "create",
            "--network",
            "none",
            "--name",
            &src,
            &test_image(),
            "true",
        ]);
        let out = b.run(&["commit", &src, &imported]);
        assert!(
            !out.status.success(),
            "B {cli}: commit onto {imported}: {}",
            describe(&out)
        );
        assert_eq!(
            id_of("image", &imported),
            imported_id,
            "B {cli}: {imported} re-pointed"
        );
        b.ok(&["rm", &src]);
        // B's own image still works, by its ID too, and B may save it.
        b.ok(&["image", "inspect", &b_own_id]);
        let archive = b.ok(&["save", &b_own]);
        assert!(!archive.is_empty(), "B {cli}: save of its own image");
    }
    // A cannot reach them either, nor see them.
    let a = tenant(&proxy, a_uid);
    cannot_touch(&a, "A", &imported, &c);
    cannot_touch(&a, "A", &built, &c);
    // The admin sees and manages them.
    let admin = proxy.docker();
    admin.ok(&["image", "inspect", &imported]);
    let listed = admin.ok_str(&["images", "--format", "{{.Repository}}"]);
    assert!(
        listed.contains(imported.split(':').next().unwrap()),
        "{listed}"
    );
    // Only B's own build is in the ledger, as B's.
    let records = ledger_records(&ledger_path);
    assert!(
        records.iter().any(|(id, t, op)| *id == b_own_id
            && *t == format!("uid:{b_uid}")
            && op == "image.build"),
        "{records:?}"
    );
    for forged in [&imported, &built] {
        let id = spellings(forged)[1].clone();
        assert!(
            !records.iter().any(|(r, _, _)| *r == id),
            "{forged} recorded"
        );
    }
    drop(proxy);
}

/// The events a tenant sees do not include the forged image's (spot check of the views).
#[test]
fn forged_images_stay_out_of_events_and_disk_usage() {
    let ledger = ledger_dir();
    let proxy = start(&ledger.path().join("image-owners"), &[]);
    let c = Cleanup::new();
    let b_uid = 3312;
    let b = tenant(&proxy, b_uid);
    let mut events = b.stream(&["events", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"]);
    std::thread::sleep(Duration::from_millis(500));
    let forged = c.image("ledger-forged-ev");
    direct().stdin(rootfs_tar("ev")).ok(&[
        "import",
        "--change",
        &format!("LABEL {LABEL}=uid:{b_uid}"),
        "-",
        &forged,
    ]);
    let forged_id = id_of("image", &forged);
    // B's own import, through sockwarden: its events are shown.
    let own = c.image("ledger-own-ev");
    b.clone()
        .stdin(rootfs_tar("own"))
        .ok(&["import", "-", &own]);
    let own_id = id_of("image", &own);
    let lines = events
        .wait_for(Duration::from_secs(20), |l| l.contains(&own_id))
        .to_vec();
    assert!(
        lines.iter().any(|l| l.contains(&own_id)),
        "own import's events: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&forged_id)),
        "forged image's events shown: {lines:?}"
    );
    let df = b.ok_str(&["system", "df", "-v"]);
    assert!(
        !df.contains(&forged_id[7..19]),
        "df shows the forged image: {df}"
    );
    assert!(
        df.contains(&own_id[7..19]),
        "df does not show the own image: {df}"
    );
    let _ = &mut events;
}

#[test]
fn own_images_stay_owned_across_a_restart_and_invisible_to_others() {
    let ledger = ledger_dir();
    let ledger_path = ledger.path().join("state/image-owners");
    let proxy = start(&ledger_path, &BUILDKIT_ON);
    let c = Cleanup::new();
    let (a_uid, b_uid) = (3321, 3322);
    let b = tenant(&proxy, b_uid);
    let ctx = build_context("FROM scratch\nCOPY f /f\n");
    let ctx_s = ctx.path().to_str().unwrap();
    let mut own: Vec<String> = Vec::new();
    // Classic builds with both CLIs (verbose and -q), multi-stage.
    let multi = build_context(&format!(
        "FROM {} AS first\nRUN echo sha256:{} > /x\nFROM scratch\nCOPY --from=first /x /x\n",
        test_image(),
        "0".repeat(64)
    ));
    for (cli, docker) in tenant_clis(&proxy, b_uid) {
        let name = c.image(&format!("ledger-classic-{cli}"));
        docker.ok(&["build", "-t", &name, ctx_s]);
        own.push(name);
        let quiet = c.image(&format!("ledger-quiet-{cli}"));
        let printed = docker.ok_str(&["build", "-q", "-t", &quiet, ctx_s]);
        assert_eq!(
            printed.trim(),
            id_of("image", &quiet),
            "{cli} -q prints the ID"
        );
        own.push(quiet);
        let multi_name = c.image(&format!("ledger-multi-{cli}"));
        docker.ok(&["build", "-t", &multi_name, multi.path().to_str().unwrap()]);
        own.push(multi_name);
    }
    // BuildKit with the 20.10 CLI.
    let bk = c.image("ledger-buildkit");
    let out = b
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(180))
        .run(&["build", "-t", &bk, ctx_s]);
    assert!(out.status.success(), "BuildKit: {}", describe(&out));
    own.push(bk);
    // A classic build at API 1.29 names no image in its answer: refused, nothing built; with
    // -q it does, and is recorded.
    let old_api = c.image("ledger-old-api");
    let out = b
        .clone()
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_API_VERSION", "1.29")
        .run(&["build", "-t", &old_api, ctx_s]);
    assert!(
        !out.status.success() && stderr_str(&out).contains("below API version 1.30"),
        "{}",
        describe(&out)
    );
    assert!(!exists("image", &old_api));
    b.clone()
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_API_VERSION", "1.29")
        .ok(&["build", "-q", "-t", &old_api, ctx_s]);
    own.push(old_api);
    // A commit and an import.
    let src = c.container("ledger-commit-src");
    b.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &src,
        &test_image(),
        "true",
    ]);
    let committed = c.image("ledger-commit");
    b.ok(&["commit", &src, &committed]);
    own.push(committed);
    let imported = c.image("ledger-import");
    b.clone()
        .stdin(rootfs_tar("mine"))
        .ok(&["import", "-", &imported]);
    own.push(imported);
    let ids: Vec<String> = own.iter().map(|n| id_of("image", n)).collect();
    for name in &own {
        assert_eq!(owner_of(name), format!("uid:{b_uid}"), "{name}");
    }
    // Recorded as B's; the file is private.
    let records = ledger_records(&ledger_path);
    for (name, id) in own.iter().zip(&ids) {
        assert!(
            records
                .iter()
                .any(|(r, t, _)| r == id && *t == format!("uid:{b_uid}")),
            "{name} ({id}) not recorded: {records:?}"
        );
    }
    // The multi-stage build's first stage (its RUN printed an ID-looking line) is not.
    assert!(!records.iter().any(|(r, _, _)| r.ends_with(&"0".repeat(64))));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ledger_path), 0o600);
    assert_eq!(mode(ledger_path.parent().unwrap()), 0o700);

    let check = |proxy: &Proxy, when: &str| {
        let b = tenant(proxy, b_uid);
        let a = tenant(proxy, a_uid);
        let listed = b.ok_str(&["images", "--no-trunc", "--format", "{{.ID}}"]);
        for (name, id) in own.iter().zip(&ids) {
            b.ok(&["image", "inspect", name]);
            b.ok(&["image", "inspect", id]);
            assert!(
                listed.contains(id.as_str()),
                "{when}: B does not list {name}"
            );
            failed_as_missing(
                &a.run(&["image", "inspect", name]),
                &format!("{when}: A {name}"),
            );
            failed_as_missing(
                &a.run(&["image", "inspect", id]),
                &format!("{when}: A {id}"),
            );
        }
        let a_listed = a.ok_str(&["images", "-a", "--no-trunc", "--format", "{{.ID}}"]);
        for id in &ids {
            assert!(!a_listed.contains(id.as_str()), "{when}: A lists {id}");
        }
        // B runs its committed image.
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &own[own.len() - 2],
            "true",
        ]);
    };
    check(&proxy, "before the restart");
    // A reload keeps the ledger.
    proxy.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    check(&proxy, "after a reload");
    // A push names its tag in the query: another tenant's `name:v1` is missing to A too.
    let v1 = format!("{}:v1", own[0].split(':').next().unwrap());
    c.add_image(&v1);
    tenant(&proxy, b_uid).ok(&["tag", &own[0], &v1]);
    for (cli, a) in tenant_clis(&proxy, a_uid) {
        failed_as_missing(&a.run(&["push", &v1]), &format!("A {cli} push {v1}"));
        let out = a.run(&["push", "--all-tags", v1.split(':').next().unwrap()]);
        assert!(
            !out.status.success(),
            "A {cli} push --all-tags: {}",
            describe(&out)
        );
    }
    drop(proxy);
    let proxy = start(&ledger_path, &BUILDKIT_ON);
    check(&proxy, "after the restart");
    // The restart adopted nothing new: the file is as it was.
    assert_eq!(ledger_records(&ledger_path), records);
    // B removes its own image (it may).
    tenant(&proxy, b_uid).ok(&["rmi", &own[0]]);
    assert!(!exists("image", &own[0]));
}

#[test]
fn a_fresh_ledger_adopts_labelled_images_and_a_corrupt_one_refuses_start() {
    let c = Cleanup::new();
    let b_uid = 3332;
    let b_owner = format!("{LABEL}=uid:{b_uid}");
    // Labelled before the ledger exists: adopted on first use.
    let before = c.image("ledger-before");
    direct().stdin(rootfs_tar("before")).ok(&[
        "import",
        "--change",
        &format!("LABEL {b_owner}"),
        "-",
        &before,
    ]);
    let ledger = ledger_dir();
    let ledger_path = ledger.path().join("image-owners");
    let proxy = start(&ledger_path, &[]);
    let log = proxy.log_text();
    assert!(log.contains("image ledger created"), "{log}");
    let b = tenant(&proxy, b_uid);
    b.ok(&["image", "inspect", &before]);
    let records = ledger_records(&ledger_path);
    assert!(
        records
            .iter()
            .any(|(id, t, op)| *id == id_of("image", &before)
                && *t == format!("uid:{b_uid}")
                && op == "adopted"),
        "{records:?}"
    );
    // Labelled after: not adopted.
    let after = c.image("ledger-after");
    direct().stdin(rootfs_tar("after")).ok(&[
        "import",
        "--change",
        &format!("LABEL {b_owner}"),
        "-",
        &after,
    ]);
    failed_as_missing(&b.run(&["image", "inspect", &after]), "after");
    drop(proxy);

    // A corrupt ledger: sockwarden does not start, and says why.
    let mut text = std::fs::read_to_string(&ledger_path).unwrap();
    text.push_str("{\"id\":\"sha256:not-an-id\",\"tenant\":\"uid:1\",\"op\":\"x\"}\n");
    std::fs::write(&ledger_path, &text).unwrap();
    let dir = ledger_dir();
    let config = dir.path().join("sockwarden.toml");
    std::fs::write(&config, config_text(dir.path(), &ledger_path, &[])).unwrap();
    let mut cmd = Command::new(SOCKWARDEN);
    cmd.arg("serve").arg("--config").arg(&config);
    let out = run_with_timeout(cmd, None, false, Duration::from_secs(20)).expect("run serve");
    let err = stderr_str(&out) + &stdout_str(&out);
    assert!(
        !out.status.success(),
        "started with a corrupt ledger: {err}"
    );
    assert!(
        err.contains("image ledger") && err.contains("line "),
        "no clear message: {err}"
    );
    assert!(
        !dir.path().join("proxy.sock").exists(),
        "socket left behind"
    );
    // check says so too; --no-fs does not look.
    let out = Command::new(SOCKWARDEN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "check: {}", describe(&out));
    assert!(
        stderr_str(&out).contains("isolation.image_ledger"),
        "{}",
        describe(&out)
    );
    let out = Command::new(SOCKWARDEN)
        .args(["check", "--no-fs", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "check --no-fs: {}", describe(&out));
}

// -------------------------------------------------------------------------------------------
// The pull path: a registry on 127.0.0.1 (insecure to the daemon by default) serving an image
// whose config carries B's owner label.
// -------------------------------------------------------------------------------------------

/// A minimal registry serving one image `forged:1`; returns its address.
fn registry(config: Vec<u8>, layer: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let digest = |b: &[u8]| format!("sha256:{}", sha256_hex(b));
    let (config_digest, layer_digest) = (digest(&config), digest(&layer));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": layer.len(),
            "digest": layer_digest,
        }],
    })
    .to_string()
    .into_bytes();
    let manifest_digest = digest(&manifest);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (manifest, config, layer) = (manifest.clone(), config.clone(), layer.clone());
            let (config_digest, layer_digest, manifest_digest) = (
                config_digest.clone(),
                layer_digest.clone(),
                manifest_digest.clone(),
            );
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(clone) = conn.try_clone() else { return };
                let mut reader = BufReader::new(clone);
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    // Headers (a TLS hello is no request: the connection is dropped).
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if h == "\r\n" || h == "\n" {
                            break;
                        }
                    }
                    let mut sink = vec![0; length];
                    let _ = reader.read_exact(&mut sink);
                    let mut parts = request.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let (status, kind, body): (&str, &str, Vec<u8>) = if path == "/v2/" {
                        ("200 OK", "application/json", b"{}".to_vec())
                    } else if path.contains("/manifests/") {
                        (
                            "200 OK",
                            "application/vnd.docker.distribution.manifest.v2+json",
                            manifest.clone(),
                        )
                    } else if path.ends_with(&config_digest) {
                        ("200 OK", "application/octet-stream", config.clone())
                    } else if path.ends_with(&layer_digest) {
                        ("200 OK", "application/octet-stream", layer.clone())
                    } else {
                        ("404 Not Found", "application/json", b"{}".to_vec())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
                         Docker-Content-Digest: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n",
                        body.len(),
                        if path.contains("/manifests/") { manifest_digest.as_str() } else { "" },
                    );
                    if conn.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    if method != "HEAD" && conn.write_all(&body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_pulled_image_with_a_forged_owner_label_is_nobodys() {
    let ledger = ledger_dir();
    let proxy = start(&ledger.path().join("image-owners"), &[]);
    let c = Cleanup::new();
    let b_uid = 3342;
    let layer = rootfs_tar("pulled");
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {LABEL: format!("uid:{b_uid}")}, "Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "forged"}],
    })
    .to_string()
    .into_bytes();
    let addr = registry(config, layer);
    let name = format!("{addr}/forged:1");
    c.add_image(&name);
    let b = tenant(&proxy, b_uid);
    // Through sockwarden (B may pull) or, if its fetch rules keep loopback registries out,
    // directly on the daemon: either way B does not get it as its own.
    let through = b.run(&["pull", &name]);
    eprintln!("pull through sockwarden: {}", describe(&through));
    if !through.status.success() {
        direct().ok(&["pull", &name]);
    }
    assert_eq!(owner_of(&name), format!("uid:{b_uid}"));
    let digest = direct()
        .ok_str(&[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &name,
        ])
        .trim()
        .to_owned();
    assert!(digest.contains("@sha256:"), "{digest}");
    let mut references = spellings(&name);
    references.push(digest);
    for reference in &references {
        failed_as_missing(
            &b.run(&["image", "inspect", reference]),
            &format!("B {reference}"),
        );
        failed_as_missing(
            &b.run(&["history", reference]),
            &format!("B history {reference}"),
        );
        let out = b.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            reference,
        ]);
        failed_as_missing(&out, &format!("B run {reference}"));
    }
    let listed = b.ok_str(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(!listed.contains(&id_of("image", &name)), "{listed}");
    cannot_touch(&b, "B pulled", &name, &c);
}
