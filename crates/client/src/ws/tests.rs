//! The client WebSocket layer against scripted servers: a `TcpListener` on
//! 127.0.0.1 that reads the upgrade request, answers it, then reads the
//! client's masked frames and writes unmasked frames by hand. Every await
//! of a server, and every client call a test waits on, is bounded.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_ws::frame::{FrameHeader, OpCode};
use courier_ws::mask::apply_mask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{ClientWebSocket, CloseCode, CloseFrame, DataKind, Message};
use crate::{BasicAuth, ClientSession, Error, ProxyConnector, TimeoutPhase, Timeouts};

/// The bound on each await in servers and on each client call waited on.
const STEP: Duration = Duration::from_secs(5);
/// The bound on a whole server script.
const SCRIPT_LIMIT: Duration = Duration::from_secs(8);
/// The largest request head a scripted server reads.
const MAX_HEAD: usize = 16 * 1024;
/// The most bytes a scripted server buffers from the client.
const MAX_BUFFERED: usize = 8 << 20;

/// `fut`, or a panic naming `what` after [`STEP`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

// ---------------------------------------------------------------------
// Frames, by hand

/// One frame as the server saw it (unmasked).
#[derive(Debug, Clone)]
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    payload: Vec<u8>,
    /// Header length on the wire, masking key included.
    header_len: usize,
}

impl Frame {
    /// The code and reason of a close frame.
    fn close(&self) -> (u16, String) {
        assert_eq!(
            self.opcode,
            OpCode::Close,
            "expected a close frame: {self:?}"
        );
        assert!(self.payload.len() >= 2, "close frame without a code");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        let reason = String::from_utf8(self.payload[2..].to_vec()).expect("UTF-8 reason");
        (code, reason)
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8 payload")
    }
}

/// A frame's bytes: FIN, RSV1, opcode, payload, optionally masked.
fn raw_frame(
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
        payload_len: u64::try_from(payload.len()).expect("length fits u64"),
    };
    let mut out = Vec::with_capacity(header.encoded_len() + payload.len());
    header.encode(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A server's (unmasked, final) frame.
fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    raw_frame(true, false, opcode, payload, None)
}

/// `len` bytes of a repeating pattern.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

// ---------------------------------------------------------------------
// The scripted server

/// The upgrade request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    head: String,
}

impl Request {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// Every value of header `name`, in order.
    fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    /// The only value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        let values = self.headers(name);
        assert!(
            values.len() <= 1,
            "header {name} sent {} times: {values:?}",
            values.len()
        );
        values.first().copied()
    }
}

/// Reads a request (or proxy) head; returns it and the bytes after it.
async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return (String::from_utf8(buf).expect("ASCII head"), rest);
        }
        assert!(buf.len() < MAX_HEAD, "request head too large");
        let mut chunk = [0u8; 4096];
        let n = within("server reading the head", stream.read(&mut chunk))
            .await
            .expect("server read");
        assert!(
            n > 0,
            "EOF before the end of the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An accepted connection whose upgrade request was read, not answered.
struct Handshake {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Request,
}

impl Handshake {
    async fn accept(listener: &TcpListener) -> Handshake {
        let (mut stream, _) = within("server accept", listener.accept())
            .await
            .expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let (head, buf) = read_head(&mut stream).await;
        Handshake {
            stream,
            buf,
            request: Request { head },
        }
    }

    fn key(&self) -> String {
        self.request
            .header("sec-websocket-key")
            .expect("Sec-WebSocket-Key")
            .to_owned()
    }

    /// Answers 101 with the right accept key.
    async fn accept_ws(self) -> Peer {
        self.accept_with("", b"").await
    }

    /// Answers 101 with the right accept key, `extra` header lines (each
    /// ending in CRLF), and `after` in the same write.
    async fn accept_with(self, extra: &str, after: &[u8]) -> Peer {
        let accept = courier_ws::accept_key(&self.key());
        let mut response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        )
        .into_bytes();
        response.extend_from_slice(after);
        self.respond(&response).await
    }

    /// Writes `bytes` as the answer.
    async fn respond(mut self, bytes: &[u8]) -> Peer {
        within("server writing the answer", self.stream.write_all(bytes))
            .await
            .expect("server write");
        Peer {
            stream: self.stream,
            buf: self.buf,
        }
    }
}

/// The server's side of an open WebSocket.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    /// The next frame from the client (checked masked), `None` at EOF.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((header, len)) = FrameHeader::parse(&self.buf).expect("client frame header")
            {
                let payload_len = usize::try_from(header.payload_len).expect("frame length");
                if self.buf.len() >= len + payload_len {
                    let mut payload = self.buf[len..len + payload_len].to_vec();
                    self.buf.drain(..len + payload_len);
                    let key = header.mask.expect("client frames must be masked");
                    apply_mask(&mut payload, key, 0);
                    return Some(Frame {
                        fin: header.fin,
                        rsv1: header.rsv1,
                        opcode: header.opcode,
                        payload,
                        header_len: len,
                    });
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = within("server reading a frame", self.stream.read(&mut chunk))
                .await
                .expect("server read");
            if n == 0 {
                assert!(self.buf.is_empty(), "EOF inside a frame: {:?}", self.buf);
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            assert!(self.buf.len() < MAX_BUFFERED, "client sent too much");
        }
    }

    async fn read_frame(&mut self) -> Frame {
        self.next_frame().await.expect("a frame, not EOF")
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        within("server write", self.stream.write_all(bytes))
            .await
            .expect("server write");
    }

    async fn write_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        self.write_raw(&frame(opcode, payload)).await;
    }

    async fn write_close(&mut self, code: u16, reason: &str) {
        self.write_frame(OpCode::Close, &close_payload(code, reason))
            .await;
    }

    /// Closes the write half (FIN): the server closes TCP first.
    async fn shutdown(&mut self) {
        within("server shutdown", self.stream.shutdown())
            .await
            .expect("server shutdown");
    }

    /// Asserts that nothing arrives from the client for `period`.
    async fn expect_silence(&mut self, period: Duration) {
        if let Some((header, _)) = FrameHeader::parse(&self.buf).expect("client frame header") {
            panic!("unexpected frame from the client: {header:?}");
        }
        let mut chunk = [0u8; 256];
        if let Ok(read) = tokio::time::timeout(period, self.stream.read(&mut chunk)).await {
            let n = read.expect("server read");
            panic!("expected silence, got {:?}", &chunk[..n]);
        }
    }

    /// Echoes data frames (as they came: fragments stay fragments),
    /// answers pings, and echoes the close frame, then returns every frame
    /// seen. Returns at the close frame or EOF, dropping the connection.
    async fn echo(mut self) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(frame) = self.next_frame().await {
            match frame.opcode {
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    let bytes = raw_frame(frame.fin, false, frame.opcode, &frame.payload, None);
                    self.write_raw(&bytes).await;
                }
                OpCode::Ping => self.write_frame(OpCode::Pong, &frame.payload).await,
                OpCode::Pong => {}
                OpCode::Close => {
                    let code = frame.payload.get(..2).unwrap_or_default().to_vec();
                    self.write_frame(OpCode::Close, &code).await;
                    seen.push(frame);
                    return seen;
                }
            }
            seen.push(frame);
        }
        seen
    }
}

/// A scripted server running on its own task.
struct Server<T> {
    addr: SocketAddr,
    task: JoinHandle<T>,
}

