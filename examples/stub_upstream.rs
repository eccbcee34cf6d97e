//! A fast stand-in for the Docker daemon, used by `scripts/bench.sh`.
//!
//! An HTTP/1.1 server (hyper 1.x) on a unix socket that answers a handful of Docker API
//! endpoints the way dockerd 20.10 does, with as little work as possible, so that a benchmark
//! through a proxy measures the proxy rather than the daemon:
//!
//! * `GET|HEAD /_ping`: `OK` with the daemon's headers (`Api-Version`, `Ostype`, ...).
//! * `GET /containers/json`: a fixed JSON array of three containers (about 3.5 KB), sent chunked
//!   in one chunk as dockerd does for bodies over 2 KiB.
//! * `GET /images/get?names=...&size=N`: a streamed `application/x-tar` body of `N` bytes
//!   (default 512 MiB), sent chunked in 64 KiB pieces of one shared buffer (nothing is
//!   allocated per chunk, nothing is held in memory).
//! * `POST /images/load`, `POST /build`, `PUT /containers/{id}/archive`: consume the request
//!   body and answer `{"bytes":N}` with the number of bytes received.
//! * `POST /exec/{id}/start` and `POST /containers/{id}/attach` with an `Upgrade` header: the
//!   daemon's hijack answer (`101 UPGRADED`, `Content-Type: application/vnd.docker.raw-stream`,
//!   `Connection: Upgrade`, `Upgrade: tcp`; exec start adds the daemon's middleware headers,
//!   attach does not), then a raw stream as for a container without a TTY. An ID of the form
//!   `bench-down-N` makes the stub the "container" `head -c N /dev/zero`: N bytes of stdout in
//!   8-byte-framed (stdcopy) frames of up to 32 KiB (the daemon's copy buffer), then it closes.
//!   Any other ID is `cat > /dev/null`: stdin is read to its end (the client's half-close) and
//!   discarded, then the stub closes. Without `Upgrade` (old clients, to whom dockerd answers
//!   `200 OK` and the raw stream) the stub answers 400: it does not imitate that. The stub answers no
//!   `GET /exec/{id}/json` or `GET /containers/{id}/json` (404): a proxy that looks the exec up
//!   before starting it finds nothing to check and passes the start on.
//!
//! Every path may carry an API version prefix (`/v1.41/...`). Anything else is a 404 with
//! the daemon's JSON error shape.
//!
//! ```text
//! cargo run --release --example stub_upstream -- --socket /tmp/stub.sock
//! ```

use std::convert::Infallible;
use std::error::Error;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use clap::Parser;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixListener;

type BoxError = Box<dyn Error + Send + Sync>;
type RespBody = Either<Full<Bytes>, ZeroStream>;

/// Size of every streamed chunk.
const CHUNK: usize = 64 * 1024;
/// Default size of the `/images/get` body.
const DEFAULT_SIZE: u64 = 512 * 1024 * 1024;
/// Largest stdout frame of a hijacked stream (dockerd copies container output in 32 KiB reads).
const FRAME: usize = 32 * 1024;

#[derive(Parser, Debug)]
#[command(
    about = "Docker-daemon stand-in for benchmarks: serves a few API endpoints on a unix socket"
)]
struct Args {
    /// Unix socket to listen on (a stale file is replaced).
    #[arg(long)]
    socket: PathBuf,
    /// Tokio worker threads (0 = one per CPU, like the Go runtime of the real daemon).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// A chunked response body of `remaining` bytes made of clones of one shared buffer (64 KiB of
/// zeros for `/images/get`, or a whole JSON document sent as a single chunk).
struct ZeroStream {
    chunk: Bytes,
    remaining: u64,
}

impl Body for ZeroStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(self.chunk.len());
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        // Like dockerd, the length is not announced: the body goes out chunked.
        SizeHint::default()
    }
}

