//! A blocking driver of [`Exchange`] over `std` sockets, for tests only.
//!
//! [`Conn`] owns a stream and the bytes received but not yet used, so
//! several exchanges can run one after another on one kept-alive
//! connection. [`Conn::exchange`] walks the exchange through its states:
//!
//! ```text
//! Prepare ─▶ SendHead ─┬─────────────────────────────────▶ RecvHead ─▶ [RecvBody] ─▶ Done
//!                      ├─▶ SendBody ───────────────────────────▲
//!                      └─▶ Await100 ─ 100, or [`Options::continue_timeout`] ─▶ SendBody
//!                                   └─ final status instead ─▶ [RecvBody] ─▶ Done
//! ```
//!
//! and returns an [`Outcome`]: status, headers in order, the body with
//! transfer and content coding removed, the framing and the codec's
//! keep-alive verdict. It is what a test needs to assert on, nothing more:
//! no pooling, no redirects, no retries.
//!
//! Never hangs: every read and write has a timeout ([`Options::io_timeout`]),
//! the whole exchange has a deadline ([`Options::deadline`]) and the body a
//! size cap ([`Options::max_body`]).
//!
//! ```no_run
//! use courier_proto::{Request, http::Method};
//! use courier_tests::blocking::Conn;
//!
//! let nginx = courier_test_support::peers::nginx();
//! let mut conn = Conn::tcp(nginx.http).unwrap();
//! let request = Request::new(Method::GET, nginx.url("/hello.txt").parse().unwrap());
//! let outcome = conn.exchange(request, None).unwrap();
//! assert_eq!(outcome.status, 200);
//! assert_eq!(outcome.body, nginx.file("hello.txt"));
//! assert!(!outcome.must_close);
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use courier_proto::http::{StatusCode, Version};
use courier_proto::{
    Await100Result, BodyMode, CloseReason, ContentCoding, ContentDecoder, Exchange, Limits,
    RecvHeadResult, Request, ResponseEvent, ResponseHead, SendHeadResult, state,
};

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;
/// Request body bytes handed to the encoder per write.
const WRITE_SIZE: usize = 16 * 1024;

/// A stream the driver can run on: readable, writable, with timeouts.
pub trait Transport: Read + Write {
    /// Sets the timeout of every later read (`None`: block forever; the
    /// driver never passes `None`).
    ///
    /// # Errors
    ///
    /// As the socket's own `set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// Sets the timeout of every later write.
    ///
    /// # Errors
    ///
    /// As the socket's own `set_write_timeout`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

impl Transport for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

/// How [`Conn`] runs exchanges.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Limits handed to the codec. Defaults to [`Limits::default`].
    pub limits: Limits,
    /// Timeout of each socket read and write. Defaults to 10 s.
    pub io_timeout: Duration,
    /// How long to wait for `100 Continue` before sending the body anyway.
    /// Defaults to 1 s.
    pub continue_timeout: Duration,
    /// Time allowed for one whole exchange. Defaults to 30 s.
    pub deadline: Duration,
    /// Largest body kept (after content decoding). Defaults to 64 MiB.
    pub max_body: usize,
    /// Whether to remove the `Content-Encoding` (gzip, deflate). Defaults to true.
    pub decode: bool,
    /// Most bytes asked of the socket per read: 1 feeds the codec the
    /// response a byte at a time. Defaults to 64 KiB.
    pub read_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            io_timeout: Duration::from_secs(10),
            continue_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(30),
            max_body: 64 << 20,
            decode: true,
            read_size: READ_SIZE,
        }
    }
}

