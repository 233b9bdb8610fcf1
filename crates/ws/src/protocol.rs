//! The client side of an open WebSocket connection: bytes from the server
//! in, messages and the bytes owed to the server out.
//!
//! [`WebSocket`] holds the state of one connection after the opening
//! handshake. [`WebSocket::read`] turns the server's bytes into
//! [`Message`]s, answering pings and closes on the way; the `send_*`
//! methods and [`WebSocket::close`] turn the caller's messages into masked
//! frames. Neither touches a socket: the caller moves the bytes.

use std::fmt;
use std::ops::Deref;

use bytes::{Buf, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::close::{self, CloseCode, CloseFrame};
use crate::deflate::{Compressor, Decompressor, DeflateParams};
use crate::error::{CapacityError, Error, ProtocolError, UsageError};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode};
use crate::limits::Limits;
use crate::mask;
use crate::utf8::Utf8Validator;

/// The compression buffer kept between sends is dropped when a message
/// made it larger than this, so one large message does not pin its size
/// for the life of the connection.
const KEEP_SCRATCH: usize = 64 * 1024;

/// Single-frame, uncompressed messages at least this long (16 KiB) are
/// handed out without a copy, as a slice of the caller's input buffer;
/// shorter ones are copied into a buffer of their own.
///
/// A shared slice keeps the whole input buffer alive for as long as the
/// message is kept: a small message would pin a read buffer many times its
/// size, and the caller could not reuse that buffer for the next read. A
/// copy of fewer than 16 KiB costs well under a microsecond; past that,
/// not copying saves more than the pinned buffer costs.
pub const SHARE_MIN: usize = 16 * 1024;

/// A message, or a control frame, received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A complete text message, valid UTF-8.
    Text(Text),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping. The pong is already queued: [`WebSocket::read`] appends it
    /// to its output (unless this side has sent its close frame, or
    /// [`WebSocket::set_auto_pong`] turned that off).
    Ping(Bytes),
    /// A pong (an answer to a ping of ours, or an unsolicited heartbeat).
    Pong(Bytes),
    /// The server's close frame: its code and reason, or `None` when it had
    /// no payload (status 1005). If this side had not closed yet, the reply
    /// is already queued and the close handshake is complete (unless
    /// [`WebSocket::set_auto_close`] turned that off: then the caller
    /// replies with [`WebSocket::close`]).
    Close(Option<CloseFrame>),
}

/// The kind of a data message, for [`WebSocket::send_fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// A text message: its fragments together must be UTF-8.
    Text,
    /// A binary message.
    Binary,
}

impl DataKind {
    fn opcode(self) -> OpCode {
        match self {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        }
    }
}

/// The payload of a text message: [`Bytes`] that are always valid UTF-8.
///
/// Received messages share the buffer they arrived in, so a text message
/// is never copied after its bytes were read.
///
/// ```
/// use courier_ws::Text;
/// let text = Text::from("caf\u{e9}");
/// assert_eq!(text, "caf\u{e9}");
/// assert_eq!(text.len(), 5);
/// assert!(text.starts_with("ca")); // any `str` method, through `Deref`
/// assert_eq!(text.into_bytes(), "caf\u{e9}".as_bytes());
/// ```
///
/// # Performance
///
/// This crate has no `unsafe` code, so turning the bytes into a `&str`
/// ([`Text::as_str`], and every `str` method reached through `Deref`)
/// checks them again, in time linear in their length (at several GB/s).
/// [`Text::len`], [`Text::is_empty`] and [`Text::as_bytes`] do not; call
/// `as_str` once and keep the `&str` when using many `str` methods.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Bytes);

impl Text {
    /// The text of a `'static` string, without copying it.
    pub const fn from_static(text: &'static str) -> Text {
        Text(Bytes::from_static(text.as_bytes()))
    }

    /// The text (see the type's note on performance).
    pub fn as_str(&self) -> &str {
        // Every constructor checks (or is given) UTF-8, and the bytes never
        // change: this cannot fail.
        std::str::from_utf8(&self.0).expect("Text always holds UTF-8")
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty text.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(Bytes::from(text))
    }
}

impl From<&'static str> for Text {
    fn from(text: &'static str) -> Text {
        Text::from_static(text)
    }
}

impl From<Text> for Bytes {
    fn from(text: Text) -> Bytes {
        text.0
    }
}

