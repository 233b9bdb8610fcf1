//! Criterion benchmarks of getting a connection: from the pool, and new over
//! loopback (TCP, and TCP + TLS), each beside a floor and hyper in one run.
//!
//! Every server runs in this process, on `127.0.0.1:0`, on a runtime of its
//! own thread; the clients run on a current-thread runtime on the bench
//! thread, and each benchmark times a loop of `iters` operations inside one
//! `block_on` (`iter_custom`). Nothing here needs the real peers.
//!
//! * `pool_acquire_release`: take the one idle connection to an endpoint and
//!   give it back, the server holding the socket open.
//!   - `courier/keepalive`: [`Connector::connect`] on a [`TcpConnector`] with
//!     the connection idle, `set_reusable(true)`, `release()`.
//!   - `floor/mutex_vec`: the least a pool can do: a
//!     `std::sync::Mutex<Vec<TcpStream>>` pop under the lock and a push under
//!     it again, plus the liveness probe courier makes before handing an idle
//!     connection out (one `poll_read` into a 1-byte buffer with a no-op
//!     waker, `Pending` meaning quiet), so the two differ by the pool's
//!     bookkeeping alone.
//!   - `hyper/legacy_pool`: hyper-util's legacy client pool
//!     (`hyper_util::client::legacy::pool`, public but doc-hidden), the one
//!     `hyper_util::client::legacy::Client` (and so reqwest) keys by
//!     `(Scheme, Authority)`: `checkout(key)` awaited, then the `Pooled`
//!     guard dropped, which puts it back. It is configured as the client's
//!     defaults (90 s idle timeout, no per-host cap, tokio executor and
//!     timer). Its `Poolable::is_open` here is one `poll_read_ready` with a
//!     no-op waker (the same readiness check courier's probe starts with);
//!     the pool calls it twice per cycle (on return and on checkout). In the
//!     real client `is_open` asks the dispatch channel instead, and a
//!     background task per connection watches the socket: that task's cost
//!     is not in this number.
//! * `connect_tcp`: a new TCP connection per iteration, closed at once; the
//!   server accepts, waits for the client's FIN and resets (zero linger), so
//!   neither side keeps TIME_WAIT sockets through many thousand connects.
//!   The client waits, off the clock, whenever it is [`MAX_AHEAD`] connects
//!   ahead of the server's accepts, so the listen queue never overflows
//!   into one-second SYN retransmissions (a warning is printed if the
//!   kernel counted any during a group).
//!   - `courier/tcp`: a `force_close(true)` [`TcpConnector`] on
//!     `http://127.0.0.1:port`: DNS skipped for the literal, Happy Eyeballs
//!     over one address, `TCP_NODELAY` and TCP keepalive set, the pool's
//!     slot and `conn_timeout`, then `close()`.
//!   - `floor/tokio`: `tokio::net::TcpStream::connect` + `set_nodelay`.
//!   - `hyper/http_connector`: hyper-util's `HttpConnector` as a tower
//!     `Service<Uri>`, with `TCP_NODELAY` and the same 60 s TCP keepalive
//!     courier sets by default.
//! * `connect_tls`: the same plus a full TLS 1.3 handshake (rustls, ring,
//!   ECDSA P-256 leaf signed by a CA made at start, verified against that CA
//!   by every client; the server sends no session tickets and every client
//!   has resumption off, so each iteration is a full handshake). All clients
//!   share one rustls `ClientConfig` (ALPN `http/1.1`, as courier sets).
//!   - `courier/tls`: as `courier/tcp` with `https`, the config passed with
//!     `ssl_context`.
//!   - `floor/tokio_rustls`: bare `TcpStream` + `tokio_rustls::TlsConnector`.
//!   - `hyper/https_connector`: hyper-rustls's `HttpsConnector` over the
//!     `HttpConnector` above, made from the same config.
//!
//!   The server's half of the handshake is in every iteration's time, which
//!   pulls the ratios of this group toward 1.
//!
//! `cargo xtask bench` turns the results into courier/floor and
//! courier/hyper ratio tables. Timing is short (about 45 s for the whole
//! target on two cores); `--warm-up-time`, `--measurement-time` and
//! `--sample-size` on the command line override it.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use courier_pool::{Connector, Scheme, Target, TcpConnector};
use criterion::{BenchmarkId, Criterion, criterion_main};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::pool::{self as hyper_pool, Poolable, Reservation};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tower_service::Service;

