//! Issue 15's targets in the report: each figure as its median and range over the rounds
//! ([`Spread`]), compared with a verdict that says "unresolved" when the ranges overlap.

use std::fmt::Write as _;

use serde_json::Value;

/// A figure's median and its range over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) rounds: u64,
}

impl Spread {
    fn scaled(self, k: f64) -> Spread {
        Spread {
            median: self.median * k,
            lo: self.lo * k,
            hi: self.hi * k,
            rounds: self.rounds,
        }
    }
}

pub(crate) fn find_range(v: Option<&Value>, key: &str) -> Option<Spread> {
    let v = v?;
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    let median = f(key)?;
    Some(Spread {
        median,
        lo: f(&format!("{key}_min")).unwrap_or(median),
        hi: f(&format!("{key}_max")).unwrap_or(median),
        rounds: v.get("rounds").and_then(Value::as_u64).unwrap_or(1),
    })
}

/// Whether a cell meets a target, from the ranges of the two figures compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Meets,
    Misses,
    /// The ranges overlap: this run cannot tell.
    Unresolved,
}

impl Verdict {
    fn mark(self) -> &'static str {
        match self {
            Verdict::Meets => "✔ meets",
            Verdict::Misses => "✘ misses",
            Verdict::Unresolved => "≈ unresolved on noise",
        }
    }
}

/// `a >= b` wanted: met when all of a's rounds are at least all of b's, missed when all are
/// below, unresolved when the ranges overlap.
fn at_least(a: Spread, b: Spread) -> Verdict {
    if a.lo >= b.hi {
        Verdict::Meets
    } else if a.hi < b.lo {
        Verdict::Misses
    } else {
        Verdict::Unresolved
    }
}

/// `a <= b` wanted (latency).
fn at_most(a: Spread, b: Spread) -> Verdict {
    if a.hi <= b.lo {
        Verdict::Meets
    } else if a.lo > b.hi {
        Verdict::Misses
    } else {
        Verdict::Unresolved
    }
}

