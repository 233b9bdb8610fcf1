//! The `websocket` conformance suite: courier's WebSocket client against
//! real servers, over every way of reaching them.
//!
//! Every case is a small async scenario (connect, exchange, close) run on
//! every transport it applies to, each twice: without compression and with
//! permessage-deflate offered (`.compress(true)`). The transports:
//!
//! | transport | peer | how |
//! |---|---|---|
//! | `echo-ws` | `ws_echo.py` (Python websockets) | `ws://127.0.0.1:PORT` |
//! | `echo-wss` | same | `wss://`, trusting the peers' CA |
//! | `echo-unix` | same | its Unix socket (`UnixConnector`), `ws://localhost/...` |
//! | `proxy-ws` | same | `ws://` through tinyproxy (`ProxyConnector`: a `CONNECT` tunnel) |
//! | `proxy-wss` | same | `wss://` through tinyproxy |
//! | `aio-ws` | `aiohttp_peer.py`, `/ws` | `ws://` |
//! | `aio-wss` | same | `wss://` |
//!
//! The cases ([`CASES`]): text, binary and empty messages, messages of
//! 125/126/65535/65536 bytes (the frame length encodings) and 16 MiB
//! (once per transport; compressed only on the direct `ws://` ones, as it
//! takes seconds in a debug build), fragmented sends, bursts, every
//! permessage-deflate parameter, `max_msg_size` (1009), client and server
//! pings (autoping on and off, control payload limits), the heartbeat,
//! `split()` halves, the handshake as the server saw it (`/headers`:
//! subprotocol, Origin, a session cookie, query, auth, the extension
//! offer), `http://` URLs, server-initiated closes with their codes (and
//! the invalid 1005 that aiohttp puts on the wire), client-initiated
//! closes, and refused handshakes. Every connection checks the
//! negotiation: [`ClientWebSocket::compress`] is `Some` exactly when the
//! server's 101 agreed to permessage-deflate, which it must when offered
//! (both peers support it) and cannot when not. Every case that is not
//! about a failure ends with the close handshake and no
//! [`exception`](ClientWebSocket::exception).
//!
//! There is no vector file. A table of case × transport prints the
//! outcomes, and any failure fails the suite with its reason, except those
//! recorded in `xtask/expected/websocket.json` ([`EXPECTED`]): an object
//! whose keys are `case`, `case@transport` or `case@transport/mode` (the
//! most specific applies) and whose values are `{"bug": "reason"}` (a
//! client bug not fixed yet: the cell must still fail, and once it passes
//! the suite fails until the entry is removed) or `{"skip": "reason"}`
//! (not run). Reasons are written by hand; there is nothing to `--bless`.
//!
//! The peers: the `COURIER_PEER_*` variables given by `cargo xtask test`,
//! else those of the environment, else the suite starts its own set and
//! stops it afterwards (as [`crate::differential`] does).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use courier::ws::{
    ClientWebSocket, CloseCode, CloseFrame, DataKind, DeflateConfig, Message, WsConnectBuilder,
};
use courier::{BasicAuth, ClientSession, TcpConnector, UnixConnector};
use serde::Deserialize;
use serde_json::Value;

use crate::peers;
use crate::util::Result;

/// The expected-results file, relative to the workspace root (optional:
/// no file, no known bugs or skips).
const EXPECTED: &str = "xtask/expected/websocket.json";

/// The peer variables the suite needs.
const REQUIRED_VARS: &[&str] = &[
    "COURIER_PEERS_CA",
    "COURIER_PEER_WS_ECHO_WS",
    "COURIER_PEER_WS_ECHO_WSS",
    "COURIER_PEER_WS_ECHO_UNIX",
    "COURIER_PEER_AIOHTTP_HTTP",
    "COURIER_PEER_AIOHTTP_HTTPS",
    "COURIER_PEER_TINYPROXY_HTTP",
];

/// The longest one case may take (the 16 MiB echo is the slowest, a few
/// seconds in a debug build) before it is reported as hung.
const CASE_DEADLINE: Duration = Duration::from_secs(60);

/// Timeouts of every socket: the handshake, one receive, the close
/// handshake. Far above what a case needs on loopback, far below
/// [`CASE_DEADLINE`].
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(20);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client-initiated close may take on loopback before it
/// counts as not prompt.
const PROMPT_CLOSE: Duration = Duration::from_secs(2);

/// The largest message, and the limit raised for it.
const HUGE: usize = 16 << 20;
const HUGE_LIMIT: usize = 32 << 20;

/// The session cookie sent with every handshake (checked by `headers`).
const COOKIE: (&str, &str) = ("session", "courier-ws-interop");

/// The Origin sent by `headers`.
const ORIGIN: &str = "https://courier.example";

/// Which server a transport reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// `ws_echo.py`: echo at any path, plus `/headers`, `/close/<code>`,
    /// `/ping`, `/send-then-close`.
    Echo,
    /// `aiohttp_peer.py`: echo at `/ws`, `/ws/close/<code>`, plain HTTP
    /// elsewhere.
    Aiohttp,
}

/// Compression offered or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Deflate,
}

const MODES: [Mode; 2] = [Mode::Plain, Mode::Deflate];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Deflate => "deflate",
        }
    }
}

/// One way to reach a peer: a session (connector) and the base URL.
struct Transport {
    name: &'static str,
    peer: Peer,
    /// `ws://host:port` or `wss://host:port`, without a path.
    base: String,
    session: ClientSession,
}

/// What a case runs with.
struct Ctx<'a> {
    t: &'a Transport,
    mode: Mode,
}

/// A case's scenario.
type CaseFn = for<'a> fn(&'a Ctx<'a>) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// One case: its name, where it applies, what it runs.
struct Case {
    name: &'static str,
    /// Whether it runs on this transport in this mode.
    applies: fn(&Transport, Mode) -> bool,
    run: CaseFn,
}

