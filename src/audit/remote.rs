//! The remote sink: audit records shipped to a syslog collector (rsyslog, syslog-ng, Vector, a
//! SIEM) as RFC 5424 messages over TCP with octet counting (RFC 6587), or over TLS (RFC 5425)
//! with the collector's certificate verified against a configured CA (and, optionally, a client
//! certificate of ours).
//!
//! No request waits for the network: the sink's writer thread appends each batch to the
//! on-disk [`Spool`] and a sender thread of its own delivers from there, in order. The sender
//! connects (resolving a host name at each attempt), sends what is spooled, and counts a record
//! delivered once the connection it went out on has stayed open for [`CONFIRM_AFTER`] after it
//! was written (a collector that goes away closes the connection or resets it, and what was
//! written in that window is sent again on the next connection). So delivery is at-least-once:
//! a record can arrive twice (same `id`) when the collector or sockwarden goes away within that
//! window, and is never skipped while the spool has room. Syslog over TCP has no application
//! acknowledgement, so a collector host that vanishes without closing the connection (power
//! loss) can lose what its kernel had acknowledged but not handed to the collector.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::spool::{Pos, Spool};
use super::syslog_format::Header;
use crate::error::ConfigError;
use crate::metrics::SinkMetrics;

/// How long a written record's connection must stay open before it counts as delivered.
pub const CONFIRM_AFTER: Duration = Duration::from_millis(100);
/// How long a closed connection is given for a reset of unread data to arrive.
const CLOSE_SETTLE: Duration = Duration::from_millis(50);
/// Longest wait to connect (each address a name resolves to).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for a write or the TLS handshake before the connection is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays: from the first to the longest, doubling.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// About how much is read from the spool and sent in one go.
const CHUNK: usize = 64 * 1024;

/// Plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 6587 octet counting over TCP.
    Tcp,
    /// The same inside TLS (RFC 5425).
    Tls,
}

/// The collector's TLS settings, loaded and checked when the configuration is read.
#[derive(Clone)]
pub struct TlsClient {
    /// The CA file the collector's certificate must chain to.
    pub ca: PathBuf,
    /// Our certificate and key, if the collector asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The name the collector's certificate must carry.
    pub server_name: ServerName<'static>,
    /// The rustls configuration built from them.
    pub config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("ca", &self.ca)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.ca == other.ca
            && self.client_cert == other.client_cert
            && self.server_name == other.server_name
    }
}

impl Eq for TlsClient {}

/// A remote sink's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    /// `host:port` as configured (a name is resolved at each connection attempt).
    pub address: String,
    /// TLS settings; `None` for plain TCP.
    pub tls: Option<TlsClient>,
    /// Where undelivered records wait.
    pub spool_dir: PathBuf,
    /// The spool's bound.
    pub spool_max_bytes: u64,
    /// RFC 5424 facility number.
    pub facility: u8,
    /// HOSTNAME (validated); `None`: this host's name at start.
    pub hostname: Option<String>,
    /// APP-NAME (validated).
    pub app_name: String,
}

impl RemoteConfig {
    /// `tcp` or `tls`.
    pub fn protocol(&self) -> Protocol {
        if self.tls.is_some() {
            Protocol::Tls
        } else {
            Protocol::Tcp
        }
    }
}

impl std::fmt::Display for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.protocol() {
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        };
        write!(f, "remote {protocol}://{}", self.address)
    }
}

/// Loads the CA, the optional client certificate and key, and checks `server_name`; errors
/// name `prefix.KEY` (`audit.sinks[1].ca`).
pub fn load_tls(
    prefix: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    server_name: &str,
) -> Result<TlsClient, ConfigError> {
    let err = |key: &str, message: String| ConfigError(format!("{prefix}.{key}: {message}"));
    let read = |key: &str, path: &Path| {
        if !path.is_absolute() {
            return Err(err(key, "must be an absolute path".into()));
        }
        std::fs::read(path).map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))
    };
    let certs = |key: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>, ConfigError> {
        let pem = read(key, path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(key, format!("{}: bad PEM: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(err(
                key,
                format!("no CERTIFICATE found in {}", path.display()),
            ));
        }
        Ok(certs)
    };
    let mut roots = RootCertStore::empty();
    for cert in certs("ca", ca)? {
        roots.add(cert).map_err(|e| {
            err(
                "ca",
                format!("{}: unusable CA certificate: {e}", ca.display()),
            )
        })?;
    }
    let server_name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| err("server_name", format!("{server_name:?}: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("ca", e.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = certs("client_cert", cert)?;
            let key_pem = read("client_key", key)?;
            let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                err(
                    "client_key",
                    format!("no usable private key in {}: {e}", key.display()),
                )
            })?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| {
                    err(
                        "client_key",
                        format!("does not fit the certificate in {}: {e}", cert.display()),
                    )
                })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsClient {
        ca: ca.to_owned(),
        client_cert: client.map(|(c, k)| (c.to_owned(), k.to_owned())),
        server_name,
        config: Arc::new(config),
    })
}

