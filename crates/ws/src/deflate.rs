//! permessage-deflate (RFC 7692): the client's offer, the negotiation of the
//! server's answer, and the per-message compressor and decompressor.
//!
//! # Tour
//!
//! * [`DeflateConfig`] is what this side offers in
//!   `Sec-WebSocket-Extensions`; [`DeflateConfig::offer`] renders it.
//!   [`ClientHandshake::deflate`](crate::handshake::ClientHandshake::deflate)
//!   adds it to the opening handshake.
//! * [`negotiate`] checks the server's answer against the offer (RFC 7692
//!   §7.1) and yields the [`DeflateParams`] both sides then use. The
//!   handshake's [`validate`](crate::handshake::ClientHandshake::validate)
//!   calls it, so a bad answer fails the connection before any frame.
//! * The crate-private `Compressor` and `Decompressor` turn messages into
//!   raw DEFLATE (RFC 1951) and back, one frame payload at a time
//!   (RFC 7692 §7.2). Inflation is bounded by the message size limit, so a
//!   small frame cannot make this side allocate more than
//!   [`Limits::max_message_size`](crate::Limits::max_message_size).
//!
//! # Window sizes
//!
//! RFC 7692 allows LZ77 windows of 2^8 to 2^15 bytes. zlib (and zlib-rs,
//! which this crate uses) cannot run raw deflate with a 256-byte window, so:
//!
//! * this side never asks for 8 in its offer ([`DeflateConfig`] accepts
//!   9 to 15);
//! * a server answering `client_max_window_bits=8` (a limit on *our*
//!   compressor) is refused. zlib would run with 9 bits, and since it never
//!   refers back further than its window less 262 bytes (250 bytes here)
//!   that would in fact fit; but this crate only promises windows it
//!   actually configures;
//! * a server answering `server_max_window_bits=8` is accepted: its data is
//!   inflated with a window of 9 bits (zlib-rs in fact always keeps 32 KiB),
//!   and a larger window decodes anything a smaller one produced.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::{CapacityError, Error};
use crate::handshake::{ExtensionParam, HandshakeError, parse_extensions};

/// The extension token of permessage-deflate (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The four octets a sync flush ends with (an empty stored block), which a
/// sender strips from the end of each message and a receiver appends back
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Smallest and largest window a zlib raw deflate stream can be configured
/// with (RFC 7692 allows 8 as well; see the module docs).
const ZLIB_WINDOW_BITS: std::ops::RangeInclusive<u8> = 9..=15;

/// The compression level of outgoing messages: 2.
///
/// Measured with zlib-rs on a 64 KiB JSON-like message (release build,
/// fresh context): level 1 compresses at about 1.0-1.4 GB/s to 24.4 %,
/// level 2 at 0.55-0.7 GB/s to 18.6 %, level 6 (zlib's default, used by
/// Python's websockets and browsers) at 0.13-0.17 GB/s to 15.7 %. Level 2
/// keeps most of level 6's saving at four to five times its speed; level
/// 1 (zlib-rs's "quick" strategy, static Huffman codes only) is twice as
/// fast again but sends about 30 % more bytes than level 2, and sending
/// fewer bytes is what the extension is for.
const COMPRESSION_LEVEL: u32 = 2;

/// The first output room the decompressor reserves for a message, in
/// bytes; each later step doubles what the message already holds (so
/// copying stays linear), and no step reaches past the limit.
const FIRST_OUTPUT_STEP: usize = 4 * 1024;

/// Why compressed message data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// The compressed data is corrupt: not valid raw DEFLATE, or referring
    /// back further than the data received so far.
    #[error("corrupt compressed data")]
    Corrupt,
    /// The compressor refused its input. zlib only does this when misused;
    /// it is reported rather than hidden.
    #[error("compression failed")]
    Compress,
}

