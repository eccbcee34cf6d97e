//! Shared helpers for sockwarden's integration tests.
//!
//! The tests need a private Docker daemon: `scripts/test.sh` starts one and exports
//! `SOCKWARDEN_TEST_DOCKER_SOCK` (its unix socket) and `SOCKWARDEN_TEST_IMAGE` (a busybox image
//! imported from busybox-static). Without them every test that needs the daemon fails loudly.
//!
//! Use from a test file with `mod support;` and `use support::*;`.

// Test helpers: panicking on a broken environment is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

pub mod builds;
pub mod isolation;

/// The proxy binary under test.
pub const SOCKWARDEN: &str = env!("CARGO_BIN_EXE_sockwarden");

/// Default time limit for one docker CLI invocation. A hung proxy (a lost half-close, a stream
/// that never ends) turns into a test failure with the partial output instead of a hung suite.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(90);

/// How long `Proxy::start` waits for the socket to answer `GET /_ping` with 200.
pub const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The private daemon's socket, from `SOCKWARDEN_TEST_DOCKER_SOCK`. Panics when it is unset:
/// these tests must fail, not silently pass, without a daemon.
pub fn daemon_socket() -> PathBuf {
    match std::env::var_os("SOCKWARDEN_TEST_DOCKER_SOCK") {
        Some(s) if !s.is_empty() => {
            let p = PathBuf::from(s);
            assert!(
                p.exists(),
                "SOCKWARDEN_TEST_DOCKER_SOCK={} does not exist; run scripts/test.sh (needs a private dockerd)",
                p.display()
            );
            p
        }
        _ => panic!(
            "SOCKWARDEN_TEST_DOCKER_SOCK is not set: run scripts/test.sh (needs a private dockerd)"
        ),
    }
}

/// The fixture image (busybox-static, `--network none` only), from `SOCKWARDEN_TEST_IMAGE`.
pub fn test_image() -> String {
    match std::env::var("SOCKWARDEN_TEST_IMAGE") {
        Ok(s) if !s.is_empty() => s,
        _ => "sw-busybox:latest".to_string(),
    }
}

/// `unix://<path>`, as used in `DOCKER_HOST`.
pub fn docker_host(sock: &Path) -> String {
    format!("unix://{}", sock.display())
}

// -------------------------------------------------------------------------------------------
// Unique names and cleanup
// -------------------------------------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call: `sw-<tag>-<pid>-<n>`. Valid as a container name and
/// as an image repository when `tag` is lowercase `[a-z0-9-]`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("sw-{}-{}-{}", tag, std::process::id(), n)
}

/// Removes the containers and images it handed out (directly on the daemon, bypassing the
/// proxy) when dropped, including when the test panics.
pub struct Cleanup {
    containers: Mutex<Vec<String>>,
    images: Mutex<Vec<String>>,
}

impl Cleanup {
    pub fn new() -> Self {
        Cleanup {
            containers: Mutex::new(Vec::new()),
            images: Mutex::new(Vec::new()),
        }
    }

    /// A fresh unique container name that is `docker rm -f`-ed on drop.
    pub fn container(&self, tag: &str) -> String {
        let name = unique_name(tag);
        self.add_container(&name);
        name
    }

    /// A fresh unique image reference (`sw-<tag>-<pid>-<n>:latest`) that is `docker rmi -f`-ed on drop.
    pub fn image(&self, tag: &str) -> String {
        let name = format!("{}:latest", unique_name(tag));
        self.add_image(&name);
        name
    }

    pub fn add_container(&self, name_or_id: &str) {
        lock(&self.containers).push(name_or_id.to_string());
    }

    pub fn add_image(&self, reference: &str) {
        lock(&self.images).push(reference.to_string());
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(sock) = std::env::var_os("SOCKWARDEN_TEST_DOCKER_SOCK").map(PathBuf::from) else {
            return;
        };
        let containers = std::mem::take(&mut *lock(&self.containers));
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(String::as_str));
            let _ = Docker::new(&sock)
                .timeout(Duration::from_secs(60))
                .try_run(&args);
        }
        let images = std::mem::take(&mut *lock(&self.images));
        if !images.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(images.iter().map(String::as_str));
            let _ = Docker::new(&sock)
                .timeout(Duration::from_secs(60))
                .try_run(&args);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// -------------------------------------------------------------------------------------------
