//! SendBody: framing and compression of the request body.

use super::*;

#[test]
fn content_length_body_is_exact() {
    let mut exchange = Scenario::post(b"hello").send_body();
    assert_eq!(exchange.remaining(), Some(5));
    assert!(!exchange.is_chunked());
    let mut wire = Vec::new();
    exchange.write(b"hel", &mut wire).unwrap();
    assert_eq!(exchange.write(b"lo!", &mut wire), Err(Error::BodyTooLong));
    exchange.write(b"lo", &mut wire).unwrap();
    exchange.finish(&mut wire).unwrap();
    assert_eq!(wire, b"hello");

    let mut short = Scenario::post(b"hello").send_body();
    short.write(b"hi", &mut Vec::new()).unwrap();
    assert_eq!(
        short.finish(&mut Vec::new()).unwrap_err(),
        Error::BodyTooShort
    );
}

#[test]
fn chunked_body_with_chunk_size() {
    let mut exchange = Scenario::new(Method::PUT, "http://a/")
        .with(|r| r.chunk_size(3))
        .send_body();
    assert!(exchange.is_chunked());
    let mut wire = Vec::new();
    exchange.write(b"abcdefg", &mut wire).unwrap();
    exchange.write(b"", &mut wire).unwrap();
    exchange.finish(&mut wire).unwrap();
    assert_eq!(wire, b"3\r\nabc\r\n3\r\ndef\r\n1\r\ng\r\n0\r\n\r\n");
}

#[cfg(feature = "compression")]
#[test]
fn compressed_body_round_trips() {
    use std::io::Read;
    let text = b"the quick brown fox jumps over the lazy dog ".repeat(100);
    for coding in [crate::Compression::Gzip, crate::Compression::Deflate] {
        let (mut exchange, _) = Scenario::new(Method::POST, "http://a/")
            .with(|r| r.content_length(text.len() as u64).compress(coding))
            .send_head();
        let head = String::from_utf8(exchange.head().to_vec()).unwrap();
        assert!(head.contains(&format!("Content-Encoding: {}\r\n", coding.as_str())));
        assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
        assert!(!head.contains("Content-Length"), "{head}");
        exchange.write(&mut Vec::new());
        let SendHeadResult::SendBody(mut body) = exchange.proceed().unwrap() else {
            panic!()
        };
        let mut wire = Vec::new();
        for part in text.chunks(333) {
            body.write(part, &mut wire).unwrap();
        }
        body.finish(&mut wire).unwrap();
        // De-chunk with the codec's own decoder, then decompress with flate2.
        let mut decoder = crate::BodyDecoder::new(crate::BodyMode::Chunked, Limits::default());
        let mut compressed = Vec::new();
        let mut at = 0;
        while !decoder.is_done() {
            let step = decoder.decode(&wire[at..]).unwrap();
            compressed.extend_from_slice(&wire[at..][step.data]);
            at += step.consumed;
        }
        assert_eq!(at, wire.len());
        assert!(compressed.len() < text.len() / 10, "it actually compressed");
        let mut plain = Vec::new();
        match coding {
            crate::Compression::Gzip => flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut plain)
                .unwrap(),
            _ => flate2::read::ZlibDecoder::new(&compressed[..])
                .read_to_end(&mut plain)
                .unwrap(),
        };
        assert_eq!(plain, text);
    }
}

#[test]
fn abandoned_body_closes_the_connection() {
    let mut exchange = Scenario::post(b"hello").send_body();
    exchange.write(b"he", &mut Vec::new()).unwrap();
    let mut exchange = exchange.abandon();
    exchange
        .try_response(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let RecvHeadResult::Done(done) = exchange.proceed().unwrap() else {
        panic!()
    };
    assert_eq!(done.close_reason(), Some(CloseReason::BodyNotSent));
}
