//! aiohttp's module-level `request()`, `get()`, ...: each request on a
//! one-off session.

use courier_proto::http::Method;

use crate::request::{IntoUrl, RequestBuilder};
use crate::session::ClientSession;

/// A request on a one-off [`ClientSession`] with every default (aiohttp
/// `aiohttp.request(method, url, ...)`); its connection is closed once the
/// response is read. For more than one request, share a session: it keeps
/// connections alive and cookies between requests.
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// use courier_client::http::Method;
/// let mut resp = courier_client::request(Method::GET, "http://127.0.0.1:8080/").send().await?;
/// println!("{}", resp.text().await?);
/// # Ok(()) }
/// ```
pub fn request(method: Method, url: impl IntoUrl) -> RequestBuilder {
    RequestBuilder::with_session(ClientSession::builder().build(), method, url.into_url())
}

/// A GET on a one-off session (aiohttp `aiohttp.get`).
pub fn get(url: impl IntoUrl) -> RequestBuilder {
    request(Method::GET, url)
}

/// A POST on a one-off session.
pub fn post(url: impl IntoUrl) -> RequestBuilder {
    request(Method::POST, url)
}

/// A PUT on a one-off session.
pub fn put(url: impl IntoUrl) -> RequestBuilder {
    request(Method::PUT, url)
}

/// A DELETE on a one-off session.
pub fn delete(url: impl IntoUrl) -> RequestBuilder {
    request(Method::DELETE, url)
}

/// A HEAD on a one-off session; redirects are not followed unless asked.
pub fn head(url: impl IntoUrl) -> RequestBuilder {
    request(Method::HEAD, url).allow_redirects(false)
}

/// An OPTIONS on a one-off session.
pub fn options(url: impl IntoUrl) -> RequestBuilder {
    request(Method::OPTIONS, url)
}

/// A PATCH on a one-off session.
pub fn patch(url: impl IntoUrl) -> RequestBuilder {
    request(Method::PATCH, url)
}

/// A WebSocket on a one-off session (aiohttp `aiohttp.ws_connect`); see
/// [`ClientSession::ws_connect`].
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::Error> {
/// let mut ws = courier_client::ws_connect("ws://127.0.0.1:8080/ws").await?;
/// ws.send_str("hi").await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "ws")]
pub fn ws_connect(url: impl IntoUrl) -> crate::ws::WsConnectBuilder {
    crate::ws::WsConnectBuilder::new(ClientSession::builder().build(), url.into_url())
}
