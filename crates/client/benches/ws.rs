//! WebSocket echo benchmarks: courier beside tokio-tungstenite,
//! fastwebsockets and a hand-written tokio client (the floor), in one run,
//! against the same local echo server.
//!
//! Run it with `cargo xtask bench ws`: that builds and starts the
//! `ws_bench_server` of `courier-test-support` (feature `ws-bench-server`, a
//! hand-written echo server) pinned to CPU 1, runs this target pinned to
//! CPU 0 and prints the tables. It is configured through
//!
//! ```text
//! COURIER_BENCH_WS_SERVER      127.0.0.1:PORT of ws_bench_server (without it, nothing runs)
//! COURIER_BENCH_WS_SERVER_PID  its PID, to tell how busy it was (optional)
//! COURIER_BENCH_EXTRA          a file to append the figures to (JSON lines)
//! COURIER_BENCH_CRITERION      0: leave out the criterion groups
//! COURIER_BENCH_ROUNDS         0: leave out the interleaved rounds
//! COURIER_BENCH_QUICK          1: 6 rounds instead of 20
//! COURIER_BENCH_ONLY           run only the cases whose `group/size` contains this
//! ```
//!
//! Every client runs on a current-thread tokio runtime on the bench thread
//! (one client core), as in the HTTP benchmark (`benches/http.rs`).
//!
//! The cases: binary messages of 32 bytes and of 64 KiB, echoed at
//! concurrency 1 and 16 (groups `ws_echo_c1`, `ws_echo_c16`, parameter
//! `32B` or `64KiB`). Concurrency N is N connections, each doing round
//! trips one after the other: send one binary message, wait for its echo
//! (its length checked). One round trip is one operation; at concurrency
//! N the connections run as N spawned tasks taking turns from one counter
//! (inline when 1). Each client opens its connections once per case and
//! keeps them (warmed by one untimed block), closing them at its end.
//!
//! Each case is measured in interleaved rounds, as `benches/http.rs` does
//! (see its docs for why): in each of 20 rounds every client, in an order
//! that rotates, runs one timed block of about 0.1 s, taking its wall time
//! and the process CPU time (user + system, `getrusage(RUSAGE_SELF)`)
//! around it. Each client's figures are the median block rate (with
//! quartiles), the median CPU per message, and paired ratios: the median
//! over rounds of its rate, or CPU, over another client's in the same
//! round. They are appended to `COURIER_BENCH_EXTRA` as `rounds` lines,
//! the format of the HTTP benchmark's, plus `server_busy` when the
//! server's PID is known: the share of the wall time of the client's
//! blocks that the server's CPU was busy (its user + system time from
//! `/proc/PID/stat`, in ticks of 10 ms, summed over the rounds). Near 1,
//! the server (one core) is what limits the rate, and the rates of the
//! clients say less than their CPU per message.
//!
//! Each case also runs as a criterion group first (function = client,
//! parameter = size, one element of throughput per round trip, `iters`
//! round trips timed inside one `block_on` with `iter_custom`), which
//! keeps criterion's record and confidence intervals.
//!
//! The clients (the three others each over a tokio `TcpStream` with
//! `TCP_NODELAY`):
//!
//! * `courier`: `session.ws_connect(url)` of a default `ClientSession`
//!   (its own connector), `send_bytes` and `receive_bytes`.
//! * `fastwebsockets`: its documented client path, `handshake::client`
//!   (hyper's HTTP/1.1 upgrade), the `WebSocket` in a `FragmentCollector`
//!   (whole messages), its defaults otherwise (automatic pong and close,
//!   vectored writes over 1 KiB); the message sent as a borrowed payload
//!   (which it copies to mask).
//! * `tokio-tungstenite`: `client_async` on the stream, its default
//!   configuration; the message a pre-built `Bytes` (cloned, no copy) sent
//!   with `SinkExt::send` (write and flush), the echo read with
//!   `StreamExt::next`.
//! * `floor`: a hand-written client: a fixed upgrade request (the accept
//!   value checked), then per message the frame header and the payload,
//!   masked (a xorshift key, eight bytes at a time), in the connection's
//!   write buffer, one `write_all`; the echo read into the connection's
//!   read buffer until its header and payload are there. Nothing is
//!   allocated per message.

