//! Test helpers shared by courier's crates: where the real test peers are,
//! and a scripted raw HTTP server.
//!
//! # In scope
//!
//! * [`peers`]: typed accessors for the real servers (nginx, httpbin, the
//!   aiohttp server) that `cargo xtask test` or `cargo xtask peers start`
//!   runs from the scripts in `../shared/peers/`, read from the
//!   `COURIER_PEER*` environment variables those commands set.
//! * [`raw`]: a scripted HTTP server on `127.0.0.1` ([`raw::RawServer`])
//!   for end-to-end tests of the client: it logs the exact request bytes
//!   the client sends and writes exactly the response bytes a test
//!   scripts, broken ones included (truncated bodies, bad chunking, silent
//!   peers, early close, resets).
//!
//! # Out of scope
//!
//! * Starting or stopping peers: that is `xtask` (`cargo xtask peers`), so
//!   a test binary never leaves a server behind.
//! * Anything from `courier-proto` or another courier crate: this crate
//!   depends on none of them, so the code under test never tests itself.
//! * In-memory connectors and certificates made on the fly: they come
//!   later, when a test needs them.
//!
//! A test that needs a peer asks for it, for example [`peers::nginx()`], and
//! gets its addresses. When the variables are missing the accessor panics
//! with a message saying how to start the peers: a test against a real
//! server fails when the server is not there, it never passes silently.

pub mod peers;
pub mod raw;
