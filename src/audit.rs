//! The audit trail: one JSON record per request (and, for a hijacked session, one when it opens
//! and one when it closes), saying who asked for what, what was decided and why, and what
//! happened.
//!
//! Each request carries a [`Trail`] that the layers fill in as they learn things (the
//! authorization layer the client, operation and decision; the inspection layer the settings
//! it saw; the error boundary any refusal); the outermost [`layer::AuditLayer`] writes it as one JSON
//! line when the response is complete and appends it to the sink's pending batch, which a
//! separate thread writes out (`sink`). The same moment feeds the metrics.
//!
//! Secrets never reach a record: headers are not logged (so neither `X-Registry-Auth` nor
//! `Authorization`), query parameters that carry credentials or build arguments are redacted,
//! and bodies are logged only when `audit.log_bodies` asks for it, with `Env` values, build
//! arguments and credentials replaced by `<redacted>`.
//!
//! With `on_failure = "closed"` (the default) a request is refused with 503 while the sink is
//! failing or its queue is full, so nothing happens that is not recorded; `"open"` serves on
//! and counts the loss. Either way a lost record is a metric and a log line.

pub mod layer;
mod line;
pub mod record;
pub mod report;
pub mod schema;
pub mod seal;
mod sink;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::metrics::Metrics;

pub use schema::Record;
pub use sink::SinkConfig;

/// An error opening the sink, as `serve` (and `check`) report it.
fn sink_error(config: &SinkConfig, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("audit {config}: {e}"))
}

/// The response header that carries the request id, to find a request's record.
pub const REQUEST_ID_HEADER: &str = "x-sockwarden-request-id";

/// What a full or failing sink does to requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refuse requests (503) while records cannot be written: nothing unrecorded happens.
    #[default]
    Closed,
    /// Serve on; lost records are counted and logged.
    Open,
}

/// The validated `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Where records go; `None` turns the audit log off.
    pub sink: Option<SinkConfig>,
    /// Queue size between requests and the writer.
    pub queue: usize,
    /// Fail closed or open.
    pub on_failure: OnFailure,
    /// Whether inspected request bodies are logged (redacted).
    pub log_bodies: bool,
    /// Sealing of the file sink (`seal_key`); `None`: records are not sealed.
    pub seal: Option<seal::SealSettings>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            sink: Some(SinkConfig::Stdout),
            queue: 8192,
            on_failure: OnFailure::Closed,
            log_bodies: false,
            seal: None,
        }
    }
}

/// The running audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    /// The writer's intake; `None` when the audit log is off.
    sink: Option<Arc<sink::SinkState>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    settings: AuditSettings,
    metrics: Metrics,
    next_id: AtomicU64,
    id_prefix: u32,
    last_complaint: Mutex<Option<Instant>>,
}

impl Audit {
    /// Opens the sink (an error here keeps sockwarden from starting) and starts its writer.
    pub fn start(settings: AuditSettings, metrics: Metrics) -> std::io::Result<Audit> {
        let (sink, writer) = match &settings.sink {
            Some(config) => {
                let (state, handle) = sink::start(
                    config,
                    settings.queue,
                    settings.seal.as_ref(),
                    metrics.clone(),
                )
                .map_err(|e| sink_error(config, e))?;
                (Some(state), Some(handle))
            }
            None => (None, None),
        };
        metrics.audit_queue(0, settings.queue);
        let id_prefix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        Ok(Audit {
            core: Arc::new(Core {
                sink,
                writer: Mutex::new(writer),
                settings,
                metrics,
                next_id: AtomicU64::new(1),
                id_prefix,
                last_complaint: Mutex::new(None),
            }),
        })
    }

    /// Whether [`Audit::start`] could open the sink, without opening it (no file is created):
    /// the same error `start` would give, for `sockwarden check`.
    pub fn preflight(settings: &AuditSettings) -> std::io::Result<()> {
        match &settings.sink {
            Some(config) => {
                sink::preflight(config).map_err(|e| sink_error(config, e))?;
                match &settings.seal {
                    Some(seal) => seal::preflight(seal).map_err(|e| sink_error(config, e)),
                    None => Ok(()),
                }
            }
            None => Ok(()),
        }
    }

    /// The metrics this audit log feeds.
    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// Whether a new request may be served: always when failing open or when the audit log is
    /// off; otherwise only while the sink works and the queue has room.
    pub fn admits(&self) -> bool {
        let Some(sink) = &self.core.sink else {
            return true;
        };
        if self.core.settings.on_failure == OnFailure::Open {
            return true;
        }
        sink.has_room() && sink.healthy.load(Ordering::Relaxed)
    }

    /// Asks the writer to reopen its file (SIGUSR1, after logrotate moved it).
    pub fn reopen(&self) {
        if let Some(sink) = &self.core.sink {
            sink.reopen();
        }
    }

    /// Writes what is queued and stops the writer (at shutdown), waiting at most `limit`.
    pub async fn close(&self, limit: Duration) {
        let Some(sink) = &self.core.sink else { return };
        sink.stop();
        let handle = self
            .core
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join());
            if tokio::time::timeout(limit, joined).await.is_err() {
                tracing::warn!("audit writer did not finish in time; records may be lost");
            }
        }
    }

    /// Queues a record; a record that cannot be queued is counted and logged, never dropped
    /// silently.
    pub fn submit(&self, record: Record) {
        self.push(|out| sink::record_line(&record, out));
    }

    /// Whether inspected bodies should be handed over for the records.
    pub fn logs_bodies(&self) -> bool {
        self.core.settings.log_bodies && self.core.sink.is_some()
    }

    /// Appends a record, written by `write`, to the writer's pending batch.
    pub(crate) fn push(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let Some(sink) = &self.core.sink else { return };
        if !sink.push(write) {
            self.core.metrics.audit_lost("queue_full", 1);
            self.complain();
        }
    }

    fn complain(&self) {
        let mut last = self
            .core
            .last_complaint
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        tracing::error!(
            lost_total = self.core.metrics.audit_lost_total(),
            "audit queue full: record lost"
        );
    }

    /// A fresh request id: the process's start second and a counter, in hex.
    pub(crate) fn next_id(&self) -> String {
        let n = self.core.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:08x}", self.core.id_prefix)
    }

    /// Records a configuration reload.
    pub fn reload(&self, source: &str, result: Result<u64, &str>, restart_needed: &[String]) {
        let (ok, generation, error) = match result {
            Ok(generation) => (true, Some(generation), None),
            Err(e) => (false, None, Some(e.to_owned())),
        };
        self.submit(Record {
            time: Some(now_rfc3339()),
            id: Some(self.next_id()),
            event: Some("reload".into()),
            result: Some(if ok { "ok" } else { "error" }.into()),
            source: Some(source.to_owned()),
            generation,
            error,
            restart_needed: restart_needed.to_vec(),
            ..Record::default()
        });
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}
