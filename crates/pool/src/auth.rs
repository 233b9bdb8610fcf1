//! HTTP Basic credentials (aiohttp `BasicAuth`), used for
//! `Authorization` by courier-client and for `Proxy-Authorization` here.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;

use crate::ConfigError;

/// How the login and password are turned into bytes before base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Charset {
    /// ISO-8859-1, aiohttp's default: every character must be at most
    /// U+00FF. What most servers decode Basic credentials as.
    #[default]
    Latin1,
    /// UTF-8 (RFC 7617's `charset="UTF-8"`).
    Utf8,
}

/// Basic credentials: a login and a password.
///
/// `Debug` never shows the password.
///
/// ```
/// use courier_pool::BasicAuth;
///
/// let auth = BasicAuth::new("Aladdin", "open sesame").unwrap();
/// assert_eq!(auth.encode(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
/// assert!(!format!("{auth:?}").contains("sesame"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    login: String,
    password: String,
    charset: Charset,
}

impl BasicAuth {
    /// Credentials encoded as Latin-1.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the login contains `:` (the separator)
    /// or a control character, or the password a control character.
    pub fn new(login: impl Into<String>, password: impl Into<String>) -> Result<Self, ConfigError> {
        let (login, password) = (login.into(), password.into());
        if login.contains(':') {
            return Err(ConfigError::Invalid(
                "a Basic auth login cannot contain ':'".into(),
            ));
        }
        if login.chars().chain(password.chars()).any(char::is_control) {
            return Err(ConfigError::Invalid(
                "Basic auth credentials cannot contain control characters".into(),
            ));
        }
        Ok(Self {
            login,
            password,
            charset: Charset::Latin1,
        })
    }

    /// The same credentials, encoded with `charset`.
    pub fn with_charset(mut self, charset: Charset) -> Self {
        self.charset = charset;
        self
    }

    /// Credentials from a URL's percent-encoded userinfo (`user:pass@`),
    /// decoded. `None` when the URL has no userinfo.
    ///
    /// # Errors
    ///
    /// As [`BasicAuth::new`], and for percent-encoding that is not UTF-8.
    pub fn from_userinfo(authority: &str) -> Result<Option<Self>, ConfigError> {
        let Some((userinfo, _host)) = authority.rsplit_once('@') else {
            return Ok(None);
        };
        let (login, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        Self::new(percent_decode(login)?, percent_decode(password)?).map(Some)
    }

    /// The login.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The charset used by [`encode`](Self::encode).
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The header value: `Basic <base64(login:password)>`.
    ///
    /// With [`Charset::Latin1`], characters above U+00FF cannot be encoded
    /// and are sent as `?` (as Python's `encode('latin1', 'replace')`
    /// would); choose [`Charset::Utf8`] for such credentials.
    pub fn encode(&self) -> String {
        let plain = format!("{}:{}", self.login, self.password);
        let bytes: Vec<u8> = match self.charset {
            Charset::Utf8 => plain.into_bytes(),
            Charset::Latin1 => plain
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
        };
        format!("Basic {}", STANDARD.encode(bytes))
    }

    /// [`encode`](Self::encode) as a header value marked sensitive (never
    /// printed by `http`'s `Debug`, and kept out of HPACK tables).
    pub fn header_value(&self) -> HeaderValue {
        // base64 and "Basic " are always valid header bytes.
        let mut value = HeaderValue::from_str(&self.encode())
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("login", &self.login)
            .field("password", &"<hidden>")
            .field("charset", &self.charset)
            .finish()
    }
}

fn percent_decode(s: &str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConfigError::Invalid("bad percent-encoding in userinfo".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ConfigError::Invalid("userinfo is not UTF-8 once decoded".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7617_example_and_charsets() {
        let auth = BasicAuth::new("Aladdin", "open sesame").unwrap();
        assert_eq!(auth.encode(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        // RFC 7617 §2.1: "test" / "123£" in UTF-8.
        let auth = BasicAuth::new("test", "123\u{a3}").unwrap();
        assert_eq!(
            auth.clone().with_charset(Charset::Utf8).encode(),
            "Basic dGVzdDoxMjPCow=="
        );
        assert_eq!(auth.encode(), "Basic dGVzdDoxMjOj");
        assert!(auth.header_value().is_sensitive());
    }

    #[test]
    fn bad_credentials_are_refused() {
        assert!(BasicAuth::new("a:b", "c").is_err());
        assert!(BasicAuth::new("a", "b\r\nX-Injected: 1").is_err());
    }

    #[test]
    fn userinfo_is_percent_decoded() {
        let auth = BasicAuth::from_userinfo("us%40er:p%3Ass@proxy:3128")
            .unwrap()
            .unwrap();
        assert_eq!((auth.login(), auth.password()), ("us@er", "p:ss"));
        assert_eq!(BasicAuth::from_userinfo("proxy:3128").unwrap(), None);
        assert!(BasicAuth::from_userinfo("a:%zz@h").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let auth = BasicAuth::new("user", "hunter2").unwrap();
        let shown = format!("{auth:?}");
        assert!(shown.contains("user") && !shown.contains("hunter2"));
    }
}
