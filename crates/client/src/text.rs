//! Decoding response bodies to text, for `ClientResponse::text()`.
//!
//! Encodings and their labels are those of the WHATWG Encoding standard
//! (encoding_rs), not Python's codecs: `iso-8859-1`, `latin1` and `ascii`
//! all name windows-1252 (they differ from true ISO-8859-1 only in
//! 0x80..=0x9F, which windows-1252 maps to printable characters), and
//! `utf-16` names UTF-16LE.
//!
//! Which encoding [`decode`] uses, first match wins:
//!
//! 1. The `charset` parameter of the `Content-Type`, when it is a known
//!    label, decoded by the WHATWG *decode* algorithm: a byte order mark
//!    (UTF-8, UTF-16LE, UTF-16BE) overrides the label. That is what
//!    browsers do, and a BOM is far more reliable than a server's
//!    configuration.
//! 2. A byte order mark.
//! 3. For `application/json` and every `+json` type: UTF-8 (RFC 8259 §8.1).
//!    aiohttp does the same for `application/json` (and `rdap+json`).
//! 4. Otherwise a guess by chardetng over the whole body (no TLD hint,
//!    UTF-8 allowed), with UTF-8 for an empty or all-ASCII body (the text
//!    is the same in windows-1252, UTF-8 is the better name for it).
//!    aiohttp ≥ 3.8.6 no longer guesses and assumes UTF-8 there; a guess
//!    decodes legacy pages right and changes nothing for UTF-8 ones.
//!
//! Invalid sequences become U+FFFD and are reported in
//! [`Decoded::had_errors`]: the caller decides whether that is an error
//! (aiohttp's `text()` raises, like Python's `errors="strict"`).

use encoding_rs::{Encoding, UTF_8};

/// A body decoded to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// The text, with U+FFFD for each invalid sequence; without the BOM.
    pub(crate) text: String,
    /// The encoding actually used (the BOM's when a BOM decided it).
    pub(crate) encoding: &'static Encoding,
    /// True when some bytes were invalid in `encoding`.
    pub(crate) had_errors: bool,
}

/// The caller named an encoding that the Encoding standard does not know
/// (or one that it knows only as the "replacement" encoding, which decodes
/// everything to one U+FFFD: ISO-2022-KR, HZ-GB-2312...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown text encoding {label:?}")]
pub(crate) struct UnknownEncoding {
    /// The label as the caller gave it.
    pub(crate) label: String,
}

/// The encoding named by the `charset` parameter of a `Content-Type` value
/// (`text/html; charset="ISO-8859-1"`): the label is matched per the
/// Encoding standard (case-insensitive, surrounding whitespace ignored),
/// the value may be a quoted string. The first `charset` parameter counts.
/// `None` when there is none or its label is unknown.
pub(crate) fn charset_from_content_type(content_type: &[u8]) -> Option<&'static Encoding> {
    let value = parameters(content_type)
        .find(|(name, _)| name.eq_ignore_ascii_case(b"charset"))
        .map(|(_, value)| value)?;
    Encoding::for_label(&value)
}

/// Decodes `body` to text, choosing the encoding as the
/// [module docs](self) describe, from the response's `Content-Type` value
/// when it has one.
pub(crate) fn decode(body: &[u8], content_type: Option<&[u8]>) -> Decoded {
    if let Some(encoding) = content_type.and_then(charset_from_content_type) {
        // BOM sniffing first, then the label.
        let (text, encoding, had_errors) = encoding.decode(body);
        return decoded(text, encoding, had_errors);
    }
    if let Some((encoding, bom_length)) = Encoding::for_bom(body) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&body[bom_length..]);
        return decoded(text, encoding, had_errors);
    }
    let encoding = if content_type.is_some_and(is_json) {
        UTF_8
    } else {
        guess(body)
    };
    let (text, had_errors) = encoding.decode_without_bom_handling(body);
    decoded(text, encoding, had_errors)
}

