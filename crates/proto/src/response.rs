//! Response head parsing: bytes in, a [`ResponseHead`] out once it is complete.

use std::borrow::Cow;
use std::fmt;
use std::mem::MaybeUninit;

use http::{HeaderMap, StatusCode, Version};

use crate::error::{Error, Limit};
use crate::fields::{Fields, Span};
use crate::limits::Limits;

/// A parsed response head: status line and header fields.
///
/// The bytes are kept as received ([`ResponseHead::raw`]), so header names
/// keep their case and order (aiohttp's `raw_headers`), and the reason
/// phrase keeps bytes that are not UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseHead {
    version: Version,
    status: StatusCode,
    reason: Span,
    fields: Fields,
}

impl ResponseHead {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase as sent (possibly empty, possibly not UTF-8).
    pub fn reason(&self) -> &[u8] {
        &self.fields.raw()[self.reason.range()]
    }

    /// The reason phrase decoded as UTF-8, with invalid bytes replaced.
    pub fn reason_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.reason())
    }

    /// The header fields, in order, as received.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name)
    }

    /// The headers as an [`http::HeaderMap`].
    ///
    /// # Errors
    ///
    /// Never for heads produced by [`HeadParser`]; see [`Fields::to_header_map`].
    pub fn to_header_map(&self) -> Result<HeaderMap, Error> {
        self.fields.to_header_map()
    }

    /// The head as received, from the status line to the empty line (empty
    /// lines before the status line are not included), except that obs-fold
    /// line breaks are replaced by spaces (see [`Fields::raw`]).
    pub fn raw(&self) -> &[u8] {
        self.fields.raw()
    }

    /// True for a 1xx status.
    pub fn is_informational(&self) -> bool {
        self.status.is_informational()
    }

    /// Gives up the head, keeping its fields.
    pub fn into_fields(self) -> Fields {
        self.fields
    }
}

impl fmt::Debug for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseHead")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("reason", &self.reason_lossy())
            .field("fields", &self.fields)
            .finish()
    }
}

/// Number of header slots kept on the stack; more come from the heap only
/// when [`Limits::max_headers`] asks for more.
const STACK_HEADERS: usize = 128;

/// Parses response heads from a growing input buffer.
///
/// Call [`HeadParser::parse`] with *all* bytes received so far for this head
/// (the same prefix, extended). It returns `Ok(None)` until the head is
/// complete, then the head and how many input bytes it used; the bytes after
/// that are the body (or the next head). After a head is returned the parser
/// is ready for the next one.
///
/// Feeding a head in small pieces costs linear time overall. Once a call
/// finds the head incomplete, later calls parse again only when the head
/// is complete, or when a new line has completed and the head has grown by
/// a quarter since the last parse: a malformed line is reported soon after
/// it arrives (not only at the end of the head), and the total work stays
/// a small multiple of the head's size.
///
/// ```
/// use courier_proto::{HeadParser, Limits};
/// let mut parser = HeadParser::new(Limits::default());
/// assert!(parser.parse(b"HTTP/1.1 204 No Con").unwrap().is_none());
/// let (head, used) = parser.parse(b"HTTP/1.1 204 No Content\r\n\r\nrest").unwrap().unwrap();
/// assert_eq!(head.status(), 204);
/// assert_eq!(head.reason(), b"No Content");
/// assert_eq!(used, 27);
/// ```
#[derive(Debug, Clone)]
pub struct HeadParser {
    limits: Limits,
    /// Bytes already seen without a complete head (0 = no partial head).
    scanned: usize,
    /// Empty-line bytes (CR, LF) seen before the status line of the partial
    /// head, so that they are skipped once, not on every call.
    lead: usize,
    /// Input length at the last full parse of the partial head.
    parsed: usize,
    /// Bytes handed to httparse so far (tests check the work is linear).
    #[cfg(test)]
    work: usize,
}

