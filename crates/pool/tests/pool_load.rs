//! The pool under load and its rules over real TCP, against a small
//! HTTP/1.1 server started in each test (listeners on 127.0.0.1:0) that
//! counts, from its side of the sockets, the connections open and the
//! requests in flight.
//!
//! What the server counts:
//!
//! * **requests in flight**: from reading a request head until just
//!   *before* writing its response. A client slot frees only after the
//!   response was read, so this count can never exceed the pool's limits:
//!   it is checked exactly, at every request.
//! * **open connections**: +1 on accept, -1 on EOF. The server may see a
//!   client's close a little after that client's next connect (the pool
//!   closed one connection to open another), so a count over a limit is
//!   only a violation if it does not settle back within [`SETTLE`].
//!
//! No peers needed. Every wait is bounded; time bounds are generous
//! behavioural ones, never speed measurements.
//!
//! Built only with a crypto provider feature (`ring` or `aws-lc-rs`): a
//! `TcpConnector` builds its TLS configuration even for plain HTTP, and
//! without a provider none can be made.

#![cfg(any(feature = "ring", feature = "aws-lc-rs"))]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{LIMIT, fetch, get, target};
use courier_pool::{Connector, TcpConnector, TcpConnectorBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long an open-connection count over a limit may take to settle.
const SETTLE: Duration = Duration::from_secs(2);
/// Polling step of every bounded wait here.
const POLL: Duration = Duration::from_millis(5);
/// How long the server holds a request to `/slow`.
const SLOW: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// The counting server

/// What the server does besides answering.
#[derive(Debug, Clone, Copy, Default)]
struct Behaviour {
    /// Limits to check (total, per listener); `None` checks nothing.
    limits: Option<(usize, usize)>,
    /// Hold every request this long (after counting it in flight), so that
    /// concurrent requests overlap at the server.
    hold: Duration,
    /// Close each connection right after its first response, without
    /// saying so (no `Connection: close`).
    close_after_response: bool,
    /// Write bytes nobody asked for on the connection this long after each
    /// response.
    stray_after: Option<Duration>,
}

#[derive(Debug, Default)]
struct Counts {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    open: AtomicUsize,
    closed: AtomicUsize,
    requests: AtomicUsize,
    strays: AtomicUsize,
    /// Checks of an over-limit open count still waiting to settle.
    settling: AtomicUsize,
    /// Accepts that found an open count over a limit (settled or not).
    over_limit: AtomicUsize,
    /// The longest time such a count took to settle, in microseconds.
    max_settle_us: AtomicUsize,
    per: Vec<PerListener>,
    violations: Mutex<Vec<String>>,
}

#[derive(Debug, Default)]
struct PerListener {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    open: AtomicUsize,
    accepted: AtomicUsize,
}

impl Counts {
    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    fn request_started(&self, idx: usize, limits: Option<(usize, usize)>) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let total = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mine = self.per[idx].in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(total, Ordering::SeqCst);
        self.per[idx]
            .max_in_flight
            .fetch_max(mine, Ordering::SeqCst);
        if let Some((limit, per_host)) = limits {
            if total > limit {
                self.violation(format!("{total} requests in flight (limit {limit})"));
            }
            if mine > per_host {
                self.violation(format!(
                    "{mine} requests in flight to listener {idx} (limit {per_host})"
                ));
            }
        }
    }

    fn request_finished(&self, idx: usize) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.per[idx].in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether the open counts are within `limits` now.
    fn open_within(&self, idx: usize, (limit, per_host): (usize, usize)) -> bool {
        self.open.load(Ordering::SeqCst) <= limit
            && self.per[idx].open.load(Ordering::SeqCst) <= per_host
    }

    fn opened(self: &Arc<Self>, idx: usize, limits: Option<(usize, usize)>) {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.per[idx].open.fetch_add(1, Ordering::SeqCst);
        self.per[idx].accepted.fetch_add(1, Ordering::SeqCst);
        let Some(limits) = limits else { return };
        if self.open_within(idx, limits) {
            return;
        }
        // Over a limit: a violation only if it does not settle.
        self.over_limit.fetch_add(1, Ordering::SeqCst);
        self.settling.fetch_add(1, Ordering::SeqCst);
        let counts = Arc::clone(self);
        tokio::spawn(async move {
            let start = Instant::now();
            while !counts.open_within(idx, limits) {
                if start.elapsed() > SETTLE {
                    let (total, mine) = (
                        counts.open.load(Ordering::SeqCst),
                        counts.per[idx].open.load(Ordering::SeqCst),
                    );
                    counts.violation(format!(
                        "{total} connections open ({mine} to listener {idx}) for over \
                         {SETTLE:?}; limits {limits:?}"
                    ));
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            let took = usize::try_from(start.elapsed().as_micros()).unwrap_or(usize::MAX);
            counts.max_settle_us.fetch_max(took, Ordering::SeqCst);
            counts.settling.fetch_sub(1, Ordering::SeqCst);
        });
    }

    fn closed(&self, idx: usize) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        self.per[idx].open.fetch_sub(1, Ordering::SeqCst);
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// The server: `n` listeners answering `GET <path>` with `200` and the
/// body `ok <path>` (with `Content-Length`, kept alive). `/slow...` is held
/// [`SLOW`]; `/partial...` gets 10 of 1000 announced body bytes and nothing
/// more.
struct Server {
    addrs: Vec<SocketAddr>,
    counts: Arc<Counts>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    async fn start(n: usize, behaviour: Behaviour) -> Self {
        let counts = Arc::new(Counts {
            per: (0..n).map(|_| PerListener::default()).collect(),
            ..Counts::default()
        });
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for idx in 0..n {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            let counts = Arc::clone(&counts);
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    counts.opened(idx, behaviour.limits);
                    tokio::spawn(serve(stream, idx, behaviour, Arc::clone(&counts)));
                }
            }));
        }
        Self {
            addrs,
            counts,
            tasks,
        }
    }

    fn url(&self, idx: usize, path: &str) -> String {
        format!("http://{}{path}", self.addrs[idx])
    }

    fn open(&self) -> usize {
        self.counts.open.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.counts.closed.load(Ordering::SeqCst)
    }

    fn accepted(&self, idx: usize) -> usize {
        self.counts.per[idx].accepted.load(Ordering::SeqCst)
    }

    fn in_flight(&self) -> usize {
        self.counts.in_flight.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until the over-limit checks have settled, then
    /// returns the violations seen.
    async fn violations(&self) -> Vec<String> {
        wait_until("limit checks to settle", || {
            self.counts.settling.load(Ordering::SeqCst) == 0
        })
        .await;
        self.counts.violations.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves one connection until the client closes it (or the behaviour
/// closes it first).
async fn serve(mut stream: TcpStream, idx: usize, behaviour: Behaviour, counts: Arc<Counts>) {
    let mut buf = Vec::new();
    while let Some(path) = read_request(&mut stream, &mut buf).await {
        counts.request_started(idx, behaviour.limits);
        if !behaviour.hold.is_zero() {
            tokio::time::sleep(behaviour.hold).await;
        }
        if path.starts_with("/slow") {
            tokio::time::sleep(SLOW).await;
        }
        // Out of flight before the response leaves: the client can only
        // reuse its slot after reading it.
        counts.request_finished(idx);
        let response = if path.starts_with("/partial") {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789".to_vec()
        } else {
            let body = format!("ok {path}");
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        if stream.write_all(&response).await.is_err() {
            break;
        }
        if behaviour.close_after_response {
            break;
        }
        if let Some(after) = behaviour.stray_after {
            tokio::time::sleep(after).await;
            if stream.write_all(b"surprise").await.is_err() {
                break;
            }
            counts.strays.fetch_add(1, Ordering::SeqCst);
        }
    }
    drop(stream);
    counts.closed(idx);
}

/// Reads one request head (no body: every request here is a GET) and
/// returns its path; `None` at EOF or on an error.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            let line = String::from_utf8_lossy(&head);
            return Some(line.split(' ').nth(1).unwrap_or("/").to_owned());
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Polls `done` every [`POLL`] for at most [`LIMIT`]; panics naming `what`
/// if it never holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Asserts that a `connect` is still waiting for room after a moment.
async fn assert_queued<F: std::future::Future + Unpin>(connect: &mut F) {
    let waited = tokio::time::timeout(Duration::from_millis(20), connect).await;
    assert!(waited.is_err(), "the connect should be queued, not served");
}

fn connector(builder: TcpConnectorBuilder) -> Arc<TcpConnector> {
    Arc::new(builder.build().unwrap())
}

// ---------------------------------------------------------------------------
// Load

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 256;
const LIMIT_TOTAL: usize = 10;
const LIMIT_PER_HOST: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_requests_at_256_concurrency_respect_the_limits() {
    let started = Instant::now();
    let server = Arc::new(
        Server::start(
            3,
            Behaviour {
                limits: Some((LIMIT_TOTAL, LIMIT_PER_HOST)),
                // Enough for requests to overlap at the server.
                hold: Duration::from_millis(1),
                ..Behaviour::default()
            },
        )
        .await,
    );
    let connector = connector(
        TcpConnector::builder()
            .limit(Some(LIMIT_TOTAL))
            .limit_per_host(Some(LIMIT_PER_HOST)),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (server, connector, next) = (server.clone(), connector.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= REQUESTS {
                    return answered;
                }
                let path = format!("/r/{i}");
                let url = server.url(i % 3, &path);
                let (response, _) = fetch(&*connector, &url)
                    .await
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
                assert_eq!(response.status, 200, "{url}");
                assert_eq!(response.text(), format!("ok {path}"), "{url}");
                answered += 1;
            }
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the load did not finish within 120 s")
            .unwrap();
    }
    assert_eq!(answered, REQUESTS);
    assert_eq!(server.counts.requests.load(Ordering::SeqCst), REQUESTS);

    let violations = server.violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
    // The limits were reached, not avoided: more in flight at once than one
    // endpoint's share, and every endpoint used its own share.
    let max_total = server.counts.max_in_flight.load(Ordering::SeqCst);
    let max_per: Vec<usize> = (server.counts.per.iter())
        .map(|p| p.max_in_flight.load(Ordering::SeqCst))
        .collect();
    eprintln!(
        "load: {REQUESTS} requests in {:?}; most in flight {max_total} (per listener {max_per:?}); \
         connections accepted {:?}, of which {} found a count over a limit that settled within {} µs",
        started.elapsed(),
        (0..3).map(|i| server.accepted(i)).collect::<Vec<_>>(),
        server.counts.over_limit.load(Ordering::SeqCst),
        server.counts.max_settle_us.load(Ordering::SeqCst),
    );
    assert!(
        max_total > LIMIT_PER_HOST,
        "at most {max_total} requests in flight at once"
    );
    assert!(max_per.iter().all(|&m| m >= 2), "{max_per:?}");

    let stats = connector.stats();
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(
        stats.open, stats.idle,
        "every connection is back: {stats:?}"
    );
    assert!(stats.open <= LIMIT_TOTAL, "{stats:?}");

    connector.close();
    assert_eq!(connector.stats().open, 0);
    wait_until("the server to see every connection closed", || {
        server.open() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_and_cancelled_requests_leave_no_count_behind() {
    let server = Arc::new(Server::start(3, Behaviour::default()).await);
    let connector = connector(
        TcpConnector::builder()
            .limit(Some(LIMIT_TOTAL))
            .limit_per_host(Some(LIMIT_PER_HOST)),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (server, connector, next) = (server.clone(), connector.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 600 {
                    return answered;
                }
                let idx = i % 3;
                match i % 5 {
                    // Cancelled while the server holds the request.
                    0 => {
                        let url = server.url(idx, "/slow");
                        let cancelled = tokio::time::timeout(
                            Duration::from_millis(50),
                            fetch(&*connector, &url),
                        );
                        assert!(cancelled.await.is_err(), "{url} answered within 50 ms");
                    }
                    // Dropped in the middle of the response body.
                    1 => {
                        let url = server.url(idx, "/partial");
                        let mut conn = connector.connect(&target(&url)).await.unwrap();
                        let head = format!(
                            "GET /partial HTTP/1.1\r\nHost: {}\r\n\r\n",
                            server.addrs[idx]
                        );
                        conn.write_all(head.as_bytes()).await.unwrap();
                        let mut byte = [0u8; 1];
                        let n = tokio::time::timeout(LIMIT, conn.read(&mut byte))
                            .await
                            .unwrap();
                        assert_eq!(n.unwrap(), 1);
                        drop(conn);
                    }
                    // Cancelled at any point: waiting for room, dialing, or mid-exchange.
                    2 => {
                        let url = server.url(idx, &format!("/r/{i}"));
                        let _ = tokio::time::timeout(
                            Duration::from_millis(1),
                            fetch(&*connector, &url),
                        )
                        .await;
                    }
                    _ => {
                        let path = format!("/r/{i}");
                        let url = server.url(idx, &path);
                        let (response, _) = fetch(&*connector, &url)
                            .await
                            .unwrap_or_else(|e| panic!("{url}: {e}"));
                        assert_eq!(response.text(), format!("ok {path}"));
                        answered += 1;
                    }
                }
            }
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the mix did not finish within 120 s")
            .unwrap();
    }
    assert_eq!(answered, 240);

    let stats = connector.stats();
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.open, stats.idle, "{stats:?}");
    connector.close();
    assert_eq!(connector.stats().open, 0);
    wait_until("the server to see every connection closed", || {
        server.open() == 0
    })
    .await;
    wait_until("no request in flight", || server.in_flight() == 0).await;
}

// ---------------------------------------------------------------------------
// Pool rules over real TCP

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_keepalive_timeout() {
    let server = Server::start(1, Behaviour::default()).await;
    let connector =
        connector(TcpConnector::builder().keepalive_timeout(Duration::from_millis(200)));
    let (_, reused) = fetch(&*connector, &server.url(0, "/a")).await.unwrap();
    assert!(!reused);
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle), (1, 1));
    assert_eq!(server.open(), 1);

    tokio::time::sleep(Duration::from_millis(400)).await;
    wait_until("the server to see the idle connection closed", || {
        server.open() == 0
    })
    .await;
    assert_eq!(connector.stats().open, 0);
    assert_eq!(server.closed(), 1);
}

#[tokio::test]
async fn force_close_closes_after_each_response() {
    let server = Server::start(1, Behaviour::default()).await;
    let connector = connector(TcpConnector::builder().force_close(true));
    for round in 1..=2 {
        let (response, reused) = fetch(&*connector, &server.url(0, "/a")).await.unwrap();
        assert!(!response.must_close, "the server would keep it");
        assert!(!reused, "round {round}");
        assert_eq!(connector.stats().open, 0);
        wait_until("the server to see the close", || server.closed() == round).await;
    }
    assert_eq!(server.accepted(0), 2);
}

#[tokio::test]
async fn a_connection_past_its_max_lifetime_is_not_reused() {
    let server = Server::start(1, Behaviour::default()).await;
    let connector = connector(TcpConnector::builder().max_lifetime(Duration::from_millis(300)));
    let url = server.url(0, "/a");
    assert!(!fetch(&*connector, &url).await.unwrap().1);
    assert!(fetch(&*connector, &url).await.unwrap().1, "young: reused");
    // Idle for far less than the keep-alive timeout (4 s), but old.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (response, reused) = fetch(&*connector, &url).await.unwrap();
    assert_eq!(response.text(), "ok /a");
    assert!(!reused, "a connection older than max_lifetime was reused");
    assert_eq!(server.accepted(0), 2);
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_not_reused() {
    let server = Server::start(
        1,
        Behaviour {
            close_after_response: true,
            ..Behaviour::default()
        },
    )
    .await;
    let connector = connector(TcpConnector::builder());
    let url = server.url(0, "/a");
    let (response, _) = fetch(&*connector, &url).await.unwrap();
    assert!(!response.must_close, "the close is not announced");
    assert_eq!(connector.stats().idle, 1, "so the connection is kept");
    wait_until("the server to close", || server.closed() == 1).await;
    // A generous moment for the FIN to reach the client's socket.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (response, reused) = fetch(&*connector, &url).await.unwrap();
    assert!(!reused, "the dead connection was reused");
    assert_eq!(response.text(), "ok /a");
    assert_eq!(server.accepted(0), 2);
}

#[tokio::test]
async fn an_idle_connection_that_received_stray_bytes_is_not_reused() {
    let server = Server::start(
        1,
        Behaviour {
            stray_after: Some(Duration::from_millis(20)),
            ..Behaviour::default()
        },
    )
    .await;
    let connector = connector(TcpConnector::builder());
    let url = server.url(0, "/a");
    fetch(&*connector, &url).await.unwrap();
    assert_eq!(connector.stats().idle, 1);
    wait_until("the stray bytes to be written", || {
        server.counts.strays.load(Ordering::SeqCst) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (response, reused) = fetch(&*connector, &url).await.unwrap();
    assert!(!reused, "a connection with unread bytes was reused");
    assert_eq!(
        response.text(),
        "ok /a",
        "the stray bytes were not read as the answer"
    );
    assert_eq!(server.accepted(0), 2);
    wait_until("the poisoned connection to be closed", || {
        server.closed() >= 1
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_waiter_gives_its_place_back() {
    let server = Server::start(1, Behaviour::default()).await;
    let connector = connector(TcpConnector::builder().limit(Some(1)));
    let url = server.url(0, "/a");
    let t = target(&url);
    let mut held = connector.connect(&t).await.unwrap();

    // First in line, then cancelled.
    let mut first = Box::pin(connector.connect(&t));
    assert_queued(&mut first).await;
    // Second in line, in its own task.
    let second = {
        let (connector, t) = (connector.clone(), t.clone());
        tokio::spawn(async move {
            let mut conn = connector.connect(&t).await?;
            let reused = conn.is_reused();
            let response = get(&mut conn, &format!("http://{}/b", t.authority())).await;
            conn.release();
            Ok::<_, common::BoxError>((reused, response?.text()))
        })
    };
    wait_until("two waiters", || connector.stats().waiting == 2).await;
    drop(first);
    assert_eq!(
        connector.stats().waiting,
        1,
        "the cancelled waiter left the queue"
    );

    let response = get(&mut held, &url).await.unwrap();
    assert_eq!(response.text(), "ok /a");
    held.release();
    let (reused, text) = tokio::time::timeout(LIMIT, second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(reused, "the released connection went to the next waiter");
    assert_eq!(text, "ok /b");
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle, stats.waiting), (1, 1, 0));
    assert_eq!(server.accepted(0), 1);
}

/// A connection released while a waiter is queued is handed to it at once;
/// if that waiter is cancelled before it runs again, the connection should
/// go back to the idle list: it is healthy and nobody used it.
#[tokio::test]
async fn a_waiter_cancelled_after_being_handed_a_kept_connection_returns_it() {
    let server = Server::start(1, Behaviour::default()).await;
    let connector = connector(TcpConnector::builder().limit(Some(1)));
    let url = server.url(0, "/a");
    let t = target(&url);
    let mut held = connector.connect(&t).await.unwrap();
    let mut waiter = Box::pin(connector.connect(&t));
    assert_queued(&mut waiter).await;
    get(&mut held, &url).await.unwrap();
    held.release(); // handed to the waiter...
    drop(waiter); // ...which is cancelled before it runs again
    let stats = connector.stats();
    assert_eq!(
        (stats.open, stats.idle, stats.waiting),
        (1, 1, 0),
        "the connection was lost"
    );
    let (_, reused) = fetch(&*connector, &url).await.unwrap();
    assert!(reused);
    assert_eq!(server.accepted(0), 1);
}
