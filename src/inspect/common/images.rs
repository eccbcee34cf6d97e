//! Image references: Docker's normalization and the match against image patterns.

use super::names::{glob, is_hex};
use crate::inspect::docker_json::quote;

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
            if !valid_digest(d) {
                return Err(format!("invalid digest in image reference {}", quote(s)));
            }
            (n, Some(d.to_string()))
        }
        None => (s, None),
    };
    let (name, tag) = split_tag(s, name_tag)?;
    let repo = normalize_repo(s, name)?;
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
    Ok(ImageRef { repo, tag, digest })
}

/// `algorithm:hex` with a known-shaped algorithm and at least 32 encoded characters.
fn valid_digest(d: &str) -> bool {
    d.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && hex.len() >= 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    })
}

/// Splits `name[:tag]` (the tag is after the last `:` of the last path component); `s` is the
/// whole reference, for messages.
fn split_tag<'a>(s: &str, name_tag: &'a str) -> Result<(&'a str, Option<String>), String> {
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let Some(i) = name_tag.get(last_slash..).and_then(|t| t.rfind(':')) else {
        return Ok((name_tag, None));
    };
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
    Ok((name, Some(tag.to_string())))
}

/// The repository `domain/path` of `name`, with Docker's defaults (`docker.io`, `library/`);
/// `s` is the whole reference, for messages.
fn normalize_repo(s: &str, name: &str) -> Result<String, String> {
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
    Ok(format!("{domain}/{path}"))
}

/// A glob image pattern with Docker's defaults where it names no registry, as a reference
/// would get them: `myorg/*` is `docker.io/myorg/*`, `busybox*` is `docker.io/library/busybox*`.
/// A pattern whose first component has a wildcard (`*`, `*/app`) is taken as written: it
/// already spans registries.
fn glob_with_defaults(pat: &str) -> std::borrow::Cow<'_, str> {
    let first = pat.split('/').next().unwrap_or_default();
    if first.contains('*') && (pat.contains('/') || first == "*") {
        return pat.into();
    }
    match pat.split_once('/') {
        Some(("index.docker.io", rest)) => format!("docker.io/{rest}").into(),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => pat.into(),
        Some(_) => format!("docker.io/{pat}").into(),
        None => format!("docker.io/library/{pat}").into(),
    }
}

/// Whether a normalized reference matches one of the image patterns (see
/// `ContainerRules::images`).
pub(crate) fn image_matches(r: &ImageRef, patterns: &[String]) -> bool {
    let full = r.full();
    patterns.iter().any(|pat| {
        if pat.contains('*') {
            let pat = glob_with_defaults(pat);
            return glob(&pat, &full) || glob(&pat, &r.repo);
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
