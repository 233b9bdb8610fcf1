//! TCP connect with Happy Eyeballs (RFC 8305): try a host's addresses in
//! turn, starting the next one when the previous failed or has not
//! answered within a short delay, and keep whichever connects first.
//!
//! A host with a broken IPv6 route (or one dead server among several
//! addresses) then costs [`DEFAULT_HAPPY_EYEBALLS_DELAY`] instead of a
//! full TCP timeout, while at most one new attempt starts per delay, so a
//! host with many addresses is not flooded.
//!
//! ```text
//!  addrs ──order (§4)──▶ a1 ──────────x (refused)
//!                         a2 ·········(silent)·········  dropped
//!                               ◀ delay ▶ a3 ──── connected ─▶ winner
//! ```
//!
//! There is no timeout here: the pool applies `conn_timeout` around the
//! whole dial, and dropping the future cancels every attempt.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Sleep;
use tracing::debug;

use crate::Error;

/// Default delay before starting a connection attempt to the next address
/// while the previous one has not answered: 250 ms, the "Connection
/// Attempt Delay" recommended by RFC 8305 §5 (which allows 100 ms to 2 s).
///
/// An attempt that fails outright (connection refused, no route) starts
/// the next one at once; the delay only matters for addresses that stay
/// silent. 250 ms is longer than a TCP handshake to most of the world, so
/// a healthy first address nearly always wins alone, and short enough
/// that a blackholed one is hardly noticed.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// Default idle time before TCP keepalive probes start on a connection:
/// 60 seconds.
///
/// Without keepalive, a connection whose peer vanished (a NAT or firewall
/// forgot the flow, the server's host died) stays "open" until the OS
/// gives up, two hours on Linux, and a request waiting for a slow
/// response on it hangs as long. NAT and load balancer idle timeouts are
/// commonly 60 s to 350 s (AWS NAT gateways: 350 s), so probing after
/// 60 s idle keeps such flows alive and finds dead peers. The probe
/// interval and count stay the OS's.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Socket settings for outgoing TCP connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TcpOptions {
    /// Local address to bind before connecting (aiohttp `local_addr`);
    /// only remote addresses of its family are tried. Default `None`.
    pub(crate) local_addr: Option<IpAddr>,
    /// `TCP_NODELAY`: send small writes at once instead of waiting to
    /// coalesce them (Nagle). Default `true`: an HTTP client writes a
    /// request head and then waits for the answer.
    pub(crate) nodelay: bool,
    /// See [`DEFAULT_HAPPY_EYEBALLS_DELAY`].
    pub(crate) happy_eyeballs_delay: Duration,
    /// Idle time before TCP keepalive probes; `None` leaves keepalive off.
    /// Default `Some(`[`DEFAULT_TCP_KEEPALIVE`]`)`.
    pub(crate) keepalive: Option<Duration>,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            local_addr: None,
            nodelay: true,
            happy_eyeballs_delay: DEFAULT_HAPPY_EYEBALLS_DELAY,
            keepalive: Some(DEFAULT_TCP_KEEPALIVE),
        }
    }
}

/// Connects to the first of `addrs` that accepts, racing them as RFC 8305
/// describes.
///
/// The addresses are ordered by [`interleave`] (alternating families,
/// starting with the family of the first). The first attempt starts at
/// once; each next one starts when the previous attempt failed or after
/// `happy_eyeballs_delay`, whichever comes first. The first connection
/// made wins and the other attempts are dropped (closed).
///
/// # Errors
///
/// When every attempt failed: [`Error::Connect`] with the address and
/// error of the attempt that failed *first in time*, which, because
/// attempts start in order, is the most preferred address unless a later
/// one failed faster. [`Error::Connect`] (with `AddrNotAvailable`) too
/// when `local_addr` is set and no address is of its family;
/// [`Error::InvalidTarget`] when `addrs` is empty.
///
/// # Cancel safety
///
/// Cancel safe: dropping the future closes every socket it opened.
pub(crate) async fn connect(addrs: &[SocketAddr], opts: &TcpOptions) -> Result<TcpStream, Error> {
    let Some(&first) = addrs.first() else {
        return Err(Error::InvalidTarget("no address to connect to".into()));
    };
    let usable: Vec<SocketAddr> = match opts.local_addr {
        Some(local) => addrs
            .iter()
            .copied()
            .filter(|a| a.is_ipv4() == local.is_ipv4())
            .collect(),
        None => addrs.to_vec(),
    };
    if usable.is_empty()
        && let Some(local) = opts.local_addr
    {
        let (ours, theirs) = if local.is_ipv4() {
            ("IPv4", "IPv6")
        } else {
            ("IPv6", "IPv4")
        };
        return Err(Error::Connect {
            addr: first,
            source: io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("local address {local} is {ours}, every address to connect to is {theirs}"),
            ),
        });
    }

    let mut queue = interleave(&usable).into_iter();
    let mut running = Vec::new();
    let mut first_error: Option<(SocketAddr, io::Error)> = None;
    let mut delay: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(opts.happy_eyeballs_delay));

    // `usable` is not empty, so neither is the queue.
    if let Some(addr) = queue.next() {
        debug!(%addr, "connecting");
        running.push((addr, Box::pin(attempt(addr, opts))));
    }
    loop {
        let more = !queue.as_slice().is_empty();
        let event = poll_fn(|cx| {
            for (i, (addr, fut)) in running.iter_mut().enumerate() {
                if let Poll::Ready(result) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Some((i, *addr, result)));
                }
            }
            if more && delay.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match event {
            Some((_, addr, Ok(stream))) => {
                debug!(%addr, "connected");
                return Ok(stream);
            }
            Some((i, addr, Err(error))) => {
                drop(running.remove(i));
                debug!(%addr, %error, "connect failed");
                first_error.get_or_insert((addr, error));
            }
            None => {}
        }
        // A failure or the delay starts the next attempt, if any.
        match queue.next() {
            Some(addr) => {
                debug!(%addr, "connecting");
                running.push((addr, Box::pin(attempt(addr, opts))));
                delay.set(tokio::time::sleep(opts.happy_eyeballs_delay));
            }
            None if running.is_empty() => {
                return Err(match first_error {
                    Some((addr, source)) => Error::Connect { addr, source },
                    // Unreachable: an attempt only leaves `running` by failing.
                    None => Error::InvalidTarget("no address to connect to".into()),
                });
            }
            None => {}
        }
    }
}

