//! The keep-alive pool: idle connections per endpoint, the open-connection
//! counts behind the limits, and the FIFO queue of tasks waiting for room.
//!
//! One mutex guards all of it ([`State`]). Every open connection is counted
//! exactly once, from the moment its slot is reserved (before dialing)
//! until it is closed or detached, whether it is being dialed, in use or
//! idle. The counted things that leave the lock are RAII guards
//! ([`Slot`], and the [`Connection`] that holds one), so a cancelled task,
//! a failed dial or a dropped response gives the count back: nothing can
//! leak, and nothing is ever dropped while the lock is held (dropping a
//! guard takes the lock).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::oneshot;

use crate::connection::{Connection, Established};
use crate::stream::Idle;
use crate::{ConnectOptions, Error, PoolConfig, Target};

/// The pool shared by a connector and every connection it handed out.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: PoolConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    /// Open connections, all endpoints: dialing, in use and idle.
    open: usize,
    /// Idle connections, all endpoints.
    idle: usize,
    hosts: HashMap<Target, Host>,
    waiters: VecDeque<Waiter>,
    next_waiter: u64,
    /// Whether a task is expiring idle connections.
    reaper: bool,
}

#[derive(Debug, Default)]
struct Host {
    /// Open connections to this endpoint.
    open: usize,
    /// Released connections, oldest first; reuse takes the newest.
    idle: VecDeque<IdleConn>,
}

#[derive(Debug)]
struct IdleConn {
    conn: Established,
    created: Instant,
    since: Instant,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    key: Target,
    tx: oneshot::Sender<Grant>,
    /// How many later waiters were served while this one was first in line.
    overtaken: usize,
}

/// How often later waiters (of other endpoints, reusing their own kept
/// connections) may be served before the waiter at the head of the queue,
/// before it is served first at the cost of closing an idle connection.
/// Bounds how long reuse-first dispatch can make one endpoint wait.
const MAX_OVERTAKEN: usize = 16;

/// What a waiter is given: a connection to reuse, or room to dial one.
#[derive(Debug)]
enum Grant {
    Reuse(Connection),
    Dial(Slot),
}

/// Counts of the pool at one moment (see [`crate::Connector::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections: being established, in use, or idle.
    pub open: usize,
    /// Idle connections kept for reuse.
    pub idle: usize,
    /// Tasks waiting for room under the limits.
    pub waiting: usize,
}

/// Closed streams collected under the lock, dropped (closed) after it.
type Trash = Vec<Established>;

