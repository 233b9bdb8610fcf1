//! One request/response exchange on a connection, as a state machine.
//!
//! ```text
//!  Prepare ──proceed──▶ SendHead ──proceed──┬──────────────────────────────▶ RecvHead
//!  (late headers,       (head bytes out)    │ body, no Expect                   ▲
//!   target form)                            ├──▶ SendBody ──finish──────────────┘
//!                                           │       ▲
//!                                           │ Expect: 100-continue
//!                                           └──▶ Await100 ─┬─ 100 / timeout ─┘
//!                                                          └─ final status ──┐
//!  RecvHead ──final head──┬──▶ RecvBody ──body done──▶ Done ◀────────────────┘
//!  (1xx reported, skipped)└──────── no body ─────────▶ Done (must_close? leftover?)
//! ```
//!
//! Each state is a type, [`Exchange<State>`], so a call that makes no sense
//! in a state does not compile. Every state that reads takes the bytes
//! received so far and says how many it used; every state that writes hands
//! out bytes to send. The caller owns the socket, the buffers and the
//! timers (a timeout while waiting for `100 Continue` is just a call to
//! [`Exchange::<Await100>::proceed`] without a response).

#[cfg(test)]
mod test;

use std::fmt;
use std::marker::PhantomData;

use http::{Method, StatusCode};

use crate::body::{BodyDecoder, BodyEncoder, BodyStep, Framing};
use crate::error::{Error, Limit};
use crate::fields::Fields;
use crate::framing::{BodyMode, body_mode, response_keep_alive};
use crate::limits::Limits;
use crate::request::{Plan, Request, TargetForm};
use crate::response::{HeadParser, ResponseHead};

/// The states of an [`Exchange`] (zero-sized markers).
pub mod state {
    macro_rules! states {
        ($($(#[$doc:meta])* $name:ident,)*) => {$(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name(());
        )*};
    }
    states! {
        /// The request is described; headers and target form may still change.
        Prepare,
        /// The head is encoded and waits to be written.
        SendHead,
        /// The head asked `Expect: 100-continue`; the body waits for the answer.
        Await100,
        /// The body is being written.
        SendBody,
        /// The request is out; the response head is being read.
        RecvHead,
        /// The response body is being read.
        RecvBody,
        /// The exchange is over; the connection's fate is known.
        Done,
    }
}

use state::{Await100, Done, Prepare, RecvBody, RecvHead, SendBody, SendHead};

/// Why a connection cannot carry another request after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The request asked for the connection to close (`Connection: close`,
    /// or HTTP/1.0 without keep-alive).
    RequestClose,
    /// The response asked for it (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    ResponseClose,
    /// The body ran until the server closed the connection.
    UntilEof,
    /// The server switched protocols (101): the bytes that follow belong to
    /// the new protocol.
    Upgrade,
    /// A CONNECT tunnel is open: the connection now carries the tunnel.
    Tunnel,
    /// A final response arrived before the request body was sent
    /// (`Expect: 100-continue` answered with a final status), so the server
    /// may still be waiting for a body that will never come.
    BodyNotSent,
    /// Bytes arrived after the response that no request asked for; they
    /// must never be read as the answer to the next request.
    UnexpectedData,
}

/// A response head as it arrives, interim or final.
#[derive(Debug)]
pub enum ResponseEvent {
    /// A 1xx response (100 Continue, 103 Early Hints...), skipped: the final
    /// response follows. 101 is never interim: it ends the exchange.
    Informational(ResponseHead),
    /// The final response head (including 101 Switching Protocols).
    Final(ResponseHead),
}

/// What follows [`SendHead`].
#[derive(Debug)]
pub enum SendHeadResult {
    /// The request asked `Expect: 100-continue`.
    Await100(Exchange<Await100>),
    /// The body is to be written.
    SendBody(Exchange<SendBody>),
    /// No body: the response comes next.
    RecvHead(Exchange<RecvHead>),
}

/// What follows [`Await100`].
#[derive(Debug)]
pub enum Await100Result {
    /// `100 Continue` arrived, or the caller stopped waiting: send the body.
    SendBody(Exchange<SendBody>),
    /// A final response arrived instead; its body follows. The request body
    /// is never sent and the connection must close.
    RecvBody(Exchange<RecvBody>),
    /// A final response without a body arrived instead.
    Done(Exchange<Done>),
}

