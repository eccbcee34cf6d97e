//! End-to-end tests: the real docker CLI through sockwarden, compared with the same command run
//! directly against the daemon. Needs the private daemon that `scripts/test.sh` starts.
//!
//! Every container uses `--network none` (the test daemon has no bridge) and a unique name that
//! a `Cleanup` guard removes, so the tests can run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

/// The CLI pointed directly at the daemon.
fn direct() -> Docker {
    Docker::new(&daemon_socket())
}

/// `docker run -d --network none --name NAME IMG ARGS...` directly on the daemon; returns the ID.
fn run_detached(name: &str, extra: &[&str], cmd: &[&str]) -> String {
    let image = test_image();
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.push(&image);
    args.extend_from_slice(cmd);
    direct().ok_str(&args)
}

fn inspect(name: &str, format: &str) -> String {
    direct().ok_str(&["inspect", "--format", format, name])
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn sorted_lines(b: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(b)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// system
// ---------------------------------------------------------------------------------------------

#[test]
fn version_reports_same_server() {
    let p = Proxy::start();
    let fmt = "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Server.Os}}|{{.Client.APIVersion}}";
    let both = docker_both(&p, &["version", "--format", fmt]);
    both.assert_success("docker version --format")
        .assert_same_stdout("docker version --format");
    let out = stdout_str(&both.proxied);
    let fields: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(fields.len(), 4, "unexpected version output {out:?}");
    assert!(!fields[0].is_empty(), "no server version: {out:?}");
    // The client negotiated the daemon's API version from the ping's Api-Version header.
    assert_eq!(
        fields[1], fields[3],
        "client did not negotiate the server API version: {out:?}"
    );

    // The plain (table) output has a Server section through the proxy.
    let plain = p.docker().run(&["version"]);
    assert!(
        plain.status.success(),
        "docker version:\n{}",
        describe(&plain)
    );
    let text = stdout_str(&plain);
    assert!(text.contains("Server:"), "no Server section:\n{text}");
    assert!(
        text.contains(fields[0]),
        "server version {} missing:\n{text}",
        fields[0]
    );
}

#[test]
fn info_reports_same_daemon() {
    let p = Proxy::start();
    let both = docker_both(
        &p,
        &[
            "info",
            "--format",
            "{{.ID}}|{{.Name}}|{{.ServerVersion}}|{{.Driver}}",
        ],
    );
    both.assert_success("docker info")
        .assert_same_stdout("docker info");
    let out = stdout_str(&both.proxied);
    let fields: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(fields.len(), 4, "unexpected info output {out:?}");
    assert!(
        fields.iter().all(|f| !f.is_empty()),
        "empty info field: {out:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// containers: listing
// ---------------------------------------------------------------------------------------------

#[test]
fn ps_and_ps_all_list_same_containers() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let label = unique_name("ps");
    let label_kv = format!("sw.test={label}");
    let running = c.container("ps-running");
    let exited = c.container("ps-exited");
    let running_id = run_detached(&running, &["--label", &label_kv], &["sleep", "300"]);
    let exited_id = direct().ok_str(&[
        "run",
        "--network",
        "none",
        "--name",
        &exited,
        "--label",
        &label_kv,
        &test_image(),
        "true",
    ]);
    assert!(exited_id.is_empty(), "`run true` printed {exited_id:?}");
    let exited_id = inspect(&exited, "{{.Id}}");

    let filter = format!("label={label_kv}");
    let fmt = "{{.ID}} {{.Names}} {{.Image}} {{.Command}}";
    let ps = docker_both(
        &p,
        &["ps", "--no-trunc", "--filter", &filter, "--format", fmt],
    );
    ps.assert_success("docker ps --filter");
    assert_eq!(
        sorted_lines(&ps.direct.stdout),
        sorted_lines(&ps.proxied.stdout),
        "ps differs"
    );
    let ids = sorted_lines(&ps.proxied.stdout);
    assert_eq!(ids.len(), 1, "ps through the proxy: {ids:?}");
    assert!(
        ids[0].starts_with(&running_id),
        "ps lacks the running container: {ids:?}"
    );

    let psa = docker_both(
        &p,
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &filter,
            "--format",
            fmt,
        ],
    );
    psa.assert_success("docker ps -a --filter");
    assert_eq!(
        sorted_lines(&psa.direct.stdout),
        sorted_lines(&psa.proxied.stdout),
        "ps -a differs"
    );
    let all = sorted_lines(&psa.proxied.stdout);
    assert_eq!(all.len(), 2, "ps -a through the proxy: {all:?}");
    assert!(all.iter().any(|l| l.starts_with(&running_id)), "{all:?}");
    assert!(all.iter().any(|l| l.starts_with(&exited_id)), "{all:?}");

    // Without a filter (other tests' containers come and go, so only check ours are there).
    let plain = p.docker().ok(&["ps", "-q", "--no-trunc"]);
    let plain = String::from_utf8_lossy(&plain);
    assert!(
        plain.contains(&running_id),
        "ps -q lacks {running_id}:\n{plain}"
    );
    assert!(
        !plain.contains(&exited_id),
        "ps -q lists the exited container:\n{plain}"
    );
    let plain_all = p.docker().ok(&["ps", "-a", "-q", "--no-trunc"]);
    let plain_all = String::from_utf8_lossy(&plain_all);
    assert!(
        plain_all.contains(&running_id) && plain_all.contains(&exited_id),
        "ps -a -q:\n{plain_all}"
    );
}

// ---------------------------------------------------------------------------------------------
// containers: run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_rm_output_and_exit_codes_match() {
    let p = Proxy::start();
    let img = test_image();
    let script = "echo to-stdout; echo to-stderr >&2; echo more-stdout";
    let ok = docker_both(
        &p,
        &["run", "--rm", "--network", "none", &img, "sh", "-c", script],
    );
    ok.assert_success("run --rm").assert_same_stdout("run --rm");
    assert_eq!(stdout_str(&ok.proxied), "to-stdout\nmore-stdout\n");
    assert_eq!(
        stderr_str(&ok.proxied),
        "to-stderr\n",
        "stderr through the proxy"
    );

    let fail = docker_both(
        &p,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            "echo before-exit; exit 3",
        ],
    );
    fail.assert_same_status("run --rm exit 3")
        .assert_same_stdout("run --rm exit 3");
    assert_eq!(
        fail.proxied.status.code(),
        Some(3),
        "{}",
        describe(&fail.proxied)
    );
    assert_eq!(stdout_str(&fail.proxied), "before-exit\n");

    // A command that does not exist: the daemon's error reaches the CLI (exit 127).
    let missing = docker_both(
        &p,
        &["run", "--rm", "--network", "none", &img, "/no/such/binary"],
    );
    missing.assert_same_status("run missing binary");
    assert_eq!(
        missing.proxied.status.code(),
        Some(127),
        "{}",
        describe(&missing.proxied)
    );
}

