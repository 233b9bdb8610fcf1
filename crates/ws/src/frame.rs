//! Frame headers (RFC 6455 §5.2): opcodes, the FIN and RSV bits, the
//! payload length and the masking key.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! [`FrameHeader::parse`] enforces the rules that hold for every frame
//! whoever sent it: known opcodes, control frames unfragmented and at most
//! 125 bytes, lengths in their shortest form. The rules that depend on the
//! connection (a server's frames are unmasked, RSV bits only with a
//! negotiated extension, the order of fragments) are checked by
//! [`WebSocket`](crate::WebSocket).

use crate::error::{Error, ProtocolError};

/// The largest payload of a control frame (close, ping, pong), RFC 6455
/// §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The largest frame header: 2 bytes, an 8-byte extended length and a
/// 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest length of the 7-bit form; 126 and 127 announce the longer forms.
const LEN7_MAX: u64 = 125;
/// Smallest length of the 16-bit form.
const LEN16_MIN: u64 = LEN7_MAX + 1;
/// Largest length of the 16-bit form.
const LEN16_MAX: u64 = 0xffff;

/// A frame's opcode (RFC 6455 §5.2, §11.8).
///
/// The opcodes RFC 6455 reserves (3-7 and 0xB-0xF) have no variant: they
/// are refused with [`ProtocolError::UnknownOpcode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a later fragment of a text or binary message.
    Continuation,
    /// 0x1: the first (or only) frame of a text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: close (control).
    Close,
    /// 0x9: ping (control).
    Ping,
    /// 0xA: pong (control).
    Pong,
}

impl OpCode {
    /// The opcode with the value `bits` (the low four bits of a frame's
    /// first byte).
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UnknownOpcode`] for reserved values and for values
    /// above 0xF.
    pub fn from_u8(bits: u8) -> Result<OpCode, ProtocolError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The opcode's value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// True for close, ping and pong, whose frames may come between the
    /// fragments of a message but are never fragmented themselves.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;

    fn try_from(bits: u8) -> Result<OpCode, ProtocolError> {
        OpCode::from_u8(bits)
    }
}

impl From<OpCode> for u8 {
    fn from(opcode: OpCode) -> u8 {
        opcode.as_u8()
    }
}

/// A frame header: everything before the payload.
///
/// ```
/// use courier_ws::frame::{FrameHeader, OpCode};
/// // A server's unmasked text frame "Hello" (RFC 6455 §5.7).
/// let (header, len) = FrameHeader::parse(b"\x81\x05Hello").unwrap().unwrap();
/// assert_eq!(len, 2);
/// assert_eq!(header.opcode, OpCode::Text);
/// assert!(header.fin);
/// assert_eq!(header.payload_len, 5);
/// assert_eq!(header.mask, None);
///
/// let mut bytes = Vec::new();
/// header.encode(&mut bytes);
/// assert_eq!(bytes, b"\x81\x05");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// The last frame of its message (always set on control frames).
    pub fin: bool,
    /// RSV1: with permessage-deflate, "this message is compressed".
    pub rsv1: bool,
    /// RSV2: no extension this crate knows uses it.
    pub rsv2: bool,
    /// RSV3: no extension this crate knows uses it.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on (and only on) frames a client sends.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes (below 2^63).
    pub payload_len: u64,
}

