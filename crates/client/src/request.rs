//! [`RequestBuilder`]: one method per aiohttp request option.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use courier_pool::BasicAuth;
use courier_proto::http::header::{self, HeaderName, HeaderValue};
use courier_proto::http::{HeaderMap, Method, Version};
use courier_proto::{AutoHeader, Compression};
use encoding_rs::Encoding;
use url::Url;

use crate::body::Body;
use crate::error::{Error, Result};
use crate::redirect::DEFAULT_MAX_REDIRECTS;
use crate::response::ClientResponse;
use crate::send::{self, Prepared};
use crate::session::ClientSession;
use crate::timeouts::Timeouts;

/// Something that can be turned into a request URL: `&str`, `String`,
/// [`Url`].
pub trait IntoUrl {
    /// Parses (or clones) the URL.
    ///
    /// # Errors
    ///
    /// A builder error for a string that is not an absolute URL.
    fn into_url(self) -> Result<Url>;
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url> {
        Ok(self.clone())
    }
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url> {
        Url::parse(self).map_err(|e| Error::builder(format!("invalid URL {self:?}: {e}")))
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url> {
        self.as_str().into_url()
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url> {
        self.as_str().into_url()
    }
}

/// A request body not yet encoded (its text encoding may still change).
enum Data {
    Body(Body, Option<&'static str>),
    Text(String),
    Form(Vec<(String, String)>),
}

/// The query to add to the URL.
enum Params {
    Pairs(Vec<(String, String)>),
    Raw(String),
}

/// A request being built (aiohttp `session.request(...)` arguments); send
/// it with [`send`](Self::send) or by awaiting it.
///
/// Invalid input (a bad URL, an unsupported scheme, a header with
/// forbidden bytes, two sources of credentials) is reported by `send`,
/// never by a panic.
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// let session = courier_client::ClientSession::new();
/// let resp = session
///     .post("http://127.0.0.1:8080/post")
///     .query(&[("page", "2")])
///     .header("x-trace", "abc")
///     .form(&[("name", "courier"), ("lang", "rust")])
///     .await?;
/// # drop(resp); Ok(()) }
/// ```
#[must_use = "a request does nothing until sent or awaited"]
pub struct RequestBuilder {
    /// `None` only for a one-off session that could not be built (the
    /// reason is in `error`).
    session: Option<ClientSession>,
    method: Method,
    url: Result<Url>,
    params: Vec<Params>,
    headers: HeaderMap,
    skip: Vec<HeaderName>,
    auth: Option<BasicAuth>,
    cookies: Vec<(String, String)>,
    data: Option<Data>,
    allow_redirects: bool,
    max_redirects: usize,
    encoding: &'static Encoding,
    version: Version,
    compress: Option<Compression>,
    chunked: Option<usize>,
    expect100: bool,
    read_until_eof: bool,
    timeouts: Option<Timeouts>,
    max_body_size: Option<u64>,
    auto_decompress: Option<bool>,
    /// A WebSocket handshake (`ws_connect`): `ws`/`wss` URLs are allowed,
    /// and the 101 answer keeps its connection.
    upgrade: bool,
    error: Option<Error>,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.as_ref().map(Url::as_str).ok();
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// The default chunk size for [`RequestBuilder::chunked`] (16 KiB).
pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024;

impl RequestBuilder {
    pub(crate) fn new(session: ClientSession, method: Method, url: Result<Url>) -> Self {
        Self::with_session(Ok(session), method, url)
    }

    /// A request on `session`, or one that reports why there is none.
    pub(crate) fn with_session(
        session: Result<ClientSession>,
        method: Method,
        url: Result<Url>,
    ) -> Self {
        let (session, error) = match session {
            Ok(session) => (Some(session), None),
            Err(err) => (None, Some(err)),
        };
        RequestBuilder {
            session,
            method,
            url,
            params: Vec::new(),
            headers: HeaderMap::new(),
            skip: Vec::new(),
            auth: None,
            cookies: Vec::new(),
            data: None,
            allow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            encoding: encoding_rs::UTF_8,
            version: Version::HTTP_11,
            compress: None,
            chunked: None,
            expect100: false,
            read_until_eof: true,
            timeouts: None,
            max_body_size: None,
            auto_decompress: None,
            upgrade: false,
            error,
        }
    }

    /// The session the request is for (`None` for a one-off session that
    /// could not be built).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn session_handle(&self) -> Option<ClientSession> {
        self.session.clone()
    }

    /// Makes this request a WebSocket opening handshake (see
    /// `crate::ws::WsConnectBuilder`).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn upgrade(mut self) -> Self {
        self.upgrade = true;
        self.allow_redirects = false;
        self
    }

    fn fail(mut self, err: Error) -> Self {
        self.error.get_or_insert(err);
        self
    }

    /// Query parameters added to the URL's query, in order; repeated keys
    /// are kept (aiohttp `params=`).
    pub fn query<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.params.push(Params::Pairs(owned_pairs(pairs)));
        self
    }

    /// An already-encoded query string appended as is (aiohttp `params=`
    /// given a `str`).
    pub fn query_raw(mut self, query: impl Into<String>) -> Self {
        self.params.push(Params::Raw(query.into()));
        self
    }

    /// A header; it replaces the session's default of the same name, and
    /// repeated calls with one name send every value.
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
                self
            }
            Err(err) => self.fail(err),
        }
    }

    /// Headers (aiohttp `headers=`), added to those already set.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        append_all(&mut self.headers, headers);
        self
    }

    /// Automatic headers not to send for this request (aiohttp
    /// `skip_auto_headers=`); see
    /// [`ClientSessionBuilder::skip_auto_headers`](crate::ClientSessionBuilder::skip_auto_headers).
    pub fn skip_auto_headers<I, N>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: TryInto<HeaderName>,
        N::Error: Into<http::Error>,
    {
        match header_names(names) {
            Ok(names) => {
                self.skip.extend(names);
                self
            }
            Err(err) => self.fail(err),
        }
    }

    /// Basic credentials for this request (aiohttp `auth=`); they replace
    /// the session's. Giving credentials in the URL as well is an error.
    pub fn auth(mut self, auth: BasicAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Cookies for this request only (aiohttp `cookies=` of `request()`),
    /// added to the jar's; never sent after a redirect to another origin.
    pub fn cookies<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in pairs {
            self.cookies
                .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        }
        self
    }

    /// The body (aiohttp `data=`): bytes, a `String`, a [`Body`] made from a
    /// stream or an `AsyncRead` such as a `tokio::fs::File`. Bytes get
    /// `Content-Type: application/octet-stream` and text
    /// `text/plain; charset=utf-8` unless the request sets its own.
    pub fn data(mut self, body: impl Into<Body>) -> Self {
        self.data = Some(Data::Body(body.into(), Some("application/octet-stream")));
        self
    }

    /// A text body, encoded with [`encoding`](Self::encoding) (UTF-8 by
    /// default), sent as `text/plain`.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.data = Some(Data::Text(text.into()));
        self
    }

    /// A form body, `application/x-www-form-urlencoded` (aiohttp `data=`
    /// given a dict); repeated keys are kept in order.
    pub fn form<K, V>(mut self, pairs: &[(K, V)]) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.data = Some(Data::Form(owned_pairs(pairs)));
        self
    }

    /// A JSON body (aiohttp `json=`), `application/json`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                self.data = Some(Data::Body(Body::from(bytes), Some("application/json")));
                self
            }
            Err(e) => self.fail(Error::builder(e)),
        }
    }

    /// A `multipart/form-data` body, streamed part by part.
    #[cfg(feature = "multipart")]
    pub fn multipart(mut self, form: crate::multipart::Form) -> Self {
        let content_type = form.content_type();
        match HeaderValue::try_from(content_type) {
            Ok(value) => {
                self.headers.insert(header::CONTENT_TYPE, value);
                self.data = Some(Data::Body(form.into_body(), None));
                self
            }
            Err(e) => self.fail(Error::builder(e)),
        }
    }

    /// Whether redirects are followed (default true; false for `head`).
    pub fn allow_redirects(mut self, allow: bool) -> Self {
        self.allow_redirects = allow;
        self
    }

    /// How many redirects may be followed before
    /// [`Error::is_redirect`] (default 10).
    pub fn max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The character encoding of text bodies, form values and query
    /// parameters (aiohttp `encoding=`, default UTF-8), by WHATWG label.
    pub fn encoding(self, label: &str) -> Self {
        match Encoding::for_label(label.as_bytes()) {
            Some(encoding) => RequestBuilder {
                encoding: encoding.output_encoding(),
                ..self
            },
            None => self.fail(Error::builder(format!("unknown encoding {label:?}"))),
        }
    }

    /// The HTTP version: 1.1 (default) or 1.0.
    pub fn version(self, version: Version) -> Self {
        if version == Version::HTTP_11 || version == Version::HTTP_10 {
            RequestBuilder { version, ..self }
        } else {
            self.fail(Error::builder(format!(
                "unsupported HTTP version {version:?}"
            )))
        }
    }

    /// Compresses the body with deflate or gzip and sets
    /// `Content-Encoding` (aiohttp `compress=`); the body goes chunked.
    #[cfg(feature = "gzip")]
    pub fn compress(mut self, coding: Compression) -> Self {
        self.compress = Some(coding);
        self
    }

    /// Sends the body with chunked transfer coding in chunks of at most
    /// `chunk_size` bytes (aiohttp `chunked=`).
    pub fn chunked(mut self, chunk_size: usize) -> Self {
        self.chunked = Some(chunk_size.max(1));
        self
    }

    /// Sends `Expect: 100-continue` and waits for the server's go-ahead
    /// (up to 1 s) before the body (aiohttp `expect100=`).
    pub fn expect100(mut self, expect: bool) -> Self {
        self.expect100 = expect;
        self
    }

    /// Whether a response without `Content-Length` or chunked framing is
    /// read until the server closes (default true, aiohttp
    /// `read_until_eof=`); when false such a response is an error.
    pub fn read_until_eof(mut self, read_until_eof: bool) -> Self {
        self.read_until_eof = read_until_eof;
        self
    }

    /// The total timeout of this request (aiohttp `timeout=`).
    pub fn timeout(mut self, total: Duration) -> Self {
        let base = self.timeouts.unwrap_or_else(|| {
            self.session
                .as_ref()
                .map_or_else(Timeouts::default, |s| s.inner.timeouts)
        });
        self.timeouts = Some(base.total(Some(total)));
        self
    }

    /// Every timeout of this request, replacing the session's.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// The most bytes a buffered read of the response accepts (default:
    /// the session's).
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = Some(bytes);
        self
    }

    /// Whether a gzip or deflate response body is decoded (default: the
    /// session's).
    pub fn auto_decompress(mut self, decompress: bool) -> Self {
        self.auto_decompress = Some(decompress);
        self
    }

    /// Sends the request and waits for the response head (the body is
    /// read from the returned [`ClientResponse`]).
    ///
    /// # Errors
    ///
    /// See [`Error`]: invalid input, connection failures, timeouts,
    /// malformed responses, redirects that cannot be followed.
    pub fn send(self) -> impl Future<Output = Result<ClientResponse>> + Send + 'static {
        // Checked now, so that the future holds only the checked request
        // (boxed), not the builder.
        let prepared = self.prepare().map(|(session, p)| (session, Box::new(p)));
        async move {
            let (session, prepared) = prepared.map_err(|(err, url)| match url {
                Some(url) => err.with_url(&url),
                None => err,
            })?;
            send::execute(&session.inner, prepared).await
        }
    }

    /// Checks and assembles everything; the URL (if parsed) comes back
    /// with an error.
    #[allow(clippy::type_complexity)]
    fn prepare(self) -> std::result::Result<(ClientSession, Prepared), (Error, Option<Url>)> {
        let mut url = self.url.map_err(|e| (e, None))?;
        let fail = |err: Error, url: &Url| (err, Some(url.clone()));
        if let Some(err) = self.error {
            return Err(fail(err, &url));
        }
        let Some(session_handle) = self.session else {
            return Err(fail(Error::builder("no session"), &url));
        };
        let session = &session_handle.inner;
        if session.is_closed() {
            return Err(fail(
                Error::new(crate::error::Kind::SessionClosed, None),
                &url,
            ));
        }
        if self.upgrade {
            // RFC 6455 §3: ws and wss are http and https on the wire, and
            // cookies and credentials follow the http(s) origin (§4.1).
            let scheme = match url.scheme() {
                "ws" => Some("http"),
                "wss" => Some("https"),
                _ => None,
            };
            if let Some(scheme) = scheme
                && url.set_scheme(scheme).is_err()
            {
                return Err(fail(Error::builder("cannot use this URL"), &url));
            }
        }
        if !matches!(url.scheme(), "http" | "https") {
            let err = Error::builder(format!("unsupported URL scheme {:?}", url.scheme()));
            return Err(fail(err, &url));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(fail(Error::builder("URL has no host"), &url));
        }

        // Credentials: the URL's, or the request's, else the session's.
        let from_url = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let userinfo = format!("{}:{}@", url.username(), url.password().unwrap_or(""));
            let auth =
                BasicAuth::from_userinfo(&userinfo).map_err(|e| fail(Error::builder(e), &url))?;
            let _ = url.set_username("");
            let _ = url.set_password(None);
            auth
        };
        let auth = match (from_url, self.auth) {
            (Some(_), Some(_)) => {
                let err = Error::builder("credentials given both in the URL and with auth()");
                return Err(fail(err, &url));
            }
            (Some(auth), None) | (None, Some(auth)) => Some(auth),
            (None, None) => session.auth.clone(),
        };
        if auth.is_some() && self.headers.contains_key(header::AUTHORIZATION) {
            let err = Error::builder("an Authorization header cannot be combined with auth()");
            return Err(fail(err, &url));
        }

        // The query.
        let encoding = self.encoding;
        for params in self.params {
            match params {
                Params::Pairs(pairs) if !pairs.is_empty() => {
                    let mut query = url.query().unwrap_or_default().to_owned();
                    let mut ser = url::form_urlencoded::Serializer::for_suffix(&mut query, 0);
                    let encode = encoder(encoding);
                    ser.encoding_override(Some(&encode));
                    ser.extend_pairs(&pairs);
                    ser.finish();
                    url.set_query(Some(&query));
                }
                Params::Pairs(_) => {}
                Params::Raw(raw) => {
                    let raw = raw.trim_start_matches(['?', '&']);
                    if !raw.is_empty() {
                        let query = match url.query() {
                            Some(q) if !q.is_empty() => format!("{q}&{raw}"),
                            _ => raw.to_owned(),
                        };
                        url.set_query(Some(&query));
                    }
                }
            }
        }

        // Headers: the request's replace the session's of the same name.
        let mut headers = session.headers.clone();
        for name in self.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        let mut skip = Vec::new();
        for name in session.skip_auto_headers.iter().chain(&self.skip) {
            let auto = match *name {
                header::HOST => AutoHeader::Host,
                header::USER_AGENT => AutoHeader::UserAgent,
                header::ACCEPT => AutoHeader::Accept,
                header::ACCEPT_ENCODING => AutoHeader::AcceptEncoding,
                header::CONTENT_TYPE => AutoHeader::ContentType,
                header::CONNECTION => AutoHeader::Connection,
                _ => continue,
            };
            skip.push(auto);
        }

        // The body.
        let (body, content_type) = match self.data {
            None => (None, None),
            Some(Data::Body(body, content_type)) => (Some(body), content_type.map(str::to_owned)),
            Some(Data::Text(text)) => {
                let bytes = Bytes::from(encoding.encode(&text).0.into_owned());
                let content_type = format!(
                    "text/plain; charset={}",
                    encoding.name().to_ascii_lowercase()
                );
                (Some(Body::from(bytes)), Some(content_type))
            }
            Some(Data::Form(pairs)) => {
                let encode = encoder(encoding);
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .encoding_override(Some(&encode))
                    .extend_pairs(&pairs)
                    .finish();
                (
                    Some(Body::from(form)),
                    Some("application/x-www-form-urlencoded".to_owned()),
                )
            }
        };
        let content_type = content_type
            .map(|ct| HeaderValue::try_from(ct).map_err(|e| fail(Error::builder(e), &url)))
            .transpose()?;
        let cookies = (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        if let Some(cookies) = &cookies
            && HeaderValue::try_from(cookies.as_str()).is_err()
        {
            return Err(fail(Error::builder("invalid bytes in a cookie"), &url));
        }

        let prepared = Prepared {
            method: self.method,
            url,
            headers,
            auth: auth.map(|a| a.header_value()),
            cookies,
            body,
            content_type,
            skip,
            version: self.version,
            compress: self.compress,
            chunked: self.chunked,
            expect100: self.expect100,
            read_until_eof: self.read_until_eof,
            allow_redirects: self.allow_redirects,
            max_redirects: self.max_redirects,
            timeouts: self.timeouts.unwrap_or(session.timeouts),
            max_body_size: self.max_body_size.unwrap_or(session.max_body_size),
            auto_decompress: self.auto_decompress.unwrap_or(session.auto_decompress),
            upgrade: self.upgrade,
        };
        Ok((session_handle, prepared))
    }
}