#[test]
fn run_i_carries_one_mib_unchanged() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let data = random_bytes(1 << 20);
    let want = sha256_hex(&data);
    let img = test_image();
    for (what, cli) in [("direct", direct()), ("proxied", p.docker())] {
        let name = c.container("run-i");
        let out = cli.stdin(data.clone()).run(&[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "--name",
            &name,
            &img,
            "cat",
        ]);
        assert!(
            out.status.success(),
            "{what}: run -i cat:\n{}",
            describe(&out)
        );
        assert_eq!(out.stdout.len(), data.len(), "{what}: byte count");
        assert_eq!(
            sha256_hex(&out.stdout),
            want,
            "{what}: sha256 of the echoed bytes"
        );
    }
    // The checksum computed inside the container agrees as well.
    let out = p.docker().stdin(data.clone()).run(&[
        "run",
        "-i",
        "--rm",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "sha256sum | cut -d' ' -f1",
    ]);
    assert!(
        out.status.success(),
        "run -i sha256sum:\n{}",
        describe(&out)
    );
    assert_eq!(stdout_str(&out).trim(), want);
}

#[test]
fn run_i_stdin_eof_is_half_close() {
    let p = Proxy::start();
    let img = test_image();
    let args = [
        "run",
        "-i",
        "--rm",
        "--network",
        "none",
        &img,
        "sh",
        "-c",
        "cat; echo done",
    ];
    let cli = Docker::new(&daemon_socket())
        .stdin(b"abc".to_vec())
        .timeout(Duration::from_secs(30));
    let both = docker_both_with(&p, cli, &args);
    both.assert_success("printf abc | run -i ... 'cat; echo done'");
    assert_eq!(stdout_str(&both.direct), "abcdone\n", "direct");
    assert_eq!(
        stdout_str(&both.proxied),
        "abcdone\n",
        "through the proxy: stdin EOF must reach the container while output still flows back"
    );

    // Empty stdin: EOF right away.
    let cli = Docker::new(&daemon_socket())
        .stdin(Vec::new())
        .timeout(Duration::from_secs(30));
    let empty = docker_both_with(&p, cli, &args);
    empty
        .assert_success("run -i with empty stdin")
        .assert_same_stdout("run -i with empty stdin");
    assert_eq!(stdout_str(&empty.proxied), "done\n");
}

#[test]
fn run_t_allocates_a_tty() {
    let p = Proxy::start();
    let img = test_image();
    // `-t` without `-i` works with a non-terminal stdin; the output is raw tty bytes (\r\n).
    let script = "tty; echo hello-tty; exit 6";
    let both = docker_both(
        &p,
        &[
            "run",
            "-t",
            "--rm",
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            script,
        ],
    );
    both.assert_same_status("run -t");
    assert_eq!(
        both.proxied.status.code(),
        Some(6),
        "{}",
        describe(&both.proxied)
    );
    let out = stdout_str(&both.proxied);
    assert!(
        out.contains("/dev/pts/"),
        "no pty in the container: {out:?}"
    );
    assert!(
        out.contains("hello-tty\r\n"),
        "tty output missing or not raw: {out:?}"
    );
    both.assert_same_stdout("run -t");
}