/// Why an exchange failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The codec refused the request or the response.
    Proto(courier_proto::Error),
    /// The socket failed.
    Io(io::Error),
    /// A read or write timed out, or the exchange passed its deadline, while
    /// doing what is named.
    Timeout(&'static str),
    /// The body grew past [`Options::max_body`].
    BodyTooLarge(usize),
    /// The codec broke its own contract (named), for example it stopped
    /// taking input: a codec bug, reported instead of looping or panicking.
    Contract(&'static str),
    /// The driver was used wrongly (named).
    Usage(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Proto(e) => write!(f, "codec: {e}"),
            Error::Io(e) => write!(f, "i/o: {e}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::BodyTooLarge(max) => write!(f, "body larger than {max} bytes"),
            Error::Contract(what) => write!(f, "codec broke its contract: {what}"),
            Error::Usage(what) => write!(f, "misuse: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Proto(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<courier_proto::Error> for Error {
    fn from(e: courier_proto::Error) -> Self {
        Error::Proto(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// A finished exchange, as a test sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// Interim responses before the final one (`100 Continue`...), in order.
    pub informational: Vec<(StatusCode, String)>,
    /// The version of the final response's status line.
    pub version: Version,
    /// The final status.
    pub status: StatusCode,
    /// The reason phrase, as sent.
    pub reason: String,
    /// The header fields in order, names with their case as received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, transfer coding removed, and content coding removed when
    /// [`content_coding`](Self::content_coding) is `Some`.
    pub body: Vec<u8>,
    /// Body bytes after transfer decoding, before content decoding.
    pub wire_body_len: usize,
    /// The content coding removed (`Identity` when there was none); `None`
    /// when the body is kept as received: a coding the codec does not
    /// decode (`br`...), or [`Options::decode`] off.
    pub content_coding: Option<ContentCoding>,
    /// How the body was delimited.
    pub body_mode: BodyMode,
    /// The codec's verdict: the connection cannot carry another request.
    pub must_close: bool,
    /// Why, when it must close.
    pub close_reason: Option<CloseReason>,
    /// Bytes received after the response (kept by the [`Conn`]).
    pub leftover: usize,
    /// Trailer fields of a chunked body, in order.
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Outcome {
    /// The first value of header `name` (ASCII case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("<non-utf8>"))
    }

    /// Every value of header `name`, in order, as text.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("<non-utf8>"))
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection carrying exchanges one after another.
#[derive(Debug)]
pub struct Conn<S> {
    stream: S,
    /// Received bytes not used yet (they start the next response).
    buf: Vec<u8>,
    options: Options,
    /// The peer closed its side (a read returned 0).
    eof: bool,
}

impl Conn<TcpStream> {
    /// Connects to `addr` (5 s timeout) with the default [`Options`].
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub fn tcp(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Conn::new(stream)
    }
}

impl Conn<UnixStream> {
    /// Connects to the Unix socket at `path` with the default [`Options`].
    ///
    /// # Errors
    ///
    /// The connection failed.
    pub fn unix(path: &Path) -> io::Result<Self> {
        Conn::new(UnixStream::connect(path)?)
    }
}

/// What one read from the socket gave.
enum Fill {
    Data,
    Eof,
    TimedOut,
}

/// The stage an exchange reached after its request went out.
enum Received {
    Head(Exchange<state::RecvHead>),
    Body(Exchange<state::RecvBody>, ResponseHead),
    Done(Exchange<state::Done>, ResponseHead),
}

/// What waiting for `100 Continue` ended with.
enum AfterWait {
    /// `100 Continue`, or the wait timed out: send the body.
    Send(Exchange<state::SendBody>),
    /// A final response came instead.
    Answered(Received),
}

impl<S: Transport> Conn<S> {
    /// Wraps `stream` with the default [`Options`] (and sets its timeouts).
    ///
    /// # Errors
    ///
    /// Setting the timeouts failed.
    pub fn new(stream: S) -> io::Result<Self> {
        Conn::with_options(stream, Options::default())
    }

    /// Wraps `stream`, running exchanges with `options`.
    ///
    /// # Errors
    ///
    /// Setting the timeouts failed.
    pub fn with_options(stream: S, options: Options) -> io::Result<Self> {
        stream.set_read_timeout(Some(options.io_timeout))?;
        stream.set_write_timeout(Some(options.io_timeout))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            options,
            eof: false,
        })
    }

    /// Runs later exchanges with `options` (and sets the stream's timeouts).
    ///
    /// # Errors
    ///
    /// Setting the timeouts failed.
    pub fn set_options(&mut self, options: Options) -> io::Result<()> {
        self.stream.set_read_timeout(Some(options.io_timeout))?;
        self.stream.set_write_timeout(Some(options.io_timeout))?;
        self.options = options;
        Ok(())
    }

    /// Received bytes not used by any exchange yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// True once the peer closed its side of the connection.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Waits up to `wait` for the peer to close the connection; true if it
    /// did. Bytes that arrive instead are buffered (and the answer is false).
    ///
    /// # Errors
    ///
    /// The socket failed.
    pub fn peer_closed(&mut self, wait: Duration) -> Result<bool, Error> {
        if self.eof {
            return Ok(true);
        }
        Ok(match self.fill_within(wait, "waiting for close")? {
            Fill::Eof => true,
            Fill::Data | Fill::TimedOut => false,
        })
    }

    /// Runs one exchange: sends `request` (and `body`, which the request
    /// must declare: [`Request::content_length`], [`Request::chunked`]...)
    /// and reads the whole response.
    ///
    /// # Errors
    ///
    /// The codec refused the request or the response, the socket failed or
    /// timed out, or the body grew past [`Options::max_body`].
    pub fn exchange(&mut self, request: Request, body: Option<&[u8]>) -> Result<Outcome, Error> {
        let deadline = Instant::now() + self.options.deadline;
        let body = body.unwrap_or_default();
        let mut informational = Vec::new();

        let mut exchange = Exchange::new(request, self.options.limits).proceed()?;
        self.write_all(exchange.head())?;
        let sent = exchange.head().len();
        exchange.consume(sent);

        let received = match exchange.proceed()? {
            SendHeadResult::RecvHead(exchange) => {
                if !body.is_empty() {
                    return Err(Error::Usage(
                        "a body was given for a request that declares none \
                         (use content_length, chunked or compress)",
                    ));
                }
                Received::Head(exchange)
            }
            SendHeadResult::SendBody(exchange) => Received::Head(self.send_body(exchange, body)?),
            SendHeadResult::Await100(exchange) => {
                match self.await_continue(exchange, &mut informational)? {
                    AfterWait::Send(exchange) => Received::Head(self.send_body(exchange, body)?),
                    AfterWait::Answered(received) => received,
                }
            }
        };
        let received = match received {
            Received::Head(exchange) => self.recv_head(exchange, &mut informational, deadline)?,
            received => received,
        };
        let (done, head, mut sink) = match received {
            Received::Body(exchange, head) => {
                let mut sink = Sink::new(&head, &self.options);
                let done = self.recv_body(exchange, &mut sink, deadline)?;
                (done, head, sink)
            }
            Received::Done(done, head) => {
                let sink = Sink::new(&head, &self.options);
                (done, head, sink)
            }
            Received::Head(_) => return Err(Error::Contract("no final response head")),
        };
        sink.finish()?;
        Ok(Outcome {
            informational,
            version: head.version(),
            status: head.status(),
            reason: head.reason_lossy().into_owned(),
            headers: fields(head.fields().iter()),
            wire_body_len: sink.wire,
            content_coding: sink.coding,
            body: sink.body,
            body_mode: done.body_mode(),
            must_close: done.must_close(),
            close_reason: done.close_reason(),
            leftover: done.leftover(),
            trailers: done
                .trailers()
                .map(|t| fields(t.iter()))
                .unwrap_or_default(),
        })
    }

    fn send_body(
        &mut self,
        mut exchange: Exchange<state::SendBody>,
        body: &[u8],
    ) -> Result<Exchange<state::RecvHead>, Error> {
        let mut out = Vec::new();
        for piece in body.chunks(WRITE_SIZE) {
            out.clear();
            exchange.write(piece, &mut out)?;
            self.write_all(&out)?;
        }
        out.clear();
        let exchange = exchange.finish(&mut out)?;
        self.write_all(&out)?;
        Ok(exchange)
    }

    /// Waits for `100 Continue` (or a final response) at most
    /// [`Options::continue_timeout`].
    fn await_continue(
        &mut self,
        mut exchange: Exchange<state::Await100>,
        informational: &mut Vec<(StatusCode, String)>,
    ) -> Result<AfterWait, Error> {
        let until = Instant::now() + self.options.continue_timeout;
        let mut head = None;
        loop {
            let (used, event) = exchange.try_response(&self.buf)?;
            self.buf.drain(..used);
            match event {
                Some(ResponseEvent::Informational(interim)) => {
                    informational.push((interim.status(), interim.reason_lossy().into_owned()));
                    if exchange.got_continue() {
                        break;
                    }
                    continue;
                }
                Some(ResponseEvent::Final(h)) => {
                    head = Some(h);
                    break;
                }
                None => {}
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.fill_within(left, "100 continue")? {
                Fill::Data => {}
                Fill::TimedOut => break,
                Fill::Eof => return Err(exchange.eof(&self.buf).into()),
            }
        }
        Ok(match (exchange.proceed()?, head) {
            (Await100Result::SendBody(exchange), _) => AfterWait::Send(exchange),
            (Await100Result::RecvBody(exchange), Some(head)) => {
                AfterWait::Answered(Received::Body(exchange, head))
            }
            (Await100Result::Done(done), Some(head)) => {
                AfterWait::Answered(Received::Done(done, head))
            }
            _ => {
                return Err(Error::Contract(
                    "a final response whose head was never reported",
                ));
            }
        })
    }

    fn recv_head(
        &mut self,
        mut exchange: Exchange<state::RecvHead>,
        informational: &mut Vec<(StatusCode, String)>,
        deadline: Instant,
    ) -> Result<Received, Error> {
        loop {
            let (used, event) = exchange.try_response(&self.buf)?;
            self.buf.drain(..used);
            match event {
                Some(ResponseEvent::Informational(interim)) => {
                    informational.push((interim.status(), interim.reason_lossy().into_owned()));
                }
                Some(ResponseEvent::Final(head)) => {
                    return Ok(match exchange.proceed()? {
                        RecvHeadResult::RecvBody(exchange) => Received::Body(exchange, head),
                        RecvHeadResult::Done(done) => Received::Done(done, head),
                    });
                }
                None => match self.fill(deadline, "response head")? {
                    Fill::Data => {}
                    Fill::Eof => return Err(exchange.eof(&self.buf).into()),
                    Fill::TimedOut => return Err(Error::Timeout("response head")),
                },
            }
        }
    }

    fn recv_body(
        &mut self,
        mut exchange: Exchange<state::RecvBody>,
        sink: &mut Sink,
        deadline: Instant,
    ) -> Result<Exchange<state::Done>, Error> {
        loop {
            let step = exchange.read(&self.buf)?;
            sink.push(&self.buf[step.data.clone()])?;
            self.buf.drain(..step.consumed);
            if step.done {
                break;
            }
            if step.consumed == 0 {
                match self.fill(deadline, "response body")? {
                    Fill::Data => {}
                    Fill::Eof => {
                        exchange.eof()?;
                        break;
                    }
                    Fill::TimedOut => return Err(Error::Timeout("response body")),
                }
            }
        }
        Ok(exchange.proceed()?)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout("request write"),
            _ => Error::Io(e),
        })?;
        self.stream.flush()?;
        Ok(())
    }

    /// One read, unless the exchange's deadline has passed.
    fn fill(&mut self, deadline: Instant, what: &'static str) -> Result<Fill, Error> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(what));
        }
        self.fill_within(left, what)
    }

    /// One read waiting at most `wait` (and at most [`Options::io_timeout`]).
    fn fill_within(&mut self, wait: Duration, what: &'static str) -> Result<Fill, Error> {
        // No shortcut once `eof` is set: reading a closed socket again says
        // so again (0 or a reset), which is what a request on it would see.
        let wait = wait
            .min(self.options.io_timeout)
            .max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(wait))?;
        let mut chunk = vec![0; self.options.read_size.clamp(1, READ_SIZE)];
        // Interrupted reads are retried a bounded number of times.
        let mut result = Err(Error::Timeout(what));
        for _ in 0..16 {
            result = match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    Ok(Fill::Eof)
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Ok(Fill::Data)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(Fill::TimedOut)
                }
                // A reset after the server closed counts as the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    self.eof = true;
                    Ok(Fill::Eof)
                }
                Err(e) => Err(Error::Io(e)),
            };
            break;
        }
        self.stream
            .set_read_timeout(Some(self.options.io_timeout))?;
        result
    }
}