/// What follows [`RecvHead`].
#[derive(Debug)]
pub enum RecvHeadResult {
    /// The response has a body.
    RecvBody(Exchange<RecvBody>),
    /// The response has no body (HEAD, 204, 304, 101, CONNECT 2xx...).
    Done(Exchange<Done>),
}

/// What the final response head decided.
#[derive(Debug, Clone, Copy)]
struct Final {
    status: StatusCode,
    mode: BodyMode,
}

struct Inner {
    limits: Limits,
    /// The request until it is encoded (then an empty placeholder).
    request: Request,
    /// What encoding decided (a placeholder in Prepare).
    plan: Plan,
    head: Vec<u8>,
    head_sent: usize,
    encoder: BodyEncoder,
    parser: HeadParser,
    informational: usize,
    continued: bool,
    body_sent: bool,
    response: Option<Final>,
    decoder: BodyDecoder,
    close: Option<CloseReason>,
    leftover: usize,
}

/// One HTTP/1.1 request and its response, as a typestate machine.
///
/// A whole exchange against literal bytes:
///
/// ```
/// use courier_proto::{Exchange, Limits, Request, RecvHeadResult, ResponseEvent, SendHeadResult};
/// use http::Method;
///
/// let request = Request::new(Method::GET, "http://example.com/".parse().unwrap());
/// let exchange = Exchange::new(request, Limits::default());
///
/// // Prepare -> SendHead: encode, then write the head out.
/// let mut exchange = exchange.proceed().unwrap();
/// let mut wire = Vec::new();
/// exchange.write(&mut wire);
/// assert!(wire.starts_with(b"GET / HTTP/1.1\r\nHost: example.com\r\n"));
///
/// // No body: straight to reading the response.
/// let SendHeadResult::RecvHead(mut exchange) = exchange.proceed().unwrap() else { panic!() };
/// let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
/// let (used, event) = exchange.try_response(input).unwrap();
/// let Some(ResponseEvent::Final(head)) = event else { panic!() };
/// assert_eq!(head.status(), 200);
///
/// let RecvHeadResult::RecvBody(mut exchange) = exchange.proceed().unwrap() else { panic!() };
/// let rest = &input[used..];
/// let step = exchange.read(rest).unwrap();
/// assert_eq!(&rest[step.data], b"hi");
/// assert!(step.done);
///
/// let done = exchange.proceed().unwrap();
/// assert!(!done.must_close(), "HTTP/1.1 with a length: reusable");
/// ```
pub struct Exchange<S> {
    /// Boxed so that moving an exchange from state to state (and holding
    /// one in a caller's future) costs a pointer, not the whole machine.
    inner: Box<Inner>,
    _state: PhantomData<S>,
}

impl<S> fmt::Debug for Exchange<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = std::any::type_name::<S>()
            .rsplit("::")
            .next()
            .unwrap_or("?");
        f.debug_struct("Exchange")
            .field("state", &state)
            .field("method", &self.inner.plan.method)
            .field("status", &self.inner.response.map(|r| r.status))
            .field("close", &self.inner.close)
            .finish_non_exhaustive()
    }
}

impl<S> Exchange<S> {
    fn into<T>(self) -> Exchange<T> {
        Exchange {
            inner: self.inner,
            _state: PhantomData,
        }
    }
}

impl Exchange<Prepare> {
    /// Starts an exchange for `request`, enforcing `limits` on the response.
    pub fn new(request: Request, limits: Limits) -> Exchange<Prepare> {
        Exchange {
            inner: Box::new(Inner {
                limits,
                request,
                plan: Plan::default(),
                head: Vec::new(),
                head_sent: 0,
                encoder: BodyEncoder::with_length(0),
                parser: HeadParser::new(limits),
                informational: 0,
                continued: false,
                body_sent: false,
                response: None,
                decoder: BodyDecoder::new(BodyMode::None, limits),
                close: None,
                leftover: 0,
            }),
            _state: PhantomData,
        }
    }

    /// The request as described so far.
    pub fn request(&self) -> &Request {
        &self.inner.request
    }

    /// Adds a header late, for example `Proxy-Authorization` once the
    /// connection is known to go through a proxy. Validated as in
    /// [`Request::header`].
    pub fn header(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.inner.request.add_header(name.as_ref(), value.as_ref());
    }