#[test]
fn run_it_interactive_tty() {
    let p = Proxy::start();
    let img = test_image();
    // The CLI refuses `-it` when stdin is not a terminal, so run it under script(1).
    let input = b"echo abc$((1+2))\nexit 7\n".to_vec();
    let cli = Docker::new(&daemon_socket())
        .tty()
        .stdin(input)
        .timeout(Duration::from_secs(60));
    let both = docker_both_with(
        &p,
        cli,
        &["run", "-it", "--rm", "--network", "none", &img, "sh"],
    );
    for (what, out) in [("direct", &both.direct), ("proxied", &both.proxied)] {
        assert_eq!(
            out.status.code(),
            Some(7),
            "{what}: run -it:\n{}",
            describe(out)
        );
        let text = stdout_str(out);
        assert!(
            text.contains("abc3\r\n"),
            "{what}: shell output missing: {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// containers: exec
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_output_and_exit_code() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("exec");
    run_detached(&name, &[], &["sleep", "300"]);
    let both = docker_both(
        &p,
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "echo exec-out; echo exec-err >&2; exit 5",
        ],
    );
    both.assert_same_status("exec exit 5")
        .assert_same_stdout("exec");
    assert_eq!(
        both.proxied.status.code(),
        Some(5),
        "{}",
        describe(&both.proxied)
    );
    assert_eq!(stdout_str(&both.proxied), "exec-out\n");
    assert_eq!(stderr_str(&both.proxied), "exec-err\n");

    let env = docker_both(
        &p,
        &[
            "exec",
            "-e",
            "SWVAR=x1",
            "-w",
            "/tmp",
            &name,
            "sh",
            "-c",
            "echo $SWVAR $(pwd)",
        ],
    );
    env.assert_success("exec -e -w")
        .assert_same_stdout("exec -e -w");
    assert_eq!(stdout_str(&env.proxied), "x1 /tmp\n");

    // exec -t: raw tty bytes.
    let tty = p
        .docker()
        .run(&["exec", "-t", &name, "sh", "-c", "tty; echo tty-ok"]);
    assert!(tty.status.success(), "exec -t:\n{}", describe(&tty));
    assert!(
        stdout_str(&tty).contains("tty-ok\r\n"),
        "{}",
        describe(&tty)
    );
}

#[test]
fn exec_i_carries_one_mib_unchanged() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("exec-i");
    run_detached(&name, &[], &["sleep", "300"]);
    let data = random_bytes(1 << 20);
    let want = sha256_hex(&data);
    for (what, cli) in [("direct", direct()), ("proxied", p.docker())] {
        let out = cli.stdin(data.clone()).run(&["exec", "-i", &name, "cat"]);
        assert!(
            out.status.success(),
            "{what}: exec -i cat:\n{}",
            describe(&out)
        );
        assert_eq!(out.stdout.len(), data.len(), "{what}: byte count");
        assert_eq!(sha256_hex(&out.stdout), want, "{what}: sha256");
    }
    // Half-close through exec: output after stdin EOF still arrives.
    let out = p
        .docker()
        .stdin(b"xyz".to_vec())
        .timeout(Duration::from_secs(30))
        .run(&["exec", "-i", &name, "sh", "-c", "cat; echo after-eof"]);
    assert!(
        out.status.success(),
        "exec -i half-close:\n{}",
        describe(&out)
    );
    assert_eq!(stdout_str(&out), "xyzafter-eof\n");
    // Both sides are unix sockets: the sessions were relayed inside the kernel.
    let log = p.log_text();
    assert!(
        log.contains("relay=\"splice\"") || log.contains("relay=splice"),
        "no hijacked session was spliced:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// containers: logs, attach, wait, events
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_follow_ends_when_container_exits() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("logs");
    // ~2 s of output, then exit.
    let script =
        "i=1; while [ $i -le 20 ]; do echo line-$i; i=$((i+1)); sleep 0.1; done; echo err-line >&2";
    run_detached(&name, &[], &["sh", "-c", script]);
    let args = ["logs", "-f", &name];
    let cli = Docker::new(&daemon_socket()).timeout(Duration::from_secs(60));
    let proxied = cli.on(&p.socket).spawn(&args);
    let direct_out = cli.run(&args);
    let proxied = proxied.join().expect("logs thread");
    let want: String = (1..=20).map(|i| format!("line-{i}\n")).collect();
    assert!(
        direct_out.status.success(),
        "direct logs -f:\n{}",
        describe(&direct_out)
    );
    assert_eq!(stdout_str(&direct_out), want, "direct logs -f");
    assert!(
        proxied.status.success(),
        "logs -f through the proxy:\n{}",
        describe(&proxied)
    );
    assert_eq!(
        stdout_str(&proxied),
        want,
        "logs -f through the proxy: stdout"
    );
    assert_eq!(
        stderr_str(&proxied),
        "err-line\n",
        "logs -f through the proxy: stderr"
    );
    assert_eq!(inspect(&name, "{{.State.Running}}"), "false");

    // Non-follow logs after the fact, with --tail and timestamps off.
    let tail = docker_both(&p, &["logs", "--tail", "3", &name]);
    tail.assert_success("logs --tail")
        .assert_same_stdout("logs --tail");
    assert_eq!(stdout_str(&tail.proxied), "line-19\nline-20\n");
}

/// A policy that allows `container.logs` only without `follow`: `docker logs` works, and
/// `docker logs -f` is refused with a message naming the rule and the condition it fails, not
/// "no rule allows container.logs" (which reads as if logs were not allowed at all).
#[test]
fn logs_follow_refusal_names_the_conditional_rule() {
    let policy = format!(
        r#"[[client]]
name = "logs-reader"
policy = "logs"
uids = [{uid}]

[policy.logs]
allow = ["system.ping", "system.version", "container.list", "container.inspect"]

[[policy.logs.rule]]
name = "logs-no-follow"
effect = "allow"
operations = ["container.logs"]
query = {{ follow = false }}
"#,
        uid = current_uid()
    );
    let p = Proxy::start_with(&policy, &daemon_socket());
    let c = Cleanup::new();
    let name = c.container("logs-cond");
    run_detached(&name, &[], &["sh", "-c", "echo hello; sleep 60"]);
    let cli = p.docker().timeout(Duration::from_secs(30));
    // Without -f: allowed by the conditional rule.
    let plain = cli.run(&["logs", &name]);
    assert!(plain.status.success(), "logs:\n{}", describe(&plain));
    assert_eq!(stdout_str(&plain), "hello\n");
    // With -f: refused, and the CLI prints which rule and which condition.
    let follow = cli.run(&["logs", "-f", &name]);
    assert!(!follow.status.success(), "logs -f:\n{}", describe(&follow));
    let err = stderr_str(&follow);
    assert!(
        err.contains(
            "rule logs-no-follow allows container.logs only when follow is not set; \
             this request has follow=1 (policy logs, rule default-deny)"
        ),
        "logs -f refusal: {err}"
    );
    assert!(!err.contains("no rule allows"), "logs -f refusal: {err}");
}

#[test]
fn attach_gets_output_and_exit_code() {
    let p = Proxy::start();
    let c = Cleanup::new();
    for (what, cli) in [("direct", direct()), ("proxied", p.docker())] {
        let name = c.container("attach");
        // The container waits for a line on stdin, which only arrives once the attach is live,
        // so the output cannot be printed before we are attached. Stdin stays open: the daemon
        // ends an attach's output when its stdin ends (StdinOnce is false for `run -d -i`).
        let script = "read x; echo got-$x; echo attach-err >&2; exit 4";
        run_detached(&name, &["-i"], &["sh", "-c", script]);
        let out = cli
            .stdin_keep_open(b"go\n".to_vec())
            .timeout(Duration::from_secs(60))
            .run(&["attach", &name]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{what}: attach:\n{}",
            describe(&out)
        );
        assert_eq!(stdout_str(&out), "got-go\n", "{what}: attach stdout");
        assert_eq!(stderr_str(&out), "attach-err\n", "{what}: attach stderr");
    }

    // Output-only attach (no stdin) to a container that prints for a while.
    let name = c.container("attach-out");
    run_detached(
        &name,
        &[],
        &[
            "sh",
            "-c",
            "sleep 2; echo late-1; sleep 0.5; echo late-2; exit 9",
        ],
    );
    let out = p
        .docker()
        .timeout(Duration::from_secs(60))
        .run(&["attach", "--no-stdin", &name]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "attach --no-stdin:\n{}",
        describe(&out)
    );
    assert!(
        stdout_str(&out).ends_with("late-2\n"),
        "attach --no-stdin:\n{}",
        describe(&out)
    );
}

#[test]
fn wait_prints_exit_code() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let a = c.container("wait");
    let b = c.container("wait");
    run_detached(&a, &[], &["sh", "-c", "sleep 1; exit 42"]);
    run_detached(&b, &[], &["sh", "-c", "exit 0"]);
    let out = p
        .docker()
        .timeout(Duration::from_secs(60))
        .run(&["wait", &a, &b]);
    assert!(out.status.success(), "docker wait:\n{}", describe(&out));
    assert_eq!(stdout_str(&out), "42\n0\n");
    // Waiting on an already-exited container returns at once, same as direct.
    let both = docker_both(&p, &["wait", &a]);
    both.assert_success("wait exited")
        .assert_same_stdout("wait exited");
    // A missing container: same failure both ways.
    let missing = docker_both(&p, &["wait", "sw-no-such-container-xyz"]);
    missing.assert_same_status("wait missing");
    assert!(!missing.proxied.status.success());
    assert!(
        stderr_str(&missing.proxied).contains("No such container"),
        "{}",
        describe(&missing.proxied)
    );
}

