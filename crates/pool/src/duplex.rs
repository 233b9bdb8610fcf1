//! An in-memory connector: every connection is a `tokio::io::duplex`
//! pipe whose other end goes to a test's server code. No sockets, no ports.

use std::io;

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use crate::connector::delegate_connector;
use crate::{BoxFuture, Dial, Error, Established, PoolConfig, Pooled, Stream, Target};

/// Bytes each direction of a pipe buffers before the writer waits: 64 KiB,
/// like a socket buffer.
pub const DEFAULT_DUPLEX_BUFFER: usize = 64 * 1024;

/// A connector over in-memory pipes, for tests that need no sockets.
///
/// ```
/// use courier_pool::{Connector, DuplexConnector, PoolConfig, Target};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (connector, mut server) = DuplexConnector::new(PoolConfig::default());
/// let target = Target::from_uri(&"http://example.test/".parse().unwrap()).unwrap();
/// let mut conn = connector.connect(&target).await.unwrap();
/// let mut accepted = server.accept().await.unwrap();
/// assert_eq!(accepted.target, target);
///
/// conn.write_all(b"ping").await.unwrap();
/// let mut got = [0; 4];
/// accepted.stream.read_exact(&mut got).await.unwrap();
/// assert_eq!(&got, b"ping");
/// # }
/// ```
#[derive(Debug)]
pub struct DuplexConnector {
    inner: Pooled<DuplexDial>,
}

/// The server side of a [`DuplexConnector`]: yields the other end of each
/// new connection.
#[derive(Debug)]
pub struct DuplexServer {
    rx: mpsc::UnboundedReceiver<Accepted>,
}

/// One connection as the server sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted {
    /// What the client connected for.
    pub target: Target,
    /// The server's end of the pipe.
    pub stream: DuplexStream,
}

#[derive(Debug)]
struct DuplexDial {
    tx: mpsc::UnboundedSender<Accepted>,
    buffer: usize,
}

impl DuplexConnector {
    /// A connector whose pipes buffer [`DEFAULT_DUPLEX_BUFFER`] bytes each way.
    pub fn new(config: PoolConfig) -> (Self, DuplexServer) {
        Self::with_buffer(config, DEFAULT_DUPLEX_BUFFER)
    }

    /// A connector whose pipes buffer `buffer` bytes each way.
    pub fn with_buffer(config: PoolConfig, buffer: usize) -> (Self, DuplexServer) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Pooled::new(config, DuplexDial { tx, buffer });
        (Self { inner }, DuplexServer { rx })
    }

    /// Open connections to one endpoint.
    pub fn open_to(&self, target: &Target) -> usize {
        self.inner.open_to(target)
    }
}

delegate_connector!(DuplexConnector);

impl DuplexServer {
    /// The next connection made, or `None` once the connector is dropped.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.rx.recv().await
    }
}

impl Dial for DuplexDial {
    fn dial<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(self.buffer);
            let accepted = Accepted {
                target: target.clone(),
                stream: server,
            };
            self.tx.send(accepted).map_err(|_| {
                Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "the DuplexServer was dropped",
                ))
            })?;
            Ok(Established::new(Stream::Duplex(client)))
        })
    }
}
