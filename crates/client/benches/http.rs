//! End-to-end client benchmarks: courier beside reqwest, hyper-util's legacy
//! `Client` and a hand-written tokio client (the floor), in one run, against
//! the same local servers.
//!
//! Run it with `cargo xtask bench client`: that builds and starts the bench
//! server of `courier-test-support` (hyper, feature `bench-server`) pinned
//! to CPU 1, starts an nginx pinned there too, runs this target pinned to
//! CPU 0 and prints the tables. The servers are found through
//!
//! ```text
//! COURIER_BENCH_SERVER    127.0.0.1:PORT of bench_server (without it, nothing runs)
//! COURIER_BENCH_NGINX     127.0.0.1:PORT of an nginx serving /hello.txt (optional)
//! COURIER_BENCH_EXTRA     a file to append the figures to (JSON lines)
//! COURIER_BENCH_RSS       0: leave out the idle-pool memory measurement
//! COURIER_BENCH_CRITERION 0: leave out the criterion groups
//! COURIER_BENCH_ROUNDS    0: leave out the interleaved rounds
//! COURIER_BENCH_QUICK     1: 6 rounds instead of 20
//! COURIER_BENCH_ONLY      run only the round cases whose `group/server` contains this
//! ```
//!
//! Every client runs on a current-thread tokio runtime on the bench thread
//! (one client core).
//!
//! The cases:
//!
//! * `client_get_c1`, `client_get_c64`: `GET /small` (13 bytes with
//!   Content-Length; nginx: `/hello.txt`, 12 bytes), the whole body read,
//!   one request in flight, or 64 (64 spawned tasks taking requests from
//!   one counter), on each client's kept-alive pool.
//! * `client_download_len`, `client_download_chunked`: 100 MiB bodies from
//!   the bench server, streamed (courier `resp.content().chunk()`, reqwest
//!   `chunk()`, hyper `frame()`, the floor counting what it reads into its
//!   buffer), with Content-Length or chunked framing.
//! * `client_upload`: `POST /upload` of 1 MiB from a pre-built `Bytes`
//!   (cloned per request, no copy), the server answering the length.
//!
//! Each case is measured in interleaved rounds (`rounds_case`): in each of
//! 20 rounds every client, in an order that rotates, runs one timed block of
//! about 0.1 s (1,500 requests at concurrency 1, 12,000 at 64, 5 downloads,
//! 200 uploads), taking its wall time and the process CPU time (user +
//! system, `getrusage(RUSAGE_SELF)`) around it. Downloads and uploads get a
//! new client, so a new connection, per block (plus one untimed operation),
//! since one connection's bulk speed depends on how the kernel autotuned its
//! buffers (1 to 4 MB here); GETs keep each client's pool (warmed by one
//! untimed block). Each client's figures are the median block rate (with
//! quartiles) and CPU per operation, and paired ratios: the median over
//! rounds of its rate, or CPU, over another client's in the same round. On
//! this shared machine one client's rate moved by a factor of two within
//! seconds, so comparing one client's seconds with another's (criterion's
//! one benchmark after the other) compared moments more than clients;
//! pairing by round cancels that. The figures are appended to
//! `COURIER_BENCH_EXTRA` as `rounds` lines.
//!
//! The small GETs also run as criterion groups first (function = client,
//! parameter = server, one element of throughput per request, `iters`
//! requests timed inside one `block_on` with `iter_custom`), which keeps
//! criterion's record and confidence intervals; `cargo xtask bench` shows
//! their medians beside the rounds'.
//!
//! Then, each in a fresh child process (this binary again, with
//! `COURIER_BENCH_RSS_CHILD=<client>`), the resident memory of 1,000 idle
//! keep-alive connections: one request first, RSS from `/proc/self/statm`,
//! then 1,000 concurrent `GET /small` (so about 1,000 connections), 500 ms
//! for every connection to go back to its pool idle, RSS again. The
//! server's count of open connections (`/conns`, before and after) says how
//! many new connections the client opened and kept; the figure is (RSS
//! after - RSS before) / that count (1,000 or a little less: a request may
//! reuse a connection another one has just released).
//!
//! The clients:
//!
//! * `courier`: a default `ClientSession` (cookie jar, timeouts) with a
//!   `TcpConnector` allowing 2,048 connections.
//! * `reqwest`: `reqwest::Client` with default features off (plain HTTP/1.1),
//!   no proxy lookup; otherwise its defaults (`TCP_NODELAY`, 90 s idle pool).
//! * `hyper-util`: `hyper_util::client::legacy::Client` over `HttpConnector`
//!   with `TCP_NODELAY` and the tokio pool timer, as reqwest configures it.
//! * `floor`: a hand-written client: an idle list of `TcpStream`s under a
//!   mutex, one stream per request in flight; the request is a pre-built
//!   byte string (upload: head and body in vectored writes of at most
//!   64 KiB); the head is read into the calling task's 64 KiB buffer up to
//!   CRLFCRLF and scanned for Content-Length, Transfer-Encoding and
//!   Connection; the body is read into that buffer and counted, de-chunked
//!   by a minimal state machine when chunked. Keep-alive, and one retry on
//!   a fresh connection when a reused one fails (as the others). Nothing is
//!   allocated per request.

