//! Response body decoding (by [`BodyMode`]) and request body encoding.

mod chunked;
mod encoder;

use std::ops::Range;

pub use encoder::BodyEncoder;
pub(crate) use encoder::Framing;

use crate::error::Error;
use crate::fields::Fields;
use crate::framing::BodyMode;
use crate::limits::Limits;
use chunked::ChunkedDecoder;

/// The outcome of one [`BodyDecoder::decode`] call.
///
/// `input[data]` is body data (transfer coding removed); `consumed` bytes of
/// input are used up (framing and data). `data` always lies inside
/// `0..consumed`, so a caller holding the input in a `BytesMut` can split off
/// `consumed` bytes and slice the data out of them without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyStep {
    /// Input bytes used up by this call.
    pub consumed: usize,
    /// Where body data lies in the input (may be empty).
    pub data: Range<usize>,
    /// True once the body is complete; later input belongs to the next message.
    pub done: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilEof,
    Done,
}

/// Removes the framing of a response body: `Content-Length`, chunked or
/// until-EOF.
///
/// ```
/// use courier_proto::{BodyDecoder, BodyMode, Limits};
/// let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
/// let input = b"5\r\nhello\r\n0\r\n\r\nNEXT";
/// let mut body = Vec::new();
/// let mut at = 0;
/// while !decoder.is_done() {
///     let step = decoder.decode(&input[at..]).unwrap();
///     body.extend_from_slice(&input[at..][step.data]);
///     at += step.consumed;
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(&input[at..], b"NEXT");
/// ```
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    kind: Kind,
    trailers: Option<Fields>,
}

impl BodyDecoder {
    /// A decoder for a body delimited as `mode`.
    pub fn new(mode: BodyMode, limits: Limits) -> BodyDecoder {
        let kind = match mode {
            BodyMode::None | BodyMode::Length(0) => Kind::Done,
            BodyMode::Length(n) => Kind::Length(n),
            BodyMode::Chunked => Kind::Chunked(ChunkedDecoder::new(limits)),
            BodyMode::UntilEof => Kind::UntilEof,
        };
        BodyDecoder {
            kind,
            trailers: None,
        }
    }

    /// Decodes framing and at most one run of data from the start of `input`.
    ///
    /// Call again with the input after `consumed` until [`BodyStep::done`];
    /// a call that consumes nothing needs more input.
    ///
    /// # Errors
    ///
    /// Malformed chunked framing, or chunk extensions or trailers beyond
    /// their [`Limits`].
    // Inlined across crates: in the middle of a body this is a few
    // instructions, and a call plus a returned `BodyStep` cost more.
    #[inline]
    pub fn decode(&mut self, input: &[u8]) -> Result<BodyStep, Error> {
        match &mut self.kind {
            Kind::Done => Ok(BodyStep {
                consumed: 0,
                data: 0..0,
                done: true,
            }),
            Kind::Length(remaining) => {
                // At most `input.len()`, so it fits a `usize`.
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= n as u64;
                let done = *remaining == 0;
                if done {
                    self.kind = Kind::Done;
                }
                Ok(BodyStep {
                    consumed: n,
                    data: 0..n,
                    done,
                })
            }
            Kind::UntilEof => Ok(BodyStep {
                consumed: input.len(),
                data: 0..input.len(),
                done: false,
            }),
            Kind::Chunked(chunked) => {
                let step = chunked.decode(input)?;
                if step.done {
                    self.trailers = chunked.take_trailers();
                    self.kind = Kind::Done;
                }
                Ok(step)
            }
        }
    }

    /// Tells the decoder the connection closed (no more input will come).
    ///
    /// # Errors
    ///
    /// [`Error::IncompleteBody`] unless the body is complete or runs until EOF.
    pub fn eof(&mut self) -> Result<(), Error> {
        match self.kind {
            Kind::Done => Ok(()),
            Kind::UntilEof => {
                self.kind = Kind::Done;
                Ok(())
            }
            Kind::Length(_) | Kind::Chunked(_) => Err(Error::IncompleteBody),
        }
    }