// The proxy process
// -------------------------------------------------------------------------------------------

/// A running `sockwarden serve` with its own temp dir, config and socket.
/// Dropping it kills the process; if the test is panicking, its stderr is printed first.
pub struct Proxy {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proxy {
    /// Default config: upstream = the private daemon, one unix listener (mode 0600), and a
    /// client for the test's own uid with the built-in `allow-all` policy (see
    /// [`allow_all_client_toml`]), so the proxy is fully transparent.
    pub fn start() -> Proxy {
        Self::start_with(&allow_all_client_toml(), &daemon_socket())
    }

    /// `extra_toml` is written at the top of the config, before the generated `[upstream]`
    /// table and `[[listen]]` entry, so it may hold top-level keys, other tables (`[server]`,
    /// `[log]`, ...) and more `[[listen]]` entries, but not an `[upstream]` table (use
    /// [`Proxy::start_config`] for full control).
    pub fn start_with(extra_toml: &str, upstream: &Path) -> Proxy {
        Self::start_config(|dir| {
            format!(
                "{extra}\n\n[upstream]\nsocket = {up}\n\n[[listen]]\nunix = {sock}\nmode = \"0600\"\n",
                extra = extra_toml,
                up = toml_str(&upstream.display().to_string()),
                sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            )
        })
    }

    /// Full control: `make_config(dir)` returns the whole config file; it must listen on the
    /// unix socket `dir/proxy.sock`, which is what readiness is checked on.
    pub fn start_config(make_config: impl FnOnce(&Path) -> String) -> Proxy {
        Self::start_config_args(make_config, &[])
    }

    /// As [`Proxy::start_config`], with extra command-line arguments after `serve --config FILE`.
    pub fn start_config_args(make_config: impl FnOnce(&Path) -> String, args: &[&str]) -> Proxy {
        Self::start_launched(|_| Vec::new(), make_config, args)
    }

    /// As [`Proxy::start_config_args`], with sockwarden started through `launcher(dir)` (a
    /// program and its arguments, e.g. one that binds a socket and passes it as systemd does,
    /// then execs the rest of its command line: `launcher... SOCKWARDEN serve --config FILE
    /// args...`).
    pub fn start_launched(
        launcher: impl FnOnce(&Path) -> Vec<String>,
        make_config: impl FnOnce(&Path) -> String,
        args: &[&str],
    ) -> Proxy {
        // /tmp, not $TMPDIR: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("swp.")
            .tempdir_in("/tmp")
            .expect("create proxy temp dir");
        let config = dir.path().join("sockwarden.toml");
        std::fs::write(&config, make_config(dir.path())).expect("write proxy config");
        Self::spawn(dir, config, launcher, args)
    }

    /// As [`Proxy::start_config_args`] for a configuration file laid out by `prepare(dir)`
    /// (files, directories, symlinks), which returns the path to pass as `--config`. It must
    /// listen on `dir/proxy.sock`.
    pub fn start_prepared(prepare: impl FnOnce(&Path) -> PathBuf, args: &[&str]) -> Proxy {
        let dir = tempfile::Builder::new()
            .prefix("swp.")
            .tempdir_in("/tmp")
            .expect("create proxy temp dir");
        let config = prepare(dir.path());
        Self::spawn(dir, config, |_| Vec::new(), args)
    }