macro_rules! case {
    ($name:literal, $applies:ident, $f:ident) => {
        Case {
            name: $name,
            applies: $applies,
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}

fn everywhere(_: &Transport, _: Mode) -> bool {
    true
}

fn echo_peer(t: &Transport, _: Mode) -> bool {
    t.peer == Peer::Echo
}

fn aiohttp_peer(t: &Transport, _: Mode) -> bool {
    t.peer == Peer::Aiohttp
}

/// The slow cases: once per transport, without compression.
fn plain(_: &Transport, mode: Mode) -> bool {
    mode == Mode::Plain
}

fn deflate(_: &Transport, mode: Mode) -> bool {
    mode == Mode::Deflate
}

/// 16 MiB compressed costs seconds in a debug build: only on the direct
/// `ws://` transports of each peer (compression is the same code whatever
/// carries the bytes).
fn direct_deflate(t: &Transport, mode: Mode) -> bool {
    mode == Mode::Deflate && matches!(t.name, "echo-ws" | "aio-ws")
}

/// Every case, in the order of the table.
const CASES: &[Case] = &[
    case!("negotiation", everywhere, negotiation),
    case!("http-scheme-url", everywhere, http_scheme_url),
    case!("text", everywhere, text),
    case!("binary", everywhere, binary),
    case!("empty-text", everywhere, empty_text),
    case!("empty-binary", everywhere, empty_binary),
    case!("size-125", everywhere, size_125),
    case!("size-126", everywhere, size_126),
    case!("size-65535", everywhere, size_65535),
    case!("size-65536", everywhere, size_65536),
    case!("size-16MiB", plain, size_16mib),
    case!("size-16MiB-deflate", direct_deflate, size_16mib_deflate),
    case!("burst", everywhere, burst),
    case!("fragmented-text", everywhere, fragmented_text),
    case!("fragmented-binary", everywhere, fragmented_binary),
    case!("deflate-params", deflate, deflate_params),
    case!("too-big", everywhere, too_big),
    case!("client-ping", everywhere, client_ping),
    case!("server-ping", echo_peer, server_ping),
    case!("server-ping-visible", echo_peer, server_ping_visible),
    case!("heartbeat", plain, heartbeat),
    case!("split", everywhere, split),
    case!("subprotocol", everywhere, subprotocol),
    case!("headers", echo_peer, headers),
    case!("send-then-close", echo_peer, send_then_close),
    case!("server-close-1001", everywhere, server_close_1001),
    case!("server-close-4000", echo_peer, server_close_4000),
    case!("server-close-4001", aiohttp_peer, server_close_4001),
    case!("server-close-1005", aiohttp_peer, server_close_invalid),
    case!("client-close", everywhere, client_close),
    case!("client-close-unread", everywhere, client_close_unread),
    case!("handshake-refused", aiohttp_peer, handshake_refused),
];

/// The outcome of one case on one transport and mode.
enum Outcome {
    Pass,
    Fail(String),
    NotApplicable,
    /// Skipped by the expected file (the key says why).
    Skipped,
    /// Failed, as the expected file says it does (a known bug).
    KnownBug(String),
    /// Passed, though the expected file says it fails (the bug is fixed:
    /// the entry must go).
    BugFixed,
}

/// An entry of the expected file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Known {
    /// A client bug, not fixed yet: the case fails.
    Bug(String),
    /// Not run, for the reason given.
    Skip(String),
}

/// The expected file, its keys checked against the cases, transports and
/// modes.
fn read_expected(transports: &[Transport]) -> Result<BTreeMap<String, Known>> {
    let path = crate::util::workspace_root().join(EXPECTED);
    let expected: BTreeMap<String, Known> = match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    for key in expected.keys() {
        let (case, rest) = key.split_once('@').unwrap_or((key, ""));
        let (transport, mode) = rest.split_once('/').unwrap_or((rest, ""));
        let known = CASES.iter().any(|c| c.name == case)
            && (transport.is_empty() || transports.iter().any(|t| t.name == transport))
            && (mode.is_empty() || MODES.iter().any(|m| m.name() == mode))
            && (mode.is_empty() || !transport.is_empty());
        if !known {
            return Err(format!(
                "{EXPECTED}: `{key}` is not `case`, `case@transport` or `case@transport/mode` \
                 of this suite"
            ));
        }
    }
    Ok(expected)
}

/// The entry of the expected file for a cell, and its key.
fn lookup<'a>(
    expected: &'a BTreeMap<String, Known>,
    case: &str,
    transport: &str,
    mode: Mode,
) -> Option<(&'a str, &'a Known)> {
    [
        format!("{case}@{transport}/{}", mode.name()),
        format!("{case}@{transport}"),
        case.to_owned(),
    ]
    .into_iter()
    .find_map(|key| expected.get_key_value(&key))
    .map(|(k, v)| (k.as_str(), v))
}

/// Runs the suite; `peers_env` is the environment of running peers, if the
/// caller has them.
pub fn run(peers_env: Option<&[(String, String)]>) -> Result<()> {
    let (env, own_peers) = peers::env_or_start(peers_env, REQUIRED_VARS, "websocket")?;
    let result = run_with_peers(&env);
    if let Some(peers) = own_peers {
        peers.stop()?;
    }
    result
}

fn run_with_peers(env: &BTreeMap<String, String>) -> Result<()> {
    let started = Instant::now();
    let transports = transports(env)?;
    let expected = read_expected(&transports)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;

    // results[case][transport * 2 + mode], and each case's time.
    let mut results: Vec<Vec<Outcome>> = Vec::with_capacity(CASES.len());
    let mut row_time = Vec::with_capacity(CASES.len());
    let mut column_time = vec![Duration::ZERO; transports.len() * MODES.len()];
    for case in CASES {
        let row_timer = Instant::now();
        let mut row = Vec::with_capacity(column_time.len());
        for (ti, t) in transports.iter().enumerate() {
            for (mi, &mode) in MODES.iter().enumerate() {
                if !(case.applies)(t, mode) {
                    row.push(Outcome::NotApplicable);
                    continue;
                }
                let known = lookup(&expected, case.name, t.name, mode);
                if let Some((_, Known::Skip(_))) = known {
                    row.push(Outcome::Skipped);
                    continue;
                }
                let timer = Instant::now();
                let ctx = Ctx { t, mode };
                let outcome = runtime.block_on(async {
                    match tokio::time::timeout(CASE_DEADLINE, (case.run)(&ctx)).await {
                        Ok(Ok(())) => Outcome::Pass,
                        Ok(Err(e)) => Outcome::Fail(e),
                        Err(_) => Outcome::Fail(format!("hung: no result after {CASE_DEADLINE:?}")),
                    }
                });
                column_time[ti * MODES.len() + mi] += timer.elapsed();
                let outcome = match (outcome, known) {
                    (Outcome::Fail(e), Some((_, Known::Bug(_)))) => Outcome::KnownBug(e),
                    (Outcome::Pass, Some((_, Known::Bug(_)))) => Outcome::BugFixed,
                    (outcome, _) => outcome,
                };
                row.push(outcome);
            }
        }
        results.push(row);
        row_time.push(row_timer.elapsed());
    }

    let failures = print_table(&transports, &results, &row_time, &expected);
    let slowest = column_time
        .iter()
        .enumerate()
        .max_by_key(|(_, d)| **d)
        .map(|(i, d)| {
            format!(
                "{}/{} {}",
                transports[i / MODES.len()].name,
                MODES[i % MODES.len()].name(),
                crate::util::secs(*d)
            )
        })
        .unwrap_or_default();
    println!(
        "  ({} in all; slowest column {slowest})",
        crate::util::secs(started.elapsed())
    );
    if failures.is_empty() {
        Ok(())
    } else {
        let mut msg = format!("{} WebSocket interop case(s) failed:", failures.len());
        for f in &failures {
            let _ = write!(msg, "\n  {f}");
        }
        Err(msg)
    }
}