#[test]
fn events_since_until_show_container_lifecycle() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("events");
    let since = (now_unix() - 1).to_string();
    let filter = format!("container={name}");
    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let destroy = format!("container destroy {name}");

    // Live: both event streams are open while the container is created, runs and is removed.
    let live_args = [
        "events", "--since", &since, "--filter", &filter, "--format", fmt,
    ];
    let mut live_direct = direct().stream(&live_args);
    let mut live_proxied = p.docker().stream(&live_args);
    thread::sleep(Duration::from_millis(300));
    let out = direct().run(&[
        "run",
        "--network",
        "none",
        "--name",
        &name,
        &test_image(),
        "sh",
        "-c",
        "echo ev",
    ]);
    assert!(out.status.success(), "run:\n{}", describe(&out));
    direct().ok(&["rm", &name]);
    let want = live_direct
        .wait_for(Duration::from_secs(30), |l| l == destroy)
        .to_vec();
    let got = live_proxied
        .wait_for(Duration::from_secs(30), |l| l == destroy)
        .to_vec();
    for action in ["create", "start", "die", "destroy"] {
        let line = format!("container {action} {name}");
        assert!(
            got.contains(&line),
            "no `{line}` event through the proxy:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(want, got, "live events differ between direct and proxied");
    assert!(
        live_proxied.is_running(),
        "events without --until ended early"
    );
    drop(live_proxied);
    drop(live_direct);

    // Replay: a --since/--until window that is entirely in the past ends by itself and gives
    // the same events again.
    let until = now_unix() + 1;
    while now_unix() <= until {
        thread::sleep(Duration::from_millis(100));
    }
    let until = until.to_string();
    let replay_args = [
        "events", "--since", &since, "--until", &until, "--filter", &filter, "--format", fmt,
    ];
    let replay = docker_both(&p, &replay_args);
    replay
        .assert_success("events --since --until")
        .assert_same_stdout("events --since --until");
    let replayed: Vec<String> = stdout_str(&replay.proxied)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(replayed, got, "replayed events differ from the live ones");
}

// ---------------------------------------------------------------------------------------------
// containers: cp, stats, kill, rm
// ---------------------------------------------------------------------------------------------

#[test]
fn cp_ten_mib_both_ways() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("cp");
    run_detached(&name, &[], &["sleep", "300"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(10 << 20);
    let want = sha256_hex(&data);
    let src = tmp.path().join("payload.bin");
    std::fs::write(&src, &data).expect("write payload");

    // Into the container through the proxy.
    let dest = format!("{name}:/tmp/payload.bin");
    let cli = p.docker().timeout(Duration::from_secs(120));
    cli.ok(&["cp", src.to_str().expect("utf-8 path"), &dest]);
    let inside = direct().ok_str(&["exec", &name, "sha256sum", "/tmp/payload.bin"]);
    assert_eq!(
        inside.split_whitespace().next(),
        Some(want.as_str()),
        "sha256 inside the container"
    );

    // Out of the container, through the proxy and directly.
    for (what, cli) in [
        ("proxied", cli),
        ("direct", direct().timeout(Duration::from_secs(120))),
    ] {
        let out_path = tmp.path().join(format!("back-{what}.bin"));
        cli.ok(&["cp", &dest, out_path.to_str().expect("utf-8 path")]);
        let back = std::fs::read(&out_path).expect("read copied file");
        assert_eq!(
            back.len(),
            data.len(),
            "{what}: size of the file copied out"
        );
        assert_eq!(
            sha256_hex(&back),
            want,
            "{what}: sha256 of the file copied out"
        );
    }

    // A missing path: same error both ways.
    let missing = docker_both(
        &p,
        &[
            "cp",
            &format!("{name}:/no/such/file"),
            tmp.path().to_str().expect("utf-8"),
        ],
    );
    missing.assert_same_status("cp missing path");
    assert!(!missing.proxied.status.success());
}

#[test]
fn stats_no_stream_lists_running_container() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("stats");
    let id = run_detached(&name, &[], &["sleep", "300"]);
    let out = p.docker().ok_str(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.ID}}|{{.MemUsage}}",
        &name,
    ]);
    let fields: Vec<&str> = out.split('|').collect();
    assert_eq!(fields.len(), 3, "stats output {out:?}");
    assert_eq!(fields[0], name);
    assert!(
        id.starts_with(fields[1]),
        "stats ID {} is not {id}",
        fields[1]
    );
    assert!(fields[2].contains('/'), "no memory usage: {out:?}");
    // All running containers: ours is among them.
    let all = p
        .docker()
        .ok_str(&["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert!(
        all.lines().any(|l| l == name),
        "stats --no-stream lacks {name}:\n{all}"
    );
}

