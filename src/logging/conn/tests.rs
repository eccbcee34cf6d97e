use std::sync::Arc;

use tracing::Instrument;

use super::*;
use crate::logging::capture::captured;
use crate::logging::request::{in_span as line_in_span, parent, RequestId, RequestLog};

fn tag() -> ConnTag {
    ConnTag {
        listener: Arc::from("unix:///run/sw.sock"),
        peer: Peer::Unix {
            uid: 1000,
            gid: 1000,
            pid: Some(4242),
        },
        client: Some(Arc::from("ci")),
    }
}

/// What a connection logs: a line of its own, a request's lines (in the call, while polled,
/// in a hijacked session spawned from it) and a line after the request.
async fn a_connection(eager: bool) {
    let id = RequestId {
        prefix: 0x6b11_2bd1,
        number: 9,
    };
    let log = ConnLog::made(tag(), eager);
    log.instrument(async move {
        line_in_span(|| tracing::warn!(step = 1, "about the connection"));
        tokio::task::yield_now().await;
        // As the audit layer does: the request's log is made while the connection is polled.
        let request = RequestLog::new(id, Some("container.attach"));
        let session = request.in_scope(|| {
            line_in_span(|| tracing::warn!(step = 2, "refused in call"));
            tracing::info_span!(parent: &parent(), "hijack", kind = "attach")
        });
        request
            .instrument(async {
                tokio::task::yield_now().await;
                line_in_span(|| tracing::info!(step = 3, "while polled"));
            })
            .await;
        // The session runs in a task of its own, outside the connection's.
        let done =
            tokio::spawn(async { tracing::warn!(step = 4, "in the session") }.instrument(session));
        let _ = done.await;
        line_in_span(|| tracing::error!(step = 5, "after the request"));
    })
    .await;
    // Outside the connection: no span.
    line_in_span(|| tracing::warn!(step = 6, "outside"));
}

/// The log of `a_connection` as text or JSON at `level`.
fn logged(eager: bool, json: bool, level: tracing::Level) -> String {
    captured(json, level, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        runtime.block_on(a_connection(eager));
    })
}

#[test]
fn lines_read_the_same_whether_the_connection_span_is_made_at_once_or_when_needed() {
    for json in [false, true] {
        for level in [tracing::Level::INFO, tracing::Level::DEBUG] {
            assert_eq!(
                logged(true, json, level),
                logged(false, json, level),
                "json {json}, level {level}"
            );
        }
    }
}

#[test]
fn every_line_of_the_connection_says_who_it_is() {
    let text = logged(false, false, tracing::Level::INFO);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let who = "conn{listener=unix:///run/sw.sock peer=uid=1000 gid=1000 pid=4242 client=\"ci\"}";
    for line in &lines[..5] {
        assert!(line.contains(who), "{line}");
    }
    for (line, step) in lines[1..4].iter().zip([2, 3, 4]) {
        assert!(
            line.contains("request{id=6b112bd1-00000009 op=\"container.attach\"}"),
            "{line}"
        );
        assert!(line.contains(&format!("step={step}")), "{line}");
    }
    assert!(lines[3].contains("hijack{kind=\"attach\"}"), "{}", lines[3]);
    assert!(!lines[4].contains("request{"), "{}", lines[4]);
    assert!(!lines[5].contains("conn{"), "{}", lines[5]);
}