impl<T> Server<T> {
    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The script's result; its panic, if it panicked.
    async fn finish(self) -> T {
        match within("server script", self.task).await {
            Ok(out) => out,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("server task: {err}"),
        }
    }
}

/// Runs `script` with a listener on 127.0.0.1.
async fn serve_listener<F, Fut, T>(script: F) -> Server<T>
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        match tokio::time::timeout(SCRIPT_LIMIT, script(listener)).await {
            Ok(out) => out,
            Err(_) => panic!("server script timed out"),
        }
    });
    Server { addr, task }
}

/// Runs `script` on the first connection, once its upgrade request was
/// read.
async fn serve<F, Fut, T>(script: F) -> Server<T>
where
    F: FnOnce(Handshake) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    serve_listener(|listener| async move {
        let handshake = Handshake::accept(&listener).await;
        script(handshake).await
    })
    .await
}

/// A server that accepts the upgrade and echoes (see [`Peer::echo`]).
async fn echo_server() -> Server<(Request, Vec<Frame>)> {
    serve(|hs| async move {
        let request = hs.request.clone();
        let frames = hs.accept_ws().await.echo().await;
        (request, frames)
    })
    .await
}

fn session() -> ClientSession {
    ClientSession::builder().build().expect("session")
}

async fn connect(url: &str) -> ClientWebSocket {
    within("ws_connect", session().ws_connect(url).send())
        .await
        .expect("ws_connect")
}

/// `Sec-WebSocket-Key`: the base64 of 16 bytes (RFC 6455 §4.1).
fn is_base64_nonce(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn assert_timeout(err: &Error, phase: TimeoutPhase) {
    assert!(err.is_timeout(), "expected a timeout: {err:?}");
    assert_eq!(err.timeout_phase(), Some(phase), "{err:?}");
}

fn assert_ws_failure(err: &Error, code: CloseCode) {
    assert!(
        err.is_ws_protocol(),
        "expected a WebSocket failure: {err:?}"
    );
    assert_eq!(err.ws_close_code(), Some(code), "{err:?}");
}

// ---------------------------------------------------------------------
// 1. The handshake request

#[tokio::test]
async fn handshake_request_has_websocket_session_and_option_headers() {
    let server = serve(|hs| async move {
        let request = hs.request.clone();
        let peer = hs
            .accept_with("Sec-WebSocket-Protocol: chat\r\nX-Server: yes\r\n", b"")
            .await;
        let frames = peer.echo().await;
        (request, frames)
    })
    .await;
    let session = ClientSession::builder()
        .header("x-default", "from-session")
        .cookie("http://127.0.0.1", "sid", "abc123")
        .build()
        .unwrap();
    let url = server.url("/path?query=1");
    let mut ws = within(
        "ws_connect",
        session
            .ws_connect(url.as_str())
            .protocols(["chat", "superchat"])
            .origin("http://app.example")
            .compress(true)
            .auth(BasicAuth::new("user", "pass").unwrap())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(ws.url().as_str(), url);
    assert_eq!(ws.protocol(), Some("chat"));
    // The server did not accept permessage-deflate.
    assert!(ws.compress().is_none());
    assert_eq!(ws.headers()["x-server"], "yes");
    assert!(!ws.closed());
    assert_eq!(ws.close_code(), None);
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();

    let (request, _) = server.finish().await;
    let port = server_port(&url);
    assert_eq!(request.request_line(), "GET /path?query=1 HTTP/1.1");
    assert_eq!(
        request.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(
        request
            .header("upgrade")
            .unwrap()
            .eq_ignore_ascii_case("websocket")
    );
    let connection = request.header("connection").unwrap();
    assert!(
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade")),
        "Connection: {connection}"
    );
    let key = request.header("sec-websocket-key").unwrap();
    assert!(is_base64_nonce(key), "Sec-WebSocket-Key: {key}");
    assert_eq!(request.header("sec-websocket-version"), Some("13"));
    assert_eq!(
        request.header("sec-websocket-protocol"),
        Some("chat, superchat")
    );
    assert_eq!(request.header("origin"), Some("http://app.example"));
    let extensions = request.header("sec-websocket-extensions").unwrap();
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    // base64("user:pass")
    assert_eq!(request.header("authorization"), Some("Basic dXNlcjpwYXNz"));
    let cookie = request
        .header("cookie")
        .expect("the jar's cookie for http://127.0.0.1");
    assert!(
        cookie.split(';').any(|c| c.trim() == "sid=abc123"),
        "Cookie: {cookie}"
    );
    assert_eq!(request.header("x-default"), Some("from-session"));
}

fn server_port(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().unwrap()
}

#[tokio::test]
async fn handshake_without_options_sends_no_optional_headers() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/")).await;
    assert_eq!(ws.protocol(), None);
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (request, _) = server.finish().await;
    assert_eq!(request.request_line(), "GET / HTTP/1.1");
    assert_eq!(request.header("sec-websocket-protocol"), None);
    assert_eq!(request.header("sec-websocket-extensions"), None);
    assert_eq!(request.header("origin"), None);
    assert_eq!(request.header("authorization"), None);
}

#[tokio::test]
async fn url_userinfo_becomes_basic_auth_and_is_not_shown() {
    let server = echo_server().await;
    let url = format!("ws://alice:s3cret@127.0.0.1:{}/chat", server.port());
    let mut ws = connect(&url).await;
    assert_eq!(
        ws.url().as_str(),
        format!("ws://127.0.0.1:{}/chat", server.port())
    );
    assert!(!format!("{ws:?}").contains("s3cret"));
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (request, _) = server.finish().await;
    // base64("alice:s3cret")
    assert_eq!(
        request.header("authorization"),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    assert_eq!(request.request_line(), "GET /chat HTTP/1.1");
}

#[tokio::test]
async fn two_connections_use_different_keys() {
    let server = serve_listener(|listener| async move {
        let mut keys = Vec::new();
        for _ in 0..2 {
            let hs = Handshake::accept(&listener).await;
            keys.push(hs.key());
            hs.accept_ws().await.echo().await;
        }
        keys
    })
    .await;
    for _ in 0..2 {
        let mut ws = connect(&server.url("/")).await;
        within("close", ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap();
    }
    let keys = server.finish().await;
    assert_ne!(keys[0], keys[1]);
}

/// Cookies the 101 answer sets go to the jar and are sent again.
#[tokio::test]
async fn cookies_set_by_the_handshake_are_kept() {
    let server = serve_listener(|listener| async move {
        let hs = Handshake::accept(&listener).await;
        let peer = hs.accept_with("Set-Cookie: room=42; Path=/\r\n", b"").await;
        peer.echo().await;
        let hs = Handshake::accept(&listener).await;
        let cookie = hs.request.header("cookie").map(str::to_owned);
        hs.accept_ws().await.echo().await;
        cookie
    })
    .await;
    let session = session();
    for _ in 0..2 {
        let connecting = session.ws_connect(server.url("/c").as_str()).send();
        let mut ws = within("ws_connect", connecting).await.unwrap();
        within("close", ws.close(CloseCode::NORMAL, ""))
            .await
            .unwrap();
    }
    assert_eq!(server.finish().await.as_deref(), Some("room=42"));
}

/// `.query(..)` adds to the URL the server sees, and `url()` (the URL
/// connected to) should show it.
#[tokio::test]
async fn query_params_reach_the_server_and_url() {
    let server = echo_server().await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/q").as_str())
            .query(&[("room", "7")])
            .send(),
    )
    .await
    .unwrap();
    let shown = ws.url().clone();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (request, _) = server.finish().await;
    assert_eq!(request.request_line(), "GET /q?room=7 HTTP/1.1");
    assert_eq!(shown.query(), Some("room=7"), "url() = {shown}");
}

/// An `http://` URL is accepted as `ws://`; `url()` documents a `ws://` or
/// `wss://` URL.
#[tokio::test]
async fn http_url_is_accepted_and_shown_as_ws() {
    let server = echo_server().await;
    let url = format!("http://127.0.0.1:{}/h", server.port());
    let mut ws = connect(&url).await;
    let shown = ws.url().clone();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (request, _) = server.finish().await;
    assert_eq!(request.request_line(), "GET /h HTTP/1.1");
    assert_eq!(shown.scheme(), "ws", "url() = {shown}");
}

// ---------------------------------------------------------------------
// 2. Echo

#[tokio::test]
async fn echo_text_binary_and_messages() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/echo")).await;

    within("send", ws.send_str("hello")).await.unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "hello");

    within("send", ws.send_bytes([1u8, 2, 3])).await.unwrap();
    assert_eq!(
        within("receive", ws.receive_bytes()).await.unwrap(),
        Bytes::from_static(&[1, 2, 3])
    );

    within("send", ws.send(Message::Text("via send".into())))
        .await
        .unwrap();
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Text("via send".into()))
    );

    within(
        "send",
        ws.send(Message::Binary(Bytes::from_static(b"\x00bin"))),
    )
    .await
    .unwrap();
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Binary(Bytes::from_static(b"\x00bin")))
    );

    // Empty messages.
    within("send", ws.send_str("")).await.unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "");
    within("send", ws.send_bytes(b"")).await.unwrap();
    assert!(
        within("receive", ws.receive_bytes())
            .await
            .unwrap()
            .is_empty()
    );

    // Non-ASCII text.
    within("send", ws.send_str("caf\u{e9} \u{1f600}"))
        .await
        .unwrap();
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        "caf\u{e9} \u{1f600}"
    );

    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (_, frames) = server.finish().await;
    let kinds: Vec<(OpCode, bool)> = frames.iter().map(|f| (f.opcode, f.fin)).collect();
    assert_eq!(
        kinds,
        [
            (OpCode::Text, true),
            (OpCode::Binary, true),
            (OpCode::Text, true),
            (OpCode::Binary, true),
            (OpCode::Text, true),
            (OpCode::Binary, true),
            (OpCode::Text, true),
            (OpCode::Close, true),
        ]
    );
    assert!(frames.iter().all(|f| !f.rsv1));
}

