//! Request description and head encoding.

use std::fmt;

use http::{HeaderMap, Method, Uri, Version};

use crate::body::Framing;
use crate::chars::{is_field_value_byte, is_token, list_contains, list_items, trim_ows};
use crate::coding::Compression;
use crate::error::Error;
use crate::framing::parse_decimal;

/// The form of the request target (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetForm {
    /// `GET /path?query HTTP/1.1`: to an origin server (the default).
    Origin,
    /// `GET http://host/path?query HTTP/1.1`: to a forward proxy over plain HTTP.
    Absolute,
    /// `CONNECT host:port HTTP/1.1`: the default (and only form) for CONNECT.
    Authority,
    /// `OPTIONS * HTTP/1.1`: the server as a whole.
    Asterisk,
}

/// A header the encoder adds on its own unless the request sets it or skips it.
///
/// The framing headers (`Content-Length`, `Transfer-Encoding`) are not
/// here: they follow from the body and cannot be skipped, because a head
/// without them would let the next bytes on the connection be read as part
/// of this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AutoHeader {
    /// `Host`, from the target URI (port only when not the scheme's default).
    Host,
    /// `User-Agent: courier/<version>` (see [`Request::user_agent`]).
    UserAgent,
    /// `Accept: */*`.
    Accept,
    /// `Accept-Encoding: gzip, deflate` (with the `compression` feature).
    AcceptEncoding,
    /// `Content-Type`, when the body's type is known ([`Request::content_type`]).
    ContentType,
    /// `Connection: close` (HTTP/1.1 without keep-alive) or
    /// `Connection: keep-alive` (HTTP/1.0 with keep-alive).
    Connection,
}

impl AutoHeader {
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("courier/", env!("CARGO_PKG_VERSION"));

/// How the request body is delimited, before compression and user headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    None,
    Length(u64),
    Chunked { max_chunk: usize },
}

/// Headers the caller gave that the encoder must know about.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    host: bool,
    user_agent: bool,
    accept: bool,
    accept_encoding: bool,
    content_type: bool,
    content_encoding: bool,
    connection: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    upgrade: bool,
    expect_continue: bool,
    /// `Some(None)`: a `Content-Length` that is not a number.
    content_length: Option<Option<u64>>,
    /// `Some(true)`: exactly `chunked`.
    transfer_encoding: Option<bool>,
}

/// A request to encode: method, target, version, headers and body framing.
///
/// Setters take and return `self`; an invalid header does not panic but is
/// kept and returned as the error of [`Exchange::new`](crate::Exchange::new)
/// or [`Request::encode_head`].
///
/// ```
/// use courier_proto::{AutoHeader, Request};
/// use http::Method;
/// let request = Request::new(Method::POST, "http://example.com:8080/submit?x=1".parse().unwrap())
///     .header("X-Trace", "abc")
///     .skip_auto_header(AutoHeader::UserAgent)
///     .skip_auto_header(AutoHeader::AcceptEncoding)
///     .content_length(5);
/// let mut head = Vec::new();
/// request.encode_head(&mut head).unwrap();
/// assert_eq!(
///     String::from_utf8(head).unwrap(),
///     "POST /submit?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Trace: abc\r\n\
///      Accept: */*\r\nContent-Length: 5\r\n\r\n"
/// );
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    uri: Uri,
    version: Version,
    form: Option<TargetForm>,
    /// Caller headers, already validated and encoded as `name: value\r\n`.
    lines: Vec<u8>,
    names: Vec<(usize, usize)>,
    seen: Seen,
    skip: u8,
    body: BodyKind,
    compress: Option<Compression>,
    expect_continue: bool,
    keep_alive: bool,
    read_until_eof: bool,
    content_type: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    error: Option<Error>,
}

/// What encoding the head decided, for the exchange that follows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) method: Method,
    pub(crate) framing: Framing,
    pub(crate) compression: Option<Compression>,
    pub(crate) expect_continue: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
    pub(crate) read_until_eof: bool,
}

