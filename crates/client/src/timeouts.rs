//! Timeouts per phase, at session and request level.

use std::time::Duration;

/// The default total timeout: 5 minutes, as aiohttp's `ClientTimeout`.
///
/// It covers everything from asking for a connection to the end of the
/// response body, so that no server can keep a request alive forever.
/// Set it to `None` for long downloads and rely on
/// [`Timeouts::read`] instead.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a request waits for `100 Continue` before sending its body
/// anyway (1 s, as curl): servers that ignore `Expect` never answer it.
pub const EXPECT_CONTINUE_TIMEOUT: Duration = Duration::from_secs(1);

/// Timeouts for the phases of a request (aiohttp `ClientTimeout`).
///
/// Each is optional; a request's timeouts replace its session's.
/// Establishing a connection is also bounded by the connector's own
/// `conn_timeout` (30 s by default) when [`connect`](Self::connect) is
/// unset.
///
/// ```
/// use std::time::Duration;
/// use courier_client::Timeouts;
/// let timeouts = Timeouts::default()
///     .total(Some(Duration::from_secs(10)))
///     .connect(Some(Duration::from_secs(2)))
///     .read(Some(Duration::from_secs(5)));
/// assert_eq!(timeouts.get_read(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    total: Option<Duration>,
    connect: Option<Duration>,
    pool: Option<Duration>,
    read: Option<Duration>,
}

impl Default for Timeouts {
    /// [`DEFAULT_TOTAL_TIMEOUT`] in total, the connector's settings for
    /// connecting and waiting for the pool, no per-read timeout.
    fn default() -> Self {
        Timeouts {
            total: Some(DEFAULT_TOTAL_TIMEOUT),
            connect: None,
            pool: None,
            read: None,
        }
    }
}

impl Timeouts {
    /// No timeout at all (not even the connector's are overridden).
    pub fn none() -> Self {
        Timeouts {
            total: None,
            connect: None,
            pool: None,
            read: None,
        }
    }

    /// The whole request, body included ([`TimeoutPhase::Total`](crate::TimeoutPhase::Total)).
    pub fn total(mut self, timeout: Option<Duration>) -> Self {
        self.total = timeout;
        self
    }

    /// Establishing a new connection: DNS, TCP, proxy tunnel and TLS
    /// ([`TimeoutPhase::Connect`](crate::TimeoutPhase::Connect)).
    pub fn connect(mut self, timeout: Option<Duration>) -> Self {
        self.connect = timeout;
        self
    }

    /// Waiting for room in the pool
    /// ([`TimeoutPhase::Pool`](crate::TimeoutPhase::Pool)).
    pub fn pool(mut self, timeout: Option<Duration>) -> Self {
        self.pool = timeout;
        self
    }

    /// The longest silence between two reads from the server, for the head
    /// and for each piece of the body
    /// ([`TimeoutPhase::Read`](crate::TimeoutPhase::Read)).
    pub fn read(mut self, timeout: Option<Duration>) -> Self {
        self.read = timeout;
        self
    }

    /// The total timeout.
    pub fn get_total(&self) -> Option<Duration> {
        self.total
    }

    /// The connect timeout.
    pub fn get_connect(&self) -> Option<Duration> {
        self.connect
    }

    /// The pool-acquire timeout.
    pub fn get_pool(&self) -> Option<Duration> {
        self.pool
    }

    /// The per-read timeout.
    pub fn get_read(&self) -> Option<Duration> {
        self.read
    }
}
