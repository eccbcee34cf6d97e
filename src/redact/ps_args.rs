//! Which `ps` options `container.top` may pass (`?ps_args=`) under `redact_env`.
//!
//! The daemon runs the host's `ps` with the client's `ps_args` split at each blank, and answers
//! with its columns; an environment printed there (`ps e`, `ps eww`, `auxe`) cannot be told
//! apart from a command's arguments, so it cannot be redacted: such requests are refused. What
//! may pass is an allowlist grammar, not a list of bad spellings:
//!
//! - UNIX options (`-ef`, `-eLf`, `-o pid,args`): a bundle of the letters in [`UNIX_LETTERS`],
//!   optionally ending in `o`/`O` with a format list (in the same word or the next);
//! - BSD options (`aux`, `axjf`, `o pid,comm`): the letters in [`BSD_LETTERS`] (never `e`,
//!   which adds the environment), optionally ending in `o`/`O` with a format list;
//! - GNU options: `--forest`, `--format LIST`, `--format=LIST`;
//! - a format list: [`FORMAT_KEYWORDS`] separated by commas, each with an optional
//!   `=header` of letters, digits, `%`, `_` and `-`.
//!
//! procps reads every option word again as BSD options when the first reading fails (the
//! `ps -aux` fallback): then the `e` of `-ef` shows environments. The letters admitted are the
//! ones no combination of which fails procps' first reading (`-H` with `-m` does: neither is
//! admitted), which `tests/secrets_e2e.rs` checks against the host's `ps`.

/// UNIX-style option letters admitted in a `-` word: process selection (`e`, `A`, `a`, `d`,
/// `N`) and output formats (`f`, `F`, `l`, `y`, `j`, `c`, `M`), threads (`L`, `T`), width
/// (`w`).
pub const UNIX_LETTERS: &str = "eAadNfFlyjcMLTw";

/// BSD-style option letters admitted in a word without `-`: selection (`a`, `x`), formats
/// (`u`, `j`, `l`, `s`, `v`, `Z`), `f` (forest), `r` (running), `w` (wide), `c` (true command
/// name), `n` (numeric), `S` (children's times). Not `e` (the environment).
pub const BSD_LETTERS: &str = "axujlsvZfrwcnS";

/// `ps -o` keywords admitted: identifiers, users and groups, the command (`comm`, `args`),
/// times, resource use, state, terminal and scheduling. None prints an environment.
pub const FORMAT_KEYWORDS: &[&str] = &[
    "pid",
    "ppid",
    "pgid",
    "pgrp",
    "sid",
    "sess",
    "tid",
    "lwp",
    "spid",
    "nlwp",
    "uid",
    "euid",
    "ruid",
    "suid",
    "fuid",
    "gid",
    "egid",
    "rgid",
    "sgid",
    "fgid",
    "user",
    "euser",
    "ruser",
    "suser",
    "fuser",
    "uname",
    "group",
    "egroup",
    "rgroup",
    "sgroup",
    "fgroup",
    "comm",
    "ucmd",
    "ucomm",
    "cmd",
    "args",
    "command",
    "%cpu",
    "pcpu",
    "c",
    "cp",
    "%mem",
    "pmem",
    "rss",
    "rssize",
    "rsz",
    "vsz",
    "vsize",
    "sz",
    "size",
    "stat",
    "s",
    "state",
    "tty",
    "tt",
    "tname",
    "time",
    "cputime",
    "etime",
    "etimes",
    "start",
    "stime",
    "lstart",
    "bsdstart",
    "start_time",
    "nice",
    "ni",
    "pri",
    "priority",
    "rtprio",
    "psr",
    "cls",
    "class",
    "policy",
    "wchan",
    "f",
    "flags",
    "label",
    "maj_flt",
    "min_flt",
];

/// With a format list, the letters admitted: selection, threads and width only. A format
/// list beside another format option (`-c -o pid,args`) fails procps' first reading, and
/// its BSD reading of `-ec` prints environments.
pub const UNIX_LETTERS_WITH_FORMAT: &str = "eAadNLTw";

/// BSD letters admitted beside a format list (selection and width).
pub const BSD_LETTERS_WITH_FORMAT: &str = "axrw";

/// Whether `ps_args` has a format list (`-o`, `o`, `-O`, `O`, `--format`).
fn has_format_list(ps_args: &str) -> bool {
    ps_args.split(' ').any(|word| {
        if let Some(long) = word.strip_prefix("--") {
            long == "format" || long.starts_with("format=")
        } else {
            let letters = word.strip_prefix('-').unwrap_or(word);
            letters.contains(['o', 'O'])
        }
    })
}

