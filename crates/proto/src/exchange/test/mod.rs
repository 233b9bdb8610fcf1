//! Tests for the exchange, one file per state, sharing a [`Scenario`]
//! builder that fast-forwards to any state so each test states only the
//! bytes that matter.

mod await100;
mod done;
mod prepare;
mod recv_body;
mod recv_head;
mod send_body;
mod send_head;

use http::{Method, StatusCode};

use super::state::{Await100, RecvBody, RecvHead, SendBody, SendHead};
use super::*;
use crate::{Error, Limits, Request};

/// A request ready to be run to any state.
pub(super) struct Scenario {
    request: Request,
    body: Vec<u8>,
    limits: Limits,
}

impl Scenario {
    pub(super) fn new(method: Method, uri: &str) -> Scenario {
        Scenario {
            request: Request::new(method, uri.parse().expect("test uri")),
            body: Vec::new(),
            limits: Limits::default(),
        }
    }

    pub(super) fn get() -> Scenario {
        Scenario::new(Method::GET, "http://example.com/")
    }

    pub(super) fn head() -> Scenario {
        Scenario::new(Method::HEAD, "http://example.com/")
    }

    /// A POST with `body` sent under `Content-Length`.
    pub(super) fn post(body: &[u8]) -> Scenario {
        let mut s = Scenario::new(Method::POST, "http://example.com/submit");
        s.request = s.request.content_length(body.len() as u64);
        s.body = body.to_vec();
        s
    }

    pub(super) fn with(mut self, f: impl FnOnce(Request) -> Request) -> Scenario {
        self.request = f(self.request);
        self
    }

    pub(super) fn limits(mut self, limits: Limits) -> Scenario {
        self.limits = limits;
        self
    }

    pub(super) fn send_head(self) -> (Exchange<SendHead>, Vec<u8>) {
        let exchange = Exchange::new(self.request, self.limits)
            .proceed()
            .expect("request encodes");
        (exchange, self.body)
    }

    /// Writes the head and stops in Await100 (the request must expect it).
    pub(super) fn await100(self) -> Exchange<Await100> {
        let (mut exchange, _) = self.send_head();
        exchange.write(&mut Vec::new());
        match exchange.proceed().expect("head sent") {
            SendHeadResult::Await100(e) => e,
            other => panic!("expected Await100, got {other:?}"),
        }
    }

    pub(super) fn send_body(self) -> Exchange<SendBody> {
        let (mut exchange, _) = self.send_head();
        exchange.write(&mut Vec::new());
        match exchange.proceed().expect("head sent") {
            SendHeadResult::SendBody(e) => e,
            other => panic!("expected SendBody, got {other:?}"),
        }
    }

    /// Sends head and body; returns the exchange and every byte written.
    pub(super) fn recv_head(self) -> (Exchange<RecvHead>, Vec<u8>) {
        let (mut exchange, body) = self.send_head();
        let mut wire = Vec::new();
        exchange.write(&mut wire);
        let exchange = match exchange.proceed().expect("head sent") {
            SendHeadResult::RecvHead(e) => e,
            SendHeadResult::SendBody(mut e) => {
                e.write(&body, &mut wire).expect("body fits");
                e.finish(&mut wire).expect("body complete")
            }
            SendHeadResult::Await100(_) => panic!("use await100() for Expect requests"),
        };
        (exchange, wire)
    }

    /// Reads `head` as the final response head and stops in RecvBody.
    pub(super) fn recv_body(self, head: &[u8]) -> Exchange<RecvBody> {
        let (mut exchange, _) = self.recv_head();
        let (used, event) = exchange.try_response(head).expect("head parses");
        assert_eq!(used, head.len(), "the whole input is the head");
        assert!(matches!(event, Some(ResponseEvent::Final(_))));
        match exchange.proceed().expect("final head") {
            RecvHeadResult::RecvBody(e) => e,
            RecvHeadResult::Done(e) => panic!("expected a body, got {e:?}"),
        }
    }
}

/// Everything a client observes of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transcript {
    pub(super) informational: Vec<StatusCode>,
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
    pub(super) close: Option<CloseReason>,
    pub(super) leftover: Vec<u8>,
    pub(super) trailers: Vec<(String, Vec<u8>)>,
}

/// Plays `response` (delivered in `pieces`, then EOF if `eof`) against a
/// fresh exchange from `scenario`, the way a client would.
pub(super) fn play(
    scenario: impl Fn() -> Scenario,
    pieces: &[&[u8]],
    eof: bool,
) -> Result<Transcript, Error> {
    let (mut exchange, _) = scenario().recv_head();
    let mut buf = Vec::new();
    let mut at = 0;
    let mut informational = Vec::new();
    let mut pieces = pieces.iter();
    // Head.
    let status = loop {
        match exchange.try_response(&buf[at..])? {
            (used, Some(ResponseEvent::Informational(head))) => {
                at += used;
                informational.push(head.status());
            }
            (used, Some(ResponseEvent::Final(head))) => {
                at += used;
                break head.status();
            }
            (_, None) => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None if eof => return Err(exchange.eof(&buf[at..])),
                None => return Err(Error::OutOfOrder("test: input ended in head")),
            },
        }
    };
    let mut body = Vec::new();
    let mut done = match exchange.proceed()? {
        RecvHeadResult::Done(done) => done,
        RecvHeadResult::RecvBody(mut exchange) => loop {
            let step = exchange.read(&buf[at..])?;
            body.extend_from_slice(&buf[at..][step.data.clone()]);
            at += step.consumed;
            if exchange.is_done() {
                break exchange.proceed()?;
            }
            if step.consumed == 0 {
                match pieces.next() {
                    Some(piece) => buf.extend_from_slice(piece),
                    None if eof => {
                        exchange.eof()?;
                        break exchange.proceed()?;
                    }
                    None => return Err(Error::OutOfOrder("test: input ended in body")),
                }
            }
        },
    };
    // Whatever is still undelivered would arrive after the response.
    for piece in pieces {
        buf.extend_from_slice(piece);
    }
    let trailers = done
        .take_trailers()
        .map(|t| t.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect())
        .unwrap_or_default();
    Ok(Transcript {
        informational,
        status,
        body,
        close: done.close_reason(),
        leftover: buf[at..].to_vec(),
        trailers,
    })
}

/// Plays `response` whole, split in two at every offset and byte by byte,
/// then EOF; asserts every feed gives the same result and returns it.
///
/// The close reason may differ between feeds only by `UnexpectedData`:
/// whether bytes after a response are seen depends on when they arrive.
pub(super) fn play_all(
    scenario: impl Fn() -> Scenario,
    response: &[u8],
) -> Result<Transcript, Error> {
    let whole = play(&scenario, &[response], true);
    let mut feeds: Vec<Vec<&[u8]>> = (1..response.len())
        .map(|at| vec![&response[..at], &response[at..]])
        .collect();
    feeds.push(response.chunks(1).collect());
    for pieces in feeds {
        let split = play(&scenario, &pieces, true);
        match (&whole, &split) {
            (Ok(a), Ok(b)) => {
                let same_close = a.close == b.close
                    || a.close == Some(CloseReason::UnexpectedData) && b.close.is_none();
                let mut b = b.clone();
                b.close = a.close;
                assert!(same_close && *a == b, "feed {pieces:?}: {a:?} vs {b:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "feed {pieces:?}"),
            _ => panic!("feed {pieces:?}: whole gave {whole:?}, split gave {split:?}"),
        }
    }
    whole
}
