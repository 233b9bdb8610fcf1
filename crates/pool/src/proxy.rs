//! HTTP forward proxies (aiohttp `ProxyConnector`): plain-HTTP requests
//! are forwarded in absolute-form; HTTPS goes through a `CONNECT` tunnel,
//! then TLS to the origin inside it.

use std::sync::Arc;

use courier_proto::{Exchange, Limits, RecvHeadResult, Request, ResponseEvent, SendHeadResult};
use http::{HeaderValue, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connector::delegate_connector;
use crate::tcp::{TcpConnectorBuilder, TcpDial};
use crate::{
    BasicAuth, BoxError, BoxFuture, ConfigError, Dial, Error, Established, Pooled, ProxyInfo,
    Scheme, Stream, Target,
};

/// Bytes read from the proxy at a time while waiting for its answer to
/// `CONNECT`; the answer's size is bounded by courier-proto's
/// [`Limits::max_head_bytes`](courier_proto::Limits).
const READ_CHUNK: usize = 4096;

/// A connector through an HTTP forward proxy.
///
/// * `http://` targets: the connection goes to the proxy, and requests on
///   it must use absolute-form (`GET http://origin/path HTTP/1.1`) with the
///   `Proxy-Authorization` value of [`ProxyInfo::authorization`]; the
///   HTTP layer reads both from [`crate::Connection::proxy`].
/// * `https://` targets, and `http://` ones that ask for it
///   ([`Target::with_tunnel`], as `ws://` does): a `CONNECT origin:port`
///   tunnel (with `Proxy-Authorization` when credentials are set), then
///   TLS with the origin through it when the target is secure. A refusal is [`Error::ProxyStatus`] with the
///   proxy's status.
///
/// Connections are pooled per (proxy, origin). Unlike aiohttp 0.21 (whose
/// `ProxyConnector` forced `force_close`), connections are kept alive when
/// the proxy allows it, as current aiohttp does.
///
/// ```no_run
/// use courier_pool::{BasicAuth, ProxyConnector};
///
/// let connector = ProxyConnector::builder("http://proxy.internal:3128")
///     .proxy_auth(BasicAuth::new("user", "pass").unwrap())
///     .build()
///     .unwrap();
/// assert_eq!(connector.proxy(), "proxy.internal:3128");
/// ```
#[derive(Debug)]
pub struct ProxyConnector {
    inner: Pooled<ProxyDial>,
}

delegate_connector!(ProxyConnector);

impl ProxyConnector {
    /// A builder for a connector through the proxy at `url` (`http://`
    /// only; userinfo in it becomes the proxy credentials). TCP, DNS, TLS
    /// and pool options are those of [`crate::TcpConnector::builder`]
    /// (see [`TcpConnectorBuilder::proxy`]).
    pub fn builder(url: &str) -> ProxyConnectorBuilder {
        crate::TcpConnector::builder().proxy(url)
    }

    /// The proxy, as `host:port` (aiohttp `proxy`).
    pub fn proxy(&self) -> &str {
        &self.inner.dialer().forward.proxy
    }

    /// The proxy credentials, if any (aiohttp `proxy_auth`).
    pub fn proxy_auth(&self) -> Option<&BasicAuth> {
        self.inner.dialer().auth.as_ref()
    }

    /// Open connections to one endpoint (through this proxy).
    pub fn open_to(&self, target: &Target) -> usize {
        self.inner.open_to(target)
    }
}

/// Builds a [`ProxyConnector`].
#[derive(Debug)]
pub struct ProxyConnectorBuilder {
    tcp: TcpConnectorBuilder,
    url: String,
    auth: Option<BasicAuth>,
}

impl ProxyConnectorBuilder {
    pub(crate) fn new(tcp: TcpConnectorBuilder, url: &str) -> Self {
        Self {
            tcp,
            url: url.to_owned(),
            auth: None,
        }
    }

    /// Basic credentials for the proxy (aiohttp `proxy_auth`). Giving them
    /// both here and in the URL is an error at [`build`](Self::build).
    pub fn proxy_auth(mut self, auth: BasicAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Checks the settings and builds the connector.
    ///
    /// # Errors
    ///
    /// A proxy URL that is not `http://host[:port]`, credentials given twice,
    /// or any error of [`TcpConnectorBuilder::build`].
    pub fn build(self) -> Result<ProxyConnector, ConfigError> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("proxy URL {:?}: {e}", self.url)))?;
        let target = Target::from_uri(&uri)
            .map_err(|e| ConfigError::Invalid(format!("proxy URL {:?}: {e}", self.url)))?;
        if target.scheme() != Scheme::Http || uri.scheme_str() != Some("http") {
            return Err(ConfigError::Invalid(format!(
                "proxy URL {:?}: only http:// proxies are supported",
                self.url
            )));
        }
        let from_url = BasicAuth::from_userinfo(uri.authority().map_or("", |a| a.as_str()))?;
        let auth = match (self.auth, from_url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "proxy credentials given both in the URL and with proxy_auth".into(),
                ));
            }
            (a, b) => a.or(b),
        };
        let (config, tcp) = self.tcp.into_parts()?;
        let authorization = auth.as_ref().map(BasicAuth::header_value);
        let proxy = target.authority();
        let dial = ProxyDial {
            tcp,
            proxy_target: target,
            forward: Arc::new(ProxyInfo {
                proxy: proxy.clone(),
                tunnel: false,
                authorization: authorization.clone(),
            }),
            tunnel: Arc::new(ProxyInfo {
                proxy,
                tunnel: true,
                authorization,
            }),
            auth,
        };
        Ok(ProxyConnector {
            inner: Pooled::new(config, dial),
        })
    }
}

