//! [`ClientWebSocket`]: a `courier-ws` connection over a pooled stream,
//! with the timers that the sans-IO core leaves to its caller.
//!
//! All the work happens in [`Core`]'s poll functions, which hold no state
//! between calls beyond the connection's own: every future built on them
//! can be dropped at any point without losing or corrupting a message (a
//! message is queued whole, then written from the queue by whoever polls
//! next). [`ClientWebSocket`] owns its `Core`; the halves of
//! [`ClientWebSocket::split`] share one behind a mutex that is held only
//! while polling, never across an await.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use courier_pool::Stream;
use courier_proto::http::HeaderMap;
use courier_ws::{CloseCode, DataKind, DeflateParams, Message, Text, UsageError, WebSocket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::error::{Error, Kind, Result, TimeoutPhase};

/// The least room (64 KiB) made in the read buffer before each socket
/// read. A frame larger than that gets room for all of it once its header
/// arrived, so it is moved at most once; the buffer then keeps that size
/// (up to 256 KiB) for the next frames. A message of N bytes costs about
/// N bytes of buffer (2N while fragments are joined).
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// The most bytes (1 MiB) queued for the server and not yet written
/// before reading stops until they drain: a peer that pings faster than it
/// reads our pongs cannot grow the queue without bound. Sends wait for
/// their own frame to be written, so they never queue more than one
/// message beyond this.
pub const MAX_UNSENT: usize = 1024 * 1024;

/// A write buffer that grew past this (256 KiB) for one large message is
/// dropped once written, so it does not pin that size for the life of the
/// connection.
const KEEP_WRITE_BUFFER: usize = 256 * 1024;

/// A read buffer that grew past this (256 KiB) for a large frame is let go
/// once the frame was taken, so one large message does not pin its size
/// for the life of the connection.
const KEEP_READ_BUFFER: usize = 256 * 1024;

/// Room kept in the read buffer before a read: below it the buffer is
/// grown (or its consumed front reclaimed) to [`READ_BUFFER_SIZE`].
const MIN_READ_ROOM: usize = 4 * 1024;

/// How long [`ClientWebSocket::close`] waits, after the close handshake,
/// for the server to close the TCP connection (1 s, within the close
/// timeout). RFC 6455 §7.1.1 has the server close first, so that the
/// TIME_WAIT state stays on its side; most servers do so at once, and a
/// server that waits for the client is not kept waiting long.
pub const CLOSE_EOF_WAIT: Duration = Duration::from_secs(1);

/// Why a socket stopped working. Kept (cloneable) so that
/// [`ClientWebSocket::exception`] can report it after the call that met
/// it.
#[derive(Debug, Clone)]
enum Failure {
    /// The peer broke the protocol, a limit was hit, or the connection
    /// ended without the close handshake.
    Ws(courier_ws::Error),
    /// Reading or writing the connection failed.
    Io(Arc<io::Error>),
    /// The heartbeat's pong, or the close handshake, did not come in time.
    Timeout(TimeoutPhase, Duration),
}

impl Failure {
    fn to_error(&self, url: &Url) -> Error {
        let err = match self {
            Failure::Ws(err) => Error::new(Kind::WsProtocol, Some(Box::new(err.clone()))),
            Failure::Io(err) => Error::new(Kind::Io, Some(Box::new(Arc::clone(err)))),
            Failure::Timeout(phase, after) => Error::timeout(*phase, *after),
        };
        err.with_url(url)
    }

    /// The close code that describes the failure.
    fn close_code(&self) -> CloseCode {
        match self {
            Failure::Ws(err) => err
                .close_code()
                .filter(|code| code.is_valid_on_wire())
                .unwrap_or(CloseCode::ABNORMAL),
            Failure::Io(_) | Failure::Timeout(..) => CloseCode::ABNORMAL,
        }
    }
}

/// Which half is polling, when the socket is split: both may write (the
/// reader sends pongs and close replies), and a stream remembers only the
/// last waker that polled it for writing, so each half's waker is kept and
/// both are woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Reader,
    Writer,
}

/// The wakers of the two halves waiting for the stream to take more bytes.
#[derive(Debug, Default)]
struct WriteWaiters {
    reader: Mutex<Option<Waker>>,
    writer: Mutex<Option<Waker>>,
}

