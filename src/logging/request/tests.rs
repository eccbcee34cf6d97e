use tracing::Instrument;

use super::*;
use crate::logging::capture::captured;

const ID: RequestId = RequestId {
    prefix: 0x6b11_2bd1,
    number: 7,
};

/// What a request logs: a warning through `in_span` while its future is polled, one in a
/// hijacked session's task spawned from it (run here inline), and one after the request.
async fn a_request(eager: bool) {
    let log = RequestLog::made(ID, Some("exec.start"), eager);
    let session = log.in_scope(|| {
        in_span(|| tracing::warn!(step = 1, "refused in call"));
        tracing::info_span!(parent: &parent(), "hijack", kind = "exec")
    });
    log.instrument(async {
        tokio::task::yield_now().await;
        in_span(|| tracing::warn!(step = 2, "refused while polled"));
    })
    .await;
    async { tracing::warn!(step = 3, "in the session") }
        .instrument(session)
        .await;
    in_span(|| tracing::warn!(step = 4, "after the request"));
}

/// The log `a_request` writes inside a connection's span, as text or JSON, at `level`.
fn logged(eager: bool, json: bool, level: tracing::Level) -> String {
    captured(json, level, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let conn = tracing::info_span!("conn", peer = "uid=1000", client = "ci");
        runtime.block_on(a_request(eager).instrument(conn));
    })
}

#[test]
fn lines_read_the_same_whether_the_span_is_made_at_once_or_when_needed() {
    for json in [false, true] {
        for level in [tracing::Level::INFO, tracing::Level::DEBUG] {
            assert_eq!(
                logged(false, json, level),
                logged(true, json, level),
                "json {json}, level {level}"
            );
        }
    }
}

#[test]
fn a_request_line_names_the_connection_the_request_and_the_session() {
    for eager in [false, true] {
        let text = logged(eager, false, tracing::Level::INFO);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let request =
            r#"conn{peer="uid=1000" client="ci"}:request{id=6b112bd1-00000007 op="exec.start"}"#;
        assert!(lines[0].contains(&format!("{request}: ")), "{text}");
        assert!(lines[0].contains("refused in call step=1"), "{text}");
        assert!(lines[1].contains(&format!("{request}: ")), "{text}");
        assert!(lines[1].contains("refused while polled step=2"), "{text}");
        assert!(
            lines[2].contains(&format!(r#"{request}:hijack{{kind="exec"}}: "#)),
            "{text}"
        );
        // After the answer the request is over: its id is not claimed any more.
        assert!(!lines[3].contains("request{"), "{text}");
        assert!(
            lines[3].contains(r#"conn{peer="uid=1000" client="ci"}: "#),
            "{text}"
        );
    }
    let json = logged(false, true, tracing::Level::INFO);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["span"]["name"], "request");
    assert_eq!(first["span"]["id"], "6b112bd1-00000007");
    assert_eq!(first["span"]["op"], "exec.start");
    assert_eq!(first["spans"][0]["name"], "conn");
}

#[test]
fn a_request_without_an_operation_has_its_id_alone() {
    let text = captured(false, tracing::Level::INFO, || {
        RequestLog::made(ID, None, false).in_scope(|| in_span(|| tracing::warn!("unreadable")));
    });
    assert!(text.contains("request{id=6b112bd1-00000007}: "), "{text}");
}

#[test]
fn the_request_is_left_when_its_future_is_left_however_that_happens() {
    let log = RequestLog::made(ID, Some("system.ping"), false);
    let outer = RequestId {
        prefix: 1,
        number: 1,
    };
    RequestLog::made(outer, None, false).in_scope(|| {
        // Nested: the inner request while inside, the outer one again after.
        log.in_scope(|| assert_eq!(CURRENT.with(Cell::get).map(|t| t.id), Some(ID)));
        assert_eq!(CURRENT.with(Cell::get).map(|t| t.id), Some(outer));
        // A panic inside leaves the request too.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            log.in_scope(|| panic!("inside"));
        }));
        assert!(caught.is_err());
        assert_eq!(CURRENT.with(Cell::get).map(|t| t.id), Some(outer));
    });
    assert!(CURRENT.with(Cell::get).is_none());
    // A future between polls is not current.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pending = log.instrument(async {
            assert_eq!(CURRENT.with(Cell::get).map(|t| t.id), Some(ID));
            tokio::task::yield_now().await;
            assert_eq!(CURRENT.with(Cell::get).map(|t| t.id), Some(ID));
        });
        let check = async { assert!(CURRENT.with(Cell::get).is_none()) };
        tokio::join!(pending, check);
    });
}

#[test]
fn request_ids_read_as_in_the_audit_log() {
    assert_eq!(ID.to_string(), "6b112bd1-00000007");
    let big = RequestId {
        prefix: 0xffff_ffff,
        number: 0x1_0000_0000,
    };
    assert_eq!(big.to_string(), "ffffffff-100000000");
    // Every width as `{:08x}` writes it.
    for (prefix, number) in [(0, 0), (1, 0xf), (0x10, 0xffff_ffff), (7, u64::MAX)]
        .into_iter()
        .chain((0..64).map(|bit| (0x8000_0000 >> (bit % 32), 1u64 << bit)))
    {
        let id = RequestId { prefix, number };
        assert_eq!(id.text().as_str(), format!("{prefix:08x}-{number:08x}"));
    }
}
