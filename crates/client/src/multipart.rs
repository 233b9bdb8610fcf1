//! `multipart/form-data` request bodies (RFC 7578), aiohttp's `FormData`
//! with files: a [`Form`] of named [`Part`]s, sent as a streamed [`Body`].
//!
//! ```
//! use courier_client::multipart::{Form, Part};
//!
//! let form = Form::new()
//!     .text("title", "holiday")
//!     .part("photo", Part::bytes(&b"\x89PNG..."[..]).file_name("a.png").mime_str("image/png")?);
//! let content_type = form.content_type(); // multipart/form-data; boundary=...
//! let body = form.into_body();
//! assert!(body.is_replayable());
//! # drop((content_type, body));
//! # Ok::<(), courier_client::multipart::InvalidMime>(())
//! ```
//!
//! # Encoding
//!
//! Each part is `--boundary CRLF`, a `Content-Disposition: form-data;
//! name="..."` line (with `; filename="..."` for a part with a file name),
//! a `Content-Type` line when the part has one, the part's extra headers,
//! a blank line, the data and a CRLF; `--boundary-- CRLF` ends the body.
//!
//! * Names and file names are written in UTF-8 with `"`, CR and LF
//!   escaped as `%22`, `%0D` and `%0A`: what the HTML standard has
//!   browsers do, so servers understand it. Nothing else is escaped and no
//!   `filename*=` is added (RFC 7578 §4.2 forbids it). aiohttp
//!   percent-encodes whole file names instead and reqwest percent-encodes
//!   names by default; both make non-ASCII names unreadable to servers
//!   that, like most, do not decode them.
//! * Text parts get no `Content-Type`: RFC 7578 §4.4 makes `text/plain`
//!   the default, browsers and reqwest send none, and some servers take a
//!   part with a `Content-Type` for a file. (aiohttp sends
//!   `text/plain; charset=utf-8`.) The same holds for bytes, stream and
//!   reader parts without a file name unless a type is set.
//! * A part with a file name and no type set is
//!   `application/octet-stream` (RFC 7578 §4.4); [`Part::file`] guesses
//!   the type from the extension for common ones.
//!
//! # Streaming and replay
//!
//! [`Form::into_body`] never buffers file contents: files are opened when
//! the body is sent and read in chunks. A form of text, bytes and file
//! parts is replayable (a 307/308 redirect or a retry sends it again,
//! files reopened); a form with a stream or reader part is one-shot. The
//! body has a `Content-Length` when every part's length is known.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderMap, HeaderValue};
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::io::AsyncRead;
use tokio::task::JoinHandle;

use crate::body::{Body, BodyStream, Source};
use crate::error::BoxError;

/// How many random alphanumeric characters a boundary has (about 190
/// bits: it never occurs in the data by chance).
const BOUNDARY_LEN: usize = 32;

/// Adjacent in-memory pieces (part heads, small values) are sent as one
/// chunk while together they stay under this size.
const COALESCE_LIMIT: usize = 16 * 1024;

/// A `multipart/form-data` form: named parts in order, and a random
/// boundary.
pub struct Form {
    boundary: String,
    parts: Vec<(String, Part)>,
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts)
            .finish()
    }
}

impl Default for Form {
    fn default() -> Self {
        Form::new()
    }
}

impl Form {
    /// An empty form with a fresh random boundary of 32 alphanumeric
    /// characters.
    pub fn new() -> Form {
        let boundary = rand::rng()
            .sample_iter(Alphanumeric)
            .take(BOUNDARY_LEN)
            .map(char::from)
            .collect();
        Form {
            boundary,
            parts: Vec::new(),
        }
    }

    /// The boundary between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Adds a text field.
    pub fn text(self, name: impl Into<String>, value: impl Into<String>) -> Form {
        self.part(name, Part::text(value))
    }

    /// Adds a part.
    pub fn part(mut self, name: impl Into<String>, part: Part) -> Form {
        self.parts.push((name.into(), part));
        self
    }

    /// Adds the file at `path` as [`Part::file`] does: its file name from
    /// the path, its type guessed from the extension, its contents read
    /// when the body is sent.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or is not a regular file.
    pub async fn file(self, name: impl Into<String>, path: impl AsRef<Path>) -> io::Result<Form> {
        let part = Part::file(path).await?;
        Ok(self.part(name, part))
    }

