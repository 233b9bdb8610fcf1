//! Name resolution for the TCP connector: the [`Resolve`] trait, three
//! resolvers, and the DNS cache (aiohttp's `use_dns_cache`).
//!
//! # Tour
//!
//! * [`Resolve`] turns a host name into [`Resolved`] addresses, with the
//!   time they stay valid. Plug in your own to resolve names your way.
//! * [`HickoryResolver`] (feature `hickory-dns`, the default) reads
//!   `/etc/resolv.conf` and `/etc/hosts` and asks the name servers itself,
//!   honouring each answer's TTL.
//! * [`SystemResolver`] calls the C library's `getaddrinfo` on tokio's
//!   blocking pool: whatever the OS does (nsswitch, mDNS, VPN split DNS).
//! * [`StaticResolver`] answers from a fixed table (like curl's
//!   `--resolve`), for tests and for pinning names.
//! * The crate-internal `Dns` joins a resolver, the [`Family`] filter and
//!   the cache, keyed by `(host, port)` as in aiohttp, bounded to
//!   [`DEFAULT_DNS_CACHE_SIZE`] entries, each kept for its TTL (or
//!   [`DEFAULT_SYSTEM_DNS_TTL`] when the resolver gave none). IP literals
//!   never reach a resolver. [`CachedHost`] is what the cache reports.
//!
//! No lock is held across an `.await`: two concurrent lookups of a name
//! that is not cached both ask the resolver, and the later answer wins.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, trace};

use crate::{BoxError, BoxFuture, Error};

/// How long a cache entry lives when its resolver gave no TTL: 10 seconds,
/// aiohttp's `ttl_dns_cache` default.
///
/// This applies to [`SystemResolver`] (`getaddrinfo` does not report
/// TTLs), [`StaticResolver`] and any [`Resolve`] returning
/// [`Resolved::new`]`(addrs, None)`. Short enough that a changed record is
/// seen soon, long enough that a burst of requests to one host resolves
/// once.
pub const DEFAULT_SYSTEM_DNS_TTL: Duration = Duration::from_secs(10);

/// Most `(host, port)` entries the DNS cache keeps: 1024.
///
/// A client talks to far fewer hosts than that in any TTL window; the
/// bound only stops a crawler-like workload from growing the cache without
/// limit. When it is full, expired entries go first, then the one that
/// would expire soonest.
pub const DEFAULT_DNS_CACHE_SIZE: usize = 1024;

/// The longest a resolver's answer is trusted, whatever TTL it claims: one
/// day, hickory's own `MAX_TTL` (what it gives `/etc/hosts` entries).
/// Also keeps `now + ttl` far from overflowing.
const MAX_DNS_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Which address families a connector may connect to (aiohttp `family`).
///
/// Addresses of another family are dropped after resolution; when none is
/// left the connection fails with [`Error::NoAddresses`]. It also applies
/// to IP literals in URLs.
///
/// ```
/// use courier_pool::Family;
///
/// assert!(Family::V4.allows(&"192.0.2.1".parse().unwrap()));
/// assert!(!Family::V4.allows(&"2001:db8::1".parse().unwrap()));
/// assert!(Family::Any.allows(&"2001:db8::1".parse().unwrap()));
/// assert_eq!(Family::V6.to_string(), "IPv6");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// IPv4 and IPv6 (the default).
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    /// Whether an address of this family may be connected to.
    pub fn allows(self, ip: &IpAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => ip.is_ipv4(),
            Self::V6 => ip.is_ipv6(),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Any => "IP",
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// The answer of a [`Resolve`]: the addresses of a name, in the order to
/// try them, and until when they may be reused.
///
/// ```
/// use std::time::Duration;
/// use courier_pool::Resolved;
///
/// let r = Resolved::new(["192.0.2.1".parse().unwrap()], Some(Duration::from_secs(60)));
/// assert_eq!(r.addrs().len(), 1);
/// assert!(r.valid_until().is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    addrs: Vec<IpAddr>,
    valid_until: Option<Instant>,
}

