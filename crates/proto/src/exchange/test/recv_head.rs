//! RecvHead: interim responses, the final head and what it decides.

use super::*;

#[test]
fn interim_responses_are_reported_and_skipped() {
    let response =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let t = play_all(Scenario::get, response).unwrap();
    assert_eq!(
        t.informational,
        [StatusCode::CONTINUE, StatusCode::EARLY_HINTS]
    );
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.body, b"ok");
    assert_eq!(t.close, None);
}

#[test]
fn too_many_interim_responses() {
    let limits = Limits::default().max_informational(2);
    let response = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(3);
    let err = play(|| Scenario::get().limits(limits), &[&response], true).unwrap_err();
    assert_eq!(err, Error::LimitExceeded(crate::Limit::Informational));
}

#[test]
fn switching_protocols_hands_over_the_rest() {
    let upgrade = || {
        Scenario::get().with(|r| {
            r.header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
        })
    };
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";
    let t = play_all(upgrade, response).unwrap();
    assert_eq!(t.status, StatusCode::SWITCHING_PROTOCOLS);
    assert!(t.body.is_empty());
    assert_eq!(t.close, Some(CloseReason::Upgrade));
    assert_eq!(
        t.leftover, b"\x81\x02hi",
        "frames after the 101 are untouched"
    );
}

#[test]
fn unrequested_upgrade_is_an_error() {
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n";
    assert_eq!(
        play_all(Scenario::get, response),
        Err(Error::UnexpectedUpgrade)
    );
}

#[test]
fn connect_tunnel_and_refusal() {
    let connect = || Scenario {
        request: Request::connect("example.com", 443),
        body: Vec::new(),
        limits: Limits::default(),
    };
    let t = play_all(
        connect,
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03",
    )
    .unwrap();
    assert_eq!(t.close, Some(CloseReason::Tunnel));
    assert_eq!(t.leftover, b"\x16\x03");

    let refused = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\nno!";
    let t = play_all(connect, refused).unwrap();
    assert_eq!(t.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(t.body, b"no!");
    assert_eq!(
        t.close, None,
        "a refused CONNECT leaves a reusable connection"
    );
}

#[test]
fn bodiless_responses() {
    let with_length = b"HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n";
    let t = play_all(Scenario::head, with_length).unwrap();
    assert!(t.body.is_empty());
    assert_eq!(
        t.close, None,
        "HEAD: the length describes the GET body, none follows"
    );
    for status in ["204 No Content", "304 Not Modified"] {
        let response = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
        let t = play_all(Scenario::get, response.as_bytes()).unwrap();
        assert!(t.body.is_empty(), "{status}");
        assert_eq!(t.close, None, "{status}");
    }
}

#[test]
fn undelimited_body_refused_when_asked() {
    let strict = || Scenario::get().with(|r| r.read_until_eof(false));
    let response = b"HTTP/1.1 200 OK\r\n\r\nbody";
    assert_eq!(play_all(strict, response), Err(Error::UndelimitedBody));
    let t = play_all(Scenario::get, response).unwrap();
    assert_eq!(t.body, b"body");
    assert_eq!(t.close, Some(CloseReason::UntilEof));
}

#[test]
fn smuggling_shapes_fail_before_the_head_is_delivered() {
    for head in [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    ] {
        let (mut exchange, _) = Scenario::get().recv_head();
        assert!(exchange.try_response(head.as_bytes()).is_err(), "{head}");
        assert!(!exchange.has_response());
    }
}

#[test]
fn eof_before_and_during_the_head() {
    assert_eq!(
        play(Scenario::get, &[], true),
        Err(Error::ClosedBeforeResponse)
    );
    assert_eq!(
        play(Scenario::get, &[b"HTTP/1.1 200 OK\r\nA: b"], true),
        Err(Error::IncompleteHead)
    );
    assert_eq!(
        play(Scenario::get, &[b"HTTP/1.1 100 Continue\r\n\r\n"], true),
        Err(Error::IncompleteHead),
        "after an interim response the exchange had begun"
    );
}

#[test]
fn proceed_needs_a_final_head() {
    let (mut exchange, _) = Scenario::get().recv_head();
    exchange
        .try_response(b"HTTP/1.1 100 Continue\r\n\r\n")
        .unwrap();
    assert!(matches!(
        exchange.proceed().unwrap_err(),
        Error::OutOfOrder(_)
    ));
}
