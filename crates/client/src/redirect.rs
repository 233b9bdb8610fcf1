//! Redirect rules (RFC 9110 §15.4) as pure functions, so that every rule is
//! tested without a server.

use std::fmt::Write as _;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};
use url::Url;

use crate::error::Error;

/// The default `max_redirects`: 10, as aiohttp.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// Whether `status` is a redirect this client follows.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The method of the next request, and whether the body goes along.
///
/// 303 turns everything but HEAD into a bodiless GET; 301 and 302 turn POST
/// into GET (what every browser and aiohttp do, allowed by RFC 9110
/// §15.4.2-3); 307 and 308 keep both method and body.
pub(crate) fn next_method(status: StatusCode, method: &Method) -> (Method, bool) {
    match status.as_u16() {
        303 if method != Method::HEAD => (Method::GET, false),
        301 | 302 if method == Method::POST => (Method::GET, false),
        _ => (method.clone(), true),
    }
}

/// Resolves a `Location` value against the URL that answered with it.
///
/// Bytes outside ASCII are percent-encoded as they are (servers send raw
/// UTF-8 or Latin-1 paths); the fragment of `base` is kept when the new URL
/// has none (RFC 9110 §10.2.2). Only http and https targets are followed.
pub(crate) fn resolve(base: &Url, location: &[u8]) -> Result<Url, Error> {
    let mut text = String::with_capacity(location.len());
    for &b in location {
        if b.is_ascii() && !b.is_ascii_control() {
            text.push(char::from(b));
        } else {
            let _ = write!(text, "%{b:02X}");
        }
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::redirect("empty Location header"));
    }
    let mut url = base
        .join(text)
        .map_err(|e| Error::redirect(format!("invalid Location {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::redirect(format!(
            "redirect to unsupported scheme {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::redirect(format!("redirect to {text:?} has no host")));
    }
    if url.fragment().is_none() {
        url.set_fragment(base.fragment());
    }
    Ok(url)
}

/// Whether two URLs share an origin: scheme, host and port (RFC 6454).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Removes the credentials a user set for one origin before the request
/// goes to another.
pub(crate) fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::COOKIE);
    headers.remove(header::PROXY_AUTHORIZATION);
}

/// Removes the headers that describe a body, when a redirect drops it
/// (RFC 9110 §15.4: a user agent changing to GET removes them).
pub(crate) fn strip_body_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_LANGUAGE,
        header::CONTENT_LOCATION,
        header::TRANSFER_ENCODING,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    headers.remove("digest");
    headers.remove("content-digest");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn methods_follow_rfc_9110() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        assert_eq!(next_method(s(303), &Method::POST), (Method::GET, false));
        assert_eq!(next_method(s(303), &Method::PUT), (Method::GET, false));
        assert_eq!(next_method(s(303), &Method::HEAD), (Method::HEAD, true));
        assert_eq!(next_method(s(301), &Method::POST), (Method::GET, false));
        assert_eq!(next_method(s(302), &Method::POST), (Method::GET, false));
        assert_eq!(next_method(s(302), &Method::PUT), (Method::PUT, true));
        assert_eq!(next_method(s(307), &Method::POST), (Method::POST, true));
        assert_eq!(next_method(s(308), &Method::DELETE), (Method::DELETE, true));
        for code in [300, 304, 305, 306, 200, 404] {
            assert!(!is_redirect(s(code)), "{code}");
        }
        for code in [301, 302, 303, 307, 308] {
            assert!(is_redirect(s(code)), "{code}");
        }
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base = url("http://a.test/x/y?q=1#frag");
        assert_eq!(
            resolve(&base, b"z").unwrap().as_str(),
            "http://a.test/x/z#frag"
        );
        assert_eq!(
            resolve(&base, b"/top").unwrap().as_str(),
            "http://a.test/top#frag"
        );
        assert_eq!(
            resolve(&base, b"?p=2").unwrap().as_str(),
            "http://a.test/x/y?p=2#frag"
        );
        assert_eq!(
            resolve(&base, b"//b.test/p").unwrap().as_str(),
            "http://b.test/p#frag"
        );
        assert_eq!(
            resolve(&base, b"https://c.test/#new").unwrap().as_str(),
            "https://c.test/#new"
        );
        assert_eq!(
            resolve(&base, b" /sp ").unwrap().as_str(),
            "http://a.test/sp#frag",
            "surrounding whitespace is not part of the URL"
        );
        assert_eq!(
            resolve(&base, "/caf\u{e9}".as_bytes()).unwrap().path(),
            "/caf%C3%A9"
        );
        assert_eq!(resolve(&base, b"/caf\xe9").unwrap().path(), "/caf%E9");
    }

    #[test]
    fn only_http_targets_are_followed() {
        let base = url("https://a.test/");
        for bad in [
            &b"ftp://a.test/"[..],
            b"javascript:alert(1)",
            b"file:///etc/passwd",
            b"",
            b"http://",
        ] {
            let err = resolve(&base, bad).unwrap_err();
            assert!(err.is_redirect(), "{bad:?}: {err}");
        }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            &url("http://a.test/x"),
            &url("http://a.test:80/y")
        ));
        assert!(!same_origin(
            &url("http://a.test/"),
            &url("https://a.test/")
        ));
        assert!(!same_origin(&url("http://a.test/"), &url("http://b.test/")));
        assert!(!same_origin(
            &url("http://a.test/"),
            &url("http://a.test:8080/")
        ));
        assert!(!same_origin(
            &url("http://a.test/"),
            &url("http://sub.a.test/")
        ));
    }

    #[test]
    fn credentials_and_body_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic eDp5".parse().unwrap());
        headers.insert(header::COOKIE, "a=b".parse().unwrap());
        headers.insert(header::PROXY_AUTHORIZATION, "Basic eDp5".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        headers.insert(header::ACCEPT, "*/*".parse().unwrap());
        strip_credentials(&mut headers);
        assert_eq!(headers.len(), 2);
        strip_body_headers(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