/// Three containers in the shape `GET /containers/json` has on Docker 20.10.
const CONTAINERS_JSON: &str = r#"[{"Id":"8dfafdbc3a40a9e4b5d3e1f0c2a7b6d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3","Names":["/web"],"Image":"nginx:1.25-alpine","ImageID":"sha256:4a7d3b2c1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c","Command":"/docker-entrypoint.sh nginx -g 'daemon off;'","Created":1732867200,"Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}],"Labels":{"com.docker.compose.config-hash":"3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d","com.docker.compose.container-number":"1","com.docker.compose.oneoff":"False","com.docker.compose.project":"shop","com.docker.compose.service":"web","com.docker.compose.version":"2.24.5"},"State":"running","Status":"Up 3 hours","HostConfig":{"NetworkMode":"shop_default"},"NetworkSettings":{"Networks":{"shop_default":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2","EndpointID":"c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3","Gateway":"172.18.0.1","IPAddress":"172.18.0.3","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:12:00:03","DriverOpts":null}}},"Mounts":[{"Type":"bind","Source":"/srv/shop/nginx.conf","Destination":"/etc/nginx/nginx.conf","Mode":"ro","RW":false,"Propagation":"rprivate"}]},{"Id":"2b9e0c4d7f1a3e5b8c6d9f0a2e4b6c8d0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c","Names":["/db"],"Image":"postgres:16","ImageID":"sha256:9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b","Command":"docker-entrypoint.sh postgres","Created":1732863600,"Ports":[{"PrivatePort":5432,"Type":"tcp"}],"Labels":{"com.docker.compose.config-hash":"7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b","com.docker.compose.container-number":"1","com.docker.compose.oneoff":"False","com.docker.compose.project":"shop","com.docker.compose.service":"db","com.docker.compose.version":"2.24.5"},"State":"running","Status":"Up 3 hours (healthy)","HostConfig":{"NetworkMode":"shop_default"},"NetworkSettings":{"Networks":{"shop_default":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2","EndpointID":"d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4","Gateway":"172.18.0.1","IPAddress":"172.18.0.2","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"02:42:ac:12:00:02","DriverOpts":null}}},"Mounts":[{"Type":"volume","Name":"shop_pgdata","Source":"/var/lib/docker/volumes/shop_pgdata/_data","Destination":"/var/lib/postgresql/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}]},{"Id":"5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f","Names":["/backup-cron"],"Image":"alpine:3.19","ImageID":"sha256:1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e","Command":"crond -f -l 8","Created":1732780800,"Ports":[],"Labels":{"org.opencontainers.image.title":"backup-cron"},"State":"exited","Status":"Exited (0) 2 days ago","HostConfig":{"NetworkMode":"bridge"},"NetworkSettings":{"Networks":{"bridge":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"","DriverOpts":null}}},"Mounts":[{"Type":"bind","Source":"/srv/backups","Destination":"/backups","Mode":"","RW":true,"Propagation":"rprivate"}]}]
"#;

/// Headers dockerd puts on every response.
fn daemon_headers(resp: &mut Response<RespBody>, content_type: &'static str) {
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static("1.41"));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static("Docker/20.10.24+dfsg1 (linux)"),
    );
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<RespBody> {
    let mut resp = Response::new(Either::Left(Full::new(body.into())));
    *resp.status_mut() = status;
    daemon_headers(&mut resp, content_type);
    resp
}

/// Strips an optional `/v1.41`-style API version prefix.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with('/') {
            return &rest[end..];
        }
    }
    path
}

/// The value of `key` in a query string (no percent-decoding: only numbers are read).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