/// Decodes `body` with the encoding the caller names by its label
/// (`"utf-8"`, `"latin1"`, `"windows-1252"`, `"shift_jis"`...; the
/// Encoding standard's labels, case-insensitive).
///
/// The caller's choice is final: no BOM sniffing, except that a BOM of the
/// named encoding itself is dropped (as Python's `utf-8-sig` and `utf-16`
/// codecs do).
pub(crate) fn decode_with_label(body: &[u8], label: &str) -> Result<Decoded, UnknownEncoding> {
    let encoding =
        Encoding::for_label_no_replacement(label.as_bytes()).ok_or_else(|| UnknownEncoding {
            label: label.to_owned(),
        })?;
    let (text, had_errors) = encoding.decode_with_bom_removal(body);
    Ok(decoded(text, encoding, had_errors))
}

fn decoded(
    text: std::borrow::Cow<'_, str>,
    encoding: &'static Encoding,
    had_errors: bool,
) -> Decoded {
    Decoded {
        text: text.into_owned(),
        encoding,
        had_errors,
    }
}

/// chardetng's guess for a body without a declared encoding or BOM.
fn guess(body: &[u8]) -> &'static Encoding {
    // All ASCII: chardetng would say windows-1252, the same text as UTF-8,
    // unless escapes make it ISO-2022-JP; only then is it worth asking.
    if body.is_ascii() && !body.contains(&0x1B) {
        return UTF_8;
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(body, true);
    match detector.guess(None, true) {
        encoding if encoding == encoding_rs::WINDOWS_1252 && body.is_ascii() => UTF_8,
        encoding => encoding,
    }
}

/// True for `application/json` and any `+json` media type.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() > 5
            && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json")
            && essence.contains(&b'/'))
}

