//! The one error type of the client, with aiohttp-like predicates.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::StatusCode;
use url::Url;

use crate::response::ClientResponse;

/// A boxed error from below (I/O, the codec, the pool, a user's stream).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// The whole request, from the first connection attempt to the end of
    /// the response body (aiohttp `ClientTimeout.total`).
    Total,
    /// Establishing a connection: DNS, TCP, proxy tunnel and TLS
    /// (aiohttp `sock_connect`).
    Connect,
    /// Waiting for room in the pool (aiohttp `ClientTimeout.connect`, which
    /// includes the wait for a free connection).
    Pool,
    /// No byte arrived from the server for this long (aiohttp `sock_read`).
    Read,
    /// A WebSocket received no message for this long (aiohttp
    /// `receive_timeout`); the socket stays open.
    WsReceive,
    /// A WebSocket heartbeat's ping got no answer in time (aiohttp
    /// `heartbeat`): the peer is gone and the socket was closed.
    WsPong,
    /// A WebSocket's close handshake did not finish in time (aiohttp
    /// `ClientWSTimeout.ws_close`); the connection was dropped.
    WsClose,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutPhase::Total => "total",
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::Pool => "pool acquire",
            TimeoutPhase::Read => "read",
            TimeoutPhase::WsReceive => "WebSocket receive",
            TimeoutPhase::WsPong => "WebSocket heartbeat (no pong)",
            TimeoutPhase::WsClose => "WebSocket close",
        })
    }
}

/// What went wrong, for the predicates. Private so that variants can be
/// added without breaking anyone.
#[derive(Debug)]
#[cfg_attr(not(feature = "ws"), allow(dead_code))]
pub(crate) enum Kind {
    /// The request could not be built: bad URL, unsupported scheme, invalid
    /// header, conflicting options.
    Builder,
    /// No connection: DNS, TCP, TLS, proxy, a closed connector.
    Connect,
    /// A timeout, in the given phase.
    Timeout(TimeoutPhase, Duration),
    /// More redirects than allowed; the history is kept.
    TooManyRedirects(Vec<ClientResponse>),
    /// A redirect could not be followed (bad `Location`, a scheme other
    /// than http/https, a one-shot body that a 307/308 must resend).
    Redirect,
    /// `error_for_status` on a 4xx or 5xx response.
    Status(StatusCode),
    /// The server's response is malformed: head, framing, content coding.
    Payload,
    /// A buffered read refused a body larger than its limit.
    BodyTooLarge(u64),
    /// The server closed the connection before the response head.
    Disconnected,
    /// Reading the request body (a user's stream or file) failed.
    RequestBody,
    /// I/O on the connection failed while sending or receiving.
    Io,
    /// `text()` or `json()` could not decode the body.
    Decode,
    /// The session was closed.
    SessionClosed,
    /// The WebSocket opening handshake was refused or invalid: the status
    /// and headers of the server's answer.
    WsHandshake(StatusCode, Box<http::HeaderMap>),
    /// The WebSocket peer broke RFC 6455 / 7692 or a limit (the source is
    /// the `courier_ws::Error`), or the connection ended without the close
    /// handshake (1006).
    WsProtocol,
    /// The WebSocket is closed: nothing more can be sent or received.
    WsClosed,
    /// `receive_str`, `receive_bytes` or `receive_json` got another kind
    /// of message.
    WsUnexpectedMessage,
}

