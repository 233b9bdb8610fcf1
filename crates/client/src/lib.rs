//! The user-facing API of [courier]: aiohttp's `ClientSession`, request
//! methods, `ClientResponse` and `BasicAuth`, in idiomatic async Rust.
//!
//! ```no_run
//! # async fn run() -> Result<(), courier_client::Error> {
//! use courier_client::ClientSession;
//!
//! let session = ClientSession::new();
//! let mut resp = session
//!     .post("http://127.0.0.1:8080/post")
//!     .json(&serde_json::json!({"name": "courier"}))
//!     .send()
//!     .await?;
//! println!("{} {}", resp.status(), resp.text().await?);
//! # Ok(()) }
//! ```
//!
//! # In scope
//!
//! * [`ClientSession`] (builder, defaults, cookie jar, connector, hooks)
//!   and the request methods returning a [`RequestBuilder`] sent with
//!   `.send()` or `.await`.
//! * Request options: params, data (bytes, text, form, streams, files),
//!   JSON, multipart, headers, auth, redirects, encoding, version,
//!   compression, chunking, `Expect: 100-continue`, `read_until_eof`,
//!   timeouts per phase.
//! * [`ClientResponse`]: status and headers, raw headers, cookies,
//!   history, `read`, `text` (with charset detection), `json`, a byte
//!   stream with aiohttp's readers ([`Content`]), `release`, `close`,
//!   `error_for_status`; automatic gzip/deflate decoding with the codec's
//!   bomb guard; a cap on buffered reads.
//! * Redirects by RFC 9110 §15.4 with credentials never crossing origins;
//!   a public-suffix-aware cookie jar; Basic auth.
//! * One opaque [`Error`] with aiohttp-like predicates.
//! * A request sent on a kept-alive connection that the server had just
//!   closed is retried once on a new connection when it can be replayed.
//! * WebSockets ([`ClientSession::ws_connect`], [`ws`]): the opening
//!   handshake through the session's connector (proxies and Unix sockets
//!   included), [`ws::ClientWebSocket`] with aiohttp's methods, `Stream`
//!   and `Sink`, split halves, heartbeat and timeouts.
//!
//! # Out of scope
//!
//! The wire format (`courier-proto`), sockets, TLS and pooling
//! (`courier-pool`), WebSocket framing and permessage-deflate
//! (`courier-ws`).
//!
//! # Architecture
//!
//! `send` turns a [`RequestBuilder`] into a checked request, acquires a
//! pooled connection, drives the `courier-proto` exchange over it (head,
//! body, interim responses) and hands back a [`ClientResponse`] that owns
//! the connection until its body is read (then it goes back to the pool if
//! reusable) or dropped (then it is closed). The redirect loop and the
//! one retry on a stale connection sit around that, all inside the total
//! timeout.
//!
//! [courier]: https://docs.rs/courier

mod body;
mod content;
#[cfg(feature = "cookies")]
pub mod cookies;
mod error;
#[cfg(feature = "multipart")]
pub mod multipart;
mod oneoff;
mod redirect;
mod request;
mod response;
mod send;
mod session;
mod text;
mod timeouts;
#[cfg(feature = "ws")]
pub mod ws;

pub use body::{Body, BodyStream, READER_CHUNK_SIZE};
pub use content::{Content, DECODE_CHUNK_SIZE, DEFAULT_MAX_LINE, IterChunked, READ_BUFFER_SIZE};
#[cfg(feature = "cookies")]
pub use cookies::CookieJar;
pub use courier_pool::{
    BasicAuth, Charset, ConnectOptions, Connection, Connector, Family, Fingerprint,
    FingerprintAlgorithm, PoolConfig, PoolConfigBuilder, PoolStats, ProxyConnector,
    ProxyConnectorBuilder, Target, TcpConnector, TcpConnectorBuilder, TlsConfig, UnixConnector,
};
pub use courier_proto::{Compression, Fields, Limits};

/// The connectors and the pool (`courier-pool`), for what the re-exports
/// above leave out (resolvers, streams, dialers of your own).
pub use courier_pool as pool;
pub use error::{BoxError, Error, Result, TimeoutPhase};
#[cfg(feature = "ws")]
pub use oneoff::ws_connect;
pub use oneoff::{delete, get, head, options, patch, post, put, request};
pub use redirect::DEFAULT_MAX_REDIRECTS;
pub use request::{DEFAULT_CHUNK_SIZE, IntoUrl, RequestBuilder};
pub use response::{ClientResponse, DEFAULT_MAX_BODY_SIZE, RELEASE_DRAIN_LIMIT};
pub use send::REDIRECT_BODY_LIMIT;
pub use session::{ClientSession, ClientSessionBuilder, RequestParts};
pub use timeouts::{DEFAULT_TOTAL_TIMEOUT, EXPECT_CONTINUE_TIMEOUT, Timeouts};

/// Re-exported so that callers can name methods, status codes, headers and
/// versions without depending on `http` themselves.
pub use courier_proto::http;
/// Re-exported for [`ClientResponse::url`] and [`IntoUrl`].
pub use url;

#[cfg(test)]
mod tests;
