//! The one error type of the crate: what went wrong while getting a
//! connection, with what a caller needs to act on it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::StatusCode;

use crate::tls::Fingerprint;

/// A boxed error from below (I/O, DNS, rustls, courier-proto).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a connection could not be had.
///
/// Every variant names what failed (a host, an address, a proxy) so the
/// message alone says where to look; the underlying error is kept as the
/// [`source`](std::error::Error::source). Nothing secret (proxy passwords,
/// `Authorization` values) is ever part of a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target cannot be connected to: no host, an unknown scheme, a
    /// port of 0, or a connector that cannot serve it.
    #[error("invalid target: {0}")]
    InvalidTarget(String),

    /// Name resolution failed.
    #[error("DNS lookup of {host} failed")]
    Dns {
        /// The name looked up.
        host: String,
        /// What the resolver said.
        #[source]
        source: BoxError,
    },

    /// Name resolution succeeded but gave no address of the allowed family.
    #[error("DNS lookup of {host} gave no {family} address")]
    NoAddresses {
        /// The name looked up.
        host: String,
        /// The family asked for.
        family: crate::Family,
    },

    /// Every TCP connection attempt failed; this is the first failure.
    #[error("connect to {addr} failed")]
    Connect {
        /// The address that refused (or failed) first.
        addr: SocketAddr,
        /// The socket error (`ConnectionRefused`, `NetworkUnreachable`...).
        #[source]
        source: io::Error,
    },

    /// Connecting to a Unix domain socket failed.
    #[error("connect to Unix socket {} failed", path.display())]
    ConnectUnix {
        /// The socket path.
        path: PathBuf,
        /// The socket error.
        #[source]
        source: io::Error,
    },

    /// Establishing the connection (DNS, TCP, proxy tunnel and TLS
    /// handshake together) took longer than `conn_timeout`.
    #[error("connect to {host} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The host (or proxy) being connected to.
        host: String,
        /// The configured limit.
        timeout: Duration,
    },

    /// The TLS handshake failed, or the server's certificate was refused.
    #[error("TLS handshake with {host} failed: {kind}")]
    Tls {
        /// The server name used for SNI and verification.
        host: String,
        /// What kind of failure, to act on without parsing messages.
        kind: TlsErrorKind,
        /// The rustls or I/O error.
        #[source]
        source: BoxError,
    },

    /// The server's certificate does not match the pinned fingerprint.
    #[error(
        "certificate of {host} does not match the pinned fingerprint: expected {expected}, got {received}"
    )]
    FingerprintMismatch {
        /// The server name.
        host: String,
        /// The pinned digest.
        expected: Fingerprint,
        /// The same digest of the certificate the server sent.
        received: Fingerprint,
    },

    /// The proxy answered the `CONNECT` with a status other than 2xx
    /// (407 when it wants credentials, 403 when it refuses, 5xx when it
    /// could not reach the origin).
    #[error("proxy {proxy} refused CONNECT to {target}: {status}")]
    ProxyStatus {
        /// The proxy, as `host:port`.
        proxy: String,
        /// The `host:port` the tunnel was for.
        target: String,
        /// The proxy's status code.
        status: StatusCode,
    },

    /// Talking to the proxy failed: I/O, a malformed answer, bytes after
    /// the `CONNECT` answer.
    #[error("proxy {proxy} failed")]
    Proxy {
        /// The proxy, as `host:port`.
        proxy: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },

    /// No connection became free within the pool-acquire timeout.
    #[error("no pooled connection became free within {timeout:?}")]
    PoolTimeout {
        /// The configured limit.
        timeout: Duration,
    },

    /// The connector was closed: it makes no new connections.
    #[error("the connector is closed")]
    Closed,

    /// An I/O error from a custom transport.
    #[error("transport failed")]
    Io(#[source] io::Error),
}

impl Error {
    /// Whether establishing the connection timed out ([`Error::ConnectTimeout`]
    /// or [`Error::PoolTimeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::ConnectTimeout { .. } | Self::PoolTimeout { .. })
    }

    /// Whether this is a TLS or certificate failure (including a pin mismatch).
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls { .. } | Self::FingerprintMismatch { .. })
    }

    /// Whether the proxy failed or refused.
    pub fn is_proxy(&self) -> bool {
        matches!(self, Self::ProxyStatus { .. } | Self::Proxy { .. })
    }

    /// The proxy's status when it refused a `CONNECT`.
    pub fn proxy_status(&self) -> Option<StatusCode> {
        match self {
            Self::ProxyStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The kinds of TLS failure a caller may want to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The certificate has expired (or is not yet valid).
    Expired,
    /// The certificate does not chain to a trusted root (this includes
    /// self-signed certificates).
    UnknownIssuer,
    /// The certificate is valid, but not for the name connected to.
    WrongHost,
    /// The certificate was revoked.
    Revoked,
    /// Any other certificate problem (bad encoding, bad signature, wrong usage).
    BadCertificate,
    /// The handshake failed for a reason other than the certificate: no
    /// common protocol version or cipher suite, an alert from the peer,
    /// the connection closing mid-handshake.
    Handshake,
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expired => "certificate expired or not yet valid",
            Self::UnknownIssuer => "certificate issuer unknown (untrusted or self-signed)",
            Self::WrongHost => "certificate not valid for this host name",
            Self::Revoked => "certificate revoked",
            Self::BadCertificate => "bad certificate",
            Self::Handshake => "handshake failed",
        })
    }
}