impl Resolved {
    /// Addresses valid for `ttl` from now; `None` lets the cache apply
    /// [`DEFAULT_SYSTEM_DNS_TTL`]. A TTL of zero is used once and not
    /// cached; TTLs above one day are cut to one day. Repeated addresses
    /// are kept once, in the order first seen.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>, ttl: Option<Duration>) -> Self {
        let mut seen = HashSet::new();
        let addrs = addrs.into_iter().filter(|ip| seen.insert(*ip)).collect();
        let valid_until = ttl.map(|ttl| {
            let now = Instant::now();
            now.checked_add(ttl.min(MAX_DNS_TTL)).unwrap_or(now)
        });
        Self { addrs, valid_until }
    }

    /// The addresses, in the resolver's order.
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// When the answer expires; `None` when the resolver gave no TTL.
    pub fn valid_until(&self) -> Option<Instant> {
        self.valid_until
    }

    /// The addresses, by value.
    pub fn into_addrs(self) -> Vec<IpAddr> {
        self.addrs
    }
}

/// Resolves host names to IP addresses: implement it to plug in a resolver
/// of your own.
///
/// The host is a name as found in a URL, lower-cased, never an IP literal
/// (those are not resolved). An empty answer is turned into
/// [`Error::NoAddresses`], an `Err` into [`Error::Dns`].
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use courier_pool::{BoxError, BoxFuture, Resolve, Resolved};
///
/// /// Sends every name to one address.
/// #[derive(Debug)]
/// struct Everything(IpAddr);
///
/// impl Resolve for Everything {
///     fn resolve<'a>(&'a self, _host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
///         Box::pin(async move { Ok(Resolved::new([self.0], None)) })
///     }
/// }
/// # let _ = Everything(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// ```
pub trait Resolve: Send + Sync + fmt::Debug + 'static {
    /// The addresses of `host`.
    ///
    /// # Cancel safety
    ///
    /// The future may be dropped at any point (the connector's
    /// `conn_timeout` does so); an implementation must not leave shared
    /// state half updated when that happens.
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>>;
}

impl<R: Resolve + ?Sized> Resolve for Arc<R> {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
        (**self).resolve(host)
    }
}

#[cfg(feature = "hickory-dns")]
pub use self::hickory::HickoryResolver;

#[cfg(feature = "hickory-dns")]
mod hickory {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_resolver::TokioResolver;
    use hickory_resolver::config::{
        LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
    };
    use hickory_resolver::net::NetError;
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use tracing::warn;

    use super::{Family, Resolve, Resolved};
    use crate::{BoxError, BoxFuture};

    /// Resolves names with [hickory-resolver]: `/etc/hosts` first, then the
    /// name servers of `/etc/resolv.conf`, asking for A and AAAA records in
    /// parallel; each answer carries its TTL.
    ///
    /// When `/etc/resolv.conf` is missing, unreadable or names no server,
    /// it asks a name server on this host (`127.0.0.1`), which is what the
    /// C library does then, and logs a warning; `/etc/hosts` is used
    /// either way. `localhost` and its subdomains are answered with the
    /// loopback addresses without asking anyone (RFC 6761).
    ///
    /// hickory's own response cache is turned off: the connector's DNS
    /// cache is the one cache, so turning it off (`use_dns_cache(false)`)
    /// really resolves each time. Build one per connector and share it.
    ///
    /// ```
    /// use courier_pool::HickoryResolver;
    ///
    /// let resolver = HickoryResolver::new()?;
    /// # drop(resolver);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [hickory-resolver]: https://docs.rs/hickory-resolver
    #[derive(Debug, Clone)]
    pub struct HickoryResolver {
        inner: TokioResolver,
    }

    impl HickoryResolver {
        /// A resolver configured from the system (`/etc/resolv.conf`,
        /// `/etc/hosts`), asking for both IPv4 and IPv6 addresses.
        ///
        /// Needs no tokio runtime; lookups do.
        ///
        /// # Errors
        ///
        /// When hickory refuses to build the resolver (it does not with
        /// the features courier enables; the signature leaves room).
        pub fn new() -> io::Result<Self> {
            Self::with_family(Family::Any)
        }

        /// Like [`new`](Self::new), but for [`Family::V4`] or
        /// [`Family::V6`] only the matching record type is asked for, so
        /// no time is spent waiting for answers that would be dropped.
        pub(crate) fn with_family(family: Family) -> io::Result<Self> {
            let (config, options) =
                config_or_fallback(hickory_resolver::system_conf::read_system_conf());
            Self::from_config(config, options, family)
        }

