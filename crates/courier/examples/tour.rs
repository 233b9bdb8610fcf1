//! A tour of courier: a small HTTP/1.1 server started inside this process on
//! loopback, and the courier client talking to it, one feature at a time.
//!
//! ```text
//! cargo run --release --example tour
//! ```
//!
//! Each numbered section says what it sends and prints what came back:
//!
//! 1. a GET: status line, a few headers, the body;
//! 2. a JSON POST that the server echoes, parsed with `resp.json()`;
//! 3. a redirect chain, with `resp.history()` and the final URL;
//! 4. cookies: set by the server, kept in the session's jar, sent back;
//! 5. a gzip body, decoded as it is read;
//! 6. a streamed download, read chunk by chunk with `resp.content()`;
//! 7. the pool: several requests over one kept-alive connection.
//!
//! It needs no network and no other program: the server listens on
//! `127.0.0.1` on a port the OS picks. The server (at the bottom of this
//! file) is deliberately small but honest HTTP/1.1: `Content-Length` or
//! chunked framing, keep-alive unless the client asks to close, and it
//! counts the connections it accepts so that section 7 can show the reuse.

// Printing what happens is the whole point of this example.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::error::Error;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use courier::ClientSession;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tour()
        .await
        .inspect_err(|e| eprintln!("\nthe tour stopped: {e}"))
}