/// A full spool: `lost` records of the batch did not fit (the rest were spooled).
#[derive(Debug)]
struct SpoolFull {
    dir: PathBuf,
    max_bytes: u64,
    lost: u64,
}

impl std::fmt::Display for SpoolFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spool {} is full ({} bytes undelivered: the collector does not take records)",
            self.dir.display(),
            self.max_bytes,
        )?;
        if self.lost > 0 {
            write!(f, "; {} records not spooled", self.lost)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpoolFull {}

/// How many records of the batch were lost, when `error` is a full spool.
pub(super) fn lost_of(error: &io::Error) -> Option<u64> {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<SpoolFull>())
        .map(|full| full.lost)
}

/// The writer thread's side of a remote sink: the spool it appends to and the sender thread
/// that delivers from it (stopped, with a last confirm, when this is dropped).
pub(super) struct Shipper {
    spool: Spool,
    metrics: SinkMetrics,
    /// Set when a batch did not fit; cleared once delivery brings the spool under three
    /// quarters of its bound, so that a fail-closed sink does not flip back to healthy for
    /// each small record that still fits.
    full: bool,
    sender: Option<std::thread::JoinHandle<()>>,
}

impl Shipper {
    /// Opens the spool (an error stops sockwarden from starting) and starts the sender; the
    /// collector need not be up.
    pub(super) fn start(
        name: &str,
        config: &RemoteConfig,
        metrics: SinkMetrics,
    ) -> io::Result<Shipper> {
        let spool = Spool::open(&config.spool_dir, config.spool_max_bytes).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("spool_dir {}: {e}", config.spool_dir.display()),
            )
        })?;
        metrics.spool(spool.depth(), spool.max_bytes());
        metrics.connected(false);
        let sender = Sender::new(
            name.to_owned(),
            config.clone(),
            spool.clone(),
            metrics.clone(),
        );
        let sender = std::thread::Builder::new()
            .name("sockwarden-ship".into())
            .spawn(move || sender.run())?;
        Ok(Shipper {
            spool,
            metrics,
            full: false,
            sender: Some(sender),
        })
    }

    /// Appends a batch of `records` JSON lines to the spool; a full spool is an error that
    /// says how many did not fit ([`lost_of`]).
    pub(super) fn spool(&mut self, lines: &[u8], records: u64) -> io::Result<()> {
        let appended = self.spool.append(lines, records);
        self.metrics
            .spool(self.spool.depth(), self.spool.max_bytes());
        let appended = appended?;
        if self.full {
            let (bytes, _) = self.spool.depth();
            self.full = bytes > self.spool.max_bytes() / 4 * 3;
        }
        if appended.lost > 0 || self.full {
            self.full = true;
            return Err(io::Error::other(SpoolFull {
                dir: self.spool.dir().to_owned(),
                max_bytes: self.spool.max_bytes(),
                lost: appended.lost,
            }));
        }
        Ok(())
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.spool.stop();
        // The sender confirms what its connection took and ends; a connect or write in
        // progress ends within its timeout, which shutdown does not wait for.
        let deadline = Instant::now() + Duration::from_secs(2);
        if let Some(sender) = self.sender.take() {
            while !sender.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if sender.is_finished() {
                let _ = sender.join();
            }
        }
    }
}