#[cfg(feature = "json")]
#[tokio::test]
async fn echo_json() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/json")).await;
    let value = serde_json::json!({"op": "sub", "ids": [1, 2, 3], "deep": {"ok": true}});
    within("send", ws.send_json(&value)).await.unwrap();
    let back: serde_json::Value = within("receive", ws.receive_json()).await.unwrap();
    assert_eq!(back, value);
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (_, frames) = server.finish().await;
    assert_eq!(frames[0].opcode, OpCode::Text);
    let sent: serde_json::Value = serde_json::from_slice(&frames[0].payload).unwrap();
    assert_eq!(sent, value);
}

#[tokio::test]
async fn large_messages_use_16_and_64_bit_lengths() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/big")).await;
    let sizes = [125usize, 126, 300, 65_535, 65_536, 70_000];
    for &size in &sizes {
        let data = pattern(size);
        within("send", ws.send_bytes(&data)).await.unwrap();
        let back = within("receive", ws.receive_bytes()).await.unwrap();
        assert_eq!(back.len(), size);
        assert!(back == data, "payload of {size} bytes changed");
    }
    let text = "x".repeat(70_000);
    within("send", ws.send_str(&text)).await.unwrap();
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        text.as_str()
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();

    let (_, frames) = server.finish().await;
    let header_lens: Vec<usize> = frames.iter().map(|f| f.header_len).collect();
    // 7-bit, 16-bit, 16-bit, 16-bit, 64-bit, 64-bit, 64-bit (text), close;
    // each with its 4-byte masking key.
    assert_eq!(header_lens, [6, 8, 8, 8, 14, 14, 14, 6]);
    assert_eq!(frames[5].payload.len(), 70_000);
}

#[tokio::test]
async fn send_fragment_sends_continuations_and_pings_between() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/frag")).await;
    within("fragment", ws.send_fragment(DataKind::Text, b"Hel", false))
        .await
        .unwrap();
    // Another message cannot start mid-message; a ping may go between.
    let err = within("send", ws.send_str("nope")).await.unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    within("ping", ws.ping(b"mid")).await.unwrap();
    within("fragment", ws.send_fragment(DataKind::Text, b"lo, ", false))
        .await
        .unwrap();
    within("fragment", ws.send_fragment(DataKind::Text, b"world", true))
        .await
        .unwrap();
    // The echo comes back fragmented too, with the pong between: the
    // client joins it and keeps the pong out.
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        "Hello, world"
    );
    within(
        "fragment",
        ws.send_fragment(DataKind::Binary, &[1, 2], false),
    )
    .await
    .unwrap();
    within("fragment", ws.send_fragment(DataKind::Binary, &[3], true))
        .await
        .unwrap();
    assert_eq!(
        within("receive", ws.receive_bytes()).await.unwrap(),
        Bytes::from_static(&[1, 2, 3])
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();

    let (_, frames) = server.finish().await;
    let seen: Vec<(OpCode, bool, &[u8])> = frames
        .iter()
        .map(|f| (f.opcode, f.fin, f.payload.as_slice()))
        .collect();
    assert_eq!(
        seen,
        [
            (OpCode::Text, false, &b"Hel"[..]),
            (OpCode::Ping, true, &b"mid"[..]),
            (OpCode::Continuation, false, &b"lo, "[..]),
            (OpCode::Continuation, true, &b"world"[..]),
            (OpCode::Binary, false, &[1u8, 2][..]),
            (OpCode::Continuation, true, &[3u8][..]),
            (OpCode::Close, true, &[0x03u8, 0xe8][..]),
        ]
    );
}

#[tokio::test]
async fn permessage_deflate_both_ways() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

    let server = serve(|hs| async move {
        let offer = hs
            .request
            .header("sec-websocket-extensions")
            .unwrap()
            .to_owned();
        let mut peer = hs
            .accept_with(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover\r\n",
                b"",
            )
            .await;
        // The client's message: compressed, RSV1 on.
        let got = peer.read_frame().await;
        assert_eq!(got.opcode, OpCode::Text);
        assert!(got.rsv1, "a compressed message has RSV1");
        let mut input = got.payload.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut inflated = Vec::with_capacity(4096);
        Decompress::new(false)
            .decompress_vec(&input, &mut inflated, FlushDecompress::Sync)
            .unwrap();
        // Ours, compressed the same way.
        let reply = "the server's compressed reply, reply, reply".as_bytes();
        let mut deflated = Vec::with_capacity(reply.len() + 64);
        Compress::new(Compression::default(), false)
            .compress_vec(reply, &mut deflated, FlushCompress::Sync)
            .unwrap();
        assert!(deflated.ends_with(&[0, 0, 0xff, 0xff]));
        deflated.truncate(deflated.len() - 4);
        peer.write_raw(&raw_frame(true, true, OpCode::Text, &deflated, None))
            .await;
        let close = peer.read_frame().await;
        peer.write_close(1000, "").await;
        (offer, inflated, got.payload.len(), close)
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/z").as_str())
            .compress(true)
            .send(),
    )
    .await
    .unwrap();
    let params = *ws.compress().expect("permessage-deflate negotiated");
    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
    let text = "compress me compress me compress me compress me compress me";
    within("send", ws.send_str(text)).await.unwrap();
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        "the server's compressed reply, reply, reply"
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (offer, inflated, wire_len, close) = server.finish().await;
    assert!(offer.starts_with("permessage-deflate"), "{offer}");
    assert_eq!(inflated, text.as_bytes());
    assert!(wire_len < text.len(), "not compressed: {wire_len} bytes");
    assert_eq!(close.close().0, 1000);
    assert!(!close.rsv1);
}

