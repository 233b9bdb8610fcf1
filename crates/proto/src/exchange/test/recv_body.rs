//! RecvBody: de-framing the body and seeing where it ends.

use super::*;

#[test]
fn content_length_body() {
    let t = play_all(
        Scenario::get,
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    )
    .unwrap();
    assert_eq!(t.body, b"hello world");
    assert_eq!(t.close, None);
    assert!(t.leftover.is_empty());
}

#[test]
fn chunked_body_with_trailers() {
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5;name=\"a;b\"\r\nhello\r\n6\r\n world\r\n0\r\nDigest: sha-256=abc\r\nX-T: 1\r\n\r\n";
    let t = play_all(Scenario::get, response).unwrap();
    assert_eq!(t.body, b"hello world");
    assert_eq!(
        t.trailers,
        [
            ("Digest".to_owned(), b"sha-256=abc".to_vec()),
            ("X-T".to_owned(), b"1".to_vec())
        ]
    );
    assert_eq!(t.close, None);
}

#[test]
fn body_until_eof() {
    let t = play_all(Scenario::get, b"HTTP/1.0 200 OK\r\n\r\nall of it").unwrap();
    assert_eq!(t.body, b"all of it");
    assert_eq!(t.close, Some(CloseReason::ResponseClose));
    let t = play_all(Scenario::get, b"HTTP/1.1 200 OK\r\n\r\nall of it").unwrap();
    assert_eq!(t.close, Some(CloseReason::UntilEof));
}

#[test]
fn truncated_bodies_are_errors() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ] {
        assert_eq!(
            play_all(Scenario::get, response),
            Err(Error::IncompleteBody)
        );
    }
}

#[test]
fn bytes_after_the_body_poison_the_connection() {
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n";
    let t = play_all(Scenario::get, response).unwrap();
    assert_eq!(t.body, b"ok");
    assert_eq!(t.leftover, b"HTTP/1.1 200 OK\r\n\r\n");
    // Seen together with the body: the connection must not be reused.
    let whole = play(Scenario::get, &[response], true).unwrap();
    assert_eq!(whole.close, Some(CloseReason::UnexpectedData));
}

#[test]
fn bad_chunking_is_an_error_with_its_cause() {
    let cases: [(&[u8], Error); 3] = [
        (b"zz\r\n", Error::InvalidChunkSize),
        (b"5\r\nhelloXX", Error::InvalidChunkDelimiter),
        (b"3 ;\r\n", Error::InvalidChunkExtension),
    ];
    for (body, error) in cases {
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend_from_slice(body);
        assert_eq!(play_all(Scenario::get, &response), Err(error));
    }
}

#[test]
fn remaining_counts_down() {
    let mut exchange = Scenario::get().recv_body(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(exchange.body_mode(), crate::BodyMode::Length(4));
    assert_eq!(exchange.remaining(), Some(4));
    exchange.read(b"ab").unwrap();
    assert_eq!(exchange.remaining(), Some(2));
    assert!(matches!(
        exchange.proceed().unwrap_err(),
        Error::OutOfOrder(_)
    ));
}