    /// Changes the target form, for example to absolute-form once the
    /// connection is known to go to a plain-HTTP proxy.
    pub fn target_form(&mut self, form: TargetForm) {
        self.inner.request.set_target_form(form);
    }

    /// Encodes the head.
    ///
    /// # Errors
    ///
    /// The request is invalid (see [`Request::encode_head`]).
    pub fn proceed(mut self) -> Result<Exchange<SendHead>, Error> {
        let mut head = Vec::new();
        let plan = self.inner.request.encode(&mut head)?;
        self.inner.encoder = BodyEncoder::new(plan.framing, plan.compression)?;
        self.inner.request = Request::new(Method::GET, http::Uri::default());
        self.inner.head = head;
        self.inner.plan = plan;
        Ok(self.into())
    }
}

impl Exchange<SendHead> {
    /// The head bytes not yet sent.
    pub fn head(&self) -> &[u8] {
        &self.inner.head[self.inner.head_sent..]
    }

    /// Records that the first `n` bytes of [`head`](Self::head) were sent.
    pub fn consume(&mut self, n: usize) {
        self.inner.head_sent = self
            .inner
            .head_sent
            .saturating_add(n)
            .min(self.inner.head.len());
    }

    /// Appends all unsent head bytes to `out` and records them as sent.
    pub fn write(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head());
        self.inner.head_sent = self.inner.head.len();
    }

    /// True once every head byte is sent.
    pub fn is_sent(&self) -> bool {
        self.inner.head_sent == self.inner.head.len()
    }

    /// Moves on once the head is sent.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] if head bytes are still unsent.
    pub fn proceed(self) -> Result<SendHeadResult, Error> {
        if !self.is_sent() {
            return Err(Error::OutOfOrder("request head not fully sent"));
        }
        let plan = &self.inner.plan;
        Ok(if plan.framing == Framing::None {
            self.inner_body_done().into_recv_head()
        } else if plan.expect_continue {
            SendHeadResult::Await100(self.into())
        } else {
            SendHeadResult::SendBody(self.into())
        })
    }

    fn inner_body_done(mut self) -> Self {
        self.inner.body_sent = true;
        self
    }

    fn into_recv_head(self) -> SendHeadResult {
        SendHeadResult::RecvHead(self.into())
    }
}

impl Inner {
    /// Parses the next head from `input` (RecvHead and Await100).
    fn try_response(&mut self, input: &[u8]) -> Result<(usize, Option<ResponseEvent>), Error> {
        if self.response.is_some() {
            return Ok((0, None));
        }
        let Some((head, used)) = self.parser.parse(input)? else {
            return Ok((0, None));
        };
        let status = head.status();
        let plan = &self.plan;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if !plan.upgrade || plan.method == Method::CONNECT {
                return Err(Error::UnexpectedUpgrade);
            }
        } else if status.is_informational() {
            self.informational += 1;
            if self.informational > self.limits.max_informational {
                return Err(Error::LimitExceeded(Limit::Informational));
            }
            if status == StatusCode::CONTINUE {
                self.continued = true;
            }
            return Ok((used, Some(ResponseEvent::Informational(head))));
        }

        // A final response (101 included): decide framing and the connection's fate.
        let mode = body_mode(&plan.method, &head)?;
        if mode == BodyMode::UntilEof && !plan.read_until_eof {
            return Err(Error::UndelimitedBody);
        }
        let tunnel = plan.method == Method::CONNECT && status.is_success();
        self.close = if status == StatusCode::SWITCHING_PROTOCOLS {
            Some(CloseReason::Upgrade)
        } else if tunnel {
            Some(CloseReason::Tunnel)
        } else if !self.body_sent {
            Some(CloseReason::BodyNotSent)
        } else if !plan.keep_alive {
            Some(CloseReason::RequestClose)
        } else if !response_keep_alive(&head) {
            Some(CloseReason::ResponseClose)
        } else if mode == BodyMode::UntilEof {
            Some(CloseReason::UntilEof)
        } else {
            None
        };
        self.response = Some(Final { status, mode });
        self.decoder = BodyDecoder::new(mode, self.limits);
        self.leftover = input.len() - used;
        Ok((used, Some(ResponseEvent::Final(head))))
    }

    /// The error for a connection that closed while a head was awaited.
    fn eof_error(&self, buffered: &[u8]) -> Error {
        if buffered.is_empty() && !self.parser.is_partial() && self.informational == 0 {
            Error::ClosedBeforeResponse
        } else {
            Error::IncompleteHead
        }
    }

    fn body_mode(&self) -> BodyMode {
        self.response.map_or(BodyMode::None, |r| r.mode)
    }
}

