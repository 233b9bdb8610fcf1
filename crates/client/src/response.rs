//! [`ClientResponse`]: status, headers, history, and the body.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use courier_pool::Connection;
use std::sync::{Arc, OnceLock};

use courier_proto::http::header::{HeaderName, HeaderValue};
use courier_proto::http::{HeaderMap, Method, StatusCode, Version};
use courier_proto::{Fields, ResponseHead};
use url::Url;

use crate::content::Content;
use crate::error::{Error, Kind, Result};
use crate::text;

/// The default most bytes a buffered read ([`ClientResponse::read`],
/// [`text`](ClientResponse::text), [`json`](ClientResponse::json)) accepts:
/// 64 MiB.
///
/// Buffered reads are for API answers and pages; anything larger should be
/// streamed through [`ClientResponse::content`], which has no cap. The
/// limit keeps a hostile or broken server from exhausting memory through a
/// call that looks harmless. Change it with
/// `ClientSessionBuilder::max_body_size` or `RequestBuilder::max_body_size`.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 64 * 1024 * 1024;

/// How much of an unread body [`ClientResponse::release`] reads to keep the
/// connection (1 MiB); past it the connection is closed instead, as
/// reading on would cost more than a new connection.
pub const RELEASE_DRAIN_LIMIT: u64 = 1024 * 1024;

/// A response (aiohttp `ClientResponse`).
///
/// The head is read; the body waits on the connection until it is read
/// ([`read`](Self::read), [`text`](Self::text), [`json`](Self::json)),
/// streamed ([`content`](Self::content)), drained ([`release`](Self::release))
/// or dropped. The connection returns to the pool only when the body was
/// read to its end and the server allowed keep-alive; dropping an
/// unfinished response closes it.
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// let session = courier_client::ClientSession::new();
/// let mut resp = session.get("http://127.0.0.1:8080/").send().await?;
/// println!("{} {:?}", resp.status(), resp.headers().get("content-type"));
/// let body = resp.text().await?;
/// # drop(body); Ok(()) }
/// ```
pub struct ClientResponse {
    inner: Box<Inner>,
}

/// The response's state, boxed so that handing a response back through
/// the layers of `send` moves a pointer.
struct Inner {
    head: ResponseHead,
    /// Built from the raw fields on first use: most callers never ask.
    headers: OnceLock<HeaderMap>,
    method: Method,
    /// Shared with the body stream, which names it in its errors.
    url: Arc<Url>,
    history: Vec<ClientResponse>,
    content: Content,
    body: Option<Bytes>,
    max_body_size: u64,
    /// After `101 Switching Protocols` to a WebSocket handshake: the
    /// connection, out of the pool, and the bytes read past the head.
    upgraded: Option<(Connection, BytesMut)>,
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("status", &self.status())
            .field("version", &self.version())
            .field("method", &self.inner.method)
            .field("url", &self.inner.url.as_str())
            .field("headers", self.headers())
            .field("history", &self.inner.history.len())
            .finish_non_exhaustive()
    }
}

impl ClientResponse {
    pub(crate) fn new(
        head: ResponseHead,
        method: Method,
        url: Arc<Url>,
        content: Content,
        max_body_size: u64,
    ) -> ClientResponse {
        ClientResponse {
            inner: Box::new(Inner {
                head,
                headers: OnceLock::new(),
                method,
                url,
                history: Vec::new(),
                content,
                body: None,
                max_body_size,
                upgraded: None,
            }),
        }
    }

    /// Keeps the connection of a `101 Switching Protocols` answer.
    pub(crate) fn set_upgraded(&mut self, conn: Connection, rest: BytesMut) {
        self.inner.upgraded = Some((conn, rest));
    }

