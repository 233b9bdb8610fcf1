//! How long a response body is, and whether the connection outlives it.
//!
//! Both answers are pure functions of the request method and the response
//! head, written out step by step from RFC 9112 §6.3 and §9.3.

use http::{Method, StatusCode, Version};

use crate::chars::{is_token, list_contains, list_items, trim_ows};
use crate::error::Error;
use crate::response::ResponseHead;

/// How a response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyMode {
    /// No body at all (HEAD, 1xx, 204, 304, 2xx to CONNECT).
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilEof,
}

impl BodyMode {
    /// True when the body ends only when the connection does, so the
    /// connection can never carry another request.
    pub fn is_until_eof(self) -> bool {
        self == BodyMode::UntilEof
    }
}

/// Decides how the body of `head` is delimited, for a request sent with
/// `method`: RFC 9112 §6.3, in its order.
///
/// 1. A response to HEAD, and any 1xx, 204 or 304 response, has no body,
///    whatever its headers say.
/// 2. A 2xx response to CONNECT has no body: the connection becomes a tunnel.
/// 3. `Transfer-Encoding` together with `Content-Length` is refused
///    ([`Error::ContentLengthWithTransferEncoding`]). The RFC lets
///    `Transfer-Encoding` win but says the message "ought to be handled as an
///    error": it is the request-smuggling signature, and no honest server
///    needs it.
/// 4. With `Transfer-Encoding`: chunked when `chunked` is the final coding
///    (applying it twice is an error); otherwise the body runs until the
///    connection closes. In an HTTP/1.0 response the framing is faulty
///    (§6.1), so the body also runs until close.
/// 5. With `Content-Length`: that many bytes. Repeated values (in one field
///    or several) must all be equal ([`Error::ConflictingContentLength`]).
/// 6. Otherwise the body runs until the connection closes.
///
/// ```
/// use courier_proto::{framing::{body_mode, BodyMode}, HeadParser, Limits};
/// use http::Method;
/// let parse = |b: &[u8]| HeadParser::new(Limits::default()).parse(b).unwrap().unwrap().0;
/// let head = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
/// assert_eq!(body_mode(&Method::GET, &head).unwrap(), BodyMode::Length(5));
/// assert_eq!(body_mode(&Method::HEAD, &head).unwrap(), BodyMode::None);
/// ```
///
/// # Errors
///
/// Conflicting or malformed `Content-Length` / `Transfer-Encoding` fields.
pub fn body_mode(method: &Method, head: &ResponseHead) -> Result<BodyMode, Error> {
    let status = head.status();
    // 1.
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(BodyMode::None);
    }
    // 2.
    if method == Method::CONNECT && status.is_success() {
        return Ok(BodyMode::None);
    }
    let fields = head.fields();
    let has_te = fields.contains("transfer-encoding");
    let content_length = content_length(fields.get_all("content-length"))?;
    // 3.
    if has_te && content_length.is_some() {
        return Err(Error::ContentLengthWithTransferEncoding);
    }
    // 4.
    if has_te {
        let chunked_last = final_coding_is_chunked(fields.get_all("transfer-encoding"))?;
        if head.version() == Version::HTTP_10 || !chunked_last {
            return Ok(BodyMode::UntilEof);
        }
        return Ok(BodyMode::Chunked);
    }
    // 5. and 6.
    Ok(match content_length {
        Some(n) => BodyMode::Length(n),
        None => BodyMode::UntilEof,
    })
}

/// The one `Content-Length` all given values agree on, `None` if there are none.
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, Error> {
    let mut found = None;
    for value in values {
        let mut items = 0;
        for item in value.split(|&b| b == b',').map(trim_ows) {
            items += 1;
            let n = parse_decimal(item).ok_or(Error::InvalidContentLength)?;
            match found {
                Some(prev) if prev != n => return Err(Error::ConflictingContentLength),
                _ => found = Some(n),
            }
        }
        if items == 0 {
            return Err(Error::InvalidContentLength);
        }
    }
    Ok(found)
}

/// `1*DIGIT` as a `u64`; `None` when empty, not digits, or too large.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Walks every transfer coding in order; true when the last is `chunked`.
fn final_coding_is_chunked<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<bool, Error> {
    let mut chunked_seen = false;
    let mut last_is_chunked = false;
    let mut any = false;
    for value in values {
        for item in list_items(value) {
            // transfer-coding = token *( OWS ";" OWS transfer-parameter )
            let name = trim_ows(item.split(|&b| b == b';').next().unwrap_or(item));
            if !is_token(name) {
                return Err(Error::InvalidTransferEncoding);
            }
            any = true;
            last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                if chunked_seen {
                    // RFC 9112 §6.1: chunked must not be applied twice.
                    return Err(Error::InvalidTransferEncoding);
                }
                chunked_seen = true;
            }
        }
    }
    if !any {
        return Err(Error::InvalidTransferEncoding);
    }
    Ok(last_is_chunked)
}