/// TCP keepalive idle time courier sets by default, given to hyper too.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// What a test server does with each connection it accepts.
#[derive(Clone)]
enum Behaviour {
    /// Keeps it open, never reading (the pool benchmarks).
    Hold,
    /// Closes it once the client has.
    Close,
    /// Completes a TLS handshake, then closes it.
    Tls(tokio_rustls::TlsAcceptor),
}

/// A loopback server on a thread and runtime of its own; stops when dropped.
struct Server {
    addr: SocketAddr,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// Connections the client started so far ([`timed_paced`]).
    connects: AtomicUsize,
    /// Server-side TLS handshakes that failed.
    failed: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        let listener = rt
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let counts = (Arc::clone(&accepted), Arc::clone(&failed));
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        () = serve(listener, behaviour, counts.0, counts.1) => {}
                    }
                });
            })
            .expect("server thread");
        Server {
            addr,
            accepted,
            connects: AtomicUsize::new(0),
            failed,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    behaviour: Behaviour,
    accepted: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let mut held = Vec::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // EMFILE and the like: try again rather than stop serving.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        match &behaviour {
            Behaviour::Hold => held.push(stream),
            Behaviour::Close => {
                tokio::spawn(close_after_client(stream));
            }
            Behaviour::Tls(acceptor) => {
                let accept = acceptor.accept(stream);
                let failed = Arc::clone(&failed);
                tokio::spawn(async move {
                    match accept.await {
                        Ok(tls) => close_after_client(tls.into_inner().0).await,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    }
}

/// Waits for the client to close, then closes with a reset (zero linger).
///
/// The client closes first but never receives a FIN, and the server leaves
/// by reset: no TIME_WAIT socket on either side, so a run of many thousand
/// connects cannot run out of ephemeral ports. Resetting at once instead
/// would race the client's connect, which then fails with ECONNRESET.
async fn close_after_client(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// A CA, a leaf for `127.0.0.1` signed by it, and the server and client
/// configurations made from them (TLS 1.3 only, ring, no resumption).
struct Tls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl Tls {
    fn new() -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "courier bench CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");

        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("server certificate");
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        server.send_tls13_tickets = 0;

        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).expect("CA as trust anchor");
        let client = client_config(provider, roots);
        Tls {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }
}

/// The one client configuration every TLS client here uses.
fn client_config(provider: Arc<CryptoProvider>, roots: RootCertStore) -> ClientConfig {
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = Resumption::disabled();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    client
}

/// The client runtime: one thread, the bench's.
fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

/// Times `iters` runs of `op` inside one `block_on`.
fn timed(rt: &Runtime, iters: u64, mut op: impl AsyncFnMut()) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        start.elapsed()
    })
}

/// How many connections the client may open ahead of the server's accepts.
///
/// On loopback a connect completes in the kernel before the server accepts,
/// so a client faster than the server's accept loop (two shared cores)
/// fills the listen queue, and the next SYN is dropped and resent a second
/// later: one such stall outweighs thousands of connects. Here, 300 000
/// bare tokio connects let run up to 256 ahead stalled 7 or 8 times (with
/// barely over 128 ahead, well under the 1024 backlog); capped at 128 or
/// 32, never.
const MAX_AHEAD: usize = 32;

/// [`timed`] for one new connection per `op`: when the client is
/// [`MAX_AHEAD`] connections ahead of `server`'s accepts, it waits, off
/// the clock, until the server has caught up by half.
fn timed_paced(rt: &Runtime, iters: u64, server: &Server, mut op: impl AsyncFnMut()) -> Duration {
    // Connections still queued from the previous call count too.
    let ahead = || {
        server
            .connects
            .load(Ordering::Relaxed)
            .saturating_sub(server.accepted.load(Ordering::Acquire))
    };
    rt.block_on(async {
        let mut paused = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..iters {
            if ahead() >= MAX_AHEAD {
                let wait = Instant::now();
                while ahead() > MAX_AHEAD / 2 {
                    std::thread::yield_now();
                }
                paused += wait.elapsed();
            }
            server.connects.fetch_add(1, Ordering::Relaxed);
            op().await;
        }
        start.elapsed().saturating_sub(paused)
    })
}

