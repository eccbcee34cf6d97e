//! Client connections over unix sockets, and the keep-alive exchange the `rps` and `paired`
//! runners share: the request every worker sends ([`Target`]), how one exchange went
//! ([`Exchange`]) and what went wrong ([`Tally`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::time::Instant;

use crate::BoxError;

pub(crate) async fn connect<B>(socket: &Path) -> Result<SendRequest<B>, BoxError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = UnixStream::connect(socket).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the peer closes it.
        let _ = conn.await;
    });
    Ok(sender)
}

pub(crate) async fn drain(body: &mut Incoming) -> Result<u64, BoxError> {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame?.data_ref() {
            n += d.len() as u64;
        }
    }
    Ok(n)
}

/// What went wrong in a worker: counted, with the first error's text.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) errors: u64,
    pub(crate) bad_status: u64,
    pub(crate) first_error: Option<String>,
}

impl Tally {
    /// An error; `counted` when it happened inside the measured window.
    pub(crate) fn error(&mut self, counted: bool, text: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
        }
        self.first_error.get_or_insert_with(text);
    }

    /// A response; one with a failure status is counted as such.
    pub(crate) fn response(&mut self, status: StatusCode) {
        if !status.is_success() {
            self.bad_status += 1;
            self.first_error
                .get_or_insert_with(|| format!("status {status}"));
        }
    }

    /// An exchange that brought no response; `true` when the worker must stop (the deadline
    /// passed, or no request can be sent at all). `counted`: inside the measured window.
    pub(crate) fn failed(&mut self, exchange: Exchange, counted: bool) -> bool {
        match exchange {
            Exchange::Done(..) => false,
            Exchange::Failed(e) => {
                self.error(counted, || e.to_string());
                false
            }
            Exchange::TimedOut => {
                self.error(true, || "request timed out".into());
                true
            }
            Exchange::Unsendable(e) => {
                self.error(true, || e);
                true
            }
        }
    }

    /// Adds another worker's tally.
    pub(crate) fn add(&mut self, other: Tally) {
        self.errors += other.errors;
        self.bad_status += other.bad_status;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// How one request on a keep-alive connection went.
pub(crate) enum Exchange {
    /// Answered; the status and the body's length.
    Done(StatusCode, u64),
    /// The connection failed (it is dropped; the next request opens another).
    Failed(BoxError),
    /// Still unanswered at the deadline.
    TimedOut,
    /// The request could not even be built: nothing will work.
    Unsendable(String),
}

/// The request every worker sends.
pub(crate) struct Target {
    pub(crate) socket: PathBuf,
    pub(crate) host: HeaderValue,
    pub(crate) method: Method,
    pub(crate) path: String,
}

impl Target {
    /// The connection in `slot`, or a new one; `None` after a failed connect (noted, with a
    /// short pause before the caller tries again).
    pub(crate) async fn checkout(
        &self,
        slot: &mut Option<SendRequest<Empty<Bytes>>>,
        tally: &mut Tally,
    ) -> Option<SendRequest<Empty<Bytes>>> {
        if let Some(s) = slot.take() {
            return Some(s);
        }
        match connect(&self.socket).await {
            Ok(s) => Some(s),
            Err(e) => {
                tally.error(true, || format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        }
    }

    /// Sends the request on `s` and reads the whole response, giving up at `deadline`.
    pub(crate) async fn exchange(
        &self,
        s: &mut SendRequest<Empty<Bytes>>,
        deadline: Instant,
    ) -> Exchange {
        let req = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(header::HOST, self.host.clone())
            .header(header::USER_AGENT, "sockwarden-loadgen")
            .body(Empty::<Bytes>::new());
        let req = match req {
            Ok(r) => r,
            Err(e) => return Exchange::Unsendable(e.to_string()),
        };
        let res = tokio::time::timeout_at(deadline, async {
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            let n = drain(&mut body).await?;
            Ok::<_, BoxError>((status, n))
        })
        .await;
        match res {
            Ok(Ok((status, n))) => Exchange::Done(status, n),
            Ok(Err(e)) => Exchange::Failed(e),
            Err(_) => Exchange::TimedOut,
        }
    }
}