    fn spawn(
        dir: TempDir,
        config: PathBuf,
        launcher: impl FnOnce(&Path) -> Vec<String>,
        args: &[&str],
    ) -> Proxy {
        let socket = dir.path().join("proxy.sock");
        let log = dir.path().join("proxy.log");
        let log_file = std::fs::File::create(&log).expect("create proxy log");
        let log_file2 = log_file.try_clone().expect("clone log fd");
        let launcher = launcher(dir.path());
        let mut command = match launcher.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(SOCKWARDEN);
                command
            }
            None => Command::new(SOCKWARDEN),
        };
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "sockwarden=debug".into()),
            )
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file2)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {SOCKWARDEN}: {e}"));
        let mut proxy = Proxy {
            dir,
            socket,
            config,
            log,
            child: Some(child),
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + PROXY_READY_TIMEOUT;
        let mut last = String::from("socket file not created");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "sockwarden exited during startup ({status}); config:\n{}\n--- proxy log ---\n{}",
                        std::fs::read_to_string(&self.config).unwrap_or_default(),
                        self.log_text()
                    );
                }
            }
            if self.socket.exists() {
                match http_request(
                    &self.socket,
                    b"GET /_ping HTTP/1.1\r\nHost: sockwarden-test\r\nConnection: close\r\n\r\n",
                    Duration::from_secs(2),
                ) {
                    Ok(resp) if resp.starts_with(b"HTTP/1.1 200") => return,
                    Ok(resp) => last = format!("GET /_ping answered {:?}", head_line(&resp)),
                    Err(e) => last = format!("GET /_ping: {e}"),
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "sockwarden not ready within {PROXY_READY_TIMEOUT:?} ({last}); config:\n{}\n--- proxy log ---\n{}",
                    std::fs::read_to_string(&self.config).unwrap_or_default(),
                    self.log_text()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `unix://<socket>` for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        docker_host(&self.socket)
    }

    /// A docker CLI command pointed at the proxy.
    pub fn docker(&self) -> Docker {
        Docker::new(&self.socket)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Everything the proxy wrote to stderr and stdout so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends a signal (e.g. "TERM", "INT", "HUP") with kill(1).
    pub fn signal(&self, sig: &str) {
        let pid = self.pid();
        assert!(pid != 0, "proxy already reaped");
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{sig} {pid} failed");
    }

    /// Graceful stop: SIGTERM, then wait up to `timeout` for the exit. Panics (after a hard
    /// kill) if the proxy does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("proxy already stopped");
        if let Ok(Some(st)) = child.try_wait() {
            return st;
        }
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) => return st,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sockwarden did not exit within {timeout:?} of SIGTERM\n--- proxy log ---\n{}",
                        self.log_text()
                    );
                }
            }
        }
    }

    /// SIGTERM and wait (15 s); returns the exit status. The temp dir is removed afterwards.
    pub fn stop(mut self) -> ExitStatus {
        self.terminate(Duration::from_secs(15))
    }

    /// Hard kill (SIGKILL) and reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if thread::panicking() || std::env::var_os("SOCKWARDEN_TEST_SHOW_LOG").is_some() {
            eprintln!(
                "--- sockwarden log ({}) ---\n{}--- end of sockwarden log ---",
                self.log.display(),
                self.log_text()
            );
        }
        self.kill();
    }
}

/// A `[[client]]` entry giving the current uid the built-in `allow-all` policy. Without a
/// matching client the proxy refuses every request (403 "matches no configured client").
pub fn allow_all_client_toml() -> String {
    format!(
        "[[client]]\nname = \"sw-test\"\npolicy = \"allow-all\"\nuids = [{}]\n",
        current_uid()
    )
}

/// The real uid of this process (from /proc/self/status; no libc needed).
pub fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("Uid: line in /proc/self/status")
}

/// TOML basic string literal.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// -------------------------------------------------------------------------------------------
// Raw HTTP over a unix socket
// -------------------------------------------------------------------------------------------

/// Sends `request` (raw bytes, should say `Connection: close`) on a fresh connection to `sock`
/// and reads the answer until EOF or `timeout`.
pub fn http_request(sock: &Path, request: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    http_exchange(sock, request, timeout, false)
}

/// As [`http_request`], but shuts down the write side after the request (as `nc -N` or
/// `curl` with some options do); a server must still answer.
pub fn http_request_half_close(
    sock: &Path,
    request: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    http_exchange(sock, request, timeout, true)
}

fn http_exchange(
    sock: &Path,
    request: &[u8],
    timeout: Duration,
    half_close: bool,
) -> std::io::Result<Vec<u8>> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(request)?;
    if half_close {
        s.shutdown(std::net::Shutdown::Write)?;
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(out)
}

