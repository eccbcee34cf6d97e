//! `loadgen paired`: two fronts driven side by side, the load alternating between them in
//! short phases (A B B A A B ...); each adjacent pair of phases gives a ratio.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::accounting::{cpu_delta, cpu_snapshot};
use crate::client::{Exchange, Tally, Target};
use crate::line::{base_line, percentile, quantile};
use crate::{BoxError, PairedArgs};

/// The front of phase `i`: A B B A A B B A ..., so neither front always goes first.
fn phase_front(i: u64) -> usize {
    usize::from(matches!(i % 4, 1 | 2))
}

struct PairedPlan {
    /// Front A's target, then B's.
    targets: [Target; 2],
    measure_start: Instant,
    end: Instant,
    phase: Duration,
    settle: Duration,
}

impl PairedPlan {
    /// The phase `t` falls in (phases are counted from the start of the measurement; the
    /// warm-up alternates too, with negative phases folded onto A and B alike).
    fn phase_at(&self, t: Instant) -> u64 {
        let from = if t >= self.measure_start {
            t - self.measure_start
        } else {
            self.measure_start - t
        };
        (from.as_nanos() / self.phase.as_nanos().max(1)) as u64
    }

    /// Whether a request of the phase's own front that completed at `t` is counted.
    fn counted(&self, t: Instant) -> bool {
        if t < self.measure_start || t > self.end {
            return false;
        }
        let into = (t - self.measure_start).as_nanos() % self.phase.as_nanos().max(1);
        into >= self.settle.as_nanos()
    }
}

#[derive(Default)]
struct PairedStats {
    /// Completed (counted) requests per phase, for the phase's front.
    per_phase: Vec<u64>,
    /// Every request each front completed in the measured window (for CPU per request).
    done: [u64; 2],
    latencies_us: [Vec<u32>; 2],
    tally: Tally,
}

/// One connection to each front; every request goes to the current phase's front.
async fn paired_worker(plan: std::sync::Arc<PairedPlan>) -> PairedStats {
    let mut st = PairedStats::default();
    let mut senders: [Option<SendRequest<Empty<Bytes>>>; 2] = [None, None];
    let deadline = plan.end + Duration::from_secs(10);
    while Instant::now() < plan.end {
        let phase = plan.phase_at(Instant::now());
        let front = phase_front(phase);
        let target = &plan.targets[front];
        let Some(mut s) = target.checkout(&mut senders[front], &mut st.tally).await else {
            continue;
        };
        let t0 = Instant::now();
        let res = target.exchange(&mut s, deadline).await;
        let t1 = Instant::now();
        // Counted for its phase only if it completed in a phase of its own front.
        let done_phase = plan.phase_at(t1);
        let counted = plan.counted(t1) && phase_front(done_phase) == front;
        let status = match res {
            Exchange::Done(status, _) => status,
            failure => {
                if st.tally.failed(failure, counted) {
                    break;
                }
                continue;
            }
        };
        if t1 >= plan.measure_start && t1 <= plan.end {
            st.done[front] += 1;
        }
        if counted {
            let i = usize::try_from(done_phase).unwrap_or(usize::MAX);
            if st.per_phase.len() <= i {
                st.per_phase.resize(i + 1, 0);
            }
            st.per_phase[i] += 1;
            let us = (t1 - t0).as_micros();
            st.latencies_us[front].push(u32::try_from(us).unwrap_or(u32::MAX));
            st.tally.response(status);
        }
        senders[front] = Some(s);
    }
    st
}

