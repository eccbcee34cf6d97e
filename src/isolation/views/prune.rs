//! A tenant's image prune (`POST /images/prune`), carried out by sockwarden image by image.
//!
//! The daemon's prune can only be scoped by label, and a label does not make an image a
//! tenant's: anyone may pull, load or build an image that carries a tenant's owner label, and
//! such an image is nobody's ([`crate::isolation::ledger`]). So the prune is not forwarded.
//! sockwarden lists the daemon's images, keeps those the ledger records for the tenant that
//! the client's filters select and no running build of the tenant holds
//! ([`crate::isolation::pins`]), and removes each as the daemon's own prune would (moby v20.10
//! `daemon/images/prune.go` `ImagesPrune`):
//! - `dangling=true` (the default) considers images without children and removes those with
//!   no tag (by their digest references, or by ID when they have none); `dangling=false`
//!   considers every image, skips untagged ones with children, and removes every reference;
//! - `until` and `label`/`label!` select as the daemon's filters do (all `label` values must
//!   match; an image is left out when it matches all `label!` values);
//! - each removal is the daemon's `DELETE /images/{ref}` without force; one that fails (in use
//!   by a container, gone meanwhile) is skipped, as the daemon skips it.
//!
//! The answer has the daemon's shape. `SpaceReclaimed` is the sum of the removed images'
//! sizes, which counts layers they shared with images that stay (the daemon counts only the
//! layers it freed).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use super::filters::Filters;
use crate::body::{self, ProxyBody};
use crate::error::ProxyError;
use crate::isolation::layer::Isolating;
use crate::isolation::owners::owner_label_value;
use crate::isolation::pins;
use crate::refusal::Isolated;
use crate::route::escape_object;

/// The filters an image prune accepts (moby `acceptedImagesFilterTags`).
const ACCEPTED: [&str; 4] = ["dangling", "label", "label!", "until"];

