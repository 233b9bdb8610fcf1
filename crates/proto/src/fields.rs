//! Header fields as received: one buffer plus offsets, in order, original case.

use std::fmt;
use std::ops::Range;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::chars::trim_ows;
use crate::error::{Error, Limit};

/// A byte range inside a [`Fields`] buffer. `u32` keeps a field to 8 bytes;
/// buffers are bounded by [`Limits`](crate::Limits) far below 4 GiB, and
/// longer ones are refused when they are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    pub(crate) fn new(range: Range<usize>) -> Span {
        // Callers build spans only inside buffers checked by `check_len`.
        Span {
            start: u32::try_from(range.start).unwrap_or(u32::MAX),
            end: u32::try_from(range.end).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSpan {
    name: Span,
    value: Span,
}

/// Header fields in the order received, names in their original case,
/// values without surrounding whitespace, all backed by one buffer.
///
/// This is what aiohttp calls `raw_headers`: nothing is merged, lowercased or
/// dropped. [`Fields::to_header_map`] converts to an [`http::HeaderMap`].
///
/// ```
/// use courier_proto::{HeadParser, Limits};
/// let input = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Id: 7\r\nset-cookie: b=2\r\n\r\n";
/// let (head, _) = HeadParser::new(Limits::default()).parse(input).unwrap().unwrap();
/// let names: Vec<&str> = head.fields().iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["Set-Cookie", "X-Id", "set-cookie"]);
/// let cookies: Vec<&[u8]> = head.fields().get_all("set-cookie").collect();
/// assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Fields {
    raw: Vec<u8>,
    spans: Vec<FieldSpan>,
}

impl Fields {
    /// Refuses buffers whose offsets would not fit a [`Span`].
    pub(crate) fn check_len(len: usize, limit: Limit) -> Result<(), Error> {
        if u32::try_from(len).is_err() {
            return Err(Error::LimitExceeded(limit));
        }
        Ok(())
    }

    /// Copies `input[start..end]` and records the fields httparse found in it.
    ///
    /// `headers` must borrow from `input`. Values are trimmed of OWS and any
    /// obs-fold (CRLF followed by whitespace, RFC 9112 §5.2) is replaced by
    /// spaces, as a user agent must before interpreting the value.
    pub(crate) fn from_parsed(
        input: &[u8],
        start: usize,
        end: usize,
        headers: &[httparse::Header<'_>],
        max_line: usize,
        limit: Limit,
    ) -> Result<Fields, Error> {
        Fields::check_len(end - start, limit)?;
        let mut raw = input[start..end].to_vec();
        let base = input.as_ptr() as usize + start;
        let mut spans = Vec::with_capacity(headers.len());
        let len = end - start;
        for h in headers {
            let name = sub_range(h.name.as_bytes(), base, len).ok_or(Error::InvalidHeaderName)?;
            // An empty value may not point into the buffer: place it after the name.
            let mut value = sub_range(h.value, base, len).unwrap_or(name.end..name.end);
            // The field line runs from the name to the end of the value.
            if value.end.max(name.end) - name.start > max_line {
                return Err(Error::LimitExceeded(Limit::HeaderLine));
            }
            let bytes = &mut raw[value.clone()];
            if has_line_break(bytes) {
                unfold(bytes);
            }
            let trimmed = trim_ows(&raw[value.clone()]);
            let lead = trimmed.as_ptr() as usize - (raw.as_ptr() as usize + value.start);
            value = value.start + lead..value.start + lead + trimmed.len();
            spans.push(FieldSpan {
                name: Span::new(name),
                value: Span::new(value),
            });
        }
        Ok(Fields { raw, spans })
    }

    /// The bytes the fields were parsed from, exactly as received (the
    /// whole head for a response, the trailer section for trailers), except
    /// that obs-fold line breaks are replaced by spaces.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The fields in order as `(name, value)`.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            fields: self,
            inner: self.spans.iter(),
        }
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        self.spans
            .iter()
            .find(|span| self.raw[span.name.range()].eq_ignore_ascii_case(name))
            .map(|span| &self.raw[span.value.range()])
    }

    /// The values of every field named `name` (ASCII case-insensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Names compare as bytes: no UTF-8 check per field on a lookup.
        self.spans
            .iter()
            .filter(move |span| self.raw[span.name.range()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|span| &self.raw[span.value.range()])
    }

    /// True when a field named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Converts to an [`http::HeaderMap`] (names lowercased, repeated names kept).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHeaderName`] or [`Error::InvalidHeaderValue`] if a
    /// field is outside what `http` accepts; fields produced by this crate's
    /// parser always convert.
    pub fn to_header_map(&self) -> Result<HeaderMap, Error> {
        let mut map = HeaderMap::with_capacity(self.len());
        for (name, value) in self.iter() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidHeaderName)?;
            let value = HeaderValue::from_bytes(value).map_err(|_| Error::InvalidHeaderValue)?;
            map.append(name, value);
        }
        Ok(map)
    }

    fn field(&self, span: &FieldSpan) -> (&str, &[u8]) {
        // Names were validated as tokens (ASCII) by httparse.
        let name = std::str::from_utf8(&self.raw[span.name.range()]).unwrap_or("");
        (name, &self.raw[span.value.range()])
    }
}

