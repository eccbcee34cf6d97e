//! Prometheus metrics, served by the admin listener at `/metrics` (text exposition format).
//!
//! Counters and histograms are labelled by client, operation (the route template's name, so
//! the label set stays bounded whatever paths clients send), decision and status. Updating a
//! metric is a hash lookup and an atomic add; nothing here is on the request path's critical
//! section for long. The two families every request updates are reached through per-thread
//! handles (`handles`).

mod handles;

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A client name as a label value: shared, so counting a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ClientLabel(Option<Arc<str>>);

impl EncodeLabelValue for ClientLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.0.as_deref().unwrap_or(""))
    }
}

/// Labels of one finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    client: ClientLabel,
    operation: &'static str,
    decision: &'static str,
    status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    client: ClientLabel,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    client: String,
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LossLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLossLabels {
    sink: String,
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric sockwarden exports. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// This instance's id in the threads' handle caches (`handles`).
    owner: u64,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<LatencyLabels>,
    connections_open: Family<ListenerLabels, Gauge>,
    connections: Family<ListenerLabels, Counter>,
    sessions_open: Gauge,
    upstream_errors: Counter,
    limited: Family<LimitLabels, Counter>,
    audit_written: Counter,
    audit_lost: Family<LossLabels, Counter>,
    audit_queue_depth: Gauge,
    audit_queue_capacity: Gauge,
    sinks: SinkFamilies,
    reloads: Family<ResultLabels, Counter>,
    config_generation: Gauge,
    seal: SealMetrics,
}

/// Sealing of the audit file (`audit::seal`).
#[derive(Debug, Default)]
struct SealMetrics {
    records: Counter,
    checkpoints: Counter,
    sequence: Gauge,
    state_failures: Counter,
    seed_on_host: Gauge,
}