// ---------------------------------------------------------------------
// 3. Bytes right behind the 101

#[tokio::test]
async fn frames_in_the_same_write_as_the_101_are_delivered() {
    let server = serve(|hs| async move {
        let mut after = frame(OpCode::Text, b"first");
        let second = frame(OpCode::Binary, b"second message");
        // Half of the second frame goes with the 101, the rest later.
        let (head, tail) = second.split_at(5);
        after.extend_from_slice(head);
        let mut peer = hs.accept_with("", &after).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.write_raw(tail).await;
        peer.echo().await
    })
    .await;
    let mut ws = connect(&server.url("/eager")).await;
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "first");
    assert_eq!(
        within("receive", ws.receive_bytes()).await.unwrap(),
        Bytes::from_static(b"second message")
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    server.finish().await;
}

// ---------------------------------------------------------------------
// 4. Handshake failures

/// Connects to a server that answers the upgrade with `answer(key)`;
/// returns the error.
async fn refused(answer: fn(&str) -> String) -> Error {
    let server = serve(move |hs| async move {
        let response = answer(&hs.key());
        let mut peer = hs.respond(response.as_bytes()).await;
        // The client drops the connection.
        peer.next_frame().await
    })
    .await;
    let err = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/refused").as_str())
            .protocols(["chat"])
            .send(),
    )
    .await
    .unwrap_err();
    assert_eq!(server.finish().await.map(|f| f.opcode), None);
    err
}

#[tokio::test]
async fn handshake_404_is_a_handshake_error_with_status_and_headers() {
    let err = refused(|_| {
        "HTTP/1.1 404 Not Found\r\nX-Reason: no such room\r\nContent-Length: 9\r\n\r\nnot here\n"
            .to_owned()
    })
    .await;
    assert!(err.is_ws_handshake(), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(
        err.ws_handshake_headers().unwrap()["x-reason"],
        "no such room"
    );
    assert!(err.url().is_some());
}

#[tokio::test]
async fn handshake_with_a_wrong_accept_key_fails() {
    let err = refused(|_| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            courier_ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==")
        )
    })
    .await;
    assert!(err.is_ws_handshake(), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(101));
    assert!(
        err.ws_handshake_headers()
            .unwrap()
            .contains_key("sec-websocket-accept")
    );
}

#[tokio::test]
async fn handshake_choosing_a_protocol_not_offered_fails() {
    let err = refused(|key| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: other\r\n\r\n",
            courier_ws::accept_key(key)
        )
    })
    .await;
    assert!(err.is_ws_handshake(), "{err:?}");
    assert_eq!(
        err.ws_handshake_headers().unwrap()["sec-websocket-protocol"],
        "other"
    );
}

#[tokio::test]
async fn handshake_accepting_an_extension_not_offered_fails() {
    let err = refused(|key| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            courier_ws::accept_key(key)
        )
    })
    .await;
    assert!(err.is_ws_handshake(), "{err:?}");
}

#[tokio::test]
async fn handshake_redirect_is_not_followed() {
    let server = serve_listener(|listener| async move {
        let hs = Handshake::accept(&listener).await;
        let _peer = hs
            .respond(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
            .await;
        // No second request, to /elsewhere or anywhere.
        let again = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        again.is_err()
    })
    .await;
    let err = within(
        "ws_connect",
        session().ws_connect(server.url("/old").as_str()).send(),
    )
    .await
    .unwrap_err();
    assert!(err.is_ws_handshake(), "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(302));
    assert_eq!(
        err.ws_handshake_headers().unwrap()["location"],
        "/elsewhere"
    );
    assert!(server.finish().await, "the redirect was followed");
}

#[tokio::test]
async fn unsupported_scheme_is_a_builder_error() {
    let err = within(
        "ws_connect",
        session().ws_connect("ftp://127.0.0.1:1/x").send(),
    )
    .await
    .unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    assert!(!err.is_ws_handshake());
}

#[tokio::test]
async fn handshake_timeout_applies_to_a_silent_server() {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let server = serve(|hs| async move {
        // Never answers; holds the connection until the test is done.
        let _ = done_rx.await;
        drop(hs);
    })
    .await;
    let start = Instant::now();
    let err = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/slow").as_str())
            .timeout(Duration::from_millis(200))
            .send(),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    done_tx.send(()).unwrap();
    server.finish().await;
}

/// The session's HTTP timeouts (total, read) bound the handshake only: an
/// open socket may stay silent longer.
#[tokio::test]
async fn http_timeouts_do_not_apply_to_the_open_socket() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        peer.write_frame(OpCode::Text, b"late").await;
        peer.echo().await
    })
    .await;
    let session = ClientSession::builder()
        .timeouts(
            Timeouts::default()
                .total(Some(Duration::from_millis(150)))
                .read(Some(Duration::from_millis(100))),
        )
        .build()
        .unwrap();
    let mut ws = within(
        "ws_connect",
        session.ws_connect(server.url("/quiet").as_str()).send(),
    )
    .await
    .unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "late");
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    server.finish().await;
}

// ---------------------------------------------------------------------
// 5. Pings

#[tokio::test]
async fn autoping_answers_pings_and_hides_them() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let mut bytes = frame(OpCode::Ping, b"heartbeat-1");
        bytes.extend(frame(OpCode::Pong, b"unsolicited"));
        bytes.extend(frame(OpCode::Text, b"after"));
        peer.write_raw(&bytes).await;
        let pong = peer.read_frame().await;
        let rest = peer.echo().await;
        (pong, rest)
    })
    .await;
    let mut ws = connect(&server.url("/ping")).await;
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Text("after".into()))
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (pong, rest) = server.finish().await;
    assert_eq!(pong.opcode, OpCode::Pong);
    assert_eq!(pong.payload, b"heartbeat-1");
    assert_eq!(rest.len(), 1, "only the close follows: {rest:?}");
    assert_eq!(rest[0].opcode, OpCode::Close);
}

#[tokio::test]
async fn without_autoping_pings_are_returned_and_not_answered() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_frame(OpCode::Ping, b"p1").await;
        peer.write_frame(OpCode::Pong, b"p2").await;
        // The client's first frame must be its text, not an automatic pong.
        let first = peer.read_frame().await;
        let second = peer.read_frame().await;
        let rest = peer.echo().await;
        (first, second, rest)
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/manual").as_str())
            .autoping(false)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Ping(Bytes::from_static(b"p1")))
    );
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Pong(Bytes::from_static(b"p2")))
    );
    within("send", ws.send_str("no pong yet")).await.unwrap();
    within("pong", ws.pong(b"p1")).await.unwrap();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (first, second, rest) = server.finish().await;
    assert_eq!((first.opcode, first.text()), (OpCode::Text, "no pong yet"));
    assert_eq!(
        (second.opcode, second.payload.as_slice()),
        (OpCode::Pong, &b"p1"[..])
    );
    assert_eq!(rest.len(), 1, "{rest:?}");
}