impl Exchange<Await100> {
    /// Reads interim and final response heads while the body waits.
    ///
    /// Returns how many bytes of `input` were used and the head found, if
    /// any. After `100 Continue` or a final response, call
    /// [`proceed`](Self::proceed).
    ///
    /// # Errors
    ///
    /// A malformed response head or framing (see [`HeadParser::parse`] and
    /// [`body_mode`]).
    pub fn try_response(&mut self, input: &[u8]) -> Result<(usize, Option<ResponseEvent>), Error> {
        if self.inner.continued {
            return Ok((0, None));
        }
        self.inner.try_response(input)
    }

    /// True once `100 Continue` arrived.
    pub fn got_continue(&self) -> bool {
        self.inner.continued
    }

    /// True once a final response arrived instead of `100 Continue`.
    pub fn got_final(&self) -> bool {
        self.inner.response.is_some()
    }

    /// Sends the body (after `100 Continue`, or when the caller gives up
    /// waiting), or goes on to the final response that arrived instead.
    ///
    /// # Errors
    ///
    /// None today; kept fallible for symmetry with the other states.
    pub fn proceed(self) -> Result<Await100Result, Error> {
        Ok(match self.inner.response {
            Some(_) => match self.into::<RecvHead>().proceed()? {
                RecvHeadResult::RecvBody(e) => Await100Result::RecvBody(e),
                RecvHeadResult::Done(e) => Await100Result::Done(e),
            },
            None => Await100Result::SendBody(self.into()),
        })
    }

    /// The error to report when the connection closed while waiting.
    pub fn eof(&self, buffered: &[u8]) -> Error {
        self.inner.eof_error(buffered)
    }
}

impl Exchange<SendBody> {
    /// Appends `data`, framed (and compressed if asked), to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooLong`] past the declared `Content-Length`.
    pub fn write(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.inner.encoder.write(data, out)
    }

    /// True when data may be sent without copying it through
    /// [`write`](Self::write) (see [`BodyEncoder::is_direct`]).
    pub fn is_direct(&self) -> bool {
        self.inner.encoder.is_direct()
    }

    /// Accounts for `len` data bytes the caller sends itself (see
    /// [`BodyEncoder::write_direct`]).
    ///
    /// # Errors
    ///
    /// As [`BodyEncoder::write_direct`].
    pub fn write_direct(&mut self, len: usize) -> Result<(), Error> {
        self.inner.encoder.write_direct(len)
    }

