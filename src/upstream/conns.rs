//! Upstream connections that a client connection drives in its own task.
//!
//! A forwarded request never changes task or thread: the client connection's task polls its
//! hyper server connection and, in the same `poll`, every upstream HTTP/1 connection it has
//! (see [`ClientConns::drive`]). The request goes from the forwarder into the upstream
//! connection's queue and its answer back without waking any other task. An upstream
//! connection serves the client's keep-alive requests one after the other; when the client
//! connection ends, an idle one goes back to the daemon-wide [`IdleList`], so that clients
//! that make one connection per command (the docker CLI) still skip the connect. It is handed
//! only to a client connection on the worker thread that made it: its socket is registered
//! with that worker's reactor, and driven from another worker every readiness event would be
//! read by the first worker and passed to the second through its wake-up descriptor (seen as
//! an `eventfd` write per request or two, for the whole life of the connection).
//!
//! A connection that the daemon closed is dropped and a new one made. A request is sent again
//! only when hyper hands it back untouched (nothing of it was written: the connection was
//! found closed first), and only when it was about to go out on a reused connection; once any
//! of it went out, a failure is the client's 502 whatever the request, as with hyper's pooled
//! client before.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::TrySendError;
use tokio::time::Instant;

use super::io::UpstreamIo;
use super::{SendError, Upstream};
use crate::body::ProxyBody;

/// The connection's own future (hyper's dispatcher, with upgrades): polled by whoever holds
/// the connection.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One upstream HTTP/1 connection: where requests go in, and the future that moves them.
pub(super) struct Conn {
    sender: SendRequest<ProxyBody>,
    driver: Driver,
}

impl Conn {
    /// Connects to the daemon (bounded by the connect timeout) and sets HTTP/1 up on it.
    pub(super) async fn open(upstream: &Upstream) -> Result<Conn, SendError> {
        let io = UpstreamIo::connect(&upstream.inner.addr, upstream.inner.connect_timeout)
            .await
            .map_err(SendError::Connect)?;
        Conn::over(io).await
    }

    /// HTTP/1 over an already connected stream.
    async fn over(io: UpstreamIo) -> Result<Conn, SendError> {
        let (sender, connection) = http1::Builder::new()
            .handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| SendError::Connect(Box::new(e)))?;
        Ok(Conn {
            sender,
            driver: Box::pin(connection.with_upgrades()),
        })
    }

    /// Moves the connection on; `true` once it has ended (closed, failed or upgraded).
    fn poll_ended(&mut self, cx: &mut Context<'_>) -> bool {
        match self.driver.as_mut().poll(cx) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "upstream connection ended");
                true
            }
            Poll::Pending => self.sender.is_closed(),
        }
    }

    /// Waiting for a request (its last answer is complete).
    fn is_idle(&self) -> bool {
        self.sender.is_ready()
    }
}

/// The daemon-wide list of idle upstream connections (`[upstream] pool_max_idle`, each kept
/// `pool_idle_timeout`): those a client connection left when it ended. Newest first out.
pub(super) struct IdleList {
    state: Mutex<IdleState>,
    max: usize,
    timeout: Duration,
}

impl std::fmt::Debug for IdleList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleList")
            .field("max", &self.max)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct IdleState {
    /// When each was parked (oldest first) and the worker thread whose reactor it is on.
    conns: VecDeque<(Instant, ThreadId, Conn)>,
    /// A sweeper task is running (it drops expired connections while nobody takes them).
    sweeping: bool,
}

