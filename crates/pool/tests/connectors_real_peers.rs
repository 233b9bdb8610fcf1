//! The connectors against real peers: nginx (HTTP, HTTPS with the test CA,
//! a wrong-host certificate, a Unix socket), tinyproxy and squid (forwarding
//! and `CONNECT`, with and without Basic proxy auth), plus local listeners
//! for refused connects, the DNS cache and Happy Eyeballs.
//!
//! Needs the peers running (`cargo xtask test`, or
//! `eval "$(cargo xtask peers start)"`); the peer accessors panic with
//! instructions otherwise. Every exchange is bounded by [`common::LIMIT`].
//! Certificate fingerprints are computed by `openssl`, not by the code under
//! test.

#![cfg(any(feature = "ring", feature = "aws-lc-rs"))]

mod common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream as StdTcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{LIMIT, fetch, get, target};
use courier_pool::{
    BasicAuth, Connector, Error, Fingerprint, PoolConfig, ProxyConnector, StaticResolver,
    TcpConnector, TcpConnectorBuilder, TlsErrorKind, UnixConnector,
};
use courier_test_support::peers::{self, Proxy};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

/// A TCP connector builder that trusts the test CA.
fn tcp() -> TcpConnectorBuilder {
    let ca = std::fs::read(peers::ca_pem()).unwrap();
    TcpConnector::builder().add_root_certificates_pem(&ca)
}

/// `https://{host}:{port of nginx's https}{path}`.
fn nginx_https(host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", peers::nginx().https.port())
}

/// The SHA-256 fingerprint of the first certificate in `pem`, as `openssl`
/// computes it.
fn openssl_sha256(pem: &Path) -> Fingerprint {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "sha256 Fingerprint=AB:CD:..." (the label's case varies by version).
    let text = String::from_utf8(out.stdout).unwrap();
    let (_, hex) = text.split_once('=').expect("openssl prints label=hex");
    hex.parse().unwrap()
}

/// Connects through `connector` within [`LIMIT`] and returns the error.
async fn connect_err(connector: &dyn Connector, url: &str) -> Error {
    match tokio::time::timeout(LIMIT, connector.connect(&target(url)))
        .await
        .expect("connect hung")
    {
        Ok(conn) => panic!("{url}: connected, expected an error: {conn:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------
// nginx, direct

#[tokio::test]
async fn nginx_over_http_serves_the_file_and_reuses_the_connection() {
    let nginx = peers::nginx();
    let connector = tcp().build().unwrap();
    let url = nginx.url("/hello.txt");

    let mut conn = connector.connect(&target(&url)).await.unwrap();
    assert!(!conn.is_reused());
    assert!(conn.proxy().is_none());
    let response = get(&mut conn, &url).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, nginx.file("hello.txt"));
    assert!(conn.is_reusable(), "nginx keeps HTTP/1.1 connections alive");
    conn.release();
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle, stats.waiting), (1, 1, 0));

    let mut conn = connector.connect(&target(&url)).await.unwrap();
    assert!(conn.is_reused(), "the idle connection is taken again");
    let response = get(&mut conn, &url).await.unwrap();
    assert_eq!(response.body, nginx.file("hello.txt"));
    conn.release();
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle), (1, 1), "still one connection");
}