impl FrameHeader {
    /// A final, unmasked header with no RSV bits.
    pub fn new(opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parses a frame header from the start of `input`: `Ok(None)` while
    /// `input` is too short to hold all of it, else the header and its
    /// length in bytes (2 to [`MAX_HEADER_LEN`]); the payload follows.
    ///
    /// An error is reported as soon as the bytes that show it are there,
    /// in this order: the opcode, a fragmented or too long control frame
    /// (both known from the first two bytes), then the length encoding.
    /// Masks and RSV bits are not checked here: whether they are allowed
    /// depends on the connection.
    ///
    /// # Errors
    ///
    /// All [`Error::Protocol`]:
    ///
    /// * [`ProtocolError::UnknownOpcode`] for a reserved opcode;
    /// * [`ProtocolError::FragmentedControl`] for a control frame without
    ///   FIN;
    /// * [`ProtocolError::ControlTooLong`] for a control frame longer than
    ///   [`MAX_CONTROL_PAYLOAD`];
    /// * [`ProtocolError::NonMinimalLength`] for a 16-bit length below 126,
    ///   a 64-bit length below 65536, or a 64-bit length with its most
    ///   significant bit set.
    pub fn parse(input: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        let [b0, b1, rest @ ..] = input else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0f)?;
        let fin = b0 & 0x80 != 0;
        let len7 = u64::from(b1 & 0x7f);
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControl.into());
            }
            if len7 > LEN7_MAX {
                return Err(ProtocolError::ControlTooLong.into());
            }
        }
        let (payload_len, rest, mut len) = match len7 {
            126 => {
                let Some((bytes, rest)) = rest.split_first_chunk::<2>() else {
                    return Ok(None);
                };
                let n = u64::from(u16::from_be_bytes(*bytes));
                if n <= LEN7_MAX {
                    return Err(ProtocolError::NonMinimalLength.into());
                }
                (n, rest, 4)
            }
            127 => {
                let Some((bytes, rest)) = rest.split_first_chunk::<8>() else {
                    return Ok(None);
                };
                let n = u64::from_be_bytes(*bytes);
                if n <= LEN16_MAX || n >> 63 != 0 {
                    return Err(ProtocolError::NonMinimalLength.into());
                }
                (n, rest, 10)
            }
            n => (n, rest, 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let Some((key, _)) = rest.split_first_chunk::<4>() else {
                return Ok(None);
            };
            len += 4;
            Some(*key)
        } else {
            None
        };
        let header = FrameHeader {
            fin,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// The length of this header on the wire.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=LEN7_MAX => 2,
            LEN16_MIN..=LEN16_MAX => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends this header to `out` ([`encoded_len`](Self::encoded_len)
    /// bytes), with the length in its shortest form.
    ///
    /// The fields are written as they are: a header [`parse`](Self::parse)
    /// would refuse (a fragmented control frame, a length of 2^63 or more)
    /// is written all the same, which lets tests build bad frames.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let bit = |set: bool, value: u8| if set { value } else { 0 };
        let b0 = bit(self.fin, 0x80)
            | bit(self.rsv1, 0x40)
            | bit(self.rsv2, 0x20)
            | bit(self.rsv3, 0x10)
            | self.opcode.as_u8();
        let masked = bit(self.mask.is_some(), 0x80);
        let len = self.payload_len.to_be_bytes();
        match self.payload_len {
            0..=LEN7_MAX => out.extend_from_slice(&[b0, masked | len[7]]),
            LEN16_MIN..=LEN16_MAX => out.extend_from_slice(&[b0, masked | 126, len[6], len[7]]),
            _ => {
                out.extend_from_slice(&[b0, masked | 127]);
                out.extend_from_slice(&len);
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` whole and as every shorter prefix: each prefix must
    /// need more bytes, or fail with the same error once the bytes showing
    /// it are there.
    fn parse_all(input: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        let whole = FrameHeader::parse(input);
        for end in 0..input.len() {
            match FrameHeader::parse(&input[..end]) {
                Ok(None) => {}
                Ok(Some(found)) => assert_eq!(Ok(Some(found)), whole, "prefix {end}"),
                Err(e) => assert_eq!(Err(e), whole, "prefix {end}"),
            }
        }
        // Bytes after the header change nothing.
        let mut longer = input.to_vec();
        longer.extend_from_slice(b"payload");
        if let Ok(Some(_)) | Err(_) = whole {
            assert_eq!(FrameHeader::parse(&longer), whole);
        }
        whole
    }

    fn header(input: &[u8]) -> FrameHeader {
        let (header, len) = parse_all(input).unwrap().unwrap();
        assert_eq!(len, input.len());
        assert_eq!(header.encoded_len(), len);
        let mut encoded = Vec::new();
        header.encode(&mut encoded);
        assert_eq!(encoded, input, "re-encoding {header:?}");
        header
    }

    fn error(input: &[u8]) -> ProtocolError {
        match parse_all(input) {
            Err(Error::Protocol(e)) => e,
            other => panic!("{input:x?}: {other:?}"),
        }
    }

    #[test]
    fn every_opcode() {
        for (bits, opcode) in [
            (0x0, OpCode::Continuation),
            (0x1, OpCode::Text),
            (0x2, OpCode::Binary),
            (0x8, OpCode::Close),
            (0x9, OpCode::Ping),
            (0xA, OpCode::Pong),
        ] {
            assert_eq!(OpCode::from_u8(bits), Ok(opcode));
            assert_eq!(u8::from(opcode), bits);
            assert_eq!(opcode.is_control(), bits >= 8);
            let h = header(&[0x80 | bits, 0x00]);
            assert_eq!(h, FrameHeader::new(opcode, 0));
        }
        for bits in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                error(&[0x80 | bits, 0x00]),
                ProtocolError::UnknownOpcode(bits)
            );
            assert_eq!(
                OpCode::try_from(bits),
                Err(ProtocolError::UnknownOpcode(bits))
            );
        }
        assert_eq!(
            OpCode::from_u8(0x10),
            Err(ProtocolError::UnknownOpcode(0x10))
        );
        // Reported from the first two bytes, before the rest of the header.
        assert_eq!(error(&[0x83, 0xfe]), ProtocolError::UnknownOpcode(3));
    }

    #[test]
    fn flags_and_mask() {
        let h = header(&[0x72, 0x83, 1, 2, 3, 4]);
        assert_eq!(
            h,
            FrameHeader {
                fin: false,
                rsv1: true,
                rsv2: true,
                rsv3: true,
                opcode: OpCode::Binary,
                mask: Some([1, 2, 3, 4]),
                payload_len: 3,
            }
        );
        for (b0, rsv) in [
            (0xc1, [true, false, false]),
            (0xa1, [false, true, false]),
            (0x91, [false, false, true]),
        ] {
            let h = header(&[b0, 0x00]);
            assert_eq!([h.rsv1, h.rsv2, h.rsv3], rsv);
        }
        // A masked header needs its key before it is complete.
        assert_eq!(FrameHeader::parse(&[0x81, 0x85, 1, 2, 3]), Ok(None));
    }

    #[test]
    fn lengths_at_every_boundary() {
        let cases: [(&[u8], u64); 9] = [
            (&[0x82, 0x00], 0),
            (&[0x82, 0x7d], 125),
            (&[0x82, 0x7e, 0x00, 0x7e], 126),
            (&[0x82, 0x7e, 0x01, 0x00], 256),
            (&[0x82, 0x7e, 0xff, 0xff], 65535),
            (&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0x00, 0x00], 65536),
            (&[0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0], 1 << 32),
            (
                &[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                i64::MAX as u64,
            ),
            (&[0x82, 0xfe, 0x00, 0x7e, 9, 9, 9, 9], 126),
        ];
        for (input, len) in cases {
            let h = header(input);
            assert_eq!(h.payload_len, len, "{input:x?}");
            // Encoding picks the same form.
            let mut out = Vec::new();
            FrameHeader {
                mask: h.mask,
                ..FrameHeader::new(OpCode::Binary, len)
            }
            .encode(&mut out);
            assert_eq!(out, input);
        }
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        for input in [
            &[0x82, 0x7e, 0x00, 0x00][..],
            &[0x82, 0x7e, 0x00, 0x7d],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x7d],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x7e],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
            // The most significant bit must be 0.
            &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
            &[0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            // Reported before the masking key arrives.
            &[0x82, 0xfe, 0x00, 0x05],
        ] {
            assert_eq!(error(input), ProtocolError::NonMinimalLength, "{input:x?}");
        }
    }

    #[test]
    fn control_frame_rules() {
        // 125 bytes is allowed; more, in any form, is not.
        assert_eq!(header(&[0x89, 0x7d]).payload_len, 125);
        for input in [&[0x89, 0x7e][..], &[0x8a, 0x7f], &[0x88, 0xfe]] {
            assert_eq!(error(input), ProtocolError::ControlTooLong, "{input:x?}");
        }
        // Control frames must have FIN.
        for bits in [0x08, 0x09, 0x0a] {
            assert_eq!(error(&[bits, 0x00]), ProtocolError::FragmentedControl);
        }
        // Data frames need not.
        assert!(!header(&[0x01, 0x00]).fin);
        assert!(!header(&[0x00, 0x7e, 0x01, 0x00]).fin);
    }

    #[test]
    fn short_input_needs_more() {
        for input in [
            &[][..],
            &[0x81],
            &[0x82, 0x7e, 0x01],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0],
            &[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3],
        ] {
            assert_eq!(FrameHeader::parse(input), Ok(None), "{input:x?}");
        }
    }

    /// Every two-byte start, with enough bytes after it: parse either
    /// fails or gives a header that re-encodes to the same bytes.
    #[test]
    fn every_first_two_bytes_round_trip() {
        for b0 in 0..=255u8 {
            for b1 in 0..=255u8 {
                let mut input = vec![b0, b1];
                input.extend_from_slice(match b1 & 0x7f {
                    126 => &[0x12, 0x34][..],
                    127 => &[0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78],
                    _ => &[],
                });
                if b1 & 0x80 != 0 {
                    input.extend_from_slice(&[9, 8, 7, 6]);
                }
                match FrameHeader::parse(&input) {
                    Ok(Some((h, len))) => {
                        assert_eq!(len, input.len());
                        let mut out = Vec::new();
                        h.encode(&mut out);
                        assert_eq!(out, input);
                    }
                    Ok(None) => panic!("{input:x?} is complete"),
                    Err(_) => {}
                }
            }
        }
    }
}
