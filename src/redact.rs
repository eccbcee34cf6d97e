//! What must never be shown: the one set of redaction rules, shared by the audit log (query
//! parameters, logged bodies) and by responses to policies with `redact_env` (the response
//! layer is `redact::layer`; which answers carry which secrets is the operation table's
//! `redacts` fact). A value is replaced by `<redacted>`; names (of variables, arguments, keys)
//! stay, so a reader still sees what was set and a dashboard finds the fields it reads.
//!
//! The values: environments (`Env` of containers, images, plugins, swarm services and tasks),
//! `ENV`/`ARG` values and build arguments recorded by builders (image history `CreatedBy`,
//! image `Cmd` records and `OnBuild`, build cache descriptions, `changes` queries), log
//! driver options (tokens), volume driver options (mount passwords), exec command lines (exec
//! inspect, `exec_*` events), and anything named like a credential in logged bodies.
pub mod events;
pub mod layer;
pub mod ps_args;

use serde_json::Value;

use crate::route::Answer;

/// What replaces each value.
pub const REDACTED: &str = "<redacted>";

/// Whether a query parameter or document key names a secret or carries one (build args hold
/// tokens as often as not): its value becomes `<redacted>`.
pub fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "buildargs"
        || [
            "auth",
            "password",
            "passwd",
            "secret",
            "token",
            "credential",
        ]
        .iter()
        .any(|word| lower.contains(word))
}

/// Whether a query parameter carries secret values under a harmless name: `changes` (commit
/// and import) holds Dockerfile instructions such as `ENV TOKEN=...`.
pub fn secret_values(name: &str) -> bool {
    name.eq_ignore_ascii_case("changes")
}

/// A `changes` value as it may be shown: `ENV` and `ARG` instructions lose their values.
pub fn changes_value(value: &str) -> String {
    instruction(value).unwrap_or_else(|| value.to_owned())
}

/// A secret query parameter's value as it may be shown: `buildargs` keeps its keys (which
/// arguments were set) and loses its values; anything else is replaced whole.
pub fn query_value(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("buildargs") {
        if let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(value) {
            for v in map.values_mut() {
                *v = serde_json::Value::String(REDACTED.into());
            }
            return serde_json::Value::Object(map).to_string();
        }
    }
    REDACTED.into()
}

/// Redacts a logged body in place: `Env` entries keep their names, build arguments and
/// anything that looks like a credential lose their values, and so do log driver options
/// (`LogConfig.Config`, a service's `LogDriver.Options`) and volume driver options
/// (`DriverOpts`, `DriverConfig.Options`), as in answers. Keys compare case-insensitively, as
/// the daemon reads them.
pub fn document(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if lower == "env" {
                    env_list(v);
                } else if lower == "driveropts" {
                    volume_options(v);
                } else if matches!(lower.as_str(), "logconfig" | "logdriver" | "driverconfig") {
                    // Their options map is `Config` (LogConfig) or `Options`.
                    if let Value::Object(inner) = v {
                        for (k, opts) in inner.iter_mut() {
                            match k.to_ascii_lowercase().as_str() {
                                "config" | "options" if lower == "driverconfig" => {
                                    volume_options(opts)
                                }
                                "config" | "options" => log_options(opts),
                                _ => document(opts),
                            }
                        }
                    } else {
                        document(v);
                    }
                } else if lower == "buildargs" || secret_name(&lower) {
                    *v = serde_json::Value::String(REDACTED.into());
                } else {
                    document(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(document),
        _ => {}
    }
}

/// An `Env` list with its values replaced: `NAME=<redacted>` (a bare `NAME`, which sets no
/// value, stays as it is); anything that is not a string is replaced whole.
pub fn env_list(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                if let serde_json::Value::String(s) = item {
                    let name = s.split('=').next().unwrap_or_default();
                    *s = if s.contains('=') {
                        format!("{name}={REDACTED}")
                    } else {
                        name.to_owned()
                    };
                } else {
                    *item = serde_json::Value::String(REDACTED.into());
                }
            }
        }
        serde_json::Value::Null => {}
        other => *other = serde_json::Value::String(REDACTED.into()),
    }
}