#[tokio::test]
async fn https_with_the_test_ca_by_name_and_by_ip_address() {
    let nginx = peers::nginx();
    let connector = tcp().build().unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let url = nginx_https(host, "/hello.txt");
        let mut conn = connector.connect(&target(&url)).await.unwrap();
        let stream = conn.stream().unwrap();
        assert!(stream.is_tls(), "{url}");
        let alpn = stream.tls_session().unwrap().alpn_protocol();
        assert_eq!(alpn, Some(&b"http/1.1"[..]), "{url}");
        let response = get(&mut conn, &url).await.unwrap();
        assert_eq!(response.status, 200, "{url}");
        assert_eq!(response.body, nginx.file("hello.txt"), "{url}");
        conn.release();
    }
    // Two origins (the name and the address), two pooled connections.
    assert_eq!(connector.stats().open, 2);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_as_wrong_host() {
    let badtls = peers::nginx().badtls;
    let connector = tcp().build().unwrap();
    let url = format!("https://127.0.0.1:{}/hello.txt", badtls.port());
    match connect_err(&connector, &url).await {
        Error::Tls { host, kind, .. } => {
            assert_eq!(kind, TlsErrorKind::WrongHost);
            assert_eq!(host, "127.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        connector.stats().open,
        0,
        "the failed dial gave its place back"
    );
}

#[tokio::test]
async fn without_verification_the_wrong_host_certificate_is_accepted() {
    let nginx = peers::nginx();
    let connector = tcp().verify_ssl(false).build().unwrap();
    assert!(!connector.verify_ssl());
    let url = format!("https://127.0.0.1:{}/hello.txt", nginx.badtls.port());
    let (response, _) = fetch(&connector, &url).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, nginx.file("hello.txt"));
}

#[tokio::test]
async fn a_pinned_certificate_is_accepted_and_a_wrong_pin_refused() {
    let nginx = peers::nginx();
    let server_pin = openssl_sha256(&peers::certs_dir().join("server.pem"));
    let other_pin = openssl_sha256(&peers::certs_dir().join("wronghost.pem"));
    assert_ne!(server_pin, other_pin);
    let url = nginx_https("localhost", "/hello.txt");

    // Verification and the pin together.
    let connector = tcp().fingerprint(server_pin).build().unwrap();
    assert_eq!(connector.fingerprint(), Some(&server_pin));
    let (response, _) = fetch(&connector, &url).await.unwrap();
    assert_eq!(response.body, nginx.file("hello.txt"));

    let connector = tcp().fingerprint(other_pin).build().unwrap();
    match connect_err(&connector, &url).await {
        Error::FingerprintMismatch {
            expected, received, ..
        } => {
            assert_eq!(expected, other_pin);
            assert_eq!(received, server_pin);
        }
        other => panic!("{other:?}"),
    }

    // Without verification the pin is the only check: the wrong-host
    // certificate is accepted by its own pin, and refused by another.
    let badtls = format!("https://127.0.0.1:{}/hello.txt", nginx.badtls.port());
    let connector = tcp()
        .verify_ssl(false)
        .fingerprint(other_pin)
        .build()
        .unwrap();
    let (response, _) = fetch(&connector, &badtls).await.unwrap();
    assert_eq!(response.body, nginx.file("hello.txt"));
    let connector = tcp()
        .verify_ssl(false)
        .fingerprint(server_pin)
        .build()
        .unwrap();
    let err = connect_err(&connector, &badtls).await;
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------
// nginx over its Unix socket

#[tokio::test]
async fn unix_socket_to_nginx_with_the_host_from_the_url() {
    let nginx = peers::nginx();
    let connector = UnixConnector::new(&nginx.unix, PoolConfig::default());

    let (response, _) = fetch(&connector, "http://localhost/hello.txt")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, nginx.file("hello.txt"));

    // nginx's /echo prints the Host it received.
    let (response, _) = fetch(&connector, "http://unix-host.test/echo")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(text.lines().any(|l| l == "host=unix-host.test"), "{text}");

    // https cannot go over the Unix socket.
    let err = connect_err(&connector, "https://localhost/").await;
    assert!(matches!(err, Error::InvalidTarget(_)), "{err:?}");
}

// ---------------------------------------------------------------------------
// Proxies

/// A connector through `proxy` trusting the test CA, with `auth` if given.
fn via(proxy: &Proxy, auth: Option<(&str, &str)>) -> ProxyConnector {
    let builder = tcp().proxy(&proxy.url());
    match auth {
        Some((user, pass)) => builder.proxy_auth(BasicAuth::new(user, pass).unwrap()),
        None => builder,
    }
    .build()
    .unwrap()
}

/// The credentials an auth proxy wants.
fn creds(proxy: &Proxy) -> (&str, &str) {
    let (user, pass) = proxy.auth.as_ref().expect("an auth proxy");
    (user, pass)
}

/// Plain http through `connector`'s proxy: absolute-form, hello.txt.
async fn forwarded_get_works(connector: &ProxyConnector) {
    let nginx = peers::nginx();
    let url = nginx.url("/hello.txt");
    let mut conn = connector.connect(&target(&url)).await.unwrap();
    let info = conn.proxy().expect("a proxied connection").clone();
    assert!(info.uses_absolute_form() && !info.is_tunnel(), "{info:?}");
    assert_eq!(info.proxy(), connector.proxy());
    let response = get(&mut conn, &url).await.unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, nginx.file("hello.txt"));
    conn.release();
}