/// One connection attempt: a socket with `opts` applied, bound to the
/// local address when one is set, connected to `addr`.
async fn attempt(addr: SocketAddr, opts: &TcpOptions) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = opts.local_addr {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    socket.set_nodelay(opts.nodelay)?;
    if let Some(idle) = opts.keepalive {
        SockRef::from(&socket).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
    }
    socket.connect(addr).await
}

/// Orders addresses as RFC 8305 §4 asks: alternating between the address
/// families, starting with the family of the first address (the
/// resolver's preference), keeping each family's own order. Repeated
/// addresses are tried once.
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let mut unique = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(addr) {
            unique.push(*addr);
        }
    }
    let (preferred, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        unique.iter().partition(|a| a.is_ipv4() == first.is_ipv4());
    let mut ordered = Vec::with_capacity(unique.len());
    let (mut preferred, mut other) = (preferred.into_iter(), other.into_iter());
    loop {
        match (preferred.next(), other.next()) {
            (None, None) => break,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpStream as StdTcpStream};

    use socket2::{Domain, Socket, Type};
    use tokio::net::TcpListener;

    use super::*;

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::new(192, 0, 2, last).into(), port)
    }

    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into(),
            port,
        )
    }

    /// An address that never answers: a listener that never accepts, with
    /// a full accept queue, so the kernel drops further SYNs and connects
    /// hang. Keep the returned value alive while using the address.
    struct Blackhole {
        addr: SocketAddr,
        _listener: Socket,
        _filled: Vec<StdTcpStream>,
    }

    fn blackhole() -> Blackhole {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut filled = Vec::new();
        // Fill the accept queue until a connect hangs (bounded).
        for _ in 0..64 {
            match StdTcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(stream) => filled.push(stream),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Blackhole {
                        addr,
                        _listener: listener,
                        _filled: filled,
                    };
                }
                Err(e) => panic!("filling the blackhole: {e}"),
            }
        }
        panic!("the listener at {addr} kept accepting connections");
    }

    /// A listener that completes handshakes (the kernel does, without
    /// `accept`).
    async fn server() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// An address nothing listens on: connecting is refused at once.
    fn refused() -> SocketAddr {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap()
    }

    fn with_delay(delay: Duration) -> TcpOptions {
        TcpOptions {
            happy_eyeballs_delay: delay,
            ..TcpOptions::default()
        }
    }

    async fn connect_within(addrs: &[SocketAddr], opts: &TcpOptions) -> Result<TcpStream, Error> {
        tokio::time::timeout(Duration::from_secs(10), connect(addrs, opts))
            .await
            .expect("connect hung")
    }

    #[test]
    fn interleave_alternates_families_starting_with_the_first() {
        let addrs = [v6(1, 80), v6(2, 80), v6(3, 80), v4(1, 80), v4(2, 80)];
        assert_eq!(
            interleave(&addrs),
            [v6(1, 80), v4(1, 80), v6(2, 80), v4(2, 80), v6(3, 80)]
        );
        let addrs = [v4(1, 80), v6(1, 80), v6(2, 80), v6(3, 80), v4(2, 80)];
        assert_eq!(
            interleave(&addrs),
            [v4(1, 80), v6(1, 80), v4(2, 80), v6(2, 80), v6(3, 80)]
        );
        let one_family = [v4(3, 80), v4(1, 80), v4(2, 80)];
        assert_eq!(interleave(&one_family), one_family);
        assert_eq!(
            interleave(&[v4(1, 80), v4(1, 80), v6(1, 80)]),
            [v4(1, 80), v6(1, 80)]
        );
        assert!(interleave(&[]).is_empty());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = TcpOptions::default();
        assert_eq!(o.happy_eyeballs_delay, DEFAULT_HAPPY_EYEBALLS_DELAY);
        assert_eq!(o.happy_eyeballs_delay, Duration::from_millis(250));
        assert_eq!(o.keepalive, Some(DEFAULT_TCP_KEEPALIVE));
        assert!(o.nodelay);
        assert_eq!(o.local_addr, None);
    }

    #[test]
    fn blackhole_really_hangs() {
        let hole = blackhole();
        let err =
            StdTcpStream::connect_timeout(&hole.addr, Duration::from_millis(300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn silent_address_falls_back_to_the_next_after_the_delay() {
        let hole = blackhole();
        let (_server, good) = server().await;
        let delay = Duration::from_millis(100);
        let start = std::time::Instant::now();
        let stream = connect_within(&[hole.addr, good], &with_delay(delay))
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(stream.peer_addr().unwrap(), good);
        assert!(took >= delay, "started the second attempt early: {took:?}");
        assert!(
            took < Duration::from_secs(2),
            "fell back too late: {took:?}"
        );
    }

    #[tokio::test]
    async fn at_most_one_new_attempt_per_delay() {
        let (hole1, hole2) = (blackhole(), blackhole());
        let (_server, good) = server().await;
        let delay = Duration::from_millis(100);
        let start = std::time::Instant::now();
        let stream = connect_within(&[hole1.addr, hole2.addr, good], &with_delay(delay))
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(stream.peer_addr().unwrap(), good);
        assert!(took >= 2 * delay, "attempts not staggered: {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn refused_address_moves_on_at_once() {
        let (_server, good) = server().await;
        let start = std::time::Instant::now();
        let opts = with_delay(Duration::from_secs(5));
        let stream = connect_within(&[refused(), good], &opts).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "waited for the delay: {took:?}"
        );
    }

    #[tokio::test]
    async fn first_success_wins_even_while_an_earlier_attempt_hangs() {
        // A fast second address wins although the first is still pending,
        // and the hanging attempt is dropped with the future.
        let hole = blackhole();
        let (_server, good) = server().await;
        let opts = with_delay(Duration::from_millis(10));
        for _ in 0..3 {
            let stream = connect_within(&[hole.addr, good], &opts).await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), good);
        }
    }

    #[tokio::test]
    async fn all_refused_reports_the_first_address() {
        let (a, b) = (refused(), refused());
        match connect_within(&[a, b], &TcpOptions::default()).await {
            Err(Error::Connect { addr, source }) => {
                assert_eq!(addr, a);
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn no_addresses_is_an_error() {
        assert!(matches!(
            connect(&[], &TcpOptions::default()).await,
            Err(Error::InvalidTarget(_))
        ));
    }

    #[tokio::test]
    async fn local_addr_binds_and_filters_the_family() {
        let (_server, good) = server().await;
        let opts = TcpOptions {
            local_addr: Some(Ipv4Addr::LOCALHOST.into()),
            ..TcpOptions::default()
        };
        // The IPv6 address is skipped, not tried and failed.
        let stream = connect_within(&[v6(1, good.port()), good], &opts)
            .await
            .unwrap();
        assert_eq!(stream.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(stream.peer_addr().unwrap(), good);

        let opts = TcpOptions {
            local_addr: Some(Ipv6Addr::LOCALHOST.into()),
            ..TcpOptions::default()
        };
        match connect_within(&[good], &opts).await {
            Err(Error::Connect { addr, source }) => {
                assert_eq!(addr, good);
                assert_eq!(source.kind(), io::ErrorKind::AddrNotAvailable);
                assert_eq!(
                    source.to_string(),
                    "local address ::1 is IPv6, every address to connect to is IPv4"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn socket_options_are_applied() {
        let (_server, good) = server().await;
        let stream = connect_within(&[good], &TcpOptions::default())
            .await
            .unwrap();
        assert!(stream.nodelay().unwrap());
        assert!(SockRef::from(&stream).keepalive().unwrap());
        assert_eq!(
            SockRef::from(&stream).tcp_keepalive_time().unwrap(),
            DEFAULT_TCP_KEEPALIVE
        );

        let opts = TcpOptions {
            nodelay: false,
            keepalive: None,
            ..TcpOptions::default()
        };
        let stream = connect_within(&[good], &opts).await.unwrap();
        assert!(!stream.nodelay().unwrap());
        assert!(!SockRef::from(&stream).keepalive().unwrap());
    }

    #[tokio::test]
    async fn ipv6_loopback_when_available() {
        let Ok(listener) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await else {
            return; // no IPv6 here
        };
        let good6 = listener.local_addr().unwrap();
        // A refused IPv4 address first, then the IPv6 one.
        let stream = connect_within(&[refused(), good6], &TcpOptions::default())
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good6);
    }
}
