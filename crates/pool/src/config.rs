//! The pool settings every connector shares (aiohttp's `BaseConnector`
//! arguments), with their defaults.

use std::time::Duration;

/// Default [`PoolConfig::conn_timeout`]: 30 seconds to resolve, connect,
/// tunnel and finish the TLS handshake.
///
/// aiohttp has no default here (it waits for the OS, about two minutes on
/// Linux for a silent address); a client that promises never to hang on a
/// silent peer needs one. 30 s is far above any healthy handshake, even
/// across continents.
pub const DEFAULT_CONN_TIMEOUT: Duration = Duration::from_secs(30);

/// Default [`PoolConfig::keepalive_timeout`]: an idle connection is closed
/// after 4 seconds.
///
/// A server closes a connection it has kept idle for its own timeout, and
/// a request sent at that moment is lost in flight. Common server defaults
/// are 5 s (Apache httpd `KeepAliveTimeout`, Node.js `keepAliveTimeout`),
/// 60 s (AWS load balancers), 75 s (nginx); gunicorn's is 2 s. Staying
/// below the common 5 s means the client, not the server, is nearly always
/// the side that gives up an idle connection; the liveness check before
/// reuse catches servers with shorter timeouts that closed cleanly.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(4);

/// Default [`PoolConfig::limit`]: at most 100 connections in all, as in
/// current aiohttp.
pub const DEFAULT_LIMIT: usize = 100;

/// A settings combination that cannot work, refused when building.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `force_close` closes every connection after use, so a keep-alive
    /// timeout would never apply: asking for both is a mistake.
    #[error("force_close(true) conflicts with keepalive_timeout: connections are never kept")]
    KeepAliveWithForceClose,
    /// A limit of zero connections allows no request at all.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// A zero duration where one is required.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// Another invalid setting (a proxy URL, a certificate file...).
    #[error("{0}")]
    Invalid(String),
}

/// Pool settings shared by all connectors.
///
/// Built with [`PoolConfig::builder`]; read by accessors named like the
/// builder methods.
///
/// ```
/// use std::time::Duration;
/// use courier_pool::PoolConfig;
///
/// let config = PoolConfig::builder()
///     .limit(Some(10))
///     .limit_per_host(Some(4))
///     .keepalive_timeout(Duration::from_secs(15))
///     .build()
///     .unwrap();
/// assert_eq!(config.limit_per_host(), Some(4));
///
/// // Closing every connection after use and keeping idle ones contradict.
/// let conflict = PoolConfig::builder()
///     .force_close(true)
///     .keepalive_timeout(Duration::from_secs(15))
///     .build();
/// assert!(conflict.is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    conn_timeout: Option<Duration>,
    keepalive_timeout: Duration,
    limit: Option<usize>,
    limit_per_host: Option<usize>,
    force_close: bool,
    acquire_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            conn_timeout: Some(DEFAULT_CONN_TIMEOUT),
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            limit: Some(DEFAULT_LIMIT),
            limit_per_host: None,
            force_close: false,
            acquire_timeout: None,
            max_lifetime: None,
        }
    }
}

impl PoolConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> PoolConfigBuilder {
        PoolConfigBuilder::default()
    }

    /// Limit on establishing one connection (DNS, TCP, proxy `CONNECT` and
    /// TLS together); `None` waits as long as the OS does. Default
    /// [`DEFAULT_CONN_TIMEOUT`].
    pub fn conn_timeout(&self) -> Option<Duration> {
        self.conn_timeout
    }

    /// How long a released connection may sit idle before it is closed.
    /// Default [`DEFAULT_KEEPALIVE_TIMEOUT`].
    pub fn keepalive_timeout(&self) -> Duration {
        self.keepalive_timeout
    }

    /// Most connections open at once, in use and idle, for all endpoints;
    /// `None` is no limit. Default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Most connections open at once to one endpoint (scheme, host, port,
    /// TLS settings and proxy); `None` (the default) is no limit beyond
    /// [`limit`](Self::limit).
    pub fn limit_per_host(&self) -> Option<usize> {
        self.limit_per_host
    }

    /// Whether every connection is closed after use instead of kept.
    /// Default `false`.
    pub fn force_close(&self) -> bool {
        self.force_close
    }

    /// Limit on waiting for a connection when the pool is at its limits;
    /// `None` (the default) waits until one is free (a request's total
    /// timeout, set in courier-client, bounds it).
    pub fn acquire_timeout(&self) -> Option<Duration> {
        self.acquire_timeout
    }

    /// Age after which a connection is not reused but closed, however busy
    /// it is: rotation, so that a long-lived client follows DNS changes and
    /// spreads over a server pool. `None` (the default) keeps connections
    /// as long as the server does.
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    /// Whether a connection opened at `age` ago may still be reused.
    pub(crate) fn within_lifetime(&self, age: Duration) -> bool {
        self.max_lifetime.is_none_or(|max| age < max)
    }
}

