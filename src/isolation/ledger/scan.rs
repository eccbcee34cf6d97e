//! The ID of the image an answer made, read from the daemon's answer as it streams by: line by
//! line, holding only the line being received (at most [`MAX_LINE`] bytes), never the answer.
//!
//! What the daemon writes (moby 20.10, `api/server/router/build`, `builder/dockerfile`,
//! `builder/builder-next`, `daemon/images/image_import.go`, `api/server/router/image`):
//! - a classic build: `{"aux":{"ID":"sha256:..."}}` at the end of each stage (API 1.30 and
//!   newer), the last one being the image built; `-q` (`q=1`): only `{"stream":"sha256:...\n"}`
//!   on success (everything else, the aux lines too, goes to a buffer written only on failure);
//! - a BuildKit build: `{"id":"moby.image.id","aux":{"ID":"sha256:..."}}` once, for the image
//!   exported (`-q`: as above);
//! - an import: `{"status":"sha256:..."}` as its last line;
//! - a commit: `{"Id":"sha256:..."}` (201).
//!
//! A failed one ends with `{"errorDetail":...,"error":...}`: then nothing is taken (an earlier
//! stage's image is not the one asked for). Lines are parsed as JSON, so what the build itself
//! prints (its `RUN` output travels inside the `stream` string, BuildKit's inside base64) can
//! never pose as one of these. A line longer than [`MAX_LINE`] is not read; unless it starts
//! as an output line (`{"stream":`, `{"status":`, BuildKit's trace), nothing is taken.

use serde_json::Value;

use super::is_image_id;

/// Longest line read; the lines that carry an ID are about a hundred bytes.
pub const MAX_LINE: usize = 64 << 10;

/// What made the answer, as far as reading it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// `POST /build`; `quiet`: `q` as the daemon reads it.
    Build {
        /// Only the ID is written on success.
        quiet: bool,
    },
    /// `POST /images/create?fromSrc=`.
    Import,
    /// `POST /commit`.
    Commit,
}

/// Reads one answer.
#[derive(Debug)]
pub struct Scanner {
    made: Made,
    line: Vec<u8>,
    /// The line being received is longer than [`MAX_LINE`]: skipped to its newline.
    skipping: bool,
    candidate: Option<String>,
    /// The answer said it failed (or could not be read where it mattered).
    failed: bool,
}

/// How output lines start (the daemon's encoder writes fields in their declared order, so the
/// first key is the daemon's): these never carry the ID or an error.
const OUTPUT_PREFIXES: [&[u8]; 3] = [
    b"{\"stream\":",
    b"{\"status\":",
    b"{\"id\":\"moby.buildkit.trace\",",
];

impl Scanner {
    /// A scanner for an answer to `made`.
    pub fn new(made: Made) -> Scanner {
        Scanner {
            made,
            line: Vec::new(),
            skipping: false,
            candidate: None,
            failed: false,
        }
    }