/// Runs one exchange on `stream` (see [`Conn::exchange`]); bytes after the
/// response are dropped. Set the stream's timeouts first, or use [`Conn`].
///
/// # Errors
///
/// As [`Conn::exchange`].
pub fn exchange(
    stream: &mut (impl Transport + ?Sized),
    request: Request,
    body: Option<&[u8]>,
) -> Result<Outcome, Error> {
    Conn::new(stream)?.exchange(request, body)
}

/// Collects the body, removing its content coding on the way.
struct Sink {
    decoder: Option<ContentDecoder>,
    coding: Option<ContentCoding>,
    body: Vec<u8>,
    wire: usize,
    max: usize,
}

impl Sink {
    fn new(head: &ResponseHead, options: &Options) -> Sink {
        let parsed = match head.header("content-encoding") {
            None => Some(ContentCoding::Identity),
            Some(value) => ContentCoding::from_header(value),
        };
        let (coding, decoder) = match parsed {
            Some(ContentCoding::Identity) => (parsed, None),
            Some(coding) if options.decode => {
                (parsed, Some(ContentDecoder::new(coding, &options.limits)))
            }
            // Not decoded: unknown to the codec, or decoding is off.
            _ => (None, None),
        };
        Sink {
            coding,
            decoder,
            body: Vec::new(),
            wire: 0,
            max: options.max_body,
        }
    }