mod support;

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_client::ClientSession;
use courier_client::ws::{ClientWebSocket, CloseCode};
use criterion::{BenchmarkId, Criterion, Throughput};
use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as TungsteniteMessage;

use support::{
    CRITERION_VAR, Extra, ROUNDS_VAR, block_quartiles, cpu_time, enabled, find, invalid,
    paired_ratio, runtime, selected,
};

/// `127.0.0.1:PORT` of the echo server.
const SERVER_VAR: &str = "COURIER_BENCH_WS_SERVER";
/// The echo server's PID (optional).
const SERVER_PID_VAR: &str = "COURIER_BENCH_WS_SERVER_PID";

/// The clients, in table order.
const CLIENTS: [Kind; 4] = [
    Kind::Courier,
    Kind::Fastwebsockets,
    Kind::Tungstenite,
    Kind::Floor,
];

/// The largest message of any case: the floor's buffers hold one.
const MAX_MESSAGE: usize = 64 * 1024;
/// A client frame header at most (64-bit length and masking key).
const MAX_HEADER: usize = 14;
/// How long closing a connection may take at the end of a case.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// One of the four clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Courier,
    Fastwebsockets,
    Tungstenite,
    Floor,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Courier => "courier",
            Kind::Fastwebsockets => "fastwebsockets",
            Kind::Tungstenite => "tokio-tungstenite",
            Kind::Floor => "floor",
        }
    }
}

/// One connection of a client to the echo server.
trait Conn: Send + Sized + 'static {
    /// Shared by a client's connections (a session, say); inside the
    /// runtime.
    type Shared: Send + Sync + Clone + 'static;
    /// A new shared part.
    fn shared() -> Self::Shared;
    /// A new connection, upgraded.
    fn connect(shared: &Self::Shared, addr: SocketAddr) -> impl Future<Output = Self> + Send;
    /// Sends `payload` as one binary message and waits for its echo; the
    /// length of the echo.
    fn echo(&mut self, payload: &Bytes) -> impl Future<Output = usize> + Send;
    /// Closes the connection (close handshake where the client has one).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// A TCP connection to `addr` with `TCP_NODELAY`.
async fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

// ---------------------------------------------------------------- courier

struct Courier {
    ws: ClientWebSocket,
}

impl Conn for Courier {
    type Shared = ClientSession;

    fn shared() -> ClientSession {
        ClientSession::new()
    }

    async fn connect(session: &ClientSession, addr: SocketAddr) -> Courier {
        let ws = session
            .ws_connect(ws_url(addr))
            .send()
            .await
            .expect("courier ws_connect");
        Courier { ws }
    }

    async fn echo(&mut self, payload: &Bytes) -> usize {
        self.ws.send_bytes(payload).await.expect("courier send");
        self.ws
            .receive_bytes()
            .await
            .expect("courier receive")
            .len()
    }

    async fn close(mut self) {
        let _ = self.ws.close(CloseCode::NORMAL, "").await;
    }
}

// --------------------------------------------------------- fastwebsockets

struct Fastwebsockets {
    ws: FragmentCollector<TokioIo<Upgraded>>,
}

impl Conn for Fastwebsockets {
    type Shared = ();

    fn shared() {}

    async fn connect((): &(), addr: SocketAddr) -> Fastwebsockets {
        let stream = tcp(addr).await;
        let req = hyper::Request::get(format!("http://{addr}/"))
            .header("Host", addr.to_string())
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let (ws, _) = fastwebsockets::handshake::client(&TokioExecutor::new(), req, stream)
            .await
            .expect("fastwebsockets handshake");
        Fastwebsockets {
            ws: FragmentCollector::new(ws),
        }
    }

    async fn echo(&mut self, payload: &Bytes) -> usize {
        let frame = Frame::binary(Payload::Borrowed(payload));
        self.ws
            .write_frame(frame)
            .await
            .expect("fastwebsockets write");
        let frame = self.ws.read_frame().await.expect("fastwebsockets read");
        assert_eq!(frame.opcode, OpCode::Binary, "fastwebsockets: not binary");
        frame.payload.len()
    }