/// What [`Shipper::start`] would fail on, without creating anything: the spool directory (or
/// its nearest existing ancestor) must be a writable directory. The collector is not contacted (it may be down).
pub(super) fn preflight(config: &RemoteConfig) -> io::Result<()> {
    use nix::unistd::{access, AccessFlags};
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    let dir = &config.spool_dir;
    let wrap = |e: io::Error| io::Error::new(e.kind(), format!("spool_dir {}: {e}", dir.display()));
    // The directory, or the nearest ancestor that exists (the rest is created at start).
    let mut target = dir.as_path();
    let target = loop {
        match std::fs::metadata(target) {
            Ok(meta) if !meta.is_dir() => return Err(wrap(errno(nix::errno::Errno::ENOTDIR))),
            Ok(_) => break target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match target.parent() {
                Some(parent) => target = parent,
                None => return Err(wrap(e)),
            },
            Err(e) => return Err(wrap(e)),
        }
    };
    access(target, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(errno)
        .map_err(wrap)
}

/// An open connection.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(bytes),
            Conn::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
        }
    }

    /// Whether the collector still holds the connection open: anything it sent is read and
    /// dropped (a syslog collector sends nothing but TLS session tickets); an end of stream
    /// or a close_notify is [`Peer::Closed`], a reset or a TLS error [`Peer::Failed`].
    fn peer(&mut self) -> Peer {
        if self.socket().set_nonblocking(true).is_err() {
            return Peer::Failed;
        }
        let peer = match self {
            Conn::Tcp(s) => {
                let mut buf = [0u8; 512];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break Peer::Closed,
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Peer::Open,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break Peer::Failed,
                    }
                }
            }
            Conn::Tls(s) => loop {
                let stream = &mut **s;
                match stream.conn.read_tls(&mut stream.sock) {
                    Ok(0) => break Peer::Closed,
                    Ok(_) => {
                        if stream.conn.process_new_packets().is_err() {
                            break Peer::Failed;
                        }
                        let mut buf = [0u8; 512];
                        match stream.conn.reader().read(&mut buf) {
                            // close_notify
                            Ok(0) => break Peer::Closed,
                            Ok(_) => continue,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            Err(_) => break Peer::Failed,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Peer::Open,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break Peer::Failed,
                }
            },
        };
        if peer == Peer::Open && self.socket().set_nonblocking(false).is_err() {
            return Peer::Failed;
        }
        peer
    }

    /// After the collector closed the connection: whether it closed cleanly, having read
    /// everything we sent. Data that reached it after it stopped reading is answered with a
    /// reset, which shows within a round trip; a clean close stays a plain end of stream.
    fn closed_cleanly(&mut self) -> bool {
        std::thread::sleep(CLOSE_SETTLE);
        let sock = self.socket();
        if sock.set_nonblocking(true).is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!((&*sock).read(&mut buf), Ok(0)) && matches!(sock.take_error(), Ok(None))
    }
}

/// What the collector did with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Open,
    Closed,
    Failed,
}

/// Connects to `address` (each address it resolves to in turn) and, for TLS, completes the
/// handshake, which verifies the collector's certificate.
fn connect(address: &str, tls: Option<&TlsClient>) -> io::Result<Conn> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    let mut stream = None;
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or(last)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let Some(tls) = tls else {
        return Ok(Conn::Tcp(stream));
    };
    let conn = ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(io::Error::other)?;
    let mut tls_stream = StreamOwned::new(conn, stream);
    while tls_stream.conn.is_handshaking() {
        let stream = &mut tls_stream;
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Conn::Tls(Box::new(tls_stream)))
}

/// Written, not yet confirmed: where it ends in the spool, how many records, when.
struct InFlight {
    end: Pos,
    records: u64,
    at: Instant,
}

/// The sender thread's state.
pub struct Sender {
    name: String,
    config: RemoteConfig,
    spool: Spool,
    header: Header,
    metrics: SinkMetrics,
    conn: Option<Conn>,
    /// What was written on the current connection and not confirmed yet.
    inflight: std::collections::VecDeque<InFlight>,
    /// Where the next send starts.
    next: Pos,
    retry: Duration,
    last_complaint: Option<(Instant, String)>,
}