/// True when `bytes` holds a CR or LF, i.e. an obs-fold.
///
/// Every header value of every head goes through this, so it looks at eight
/// bytes at a time: a byte-at-a-time `any` was about half the cost of
/// parsing a 4 KiB head (and most values are too short for the compiler's
/// own vectorization to apply). A byte of `w ^ CRS` is zero exactly where
/// `w` holds a CR, and `(x - 0x0101..01) & !x & 0x8080..80` is non-zero
/// exactly when some byte of `x` is zero.
fn has_line_break(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const CRS: u64 = u64::from_ne_bytes([b'\r'; 8]);
    const LFS: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let (words, rest) = bytes.as_chunks::<8>();
    let found = words.iter().fold(0, |found, &word| {
        let w = u64::from_ne_bytes(word);
        found | zero_byte(w ^ CRS) | zero_byte(w ^ LFS)
    });
    found != 0 || rest.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// Replaces each obs-fold (a line break and the whitespace that continues
/// the line, RFC 9112 §5.2) with spaces, in place.
fn unfold(value: &mut [u8]) {
    let mut in_fold = false;
    for b in value {
        match *b {
            b'\r' | b'\n' => {
                *b = b' ';
                in_fold = true;
            }
            b' ' | b'\t' if in_fold => *b = b' ',
            _ => in_fold = false,
        }
    }
}

/// The range `part` occupies inside the buffer starting at address `base`
/// with length `len`, or `None` if it lies elsewhere.
fn sub_range(part: &[u8], base: usize, len: usize) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(part.len())?;
    (end <= len).then_some(start..end)
}

impl fmt::Debug for Fields {
    /// Lists names only: values may be credentials (`Set-Cookie`, `Authorization`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(name, _)| name))
            .finish()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`Fields`] as `(name, value)` pairs.
#[derive(Debug, Clone)]
pub struct FieldsIter<'a> {
    fields: &'a Fields,
    inner: std::slice::Iter<'a, FieldSpan>,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|span| self.fields.field(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::has_line_break;

    #[test]
    fn has_line_break_matches_a_byte_scan() {
        let naive = |s: &[u8]| s.iter().any(|&b| b == b'\r' || b == b'\n');
        let mut buf = [b'a'; 40];
        for len in 0..buf.len() {
            assert!(!has_line_break(&buf[..len]));
            for at in 0..len {
                // Neighbours of CR and LF, and bytes whose borrows could mislead a word test.
                for b in [
                    b'\r', b'\n', b'\t', 0x00, 0x0b, 0x0c, 0x0e, 0x80, 0x8a, 0x8d, 0xff,
                ] {
                    buf[at] = b;
                    assert_eq!(
                        has_line_break(&buf[..len]),
                        naive(&buf[..len]),
                        "{:?}",
                        &buf[..len]
                    );
                    buf[at] = b'a';
                }
            }
        }
    }
}
