//! The `GET /events` answer, redacted as it streams: the daemon writes one JSON object per
//! line and flushes it; each complete line is parsed, rewritten by [`crate::redact::event`]
//! and passed on at once, so events stay live. Only the line being received is held (at most
//! [`MAX_EVENT_LINE`] bytes), never the stream; a longer line ends the stream with an error
//! rather than pass unredacted.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::body::{BodyError, ProxyBody};

/// Longest event line held while it is completed (an event with many labels is a few KiB).
pub const MAX_EVENT_LINE: usize = 1 << 20;

pin_project_lite::pin_project! {
    /// An event stream with each line redacted.
    pub struct RedactedEvents {
        #[pin]
        inner: ProxyBody,
        pending: BytesMut,
        done: bool,
    }
}

impl RedactedEvents {
    /// Redacts the events `inner` carries.
    pub fn new(inner: ProxyBody) -> RedactedEvents {
        RedactedEvents {
            inner,
            pending: BytesMut::new(),
            done: false,
        }
    }
}

/// One line (without its newline) as it may be shown. A line that is not JSON is not shown
/// (the daemon writes none; what cannot be read cannot be redacted).
fn redact_line(line: &[u8], out: &mut BytesMut) {
    if line.iter().all(u8::is_ascii_whitespace) {
        out.extend_from_slice(line);
        return;
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(line) else {
        return;
    };
    super::event(&mut value);
    if let Ok(text) = serde_json::to_vec(&value) {
        out.extend_from_slice(&text);
    }
}

/// The complete lines at the front of `pending`, redacted; the incomplete rest stays.
fn complete_lines(pending: &mut BytesMut) -> BytesMut {
    let mut out = BytesMut::new();
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let line = pending.split_to(end + 1);
        let body = line.get(..end).unwrap_or_default();
        let before = out.len();
        redact_line(body, &mut out);
        if out.len() > before || body.is_empty() {
            out.extend_from_slice(b"\n");
        }
    }
    out
}

impl Body for RedactedEvents {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        // Trailers: events have none; pass them on.
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    this.pending.extend_from_slice(&data);
                    let out = complete_lines(this.pending);
                    if this.pending.len() > MAX_EVENT_LINE {
                        *this.done = true;
                        return Poll::Ready(Some(Err(BodyError(
                            format!(
                                "an event line is longer than the {MAX_EVENT_LINE} bytes \
                                 sockwarden redacts"
                            )
                            .into(),
                        ))));
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                }
                Poll::Ready(None) => {
                    *this.done = true;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    let rest = this.pending.split();
                    let mut out = BytesMut::new();
                    redact_line(&rest, &mut out);
                    if out.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body_of(chunks: Vec<&'static [u8]>) -> ProxyBody {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c))));
        crate::body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    #[tokio::test]
    async fn exec_commands_leave_lines_split_anywhere() {
        let stream = body_of(vec![
            b"{\"status\":\"exec_create: sh -c echo hun",
            b"ter2\",\"id\":\"c1\",\"Type\":\"container\",\"Action\":\"exec_create: sh -c echo hunter2\",\"Actor\":{\"ID\":\"c1\",\"Attributes\":{\"execID\":\"e1\"}}}\n{\"Type\":\"container\",\"Action\":\"start\"}\n",
            b"{\"Type\":\"container\",\"Action\":\"exec_start: env TOKEN=hunter2\"}",
        ]);
        let out = RedactedEvents::new(stream)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["Action"], "exec_create: <redacted>");
        assert_eq!(lines[0]["status"], "exec_create: <redacted>");
        assert_eq!(lines[0]["Actor"]["Attributes"]["execID"], "e1");
        assert_eq!(lines[1]["Action"], "start");
        assert_eq!(lines[2]["Action"], "exec_start: <redacted>");
    }

    #[tokio::test]
    async fn an_overlong_line_ends_the_stream() {
        let long: &'static [u8] = Box::leak(vec![b'x'; MAX_EVENT_LINE + 1].into_boxed_slice());
        let stream = body_of(vec![b"{\"Action\":\"start\"}\n", long]);
        let mut body = RedactedEvents::new(stream);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"{\"Action\":\"start\"}\n");
        assert!(body.frame().await.unwrap().is_err());
    }
}