mod support;

use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, IoSlice, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_client::url::Url;
use courier_client::{ClientSession, TcpConnector};
use criterion::{BenchmarkId, Criterion, Throughput};
use http_body_util::{BodyExt as _, Full};
use hyper::Uri;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use support::{
    CRITERION_VAR, Extra, ROUNDS_VAR, block_quartiles, cpu_time, enabled, find, invalid,
    paired_ratio, runtime, selected,
};

/// `127.0.0.1:PORT` of the bench server.
const SERVER_VAR: &str = "COURIER_BENCH_SERVER";
/// `127.0.0.1:PORT` of nginx (optional).
const NGINX_VAR: &str = "COURIER_BENCH_NGINX";
/// `0` leaves out the idle-pool memory measurement.
const RSS_VAR: &str = "COURIER_BENCH_RSS";
/// Set in the child process that measures one client's idle pool.
const RSS_CHILD_VAR: &str = "COURIER_BENCH_RSS_CHILD";

/// The clients, in table order.
const CLIENTS: [Kind; 4] = [Kind::Courier, Kind::Reqwest, Kind::HyperUtil, Kind::Floor];

/// Bytes per download.
const DOWNLOAD: u64 = 100 * 1024 * 1024;
/// Bytes per upload.
const UPLOAD: usize = 1024 * 1024;
/// Idle connections for the memory measurement.
const IDLE_CONNS: usize = 1000;
/// The floor's per-task buffer (head, small bodies, download reads),
/// allocated by the floor on a task's first request.
const SCRATCH: usize = 64 * 1024;
/// The most the floor writes in one call: one 1 MiB `writev` measured
/// about 20% slower (and costlier in CPU) than 64 KiB pieces here, as the
/// socket buffer fills and the writer waits for room.
const WRITE_MAX: usize = 64 * 1024;

/// One of the four clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Courier,
    Reqwest,
    HyperUtil,
    Floor,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Courier => "courier",
            Kind::Reqwest => "reqwest",
            Kind::HyperUtil => "hyper-util",
            Kind::Floor => "floor",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        CLIENTS.into_iter().find(|k| k.name() == name)
    }
}

/// A server and what it serves.
#[derive(Debug, Clone)]
struct Server {
    /// `bench-server` or `nginx`.
    name: &'static str,
    addr: SocketAddr,
    /// The path of the small resource.
    small_path: &'static str,
    /// Its length.
    small_len: usize,
}

impl Server {
    fn bench(addr: SocketAddr) -> Server {
        Server {
            name: "bench-server",
            addr,
            small_path: "/small",
            small_len: 13,
        }
    }

    fn nginx(addr: SocketAddr) -> Server {
        Server {
            name: "nginx",
            addr,
            small_path: "/hello.txt",
            small_len: 12,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn download_path(chunked: bool) -> String {
        let framing = if chunked { "chunked" } else { "len" };
        format!("/download/{framing}/{DOWNLOAD}")
    }
}

/// What every client does; each returns the length of the body it read.
///
/// `scratch` belongs to the calling task (empty until the floor, the only
/// one using it, gives it its capacity).
trait Client: Clone + Send + Sync + 'static {
    /// A new client (with an empty pool) for `server`; inside the runtime.
    fn build(server: &Server) -> Self;
    /// `GET` the small resource and read its body.
    fn small(&self, scratch: &mut Vec<u8>) -> impl Future<Output = usize> + Send;
    /// `GET` 100 MiB and stream the body.
    fn download(&self, chunked: bool, scratch: &mut Vec<u8>) -> impl Future<Output = u64> + Send;
    /// `POST` `body` and read the answer.
    fn upload(&self, body: &Bytes, scratch: &mut Vec<u8>) -> impl Future<Output = usize> + Send;
    /// Idle connections in the pool, where the client says.
    fn idle(&self) -> Option<usize> {
        None
    }
}

/// The URLs of one server, parsed once.
struct Urls<U> {
    small: U,
    len: U,
    chunked: U,
    upload: U,
}

impl<U> Urls<U> {
    fn new(server: &Server, parse: impl Fn(&str) -> U) -> Urls<U> {
        Urls {
            small: parse(&server.url(server.small_path)),
            len: parse(&server.url(&Server::download_path(false))),
            chunked: parse(&server.url(&Server::download_path(true))),
            upload: parse(&server.url("/upload")),
        }
    }

