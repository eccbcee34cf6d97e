//! CPU and memory accounting of the proxy's process tree (`--watch-pid`): the process, its
//! live descendants (found by scanning /proc) and the children they reaped; CPU time from
//! `/proc/*/task/*/schedstat` (exact) and `/proc/*/stat` ticks, memory from `/proc/*/status`
//! (VmRSS, VmHWM) and `/proc/*/smaps_rollup` (Pss).

use std::time::Duration;

use serde_json::{json, Map, Value};

/// What `/proc/PID/stat` says of a process: its parent and its CPU time in ticks (utime,
/// stime, and cutime + cstime: the children it has waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    ppid: u32,
    own_ticks: u64,
    children_ticks: u64,
}

fn parse_stat(stat: &str) -> Option<ProcStat> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 of stat(5): ppid is field 4, utime..cstime fields 14..17.
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(num(1)?).ok()?,
        own_ticks: num(11)? + num(12)?,
        children_ticks: num(13)? + num(14)?,
    })
}

/// `pid` and its live descendants (found by scanning /proc: this kernel may lack
/// /proc/PID/task/TID/children), each with its stat.
fn proc_tree(pid: u32) -> Vec<(u32, ProcStat)> {
    let mut all: Vec<(u32, ProcStat)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(st) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            {
                all.push((p, st));
            }
        }
    }
    tree_of(pid, &all)
}

/// The members of `pid`'s tree among `all` (root first).
fn tree_of(pid: u32, all: &[(u32, ProcStat)]) -> Vec<(u32, ProcStat)> {
    let mut tree: Vec<(u32, ProcStat)> = all.iter().filter(|(p, _)| *p == pid).copied().collect();
    if tree.is_empty() {
        return tree;
    }
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i].0;
        for (p, st) in all {
            if st.ppid == parent && *p != pid && !tree.iter().any(|(q, _)| q == p) {
                tree.push((*p, *st));
            }
        }
        i += 1;
    }
    tree
}

/// Nanoseconds on CPU of every live thread of `pid` (`/proc/PID/task/*/schedstat`, first
/// field): exact, where stat's clock ticks are cut to 10 ms per process, which over the 65
/// processes of a forking relay at c=64 would lose most of a short run's time.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut total = None;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let path = e.path().join("schedstat");
        let Some(ns) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok())
        else {
            continue;
        };
        *total.get_or_insert(0) += ns;
    }
    total
}

/// The CPU time of a process tree at one moment: each member's stat and, when readable, its
/// threads' exact time (schedstat).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CpuSnap {
    procs: Vec<(u32, ProcStat, Option<u64>)>,
}

/// The CPU snapshot of the process `pid` and its live descendants (None: no such process).
pub(crate) fn cpu_snapshot(pid: u32) -> Option<CpuSnap> {
    let tree = proc_tree(pid);
    (!tree.is_empty()).then(|| CpuSnap {
        procs: tree
            .into_iter()
            .map(|(p, st)| (p, st, schedstat_ns(p)))
            .collect(),
    })
}

/// CPU seconds a process tree used between two snapshots. A process alive in both counts by
/// schedstat (exact) when both have it; one that appeared counts its whole schedstat time (it
/// started after the first snapshot); the time of children reaped in between arrives in their
/// parent's `cutime`/`cstime`, in clock ticks (USER_HZ, 100 on Linux), so a process that
/// went away is taken off at its first snapshot's ticks too, keeping both sides in one unit.
/// (Mixing would charge a short-lived socat child its exact start and a truncated end, and
/// could go negative; stat's ticks alone are cut to 10 ms per process, which over the 65
/// processes of a forking relay at c=64 loses most of a short run's time.)
pub(crate) fn cpu_delta(a: &CpuSnap, b: &CpuSnap) -> f64 {
    let ticks = |t: u64| t as f64 / 100.0;
    let ns = |n: u64| n as f64 / 1e9;
    let mut total = 0.0;
    for (p, st1, ns1) in &b.procs {
        total += ticks(st1.children_ticks);
        match a.procs.iter().find(|(q, ..)| q == p) {
            Some((_, st0, ns0)) => {
                total += match (ns0, ns1) {
                    (Some(x), Some(y)) => ns(y.saturating_sub(*x)),
                    _ => ticks(st1.own_ticks) - ticks(st0.own_ticks),
                }
            }
            None => total += ns1.map_or(ticks(st1.own_ticks), ns),
        }
    }
    for (p, st0, _) in &a.procs {
        total -= ticks(st0.children_ticks);
        if !b.procs.iter().any(|(q, ..)| q == p) {
            // Gone: its time is in its parent's cutime now (or lost with the parent).
            total -= ticks(st0.own_ticks);
        }
    }
    total
}

/// Memory of a process tree at one moment (kB): processes, sum of VmRSS, largest VmHWM, and
/// sum of Pss (shared pages split among the processes that map them, so that the sum is the
/// tree's own footprint: forked children share most of their pages with the parent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TreeMem {
    procs: u64,
    rss_kb: u64,
    hwm_max_kb: u64,
    pss_kb: u64,
}

impl TreeMem {
    /// The larger of each figure.
    pub(crate) fn max(self, o: TreeMem) -> TreeMem {
        TreeMem {
            procs: self.procs.max(o.procs),
            rss_kb: self.rss_kb.max(o.rss_kb),
            hwm_max_kb: self.hwm_max_kb.max(o.hwm_max_kb),
            pss_kb: self.pss_kb.max(o.pss_kb),
        }
    }
}

