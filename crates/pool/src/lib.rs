//! Connectors and the keep-alive connection pool of [courier]: aiohttp's
//! `BaseConnector`, `TCPConnector`, `ProxyConnector`, `UnixConnector` and
//! `Connection`, on tokio.
//!
//! This crate is created with the workspace; its code arrives with the
//! connector issue. Its shape is fixed by the layer diagram in
//! `docs/architecture.md`.
//!
//! # In scope
//!
//! * A `Connector` trait turning a request target into a ready connection,
//!   with the creation step overridable, and an in-memory (duplex) connector
//!   for socket-free tests.
//! * `TcpConnector`: DNS (hickory-resolver with a TTL-honouring, bounded
//!   cache, or the system resolver), address family, local address,
//!   `TCP_NODELAY`, Happy Eyeballs (RFC 8305), rustls TLS with platform
//!   roots, extra CAs, client certificates, SNI, ALPN `http/1.1`, and
//!   certificate pinning by MD5, SHA-1 or SHA-256 fingerprint.
//! * `ProxyConnector`: plain-HTTP requests in absolute-form with
//!   `Proxy-Authorization`; HTTPS through CONNECT tunnels (encoded and
//!   parsed by `courier-proto`).
//! * `UnixConnector`: HTTP over a Unix domain socket.
//! * The pool: keyed by (scheme, host, port, TLS configuration, proxy);
//!   total and per-endpoint limits with FIFO waiters; idle expiry; maximum
//!   connection lifetime; dead or poisoned idle connections discarded
//!   before reuse. A connection returns to the pool only when
//!   `courier-proto` says the exchange left it reusable.
//!
//! # Out of scope
//!
//! The HTTP/1.1 wire format (`courier-proto`), requests, responses,
//! redirects and cookies (`courier-client`), WebSocket framing
//! (`courier-ws`).
//!
//! # Architecture
//!
//! The pool owns idle connections and counts live ones; a `Connection`
//! handed out is a guard whose `release()` returns it (only if reusable),
//! whose `detach()` gives the socket away, and whose `Drop` closes it, so a
//! connection can never leak or be reused by accident. Connectors compose:
//! the proxy connector wraps a TCP connector and runs the CONNECT exchange
//! over it before the TLS handshake.
//!
//! [courier]: https://docs.rs/courier