    fn push(&mut self, mut data: &[u8]) -> Result<(), Error> {
        self.wire += data.len();
        let Some(decoder) = &mut self.decoder else {
            return self.keep(data);
        };
        let mut out = vec![0; 64 * 1024];
        // Each round uses input or fills `out`; the body cap bounds the output.
        loop {
            let (used, produced) = decoder.decode(data, &mut out)?;
            data = &data[used..];
            let full = produced == out.len();
            let out_part = &out[..produced];
            if self.body.len() + out_part.len() > self.max {
                return Err(Error::BodyTooLarge(self.max));
            }
            self.body.extend_from_slice(out_part);
            if (used == 0 && produced == 0) || (data.is_empty() && !full) {
                break;
            }
        }
        if !data.is_empty() {
            return Err(Error::Contract("content decoder stopped taking input"));
        }
        Ok(())
    }

    fn keep(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.body.len() + data.len() > self.max {
            return Err(Error::BodyTooLarge(self.max));
        }
        self.body.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        match &mut self.decoder {
            Some(decoder) => Ok(decoder.finish()?),
            None => Ok(()),
        }
    }
}

fn fields<'a>(iter: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<(String, Vec<u8>)> {
    iter.map(|(n, v)| (n.to_owned(), v.to_vec())).collect()
}