/// The transports, from the peers' variables.
fn transports(env: &BTreeMap<String, String>) -> Result<Vec<Transport>> {
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .ok_or_else(|| format!("{name} is not set: the peers are not all running"))
    };
    let ca_path = var("COURIER_PEERS_CA")?;
    let ca = fs::read(&ca_path).map_err(|e| format!("cannot read {ca_path}: {e}"))?;
    let echo_ws = var("COURIER_PEER_WS_ECHO_WS")?;
    let echo_wss = var("COURIER_PEER_WS_ECHO_WSS")?;
    let echo_unix = var("COURIER_PEER_WS_ECHO_UNIX")?;
    let aio_ws = var("COURIER_PEER_AIOHTTP_HTTP")?;
    let aio_wss = var("COURIER_PEER_AIOHTTP_HTTPS")?;
    let proxy = format!("http://{}", var("COURIER_PEER_TINYPROXY_HTTP")?);

    let tcp = || TcpConnector::builder().add_root_certificates_pem(&ca);
    // Every session sends the cookie to the host it talks to (cookies are
    // for the `http` form of a WebSocket URL, and not per port).
    let with_cookie = |builder: courier::ClientSessionBuilder, host: &str| {
        builder
            .cookie(format!("http://{host}/"), COOKIE.0, COOKIE.1)
            .build()
            .map_err(|e| format!("cannot build a session: {e}"))
    };
    let direct = |host: &str| -> Result<ClientSession> {
        let connector = tcp().build().map_err(|e| e.to_string())?;
        with_cookie(ClientSession::builder().connector(connector), host)
    };
    let proxied = |host: &str| -> Result<ClientSession> {
        let connector = tcp().proxy(&proxy).build().map_err(|e| e.to_string())?;
        with_cookie(ClientSession::builder().connector(connector), host)
    };
    let unix = UnixConnector::new(echo_unix.as_str(), courier_pool::PoolConfig::default());
    Ok(vec![
        Transport {
            name: "echo-ws",
            peer: Peer::Echo,
            base: format!("ws://{echo_ws}"),
            session: direct(&echo_ws)?,
        },
        Transport {
            name: "echo-wss",
            peer: Peer::Echo,
            base: format!("wss://{echo_wss}"),
            session: direct(&echo_wss)?,
        },
        Transport {
            name: "echo-unix",
            peer: Peer::Echo,
            base: "ws://localhost".to_owned(),
            session: with_cookie(ClientSession::builder().connector(unix), "localhost")?,
        },
        Transport {
            name: "proxy-ws",
            peer: Peer::Echo,
            base: format!("ws://{echo_ws}"),
            session: proxied(&echo_ws)?,
        },
        Transport {
            name: "proxy-wss",
            peer: Peer::Echo,
            base: format!("wss://{echo_wss}"),
            session: proxied(&echo_wss)?,
        },
        Transport {
            name: "aio-ws",
            peer: Peer::Aiohttp,
            base: format!("ws://{aio_ws}"),
            session: direct(&aio_ws)?,
        },
        Transport {
            name: "aio-wss",
            peer: Peer::Aiohttp,
            base: format!("wss://{aio_wss}"),
            session: direct(&aio_wss)?,
        },
    ])
}

/// Prints the table; returns the failures, one line each.
fn print_table(
    transports: &[Transport],
    results: &[Vec<Outcome>],
    row_time: &[Duration],
    expected: &BTreeMap<String, Known>,
) -> Vec<String> {
    const CASE_W: usize = 21;
    const CELL_W: usize = 6;
    let col_w = CELL_W * MODES.len();
    let (mut pass, mut fail, mut na, mut skipped, mut bugs) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    // Known bugs by key: how many cells, and the first one's failure.
    let mut known: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    println!(
        "websocket interop: {} cases x {} transports x (plain | permessage-deflate offered)",
        CASES.len(),
        transports.len()
    );
    let mut line = format!("  {:<CASE_W$}", "case");
    for t in transports {
        let _ = write!(line, "{:<col_w$}", t.name);
    }
    let _ = write!(line, "{:>6}", "time");
    println!("{line}");
    let mut line = format!("  {:<CASE_W$}", "");
    for _ in transports {
        let _ = write!(line, "{:<CELL_W$}{:<CELL_W$}", "plain", "defl");
    }
    println!("{}", line.trim_end());
    for ((case, row), took) in CASES.iter().zip(results).zip(row_time) {
        let mut line = format!("  {:<CASE_W$}", case.name);
        for (i, outcome) in row.iter().enumerate() {
            let t = &transports[i / MODES.len()];
            let mode = MODES[i % MODES.len()];
            let cell = match outcome {
                Outcome::Pass => {
                    pass += 1;
                    "ok"
                }
                Outcome::Fail(reason) => {
                    fail += 1;
                    failures.push(format!(
                        "{} @ {}/{}: {reason}",
                        case.name,
                        t.name,
                        mode.name()
                    ));
                    "FAIL"
                }
                Outcome::NotApplicable => {
                    na += 1;
                    "-"
                }
                Outcome::Skipped => {
                    skipped += 1;
                    "skip"
                }
                Outcome::KnownBug(reason) => {
                    bugs += 1;
                    if let Some((key, _)) = lookup(expected, case.name, t.name, mode) {
                        let entry = known.entry(key).or_insert_with(|| {
                            (0, format!("{}/{}: {reason}", t.name, mode.name()))
                        });
                        entry.0 += 1;
                    }
                    "bug"
                }
                Outcome::BugFixed => {
                    fail += 1;
                    let key = lookup(expected, case.name, t.name, mode).map_or("?", |(k, _)| k);
                    failures.push(format!(
                        "{} @ {}/{}: passes, but {EXPECTED} records `{key}` as a bug: \
                         remove the entry if the bug is fixed",
                        case.name,
                        t.name,
                        mode.name()
                    ));
                    "ok!"
                }
            };
            let _ = write!(line, "{cell:<CELL_W$}");
        }
        let _ = write!(line, "{:>6}", crate::util::secs(*took));
        println!("{line}");
    }
    println!(
        "  {} runs: {pass} ok, {fail} FAIL, {bugs} known bug, {skipped} skipped \
         ({na} not applicable)",
        pass + fail + bugs
    );
    for (key, entry) in expected {
        match entry {
            Known::Bug(why) => {
                let (n, first) = known.get(key.as_str()).map_or((0, ""), |(n, f)| (*n, f));
                println!("    known bug `{key}` ({n} cells): {why}");
                if !first.is_empty() {
                    println!("      e.g. {first}");
                }
            }
            Known::Skip(why) => println!("    skipped `{key}`: {why}"),
        }
    }
    for f in &failures {
        println!("    FAIL {f}");
    }
    failures
}

// ---------------------------------------------------------------------------
// Helpers