    async fn close(mut self) {
        if self.ws.write_frame(Frame::close(1000, b"")).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.read_frame()).await;
        }
    }
}

// ------------------------------------------------------- tokio-tungstenite

struct Tungstenite {
    ws: WebSocketStream<TcpStream>,
}

impl Conn for Tungstenite {
    type Shared = ();

    fn shared() {}

    async fn connect((): &(), addr: SocketAddr) -> Tungstenite {
        let stream = tcp(addr).await;
        let (ws, _) = tokio_tungstenite::client_async(ws_url(addr), stream)
            .await
            .expect("tokio-tungstenite handshake");
        Tungstenite { ws }
    }

    async fn echo(&mut self, payload: &Bytes) -> usize {
        self.ws
            .send(TungsteniteMessage::Binary(payload.clone()))
            .await
            .expect("tokio-tungstenite send");
        loop {
            match self.ws.next().await {
                Some(Ok(TungsteniteMessage::Binary(data))) => return data.len(),
                Some(Ok(TungsteniteMessage::Ping(_) | TungsteniteMessage::Pong(_))) => {}
                other => panic!("tokio-tungstenite: {other:?} instead of the echo"),
            }
        }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            self.ws.close(None).await.ok()?;
            while self.ws.next().await?.is_ok() {}
            Some(())
        })
        .await;
    }
}

// ------------------------------------------------------------------ floor

/// The floor's upgrade request key (RFC 6455 §1.3's example) and the
/// accept value the server must answer with.
const FLOOR_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const FLOOR_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct Floor {
    stream: TcpStream,
    /// One frame to send: header and masked payload.
    write: Vec<u8>,
    /// What the server sent that is not consumed yet.
    read: Vec<u8>,
    /// The xorshift state the masking keys come from.
    key: u32,
}

