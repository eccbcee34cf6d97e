//! Shared helpers: typed access to JSON values with Go's decoding rules, path normalization,
//! globbing, image references, users, capabilities, sizes and query parameters.

use super::docker_json::{self, go_int, quote, GoInt, Object, Path, Struct, Value};
use super::Violation;

// ---------------------------------------------------------------------------------------------
// Violations

pub(crate) fn deny(p: &Path<'_>, reason: impl Into<String>) -> Violation {
    Violation {
        field: p.render(),
        reason: reason.into(),
    }
}

/// A refusal that a rule setting would allow: the reason ends with `(setting)`.
pub(crate) fn deny_rule(p: &Path<'_>, reason: impl AsRef<str>, setting: &str) -> Violation {
    Violation {
        field: p.render(),
        reason: format!("{} ({setting})", reason.as_ref()),
    }
}

// ---------------------------------------------------------------------------------------------
// Typed access (Go decoding rules). Callers skip `null` fields before calling these.

pub(crate) fn parse_body(body: &[u8]) -> Result<Value<'_>, Violation> {
    Ok(docker_json::parse(body)?)
}

fn type_error(v: &Value, p: &Path<'_>, want: &str) -> Violation {
    deny(
        p,
        format!(
            "expected {want}, got {} (Go cannot decode it; the daemon answers 400)",
            v.kind()
        ),
    )
}

pub(crate) fn object<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v Object<'v>, Violation> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(type_error(v, p, "an object")),
    }
}

/// An object decoded into a Go struct.
pub(crate) fn strukt<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Struct<'v>, Violation> {
    object(v, p)?
        .as_struct()
        .map_err(|e| deny(&p.field(&e.key), e.message))
}

pub(crate) fn array<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v [Value<'v>], Violation> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(type_error(v, p, "an array")),
    }
}

pub(crate) fn boolean(v: &Value, p: &Path<'_>) -> Result<bool, Violation> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_error(v, p, "a boolean")),
    }
}

pub(crate) fn string<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<&'v str, Violation> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(type_error(v, p, "a string")),
    }
}

pub(crate) fn int(v: &Value, p: &Path<'_>, ty: GoInt) -> Result<i128, Violation> {
    match v {
        Value::Number(n) => go_int(n, ty).map_err(|m| deny(p, m)),
        _ => Err(type_error(v, p, "an integer")),
    }
}

pub(crate) fn int64(v: &Value, p: &Path<'_>) -> Result<i64, Violation> {
    let n = int(v, p, GoInt::Int64)?;
    i64::try_from(n).map_err(|_| deny(p, "integer out of range"))
}

/// `[]string`: an array of strings (`null` elements are refused: Go would turn them into `""`).
pub(crate) fn str_list<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    let items = array(v, p)?;
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match it {
            Value::String(s) => out.push(s.as_str()),
            Value::Null => {
                return Err(deny(
                    &p.index(i),
                    "null element refused (Go would decode it as an empty string)",
                ))
            }
            _ => return Err(type_error(it, &p.index(i), "a string")),
        }
    }
    Ok(out)
}

/// `strslice.StrSlice`: an array of strings, or a single string (accepted by the daemon).
pub(crate) fn str_slice<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(_) => str_list(v, p),
        _ => Err(type_error(v, p, "a string or an array of strings")),
    }
}

/// `map[string]string`: exact keys; `null` values refused.
pub(crate) fn str_map<'v>(
    v: &'v Value<'v>,
    p: &Path<'_>,
) -> Result<Vec<(&'v str, &'v str)>, Violation> {
    let o = object(v, p)?;
    let mut out = Vec::with_capacity(o.len());
    for (k, val) in o.map_entries() {
        match val {
            Value::String(s) => out.push((k.as_str(), s.as_str())),
            Value::Null => {
                return Err(deny(
                    &p.key(k),
                    "null value refused (Go would decode it as an empty string)",
                ))
            }
            _ => return Err(type_error(val, &p.key(k), "a string")),
        }
    }
    Ok(out)
}

