//! The one error type of this crate, with its groups.

use crate::close::CloseCode;

/// Everything that can go wrong in this crate.
///
/// The variants group the causes as aiohttp and tungstenite do: the peer
/// broke RFC 6455 ([`ProtocolError`]), a message or frame was larger than
/// the [`Limits`](crate::Limits) allow ([`CapacityError`]), the opening
/// handshake failed ([`HandshakeError`]), permessage-deflate data was bad
/// ([`DeflateError`]), or the caller asked for something the protocol
/// forbids ([`UsageError`]).
///
/// Errors found while reading say which close code this side sent (or
/// would send) for them: [`Error::close_code`].
///
/// `Display` texts are lowercase and never contain payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke a framing or message rule.
    #[error("websocket protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// A frame or message exceeded a limit.
    #[error("websocket capacity exceeded: {0}")]
    Capacity(#[from] CapacityError),
    /// The opening handshake failed.
    #[error("websocket handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// permessage-deflate data could not be inflated.
    #[error("websocket compression error: {0}")]
    Deflate(#[from] DeflateError),
    /// The caller asked for something the protocol does not allow.
    #[error("websocket usage error: {0}")]
    Usage(#[from] UsageError),
}

impl Error {
    /// The close code this side sends to the peer for this error, when it
    /// came from reading: 1002 (protocol error), 1007 (invalid payload
    /// data: bad UTF-8, corrupt compressed data), 1009 (message too big).
    /// [`WebSocket::read`](crate::WebSocket::read) has already queued that
    /// close frame when it returns the error.
    ///
    /// [`ProtocolError::AbnormalClosure`] gives 1006, which is never sent
    /// (the connection is gone) but is the code to report to the user.
    /// `None` for handshake and usage errors, which never reach the close
    /// handshake.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(ProtocolError::InvalidUtf8 | ProtocolError::InvalidCloseReason) => {
                Some(CloseCode::INVALID_PAYLOAD)
            }
            Error::Protocol(ProtocolError::AbnormalClosure) => Some(CloseCode::ABNORMAL),
            Error::Protocol(_) => Some(CloseCode::PROTOCOL),
            Error::Capacity(_) => Some(CloseCode::TOO_BIG),
            // Our own compressor failing is an internal error, not the
            // peer's bad data.
            Error::Deflate(DeflateError::Compress) => Some(CloseCode::INTERNAL),
            Error::Deflate(_) => Some(CloseCode::INVALID_PAYLOAD),
            Error::Handshake(_) | Error::Usage(_) => None,
        }
    }
}

/// The peer broke RFC 6455 (or RFC 7692) framing or message rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An RSV bit was set that no negotiated extension claims.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// An opcode RFC 6455 leaves reserved (3-7, 0xB-0xF).
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A frame from the server was masked (RFC 6455 §5.1).
    #[error("masked frame from the server")]
    MaskedFrame,
    /// A payload length not in its shortest form (RFC 6455 §5.2), or a
    /// 64-bit length with its top bit set.
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A control frame with more than 125 bytes of payload.
    #[error("control frame longer than 125 bytes")]
    ControlTooLong,
    /// A control frame without FIN.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A continuation frame with no message in progress.
    #[error("continuation frame without a message")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A text message (or close reason) that is not UTF-8.
    #[error("invalid utf-8 in a text message")]
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    #[error("close frame with a one-byte payload")]
    InvalidClosePayload,
    /// A close code that must not appear on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8.
    #[error("close reason is not utf-8")]
    InvalidCloseReason,
    /// Bytes after the peer's close frame (RFC 6455 §5.5.1: the close
    /// frame is the last one an endpoint sends).
    #[error("frame after the close frame")]
    FrameAfterClose,
    /// RSV1 (compressed) on a continuation or control frame.
    #[error("compressed bit on a continuation or control frame")]
    CompressedNotFirst,
    /// The connection ended before the close handshake completed, possibly
    /// in the middle of a frame (close code 1006, which is never sent: the
    /// caller reports it). From [`WebSocket::eof`](crate::WebSocket::eof).
    #[error("connection closed without a close frame")]
    AbnormalClosure,
}

/// A frame or message larger than the [`Limits`](crate::Limits) allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// A frame whose payload length exceeds
    /// [`Limits::max_frame_size`](crate::Limits::max_frame_size).
    #[error("frame of {size} bytes over the limit of {max}")]
    FrameTooLong {
        /// The length the frame header announced.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A message (all fragments, after decompression) exceeding
    /// [`Limits::max_message_size`](crate::Limits::max_message_size).
    #[error("message over the limit of {max} bytes")]
    MessageTooLong {
        /// The limit.
        max: usize,
    },
}

/// Why the caller's request was refused; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A data or control frame after this side sent its close frame, or
    /// after the connection failed or ended.
    #[error("send after close")]
    SendAfterClose,
    /// A ping, pong or close payload over 125 bytes.
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A close code this side may not send (1005, 1006, 1015, or one
    /// outside the valid ranges).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A continuation fragment with no fragmented message started, or a new
    /// message started before the previous fragmented one finished.
    #[error("fragments out of order")]
    FragmentOrder,
    /// Text fragments that are not UTF-8 (an invalid sequence, or a
    /// message that ends inside a character).
    #[error("text is not utf-8")]
    InvalidUtf8,
}

// The variants' payload types live beside the code that produces them; the
// crate root re-exports them.
use crate::deflate::DeflateError;
use crate::handshake::HandshakeError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_the_close_code_sent_for_it() {
        let cases: [(Error, Option<u16>); 9] = [
            (ProtocolError::ReservedBits.into(), Some(1002)),
            (ProtocolError::InvalidUtf8.into(), Some(1007)),
            (ProtocolError::InvalidCloseReason.into(), Some(1007)),
            (ProtocolError::AbnormalClosure.into(), Some(1006)),
            (CapacityError::MessageTooLong { max: 1 }.into(), Some(1009)),
            (DeflateError::Corrupt.into(), Some(1007)),
            (DeflateError::Compress.into(), Some(1011)),
            (HandshakeError::Status(404).into(), None),
            (UsageError::SendAfterClose.into(), None),
        ];
        for (err, code) in cases {
            assert_eq!(err.close_code().map(|c| c.0), code, "{err}");
        }
    }
}