/// XORs `payload` with `key` repeated, eight bytes at a time.
fn mask(payload: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

impl Floor {
    async fn upgrade(addr: SocketAddr) -> io::Result<Floor> {
        let mut stream = tcp(addr).await;
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {FLOOR_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut read = Vec::with_capacity(2 * (MAX_MESSAGE + MAX_HEADER));
        let end = loop {
            let searched = read.len().saturating_sub(3);
            if stream.read_buf(&mut read).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(i) = find(&read[searched..], b"\r\n\r\n") {
                break searched + i + 4;
            }
        };
        let head = &read[..end];
        if !head.starts_with(b"HTTP/1.1 101 ") || find(head, FLOOR_ACCEPT.as_bytes()).is_none() {
            return Err(invalid("not a 101 with the expected accept value"));
        }
        read.drain(..end);
        Ok(Floor {
            stream,
            write: Vec::with_capacity(MAX_MESSAGE + MAX_HEADER),
            read,
            key: 0x9E37_79B9,
        })
    }

    fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.key;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.key = x;
        x.to_ne_bytes()
    }

    /// Writes one masked frame of `opcode` carrying `payload`.
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let key = self.next_key();
        self.write.clear();
        self.write.push(0x80 | opcode);
        if let Ok(n) = u8::try_from(payload.len())
            && n < 126
        {
            self.write.push(0x80 | n);
        } else if let Ok(n) = u16::try_from(payload.len()) {
            self.write.push(0x80 | 126);
            self.write.extend_from_slice(&n.to_be_bytes());
        } else {
            self.write.push(0x80 | 127);
            self.write
                .extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        self.write.extend_from_slice(&key);
        let start = self.write.len();
        self.write.extend_from_slice(payload);
        mask(&mut self.write[start..], key);
        self.stream.write_all(&self.write).await
    }

    /// Reads one unmasked frame; its first byte and payload length (the
    /// payload is consumed).
    async fn receive(&mut self) -> io::Result<(u8, usize)> {
        let (first, header, len) = loop {
            if let [first, second, ..] = self.read[..] {
                let (extra, short) = match second & 0x7F {
                    126 => (2, None),
                    127 => (8, None),
                    n => (0, Some(usize::from(n))),
                };
                if self.read.len() >= 2 + extra {
                    let len = match short {
                        Some(n) => n,
                        None if extra == 2 => {
                            usize::from(u16::from_be_bytes([self.read[2], self.read[3]]))
                        }
                        None => {
                            let mut be = [0; 8];
                            be.copy_from_slice(&self.read[2..10]);
                            usize::try_from(u64::from_be_bytes(be))
                                .map_err(|_| invalid("frame too long"))?
                        }
                    };
                    break (first, 2 + extra, len);
                }
            }
            self.fill().await?;
        };
        let end = header + len;
        if end > self.read.capacity() {
            return Err(invalid("frame larger than the floor's buffer"));
        }
        while self.read.len() < end {
            self.fill().await?;
        }
        self.read.drain(..end);
        Ok((first, len))
    }

    /// Reads what the socket has into the read buffer (within its room).
    async fn fill(&mut self) -> io::Result<()> {
        if self.read.len() == self.read.capacity() {
            return Err(invalid("read buffer full"));
        }
        match self.stream.read_buf(&mut self.read).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

impl Conn for Floor {
    type Shared = ();

    fn shared() {}

    async fn connect((): &(), addr: SocketAddr) -> Floor {
        Floor::upgrade(addr).await.expect("floor upgrade")
    }

    async fn echo(&mut self, payload: &Bytes) -> usize {
        self.send(0x2, payload).await.expect("floor send");
        let (first, len) = self.receive().await.expect("floor receive");
        assert_eq!(first, 0x82, "floor: not a final binary frame");
        len
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            self.send(0x8, &1000u16.to_be_bytes()).await.ok()?;
            self.receive().await.ok()?;
            self.stream.shutdown().await.ok()
        })
        .await;
    }
}

// ------------------------------------------------------------ connections

/// The open connections of one client in one case.
struct Conns<C: Conn> {
    conns: Vec<C>,
}

impl<C: Conn> Conns<C> {
    fn open(rt: &Runtime, addr: SocketAddr, n: usize) -> Conns<C> {
        rt.block_on(async {
            let shared = C::shared();
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                conns.push(C::connect(&shared, addr).await);
            }
            Conns { conns }
        })
    }

    /// `n` round trips of `payload` on the connections: inline on one, else
    /// in one spawned task per connection, taking turns from one counter.
    async fn run(&mut self, payload: &Bytes, n: u64) {
        let expected = payload.len();
        if self.conns.len() == 1 {
            let conn = &mut self.conns[0];
            for _ in 0..n {
                assert_eq!(conn.echo(payload).await, expected, "echo length");
            }
            return;
        }
        let left = Arc::new(AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX)));
        let workers = usize::try_from(n).map_or(self.conns.len(), |n| n.min(self.conns.len()));
        let tasks: Vec<_> = self
            .conns
            .drain(..workers)
            .map(|mut conn| {
                let (left, payload) = (left.clone(), payload.clone());
                tokio::spawn(async move {
                    while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                        assert_eq!(conn.echo(&payload).await, expected, "echo length");
                    }
                    conn
                })
            })
            .collect();
        for task in tasks {
            self.conns.push(task.await.expect("echo task"));
        }
    }

    /// One timed block of `n` round trips: its wall time, the CPU time of
    /// this process and the server's CPU ticks (if its PID is known).
    fn block(&mut self, rt: &Runtime, payload: &Bytes, n: u64, server: Option<u32>) -> Block {
        let server_ticks = server.and_then(process_ticks);
        let cpu = cpu_time();
        let start = Instant::now();
        rt.block_on(self.run(payload, n));
        let wall = start.elapsed();
        let cpu = cpu_time().saturating_sub(cpu);
        let server_ticks = server_ticks
            .zip(server.and_then(process_ticks))
            .map(|(before, after)| after.saturating_sub(before));
        Block {
            wall,
            cpu,
            server_ticks,
        }
    }

    fn close(self, rt: &Runtime) {
        rt.block_on(async {
            for conn in self.conns {
                conn.close().await;
            }
        });
    }
}

/// What one timed block measured.
#[derive(Debug, Clone, Copy)]
struct Block {
    wall: Duration,
    /// User + system time of this process.
    cpu: Duration,
    /// User + system ticks of the server, when its PID is known.
    server_ticks: Option<u64>,
}

