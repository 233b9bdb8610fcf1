//! TCP connections, with DNS, Happy Eyeballs and TLS (aiohttp `TCPConnector`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::connector::delegate_connector;
use crate::dns::{CachedHost, Dns, Resolve};
use crate::happy::{self, TcpOptions};
use crate::tls::{Fingerprint, TlsConfig, TlsConnector};
use crate::{
    BoxFuture, ConfigError, Dial, Error, Established, Family, PoolConfig, PoolConfigBuilder,
    Pooled, ProxyConnectorBuilder, Stream, Target,
};

/// The everyday connector: TCP to the origin, TLS for `https`.
///
/// ```no_run
/// use std::time::Duration;
/// use courier_pool::{Connector, Family, TcpConnector, Target};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = TcpConnector::builder()
///     .limit(Some(50))
///     .limit_per_host(Some(8))
///     .conn_timeout(Duration::from_secs(5))
///     .use_dns_cache(true)
///     .family(Family::V4)
///     .build()?;
/// let target = Target::from_uri(&"https://example.com/".parse()?)?;
/// let conn = connector.connect(&target).await?;
/// assert!(conn.stream().is_some_and(|s| s.is_tls()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpConnector {
    inner: Pooled<TcpDial>,
}

delegate_connector!(TcpConnector);

impl TcpConnector {
    /// A connector with every default: verification against the platform
    /// roots, no DNS cache, both address families.
    ///
    /// # Errors
    ///
    /// See [`TcpConnectorBuilder::build`] (no trusted roots found).
    pub fn new() -> Result<Self, ConfigError> {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> TcpConnectorBuilder {
        TcpConnectorBuilder::default()
    }

    /// Whether certificates are verified (aiohttp `verify_ssl`).
    pub fn verify_ssl(&self) -> bool {
        self.inner.dialer().tls.verify_ssl()
    }

    /// The pinned certificate digest, if any (aiohttp `fingerprint`).
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.inner.dialer().tls.fingerprint()
    }

    /// The rustls configuration used for `https` (aiohttp `ssl_context`).
    pub fn ssl_context(&self) -> &Arc<ClientConfig> {
        self.inner.dialer().tls.client_config()
    }

    /// The address families connected to (aiohttp `family`).
    pub fn family(&self) -> Family {
        self.inner.dialer().dns.family()
    }

    /// Whether resolved names are cached (aiohttp `use_dns_cache`).
    pub fn use_dns_cache(&self) -> bool {
        self.inner.dialer().dns.uses_cache()
    }

    /// The cached names with their addresses and expiry (aiohttp `cached_hosts`).
    pub fn cached_hosts(&self) -> Vec<CachedHost> {
        self.inner.dialer().dns.cached_hosts()
    }

    /// Forgets cached names: one `(host, port)` entry when both are given,
    /// everything otherwise (aiohttp `clear_dns_cache`).
    pub fn clear_dns_cache(&self, host: Option<&str>, port: Option<u16>) {
        self.inner.dialer().dns.clear_dns_cache(host, port);
    }

    /// The local address sockets bind to, if set (aiohttp `local_addr`).
    pub fn local_addr(&self) -> Option<IpAddr> {
        self.inner.dialer().opts.local_addr
    }

    /// Open connections to one endpoint.
    pub fn open_to(&self, target: &Target) -> usize {
        self.inner.open_to(target)
    }
}

/// Builds a [`TcpConnector`] (or, with [`proxy`](Self::proxy), a
/// [`crate::ProxyConnector`]); every method overrides one default.
#[derive(Debug)]
pub struct TcpConnectorBuilder {
    pool: PoolConfigBuilder,
    tls: TlsConfig,
    opts: TcpOptions,
    family: Family,
    use_dns_cache: bool,
    dns_cache_size: Option<usize>,
    resolver: Option<Arc<dyn Resolve>>,
    error: Option<ConfigError>,
}

impl Default for TcpConnectorBuilder {
    fn default() -> Self {
        Self {
            pool: PoolConfig::builder(),
            tls: TlsConfig::default(),
            opts: TcpOptions::default(),
            family: Family::Any,
            use_dns_cache: false,
            dns_cache_size: None,
            resolver: None,
            error: None,
        }
    }
}

