//! End-to-end tests of courier against real servers, and the harness they use.
//!
//! # In scope
//!
//! * The integration tests in `tests/`: each drives courier over real
//!   sockets (TCP and Unix) against the real peers of `../shared/peers/`
//!   (nginx, httpbin, the aiohttp server) and asserts behaviour a user
//!   relies on: bodies equal to the files served, framing, content
//!   decoding, keep-alive verdicts, header order, `100-continue`, errors.
//! * [`blocking`]: a small blocking driver of [`courier_proto::Exchange`]
//!   over `std` sockets, so the codec can be tested end to end before the
//!   async client exists.
//!
//! # Out of scope
//!
//! * Starting peers: `cargo xtask test` (or `cargo xtask peers start`) does
//!   that, and `courier_test_support::peers` says where they are. Without
//!   them the tests fail with a message saying how to start them.
//! * TLS, proxies and WebSocket: no client for them yet.
//! * Being a client: [`blocking`] is a test harness, deliberately simple;
//!   the real client is `courier-client`.
//!
//! Every socket operation in the harness has a timeout and every loop is
//! bounded, so a misbehaving codec or server fails a test instead of hanging
//! the suite.

pub mod blocking;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