/// The permessage-deflate parameters this side offers (RFC 7692 §7.1).
///
/// Every field's doc gives its default and why. Pass the config to
/// [`ClientHandshake::deflate`](crate::handshake::ClientHandshake::deflate),
/// which refuses window sizes outside 9 to 15.
///
/// ```
/// use courier_ws::deflate::DeflateConfig;
///
/// let config = DeflateConfig::default();
/// assert_eq!(config.offer(), "permessage-deflate; client_max_window_bits");
///
/// let small = DeflateConfig::default()
///     .server_max_window_bits(Some(10))
///     .client_no_context_takeover(true);
/// assert_eq!(
///     small.offer(),
///     "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; \
///      client_max_window_bits",
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Declare that this side resets its compression context after every
    /// message (`client_no_context_takeover`, RFC 7692 §7.1.1.2).
    ///
    /// Defaults to `false`: keeping the context lets repeated content
    /// (JSON keys, common prefixes) compress to a few bytes in later
    /// messages. Set it to save the server the memory of our window between
    /// messages, at the cost of compression.
    pub client_no_context_takeover: bool,
    /// Ask the server to reset its compression context after every message
    /// (`server_no_context_takeover`, RFC 7692 §7.1.1.1). A server that
    /// accepts the extension without honouring it fails the handshake.
    ///
    /// Defaults to `false`: the server's context takeover costs this side
    /// nothing extra (the inflate window, 32 KiB with zlib-rs, exists
    /// either way) and improves compression of what we receive.
    pub server_no_context_takeover: bool,
    /// Our own compression window, as the base-2 logarithm of its size
    /// (`client_max_window_bits`, RFC 7692 §7.1.2.2).
    ///
    /// Defaults to `None`, which offers the bare parameter: "the server may
    /// pick any window for our compressor", which costs nothing and lets a
    /// memory-constrained server ask for less. `Some(n)`, 9 to 15, promises
    /// that we compress with at most 2^n bytes of window. 8 is not
    /// accepted: zlib cannot compress raw deflate with a 256-byte window.
    pub client_max_window_bits: Option<u8>,
    /// The largest window the server may compress with, as the base-2
    /// logarithm of its size (`server_max_window_bits`, RFC 7692 §7.1.2.1).
    /// A server that accepts the extension without confirming a window at
    /// most this large fails the handshake.
    ///
    /// Defaults to `None` (no limit asked, so the server may use 2^15
    /// bytes): any server can accept the offer, and a smaller server
    /// window saves this side nothing, because zlib-rs inflates with a
    /// 32 KiB window whatever the negotiated size. `Some(n)`, 9 to 15,
    /// saves the server memory, at some cost in compression.
    pub server_max_window_bits: Option<u8>,
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    ///
    /// Defaults to `false`.
    #[must_use]
    pub fn client_no_context_takeover(mut self, yes: bool) -> Self {
        self.client_no_context_takeover = yes;
        self
    }

    /// Sets [`DeflateConfig::server_no_context_takeover`].
    ///
    /// Defaults to `false`.
    #[must_use]
    pub fn server_no_context_takeover(mut self, yes: bool) -> Self {
        self.server_no_context_takeover = yes;
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`] (9 to 15; other
    /// values are refused by
    /// [`ClientHandshake::deflate`](crate::handshake::ClientHandshake::deflate)).
    ///
    /// Defaults to `None`.
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = bits;
        self
    }

    /// Sets [`DeflateConfig::server_max_window_bits`] (9 to 15; other
    /// values are refused by
    /// [`ClientHandshake::deflate`](crate::handshake::ClientHandshake::deflate)).
    ///
    /// Defaults to `None`.
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = bits;
        self
    }

    /// Checks that both window sizes, when set, are within 9 to 15.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidWindowBits`] naming the first bad value.
    pub fn check(&self) -> Result<(), HandshakeError> {
        for bits in [self.client_max_window_bits, self.server_max_window_bits]
            .into_iter()
            .flatten()
        {
            if !ZLIB_WINDOW_BITS.contains(&bits) {
                return Err(HandshakeError::InvalidWindowBits(bits));
            }
        }
        Ok(())
    }

    /// The `Sec-WebSocket-Extensions` element offering this config, e.g.
    /// `permessage-deflate; client_max_window_bits`.
    ///
    /// `client_max_window_bits` is always offered (bare when
    /// [`DeflateConfig::client_max_window_bits`] is `None`), so a server
    /// may always answer with it.
    pub fn offer(&self) -> String {
        let mut offer = String::from(EXTENSION_NAME);
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            offer.push_str("; server_max_window_bits=");
            offer.push_str(&bits.to_string());
        }
        offer.push_str("; client_max_window_bits");
        if let Some(bits) = self.client_max_window_bits {
            offer.push('=');
            offer.push_str(&bits.to_string());
        }
        offer
    }
}

/// The permessage-deflate parameters both sides agreed on: the result of
/// [`negotiate`].
///
/// The defaults are RFC 7692's when a parameter is absent: context
/// takeover on both sides and 15-bit (32 KiB) windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server resets its compression context after every message, so
    /// this side resets its decompressor too.
    pub server_no_context_takeover: bool,
    /// This side resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The base-2 logarithm of the server's compression window, 8 to 15.
    pub server_max_window_bits: u8,
    /// The base-2 logarithm of this side's compression window, 9 to 15
    /// when negotiated by this crate.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// Checks the server's permessage-deflate answer against `offer` (RFC 7692
/// §7.1) and returns the agreed parameters.
///
/// `answer` is one element of the server's `Sec-WebSocket-Extensions`, e.g.
/// `permessage-deflate; server_no_context_takeover`. Each parameter may
/// appear once. No-context-takeover parameters take no value; window sizes
/// are decimal 8 to 15 without leading zeros, as a token or a
/// quoted-string.
///
/// The answer is refused when it:
///
/// * is malformed, names another extension, or holds an unknown parameter;
/// * repeats a parameter or gives one a bad value;
/// * gives `client_max_window_bits` above the offered value, or equal to 8
///   (see the module docs), or without a value;
/// * gives `server_max_window_bits` above the one asked for, or leaves it
///   out although it was asked for;
/// * leaves out `server_no_context_takeover` although it was asked for.
///
/// ```
/// use courier_ws::deflate::{DeflateConfig, negotiate};
///
/// let offer = DeflateConfig::default();
/// let params = negotiate(&offer, "permessage-deflate; client_max_window_bits=10").unwrap();
/// assert_eq!(params.client_max_window_bits, 10);
/// assert_eq!(params.server_max_window_bits, 15);
/// assert!(negotiate(&offer, "permessage-deflate; foo").is_err());
/// ```
///
/// # Errors
///
/// [`HandshakeError::BadExtension`] naming the problem, or
/// [`HandshakeError::InvalidWindowBits`] when `offer` itself is invalid
/// (see [`DeflateConfig::check`]).
pub fn negotiate(offer: &DeflateConfig, answer: &str) -> Result<DeflateParams, HandshakeError> {
    let mut extensions = Vec::new();
    parse_extensions(answer.as_bytes(), &mut extensions)?;
    match extensions.as_slice() {
        [only] if only.name.eq_ignore_ascii_case(EXTENSION_NAME) => {
            negotiate_params(offer, &only.params)
        }
        [only] => Err(HandshakeError::ExtensionNotOffered(only.name.clone())),
        [] => Err(bad("no extension in the answer")),
        _ => Err(bad("more than one extension in the answer")),
    }
}