impl Pool {
    pub(crate) fn new(config: PoolConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub(crate) fn config(&self) -> &PoolConfig {
        &self.shared.config
    }

    /// A connection to `key`: an idle one if a live one is kept, else a new
    /// one from `dial`, waiting (FIFO) while the limits are reached.
    pub(crate) async fn acquire<F, Fut>(
        &self,
        key: &Target,
        options: ConnectOptions,
        dial: F,
    ) -> Result<Connection, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Established, Error>>,
    {
        let config = &self.shared.config;
        let grant = match self.try_acquire(key, options.fresh)? {
            Ok(grant) => grant,
            Err((id, rx)) => {
                let mut queued = Queued {
                    shared: &self.shared,
                    id,
                    rx,
                };
                let received = match options.acquire_timeout.or(config.acquire_timeout()) {
                    Some(limit) => tokio::time::timeout(limit, &mut queued.rx)
                        .await
                        .map_err(|_| Error::PoolTimeout { timeout: limit })?,
                    None => (&mut queued.rx).await,
                };
                drop(queued);
                // The sender is dropped only by `close()`.
                received.map_err(|_| Error::Closed)?
            }
        };
        let slot = match grant {
            Grant::Reuse(conn) => return Ok(conn),
            Grant::Dial(slot) => slot,
        };
        let established =
            match options.conn_timeout.or(config.conn_timeout()) {
                Some(limit) => tokio::time::timeout(limit, dial()).await.map_err(|_| {
                    Error::ConnectTimeout {
                        host: key.authority(),
                        timeout: limit,
                    }
                })??,
                None => dial().await?,
            };
        Ok(Connection::new(slot, established, Instant::now(), false))
    }

    /// Takes an idle connection or room for a new one at once, or queues.
    #[allow(clippy::type_complexity)]
    fn try_acquire(
        &self,
        key: &Target,
        fresh: bool,
    ) -> Result<Result<Grant, (u64, oneshot::Receiver<Grant>)>, Error> {
        let mut trash = Trash::new();
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if fresh {
            st.discard_idle(key, &mut trash);
        }
        let now = Instant::now();
        let result = if let Some(conn) = st.take_idle(&self.shared, key, now, &mut trash) {
            Ok(Grant::Reuse(conn))
        } else if st.make_room(&self.shared.config, key, &mut trash) {
            Ok(Grant::Dial(Slot::reserved(&self.shared, &mut st, key)))
        } else {
            let (tx, rx) = oneshot::channel();
            let id = st.next_waiter;
            st.next_waiter += 1;
            st.waiters.push_back(Waiter {
                id,
                key: key.clone(),
                tx,
                overtaken: 0,
            });
            Err((id, rx))
        };
        if !trash.is_empty() {
            // Discarded dead connections freed counts others may be waiting for.
            st.dispatch(&self.shared, &mut trash);
        }
        drop(st);
        drop(trash);
        Ok(result)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.lock();
        PoolStats {
            open: st.open,
            idle: st.idle,
            waiting: st.waiters.len(),
        }
    }

    /// Open connections to one endpoint (dialing, in use or idle).
    pub(crate) fn open_to(&self, key: &Target) -> usize {
        self.lock().hosts.get(key).map_or(0, |h| h.open)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closes the idle connections, fails the waiters with
    /// [`Error::Closed`] and refuses new connections. Connections in use
    /// stay usable and are closed when released.
    pub(crate) fn close(&self) {
        let mut trash = Trash::new();
        let waiters;
        {
            let mut st = self.lock();
            st.closed = true;
            let hosts: Vec<Target> = st.hosts.keys().cloned().collect();
            for key in hosts {
                while let Some(idle) = st.host_mut(&key).idle.pop_front() {
                    st.idle -= 1;
                    st.forget(&key);
                    trash.push(idle.conn);
                }
            }
            waiters = std::mem::take(&mut st.waiters);
        }
        drop(waiters);
        drop(trash);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half
        // updated in a way later code trusts less than a poisoned mutex:
        // keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes back a connection whose exchange left it reusable.
    pub(crate) fn put_idle(self: &Arc<Self>, key: Target, conn: Established, created: Instant) {
        let mut trash = Trash::new();
        {
            let mut st = self.lock();
            let now = Instant::now();
            if st.closed || !self.config.within_lifetime(now - created) {
                st.forget(&key);
                trash.push(conn);
            } else {
                st.host_mut(&key).idle.push_back(IdleConn {
                    conn,
                    created,
                    since: now,
                });
                st.idle += 1;
                if !st.reaper && tokio::runtime::Handle::try_current().is_ok() {
                    st.reaper = true;
                    tokio::spawn(reap(Arc::downgrade(self)));
                }
            }
            st.dispatch(self, &mut trash);
        }
        drop(trash);
    }

    /// Gives back the count of a connection that was closed or detached.
    pub(crate) fn forget(self: &Arc<Self>, key: &Target) {
        let mut trash = Trash::new();
        {
            let mut st = self.lock();
            st.forget(key);
            st.dispatch(self, &mut trash);
        }
        drop(trash);
    }
}

impl State {
    fn host_mut(&mut self, key: &Target) -> &mut Host {
        self.hosts.entry(key.clone()).or_default()
    }

    /// Removes one open connection of `key` from the counts.
    fn forget(&mut self, key: &Target) {
        self.open -= 1;
        if let Some(host) = self.hosts.get_mut(key) {
            host.open -= 1;
            if host.open == 0 {
                self.hosts.remove(key);
            }
        }
    }

    /// Discards every idle connection to `key` (a request found one of them
    /// closed by the server, so the others are suspect too).
    fn discard_idle(&mut self, key: &Target, trash: &mut Trash) {
        let Some(host) = self.hosts.get_mut(key) else {
            return;
        };
        let idle = std::mem::take(&mut host.idle);
        for conn in idle {
            self.idle -= 1;
            self.forget(key);
            trash.push(conn.conn);
        }
    }

    /// The newest idle connection to `key` that is still fit for reuse;
    /// the expired, dead and poisoned ones found on the way are discarded.
    fn take_idle(
        &mut self,
        shared: &Arc<Shared>,
        key: &Target,
        now: Instant,
        trash: &mut Trash,
    ) -> Option<Connection> {
        let config = &shared.config;
        loop {
            let host = self.hosts.get_mut(key)?;
            let mut idle = host.idle.pop_back()?;
            self.idle -= 1;
            let fresh = now - idle.since < config.keepalive_timeout()
                && config.within_lifetime(now - idle.created);
            if fresh && idle.conn.stream.probe_idle() == Idle::Quiet {
                let slot = Slot::adopt(shared, key);
                return Some(Connection::new(slot, idle.conn, idle.created, true));
            }
            self.forget(key);
            trash.push(idle.conn);
        }
    }

    /// Whether a new connection to `key` fits under the limits, closing the
    /// oldest idle connection of another endpoint when only the total
    /// limit is in the way.
    fn make_room(&mut self, config: &PoolConfig, key: &Target, trash: &mut Trash) -> bool {
        self.has_room(config, key)
            || (self.host_has_room(config, key) && self.evict_oldest_idle(trash))
    }

    /// Whether `key`'s own limit allows one more connection.
    fn host_has_room(&self, config: &PoolConfig, key: &Target) -> bool {
        let host_open = self.hosts.get(key).map_or(0, |h| h.open);
        config.limit_per_host().is_none_or(|l| host_open < l)
    }

    /// Whether both limits allow one more connection to `key` as things are.
    fn has_room(&self, config: &PoolConfig, key: &Target) -> bool {
        self.host_has_room(config, key) && config.limit().is_none_or(|l| self.open < l)
    }

    fn evict_oldest_idle(&mut self, trash: &mut Trash) -> bool {
        let oldest = self
            .hosts
            .iter()
            .filter_map(|(k, h)| h.idle.front().map(|i| (i.since, k)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, k)| k.clone());
        let Some(key) = oldest else { return false };
        if let Some(idle) = self.host_mut(&key).idle.pop_front() {
            self.idle -= 1;
            self.forget(&key);
            trash.push(idle.conn);
            return true;
        }
        false
    }

    /// Serves queued waiters while there is something to give: an idle
    /// connection to their endpoint, or room under the limits.
    ///
    /// Oldest first, in two passes: the first gives only what costs
    /// nothing (a kept connection to the waiter's own endpoint, or free
    /// room), so a released connection goes to a waiter that can reuse it;
    /// the second closes idle connections nobody is waiting for to make
    /// room. A head-of-queue waiter that later waiters overtook
    /// [`MAX_OVERTAKEN`] times is served first, closing any idle
    /// connection if it must, so no endpoint starves.
    fn dispatch(&mut self, shared: &Arc<Shared>, trash: &mut Trash) {
        let now = Instant::now();
        if self
            .waiters
            .front()
            .is_some_and(|w| w.overtaken >= MAX_OVERTAKEN)
        {
            self.serve(shared, 0, true, now, trash);
        }
        for evict in [false, true] {
            let mut i = 0;
            while i < self.waiters.len() {
                let full = shared.config.limit().is_some_and(|l| self.open >= l);
                if full && self.idle == 0 {
                    // No idle connection anywhere and no room: nobody can be served.
                    return;
                }
                if !self.serve(shared, i, evict, now, trash) {
                    i += 1;
                }
            }
        }
    }

    /// Serves waiter `i` if possible; true when it left the queue (served,
    /// or gone).
    fn serve(
        &mut self,
        shared: &Arc<Shared>,
        i: usize,
        evict: bool,
        now: Instant,
        trash: &mut Trash,
    ) -> bool {
        if self.waiters[i].tx.is_closed() {
            self.waiters.remove(i);
            return true;
        }
        let key = self.waiters[i].key.clone();
        let grant = if let Some(conn) = self.take_idle(shared, &key, now, trash) {
            Grant::Reuse(conn)
        } else if self.has_room(&shared.config, &key)
            || (evict && self.host_has_room(&shared.config, &key) && self.evict_oldest_idle(trash))
        {
            Grant::Dial(Slot::reserved(shared, self, &key))
        } else {
            return false;
        };
        let Some(waiter) = self.waiters.remove(i) else {
            return false;
        };
        if let Err(grant) = waiter.tx.send(grant) {
            // The waiter went away between the check and the send.
            self.undo(grant);
        } else if i > 0
            && let Some(head) = self.waiters.front_mut()
        {
            head.overtaken += 1;
        }
        true
    }

    /// Takes back a grant nobody received, without dropping a guard under
    /// the lock.
    fn undo(&mut self, grant: Grant) {
        match grant {
            Grant::Dial(slot) => {
                if let Some(key) = slot.disarm() {
                    self.forget(&key);
                }
            }
            Grant::Reuse(conn) => {
                // A granted connection always holds its stream and slot.
                if let Some((key, conn, created)) = conn.into_parts() {
                    self.host_mut(&key).idle.push_back(IdleConn {
                        conn,
                        created,
                        since: Instant::now(),
                    });
                    self.idle += 1;
                }
            }
        }
    }

    /// When the next idle connection expires, if any is idle.
    fn next_expiry(&self, config: &PoolConfig) -> Option<Instant> {
        self.hosts
            .values()
            .flat_map(|h| h.idle.iter())
            .map(|i| {
                let idle_end = i.since + config.keepalive_timeout();
                match config.max_lifetime() {
                    Some(max) => idle_end.min(i.created + max),
                    None => idle_end,
                }
            })
            .min()
    }

    /// Discards every expired idle connection.
    fn expire(&mut self, config: &PoolConfig, now: Instant, trash: &mut Trash) {
        let keys: Vec<Target> = self.hosts.keys().cloned().collect();
        for key in keys {
            let host = self.host_mut(&key);
            let mut kept = VecDeque::with_capacity(host.idle.len());
            let mut gone = Vec::new();
            for idle in host.idle.drain(..) {
                let fresh = now - idle.since < config.keepalive_timeout()
                    && config.within_lifetime(now - idle.created);
                if fresh {
                    kept.push_back(idle)
                } else {
                    gone.push(idle)
                }
            }
            host.idle = kept;
            for idle in gone {
                self.idle -= 1;
                self.forget(&key);
                trash.push(idle.conn);
            }
        }
    }
}

/// The task that closes idle connections when they expire, so an unused
/// pool does not hold sockets open. It runs while there are idle
/// connections and stops with the pool.
async fn reap(shared: Weak<Shared>) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut trash = Trash::new();
            let next = {
                let mut st = shared.lock();
                st.expire(&shared.config, Instant::now(), &mut trash);
                if !trash.is_empty() {
                    st.dispatch(&shared, &mut trash);
                }
                let next = st.next_expiry(&shared.config);
                if next.is_none() {
                    st.reaper = false;
                }
                next
            };
            drop(trash);
            next
        };
        let Some(next) = next else { return };
        // A little past the deadline, so the connection is surely expired.
        tokio::time::sleep_until(next + Duration::from_millis(1)).await;
    }
}