#[test]
fn kill_stops_container() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let name = c.container("kill");
    run_detached(&name, &[], &["sleep", "300"]);
    let out = p.docker().ok_str(&["kill", &name]);
    assert_eq!(out, name);
    assert_eq!(
        inspect(&name, "{{.State.Running}} {{.State.ExitCode}}"),
        "false 137"
    );

    // kill -s with a signal the shell traps: the container sees it.
    let name2 = c.container("kill-sig");
    run_detached(
        &name2,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 12' USR1; touch /tmp/trapped; while true; do sleep 0.1; done",
        ],
    );
    // PID 1 ignores signals it has no handler for: wait until the trap is installed.
    let trapped = wait_for(Duration::from_secs(20), || {
        direct()
            .run(&["exec", &name2, "test", "-e", "/tmp/trapped"])
            .status
            .success()
            .then_some(())
    });
    assert!(trapped.is_some(), "the container never installed its trap");
    assert_eq!(p.docker().ok_str(&["kill", "-s", "USR1", &name2]), name2);
    let code = p
        .docker()
        .timeout(Duration::from_secs(30))
        .ok_str(&["wait", &name2]);
    assert_eq!(code, "12");

    // Killing a stopped container fails the same way both ways.
    let again = docker_both(&p, &["kill", &name]);
    again.assert_same_status("kill a stopped container");
    assert!(
        !again.proxied.status.success(),
        "{}",
        describe(&again.proxied)
    );
}