/// https through a `CONNECT` tunnel of `connector`'s proxy, TLS with nginx
/// inside it, hello.txt.
async fn tunnelled_get_works(connector: &ProxyConnector) {
    let nginx = peers::nginx();
    let url = nginx_https("127.0.0.1", "/hello.txt");
    let mut conn = connector.connect(&target(&url)).await.unwrap();
    let info = conn.proxy().expect("a proxied connection");
    assert!(info.is_tunnel() && !info.uses_absolute_form(), "{info:?}");
    assert!(
        info.authorization().is_none(),
        "credentials went with CONNECT only"
    );
    assert!(conn.stream().unwrap().is_tls());
    let response = get(&mut conn, &url).await.unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, nginx.file("hello.txt"));
    conn.release();
}

#[tokio::test]
async fn tinyproxy_forwards_plain_http_and_tunnels_https() {
    let connector = via(&peers::tinyproxy(), None);
    forwarded_get_works(&connector).await;
    tunnelled_get_works(&connector).await;
}

#[tokio::test]
async fn squid_forwards_plain_http_and_tunnels_https() {
    let connector = via(&peers::squid(), None);
    forwarded_get_works(&connector).await;
    tunnelled_get_works(&connector).await;
}

#[tokio::test]
async fn auth_proxies_accept_the_right_credentials() {
    for proxy in [peers::tinyproxy_auth(), peers::squid_auth()] {
        let connector = via(&proxy, Some(creds(&proxy)));
        forwarded_get_works(&connector).await;
        tunnelled_get_works(&connector).await;
    }
}

#[tokio::test]
async fn credentials_in_the_proxy_url_work_too() {
    for proxy in [peers::tinyproxy_auth(), peers::squid_auth()] {
        let (user, pass) = creds(&proxy);
        let url = format!("http://{user}:{pass}@{}", proxy.addr);
        let connector = tcp().proxy(&url).build().unwrap();
        assert_eq!(connector.proxy(), proxy.addr.to_string());
        assert_eq!(connector.proxy_auth().map(BasicAuth::login), Some(user));
        forwarded_get_works(&connector).await;
        tunnelled_get_works(&connector).await;
    }
}

#[tokio::test]
async fn auth_proxies_without_credentials_answer_407() {
    let nginx = peers::nginx();
    for proxy in [peers::tinyproxy_auth(), peers::squid_auth()] {
        let connector = via(&proxy, None);
        // Plain http: the proxy's answer is the response.
        let (response, _) = fetch(&connector, &nginx.url("/hello.txt")).await.unwrap();
        assert_eq!(response.status, 407, "{}: {response:?}", proxy.addr);
        assert!(
            response.header("Proxy-Authenticate").is_some(),
            "{response:?}"
        );
        // CONNECT: a refusal, with the status.
        let before = connector.stats().open;
        let err = connect_err(&connector, &nginx_https("127.0.0.1", "/hello.txt")).await;
        match &err {
            Error::ProxyStatus { status, .. } => assert_eq!(*status, 407, "{}", proxy.addr),
            other => panic!("{}: {other:?}", proxy.addr),
        }
        assert!(err.is_proxy());
        assert_eq!(
            connector.stats().open,
            before,
            "the refused dial gave its place back"
        );
    }
}