    /// The request's `Content-Type`: `multipart/form-data; boundary=...`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The length of the encoded body, when every part's length is known
    /// (all but streams and readers without a declared length).
    pub fn content_length(&self) -> Option<u64> {
        let mut total = closing(&self.boundary).len() as u64;
        for (name, part) in &self.parts {
            let data = match &part.data {
                Data::Bytes(bytes) => bytes.len() as u64,
                Data::File { len, .. } => *len,
                Data::Stream { len, .. } => (*len)?,
            };
            total += part.head(&self.boundary, name).len() as u64 + data + 2;
        }
        Some(total)
    }

    /// The encoded form as a request body, streamed part by part: see the
    /// [module docs](self) for replay and length.
    pub fn into_body(self) -> Body {
        let length = self.content_length();
        let mut segments = Vec::new();
        for (name, part) in self.parts {
            push_bytes(&mut segments, part.head(&self.boundary, &name));
            match part.data {
                Data::Bytes(bytes) => push_bytes(&mut segments, bytes),
                Data::File { path, len } => {
                    segments.push(Segment::Replay(Spec::File { path, len }))
                }
                Data::Stream { stream, len } => {
                    let stream = match len {
                        Some(len) => Box::pin(Checked::new(stream, len, format!("part {name:?}"))),
                        None => stream,
                    };
                    segments.push(Segment::Stream(stream));
                }
            }
            push_bytes(&mut segments, Bytes::from_static(b"\r\n"));
        }
        push_bytes(&mut segments, closing(&self.boundary));

        let replayable: Option<Vec<Spec>> = segments
            .iter()
            .map(|segment| match segment {
                Segment::Replay(spec) => Some(spec.clone()),
                Segment::Stream(_) => None,
            })
            .collect();
        match replayable {
            Some(specs) => {
                let specs: Arc<[Spec]> = specs.into();
                Body::replayable(length, move || {
                    Box::pin(FormStream::new(
                        specs.iter().cloned().map(Segment::Replay).collect(),
                    ))
                })
            }
            None => {
                let body = Body::wrap_stream(FormStream::new(segments.into()));
                match length {
                    Some(length) => body.with_length(length),
                    None => body,
                }
            }
        }
    }
}

/// One part of a [`Form`]: its data, and optionally a file name, a media
/// type and extra headers.
pub struct Part {
    data: Data,
    file_name: Option<String>,
    mime: Option<HeaderValue>,
    headers: HeaderMap,
}

enum Data {
    Bytes(Bytes),
    /// Opened on each send; `len` is the size when the part was made.
    File {
        path: PathBuf,
        len: u64,
    },
    Stream {
        stream: BodyStream,
        len: Option<u64>,
    },
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Part");
        match &self.data {
            Data::Bytes(bytes) => d.field("bytes", &bytes.len()),
            Data::File { path, len } => d.field("file", path).field("len", len),
            Data::Stream { len, .. } => d.field("stream", len),
        };
        d.field("file_name", &self.file_name)
            .field("mime", &self.mime)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Part {
    fn new(data: Data) -> Part {
        Part {
            data,
            file_name: None,
            mime: None,
            headers: HeaderMap::new(),
        }
    }

    /// A text value, sent as UTF-8 without a `Content-Type`.
    pub fn text(value: impl Into<String>) -> Part {
        Part::new(Data::Bytes(Bytes::from(value.into())))
    }

    /// Bytes, sent as they are.
    pub fn bytes(bytes: impl Into<Bytes>) -> Part {
        Part::new(Data::Bytes(bytes.into()))
    }

    /// A one-shot stream of chunks of unknown length: the form's body is
    /// then one-shot and chunked.
    pub fn stream<S, E>(stream: S) -> Part
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Part::new(Data::Stream {
            stream: stream_of(Body::wrap_stream(stream)),
            len: None,
        })
    }