    fn download(&self, chunked: bool) -> &U {
        if chunked { &self.chunked } else { &self.len }
    }
}

// ---------------------------------------------------------------- courier

#[derive(Clone)]
struct Courier {
    session: ClientSession,
    urls: Arc<Urls<Url>>,
}

impl Courier {
    fn new(server: &Server) -> Courier {
        let connector = TcpConnector::builder()
            .limit(Some(2048))
            .build()
            .expect("courier connector");
        let session = ClientSession::builder()
            .connector(connector)
            .build()
            .expect("courier session");
        Courier {
            session,
            urls: Arc::new(Urls::new(server, |u| Url::parse(u).expect("url"))),
        }
    }
}

impl Client for Courier {
    fn build(server: &Server) -> Courier {
        Courier::new(server)
    }

    async fn small(&self, _: &mut Vec<u8>) -> usize {
        let mut resp = self
            .session
            .get(&self.urls.small)
            .send()
            .await
            .expect("courier get");
        resp.read().await.expect("courier read").len()
    }

    async fn download(&self, chunked: bool, _: &mut Vec<u8>) -> u64 {
        let mut resp = self
            .session
            .get(self.urls.download(chunked))
            .send()
            .await
            .expect("courier get");
        let content = resp.content();
        let mut n = 0;
        while let Some(chunk) = content.chunk().await.expect("courier chunk") {
            n += chunk.len() as u64;
        }
        n
    }

    async fn upload(&self, body: &Bytes, _: &mut Vec<u8>) -> usize {
        let mut resp = self
            .session
            .post(&self.urls.upload)
            .data(body.clone())
            .send()
            .await
            .expect("courier post");
        resp.read().await.expect("courier read").len()
    }

    fn idle(&self) -> Option<usize> {
        Some(self.session.connector().stats().idle)
    }
}

// ---------------------------------------------------------------- reqwest

#[derive(Clone)]
struct Reqwest {
    client: reqwest::Client,
    urls: Arc<Urls<reqwest::Url>>,
}

impl Reqwest {
    fn new(server: &Server) -> Reqwest {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest client");
        Reqwest {
            client,
            urls: Arc::new(Urls::new(server, |u| reqwest::Url::parse(u).expect("url"))),
        }
    }
}

impl Client for Reqwest {
    fn build(server: &Server) -> Reqwest {
        Reqwest::new(server)
    }

    async fn small(&self, _: &mut Vec<u8>) -> usize {
        let resp = self
            .client
            .get(self.urls.small.clone())
            .send()
            .await
            .expect("reqwest get");
        resp.bytes().await.expect("reqwest read").len()
    }

    async fn download(&self, chunked: bool, _: &mut Vec<u8>) -> u64 {
        let mut resp = self
            .client
            .get(self.urls.download(chunked).clone())
            .send()
            .await
            .expect("reqwest get");
        let mut n = 0;
        while let Some(chunk) = resp.chunk().await.expect("reqwest chunk") {
            n += chunk.len() as u64;
        }
        n
    }

    async fn upload(&self, body: &Bytes, _: &mut Vec<u8>) -> usize {
        let resp = self
            .client
            .post(self.urls.upload.clone())
            .body(body.clone())
            .send()
            .await
            .expect("reqwest post");
        resp.bytes().await.expect("reqwest read").len()
    }
}

// ------------------------------------------------------------- hyper-util

#[derive(Clone)]
struct Hyper {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    urls: Arc<Urls<Uri>>,
}

impl Hyper {
    fn new(server: &Server) -> Hyper {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(http);
        Hyper {
            client,
            urls: Arc::new(Urls::new(server, |u| u.parse().expect("uri"))),
        }
    }

    async fn send(&self, req: hyper::Request<Full<Bytes>>) -> hyper::body::Incoming {
        self.client
            .request(req)
            .await
            .expect("hyper-util request")
            .into_body()
    }
}

/// Reads `body` to its end; its length.
async fn hyper_drain(mut body: hyper::body::Incoming) -> u64 {
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.expect("hyper-util body").data_ref() {
            n += data.len() as u64;
        }
    }
    n
}

impl Client for Hyper {
    fn build(server: &Server) -> Hyper {
        Hyper::new(server)
    }

    async fn small(&self, _: &mut Vec<u8>) -> usize {
        let req = hyper::Request::get(self.urls.small.clone())
            .body(Full::default())
            .expect("request");
        let body = self.send(req).await;
        body.collect()
            .await
            .expect("hyper-util read")
            .to_bytes()
            .len()
    }

    async fn download(&self, chunked: bool, _: &mut Vec<u8>) -> u64 {
        let req = hyper::Request::get(self.urls.download(chunked).clone())
            .body(Full::default())
            .expect("request");
        hyper_drain(self.send(req).await).await
    }