#[tokio::test]
async fn auth_proxies_refuse_wrong_credentials_with_their_own_status() {
    let nginx = peers::nginx();
    // squid says 407 again; tinyproxy says 401 (see PEERS.md).
    for (proxy, expected) in [(peers::squid_auth(), 407), (peers::tinyproxy_auth(), 401)] {
        let connector = via(&proxy, Some(("user", "not-the-password")));
        let (response, _) = fetch(&connector, &nginx.url("/hello.txt")).await.unwrap();
        assert_eq!(response.status, expected, "{}: {response:?}", proxy.addr);
        let err = connect_err(&connector, &nginx_https("127.0.0.1", "/hello.txt")).await;
        assert_eq!(
            err.proxy_status().map(|s| s.as_u16()),
            Some(expected),
            "{err:?}"
        );
        // The password is not in the message.
        assert!(!err.to_string().contains("not-the-password"));
    }
}

#[tokio::test]
async fn squid_keeps_forwarded_connections_alive() {
    let nginx = peers::nginx();
    let connector = via(&peers::squid(), None);
    let url = nginx.url("/hello.txt");
    let (first, reused) = fetch(&connector, &url).await.unwrap();
    assert!(!reused);
    assert!(
        !first.must_close,
        "squid keeps the client connection: {first:?}"
    );
    let (second, reused) = fetch(&connector, &url).await.unwrap();
    assert!(reused, "the second request goes out on the kept connection");
    assert_eq!(second.body, nginx.file("hello.txt"));
    assert_eq!(connector.stats().open, 1);
}