// ---------------------------------------------------------------------
// 6. Close

#[tokio::test]
async fn server_initiated_close_is_returned_echoed_then_none() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_close(1001, "server restart").await;
        let echo = peer.read_frame().await;
        // The server closes TCP first (RFC 6455 §7.1.1).
        echo
    })
    .await;
    let mut ws = connect(&server.url("/bye")).await;
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Close(Some(CloseFrame::new(
            CloseCode::GOING_AWAY,
            "server restart"
        ))))
    );
    let echo = server.finish().await;
    assert_eq!(echo.close().0, 1001);
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
    assert!(ws.closed());
    assert_eq!(ws.close_code(), Some(CloseCode::GOING_AWAY));
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    let err = within("send", ws.send_str("too late")).await.unwrap_err();
    assert!(err.is_ws_closed(), "{err:?}");
    // Closing a closed socket is fine.
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
}

#[tokio::test]
async fn server_close_without_code_is_1005() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_frame(OpCode::Close, b"").await;
        peer.read_frame().await
    })
    .await;
    let mut ws = connect(&server.url("/bye")).await;
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Close(None))
    );
    let echo = server.finish().await;
    assert_eq!(echo.opcode, OpCode::Close);
    assert!(echo.payload.is_empty(), "{echo:?}");
    assert_eq!(ws.close_code(), Some(CloseCode::NO_STATUS));
}

#[tokio::test]
async fn without_autoclose_the_reply_waits_for_close() {
    let (replied_tx, replied_rx) = oneshot::channel::<()>();
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_close(1000, "done").await;
        peer.expect_silence(Duration::from_millis(300)).await;
        replied_tx.send(()).unwrap();
        let reply = peer.read_frame().await;
        // Then the server ends the connection.
        reply
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/manual-close").as_str())
            .autoclose(false)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Close(Some(CloseFrame::new(
            CloseCode::NORMAL,
            "done"
        ))))
    );
    within("server silence check", replied_rx).await.unwrap();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let reply = server.finish().await;
    assert_eq!(reply.close().0, 1000);
    assert!(ws.closed());
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
}

#[tokio::test]
async fn client_close_sends_code_and_reason_and_waits_for_the_server() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        // A message the client must read past, then the answer.
        peer.write_frame(OpCode::Text, b"in flight").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        peer.write_close(1000, "ok").await;
        // The server closes TCP first (RFC 6455 §7.1.1); the client then
        // closes its side.
        peer.shutdown().await;
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let mut ws = connect(&server.url("/close")).await;
    let start = Instant::now();
    within("close", ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    // It waited for the server's answer.
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "{:?}",
        start.elapsed()
    );
    let (close, after) = server.finish().await;
    assert_eq!(close.close(), (1000, "bye".to_owned()));
    assert!(after.is_none(), "nothing after the close frame: {after:?}");
    assert!(ws.closed());
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
    // Twice is fine; the socket is over.
    within("close", ws.close(CloseCode::NORMAL, "again"))
        .await
        .unwrap();
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
    let err = within("send", ws.send_str("x")).await.unwrap_err();
    assert!(err.is_ws_closed(), "{err:?}");
}

#[tokio::test]
async fn close_gives_up_after_the_close_timeout() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        // Never answers; the client drops the connection.
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/deaf").as_str())
            .close_timeout(Duration::from_millis(300))
            .send(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let err = ws.exception().expect("the timeout is kept");
    assert_timeout(&err, TimeoutPhase::WsClose);
    assert!(ws.closed());
    let (close, after) = server.finish().await;
    assert_eq!(close.close().0, 1000);
    assert!(after.is_none(), "{after:?}");
    // Closing again does not wait again.
    let start = Instant::now();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_millis(200));
}

/// The server answers the close frame but leaves TCP open: the close
/// handshake completed, so the code is the server's and there is no
/// failure, even though the client stops waiting for the TCP close at the
/// close timeout.
#[tokio::test]
async fn close_answered_but_tcp_left_open_is_still_a_clean_close() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        peer.write_close(1000, "").await;
        // Lingers until the client drops the connection.
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/linger").as_str())
            .close_timeout(Duration::from_millis(300))
            .send(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let (close, after) = server.finish().await;
    assert_eq!(close.close().0, 1000);
    assert!(
        after.is_none(),
        "the client closed the connection: {after:?}"
    );
    assert!(ws.closed());
    assert_eq!(
        (ws.close_code(), ws.exception().map(|e| e.to_string())),
        (Some(CloseCode::NORMAL), None)
    );
}

#[tokio::test]
async fn invalid_close_codes_and_reasons_are_builder_errors() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/codes")).await;
    for code in [1005u16, 1006, 1015, 999, 5000] {
        let err = within("close", ws.close(CloseCode(code), ""))
            .await
            .unwrap_err();
        assert!(err.is_builder(), "{code}: {err:?}");
    }
    let long = "r".repeat(124);
    let err = within("close", ws.close(CloseCode::NORMAL, &long))
        .await
        .unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    // Nothing was sent: the socket still works.
    assert!(!ws.closed());
    within("send", ws.send_str("still open")).await.unwrap();
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        "still open"
    );
    within("close", ws.close(CloseCode(4000), "app"))
        .await
        .unwrap();
    let (_, frames) = server.finish().await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[1].close(), (4000, "app".to_owned()));
}

#[tokio::test]
async fn dropping_an_open_socket_sends_going_away_and_closes_tcp() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let ws = connect(&server.url("/drop")).await;
    drop(ws);
    let (close, after) = server.finish().await;
    assert_eq!(close.close().0, 1001);
    assert!(after.is_none(), "EOF after the close frame: {after:?}");
}

#[tokio::test]
async fn dropping_both_split_halves_sends_going_away() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let (reader, writer) = connect(&server.url("/drop-split")).await.split();
    drop(writer);
    // One half alone keeps the socket open.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!reader.closed());
    drop(reader);
    let (close, after) = server.finish().await;
    assert_eq!(close.close().0, 1001);
    assert!(after.is_none(), "{after:?}");
}

#[tokio::test]
async fn send_close_message_then_drop_sends_one_close_frame() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        let after = peer.next_frame().await;
        (close, after)
    })
    .await;
    let mut ws = connect(&server.url("/send-close")).await;
    let custom = Message::Close(Some(CloseFrame::new(CloseCode(4001), "custom")));
    within("send", ws.send(custom)).await.unwrap();
    assert!(ws.closed());
    let err = within("send", ws.send_str("after")).await.unwrap_err();
    assert!(err.is_ws_closed(), "{err:?}");
    drop(ws);
    let (close, after) = server.finish().await;
    assert_eq!(close.close(), (4001, "custom".to_owned()));
    assert!(after.is_none(), "no second close frame: {after:?}");
}

#[tokio::test]
async fn control_frames_over_125_bytes_are_refused() {
    let server = echo_server().await;
    let mut ws = connect(&server.url("/control")).await;
    let err = within("ping", ws.ping([0u8; 126])).await.unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    let err = within("pong", ws.pong([0u8; 126])).await.unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    within("ping", ws.ping([0u8; 125])).await.unwrap();
    within("send", ws.send_str("ok")).await.unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "ok");
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    let (_, frames) = server.finish().await;
    let kinds: Vec<OpCode> = frames.iter().map(|f| f.opcode).collect();
    assert_eq!(kinds, [OpCode::Ping, OpCode::Text, OpCode::Close]);
}