#[test]
fn rm_removes_containers() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let stopped = c.container("rm");
    direct().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &stopped,
        &test_image(),
        "true",
    ]);
    assert_eq!(p.docker().ok_str(&["rm", &stopped]), stopped);
    let gone = direct().run(&["inspect", &stopped]);
    assert!(
        !gone.status.success(),
        "container still exists after rm:\n{}",
        describe(&gone)
    );

    // A running container: plain rm refuses (same as direct), rm -f removes it.
    let running = c.container("rm-running");
    run_detached(&running, &[], &["sleep", "300"]);
    let refused = docker_both(&p, &["rm", &running]);
    refused.assert_same_status("rm of a running container");
    assert!(!refused.proxied.status.success());
    assert_eq!(p.docker().ok_str(&["rm", "-f", &running]), running);
    assert!(
        !direct().run(&["inspect", &running]).status.success(),
        "rm -f left the container"
    );
}

// ---------------------------------------------------------------------------------------------
// images: save, load, build, rmi
// ---------------------------------------------------------------------------------------------

#[test]
fn save_and_load_through_proxy() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let tag = c.image("saved");
    direct().ok(&["tag", &test_image(), &tag]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let tar = tmp.path().join("image.tar");
    let tar_s = tar.to_str().expect("utf-8 path");

    let cli = p.docker().timeout(Duration::from_secs(120));
    cli.ok(&["save", "-o", tar_s, &tag]);
    let saved = std::fs::read(&tar).expect("read saved tar");
    assert!(
        saved.len() > 1 << 20,
        "saved tar is only {} bytes",
        saved.len()
    );
    // `docker save` of one image is deterministic: the proxy must not change a byte.
    let direct_tar = direct()
        .timeout(Duration::from_secs(120))
        .ok(&["save", &tag]);
    assert_eq!(
        sha256_hex(&saved),
        sha256_hex(&direct_tar),
        "save through the proxy differs from direct"
    );

    direct().ok(&["rmi", &tag]);
    assert!(
        !direct().run(&["image", "inspect", &tag]).status.success(),
        "tag still there"
    );
    let loaded = cli.ok_str(&["load", "-i", tar_s]);
    assert!(
        loaded.contains(&format!("Loaded image: {tag}")),
        "load output: {loaded:?}"
    );
    assert_eq!(
        inspect(&tag, "{{.Id}}"),
        inspect(&test_image(), "{{.Id}}"),
        "loaded image has another ID"
    );

    // load from stdin as well.
    direct().ok(&["rmi", &tag]);
    let out = p
        .docker()
        .stdin(saved)
        .timeout(Duration::from_secs(120))
        .run(&["load"]);
    assert!(out.status.success(), "load from stdin:\n{}", describe(&out));
    assert!(stdout_str(&out).contains(&tag), "{}", describe(&out));
    direct().ok(&["image", "inspect", &tag]);
}

/// A build context with `FROM scratch` + `COPY file /file` and a random 256 KiB file.
fn scratch_context() -> (tempfile::TempDir, String) {
    let ctx = tempfile::tempdir().expect("tempdir");
    let data = random_bytes(256 << 10);
    std::fs::write(ctx.path().join("file"), &data).expect("write file");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY file /file\n",
    )
    .expect("write Dockerfile");
    let sum = sha256_hex(&data);
    (ctx, sum)
}

/// The sha256 of `/file` in `image`, read by creating (not starting) a container and copying out.
fn file_sum_in_image(c: &Cleanup, image: &str) -> String {
    let name = c.container("probe");
    direct().ok(&[
        "create",
        "--network",
        "none",
        "--name",
        &name,
        image,
        "/nothing",
    ]);
    let tar = direct().ok(&["cp", &format!("{name}:/file"), "-"]);
    // A one-file tar: 512-byte header, then the data; the size is an octal field at 124..136.
    assert!(tar.len() > 512, "cp returned {} bytes", tar.len());
    let size_field = String::from_utf8_lossy(&tar[124..136]);
    let size = usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
        .expect("tar size field");
    sha256_hex(&tar[512..512 + size])
}

