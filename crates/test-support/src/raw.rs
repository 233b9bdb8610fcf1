//! A scripted raw HTTP server: tests read the exact request bytes a client
//! sends and write the exact response bytes they want, broken ones included
//! (truncated bodies, bad chunking, silent peers, early close, resets).
//!
//! [`RawServer::start`] binds `127.0.0.1:0` and runs a handler for each
//! accepted connection, in its own task. The handler gets a [`RawConn`]: it
//! reads requests with [`RawConn::read_request`] (which parses just enough
//! to find where a request ends, and keeps the bytes exactly as received)
//! and writes whatever it likes with [`RawConn::write`]. Every request read
//! goes into the server's log ([`RawServer::requests`]), so the test can
//! assert on it after the client is done.
//!
//! Nothing here can hang a test: every socket read has a timeout (10 s, or
//! [`RawServerBuilder::read_timeout`]), heads are bounded to 64 KiB and
//! bodies to 64 MiB. What went wrong on the server side (a malformed or
//! truncated request, a timeout in the middle of one, a handler that
//! panicked) is recorded in [`RawServer::errors`] rather than lost in a
//! task.
//!
//! Dropping the [`RawServer`] stops the accept loop and every connection
//! task; the sockets close as the runtime drops those tasks.
//!
//! ```
//! use courier_test_support::raw::{self, RawServer};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = RawServer::start(|mut conn| async move {
//!     while let Some(request) = conn.read_request().await {
//!         let body = format!("you asked for {}", request.target);
//!         conn.write(&raw::response(200, &[("Content-Type", "text/plain")], body.as_bytes()))
//!             .await;
//!     }
//! })
//! .await;
//!
//! // Any client will do; here a plain socket.
//! let mut client = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
//! client.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
//! let mut reply = vec![0; 512];
//! let n = client.read(&mut reply).await.unwrap();
//! assert!(reply[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
//!
//! let requests = server.requests();
//! assert_eq!(requests[0].target, "/hello");
//! assert_eq!(requests[0].header("connection"), Some("close"));
//! assert!(server.errors().is_empty());
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How long one socket read may wait before [`RawConn`] gives up, unless
/// [`RawServerBuilder::read_timeout`] says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head [`RawConn::read_request`] accepts (64 KiB,
/// through the blank line).
pub const MAX_HEAD: usize = 64 * 1024;

/// The largest request body [`RawConn::read_request`] accepts (64 MiB,
/// decoded), and the most [`RawConn::read_to_eof`] collects.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// The longest chunk-size line, or all the trailer lines together, in a
/// chunked request body.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// How many bytes one socket read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// What the server and its connection tasks share.
#[derive(Debug, Default)]
struct Shared {
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Every complete request read, in the order they were read.
    requests: Mutex<Vec<RawRequest>>,
    /// What went wrong, as messages naming the connection.
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn error(&self, message: String) {
        lock(&self.errors).push(message);
    }
}

/// Locks a mutex, ignoring poisoning (a panicking handler must not hide the
/// log from the test).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted HTTP server on `127.0.0.1`; see the [module docs](self).
pub struct RawServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl fmt::Debug for RawServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawServer")
            .field("addr", &self.addr)
            .field("accepted", &self.accepted())
            .finish_non_exhaustive()
    }
}

/// Options for a [`RawServer`], from [`RawServer::builder`].
#[derive(Debug, Clone)]
pub struct RawServerBuilder {
    read_timeout: Duration,
}

impl RawServerBuilder {
    /// How long each socket read of a [`RawConn`] may wait (default
    /// [`DEFAULT_READ_TIMEOUT`]).
    pub fn read_timeout(mut self, timeout: Duration) -> RawServerBuilder {
        self.read_timeout = timeout;
        self
    }

    /// Binds `127.0.0.1:0` and serves each accepted connection with
    /// `handler`, each in its own task. The connection closes when the
    /// handler returns (it owns the [`RawConn`]).
    ///
    /// # Panics
    ///
    /// When binding fails, or outside a tokio runtime.
    pub async fn start<F, Fut>(self, handler: F) -> RawServer
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("RawServer: cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("RawServer: no local address: {e}"));
        let shared = Arc::new(Shared::default());
        let accept_task = tokio::spawn(accept_loop(
            listener,
            handler,
            Arc::clone(&shared),
            self.read_timeout,
        ));
        RawServer {
            addr,
            shared,
            accept_task,
        }
    }
}

