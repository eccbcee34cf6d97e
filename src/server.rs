//! Accepting clients: binds every listener, serves each connection with hyper's HTTP/1.1
//! server (with upgrades, for hijacks), and runs the shutdown sequence.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use crate::admin::Admin;
use crate::audit::Audit;
use crate::body;
use crate::config::{Config, ListenAddr};
use crate::context::{Arrival, Caller};
use crate::forward::{Forward, Upstream};
use crate::identity::Evidence;
use crate::limits::{Admission, Connections, Entry};
use crate::listener::activation::{Activation, ActivationError, Inherited};
use crate::listener::framing::{FramingWatch, Verdicts};
use crate::listener::{Accepted, ConnInfo, Listener, OwnedSocketFile, Peer, Stream};
use crate::metrics::{ListenerMetrics, Metrics};
use crate::readiness::Readiness;
use crate::reload::{ConfigSource, Live};
use crate::shutdown::Drain;
use crate::stack::{self, ProxyService};
use crate::workers::Workers;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("listen[{index}] {addr}: {source}")]
    Bind {
        /// Position in the config.
        index: usize,
        /// The address.
        addr: ListenAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The admin listener could not be bound.
    #[error("admin {addr}: {source}")]
    Admin {
        /// The address.
        addr: ListenAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The upstream settings are unusable.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The audit sink cannot be opened.
    #[error("{0}")]
    Audit(std::io::Error),
    /// The sockets systemd passed do not fit the listeners.
    #[error("{0}")]
    Activation(ActivationError),
    /// The image ledger (`[isolation] image_ledger`) cannot be read.
    #[error("{0}")]
    Ledger(String),
    /// A connection worker's thread or runtime could not be started.
    #[error("cannot start the connection workers: {0}")]
    Workers(std::io::Error),
}

/// The configuration key an address is written under.
fn address_key(addr: &ListenAddr) -> &'static str {
    match addr {
        ListenAddr::Unix { .. } => "unix",
        ListenAddr::Tcp(_) | ListenAddr::Tls { .. } => "tcp",
    }
}

/// A server with its listeners bound and its audit log open, not yet accepting.
#[derive(Debug)]
pub struct Server {
    config: Config,
    source: ConfigSource,
    listeners: Vec<(Arc<str>, Listener)>,
    admin: Option<Listener>,
    audit: Audit,
    watch_config: bool,
}

impl Server {
    /// Binds every configured listener and opens the audit sink. Fails without leaving socket
    /// files behind. `source` is where a reload reads the configuration again.
    pub async fn bind(config: Config, source: ConfigSource) -> Result<Server, StartError> {
        Server::bind_with(config, source, Inherited::none()).await
    }

    /// [`Server::bind`], taking the sockets systemd passed (`inherited`) for the entries they
    /// match instead of binding those (see [`crate::listener::activation`]).
    pub async fn bind_with(
        config: Config,
        source: ConfigSource,
        inherited: Inherited,
    ) -> Result<Server, StartError> {
        let mut assigned = inherited
            .assign(&config.activation_entries(), config.admin.as_ref())
            .map_err(StartError::Activation)?;
        crate::isolation::ledger::open_for(config.authority.isolates(), &config.image_ledger)
            .map_err(|e| StartError::Ledger(format!("isolation.image_ledger: {e}")))?;
        let audit =
            Audit::start(config.audit.clone(), Metrics::new()).map_err(StartError::Audit)?;
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (index, listen) in config.listeners.iter().enumerate() {
            let addr = &listen.addr;
            let passed = assigned.listeners.get_mut(index).and_then(Option::take);
            let bound = match passed {
                Some(socket) => {
                    tracing::info!(listener = %addr, "using the socket passed by systemd");
                    Listener::inherited(socket, addr)
                }
                None => Listener::bind(addr).await,
            };
            match bound {
                Ok(listener) => listeners.push((Arc::from(addr.to_string()), listener)),
                Err(source) => {
                    remove_bound(listeners.iter().map(|(_, l)| l));
                    return Err(StartError::Bind {
                        index,
                        addr: addr.clone(),
                        source,
                    });
                }
            }
        }
        let admin = match &config.admin {
            Some(addr) => match match assigned.admin.take() {
                Some(socket) => {
                    tracing::info!(admin = %addr, "using the socket passed by systemd");
                    Listener::inherited(socket, addr)
                }
                None => Listener::bind(addr).await,
            } {
                Ok(listener) => Some(listener),
                Err(source) => {
                    remove_bound(listeners.iter().map(|(_, l)| l));
                    return Err(StartError::Admin {
                        addr: addr.clone(),
                        source,
                    });
                }
            },
            None => None,
        };
        Ok(Server {
            config,
            source,
            listeners,
            admin,
            audit,
            watch_config: false,
        })
    }

