//! [`ClientSession`]: the connector, defaults, cookies and hooks shared by
//! requests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use courier_pool::{BasicAuth, Connector, TcpConnector};
use courier_proto::Limits;
use courier_proto::http::header::{HeaderName, HeaderValue};
use courier_proto::http::{HeaderMap, Method};
use url::Url;

#[cfg(feature = "cookies")]
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::request::{IntoUrl, RequestBuilder, append_all, header_names, header_pair};
use crate::response::{ClientResponse, DEFAULT_MAX_BODY_SIZE};
use crate::send::Prepared;
use crate::timeouts::Timeouts;

/// The parts of a request a hook may change before it is sent.
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestParts {
    /// The method.
    pub method: Method,
    /// The URL (without userinfo).
    pub url: Url,
    /// The headers the user set (defaults merged); the automatic ones
    /// (`Host`, `User-Agent`...) are added later.
    pub headers: HeaderMap,
}

type RequestHook = Arc<dyn Fn(&mut RequestParts) + Send + Sync>;
type ResponseHook = Arc<dyn Fn(&ClientResponse) + Send + Sync>;
#[cfg(feature = "ws")]
type WebSocketHook = Arc<dyn Fn(&mut crate::ws::ClientWebSocket) + Send + Sync>;

/// Request and response hooks (aiohttp's `request_class`,
/// `response_class` and trace configs, as closures).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    request: Vec<RequestHook>,
    response: Vec<ResponseHook>,
    #[cfg(feature = "ws")]
    websocket: Vec<WebSocketHook>,
}

impl Hooks {
    /// Runs the request hooks on each hop (redirects included).
    pub(crate) fn run_request(&self, p: &mut Prepared) {
        if self.request.is_empty() {
            return;
        }
        let mut parts = RequestParts {
            method: p.method.clone(),
            url: p.url.clone(),
            headers: std::mem::take(&mut p.headers),
        };
        for hook in &self.request {
            hook(&mut parts);
        }
        p.method = parts.method;
        p.url = parts.url;
        p.headers = parts.headers;
    }

    /// Runs the response hooks on each response (redirects included).
    pub(crate) fn run_response(&self, response: &ClientResponse) {
        for hook in &self.response {
            hook(response);
        }
    }

    #[cfg(feature = "ws")]
    /// Runs the WebSocket hooks on a socket that just opened.
    pub(crate) fn run_websocket(&self, socket: &mut crate::ws::ClientWebSocket) {
        for hook in &self.websocket {
            hook(socket);
        }
    }
}

/// What all clones of a session share.
pub(crate) struct SessionInner {
    pub(crate) connector: Arc<dyn Connector>,
    connector_owner: AtomicBool,
    #[cfg(feature = "cookies")]
    pub(crate) jar: Option<Arc<CookieJar>>,
    pub(crate) headers: HeaderMap,
    pub(crate) skip_auto_headers: Vec<HeaderName>,
    pub(crate) auth: Option<BasicAuth>,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_body_size: u64,
    pub(crate) auto_decompress: bool,
    pub(crate) limits: Limits,
    pub(crate) hooks: Hooks,
    closed: AtomicBool,
}

