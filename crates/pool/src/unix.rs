//! HTTP over a Unix domain socket (aiohttp `UnixConnector`).

use std::path::{Path, PathBuf};

use tokio::net::UnixStream;

use crate::connector::delegate_connector;
use crate::{BoxFuture, Dial, Error, Established, PoolConfig, Pooled, Stream, Target};

/// Connects every request to one Unix domain socket; the request's `Host`
/// header still comes from its URL.
///
/// ```no_run
/// use courier_pool::{Connector, PoolConfig, Target, UnixConnector};
///
/// # async fn demo() -> Result<(), courier_pool::Error> {
/// let connector = UnixConnector::new("/run/docker.sock", PoolConfig::default());
/// let target = Target::from_uri(&"http://localhost/version".parse().unwrap())?;
/// let conn = connector.connect(&target).await?;
/// # drop(conn); Ok(()) }
/// ```
#[derive(Debug)]
pub struct UnixConnector {
    inner: Pooled<UnixDial>,
}

#[derive(Debug)]
struct UnixDial {
    path: PathBuf,
}

impl UnixConnector {
    /// A connector to the socket at `path`.
    pub fn new(path: impl Into<PathBuf>, config: PoolConfig) -> Self {
        Self {
            inner: Pooled::new(config, UnixDial { path: path.into() }),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.inner.dialer().path
    }

    /// Open connections to one endpoint.
    pub fn open_to(&self, target: &Target) -> usize {
        self.inner.open_to(target)
    }
}

delegate_connector!(UnixConnector);

impl Dial for UnixDial {
    fn dial<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Established, Error>> {
        Box::pin(async move {
            if target.is_secure() {
                return Err(Error::InvalidTarget(format!(
                    "{target}: TLS over a Unix socket is not supported"
                )));
            }
            let stream =
                UnixStream::connect(&self.path)
                    .await
                    .map_err(|source| Error::ConnectUnix {
                        path: self.path.clone(),
                        source,
                    })?;
            Ok(Established::new(Stream::Unix(stream)))
        })
    }
}
