//! Connectors and the keep-alive connection pool of [courier]: aiohttp's
//! `BaseConnector`, `TCPConnector`, `ProxyConnector`, `UnixConnector` and
//! `Connection`, on tokio.
//!
//! A [`Connector`] turns a request's [`Target`] (scheme, host, port) into
//! a ready [`Connection`] and takes it back when the exchange is over.
//! Every connector is the shared pool joined to a [`Dial`] (the step that
//! establishes a new connection, aiohttp's `_create_connection`), and is
//! configured by one [`PoolConfig`] whose defaults are documented
//! constants ([`DEFAULT_CONN_TIMEOUT`], [`DEFAULT_KEEPALIVE_TIMEOUT`],
//! [`DEFAULT_LIMIT`]...).
//!
//! | aiohttp | courier-pool |
//! |---|---|
//! | `BaseConnector(conn_timeout, keepalive_timeout, limit, force_close)` | [`PoolConfig`], plus `limit_per_host`, `acquire_timeout`, `max_lifetime` |
//! | `BaseConnector.connect(req)`, `close()`, `closed`, `_create_connection` | [`Connector::connect`], [`Connector::close`], [`Connector::closed`], [`Dial`] |
//! | `TCPConnector(verify_ssl, fingerprint, use_dns_cache, family, ssl_context, local_addr)` | [`TcpConnector::builder`]; `cached_hosts()`, `clear_dns_cache(host, port)` |
//! | `ProxyConnector(proxy, proxy_auth)` | [`ProxyConnector::builder`] |
//! | `UnixConnector(path)` | [`UnixConnector::new`] |
//! | `Connection.closed / close() / release() / detach()` | [`Connection`]'s methods of the same names |
//! | `BasicAuth(login, password, encoding)` | [`BasicAuth`] |
//!
//! ```no_run
//! use courier_pool::{Connector, TcpConnector, Target};
//! use tokio::io::AsyncWriteExt;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let connector = TcpConnector::builder().limit_per_host(Some(8)).build()?;
//! let target = Target::from_uri(&"https://example.com/".parse()?)?;
//! let mut conn = connector.connect(&target).await?;
//! conn.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").await?;
//! // ... read the whole response with courier-proto, then:
//! conn.set_reusable(true);
//! conn.release();
//! # Ok(()) }
//! ```
//!
//! # In scope
//!
//! * The pool: keyed by endpoint (scheme, host, port; TLS settings and
//!   proxy are those of the connector); total and per-endpoint limits with
//!   FIFO waiters; idle expiry; a maximum connection lifetime; idle
//!   connections the server closed or wrote to are discarded before reuse.
//! * [`TcpConnector`]: DNS (hickory-resolver, or the system resolver, or
//!   your [`Resolve`]) with an optional TTL-honouring bounded cache;
//!   address family; local address; `TCP_NODELAY`; TCP keepalive; Happy
//!   Eyeballs (RFC 8305); rustls TLS ([`tls`]) with platform roots, extra
//!   roots, client certificates, SNI, ALPN `http/1.1`, and certificate
//!   pinning ([`Fingerprint`]).
//! * [`ProxyConnector`]: plain HTTP forwarded in absolute-form, HTTPS
//!   through `CONNECT` tunnels, Basic proxy credentials.
//! * [`UnixConnector`], and the in-memory [`DuplexConnector`] for tests.
//!
//! # Out of scope
//!
//! The HTTP/1.1 wire format (`courier-proto`; used here only for
//! `CONNECT`), requests, responses, redirects and cookies
//! (`courier-client`), WebSocket framing (`courier-ws`).
//!
//! # Architecture
//!
//! One mutex guards the pool's counts, idle lists and waiter queue. Every
//! open connection is counted from the moment room is reserved for it
//! (before dialing) until it is closed or detached; what leaves the lock
//! is a guard (the [`Connection`]), whose [`release`](Connection::release)
//! returns it (only when the HTTP layer declared it reusable with
//! [`set_reusable`](Connection::set_reusable), and any write clears
//! that), whose [`detach`](Connection::detach) gives the stream away, and
//! whose `Drop` closes it. So a cancelled task, a failed dial or a dropped
//! response can neither leak a connection nor return one mid-exchange.
//!
//! [courier]: https://docs.rs/courier

mod auth;
mod config;
mod connection;
mod connector;
mod dns;
mod duplex;
mod error;
mod happy;
mod pool;
mod proxy;
mod stream;
mod target;
mod tcp;
pub mod tls;
mod unix;

pub use auth::{BasicAuth, Charset};
pub use config::{
    ConfigError, DEFAULT_CONN_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LIMIT, PoolConfig,
    PoolConfigBuilder,
};
pub use connection::{Connection, Established, ProxyInfo};
pub use connector::{BoxFuture, ConnectOptions, Connector, Dial, Pooled};
#[cfg(feature = "hickory-dns")]
pub use dns::HickoryResolver;
pub use dns::{
    CachedHost, DEFAULT_DNS_CACHE_SIZE, DEFAULT_SYSTEM_DNS_TTL, Family, Resolve, Resolved,
    StaticResolver, SystemResolver,
};
pub use duplex::{Accepted, DEFAULT_DUPLEX_BUFFER, DuplexConnector, DuplexServer};
pub use error::{BoxError, Error, TlsErrorKind};
pub use happy::{DEFAULT_HAPPY_EYEBALLS_DELAY, DEFAULT_TCP_KEEPALIVE};
pub use pool::PoolStats;
pub use proxy::{ProxyConnector, ProxyConnectorBuilder};
pub use stream::{Io, Stream};
pub use target::{Scheme, Target};
pub use tcp::{TcpConnector, TcpConnectorBuilder};
pub use tls::{Fingerprint, FingerprintAlgorithm, TlsConfig, TlsConnector};
pub use unix::UnixConnector;
