//! courier: an asynchronous HTTP/1.1 and WebSocket client for Rust, on
//! tokio, whose API follows the [aiohttp] client.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), courier::Error> {
//! // One request on a one-off session:
//! let mut resp = courier::get("http://127.0.0.1:8080/get").send().await?;
//! println!("{} {}", resp.status(), resp.text().await?);
//!
//! // Many requests: share a session (connections, cookies, defaults).
//! let session = courier::ClientSession::builder()
//!     .header("x-api-version", "2")
//!     .build()?;
//! let mut resp = session
//!     .post("http://127.0.0.1:8080/post")
//!     .json(&serde_json::json!({"name": "courier"}))
//!     .await?;
//! let echoed: serde_json::Value = resp.json().await?;
//! # drop(echoed); Ok(()) }
//! ```
//!
//! This is the crate to depend on. It re-exports the client API of
//! `courier-client` (and the WebSocket codec of `courier-ws`) behind
//! feature flags, and the one-off functions [`request`], [`get`],
//! [`post`], [`put`], [`delete`], [`head`], [`options`] and [`patch`].
//!
//! | crate | what it does |
//! |---|---|
//! | `courier-proto` | sans-IO HTTP/1.1 codec: request heads and bodies out, response heads and bodies in |
//! | `courier-pool` | connectors (TCP + DNS + TLS, HTTP proxy, Unix socket) and the keep-alive pool |
//! | `courier-ws` | sans-IO WebSocket framing |
//! | `courier-client` | `ClientSession`, requests, responses, cookies, redirects, `ws_connect` |
//!
//! # Feature flags
//!
//! | flag | default | what it turns on |
//! |---|---|---|
//! | `rustls` | yes | TLS with rustls and the ring provider |
//! | `aws-lc-rs` | no | rustls with the aws-lc-rs provider instead (C build) |
//! | `native-roots` | yes | trust the platform's root certificates |
//! | `webpki-roots` | no | trust Mozilla's roots compiled in |
//! | `hickory-dns` | yes | hickory-resolver (else getaddrinfo) |
//! | `gzip` | yes | decode gzip/deflate responses, compress uploads |
//! | `cookies` | yes | the cookie jar with the public suffix list |
//! | `json` | yes | `RequestBuilder::json`, `ClientResponse::json` |
//! | `multipart` | yes | `multipart/form-data` bodies |
//! | `ws` | yes | WebSocket clients: `ClientSession::ws_connect`, [`ws`] |
//!
//! `docs/aiohttp.md` in the repository maps every aiohttp client class,
//! parameter and attribute to its courier form.
//!
//! # In scope
//!
//! Re-exports, feature flags and the one-off functions.
//!
//! # Out of scope
//!
//! Any logic of its own: everything lives in the crates above.
//!
//! [aiohttp]: https://docs.aiohttp.org/

pub use courier_client::*;
