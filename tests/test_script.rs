//! The test command itself: `bash scripts/test.sh`, as the README gives it and `.ci/run` calls
//! it, must work as written as root without sudo installed and as a normal user (through sudo),
//! and setting fuzzing up (cargo-fuzz, a C++ compiler from apt) must never fail a green run,
//! while a fuzz target that crashes must.
//!
//! The script is run for real (as root, and as uid 65534 through `setpriv`) with a PATH of
//! symlinks to the machine's tools minus the ones a scenario takes away (`sudo`, `cargo-fuzz`,
//! the C++ compilers, ...) plus fakes (`sudo`, `cargo`, `apt-get`) that record how they were
//! called. Most scenarios use the plan mode (`SOCKWARDEN_TEST_PLAN=1`: print the decisions, do
//! nothing); the fuzz scenarios run the real fuzz stage alone (`SOCKWARDEN_TEST_STAGES=fuzz`)
//! with fake tools, so no daemon and no network are needed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const NOBODY: &str = "65534";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("scripts/test.sh")
}

/// A world-readable temp dir in /tmp (uid 65534 must reach what is in it).
fn open_tempdir(prefix: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A directory to use as the whole PATH: a symlink to every executable on the current PATH
/// (the first of each name), except `without`. Fakes are added with [`fake`].
struct Bin {
    dir: TempDir,
}

impl Bin {
    fn without(without: &[&str]) -> Bin {
        let dir = open_tempdir("swbin.");
        let mut seen: HashSet<std::ffi::OsString> = HashSet::new();
        let path = std::env::var_os("PATH").unwrap_or_default();
        for entry in std::env::split_paths(&path) {
            let Ok(read) = std::fs::read_dir(&entry) else {
                continue;
            };
            for file in read.flatten() {
                let name = file.file_name();
                if seen.contains(&name) || without.iter().any(|w| name == *w) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(file.path()) else {
                    continue;
                };
                if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                    std::os::unix::fs::symlink(file.path(), dir.path().join(&name)).unwrap();
                    seen.insert(name);
                }
            }
        }
        for must in ["bash", "id", "env", "sort", "sed", "tr", "awk", "mktemp"] {
            assert!(
                seen.contains(std::ffi::OsStr::new(must)),
                "no {must} on PATH"
            );
        }
        Bin { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn has(&self, name: &str) -> bool {
        self.path().join(name).exists()
    }

    /// Writes an executable shell script `name` into the PATH directory.
    fn fake(&self, name: &str, body: &str) {
        let file = self.path().join(name);
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Where fakes record their calls: a file anyone may write (the fakes may run as uid 65534).
struct Record {
    _dir: TempDir,
    file: PathBuf,
}

impl Record {
    fn new() -> Record {
        let dir = open_tempdir("swrec.");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let file = dir.path().join("calls");
        Record { _dir: dir, file }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }

    /// Shell code appending `TAG arg...` (one line per call) to the record.
    fn append(&self, tag: &str) -> String {
        format!(
            "printf '%s' '{tag}' >>'{f}'; for a in \"$@\"; do printf ' %s' \"$a\" >>'{f}'; done; echo >>'{f}'",
            f = self.file.display()
        )
    }
}

struct Run {
    bin: PathBuf,
    as_nobody: bool,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Run {
    fn new(bin: &Bin) -> Run {
        Run {
            bin: bin.path().to_path_buf(),
            as_nobody: false,
            env: Vec::new(),
            args: Vec::new(),
        }
    }
    fn nobody(mut self) -> Run {
        self.as_nobody = true;
        self
    }
    fn env(mut self, key: &str, value: &str) -> Run {
        self.env.push((key.into(), value.into()));
        self
    }
    fn plan(self) -> Run {
        self.env("SOCKWARDEN_TEST_PLAN", "1")
    }
    fn args(mut self, args: &[&str]) -> Run {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    fn command(&self, program: &[&str]) -> Command {
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"]);
            c.args(program);
            c
        } else {
            let mut c = Command::new(program[0]);
            c.args(&program[1..]);
            c
        };
        // What the outer test run exported must not steer the script under test.
        for (key, _) in std::env::vars() {
            if key.starts_with("SOCKWARDEN_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("PATH", &self.bin).current_dir(repo());
        if self.as_nobody {
            cmd.env("HOME", "/nonexistent")
                .env_remove("CARGO_HOME")
                .env_remove("RUSTUP_HOME");
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn output(&self) -> Output {
        let script = script();
        let mut program = vec!["/bin/bash", script.to_str().unwrap()];
        program.extend(self.args.iter().map(String::as_str));
        self.command(&program)
            .output()
            .expect("run scripts/test.sh")
    }
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last non-empty lines of stdout, last first.
fn last_lines(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .map(str::to_owned)
        .collect()
}

/// The real cargo, for fakes that pass calls through.
fn real_cargo() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("cargo"))
        .find(|p| p.is_file())
        .expect("cargo on PATH")
}

/// A fake `cargo` in `bin`: `fuzz ...` goes to `fuzz` (shell code), `install ...` to
/// `install`, `fetch ...` to `fetch`; anything else runs the real cargo. Every call is recorded.
fn fake_cargo(bin: &Bin, record: &Record, fuzz: &str, install: &str, fetch: &str) {
    bin.fake(
        "cargo",
        &format!(
            "{rec}\ncase \"$1\" in\nfuzz) {fuzz} ;;\ninstall) {install} ;;\nfetch) {fetch} ;;\n*) exec '{real}' \"$@\" ;;\nesac",
            rec = record.append("cargo"),
            real = real_cargo().display(),
        ),
    );
}

const NO_CARGO_FUZZ: &str = "echo 'error: no such command: `fuzz`' >&2; exit 101";
const INSTALL_FAILS: &str =
    "echo 'error: failed to download from `https://index.crates.io/config.json` (fake)' >&2; exit 101";

#[test]
fn as_root_without_sudo_the_plan_needs_no_sudo_and_lists_what_it_installs() {
    let bin = Bin::without(&["sudo", "dockerd", "curl"]);
    assert!(!bin.has("sudo"));
    let record = Record::new();
    fake_cargo(&bin, &record, NO_CARGO_FUZZ, INSTALL_FAILS, "exit 0");
    let out = Run::new(&bin).plan().output();
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("plan: running as root (uid 0): no sudo needed"),
        "{}",
        show(&out)
    );
    assert!(!text.contains("re-exec"), "{}", show(&out));
    assert!(
        text.contains(
            "plan: would install (required; a failure stops the run): apt-get install curl docker.io"
        ),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("plan: fuzz: cargo-fuzz missing: would run cargo install --locked cargo-fuzz; if that fails, fuzzing is skipped"),
        "{}",
        show(&out)
    );
    assert!(
        text.contains("would run inspect normalize for 15 s each"),
        "{}",
        show(&out)
    );
    // A plan does nothing: cargo was only asked whether cargo-fuzz exists.
    let calls = record.text();
    assert!(!calls.contains("cargo install"), "{calls}");
    assert!(
        calls.lines().all(|l| l.starts_with("cargo fuzz --version")),
        "{calls}"
    );

    // With a test selection: no fuzzing, the selection goes to cargo test.
    let out = Run::new(&bin)
        .plan()
        .args(&["cli_e2e", "--", "run_rm"])
        .output();
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("plan: fuzz: not run (a test selection was given)"));
    assert!(stdout(&out).contains("would run cargo test --no-fail-fast cli_e2e -- run_rm"));
}

#[test]
fn as_a_user_without_sudo_it_stops_with_a_clear_message() {
    let bin = Bin::without(&["sudo"]);
    for run in [Run::new(&bin).nobody().plan(), Run::new(&bin).nobody()] {
        let out = run.output();
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains("scripts/test.sh: error: must run as root (it starts a private dockerd), and sudo is not installed; run it as root"),
            "{}",
            show(&out)
        );
        assert!(!stdout(&out).contains("summary:"), "{}", show(&out));
        assert!(!err.contains("command not found"), "{}", show(&out));
    }
}

#[test]
fn as_a_user_with_sudo_it_reexecs_through_sudo() {
    let bin = Bin::without(&["sudo"]);
    let record = Record::new();
    bin.fake("sudo", &format!("{}\nexit 7", record.append("sudo")));
    let script = script();
    let script = script.display();

    // The plan says what it would run, and does not run it.
    let out = Run::new(&bin)
        .nobody()
        .plan()
        .env("SOCKWARDEN_SKIP_LINT", "1")
        .args(&["cli_e2e", "--", "run_rm"])
        .output();
    assert!(out.status.success(), "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("plan: not root (uid 65534): would re-exec through sudo: sudo -- env PATH="),
        "{}",
        show(&out)
    );
    assert!(
        text.contains(&format!("bash {script} cli_e2e -- run_rm")),
        "{}",
        show(&out)
    );
    assert_eq!(record.text(), "", "a plan must not call sudo");

    // For real: sudo runs the same script with the same arguments, the PATH and the settings;
    // its exit status is the command's.
    let out = Run::new(&bin)
        .nobody()
        .env("SOCKWARDEN_SKIP_LINT", "1")
        .args(&["cli_e2e", "--", "run_rm"])
        .output();
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let calls = record.text();
    let call = calls.lines().next().unwrap_or_default();
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(
        call.starts_with(&format!("sudo -- env PATH={} ", bin.path().display())),
        "{call}"
    );
    for needed in [
        " SOCKWARDEN_TEST_REEXEC=1 ",
        " SOCKWARDEN_SKIP_LINT=1 ",
        &format!(" bash {script} cli_e2e -- run_rm"),
    ] {
        assert!(call.contains(needed), "{needed:?} missing in {call}");
    }
    assert!(
        call.ends_with(&format!("bash {script} cli_e2e -- run_rm")),
        "{call}"
    );

    // Re-executed but still not root (a sudo that did not give root): an error, not a loop.
    let out = Run::new(&bin)
        .nobody()
        .env("SOCKWARDEN_TEST_REEXEC", "1")
        .output();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("re-executed through sudo but still not root"),
        "{}",
        show(&out)
    );
    assert_eq!(record.text().lines().count(), 1, "sudo called again");
}

#[test]
fn a_failing_cargo_fuzz_install_skips_fuzzing_and_the_run_passes() {
    let bin = Bin::without(&["sudo", "cargo-fuzz"]);
    let record = Record::new();
    fake_cargo(&bin, &record, NO_CARGO_FUZZ, INSTALL_FAILS, "exit 0");
    let out = Run::new(&bin)
        .env("SOCKWARDEN_TEST_STAGES", "fuzz")
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let last = last_lines(&out);
    assert_eq!(last[0], "summary: 0 passed, 0 failed", "{}", show(&out));
    assert!(
        last[1].starts_with(
            "skipped: fuzzing (cargo-fuzz is not installed and `cargo install --locked cargo-fuzz` failed (exit 101"
        ),
        "{}",
        show(&out)
    );
    let calls = record.text();
    assert!(
        calls.contains("cargo install --locked cargo-fuzz"),
        "{calls}"
    );
    assert!(!calls.contains("cargo fuzz run"), "{calls}");
    assert!(!calls.contains("cargo fuzz build"), "{calls}");
}

#[test]
fn a_failing_optional_apt_install_skips_fuzzing_and_the_run_passes() {
    let bin = Bin::without(&["sudo", "c++", "g++", "clang++"]);
    let record = Record::new();
    fake_cargo(&bin, &record, NO_CARGO_FUZZ, INSTALL_FAILS, "exit 0");
    bin.fake(
        "apt-get",
        &format!(
            "{}\n[ \"$1\" = update ] && exit 0\necho 'E: Unable to locate package g++ (fake)' >&2; exit 100",
            record.append("apt-get")
        ),
    );
    // The plan names the optional package and what a failure means.
    let out = Run::new(&bin)
        .plan()
        .env("SOCKWARDEN_TEST_STAGES", "fuzz")
        .output();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("plan: would install (optional, for fuzzing; a failure skips fuzzing): apt-get install g++"),
        "{}",
        show(&out)
    );
    assert!(
        !record.text().contains("apt-get"),
        "a plan must not install"
    );

    let out = Run::new(&bin)
        .env("SOCKWARDEN_TEST_STAGES", "fuzz")
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let last = last_lines(&out);
    assert_eq!(last[0], "summary: 0 passed, 0 failed", "{}", show(&out));
    assert_eq!(
        last[1],
        "skipped: fuzzing (no C++ compiler, and apt-get install g++ failed)",
        "{}",
        show(&out)
    );
    let calls = record.text();
    assert!(calls.contains("apt-get update"), "{calls}");
    assert!(
        calls.contains("install -y --no-install-recommends g++"),
        "{calls}"
    );
    assert!(!calls.contains("cargo install"), "{calls}");
}

#[test]
fn a_crashing_fuzz_target_fails_the_run() {
    let bin = Bin::without(&["sudo", "cargo-fuzz"]);
    let record = Record::new();
    // A fake cargo-fuzz: builds, runs `inspect` fine and crashes on `normalize`.
    let fuzz = "case \"$2\" in\n\
        --version) echo 'cargo-fuzz 0.12.0 (fake)' ;;\n\
        build) echo 'built (fake)' ;;\n\
        run) if [ \"$3\" = \"$CRASH\" ]; then echo '==1== ERROR: libFuzzer: deadly signal (fake)'; exit 77; fi; echo 'Done 1234 runs in 1 second(s)' ;;\n\
        *) exit 2 ;;\n\
        esac";
    fake_cargo(&bin, &record, fuzz, INSTALL_FAILS, "exit 0");

    let out = Run::new(&bin)
        .env("SOCKWARDEN_TEST_STAGES", "fuzz")
        .env("SOCKWARDEN_FUZZ_SECONDS", "1")
        .env("CRASH", "normalize")
        .output();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let last = last_lines(&out);
    assert_eq!(last[0], "summary: 1 passed, 1 failed", "{}", show(&out));
    assert!(!stdout(&out).contains("skipped:"), "{}", show(&out));
    assert!(
        stdout(&out)
            .contains("test result: ok. 1 passed; 0 failed; fuzz target inspect: Done 1234 runs"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains("fuzz target normalize failed (exit 77)"),
        "{}",
        show(&out)
    );
    let calls = record.text();
    assert!(calls.contains("cargo fuzz build"), "{calls}");
    assert!(calls.contains("cargo fuzz run normalize"), "{calls}");
    assert!(calls.contains("-max_total_time=1"), "{calls}");
    assert!(!calls.contains("cargo install"), "{calls}");

    // The same targets without a crash: green, nothing skipped.
    let out = Run::new(&bin)
        .env("SOCKWARDEN_TEST_STAGES", "fuzz")
        .env("SOCKWARDEN_FUZZ_SECONDS", "1")
        .env("CRASH", "none")
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(last_lines(&out)[0], "summary: 2 passed, 0 failed");
    assert!(!stdout(&out).contains("skipped:"), "{}", show(&out));
}

/// The README's test command: the first code block's line that runs scripts/test.sh.
fn readme_test_command() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut lines = readme.lines();
    lines
        .by_ref()
        .find(|l| l.starts_with("```"))
        .expect("a code block in README.md");
    let block: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    let commands: Vec<&str> = block
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.starts_with('#') && l.contains("scripts/test.sh"))
        .collect();
    assert_eq!(
        commands.len(),
        1,
        "README's first code block must hold one test command: {block:?}"
    );
    commands[0].to_owned()
}

#[test]
fn readme_and_ci_use_the_same_test_command_without_sudo() {
    let command = readme_test_command();
    assert!(
        !command.split_whitespace().any(|w| w == "sudo"),
        "README's test command must not need sudo: {command:?}"
    );
    assert_eq!(command, "bash scripts/test.sh");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    let last = ci
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap();
    assert_eq!(last, command, ".ci/run must run the README's test command");

    // And the command works as written as root on a PATH without sudo (planned, not run).
    let bin = Bin::without(&["sudo"]);
    let out = Run::new(&bin)
        .plan()
        .command(&["/bin/bash", "-c", &command])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("plan: running as root (uid 0): no sudo needed"));
}
