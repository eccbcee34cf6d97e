//! Offline tooling over audit logs: `sockwarden audit summarize` (who did what, what was
//! refused, by which rule) and `sockwarden audit suggest` (the smallest policy that would have
//! allowed what one client did; see [`suggest`]).
//!
//! Records are read leniently: unknown fields are ignored, optional ones may be missing or
//! `null`, and a line that is not a JSON object (or not a record) is counted and reported, never
//! fatal. Files are read line by line, so memory grows with the number of distinct clients,
//! operations and refusals, not with the size of the log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

pub mod suggest;

#[cfg(test)]
mod tests;

pub use suggest::{suggest, SuggestError};

// ---------------------------------------------------------------------------------------------
// Records: the one audit record type, shared with the writer (see `audit::schema`).

pub use super::schema::{LimitSettings, MountSettings, Peer, Record, Settings};

// ---------------------------------------------------------------------------------------------
// Reading

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineRef {
    /// The file (`-` for stdin).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

/// A line that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// Where.
    #[serde(flatten)]
    pub at: LineRef,
    /// Why it could not be read.
    pub error: String,
}

/// Reads every line of `name` (`-`: stdin), calling `each` with each record or bad line.
/// Fails only when the file cannot be opened or read.
pub fn read_file(
    name: &str,
    each: &mut dyn FnMut(LineRef, Result<Record, String>),
) -> Result<(), String> {
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(name).map_err(|e| format!("cannot read {name}: {e}"))?)
    };
    read_lines(name, BufReader::new(reader), each)
}

/// Reads records from any reader (see [`read_file`]).
pub fn read_lines(
    name: &str,
    mut reader: impl BufRead,
    each: &mut dyn FnMut(LineRef, Result<Record, String>),
) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read {name}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let at = LineRef {
            file: name.to_owned(),
            line,
        };
        each(at, parse_record(text));
    }
}

/// Parses one line into a record.
pub fn parse_record(line: &str) -> Result<Record, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err(format!("not a JSON object (a JSON {})", json_kind(&value)));
    }
    serde_json::from_value(value).map_err(|e| format!("not an audit record: {e}"))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// A sort key for RFC 3339 UTC times that compares fractions of a second correctly
/// (`08:30:00Z` before `08:30:00.5Z`).
pub(crate) fn time_key(t: &str) -> (String, u64) {
    let (head, rest) = t.split_at(t.len().min(19));
    let frac = rest
        .strip_prefix('.')
        .map(|f| {
            let digits: String = f.chars().take_while(char::is_ascii_digit).take(9).collect();
            format!("{digits:0<9}").parse::<u64>().unwrap_or(0)
        })
        .unwrap_or(0);
    (head.to_owned(), frac)
}

/// Earliest and latest times seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Earliest.
    pub first: Option<String>,
    /// Latest.
    pub last: Option<String>,
}

impl Period {
    /// Takes `time` into account.
    pub fn see(&mut self, time: Option<&str>) {
        let Some(t) = time else { return };
        if self
            .first
            .as_deref()
            .is_none_or(|f| time_key(t) < time_key(f))
        {
            self.first = Some(t.to_owned());
        }
        if self
            .last
            .as_deref()
            .is_none_or(|l| time_key(t) > time_key(l))
        {
            self.last = Some(t.to_owned());
        }
    }

