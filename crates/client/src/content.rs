//! The response body as a byte stream: [`Content`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use courier_pool::Connection;
use courier_proto::{ContentCoding, ContentDecoder, Exchange, Limits, state};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::error::{Error, Kind, Result, TimeoutPhase};

/// How much the client asks the socket for at a time (64 KiB).
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Most bytes one decoded (gunzipped, inflated) chunk holds (32 KiB).
pub const DECODE_CHUNK_SIZE: usize = 32 * 1024;

/// The longest line [`Content::readline`] returns (64 KiB, as aiohttp's
/// `StreamReader` limit); a longer one is an error rather than unbounded
/// buffering.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// The time limits that apply while the body is read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Deadlines {
    /// The end of the request's total timeout, and that timeout.
    pub(crate) total: Option<(Instant, Duration)>,
    /// The longest silence between two reads.
    pub(crate) read: Option<Duration>,
}

/// The live part of a body being read from its connection.
struct Live {
    conn: Connection,
    exchange: Exchange<state::RecvBody>,
}

/// The response body: a stream of byte chunks that is also an
/// [`AsyncRead`], with aiohttp's `StreamReader` methods
/// ([`read`](Self::read), [`readline`](Self::readline),
/// [`readany`](Self::readany), [`read_exactly`](Self::read_exactly),
/// [`iter_chunked`](Self::iter_chunked)).
///
/// Bytes are read from the connection only when asked for, so a slow
/// consumer slows the server down (TCP backpressure) instead of filling
/// memory. Content codings (gzip, deflate) are removed as the bytes pass,
/// bounded by the codec's decompression-ratio limit. When the body ends
/// the connection goes back to the pool if the server allowed keep-alive;
/// dropping an unfinished `Content` closes it.
///
/// A body that ends early (fewer bytes than `Content-Length`, an
/// unfinished chunked body or compressed stream) is an error, never a short
/// success.
pub struct Content {
    live: Option<Live>,
    /// Bytes received and not yet parsed by the exchange.
    buf: BytesMut,
    /// Boxed: most bodies are not compressed, and a response is moved a few
    /// times on its way to the caller.
    decoder: Option<Box<ContentDecoder>>,
    /// Body bytes (transfer coding removed) not yet fed to the decoder.
    compressed: Bytes,
    /// Decoded bytes taken from a chunk but not yet handed out.
    pending: Bytes,
    scratch: Vec<u8>,
    finished: bool,
    failed: bool,
    deadlines: Deadlines,
    total_sleep: Option<Pin<Box<Sleep>>>,
    read_sleep: Option<Pin<Box<Sleep>>>,
    url: Option<Arc<Url>>,
    received: u64,
    /// An error found while settling the buffered bytes, reported at the
    /// first read after the bytes before it.
    deferred: Option<Error>,
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Content")
            .field("finished", &self.finished)
            .field("connected", &self.live.is_some())
            .field("decoding", &self.decoder.is_some())
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Content {
    /// A body that is already complete (no body, or one read before).
    pub(crate) fn empty() -> Content {
        Content::done_with(Bytes::new())
    }

    /// A complete body holding `bytes`.
    pub(crate) fn done_with(bytes: Bytes) -> Content {
        Content {
            live: None,
            buf: BytesMut::new(),
            decoder: None,
            compressed: Bytes::new(),
            pending: bytes,
            scratch: Vec::new(),
            finished: true,
            failed: false,
            deadlines: Deadlines::default(),
            total_sleep: None,
            read_sleep: None,
            url: None,
            received: 0,
            deferred: None,
        }
    }

    /// A body still to be read from `conn`; `buf` holds the bytes that
    /// arrived with the head.
    pub(crate) fn live(
        conn: Connection,
        exchange: Exchange<state::RecvBody>,
        buf: BytesMut,
        coding: Option<ContentCoding>,
        limits: &Limits,
        deadlines: Deadlines,
        url: Arc<Url>,
    ) -> Content {
        let decoder = match coding {
            Some(ContentCoding::Identity) | None => None,
            Some(coding) => Some(Box::new(ContentDecoder::new(coding, limits))),
        };
        let mut content = Content {
            live: Some(Live { conn, exchange }),
            buf,
            decoder,
            compressed: Bytes::new(),
            pending: Bytes::new(),
            scratch: Vec::new(),
            finished: false,
            failed: false,
            deadlines,
            total_sleep: None,
            read_sleep: None,
            url: Some(url),
            received: 0,
            deferred: None,
        };
        content.settle_buffered();
        content
    }

    /// Takes the body out of the bytes that arrived with the head. When
    /// they hold all of it (the common case for small responses), the
    /// connection goes back to the pool at once, even if the caller never
    /// reads the body.
    fn settle_buffered(&mut self) {
        let mut collected = BytesMut::new();
        let mut single: Option<Bytes> = None;
        while let Some(live) = &mut self.live {
            if self.buf.is_empty() {
                break;
            }
            let step = match live.exchange.read(&self.buf) {
                Ok(step) => step,
                Err(e) => {
                    self.deferred = Some(Error::payload(e));
                    break;
                }
            };
            if step.consumed == 0 && !step.done {
                break;
            }
            let chunk = self.buf.split_to(step.consumed).freeze();
            let data = chunk.slice(step.data);
            self.received += data.len() as u64;
            if !data.is_empty() {
                match single.take() {
                    None if collected.is_empty() => single = Some(data),
                    first => {
                        if let Some(first) = first {
                            collected.extend_from_slice(&first);
                        }
                        collected.extend_from_slice(&data);
                    }
                }
            }
            if step.done {
                if let Err(err) = self.end_of_body() {
                    self.deferred = Some(err);
                }
                break;
            }
        }
        let data = single.unwrap_or_else(|| collected.freeze());
        if self.decoder.is_some() {
            self.compressed = data;
        } else {
            self.pending = data;
        }
    }

    /// Whether the whole body has been received (pending bytes may remain
    /// to be handed out).
    pub fn is_eof(&self) -> bool {
        self.finished && self.pending.is_empty()
    }

    /// The connection still carrying this body, if any (aiohttp
    /// `ClientResponse.connection`).
    pub(crate) fn connection(&self) -> Option<&Connection> {
        self.live.as_ref().map(|live| &live.conn)
    }

    /// Body bytes received so far as the server sent them: transfer
    /// framing (chunk sizes) removed, content coding (gzip) not yet, so
    /// for a compressed body this is its compressed size.
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Body bytes still due under `Content-Length`, when the body is
    /// framed by it and not yet complete.
    pub(crate) fn remaining_hint(&self) -> Option<u64> {
        if self.decoder.is_some() {
            return None;
        }
        self.live
            .as_ref()
            .and_then(|live| live.exchange.remaining())
    }

    /// Closes the connection unless the body is complete.
    pub(crate) fn close(&mut self) {
        if let Some(mut live) = self.live.take() {
            live.conn.close();
        }
        if !self.finished {
            self.finished = true;
            self.failed = true;
        }
        self.pending = Bytes::new();
    }

    fn fail(&mut self, err: Error) -> Error {
        self.close();
        match &self.url {
            Some(url) => err.with_url(url),
            None => err,
        }
    }

    /// The next chunk of decoded body bytes, or `None` at the end.
    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.pending))));
        }
        match self.poll_decoded(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.fail(err))),
            other => other,
        }
    }

    fn poll_decoded(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        if let Some(err) = self.deferred.take() {
            return Poll::Ready(Err(err));
        }
        loop {
            if self.failed {
                return Poll::Ready(Err(Error::payload("the response body failed earlier")));
            }
            if let Some(decoder) = &mut self.decoder
                && !self.compressed.is_empty()
            {
                if self.scratch.len() < DECODE_CHUNK_SIZE {
                    self.scratch.resize(DECODE_CHUNK_SIZE, 0);
                }
                let (used, produced) = decoder
                    .decode(&self.compressed, &mut self.scratch)
                    .map_err(Error::payload)?;
                self.compressed.advance(used);
                if produced > 0 {
                    return Poll::Ready(Ok(Some(Bytes::copy_from_slice(
                        &self.scratch[..produced],
                    ))));
                }
                if used == 0 {
                    return Poll::Ready(Err(Error::payload("content decoder made no progress")));
                }
                continue;
            }
            let Some(live) = &mut self.live else {
                if self.finished {
                    return Poll::Ready(Ok(None));
                }
                // Framing done: the compressed stream must be complete too.
                if let Some(decoder) = &mut self.decoder {
                    decoder.finish().map_err(Error::payload)?;
                }
                self.finished = true;
                return Poll::Ready(Ok(None));
            };
            if !self.buf.is_empty() || live.exchange.is_done() {
                let step = live.exchange.read(&self.buf).map_err(Error::payload)?;
                let chunk = self.buf.split_to(step.consumed).freeze();
                let data = chunk.slice(step.data);
                self.received += data.len() as u64;
                if step.done {
                    self.end_of_body()?;
                }
                if !data.is_empty() {
                    if self.decoder.is_some() {
                        self.compressed = data;
                        continue;
                    }
                    return Poll::Ready(Ok(Some(data)));
                }
                if step.consumed > 0 || step.done {
                    continue;
                }
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// The framing says the body is complete: settle the connection.
    fn end_of_body(&mut self) -> Result<()> {
        let Some(Live { mut conn, exchange }) = self.live.take() else {
            return Ok(());
        };
        let done = exchange.proceed().map_err(Error::payload)?;
        // Bytes after the body on a connection nobody asked them on make
        // it unusable; the exchange counted them from our buffer.
        conn.set_reusable(!done.must_close() && self.buf.is_empty());
        conn.release();
        // The read buffer is no longer needed: free it now rather than when
        // the response is dropped.
        self.buf = BytesMut::new();
        self.total_sleep = None;
        self.read_sleep = None;
        if self.decoder.is_none() {
            self.finished = true;
        }
        Ok(())
    }

    /// Reads more bytes from the connection into `buf`.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(live) = &mut self.live else {
            return Poll::Ready(Ok(()));
        };
        if self.buf.capacity() - self.buf.len() < READ_BUFFER_SIZE / 4 {
            self.buf.reserve(READ_BUFFER_SIZE);
        }
        // `read_buf` makes one `poll_read` attempt per poll, so a fresh
        // future each time loses nothing.
        let read = std::pin::pin!(live.conn.read_buf(&mut self.buf)).poll(cx);
        match read {
            Poll::Ready(Ok(0)) => {
                // A body cut short is a payload error (aiohttp
                // `ClientPayloadError`), not a disconnect before the response.
                live.exchange.eof().map_err(Error::payload)?;
                self.end_of_body()?;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(_)) => {
                if let (Some(sleep), Some(limit)) = (&mut self.read_sleep, self.deadlines.read) {
                    sleep.as_mut().reset(Instant::now() + limit);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::payload(e))),
            Poll::Pending => {
                self.poll_timers(cx)?;
                Poll::Pending
            }
        }
    }

    /// Checks the timers while waiting for the server.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Result<()> {
        if let Some((at, limit)) = self.deadlines.total {
            let sleep = self
                .total_sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Err(Error::timeout(TimeoutPhase::Total, limit));
            }
        }
        if let Some(limit) = self.deadlines.read {
            let sleep = self
                .read_sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Err(Error::timeout(TimeoutPhase::Read, limit));
            }
        }
        Ok(())
    }

    /// The next chunk of the body as it arrives (aiohttp `readany()`), or
    /// an empty `Bytes` at the end.
    pub async fn readany(&mut self) -> Result<Bytes> {
        Ok(poll_fn(|cx| self.poll_chunk(cx)).await?.unwrap_or_default())
    }

    /// The next chunk, or `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Up to `n` bytes (aiohttp `read(n)`): fewer only at the end of the
    /// body; an empty `Bytes` once it is over.
    pub async fn read(&mut self, n: usize) -> Result<Bytes> {
        let Some(mut chunk) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        if chunk.len() > n {
            self.pending = chunk.split_off(n);
        }
        Ok(chunk)
    }

    /// Exactly `n` bytes (aiohttp `readexactly(n)`).
    ///
    /// # Errors
    ///
    /// A payload error when the body ends first (the bytes read are lost,
    /// as with aiohttp's `IncompleteReadError`).
    pub async fn read_exactly(&mut self, n: usize) -> Result<Bytes> {
        let mut out = BytesMut::new();
        while out.len() < n {
            let Some(mut chunk) = self.chunk().await? else {
                return Err(Error::payload(format!(
                    "body ended after {} of {n} bytes",
                    out.len()
                )));
            };
            let want = n - out.len();
            if chunk.len() > want {
                self.pending = chunk.split_off(want);
            }
            if out.is_empty() && chunk.len() == n {
                return Ok(chunk);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// One line, up to and including its `\n` (aiohttp `readline()`); the
    /// last line may lack it; an empty `Bytes` at the end.
    ///
    /// # Errors
    ///
    /// A payload error for a line longer than [`DEFAULT_MAX_LINE`].
    pub async fn readline(&mut self) -> Result<Bytes> {
        let mut line = BytesMut::new();
        loop {
            let Some(mut chunk) = self.chunk().await? else {
                return Ok(line.freeze());
            };
            if let Some(at) = chunk.iter().position(|&b| b == b'\n') {
                self.pending = chunk.split_off(at + 1);
                if line.is_empty() {
                    return Ok(chunk);
                }
                line.extend_from_slice(&chunk);
                return Ok(line.freeze());
            }
            line.extend_from_slice(&chunk);
            if line.len() > DEFAULT_MAX_LINE {
                return Err(self.fail(Error::payload(format!(
                    "line longer than {DEFAULT_MAX_LINE} bytes"
                ))));
            }
        }
    }

    /// The rest of the body as a stream of chunks of exactly `n` bytes
    /// (the last may be shorter), as aiohttp's `iter_chunked(n)`.
    pub fn iter_chunked(&mut self, n: usize) -> IterChunked<'_> {
        IterChunked {
            content: self,
            size: n.max(1),
            acc: BytesMut::new(),
        }
    }

    /// Reads the rest of the body, refusing more than `limit` bytes.
    pub(crate) async fn read_to_end(&mut self, limit: u64) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut acc = BytesMut::new();
        let mut total = 0u64;
        while let Some(chunk) = self.chunk().await? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(self.fail(Error::new(Kind::BodyTooLarge(limit), None)));
            }
            match &first {
                None if acc.is_empty() => first = Some(chunk),
                _ => {
                    if let Some(first) = first.take() {
                        let hint = self.remaining_hint().unwrap_or(0);
                        let hint = usize::try_from(hint.min(limit)).unwrap_or(0);
                        acc.reserve(first.len() + chunk.len() + hint);
                        acc.extend_from_slice(&first);
                    }
                    acc.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| acc.freeze()))
    }

    /// Reads and drops the rest of the body, up to `limit` bytes, so that
    /// the connection can be reused; past the limit it is closed instead.
    pub(crate) async fn drain(&mut self, limit: u64) {
        let mut total = 0u64;
        loop {
            match self.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len() as u64;
                    if total > limit {
                        self.close();
                        return;
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }
}

/// Maps an I/O error while reading a response: a reset is the server going
/// away, anything else is I/O.
pub(crate) fn io_error(e: io::Error) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Kind::Disconnected,
        _ => Kind::Io,
    };
    Error::new(kind, Some(Box::new(e)))
}