/// [`negotiate`] on the parameters of an already parsed answer.
pub(crate) fn negotiate_params(
    offer: &DeflateConfig,
    params: &[ExtensionParam],
) -> Result<DeflateParams, HandshakeError> {
    offer.check()?;
    let mut server_no_context_takeover = false;
    let mut client_no_context_takeover = false;
    let mut server_max_window_bits: Option<u8> = None;
    let mut client_max_window_bits: Option<u8> = None;
    for param in params {
        let name = param.name.as_str();
        let value = param.value.as_deref();
        if name.eq_ignore_ascii_case("server_no_context_takeover") {
            flag(&mut server_no_context_takeover, name, value)?;
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            flag(&mut client_no_context_takeover, name, value)?;
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            let bits = window_bits(&server_max_window_bits, "server_max_window_bits", value)?;
            if offer
                .server_max_window_bits
                .is_some_and(|asked| bits > asked)
            {
                return Err(bad("server_max_window_bits above the requested value"));
            }
            server_max_window_bits = Some(bits);
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            // Always offered (see `DeflateConfig::offer`), so the server may
            // always answer it, but only with a value (§7.1.2.2).
            let bits = window_bits(&client_max_window_bits, "client_max_window_bits", value)?;
            if offer
                .client_max_window_bits
                .is_some_and(|offered| bits > offered)
            {
                return Err(bad("client_max_window_bits above the offered value"));
            }
            if bits < *ZLIB_WINDOW_BITS.start() {
                return Err(bad(
                    "client_max_window_bits=8 is not supported (zlib cannot compress with a \
                     256-byte window)",
                ));
            }
            client_max_window_bits = Some(bits);
        } else {
            return Err(HandshakeError::BadExtension(format!(
                "unknown permessage-deflate parameter {name:?}"
            )));
        }
    }
    if offer.server_no_context_takeover && !server_no_context_takeover {
        return Err(bad(
            "server_no_context_takeover was requested but the answer leaves it out",
        ));
    }
    if offer.server_max_window_bits.is_some() && server_max_window_bits.is_none() {
        return Err(bad(
            "server_max_window_bits was requested but the answer leaves it out",
        ));
    }
    Ok(DeflateParams {
        server_no_context_takeover,
        // Offering it already promised that this side resets (§7.1.1.2).
        client_no_context_takeover: client_no_context_takeover || offer.client_no_context_takeover,
        server_max_window_bits: server_max_window_bits.unwrap_or(15),
        // Without an answer, the offered value (if any) still binds us
        // (§7.1.2.2).
        client_max_window_bits: client_max_window_bits
            .or(offer.client_max_window_bits)
            .unwrap_or(15),
    })
}

/// A [`HandshakeError::BadExtension`] with a fixed description.
fn bad(what: &str) -> HandshakeError {
    HandshakeError::BadExtension(what.to_owned())
}

/// Records a no-context-takeover parameter, which takes no value and may
/// appear once.
fn flag(seen: &mut bool, name: &str, value: Option<&str>) -> Result<(), HandshakeError> {
    if *seen {
        return Err(HandshakeError::BadExtension(format!("{name} given twice")));
    }
    if value.is_some() {
        return Err(HandshakeError::BadExtension(format!(
            "{name} must not have a value"
        )));
    }
    *seen = true;
    Ok(())
}

/// Parses a window-bits parameter of the answer: present once, with a
/// value of 8 to 15 in decimal without leading zeros (RFC 7692 §7.1.2).
fn window_bits(
    previous: &Option<u8>,
    name: &str,
    value: Option<&str>,
) -> Result<u8, HandshakeError> {
    if previous.is_some() {
        return Err(HandshakeError::BadExtension(format!("{name} given twice")));
    }
    let value =
        value.ok_or_else(|| HandshakeError::BadExtension(format!("{name} without a value")))?;
    match value {
        "8" => Ok(8),
        "9" => Ok(9),
        "10" => Ok(10),
        "11" => Ok(11),
        "12" => Ok(12),
        "13" => Ok(13),
        "14" => Ok(14),
        "15" => Ok(15),
        _ => Err(HandshakeError::BadExtension(format!(
            "{name} must be 8 to 15"
        ))),
    }
}

/// Compresses outgoing messages (RFC 7692 §7.2.1), one fragment at a time.
pub(crate) struct Compressor {
    deflate: Compress,
    /// Reset the context after each message (`client_no_context_takeover`).
    no_context_takeover: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("total_in", &self.deflate.total_in())
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor with the negotiated window (`client_max_window_bits`).
    ///
    /// A window below 9 bits (only possible with hand-made
    /// [`DeflateParams`]; [`negotiate`] refuses it) runs with 9 bits: zlib
    /// never emits a distance beyond its window less 262 bytes, which for
    /// 9 bits is 250, within even an 8-bit peer window.
    pub(crate) fn new(params: &DeflateParams) -> Compressor {
        let bits = params
            .client_max_window_bits
            .clamp(*ZLIB_WINDOW_BITS.start(), *ZLIB_WINDOW_BITS.end());
        Compressor {
            deflate: Compress::new_with_window_bits(
                flate2::Compression::new(COMPRESSION_LEVEL),
                false,
                bits,
            ),
            no_context_takeover: params.client_no_context_takeover,
        }
    }