/// The kernel's (system-wide) count of listen queue overflows and SYN
/// retransmissions, from `/proc/net/netstat` (Linux; `None` elsewhere).
fn syn_trouble() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let sum = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .filter(|(name, _)| matches!(*name, "ListenOverflows" | "TCPSynRetrans"))
            .filter_map(|(_, value)| value.parse::<u64>().ok())
            .sum();
        return Some(sum);
    }
    None
}

/// Warns when SYNs were dropped or resent while `group` ran: its times
/// then hold one-second stalls (the count is system-wide).
fn warn_on_syn_trouble(group: &str, before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, syn_trouble())
        && after > before
    {
        eprintln!(
            "{group}: {} listen overflows or SYN retransmissions on this machine during \
             the group: its times may hold one-second stalls",
            after - before
        );
    }
}

/// A courier connector whose TLS uses `tls` (no platform roots loaded).
fn courier_connector(tls: &Tls, force_close: bool) -> TcpConnector {
    TcpConnector::builder()
        .force_close(force_close)
        .ssl_context(Arc::clone(&tls.client))
        .build()
        .expect("courier connector")
}

/// hyper-util's `HttpConnector`, with courier's socket options.
fn hyper_http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http
}

/// Calls a tower service once it is ready.
async fn call<S, R>(svc: &mut S, req: R) -> S::Response
where
    S: Service<R>,
    S::Error: std::fmt::Debug,
{
    poll_fn(|cx| svc.poll_ready(cx)).await.expect("ready");
    svc.call(req).await.expect("connect")
}

/// courier's idle probe: one `poll_read` into a 1-byte buffer with a no-op
/// waker; `Pending` means nothing happened and the stream is fit to reuse.
fn probe_quiet<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}

/// An idle TCP connection in hyper-util's legacy pool.
struct HyperIdle(TcpStream);

impl Poolable for HyperIdle {
    fn is_open(&self) -> bool {
        // Readable (bytes or EOF) means unfit, as courier's probe decides.
        let mut cx = Context::from_waker(Waker::noop());
        self.0.poll_read_ready(&mut cx).is_pending()
    }

    fn reserve(self) -> Reservation<Self> {
        Reservation::Unique(self)
    }

    fn can_share(&self) -> bool {
        false
    }
}

/// The key hyper-util's legacy client uses.
type HyperKey = (http::uri::Scheme, http::uri::Authority);

fn bench_pool(c: &mut Criterion, rt: &Runtime, tls: &Tls) {
    let server = Server::start(Behaviour::Hold);
    let addr = server.addr;
    let mut group = c.benchmark_group("pool_acquire_release");

    // courier: one connection dialed, then reused every iteration.
    let connector = courier_connector(tls, false);
    let target = Target::new(Scheme::Http, "127.0.0.1", addr.port()).expect("target");
    rt.block_on(async {
        let mut conn = connector.connect(&target).await.expect("dial");
        conn.set_reusable(true);
        conn.release();
        // Let the server register the connection before it is probed.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut conn = connector.connect(&target).await.expect("reuse");
        assert!(conn.is_reused(), "the idle connection was not reused");
        conn.set_reusable(true);
        conn.release();
    });
    group.bench_function(BenchmarkId::new("courier", "keepalive"), |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, async || {
                let mut conn = connector.connect(&target).await.expect("connect");
                conn.set_reusable(true);
                conn.release();
            })
        });
    });
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle), (1, 1), "courier dialed again");

    // The floor: a mutex around a vector, with courier's probe.
    let idle: Mutex<Vec<TcpStream>> = Mutex::new(vec![
        rt.block_on(TcpStream::connect(addr))
            .expect("floor connect"),
    ]);
    group.bench_function(BenchmarkId::new("floor", "mutex_vec"), |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, async || {
                let stream = {
                    let mut idle = idle.lock().expect("lock");
                    let mut stream = idle.pop().expect("an idle connection");
                    assert!(probe_quiet(&mut stream), "idle connection not quiet");
                    stream
                };
                idle.lock().expect("lock").push(stream);
            })
        });
    });

    // hyper-util's legacy pool, keyed as its client keys it.
    let pool: hyper_pool::Pool<HyperIdle, HyperKey> = hyper_pool::Pool::new(
        hyper_pool::Config {
            idle_timeout: Some(Duration::from_secs(90)),
            max_idle_per_host: usize::MAX,
        },
        TokioExecutor::new(),
        Some(TokioTimer::new()),
    );
    let key: HyperKey = (
        http::uri::Scheme::HTTP,
        addr.to_string().parse().expect("authority"),
    );
    rt.block_on(async {
        let stream = TcpStream::connect(addr).await.expect("hyper pool connect");
        let connecting = pool
            .connecting(&key, hyper_pool::Ver::Auto)
            .expect("connecting");
        drop(pool.pooled(connecting, HyperIdle(stream)));
    });
    group.bench_function(BenchmarkId::new("hyper", "legacy_pool"), |b| {
        b.iter_custom(|iters| {
            timed(rt, iters, async || {
                let pooled = pool.checkout(key.clone()).await.expect("checkout");
                drop(pooled);
            })
        });
    });
    group.finish();
    // Every pool kept its one connection: no dial during the measurements.
    assert_eq!(
        server.accepted.load(Ordering::Relaxed),
        3,
        "a pool dialed again"
    );
}