    /// Ends the body (last chunk, compressor flush) and moves on to the response.
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooShort`] before the declared `Content-Length`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<Exchange<RecvHead>, Error> {
        self.inner.encoder.finish(out)?;
        self.inner.body_sent = true;
        Ok(self.into())
    }

    /// Gives up on the body (for example because the server already
    /// answered) and moves on to the response; the connection will have to
    /// close ([`CloseReason::BodyNotSent`]).
    pub fn abandon(self) -> Exchange<RecvHead> {
        self.into()
    }

    /// Body bytes still owed under `Content-Length` (`None` when chunked).
    pub fn remaining(&self) -> Option<u64> {
        self.inner.encoder.remaining()
    }

    /// True when the body goes out chunked.
    pub fn is_chunked(&self) -> bool {
        self.inner.encoder.is_chunked()
    }
}

impl Exchange<RecvHead> {
    /// Parses the response head from the bytes received so far.
    ///
    /// Returns how many bytes of `input` were used and the head found, if
    /// any: interim (1xx) heads are reported and skipped; after the final
    /// head, call [`proceed`](Self::proceed). Pass every byte buffered so
    /// far: the count of bytes after a response is how unsolicited data is
    /// detected.
    ///
    /// # Errors
    ///
    /// A malformed response head or framing (see [`HeadParser::parse`] and
    /// [`body_mode`]), an unrequested 101,
    /// [`Error::UndelimitedBody`].
    pub fn try_response(&mut self, input: &[u8]) -> Result<(usize, Option<ResponseEvent>), Error> {
        self.inner.try_response(input)
    }

    /// True once the final response head has arrived.
    pub fn has_response(&self) -> bool {
        self.inner.response.is_some()
    }

    /// Moves on to the body (or straight to Done when there is none).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] before the final head arrived.
    pub fn proceed(self) -> Result<RecvHeadResult, Error> {
        match self.inner.response {
            None => Err(Error::OutOfOrder("no final response head yet")),
            Some(r) if r.mode == BodyMode::None || r.mode == BodyMode::Length(0) => {
                let mut done: Exchange<Done> = self.into();
                done.inner.settle_leftover();
                Ok(RecvHeadResult::Done(done))
            }
            Some(_) => Ok(RecvHeadResult::RecvBody(self.into())),
        }
    }

    /// The error to report when the connection closed before a final head:
    /// [`Error::ClosedBeforeResponse`] if nothing at all arrived (a request
    /// on a kept-alive connection the server had just closed), else
    /// [`Error::IncompleteHead`].
    pub fn eof(&self, buffered: &[u8]) -> Error {
        self.inner.eof_error(buffered)
    }
}

impl Inner {
    /// Turns bytes left after a complete response into a close reason.
    fn settle_leftover(&mut self) {
        if self.leftover > 0 && self.close.is_none() {
            self.close = Some(CloseReason::UnexpectedData);
        }
    }
}

impl Exchange<RecvBody> {
    /// Decodes body framing and at most one run of data from `input`.
    ///
    /// `input` starts right after what earlier calls consumed. Pass every
    /// byte buffered so far: when the body ends inside `input`, the bytes
    /// after it are recorded as [`leftover`](Exchange::<Done>::leftover).
    ///
    /// # Errors
    ///
    /// Malformed chunked framing or a limit exceeded.
    pub fn read(&mut self, input: &[u8]) -> Result<BodyStep, Error> {
        let step = self.inner.decoder.decode(input)?;
        if step.done {
            self.inner.leftover = input.len() - step.consumed;
        }
        Ok(step)
    }

    /// Tells the exchange the connection closed.
    ///
    /// # Errors
    ///
    /// [`Error::IncompleteBody`] unless the body is complete or runs until EOF.
    pub fn eof(&mut self) -> Result<(), Error> {
        let result = self.inner.decoder.eof();
        if result.is_ok() {
            self.inner.leftover = 0;
        }
        result
    }

    /// True once the body is complete.
    pub fn is_done(&self) -> bool {
        self.inner.decoder.is_done()
    }

    /// How the body is delimited.
    pub fn body_mode(&self) -> BodyMode {
        self.inner.body_mode()
    }

    /// Body bytes still expected under `Content-Length` framing.
    pub fn remaining(&self) -> Option<u64> {
        self.inner.decoder.remaining()
    }

    /// Moves on once the body is complete.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfOrder`] while the body is incomplete.
    pub fn proceed(mut self) -> Result<Exchange<Done>, Error> {
        if !self.is_done() {
            return Err(Error::OutOfOrder("response body not complete"));
        }
        self.inner.settle_leftover();
        Ok(self.into())
    }
}

impl Exchange<Done> {
    /// True when the connection must not carry another request.
    ///
    /// A connection may go back to a pool only when this is false: the
    /// response was read to its end, both sides allowed keep-alive, the body
    /// was not delimited by EOF, no protocol switch or tunnel happened, and
    /// no unasked-for bytes followed the response.
    pub fn must_close(&self) -> bool {
        self.inner.close.is_some()
    }

    /// Why the connection must close, if it must.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.close
    }

    /// Bytes that followed the response in the last input passed in. After
    /// a 101 or a CONNECT tunnel they belong to the new protocol, untouched.
    pub fn leftover(&self) -> usize {
        self.inner.leftover
    }

    /// The final status code.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.response.map(|r| r.status)
    }

    /// How the body was delimited.
    pub fn body_mode(&self) -> BodyMode {
        self.inner.body_mode()
    }

    /// The trailer fields of a chunked body, if it had any.
    pub fn trailers(&self) -> Option<&Fields> {
        self.inner.decoder.trailers()
    }

    /// Takes the trailer fields out.
    pub fn take_trailers(&mut self) -> Option<Fields> {
        self.inner.decoder.take_trailers()
    }
}