impl TcpConnectorBuilder {
    /// Pool settings: see [`PoolConfig::conn_timeout`].
    pub fn conn_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool = self.pool.conn_timeout(timeout);
        self
    }

    /// Pool settings: see [`PoolConfig::keepalive_timeout`].
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.pool = self.pool.keepalive_timeout(timeout);
        self
    }

    /// Pool settings: see [`PoolConfig::limit`].
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        self.pool = self.pool.limit(limit);
        self
    }

    /// Pool settings: see [`PoolConfig::limit_per_host`].
    pub fn limit_per_host(mut self, limit: Option<usize>) -> Self {
        self.pool = self.pool.limit_per_host(limit);
        self
    }

    /// Pool settings: see [`PoolConfig::force_close`].
    pub fn force_close(mut self, force_close: bool) -> Self {
        self.pool = self.pool.force_close(force_close);
        self
    }

    /// Pool settings: see [`PoolConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool = self.pool.acquire_timeout(timeout);
        self
    }

    /// Pool settings: see [`PoolConfig::max_lifetime`].
    pub fn max_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.pool = self.pool.max_lifetime(lifetime);
        self
    }

    /// Whether to verify server certificates (default `true`).
    ///
    /// **Danger**: `false` accepts any certificate from anyone able to
    /// intercept the connection. Pin a [`fingerprint`](Self::fingerprint)
    /// if you must talk to a server with a certificate you cannot verify.
    pub fn verify_ssl(mut self, verify: bool) -> Self {
        self.tls = self.tls.verify_ssl(verify);
        self
    }

    /// Accepts only a server whose leaf certificate has this digest
    /// (aiohttp `fingerprint`); checked after the handshake.
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.tls = self.tls.fingerprint(fingerprint);
        self
    }

    /// Uses a rustls configuration of your own (aiohttp `ssl_context`);
    /// courier sets its ALPN to `http/1.1`.
    pub fn ssl_context(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = self.tls.ssl_context(config);
        self
    }

    /// Trusts one more root certificate.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.tls = self.tls.add_root_certificate(cert);
        self
    }

    /// Trusts the root certificates in a PEM file's contents; an
    /// unparsable file is reported by [`build`](Self::build).
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Self {
        match self.tls.clone().add_root_certificates_pem(pem) {
            Ok(tls) => self.tls = tls,
            Err(e) => self.error = self.error.or(Some(e)),
        }
        self
    }

    /// Presents this client certificate chain when a server asks.
    pub fn client_auth(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.tls = self.tls.client_auth(chain, key);
        self
    }

    /// Caches resolved names, honouring their TTL (aiohttp `use_dns_cache`;
    /// default `false`).
    pub fn use_dns_cache(mut self, use_cache: bool) -> Self {
        self.use_dns_cache = use_cache;
        self
    }

    /// Most names the DNS cache holds.
    pub fn dns_cache_size(mut self, entries: usize) -> Self {
        self.dns_cache_size = Some(entries);
        self
    }

    /// Resolves names with your own resolver.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Resolves names with the system resolver (getaddrinfo, on tokio's
    /// blocking pool) instead of hickory-resolver.
    pub fn system_resolver(self) -> Self {
        self.resolver(crate::dns::SystemResolver::new())
    }

    /// Connects only to addresses of this family (aiohttp `family`).
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Binds sockets to this local address first (aiohttp `local_addr`).
    pub fn local_addr(mut self, addr: impl Into<Option<IpAddr>>) -> Self {
        self.opts.local_addr = addr.into();
        self
    }

    /// Sets `TCP_NODELAY` (default `true`: requests go out at once).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.opts.nodelay = nodelay;
        self
    }

    /// Idle time before TCP keepalive probes start; `None` turns keepalive
    /// off. Default [`DEFAULT_TCP_KEEPALIVE`](crate::DEFAULT_TCP_KEEPALIVE).
    pub fn tcp_keepalive(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.opts.keepalive = idle.into();
        self
    }

    /// Replaces every TLS setting at once with `tls` (for what the
    /// shortcuts here do not cover, such as
    /// [`TlsConfig::built_in_roots`]); later TLS shortcuts modify it.
    pub fn tls_config(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// How long one connection attempt gets before the next address is
    /// tried in parallel (RFC 8305; default
    /// [`DEFAULT_HAPPY_EYEBALLS_DELAY`](crate::DEFAULT_HAPPY_EYEBALLS_DELAY)).
    pub fn happy_eyeballs_delay(mut self, delay: Duration) -> Self {
        self.opts.happy_eyeballs_delay = delay;
        self
    }

    /// Goes through the HTTP proxy at `url` instead of connecting directly:
    /// continues as a [`ProxyConnectorBuilder`].
    pub fn proxy(self, url: &str) -> ProxyConnectorBuilder {
        ProxyConnectorBuilder::new(self, url)
    }

    /// Checks the settings and builds the connector.
    ///
    /// # Errors
    ///
    /// Conflicting or zero pool settings ([`PoolConfigBuilder::build`]),
    /// unparsable certificates, or no trusted root certificates at all.
    pub fn build(self) -> Result<TcpConnector, ConfigError> {
        let (config, dial) = self.into_parts()?;
        Ok(TcpConnector {
            inner: Pooled::new(config, dial),
        })
    }

    pub(crate) fn into_parts(self) -> Result<(PoolConfig, TcpDial), ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let config = self.pool.build()?;
        let tls = self.tls.build()?;
        let resolver = match self.resolver {
            Some(r) => r,
            None => crate::dns::default_resolver(self.family),
        };
        let dns = Dns::new(
            resolver,
            self.use_dns_cache,
            self.family,
            self.dns_cache_size,
        );
        Ok((
            config,
            TcpDial {
                dns,
                opts: self.opts,
                tls,
            },
        ))
    }
}

/// Resolves, connects (Happy Eyeballs) and, for `https`, shakes hands.
#[derive(Debug)]
pub(crate) struct TcpDial {
    dns: Dns,
    opts: TcpOptions,
    tls: TlsConnector,
}

impl TcpDial {
    /// A TCP connection to `target`'s host and port.
    pub(crate) async fn connect_tcp(&self, target: &Target) -> Result<Stream, Error> {
        let addrs = self.dns.lookup(target.host(), target.port()).await?;
        match happy::connect(&addrs, &self.opts).await {
            Ok(tcp) => Ok(Stream::Tcp(tcp)),
            Err(e) => {
                // Cached addresses that all failed are stale: look up again next time.
                self.dns.forget(target.host(), target.port());
                Err(e)
            }
        }
    }

    /// TLS with `target`'s host over `stream`.
    pub(crate) async fn tls_handshake(
        &self,
        stream: Stream,
        target: &Target,
    ) -> Result<Stream, Error> {
        self.tls.connect(stream, target.host()).await
    }
}

impl Dial for TcpDial {
    fn dial<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        Box::pin(async move {
            let stream = self.connect_tcp(target).await?;
            let stream = if target.is_secure() {
                self.tls_handshake(stream, target).await?
            } else {
                stream
            };
            Ok(Established::new(stream))
        })
    }
}