/// The `name=value` parameters after the media type, quoted-string values
/// unquoted (backslash escapes removed). Malformed parameters are skipped.
fn parameters(content_type: &[u8]) -> impl Iterator<Item = (&[u8], Vec<u8>)> {
    let mut rest = match content_type.iter().position(|&b| b == b';') {
        Some(at) => &content_type[at + 1..],
        None => &[][..],
    };
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_ascii_start();
            if rest.is_empty() {
                return None;
            }
            let name_end = rest
                .iter()
                .position(|&b| b == b'=' || b == b';')
                .unwrap_or(rest.len());
            let name = rest[..name_end].trim_ascii();
            if rest.get(name_end) != Some(&b'=') {
                // A parameter without a value: skip it.
                rest = rest.get(name_end + 1..).unwrap_or_default();
                continue;
            }
            // Tolerant: whitespace around `=` is skipped.
            rest = rest[name_end + 1..].trim_ascii_start();
            let value = if rest.first() == Some(&b'"') {
                let mut value = Vec::new();
                let mut i = 1;
                while i < rest.len() {
                    match rest[i] {
                        b'"' => break,
                        b'\\' if i + 1 < rest.len() => {
                            value.push(rest[i + 1]);
                            i += 2;
                        }
                        b => {
                            value.push(b);
                            i += 1;
                        }
                    }
                }
                // Past the closing quote, then up to the next `;`.
                rest = rest.get(i + 1..).unwrap_or_default();
                let next = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
                rest = rest.get(next + 1..).unwrap_or_default();
                value
            } else {
                let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
                let value = rest[..end].trim_ascii().to_vec();
                rest = rest.get(end + 1..).unwrap_or_default();
                value
            };
            if !name.is_empty() {
                return Some((name, value));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{SHIFT_JIS, UTF_16BE, UTF_16LE, WINDOWS_1251, WINDOWS_1252};

    const RUSSIAN: &str = "Съешь же ещё этих мягких французских булок, да выпей чаю. \
        Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства. \
        В чащах юга жил бы цитрус? Да, но фальшивый экземпляр!";

    const JAPANESE: &str = "いろはにほへと ちりぬるを わかよたれそ つねならむ うゐのおくやま \
        けふこえて あさきゆめみし ゑひもせす。日本語の文章を正しく判定できるかどうかを確かめます。";

    fn ct(value: &str) -> Option<&[u8]> {
        Some(value.as_bytes())
    }

    #[test]
    fn charset_parameter_is_found() {
        let cases: [(&str, Option<&'static Encoding>); 9] = [
            ("text/html; charset=utf-8", Some(UTF_8)),
            ("text/html;charset=UTF-8", Some(UTF_8)),
            ("text/html; Charset=\"ISO-8859-1\"", Some(WINDOWS_1252)),
            (
                "text/html; charset = \" windows-1251 \" ; q=1",
                Some(WINDOWS_1251),
            ),
            (
                "text/plain; format=flowed; CHARSET=Shift_JIS",
                Some(SHIFT_JIS),
            ),
            (
                "multipart/x; boundary=\"a;charset=koi8-r\"; charset=utf-8",
                Some(UTF_8),
            ),
            ("text/plain; charset=klingon", None),
            ("text/plain", None),
            ("text/plain; charset=", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                charset_from_content_type(value.as_bytes()),
                expected,
                "{value}"
            );
        }
        // The first charset parameter counts.
        assert_eq!(
            charset_from_content_type(b"text/plain; charset=utf-8; charset=latin1"),
            Some(UTF_8)
        );
    }

    #[test]
    fn header_charset_latin1() {
        let d = decode(b"caf\xe9 \x80", ct("text/plain; charset=ISO-8859-1"));
        assert_eq!(d.text, "café €");
        assert_eq!(d.encoding, WINDOWS_1252);
        assert!(!d.had_errors);
    }

    #[test]
    fn quoted_uppercase_charset() {
        let (bytes, _, _) = WINDOWS_1251.encode(RUSSIAN);
        let d = decode(&bytes, ct("text/html; CHARSET=\"WINDOWS-1251\""));
        assert_eq!(d.text, RUSSIAN);
        assert_eq!(d.encoding, WINDOWS_1251);
    }

    #[test]
    fn bom_without_header() {
        let d = decode(b"\xef\xbb\xbfh\xc3\xa9", None);
        assert_eq!((d.text.as_str(), d.encoding), ("hé", UTF_8));
        let d = decode(b"\xff\xfeh\x00\xe9\x00", ct("text/plain"));
        assert_eq!((d.text.as_str(), d.encoding), ("hé", UTF_16LE));
        let d = decode(b"\xfe\xff\x00h\x00\xe9", None);
        assert_eq!((d.text.as_str(), d.encoding), ("hé", UTF_16BE));
        assert!(!d.had_errors);
    }

    #[test]
    fn bom_overrides_header_charset() {
        let d = decode(b"\xef\xbb\xbfh\xc3\xa9", ct("text/plain; charset=latin1"));
        assert_eq!((d.text.as_str(), d.encoding), ("hé", UTF_8));
        let d = decode(b"\xff\xfeh\x00", ct("text/plain; charset=utf-8"));
        assert_eq!((d.text.as_str(), d.encoding), ("h", UTF_16LE));
    }

    #[test]
    fn utf8_detected_without_charset() {
        let text = "naïve café — Grüße, 東京";
        let d = decode(text.as_bytes(), ct("text/plain"));
        assert_eq!((d.text.as_str(), d.encoding), (text, UTF_8));
        assert!(!d.had_errors);
    }

    #[test]
    fn ascii_and_empty_bodies_are_utf8() {
        assert_eq!(decode(b"plain ascii", None).encoding, UTF_8);
        assert_eq!(decode(b"", ct("text/html")).encoding, UTF_8);
        assert_eq!(decode(b"", None).text, "");
    }

    #[test]
    fn windows_1251_detected() {
        let (bytes, _, unmappable) = WINDOWS_1251.encode(RUSSIAN);
        assert!(!unmappable);
        let d = decode(&bytes, ct("text/html"));
        assert_eq!(d.encoding, WINDOWS_1251);
        assert_eq!(d.text, RUSSIAN);
        assert!(!d.had_errors);
    }

    #[test]
    fn shift_jis_detected() {
        let (bytes, _, unmappable) = SHIFT_JIS.encode(JAPANESE);
        assert!(!unmappable);
        let d = decode(&bytes, None);
        assert_eq!(d.encoding, SHIFT_JIS);
        assert_eq!(d.text, JAPANESE);
    }

    #[test]
    fn iso_2022_jp_detected() {
        let (bytes, encoding, _) = encoding_rs::ISO_2022_JP.encode(JAPANESE);
        assert_eq!(encoding, encoding_rs::ISO_2022_JP);
        assert!(bytes.is_ascii());
        let d = decode(&bytes, None);
        assert_eq!(d.encoding, encoding_rs::ISO_2022_JP);
        assert_eq!(d.text, JAPANESE);
    }

    #[test]
    fn json_defaults_to_utf8() {
        // Latin-1 bytes would be guessed as windows-1252; JSON is UTF-8.
        for value in [
            "application/json",
            "Application/JSON ; foo=bar",
            "application/problem+json",
        ] {
            let d = decode(b"{\"a\": \"caf\xe9\"}", ct(value));
            assert_eq!(d.encoding, UTF_8, "{value}");
            assert!(d.had_errors, "{value}");
            assert_eq!(d.text, "{\"a\": \"caf\u{FFFD}\"}");
        }
        // Without the JSON type the guess applies.
        let d = decode(b"{\"a\": \"caf\xe9\"}", ct("text/plain"));
        assert_eq!(
            (d.text.as_str(), d.had_errors),
            ("{\"a\": \"café\"}", false)
        );
        // A declared charset still wins for JSON.
        let d = decode(b"\"caf\xe9\"", ct("application/json; charset=latin1"));
        assert_eq!(d.text, "\"café\"");
        // So does a BOM.
        let d = decode(b"\xff\xfe1\x00", ct("application/json"));
        assert_eq!((d.text.as_str(), d.encoding), ("1", UTF_16LE));
    }

    #[test]
    fn unknown_header_charset_falls_back_to_detection() {
        let d = decode("é".as_bytes(), ct("text/plain; charset=x-unknown"));
        assert_eq!((d.text.as_str(), d.encoding), ("é", UTF_8));
    }

    #[test]
    fn invalid_bytes_are_flagged() {
        let d = decode(b"ok \xff\xfe!", ct("text/plain; charset=utf-8"));
        assert_eq!(d.text, "ok \u{FFFD}\u{FFFD}!");
        assert!(d.had_errors);
        let d = decode_with_label(b"\xc3", "utf-8").unwrap();
        assert_eq!((d.text.as_str(), d.had_errors), ("\u{FFFD}", true));
    }

    #[test]
    fn decode_with_label_uses_the_named_encoding() {
        let d = decode_with_label(b"caf\xe9", "latin1").unwrap();
        assert_eq!((d.text.as_str(), d.encoding), ("café", WINDOWS_1252));
        let d = decode_with_label(b"caf\xe9", " Windows-1252 ").unwrap();
        assert_eq!(d.text, "café");
        // Its own BOM is dropped; another encoding's BOM is just bytes.
        let d = decode_with_label(b"\xef\xbb\xbfx", "utf-8").unwrap();
        assert_eq!(d.text, "x");
        let d = decode_with_label(b"\xef\xbb\xbfx", "latin1").unwrap();
        assert_eq!(d.text, "ï»¿x");
    }

    #[test]
    fn unknown_label_is_an_error() {
        let err = decode_with_label(b"x", "klingon").unwrap_err();
        assert_eq!(err.label, "klingon");
        assert_eq!(err.to_string(), "unknown text encoding \"klingon\"");
        // Known to the standard only as the replacement encoding.
        assert!(decode_with_label(b"x", "iso-2022-kr").is_err());
        assert!(decode_with_label(b"x", "").is_err());
    }
}
