//! Issue 12, class 3: fetches the daemon makes for a client. The daemon must not be made to
//! fetch from loopback, link-local or sockwarden's own listeners, and a request the daemon
//! makes is never attributed to another client.
//!
//! Each test starts a loopback HTTP server that records whether anyone connected: after a
//! refusal it must not have been contacted, and no image may have been built or pulled.
//! Link-local addresses (169.254.169.254) are only ever refused targets, never contacted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::*;

const T: Duration = Duration::from_secs(20);
const NEW_CLI: &str = "/usr/local/bin/docker";
const OLD_CLI: &str = "/usr/bin/docker";

/// A loopback HTTP server that counts connections and answers each with a small file.
struct Recorder {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Recorder {
    fn start(bind: &str) -> Option<Recorder> {
        let listener = TcpListener::bind(bind).ok()?;
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
                );
            }
        });
        Some(Recorder { addr, hits })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A free loopback port for sockwarden's own TCP listener.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A name other than `localhost` that this host resolves to a loopback address (from
/// /etc/hosts: the host name, on most systems).
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .filter(|l| l.starts_with("127.") || l.starts_with("::1"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .find(|n| !n.contains("localhost") && !n.starts_with('#'))
        .map(str::to_owned)
        .expect("/etc/hosts maps no name besides localhost to loopback")
}

/// sockwarden with an audit file, a unix listener for the test's uid (policy `work`: the `ci`
/// profile plus `policy_extra`) and a TCP listener on `tcp_port` whose loopback peers are the
/// client `lan` (read-only).
fn start(tcp_port: u16, policy_extra: &str) -> Proxy {
    let extra = policy_extra.to_owned();
    Proxy::start_config(move |dir| {
        format!(
            r#"
[upstream]
socket = {up}

[audit]
sink = "file"
path = {audit}

[[listen]]
unix = {sock}

[[listen]]
tcp = "127.0.0.1:{tcp_port}"

[[client]]
name = "ci"
policy = "work"
uids = [{uid}]

[[client]]
name = "lan"
policy = "read-only"
sources = ["127.0.0.0/8"]

[policy.work]
profile = "ci"
{extra}
"#,
            up = toml_str(&daemon_socket().display().to_string()),
            audit = toml_str(&dir.join("audit.log").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            uid = current_uid(),
        )
    })
}

fn records(proxy: &Proxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A context directory with `dockerfile` (named `df_name`) and `files`.
fn make_ctx(dockerfile: &str, df_name: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join(df_name), dockerfile).unwrap();
    for (name, data) in files {
        std::fs::write(ctx.path().join(name), data).unwrap();
    }
    ctx
}

/// A classic build of `ctx` with `cli` against `docker`'s socket; `args` may hold `-f NAME`
/// (a name inside the context) and other flags.
fn build_in(docker: Docker, cli: &str, ctx: &Path, args: &[&str], tag: &str) -> Output {
    let mut full: Vec<String> = vec!["build".into(), "-t".into(), tag.into()];
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-f" {
            full.push("-f".into());
            full.push(ctx.join(args[i + 1]).display().to_string());
            i += 2;
        } else {
            full.push(args[i].into());
            i += 1;
        }
    }
    full.push(ctx.display().to_string());
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    docker
        .bin(cli)
        .env("DOCKER_BUILDKIT", "0")
        .timeout(Duration::from_secs(120))
        .run(&full)
}

/// A classic build of `dockerfile` (with `files`) through the proxy, with the given CLI.
fn build(
    proxy: &Proxy,
    cli: &str,
    dockerfile: &str,
    files: &[(&str, &[u8])],
    args: &[&str],
) -> (Output, String) {
    let df_name = args
        .windows(2)
        .find(|w| w[0] == "-f")
        .map_or("Dockerfile", |w| w[1]);
    let ctx = make_ctx(dockerfile, df_name, files);
    let tag = unique_name("fetch") + ":latest";
    let out = build_in(proxy.docker(), cli, ctx.path(), args, &tag);
    (out, tag)
}