/// First line of an HTTP response, for messages.
pub fn head_line(resp: &[u8]) -> String {
    let end = resp
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(resp.len().min(200));
    String::from_utf8_lossy(&resp[..end]).into_owned()
}

// -------------------------------------------------------------------------------------------
// The docker CLI
// -------------------------------------------------------------------------------------------

/// An empty `DOCKER_CONFIG` directory so no user config, context or credential helper interferes.
pub fn empty_docker_config() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sockwarden-empty-docker-config");
        std::fs::create_dir_all(&dir).expect("create empty DOCKER_CONFIG dir");
        dir
    })
}

/// Debian's docker CLI 20.10, the one that builds with BuildKit (`/session`).
pub const DEBIAN_DOCKER_CLI: &str = "/usr/bin/docker";

/// A docker CLI invocation against one socket (`DOCKER_HOST=unix://...`), with a clean
/// environment, an optional stdin and a time limit.
#[derive(Clone)]
pub struct Docker {
    bin: PathBuf,
    sock: PathBuf,
    envs: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    keep_stdin_open: bool,
    timeout: Duration,
    tty: bool,
    user: Option<(u32, u32)>,
}

impl Docker {
    /// `docker` from PATH (or `SOCKWARDEN_TEST_DOCKER_CLI`), talking to `sock`.
    pub fn new(sock: &Path) -> Docker {
        let bin = std::env::var_os("SOCKWARDEN_TEST_DOCKER_CLI")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("docker"));
        Docker {
            bin,
            sock: sock.to_path_buf(),
            envs: Vec::new(),
            stdin: None,
            keep_stdin_open: false,
            timeout: DOCKER_TIMEOUT,
            tty: false,
            user: None,
        }
    }

    /// Run the CLI as another user (uid, gid, no supplementary groups): a real unix peer the
    /// proxy identifies by SO_PEERCRED. Needs root; the build context and files it reads must
    /// be readable by that user.
    pub fn user(mut self, uid: u32, gid: u32) -> Docker {
        self.user = Some((uid, gid));
        self
    }

    /// The same settings against another socket.
    pub fn on(&self, sock: &Path) -> Docker {
        let mut d = self.clone();
        d.sock = sock.to_path_buf();
        d
    }

    /// Use another CLI binary (e.g. [`DEBIAN_DOCKER_CLI`]).
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Docker {
        self.bin = bin.into();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Docker {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Pipe these bytes to stdin, then close it (EOF).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Docker {
        self.stdin = Some(bytes.into());
        self
    }

    /// Pipe these bytes to stdin and keep stdin open (no EOF) until the command exits. Needed
    /// for `docker attach`: when the attach client's stdin ends, the daemon also ends that
    /// attach's output streams (unless the container has StdinOnce), losing later output.
    pub fn stdin_keep_open(mut self, bytes: impl Into<Vec<u8>>) -> Docker {
        self.stdin = Some(bytes.into());
        self.keep_stdin_open = true;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Docker {
        self.timeout = t;
        self
    }

    /// Run the CLI under `script(1)` so that its stdin/stdout are a pseudo-terminal (needed for
    /// `docker run -it`; the CLI refuses `-i -t` when stdin is not a tty). `script -e` returns
    /// the CLI's exit code; stdout then carries the terminal output (with `\r\n`).
    pub fn tty(mut self) -> Docker {
        self.tty = true;
        self
    }

    /// The configured `Command` (for callers that need to spawn it themselves).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = if self.tty {
            let mut line = shell_quote(&self.bin.display().to_string());
            for a in args {
                line.push(' ');
                line.push_str(&shell_quote(a));
            }
            let mut c = Command::new("script");
            c.arg("-qec").arg(line).arg("/dev/null");
            c
        } else {
            let mut c = Command::new(&self.bin);
            c.args(args);
            c
        };
        for k in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
            "DOCKER_DEFAULT_PLATFORM",
            "BUILDKIT_PROGRESS",
            "DOCKER_BUILDKIT",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DOCKER_HOST", docker_host(&self.sock))
            .env("DOCKER_CONFIG", empty_docker_config())
            .env("DOCKER_CLI_HINTS", "false")
            .env("TERM", "dumb");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            // std drops supplementary groups (setgroups(0)) when root sets a uid.
            cmd.uid(uid).gid(gid).env("HOME", "/tmp");
        }
        cmd
    }

    /// Runs the command; panics only if it cannot be spawned or exceeds the time limit.
    pub fn run(&self, args: &[&str]) -> Output {
        match self.try_run(args) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs the command; `Err` describes a spawn failure or a timeout (with the partial output).
    pub fn try_run(&self, args: &[&str]) -> Result<Output, String> {
        let what = format!(
            "DOCKER_HOST={} {} {}",
            docker_host(&self.sock),
            self.bin.display(),
            args.join(" ")
        );
        run_with_timeout(
            self.command(args),
            self.stdin.clone(),
            self.keep_stdin_open,
            self.timeout,
        )
        .map_err(|e| format!("`{what}`: {e}"))
    }

    /// Runs the command on a new thread (for commands that must overlap, like `logs -f`).
    pub fn spawn(&self, args: &[&str]) -> thread::JoinHandle<Output> {
        let this = self.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            this.run(&args)
        })
    }

    /// Starts a long-running command (`events`, `logs -f`, `stats`) whose stdout is read line
    /// by line while it runs. Killed (with its process group) when dropped.
    pub fn stream(&self, args: &[&str]) -> Streaming {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("stdout piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = std::sync::Arc::new(Mutex::new(Vec::new()));
        let stderr2 = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lock(&stderr2).extend_from_slice(&buf[..n]);
            }
        });
        Streaming {
            what: format!("docker {}", args.join(" ")),
            child,
            lines: rx,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Runs the command and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`docker {}` via {} failed:\n{}",
            args.join(" "),
            self.sock.display(),
            describe(&out)
        );
        out.stdout
    }

    /// As [`Docker::ok`], stdout as a trimmed string.
    pub fn ok_str(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ok(args)).trim().to_string()
    }
}