impl Request {
    /// A request for `method` on `uri`.
    ///
    /// `uri` should be absolute (`http://host/path`) so that `Host` can be
    /// derived; for CONNECT it may be just `host:port`.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            version: Version::HTTP_11,
            form: None,
            lines: Vec::new(),
            names: Vec::new(),
            seen: Seen::default(),
            skip: 0,
            body: BodyKind::None,
            compress: None,
            expect_continue: false,
            keep_alive: true,
            read_until_eof: true,
            content_type: None,
            user_agent: None,
            error: None,
        }
    }

    /// A `CONNECT host:port` request, as sent to a proxy to open a tunnel.
    ///
    /// ```
    /// use courier_proto::Request;
    /// let mut head = Vec::new();
    /// Request::connect("example.com", 443).encode_head(&mut head).unwrap();
    /// assert!(head.starts_with(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"));
    /// ```
    pub fn connect(host: &str, port: u16) -> Request {
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = match authority.parse::<Uri>() {
            Ok(uri) => Request::new(Method::CONNECT, uri),
            Err(_) => {
                let mut r = Request::new(Method::CONNECT, Uri::default());
                r.error = Some(Error::InvalidTarget("invalid connect authority"));
                r
            }
        };
        request.form = Some(TargetForm::Authority);
        request
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The target URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The HTTP version.
    pub fn http_version(&self) -> Version {
        self.version
    }

    /// Sets the HTTP version: `HTTP/1.1` or `HTTP/1.0` (aiohttp `version`).
    /// Defaults to HTTP/1.1.
    pub fn version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// Sets the form of the request target. Defaults to origin-form
    /// (authority-form for CONNECT); use [`TargetForm::Absolute`] when the
    /// connection goes to a plain-HTTP forward proxy.
    pub fn target_form(mut self, form: TargetForm) -> Self {
        self.set_target_form(form);
        self
    }

    pub(crate) fn set_target_form(&mut self, form: TargetForm) {
        self.form = Some(form);
    }

    /// Adds a header, written in the order given, with the name's case kept.
    ///
    /// A name that is not a token, or a value with a control character (CR,
    /// LF, NUL...), makes the request invalid: encoding it fails with
    /// [`Error::InvalidRequestHeaderName`] / [`Error::InvalidRequestHeaderValue`].
    /// Giving a header the encoder would add itself (`Host`, `User-Agent`,
    /// `Connection`...) replaces the automatic one.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.add_header(name.as_ref(), value.as_ref());
        self
    }

    /// Adds every header of `map` (in the map's iteration order).
    pub fn headers(mut self, map: &HeaderMap) -> Self {
        for (name, value) in map {
            self.add_header(name.as_str().as_bytes(), value.as_bytes());
        }
        self
    }

    pub(crate) fn add_header(&mut self, name: &[u8], value: &[u8]) {
        if !is_token(name) {
            self.error.get_or_insert(Error::InvalidRequestHeaderName);
            return;
        }
        if !value.iter().all(|&b| is_field_value_byte(b)) {
            self.error.get_or_insert(Error::InvalidRequestHeaderValue);
            return;
        }
        let value = trim_ows(value);
        self.note(name, value);
        let start = self.lines.len();
        self.lines.reserve(name.len() + value.len() + 4);
        self.lines.extend_from_slice(name);
        self.names.push((start, self.lines.len()));
        self.lines.extend_from_slice(b": ");
        self.lines.extend_from_slice(value);
        self.lines.extend_from_slice(b"\r\n");
    }

    /// Records what a caller header means for the automatic ones.
    fn note(&mut self, name: &[u8], value: &[u8]) {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let seen = &mut self.seen;
        if is("host") {
            seen.host = true;
        } else if is("user-agent") {
            seen.user_agent = true;
        } else if is("accept") {
            seen.accept = true;
        } else if is("accept-encoding") {
            seen.accept_encoding = true;
        } else if is("content-type") {
            seen.content_type = true;
        } else if is("content-encoding") {
            seen.content_encoding = true;
        } else if is("connection") {
            seen.connection = true;
            seen.connection_close |= list_contains(value, "close");
            seen.connection_keep_alive |= list_contains(value, "keep-alive");
        } else if is("upgrade") {
            seen.upgrade = true;
        } else if is("expect") {
            seen.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if is("content-length") {
            let n = parse_decimal(value);
            seen.content_length = match seen.content_length {
                Some(prev) if prev != n => Some(None),
                _ => Some(n),
            };
        } else if is("transfer-encoding") {
            let mut items = list_items(value);
            let chunked_only = items
                .next()
                .is_some_and(|i| i.eq_ignore_ascii_case(b"chunked"))
                && items.next().is_none();
            seen.transfer_encoding = Some(chunked_only && seen.transfer_encoding.is_none());
        }
    }

    /// Leaves out one automatic header (aiohttp `skip_auto_headers`).
    pub fn skip_auto_header(mut self, header: AutoHeader) -> Self {
        self.skip |= header.bit();
        self
    }

    /// Sets the automatic `User-Agent` value. Defaults to [`DEFAULT_USER_AGENT`].
    pub fn user_agent(mut self, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        if value.iter().all(|&b| is_field_value_byte(b)) {
            self.user_agent = Some(value.to_vec());
        } else {
            self.error.get_or_insert(Error::InvalidRequestHeaderValue);
        }
        self
    }

    /// Sets the automatic `Content-Type` (sent unless a `Content-Type`
    /// header is given or [`AutoHeader::ContentType`] is skipped).
    /// Defaults to none.
    pub fn content_type(mut self, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        if value.iter().all(|&b| is_field_value_byte(b)) {
            self.content_type = Some(value.to_vec());
        } else {
            self.error.get_or_insert(Error::InvalidRequestHeaderValue);
        }
        self
    }

    /// Declares a body of exactly `length` bytes (`Content-Length`).
    /// Defaults to no body.
    pub fn content_length(mut self, length: u64) -> Self {
        self.body = BodyKind::Length(length);
        self
    }

    /// Declares a body of unknown length, sent chunked, one chunk per write.
    /// Defaults to no body.
    pub fn chunked(mut self) -> Self {
        self.body = BodyKind::Chunked {
            max_chunk: usize::MAX,
        };
        self
    }

    /// Declares a chunked body whose chunks hold at most `size` bytes
    /// (aiohttp `chunked=size`). A size of 0 makes the request invalid.
    pub fn chunk_size(mut self, size: usize) -> Self {
        if size == 0 {
            self.error
                .get_or_insert(Error::ConflictingFraming("chunk size must be at least 1"));
        }
        self.body = BodyKind::Chunked { max_chunk: size };
        self
    }

    /// Compresses the body with `coding` and sets `Content-Encoding`
    /// (aiohttp `compress`). The compressed length is not known in advance,
    /// so the body is sent chunked. Defaults to no compression.
    pub fn compress(mut self, coding: Compression) -> Self {
        self.compress = Some(coding);
        self
    }

    /// Sends `Expect: 100-continue` and holds the body back until the server
    /// answers `100 Continue` (or the caller stops waiting). Defaults to false.
    pub fn expect_continue(mut self, expect: bool) -> Self {
        self.expect_continue = expect;
        self
    }

    /// Whether to ask for the connection to be kept open after the response.
    /// Defaults to true.
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Whether a response without `Content-Length` or chunked framing may be
    /// read until the connection closes (aiohttp `read_until_eof`). When
    /// false such a response is [`Error::UndelimitedBody`]. Defaults to true.
    pub fn read_until_eof(mut self, read_until_eof: bool) -> Self {
        self.read_until_eof = read_until_eof;
        self
    }

    /// True when a header with this name (ASCII case-insensitive) was added.
    pub fn has_header(&self, name: &str) -> bool {
        self.names
            .iter()
            .any(|&(s, e)| self.lines[s..e].eq_ignore_ascii_case(name.as_bytes()))
    }

    fn skips(&self, header: AutoHeader) -> bool {
        self.skip & header.bit() != 0
    }

    /// Appends the request head (request line, headers, empty line) to `out`.
    ///
    /// # Errors
    ///
    /// A local error: an invalid header or target, an unsupported version,
    /// or framing that cannot be expressed (see [`Error::ConflictingFraming`]).
    /// Nothing is appended on error.
    pub fn encode_head(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.encode(out).map(|_| ())
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<Plan, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let version: &[u8] = match self.version {
            Version::HTTP_11 => b"HTTP/1.1",
            Version::HTTP_10 => b"HTTP/1.0",
            _ => return Err(Error::UnsupportedVersion),
        };
        let framing = self.framing()?;
        let connect = self.method == Method::CONNECT;
        let form = self.form.unwrap_or(if connect {
            TargetForm::Authority
        } else {
            TargetForm::Origin
        });
        let seen = &self.seen;
        let keep_alive = if seen.connection {
            !seen.connection_close
                && (self.version == Version::HTTP_11 || seen.connection_keep_alive)
        } else {
            self.keep_alive
        };
        let compression = match framing {
            Framing::None => None,
            _ => self.compress,
        };
        if compression.is_some() && seen.content_encoding {
            return Err(Error::ConflictingFraming(
                "compress set together with a content-encoding header",
            ));
        }

        let start = out.len();
        let result = self.write_head(out, form, version, framing, compression);
        if result.is_err() {
            out.truncate(start);
        }
        result?;
        Ok(Plan {
            method: self.method.clone(),
            framing,
            compression,
            expect_continue: self.expect_continue || seen.expect_continue,
            keep_alive,
            upgrade: seen.upgrade || connect,
            read_until_eof: self.read_until_eof,
        })
    }

    fn write_head(
        &self,
        out: &mut Vec<u8>,
        form: TargetForm,
        version: &[u8],
        framing: Framing,
        compression: Option<Compression>,
    ) -> Result<(), Error> {
        let seen = &self.seen;
        out.reserve(self.lines.len() + 256);
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        self.write_target(out, form)?;
        out.push(b' ');
        out.extend_from_slice(version);
        out.extend_from_slice(b"\r\n");

        if !seen.host && !self.skips(AutoHeader::Host) {
            out.extend_from_slice(b"Host: ");
            self.write_host(out, form == TargetForm::Authority)?;
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.lines);
        let mut auto = |header: AutoHeader, seen: bool, name: &str, value: &[u8]| {
            if !seen && !self.skips(header) {
                line(out, name, value);
            }
        };
        let ua = self
            .user_agent
            .as_deref()
            .unwrap_or(DEFAULT_USER_AGENT.as_bytes());
        auto(AutoHeader::UserAgent, seen.user_agent, "User-Agent", ua);
        auto(AutoHeader::Accept, seen.accept, "Accept", b"*/*");
        #[cfg(feature = "compression")]
        auto(
            AutoHeader::AcceptEncoding,
            seen.accept_encoding,
            "Accept-Encoding",
            crate::coding::ACCEPT_ENCODING.as_bytes(),
        );
        if let Some(content_type) = &self.content_type {
            auto(
                AutoHeader::ContentType,
                seen.content_type,
                "Content-Type",
                content_type,
            );
        }
        if !seen.connection && !self.skips(AutoHeader::Connection) {
            match (self.version, self.keep_alive) {
                (Version::HTTP_11, false) => line(out, "Connection", b"close"),
                (Version::HTTP_10, true) => line(out, "Connection", b"keep-alive"),
                _ => {}
            }
        }
        if let Some(coding) = compression {
            line(out, "Content-Encoding", coding.as_str().as_bytes());
        }
        if self.expect_continue && !seen.expect_continue {
            line(out, "Expect", b"100-continue");
        }
        match framing {
            Framing::None => {
                let wants_length =
                    matches!(self.method, Method::POST | Method::PUT | Method::PATCH);
                if wants_length && seen.content_length.is_none() {
                    line(out, "Content-Length", b"0");
                }
            }
            Framing::Length(n) => {
                if seen.content_length.is_none() {
                    let digits = itoa_buf(n);
                    line(out, "Content-Length", digits.as_bytes());
                }
            }
            Framing::Chunked { .. } => {
                if seen.transfer_encoding.is_none() {
                    line(out, "Transfer-Encoding", b"chunked");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Body framing from the declared body, compression and user headers.
    fn framing(&self) -> Result<Framing, Error> {
        let seen = &self.seen;
        let mut framing = match self.body {
            BodyKind::None => Framing::None,
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked { max_chunk } => Framing::Chunked { max_chunk },
        };
        if self.compress.is_some() {
            framing = match framing {
                Framing::None => Framing::None,
                Framing::Length(_) => Framing::Chunked {
                    max_chunk: usize::MAX,
                },
                chunked => chunked,
            };
        }
        match seen.transfer_encoding {
            Some(false) => {
                return Err(Error::ConflictingFraming(
                    "only transfer-encoding: chunked can be sent",
                ));
            }
            Some(true) if !matches!(framing, Framing::Chunked { .. }) => {
                framing = Framing::Chunked {
                    max_chunk: usize::MAX,
                };
            }
            Some(true) | None => {}
        }
        match (seen.content_length, framing) {
            (None, _) => {}
            (Some(None), _) => {
                return Err(Error::ConflictingFraming("invalid content-length header"));
            }
            (Some(Some(_)), Framing::Chunked { .. }) => {
                return Err(Error::ConflictingFraming(
                    "content-length header with a chunked or compressed body",
                ));
            }
            (Some(Some(n)), Framing::Length(len)) if n != len => {
                return Err(Error::ConflictingFraming(
                    "content-length header differs from the body length",
                ));
            }
            (Some(Some(n)), Framing::None) if n != 0 => {
                return Err(Error::ConflictingFraming(
                    "content-length header on a request without a body",
                ));
            }
            _ => {}
        }
        if self.version == Version::HTTP_10 && matches!(framing, Framing::Chunked { .. }) {
            return Err(Error::ConflictingFraming("chunked body needs http/1.1"));
        }
        Ok(framing)
    }

    fn write_target(&self, out: &mut Vec<u8>, form: TargetForm) -> Result<(), Error> {
        match form {
            TargetForm::Origin => {
                let target = match self.uri.path_and_query() {
                    Some(pq) if !pq.as_str().is_empty() => pq.as_str(),
                    _ => "/",
                };
                // RFC 9112 §3.2.1: an empty path is sent as "/" (`http://h?q` → `/?q`).
                if target.starts_with('?') {
                    out.push(b'/');
                } else if !target.starts_with('/') {
                    return Err(Error::InvalidTarget(
                        "origin-form target must start with '/'",
                    ));
                }
                out.extend_from_slice(target.as_bytes());
            }
            TargetForm::Absolute => {
                let scheme = self
                    .uri
                    .scheme_str()
                    .ok_or(Error::InvalidTarget("absolute-form needs a scheme"))?;
                out.extend_from_slice(scheme.as_bytes());
                out.extend_from_slice(b"://");
                // Never the userinfo (RFC 9112 §3.2.2): credentials travel in headers.
                self.write_host(out, false)?;
                // An empty path is sent as "/" (RFC 9110 §4.2.3), also before a query.
                let pq = self.uri.path_and_query().map_or("", |pq| pq.as_str());
                if !pq.starts_with('/') {
                    out.push(b'/');
                }
                out.extend_from_slice(pq.as_bytes());
            }
            TargetForm::Authority => self.write_host(out, true)?,
            TargetForm::Asterisk => out.push(b'*'),
        }
        Ok(())
    }

    /// `host[:port]`: the port only when it differs from the scheme's
    /// default, unless `always_port` (authority-form).
    fn write_host(&self, out: &mut Vec<u8>, always_port: bool) -> Result<(), Error> {
        let host = self
            .uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(Error::InvalidTarget("no host in the target uri"))?;
        let default_port = match self.uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => Some(80),
            Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => {
                Some(443)
            }
            _ => None,
        };
        let bracket = host.contains(':') && !host.starts_with('[');
        if bracket {
            out.push(b'[');
        }
        out.extend_from_slice(host.as_bytes());
        if bracket {
            out.push(b']');
        }
        let port = self
            .uri
            .port_u16()
            .or(if always_port { default_port } else { None });
        match port {
            Some(port) if always_port || Some(port) != default_port => {
                out.push(b':');
                out.extend_from_slice(itoa_buf(u64::from(port)).as_bytes());
            }
            None if always_port => {
                return Err(Error::InvalidTarget("authority-form needs a port"));
            }
            _ => {}
        }
        Ok(())
    }
}

fn line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Decimal digits of `n` without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

impl fmt::Debug for Request {
    /// Shows header names only: values may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self
            .names
            .iter()
            .map(|&(s, e)| String::from_utf8_lossy(&self.lines[s..e]))
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &RedactedUri(&self.uri))
            .field("version", &self.version)
            .field("headers", &names)
            .field("body", &self.body)
            .field("compress", &self.compress)
            .finish_non_exhaustive()
    }
}

/// Prints a URI without its userinfo.
struct RedactedUri<'a>(&'a Uri);