/// One comparison cell: the verdict and the medians' ratio.
fn compare_cell(a: Option<Spread>, b: Option<Spread>, higher_is_better: bool) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "—".to_owned();
    };
    let v = if higher_is_better {
        at_least(a, b)
    } else {
        at_most(a, b)
    };
    let ratio = if b.median > 0.0 {
        format!(" {:.2}x", a.median / b.median)
    } else {
        String::new()
    };
    let single = if a.rounds < 2 || b.rounds < 2 {
        " (1 round: spread unknown)"
    } else {
        ""
    };
    format!("{}{ratio}{single}", v.mark())
}
/// Issue 15's targets for one sockwarden front on one upstream, each with its verdict.
pub(crate) fn targets_section(
    out: &mut String,
    up: &str,
    front: &str,
    tests: &[String],
    of_up: &[&Value],
) {
    let find = |test: &str, fr: &str| -> Option<&Value> {
        of_up.iter().copied().find(|v| {
            v.get("test").and_then(Value::as_str) == Some(test)
                && v.get("front").and_then(Value::as_str) == Some(fr)
        })
    };
    let mode = |test: &str| -> String {
        of_up
            .iter()
            .find(|v| v.get("test").and_then(Value::as_str) == Some(test))
            .and_then(|v| v.get("mode").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    let desc = |test: &str| -> String {
        of_up
            .iter()
            .find(|v| v.get("test").and_then(Value::as_str) == Some(test))
            .and_then(|v| v.get("desc").and_then(Value::as_str))
            .unwrap_or(test)
            .to_owned()
    };
    let _ = writeln!(
        out,
        "\nIssue 15 targets for `{front}` on `{up}`: req/s >= socat's and >= both HAProxy \
         fronts' in every small-request cell, p99 <= both HAProxy fronts', streams >= 0.9x \
         direct, peak RSS < 32 MiB. ✔ meets / ✘ misses when every round of one front is on \
         the same side of every round of the other; ≈ unresolved on noise when their min–max \
         ranges overlap (the ratio of the medians is shown anyway). CPU µs per request, \
         steadier than req/s on a shared machine, is given for each front.\n"
    );
    let _ = writeln!(
        out,
        "| cell | req/s vs socat | req/s vs haproxy | req/s vs haproxy-ka | p99 vs haproxy | \
         p99 vs haproxy-ka | CPU µs/req {front} / socat / haproxy / haproxy-ka |\n\
         |---|---|---|---|---|---|---|"
    );
    let others = ["socat", "haproxy", "haproxy-ka"];
    let mut streams = Vec::new();
    for t in tests {
        match mode(t).as_str() {
            "rps" => {}
            "download" | "upload" | "hijack" => {
                streams.push(t);
                continue;
            }
            _ => continue,
        }
        let me = find(t, front);
        let _ = write!(out, "| {} |", desc(t));
        for o in others {
            let c = compare_cell(find_range(me, "rps"), find_range(find(t, o), "rps"), true);
            let _ = write!(out, " {c} |");
        }
        for o in ["haproxy", "haproxy-ka"] {
            let c = compare_cell(
                find_range(me, "p99_us"),
                find_range(find(t, o), "p99_us"),
                false,
            );
            let _ = write!(out, " {c} |");
        }
        let cpu: Vec<String> = std::iter::once(front)
            .chain(others)
            .map(|fr| {
                find(t, fr)
                    .and_then(|v| v.get("proxy_cpu_us_per_req").and_then(Value::as_f64))
                    .map_or_else(|| "—".to_owned(), |x| format!("{x:.1}"))
            })
            .collect();
        let _ = writeln!(out, " {} |", cpu.join(" / "));
    }
    if !streams.is_empty() {
        let _ = writeln!(
            out,
            "\n| stream cell | {front} MiB/s (min–max) | 0.9x direct (min–max) | >= 0.9x direct |\n\
             |---|---:|---:|---|"
        );
        for t in streams {
            let me = find_range(find(t, front), "mib_s");
            let floor = find_range(find(t, "direct"), "mib_s").map(|d| d.scaled(0.9));
            let fmt = |r: Option<Spread>| {
                r.map_or_else(
                    || "—".to_owned(),
                    |r| format!("{:.0} ({:.0}–{:.0})", r.median, r.lo, r.hi),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                desc(t),
                fmt(me),
                fmt(floor),
                compare_cell(me, floor, true)
            );
        }
    }
    let rss = of_up
        .iter()
        .find(|v| {
            v.get("mode").and_then(Value::as_str) == Some("rss")
                && v.get("front").and_then(Value::as_str) == Some(front)
        })
        .and_then(|v| v.get("vmhwm_kb").and_then(Value::as_f64));
    match rss {
        Some(kb) => {
            let mib = kb / 1024.0;
            let mark = if mib < 32.0 {
                Verdict::Meets
            } else {
                Verdict::Misses
            };
            let _ = writeln!(
                out,
                "\nPeak RSS of `{front}` (VmHWM): {mib:.1} MiB, target < 32 MiB: {}.",
                mark.mark()
            );
        }
        None => {
            let _ = writeln!(out, "\nPeak RSS of `{front}`: not measured.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(median: f64, lo: f64, hi: f64) -> Spread {
        Spread {
            median,
            lo,
            hi,
            rounds: 3,
        }
    }

    #[test]
    fn verdicts_need_the_ranges_to_be_apart() {
        let a = spread(110.0, 105.0, 115.0);
        assert_eq!(at_least(a, spread(100.0, 95.0, 104.0)), Verdict::Meets);
        assert_eq!(at_least(a, spread(100.0, 95.0, 105.0)), Verdict::Meets);
        assert_eq!(at_least(a, spread(100.0, 95.0, 106.0)), Verdict::Unresolved);
        assert_eq!(at_least(a, spread(120.0, 116.0, 130.0)), Verdict::Misses);
        // Medians on the wrong side but ranges overlapping: still unresolved.
        assert_eq!(
            at_least(a, spread(112.0, 100.0, 130.0)),
            Verdict::Unresolved
        );
        // Latency: lower is better.
        assert_eq!(at_most(a, spread(130.0, 116.0, 140.0)), Verdict::Meets);
        assert_eq!(at_most(a, spread(100.0, 90.0, 104.0)), Verdict::Misses);
        assert_eq!(at_most(a, spread(110.0, 100.0, 120.0)), Verdict::Unresolved);
    }

    #[test]
    fn comparison_cells_show_verdict_ratio_and_single_rounds() {
        let c = compare_cell(
            Some(spread(120.0, 118.0, 125.0)),
            Some(spread(100.0, 90.0, 110.0)),
            true,
        );
        assert_eq!(c, "✔ meets 1.20x");
        let c = compare_cell(
            Some(spread(95.0, 90.0, 105.0)),
            Some(spread(100.0, 90.0, 110.0)),
            true,
        );
        assert_eq!(c, "≈ unresolved on noise 0.95x");
        let one = Spread {
            median: 50.0,
            lo: 50.0,
            hi: 50.0,
            rounds: 1,
        };
        let c = compare_cell(Some(one), Some(spread(100.0, 90.0, 110.0)), false);
        assert_eq!(c, "✔ meets 0.50x (1 round: spread unknown)");
        assert_eq!(compare_cell(None, Some(one), true), "—");
        // 0.9x direct.
        let floor = spread(1000.0, 950.0, 1100.0).scaled(0.9);
        assert_eq!((floor.lo, floor.hi), (855.0, 990.0));
    }
}