// ---------------------------------------------------------------------
// 7. Failures

/// Connects with `tweak`, lets the server write `bytes`, and returns the
/// socket, the error of the first receive, and the frames the server got
/// afterwards (until EOF or 300 ms of silence).
async fn failing(
    bytes: Vec<u8>,
    tweak: fn(super::WsConnectBuilder) -> super::WsConnectBuilder,
) -> (ClientWebSocket, Error, Vec<Frame>) {
    let server = serve(move |hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_raw(&bytes).await;
        let mut frames = Vec::new();
        while let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(300), peer.next_frame()).await
        {
            frames.push(frame);
        }
        frames
    })
    .await;
    let mut ws = within(
        "ws_connect",
        tweak(session().ws_connect(server.url("/bad").as_str())).send(),
    )
    .await
    .unwrap();
    let err = within("receive", ws.receive()).await.unwrap_err();
    let frames = server.finish().await;
    (ws, err, frames)
}

/// After a failure: `None` from receive, the error kept, sends refused.
async fn assert_failed_for_good(ws: &mut ClientWebSocket, code: CloseCode) {
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
    let kept = ws.exception().expect("exception() keeps the failure");
    assert_ws_failure(&kept, code);
    assert!(ws.closed());
    assert_eq!(ws.close_code(), Some(code));
    let err = within("send", ws.send_str("x")).await.unwrap_err();
    assert!(err.is_ws_closed(), "{err:?}");
    // close() after a failure returns at once, without error.
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
}

fn no_tweak(b: super::WsConnectBuilder) -> super::WsConnectBuilder {
    b
}

#[tokio::test]
async fn invalid_utf8_text_fails_with_1007() {
    let (mut ws, err, frames) =
        failing(frame(OpCode::Text, &[b'o', b'k', 0xff, 0xfe]), no_tweak).await;
    assert_ws_failure(&err, CloseCode::INVALID_PAYLOAD);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].close().0, 1007);
    assert_failed_for_good(&mut ws, CloseCode::INVALID_PAYLOAD).await;
}

#[tokio::test]
async fn invalid_utf8_across_fragments_fails_with_1007() {
    // "é" split across two fragments is fine; a stray continuation byte
    // in the second fragment is not.
    let mut bytes = raw_frame(false, false, OpCode::Text, &[0xc3], None);
    bytes.extend(raw_frame(
        false,
        false,
        OpCode::Continuation,
        &[0xa9, 0x80],
        None,
    ));
    bytes.extend(raw_frame(true, false, OpCode::Continuation, b"end", None));
    let (mut ws, err, frames) = failing(bytes, no_tweak).await;
    assert_ws_failure(&err, CloseCode::INVALID_PAYLOAD);
    assert_eq!(frames[0].close().0, 1007);
    assert_failed_for_good(&mut ws, CloseCode::INVALID_PAYLOAD).await;
}

#[tokio::test]
async fn masked_server_frame_fails_with_1002() {
    let bytes = raw_frame(true, false, OpCode::Text, b"masked", Some([1, 2, 3, 4]));
    let (mut ws, err, frames) = failing(bytes, no_tweak).await;
    assert_ws_failure(&err, CloseCode::PROTOCOL);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].close().0, 1002);
    assert_failed_for_good(&mut ws, CloseCode::PROTOCOL).await;
}

#[tokio::test]
async fn reserved_opcode_fails_with_1002() {
    let (mut ws, err, frames) = failing(vec![0x83, 0x00], no_tweak).await;
    assert_ws_failure(&err, CloseCode::PROTOCOL);
    assert_eq!(frames[0].close().0, 1002);
    assert!(err.url().is_some_and(|u| u.scheme() == "ws"), "{err:?}");
    assert_failed_for_good(&mut ws, CloseCode::PROTOCOL).await;
}

#[tokio::test]
async fn server_close_with_a_forbidden_code_fails_with_1002() {
    let (mut ws, err, frames) =
        failing(frame(OpCode::Close, &close_payload(1005, "")), no_tweak).await;
    assert_ws_failure(&err, CloseCode::PROTOCOL);
    assert_eq!(frames[0].close().0, 1002);
    assert_failed_for_good(&mut ws, CloseCode::PROTOCOL).await;
}

#[tokio::test]
async fn message_over_max_msg_size_fails_with_1009() {
    let mut bytes = frame(OpCode::Binary, &[7; 1000]);
    bytes.extend(frame(OpCode::Binary, &[8; 1001]));
    let server = serve(move |hs| async move {
        let mut peer = hs.accept_ws().await;
        peer.write_raw(&bytes).await;
        peer.read_frame().await
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/big").as_str())
            .max_msg_size(1000)
            .send(),
    )
    .await
    .unwrap();
    // At the limit is fine.
    assert_eq!(
        within("receive", ws.receive_bytes()).await.unwrap().len(),
        1000
    );
    let err = within("receive", ws.receive()).await.unwrap_err();
    assert_ws_failure(&err, CloseCode::TOO_BIG);
    let close = server.finish().await;
    assert_eq!(close.close().0, 1009);
    assert_failed_for_good(&mut ws, CloseCode::TOO_BIG).await;
}

#[tokio::test]
async fn fragmented_message_over_max_msg_size_fails_with_1009() {
    let mut bytes = raw_frame(false, false, OpCode::Binary, &[1; 600], None);
    bytes.extend(raw_frame(
        true,
        false,
        OpCode::Continuation,
        &[2; 600],
        None,
    ));
    let (mut ws, err, frames) = failing(bytes, |b| b.max_msg_size(1000)).await;
    assert_ws_failure(&err, CloseCode::TOO_BIG);
    assert_eq!(frames[0].close().0, 1009);
    assert_failed_for_good(&mut ws, CloseCode::TOO_BIG).await;
}

#[tokio::test]
async fn connection_dropped_without_close_is_1006() {
    let server = serve(|hs| async move {
        let peer = hs.accept_ws().await;
        drop(peer);
    })
    .await;
    let mut ws = connect(&server.url("/gone")).await;
    server.finish().await;
    let err = within("receive", ws.receive()).await.unwrap_err();
    assert_ws_failure(&err, CloseCode::ABNORMAL);
    assert_failed_for_good(&mut ws, CloseCode::ABNORMAL).await;
}

#[tokio::test]
async fn connection_dropped_mid_frame_is_1006() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let whole = frame(OpCode::Text, b"cut short here");
        peer.write_raw(&whole[..6]).await;
        drop(peer);
    })
    .await;
    let mut ws = connect(&server.url("/cut")).await;
    server.finish().await;
    let err = within("receive", ws.receive()).await.unwrap_err();
    assert_ws_failure(&err, CloseCode::ABNORMAL);
    assert_failed_for_good(&mut ws, CloseCode::ABNORMAL).await;
}

