//! The one error type of this crate.

use std::fmt;

/// A limit from [`Limits`](crate::Limits) that input exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_head_bytes`](crate::Limits::max_head_bytes).
    HeadBytes,
    /// [`Limits::max_headers`](crate::Limits::max_headers).
    Headers,
    /// [`Limits::max_header_line`](crate::Limits::max_header_line).
    HeaderLine,
    /// [`Limits::max_chunk_ext_bytes`](crate::Limits::max_chunk_ext_bytes).
    ChunkExtensions,
    /// [`Limits::max_trailer_bytes`](crate::Limits::max_trailer_bytes).
    TrailerBytes,
    /// [`Limits::max_informational`](crate::Limits::max_informational).
    Informational,
    /// [`Limits::max_decode_ratio`](crate::Limits::max_decode_ratio).
    DecodeRatio,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::HeadBytes => "response head size",
            Limit::Headers => "header count",
            Limit::HeaderLine => "header line length",
            Limit::ChunkExtensions => "chunk extension size",
            Limit::TrailerBytes => "trailer size",
            Limit::Informational => "number of informational (1xx) responses",
            Limit::DecodeRatio => "decompression ratio",
        })
    }
}

/// Everything that can go wrong in this crate.
///
/// Variants fall in two groups, told apart by [`Error::is_remote`] and
/// [`Error::is_local`]:
///
/// * **remote**: the peer broke HTTP/1.1 (a malformed head, bad chunking,
///   conflicting framing, a body cut short by EOF, corrupt compressed data,
///   input beyond a [`Limits`](crate::Limits) bound). The connection must be
///   closed; nothing the caller does makes the same bytes valid.
/// * **local**: the caller asked for something invalid (a header that would
///   inject a line break, a body longer than its declared length, a state
///   transition out of order). Nothing has been sent wrongly: the request is
///   refused before its bytes are produced.
///
/// The `Display` text is lowercase and names the problem only; it never
/// contains header values, so it never leaks credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---------------- remote: protocol violations by the peer ----------------
    /// The status line is not `HTTP/1.x NNN reason`.
    #[error("invalid status line")]
    InvalidStatusLine,
    /// The HTTP version is not `HTTP/1.0` or `HTTP/1.1`.
    #[error("invalid or unsupported http version")]
    InvalidVersion,
    /// The status code is not three digits.
    #[error("invalid status code")]
    InvalidStatus,
    /// A header name holds a byte that is not a token character.
    #[error("invalid header name")]
    InvalidHeaderName,
    /// A header value holds a control character.
    #[error("invalid header value")]
    InvalidHeaderValue,
    /// A line ending is malformed (a CR not followed by LF).
    #[error("invalid line ending")]
    InvalidNewLine,
    /// Input exceeded one of the configured [`Limits`](crate::Limits).
    #[error("{0} limit exceeded")]
    LimitExceeded(Limit),
    /// A `Content-Length` value is not a non-negative decimal integer that fits 64 bits.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// Two `Content-Length` values differ (RFC 9112 §6.3, item 5).
    #[error("conflicting content-length values")]
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` are present (RFC 9112 §6.3,
    /// item 3): a request-smuggling signature, refused outright.
    #[error("both transfer-encoding and content-length present")]
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` applies `chunked` more than once or is malformed.
    #[error("invalid transfer-encoding")]
    InvalidTransferEncoding,
    /// A chunk-size line is not hexadecimal digits, or overflows 64 bits.
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk extension does not follow the RFC 9112 §7.1.1 grammar.
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// Chunk data is not followed by CRLF.
    #[error("invalid chunk delimiter")]
    InvalidChunkDelimiter,
    /// The trailer section of a chunked body is malformed.
    #[error("invalid trailer section")]
    InvalidTrailer,
    /// The connection closed before the response head was complete.
    #[error("connection closed in the middle of the response head")]
    IncompleteHead,
    /// The connection closed before any byte of a response arrived.
    #[error("connection closed before a response arrived")]
    ClosedBeforeResponse,
    /// The connection closed before the body was complete (RFC 9112 §8).
    #[error("connection closed before the response body was complete")]
    IncompleteBody,
    /// The response has no `Content-Length` or chunked framing and the
    /// request set [`Request::read_until_eof`](crate::Request::read_until_eof) to false.
    #[error("response body length is not delimited")]
    UndelimitedBody,
    /// A `101 Switching Protocols` answered a request that offered no `Upgrade`.
    #[error("unexpected 101 switching protocols")]
    UnexpectedUpgrade,
    /// The compressed body is corrupt, truncated, or followed by garbage.
    #[error("invalid compressed body: {0}")]
    Decompress(&'static str),

    // ---------------- local: misuse by the caller ----------------
    /// A request header name is empty or holds a non-token byte.
    #[error("invalid request header name")]
    InvalidRequestHeaderName,
    /// A request header value holds CR, LF, NUL or another control byte.
    /// Such a value would inject lines into the request; it is refused, never escaped.
    #[error("invalid request header value (control character)")]
    InvalidRequestHeaderValue,
    /// The request target cannot be written in the chosen form (no authority
    /// for `Host`, no path for origin-form, a control byte in the target).
    #[error("invalid request target: {0}")]
    InvalidTarget(&'static str),
    /// Only HTTP/1.0 and HTTP/1.1 requests can be encoded.
    #[error("unsupported request http version")]
    UnsupportedVersion,
    /// The body framing cannot be expressed: a user `Content-Length` or
    /// `Transfer-Encoding` header disagrees with the body, or chunked framing
    /// was asked for an HTTP/1.0 request.
    #[error("conflicting request body framing: {0}")]
    ConflictingFraming(&'static str),
    /// More body bytes were written than the declared `Content-Length`.
    #[error("request body longer than its content-length")]
    BodyTooLong,
    /// The body was finished before the declared `Content-Length` was reached.
    #[error("request body shorter than its content-length")]
    BodyTooShort,
    /// A method was called in a state that does not allow it (for example,
    /// moving on before the head was fully written).
    #[error("call out of order: {0}")]
    OutOfOrder(&'static str),
    /// The crate was built without the `compression` feature.
    #[error("compression support not compiled in")]
    CompressionUnavailable,
}

impl Error {
    /// True when the peer violated the protocol (or exceeded a limit).
    ///
    /// ```
    /// use courier_proto::Error;
    /// assert!(Error::InvalidChunkSize.is_remote());
    /// assert!(!Error::BodyTooLong.is_remote());
    /// ```
    pub fn is_remote(&self) -> bool {
        !self.is_local()
    }

    /// True when the caller misused the API; no bytes were produced wrongly.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Error::InvalidRequestHeaderName
                | Error::InvalidRequestHeaderValue
                | Error::InvalidTarget(_)
                | Error::UnsupportedVersion
                | Error::ConflictingFraming(_)
                | Error::BodyTooLong
                | Error::BodyTooShort
                | Error::OutOfOrder(_)
                | Error::CompressionUnavailable
        )
    }

    /// True when the peer closed the connection before the response was complete.
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            Error::IncompleteHead | Error::IncompleteBody | Error::ClosedBeforeResponse
        )
    }
}