/// tinyproxy 1.11 closes the client connection after each forwarded
/// response without announcing it (HTTP/1.1, no `Connection: close`), as
/// `curl -v` shows too: the pool must find the kept connection dead and
/// dial a new one rather than send the next request into it.
#[tokio::test]
async fn a_connection_tinyproxy_closed_silently_is_not_reused() {
    let nginx = peers::nginx();
    let connector = via(&peers::tinyproxy(), None);
    let url = nginx.url("/hello.txt");
    for round in 0..3 {
        let (response, reused) = fetch(&connector, &url).await.unwrap();
        assert_eq!(response.body, nginx.file("hello.txt"), "round {round}");
        assert!(
            !reused,
            "round {round}: the connection tinyproxy closed was reused"
        );
        // A generous moment for tinyproxy's FIN to reach this side.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn squid_tunnels_are_pooled_per_origin() {
    let nginx = peers::nginx();
    let connector = via(&peers::squid(), None);
    let by_ip = nginx_https("127.0.0.1", "/hello.txt");
    let by_name = nginx_https("localhost", "/hello.txt");

    let (_, reused) = fetch(&connector, &by_ip).await.unwrap();
    assert!(!reused);
    let (response, reused) = fetch(&connector, &by_ip).await.unwrap();
    assert!(reused, "the tunnel to the same origin is reused");
    assert_eq!(response.body, nginx.file("hello.txt"));
    assert_eq!(connector.open_to(&target(&by_ip)), 1);

    let (response, reused) = fetch(&connector, &by_name).await.unwrap();
    assert!(!reused, "another origin never gets a tunnel to the first");
    assert_eq!(response.body, nginx.file("hello.txt"));
    assert_eq!(connector.open_to(&target(&by_name)), 1);
    assert_eq!(connector.open_to(&target(&by_ip)), 1);
    let stats = connector.stats();
    assert_eq!((stats.open, stats.idle), (2, 2));
}

// ---------------------------------------------------------------------------
// Connect failures and DNS

/// A port on 127.0.0.1 nothing listens on (just freed).
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_port_is_a_connect_error_naming_the_address() {
    let port = refused_port();
    let connector = tcp().build().unwrap();
    match connect_err(&connector, &format!("http://127.0.0.1:{port}/")).await {
        Error::Connect { addr, source } => {
            assert_eq!(addr, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
            assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(connector.stats().open, 0);
}

#[tokio::test]
async fn a_name_the_resolver_does_not_know_is_a_dns_error() {
    let resolver = StaticResolver::new().add("known.test", [IpAddr::from(Ipv4Addr::LOCALHOST)]);
    let connector = tcp().resolver(resolver).build().unwrap();
    match connect_err(&connector, "http://unknown.test/").await {
        Error::Dns { host, .. } => assert_eq!(host, "unknown.test"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_dns_cache_learns_forgets_refused_entries_and_clears() {
    let localhost = IpAddr::from(Ipv4Addr::LOCALHOST);
    let resolver = StaticResolver::new().add("cached.test", [localhost]);
    let connector = tcp()
        .resolver(resolver)
        .use_dns_cache(true)
        .build()
        .unwrap();
    assert!(connector.use_dns_cache());
    assert!(connector.cached_hosts().is_empty());

    // The kernel completes handshakes for a listener that never accepts.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://cached.test:{port}/");
    let conn = connector.connect(&target(&url)).await.unwrap();
    let hosts = connector.cached_hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!((hosts[0].host(), hosts[0].port()), ("cached.test", port));
    assert_eq!(hosts[0].addrs(), [localhost]);
    drop(conn); // closed, not kept: the next connect dials again

    // The cached address now refuses: the entry is dropped.
    drop(listener);
    let err = connect_err(&connector, &url).await;
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        connector.cached_hosts().is_empty(),
        "{:?}",
        connector.cached_hosts()
    );

    // Two entries (the cache is keyed by host and port), cleared one, then all.
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    for port in [pa, pb] {
        drop(
            connector
                .connect(&target(&format!("http://cached.test:{port}/")))
                .await
                .unwrap(),
        );
    }
    assert_eq!(connector.cached_hosts().len(), 2);
    connector.clear_dns_cache(Some("cached.test"), Some(pa));
    let left: Vec<u16> = connector.cached_hosts().iter().map(|h| h.port()).collect();
    assert_eq!(left, [pb]);
    connector.clear_dns_cache(None, None);
    assert!(connector.cached_hosts().is_empty());
}

/// An address that never answers: a listener with a backlog of 0 that
/// never accepts, its queue filled, so the kernel drops further SYNs and
/// connects hang. Keep it alive while using the address.
struct Blackhole {
    _listener: Socket,
    _filled: Vec<StdTcpStream>,
}

/// A blackhole at `addr`, or `None` when `addr` cannot be bound.
fn blackhole(addr: SocketAddr) -> Option<Blackhole> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&addr.into()).ok()?;
    listener.listen(0).unwrap();
    let mut filled = Vec::new();
    for _ in 0..64 {
        match StdTcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => filled.push(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Some(Blackhole {
                    _listener: listener,
                    _filled: filled,
                });
            }
            Err(e) => panic!("filling the blackhole at {addr}: {e}"),
        }
    }
    panic!("the listener at {addr} kept accepting connections");
}

#[tokio::test]
async fn happy_eyeballs_falls_back_from_a_silent_address_to_a_working_one() {
    // One port, two loopback addresses: 127.0.0.2 silent, 127.0.0.1 working.
    let silent_ip = Ipv4Addr::new(127, 0, 0, 2);
    let mut found = None;
    for _ in 0..20 {
        let good = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = good.local_addr().unwrap().port();
        if let Some(hole) = blackhole(SocketAddr::from((silent_ip, port))) {
            found = Some((good, hole));
            break;
        }
    }
    let (good, _hole) = found.expect("a port free on both 127.0.0.1 and 127.0.0.2");
    let good_addr = good.local_addr().unwrap();

    let resolver = StaticResolver::new().add(
        "eyeballs.test",
        [IpAddr::from(silent_ip), IpAddr::from(Ipv4Addr::LOCALHOST)],
    );
    let delay = Duration::from_millis(100);
    let connector = tcp()
        .resolver(resolver)
        .happy_eyeballs_delay(delay)
        .build()
        .unwrap();
    let url = format!("http://eyeballs.test:{}/", good_addr.port());
    let start = Instant::now();
    let conn = tokio::time::timeout(LIMIT, connector.connect(&target(&url)))
        .await
        .expect("connect hung")
        .unwrap();
    let took = start.elapsed();
    let peer = conn.stream().unwrap().tcp().unwrap().peer_addr().unwrap();
    assert_eq!(peer, good_addr);
    assert!(
        took >= delay,
        "the second address was tried before the delay: {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "the fallback came too late: {took:?}"
    );
}
