//! Sending a request: one exchange over a pooled connection, the retry on a
//! stale kept-alive connection, and the redirect loop.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use courier_pool::{ConnectOptions, Connection, Scheme, Target};
use courier_proto::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use courier_proto::{
    AutoHeader, Await100Result, Compression, ContentCoding, Exchange, RecvHeadResult, Request,
    ResponseEvent, ResponseHead, SendHeadResult, TargetForm, state,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use url::Url;

use crate::body::{Body, Source};
use crate::content::{Content, Deadlines, io_error};
use crate::error::{Error, Kind, Result, TimeoutPhase};
use crate::redirect;
use crate::response::ClientResponse;
use crate::session::SessionInner;
use crate::timeouts::{EXPECT_CONTINUE_TIMEOUT, Timeouts};

/// Bodies up to this size (16 KiB) go out in one write with the head.
const COALESCE_LIMIT: usize = 16 * 1024;

/// The most bytes written to the socket at once for a large body (64 KiB):
/// larger writes measured slower on Linux loopback (the kernel copies a
/// large write in one go before the reader can start).
const WRITE_CHUNK: usize = 64 * 1024;

/// The first read buffer for a response head (4 KiB: most heads, and the
/// small bodies that come with them, fit); it grows as needed, up to the
/// codec's head limit. It is held only while a request is in flight, so
/// with many requests in flight it is most of what each one costs.
const HEAD_BUFFER: usize = 4 * 1024;

/// How much of a redirect response's body is read to keep its connection
/// (64 KiB); a longer body closes the connection instead.
pub const REDIRECT_BODY_LIMIT: u64 = 64 * 1024;

/// The "deadline" of a request without a total timeout: about 30 years.
const NO_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 24 * 3600);

/// Everything one request needs, after the builder validated it.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    /// Without userinfo; the query holds the params.
    pub(crate) url: Url,
    /// The user's headers (session defaults merged).
    pub(crate) headers: HeaderMap,
    /// `Authorization` from `BasicAuth` (the request's, the URL's or the
    /// session's), for the first origin only.
    pub(crate) auth: Option<HeaderValue>,
    /// The request's own cookies (`name=value; ...`), for the first origin only.
    pub(crate) cookies: Option<String>,
    pub(crate) body: Option<Body>,
    /// The body's type, sent unless the user set or skipped `Content-Type`.
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) skip: Vec<AutoHeader>,
    pub(crate) version: Version,
    pub(crate) compress: Option<Compression>,
    pub(crate) chunked: Option<usize>,
    pub(crate) expect100: bool,
    pub(crate) read_until_eof: bool,
    pub(crate) allow_redirects: bool,
    pub(crate) max_redirects: usize,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_body_size: u64,
    pub(crate) auto_decompress: bool,
    /// A WebSocket handshake: through a proxy it needs a tunnel, and a 101
    /// answer keeps its connection for the new protocol.
    pub(crate) upgrade: bool,
}

/// Sends `p`, following redirects, within the total timeout.
pub(crate) async fn execute(
    session: &SessionInner,
    mut p: Box<Prepared>,
) -> Result<ClientResponse> {
    let deadlines = Deadlines {
        total: p.timeouts.get_total().map(|d| (Instant::now() + d, d)),
        read: p.timeouts.get_read(),
    };
    // One await point for both cases: a request without a total timeout
    // gets a deadline nobody reaches (tokio clamps it), so that the run
    // future exists once in this future, not once per branch.
    let (at, limit) = deadlines
        .total
        .unwrap_or_else(|| (Instant::now() + NO_DEADLINE, NO_DEADLINE));
    let result = tokio::time::timeout_at(at, run(session, &mut p, deadlines))
        .await
        .unwrap_or_else(|_| Err(Error::timeout(TimeoutPhase::Total, limit)));
    // The URL of the hop that failed (redirects change it).
    result.map_err(|e| e.with_url(&p.url))
}