    /// Takes the upgraded connection and the bytes after the head.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn take_upgraded(&mut self) -> Option<(Connection, BytesMut)> {
        self.inner.upgraded.take()
    }

    pub(crate) fn set_history(&mut self, history: Vec<ClientResponse>) {
        self.inner.history = history;
    }

    /// Reads a redirect's body (up to `limit`) so that its connection can
    /// be reused and the body stays readable in the history.
    pub(crate) async fn buffer_body(&mut self, limit: u64) {
        match self.inner.content.read_to_end(limit).await {
            Ok(bytes) => self.inner.body = Some(bytes),
            Err(_) => self.inner.content.close(),
        }
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.inner.head.version()
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.inner.head.status()
    }

    /// The reason phrase as sent (`OK`, `Not Found`), decoded as Latin-1
    /// where it is not ASCII.
    pub fn reason(&self) -> Cow<'_, str> {
        self.inner.head.reason_lossy()
    }

    /// The host of the URL that answered.
    pub fn host(&self) -> &str {
        self.inner.url.host_str().unwrap_or_default()
    }

    /// The method of the request that got this response (after redirects,
    /// the last one's).
    pub fn method(&self) -> &Method {
        &self.inner.method
    }

    /// The URL that answered (after redirects, the last one), without
    /// userinfo.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The connection the body is still being read from; `None` once the
    /// body is complete (the connection went back to the pool or was
    /// closed).
    pub fn connection(&self) -> Option<&Connection> {
        match &self.inner.upgraded {
            Some((conn, _)) => Some(conn),
            None => self.inner.content.connection(),
        }
    }

    /// The header fields. Repeated fields keep all their values.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers.get_or_init(|| {
            let fields = self.inner.head.fields();
            let mut map = HeaderMap::with_capacity(fields.len());
            for (name, value) in fields.iter() {
                // The codec admits only what `http` accepts; skip anything
                // else rather than fail.
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value),
                ) {
                    map.append(name, value);
                }
            }
            map
        })
    }

    /// The first value of header `name` as raw bytes, without building the
    /// header map.
    fn raw_header(&self, name: &str) -> Option<&[u8]> {
        self.inner.head.header(name)
    }

    /// The header fields exactly as received: names in their original
    /// case, values as bytes, in order (aiohttp `raw_headers`).
    ///
    /// ```no_run
    /// # async fn run(resp: courier_client::ClientResponse) {
    /// for (name, value) in resp.raw_headers().iter() {
    ///     println!("{name}: {}", String::from_utf8_lossy(value));
    /// }
    /// # }
    /// ```
    pub fn raw_headers(&self) -> &Fields {
        self.inner.head.fields()
    }

    /// The cookies this response sets (its `Set-Cookie` fields), whether or
    /// not the session's jar accepted them.
    #[cfg(feature = "cookies")]
    pub fn cookies(&self) -> Vec<crate::cookies::Cookie> {
        self.inner
            .head
            .fields()
            .get_all("set-cookie")
            .filter_map(crate::cookies::parse_set_cookie)
            .collect()
    }

    /// The responses of the redirects followed to get here, oldest first.
    /// Their bodies were read (up to 64 KiB) to keep the connection; read
    /// them through [`history_mut`](Self::history_mut).
    pub fn history(&self) -> &[ClientResponse] {
        &self.inner.history
    }

    /// The redirect responses, mutable, to [`read`](Self::read) their
    /// bodies.
    pub fn history_mut(&mut self) -> &mut [ClientResponse] {
        &mut self.inner.history
    }

    /// `Content-Length`, when the server sent a valid one.
    pub fn content_length(&self) -> Option<u64> {
        std::str::from_utf8(self.raw_header("content-length")?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The media type of `Content-Type`, lowercase, without parameters
    /// (aiohttp `content_type`); `application/octet-stream` when absent.
    pub fn content_type(&self) -> Cow<'_, str> {
        match self.raw_header("content-type") {
            Some(value) => {
                let value = String::from_utf8_lossy(value);
                let mime = value.split(';').next().unwrap_or_default().trim();
                Cow::Owned(mime.to_ascii_lowercase())
            }
            None => Cow::Borrowed("application/octet-stream"),
        }
    }

    /// The body as a stream (aiohttp `content`): see [`Content`]. Reads
    /// through it are not capped; what was already read by
    /// [`read`](Self::read) is not seen again.
    pub fn content(&mut self) -> &mut Content {
        if let Some(body) = self.inner.body.take() {
            self.inner.content = Content::done_with(body);
        }
        &mut self.inner.content
    }

    /// The body stream, owning the response's connection.
    pub fn into_content(mut self) -> Content {
        self.content();
        self.inner.content
    }

    /// The whole body (aiohttp `read()`), decoded from gzip or deflate
    /// unless that was turned off. Later calls return the same bytes.
    ///
    /// # Errors
    ///
    /// A payload error for a malformed or truncated body; a body larger
    /// than the buffered-read limit ([`DEFAULT_MAX_BODY_SIZE`] unless
    /// changed) is refused with [`Error::is_body_too_large`], without
    /// reading it when `Content-Length` already says so.
    pub async fn read(&mut self) -> Result<Bytes> {
        if let Some(body) = &self.inner.body {
            return Ok(body.clone());
        }
        let limit = self.inner.max_body_size;
        let declared = self.content_length().filter(|_| !self.is_encoded());
        if declared.is_some_and(|len| len > limit) {
            self.inner.content.close();
            return Err(Error::new(Kind::BodyTooLarge(limit), None).with_url(&self.inner.url));
        }
        let body = self.inner.content.read_to_end(limit).await?;
        self.inner.body = Some(body.clone());
        Ok(body)
    }

    fn is_encoded(&self) -> bool {
        self.raw_header("content-encoding").is_some()
    }

    /// The body as text (aiohttp `text()`): the charset of `Content-Type`,
    /// else a byte-order mark, else UTF-8 for JSON, else a guess by
    /// chardetng. Malformed sequences become U+FFFD.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub async fn text(&mut self) -> Result<String> {
        let body = self.read().await?;
        let content_type = self.raw_header("content-type");
        Ok(text::decode(&body, content_type).text)
    }

    /// The body as text in the encoding named by `label` (`"utf-8"`,
    /// `"latin1"`, `"windows-1251"`, any WHATWG label).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), and a decode error for an unknown label.
    pub async fn text_with_encoding(&mut self, label: &str) -> Result<String> {
        let body = self.read().await?;
        let decoded = text::decode_with_label(&body, label).map_err(Error::decode)?;
        Ok(decoded.text)
    }

    /// The body parsed as JSON into `T` (aiohttp `json()`).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); a decode error when `Content-Type` is not
    /// JSON (`application/json` or `*/*+json`; use
    /// [`json_any_content_type`](Self::json_any_content_type) to skip the
    /// check) or the body is not valid JSON for `T`.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let content_type = self.content_type();
        if !is_json(&content_type) {
            let message =
                format!("attempt to decode JSON with unexpected content type {content_type:?}");
            return Err(Error::decode(message).with_url(&self.inner.url));
        }
        self.json_any_content_type().await
    }

    /// [`json`](Self::json) without the `Content-Type` check (aiohttp
    /// `json(content_type=None)`).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), and a decode error for invalid JSON.
    #[cfg(feature = "json")]
    pub async fn json_any_content_type<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let body = self.read().await?;
        serde_json::from_slice(&body).map_err(|e| Error::decode(e).with_url(&self.inner.url))
    }

    /// Reads the rest of the body (up to [`RELEASE_DRAIN_LIMIT`]) so that
    /// the connection can go back to the pool, and forgets it (aiohttp
    /// `release()`). A longer body closes the connection instead.
    pub async fn release(&mut self) {
        if self.inner.body.is_none() {
            self.inner.content.drain(RELEASE_DRAIN_LIMIT).await;
        }
    }

    /// Closes the connection unless the body is complete (aiohttp
    /// `close()`).
    pub fn close(&mut self) {
        self.inner.content.close();
        self.inner.upgraded = None;
    }

    /// The response itself for a 1xx-3xx status; an error carrying the
    /// status and URL for 4xx and 5xx (aiohttp `raise_for_status()`). The
    /// connection of a failed response is closed.
    ///
    /// # Errors
    ///
    /// [`Error::is_status`] for a 4xx or 5xx status.
    pub fn error_for_status(mut self) -> Result<ClientResponse> {
        match self.error_for_status_ref() {
            Ok(()) => Ok(self),
            Err(err) => {
                self.close();
                Err(err)
            }
        }
    }

    /// [`error_for_status`](Self::error_for_status) without consuming the
    /// response.
    ///
    /// # Errors
    ///
    /// [`Error::is_status`] for a 4xx or 5xx status.
    pub fn error_for_status_ref(&self) -> Result<()> {
        let status = self.status();
        if status.is_client_error() || status.is_server_error() {
            Err(Error::new(Kind::Status(status), None).with_url(&self.inner.url))
        } else {
            Ok(())
        }
    }
}

/// `application/json` and the `+json` structured syntax suffix (RFC 6839).
#[cfg(feature = "json")]
fn is_json(mime: &str) -> bool {
    mime == "application/json" || (mime.contains('/') && mime.ends_with("+json"))
}