    async fn upload(&self, body: &Bytes, _: &mut Vec<u8>) -> usize {
        let req = hyper::Request::post(self.urls.upload.clone())
            .body(Full::new(body.clone()))
            .expect("request");
        let body = self.send(req).await;
        body.collect()
            .await
            .expect("hyper-util read")
            .to_bytes()
            .len()
    }
}

// ------------------------------------------------------------------ floor

#[derive(Clone)]
struct Floor {
    inner: Arc<FloorInner>,
}

struct FloorInner {
    addr: SocketAddr,
    idle: Mutex<Vec<TcpStream>>,
    small: Box<[u8]>,
    len: Box<[u8]>,
    chunked: Box<[u8]>,
    /// The upload's head; the body follows in the same vectored write.
    upload: Box<[u8]>,
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
}

/// What the floor needs from a response head.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Bytes of the head, CRLFCRLF included.
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

impl Floor {
    fn new(server: &Server) -> Floor {
        let host = server.addr;
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        let upload =
            format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {UPLOAD}\r\n\r\n");
        Floor {
            inner: Arc::new(FloorInner {
                addr: server.addr,
                idle: Mutex::new(Vec::new()),
                small: get(server.small_path).into(),
                len: get(&Server::download_path(false)).into(),
                chunked: get(&Server::download_path(true)).into(),
                upload: upload.into_bytes().into(),
            }),
        }
    }

    /// One exchange: `parts` written, the response read; the body length.
    /// A reused connection that fails is replaced by a new one, once.
    async fn exchange(&self, parts: &[&[u8]], scratch: &mut Vec<u8>) -> u64 {
        for attempt in 0..2 {
            let idle = self.inner.idle.lock().expect("idle list").pop();
            let reused = idle.is_some();
            let mut stream = match idle {
                Some(stream) => stream,
                None => {
                    let stream = TcpStream::connect(self.inner.addr)
                        .await
                        .expect("floor connect");
                    stream.set_nodelay(true).expect("nodelay");
                    stream
                }
            };
            match floor_exchange(&mut stream, parts, scratch).await {
                Ok((n, reusable)) => {
                    if reusable {
                        self.inner.idle.lock().expect("idle list").push(stream);
                    }
                    return n;
                }
                Err(e) if reused && attempt == 0 => drop(e),
                Err(e) => panic!("floor: {e}"),
            }
        }
        unreachable!("the second attempt returns or panics")
    }
}

impl Client for Floor {
    fn build(server: &Server) -> Floor {
        Floor::new(server)
    }

    async fn small(&self, scratch: &mut Vec<u8>) -> usize {
        let n = self.exchange(&[&self.inner.small], scratch).await;
        usize::try_from(n).expect("small body")
    }

    async fn download(&self, chunked: bool, scratch: &mut Vec<u8>) -> u64 {
        let req = if chunked {
            &self.inner.chunked
        } else {
            &self.inner.len
        };
        self.exchange(&[req], scratch).await
    }

    async fn upload(&self, body: &Bytes, scratch: &mut Vec<u8>) -> usize {
        let n = self.exchange(&[&self.inner.upload, body], scratch).await;
        usize::try_from(n).expect("small body")
    }

    fn idle(&self) -> Option<usize> {
        Some(self.inner.idle.lock().expect("idle list").len())
    }
}

/// Writes every part (vectored), reads one response; the body length and
/// whether the connection can be reused.
async fn floor_exchange(
    stream: &mut TcpStream,
    parts: &[&[u8]],
    buf: &mut Vec<u8>,
) -> io::Result<(u64, bool)> {
    write_all_vectored(stream, parts).await?;
    // The task's buffer, allocated on its first request only (the other
    // clients never touch it, so it costs them nothing).
    if buf.capacity() < SCRATCH {
        buf.reserve_exact(SCRATCH);
    }
    buf.clear();
    let head = loop {
        let searched = buf.len().saturating_sub(3);
        read_more(stream, buf).await?;
        if let Some(end) = find(&buf[searched..], b"\r\n\r\n") {
            break parse_head(&buf[..searched + end + 4])?;
        }
    };
    let (n, clean) = match head.framing {
        Framing::Length(len) => read_length(stream, buf, head.len, len).await?,
        Framing::Chunked => read_chunked(stream, buf, head.len).await?,
    };
    Ok((n, clean && head.keep_alive))
}