/// Replaces the values of every `Env` list under `Config` and `ContainerConfig` (image inspect
/// carries both), keeping the variable names.
pub fn inspect_env(document: &mut serde_json::Value) {
    for section in ["Config", "ContainerConfig"] {
        if let Some(env) = document.get_mut(section).and_then(|c| c.get_mut("Env")) {
            env_list(env);
        }
    }
}

/// Log driver option keys whose values are never secret (rotation and formatting); every
/// other option's value (`splunk-token`, `awslogs-credentials-endpoint`, addresses with
/// credentials, ...) is replaced.
const PLAIN_LOG_OPTIONS: &[&str] = &[
    "max-size",
    "max-file",
    "compress",
    "mode",
    "max-buffer-size",
];

/// A log driver's options (`{"splunk-token": "..."}`) with their values replaced, except the
/// rotation settings in [`PLAIN_LOG_OPTIONS`].
pub fn log_options(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if !PLAIN_LOG_OPTIONS.contains(&key.as_str()) || !v.is_string() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
        Value::Null => {}
        other => *other = Value::String(REDACTED.into()),
    }
}

/// A volume driver's options with their values replaced: `type` (the filesystem type) stays,
/// and `o` (mount options such as `addr=...,password=...`) keeps its option names.
pub fn volume_options(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), &*v) {
                    ("type", Value::String(_)) => {}
                    ("o", Value::String(o)) => *v = Value::String(mount_options(o)),
                    _ => *v = Value::String(REDACTED.into()),
                }
            }
        }
        Value::Null => {}
        other => *other = Value::String(REDACTED.into()),
    }
}