/// The error of every fallible courier operation.
///
/// Opaque by design: ask it questions with the predicates (`is_timeout`,
/// `is_connect`, ...) as aiohttp users catch `ClientConnectorError`,
/// `ServerTimeoutError` and friends. The cause is kept as
/// [`source`](std::error::Error::source), and the URL it concerns (without
/// any userinfo: secrets are never printed) is available from
/// [`url`](Self::url).
///
/// ```
/// # async fn f() {
/// let err = courier_client::ClientSession::new()
///     .get("ftp://example.com/")
///     .send()
///     .await
///     .unwrap_err();
/// assert!(err.is_builder());
/// # }
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    url: Option<Url>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: Kind, source: Option<BoxError>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                url: None,
                source,
            }),
        }
    }

    pub(crate) fn builder(source: impl Into<BoxError>) -> Error {
        Error::new(Kind::Builder, Some(source.into()))
    }

    pub(crate) fn redirect(source: impl Into<BoxError>) -> Error {
        Error::new(Kind::Redirect, Some(source.into()))
    }

    pub(crate) fn payload(source: impl Into<BoxError>) -> Error {
        Error::new(Kind::Payload, Some(source.into()))
    }

    pub(crate) fn decode(source: impl Into<BoxError>) -> Error {
        Error::new(Kind::Decode, Some(source.into()))
    }

    pub(crate) fn timeout(phase: TimeoutPhase, after: Duration) -> Error {
        Error::new(Kind::Timeout(phase, after), None)
    }

    /// Sets the URL the error concerns (userinfo removed), unless one is set.
    pub(crate) fn with_url(mut self, url: &Url) -> Error {
        if self.inner.url.is_none() {
            let mut url = url.clone();
            // Infallible for http(s) URLs; for others there is nothing to hide.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            self.inner.url = Some(url);
        }
        self
    }

    /// Replaces the URL the error concerns (userinfo removed): a
    /// WebSocket's errors name its `ws://` URL, not the `http://` form the
    /// handshake was sent with.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn replace_url(mut self, url: &Url) -> Error {
        self.inner.url = None;
        self = self.with_url(url);
        self
    }

    /// The URL of the request that failed, without userinfo.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// The request was invalid before anything was sent: a bad URL, an
    /// unsupported scheme, a header with forbidden bytes, two sources of
    /// credentials (aiohttp's `ValueError`/`InvalidURL`).
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder)
    }

    /// No connection could be made (aiohttp `ClientConnectorError`): DNS,
    /// TCP, TLS, proxy. See also [`is_tls`](Self::is_tls) and
    /// [`is_proxy`](Self::is_proxy).
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect)
            || matches!(self.inner.kind, Kind::Timeout(TimeoutPhase::Connect, _))
    }

    /// A timeout expired; [`timeout_phase`](Self::timeout_phase) says which.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout(..))
            || self.pool_error().is_some_and(|e| e.is_timeout())
    }

    /// Which timeout expired.
    pub fn timeout_phase(&self) -> Option<TimeoutPhase> {
        match self.inner.kind {
            Kind::Timeout(phase, _) => Some(phase),
            _ => match self.pool_error() {
                Some(courier_pool::Error::PoolTimeout { .. }) => Some(TimeoutPhase::Pool),
                Some(courier_pool::Error::ConnectTimeout { .. }) => Some(TimeoutPhase::Connect),
                _ => None,
            },
        }
    }

    /// The TLS handshake or certificate check failed (aiohttp
    /// `ClientConnectorCertificateError`, `ServerFingerprintMismatch`).
    pub fn is_tls(&self) -> bool {
        self.pool_error().is_some_and(courier_pool::Error::is_tls)
    }

    /// The proxy refused or failed (aiohttp `ClientProxyConnectionError`).
    pub fn is_proxy(&self) -> bool {
        self.pool_error().is_some_and(courier_pool::Error::is_proxy)
    }

    /// A redirect could not be followed, or there were too many
    /// (aiohttp `TooManyRedirects`, `InvalidUrlRedirectClientError`).
    pub fn is_redirect(&self) -> bool {
        matches!(self.inner.kind, Kind::Redirect | Kind::TooManyRedirects(_))
    }

    /// From [`ClientResponse::error_for_status`] (aiohttp
    /// `ClientResponseError` from `raise_for_status`).
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, Kind::Status(_))
    }

    /// The response was malformed or its body could not be read in full
    /// (aiohttp `ClientPayloadError`): bad framing, a truncated body, a
    /// broken compressed stream, or a buffered body over its limit.
    pub fn is_payload(&self) -> bool {
        matches!(self.inner.kind, Kind::Payload | Kind::BodyTooLarge(_))
    }

    /// The server closed the connection before the response head arrived
    /// (aiohttp `ServerDisconnectedError`). A body cut short later is
    /// [`is_payload`](Self::is_payload) instead.
    pub fn is_disconnected(&self) -> bool {
        matches!(self.inner.kind, Kind::Disconnected)
    }

    /// A buffered read refused a body over its limit; see
    /// [`too_large_limit`](Self::too_large_limit).
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.inner.kind, Kind::BodyTooLarge(_))
    }

    /// The limit a buffered read refused to exceed.
    pub fn too_large_limit(&self) -> Option<u64> {
        match self.inner.kind {
            Kind::BodyTooLarge(limit) => Some(limit),
            _ => None,
        }
    }

    /// Reading the request body to send it failed.
    pub fn is_request_body(&self) -> bool {
        matches!(self.inner.kind, Kind::RequestBody)
    }

    /// `text()` or `json()` could not decode the body (aiohttp
    /// `ContentTypeError`, `UnicodeDecodeError`, `JSONDecodeError`).
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, Kind::Decode)
    }

    /// I/O on an established connection failed (a reset, a broken pipe).
    pub fn is_io(&self) -> bool {
        matches!(self.inner.kind, Kind::Io)
    }

    /// The session was closed before the request.
    pub fn is_closed(&self) -> bool {
        matches!(self.inner.kind, Kind::SessionClosed)
            || self
                .pool_error()
                .is_some_and(|e| matches!(e, courier_pool::Error::Closed))
    }

    /// The HTTP status, for [`is_status`](Self::is_status) errors, a
    /// proxy's refusal, and too many redirects (the last redirect's).
    pub fn status(&self) -> Option<StatusCode> {
        match &self.inner.kind {
            Kind::Status(status) | Kind::WsHandshake(status, _) => Some(*status),
            Kind::TooManyRedirects(history) => history.last().map(ClientResponse::status),
            _ => self
                .pool_error()
                .and_then(courier_pool::Error::proxy_status),
        }
    }

    /// The responses of the redirects followed, for too many redirects.
    pub fn history(&self) -> Option<&[ClientResponse]> {
        match &self.inner.kind {
            Kind::TooManyRedirects(history) => Some(history),
            _ => None,
        }
    }

    /// Takes the redirect history out of a too-many-redirects error (to
    /// read the redirects' bodies); empty for other errors.
    pub fn into_history(self) -> Vec<ClientResponse> {
        match self.inner.kind {
            Kind::TooManyRedirects(history) => history,
            _ => Vec::new(),
        }
    }

    /// The WebSocket opening handshake failed (aiohttp
    /// `WSServerHandshakeError`): a status other than 101, a wrong
    /// `Sec-WebSocket-Accept`, a subprotocol or extension that was not
    /// offered. [`status`](Self::status) and
    /// [`ws_handshake_headers`](Self::ws_handshake_headers) give the
    /// server's answer.
    pub fn is_ws_handshake(&self) -> bool {
        matches!(self.inner.kind, Kind::WsHandshake(..))
    }

    /// The headers of the server's answer to a failed WebSocket handshake.
    pub fn ws_handshake_headers(&self) -> Option<&http::HeaderMap> {
        match &self.inner.kind {
            Kind::WsHandshake(_, headers) => Some(headers),
            _ => None,
        }
    }

    /// The WebSocket failed: the peer broke the protocol, sent a message
    /// over a limit, or closed the connection without the close handshake.
    /// [`ws_close_code`](Self::ws_close_code) says which close code
    /// applies.
    pub fn is_ws_protocol(&self) -> bool {
        matches!(self.inner.kind, Kind::WsProtocol)
    }

    #[cfg(feature = "ws")]
    /// The close code of a WebSocket failure: the code sent to the peer
    /// for a protocol error (1002, 1007, 1009, 1011), 1006 for a connection
    /// that ended without the close handshake.
    pub fn ws_close_code(&self) -> Option<courier_ws::CloseCode> {
        self.ws_error().and_then(|e| match e {
            courier_ws::Error::Protocol(courier_ws::ProtocolError::AbnormalClosure) => {
                Some(courier_ws::CloseCode::ABNORMAL)
            }
            other => other.close_code(),
        })
    }

    #[cfg(feature = "ws")]
    /// The `courier-ws` error behind a WebSocket failure, if any.
    pub fn ws_error(&self) -> Option<&courier_ws::Error> {
        self.find_source()
    }

    /// The WebSocket is closed (by either side, or after a failure):
    /// nothing more can be sent.
    pub fn is_ws_closed(&self) -> bool {
        matches!(self.inner.kind, Kind::WsClosed)
    }

    /// A typed receive (`receive_str`, `receive_bytes`, `receive_json`)
    /// got another kind of message (aiohttp's `TypeError`).
    pub fn is_ws_unexpected_message(&self) -> bool {
        matches!(self.inner.kind, Kind::WsUnexpectedMessage)
    }

    /// The pool's error in the source chain, if any.
    fn pool_error(&self) -> Option<&courier_pool::Error> {
        self.find_source()
    }

    /// The first error of type `E` in the source chain, if any.
    fn find_source<E: StdError + 'static>(&self) -> Option<&E> {
        let mut source = self
            .inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static));
        while let Some(err) = source {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            source = err.source();
        }
        None
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("courier::Error");
        d.field("kind", &self.inner.kind);
        if let Some(url) = &self.inner.url {
            d.field("url", &url.as_str());
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder => f.write_str("invalid request")?,
            Kind::Connect => f.write_str("cannot connect")?,
            Kind::Timeout(phase, after) => write!(f, "{phase} timeout after {after:?}")?,
            Kind::TooManyRedirects(history) => write!(f, "too many redirects ({})", history.len())?,
            Kind::Redirect => f.write_str("cannot follow redirect")?,
            Kind::Status(status) => {
                let kind = if status.is_client_error() {
                    "client error"
                } else {
                    "server error"
                };
                write!(f, "HTTP status {kind} ({status})")?
            }
            Kind::Payload => f.write_str("invalid response")?,
            Kind::BodyTooLarge(limit) => {
                write!(f, "response body larger than the {limit}-byte limit")?
            }
            Kind::Disconnected => f.write_str("server disconnected")?,
            Kind::RequestBody => f.write_str("cannot read request body")?,
            Kind::Io => f.write_str("connection I/O failed")?,
            Kind::Decode => f.write_str("cannot decode response body")?,
            Kind::SessionClosed => f.write_str("session is closed")?,
            Kind::WsHandshake(status, _) => {
                write!(f, "WebSocket handshake failed (status {status})")?
            }
            Kind::WsProtocol => f.write_str("WebSocket failed")?,
            Kind::WsClosed => f.write_str("WebSocket is closed")?,
            Kind::WsUnexpectedMessage => f.write_str("unexpected WebSocket message")?,
        }
        if let Some(url) = &self.inner.url {
            write!(f, " ({url})")?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}

