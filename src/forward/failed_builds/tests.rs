use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use http::{Method, Uri};

use super::*;
use crate::route::{classify, normalize};

/// The facts of a request as the audit layer holds them once it was classified.
fn facts(method: Method, target: &str, client: &str, tenant: Option<&str>) -> Facts {
    let uri: Uri = target.parse().unwrap();
    let normalized = normalize(&method, &uri).unwrap();
    let operation = classify(&method, &normalized.path, &normalized.query);
    Facts {
        client: Some(Arc::from(client)),
        tenant: tenant.map(Arc::from),
        operation: Some(Arc::new(operation)),
        normalized: Some(Arc::new(normalized)),
        ..Facts::default()
    }
}

fn build(session: &str, client: &str, tenant: Option<&str>) -> Facts {
    facts(
        Method::POST,
        &format!("/v1.41/build?version=2&session={session}&t=x"),
        client,
        tenant,
    )
}

fn watch(session: &str, client: &str, tenant: Option<&str>) -> Ending {
    let key = Key::new(&facts(Method::POST, "/session", client, tenant), session);
    Ending::watch_key(key).unwrap()
}

/// Whether the session was told to end (polled once, without waiting).
fn ended(ending: &Ending) -> bool {
    let mut fut = pin!(ending.ended());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    matches!(fut.as_mut().poll(&mut cx), Poll::Ready(()))
}

#[test]
fn a_failed_build_ends_its_open_session() {
    let ending = watch("s-open", "ci", None);
    assert!(!ended(&watch("s-open-other", "ci", None)));
    answered(&build("s-open", "ci", None), StatusCode::FORBIDDEN);
    assert!(ended(&ending));
}

#[test]
fn a_session_opened_after_its_build_failed_ends_at_once() {
    answered(
        &build("s-late", "ci", Some("uid:1")),
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert!(ended(&watch("s-late", "ci", Some("uid:1"))));
}

#[test]
fn only_the_same_client_and_tenant_end_a_session() {
    for (n, (client, tenant)) in [
        ("other", Some("uid:1")),
        ("ci", Some("uid:2")),
        ("ci", None),
    ]
    .into_iter()
    .enumerate()
    {
        let session = format!("s-scope-{n}");
        let ending = watch(&session, "ci", Some("uid:1"));
        answered(&build(&session, client, tenant), StatusCode::FORBIDDEN);
        assert!(!ended(&ending), "{client} {tenant:?}");
        assert!(!ended(&watch(&session, "ci", Some("uid:1"))));
    }
}

#[test]
fn successes_other_requests_and_classic_builds_end_nothing() {
    let ending = watch("s-ok", "ci", None);
    for status in [StatusCode::OK, StatusCode::SWITCHING_PROTOCOLS] {
        answered(&build("s-ok", "ci", None), status);
    }
    let classic = facts(Method::POST, "/build?session=s-ok&t=x", "ci", None);
    answered(&classic, StatusCode::FORBIDDEN);
    let v1 = facts(Method::POST, "/build?version=1&session=s-ok", "ci", None);
    answered(&v1, StatusCode::FORBIDDEN);
    let other = facts(Method::POST, "/containers/create?session=s-ok", "ci", None);
    answered(&other, StatusCode::FORBIDDEN);
    // The daemon reads the first value.
    let second = facts(
        Method::POST,
        "/build?version=1&version=2&session=s-ok",
        "ci",
        None,
    );
    answered(&second, StatusCode::FORBIDDEN);
    assert!(!ended(&ending));
    assert!(!ended(&watch("s-ok", "ci", None)));
}

#[test]
fn a_session_another_running_build_uses_stays() {
    use crate::inspect::layer::session::tests_support::running;
    let _running = running("s-busy");
    let ending = watch("s-busy", "ci", None);
    answered(&build("s-busy", "ci", None), StatusCode::FORBIDDEN);
    assert!(!ended(&ending));
    assert!(!ended(&watch("s-busy", "ci", None)));
}

#[test]
fn a_closed_session_is_forgotten() {
    let ending = watch("s-gone", "ci", None);
    drop(ending);
    assert!(!state().open.keys().any(|k| k.session == "s-gone"));
}

#[test]
fn failures_are_remembered_for_a_while_and_bounded() {
    let mut state = State::default();
    let now = Instant::now();
    for n in 0..MOST_REMEMBERED + 10 {
        let key = Key {
            client: None,
            tenant: None,
            session: format!("s{n}"),
        };
        state
            .failed
            .insert(key, now + Duration::from_millis(n as u64));
    }
    state.prune(now + Duration::from_secs(1));
    assert_eq!(state.failed.len(), MOST_REMEMBERED);
    assert!(
        !state.failed.keys().any(|k| k.session == "s0"),
        "the oldest go first"
    );
    state.prune(now + REMEMBERED + Duration::from_secs(2));
    assert!(state.failed.is_empty());
}