impl WriteWaiters {
    fn register(&self, side: Side, waker: &Waker) {
        let slot = match side {
            Side::Reader => &self.reader,
            Side::Writer => &self.writer,
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

impl Wake for WriteWaiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        for slot in [&self.reader, &self.writer] {
            let waker = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// The ping timer (aiohttp `heartbeat`).
#[derive(Debug)]
struct Heartbeat {
    /// Silence after which a ping is sent.
    interval: Duration,
    /// How long the answer may take.
    pong_timeout: Duration,
    /// When to look again: the end of the interval, or the pong deadline.
    sleep: Pin<Box<Sleep>>,
    /// A ping went out and nothing arrived since.
    awaiting_pong: bool,
    /// When the last frame arrived. Only read when the timer fires, so a
    /// busy connection costs a clock read per message, not a timer reset.
    last_seen: Instant,
}

/// The settings of a socket, chosen at `ws_connect`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) autoping: bool,
    pub(crate) autoclose: bool,
    pub(crate) heartbeat: Option<(Duration, Duration)>,
    pub(crate) receive_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
}

/// What the handshake decided, shared by both halves.
#[derive(Debug)]
struct Meta {
    url: Url,
    protocol: Option<String>,
    deflate: Option<DeflateParams>,
    headers: HeaderMap,
}

/// The connection: the stream, the protocol state and the buffers.
struct Core {
    /// `None` once dropped after the close handshake or a failure.
    io: Option<Stream>,
    proto: WebSocket,
    /// Bytes received and not yet taken by `proto`.
    rbuf: BytesMut,
    /// The largest capacity `rbuf` was given since it was last let go.
    rbuf_alloc: usize,
    /// Frames for the server; `wbuf[wpos..]` is not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    failure: Option<Failure>,
    /// The failure was returned by a receive; later receives see the end.
    failure_reported: bool,
    /// The server's close frame (or the end of the connection) was
    /// returned by a receive; later receives see the end.
    end_reported: bool,
    autoping: bool,
    close_timeout: Duration,
    receive_timeout: Option<Duration>,
    heartbeat: Option<Heartbeat>,
    /// Set once split.
    waiters: Option<Arc<WriteWaiters>>,
    /// For errors; the `ws`/`wss` URL.
    url: Arc<Url>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("proto", &self.proto)
            .field("buffered", &self.rbuf.len())
            .field("unsent", &(self.wbuf.len() - self.wpos))
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

fn closed_error(url: &Url) -> Error {
    Error::new(Kind::WsClosed, None).with_url(url)
}

fn io_failure(err: io::Error) -> Failure {
    Failure::Io(Arc::new(err))
}

impl Core {
    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Records the first failure; returns it as an error.
    fn fail(&mut self, failure: Failure) -> Error {
        let failure = self.failure.get_or_insert(failure).clone();
        if matches!(failure, Failure::Io(_) | Failure::Timeout(..)) {
            // Nothing more can be written usefully: drop the connection.
            self.io = None;
        }
        failure.to_error(&self.url)
    }

    fn is_closed(&self) -> bool {
        self.proto.close_sent() || self.proto.close_received() || self.failure.is_some()
    }

    /// Queues a message or control frame made by `make`.
    fn queue(
        &mut self,
        make: impl FnOnce(&mut WebSocket, &mut Vec<u8>) -> courier_ws::Result<()>,
    ) -> Result<()> {
        if self.failure.is_some() || self.io.is_none() {
            return Err(closed_error(&self.url));
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        match make(&mut self.proto, &mut self.wbuf) {
            Ok(()) => Ok(()),
            Err(courier_ws::Error::Usage(UsageError::SendAfterClose)) => {
                Err(closed_error(&self.url))
            }
            Err(err @ courier_ws::Error::Usage(_)) => Err(Error::builder(err).with_url(&self.url)),
            // Compression failed: the connection is unusable.
            Err(err) => Err(self.fail(Failure::Ws(err))),
        }
    }

    /// Queues one message given as a [`Message`] (the `Sink` and `send`).
    fn queue_message(&mut self, message: &Message) -> Result<()> {
        self.queue(|ws, out| match message {
            Message::Text(text) => ws.send_fragment(DataKind::Text, text.as_bytes(), true, out),
            Message::Binary(data) => ws.send_binary(data, out),
            Message::Ping(payload) => ws.send_ping(payload, out),
            Message::Pong(payload) => ws.send_pong(payload, out),
            Message::Close(None) => ws.close(None, out),
            Message::Close(Some(frame)) => ws.close(Some((frame.code, &frame.reason)), out),
        })
    }

    /// Writes everything queued, then flushes the stream.
    fn poll_write_out(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<()>> {
        match self.waiters.clone() {
            Some(waiters) => {
                waiters.register(side, cx.waker());
                let waker = Waker::from(waiters);
                self.write_out(&mut Context::from_waker(&waker))
            }
            None => self.write_out(cx),
        }
    }

    fn write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Err(match &self.failure {
                Some(failure) => failure.to_error(&self.url),
                None => closed_error(&self.url),
            }));
        };
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut *io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(self.fail(io_failure(err))));
                }
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(self.fail(io_failure(err)))),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.wbuf.capacity() > KEEP_WRITE_BUFFER {
            self.wbuf = Vec::new();
        } else {
            self.wbuf.clear();
        }
        self.wpos = 0;
        match Pin::new(io).poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.fail(io_failure(err)))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The next frame of interest from the server, control frames
    /// included: `Ok(None)` once the close handshake completed or the
    /// connection ended cleanly after it.
    fn poll_frame(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<Option<Message>>> {
        loop {
            if let Some(failure) = &self.failure {
                return Poll::Ready(Err(failure.to_error(&self.url)));
            }
            if self.wpos < self.wbuf.len() {
                match self.poll_write_out(cx, side) {
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending if self.unsent() > MAX_UNSENT => return Poll::Pending,
                    _ => {}
                }
            }
            match self.proto.read(&mut self.rbuf, &mut self.wbuf) {
                Ok(Some(message)) => {
                    if let Some(heartbeat) = &mut self.heartbeat {
                        heartbeat.last_seen = Instant::now();
                        heartbeat.awaiting_pong = false;
                    }
                    if self.wpos < self.wbuf.len() {
                        // A pong or close reply: on its way now. A write
                        // error is kept and reported by the next call.
                        let _ = self.poll_write_out(cx, side);
                    }
                    return Poll::Ready(Ok(Some(message)));
                }
                Ok(None) => {}
                Err(err) => {
                    let err = self.fail(Failure::Ws(err));
                    // The close frame for the error, then the connection
                    // is closed (RFC 6455 §7.1.7); if the frame cannot be
                    // written at once, dropping the socket closes it.
                    if self.poll_write_out(cx, side).is_ready() {
                        self.io = None;
                    }
                    return Poll::Ready(Err(err));
                }
            }
            if self.proto.is_closed() {
                return Poll::Ready(Ok(None));
            }
            self.make_read_room();
            let Some(io) = self.io.as_mut() else {
                return Poll::Ready(Err(closed_error(&self.url)));
            };
            // `read_buf` makes one read attempt per poll: a new future each
            // time loses nothing.
            let read = std::pin::pin!(io.read_buf(&mut self.rbuf)).poll(cx);
            match read {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(match self.proto.eof(&self.rbuf) {
                        Ok(()) => {
                            self.io = None;
                            Ok(None)
                        }
                        Err(err) => {
                            self.io = None;
                            Err(self.fail(Failure::Ws(err)))
                        }
                    });
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(self.fail(io_failure(err)))),
                Poll::Pending => {
                    if self.heartbeat.is_some() {
                        self.poll_heartbeat(cx, side)?;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Makes room in the read buffer for the next socket read.
    ///
    /// Between frames (the buffer empty) the whole allocation is taken
    /// back, which costs nothing when no message still shares it, so a
    /// frame as large as any before it arrives without the buffer growing
    /// or moving; an allocation grown past [`KEEP_READ_BUFFER`] by a large
    /// message is let go instead. Inside a frame, room is made for all of
    /// the frame at once.
    fn make_read_room(&mut self) {
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let want = if self.rbuf.is_empty() {
            if self.rbuf_alloc > KEEP_READ_BUFFER {
                self.rbuf = BytesMut::new();
                self.rbuf_alloc = 0;
            }
            READ_BUFFER_SIZE
        } else {
            let room = self.proto.frame_remaining(&self.rbuf).max(MIN_READ_ROOM);
            if spare >= room {
                return;
            }
            room.max(READ_BUFFER_SIZE)
        };
        if self.rbuf.capacity() - self.rbuf.len() < want {
            self.rbuf.reserve(want);
            self.rbuf_alloc = self.rbuf_alloc.max(self.rbuf.capacity());
        }
    }

    /// Runs the heartbeat while waiting for the server: a ping after
    /// `interval` of silence, a failure when nothing answers it within
    /// `pong_timeout`.
    fn poll_heartbeat(&mut self, cx: &mut Context<'_>, side: Side) -> Result<()> {
        loop {
            let Some(heartbeat) = &mut self.heartbeat else {
                return Ok(());
            };
            if heartbeat.sleep.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            if heartbeat.awaiting_pong {
                let after = heartbeat.pong_timeout;
                self.heartbeat = None;
                tracing::debug!(url = %self.url, ?after, "WebSocket heartbeat: no pong, closing");
                return Err(self.fail(Failure::Timeout(TimeoutPhase::WsPong, after)));
            }
            let now = Instant::now();
            let due = heartbeat.last_seen + heartbeat.interval;
            if now < due {
                heartbeat.sleep.as_mut().reset(due);
                continue;
            }
            if self.proto.close_sent() {
                // Closing: the close handshake has its own timeout.
                self.heartbeat = None;
                return Ok(());
            }
            heartbeat.awaiting_pong = true;
            let deadline = now + heartbeat.pong_timeout;
            heartbeat.sleep.as_mut().reset(deadline);
            self.queue(|ws, out| ws.send_ping(b"", out))?;
            if let Poll::Ready(Err(err)) = self.poll_write_out(cx, side) {
                return Err(err);
            }
        }
    }

    /// The next message for the caller: pings and pongs are left out when
    /// autoping is on; `Ok(None)` after the server's close frame was
    /// returned, or once the failure was.
    fn poll_receive(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<Option<Message>>> {
        loop {
            if self.end_reported {
                return Poll::Ready(Ok(None));
            }
            if self.failure.is_some() && self.failure_reported {
                return Poll::Ready(Ok(None));
            }
            match ready!(self.poll_frame(cx, side)) {
                Err(err) => {
                    self.failure_reported = true;
                    return Poll::Ready(Err(err));
                }
                Ok(None) => {
                    self.end_reported = true;
                    return Poll::Ready(Ok(None));
                }
                Ok(Some(Message::Ping(_) | Message::Pong(_))) if self.autoping => {}
                Ok(Some(message @ Message::Close(_))) => {
                    self.end_reported = true;
                    return Poll::Ready(Ok(Some(message)));
                }
                Ok(Some(message)) => return Poll::Ready(Ok(Some(message))),
            }
        }
    }

    /// Waits for the server to close the connection (after the close
    /// handshake), ignoring what it sends.
    fn poll_eof(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 512];
        // Bounded by the close timeout around the caller.
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// This side's half of the close handshake and the end of the
    /// connection: queue the close frame (unless sent), write it, read
    /// until the server's, wait for the server to close TCP, shut down.
    /// Problems on the way are kept as the exception, as aiohttp does;
    /// only an invalid code or reason is an error.
    async fn close_with(
        access: &mut impl Access,
        code: CloseCode,
        reason: &str,
        wait_for_peer: bool,
    ) -> Result<()> {
        let limit = access.with(|core| {
            if !core.proto.close_sent() && core.failure.is_none() && core.io.is_some() {
                core.queue(|ws, out| ws.close(Some((code, reason)), out))?;
            }
            Ok::<_, Error>(core.close_timeout)
        })?;
        let closing = async {
            poll_fn(|cx| access.with(|core| core.poll_write_out(cx, Side::Writer))).await?;
            if !wait_for_peer {
                return Ok(());
            }
            while poll_fn(|cx| access.with(|core| core.poll_frame(cx, Side::Reader)))
                .await?
                .is_some()
            {}
            let _ = tokio::time::timeout(
                CLOSE_EOF_WAIT,
                poll_fn(|cx| access.with(|core| core.poll_eof(cx))),
            )
            .await;
            poll_fn(|cx| {
                access.with(|core| match core.io.as_mut() {
                    Some(io) => Pin::new(io).poll_shutdown(cx).map(|_| ()),
                    None => Poll::Ready(()),
                })
            })
            .await;
            Ok::<_, Error>(())
        };
        let outcome = tokio::time::timeout(limit, closing).await;
        access.with(|core| {
            match outcome {
                Ok(Ok(())) => {}
                // Kept as the exception by `fail` on the way.
                Ok(Err(_)) => {}
                // Only the wait for the server's TCP close ran out: the
                // close handshake itself completed.
                Err(_) if core.proto.is_closed() => {}
                Err(_) => {
                    core.fail(Failure::Timeout(TimeoutPhase::WsClose, limit));
                }
            }
            if wait_for_peer {
                core.io = None;
                core.end_reported = true;
            }
        });
        Ok(())
    }

    fn exception(&self) -> Option<Error> {
        self.failure.as_ref().map(|f| f.to_error(&self.url))
    }

    fn close_code(&self) -> Option<CloseCode> {
        if let Some(failure) = &self.failure {
            return Some(failure.close_code());
        }
        if self.proto.close_received() {
            return Some(
                self.proto
                    .peer_close()
                    .map_or(CloseCode::NO_STATUS, |frame| frame.code),
            );
        }
        None
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Tell the server we are going away (1001), as browsers do when a
        // page closes, if that can be written at once; the connection
        // closes either way.
        if self.io.is_some() && self.failure.is_none() && !self.proto.close_sent() {
            let _ = self.queue(|ws, out| ws.close(Some((CloseCode::GOING_AWAY, "")), out));
            let mut cx = Context::from_waker(Waker::noop());
            let _ = self.poll_write_out(&mut cx, Side::Writer);
        }
    }
}

/// Access to the core: direct for a whole socket, through the mutex for
/// the halves of a split one.
trait Access {
    fn with<R>(&mut self, f: impl FnOnce(&mut Core) -> R) -> R;
}

impl Access for Core {
    fn with<R>(&mut self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(self)
    }
}

/// What the halves of a split socket share.
#[derive(Debug)]
struct Shared {
    core: Mutex<Core>,
    meta: Meta,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // The core is consistent after any panic in a caller's code: it is
        // only ever changed inside its own methods, which do not panic.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Access for Arc<Shared> {
    fn with<R>(&mut self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut self.lock())
    }
}

/// Sends what `make` queues and waits until it is written.
async fn send_with(
    access: &mut impl Access,
    make: impl FnOnce(&mut WebSocket, &mut Vec<u8>) -> courier_ws::Result<()>,
) -> Result<()> {
    access.with(|core| core.queue(make))?;
    poll_fn(|cx| access.with(|core| core.poll_write_out(cx, Side::Writer))).await
}

/// The next message, within the receive timeout.
async fn receive_with(access: &mut impl Access) -> Result<Option<Message>> {
    let limit = access.with(|core| core.receive_timeout);
    let receive = poll_fn(|cx| access.with(|core| core.poll_receive(cx, Side::Reader)));
    match limit {
        None => receive.await,
        Some(limit) => match tokio::time::timeout(limit, receive).await {
            Ok(result) => result,
            Err(_) => Err(access
                .with(|core| Error::timeout(TimeoutPhase::WsReceive, limit).with_url(&core.url))),
        },
    }
}

/// What a typed receive expected.
fn unexpected(expected: &str, got: &Message) -> Error {
    let got = match got {
        Message::Text(text) => format!("a text message ({} bytes)", text.len()),
        Message::Binary(data) => format!("a binary message ({} bytes)", data.len()),
        Message::Ping(_) => "a ping".to_owned(),
        Message::Pong(_) => "a pong".to_owned(),
        Message::Close(_) => "the close frame".to_owned(),
    };
    Error::new(
        Kind::WsUnexpectedMessage,
        Some(format!("expected {expected}, got {got}").into()),
    )
}

async fn receive_text(access: &mut impl Access) -> Result<Text> {
    match receive_with(access).await? {
        Some(Message::Text(text)) => Ok(text),
        None | Some(Message::Close(_)) => Err(access.with(|core| closed_error(&core.url))),
        Some(other) => Err(unexpected("a text message", &other)),
    }
}

async fn receive_binary(access: &mut impl Access) -> Result<Bytes> {
    match receive_with(access).await? {
        Some(Message::Binary(data)) => Ok(data),
        None | Some(Message::Close(_)) => Err(access.with(|core| closed_error(&core.url))),
        Some(other) => Err(unexpected("a binary message", &other)),
    }
}

#[cfg(feature = "json")]
async fn receive_json_with<T: serde::de::DeserializeOwned>(access: &mut impl Access) -> Result<T> {
    let bytes = match receive_with(access).await? {
        Some(Message::Text(text)) => text.into_bytes(),
        Some(Message::Binary(data)) => data,
        None | Some(Message::Close(_)) => return Err(access.with(|core| closed_error(&core.url))),
        Some(other) => return Err(unexpected("a text or binary message", &other)),
    };
    serde_json::from_slice(&bytes).map_err(Error::decode)
}

#[cfg(feature = "json")]
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(Error::builder)
}

/// An open WebSocket (aiohttp `ClientWebSocketResponse`), from
/// [`ClientSession::ws_connect`](crate::ClientSession::ws_connect).
///
/// * Send with [`send_str`](Self::send_str),
///   [`send_bytes`](Self::send_bytes), [`send_json`](Self::send_json),
///   [`send`](Self::send) or [`send_fragment`](Self::send_fragment); each
///   returns once its frame is written to the connection.
/// * Receive with [`receive`](Self::receive) (or the typed
///   [`receive_str`](Self::receive_str),
///   [`receive_bytes`](Self::receive_bytes),
///   [`receive_json`](Self::receive_json)), or use the socket as a
///   [`Stream`](futures_core::Stream) of messages. With autoping (the
///   default) pings are answered and pings and pongs are not returned;
///   with autoclose (the default) the server's close frame is answered,
///   returned once, and followed by the end (`None`).
/// * It is also a [`Sink`](futures_sink::Sink) of [`Message`]s, and
///   [`split`](Self::split) gives halves for two tasks.
/// * [`close`](Self::close) performs the close handshake within the close
///   timeout. Dropping the socket sends a "going away" (1001) close frame
///   if it can at once, and closes the connection.
///
/// The heartbeat and the receive timeout run while the socket is being
/// read: a socket that nobody reads cannot see pongs anyway.
///
/// Every method can be cancelled (dropped before it completes) without
/// losing or corrupting a message: a message is queued whole, and what is
/// queued is written by the next call.
pub struct ClientWebSocket {
    core: Core,
    meta: Meta,
}

impl fmt::Debug for ClientWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientWebSocket")
            .field("url", &self.meta.url.as_str())
            .field("protocol", &self.meta.protocol)
            .field("deflate", &self.meta.deflate)
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}

/// The parts `ws_connect` builds a socket from.
pub(crate) struct Opened {
    pub(crate) stream: Stream,
    pub(crate) rest: BytesMut,
    pub(crate) proto: WebSocket,
    pub(crate) url: Url,
    pub(crate) protocol: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) settings: Settings,
}

impl ClientWebSocket {
    pub(crate) fn new(opened: Opened) -> ClientWebSocket {
        let Opened {
            stream,
            rest,
            mut proto,
            url,
            protocol,
            headers,
            settings,
        } = opened;
        proto.set_auto_pong(settings.autoping);
        proto.set_auto_close(settings.autoclose);
        let deflate = proto.deflate().copied();
        let heartbeat = settings
            .heartbeat
            .map(|(interval, pong_timeout)| Heartbeat {
                interval,
                pong_timeout,
                sleep: Box::pin(tokio::time::sleep(interval)),
                awaiting_pong: false,
                last_seen: Instant::now(),
            });
        ClientWebSocket {
            core: Core {
                io: Some(stream),
                proto,
                rbuf_alloc: rest.capacity(),
                rbuf: rest,
                wbuf: Vec::new(),
                wpos: 0,
                failure: None,
                failure_reported: false,
                end_reported: false,
                autoping: settings.autoping,
                close_timeout: settings.close_timeout,
                receive_timeout: settings.receive_timeout,
                heartbeat,
                waiters: None,
                url: Arc::new(url.clone()),
            },
            meta: Meta {
                url,
                protocol,
                deflate,
                headers,
            },
        }
    }

    /// The URL connected to (`ws://` or `wss://`), without userinfo.
    pub fn url(&self) -> &Url {
        &self.meta.url
    }

    /// The subprotocol the server chose (aiohttp `protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.meta.protocol.as_deref()
    }

    /// The permessage-deflate parameters, when compression was negotiated.
    pub fn compress(&self) -> Option<&DeflateParams> {
        self.meta.deflate.as_ref()
    }

    /// The headers of the server's `101 Switching Protocols` answer.
    pub fn headers(&self) -> &HeaderMap {
        &self.meta.headers
    }

    /// True once [`close`](Self::close) was called, a close frame was sent
    /// or received, or the socket failed (aiohttp `closed`).
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The close code: the server's (1005 for a close frame without one),
    /// or the code describing a failure (1006 for a connection lost
    /// without the close handshake). `None` while open (aiohttp
    /// `close_code`).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.core.close_code()
    }