impl SealMetrics {
    fn register(registry: &mut Registry) -> SealMetrics {
        let m = SealMetrics::default();
        registry.register(
            "audit_sealed_records",
            "Audit records sealed (request records; seal records not included)",
            m.records.clone(),
        );
        registry.register(
            "audit_seal_checkpoints",
            "Sealed checkpoint records written",
            m.checkpoints.clone(),
        );
        registry.register(
            "audit_seal_sequence",
            "Number of the next sealed record in the chain",
            m.sequence.clone(),
        );
        registry.register(
            "audit_seal_state_failures",
            "Seal state file writes that failed (the batch is lost)",
            m.state_failures.clone(),
        );
        registry.register(
            "audit_seal_seed_on_host",
            "1 when the seal seed was readable on this host at start (keep it elsewhere)",
            m.seed_on_host.clone(),
        );
        m
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (at zero).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sockwarden");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by client, operation, decision (allow, deny, would-deny) and HTTP status",
            requests.clone(),
        );
        let latency: HistogramFamily<LatencyLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its response head (streams not included), by client and operation",
            latency.clone(),
        );
        let connections_open = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "connections_open",
            "Client connections currently open, by listener",
            connections_open.clone(),
        );
        let connections = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "connections",
            "Client connections accepted, by listener",
            connections.clone(),
        );
        let sessions_open = Gauge::default();
        registry.register(
            "hijacked_sessions_open",
            "Hijacked sessions (attach, exec, BuildKit) currently relayed",
            sessions_open.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "upstream_errors",
            "Requests that failed because the Docker daemon could not be reached or broke off",
            upstream_errors.clone(),
        );
        let limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "limited",
            "Requests answered 429 by a client limit (limit = rate or connections)",
            limited.clone(),
        );
        let audit_written = Counter::default();
        registry.register(
            "audit_records_written",
            "Audit records written to the sink",
            audit_written.clone(),
        );
        let audit_lost = Family::<LossLabels, Counter>::default();
        registry.register(
            "audit_records_lost",
            "Audit records lost (reason = queue_full or sink_error)",
            audit_lost.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit records waiting to be written",
            audit_queue_depth.clone(),
        );
        let audit_queue_capacity = Gauge::default();
        registry.register(
            "audit_queue_capacity",
            "Size of the audit queue",
            audit_queue_capacity.clone(),
        );
        let sinks = SinkFamilies::register(&mut registry);
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reloads",
            "Configuration reloads (result = ok or error)",
            reloads.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the configuration in force (1 at start, +1 per successful reload)",
            config_generation.clone(),
        );
        config_generation.set(1);
        let seal = SealMetrics::register(&mut registry);
        // Label sets known in advance are exported from the start, at zero: a counter that
        // first appears at 1 is missed by Prometheus' increase()/rate(), so an alert on the
        // first lost audit record or failed reload would never fire.
        for reason in ["queue_full", "sink_error"] {
            let _ = audit_lost.get_or_create(&LossLabels { reason });
        }
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ResultLabels { result });
        }
        Metrics {
            inner: Arc::new(Inner {
                owner: handles::next_owner(),
                registry,
                requests,
                latency,
                connections_open,
                connections,
                sessions_open,
                upstream_errors,
                limited,
                audit_written,
                audit_lost,
                audit_queue_depth,
                audit_queue_capacity,
                sinks,
                reloads,
                config_generation,
                seal,
            }),
        }
    }

    /// Counts one finished request.
    pub fn request(
        &self,
        client: Option<&Arc<str>>,
        operation: &'static str,
        decision: &'static str,
        status: u16,
    ) {
        let inner = &self.inner;
        handles::with_counter(
            inner.owner,
            client,
            operation,
            decision,
            status,
            || {
                inner.requests.get_or_create_owned(&RequestLabels {
                    client: ClientLabel(client.cloned()),
                    operation,
                    decision,
                    status,
                })
            },
            |counter| {
                counter.inc();
            },
        );
    }

    /// Records the time to a response head.
    pub fn latency(&self, client: Option<&Arc<str>>, operation: &'static str, seconds: f64) {
        let inner = &self.inner;
        handles::with_histogram(
            inner.owner,
            client,
            operation,
            || {
                inner.latency.get_or_create_owned(&LatencyLabels {
                    client: ClientLabel(client.cloned()),
                    operation,
                })
            },
            |histogram| histogram.observe(seconds),
        );
    }

    /// The connection counters of `listener`, looked up once when it starts accepting (so
    /// its series read 0 until the first connection): each connection then counts itself
    /// through [`ListenerMetrics::opened`] without a label to build or a family to search.
    pub fn listener(&self, listener: &str) -> ListenerMetrics {
        let labels = ListenerLabels {
            listener: listener.to_owned(),
        };
        ListenerMetrics {
            accepted: self.inner.connections.get_or_create_owned(&labels),
            open: self.inner.connections_open.get_or_create_owned(&labels),
        }
    }

    /// A hijacked session started; the returned guard counts it as open.
    pub fn session_opened(&self) -> OpenGauge {
        let gauge = self.inner.sessions_open.clone();
        gauge.inc();
        OpenGauge(gauge)
    }

    /// The daemon could not be reached or broke off.
    pub fn upstream_error(&self) {
        self.inner.upstream_errors.inc();
    }

    /// A request was answered 429 (`limit` = `rate` or `connections`).
    pub fn limited(&self, client: &str, limit: &'static str) {
        self.inner
            .limited
            .get_or_create(&LimitLabels {
                client: client.to_owned(),
                limit,
            })
            .inc();
    }

    /// Audit records written.
    pub fn audit_written(&self, n: u64) {
        self.inner.audit_written.inc_by(n);
    }

    /// Audit records lost (`reason` = `queue_full` or `sink_error`).
    pub fn audit_lost(&self, reason: &'static str, n: u64) {
        self.inner
            .audit_lost
            .get_or_create(&LossLabels { reason })
            .inc_by(n);
    }

    /// Sealing started at record `seq`; whether the seed was readable.
    pub fn seal_started(&self, seq: u64, seed_on_host: bool) {
        self.inner.seal.sequence.set(seq as i64);
        self.inner.seal.seed_on_host.set(i64::from(seed_on_host));
    }

    /// `records` request records sealed; `next` is the next record's number.
    pub fn seal_progress(&self, records: u64, next: u64) {
        self.inner.seal.records.inc_by(records);
        self.inner.seal.sequence.set(next as i64);
    }

    /// A sealed checkpoint was written.
    pub fn seal_checkpoint(&self) {
        self.inner.seal.checkpoints.inc();
    }

    /// A seal state write failed.
    pub fn seal_state_failure(&self) {
        self.inner.seal.state_failures.inc();
    }

    /// Total audit records lost so far, whatever the reason.
    pub fn audit_lost_total(&self) -> u64 {
        ["queue_full", "sink_error"]
            .iter()
            .map(|reason| {
                self.inner
                    .audit_lost
                    .get_or_create(&LossLabels { reason })
                    .get()
            })
            .sum()
    }

    /// The audit queue's size and current depth.
    pub fn audit_queue(&self, depth: usize, capacity: usize) {
        self.inner
            .audit_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.inner
            .audit_queue_capacity
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// The per-sink metrics of the audit sink called `name` (its label), exported from now
    /// on (the loss counters at zero).
    pub fn audit_sink(&self, name: &str) -> SinkMetrics {
        let f = &self.inner.sinks;
        let sink = SinkLabels {
            sink: name.to_owned(),
        };
        let lost = |reason| {
            f.lost.get_or_create_owned(&SinkLossLabels {
                sink: name.to_owned(),
                reason,
            })
        };
        SinkMetrics {
            written: f.written.get_or_create_owned(&sink),
            lost_queue_full: lost("queue_full"),
            lost_sink_error: lost("sink_error"),
            healthy: {
                let g = f.healthy.get_or_create_owned(&sink);
                g.set(1);
                g
            },
            families: f.clone(),
            sink,
        }
    }

    /// A reload was attempted; on success `generation` is the new configuration's.
    pub fn reload(&self, ok: bool, generation: u64) {
        let result = if ok { "ok" } else { "error" };
        self.inner
            .reloads
            .get_or_create(&ResultLabels { result })
            .inc();
        if ok {
            self.inner
                .config_generation
                .set(i64::try_from(generation).unwrap_or(i64::MAX));
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

/// The per-sink families.
#[derive(Clone, Debug)]
struct SinkFamilies {
    written: Family<SinkLabels, Counter>,
    lost: Family<SinkLossLabels, Counter>,
    healthy: Family<SinkLabels, Gauge>,
    spool_bytes: Family<SinkLabels, Gauge>,
    spool_records: Family<SinkLabels, Gauge>,
    spool_capacity: Family<SinkLabels, Gauge>,
    connected: Family<SinkLabels, Gauge>,
    delivered: Family<SinkLabels, Counter>,
    failures: Family<SinkLabels, Counter>,
}

impl SinkFamilies {
    fn register(registry: &mut Registry) -> SinkFamilies {
        let f = SinkFamilies {
            written: Family::default(),
            lost: Family::default(),
            healthy: Family::default(),
            spool_bytes: Family::default(),
            spool_records: Family::default(),
            spool_capacity: Family::default(),
            connected: Family::default(),
            delivered: Family::default(),
            failures: Family::default(),
        };
        registry.register(
            "audit_sink_records_written",
            "Audit records written by each sink (for a remote sink: taken into its spool)",
            f.written.clone(),
        );
        registry.register(
            "audit_sink_records_lost",
            "Audit records each sink lost (reason = queue_full or sink_error; a full spool is sink_error)",
            f.lost.clone(),
        );
        registry.register(
            "audit_sink_healthy",
            "1 while the sink's last write succeeded (a remote sink: while its spool has room), else 0",
            f.healthy.clone(),
        );
        registry.register(
            "audit_spool_bytes",
            "Bytes of audit records spooled for a remote sink and not yet delivered",
            f.spool_bytes.clone(),
        );
        registry.register(
            "audit_spool_records",
            "Audit records spooled for a remote sink and not yet delivered",
            f.spool_records.clone(),
        );
        registry.register(
            "audit_spool_capacity_bytes",
            "The remote sink's spool bound (spool_max_bytes)",
            f.spool_capacity.clone(),
        );
        registry.register(
            "audit_remote_connected",
            "1 while the remote sink holds a connection to its collector, else 0",
            f.connected.clone(),
        );
        registry.register(
            "audit_remote_delivered_records",
            "Audit records the remote sink delivered to its collector",
            f.delivered.clone(),
        );
        registry.register(
            "audit_remote_failures",
            "Failed connection attempts to the collector and connections that broke",
            f.failures.clone(),
        );
        f
    }
}

/// One audit sink's metrics (labelled `sink`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    sink: SinkLabels,
    families: SinkFamilies,
    written: Counter,
    lost_queue_full: Counter,
    lost_sink_error: Counter,
    healthy: Gauge,
}

impl SinkMetrics {
    /// Records written.
    pub fn written(&self, n: u64) {
        self.written.inc_by(n);
    }

    /// Records lost (`reason` = `queue_full` or `sink_error`).
    pub fn lost(&self, reason: &'static str, n: u64) {
        match reason {
            "queue_full" => self.lost_queue_full.inc_by(n),
            _ => self.lost_sink_error.inc_by(n),
        };
    }

    /// Whether the last write succeeded.
    pub fn healthy(&self, ok: bool) {
        self.healthy.set(i64::from(ok));
    }

    /// The spool's undelivered (bytes, records) and bound.
    pub fn spool(&self, (bytes, records): (u64, u64), capacity: u64) {
        let f = &self.families;
        let set = |family: &Family<SinkLabels, Gauge>, v: u64| {
            family
                .get_or_create(&self.sink)
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&f.spool_bytes, bytes);
        set(&f.spool_records, records);
        set(&f.spool_capacity, capacity);
    }

    /// Whether a connection to the collector is open.
    pub fn connected(&self, yes: bool) {
        self.families
            .connected
            .get_or_create(&self.sink)
            .set(i64::from(yes));
        let _ = self.families.failures.get_or_create(&self.sink);
        let _ = self.families.delivered.get_or_create(&self.sink);
    }

    /// Records delivered to the collector.
    pub fn delivered(&self, n: u64) {
        self.families.delivered.get_or_create(&self.sink).inc_by(n);
    }

    /// A connection attempt failed or a connection broke.
    pub fn remote_failure(&self) {
        self.families.failures.get_or_create(&self.sink).inc();
    }
}

/// Decrements its gauge when dropped.
#[derive(Debug)]
pub struct OpenGauge(Gauge);

/// One listener's connection counters ([`Metrics::listener`]).
#[derive(Debug, Clone)]
pub struct ListenerMetrics {
    accepted: Counter,
    open: Gauge,
}

impl ListenerMetrics {
    /// A connection was accepted; the returned guard counts it as open.
    pub fn opened(&self) -> OpenGauge {
        self.accepted.inc();
        self.open.inc();
        OpenGauge(self.open.clone())
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = Metrics::new();
        let ci: Arc<str> = Arc::from("ci");
        m.request(Some(&ci), "container.list", "allow", 200);
        m.request(Some(&ci), "container.list", "allow", 200);
        m.latency(Some(&ci), "container.list", 0.0002);
        let listener = m.listener("unix:///x.sock");
        assert!(m
            .render()
            .contains("sockwarden_connections_open{listener=\"unix:///x.sock\"} 0"));
        let open = listener.opened();
        m.audit_lost("queue_full", 3);
        m.reload(true, 2);
        let text = m.render();
        assert!(text.contains(
            "sockwarden_requests_total{client=\"ci\",operation=\"container.list\",decision=\"allow\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("sockwarden_connections_open{listener=\"unix:///x.sock\"} 1"));
        assert!(text.contains("sockwarden_connections_total{listener=\"unix:///x.sock\"} 1"));
        assert!(text.contains("sockwarden_request_duration_seconds_bucket{"));
        assert!(text.contains("sockwarden_audit_records_lost_total{reason=\"queue_full\"} 3"));
        assert!(text.contains("sockwarden_config_generation 2"));
        assert!(text.contains("sockwarden_audit_records_lost_total{reason=\"sink_error\"} 0"));
        assert!(text.contains("sockwarden_reloads_total{result=\"error\"} 0"));
        assert_eq!(m.audit_lost_total(), 3);
        drop(open);
        assert!(m
            .render()
            .contains("sockwarden_connections_open{listener=\"unix:///x.sock\"} 0"));
    }

    /// Counted through the threads' handles, a request lands in its own instance's series,
    /// whichever thread counts it and however its client's name is shared.
    #[test]
    fn requests_count_into_their_own_instance_from_any_thread() {
        let a = Metrics::new();
        let b = Metrics::new();
        let ci: Arc<str> = Arc::from("ci");
        let ci_again: Arc<str> = Arc::from("ci");
        for _ in 0..3 {
            a.request(Some(&ci), "container.list", "allow", 200);
            b.request(Some(&ci), "container.list", "allow", 200);
            a.request(Some(&ci_again), "container.list", "allow", 200);
            a.request(None, "container.list", "deny", 403);
            a.latency(Some(&ci), "container.list", 0.001);
        }
        let other = a.clone();
        let ci2 = ci.clone();
        std::thread::spawn(move || other.request(Some(&ci2), "container.list", "allow", 200))
            .join()
            .unwrap();
        let series = |m: &Metrics, labels: &str| {
            let text = m.render();
            let wanted = format!("sockwarden_requests_total{{{labels}}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&wanted).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {labels} in\n{text}"))
        };
        let allowed =
            "client=\"ci\",operation=\"container.list\",decision=\"allow\",status=\"200\"";
        assert_eq!(series(&a, allowed), "7");
        assert_eq!(series(&b, allowed), "3");
        assert_eq!(
            series(
                &a,
                "client=\"\",operation=\"container.list\",decision=\"deny\",status=\"403\""
            ),
            "3"
        );
        assert!(a
            .render()
            .contains("sockwarden_request_duration_seconds_count{client=\"ci\",operation=\"container.list\"} 3"));
    }
}