    fn text(&self) -> String {
        match (&self.first, &self.last) {
            (Some(f), Some(l)) if f == l => f.clone(),
            (Some(f), Some(l)) => format!("{f} .. {l}"),
            _ => "-".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Summarize

/// The name shown for records whose connection matched no client.
pub const NO_CLIENT: &str = "(no client)";

/// Counts by decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decisions {
    /// Requests.
    pub requests: u64,
    /// Allowed and forwarded.
    pub allowed: u64,
    /// Refused.
    pub denied: u64,
    /// Forwarded, but the policy (in audit mode) would have refused them.
    pub would_deny: u64,
}

impl Decisions {
    fn count(&mut self, decision: Option<&str>) {
        self.requests += 1;
        match decision {
            Some("allow") => self.allowed += 1,
            Some("deny") => self.denied += 1,
            Some("would-deny") => self.would_deny += 1,
            _ => {}
        }
    }
}

/// What one client did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientSummary {
    /// The client (`(no client)` for connections that matched none).
    pub client: String,
    /// Counts by decision.
    #[serde(flatten)]
    pub decisions: Decisions,
    /// Requests per operation (`(none)`: not normalized, a 400).
    pub operations: BTreeMap<String, Decisions>,
    /// Responses per HTTP status (`-`: none recorded).
    pub statuses: BTreeMap<String, u64>,
    /// Peers seen, with request counts.
    pub peers: BTreeMap<String, u64>,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// First and last request.
    pub period: Period,
}

/// How often a rule decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// Policy (`-`: none, the connection matched no client).
    pub policy: String,
    /// Rule.
    pub rule: String,
    /// Counts by decision.
    #[serde(flatten)]
    pub decisions: Decisions,
}

/// Refusals (and would-be refusals) of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Client.
    pub client: String,
    /// Operation (`(none)` when the request could not be normalized).
    pub operation: String,
    /// `deny` or `would-deny`.
    pub decision: String,
    /// Policy.
    pub policy: Option<String>,
    /// Rule.
    pub rule: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Distinct inspection violations among them.
    pub violations: Vec<String>,
    /// How many.
    pub count: u64,
    /// When the first and last happened.
    #[serde(flatten)]
    pub period: Period,
}

/// Hijacked sessions (attach, exec, BuildKit).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sessions {
    /// Opened (`session_open` records).
    pub opened: u64,
    /// Closed (`session_close` records).
    pub closed: u64,
    /// Opened per operation.
    pub operations: BTreeMap<String, u64>,
    /// How closes ended (`complete`, `client_gone`, `error`).
    pub ends: BTreeMap<String, u64>,
    /// Ids opened without a close in the log (still open, or the log was cut).
    pub unclosed: Vec<String>,
    /// Total time of closed sessions.
    pub duration_ms: f64,
    /// Bytes carried client -> daemon by closed sessions.
    pub bytes_in: u64,
    /// Bytes carried daemon -> client by closed sessions.
    pub bytes_out: u64,
}

/// One configuration reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reload {
    /// When.
    pub time: Option<String>,
    /// `ok` or `error`.
    pub result: Option<String>,
    /// The error.
    pub error: Option<String>,
    /// What triggered it.
    pub source: Option<String>,
}

/// The report of `sockwarden audit summarize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: Vec<String>,
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines that were records.
    pub records: u64,
    /// Requests by decision, all clients.
    pub totals: Decisions,
    /// First and last record.
    pub period: Period,
    /// Per client, by name (`(no client)` last).
    pub clients: Vec<ClientSummary>,
    /// Which rules decided, most frequent first.
    pub rules: Vec<RuleCount>,
    /// Refusals grouped by client, operation, decision, rule and reason, most frequent first.
    pub refusals: Vec<Refusal>,
    /// Sessions.
    pub sessions: Sessions,
    /// Reloads, in log order.
    pub reloads: Vec<Reload>,
    /// Records of other kinds, by event.
    pub other_events: BTreeMap<String, u64>,
    /// Lines that are not records.
    pub unparseable: Vec<BadLine>,
}

/// Builds a [`Summary`] from records fed one by one.
#[derive(Debug, Default)]
pub struct Summarizer {
    summary: Summary,
    clients: BTreeMap<Option<String>, ClientSummary>,
    rules: BTreeMap<(String, String), Decisions>,
    refusals: BTreeMap<RefusalKey, Refusal>,
    open: BTreeSet<String>,
}

