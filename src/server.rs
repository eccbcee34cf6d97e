//! Accepting clients: binds every listener, serves each connection with hyper's HTTP/1.1
//! server (with upgrades, for hijacks), and runs the shutdown sequence.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use crate::body;
use crate::config::{Config, ListenAddr};
use crate::forward::{Forward, Upstream};
use crate::identity::{self, Evidence, ListenerClients};
use crate::listener::framing::{FramingWatch, Verdicts};
use crate::listener::{Accepted, ConnInfo, Listener, OwnedSocketFile, Stream};
use crate::policy::Authority;
use crate::shutdown::Drain;
use crate::stack::{self, ProxyService};

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
    /// The upstream settings are unusable.
    #[error("upstream: {0}")]
    Upstream(String),
}

/// A server with its listeners bound, not yet accepting.
#[derive(Debug)]
pub struct Server {
    config: Config,
    listeners: Vec<(Arc<str>, Listener, ListenerClients)>,
}

impl Server {
    /// Binds every configured listener. Fails without leaving socket files behind.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (index, listen) in config.listeners.iter().enumerate() {
            let addr = &listen.addr;
            match Listener::bind(addr).await {
                Ok(listener) => listeners.push((
                    Arc::from(addr.to_string()),
                    listener,
                    listen.clients.clone(),
                )),
                Err(source) => {
                    for (_, bound, _) in &listeners {
                        if let Some(file) = socket_file(bound) {
                            file.remove();
                        }
                    }
                    return Err(StartError::Bind {
                        index,
                        addr: addr.clone(),
                        source,
                    });
                }
            }
        }
        Ok(Server { config, listeners })
    }

    /// The TCP addresses actually bound, in listener order.
    pub fn tcp_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(_, l, _)| l.local_tcp_addr())
            .collect()
    }

    /// Serves until `shutdown` resolves, then drains and cleans up.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let drain = Drain::new();
        let upstream = Upstream::new(&self.config.upstream)
            .map_err(|e| StartError::Upstream(e.to_string()))?;
        let service = stack::build(
            Forward::new(upstream, drain.clone()),
            self.config.authority.clone(),
        );
        let header_timeout = self.config.header_read_timeout;
        let mut files = Vec::new();
        let mut accepting = tokio::task::JoinSet::new();
        for (name, listener, clients) in self.listeners {
            tracing::info!(listener = %name, upstream = %self.config.upstream.addr, "listening");
            files.extend(socket_file(&listener).cloned());
            let acceptor = Acceptor {
                name,
                clients,
                authority: self.config.authority.clone(),
                service: service.clone(),
                header_timeout,
                drain: drain.clone(),
            };
            accepting.spawn(acceptor.run(listener));
        }
        shutdown.await;
        let grace = self.config.shutdown_grace;
        tracing::info!(grace = ?grace, "shutting down: no new connections");
        drain.begin();
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
        tracing::info!("stopped");
        Ok(())
    }
}

fn remove_files(files: &[OwnedSocketFile]) {
    for file in files {
        file.remove();
    }
}

fn socket_file(listener: &Listener) -> Option<&OwnedSocketFile> {
    match listener {
        Listener::Unix { owned, .. } => Some(owned),
        Listener::Tcp(_) | Listener::Tls { .. } => None,
    }
}

/// Accepts on one listener and attributes each connection to a client.
struct Acceptor {
    name: Arc<str>,
    clients: ListenerClients,
    authority: Arc<Authority>,
    service: ProxyService,
    header_timeout: Duration,
    drain: Drain,
}

impl Acceptor {
    async fn run(self, listener: Listener) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = self.drain.begun() => return,
            };
            match accepted {
                Ok(accepted) => {
                    // The TLS handshake, if any, runs in the connection's task, so a slow or
                    // silent client cannot hold up the accept loop.
                    self.drain.spawn(establish_and_serve(
                        accepted,
                        self.name.clone(),
                        self.clients.clone(),
                        self.authority.clone(),
                        self.service.clone(),
                        self.header_timeout,
                        self.drain.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %self.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Completes the TLS handshake (bounded by `header_timeout`), identifies the client, serves.
async fn establish_and_serve(
    accepted: Accepted,
    name: Arc<str>,
    clients: ListenerClients,
    authority: Arc<Authority>,
    service: ProxyService,
    header_timeout: Duration,
    drain: Drain,
) {
    let hint = accepted.peer_hint();
    let established = tokio::select! {
        established = accepted.establish(header_timeout) => established,
        _ = drain.begun() => return,
    };
    let (stream, peer) = match established {
        Ok(established) => established,
        Err(e) => {
            tracing::info!(listener = %name, peer = %hint, error = %e, "TLS handshake failed; connection refused");
            return;
        }
    };
    let client = identity::identify(authority.clients(), &clients, &peer);
    let info = ConnInfo {
        listener: name.clone(),
        evidence: Arc::new(Evidence::collect(&peer)),
        peer,
        client,
    };
    tracing::debug!(listener = %name, peer = %info.peer, client = ?info.client, "connection");
    serve_connection(stream, info, service, header_timeout, drain).await;
}

async fn serve_connection(
    stream: Stream,
    info: ConnInfo,
    service: ProxyService,
    header_timeout: Duration,
    drain: Drain,
) {
    let peer = info.peer.to_string();
    // hyper hides duplicate Content-Length headers and Content-Length beside
    // Transfer-Encoding from the service; the watch sees the raw heads (listener::framing).
    let verdicts = Verdicts::new();
    let stream = FramingWatch::new(stream, verdicts.clone());
    let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(body::boxed);
        request.extensions_mut().insert(info.clone());
        request.extensions_mut().insert(verdicts.next());
        service.clone().oneshot(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let connection = builder
        .serve_connection(TokioIo::new(stream), handler)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = drain.begun() => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                _ = drain.forced() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer, error = %crate::error::chain(&e), "connection ended with an error");
    }
}
