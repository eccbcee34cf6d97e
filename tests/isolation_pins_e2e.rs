//! Per-user isolation (issue 13): a tenant's image removals and prunes.
//!
//! - While a tenant's build runs, the images its Dockerfile names stay: were the tenant to
//!   remove one, its name would be free, another tenant could build an image of that name, and
//!   the build's later step would run on the other tenant's image. Every way of removing such
//!   an image (by name, by ID, by ID prefix, by another of its names, after re-pointing the
//!   name, by prune) is refused or skipped until the build has ended; other images of the
//!   tenant go as usual. Classic builds and BuildKit (whose Dockerfile comes over its session).
//! - An image prune removes only images sockwarden recorded for the tenant (the image ledger):
//!   an image labelled with the tenant's name by anyone else stays, whatever the filters.
//!
//! Tenants are real unix uids in the "users" group (34xx, unique to this file) on one socket
//! configured by `config/examples/multi-user.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::isolation::*;
use support::*;

fn start(replace: &[(&str, &str)]) -> Proxy {
    Proxy::start_config(|dir| {
        let text = multi_user_example(dir, replace);
        format!(
            "{text}\n[isolation]\nimage_ledger = {}\n",
            toml_str(&dir.join("image-owners").display().to_string())
        )
    })
}

/// An image of the tenant's own, built through sockwarden (so recorded as its own).
fn own_image(docker: &Docker, name: &str, data: &str) -> String {
    let ctx = build_context_with("FROM scratch\nCOPY f /f\n", data);
    docker.clone().env("DOCKER_BUILDKIT", "0").ok(&[
        "build",
        "-t",
        name,
        ctx.path().to_str().unwrap(),
    ]);
    id_of("image", name)
}

fn refused_as_building(out: &Output, what: &str) {
    assert!(
        !out.status.success() && stderr_str(out).contains("used by a build of this tenant"),
        "{what}: {}",
        describe(out)
    );
}

