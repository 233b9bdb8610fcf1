//! Close codes and close frames (RFC 6455 §5.5.1, §7.4).
//!
//! A close frame's payload is empty, or a two-byte big-endian status code
//! followed by a UTF-8 reason. [`CloseFrame::parse`] reads one from the
//! peer and [`CloseFrame::encode`] writes one; [`CloseCode::is_valid_on_wire`]
//! says which codes may appear in either.
//!
//! ```
//! use courier_ws::{CloseCode, CloseFrame};
//! let frame = CloseFrame::parse(b"\x03\xe8bye").unwrap().unwrap();
//! assert_eq!(frame.code, CloseCode::NORMAL);
//! assert_eq!(frame.reason, "bye");
//! assert_eq!(CloseFrame::parse(b"").unwrap(), None); // no status code (1005)
//! ```

use std::fmt;

use crate::error::{ProtocolError, UsageError};
use crate::frame::MAX_CONTROL_PAYLOAD;

/// A close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held; [`CloseCode::is_valid_on_wire`] tells whether it
/// may be sent in (or accepted from) a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure; the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (a server shutting down, a browser
    /// leaving the page).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error. This crate sends it when the peer breaks a
    /// framing rule.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a type of data it cannot accept (for
    /// example binary data where it only understands text).
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Reserved: never sent, it is what a
    /// close frame with an empty payload reports (this crate reports it as
    /// `None` rather than as a code).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection ended without a close frame. Reserved: never
    /// sent, only reported ([`ProtocolError::AbnormalClosure`]).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: invalid payload data, such as a text message that is not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy (a generic code when
    /// no other fits).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension that
    /// it did not (sent by clients only).
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the endpoint met an unexpected condition (an internal error).
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry; not in RFC 6455).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later, for example when overloaded (IANA registry;
    /// not in RFC 6455).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway or proxy got an invalid response from the upstream
    /// server (IANA registry; not in RFC 6455).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Reserved: never sent, only reported
    /// by TLS-aware APIs.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// True when the code may appear in a close frame, sent or received.
    ///
    /// Valid: 1000-1003 and 1007-1011 (RFC 6455 §7.4.1), 1012-1014
    /// (registered with IANA since, and sent by real servers: service
    /// restart, try again later, bad gateway), and 3000-4999 (libraries,
    /// frameworks and applications, §7.4.2).
    ///
    /// Invalid: below 1000 (unused), 1004 (reserved), 1005, 1006 and 1015
    /// (reserved for reporting, "MUST NOT be set as a status code in a
    /// Close control frame"), 1016-2999 (reserved for future revisions and
    /// extensions) and 5000 and above (not defined).
    ///
    /// The Autobahn test suite agrees: its cases 7.7.x send 1000-1003,
    /// 1007-1011, 3000, 3999, 4000 and 4999 and expect them echoed; 7.9.x
    /// send 0, 999, 1004-1006, 1016, 1100, 2000 and 2999 and expect close
    /// code 1002. It tests 1012-1014 neither way; this crate accepts them
    /// because IANA registered them for use on the wire.
    ///
    /// ```
    /// use courier_ws::CloseCode;
    /// assert!(CloseCode::NORMAL.is_valid_on_wire());
    /// assert!(CloseCode(4000).is_valid_on_wire());
    /// assert!(!CloseCode::NO_STATUS.is_valid_on_wire());
    /// assert!(!CloseCode(2000).is_valid_on_wire());
    /// ```
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

/// The most bytes a close reason can have: a control frame carries at most
/// 125 bytes ([`MAX_CONTROL_PAYLOAD`]), two of which are the code.
pub const MAX_REASON_LEN: usize = MAX_CONTROL_PAYLOAD - 2;

/// The status code and reason of a close frame that has one.
///
/// A close frame without a payload has neither; the APIs of this crate
/// report it as `None` (the code 1005, [`CloseCode::NO_STATUS`], is never
/// put in a `CloseFrame`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Why the connection is being closed, for people (may be empty); at
    /// most [`MAX_REASON_LEN`] bytes of UTF-8 on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> CloseFrame {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// Reads the payload of a close frame received from the peer: `None`
    /// for an empty payload (no status code, reported as 1005 by RFC 6455
    /// §7.1.5), else the code and reason.
    ///
    /// # Errors
    ///
    /// * [`ProtocolError::InvalidClosePayload`] for a one-byte payload;
    /// * [`ProtocolError::InvalidCloseCode`] for a code that is not
    ///   [valid on the wire](CloseCode::is_valid_on_wire);
    /// * [`ProtocolError::InvalidCloseReason`] for a reason that is not
    ///   UTF-8 (close code 1007);
    /// * [`ProtocolError::ControlTooLong`] for a payload over 125 bytes,
    ///   which no control frame may carry.
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(ProtocolError::ControlTooLong);
        }
        let (code, reason) = match payload {
            [] => return Ok(None),
            [_] => return Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => (CloseCode(u16::from_be_bytes([*hi, *lo])), reason),
        };
        if !code.is_valid_on_wire() {
            return Err(ProtocolError::InvalidCloseCode(code.0));
        }
        let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
        Ok(Some(CloseFrame::new(code, reason)))
    }

    /// Checks that this frame may be sent: a code
    /// [valid on the wire](CloseCode::is_valid_on_wire) and a reason of at
    /// most [`MAX_REASON_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`UsageError::InvalidCloseCode`] or [`UsageError::ControlTooLong`].
    pub fn validate(&self) -> Result<(), UsageError> {
        validate(self.code, &self.reason)
    }

    /// Appends the close payload (code, then reason) to `out`, after the
    /// checks of [`CloseFrame::validate`]; nothing is written on error.
    ///
    /// ```
    /// use courier_ws::{CloseCode, CloseFrame};
    /// let mut payload = Vec::new();
    /// CloseFrame::new(CloseCode::GOING_AWAY, "bye").encode(&mut payload).unwrap();
    /// assert_eq!(payload, b"\x03\xe9bye");
    /// ```
    ///
    /// # Errors
    ///
    /// As [`CloseFrame::validate`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        encode_payload(self.code, &self.reason, out)
    }
}

