//! [`WsConnectBuilder`]: aiohttp's `ws_connect(...)` arguments, and the
//! opening handshake.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use courier_pool::BasicAuth;
use courier_proto::http::header::{HeaderName, HeaderValue};
use courier_proto::http::{HeaderMap, Method};
use courier_ws::{ClientHandshake, DeflateConfig, Limits, WebSocket};
use url::Url;

use super::socket::{ClientWebSocket, Opened, Settings};
use crate::error::{Error, Kind, Result};
use crate::request::RequestBuilder;
use crate::session::ClientSession;
use crate::timeouts::Timeouts;

/// The default close timeout (10 s): how long
/// [`ClientWebSocket::close`] waits for the server's close frame and the
/// end of the connection (aiohttp's `ws_connect(timeout=10.0)` of 0.21,
/// `ClientWSTimeout.ws_close` today).
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A WebSocket connection being set up (aiohttp `ws_connect(...)`
/// arguments); open it with [`send`](Self::send) or by awaiting it.
///
/// The opening handshake is an HTTP/1.1 `GET` sent like any request of the
/// session: through its connector (a [`ProxyConnector`](crate::ProxyConnector)
/// opens a `CONNECT` tunnel, also for `ws://`), with its default headers,
/// cookies (for the `http`/`https` form of the URL, RFC 6455 §4.1), auth
/// and hooks. Redirects are not followed: a 3xx answer is a handshake
/// error whose headers hold the `Location`.
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// use std::time::Duration;
///
/// let session = courier_client::ClientSession::new();
/// let ws = session
///     .ws_connect("ws://127.0.0.1:8080/ws")
///     .protocols(["chat.v2", "chat"])
///     .origin("https://app.example")
///     .heartbeat(Duration::from_secs(30))
///     .receive_timeout(Duration::from_secs(60))
///     .max_msg_size(16 << 20)
///     .await?;
/// assert!(ws.protocol().is_none() || ws.protocol().is_some());
/// # Ok(()) }
/// ```
#[must_use = "a WebSocket is opened only when the builder is sent or awaited"]
pub struct WsConnectBuilder {
    request: RequestBuilder,
    /// The URL as given (`ws`, `wss`, or their `http`/`https` forms).
    url: Result<Url>,
    protocols: Vec<String>,
    origin: Option<String>,
    deflate: Option<DeflateConfig>,
    limits: Limits,
    settings: Settings,
}

impl fmt::Debug for WsConnectBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnectBuilder")
            .field("url", &self.url.as_ref().map(Url::as_str).ok())
            .field("protocols", &self.protocols)
            .field("origin", &self.origin)
            .field("deflate", &self.deflate)
            .field("limits", &self.limits)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WsConnectBuilder {
    pub(crate) fn new(session: Result<ClientSession>, url: Result<Url>) -> WsConnectBuilder {
        let url = url.and_then(|url| match url.scheme() {
            "ws" | "wss" | "http" | "https" => Ok(url),
            other => Err(Error::builder(format!(
                "unsupported WebSocket URL scheme {other:?}"
            ))),
        });
        let request_url = url.as_ref().map(Url::clone).map_err(|e| {
            // The builder's own copy of the error (errors are not `Clone`).
            Error::builder(e.to_string())
        });
        let request = RequestBuilder::with_session(session, Method::GET, request_url).upgrade();
        WsConnectBuilder {
            request,
            url,
            protocols: Vec::new(),
            origin: None,
            deflate: None,
            limits: Limits::default(),
            settings: Settings {
                autoping: true,
                autoclose: true,
                heartbeat: None,
                receive_timeout: None,
                close_timeout: DEFAULT_CLOSE_TIMEOUT,
            },
        }
    }

    /// Subprotocols to offer, in order of preference (aiohttp
    /// `protocols`); the server's choice is [`ClientWebSocket::protocol`].
    /// A choice that was not offered fails the handshake.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.protocols = protocols
            .into_iter()
            .map(|p| p.as_ref().to_owned())
            .collect();
        self
    }

    /// A total timeout for the opening handshake: connecting and the
    /// server's 101 answer (the session's timeouts otherwise). The open
    /// socket has its own: [`receive_timeout`](Self::receive_timeout),
    /// [`close_timeout`](Self::close_timeout),
    /// [`heartbeat`](Self::heartbeat).
    pub fn timeout(mut self, total: Duration) -> Self {
        self.request = self.request.timeout(total);
        self
    }

    /// Per-phase timeouts for the opening handshake (connect, pool, read,
    /// total).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.request = self.request.timeouts(timeouts);
        self
    }

    /// Basic credentials for the handshake (aiohttp `auth`); they replace
    /// the session's.
    pub fn auth(mut self, auth: BasicAuth) -> Self {
        self.request = self.request.auth(auth);
        self
    }

    /// Whether the server's close frame is answered at once (aiohttp
    /// `autoclose`, on by default). Off, [`ClientWebSocket::receive`]
    /// returns it and the caller answers with [`ClientWebSocket::close`].
    pub fn autoclose(mut self, autoclose: bool) -> Self {
        self.settings.autoclose = autoclose;
        self
    }

    /// Whether pings are answered automatically and pings and pongs kept
    /// out of [`ClientWebSocket::receive`] (aiohttp `autoping`, on by
    /// default). Off, they are returned and the caller answers with
    /// [`ClientWebSocket::pong`].
    pub fn autoping(mut self, autoping: bool) -> Self {
        self.settings.autoping = autoping;
        self
    }

    /// The `Origin` header (aiohttp `origin`).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// A header for the handshake (aiohttp `headers`); replaces the
    /// session's default of the same name.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<courier_proto::http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<courier_proto::http::Error>,
    {
        self.request = self.request.header(name, value);
        self
    }

    /// Headers for the handshake, added to those already set.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.request = self.request.headers(headers);
        self
    }

    /// Query parameters added to the URL (aiohttp `params`).
    pub fn query<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.request = self.request.query(pairs);
        self
    }

    /// Cookies for this handshake only, added to the session jar's.
    pub fn cookies<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.request = self.request.cookies(pairs);
        self
    }

    /// Offers permessage-deflate (RFC 7692) with the default parameters
    /// (aiohttp `compress`, which courier leaves off by default). The
    /// server may decline; [`ClientWebSocket::compress`] tells.
    pub fn compress(mut self, compress: bool) -> Self {
        self.deflate = compress.then(DeflateConfig::default);
        self
    }

    /// Offers permessage-deflate with these parameters (context takeover,
    /// window bits).
    pub fn deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = Some(config);
        self
    }

    /// The largest message accepted, in bytes, after decompression
    /// (aiohttp `max_msg_size`); also the largest frame. Defaults to
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](super::DEFAULT_MAX_MESSAGE_SIZE) (4
    /// MiB). A larger message fails the socket with close code 1009. As in
    /// aiohttp, 0 removes the limit: only for peers you trust.
    pub fn max_msg_size(mut self, bytes: usize) -> Self {
        let bytes = if bytes == 0 { usize::MAX } else { bytes };
        self.limits = self.limits.max_message_size(bytes).max_frame_size(bytes);
        self
    }

    /// The largest frame accepted (at most the message size): lower it to
    /// bound what one frame may make this side buffer when messages may be
    /// larger.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.limits = self.limits.max_frame_size(bytes);
        self
    }

    /// Sends a ping after `interval` without any frame from the server,
    /// and fails the socket ([`TimeoutPhase::WsPong`](crate::TimeoutPhase))
    /// when nothing arrives within half the interval after it (aiohttp
    /// `heartbeat`); see [`pong_timeout`](Self::pong_timeout). Off by
    /// default.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.settings.heartbeat = Some((interval, interval / 2));
        self
    }

    /// How long the heartbeat's ping may go unanswered (half the interval
    /// unless set). Needs [`heartbeat`](Self::heartbeat).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        if let Some((_, pong)) = &mut self.settings.heartbeat {
            *pong = timeout;
        }
        self
    }

    /// The longest [`ClientWebSocket::receive`] waits for a message
    /// (aiohttp `receive_timeout`); a timeout leaves the socket open.
    /// None by default.
    pub fn receive_timeout(mut self, timeout: Duration) -> Self {
        self.settings.receive_timeout = Some(timeout);
        self
    }

    /// How long [`ClientWebSocket::close`] waits for the close handshake
    /// and the end of the connection (default [`DEFAULT_CLOSE_TIMEOUT`]).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = timeout;
        self
    }

    /// Opens the socket: the handshake, checked by RFC 6455 §4.1.
    ///
    /// # Errors
    ///
    /// Invalid input ([`Error::is_builder`]), connection failures and
    /// timeouts as for any request, and [`Error::is_ws_handshake`] when
    /// the server refused or answered wrongly: a status other than 101, a
    /// bad `Sec-WebSocket-Accept`, a subprotocol or extension that was not
    /// offered. Its [`status`](Error::status) and
    /// [`ws_handshake_headers`](Error::ws_handshake_headers) tell what the
    /// server said.
    pub fn send(self) -> impl Future<Output = Result<ClientWebSocket>> + Send + 'static {
        let WsConnectBuilder {
            mut request,
            url,
            protocols,
            origin,
            deflate,
            limits,
            settings,
        } = self;
        let handshake = ClientHandshake::new()
            .protocols(&protocols)
            .and_then(|h| match deflate {
                Some(config) => h.deflate(config),
                None => Ok(h),
            })
            .map_err(Error::builder);
        if let Ok(handshake) = &handshake {
            for (name, value) in &handshake.request_headers() {
                request = request.header(name.clone(), value.clone());
            }
            if let Some(origin) = &origin {
                request = request.header("origin", origin.as_str());
            }
        }
        let session = request.session_handle();
        let response = request.send();
        async move {
            let mut url = url?;
            let handshake = handshake.map_err(|e| e.with_url(&url))?;
            let mut response = response.await.map_err(|e| e.replace_url(&url))?;
            let negotiated = handshake
                .validate(response.status(), response.headers())
                .map_err(|err| {
                    Error::new(
                        Kind::WsHandshake(response.status(), Box::new(response.headers().clone())),
                        Some(Box::new(courier_ws::Error::from(err))),
                    )
                    .with_url(&url)
                })?;
            let Some((mut conn, rest)) = response.take_upgraded() else {
                // `validate` accepted only a 101, which always keeps its
                // connection.
                return Err(Error::payload("101 answer without its connection").with_url(&url));
            };
            let Some(established) = conn.detach() else {
                return Err(Error::new(Kind::WsClosed, None).with_url(&url));
            };
            // The URL connected to (with the query), in its ws form.
            url = response.url().clone();
            let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
            let _ = url.set_scheme(scheme);
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let headers = response.headers().clone();
            let mut socket = ClientWebSocket::new(Opened {
                stream: established.stream,
                rest,
                proto: WebSocket::new(limits, negotiated.deflate),
                url,
                protocol: negotiated.protocol,
                headers,
                settings,
            });
            if let Some(session) = session {
                session.inner.hooks.run_websocket(&mut socket);
            }
            Ok(socket)
        }
    }
}

impl IntoFuture for WsConnectBuilder {
    type Output = Result<ClientWebSocket>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<ClientWebSocket>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