async fn run(
    session: &SessionInner,
    p: &mut Prepared,
    deadlines: Deadlines,
) -> Result<ClientResponse> {
    let mut history: Vec<ClientResponse> = Vec::new();
    loop {
        session.hooks.run_request(p);
        let body = p.body.take();
        let replay = body.as_ref().and_then(Body::try_clone);
        let had_body = body.is_some();
        let mut response = send_with_retry(
            session,
            p,
            body,
            replay.as_ref().and_then(Body::try_clone),
            deadlines,
        )
        .await
        .map_err(|e| e.with_url(&p.url))?;
        session.store_cookies(&response);
        session.hooks.run_response(&response);

        let status = response.status();
        if !p.allow_redirects || !redirect::is_redirect(status) {
            response.set_history(history);
            return Ok(response);
        }
        let Some(location) = response.raw_headers().get("location") else {
            response.set_history(history);
            return Ok(response);
        };
        let next = redirect::resolve(&p.url, location)?;
        history.push(response);
        if let Some(last) = history.last_mut() {
            // Boxed: the rare paths stay out of every request's future.
            Box::pin(last.buffer_body(REDIRECT_BODY_LIMIT)).await;
        }
        if history.len() >= p.max_redirects {
            return Err(Error::new(Kind::TooManyRedirects(history), None));
        }

        let (method, keep_body) = redirect::next_method(status, &p.method);
        if keep_body && had_body {
            p.body = Some(replay.ok_or_else(|| {
                Error::redirect(format!(
                    "a {} redirect must resend the body, but it was a one-shot stream",
                    status.as_u16()
                ))
            })?);
        } else if !keep_body {
            redirect::strip_body_headers(&mut p.headers);
            p.content_type = None;
            p.compress = None;
            p.chunked = None;
            p.expect100 = false;
        }
        if !redirect::same_origin(&p.url, &next) {
            redirect::strip_credentials(&mut p.headers);
            p.auth = None;
            p.cookies = None;
        }
        p.method = method;
        p.url = next;
    }
}

/// How an exchange failed.
enum Failure {
    /// The kept-alive connection was closed by the server before any byte
    /// of a response arrived: the request may be sent again.
    Stale(Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Fatal(err)
    }
}

async fn send_with_retry(
    session: &SessionInner,
    p: &Prepared,
    body: Option<Body>,
    replay: Option<Body>,
    deadlines: Deadlines,
) -> Result<ClientResponse> {
    let can_retry = body.is_none() || replay.is_some();
    // Only the error outlives the first attempt (a match on the awaited
    // result would keep the whole result alive across the second one).
    let err = match send_once(session, p, body, deadlines, false).await {
        Ok(response) => return Ok(response),
        Err(Failure::Stale(err)) if can_retry => err,
        Err(Failure::Stale(err) | Failure::Fatal(err)) => return Err(err),
    };
    tracing::debug!(url = %p.url, error = %err, "kept-alive connection was closed; retrying once on a new one");
    match Box::pin(send_once(session, p, replay, deadlines, true)).await {
        Ok(response) => Ok(response),
        Err(Failure::Stale(err) | Failure::Fatal(err)) => Err(err),
    }
}