/// [`CloseFrame::validate`] on borrowed parts.
pub(crate) fn validate(code: CloseCode, reason: &str) -> Result<(), UsageError> {
    if !code.is_valid_on_wire() {
        return Err(UsageError::InvalidCloseCode(code.0));
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(UsageError::ControlTooLong);
    }
    Ok(())
}

/// [`CloseFrame::encode`] on borrowed parts.
pub(crate) fn encode_payload(
    code: CloseCode,
    reason: &str,
    out: &mut Vec<u8>,
) -> Result<(), UsageError> {
    validate(code, reason)?;
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code from 0 to 65535 against the table of RFC 6455 §7.4 and
    /// the IANA registry (see `is_valid_on_wire`).
    #[test]
    fn valid_codes_follow_the_registry() {
        let valid: Vec<u16> = (0..=u16::MAX)
            .filter(|&c| CloseCode(c).is_valid_on_wire())
            .collect();
        let expected: Vec<u16> = (1000..=1003)
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(valid, expected);
    }

    #[test]
    fn autobahn_close_code_cases() {
        // Cases 7.7.x: valid, echoed.
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            let payload = u16::to_be_bytes(code);
            let frame = CloseFrame::parse(&payload).unwrap().unwrap();
            assert_eq!(frame.code, CloseCode(code));
            assert_eq!(frame.reason, "");
        }
        // Cases 7.9.x and the reserved ones: refused, close 1002.
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let payload = u16::to_be_bytes(code);
            assert_eq!(
                CloseFrame::parse(&payload),
                Err(ProtocolError::InvalidCloseCode(code)),
                "{code}"
            );
            let error = crate::Error::from(ProtocolError::InvalidCloseCode(code));
            assert_eq!(error.close_code(), Some(CloseCode::PROTOCOL));
        }
    }

    #[test]
    fn parse_payload_shapes() {
        assert_eq!(CloseFrame::parse(b""), Ok(None));
        assert_eq!(
            CloseFrame::parse(b"\x03"),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8"),
            Ok(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        );
        assert_eq!(
            CloseFrame::parse(b"\x0f\xa0h\xc3\xa9!"),
            Ok(Some(CloseFrame::new(CloseCode(4000), "h\u{e9}!")))
        );
        // A reason of 123 bytes is the longest a control frame holds.
        let mut long = vec![0x03, 0xe8];
        long.extend_from_slice(&[b'x'; MAX_REASON_LEN]);
        assert_eq!(
            CloseFrame::parse(&long).unwrap().unwrap().reason.len(),
            MAX_REASON_LEN
        );
        long.push(b'x');
        assert_eq!(CloseFrame::parse(&long), Err(ProtocolError::ControlTooLong));
    }

    #[test]
    fn reason_must_be_utf8() {
        for reason in [
            &b"\xff"[..],
            b"ok\xc3",           // truncated sequence
            b"\xed\xa0\x80",     // a surrogate
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xc0\xaf",         // overlong
        ] {
            let mut payload = vec![0x03, 0xe8];
            payload.extend_from_slice(reason);
            assert_eq!(
                CloseFrame::parse(&payload),
                Err(ProtocolError::InvalidCloseReason),
                "{reason:?}"
            );
        }
        let error = crate::Error::from(ProtocolError::InvalidCloseReason);
        assert_eq!(error.close_code(), Some(CloseCode::INVALID_PAYLOAD));
        // A bad code is reported before a bad reason.
        assert_eq!(
            CloseFrame::parse(b"\x03\xed\xff"),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
    }

    #[test]
    fn encode_checks_code_and_reason_length() {
        let mut out = Vec::new();
        CloseFrame::new(CloseCode::NORMAL, "")
            .encode(&mut out)
            .unwrap();
        assert_eq!(out, b"\x03\xe8");

        let longest = "r".repeat(MAX_REASON_LEN);
        let mut out = Vec::new();
        CloseFrame::new(CloseCode(4999), longest.as_str())
            .encode(&mut out)
            .unwrap();
        assert_eq!(out.len(), MAX_CONTROL_PAYLOAD);
        assert_eq!(
            CloseFrame::parse(&out),
            Ok(Some(CloseFrame::new(CloseCode(4999), longest.as_str())))
        );

        let mut out = Vec::new();
        let too_long = CloseFrame::new(CloseCode::NORMAL, "r".repeat(MAX_REASON_LEN + 1));
        assert_eq!(too_long.encode(&mut out), Err(UsageError::ControlTooLong));
        for code in [1005, 1006, 1015, 999, 2000, 5000] {
            let frame = CloseFrame::new(CloseCode(code), "");
            assert_eq!(
                frame.encode(&mut out),
                Err(UsageError::InvalidCloseCode(code))
            );
        }
        assert!(out.is_empty(), "nothing written on error");
    }
}