/// A running CLI command whose stdout lines are collected as they arrive.
pub struct Streaming {
    what: String,
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::sync::Arc<Mutex<Vec<u8>>>,
}

impl Streaming {
    /// Waits until a line satisfying `pred` arrives; returns all lines so far. Panics with the
    /// lines seen and stderr on timeout or if the command ends first.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> &[String] {
        if self.seen.iter().any(|l| pred(l)) {
            return &self.seen;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line);
                    if hit {
                        return &self.seen;
                    }
                }
                Err(e) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "`{}`: expected line not seen ({}; exit status {status:?})\nlines so far:\n{}\nstderr: {}",
                        self.what,
                        match e {
                            std::sync::mpsc::RecvTimeoutError::Timeout => format!("timeout {timeout:?}"),
                            std::sync::mpsc::RecvTimeoutError::Disconnected => "stdout closed".to_string(),
                        },
                        self.seen.join("\n"),
                        String::from_utf8_lossy(&lock(&self.stderr))
                    );
                }
            }
        }
    }

    /// Lines seen so far (without waiting).
    pub fn lines(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        &self.seen
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// Is the command still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// `docker ARGS` against `sock`.
pub fn docker(sock: &Path, args: &[&str]) -> Output {
    Docker::new(sock).run(args)
}

/// `docker ARGS` against `sock` with `stdin` piped in (then closed).
pub fn docker_stdin(sock: &Path, args: &[&str], stdin: &[u8]) -> Output {
    Docker::new(sock).stdin(stdin.to_vec()).run(args)
}

/// The same command run directly against the daemon and through the proxy.
pub struct Both {
    pub direct: Output,
    pub proxied: Output,
}

impl Both {
    /// Asserts both exited 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.direct.status.success(),
            "{what}: direct run failed (test setup problem?):\n{}",
            describe(&self.direct)
        );
        assert!(
            self.proxied.status.success(),
            "{what}: failed through the proxy (direct run succeeded):\n{}\n--- direct ---\n{}",
            describe(&self.proxied),
            describe(&self.direct)
        );
        self
    }

    /// Asserts equal exit codes.
    pub fn assert_same_status(&self, what: &str) -> &Self {
        assert_eq!(
            self.direct.status.code(),
            self.proxied.status.code(),
            "{what}: exit code differs\n--- direct ---\n{}\n--- proxied ---\n{}",
            describe(&self.direct),
            describe(&self.proxied)
        );
        self
    }

    /// Asserts byte-identical stdout.
    pub fn assert_same_stdout(&self, what: &str) -> &Self {
        assert!(
            self.direct.stdout == self.proxied.stdout,
            "{what}: stdout differs\n--- direct ---\n{}\n--- proxied ---\n{}",
            describe(&self.direct),
            describe(&self.proxied)
        );
        self
    }
}