/// Writes all of `parts`, vectored, at most [`WRITE_MAX`] bytes a call.
async fn write_all_vectored(stream: &mut TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    let max = WRITE_MAX;
    let (mut part, mut off) = (0, 0);
    while part < parts.len() {
        let first = &parts[part][off..];
        let first = &first[..first.len().min(max)];
        let second: &[u8] = match parts.get(part + 1) {
            Some(next) if first.len() < max => &next[..next.len().min(max - first.len())],
            _ => &[],
        };
        let mut n = stream
            .write_vectored(&[IoSlice::new(first), IoSlice::new(second)])
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while part < parts.len() && n >= parts[part].len() - off {
            n -= parts[part].len() - off;
            part += 1;
            off = 0;
        }
        off += n;
    }
    Ok(())
}

/// Appends what the socket has to `buf` (within its capacity); an error at
/// the end of the stream or when `buf` is full.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() == buf.capacity() {
        return Err(invalid("response head or chunk line over the buffer"));
    }
    match stream.read_buf(buf).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n => Ok(n),
    }
}

/// Status 200 expected; Content-Length, Transfer-Encoding: chunked and
/// Connection: close understood; anything else ignored.
fn parse_head(head: &[u8]) -> io::Result<Head> {
    let mut lines = head[..head.len() - 4].split(|&b| b == b'\n');
    let status = lines.next().ok_or_else(|| invalid("no status line"))?;
    if !status.starts_with(b"HTTP/1.1 200 ") {
        return Err(invalid("not HTTP/1.1 200"));
    }
    let mut framing = None;
    let mut keep_alive = true;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(invalid("header line without a colon"));
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let len = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid("bad Content-Length"))?;
            framing.get_or_insert(Framing::Length(len));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value.len() >= 7 && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked") {
                framing = Some(Framing::Chunked);
            }
        } else if name.eq_ignore_ascii_case(b"connection")
            && value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        {
            keep_alive = false;
        }
    }
    Ok(Head {
        len: head.len(),
        framing: framing.ok_or_else(|| invalid("no framing (read-until-close unsupported)"))?,
        keep_alive,
    })
}

/// Reads a body of `len` bytes, of which `buf[start..]` arrived already.
async fn read_length(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
    len: u64,
) -> io::Result<(u64, bool)> {
    let have = (buf.len() - start) as u64;
    if have >= len {
        return Ok((len, have == len));
    }
    let mut remaining = len - have;
    while remaining > 0 {
        buf.clear();
        let n = read_more(stream, buf).await? as u64;
        if n > remaining {
            // Bytes past the body: the connection is not reusable.
            return Ok((len, false));
        }
        remaining -= n;
    }
    Ok((len, true))
}

/// Reads a chunked body starting at `buf[pos..]`; trailers are skipped.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut pos: usize,
) -> io::Result<(u64, bool)> {
    let mut total = 0u64;
    loop {
        let line = line_at(stream, buf, &mut pos).await?;
        let size = parse_chunk_size(&buf[line.0..line.1])?;
        if size == 0 {
            // Trailer fields, if any, up to an empty line.
            loop {
                let (start, end) = line_at(stream, buf, &mut pos).await?;
                if start == end {
                    break;
                }
            }
            return Ok((total, pos == buf.len()));
        }
        let mut remaining = size;
        loop {
            let take = remaining.min((buf.len() - pos) as u64);
            // `take` is at most the bytes in `buf`, a usize.
            pos += usize::try_from(take).unwrap_or(usize::MAX);
            remaining -= take;
            if remaining == 0 {
                break;
            }
            buf.clear();
            pos = 0;
            read_more(stream, buf).await?;
        }
        total += size;
        let (start, end) = line_at(stream, buf, &mut pos).await?;
        if start != end {
            return Err(invalid("chunk data longer than its size"));
        }
    }
}

/// The next CRLF-terminated line at `*pos` as `(start, end)` in `buf`
/// (CRLF excluded), reading more as needed; `*pos` moves past it.
async fn line_at(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    pos: &mut usize,
) -> io::Result<(usize, usize)> {
    loop {
        if let Some(i) = find(&buf[*pos..], b"\r\n") {
            let line = (*pos, *pos + i);
            *pos += i + 2;
            return Ok(line);
        }
        // Keep the partial line at the front, then read more after it.
        buf.drain(..*pos);
        *pos = 0;
        read_more(stream, buf).await?;
    }
}

fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(line)
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid("bad chunk size"));
    }
    let mut size = 0u64;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(invalid("bad chunk size")),
        };
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

// ------------------------------------------------------------ measurement

/// Resident set size of this process, in bytes (`/proc/self/statm`).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident pages");
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    pages * page
}