    /// Reload when the configuration file's content changes (`serve --watch-config`; see
    /// [`crate::reload::watch`]). No effect when the configuration is not from a file.
    pub fn watch_config(mut self, on: bool) -> Server {
        self.watch_config = on;
        self
    }

    /// What [`Server::bind`] would refuse, found without binding or creating anything (see
    /// [`crate::listener::preflight`]), for `sockwarden check`: the setting at fault and the
    /// error exactly as `serve` reports it. Checked as the user running it.
    pub fn preflight(config: &Config) -> Result<(), Box<(String, StartError)>> {
        Server::preflight_except(config, &[], false)
    }

    /// [`Server::preflight`] for the entries whose socket does not come from systemd: those
    /// marked in `passed` (by listen entry; `admin_passed` for the admin listener) and those
    /// with `activation = "required"` are systemd's to create, and are not checked.
    pub fn preflight_except(
        config: &Config,
        passed: &[bool],
        admin_passed: bool,
    ) -> Result<(), Box<(String, StartError)>> {
        if let Err((setting, e)) = Audit::preflight_sinks(&config.audit) {
            return Err(Box::new((setting, StartError::Audit(e))));
        }
        if config.authority.isolates() {
            if let Err(e) = crate::isolation::ledger::preflight(&config.image_ledger) {
                return Err(Box::new((
                    "isolation.image_ledger".to_owned(),
                    StartError::Ledger(e),
                )));
            }
        }
        for (index, listen) in config.listeners.iter().enumerate() {
            if listen.activation == Activation::Required
                || passed.get(index).copied().unwrap_or(false)
            {
                continue;
            }
            if let Err(source) = crate::listener::preflight(&listen.addr) {
                let setting = format!("listen[{index}].{}", address_key(&listen.addr));
                let addr = listen.addr.clone();
                return Err(Box::new((
                    setting,
                    StartError::Bind {
                        index,
                        addr,
                        source,
                    },
                )));
            }
        }
        if let Some(addr) = config.admin.as_ref().filter(|_| !admin_passed) {
            if let Err(source) = crate::listener::preflight(addr) {
                let setting = format!("admin.{}", address_key(addr));
                let addr = addr.clone();
                return Err(Box::new((setting, StartError::Admin { addr, source })));
            }
        }
        Ok(())
    }

