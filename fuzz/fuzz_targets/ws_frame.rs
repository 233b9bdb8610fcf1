//! `FrameHeader::parse` on arbitrary bytes (no control bytes).
//!
//! A header it accepts used at most the input, between 2 and 14 bytes,
//! re-encodes to exactly the bytes it came from (so only shortest length
//! forms are accepted), and keeps the rules every frame obeys: control
//! frames are final and at most 125 bytes, lengths stay below 2^63. Every
//! shorter prefix of the input either needs more bytes or reaches the same
//! verdict, so a reader fed in pieces sees what a reader fed at once sees.

#![no_main]

use courier_ws::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use courier_ws::{CloseCode, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = FrameHeader::parse(data);
    match &whole {
        Ok(Some((header, len))) => {
            let len = *len;
            assert!((2..=MAX_HEADER_LEN).contains(&len) && len <= data.len());
            assert_eq!(header.encoded_len(), len);
            let mut encoded = Vec::new();
            header.encode(&mut encoded);
            assert_eq!(encoded, data[..len], "re-encoding {header:?}");
            if header.opcode.is_control() {
                assert!(header.fin);
                assert!(header.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
            assert_eq!(header.payload_len >> 63, 0);
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN, "{} bytes", data.len()),
        Err(e) => {
            assert!(matches!(e, Error::Protocol(_)), "{e:?}");
            assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL));
        }
    }
    for end in 0..data.len().min(MAX_HEADER_LEN) {
        match FrameHeader::parse(&data[..end]) {
            Ok(None) => {}
            prefix => assert_eq!(prefix, whole, "prefix of {end} bytes"),
        }
    }
});
