//! A classic build's Dockerfile, read as the daemon's parser reads it, for what it makes the
//! daemon fetch: `ADD <url>` (the daemon downloads from the host's network), `FROM` and
//! `COPY --from=` images (pulled from their registry when not present).
//!
//! The reading follows the parser moby 20.10 vendors (`moby/buildkit`
//! `frontend/dockerfile/parser/parser.go`): lines split as `bufio.ScanLines` does, a UTF-8 BOM
//! dropped, the `# escape=` directive only before the first other line, continuation lines
//! (escape character at the end, blank and comment lines inside skipped), the instruction
//! keyword in any case, leading `--flags`, the JSON form (the first JSON value of the
//! arguments) and the whitespace form. Words are then expanded as `shell.Lex.ProcessWord`
//! does (quotes, escapes, `$VAR`, `${VAR}`).
//!
//! A variable sockwarden cannot know for sure makes a value unknown: an `ARG` in a stage whose
//! base is an image can be shadowed by that image's `ENV` (the daemon looks the image's
//! environment up first), and `${VAR:-x}` forms are not evaluated. An `ADD` source whose value
//! is unknown and could still become a URL is refused. Where the parser would fail, the
//! daemon builds nothing; reading more instructions than it would only refuses more.

use std::collections::BTreeMap;

use super::docker_json::quote;
use super::fetch::{self, forbidden_literal, Host, LocalFacts, Source};
use super::Violation;

/// Largest Dockerfile read (the daemon reads it whole; ours are small).
pub const DOCKERFILE_LIMIT: usize = 1 << 20;

/// A value after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Known(String),
    /// Not known: the literal text before the first unknown variable, and that variable.
    Unknown {
        prefix: String,
        var: String,
    },
}

/// What a stage's variables are.
#[derive(Debug, Clone, Default)]
struct Stage {
    /// Lower-case stage name (`AS name`).
    name: Option<String>,
    /// Whether the base's environment is known (`scratch`, or a known earlier stage).
    certain: bool,
    /// `ENV` values set in the Dockerfile (`None`: set to something unknown).
    env: BTreeMap<String, Option<String>>,
    /// `ARG` values declared in this stage.
    args: BTreeMap<String, Option<String>>,
}

/// What the checks need besides the text.
#[derive(Debug, Clone, Copy)]
pub struct DockerfileRules<'a> {
    /// The build's `buildargs` (a `null` value: declared without one).
    pub build_args: &'a BTreeMap<String, Option<String>>,
    /// `allow_remote`: whether `ADD <url>` may download at all.
    pub allow_remote: bool,
    /// This host's addresses and sockwarden's listeners.
    pub local: &'a LocalFacts,
}

/// Checks a Dockerfile (`name` is its path in the context, for messages). Returns the sources
/// on DNS names, which the caller must resolve and check with [`fetch::forbidden_addr`].
pub fn check_dockerfile(
    name: &str,
    text: &[u8],
    rules: DockerfileRules<'_>,
) -> Result<Vec<Source>, Violation> {
    dockerfile_images(name, text, rules).map(|(sources, _)| sources)
}

/// The images a Dockerfile builds from, with their line.
pub type BaseImages = Vec<(usize, String)>;

/// [`check_dockerfile`], also returning the images the build starts from or copies from
/// (`FROM`, `COPY --from`, as expanded; stages and `scratch` left out), with their line.
pub fn dockerfile_images(
    name: &str,
    text: &[u8],
    rules: DockerfileRules<'_>,
) -> Result<(Vec<Source>, BaseImages), Violation> {
    read(name, text, rules, false)
}

/// Only the images a Dockerfile builds from or copies from (`FROM`, `COPY --from`, as
/// expanded; stages and `scratch` left out), with their line, for isolation: no fetch rule is
/// applied, every image is read however it is spelled, and an image whose name sockwarden
/// cannot know (a variable it cannot resolve) is a violation.
pub fn base_images(
    name: &str,
    text: &[u8],
    build_args: &BTreeMap<String, Option<String>>,
) -> Result<BaseImages, Violation> {
    let local = LocalFacts::default();
    let rules = DockerfileRules {
        build_args,
        allow_remote: true,
        local: &local,
    };
    read(name, text, rules, true).map(|(_, images)| images)
}