/// Runs `docker ARGS` first directly against the daemon, then through `proxy`.
pub fn docker_both(proxy: &Proxy, args: &[&str]) -> Both {
    docker_both_with(proxy, Docker::new(&daemon_socket()), args)
}

/// As [`docker_both`], with the CLI settings (env, stdin, binary, timeout) of `template`;
/// its socket is replaced.
pub fn docker_both_with(proxy: &Proxy, template: Docker, args: &[&str]) -> Both {
    Both {
        direct: template.on(&daemon_socket()).run(args),
        proxied: template.on(&proxy.socket).run(args),
    }
}

/// Runs `cmd` in its own process group with piped stdio; kills the whole group when `timeout`
/// expires (so `script` and its docker child both die). `stdin` bytes are written, then stdin
/// is closed, or, with `keep_stdin_open`, held open until the command exits.
pub fn run_with_timeout(
    mut cmd: Command,
    stdin: Option<Vec<u8>>,
    keep_stdin_open: bool,
    timeout: Duration,
) -> Result<Output, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("spawn failed: {e}"))?;
    let pgid = child.id();
    let (exited_tx, exited_rx) = std::sync::mpsc::channel::<()>();
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(thread::spawn(move || {
            // A broken pipe is fine: the command may exit without reading everything.
            let _ = pipe.write_all(&bytes);
            let _ = pipe.flush();
            if keep_stdin_open {
                // Returns when the sender is dropped, i.e. once the command has exited.
                let _ = exited_rx.recv();
            }
        })),
        _ => None,
    };
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                timed_out = true;
                kill_group(pgid);
                break child.wait().map_err(|e| format!("wait: {e}"))?;
            }
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    drop(exited_tx);
    // Descendants (e.g. under `script`) may still hold the pipes open.
    if timed_out {
        kill_group(pgid);
    }
    let stdout = join_reader(out_t, pgid);
    let stderr = join_reader(err_t, pgid);
    if let Some(w) = writer {
        let _ = w.join();
    }
    let out = Output {
        status,
        stdout,
        stderr,
    };
    if timed_out {
        return Err(format!(
            "timed out after {timeout:?} (killed); partial output:\n{}",
            describe(&out)
        ));
    }
    Ok(out)
}

fn join_reader(t: thread::JoinHandle<Vec<u8>>, pgid: u32) -> Vec<u8> {
    // Give lingering group members a moment, then kill them so the pipe closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if !t.is_finished() {
        kill_group(pgid);
    }
    t.join().unwrap_or_default()
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// -------------------------------------------------------------------------------------------
// Small utilities
// -------------------------------------------------------------------------------------------

/// Exit status, stdout and stderr of a command, for assertion messages (long output cut).
pub fn describe(o: &Output) -> String {
    let status = match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => o.status.to_string(),
    };
    format!(
        "status: {status}\nstdout ({} bytes): {}\nstderr ({} bytes): {}",
        o.stdout.len(),
        clip(&o.stdout),
        o.stderr.len(),
        clip(&o.stderr)
    )
}

