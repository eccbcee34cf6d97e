//! `loadgen rps`: `--concurrency` keep-alive connections, each sending requests back to back;
//! the requests that start and finish within the measured window give req/s and latency
//! percentiles.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::accounting::{cpu_delta, cpu_snapshot, insert_memory, tree_memory};
use crate::client::{Exchange, Tally, Target};
use crate::line::{base_line, percentile};
use crate::{BoxError, RpsArgs};

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    bytes: u64,
    tally: Tally,
}

struct RpsPlan {
    target: Target,
    measure_start: Instant,
    end: Instant,
}

async fn rps_worker(plan: std::sync::Arc<RpsPlan>) -> WorkerStats {
    let mut st = WorkerStats {
        latencies_us: Vec::with_capacity(64 * 1024),
        ..WorkerStats::default()
    };
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    // A request stuck past the end of the run (plus a grace period) is abandoned.
    let deadline = plan.end + Duration::from_secs(10);
    while Instant::now() < plan.end {
        let Some(mut s) = plan.target.checkout(&mut sender, &mut st.tally).await else {
            continue;
        };
        let t0 = Instant::now();
        let res = plan.target.exchange(&mut s, deadline).await;
        let t1 = Instant::now();
        let in_window = t0 >= plan.measure_start && t1 <= plan.end;
        let (status, n) = match res {
            Exchange::Done(status, n) => (status, n),
            failure => {
                if st.tally.failed(failure, in_window) {
                    break;
                }
                continue;
            }
        };
        if in_window {
            let us = (t1 - t0).as_micros();
            st.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            st.bytes += n;
            st.tally.response(status);
        }
        sender = Some(s);
    }
    st
}

pub(crate) async fn run_rps(a: RpsArgs) -> Result<Value, BoxError> {
    if a.concurrency == 0 || a.duration.is_nan() || a.duration <= 0.0 || a.warmup < 0.0 {
        return Err("concurrency and duration must be positive".into());
    }
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(a.warmup);
    let end = measure_start + Duration::from_secs_f64(a.duration);
    let plan = std::sync::Arc::new(RpsPlan {
        target: Target {
            socket: a.common.socket.clone(),
            host: HeaderValue::from_str(&a.common.host)?,
            method: a.method.clone(),
            path: a.path.clone(),
        },
        measure_start,
        end,
    });
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| tokio::spawn(rps_worker(plan.clone())))
        .collect();

    let (cpu, memory) = match a.common.watch_pid {
        Some(pid) => {
            tokio::time::sleep_until(measure_start).await;
            let c0 = cpu_snapshot(pid);
            // Memory near the end, while every connection is surely open (a forking relay
            // has all its processes then; at the end they start to go).
            tokio::time::sleep_until(end - (end - measure_start) / 10).await;
            let memory = tree_memory(pid);
            tokio::time::sleep_until(end).await;
            let c1 = cpu_snapshot(pid);
            (c0.zip(c1).map(|(c0, c1)| cpu_delta(&c0, &c1)), memory)
        }
        None => (None, None),
    };

    let mut lat: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    let mut tally = Tally::default();
    for w in workers {
        let st = w.await?;
        lat.extend_from_slice(&st.latencies_us);
        bytes += st.bytes;
        tally.add(st.tally);
    }
    let Tally {
        errors,
        bad_status,
        first_error,
    } = tally;
    lat.sort_unstable();
    let n = lat.len() as u64;
    let mean = if n > 0 {
        lat.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / n as f64
    } else {
        0.0
    };
    let mut m = base_line("rps", &a.common);
    m.insert("method".into(), json!(a.method.as_str()));
    m.insert("path".into(), json!(a.path));
    m.insert("concurrency".into(), json!(a.concurrency));
    m.insert("duration_s".into(), json!(a.duration));
    m.insert("ok".into(), json!(n - bad_status));
    m.insert("requests".into(), json!(n));
    m.insert("rps".into(), json!((n as f64 / a.duration).round()));
    m.insert("p50_us".into(), json!(percentile(&lat, 50.0)));
    m.insert("p90_us".into(), json!(percentile(&lat, 90.0)));
    m.insert("p99_us".into(), json!(percentile(&lat, 99.0)));
    m.insert("max_us".into(), json!(lat.last().copied().unwrap_or(0)));
    m.insert("mean_us".into(), json!(mean.round()));
    m.insert("resp_bytes".into(), json!(bytes / n.max(1)));
    m.insert("errors".into(), json!(errors));
    m.insert("bad_status".into(), json!(bad_status));
    if let Some(e) = first_error {
        m.insert("first_error".into(), json!(e));
    }
    if let Some(c) = cpu {
        m.insert("proxy_cpu_s".into(), json!(c));
        if n > 0 {
            m.insert("proxy_cpu_us_per_req".into(), json!(c * 1e6 / n as f64));
        }
    }
    insert_memory(&mut m, memory);
    Ok(Value::Object(m))
}