fn read(
    name: &str,
    text: &[u8],
    rules: DockerfileRules<'_>,
    images_only: bool,
) -> Result<(Vec<Source>, BaseImages), Violation> {
    let mut checker = Checker {
        file: name,
        rules,
        meta: BTreeMap::new(),
        stages: Vec::new(),
        resolve: Vec::new(),
        images: Vec::new(),
        escape: '\\',
        images_only,
    };
    let (lines, escape) = instructions(text)?;
    checker.escape = escape;
    for (line_no, line) in lines {
        checker.instruction(line_no, &line)?;
    }
    Ok((checker.resolve, checker.images))
}

fn deny(file: &str, line: usize, reason: String) -> Violation {
    Violation {
        field: format!("{file}:{line}"),
        reason,
        setting: None,
        value: None,
    }
}

/// The instructions of a Dockerfile, continuation lines joined, with their first line number,
/// and the escape character.
pub(crate) type Instructions = (Vec<(usize, String)>, char);

pub(crate) fn instructions(text: &[u8]) -> Result<Instructions, Violation> {
    let text = String::from_utf8_lossy(text);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // bufio.ScanLines: split at \n, drop one trailing \r.
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut directives = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines.get(i).copied().unwrap_or("");
        i += 1;
        let start = i;
        let trimmed = raw.trim_start();
        directives
            .see(trimmed)
            .map_err(|m| deny("Dockerfile", start, m))?;
        let processed = if trimmed.starts_with('#') {
            ""
        } else {
            trimmed
        };
        let (mut line, mut end) = trim_continuation(processed, directives.escape);
        if end && line.is_empty() {
            continue;
        }
        while !end && i < lines.len() {
            let raw = lines.get(i).copied().unwrap_or("");
            i += 1;
            directives.see(raw).map_err(|m| deny("Dockerfile", i, m))?;
            if raw.trim_start().starts_with('#') || raw.trim_start().is_empty() {
                continue;
            }
            let (more, e) = trim_continuation(raw, directives.escape);
            line.push_str(&more);
            end = e;
        }
        out.push((start, line));
    }
    Ok((out, directives.escape))
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on each line until one is not a known
    /// directive.
    fn see(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let is_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c');
        let parsed = line.strip_prefix('#').and_then(|rest| {
            let rest = rest.trim_start_matches(is_ws);
            let key_len = rest
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
                .map_or(rest.len(), |(i, _)| i);
            let (key, after) = rest.split_at(key_len);
            let value = after.trim_start_matches(is_ws).strip_prefix('=')?;
            let value = value.trim_matches(is_ws);
            (!key.is_empty() && !value.is_empty()).then(|| (key.to_ascii_lowercase(), value))
        });
        let Some((key, value)) = parsed else {
            self.done = true;
            return Ok(());
        };
        if key != "escape" && key != "syntax" {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        if key == "escape" {
            self.escape = match value {
                "`" => '`',
                "\\" => '\\',
                other => return Err(format!("invalid escape token {}", quote(other))),
            };
        }
        Ok(())
    }
}

/// `([^\X])\X[ \t]*$|^\X[ \t]*$`: the line without its continuation, and whether it ends the
/// instruction.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before.to_owned(), false);
        }
    }
    (line.to_owned(), true)
}

/// `extractBuilderFlags`: the leading `--flag` words and the rest.
pub(crate) fn builder_flags(line: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = line;
    loop {
        let t = rest.trim_start();
        if !t.starts_with("--") {
            return (flags, t);
        }
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (word, after) = t.split_at(end);
        if word == "--" {
            return (flags, after.trim_start());
        }
        // Quotes and backslashes inside a flag word are removed, as the parser does.
        flags.push(
            word.chars()
                .filter(|c| !matches!(c, '"' | '\'' | '\\'))
                .collect(),
        );
        rest = after;
    }
}