/// Runs `op` `iters` times, `concurrency` at a time (spawned tasks taking
/// turns from one counter; inline when 1), each task with its own buffer.
async fn run_ops<C: Client, O: Op<C>>(client: &C, iters: u64, concurrency: usize, op: &O) {
    if concurrency <= 1 {
        let mut scratch = Vec::new();
        for _ in 0..iters {
            op.run(client, &mut scratch).await;
        }
        return;
    }
    let left = Arc::new(AtomicI64::new(i64::try_from(iters).unwrap_or(i64::MAX)));
    let workers = usize::try_from(iters).map_or(concurrency, |i| i.min(concurrency));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, left, op) = (client.clone(), left.clone(), O::clone(op));
            tokio::spawn(async move {
                let mut scratch = Vec::new();
                while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                    op.run(&client, &mut scratch).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker task");
    }
}

/// One benchmarked operation, for any client.
trait Op<C>: Clone + Send + Sync + 'static {
    fn run(&self, client: &C, scratch: &mut Vec<u8>) -> impl Future<Output = ()> + Send;
}

/// `GET` the small resource; its body has `expected` bytes.
#[derive(Clone)]
struct Small {
    expected: usize,
}

impl<C: Client> Op<C> for Small {
    async fn run(&self, client: &C, scratch: &mut Vec<u8>) {
        let n = client.small(scratch).await;
        assert_eq!(n, self.expected, "small body length");
    }
}

/// Download 100 MiB.
#[derive(Clone)]
struct Download {
    chunked: bool,
}

impl<C: Client> Op<C> for Download {
    async fn run(&self, client: &C, scratch: &mut Vec<u8>) {
        let n = client.download(self.chunked, scratch).await;
        assert_eq!(n, DOWNLOAD, "download length");
    }
}

/// Upload `body`; the answer is its length in decimal.
#[derive(Clone)]
struct Upload {
    body: Bytes,
}

impl<C: Client> Op<C> for Upload {
    async fn run(&self, client: &C, scratch: &mut Vec<u8>) {
        let n = client.upload(&self.body, scratch).await;
        assert_eq!(n, self.body.len().to_string().len(), "upload answer length");
    }
}

/// One client of each kind for `server`, built inside the runtime.
struct Clients {
    courier: Courier,
    reqwest: Reqwest,
    hyper: Hyper,
    floor: Floor,
}

impl Clients {
    fn new(rt: &Runtime, server: &Server) -> Clients {
        let _guard = rt.enter();
        Clients {
            courier: Courier::new(server),
            reqwest: Reqwest::new(server),
            hyper: Hyper::new(server),
            floor: Floor::new(server),
        }
    }
}

/// Calls `$body` with `$client` bound to the client of `$kind`.
macro_rules! with_client {
    ($clients:expr, $kind:expr, |$client:ident| $body:expr) => {
        match $kind {
            Kind::Courier => {
                let $client = &$clients.courier;
                $body
            }
            Kind::Reqwest => {
                let $client = &$clients.reqwest;
                $body
            }
            Kind::HyperUtil => {
                let $client = &$clients.hyper;
                $body
            }
            Kind::Floor => {
                let $client = &$clients.floor;
                $body
            }
        }
    };
}

// --------------------------------------------------------------- criterion

/// The small GETs as criterion groups `client_get_c{concurrency}`, ids
/// `<client>/<server>`, one element per request: each benchmark times
/// `iters` requests in one `block_on` on the client's kept-alive pool.
fn criterion_get(
    c: &mut Criterion,
    rt: &Runtime,
    servers: &[(Server, Clients)],
    concurrency: usize,
) {
    let mut g = c.benchmark_group(format!("client_get_c{concurrency}"));
    g.throughput(Throughput::Elements(1));
    for kind in CLIENTS {
        for (server, clients) in servers {
            let op = Small {
                expected: server.small_len,
            };
            let id = BenchmarkId::new(kind.name(), server.name);
            with_client!(clients, kind, |client| g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    rt.block_on(run_ops(client, iters, concurrency, &op));
                    start.elapsed()
                });
            }));
        }
    }
    g.finish();
}

// ------------------------------------------------------------------ rounds

/// How a case runs in interleaved rounds.
#[derive(Debug, Clone, Copy)]
struct Spec {
    rounds: usize,
    /// Operations in one timed block.
    per_block: u64,
    /// Operations in flight.
    concurrency: usize,
    /// A new client (so new connections) for every block, with one untimed
    /// operation first; else each client's kept-alive pool, warmed once.
    fresh: bool,
    /// What one operation adds to the rate: 1 (requests/s) or MB (MB/s).
    units_per_op: f64,
}