impl SessionInner {
    /// The jar's `Cookie` value for `url`.
    pub(crate) fn jar_cookies(&self, url: &Url) -> Option<String> {
        #[cfg(feature = "cookies")]
        if let Some(jar) = &self.jar {
            return jar
                .cookie_header(url)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        let _ = url;
        None
    }

    /// Stores the cookies a response sets.
    pub(crate) fn store_cookies(&self, response: &ClientResponse) {
        #[cfg(feature = "cookies")]
        if let Some(jar) = &self.jar {
            let set = response.raw_headers().get_all("set-cookie");
            jar.store_response_cookies(response.url(), set);
        }
        let _ = response;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        if self.connector_owner.load(Ordering::Acquire) {
            self.connector.close();
        }
    }
}

/// A client session (aiohttp `ClientSession`): a connector with its pool,
/// default headers and auth, a cookie jar, timeouts and hooks, shared by
/// every request made from it.
///
/// Cheap to clone (an `Arc`) and safe to share across tasks. Dropping the
/// last clone closes its connector unless it was
/// [detached](Self::detach) or built with `connector_owner(false)`.
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// use courier_client::ClientSession;
/// let session = ClientSession::new();
/// let mut resp = session.get("http://127.0.0.1:8080/get").query(&[("q", "1")]).send().await?;
/// assert!(resp.status().is_success());
/// println!("{}", resp.text().await?);
/// session.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientSession {
    pub(crate) inner: Arc<SessionInner>,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("connector", &self.inner.connector)
            .field("headers", &self.inner.headers)
            .field("auth", &self.inner.auth)
            .field("timeouts", &self.inner.timeouts)
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}

impl Default for ClientSession {
    fn default() -> Self {
        ClientSession::new()
    }
}

impl ClientSession {
    /// A session with every default: a [`TcpConnector`], a cookie jar, no
    /// default headers, [`Timeouts::default`].
    ///
    /// # Panics
    ///
    /// When the default connector cannot be built: no trusted root
    /// certificate on the platform (and the `webpki-roots` feature off), or
    /// no rustls crypto provider. Use [`builder`](Self::builder) to get
    /// that as an error.
    pub fn new() -> ClientSession {
        match ClientSession::builder().build() {
            Ok(session) => session,
            Err(err) => panic!("courier: cannot build the default connector: {err}"),
        }
    }

    /// A builder for a session with options.
    pub fn builder() -> ClientSessionBuilder {
        ClientSessionBuilder::default()
    }

    /// Whether [`close`](Self::close) or [`detach`](Self::detach) was called.
    pub fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The connector (aiohttp `session.connector`).
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.inner.connector
    }

    /// The cookie jar (aiohttp `session.cookie_jar`), unless cookies are
    /// turned off.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(&self) -> Option<&Arc<CookieJar>> {
        self.inner.jar.as_ref()
    }

    /// The default headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The default timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// Closes the session and, if it owns it, its connector: idle
    /// connections close now, busy ones when their responses finish; later
    /// requests fail with [`Error::is_closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if self.inner.connector_owner.load(Ordering::Acquire) {
            self.inner.connector.close();
        }
    }

    /// Closes the session without closing its connector, which stays usable
    /// by others (aiohttp `detach()`).
    pub fn detach(&self) {
        self.inner.connector_owner.store(false, Ordering::Release);
        self.inner.closed.store(true, Ordering::Release);
    }

    /// A request with any method; see [`RequestBuilder`] for the options.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url.into_url())
    }

    /// A GET request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT request.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// A HEAD request; unlike the others it does not follow redirects
    /// unless asked ([`RequestBuilder::allow_redirects`]), as aiohttp.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::HEAD, url).allow_redirects(false)
    }

    /// An OPTIONS request.
    pub fn options(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::OPTIONS, url)
    }

    /// A PATCH request.
    pub fn patch(&self, url: impl IntoUrl) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    #[cfg(feature = "ws")]
    /// A WebSocket connection to a `ws://` or `wss://` URL (aiohttp
    /// `ws_connect`), opened when the returned builder is sent or
    /// awaited. The handshake goes through this session's connector
    /// (proxies tunnel it with `CONNECT`), with its cookies, default
    /// headers, auth and hooks. `http` and `https` URLs are accepted as
    /// their `ws` equivalents.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), courier_client::Error> {
    /// use courier_client::ws::{CloseCode, Message};
    ///
    /// let session = courier_client::ClientSession::new();
    /// let mut ws = session
    ///     .ws_connect("ws://127.0.0.1:8080/chat")
    ///     .protocols(["chat"])
    ///     .await?;
    /// ws.send_str("hello").await?;
    /// while let Some(msg) = ws.receive().await? {
    ///     if let Message::Text(text) = msg {
    ///         println!("got {}", text.as_str());
    ///         break;
    ///     }
    /// }
    /// ws.close(CloseCode::NORMAL, "bye").await?;
    /// # Ok(()) }
    /// ```
    pub fn ws_connect(&self, url: impl IntoUrl) -> crate::ws::WsConnectBuilder {
        crate::ws::WsConnectBuilder::new(Ok(self.clone()), url.into_url())
    }
}