/// `reWhitespace`: `[\t\v\f\r ]`.
const ASCII_WS: [char; 5] = [' ', '\t', '\x0b', '\x0c', '\r'];

fn split_ws(s: &str) -> Vec<&str> {
    s.split(ASCII_WS).filter(|w| !w.is_empty()).collect()
}

/// `parseMaybeJSONToList`: the first JSON value when it is an array of strings, else the
/// whitespace-separated words.
fn json_or_words(args: &str) -> Vec<String> {
    if args.trim_start().starts_with('[') {
        let mut stream =
            serde_json::Deserializer::from_str(args.trim_start()).into_iter::<Vec<String>>();
        if let Some(Ok(list)) = stream.next() {
            return list;
        }
    }
    split_ws(args).into_iter().map(str::to_owned).collect()
}

/// `parseWords`: words separated by whitespace outside quotes (quotes kept).
fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.push(c);
            }
            Some(q) if c == q => {
                quote = None;
                word.push(c);
            }
            _ if c == escape => {
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `ProcessWord`: quotes and escapes removed, variables looked up with `lookup` (`None`:
/// unknown).
fn expand(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> Val {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let get = |i: usize| chars.get(i).copied();
    let mut in_double = false;
    while let Some(c) = get(i) {
        i += 1;
        if c == escape && !in_double {
            if let Some(n) = get(i) {
                out.push(n);
                i += 1;
            }
            continue;
        }
        if c == escape && in_double {
            match get(i) {
                Some(n) if n == '"' || n == '$' || n == escape => {
                    out.push(n);
                    i += 1;
                }
                _ => out.push(c),
            }
            continue;
        }
        if c == '\'' && !in_double {
            while let Some(n) = get(i) {
                i += 1;
                if n == '\'' {
                    break;
                }
                out.push(n);
            }
            continue;
        }
        if c == '"' {
            in_double = !in_double;
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        // `$name`, `${name}`, `${name:-x}`, ...
        let braced = get(i) == Some('{');
        let name_start = if braced { i + 1 } else { i };
        let mut j = name_start;
        let digits = get(j).is_some_and(|c| c.is_ascii_digit());
        while let Some(n) = get(j) {
            let ok = if digits {
                n.is_ascii_digit()
            } else {
                n.is_alphanumeric() || n == '_'
            };
            if !ok {
                break;
            }
            j += 1;
        }
        let name: String = chars.get(name_start..j).unwrap_or(&[]).iter().collect();
        if name.is_empty() && !braced {
            out.push('$');
            continue;
        }
        if braced && get(j) != Some('}') {
            // A modifier, or something the daemon refuses: not evaluated.
            return Val::Unknown {
                prefix: out,
                var: name,
            };
        }
        i = if braced { j + 1 } else { j };
        match lookup(&name) {
            Some(v) => out.push_str(&v),
            None => {
                return Val::Unknown {
                    prefix: out,
                    var: name,
                }
            }
        }
    }
    Val::Known(out)
}

struct Checker<'a> {
    file: &'a str,
    rules: DockerfileRules<'a>,
    /// `ARG`s before the first `FROM`, with their values.
    meta: BTreeMap<String, String>,
    stages: Vec<Stage>,
    resolve: Vec<Source>,
    /// The images it builds from (`FROM`, `COPY --from`; not stages, not `scratch`), with
    /// their line.
    images: Vec<(usize, String)>,
    escape: char,
    /// Only the images are wanted ([`base_images`]): no fetch rule applies.
    images_only: bool,
}

impl Checker<'_> {
    fn instruction(&mut self, line_no: usize, line: &str) -> Result<(), Violation> {
        self.instruction_in(line_no, line, false)
    }

    fn instruction_in(
        &mut self,
        line_no: usize,
        line: &str,
        onbuild: bool,
    ) -> Result<(), Violation> {
        let line = line.trim();
        let (cmd, rest) = match line.find(ASCII_WS) {
            Some(i) => (line.get(..i).unwrap_or(""), line.get(i..).unwrap_or("")),
            None => (line, ""),
        };
        let cmd = cmd.to_ascii_lowercase();
        let (flags, args) = builder_flags(rest);
        let args = args.trim();
        match cmd.as_str() {
            "from" if !onbuild => self.from(line_no, args),
            "arg" if !onbuild => {
                self.arg(args);
                Ok(())
            }
            "env" if !onbuild => {
                self.env(args);
                Ok(())
            }
            "add" => self.add(line_no, args, onbuild),
            "copy" => self.copy_from(line_no, &flags),
            "onbuild" if !onbuild => self.instruction_in(line_no, args, true),
            _ => Ok(()),
        }
    }

    /// The `# escape=` character: `ProcessWord` uses it too.
    fn escape(&self) -> char {
        self.escape
    }

    fn meta_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| Some(self.meta.get(name).cloned().unwrap_or_default())
    }

    fn from(&mut self, line_no: usize, args: &str) -> Result<(), Violation> {
        let words = split_ws(args);
        let image = words.first().copied().unwrap_or("");
        let image = match expand(image, self.escape(), &self.meta_lookup()) {
            Val::Known(v) => v,
            Val::Unknown { .. } => {
                return Err(deny(
                    self.file,
                    line_no,
                    format!("FROM {}: the image name cannot be resolved", quote(image)),
                ))
            }
        };
        let name = match (words.get(1), words.get(2)) {
            (Some(kw), Some(n)) if kw.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
            _ => None,
        };
        let earlier = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&image.to_ascii_lowercase()))
            .cloned();
        let stage = match earlier {
            Some(mut s) => {
                s.name = name;
                s.args.clear();
                s
            }
            None => {
                let certain = image == "scratch";
                if !certain {
                    self.registry(line_no, "FROM", &image)?;
                }
                Stage {
                    name,
                    certain,
                    ..Stage::default()
                }
            }
        };
        self.stages.push(stage);
        Ok(())
    }

    fn registry(&mut self, line_no: usize, what: &str, image: &str) -> Result<(), Violation> {
        self.images.push((line_no, image.to_owned()));
        if self.images_only {
            return Ok(());
        }
        let target = fetch::registry_target(image).map_err(|m| deny(self.file, line_no, m))?;
        let Some(target) = target else { return Ok(()) };
        if let Some(why) = forbidden_literal(&target, self.rules.local) {
            return Err(deny(
                self.file,
                line_no,
                format!(
                    "{what} {}: the daemon would pull from {target}, {why}",
                    quote(image)
                ),
            )
            .with_value(target));
        }
        if matches!(target.host, Host::Name(_)) {
            self.resolve.push(Source {
                field: format!("{}:{line_no}", self.file),
                text: image.to_owned(),
                target,
            });
        }
        Ok(())
    }

    fn arg(&mut self, args: &str) {
        for word in quoted_words(args, self.escape()) {
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (word.clone(), None),
            };
            let given = self.rules.build_args.get(&name).cloned().flatten();
            if self.stages.is_empty() {
                let value = given.or_else(|| {
                    default.map(|d| match expand(&d, self.escape(), &self.meta_lookup()) {
                        Val::Known(v) => v,
                        Val::Unknown { prefix, .. } => prefix,
                    })
                });
                self.meta.insert(name, value.unwrap_or_default());
                continue;
            }
            let value = match given {
                Some(v) => Some(v),
                None => match default {
                    Some(d) => match self.expand_in_stage(&d) {
                        Val::Known(v) => Some(v),
                        Val::Unknown { .. } => None,
                    },
                    None => self.meta.get(&name).cloned(),
                },
            };
            if let Some(stage) = self.stages.last_mut() {
                stage.args.insert(name, value);
            }
        }
    }

    fn env(&mut self, args: &str) {
        let words = quoted_words(args, self.escape());
        let pairs: Vec<(String, String)> = match words.first() {
            Some(first) if !first.contains('=') => {
                let mut parts = args.splitn(2, |c: char| c.is_whitespace());
                let name = parts.next().unwrap_or("").to_owned();
                vec![(name, parts.next().unwrap_or("").trim_start().to_owned())]
            }
            _ => words
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        };
        for (name, raw) in pairs {
            let value = match self.expand_in_stage(&raw) {
                Val::Known(v) => Some(v),
                Val::Unknown { .. } => None,
            };
            if let Some(stage) = self.stages.last_mut() {
                stage.env.insert(name, value);
            }
        }
    }

    /// Expands with the current stage's variables: its `ENV`s first (the daemon's run
    /// config), then its `ARG`s only when the base's environment is known (an image's `ENV`
    /// of the same name would win).
    fn expand_in_stage(&self, word: &str) -> Val {
        let stage = self.stages.last();
        let lookup = |name: &str| -> Option<String> {
            let stage = stage?;
            if let Some(v) = stage.env.get(name) {
                return v.clone();
            }
            if !stage.certain {
                return None;
            }
            match stage.args.get(name) {
                Some(v) => v.clone(),
                None => Some(String::new()),
            }
        };
        expand(word, self.escape(), &lookup)
    }

    fn add(&mut self, line_no: usize, args: &str, onbuild: bool) -> Result<(), Violation> {
        if self.images_only {
            return Ok(());
        }
        let what = if onbuild { "ONBUILD ADD" } else { "ADD" };
        for word in json_or_words(args) {
            let val = if onbuild {
                // Expanded later, in another build's environment.
                expand(&word, self.escape(), &|_| None)
            } else {
                self.expand_in_stage(&word)
            };
            match val {
                Val::Known(v) if fetch::is_download_url(&v) => self.url(line_no, what, &v)?,
                Val::Known(_) => {}
                Val::Unknown { prefix, var } if fetch::could_become_url(&prefix) => {
                    return Err(deny(
                        self.file,
                        line_no,
                        format!(
                            "{what} {}: the source depends on ${var}, which sockwarden cannot \
                             resolve (the base image's environment may set it), and could be a URL",
                            quote(&word)
                        ),
                    ))
                }
                Val::Unknown { .. } => {}
            }
        }
        Ok(())
    }

    fn url(&mut self, line_no: usize, what: &str, url: &str) -> Result<(), Violation> {
        if !self.rules.allow_remote {
            let mut v = deny(
                self.file,
                line_no,
                format!(
                    "{what} {}: the daemon would download a URL (allow_remote)",
                    quote(url)
                ),
            );
            v.setting = Some("allow_remote".into());
            return Err(v.with_value(url));
        }
        let target = fetch::url_target(url).map_err(|m| deny(self.file, line_no, m))?;
        if let Some(why) = forbidden_literal(&target, self.rules.local) {
            return Err(deny(
                self.file,
                line_no,
                format!(
                    "{what} {}: the daemon would download from {why}",
                    quote(url)
                ),
            )
            .with_value(target));
        }
        if matches!(target.host, Host::Name(_)) {
            self.resolve.push(Source {
                field: format!("{}:{line_no}", self.file),
                text: url.to_owned(),
                target,
            });
        }
        Ok(())
    }

    fn copy_from(&mut self, line_no: usize, flags: &[String]) -> Result<(), Violation> {
        for flag in flags {
            let Some(from) = flag.strip_prefix("--from=") else {
                continue;
            };
            if from.contains('$') {
                return Err(deny(
                    self.file,
                    line_no,
                    format!(
                        "COPY --from={}: a variable sockwarden cannot resolve",
                        quote(from)
                    ),
                ));
            }
            let lower = from.to_ascii_lowercase();
            let is_stage = from.bytes().all(|b| b.is_ascii_digit())
                || self
                    .stages
                    .iter()
                    .any(|s| s.name.as_deref() == Some(&lower));
            if !is_stage {
                self.registry(line_no, "COPY --from", from)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "dockerfile/tests.rs"]
mod tests;