impl Ctx<'_> {
    /// The URL of `path` on this transport's server, as given.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.t.base)
    }

    /// The echo endpoint.
    fn echo_url(&self) -> String {
        match self.t.peer {
            Peer::Echo => self.url("/"),
            Peer::Aiohttp => self.url("/ws"),
        }
    }

    /// The URL of a path that closes at once with `code`.
    fn close_url(&self, code: u16) -> String {
        match self.t.peer {
            Peer::Echo => self.url(&format!("/close/{code}")),
            Peer::Aiohttp => self.url(&format!("/ws/close/{code}")),
        }
    }

    /// A handshake to `url` with this mode's compression and the suite's
    /// timeouts.
    fn builder(&self, url: &str) -> WsConnectBuilder {
        self.t
            .session
            .ws_connect(url)
            .compress(self.mode == Mode::Deflate)
            .timeout(HANDSHAKE_TIMEOUT)
            .receive_timeout(RECEIVE_TIMEOUT)
            .close_timeout(CLOSE_TIMEOUT)
    }

    /// Opens `builder` and checks the compression negotiation.
    async fn open(&self, builder: WsConnectBuilder) -> Result<ClientWebSocket> {
        let ws = builder.await.map_err(|e| format!("ws_connect: {e}"))?;
        let agreed = ws
            .headers()
            .get_all("sec-websocket-extensions")
            .iter()
            .any(|v| {
                v.to_str()
                    .unwrap_or_default()
                    .contains("permessage-deflate")
            });
        match (self.mode, agreed, ws.compress()) {
            (Mode::Plain, false, None) | (Mode::Deflate, true, Some(_)) => Ok(ws),
            (Mode::Plain, true, _) => Err("the server agreed to permessage-deflate, which was not offered, and the handshake was accepted".into()),
            (Mode::Deflate, false, _) => Err("permessage-deflate offered, but the server's 101 did not agree to it (is the offer well-formed?)".into()),
            (_, true, None) => Err("the server agreed to permessage-deflate but compress() is None".into()),
            (_, false, Some(p)) => Err(format!("compress() is {p:?} but the server did not agree to permessage-deflate")),
        }
    }

    /// Opens the echo endpoint.
    async fn echo(&self) -> Result<ClientWebSocket> {
        self.open(self.builder(&self.echo_url())).await
    }
}

/// The next message, which must be there.
async fn recv(ws: &mut ClientWebSocket) -> Result<Message> {
    match ws.receive().await {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => Err("receive: the socket ended".into()),
        Err(e) => Err(format!("receive: {e}")),
    }
}

/// A message for a report: kind, length, a short prefix.
fn describe(msg: &Message) -> String {
    let short = |b: &[u8]| {
        let s = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
        if b.len() > 40 {
            format!("{s:?}...")
        } else {
            format!("{s:?}")
        }
    };
    match msg {
        Message::Text(t) => format!("text ({} bytes) {}", t.len(), short(t.as_bytes())),
        Message::Binary(b) => format!("binary ({} bytes) {}", b.len(), short(b)),
        Message::Ping(p) => format!("ping {}", short(p)),
        Message::Pong(p) => format!("pong {}", short(p)),
        Message::Close(None) => "close (no status)".into(),
        Message::Close(Some(f)) => format!("close {} {:?}", f.code, f.reason),
    }
}

/// Where two payloads differ, for a report.
fn mismatch(what: &str, want: &[u8], got: &[u8]) -> String {
    let at = want
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(want.len().min(got.len()));
    format!(
        "{what}: sent {} bytes, got {} bytes back, first difference at byte {at}",
        want.len(),
        got.len()
    )
}

async fn expect_text(ws: &mut ClientWebSocket, want: &str) -> Result<()> {
    match recv(ws).await? {
        Message::Text(t) if t.as_str() == want => Ok(()),
        Message::Text(t) => Err(mismatch("text echo", want.as_bytes(), t.as_bytes())),
        other => Err(format!("expected text, got {}", describe(&other))),
    }
}

async fn expect_binary(ws: &mut ClientWebSocket, want: &[u8]) -> Result<()> {
    match recv(ws).await? {
        Message::Binary(b) if b == want => Ok(()),
        Message::Binary(b) => Err(mismatch("binary echo", want, &b)),
        other => Err(format!("expected binary, got {}", describe(&other))),
    }
}

/// The end of every case: a normal close, completed without an exception.
async fn finish(mut ws: ClientWebSocket) -> Result<()> {
    ws.close(CloseCode::NORMAL, "")
        .await
        .map_err(|e| format!("close: {e}"))?;
    if let Some(e) = ws.exception() {
        return Err(format!("close: exception {e}"));
    }
    if !ws.closed() {
        return Err("close: closed() is false afterwards".into());
    }
    Ok(())
}

fn send_err(e: courier::Error) -> String {
    format!("send: {e}")
}

/// `n` pseudo-random bytes (xorshift: deterministic, incompressible).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `n` bytes of text: pseudo-random words of ASCII letters with a
/// multi-byte character now and then (compressible, like real text).
fn random_text(n: usize, seed: u64) -> String {
    const WORDS: &[&str] = &[
        "courier ",
        "socket ",
        "frame ",
        "deflate ",
        "héllo ",
        "wörld ",
        "€uro ",
        "😀 ",
        "mask ",
        "ping ",
        "pong ",
        "close ",
        "text ",
        "binary ",
        "α ",
        "fragment ",
    ];
    let mut out = String::with_capacity(n + 16);
    for b in random_bytes(n, seed) {
        let word = WORDS[usize::from(b) % WORDS.len()];
        if out.len() + word.len() > n {
            break;
        }
        out.push_str(word);
    }
    while out.len() < n {
        out.push('.');
    }
    out
}

/// The 16 MiB payloads, made once (a debug build takes a while).
fn huge_bytes() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| random_bytes(HUGE, 16))
}

fn huge_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| random_text(HUGE, 17))
}

// ---------------------------------------------------------------------------
// The cases

/// The handshake alone: no subprotocol offered, none chosen; the 101's
/// headers are kept; compression as offered (checked by `open`).
async fn negotiation(ctx: &Ctx<'_>) -> Result<()> {
    let ws = ctx.echo().await?;
    if let Some(p) = ws.protocol() {
        return Err(format!("no subprotocol offered, but protocol() is {p:?}"));
    }
    let upgrade = ws
        .headers()
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(format!("headers(): Upgrade is {upgrade:?}"));
    }
    if ws.closed() || ws.close_code().is_some() {
        return Err("a fresh socket reports itself closed".into());
    }
    finish(ws).await
}

async fn text(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    for msg in ["hello", "héllo wörld, 1 € – 😀", "{\"json\": [1, 2, 3]}"] {
        ws.send_str(msg).await.map_err(send_err)?;
        expect_text(&mut ws, msg).await?;
    }
    finish(ws).await
}

async fn binary(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    let all: Vec<u8> = (0..=255).collect();
    for msg in [&[0u8, 1, 2, 0xff][..], &all, b"\x00\xc3\x28 not utf-8"] {
        ws.send_bytes(msg).await.map_err(send_err)?;
        expect_binary(&mut ws, msg).await?;
    }
    finish(ws).await
}

async fn empty_text(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    ws.send_str("").await.map_err(send_err)?;
    expect_text(&mut ws, "").await?;
    // And the socket goes on.
    ws.send_str("after").await.map_err(send_err)?;
    expect_text(&mut ws, "after").await?;
    finish(ws).await
}