pub(crate) async fn run_paired(a: PairedArgs) -> Result<Value, BoxError> {
    let r = &a.rps;
    if r.concurrency == 0 || r.duration.is_nan() || r.duration <= 0.0 || r.warmup < 0.0 {
        return Err("concurrency and duration must be positive".into());
    }
    if a.phase_ms == 0 || a.settle_ms >= a.phase_ms {
        return Err("--phase-ms must be positive and longer than --settle-ms".into());
    }
    let phase = Duration::from_millis(a.phase_ms);
    // Whole pairs of phases only.
    let pairs = ((r.duration * 1000.0) as u64 / (2 * a.phase_ms)).max(1);
    let measured = phase * (2 * pairs as u32);
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(r.warmup);
    let end = measure_start + measured;
    let host = HeaderValue::from_str(&r.common.host)?;
    let target = |socket: &PathBuf| Target {
        socket: socket.clone(),
        host: host.clone(),
        method: r.method.clone(),
        path: r.path.clone(),
    };
    let plan = std::sync::Arc::new(PairedPlan {
        targets: [target(&r.common.socket), target(&a.against)],
        measure_start,
        end,
        phase,
        settle: Duration::from_millis(a.settle_ms),
    });
    let workers: Vec<_> = (0..r.concurrency)
        .map(|_| tokio::spawn(paired_worker(plan.clone())))
        .collect();
    let pids = [r.common.watch_pid, a.watch_pid_against];
    tokio::time::sleep_until(measure_start).await;
    let c0 = pids.map(|p| p.and_then(cpu_snapshot));
    tokio::time::sleep_until(end).await;
    let c1 = pids.map(|p| p.and_then(cpu_snapshot));

    let phases = (2 * pairs) as usize;
    let mut per_phase = vec![0u64; phases];
    let mut lat: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut tally = Tally::default();
    let mut done = [0u64; 2];
    for w in workers {
        let st = w.await?;
        done[0] += st.done[0];
        done[1] += st.done[1];
        for (i, n) in st.per_phase.iter().enumerate().take(phases) {
            per_phase[i] += n;
        }
        for (all, of_worker) in lat.iter_mut().zip(&st.latencies_us) {
            all.extend_from_slice(of_worker);
        }
        tally.add(st.tally);
    }
    let Tally {
        errors,
        bad_status,
        first_error,
    } = tally;
    // Each pair: the A phase and the B phase next to it (A B, then B A, ...).
    let mut ratios: Vec<f64> = (0..pairs as usize)
        .filter_map(|k| {
            let (x, y) = (per_phase[2 * k], per_phase[2 * k + 1]);
            let (na, nb) = if phase_front(2 * k as u64) == 0 {
                (x, y)
            } else {
                (y, x)
            };
            (nb > 0).then(|| na as f64 / nb as f64)
        })
        .collect();
    let counted_secs = (phase - plan.settle).as_secs_f64() * pairs as f64;
    let total = |f: usize| -> u64 {
        (0..phases)
            .filter(|&i| phase_front(i as u64) == f)
            .map(|i| per_phase[i])
            .sum()
    };
    let (na, nb) = (total(0), total(1));
    let mut m = base_line("paired", &r.common);
    m.insert("method".into(), json!(r.method.as_str()));
    m.insert("path".into(), json!(r.path));
    m.insert("concurrency".into(), json!(r.concurrency));
    m.insert("duration_s".into(), json!(measured.as_secs_f64()));
    m.insert("phase_ms".into(), json!(a.phase_ms));
    m.insert("pairs".into(), json!(pairs));
    m.insert("requests".into(), json!(na + nb));
    m.insert("ok".into(), json!((na + nb).saturating_sub(bad_status)));
    m.insert("rps_a".into(), json!((na as f64 / counted_secs).round()));
    m.insert("rps_b".into(), json!((nb as f64 / counted_secs).round()));
    if nb > 0 {
        m.insert("ratio".into(), json!(na as f64 / nb as f64));
    }
    if !ratios.is_empty() {
        m.insert("ratio_p25".into(), json!(quantile(&mut ratios, 0.25)));
        m.insert("ratio_median".into(), json!(quantile(&mut ratios, 0.5)));
        m.insert("ratio_p75".into(), json!(quantile(&mut ratios, 0.75)));
    }
    for (f, name) in ["a", "b"].iter().enumerate() {
        lat[f].sort_unstable();
        m.insert(format!("p50_us_{name}"), json!(percentile(&lat[f], 50.0)));
        m.insert(format!("p99_us_{name}"), json!(percentile(&lat[f], 99.0)));
        let n = done[f];
        if let (Some(c0), Some(c1)) = (&c0[f], &c1[f]) {
            if n > 0 {
                // Each front is idle in the other's phases, so its CPU time is its requests'.
                m.insert(
                    format!("proxy_cpu_us_per_req_{name}"),
                    json!(cpu_delta(c0, c1) * 1e6 / n as f64),
                );
            }
        }
    }
    m.insert("errors".into(), json!(errors));
    m.insert("bad_status".into(), json!(bad_status));
    if let Some(e) = first_error {
        m.insert("first_error".into(), json!(e));
    }
    Ok(Value::Object(m))
}
