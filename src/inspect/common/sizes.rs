//! Sizes: go-units `RAMInBytes` and the kernel's `memparse`.

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
