//! The chunked transfer coding, decoded (RFC 9112 §7.1).
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! ```
//!
//! The grammar is followed to the letter: whitespace (BWS) is allowed only
//! where the grammar puts it, before `;` and around `=`, so whitespace at the
//! end of a size line (`"25  \r\n"`, `"2;a=b \r\n"`), an empty extension
//! (`"2;\r\n"`) and bare LF line endings are errors. Being lenient here is how request
//! smuggling starts when a proxy and a server disagree about where a body ends.

use crate::body::BodyStep;
use crate::chars::{is_ows, is_tchar};
use crate::error::{Error, Limit};
use crate::fields::Fields;
use crate::limits::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Whitespace after the size: only `;` may follow.
    SizeBws,
    ExtBwsBeforeName,
    ExtName,
    ExtAfterName,
    ExtBwsBeforeValue,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// Right after a quoted value's closing quote.
    ExtQuotedEnd,
    /// Whitespace after a value: only `;` (another extension) may follow.
    ExtValueBws,
    /// CR of the chunk-size line seen.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerLine,
    TrailerLineLf,
    /// CR of the empty line ending the trailer section seen.
    TrailerEndLf,
    Done,
}

/// Incremental decoder of one chunked body.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// The size being parsed, then the data left in the current chunk.
    size: u64,
    digits: u32,
    ext_bytes: usize,
    trailer: Vec<u8>,
    trailers: Option<Fields>,
    limits: Limits,
}

impl ChunkedDecoder {
    pub(crate) fn new(limits: Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            ext_bytes: 0,
            trailer: Vec::new(),
            trailers: None,
            limits,
        }
    }

    pub(crate) fn trailers(&self) -> Option<&Fields> {
        self.trailers.as_ref()
    }

    pub(crate) fn take_trailers(&mut self) -> Option<Fields> {
        self.trailers.take()
    }

    /// Consumes framing from `input` up to and including at most one run of
    /// chunk data, which it returns as a range of `input`.
    ///
    /// Inlined so that the common call, in the middle of a chunk's data, costs
    /// a few instructions in [`BodyDecoder::decode`](crate::BodyDecoder::decode);
    /// framing goes to [`decode_framing`](Self::decode_framing).
    #[inline]
    pub(crate) fn decode(&mut self, input: &[u8]) -> Result<BodyStep, Error> {
        if self.state == State::Data && !input.is_empty() {
            return Ok(self.data(input, 0));
        }
        self.decode_framing(input)
    }

    /// Returns the data of the current chunk found in `input[at..]`
    /// (`at < input.len()`, in [`State::Data`], so at least one byte).
    #[inline]
    fn data(&mut self, input: &[u8], at: usize) -> BodyStep {
        let available = input.len() - at;
        // A size beyond `usize` is beyond any input too.
        let n = usize::try_from(self.size).map_or(available, |size| size.min(available));
        self.size -= n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
        BodyStep {
            consumed: at + n,
            data: at..at + n,
            done: false,
        }
    }

    /// [`decode`](Self::decode) outside chunk data: runs the framing state
    /// machine byte by byte ([`step`](Self::step)), with fast paths that make
    /// exactly the same transitions and checks for the common runs.
    ///
    /// The way from one chunk's data to the next (the CRLF after data, a size
    /// line without extensions, data) is straight-line code; only other
    /// bytes dispatch on the state.
    fn decode_framing(&mut self, input: &[u8]) -> Result<BodyStep, Error> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::DataCr && input.get(i..i + 2) == Some(b"\r\n") {
                // As `step` on CR, then on LF.
                self.size = 0;
                self.digits = 0;
                self.state = State::Size;
                i += 2;
            }
            if self.state == State::Size {
                i = self.size_line(input, i)?;
            }
            if i == input.len() {
                break;
            }
            match self.state {
                State::Data => return Ok(self.data(input, i)),
                State::Done => break,
                State::ExtName | State::ExtToken => {
                    // Each tchar keeps the state and counts as an extension
                    // byte (as in `step`); checking the limit once per run
                    // gives the same error in the same call.
                    let run = input[i..]
                        .iter()
                        .take_while(|&&b| TCHAR[usize::from(b)])
                        .count();
                    self.ext_bytes += run;
                    if self.ext_bytes > self.limits.max_chunk_ext_bytes {
                        return Err(Error::LimitExceeded(Limit::ChunkExtensions));
                    }
                    i += run;
                    if let Some(&b) = input.get(i) {
                        self.step(b)?;
                        i += 1;
                    }
                }
                _ => {
                    self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok(BodyStep {
            consumed: i,
            data: i..i,
            done: self.state == State::Done,
        })
    }

    /// In [`State::Size`], consumes the size digits from `input[i..]`, then
    /// the byte after them: the CRLF ending the line (and leaves the state at
    /// [`State::Data`] or [`State::TrailerLineStart`]), or any other byte
    /// through [`step`](Self::step). Returns the new position.
    #[inline]
    fn size_line(&mut self, input: &[u8], mut i: usize) -> Result<usize, Error> {
        while let Some(digit) = input.get(i).copied().and_then(hex_digit) {
            self.push_digit(digit)?;
            i += 1;
        }
        match input.get(i) {
            // As `step` on CR, then on LF.
            Some(b'\r') if self.digits > 0 => {
                self.state = State::SizeLf;
                i += 1;
                if input.get(i) == Some(&b'\n') {
                    self.state = if self.size == 0 {
                        State::TrailerLineStart
                    } else {
                        State::Data
                    };
                    i += 1;
                }
            }
            Some(&b) => {
                self.step(b)?;
                i += 1;
            }
            None => {}
        }
        Ok(i)
    }

    /// Appends one hex digit to the chunk size being parsed.
    fn push_digit(&mut self, digit: u32) -> Result<(), Error> {
        self.size = self
            .size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(digit)))
            .ok_or(Error::InvalidChunkSize)?;
        // Saturating: leading zeros are unbounded, and only `digits > 0` matters.
        self.digits = self.digits.saturating_add(1);
        Ok(())
    }

    /// Counts one byte of chunk extensions against its limit.
    fn count_ext_byte(&mut self) -> Result<(), Error> {
        self.ext_bytes += 1;
        if self.ext_bytes > self.limits.max_chunk_ext_bytes {
            return Err(Error::LimitExceeded(Limit::ChunkExtensions));
        }
        Ok(())
    }

    /// Advances the framing state machine by one byte.
    fn step(&mut self, b: u8) -> Result<(), Error> {
        use State::*;
        let in_ext = matches!(
            self.state,
            SizeBws
                | ExtBwsBeforeName
                | ExtName
                | ExtAfterName
                | ExtBwsBeforeValue
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuotedEnd
                | ExtValueBws
        );
        self.state = match (self.state, b) {
            (Size, b'\r') if self.digits > 0 => SizeLf,
            (Size, b';') if self.digits > 0 => ExtBwsBeforeName,
            (Size, b' ' | b'\t') if self.digits > 0 => SizeBws,
            (Size, _) => {
                let digit = hex_digit(b).ok_or(Error::InvalidChunkSize)?;
                self.push_digit(digit)?;
                Size
            }
            (SizeBws, b' ' | b'\t') => SizeBws,
            (SizeBws, b';') => ExtBwsBeforeName,
            (SizeBws, _) => return Err(Error::InvalidChunkSize),

            (ExtBwsBeforeName, b' ' | b'\t') => ExtBwsBeforeName,
            (ExtBwsBeforeName, b) if is_tchar(b) => ExtName,
            (ExtName, b) if is_tchar(b) => ExtName,
            (ExtName | ExtAfterName, b' ' | b'\t') => ExtAfterName,
            (ExtName | ExtAfterName, b'=') => ExtBwsBeforeValue,
            (ExtName | ExtAfterName, b';') => ExtBwsBeforeName,
            (ExtName, b'\r') => SizeLf,
            (ExtBwsBeforeValue, b' ' | b'\t') => ExtBwsBeforeValue,
            (ExtBwsBeforeValue, b'"') => ExtQuoted,
            (ExtBwsBeforeValue, b) if is_tchar(b) => ExtToken,
            (ExtToken, b) if is_tchar(b) => ExtToken,
            (ExtToken | ExtQuotedEnd | ExtValueBws, b' ' | b'\t') => ExtValueBws,
            (ExtToken | ExtQuotedEnd | ExtValueBws, b';') => ExtBwsBeforeName,
            (ExtToken | ExtQuotedEnd, b'\r') => SizeLf,
            (ExtQuoted, b'"') => ExtQuotedEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
            (ExtQuoted, b) if is_ows(b) || (0x21..=0x7e).contains(&b) || b >= 0x80 => ExtQuoted,
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            (ExtQuotedPair, b) if is_ows(b) || (0x21..=0x7e).contains(&b) || b >= 0x80 => ExtQuoted,
            (
                ExtBwsBeforeName | ExtName | ExtAfterName | ExtBwsBeforeValue | ExtToken
                | ExtQuoted | ExtQuotedPair | ExtQuotedEnd | ExtValueBws,
                _,
            ) => return Err(Error::InvalidChunkExtension),

            (SizeLf, b'\n') if self.size == 0 => TrailerLineStart,
            (SizeLf, b'\n') => Data,
            (SizeLf, _) => return Err(Error::InvalidNewLine),

            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => {
                self.size = 0;
                self.digits = 0;
                Size
            }
            (DataCr | DataLf, _) => return Err(Error::InvalidChunkDelimiter),

            (TrailerLineStart, b'\r') => TrailerEndLf,
            (TrailerLineStart | TrailerLine, b'\n') => return Err(Error::InvalidTrailer),
            (TrailerLineStart | TrailerLine, b) => {
                self.push_trailer(b)?;
                if b == b'\r' {
                    TrailerLineLf
                } else {
                    TrailerLine
                }
            }
            (TrailerLineLf, b'\n') => {
                self.push_trailer(b)?;
                TrailerLineStart
            }
            (TrailerLineLf, _) => return Err(Error::InvalidTrailer),
            (TrailerEndLf, b'\n') => {
                self.finish_trailers()?;
                Done
            }
            (TrailerEndLf, _) => return Err(Error::InvalidTrailer),
            (Data | Done, _) => return Err(Error::OutOfOrder("chunked decoder stepped in data")),
        };
        // Extension bytes run from the size to the CRLF, which is not one of them.
        if (in_ext && self.state != SizeLf) || matches!(self.state, ExtBwsBeforeName | SizeBws) {
            self.count_ext_byte()?;
        }
        Ok(())
    }

    fn push_trailer(&mut self, b: u8) -> Result<(), Error> {
        if self.trailer.len() >= self.limits.max_trailer_bytes {
            return Err(Error::LimitExceeded(Limit::TrailerBytes));
        }
        self.trailer.push(b);
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), Error> {
        if self.trailer.is_empty() {
            return Ok(());
        }
        let mut block = std::mem::take(&mut self.trailer);
        block.extend_from_slice(b"\r\n");
        let max = self.limits.max_headers;
        let mut slots = vec![httparse::EMPTY_HEADER; max.min(block.len() / 3 + 1)];
        let (used, headers) = match httparse::parse_headers(&block, &mut slots) {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) => return Err(Error::InvalidTrailer),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::LimitExceeded(Limit::Headers));
            }
            Err(_) => return Err(Error::InvalidTrailer),
        };
        if used != block.len() {
            return Err(Error::InvalidTrailer);
        }
        let fields = Fields::from_parsed(
            &block,
            0,
            used,
            headers,
            self.limits.max_header_line,
            Limit::TrailerBytes,
        )?;
        self.trailers = Some(fields);
        Ok(())
    }
}

/// [`is_tchar`] as a table, for runs of extension tokens.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b: u8 = 0;
    loop {
        table[b as usize] = is_tchar(b);
        if b == u8::MAX {
            break table;
        }
        b += 1;
    }
};

/// The value of a hex digit (`HEXDIG`), as `char::to_digit(16)`.
fn hex_digit(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leading zeros do not grow the size, so a peer may send any number of
    /// them; the digit count must not overflow (a panic in debug builds).
    #[test]
    fn endless_leading_zeros_do_not_overflow_the_digit_count() {
        let mut decoder = ChunkedDecoder::new(Limits::default());
        decoder.digits = u32::MAX - 1;
        let step = decoder.decode(b"0000").unwrap();
        assert_eq!((step.consumed, step.done), (4, false));
        assert_eq!(decoder.digits, u32::MAX);
        let step = decoder.decode(b"1\r\nx\r\n0\r\n\r\n").unwrap();
        assert_eq!(step.data, 3..4);
        let step = decoder.decode(b"\r\n0\r\n\r\n").unwrap();
        assert!(step.done);
    }
}
