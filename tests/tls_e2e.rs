//! TLS listeners with client certificates, driven by the stock docker CLI the way it talks to
//! `dockerd --tlsverify` (`DOCKER_TLS_VERIFY=1`, `DOCKER_CERT_PATH` with ca.pem/cert.pem/key.pem).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use support::*;

/// The CLI under test: the current docker CLI, not Debian's old one.
const DOCKER_CLI: &str = "/usr/local/bin/docker";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Writes `<stem>-cert.pem` and `<stem>-key.pem` into `dir`, signed by `ca`.
fn leaf(ca: &Ca, dir: &Path, stem: &str, cn: &str, sans: &[&str], server: bool) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    std::fs::write(dir.join(format!("{stem}-cert.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
}

/// A `DOCKER_CERT_PATH` directory: the trusted CA plus one client's certificate and key.
fn cert_path(certs: &Path, ca_pem: &str, client: Option<&str>) -> PathBuf {
    let name = client.unwrap_or("none");
    let dir = certs.join(format!("docker-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    if let Some(stem) = client {
        std::fs::copy(certs.join(format!("{stem}-cert.pem")), dir.join("cert.pem")).unwrap();
        std::fs::copy(certs.join(format!("{stem}-key.pem")), dir.join("key.pem")).unwrap();
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tls_docker(proxy: &Proxy, port: u16, dir: &Path) -> Docker {
    Docker::new(&proxy.socket)
        .bin(DOCKER_CLI)
        .env("DOCKER_HOST", &format!("tcp://127.0.0.1:{port}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", dir.to_str().unwrap())
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Setup {
    _certs: tempfile::TempDir,
    certs: PathBuf,
    ca_pem: String,
    port: u16,
    proxy: Proxy,
}

fn setup() -> Setup {
    let certs_dir = tempfile::Builder::new()
        .prefix("swtls.")
        .tempdir_in("/tmp")
        .unwrap();
    let certs = certs_dir.path().to_path_buf();
    let good = ca("sockwarden test CA");
    let rogue = ca("rogue CA");
    std::fs::write(certs.join("ca.pem"), &good.pem).unwrap();
    leaf(
        &good,
        &certs,
        "server",
        "sockwarden",
        &["127.0.0.1", "localhost"],
        true,
    );
    leaf(&good, &certs, "ci-bot", "ci-bot", &[], false);
    leaf(&good, &certs, "dashboard", "dashboard", &[], false);
    // Same common name as the real ci-bot, wrong issuer.
    leaf(&rogue, &certs, "rogue", "ci-bot", &[], false);
    let port = free_port();
    let daemon = daemon_socket();
    let c = certs.clone();
    let proxy = Proxy::start_config(move |dir| {
        format!(
            r#"
[upstream]
socket = {daemon}

[[listen]]
unix = {sock}

[[listen]]
tcp = "127.0.0.1:{port}"
tls_cert = {cert}
tls_key = {key}
tls_client_ca = {ca}

{owner}
[[client]]
name = "ci-bot"
policy = "ci"
cert_cn = ["ci-bot"]

[[client]]
name = "dashboard"
policy = "read-only"
cert_cn = ["dashboard"]
"#,
            daemon = toml_str(daemon.to_str().unwrap()),
            sock = toml_str(dir.join("proxy.sock").to_str().unwrap()),
            cert = toml_str(c.join("server-cert.pem").to_str().unwrap()),
            key = toml_str(c.join("server-key.pem").to_str().unwrap()),
            ca = toml_str(c.join("ca.pem").to_str().unwrap()),
            owner = allow_all_client_toml(),
        )
    });
    Setup {
        _certs: certs_dir,
        certs,
        ca_pem: good.pem,
        port,
        proxy,
    }
}

#[test]
fn docker_cli_over_tls_is_identified_by_client_certificate() {
    let s = setup();
    let cleanup = Cleanup::new();
    let image = test_image();

    // dashboard: read-only.
    let dashboard = tls_docker(
        &s.proxy,
        s.port,
        &cert_path(&s.certs, &s.ca_pem, Some("dashboard")),
    );
    let out = dashboard.run(&["ps"]);
    assert!(out.status.success(), "dashboard docker ps: {}", text(&out));
    let out = dashboard.run(&["run", "--rm", "--network", "none", &image, "true"]);
    assert!(
        !out.status.success(),
        "dashboard docker run: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy read-only"),
        "{}",
        text(&out)
    );

    // ci-bot: the ci profile.
    let ci = tls_docker(
        &s.proxy,
        s.port,
        &cert_path(&s.certs, &s.ca_pem, Some("ci-bot")),
    );
    let out = ci.run(&["version"]);
    assert!(out.status.success(), "ci docker version: {}", text(&out));
    let name = cleanup.container("tls-ci");
    let out = ci.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        &image,
        "true",
    ]);
    assert!(out.status.success(), "ci docker run: {}", text(&out));

    // The audit trail names the certificate subject.
    let log = s.proxy.log_text();
    assert!(log.contains("CN=ci-bot"), "{log}");
}

#[test]
fn docker_run_stdin_eof_reaches_the_container_over_tls() {
    let s = setup();
    let cleanup = Cleanup::new();
    let ci = tls_docker(
        &s.proxy,
        s.port,
        &cert_path(&s.certs, &s.ca_pem, Some("ci-bot")),
    )
    .stdin(b"hello over tls\n".to_vec());
    let name = cleanup.container("tls-stdin");
    let out = ci.run(&[
        "run",
        "--rm",
        "-i",
        "--name",
        &name,
        "--network",
        "none",
        &test_image(),
        "cat",
    ]);
    assert!(out.status.success(), "docker run -i: {}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over tls\n",
        "{}",
        text(&out)
    );
}

#[test]
fn certificates_from_another_ca_or_none_are_refused_at_the_handshake() {
    let s = setup();
    let before = s.proxy.log_text().len();

    // Right CN, wrong issuer.
    let rogue = tls_docker(
        &s.proxy,
        s.port,
        &cert_path(&s.certs, &s.ca_pem, Some("rogue")),
    );
    let out = rogue.run(&["version"]);
    assert!(
        !out.status.success(),
        "rogue docker version: {}",
        text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Server:"),
        "{}",
        text(&out)
    );

    // No client certificate at all, with curl (which trusts the CA but presents nothing) and
    // with the docker CLI given only ca.pem.
    let url = format!("https://127.0.0.1:{}/_ping", s.port);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(s.certs.join("ca.pem"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl without a certificate: {}",
        text(&out)
    );
    let none = tls_docker(&s.proxy, s.port, &cert_path(&s.certs, &s.ca_pem, None));
    let out = none.run(&["version"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Server:") && !out.status.success(),
        "no-cert docker version: {}",
        text(&out)
    );

    // The docker CLI (Go) does not even offer a certificate whose issuer is not among the CAs
    // the server asks for; curl does, so the proxy's own verification is exercised too.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(s.certs.join("ca.pem"))
        .arg("--cert")
        .arg(s.certs.join("rogue-cert.pem"))
        .arg("--key")
        .arg(s.certs.join("rogue-key.pem"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl with a rogue certificate: {}",
        text(&out)
    );
    // The proxy logs the failed handshake just after curl has seen it fail.
    let logged = wait_for(std::time::Duration::from_secs(10), || {
        s.proxy.log_text()[before..]
            .contains("UnknownIssuer")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", &s.proxy.log_text()[before..]);

    // The certificate checks out with curl too, so the refusals above are about the client
    // certificate, not the server's.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(s.certs.join("ca.pem"))
        .arg("--cert")
        .arg(s.certs.join("dashboard-cert.pem"))
        .arg("--key")
        .arg(s.certs.join("dashboard-key.pem"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl with a certificate: {}",
        text(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{}", text(&out));

    // Refused connections never got as far as a request: the only request on the TLS
    // listener is the good curl's. (Audit records go to stdout, which the proxy log captures;
    // the writer flushes a few milliseconds after the response.)
    let tls_requests = |log: &str| {
        log.lines()
            .filter(|l| l.contains("\"event\":\"request\"") && l.contains("(tls)"))
            .count()
    };
    assert!(
        wait_for(std::time::Duration::from_secs(10), || (tls_requests(
            &s.proxy.log_text()
        ) >= 1)
            .then_some(()))
        .is_some(),
        "no audit record of the good request"
    );
    let log = s.proxy.log_text();
    let after = &log[before..];
    assert!(after.contains("TLS handshake failed"), "{after}");
    assert_eq!(tls_requests(&log), 1, "{after}");
}