impl TryFrom<Bytes> for Text {
    type Error = std::str::Utf8Error;

    /// Checks that `bytes` are UTF-8; does not copy them.
    fn try_from(bytes: Bytes) -> Result<Text, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Text(bytes))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        other == self
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        other == self
    }
}

/// A message being received in fragments.
#[derive(Debug)]
struct Partial {
    kind: DataKind,
    /// RSV1 was set on the first frame: the payloads are deflated.
    compressed: bool,
    /// The (inflated) payload so far.
    data: Vec<u8>,
    /// Validates text as it arrives.
    utf8: Utf8Validator,
}

/// A message being sent in fragments ([`WebSocket::send_fragment`]).
#[derive(Debug, Clone, Copy)]
struct Sending {
    kind: DataKind,
    /// Validates text fragments as they are sent.
    utf8: Utf8Validator,
}

/// The client side of a WebSocket connection, after the opening handshake.
///
/// Sans-IO: [`read`](WebSocket::read) takes the bytes received from the
/// server and returns messages; every method that produces bytes for the
/// server appends them to a caller's `Vec<u8>`, which the caller writes to
/// the socket. Timers (heartbeats, the close timeout) are the caller's too.
///
/// What this side does on its own:
///
/// * **answers pings** with a pong carrying the same payload (and still
///   returns [`Message::Ping`], so the caller can watch the peer);
/// * **answers a close** from the server with a close frame echoing its
///   code (an empty close frame for one without a code), which completes
///   the close handshake;
/// * **fails the connection** on any protocol error from the server: it
///   queues a close frame with [`Error::close_code`] (1002, 1007 or 1009)
///   unless it sent one already, returns the error, and from then on
///   returns the same error from `read`.
///
/// Incoming messages are bounded by [`Limits`]; outgoing frames are masked
/// with a fresh key each (RFC 6455 §5.3), drawn from a per-connection
/// random number generator seeded from the operating system. With
/// permessage-deflate negotiated (`deflate` is `Some`), data messages are
/// compressed both ways.
///
/// # Examples
///
/// ```
/// use courier_ws::bytes::BytesMut;
/// use courier_ws::{CloseCode, CloseFrame, Limits, Message, WebSocket};
///
/// let mut ws = WebSocket::new(Limits::default(), None);
/// let mut out = Vec::new(); // bytes for the server
///
/// ws.send_text("hello", &mut out)?;
/// assert_eq!(out[..2], [0x81, 0x85]); // FIN + text; masked, 5 bytes
/// assert_eq!(out.len(), 2 + 4 + 5); // header, masking key, payload
/// out.clear();
///
/// // What the socket delivered: a text message and a ping, the ping cut short.
/// let mut input = BytesMut::from(&b"\x81\x05hello\x89\x04pi"[..]);
/// assert_eq!(ws.read(&mut input, &mut out)?, Some(Message::Text("hello".into())));
/// assert_eq!(ws.read(&mut input, &mut out)?, None); // more bytes needed
/// input.extend_from_slice(b"ng");
/// assert_eq!(ws.read(&mut input, &mut out)?, Some(Message::Ping("ping".into())));
/// assert_eq!(out[..2], [0x8a, 0x84]); // the pong, queued
/// out.clear();
///
/// // This side closes; the server's reply completes the handshake.
/// ws.close(Some((CloseCode::NORMAL, "done")), &mut out)?;
/// assert!(ws.close_sent() && !ws.is_closed());
/// input.extend_from_slice(b"\x88\x02\x03\xe8");
/// assert_eq!(
///     ws.read(&mut input, &mut out)?,
///     Some(Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, ""))))
/// );
/// assert!(ws.is_closed());
/// ws.eof(&input)?; // the server then closes the TCP connection
/// # Ok::<(), courier_ws::Error>(())
/// ```
pub struct WebSocket {
    limits: Limits,
    deflate: Option<DeflateParams>,
    /// Created with the first compressed message sent: zlib's compression
    /// state takes a few hundred KiB, which a connection that only
    /// receives never needs.
    compressor: Option<Compressor>,
    /// Created with the first compressed message received.
    decompressor: Option<Decompressor>,
    /// Masking keys.
    rng: StdRng,
    /// A frame whose header was read (and consumed from the input) and
    /// whose payload has not arrived in full.
    header: Option<FrameHeader>,
    /// The fragmented message being received.
    partial: Option<Partial>,
    /// The fragmented message being sent.
    sending: Option<Sending>,
    close_sent: bool,
    close_received: bool,
    peer_close: Option<CloseFrame>,
    /// Answer pings with pongs in [`WebSocket::read`].
    auto_pong: bool,
    /// Answer the server's close frame in [`WebSocket::read`].
    auto_close: bool,
    /// Set once the connection failed; `read` returns it again.
    failed: Option<Error>,
    /// Compressed payloads being sent.
    scratch: Vec<u8>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The random number generator is left out: its state predicts the
        // masking keys.
        f.debug_struct("WebSocket")
            .field("limits", &self.limits)
            .field("deflate", &self.deflate)
            .field("close_sent", &self.close_sent)
            .field("close_received", &self.close_received)
            .field("peer_close", &self.peer_close)
            .field("failed", &self.failed)
            .field("receiving_fragments", &self.partial.is_some())
            .field("sending_fragments", &self.sending.is_some())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// A connection whose opening handshake succeeded, with the
    /// negotiated permessage-deflate parameters if any.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (as
    /// `rand`'s `StdRng::from_os_rng` does): without it there are no
    /// unpredictable masking keys.
    pub fn new(limits: Limits, deflate: Option<DeflateParams>) -> WebSocket {
        WebSocket::with_rng(limits, deflate, StdRng::from_os_rng())
    }

