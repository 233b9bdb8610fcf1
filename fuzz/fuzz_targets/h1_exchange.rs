//! A whole `Exchange`: a GET or HEAD request out, arbitrary response bytes in.
//!
//! Input: bit 0 of byte 0 picks HEAD over GET, bit 1 picks `tight_limits`
//! over the defaults; byte 1 sizes the pieces (see `Feed`); the rest is
//! what the server sends before it closes the connection.
//!
//! The driver is what `courier-client` does with a socket: it passes every
//! buffered byte, takes more input when a call uses nothing, reports EOF
//! when the input runs out, and ends in `Done` or an error. The run in
//! pieces must agree with the one-shot run on the statuses, the body, the
//! trailers and success; each run checks the `Done` state's promises.

#![no_main]

use courier_fuzz::{Feed, tight_limits};
use courier_proto::http::{Method, StatusCode};
use courier_proto::{
    BodyMode, CloseReason, Error, Exchange, Limits, RecvHeadResult, Request, ResponseEvent,
    SendHeadResult, state,
};
use libfuzzer_sys::fuzz_target;

/// What a run saw.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    informational: Vec<StatusCode>,
    status: Option<StatusCode>,
    body: Vec<u8>,
    trailers: Option<Vec<u8>>,
    failed: bool,
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, pieces], response)) = data.split_first_chunk::<2>() else {
        return;
    };
    let method = if flags & 1 == 0 {
        Method::GET
    } else {
        Method::HEAD
    };
    let limits = if flags & 2 == 0 {
        Limits::default()
    } else {
        tight_limits()
    };
    let one_shot = exchange(&method, limits, Feed::whole(response));
    let piecewise = exchange(&method, limits, Feed::new(response, pieces));
    assert_eq!(
        one_shot, piecewise,
        "one-shot and piecewise exchanges differ"
    );
});

/// Runs one exchange against the bytes `feed` delivers.
fn exchange(method: &Method, limits: Limits, mut feed: Feed<'_>) -> Outcome {
    let mut outcome = Outcome::default();
    let uri = "http://example.com/".parse().expect("a valid static uri");
    let request = Request::new(method.clone(), uri);
    let mut send = Exchange::new(request, limits)
        .proceed()
        .expect("a plain GET or HEAD encodes");
    let mut wire = Vec::new();
    send.write(&mut wire);
    assert!(wire.starts_with(method.as_str().as_bytes()));
    assert!(wire.ends_with(b"\r\n\r\n"));
    let Ok(SendHeadResult::RecvHead(mut recv)) = send.proceed() else {
        panic!("a request without a body goes straight to RecvHead");
    };

    // RecvHead: every pass uses input, takes the next piece, or returns.
    let mut at = 0;
    for _ in 0..feed.max_passes() {
        let input = &feed.received()[at..];
        let (used, event) = match recv.try_response(input) {
            Ok(found) => found,
            Err(e) => return failed(outcome, &e),
        };
        assert!(used <= input.len(), "used {used} of {}", input.len());
        at += used;
        match event {
            Some(ResponseEvent::Informational(head)) => {
                assert!(used > 0 && head.is_informational());
                assert_ne!(head.status(), StatusCode::SWITCHING_PROTOCOLS);
                assert!(outcome.informational.len() < limits.max_informational);
                outcome.informational.push(head.status());
            }
            Some(ResponseEvent::Final(head)) => {
                assert!(
                    used > 0 && !head.is_informational(),
                    "{head:?} is not final"
                );
                outcome.status = Some(head.status());
                break;
            }
            None => {
                assert_eq!(used, 0);
                if !feed.more() {
                    let e = recv.eof(&feed.received()[at..]);
                    assert!(e.is_incomplete(), "eof while reading a head: {e:?}");
                    return failed(outcome, &e);
                }
            }
        }
    }
    assert!(
        recv.has_response(),
        "no final head within {} passes",
        feed.max_passes()
    );

    let mut done = match recv.proceed() {
        Ok(RecvHeadResult::Done(done)) => done,
        Ok(RecvHeadResult::RecvBody(mut body)) => {
            assert!(
                *method != Method::HEAD,
                "a response to HEAD has no body ({:?})",
                body.body_mode()
            );
            // RecvBody: every pass uses input, takes the next piece, or ends.
            let mut finished = None;
            for _ in 0..feed.max_passes() {
                let input = &feed.received()[at..];
                let step = match body.read(input) {
                    Ok(step) => step,
                    Err(e) => return failed(outcome, &e),
                };
                assert!(step.consumed <= input.len());
                assert!(step.data.start <= step.data.end && step.data.end <= step.consumed);
                outcome.body.extend_from_slice(&input[step.data.clone()]);
                at += step.consumed;
                if step.done {
                    finished = Some(body.proceed().expect("a complete body proceeds"));
                    break;
                }
                if step.consumed == 0 && !feed.more() {
                    if let Err(e) = body.eof() {
                        assert_eq!(e, Error::IncompleteBody);
                        return failed(outcome, &e);
                    }
                    assert_eq!(body.body_mode(), BodyMode::UntilEof);
                    finished = Some(body.proceed().expect("eof completes an until-eof body"));
                    break;
                }
            }
            finished.unwrap_or_else(|| {
                panic!("no end of body within {} passes", feed.max_passes());
            })
        }
        Err(e) => panic!("proceed after the final head failed: {e:?}"),
    };
    check_done(method, &done, &outcome, feed.received().len() - at);
    outcome.trailers = done.take_trailers().map(|t| t.raw().to_vec());
    outcome
}

/// The promises of the `Done` state.
fn check_done(method: &Method, done: &Exchange<state::Done>, outcome: &Outcome, unread: usize) {
    assert_eq!(done.status(), outcome.status);
    assert!(
        done.leftover() <= unread,
        "leftover {} > {unread}",
        done.leftover()
    );
    let mode = done.body_mode();
    if *method == Method::HEAD {
        assert_eq!(mode, BodyMode::None);
    }
    match mode {
        BodyMode::None => assert!(outcome.body.is_empty()),
        BodyMode::Length(n) => assert_eq!(outcome.body.len() as u64, n),
        BodyMode::Chunked => {}
        BodyMode::UntilEof => assert!(done.must_close(), "an until-eof body ends the connection"),
    }
    if done.leftover() > 0 {
        assert!(done.must_close(), "bytes after the response, yet reusable");
    }
    assert_eq!(done.must_close(), done.close_reason().is_some());
    // A GET or HEAD without a body never switches protocols or tunnels,
    // and its (empty) body was always sent.
    assert!(!matches!(
        done.close_reason(),
        Some(CloseReason::Upgrade | CloseReason::Tunnel | CloseReason::BodyNotSent)
    ));
}

/// Records a refused response; only the peer can be at fault.
fn failed(mut outcome: Outcome, e: &Error) -> Outcome {
    assert!(e.is_remote(), "local error {e:?} from peer input");
    outcome.failed = true;
    outcome
}