    /// The TCP addresses actually bound, in listener order.
    pub fn tcp_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(_, l)| l.local_tcp_addr())
            .collect()
    }

    /// Serves until `shutdown` resolves, then drains and cleans up. SIGHUP reloads the
    /// configuration; SIGUSR1 reopens the audit file.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let drain = Drain::new();
        // The fetch rule refuses sources that are these listeners (`inspect::fetch`).
        crate::inspect::layer::fetch::set_own_listeners(self.tcp_addrs());
        let upstream = Upstream::new(&self.config.upstream)
            .map_err(|e| StartError::Upstream(e.to_string()))?;
        if let Some(ledger) = crate::isolation::ledger::global() {
            // A ledger that did not exist adopts the images labelled now, before any tenant is
            // served; if the daemon cannot be asked yet, the first request that needs it does.
            let lookup = crate::lookup::Lookup::new(upstream.clone());
            let label = self.config.authority.owner_label().clone();
            if let Err(e) = crate::isolation::ledger::adopt::ready(ledger, &lookup, &label).await {
                tracing::warn!(
                    ledger = %ledger.path().display(),
                    error = %e,
                    "the image ledger could not adopt the daemon's labelled images yet; \
                     retried when a tenant's request needs it"
                );
            }
        }
        let audit = self.audit.clone();
        let live = Live::new(self.config.clone(), self.source, audit.clone());
        let build_cgroups = {
            use crate::buildcgroup::{BuildCgroups, Setting};
            let socket = match &self.config.upstream.addr {
                crate::config::UpstreamAddr::Unix(path) => Some(path.clone()),
                crate::config::UpstreamAddr::Tcp(_) => None,
            };
            match &self.config.upstream.build_cgroup {
                Setting::Off => None,
                Setting::Auto => Some(BuildCgroups::new(None, socket)),
                Setting::Dir(dir) => Some(BuildCgroups::new(Some(dir.clone()), socket)),
            }
        };
        let service = stack::build(
            Forward::new(upstream.clone(), drain.clone()),
            audit.clone(),
            build_cgroups,
        );
        let signals = tokio::spawn(handle_signals(live.clone(), audit.clone()));
        let watcher = match live.config_file() {
            Some(path) if self.watch_config => Some(tokio::spawn(crate::reload::watch::watch(
                live.clone(),
                path.to_path_buf(),
            ))),
            _ => None,
        };
        // Whether the daemon can be reached is checked once at start, in the background: a
        // failure is a warning with its reason and fix, and sockwarden serves on.
        let readiness = Readiness::new(upstream.clone());
        let start_check = tokio::spawn({
            let readiness = readiness.clone();
            async move { readiness.check_at_start().await }
        });
        let mut files = Vec::new();
        let mut accepting = tokio::task::JoinSet::new();
        if let Some(listener) = self.admin {
            if let Some(addr) = &self.config.admin {
                tracing::info!(admin = %addr, "admin listener (/healthz /readyz /metrics POST /reload)");
            }
            files.extend(socket_file(&listener).cloned());
            let admin = Admin {
                live: live.clone(),
                metrics: audit.metrics().clone(),
                readiness,
                audit: audit.clone(),
            };
            accepting.spawn(crate::admin::run(listener, admin, drain.clone()));
        }
        let workers = match self.config.workers {
            Some(count) => Workers::start(count, self.config.pin_workers),
            None => Workers::per_cpu(self.config.pin_workers),
        }
        .map_err(StartError::Workers)?;
        let connections = Connections::new(connection_budget(&self.config));
        let shared = Arc::new(Shared {
            live,
            service,
            header_timeout: self.config.header_read_timeout,
            body_timeout: self.config.body_read_timeout,
            drain: drain.clone(),
            connections,
            metrics: audit.metrics().clone(),
            daemon_socket: match &self.config.upstream.addr {
                crate::config::UpstreamAddr::Unix(path) => Some(path.clone()),
                crate::config::UpstreamAddr::Tcp(_) => None,
            },
            upstream: upstream.clone(),
            workers,
        });
        for (name, listener) in self.listeners {
            tracing::info!(listener = %name, upstream = %self.config.upstream.addr, "listening");
            files.extend(socket_file(&listener).cloned());
            accepting.spawn(accept_loop(name, listener, shared.clone()));
        }
        shutdown.await;
        let grace = self.config.shutdown_grace;
        tracing::info!(grace = ?grace, "shutting down: no new connections");
        drain.begin();
        signals.abort();
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        start_check.abort();
        // Accept loops end at once; their listeners close, and the socket files go with them.
        while accepting.join_next().await.is_some() {}
        remove_files(&files);
        let left = drain.finish(grace).await;
        if left > 0 {
            tracing::warn!(
                tasks = left,
                "grace period over: closed remaining connections and sessions"
            );
        }
        drop(shared);
        audit.close(Duration::from_secs(5)).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The process-wide connection budget: `server.max_connections`, else derived from the