    /// Reads the next piece of the answer.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    self.feed(&chunk[..end]);
                    self.end_line();
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.feed(chunk);
                    break;
                }
            }
        }
    }

    /// The image the answer made, once it has ended cleanly: `None` when it named none or
    /// said it failed.
    pub fn finish(mut self) -> Option<String> {
        if !self.line.is_empty() || self.skipping {
            self.end_line();
        }
        if self.failed {
            return None;
        }
        self.candidate
    }

    fn feed(&mut self, part: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + part.len() > MAX_LINE {
            // Judged by how it starts: an output line is harmless, anything else unknown.
            let mut start = std::mem::take(&mut self.line);
            start.extend_from_slice(&part[..part.len().min(64)]);
            if !OUTPUT_PREFIXES.iter().any(|p| start.starts_with(p)) {
                self.failed = true;
            }
            self.skipping = true;
            return;
        }
        self.line.extend_from_slice(part);
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if std::mem::replace(&mut self.skipping, false) {
            self.after_other_line();
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.judge(line);
    }

    /// A line that is not the ID: under `-q` the ID must be the last line.
    fn after_other_line(&mut self) {
        if self.made == (Made::Build { quiet: true }) {
            self.candidate = None;
        }
    }

    fn judge(&mut self, line: &[u8]) {
        let quiet = self.made == Made::Build { quiet: true };
        // Output lines are the bulk of a build's answer: not parsed when they cannot matter.
        if !quiet && OUTPUT_PREFIXES[0..1].iter().any(|p| line.starts_with(p))
            || OUTPUT_PREFIXES[2..].iter().any(|p| line.starts_with(p))
        {
            self.after_other_line();
            return;
        }
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(line) else {
            // Not the daemon's JSON: nothing to take from it.
            self.after_other_line();
            return;
        };
        if message.contains_key("error") || message.contains_key("errorDetail") {
            self.failed = true;
            return;
        }
        let text = |key: &str| message.get(key).and_then(Value::as_str);
        let id = match self.made {
            Made::Build { quiet: false } => {
                let kind = text("id").unwrap_or("");
                let aux_id = message
                    .get("aux")
                    .and_then(|aux| aux.get("ID"))
                    .and_then(Value::as_str);
                aux_id.filter(|_| kind.is_empty() || kind == "moby.image.id")
            }
            Made::Build { quiet: true } => text("stream")
                .filter(|_| message.len() == 1)
                .and_then(|s| s.strip_suffix('\n')),
            Made::Import => text("status").filter(|_| {
                text("id").unwrap_or("").is_empty() && !message.contains_key("progressDetail")
            }),
            Made::Commit => text("Id"),
        };
        match id.filter(|id| is_image_id(id)) {
            Some(id) => self.candidate = Some(id.to_owned()),
            None => self.after_other_line(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    /// The answer read in pieces of `size` bytes.
    fn scan(made: Made, answer: &[u8], size: usize) -> Option<String> {
        let mut scanner = Scanner::new(made);
        for piece in answer.chunks(size.max(1)) {
            scanner.push(piece);
        }
        scanner.finish()
    }

    /// Every way of cutting the answer gives the same result.
    fn scan_all(made: Made, answer: &[u8]) -> Option<String> {
        let whole = scan(made, answer, answer.len());
        for size in [1, 2, 3, 5, 7, 13, 64, 100] {
            assert_eq!(scan(made, answer, size), whole, "pieces of {size}");
        }
        whole
    }

    const BUILD: Made = Made::Build { quiet: false };
    const QUIET: Made = Made::Build { quiet: true };

    #[test]
    fn a_classic_builds_last_stage_is_the_image() {
        let answer = format!(
            "{{\"stream\":\"Step 1/3 : FROM busybox\\n\"}}\r\n{{\"aux\":{{\"ID\":\"{}\"}}}}\r\n\
             {{\"stream\":\"Step 2/3\\n\"}}\r\n{{\"aux\":{{\"ID\":\"{}\"}}}}\r\n\
             {{\"stream\":\"Successfully built aaaaaaaaaaaa\\n\"}}\r\n\
             {{\"stream\":\"Successfully tagged x:latest\\n\"}}\r\n",
            id('b'),
            id('a')
        );
        assert_eq!(scan_all(BUILD, answer.as_bytes()), Some(id('a')));
    }

    #[test]
    fn a_buildkit_builds_image_is_its_moby_image_id() {
        let answer = format!(
            "{{\"id\":\"moby.buildkit.trace\",\"aux\":\"Cm4KR3NoYTI1Njo=\"}}\n\
             {{\"id\":\"moby.image.id\",\"aux\":{{\"ID\":\"{}\"}}}}\n\
             {{\"id\":\"moby.buildkit.trace\",\"aux\":\"Cm4K\"}}\n",
            id('c')
        );
        assert_eq!(scan_all(BUILD, answer.as_bytes()), Some(id('c')));
        // Other aux messages are not the image.
        let other = format!(
            "{{\"id\":\"moby.other\",\"aux\":{{\"ID\":\"{}\"}}}}\n",
            id('c')
        );
        assert_eq!(scan_all(BUILD, other.as_bytes()), None);
    }

    #[test]
    fn what_a_build_prints_cannot_pose_as_the_id() {
        // RUN output is inside the stream string, escaped.
        let forged = format!(
            "{{\"stream\":\"{{\\\"aux\\\":{{\\\"ID\\\":\\\"{0}\\\"}}}}\\n\"}}\n\
             {{\"stream\":\"{0}\\n\"}}\n",
            id('d')
        );
        assert_eq!(scan_all(BUILD, forged.as_bytes()), None);
        // A quiet build's only line on success is the ID; the same line followed by more is
        // a failed build's buffer (RUN output), never the image.
        let quiet_ok = format!("{{\"stream\":\"{}\\n\"}}\r\n", id('e'));
        assert_eq!(scan_all(QUIET, quiet_ok.as_bytes()), Some(id('e')));
        let quiet_failed = format!(
            "{{\"stream\":\"{}\\n\"}}\r\n{{\"errorDetail\":{{\"message\":\"x\"}},\"error\":\"x\"}}\r\n",
            id('e')
        );
        assert_eq!(scan_all(QUIET, quiet_failed.as_bytes()), None);
        let quiet_then_more = format!("{{\"stream\":\"{}\\n\"}}\n{{\"stream\":\"x\"}}\n", id('e'));
        assert_eq!(scan_all(QUIET, quiet_then_more.as_bytes()), None);
        // In a verbose build a stream line is never the ID.
        assert_eq!(scan_all(BUILD, quiet_ok.as_bytes()), None);
    }

    #[test]
    fn a_failed_answer_names_no_image() {
        let answer = format!(
            "{{\"aux\":{{\"ID\":\"{}\"}}}}\n{{\"errorDetail\":{{\"message\":\"The command returned a \
             non-zero code: 1\"}},\"error\":\"The command returned a non-zero code: 1\"}}\n",
            id('f')
        );
        assert_eq!(scan_all(BUILD, answer.as_bytes()), None);
        // An error before the ID counts too.
        let before = format!(
            "{{\"error\":\"x\"}}\n{{\"aux\":{{\"ID\":\"{}\"}}}}\n",
            id('f')
        );
        assert_eq!(scan_all(BUILD, before.as_bytes()), None);
    }

    #[test]
    fn imports_and_commits() {
        let import = format!(
            "{{\"status\":\"Importing\",\"progressDetail\":{{\"current\":512}},\"progress\":\"x\"}}\r\n\
             {{\"status\":\"{}\"}}\r\n",
            id('1')
        );
        assert_eq!(scan_all(Made::Import, import.as_bytes()), Some(id('1')));
        let with_id = format!("{{\"status\":\"{}\",\"id\":\"x\"}}\n", id('1'));
        assert_eq!(scan_all(Made::Import, with_id.as_bytes()), None);
        let commit = format!("{{\"Id\":\"{}\"}}\n", id('2'));
        assert_eq!(scan_all(Made::Commit, commit.as_bytes()), Some(id('2')));
        // Without its newline (the answer's end is the line's end).
        let commit = format!("{{\"Id\":\"{}\"}}", id('2'));
        assert_eq!(scan_all(Made::Commit, commit.as_bytes()), Some(id('2')));
    }

    #[test]
    fn only_image_ids_are_taken() {
        for bad in [
            "sha256:abc".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            "a".repeat(64),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}", "a".repeat(65)),
            format!("{} ", id('a')),
        ] {
            let commit = format!("{{\"Id\":{}}}\n", serde_json::json!(bad));
            assert_eq!(scan_all(Made::Commit, commit.as_bytes()), None, "{bad}");
        }
        let commit = format!("{{\"Id\":{}}}\n", serde_json::json!(["x"]));
        assert_eq!(scan_all(Made::Commit, commit.as_bytes()), None);
    }

    #[test]
    fn garbage_is_no_image() {
        for garbage in [
            &b"\x00\xff\xfe not json\n"[..],
            b"[1,2,3]\n",
            b"{\"aux\":\n",
            b"\n\n\r\n",
            b"",
            b"{\"aux\":{\"ID\":1}}\n",
            b"{\"aux\":\"sha256:x\"}\n",
        ] {
            assert_eq!(scan_all(BUILD, garbage), None);
        }
        // Garbage does not hide a good ID after it.
        let mixed = format!("\x00garbage\n{{\"aux\":{{\"ID\":\"{}\"}}}}\n", id('9'));
        assert_eq!(scan_all(BUILD, mixed.as_bytes()), Some(id('9')));
    }

    #[test]
    fn huge_lines_are_bounded() {
        let big_output = format!("{{\"stream\":\"{}\"}}\n", "x".repeat(MAX_LINE * 3));
        let answer = format!("{big_output}{{\"aux\":{{\"ID\":\"{}\"}}}}\n", id('7'));
        let mut scanner = Scanner::new(BUILD);
        for piece in answer.as_bytes().chunks(4096) {
            scanner.push(piece);
            assert!(
                scanner.line.len() <= MAX_LINE,
                "held {}",
                scanner.line.len()
            );
        }
        assert_eq!(scanner.finish(), Some(id('7')));
        assert_eq!(scan_all(BUILD, answer.as_bytes()), Some(id('7')));
        // An overlong line that is not output (an error with a long message) could be a
        // failure: nothing is taken.
        let long_error = format!(
            "{{\"aux\":{{\"ID\":\"{}\"}}}}\n{{\"errorDetail\":{{\"message\":\"{}\"}}}}\n",
            id('7'),
            "y".repeat(MAX_LINE * 2)
        );
        assert_eq!(scan_all(BUILD, long_error.as_bytes()), None);
        // An ID split across pieces and a line with no newline at the end.
        let split = format!("{{\"aux\":{{\"ID\":\"{}\"}}}}", id('8'));
        assert_eq!(scan_all(BUILD, split.as_bytes()), Some(id('8')));
    }
}
