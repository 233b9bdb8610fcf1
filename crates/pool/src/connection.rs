//! A connection handed out by a connector, and how it goes back.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::pool::Slot;
use crate::{Stream, Target};

/// A freshly established stream, as a [`crate::Dial`] returns it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Established {
    /// The byte stream, ready for HTTP (TLS already negotiated for https).
    pub stream: Stream,
    /// Set when the stream goes through a proxy.
    pub proxy: Option<Arc<ProxyInfo>>,
}

impl Established {
    /// A direct connection.
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            proxy: None,
        }
    }

    /// A connection through a proxy.
    pub fn via_proxy(stream: Stream, proxy: Arc<ProxyInfo>) -> Self {
        Self {
            stream,
            proxy: Some(proxy),
        }
    }
}

/// How a connection goes through an HTTP proxy, and what requests on it
/// must carry.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub(crate) proxy: String,
    pub(crate) tunnel: bool,
    pub(crate) authorization: Option<HeaderValue>,
}

impl ProxyInfo {
    /// The proxy's `host:port`.
    pub fn proxy(&self) -> &str {
        &self.proxy
    }

    /// Whether the connection is a `CONNECT` tunnel to the origin: requests
    /// on it look like direct ones (origin-form, no proxy headers).
    pub fn is_tunnel(&self) -> bool {
        self.tunnel
    }

    /// Whether requests on this connection must use absolute-form
    /// (`GET http://host/path HTTP/1.1`): plain HTTP forwarded by the proxy.
    pub fn uses_absolute_form(&self) -> bool {
        !self.tunnel
    }

    /// The `Proxy-Authorization` value each forwarded request must carry
    /// (none for a tunnel: it was sent with the `CONNECT`). Marked
    /// sensitive, so `http` never prints it.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        if self.tunnel {
            None
        } else {
            self.authorization.as_ref()
        }
    }
}

impl fmt::Debug for ProxyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyInfo")
            .field("proxy", &self.proxy)
            .field("tunnel", &self.tunnel)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// A connection from a connector's pool (aiohttp `Connection`).
///
/// It is the byte stream ([`AsyncRead`] + [`AsyncWrite`]) plus its place
/// in the pool. When the exchange on it is over:
///
/// * [`release`](Self::release) returns it for reuse, but only if
///   [`set_reusable(true)`](Self::set_reusable) was called after the last
///   write (the HTTP layer does so when the response was read to its end
///   and both sides allowed keep-alive); otherwise it is closed;
/// * [`close`](Self::close) closes it;
/// * [`detach`](Self::detach) hands the stream to the caller, outside the
///   pool's counts (a WebSocket, a tunnel);
/// * dropping it closes it.
///
/// Writing to it marks it not reusable again, so a connection cannot go
/// back to the pool in the middle of an exchange.
pub struct Connection {
    slot: Option<Slot>,
    conn: Option<Established>,
    created: Instant,
    reused: bool,
    reusable: bool,
}

impl Connection {
    pub(crate) fn new(slot: Slot, conn: Established, created: Instant, reused: bool) -> Self {
        Self {
            slot: Some(slot),
            conn: Some(conn),
            created,
            reused,
            reusable: false,
        }
    }

    /// Whether the connection was closed, released or detached.
    pub fn closed(&self) -> bool {
        self.conn.is_none()
    }

    /// Whether it came from the pool (it served an earlier exchange) rather
    /// than being established for this one. A request that fails on a
    /// reused connection before any response byte may be retried on a new
    /// one: the server may have closed it just as the request went out.
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// When the connection was established.
    pub fn created(&self) -> std::time::Instant {
        self.created.into_std()
    }

    /// The endpoint it is connected to (`None` once closed or detached).
    pub fn target(&self) -> Option<&Target> {
        self.slot.as_ref().and_then(Slot::key)
    }

    /// The stream, to look at (TLS session, socket options).
    pub fn stream(&self) -> Option<&Stream> {
        self.conn.as_ref().map(|c| &c.stream)
    }

    /// How the connection goes through a proxy, if it does.
    pub fn proxy(&self) -> Option<&ProxyInfo> {
        self.conn.as_ref().and_then(|c| c.proxy.as_deref())
    }

    /// Declares whether the exchange that just ended left the connection
    /// fit for another request: the response was read to its end and
    /// neither side asked to close. Any later write clears it.
    pub fn set_reusable(&mut self, reusable: bool) {
        self.reusable = reusable;
    }

    /// Whether [`release`](Self::release) would keep the connection.
    pub fn is_reusable(&self) -> bool {
        self.reusable && self.conn.is_some()
    }

    /// Returns the connection to the pool when it is reusable (and the
    /// pool keeps connections: not `force_close`, not past its lifetime,
    /// connector not closed); closes it otherwise.
    pub fn release(&mut self) {
        let (Some(slot), Some(conn)) = (self.slot.take(), self.conn.take()) else {
            return;
        };
        let shared = Arc::clone(slot.shared());
        if self.reusable && !shared.config.force_close() {
            if let Some(key) = slot.disarm() {
                shared.put_idle(key, conn, self.created);
            }
        } else {
            drop(conn);
            drop(slot);
        }
    }

    /// Closes the connection (its socket is shut at once).
    pub fn close(&mut self) {
        let conn = self.conn.take();
        let slot = self.slot.take();
        drop(conn);
        drop(slot);
    }

    /// Takes the stream out of the pool: the caller owns it, it no longer
    /// counts against the limits, and releasing or closing this
    /// `Connection` afterwards does nothing. `None` when already closed,
    /// released or detached.
    pub fn detach(&mut self) -> Option<Established> {
        let conn = self.conn.take()?;
        drop(self.slot.take());
        Some(conn)
    }

    /// Splits a live connection into its key, stream and creation time,
    /// disarming its slot (the pool takes the count over).
    pub(crate) fn into_parts(mut self) -> Option<(Target, Established, Instant)> {
        let conn = self.conn.take()?;
        let key = self.slot.take()?.disarm()?;
        Some((key, conn, self.created))
    }

    fn stream_mut(&mut self) -> io::Result<&mut Stream> {
        match self.conn.as_mut() {
            Some(c) => Ok(&mut c.stream),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection closed, released or detached",
            )),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target())
            .field("closed", &self.closed())
            .field("reused", &self.reused)
            .field("reusable", &self.reusable)
            .field("proxy", &self.proxy())
            .finish()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream_mut()?).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.reusable = false;
        Pin::new(this.stream_mut()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.reusable = false;
        Pin::new(this.stream_mut()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.stream.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream_mut()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.reusable = false;
        Pin::new(this.stream_mut()?).poll_shutdown(cx)
    }
}
