//! Issue 15: a forwarded request stays in its client connection's task, over upstream
//! connections that client connection drives itself (`upstream::ClientConns`).
//!
//! What is checked: one upstream connection serves a client's keep-alive requests; a client
//! connection that ends leaves it in the idle list for the next client (`pool_max_idle = 0`
//! turns that off); a connection the daemon closed between requests is replaced; a daemon that
//! dies after reading a request gives a 502 and the request is not sent twice; an upgrade
//! (attach) after keep-alive requests on the same client connection is relayed; the real
//! docker CLI (one connection per command, hijacked exec and attach) works through it and
//! its commands share daemon connections.
//!
//! Cases a real daemon cannot produce on cue run against an in-process stub upstream that
//! numbers its connections; the proxy runs in-process, through the library's `Server`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod support;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sockwarden::config::Config;
use sockwarden::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};

const T: Duration = Duration::from_secs(10);

// === in-process proxy ===

struct Proxy {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Allow-all in front of `upstream`; `upstream_settings` go into `[upstream]`.
    async fn start(upstream: &Path, upstream_settings: &str) -> Proxy {
        let at = format!("socket = {:?}", upstream.display().to_string());
        Proxy::start_at(&at, upstream_settings).await
    }

    /// `at` is the `[upstream]` line naming the daemon (`socket = ...` or `tcp = ...`).
    async fn start_at(at: &str, upstream_settings: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("p.sock");
        let text = format!(
            "[upstream]\n{at}\n{upstream_settings}\n[audit]\nsink = \"off\"\n\
             [limits]\nrequests_per_second = 0\n\
             [[client]]\nname = \"test\"\npolicy = \"allow-all\"\n\
             [[listen]]\nunix = {:?}\nclient = \"test\"\n",
            socket.display().to_string()
        );
        let config = Config::parse(&text, "test").unwrap();
        let server = Server::bind(config, sockwarden::reload::ConfigSource::Builtin)
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Proxy {
            socket,
            stop: Some(stop),
            done,
            _dir: dir,
        }
    }

    async fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).await.unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.done)
            .await
            .expect("proxy did not stop")
            .unwrap();
    }
}

// === in-process stub upstream that numbers its connections ===

struct Stub {
    socket: PathBuf,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// `/die` requests seen so far.
    died: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Stub {
    async fn start() -> Stub {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("stub.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let died = Arc::new(AtomicUsize::new(0));
        let (a, d) = (accepted.clone(), died.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let conn = a.fetch_add(1, Ordering::SeqCst) + 1;
                let d = d.clone();
                tokio::spawn(serve_stub_conn(stream, conn, d));
            }
        });
        Stub {
            socket,
            accepted,
            died,
            _task: task,
            _dir: dir,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits for the proxy's start-up reachability check (a bare connect), so that it does
    /// not count among the connections a test looks at; returns the connections so far.
    async fn settled(&self) -> usize {
        for _ in 0..100 {
            if self.accepted() >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.accepted()
    }
}

/// Serves one stub connection. A route may ask for the connection to be dropped: `/close`
/// after its answer is written (no `Connection: close`: the socket just closes), `/die` as
/// soon as the request head is read (the daemon dying with the request in hand).
async fn serve_stub_conn<S>(stream: S, conn: usize, died: Arc<AtomicUsize>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let drop_now = Arc::new(Notify::new());
    let n = drop_now.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (n, died) = (n.clone(), died.clone());
        async move { stub_route(req, conn, n, died).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        _ = drop_now.notified() => {}
    }
}

type StubBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(data: impl Into<Bytes>) -> StubBody {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

async fn stub_route(
    mut req: Request<Incoming>,
    conn: usize,
    drop_now: Arc<Notify>,
    died: Arc<AtomicUsize>,
) -> Result<Response<StubBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let path = path.strip_prefix("/v1.41").unwrap_or(&path).to_owned();
    let response = match path.as_str() {
        "/_ping" => Response::new(full("OK")),
        "/close" => {
            // The answer goes out, then the connection is dropped without warning.
            let drop_now = drop_now.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop_now.notify_one();
            });
            Response::new(full("closing"))
        }
        "/die" => {
            died.fetch_add(1, Ordering::SeqCst);
            drop_now.notify_one();
            // Never answered: the connection is gone first.
            std::future::pending::<Response<StubBody>>().await
        }
        "/containers/h/attach" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    loop {
                        match io.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = io.write_all(b"bye\n").await;
                                let _ = io.shutdown().await;
                                break;
                            }
                            Ok(n) => {
                                if io.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
            });
            let mut resp = Response::new(full(""));
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            resp.headers_mut()
                .insert("connection", "Upgrade".parse().unwrap());
            resp.headers_mut().insert("upgrade", "tcp".parse().unwrap());
            resp
        }
        _ => {
            let mut resp = Response::new(full("{\"message\":\"page not found\"}"));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    };
    let mut response = response;
    response
        .headers_mut()
        .insert("x-stub-conn", conn.to_string().parse().unwrap());
    Ok(response)
}

// === raw client helpers ===

