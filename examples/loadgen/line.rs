//! Pieces of the JSON lines: their start (mode and `--tag` labels) and the statistics they
//! report (median, percentiles, quantiles).

use serde_json::{json, Map, Value};

use crate::Common;

pub(crate) fn base_line(mode: &str, common: &Common) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("mode".into(), json!(mode));
    for (k, v) in &common.tags {
        m.insert(k.clone(), json!(v));
    }
    m
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The `q` quantile of `v` (nearest rank).
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}