/// descriptor limit, which is first raised to its hard limit. A configured budget larger than
/// the descriptors allow is kept (the admin asked for it) with a warning.
fn connection_budget(config: &Config) -> usize {
    let nofile = crate::limits::raise_nofile();
    let derived =
        nofile.map(|n| crate::limits::connection_budget(n, config.upstream.pool_max_idle));
    let budget = match (config.max_connections, derived) {
        (Some(set), Some(derived)) if set > derived => {
            tracing::warn!(
                max_connections = set,
                nofile = nofile.unwrap_or(0),
                "server.max_connections exceeds what the descriptor limit (RLIMIT_NOFILE) allows ({derived}); \
                 accepting may fail with EMFILE before it is reached"
            );
            set
        }
        (Some(set), _) => set,
        (None, Some(derived)) => derived,
        // The limit cannot be read: assume the common default of 1,024.
        (None, None) => crate::limits::connection_budget(1024, config.upstream.pool_max_idle),
    };
    tracing::info!(
        max_connections = budget,
        nofile = nofile.unwrap_or(0),
        "client connections admitted at once (server.max_connections)"
    );
    budget
}

/// SIGHUP: reload. SIGUSR1: reopen the audit file (logrotate). Runs until aborted.
async fn handle_signals(live: Live, audit: Audit) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut hup, mut usr1) = match (
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    ) {
        (Ok(hup), Ok(usr1)) => (hup, usr1),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install SIGHUP/SIGUSR1 handlers; reload through the admin listener");
            return;
        }
    };
    loop {
        tokio::select! {
            Some(()) = hup.recv() => {
                // The outcome is logged and audited by `reload` itself.
                let _ = live.reload("SIGHUP").await;
            }
            Some(()) = usr1.recv() => audit.reopen(),
            else => return,
        }
    }
}

fn remove_bound<'a>(listeners: impl Iterator<Item = &'a Listener>) {
    for bound in listeners {
        if let Some(file) = socket_file(bound) {
            file.remove();
        }
    }
}

fn remove_files(files: &[OwnedSocketFile]) {
    for file in files {
        file.remove();
    }
}

fn socket_file(listener: &Listener) -> Option<&OwnedSocketFile> {
    match listener {
        Listener::Unix { owned, .. } => owned.as_ref(),
        Listener::Tcp(_) | Listener::Tls { .. } => None,
    }
}

/// What every connection task needs.
struct Shared {
    live: Live,
    service: ProxyService,
    header_timeout: Duration,
    body_timeout: Duration,
    drain: Drain,
    connections: Connections,
    metrics: Metrics,
    /// The daemon's unix socket, to tell its own connections apart (`identity::deputy`).
    daemon_socket: Option<std::path::PathBuf>,
    /// The daemon, for each connection's own upstream connections.
    upstream: Upstream,
    /// Where connections are served.
    workers: Workers,
}