/// `addr=10.0.0.1,password=x,ro` -> `addr=<redacted>,password=<redacted>,ro`.
fn mount_options(o: &str) -> String {
    o.split(',')
        .map(|item| match item.split_once('=') {
            Some((name, _)) => format!("{name}={REDACTED}"),
            None => item.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `s` is a variable name as builders record it (`[A-Za-z_][A-Za-z0-9_]*`).
fn variable_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An `ENV` or `ARG` instruction (any case, leading blanks allowed) with its values replaced,
/// or `None` if `s` is not one. Only the first name is certain (a value may contain blanks and
/// `=`, and the record does not quote it), so the result is `ENV NAME=<redacted>` followed by
/// one `<redacted>` for whatever came after the first value; `ENV NAME value` becomes
/// `ENV NAME <redacted>`, and `ARG NAME` (no value) stays.
pub fn instruction(s: &str) -> Option<String> {
    let trimmed = s.trim_start();
    // `ONBUILD ENV K=V`: the instruction it defers.
    if let Some(deferred) = trimmed
        .get(..8)
        .filter(|w| w.eq_ignore_ascii_case("ONBUILD "))
        .and_then(|_| trimmed.get(8..))
    {
        let word = trimmed.get(..7).unwrap_or("ONBUILD");
        return instruction(deferred).map(|shown| format!("{word} {shown}"));
    }
    let keyword = trimmed.get(..3)?;
    if !(keyword.eq_ignore_ascii_case("ENV") || keyword.eq_ignore_ascii_case("ARG")) {
        return None;
    }
    let rest = trimmed.get(3..)?;
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let mut words = rest.split_ascii_whitespace();
    let Some(first) = words.next() else {
        return Some(keyword.to_owned());
    };
    let more = words.next().is_some();
    let shown = match first.split_once('=') {
        Some((name, _)) if variable_name(name) => format!("{keyword} {name}={REDACTED}"),
        Some(_) => format!("{keyword} {REDACTED}"),
        None if variable_name(first) => format!("{keyword} {first}"),
        None => format!("{keyword} {REDACTED}"),
    };
    Some(if more {
        format!("{shown} {REDACTED}")
    } else {
        shown
    })
}

/// The default shells a builder records before a `RUN` command, after its build arguments.
const SHELL_MARKERS: &[&str] = &[" /bin/sh -c ", " cmd /S /C "];

/// A `|N NAME=value ... command` record (a `RUN` step that saw `N` build arguments, as the
/// classic builder and BuildKit record it) with the values replaced: the first name stays, and
/// the command stays when the default shell marks where it starts (values may contain blanks,
/// so nothing else does). `None` if `s` is not one.
fn run_with_args(s: &str) -> Option<String> {
    let rest = s.strip_prefix('|')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (count, after) = rest.split_at(digits);
    if !after.starts_with(' ') {
        return None;
    }
    let first = after
        .split_ascii_whitespace()
        .next()
        .and_then(|w| w.split_once('='))
        .map(|(name, _)| name)
        .filter(|name| variable_name(name));
    let head = match first {
        Some(name) => format!("|{count} {name}={REDACTED}"),
        None => format!("|{count}"),
    };
    let command = SHELL_MARKERS
        .iter()
        .filter_map(|m| after.find(m).map(|i| (i, m)))
        .min_by_key(|(i, _)| *i)
        .and_then(|(i, _)| after.get(i..));
    Some(match command {
        Some(command) => format!("{head} {REDACTED}{command}"),
        None => format!("{head} {REDACTED}"),
    })
}

/// A builder's record of a step (image history `CreatedBy`, a build cache description) with
/// the values of `ENV`, `ARG` and build arguments replaced: `/bin/sh -c #(nop)  ENV K=V`
/// (classic builder), `ENV K=V` (BuildKit), `|2 A=x B=y /bin/sh -c make` (a `RUN` with build
/// arguments), `RUN |1 A=x /bin/sh -c make # buildkit`. Anything else is returned as it is.
pub fn created_by(s: &str) -> String {
    if let Some(i) = s.find("#(nop)") {
        let (before, nop) = s.split_at(i + "#(nop)".len());
        if let Some(shown) = instruction(nop) {
            let pad: String = nop.chars().take_while(char::is_ascii_whitespace).collect();
            return format!("{before}{pad}{shown}");
        }
        return s.to_owned();
    }
    if let Some(shown) = instruction(s) {
        return shown;
    }
    if let Some(shown) = run_with_args(s) {
        return shown;
    }
    // BuildKit: `RUN |N ...`, and any other instruction word before a record.
    let word_end = s.find(' ').unwrap_or(s.len());
    let (word, rest) = s.split_at(word_end);
    if word.eq_ignore_ascii_case("RUN") {
        if let Some(shown) = run_with_args(rest.trim_start()) {
            return format!("{word} {shown}");
        }
    }
    s.to_owned()
}

/// A `Cmd` (or `Entrypoint`) list that may be a builder's record with its values replaced:
/// `["/bin/sh", "-c", "#(nop) ", "ENV K=V"]` and `["|2", "A=x", "B=y", "/bin/sh", "-c", "make"]`
/// (here every name is certain: each argument is its own element). Other lists are unchanged.
pub fn command_record(value: &mut Value) {
    let Value::Array(items) = value else {
        return;
    };
    let nop = items
        .iter()
        .position(|i| i.as_str().is_some_and(|s| s.contains("#(nop)")));
    if let Some(at) = nop {
        for item in items.iter_mut().skip(at) {
            if let Value::String(s) = item {
                *s = created_by(s);
            }
        }
        return;
    }
    let count = items
        .first()
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix('|'))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(count) = count {
        for item in items.iter_mut().skip(1).take(count) {
            let shown = match item.as_str().and_then(|s| s.split_once('=')) {
                Some((name, _)) if variable_name(name) => format!("{name}={REDACTED}"),
                _ => REDACTED.to_owned(),
            };
            *item = Value::String(shown);
        }
    }
}

/// An exec event's `Action` or `status` (`exec_create: sh -c 'mysql -pSECRET'`) with the
/// command replaced: `exec_create: <redacted>`. Other events are unchanged.
pub fn event(value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    for key in ["Action", "status"] {
        if let Some(Value::String(s)) = map.get_mut(key) {
            if let Some((action, _)) = s.split_once(':').filter(|(a, _)| a.starts_with("exec_")) {
                *s = format!("{action}: {REDACTED}");
            }
        }
    }
}

/// Applies `f` to every object of a list, or to the object itself.
fn each(value: &mut Value, f: fn(&mut Value)) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(f),
        other => f(other),
    }
}

