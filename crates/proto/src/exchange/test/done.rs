//! Done: whether the connection may carry another request, and why not.

use super::*;

fn close_of(scenario: fn() -> Scenario, response: &str) -> Option<CloseReason> {
    play_all(scenario, response.as_bytes()).unwrap().close
}

#[test]
fn keep_alive_matrix() {
    let ok = "Content-Length: 0\r\n\r\n";
    // HTTP/1.1: persistent unless someone says close.
    assert_eq!(
        close_of(Scenario::get, &format!("HTTP/1.1 200 OK\r\n{ok}")),
        None
    );
    assert_eq!(
        close_of(
            Scenario::get,
            &format!("HTTP/1.1 200 OK\r\nConnection: close\r\n{ok}")
        ),
        Some(CloseReason::ResponseClose)
    );
    // HTTP/1.0: only with keep-alive.
    assert_eq!(
        close_of(Scenario::get, &format!("HTTP/1.0 200 OK\r\n{ok}")),
        Some(CloseReason::ResponseClose)
    );
    assert_eq!(
        close_of(
            Scenario::get,
            &format!("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n{ok}")
        ),
        None
    );
    // Our own request asked to close.
    let closing = || Scenario::get().with(|r| r.keep_alive(false));
    assert_eq!(
        close_of(closing, &format!("HTTP/1.1 200 OK\r\n{ok}")),
        Some(CloseReason::RequestClose)
    );
    let closing_header = || Scenario::get().with(|r| r.header("Connection", "close"));
    assert_eq!(
        close_of(closing_header, &format!("HTTP/1.1 200 OK\r\n{ok}")),
        Some(CloseReason::RequestClose)
    );
    // An HTTP/1.0 request without keep-alive cannot expect the server to keep it.
    let http10 = || Scenario::get().with(|r| r.version(http::Version::HTTP_10).keep_alive(false));
    assert_eq!(
        close_of(http10, &format!("HTTP/1.1 200 OK\r\n{ok}")),
        Some(CloseReason::RequestClose)
    );
}

#[test]
fn done_reports_status_mode_and_leftover() {
    let (mut exchange, _) = Scenario::get().recv_head();
    let input = b"HTTP/1.1 204 No Content\r\n\r\nXY";
    exchange.try_response(input).unwrap();
    let RecvHeadResult::Done(done) = exchange.proceed().unwrap() else {
        panic!()
    };
    assert_eq!(done.status(), Some(StatusCode::NO_CONTENT));
    assert_eq!(done.body_mode(), crate::BodyMode::None);
    assert_eq!(done.leftover(), 2);
    assert_eq!(done.close_reason(), Some(CloseReason::UnexpectedData));
    assert!(done.must_close());
}
