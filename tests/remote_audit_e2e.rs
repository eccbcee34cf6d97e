//! Audit records shipped to a remote syslog collector: a real rsyslog (Debian's `rsyslogd`, with
//! `rsyslog-gnutls` for TLS), started by each test in the foreground with its own configuration
//! on a loopback port (`imtcp`, plain or with the gtls driver), writing what it receives to a
//! file the test reads. Requests go through the real docker CLI and daemon.
//!
//! What must hold: every record reaches the collector, in order, over TCP and over TLS (with
//! the collector verified against the configured CA: one with a certificate from another CA is
//! refused and the records wait in the spool); a collector stopped for a while and restarted
//! gets every record once, in order; the spool survives a sockwarden restart; a full spool
//! triggers `on_failure` (closed: 503 and /readyz not ready; open: records counted lost); and a
//! file sink beside the remote one gets the same records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use support::*;

const T: Duration = Duration::from_secs(20);

// -------------------------------------------------------------------------------------------
// The collector: rsyslogd in the foreground
// -------------------------------------------------------------------------------------------

/// Where the collector finds its TLS files, and whether it requires a client certificate.
struct CollectorTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    require_client_cert: bool,
}

struct Collector {
    dir: tempfile::TempDir,
    port: u16,
    tls: Option<CollectorTls>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Collector {
    fn new(tls: Option<CollectorTls>) -> Collector {
        let dir = tempfile::Builder::new()
            .prefix("swr.")
            .tempdir_in("/tmp")
            .unwrap();
        Collector {
            dir,
            port: free_port(),
            tls,
            child: None,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        // Each message as: facility|app-name|hostname|procid|msgid|timestamp|msg
        let mut conf = format!(
            "global(workDirectory=\"{d}/work\" maxMessageSize=\"256k\")\n\
             template(name=\"fields\" type=\"string\" string=\"%syslogfacility-text%|%app-name%|%hostname%|%procid%|%msgid%|%timereported:::date-rfc3339%|%msg%\\n\")\n"
        );
        match &self.tls {
            None => conf.push_str("module(load=\"imtcp\")\n"),
            Some(tls) => {
                conf.push_str(&format!(
                    "global(DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" \
                     DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n\
                     module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                     StreamDriver.AuthMode=\"{}\")\n",
                    tls.ca.display(),
                    tls.cert.display(),
                    tls.key.display(),
                    if tls.require_client_cert {
                        "x509/certvalid"
                    } else {
                        "anon"
                    }
                ));
            }
        }
        conf.push_str(&format!(
            "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{}\")\n\
             action(type=\"omfile\" file=\"{}\" template=\"fields\")\n",
            self.port,
            self.out().display()
        ));
        conf
    }

    /// Starts rsyslogd and waits until its port accepts connections.
    fn start(&mut self) {
        assert!(self.child.is_none(), "collector already running");
        std::fs::create_dir_all(self.dir.path().join("work")).unwrap();
        let conf = self.dir.path().join("rsyslog.conf");
        std::fs::write(&conf, self.config()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("rsyslogd.log")).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(self.dir.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rsyslogd (Debian package rsyslog; scripts/test.sh installs it)");
        self.child = Some(child);
        let port = self.port;
        let up = wait_for(T, || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(drop)
        });
        if up.is_none() {
            panic!("rsyslogd did not listen on {port}:\n{}", self.log());
        }
    }

    /// Stops rsyslogd (SIGTERM) and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + T;
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.log")).unwrap_or_default()
    }

    /// Every message received so far.
    fn messages(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(self.out()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.splitn(7, '|').collect();
                assert_eq!(f.len(), 7, "{l}");
                Received {
                    facility: f[0].to_owned(),
                    app_name: f[1].to_owned(),
                    hostname: f[2].to_owned(),
                    procid: f[3].to_owned(),
                    msgid: f[4].to_owned(),
                    timestamp: f[5].to_owned(),
                    record: serde_json::from_str(f[6])
                        .unwrap_or_else(|e| panic!("MSG is not the record's JSON ({e}): {l}")),
                }
            })
            .collect()
    }