#[tokio::test]
async fn typed_receives_check_the_message_kind() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let mut bytes = frame(OpCode::Binary, b"bin");
        bytes.extend(frame(OpCode::Text, b"text"));
        bytes.extend(frame(OpCode::Text, b"{not json"));
        bytes.extend(frame(OpCode::Text, b"after"));
        bytes.extend(frame(OpCode::Close, &close_payload(1000, "")));
        peer.write_raw(&bytes).await;
        peer.read_frame().await
    })
    .await;
    let mut ws = connect(&server.url("/typed")).await;
    let err = within("receive", ws.receive_str()).await.unwrap_err();
    assert!(err.is_ws_unexpected_message(), "{err:?}");
    let err = within("receive", ws.receive_bytes()).await.unwrap_err();
    assert!(err.is_ws_unexpected_message(), "{err:?}");
    #[cfg(feature = "json")]
    {
        let err = within("receive", ws.receive_json::<serde_json::Value>())
            .await
            .unwrap_err();
        assert!(err.is_decode(), "{err:?}");
    }
    #[cfg(not(feature = "json"))]
    within("receive", ws.receive_str()).await.unwrap();
    // The socket is still open after those.
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "after");
    let err = within("receive", ws.receive_str()).await.unwrap_err();
    assert!(err.is_ws_closed(), "the close frame: {err:?}");
    let err = within("receive", ws.receive_str()).await.unwrap_err();
    assert!(err.is_ws_closed(), "after the close frame: {err:?}");
    assert_eq!(server.finish().await.close().0, 1000);
}

// ---------------------------------------------------------------------
// 8. Timeouts

#[tokio::test]
async fn receive_timeout_leaves_the_socket_open() {
    let (timed_out_tx, timed_out_rx) = oneshot::channel::<()>();
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        within("client timeout", timed_out_rx).await.unwrap();
        peer.write_frame(OpCode::Text, b"later").await;
        peer.echo().await
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/slow").as_str())
            .receive_timeout(Duration::from_millis(200))
            .send(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let err = within("receive", ws.receive()).await.unwrap_err();
    let elapsed = start.elapsed();
    assert_timeout(&err, TimeoutPhase::WsReceive);
    assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(!ws.closed());
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    timed_out_tx.send(()).unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "later");
    within("send", ws.send_str("echo")).await.unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "echo");
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    server.finish().await;
}

/// A receive that times out in the middle of a frame loses nothing: the
/// next receive gets the whole message.
#[tokio::test]
async fn partial_frame_survives_a_receive_timeout() {
    let (timed_out_tx, timed_out_rx) = oneshot::channel::<()>();
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let mut bytes = frame(OpCode::Binary, &pattern(300));
        bytes.extend(frame(OpCode::Binary, &pattern(1000)));
        // The first message whole, the second cut inside its payload.
        let cut = bytes.len() - 500;
        peer.write_raw(&bytes[..cut]).await;
        within("client timeout", timed_out_rx).await.unwrap();
        peer.write_raw(&bytes[cut..]).await;
        peer.echo().await
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/partial").as_str())
            .receive_timeout(Duration::from_millis(150))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        within("receive", ws.receive_bytes()).await.unwrap().len(),
        300
    );
    let err = within("receive", ws.receive()).await.unwrap_err();
    assert_timeout(&err, TimeoutPhase::WsReceive);
    timed_out_tx.send(()).unwrap();
    let whole = within("receive", ws.receive_bytes()).await.unwrap();
    assert!(whole == pattern(1000), "the message was corrupted");
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    server.finish().await;
}

#[tokio::test]
async fn heartbeat_without_pong_fails_the_socket() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let ping = peer.read_frame().await;
        // Never answers; the client gives up and drops the connection.
        let after = peer.next_frame().await;
        (ping, after)
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/hb").as_str())
            .heartbeat(Duration::from_millis(100))
            .send(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let err = within("receive", ws.receive()).await.unwrap_err();
    let elapsed = start.elapsed();
    assert_timeout(&err, TimeoutPhase::WsPong);
    assert!(elapsed >= Duration::from_millis(140), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let (ping, after) = server.finish().await;
    assert_eq!(ping.opcode, OpCode::Ping);
    assert!(after.is_none(), "{after:?}");
    assert!(ws.closed());
    assert_timeout(&ws.exception().unwrap(), TimeoutPhase::WsPong);
    assert_eq!(ws.close_code(), Some(CloseCode::ABNORMAL));
    assert_eq!(within("receive", ws.receive()).await.unwrap(), None);
}

#[tokio::test]
async fn heartbeat_with_pongs_keeps_the_socket_open() {
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let mut pings = 0;
        loop {
            let frame = peer.read_frame().await;
            match frame.opcode {
                OpCode::Ping => {
                    pings += 1;
                    peer.write_frame(OpCode::Pong, &frame.payload).await;
                }
                OpCode::Text => peer.write_frame(OpCode::Text, &frame.payload).await,
                OpCode::Close => {
                    peer.write_frame(OpCode::Close, &frame.payload[..2]).await;
                    return pings;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    let mut ws = within(
        "ws_connect",
        session()
            .ws_connect(server.url("/hb").as_str())
            .heartbeat(Duration::from_millis(100))
            .send(),
    )
    .await
    .unwrap();
    // Several intervals with nothing but pings and pongs.
    let quiet = tokio::time::timeout(Duration::from_millis(550), ws.receive()).await;
    assert!(quiet.is_err(), "receive returned {quiet:?}");
    assert!(!ws.closed());
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    within("send", ws.send_str("alive")).await.unwrap();
    assert_eq!(within("receive", ws.receive_str()).await.unwrap(), "alive");
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    let pings = server.finish().await;
    assert!(pings >= 2, "{pings} pings");
}

// ---------------------------------------------------------------------
// 9. Stream and Sink

#[tokio::test]
async fn sink_sends_and_stream_receives_until_the_close() {
    use futures_core::Stream;
    use futures_sink::Sink;

    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let a = peer.read_frame().await;
        let b = peer.read_frame().await;
        peer.write_frame(a.opcode, &a.payload).await;
        peer.write_frame(b.opcode, &b.payload).await;
        peer.write_close(1000, "done").await;
        peer.read_frame().await
    })
    .await;
    let mut ws = connect(&server.url("/sink")).await;
    for message in [
        Message::Text("one".into()),
        Message::Binary(Bytes::from_static(b"two")),
    ] {
        within(
            "poll_ready",
            poll_fn(|cx| <ClientWebSocket as Sink<Message>>::poll_ready(Pin::new(&mut ws), cx)),
        )
        .await
        .unwrap();
        <ClientWebSocket as Sink<Message>>::start_send(Pin::new(&mut ws), message).unwrap();
    }
    within(
        "poll_flush",
        poll_fn(|cx| <ClientWebSocket as Sink<Message>>::poll_flush(Pin::new(&mut ws), cx)),
    )
    .await
    .unwrap();

    let mut received = Vec::new();
    for _ in 0..5 {
        let next = within(
            "poll_next",
            poll_fn(|cx| Stream::poll_next(Pin::new(&mut ws), cx)),
        )
        .await;
        match next {
            Some(item) => received.push(item.unwrap()),
            None => break,
        }
    }
    assert_eq!(
        received,
        [
            Message::Text("one".into()),
            Message::Binary(Bytes::from_static(b"two")),
            Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "done"))),
        ]
    );
    // Ended for good.
    let again = within(
        "poll_next",
        poll_fn(|cx| Stream::poll_next(Pin::new(&mut ws), cx)),
    )
    .await;
    assert!(again.is_none(), "{again:?}");
    assert_eq!(server.finish().await.close().0, 1000);
}

