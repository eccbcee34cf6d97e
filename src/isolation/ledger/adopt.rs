//! What the image ledger asks the daemon for: adopting the labelled images when the file does
//! not exist yet ([`ready`]), and recording an image made for a tenant ([`record`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::{create, is_image_id, lock, Ledger, LedgerError, Record};
use crate::lookup::{Lookup, LookupError};

/// Makes sure the file exists: when it did not at start, adopts every image that carries
/// `owner_label` now (trust on first use) and writes them as the first records. Cheap once
/// done; until it succeeds (the daemon unreachable), image ownership cannot be judged.
pub async fn ready(ledger: &Ledger, lookup: &Lookup, owner_label: &str) -> Result<(), LookupError> {
    if ledger.adopted.load(Ordering::SeqCst) {
        return Ok(());
    }
    let _turn = ledger.adopting.lock().await;
    if ledger.adopted.load(Ordering::SeqCst) {
        return Ok(());
    }
    let filters = serde_json::json!({ "label": [owner_label] }).to_string();
    let path = format!("/images/json?all=1&filters={}", encode(&filters));
    let bytes = lookup.get(&path).await?.unwrap_or_default();
    let list: Value =
        serde_json::from_slice(&bytes).map_err(|e| LookupError::BadAnswer(e.to_string()))?;
    let adopted: Vec<Record> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|image| {
            let id = image.get("Id")?.as_str()?;
            let tenant = image.get("Labels")?.get(owner_label)?.as_str()?;
            (is_image_id(id) && !tenant.is_empty() && !tenant.contains('\0')).then(|| Record {
                id: id.to_owned(),
                tenant: tenant.to_owned(),
                op: "adopted".into(),
            })
        })
        .collect();
    let count = adopted.len();
    let path = ledger.path.clone();
    let records = adopted.clone();
    let file = tokio::task::spawn_blocking(move || create(&path, &records))
        .await
        .map_err(|e| LookupError::BadAnswer(format!("ledger task failed: {e}")))?
        .map_err(|e| {
            LookupError::BadAnswer(format!(
                "cannot create the image ledger {}: {e}",
                ledger.path.display()
            ))
        })?;
    ledger.insert_all(adopted.iter().map(|r| (r.id.as_str(), r.tenant.as_str())));
    *lock(&ledger.file) = Some(file);
    ledger.adopted.store(true, Ordering::SeqCst);
    tracing::warn!(
        ledger = %ledger.path.display(),
        adopted = count,
        owner_label,
        "image ledger created: every image carrying the owner label now was adopted as \
         its label says (trust on first use); from now on only images sockwarden builds, \
         commits or imports for a tenant are the tenant's"
    );
    Ok(())
}

/// Records that sockwarden made image `id` for `tenant` (by `op`): held at once, and
/// appended to the file and synced to disk before this returns.
pub async fn record(
    ledger: &Arc<Ledger>,
    lookup: &Lookup,
    owner_label: &str,
    id: &str,
    tenant: &str,
    op: &str,
) -> Result<(), LedgerError> {
    if !is_image_id(id) {
        return Err(LedgerError(format!("{id:?} is not an image ID")));
    }
    ready(ledger, lookup, owner_label)
        .await
        .map_err(|e| LedgerError(e.to_string()))?;
    if ledger.has(id, tenant) {
        return Ok(());
    }
    ledger.insert_all(std::iter::once((id, tenant)));
    let record = Record {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        op: op.to_owned(),
    };
    let ledger = Arc::clone(ledger);
    tokio::task::spawn_blocking(move || ledger.append(&record))
        .await
        .map_err(|e| LedgerError(format!("ledger task failed: {e}")))?
}

/// Percent-encodes a query component (everything but unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
