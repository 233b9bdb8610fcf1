//! The [`Connector`] trait, the [`Dial`] step it is built on, and
//! [`Pooled`], which joins a dialer to the pool.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::pool::{Pool, PoolStats};
use crate::{Connection, Error, Established, PoolConfig, Target};

/// A boxed, sendable future, as the object-safe traits here return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Turns a request's target into a ready connection (aiohttp
/// `BaseConnector`), and takes it back through [`Connection::release`].
///
/// Implemented by [`crate::TcpConnector`], [`crate::ProxyConnector`],
/// [`crate::UnixConnector`], [`crate::DuplexConnector`] and, for any
/// transport of your own, [`Pooled`] around your [`Dial`]. The trait is
/// object safe: a session holds an `Arc<dyn Connector>`.
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// A connection to `target`: a kept idle one when a live one exists,
    /// otherwise a new one, waiting while the pool is at its limits.
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Connection, Error>>;

    /// [`connect`](Self::connect) with per-call timeouts that take the
    /// place of the pool's (a request's own timeouts). Connectors without
    /// a pool of their own may ignore them; the default does.
    fn connect_with<'a>(
        &'a self,
        target: &'a Target,
        options: ConnectOptions,
    ) -> BoxFuture<'a, Result<Connection, Error>> {
        let _ = options;
        self.connect(target)
    }

    /// Closes the idle connections and makes later [`connect`](Self::connect)
    /// calls fail with [`Error::Closed`]; connections in use are closed
    /// when released.
    fn close(&self);

    /// Whether [`close`](Self::close) was called.
    fn closed(&self) -> bool;

    /// The pool settings.
    fn config(&self) -> &PoolConfig;

    /// The pool's counts now.
    fn stats(&self) -> PoolStats;
}

/// Per-call overrides of a pool's timeouts, for
/// [`Connector::connect_with`]. `None` keeps the pool's setting.
///
/// ```
/// use std::time::Duration;
/// use courier_pool::ConnectOptions;
/// let options = ConnectOptions::default().conn_timeout(Duration::from_secs(2));
/// assert_eq!(options.conn_timeout, Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long to wait for room in the pool (see `PoolConfig::acquire_timeout`).
    pub acquire_timeout: Option<Duration>,
    /// How long establishing a new connection may take (see
    /// `PoolConfig::conn_timeout`).
    pub conn_timeout: Option<Duration>,
    /// Skip (and close) the idle connections to the target and use a new
    /// one: for retrying a request whose kept-alive connection turned out
    /// to be closed by the server.
    pub fresh: bool,
}

impl ConnectOptions {
    /// Sets [`acquire_timeout`](Self::acquire_timeout).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = Some(timeout);
        self
    }

    /// Sets [`fresh`](Self::fresh).
    pub fn fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// Sets [`conn_timeout`](Self::conn_timeout).
    pub fn conn_timeout(mut self, timeout: Duration) -> Self {
        self.conn_timeout = Some(timeout);
        self
    }
}

/// The step that establishes a new connection (aiohttp
/// `_create_connection`): resolve, connect, tunnel, handshake.
///
/// Implement it to plug in a transport of your own, and wrap it in
/// [`Pooled`] to get pooling, limits and timeouts for free.
///
/// ```
/// use courier_pool::{BoxFuture, Dial, Error, Established, Pooled, PoolConfig, Stream, Target};
///
/// /// Connects every target to one fixed address.
/// #[derive(Debug)]
/// struct Fixed(std::net::SocketAddr);
///
/// impl Dial for Fixed {
///     fn dial<'a>(&'a self, _target: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
///         Box::pin(async move {
///             let tcp = tokio::net::TcpStream::connect(self.0)
///                 .await
///                 .map_err(|source| Error::Connect { addr: self.0, source })?;
///             Ok(Established::new(Stream::Tcp(tcp)))
///         })
///     }
/// }
///
/// let connector = Pooled::new(PoolConfig::default(), Fixed("127.0.0.1:8080".parse().unwrap()));
/// # drop(connector);
/// ```
pub trait Dial: Send + Sync + fmt::Debug + 'static {
    /// Establishes a new connection to `target`. The pool applies
    /// `conn_timeout` around it and counts it against the limits.
    fn dial<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Established, Error>>;
}

/// A [`Connector`] made of the pool and a [`Dial`].
#[derive(Debug)]
pub struct Pooled<D> {
    pool: Pool,
    dial: D,
}

impl<D: Dial> Pooled<D> {
    /// A pooled connector dialing with `dial`.
    pub fn new(config: PoolConfig, dial: D) -> Self {
        Self {
            pool: Pool::new(config),
            dial,
        }
    }

    /// The dialer.
    pub fn dialer(&self) -> &D {
        &self.dial
    }

    /// Open connections to one endpoint (being established, in use, idle).
    pub fn open_to(&self, target: &Target) -> usize {
        self.pool.open_to(target)
    }
}

impl<D: Dial> Connector for Pooled<D> {
    fn connect<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Connection, Error>> {
        self.connect_with(target, ConnectOptions::default())
    }

    fn connect_with<'a>(
        &'a self,
        target: &'a Target,
        options: ConnectOptions,
    ) -> BoxFuture<'a, Result<Connection, Error>> {
        Box::pin(
            self.pool
                .acquire(target, options, || self.dial.dial(target)),
        )
    }

    fn close(&self) {
        self.pool.close();
    }

    fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    fn config(&self) -> &PoolConfig {
        self.pool.config()
    }

    fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}

/// Implements [`Connector`] for a connector type that holds a
/// [`Pooled`] in its field `inner`.
macro_rules! delegate_connector {
    ($ty:ty) => {
        impl $crate::Connector for $ty {
            fn connect<'a>(
                &'a self,
                target: &'a $crate::Target,
            ) -> $crate::BoxFuture<'a, Result<$crate::Connection, $crate::Error>> {
                self.inner.connect(target)
            }

            fn connect_with<'a>(
                &'a self,
                target: &'a $crate::Target,
                options: $crate::ConnectOptions,
            ) -> $crate::BoxFuture<'a, Result<$crate::Connection, $crate::Error>> {
                self.inner.connect_with(target, options)
            }

            fn close(&self) {
                self.inner.close()
            }

            fn closed(&self) -> bool {
                self.inner.closed()
            }

            fn config(&self) -> &$crate::PoolConfig {
                self.inner.config()
            }

            fn stats(&self) -> $crate::PoolStats {
                self.inner.stats()
            }
        }
    };
}
pub(crate) use delegate_connector;
