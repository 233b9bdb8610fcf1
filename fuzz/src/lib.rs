//! Helpers shared by courier's fuzz targets (the binaries in `fuzz_targets/`).
//!
//! Targets that feed their input in pieces read one control byte for the
//! piece sizes ([`Feed`]), so a seed decides its own splits and the fuzzer
//! can mutate them like any other byte. See `README.md` for each target's
//! input layout.

use courier_proto::Limits;

/// Input as a peer would deliver it: in pieces whose sizes come from one
/// control byte.
///
/// Piece sizes alternate between a small one, `1 + (control & 0x0f)`
/// (1 to 16 bytes), and a large one, `1 + (control >> 4) * 17` (1 to 256
/// bytes), so `0x00` delivers one byte at a time.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    data: &'a [u8],
    delivered: usize,
    small: usize,
    large: usize,
    next_small: bool,
}

impl<'a> Feed<'a> {
    /// `data` in pieces sized by `control`; nothing is delivered yet.
    pub fn new(data: &'a [u8], control: u8) -> Feed<'a> {
        Feed {
            data,
            delivered: 0,
            small: 1 + usize::from(control & 0x0f),
            large: 1 + usize::from(control >> 4) * 17,
            next_small: true,
        }
    }

    /// `data` in one single piece: the one-shot reference run.
    pub fn whole(data: &'a [u8]) -> Feed<'a> {
        Feed {
            data,
            delivered: 0,
            small: data.len().max(1),
            large: data.len().max(1),
            next_small: true,
        }
    }

    /// Every byte delivered so far.
    pub fn received(&self) -> &'a [u8] {
        &self.data[..self.delivered]
    }

    /// Delivers the next piece; false when all input was delivered already
    /// (the peer closed the connection).
    pub fn more(&mut self) -> bool {
        if self.delivered == self.data.len() {
            return false;
        }
        let piece = if self.next_small {
            self.small
        } else {
            self.large
        };
        self.next_small = !self.next_small;
        self.delivered = (self.delivered + piece).min(self.data.len());
        true
    }

    /// Length of the whole input.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True for an empty input.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// An upper bound on the passes of a driving loop in which every pass
    /// either uses at least one byte or asks for the next piece: each byte
    /// is used once and each piece is delivered once.
    pub fn max_passes(&self) -> usize {
        2 * self.data.len() + 2
    }
}

/// Limits small enough for a fuzzer's short inputs to hit every one of
/// them: head size and line length, header count, chunk extensions,
/// trailers, interim responses and the decompression ratio.
pub fn tight_limits() -> Limits {
    Limits::default()
        .max_head_bytes(256)
        .max_headers(4)
        .max_header_line(48)
        .max_chunk_ext_bytes(8)
        .max_trailer_bytes(32)
        .max_informational(2)
        .max_decode_ratio(4)
        .decode_ratio_grace(512)
}

/// WebSocket limits small enough for a fuzzer's short inputs to hit both:
/// frames of 64 bytes and messages of 256 (after decompression).
pub fn ws_tight_limits() -> courier_ws::Limits {
    courier_ws::Limits::default()
        .max_frame_size(64)
        .max_message_size(256)
}