        fn from_config(
            config: ResolverConfig,
            mut options: ResolverOpts,
            family: Family,
        ) -> io::Result<Self> {
            options.ip_strategy = match family {
                Family::Any => LookupIpStrategy::Ipv4AndIpv6,
                Family::V4 => LookupIpStrategy::Ipv4Only,
                Family::V6 => LookupIpStrategy::Ipv6Only,
            };
            // The connector's cache is the one cache (moka treats 0 as
            // "store nothing").
            options.cache_size = 0;
            options.use_hosts_file = ResolveHosts::Always;
            let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(options)
                .build()
                .map_err(io::Error::other)?;
            Ok(Self { inner })
        }
    }

    /// The system configuration, or, when it cannot be had, a name server
    /// on this host as glibc assumes without `resolv.conf` (hickory's
    /// `ResolverConfig::default()` has no name server at all, so every
    /// name not in `/etc/hosts` would fail).
    fn config_or_fallback(
        read: Result<(ResolverConfig, ResolverOpts), NetError>,
    ) -> (ResolverConfig, ResolverOpts) {
        match read {
            Ok(system) => system,
            Err(error) => {
                warn!(
                    %error,
                    "cannot use /etc/resolv.conf; asking a name server on 127.0.0.1 instead"
                );
                let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
                (
                    ResolverConfig::from_name_servers(vec![local]),
                    ResolverOpts::default(),
                )
            }
        }
    }

    impl Resolve for HickoryResolver {
        fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
            Box::pin(async move {
                let lookup = self.inner.lookup_ip(host).await?;
                // hickory's deadline is a std `Instant`; keep the remaining
                // time, so the cache can count in tokio's (pausable) clock.
                let ttl = lookup
                    .valid_until()
                    .saturating_duration_since(std::time::Instant::now());
                Ok(Resolved::new(lookup.iter(), Some(ttl)))
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A name `/etc/hosts` maps to an IPv4 address, other than the
        /// `localhost` names hickory answers without reading the file.
        fn name_from_hosts_file() -> Option<(String, IpAddr)> {
            let text = std::fs::read_to_string("/etc/hosts").ok()?;
            text.lines().find_map(|line| {
                let line = line.split('#').next()?;
                let mut words = line.split_whitespace();
                let ip: IpAddr = words.next()?.parse().ok()?;
                let name = words.find(|n| !n.contains("localhost"))?;
                ip.is_ipv4().then(|| (name.to_ascii_lowercase(), ip))
            })
        }

        #[test]
        fn builds_outside_a_runtime() {
            HickoryResolver::new().unwrap();
        }

        #[tokio::test]
        async fn resolves_localhost() {
            let r = HickoryResolver::new().unwrap();
            let got = r.resolve("localhost").await.unwrap();
            assert!(
                got.addrs().contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
                "{got:?}"
            );
            // hickory answers localhost itself (RFC 6761), with both.
            assert!(got.addrs().iter().all(|ip| ip.is_loopback()), "{got:?}");
            assert!(got.valid_until().is_some());
        }

        #[tokio::test]
        async fn reads_the_hosts_file() {
            let Some((name, ip)) = name_from_hosts_file() else {
                return; // nothing but localhost in /etc/hosts
            };
            // IPv4 only: no AAAA query escapes to a name server.
            let r = HickoryResolver::with_family(Family::V4).unwrap();
            let got = r.resolve(&name).await.unwrap();
            assert_eq!(got.addrs(), [ip], "{name}");
        }

        #[tokio::test]
        async fn without_resolv_conf_still_reads_the_hosts_file() {
            let missing = Err(NetError::from(io::Error::from(io::ErrorKind::NotFound)));
            let (config, options) = config_or_fallback(missing);
            assert_eq!(config.name_servers()[0].ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
            let r = HickoryResolver::from_config(config, options, Family::V4).unwrap();
            let got = r.resolve("localhost").await.unwrap();
            assert_eq!(got.addrs(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
            if let Some((name, ip)) = name_from_hosts_file() {
                assert_eq!(r.resolve(&name).await.unwrap().addrs(), [ip], "{name}");
            }
        }
    }
}

/// Resolves names with the C library's `getaddrinfo`, on tokio's blocking
/// thread pool: the OS's own resolution (nsswitch, mDNS, VPN split DNS...).
///
/// `getaddrinfo` does not report TTLs: cached answers live
/// [`DEFAULT_SYSTEM_DNS_TTL`]. A lookup that is cancelled keeps a blocking
/// thread until `getaddrinfo` returns.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use courier_pool::{Resolve, SystemResolver};
///
/// let found = SystemResolver::new().resolve("localhost").await.unwrap();
/// assert!(found.addrs().iter().all(|ip| ip.is_loopback()));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SystemResolver {
    _private: (),
}

impl SystemResolver {
    /// The system resolver.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(Resolved::new(addrs.map(|a| a.ip()), None))
        })
    }
}

/// Answers from a fixed table of names and addresses, like curl's
/// `--resolve`: for tests, and to pin names to addresses.
///
/// Names are matched ASCII case-insensitively; a name not in the table is
/// an error (there is no fallback to DNS). Answers have no TTL, so the
/// cache keeps them [`DEFAULT_SYSTEM_DNS_TTL`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
/// use courier_pool::{Resolve, StaticResolver};
///
/// let resolver = StaticResolver::new()
///     .add("api.example", [IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST)]);
/// let found = resolver.resolve("api.example").await.unwrap();
/// assert_eq!(found.addrs().len(), 2);
/// assert!(resolver.resolve("other.example").await.is_err());
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `host` to `addrs`, after any addresses it already had.
    pub fn add(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.names
            .entry(host.to_ascii_lowercase())
            .or_default()
            .extend(addrs);
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
        let found = self.names.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            match found {
                Some(addrs) => Ok(Resolved::new(addrs, None)),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is not in the static resolver's table"),
                )
                .into()),
            }
        })
    }
}