#[test]
fn build_classic_builder() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let (ctx, sum) = scratch_context();
    let tag = c.image("build-classic");
    let out = p
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .timeout(Duration::from_secs(120))
        .run(&[
            "build",
            "-t",
            &tag,
            ctx.path().to_str().expect("utf-8 path"),
        ]);
    assert!(
        out.status.success(),
        "classic build through the proxy:\n{}",
        describe(&out)
    );
    let text = stdout_str(&out);
    assert!(
        text.contains("Step 2/2 : COPY file /file"),
        "build output:\n{text}"
    );
    assert!(
        text.contains(&format!("Successfully tagged {tag}")),
        "build output:\n{text}"
    );
    assert_eq!(file_sum_in_image(&c, &tag), sum, "/file in the built image");

    // A failing build reports the failure the same way.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("Dockerfile"),
        "FROM scratch\nCOPY missing /missing\n",
    )
    .expect("write");
    let cli = Docker::new(&daemon_socket())
        .env("DOCKER_BUILDKIT", "0")
        .timeout(Duration::from_secs(120));
    let both = docker_both_with(&p, cli, &["build", bad.path().to_str().expect("utf-8")]);
    both.assert_same_status("failing classic build");
    assert!(
        !both.proxied.status.success(),
        "{}",
        describe(&both.proxied)
    );
}

#[test]
fn build_buildkit_via_debian_cli() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let (ctx, sum) = scratch_context();
    let ctx_s = ctx.path().to_str().expect("utf-8 path");
    let cli = Docker::new(&daemon_socket())
        .bin(DEBIAN_DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .env("BUILDKIT_PROGRESS", "plain")
        .timeout(Duration::from_secs(180));

    // Directly first: if this fails, the environment (not the proxy) is broken.
    let direct_tag = c.image("build-bk-direct");
    let d = cli.run(&["build", "-t", &direct_tag, ctx_s]);
    assert!(
        d.status.success(),
        "BuildKit build directly on the daemon failed:\n{}",
        describe(&d)
    );

    let tag = c.image("build-bk");
    let out = cli.on(&p.socket).run(&["build", "-t", &tag, ctx_s]);
    assert!(
        out.status.success(),
        "BuildKit build through the proxy:\n{}",
        describe(&out)
    );
    let text = stderr_str(&out);
    assert!(
        text.contains(&format!("naming to docker.io/library/{tag}")),
        "build output:\n{text}"
    );
    assert_eq!(
        file_sum_in_image(&c, &tag),
        sum,
        "/file in the BuildKit-built image"
    );
}

#[test]
fn rmi_removes_tag() {
    let p = Proxy::start();
    let c = Cleanup::new();
    let tag = c.image("rmi");
    direct().ok(&["tag", &test_image(), &tag]);
    let out = p.docker().ok_str(&["rmi", &tag]);
    assert!(
        out.contains(&format!("Untagged: {tag}")),
        "rmi output: {out:?}"
    );
    assert!(
        !direct().run(&["image", "inspect", &tag]).status.success(),
        "tag survived rmi"
    );
    // The base image is untouched (it is still tagged).
    direct().ok(&["image", "inspect", &test_image()]);

    // A missing image: same failure both ways.
    let missing = docker_both(&p, &["rmi", "sw-no-such-image:nope"]);
    missing.assert_same_status("rmi missing");
    assert!(!missing.proxied.status.success());
    assert!(
        stderr_str(&missing.proxied).contains("No such image"),
        "{}",
        describe(&missing.proxied)
    );
}

// ---------------------------------------------------------------------------------------------
// the proxy process itself
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_proxy_and_removes_socket() {
    let mut p = Proxy::start();
    p.docker().ok(&["ps", "-q"]);
    assert!(p.socket.exists());
    // `terminate`, not `stop`: the temp dir (and so the socket's directory) must still exist.
    let status = p.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "sockwarden exited with {status} on SIGTERM"
    );
    assert!(
        !p.socket.exists(),
        "socket {} left behind after SIGTERM",
        p.socket.display()
    );
}

// ---------------------------------------------------------------------------------------------
// the one-shot commands: check, closed pipes
// ---------------------------------------------------------------------------------------------

/// `sockwarden ARGS...`, its output.
fn sockwarden(args: &[&str]) -> std::process::Output {
    std::process::Command::new(SOCKWARDEN)
        .args(args)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap()
}

