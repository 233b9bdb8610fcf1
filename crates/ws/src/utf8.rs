//! Incremental UTF-8 validation of a text message that arrives in pieces.
//!
//! A text message may be split into fragments anywhere, even inside a
//! character. [`Utf8Validator`] checks each piece as it comes: bytes that
//! can never be UTF-8 fail in the piece that holds them, and the last
//! 1 to 3 bytes of a piece that start a character are carried over to the
//! next one, after checking that they are a valid start (`F4 90` can begin
//! no character above U+10FFFF, so it fails at once). The checking itself
//! is std's [`str::from_utf8`], whose [`Utf8Error::error_len`] tells an
//! invalid sequence (`Some`) from one cut short by the end of the input
//! (`None`).
//!
//! [`Utf8Error::error_len`]: std::str::Utf8Error::error_len

use crate::error::ProtocolError;

/// The longest UTF-8 sequence, in bytes.
const MAX_SEQUENCE: usize = 4;

/// Validates a UTF-8 byte stream fed in pieces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Utf8Validator {
    /// The start of a character cut by the end of the last piece.
    carry: [u8; MAX_SEQUENCE],
    /// How many bytes of `carry` are used (0 to 3).
    carried: usize,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub(crate) fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Checks the next piece of the stream.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::InvalidUtf8`] when the bytes so far cannot be the
    /// start of valid UTF-8. The validator must not be fed again after an
    /// error.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) -> Result<(), ProtocolError> {
        if self.carried > 0 {
            // Complete the carried character with the first bytes of the
            // piece (at most 3 are needed), and check that much.
            let take = piece.len().min(MAX_SEQUENCE - self.carried);
            let mut joined = [0u8; 2 * MAX_SEQUENCE];
            joined[..self.carried].copy_from_slice(&self.carry[..self.carried]);
            joined[self.carried..self.carried + take].copy_from_slice(&piece[..take]);
            let joined = &joined[..self.carried + take];
            let valid = match std::str::from_utf8(joined) {
                Ok(_) => joined.len(),
                Err(e) if e.error_len().is_some() => return Err(ProtocolError::InvalidUtf8),
                Err(e) if e.valid_up_to() == 0 => {
                    // Still incomplete: the piece was too short to finish
                    // the character, and all of it is carried.
                    self.carry[..joined.len()].copy_from_slice(joined);
                    self.carried = joined.len();
                    return Ok(());
                }
                Err(e) => e.valid_up_to(),
            };
            // The carried character is complete; go on after its end.
            piece = &piece[valid - self.carried..];
            self.carried = 0;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(ProtocolError::InvalidUtf8),
            Err(e) => {
                let tail = &piece[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carried = tail.len();
                Ok(())
            }
        }
    }

    /// Ends the stream: fails if it ends inside a character. The validator
    /// is then ready for a new stream.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::InvalidUtf8`] for an incomplete last character.
    pub(crate) fn finish(&mut self) -> Result<(), ProtocolError> {
        let carried = self.carried;
        *self = Utf8Validator::new();
        if carried == 0 {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }

    /// True when the bytes so far end inside a character.
    #[cfg(test)]
    pub(crate) fn is_incomplete(&self) -> bool {
        self.carried > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces`; the index of the piece that failed, or `finish`'s
    /// verdict (`Ok(true)` for valid) after the last.
    fn check(pieces: &[&[u8]]) -> Result<bool, usize> {
        let mut v = Utf8Validator::new();
        for (i, piece) in pieces.iter().enumerate() {
            v.feed(piece).map_err(|_| i)?;
        }
        Ok(v.finish().is_ok())
    }

    /// The index of the first byte at which `input` stops being a prefix
    /// of valid UTF-8, if it does: where an incremental validator must fail.
    fn proof_of_invalidity(input: &[u8]) -> Option<usize> {
        (1..=input.len()).find_map(|p| {
            let e = std::str::from_utf8(&input[..p]).err()?;
            e.error_len().map(|_| p - 1)
        })
    }

    /// Feeds `input` split at every pair of offsets (three pieces, empty
    /// ones included) and byte by byte: the verdict must match std's on the
    /// whole input, and an invalid input must fail in the piece holding the
    /// first byte that proves it invalid.
    fn agrees_with_std(input: &[u8]) {
        let whole = std::str::from_utf8(input);
        let proof = proof_of_invalidity(input);
        assert_eq!(
            proof.is_some(),
            whole.is_err_and(|e| e.error_len().is_some())
        );
        let expected = |piece_of: &dyn Fn(usize) -> usize| match (whole, proof) {
            (Ok(_), _) => Ok(true),
            (Err(_), Some(at)) => Err(piece_of(at)),
            // Incomplete at the end: only `finish` fails.
            (Err(_), None) => Ok(false),
        };
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let pieces = [&input[..i], &input[i..j], &input[j..]];
                let piece_of = |at: usize| usize::from(at >= i) + usize::from(at >= j);
                assert_eq!(
                    check(&pieces),
                    expected(&piece_of),
                    "{input:x?} split {i}/{j}"
                );
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(check(&bytes), expected(&|at| at), "{input:x?} byte by byte");
    }

    #[test]
    fn valid_text_in_any_pieces() {
        for text in [
            "",
            "hello",
            "\u{e9}t\u{e9}",
            "\u{20ac}uro",
            "\u{1f600}\u{1f600}",
            "\u{10ffff}\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}",
            "\u{3ba}\u{1f79}\u{3c3}\u{3bc}\u{3b5}",
        ] {
            agrees_with_std(text.as_bytes());
        }
    }

    #[test]
    fn invalid_sequences_fail_in_the_piece_that_shows_them() {
        for input in [
            &b"\xff"[..],
            b"\x80",
            b"ab\xc0\xaf",       // overlong '/'
            b"\xe0\x80\xaf",     // overlong
            b"\xed\xa0\x80",     // surrogate U+D800
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xf5\x80\x80\x80", // invalid lead byte
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
            b"\xe2\x82",     // incomplete at the end
            b"\xf0\x9f\x98", // incomplete at the end
            b"ok\xc3",       // incomplete at the end
            b"\xc3(",        // a lead byte without its continuation
            b"\xe2\x28\xa1",
            b"\xf0\x90\x28\xbc",
        ] {
            agrees_with_std(input);
        }
    }

    /// The bad prefix `F4 90` fails at once, without waiting for the rest
    /// of the character.
    #[test]
    fn invalid_prefix_fails_immediately() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok\xf4"), Ok(()));
        assert!(v.is_incomplete());
        assert_eq!(v.feed(b"\x90"), Err(ProtocolError::InvalidUtf8));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4\x90"), Err(ProtocolError::InvalidUtf8));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn carry_survives_empty_pieces_and_finish_resets() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xf0").unwrap();
        v.feed(b"").unwrap();
        v.feed(b"\x9f").unwrap();
        v.feed(b"\x98").unwrap();
        assert!(v.is_incomplete());
        v.feed(b"\x80!").unwrap();
        assert!(!v.is_incomplete());
        assert_eq!(v.finish(), Ok(()));

        v.feed(b"\xe2\x82").unwrap();
        assert_eq!(v.finish(), Err(ProtocolError::InvalidUtf8));
        // A new stream after finish.
        assert!(!v.is_incomplete());
        assert_eq!(v.feed(b"\x82"), Err(ProtocolError::InvalidUtf8));
    }

    /// Every 1-, 2- and 3-byte input: the verdicts match std's.
    #[test]
    fn short_inputs_exhaustively() {
        for a in 0..=255u8 {
            agrees_with_std(&[a]);
            for b in 0x7e..=0xc3u8 {
                agrees_with_std(&[a, b]);
            }
        }
        for a in [0xe0, 0xed, 0xef, 0xf0, 0xf4] {
            for b in 0x70..=0xc2u8 {
                for c in [0x41, 0x7f, 0x80, 0xbf, 0xc0] {
                    agrees_with_std(&[a, b, c]);
                }
            }
        }
    }
}