fn bench_connect_tcp(c: &mut Criterion, rt: &Runtime, tls: &Tls) {
    let server = Server::start(Behaviour::Close);
    let addr = server.addr;
    let trouble = syn_trouble();
    let mut group = c.benchmark_group("connect_tcp");

    let connector = courier_connector(tls, true);
    let target = Target::new(Scheme::Http, "127.0.0.1", addr.port()).expect("target");
    group.bench_function(BenchmarkId::new("courier", "tcp"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                let mut conn = connector.connect(&target).await.expect("connect");
                conn.close();
            })
        });
    });
    assert_eq!(connector.stats().open, 0, "force_close kept a connection");

    group.bench_function(BenchmarkId::new("floor", "tokio"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                let stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                drop(stream);
            })
        });
    });

    let mut http = hyper_http_connector();
    let uri: http::Uri = format!("http://{addr}/").parse().expect("uri");
    group.bench_function(BenchmarkId::new("hyper", "http_connector"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                drop(call(&mut http, uri.clone()).await);
            })
        });
    });
    group.finish();
    warn_on_syn_trouble("connect_tcp", trouble);
}

fn bench_connect_tls(c: &mut Criterion, rt: &Runtime, tls: &Tls) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
    let server = Server::start(Behaviour::Tls(acceptor));
    let addr = server.addr;
    let trouble = syn_trouble();
    let mut group = c.benchmark_group("connect_tls");

    let connector = courier_connector(tls, true);
    let target = Target::new(Scheme::Https, "127.0.0.1", addr.port()).expect("target");
    group.bench_function(BenchmarkId::new("courier", "tls"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                let mut conn = connector.connect(&target).await.expect("connect");
                conn.close();
            })
        });
    });

    let floor = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client));
    let name = ServerName::IpAddress(addr.ip().into());
    group.bench_function(BenchmarkId::new("floor", "tokio_rustls"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                let tcp = TcpStream::connect(addr).await.expect("connect");
                tcp.set_nodelay(true).expect("nodelay");
                let stream = floor.connect(name.clone(), tcp).await.expect("handshake");
                drop(stream);
            })
        });
    });

    let mut http = hyper_http_connector();
    http.enforce_http(false);
    let mut https = HttpsConnector::from((http, Arc::clone(&tls.client)));
    let uri: http::Uri = format!("https://{addr}/").parse().expect("uri");
    group.bench_function(BenchmarkId::new("hyper", "https_connector"), |b| {
        b.iter_custom(|iters| {
            timed_paced(rt, iters, &server, async || {
                drop(call(&mut https, uri.clone()).await);
            })
        });
    });
    group.finish();
    warn_on_syn_trouble("connect_tls", trouble);

    // Handshakes the server failed would have made its work cheaper.
    let failed = server.failed.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!(
            "connect_tls: {failed} of {} server handshakes failed",
            server.accepted.load(Ordering::Relaxed)
        );
    }
}

/// Short runs: 9 benchmarks at about 5 s each.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Runs every group with [`config`], overridden by the command line.
///
/// Written out rather than with `criterion_group!`, whose function has no
/// doc comment for the workspace's `missing_docs` lint.
fn benches() {
    let mut c = config().configure_from_args();
    let rt = client_runtime();
    let tls = Tls::new();
    bench_pool(&mut c, &rt, &tls);
    bench_connect_tcp(&mut c, &rt, &tls);
    bench_connect_tls(&mut c, &rt, &tls);
}

criterion_main!(benches);