/// Checks `ps_args` against the grammar; the error says which word is refused and why.
pub fn check(ps_args: &str) -> Result<(), String> {
    if ps_args.is_empty() {
        // The daemon's default, `-ef`.
        return Ok(());
    }
    let (unix_letters, bsd_letters) = if has_format_list(ps_args) {
        (UNIX_LETTERS_WITH_FORMAT, BSD_LETTERS_WITH_FORMAT)
    } else {
        (UNIX_LETTERS, BSD_LETTERS)
    };
    let mut after_format = false;
    for word in ps_args.split(' ') {
        if std::mem::take(&mut after_format) {
            format_list(word)?;
            continue;
        }
        let format = if let Some(long) = word.strip_prefix("--") {
            long_option(long)?
        } else if let Some(unix) = word.strip_prefix('-') {
            bundle(word, unix, unix_letters, "UNIX")?
        } else if word.is_empty() {
            return Err("an empty ps option (two blanks in a row) is refused".into());
        } else {
            bundle(word, word, bsd_letters, "BSD")?
        };
        match format {
            Format::None => {}
            Format::Inline(list) => format_list(list)?,
            Format::Next => after_format = true,
        }
    }
    if after_format {
        return Err("a ps format option needs a format list".into());
    }
    Ok(())
}

/// Where an option word's format list is.
enum Format<'a> {
    None,
    Inline(&'a str),
    Next,
}

fn long_option(long: &str) -> Result<Format<'_>, String> {
    match long.split_once('=') {
        None if long == "forest" => Ok(Format::None),
        None if long == "format" => Ok(Format::Next),
        Some(("format", list)) => Ok(Format::Inline(list)),
        _ => Err(format!(
            "ps option \"--{long}\" is not one that cannot show environments \
             (--forest, --format)"
        )),
    }
}

/// A bundle of option letters (`letters` after any `-`), ending perhaps in `o`/`O` and a list.
fn bundle<'a>(
    word: &str,
    letters: &'a str,
    allowed: &str,
    style: &str,
) -> Result<Format<'a>, String> {
    if letters.is_empty() {
        return Err(format!("ps option {word:?} names no option"));
    }
    for (i, c) in letters.char_indices() {
        if c == 'o' || c == 'O' {
            let rest = letters.get(i + 1..).unwrap_or("");
            return Ok(if rest.is_empty() {
                Format::Next
            } else {
                Format::Inline(rest)
            });
        }
        if !allowed.contains(c) {
            let what = if c == 'e' && style == "BSD" {
                "prints every process's environment".to_owned()
            } else {
                "is not one known not to show environments".to_owned()
            };
            return Err(format!(
                "{style} ps option {c:?} in {word:?} {what} (allowed {style} options: \
                 {allowed}, o/O with a format list)"
            ));
        }
    }
    Ok(Format::None)
}

fn format_list(list: &str) -> Result<(), String> {
    if list.is_empty() {
        return Err("an empty ps format list is refused".into());
    }
    for item in list.split(',') {
        let (keyword, header) = match item.split_once('=') {
            Some((k, h)) => (k, Some(h)),
            None => (item, None),
        };
        if !FORMAT_KEYWORDS.contains(&keyword) {
            return Err(format!(
                "ps format keyword {keyword:?} is not one that cannot show environments"
            ));
        }
        if let Some(header) = header {
            if !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%_-".contains(&b))
            {
                return Err(format!("ps column header {header:?} is refused"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn safe_spellings_pass() {
        for ok in [
            "",
            "-ef",
            "-e",
            "-A",
            "-eLf",
            "-efww",
            "aux",
            "ax",
            "axjf",
            "auxww",
            "-o pid,args",
            "-opid,comm",
            "-eo pid,user,args",
            "o pid,comm",
            "axo pid=PID,comm=",
            "-eo pid,args --forest",
            "-eLo pid,args",
            "--forest",
            "--format pid,args",
            "--format=pid,%cpu",
            "-ef --forest",
            "-F",
            "-ely",
            "-O args",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn environment_spellings_are_refused() {
        for bad in [
            "e",
            "eww",
            "auxe",
            "aux e",
            "axe",
            "-e e",
            "ef",
            "ex",
            "-ef e",
            "-H -em",
            "-o pid,environ",
            "-o env",
            "o environ",
            "-oenviron",
            "--format=env",
            "--format env",
            "-o pid=x,environ",
            "-o pid=a,b",
            "-o",
            "--format",
            "-",
            " ",
            "-ef  aux",
            "-ec -o pid,args",
            "-f -o pid",
            "aux o pid",
            "-o pid -F",
            "-ef\taux",
            "--sort=pid",
            "-p 1",
            "-u root",
            "-eH",
            "-m",
            "axH",
            "axm",
            "L",
            "-V",
            "--help",
            "-o pid -e e",
        ] {
            assert!(check(bad).is_err(), "{bad:?} passed");
        }
        assert!(check("auxe").unwrap_err().contains("environment"));
    }
}
