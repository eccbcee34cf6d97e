//! `loadgen report`: the markdown tables of a benchmark run from its JSON lines — rounds
//! merged (median, range, spread), ratios to `direct`, the audit cost, the proxies' CPU and
//! memory, and the list of failures. Issue 15's targets are in [`crate::targets`].

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::line::median;
use crate::targets::{find_range, targets_section};

pub(crate) fn report(path: &Path) -> Result<String, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut raw: Vec<Value> = Vec::new();
    for l in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        raw.push(serde_json::from_str(l)?);
    }
    // Paired audit-cost runs have a section of their own.
    let (paired, raw): (Vec<Value>, Vec<Value>) = raw
        .into_iter()
        .partition(|v| v.get("mode").and_then(Value::as_str) == Some("paired"));
    // Notes (why a cell is missing) are printed under their upstream's table.
    let (notes, raw): (Vec<Value>, Vec<Value>) = raw
        .into_iter()
        .partition(|v| v.get("mode").and_then(Value::as_str) == Some("note"));
    let lines = aggregate(&raw);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);

    // Keep first-appearance order of upstreams, fronts and tests.
    let mut upstreams: Vec<String> = Vec::new();
    let mut fronts: Vec<String> = Vec::new();
    for v in &lines {
        let (u, fr) = (s(v, "upstream"), s(v, "front"));
        if !u.is_empty() && !upstreams.contains(&u) {
            upstreams.push(u);
        }
        if !fr.is_empty() && !fronts.contains(&fr) {
            fronts.push(fr);
        }
    }
    let proxies: Vec<&String> = fronts.iter().filter(|f| f.as_str() != "direct").collect();

    let mut out = String::new();
    for up in &upstreams {
        let of_up: Vec<&Value> = lines.iter().filter(|v| s(v, "upstream") == *up).collect();
        let mut tests: Vec<String> = Vec::new();
        for v in &of_up {
            let t = s(v, "test");
            if !t.is_empty() && !tests.contains(&t) {
                tests.push(t);
            }
        }
        let find = |test: &str, front: &str| -> Option<&Value> {
            of_up
                .iter()
                .copied()
                .find(|v| s(v, "test") == test && s(v, "front") == front)
        };
        let desc = |test: &str| -> String {
            of_up
                .iter()
                .find(|v| s(v, "test") == test)
                .and_then(|v| v.get("desc").and_then(Value::as_str))
                .unwrap_or(test)
                .to_owned()
        };

        let _ = writeln!(out, "### Upstream: {up}\n");
        let _ = writeln!(
            out,
            "Ratios are to `direct` (load generator straight to the upstream socket): \
             above 1x is better for req/s and MiB/s, below 1x is better for latency.\n"
        );
        let _ = write!(out, "| measurement |");
        for fr in &fronts {
            let _ = write!(out, " {fr} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &fronts {
            let _ = write!(out, "---:|");
        }
        out.push('\n');

        let cell_ratio = |val: Option<f64>,
                          base: Option<f64>,
                          fr: &str,
                          fmt: &dyn Fn(f64) -> String|
         -> String {
            match val {
                None => "—".to_owned(),
                Some(x) => match base {
                    Some(b) if fr != "direct" && b > 0.0 => format!("{} ({:.2}x)", fmt(x), x / b),
                    _ => fmt(x),
                },
            }
        };
        let warn = |v: Option<&Value>| -> String {
            let Some(v) = v else { return String::new() };
            let e = v.get("errors").and_then(Value::as_u64).unwrap_or(0)
                + v.get("bad_status").and_then(Value::as_u64).unwrap_or(0);
            if e > 0 {
                format!(" ⚠ {e} failed")
            } else {
                String::new()
            }
        };
        for t in &tests {
            let direct = find(t, "direct");
            let mode = of_up
                .iter()
                .find(|v| s(v, "test") == *t)
                .map(|v| s(v, "mode"))
                .unwrap_or_default();
            match mode.as_str() {
                "rps" => {
                    let _ = write!(out, "| {} — req/s |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let c = cell_ratio(
                            v.and_then(|v| f(v, "rps")),
                            direct.and_then(|v| f(v, "rps")),
                            fr,
                            &|x| group_thousands(x.round() as u64),
                        );
                        let _ = write!(out, " {c}{} |", warn(v));
                    }
                    let _ = write!(out, "\n| {} — p50 / p99 latency (µs) |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let (p50, p99) = (
                            v.and_then(|v| f(v, "p50_us")),
                            v.and_then(|v| f(v, "p99_us")),
                        );
                        let c = match (p50, p99) {
                            (Some(a), Some(b)) => {
                                let base = direct.and_then(|d| f(d, "p50_us").zip(f(d, "p99_us")));
                                match base {
                                    Some((ba, bb)) if fr != "direct" && ba > 0.0 && bb > 0.0 => {
                                        format!("{a:.0} / {b:.0} ({:.2}x / {:.2}x)", a / ba, b / bb)
                                    }
                                    _ => format!("{a:.0} / {b:.0}"),
                                }
                            }
                            _ => "—".to_owned(),
                        };
                        let _ = write!(out, " {c} |");
                    }
                    out.push('\n');
                    range_row(&mut out, t, &desc(t), "req/s", "rps", &fronts, &find);
                }
                "download" | "upload" | "hijack" => {
                    let _ = write!(out, "| {} — MiB/s |", desc(t));
                    for fr in &fronts {
                        let v = find(t, fr);
                        let c = cell_ratio(
                            v.and_then(|v| f(v, "mib_s")),
                            direct.and_then(|v| f(v, "mib_s")),
                            fr,
                            &|x| format!("{x:.0}"),
                        );
                        let _ = write!(out, " {c}{} |", warn(v));
                    }
                    out.push('\n');
                    range_row(&mut out, t, &desc(t), "MiB/s", "mib_s", &fronts, &find);
                }
                _ => {}
            }
        }
        for n in notes.iter().filter(|v| s(v, "upstream") == *up) {
            let _ = writeln!(out, "\nNote: {}.", s(n, "text"));
        }

        // How much the rounds of one figure disagreed: a hint of how far to trust a ratio.
        let mut spreads: Vec<(f64, String)> = of_up
            .iter()
            .filter_map(|v| {
                f(v, "spread").map(|sp| (sp, format!("{}, {}", s(v, "front"), desc(&s(v, "test")))))
            })
            .collect();
        if !spreads.is_empty() {
            spreads.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mid = spreads[spreads.len() / 2].0;
            if let Some((worst, what)) = spreads.last() {
                let _ = writeln!(
                    out,
                    "\nRound-to-round spread of the req/s and MiB/s figures (max/min − 1): median \
                     {:.0}%, largest {:.0}% ({what}).",
                    mid * 100.0,
                    worst * 100.0
                );
            }
        }

        // What the audit log costs, from the paired runs (one row per variant: tag
        // `audit_variant`).
        let pairs_of_up: Vec<&Value> = paired.iter().filter(|v| s(v, "upstream") == *up).collect();
        audit_cost_section(&mut out, up, &pairs_of_up);
        // Cost of each proxy: CPU time per unit of work, and peak memory.
        if !proxies.is_empty() {
            let _ = writeln!(
                out,
                "\nProxy cost on `{up}` (CPU time the proxy's process tree used during the \
                 measured window; peak RSS = VmHWM of a fresh proxy process after all the runs \
                 above):\n"
            );
            let _ = write!(out, "| proxy cost |");
            for fr in &proxies {
                let _ = write!(out, " {fr} |");
            }
            let _ = write!(out, "\n|---|");
            for _ in &proxies {
                let _ = write!(out, "---:|");
            }
            out.push('\n');
            for t in &tests {
                let mode = of_up
                    .iter()
                    .find(|v| s(v, "test") == *t)
                    .map(|v| s(v, "mode"))
                    .unwrap_or_default();
                let (key, label, fmt): (&str, &str, fn(f64) -> String) = match mode.as_str() {
                    "rps" => ("proxy_cpu_us_per_req", "CPU µs per request", |x| {
                        format!("{x:.1}")
                    }),
                    "download" | "upload" | "hijack" => {
                        ("proxy_cpu_s_per_gib", "CPU s per GiB", |x| {
                            format!("{x:.2}")
                        })
                    }
                    _ => continue,
                };
                let _ = write!(out, "| {} — {label} |", desc(t));
                for fr in &proxies {
                    let c = find(t, fr)
                        .and_then(|v| f(v, key))
                        .map_or_else(|| "—".to_owned(), fmt);
                    let _ = write!(out, " {c} |");
                }
                out.push('\n');
            }
            let _ = write!(
                out,
                "| peak memory, MiB (VmHWM; a forking front: the largest sum of its processes' \
                 Pss seen during a measurement) |"
            );
            for fr in &proxies {
                if let Some((kb, procs, what)) = tree_peak(&of_up, fr) {
                    let _ = write!(out, " {:.1} ({what}, {procs} processes) |", kb / 1024.0);
                    continue;
                }
                let c = of_up
                    .iter()
                    .find(|v| s(v, "mode") == "rss" && s(v, "front") == **fr)
                    .map_or_else(
                        || "—".to_owned(),
                        |v| {
                            let restarted =
                                v.get("restarted").and_then(Value::as_bool) == Some(true);
                            f(v, "vmhwm_kb").map_or_else(
                                || "—".to_owned(),
                                |kb| {
                                    format!(
                                        "{:.1}{}",
                                        kb / 1024.0,
                                        if restarted {
                                            " (restarted mid-run)"
                                        } else {
                                            ""
                                        }
                                    )
                                },
                            )
                        },
                    );
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        }
        for fr in fronts.iter().filter(|f| f.starts_with("sockwarden")) {
            targets_section(&mut out, up, fr, &tests, &of_up);
        }
        out.push('\n');
    }

    // Any failure is listed, so a table never silently hides one.
    let mut failures = String::new();
    for v in &raw {
        let e = v.get("errors").and_then(Value::as_u64).unwrap_or(0)
            + v.get("bad_status").and_then(Value::as_u64).unwrap_or(0);
        if e > 0 {
            let _ = writeln!(
                failures,
                "- {} / {} / {} round {}: {e} failed ({})",
                s(v, "upstream"),
                s(v, "front"),
                s(v, "test"),
                s(v, "round"),
                v.get("first_error")
                    .and_then(Value::as_str)
                    .unwrap_or("non-2xx status")
            );
        }
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "**Failures**\n\n{failures}");
    }
    Ok(out)
}
/// The audit cost table of one upstream: for each test, the req/s of sockwarden with its audit
/// log on relative to off, from `loadgen paired` runs (each run a fresh pair of processes; the
/// tag `audit_a` says which of the two was front A). Shows the median over runs, the range,
/// and the CPU time per request with the audit on and off.
fn audit_cost_section(out: &mut String, up: &str, lines: &[&Value]) {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    // Each audit-on variant (tag `audit_variant`: "on", a plain file; "sealed", the file
    // sealed; "remote", the file plus a remote syslog sink; "tmpfs", the plain file on
    // /dev/shm) is its own row; runs from before the tag are "on".
    let variant = |v: &Value| match s(v, "audit_variant").as_str() {
        "" => "on".to_owned(),
        other => other.to_owned(),
    };
    let mut tests: Vec<(String, String)> = Vec::new();
    for v in lines {
        let t = (s(v, "test"), variant(v));
        if !tests.contains(&t) {
            tests.push(t);
        }
    }
    if tests.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nAudit cost on `{up}`: req/s of sockwarden with its audit log on (to a file, one JSON \
         line per request; rows marked (sealed): the file sealed, `audit.seal_key`; (remote): the file plus a remote \
         syslog sink over TCP to a discarding collector on loopback, through its spool; (tmpfs): the plain file \
         on /dev/shm, the audit's cost without the disk's writeback of the log) relative to the \
         same binary with `audit.sink = \"off\"`, measured by \
         `loadgen paired`: both run side by side and the load alternates between them in \
         phases of {} ms (A B B A ...), so both see the same conditions; each run starts fresh \
         processes and swaps which one is A. 1.00x means free; the target is at least 0.95x.\n",
        lines.first().and_then(|v| f(v, "phase_ms")).unwrap_or(0.0)
    );
    let _ = writeln!(
        out,
        "| measurement | audit on / off (median of runs) | range | runs | CPU µs/request on / off |\n\
         |---|---:|---:|---:|---:|"
    );
    for (t, var) in &tests {
        let runs: Vec<&&Value> = lines
            .iter()
            .filter(|v| {
                s(v, "test") == *t
                    && variant(v) == *var
                    && v.get("ok").and_then(Value::as_u64) != Some(0)
            })
            .collect();
        let mut ratios = Vec::new();
        let (mut cpu_on, mut cpu_off) = (Vec::new(), Vec::new());
        for v in &runs {
            let on_is_a = !matches!(s(v, "audit_a").as_str(), "off" | "");
            let Some(ratio) = f(v, "ratio").filter(|r| *r > 0.0) else {
                continue;
            };
            ratios.push(if on_is_a { ratio } else { 1.0 / ratio });
            let (on, off) = if on_is_a { ("a", "b") } else { ("b", "a") };
            cpu_on.extend(f(v, &format!("proxy_cpu_us_per_req_{on}")));
            cpu_off.extend(f(v, &format!("proxy_cpu_us_per_req_{off}")));
        }
        let desc = runs
            .first()
            .and_then(|v| v.get("desc").and_then(Value::as_str))
            .unwrap_or(t);
        let desc = if var == "on" {
            desc.to_owned()
        } else {
            format!("{desc} ({var})")
        };
        if ratios.is_empty() {
            let _ = writeln!(out, "| {desc} — req/s | — | | 0 | |");
            continue;
        }
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let n = ratios.len();
        let cpu = if cpu_on.is_empty() || cpu_off.is_empty() {
            "—".to_owned()
        } else {
            format!("{:.1} / {:.1}", median(&mut cpu_on), median(&mut cpu_off))
        };
        let _ = writeln!(
            out,
            "| {desc} — req/s | {:.3}x | {lo:.3}–{hi:.3} | {n} | {cpu} |",
            median(&mut ratios)
        );
    }
}
/// Merges the rounds of each (upstream, front, test): the median of every figure, the sum of
/// the failure counts, and `spread` = max/min − 1 of the headline figure (req/s or MiB/s).
fn aggregate(raw: &[Value]) -> Vec<Value> {
    const MEDIAN_KEYS: &[&str] = &[
        "rps",
        "p50_us",
        "p90_us",
        "p99_us",
        "max_us",
        "mean_us",
        "mib_s",
        "secs",
        "ttfb_ms",
        "proxy_cpu_s",
        "proxy_cpu_us_per_req",
        "proxy_cpu_s_per_gib",
        "vmhwm_kb",
    ];
    // Figures whose spread over the rounds is kept as `{key}_min` and `{key}_max`.
    const RANGE_KEYS: &[&str] = &[
        "rps",
        "p50_us",
        "p99_us",
        "mib_s",
        "proxy_cpu_us_per_req",
        "proxy_cpu_s_per_gib",
    ];
    // Figures of which the largest round counts (memory of a process tree).
    const MAX_KEYS: &[&str] = &[
        "proxy_procs",
        "proxy_tree_rss_kb",
        "proxy_hwm_max_kb",
        "proxy_tree_pss_kb",
    ];
    let key = |v: &Value| -> String {
        ["upstream", "front", "test", "mode"]
            .iter()
            .map(|k| v.get(*k).and_then(Value::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\u{1f}")
    };
    let mut order: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<&Value>> = Vec::new();
    for v in raw {
        let k = key(v);
        match order.iter().position(|o| *o == k) {
            Some(i) => groups[i].push(v),
            None => {
                order.push(k);
                groups.push(vec![v]);
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let mut merged = g[0].clone();
            if let Value::Object(m) = &mut merged {
                // A round in which nothing succeeded has no figures to take the median of.
                let good: Vec<&&Value> = g
                    .iter()
                    .filter(|v| v.get("ok").and_then(Value::as_u64) != Some(0))
                    .collect();
                for k in MEDIAN_KEYS {
                    m.remove(*k);
                    let mut xs: Vec<f64> = good
                        .iter()
                        .filter_map(|v| v.get(*k).and_then(Value::as_f64))
                        .collect();
                    if !xs.is_empty() {
                        m.insert((*k).into(), json!(median(&mut xs)));
                    }
                    if RANGE_KEYS.contains(k) {
                        if let Some((lo, hi)) = min_max(&xs) {
                            m.insert(format!("{k}_min"), json!(lo));
                            m.insert(format!("{k}_max"), json!(hi));
                        }
                    }
                }
                for k in MAX_KEYS {
                    let hi = good
                        .iter()
                        .filter_map(|v| v.get(*k).and_then(Value::as_f64))
                        .reduce(f64::max);
                    m.remove(*k);
                    if let Some(hi) = hi {
                        m.insert((*k).into(), json!(hi));
                    }
                }
                for k in ["errors", "bad_status"] {
                    let sum: u64 = g
                        .iter()
                        .filter_map(|v| v.get(k).and_then(Value::as_u64))
                        .sum();
                    m.insert(k.into(), json!(sum));
                }
                m.insert("rounds".into(), json!(g.len()));
                let headline: Vec<f64> = good
                    .iter()
                    .filter_map(|v| v.get("rps").or_else(|| v.get("mib_s")))
                    .filter_map(Value::as_f64)
                    .collect();
                let lo = headline.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = headline.iter().copied().fold(0.0, f64::max);
                if headline.len() > 1 && lo > 0.0 {
                    m.insert("spread".into(), json!(hi / lo - 1.0));
                }
            }
            merged
        })
        .collect()
}

fn min_max(xs: &[f64]) -> Option<(f64, f64)> {
    let lo = xs.iter().copied().reduce(f64::min)?;
    let hi = xs.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// A row of min–max over the rounds of `key` for every front.
fn range_row<'a>(
    out: &mut String,
    test: &str,
    desc: &str,
    unit: &str,
    key: &str,
    fronts: &[String],
    find: &dyn Fn(&str, &str) -> Option<&'a Value>,
) {
    let _ = write!(out, "| {desc} — {unit} min–max over rounds |");
    for fr in fronts {
        let c = find_range(find(test, fr), key).map_or_else(
            || "—".to_owned(),
            |r| format!("{}–{}", short(r.lo), short(r.hi)),
        );
        let _ = write!(out, " {c} |");
    }
    out.push('\n');
}

/// A figure compactly: 12.3k, 950, 8.5.
fn short(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
/// The largest memory (kB) of a front seen with more than one process, and how many it had
/// then: a relay that forks per connection (socat), whose VmHWM says nothing. Pss where the
/// kernel gave it (the tree's own footprint), else RSS (which counts shared pages per process).
fn tree_peak(of_up: &[&Value], front: &str) -> Option<(f64, u64, &'static str)> {
    of_up
        .iter()
        .filter(|v| v.get("front").and_then(Value::as_str) == Some(front))
        .filter_map(|v| {
            let procs = v.get("proxy_procs").and_then(Value::as_f64)?;
            let pss = v.get("proxy_tree_pss_kb").and_then(Value::as_f64);
            let (kb, what) = match pss.filter(|k| *k > 0.0) {
                Some(k) => (k, "Pss"),
                None => (v.get("proxy_tree_rss_kb").and_then(Value::as_f64)?, "RSS"),
            };
            (procs > 1.0).then_some((kb, procs as u64, what))
        })
        .reduce(|a, b| if b.0 > a.0 { b } else { a })
}
fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_keeps_median_range_and_spread() {
        let raw: Vec<Value> = [3000.0, 1000.0, 2000.0]
            .iter()
            .enumerate()
            .map(|(i, rps)| {
                let rss = [900, 500, 700][i];
                json!({"mode": "rps", "upstream": "stub", "front": "socat", "test": "ping_c1",
                       "round": (i + 1).to_string(), "ok": 10, "rps": rps,
                       "p99_us": 100.0 * (i + 1) as f64, "proxy_procs": 2 + i,
                       "proxy_tree_rss_kb": rss, "errors": i})
            })
            .collect();
        let agg = aggregate(&raw);
        assert_eq!(agg.len(), 1);
        let v = &agg[0];
        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap();
        assert_eq!(f("rps"), 2000.0);
        assert_eq!((f("rps_min"), f("rps_max")), (1000.0, 3000.0));
        assert_eq!(
            (f("p99_us_min"), f("p99_us"), f("p99_us_max")),
            (100.0, 200.0, 300.0)
        );
        assert!((f("spread") - 2.0).abs() < 1e-9);
        // Memory of a process tree: the largest round, not the median.
        assert_eq!((f("proxy_procs"), f("proxy_tree_rss_kb")), (4.0, 900.0));
        assert_eq!(f("errors"), 3.0);
        assert_eq!(f("rounds"), 3.0);
        let r = find_range(Some(v), "rps").unwrap();
        assert_eq!(
            (r.median, r.lo, r.hi, r.rounds),
            (2000.0, 1000.0, 3000.0, 3)
        );
    }

    #[test]
    fn the_report_states_the_targets_and_verdicts() {
        let mut lines = Vec::new();
        let fronts = [
            ("direct", 1000.0, 50.0),
            ("socat", 500.0, 100.0),
            ("haproxy", 400.0, 200.0),
            ("haproxy-ka", 450.0, 150.0),
            ("sockwarden", 600.0, 120.0),
        ];
        for round in 1..=3 {
            let wobble = f64::from(round) * 10.0;
            for (front, rps, p99) in fronts {
                lines.push(json!({"mode": "rps", "upstream": "stub", "front": front,
                    "test": "ping_c1", "desc": "`GET /_ping` c=1", "round": round.to_string(),
                    "ok": 100, "rps": rps + wobble, "p50_us": p99 / 2.0, "p99_us": p99,
                    "proxy_cpu_us_per_req": 12.5, "proxy_procs": round + 1,
                    "proxy_tree_rss_kb": 8192 * round, "proxy_tree_pss_kb": 1024 * round}));
                let mib = if front == "sockwarden" { 880.0 } else { 1000.0 };
                lines.push(json!({"mode": "hijack", "upstream": "stub", "front": front,
                    "test": "exec_down", "desc": "exec down", "round": round.to_string(),
                    "ok": 1, "mib_s": mib + wobble}));
            }
        }
        lines.push(
            json!({"mode": "rss", "upstream": "stub", "front": "sockwarden",
                          "vmhwm_kb": 12288, "restarted": false}),
        );
        lines.push(json!({"mode": "rss", "upstream": "stub", "front": "socat",
                          "vmhwm_kb": 1024, "restarted": false}));
        lines.push(json!({"mode": "note", "upstream": "stub", "text": "no attach cells"}));
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let path =
            std::env::temp_dir().join(format!("loadgen-report-{}.jsonl", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let out = report(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.contains("Issue 15 targets for `sockwarden` on `stub`"),
            "{out}"
        );
        // 610..630 (median 620) against socat's 510..530 (520): met; p99 120 against haproxy's 200: met; against
        // haproxy-ka's 150: met.
        assert!(
            out.contains("| `GET /_ping` c=1 | ✔ meets 1.19x | ✔ meets 1.48x | ✔ meets 1.32x | ✔ meets 0.60x | ✔ meets 0.80x | 12.5 / 12.5 / 12.5 / 12.5 |"),
            "{out}"
        );
        // 890..910 against 0.9x direct = 909..927: the ranges overlap.
        assert!(
            out.contains(
                "| exec down | 900 (890–910) | 918 (909–927) | ≈ unresolved on noise 0.98x |"
            ),
            "{out}"
        );
        assert!(
            out.contains("Peak RSS of `sockwarden` (VmHWM): 12.0 MiB, target < 32 MiB: ✔ meets.")
        );
        assert!(
            out.contains("| `GET /_ping` c=1 — req/s min–max over rounds | 1010–1030 | 510–530 |"),
            "{out}"
        );
        assert!(out.contains("Note: no attach cells."));
        // A forking front's memory is its tree's largest Pss sum (round 3: 4 processes).
        assert!(out.contains("| 3.0 (Pss, 4 processes) |"), "{out}");
    }
}
