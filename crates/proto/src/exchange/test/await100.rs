//! Await100: the body waits for `100 Continue`, a final status, or the
//! caller giving up.

use super::*;

fn expecting() -> Scenario {
    Scenario::post(b"payload").with(|r| r.expect_continue(true))
}

#[test]
fn head_says_expect() {
    let (exchange, _) = expecting().send_head();
    let head = String::from_utf8(exchange.head().to_vec()).unwrap();
    assert!(head.contains("\r\nExpect: 100-continue\r\n"), "{head}");
}

#[test]
fn continue_then_body_then_response() {
    let mut exchange = expecting().await100();
    let input = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n";
    let (used, event) = exchange.try_response(input).unwrap();
    assert!(matches!(event, Some(ResponseEvent::Informational(h)) if h.status() == 103));
    assert!(!exchange.got_continue());
    let (used2, event) = exchange.try_response(&input[used..]).unwrap();
    assert!(matches!(event, Some(ResponseEvent::Informational(h)) if h.status() == 100));
    assert_eq!(used + used2, input.len());
    assert!(exchange.got_continue());
    // After 100, nothing more is read here: the rest is the final response.
    assert_eq!(
        exchange.try_response(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().0,
        0
    );

    let Await100Result::SendBody(mut body) = exchange.proceed().unwrap() else {
        panic!("100 Continue leads to the body")
    };
    let mut wire = Vec::new();
    body.write(b"payload", &mut wire).unwrap();
    let mut exchange = body.finish(&mut wire).unwrap();
    assert_eq!(wire, b"payload");
    let (_, event) = exchange
        .try_response(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert!(matches!(event, Some(ResponseEvent::Final(h)) if h.status() == 201));
    let RecvHeadResult::Done(done) = exchange.proceed().unwrap() else {
        panic!()
    };
    assert!(!done.must_close());
}

#[test]
fn timeout_sends_the_body_anyway() {
    // The caller's timer fired: proceed without any response.
    let exchange = expecting().await100();
    assert!(matches!(
        exchange.proceed().unwrap(),
        Await100Result::SendBody(_)
    ));
}

#[test]
fn final_status_instead_of_continue_closes_the_connection() {
    let mut exchange = expecting().await100();
    let input = b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope";
    let (used, event) = exchange.try_response(input).unwrap();
    assert!(matches!(event, Some(ResponseEvent::Final(h)) if h.status() == 417));
    assert!(exchange.got_final());
    let Await100Result::RecvBody(mut body) = exchange.proceed().unwrap() else {
        panic!("the 417 has a body")
    };
    let step = body.read(&input[used..]).unwrap();
    assert_eq!(&input[used..][step.data], b"nope");
    let done = body.proceed().unwrap();
    assert_eq!(done.close_reason(), Some(CloseReason::BodyNotSent));

    let mut exchange = expecting().await100();
    exchange
        .try_response(b"HTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let Await100Result::Done(done) = exchange.proceed().unwrap() else {
        panic!()
    };
    assert!(
        done.must_close(),
        "the server may still expect the promised body"
    );
}

#[test]
fn eof_while_waiting() {
    let exchange = expecting().await100();
    assert_eq!(exchange.eof(b""), Error::ClosedBeforeResponse);
    assert_eq!(exchange.eof(b"HTTP/1.1 1"), Error::IncompleteHead);
}