    /// True once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.kind, Kind::Done)
    }

    /// Body bytes still expected, when known (`Content-Length` framing).
    pub fn remaining(&self) -> Option<u64> {
        match self.kind {
            Kind::Length(n) => Some(n),
            Kind::Done => Some(0),
            Kind::Chunked(_) | Kind::UntilEof => None,
        }
    }

    /// The trailer fields of a chunked body, once it is done (if it had any).
    pub fn trailers(&self) -> Option<&Fields> {
        match &self.kind {
            Kind::Chunked(chunked) => chunked.trailers(),
            _ => self.trailers.as_ref(),
        }
    }

    /// Takes the trailer fields out.
    pub fn take_trailers(&mut self) -> Option<Fields> {
        self.trailers.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Limit;

    /// What a caller sees after feeding a body: the data, the trailers, the
    /// bytes left after the body, and how it ended.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        body: Vec<u8>,
        trailers: Option<Fields>,
        leftover: Vec<u8>,
        /// `Ok(true)`: complete; `Ok(false)`: waiting for more input;
        /// `Err`: the error, from `decode` or from `eof` when `eof` is set.
        end: Result<bool, Error>,
    }

    /// Feeds `pieces` in order as a connection would (unconsumed bytes stay
    /// buffered and are offered again with the next piece), then optionally
    /// reports EOF.
    fn feed(mode: BodyMode, limits: Limits, pieces: &[&[u8]], eof: bool) -> Outcome {
        let mut decoder = BodyDecoder::new(mode, limits);
        let mut buffer = Vec::new();
        let mut body = Vec::new();
        let mut end = Ok(false);
        'pieces: for piece in pieces {
            buffer.extend_from_slice(piece);
            while !decoder.is_done() {
                let step = match decoder.decode(&buffer) {
                    Ok(step) => step,
                    Err(e) => {
                        end = Err(e);
                        break 'pieces;
                    }
                };
                assert!(step.consumed <= buffer.len());
                assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
                body.extend_from_slice(&buffer[step.data.clone()]);
                buffer.drain(..step.consumed);
                assert_eq!(step.done, decoder.is_done());
                if step.consumed == 0 {
                    break;
                }
            }
            if decoder.is_done() {
                end = Ok(true);
            }
        }
        if eof && end == Ok(false) {
            end = decoder.eof().map(|()| true);
            assert_eq!(end.is_ok(), decoder.is_done());
        }
        if end == Ok(true) {
            // Once done, the decoder takes nothing more.
            let step = decoder.decode(b"more").unwrap();
            assert_eq!((step.consumed, step.done), (0, true));
            assert_eq!(decoder.eof(), Ok(()));
            assert_eq!(decoder.remaining(), Some(0));
        }
        if end.is_err() {
            // After an error the connection is dropped: nothing is left over.
            buffer.clear();
        }
        let trailers = decoder.trailers().cloned();
        assert_eq!(decoder.take_trailers(), trailers);
        assert_eq!(decoder.trailers(), None, "taken");
        Outcome {
            body,
            trailers,
            leftover: buffer,
            end,
        }
    }

    /// Decodes `input` whole, split at every offset and byte by byte; all
    /// must agree.
    fn decode_all(mode: BodyMode, limits: Limits, input: &[u8], eof: bool) -> Outcome {
        let whole = feed(mode, limits, &[input], eof);
        // Every offset of the vectors; a sample of them for the long inputs
        // that only test limits.
        let stride = if input.len() <= 4096 { 1 } else { 97 };
        for split in (0..=input.len()).step_by(stride).chain([input.len()]) {
            let (a, b) = input.split_at(split);
            let outcome = feed(mode, limits, &[a, b], eof);
            assert_eq!(outcome, whole, "split at {split}: {:?}", show(input));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            feed(mode, limits, &bytes, eof),
            whole,
            "byte by byte: {:?}",
            show(input)
        );
        // Three pieces of uneven size, as a socket might deliver.
        for size in [2, 3, 5, 7] {
            let pieces: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(
                feed(mode, limits, &pieces, eof),
                whole,
                "{size}-byte pieces"
            );
        }
        whole
    }

    fn show(input: &[u8]) -> String {
        String::from_utf8_lossy(&input[..input.len().min(120)]).into_owned()
    }

    fn chunked(input: &[u8]) -> Outcome {
        decode_all(BodyMode::Chunked, Limits::default(), input, true)
    }

    fn chunked_with(limits: Limits, input: &[u8]) -> Outcome {
        decode_all(BodyMode::Chunked, limits, input, true)
    }

    /// A complete chunked body: its data and trailers (`name: value` pairs).
    fn valid(input: &[u8]) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let outcome = chunked(input);
        assert_eq!(outcome.end, Ok(true), "{:?}", show(input));
        assert!(outcome.leftover.is_empty());
        let trailers = outcome.trailers.map_or_else(Vec::new, |t| {
            t.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect()
        });
        (outcome.body, trailers)
    }

    fn invalid(input: &[u8]) -> Error {
        chunked(input).end.expect_err("invalid chunked body")
    }

    #[test]
    fn chunked_valid_bodies() {
        let cases: [(&[u8], &[u8]); 10] = [
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", b"abcdefgh"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (
                b"1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
                b"0123456789abcdef0123456789abcde",
            ),
            (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
            (b"00000000000000000000000001\r\nx\r\n0\r\n\r\n", b"x"),
            (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n"),
            (b"3\r\n0\r\n\r\n0\r\n\r\n", b"0\r\n"),
        ];
        for (input, body) in cases {
            assert_eq!(valid(input), (body.to_vec(), vec![]), "{:?}", show(input));
        }
        // A chunk of 64 KiB.
        let mut input = b"10000\r\n".to_vec();
        let data: Vec<u8> = (0..=255u8).cycle().take(0x10000).collect();
        input.extend_from_slice(&data);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let outcome = feed(BodyMode::Chunked, Limits::default(), &[&input], true);
        assert_eq!(outcome.body, data);
        assert_eq!(outcome.end, Ok(true));
        let pieces: Vec<&[u8]> = input.chunks(1000).collect();
        assert_eq!(
            feed(BodyMode::Chunked, Limits::default(), &pieces, true),
            outcome
        );
    }

    #[test]
    fn chunked_extensions() {
        let cases: [&[u8]; 15] = [
            b"5;name\r\nhello\r\n0\r\n\r\n",
            b"5;a=b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b;c;d=e\r\nhello\r\n0;last\r\n\r\n",
            b"5;a=\"quoted value\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"esc\\\"aped\\\\\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"semi;colon=inside\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"tab\there\\ and obs \xff\"\r\nhello\r\n0\r\n\r\n",
            b"5 ;a\r\nhello\r\n0\r\n\r\n",
            b"5 \t ; \t a \t = \t b \t ; c\r\nhello\r\n0\r\n\r\n",
            b"5; a =\"q\" ;b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"q\";b=c\r\nhello\r\n0\r\n\r\n",
            b"5;!#$%&'*+-.^_`|~09azAZ=!#$%&'*+-.^_`|~09azAZ\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"q\"\r\nhello\r\n0;x=\"y\"\r\n\r\n",
            b"5;a;b;c;d;e;f;g;h\r\nhello\r\n0\r\n\r\n",
        ];
        for input in cases {
            assert_eq!(
                valid(input),
                (b"hello".to_vec(), vec![]),
                "{:?}",
                show(input)
            );
        }
    }

    #[test]
    fn chunked_trailers_are_parsed_and_exposed() {
        let input =
            b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nx-other:  def \t\r\nX-Checksum: again\r\n\r\n";
        let (body, trailers) = valid(input);
        assert_eq!(body, b"hello");
        assert_eq!(
            trailers,
            [
                ("X-Checksum".to_string(), b"abc".to_vec()),
                ("x-other".to_string(), b"def".to_vec()),
                ("X-Checksum".to_string(), b"again".to_vec()),
            ]
        );
        // Through the decoder directly: available once done, then taken.
        let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
        let mut at = 0;
        while !decoder.is_done() {
            assert_eq!(decoder.trailers(), None);
            at += decoder.decode(&input[at..]).unwrap().consumed;
        }
        assert_eq!(at, input.len());
        let trailers = decoder.trailers().expect("trailers");
        assert_eq!(trailers.get("x-checksum"), Some(&b"abc"[..]));
        assert_eq!(trailers.get_all("X-CHECKSUM").count(), 2);
        assert_eq!(trailers.get("X-Other"), Some(&b"def"[..]));
        let taken = decoder.take_trailers().expect("taken");
        assert_eq!(taken.len(), 3);
        assert!(decoder.trailers().is_none() && decoder.take_trailers().is_none());
        // No trailer section: no trailers.
        let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
        decoder.decode(b"0\r\n\r\n").unwrap();
        assert!(decoder.is_done() && decoder.trailers().is_none());
        // An empty value, and obs-text.
        let (_, trailers) = valid(b"0\r\nEmpty:\r\nT: caf\xe9\r\n\r\n");
        assert_eq!(
            trailers,
            [
                ("Empty".to_string(), vec![]),
                ("T".to_string(), b"caf\xe9".to_vec())
            ]
        );
    }

    #[test]
    fn chunked_leaves_the_bytes_after_the_body() {
        let next = b"HTTP/1.1 200 OK\r\n\r\n";
        for body in [
            &b"0\r\n\r\n"[..],
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nT: v\r\n\r\n",
        ] {
            let mut input = body.to_vec();
            input.extend_from_slice(next);
            let outcome = chunked(&input);
            assert_eq!(outcome.end, Ok(true));
            assert_eq!(outcome.leftover, next, "{:?}", show(body));
        }
        // Even garbage after the body is not the decoder's business.
        let outcome = chunked(b"0\r\n\r\n\x00garbage");
        assert_eq!(
            (outcome.end, outcome.leftover),
            (Ok(true), b"\x00garbage".to_vec())
        );
    }

    #[test]
    fn chunked_invalid_sizes() {
        let cases: [&[u8]; 14] = [
            b"\r\n",
            b";a\r\n",
            b" 5\r\n",
            b"g\r\n",
            b"5x\r\n",
            b"-5\r\n",
            b"+5\r\n",
            b"0x5\r\n",
            b"5\x00\r\n",
            b"25  \r\n",
            b"25 \t\r\n",
            b"25 x\r\n",
            b"1 0\r\n",
            b"10000000000000000\r\n",
        ];
        for input in cases {
            assert_eq!(invalid(input), Error::InvalidChunkSize, "{:?}", show(input));
        }
        assert_eq!(invalid(b"fffffffffffffffff\r\n"), Error::InvalidChunkSize);
        // The largest size that fits is accepted (and then waits for data).
        let outcome = chunked(b"ffffffffffffffff\r\nabc");
        assert_eq!(outcome.body, b"abc");
        assert_eq!(outcome.end, Err(Error::IncompleteBody));
        let outcome = decode_all(
            BodyMode::Chunked,
            Limits::default(),
            b"FFFFFFFFFFFFFFFF\r\nab",
            false,
        );
        assert_eq!((outcome.body, outcome.end), (b"ab".to_vec(), Ok(false)));
    }

    #[test]
    fn chunked_invalid_extensions() {
        let cases: [&[u8]; 20] = [
            // Whitespace is BWS: allowed before `;` and around `=`, never
            // before the CRLF.
            b"2;a \r\n",
            b"2;a=b \r\n",
            b"2;a=\"b\" \r\n",
            b"2;a=b\t\r\n",
            b"2;\r\n",
            b"2; \r\n",
            b"2;;a\r\n",
            b"2;=b\r\n",
            b"2;a=\r\n",
            b"2;a= \r\n",
            b"2;a=\"b\r\nab\r\n",
            b"2;a=\"b\\\r\n",
            b"2;a=b c\r\n",
            b"2;a b\r\n",
            b"2;a=\"b\"c\r\n",
            b"2;a=\"\x01\"\r\n",
            b"2;a=\"\x7f\"\r\n",
            b"2;a=b\x00\r\n",
            b"2;a@b\r\n",
            b"2;a=b=c\r\n",
        ];
        for input in cases {
            assert_eq!(
                invalid(input),
                Error::InvalidChunkExtension,
                "{:?}",
                show(input)
            );
        }
    }

    #[test]
    fn chunked_bare_lf_and_missing_crlf_are_errors() {
        let cases: [(&[u8], Error); 14] = [
            (b"2\nab\r\n0\r\n\r\n", Error::InvalidChunkSize),
            (b"2;a\nab\r\n0\r\n\r\n", Error::InvalidChunkExtension),
            (b"2\r\rab\r\n0\r\n\r\n", Error::InvalidNewLine),
            (b"2\rab\r\n0\r\n\r\n", Error::InvalidNewLine),
            (b"2\r\nab\n0\r\n\r\n", Error::InvalidChunkDelimiter),
            (b"2\r\nab\r0\r\n\r\n", Error::InvalidChunkDelimiter),
            (b"2\r\nabc\r\n0\r\n\r\n", Error::InvalidChunkDelimiter),
            (b"2\r\nab0\r\n\r\n", Error::InvalidChunkDelimiter),
            (b"2\r\nab\r\r\n", Error::InvalidChunkDelimiter),
            (b"2\r\nab\r\n0\n\r\n", Error::InvalidChunkSize),
            (b"2\r\nab\r\n0\r\n\n", Error::InvalidTrailer),
            (b"0\r\n\r\r", Error::InvalidTrailer),
            (b"0\r\nX: y\n\r\n", Error::InvalidTrailer),
            (b"0\r\nX: y\r\n\n", Error::InvalidTrailer),
        ];
        for (input, expected) in cases {
            assert_eq!(invalid(input), expected, "{:?}", show(input));
            assert!(expected.is_remote());
        }
    }

    #[test]
    fn chunked_bad_trailer_lines() {
        let cases: [&[u8]; 8] = [
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\nBad Name: x\r\n\r\n",
            b"0\r\n: x\r\n\r\n",
            b"0\r\nX : x\r\n\r\n",
            b"0\r\nX: a\x01b\r\n\r\n",
            b"0\r\nX: a\x00b\r\n\r\n",
            b"0\r\nX: y\rz\r\n\r\n",
            b"0\r\nX: y\r\n\rz",
        ];
        for input in cases {
            assert_eq!(invalid(input), Error::InvalidTrailer, "{:?}", show(input));
        }
    }

    #[test]
    fn chunked_eof_in_the_middle_is_incomplete() {
        let input = b"5;e=\"v\"\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
        for end in 0..input.len() {
            let outcome = chunked(&input[..end]);
            assert_eq!(outcome.end, Err(Error::IncompleteBody), "cut at {end}");
            assert!(b"helloabc".starts_with(&outcome.body));
            assert!(outcome.end.unwrap_err().is_incomplete());
            let waiting = decode_all(BodyMode::Chunked, Limits::default(), &input[..end], false);
            assert_eq!(waiting.end, Ok(false), "cut at {end}");
        }
        assert_eq!(chunked(input).end, Ok(true));
    }

    #[test]
    fn chunk_extension_limit_is_cumulative_over_the_body() {
        // The extension bytes are everything between the size and the CRLF.
        let one = b"1;abcde\r\nx\r\n0\r\n\r\n";
        assert_eq!(
            valid_with(Limits::default().max_chunk_ext_bytes(6), one),
            b"x"
        );
        assert_eq!(
            invalid_with(Limits::default().max_chunk_ext_bytes(5), one),
            Error::LimitExceeded(Limit::ChunkExtensions)
        );
        // ";ab" + " ;cd" + ";e" = 3 + 4 + 2 bytes over three chunks.
        let many = b"1;ab\r\nx\r\n1 ;cd\r\ny\r\n0;e\r\n\r\n";
        assert_eq!(
            valid_with(Limits::default().max_chunk_ext_bytes(9), many),
            b"xy"
        );
        assert_eq!(
            invalid_with(Limits::default().max_chunk_ext_bytes(8), many),
            Error::LimitExceeded(Limit::ChunkExtensions)
        );
        // Extensions without end, or on endless empty-ish chunks, are stopped.
        let mut endless = b"1;".to_vec();
        endless.resize(20_000, b'a');
        assert_eq!(
            invalid(&endless),
            Error::LimitExceeded(Limit::ChunkExtensions)
        );
        let mut endless_quoted = b"1;a=\"".to_vec();
        endless_quoted.resize(20_000, b' ');
        assert_eq!(
            invalid(&endless_quoted),
            Error::LimitExceeded(Limit::ChunkExtensions)
        );
        let mut endless_ws = b"1".to_vec();
        endless_ws.resize(20_000, b' ');
        assert_eq!(
            invalid(&endless_ws),
            Error::LimitExceeded(Limit::ChunkExtensions)
        );
        let mut chunks = Vec::new();
        while chunks.len() < 40_000 {
            chunks.extend_from_slice(b"1;ext=value\r\nx\r\n");
        }
        let outcome = feed(BodyMode::Chunked, Limits::default(), &[&chunks], true);
        assert_eq!(
            outcome.end,
            Err(Error::LimitExceeded(Limit::ChunkExtensions))
        );
        // 16 KiB of extensions at 10 bytes per chunk: 1638 chunks got through.
        assert_eq!(outcome.body.len(), 16 * 1024 / 10);
    }

    fn valid_with(limits: Limits, input: &[u8]) -> Vec<u8> {
        let outcome = chunked_with(limits, input);
        assert_eq!(outcome.end, Ok(true), "{:?}", show(input));
        outcome.body
    }

    fn invalid_with(limits: Limits, input: &[u8]) -> Error {
        chunked_with(limits, input)
            .end
            .expect_err("invalid chunked body")
    }

    #[test]
    fn trailer_limits() {
        // The trailer section is its field lines with their CRLFs (the final
        // empty line ends it and is not part of it).
        let input = b"0\r\nA: 1\r\nBb: 22\r\n\r\n";
        let section = b"A: 1\r\nBb: 22\r\n".len();
        let lim = Limits::default().max_trailer_bytes(section);
        assert_eq!(chunked_with(lim, input).trailers.map(|t| t.len()), Some(2));
        assert_eq!(
            invalid_with(Limits::default().max_trailer_bytes(section - 1), input),
            Error::LimitExceeded(Limit::TrailerBytes)
        );
        // A trailer line without end is stopped by the default limit.
        let mut endless = b"0\r\nX: ".to_vec();
        endless.resize(20_000, b'v');
        assert_eq!(invalid(&endless), Error::LimitExceeded(Limit::TrailerBytes));
        let mut many_lines = b"0\r\n".to_vec();
        while many_lines.len() < 20_000 {
            many_lines.extend_from_slice(b"X: y\r\n");
        }
        assert_eq!(
            invalid(&many_lines),
            Error::LimitExceeded(Limit::TrailerBytes)
        );

        // max_headers counts trailer fields.
        let three = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            chunked_with(Limits::default().max_headers(3), three)
                .trailers
                .map(|t| t.len()),
            Some(3)
        );
        assert_eq!(
            invalid_with(Limits::default().max_headers(2), three),
            Error::LimitExceeded(Limit::Headers)
        );
        assert_eq!(
            invalid_with(Limits::default().max_headers(0), three),
            Error::LimitExceeded(Limit::Headers)
        );
        let mut hundred_and_one = b"0\r\n".to_vec();
        for i in 0..101 {
            hundred_and_one.extend_from_slice(format!("T{i}: v\r\n").as_bytes());
        }
        hundred_and_one.extend_from_slice(b"\r\n");
        let outcome = feed(
            BodyMode::Chunked,
            Limits::default(),
            &[&hundred_and_one],
            true,
        );
        assert_eq!(outcome.end, Err(Error::LimitExceeded(Limit::Headers)));

        // max_header_line applies to trailer lines.
        let line = b"X-Sum: 0123456789";
        let mut input = b"0\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n\r\n");
        let ok = chunked_with(Limits::default().max_header_line(line.len()), &input);
        assert_eq!(ok.end, Ok(true));
        assert_eq!(
            invalid_with(Limits::default().max_header_line(line.len() - 1), &input),
            Error::LimitExceeded(Limit::HeaderLine)
        );
    }

    #[test]
    fn content_length_bodies() {
        let outcome = decode_all(BodyMode::Length(5), Limits::default(), b"helloNEXT", true);
        assert_eq!(
            outcome,
            Outcome {
                body: b"hello".to_vec(),
                trailers: None,
                leftover: b"NEXT".to_vec(),
                end: Ok(true),
            }
        );
        for end in 0..5 {
            let outcome = decode_all(
                BodyMode::Length(5),
                Limits::default(),
                &b"hello"[..end],
                true,
            );
            assert_eq!(outcome.end, Err(Error::IncompleteBody), "cut at {end}");
            assert_eq!(outcome.body, &b"hello"[..end]);
        }
        let mut decoder = BodyDecoder::new(BodyMode::Length(10), Limits::default());
        assert_eq!(decoder.remaining(), Some(10));
        let step = decoder.decode(b"abc").unwrap();
        assert_eq!(
            step,
            BodyStep {
                consumed: 3,
                data: 0..3,
                done: false
            }
        );
        assert_eq!(decoder.remaining(), Some(7));
        assert_eq!(
            decoder.decode(b"").unwrap(),
            BodyStep {
                consumed: 0,
                data: 0..0,
                done: false
            }
        );
        assert_eq!(decoder.eof(), Err(Error::IncompleteBody));
        let step = decoder.decode(b"defghijXYZ").unwrap();
        assert_eq!(
            step,
            BodyStep {
                consumed: 7,
                data: 0..7,
                done: true
            }
        );
        assert!(decoder.is_done() && decoder.trailers().is_none());

        // A huge declared length is only a number.
        let mut decoder = BodyDecoder::new(BodyMode::Length(u64::MAX), Limits::default());
        decoder.decode(b"abc").unwrap();
        assert_eq!(decoder.remaining(), Some(u64::MAX - 3));
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        for mode in [BodyMode::None, BodyMode::Length(0)] {
            let outcome = decode_all(mode, Limits::default(), b"HTTP/1.1 200 OK\r\n", true);
            assert_eq!(outcome.end, Ok(true));
            assert!(outcome.body.is_empty());
            assert_eq!(outcome.leftover, b"HTTP/1.1 200 OK\r\n");
            let mut decoder = BodyDecoder::new(mode, Limits::default());
            assert!(decoder.is_done());
            assert_eq!(decoder.remaining(), Some(0));
            assert_eq!(decoder.eof(), Ok(()));
        }
    }

    #[test]
    fn until_eof_bodies() {
        let input = b"everything\r\n0\r\n\r\nuntil close";
        let waiting = decode_all(BodyMode::UntilEof, Limits::default(), input, false);
        assert_eq!((&waiting.body[..], waiting.end), (&input[..], Ok(false)));
        assert!(waiting.leftover.is_empty());
        let closed = decode_all(BodyMode::UntilEof, Limits::default(), input, true);
        assert_eq!((&closed.body[..], closed.end), (&input[..], Ok(true)));
        let empty = decode_all(BodyMode::UntilEof, Limits::default(), b"", true);
        assert_eq!(empty.end, Ok(true));

        let mut decoder = BodyDecoder::new(BodyMode::UntilEof, Limits::default());
        assert_eq!(decoder.remaining(), None);
        assert!(!decoder.is_done());
        assert_eq!(decoder.eof(), Ok(()));
        assert!(decoder.is_done());
        assert_eq!(decoder.eof(), Ok(()), "eof twice is fine");
        let step = decoder.decode(b"late").unwrap();
        assert_eq!((step.consumed, step.done), (0, true));
    }

    #[test]
    fn chunked_remaining_is_unknown_and_eof_before_start_is_incomplete() {
        let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
        assert_eq!(decoder.remaining(), None);
        assert_eq!(decoder.eof(), Err(Error::IncompleteBody));
        // An error leaves the decoder failing; EOF still reports incomplete.
        assert_eq!(decoder.decode(b"x"), Err(Error::InvalidChunkSize));
        assert_eq!(decoder.eof(), Err(Error::IncompleteBody));
    }
}
