//! Content codings (RFC 9110 §8.4): gzip and deflate, both ways.
//!
//! Decoding is streaming with caller-sized output: every call is bounded by
//! the output slice it is given, so a small compressed input can never make
//! this crate allocate a large buffer. On top of that, [`ContentDecoder`]
//! enforces [`Limits::max_decode_ratio`](crate::Limits::max_decode_ratio)
//! against decompression bombs.
//!
//! "deflate" in HTTP means the zlib format (RFC 1950); raw deflate
//! (RFC 1951), which some servers send instead, is detected and accepted.
//! gzip bodies may hold several members; each member's CRC-32 and length are
//! checked, and bytes after the last member are an error.

use crate::chars::list_items;

/// A content coding this crate can apply to request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// `Content-Encoding: gzip` (RFC 1952).
    Gzip,
    /// `Content-Encoding: deflate` (zlib format, RFC 1950).
    Deflate,
}

impl Compression {
    /// The `Content-Encoding` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
        }
    }
}

/// The content coding of a response body, as far as this crate decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentCoding {
    /// No coding.
    Identity,
    /// gzip (also `x-gzip`).
    Gzip,
    /// deflate (zlib or raw).
    Deflate,
}

impl ContentCoding {
    /// Reads a `Content-Encoding` value. `None` means a coding this crate
    /// cannot decode (brotli, zstd, or several stacked codings): callers
    /// then hand the body over undecoded, as aiohttp and reqwest do.
    ///
    /// ```
    /// use courier_proto::ContentCoding;
    /// assert_eq!(ContentCoding::from_header(b"GZIP"), Some(ContentCoding::Gzip));
    /// assert_eq!(ContentCoding::from_header(b"identity, deflate"), Some(ContentCoding::Deflate));
    /// assert_eq!(ContentCoding::from_header(b"br"), None);
    /// assert_eq!(ContentCoding::from_header(b"gzip, gzip"), None);
    /// ```
    pub fn from_header(value: &[u8]) -> Option<ContentCoding> {
        let mut coding = ContentCoding::Identity;
        for item in list_items(value) {
            let found =
                if item.eq_ignore_ascii_case(b"gzip") || item.eq_ignore_ascii_case(b"x-gzip") {
                    ContentCoding::Gzip
                } else if item.eq_ignore_ascii_case(b"deflate") {
                    ContentCoding::Deflate
                } else if item.eq_ignore_ascii_case(b"identity") {
                    continue;
                } else {
                    return None;
                };
            if coding != ContentCoding::Identity {
                return None;
            }
            coding = found;
        }
        Some(coding)
    }
}

/// The `Accept-Encoding` value matching what [`ContentDecoder`] can decode.
#[cfg(feature = "compression")]
pub const ACCEPT_ENCODING: &str = "gzip, deflate";

#[cfg(feature = "compression")]
pub(crate) use imp::Compressor;
#[cfg(feature = "compression")]
pub use imp::ContentDecoder;

#[cfg(not(feature = "compression"))]
pub(crate) use identity_only::Compressor;
#[cfg(not(feature = "compression"))]
pub use identity_only::ContentDecoder;

#[cfg(feature = "compression")]
mod imp {
    use flate2::{Crc, Decompress, FlushCompress, FlushDecompress, Status};

    use super::{Compression, ContentCoding};
    use crate::error::{Error, Limit};
    use crate::limits::Limits;

    /// Largest gzip member header buffered, in bytes. Real headers are 10
    /// to a few dozen bytes; this fits the largest extra field (64 KiB) plus
    /// generous name and comment fields, and bounds what a peer can make the
    /// decoder hold before any data.
    const MAX_GZIP_HEADER: usize = 128 * 1024;

    /// Guards the ratio of produced to consumed bytes.
    #[derive(Debug, Clone, Copy)]
    struct RatioGuard {
        consumed: u64,
        produced: u64,
        ratio: u64,
        grace: u64,
    }

    impl RatioGuard {
        fn new(limits: &Limits) -> RatioGuard {
            RatioGuard {
                consumed: 0,
                produced: 0,
                ratio: limits.max_decode_ratio,
                grace: limits.decode_ratio_grace,
            }
        }

        fn account(&mut self, consumed: usize, produced: usize) -> Result<(), Error> {
            self.consumed += consumed as u64;
            self.produced += produced as u64;
            if self.produced > self.grace
                && self.produced > self.consumed.saturating_mul(self.ratio)
            {
                return Err(Error::LimitExceeded(Limit::DecodeRatio));
            }
            Ok(())
        }
    }

    /// Streaming compressor for request bodies.
    #[derive(Debug)]
    pub(crate) struct Compressor {
        kind: Compression,
        deflate: flate2::Compress,
        crc: Crc,
        header_written: bool,
    }

    impl Compressor {
        pub(crate) fn new(kind: Compression) -> Result<Compressor, Error> {
            let level = flate2::Compression::default();
            Ok(Compressor {
                kind,
                deflate: flate2::Compress::new(level, kind == Compression::Deflate),
                crc: Crc::new(),
                header_written: false,
            })
        }

        pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
            self.header(out);
            if self.kind == Compression::Gzip {
                self.crc.update(data);
            }
            self.run(data, out, FlushCompress::None)
        }

        pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
            self.header(out);
            self.run(&[], out, FlushCompress::Finish)?;
            if self.kind == Compression::Gzip {
                out.extend_from_slice(&self.crc.sum().to_le_bytes());
                out.extend_from_slice(&self.crc.amount().to_le_bytes());
            }
            Ok(())
        }

        fn header(&mut self, out: &mut Vec<u8>) {
            if self.kind == Compression::Gzip && !self.header_written {
                // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown)
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
            }
            self.header_written = true;
        }

        fn run(
            &mut self,
            mut input: &[u8],
            out: &mut Vec<u8>,
            flush: FlushCompress,
        ) -> Result<(), Error> {
            loop {
                if out.capacity() - out.len() < 64 {
                    out.reserve(input.len() / 2 + 1024);
                }
                let before = self.deflate.total_in();
                let status = self
                    .deflate
                    .compress_vec(input, out, flush)
                    .map_err(|_| Error::OutOfOrder("compressor misuse"))?;
                // At most `input.len()`, so it fits a `usize`.
                let used = usize::try_from(self.deflate.total_in() - before).unwrap_or(input.len());
                input = &input[used..];
                let output_full = out.capacity() == out.len();
                match (flush, status) {
                    (FlushCompress::Finish, Status::StreamEnd) => return Ok(()),
                    (FlushCompress::Finish, _) => {}
                    (_, _) if input.is_empty() && !output_full => return Ok(()),
                    _ => {}
                }
            }
        }
    }

    #[derive(Debug)]
    enum State {
        Identity,
        /// Collecting a gzip member header.
        GzipHeader {
            bytes: Vec<u8>,
            /// Inside a name or comment: only a NUL can complete the header,
            /// so other bytes are not rescanned (keeping long fields linear).
            need_nul: bool,
        },
        GzipBody,
        /// Collecting the 8-byte gzip trailer.
        GzipTrailer(Vec<u8>),
        /// A gzip member ended; another may follow.
        GzipMemberEnd,
        /// Waiting for the first two bytes to tell zlib from raw deflate.
        DeflateStart(Vec<u8>),
        /// Inflating; the first `fed` of the two start bytes went in already.
        DeflateBody {
            start: [u8; 2],
            fed: usize,
        },
        Done,
    }

    /// Streaming decoder of one content-coded response body.
    ///
    /// Call [`decode`](Self::decode) with the body bytes as they come and an
    /// output slice; call it again (with the remaining input, which may be
    /// empty) as long as it fills the whole output slice, since the decoder
    /// may hold decoded bytes back when the output is full. At the end of the
    /// body call [`finish`](Self::finish), which tells a complete stream from
    /// a truncated one.
    ///
    /// A gzip member header (10 bytes plus optional extra, name and comment
    /// fields) longer than 128 KiB is refused as [`Error::Decompress`].
    ///
    /// ```
    /// use courier_proto::{ContentCoding, ContentDecoder, Limits};
    /// // "hello" compressed with zlib (HTTP's "deflate").
    /// let compressed = [0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15];
    /// let mut decoder = ContentDecoder::new(ContentCoding::Deflate, &Limits::default());
    /// let mut out = [0u8; 64];
    /// let (used, produced) = decoder.decode(&compressed, &mut out).unwrap();
    /// assert_eq!((used, &out[..produced]), (compressed.len(), &b"hello"[..]));
    /// decoder.finish().unwrap();
    /// ```
    #[derive(Debug)]
    pub struct ContentDecoder {
        state: State,
        inflate: Option<Decompress>,
        crc: Crc,
        /// Any byte of the body seen (an empty body is a valid empty stream).
        started: bool,
        guard: RatioGuard,
    }

    impl ContentDecoder {
        /// A decoder for `coding`, enforcing the decode-ratio limits.
        pub fn new(coding: ContentCoding, limits: &Limits) -> ContentDecoder {
            let state = match coding {
                ContentCoding::Identity => State::Identity,
                ContentCoding::Gzip => State::GzipHeader {
                    bytes: Vec::with_capacity(10),
                    need_nul: false,
                },
                ContentCoding::Deflate => State::DeflateStart(Vec::with_capacity(2)),
            };
            ContentDecoder {
                state,
                inflate: None,
                crc: Crc::new(),
                started: false,
                guard: RatioGuard::new(limits),
            }
        }

        /// True once a complete compressed stream has been decoded (never
        /// for identity, which has no end of its own).
        pub fn is_done(&self) -> bool {
            matches!(self.state, State::Done | State::GzipMemberEnd)
        }

        /// Decodes from `input` into `out`; returns (input used, output produced).
        ///
        /// # Errors
        ///
        /// [`Error::Decompress`] for corrupt data or bytes after the end of
        /// the stream; [`Error::LimitExceeded`] with
        /// [`Limit::DecodeRatio`] for a bomb.
        pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
            if !input.is_empty() {
                self.started = true;
            }
            let mut used = 0;
            let mut produced = 0;
            while produced < out.len() {
                let rest = &input[used..];
                let (u, p, progressed) = self.step(rest, &mut out[produced..])?;
                used += u;
                produced += p;
                if !progressed {
                    break;
                }
            }
            if !matches!(self.state, State::Identity) {
                self.guard.account(used, produced)?;
            }
            Ok((used, produced))
        }

        /// Declares the end of the body.
        ///
        /// # Errors
        ///
        /// [`Error::Decompress`] when the compressed stream stopped before its end.
        pub fn finish(&mut self) -> Result<(), Error> {
            match self.state {
                State::Identity | State::Done | State::GzipMemberEnd => Ok(()),
                _ if !self.started => Ok(()),
                _ => Err(Error::Decompress("compressed stream ended early")),
            }
        }

        /// One state's worth of work: (input used, output produced, whether
        /// anything moved). Nothing moves without more input or output room.
        fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize, bool), Error> {
            match &mut self.state {
                State::Identity => {
                    let n = input.len().min(out.len());
                    out[..n].copy_from_slice(&input[..n]);
                    Ok((n, n, n > 0))
                }
                State::Done => {
                    if input.is_empty() {
                        Ok((0, 0, false))
                    } else {
                        Err(Error::Decompress(
                            "data after the end of the compressed stream",
                        ))
                    }
                }
                State::GzipMemberEnd => match input.first() {
                    None => Ok((0, 0, false)),
                    Some(0x1f) => {
                        self.state = State::GzipHeader {
                            bytes: Vec::with_capacity(10),
                            need_nul: false,
                        };
                        Ok((0, 0, true))
                    }
                    Some(_) => Err(Error::Decompress("data after the end of the gzip stream")),
                },
                State::GzipHeader { bytes, need_nul } => {
                    let mut used = 0;
                    for &b in input {
                        bytes.push(b);
                        used += 1;
                        if bytes.len() > MAX_GZIP_HEADER {
                            return Err(Error::Decompress("gzip header too long"));
                        }
                        if *need_nul && b != 0 {
                            continue;
                        }
                        match gzip_header_progress(bytes)? {
                            HeaderProgress::Complete => {
                                self.inflate = Some(Decompress::new(false));
                                self.crc.reset();
                                self.state = State::GzipBody;
                                break;
                            }
                            HeaderProgress::NeedNul => *need_nul = true,
                            HeaderProgress::NeedMore => *need_nul = false,
                        }
                    }
                    Ok((used, 0, used > 0))
                }
                State::DeflateStart(start) => {
                    let take = (2 - start.len()).min(input.len());
                    start.extend_from_slice(&input[..take]);
                    if start.len() == 2 {
                        let start = [start[0], start[1]];
                        self.inflate = Some(Decompress::new(is_zlib_header(start[0], start[1])));
                        self.state = State::DeflateBody { start, fed: 0 };
                        return Ok((take, 0, true));
                    }
                    Ok((take, 0, take > 0))
                }
                State::DeflateBody { start, fed } if *fed < 2 => {
                    // The two bytes that told zlib from raw deflate go in first.
                    let pending = &start[*fed..];
                    let (used, produced, end) = inflate(self.inflate.as_mut(), pending, out)?;
                    *fed += used;
                    if end {
                        self.state = State::Done;
                    }
                    Ok((0, produced, used > 0 || produced > 0 || end))
                }
                State::GzipBody | State::DeflateBody { .. } => {
                    let gzip = matches!(self.state, State::GzipBody);
                    let (used, produced, end) = inflate(self.inflate.as_mut(), input, out)?;
                    if gzip {
                        self.crc.update(&out[..produced]);
                    }
                    if end {
                        self.state = if gzip {
                            State::GzipTrailer(Vec::with_capacity(8))
                        } else {
                            State::Done
                        };
                    }
                    Ok((used, produced, used > 0 || produced > 0 || end))
                }
                State::GzipTrailer(trailer) => {
                    let take = (8 - trailer.len()).min(input.len());
                    trailer.extend_from_slice(&input[..take]);
                    if trailer.len() == 8 {
                        let crc =
                            u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                        let size =
                            u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
                        let total = self.inflate.as_ref().map_or(0, Decompress::total_out);
                        if crc != self.crc.sum() {
                            return Err(Error::Decompress("gzip crc mismatch"));
                        }
                        // ISIZE is the length modulo 2^32.
                        if u64::from(size) != total & 0xffff_ffff {
                            return Err(Error::Decompress("gzip length mismatch"));
                        }
                        self.state = State::GzipMemberEnd;
                    }
                    Ok((take, 0, take > 0))
                }
            }
        }
    }

    /// Runs the inflater once: (input used, output produced, stream ended).
    fn inflate(
        inflater: Option<&mut Decompress>,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize, bool), Error> {
        let Some(inflater) = inflater else {
            return Err(Error::OutOfOrder("inflate state missing"));
        };
        let (in0, out0) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(input, out, FlushDecompress::None)
            .map_err(|_| Error::Decompress("corrupt deflate data"))?;
        // At most `input.len()` and `out.len()`, so they fit a `usize`.
        let used = usize::try_from(inflater.total_in() - in0).unwrap_or(input.len());
        let produced = usize::try_from(inflater.total_out() - out0).unwrap_or(out.len());
        Ok((used, produced, status == Status::StreamEnd))
    }

    /// True when the first two bytes are a valid zlib header (RFC 1950 §2.2):
    /// method 8 (deflate), window at most 32 KiB, and the check bits.
    fn is_zlib_header(cmf: u8, flg: u8) -> bool {
        cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
    }

    /// How far a gzip member header is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum HeaderProgress {
        /// The header is whole.
        Complete,
        /// Incomplete, and only a NUL (ending the name or comment) can complete it.
        NeedNul,
        /// Incomplete.
        NeedMore,
    }

    /// How far `h` is into a gzip member header (RFC 1952 §2.3).
    fn gzip_header_progress(h: &[u8]) -> Result<HeaderProgress, Error> {
        const FHCRC: u8 = 2;
        const FEXTRA: u8 = 4;
        const FNAME: u8 = 8;
        const FCOMMENT: u8 = 16;
        if (!h.is_empty() && h[0] != 0x1f) || (h.len() >= 2 && h[1] != 0x8b) {
            return Err(Error::Decompress("not a gzip stream"));
        }
        if h.len() >= 3 && h[2] != 8 {
            return Err(Error::Decompress("unsupported gzip compression method"));
        }
        if h.len() < 10 {
            return Ok(HeaderProgress::NeedMore);
        }
        let flags = h[3];
        if flags & 0xe0 != 0 {
            return Err(Error::Decompress("reserved gzip flags set"));
        }
        let mut at = 10;
        if flags & FEXTRA != 0 {
            if h.len() < at + 2 {
                return Ok(HeaderProgress::NeedMore);
            }
            at += 2 + usize::from(u16::from_le_bytes([h[at], h[at + 1]]));
        }
        for flag in [FNAME, FCOMMENT] {
            if flags & flag != 0 {
                // Still in the extra field: any byte may be the next one needed.
                let Some(rest) = h.get(at..) else {
                    return Ok(HeaderProgress::NeedMore);
                };
                match rest.iter().position(|&b| b == 0) {
                    Some(nul) => at += nul + 1,
                    None => return Ok(HeaderProgress::NeedNul),
                }
            }
        }
        if flags & FHCRC != 0 {
            at += 2;
        }
        Ok(if h.len() >= at {
            HeaderProgress::Complete
        } else {
            HeaderProgress::NeedMore
        })
    }
}

