//! Prepare: the request can still change before it is encoded.

use super::*;

#[test]
fn late_header_and_absolute_form_for_a_proxy() {
    let mut exchange = Exchange::new(
        Request::new(
            Method::GET,
            "http://user:secret@example.com:8080/a?b=c".parse().unwrap(),
        )
        .skip_auto_header(crate::AutoHeader::UserAgent)
        .skip_auto_header(crate::AutoHeader::AcceptEncoding),
        Limits::default(),
    );
    exchange.header("Proxy-Authorization", "Basic dTpw");
    exchange.target_form(TargetForm::Absolute);
    let mut exchange = exchange.proceed().unwrap();
    let mut wire = Vec::new();
    exchange.write(&mut wire);
    assert_eq!(
        String::from_utf8(wire).unwrap(),
        "GET http://example.com:8080/a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n\
         Proxy-Authorization: Basic dTpw\r\nAccept: */*\r\n\r\n",
        "absolute-form never carries the userinfo"
    );
}

#[test]
fn invalid_late_header_fails_at_proceed() {
    let mut exchange = Exchange::new(
        Request::new(Method::GET, "http://a/".parse().unwrap()),
        Limits::default(),
    );
    exchange.header("X-Evil", "a\r\nInjected: yes");
    assert_eq!(
        exchange.proceed().unwrap_err(),
        Error::InvalidRequestHeaderValue
    );
}

#[test]
fn request_is_visible_before_encoding() {
    let exchange = Exchange::new(
        Request::new(Method::PUT, "http://a/x".parse().unwrap()).header("X-A", "1"),
        Limits::default(),
    );
    assert_eq!(exchange.request().method(), Method::PUT);
    assert!(exchange.request().has_header("x-a"));
}
