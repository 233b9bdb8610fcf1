//! Payload masking: the word-at-a-time `apply_mask` against its
//! byte-at-a-time twin `mask_scalar`.
//!
//! Input: bytes 0-3 are the key, byte 4 the offset into the masked stream,
//! byte 5 a split point (modulo the payload length + 1); the rest is the
//! payload. Fast and scalar agree at the offset; masking in two pieces
//! (the second at offset + split) is masking the whole; `extend_masked`
//! appends what `mask_scalar` gives at offset 0; masking twice restores the
//! payload.

#![no_main]

use courier_ws::mask::{apply_mask, extend_masked, mask_scalar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[k0, k1, k2, k3, offset, split], payload)) = data.split_first_chunk::<6>() else {
        return;
    };
    let key = [k0, k1, k2, k3];
    let offset = usize::from(offset);

    let mut fast = payload.to_vec();
    apply_mask(&mut fast, key, offset);
    let mut scalar = payload.to_vec();
    mask_scalar(&mut scalar, key, offset);
    assert_eq!(fast, scalar, "fast and scalar differ at offset {offset}");

    let split = usize::from(split) % (payload.len() + 1);
    let mut pieces = payload.to_vec();
    let (a, b) = pieces.split_at_mut(split);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + split);
    assert_eq!(pieces, scalar, "masking in pieces, split at {split}");

    let mut appended = vec![0xa5];
    extend_masked(&mut appended, payload, key);
    let mut from_zero = payload.to_vec();
    mask_scalar(&mut from_zero, key, 0);
    assert_eq!(appended[0], 0xa5);
    assert_eq!(appended[1..], from_zero[..], "extend_masked");

    apply_mask(&mut fast, key, offset);
    assert_eq!(fast, payload, "masking twice restores the payload");
});