    /// Waits until the collector has received at least `n` messages.
    fn wait_messages(&self, n: usize) -> Vec<Received> {
        wait_for(T, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| {
            panic!(
                "the collector got {} messages, expected {n}; rsyslogd log:\n{}",
                self.messages().len(),
                self.log()
            )
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Received {
    facility: String,
    app_name: String,
    hostname: String,
    procid: String,
    msgid: String,
    timestamp: String,
    record: Value,
}

// -------------------------------------------------------------------------------------------
// Certificates
// -------------------------------------------------------------------------------------------

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: PathBuf,
}

fn ca(dir: &Path, name: &str) -> Ca {
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
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(&pem, cert.pem()).unwrap();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A certificate and key signed by `ca`: (cert path, key path).
fn leaf(ca: &Ca, dir: &Path, stem: &str, sans: &[&str], server: bool) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, stem);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let cert_path = dir.join(format!("{stem}-cert.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

// -------------------------------------------------------------------------------------------
// sockwarden
// -------------------------------------------------------------------------------------------

/// A config with an admin listener, the given `[[audit.sinks]]` entries (`{dir}` stands for
/// the proxy's own directory) and an allow-all client.
fn start_proxy(sinks: &str) -> Proxy {
    let sinks = sinks.to_owned();
    Proxy::start_config(move |dir| {
        format!(
            "[upstream]\nsocket = {up}\n\n[admin]\nunix = {admin}\n\n[[listen]]\nunix = {sock}\n\n{client}\n\n[audit]\n{sinks}\n",
            up = toml_str(&daemon_socket().display().to_string()),
            admin = toml_str(&dir.join("admin.sock").display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            client = allow_all_client_toml(),
            sinks = sinks.replace("{dir}", &dir.display().to_string()),
        )
    })
}

fn remote_sink(address: &str, spool: &Path, more: &str) -> String {
    format!(
        "[[audit.sinks]]\ntype = \"remote\"\naddress = {}\nspool_dir = {}\n{more}\n",
        toml_str(address),
        toml_str(&spool.display().to_string())
    )
}

fn file_sink(path: &Path) -> String {
    format!(
        "[[audit.sinks]]\ntype = \"file\"\npath = {}\n",
        toml_str(&path.display().to_string())
    )
}

fn admin_get(proxy: &Proxy, path: &str) -> (u16, String) {
    let resp = http_request(
        &proxy.dir.path().join("admin.sock"),
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample of `/metrics` (0 when absent).
fn metric(proxy: &Proxy, name_and_labels: &str) -> f64 {
    let (status, body) = admin_get(proxy, "/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == name_and_labels).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or(0.0)
}

fn wait_metric(proxy: &Proxy, name_and_labels: &str, pred: impl Fn(f64) -> bool) -> f64 {
    wait_for(T, || {
        let v = metric(proxy, name_and_labels);
        pred(v).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "{name_and_labels} = {} never matched\n--- proxy log ---\n{}",
            metric(proxy, name_and_labels),
            proxy.log_text()
        )
    })
}

/// Each record as `id@time`, in order (two sockwardens started in the same second number
/// their records alike: the time tells them apart).
fn ids<'a>(records: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    records
        .into_iter()
        .map(|r| {
            format!(
                "{}@{}",
                r["id"].as_str().unwrap_or_default(),
                r["time"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The ids the collector received, in order.
fn received_ids(messages: &[Received]) -> Vec<String> {
    ids(messages.iter().map(|m| &m.record))
}

/// Asserts `got` is `want`: same records, same order, none twice.
fn assert_same_records(got: &[String], want: &[String], what: &str) {
    let mut seen = std::collections::HashSet::new();
    for id in got {
        assert!(
            seen.insert(id),
            "{what}: record {id} received twice: {got:?}"
        );
    }
    assert_eq!(got, want, "{what}: records missing or out of order");
}

/// The file's records once it holds at least `n` and no more arrive for 300 ms: a command
/// can leave more records than the `n` a test counts on (the CLI's version probes), and a
/// record written after the count was taken would otherwise reach the collector unexpected.
fn settled_at_least(file: &Path, n: usize) -> Vec<String> {
    wait_for(T, || (audit_records(file).len() >= n).then_some(()))
        .unwrap_or_else(|| panic!("fewer than {n} records in {}", file.display()));
    settled(file)
}

/// The file's records once no more arrive for 300 ms (a command's last record is written just
/// after its response).
fn settled(file: &Path) -> Vec<String> {
    let mut last = ids(&audit_records(file));
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = ids(&audit_records(file));
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Runs `n` docker commands (each a few records) through the proxy.
fn traffic(proxy: &Proxy, n: usize) {
    for _ in 0..n {
        proxy.docker().ok(&["ps", "-q"]);
    }
}

// -------------------------------------------------------------------------------------------
// Tests
// -------------------------------------------------------------------------------------------

/// File and remote at once: both get every record, the same ones in the same order; rsyslog
/// reads each as RFC 5424 (facility, APP-NAME, PROCID, MSGID, the record's own time) with the
/// record's JSON as MSG. /metrics shows delivery per sink.
#[test]
fn tcp_collector_and_file_both_receive_every_record_in_order() {
    let mut collector = Collector::new(None);
    collector.start();
    let spool = tempfile::tempdir().unwrap();
    let sinks = format!(
        "{}{}",
        file_sink(Path::new("{dir}/audit.log")),
        remote_sink(
            &collector.address(),
            spool.path(),
            "hostname = \"sw-test-host\"\nfacility = \"local3\""
        )
    );
    let proxy = start_proxy(&sinks);
    traffic(&proxy, 5);
    // A refused request is recorded too (a 400: not a valid path).
    let refused = http_request(
        &proxy.socket,
        b"GET /v1.41/containers/../json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        T,
    )
    .unwrap();
    assert_eq!(head_line(&refused), "HTTP/1.1 400 Bad Request");
    let file = proxy.dir.path().join("audit.log");
    wait_for(T, || {
        let r = audit_records(&file);
        r.iter().any(|r| r["decision"] == "deny").then_some(())
    })
    .expect("records in the file");
    let want = settled(&file);
    assert!(want.len() >= 11, "{want:?}");
    let messages = collector.wait_messages(want.len());
    assert_same_records(&received_ids(&messages), &want, "tcp");
    let file_records = audit_records(&file);
    for (m, r) in messages.iter().zip(&file_records) {
        assert_eq!(&m.record, r, "the MSG is the record, byte for byte as JSON");
        assert_eq!(m.facility, "local3");
        assert_eq!(m.app_name, "sockwarden");
        assert_eq!(m.hostname, "sw-test-host");
        assert_eq!(m.procid, proxy.pid().to_string());
        assert_eq!(m.msgid, r["event"].as_str().unwrap_or("request"));
        let time = r["time"].as_str().unwrap();
        assert_eq!(
            &m.timestamp[..19],
            &time[..19],
            "TIMESTAMP is the record's time"
        );
    }
    let n = want.len() as f64;
    wait_metric(
        &proxy,
        "sockwarden_audit_remote_delivered_records_total{sink=\"remote\"}",
        |v| v >= n,
    );
    assert_eq!(
        metric(&proxy, "sockwarden_audit_remote_connected{sink=\"remote\"}"),
        1.0
    );
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v == 0.0,
    );
    assert!(
        metric(
            &proxy,
            "sockwarden_audit_sink_records_written_total{sink=\"file\"}"
        ) >= n
    );
    assert!(
        metric(
            &proxy,
            "sockwarden_audit_sink_records_written_total{sink=\"remote\"}"
        ) >= n
    );
    assert_eq!(
        metric(
            &proxy,
            "sockwarden_audit_sink_records_lost_total{sink=\"remote\",reason=\"sink_error\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &proxy,
            "sockwarden_audit_spool_capacity_bytes{sink=\"remote\"}"
        ),
        268435456.0
    );
    assert_eq!(admin_get(&proxy, "/readyz"), (200, "ready\n".to_owned()));
}

/// TLS (RFC 5425): rsyslog's gtls driver with a certificate from the test's CA, requiring our
/// client certificate; every record arrives in order. A collector whose certificate comes from
/// another CA is refused: nothing reaches it, the records wait in the spool, and once the
/// right collector is back they arrive, in order, once.
#[test]
fn tls_collector_is_verified_against_the_ca_and_gets_every_record() {
    let certs = tempfile::tempdir().unwrap();
    let good = ca(certs.path(), "audit-ca");
    let other = ca(certs.path(), "other-ca");
    let (server_cert, server_key) = leaf(
        &good,
        certs.path(),
        "collector",
        &["localhost", "127.0.0.1"],
        true,
    );
    let (rogue_cert, rogue_key) = leaf(
        &other,
        certs.path(),
        "rogue",
        &["localhost", "127.0.0.1"],
        true,
    );
    let (client_cert, client_key) = leaf(&good, certs.path(), "sockwarden", &["sockwarden"], false);
    let mut collector = Collector::new(Some(CollectorTls {
        ca: good.pem.clone(),
        cert: server_cert.clone(),
        key: server_key.clone(),
        require_client_cert: true,
    }));
    collector.start();
    let spool = tempfile::tempdir().unwrap();
    let sinks = format!(
        "{}{}",
        file_sink(Path::new("{dir}/audit.log")),
        remote_sink(
            &collector.address(),
            spool.path(),
            &format!(
                "protocol = \"tls\"\nca = {}\nclient_cert = {}\nclient_key = {}\nserver_name = \"localhost\"",
                toml_str(&good.pem.display().to_string()),
                toml_str(&client_cert.display().to_string()),
                toml_str(&client_key.display().to_string()),
            )
        )
    );
    let proxy = start_proxy(&sinks);
    let file = proxy.dir.path().join("audit.log");
    traffic(&proxy, 3);
    let first = settled_at_least(&file, 6);
    let messages = collector.wait_messages(first.len());
    assert_same_records(&received_ids(&messages), &first, "tls");

    // The collector is replaced by one with another CA's certificate.
    collector.stop();
    let mut rogue = Collector::new(Some(CollectorTls {
        ca: other.pem.clone(),
        cert: rogue_cert,
        key: rogue_key,
        require_client_cert: false,
    }));
    rogue.port = collector.port;
    rogue.start();
    traffic(&proxy, 3);
    let all = settled_at_least(&file, first.len() + 6);
    wait_metric(
        &proxy,
        "sockwarden_audit_remote_failures_total{sink=\"remote\"}",
        |v| v >= 2.0,
    );
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v >= 6.0,
    );
    assert_eq!(
        metric(&proxy, "sockwarden_audit_remote_connected{sink=\"remote\"}"),
        0.0
    );
    // The handshake fails on the certificate (retried, each time refused).
    let refused = wait_for(T, || {
        let log = proxy.log_text();
        (log.contains("cannot connect to the collector") && log.contains("UnknownIssuer"))
            .then_some(())
    });
    assert!(refused.is_some(), "{}", proxy.log_text());
    thread::sleep(Duration::from_millis(300));
    assert!(
        rogue.messages().is_empty(),
        "a collector with another CA's certificate got records"
    );
    rogue.stop();

    // The real collector comes back: the spooled records arrive, in order, once.
    collector.start();
    let messages = collector.wait_messages(all.len());
    assert_same_records(
        &received_ids(&messages),
        &all,
        "tls after the rogue collector",
    );
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v == 0.0,
    );
}

/// A collector stopped for a while and started again: records made meanwhile wait in the
/// spool and arrive when it is back, in order; none is lost and none arrives twice.
#[test]
fn collector_restart_loses_and_duplicates_nothing() {
    let mut collector = Collector::new(None);
    collector.start();
    let spool = tempfile::tempdir().unwrap();
    let sinks = format!(
        "{}{}",
        file_sink(Path::new("{dir}/audit.log")),
        remote_sink(&collector.address(), spool.path(), "")
    );
    let proxy = start_proxy(&sinks);
    let file = proxy.dir.path().join("audit.log");
    for round in 0..3 {
        traffic(&proxy, 3);
        let before = settled(&file);
        collector.wait_messages(before.len());
        // Stopped once sockwarden counts what it sent delivered (its connection stayed open
        // 100 ms after): records sent in the last 100 ms before a collector goes away may be
        // sent again (see collector_stopped_under_traffic_loses_nothing).
        let sent = before.len() as f64;
        wait_metric(
            &proxy,
            "sockwarden_audit_remote_delivered_records_total{sink=\"remote\"}",
            |v| v >= sent,
        );
        collector.stop();
        // While it is down: requests are served, records spool.
        traffic(&proxy, 4);
        let during = settled(&file);
        assert!(during.len() >= before.len() + 8, "round {round}");
        let waiting = (during.len() - before.len()) as f64;
        wait_metric(
            &proxy,
            "sockwarden_audit_spool_records{sink=\"remote\"}",
            |v| v == waiting,
        );
        assert_eq!(
            metric(&proxy, "sockwarden_audit_remote_connected{sink=\"remote\"}"),
            0.0
        );
        assert_eq!(
            admin_get(&proxy, "/readyz").0,
            200,
            "a spooling sink is ready"
        );
        thread::sleep(Duration::from_millis(300));
        collector.start();
        collector.wait_messages(during.len());
        // A moment more: a duplicate would show now.
        thread::sleep(Duration::from_millis(500));
        let got = received_ids(&collector.messages());
        assert_same_records(&got, &during, &format!("round {round}"));
    }
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v == 0.0,
    );
}

/// The collector is stopped and started again while requests keep coming: every record
/// arrives, in order; a record may arrive twice only where the connection broke (records sent
/// in the last moments before the collector went away are sent again: at-least-once).
#[test]
fn collector_stopped_under_traffic_loses_nothing() {
    let mut collector = Collector::new(None);
    collector.start();
    let spool = tempfile::tempdir().unwrap();
    let sinks = format!(
        "{}{}",
        file_sink(Path::new("{dir}/audit.log")),
        remote_sink(&collector.address(), spool.path(), "")
    );
    let proxy = start_proxy(&sinks);
    let file = proxy.dir.path().join("audit.log");
    let socket = proxy.socket.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = http_request(
                    &socket,
                    b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    T,
                )
                .unwrap();
                assert_eq!(head_line(&resp), "HTTP/1.1 200 OK");
                n += 1;
                // Under the default rate limit (50 a second).
                thread::sleep(Duration::from_millis(25));
            }
            n
        })
    };
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(400));
        collector.stop();
        thread::sleep(Duration::from_millis(400));
        collector.start();
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let requests = load.join().unwrap();
    assert!(requests > 50, "{requests}");
    wait_for(T, || (audit_records(&file).len() >= requests).then_some(())).unwrap();
    // The file may still be one batch behind the last requests (records are written up to
    // 20 ms after their response): read it once nothing more arrives.
    let want = wait_for(T, || {
        let before = audit_records(&file).len();
        thread::sleep(Duration::from_millis(200));
        let r = audit_records(&file);
        (r.len() == before).then(|| ids(&r))
    })
    .unwrap();
    let got = wait_for(T, || {
        let got = received_ids(&collector.messages());
        let mut unique = got.clone();
        let mut seen = std::collections::HashSet::new();
        unique.retain(|id| seen.insert(id.clone()));
        (unique.len() >= want.len()).then_some((got, unique))
    });
    let Some((got, unique)) = got else {
        panic!(
            "records lost: {} of {} received\n--- proxy log ---\n{}",
            received_ids(&collector.messages()).len(),
            want.len(),
            proxy.log_text()
        );
    };
    assert_eq!(unique, want, "every record, in order");
    // Duplicates only where a connection broke: each resend starts at or before the break
    // and is short (what the 100 ms before it took).
    let dups = got.len() - unique.len();
    eprintln!(
        "{} records, {dups} sent twice across 3 collector restarts",
        unique.len()
    );
    assert!(dups <= 3 * 40, "{dups} duplicates");
}

/// Records spooled while the collector is down survive a sockwarden restart: the next
/// sockwarden sends them first, then its own, in order, once.
#[test]
fn the_spool_survives_a_sockwarden_restart() {
    let mut collector = Collector::new(None);
    let spool = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let file = shared.path().join("audit.log");
    let sinks = format!(
        "{}{}",
        file_sink(&file),
        remote_sink(&collector.address(), spool.path(), "")
    );
    let mut proxy = start_proxy(&sinks);
    traffic(&proxy, 4);
    wait_for(T, || (audit_records(&file).len() >= 8).then_some(())).unwrap();
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v >= 8.0,
    );
    let status = proxy.terminate(T);
    assert!(status.success(), "{status:?}\n{}", proxy.log_text());
    let first_run = ids(&audit_records(&file));
    let spooled: usize = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert_eq!(
        spooled,
        first_run.len(),
        "every record of the first run is in the spool"
    );

    // A new sockwarden, same spool; the collector is up now.
    collector.start();
    let proxy = start_proxy(&sinks);
    traffic(&proxy, 2);
    let want = settled_at_least(&file, first_run.len() + 4);
    let messages = collector.wait_messages(want.len());
    thread::sleep(Duration::from_millis(300));
    assert_same_records(&received_ids(&collector.messages()), &want, "after restart");
    assert_eq!(
        received_ids(&messages[..first_run.len()]),
        first_run,
        "the first run's records come first"
    );
    wait_metric(
        &proxy,
        "sockwarden_audit_spool_records{sink=\"remote\"}",
        |v| v == 0.0,
    );
}

/// A `GET /_ping` whose query makes its record ~8 KiB, to fill a small spool quickly.
fn big_ping(proxy: &Proxy) -> String {
    let mut q = String::new();
    for i in 0..8 {
        q.push_str(&format!("p{i}={}&", "x".repeat(1000)));
    }
    let resp = http_request(
        &proxy.socket,
        format!("GET /_ping?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        T,
    )
    .unwrap();
    head_line(&resp)
}

/// The collector is unreachable and the spool (64 KiB) fills: failing closed, requests are then
/// refused with 503 and /readyz says which sink and why, until the collector takes the
/// records; failing open, requests go on and the records that did not fit are counted lost.
#[test]
fn a_full_spool_triggers_on_failure() {
    // closed
    let mut collector = Collector::new(None);
    let spool = tempfile::tempdir().unwrap();
    let proxy = start_proxy(&remote_sink(
        &collector.address(),
        spool.path(),
        "spool_max_bytes = 65536\non_failure = \"closed\"",
    ));
    let refused = wait_for(T, || {
        let line = big_ping(&proxy);
        (!line.contains("200")).then_some(line)
    })
    .expect("requests still served with a full fail-closed spool");
    assert_eq!(refused, "HTTP/1.1 503 Service Unavailable");
    let out = proxy.docker().run(&["ps"]);
    assert!(!out.status.success());
    assert!(
        stderr_str(&out).contains("the audit log cannot be written"),
        "{}",
        stderr_str(&out)
    );
    let (status, body) = admin_get(&proxy, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("audit sink remote (remote tcp://127.0.0.1:")
            && body.contains("is failing closed: spool")
            && body.contains("is full"),
        "{body}"
    );
    assert_eq!(
        metric(&proxy, "sockwarden_audit_sink_healthy{sink=\"remote\"}"),
        0.0
    );
    let spooled = metric(&proxy, "sockwarden_audit_spool_bytes{sink=\"remote\"}");
    assert!(spooled > 50_000.0 && spooled <= 65536.0, "{spooled}");
    // The collector comes up: the spool drains and requests are served again.
    collector.start();
    wait_for(T, || (big_ping(&proxy) == "HTTP/1.1 200 OK").then_some(()))
        .expect("requests refused after the spool drained");
    assert_eq!(admin_get(&proxy, "/readyz"), (200, "ready\n".to_owned()));
    let messages = collector.wait_messages(6);
    let first: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.record["path"].as_str())
        .collect();
    assert!(first.iter().all(|p| *p == "/_ping"), "{first:?}");
    drop(proxy);
    collector.stop();

    // open
    let collector = Collector::new(None);
    let spool = tempfile::tempdir().unwrap();
    let proxy = start_proxy(&remote_sink(
        &collector.address(),
        spool.path(),
        "spool_max_bytes = 65536\non_failure = \"open\"",
    ));
    for _ in 0..20 {
        assert_eq!(big_ping(&proxy), "HTTP/1.1 200 OK");
    }
    let lost = wait_metric(
        &proxy,
        "sockwarden_audit_sink_records_lost_total{sink=\"remote\",reason=\"sink_error\"}",
        |v| v >= 5.0,
    );
    assert!(
        metric(
            &proxy,
            "sockwarden_audit_records_lost_total{reason=\"sink_error\"}"
        ) >= lost
    );
    assert_eq!(admin_get(&proxy, "/readyz"), (200, "ready\n".to_owned()));
    proxy.docker().ok(&["ps"]);
}

fn sockwarden(args: &[&str]) -> std::process::Output {
    Command::new(SOCKWARDEN)
        .args(args)
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `check` refuses a spool that `serve` could not create, naming the entry's setting and line
/// as `serve` words it; it does not need the collector to be up, and a spool directory whose
/// parents do not exist yet is fine (created at start, mode 0700).
#[test]
fn check_names_the_sink_serve_would_refuse() {
    let dir = tempfile::Builder::new()
        .prefix("swc.")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let config = |spool: &str| {
        format!(
            "[[listen]]\nunix = \"{d}/ok.sock\"\n[upstream]\nsocket = \"{d}/docker.sock\"\n\
             [[audit.sinks]]\ntype = \"stdout\"\n\
             [[audit.sinks]]\ntype = \"remote\"\naddress = \"127.0.0.1:9\"\nspool_dir = \"{spool}\"\n"
        )
    };
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, config(&format!("{d}/file/spool"))).unwrap();
    let file = file.display().to_string();
    let check = sockwarden(&["check", "--config", &file]);
    assert_eq!(check.status.code(), Some(2), "{}", describe(&check));
    let serve = sockwarden(&["serve", "--config", &file]);
    assert!(!serve.status.success(), "{}", describe(&serve));
    let serve_err = stderr_str(&serve);
    let serve_err = serve_err
        .lines()
        .last()
        .unwrap()
        .strip_prefix("sockwarden: ")
        .unwrap()
        .to_owned();
    assert!(
        serve_err.contains("is not a directory") || serve_err.contains("Not a directory"),
        "{serve_err}"
    );
    assert_eq!(
        stderr_str(&check),
        format!("sockwarden: {file} line 10: audit.sinks[1].spool_dir: {serve_err}\n"),
    );
    // Missing parents are created at start; the collector may be down.
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, config(&format!("{d}/new/dir/spool"))).unwrap();
    let check = sockwarden(&["check", "--config", &file.display().to_string()]);
    assert!(check.status.success(), "{}", describe(&check));
    assert!(!dir.path().join("new").exists(), "check created nothing");
}