/// What the client's filters select.
#[derive(Debug, Clone, PartialEq)]
struct Selection {
    dangling_only: bool,
    /// Unix seconds: images created after it stay.
    until: Option<f64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

/// Prunes the tenant's images (the caller holds the tenant's removal turn).
pub async fn images(isolating: &Isolating) -> Result<Response<ProxyBody>, ProxyError> {
    let query = &isolating.authorized.normalized.query;
    let filters = Filters::parse(query.get("filters").unwrap_or(""))
        .map_err(|e| ProxyError::BadRequest(e.to_string()))?;
    if let Some(spelled) = filters.names_owner_label(&isolating.owner_label) {
        return Err(isolating.refuse(Isolated::ForgedOwner {
            field: format!("filters {spelled}"),
        }));
    }
    let selection = select(&filters, now())?;
    let unreadable = |e: crate::lookup::LookupError| {
        ProxyError::BadUpstream(format!("isolation could not list the images to prune: {e}"))
    };
    if let Some(ledger) = crate::isolation::ledger::global() {
        crate::isolation::ledger::adopt::ready(ledger, &isolating.lookup, &isolating.owner_label)
            .await
            .map_err(unreadable)?;
    }
    let all = if selection.dangling_only { "0" } else { "1" };
    let listed = isolating
        .lookup
        .get(&format!("/images/json?all={all}"))
        .await
        .map_err(unreadable)?
        .unwrap_or_default();
    let listed: Value = serde_json::from_slice(&listed)
        .map_err(|e| ProxyError::BadUpstream(format!("image list is not JSON: {e}")))?;
    let listed = listed.as_array().cloned().unwrap_or_default();
    let held = pins::held(&isolating.owner_label, isolating.tenant.label_value());
    let mut deleted: Vec<Value> = Vec::new();
    let mut reclaimed: u64 = 0;
    for image in candidates(isolating, &listed, &selection) {
        let id = str_of(image, "Id");
        if crate::isolation::objects::pinned(isolating, &held, id).await? {
            continue;
        }
        let removed = remove(isolating, image, selection.dangling_only).await?;
        if removed
            .iter()
            .any(|item| item.get("Deleted").and_then(Value::as_str) == Some(id))
        {
            reclaimed += image.get("Size").and_then(Value::as_u64).unwrap_or(0);
        }
        deleted.extend(removed);
    }
    let report = json!({
        "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
        "SpaceReclaimed": reclaimed,
    });
    let mut response = Response::new(body::boxed(Full::new(Bytes::from(report.to_string()))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn str_of<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Reads the client's filters as the daemon's prune does; `now` for `until` durations.
fn select(filters: &Filters, now: f64) -> Result<Selection, ProxyError> {
    if let Some(key) = filters.keys().find(|k| !ACCEPTED.contains(k)) {
        return Err(ProxyError::BadRequest(format!("invalid filter '{key}'")));
    }
    let values = |key: &str| filters.get(key).map(str::to_owned).collect::<Vec<_>>();
    let dangling = values("dangling");
    // `ExactMatch` holds for a key without values, so `{"dangling":{}}` prunes all.
    let dangling_only = if !filters.contains("dangling") {
        true
    } else if dangling.is_empty() || dangling.iter().any(|v| v == "false" || v == "0") {
        false
    } else if dangling.iter().any(|v| v == "true" || v == "1") {
        true
    } else {
        return Err(ProxyError::BadRequest(format!(
            "invalid filter 'dangling={}'",
            dangling.join(",")
        )));
    };
    let until = match values("until").as_slice() {
        [] if !filters.contains("until") => None,
        [one] => Some(timestamp(one, now).ok_or_else(|| {
            ProxyError::BadRequest(format!(
                "invalid filter 'until={one}': sockwarden reads a duration (24h), a unix time \
                 or a UTC time (2006-01-02T15:04:05Z)"
            ))
        })?),
        _ => {
            return Err(ProxyError::BadRequest(
                "more than one until filter specified".into(),
            ))
        }
    };
    Ok(Selection {
        dangling_only,
        until,
        labels: values("label"),
        not_labels: values("label!"),
    })
}

/// `until` as the daemon's `GetTimestamp` reads it, for the forms sockwarden accepts: a Go
/// duration before `now`, unix seconds (with a fraction), an RFC 3339 time in UTC.
fn timestamp(value: &str, now: f64) -> Option<f64> {
    if value != "0" {
        if let Some(seconds) = go_duration(value) {
            return Some((now - seconds).trunc());
        }
    }
    if value.ends_with(['Z', 'z']) && value.contains('-') {
        let time = humantime::parse_rfc3339(&value.replace('z', "Z")).ok()?;
        return time
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
    }
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) || fraction.len() > 9 {
        return None;
    }
    value.parse().ok()
}

/// Seconds in a Go duration (`1h30m`, `-1.5s`, `300ms`), as `time.ParseDuration` reads it.
fn go_duration(text: &str) -> Option<f64> {
    let (sign, mut rest) = match text.as_bytes().first()? {
        b'-' => (-1.0, &text[1..]),
        b'+' => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(sign * total)
}

/// The daemon's `MatchKVList`: every `key` or `key=value` condition holds for `labels` (no
/// condition: true; conditions but no labels: false).
fn match_kv(conditions: &[String], labels: Option<&serde_json::Map<String, Value>>) -> bool {
    if conditions.is_empty() {
        return true;
    }
    let Some(labels) = labels else {
        return false;
    };
    conditions
        .iter()
        .all(|condition| match condition.split_once('=') {
            None => labels.contains_key(condition.as_str()),
            Some((key, value)) => labels.get(key).and_then(Value::as_str) == Some(value),
        })
}

/// The daemon's `matchLabels` for prunes.
fn labels_selected(selection: &Selection, labels: Option<&serde_json::Map<String, Value>>) -> bool {
    if !match_kv(&selection.labels, labels) {
        return false;
    }
    selection.not_labels.is_empty() || !match_kv(&selection.not_labels, labels)
}

/// The references the daemon holds for a listed image (tags and digests, `<none>` left out).
fn references(image: &Value) -> (Vec<String>, bool) {
    let list = |key: &str| -> Vec<String> {
        image
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|r| !r.starts_with("<none>"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let tags = list("RepoTags");
    let tagged = !tags.is_empty();
    let mut refs = tags;
    refs.extend(list("RepoDigests"));
    (refs, tagged)
}

/// The listed images the prune considers: the tenant's recorded ones the filters select.
fn candidates<'l>(
    isolating: &Isolating,
    listed: &'l [Value],
    selection: &Selection,
) -> Vec<&'l Value> {
    let tenant = isolating.tenant.label_value();
    let has_children = |id: &str| listed.iter().any(|i| str_of(i, "ParentId") == id);
    listed
        .iter()
        .filter(|image| {
            let id = str_of(image, "Id");
            let labels = image.get("Labels").and_then(Value::as_object);
            let owner = owner_label_value(image.get("Labels"), &isolating.owner_label);
            let owned = owner.is_some_and(|o| crate::isolation::ledger::owned_by(id, &o, tenant));
            let created = image.get("Created").and_then(Value::as_f64).unwrap_or(0.0);
            let (refs, _) = references(image);
            owned
                && !(refs.is_empty() && has_children(id))
                && selection.until.is_none_or(|until| created <= until)
                && labels_selected(selection, labels)
        })
        .collect()
}

/// Removes one image as the daemon's prune does; what the daemon answered it removed.
async fn remove(
    isolating: &Isolating,
    image: &Value,
    dangling_only: bool,
) -> Result<Vec<Value>, ProxyError> {
    let (refs, tagged) = references(image);
    let targets: Vec<String> = if refs.is_empty() {
        let id = str_of(image, "Id");
        vec![id.strip_prefix("sha256:").unwrap_or(id).to_owned()]
    } else if !dangling_only || !tagged {
        refs
    } else {
        Vec::new()
    };
    let mut removed = Vec::new();
    for target in targets {
        let path = format!("/images/{}?force=0&noprune=0", escape_object(&target));
        let (status, answer) = isolating
            .lookup
            .send(Method::DELETE, &path, None)
            .await
            .map_err(|e| ProxyError::BadUpstream(format!("image prune: {e}")))?;
        // A failed removal (in use, gone meanwhile) is skipped, as the daemon's prune skips it.
        if status != StatusCode::OK {
            tracing::debug!(image = %target, %status, "image prune: removal skipped");
            continue;
        }
        if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&answer) {
            removed.extend(items);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(json: &str) -> Filters {
        Filters::parse(json).expect("filters")
    }

    #[test]
    fn filters_select_as_the_daemons_prune_reads_them() {
        let s = select(&filters(""), 1000.0).expect("empty");
        assert!(s.dangling_only && s.until.is_none());
        for (json, dangling_only) in [
            (r#"{"dangling":["true"]}"#, true),
            (r#"{"dangling":["1"]}"#, true),
            (r#"{"dangling":["false"]}"#, false),
            (r#"{"dangling":{"0":true}}"#, false),
            // A key without values matches exactly anything: all images.
            (r#"{"dangling":{}}"#, false),
            (r#"{"dangling":["true","false"]}"#, false),
        ] {
            let s = select(&filters(json), 0.0).expect(json);
            assert_eq!(s.dangling_only, dangling_only, "{json}");
        }
        for json in [
            r#"{"dangling":["yes"]}"#,
            r#"{"reference":["x"]}"#,
            r#"{"before":["x"]}"#,
            r#"{"until":["1h","2h"]}"#,
            r#"{"until":["yesterday"]}"#,
            r#"{"until":["2020-01-01T00:00:00+02:00"]}"#,
        ] {
            assert!(
                matches!(select(&filters(json), 0.0), Err(ProxyError::BadRequest(_))),
                "{json}"
            );
        }
        let s = select(&filters(r#"{"label":["a=1","b"],"label!":["c"]}"#), 0.0).expect("labels");
        assert_eq!(s.labels, vec!["a=1".to_owned(), "b".to_owned()]);
        assert_eq!(s.not_labels, vec!["c".to_owned()]);
    }

    #[test]
    fn until_reads_durations_unix_times_and_utc_times() {
        let now = 1_000_000.0;
        assert_eq!(timestamp("1h", now), Some(now - 3600.0));
        assert_eq!(timestamp("1h30m", now), Some(now - 5400.0));
        assert_eq!(timestamp("1.5s", now), Some((now - 1.5f64).trunc()));
        assert_eq!(timestamp("-10m", now), Some(now + 600.0));
        assert_eq!(timestamp("0", now), Some(0.0));
        assert_eq!(timestamp("1577836800", now), Some(1_577_836_800.0));
        assert_eq!(timestamp("1577836800.5", now), Some(1_577_836_800.5));
        assert_eq!(
            timestamp("2020-01-01T00:00:00Z", now),
            Some(1_577_836_800.0)
        );
        for bad in [
            "",
            "h",
            "1x",
            "1.2.3s",
            "2020-01-01",
            "12:00",
            "1.1234567891",
        ] {
            assert_eq!(timestamp(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn labels_match_as_match_kv_list_does() {
        let labels = json!({"a": "1", "b": "", "c": "x"});
        let labels = labels.as_object();
        let sel = |l: &[&str], n: &[&str]| Selection {
            dangling_only: true,
            until: None,
            labels: l.iter().map(|s| s.to_string()).collect(),
            not_labels: n.iter().map(|s| s.to_string()).collect(),
        };
        assert!(labels_selected(&sel(&[], &[]), labels));
        assert!(labels_selected(&sel(&["a=1", "b"], &[]), labels));
        assert!(!labels_selected(&sel(&["a=2"], &[]), labels));
        assert!(!labels_selected(&sel(&["a=1", "z"], &[]), labels));
        // Left out only when every `label!` condition holds.
        assert!(!labels_selected(&sel(&[], &["c=x"]), labels));
        assert!(labels_selected(&sel(&[], &["c=x", "z"]), labels));
        assert!(labels_selected(&sel(&[], &["c=y"]), labels));
        // No labels at all: a `label` condition fails, a `label!` one cannot hold.
        assert!(!labels_selected(&sel(&["a"], &[]), None));
        assert!(labels_selected(&sel(&[], &["a"]), None));
    }

    #[test]
    fn references_leave_none_out() {
        let image = json!({
            "RepoTags": ["<none>:<none>"],
            "RepoDigests": ["x@sha256:aa", "<none>@<none>"],
        });
        assert_eq!(references(&image), (vec!["x@sha256:aa".to_owned()], false));
        let image = json!({"RepoTags": ["a:1", "b:2"], "RepoDigests": null});
        assert_eq!(
            references(&image),
            (vec!["a:1".to_owned(), "b:2".to_owned()], true)
        );
    }
}
