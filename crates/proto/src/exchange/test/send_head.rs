//! SendHead: the encoded head goes out, possibly in several writes.

use super::*;

#[test]
fn head_can_be_sent_in_parts() {
    let (mut exchange, _) = Scenario::get().send_head();
    let total = exchange.head().to_vec();
    exchange.consume(5);
    assert_eq!(exchange.head(), &total[5..]);
    assert!(!exchange.is_sent());
    // Moving on with bytes unsent is refused.
    let err = exchange.proceed().unwrap_err();
    assert!(matches!(err, Error::OutOfOrder(_)), "{err:?}");

    let (mut exchange, _) = Scenario::get().send_head();
    exchange.consume(3);
    exchange.consume(usize::MAX);
    assert!(exchange.is_sent());
    assert!(exchange.head().is_empty());
}

#[test]
fn next_state_follows_the_body() {
    let next = |s: Scenario| {
        let (mut e, _) = s.send_head();
        e.write(&mut Vec::new());
        e.proceed().unwrap()
    };
    assert!(matches!(next(Scenario::get()), SendHeadResult::RecvHead(_)));
    assert!(matches!(
        next(Scenario::post(b"abc")),
        SendHeadResult::SendBody(_)
    ));
    assert!(matches!(
        next(Scenario::post(b"abc").with(|r| r.expect_continue(true))),
        SendHeadResult::Await100(_)
    ));
    // Nothing to hold back: no point waiting for 100 Continue.
    assert!(matches!(
        next(Scenario::get().with(|r| r.expect_continue(true))),
        SendHeadResult::RecvHead(_)
    ));
    // A zero-length body is still a body with framing.
    assert!(matches!(
        next(Scenario::post(b"")),
        SendHeadResult::SendBody(_)
    ));
}