fn image_exists(reference: &str) -> bool {
    Docker::new(&daemon_socket())
        .run(&["image", "inspect", reference])
        .status
        .success()
}

#[track_caller]
fn assert_refused(out: &Output, tag: &str, what: &str) {
    let err = stderr_str(out);
    assert!(!out.status.success(), "{what}: built\n{}", describe(out));
    assert!(
        err.contains("sockwarden") && err.contains("refused"),
        "{what}: not refused by sockwarden\n{}",
        describe(out)
    );
    assert!(!image_exists(tag), "{what}: image {tag} exists");
}

/// `ADD <url>` to this host, in every spelling sockwarden must read as the daemon does, with
/// both CLIs; with `allow_remote = false` (the `ci` default) and with it true (then the host
/// rule refuses). The recorder is never contacted.
#[test]
fn add_urls_to_this_host_are_refused_in_every_spelling() {
    let rec = Recorder::start("127.0.0.1:0").unwrap();
    let rec6 = Recorder::start("[::1]:0");
    let sw_port = free_port();
    let p = rec.port();
    let image = test_image();
    let name = loopback_name();
    let mut cases: Vec<(String, String, Vec<String>)> = vec![
        (
            "127.0.0.1".into(),
            format!("FROM {image}\nADD http://127.0.0.1:{p}/x /x\n"),
            vec![],
        ),
        (
            "localhost".into(),
            format!("FROM {image}\nADD http://localhost:{p}/x /x\n"),
            vec![],
        ),
        (
            "name".into(),
            format!("FROM {image}\nADD http://{name}:{p}/x /x\n"),
            vec![],
        ),
        (
            "link-local".into(),
            format!("FROM {image}\nADD http://169.254.169.254/latest/meta-data/ /x\n"),
            vec![],
        ),
        (
            "own listener".into(),
            format!("FROM {image}\nADD http://127.0.0.1:{sw_port}/containers/json /x\n"),
            vec![],
        ),
        (
            "lower case".into(),
            format!("from {image}\nadd http://127.0.0.1:{p}/x /x\n"),
            vec![],
        ),
        (
            "JSON".into(),
            format!("FROM {image}\nADD [\"http://127.0.0.1:{p}/x\", \"/x\"]\n"),
            vec![],
        ),
        (
            "quotes".into(),
            format!("FROM {image}\nADD \"ht\"tp://127.0.0.1:{p}/x /x\n"),
            vec![],
        ),
        (
            "continuation".into(),
            format!("FROM {image}\nADD \\\n  # comment\n  http://127.0.0.1:{p}/x \\\n  /x\n"),
            vec![],
        ),
        (
            "escape directive".into(),
            format!("# escape=`\nFROM {image}\nADD `\n  http://127.0.0.1:{p}/x /x\n"),
            vec![],
        ),
        (
            "ARG default".into(),
            format!("FROM {image}\nARG U=http://127.0.0.1:{p}/x\nADD $U /x\n"),
            vec![],
        ),
        (
            "build arg".into(),
            format!("FROM {image}\nARG U\nADD ${{U}} /x\n"),
            vec!["--build-arg".into(), format!("U=http://127.0.0.1:{p}/x")],
        ),
        (
            "ENV".into(),
            format!("FROM {image}\nENV U=http://127.0.0.1:{p}/x\nADD $U /x\n"),
            vec![],
        ),
        (
            "other name".into(),
            format!("FROM {image}\nADD http://127.0.0.1:{p}/x /x\n"),
            vec!["-f".into(), "build.df".into()],
        ),
        (
            "gzip context".into(),
            format!("FROM {image}\nADD http://127.0.0.1:{p}/x /x\n"),
            vec!["--compress".into()],
        ),
        (
            "FROM loopback registry".into(),
            format!("FROM 127.0.0.1:{p}/x\n"),
            vec![],
        ),
        (
            "COPY --from loopback registry".into(),
            format!("FROM {image}\nCOPY --from=localhost:{p}/x /a /a\n"),
            vec![],
        ),
    ];
    if let Some(r6) = &rec6 {
        cases.push((
            "[::1]".into(),
            format!("FROM {image}\nADD http://[::1]:{}/x /x\n", r6.port()),
            vec![],
        ));
    }
    for allow_remote in [false, true] {
        let proxy = start(
            sw_port,
            &format!("[policy.work.build]\nallow_remote = {allow_remote}\n"),
        );
        for (i, (what, dockerfile, args)) in cases.iter().enumerate() {
            // Alternate the CLIs; the 20.10 one for --compress (gzip).
            let cli = if i % 2 == 0 || args.iter().any(|a| a == "--compress") {
                OLD_CLI
            } else {
                NEW_CLI
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (out, tag) = build(&proxy, cli, dockerfile, &[], &args);
            assert_refused(
                &out,
                &tag,
                &format!("{what} (allow_remote = {allow_remote}, {cli})"),
            );
        }
        // The refusals are in the audit log, naming the Dockerfile line.
        let refused =
            support::wait_audit_records(&proxy.dir.path().join("audit.log"), cases.len(), T, |r| {
                r["operation"] == "image.build" && r["decision"] == "deny"
            });
        assert_eq!(refused.len(), cases.len(), "{refused:#?}");
    }
    assert_eq!(rec.hits(), 0, "the loopback server was contacted");
    if let Some(r6) = rec6 {
        assert_eq!(r6.hits(), 0, "the [::1] server was contacted");
    }
}

/// A build context sent by hand: a big file first, the Dockerfile at the very end, plain and
/// gzip-compressed, in small and large chunks: refused, answered with a 403, nothing built.
#[test]
fn dockerfile_at_the_end_of_a_big_context_is_refused() {
    let rec = Recorder::start("127.0.0.1:0").unwrap();
    let proxy = start(free_port(), "");
    let label = unique_name("bigctx");
    let dockerfile = format!(
        "FROM {}\nLABEL sw-bigctx={label}\nADD http://127.0.0.1:{}/x /x\n",
        test_image(),
        rec.port()
    );
    let mut tar = Vec::new();
    tar_entry(&mut tar, "big.bin", &vec![0x5a; 24 << 20]);
    tar_entry(&mut tar, "Dockerfile", dockerfile.as_bytes());
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    for (what, body) in [("plain", &tar), ("gzip", &gz)] {
        let tag = unique_name("bigctx") + ":latest";
        let resp = post_build(&proxy.socket, &format!("/v1.41/build?t={tag}"), body);
        let head = head_line(&resp);
        assert!(
            head.contains(" 403 "),
            "{what}: {head}\n{}",
            String::from_utf8_lossy(&resp[..resp.len().min(2000)])
        );
        assert!(
            String::from_utf8_lossy(&resp).contains("Dockerfile:3"),
            "{what}"
        );
        assert!(!image_exists(&tag), "{what}: built");
    }
    // Not even the step before the ADD ran: no intermediate image carries the label.
    let made = Docker::new(&daemon_socket()).ok_str(&[
        "image",
        "ls",
        "-aq",
        "--filter",
        &format!("label=sw-bigctx={label}"),
    ]);
    assert!(made.trim().is_empty(), "images were made: {made}");
    assert_eq!(rec.hits(), 0);
}

/// POSTs a build context with Content-Length over the proxy's socket; returns the answer.
fn post_build(sock: &Path, target: &str, body: &[u8]) -> Vec<u8> {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The proxy may answer before the whole body is sent; a broken pipe then is fine.
    for chunk in body.chunks(64 << 10) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend(h);
    out.extend_from_slice(data);
    out.resize(out.len() + (512 - data.len() % 512) % 512, 0);
}

/// Pulls, imports, pushes and registry lookups naming this host are refused before the daemon
/// sees them, through both CLIs and raw requests; the recorder is never contacted.
#[test]
fn pulls_imports_and_lookups_from_this_host_are_refused() {
    let rec = Recorder::start("127.0.0.1:0").unwrap();
    let p = rec.port();
    let proxy = start(
        free_port(),
        "allow = [\"image.import\", \"image.push\", \"distribution.inspect\", \"plugin.pull\"]\n\
         allow_dangerous = [\"image.import\", \"image.push\", \"plugin.pull\"]\n\
         [policy.work.plugin]\nnames = [\"*\"]\n",
    );
    let name = loopback_name();
    let refs = [
        format!("127.0.0.1:{p}/x"),
        format!("localhost:{p}/x"),
        format!("{name}:{p}/x"),
        "169.254.169.254/x".to_owned(),
        format!("127.0.0.2:{p}/x"),
        format!("[::1]:{p}/x"),
    ];
    for (i, r) in refs.iter().enumerate() {
        // Raw requests, every route that names a registry.
        let enc = r.replace('[', "%5B").replace(']', "%5D");
        for (method, target) in [
            (
                "POST",
                format!("/v1.41/images/create?fromImage={enc}&tag=latest"),
            ),
            ("GET", format!("/v1.41/distribution/{r}/json")),
            ("POST", format!("/v1.41/images/{r}/push")),
            ("POST", format!("/v1.41/plugins/pull?remote={enc}")),
        ] {
            let req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]");
            let resp = http_request(&proxy.socket, req.as_bytes(), T).unwrap();
            let text = String::from_utf8_lossy(&resp);
            assert!(
                head_line(&resp).contains(" 403 ") || head_line(&resp).contains(" 400 "),
                "{method} {target}: {text}"
            );
            assert!(text.contains("sockwarden"), "{method} {target}: {text}");
        }
        // The CLIs.
        let cli = if i % 2 == 0 { OLD_CLI } else { NEW_CLI };
        if !r.starts_with('[') {
            let out = proxy.docker().bin(cli).run(&["pull", r]);
            assert!(!out.status.success(), "{}", describe(&out));
            assert!(
                stderr_str(&out).contains("sockwarden"),
                "pull {r}: {}",
                describe(&out)
            );
        }
    }
    // Imports from a URL on this host, with and without a scheme.
    for src in [
        format!("http://127.0.0.1:{p}/rootfs.tar"),
        format!("127.0.0.1:{p}"),
        format!("http://{name}:{p}/rootfs.tar"),
        "http://169.254.169.254/latest".to_owned(),
    ] {
        let target = format!("/v1.41/images/create?fromSrc={src}&repo=sw-fetch-import");
        let req = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let resp = http_request(&proxy.socket, req.as_bytes(), T).unwrap();
        assert!(
            head_line(&resp).contains(" 403 "),
            "{target}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    let out = proxy.docker().bin(OLD_CLI).run(&[
        "import",
        &format!("http://127.0.0.1:{p}/rootfs.tar"),
        "sw-fetch-import",
    ]);
    assert!(
        stderr_str(&out).contains("sockwarden"),
        "{}",
        describe(&out)
    );
    assert_eq!(rec.hits(), 0, "the loopback registry was contacted");
    for r in refs.iter().filter(|r| !r.starts_with('[')) {
        assert!(!image_exists(r), "{r} was pulled");
    }
    assert!(!image_exists("sw-fetch-import"), "an image was imported");
    // A registry elsewhere is not refused by sockwarden (the daemon fails: no network here).
    let out = proxy
        .docker()
        .bin(OLD_CLI)
        .run(&["pull", "registry.invalid/x"]);
    assert!(
        !stderr_str(&out).contains("sockwarden"),
        "{}",
        describe(&out)
    );
}

