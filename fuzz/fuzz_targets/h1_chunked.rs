//! `BodyDecoder` in chunked mode, fed in pieces and in one piece.
//!
//! Input: byte 0 sizes the pieces (see `Feed`), bit 0 of byte 1 picks
//! `tight_limits` over the defaults, and the rest is a chunked body as it
//! follows a response head (possibly followed by the next response).
//!
//! Every `BodyStep` must keep its data inside `0..consumed` and consume no
//! more than it was given; the piecewise run must yield the same body
//! bytes, the same end (done at the same offset, the same error, or waiting
//! for more input) and the same trailers as the one-shot run. A call that
//! consumes nothing and is not done needs more input.

#![no_main]

use courier_fuzz::{Feed, tight_limits};
use courier_proto::{BodyDecoder, BodyMode, Error, Limits};
use libfuzzer_sys::fuzz_target;

/// How a decoding run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The body ended after this many input bytes.
    Done(usize),
    /// The decoder refused the input.
    Failed(Error),
    /// All input was used and the body is still incomplete.
    NeedsMore,
}

/// Everything a run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    body: Vec<u8>,
    end: End,
    trailers: Option<Vec<u8>>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&[pieces, flags], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = if flags & 1 == 1 {
        tight_limits()
    } else {
        Limits::default()
    };
    let one_shot = decode(Feed::whole(body), limits);
    let piecewise = decode(Feed::new(body, pieces), limits);
    assert_eq!(
        one_shot, piecewise,
        "one-shot and piecewise decoding differ"
    );
});

/// Decodes the chunked body delivered by `feed`, checking every step.
fn decode(mut feed: Feed<'_>, limits: Limits) -> Outcome {
    let mut decoder = BodyDecoder::new(BodyMode::Chunked, limits);
    let mut body = Vec::new();
    let mut at = 0;
    // Every pass uses input, takes the next piece, or returns.
    for _ in 0..feed.max_passes() {
        let input = &feed.received()[at..];
        let step = match decoder.decode(input) {
            Ok(step) => step,
            Err(e) => {
                assert!(e.is_remote(), "local error {e:?} from peer input");
                return Outcome {
                    body,
                    end: End::Failed(e),
                    trailers: None,
                };
            }
        };
        assert!(
            step.consumed <= input.len(),
            "{step:?} beyond {} bytes",
            input.len()
        );
        assert!(
            step.data.start <= step.data.end && step.data.end <= step.consumed,
            "{step:?}: data outside 0..consumed"
        );
        body.extend_from_slice(&input[step.data.clone()]);
        at += step.consumed;
        if step.done {
            assert!(decoder.is_done());
            assert_eq!(decoder.remaining(), Some(0));
            assert_eq!(decoder.eof(), Ok(()), "eof after a complete body");
            let again = decoder.decode(&feed.received()[at..]);
            assert_eq!(again.map(|s| (s.consumed, s.done)), Ok((0, true)));
            let trailers = decoder.take_trailers().map(|t| t.raw().to_vec());
            return Outcome {
                body,
                end: End::Done(at),
                trailers,
            };
        }
        assert!(!decoder.is_done());
        if step.consumed == 0 && !feed.more() {
            assert_eq!(decoder.eof(), Err(Error::IncompleteBody));
            return Outcome {
                body,
                end: End::NeedsMore,
                trailers: None,
            };
        }
    }
    panic!(
        "chunked decoding made no progress within {} passes",
        feed.max_passes()
    );
}
