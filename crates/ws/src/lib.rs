//! Sans-IO WebSocket client framing for [courier] (RFC 6455, with
//! permessage-deflate from RFC 7692).
//!
//! This crate is created with the workspace; its code arrives with the
//! WebSocket issue. Like `courier-proto` it never touches a socket, a
//! runtime or a timer.
//!
//! # In scope
//!
//! * The opening handshake: `Sec-WebSocket-Key` generation and
//!   `Sec-WebSocket-Accept` checking, subprotocol and extension negotiation.
//! * Frames: every opcode, 7/16/64-bit lengths (minimal encoding checked),
//!   client masking with a fresh key per frame, RSV bits refused unless an
//!   extension claims them, control-frame rules, unknown opcodes refused.
//! * Messages: fragment reassembly bounded by maximum frame and message
//!   sizes, UTF-8 validated incrementally.
//! * The close handshake with validated close codes and reasons.
//! * permessage-deflate with context-takeover and window-bits parameters,
//!   decompression bounded by the message size limit.
//!
//! # Out of scope
//!
//! Sockets, TLS, timers (heartbeats and timeouts live in `courier-client`'s
//! `ws_connect`), HTTP/1.1 parsing (`courier-proto` reads the 101 response).
//!
//! # Architecture
//!
//! Bytes in, events plus bytes to send out: reading a ping yields the pong
//! to send, reading a close yields the close reply, so the async adapter in
//! `courier-client` only moves bytes and never decides protocol behaviour.
//!
//! [courier]: https://docs.rs/courier