impl fmt::Debug for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        if let Some(scheme) = uri.scheme_str() {
            write!(f, "{scheme}://")?;
        }
        if let Some(host) = uri.host() {
            f.write_str(host)?;
        }
        if let Some(port) = uri.port_u16() {
            write!(f, ":{port}")?;
        }
        if let Some(pq) = uri.path_and_query() {
            f.write_str(pq.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Accept-Encoding` is an automatic header only with the `compression` feature.
    #[cfg(feature = "compression")]
    const AE: &str = "Accept-Encoding: gzip, deflate\r\n";
    #[cfg(not(feature = "compression"))]
    const AE: &str = "";

    fn ua() -> String {
        format!("User-Agent: {DEFAULT_USER_AGENT}\r\n")
    }

    fn req(method: Method, uri: &str) -> Request {
        Request::new(method, uri.parse().expect("test uri"))
    }

    fn get(uri: &str) -> Request {
        req(Method::GET, uri)
    }

    /// Encodes after some existing bytes, checking they are kept, and
    /// returns the head as text.
    fn encode(request: &Request) -> Result<String, Error> {
        let mut out = b"PREVIOUS".to_vec();
        let result = request.encode_head(&mut out);
        assert!(out.starts_with(b"PREVIOUS"), "existing output must be kept");
        match result {
            Ok(()) => Ok(String::from_utf8(out.split_off(8)).expect("head is ascii here")),
            Err(e) => {
                assert_eq!(out, b"PREVIOUS", "nothing may be appended on error ({e:?})");
                Err(e)
            }
        }
    }

    fn ok(request: &Request) -> String {
        encode(request).expect("request encodes")
    }

    fn plan(request: &Request) -> Plan {
        request.encode(&mut Vec::new()).expect("request encodes")
    }

    /// The head lines after the request line, without the final empty line.
    fn tail(head: &str) -> Vec<&str> {
        let body = head
            .strip_suffix("\r\n\r\n")
            .expect("head ends with an empty line");
        body.split("\r\n").skip(1).collect()
    }

    #[test]
    fn origin_form_get_with_default_auto_headers() {
        let head = ok(&get("http://example.com/path/to?q=1&r=%20"));
        assert_eq!(
            head,
            format!(
                "GET /path/to?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\n{}Accept: */*\r\n{AE}\r\n",
                ua()
            )
        );
        let p = plan(&get("http://example.com/"));
        assert_eq!(p.framing, Framing::None);
        assert!(p.keep_alive && !p.expect_continue && !p.upgrade && p.read_until_eof);
        assert_eq!(p.compression, None);
    }

    #[test]
    fn origin_form_empty_path_is_a_slash() {
        // RFC 9112 §3.2.1: an empty path is sent as "/".
        assert!(ok(&get("http://example.com")).starts_with("GET / HTTP/1.1\r\n"));
        assert!(ok(&get("http://example.com?x=1")).starts_with("GET /?x=1 HTTP/1.1\r\n"));
        // A fragment is never sent.
        assert!(ok(&get("http://example.com/a#frag")).starts_with("GET /a HTTP/1.1\r\n"));
    }

    #[test]
    fn absolute_form_writes_an_empty_path_as_slash() {
        for (uri, target) in [
            ("http://example.com?x=1", "http://example.com/?x=1"),
            ("http://example.com", "http://example.com/"),
        ] {
            let head = ok(&get(uri).target_form(TargetForm::Absolute));
            assert!(
                head.starts_with(&format!("GET {target} HTTP/1.1\r\n")),
                "{head}"
            );
        }
    }

    #[test]
    fn absolute_form_never_carries_userinfo() {
        let r = get("http://user:pass@example.com:8080/p?q=1").target_form(TargetForm::Absolute);
        let head = ok(&r);
        assert_eq!(
            head,
            format!(
                "GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n{}\
                 Accept: */*\r\n{AE}\r\n",
                ua()
            )
        );
        assert!(!head.contains("user") && !head.contains("pass") && !head.contains('@'));

        let default_port = get("http://example.com:80/").target_form(TargetForm::Absolute);
        assert!(
            ok(&default_port)
                .starts_with("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n")
        );
        let https = get("https://example.com").target_form(TargetForm::Absolute);
        assert!(ok(&https).starts_with("GET https://example.com/ HTTP/1.1\r\n"));
        let v6 = get("http://[::1]:8080/x").target_form(TargetForm::Absolute);
        assert!(ok(&v6).starts_with("GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n"));

        let no_scheme = get("/relative").target_form(TargetForm::Absolute);
        assert!(matches!(encode(&no_scheme), Err(Error::InvalidTarget(_))));
    }

    #[test]
    fn authority_form_connect() {
        let head = ok(&Request::connect("example.com", 443));
        assert_eq!(
            head,
            format!(
                "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n{}Accept: */*\r\n{AE}\r\n",
                ua()
            )
        );
        // The port is always written in authority-form, even the default one.
        assert!(
            ok(&Request::connect("example.com", 80))
                .starts_with("CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n")
        );
        for host in ["::1", "[::1]"] {
            assert!(
                ok(&Request::connect(host, 8443))
                    .starts_with("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n"),
                "{host}"
            );
        }
        assert!(
            ok(&Request::connect("2001:db8::1", 443))
                .starts_with("CONNECT [2001:db8::1]:443 HTTP/1.1\r\n")
        );
        let p = plan(&Request::connect("example.com", 443));
        assert!(p.upgrade, "a CONNECT hands the connection over");
        assert_eq!(p.method, Method::CONNECT);
        assert_eq!(p.framing, Framing::None);

        for bad in ["exa mple.com", "", "a/b", "a\r\nb"] {
            assert!(
                matches!(
                    encode(&Request::connect(bad, 443)),
                    Err(Error::InvalidTarget(_))
                ),
                "{bad:?}"
            );
        }

        // CONNECT given a plain authority URI also defaults to authority-form.
        let r = req(Method::CONNECT, "example.com:8443");
        assert!(
            ok(&r).starts_with("CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n")
        );
        // Authority-form needs a port it can name.
        let r = req(Method::CONNECT, "/path").target_form(TargetForm::Authority);
        assert!(matches!(encode(&r), Err(Error::InvalidTarget(_))));
    }

    #[test]
    fn asterisk_form() {
        let r = req(Method::OPTIONS, "http://example.com:8080/ignored")
            .target_form(TargetForm::Asterisk);
        assert_eq!(
            ok(&r),
            format!(
                "OPTIONS * HTTP/1.1\r\nHost: example.com:8080\r\n{}Accept: */*\r\n{AE}\r\n",
                ua()
            )
        );
    }

    #[test]
    fn host_port_only_when_not_the_default() {
        let cases = [
            ("http://example.com/", "example.com"),
            ("http://example.com:80/", "example.com"),
            ("https://example.com/", "example.com"),
            ("https://example.com:443/", "example.com"),
            ("http://example.com:443/", "example.com:443"),
            ("https://example.com:80/", "example.com:80"),
            ("http://example.com:8080/", "example.com:8080"),
            ("ws://example.com:80/", "example.com"),
            ("wss://example.com:443/", "example.com"),
            ("http://[::1]:8080/", "[::1]:8080"),
            ("http://[::1]/", "[::1]"),
            ("https://[2001:db8::1]:443/", "[2001:db8::1]"),
            ("http://127.0.0.1:3000/", "127.0.0.1:3000"),
            ("http://user:pass@example.com:81/", "example.com:81"),
        ];
        for (uri, host) in cases {
            let head = ok(&get(uri));
            assert_eq!(tail(&head)[0], format!("Host: {host}"), "{uri}");
        }
    }

    #[test]
    fn no_host_is_an_error_unless_host_is_given_or_skipped() {
        assert!(matches!(
            encode(&get("/only/a/path")),
            Err(Error::InvalidTarget(_))
        ));
        let skipped = get("/only/a/path").skip_auto_header(AutoHeader::Host);
        assert!(ok(&skipped).starts_with(&format!("GET /only/a/path HTTP/1.1\r\n{}", ua())));
        let given = get("/p").header("Host", "h.example");
        assert!(ok(&given).starts_with("GET /p HTTP/1.1\r\nHost: h.example\r\n"));
    }

    #[test]
    fn versions_and_connection_header() {
        let v10 = get("http://example.com/").version(Version::HTTP_10);
        assert_eq!(
            ok(&v10),
            format!(
                "GET / HTTP/1.0\r\nHost: example.com\r\n{}Accept: */*\r\n{AE}\
                 Connection: keep-alive\r\n\r\n",
                ua()
            )
        );
        assert!(plan(&v10).keep_alive);

        let v10_close = get("http://example.com/")
            .version(Version::HTTP_10)
            .keep_alive(false);
        assert!(!ok(&v10_close).contains("Connection"));
        assert!(!plan(&v10_close).keep_alive);

        let v11_close = get("http://example.com/").keep_alive(false);
        assert_eq!(
            ok(&v11_close),
            format!(
                "GET / HTTP/1.1\r\nHost: example.com\r\n{}Accept: */*\r\n{AE}Connection: close\r\n\r\n",
                ua()
            )
        );
        assert!(!plan(&v11_close).keep_alive);
        assert!(!ok(&get("http://example.com/")).contains("Connection"));

        for v in [Version::HTTP_09, Version::HTTP_2, Version::HTTP_3] {
            assert_eq!(
                encode(&get("http://example.com/").version(v)),
                Err(Error::UnsupportedVersion)
            );
        }
    }

    #[test]
    fn user_connection_header_decides_keep_alive() {
        let close = get("http://example.com/").header("Connection", "Upgrade, close");
        let head = ok(&close);
        assert_eq!(head.matches("Connection").count(), 1);
        assert!(!plan(&close).keep_alive);
        // A user header replaces the automatic one, even when keep_alive(false).
        let r = get("http://example.com/")
            .keep_alive(false)
            .header("connection", "keep-alive");
        assert!(ok(&r).contains("connection: keep-alive\r\n") && !ok(&r).contains("close"));
        assert!(plan(&r).keep_alive);
        let r = get("http://example.com/")
            .version(Version::HTTP_10)
            .header("Connection", "x");
        assert!(
            !plan(&r).keep_alive,
            "HTTP/1.0 persists only with keep-alive"
        );
        let r = get("http://example.com/")
            .version(Version::HTTP_10)
            .header("Connection", "Keep-Alive");
        assert!(plan(&r).keep_alive);
    }

    /// A request that triggers every automatic header, and the lines it gets.
    fn all_auto() -> (Request, Vec<(AutoHeader, String)>) {
        let r = req(Method::POST, "http://example.com:81/")
            .content_type("text/plain")
            .keep_alive(false)
            .content_length(2);
        let mut lines = vec![
            (AutoHeader::Host, "Host: example.com:81".to_string()),
            (
                AutoHeader::UserAgent,
                format!("User-Agent: {DEFAULT_USER_AGENT}"),
            ),
            (AutoHeader::Accept, "Accept: */*".to_string()),
        ];
        if cfg!(feature = "compression") {
            lines.push((
                AutoHeader::AcceptEncoding,
                "Accept-Encoding: gzip, deflate".into(),
            ));
        }
        lines.push((AutoHeader::ContentType, "Content-Type: text/plain".into()));
        lines.push((AutoHeader::Connection, "Connection: close".into()));
        (r, lines)
    }

    #[test]
    fn every_auto_header_can_be_skipped_alone() {
        let (base, lines) = all_auto();
        let mut expected: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        expected.push("Content-Length: 2");
        assert_eq!(tail(&ok(&base)), expected);
        let every = [
            AutoHeader::Host,
            AutoHeader::UserAgent,
            AutoHeader::Accept,
            AutoHeader::AcceptEncoding,
            AutoHeader::ContentType,
            AutoHeader::Connection,
        ];
        for skip in every {
            let head = ok(&base.clone().skip_auto_header(skip));
            let mut expected: Vec<&str> = lines
                .iter()
                .filter(|(h, _)| *h != skip)
                .map(|(_, l)| l.as_str())
                .collect();
            expected.push("Content-Length: 2");
            assert_eq!(tail(&head), expected, "skipping {skip:?}");
            assert!(head.starts_with("POST / HTTP/1.1\r\n"));
        }
        let mut all = base;
        for skip in every {
            all = all.skip_auto_header(skip);
        }
        assert_eq!(ok(&all), "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
    }

    #[test]
    fn framing_headers_cannot_be_skipped() {
        let skip_all = |mut r: Request| {
            for h in [
                AutoHeader::Host,
                AutoHeader::UserAgent,
                AutoHeader::Accept,
                AutoHeader::AcceptEncoding,
                AutoHeader::ContentType,
                AutoHeader::Connection,
            ] {
                r = r.skip_auto_header(h);
            }
            r
        };
        let post = || req(Method::POST, "http://example.com/");
        assert_eq!(
            ok(&skip_all(post().content_length(3))),
            "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
        );
        assert_eq!(
            ok(&skip_all(post().chunked())),
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            ok(&skip_all(post())),
            "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn user_headers_replace_auto_ones_in_order_and_case() {
        let r = get("http://example.com/")
            .header("aCCept", "text/html")
            .header("X-B", "2")
            .header("HOST", "other.example:9")
            .header("user-agent", "mine/1.0")
            .header("X-A", "1");
        assert_eq!(
            ok(&r),
            format!(
                "GET / HTTP/1.1\r\naCCept: text/html\r\nX-B: 2\r\nHOST: other.example:9\r\n\
                 user-agent: mine/1.0\r\nX-A: 1\r\n{AE}\r\n"
            )
        );
        let r = get("http://example.com/")
            .header("accept-encoding", "br")
            .header("Content-Type", "a/b")
            .content_type("c/d");
        assert_eq!(
            tail(&ok(&r)),
            [
                "Host: example.com",
                "accept-encoding: br",
                "Content-Type: a/b",
                &format!("User-Agent: {DEFAULT_USER_AGENT}"),
                "Accept: */*",
            ]
        );
        // Repeated headers are all kept, in order.
        let r = get("http://example.com/")
            .header("X-Dup", "1")
            .header("x-dup", "2");
        assert_eq!(&tail(&ok(&r))[1..3], ["X-Dup: 1", "x-dup: 2"]);
    }

    #[test]
    fn header_values_are_trimmed_and_may_hold_tabs_and_obs_text() {
        let r = get("http://example.com/")
            .skip_auto_header(AutoHeader::UserAgent)
            .skip_auto_header(AutoHeader::Accept)
            .skip_auto_header(AutoHeader::AcceptEncoding)
            .header("X-Trim", " \t v a l \t ")
            .header("X-Empty", "")
            .header(b"X-Bytes", b"a\tb\x80\xff");
        let mut expected = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Trim: v a l\r\n\
                             X-Empty: \r\nX-Bytes: a\tb\x80\xff\r\n\r\n"
            .to_vec();
        let mut out = Vec::new();
        r.encode_head(&mut out).unwrap();
        assert_eq!(out, expected);
        // The same through a HeaderMap (names come out lowercase).
        let mut map = HeaderMap::new();
        map.append("x-trim", "v a l".parse().unwrap());
        map.append("x-trim", "again".parse().unwrap());
        let r = get("http://example.com/").headers(&map);
        let head = ok(&r);
        assert_eq!(&tail(&head)[1..3], ["x-trim: v a l", "x-trim: again"]);
        assert!(r.has_header("X-TRIM") && !r.has_header("x-tri"));
        expected.clear();
    }

    #[test]
    fn body_less_post_put_patch_send_content_length_zero() {
        for m in [Method::POST, Method::PUT, Method::PATCH] {
            let head = ok(&req(m.clone(), "http://example.com/"));
            assert!(head.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{m}");
            assert_eq!(
                plan(&req(m.clone(), "http://example.com/")).framing,
                Framing::None
            );
        }
        let others = [
            Method::GET,
            Method::HEAD,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
        ];
        for m in others {
            let head = ok(&req(m.clone(), "http://example.com/"));
            assert!(
                !head.contains("Content-Length") && !head.contains("Transfer-Encoding"),
                "{m}"
            );
        }
        // An explicit length is sent whatever the method.
        let r = get("http://example.com/").content_length(0);
        assert!(ok(&r).ends_with("\r\nContent-Length: 0\r\n\r\n"));
        assert_eq!(plan(&r).framing, Framing::Length(0));
        let r = req(Method::DELETE, "http://example.com/").content_length(u64::MAX);
        assert!(ok(&r).ends_with("\r\nContent-Length: 18446744073709551615\r\n\r\n"));
        let ext = Method::from_bytes(b"PURGE").unwrap();
        assert!(ok(&req(ext, "http://example.com/x")).starts_with("PURGE /x HTTP/1.1\r\n"));
    }

    #[test]
    fn content_type_auto_header() {
        let r = req(Method::POST, "http://example.com/")
            .content_type("application/json; charset=utf-8")
            .content_length(2);
        assert_eq!(
            ok(&r),
            format!(
                "POST / HTTP/1.1\r\nHost: example.com\r\n{}Accept: */*\r\n{AE}\
                 Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n\r\n",
                ua()
            )
        );
        assert!(!ok(&req(Method::POST, "http://example.com/")).contains("Content-Type"));
    }

    #[test]
    fn expect_continue_header() {
        let r = req(Method::PUT, "http://example.com/")
            .expect_continue(true)
            .content_length(3);
        assert!(ok(&r).ends_with("\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
        assert!(plan(&r).expect_continue);
        let r = req(Method::PUT, "http://example.com/")
            .header("Expect", "100-Continue")
            .expect_continue(true)
            .content_length(3);
        assert_eq!(ok(&r).matches("xpect").count(), 1);
        assert!(
            plan(&r).expect_continue,
            "a user header asks for 100-continue too"
        );
    }

    #[test]
    fn compress_sets_content_encoding_and_forces_chunked() {
        let r = req(Method::POST, "http://example.com/")
            .content_length(100)
            .compress(Compression::Gzip);
        assert!(
            ok(&r).ends_with("\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        );
        assert!(!ok(&r).contains("Content-Length"));
        let p = plan(&r);
        assert_eq!(
            p.framing,
            Framing::Chunked {
                max_chunk: usize::MAX
            }
        );
        assert_eq!(p.compression, Some(Compression::Gzip));

        let r = req(Method::POST, "http://example.com/")
            .chunk_size(10)
            .compress(Compression::Deflate);
        assert!(
            ok(&r).ends_with("\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n")
        );
        assert_eq!(plan(&r).framing, Framing::Chunked { max_chunk: 10 });

        // Nothing to compress without a body.
        let r = req(Method::POST, "http://example.com/").compress(Compression::Gzip);
        assert!(!ok(&r).contains("Content-Encoding"));
        assert_eq!(plan(&r).compression, None);
    }

    #[test]
    fn user_transfer_encoding_chunked_switches_framing() {
        for value in ["chunked", "Chunked", " CHUNKED "] {
            let r = req(Method::POST, "http://example.com/").header("Transfer-Encoding", value);
            let head = ok(&r);
            assert_eq!(head.matches("ransfer-").count(), 1, "{value:?}");
            assert!(!head.contains("Content-Length"));
            assert_eq!(
                plan(&r).framing,
                Framing::Chunked {
                    max_chunk: usize::MAX
                }
            );
        }
        let r = req(Method::POST, "http://example.com/")
            .content_length(5)
            .header("transfer-encoding", "chunked");
        assert!(!ok(&r).contains("Content-Length"));
        assert_eq!(
            plan(&r).framing,
            Framing::Chunked {
                max_chunk: usize::MAX
            }
        );
        let r = req(Method::POST, "http://example.com/")
            .chunk_size(7)
            .header("Transfer-Encoding", "chunked");
        assert_eq!(plan(&r).framing, Framing::Chunked { max_chunk: 7 });
        assert_eq!(ok(&r).matches("ransfer-").count(), 1);
    }

    #[test]
    fn user_content_length_matching_the_body_is_sent_once() {
        let r = req(Method::POST, "http://example.com/")
            .header("Content-Length", "5")
            .content_length(5);
        let head = ok(&r);
        assert_eq!(head.matches("Content-Length").count(), 1);
        assert_eq!(tail(&head)[1], "Content-Length: 5");
        let r = get("http://example.com/").header("content-length", "0");
        assert_eq!(ok(&r).matches("ontent-").count(), 1);
        let r = req(Method::POST, "http://example.com/").header("content-length", "0");
        assert_eq!(
            ok(&r).matches("ontent-").count(),
            1,
            "no second Content-Length: 0"
        );
    }

    #[test]
    fn framing_conflicts_are_errors() {
        let post = || req(Method::POST, "http://example.com/");
        let conflicts = [
            (
                "length differs",
                post().content_length(5).header("Content-Length", "4"),
            ),
            (
                "length twice, differing",
                post()
                    .header("Content-Length", "1")
                    .header("Content-Length", "2"),
            ),
            (
                "length not a number",
                post().header("Content-Length", "abc"),
            ),
            ("length negative", post().header("Content-Length", "-1")),
            (
                "length without a body",
                get("http://example.com/").header("Content-Length", "5"),
            ),
            (
                "length with chunked",
                post().chunked().header("Content-Length", "5"),
            ),
            (
                "length with te",
                post()
                    .header("Content-Length", "5")
                    .header("Transfer-Encoding", "chunked"),
            ),
            (
                "length with compress",
                post()
                    .content_length(5)
                    .compress(Compression::Gzip)
                    .header("Content-Length", "5"),
            ),
            ("te gzip", post().header("Transfer-Encoding", "gzip")),
            (
                "te gzip, chunked",
                post().header("Transfer-Encoding", "gzip, chunked"),
            ),
            (
                "te chunked, chunked",
                post().header("Transfer-Encoding", "chunked, chunked"),
            ),
            (
                "te twice",
                post()
                    .header("Transfer-Encoding", "chunked")
                    .header("Transfer-Encoding", "chunked"),
            ),
            ("te empty", post().header("Transfer-Encoding", "")),
            ("chunked on 1.0", post().version(Version::HTTP_10).chunked()),
            (
                "te on 1.0",
                post()
                    .version(Version::HTTP_10)
                    .header("Transfer-Encoding", "chunked"),
            ),
            (
                "compress on 1.0",
                post()
                    .version(Version::HTTP_10)
                    .content_length(3)
                    .compress(Compression::Gzip),
            ),
            (
                "compress with content-encoding",
                post()
                    .content_length(3)
                    .compress(Compression::Gzip)
                    .header("Content-Encoding", "br"),
            ),
            ("chunk size zero", post().chunk_size(0)),
            (
                "chunk size zero, then valid",
                post().chunk_size(0).chunk_size(5),
            ),
        ];
        for (what, request) in conflicts {
            assert!(
                matches!(encode(&request), Err(Error::ConflictingFraming(_))),
                "{what}: {:?}",
                encode(&request)
            );
        }
        // HTTP/1.0 with a fixed length is fine.
        let r = post().version(Version::HTTP_10).content_length(3);
        assert!(ok(&r).ends_with("Content-Length: 3\r\n\r\n"));
    }

    #[test]
    fn header_injection_is_refused_never_escaped() {
        let bad_names: [&[u8]; 12] = [
            b"X-Evil\r\nInjected",
            b"X\nY",
            b"X\rY",
            b"X\0",
            b"\0",
            b"X Y",
            b"X:Y",
            b"X\t",
            b"",
            b"X\x7f",
            b"\xc3\xa9t\xc3\xa9",
            b"(x)",
        ];
        for name in bad_names {
            let r = get("http://example.com/").header(name, "v");
            assert_eq!(encode(&r), Err(Error::InvalidRequestHeaderName), "{name:?}");
            assert!(!r.has_header("X"), "an invalid header is not recorded");
        }
        let bad_values: [&[u8]; 10] = [
            b"a\r\nInjected: 1",
            b"a\r\n\r\nGET /smuggled HTTP/1.1",
            b"a\rb",
            b"a\nb",
            b"a\0b",
            b"\0",
            b"\x01",
            b"a\x7f",
            b"\x1b[31m",
            b"trailing\r\n",
        ];
        for value in bad_values {
            let r = get("http://example.com/").header("X-Ok", value);
            assert_eq!(
                encode(&r),
                Err(Error::InvalidRequestHeaderValue),
                "{value:?}"
            );
            let r = get("http://example.com/").user_agent(value);
            assert_eq!(
                encode(&r),
                Err(Error::InvalidRequestHeaderValue),
                "ua {value:?}"
            );
            let r = get("http://example.com/").content_type(value);
            assert_eq!(
                encode(&r),
                Err(Error::InvalidRequestHeaderValue),
                "ct {value:?}"
            );
        }
        // The first error is kept; later valid headers do not clear it.
        let r = get("http://example.com/")
            .header("Bad Name", "v")
            .header("X", "bad\nvalue")
            .header("Good", "fine");
        assert_eq!(encode(&r), Err(Error::InvalidRequestHeaderName));
        let r = get("http://example.com/")
            .header("X", "bad\0")
            .header("Bad Name", "v");
        assert_eq!(encode(&r), Err(Error::InvalidRequestHeaderValue));
        // The errors are the caller's, not the peer's.
        assert!(Error::InvalidRequestHeaderName.is_local());
        assert!(Error::InvalidRequestHeaderValue.is_local());
    }

    #[test]
    fn user_agent_setter() {
        let r = get("http://example.com/").user_agent("courier-test/9");
        assert_eq!(tail(&ok(&r))[1], "User-Agent: courier-test/9");
    }

    #[test]
    fn errors_leave_the_output_untouched() {
        // `encode` (the helper) checks that nothing was appended for each.
        assert!(encode(&get("/no-host")).is_err());
        assert!(encode(&get("http://example.com/").version(Version::HTTP_2)).is_err());
        assert!(encode(&get("http://example.com/").header("a\r\n", "b")).is_err());
        assert!(encode(&req(Method::POST, "http://example.com/").chunk_size(0)).is_err());
        let r = get("http://example.com/").target_form(TargetForm::Authority);
        // "http://example.com/" has a default port, so authority-form works...
        assert!(ok(&r).starts_with("GET example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n"));
        // ...but a host without scheme or port cannot be written there.
        let r = get("/x")
            .header("Host", "h")
            .target_form(TargetForm::Authority);
        assert!(matches!(encode(&r), Err(Error::InvalidTarget(_))));
    }

    #[test]
    fn debug_hides_header_values_and_userinfo() {
        let r = get("http://alice:s3cr3t@example.com:8080/p?q=1")
            .header("Authorization", "Bearer t0k3n")
            .header("Cookie", "sid=c00kie")
            .user_agent("agent-v4lue")
            .content_type("ctype-v4lue");
        let debug = format!("{r:?}");
        for secret in ["s3cr3t", "alice", "@", "t0k3n", "c00kie", "v4lue"] {
            assert!(!debug.contains(secret), "{secret:?} leaked in {debug}");
        }
        for shown in ["GET", "example.com:8080/p?q=1", "Authorization", "Cookie"] {
            assert!(debug.contains(shown), "{shown:?} missing from {debug}");
        }
    }

    #[test]
    fn digits() {
        for n in [0, 7, 10, 99, 100, 4096, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(itoa_buf(n).as_bytes(), n.to_string().as_bytes());
        }
    }
}
