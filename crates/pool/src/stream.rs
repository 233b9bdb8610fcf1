//! The byte stream under a connection: TCP, TLS, a Unix socket, an
//! in-memory pipe or a user's own transport.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

/// What a custom transport must be to carry HTTP: an async byte stream.
///
/// Implemented for every type that qualifies; wrap yours in
/// [`Stream::custom`].
pub trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin + fmt::Debug + 'static {}

impl<T> Io for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + fmt::Debug + 'static {}

/// A connected byte stream.
///
/// An enum rather than a trait object so that the common transports cost
/// no virtual call; [`Stream::Custom`] takes any other [`Io`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection (to the origin or to a proxy).
    Tcp(TcpStream),
    /// TLS over another stream (TCP, or a proxy tunnel).
    Tls(Box<TlsStream<Stream>>),
    /// A Unix domain socket.
    Unix(UnixStream),
    /// One end of an in-memory pipe ([`crate::DuplexConnector`]).
    Duplex(DuplexStream),
    /// A user's transport.
    Custom(Box<dyn Io>),
}

/// What an idle connection's socket says when asked, without waiting,
/// whether anything happened since it was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Nothing: still open and quiet, fit to reuse.
    Quiet,
    /// The peer closed (EOF), reset, or the socket failed.
    Closed,
    /// Bytes arrived that nobody asked for: reusing the connection would
    /// read them as the answer to the next request.
    Unsolicited,
}

impl Stream {
    /// Wraps a user's transport.
    pub fn custom(io: impl Io) -> Self {
        Self::Custom(Box::new(io))
    }

    /// Whether this is a TLS stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The TLS session, when this is a TLS stream: peer certificates,
    /// negotiated protocol version, ALPN protocol.
    pub fn tls_session(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Self::Tls(tls) => Some(tls.get_ref().1),
            _ => None,
        }
    }

    /// The TCP socket at the bottom of this stream, if there is one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Self::Tcp(tcp) => Some(tcp),
            Self::Tls(tls) => tls.get_ref().0.tcp(),
            _ => None,
        }
    }

    /// Asks the socket, without blocking and without waiting, whether the
    /// peer closed it or sent bytes while it sat idle.
    ///
    /// Uses one `poll_read` with a no-op waker: `Pending` means nothing
    /// happened. On TLS this also processes records that carry no
    /// application data (session tickets, `close_notify`).
    pub(crate) fn probe_idle(&mut self) -> Idle {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(self).poll_read(&mut cx, &mut buf) {
            Poll::Pending => Idle::Quiet,
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Idle::Closed,
            Poll::Ready(Ok(())) => Idle::Unsolicited,
            Poll::Ready(Err(_)) => Idle::Closed,
        }
    }
}

macro_rules! each {
    ($self:ident, $io:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($io) => {
                let $io = Pin::new($io);
                $e
            }
            Stream::Tls($io) => {
                let $io = Pin::new(&mut **$io);
                $e
            }
            Stream::Unix($io) => {
                let $io = Pin::new($io);
                $e
            }
            Stream::Duplex($io) => {
                let $io = Pin::new($io);
                $e
            }
            Stream::Custom($io) => {
                let $io = Pin::new(&mut **$io);
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
            Self::Unix(io) => io.is_write_vectored(),
            Self::Duplex(io) => io.is_write_vectored(),
            Self::Custom(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, io => io.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn probe_tells_quiet_closed_and_unsolicited_apart() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut client = Stream::Duplex(client);
        assert_eq!(client.probe_idle(), Idle::Quiet);
        server.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        assert_eq!(client.probe_idle(), Idle::Unsolicited);

        let (client, server) = tokio::io::duplex(64);
        let mut client = Stream::Duplex(client);
        drop(server);
        assert_eq!(client.probe_idle(), Idle::Closed);
    }

    #[tokio::test]
    async fn probe_sees_a_tcp_peer_close() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = Stream::Tcp(TcpStream::connect(addr).await.unwrap());
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(client.probe_idle(), Idle::Quiet);
        drop(server);
        // The FIN travels through the kernel's loopback; give it a bounded moment.
        let mut seen = Idle::Quiet;
        for _ in 0..200 {
            seen = client.probe_idle();
            if seen != Idle::Quiet {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(seen, Idle::Closed);
    }
}