    /// [`WebSocket::new`] with masking keys drawn from a generator seeded
    /// with `seed`, so that the bytes sent are the same on every run.
    ///
    /// For tests and fuzzing only: predictable masking keys defeat the
    /// point of masking (RFC 6455 §10.3). Hidden from the docs and outside
    /// semver.
    #[doc(hidden)]
    pub fn with_mask_seed(limits: Limits, deflate: Option<DeflateParams>, seed: u64) -> WebSocket {
        WebSocket::with_rng(limits, deflate, StdRng::seed_from_u64(seed))
    }

    fn with_rng(limits: Limits, deflate: Option<DeflateParams>, rng: StdRng) -> WebSocket {
        WebSocket {
            limits,
            compressor: None,
            decompressor: None,
            deflate,
            rng,
            header: None,
            partial: None,
            sending: None,
            close_sent: false,
            close_received: false,
            peer_close: None,
            auto_pong: true,
            auto_close: true,
            failed: None,
            scratch: Vec::new(),
        }
    }

    /// Whether [`read`](Self::read) answers each ping with a pong (the
    /// default). Turned off, pings are only returned, and the caller
    /// answers with [`send_pong`](Self::send_pong) (aiohttp's
    /// `autoping=False`).
    pub fn set_auto_pong(&mut self, auto: bool) {
        self.auto_pong = auto;
    }

    /// Whether [`read`](Self::read) answers the server's close frame with
    /// this side's (the default). Turned off, the close frame is only
    /// returned, and the caller completes the handshake with
    /// [`close`](Self::close) (aiohttp's `autoclose=False`).
    pub fn set_auto_close(&mut self, auto: bool) {
        self.auto_close = auto;
    }

    /// The limits on incoming frames and messages.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The negotiated permessage-deflate parameters, if any.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    // ------------------------------------------------------------------
    // Reading

    /// Reads the server's bytes: returns the next complete message or
    /// control frame, or `Ok(None)` when `input` holds no complete one.
    ///
    /// `input` is what the socket delivered and this method has not used
    /// yet; the bytes it uses are removed from its front (unused bytes
    /// stay, and the caller appends the next read to them). Call again
    /// after each message: `input` may hold several. Bytes this side owes
    /// the server are appended to `out`: the pong for a ping, the reply to
    /// a close, and the close frame that fails the connection on an error.
    ///
    /// An unfragmented, uncompressed message of at least [`SHARE_MIN`]
    /// bytes is not copied: its payload is split off `input`
    /// ([`BytesMut::split_to`]); a shorter one is copied, so that `input`
    /// can be reused at once. Fragments are gathered
    /// in a buffer that grows with the message and never past
    /// [`Limits::max_message_size`]; a frame is kept in `input` until all
    /// of it arrived, so receiving a message of N bytes takes about 2N
    /// bytes at most. Text is checked for UTF-8 fragment by fragment.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`], [`CapacityError`] or
    /// [`DeflateError`](crate::deflate::DeflateError) when the server broke
    /// RFC 6455 or RFC 7692 or a limit. A frame too large for
    /// [`Limits::max_frame_size`] or for the message limit is refused from
    /// its header, before its payload arrives. The connection has then
    /// failed: the close frame for the error ([`Error::close_code`]) was
    /// appended to `out` unless this side had sent one, and every later
    /// call returns the same error.
    pub fn read(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<Message>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.read_frames(input, out)
            .map_err(|error| self.fail(error, out))
    }

