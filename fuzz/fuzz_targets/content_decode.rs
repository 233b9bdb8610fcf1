//! `ContentDecoder` (gzip, deflate) with small output buffers, checked
//! against flate2.
//!
//! Input: byte 0 holds the coding in bit 0 (gzip, deflate) and the output
//! buffer size in bits 1-3 (see `OUT_SIZES`); byte 1 sizes the input
//! pieces (see `Feed`); the rest is the compressed body.
//!
//! Each run feeds the body in pieces, calls `decode` again while it fills
//! the whole output buffer, then `finish`. It checks that no call reports
//! more than it was given, that a call leaving output room used all its
//! input, and that the output stays within what the decode-ratio limit
//! allows (with a small grace, `GRACE`, so that short inputs reach it).
//!
//! When flate2 itself decodes the whole body, as one gzip member or a run
//! of them, one zlib stream, or one raw deflate stream (raw only when the
//! first two bytes are not a zlib header: that is how courier tells them
//! apart), courier must produce the same bytes under a `Limits` whose ratio
//! bound cannot trigger, and under the bounded limits whenever that run
//! succeeds.

#![no_main]

use std::io::Read;

use courier_fuzz::Feed;
use courier_proto::{ContentCoding, ContentDecoder, Error, Limits};
use flate2::bufread::{GzDecoder, MultiGzDecoder};
use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;

/// Output buffer sizes, picked by bits 1-3 of byte 0.
const OUT_SIZES: [usize; 8] = [1, 2, 7, 64, 255, 1024, 4096, 65536];

/// Decode-ratio grace of the bounded run: small, so that short inputs
/// reach the ratio check.
const GRACE: u64 = 16 * 1024;

/// Largest output the oracle produces; bigger bodies are not compared.
const ORACLE_MAX: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, pieces], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let coding = if flags & 1 == 0 {
        ContentCoding::Gzip
    } else {
        ContentCoding::Deflate
    };
    let out_len = OUT_SIZES[usize::from((flags >> 1) & 7)];

    let limits = Limits::default().decode_ratio_grace(GRACE);
    let allowed = GRACE.max(limits.max_decode_ratio.saturating_mul(body.len() as u64));
    let bounded = decode(coding, &limits, Feed::new(body, pieces), out_len, allowed);
    if let Err(e) = &bounded {
        assert!(e.is_remote(), "local error {e:?} from peer input");
    }

    let Some(expected) = oracle(coding, body) else {
        return;
    };
    let unlimited = Limits::default().max_decode_ratio(u64::MAX);
    let bound = expected.len() as u64;
    match decode(coding, &unlimited, Feed::new(body, pieces), out_len, bound) {
        Ok(decoded) => assert!(decoded == expected, "courier and flate2 decode differently"),
        Err(e) => panic!("flate2 decodes this {coding:?} body, courier fails: {e:?}"),
    }
    if let Ok(decoded) = bounded {
        assert!(
            decoded == expected,
            "courier (default limits) and flate2 differ"
        );
    }
});

/// Decodes the body `feed` delivers with a `out_len`-byte output buffer.
///
/// Panics when the decoder breaks its contract, including when it produces
/// more than `max_output` bytes (which its limits or the oracle rule out).
fn decode(
    coding: ContentCoding,
    limits: &Limits,
    mut feed: Feed<'_>,
    out_len: usize,
    max_output: u64,
) -> Result<Vec<u8>, Error> {
    let mut decoder = ContentDecoder::new(coding, limits);
    let mut out = vec![0; out_len];
    let mut decoded = Vec::new();
    let mut at = 0;
    // Every pass fills the output buffer (bounded by `max_output`), takes
    // the next piece, or ends.
    let passes = usize::try_from(max_output)
        .unwrap_or(usize::MAX)
        .saturating_add(feed.max_passes())
        .saturating_add(out_len)
        / out_len
        + feed.max_passes();
    for _ in 0..passes {
        let input = &feed.received()[at..];
        let (used, produced) = decoder.decode(input, &mut out)?;
        assert!(used <= input.len(), "used {used} of {}", input.len());
        assert!(
            produced <= out.len(),
            "produced {produced} into {}",
            out.len()
        );
        decoded.extend_from_slice(&out[..produced]);
        at += used;
        assert!(
            decoded.len() as u64 <= max_output,
            "{} bytes decoded, at most {max_output} allowed",
            decoded.len()
        );
        if produced == out.len() {
            continue; // The decoder may hold more output back.
        }
        assert_eq!(used, input.len(), "output room left, input left unused");
        if !feed.more() {
            decoder.finish()?;
            assert!(decoder.is_done() || decoded.is_empty());
            return Ok(decoded);
        }
    }
    panic!("decoding did not end within {passes} passes");
}

/// What flate2 makes of `body` when it is exactly one complete stream.
fn oracle(coding: ContentCoding, body: &[u8]) -> Option<Vec<u8>> {
    match coding {
        ContentCoding::Gzip => gunzip(GzDecoder::new(body), GzDecoder::into_inner)
            .or_else(|| gunzip(MultiGzDecoder::new(body), MultiGzDecoder::into_inner)),
        _ => match body {
            [cmf, flg, ..] if is_zlib_header(*cmf, *flg) => inflate(body, true),
            _ => inflate(body, false),
        },
    }
}

/// What one of flate2's gzip decoders (one member, or all members) makes
/// of the whole body; `into_rest` gives back the input it left unread.
fn gunzip<'a, D: Read>(mut decoder: D, into_rest: impl FnOnce(D) -> &'a [u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(ORACLE_MAX).ok()? + 1;
    (&mut decoder).take(limit).read_to_end(&mut out).ok()?;
    (out.len() <= ORACLE_MAX && into_rest(decoder).is_empty()).then_some(out)
}

/// One zlib or raw deflate stream through flate2's `Decompress`, which
/// must reach its end exactly at the end of `body`.
fn inflate(body: &[u8], zlib: bool) -> Option<Vec<u8>> {
    let mut inflater = Decompress::new(zlib);
    let mut out = Vec::new();
    loop {
        let used = usize::try_from(inflater.total_in()).ok()?;
        let before = (inflater.total_in(), inflater.total_out());
        if out.len() > ORACLE_MAX {
            return None;
        }
        out.reserve(32 * 1024);
        let status = inflater
            .decompress_vec(&body[used..], &mut out, FlushDecompress::None)
            .ok()?;
        if status == Status::StreamEnd {
            let used = usize::try_from(inflater.total_in()).ok()?;
            return (used == body.len() && out.len() <= ORACLE_MAX).then_some(out);
        }
        if (inflater.total_in(), inflater.total_out()) == before {
            return None; // Truncated: no progress without more input.
        }
    }
}

/// RFC 1950 §2.2: method 8, window at most 32 KiB, check bits. This is how
/// courier tells zlib from raw deflate; a raw stream that happens to start
/// with such bytes is read as zlib by design, so only the others are
/// compared as raw.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}