impl Sender {
    /// A sender for sink `name`.
    pub fn new(name: String, config: RemoteConfig, spool: Spool, metrics: SinkMetrics) -> Sender {
        let hostname = config.hostname.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "-".to_owned())
        });
        let header = Header::new(
            config.facility,
            &hostname,
            &config.app_name,
            std::process::id(),
        );
        let next = spool.cursor();
        Sender {
            name,
            config,
            spool,
            header,
            metrics,
            conn: None,
            inflight: Default::default(),
            next,
            retry: RETRY_FIRST,
            last_complaint: None,
        }
    }

    /// Delivers until the spool is told to stop.
    pub fn run(mut self) {
        let mut raw = Vec::with_capacity(CHUNK);
        let mut framed = Vec::with_capacity(CHUNK + CHUNK / 2);
        loop {
            if self.spool.stopping() {
                // A last confirm of what the open connection took.
                if self.conn.as_mut().map(Conn::peer) == Some(Peer::Open) {
                    self.confirm(true);
                }
                return;
            }
            if self.conn.is_none() {
                match connect(&self.config.address, self.config.tls.as_ref()) {
                    Ok(conn) => {
                        tracing::info!(sink = %self.name, address = %self.config.address, "audit: connected to the collector");
                        self.conn = Some(conn);
                        self.metrics.connected(true);
                        self.retry = RETRY_FIRST;
                        self.next = self.spool.cursor();
                        self.inflight.clear();
                    }
                    Err(e) => {
                        self.failed(&e, "cannot connect to the collector");
                        if self.spool.pause(self.retry) {
                            return;
                        }
                        self.retry = (self.retry * 2).min(RETRY_MAX);
                        continue;
                    }
                }
            }
            match self.conn.as_mut().map(Conn::peer) {
                Some(Peer::Open) | None => {}
                Some(Peer::Closed) => {
                    // A clean close: the collector read everything it was sent.
                    if self.conn.as_mut().is_some_and(Conn::closed_cleanly) {
                        self.confirm(true);
                    }
                    self.broken(&io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the collector closed the connection",
                    ));
                    continue;
                }
                Some(Peer::Failed) => {
                    self.broken(&io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the collector reset the connection",
                    ));
                    continue;
                }
            }
            self.confirm(false);
            match self.spool.read(self.next, CHUNK, &mut raw) {
                Ok(Some((end, records))) => {
                    framed.clear();
                    let mut start = 0;
                    for end in memchr::memchr_iter(b'\n', &raw) {
                        self.header.frame(&raw[start..=end], &mut framed);
                        start = end + 1;
                    }
                    let sent = match self.conn.as_mut() {
                        Some(conn) => conn.write_all(&framed),
                        None => Ok(()),
                    };
                    match sent {
                        Ok(()) => {
                            self.inflight.push_back(InFlight {
                                end,
                                records,
                                at: Instant::now(),
                            });
                            self.next = end;
                        }
                        Err(e) => self.broken(&e),
                    }
                }
                Ok(None) => {
                    let wait = if self.inflight.is_empty() {
                        Duration::from_secs(1)
                    } else {
                        CONFIRM_AFTER
                    };
                    // Wakes for new records; otherwise checks the connection now and then.
                    self.spool.wait(self.next, wait);
                }
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "audit spool: cannot read");
                    if self.spool.pause(RETRY_MAX) {
                        return;
                    }
                }
            }
        }
    }

    /// Confirms what was written at least [`CONFIRM_AFTER`] ago (everything with `all`) on a
    /// connection just seen alive.
    fn confirm(&mut self, all: bool) {
        let mut end = None;
        let mut records = 0;
        while let Some(first) = self.inflight.front() {
            if !all && first.at.elapsed() < CONFIRM_AFTER {
                break;
            }
            end = Some(first.end);
            records += first.records;
            self.inflight.pop_front();
        }
        if let Some(end) = end {
            if let Err(e) = self.spool.confirm(end, records) {
                tracing::error!(sink = %self.name, error = %e, "audit spool: cannot save delivery");
            }
            self.metrics.delivered(records);
            self.metrics
                .spool(self.spool.depth(), self.spool.max_bytes());
        }
    }

    /// The connection broke: what it did not confirm is sent again on the next one.
    fn broken(&mut self, error: &io::Error) {
        self.conn = None;
        self.metrics.connected(false);
        self.inflight.clear();
        self.next = self.spool.cursor();
        self.failed(
            error,
            "connection to the collector lost; records stay spooled",
        );
    }

    fn failed(&mut self, error: &io::Error, what: &str) {
        self.metrics.remote_failure();
        // The same failure at most once per 10 s; a different one at once.
        let now = Instant::now();
        let key = format!("{what}: {error}");
        if self
            .last_complaint
            .as_ref()
            .is_some_and(|(t, k)| *k == key && now.duration_since(*t) < Duration::from_secs(10))
        {
            return;
        }
        self.last_complaint = Some((now, key));
        let (bytes, records) = self.spool.depth();
        tracing::warn!(
            sink = %self.name,
            address = %self.config.address,
            error = %error,
            spooled_records = records,
            spooled_bytes = bytes,
            "audit: {what}"
        );
    }
}