    /// Compresses one fragment of a message, appending raw DEFLATE to `out`.
    ///
    /// Every call ends with a sync flush, so each fragment's payload is
    /// complete on arrival. With `fin` (the message's last fragment) the
    /// flush's trailing `00 00 ff ff` is removed (RFC 7692 §7.2.1) and,
    /// under `client_no_context_takeover`, the context is reset for the next
    /// message. An empty message compresses to the single byte `00`
    /// (RFC 7692 §7.2.3.6).
    ///
    /// # Errors
    ///
    /// [`DeflateError::Compress`] if zlib refuses the call, which only
    /// misuse can cause.
    pub(crate) fn compress(
        &mut self,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let start = out.len();
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 1024);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(|_| DeflateError::Compress)?;
            // At most `input.len()`, so it fits a `usize`.
            let used = usize::try_from(self.deflate.total_in() - before).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            // zlib has flushed everything once it leaves output room unused
            // with no input left.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if fin {
            if out.len() >= start + TAIL.len() && out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.len() == start {
                // zlib skips a sync flush right after another one (the
                // previous message or fragment ended on one), leaving no
                // bytes; yet the receiver appends the tail, so the message
                // must end in a stripped empty stored block: its header
                // byte (BFINAL 0, BTYPE 00, padding), as in §7.2.3.6.
                out.push(0x00);
            } else {
                // A finished sync flush always ends with the tail.
                return Err(DeflateError::Compress.into());
            }
            if self.no_context_takeover {
                self.deflate.reset();
            }
        }
        Ok(())
    }
}

/// Inflates incoming compressed messages (RFC 7692 §7.2.2), one frame
/// payload at a time, within the message size limit.
pub(crate) struct Decompressor {
    inflate: Decompress,
    /// Reset the context after each message (`server_no_context_takeover`).
    no_context_takeover: bool,
    /// Some frame of the current message carried compressed bytes.
    message_has_data: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("total_out", &self.inflate.total_out())
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor with the negotiated server window
    /// (`server_max_window_bits`), raised to 9 bits when it is 8: a larger
    /// window decodes whatever a smaller one produced.
    pub(crate) fn new(params: &DeflateParams) -> Decompressor {
        let bits = params
            .server_max_window_bits
            .clamp(*ZLIB_WINDOW_BITS.start(), *ZLIB_WINDOW_BITS.end());
        Decompressor {
            inflate: Decompress::new_with_window_bits(false, bits),
            no_context_takeover: params.server_no_context_takeover,
            message_has_data: false,
        }
    }

    /// Inflates one frame's payload of a compressed message, appending to
    /// `out`, which holds at most `max_len` bytes of the message.
    ///
    /// With `fin` (the message's last frame) the `00 00 ff ff` tail the
    /// sender stripped is fed after the data (RFC 7692 §7.2.2; skipped when
    /// the whole message carried no byte, which can only mean an empty
    /// message from a sloppy sender) and, under
    /// `server_no_context_takeover`, the context is reset for the next
    /// message.
    ///
    /// Inflation runs in steps of bounded output room: `out`'s capacity
    /// grows from 4 KiB by doubling, and is never raised past `max_len`, so
    /// a decompression bomb cannot make this side allocate more than the
    /// limit. Once `out` holds `max_len` bytes, a one-byte probe on the
    /// stack tells whether the data holds more.
    ///
    /// # Errors
    ///
    /// [`CapacityError::MessageTooLong`] with `max_len` as soon as the
    /// message would grow past `max_len`; [`DeflateError::Corrupt`] for
    /// data that is not raw DEFLATE. After an error the context is
    /// unusable; the caller fails the connection.
    pub(crate) fn decompress(
        &mut self,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), Error> {
        self.inflate_bounded(data, out, max_len)?;
        self.message_has_data |= !data.is_empty();
        if fin {
            // A message whose frames carried no byte at all is empty. Its
            // proper encoding is `00` (§7.2.3.6), but some senders drop
            // even that; feeding the tail alone would start a stored block
            // of 65280 bytes and swallow the following messages.
            if self.message_has_data {
                self.inflate_bounded(&TAIL, out, max_len)?;
            }
            self.message_has_data = false;
            if self.no_context_takeover {
                self.inflate.reset(false);
            }
        }
        Ok(())
    }

    /// Inflates all of `input` into `out`, keeping `out.len() <= max_len`.
    fn inflate_bounded(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(), Error> {
        let too_long = || Error::Capacity(CapacityError::MessageTooLong { max: max_len });
        loop {
            if out.len() > max_len {
                return Err(too_long());
            }
            if out.len() == max_len {
                // Full: any further byte of output is one too many.
                let mut probe = [0u8; 1];
                let (used, produced, status) = self.step(input, &mut probe)?;
                if produced > 0 {
                    return Err(too_long());
                }
                input = input.get(used..).unwrap_or_default();
                if status == Status::StreamEnd {
                    self.inflate.reset(false);
                } else if used == 0 {
                    // No input taken and no output: everything is decoded
                    // (or more input is needed).
                    return Ok(());
                }
                continue;
            }
            if out.capacity() == out.len() {
                let step = out.len().max(FIRST_OUTPUT_STEP).min(max_len - out.len());
                out.reserve_exact(step);
            }
            let before_in = self.inflate.total_in();
            let before_len = out.len();
            let status = self
                .inflate
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|_| DeflateError::Corrupt)?;
            // At most `input.len()`, so it fits a `usize`.
            let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            let produced = out.len() - before_len;
            if status == Status::StreamEnd {
                // A block with BFINAL set ends the DEFLATE stream (allowed by
                // RFC 7692 §7.2.3.4); whatever follows, including the tail
                // appended at the end of the message, starts a new one.
                self.inflate.reset(false);
                if input.is_empty() {
                    return Ok(());
                }
                continue;
            }
            let room_left = out.len() < out.capacity();
            if input.is_empty() && room_left {
                // zlib stops with output room to spare only when it needs
                // more input: this input is fully decoded.
                return Ok(());
            }
            if used == 0 && produced == 0 && room_left {
                // Input and room, yet no progress: not a DEFLATE stream.
                return Err(DeflateError::Corrupt.into());
            }
        }
    }