/// The confused deputy: with the build client in audit mode (so the refused ADD is forwarded
/// and the daemon really fetches from sockwarden's TCP listener), the daemon's request is
/// attributed to no client, refused, and recorded with the daemon as its peer. A test process
/// connecting to the same listener is still `lan`.
#[test]
fn the_daemons_own_requests_are_never_attributed() {
    let sw_port = free_port();
    let proxy = start(
        sw_port,
        "mode = \"audit\"\n[policy.work.build]\nallow_remote = true\n",
    );
    // A legitimate TCP client first: attributed to `lan`, answered.
    let mut s = TcpStream::connect(("127.0.0.1", sw_port)).unwrap();
    s.write_all(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    assert!(
        head_line(&resp).contains(" 200 "),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    for cli in [OLD_CLI, NEW_CLI] {
        let dockerfile = format!(
            "FROM {}\nADD http://127.0.0.1:{sw_port}/v1.41/containers/json?sw-deputy=1 /x\n",
            test_image()
        );
        let (out, tag) = build(&proxy, cli, &dockerfile, &[], &[]);
        assert!(!out.status.success(), "{}", describe(&out));
        assert!(!image_exists(&tag));
    }
    let recs = wait_for(T, || {
        let r: Vec<Value> = records(&proxy)
            .into_iter()
            .filter(|r| r["operation"] == "container.list" && r["query"]["sw-deputy"].is_array())
            .collect();
        (r.len() >= 2).then_some(r)
    })
    .unwrap_or_else(|| panic!("no record of the daemon's requests:\n{}", proxy.log_text()));
    for r in &recs {
        assert_eq!(r["decision"], "deny", "{r}");
        assert_eq!(r["rule"], "no-client", "{r}");
        assert!(r["client"].is_null(), "attributed: {r}");
        let exe = r["peer"]["exe"].as_str().unwrap_or("");
        assert!(exe.contains("dockerd"), "{r}");
    }
    let lan = records(&proxy)
        .into_iter()
        .filter(|r| r["client"] == "lan")
        .count();
    assert_eq!(lan, 1, "only the test's own request is lan's");
    assert!(proxy.log_text().contains("the Docker daemon itself"));
}

/// Ordinary classic builds still work and make the same image as the daemon directly: COPY
/// and ADD of local files, FROM the fixture image, a large context with the Dockerfile under
/// another name at its end, gzip-compressed; both CLIs.
#[test]
fn ordinary_classic_builds_still_work() {
    let proxy = start(free_port(), "");
    let c = Cleanup::new();
    let small: Vec<u8> = random_bytes(4096);
    let big: Vec<u8> = random_bytes(40 << 20);
    let mut tarball = Vec::new();
    tar_entry(&mut tarball, "inside.txt", b"from a local tar\n");
    tarball.resize(tarball.len() + 1024, 0);
    let dockerfile = format!(
        "FROM {}\nARG V=1\nENV D=/opt\nCOPY a.txt /a.txt\nADD t.tar $D/\nADD [\"a.txt\", \"/b.txt\"]\nLABEL v=$V url=http://127.0.0.1/\n",
        test_image()
    );
    for (what, files, args, cli) in [
        (
            "small",
            vec![("a.txt", &small[..]), ("t.tar", &tarball[..])],
            vec![],
            OLD_CLI,
        ),
        (
            "small",
            vec![("a.txt", &small[..]), ("t.tar", &tarball[..])],
            vec![],
            NEW_CLI,
        ),
        (
            "large, -f, gzip",
            vec![
                ("a.txt", &small[..]),
                ("t.tar", &tarball[..]),
                ("0big.bin", &big[..]),
            ],
            vec!["-f", "zz.dockerfile", "--compress"],
            OLD_CLI,
        ),
    ] {
        let df = args
            .windows(2)
            .find(|w| w[0] == "-f")
            .map_or("Dockerfile", |w| w[1]);
        let ctx = make_ctx(&dockerfile, df, &files);
        let tag = c.image("fetch-proxied");
        let out = build_in(proxy.docker(), cli, ctx.path(), &args, &tag);
        assert!(out.status.success(), "{what} ({cli}):\n{}", describe(&out));
        // The same layers as the daemon builds directly from the same files.
        let direct_tag = c.image("fetch-direct");
        let out = build_in(
            Docker::new(&daemon_socket()),
            cli,
            ctx.path(),
            &args,
            &direct_tag,
        );
        assert!(
            out.status.success(),
            "{what} direct ({cli}):\n{}",
            describe(&out)
        );
        let layers = |t: &str| {
            Docker::new(&daemon_socket()).ok_str(&[
                "image",
                "inspect",
                "-f",
                "{{json .RootFS.Layers}}",
                t,
            ])
        };
        assert_eq!(layers(&tag), layers(&direct_tag), "{what}: layers differ");
    }
}