/// Accepts on one listener until shutdown begins.
async fn accept_loop(name: Arc<str>, listener: Listener, shared: Arc<Shared>) {
    let counts = shared.metrics.listener(&name);
    loop {
        // The drain first: a steady stream of connections never keeps a listener open.
        let accepted = tokio::select! {
            biased;
            _ = shared.drain.begun() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(accepted) => {
                // Over the process's budget the connection is closed before anything is read:
                // its descriptor comes back at once, and the clients already in keep theirs.
                let Some(entry) = shared.connections.enter() else {
                    shared.metrics.limited("", "connections");
                    tracing::debug!(listener = %name, peer = %accepted.peer_hint(), "server.max_connections reached; connection closed");
                    continue;
                };
                // The TLS handshake, if any, runs in the connection's task, so a slow or
                // silent client cannot hold up the accept loop.
                // Boxed once here: the connection's future is large (the whole hyper
                // connection and service stack), and tracking, placing and spawning it on a
                // worker would otherwise copy it at every step (~80K instructions of memcpy
                // per connection, measured with callgrind).
                let serve = Box::pin(establish_and_serve(
                    accepted,
                    entry,
                    name.clone(),
                    counts.clone(),
                    shared.clone(),
                ));
                shared.workers.spawn(shared.drain.track(serve));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(listener = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Completes the TLS handshake (bounded by the header timeout), identifies the client,
/// applies its connection limits, serves.
async fn establish_and_serve(
    accepted: Accepted,
    entry: Entry,
    name: Arc<str>,
    counts: ListenerMetrics,
    shared: Arc<Shared>,
) {
    let hint = accepted.peer_hint();
    let accepted = match accepted.rehome() {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::warn!(listener = %name, peer = %hint, error = %e, "cannot serve the connection on this worker; closed");
            return;
        }
    };
    let established = tokio::select! {
        biased;
        established = accepted.establish(shared.header_timeout) => established,
        _ = shared.drain.begun() => return,
    };
    let (stream, peer) = match established {
        Ok(established) => established,
        Err(e) => {
            tracing::info!(listener = %name, peer = %hint, error = %e, "TLS handshake failed; connection refused");
            return;
        }
    };
    let _open = counts.opened();
    let runtime = shared.live.current();
    let from_daemon = daemon_origin(&stream, &peer, &name, &shared).await;
    let client = if from_daemon.is_some() {
        None
    } else {
        runtime.identify(&name, &peer)
    };
    let limits = runtime.limits.settings(client.as_deref()).clone();
    // A peer that matched no client is counted under the empty name: its requests are all
    // refused, but its connections still hold descriptors.
    let key = client.clone().unwrap_or_else(|| Arc::from(""));
    // Under `isolation = "user"` each unix user of the client is counted on its own.
    let user = match &peer {
        Peer::Unix { uid, .. } if runtime.limits.per_user(client.as_deref()) => Some(*uid),
        _ => None,
    };
    // The slot holds the connection's place in the budget: with it into a hijacked session.
    let (slot, over_limit) = match shared.connections.admit(&key, user, limits.max_connections) {
        Admission::Open(mut slot) => {
            slot.hold(entry);
            (Some(Arc::new(slot)), None)
        }
        Admission::OverLimit(over, mut slot) => {
            slot.hold(entry);
            (Some(Arc::new(slot)), Some(over))
        }
        Admission::Close => {
            shared.metrics.limited(&key, "connections");
            tracing::debug!(listener = %name, peer = %peer, client = %key, "too many connections waiting for their refusal; closed");
            return;
        }
    };
    // The refusal of an unattributed peer is the policy's 403, not a 429.
    let over_limit = over_limit.filter(|_| client.is_some());
    let mut evidence = Evidence::collect(&peer);
    if let Some(Some(pid)) = from_daemon {
        evidence.exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    }
    let info = ConnInfo {
        audit_fields: crate::audit::record::connection_fields(&name, &peer, &evidence),
        listener: name.clone(),
        peer,
        client,
        generation: runtime.generation,
        slot,
        over_limit,
        from_daemon: from_daemon.is_some(),
    };
    // Every diagnostic line of the connection, its requests and hijacked sessions says where
    // it came from and who it is (the span made only when a line needs it: `logging::conn`).
    let log =
        crate::logging::conn::ConnLog::new(name.clone(), info.peer.clone(), info.client.clone());
    if let Some(span) = log.span() {
        tracing::debug!(parent: span, "connection");
    }
    let mut builder = http1::Builder::new();
    builder
        // One timer entry per connection, not one per request (see conn_timer).
        .timer(crate::conn_timer::ConnTimer::new())
        // hyper starts this timer whenever the connection waits for a request head, idle
        // keep-alive included: it is the idle timeout too.
        .header_read_timeout(limits.idle_timeout.map_or(shared.header_timeout, |idle| {
            idle.min(shared.header_timeout)
        }))
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(DEFAULT_BUF))
        // A connection over its limit gets its one 429 and is closed.
        .keep_alive(over_limit.is_none());
    log.instrument(serve_connection(stream, info, &builder, shared))
        .await;
}

/// Whether a TCP peer is the Docker daemon itself (`Some(Some(pid))`), may be (`Some(None)`)
/// or is not (`None`); see `identity::deputy`. Logged at warn level: a client made the daemon
/// fetch from sockwarden.
async fn daemon_origin(
    stream: &Stream,
    peer: &Peer,
    listener: &str,
    shared: &Shared,
) -> Option<Option<i32>> {
    use crate::identity::deputy::{tcp_origin, Origin};
    let (crate::listener::Peer::Tcp(addr) | crate::listener::Peer::Tls { addr, .. }) = peer else {
        return None;
    };
    let (local, socket) = (stream.local_tcp_addr()?, shared.daemon_socket.clone()?);
    let addr = *addr;
    let origin = tokio::task::spawn_blocking(move || tcp_origin(local, addr, &socket))
        .await
        .unwrap_or_else(|e| Origin::Unknown(format!("the lookup failed: {e}")));
    match origin {
        Origin::Other => None,
        Origin::Daemon(pid) => {
            tracing::warn!(listener, peer = %addr, daemon.pid = pid, "a connection from the Docker daemon itself (a fetch a client asked of it) is refused and attributed to no client");
            Some(Some(pid))
        }
        Origin::Unknown(why) => {
            tracing::warn!(listener, peer = %addr, reason = %why, "a connection that may come from the Docker daemon itself is refused and attributed to no client");
            Some(None)
        }
    }
}

/// hyper's default read buffer limit (8 KiB + 400 KiB), kept unless a larger head is allowed.
const DEFAULT_BUF: usize = 8192 + 4096 * 100;

async fn serve_connection(
    stream: Stream,
    info: ConnInfo,
    builder: &http1::Builder,
    shared: Arc<Shared>,
) {
    // Shared by the connection's requests (each carries it in its `Arrival`).
    let info = Arc::new(info);
    // For the lines logged when the connection ends badly (the peer's text is made only then:
    // formatting it for every connection cost ~1,400 instructions).
    let ended = info.clone();
    let live = shared.live.clone();
    let service = shared.service.clone();
    let body_timeout = shared.body_timeout;
    // hyper hides duplicate Content-Length headers and Content-Length beside
    // Transfer-Encoding from the service; the watch sees the raw heads (listener::framing).
    let verdicts = Verdicts::new();
    // The upstream connections this client's requests go over, driven below in this task
    // (each request carries them to the forwarder).
    let conns = shared.upstream.client_conns();
    let stream = FramingWatch::new(stream, verdicts.clone());
    let handler_conns = conns.clone();
    let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
        // Every request body has a read deadline: a client that stops sending mid-body is
        // cut off (408) and its connection closed.
        let mut request = request.map(|b| body::boxed(body::ReadDeadline::new(b, body_timeout)));
        let runtime = live.current();
        // After a reload the peer is attributed again under the configuration in force
        // (the daemon's own connections never are).
        let client = if info.from_daemon {
            None
        } else if runtime.generation == info.generation {
            info.client.clone()
        } else {
            runtime.identify(&info.listener, &info.peer)
        };
        request.extensions_mut().insert(Arrival {
            caller: Caller { client, runtime },
            conn: info.clone(),
            framing: verdicts.next(),
            conns: handler_conns.clone(),
        });
        service.clone().oneshot(request)
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), handler)
        .with_upgrades();
    let drain = &shared.drain;
    // These selects are polled at every wake-up of the connection (several per request):
    // `biased` polls the connection first and the drain signals after it, every time, without
    // drawing a random branch order (~260 instructions per request, callgrind). Nothing is
    // starved: the connection is ready only once, when it ends.
    let served = async {
        tokio::pin!(connection);
        tokio::select! {
            biased;
            result = connection.as_mut() => Some(result),
            _ = drain.begun() => {
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    biased;
                    result = connection.as_mut() => Some(result),
                    _ = drain.forced() => None,
                }
            }
        }
    };
    // The client connection and its upstream connections are polled together: a forwarded
    // request and its answer never leave this task.
    let result = tokio::select! {
        biased;
        result = conns.drive(served) => result,
        _ = drain.forced() => None,
    };
    let Some(result) = result else { return };
    if let Err(e) = result {
        let error = crate::error::chain(&e);
        if e.is_parse_version_h2() {
            // An HTTP/2 client (prior knowledge) gets no HTTP/1.1 answer it could show.
            crate::logging::request::in_span(
                || tracing::warn!(peer = %ended.peer, error = %error, "HTTP/2 connection refused: sockwarden speaks HTTP/1.1"),
            );
        } else {
            tracing::debug!(peer = %ended.peer, error = %error, "connection ended with an error");
        }
    }
}
