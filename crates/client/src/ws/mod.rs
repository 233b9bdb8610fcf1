//! WebSocket clients (aiohttp `ws_connect` and `ClientWebSocketResponse`).
//!
//! [`ClientSession::ws_connect`](crate::ClientSession::ws_connect) returns a
//! [`WsConnectBuilder`]; sending it performs the opening handshake over the
//! session's connector and returns a [`ClientWebSocket`]. The protocol
//! itself (frames, masking, UTF-8 checks, the close handshake,
//! permessage-deflate) is `courier-ws`; this module moves its bytes over
//! the connection and runs the timers: heartbeat, receive and close
//! timeouts.
//!
//! ```no_run
//! # async fn run() -> Result<(), courier_client::Error> {
//! use std::time::Duration;
//! use courier_client::ws::{CloseCode, Message};
//!
//! let session = courier_client::ClientSession::new();
//! let mut ws = session
//!     .ws_connect("wss://echo.example/ws")
//!     .compress(true)
//!     .heartbeat(Duration::from_secs(20))
//!     .await?;
//! ws.send_str("ping?").await?;
//! let answer = ws.receive_str().await?;
//! println!("{}", answer.as_str());
//! ws.close(CloseCode::NORMAL, "").await?;
//! # Ok(()) }
//! ```

mod connect;
mod socket;

pub use connect::{DEFAULT_CLOSE_TIMEOUT, WsConnectBuilder};
pub use courier_ws::{
    CloseCode, CloseFrame, DEFAULT_MAX_MESSAGE_SIZE, DataKind, DeflateConfig, DeflateParams,
    Message, Text,
};
pub use socket::{
    CLOSE_EOF_WAIT, ClientWebSocket, MAX_UNSENT, READ_BUFFER_SIZE, WsReader, WsWriter,
};

/// The `courier-ws` crate: the sans-IO protocol under this module, for
/// its error types and lower-level pieces.
pub use courier_ws as proto;

#[cfg(test)]
mod tests;