impl HeadParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> HeadParser {
        HeadParser {
            limits,
            scanned: 0,
            lead: 0,
            parsed: 0,
            #[cfg(test)]
            work: 0,
        }
    }

    /// True when some bytes of a head have been seen but not a whole head.
    pub fn is_partial(&self) -> bool {
        self.scanned > 0
    }

    /// Forgets any partial head.
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.lead = 0;
        self.parsed = 0;
    }

    /// Tries to parse one response head from the start of `input`.
    ///
    /// # Errors
    ///
    /// A malformed head (see [`Error`]), or one beyond
    /// [`Limits::max_head_bytes`], [`Limits::max_headers`] or
    /// [`Limits::max_header_line`].
    pub fn parse(&mut self, input: &[u8]) -> Result<Option<(ResponseHead, usize)>, Error> {
        if self.scanned == 0 || self.scanned > input.len() {
            self.reset();
        }
        // Empty lines before the status line, each byte looked at once.
        self.lead += empty_lines(&input[self.lead..]);
        if self.scanned > 0 && !self.worth_parsing(input) {
            return self.partial(input);
        }
        self.parsed = input.len();
        let max = self.limits.max_headers;
        let head = &input[self.lead..];
        #[cfg(test)]
        {
            self.work += head.len();
        }
        let result = if max <= STACK_HEADERS {
            let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
            parse_with(&self.limits, head, &mut slots[..max])
        } else {
            let mut slots = vec![MaybeUninit::<httparse::Header<'_>>::uninit(); max];
            parse_with(&self.limits, head, &mut slots)
        };
        match result? {
            Some((head, used)) => {
                let used = self.lead + used;
                if used > self.limits.max_head_bytes {
                    return Err(Error::LimitExceeded(Limit::HeadBytes));
                }
                self.reset();
                Ok(Some((head, used)))
            }
            None => self.partial(input),
        }
    }

    /// For a partial head: whether the bytes that arrived since the last
    /// call make parsing again worthwhile.
    fn worth_parsing(&self, input: &[u8]) -> bool {
        // Only an empty line after the status line ends the head.
        let from = self.scanned.saturating_sub(2).max(self.lead);
        if has_head_end(&input[from..]) {
            return true;
        }
        let new_line = input[self.scanned..].contains(&b'\n');
        let parsed = self.parsed.saturating_sub(self.lead);
        let grown = input.len() - self.parsed.max(self.lead);
        new_line && grown.saturating_mul(4) >= parsed
    }

    fn partial(&mut self, input: &[u8]) -> Result<Option<(ResponseHead, usize)>, Error> {
        if input.len() >= self.limits.max_head_bytes {
            return Err(Error::LimitExceeded(Limit::HeadBytes));
        }
        // Without a line end, the status line alone may not outgrow its limit.
        let first_line_len = input[self.lead..]
            .iter()
            .take_while(|&&b| b != b'\n')
            .count();
        if first_line_len > self.limits.max_header_line + 1 {
            return Err(Error::LimitExceeded(Limit::HeaderLine));
        }
        self.scanned = input.len();
        Ok(None)
    }
}

/// The length of the empty lines (`\r\n` or `\n`) at the start of
/// `bytes`. A CR not (yet) followed by LF ends them: httparse decides
/// whether it is an error.
fn empty_lines(bytes: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match &bytes[i..] {
            [b'\n', ..] => i += 1,
            [b'\r', b'\n', ..] => i += 2,
            _ => return i,
        }
    }
}

/// True when `bytes` holds an empty line after a line end (`\n\n` or `\n\r\n`).
fn has_head_end(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            match bytes.get(i + 1) {
                Some(b'\n') => return true,
                Some(b'\r') if bytes.get(i + 2) == Some(&b'\n') => return true,
                _ => {}
            }
        }
        i += 1;
    }
    false
}