    /// A one-shot stream of exactly `len` bytes: the form's body is
    /// one-shot but keeps its `Content-Length`. Sending fails if the
    /// stream yields more or fewer bytes.
    pub fn stream_with_length<S, E>(stream: S, len: u64) -> Part
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        Part::new(Data::Stream {
            stream: stream_of(Body::wrap_stream(stream)),
            len: Some(len),
        })
    }

    /// A one-shot reader of unknown length, read in chunks as the body is
    /// sent: the form's body is then one-shot and chunked.
    pub fn reader<R>(reader: R) -> Part
    where
        R: AsyncRead + Send + Sync + 'static,
    {
        Part::new(Data::Stream {
            stream: stream_of(Body::from_reader(reader)),
            len: None,
        })
    }

    /// A one-shot reader of exactly `len` bytes, as
    /// [`stream_with_length`](Self::stream_with_length).
    pub fn reader_with_length<R>(reader: R, len: u64) -> Part
    where
        R: AsyncRead + Send + Sync + 'static,
    {
        Part::new(Data::Stream {
            stream: stream_of(Body::from_reader(reader)),
            len: Some(len),
        })
    }

    /// The file at `path`: its file name is the path's last component, its
    /// type guessed from the extension (`application/octet-stream` when
    /// not a common one), its length the file's size now. The file is
    /// opened here to report errors early, then closed; it is opened again
    /// and read in chunks each time the body is sent, and sending fails if
    /// its size has changed.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or is not a regular file.
    pub async fn file(path: impl AsRef<Path>) -> io::Result<Part> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await?;
        let metadata = file.metadata().await?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let mut part = Part::new(Data::File {
            path: path.to_path_buf(),
            len: metadata.len(),
        });
        part.file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        part.mime = Some(HeaderValue::from_static(guess_mime(path)));
        Ok(part)
    }

    /// Sets the file name (`filename="..."` in the part's
    /// `Content-Disposition`).
    pub fn file_name(mut self, name: impl Into<String>) -> Part {
        self.file_name = Some(name.into());
        self
    }

    /// Sets the part's media type (`Content-Type`), such as `image/png` or
    /// `text/csv; charset=utf-8`.
    ///
    /// # Errors
    ///
    /// When `mime` has no `/`, or has characters a header value cannot
    /// have (CR, LF, other controls, non-ASCII).
    pub fn mime_str(mut self, mime: &str) -> Result<Part, InvalidMime> {
        let valid = mime.contains('/')
            && mime
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        match HeaderValue::from_str(mime) {
            Ok(value) if valid => {
                self.mime = Some(value);
                Ok(self)
            }
            _ => Err(InvalidMime {
                mime: mime.to_owned(),
            }),
        }
    }

    /// Sets extra headers for the part, written after its
    /// `Content-Disposition`. A `Content-Type` among them replaces the
    /// part's type; a `Content-Disposition` is ignored (it comes from the
    /// field and file names).
    pub fn headers(mut self, headers: HeaderMap) -> Part {
        self.headers = headers;
        self
    }

    /// The part's head: delimiter, disposition, type, extra headers, blank
    /// line.
    fn head(&self, boundary: &str, name: &str) -> Bytes {
        let mut head = BytesMut::with_capacity(128);
        head.extend_from_slice(b"--");
        head.extend_from_slice(boundary.as_bytes());
        head.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        head.extend_from_slice(escape(name).as_bytes());
        head.extend_from_slice(b"\"");
        if let Some(file_name) = &self.file_name {
            head.extend_from_slice(b"; filename=\"");
            head.extend_from_slice(escape(file_name).as_bytes());
            head.extend_from_slice(b"\"");
        }
        head.extend_from_slice(b"\r\n");
        let content_type = match self.headers.get(CONTENT_TYPE).or(self.mime.as_ref()) {
            Some(value) => Some(value.as_bytes()),
            None if self.file_name.is_some() => Some(&b"application/octet-stream"[..]),
            None => None,
        };
        if let Some(content_type) = content_type {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(content_type);
            head.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            if name != CONTENT_TYPE && name != CONTENT_DISPOSITION {
                head.extend_from_slice(name.as_str().as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value.as_bytes());
                head.extend_from_slice(b"\r\n");
            }
        }
        head.extend_from_slice(b"\r\n");
        head.freeze()
    }
}

/// A media type given to [`Part::mime_str`] that cannot be a
/// `Content-Type` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid multipart media type {mime:?}")]
pub struct InvalidMime {
    mime: String,
}

impl InvalidMime {
    /// The rejected value.
    pub fn mime(&self) -> &str {
        &self.mime
    }
}