/// Pairs of anything string-like as owned pairs.
fn owned_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect()
}

/// A header name and value from anything `http` can convert.
pub(crate) fn header_pair<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue)>
where
    K: TryInto<HeaderName>,
    K::Error: Into<http::Error>,
    V: TryInto<HeaderValue>,
    V::Error: Into<http::Error>,
{
    let name = name.try_into().map_err(|e| Error::builder(e.into()))?;
    let value = value.try_into().map_err(|e| Error::builder(e.into()))?;
    Ok((name, value))
}

/// Header names from anything `http` can convert.
pub(crate) fn header_names<I, N>(names: I) -> Result<Vec<HeaderName>>
where
    I: IntoIterator<Item = N>,
    N: TryInto<HeaderName>,
    N::Error: Into<http::Error>,
{
    names
        .into_iter()
        .map(|name| name.try_into().map_err(|e| Error::builder(e.into())))
        .collect()
}

/// Appends every field of `headers` (a name followed by `None`s repeats
/// it, as `HeaderMap::into_iter` yields them).
pub(crate) fn append_all(map: &mut HeaderMap, headers: HeaderMap) {
    let mut last: Option<HeaderName> = None;
    for (name, value) in headers {
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            map.append(name.clone(), value);
        }
    }
}

/// Encodes form and query text in `encoding` (`url` encodes in UTF-8
/// without it).
fn encoder(encoding: &'static Encoding) -> impl Fn(&str) -> std::borrow::Cow<'_, [u8]> {
    move |s| encoding.encode(s).0
}

impl IntoFuture for RequestBuilder {
    type Output = Result<ClientResponse>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<ClientResponse>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
