//! Body types on the request path, and a body wrapper that counts what streams through it.
//!
//! Bodies are never collected here: each frame is passed on as soon as it arrives, so memory
//! stays flat whatever the size of an image, a build context or a log stream.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

pub use crate::error::BodyTimeout;
use crate::error::BoxError;

/// The one body type every layer sees, for requests and responses alike.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

/// A body's failure. A concrete type rather than a bare `Box<dyn Error>`, whose inferred
/// lifetimes trip up the compiler inside the request path's async blocks.
#[derive(Debug)]
pub struct BodyError(pub BoxError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    body.map_err(|e| BodyError(e.into())).boxed_unsync()
}

/// `body`, holding `guard` until the body is dropped: after its end was sent, or when the
/// other side went away first.
pub fn with_guard<G: Send + 'static>(body: ProxyBody, guard: G) -> ProxyBody {
    use http_body_util::BodyExt;
    body.map_frame(move |frame| {
        let _held = &guard;
        frame
    })
    .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    boxed(http_body_util::Empty::<Bytes>::new())
}

/// Where [`Observed`] adds the size of each data frame: a counter that outlives the body it
/// observes (read after the body is gone).
pub trait ByteCount {
    fn add(&self, bytes: u64);
}

pin_project_lite::pin_project! {
    /// Passes frames through unchanged, adding the size of each data frame to a counter and
    /// calling `on_end` exactly once: at end of stream, on error, or when dropped early
    /// (a client that went away).
    pub struct Observed<B, C, F: FnOnce(EndOfBody)> {
        #[pin]
        inner: B,
        counter: C,
        on_end: Option<F>,
        // The inner body said it has nothing more (hyper may then never poll it again).
        at_end: bool,
    }

    impl<B, C, F: FnOnce(EndOfBody)> PinnedDrop for Observed<B, C, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(on_end) = this.on_end.take() {
                let end = if *this.at_end {
                    EndOfBody::Complete
                } else {
                    EndOfBody::Dropped
                };
                on_end(end);
            }
        }
    }
}

/// How a body finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfBody {
    /// All frames were delivered.
    Complete,
    /// The body failed (the daemon or the client broke the stream).
    Error,
    /// The body was dropped before its end (usually: the client disconnected).
    Dropped,
}

impl EndOfBody {
    /// A short word for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EndOfBody::Complete => "complete",
            EndOfBody::Error => "error",
            EndOfBody::Dropped => "dropped",
        }
    }
}

impl<B: Body, C: ByteCount, F: FnOnce(EndOfBody)> Observed<B, C, F> {
    /// Wraps `inner`, counting into `counter`.
    pub fn new(inner: B, counter: C, on_end: F) -> Self {
        let at_end = inner.is_end_stream();
        Observed {
            inner,
            counter,
            on_end: Some(on_end),
            at_end,
        }
    }
}

impl<B, C, F> Body for Observed<B, C, F>
where
    B: Body<Data = Bytes>,
    C: ByteCount,
    F: FnOnce(EndOfBody),
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.counter.add(data.len() as u64);
                }
                *this.at_end = this.inner.is_end_stream();
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(EndOfBody::Error);
                }
            }
            Poll::Ready(None) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end(EndOfBody::Complete);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails with [`BodyTimeout`] when the client sends nothing for
    /// `after` while its reader waits for more. The clock runs only while the reader waits on
    /// the client: when the daemon is slow to take the body (a `docker load` it is still
    /// unpacking), the reader stops asking and no time counts against the client. So an upload
    /// of any size at any steady pace passes, and a client that stalls or trickles slower than
    /// one frame per `after` is cut off and its connection's descriptor freed.
    pub struct ReadDeadline<B> {
        #[pin]
        inner: B,
        after: std::time::Duration,
        // One timer for the body's life, made at the first wait and `reset` at each later one.
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        // Whether the timer runs for the current wait.
        waiting: bool,
    }
}

impl<B> ReadDeadline<B> {
    /// Wraps `inner` with the deadline `after`.
    pub fn new(inner: B, after: std::time::Duration) -> Self {
        ReadDeadline {
            inner,
            after,
            timer: None,
            waiting: false,
        }
    }
}