type RefusalKey = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Summarizer {
    /// A summarizer with nothing read yet.
    pub fn new() -> Summarizer {
        Summarizer::default()
    }

    /// Notes that `file` is being read.
    pub fn file(&mut self, file: &str) {
        self.summary.files.push(file.to_owned());
    }

    /// Takes one line's outcome into account.
    pub fn line(&mut self, at: LineRef, record: Result<Record, String>) {
        self.summary.lines += 1;
        match record {
            Ok(record) => self.record(&record),
            Err(error) => self.summary.unparseable.push(BadLine { at, error }),
        }
    }

    /// Takes one record into account.
    pub fn record(&mut self, r: &Record) {
        let s = &mut self.summary;
        s.records += 1;
        s.period.see(r.time.as_deref());
        match r.event() {
            "request" | "session_open" => {}
            "session_close" => {
                s.sessions.closed += 1;
                if let Some(id) = &r.id {
                    self.open.remove(id);
                }
                *s.sessions
                    .ends
                    .entry(r.end.clone().unwrap_or_else(|| "-".into()))
                    .or_default() += 1;
                s.sessions.duration_ms += r.duration_ms.unwrap_or(0.0);
                s.sessions.bytes_in += r.bytes_in.unwrap_or(0);
                s.sessions.bytes_out += r.bytes_out.unwrap_or(0);
                return;
            }
            "reload" => {
                s.reloads.push(Reload {
                    time: r.time.clone(),
                    result: r.result.clone(),
                    error: r.error.clone(),
                    source: r.source.clone(),
                });
                return;
            }
            other => {
                *s.other_events.entry(other.to_owned()).or_default() += 1;
                return;
            }
        }
        let operation = r.operation.clone().unwrap_or_else(|| "(none)".into());
        if r.event() == "session_open" {
            s.sessions.opened += 1;
            *s.sessions.operations.entry(operation.clone()).or_default() += 1;
            if let Some(id) = &r.id {
                self.open.insert(id.clone());
            }
        }
        let decision = r.decision.as_deref();
        s.totals.count(decision);
        let client = self
            .clients
            .entry(r.client.clone())
            .or_insert_with(|| ClientSummary {
                client: r.client.clone().unwrap_or_else(|| NO_CLIENT.into()),
                ..ClientSummary::default()
            });
        client.decisions.count(decision);
        client
            .operations
            .entry(operation.clone())
            .or_default()
            .count(decision);
        let status = r.status.map_or_else(|| "-".into(), |s| s.to_string());
        *client.statuses.entry(status).or_default() += 1;
        if let Some(peer) = &r.peer {
            *client.peers.entry(peer.describe()).or_default() += 1;
        }
        client.bytes_in += r.bytes_in.unwrap_or(0);
        client.bytes_out += r.bytes_out.unwrap_or(0);
        client.period.see(r.time.as_deref());
        if r.rule.is_some() || r.policy.is_some() {
            let key = (
                r.policy.clone().unwrap_or_else(|| "-".into()),
                r.rule.clone().unwrap_or_else(|| "-".into()),
            );
            self.rules.entry(key).or_default().count(decision);
        }
        let refused = match decision {
            Some("deny" | "would-deny") => true,
            Some(_) => false,
            None => r.status.is_some_and(|s| s >= 400),
        };
        if refused {
            let decision = decision.unwrap_or("-").to_owned();
            let key = (
                client.client.clone(),
                operation.clone(),
                decision.clone(),
                r.policy.clone(),
                r.rule.clone(),
                r.reason.clone(),
            );
            let refusal = self.refusals.entry(key).or_insert_with(|| Refusal {
                client: client.client.clone(),
                operation,
                decision,
                policy: r.policy.clone(),
                rule: r.rule.clone(),
                reason: r.reason.clone(),
                violations: Vec::new(),
                count: 0,
                period: Period::default(),
            });
            refusal.count += 1;
            refusal.period.see(r.time.as_deref());
            for v in &r.violations {
                let v = v.to_string();
                if !refusal.violations.contains(&v) {
                    refusal.violations.push(v);
                }
            }
        }
    }

    /// The finished report.
    pub fn finish(mut self) -> Summary {
        let mut s = self.summary;
        // BTreeMap order puts `None` (no client) first; show it last.
        let mut clients: Vec<ClientSummary> = self.clients.into_values().collect();
        clients.sort_by_key(|c| c.client == NO_CLIENT);
        s.clients = clients;
        s.rules = self
            .rules
            .into_iter()
            .map(|((policy, rule), decisions)| RuleCount {
                policy,
                rule,
                decisions,
            })
            .collect();
        s.rules
            .sort_by_key(|r| std::cmp::Reverse(r.decisions.requests));
        s.refusals = self.refusals.into_values().collect();
        s.refusals.sort_by_key(|r| std::cmp::Reverse(r.count));
        s.sessions.unclosed = std::mem::take(&mut self.open).into_iter().collect();
        s
    }
}