/// Measures one case in interleaved rounds: in each round every client, in
/// an order rotating with the round, runs one timed block of
/// `spec.per_block` operations (wall and CPU time). Appends one `rounds`
/// line per client to [`Extra`]: the median block rate with its quartiles,
/// the median CPU per operation, and paired ratios (the median over rounds
/// of its rate, or CPU, over another client's in the same round, which
/// cancels what the machine's load does to a whole round).
fn rounds_case<O>(
    extra: &mut Extra,
    rt: &Runtime,
    (server, clients): &(Server, Clients),
    group: &str,
    op: &O,
    spec: Spec,
) where
    O: Op<Courier> + Op<Reqwest> + Op<Hyper> + Op<Floor>,
{
    if !selected(&format!("{group}/{}", server.name)) {
        return;
    }
    let run = |kind: Kind, per_block: u64| {
        with_client!(clients, kind, |client| block(
            rt, server, client, op, per_block, spec
        ))
    };
    let started = Instant::now();
    if !spec.fresh {
        for kind in CLIENTS {
            run(kind, spec.per_block / 4 + 1);
        }
    }
    // Per client: (rate, CPU ns per operation) of each round's block.
    let mut blocks: Vec<Vec<(f64, f64)>> = vec![Vec::new(); CLIENTS.len()];
    for round in 0..spec.rounds {
        for turn in 0..CLIENTS.len() {
            let index = (round + turn) % CLIENTS.len();
            let (wall, cpu) = run(CLIENTS[index], spec.per_block);
            let n = spec.per_block as f64;
            blocks[index].push((
                n * spec.units_per_op / wall.as_secs_f64(),
                cpu.as_nanos() as f64 / n,
            ));
        }
    }
    eprintln!(
        "{group}/*/{}: {} interleaved rounds of {} operations per client in {:.1} s",
        server.name,
        spec.rounds,
        spec.per_block,
        started.elapsed().as_secs_f64()
    );
    for (index, kind) in CLIENTS.into_iter().enumerate() {
        let (q1, rate, q3) = block_quartiles(&blocks[index], |b| b.0);
        let (_, cpu, _) = block_quartiles(&blocks[index], |b| b.1);
        let mut line = format!(
            r#"{{"kind":"rounds","group":"{group}","id":"{}/{}","rate":{rate:.3},"rate_q1":{q1:.3},"rate_q3":{q3:.3},"cpu_ns_per_op":{cpu:.1},"rounds":{},"per_block":{},"concurrency":{}"#,
            kind.name(),
            server.name,
            spec.rounds,
            spec.per_block,
            spec.concurrency,
        );
        let mut vs_floor = (f64::NAN, f64::NAN);
        for (other, other_kind) in CLIENTS.into_iter().enumerate() {
            let paired = |pick| paired_ratio(&blocks[index], &blocks[other], pick);
            let (rate_ratio, cpu_ratio) = (paired(|b| b.0), paired(|b| b.1));
            let name = other_kind.name();
            let _ = write!(
                line,
                r#","rate_vs_{name}":{rate_ratio:.4},"cpu_vs_{name}":{cpu_ratio:.4}"#
            );
            if other_kind == Kind::Floor {
                vs_floor = (rate_ratio, cpu_ratio);
            }
        }
        line.push('}');
        eprintln!(
            "{group}/{}/{}: {rate:.0}/s (quartiles {q1:.0}-{q3:.0}), CPU {:.2} µs per \
             operation; vs the floor: rate {:.2}x, CPU {:.2}x",
            kind.name(),
            server.name,
            cpu / 1e3,
            vs_floor.0,
            vs_floor.1
        );
        extra.line(&line);
    }
}

/// One block: `per_block` operations on `kept`'s pool, or on a new client
/// after one untimed operation (`spec.fresh`); their wall and CPU time.
fn block<C: Client, O: Op<C>>(
    rt: &Runtime,
    server: &Server,
    kept: &C,
    op: &O,
    per_block: u64,
    spec: Spec,
) -> (Duration, Duration) {
    let fresh = spec.fresh.then(|| {
        let _guard = rt.enter();
        C::build(server)
    });
    let client = fresh.as_ref().unwrap_or(kept);
    if fresh.is_some() {
        rt.block_on(run_ops(client, 1, 1, op));
    }
    let cpu = cpu_time();
    let start = Instant::now();
    rt.block_on(run_ops(client, per_block, spec.concurrency, op));
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu);
    drop(fresh);
    (wall, cpu)
}

// ------------------------------------------------------ idle-pool memory

/// Measures one client's idle pool in a child process; its JSON line goes
/// to [`Extra`].
fn rss_in_child(extra: &mut Extra, kind: Kind) {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .env(RSS_CHILD_VAR, kind.name())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the memory child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with('{'));
    match (out.status.success(), line) {
        (true, Some(line)) => {
            eprintln!("idle pool {}: {line}", kind.name());
            extra.line(line);
        }
        _ => eprintln!(
            "idle pool {}: the child failed ({}): {stdout}",
            kind.name(),
            out.status
        ),
    }
}

