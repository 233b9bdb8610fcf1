//! Payload masking (RFC 6455 §5.3), fast and in safe Rust.
//!
//! Byte `i` of a masked payload is XORed with `key[i % 4]`. Masking and
//! unmasking are the same operation. Every frame a client sends is masked
//! with a fresh key, so this is on the path of every byte sent.
//!
//! [`apply_mask`] works on 16-byte words (`u128`) built with
//! `chunks_exact_mut`, which the compiler turns into vector instructions;
//! [`mask_scalar`] is its byte-at-a-time twin, the reference the tests and
//! the `ws_unmask` fuzz target compare it with. `benches/mask.rs` measures
//! both. [`extend_masked`] copies and masks, for building frames.
//!
//! The style guide allows `unsafe` here if measurement shows it pays; the
//! safe word loop already runs at memory speed on 64 KiB (see the bench),
//! so this module has none.

/// Bytes processed per step of the fast loops: one `u128`.
const WORD: usize = 16;

/// Bytes per block of [`extend_masked`]'s one-pass loop: four words. Of
/// 2, 4 and 16 words, 4 measured fastest.
const BLOCK: usize = 4 * WORD;

/// Payloads from this size on are masked by [`extend_masked`] in one pass;
/// smaller ones are copied, then masked in place. While the payload fits
/// the CPU caches the second pass is nearly free and the plain copy is
/// faster than building blocks (38 against 32 GiB/s at 256 KiB on the
/// development machine); beyond them reading and writing once wins (34
/// against 28 GiB/s at 1 MiB, 24 against 17 at 16 MiB).
const ONE_PASS_MIN: usize = 512 * 1024;

/// The key as seen by byte 0 of a buffer that starts `offset` bytes into
/// the masked stream.
#[inline]
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Byte i of the result is key[(i + offset) % 4]: in little-endian
    // order, a rotation right by that many bytes. (`[u8; 4]::rotate_left`
    // does the same through the generic slice rotation, which costs more
    // than masking 32 bytes.)
    let bytes = u32::try_from(offset % 4).unwrap_or_default();
    u32::from_le_bytes(key)
        .rotate_right(8 * bytes)
        .to_le_bytes()
}

/// Multiplying a `u32` by this repeats it over a `u128`: the key repeated
/// over 16 bytes, in either byte order, since the pattern has period 4.
const REPEAT: u128 = 1 | (1 << 32) | (1 << 64) | (1 << 96);

/// XORs `buf` with `key` repeated, `buf[0]` taking `key[0]`: 16-byte words,
/// then 4-byte words, then bytes.
#[inline]
fn xor_words(buf: &mut [u8], key: [u8; 4]) {
    let key32 = u32::from_ne_bytes(key);
    let key128 = u128::from(key32) * REPEAT;
    let mut words = buf.chunks_exact_mut(WORD);
    for word in &mut words {
        let mut bytes = [0u8; WORD];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u128::from_ne_bytes(bytes) ^ key128).to_ne_bytes());
    }
    // Whole words are a multiple of 4 bytes: the rest starts at key[0].
    let mut quads = words.into_remainder().chunks_exact_mut(4);
    for quad in &mut quads {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(quad);
        quad.copy_from_slice(&(u32::from_ne_bytes(bytes) ^ key32).to_ne_bytes());
    }
    for (b, k) in quads.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Masks (or unmasks) `buf` in place with `key`, where `buf[0]` is byte
/// `offset` of the masked payload (so a payload can be masked in pieces:
/// pass the number of bytes already masked).
///
/// ```
/// use courier_ws::mask::apply_mask;
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"Hello, world";
/// apply_mask(&mut whole, key, 0);
/// let mut pieces = *b"Hello, world";
/// let (a, b) = pieces.split_at_mut(5);
/// apply_mask(a, key, 0);
/// apply_mask(b, key, 5);
/// assert_eq!(whole, pieces);
/// apply_mask(&mut whole, key, 0);
/// assert_eq!(&whole, b"Hello, world");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    xor_words(buf, rotated(key, offset));
}