impl<B> Body for ReadDeadline<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let after = *this.after;
                let sleep = match this.timer {
                    Some(sleep) => {
                        if !*this.waiting {
                            sleep.as_mut().reset(tokio::time::Instant::now() + after);
                        }
                        sleep
                    }
                    None => this.timer.insert(Box::pin(tokio::time::sleep(after))),
                };
                *this.waiting = true;
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        *this.waiting = false;
                        Poll::Ready(Some(Err(Box::new(BodyTimeout { after }))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The [`BodyTimeout`] in `error`'s source chain, if the request body's deadline is what
/// failed (while the body was being forwarded or read). A [`BodyError`] wraps the body's own
/// error (once per layer that boxed the body), which its `source` skips: this looks inside.
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> Option<BodyTimeout> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(timeout) = e.downcast_ref::<BodyTimeout>() {
            return Some(*timeout);
        }
        cause = match e.downcast_ref::<BodyError>() {
            Some(body) => Some(body.0.as_ref() as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// How much of a refused request's body is read and thrown away before answering: a small
/// body is read whole, so the connection stays usable for the client's next request.
const DRAIN_LIMIT: u64 = 1 << 20;

/// How long a refused client may take to send that much.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// How much more of a refused body is read and thrown away after the answer went out, while
/// the client is still sending it (an image archive, a build context).
const LATE_DRAIN_LIMIT: u64 = 4 << 30;

/// How long that may go on.
const LATE_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// What every refusal (policy, limits, the fail-closed audit) does with the request's body
/// before answering: reads and discards up to [`DRAIN_LIMIT`] bytes (or for [`DRAIN_TIME`]);
/// a body that goes on is read and discarded by a task of its own, up to [`LATE_DRAIN_LIMIT`]
/// (or for [`LATE_DRAIN_TIME`]), while the refusal is answered. So a client still sending
/// reads the refusal instead of failing with a broken pipe (the docker CLI writes the whole
/// body before it reads the answer); past those bounds the connection is closed, as any
/// server would. Memory stays flat: nothing read is kept.
pub async fn drain_refused(body: ProxyBody) {
    let (body, rest) = discard(body, DRAIN_LIMIT, DRAIN_TIME).await;
    if rest {
        tokio::spawn(async move {
            discard(body, LATE_DRAIN_LIMIT, LATE_DRAIN_TIME).await;
        });
    }
}

/// Reads and drops frames of `body` until it ends, fails, passes `limit` bytes or `time`
/// runs out; returns the body and whether it may go on.
async fn discard(mut body: ProxyBody, limit: u64, time: std::time::Duration) -> (ProxyBody, bool) {
    use http_body_util::BodyExt;
    let mut seen = 0u64;
    let reading = async {
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > limit {
                        return true;
                    }
                }
                Some(Err(_)) | None => return false,
            }
        }
    };
    let more = tokio::time::timeout(time, reading).await.unwrap_or(true);
    (body, more)
}

/// Largest body sockwarden reads for inspection (a `docker run` create body is ~2 KiB).
pub const INSPECT_LIMIT: usize = 1 << 20;

/// Reads a body to be inspected or rewritten (by the inspection and isolation layers), up to
/// [`INSPECT_LIMIT`].
pub(crate) async fn read_limited(body: ProxyBody) -> Result<Bytes, crate::error::ProxyError> {
    use crate::error::ProxyError;
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, INSPECT_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::BadRequest(
            format!("request body is larger than the {INSPECT_LIMIT} bytes sockwarden inspects"),
        )),
        Err(e) => Err(timed_out(e.as_ref()).map_or_else(
            || ProxyError::BadRequest(format!("request body could not be read: {e}")),
            ProxyError::BodyTimeout,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Tally(Arc<AtomicU64>);

    impl ByteCount for Tally {
        fn add(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Every data frame is counted, and the end is reported once: complete when read to
    /// the end, dropped when given up before it.
    #[tokio::test]
    async fn observed_counts_frames_and_reports_its_end_once() {
        use http_body_util::BodyExt as _;
        for read_all in [true, false] {
            let tally = Tally::default();
            let ends = Arc::new(Mutex::new(Vec::new()));
            let seen = ends.clone();
            let chunks: Vec<Result<Frame<Bytes>, BodyError>> = vec![
                Ok(Frame::data(Bytes::from_static(b"hello "))),
                Ok(Frame::data(Bytes::from_static(b"world"))),
            ];
            let inner = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
            let mut body = Observed::new(inner, tally.clone(), move |end| {
                seen.lock().unwrap().push(end);
            });
            if read_all {
                while let Some(frame) = body.frame().await {
                    frame.unwrap();
                }
                assert_eq!(tally.0.load(Ordering::Relaxed), 11);
            } else {
                body.frame().await.unwrap().unwrap();
                assert_eq!(tally.0.load(Ordering::Relaxed), 6);
            }
            drop(body);
            let expected = if read_all {
                EndOfBody::Complete
            } else {
                EndOfBody::Dropped
            };
            assert_eq!(*ends.lock().unwrap(), vec![expected]);
        }
    }

    #[test]
    fn a_body_timeout_is_found_through_nested_body_errors() {
        let timeout = BodyTimeout {
            after: Duration::from_secs(2),
        };
        let nested = BodyError(Box::new(BodyError(Box::new(timeout))));
        assert_eq!(timed_out(&nested), Some(timeout));
        let other = BodyError(Box::new(std::io::Error::other("reset")));
        assert_eq!(timed_out(&other), None);
    }

    // Paused time (tokio's test-util): the runtime moves the clock on whenever every task
    // waits, so the order of the timers is exact however loaded the machine is.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_only_while_waiting_on_the_client() {
        use http_body_util::BodyExt;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let deadline = Duration::from_millis(300);
        let mut body = ReadDeadline::new(http_body_util::StreamBody::new(stream), deadline);
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // The reader stays away longer than the deadline (a slow daemon): no time counts.
        tokio::time::sleep(Duration::from_millis(800)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"b"))))
            .await
            .unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // Now the client is silent while the reader waits: cut after the deadline.
        let started = tokio::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyTimeout>(), "{err}");
        assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
        drop(tx);
    }

    /// A guard lives exactly as long as the body: through its frames, gone when it is dropped
    /// (after its end, or early).
    #[tokio::test]
    async fn a_guard_is_held_until_the_body_is_dropped() {
        use http_body_util::BodyExt;
        let guard = Arc::new(());
        let mut body = with_guard(
            boxed(http_body_util::Full::new(Bytes::from_static(b"x"))),
            Arc::clone(&guard),
        );
        assert_eq!(Arc::strong_count(&guard), 2);
        assert!(body.frame().await.is_some());
        assert!(body.frame().await.is_none());
        assert_eq!(Arc::strong_count(&guard), 2);
        drop(body);
        assert_eq!(Arc::strong_count(&guard), 1);
        let early = with_guard(empty(), Arc::clone(&guard));
        drop(early);
        assert_eq!(Arc::strong_count(&guard), 1);
    }

    /// The one timer is re-armed at each wait: frames that each come within the deadline pass
    /// however long the body takes in all, and a wait after them gets the whole deadline.
    // Paused time (tokio's test-util): the runtime moves the clock on whenever every task
    // waits, so the order of the timers is exact however loaded the machine is.
    #[tokio::test(start_paused = true)]
    async fn each_wait_gets_the_whole_deadline() {
        use http_body_util::BodyExt;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(1);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let deadline = Duration::from_millis(300);
        let mut body = ReadDeadline::new(http_body_util::StreamBody::new(stream), deadline);
        let sender = tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"y"))))
                .await
                .unwrap();
            tx
        });
        for _ in 0..7 {
            assert!(body.frame().await.unwrap().is_ok());
        }
        let _tx = sender.await.unwrap();
        let started = tokio::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyTimeout>(), "{err}");
        assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
    }
}