fn parse_with<'b>(
    limits: &Limits,
    input: &'b [u8],
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(ResponseHead, usize)>, Error> {
    let mut config = httparse::ParserConfig::default();
    // RFC 9112 §5.2: a user agent must accept obs-fold in responses and
    // replace it with spaces (done in `Fields::from_parsed`).
    config.allow_obsolete_multiline_headers_in_responses(true);
    let mut response = httparse::Response::new(&mut []);
    let end = match config.parse_response_with_uninit_headers(&mut response, input, slots)? {
        httparse::Status::Partial => return Ok(None),
        httparse::Status::Complete(end) => end,
    };
    if end > limits.max_head_bytes {
        return Err(Error::LimitExceeded(Limit::HeadBytes));
    }
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(Error::InvalidVersion),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(Error::InvalidStatus)?;
    // httparse skipped empty lines before the status line; the head starts after them.
    let start = input[..end]
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(end);
    let status_line = status_line(&input[start..end]);
    if status_line.len() > limits.max_header_line {
        return Err(Error::LimitExceeded(Limit::HeaderLine));
    }
    // "HTTP/1.x NNN" is 12 bytes; the reason follows one SP. httparse has
    // checked the grammar, and returns "" for a reason that is not UTF-8,
    // so the reason's bytes are taken from the line itself.
    let reason = if status_line.len() > 13 {
        start + 13..start + status_line.len()
    } else {
        start..start
    };
    let fields = Fields::from_parsed(
        input,
        start,
        end,
        response.headers,
        limits.max_header_line,
        Limit::HeadBytes,
    )?;
    let head = ResponseHead {
        version,
        status,
        reason: Span::new(reason.start - start..reason.end - start),
        fields,
    };
    Ok(Some((head, end)))
}