    /// [`read`](Self::read) until the first error, which the caller turns
    /// into a failed connection.
    fn read_frames(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<Message>, Error> {
        loop {
            let header = match self.header {
                Some(header) => header,
                None => {
                    if self.close_received {
                        // The close frame was the server's last.
                        if input.is_empty() {
                            return Ok(None);
                        }
                        return Err(ProtocolError::FrameAfterClose.into());
                    }
                    let Some((header, len)) = FrameHeader::parse(input)? else {
                        return Ok(None);
                    };
                    self.check_header(&header)?;
                    input.advance(len);
                    self.header = Some(header);
                    header
                }
            };
            // `check_header` bounded the length by a `usize` limit (data)
            // or 125 (control); the fallback cannot be reached.
            let len =
                usize::try_from(header.payload_len).map_err(|_| CapacityError::FrameTooLong {
                    size: header.payload_len,
                    max: self.limits.max_frame_size,
                })?;
            if input.len() < len {
                return Ok(None);
            }
            self.header = None;
            if let Some(message) = self.frame(header, len, input, out)? {
                return Ok(Some(message));
            }
        }
    }

    /// Checks a frame header against the connection's state, before its
    /// payload is read.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Error> {
        if header.mask.is_some() {
            return Err(ProtocolError::MaskedFrame.into());
        }
        if header.rsv2 || header.rsv3 {
            return Err(ProtocolError::ReservedBits.into());
        }
        if header.rsv1 {
            if self.deflate.is_none() {
                return Err(ProtocolError::ReservedBits.into());
            }
            if header.opcode.is_control() || header.opcode == OpCode::Continuation {
                return Err(ProtocolError::CompressedNotFirst.into());
            }
        }
        let (so_far, compressed) = match (header.opcode, &self.partial) {
            (OpCode::Continuation, None) => {
                return Err(ProtocolError::UnexpectedContinuation.into());
            }
            (OpCode::Continuation, Some(partial)) => (partial.data.len(), partial.compressed),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation.into());
            }
            (OpCode::Text | OpCode::Binary, None) => (0, header.rsv1),
            // Control frames: at most 125 bytes, checked by `parse`.
            (OpCode::Close | OpCode::Ping | OpCode::Pong, _) => return Ok(()),
        };
        let max_frame = self.limits.max_frame_size;
        if header.payload_len > max_frame as u64 {
            return Err(CapacityError::FrameTooLong {
                size: header.payload_len,
                max: max_frame,
            }
            .into());
        }
        // Compressed payloads are checked once inflated, by the decompressor.
        let max = self.limits.max_message_size;
        if !compressed && so_far as u64 + header.payload_len > max as u64 {
            return Err(CapacityError::MessageTooLong { max }.into());
        }
        Ok(())
    }

    /// Handles one frame whose payload, `len` bytes, starts `input`.
    fn frame(
        &mut self,
        header: FrameHeader,
        len: usize,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<Message>, Error> {
        let kind = match header.opcode {
            OpCode::Ping => {
                let payload = input.split_to(len).freeze();
                // Nothing may follow our close frame, a pong included.
                if self.auto_pong && !self.close_sent {
                    self.write_frame(OpCode::Pong, true, false, &payload, out);
                }
                return Ok(Some(Message::Ping(payload)));
            }
            OpCode::Pong => return Ok(Some(Message::Pong(input.split_to(len).freeze()))),
            OpCode::Close => {
                let frame = CloseFrame::parse(&input[..len])?;
                input.advance(len);
                self.close_received = true;
                // A message cut short by the close is dropped.
                self.partial = None;
                if self.auto_close && !self.close_sent {
                    // Echo the code (RFC 6455 §5.5.1); no code, no payload.
                    let code = frame.as_ref().map(|f| f.code.0.to_be_bytes());
                    let payload: &[u8] = match &code {
                        Some(code) => code,
                        None => &[],
                    };
                    self.write_frame(OpCode::Close, true, false, payload, out);
                    self.close_sent = true;
                }
                self.peer_close.clone_from(&frame);
                return Ok(Some(Message::Close(frame)));
            }
            OpCode::Continuation => return self.fragment(header.fin, len, input),
            OpCode::Text => DataKind::Text,
            OpCode::Binary => DataKind::Binary,
        };
        if header.fin && !header.rsv1 {
            // A whole message in one frame: share its bytes when large,
            // copy them when small (see `SHARE_MIN`).
            if kind == DataKind::Text && std::str::from_utf8(&input[..len]).is_err() {
                return Err(ProtocolError::InvalidUtf8.into());
            }
            let payload = if len >= SHARE_MIN {
                input.split_to(len).freeze()
            } else {
                let payload = Bytes::copy_from_slice(&input[..len]);
                input.advance(len);
                payload
            };
            return Ok(Some(match kind {
                DataKind::Text => Message::Text(Text(payload)),
                DataKind::Binary => Message::Binary(payload),
            }));
        }
        self.partial = Some(Partial {
            kind,
            compressed: header.rsv1,
            data: Vec::new(),
            utf8: Utf8Validator::new(),
        });
        self.fragment(header.fin, len, input)
    }

    /// Adds a frame's payload, `len` bytes at the start of `input`, to the
    /// message being received; returns the message after its last frame.
    fn fragment(
        &mut self,
        fin: bool,
        len: usize,
        input: &mut BytesMut,
    ) -> Result<Option<Message>, Error> {
        let Some(partial) = self.partial.as_mut() else {
            // `check_header` refused a continuation without a message.
            return Err(ProtocolError::UnexpectedContinuation.into());
        };
        let start = partial.data.len();
        let max = self.limits.max_message_size;
        if partial.compressed {
            let Some(params) = &self.deflate else {
                // `check_header` refused RSV1 without permessage-deflate.
                return Err(ProtocolError::ReservedBits.into());
            };
            let decompressor = self
                .decompressor
                .get_or_insert_with(|| Decompressor::new(params));
            decompressor.decompress(&input[..len], fin, &mut partial.data, max)?;
        } else {
            grow(&mut partial.data, len, max);
            partial.data.extend_from_slice(&input[..len]);
        }
        input.advance(len);
        if partial.kind == DataKind::Text {
            partial.utf8.feed(&partial.data[start..])?;
            if fin {
                partial.utf8.finish()?;
            }
        }
        if !fin {
            return Ok(None);
        }
        let Some(partial) = self.partial.take() else {
            return Ok(None);
        };
        let data = Bytes::from(partial.data);
        Ok(Some(match partial.kind {
            DataKind::Text => Message::Text(Text(data)),
            DataKind::Binary => Message::Binary(data),
        }))
    }

    /// Records that the connection failed with `error`, queueing the close
    /// frame for it unless this side closed already; returns `error`.
    fn fail(&mut self, error: Error, out: &mut Vec<u8>) -> Error {
        if !self.close_sent
            && let Some(code) = error.close_code()
            && code.is_valid_on_wire()
        {
            self.write_frame(OpCode::Close, true, false, &code.0.to_be_bytes(), out);
            self.close_sent = true;
        }
        self.header = None;
        self.partial = None;
        self.sending = None;
        self.failed = Some(error.clone());
        error
    }

    /// Tells the connection that the server closed the TCP connection
    /// (the socket read returned end of file); `input` is what is left of
    /// the bytes received.
    ///
    /// # Errors
    ///
    /// * [`ProtocolError::AbnormalClosure`] (close code 1006) unless the
    ///   close handshake completed, whether or not `input` holds part of a
    ///   frame;
    /// * [`ProtocolError::FrameAfterClose`] if it completed but bytes
    ///   follow the server's close frame;
    /// * the error that failed the connection earlier, if one did.
    ///
    /// The connection is closed afterwards either way.
    pub fn eof(&mut self, input: &[u8]) -> Result<(), Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let error = if !(self.close_sent && self.close_received) {
            ProtocolError::AbnormalClosure
        } else if !input.is_empty() {
            ProtocolError::FrameAfterClose
        } else {
            return Ok(());
        };
        let error = Error::from(error);
        self.header = None;
        self.partial = None;
        self.sending = None;
        self.failed = Some(error.clone());
        Err(error)
    }

    /// How many more bytes the frame being read needs beyond `input` (what
    /// is left of the caller's buffer after [`read`](Self::read) returned
    /// `Ok(None)`), once its header was read; 0 otherwise. For sizing the
    /// next socket read so that a large frame arrives in one buffer.
    ///
    /// ```
    /// use courier_ws::{Limits, WebSocket};
    /// use courier_ws::bytes::BytesMut;
    /// let mut ws = WebSocket::new(Limits::default(), None);
    /// let mut out = Vec::new();
    /// // A binary frame of 300 bytes, of which 100 arrived.
    /// let mut input = BytesMut::from(&[0x82, 126, 0x01, 0x2c][..]);
    /// input.extend_from_slice(&[0; 100]);
    /// assert_eq!(ws.read(&mut input, &mut out)?, None);
    /// assert_eq!(ws.frame_remaining(&input), 200);
    /// # Ok::<(), courier_ws::Error>(())
    /// ```
    pub fn frame_remaining(&self, input: &[u8]) -> usize {
        self.header.map_or(0, |header| {
            usize::try_from(header.payload_len)
                .unwrap_or(usize::MAX)
                .saturating_sub(input.len())
        })
    }

    // ------------------------------------------------------------------
    // State

    /// True once the connection is over: the close handshake completed
    /// (close frames sent and received) or the connection failed. Nothing
    /// more can be sent, and the caller may close the socket (RFC 6455
    /// §7.1.1 lets the server close TCP first; a client waits a moment for
    /// it).
    pub fn is_closed(&self) -> bool {
        (self.close_sent && self.close_received) || self.failed.is_some()
    }

    /// True once this side sent (or queued) its close frame, by
    /// [`close`](Self::close), as the reply to the server's, or to fail the
    /// connection.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// True once the server's close frame was read.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// The code and reason of the server's close frame: `None` until one
    /// was read, or when it had no payload (see
    /// [`close_received`](Self::close_received)).
    pub fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref()
    }

    /// The error that failed the connection, if one did.
    pub fn error(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    // ------------------------------------------------------------------
    // Sending

    /// Appends a text message to `out`, in one frame.
    ///
    /// # Errors
    ///
    /// [`UsageError::SendAfterClose`] after [`close`](Self::close) (or once
    /// the connection is closed); [`UsageError::FragmentOrder`] while a
    /// fragmented message is being sent. Nothing is appended on error.
    pub fn send_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_whole(OpCode::Text, text.as_bytes(), out)
    }

    /// Appends a binary message to `out`, in one frame.
    ///
    /// # Errors
    ///
    /// As [`send_text`](Self::send_text).
    pub fn send_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_whole(OpCode::Binary, data, out)
    }

    /// Appends one fragment of a text or binary message to `out`.
    ///
    /// The first call starts a message of `kind`; later calls (with the
    /// same `kind`) continue it, and the call with `fin` ends it. Control
    /// frames ([`send_ping`](Self::send_ping), [`close`](Self::close)...)
    /// may be sent between fragments; other messages may not. Text may be
    /// split anywhere, even inside a character, but the fragments together
    /// must be UTF-8. With permessage-deflate each fragment is compressed
    /// and flushed, so it can be sent at once.
    ///
    /// ```
    /// use courier_ws::{DataKind, Limits, WebSocket};
    /// let mut ws = WebSocket::new(Limits::default(), None);
    /// let mut out = Vec::new();
    /// ws.send_fragment(DataKind::Text, "caf\u{e9}".as_bytes().split_at(4).0, false, &mut out)?;
    /// ws.send_fragment(DataKind::Text, b"\xa9", true, &mut out)?;
    /// assert_eq!(out[..2], [0x01, 0x84]); // text, no FIN
    /// assert_eq!(out[10..12], [0x80, 0x81]); // continuation, FIN
    /// # Ok::<(), courier_ws::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Nothing is appended, and the message in progress is unchanged, on
    /// error:
    ///
    /// * [`UsageError::SendAfterClose`] after [`close`](Self::close);
    /// * [`UsageError::FragmentOrder`] if `kind` differs from the message
    ///   in progress;
    /// * [`UsageError::InvalidUtf8`] if text fragments are not UTF-8 so far
    ///   (or, with `fin`, end inside a character).
    pub fn send_fragment(
        &mut self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        let (opcode, mut utf8) = match self.sending {
            None => (kind.opcode(), Utf8Validator::new()),
            Some(sending) if sending.kind == kind => (OpCode::Continuation, sending.utf8),
            Some(_) => return Err(UsageError::FragmentOrder.into()),
        };
        if kind == DataKind::Text {
            utf8.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                utf8.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
        }
        self.send_data(opcode, fin, data, out)?;
        self.sending = (!fin).then_some(Sending { kind, utf8 });
        Ok(())
    }

    /// Appends a ping to `out`; the server answers with a pong carrying
    /// the same payload.
    ///
    /// # Errors
    ///
    /// [`UsageError::ControlTooLong`] for a payload over 125 bytes;
    /// [`UsageError::SendAfterClose`] after [`close`](Self::close).
    pub fn send_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload, out)
    }

    /// Appends a pong to `out`: an unsolicited one (a one-way heartbeat),
    /// since [`read`](Self::read) answers pings itself.
    ///
    /// # Errors
    ///
    /// As [`send_ping`](Self::send_ping).
    pub fn send_pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload, out)
    }

    /// Appends this side's close frame to `out`: with a code and reason, or
    /// empty for `None`. Nothing can be sent afterwards; keep reading until
    /// the server's close frame arrives ([`is_closed`](Self::is_closed)).
    /// Messages that arrive meanwhile are still returned, but pings are no
    /// longer answered.
    ///
    /// # Errors
    ///
    /// Nothing is appended on error:
    ///
    /// * [`UsageError::InvalidCloseCode`] for a code that is not
    ///   [valid on the wire](CloseCode::is_valid_on_wire);
    /// * [`UsageError::ControlTooLong`] for a reason over
    ///   [`MAX_REASON_LEN`](crate::close::MAX_REASON_LEN) bytes;
    /// * [`UsageError::SendAfterClose`] if this side closed already (in
    ///   particular after replying to the server's close).
    pub fn close(
        &mut self,
        frame: Option<(CloseCode, &str)>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        let mut payload = Vec::new();
        if let Some((code, reason)) = frame {
            close::encode_payload(code, reason, &mut payload)?;
        }
        self.write_frame(OpCode::Close, true, false, &payload, out);
        self.close_sent = true;
        Ok(())
    }

    fn check_can_send(&self) -> Result<(), UsageError> {
        if self.close_sent || self.failed.is_some() {
            return Err(UsageError::SendAfterClose);
        }
        Ok(())
    }

    /// Sends a whole message in one frame.
    fn send_whole(&mut self, opcode: OpCode, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.check_can_send()?;
        if self.sending.is_some() {
            return Err(UsageError::FragmentOrder.into());
        }
        self.send_data(opcode, true, data, out)
    }

    fn send_control(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_can_send()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlTooLong.into());
        }
        self.write_frame(opcode, true, false, payload, out);
        Ok(())
    }

    /// Sends one data frame, compressed when permessage-deflate was
    /// negotiated (RSV1 on the first frame of the message).
    fn send_data(
        &mut self,
        opcode: OpCode,
        fin: bool,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let Some(params) = &self.deflate else {
            self.write_frame(opcode, fin, false, data, out);
            return Ok(());
        };
        let compressor = self
            .compressor
            .get_or_insert_with(|| Compressor::new(params));
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        if let Err(error) = compressor.compress(data, fin, &mut scratch) {
            // The compression context is lost mid-stream: nothing valid can
            // be sent any more. zlib only fails on misuse.
            self.failed = Some(error.clone());
            return Err(error);
        }
        self.write_frame(opcode, fin, opcode != OpCode::Continuation, &scratch, out);
        if scratch.capacity() <= KEEP_SCRATCH {
            self.scratch = scratch;
        }
        Ok(())
    }

    /// Appends one frame, masked with a fresh key.
    fn write_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mut key = [0u8; 4];
        self.rng.fill_bytes(&mut key);
        let header = FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        };
        out.reserve(header.encoded_len() + payload.len());
        header.encode(out);
        mask::extend_masked(out, payload, key);
    }
}

/// Makes room for `extra` more bytes in a message buffer, doubling its
/// capacity as `Vec` does but never past `max` (unless the bytes need it),
/// so a message of N bytes ends in a buffer of at most min(2N, `max`).
fn grow(data: &mut Vec<u8>, extra: usize, max: usize) {
    let needed = data.len().saturating_add(extra);
    if needed <= data.capacity() {
        return;
    }
    let target = needed.max(data.capacity().saturating_mul(2).min(max));
    data.reserve_exact(target - data.len());
}

#[cfg(test)]
mod tests;