/// `"`, CR and LF as `%22`, `%0D` and `%0A` (the HTML standard's
/// multipart/form-data escaping of names and file names).
fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['"', '\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '"' => escaped.push_str("%22"),
            '\r' => escaped.push_str("%0D"),
            '\n' => escaped.push_str("%0A"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// The closing delimiter.
fn closing(boundary: &str) -> Bytes {
    Bytes::from(format!("--{boundary}--\r\n"))
}

/// The media type for a file name's extension: a few common ones, else
/// `application/octet-stream`.
fn guess_mime(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("css") => "text/css",
        Some("csv") => "text/csv",
        Some("js" | "mjs") => "text/javascript",
        Some("md") => "text/markdown",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("tar") => "application/x-tar",
        Some("wasm") => "application/wasm",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/vnd.microsoft.icon",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

/// The stream inside a streamed [`Body`].
fn stream_of(body: Body) -> BodyStream {
    match body.into_source() {
        Source::Full(bytes) => Body::once(bytes),
        Source::Stream(stream) => stream,
    }
}

/// A piece of the encoded form that can be produced again.
#[derive(Clone)]
enum Spec {
    Bytes(Bytes),
    File { path: PathBuf, len: u64 },
}

/// A piece of the encoded form, in order.
enum Segment {
    Replay(Spec),
    Stream(BodyStream),
}

/// Appends bytes, merged with the previous in-memory piece while small.
fn push_bytes(segments: &mut Vec<Segment>, bytes: Bytes) {
    if let Some(Segment::Replay(Spec::Bytes(last))) = segments.last_mut()
        && last.len() + bytes.len() <= COALESCE_LIMIT
    {
        let mut merged = BytesMut::with_capacity(last.len() + bytes.len());
        merged.extend_from_slice(last);
        merged.extend_from_slice(&bytes);
        *last = merged.freeze();
        return;
    }
    segments.push(Segment::Replay(Spec::Bytes(bytes)));
}

/// The encoded form as a stream: each segment in turn, files opened as
/// they are reached. Ends after the first error.
struct FormStream {
    segments: VecDeque<Segment>,
    current: Option<BodyStream>,
}

impl FormStream {
    fn new(segments: VecDeque<Segment>) -> FormStream {
        FormStream {
            segments,
            current: None,
        }
    }
}

impl Stream for FormStream {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(current) = &mut this.current {
                match ready!(current.as_mut().poll_next(cx)) {
                    Some(Ok(chunk)) if chunk.is_empty() => continue,
                    Some(Ok(chunk)) => return Poll::Ready(Some(Ok(chunk))),
                    Some(Err(e)) => {
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(e)));
                    }
                    None => this.current = None,
                }
            }
            match this.segments.pop_front() {
                None => return Poll::Ready(None),
                Some(Segment::Replay(Spec::Bytes(bytes))) => return Poll::Ready(Some(Ok(bytes))),
                Some(Segment::Replay(Spec::File { path, len })) => {
                    let what = format!("file {}", path.display());
                    let file = Box::pin(FileStream::Start(path));
                    this.current = Some(Box::pin(Checked::new(file, len, what)));
                }
                Some(Segment::Stream(stream)) => this.current = Some(stream),
            }
        }
    }
}

/// A file's contents, opened on the blocking pool at the first poll.
enum FileStream {
    Start(PathBuf),
    Opening(JoinHandle<io::Result<std::fs::File>>),
    Reading(BodyStream),
    Done,
}

impl Stream for FileStream {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut *self {
                FileStream::Start(path) => {
                    let path = std::mem::take(path);
                    let open = tokio::task::spawn_blocking(move || std::fs::File::open(path));
                    *self = FileStream::Opening(open);
                }
                FileStream::Opening(open) => {
                    let opened = ready!(Pin::new(open).poll(cx));
                    match opened {
                        Ok(Ok(file)) => {
                            let file = tokio::fs::File::from_std(file);
                            *self = FileStream::Reading(stream_of(Body::from_reader(file)));
                        }
                        Ok(Err(e)) => {
                            *self = FileStream::Done;
                            return Poll::Ready(Some(Err(Box::new(e))));
                        }
                        Err(e) => {
                            *self = FileStream::Done;
                            return Poll::Ready(Some(Err(Box::new(io::Error::other(e)))));
                        }
                    }
                }
                FileStream::Reading(stream) => return stream.as_mut().poll_next(cx),
                FileStream::Done => return Poll::Ready(None),
            }
        }
    }
}

/// Fails a stream that yields more or fewer bytes than `expected`, naming
/// `what` (a part or a file), rather than letting the whole body's length
/// come out wrong.
struct Checked<S: ?Sized> {
    inner: Pin<Box<S>>,
    expected: u64,
    seen: u64,
    what: String,
    done: bool,
}

impl<S: ?Sized> Checked<S> {
    fn new(inner: Pin<Box<S>>, expected: u64, what: String) -> Checked<S> {
        Checked {
            inner,
            expected,
            seen: 0,
            what,
            done: false,
        }
    }