async fn empty_binary(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    ws.send_bytes(b"").await.map_err(send_err)?;
    expect_binary(&mut ws, b"").await?;
    ws.send_bytes(b"after").await.map_err(send_err)?;
    expect_binary(&mut ws, b"after").await?;
    finish(ws).await
}

/// A binary message of `n` random bytes and a text message of `n` bytes,
/// each echoed.
async fn sized(ctx: &Ctx<'_>, n: usize) -> Result<()> {
    let mut ws = ctx.echo().await?;
    let data = random_bytes(n, n as u64);
    ws.send_bytes(&data).await.map_err(send_err)?;
    expect_binary(&mut ws, &data).await?;
    let text = random_text(n, n as u64 + 1);
    ws.send_str(&text).await.map_err(send_err)?;
    expect_text(&mut ws, &text).await?;
    finish(ws).await
}

async fn size_125(ctx: &Ctx<'_>) -> Result<()> {
    sized(ctx, 125).await
}

async fn size_126(ctx: &Ctx<'_>) -> Result<()> {
    sized(ctx, 126).await
}

async fn size_65535(ctx: &Ctx<'_>) -> Result<()> {
    sized(ctx, 65535).await
}

async fn size_65536(ctx: &Ctx<'_>) -> Result<()> {
    sized(ctx, 65536).await
}

/// 16 MiB of random bytes (incompressible), then 16 MiB of text.
async fn size_16mib(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(ctx.builder(&ctx.echo_url()).max_msg_size(HUGE_LIMIT))
        .await?;
    let data = huge_bytes();
    ws.send_bytes(data).await.map_err(send_err)?;
    expect_binary(&mut ws, data).await?;
    let text = huge_text();
    ws.send_str(text).await.map_err(send_err)?;
    expect_text(&mut ws, text).await?;
    finish(ws).await
}

/// 16 MiB of text (compressible; multi-byte characters throughout),
/// compressed both ways.
async fn size_16mib_deflate(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(ctx.builder(&ctx.echo_url()).max_msg_size(HUGE_LIMIT))
        .await?;
    let text = huge_text();
    ws.send_str(text).await.map_err(send_err)?;
    expect_text(&mut ws, text).await?;
    finish(ws).await
}

/// Many messages sent back to back, then all read: order and boundaries
/// kept (and, with deflate, the shared compression context).
async fn burst(ctx: &Ctx<'_>) -> Result<()> {
    const N: usize = 100;
    let mut ws = ctx.echo().await?;
    let msgs: Vec<String> = (0..N)
        .map(|i| format!("message {i} {}", "x".repeat(i)))
        .collect();
    for (i, m) in msgs.iter().enumerate() {
        if i % 2 == 0 {
            ws.send_str(m).await.map_err(send_err)?;
        } else {
            ws.send_bytes(m.as_bytes()).await.map_err(send_err)?;
        }
    }
    for (i, m) in msgs.iter().enumerate() {
        if i % 2 == 0 {
            expect_text(&mut ws, m).await
        } else {
            expect_binary(&mut ws, m.as_bytes()).await
        }
        .map_err(|e| format!("message {i}: {e}"))?;
    }
    finish(ws).await
}

/// A text message in five fragments, split inside 2-, 3- and 4-byte
/// characters, one fragment empty: echoed as one message.
async fn fragmented_text(ctx: &Ctx<'_>) -> Result<()> {
    let text = "fragments: héllo, 1 €, 😀 and the end";
    let bytes = text.as_bytes();
    let inside = |c: char, offset: usize| text.find(c).map(|i| i + offset).unwrap_or(0);
    let cuts = [
        0,
        inside('é', 1),
        inside('€', 2),
        inside('€', 2),
        inside('😀', 3),
        bytes.len(),
    ];
    let mut ws = ctx.echo().await?;
    for (i, w) in cuts.windows(2).enumerate() {
        let fin = i + 2 == cuts.len();
        ws.send_fragment(DataKind::Text, &bytes[w[0]..w[1]], fin)
            .await
            .map_err(|e| format!("send_fragment {i}: {e}"))?;
    }
    expect_text(&mut ws, text).await?;
    // The socket is usable for a whole message afterwards.
    ws.send_str("whole").await.map_err(send_err)?;
    expect_text(&mut ws, "whole").await?;
    finish(ws).await
}

/// A binary message of 3 fragments (one over 65535 bytes: a 64-bit length
/// in a continuation frame) with a ping between two of them.
async fn fragmented_binary(ctx: &Ctx<'_>) -> Result<()> {
    let data = random_bytes(70_000 + 300, 3);
    let (a, rest) = data.split_at(300);
    let (b, c) = rest.split_at(70_000);
    let mut ws = ctx.echo().await?;
    ws.send_fragment(DataKind::Binary, a, false)
        .await
        .map_err(|e| format!("send_fragment 0: {e}"))?;
    ws.ping(b"between fragments")
        .await
        .map_err(|e| format!("ping: {e}"))?;
    ws.send_fragment(DataKind::Binary, b, false)
        .await
        .map_err(|e| format!("send_fragment 1: {e}"))?;
    ws.send_fragment(DataKind::Binary, c, true)
        .await
        .map_err(|e| format!("send_fragment 2: {e}"))?;
    // The pong is left out (autoping): the next message is the echo.
    expect_binary(&mut ws, &data).await?;
    finish(ws).await
}

/// With autoping off, our ping's pong is returned by `receive`.
async fn client_ping(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(ctx.builder(&ctx.echo_url()).autoping(false))
        .await?;
    ws.ping(b"cli-ping")
        .await
        .map_err(|e| format!("ping: {e}"))?;
    match recv(&mut ws).await? {
        Message::Pong(p) if &p[..] == b"cli-ping" => {}
        other => {
            return Err(format!(
                "expected pong \"cli-ping\", got {}",
                describe(&other)
            ));
        }
    }
    // An empty ping too.
    ws.ping(b"").await.map_err(|e| format!("ping: {e}"))?;
    match recv(&mut ws).await? {
        Message::Pong(p) if p.is_empty() => {}
        other => return Err(format!("expected an empty pong, got {}", describe(&other))),
    }
    // The largest control payload; one byte more is refused here.
    let big = random_bytes(125, 11);
    ws.ping(&big)
        .await
        .map_err(|e| format!("ping(125 bytes): {e}"))?;
    match recv(&mut ws).await? {
        Message::Pong(p) if p == big => {}
        other => {
            return Err(format!(
                "expected the 125-byte pong, got {}",
                describe(&other)
            ));
        }
    }
    match ws.ping([0u8; 126]).await {
        Err(e) if e.is_builder() => {}
        other => {
            return Err(format!(
                "ping(126 bytes): want a builder error, got {other:?}"
            ));
        }
    }
    ws.send_str("after pong").await.map_err(send_err)?;
    expect_text(&mut ws, "after pong").await?;
    finish(ws).await
}

/// `/ping`: the server pings first; autoping answers it unseen and the
/// socket works on.
async fn server_ping(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.open(ctx.builder(&ctx.url("/ping"))).await?;
    ws.send_str("after server ping").await.map_err(send_err)?;
    expect_text(&mut ws, "after server ping").await?;
    finish(ws).await
}