fn clip(b: &[u8]) -> String {
    const MAX: usize = 4000;
    if b.len() <= MAX {
        format!("{:?}", String::from_utf8_lossy(b))
    } else {
        format!(
            "{:?} ... [{} bytes cut] ... {:?}",
            String::from_utf8_lossy(&b[..MAX / 2]),
            b.len() - MAX,
            String::from_utf8_lossy(&b[b.len() - MAX / 2..])
        )
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `n` bytes from /dev/urandom.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    std::fs::File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(n as u64)
        .read_to_end(&mut v)
        .expect("read /dev/urandom");
    assert_eq!(v.len(), n);
    v
}

/// Stdout as a (lossy) string.
pub fn stdout_str(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as a (lossy) string.
pub fn stderr_str(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every record in an audit file; a line that is not JSON fails the test. A last line without
/// its newline is a batch the writer is appending while the file is read: left for the next
/// read.
pub fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
    whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits up to `timeout` for an audit record matching `pred` (records are written just after
/// the response ends); fails the test showing the file when none comes.
pub fn wait_audit_record(
    path: &Path,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(timeout, || {
        audit_records(path).into_iter().find(|r| pred(r))
    })
    .unwrap_or_else(|| {
        panic!(
            "no matching audit record in {}:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        )
    })
}

/// Waits up to `timeout` until at least `n` audit records match `pred` (a record is written
/// just after its response ends, in batches up to 20 ms apart: a client that has its answer
/// may read the file before the record is there); returns every matching record then, or all
/// there are when the time is up, for the caller's assertion to show.
pub fn wait_audit_records(
    path: &Path,
    n: usize,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let matching = || -> Vec<serde_json::Value> {
        audit_records(path)
            .into_iter()
            .filter(|r| pred(r))
            .collect()
    };
    wait_for(timeout, || {
        let found = matching();
        (found.len() >= n).then_some(found)
    })
    .unwrap_or_else(matching)
}

/// Polls `f` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Builds sockwarden's container image with deploy/container/build.sh from the binary under
/// test, on the daemon at `sock`, tagged `tag`; fails the test unless it builds and prints the
/// tag.
pub fn build_image_on(sock: &Path, tag: &str) {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container/build.sh"))
        .args(["--binary", SOCKWARDEN, "--tag", tag])
        .env("DOCKER_HOST", docker_host(sock))
        .env("DOCKER_CONFIG", empty_docker_config())
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "build.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        tag,
        "build.sh prints the tag"
    );
}

/// The test daemon's container names and images (ID and name), to check with
/// [`assert_nothing_added`] that a refused request made none.
pub fn daemon_state() -> (String, String) {
    let direct = Docker::new(&daemon_socket());
    (
        direct.ok_str(&["ps", "-a", "--format", "{{.Names}}"]),
        direct.ok_str(&[
            "images",
            "-a",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ]),
    )
}

/// No container or image exists now that was not in `before` ([`daemon_state`]). Only
/// additions count: a container another test left may be going away meanwhile, which made
/// whole-list comparisons fail now and then. An added container that is gone again within
/// [`TRANSIENT`] was not left by the case: the daemon still finishing an earlier test's build
/// (a classic build's step container, removed when its step ends) was seen to add one, with
/// a random name, that `docker inspect` could no longer find a moment later.
pub fn assert_nothing_added(before: &(String, String), case: &str) {
    let settled = |now: (String, String)| added_lines(&before.0, &now.0).is_empty().then_some(now);
    let now = wait_for(TRANSIENT, || settled(daemon_state())).unwrap_or_else(daemon_state);
    for (what, was, is) in [
        ("containers", &before.0, &now.0),
        ("images", &before.1, &now.1),
    ] {
        let added = added_lines(was, is);
        if added.is_empty() {
            continue;
        }
        // Who made them: the failure has been seen only in full runs, never alone.
        let mut detail = String::new();
        if what == "containers" {
            let mut args = vec![
                "inspect",
                "--format",
                "{{.Name}} image={{.Config.Image}} created={{.Created}} cmd={{.Config.Cmd}} labels={{.Config.Labels}}",
            ];
            args.extend(added.iter().copied());
            let out = Docker::new(&daemon_socket()).run(&args);
            detail = String::from_utf8_lossy(&out.stdout).into_owned();
        }
        panic!("{case}: {what} added: {added:?}\n{detail}");
    }
}

/// How long an added container may take to go away before it counts as left.
const TRANSIENT: Duration = Duration::from_secs(10);

/// The lines of `is` that are not in `was`.
fn added_lines<'a>(was: &str, is: &'a str) -> Vec<&'a str> {
    let was: std::collections::BTreeSet<&str> = was.lines().collect();
    is.lines().filter(|l| !was.contains(l)).collect()
}
