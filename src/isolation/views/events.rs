//! `GET /events` for a tenant, filtered as it streams: each complete line (one JSON event) is
//! judged and passed on at once or dropped; only the line being received is held (at most
//! [`MAX_EVENT_LINE`] bytes), never the stream.
//!
//! What a tenant sees:
//! - container events (exec events included: they are container events) of its containers:
//!   the daemon copies a container's labels into every event's attributes, `destroy` too;
//! - image events of its images (the daemon copies the image's labels while the image exists;
//!   afterwards, for `untag`/`delete`, the ID's owner comes from the cache of
//!   [`super::owners`]; either counts only when the image ledger holds the ID for the tenant),
//!   and `pull` events of shared images (no owner);
//! - network events of its networks (by ID: events carry no labels), and `connect` /
//!   `disconnect` of its containers on any network (`bridge` included);
//! - volume events of its volumes (by name, kept per stream and followed through the
//!   stream's own `create` and `destroy`);
//! - nothing else (daemon, plugin, swarm and builder events).
//!
//! What cannot be judged is not shown: an unreadable line, an object whose owner cannot be
//! found (deleted before sockwarden saw it; a lookup that failed).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use http::{header, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::Value;

use super::answer::Scope;
use super::owners::{self, Kind};
use crate::body::{self, BodyError, ProxyBody};
use crate::lookup::Lookup;

/// Longest wait for the record of an image the tenant's import or build is making (see
/// `await_record`).
pub const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest event line held while it is completed.
pub const MAX_EVENT_LINE: usize = crate::redact::events::MAX_EVENT_LINE;

/// Whose events a stream shows.
#[derive(Debug, Clone)]
pub struct EventScope {
    /// The owner label key.
    pub owner_label: String,
    /// The tenant's value of it.
    pub tenant: String,
    /// The daemon, for owners events do not carry.
    pub lookup: Lookup,
}

/// One filtered event stream.
struct Filtered {
    body: ProxyBody,
    pending: BytesMut,
    scope: EventScope,
    /// Volume names seen in this stream and their owners (`None`: unowned or gone).
    volumes: HashMap<String, Option<String>>,
    seeded: bool,
    done: bool,
}

/// The event stream `response` carries, filtered for `scope` as it passes.
pub fn filtered(response: Response<ProxyBody>, scope: EventScope) -> Response<ProxyBody> {
    let (mut parts, inner) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let state = Filtered {
        body: inner,
        pending: BytesMut::new(),
        scope,
        volumes: HashMap::new(),
        seeded: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        state.next().await.map(|item| (item, state))
    });
    Response::from_parts(parts, body::boxed(http_body_util::StreamBody::new(stream)))
}

