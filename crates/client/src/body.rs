//! Request bodies: bytes, text, forms, streams, readers and multipart.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::BoxError;

/// A stream of body chunks, as a request body is sent.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send + Sync>>;

/// How many bytes a reader body reads at a time (64 KiB): large enough that
/// a file upload costs few system calls, small enough not to matter per
/// request.
pub const READER_CHUNK_SIZE: usize = 64 * 1024;

/// A request body.
///
/// A body is either *replayable* (bytes, text, forms, multipart forms made
/// of in-memory parts or file paths, [`Body::replayable`]): it can be sent
/// again when a redirect (307/308) or a retry on a stale kept-alive
/// connection needs it; or *one-shot* (a [`Stream`] or an [`AsyncRead`]):
/// then a redirect that must resend it fails with an error saying so.
///
/// ```
/// use courier_client::Body;
/// let body = Body::from("hello");
/// assert_eq!(body.len(), Some(5));
/// assert!(body.is_replayable());
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Replayable {
        length: Option<u64>,
        make: Arc<dyn Fn() -> BodyStream + Send + Sync>,
    },
    Stream {
        length: Option<u64>,
        stream: BodyStream,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("Body::Empty"),
            Kind::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Kind::Replayable { length, .. } => write!(f, "Body::Replayable({length:?})"),
            Kind::Stream { length, .. } => write!(f, "Body::Stream({length:?})"),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body { kind: Kind::Empty }
    }

    /// A one-shot body from a stream of chunks, sent chunked (or with
    /// `Content-Length` when set with [`with_length`](Self::with_length)).
    pub fn wrap_stream<S, E>(stream: S) -> Body
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream {
                length: None,
                stream: Box::pin(MapErr(Box::pin(stream))),
            },
        }
    }

    /// A one-shot body read from `reader` (a `tokio::fs::File`, a pipe...)
    /// in chunks of [`READER_CHUNK_SIZE`], sent chunked unless a length is
    /// given with [`with_length`](Self::with_length).
    pub fn from_reader<R>(reader: R) -> Body
    where
        R: AsyncRead + Send + Sync + 'static,
    {
        Body {
            kind: Kind::Stream {
                length: None,
                stream: Box::pin(ReaderStream::new(reader)),
            },
        }
    }

    /// A streamed body that can be produced again: `make` is called for each
    /// send (the first, a redirect's, a retry's).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use courier_client::Body;
    /// let body = Body::replayable(Some(3), || Body::once(Bytes::from_static(b"abc")));
    /// assert!(body.is_replayable());
    /// ```
    pub fn replayable<F>(length: Option<u64>, make: F) -> Body
    where
        F: Fn() -> BodyStream + Send + Sync + 'static,
    {
        Body {
            kind: Kind::Replayable {
                length,
                make: Arc::new(make),
            },
        }
    }

    /// A stream that yields `bytes` once: a building block for
    /// [`replayable`](Self::replayable).
    pub fn once(bytes: Bytes) -> BodyStream {
        Box::pin(Once(Some(bytes)))
    }

    /// Declares the length of a streamed body: it is then sent with
    /// `Content-Length` instead of chunked, and sending fails if the stream
    /// yields more or fewer bytes.
    pub fn with_length(mut self, len: u64) -> Body {
        match &mut self.kind {
            Kind::Stream { length, .. } | Kind::Replayable { length, .. } => *length = Some(len),
            Kind::Empty | Kind::Full(_) => {}
        }
        self
    }

    /// The length in bytes, when known before sending.
    pub fn len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Empty => Some(0),
            Kind::Full(bytes) => Some(bytes.len() as u64),
            Kind::Replayable { length, .. } | Kind::Stream { length, .. } => *length,
        }
    }

    /// True for a body known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// True when the body can be sent again (see the type's docs).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, Kind::Stream { .. })
    }

    /// The bytes of an in-memory body.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Empty => Some(&[]),
            Kind::Full(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// A copy for sending again, when replayable (cheap: bytes are shared).
    pub fn try_clone(&self) -> Option<Body> {
        let kind = match &self.kind {
            Kind::Empty => Kind::Empty,
            Kind::Full(bytes) => Kind::Full(bytes.clone()),
            Kind::Replayable { length, make } => Kind::Replayable {
                length: *length,
                make: Arc::clone(make),
            },
            Kind::Stream { .. } => return None,
        };
        Some(Body { kind })
    }

    /// Takes the body apart for sending.
    pub(crate) fn into_source(self) -> Source {
        match self.kind {
            Kind::Empty => Source::Full(Bytes::new()),
            Kind::Full(bytes) => Source::Full(bytes),
            Kind::Replayable { make, .. } => Source::Stream(make()),
            Kind::Stream { stream, .. } => Source::Stream(stream),
        }
    }
}

/// A body ready to send.
pub(crate) enum Source {
    Full(Bytes),
    Stream(BodyStream),
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body {
            kind: Kind::Full(bytes),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

/// Boxes a user stream and maps its error type.
struct MapErr<S>(Pin<Box<S>>);

impl<S, E> Stream for MapErr<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(Into::into)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// Reads an [`AsyncRead`] as a stream of chunks.
struct ReaderStream<R> {
    reader: Pin<Box<R>>,
    buf: BytesMut,
    done: bool,
}

impl<R: AsyncRead> ReaderStream<R> {
    fn new(reader: R) -> Self {
        ReaderStream {
            reader: Box::pin(reader),
            buf: BytesMut::new(),
            done: false,
        }
    }
}

impl<R: AsyncRead> Stream for ReaderStream<R> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        if this.buf.capacity() < READER_CHUNK_SIZE {
            this.buf.reserve(READER_CHUNK_SIZE);
        }
        // `read_buf` makes one `poll_read` attempt per poll, so a fresh
        // future each time loses nothing.
        let read = std::pin::pin!(this.reader.read_buf(&mut this.buf)).poll(cx);
        match read {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Ok(0)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Some(Ok(this.buf.split().freeze()))),
        }
    }
}

struct Once(Option<Bytes>);

impl Stream for Once {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}
