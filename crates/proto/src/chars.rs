//! Character classes and list parsing from RFC 9110 §5.6.

/// `tchar` (RFC 9110 §5.6.2): the bytes a token (header name, method,
/// transfer coding, chunk extension name) may hold.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// True when `s` is a non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A byte allowed inside a field value we send: VCHAR, obs-text, SP or HTAB
/// (RFC 9110 §5.5). Everything else is a control byte (CR, LF and NUL among
/// them) and would let a value inject lines into the head.
pub(crate) const fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// SP or HTAB: optional whitespace (OWS) and bad whitespace (BWS).
pub(crate) const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips OWS from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Iterates the non-empty elements of a comma-separated list
/// (`#element`, RFC 9110 §5.6.1), each trimmed of OWS.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// True when `list` (a comma-separated header value) holds `token`,
/// compared ASCII-case-insensitively.
pub(crate) fn list_contains(list: &[u8], token: &str) -> bool {
    list_items(list).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token(b"Content-Length"));
        assert!(is_token(b"DCLK_imp"));
        assert!(is_token(b".et-Cookie"));
        assert!(!is_token(b""));
        assert!(!is_token(b"Fo@"));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
    }

    #[test]
    fn field_values() {
        assert!(
            b"text/html; q=0.9\t\xe9"
                .iter()
                .all(|&b| is_field_value_byte(b))
        );
        for bad in [b'\r', b'\n', 0, 0x7f, 0x01] {
            assert!(!is_field_value_byte(bad), "{bad:#x}");
        }
    }

    #[test]
    fn ows_and_lists() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        let items: Vec<_> = list_items(b" chunked , ,gzip,").collect();
        assert_eq!(items, [&b"chunked"[..], b"gzip"]);
        assert!(list_contains(b"keep-alive, Close", "close"));
        assert!(!list_contains(b"closed", "close"));
    }
}