    /// One inflate call into `output`: (input used, output produced, status).
    fn step(&mut self, input: &[u8], output: &mut [u8]) -> Result<(usize, usize, Status), Error> {
        let before_in = self.inflate.total_in();
        let before_out = self.inflate.total_out();
        let status = self
            .inflate
            .decompress(input, output, FlushDecompress::None)
            .map_err(|_| DeflateError::Corrupt)?;
        // Bounded by the slice lengths, so both fit a `usize`.
        let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(input.len());
        let produced =
            usize::try_from(self.inflate.total_out() - before_out).unwrap_or(output.len());
        Ok((used, produced, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters where both directions use `bits` and `no_takeover`, so
    /// one side's compressor output suits the other's decompressor.
    fn mirrored(bits: u8, no_takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_takeover,
            client_no_context_takeover: no_takeover,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
        }
    }

    fn compress_message(compressor: &mut Compressor, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compressor.compress(message, true, &mut out).unwrap();
        out
    }

    fn inflate_message(decompressor: &mut Decompressor, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor
            .decompress(payload, true, &mut out, usize::MAX)
            .unwrap();
        out
    }

    /// Deterministic pseudo-random bytes (xorshift), for data that does not
    /// compress.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()[0]
            })
            .collect()
    }

    /// Text with repeats both near and far (beyond a 512-byte window).
    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(
                format!(
                    "{{\"id\":{i},\"name\":\"user{}\",\"active\":true}},",
                    i % 37
                )
                .as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    // RFC 7692 §7.2.3.1: "Hello" in one compressed frame.
    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn rfc_hello_compresses_to_the_example_bytes() {
        let mut compressor = Compressor::new(&DeflateParams::default());
        assert_eq!(compress_message(&mut compressor, b"Hello"), HELLO);
    }

    #[test]
    fn rfc_hello_inflates_whole_and_fragmented() {
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");

        // §7.2.3.1: the same data split over two frames.
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        decompressor
            .decompress(&[0xf2, 0x48, 0xcd], false, &mut out, 100)
            .unwrap();
        decompressor
            .decompress(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn rfc_second_message_with_and_without_context_takeover() {
        // §7.2.3.2: with context takeover the second "Hello" is a back
        // reference into the first message.
        let shared = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
        assert_eq!(inflate_message(&mut decompressor, &shared), b"Hello");
        // Our level-1 compressor picks another (equally short) encoding of
        // the same back reference.
        let mut compressor = Compressor::new(&DeflateParams::default());
        assert_eq!(compress_message(&mut compressor, b"Hello"), HELLO);
        let second = compress_message(&mut compressor, b"Hello");
        assert!(second.len() <= shared.len(), "{second:02x?}");
        assert_eq!(inflate_message(&mut decompressor, &second), b"Hello");

        // Without it, every message compresses as the first did.
        let params = mirrored(15, true);
        let mut compressor = Compressor::new(&params);
        assert_eq!(compress_message(&mut compressor, b"Hello"), HELLO);
        assert_eq!(compress_message(&mut compressor, b"Hello"), HELLO);
        let mut decompressor = Decompressor::new(&params);
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
        // ...and a back reference into a reset context is corrupt.
        let mut out = Vec::new();
        assert_eq!(
            decompressor.decompress(&shared, true, &mut out, 100),
            Err(Error::Deflate(DeflateError::Corrupt))
        );
    }

    #[test]
    fn rfc_stored_block_bfinal_and_two_blocks() {
        let cases: [&[u8]; 3] = [
            // §7.2.3.3: a block with no compression.
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            // §7.2.3.4: a block with BFINAL set.
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            // §7.2.3.5: two blocks in one message.
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ];
        for payload in cases {
            let mut decompressor = Decompressor::new(&DeflateParams::default());
            assert_eq!(inflate_message(&mut decompressor, payload), b"Hello");
            // The context still works for a following message.
            assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
        }
    }

    #[test]
    fn rfc_empty_message_is_one_zero_byte() {
        // §7.2.3.6, first in a context and then after other messages (where
        // zlib itself would emit nothing for the flush).
        for no_takeover in [false, true] {
            let params = mirrored(15, no_takeover);
            let mut compressor = Compressor::new(&params);
            let mut decompressor = Decompressor::new(&params);
            for message in [&b""[..], b"Hello", b"", b"", b"Hello", b""] {
                let payload = compress_message(&mut compressor, message);
                if message.is_empty() {
                    assert_eq!(payload, [0x00]);
                }
                assert_eq!(inflate_message(&mut decompressor, &payload), message);
            }
        }
    }

    #[test]
    fn empty_final_fragment() {
        let mut compressor = Compressor::new(&DeflateParams::default());
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        for _ in 0..3 {
            let mut first = Vec::new();
            compressor.compress(b"Hello", false, &mut first).unwrap();
            let mut last = Vec::new();
            compressor.compress(b"", true, &mut last).unwrap();
            assert_eq!(last, [0x00]);
            let mut out = Vec::new();
            decompressor
                .decompress(&first, false, &mut out, 100)
                .unwrap();
            decompressor.decompress(&last, true, &mut out, 100).unwrap();
            assert_eq!(out, b"Hello");
        }
    }

    #[test]
    fn empty_payload_is_an_empty_message() {
        // Not the RFC's encoding, but some senders produce it; it must not
        // derail the messages after it.
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
        assert_eq!(inflate_message(&mut decompressor, &[]), b"");
        let mut out = Vec::new();
        decompressor.decompress(&[], false, &mut out, 100).unwrap();
        decompressor.decompress(&[], true, &mut out, 100).unwrap();
        assert!(out.is_empty());
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
    }

    #[test]
    fn round_trips_every_window_and_takeover_combination() {
        let messages = [
            text(20_000),
            text(20_000),
            Vec::new(),
            noise(70_000, 7),
            b"Hello".to_vec(),
            text(200_000),
        ];
        for bits in 9..=15 {
            for no_takeover in [false, true] {
                let params = mirrored(bits, no_takeover);
                let mut compressor = Compressor::new(&params);
                let mut decompressor = Decompressor::new(&params);
                let mut payloads = Vec::new();
                for message in &messages {
                    let payload = compress_message(&mut compressor, message);
                    let back = inflate_message(&mut decompressor, &payload);
                    assert!(back == *message, "bits {bits}, no_takeover {no_takeover}");
                    payloads.push(payload);
                }
                // A repeated message compresses the same only without
                // takeover; with it, a 32 KiB window holds all of the first
                // copy, so the second is mostly long back references.
                if no_takeover {
                    assert_eq!(payloads[0], payloads[1], "bits {bits}");
                } else {
                    assert_ne!(payloads[0], payloads[1], "bits {bits}");
                }
                if bits == 15 && !no_takeover {
                    assert!(payloads[1].len() < payloads[0].len() / 2);
                }
            }
        }
    }

    #[test]
    fn compressor_uses_the_negotiated_window() {
        // Repeats 900 bytes apart: zlib reaches back its window less 262
        // bytes, so only windows of 2 KiB and up find them.
        // (zlib-rs inflates with a 32 KiB window whatever it is told, so a
        // too-far reference cannot be caught on the receiving side here;
        // zlib never emits a distance beyond its window less 262 bytes.)
        let mut data = noise(900, 3);
        data.extend_from_within(..);
        let mut sizes = Vec::new();
        for bits in 9..=15 {
            let params = mirrored(bits, false);
            let payload = compress_message(&mut Compressor::new(&params), &data);
            let back = inflate_message(&mut Decompressor::new(&params), &payload);
            assert!(back == data, "bits {bits}");
            sizes.push(payload.len());
        }
        assert!(sizes[..2].iter().all(|&size| size > 1800), "{sizes:?}");
        assert!(sizes[2..].iter().all(|&size| size < 1000), "{sizes:?}");
    }

    #[test]
    fn server_window_of_8_inflates_with_9() {
        let params = DeflateParams {
            server_max_window_bits: 8,
            ..DeflateParams::default()
        };
        let mut decompressor = Decompressor::new(&params);
        assert_eq!(inflate_message(&mut decompressor, &HELLO), b"Hello");
    }

    #[test]
    fn fragmented_compression_inflates_frame_by_frame() {
        let message = text(50_000);
        for no_takeover in [false, true] {
            let params = mirrored(15, no_takeover);
            let mut compressor = Compressor::new(&params);
            let mut decompressor = Decompressor::new(&params);
            for _round in 0..3 {
                let pieces = [&message[..10], &message[10..30_000], &message[30_000..]];
                let mut frames = Vec::new();
                for (i, piece) in pieces.iter().enumerate() {
                    let mut frame = Vec::new();
                    compressor
                        .compress(piece, i == pieces.len() - 1, &mut frame)
                        .unwrap();
                    frames.push(frame);
                }
                // Non-final fragments end on a sync flush.
                assert!(frames[0].ends_with(&TAIL));
                assert!(!frames[2].ends_with(&TAIL));
                let mut out = Vec::new();
                for (i, frame) in frames.iter().enumerate() {
                    decompressor
                        .decompress(frame, i == frames.len() - 1, &mut out, message.len())
                        .unwrap();
                }
                assert!(out == message);
            }
        }
    }

    #[test]
    fn payload_split_at_every_offset() {
        let message = b"Hello, Hello, permessage-deflate world! Hello again.";
        let mut compressor = Compressor::new(&DeflateParams::default());
        let payload = compress_message(&mut compressor, message);
        for cut in 0..=payload.len() {
            let mut decompressor = Decompressor::new(&DeflateParams::default());
            let mut out = Vec::new();
            decompressor
                .decompress(&payload[..cut], false, &mut out, message.len())
                .unwrap();
            decompressor
                .decompress(&payload[cut..], true, &mut out, message.len())
                .unwrap();
            assert_eq!(out, message, "cut at {cut}");
        }
    }

    #[test]
    fn limit_is_exact() {
        let message = text(100_000);
        let mut compressor = Compressor::new(&DeflateParams::default());
        let payload = compress_message(&mut compressor, &message);

        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        decompressor
            .decompress(&payload, true, &mut out, message.len())
            .unwrap();
        assert!(out == message);
        assert!(out.capacity() <= message.len());

        let max = message.len() - 1;
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        assert_eq!(
            decompressor.decompress(&payload, true, &mut out, max),
            Err(Error::Capacity(CapacityError::MessageTooLong { max }))
        );
        assert!(out.len() <= max && out.capacity() <= max);
    }

    #[test]
    fn limit_counts_earlier_frames_of_the_message() {
        let mut compressor = Compressor::new(&DeflateParams::default());
        let mut first = Vec::new();
        compressor
            .compress(&[b'a'; 600], false, &mut first)
            .unwrap();
        let mut second = Vec::new();
        compressor
            .compress(&[b'b'; 600], true, &mut second)
            .unwrap();

        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        decompressor
            .decompress(&first, false, &mut out, 1000)
            .unwrap();
        assert_eq!(out.len(), 600);
        assert_eq!(
            decompressor.decompress(&second, true, &mut out, 1000),
            Err(Error::Capacity(CapacityError::MessageTooLong { max: 1000 }))
        );
    }

    #[test]
    fn bomb_is_refused_at_the_limit_without_growing_past_it() {
        // 100 MiB of zeros: 1 MiB compressed once and sync-flushed, then
        // repeated (each copy's back references reach into the one before,
        // so the repeats decode as more zeros).
        let mut deflate = Compress::new(flate2::Compression::new(9), false);
        let mut chunk = Vec::with_capacity(64 * 1024);
        deflate
            .compress_vec(&vec![0u8; 1 << 20], &mut chunk, FlushCompress::Sync)
            .unwrap();
        assert_eq!(deflate.total_in(), 1 << 20);
        assert!(chunk.ends_with(&TAIL));
        let bomb = chunk.repeat(100);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        // The bomb is genuine: 100 MiB come out without a limit.
        let mut check = Decompress::new(false);
        let mut sink = vec![0u8; 1 << 20];
        let mut rest = &bomb[..];
        while !rest.is_empty() {
            let before = check.total_in();
            check
                .decompress(rest, &mut sink, FlushDecompress::None)
                .unwrap();
            rest = &rest[usize::try_from(check.total_in() - before).unwrap()..];
        }
        assert_eq!(check.total_out(), 100 << 20);

        let max = 4 << 20;
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        assert_eq!(
            decompressor.decompress(&bomb, true, &mut out, max),
            Err(Error::Capacity(CapacityError::MessageTooLong { max }))
        );
        assert_eq!(out.len(), max);
        assert!(out.capacity() <= max, "capacity {}", out.capacity());

        // A small limit stops it just as early.
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        assert_eq!(
            decompressor.decompress(&bomb, false, &mut out, 1000),
            Err(Error::Capacity(CapacityError::MessageTooLong { max: 1000 }))
        );
        assert!(out.capacity() <= 1000);
    }

    #[test]
    fn zero_limit_accepts_only_empty_messages() {
        let mut decompressor = Decompressor::new(&DeflateParams::default());
        let mut out = Vec::new();
        decompressor.decompress(&[0x00], true, &mut out, 0).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            decompressor.decompress(&HELLO, true, &mut out, 0),
            Err(Error::Capacity(CapacityError::MessageTooLong { max: 0 }))
        );
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let cases: [&[u8]; 4] = [
            // BTYPE 11 is reserved.
            &[0xff, 0xff, 0xff],
            // A stored block whose NLEN is not the complement of LEN.
            &[0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o'],
            // A back reference with nothing before it.
            &[0xf2, 0x00, 0x11, 0x00, 0x00],
            // A zlib header, which permessage-deflate never has.
            &[0x78, 0x9c, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        ];
        for payload in cases {
            let mut decompressor = Decompressor::new(&DeflateParams::default());
            let mut out = Vec::new();
            assert_eq!(
                decompressor.decompress(payload, true, &mut out, 1 << 20),
                Err(Error::Deflate(DeflateError::Corrupt)),
                "{payload:02x?}"
            );
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        for seed in 1..300u64 {
            let len = usize::try_from(seed * 7 % 300).unwrap();
            let payload = noise(len, seed);
            let mut decompressor = Decompressor::new(&mirrored(9, seed % 2 == 0));
            let mut out = Vec::new();
            let result = decompressor.decompress(&payload, true, &mut out, 4096);
            assert!(out.len() <= 4096);
            if let Err(err) = result {
                assert!(matches!(err, Error::Deflate(_) | Error::Capacity(_)));
            }
        }
    }

    #[test]
    fn hand_made_params_never_panic() {
        for bits in [0, 8, 16, 255] {
            let params = mirrored(bits, false);
            let mut compressor = Compressor::new(&params);
            let mut decompressor = Decompressor::new(&params);
            let payload = compress_message(&mut compressor, b"Hello Hello Hello");
            assert_eq!(
                inflate_message(&mut decompressor, &payload),
                b"Hello Hello Hello"
            );
        }
    }

    // Offer rendering and checking.

    #[test]
    fn offers() {
        assert_eq!(
            DeflateConfig::default().offer(),
            "permessage-deflate; client_max_window_bits"
        );
        let all = DeflateConfig::default()
            .client_no_context_takeover(true)
            .server_no_context_takeover(true)
            .client_max_window_bits(Some(12))
            .server_max_window_bits(Some(9));
        assert_eq!(
            all.offer(),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=12"
        );
        assert_eq!(all.check(), Ok(()));
        for bad in [0, 8, 16] {
            let client = DeflateConfig::default().client_max_window_bits(Some(bad));
            assert_eq!(client.check(), Err(HandshakeError::InvalidWindowBits(bad)));
            let server = DeflateConfig::default().server_max_window_bits(Some(bad));
            assert_eq!(server.check(), Err(HandshakeError::InvalidWindowBits(bad)));
        }
    }

    // Negotiation (RFC 7692 §7.1).

    fn params(
        server_nct: bool,
        client_nct: bool,
        server_bits: u8,
        client_bits: u8,
    ) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }
    }

    #[test]
    fn accepted_answers() {
        let plain = DeflateConfig::default();
        let asks_all = DeflateConfig::default()
            .client_no_context_takeover(true)
            .server_no_context_takeover(true)
            .client_max_window_bits(Some(12))
            .server_max_window_bits(Some(10));
        let cases: Vec<(&DeflateConfig, &str, DeflateParams)> = vec![
            (&plain, "permessage-deflate", DeflateParams::default()),
            (&plain, "PerMessage-Deflate", DeflateParams::default()),
            (
                &plain,
                "permessage-deflate; server_no_context_takeover",
                params(true, false, 15, 15),
            ),
            // The server may impose client_no_context_takeover unasked.
            (
                &plain,
                "permessage-deflate;client_no_context_takeover",
                params(false, true, 15, 15),
            ),
            // ...and a server window unasked, down to 8.
            (
                &plain,
                "permessage-deflate; server_max_window_bits=8",
                params(false, false, 8, 15),
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=\"12\"",
                params(false, false, 12, 15),
            ),
            (
                &plain,
                "permessage-deflate; client_max_window_bits=9",
                params(false, false, 15, 9),
            ),
            (
                &plain,
                "permessage-deflate ; client_max_window_bits = 15 ; server_max_window_bits=15",
                params(false, false, 15, 15),
            ),
            (
                &plain,
                "permessage-deflate; Server_No_Context_Takeover; CLIENT_MAX_WINDOW_BITS=10",
                params(true, false, 15, 10),
            ),
            // Our offered flags and window bind us even unanswered.
            (
                &asks_all,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
                params(true, true, 10, 12),
            ),
            (
                &asks_all,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=8; \
                 client_max_window_bits=11; client_no_context_takeover",
                params(true, true, 8, 11),
            ),
            (
                &asks_all,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
                 client_max_window_bits=12",
                params(true, true, 9, 12),
            ),
        ];
        for (offer, answer, expected) in cases {
            assert_eq!(negotiate(offer, answer), Ok(expected), "{answer}");
        }
    }

    #[test]
    fn refused_answers() {
        let plain = DeflateConfig::default();
        let asks_server = DeflateConfig::default()
            .server_no_context_takeover(true)
            .server_max_window_bits(Some(10));
        let limits_client = DeflateConfig::default().client_max_window_bits(Some(10));
        let cases: Vec<(&DeflateConfig, &str, &str)> = vec![
            (
                &plain,
                "permessage-deflate; foo",
                "unknown permessage-deflate parameter",
            ),
            (
                &plain,
                "permessage-deflate; foo=1",
                "unknown permessage-deflate parameter",
            ),
            (
                &plain,
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "server_no_context_takeover given twice",
            ),
            (
                &plain,
                "permessage-deflate; client_no_context_takeover=1",
                "client_no_context_takeover must not have a value",
            ),
            (
                &plain,
                "permessage-deflate; server_no_context_takeover=\"\"",
                "malformed header",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits",
                "server_max_window_bits without a value",
            ),
            (
                &plain,
                "permessage-deflate; client_max_window_bits",
                "client_max_window_bits without a value",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=7",
                "server_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=16",
                "server_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=010",
                "server_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=+9",
                "server_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=9.0",
                "server_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=9 10",
                "malformed header",
            ),
            (
                &plain,
                "permessage-deflate; client_max_window_bits=0x9",
                "client_max_window_bits must be 8 to 15",
            ),
            (
                &plain,
                "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",
                "client_max_window_bits given twice",
            ),
            (
                &plain,
                "permessage-deflate; client_max_window_bits=8",
                "client_max_window_bits=8 is not supported",
            ),
            (
                &limits_client,
                "permessage-deflate; client_max_window_bits=11",
                "client_max_window_bits above the offered value",
            ),
            (
                &asks_server,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                "server_max_window_bits above the requested value",
            ),
            (
                &asks_server,
                "permessage-deflate; server_no_context_takeover",
                "server_max_window_bits was requested",
            ),
            (
                &asks_server,
                "permessage-deflate; server_max_window_bits=10",
                "server_no_context_takeover was requested",
            ),
            (&plain, "permessage-deflate;", "malformed header"),
            (&plain, "permessage-deflate; =1", "malformed header"),
            (&plain, "permessage-deflate; a b", "malformed header"),
            (
                &plain,
                "permessage-deflate; server_max_window_bits=\"9",
                "malformed header",
            ),
            (&plain, "", "no extension in the answer"),
            (
                &plain,
                "permessage-deflate, permessage-deflate",
                "more than one extension",
            ),
        ];
        for (offer, answer, expected) in cases {
            match negotiate(offer, answer) {
                Err(HandshakeError::BadExtension(why)) => {
                    assert!(why.starts_with(expected), "{answer}: {why}");
                }
                other => panic!("{answer}: {other:?}"),
            }
        }
        assert_eq!(
            negotiate(&plain, "x-webkit-deflate-frame"),
            Err(HandshakeError::ExtensionNotOffered(
                "x-webkit-deflate-frame".into()
            ))
        );
        let invalid = DeflateConfig::default().client_max_window_bits(Some(8));
        assert_eq!(
            negotiate(&invalid, "permessage-deflate"),
            Err(HandshakeError::InvalidWindowBits(8))
        );
    }
}
