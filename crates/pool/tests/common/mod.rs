//! A test-only HTTP/1.1 driver over a pooled [`Connection`], built on the
//! courier-proto [`Exchange`] (the async sibling of the blocking driver in
//! `tests/src/blocking.rs`, reduced to what these tests need).
//!
//! ```text
//! Prepare ─▶ SendHead ─▶ RecvHead ─▶ [RecvBody] ─▶ Done ─▶ conn.set_reusable(!must_close)
//! ```
//!
//! One request without a body, the whole response read (interim 1xx
//! skipped), everything bounded by [`LIMIT`]. Bytes after the response are
//! not kept: the codec then says the connection must close, so it is never
//! declared reusable with unread bytes in it.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::time::Duration;

use courier_pool::{Connection, Connector, Target};
use courier_proto::http::{Method, StatusCode, Uri};
use courier_proto::{
    AutoHeader, Exchange, Limits, RecvHeadResult, Request, ResponseEvent, SendHeadResult,
    TargetForm,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on one whole exchange, and on waits for a peer (all on loopback).
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// Bytes asked of the connection per read.
const READ_SIZE: usize = 16 * 1024;

/// What went wrong in an exchange (codec, socket, timeout), as text.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response as a test sees it.
#[derive(Debug)]
pub(crate) struct Response {
    /// The final status.
    pub(crate) status: StatusCode,
    /// The header fields in order, names as received.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// The body, transfer coding removed.
    pub(crate) body: Vec<u8>,
    /// The codec's verdict: the connection cannot carry another request.
    pub(crate) must_close: bool,
}

impl Response {
    /// The first value of header `name` (ASCII case-insensitive), as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("<non-utf8>"))
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The pool target of an absolute URL.
pub(crate) fn target(url: &str) -> Target {
    Target::from_uri(&url.parse().unwrap()).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// `GET url` on `conn` (see [`request`]).
pub(crate) async fn get(conn: &mut Connection, url: &str) -> Result<Response, BoxError> {
    request(conn, Method::GET, url).await
}

/// Connects through `connector`, runs `GET url` and releases the connection
/// (kept only if the exchange left it reusable); returns the response and
/// whether the connection was a reused one.
pub(crate) async fn fetch(
    connector: &dyn Connector,
    url: &str,
) -> Result<(Response, bool), BoxError> {
    let mut conn = tokio::time::timeout(LIMIT, connector.connect(&target(url)))
        .await
        .map_err(|_| "connect timed out")??;
    let reused = conn.is_reused();
    let response = get(&mut conn, url).await?;
    conn.release();
    Ok((response, reused))
}

/// Sends `method url` (no body) on `conn` and reads the whole response,
/// within [`LIMIT`].
///
/// Through a forwarding proxy ([`ProxyInfo::uses_absolute_form`]) the
/// request goes in absolute-form with the proxy's `Proxy-Authorization`.
/// When the exchange is over, `conn` is declared reusable exactly when the
/// codec allows it.
///
/// [`ProxyInfo::uses_absolute_form`]: courier_pool::ProxyInfo::uses_absolute_form
pub(crate) async fn request(
    conn: &mut Connection,
    method: Method,
    url: &str,
) -> Result<Response, BoxError> {
    tokio::time::timeout(LIMIT, exchange(conn, method, url))
        .await
        .map_err(|_| format!("{url}: no complete response within {LIMIT:?}"))?
}

async fn exchange(conn: &mut Connection, method: Method, url: &str) -> Result<Response, BoxError> {
    let uri: Uri = url.parse()?;
    // Bodies are compared byte for byte with files: no content coding.
    let mut request = Request::new(method, uri).skip_auto_header(AutoHeader::AcceptEncoding);
    if let Some(proxy) = conn.proxy().filter(|p| p.uses_absolute_form()) {
        request = request.target_form(TargetForm::Absolute);
        if let Some(value) = proxy.authorization() {
            request = request.header("Proxy-Authorization", value.as_bytes());
        }
    }

    // SendHead: write the head out.
    let mut exchange = Exchange::new(request, Limits::default()).proceed()?;
    conn.write_all(exchange.head()).await?;
    exchange.consume(exchange.head().len());
    conn.flush().await?;
    let SendHeadResult::RecvHead(mut exchange) = exchange.proceed()? else {
        return Err("the request unexpectedly has a body".into());
    };

    // RecvHead: every byte received so far goes in, so bytes after the
    // response are seen.
    let mut buf = Vec::new();
    let head = loop {
        let (used, event) = exchange.try_response(&buf)?;
        buf.drain(..used);
        match event {
            Some(ResponseEvent::Final(head)) => break head,
            Some(ResponseEvent::Informational(_)) => continue,
            None => {}
        }
        if fill(conn, &mut buf).await? == 0 {
            return Err(exchange.eof(&buf).into());
        }
    };

    // RecvBody, until the codec says the body is complete.
    let mut body = Vec::new();
    let done = match exchange.proceed()? {
        RecvHeadResult::Done(done) => done,
        RecvHeadResult::RecvBody(mut exchange) => loop {
            let step = exchange.read(&buf)?;
            body.extend_from_slice(&buf[step.data.clone()]);
            buf.drain(..step.consumed);
            if step.done {
                break exchange.proceed()?;
            }
            if step.consumed == 0 && fill(conn, &mut buf).await? == 0 {
                exchange.eof()?;
                break exchange.proceed()?;
            }
        },
    };
    conn.set_reusable(!done.must_close());
    Ok(Response {
        status: head.status(),
        headers: head
            .fields()
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_vec()))
            .collect(),
        body,
        must_close: done.must_close(),
    })
}

/// One read from `conn` appended to `buf`; the count read (0 at EOF).
async fn fill(conn: &mut Connection, buf: &mut Vec<u8>) -> Result<usize, BoxError> {
    let len = buf.len();
    buf.resize(len + READ_SIZE, 0);
    let n = conn.read(&mut buf[len..]).await;
    buf.truncate(len + *n.as_ref().unwrap_or(&0));
    Ok(n?)
}