/// `check` refuses what `serve` would refuse at start (an audit file in a missing directory,
/// a socket path below a file, an address that is not this host's), with serve's own words
/// and the setting's line; `--no-fs` checks the file alone.
#[test]
fn check_refuses_what_serve_refuses() {
    let dir = tempfile::Builder::new()
        .prefix("swc.")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("file"), "").unwrap();
    // 102 bytes: within sun_path, but the temporary name serve binds first is not.
    let long = format!("{d}/{}", "s".repeat(102 - d.len() - 1));
    let cases = [
        (
            format!("[audit]\nsink = \"file\"\npath = \"{d}/missing/audit.log\"\n[[listen]]\nunix = \"{d}/ok.sock\"\n"),
            3,
            "audit.path",
        ),
        (
            format!("[[listen]]\nunix = \"{d}/ok.sock\"\n[[listen]]\nunix = \"{d}/file/proxy.sock\"\n"),
            4,
            "listen[1].unix",
        ),
        (
            format!("[[listen]]\nunix = \"{d}/file\"\n"),
            2,
            "listen[0].unix",
        ),
        (
            format!("[[listen]]\nunix = \"{long}\"\n"),
            2,
            "listen[0].unix",
        ),
        (
            format!("[[listen]]\nunix = \"{d}/ok.sock\"\n[admin]\ntcp = \"192.0.2.1:9180\"\n"),
            4,
            "admin.tcp",
        ),
    ];
    for (i, (body, line, setting)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("c{i}.toml"));
        let text = format!("{body}[upstream]\nsocket = \"{d}/docker.sock\"\n");
        std::fs::write(&file, &text).unwrap();
        let file = file.display().to_string();
        let check = sockwarden(&["check", "--config", &file]);
        assert_eq!(
            check.status.code(),
            Some(2),
            "check {text}: {}",
            describe(&check)
        );
        let serve = sockwarden(&["serve", "--config", &file]);
        assert!(
            !serve.status.success(),
            "serve {text}: {}",
            describe(&serve)
        );
        let serve_err = stderr_str(&serve);
        let serve_err = serve_err
            .lines()
            .last()
            .unwrap()
            .strip_prefix("sockwarden: ")
            .unwrap()
            .to_owned();
        assert_eq!(
            stderr_str(&check),
            format!("sockwarden: {file} line {line}: {setting}: {serve_err}\n"),
            "{text}"
        );
        let offline = sockwarden(&["check", "--no-fs", "--config", &file]);
        assert!(
            offline.status.success(),
            "check --no-fs: {}",
            describe(&offline)
        );
        assert_eq!(stdout_str(&offline), format!("{file}: ok\n"));
    }
    // A socket directory that does not exist yet is fine: serve creates it.
    let file = dir.path().join("ok.toml");
    std::fs::write(
        &file,
        format!("[[listen]]\nunix = \"{d}/new/dir/proxy.sock\"\n[upstream]\nsocket = \"{d}/docker.sock\"\n"),
    )
    .unwrap();
    let check = sockwarden(&["check", "--config", &file.display().to_string()]);
    assert!(check.status.success(), "{}", describe(&check));
    assert!(
        !dir.path().join("new").exists(),
        "check must not create anything"
    );
}

/// Every printing command, its stdout a pipe nobody reads (`| head` that has read enough):
/// it ends quietly, never with Rust's "failed printing to stdout" panic (exit 101).
#[test]
fn printing_commands_exit_quietly_on_a_closed_pipe() {
    let p = Proxy::start_config(|dir| {
        format!(
            "{client}\n[upstream]\nsocket = {up}\n[[listen]]\nunix = {sock}\n[admin]\nunix = {admin}\n",
            client = allow_all_client_toml(),
            up = toml_str(&daemon_socket().display().to_string()),
            sock = toml_str(&dir.join("proxy.sock").display().to_string()),
            admin = toml_str(&dir.join("admin.sock").display().to_string()),
        )
    });
    let config = p.config.display().to_string();
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/audit/ci-run.jsonl"
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["operations"],
        vec!["compat", "docker-socket-proxy"],
        vec!["check", "--config", &config],
        vec![
            "explain", "--config", &config, "--client", "sw-test", "GET", "/_ping",
        ],
        vec!["explain", "--json", "--config", &config, "GET", "/_ping"],
        vec!["audit", "summarize", fixtures],
        vec!["audit", "summarize", "--json", fixtures],
        vec!["audit", "suggest", "--client", "ci", fixtures],
        vec!["reload", "--config", &config],
        vec!["--help"],
        vec!["explain", "--help"],
        vec!["--version"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(SOCKWARDEN)
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr_str(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
    // And as a user types it.
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{SOCKWARDEN} operations | head -2")])
        .output()
        .unwrap();
    assert_eq!(stdout_str(&out).lines().count(), 2, "{}", describe(&out));
    assert_eq!(stderr_str(&out), "");
}

/// The filesystem checks run as the user running `check`, as `serve` would run: a socket
/// directory that user cannot create is refused by both, with the same words.
#[test]
fn check_as_another_user_refuses_what_serve_would() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("swc.")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "[upstream]\nsocket = \"/nonexistent/docker.sock\"\n[[listen]]\nunix = \"{}/sub/proxy.sock\"\n",
            private.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = file.display().to_string();
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                SOCKWARDEN,
            ])
            .args(args)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap()
    };
    let check = as_nobody(&["check", "--config", &file]);
    assert_eq!(check.status.code(), Some(2), "{}", describe(&check));
    let serve = as_nobody(&["serve", "--config", &file]);
    assert!(!serve.status.success(), "{}", describe(&serve));
    let serve_err = stderr_str(&serve);
    let serve_err = serve_err
        .lines()
        .last()
        .unwrap()
        .strip_prefix("sockwarden: ")
        .unwrap();
    assert!(
        serve_err.ends_with("Permission denied (os error 13)"),
        "{serve_err}"
    );
    assert_eq!(
        stderr_str(&check),
        format!("sockwarden: {file} line 4: listen[0].unix: {serve_err}\n")
    );
    // As root (who may create it), and with --no-fs, the same file passes.
    let root = sockwarden(&["check", "--config", &file]);
    assert!(root.status.success(), "{}", describe(&root));
    let offline = as_nobody(&["check", "--no-fs", "--config", &file]);
    assert!(offline.status.success(), "{}", describe(&offline));
    assert!(
        !private.join("sub").exists(),
        "check must not create anything"
    );
}