/// One entry of the DNS cache, as reported by the connector's
/// `cached_hosts()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedHost {
    host: String,
    port: u16,
    addrs: Vec<IpAddr>,
    expires: Instant,
}

impl CachedHost {
    /// The name that was resolved.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the entry is for (the cache is keyed by host and port, as
    /// in aiohttp).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The addresses, as the resolver gave them (before the family filter).
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// When the entry expires and the next lookup asks the resolver again.
    pub fn expires(&self) -> Instant {
        self.expires
    }
}

/// The `(host, port)` → addresses cache: bounded, each entry kept for its
/// TTL. Every method takes the lock briefly; none awaits.
#[derive(Debug)]
struct DnsCache {
    capacity: usize,
    entries: Mutex<HashMap<(String, u16), Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    addrs: Vec<IpAddr>,
    expires: Instant,
    inserted: Instant,
}

impl DnsCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, u16), Entry>> {
        // The map is consistent after every statement: a panic elsewhere
        // while holding the lock leaves nothing half done.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live entry for `(host, port)`; an expired one is dropped.
    fn get(&self, host: &str, port: u16, now: Instant) -> Option<Vec<IpAddr>> {
        let key = (host.to_owned(), port);
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(entry) if entry.expires > now => Some(entry.addrs.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Stores an answer that expires at `expires`; when the cache is full,
    /// expired entries are dropped, then the one expiring soonest (the
    /// oldest among equals).
    fn insert(&self, host: &str, port: u16, addrs: Vec<IpAddr>, expires: Instant, now: Instant) {
        if self.capacity == 0 || expires <= now || addrs.is_empty() {
            return;
        }
        let key = (host.to_owned(), port);
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            entries.retain(|_, e| e.expires > now);
            while entries.len() >= self.capacity {
                let victim = entries
                    .iter()
                    .min_by_key(|(_, e)| (e.expires, e.inserted))
                    .map(|(k, _)| k.clone());
                match victim {
                    Some(k) => entries.remove(&k),
                    None => break,
                };
            }
        }
        entries.insert(
            key,
            Entry {
                addrs,
                expires,
                inserted: now,
            },
        );
    }

    /// Drops the entries matching `host` and `port`; `None` matches any.
    fn clear(&self, host: Option<&str>, port: Option<u16>) {
        let mut entries = self.lock();
        match (host, port) {
            (Some(h), Some(p)) => {
                entries.remove(&(h.to_owned(), p));
            }
            (None, None) => entries.clear(),
            _ => entries.retain(|(h, p), _| {
                !(host.is_none_or(|host| host == h) && port.is_none_or(|port| port == *p))
            }),
        }
    }

    /// The live entries, sorted by host then port.
    fn snapshot(&self, now: Instant) -> Vec<CachedHost> {
        let mut hosts: Vec<CachedHost> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.expires > now)
            .map(|((host, port), e)| CachedHost {
                host: host.clone(),
                port: *port,
                addrs: e.addrs.clone(),
                expires: e.expires,
            })
            .collect();
        hosts.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        hosts
    }
}