/// Options for a [`ClientSession`] (aiohttp's `ClientSession(...)`
/// arguments).
///
/// ```
/// use std::time::Duration;
/// use courier_client::{BasicAuth, ClientSession};
/// let session = ClientSession::builder()
///     .header("x-api-version", "2")
///     .auth(BasicAuth::new("user", "pass").unwrap())
///     .timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert!(!session.closed());
/// ```
pub struct ClientSessionBuilder {
    connector: Option<Arc<dyn Connector>>,
    connector_owner: bool,
    #[cfg(feature = "cookies")]
    jar: Option<Arc<CookieJar>>,
    #[cfg(feature = "cookies")]
    cookies_enabled: bool,
    #[cfg(feature = "cookies")]
    cookies: Vec<(Url, String, String)>,
    headers: HeaderMap,
    skip_auto_headers: Vec<HeaderName>,
    auth: Option<BasicAuth>,
    timeouts: Timeouts,
    max_body_size: u64,
    auto_decompress: bool,
    limits: Limits,
    hooks: Hooks,
    error: Option<Error>,
}

impl fmt::Debug for ClientSessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSessionBuilder")
            .field("connector", &self.connector)
            .field("headers", &self.headers)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Default for ClientSessionBuilder {
    fn default() -> Self {
        ClientSessionBuilder {
            connector: None,
            connector_owner: true,
            #[cfg(feature = "cookies")]
            jar: None,
            #[cfg(feature = "cookies")]
            cookies_enabled: true,
            #[cfg(feature = "cookies")]
            cookies: Vec::new(),
            headers: HeaderMap::new(),
            skip_auto_headers: Vec::new(),
            auth: None,
            timeouts: Timeouts::default(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            auto_decompress: true,
            limits: Limits::default(),
            hooks: Hooks::default(),
            error: None,
        }
    }
}

impl ClientSessionBuilder {
    /// The connector (default: a [`TcpConnector`] with its defaults). Any
    /// [`Connector`]: `TcpConnector`, `ProxyConnector`, `UnixConnector`,
    /// or your own `Pooled<Dial>`.
    pub fn connector(self, connector: impl Connector) -> Self {
        self.connector_arc(Arc::new(connector))
    }

    /// A connector shared with others; combine with
    /// [`connector_owner(false)`](Self::connector_owner) to keep it open
    /// when this session closes.
    pub fn connector_arc(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Whether closing (or dropping) the session closes the connector
    /// (default true, as aiohttp's `connector_owner`).
    pub fn connector_owner(mut self, owner: bool) -> Self {
        self.connector_owner = owner;
        self
    }

    /// The cookie jar (default: a new [`CookieJar`]); pass one to share it
    /// between sessions or to configure its policy.
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(mut self, jar: Arc<CookieJar>) -> Self {
        self.jar = Some(jar);
        self.cookies_enabled = true;
        self
    }

    /// Turns cookie handling off: no jar, no `Cookie` header from it, and
    /// `Set-Cookie` is ignored (aiohttp `DummyCookieJar`).
    #[cfg(feature = "cookies")]
    pub fn no_cookies(mut self) -> Self {
        self.jar = None;
        self.cookies_enabled = false;
        self
    }

    /// A cookie to send to `url`'s host (aiohttp's `cookies=`, scoped: it
    /// is a host-only cookie for that host with path `/`, never sent to
    /// other hosts).
    #[cfg(feature = "cookies")]
    pub fn cookie(mut self, url: impl IntoUrl, name: &str, value: &str) -> Self {
        match url.into_url() {
            Ok(url) => self.cookies.push((url, name.to_owned(), value.to_owned())),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// A default header, sent with every request unless the request sets
    /// the same name. An invalid name or value makes [`build`](Self::build)
    /// fail.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match header_pair(name, value) {
            Ok((name, value)) => {
                self.headers.append(name, value);
            }
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Default headers, added to those already set.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        append_all(&mut self.headers, headers);
        self
    }

    /// Automatic headers not to send (`User-Agent`, `Accept`,
    /// `Accept-Encoding`, `Content-Type`, `Host`, `Connection`), unless a
    /// request sets them itself.
    pub fn skip_auto_headers<I, N>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: TryInto<HeaderName>,
        N::Error: Into<http::Error>,
    {
        match header_names(names) {
            Ok(names) => self.skip_auto_headers.extend(names),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// Default Basic credentials, sent to the origin of each request (never
    /// across a redirect to another origin).
    pub fn auth(mut self, auth: BasicAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Default timeouts for every phase.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The default total timeout (aiohttp `timeout=`).
    pub fn timeout(mut self, total: Duration) -> Self {
        self.timeouts = self.timeouts.total(Some(total));
        self
    }

    /// The most bytes a buffered read (`read`, `text`, `json`) accepts
    /// (default [`DEFAULT_MAX_BODY_SIZE`]).
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Whether gzip and deflate bodies are decoded (default true, aiohttp
    /// `auto_decompress`).
    pub fn auto_decompress(mut self, decompress: bool) -> Self {
        self.auto_decompress = decompress;
        self
    }

    /// Limits on response heads and decoding (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// A hook run before each request is sent, redirects included; it may
    /// change the method, URL and headers (aiohttp `request_class`).
    pub fn on_request(mut self, hook: impl Fn(&mut RequestParts) + Send + Sync + 'static) -> Self {
        self.hooks.request.push(Arc::new(hook));
        self
    }

    /// A hook run on each response head as it arrives, redirects included
    /// (aiohttp `response_class`, trace configs).
    pub fn on_response(mut self, hook: impl Fn(&ClientResponse) + Send + Sync + 'static) -> Self {
        self.hooks.response.push(Arc::new(hook));
        self
    }

    #[cfg(feature = "ws")]
    /// A hook run on each WebSocket once its handshake succeeded, before
    /// [`ws_connect`](ClientSession::ws_connect) returns it (aiohttp
    /// `ws_response_class`): it may inspect the negotiated protocol and
    /// handshake response, or change per-socket settings. Request and
    /// response hooks run on the handshake too.
    pub fn on_websocket(
        mut self,
        hook: impl Fn(&mut crate::ws::ClientWebSocket) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.websocket.push(Arc::new(hook));
        self
    }

    /// Builds the session.
    ///
    /// # Errors
    ///
    /// An invalid header or cookie given to this builder, or a default
    /// connector that cannot be built (see [`ClientSession::new`]).
    pub fn build(self) -> Result<ClientSession> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let connector = match self.connector {
            Some(connector) => connector,
            None => Arc::new(TcpConnector::new().map_err(Error::builder)?),
        };
        #[cfg(feature = "cookies")]
        let jar = if self.cookies_enabled {
            let jar = self.jar.unwrap_or_default();
            for (url, name, value) in &self.cookies {
                jar.add_cookie(url, name, value).map_err(Error::builder)?;
            }
            Some(jar)
        } else {
            None
        };
        Ok(ClientSession {
            inner: Arc::new(SessionInner {
                connector,
                connector_owner: AtomicBool::new(self.connector_owner),
                #[cfg(feature = "cookies")]
                jar,
                headers: self.headers,
                skip_auto_headers: self.skip_auto_headers,
                auth: self.auth,
                timeouts: self.timeouts,
                max_body_size: self.max_body_size,
                auto_decompress: self.auto_decompress,
                limits: self.limits,
                hooks: self.hooks,
                closed: AtomicBool::new(false),
            }),
        })
    }
}