/// [`apply_mask`] one byte at a time: the reference implementation.
///
/// ```
/// use courier_ws::mask::{apply_mask, mask_scalar};
/// let (mut a, mut b) = ([7u8; 37], [7u8; 37]);
/// apply_mask(&mut a, [9, 8, 7, 6], 3);
/// mask_scalar(&mut b, [9, 8, 7, 6], 3);
/// assert_eq!(a, b);
/// ```
pub fn mask_scalar(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

/// Appends `data` masked with `key` (from byte 0 of the payload) to `out`.
///
/// Large payloads are read and written once (masked in blocks on their way
/// into `out`); small ones, which stay in the CPU caches, are copied and
/// then masked in place, which measured faster (see `benches/mask.rs`).
///
/// ```
/// use courier_ws::mask::{apply_mask, extend_masked};
/// let mut frame = vec![0x82, 0x83, 1, 2, 3, 4];
/// extend_masked(&mut frame, b"abc", [1, 2, 3, 4]);
/// let mut payload = frame.split_off(6);
/// apply_mask(&mut payload, [1, 2, 3, 4], 0);
/// assert_eq!(payload, b"abc");
/// ```
pub fn extend_masked(out: &mut Vec<u8>, data: &[u8], key: [u8; 4]) {
    if data.len() < ONE_PASS_MIN {
        let start = out.len();
        out.extend_from_slice(data);
        return xor_words(&mut out[start..], key);
    }
    out.reserve(data.len());
    let key128 = u128::from(u32::from_ne_bytes(key)) * REPEAT;
    let mut blocks = data.chunks_exact(BLOCK);
    for block in &mut blocks {
        let mut masked = [0u8; BLOCK];
        for (dst, src) in masked.chunks_exact_mut(WORD).zip(block.chunks_exact(WORD)) {
            let mut bytes = [0u8; WORD];
            bytes.copy_from_slice(src);
            dst.copy_from_slice(&(u128::from_ne_bytes(bytes) ^ key128).to_ne_bytes());
        }
        out.extend_from_slice(&masked);
    }
    // Whole blocks are a multiple of 4 bytes: the tail starts at key[0].
    let start = out.len();
    out.extend_from_slice(blocks.remainder());
    xor_words(&mut out[start..], key);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the randomized
    /// checks are the same on every run.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }

        /// A number below `n`.
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
        }
    }

    /// RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
    #[test]
    fn rfc_example() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut payload = *b"Hello";
        apply_mask(&mut payload, key, 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        let mut out = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d];
        extend_masked(&mut out, b"Hello", key);
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn fast_and_scalar_agree_for_every_length_and_offset() {
        let key = [0xa1, 0x5b, 0x00, 0xff];
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3).to_le_bytes()[0]).collect();
        for len in 0..300 {
            for offset in 0..4 {
                let mut fast = data[..len].to_vec();
                let mut slow = data[..len].to_vec();
                apply_mask(&mut fast, key, offset);
                mask_scalar(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len}, offset {offset}");
                // Offsets count modulo 4.
                let mut far = data[..len].to_vec();
                apply_mask(&mut far, key, offset + 4 * 1_000_003);
                assert_eq!(far, slow, "len {len}, offset {offset} + 4n");
            }
            let mut copied = vec![0xee];
            extend_masked(&mut copied, &data[..len], key);
            let mut slow = data[..len].to_vec();
            mask_scalar(&mut slow, key, 0);
            assert_eq!(copied[0], 0xee, "bytes before are kept");
            assert_eq!(copied[1..], slow[..], "extend_masked, len {len}");
        }
    }

    /// Payloads large enough for the one-pass path of `extend_masked`,
    /// around its threshold and with every tail length.
    #[test]
    fn extend_masked_one_pass() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..ONE_PASS_MIN + 2 * BLOCK)
            .map(|i| (i % 253).to_le_bytes()[0])
            .collect();
        for len in (ONE_PASS_MIN - 3..=ONE_PASS_MIN + 2 * BLOCK).step_by(5) {
            let mut out = b"head".to_vec();
            extend_masked(&mut out, &data[..len], key);
            let mut slow = data[..len].to_vec();
            mask_scalar(&mut slow, key, 0);
            assert_eq!(&out[..4], b"head");
            assert!(out[4..] == slow[..], "len {len}");
        }
    }

    #[test]
    fn fast_and_scalar_agree_on_random_inputs() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let len = rng.below(1100);
            let key = [rng.byte(), rng.byte(), rng.byte(), rng.byte()];
            let offset = rng.below(64);
            let data: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast, key, offset);
            mask_scalar(&mut slow, key, offset);
            assert_eq!(fast, slow, "len {len}, key {key:?}, offset {offset}");
            // Masking in two pieces is masking the whole.
            let split = rng.below(len + 1);
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, offset);
            apply_mask(b, key, offset + split);
            assert_eq!(pieces, slow, "split at {split}");
            // And unmasking gives the data back.
            apply_mask(&mut fast, key, offset);
            assert_eq!(fast, data);
        }
    }
}