/// The value in kB of `key` in a /proc status-like text.
fn kb_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn tree_memory(pid: u32) -> Option<TreeMem> {
    let tree = proc_tree(pid);
    if tree.is_empty() {
        return None;
    }
    let mut m = TreeMem::default();
    for (p, _) in &tree {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        m.procs += 1;
        m.rss_kb += kb_field(&status, "VmRSS:");
        m.hwm_max_kb = m.hwm_max_kb.max(kb_field(&status, "VmHWM:"));
        if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            m.pss_kb += kb_field(&rollup, "Pss:");
        }
    }
    Some(m)
}

/// Samples a process tree's memory every 200 ms until stopped; keeps the largest sum of RSS.
pub(crate) struct MemWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Option<TreeMem>>,
}

impl MemWatch {
    pub(crate) fn start(pid: Option<u32>) -> Option<MemWatch> {
        let pid = pid?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut best: Option<TreeMem> = None;
            loop {
                if let Some(now) = tree_memory(pid) {
                    best = Some(match best {
                        Some(b) => b.max(now),
                        None => now,
                    });
                }
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return best;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Some(MemWatch { stop, task })
    }

    pub(crate) async fn finish(w: Option<MemWatch>) -> Option<TreeMem> {
        let w = w?;
        w.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        w.task.await.ok().flatten()
    }
}

/// Adds the tree's memory sample to a JSON line.
pub(crate) fn insert_memory(m: &mut Map<String, Value>, sample: Option<TreeMem>) {
    if let Some(t) = sample {
        m.insert("proxy_procs".into(), json!(t.procs));
        m.insert("proxy_tree_rss_kb".into(), json!(t.rss_kb));
        m.insert("proxy_hwm_max_kb".into(), json!(t.hwm_max_kb));
        m.insert("proxy_tree_pss_kb".into(), json!(t.pss_kb));
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "4242 (sock (at) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 75 30 12 20 0 2 0 123 456 789";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.ppid, 17);
        assert_eq!(st.own_ticks, 325);
        assert_eq!(st.children_ticks, 42);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn a_process_tree_is_found_by_parent_links() {
        let st = |ppid, own, children| ProcStat {
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        // socat (10) with two live connection children (11, 12), one of which forked (13);
        // an unrelated process (20) and its child (21).
        let all = vec![
            (10, st(1, 100, 50)),
            (11, st(10, 30, 0)),
            (12, st(10, 20, 0)),
            (13, st(12, 5, 0)),
            (20, st(1, 999, 999)),
            (21, st(20, 7, 0)),
        ];
        let tree = tree_of(10, &all);
        let mut pids: Vec<u32> = tree.iter().map(|(p, _)| *p).collect();
        pids.sort_unstable();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert!(tree_of(99, &all).is_empty());
        // A live process's own tree.
        let me = proc_tree(std::process::id());
        assert_eq!(me.first().map(|(p, _)| *p), Some(std::process::id()));
        assert!(cpu_snapshot(std::process::id()).is_some());
        let m = tree_memory(std::process::id()).unwrap();
        assert!(m.procs >= 1 && m.rss_kb > 0 && m.hwm_max_kb >= m.rss_kb / m.procs);
        assert!(m.pss_kb <= m.rss_kb);
    }

    #[test]
    fn cpu_between_snapshots_charges_forked_children_once() {
        let st = |ppid, own, children| ProcStat {
            ppid,
            own_ticks: own,
            children_ticks: children,
        };
        // Before: socat (10, 1 s, no reaped children) with a connection child 11 (0.2 s,
        // exactly 0.205 s) and 12 (ticks only).
        let a = CpuSnap {
            procs: vec![
                (10, st(1, 100, 0), Some(1_000_000_000)),
                (11, st(10, 20, 0), Some(205_000_000)),
                (12, st(10, 3, 0), None),
            ],
        };
        // After: 10 used 0.1 s more; 11 ended at 0.5 s and was reaped (10's cutime: 50
        // ticks); 12 used 2 ticks more; 13 appeared and used 0.0123 s.
        let b = CpuSnap {
            procs: vec![
                (10, st(1, 110, 50), Some(1_100_000_000)),
                (12, st(10, 5, 0), None),
                (13, st(10, 1, 0), Some(12_300_000)),
            ],
        };
        // 0.1 (10) + 0.5 - 0.2 (11: reaped total minus its ticks before) + 0.02 (12) + 0.0123.
        assert!(
            (cpu_delta(&a, &b) - 0.4323).abs() < 1e-9,
            "{}",
            cpu_delta(&a, &b)
        );
        assert_eq!(cpu_delta(&a, &a), 0.0);
        // A short child that came and went between the snapshots (before: only the parent;
        // after: only its 1 tick of cutime) is charged its tick, never a negative time.
        let a = CpuSnap {
            procs: vec![
                (10, st(1, 100, 0), Some(1_000_000_000)),
                (11, st(10, 0, 0), Some(4_000_000)),
            ],
        };
        let b = CpuSnap {
            procs: vec![(10, st(1, 100, 1), Some(1_000_000_000))],
        };
        assert!((cpu_delta(&a, &b) - 0.01).abs() < 1e-9);
    }
}
