//! The connection to the real daemon over its unix socket or plain TCP, with a bound on
//! connection setup: forwarded requests go over upstream connections their client
//! connection drives in its own task ([`ClientConns`], idle ones kept in a daemon-wide list);
//! lookups and the readiness probe go through hyper's pooled client.

mod conns;
mod io;

pub use conns::ClientConns;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ProxyBody;
use crate::config::{UpstreamAddr, UpstreamConfig};
use crate::error::BoxError;
use crate::splice::taken::Side;

/// A pooled client for the daemon. Cloned for each request (the forwarder and the lookups
/// hold one each): one reference count, no allocation.
#[derive(Clone, Debug)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: UpstreamAddr,
    connect_timeout: Duration,
    /// Idle connections left by client connections that ended.
    idle: Arc<conns::IdleList>,
    client: UpstreamClient,
    scheme: Scheme,
    authority: Authority,
}

#[derive(Debug)]
enum UpstreamClient {
    Unix(Client<UnixConnect, ProxyBody>),
    Tcp(Client<HttpConnector, ProxyBody>),
}

impl Upstream {
    /// Builds the client; nothing is connected until the first request.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, BoxError> {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            // The client's own Host header is forwarded as it came.
            .set_host(false);
        let idle = Arc::new(conns::IdleList::new(
            config.pool_max_idle,
            config.pool_idle_timeout,
        ));
        let inner = match &config.addr {
            UpstreamAddr::Unix(path) => Inner {
                addr: config.addr.clone(),
                connect_timeout: config.connect_timeout,
                idle,
                client: UpstreamClient::Unix(builder.build(UnixConnect {
                    timeout: config.connect_timeout,
                    socket: hyperlocal::Uri::new(path, "/").into(),
                })),
                scheme: Scheme::try_from("unix")?,
                // Every request's URI carries this, and the pool hashes it (SipHash) at least
                // three times per request: a short fixed name, not the socket path
                // hex-encoded as hyperlocal would put it (that cost ~3 % of a request).
                authority: Authority::from_static(POOL_AUTHORITY),
            },
            UpstreamAddr::Tcp(addr) => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(config.connect_timeout));
                connector.set_nodelay(true);
                Inner {
                    addr: config.addr.clone(),
                    connect_timeout: config.connect_timeout,
                    idle,
                    client: UpstreamClient::Tcp(builder.build(connector)),
                    scheme: Scheme::HTTP,
                    authority: Authority::try_from(addr.as_str())?,
                }
            }
        };
        Ok(Upstream {
            inner: Arc::new(inner),
        })
    }

    /// The daemon's address, for messages.
    pub fn addr(&self) -> &UpstreamAddr {
        &self.inner.addr
    }

    /// The upstream URI for a client's path and query, which are passed on byte for byte.
    pub fn uri_for(&self, path_and_query: PathAndQuery) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.inner.scheme.clone())
            .authority(self.inner.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// The upstream connections of one client connection: the forwarder sends its requests
    /// over them, and the connection's task drives them ([`ClientConns::drive`]).
    pub fn client_conns(&self) -> Arc<ClientConns> {
        Arc::new(ClientConns::new(self.clone()))
    }

    /// Sends a request in origin form through the pooled client (a forwarded request whose
    /// client connection has no upstream connections of its own).
    pub async fn send_pooled(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        if request.uri().authority().is_none() {
            let path_and_query = request
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = self
                .uri_for(path_and_query)
                .map_err(|e| SendError::Connect(e.into()))?;
        }
        self.send(request).await.map_err(SendError::Pooled)
    }

    /// Sends a request whose URI came from [`Upstream::uri_for`].
    pub async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        match &self.inner.client {
            UpstreamClient::Unix(c) => c.request(request).await,
            UpstreamClient::Tcp(c) => c.request(request).await,
        }
    }
}

/// Why a forwarded request got no answer from the daemon.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(BoxError),
    /// The connection failed (or the request's own body did).
    Http(hyper::Error),
    /// The pooled client failed.
    Pooled(hyper_util::client::legacy::Error),
    /// The request was lost on the way (never expected).
    Lost,
}

impl SendError {
    /// Whether connecting is what failed.
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Connect(_) => true,
            SendError::Pooled(e) => e.is_connect(),
            SendError::Http(_) | SendError::Lost => false,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(_) => f.write_str("cannot connect"),
            SendError::Http(_) => f.write_str("upstream connection failed"),
            SendError::Pooled(_) => f.write_str("upstream client failed"),
            SendError::Lost => f.write_str("the request was lost before it was sent"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(e) => Some(e.as_ref()),
            SendError::Http(e) => Some(e),
            SendError::Pooled(e) => Some(e),
            SendError::Lost => None,
        }
    }
}

/// The authority of every upstream URI when the daemon is a unix socket: the pool's key. The
/// connector knows the socket; the daemon never sees this name (requests go out in origin
/// form, with the client's own Host header).
const POOL_AUTHORITY: &str = "docker:0";

/// hyperlocal's connector, to the one configured socket whatever the URI says, with a time
/// limit: a daemon whose accept backlog is full must give a 502, not a request that hangs
/// forever.
#[derive(Clone, Debug)]
struct UnixConnect {
    timeout: Duration,
    /// The socket, as hyperlocal's URI form (its path hex-encoded in the host).
    socket: Uri,
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<hyperlocal::UnixStream, BoxError>> + Send>>;

impl tower::Service<Uri> for UnixConnect {
    type Response = hyperlocal::UnixStream;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _pool_uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        let socket = self.socket.clone();
        let mut inner = hyperlocal::UnixConnector;
        Box::pin(async move {
            match tokio::time::timeout(timeout, inner.call(socket)).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(format!("connecting took longer than {timeout:?}").into()),
            }
        })
    }
}

/// The daemon's side of a hijacked session, taken back from hyper: the connection itself
/// (a plain socket, for `crate::splice`) with the bytes hyper read past the 101's head.
pub fn taken(upgraded: hyper::upgrade::Upgraded) -> Side<impl crate::splice::taken::Connection> {
    Side::take(upgraded, |io: io::UpstreamIo| io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_authority_is_a_valid_authority() {
        assert_eq!(
            Authority::from_static(POOL_AUTHORITY).as_str(),
            POOL_AUTHORITY
        );
    }
}