/// Summarizes the given files (`-`: stdin).
pub fn summarize_files(files: &[String]) -> Result<Summary, String> {
    let mut summarizer = Summarizer::new();
    for file in files {
        summarizer.file(file);
        read_file(file, &mut |at, record| summarizer.line(at, record))?;
    }
    Ok(summarizer.finish())
}

/// A text table: columns padded to their widest cell, numbers right-aligned.
fn table(out: &mut String, indent: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            } else {
                widths.push(cell.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = (0..widths.len())
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(i)
                        .is_none_or(|c| c == "-" || c.parse::<f64>().is_ok())
                })
        })
        .collect();
    let mut line = |cells: Vec<String>| {
        let mut text = String::from(indent);
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let last = i + 1 == cells.len();
            if numeric.get(i).copied().unwrap_or(false) {
                text.push_str(&format!("{cell:>w$}"));
            } else if last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}"));
            }
            if !last {
                text.push_str("  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn decision_cells(d: &Decisions) -> Vec<String> {
    vec![
        d.requests.to_string(),
        d.allowed.to_string(),
        d.denied.to_string(),
        d.would_deny.to_string(),
    ]
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        let t = &self.totals;
        out.push_str(&format!(
            "Audit log: {}, {}, {}\n",
            plural(self.files.len() as u64, "file", "files"),
            plural(self.records, "record", "records"),
            plural(
                self.unparseable.len() as u64,
                "unparseable line",
                "unparseable lines"
            ),
        ));
        out.push_str(&format!("  period      {}\n", self.period.text()));
        out.push_str(&format!(
            "  requests    {} ({} allowed, {} denied, {} would-deny)\n",
            t.requests, t.allowed, t.denied, t.would_deny
        ));
        out.push_str(&format!(
            "  sessions    {} opened, {} closed\n",
            self.sessions.opened, self.sessions.closed
        ));
        out.push_str(&format!("  reloads     {}\n", self.reloads.len()));
        for (event, n) in &self.other_events {
            out.push_str(&format!("  {event:<11} {n} (unknown event)\n"));
        }

        out.push_str("\nClients\n");
        let rows: Vec<Vec<String>> = self
            .clients
            .iter()
            .map(|c| {
                let mut row = vec![c.client.clone()];
                row.extend(decision_cells(&c.decisions));
                row.push(c.period.text());
                row
            })
            .collect();
        table(
            &mut out,
            "  ",
            &[
                "CLIENT",
                "REQUESTS",
                "ALLOWED",
                "DENIED",
                "WOULD-DENY",
                "PERIOD",
            ],
            &rows,
        );

        for c in &self.clients {
            out.push_str(&format!("\nClient {}\n", c.client));
            let peers: Vec<String> = c.peers.iter().map(|(p, n)| format!("{p} ({n})")).collect();
            if !peers.is_empty() {
                out.push_str(&format!("  peers     {}\n", peers.join(", ")));
            }
            let statuses: Vec<String> = c
                .statuses
                .iter()
                .map(|(s, n)| format!("{s} x{n}"))
                .collect();
            out.push_str(&format!("  statuses  {}\n", statuses.join(", ")));
            out.push_str(&format!(
                "  bytes     {} in, {} out\n",
                c.bytes_in, c.bytes_out
            ));
            let mut ops: Vec<(&String, &Decisions)> = c.operations.iter().collect();
            ops.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
            let rows: Vec<Vec<String>> = ops
                .into_iter()
                .map(|(op, d)| {
                    let mut row = vec![op.clone()];
                    row.extend(decision_cells(d));
                    row
                })
                .collect();
            table(
                &mut out,
                "  ",
                &["OPERATION", "REQUESTS", "ALLOWED", "DENIED", "WOULD-DENY"],
                &rows,
            );
        }

        out.push_str("\nRules\n");
        if self.rules.is_empty() {
            out.push_str("  (none)\n");
        } else {
            let rows: Vec<Vec<String>> = self
                .rules
                .iter()
                .map(|r| {
                    let mut row = vec![r.policy.clone(), r.rule.clone()];
                    row.extend(decision_cells(&r.decisions));
                    row
                })
                .collect();
            table(
                &mut out,
                "  ",
                &[
                    "POLICY",
                    "RULE",
                    "REQUESTS",
                    "ALLOWED",
                    "DENIED",
                    "WOULD-DENY",
                ],
                &rows,
            );
        }

        out.push_str("\nRefusals\n");
        if self.refusals.is_empty() {
            out.push_str("  (none)\n");
        }
        for r in &self.refusals {
            out.push_str(&format!(
                "  {:>5}  {:<10}  {}  {}  policy {}, rule {}\n",
                r.count,
                r.decision,
                r.client,
                r.operation,
                r.policy.as_deref().unwrap_or("-"),
                r.rule.as_deref().unwrap_or("-"),
            ));
            if let Some(reason) = &r.reason {
                out.push_str(&format!("         reason: {reason}\n"));
            }
            for v in &r.violations {
                out.push_str(&format!("         violation: {v}\n"));
            }
            out.push_str(&format!("         when: {}\n", r.period.text()));
        }

        let s = &self.sessions;
        out.push_str("\nSessions\n");
        out.push_str(&format!("  {} opened, {} closed", s.opened, s.closed));
        if !s.unclosed.is_empty() {
            out.push_str(&format!(
                ", {} without a close in the log: {}",
                s.unclosed.len(),
                s.unclosed.join(", ")
            ));
        }
        out.push('\n');
        if !s.operations.is_empty() {
            let ops: Vec<String> = s
                .operations
                .iter()
                .map(|(o, n)| format!("{o} x{n}"))
                .collect();
            out.push_str(&format!("  opened by   {}\n", ops.join(", ")));
        }
        if s.closed > 0 {
            let ends: Vec<String> = s.ends.iter().map(|(e, n)| format!("{e} x{n}")).collect();
            out.push_str(&format!("  ended       {}\n", ends.join(", ")));
            out.push_str(&format!(
                "  carried     {} in, {} out, {:.0} ms in all\n",
                s.bytes_in, s.bytes_out, s.duration_ms
            ));
        }

        out.push_str("\nReloads\n");
        if self.reloads.is_empty() {
            out.push_str("  (none)\n");
        }
        for r in &self.reloads {
            out.push_str(&format!(
                "  {}  {}  {}{}\n",
                r.time.as_deref().unwrap_or("-"),
                r.result.as_deref().unwrap_or("-"),
                r.source.as_deref().unwrap_or("-"),
                r.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default(),
            ));
        }

        if !self.unparseable.is_empty() {
            out.push_str("\nUnparseable lines\n");
            for b in &self.unparseable {
                out.push_str(&format!("  {}:{}: {}\n", b.at.file, b.at.line, b.error));
            }
        }
        f.write_str(out.trim_end())
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

/// `sockwarden audit ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Summarize audit logs: requests per client and operation, which rules decided, every
    /// refusal grouped with counts, sessions, reloads and unreadable lines.
    Summarize {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Audit log files (JSON lines); `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the smallest policy (a [policy.NAME] TOML table) that would have allowed every
    /// request a client made in the logs, with comments saying what each line covers.
    Suggest {
        /// The client whose requests to cover.
        #[arg(long, value_name = "NAME")]
        client: String,
        /// Name of the policy table (default: the client's name).
        #[arg(long, value_name = "NAME")]
        policy_name: Option<String>,
        /// Audit log files (JSON lines); `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Write a new random seed for sealing the audit file ([audit] seal_key).
    ///
    /// 32 bytes from the OS, hex, mode 0600; never over an existing file. sockwarden needs the
    /// seed once, to start the chain; it then runs from its state file (seal_state, by default
    /// the audit file's path + .seal-state). Keep the seed OFF the host afterwards: it is what
    /// `audit verify` checks with, and whoever holds it can re-seal the whole log.
    SealInit {
        /// Where to write the seed (must not exist).
        #[arg(value_name = "SEED_FILE")]
        seed: PathBuf,
    },
    /// Verify sealed audit files: exit 0 intact, 1 changed, 2 usage error.
    ///
    /// Each finding is printed as FILE:LINE: KIND: detail, KIND one of edited, deleted,
    /// inserted, reordered, forged, gap.
    ///
    /// Give the files oldest first (audit.log.2 audit.log.1 audit.log): the chain is followed
    /// across them, through rotations and restarts. A log that does not end with the end record
    /// sockwarden writes at shutdown must have a record (checkpoint) newer than the checkpoint
    /// interval before now; --now checks it as of another time.
    Verify {
        /// The seed the files were sealed with (from `audit seal-init`).
        #[arg(long, value_name = "SEED_FILE")]
        key: PathBuf,
        /// Verify as of this time (RFC 3339, e.g. 2026-12-03T15:00:00Z) instead of now.
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
        /// The files are part of a chain: accept that it starts before the first (older files
        /// pruned) or continues after the last (newer files not given).
        #[arg(long)]
        partial: bool,
        /// Sealed audit files, oldest first.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs an audit subcommand: 0 on success, 2 on a usage error or an unreadable file.
pub fn run(command: AuditCommand) -> ExitCode {
    let names = |files: &[PathBuf]| -> Vec<String> {
        files.iter().map(|f| f.display().to_string()).collect()
    };
    match command {
        AuditCommand::Summarize { json, files } => match summarize_files(&names(&files)) {
            Ok(summary) if json => match serde_json::to_string_pretty(&summary) {
                Ok(text) => {
                    crate::cli::out(format_args!("{text}\n"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            },
            Ok(summary) => {
                crate::cli::out(format_args!("{summary}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        AuditCommand::Suggest {
            client,
            policy_name,
            files,
        } => {
            let policy_name = policy_name.unwrap_or_else(|| client.clone());
            match suggest::suggest_files(&names(&files), &client, &policy_name) {
                Ok(text) => {
                    crate::cli::out(format_args!("{text}"));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        AuditCommand::SealInit { seed } => seal_init(&seed),
        AuditCommand::Verify {
            key,
            now,
            partial,
            files,
        } => super::verify::run(&key, now.as_deref(), partial, &files),
    }
}

/// `audit seal-init`.
fn seal_init(seed: &std::path::Path) -> ExitCode {
    match super::seal::write_new_seed(seed) {
        Ok(()) => {
            // The configuration takes absolute paths only: name the seed as it must be set.
            let absolute = std::path::absolute(seed).unwrap_or_else(|_| seed.to_path_buf());
            eprintln!(
                "sockwarden: wrote a new seal seed to {} (mode 0600).\n\
                 Set [audit] seal_key = {:?} and start sockwarden once: it starts the chain and \
                 writes its state file next to the audit log.\n\
                 Then move the seed OFF this host (keep it where verification happens): whoever \
                 holds it can re-seal the whole log.",
                seed.display(),
                absolute.display().to_string()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format_args!("{}: {e}", seed.display())),
    }
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("sockwarden: {err}");
    ExitCode::from(2)
}
