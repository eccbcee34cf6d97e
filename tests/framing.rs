//! HTTP framing through sockwarden, written as literal bytes on a raw socket.
//!
//! Cases a real daemon can produce run against the private test daemon
//! (`SOCKWARDEN_TEST_DOCKER_SOCK`, started by scripts/test.sh); cases it cannot (a daemon dying
//! mid-stream on cue, a stream whose reader must be seen to go away, an upstream that must never
//! be reached) run against an in-process stub upstream. The proxy runs in-process too, through
//! the library's `Server`, so each test owns its own instance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use sockwarden::config::Config;
use sockwarden::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Notify};

fn daemon_socket() -> PathBuf {
    PathBuf::from(std::env::var("SOCKWARDEN_TEST_DOCKER_SOCK").expect(
        "SOCKWARDEN_TEST_DOCKER_SOCK is not set: run scripts/test.sh (it starts a private dockerd)",
    ))
}

// === in-process proxy ===

struct Proxy {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    async fn start(upstream: &Path) -> Proxy {
        Proxy::start_with(upstream, "").await
    }

    async fn start_with(upstream: &Path, server_settings: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("p.sock");
        let text = format!(
            "[upstream]\nsocket = {:?}\n[audit]\nsink = \"off\"\n[server]\n{server_settings}\n\
             [[client]]\nname = \"test\"\npolicy = \"allow-all\"\n\
             [[listen]]\nunix = {:?}\nclient = \"test\"\n",
            upstream.display().to_string(),
            socket.display().to_string()
        );
        let config = Config::parse(&text, "test").unwrap();
        // Not reloaded here; the source only matters for SIGHUP.
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

    /// Sends SIGTERM's equivalent and waits for the server to finish.
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

// === in-process stub upstream ===

/// A tiny daemon stand-in with routes for the cases a real daemon cannot be made to produce.
struct Stub {
    socket: PathBuf,
    /// Requests that reached the stub.
    requests: Arc<AtomicUsize>,
    /// Notified when a `/stream` reader has gone away.
    stream_reader_gone: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Stub {
    async fn start() -> Stub {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("stub.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let gone = Arc::new(Notify::new());
        let (r, g) = (requests.clone(), gone.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, g) = (r.clone(), g.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        r.fetch_add(1, Ordering::SeqCst);
                        stub_route(req, g.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Stub {
            socket,
            requests,
            stream_reader_gone: gone,
            task,
            _dir: dir,
        }
    }

    fn hits(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes the listening socket, as a daemon that went away.
    fn kill(&self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

type StubBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(data: impl Into<Bytes>) -> StubBody {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

async fn stub_route(
    mut req: Request<Incoming>,
    reader_gone: Arc<Notify>,
) -> Result<Response<StubBody>, Infallible> {
    let full_path = req.uri().path().to_owned();
    let path = full_path
        .strip_prefix("/v1.41")
        .unwrap_or(&full_path)
        .to_owned();
    let seen = |req: &Request<Incoming>, name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .unwrap_or_else(|| "-".into())
    };
    let response = match path.as_str() {
        "/_ping" => Response::new(full("OK")),
        // Echoes the body and reports the framing headers the upstream saw.
        "/echo" => {
            let headers = format!(
                "te={} cl={} expect={} connection={} upgrade={}",
                seen(&req, "transfer-encoding"),
                seen(&req, "content-length"),
                seen(&req, "expect"),
                seen(&req, "connection"),
                seen(&req, "upgrade"),
            );
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let mut resp = Response::new(full(body));
            resp.headers_mut()
                .insert("x-seen", headers.parse().unwrap());
            resp
        }
        // An endless stream, one chunk every 50 ms, that notices when nobody reads it any more.
        "/stream" => {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
            tokio::spawn(async move {
                let mut n = 0u64;
                loop {
                    n += 1;
                    if tx
                        .send(Ok(Frame::data(Bytes::from(format!("tick {n}\n")))))
                        .await
                        .is_err()
                    {
                        reader_gone.notify_one();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            let stream = tokio_stream_from(rx);
            Response::new(StreamBody::new(stream).boxed())
        }
        // One chunk, then the connection breaks: a daemon killed mid-stream.
        "/die" => {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(2);
            tokio::spawn(async move {
                let _ = tx
                    .send(Ok(Frame::data(Bytes::from_static(b"partial"))))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = tx.send(Err(std::io::Error::other("daemon killed"))).await;
            });
            Response::new(StreamBody::new(tokio_stream_from(rx)).boxed())
        }
        // Answers after a second: an in-flight request during shutdown.
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Response::new(full("slow done"))
        }
        // Upgrades and echoes raw bytes: a hijacked session. After the client's EOF it still
        // writes "bye\n", as a container's output that follows the end of its stdin.
        "/containers/h/attach" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    loop {
                        match io.read(&mut buf).await {
                            Ok(0) => {
                                let _ = io.write_all(b"bye\n").await;
                                let _ = io.shutdown().await;
                                break;
                            }
                            Ok(n) => {
                                if io.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
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
    Ok(response)
}

/// A `Stream` over an mpsc receiver (what tokio-stream's wrapper does, without the dependency).
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

// === raw client helpers ===

/// Reads until `needle` has been seen (or EOF / timeout), returning everything read.
async fn read_until(stream: &mut UnixStream, needle: &[u8], limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while !contains(&out, needle) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Reads until the peer closes (or timeout); `None` on timeout.
async fn read_to_eof(stream: &mut UnixStream, limit: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const T: Duration = Duration::from_secs(10);

// === against the real daemon ===

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let proxy = Proxy::start(&daemon_socket()).await;
    let mut s = proxy.connect().await;
    s.write_all(
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n\
          GET /v1.41/version HTTP/1.1\r\nHost: d\r\n\r\n\
          HEAD /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let out = read_to_eof(&mut s, T).await.expect("connection not closed");
    let out = text(&out);
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
    let ping = out.find("\r\n\r\nOK").expect("ping body");
    let version = out.find("\"ApiVersion\"").expect("version body");
    assert!(ping < version, "responses out of order: {out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn head_ping_has_headers_and_no_body() {
    let proxy = Proxy::start(&daemon_socket()).await;
    let mut s = proxy.connect().await;
    // HEAD then GET on the same connection: a body after HEAD would corrupt the second answer.
    s.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    let head = text(&read_until(&mut s, b"\r\n\r\n", T).await).to_lowercase();
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("api-version: 1.41"), "{head}");
    assert!(head.contains("content-length: 0"), "{head}");
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let rest = read_to_eof(&mut s, T).await.unwrap();
    assert!(
        text(&rest).starts_with("HTTP/1.1 200 OK"),
        "HEAD left bytes behind: {}",
        text(&rest)
    );
    assert!(text(&rest).ends_with("OK"));
    proxy.shutdown().await;
}

#[tokio::test]
async fn expect_100_continue_with_the_daemon() {
    let proxy = Proxy::start(&daemon_socket()).await;
    let mut s = proxy.connect().await;
    let body = br#"{"Image":"does-not-exist:never","Cmd":["true"]}"#;
    let head = format!(
        "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let interim = text(&read_until(&mut s, b"\r\n\r\n", T).await);
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(body).await.unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    // The daemon read the body: it complains about the image it names.
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(out.contains("does-not-exist"), "{out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn upgrade_on_an_ordinary_route_is_not_honoured() {
    let proxy = Proxy::start(&daemon_socket()).await;
    let mut s = proxy.connect().await;
    s.write_all(
        b"GET /v1.41/version HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\
          GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(!out.contains(" 101 "), "{out}");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn attach_without_upgrade_header_is_refused_with_docker_error() {
    let proxy = Proxy::start(&daemon_socket()).await;
    let mut s = proxy.connect().await;
    s.write_all(
        b"POST /v1.41/containers/whatever/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\
          Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(
        out.contains(r#"{"message":"sockwarden: attach needs"#),
        "{out}"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn daemon_down_gives_502_in_docker_shape() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&dir.path().join("no-daemon.sock")).await;
    let mut s = proxy.connect().await;
    s.write_all(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    assert!(
        out.to_lowercase()
            .contains("content-type: application/json"),
        "{out}"
    );
    assert!(
        out.contains(r#"{"message":"sockwarden: cannot reach the Docker daemon at unix://"#),
        "{out}"
    );
    proxy.shutdown().await;
}

// === against the stub upstream ===

#[tokio::test]
async fn chunked_upload_is_streamed_and_reframed() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    for part in ["hello ", "chunked ", "world"] {
        s.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("hello chunked world"), "{out}");
    // Hop-by-hop headers were not relayed: the upstream saw hyper's own framing.
    assert!(out.contains("te=chunked"), "{out}");
    assert!(out.contains("connection=-"), "{out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn hop_by_hop_and_expect_are_not_relayed() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\
          Connection: close, X-Hop\r\nX-Hop: secret\r\nUpgrade: tcp\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = text(&read_until(&mut s, b"\r\n\r\n", T).await);
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(b"abc").await.unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(
        out.contains("te=- cl=3 expect=- connection=- upgrade=-"),
        "{out}"
    );
    assert!(out.ends_with("abc"), "{out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_never_reach_the_daemon() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let cases: [&[u8]; 7] = [
        b"GARBAGE\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"GET /_ping HTTP/1.1\r\nHost: d\r\nBad Header: x\r\n\r\n",
        b"GET http://evil.example/_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        b"CONNECT docker:2375 HTTP/1.1\r\nHost: docker:2375\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: d\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip\r\n\r\n",
    ];
    for case in cases {
        let mut s = proxy.connect().await;
        s.write_all(case).await.unwrap();
        let out = text(&read_until(&mut s, b"\r\n\r\n", T).await);
        assert!(
            out.starts_with("HTTP/1.1 400"),
            "{:?} answered {out:?}",
            text(case)
        );
    }
    assert_eq!(stub.hits(), 0, "a malformed request reached the upstream");
    // The proxy still works afterwards.
    let mut s = proxy.connect().await;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(text(&read_to_eof(&mut s, T).await.unwrap()).ends_with("OK"));
    proxy.shutdown().await;
}

/// hyper's parser hides these two shapes from the service (it drops the Content-Length lines);
/// sockwarden sees them in the raw head (`listener::framing`) and refuses them.
#[tokio::test]
async fn ambiguous_framing_gets_400_and_never_reaches_the_daemon() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let cases: [(&str, &[u8], &str); 7] = [
        (
            "CL then TE",
            b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "TE then CL",
            b"POST /echo HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "CL zero and TE, lower case",
            b"POST /echo HTTP/1.1\r\nhost: d\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "equal Content-Length twice",
            b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            "more than one Content-Length header",
        ),
        (
            "Content-Length twice, different case",
            b"POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\nCONTENT-LENGTH: 5\r\nConnection: close\r\n\r\nhello",
            "more than one Content-Length header",
        ),
        (
            "zero Content-Length twice on a GET",
            b"GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "more than one Content-Length header",
        ),
        (
            "bare LF line ends",
            b"POST /echo HTTP/1.1\nHost: d\nContent-Length: 5\nTransfer-Encoding: chunked\nConnection: close\n\n5\r\nhello\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
    ];
    for (what, raw, why) in cases {
        let mut s = proxy.connect().await;
        s.write_all(raw).await.unwrap();
        let out = text(&read_to_eof(&mut s, T).await.unwrap_or_default());
        assert!(out.starts_with("HTTP/1.1 400"), "{what}: {out:?}");
        assert!(
            out.contains("{\"message\":\"sockwarden: ") && out.contains(why),
            "{what}: {out:?}"
        );
    }
    assert_eq!(stub.hits(), 0, "an ambiguous request reached the upstream");
    // Pipelined between clean requests on one connection: only the ambiguous one is refused,
    // and its body is not read as a request.
    let mut s = proxy.connect().await;
    s.write_all(
        b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 18\r\nContent-Length: 18\r\n\r\nGET /smuggled HTTP\
          POST /echo HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .await
    .unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap_or_default());
    let statuses: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| out.get(i + 9..i + 12))
        .collect();
    assert_eq!(statuses, ["200", "400", "200"], "{out}");
    assert_eq!(
        stub.hits(),
        2,
        "only the two clean requests reach the upstream"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn client_disconnect_mid_stream_tears_down_upstream() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut s, b"tick 3\n", T).await;
    assert!(
        contains(&got, b"tick 3\n"),
        "stream not live: {}",
        text(&got)
    );
    drop(s);
    tokio::time::timeout(T, stub.stream_reader_gone.notified())
        .await
        .expect("upstream stream still being read after the client left");
    proxy.shutdown().await;
}

#[tokio::test]
async fn stream_is_relayed_live_not_buffered() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    // Ticks come every 50 ms; seeing the first ones quickly proves each chunk is flushed.
    let started = std::time::Instant::now();
    let got = read_until(&mut s, b"tick 2\n", T).await;
    assert!(contains(&got, b"tick 2\n"));
    assert!(text(&got)
        .to_lowercase()
        .contains("transfer-encoding: chunked"));
    assert!(started.elapsed() < Duration::from_secs(5));
    proxy.shutdown().await;
}

#[tokio::test]
async fn daemon_dying_mid_stream_breaks_the_client_stream() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(b"GET /die HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    let out = read_to_eof(&mut s, T).await.expect("connection left open");
    assert!(contains(&out, b"partial"), "{}", text(&out));
    // A truncated chunked body: no terminating zero-length chunk, so the client sees an error.
    assert!(!out.ends_with(b"0\r\n\r\n"), "{}", text(&out));
    // And once the daemon is gone altogether: 502.
    stub.kill();
    let mut s = proxy.connect().await;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let out = text(&read_to_eof(&mut s, T).await.unwrap());
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn slow_header_times_out_but_idle_stream_does_not() {
    let stub = Stub::start().await;
    let proxy = Proxy::start_with(&stub.socket, "header_read_timeout = \"300ms\"").await;
    // A stream whose chunks come every 50 ms keeps going well past the header timeout.
    let mut streaming = proxy.connect().await;
    streaming
        .write_all(b"GET /stream HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    // A client that never finishes its request head is cut off.
    let mut slow = proxy.connect().await;
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\n")
        .await
        .unwrap();
    let out = read_to_eof(&mut slow, Duration::from_secs(5))
        .await
        .expect("slow client was not disconnected");
    assert!(!contains(&out, b"200 OK"), "{}", text(&out));
    let got = read_until(&mut streaming, b"tick 20\n", T).await;
    assert!(contains(&got, b"tick 20\n"), "stream cut: {}", text(&got));
    assert_eq!(stub.hits(), 1, "only the stream reached the upstream");
    proxy.shutdown().await;
}

#[tokio::test]
async fn hijack_carries_half_close_both_ways() {
    let stub = Stub::start().await;
    let proxy = Proxy::start(&stub.socket).await;
    let mut s = proxy.connect().await;
    s.write_all(
        b"POST /v1.41/containers/h/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: d\r\n\
          Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    .await
    .unwrap();
    let head = text(&read_until(&mut s, b"\r\n\r\n", T).await).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: tcp"), "{head}");
    s.write_all(b"ping\n").await.unwrap();
    assert!(contains(&read_until(&mut s, b"ping\n", T).await, b"ping\n"));
    // stdin EOF: the upstream must see it, and its output after that must still arrive.
    s.shutdown().await.unwrap();
    let rest = read_to_eof(&mut s, T).await.expect("session not closed");
    assert_eq!(text(&rest), "bye\n");
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_then_closes_hijacks_and_removes_socket() {
    let stub = Stub::start().await;
    let proxy = Proxy::start_with(&stub.socket, "shutdown_grace = \"2s\"").await;
    let socket = proxy.socket.clone();
    // A hijacked session that never ends by itself.
    let mut hijacked = proxy.connect().await;
    hijacked
        .write_all(
            b"POST /containers/h/attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\n\
              Upgrade: tcp\r\n\r\n",
        )
        .await
        .unwrap();
    let head = text(&read_until(&mut hijacked, b"\r\n\r\n", T).await);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // An in-flight request that needs a second.
    let mut slow = proxy.connect().await;
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: d\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(proxy.shutdown());
    let out = text(&read_to_eof(&mut slow, T).await.unwrap());
    assert!(out.ends_with("slow done"), "in-flight request cut: {out}");
    // New connections are refused once shutdown has begun.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(UnixStream::connect(&socket).await.is_err());
    // The hijacked session is closed when the grace period is over, not before.
    hijacked.write_all(b"still here\n").await.unwrap();
    assert!(contains(
        &read_until(&mut hijacked, b"still here\n", T).await,
        b"still here\n"
    ));
    let rest = read_to_eof(&mut hijacked, T)
        .await
        .expect("hijack left open");
    assert!(
        !contains(&rest, b"bye"),
        "closed by shutdown, not by the upstream"
    );
    tokio::time::timeout(T, stopping).await.unwrap().unwrap();
    assert!(!socket.exists(), "socket file left behind");
}