/// Whether the server lets the connection persist after this response,
/// by RFC 9112 §9.3 (framing aside: see [`BodyMode::is_until_eof`]).
///
/// * A `close` connection option ends the connection.
/// * HTTP/1.1 (and later) persists otherwise.
/// * HTTP/1.0 persists only with a `keep-alive` connection option.
///
/// `Proxy-Connection` is not `Connection` and is ignored.
///
/// ```
/// use courier_proto::{framing::response_keep_alive, HeadParser, Limits};
/// let parse = |b: &[u8]| HeadParser::new(Limits::default()).parse(b).unwrap().unwrap().0;
/// assert!(response_keep_alive(&parse(b"HTTP/1.1 200 OK\r\n\r\n")));
/// assert!(!response_keep_alive(&parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")));
/// assert!(!response_keep_alive(&parse(b"HTTP/1.0 200 OK\r\n\r\n")));
/// assert!(response_keep_alive(&parse(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n")));
/// ```
pub fn response_keep_alive(head: &ResponseHead) -> bool {
    let fields = head.fields();
    let mut keep_alive_option = false;
    for value in fields.get_all("connection") {
        if list_contains(value, "close") {
            return false;
        }
        keep_alive_option |= list_contains(value, "keep-alive");
    }
    head.version() != Version::HTTP_10 || keep_alive_option
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeadParser, Limits};

    fn head(raw: &str) -> ResponseHead {
        HeadParser::new(Limits::default())
            .parse(raw.as_bytes())
            .unwrap()
            .unwrap()
            .0
    }

    fn mode(method: Method, raw: &str) -> Result<BodyMode, Error> {
        body_mode(&method, &head(raw))
    }

    #[test]
    fn no_body_statuses_and_methods() {
        let cl = "Content-Length: 10\r\n\r\n";
        for status in [
            "100 Continue",
            "103 Early",
            "204 No Content",
            "304 Not Modified",
        ] {
            let raw = format!("HTTP/1.1 {status}\r\n{cl}");
            assert_eq!(mode(Method::GET, &raw), Ok(BodyMode::None), "{status}");
        }
        let raw = format!("HTTP/1.1 200 OK\r\n{cl}");
        assert_eq!(mode(Method::HEAD, &raw), Ok(BodyMode::None));
        assert_eq!(mode(Method::CONNECT, &raw), Ok(BodyMode::None));
        let refused = format!("HTTP/1.1 407 Auth\r\n{cl}");
        assert_eq!(mode(Method::CONNECT, &refused), Ok(BodyMode::Length(10)));
    }

    #[test]
    fn transfer_encoding() {
        let m = |te: &str| mode(Method::GET, &format!("HTTP/1.1 200 OK\r\n{te}\r\n\r\n"));
        assert_eq!(m("Transfer-Encoding: chunked"), Ok(BodyMode::Chunked));
        assert_eq!(m("Transfer-Encoding: gzip, CHUNKED"), Ok(BodyMode::Chunked));
        assert_eq!(
            m("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked"),
            Ok(BodyMode::Chunked)
        );
        assert_eq!(
            m("Transfer-Encoding: chunked, deflate"),
            Ok(BodyMode::UntilEof)
        );
        assert_eq!(
            m("Transfer-Encoding: chunkedchunked"),
            Ok(BodyMode::UntilEof)
        );
        assert_eq!(
            m("Transfer-Encoding: chunked, chunked"),
            Err(Error::InvalidTransferEncoding)
        );
        assert_eq!(
            m("Transfer-Encoding: ,"),
            Err(Error::InvalidTransferEncoding)
        );
        assert_eq!(
            m("Transfer-Encoding: a@b"),
            Err(Error::InvalidTransferEncoding)
        );
        assert_eq!(
            m("Transfer-Encoding: chunked\r\nContent-Length: 3"),
            Err(Error::ContentLengthWithTransferEncoding)
        );
        let http10 = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(mode(Method::GET, http10), Ok(BodyMode::UntilEof));
    }

    #[test]
    fn content_length() {
        let m = |cl: &str| mode(Method::GET, &format!("HTTP/1.1 200 OK\r\n{cl}\r\n\r\n"));
        assert_eq!(m("Content-Length: 0"), Ok(BodyMode::Length(0)));
        assert_eq!(m("Content-Length: 42, 42"), Ok(BodyMode::Length(42)));
        assert_eq!(
            m("Content-Length: 42\r\nContent-Length: 42"),
            Ok(BodyMode::Length(42))
        );
        assert_eq!(
            m("Content-Length: 18446744073709551615"),
            Ok(BodyMode::Length(u64::MAX))
        );
        for bad in [
            "+5",
            "-1",
            "5x",
            "0x10",
            "18446744073709551616",
            "1 2",
            "",
            "5,",
        ] {
            assert_eq!(
                m(&format!("Content-Length: {bad}")),
                Err(Error::InvalidContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            m("Content-Length: 1\r\nContent-Length: 2"),
            Err(Error::ConflictingContentLength)
        );
        assert_eq!(
            m("Content-Length: 1, 2"),
            Err(Error::ConflictingContentLength)
        );
        assert_eq!(m("X: y"), Ok(BodyMode::UntilEof));
    }

    #[test]
    fn keep_alive_verdicts() {
        let ka = |raw: &str| response_keep_alive(&head(raw));
        assert!(ka("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(ka("HTTP/1.1 200 OK\r\nConnection: upgrade\r\n\r\n"));
        assert!(!ka("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(ka("HTTP/1.1 200 OK\r\nProxy-Connection: close\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\n\r\n"
        ));
    }
}
