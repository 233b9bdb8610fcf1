//! What a connection is for: the scheme, host and port of a request's URL.

use std::fmt;
use std::sync::Arc;

use http::Uri;

use crate::Error;

/// Whether a connection carries plain or TLS-protected traffic.
///
/// `ws` maps to [`Scheme::Http`] and `wss` to [`Scheme::Https`]: a
/// WebSocket starts as an HTTP/1.1 request on the same kind of connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http` (and `ws`): plain TCP.
    Http,
    /// `https` (and `wss`): TLS over TCP.
    Https,
}

impl Scheme {
    /// The scheme for a URL scheme name (ASCII case-insensitive), if it is
    /// one of `http`, `https`, `ws`, `wss`.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("http") || name.eq_ignore_ascii_case("ws") {
            Some(Self::Http)
        } else if name.eq_ignore_ascii_case("https") || name.eq_ignore_ascii_case("wss") {
            Some(Self::Https)
        } else {
            None
        }
    }

    /// The port used when a URL names none: 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    /// Whether connections for this scheme use TLS.
    pub fn is_secure(self) -> bool {
        self == Self::Https
    }
}

/// The origin a connection is made for: scheme, host and port.
///
/// The host is stored lower-cased and, for IPv6 literals, without the
/// brackets. Cloning is cheap (the host is shared).
///
/// ```
/// use courier_pool::{Scheme, Target};
///
/// let target = Target::from_uri(&"https://Example.COM/path".parse().unwrap()).unwrap();
/// assert_eq!(target.scheme(), Scheme::Https);
/// assert_eq!(target.host(), "example.com");
/// assert_eq!(target.port(), 443);
/// assert_eq!(target.authority(), "example.com:443");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    scheme: Scheme,
    host: Arc<str>,
    port: u16,
    /// Through a proxy, ask for a `CONNECT` tunnel even for plain HTTP.
    tunnel: bool,
}

impl Target {
    /// A target from its parts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] when the host is empty or holds characters
    /// no host name or IP literal can hold, or the port is 0.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Result<Self, Error> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(Error::InvalidTarget("empty host".into()));
        }
        if let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
        {
            return Err(Error::InvalidTarget(format!(
                "host {host:?} contains {bad:?}"
            )));
        }
        if port == 0 {
            return Err(Error::InvalidTarget(format!("port 0 for host {host}")));
        }
        let host: Arc<str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into()
        } else {
            host.into()
        };
        Ok(Self {
            scheme,
            host,
            port,
            tunnel: false,
        })
    }

    /// The same target, asking proxies for a `CONNECT` tunnel even when
    /// the scheme is plain `http`: what a WebSocket (`ws://`) needs, since
    /// a forward proxy would not pass its upgraded connection on. Direct
    /// connectors ignore it. Connections with and without it are pooled
    /// apart.
    ///
    /// ```
    /// use courier_pool::{Scheme, Target};
    ///
    /// let target = Target::new(Scheme::Http, "example.com", 80).unwrap();
    /// assert!(!target.wants_tunnel());
    /// let tunnelled = target.clone().with_tunnel(true);
    /// assert!(tunnelled.wants_tunnel());
    /// assert_ne!(target, tunnelled);
    /// ```
    #[must_use]
    pub fn with_tunnel(mut self, tunnel: bool) -> Self {
        self.tunnel = tunnel;
        self
    }

    /// Whether a proxy must open a `CONNECT` tunnel for this target: always
    /// for TLS, and for plain HTTP when asked with
    /// [`with_tunnel`](Self::with_tunnel).
    pub fn wants_tunnel(&self) -> bool {
        self.tunnel || self.is_secure()
    }

    /// The target of an absolute URL (`http`, `https`, `ws` or `wss`); the
    /// port defaults to the scheme's.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTarget`] for a relative URL, another scheme, or a bad
    /// host or port.
    pub fn from_uri(uri: &Uri) -> Result<Self, Error> {
        let scheme_name = uri
            .scheme_str()
            .ok_or_else(|| Error::InvalidTarget(format!("{uri} has no scheme")))?;
        let scheme = Scheme::from_name(scheme_name).ok_or_else(|| {
            Error::InvalidTarget(format!("unsupported scheme {scheme_name:?} in {uri}"))
        })?;
        let host = uri
            .host()
            .ok_or_else(|| Error::InvalidTarget(format!("{uri} has no host")))?;
        let port = uri.port_u16().unwrap_or_else(|| scheme.default_port());
        Self::new(scheme, host, port)
    }

    /// `http` / `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: a lower-cased name, or an IP literal without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL gave none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the connection uses TLS.
    pub fn is_secure(&self) -> bool {
        self.scheme.is_secure()
    }

    /// `host:port`, with an IPv6 host in brackets: the form of a `CONNECT`
    /// request target.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        // A zone index (`fe80::1%eth0`) is not an `IpAddr`; such hosts are resolved.
        self.host.parse().ok()
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<Target, Error> {
        Target::from_uri(&uri.parse().unwrap())
    }

    #[test]
    fn defaults_and_case() {
        let t = target("HTTP://LocalHost/x").unwrap();
        assert_eq!(
            (t.scheme(), t.host(), t.port()),
            (Scheme::Http, "localhost", 80)
        );
        let t = target("wss://example.com:8443").unwrap();
        assert_eq!((t.scheme(), t.port()), (Scheme::Https, 8443));
        assert_eq!(t.to_string(), "https://example.com:8443");
    }

    #[test]
    fn ipv6_literal_without_brackets() {
        let t = target("http://[::1]:8080/").unwrap();
        assert_eq!(t.host(), "::1");
        assert_eq!(t.authority(), "[::1]:8080");
        assert_eq!(t.ip(), Some("::1".parse().unwrap()));
    }

    #[test]
    fn rejects_what_cannot_be_connected_to() {
        assert!(matches!(
            target("ftp://example.com/"),
            Err(Error::InvalidTarget(_))
        ));
        assert!(matches!(target("/relative"), Err(Error::InvalidTarget(_))));
        assert!(matches!(
            target("http://example.com:0/"),
            Err(Error::InvalidTarget(_))
        ));
        assert!(Target::new(Scheme::Http, "", 80).is_err());
        assert!(Target::new(Scheme::Http, "a b", 80).is_err());
        assert!(Target::new(Scheme::Http, "evil\r\nhost", 80).is_err());
    }
}
