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
//!
//! Several sinks may run at once (`[[audit.sinks]]`: a file and a remote collector, say), each
//! with its own writer thread, pending batch and `on_failure`: a request's line is written once
//! and queued on each.

pub mod layer;
mod line;
#[cfg(test)]
mod page_cache_tests;
pub mod record;
pub mod remote;
pub mod report;
pub mod schema;
pub mod seal;
mod sink;
pub mod spool;
pub mod syslog_format;
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

/// One sink of the `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSettings {
    /// Its name, unique: the `sink` label of its metrics, and in `/readyz` and the log.
    pub name: String,
    /// Where records go.
    pub config: SinkConfig,
    /// Fail closed or open when this sink cannot take records.
    pub on_failure: OnFailure,
    /// The setting `check` names for this sink's address or path (`audit.path`,
    /// `audit.sinks[1].spool_dir`).
    pub setting: String,
}

/// The validated `[audit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Where records go; none turns the audit log off.
    pub sinks: Vec<SinkSettings>,
    /// Queue size between requests and each sink's writer.
    pub queue: usize,
    /// Whether inspected request bodies are logged (redacted).
    pub log_bodies: bool,
    /// Sealing of the file sink (`seal_key`); `None`: records are not sealed.
    pub seal: Option<seal::SealSettings>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            sinks: vec![SinkSettings {
                name: "stdout".to_owned(),
                config: SinkConfig::Stdout,
                on_failure: OnFailure::Closed,
                setting: "audit.sink".to_owned(),
            }],
            queue: 8192,
            log_bodies: false,
            seal: None,
        }
    }
}

/// One running sink: its writer's intake and what a failure does.
#[derive(Debug)]
struct RunningSink {
    name: String,
    description: String,
    state: Arc<sink::SinkState>,
    on_failure: OnFailure,
    metrics: crate::metrics::SinkMetrics,
}

/// The running audit log. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Audit {
    core: Arc<Core>,
}

#[derive(Debug)]
struct Core {
    /// The sinks (none when the audit log is off).
    sinks: Vec<RunningSink>,
    /// Their intakes, in the same order (for [`sink::push_each`]).
    states: Vec<Arc<sink::SinkState>>,
    /// Whether any sink fails closed.
    any_closed: bool,
    writers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    settings: AuditSettings,
    metrics: Metrics,
    next_id: AtomicU64,
    id_prefix: u32,
    last_complaint: Mutex<Option<Instant>>,
}

impl Audit {
    /// An audit with no sinks: records are written and dropped (unit tests' trails).
    #[cfg(test)]
    #[allow(clippy::expect_used)]
    pub(crate) fn quiet() -> Audit {
        let settings = AuditSettings {
            sinks: Vec::new(),
            ..AuditSettings::default()
        };
        Audit::start(settings, Metrics::new()).expect("an audit without sinks starts")
    }

