//! Users and capabilities.

use super::json::deny_rule;
use crate::inspect::docker_json::{quote, Path};
use crate::inspect::rules::ContainerRules;
use crate::inspect::Violation;

/// The checks that close a container or service spec: a user that is root (or unset, so the
/// image decides) unless `allow_root_user`, and a missing image when `images` restricts them.
/// `runs` says who runs as that user ("the container runs", "the service's containers run").
pub(crate) fn check_user_and_image(
    user: Option<&str>,
    has_image: bool,
    user_path: &Path<'_>,
    image_path: &Path<'_>,
    runs: &str,
    rules: &ContainerRules,
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