impl Filtered {
    async fn next(&mut self) -> Option<Result<Frame<Bytes>, BodyError>> {
        if !self.seeded {
            self.seeded = true;
            self.seed().await;
        }
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line = self.pending.split_to(end + 1);
                if let Some(shown) = self.judge(line.get(..end).unwrap_or_default()).await {
                    return Some(Ok(Frame::data(shown)));
                }
                continue;
            }
            if self.done {
                if self.pending.is_empty() {
                    return None;
                }
                let rest = self.pending.split();
                return self.judge(&rest).await.map(|shown| Ok(Frame::data(shown)));
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    self.pending.clear();
                    return Some(Err(e));
                }
                Some(Ok(frame)) => {
                    // Trailers: events have none; dropped.
                    if let Ok(data) = frame.into_data() {
                        self.pending.extend_from_slice(&data);
                        if self.pending.len() > MAX_EVENT_LINE && !self.pending.contains(&b'\n') {
                            self.done = true;
                            self.pending.clear();
                            return Some(Err(BodyError(
                                format!(
                                    "an event line is longer than the {MAX_EVENT_LINE} bytes \
                                     sockwarden filters"
                                )
                                .into(),
                            )));
                        }
                    }
                }
            }
        }
    }

    /// Learns the owners of the volumes, networks and images there are now, so that events of
    /// objects deleted later are still judged. Best effort: what fails is looked up per event.
    async fn seed(&mut self) {
        let label = self.scope.owner_label.clone();
        if let Ok(Some(bytes)) = self.scope.lookup.get("/volumes").await {
            if let Ok(document) = serde_json::from_slice::<Value>(&bytes) {
                for volume in document
                    .get("Volumes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = volume.get("Name").and_then(Value::as_str) {
                        let owner = owners::label(volume.get("Labels"), &label);
                        self.volumes.insert(name.to_owned(), owner);
                    }
                }
            }
        }
        for (path, kind) in [
            ("/networks", Kind::Network),
            ("/images/json?all=1", Kind::Image),
        ] {
            let Ok(Some(bytes)) = self.scope.lookup.get(path).await else {
                continue;
            };
            let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            for item in &items {
                if let Some(id) = item.get("Id").and_then(Value::as_str) {
                    let owner = owners::label(item.get("Labels"), &label);
                    owners::remember(kind, id, owner.as_deref());
                }
            }
        }
    }

    /// The line with its newline if the tenant may see it.
    async fn judge(&mut self, line: &[u8]) -> Option<Bytes> {
        let event: Value = serde_json::from_slice(line).ok()?;
        if !self.shows(&event).await {
            return None;
        }
        let mut out = BytesMut::with_capacity(line.len() + 1);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n");
        Some(out.freeze())
    }

    async fn shows(&mut self, event: &Value) -> bool {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let kind = text(event.get("Type"));
        let action = text(event.get("Action"));
        let actor = event.get("Actor");
        let id = text(actor.and_then(|a| a.get("ID")));
        let attributes = actor.and_then(|a| a.get("Attributes"));
        let scope = Scope {
            owner_label: &self.scope.owner_label,
            tenant: &self.scope.tenant,
            recorded: |id, tenant| crate::isolation::ledger::owned_by(id, tenant, tenant),
        };
        let labelled = owners::label(attributes, scope.owner_label);
        match kind.as_str() {
            "container" => {
                if !id.is_empty() {
                    owners::remember(Kind::Container, &id, labelled.as_deref());
                }
                labelled.as_deref() == Some(scope.tenant)
            }
            "image" => {
                let owner = match labelled {
                    // The label counts only when the image ledger holds the ID for it.
                    Some(owner) if owners::full_id(&id) => {
                        owners::remember(Kind::Image, &id, Some(&owner));
                        let mine = owner == self.scope.tenant;
                        let judged = owners::judged(
                            &self.scope.lookup,
                            Kind::Image,
                            &id,
                            Some(owner),
                            &self.scope.owner_label,
                        )
                        .await
                        .ok();
                        if mine && judged == Some(Some(owners::UNRECORDED.to_owned())) {
                            await_record(&self.scope.tenant, &id, &action).await
                        } else {
                            judged
                        }
                    }
                    // Named (pull, push), or no owner label: asked of the daemon (unowned
                    // while the image exists, unknown once it is gone).
                    _ => owner(&self.scope, Kind::Image, &id).await,
                };
                match owner {
                    Some(Some(owner)) => owner == scope.tenant,
                    Some(None) => action == "pull",
                    None => false,
                }
            }
            "network" => {
                if owner(&self.scope, Kind::Network, &id).await
                    == Some(Some(self.scope.tenant.clone()))
                {
                    return true;
                }
                // The tenant's containers joining or leaving any network (bridge included).
                let container = text(attributes.and_then(|a| a.get("container")));
                matches!(action.as_str(), "connect" | "disconnect")
                    && !container.is_empty()
                    && owner(&self.scope, Kind::Container, &container).await
                        == Some(Some(self.scope.tenant.clone()))
            }
            "volume" => {
                let owner = self.volume_owner(&id, &action).await;
                owner.as_deref() == Some(self.scope.tenant.as_str())
            }
            _ => false,
        }
    }

    /// The owner of the volume `name` as of this event, following the stream's own creates
    /// and destroys.
    async fn volume_owner(&mut self, name: &str, action: &str) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        let known = if action == "create" {
            None
        } else {
            self.volumes.get(name).cloned()
        };
        let owner = match known {
            Some(owner) => owner,
            None => owners::volume(&self.scope.lookup, name, &self.scope.owner_label)
                .await
                .ok()
                .flatten()
                .flatten(),
        };
        if action == "destroy" {
            self.volumes.remove(name);
        } else {
            self.volumes.insert(name.to_owned(), owner.clone());
        }
        owner
    }
}

/// An image labelled as the tenant's that the ledger does not hold (yet): the daemon
/// reports an import or a build's tag before its answer (which sockwarden records at its
/// end) has ended, so for those events the record is awaited a little ([`RECORD_WAIT`]).
async fn await_record(tenant: &str, id: &str, action: &str) -> Option<Option<String>> {
    let unrecorded = Some(Some(owners::UNRECORDED.to_owned()));
    if !matches!(action, "import" | "tag") {
        return unrecorded;
    }
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        if crate::isolation::ledger::owned_by(id, tenant, tenant) {
            return Some(Some(tenant.to_owned()));
        }
    }
    unrecorded
}