impl IdleList {
    pub(super) fn new(max: usize, timeout: Duration) -> IdleList {
        IdleList {
            state: Mutex::new(IdleState::default()),
            max,
            timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, IdleState> {
        // Nothing panics while holding it; a poisoned list is still a list.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently parked connection of this thread that has not expired.
    fn take(&self) -> Option<Conn> {
        let here = std::thread::current().id();
        let mut state = self.lock();
        let expired = self.take_expired(&mut state);
        let found = state
            .conns
            .iter()
            .rposition(|(_, thread, _)| *thread == here)
            .and_then(|i| state.conns.remove(i))
            .map(|(_, _, conn)| conn);
        drop(state);
        drop(expired);
        found
    }

    /// Parks an idle connection; the oldest goes when the list is full.
    fn put(self: &Arc<Self>, conn: Conn) {
        if self.max == 0 {
            return;
        }
        let mut state = self.lock();
        let dropped = if state.conns.len() >= self.max {
            state.conns.pop_front()
        } else {
            None
        };
        state
            .conns
            .push_back((Instant::now(), std::thread::current().id(), conn));
        let sweep = !state.sweeping;
        state.sweeping = true;
        drop(state);
        drop(dropped);
        if sweep {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(sweep_idle(Arc::downgrade(self), self.timeout));
            } else {
                self.lock().sweeping = false;
            }
        }
    }

    /// Drops the expired connections; `false` when the list is empty (the sweeper stops).
    fn sweep(&self) -> bool {
        let mut state = self.lock();
        let expired = self.take_expired(&mut state);
        let more = !state.conns.is_empty();
        state.sweeping = more;
        drop(state);
        drop(expired);
        more
    }

    /// Takes the expired connections out (to be dropped after the lock): parked in order,
    /// they are the ones at the front.
    fn take_expired(&self, state: &mut IdleState) -> Vec<(Instant, ThreadId, Conn)> {
        let now = Instant::now();
        let live = state
            .conns
            .partition_point(|(at, _, _)| now.saturating_duration_since(*at) >= self.timeout);
        state.conns.drain(..live).collect()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

/// Closes expired idle connections every `timeout / 2` until the list is empty.
async fn sweep_idle(list: Weak<IdleList>, timeout: Duration) {
    let period = (timeout / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let Some(list) = list.upgrade() else { return };
        if !list.sweep() {
            return;
        }
    }
}

/// One client connection's upstream connections. Made per client connection by
/// [`Upstream::client_conns`], used by the forwarder for every request of that connection,
/// driven by [`ClientConns::drive`] in the connection's task.
pub struct ClientConns {
    upstream: Upstream,
    state: Mutex<LocalState>,
}

impl std::fmt::Debug for ClientConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConns").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct LocalState {
    conns: Vec<Conn>,
    /// The task that drives them, and how to wake it.
    task: Option<tokio::task::Id>,
    waker: Option<Waker>,
    /// The client connection has ended: nothing new is driven any more.
    ended: bool,
}

/// How often a request handed back untouched is tried again on another connection.
const RESENDS: usize = 3;

/// How long connections still busy when their client connection ended are driven on (an
/// upgrade being handed over, an answer being cut off) before they are dropped.
const WIND_DOWN: Duration = Duration::from_secs(10);

impl ClientConns {
    pub(super) fn new(upstream: Upstream) -> ClientConns {
        ClientConns {
            upstream,
            state: Mutex::new(LocalState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a request in origin form on one of this client's connections (a reused one when
    /// one is idle, else one from the idle list, else a new one).
    pub async fn send(&self, request: Request<ProxyBody>) -> Result<Response<Incoming>, SendError> {
        let mut request = Some(request);
        let mut resends = 0;
        let mut fresh = None;
        loop {
            let step =
                std::future::poll_fn(|cx| Poll::Ready(self.try_send(cx, &mut request, &mut fresh)))
                    .await;
            let (sent, reused) = match step {
                Step::Sent(sent, reused) => (sent, reused),
                Step::NoConn => {
                    fresh = Some(Conn::open(&self.upstream).await?);
                    continue;
                }
                Step::Ended => {
                    // Only a request outliving its client connection gets here.
                    let request = request.take().ok_or(SendError::Lost)?;
                    return self.upstream.send_pooled(request).await;
                }
            };
            match sent.await {
                Ok(response) => return Ok(response),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused && resends < RESENDS => {
                        tracing::debug!(error = %e.error(), "upstream connection closed; sending on another");
                        resends += 1;
                        request = Some(unsent);
                    }
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    /// Hands `request` to an idle connection (`fresh`, if given, else one of this client's,
    /// else one from the idle list). Connections found ended on the way are dropped.
    #[allow(clippy::type_complexity)]
    fn try_send(
        &self,
        cx: &mut Context<'_>,
        request: &mut Option<Request<ProxyBody>>,
        fresh: &mut Option<Conn>,
    ) -> Step<
        impl Future<Output = Result<Response<Incoming>, TrySendError<Request<ProxyBody>>>> + Send,
    > {
        let mut state = self.lock();
        if state.ended {
            return Step::Ended;
        }
        let Some(req) = request.take() else {
            return Step::Ended;
        };
        // Polled here only from the driving task itself: another task's waker would take the
        // connection's readiness from it.
        let here = state.task.is_some() && tokio::task::try_id() == state.task;
        if !here {
            // Whatever is added or sent here, the driver must look at it.
            if let Some(waker) = &state.waker {
                waker.wake_by_ref();
            }
        }
        if let Some(conn) = fresh.take() {
            state.conns.push(conn);
            let last = state.conns.len() - 1;
            return Step::Sent(state.conns[last].sender.try_send_request(req), false);
        }
        let mut i = state.conns.len();
        while i > 0 {
            i -= 1;
            let ended = if here {
                state.conns[i].poll_ended(cx)
            } else {
                state.conns[i].sender.is_closed()
            };
            if ended {
                drop(state.conns.swap_remove(i));
            } else if state.conns[i].is_idle() {
                return Step::Sent(state.conns[i].sender.try_send_request(req), true);
            }
        }
        // None of its own: one the daemon-wide list kept.
        while let Some(mut conn) = self.upstream.inner.idle.take() {
            if (here && conn.poll_ended(cx)) || conn.sender.is_closed() {
                continue;
            }
            state.conns.push(conn);
            let last = state.conns.len() - 1;
            return Step::Sent(state.conns[last].sender.try_send_request(req), true);
        }
        *request = Some(req);
        Step::NoConn
    }

    /// Runs `served` (the client connection) and, in the same task, every upstream connection
    /// this client uses. When `served` has ended, idle upstream connections go to the idle
    /// list, and busy ones are driven until they end (an upgrade handed over), for at most
    /// [`WIND_DOWN`].
    ///
    /// Everything is polled with a waker of its own ([`SelfWake`]): a wake raised while this
    /// task is polling (the upstream connection handing the server connection its answer, and
    /// back) makes it poll once more right away instead of rescheduling the task through the
    /// runtime's queue (on a multi-threaded runtime, waking an idle worker thread as well).
    pub async fn drive<F: Future>(self: Arc<Self>, served: F) -> F::Output {
        let mut served = std::pin::pin!(served);
        let flag = Arc::new(SelfWake::default());
        let waker = Waker::from(flag.clone());
        let output = std::future::poll_fn(|cx| {
            flag.task.register(cx.waker());
            let mut inner = Context::from_waker(&waker);
            for _ in 0..ROUNDS {
                flag.state.store(POLLING, Ordering::SeqCst);
                let output = served.as_mut().poll(&mut inner);
                self.poll_conns(&mut inner, false);
                if output.is_ready() {
                    flag.state.store(IDLE, Ordering::SeqCst);
                    return output;
                }
                if flag
                    .state
                    .compare_exchange(POLLING, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Poll::Pending;
                }
            }
            // Still woken after that many rounds (the runtime's budget may be spent): yield.
            flag.state.store(IDLE, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        self.lock().ended = true;
        let winding = std::future::poll_fn(|cx| {
            if self.poll_conns(cx, true) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let _ = tokio::time::timeout(WIND_DOWN, winding).await;
        let left = std::mem::take(&mut self.lock().conns);
        drop(left);
        output
    }

    /// An answer's body that, when it has nothing more yet, moves this client's connections on
    /// before saying so (see [`DrivenBody`]).
    pub fn driven_body(self: &Arc<Self>, body: Incoming) -> DrivenBody {
        DrivenBody {
            inner: body,
            conns: Arc::clone(self),
        }
    }

    /// From inside the driving task's own poll: moves the connections on now. `false` when
    /// called from elsewhere (or after the client connection ended), where it does nothing.
    fn nudge(&self, cx: &mut Context<'_>) -> bool {
        {
            let state = self.lock();
            if state.ended || state.task.is_none() || tokio::task::try_id() != state.task {
                return false;
            }
        }
        self.poll_conns(cx, false);
        true
    }

    /// Polls every connection; drops the ended ones. With `parking`, idle ones go to the
    /// idle list. `true` when none is left.
    fn poll_conns(&self, cx: &mut Context<'_>, parking: bool) -> bool {
        let mut state = self.lock();
        if state.task.is_none() {
            state.task = tokio::task::try_id();
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        let mut i = state.conns.len();
        let mut parked = Vec::new();
        while i > 0 {
            i -= 1;
            if state.conns[i].poll_ended(cx) {
                drop(state.conns.swap_remove(i));
            } else if parking && state.conns[i].is_idle() {
                parked.push(state.conns.swap_remove(i));
            }
        }
        let empty = state.conns.is_empty();
        drop(state);
        for conn in parked {
            self.upstream.inner.idle.put(conn);
        }
        empty
    }
}

/// The body of an answer forwarded from one of a client's upstream connections.
///
/// When the server connection asks it for more and the upstream connection has not handed
/// anything over yet, it polls the upstream connection first (they share the task): what that
/// connection has already read (typically the end of a chunked answer, right behind its last
/// chunk) then reaches the server connection in the same pass, and the answer's end goes out
/// in the same write as its last chunk instead of a write of its own.
pub struct DrivenBody {
    inner: Incoming,
    conns: Arc<ClientConns>,
}

impl std::fmt::Debug for DrivenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrivenBody").finish_non_exhaustive()
    }
}

impl hyper::body::Body for DrivenBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending if self.conns.nudge(cx) => Pin::new(&mut self.inner).poll_frame(cx),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Rounds of polling one wake of the connection task may take (see [`ClientConns::drive`]).
const ROUNDS: usize = 16;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const AGAIN: u8 = 2;

/// The waker a client connection's task polls its futures with: while that task is polling
/// them, a wake only asks for one more round; otherwise it wakes the task.
#[derive(Default)]
struct SelfWake {
    state: AtomicU8,
    task: AtomicWaker,
}

impl std::task::Wake for SelfWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut current = self.state.load(Ordering::SeqCst);
        loop {
            match current {
                POLLING => match self.state.compare_exchange(
                    POLLING,
                    AGAIN,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return,
                    Err(now) => current = now,
                },
                AGAIN => return,
                _ => {
                    self.task.wake();
                    return;
                }
            }
        }
    }
}

enum Step<F> {
    /// Handed to a connection (`true`: one that served before).
    Sent(F, bool),
    /// No idle connection: a new one is needed.
    NoConn,
    /// The client connection has ended.
    Ended,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection over one end of a socket pair; the other end is returned to keep it open.
    async fn pair_conn() -> (Conn, tokio::net::UnixStream) {
        let (a, b) = tokio::net::UnixStream::pair().unwrap_or_else(|e| panic!("pair: {e}"));
        let conn = Conn::over(UpstreamIo::Unix(a))
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        (conn, b)
    }

    #[tokio::test]
    async fn the_idle_list_keeps_at_most_max_and_gives_the_newest_first() {
        let list = Arc::new(IdleList::new(2, Duration::from_secs(60)));
        let mut peers = Vec::new();
        for _ in 0..3 {
            let (conn, peer) = pair_conn().await;
            list.put(conn);
            peers.push(peer);
        }
        assert_eq!(list.len(), 2);
        assert!(list.take().is_some());
        assert!(list.take().is_some());
        assert!(list.take().is_none());
    }

    /// Parks a connection made on a thread of its own (its own runtime, as a worker's).
    fn park_from_another_thread(list: &Arc<IdleList>) -> std::os::unix::net::UnixStream {
        let list = list.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            runtime.block_on(async {
                let (conn, peer) = pair_conn().await;
                list.put(conn);
                peer.into_std().unwrap_or_else(|e| panic!("into_std: {e}"))
            })
        })
        .join()
        .unwrap_or_else(|_| panic!("the other thread panicked"))
    }

    #[tokio::test]
    async fn a_parked_connection_goes_only_to_its_own_thread() {
        let list = Arc::new(IdleList::new(8, Duration::from_secs(60)));
        let _theirs = park_from_another_thread(&list);
        let _theirs_too = park_from_another_thread(&list);
        assert_eq!(list.len(), 2);
        // None of them is on this thread's reactor.
        assert!(list.take().is_none());
        let (mine, _peer) = pair_conn().await;
        list.put(mine);
        let _theirs_last = park_from_another_thread(&list);
        // This thread's one, although another thread parked one after it; theirs stay.
        assert!(list.take().is_some());
        assert!(list.take().is_none());
        assert_eq!(list.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_connections_of_other_threads_go_when_one_is_taken() {
        let list = Arc::new(IdleList::new(8, Duration::from_millis(200)));
        let _theirs = park_from_another_thread(&list);
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (mine, _peer) = pair_conn().await;
        list.put(mine);
        assert_eq!(list.len(), 2);
        assert!(list.take().is_some());
        assert_eq!(list.len(), 0);
    }

    #[tokio::test]
    async fn pool_max_idle_zero_parks_nothing() {
        let list = Arc::new(IdleList::new(0, Duration::from_secs(60)));
        let (conn, _peer) = pair_conn().await;
        list.put(conn);
        assert_eq!(list.len(), 0);
        assert!(list.take().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_connections_are_not_handed_out_and_are_swept() {
        let list = Arc::new(IdleList::new(4, Duration::from_millis(200)));
        let (conn, _p1) = pair_conn().await;
        list.put(conn);
        let (conn, _p2) = pair_conn().await;
        list.put(conn);
        // The sweeper closes them once expired, while nobody takes them.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(list.len(), 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(list.len(), 0);
    }
}
