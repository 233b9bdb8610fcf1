//! Sans-IO WebSocket client framing for [courier] (RFC 6455, with
//! permessage-deflate from RFC 7692).
//!
//! Like `courier-proto` it never touches a socket, a runtime or a timer:
//! bytes go in, events and the bytes to send come out. The async adapter
//! (`ws_connect` and `ClientWebSocket` in `courier-client`) only moves
//! bytes and runs timers; every protocol decision is made here.
//!
//! # In scope
//!
//! * The opening handshake ([`handshake`]): `Sec-WebSocket-Key`
//!   generation, `Sec-WebSocket-Accept` checking, subprotocol and extension
//!   negotiation.
//! * Frames ([`frame`]): every opcode, 7/16/64-bit lengths (minimal
//!   encoding checked), client masking with a fresh key per frame, RSV bits
//!   refused unless an extension claims them, control-frame rules, unknown
//!   opcodes refused.
//! * Messages ([`WebSocket`]): fragment reassembly bounded by
//!   [`Limits`], UTF-8 validated incrementally (invalid text fails at the
//!   first bad fragment), the close handshake with validated close codes
//!   and reasons, automatic pong and close replies.
//! * permessage-deflate ([`deflate`]) with context-takeover and
//!   window-bits parameters, inflation bounded by the message size limit.
//!
//! # Out of scope
//!
//! Sockets, TLS, timers (heartbeats and timeouts live in `courier-client`'s
//! `ws_connect`), HTTP/1.1 parsing (`courier-proto` reads the 101 response),
//! the server role.
//!
//! # Architecture
//!
//! Nothing here performs I/O. [`WebSocket::read`] takes the bytes received
//! so far (a [`BytesMut`](bytes::BytesMut), from which it splits large
//! whole messages without copying) and returns one [`Message`] at a time; every
//! method that produces bytes for the server appends them to a caller's
//! `Vec<u8>`. The pieces: [`frame`] parses and encodes headers, [`mask`]
//! masks payloads, [`close`] reads and writes close payloads, a private
//! incremental UTF-8 validator checks text fragment by fragment, and
//! [`deflate`] compresses. [`WebSocket`] ties them into the connection's
//! states:
//!
//! ```text
//!  Open ─── close() ────────────────▶ CloseSent ─── server's close read ──▶ Closed
//!    │                                                                       ▲
//!    └───── server's close read (its echo queued) ───────────────────────────┘
//!
//!  Open, CloseSent ─── error in the server's bytes (close 1002/1007/1009 queued) ─▶ Failed
//!  Open, CloseSent ─── eof() ─▶ Failed (1006, abnormal closure)
//!  Closed ─── eof() ─▶ Ok
//! ```
//!
//! `Closed` and `Failed` are [`WebSocket::is_closed`]. While open, a
//! fragmented message may be in progress in either direction, with control
//! frames between its fragments.
//!
//! # Errors
//!
//! One [`Error`], grouped: the peer broke the protocol
//! ([`ProtocolError`]), a limit was hit ([`CapacityError`]), the handshake
//! failed ([`HandshakeError`]), compressed data was bad ([`DeflateError`]),
//! or the caller asked for something the protocol forbids ([`UsageError`]).
//! [`Error::close_code`] gives the close code sent for each. No input makes
//! this crate panic, loop forever or allocate without bound.
//!
//! [courier]: https://docs.rs/courier

pub mod close;
pub mod deflate;
mod error;
pub mod frame;
pub mod handshake;
mod limits;
pub mod mask;
mod protocol;
mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use deflate::{DeflateConfig, DeflateError, DeflateParams};
pub use error::{CapacityError, Error, ProtocolError, UsageError};
pub use handshake::{ClientHandshake, HandshakeError, Negotiated, accept_key};
pub use limits::{DEFAULT_MAX_MESSAGE_SIZE, Limits};
pub use protocol::{DataKind, Message, SHARE_MIN, Text, WebSocket};

/// Re-exported so callers can name [`Bytes`](bytes::Bytes) and
/// [`BytesMut`](bytes::BytesMut) without depending on `bytes` themselves.
pub use bytes;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