/// `/ping` with autoping off: the ping is returned, we answer it.
async fn server_ping_visible(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(ctx.builder(&ctx.url("/ping")).autoping(false))
        .await?;
    match recv(&mut ws).await? {
        Message::Ping(p) if &p[..] == b"srv-ping" => {}
        other => {
            return Err(format!(
                "expected ping \"srv-ping\", got {}",
                describe(&other)
            ));
        }
    }
    ws.pong(b"srv-ping")
        .await
        .map_err(|e| format!("pong: {e}"))?;
    ws.send_str("after server ping").await.map_err(send_err)?;
    expect_text(&mut ws, "after server ping").await?;
    finish(ws).await
}

/// Offered `superchat2, chat`: the server picks `chat`.
async fn subprotocol(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(
            ctx.builder(&ctx.echo_url())
                .protocols(["superchat2", "chat"]),
        )
        .await?;
    if ws.protocol() != Some("chat") {
        return Err(format!("protocol() is {:?}, want \"chat\"", ws.protocol()));
    }
    ws.send_str("chat").await.map_err(send_err)?;
    expect_text(&mut ws, "chat").await?;
    finish(ws).await
}

/// `/headers`: the handshake as the server saw it.
async fn headers(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(
            ctx.builder(&ctx.url("/headers?x=1"))
                .query(&[("y", "2 3")])
                .header("x-interop", "yes")
                .auth(BasicAuth::new("user", "pass").map_err(|e| e.to_string())?)
                .protocols(["superchat2", "chat"])
                .origin(ORIGIN),
        )
        .await?;
    let report = match recv(&mut ws).await? {
        Message::Text(t) => serde_json::from_str::<Value>(t.as_str())
            .map_err(|e| format!("/headers sent invalid JSON: {e}"))?,
        other => {
            return Err(format!(
                "expected the /headers JSON, got {}",
                describe(&other)
            ));
        }
    };
    let header = |name: &str| -> Vec<String> {
        report["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .filter_map(|pair| pair[1].as_str().map(str::to_owned))
            .collect()
    };
    let mut problems = Vec::new();
    if report["path"] != "/headers?x=1&y=2+3" {
        problems.push(format!("path {}", report["path"]));
    }
    if report["subprotocol"] != "chat" || ws.protocol() != Some("chat") {
        problems.push(format!(
            "subprotocol: server chose {}, protocol() is {:?}",
            report["subprotocol"],
            ws.protocol()
        ));
    }
    if header("sec-websocket-protocol") != ["superchat2, chat"] {
        problems.push(format!(
            "Sec-WebSocket-Protocol {:?}",
            header("sec-websocket-protocol")
        ));
    }
    if header("origin") != [ORIGIN] {
        problems.push(format!("Origin {:?}", header("origin")));
    }
    let cookie = format!("{}={}", COOKIE.0, COOKIE.1);
    if header("cookie") != [cookie.as_str()] {
        problems.push(format!("Cookie {:?}, want [{cookie:?}]", header("cookie")));
    }
    if header("sec-websocket-version") != ["13"] {
        problems.push(format!(
            "Sec-WebSocket-Version {:?}",
            header("sec-websocket-version")
        ));
    }
    if header("x-interop") != ["yes"] {
        problems.push(format!("X-Interop {:?}", header("x-interop")));
    }
    if header("authorization") != ["Basic dXNlcjpwYXNz"] {
        problems.push(format!("Authorization {:?}", header("authorization")));
    }
    if header("host").len() != 1 {
        problems.push(format!("Host {:?}", header("host")));
    }
    let offered = header("sec-websocket-extensions");
    let extensions = &report["extensions"];
    match ctx.mode {
        Mode::Plain => {
            if !offered.is_empty() || extensions.as_array().is_none_or(|e| !e.is_empty()) {
                problems.push(format!(
                    "no compression: offered {offered:?}, server enabled {extensions}"
                ));
            }
        }
        Mode::Deflate => {
            let offers_deflate = offered.iter().any(|o| o.contains("permessage-deflate"));
            if !offers_deflate || *extensions != serde_json::json!(["permessage-deflate"]) {
                problems.push(format!(
                    "compression: offered {offered:?}, server enabled {extensions}"
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!("the server saw: {}", problems.join("; ")));
    }
    // It echoes afterwards.
    ws.send_str("after headers").await.map_err(send_err)?;
    expect_text(&mut ws, "after headers").await?;
    finish(ws).await
}

/// `/send-then-close`: "hello", b"\0\1\2", Close(1000 "done"), then None.
async fn send_then_close(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.open(ctx.builder(&ctx.url("/send-then-close"))).await?;
    expect_text(&mut ws, "hello").await?;
    expect_binary(&mut ws, b"\x00\x01\x02").await?;
    expect_server_close(&mut ws, 1000, "done").await
}

/// The server's close frame with `code` and `reason`, then the end.
async fn expect_server_close(ws: &mut ClientWebSocket, code: u16, reason: &str) -> Result<()> {
    let want = CloseFrame::new(CloseCode(code), reason);
    match recv(ws).await? {
        Message::Close(Some(f)) if f == want => {}
        other => {
            return Err(format!(
                "expected close {code} {reason:?}, got {}",
                describe(&other)
            ));
        }
    }
    match ws.receive().await {
        Ok(None) => {}
        Ok(Some(m)) => return Err(format!("after the close frame, got {}", describe(&m))),
        Err(e) => return Err(format!("after the close frame: {e}")),
    }
    if ws.close_code() != Some(CloseCode(code)) {
        return Err(format!(
            "close_code() is {:?}, want {code}",
            ws.close_code()
        ));
    }
    if !ws.closed() {
        return Err("closed() is false after the server's close".into());
    }
    if let Some(e) = ws.exception() {
        return Err(format!("exception after a clean close: {e}"));
    }
    // close() after the handshake completed does nothing, and fails nothing.
    let timer = Instant::now();
    ws.close(CloseCode::NORMAL, "")
        .await
        .map_err(|e| format!("close after the server's close: {e}"))?;
    if timer.elapsed() > PROMPT_CLOSE {
        return Err(format!(
            "close() after the server's close took {:?}",
            timer.elapsed()
        ));
    }
    if let Some(e) = ws.exception() {
        return Err(format!("exception after close(): {e}"));
    }
    Ok(())
}

async fn server_close(ctx: &Ctx<'_>, code: u16) -> Result<()> {
    let mut ws = ctx.open(ctx.builder(&ctx.close_url(code))).await?;
    expect_server_close(&mut ws, code, "bye").await
}

async fn server_close_1001(ctx: &Ctx<'_>) -> Result<()> {
    server_close(ctx, 1001).await
}

async fn server_close_4000(ctx: &Ctx<'_>) -> Result<()> {
    server_close(ctx, 4000).await
}

async fn server_close_4001(ctx: &Ctx<'_>) -> Result<()> {
    server_close(ctx, 4001).await
}

/// `close(4001, "bye")` by us: prompt, clean, final.
async fn client_close(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    ws.send_str("before close").await.map_err(send_err)?;
    expect_text(&mut ws, "before close").await?;
    closes_cleanly(&mut ws).await
}

/// `close(4001, "bye")` with an echo not read yet: close reads past it.
async fn client_close_unread(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.echo().await?;
    ws.send_str("never read").await.map_err(send_err)?;
    ws.send_bytes(random_bytes(100_000, 5))
        .await
        .map_err(send_err)?;
    closes_cleanly(&mut ws).await
}

async fn closes_cleanly(ws: &mut ClientWebSocket) -> Result<()> {
    // A reason over 123 bytes is refused, and the socket stays open.
    match ws.close(CloseCode(4001), &"r".repeat(124)).await {
        Err(e) if e.is_builder() => {}
        other => {
            return Err(format!(
                "close with a 124-byte reason: want a builder error, got {other:?}"
            ));
        }
    }
    if ws.closed() {
        return Err("a refused close() closed the socket".into());
    }
    let timer = Instant::now();
    ws.close(CloseCode(4001), "bye")
        .await
        .map_err(|e| format!("close: {e}"))?;
    let took = timer.elapsed();
    if let Some(e) = ws.exception() {
        return Err(format!("close(4001): exception {e} after {took:?}"));
    }
    if took > PROMPT_CLOSE {
        return Err(format!("close(4001) took {took:?}"));
    }
    if !ws.closed() {
        return Err("closed() is false after close()".into());
    }
    // The server answered our close: its code (websockets echoes ours,
    // aiohttp answers 1000).
    match ws.close_code() {
        Some(CloseCode(4001 | 1000)) => {}
        other => return Err(format!("close_code() is {other:?} after close(4001)")),
    }
    match ws.receive().await {
        Ok(None) => {}
        Ok(Some(m)) => return Err(format!("receive after close: {}", describe(&m))),
        Err(e) => return Err(format!("receive after close: {e}")),
    }
    match ws.send_str("too late").await {
        Err(e) if e.is_ws_closed() => Ok(()),
        Err(e) => Err(format!("send after close: {e} (want a closed error)")),
        Ok(()) => Err("send after close succeeded".into()),
    }
}

/// `http://` and `https://` URLs are taken as `ws://` and `wss://`.
async fn http_scheme_url(ctx: &Ctx<'_>) -> Result<()> {
    let url = ctx.echo_url();
    let (http, want) = match url.split_once("://") {
        Some(("ws", rest)) => (format!("http://{rest}"), "ws"),
        Some(("wss", rest)) => (format!("https://{rest}"), "wss"),
        _ => return Err(format!("unexpected URL {url}")),
    };
    let mut ws = ctx.open(ctx.builder(&http)).await?;
    if ws.url().scheme() != want {
        return Err(format!(
            "connected to {http}: url() is {}, want {want}://",
            ws.url()
        ));
    }
    ws.send_str("over http://").await.map_err(send_err)?;
    expect_text(&mut ws, "over http://").await?;
    finish(ws).await
}

/// Every permessage-deflate parameter offered: no context takeover either
/// way, smaller windows. The server must honour what it was asked.
async fn deflate_params(ctx: &Ctx<'_>) -> Result<()> {
    let config = DeflateConfig::default()
        .client_no_context_takeover(true)
        .server_no_context_takeover(true)
        .client_max_window_bits(Some(10))
        .server_max_window_bits(Some(11));
    let mut ws = ctx
        .open(ctx.builder(&ctx.echo_url()).deflate(config))
        .await?;
    let params = ws.compress().copied().ok_or("compress() is None")?;
    if !params.server_no_context_takeover
        || !params.client_no_context_takeover
        || params.server_max_window_bits > 11
        || params.client_max_window_bits > 15
    {
        return Err(format!(
            "negotiated {params:?} (answer {:?}) for the offer {:?}",
            ws.headers().get("sec-websocket-extensions"),
            config.offer()
        ));
    }
    // Repeated content (no context kept: each message alone) and one
    // larger than both windows.
    for i in 0..5 {
        let msg = format!("repeated {i}: {}", "the same words again ".repeat(50));
        ws.send_str(&msg).await.map_err(send_err)?;
        expect_text(&mut ws, &msg).await?;
    }
    let text = random_text(70_000, 9);
    ws.send_str(&text).await.map_err(send_err)?;
    expect_text(&mut ws, &text).await?;
    let data = random_bytes(5_000, 10);
    ws.send_bytes(&data).await.map_err(send_err)?;
    expect_binary(&mut ws, &data).await?;
    finish(ws).await
}

/// A message over `max_msg_size` fails the socket with 1009 (a frame too
/// large, or, compressed, inflation stopped at the limit).
async fn too_big(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx
        .open(ctx.builder(&ctx.echo_url()).max_msg_size(1000))
        .await?;
    // At the limit: fine.
    let data = vec![0u8; 1000];
    ws.send_bytes(&data).await.map_err(send_err)?;
    expect_binary(&mut ws, &data).await?;
    // Over it (zeros: a few bytes compressed).
    ws.send_bytes(vec![0u8; 100_000]).await.map_err(send_err)?;
    match ws.receive().await {
        Err(e) if e.is_ws_protocol() && e.ws_close_code() == Some(CloseCode::TOO_BIG) => {}
        Err(e) => {
            return Err(format!(
                "want a 1009 failure, got {e} (close code {:?})",
                e.ws_close_code()
            ));
        }
        Ok(m) => {
            return Err(format!(
                "want a 1009 failure, got {:?}",
                m.as_ref().map(describe)
            ));
        }
    }
    if ws.close_code() != Some(CloseCode::TOO_BIG) {
        return Err(format!("close_code() is {:?}, want 1009", ws.close_code()));
    }
    if ws.exception().is_none_or(|e| !e.is_ws_protocol()) {
        return Err(format!(
            "exception() is {:?}",
            ws.exception().map(|e| e.to_string())
        ));
    }
    after_failure(&mut ws).await
}

/// The heartbeat: with autoping off its pongs are seen; with autoping on a
/// quiet socket survives several heartbeats, and a receive timeout leaves
/// it open.
async fn heartbeat(ctx: &Ctx<'_>) -> Result<()> {
    let interval = Duration::from_millis(60);
    let mut ws = ctx
        .open(
            ctx.builder(&ctx.echo_url())
                .autoping(false)
                .heartbeat(interval),
        )
        .await?;
    let timer = Instant::now();
    match recv(&mut ws).await? {
        Message::Pong(p) if p.is_empty() => {}
        other => {
            return Err(format!(
                "want the heartbeat's pong, got {}",
                describe(&other)
            ));
        }
    }
    if timer.elapsed() > interval * 10 {
        return Err(format!(
            "the heartbeat's pong came after {:?}",
            timer.elapsed()
        ));
    }
    finish(ws).await?;

    let quiet = Duration::from_millis(300);
    let mut ws = ctx
        .open(
            ctx.builder(&ctx.echo_url())
                .heartbeat(interval)
                .receive_timeout(quiet),
        )
        .await?;
    match ws.receive().await {
        Err(e) if e.timeout_phase() == Some(courier::TimeoutPhase::WsReceive) => {}
        Err(e) => return Err(format!("want a receive timeout, got {e}")),
        Ok(m) => {
            return Err(format!(
                "want a receive timeout, got {:?}",
                m.as_ref().map(describe)
            ));
        }
    }
    if ws.closed() || ws.exception().is_some() {
        return Err(format!(
            "after {quiet:?} of heartbeats: closed() {}, exception {:?}",
            ws.closed(),
            ws.exception().map(|e| e.to_string())
        ));
    }
    ws.set_receive_timeout(Some(RECEIVE_TIMEOUT));
    ws.send_str("still there").await.map_err(send_err)?;
    expect_text(&mut ws, "still there").await?;
    finish(ws).await
}

/// `split()`: a reader task and a writer at once, then the writer's close
/// answered to the reader. (The close waits for every echo: websockets
/// answers a close frame at once and drops echoes not sent yet, which RFC
/// 6455 allows.)
async fn split(ctx: &Ctx<'_>) -> Result<()> {
    const N: usize = 200;
    let ws = ctx.echo().await?;
    let (mut reader, mut writer) = ws.split();
    if !reader.is_pair_of(&writer) {
        return Err("is_pair_of is false for the halves".into());
    }
    let reading = tokio::spawn(async move {
        for i in 0..N {
            match reader.receive().await {
                Ok(Some(Message::Text(t))) if t.as_str() == format!("split {i}") => {}
                Ok(Some(Message::Binary(b))) if b.len() == i => {}
                other => {
                    return Err(format!(
                        "reader, message {i}: {:?}",
                        other.map(|m| m.as_ref().map(describe))
                    ));
                }
            }
        }
        Ok(reader)
    });
    for i in 0..N {
        if i % 2 == 0 {
            writer.send_str(&format!("split {i}")).await
        } else {
            writer.send_bytes(vec![7u8; i]).await
        }
        .map_err(|e| format!("writer, message {i}: {e}"))?;
    }
    let mut reader = reading.await.map_err(|e| format!("reader task: {e}"))??;
    writer
        .close(CloseCode::NORMAL, "")
        .await
        .map_err(|e| format!("writer close: {e}"))?;
    if !writer.closed() {
        return Err("writer: closed() is false after close()".into());
    }
    match reader.receive().await {
        Ok(Some(Message::Close(_))) => {}
        other => {
            return Err(format!(
                "reader: want the server's close, got {:?}",
                other.map(|m| m.as_ref().map(describe))
            ));
        }
    }
    match reader.receive().await {
        Ok(None) => {}
        other => {
            return Err(format!(
                "reader after the close: {:?}",
                other.map(|m| m.as_ref().map(describe))
            ));
        }
    }
    match reader.exception() {
        None => Ok(()),
        Some(e) => Err(format!("reader: exception {e}")),
    }
}

/// aiohttp sends the close code it is given, even 1005, which must not
/// appear on the wire (RFC 6455 7.4.1): a protocol error (1002).
async fn server_close_invalid(ctx: &Ctx<'_>) -> Result<()> {
    let mut ws = ctx.open(ctx.builder(&ctx.close_url(1005))).await?;
    match ws.receive().await {
        Err(e) if e.is_ws_protocol() && e.ws_close_code() == Some(CloseCode::PROTOCOL) => {}
        Err(e) => {
            return Err(format!(
                "want a 1002 failure, got {e} (close code {:?})",
                e.ws_close_code()
            ));
        }
        Ok(m) => {
            return Err(format!(
                "want a 1002 failure, got {:?}",
                m.as_ref().map(describe)
            ));
        }
    }
    if ws.close_code() != Some(CloseCode::PROTOCOL) {
        return Err(format!("close_code() is {:?}, want 1002", ws.close_code()));
    }
    after_failure(&mut ws).await
}

/// What must hold once a socket failed: the end (`None`) from the next
/// receive, and a prompt `close()`.
async fn after_failure(ws: &mut ClientWebSocket) -> Result<()> {
    match ws.receive().await {
        Ok(None) => {}
        other => {
            return Err(format!(
                "receive after the failure: {:?}",
                other.map(|m| m.as_ref().map(describe))
            ));
        }
    }
    let timer = Instant::now();
    ws.close(CloseCode::NORMAL, "")
        .await
        .map_err(|e| format!("close: {e}"))?;
    if timer.elapsed() > PROMPT_CLOSE {
        return Err(format!(
            "close() after the failure took {:?}",
            timer.elapsed()
        ));
    }
    Ok(())
}

/// Plain HTTP paths are not WebSockets: a handshake error with the status.
async fn handshake_refused(ctx: &Ctx<'_>) -> Result<()> {
    for (path, status) in [("/echo", 200), ("/status/403", 403), ("/no-such-path", 404)] {
        match ctx.builder(&ctx.url(path)).await {
            Ok(_) => return Err(format!("{path}: the handshake succeeded")),
            Err(e) if e.is_ws_handshake() && e.status().map(|s| s.as_u16()) == Some(status) => {
                if e.ws_handshake_headers().is_none() {
                    return Err(format!("{path}: no ws_handshake_headers()"));
                }
            }
            Err(e) => {
                return Err(format!(
                    "{path}: want a handshake error with status {status}, got {e} \
                     (is_ws_handshake {}, status {:?})",
                    e.is_ws_handshake(),
                    e.status()
                ));
            }
        }
    }
    // The session is fine afterwards.
    let ws = ctx.echo().await?;
    finish(ws).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_expected_entry_applies() {
        let expected: BTreeMap<String, Known> = serde_json::from_str(
            r#"{"text": {"bug": "all"}, "text@echo-ws": {"skip": "one transport"},
                "text@echo-ws/deflate": {"bug": "one cell"}}"#,
        )
        .unwrap();
        let key = |t, m| lookup(&expected, "text", t, m).map(|(k, _)| k);
        assert_eq!(key("echo-ws", Mode::Deflate), Some("text@echo-ws/deflate"));
        assert_eq!(key("echo-ws", Mode::Plain), Some("text@echo-ws"));
        assert_eq!(key("aio-ws", Mode::Plain), Some("text"));
        assert!(lookup(&expected, "binary", "aio-ws", Mode::Plain).is_none());
        assert!(matches!(
            lookup(&expected, "text", "echo-ws", Mode::Plain),
            Some((_, Known::Skip(_)))
        ));
    }

    #[test]
    fn payloads_have_the_size_asked() {
        for n in [0, 1, 125, 126, 65535, 65536] {
            assert_eq!(random_bytes(n, 1).len(), n);
            assert_eq!(random_text(n, 1).len(), n);
        }
        assert_ne!(random_bytes(64, 1), random_bytes(64, 2));
    }

    #[test]
    fn case_names_are_unique() {
        let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CASES.len());
    }
}