/// The owner of a container, image or network by ID (`None`: not found or failed).
async fn owner(scope: &EventScope, kind: Kind, id: &str) -> Option<Option<String>> {
    if id.is_empty() {
        return None;
    }
    owners::look_up(&scope.lookup, kind, id, &scope.owner_label)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup through a daemon socket that does not exist: every lookup fails, so only what
    /// events carry themselves and the cache decide.
    fn scope() -> EventScope {
        EventScope {
            owner_label: "sockwarden.owner".into(),
            tenant: "uid:1001".into(),
            lookup: Lookup::unreachable(),
        }
    }

    fn body_of(chunks: Vec<Vec<u8>>) -> ProxyBody {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
        crate::body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    async fn shown(lines: &[serde_json::Value], split: usize) -> Vec<serde_json::Value> {
        let text: Vec<u8> = lines
            .iter()
            .flat_map(|l| {
                let mut v = serde_json::to_vec(l).unwrap();
                v.push(b'\n');
                v
            })
            .collect();
        let chunks = text.chunks(split).map(<[u8]>::to_vec).collect();
        let response = Response::new(body_of(chunks));
        let out = filtered(response, scope())
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn only_the_tenants_events_pass_split_anywhere() {
        use serde_json::json;
        let mine_image = "1a".repeat(32);
        let their_image = "2b".repeat(32);
        // sockwarden made mine_image for uid:1001 (the image ledger holds it).
        crate::isolation::ledger::hold_for_tests(&format!("sha256:{mine_image}"), "uid:1001");
        let events = vec![
            json!({"Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"sockwarden.owner":"uid:1001","name":"mine"}}}),
            json!({"Type":"container","Action":"start","Actor":{"ID":"c2","Attributes":{"sockwarden.owner":"uid:1002","name":"theirs"}}}),
            json!({"Type":"container","Action":"exec_create: sh","Actor":{"ID":"c3","Attributes":{"name":"unowned"}}}),
            json!({"Type":"container","Action":"destroy","Actor":{"ID":"c1","Attributes":{"sockwarden.owner":"uid:1001"}}}),
            json!({"Type":"container","Action":"die","Actor":{"ID":"c4","Attributes":{"sockwarden.owner":"uid:10010"}}}),
            // Image events: labels while the image exists, the cache once it is gone.
            json!({"Type":"image","Action":"tag","Actor":{"ID":format!("sha256:{mine_image}"),"Attributes":{"sockwarden.owner":"uid:1001"}}}),
            json!({"Type":"image","Action":"tag","Actor":{"ID":format!("sha256:{their_image}"),"Attributes":{"sockwarden.owner":"uid:1002"}}}),
            json!({"Type":"image","Action":"delete","Actor":{"ID":format!("sha256:{mine_image}"),"Attributes":{}}}),
            json!({"Type":"image","Action":"delete","Actor":{"ID":format!("sha256:{their_image}"),"Attributes":{}}}),
            // Labelled as the tenant's but not made by sockwarden (not in the ledger): nobody's,
            // while it exists and once it is gone.
            json!({"Type":"image","Action":"tag","Actor":{"ID":format!("sha256:{}", "3c".repeat(32)),"Attributes":{"sockwarden.owner":"uid:1001"}}}),
            json!({"Type":"image","Action":"delete","Actor":{"ID":format!("sha256:{}", "3c".repeat(32)),"Attributes":{}}}),
            // Unknown owners (the lookup fails here) are not shown.
            json!({"Type":"image","Action":"pull","Actor":{"ID":"busybox:latest","Attributes":{}}}),
            json!({"Type":"volume","Action":"create","Actor":{"ID":"v","Attributes":{"driver":"local"}}}),
            json!({"Type":"network","Action":"create","Actor":{"ID":"n","Attributes":{"name":"n"}}}),
            json!({"Type":"daemon","Action":"reload","Actor":{"ID":"d","Attributes":{}}}),
            json!({"Type":"plugin","Action":"enable","Actor":{"ID":"p","Attributes":{"sockwarden.owner":"uid:1001"}}}),
        ];
        for split in [1, 7, 64, 100_000] {
            let out = shown(&events, split).await;
            let seen: Vec<(String, String)> = out
                .iter()
                .map(|e| {
                    (
                        e["Actor"]["ID"].as_str().unwrap().to_owned(),
                        e["Action"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                seen,
                [
                    ("c1".to_owned(), "start".to_owned()),
                    ("c1".to_owned(), "destroy".to_owned()),
                    (format!("sha256:{mine_image}"), "tag".to_owned()),
                    (format!("sha256:{mine_image}"), "delete".to_owned()),
                ],
                "split {split}"
            );
        }
    }

    #[tokio::test]
    async fn unreadable_lines_are_dropped_and_overlong_ones_end_the_stream() {
        let ok = br#"{"Type":"container","Action":"start","Actor":{"ID":"c","Attributes":{"sockwarden.owner":"uid:1001"}}}"#;
        let mut text = b"not json\n".to_vec();
        text.extend_from_slice(ok);
        text.extend_from_slice(b"\n{\"Type\":\"container\"");
        let response = Response::new(body_of(vec![text]));
        let out = filtered(response, scope())
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let mut wanted = ok.to_vec();
        wanted.push(b'\n');
        assert_eq!(out.to_vec(), wanted);
        let long = vec![b'x'; MAX_EVENT_LINE + 1];
        let response = Response::new(body_of(vec![ok.to_vec(), b"\n".to_vec(), long]));
        let mut body = filtered(response, scope()).into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), ok.len() + 1);
        assert!(body.frame().await.unwrap().is_err());
    }
}