impl Stream for Content {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx).map(Result::transpose)
    }
}

impl AsyncRead for Content {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            match ready!(this.poll_chunk(cx)) {
                Ok(Some(chunk)) => this.pending = chunk,
                Ok(None) => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
        let n = this.pending.len().min(out.remaining());
        out.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// Chunks of a fixed size from [`Content::iter_chunked`].
pub struct IterChunked<'a> {
    content: &'a mut Content,
    size: usize,
    acc: BytesMut,
}

impl fmt::Debug for IterChunked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterChunked")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl IterChunked<'_> {
    /// The next chunk, `None` at the end (the same as polling the stream).
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for IterChunked<'_> {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match ready!(this.content.poll_chunk(cx)) {
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(None) => {
                    return Poll::Ready(if this.acc.is_empty() {
                        None
                    } else {
                        Some(Ok(std::mem::take(&mut this.acc).freeze()))
                    });
                }
                Ok(Some(mut chunk)) => {
                    let want = this.size - this.acc.len();
                    if chunk.len() > want {
                        this.content.pending = chunk.split_off(want);
                    }
                    if this.acc.is_empty() && chunk.len() == this.size {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                    this.acc.extend_from_slice(&chunk);
                    if this.acc.len() == this.size {
                        return Poll::Ready(Some(Ok(std::mem::take(&mut this.acc).freeze())));
                    }
                }
            }
        }
    }
}
