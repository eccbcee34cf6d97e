//! Name patterns: globs, hex IDs, Docker object names.

/// Glob with `*` matching any (possibly empty) text; everything else literal. The one glob
/// matcher: policy patterns (operations, paths) and inspection allowlists (images, networks,
/// sysctls) both use it. Iterative, linear backtracking, no recursion.
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

/// Whether a namespace mode reaches outside the container: `host`, or `container:NAME` (another
/// container's namespace), in any case. Shared by the inspectors and `audit suggest`.
pub(crate) fn is_host_like(mode: &str) -> bool {
    mode.eq_ignore_ascii_case("host")
        || mode
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("container:"))
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
