//! `HeadParser::parse` on arbitrary bytes, one-shot and incrementally.
//!
//! Input: the raw bytes a server sends (no control bytes). The last two
//! bytes pick two split points; the parser then sees the input as a growing
//! prefix in up to three calls, as a caller reading a socket would, and
//! must come to the same answer as one call on the whole input. Short
//! inputs are also fed one byte at a time. Each check runs with the default
//! [`Limits`] and with [`tight_limits`].

#![no_main]

use courier_fuzz::tight_limits;
use courier_proto::{Error, HeadParser, Limits, ResponseHead};
use libfuzzer_sys::fuzz_target;

/// What one parse call returns.
type Outcome = Result<Option<(ResponseHead, usize)>, Error>;

/// Inputs up to this long are also fed byte by byte (quadratic work).
const BYTEWISE_MAX: usize = 256;

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::default(), tight_limits()] {
        check(data, limits);
    }
});

fn check(data: &[u8], limits: Limits) {
    let one_shot = HeadParser::new(limits).parse(data);
    if let Ok(Some((head, consumed))) = &one_shot {
        check_head(data, &limits, head, *consumed);
    }

    let (a, b) = split_points(data);
    let pieces = incremental(data, limits, &[a, b, data.len()]);
    same(data, &one_shot, &pieces, "prefixes");

    if data.len() <= BYTEWISE_MAX {
        let ends: Vec<usize> = (0..=data.len()).collect();
        let bytewise = incremental(data, limits, &ends);
        same(data, &one_shot, &bytewise, "byte by byte");
    }
}

/// Feeds `data[..end]` for each end in turn to one parser, stopping at the
/// first call that returns a head or an error.
fn incremental(data: &[u8], limits: Limits, ends: &[usize]) -> Outcome {
    let mut parser = HeadParser::new(limits);
    let mut last = Ok(None);
    for &end in ends {
        last = parser.parse(&data[..end]);
        if !matches!(last, Ok(None)) {
            break;
        }
    }
    last
}

/// Two split points from the last two bytes, `a <= b <= data.len()`.
fn split_points(data: &[u8]) -> (usize, usize) {
    let len = data.len();
    let x = data.last().map_or(0, |&b| usize::from(b));
    let y = data
        .len()
        .checked_sub(2)
        .map_or(0, |i| usize::from(data[i]));
    let a = len * x / 256;
    let b = a + (len - a) * y / 256;
    (a, b)
}

/// Invariants of a head parsed from `data`.
fn check_head(data: &[u8], limits: &Limits, head: &ResponseHead, consumed: usize) {
    assert!(
        consumed > 0 && consumed <= data.len(),
        "consumed {consumed} of {}",
        data.len()
    );
    assert!(
        consumed <= limits.max_head_bytes,
        "head beyond max_head_bytes"
    );
    // raw() is the end of the consumed bytes, except that each obs-fold
    // (the line break and the whitespace after it) becomes spaces
    // (RFC 9112 §5.2; see `Fields::raw`).
    let raw = head.raw();
    assert!(
        raw.len() <= consumed,
        "raw() longer than the consumed bytes"
    );
    let received = &data[consumed - raw.len()..consumed];
    let as_received = raw
        .iter()
        .zip(received)
        .all(|(&r, &d)| r == d || (r == b' ' && matches!(d, b'\r' | b'\n' | b'\t')));
    assert!(as_received, "raw() is not the consumed bytes");
    assert!(
        head.fields().len() <= limits.max_headers,
        "more fields than max_headers"
    );
    assert!((100..=999).contains(&head.status().as_u16()));
    assert!(head.raw().starts_with(b"HTTP/1."));
    assert!(head.reason().len() < head.raw().len());
    // Documented never to fail for heads produced by the parser.
    if let Err(e) = head.to_header_map() {
        panic!("to_header_map failed on a parsed head: {e}");
    }
    let _ = head.reason_lossy();
    for (name, _) in head.fields() {
        assert!(!name.is_empty());
        assert!(
            head.header(name).is_some(),
            "field {name:?} listed but not found"
        );
    }
}

/// The incremental outcome must equal the one-shot one: the same head and
/// consumed count, nothing yet, or an error in both.
///
/// One difference is documented: once a call found the head incomplete,
/// later calls only look for the end of the head before parsing again, so
/// an error in a head that has no end yet is reported only when the end
/// arrives (or a size limit is hit). Until then a piecewise parse may still
/// say "incomplete" where a one-shot parse says "invalid" (seed
/// `deferred-head-error`).
fn same(data: &[u8], one_shot: &Outcome, pieces: &Outcome, how: &str) {
    let equal = match (one_shot, pieces) {
        (Ok(Some((h1, c1))), Ok(Some((h2, c2)))) => h1 == h2 && c1 == c2,
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => true,
        (Err(_), Ok(None)) => !has_head_end(data),
        _ => false,
    };
    assert!(
        equal,
        "one-shot and {how} parses differ on {:?}:\n  one-shot: {one_shot:?}\n  {how}: {pieces:?}",
        String::from_utf8_lossy(data)
    );
}

/// True when `data`, after the empty lines a parser skips before the status
/// line, holds an empty line ending a head (`\n\n` or `\n\r\n`).
fn has_head_end(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    let data = &data[start..];
    data.windows(2).any(|w| w == b"\n\n") || data.windows(3).any(|w| w == b"\n\r\n")
}