/// The connections of every client in one case.
struct Clients {
    courier: Conns<Courier>,
    fastwebsockets: Conns<Fastwebsockets>,
    tungstenite: Conns<Tungstenite>,
    floor: Conns<Floor>,
}

impl Clients {
    fn open(rt: &Runtime, addr: SocketAddr, n: usize) -> Clients {
        Clients {
            courier: Conns::open(rt, addr, n),
            fastwebsockets: Conns::open(rt, addr, n),
            tungstenite: Conns::open(rt, addr, n),
            floor: Conns::open(rt, addr, n),
        }
    }

    fn close(self, rt: &Runtime) {
        self.courier.close(rt);
        self.fastwebsockets.close(rt);
        self.tungstenite.close(rt);
        self.floor.close(rt);
    }
}

/// Calls `$body` with `$conns` bound to the connections of `$kind`.
macro_rules! with_conns {
    ($clients:expr, $kind:expr, |$conns:ident| $body:expr) => {
        match $kind {
            Kind::Courier => {
                let $conns = &mut $clients.courier;
                $body
            }
            Kind::Fastwebsockets => {
                let $conns = &mut $clients.fastwebsockets;
                $body
            }
            Kind::Tungstenite => {
                let $conns = &mut $clients.tungstenite;
                $body
            }
            Kind::Floor => {
                let $conns = &mut $clients.floor;
                $body
            }
        }
    };
}

// ------------------------------------------------------------------ cases

/// One case: a message size at a concurrency.
#[derive(Debug, Clone, Copy)]
struct Case {
    /// `32B` or `64KiB`: the criterion parameter.
    size_name: &'static str,
    size: usize,
    concurrency: usize,
    /// Round trips in one timed block (about 0.1 s of the floor's).
    per_block: u64,
}

impl Case {
    fn group(&self) -> String {
        format!("ws_echo_c{}", self.concurrency)
    }

    fn selected(&self) -> bool {
        selected(&format!("{}/{}", self.group(), self.size_name))
    }
}

/// Every case, in run order.
const CASES: [Case; 4] = [
    Case {
        size_name: "32B",
        size: 32,
        concurrency: 1,
        per_block: 1_500,
    },
    Case {
        size_name: "32B",
        size: 32,
        concurrency: 16,
        per_block: 24_000,
    },
    Case {
        size_name: "64KiB",
        size: 64 * 1024,
        concurrency: 1,
        per_block: 1_600,
    },
    Case {
        size_name: "64KiB",
        size: 64 * 1024,
        concurrency: 16,
        per_block: 6_000,
    },
];

/// The case as a criterion group: one benchmark per client, `iters` round
/// trips timed in one `block_on` on the client's open connections.
fn criterion_case(c: &mut Criterion, rt: &Runtime, clients: &mut Clients, case: &Case) {
    let payload = payload(case.size);
    let mut g = c.benchmark_group(case.group());
    g.throughput(Throughput::Elements(1));
    for kind in CLIENTS {
        let id = BenchmarkId::new(kind.name(), case.size_name);
        with_conns!(clients, kind, |conns| g.bench_function(id, |b| {
            b.iter_custom(|iters| conns.block(rt, &payload, iters, None).wall);
        }));
    }
    g.finish();
}