/// `map[string]struct{}` (`Volumes`, `ExposedPorts`): values must be objects (contents ignored
/// by Go) or null.
pub(crate) fn set_keys<'v>(v: &'v Value<'v>, p: &Path<'_>) -> Result<Vec<&'v str>, Violation> {
    let o = object(v, p)?;
    let mut out = Vec::with_capacity(o.len());
    for (k, val) in o.map_entries() {
        match val {
            Value::Object(_) | Value::Null => out.push(k.as_str()),
            _ => return Err(type_error(val, &p.key(k), "an object")),
        }
    }
    Ok(out)
}

/// The canonical spelling of `key` among `table` (Go's case-insensitive struct field match).
pub(crate) fn canon(key: &str, table: &[&'static str]) -> Option<&'static str> {
    table.iter().copied().find(|n| n.eq_ignore_ascii_case(key))
}

/// Refuses unknown fields of a security-relevant struct; returns each known field (canonical
/// name) with its value, skipping `null` (absent).
pub(crate) fn known_fields<'v>(
    s: &Struct<'v>,
    p: &Path<'_>,
    table: &[&'static str],
    what: &str,
) -> Result<Vec<(&'static str, &'v Value<'v>)>, Violation> {
    let mut out = Vec::with_capacity(s.entries().len());
    for (k, v) in s.entries() {
        match canon(k, table) {
            Some(c) => {
                if !v.is_null() {
                    out.push((c, v));
                }
            }
            None => {
                return Err(deny(
                    &p.field(k),
                    format!(
                        "unknown field in {what} refused (it would reach the daemon uninspected)"
                    ),
                ))
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Whether cleaned absolute `path` equals `prefix` or lies below it (whole components).
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Host paths that are never reachable through a bind prefix: only an exact listing allows the
/// path itself or any directory containing it.
const PROTECTED_HOST_PATHS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
];

/// Checks a cleaned absolute host path against `bind_sources`.
pub(crate) fn host_path_allowed(path: &str, allowed: &[String]) -> bool {
    let exact = allowed.iter().any(|a| clean_path(a) == path);
    if exact {
        return true;
    }
    let protected = path == "/" || PROTECTED_HOST_PATHS.iter().any(|s| is_under(s, path));
    if protected {
        return false;
    }
    allowed
        .iter()
        .map(|a| clean_path(a))
        .any(|a| a.starts_with('/') && is_under(path, &a))
}

/// Container paths where mounts are refused unless allowed.
pub(crate) fn is_special_target(cleaned: &str) -> bool {
    ["/proc", "/sys", "/dev"]
        .iter()
        .any(|s| is_under(cleaned, s))
}

/// A mount target: absolute, not `/`, not under `/proc`, `/sys`, `/dev` (unless allowed).
/// Returns the cleaned target.
pub(crate) fn check_target(
    target: &str,
    p: &Path<'_>,
    allow_special: bool,
) -> Result<String, Violation> {
    if !target.starts_with('/') {
        return Err(deny(
            p,
            format!("mount target {} must be an absolute path", quote(target)),
        ));
    }
    let c = clean_path(target);
    if c == "/" {
        return Err(deny(p, "mount target / is refused"));
    }
    if !allow_special && is_special_target(&c) {
        return Err(deny_rule(
            p,
            format!("mount target {c} under /proc, /sys or /dev is not allowed"),
            "allow_special_mount_targets",
        ));
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Patterns

/// Glob with `*` matching any (possibly empty) text; everything else literal.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Docker's volume/container name grammar `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_object_name(s: &str) -> bool {
    let mut b = s.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    s.len() >= 2 && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

// ---------------------------------------------------------------------------------------------
// Users and capabilities

/// The checks that close a container or service spec: a user that is root (or unset, so the
/// image decides) unless `allow_root_user`, and a missing image when `images` restricts them.
/// `runs` says who runs as that user ("the container runs", "the service's containers run").
pub(crate) fn check_user_and_image(
    user: Option<&str>,
    has_image: bool,
    user_path: &Path<'_>,
    image_path: &Path<'_>,
    runs: &str,
    rules: &super::rules::ContainerRules,
) -> Result<(), Violation> {
    if !rules.allow_root_user {
        let u = user.unwrap_or("");
        if user_is_root(u) {
            let reason = if u.is_empty() {
                format!("no User: {runs} as the image's default user, which may be root")
            } else {
                format!("User {} runs as root", quote(u))
            };
            return Err(deny_rule(user_path, reason, "allow_root_user"));
        }
    }
    if !rules.images.is_empty() && !has_image {
        return Err(deny_rule(image_path, "Image is required", "images"));
    }
    Ok(())
}

/// Whether a Docker `User` value runs as root (uid 0 or gid 0), parsed the way runc does:
/// `user[:group]`, numeric parts with `strconv.Atoi` (`00`, `+0`, `-0` are 0), `root` by name;
/// an empty user is the image default, which may be root.
pub(crate) fn user_is_root(user: &str) -> bool {
    let mut it = user.split(':');
    let u = it.next().unwrap_or("");
    let g = it.next();
    id_is_root(u, true) || g.is_some_and(|g| id_is_root(g, false))
}

fn id_is_root(s: &str, empty_is_root: bool) -> bool {
    if s.is_empty() {
        return empty_is_root;
    }
    if s == "root" {
        return true;
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b == b'0')
}

/// Go's capability normalization: ASCII upper-case, `CAP_` prefix removed. Non-ASCII refused
/// (Go's `ToUpper` maps `ſ` to `S`).
pub(crate) fn normalize_cap(c: &str) -> Option<String> {
    if !c.is_ascii() {
        return None;
    }
    let u = c.to_ascii_uppercase();
    Some(match u.strip_prefix("CAP_") {
        Some(rest) => rest.to_string(),
        None => u,
    })
}

// ---------------------------------------------------------------------------------------------
// Image references

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    /// `docker.io/library/busybox`
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// `docker.io/library/busybox:latest`, `repo@digest`, `repo:tag@digest`.
    pub fn full(&self) -> String {
        let mut s = self.repo.clone();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(|x| alnum(*x)) || !b.last().is_some_and(|x| alnum(*x)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let x = b.get(i).copied().unwrap_or(0);
        if alnum(x) {
            i += 1;
            continue;
        }
        // separator run
        let start = i;
        while b.get(i).is_some_and(|y| !alnum(*y)) {
            i += 1;
        }
        let sep = c.get(start..i).unwrap_or("");
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|y| y == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Parses and normalizes an image reference like Docker's `ParseNormalizedNamed`
/// (`busybox` -> `docker.io/library/busybox:latest`). Image IDs (`sha256:...`, 64 hex) are an
/// error, and so are untagged hex-only names (the daemon falls back to an ID-prefix search).
pub(crate) fn normalize_image(s: &str) -> Result<ImageRef, String> {
    if s.is_empty() {
        return Err("empty image reference".into());
    }
    if s.starts_with("sha256:") || (s.len() == 64 && is_hex(s)) {
        return Err(format!(
            "image ID {} cannot be matched against image patterns",
            quote(s)
        ));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => {
            let ok = d.split_once(':').is_some_and(|(alg, hex)| {
                !alg.is_empty()
                    && alg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                    && hex.len() >= 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
            });
            if !ok {
                return Err(format!("invalid digest in image reference {}", quote(s)));
            }
            (n, Some(d.to_string()))
        }
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag.get(last_slash..).and_then(|t| t.rfind(':')) {
        Some(i) => {
            let at = last_slash + i;
            let name = name_tag.get(..at).unwrap_or("");
            let tag = name_tag.get(at + 1..).unwrap_or("");
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !tag_ok {
                return Err(format!("invalid tag in image reference {}", quote(s)));
            }
            (name, Some(tag.to_string()))
        }
        None => (name_tag, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    if !valid_domain(domain) {
        return Err(format!("invalid registry in image reference {}", quote(s)));
    }
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(format!(
            "invalid repository name in image reference {} (must be lower-case)",
            quote(s)
        ));
    }
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if tag.is_none() && digest.is_none() && !name.contains('/') && is_hex(name) {
        return Err(format!(
            "untagged hex-only image name {} may be an image ID prefix; add a tag",
            quote(s)
        ));
    }
    let tag = match (&tag, &digest) {
        (None, None) => Some("latest".to_string()),
        _ => tag,
    };
    Ok(ImageRef {
        repo: format!("{domain}/{path}"),
        tag,
        digest,
    })
}

/// Whether a normalized reference matches one of the image patterns (see
/// `ContainerRules::images`).
pub(crate) fn image_matches(r: &ImageRef, patterns: &[String]) -> bool {
    let full = r.full();
    patterns.iter().any(|pat| {
        if pat.contains('*') {
            return glob(pat, &full) || glob(pat, &r.repo);
        }
        // A literal pattern: normalize it the same way (tolerating hex names with no tag).
        let parsed = normalize_image(pat).or_else(|_| {
            normalize_image(&format!("{pat}:latest")).map(|mut p| {
                p.tag = None;
                p
            })
        });
        match parsed {
            Ok(p) => {
                let explicit_tag = pat
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains(':'))
                    || pat.contains('@');
                if explicit_tag {
                    p.full() == full
                } else {
                    p.repo == r.repo
                }
            }
            Err(_) => pat == &full,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Sizes

/// go-units `RAMInBytes`: `^(\d+(\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`, binary multiples.
pub(crate) fn ram_in_bytes(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        let j = i + 1;
        i = j;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == j {
            return None;
        }
    }
    let num: f64 = s.get(..i)?.parse().ok()?;
    let mut rest = s.get(i..)?;
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut mult: f64 = 1.0;
    let mut r = rest.bytes().peekable();
    if let Some(&c) = r.peek() {
        let m = match c.to_ascii_lowercase() {
            b'k' => Some(1024f64),
            b'm' => Some(1024f64.powi(2)),
            b'g' => Some(1024f64.powi(3)),
            b't' => Some(1024f64.powi(4)),
            b'p' => Some(1024f64.powi(5)),
            _ => None,
        };
        if let Some(m) = m {
            mult = m;
            r.next();
        }
    }
    if r.peek().is_some_and(|c| c.eq_ignore_ascii_case(&b'i')) {
        r.next();
    }
    if r.peek().is_some_and(|c| c.eq_ignore_ascii_case(&b'b')) {
        r.next();
    }
    if r.next().is_some() {
        return None;
    }
    let v = num * mult;
    if !(0.0..9.2e18).contains(&v) {
        return None;
    }
    Some(v as i64)
}

/// Linux `memparse` for tmpfs `size=`: decimal digits (no leading zero, which the kernel would
/// read as octal) and an optional `k/m/g/t/p/e` suffix. `%` sizes return `None`.
pub(crate) fn kernel_size(s: &str) -> Option<i64> {
    let digits_end = s
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let digits = s.get(..digits_end)?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let shift = match s.get(digits_end..)? {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    n.checked_mul(1i64.checked_shl(shift)?)
}

// ---------------------------------------------------------------------------------------------
// Labels

fn label_skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Refuses label keys that imitate a reserved (proxy-owned) label.
pub(crate) fn check_labels(
    labels: &[(&str, &str)],
    p: &Path<'_>,
    reserved: &[String],
) -> Result<(), Violation> {
    if reserved.is_empty() {
        return Ok(());
    }
    let skeletons: Vec<String> = reserved.iter().map(|r| label_skeleton(r)).collect();
    for (k, _) in labels {
        if !k.is_ascii() {
            return Err(deny(
                &p.key(k),
                "non-ASCII label key refused while reserved labels are configured (lookalike risk)",
            ));
        }
        let sk = label_skeleton(k);
        if skeletons.contains(&sk) {
            return Err(deny(&p.key(k), "label key is reserved for the proxy"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// `local` volume driver options

/// Whether `opts` only describe a `local` tmpfs volume: keys `type` (= `tmpfs`), `device`
/// (= `tmpfs`), `o` (comma list of `size=`, `uid=`, `gid=`, `mode=`, `nr_inodes=`). Anything
/// else (`o=bind`, `type=none`, devices, nfs) can reach host files.
pub(crate) fn local_tmpfs_opts_only(opts: &[(&str, &str)]) -> Result<(), String> {
    let mut has_type = false;
    for (k, v) in opts {
        match *k {
            "type" => {
                if *v != "tmpfs" {
                    return Err(format!("type={v} is not a tmpfs volume"));
                }
                has_type = true;
            }
            "device" => {
                if *v != "tmpfs" {
                    return Err(format!("device={v} is refused (only device=tmpfs)"));
                }
            }
            "o" => {
                for o in v.split(',') {
                    let name = o.split('=').next().unwrap_or("");
                    let value_ok = o.split_once('=').is_some_and(|(_, val)| !val.is_empty());
                    if !["size", "uid", "gid", "mode", "nr_inodes"].contains(&name) || !value_ok {
                        return Err(format!("mount option {} is refused", quote(o)));
                    }
                }
            }
            other => return Err(format!("driver option {} is refused", quote(other))),
        }
    }
    if !has_type {
        return Err("driver options without type=tmpfs are refused".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Query parameters

/// Go's `httputils.BoolValue`: false only for "", "0", "no", "false", "none" (trimmed,
/// case-insensitive).
pub fn go_bool(v: &str) -> bool {
    let t = v.trim().to_ascii_lowercase();
    !matches!(t.as_str(), "" | "0" | "no" | "false" | "none")
}

/// Checks query keys: unknown keys refused (naming `unknown_setting` when a rule could allow
/// them), repeated keys refused except `list_keys`. Read values with [`first`] / [`all`].
pub(crate) fn check_query_keys(
    query: &[(String, String)],
    known: &[&'static str],
    list_keys: &[&str],
    unknown_setting: Option<&str>,
) -> Result<(), Violation> {
    for (k, _) in query {
        if !known.contains(&k.as_str()) {
            return Err(match unknown_setting {
                Some(setting) => qdeny_rule(k, "unknown query parameter", setting),
                None => qdeny(k, "unknown query parameter"),
            });
        }
    }
    check_query_repeats(query, list_keys)
}

/// Refuses repeated keys except `list_keys` (unknown keys pass).
pub(crate) fn check_query_repeats(
    query: &[(String, String)],
    list_keys: &[&str],
) -> Result<(), Violation> {
    for (i, (k, _)) in query.iter().enumerate() {
        if !list_keys.contains(&k.as_str()) && query.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
            return Err(Violation {
                field: format!("?{k}"),
                reason: "repeated query parameter refused (the daemon uses the first one)".into(),
            });
        }
    }
    Ok(())
}

/// The first value of `key` (Go's `FormValue`).
pub(crate) fn first<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// All values of `key` (Go's `r.Form[key]`).
pub(crate) fn all<'q>(query: &'q [(String, String)], key: &str) -> Vec<&'q str> {
    query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(crate) fn qdeny(key: &str, reason: impl Into<String>) -> Violation {
    Violation {
        field: format!("?{key}"),
        reason: reason.into(),
    }
}

pub(crate) fn qdeny_rule(key: &str, reason: impl AsRef<str>, setting: &str) -> Violation {
    Violation {
        field: format!("?{key}"),
        reason: format!("{} ({setting})", reason.as_ref()),
    }
}

/// `strconv.ParseInt(s, 10, 64)`; the empty string is 0 (Go's `Int64ValueOrZero`). Invalid
/// text is refused (the daemon would silently use 0).
pub(crate) fn query_int(key: &str, v: &str) -> Result<i64, Violation> {
    if v.is_empty() {
        return Ok(0);
    }
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(qdeny(key, format!("{} is not an integer", quote(v))));
    }
    v.parse::<i64>()
        .map_err(|_| qdeny(key, format!("{} is out of range", quote(v))))
}