async fn tour() -> Result<(), BoxError> {
    let server = Server::start().await?;
    let base = server.base.clone();
    println!("courier tour: a tiny HTTP/1.1 server is listening on {base}");

    // One session for the whole tour: it owns the connection pool and the
    // cookie jar, and every request below goes through it.
    let session = ClientSession::builder().build()?;

    // 1. A GET.
    section(1, "A GET: status, headers and body");
    let url = format!("{base}/hello");
    println!("  -> GET {url}");
    let mut resp = session.get(&url).send().await?;
    println!(
        "  <- {:?} {} {}",
        resp.version(),
        resp.status().as_u16(),
        resp.reason()
    );
    for name in ["content-type", "content-length", "server"] {
        if let Some(value) = resp.headers().get(name) {
            println!("     {name}: {}", value.to_str().unwrap_or("<not text>"));
        }
    }
    let body = resp.text().await?;
    println!("  body, {} bytes: {body:?}", body.len());

    // 2. A JSON POST.
    section(2, "A JSON POST, echoed by the server");
    let url = format!("{base}/echo");
    let payload = json!({
        "name": "courier",
        "language": "rust",
        "features": ["pool", "cookies", "redirects", "gzip"],
    });
    println!("  -> POST {url}  with .json(&{payload})");
    let mut resp = session.post(&url).json(&payload).send().await?;
    println!(
        "  <- {} {}, content type {}",
        resp.status().as_u16(),
        resp.reason(),
        resp.content_type()
    );
    let echoed: Value = resp.json().await?;
    println!("  resp.json::<serde_json::Value>() gave:");
    for line in serde_json::to_string_pretty(&echoed)?.lines() {
        println!("     {line}");
    }
    println!(
        "  the JSON made the round trip intact: {}",
        echoed["json"] == payload
    );

    // 3. Redirects.
    section(3, "A redirect chain, followed automatically");
    let url = format!("{base}/r/3");
    println!("  -> GET {url}");
    let mut resp = session.get(&url).send().await?;
    println!(
        "  resp.history() holds {} response(s):",
        resp.history().len()
    );
    for (i, hop) in resp.history().iter().enumerate() {
        let location = hop
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        println!(
            "     {}. {} {}  from {}  (Location: {location})",
            i + 1,
            hop.status().as_u16(),
            hop.reason(),
            hop.url()
        );
    }
    println!(
        "  <- {} {} from the final URL {}",
        resp.status().as_u16(),
        resp.reason(),
        resp.url()
    );
    println!("  body: {:?}", resp.text().await?);

    // 4. Cookies.
    section(4, "Cookies: stored in the session's jar and sent back");
    let url = format!("{base}/cookies/set");
    println!("  -> GET {url}");
    let mut resp = session.get(&url).send().await?;
    println!("  <- {} {}", resp.status().as_u16(), resp.reason());
    for value in resp.raw_headers().get_all("set-cookie") {
        println!("     Set-Cookie: {}", String::from_utf8_lossy(value));
    }
    resp.release().await;
    let url = format!("{base}/cookies/show");
    println!("  -> GET {url}  (no cookie given by hand: the jar adds them)");
    let mut resp = session.get(&url).send().await?;
    let seen: Value = resp.json().await?;
    println!("  <- the server received  Cookie: {}", seen["cookie"]);
    if let Some(jar) = session.cookie_jar() {
        println!("  session.cookie_jar() holds {} cookie(s):", jar.len());
        for cookie in jar.cookies() {
            let expires = match cookie.expires() {
                None => "at the end of the session".to_owned(),
                Some(at) => match at.duration_since(SystemTime::now()) {
                    Ok(left) => format!("in {} s", left.as_secs()),
                    Err(_) => "now".to_owned(),
                },
            };
            println!(
                "     {}={}  domain {} (host-only: {}), path {}, HttpOnly: {}, expires {expires}",
                cookie.name(),
                cookie.value(),
                cookie.domain().unwrap_or("-"),
                cookie.host_only(),
                cookie.path().unwrap_or("-"),
                cookie.http_only(),
            );
        }
    }

    // 5. gzip.
    section(5, "A gzip body, decoded as it is read");
    let url = format!("{base}/gzip");
    println!("  -> GET {url}");
    let mut resp = session.get(&url).send().await?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    println!(
        "  <- {} {}, Content-Encoding: {}",
        resp.status().as_u16(),
        resp.reason(),
        header("content-encoding")
    );
    println!(
        "     (the client had sent Accept-Encoding: {})",
        header("x-seen-accept-encoding")
    );
    let on_the_wire = usize::try_from(resp.content_length().unwrap_or_default()).unwrap_or(0);
    let text = resp.text().await?;
    println!(
        "  {on_the_wire} bytes on the wire (Content-Length) became {} bytes of text, {}x smaller",
        text.len(),
        text.len() / on_the_wire.max(1)
    );
    println!(
        "  first line: {:?}",
        text.lines().next().unwrap_or_default()
    );
    println!(
        "  last line:  {:?}",
        text.lines().last().unwrap_or_default()
    );

    // 6. Streaming.
    section(6, "A streamed download, chunk by chunk");
    let url = format!("{base}/download");
    println!("  -> GET {url}");
    let mut resp = session.get(&url).send().await?;
    println!(
        "  <- {} {}, Transfer-Encoding: {}, Content-Length: {:?}",
        resp.status().as_u16(),
        resp.reason(),
        resp.headers()
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-"),
        resp.content_length()
    );
    let expected = resp
        .headers()
        .get("x-checksum")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    println!(
        "  the server sends {DOWNLOAD_CHUNKS} chunks of {DOWNLOAD_CHUNK} bytes; each piece below is\n  \
         what one call gave (a piece may end at the edge of the read buffer):"
    );
    let content = resp.content();
    let (mut chunks, mut total, mut hash) = (0, 0, FNV_OFFSET);
    while let Some(chunk) = content.chunk().await? {
        chunks += 1;
        total += chunk.len();
        hash = fnv1a(hash, &chunk);
        println!(
            "     piece {chunks:>2}: {:>6} bytes, {total:>7} so far",
            chunk.len()
        );
    }
    let checksum = format!("{hash:016x}");
    println!("  done: {total} bytes in {chunks} pieces read with resp.content().chunk()");
    if checksum != expected {
        return Err(format!("checksum {checksum} differs from the server's {expected}").into());
    }
    println!("  FNV-1a checksum {checksum} matches the server's");

    // 7. The pool.
    section(7, "The pool: one kept-alive connection for many requests");
    let url = format!("{base}/count");
    let mut connections = BTreeSet::new();
    let rounds = 5;
    for i in 1..=rounds {
        let mut resp = session.get(&url).send().await?;
        let answer: Value = resp.json().await?;
        println!(
            "  -> GET {url}  <- served on connection #{}, its request #{}",
            answer["connection"], answer["request_on_connection"]
        );
        connections.insert(answer["connection"].to_string());
        if i == 1 {
            println!(
                "     (after reading the body: session.connector().stats() = {:?})",
                session.connector().stats()
            );
        }
    }
    let stats = session.connector().stats();
    println!(
        "  {rounds} requests over {} connection{}",
        connections.len(),
        if connections.len() == 1 { "" } else { "s" }
    );
    println!(
        "  session.connector().stats(): {} open, {} idle, {} waiting",
        stats.open, stats.idle, stats.waiting
    );
    println!(
        "  the whole tour: the server accepted {} connection(s) for {} requests",
        server.counters.connections.load(Ordering::SeqCst),
        server.counters.requests.load(Ordering::SeqCst)
    );
    session.close().await;
    let stats = session.connector().stats();
    println!(
        "  after session.close(): closed = {}, {} open, {} idle",
        session.closed(),
        stats.open,
        stats.idle
    );

    println!("\nThat was the tour.");
    Ok(())
}