#[cfg(not(feature = "compression"))]
mod identity_only {
    use super::{Compression, ContentCoding};
    use crate::error::Error;
    use crate::limits::Limits;

    /// Request compression is unavailable without the `compression` feature.
    #[derive(Debug)]
    pub(crate) enum Compressor {}

    impl Compressor {
        pub(crate) fn new(_: Compression) -> Result<Compressor, Error> {
            Err(Error::CompressionUnavailable)
        }
        pub(crate) fn compress(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<(), Error> {
            match *self {}
        }
        pub(crate) fn finish(&mut self, _: &mut Vec<u8>) -> Result<(), Error> {
            match *self {}
        }
    }

    /// Streaming decoder of a response body; without the `compression`
    /// feature only identity is supported.
    #[derive(Debug)]
    pub struct ContentDecoder {
        coding: ContentCoding,
    }

    impl ContentDecoder {
        /// A decoder for `coding`.
        pub fn new(coding: ContentCoding, _limits: &Limits) -> ContentDecoder {
            ContentDecoder { coding }
        }
        /// Always false for identity.
        pub fn is_done(&self) -> bool {
            false
        }
        /// Copies `input` to `out`.
        ///
        /// # Errors
        ///
        /// [`Error::CompressionUnavailable`] for gzip and deflate.
        pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), Error> {
            if self.coding != ContentCoding::Identity {
                return Err(Error::CompressionUnavailable);
            }
            let n = input.len().min(out.len());
            out[..n].copy_from_slice(&input[..n]);
            Ok((n, n))
        }
        /// Always succeeds for identity.
        ///
        /// # Errors
        ///
        /// None.
        pub fn finish(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::limits::Limits;

    #[test]
    fn content_coding_from_header() {
        let cases: [(&[u8], Option<ContentCoding>); 18] = [
            (b"", Some(ContentCoding::Identity)),
            (b"identity", Some(ContentCoding::Identity)),
            (b"IDENTITY, identity", Some(ContentCoding::Identity)),
            (b"gzip", Some(ContentCoding::Gzip)),
            (b"GZip", Some(ContentCoding::Gzip)),
            (b"x-gzip", Some(ContentCoding::Gzip)),
            (b" gzip \t", Some(ContentCoding::Gzip)),
            (b"gzip,", Some(ContentCoding::Gzip)),
            (b", ,gzip", Some(ContentCoding::Gzip)),
            (b"deflate", Some(ContentCoding::Deflate)),
            (b"identity, deflate, identity", Some(ContentCoding::Deflate)),
            (b"br", None),
            (b"zstd", None),
            (b"compress", None),
            (b"gzip, br", None),
            (b"gzip, gzip", None),
            (b"deflate, gzip", None),
            (b"gzip;q=1", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                ContentCoding::from_header(value),
                expected,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn compression_tokens() {
        assert_eq!(Compression::Gzip.as_str(), "gzip");
        assert_eq!(Compression::Deflate.as_str(), "deflate");
        for c in [Compression::Gzip, Compression::Deflate] {
            assert!(ContentCoding::from_header(c.as_str().as_bytes()).is_some());
        }
    }

    #[test]
    fn identity_passes_bytes_through() {
        let mut decoder = ContentDecoder::new(ContentCoding::Identity, &Limits::default());
        let mut out = [0u8; 4];
        assert_eq!(decoder.decode(b"abcdef", &mut out), Ok((4, 4)));
        assert_eq!(&out, b"abcd");
        assert_eq!(decoder.decode(b"ef", &mut out), Ok((2, 2)));
        assert_eq!(&out[..2], b"ef");
        assert_eq!(decoder.decode(b"", &mut out), Ok((0, 0)));
        assert!(!decoder.is_done(), "identity has no end of its own");
        assert_eq!(decoder.finish(), Ok(()));
        // Identity is never limited by the decode ratio (it is 1).
        let limits = Limits::default().max_decode_ratio(0).decode_ratio_grace(0);
        let mut decoder = ContentDecoder::new(ContentCoding::Identity, &limits);
        let mut out = [0u8; 64];
        assert_eq!(decoder.decode(&[7; 64], &mut out), Ok((64, 64)));
    }

    #[cfg(not(feature = "compression"))]
    #[test]
    fn without_the_feature_codings_are_unavailable() {
        for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
            let mut decoder = ContentDecoder::new(coding, &Limits::default());
            assert_eq!(
                decoder.decode(b"\x1f\x8b", &mut [0; 16]),
                Err(Error::CompressionUnavailable)
            );
        }
        for c in [Compression::Gzip, Compression::Deflate] {
            assert!(matches!(
                Compressor::new(c),
                Err(Error::CompressionUnavailable)
            ));
            let encoder = crate::body::BodyEncoder::new(
                crate::body::Framing::Chunked { max_chunk: 16 },
                Some(c),
            );
            assert!(matches!(encoder, Err(Error::CompressionUnavailable)));
        }
    }

    #[cfg(feature = "compression")]
    mod compression {
        use std::io::{Read, Write};

        use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

        use super::*;
        use crate::body::{BodyDecoder, BodyEncoder, Framing};
        use crate::error::Limit;
        use crate::framing::BodyMode;
        use crate::request::Request;

        /// Which stream format a sample is in.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Format {
            Gzip,
            Zlib,
            Raw,
        }

        impl Format {
            const ALL: [Format; 3] = [Format::Gzip, Format::Zlib, Format::Raw];

            fn coding(self) -> ContentCoding {
                match self {
                    Format::Gzip => ContentCoding::Gzip,
                    Format::Zlib | Format::Raw => ContentCoding::Deflate,
                }
            }

            fn compress(self, data: &[u8]) -> Vec<u8> {
                let level = flate2::Compression::default();
                match self {
                    Format::Gzip => {
                        let mut e = GzEncoder::new(Vec::new(), level);
                        e.write_all(data).unwrap();
                        e.finish().unwrap()
                    }
                    Format::Zlib => {
                        let mut e = ZlibEncoder::new(Vec::new(), level);
                        e.write_all(data).unwrap();
                        e.finish().unwrap()
                    }
                    Format::Raw => raw_deflate(data),
                }
            }
        }

        fn raw_deflate(data: &[u8]) -> Vec<u8> {
            let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }

        /// Deterministic bytes that do not compress (xorshift).
        fn noise(len: usize, seed: u64) -> Vec<u8> {
            let mut x = seed | 1;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect()
        }

        /// Text-like bytes that compress well, with some noise in them.
        fn text(len: usize) -> Vec<u8> {
            let words = noise(len / 8 + 1, 7);
            let mut out = Vec::with_capacity(len + 16);
            let mut i = 0;
            while out.len() < len {
                let word = [
                    "the ",
                    "quick ",
                    "brown ",
                    "fox ",
                    "jumps\n",
                    "{\"k\": 1}, ",
                ];
                out.extend_from_slice(word[usize::from(words[i % words.len()]) % 6].as_bytes());
                if i % 50 == 0 {
                    out.extend_from_slice(&noise(8, i as u64));
                }
                i += 1;
            }
            out.truncate(len);
            out
        }

        fn samples() -> Vec<Vec<u8>> {
            vec![
                b"a".to_vec(),
                b"hello, world".to_vec(),
                text(300),
                noise(200, 3),
                vec![0; 1000],
            ]
        }

        /// Decodes `pieces` in order into an output slice of `out_size`,
        /// as the documented caller does: call again while the output fills
        /// up; all input must be used whenever the output has room left.
        fn decode_pieces(
            coding: ContentCoding,
            limits: &Limits,
            pieces: &[&[u8]],
            out_size: usize,
        ) -> Result<Vec<u8>, Error> {
            let mut decoder = ContentDecoder::new(coding, limits);
            let mut decoded = Vec::new();
            let mut buf = vec![0u8; out_size];
            for piece in pieces {
                let mut at = 0;
                loop {
                    let (used, produced) = decoder.decode(&piece[at..], &mut buf)?;
                    assert!(used <= piece.len() - at && produced <= buf.len());
                    decoded.extend_from_slice(&buf[..produced]);
                    at += used;
                    if produced < buf.len() {
                        assert_eq!(at, piece.len(), "input left over while output had room");
                        break;
                    }
                }
            }
            decoder.finish()?;
            if !decoded.is_empty() && coding != ContentCoding::Identity {
                assert!(decoder.is_done());
            }
            Ok(decoded)
        }

        fn decode(coding: ContentCoding, input: &[u8], out_size: usize) -> Result<Vec<u8>, Error> {
            decode_pieces(coding, &Limits::default(), &[input], out_size)
        }

        /// Decodes whole, split at every offset and byte by byte, with output
        /// slices of 1, 7 and 4096 bytes; all must agree.
        fn decode_every_way(coding: ContentCoding, input: &[u8]) -> Result<Vec<u8>, Error> {
            let limits = Limits::default();
            let whole = decode(coding, input, 4096);
            for out_size in [1, 7, 4096] {
                for split in 0..=input.len() {
                    let (a, b) = input.split_at(split);
                    assert_eq!(
                        decode_pieces(coding, &limits, &[a, b], out_size),
                        whole,
                        "{coding:?} split at {split}, output of {out_size}"
                    );
                }
                let bytes: Vec<&[u8]> = input.chunks(1).collect();
                assert_eq!(
                    decode_pieces(coding, &limits, &bytes, out_size),
                    whole,
                    "{coding:?} byte by byte, output of {out_size}"
                );
            }
            whole
        }

        #[test]
        fn round_trips_small_samples_split_every_way() {
            for format in Format::ALL {
                for data in samples() {
                    let compressed = format.compress(&data);
                    let decoded = decode_every_way(format.coding(), &compressed);
                    assert_eq!(
                        decoded.as_deref(),
                        Ok(&data[..]),
                        "{format:?} {}",
                        data.len()
                    );
                }
            }
        }

        #[test]
        fn round_trips_a_larger_body_in_pieces() {
            let data = text(300 * 1024);
            let limits = Limits::default();
            for format in Format::ALL {
                let compressed = format.compress(&data);
                for piece in [1, 13, 1000, 16 * 1024, compressed.len()] {
                    let pieces: Vec<&[u8]> = compressed.chunks(piece).collect();
                    for out_size in [7, 4096, 16 * 1024] {
                        if piece == 1 && out_size == 7 {
                            continue; // covered by the small samples, and slow
                        }
                        let decoded =
                            decode_pieces(format.coding(), &limits, &pieces, out_size).unwrap();
                        assert!(
                            decoded == data,
                            "{format:?} pieces {piece}, output {out_size}"
                        );
                    }
                }
                let decoded = decode_pieces(format.coding(), &limits, &[&compressed], 1).unwrap();
                assert!(decoded == data, "{format:?} output of 1");
            }
        }

        #[test]
        fn multi_member_gzip() {
            let mut input = Format::Gzip.compress(b"first member, ");
            input.extend_from_slice(&Format::Gzip.compress(b""));
            input.extend_from_slice(&Format::Gzip.compress(b"second, "));
            input.extend_from_slice(&gzip_with(0x08 | 0x10, b"name", b"comment", b"", b"third"));
            let decoded = decode_every_way(ContentCoding::Gzip, &input);
            assert_eq!(decoded.as_deref(), Ok(&b"first member, second, third"[..]));
            // flate2 agrees on what the stream holds.
            let mut expected = Vec::new();
            flate2::read::MultiGzDecoder::new(&input[..])
                .read_to_end(&mut expected)
                .unwrap();
            assert_eq!(expected, b"first member, second, third");
        }

        /// A gzip member with header flags and fields built by hand
        /// (RFC 1952 §2.3); FHCRC (0x02) gets the low 16 bits of the CRC-32
        /// of the header before it.
        fn gzip_with(flags: u8, name: &[u8], comment: &[u8], extra: &[u8], data: &[u8]) -> Vec<u8> {
            let mut out = vec![0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3];
            if flags & 0x04 != 0 {
                let len = u16::try_from(extra.len()).unwrap();
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(extra);
            }
            if flags & 0x08 != 0 {
                out.extend_from_slice(name);
                out.push(0);
            }
            if flags & 0x10 != 0 {
                out.extend_from_slice(comment);
                out.push(0);
            }
            if flags & 0x02 != 0 {
                let mut crc = flate2::Crc::new();
                crc.update(&out);
                out.extend_from_slice(&crc.sum().to_le_bytes()[..2]);
            }
            out.extend_from_slice(&raw_deflate(data));
            let mut crc = flate2::Crc::new();
            crc.update(data);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
            out
        }

        #[test]
        fn gzip_header_fields() {
            let data = b"payload after optional header fields";
            let cases: [(u8, &str); 8] = [
                (0x00, "none"),
                (0x01, "FTEXT"),
                (0x02, "FHCRC"),
                (0x04, "FEXTRA"),
                (0x08, "FNAME"),
                (0x10, "FCOMMENT"),
                (0x1f, "all"),
                (0x0c, "FEXTRA + FNAME"),
            ];
            for (flags, what) in cases {
                let input = gzip_with(flags, b"file.txt", b"a comment", b"AB\x02\x00xy", data);
                let mut check = Vec::new();
                flate2::read::GzDecoder::new(&input[..])
                    .read_to_end(&mut check)
                    .unwrap();
                assert_eq!(check, data, "{what}: flate2 reads the test vector");
                let decoded = decode_every_way(ContentCoding::Gzip, &input);
                assert_eq!(decoded.as_deref(), Ok(&data[..]), "{what}");
            }
            // Empty fields, and an extra field holding NUL bytes.
            let input = gzip_with(0x1e, b"", b"", b"\0\0\0\0", data);
            assert_eq!(
                decode_every_way(ContentCoding::Gzip, &input).as_deref(),
                Ok(&data[..])
            );
            let input = gzip_with(0x04, b"", b"", b"", data);
            assert_eq!(
                decode_every_way(ContentCoding::Gzip, &input).as_deref(),
                Ok(&data[..])
            );
        }

        #[test]
        fn long_gzip_header_fields_cost_linear_time() {
            // A 60 KiB name and comment, in one piece and in 1-byte pieces.
            let name = vec![b'n'; 30 * 1024];
            let comment = vec![b'c'; 30 * 1024];
            let input = gzip_with(0x1a, &name, &comment, b"", b"data");
            let limits = Limits::default();
            assert_eq!(
                decode(ContentCoding::Gzip, &input, 4096).as_deref(),
                Ok(&b"data"[..])
            );
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            let decoded = decode_pieces(ContentCoding::Gzip, &limits, &bytes, 4096);
            assert_eq!(decoded.as_deref(), Ok(&b"data"[..]));
        }

        #[test]
        fn gzip_header_errors() {
            let good = gzip_with(0, b"", b"", b"", b"x");
            let mut bad_magic = good.clone();
            bad_magic[1] = 0x8c;
            let mut bad_method = good.clone();
            bad_method[2] = 7;
            let mut reserved = good.clone();
            reserved[3] = 0x20;
            for (what, input) in [
                ("magic", bad_magic),
                ("method", bad_method),
                ("reserved flag", reserved),
                ("not gzip at all", b"plain text body".to_vec()),
                ("zlib as gzip", Format::Zlib.compress(b"x")),
            ] {
                let result = decode_every_way(ContentCoding::Gzip, &input);
                assert!(
                    matches!(result, Err(Error::Decompress(_))),
                    "{what}: {result:?}"
                );
            }
            // The largest extra field the format allows, plus a long name, is fine.
            let extra = {
                let mut e = b"AB".to_vec();
                e.extend_from_slice(&(65531u16).to_le_bytes());
                e.resize(65535, b'x');
                e
            };
            let input = gzip_with(0x0c, &vec![b'n'; 30 * 1024], b"", &extra, b"data");
            assert_eq!(
                decode(ContentCoding::Gzip, &input, 4096).as_deref(),
                Ok(&b"data"[..])
            );
            // A name that never ends is bounded.
            let mut endless = vec![0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3];
            endless.resize(200 * 1024, b'n');
            let result = decode(ContentCoding::Gzip, &endless, 4096);
            assert!(matches!(result, Err(Error::Decompress(_))), "{result:?}");
        }

        #[test]
        fn gzip_crc_and_length_mismatches_are_errors() {
            let data = text(1000);
            let good = Format::Gzip.compress(&data);
            let n = good.len();
            assert_eq!(
                decode(ContentCoding::Gzip, &good, 4096).as_deref(),
                Ok(&data[..])
            );
            let mut bad_crc = good.clone();
            bad_crc[n - 8] ^= 1;
            let mut bad_len = good.clone();
            bad_len[n - 4] ^= 1;
            let mut len_high = good.clone();
            len_high[n - 1] = 0x80;
            for (what, input) in [("crc", bad_crc), ("length", bad_len), ("length", len_high)] {
                let result = decode_every_way(ContentCoding::Gzip, &input);
                assert!(
                    matches!(result, Err(Error::Decompress(_))),
                    "{what}: {result:?}"
                );
                assert!(result.unwrap_err().is_remote());
            }
            // A corrupted data byte: corrupt deflate data or a CRC mismatch,
            // but always an error.
            for at in [12, n / 2, n - 10] {
                let mut input = good.clone();
                input[at] ^= 0x55;
                let result = decode(ContentCoding::Gzip, &input, 4096);
                assert!(
                    result.is_err(),
                    "flipped byte {at}: decoded {:?}",
                    result.map(|v| v.len())
                );
            }
            // zlib checks its Adler-32 too.
            let zlib = Format::Zlib.compress(&data);
            let mut bad_adler = zlib.clone();
            let last = bad_adler.len() - 1;
            bad_adler[last] ^= 1;
            assert!(matches!(
                decode(ContentCoding::Deflate, &bad_adler, 4096),
                Err(Error::Decompress(_))
            ));
        }

        #[test]
        fn truncated_streams_fail_at_finish() {
            for format in Format::ALL {
                let data = text(500);
                let compressed = format.compress(&data);
                for end in 1..compressed.len() {
                    let mut decoder = ContentDecoder::new(format.coding(), &Limits::default());
                    let mut buf = [0u8; 4096];
                    let (used, produced) = decoder.decode(&compressed[..end], &mut buf).unwrap();
                    assert_eq!(used, end);
                    assert!(data.starts_with(&buf[..produced]));
                    assert!(!decoder.is_done(), "{format:?} cut at {end}");
                    assert!(
                        matches!(decoder.finish(), Err(Error::Decompress(_))),
                        "{format:?} cut at {end}"
                    );
                    // The same, fed byte by byte into a small output.
                    let bytes: Vec<&[u8]> = compressed[..end].chunks(1).collect();
                    let result = decode_pieces(format.coding(), &Limits::default(), &bytes, 7);
                    assert!(
                        matches!(result, Err(Error::Decompress(_))),
                        "{format:?} cut at {end}, byte by byte"
                    );
                }
            }
        }

        #[test]
        fn an_empty_body_is_an_empty_stream() {
            for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
                assert_eq!(decode(coding, b"", 16), Ok(Vec::new()));
                let mut decoder = ContentDecoder::new(coding, &Limits::default());
                assert_eq!(decoder.decode(b"", &mut [0; 16]), Ok((0, 0)));
                assert_eq!(decoder.finish(), Ok(()));
            }
            // An empty gzip member (a real stream of nothing) is fine too.
            assert_eq!(
                decode_every_way(ContentCoding::Gzip, &Format::Gzip.compress(b"")),
                Ok(vec![])
            );
            assert_eq!(
                decode_every_way(ContentCoding::Deflate, &Format::Zlib.compress(b"")),
                Ok(vec![])
            );
            assert_eq!(
                decode_every_way(ContentCoding::Deflate, &Format::Raw.compress(b"")),
                Ok(vec![])
            );
        }

        #[test]
        fn bytes_after_the_end_of_the_stream_are_errors() {
            for format in Format::ALL {
                for garbage in [&b"x"[..], b"\0", b"\n", b"\x1f", b"\x1f\x8b\x08garbage..."] {
                    let mut input = format.compress(b"some data");
                    input.extend_from_slice(garbage);
                    let result = decode_every_way(format.coding(), &input);
                    assert!(
                        matches!(result, Err(Error::Decompress(_))),
                        "{format:?} + {garbage:?}: {result:?}"
                    );
                }
            }
        }

        /// 10 MiB of zeros, gzip-compressed to about 10 KiB.
        fn bomb(format: Format) -> Vec<u8> {
            let compressed = format.compress(&vec![0; 10 * 1024 * 1024]);
            assert!(compressed.len() < 20 * 1024, "{}", compressed.len());
            compressed
        }

        #[test]
        fn decompression_bombs_stop_at_the_ratio_limit() {
            for format in Format::ALL {
                let input = bomb(format);
                let mut decoder = ContentDecoder::new(format.coding(), &Limits::default());
                let mut buf = [0u8; 16 * 1024];
                let mut at = 0;
                let mut total = 0u64;
                let error = loop {
                    match decoder.decode(&input[at..], &mut buf) {
                        Ok((used, produced)) => {
                            at += used;
                            total += produced as u64;
                            assert!(produced > 0, "the bomb ended without an error");
                        }
                        Err(e) => break e,
                    }
                };
                assert_eq!(
                    error,
                    Error::LimitExceeded(Limit::DecodeRatio),
                    "{format:?}"
                );
                assert!(error.is_remote());
                // Stopped after the grace, well before the 10 MiB.
                assert!(
                    total >= Limits::default().decode_ratio_grace,
                    "{format:?} {total}"
                );
                assert!(total < 2 * 1024 * 1024, "{format:?} {total}");
            }
        }

        #[test]
        fn the_ratio_limit_can_be_raised() {
            let input = bomb(Format::Gzip);
            let limits = Limits::default().max_decode_ratio(10_000);
            let pieces: Vec<&[u8]> = input.chunks(1024).collect();
            let decoded = decode_pieces(ContentCoding::Gzip, &limits, &pieces, 64 * 1024).unwrap();
            assert_eq!(decoded.len(), 10 * 1024 * 1024);
            assert!(decoded.iter().all(|&b| b == 0));
        }

        #[test]
        fn small_compressible_bodies_decode_within_the_grace() {
            // 512 KiB of spaces: a ratio near 1000, but under the 1 MiB grace.
            let data = vec![b' '; 512 * 1024];
            for format in Format::ALL {
                let compressed = format.compress(&data);
                assert!(compressed.len() * 200 < data.len(), "{}", compressed.len());
                let decoded = decode(format.coding(), &compressed, 16 * 1024).unwrap();
                assert!(decoded == data, "{format:?}");
                // With a smaller grace the same body is refused.
                let limits = Limits::default().decode_ratio_grace(64 * 1024);
                let refused = decode_pieces(format.coding(), &limits, &[&compressed], 16 * 1024);
                assert_eq!(
                    refused,
                    Err(Error::LimitExceeded(Limit::DecodeRatio)),
                    "{format:?}"
                );
            }
        }

        /// Removes chunked framing with the crate's own decoder.
        fn dechunk(wire: &[u8]) -> Vec<u8> {
            let mut decoder = BodyDecoder::new(BodyMode::Chunked, Limits::default());
            let mut body = Vec::new();
            let mut at = 0;
            while !decoder.is_done() {
                let step = decoder.decode(&wire[at..]).unwrap();
                assert!(step.consumed > 0, "the chunked body ended early");
                body.extend_from_slice(&wire[at..][step.data]);
                at += step.consumed;
            }
            assert_eq!(at, wire.len(), "bytes after the last chunk");
            body
        }

        fn flate2_decode(compression: Compression, compressed: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            match compression {
                Compression::Gzip => flate2::read::GzDecoder::new(compressed)
                    .read_to_end(&mut out)
                    .unwrap(),
                Compression::Deflate => flate2::read::ZlibDecoder::new(compressed)
                    .read_to_end(&mut out)
                    .unwrap(),
            };
            out
        }

        #[test]
        fn compressed_request_bodies_round_trip() {
            let data = text(100 * 1024);
            for compression in [Compression::Gzip, Compression::Deflate] {
                for max_chunk in [1, 100, 4096, usize::MAX] {
                    let mut encoder =
                        BodyEncoder::new(Framing::Chunked { max_chunk }, Some(compression))
                            .unwrap();
                    assert!(encoder.is_chunked());
                    let mut wire = Vec::new();
                    for piece in data.chunks(7 * 1024 + 3) {
                        encoder.write(piece, &mut wire).unwrap();
                    }
                    encoder.write(b"", &mut wire).unwrap();
                    encoder.finish(&mut wire).unwrap();
                    assert!(encoder.is_finished());
                    assert!(wire.ends_with(b"\r\n0\r\n\r\n"));
                    let compressed = dechunk(&wire);
                    assert!(compressed.len() < data.len() / 2);
                    assert!(
                        flate2_decode(compression, &compressed) == data,
                        "{compression:?} chunks of {max_chunk}"
                    );
                    let coding = ContentCoding::from_header(compression.as_str().as_bytes());
                    let ours = decode(coding.unwrap(), &compressed, 4096).unwrap();
                    assert!(ours == data);
                }
            }
        }

        #[test]
        fn compressed_empty_and_tiny_bodies_round_trip() {
            for compression in [Compression::Gzip, Compression::Deflate] {
                for data in [&b""[..], b"x"] {
                    let mut encoder =
                        BodyEncoder::new(Framing::Chunked { max_chunk: 3 }, Some(compression))
                            .unwrap();
                    let mut wire = Vec::new();
                    encoder.write(data, &mut wire).unwrap();
                    encoder.finish(&mut wire).unwrap();
                    assert_eq!(flate2_decode(compression, &dechunk(&wire)), data);
                    // finish twice writes nothing more; writing after it fails.
                    let len = wire.len();
                    encoder.finish(&mut wire).unwrap();
                    assert_eq!(wire.len(), len);
                    assert!(matches!(
                        encoder.write(b"y", &mut wire),
                        Err(Error::OutOfOrder(_))
                    ));
                }
            }
        }

        #[test]
        fn request_compress_plans_a_compressing_encoder() {
            let data = text(20 * 1024);
            for compression in [Compression::Gzip, Compression::Deflate] {
                let request =
                    Request::new(http::Method::POST, "http://example.com/".parse().unwrap())
                        .content_length(data.len() as u64)
                        .chunk_size(1000)
                        .compress(compression);
                let mut head = Vec::new();
                let plan = request.encode(&mut head).unwrap();
                let head = String::from_utf8(head).unwrap();
                assert!(head.contains(&format!("Content-Encoding: {}\r\n", compression.as_str())));
                let mut encoder = BodyEncoder::new(plan.framing, plan.compression).unwrap();
                let mut wire = Vec::new();
                encoder.write(&data, &mut wire).unwrap();
                encoder.finish(&mut wire).unwrap();
                let compressed = dechunk(&wire);
                assert!(flate2_decode(compression, &compressed) == data);
                let sizes = chunk_sizes(&wire);
                assert!(sizes.iter().all(|&n| (1..=1000).contains(&n)), "{sizes:?}");
                assert_eq!(sizes.iter().sum::<usize>(), compressed.len());
            }
        }

        /// The sizes of the chunks of a chunked body without extensions.
        fn chunk_sizes(mut wire: &[u8]) -> Vec<usize> {
            let mut sizes = Vec::new();
            loop {
                let line = wire.windows(2).position(|w| w == b"\r\n").unwrap();
                let hex = std::str::from_utf8(&wire[..line]).unwrap();
                let size = usize::from_str_radix(hex, 16).unwrap();
                if size == 0 {
                    return sizes;
                }
                sizes.push(size);
                wire = &wire[line + 2 + size + 2..];
            }
        }
    }
}