/// Waits until the daemon runs a container whose command holds `marker` (a classic build's
/// RUN step).
fn wait_for_build_step(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = direct().ok_str(&["ps", "--no-trunc", "--format", "{{.Command}}"]);
        if running.contains(marker) {
            return;
        }
        assert!(Instant::now() < deadline, "the build's RUN step never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every way tenant `docker` may try to remove the image `name` (ID `id`) a running build
/// holds: each refused, the image left as it was.
fn cannot_remove_while_building(docker: &Docker, name: &str, id: &str, cleanup: &Cleanup) {
    let short = id.trim_start_matches("sha256:");
    for (cli, cli_docker) in [
        ("cli28", docker.clone()),
        ("cli20.10", docker.clone().bin(DEBIAN_DOCKER_CLI)),
        ("api1.24", docker.clone().env("DOCKER_API_VERSION", "1.24")),
    ] {
        for target in [name, id, &short[..12], short] {
            refused_as_building(
                &cli_docker.run(&["rmi", target]),
                &format!("{cli} rmi {target}"),
            );
            refused_as_building(
                &cli_docker.run(&["rmi", "-f", target]),
                &format!("{cli} rmi -f {target}"),
            );
        }
    }
    // Another name of the same image: it holds the ID.
    let alias = cleanup.image("pins-alias");
    docker.ok(&["tag", name, &alias]);
    refused_as_building(&docker.run(&["rmi", &alias]), "rmi of another name");
    // Prunes skip it.
    docker.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(id_of("image", name), id, "the held image changed");
    assert_eq!(
        id_of("image", &alias),
        id,
        "the held image's other name went"
    );
}

/// Once the build has ended (its answer passed on whole), the tenant removes `name`.
fn removed_once_released(docker: &Docker, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = docker.run(&["rmi", name]);
        if out.status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "still held: {}", describe(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn images_a_running_classic_build_uses_stay_until_it_ends() {
    let proxy = start(&[]);
    let cleanup = Cleanup::new();
    let uid = 3401;
    let a = tenant(&proxy, uid);
    let base = cleanup.image("pins-base");
    let base_id = own_image(&a, &base, "base");
    let other = cleanup.image("pins-other");
    let other_id = own_image(&a, &other, "other");
    let free = cleanup.image("pins-free");
    own_image(&a, &free, "free");
    let pruned = cleanup.image("pins-pruned");
    own_image(&a, &pruned, "pruned");
    // A build whose later stage names `base`, resolved only after a slow RUN step.
    let ctx = build_context_with(
        &format!(
            "FROM {} AS slow\nRUN sleep 12 && echo pins-3401\nFROM {base}\n\
             COPY --from=slow /bin/busybox /bb\n",
            test_image()
        ),
        "x",
    );
    let built = cleanup.image("pins-built");
    let mut build = a
        .clone()
        .env("DOCKER_BUILDKIT", "0")
        .timeout(Duration::from_secs(180))
        .stream(&["build", "-t", &built, ctx.path().to_str().unwrap()]);
    wait_for_build_step("pins-3401");
    // Re-pointing the held name to another own image holds that one too; the first stays
    // held by its ID.
    a.ok(&["tag", &other, &base]);
    refused_as_building(
        &a.run(&["rmi", &other]),
        "rmi of the image the name now names",
    );
    refused_as_building(&a.run(&["rmi", &base_id]), "rmi of the image first named");
    a.ok(&["tag", &base_id, &base]);
    // Other images of the tenant go as usual, by rmi and by prune.
    a.ok(&["rmi", &free]);
    assert!(!exists("image", &free));
    cannot_remove_while_building(&a, &base, &base_id, &cleanup);
    assert!(
        !exists("image", &pruned),
        "prune -a left an unused image of the tenant"
    );
    assert!(
        !exists("image", &other_id),
        "prune -a left an image no longer held"
    );
    assert!(
        build.is_running(),
        "the build ended before the checks: make it slower"
    );
    // The build ends well, on the tenant's image.
    build.wait_for(Duration::from_secs(150), |l| {
        l.contains("Successfully tagged")
    });
    let layers = direct().ok_str(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &built,
    ]);
    let base_layers = direct().ok_str(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &base,
    ]);
    assert!(
        layers.starts_with(base_layers.trim_end_matches(']')),
        "the build did not run on the tenant's base: {layers} vs {base_layers}"
    );
    // Then the image can go.
    removed_once_released(&a, &base);
    assert!(!exists("image", &base), "the name stayed");
}

#[test]
fn images_a_running_buildkit_build_uses_stay_until_it_ends() {
    let proxy = start(&BUILDKIT_ON);
    let cleanup = Cleanup::new();
    let uid = 3402;
    let a = tenant(&proxy, uid);
    // A base image with a shell: a commit of the tenant's own container of the fixture.
    let base = cleanup.image("pins-bk-base");
    committed(&a, &cleanup, Some(&base), "role=base");
    let base_id = id_of("image", &base);
    let ctx = build_context_with(&format!("FROM {base}\nRUN sleep 12\n"), "x");
    let built = cleanup.image("pins-bk-built");
    let mut build = a
        .clone()
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(180))
        .stream(&[
            "build",
            "--network",
            "none",
            "-t",
            &built,
            ctx.path().to_str().unwrap(),
        ]);
    // BuildKit runs its steps itself (no daemon container): its progress says when.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !build.stderr().contains("RUN sleep 12") {
        assert!(
            build.is_running() && Instant::now() < deadline,
            "BuildKit never reached its RUN step: {}",
            build.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cannot_remove_while_building(&a, &base, &base_id, &cleanup);
    assert!(
        build.is_running(),
        "the build ended before the checks: make it slower"
    );
    // The build ends (BuildKit prints its progress on stderr).
    let deadline = Instant::now() + Duration::from_secs(150);
    while build.is_running() {
        assert!(Instant::now() < deadline, "BuildKit build did not end");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        exists("image", &built),
        "BuildKit build failed: {}",
        build.stderr()
    );
    removed_once_released(&a, &base);
}

/// Labels a dangling or tagged image with `uid`'s owner label directly on the daemon (as a
/// pull, load or admin build could): nobody's.
fn forged(uid: u32, tag: Option<&str>, extra_label: &str) -> String {
    let src = unique_name("pins-forge-src");
    direct().ok(&["create", "--name", &src, &test_image(), "true"]);
    let mut args = vec![
        "commit".to_owned(),
        "--change".to_owned(),
        format!("LABEL {LABEL}=uid:{uid} {extra_label}"),
        src.clone(),
    ];
    if let Some(tag) = tag {
        args.push(tag.to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = direct().ok_str(&args);
    direct().ok(&["rm", &src]);
    id.trim().to_owned()
}

/// The tenant's own image, committed through sockwarden with `label` (dangling without `tag`).
fn committed(a: &Docker, cleanup: &Cleanup, tag: Option<&str>, label: &str) -> String {
    let src = cleanup.container("pins-own-src");
    a.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &src,
        &test_image(),
        "true",
    ]);
    let change = format!("LABEL {label}");
    let mut args = vec!["commit", "--change", &change, &src];
    if let Some(tag) = tag {
        args.push(tag);
    }
    let id = a.ok_str(&args);
    a.ok(&["rm", &src]);
    id.trim().to_owned()
}

#[test]
fn image_prune_removes_only_recorded_images_as_the_filters_select() {
    let proxy = start(&[]);
    let cleanup = Cleanup::new();
    let uid = 3411;
    let a = tenant(&proxy, uid);
    let b = tenant(&proxy, 3412);
    for (cli, docker) in [
        ("cli28", a.clone()),
        ("cli20.10", a.clone().bin(DEBIAN_DOCKER_CLI)),
    ] {
        // Forged: labelled for A by someone else, dangling and tagged.
        let forged_tag = cleanup.image(&format!("pins-forged-{cli}"));
        let forged_dangling = forged(uid, None, "keep=1");
        let forged_tagged = forged(uid, Some(&forged_tag), "keep=1");
        // B's own.
        let b_dangling = committed(&b, &cleanup, None, "keep=1");
        // A's own: dangling with and without a label, tagged, one in use by a container.
        let a_dangling_keep = committed(&docker, &cleanup, None, "keep=1");
        let a_dangling_other = committed(&docker, &cleanup, None, "keep=0");
        let a_tag = cleanup.image(&format!("pins-own-{cli}"));
        let a_tagged = committed(&docker, &cleanup, Some(&a_tag), "keep=1");
        let used_tag = cleanup.image(&format!("pins-used-{cli}"));
        committed(&docker, &cleanup, Some(&used_tag), "keep=1");
        let user = cleanup.container("pins-user");
        docker.ok(&[
            "create",
            "--network",
            "none",
            "--name",
            &user,
            &used_tag,
            "true",
        ]);
        // A filter that selects nothing of A's removes nothing.
        let out = docker.ok_str(&[
            "image",
            "prune",
            "-f",
            "--filter",
            "until=2000-01-01T00:00:00Z",
        ]);
        assert!(out.contains("Total reclaimed space: 0B"), "{cli}: {out}");
        assert!(exists("image", &a_dangling_keep) && exists("image", &a_dangling_other));
        // label= selects; dangling only: the tagged image stays.
        docker.ok(&["image", "prune", "-f", "--filter", "label=keep=0"]);
        assert!(
            !exists("image", &a_dangling_other),
            "{cli}: label=keep=0 not pruned"
        );
        assert!(
            exists("image", &a_dangling_keep),
            "{cli}: label filter ignored"
        );
        // label! leaves out what it matches.
        docker.ok(&["image", "prune", "-f", "--filter", "label!=keep=1"]);
        assert!(exists("image", &a_dangling_keep), "{cli}: label! ignored");
        // until (a duration: everything made up to a moment ago) and dangling.
        std::thread::sleep(Duration::from_secs(2));
        let out = docker.ok_str(&["image", "prune", "-f", "--filter", "until=1s"]);
        assert!(out.contains(&a_dangling_keep), "{cli}: {out}");
        assert!(!exists("image", &a_dangling_keep));
        assert!(
            exists("image", &a_tagged),
            "{cli}: a tagged image went in a dangling prune"
        );
        // All: A's unused tagged image goes; the one a container uses stays.
        let out = docker.ok_str(&["image", "prune", "-a", "-f"]);
        assert!(out.contains(&format!("untagged: {a_tag}")), "{cli}: {out}");
        assert!(!exists("image", &a_tagged));
        assert!(
            exists("image", &used_tag),
            "{cli}: an image in use was pruned"
        );
        // Never the forged ones, B's, or the shared fixture.
        for image in [&forged_dangling, &forged_tagged, &b_dangling, &test_image()] {
            assert!(exists("image", image), "{cli}: {image} pruned by A");
        }
        assert!(!out.contains(&forged_dangling) && !out.contains(&forged_tag));
        docker.ok(&["rm", &user]);
        for image in [&forged_dangling, &forged_tagged, &b_dangling] {
            let _ = direct().try_run(&["rmi", "-f", image]);
        }
    }
    // Filters the daemon's prune rejects are rejected; owner-label filters refused.
    for (filter, expect) in [
        ("reference=x", "invalid filter 'reference'"),
        ("until=next-week", "invalid filter 'until"),
        (&format!("label={LABEL}=uid:3412") as &str, "owner label"),
    ] {
        let out = a.run(&["image", "prune", "-f", "--filter", filter]);
        assert!(
            !out.status.success() && stderr_str(&out).contains(expect),
            "{filter}: {}",
            describe(&out)
        );
    }
}