/// The resolver a connector uses unless told otherwise: hickory with the
/// `hickory-dns` feature (asking only for `family`'s record types), else
/// the system resolver. Should hickory refuse to build, the system
/// resolver is used and a warning logged.
pub(crate) fn default_resolver(family: Family) -> Arc<dyn Resolve> {
    #[cfg(feature = "hickory-dns")]
    match HickoryResolver::with_family(family) {
        Ok(hickory) => return Arc::new(hickory),
        Err(error) => {
            tracing::warn!(%error, "cannot build hickory-resolver; using the system resolver");
        }
    }
    #[cfg(not(feature = "hickory-dns"))]
    let _ = family;
    Arc::new(SystemResolver::new())
}

/// A connector's name resolution: a resolver, the optional cache and the
/// family filter.
#[derive(Debug)]
pub(crate) struct Dns {
    resolver: Arc<dyn Resolve>,
    cache: Option<DnsCache>,
    family: Family,
}

impl Dns {
    /// Resolution with `resolver`, cached when `use_cache` in at most
    /// `cache_size` entries (`None`: [`DEFAULT_DNS_CACHE_SIZE`]; 0 caches
    /// nothing), keeping only addresses of `family`.
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        use_cache: bool,
        family: Family,
        cache_size: Option<usize>,
    ) -> Self {
        let size = cache_size.unwrap_or(DEFAULT_DNS_CACHE_SIZE);
        Self {
            resolver,
            cache: use_cache.then(|| DnsCache::new(size)),
            family,
        }
    }

    /// Whether answers are cached.
    pub(crate) fn uses_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// The family filter.
    pub(crate) fn family(&self) -> Family {
        self.family
    }

    /// The socket addresses for `host` and `port`, in the resolver's order,
    /// of the allowed family only. An IP literal is returned as is (still
    /// subject to the family filter); a name comes from the cache when a
    /// live entry exists, else from the resolver (and is then cached).
    ///
    /// # Errors
    ///
    /// [`Error::Dns`] when the resolver fails, [`Error::NoAddresses`] when
    /// no address of the family is left.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the cache is only touched between awaits.
    pub(crate) async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.keep_family(host, port, vec![ip]);
        }
        if let Some(cache) = &self.cache
            && let Some(addrs) = cache.get(host, port, Instant::now())
        {
            trace!(host, port, "DNS cache hit");
            return self.keep_family(host, port, addrs);
        }
        let resolved = self
            .resolver
            .resolve(host)
            .await
            .map_err(|source| Error::Dns {
                host: host.to_owned(),
                source,
            })?;
        debug!(host, addrs = ?resolved.addrs(), "resolved");
        if let Some(cache) = &self.cache {
            let now = Instant::now();
            let expires = resolved
                .valid_until()
                .unwrap_or_else(|| now.checked_add(DEFAULT_SYSTEM_DNS_TTL).unwrap_or(now));
            cache.insert(host, port, resolved.addrs().to_vec(), expires, now);
        }
        self.keep_family(host, port, resolved.into_addrs())
    }

    fn keep_family(
        &self,
        host: &str,
        port: u16,
        addrs: Vec<IpAddr>,
    ) -> Result<Vec<SocketAddr>, Error> {
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|ip| self.family.allows(ip))
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        if kept.is_empty() {
            return Err(Error::NoAddresses {
                host: host.to_owned(),
                family: self.family,
            });
        }
        Ok(kept)
    }

    /// Drops the cached entry for `(host, port)`: connecting to every one
    /// of its addresses failed, so the next attempt resolves again.
    pub(crate) fn forget(&self, host: &str, port: u16) {
        if let Some(cache) = &self.cache {
            cache.clear(Some(host), Some(port));
        }
    }

    /// The live cache entries, sorted by host and port (empty without a
    /// cache).
    pub(crate) fn cached_hosts(&self) -> Vec<CachedHost> {
        self.cache
            .as_ref()
            .map(|cache| cache.snapshot(Instant::now()))
            .unwrap_or_default()
    }

    /// Clears cache entries (aiohttp `clear_dns_cache(host, port)`): with
    /// both, the one entry; with neither, all; with only a host, every
    /// port of it; with only a port, every host on it.
    pub(crate) fn clear_dns_cache(&self, host: Option<&str>, port: Option<u16>) {
        if let Some(cache) = &self.cache {
            cache.clear(host, port);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

    /// Answers every name with [V6, V4] and a fixed TTL, counting calls.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
        ttl: Option<Duration>,
    }

    impl Counting {
        fn with_ttl(ttl: Option<Duration>) -> Arc<Self> {
            Arc::new(Self {
                calls: AtomicUsize::new(0),
                ttl,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Resolve for Counting {
        fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Resolved, BoxError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let ttl = self.ttl;
            Box::pin(async move {
                if host == "fails.test" {
                    return Err("no such host".into());
                }
                Ok(Resolved::new([V6, V4], ttl))
            })
        }
    }

    fn sock(ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }

    #[test]
    fn family_display_and_allows() {
        assert_eq!(Family::default(), Family::Any);
        assert_eq!(
            [Family::Any, Family::V4, Family::V6].map(|f| f.to_string()),
            ["IP", "IPv4", "IPv6"]
        );
        assert!(Family::Any.allows(&V4) && Family::Any.allows(&V6));
        assert!(Family::V4.allows(&V4) && !Family::V4.allows(&V6));
        assert!(Family::V6.allows(&V6) && !Family::V6.allows(&V4));
    }

    #[test]
    fn resolved_dedups_and_bounds_the_ttl() {
        let r = Resolved::new([V4, V6, V4], Some(Duration::MAX));
        assert_eq!(r.addrs(), [V4, V6]);
        let until = r.valid_until().unwrap();
        assert!(until <= Instant::now() + MAX_DNS_TTL);
        assert_eq!(Resolved::new([V4], None).valid_until(), None);
    }

    #[tokio::test]
    async fn ip_literals_bypass_the_resolver() {
        let resolver = Counting::with_ttl(None);
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        assert_eq!(
            dns.lookup("127.0.0.1", 80).await.unwrap(),
            [sock(Ipv4Addr::LOCALHOST.into(), 80)]
        );
        assert_eq!(
            dns.lookup("::1", 443).await.unwrap(),
            [sock(Ipv6Addr::LOCALHOST.into(), 443)]
        );
        assert_eq!(resolver.calls(), 0);
        assert!(dns.cached_hosts().is_empty());
    }

    #[tokio::test]
    async fn family_filter_and_no_addresses() {
        let resolver = Arc::new(
            StaticResolver::new()
                .add("both.test", [V6, V4])
                .add("v4.test", [V4]),
        );
        let v4 = Dns::new(resolver.clone(), true, Family::V4, None);
        assert_eq!(v4.lookup("both.test", 80).await.unwrap(), [sock(V4, 80)]);
        let v6 = Dns::new(resolver.clone(), true, Family::V6, None);
        assert_eq!(v6.lookup("both.test", 80).await.unwrap(), [sock(V6, 80)]);
        match v6.lookup("v4.test", 80).await {
            Err(Error::NoAddresses { host, family }) => {
                assert_eq!((host.as_str(), family), ("v4.test", Family::V6));
            }
            other => panic!("{other:?}"),
        }
        // Literals are filtered too.
        assert!(matches!(
            v4.lookup("::1", 80).await,
            Err(Error::NoAddresses {
                family: Family::V4,
                ..
            })
        ));
        // The error names host and family.
        let err = v6.lookup("v4.test", 80).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "DNS lookup of v4.test gave no IPv6 address"
        );
        let any = Dns::new(resolver, false, Family::Any, None);
        assert_eq!(
            any.lookup("both.test", 8080).await.unwrap(),
            [sock(V6, 8080), sock(V4, 8080)]
        );
    }

    #[tokio::test]
    async fn an_empty_answer_is_no_addresses() {
        let dns = Dns::new(
            Arc::new(StaticResolver::new().add("empty.test", [])),
            true,
            Family::Any,
            None,
        );
        assert!(matches!(
            dns.lookup("empty.test", 80).await,
            Err(Error::NoAddresses {
                family: Family::Any,
                ..
            })
        ));
        assert!(dns.cached_hosts().is_empty());
    }

    #[tokio::test]
    async fn static_resolver_knows_only_its_names() {
        let resolver = StaticResolver::new()
            .add("Pinned.Test", [V4])
            .add("pinned.test", [V6]);
        let got = resolver.resolve("pinned.test").await.unwrap();
        assert_eq!(got.addrs(), [V4, V6]);
        assert_eq!(got.valid_until(), None);
        let dns = Dns::new(Arc::new(resolver), true, Family::Any, None);
        match dns.lookup("unknown.test", 80).await {
            Err(Error::Dns { host, source }) => {
                assert_eq!(host, "unknown.test");
                assert!(source.to_string().contains("unknown.test"), "{source}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn resolver_errors_are_dns_errors_and_not_cached() {
        let resolver = Counting::with_ttl(None);
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        for _ in 0..2 {
            let err = dns.lookup("fails.test", 80).await.unwrap_err();
            assert!(matches!(&err, Error::Dns { host, .. } if host == "fails.test"));
            assert_eq!(
                std::error::Error::source(&err).map(|s| s.to_string()),
                Some("no such host".to_owned())
            );
        }
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test]
    async fn cache_hit_skips_the_resolver() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(60)));
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        assert!(dns.uses_cache());
        let first = dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(dns.lookup("a.test", 80).await.unwrap(), first);
        assert_eq!(resolver.calls(), 1);
        // Keyed by host and port, as in aiohttp.
        dns.lookup("a.test", 443).await.unwrap();
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test]
    async fn without_cache_every_lookup_resolves() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(60)));
        let dns = Dns::new(resolver.clone(), false, Family::Any, Some(10));
        assert!(!dns.uses_cache());
        dns.lookup("a.test", 80).await.unwrap();
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 2);
        assert!(dns.cached_hosts().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cache_honours_the_ttl() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(5)));
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        dns.lookup("a.test", 80).await.unwrap();
        tokio::time::advance(Duration::from_secs(4)).await;
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            dns.cached_hosts().is_empty(),
            "expired entries are not listed"
        );
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_without_ttl_live_the_default() {
        let resolver = Counting::with_ttl(None);
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        let start = Instant::now();
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(
            dns.cached_hosts()[0].expires(),
            start + DEFAULT_SYSTEM_DNS_TTL
        );
        tokio::time::advance(DEFAULT_SYSTEM_DNS_TTL - Duration::from_millis(1)).await;
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_ttl_is_not_cached() {
        let resolver = Counting::with_ttl(Some(Duration::ZERO));
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        dns.lookup("a.test", 80).await.unwrap();
        dns.lookup("a.test", 80).await.unwrap();
        assert_eq!(resolver.calls(), 2);
        assert!(dns.cached_hosts().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cache_is_bounded_and_evicts_the_soonest_expiring() {
        let cache = DnsCache::new(2);
        let now = Instant::now();
        let secs = Duration::from_secs;
        cache.insert("late.test", 80, vec![V4], now + secs(30), now);
        cache.insert("soon.test", 80, vec![V4], now + secs(10), now);
        cache.insert("new.test", 80, vec![V4], now + secs(20), now);
        let hosts: Vec<_> = cache.snapshot(now).into_iter().map(|h| h.host).collect();
        assert_eq!(hosts, ["late.test", "new.test"]);
        // Replacing an entry never evicts another.
        cache.insert("new.test", 80, vec![V6], now + secs(5), now);
        assert_eq!(cache.snapshot(now).len(), 2);
        // Expired entries go before live ones.
        tokio::time::advance(secs(6)).await;
        let later = Instant::now();
        cache.insert("next.test", 80, vec![V4], later + secs(1), later);
        let hosts: Vec<_> = cache.snapshot(later).into_iter().map(|h| h.host).collect();
        assert_eq!(hosts, ["late.test", "next.test"]);
        // Equal expiry: the oldest goes.
        let cache = DnsCache::new(2);
        cache.insert("old.test", 80, vec![V4], now + secs(9), now);
        cache.insert("mid.test", 80, vec![V4], now + secs(9), now + secs(1));
        cache.insert("young.test", 80, vec![V4], now + secs(9), now + secs(2));
        let hosts: Vec<_> = cache.snapshot(now).into_iter().map(|h| h.host).collect();
        assert_eq!(hosts, ["mid.test", "young.test"]);
        // Size 0 caches nothing.
        let cache = DnsCache::new(0);
        cache.insert("a.test", 80, vec![V4], now + secs(9), now);
        assert!(cache.snapshot(now).is_empty());
    }

    #[tokio::test]
    async fn dns_cache_size_bounds_the_entries() {
        let dns = Dns::new(Counting::with_ttl(None), true, Family::Any, Some(3));
        for i in 0..10 {
            dns.lookup(&format!("h{i}.test"), 80).await.unwrap();
        }
        assert_eq!(dns.cached_hosts().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn cached_hosts_lists_the_entries() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(30)));
        let dns = Dns::new(resolver, true, Family::V4, None);
        let start = Instant::now();
        dns.lookup("b.test", 443).await.unwrap();
        dns.lookup("a.test", 80).await.unwrap();
        let hosts = dns.cached_hosts();
        let summary: Vec<_> = hosts.iter().map(|h| (h.host(), h.port())).collect();
        assert_eq!(summary, [("a.test", 80), ("b.test", 443)]);
        // The resolver's answer, before the family filter.
        assert_eq!(hosts[0].addrs(), [V6, V4]);
        assert_eq!(hosts[0].expires(), start + Duration::from_secs(30));
    }

    #[tokio::test]
    async fn forget_and_clear() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(60)));
        let dns = Dns::new(resolver.clone(), true, Family::Any, None);
        for (host, port) in [
            ("a.test", 80),
            ("a.test", 443),
            ("b.test", 80),
            ("c.test", 81),
        ] {
            dns.lookup(host, port).await.unwrap();
        }
        let keys = |dns: &Dns| -> Vec<(String, u16)> {
            dns.cached_hosts()
                .into_iter()
                .map(|h| (h.host().to_owned(), h.port()))
                .collect()
        };
        dns.forget("a.test", 443);
        assert_eq!(keys(&dns).len(), 3);
        dns.lookup("a.test", 443).await.unwrap();
        assert_eq!(resolver.calls(), 5, "a forgotten entry is resolved again");

        dns.clear_dns_cache(Some("a.test"), Some(80));
        assert_eq!(
            keys(&dns),
            [
                ("a.test".into(), 443),
                ("b.test".into(), 80),
                ("c.test".into(), 81)
            ]
        );
        dns.clear_dns_cache(None, Some(80));
        assert_eq!(keys(&dns), [("a.test".into(), 443), ("c.test".into(), 81)]);
        dns.clear_dns_cache(Some("c.test"), None);
        assert_eq!(keys(&dns), [("a.test".into(), 443)]);
        dns.clear_dns_cache(None, None);
        assert!(keys(&dns).is_empty());
        // Clearing a missing entry or a cacheless Dns is harmless.
        dns.forget("zzz.test", 1);
        Dns::new(resolver, false, Family::Any, None).clear_dns_cache(None, None);
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_name() {
        let resolver = Counting::with_ttl(Some(Duration::from_secs(60)));
        let dns = Arc::new(Dns::new(resolver.clone(), true, Family::Any, None));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let dns = dns.clone();
                tokio::spawn(async move { dns.lookup("a.test", 80).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().len(), 2);
        }
        assert!((1..=8).contains(&resolver.calls()));
        assert_eq!(dns.cached_hosts().len(), 1);
    }

    #[tokio::test]
    async fn system_resolver_resolves_localhost() {
        let got = SystemResolver::new().resolve("localhost").await.unwrap();
        assert!(!got.addrs().is_empty());
        assert!(got.addrs().iter().all(|ip| ip.is_loopback()), "{got:?}");
        assert_eq!(got.valid_until(), None);
    }

    #[tokio::test]
    async fn default_resolver_resolves_localhost() {
        let dns = Dns::new(default_resolver(Family::V4), true, Family::V4, None);
        assert_eq!(
            dns.lookup("localhost", 8080).await.unwrap(),
            [sock(Ipv4Addr::LOCALHOST.into(), 8080)]
        );
        assert_eq!(dns.family(), Family::V4);
    }
}