/// The first line of `head`, without its line ending.
fn status_line(head: &[u8]) -> &[u8] {
    let line = match head.iter().position(|&b| b == b'\n') {
        Some(nl) => &head[..nl],
        None => head,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Result<Option<(ResponseHead, usize)>, Error>;

    /// Parses `input` whole, then again split at every offset (the prefix,
    /// then everything) and byte by byte (every growing prefix), with one
    /// parser per run as a connection would use; all must agree.
    fn parse_with_limits(input: &[u8], limits: Limits) -> Parsed {
        let whole = HeadParser::new(limits).parse(input);
        for split in 0..input.len() {
            let mut parser = HeadParser::new(limits);
            let split_result = match parser.parse(&input[..split]) {
                Ok(None) => parser.parse(input),
                done => done,
            };
            assert_eq!(split_result, whole, "split at {split} of {:?}", show(input));
        }
        let mut parser = HeadParser::new(limits);
        let mut bytewise = Ok(None);
        for end in 1..=input.len() {
            bytewise = parser.parse(&input[..end]);
            if !matches!(bytewise, Ok(None)) {
                break;
            }
        }
        assert_eq!(bytewise, whole, "byte by byte {:?}", show(input));
        whole
    }

    fn show(input: &[u8]) -> String {
        String::from_utf8_lossy(&input[..input.len().min(200)]).into_owned()
    }

    fn parse(input: &[u8]) -> Parsed {
        parse_with_limits(input, Limits::default())
    }

    /// A complete head, and how many bytes it used.
    fn head(input: &[u8]) -> (ResponseHead, usize) {
        parse(input).expect("valid head").expect("complete head")
    }

    fn err(input: &[u8], limits: Limits) -> Error {
        parse_with_limits(input, limits).expect_err("invalid head")
    }

    fn fields(head: &ResponseHead) -> Vec<(String, Vec<u8>)> {
        head.fields()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn status_reason_and_version() {
        let cases: [(&[u8], Version, u16, &[u8]); 8] = [
            (b"HTTP/1.1 200 OK\r\n\r\n", Version::HTTP_11, 200, b"OK"),
            (
                b"HTTP/1.0 404 Not Found\r\n\r\n",
                Version::HTTP_10,
                404,
                b"Not Found",
            ),
            (b"HTTP/1.1 599 x\r\n\r\n", Version::HTTP_11, 599, b"x"),
            (
                b"HTTP/1.1 999 Whatever\r\n\r\n",
                Version::HTTP_11,
                999,
                b"Whatever",
            ),
            (
                b"HTTP/1.1 103 Early Hints\r\n\r\n",
                Version::HTTP_11,
                103,
                b"Early Hints",
            ),
            (
                b"HTTP/1.1 200 Very\tOK  !\r\n\r\n",
                Version::HTTP_11,
                200,
                b"Very\tOK  !",
            ),
            (b"HTTP/1.1 302 \r\n\r\n", Version::HTTP_11, 302, b""),
            (b"HTTP/1.1 200\r\n\r\n", Version::HTTP_11, 200, b""),
        ];
        for (input, version, status, reason) in cases {
            let (h, used) = head(input);
            assert_eq!(used, input.len());
            assert_eq!(h.version(), version, "{}", show(input));
            assert_eq!(h.status(), status, "{}", show(input));
            assert_eq!(h.reason(), reason, "{}", show(input));
            assert_eq!(h.raw(), input);
            assert!(h.fields().is_empty());
            assert_eq!(h.is_informational(), status < 200);
        }
    }

    #[test]
    fn reason_bytes_that_are_not_utf8_are_kept() {
        let input = b"HTTP/1.1 200 \xe9t\xe9 \xff\x80ok\r\nA: b\r\n\r\n";
        let (h, _) = head(input);
        assert_eq!(h.reason(), b"\xe9t\xe9 \xff\x80ok");
        assert_eq!(h.reason_lossy(), "\u{fffd}t\u{fffd} \u{fffd}\u{fffd}ok");
        assert_eq!(h.header("a"), Some(&b"b"[..]));
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_not_raw() {
        let head_bytes = b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n";
        for prefix in [&b"\r\n"[..], b"\n", b"\r\n\r\n", b"\n\r\n\n"] {
            let mut input = prefix.to_vec();
            input.extend_from_slice(head_bytes);
            input.extend_from_slice(b"BODY");
            let (h, used) = head(&input);
            assert_eq!(used, input.len() - 4, "{prefix:?}");
            assert_eq!(h.raw(), head_bytes);
            assert_eq!(h.status(), 204);
            assert_eq!(h.reason(), b"No Content");
            assert_eq!(h.header("X"), Some(&b"y"[..]));
        }
    }

    #[test]
    fn used_bytes_stop_at_the_end_of_the_head() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n\r\n";
        let (h, used) = head(input);
        assert_eq!(&input[used..used + 3], b"abc");
        assert_eq!(h.raw(), &input[..used]);
        // The parser is ready for the next head.
        let mut parser = HeadParser::new(Limits::default());
        parser.parse(input).unwrap().unwrap();
        assert!(!parser.is_partial());
        let (next, n) = parser.parse(&input[used + 3..]).unwrap().unwrap();
        assert_eq!((next.status(), n), (StatusCode::OK, 19));
    }

    #[test]
    fn partial_state_and_reset() {
        let mut parser = HeadParser::new(Limits::default());
        assert!(parser.parse(b"").unwrap().is_none());
        assert!(parser.parse(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        assert!(parser.is_partial());
        parser.reset();
        assert!(!parser.is_partial());
        // After a reset, a different (shorter) input is parsed from scratch.
        let (h, _) = parser.parse(b"HTTP/1.1 201 C\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.status(), 201);
        // A shorter input than the partial head seen so far starts over too.
        assert!(parser.parse(&b"\r\n".repeat(20)).unwrap().is_none());
        assert!(parser.is_partial());
        let (h, used) = parser.parse(b"HTTP/1.1 202 A\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.status(), used), (StatusCode::ACCEPTED, 18));
        // So does any input after an error.
        assert!(parser.parse(b"\r\n\r\nNOT HTTP\r\n\r\n").is_err());
        let (h, _) = parser.parse(b"HTTP/1.1 203 B\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.status(), 203);
    }

    #[test]
    fn fields_keep_order_case_and_repeats_with_trimmed_values() {
        let input = b"HTTP/1.1 200 OK\r\n\
            Content-Type: text/html\r\n\
            x-custom:   spaced value  \t\r\n\
            SET-COOKIE: a=1\r\n\
            Tabbed:\t\tv\t\r\n\
            Empty:\r\n\
            Blank:   \r\n\
            set-cookie: b=2; Path=/\r\n\
            Obs-Text: caf\xe9\r\n\
            \r\n";
        let (h, used) = head(input);
        assert_eq!(used, input.len());
        let expected: [(&str, &[u8]); 8] = [
            ("Content-Type", b"text/html"),
            ("x-custom", b"spaced value"),
            ("SET-COOKIE", b"a=1"),
            ("Tabbed", b"v"),
            ("Empty", b""),
            ("Blank", b""),
            ("set-cookie", b"b=2; Path=/"),
            ("Obs-Text", b"caf\xe9"),
        ];
        let got = fields(&h);
        assert_eq!(got.len(), expected.len());
        for ((name, value), (en, ev)) in got.iter().zip(expected) {
            assert_eq!((name.as_str(), value.as_slice()), (en, ev));
        }
        assert_eq!(h.fields().len(), 8);
        assert_eq!(h.fields().iter().len(), 8);
        assert_eq!(h.raw(), input, "raw keeps the bytes as received");

        // Lookups are ASCII case-insensitive and find the first match.
        let f = h.fields();
        for name in [
            "content-type",
            "CONTENT-TYPE",
            "Content-Type",
            "cOnTeNt-TyPe",
        ] {
            assert_eq!(f.get(name), Some(&b"text/html"[..]), "{name}");
        }
        assert_eq!(f.get("set-cookie"), Some(&b"a=1"[..]));
        let cookies: Vec<&[u8]> = f.get_all("Set-Cookie").collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2; Path=/"]);
        assert_eq!(f.get("content-typ"), None);
        assert_eq!(f.get("missing"), None);
        assert!(f.contains("EMPTY") && !f.contains("nope"));
        assert_eq!(f.get("empty"), Some(&b""[..]));
        let mut names = Vec::new();
        for (name, _) in h.fields() {
            names.push(name);
        }
        assert_eq!(names[..3], ["Content-Type", "x-custom", "SET-COOKIE"]);
    }

    #[test]
    fn to_header_map_keeps_repeated_names() {
        let input = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: 1\r\nset-cookie: b=2\r\n\
            SET-COOKIE: c=3\r\nV: caf\xe9\r\n\r\n";
        let (h, _) = head(input);
        let map = h.to_header_map().unwrap();
        let cookies: Vec<&[u8]> = map
            .get_all("set-cookie")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2", b"c=3"]);
        assert_eq!(map.len(), 5);
        assert_eq!(map["x"], "1");
        assert_eq!(map["v"].as_bytes(), b"caf\xe9");
        assert_eq!(h.clone().into_fields().to_header_map().unwrap(), map);
    }

    #[test]
    fn obs_fold_is_replaced_by_spaces() {
        let input = b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n second\r\n\t third\r\nNext: n\r\n\r\n";
        let (h, used) = head(input);
        assert_eq!(used, input.len());
        let v = h.header("x-folded").unwrap();
        assert!(!v.contains(&b'\r') && !v.contains(&b'\n'), "{v:?}");
        // The whole fold (CRLF and the whitespace after it) becomes spaces.
        assert_eq!(v, b"first   second    third");
        let words: Vec<&[u8]> = v
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(words, [&b"first"[..], b"second", b"third"]);
        assert_eq!(h.header("next"), Some(&b"n"[..]));
        // Folded values convert (a CR or LF would not).
        let map = h.to_header_map().unwrap();
        assert_eq!(map["x-folded"].as_bytes(), v);
        // A fold with nothing after it trims away.
        let (h, _) = head(b"HTTP/1.1 200 OK\r\nA: a\r\n \r\nB: b\r\n\r\n");
        assert_eq!(h.header("A"), Some(&b"a"[..]));
        assert_eq!(h.header("B"), Some(&b"b"[..]));
    }

    #[test]
    fn bare_lf_line_endings_are_accepted() {
        let input = b"HTTP/1.1 200 OK\nA: 1\nB:  2 \n\nrest";
        let (h, used) = head(input);
        assert_eq!(used, input.len() - 4);
        assert_eq!(h.reason(), b"OK");
        assert_eq!(
            fields(&h),
            [("A".into(), b"1".to_vec()), ("B".into(), b"2".to_vec())]
        );
    }

    #[test]
    fn malformed_heads_are_errors() {
        let limits = Limits::default();
        let cases: [(&[u8], Error); 12] = [
            (b"HTTP/2.0 200 OK\r\n\r\n", Error::InvalidVersion),
            (b"HTTP/1.2 200 OK\r\n\r\n", Error::InvalidVersion),
            (b"ICY 200 OK\r\n\r\n", Error::InvalidVersion),
            (b"http/1.1 200 OK\r\n\r\n", Error::InvalidVersion),
            (b"HTTP/1.1 20 OK\r\n\r\n", Error::InvalidStatus),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Error::InvalidStatus),
            (b"HTTP/1.1 099 Low\r\n\r\n", Error::InvalidStatus),
            (b"HTTP/1.1 abc OK\r\n\r\n", Error::InvalidStatus),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                Error::InvalidHeaderName,
            ),
            (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", Error::InvalidHeaderName),
            (
                b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
                Error::InvalidHeaderValue,
            ),
            (
                b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
                Error::InvalidHeaderValue,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(err(input, limits), expected, "{}", show(input));
            assert!(expected.is_remote());
        }
        // Errors without a precise variant are still errors, never a panic.
        for input in [
            &b"HTTP/1.1 200 OK\rX\r\n\r\n"[..],
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\x00\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
        ] {
            assert!(parse(input).is_err(), "{}", show(input));
        }
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        for input in [
            &b""[..],
            b"HTTP/1.1",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n\r",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse(input), Ok(None), "{}", show(input));
        }
    }

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn max_head_bytes_exactly_at_the_limit_passes() {
        let input = b"HTTP/1.1 200 OK\r\nA: b\r\nCcc: ddd\r\n\r\n";
        let n = input.len();
        assert!(
            parse_with_limits(input, limits().max_head_bytes(n))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(input, limits().max_head_bytes(n - 1)),
            Error::LimitExceeded(Limit::HeadBytes)
        );
        // Body bytes after the head do not count.
        let mut with_body = input.to_vec();
        with_body.extend_from_slice(&[b'x'; 100]);
        let (_, used) = parse_with_limits(&with_body, limits().max_head_bytes(n))
            .unwrap()
            .unwrap();
        assert_eq!(used, n);
        // Empty lines before the status line count.
        let mut leading = b"\r\n\r\n".to_vec();
        leading.extend_from_slice(input);
        assert!(
            parse_with_limits(&leading, limits().max_head_bytes(n + 4))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(&leading, limits().max_head_bytes(n + 3)),
            Error::LimitExceeded(Limit::HeadBytes)
        );
    }

    #[test]
    fn max_head_bytes_stops_an_incomplete_head() {
        let lim = limits().max_head_bytes(100);
        // A head that is not complete but already as long as the limit.
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        while input.len() < 100 {
            input.extend_from_slice(b"X: y\r\n");
        }
        input.truncate(100);
        assert_eq!(err(&input, lim), Error::LimitExceeded(Limit::HeadBytes));
        assert_eq!(parse_with_limits(&input[..99], lim), Ok(None));
        // Endless empty lines, endless header lines, an endless status line.
        assert_eq!(
            err(&[b'\n'; 100], lim),
            Error::LimitExceeded(Limit::HeadBytes)
        );
        assert_eq!(
            err(&b"\r\n".repeat(50), lim),
            Error::LimitExceeded(Limit::HeadBytes)
        );
        let mut endless_value = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        endless_value.resize(150, b'v');
        assert_eq!(
            err(&endless_value, lim),
            Error::LimitExceeded(Limit::HeadBytes)
        );
        // With the default limit, 64 KiB of header lines without an end.
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= 64 * 1024 {
            big.extend_from_slice(b"X-Filler: 0123456789abcdef\r\n");
        }
        let mut parser = HeadParser::new(Limits::default().max_headers(10_000));
        assert_eq!(
            parser.parse(&big),
            Err(Error::LimitExceeded(Limit::HeadBytes))
        );
    }

    #[test]
    fn max_headers_exactly_at_the_limit_passes() {
        let head_with = |n: usize| {
            let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..n {
                h.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            h
        };
        for max in [0, 1, 3, STACK_HEADERS, STACK_HEADERS + 1, 200] {
            let lim = limits().max_headers(max);
            let (h, _) = parse_with_limits(&head_with(max), lim).unwrap().unwrap();
            assert_eq!(h.fields().len(), max);
            assert_eq!(
                err(&head_with(max + 1), lim),
                Error::LimitExceeded(Limit::Headers),
                "max {max}"
            );
        }
        // The default is 100.
        assert!(parse(&head_with(100)).unwrap().is_some());
        assert_eq!(
            err(&head_with(101), limits()),
            Error::LimitExceeded(Limit::Headers)
        );
    }

    #[test]
    fn max_header_line_for_the_status_line() {
        let input = b"HTTP/1.1 200 Fine Reason\r\nA: b\r\n\r\n";
        let line = b"HTTP/1.1 200 Fine Reason".len();
        assert!(
            parse_with_limits(input, limits().max_header_line(line))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(input, limits().max_header_line(line - 1)),
            Error::LimitExceeded(Limit::HeaderLine)
        );
        // A status line that never ends is stopped by the line limit before
        // the head limit.
        let mut endless = b"HTTP/1.1 200 ".to_vec();
        endless.resize(200, b'r');
        assert_eq!(
            err(&endless, limits().max_header_line(100)),
            Error::LimitExceeded(Limit::HeaderLine)
        );
        // Leading empty lines are not part of the status line.
        let mut leading = b"\r\n\r\n\r\n".to_vec();
        leading.extend_from_slice(input);
        assert!(
            parse_with_limits(&leading, limits().max_header_line(line))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn max_header_line_for_field_lines() {
        let field = b"X-Long: 0123456789";
        let mut input = b"HTTP/1.1 200 OK\r\nA: b\r\n".to_vec();
        input.extend_from_slice(field);
        input.extend_from_slice(b"\r\nZ: z\r\n\r\n");
        let n = field.len();
        assert!(
            parse_with_limits(&input, limits().max_header_line(n))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(&input, limits().max_header_line(n - 1)),
            Error::LimitExceeded(Limit::HeaderLine)
        );
        // A folded value is one field line.
        let folded = b"HTTP/1.1 200\r\nX: aaaa\r\n bbbb\r\n\r\n";
        let folded_line = b"X: aaaa\r\n bbbb".len();
        assert!(
            parse_with_limits(folded, limits().max_header_line(folded_line))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(folded, limits().max_header_line(folded_line - 1)),
            Error::LimitExceeded(Limit::HeaderLine)
        );
    }

    /// A 60 KiB head of many lines, as one real caller feeds it: every call
    /// with all bytes so far, one byte more each time. The parser must not
    /// rescan the whole buffer per call (that would be ~1.8 G byte visits,
    /// minutes in a debug build); linear work keeps this test fast.
    #[test]
    fn head_fed_byte_by_byte_costs_linear_time() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        let mut n = 0;
        while input.len() < 60 * 1024 {
            input.extend_from_slice(format!("X-Header-{n:04}: {:0>48}\r\n", n).as_bytes());
            n += 1;
        }
        input.extend_from_slice(b"\r\nbody");
        let lim = limits().max_headers(n).max_head_bytes(64 * 1024);
        let mut parser = HeadParser::new(lim);
        let end = input.len() - 4;
        for len in 1..end {
            assert_eq!(parser.parse(&input[..len]), Ok(None), "at {len}");
        }
        let (h, used) = parser.parse(&input).unwrap().unwrap();
        assert_eq!(used, end);
        assert_eq!(h.fields().len(), n);
        // Parses again only after a quarter more: under 6x the head in all.
        assert!(
            parser.work < 6 * end,
            "{} bytes parsed for a {end}-byte head",
            parser.work
        );
        let last = format!("X-Header-{:04}", n - 1);
        assert_eq!(h.header(&last), Some(format!("{:0>48}", n - 1).as_bytes()));
    }

    /// A malformed line is reported once it is complete, without waiting
    /// for the end of the head (a server could stall there forever).
    #[test]
    fn malformed_line_is_reported_when_it_completes() {
        let mut parser = HeadParser::new(Limits::default());
        assert_eq!(parser.parse(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        assert_eq!(parser.parse(b"HTTP/1.1 200 OK\r\nFo@"), Ok(None));
        assert_eq!(
            parser.parse(b"HTTP/1.1 200 OK\r\nFo@: x\r\n"),
            Err(Error::InvalidHeaderName)
        );
        let mut parser = HeadParser::new(Limits::default());
        assert_eq!(parser.parse(b"HTTP/1.1 200 OK\r"), Ok(None));
        assert_eq!(
            parser.parse(b"HTTP/1.1 200 OK\r\nA: b\r\n\x01: c\r\n"),
            Err(Error::InvalidHeaderName)
        );
    }

    /// Only whole empty lines are skipped before the status line: a lone CR
    /// is left to httparse, which refuses it.
    #[test]
    fn lone_cr_before_the_status_line_is_an_error() {
        assert_eq!(
            parse_with_limits(b"\rHTTP/1.1 200 OK\r\n\r\n", Limits::default()),
            Err(Error::InvalidNewLine)
        );
        let (h, used) = head(b"\n\r\nHTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.status(), used), (StatusCode::OK, 22));
    }

    /// The same for a head preceded by many empty lines, fed a line at a time.
    #[test]
    fn leading_empty_lines_fed_one_by_one_cost_linear_time() {
        let mut input = b"\r\n".repeat(30 * 1024);
        input.extend_from_slice(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
        let mut parser = HeadParser::new(Limits::default());
        for len in (2..input.len() - 26).step_by(2) {
            assert_eq!(parser.parse(&input[..len]), Ok(None), "at {len}");
        }
        let (h, used) = parser.parse(&input).unwrap().unwrap();
        assert_eq!((h.status(), used), (StatusCode::OK, input.len()));
    }

    #[test]
    fn debug_shows_no_header_values() {
        let input = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=s3cr3t\r\n\
            Authorization: Bearer t0k3n\r\n\r\n";
        let (h, _) = head(input);
        for debug in [
            format!("{h:?}"),
            format!("{:?}", h.fields()),
            format!("{h:#?}"),
        ] {
            assert!(
                !debug.contains("s3cr3t") && !debug.contains("t0k3n"),
                "{debug}"
            );
            assert!(
                debug.contains("Set-Cookie") && debug.contains("Authorization"),
                "{debug}"
            );
        }
        assert!(format!("{h:?}").contains("200"));
    }
}