fn section(number: u32, title: &str) {
    let heading = format!("{number}. {title}");
    println!("\n{heading}\n{}", "-".repeat(heading.len()));
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits): a checksum both ends compute over the download.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

// ---------------------------------------------------------------------------
// The server: a hand-written HTTP/1.1 handler, just enough for the tour.
// ---------------------------------------------------------------------------

/// The largest request head and body the server accepts.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Size and count of the chunks of `/download`.
const DOWNLOAD_CHUNK: usize = 16 * 1024;
const DOWNLOAD_CHUNKS: usize = 12;

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

struct Server {
    base: String,
    counters: Arc<Counters>,
}

impl Server {
    /// Binds 127.0.0.1 on a free port and serves each connection in a task.
    async fn start() -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, id, &shared).await {
                        eprintln!("  [server] connection #{id}: {e}");
                    }
                });
            }
        });
        Ok(Server { base, counters })
    }
}

struct Request {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or_default();
        connection.eq_ignore_ascii_case("close")
            || (self.version == "HTTP/1.0" && !connection.eq_ignore_ascii_case("keep-alive"))
    }
}

enum Payload {
    /// Sent with `Content-Length`.
    Full(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one chunk at a time.
    Chunked(Vec<Vec<u8>>),
}

struct Reply {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    payload: Payload,
}

impl Reply {
    fn new(status: u16, reason: &'static str, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            reason,
            headers: vec![("Content-Type", content_type.to_owned())],
            payload: Payload::Full(body),
        }
    }