#[tokio::test]
async fn sink_close_sends_a_normal_close_frame() {
    use futures_core::Stream;
    use futures_sink::Sink;

    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let close = peer.read_frame().await;
        peer.write_close(1000, "").await;
        close
    })
    .await;
    let mut ws = connect(&server.url("/sink-close")).await;
    within(
        "poll_close",
        poll_fn(|cx| <ClientWebSocket as Sink<Message>>::poll_close(Pin::new(&mut ws), cx)),
    )
    .await
    .unwrap();
    assert!(ws.closed());
    let close = server.finish().await;
    assert_eq!(close.close(), (1000, String::new()));
    let next = within(
        "poll_next",
        poll_fn(|cx| Stream::poll_next(Pin::new(&mut ws), cx)),
    )
    .await;
    assert!(
        matches!(next, Some(Ok(Message::Close(Some(ref f)))) if f.code == CloseCode::NORMAL),
        "{next:?}"
    );
    let end = within(
        "poll_next",
        poll_fn(|cx| Stream::poll_next(Pin::new(&mut ws), cx)),
    )
    .await;
    assert!(end.is_none(), "{end:?}");
    // The sink refuses more.
    let err = <ClientWebSocket as Sink<Message>>::start_send(
        Pin::new(&mut ws),
        Message::Text("late".into()),
    )
    .unwrap_err();
    assert!(err.is_ws_closed(), "{err:?}");
}

// ---------------------------------------------------------------------
// 10. split()

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_halves_work_from_two_tasks() {
    const MESSAGES: usize = 100;
    let server = serve(|hs| async move {
        let mut peer = hs.accept_ws().await;
        let mut texts = 0;
        let mut pongs = Vec::new();
        loop {
            let frame = peer.read_frame().await;
            match frame.opcode {
                OpCode::Text => {
                    assert_eq!(frame.text(), format!("msg {texts}"));
                    if texts % 10 == 0 {
                        peer.write_frame(OpCode::Ping, format!("p{texts}").as_bytes())
                            .await;
                    }
                    peer.write_frame(OpCode::Text, &frame.payload).await;
                    texts += 1;
                }
                OpCode::Pong => pongs.push(String::from_utf8(frame.payload).unwrap()),
                OpCode::Close => {
                    assert_eq!(frame.close(), (1000, "done".to_owned()));
                    peer.write_close(1000, "").await;
                    return (texts, pongs);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    let ws = connect(&server.url("/split")).await;
    let (mut reader, mut writer) = ws.split();
    assert!(reader.is_pair_of(&writer));
    let (all_read_tx, all_read_rx) = oneshot::channel::<()>();

    let reading = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let text = within("reader", reader.receive_str()).await.unwrap();
            assert_eq!(text, format!("msg {i}"));
        }
        all_read_tx.send(()).unwrap();
        let close = within("reader", reader.receive()).await.unwrap();
        let end = within("reader", reader.receive()).await.unwrap();
        (close, end, reader)
    });
    let writing = tokio::spawn(async move {
        for i in 0..MESSAGES {
            within("writer", writer.send_str(&format!("msg {i}")))
                .await
                .unwrap();
        }
        within("all echoes read", all_read_rx).await.unwrap();
        within("writer close", writer.close(CloseCode::NORMAL, "done"))
            .await
            .unwrap();
        writer
    });
    let writer = within("writer task", writing).await.unwrap();
    let (close, end, reader) = within("reader task", reading).await.unwrap();
    assert_eq!(
        close,
        Some(Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, ""))))
    );
    assert_eq!(end, None);
    assert!(reader.closed() && writer.closed());
    assert!(reader.exception().is_none(), "{:?}", reader.exception());
    assert_eq!(reader.close_code(), Some(CloseCode::NORMAL));
    let (texts, pongs) = server.finish().await;
    assert_eq!(texts, MESSAGES);
    let expected: Vec<String> = (0..MESSAGES).step_by(10).map(|i| format!("p{i}")).collect();
    assert_eq!(pongs, expected);
}

// ---------------------------------------------------------------------
// 12. on_websocket

#[tokio::test]
async fn on_websocket_hook_sees_the_socket_and_may_change_it() {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let server = serve(|hs| async move {
        let request = hs.request.clone();
        let mut peer = hs.accept_with("Sec-WebSocket-Protocol: v2\r\n", b"").await;
        within("test done", done_rx).await.unwrap();
        peer.write_close(1000, "").await;
        (peer.read_frame().await, request)
    })
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let record_status = Arc::clone(&statuses);
    let session = ClientSession::builder()
        .on_request(|parts| {
            parts
                .headers
                .insert("x-hooked", crate::http::HeaderValue::from_static("1"));
        })
        .on_response(move |response| {
            record_status
                .lock()
                .unwrap()
                .push(response.status().as_u16());
        })
        .on_websocket(move |ws| {
            record
                .lock()
                .unwrap()
                .push((ws.protocol().map(str::to_owned), ws.url().path().to_owned()));
            ws.set_receive_timeout(Some(Duration::from_millis(100)));
        })
        .build()
        .unwrap();
    let mut ws = within(
        "ws_connect",
        session
            .ws_connect(server.url("/hooked").as_str())
            .protocols(["v1", "v2"])
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(Some("v2".to_owned()), "/hooked".to_owned())]
    );
    // The hook's receive timeout is in force.
    let err = within("receive", ws.receive()).await.unwrap_err();
    assert_timeout(&err, TimeoutPhase::WsReceive);
    done_tx.send(()).unwrap();
    ws.set_receive_timeout(None);
    assert!(matches!(
        within("receive", ws.receive()).await.unwrap(),
        Some(Message::Close(_))
    ));
    let (close, request) = server.finish().await;
    assert_eq!(close.close().0, 1000);
    // The request and response hooks ran on the handshake.
    assert_eq!(request.header("x-hooked"), Some("1"));
    assert_eq!(*statuses.lock().unwrap(), [101]);
}

// ---------------------------------------------------------------------
// 13. Through an HTTP proxy

#[tokio::test]
async fn ws_through_a_proxy_uses_a_connect_tunnel() {
    let server = echo_server().await;
    let target_port = server.port();
    let proxy = serve_listener(move |listener| async move {
        let (mut client, _) = within("proxy accept", listener.accept()).await.unwrap();
        let (head, rest) = read_head(&mut client).await;
        assert!(rest.is_empty(), "bytes before the tunnel is up: {rest:?}");
        let mut upstream = within(
            "proxy connect",
            TcpStream::connect(("127.0.0.1", target_port)),
        )
        .await
        .unwrap();
        within(
            "proxy answer",
            client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        )
        .await
        .unwrap();
        let _ = within(
            "proxy splice",
            tokio::io::copy_bidirectional(&mut client, &mut upstream),
        )
        .await;
        head
    })
    .await;
    let connector = ProxyConnector::builder(&format!("http://{}", proxy.addr))
        .build()
        .unwrap();
    let session = ClientSession::builder()
        .connector(connector)
        .build()
        .unwrap();
    let url = server.url("/path?x=1");
    let mut ws = within("ws_connect", session.ws_connect(url.as_str()).send())
        .await
        .unwrap();
    assert_eq!(ws.url().as_str(), url);
    within("send", ws.send_str("tunnelled")).await.unwrap();
    assert_eq!(
        within("receive", ws.receive_str()).await.unwrap(),
        "tunnelled"
    );
    within("close", ws.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    assert!(ws.exception().is_none(), "{:?}", ws.exception());
    drop(ws);
    let (request, frames) = server.finish().await;
    let proxy_head = proxy.finish().await;
    assert_eq!(
        proxy_head.lines().next().unwrap(),
        format!("CONNECT 127.0.0.1:{target_port} HTTP/1.1")
    );
    // Inside the tunnel: origin-form.
    assert_eq!(request.request_line(), "GET /path?x=1 HTTP/1.1");
    assert_eq!(request.header("upgrade"), Some("websocket"));
    assert_eq!(frames.len(), 2);
}