    fn fail(&mut self, how: &str) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.done = true;
        let message = format!(
            "multipart {}: {how} than the {} bytes announced",
            self.what, self.expected
        );
        Poll::Ready(Some(Err(Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            message,
        )))))
    }
}

impl<S> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, BoxError>> + ?Sized,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match ready!(self.inner.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected {
                    return self.fail("more bytes");
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            None if self.seen < self.expected => self.fail("fewer bytes"),
            None => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Sends a body the way the client would: every chunk, in order.
    async fn collect(body: Body) -> Result<Vec<u8>, BoxError> {
        let mut stream = match body.into_source() {
            Source::Full(bytes) => return Ok(bytes.to_vec()),
            Source::Stream(stream) => stream,
        };
        let mut out = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// A file in the temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(extension: &str, contents: &[u8]) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "courier-multipart-{}-{}.{extension}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A one-shot stream of the given chunks.
    struct Chunks(VecDeque<Bytes>);

    impl Stream for Chunks {
        type Item = Result<Bytes, io::Error>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    fn chunks(chunks: &[&'static [u8]]) -> Chunks {
        Chunks(chunks.iter().map(|c| Bytes::from_static(c)).collect())
    }

    #[tokio::test]
    async fn text_and_bytes_form_exact_bytes() {
        let form = Form::new()
            .text("title", "héllo")
            .part("raw", Part::bytes(&b"\x00\x01"[..]))
            .part("upload", Part::bytes(&b"abc"[..]).file_name("a.bin"))
            .part(
                "picture",
                Part::bytes(&b"PNG"[..])
                    .file_name("p.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let b = form.boundary().to_owned();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhéllo\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"raw\"\r\n\r\n\x00\x01\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nabc\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"picture\"; filename=\"p.png\"\r\n\
             Content-Type: image/png\r\n\r\nPNG\r\n\
             --{b}--\r\n"
        );
        assert_eq!(
            form.content_type(),
            format!("multipart/form-data; boundary={b}")
        );
        assert_eq!(form.content_length(), Some(expected.len() as u64));
        let body = form.into_body();
        assert_eq!(body.len(), Some(expected.len() as u64));
        assert!(body.is_replayable());
        assert_eq!(collect(body).await.unwrap(), expected.as_bytes());
    }

    #[tokio::test]
    async fn empty_form() {
        let form = Form::new();
        let expected = format!("--{}--\r\n", form.boundary());
        assert_eq!(form.content_length(), Some(expected.len() as u64));
        assert_eq!(
            collect(form.into_body()).await.unwrap(),
            expected.as_bytes()
        );
    }

    #[tokio::test]
    async fn names_and_file_names_are_escaped() {
        let form = Form::new().part("a\"b\r\nc ünï", Part::text("v").file_name("x\"y\n.txt"));
        let b = form.boundary().to_owned();
        let body = collect(form.into_body()).await.unwrap();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"a%22b%0D%0Ac ünï\"; \
             filename=\"x%22y%0A.txt\"\r\nContent-Type: application/octet-stream\r\n\r\nv\r\n--{b}--\r\n"
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[tokio::test]
    async fn extra_headers_and_content_type_override() {
        let mut headers = HeaderMap::new();
        headers.insert("x-note", HeaderValue::from_static("1"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        headers.insert(CONTENT_DISPOSITION, HeaderValue::from_static("ignored"));
        let form = Form::new().part(
            "f",
            Part::text("a,b")
                .mime_str("text/plain")
                .unwrap()
                .headers(headers),
        );
        let b = form.boundary().to_owned();
        let body = collect(form.into_body()).await.unwrap();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Type: text/csv\r\n\
             x-note: 1\r\n\r\na,b\r\n--{b}--\r\n"
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn mime_str_rejects_what_a_header_cannot_hold() {
        assert!(Part::text("").mime_str("text/plain; charset=utf-8").is_ok());
        for bad in [
            "text/plain\r\nX-Evil: 1",
            "text/plain\n",
            "text\rplain",
            "plain",
            "",
            "text/plaïn",
        ] {
            let err = Part::text("").mime_str(bad).unwrap_err();
            assert_eq!(err.mime(), bad);
        }
    }

    #[tokio::test]
    async fn file_part_is_streamed_from_disk() {
        // Larger than one reader chunk, so it comes in several.
        let contents: Vec<u8> = (0..200_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let file = TempFile::new("txt", &contents);
        let form = Form::new()
            .text("k", "v")
            .file("doc", &file.0)
            .await
            .unwrap();
        let b = form.boundary().to_owned();
        let file_name = file.0.file_name().unwrap().to_str().unwrap().to_owned();
        let mut expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )
        .into_bytes();
        expected.extend_from_slice(&contents);
        expected.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());

        let length = form.content_length();
        assert_eq!(length, Some(expected.len() as u64));
        let body = form.into_body();
        assert_eq!(body.len(), length);
        assert!(body.is_replayable());
        assert_eq!(collect(body).await.unwrap(), expected);
    }

    #[tokio::test]
    async fn replayable_form_sends_identical_bytes_each_time() {
        let file = TempFile::new("json", b"{\"a\": 1}");
        let form = Form::new()
            .text("t", "x")
            .part("b", Part::bytes(vec![1u8; 40_000]))
            .file("f", &file.0)
            .await
            .unwrap();
        let body = form.into_body();
        assert!(body.is_replayable());
        let again = body.try_clone().unwrap();
        let third = body.try_clone().unwrap();
        let first = collect(body).await.unwrap();
        assert!(
            first
                .windows(30)
                .any(|w| w == b"Content-Type: application/json")
        );
        assert_eq!(first.len() as u64, again.len().unwrap());
        assert_eq!(collect(again).await.unwrap(), first);
        // The file is reopened on each replay: a change in its size fails
        // the send instead of sending a wrong Content-Length.
        std::fs::write(&file.0, b"{\"a\": 12}").unwrap();
        let err = collect(third).await.unwrap_err();
        assert!(err.to_string().contains("more bytes than the 8"), "{err}");
    }

    #[tokio::test]
    async fn reader_and_stream_parts_make_a_one_shot_body() {
        let form = Form::new()
            .text("a", "1")
            .part("r", Part::reader(&b"from a reader"[..]));
        assert_eq!(form.content_length(), None);
        let b = form.boundary().to_owned();
        let body = form.into_body();
        assert!(!body.is_replayable());
        assert!(body.try_clone().is_none());
        assert_eq!(body.len(), None);
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"r\"\r\n\r\nfrom a reader\r\n--{b}--\r\n"
        );
        assert_eq!(collect(body).await.unwrap(), expected.as_bytes());

        // With a declared length the body keeps its Content-Length.
        let form = Form::new().part(
            "s",
            Part::stream_with_length(chunks(&[b"ab", b"", b"cd"]), 4),
        );
        let length = form.content_length().unwrap();
        let body = form.into_body();
        assert!(!body.is_replayable());
        assert_eq!(body.len(), Some(length));
        assert_eq!(collect(body).await.unwrap().len() as u64, length);
    }

    #[tokio::test]
    async fn a_stream_shorter_than_declared_fails() {
        let form = Form::new().part("s", Part::stream_with_length(chunks(&[b"ab"]), 3));
        let err = collect(form.into_body()).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("part \"s\": fewer bytes than the 3 bytes announced"),
            "{err}"
        );
        let form = Form::new().part("s", Part::stream(chunks(&[b"ab", b"cd"])));
        let body = form.into_body();
        assert_eq!(body.len(), None);
        assert!(
            collect(body)
                .await
                .unwrap()
                .windows(4)
                .any(|w| w == b"abcd")
        );
    }

    #[tokio::test]
    async fn file_errors() {
        let missing =
            std::env::temp_dir().join(format!("courier-multipart-{}-missing", std::process::id()));
        let err = Part::file(&missing).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(Part::file(std::env::temp_dir()).await.is_err());

        // Removed after the part was made: sending fails.
        let file = TempFile::new("bin", b"data");
        let part = Part::file(&file.0).await.unwrap();
        drop(file);
        let err = collect(Form::new().part("f", part).into_body())
            .await
            .unwrap_err();
        let err = err.downcast::<io::Error>().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn mime_is_guessed_from_the_extension() {
        assert_eq!(guess_mime(Path::new("a/b.PNG")), "image/png");
        assert_eq!(guess_mime(Path::new("x.tar.gz")), "application/gzip");
        assert_eq!(guess_mime(Path::new("noext")), "application/octet-stream");
        assert_eq!(guess_mime(Path::new("y.weird")), "application/octet-stream");
    }

    #[test]
    fn boundaries_are_random_and_long() {
        let a = Form::new();
        let b = Form::default();
        assert_ne!(a.boundary(), b.boundary());
        for form in [a, b] {
            assert!(form.boundary().len() >= 32);
            assert!(form.boundary().bytes().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
