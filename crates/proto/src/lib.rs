//! Sans-IO HTTP/1.1 client codec: the wire format of [courier], and nothing else.
//!
//! # In scope
//!
//! * Request heads: method, origin-, absolute- (plain-HTTP proxies),
//!   authority- (CONNECT) and asterisk-form targets; `Host` with the port only
//!   when it is not the default and IPv6 in brackets; HTTP/1.0 and HTTP/1.1;
//!   headers in the order given with their case kept; automatic headers
//!   (`Host`, `User-Agent`, `Accept`, `Accept-Encoding`, `Content-Type`,
//!   `Connection`) that can be skipped one by one ([`AutoHeader`]), and
//!   framing headers that cannot; header injection (CR, LF, NUL) refused.
//! * Request bodies: fixed length, chunked with a chosen chunk size, gzip or
//!   deflate compression while streaming, and `Expect: 100-continue`.
//! * Response heads (with [httparse]): status, reason, version and header
//!   fields in order with their original bytes; 1xx responses reported and
//!   skipped; `101 Switching Protocols` handing over the bytes after it.
//! * Response body framing by RFC 9112 §6.3 ([`framing::body_mode`]):
//!   `Content-Length`, chunked (extensions and trailers parsed and bounded),
//!   until EOF; request-smuggling shapes (both `Transfer-Encoding` and
//!   `Content-Length`, conflicting lengths) refused.
//! * The keep-alive verdict by RFC 9112 §9.3, and bytes left after a response.
//! * Content decoding of gzip and deflate (zlib or raw), streaming, with a
//!   decompression-bomb guard.
//! * Every bound on peer input in one struct, [`Limits`].
//!
//! # Out of scope
//!
//! Sockets, TLS, DNS, timeouts, connection pooling, redirects, cookies,
//! authentication schemes and character sets: they belong to `courier-pool`
//! and `courier-client`. HTTP/2 and HTTP/3. Being an HTTP server.
//!
//! # Architecture
//!
//! Nothing here performs I/O or knows about async. Parsing states take the
//! bytes received so far and report how many they used; encoding states
//! append bytes to a caller's `Vec<u8>`. The caller owns sockets, buffers
//! and clocks, which is what makes every rule testable with byte vectors
//! (split at every offset) and fuzzable. The pieces can be used alone —
//! [`Request::encode_head`], [`HeadParser`], [`framing`], [`BodyDecoder`],
//! [`BodyEncoder`], [`ContentDecoder`] — or driven together by [`Exchange`],
//! a typestate machine over one request/response:
//!
//! ```text
//!  Prepare ─▶ SendHead ─┬──────────────────────────────▶ RecvHead ─┬─▶ RecvBody ─▶ Done
//!                       ├─▶ SendBody ──────────────────────▲       └────────────▶ Done
//!                       └─▶ Await100 ─┬─ 100 / timeout ─▶ SendBody
//!                                     └─ final status ─▶ RecvBody / Done (must close)
//! ```
//!
//! [`Exchange<Done>`](Exchange) answers the one question a pool asks:
//! [`must_close`](Exchange::<state::Done>::must_close), with a
//! [`CloseReason`].
//!
//! # Errors
//!
//! One [`Error`] enum; [`Error::is_remote`] tells peer protocol violations
//! (close the connection) from caller misuse ([`Error::is_local`]). No input
//! makes this crate panic, loop forever or allocate without bound.
//!
//! # Features
//!
//! * `compression` (default): gzip and deflate, decoding and request
//!   compression, through flate2's pure-Rust backend.
//!
//! [courier]: https://docs.rs/courier

mod body;
mod chars;
mod coding;
mod error;
mod exchange;
mod fields;
pub mod framing;
mod limits;
mod request;
mod response;

pub use body::{BodyDecoder, BodyEncoder, BodyStep};
#[cfg(feature = "compression")]
pub use coding::ACCEPT_ENCODING;
pub use coding::{Compression, ContentCoding, ContentDecoder};
pub use error::{Error, Limit};
pub use exchange::{
    Await100Result, CloseReason, Exchange, RecvHeadResult, ResponseEvent, SendHeadResult, state,
};
pub use fields::{Fields, FieldsIter};
pub use framing::BodyMode;
pub use limits::Limits;
pub use request::{AutoHeader, DEFAULT_USER_AGENT, Request, TargetForm};
pub use response::{HeadParser, ResponseHead};

/// Re-exported so callers can name methods, status codes and versions
/// without depending on `http` themselves.
pub use http;