    /// The error that ended the socket, if one did (aiohttp
    /// `exception()`): a protocol violation by the server, a lost
    /// connection, a heartbeat without answer, a close handshake that
    /// timed out.
    pub fn exception(&self) -> Option<Error> {
        self.core.exception()
    }

    /// Changes the receive timeout (aiohttp `receive_timeout`): the
    /// longest [`receive`](Self::receive) waits for a message; `None`
    /// waits for ever.
    pub fn set_receive_timeout(&mut self, timeout: Option<Duration>) {
        self.core.receive_timeout = timeout;
    }

    /// Sends a text message.
    ///
    /// # Errors
    ///
    /// [`Error::is_ws_closed`] once the socket is closing or closed; I/O
    /// errors writing it.
    pub async fn send_str(&mut self, text: &str) -> Result<()> {
        send_with(&mut self.core, |ws, out| ws.send_text(text, out)).await
    }

    /// Sends a binary message.
    ///
    /// # Errors
    ///
    /// As [`send_str`](Self::send_str).
    pub async fn send_bytes(&mut self, data: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.core, |ws, out| ws.send_binary(data.as_ref(), out)).await
    }

    /// Sends `value` as JSON in a text message (aiohttp `send_json`).
    ///
    /// # Errors
    ///
    /// As [`send_str`](Self::send_str), and a builder error if `value`
    /// cannot be serialized.
    #[cfg(feature = "json")]
    pub async fn send_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = to_json(value)?;
        self.send_str(&text).await
    }

    /// Sends any message: text, binary, a ping, a pong, or a close frame
    /// (which starts the close handshake without waiting for it; see
    /// [`close`](Self::close)).
    ///
    /// # Errors
    ///
    /// As [`send_str`](Self::send_str); a builder error for an invalid
    /// control frame (over 125 bytes, a close code not allowed on the
    /// wire).
    pub async fn send(&mut self, message: Message) -> Result<()> {
        self.core.queue_message(&message)?;
        poll_fn(|cx| self.core.poll_write_out(cx, Side::Writer)).await
    }

    /// Sends one fragment of a message: the first call of a message
    /// chooses its kind, the call with `fin` ends it. Pings may go between
    /// fragments, other messages may not.
    ///
    /// # Errors
    ///
    /// As [`send_str`](Self::send_str); a builder error when the kind
    /// changes mid-message or text fragments are not UTF-8 together.
    pub async fn send_fragment(&mut self, kind: DataKind, data: &[u8], fin: bool) -> Result<()> {
        send_with(&mut self.core, |ws, out| {
            ws.send_fragment(kind, data, fin, out)
        })
        .await
    }

    /// Sends a ping (aiohttp `ping`); its pong arrives as a message when
    /// autoping is off.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn ping(&mut self, payload: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.core, |ws, out| {
            ws.send_ping(payload.as_ref(), out)
        })
        .await
    }

    /// Sends a pong (aiohttp `pong`): the answer to a ping when autoping
    /// is off, or a one-way heartbeat.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn pong(&mut self, payload: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.core, |ws, out| {
            ws.send_pong(payload.as_ref(), out)
        })
        .await
    }

    /// The next message (aiohttp `receive`); `None` once the socket is
    /// closed.
    ///
    /// With autoping, pings are answered here and neither pings nor pongs
    /// are returned. The server's close frame is returned once (and, with
    /// autoclose, answered), then `None`. A failure is returned once as
    /// the error (and kept as [`exception`](Self::exception)), then
    /// `None`.
    ///
    /// # Errors
    ///
    /// [`Error::is_ws_protocol`] when the server broke the protocol or a
    /// limit, or the connection ended without the close handshake (1006);
    /// a [`TimeoutPhase::WsReceive`] timeout (the socket stays open) or a
    /// [`TimeoutPhase::WsPong`] one (the heartbeat closed it); I/O errors.
    pub async fn receive(&mut self) -> Result<Option<Message>> {
        receive_with(&mut self.core).await
    }

    /// The next message, which must be text (aiohttp `receive_str`).
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive); [`Error::is_ws_unexpected_message`]
    /// for another kind of message, [`Error::is_ws_closed`] when the
    /// socket closed instead.
    pub async fn receive_str(&mut self) -> Result<Text> {
        receive_text(&mut self.core).await
    }

    /// The next message, which must be binary (aiohttp `receive_bytes`).
    ///
    /// # Errors
    ///
    /// As [`receive_str`](Self::receive_str).
    pub async fn receive_bytes(&mut self) -> Result<Bytes> {
        receive_binary(&mut self.core).await
    }

    /// The next message (text or binary) parsed as JSON (aiohttp
    /// `receive_json`).
    ///
    /// # Errors
    ///
    /// As [`receive_str`](Self::receive_str); [`Error::is_decode`] when
    /// the message is not valid JSON for `T`.
    #[cfg(feature = "json")]
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        receive_json_with(&mut self.core).await
    }

    /// Closes the socket (aiohttp `close(code, message)`): sends a close
    /// frame with `code` and `reason` (unless one was sent), reads and
    /// drops messages until the server's close frame, waits for the server
    /// to close the connection (RFC 6455 §7.1.1; at most
    /// [`CLOSE_EOF_WAIT`]), and closes it. All of it
    /// within the close timeout (10 s by default); a server that does not
    /// answer in time has its connection dropped, and the timeout becomes
    /// the [`exception`](Self::exception). Calling it again does nothing.
    ///
    /// # Errors
    ///
    /// Only for a `code` not allowed on the wire (1005, 1006, 1015, or
    /// outside 1000-4999) or a `reason` over 123 bytes: problems on the
    /// way are kept as the exception, as aiohttp does.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        Core::close_with(&mut self.core, code, reason, true).await
    }

    /// Splits the socket into a reading and a writing half, for two tasks.
    ///
    /// The reader answers pings (autoping) and runs the heartbeat; the
    /// writer sends. [`WsWriter::close`] sends the close frame without
    /// waiting for the answer, which the reader receives.
    ///
    /// ```no_run
    /// # async fn run(ws: courier_client::ws::ClientWebSocket) -> Result<(), courier_client::Error> {
    /// let (mut reader, mut writer) = ws.split();
    /// let printer = tokio::spawn(async move {
    ///     while let Ok(Some(msg)) = reader.receive().await {
    ///         println!("{msg:?}");
    ///     }
    /// });
    /// writer.send_str("hello").await?;
    /// writer.close(courier_client::ws::CloseCode::NORMAL, "").await?;
    /// printer.await.ok();
    /// # Ok(()) }
    /// ```
    pub fn split(self) -> (WsReader, WsWriter) {
        let ClientWebSocket { mut core, meta } = self;
        core.waiters = Some(Arc::new(WriteWaiters::default()));
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            meta,
        });
        (
            WsReader {
                shared: Arc::clone(&shared),
            },
            WsWriter { shared },
        )
    }
}

