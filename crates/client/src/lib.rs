//! The user-facing API of [courier]: aiohttp's `ClientSession`, request
//! methods, `ClientResponse`, `BasicAuth` and `ws_connect`, in idiomatic
//! async Rust.
//!
//! This crate is created with the workspace; its code arrives with the
//! client issue. The mapping from aiohttp to courier is in
//! `docs/architecture.md`.
//!
//! # In scope
//!
//! * `ClientSession` (builder, defaults, cookie jar, connector, hooks) and
//!   the request methods returning a `RequestBuilder` sent with `.send()`.
//! * Request options: params, data (bytes, text, form, streams, files),
//!   JSON, multipart, headers, auth, redirects, encoding, version,
//!   compression, chunking, `Expect: 100-continue`, `read_until_eof`,
//!   timeouts.
//! * `ClientResponse`: status and headers, raw headers, cookies, history,
//!   `read`, `text` (with charset detection), `json`, a byte stream with
//!   aiohttp's readers, `release`, `close`, `error_for_status`; automatic
//!   gzip/deflate decoding with the codec's bomb guard.
//! * Redirects by RFC 9110 §15.4 with credentials never crossing origins;
//!   a public-suffix-aware cookie jar; Basic auth.
//! * One opaque error type with aiohttp-like predicates.
//! * `ws_connect` and `ClientWebSocket` on top of `courier-ws`.
//!
//! # Out of scope
//!
//! The wire format (`courier-proto`), sockets, TLS and pooling
//! (`courier-pool`), WebSocket framing (`courier-ws`).
//!
//! # Architecture
//!
//! A request is driven through the `courier-proto` exchange states by one
//! async function per state over a pooled connection; the response owns
//! the connection until its body is read (then it goes back to the pool if
//! reusable) or it is dropped (then the connection is closed).
//!
//! [courier]: https://docs.rs/courier