impl From<courier_pool::Error> for Error {
    fn from(err: courier_pool::Error) -> Error {
        let kind = match &err {
            courier_pool::Error::InvalidTarget(_) => Kind::Builder,
            courier_pool::Error::PoolTimeout { timeout } => {
                Kind::Timeout(TimeoutPhase::Pool, *timeout)
            }
            courier_pool::Error::ConnectTimeout { timeout, .. } => {
                Kind::Timeout(TimeoutPhase::Connect, *timeout)
            }
            _ => Kind::Connect,
        };
        Error::new(kind, Some(Box::new(err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_small() {
        fn assert_traits<T: Send + Sync + 'static>() {}
        assert_traits::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn url_in_error_hides_userinfo() {
        let url = Url::parse("http://user:secret@example.com/x").unwrap();
        let err = Error::new(Kind::Disconnected, None).with_url(&url);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
        assert_eq!(err.url().unwrap().as_str(), "http://example.com/x");
        assert!(err.is_disconnected() && !err.is_payload());
    }

    #[test]
    fn pool_errors_map_to_predicates() {
        let timeout = Duration::from_secs(1);
        let err = Error::from(courier_pool::Error::PoolTimeout { timeout });
        assert!(err.is_timeout());
        assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Pool));
        let err = Error::from(courier_pool::Error::ConnectTimeout {
            host: "h:1".into(),
            timeout,
        });
        assert!(err.is_timeout() && err.is_connect());
        assert_eq!(err.timeout_phase(), Some(TimeoutPhase::Connect));
        let err = Error::from(courier_pool::Error::Closed);
        assert!(err.is_closed() && err.is_connect() && !err.is_timeout());
    }
}