impl futures_core::Stream for ClientWebSocket {
    type Item = Result<Message>;

    /// The messages [`receive`](ClientWebSocket::receive) would return
    /// (without its receive timeout), ending after the close frame or a
    /// failure.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .core
            .poll_receive(cx, Side::Reader)
            .map(Result::transpose)
    }
}

/// `poll_ready` for the sinks: wait while much is queued.
fn poll_sink_ready(core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<()>> {
    if core.unsent() > MAX_UNSENT {
        ready!(core.poll_write_out(cx, Side::Writer))?;
    }
    match &core.failure {
        Some(failure) => Poll::Ready(Err(failure.to_error(&core.url))),
        None => Poll::Ready(Ok(())),
    }
}

/// `poll_close` for the sinks: a normal close frame (unless one was sent),
/// written out. The server's answer is for the reading side.
fn poll_sink_close(core: &mut Core, cx: &mut Context<'_>) -> Poll<Result<()>> {
    if !core.proto.close_sent() && core.failure.is_none() {
        core.queue(|ws, out| ws.close(Some((CloseCode::NORMAL, "")), out))?;
    }
    core.poll_write_out(cx, Side::Writer)
}

impl futures_sink::Sink<Message> for ClientWebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_ready(&mut self.get_mut().core, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.get_mut().core.queue_message(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().core.poll_write_out(cx, Side::Writer)
    }

    /// Sends a normal close frame (1000) unless one was sent, and writes
    /// everything out; read on to see the server's answer.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_close(&mut self.get_mut().core, cx)
    }
}