impl RawServer {
    /// Options other than the defaults: `RawServer::builder().read_timeout(..).start(handler)`.
    pub fn builder() -> RawServerBuilder {
        RawServerBuilder {
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// Binds `127.0.0.1:0` and serves each accepted connection with
    /// `handler` in its own task, with the default options (see
    /// [`RawServerBuilder::start`]).
    ///
    /// # Panics
    ///
    /// When binding fails, or outside a tokio runtime.
    pub async fn start<F, Fut>(handler: F) -> RawServer
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        RawServer::builder().start(handler).await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`; `path` should start with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many connections have been accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every complete request read by any connection's
    /// [`RawConn::read_request`] (or [`RawConn::read_body`]), in the order
    /// they were read.
    pub fn requests(&self) -> Vec<RawRequest> {
        lock(&self.shared.requests).clone()
    }

    /// What went wrong on the server side so far, one message each: a
    /// malformed, oversized or truncated request, a timeout in the middle of
    /// one, a handler that panicked. A test that expects a well-behaved
    /// client asserts this is empty.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }
}

impl Drop for RawServer {
    /// Aborts the accept loop, which drops the listener and aborts every
    /// connection task (their sockets close as the runtime drops them).
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Accepts connections and runs `handler` on each; collects handler panics.
/// Dropping this future (when the accept task is aborted) drops the
/// listener and the `JoinSet`, which aborts the connection tasks.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    handler: F,
    shared: Arc<Shared>,
    read_timeout: Duration,
) where
    F: Fn(RawConn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    let mut index_of = HashMap::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
                    let conn = RawConn {
                        stream,
                        peer,
                        buf: Vec::new(),
                        index,
                        read_timeout,
                        shared: Arc::clone(&shared),
                    };
                    let task = conns.spawn(handler(conn));
                    index_of.insert(task.id(), index);
                }
                Err(e) => {
                    shared.error(format!("accept failed: {e}"));
                    // Out of descriptors, say: don't spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(joined) = conns.join_next_with_id(), if !conns.is_empty() => {
                match joined {
                    Ok((id, ())) => {
                        index_of.remove(&id);
                    }
                    Err(e) => {
                        let index = index_of.remove(&e.id());
                        if e.is_panic() {
                            let message = panic_message(e.into_panic());
                            shared.error(format!(
                                "connection {}: handler panicked: {message}",
                                index.map_or_else(|| "?".to_owned(), |i| i.to_string())
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// The text of a panic payload, when it is one.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "(not a string)".to_owned(),
        },
    }
}

/// One accepted connection, given to the handler.
///
/// Reads are buffered: bytes read past the end of one request (a pipelined
/// one) stay for the next [`read_request`](Self::read_request).
pub struct RawConn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read from the socket and not consumed yet.
    buf: Vec<u8>,
    index: usize,
    read_timeout: Duration,
    shared: Arc<Shared>,
}

impl fmt::Debug for RawConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawConn")
            .field("index", &self.index)
            .field("peer", &self.peer)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Why a read stopped.
enum ReadError {
    /// The peer closed (cleanly or not) or the socket failed.
    Closed(String),
    /// No byte within the read timeout.
    TimedOut,
    /// The bytes are not a request this server understands.
    Invalid(String),
}

impl ReadError {
    fn describe(&self, what: &str) -> String {
        match self {
            ReadError::Closed(why) => format!("{why} in the {what}"),
            ReadError::TimedOut => format!("timed out in the {what}"),
            ReadError::Invalid(why) => format!("{why} in the {what}"),
        }
    }
}

impl RawConn {
    /// Which accepted connection this is (0-based, in accept order).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Reads one whole request: the head through the blank line, then the
    /// body by `Transfer-Encoding: chunked` or `Content-Length` (none when
    /// neither is present), and logs it in [`RawServer::requests`].
    ///
    /// `None` when the peer closes, or stays silent for the read timeout,
    /// before sending any byte of a request: the usual end of a kept-alive
    /// connection. Also `None`, with the reason in [`RawServer::errors`],
    /// for a malformed request, a head over [`MAX_HEAD`], a body over
    /// [`MAX_BODY`], both `Content-Length` and `Transfer-Encoding`, or a
    /// close or timeout in the middle of a request.
    pub async fn read_request(&mut self) -> Option<RawRequest> {
        let head = self.read_head().await?;
        self.read_body(head).await
    }

    /// Reads only a request's head, for a handler that must act before the
    /// body (answer `Expect: 100-continue`, or reject the request and
    /// check the body is never sent). The returned request has an empty
    /// `body`, `raw` is the head alone, and it is not logged: pass it to
    /// [`read_body`](Self::read_body) to finish it. `None` as for
    /// [`read_request`](Self::read_request).
    pub async fn read_head(&mut self) -> Option<RawRequest> {
        // Idle until the first byte: a silent or closing peer is not an error.
        if self.buf.is_empty() {
            match self.fill().await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        match self.take_head().await {
            Ok(head) => Some(head),
            Err(e) => {
                self.record(e.describe("request head"));
                None
            }
        }
    }

    /// Reads the body of a request whose head came from
    /// [`read_head`](Self::read_head), and logs the complete request.
    /// `None`, with the reason in [`RawServer::errors`], as for
    /// [`read_request`](Self::read_request).
    pub async fn read_body(&mut self, mut request: RawRequest) -> Option<RawRequest> {
        match self.take_body(&mut request).await {
            Ok(()) => {
                lock(&self.shared.requests).push(request.clone());
                Some(request)
            }
            Err(e) => {
                self.record(e.describe("request body"));
                None
            }
        }
    }

    /// Writes all of `bytes` and flushes. Errors are ignored: the peer may
    /// have gone, and that is often what the test is about.
    pub async fn write(&mut self, bytes: &[u8]) {
        if self.stream.write_all(bytes).await.is_ok() {
            let _ = self.stream.flush().await;
        }
    }

    /// Closes the connection gracefully: shuts down the writing half (the
    /// peer reads EOF after what was written), then drops the socket.
    ///
    /// If request bytes were left unread in the kernel, Linux answers the
    /// close with a reset instead; read them first when the test needs a
    /// clean EOF.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Closes the connection abortively: `SO_LINGER` 0, so the peer gets a
    /// TCP reset (`ECONNRESET`) rather than an EOF, and unsent bytes are
    /// discarded.
    pub fn reset(self) {
        // A zero linger never blocks on close (the reason the option is
        // deprecated is the blocking of a non-zero one).
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
    }

    /// Reads until the peer closes its writing half and returns what
    /// arrived (including bytes already buffered past the last request).
    /// Stops early at the read timeout, a socket error or [`MAX_BODY`]
    /// bytes, returning what it has.
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        while self.buf.len() < MAX_BODY {
            match self.fill().await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        std::mem::take(&mut self.buf)
    }

    /// Records an error for this connection.
    fn record(&self, message: String) {
        self.shared
            .error(format!("connection {}: {message}", self.index));
    }

    /// One socket read into the buffer, with the timeout. `Ok(0)` at EOF.
    async fn fill(&mut self) -> Result<usize, ReadError> {
        self.buf.reserve(READ_CHUNK);
        match tokio::time::timeout(self.read_timeout, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(ReadError::Closed(format!("read failed ({e})"))),
            Err(_) => Err(ReadError::TimedOut),
        }
    }

    /// Reads until the buffer holds at least `n` bytes.
    async fn fill_to(&mut self, n: usize) -> Result<(), ReadError> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(ReadError::Closed("connection closed".to_owned()));
            }
        }
        Ok(())
    }

    /// Takes the first `n` buffered bytes (which must be there).
    fn take(&mut self, n: usize) -> Vec<u8> {
        self.buf.drain(..n).collect()
    }

    /// Reads a CRLF-terminated line of at most `limit` bytes (CRLF
    /// included) and returns it with its CRLF.
    async fn take_line(&mut self, limit: usize, what: &str) -> Result<Vec<u8>, ReadError> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buf[searched..], b"\n") {
                let end = searched + at + 1;
                if end > limit {
                    break;
                }
                if end < 2 || self.buf[end - 2] != b'\r' {
                    return Err(ReadError::Invalid(format!("bare LF ending a {what}")));
                }
                return Ok(self.take(end));
            }
            searched = self.buf.len();
            if searched > limit {
                break;
            }
            if self.fill().await? == 0 {
                return Err(ReadError::Closed("connection closed".to_owned()));
            }
        }
        Err(ReadError::Invalid(format!("{what} over {limit} bytes")))
    }

    /// Reads and parses a head through its blank line.
    async fn take_head(&mut self) -> Result<RawRequest, ReadError> {
        let mut searched = 0;
        let end = loop {
            if let Some(at) = find(&self.buf[searched..], b"\r\n\r\n") {
                break searched + at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Invalid(format!("head over {MAX_HEAD} bytes")));
            }
            searched = self.buf.len().saturating_sub(3);
            if self.fill().await? == 0 {
                return Err(ReadError::Closed(format!(
                    "connection closed after {} bytes",
                    self.buf.len()
                )));
            }
        };
        if end > MAX_HEAD {
            return Err(ReadError::Invalid(format!("head over {MAX_HEAD} bytes")));
        }
        let raw = self.take(end);
        parse_head(raw, self.index).map_err(ReadError::Invalid)
    }

    /// Reads the body the head announces into `request`.
    async fn take_body(&mut self, request: &mut RawRequest) -> Result<(), ReadError> {
        match framing(request).map_err(ReadError::Invalid)? {
            Framing::None => Ok(()),
            Framing::Length(n) => {
                self.fill_to(n).await?;
                let body = self.take(n);
                request.raw.extend_from_slice(&body);
                request.body = body;
                Ok(())
            }
            Framing::Chunked => self.take_chunked(request).await,
        }
    }

    /// Reads a chunked body: chunks, the last chunk, trailers.
    async fn take_chunked(&mut self, request: &mut RawRequest) -> Result<(), ReadError> {
        loop {
            let line = self.take_line(MAX_CHUNK_LINE, "chunk-size line").await?;
            request.raw.extend_from_slice(&line);
            let size = parse_chunk_size(&line).map_err(ReadError::Invalid)?;
            if size == 0 {
                break;
            }
            if request.body.len().saturating_add(size) > MAX_BODY {
                return Err(ReadError::Invalid(format!("body over {MAX_BODY} bytes")));
            }
            self.fill_to(size + 2).await?;
            let data = self.take(size);
            request.raw.extend_from_slice(&data);
            request.body.extend_from_slice(&data);
            let crlf = self.take(2);
            request.raw.extend_from_slice(&crlf);
            if crlf != b"\r\n" {
                return Err(ReadError::Invalid(
                    "chunk data not followed by CRLF".to_owned(),
                ));
            }
        }
        let mut trailer_bytes = 0;
        loop {
            let line = self
                .take_line(MAX_CHUNK_LINE - trailer_bytes, "trailer section")
                .await?;
            trailer_bytes += line.len();
            request.raw.extend_from_slice(&line);
            if line == b"\r\n" {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let field = parse_field(&text).map_err(ReadError::Invalid)?;
            request.trailers.push(field);
        }
    }
}

/// A request as [`RawConn::read_request`] read it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawRequest {
    /// Head and body exactly as received (chunk framing included).
    pub raw: Vec<u8>,
    /// The head as text (invalid UTF-8 replaced), request line through the
    /// final CRLF CRLF.
    pub head: String,
    /// The method, as sent.
    pub method: String,
    /// The request target, as sent (`/path?q`, or an absolute URL to a
    /// proxy, or `host:port` for CONNECT).
    pub target: String,
    /// The version, as sent (`HTTP/1.1`).
    pub version: String,
    /// The header fields in order, names as sent, values without the
    /// surrounding whitespace.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body, in order.
    pub trailers: Vec<(String, String)>,
    /// Which accepted connection it came on (0-based, see
    /// [`RawConn::index`]).
    pub conn_index: usize,
}

impl RawRequest {
    /// The value of the first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The values of every header field named `name` (case-insensitive), in
    /// order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The header field names in order, as sent.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a head (through CRLF CRLF) into a body-less request.
fn parse_head(raw: Vec<u8>, conn_index: usize) -> Result<RawRequest, String> {
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head[..head.len() - 4].split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/") {
        return Err(format!("malformed request line {request_line:?}"));
    }
    let headers = lines.map(parse_field).collect::<Result<Vec<_>, _>>()?;
    Ok(RawRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
        head,
        raw,
        body: Vec::new(),
        trailers: Vec::new(),
        conn_index,
    })
}

/// Parses `name: value` (no obsolete line folding, no bare LF).
fn parse_field(line: &str) -> Result<(String, String), String> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':' && b != b'"')
    };
    match line.split_once(':') {
        Some((name, value)) if valid_name(name) && !value.contains(['\r', '\n']) => {
            Ok((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()))
        }
        _ => Err(format!("malformed header field {line:?}")),
    }
}

/// How a request body is delimited.
enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// RFC 9112 §6.3, for requests: chunked when the final transfer coding is
/// chunked, else `Content-Length`, else no body.
fn framing(request: &RawRequest) -> Result<Framing, String> {
    let te = request.header_all("transfer-encoding");
    let cl = request.header_all("content-length");
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err("both Transfer-Encoding and Content-Length".to_owned());
        }
        let last = te
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(format!("Transfer-Encoding {te:?} does not end in chunked")),
        };
    }
    let mut length = None;
    for value in cl.iter().flat_map(|v| v.split(',')).map(str::trim) {
        let n = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u64>().ok()
        } else {
            None
        };
        let Some(n) = n else {
            return Err(format!("invalid Content-Length {value:?}"));
        };
        if length.is_some_and(|l| l != n) {
            return Err(format!("conflicting Content-Length values {cl:?}"));
        }
        length = Some(n);
    }
    match length {
        None => Ok(Framing::None),
        Some(n) => match usize::try_from(n) {
            Ok(n) if n <= MAX_BODY => Ok(Framing::Length(n)),
            _ => Err(format!("body over {MAX_BODY} bytes (Content-Length {n})")),
        },
    }
}

/// The size of a chunk-size line (with its CRLF): hex digits, then an
/// optional `;extension`.
fn parse_chunk_size(line: &[u8]) -> Result<usize, String> {
    let text = String::from_utf8_lossy(&line[..line.len() - 2]);
    let digits = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches([' ', '\t']);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("malformed chunk-size line {text:?}"));
    }
    usize::from_str_radix(digits, 16).map_err(|e| format!("chunk size {digits:?}: {e}"))
}

/// A response: `HTTP/1.1 {status} {reason}`, `headers` in order, then
/// `Content-Length: {body.len()}` unless `headers` has a `Content-Length`
/// or `Transfer-Encoding` (names compared case-insensitively), a blank line
/// and `body` as is. The reason phrase is the usual one for common codes,
/// else empty.
///
/// ```
/// let bytes = courier_test_support::raw::response(404, &[("Server", "raw")], b"gone");
/// assert_eq!(bytes, b"HTTP/1.1 404 Not Found\r\nServer: raw\r\nContent-Length: 4\r\n\r\ngone");
/// ```
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
    });
    if !framed {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `chunks` in chunked framing, each as one chunk (empty ones skipped, as
/// an empty chunk would end the body), then the last chunk and an empty
/// trailer section. Pair it with a `Transfer-Encoding: chunked` header in
/// [`response`].
///
/// ```
/// let body = courier_test_support::raw::chunked(&[b"hello", b", world"]);
/// assert_eq!(body, b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
/// ```
pub fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The reason phrase [`response`] writes for `status`.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// Bounds every test: none may hang.
    const GUARD: Duration = Duration::from_secs(20);

    /// A server answering each request with 200 and the request's body.
    async fn echo_server() -> RawServer {
        RawServer::start(|mut conn| async move {
            while let Some(request) = conn.read_request().await {
                conn.write(&response(200, &[], &request.body)).await;
            }
        })
        .await
    }

    /// Sends `bytes`, half-closes, and reads the reply to EOF.
    async fn exchange(server: &RawServer, bytes: &[u8]) -> Vec<u8> {
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client.write_all(bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = Vec::new();
        // A server closing with request bytes unread resets the connection:
        // what arrived before is still the reply.
        let _ = client.read_to_end(&mut reply).await;
        reply
    }

    async fn guarded<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(GUARD, f).await.expect("the test hung")
    }

    #[tokio::test]
    async fn reads_a_request_with_content_length() {
        guarded(async {
            let server = echo_server().await;
            let sent = b"POST /submit?x=1 HTTP/1.1\r\nHost: a\r\nX-Case: Yes \r\ncontent-length: 5\r\n\r\nhello";
            let reply = exchange(&server, sent).await;
            assert_eq!(reply, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");

            let requests = server.requests();
            assert_eq!(requests.len(), 1);
            let r = &requests[0];
            assert_eq!(r.raw, sent);
            assert_eq!(r.head.as_bytes(), &sent[..sent.len() - 5]);
            assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/submit?x=1"));
            assert_eq!(r.version, "HTTP/1.1");
            assert_eq!(r.header_names(), ["Host", "X-Case", "content-length"]);
            assert_eq!(r.header("x-case"), Some("Yes"));
            assert_eq!(r.header("Content-Length"), Some("5"));
            assert_eq!(r.header("missing"), None);
            assert_eq!(r.body, b"hello");
            assert_eq!(r.conn_index, 0);
            assert_eq!(server.accepted(), 1);
            assert!(server.errors().is_empty(), "{:?}", server.errors());
        })
        .await;
    }

    #[tokio::test]
    async fn reads_a_chunked_request() {
        guarded(async {
            let server = echo_server().await;
            let sent: &[u8] = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;ext=1\r\nhello\r\nA\r\n 0123456\r\n\r\n0\r\nX-Sum: 1\r\n\r\n";
            let reply = exchange(&server, sent).await;
            assert_eq!(
                reply,
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nhello 0123456\r\n"
            );
            let r = &server.requests()[0];
            assert_eq!(r.raw, sent);
            assert_eq!(r.body, b"hello 0123456\r\n");
            assert_eq!(r.trailers, [("X-Sum".to_owned(), "1".to_owned())]);
            assert!(server.errors().is_empty(), "{:?}", server.errors());
        })
        .await;
    }

    #[tokio::test]
    async fn two_requests_on_one_connection_and_a_second_connection() {
        guarded(async {
            let server = echo_server().await;
            // Pipelined: both requests in one write.
            let reply = exchange(
                &server,
                b"POST /1 HTTP/1.1\r\nContent-Length: 1\r\n\r\naGET /2 HTTP/1.1\r\n\r\n",
            )
            .await;
            assert_eq!(
                reply,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\
                  HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            );
            exchange(&server, b"GET /3 HTTP/1.1\r\n\r\n").await;

            let log: Vec<_> = server
                .requests()
                .into_iter()
                .map(|r| (r.target, r.conn_index))
                .collect();
            assert_eq!(
                log,
                [
                    ("/1".to_owned(), 0),
                    ("/2".to_owned(), 0),
                    ("/3".to_owned(), 1)
                ]
            );
            assert_eq!(server.accepted(), 2);
        })
        .await;
    }

    #[tokio::test]
    async fn read_head_then_body_for_expect_continue() {
        guarded(async {
            let server = RawServer::start(|mut conn| async move {
                let head = conn.read_head().await.unwrap();
                assert!(head.body.is_empty());
                conn.write(b"HTTP/1.1 100 Continue\r\n\r\n").await;
                let request = conn.read_body(head).await.unwrap();
                conn.write(&response(200, &[], &request.body)).await;
            })
            .await;
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            client
                .write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
                .await
                .unwrap();
            let mut interim = [0; 25];
            client.read_exact(&mut interim).await.unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
            client.write_all(b"ok").await.unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.ends_with(b"\r\n\r\nok"));
            assert_eq!(server.requests().len(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn malformed_requests_are_recorded() {
        guarded(async {
            let server = echo_server().await;
            let cases: [&[u8]; 5] = [
                b"GET /\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            ];
            for case in cases {
                assert_eq!(exchange(&server, case).await, b"");
            }
            let errors = server.errors();
            assert_eq!(errors.len(), cases.len(), "{errors:?}");
            assert!(errors[0].contains("malformed request line"), "{errors:?}");
            assert!(errors[1].contains("closed"), "{errors:?}");
            assert!(errors[2].contains("chunk-size"), "{errors:?}");
            assert!(errors[3].contains("CRLF"), "{errors:?}");
            assert!(errors[4].contains("conflicting"), "{errors:?}");
            assert!(server.requests().is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn oversized_head_is_refused() {
        guarded(async {
            let server = echo_server().await;
            let mut sent = b"GET / HTTP/1.1\r\nX: ".to_vec();
            sent.resize(MAX_HEAD + 10, b'a');
            sent.extend_from_slice(b"\r\n\r\n");
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            // The server may close before reading everything: ignore errors.
            let _ = client.write_all(&sent).await;
            let mut reply = Vec::new();
            let _ = client.read_to_end(&mut reply).await;
            assert!(reply.is_empty());
            assert!(
                server.errors()[0].contains("head over"),
                "{:?}",
                server.errors()
            );
        })
        .await;
    }

    #[tokio::test]
    async fn a_silent_client_times_out_without_hanging() {
        guarded(async {
            let server = RawServer::builder()
                .read_timeout(Duration::from_millis(100))
                .start(|mut conn| async move {
                    let request = conn.read_request().await;
                    conn.write(if request.is_none() { b"none" } else { b"some" })
                        .await;
                })
                .await;

            // Silent from the start: None, and not an error.
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"none");
            assert!(server.errors().is_empty(), "{:?}", server.errors());

            // Silent in the middle of a head: None, recorded.
            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            let mut reply = Vec::new();
            client.read_to_end(&mut reply).await.unwrap();
            assert_eq!(reply, b"none");
            let errors = server.errors();
            assert_eq!(errors.len(), 1);
            assert!(errors[0].contains("connection 1: timed out"), "{errors:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn read_to_eof_close_and_reset() {
        guarded(async {
            let server = RawServer::start(|mut conn| async move {
                let request = conn.read_request().await.unwrap();
                let rest = conn.read_to_eof().await;
                conn.write(&rest).await;
                if request.target == "/reset" {
                    conn.reset();
                } else {
                    conn.close().await;
                }
            })
            .await;

            let reply = exchange(&server, b"GET /close HTTP/1.1\r\n\r\ntrailing").await;
            assert_eq!(reply, b"trailing");

            let mut client = TcpStream::connect(server.addr()).await.unwrap();
            client
                .write_all(b"GET /reset HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            client.shutdown().await.unwrap();
            let mut reply = Vec::new();
            let read = client.read_to_end(&mut reply).await;
            assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        })
        .await;
    }

    #[tokio::test]
    async fn handler_panics_are_recorded() {
        guarded(async {
            let server = RawServer::start(|_conn| async move {
                panic!("scripted failure");
            })
            .await;
            let reply = exchange(&server, b"GET / HTTP/1.1\r\n\r\n").await;
            assert!(reply.is_empty());
            // The accept loop collects the panic after the socket closed.
            while server.errors().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(
                server.errors(),
                ["connection 0: handler panicked: scripted failure"]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn drop_stops_the_server() {
        guarded(async {
            let server = RawServer::start(|mut conn| async move {
                // Would hold the connection open for the whole read timeout.
                let _ = conn.read_to_eof().await;
            })
            .await;
            let addr = server.addr();
            let mut open = TcpStream::connect(addr).await.unwrap();
            while server.accepted() == 0 {
                tokio::task::yield_now().await;
            }
            drop(server);

            // The open connection is closed, not left waiting for 10 s.
            let mut buf = [0; 1];
            let read = open.read(&mut buf).await;
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

            // A new connection is refused, or reset once the listener goes.
            if let Ok(mut late) = TcpStream::connect(addr).await {
                let _ = late.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
                let read = late.read(&mut buf).await;
                assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
            }
        })
        .await;
    }

    #[test]
    fn response_helper_frames_bodies() {
        assert_eq!(
            response(200, &[("Content-Type", "text/plain")], b"hi"),
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        assert_eq!(
            response(299, &[("content-length", "9")], b"short"),
            b"HTTP/1.1 299 \r\ncontent-length: 9\r\n\r\nshort"
        );
        let body = chunked(&[b"ab", b"", b"0123456789abcdef"]);
        assert_eq!(
            response(200, &[("Transfer-Encoding", "chunked")], &body),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              2\r\nab\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"
        );
    }
}