/// Measures one case in interleaved rounds: in each round every client, in
/// an order rotating with the round, runs one timed block of
/// `case.per_block` round trips (wall and CPU time). Appends one `rounds`
/// line per client to [`Extra`]: the median block rate with its quartiles,
/// the median CPU per message, and paired ratios (the median over rounds
/// of its rate, or CPU, over another client's in the same round).
fn rounds_case(
    extra: &mut Extra,
    rt: &Runtime,
    clients: &mut Clients,
    case: &Case,
    rounds: usize,
    server: Option<u32>,
) {
    let payload = payload(case.size);
    let group = case.group();
    let mut run = |kind: Kind, n: u64| {
        with_conns!(clients, kind, |conns| conns.block(rt, &payload, n, server))
    };
    let started = Instant::now();
    for kind in CLIENTS {
        run(kind, case.per_block / 4 + 1);
    }
    // Per client: (rate, CPU ns per message) of each round's block.
    let mut blocks: Vec<Vec<(f64, f64)>> = vec![Vec::new(); CLIENTS.len()];
    // Per client: the server's ticks and the wall time of its blocks, summed.
    let mut server_busy: Vec<Option<(u64, f64)>> = vec![Some((0, 0.0)); CLIENTS.len()];
    for round in 0..rounds {
        for turn in 0..CLIENTS.len() {
            let index = (round + turn) % CLIENTS.len();
            let block = run(CLIENTS[index], case.per_block);
            let n = case.per_block as f64;
            blocks[index].push((
                n / block.wall.as_secs_f64(),
                block.cpu.as_nanos() as f64 / n,
            ));
            server_busy[index] = server_busy[index]
                .zip(block.server_ticks)
                .map(|((ticks, wall), t)| (ticks + t, wall + block.wall.as_secs_f64()));
        }
    }
    eprintln!(
        "{group}/*/{}: {rounds} interleaved rounds of {} round trips per client in {:.1} s",
        case.size_name,
        case.per_block,
        started.elapsed().as_secs_f64()
    );
    for (index, kind) in CLIENTS.into_iter().enumerate() {
        let (q1, rate, q3) = block_quartiles(&blocks[index], |b| b.0);
        let (_, cpu, _) = block_quartiles(&blocks[index], |b| b.1);
        let mut line = format!(
            r#"{{"kind":"rounds","group":"{group}","id":"{}/{}","rate":{rate:.3},"rate_q1":{q1:.3},"rate_q3":{q3:.3},"cpu_ns_per_op":{cpu:.1},"rounds":{rounds},"per_block":{},"concurrency":{},"message_bytes":{}"#,
            kind.name(),
            case.size_name,
            case.per_block,
            case.concurrency,
            case.size,
        );
        if let Some((ticks, wall)) = server_busy[index]
            && wall > 0.0
        {
            let busy = ticks as f64 / TICKS_PER_SEC / wall;
            let _ = write!(line, r#","server_busy":{busy:.3}"#);
        }
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
            "{group}/{}/{}: {rate:.0} msg/s (quartiles {q1:.0}-{q3:.0}), CPU {:.2} µs per \
             message; vs the floor: rate {:.2}x, CPU {:.2}x",
            kind.name(),
            case.size_name,
            cpu / 1e3,
            vs_floor.0,
            vs_floor.1
        );
        extra.line(&line);
    }
}

/// A message of `size` bytes.
fn payload(size: usize) -> Bytes {
    Bytes::from((0..=250u8).cycle().take(size).collect::<Vec<u8>>())
}

// ------------------------------------------------------------ measurement

/// Clock ticks per second in `/proc` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU ticks of process `pid` (`/proc/PID/stat`, fields 14
/// and 15), if it can be read.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces): the first
    // is field 3, so field n is at n - 3.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

// ------------------------------------------------------------------- main

fn main() {
    let Ok(value) = std::env::var(SERVER_VAR) else {
        eprintln!(
            "ws bench: {SERVER_VAR} is not set, nothing to do: run it with \
             `cargo xtask bench ws` (it starts the echo server)"
        );
        return;
    };
    let addr: SocketAddr = value
        .parse()
        .unwrap_or_else(|e| panic!("{SERVER_VAR}={value}: not an address: {e}"));
    let rounds = support::rounds();
    let server_pid = std::env::var(SERVER_PID_VAR)
        .ok()
        .and_then(|p| p.parse::<u32>().ok());

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let mut extra = Extra::from_env();
    let rt = runtime();
    for case in CASES.iter().filter(|case| case.selected()) {
        let mut clients = Clients::open(&rt, addr, case.concurrency);
        if enabled(CRITERION_VAR) {
            criterion_case(&mut c, &rt, &mut clients, case);
        }
        if enabled(ROUNDS_VAR) {
            rounds_case(&mut extra, &rt, &mut clients, case, rounds, server_pid);
        }
        clients.close(&rt);
    }
    drop(rt);
    c.final_summary();
}