    /// Opens the sinks (an error here keeps sockwarden from starting) and starts their
    /// writers.
    pub fn start(settings: AuditSettings, metrics: Metrics) -> std::io::Result<Audit> {
        let mut sinks = Vec::with_capacity(settings.sinks.len());
        let mut writers = Vec::with_capacity(settings.sinks.len());
        for s in &settings.sinks {
            // The seal applies to the file sink (config allows exactly one with seal_key).
            let seal = match s.config {
                SinkConfig::File(_) => settings.seal.as_ref(),
                _ => None,
            };
            let started = sink::start(&s.config, &s.name, settings.queue, seal, metrics.clone());
            let (state, handle) = match started {
                Ok(started) => started,
                Err(e) => {
                    // Stop the writers already started.
                    for running in &sinks {
                        let running: &RunningSink = running;
                        running.state.stop();
                    }
                    return Err(sink_error(&s.config, e));
                }
            };
            sinks.push(RunningSink {
                name: s.name.clone(),
                description: s.config.to_string(),
                state,
                on_failure: s.on_failure,
                metrics: metrics.audit_sink(&s.name),
            });
            writers.push(handle);
        }
        let states = sinks.iter().map(|s| s.state.clone()).collect();
        let any_closed = sinks.iter().any(|s| s.on_failure == OnFailure::Closed);
        metrics.audit_queue(0, settings.queue);
        let id_prefix = id_prefix();
        Ok(Audit {
            core: Arc::new(Core {
                sinks,
                states,
                any_closed,
                writers: Mutex::new(writers),
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
        Audit::preflight_sinks(settings).map_err(|(_, e)| e)
    }

    /// [`Audit::preflight`], saying which sink's setting is at fault.
    pub fn preflight_sinks(settings: &AuditSettings) -> Result<(), (String, std::io::Error)> {
        for s in &settings.sinks {
            sink::preflight(&s.config)
                .map_err(|e| (s.setting.clone(), sink_error(&s.config, e)))?;
            if let (Some(seal), SinkConfig::File(_)) = (&settings.seal, &s.config) {
                seal::preflight(seal)
                    .map_err(|e| ("audit.seal_key".to_owned(), sink_error(&s.config, e)))?;
            }
        }
        Ok(())
    }

    /// The metrics this audit log feeds.
    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    /// Whether a new request may be served: always when every sink fails open or the audit
    /// log is off; otherwise only while each fail-closed sink works and its queue has room.
    pub fn admits(&self) -> bool {
        if !self.core.any_closed {
            return true;
        }
        self.core.sinks.iter().all(|s| {
            s.on_failure == OnFailure::Open
                || (s.state.has_room() && s.state.healthy.load(Ordering::Relaxed))
        })
    }

    /// For `/readyz`: a sentence for each fail-closed sink that cannot take records now (so
    /// requests are refused with 503); empty when none.
    pub fn failing_closed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.core.sinks {
            if s.on_failure != OnFailure::Closed {
                continue;
            }
            let why = if !s.state.healthy.load(Ordering::Relaxed) {
                s.state
                    .failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "its last write failed".to_owned())
            } else if !s.state.has_room() {
                format!("its queue is full ({} records)", self.core.settings.queue)
            } else {
                continue;
            };
            out.push(format!(
                "audit sink {} ({}) is failing closed: {why}; requests are refused with 503 \
                 (on_failure = \"closed\")",
                s.name, s.description
            ));
        }
        out
    }

    /// Asks the writers to reopen their files (SIGUSR1, after logrotate moved them).
    pub fn reopen(&self) {
        for s in &self.core.sinks {
            s.state.reopen();
        }
    }

    /// Writes what is queued and stops the writers (at shutdown), waiting at most `limit`.
    pub async fn close(&self, limit: Duration) {
        if self.core.sinks.is_empty() {
            return;
        }
        for s in &self.core.sinks {
            s.state.stop();
        }
        let handles =
            std::mem::take(&mut *self.core.writers.lock().unwrap_or_else(|p| p.into_inner()));
        if handles.is_empty() {
            return;
        }
        let joined = tokio::task::spawn_blocking(move || {
            for handle in handles {
                let _ = handle.join();
            }
        });
        if tokio::time::timeout(limit, joined).await.is_err() {
            tracing::warn!("audit writer did not finish in time; records may be lost");
        }
    }

    /// Queues a record; a record that cannot be queued is counted and logged, never dropped
    /// silently.
    pub fn submit(&self, record: Record) {
        self.push(|out| sink::record_line(&record, out));
    }

    /// Whether inspected bodies should be handed over for the records.
    pub fn logs_bodies(&self) -> bool {
        self.core.settings.log_bodies && !self.core.sinks.is_empty()
    }

    /// Appends a record, written by `write`, to each writer's pending batch.
    pub(crate) fn push(&self, write: impl FnOnce(&mut Vec<u8>)) {
        match self.core.states.as_slice() {
            [] => {}
            [only] => {
                if !only.push(write) {
                    self.queue_full(0);
                }
            }
            all => sink::push_each(all, write, |i| self.queue_full(i)),
        }
    }

    fn queue_full(&self, sink: usize) {
        self.core.metrics.audit_lost("queue_full", 1);
        if let Some(s) = self.core.sinks.get(sink) {
            s.metrics.lost("queue_full", 1);
        }
        self.complain();
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
        // Written from the response's end, after the request: inside its connection's span.
        crate::logging::request::in_span(|| {
            tracing::error!(
                lost_total = self.core.metrics.audit_lost_total(),
                "audit queue full: record lost"
            )
        });
    }

    /// A fresh request id: the process's random prefix and a counter, in hex.
    pub(crate) fn next_id(&self) -> crate::logging::request::RequestId {
        crate::logging::request::RequestId {
            prefix: self.core.id_prefix,
            number: self.core.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Records a configuration reload.
    pub fn reload(&self, source: &str, result: Result<u64, &str>, restart_needed: &[String]) {
        let (ok, generation, error) = match result {
            Ok(generation) => (true, Some(generation), None),
            Err(e) => (false, None, Some(e.to_owned())),
        };
        self.submit(Record {
            time: Some(now_rfc3339()),
            id: Some(self.next_id().to_string()),
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

/// A request id prefix of this process: random, so that two sockwardens (a fleet, or one
/// restarted within a second) never hand out the same ids; the start second if the system
/// has no random source.
fn id_prefix() -> u32 {
    let mut bytes = [0u8; 4];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    /// Two processes (two calls) get different request id prefixes, whenever they start.
    #[test]
    fn request_id_prefixes_differ_between_processes() {
        let prefixes: std::collections::HashSet<u32> = (0..8).map(|_| super::id_prefix()).collect();
        assert_eq!(prefixes.len(), 8);
    }
}