/// Removes a waiter from the queue when its task stops waiting (timeout
/// or cancellation), so its place goes to the next one.
///
/// A grant sent just before the task stopped waiting is taken back: a kept
/// connection goes back to idle (not closed), room goes to the next waiter.
struct Queued<'a> {
    shared: &'a Arc<Shared>,
    id: u64,
    rx: oneshot::Receiver<Grant>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        // No grant can arrive after this.
        self.rx.close();
        let unreceived = self.rx.try_recv().ok();
        let mut trash = Trash::new();
        {
            let mut st = self.shared.lock();
            if let Some(i) = st.waiters.iter().position(|w| w.id == self.id) {
                st.waiters.remove(i);
            }
            if let Some(grant) = unreceived {
                st.undo(grant);
                st.dispatch(self.shared, &mut trash);
            }
        }
        drop(trash);
    }
}

/// One counted open connection to `key`: reserved before dialing, held by
/// the [`Connection`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    shared: Arc<Shared>,
    key: Option<Target>,
}

impl Slot {
    /// Counts a new connection (the caller checked the limits).
    fn reserved(shared: &Arc<Shared>, st: &mut State, key: &Target) -> Self {
        st.open += 1;
        st.host_mut(key).open += 1;
        Self::adopt(shared, key)
    }

    /// Guards a connection that is already counted (taken from idle).
    fn adopt(shared: &Arc<Shared>, key: &Target) -> Self {
        Self {
            shared: Arc::clone(shared),
            key: Some(key.clone()),
        }
    }

    pub(crate) fn key(&self) -> Option<&Target> {
        self.key.as_ref()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops guarding: the caller takes over the count of the returned
    /// endpoint (`None` only if already disarmed, which the callers
    /// never do).
    pub(crate) fn disarm(mut self) -> Option<Target> {
        self.key.take()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.forget(&key);
        }
    }
}

#[cfg(test)]
mod tests;