/// The reading half of a split [`ClientWebSocket`]: receives, answers
/// pings, runs the heartbeat. A [`Stream`](futures_core::Stream) of
/// messages.
#[derive(Debug)]
pub struct WsReader {
    shared: Arc<Shared>,
}

/// The writing half of a split [`ClientWebSocket`]: sends. A
/// [`Sink`](futures_sink::Sink) of messages.
#[derive(Debug)]
pub struct WsWriter {
    shared: Arc<Shared>,
}

impl WsReader {
    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.shared.meta.protocol.as_deref()
    }

    /// See [`ClientWebSocket::closed`].
    pub fn closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// See [`ClientWebSocket::close_code`].
    pub fn close_code(&self) -> Option<CloseCode> {
        self.shared.lock().close_code()
    }

    /// See [`ClientWebSocket::exception`].
    pub fn exception(&self) -> Option<Error> {
        self.shared.lock().exception()
    }

    /// See [`ClientWebSocket::receive`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::receive`].
    pub async fn receive(&mut self) -> Result<Option<Message>> {
        receive_with(&mut self.shared).await
    }

    /// See [`ClientWebSocket::receive_str`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::receive_str`].
    pub async fn receive_str(&mut self) -> Result<Text> {
        receive_text(&mut self.shared).await
    }

    /// See [`ClientWebSocket::receive_bytes`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::receive_str`].
    pub async fn receive_bytes(&mut self) -> Result<Bytes> {
        receive_binary(&mut self.shared).await
    }

    /// See [`ClientWebSocket::receive_json`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::receive_json`].
    #[cfg(feature = "json")]
    pub async fn receive_json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        receive_json_with(&mut self.shared).await
    }

    /// Whether `writer` is the other half of this socket.
    pub fn is_pair_of(&self, writer: &WsWriter) -> bool {
        Arc::ptr_eq(&self.shared, &writer.shared)
    }
}