async fn handle(req: Request<Incoming>, chunk: Bytes) -> Result<Response<RespBody>, BoxError> {
    let path = strip_version(req.uri().path()).to_owned();
    let method = req.method().clone();
    let resp = match (&method, path.as_str()) {
        (&Method::GET, "/_ping") => {
            let mut r = full(StatusCode::OK, "text/plain; charset=utf-8", "OK");
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        (&Method::HEAD, "/_ping") => {
            let mut r = full(StatusCode::OK, "text/plain; charset=utf-8", Bytes::new());
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        (&Method::GET, "/containers/json") => {
            // dockerd (Go's net/http) announces a length only for bodies up to 2 KiB; a longer
            // listing goes out chunked, as one chunk.
            let json = Bytes::from_static(CONTAINERS_JSON.as_bytes());
            let mut r = Response::new(Either::Right(ZeroStream {
                remaining: json.len() as u64,
                chunk: json,
            }));
            daemon_headers(&mut r, "application/json");
            r
        }
        (&Method::GET, "/images/get") => {
            let size = match query_param(req.uri().query(), "size") {
                Some(s) => s.parse::<u64>()?,
                None => DEFAULT_SIZE,
            };
            let mut r = Response::new(Either::Right(ZeroStream {
                chunk,
                remaining: size,
            }));
            daemon_headers(&mut r, "application/x-tar");
            r
        }
        (&Method::POST, p) if hijack_id(p).is_some() => hijack(req).await?,
        (&Method::POST, "/images/load") | (&Method::POST, "/build") => consume(req).await?,
        (&Method::PUT, p) if p.starts_with("/containers/") && p.ends_with("/archive") => {
            consume(req).await?
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"message\":\"page not found\"}\n",
        ),
    };
    Ok(resp)
}

/// The exec or container ID of a hijacking route (`/exec/{id}/start`, `/containers/{id}/attach`).
fn hijack_id(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/exec/")
        .and_then(|r| r.strip_suffix("/start"))
        .or_else(|| {
            path.strip_prefix("/containers/")
                .and_then(|r| r.strip_suffix("/attach"))
        })?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// What the stub's "container" does on a hijacked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamJob {
    /// `head -c N /dev/zero`: N bytes of stdout, framed.
    Source(u64),
    /// `cat > /dev/null`: stdin read to its end.
    Sink,
}

fn stream_job(id: &str) -> StreamJob {
    match id
        .strip_prefix("bench-down-")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(n) => StreamJob::Source(n),
        None => StreamJob::Sink,
    }
}

/// `POST /exec/{id}/start` or `POST /containers/{id}/attach`: the daemon's hijack answer, then
/// the stream (see the module comment).
async fn hijack(mut req: Request<Incoming>) -> Result<Response<RespBody>, BoxError> {
    let path = strip_version(req.uri().path()).to_owned();
    let job = stream_job(hijack_id(&path).unwrap_or(""));
    let is_exec = path.starts_with("/exec/");
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if !upgrade {
        // dockerd answers old clients with a 200 and the raw stream on the same connection;
        // the stub does not imitate that. (HAProxy drops `Upgrade` from a request that has a
        // body, such as exec start's: such a request ends here.)
        return Ok(full(
            StatusCode::BAD_REQUEST,
            "application/json",
            "{\"message\":\"stub_upstream: no Upgrade header arrived (dropped on the way?); \
             the daemon's 200 answer to old clients is not imitated\"}\n",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The exec start body ({"Detach":false,"Tty":false}) is read and ignored.
    let _ = req.into_body().collect().await?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                if let Err(e) = run_stream(io, job).await {
                    eprintln!("stub_upstream: hijacked stream: {e}");
                }
            }
            Err(e) => eprintln!("stub_upstream: upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Either::Left(Full::new(Bytes::new())));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.extensions_mut()
        .insert(ReasonPhrase::from_static(b"UPGRADED"));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    if is_exec {
        // Exec start's 101 carries the middleware headers; attach's does not.
        h.insert("api-version", HeaderValue::from_static("1.41"));
        h.insert("docker-experimental", HeaderValue::from_static("false"));
        h.insert("ostype", HeaderValue::from_static("linux"));
        h.insert(
            header::SERVER,
            HeaderValue::from_static("Docker/20.10.24+dfsg1 (linux)"),
        );
    }
    Ok(r)
}

/// One full stdout frame (header and FRAME zero bytes), shared by every frame sent.
fn framed_chunk() -> Bytes {
    let mut v = vec![0u8; 8 + FRAME];
    v[0] = 1;
    v[4..8].copy_from_slice(&(FRAME as u32).to_be_bytes());
    Bytes::from(v)
}

/// The hijacked stream of one exec/attach.
async fn run_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    job: StreamJob,
) -> std::io::Result<()> {
    match job {
        StreamJob::Source(n) => {
            let full = framed_chunk();
            let mut left = n;
            while left >= FRAME as u64 {
                io.write_all(&full).await?;
                left -= FRAME as u64;
            }
            if left > 0 {
                let mut last = vec![0u8; 8 + left as usize];
                last[0] = 1;
                last[4..8].copy_from_slice(&(left as u32).to_be_bytes());
                io.write_all(&last).await?;
            }
        }
        StreamJob::Sink => {
            let mut buf = vec![0u8; 64 * 1024];
            while io.read(&mut buf).await? > 0 {}
        }
    }
    io.shutdown().await
}

/// Reads the whole request body without keeping it and answers its length.
async fn consume(req: Request<Incoming>) -> Result<Response<RespBody>, BoxError> {
    let mut body = req.into_body();
    let mut n: u64 = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            n += data.len() as u64;
        }
    }
    Ok(full(
        StatusCode::OK,
        "application/json",
        format!("{{\"bytes\":{n}}}\n"),
    ))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    rt.enable_all().build()?.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    match std::fs::remove_file(&args.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let listener = UnixListener::bind(&args.socket)?;
    eprintln!("stub_upstream listening on {}", args.socket.display());
    let chunk = Bytes::from(vec![0u8; CHUNK]);
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => break,
            _ = sigterm.recv() => break,
        };
        let chunk = chunk.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, chunk.clone()));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                if !e.is_incomplete_message() {
                    eprintln!("stub_upstream: connection error: {e}");
                }
            }
        });
    }
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
