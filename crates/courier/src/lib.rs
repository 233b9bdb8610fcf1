//! courier: an asynchronous HTTP/1.1 and WebSocket client for Rust, on
//! tokio, whose API follows the aiohttp client.
//!
//! This is the facade users depend on: it re-exports `courier-client` and
//! `courier-ws` behind feature flags and adds the one-off functions
//! (`courier::get`, `courier::post`, ...). The crates behind it are:
//!
//! | crate | what it does |
//! |---|---|
//! | `courier-proto` | sans-IO HTTP/1.1 codec: request heads and bodies out, response heads and bodies in |
//! | `courier-pool` | connectors (TCP + DNS + TLS, HTTP proxy, Unix socket) and the keep-alive pool |
//! | `courier-ws` | sans-IO WebSocket framing |
//! | `courier-client` | `ClientSession`, requests, responses, cookies, redirects, `ws_connect` |
//!
//! The client API arrives with the client issue; today the workspace holds
//! the codec (`courier-proto`) and the test and conformance backbone.
//!
//! # In scope
//!
//! Re-exports, feature flags (`rustls`, `gzip`, `cookies`, `json`, `ws`,
//! `deflate`), a prelude, and module-level functions on a one-off session.
//!
//! # Out of scope
//!
//! Any logic of its own: everything lives in the crates above.