    fn text(body: impl Into<String>) -> Reply {
        Reply::new(
            200,
            "OK",
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    fn json(value: &Value) -> Reply {
        Reply::new(
            200,
            "OK",
            "application/json",
            value.to_string().into_bytes(),
        )
    }

    fn error(status: u16, reason: &'static str) -> Reply {
        Reply::new(
            status,
            reason,
            "text/plain",
            format!("{reason}\n").into_bytes(),
        )
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Serves one connection: requests one after the other, until the client
/// closes it or asks to.
async fn serve(mut stream: TcpStream, id: usize, counters: &Counters) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut served = 0;
    while let Some(request) = read_request(&mut stream, &mut buf).await? {
        served += 1;
        counters.requests.fetch_add(1, Ordering::SeqCst);
        let close = request.wants_close();
        let reply = route(&request, id, served);
        write_reply(&mut stream, reply, close).await?;
        if close {
            return stream.shutdown().await;
        }
    }
    Ok(())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one request; `None` when the client closed the connection
/// between requests. Bytes after it stay in `buf` for the next one.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut scratch = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        match stream.read(&mut scratch).await? {
            0 if buf.is_empty() => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&scratch[..n]),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(path), Some(version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(invalid("malformed request line"));
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("malformed header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        version: version.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(invalid(
            "this small server takes Content-Length bodies only",
        ));
    }
    let length = match request.header("content-length") {
        Some(v) => v.parse().map_err(|_| invalid("bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(invalid("request body too large"));
    }
    while buf.len() < head_end + length {
        match stream.read(&mut scratch).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&scratch[..n]),
        }
    }
    request.body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Ok(Some(request))
}

/// What the server answers to each path.
fn route(request: &Request, connection: usize, served: usize) -> Reply {
    let path = request.path.as_str();
    match (request.method.as_str(), path) {
        ("GET", "/hello") => Reply::text(format!(
            "Hello, {}! This is the tour server.\n",
            request.header("user-agent").unwrap_or("stranger")
        )),
        ("POST", "/echo") => match serde_json::from_slice::<Value>(&request.body) {
            Ok(value) => Reply::json(&json!({
                "json": value,
                "content_type": request.header("content-type"),
                "bytes": request.body.len(),
            })),
            Err(_) => Reply::error(400, "Bad Request"),
        },
        ("GET", "/final") => Reply::text("You followed every redirect.\n"),
        ("GET", _) if path.starts_with("/r/") => match path[3..].parse::<u32>() {
            Ok(n @ 1..=10) => {
                let next = if n == 1 {
                    "/final".to_owned()
                } else {
                    format!("/r/{}", n - 1)
                };
                Reply::new(
                    302,
                    "Found",
                    "text/plain",
                    format!("see {next}\n").into_bytes(),
                )
                .header("Location", next)
            }
            _ => Reply::error(404, "Not Found"),
        },
        ("GET", "/cookies/set") => Reply::text("two cookies set\n")
            .header("Set-Cookie", "flavour=oatmeal; Path=/")
            .header("Set-Cookie", "visits=1; Max-Age=3600; Path=/; HttpOnly"),
        ("GET", "/cookies/show") => Reply::json(&json!({ "cookie": request.header("cookie") })),
        ("GET", "/gzip") => gzip_reply(request),
        ("GET", "/download") => {
            let chunks: Vec<Vec<u8>> = (0..DOWNLOAD_CHUNKS)
                .map(|i| vec![b"abcdefghijklmnopqrstuvwxyz"[i % 26]; DOWNLOAD_CHUNK])
                .collect();
            let hash = chunks.iter().fold(FNV_OFFSET, |h, c| fnv1a(h, c));
            Reply {
                status: 200,
                reason: "OK",
                headers: vec![
                    ("Content-Type", "application/octet-stream".to_owned()),
                    ("X-Checksum", format!("{hash:016x}")),
                ],
                payload: Payload::Chunked(chunks),
            }
        }
        ("GET", "/count") => Reply::json(&json!({
            "connection": connection,
            "request_on_connection": served,
        })),
        (_, "/hello" | "/echo" | "/final" | "/count" | "/gzip" | "/download") => {
            Reply::error(405, "Method Not Allowed")
        }
        _ => Reply::error(404, "Not Found"),
    }
}

/// 200 lines of text, gzip-compressed when the client accepts gzip.
fn gzip_reply(request: &Request) -> Reply {
    let text: String = (1..=200)
        .map(|i| format!("line {i:>3}: courier decodes gzip bodies as they stream in\n"))
        .collect();
    let accepted = request.header("accept-encoding").unwrap_or_default();
    let seen = if accepted.is_empty() { "-" } else { accepted }.to_owned();
    if !accepted.split(',').any(|c| c.trim().starts_with("gzip")) {
        return Reply::text(text).header("X-Seen-Accept-Encoding", seen);
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let compressed =
        io::Write::write_all(&mut encoder, text.as_bytes()).and_then(|()| encoder.finish());
    match compressed {
        Ok(bytes) => Reply::new(200, "OK", "text/plain; charset=utf-8", bytes)
            .header("Content-Encoding", "gzip")
            .header("X-Seen-Accept-Encoding", seen),
        Err(_) => Reply::error(500, "Internal Server Error"),
    }
}

/// Writes the status line, headers and body with its framing.
async fn write_reply(stream: &mut TcpStream, reply: Reply, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: courier-tour\r\n",
        reply.status, reply.reason
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    match reply.payload {
        Payload::Full(body) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            stream.write_all(&out).await?;
        }
        Payload::Chunked(chunks) => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            for chunk in chunks {
                let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
                out.extend_from_slice(&chunk);
                out.extend_from_slice(b"\r\n");
                stream.write_all(&out).await?;
                stream.flush().await?;
                // A short pause, so that the client sees the chunks arrive
                // one by one as from a real download.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
    stream.flush().await
}