/// The connection target of a URL.
pub(crate) fn target_of(url: &Url) -> Result<Target> {
    let scheme = match url.scheme() {
        "http" | "ws" => Scheme::Http,
        "https" | "wss" => Scheme::Https,
        other => return Err(Error::builder(format!("unsupported URL scheme {other:?}"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::builder("URL has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::builder("URL has no port"))?;
    Target::new(scheme, host, port).map_err(Error::builder)
}

/// The request head for one hop, before the connection is known.
fn prepare(
    session: &SessionInner,
    p: &Prepared,
    body: Option<&Body>,
) -> Result<Exchange<state::Prepare>> {
    let uri = p.url[..url::Position::AfterQuery]
        .parse()
        .map_err(Error::builder)?;
    let mut request = Request::new(p.method.clone(), uri).version(p.version);
    for (name, value) in &p.headers {
        if name != header::COOKIE {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some(auth) = &p.auth {
        request = request.header("authorization", auth.as_bytes());
    }
    if let Some(cookie) = cookie_header(session, p) {
        request = request.header("cookie", cookie);
    }
    for skip in &p.skip {
        request = request.skip_auto_header(*skip);
    }
    if let Some(content_type) = &p.content_type {
        request = request.content_type(content_type.as_bytes());
    }
    match body {
        Some(body) => {
            request = match (p.chunked, body.len()) {
                (Some(size), _) => request.chunked().chunk_size(size),
                (None, Some(len)) => request.content_length(len),
                (None, None) => request.chunked(),
            };
        }
        None if matches!(p.method, Method::POST | Method::PUT | Method::PATCH) => {
            request = request.content_length(0);
        }
        None => {}
    }
    if let Some(coding) = p.compress {
        request = request.compress(coding);
    }
    if session.connector.config().force_close() {
        request = request.keep_alive(false);
    }
    request = request
        .expect_continue(p.expect100 && body.is_some())
        .read_until_eof(p.read_until_eof);
    let exchange = Exchange::new(request, session.limits);
    Ok(exchange)
}

/// The `Cookie` header: the user's, the request's own cookies (first
/// origin only) and the jar's, in one field (RFC 6265 §5.4).
fn cookie_header(session: &SessionInner, p: &Prepared) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for value in p.headers.get_all(header::COOKIE) {
        parts.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if let Some(own) = &p.cookies {
        parts.push(own.clone());
    }
    if let Some(jar) = session.jar_cookies(&p.url) {
        parts.push(jar);
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

async fn send_once(
    session: &SessionInner,
    p: &Prepared,
    body: Option<Body>,
    deadlines: Deadlines,
    fresh: bool,
) -> std::result::Result<ClientResponse, Failure> {
    let mut exchange = prepare(session, p, body.as_ref())?;
    let target = target_of(&p.url)?.with_tunnel(p.upgrade);
    let mut options = ConnectOptions::default().fresh(fresh);
    options.conn_timeout = p.timeouts.get_connect();
    options.acquire_timeout = p.timeouts.get_pool();
    let mut conn = session
        .connector
        .connect_with(&target, options)
        .await
        .map_err(Error::from)?;
    if let Some(proxy) = conn.proxy()
        && proxy.uses_absolute_form()
    {
        exchange.target_form(TargetForm::Absolute);
        if let Some(auth) = proxy.authorization() {
            exchange.header("proxy-authorization", auth.as_bytes());
        }
    }
    let exchange = exchange.proceed().map_err(Error::builder)?;
    let reused = conn.is_reused();
    let stale = |err: Error| {
        if reused {
            Failure::Stale(err)
        } else {
            Failure::Fatal(err)
        }
    };

    let mut buf = BytesMut::new();
    let written = write_request(&mut conn, exchange, body, &mut buf, deadlines).await;
    let head_ex = match written {
        Ok(state) => state,
        Err(WriteFailure::Io(err)) => return Err(stale(err)),
        Err(WriteFailure::Other(err)) => return Err(Failure::Fatal(err)),
        Err(WriteFailure::Broken(err, mut ex)) => {
            // The server stopped reading; its answer may be waiting.
            let read = read_head(&mut conn, &mut ex, &mut buf, deadlines.read);
            match Box::pin(tokio::time::timeout(EARLY_RESPONSE_WAIT, read)).await {
                Ok(Ok(head)) => HeadState::Early(head, ex.proceed().map_err(Error::payload)?),
                _ => return Err(stale(err)),
            }
        }
    };
    let (head, next) = match head_ex {
        HeadState::Recv(mut ex) => {
            let head = read_head(&mut conn, &mut ex, &mut buf, deadlines.read).await;
            match head {
                Ok(head) => (head, ex.proceed().map_err(Error::payload)?),
                Err(HeadFailure::Closed(err)) => return Err(stale(err)),
                Err(HeadFailure::Other(err)) => return Err(Failure::Fatal(err)),
            }
        }
        HeadState::Early(head, next) => (head, next),
    };
    Ok(build_response(
        session, p, conn, head, next, buf, deadlines,
    )?)
}

fn build_response(
    session: &SessionInner,
    p: &Prepared,
    mut conn: Connection,
    head: ResponseHead,
    next: RecvHeadResult,
    buf: BytesMut,
    deadlines: Deadlines,
) -> Result<ClientResponse> {
    let url = Arc::new(p.url.clone());
    if p.upgrade && head.status() == StatusCode::SWITCHING_PROTOCOLS {
        // The bytes after the head (`buf`) already belong to the new
        // protocol; the connection leaves the pool with them.
        let mut response = ClientResponse::new(
            head,
            p.method.clone(),
            url,
            Content::empty(),
            p.max_body_size,
        );
        response.set_upgraded(conn, buf);
        return Ok(response);
    }
    let content = match next {
        RecvHeadResult::Done(done) => {
            conn.set_reusable(!done.must_close());
            conn.release();
            Content::empty()
        }
        RecvHeadResult::RecvBody(exchange) => {
            let coding = if p.auto_decompress && cfg!(feature = "gzip") {
                content_coding(&head)
            } else {
                None
            };
            Content::live(
                conn,
                exchange,
                buf,
                coding,
                &session.limits,
                deadlines,
                Arc::clone(&url),
            )
        }
    };
    Ok(ClientResponse::new(
        head,
        p.method.clone(),
        url,
        content,
        p.max_body_size,
    ))
}

/// The content coding to remove, from every `Content-Encoding` field (a
/// list split over several fields is one list, RFC 9110 §5.3).
fn content_coding(head: &ResponseHead) -> Option<ContentCoding> {
    let mut values = head.fields().get_all("content-encoding");
    let first = values.next()?;
    match values.next() {
        None => ContentCoding::from_header(first),
        Some(second) => {
            let mut joined = first.to_vec();
            for value in std::iter::once(second).chain(values) {
                joined.push(b',');
                joined.extend_from_slice(value);
            }
            ContentCoding::from_header(&joined)
        }
    }
}

enum WriteFailure {
    /// Writing to the connection failed (it may have been closed while idle).
    Io(Error),
    /// Writing failed after the head went out: the server may have answered
    /// already (a `413` refusing an upload) and closed; its answer may still
    /// be read with this exchange.
    Broken(Error, Box<Exchange<state::RecvHead>>),
    Other(Error),
}

/// How long a request whose upload the server cut short waits for the
/// server's answer to arrive (1 s): it is normally already buffered.
const EARLY_RESPONSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

enum HeadState {
    /// Read the head next.
    Recv(Exchange<state::RecvHead>),
    /// The final head arrived while waiting for `100 Continue`.
    Early(ResponseHead, RecvHeadResult),
}

async fn write_all(conn: &mut Connection, bytes: &[u8]) -> std::result::Result<(), WriteFailure> {
    conn.write_all(bytes)
        .await
        .map_err(|e| WriteFailure::Io(io_error(e)))
}

/// Writes the head and the body; returns the exchange ready for the
/// response head and any bytes already read.
async fn write_request(
    conn: &mut Connection,
    mut exchange: Exchange<state::SendHead>,
    body: Option<Body>,
    buf: &mut BytesMut,
    deadlines: Deadlines,
) -> std::result::Result<HeadState, WriteFailure> {
    let mut out = Vec::with_capacity(512);
    exchange.write(&mut out);
    let step = exchange
        .proceed()
        .map_err(|e| WriteFailure::Other(Error::builder(e)))?;
    let mut send = match step {
        SendHeadResult::RecvHead(ex) => {
            return match write_all(conn, &out).await {
                Ok(()) => Ok(HeadState::Recv(ex)),
                Err(WriteFailure::Io(err)) => Err(WriteFailure::Broken(err, Box::new(ex))),
                Err(other) => Err(other),
            };
        }
        SendHeadResult::SendBody(send) => send,
        SendHeadResult::Await100(mut wait) => {
            write_all(conn, &out).await?;
            conn.flush()
                .await
                .map_err(|e| WriteFailure::Io(io_error(e)))?;
            out.clear();
            let waited = Box::pin(tokio::time::timeout(
                EXPECT_CONTINUE_TIMEOUT,
                await_continue(conn, &mut wait, buf, deadlines.read),
            ))
            .await;
            match waited {
                Ok(Ok(Some(head))) => {
                    let next = match wait
                        .proceed()
                        .map_err(|e| WriteFailure::Other(Error::payload(e)))?
                    {
                        Await100Result::RecvBody(ex) => RecvHeadResult::RecvBody(ex),
                        Await100Result::Done(done) => RecvHeadResult::Done(done),
                        Await100Result::SendBody(_) => {
                            return Err(WriteFailure::Other(Error::payload(
                                "final response expected",
                            )));
                        }
                    };
                    return Ok(HeadState::Early(head, next));
                }
                Ok(Ok(None)) | Err(_) => {}
                Ok(Err(HeadFailure::Closed(err))) => return Err(WriteFailure::Io(err)),
                Ok(Err(HeadFailure::Other(err))) => return Err(WriteFailure::Other(err)),
            }
            match wait
                .proceed()
                .map_err(|e| WriteFailure::Other(Error::payload(e)))?
            {
                Await100Result::SendBody(send) => send,
                _ => {
                    return Err(WriteFailure::Other(Error::payload(
                        "unexpected final response",
                    )));
                }
            }
        }
    };
    match send_body(conn, &mut send, &mut out, body).await {
        Ok(()) => {}
        Err(WriteFailure::Io(err)) => {
            return Err(WriteFailure::Broken(err, Box::new(send.abandon())));
        }
        Err(other) => return Err(other),
    }
    let ex = send
        .finish(&mut out)
        .map_err(|e| WriteFailure::Other(Error::new(Kind::RequestBody, Some(Box::new(e)))))?;
    match write_all(conn, &out).await {
        Ok(()) => Ok(HeadState::Recv(ex)),
        Err(WriteFailure::Io(err)) => Err(WriteFailure::Broken(err, Box::new(ex))),
        Err(other) => Err(other),
    }
}

/// Writes the body (what of the head is still in `out` goes first).
async fn send_body(
    conn: &mut Connection,
    send: &mut Exchange<state::SendBody>,
    out: &mut Vec<u8>,
    body: Option<Body>,
) -> std::result::Result<(), WriteFailure> {
    let body_err = |e: courier_proto::Error| {
        WriteFailure::Other(Error::new(Kind::RequestBody, Some(Box::new(e))))
    };
    match body.map(Body::into_source) {
        None => {}
        Some(Source::Full(bytes)) => {
            if bytes.len() <= COALESCE_LIMIT {
                send.write(&bytes, out).map_err(body_err)?;
            } else if send.is_direct() {
                // No copy: the head goes out, then the caller's bytes.
                send.write_direct(bytes.len()).map_err(body_err)?;
                write_all(conn, out).await?;
                out.clear();
                for piece in bytes.chunks(WRITE_CHUNK) {
                    write_all(conn, piece).await?;
                }
            } else {
                write_all(conn, out).await?;
                out.clear();
                let mut rest = bytes;
                while !rest.is_empty() {
                    let piece = rest.split_to(rest.len().min(WRITE_CHUNK));
                    send.write(&piece, out).map_err(body_err)?;
                    write_all(conn, out).await?;
                    out.clear();
                }
            }
        }
        Some(Source::Stream(mut stream)) => {
            write_all(conn, out).await?;
            out.clear();
            while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                let chunk: Bytes = chunk
                    .map_err(|e| WriteFailure::Other(Error::new(Kind::RequestBody, Some(e))))?;
                if send.is_direct() && chunk.len() > COALESCE_LIMIT {
                    send.write_direct(chunk.len()).map_err(body_err)?;
                    write_all(conn, out).await?;
                    out.clear();
                    for piece in chunk.chunks(WRITE_CHUNK) {
                        write_all(conn, piece).await?;
                    }
                    continue;
                }
                send.write(&chunk, out).map_err(body_err)?;
                if out.len() >= COALESCE_LIMIT {
                    write_all(conn, out).await?;
                    out.clear();
                }
            }
        }
    }
    Ok(())
}

enum HeadFailure {
    /// The connection closed before any byte of a response.
    Closed(Error),
    Other(Error),
}

/// Reads one chunk from the connection, within the read timeout. Returns
/// the bytes read (0 at EOF).
async fn fill(
    conn: &mut Connection,
    buf: &mut BytesMut,
    read_timeout: Option<std::time::Duration>,
) -> std::result::Result<usize, HeadFailure> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(buf.capacity().clamp(HEAD_BUFFER, 64 * 1024));
    }
    let read = conn.read_buf(buf);
    let n = match read_timeout {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .map_err(|_| HeadFailure::Other(Error::timeout(TimeoutPhase::Read, limit)))?,
        None => read.await,
    };
    n.map_err(|e| {
        let err = io_error(e);
        if buf.is_empty() && err.is_disconnected() {
            HeadFailure::Closed(err)
        } else {
            HeadFailure::Other(err)
        }
    })
}

/// Reads interim heads while a body waits for `100 Continue`. `None` when
/// 100 arrived; the final head when the server answered at once.
async fn await_continue(
    conn: &mut Connection,
    wait: &mut Exchange<state::Await100>,
    buf: &mut BytesMut,
    read_timeout: Option<std::time::Duration>,
) -> std::result::Result<Option<ResponseHead>, HeadFailure> {
    loop {
        match wait
            .try_response(buf)
            .map_err(|e| HeadFailure::Other(Error::payload(e)))?
        {
            (used, Some(ResponseEvent::Informational(_))) => {
                buf.advance(used);
                if wait.got_continue() {
                    return Ok(None);
                }
            }
            (used, Some(ResponseEvent::Final(head))) => {
                buf.advance(used);
                return Ok(Some(head));
            }
            (_, None) => {
                if fill(conn, buf, read_timeout).await? == 0 {
                    let err = wait.eof(buf);
                    return Err(closed_or_payload(err));
                }
            }
        }
    }
}

fn closed_or_payload(err: courier_proto::Error) -> HeadFailure {
    if matches!(err, courier_proto::Error::ClosedBeforeResponse) {
        HeadFailure::Closed(Error::new(Kind::Disconnected, Some(Box::new(err))))
    } else {
        HeadFailure::Other(Error::new(Kind::Disconnected, Some(Box::new(err))))
    }
}

/// Reads the final response head (skipping 1xx).
async fn read_head(
    conn: &mut Connection,
    ex: &mut Exchange<state::RecvHead>,
    buf: &mut BytesMut,
    read_timeout: Option<std::time::Duration>,
) -> std::result::Result<ResponseHead, HeadFailure> {
    loop {
        match ex
            .try_response(buf)
            .map_err(|e| HeadFailure::Other(Error::payload(e)))?
        {
            (used, Some(ResponseEvent::Informational(_))) => buf.advance(used),
            (used, Some(ResponseEvent::Final(head))) => {
                buf.advance(used);
                return Ok(head);
            }
            (_, None) => {
                if fill(conn, buf, read_timeout).await? == 0 {
                    return Err(closed_or_payload(ex.eof(buf)));
                }
            }
        }
    }
}