/// Builds a [`PoolConfig`]; every method overrides one default.
#[derive(Debug, Clone, Default)]
pub struct PoolConfigBuilder {
    config: PoolConfig,
    keepalive_set: bool,
}

impl PoolConfigBuilder {
    /// See [`PoolConfig::conn_timeout`]; `None` is no limit.
    pub fn conn_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.conn_timeout = timeout.into();
        self
    }

    /// See [`PoolConfig::keepalive_timeout`].
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.config.keepalive_timeout = timeout;
        self.keepalive_set = true;
        self
    }

    /// See [`PoolConfig::limit`]; `None` is no limit.
    pub fn limit(mut self, limit: Option<usize>) -> Self {
        self.config.limit = limit;
        self
    }

    /// See [`PoolConfig::limit_per_host`]; `None` is no limit.
    pub fn limit_per_host(mut self, limit: Option<usize>) -> Self {
        self.config.limit_per_host = limit;
        self
    }

    /// See [`PoolConfig::force_close`].
    pub fn force_close(mut self, force_close: bool) -> Self {
        self.config.force_close = force_close;
        self
    }

    /// See [`PoolConfig::acquire_timeout`]; `None` is no limit.
    pub fn acquire_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.acquire_timeout = timeout.into();
        self
    }

    /// See [`PoolConfig::max_lifetime`]; `None` is no limit.
    pub fn max_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.config.max_lifetime = lifetime.into();
        self
    }

    /// Checks the combination and returns the config.
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeepAliveWithForceClose`] when both were set, and
    /// [`ConfigError::ZeroLimit`] / [`ConfigError::ZeroDuration`] for zero
    /// limits or timeouts.
    pub fn build(self) -> Result<PoolConfig, ConfigError> {
        let c = self.config;
        if c.force_close && self.keepalive_set {
            return Err(ConfigError::KeepAliveWithForceClose);
        }
        if c.limit == Some(0) {
            return Err(ConfigError::ZeroLimit("limit"));
        }
        if c.limit_per_host == Some(0) {
            return Err(ConfigError::ZeroLimit("limit_per_host"));
        }
        for (name, value) in [
            ("conn_timeout", c.conn_timeout),
            ("acquire_timeout", c.acquire_timeout),
            ("max_lifetime", c.max_lifetime),
            ("keepalive_timeout", Some(c.keepalive_timeout)),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = PoolConfig::default();
        assert_eq!(c.conn_timeout(), Some(DEFAULT_CONN_TIMEOUT));
        assert_eq!(c.keepalive_timeout(), DEFAULT_KEEPALIVE_TIMEOUT);
        assert_eq!(c.limit(), Some(DEFAULT_LIMIT));
        assert_eq!(c.limit_per_host(), None);
        assert!(!c.force_close());
        assert_eq!(PoolConfig::builder().build().unwrap(), c);
    }

    #[test]
    fn conflicts_and_zeroes_are_refused() {
        let b = || PoolConfig::builder();
        assert_eq!(
            b().force_close(true)
                .keepalive_timeout(Duration::from_secs(1))
                .build(),
            Err(ConfigError::KeepAliveWithForceClose)
        );
        assert!(b().force_close(true).build().unwrap().force_close());
        assert_eq!(
            b().limit(Some(0)).build(),
            Err(ConfigError::ZeroLimit("limit"))
        );
        assert_eq!(
            b().limit_per_host(Some(0)).build(),
            Err(ConfigError::ZeroLimit("limit_per_host"))
        );
        assert_eq!(
            b().conn_timeout(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration("conn_timeout"))
        );
        assert_eq!(b().limit(None).build().unwrap().limit(), None);
    }
}