impl From<httparse::Error> for Error {
    fn from(e: httparse::Error) -> Self {
        match e {
            httparse::Error::HeaderName => Error::InvalidHeaderName,
            httparse::Error::HeaderValue => Error::InvalidHeaderValue,
            httparse::Error::NewLine => Error::InvalidNewLine,
            httparse::Error::Status => Error::InvalidStatus,
            httparse::Error::Token => Error::InvalidStatusLine,
            httparse::Error::TooManyHeaders => Error::LimitExceeded(Limit::Headers),
            httparse::Error::Version => Error::InvalidVersion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_and_names_the_limit() {
        assert_eq!(
            Error::LimitExceeded(Limit::HeadBytes).to_string(),
            "response head size limit exceeded"
        );
        assert_eq!(Error::InvalidChunkSize.to_string(), "invalid chunk size");
    }

    #[test]
    fn local_and_remote_are_disjoint() {
        let all = [
            Error::InvalidStatusLine,
            Error::LimitExceeded(Limit::Headers),
            Error::IncompleteBody,
            Error::Decompress("x"),
            Error::InvalidRequestHeaderValue,
            Error::BodyTooShort,
            Error::OutOfOrder("x"),
        ];
        for e in all {
            assert_ne!(e.is_local(), e.is_remote(), "{e:?}");
        }
        assert!(Error::InvalidRequestHeaderValue.is_local());
        assert!(Error::IncompleteBody.is_remote());
    }

    #[test]
    fn httparse_errors_map() {
        assert_eq!(
            Error::from(httparse::Error::TooManyHeaders),
            Error::LimitExceeded(Limit::Headers)
        );
        assert_eq!(Error::from(httparse::Error::Version), Error::InvalidVersion);
    }
}