/// One request on `s`, its answer read to the end of its (Content-Length) body.
async fn exchange(s: &mut UnixStream, request: &str) -> String {
    s.write_all(request.as_bytes()).await.unwrap();
    read_answer(s).await
}

/// Reads one answer: head, then Content-Length bytes of body.
async fn read_answer(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = find(&out, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if out.len() >= end + 4 + len {
                break;
            }
        }
        match tokio::time::timeout(T, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer within {T:?}; got {}", text(&out)),
        }
    }
    text(&out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stub connection an answer came over.
fn stub_conn(answer: &str) -> usize {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("x-stub-conn: "))
        .unwrap_or_else(|| panic!("no x-stub-conn in {answer}"))
        .trim()
        .parse()
        .unwrap()
}

const PING: &str = "GET /v1.41/_ping HTTP/1.1\r\nHost: d\r\n\r\n";
const PING_CLOSE: &str = "GET /v1.41/_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n";

// === the stub cases ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_requests_share_one_upstream_connection() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "").await;
    let base = stub.settled().await;
    let mut s = proxy.connect().await;
    let mut conns = Vec::new();
    for _ in 0..6 {
        let answer = exchange(&mut s, PING).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        conns.push(stub_conn(&answer));
    }
    assert!(conns.iter().all(|c| *c == conns[0]), "{conns:?}");
    assert_eq!(stub.accepted(), base + 1);
    // Two clients at once get a connection each.
    let mut other = proxy.connect().await;
    let answer = exchange(&mut other, PING).await;
    assert_ne!(stub_conn(&answer), conns[0], "{answer}");
    let answer = exchange(&mut s, PING).await;
    assert_eq!(stub_conn(&answer), conns[0], "{answer}");
    assert_eq!(stub.accepted(), base + 2);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_one_after_another_reuse_the_idle_connection() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "").await;
    let base = stub.settled().await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let mut s = proxy.connect().await;
        let answer = exchange(&mut s, PING).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        seen.push(stub_conn(&answer));
        drop(s);
        // The client's connection task ends and parks its upstream connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, vec![base + 1; 5]);
    assert_eq!(stub.accepted(), base + 1);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_max_idle_zero_keeps_no_idle_connection() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "pool_max_idle = 0").await;
    let base = stub.settled().await;
    for i in base + 1..=base + 3 {
        let mut s = proxy.connect().await;
        // Keep-alive within one client connection still shares one upstream connection.
        let a = exchange(&mut s, PING).await;
        let b = exchange(&mut s, PING_CLOSE).await;
        assert_eq!(stub_conn(&a), i, "{a}");
        assert_eq!(stub_conn(&b), i, "{b}");
        drop(s);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stub.accepted(), base + 3);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_expire_after_pool_idle_timeout() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "pool_idle_timeout = \"300ms\"").await;
    let base = stub.settled().await;
    let mut s = proxy.connect().await;
    assert_eq!(stub_conn(&exchange(&mut s, PING_CLOSE).await), base + 1);
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = proxy.connect().await;
    assert_eq!(stub_conn(&exchange(&mut s, PING_CLOSE).await), base + 1);
    drop(s);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut s = proxy.connect().await;
    assert_eq!(stub_conn(&exchange(&mut s, PING_CLOSE).await), base + 2);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_daemon_closed_is_replaced() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "").await;
    // Within one client connection.
    let mut s = proxy.connect().await;
    let first = exchange(&mut s, "GET /close HTTP/1.1\r\nHost: d\r\n\r\n").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let answer = exchange(&mut s, PING).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_ne!(stub_conn(&answer), stub_conn(&first), "{answer}");
    }
    // Through the idle list: the parked connection is closed by the daemon while parked.
    let mut s2 = proxy.connect().await;
    let parked = exchange(&mut s2, "GET /close HTTP/1.1\r\nHost: d\r\n\r\n").await;
    drop(s2);
    drop(s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let mut s = proxy.connect().await;
        let answer = exchange(&mut s, PING_CLOSE).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_ne!(stub_conn(&answer), stub_conn(&parked), "{answer}");
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_dying_mid_request_is_a_502_and_the_request_is_not_resent() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "").await;
    let body = "{\"x\":1}";
    let die = format!(
        "POST /v1.41/die HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // On a fresh upstream connection, and on one reused after keep-alive requests.
    for warm in [0, 3] {
        let before = stub.died.load(Ordering::SeqCst);
        let mut s = proxy.connect().await;
        for _ in 0..warm {
            assert!(exchange(&mut s, PING).await.starts_with("HTTP/1.1 200"));
        }
        let answer = exchange(&mut s, &die).await;
        assert!(answer.starts_with("HTTP/1.1 502"), "warm {warm}: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            stub.died.load(Ordering::SeqCst) - before,
            1,
            "warm {warm}: the request reached the daemon more than once"
        );
        // The client connection goes on, over a new upstream connection.
        let answer = exchange(&mut s, PING).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    // A GET too: not resent once it went out.
    let before = stub.died.load(Ordering::SeqCst);
    let mut s = proxy.connect().await;
    assert!(exchange(&mut s, PING).await.starts_with("HTTP/1.1 200"));
    let answer = exchange(&mut s, "GET /v1.41/die HTTP/1.1\r\nHost: d\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stub.died.load(Ordering::SeqCst) - before, 1);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_daemon_is_a_502_naming_the_connect_failure() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let proxy = Proxy::start(&missing, "").await;
    let mut s = proxy.connect().await;
    let answer = exchange(&mut s, PING).await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(answer.contains("cannot connect"), "{answer}");
    // The same client connection gets the daemon once it is there.
    let listener = UnixListener::bind(&missing).unwrap();
    let accept = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve_stub_conn(stream, 1, Arc::default()).await;
    });
    let answer = exchange(&mut s, PING).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(s);
    proxy.shutdown().await;
    accept.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_after_keepalive_requests_is_relayed() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket, "").await;
    let mut s = proxy.connect().await;
    let mut conn = 0;
    for _ in 0..3 {
        let answer = exchange(&mut s, PING).await;
        conn = stub_conn(&answer);
    }
    s.write_all(
        b"POST /v1.41/containers/h/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\
          Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_answer(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(
        stub_conn(&head),
        conn,
        "the upgrade did not reuse the connection"
    );
    s.write_all(b"hello through\n").await.unwrap();
    let mut got = vec![0u8; 14];
    tokio::time::timeout(T, s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello through\n");
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"bye\n");
    // The upgraded connection is the session's: the next client gets another one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = proxy.connect().await;
    let answer = exchange(&mut next, PING).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_ne!(stub_conn(&answer), conn, "{answer}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_daemon_gets_the_same_connection_reuse_and_upgrades() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let stub = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = a.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(serve_stub_conn(stream, conn, Arc::default()));
        }
    });
    let proxy = Proxy::start_at(&format!("tcp = \"{addr}\""), "").await;
    for _ in 0..100 {
        if accepted.load(Ordering::SeqCst) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = accepted.load(Ordering::SeqCst);
    // Keep-alive requests, then a client after it: one daemon connection.
    let mut s = proxy.connect().await;
    for _ in 0..3 {
        let answer = exchange(&mut s, PING).await;
        assert_eq!(stub_conn(&answer), base + 1, "{answer}");
    }
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = proxy.connect().await;
    assert_eq!(stub_conn(&exchange(&mut s, PING).await), base + 1);
    // An upgrade on it.
    s.write_all(
        b"POST /v1.41/containers/h/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\
          Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_answer(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"over tcp\n").await.unwrap();
    let mut got = vec![0u8; 9];
    tokio::time::timeout(T, s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"over tcp\n");
    drop(s);
    proxy.shutdown().await;
    stub.abort();
}

// === the real daemon, through the docker CLI ===

/// Counts the connections made to the real daemon: a relay in front of its socket.
async fn counting_relay(daemon: PathBuf) -> (PathBuf, Arc<AtomicUsize>, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("swr.")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("relay.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let daemon = daemon.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = UnixStream::connect(&daemon).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (socket, count, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_commands_share_daemon_connections_and_hijacks_work() {
    let (relay, connects, _relay_dir) = counting_relay(support::daemon_socket()).await;
    let proxy = Proxy::start(&relay, "").await;
    let sock = proxy.socket.clone();
    let image = support::test_image();
    let outcome = tokio::task::spawn_blocking(move || {
        let docker = support::Docker::new(&sock);
        let cleanup = support::Cleanup::new();
        let name = cleanup.container("speed");
        // One connection per command: the daemon connection is handed from one to the next.
        for _ in 0..5 {
            docker.ok(&["version", "--format", "{{.Server.Version}}"]);
        }
        let after_version = connects.load(Ordering::SeqCst);
        docker.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            &image,
            "sleep",
            "60",
        ]);
        // Hijacked exec after keep-alive requests (the CLI inspects, then starts).
        for i in 0..3 {
            let out = docker.ok_str(&["exec", &name, "echo", &format!("exec {i}")]);
            assert_eq!(out.trim(), format!("exec {i}"));
        }
        let echoed = docker
            .clone()
            .stdin(b"stdin through the relay\n".to_vec())
            .ok_str(&["exec", "-i", &name, "cat"]);
        assert_eq!(echoed.trim_end(), "stdin through the relay");
        let ran = docker.clone().stdin(b"attached\n".to_vec()).ok_str(&[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            &image,
            "cat",
        ]);
        assert_eq!(ran.trim_end(), "attached");
        let listed = docker.ok_str(&["ps", "--filter", &format!("name={name}"), "-q"]);
        assert!(!listed.trim().is_empty(), "container not listed");
        (after_version, connects.load(Ordering::SeqCst))
    })
    .await
    .unwrap();
    let (after_version, total) = outcome;
    // Five CLI connections, one after another: fewer daemon connections than commands.
    assert!(
        after_version <= 2,
        "{after_version} daemon connections for 5 `docker version`"
    );
    assert!(
        total > after_version,
        "hijacks need connections of their own"
    );
    proxy.shutdown().await;
}