/// The value at `path` (object keys), if present.
fn at<'v>(value: &'v mut Value, path: &[&str]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(*key))
}

/// Every mount's volume driver options in a `Mounts` list.
fn mounts(value: Option<&mut Value>) {
    if let Some(Value::Array(list)) = value {
        for mount in list {
            if let Some(opts) = at(mount, &["VolumeOptions", "DriverConfig", "Options"]) {
                volume_options(opts);
            }
        }
    }
}

fn container(doc: &mut Value) {
    if let Some(env) = at(doc, &["Config", "Env"]) {
        env_list(env);
    }
    if let Some(config) = at(doc, &["HostConfig", "LogConfig", "Config"]) {
        log_options(config);
    }
    mounts(at(doc, &["HostConfig", "Mounts"]));
}

fn image(doc: &mut Value) {
    for section in ["Config", "ContainerConfig"] {
        let Some(config) = doc.get_mut(section) else {
            continue;
        };
        if let Some(env) = config.get_mut("Env") {
            env_list(env);
        }
        for list in ["Cmd", "Entrypoint"] {
            if let Some(cmd) = config.get_mut(list) {
                command_record(cmd);
            }
        }
        if let Some(Value::Array(onbuild)) = config.get_mut("OnBuild") {
            for item in onbuild {
                if let Value::String(s) = item {
                    *s = created_by(s);
                }
            }
        }
    }
}

fn history(entry: &mut Value) {
    if let Some(Value::String(s)) = entry.get_mut("CreatedBy") {
        *s = created_by(s);
    }
}

fn volume(doc: &mut Value) {
    if let Some(opts) = doc.get_mut("Options") {
        volume_options(opts);
    }
}

fn plugin(doc: &mut Value) {
    if let Some(env) = at(doc, &["Settings", "Env"]) {
        env_list(env);
    }
}

/// A swarm `TaskSpec`: its container's (or plugin's) `Env`, its mounts, its log driver's
/// options.
fn task_spec(spec: &mut Value) {
    for runtime in ["ContainerSpec", "PluginSpec"] {
        if let Some(env) = at(spec, &[runtime, "Env"]) {
            env_list(env);
        }
    }
    mounts(at(spec, &["ContainerSpec", "Mounts"]));
    if let Some(opts) = at(spec, &["LogDriver", "Options"]) {
        log_options(opts);
    }
}

fn service(doc: &mut Value) {
    for spec in ["Spec", "PreviousSpec"] {
        if let Some(template) = at(doc, &[spec, "TaskTemplate"]) {
            task_spec(template);
        }
    }
}

fn task(doc: &mut Value) {
    if let Some(spec) = doc.get_mut("Spec") {
        task_spec(spec);
    }
}

fn exec(doc: &mut Value) {
    if let Some(Value::Array(args)) = at(doc, &["ProcessConfig", "arguments"]) {
        for arg in args {
            *arg = Value::String(REDACTED.into());
        }
    }
}

fn disk_usage(doc: &mut Value) {
    if let Some(volumes) = doc.get_mut("Volumes") {
        each(volumes, volume);
    }
    if let Some(Value::Array(cache)) = doc.get_mut("BuildCache") {
        for record in cache {
            if let Some(Value::String(s)) = record.get_mut("Description") {
                *s = created_by(s);
            }
        }
    }
}

/// Redacts a JSON answer of the given shape in place (one object or a list of them).
pub fn answer(shape: Answer, doc: &mut Value) {
    match shape {
        Answer::Container => each(doc, container),
        Answer::Image => each(doc, image),
        Answer::History => each(doc, history),
        Answer::Volume => match doc.get_mut("Volumes") {
            // A list: `{"Volumes": [...], "Warnings": [...]}`.
            Some(list) if list.is_array() || list.is_null() => each(list, volume),
            _ => each(doc, volume),
        },
        Answer::Plugin => each(doc, plugin),
        Answer::Service => each(doc, service),
        Answer::Task => each(doc, task),
        Answer::DiskUsage => disk_usage(doc),
        Answer::Exec => each(doc, exec),
    }
}

#[cfg(test)]
mod tests;