impl futures_core::Stream for WsReader {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared
            .lock()
            .poll_receive(cx, Side::Reader)
            .map(Result::transpose)
    }
}

impl WsWriter {
    /// See [`ClientWebSocket::closed`].
    pub fn closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// See [`ClientWebSocket::send_str`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send_str`].
    pub async fn send_str(&mut self, text: &str) -> Result<()> {
        send_with(&mut self.shared, |ws, out| ws.send_text(text, out)).await
    }

    /// See [`ClientWebSocket::send_bytes`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send_str`].
    pub async fn send_bytes(&mut self, data: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.shared, |ws, out| {
            ws.send_binary(data.as_ref(), out)
        })
        .await
    }

    /// See [`ClientWebSocket::send_json`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send_json`].
    #[cfg(feature = "json")]
    pub async fn send_json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = to_json(value)?;
        self.send_str(&text).await
    }

    /// See [`ClientWebSocket::send`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send`].
    pub async fn send(&mut self, message: Message) -> Result<()> {
        self.shared.lock().queue_message(&message)?;
        poll_fn(|cx| self.shared.lock().poll_write_out(cx, Side::Writer)).await
    }

    /// See [`ClientWebSocket::send_fragment`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send_fragment`].
    pub async fn send_fragment(&mut self, kind: DataKind, data: &[u8], fin: bool) -> Result<()> {
        send_with(&mut self.shared, |ws, out| {
            ws.send_fragment(kind, data, fin, out)
        })
        .await
    }

    /// See [`ClientWebSocket::ping`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send`].
    pub async fn ping(&mut self, payload: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.shared, |ws, out| {
            ws.send_ping(payload.as_ref(), out)
        })
        .await
    }

    /// See [`ClientWebSocket::pong`].
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::send`].
    pub async fn pong(&mut self, payload: impl AsRef<[u8]>) -> Result<()> {
        send_with(&mut self.shared, |ws, out| {
            ws.send_pong(payload.as_ref(), out)
        })
        .await
    }

    /// Sends the close frame (unless one was sent) and waits, within the
    /// close timeout, until it is written. The server's answer, and the
    /// end of the socket, are the reading half's: keep reading it until it
    /// returns `None`.
    ///
    /// # Errors
    ///
    /// As [`ClientWebSocket::close`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<()> {
        Core::close_with(&mut self.shared, code, reason, false).await
    }
}

impl futures_sink::Sink<Message> for WsWriter {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_ready(&mut self.shared.lock(), cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<()> {
        self.shared.lock().queue_message(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.lock().poll_write_out(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_close(&mut self.shared.lock(), cx)
    }
}