/// Raises the soft open-files limit to the hard one when it is low.
fn raise_nofile() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < 4 * IDLE_CONNS as u64
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// How many connections the bench server has open now (this query's own
/// connection not counted).
fn server_conns(addr: SocketAddr) -> io::Result<usize> {
    let mut stream = StdTcpStream::connect(addr)?;
    stream.write_all(b"GET /conns HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp)?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim())
        .ok_or_else(|| invalid("no body"))?;
    let n: usize = body.parse().map_err(|_| invalid("not a count"))?;
    Ok(n.saturating_sub(1))
}

/// The child: one client, 1,000 connections made idle, RSS before and after.
fn rss_child(kind: Kind, server: &Server) {
    raise_nofile();
    let rt = runtime();
    let clients = Clients::new(&rt, server);
    let line = with_client!(clients, kind, |client| rt
        .block_on(rss_measure(client, kind, server)));
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
}

async fn rss_measure<C: Client>(client: &C, kind: Kind, server: &Server) -> String {
    let settle = Duration::from_millis(500);
    let mut scratch = Vec::new();
    client.small(&mut scratch).await;
    drop(scratch);
    tokio::time::sleep(settle).await;
    let conns_before = server_conns(server.addr).expect("server connection count");
    let before = rss_bytes();
    let tasks: Vec<_> = (0..IDLE_CONNS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut scratch = Vec::new();
                client.small(&mut scratch).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("request task");
    }
    tokio::time::sleep(settle).await;
    let after = rss_bytes();
    let conns = server_conns(server.addr)
        .expect("server connection count")
        .saturating_sub(conns_before);
    let idle = client
        .idle()
        .map_or_else(|| "null".to_string(), |n| n.to_string());
    // Per connection the client really opened (the server's count): a
    // request may have reused a connection another one had just released.
    let kib_per_conn = (after.saturating_sub(before)) as f64 / 1024.0 / conns.max(1) as f64;
    format!(
        r#"{{"kind":"rss","client":"{}","kib_per_conn":{kib_per_conn:.2},"requests":{IDLE_CONNS},"new_conns":{conns},"pool_idle":{idle},"rss_before_kib":{},"rss_after_kib":{}}}"#,
        kind.name(),
        before / 1024,
        after / 1024,
    )
}

// ------------------------------------------------------------------- main

fn env_addr(var: &str) -> Option<SocketAddr> {
    let value = std::env::var(var).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{var}={value}: not an address: {e}")),
    )
}

fn main() {
    let Some(bench_addr) = env_addr(SERVER_VAR) else {
        eprintln!(
            "http bench: {SERVER_VAR} is not set, nothing to do: run it with \
             `cargo xtask bench client` (it starts the servers)"
        );
        return;
    };
    let bench_server = Server::bench(bench_addr);
    if let Ok(name) = std::env::var(RSS_CHILD_VAR) {
        let kind = Kind::from_name(&name).unwrap_or_else(|| panic!("unknown client {name}"));
        rss_child(kind, &bench_server);
        return;
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    let mut extra = Extra::from_env();
    let rt = runtime();
    let mut servers = vec![(bench_server.clone(), Clients::new(&rt, &bench_server))];
    if let Some(addr) = env_addr(NGINX_VAR) {
        let nginx = Server::nginx(addr);
        servers.push((nginx.clone(), Clients::new(&rt, &nginx)));
    }

    if enabled(CRITERION_VAR) {
        criterion_get(&mut c, &rt, &servers, 1);
        criterion_get(&mut c, &rt, &servers, 64);
    }
    if enabled(ROUNDS_VAR) {
        let rounds = support::rounds();
        for (concurrency, per_block) in [(1, 1500), (64, 12_000)] {
            for server in &servers {
                let spec = Spec {
                    rounds,
                    per_block,
                    concurrency,
                    fresh: false,
                    units_per_op: 1.0,
                };
                let op = Small {
                    expected: server.0.small_len,
                };
                let group = format!("client_get_c{concurrency}");
                rounds_case(&mut extra, &rt, server, &group, &op, spec);
            }
        }
        // Downloads and uploads: the bench server only.
        let bulk = |per_block, bytes: u64| Spec {
            rounds,
            per_block,
            concurrency: 1,
            fresh: true,
            units_per_op: bytes as f64 / 1e6,
        };
        for (group, chunked) in [
            ("client_download_len", false),
            ("client_download_chunked", true),
        ] {
            let op = Download { chunked };
            rounds_case(&mut extra, &rt, &servers[0], group, &op, bulk(5, DOWNLOAD));
        }
        let op = Upload {
            body: Bytes::from(vec![b'u'; UPLOAD]),
        };
        let spec = bulk(200, UPLOAD as u64);
        rounds_case(&mut extra, &rt, &servers[0], "client_upload", &op, spec);
    }
    drop(servers);
    drop(rt);

    if enabled(RSS_VAR) {
        for kind in CLIENTS {
            rss_in_child(&mut extra, kind);
        }
    }
    c.final_summary();
}