#[derive(Debug)]
struct ProxyDial {
    tcp: TcpDial,
    proxy_target: Target,
    auth: Option<BasicAuth>,
    forward: Arc<ProxyInfo>,
    tunnel: Arc<ProxyInfo>,
}

impl Dial for ProxyDial {
    fn dial<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        Box::pin(async move {
            let mut stream = self.tcp.connect_tcp(&self.proxy_target).await?;
            if !target.wants_tunnel() {
                return Ok(Established::via_proxy(stream, Arc::clone(&self.forward)));
            }
            tunnel(
                &mut stream,
                &self.forward.proxy,
                target,
                self.tunnel.authorization.as_ref(),
            )
            .await?;
            let stream = if target.is_secure() {
                self.tcp.tls_handshake(stream, target).await?
            } else {
                stream
            };
            Ok(Established::via_proxy(stream, Arc::clone(&self.tunnel)))
        })
    }
}

/// Opens a `CONNECT` tunnel to `target` over `stream` (a connection to the
/// proxy `proxy`), with `authorization` as `Proxy-Authorization`.
pub(crate) async fn tunnel(
    stream: &mut Stream,
    proxy: &str,
    target: &Target,
    authorization: Option<&HeaderValue>,
) -> Result<(), Error> {
    let fail = |source: BoxError| Error::Proxy {
        proxy: proxy.to_owned(),
        source,
    };
    let mut request = Request::connect(target.host(), target.port());
    if let Some(value) = authorization {
        request = request.header("Proxy-Authorization", value.as_bytes());
    }
    let mut exchange = Exchange::new(request, Limits::default())
        .proceed()
        .map_err(|e| fail(e.into()))?;
    stream
        .write_all(exchange.head())
        .await
        .map_err(|e| fail(e.into()))?;
    exchange.consume(exchange.head().len());
    stream.flush().await.map_err(|e| fail(e.into()))?;
    let mut exchange = match exchange.proceed().map_err(|e| fail(e.into()))? {
        SendHeadResult::RecvHead(exchange) => exchange,
        // CONNECT has no body and never expects 100-continue.
        SendHeadResult::SendBody(_) | SendHeadResult::Await100(_) => {
            return Err(fail("CONNECT request unexpectedly has a body".into()));
        }
    };

    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut pos = 0;
    let head = loop {
        let (used, event) = exchange
            .try_response(&buf[pos..])
            .map_err(|e| fail(e.into()))?;
        pos += used;
        match event {
            Some(ResponseEvent::Final(head)) => break head,
            Some(ResponseEvent::Informational(_)) => continue,
            None => {}
        }
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| fail(e.into()))?;
        buf.truncate(len + n);
        if n == 0 {
            return Err(fail(exchange.eof(&buf[pos..]).into()));
        }
    };
    if !head.status().is_success() {
        return Err(Error::ProxyStatus {
            proxy: proxy.to_owned(),
            target: target.authority(),
            status: head.status(),
        });
    }
    if pos < buf.len() {
        // The origin's TLS server never speaks first: bytes here are the
        // proxy's, and nothing the tunnel may carry.
        return Err(fail("bytes after the proxy's CONNECT answer".into()));
    }
    match exchange.proceed().map_err(|e| fail(e.into()))? {
        RecvHeadResult::Done(_) => Ok(()),
        RecvHeadResult::RecvBody(_) => Err(fail("2xx answer to CONNECT with a body".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    fn target() -> Target {
        Target::new(Scheme::Https, "origin.test", 8443).unwrap()
    }

    /// Runs `tunnel` against a scripted proxy that answers `answer` (and
    /// then closes if `close`); returns the result and the request bytes.
    async fn against(answer: &'static [u8], close: bool) -> (Result<(), Error>, String) {
        let (client, mut server): (DuplexStream, DuplexStream) = tokio::io::duplex(4096);
        let proxy = tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = server.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            server.write_all(answer).await.unwrap();
            if !close {
                // Keep the tunnel open until the client is done.
                let _ = server.read(&mut buf).await;
            }
            String::from_utf8(request).unwrap()
        });
        let mut stream = Stream::Duplex(client);
        let auth = BasicAuth::new("user", "pass").unwrap().header_value();
        let result = tunnel(&mut stream, "proxy.test:3128", &target(), Some(&auth)).await;
        drop(stream);
        (result, proxy.await.unwrap())
    }

    #[tokio::test]
    async fn a_200_opens_the_tunnel_and_the_request_is_authority_form() {
        let (result, request) =
            against(b"HTTP/1.1 200 Connection established\r\n\r\n", false).await;
        result.unwrap();
        assert!(
            request.starts_with("CONNECT origin.test:8443 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nHost: origin.test:8443\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn tinyproxy_style_http10_answer_with_headers_is_accepted() {
        let (result, _) = against(
            b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n",
            false,
        )
        .await;
        result.unwrap();
    }

    #[tokio::test]
    async fn refusals_carry_the_status() {
        for (answer, status) in [
            (&b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"[..], 407),
            (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!", 403),
            (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n", 503),
        ] {
            let (result, _) = against(answer, true).await;
            let err = result.unwrap_err();
            assert_eq!(err.proxy_status().map(|s| s.as_u16()), Some(status), "{err:?}");
            assert!(err.is_proxy());
            assert!(err.to_string().contains("origin.test:8443"));
        }
    }

    #[tokio::test]
    async fn garbage_eof_and_extra_bytes_are_proxy_errors() {
        for answer in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n",
            b"",
            b"HTTP/1.1 200 Connection established\r\n\r\nsurprise",
        ] {
            let (result, _) = against(answer, true).await;
            assert!(
                matches!(result, Err(Error::Proxy { .. })),
                "{answer:?}: {result:?}"
            );
        }
    }

    /// A plain target that asks for a tunnel (a `ws://` URL) gets a
    /// `CONNECT`, and requests on it use origin-form; one that does not is
    /// forwarded.
    #[tokio::test]
    async fn plain_targets_are_tunnelled_only_when_they_ask() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = tokio::spawn(async move {
            let mut firsts = Vec::new();
            for _ in 0..2 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                let got_head = tokio::time::timeout(std::time::Duration::from_millis(300), async {
                    while !request.ends_with(b"\r\n\r\n") {
                        let n = sock.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                })
                .await;
                if got_head.is_ok() && request.starts_with(b"CONNECT ") {
                    sock.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                }
                firsts.push(String::from_utf8(request).unwrap());
            }
            firsts
        });
        let connector = ProxyConnector::builder(&format!("http://127.0.0.1:{port}"))
            .build()
            .unwrap();
        let plain = Target::new(Scheme::Http, "origin.test", 8080).unwrap();
        let conn = crate::Connector::connect(&connector, &plain.clone().with_tunnel(true))
            .await
            .unwrap();
        assert!(conn.proxy().unwrap().is_tunnel());
        assert!(!conn.proxy().unwrap().uses_absolute_form());
        let forwarded = crate::Connector::connect(&connector, &plain).await.unwrap();
        assert!(forwarded.proxy().unwrap().uses_absolute_form());
        drop((conn, forwarded));
        let firsts = proxy.await.unwrap();
        assert!(
            firsts[0].starts_with("CONNECT origin.test:8080 HTTP/1.1\r\n"),
            "{firsts:?}"
        );
        // The forwarded connection sends nothing until a request does.
        assert_eq!(firsts[1], "", "{firsts:?}");
    }

    #[test]
    fn credentials_twice_and_non_http_proxies_are_refused() {
        let auth = || BasicAuth::new("u", "p").unwrap();
        assert!(
            ProxyConnector::builder("http://a:b@proxy:3128")
                .proxy_auth(auth())
                .build()
                .is_err()
        );
        assert!(
            ProxyConnector::builder("https://proxy:3128")
                .build()
                .is_err()
        );
        assert!(
            ProxyConnector::builder("socks5://proxy:1080")
                .build()
                .is_err()
        );
        assert!(ProxyConnector::builder("not a url").build().is_err());
        let c = ProxyConnector::builder("http://us%65r:p%40ss@Proxy:3128")
            .build()
            .unwrap();
        assert_eq!(c.proxy(), "proxy:3128");
        let a = c.proxy_auth().unwrap();
        assert_eq!((a.login(), a.password()), ("user", "p@ss"));
    }
}
