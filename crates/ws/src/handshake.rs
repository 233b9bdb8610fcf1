//! The opening handshake (RFC 6455 §4.1, §4.2.2): the request headers a
//! client sends and the checks on the server's 101 answer.
//!
//! [`ClientHandshake`] holds the nonce (`Sec-WebSocket-Key`), the offered
//! subprotocols and the optional permessage-deflate offer. Its
//! [`request_headers`](ClientHandshake::request_headers) are the
//! WebSocket-specific part of the GET request; the caller adds `Host`,
//! `Origin`, authentication and cookies. Once the response head is read,
//! [`validate`](ClientHandshake::validate) either fails the connection with
//! a [`HandshakeError`] or says what was [`Negotiated`].
//!
//! ```
//! use courier_ws::deflate::DeflateConfig;
//! use courier_ws::handshake::{ClientHandshake, accept_key};
//! use http::{HeaderMap, HeaderValue, StatusCode};
//!
//! let handshake = ClientHandshake::new()
//!     .protocols(["chat", "superchat"])?
//!     .deflate(DeflateConfig::default())?;
//! let request = handshake.request_headers();
//! assert_eq!(request["sec-websocket-version"], "13");
//! assert_eq!(request["sec-websocket-protocol"], "chat, superchat");
//!
//! // What a server answers:
//! let mut response = HeaderMap::new();
//! response.insert("upgrade", HeaderValue::from_static("websocket"));
//! response.insert("connection", HeaderValue::from_static("Upgrade"));
//! let accept = accept_key(handshake.key());
//! response.insert("sec-websocket-accept", accept.parse()?);
//! response.insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
//! response.insert("sec-websocket-extensions", HeaderValue::from_static("permessage-deflate"));
//!
//! let negotiated = handshake.validate(StatusCode::SWITCHING_PROTOCOLS, &response)?;
//! assert_eq!(negotiated.protocol.as_deref(), Some("chat"));
//! assert!(negotiated.deflate.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use sha1::{Digest, Sha1};

use crate::deflate::{DeflateConfig, DeflateParams, EXTENSION_NAME, negotiate_params};

/// The GUID RFC 6455 §1.3 appends to the key before hashing it into
/// `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why the opening handshake was refused: the caller's offer was invalid,
/// or the server's answer breaks RFC 6455 §4.1 or RFC 7692 §7.1 (the client
/// must then fail the connection).
///
/// Messages are lowercase and never hold the key, the accept value or
/// other header values beyond the names of subprotocols and extensions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The status was not 101 Switching Protocols.
    #[error("status {0} instead of 101")]
    Status(u16),
    /// No `Upgrade` header holding the token `websocket`.
    #[error("upgrade header missing or not naming websocket")]
    MissingUpgrade,
    /// No `Connection` header holding the token `upgrade`.
    #[error("connection header missing or not holding upgrade")]
    MissingConnection,
    /// `Sec-WebSocket-Accept` missing, repeated, or not derived from our
    /// key.
    #[error("sec-websocket-accept missing or not matching the key")]
    BadAccept,
    /// The server selected a subprotocol this side did not offer (or
    /// offered none).
    #[error("server selected subprotocol {0:?}, which was not offered")]
    ProtocolNotOffered(String),
    /// The `Sec-WebSocket-Protocol` answer is not exactly one token: empty,
    /// several values or header lines, or bytes a token cannot hold.
    #[error("sec-websocket-protocol answer is not a single subprotocol")]
    BadProtocol,
    /// The server accepted an extension this side did not offer.
    #[error("server accepted extension {0:?}, which was not offered")]
    ExtensionNotOffered(String),
    /// The `Sec-WebSocket-Extensions` answer is malformed, or its
    /// permessage-deflate parameters break RFC 7692 §7.1; the text says
    /// which rule.
    #[error("bad sec-websocket-extensions answer: {0}")]
    BadExtension(String),
    /// A subprotocol to offer is not a token (RFC 6455 §4.1: non-empty,
    /// visible ASCII without separators).
    #[error("subprotocol {0:?} is not a valid token")]
    InvalidProtocolToken(String),
    /// A subprotocol was offered twice (RFC 6455 §4.1 asks for unique
    /// values).
    #[error("subprotocol {0:?} offered twice")]
    DuplicateProtocol(String),
    /// A window size in a [`DeflateConfig`] outside 9 to 15.
    #[error("deflate window bits {0} outside 9 to 15")]
    InvalidWindowBits(u8),
}

/// What the server agreed to in its 101 answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The subprotocol the server selected, one of those offered; `None`
    /// when it selected none (which it may do even when some were
    /// offered).
    pub protocol: Option<String>,
    /// The permessage-deflate parameters, when the server accepted the
    /// offer.
    pub deflate: Option<DeflateParams>,
}

/// The client side of the opening handshake.
///
/// Created with a fresh random key by [`ClientHandshake::new`]; the
/// subprotocol and permessage-deflate offers are added with
/// [`protocols`](Self::protocols) and [`deflate`](Self::deflate). The same
/// value then checks the answer with [`validate`](Self::validate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The base64 of the 16-byte nonce.
    key: String,
    /// Offered subprotocols, in preference order.
    protocols: Vec<String>,
    /// The permessage-deflate offer, if any.
    deflate: Option<DeflateConfig>,
}

impl Default for ClientHandshake {
    fn default() -> Self {
        ClientHandshake::new()
    }
}

impl ClientHandshake {
    /// A handshake with a fresh `Sec-WebSocket-Key`: 16 bytes from the
    /// operating system's random source, base64-encoded (RFC 6455 §4.1
    /// asks for a nonce "randomly selected for each connection").
    ///
    /// No subprotocols and no extensions are offered until
    /// [`protocols`](Self::protocols) and [`deflate`](Self::deflate) say so.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails, as `rand`'s own
    /// OS-seeded constructors do; there is no safe fallback for a nonce.
    pub fn new() -> ClientHandshake {
        use rand::TryRngCore as _;
        let mut nonce = [0u8; 16];
        if let Err(err) = rand::rngs::OsRng.try_fill_bytes(&mut nonce) {
            panic!("the operating system's random source failed: {err}");
        }
        ClientHandshake::with_key(nonce)
    }

    /// A handshake with a chosen nonce, for tests and reproducible traces.
    /// Real connections use [`new`](Self::new): a predictable key lets
    /// caching intermediaries replay an old answer.
    pub fn with_key(nonce: [u8; 16]) -> ClientHandshake {
        ClientHandshake {
            key: STANDARD.encode(nonce),
            protocols: Vec::new(),
            deflate: None,
        }
    }

    /// Offers these subprotocols (`Sec-WebSocket-Protocol`, RFC 6455
    /// §11.3.4), most preferred first, replacing any earlier list. An
    /// empty list offers none.
    ///
    /// Subprotocol names are compared exactly (case-sensitively), as
    /// browsers do.
    ///
    /// Defaults to offering none.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidProtocolToken`] for a name that is not a
    /// token, [`HandshakeError::DuplicateProtocol`] for a name given twice.
    pub fn protocols<I, S>(mut self, protocols: I) -> Result<ClientHandshake, HandshakeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for protocol in protocols {
            let protocol = protocol.as_ref();
            if !is_token(protocol.as_bytes()) {
                return Err(HandshakeError::InvalidProtocolToken(protocol.to_owned()));
            }
            if list.iter().any(|seen| seen == protocol) {
                return Err(HandshakeError::DuplicateProtocol(protocol.to_owned()));
            }
            list.push(protocol.to_owned());
        }
        self.protocols = list;
        Ok(self)
    }

    /// Offers permessage-deflate (RFC 7692) with `config`, replacing any
    /// earlier offer.
    ///
    /// Defaults to not offering it.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::InvalidWindowBits`] when a window size in
    /// `config` is outside 9 to 15.
    pub fn deflate(mut self, config: DeflateConfig) -> Result<ClientHandshake, HandshakeError> {
        config.check()?;
        self.deflate = Some(config);
        Ok(self)
    }

    /// The `Sec-WebSocket-Key` value (base64 of the 16-byte nonce).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The offered subprotocols, most preferred first.
    pub fn offered_protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The permessage-deflate offer, if any.
    pub fn deflate_offer(&self) -> Option<&DeflateConfig> {
        self.deflate.as_ref()
    }

    /// The WebSocket headers of the opening request, as a new map; see
    /// [`write_headers`](Self::write_headers).
    pub fn request_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(6);
        self.write_headers(&mut headers);
        headers
    }

    /// Writes the WebSocket headers of the opening request into `headers`,
    /// replacing same-named ones: `Upgrade: websocket`,
    /// `Connection: Upgrade`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version: 13`, and, when offered,
    /// `Sec-WebSocket-Protocol` (a comma-separated list) and
    /// `Sec-WebSocket-Extensions`.
    ///
    /// `Host`, `Origin`, authentication and cookies are the caller's.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_KEY, field_value(&self.key));
        headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        if self.protocols.is_empty() {
            headers.remove(SEC_WEBSOCKET_PROTOCOL);
        } else {
            headers.insert(
                SEC_WEBSOCKET_PROTOCOL,
                field_value(&self.protocols.join(", ")),
            );
        }
        match &self.deflate {
            Some(config) => {
                headers.insert(SEC_WEBSOCKET_EXTENSIONS, field_value(&config.offer()));
            }
            None => {
                headers.remove(SEC_WEBSOCKET_EXTENSIONS);
            }
        }
    }

    /// Checks the server's answer (RFC 6455 §4.1, client requirements 1-6)
    /// and returns what was negotiated.
    ///
    /// In order: the status must be 101; `Upgrade` must hold the token
    /// `websocket` and `Connection` the token `upgrade` (both
    /// case-insensitive, in comma lists, over any number of header lines);
    /// `Sec-WebSocket-Accept` must appear once and equal
    /// [`accept_key`]`(key)`; `Sec-WebSocket-Extensions` may only accept
    /// permessage-deflate, only if offered, only once, and with parameters
    /// valid against the offer ([`negotiate`](crate::deflate::negotiate));
    /// `Sec-WebSocket-Protocol`, when present, must be exactly one of the
    /// offered subprotocols.
    ///
    /// # Errors
    ///
    /// The first rule broken, as a [`HandshakeError`].
    pub fn validate(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Negotiated, HandshakeError> {
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::Status(status.as_u16()));
        }
        if !any_line_contains(headers, &UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !any_line_contains(headers, &CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnection);
        }
        self.check_accept(headers)?;
        let deflate = self.check_extensions(headers)?;
        let protocol = self.check_protocol(headers)?;
        Ok(Negotiated { protocol, deflate })
    }

    /// `Sec-WebSocket-Accept`: one line, equal to the expected value.
    fn check_accept(&self, headers: &HeaderMap) -> Result<(), HandshakeError> {
        let mut lines = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        let (Some(accept), None) = (lines.next(), lines.next()) else {
            return Err(HandshakeError::BadAccept);
        };
        if trim_ows(accept.as_bytes()) != accept_key(&self.key).as_bytes() {
            return Err(HandshakeError::BadAccept);
        }
        Ok(())
    }

    /// `Sec-WebSocket-Extensions`: only an offered permessage-deflate, once.
    fn check_extensions(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<DeflateParams>, HandshakeError> {
        let mut extensions = Vec::new();
        for line in headers.get_all(SEC_WEBSOCKET_EXTENSIONS) {
            parse_extensions(line.as_bytes(), &mut extensions)?;
        }
        let mut deflate = None;
        for extension in &extensions {
            let offer = match &self.deflate {
                Some(offer) if extension.name.eq_ignore_ascii_case(EXTENSION_NAME) => offer,
                _ => return Err(HandshakeError::ExtensionNotOffered(extension.name.clone())),
            };
            if deflate.is_some() {
                return Err(HandshakeError::BadExtension(
                    "permessage-deflate accepted twice".to_owned(),
                ));
            }
            deflate = Some(negotiate_params(offer, &extension.params)?);
        }
        Ok(deflate)
    }

    /// `Sec-WebSocket-Protocol`: absent, or one line with one offered token.
    fn check_protocol(&self, headers: &HeaderMap) -> Result<Option<String>, HandshakeError> {
        let mut lines = headers.get_all(SEC_WEBSOCKET_PROTOCOL).iter();
        let selected = match (lines.next(), lines.next()) {
            (None, _) => return Ok(None),
            (Some(line), None) => trim_ows(line.as_bytes()),
            (Some(_), Some(_)) => return Err(HandshakeError::BadProtocol),
        };
        // A token holds no comma or space, so this also refuses lists.
        if !is_token(selected) {
            return Err(HandshakeError::BadProtocol);
        }
        // Tokens are ASCII.
        let selected = String::from_utf8_lossy(selected).into_owned();
        if self.protocols.contains(&selected) {
            Ok(Some(selected))
        } else {
            Err(HandshakeError::ProtocolNotOffered(selected))
        }
    }
}

/// The `Sec-WebSocket-Accept` value for `key`: the base64 of the SHA-1 of
/// the key followed by RFC 6455's GUID (§4.2.2, step 5.4).
///
/// ```
/// assert_eq!(
///     courier_ws::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
/// );
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(ACCEPT_GUID.as_bytes());
    STANDARD.encode(sha1.finalize())
}

/// A header value from text this module built out of base64, tokens,
/// digits, `;`, `,`, `=` and spaces, all of which a field value may hold.
fn field_value(text: &str) -> HeaderValue {
    // Unreachable fallback: every byte above is visible ASCII or a space.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// True when any line of header `name` holds `token` as a comma-list item,
/// compared ASCII-case-insensitively.
fn any_line_contains(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|line| {
        line.as_bytes()
            .split(|&b| b == b',')
            .any(|item| trim_ows(item).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// `tchar` (RFC 9110 §5.6.2), the bytes of a token.
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// True when `s` is a non-empty token.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// SP or HTAB.
const fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Strips optional whitespace from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
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

/// One element of a `Sec-WebSocket-Extensions` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub(crate) name: String,
    /// Its parameters, in order.
    pub(crate) params: Vec<ExtensionParam>,
}

/// One `;`-separated parameter of an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtensionParam {
    /// The parameter token.
    pub(crate) name: String,
    /// Its value: a token, or a quoted-string's unescaped content (which
    /// RFC 6455 §9.1 requires to be a token too); `None` when bare.
    pub(crate) value: Option<String>,
}

/// Parses one `Sec-WebSocket-Extensions` line (RFC 6455 §9.1), appending
/// its extensions to `into`:
///
/// ```text
/// extension-list = 1#extension
/// extension      = token *( OWS ";" OWS extension-param )
/// extension-param = token [ BWS "=" BWS ( token / quoted-string ) ]
/// ```
///
/// Empty list elements are skipped (RFC 9110 §5.6.1). Quoted-strings may
/// hold `,` and `;`; their unescaped content must be a token.
pub(crate) fn parse_extensions(
    line: &[u8],
    into: &mut Vec<Extension>,
) -> Result<(), HandshakeError> {
    let mut cursor = Cursor { rest: line };
    loop {
        cursor.skip_ows();
        match cursor.peek() {
            None => return Ok(()),
            Some(b',') => {
                cursor.bump();
                continue;
            }
            Some(_) => {}
        }
        let name = cursor.token().ok_or_else(malformed)?;
        let mut params = Vec::new();
        let mut more = true;
        loop {
            cursor.skip_ows();
            match cursor.peek() {
                None => {
                    more = false;
                    break;
                }
                Some(b',') => {
                    cursor.bump();
                    break;
                }
                Some(b';') => cursor.bump(),
                Some(_) => return Err(malformed()),
            }
            cursor.skip_ows();
            let param = cursor.token().ok_or_else(malformed)?;
            cursor.skip_ows();
            let value = if cursor.peek() == Some(b'=') {
                cursor.bump();
                cursor.skip_ows();
                let value = if cursor.peek() == Some(b'"') {
                    cursor.quoted_string().ok_or_else(malformed)?
                } else {
                    cursor.token().ok_or_else(malformed)?
                };
                if !is_token(value.as_bytes()) {
                    return Err(malformed());
                }
                Some(value)
            } else {
                None
            };
            params.push(ExtensionParam { name: param, value });
        }
        into.push(Extension { name, params });
        if !more {
            return Ok(());
        }
    }
}

/// The error for a line that does not follow the extension grammar.
fn malformed() -> HandshakeError {
    HandshakeError::BadExtension("malformed header".to_owned())
}

/// A position in a header line being parsed.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.bump();
        }
    }

    /// A non-empty token.
    fn token(&mut self) -> Option<String> {
        let len = self.rest.iter().take_while(|&&b| is_tchar(b)).count();
        if len == 0 {
            return None;
        }
        let (token, rest) = self.rest.split_at(len);
        self.rest = rest;
        // Tokens are ASCII.
        Some(String::from_utf8_lossy(token).into_owned())
    }

    /// A quoted-string (RFC 9110 §5.6.4), unescaped. Its content is later
    /// required to be a token, so only ASCII survives; other bytes fail.
    fn quoted_string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.bump();
        let mut value = Vec::new();
        loop {
            let b = self.peek()?;
            self.bump();
            match b {
                b'"' => return String::from_utf8(value).ok(),
                b'\\' => {
                    let escaped = self.peek()?;
                    if !(escaped == b'\t' || escaped >= 0x20) || escaped == 0x7f {
                        return None;
                    }
                    self.bump();
                    value.push(escaped);
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => value.push(b),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6455 §1.3 example nonce ("the sample nonce").
    const NONCE: [u8; 16] = *b"the sample nonce";
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn handshake() -> ClientHandshake {
        ClientHandshake::with_key(NONCE)
    }

    /// A valid 101 answer to `handshake()` plus `extra` header lines.
    fn answer(extra: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(UPGRADE, HeaderValue::from_static("websocket"));
        headers.append(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.append(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static(ACCEPT));
        for (name, value) in extra {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// `answer(extra)` with the lines of `name` replaced by `values`.
    fn answer_with(name: http::HeaderName, values: &[&str]) -> HeaderMap {
        let mut headers = answer(&[]);
        headers.remove(&name);
        for value in values {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn validate(
        handshake: &ClientHandshake,
        headers: &HeaderMap,
    ) -> Result<Negotiated, HandshakeError> {
        handshake.validate(StatusCode::SWITCHING_PROTOCOLS, headers)
    }

    #[test]
    fn rfc_accept_example() {
        assert_eq!(accept_key(KEY), ACCEPT);
        assert_eq!(handshake().key(), KEY);
    }

    #[test]
    fn new_keys_are_random_16_byte_nonces() {
        let a = ClientHandshake::new();
        let b = ClientHandshake::new();
        assert_ne!(a.key(), b.key());
        for handshake in [a, b] {
            let nonce = STANDARD.decode(handshake.key()).unwrap();
            assert_eq!(nonce.len(), 16);
            assert_eq!(handshake.key().len(), 24);
        }
    }

    #[test]
    fn request_headers_plain() {
        let headers = handshake().request_headers();
        assert_eq!(headers.len(), 4);
        assert_eq!(headers[UPGRADE], "websocket");
        assert_eq!(headers[CONNECTION], "Upgrade");
        assert_eq!(headers[SEC_WEBSOCKET_KEY], KEY);
        assert_eq!(headers[SEC_WEBSOCKET_VERSION], "13");
    }

    #[test]
    fn request_headers_with_protocols_and_deflate() {
        let handshake = handshake()
            .protocols(["chat", "v2.json"])
            .unwrap()
            .deflate(DeflateConfig::default())
            .unwrap();
        let headers = handshake.request_headers();
        assert_eq!(headers.len(), 6);
        assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "chat, v2.json");
        assert_eq!(
            headers[SEC_WEBSOCKET_EXTENSIONS],
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(handshake.offered_protocols(), ["chat", "v2.json"]);
        assert_eq!(handshake.deflate_offer(), Some(&DeflateConfig::default()));

        // write_headers replaces what the caller's map held.
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("h2c"));
        headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("old"));
        headers.insert(http::header::HOST, HeaderValue::from_static("example.com"));
        ClientHandshake::with_key(NONCE).write_headers(&mut headers);
        assert_eq!(headers[UPGRADE], "websocket");
        assert!(!headers.contains_key(SEC_WEBSOCKET_PROTOCOL));
        assert_eq!(headers[http::header::HOST], "example.com");
        assert_eq!(headers.len(), 5);
    }

    #[test]
    fn protocol_offers_are_checked() {
        assert!(handshake().protocols(Vec::<String>::new()).is_ok());
        assert!(
            handshake()
                .protocols(vec![String::from("a"), String::from("B")])
                .is_ok()
        );
        for bad in ["", "a b", "a,b", "chat\r\n", "é", "a/b", "\"q\""] {
            assert_eq!(
                handshake().protocols(["ok", bad]).unwrap_err(),
                HandshakeError::InvalidProtocolToken(bad.to_owned()),
                "{bad:?}"
            );
        }
        assert_eq!(
            handshake().protocols(["a", "b", "a"]).unwrap_err(),
            HandshakeError::DuplicateProtocol("a".into())
        );
        // Names are case-sensitive, so these are two.
        assert!(handshake().protocols(["chat", "Chat"]).is_ok());
        // A later list replaces an earlier one.
        let handshake = handshake()
            .protocols(["a"])
            .unwrap()
            .protocols(["b"])
            .unwrap();
        assert_eq!(handshake.offered_protocols(), ["b"]);
    }

    #[test]
    fn deflate_offers_are_checked() {
        for bits in [0, 8, 16] {
            let config = DeflateConfig::default().client_max_window_bits(Some(bits));
            assert_eq!(
                handshake().deflate(config).unwrap_err(),
                HandshakeError::InvalidWindowBits(bits)
            );
        }
    }

    #[test]
    fn good_answer() {
        let negotiated = validate(&handshake(), &answer(&[])).unwrap();
        assert_eq!(negotiated, Negotiated::default());
        // Spacing and case variants of the same answer.
        let headers = answer_with(UPGRADE, &["WebSocket"]);
        assert!(validate(&handshake(), &headers).is_ok());
        let mut headers = answer_with(CONNECTION, &["upgrade"]);
        headers.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&format!(" {ACCEPT} ")).unwrap(),
        );
        assert!(validate(&handshake(), &headers).is_ok());
    }

    #[test]
    fn status_must_be_101() {
        for status in [200, 204, 301, 400, 401, 403, 426, 500] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                handshake().validate(status, &answer(&[])),
                Err(HandshakeError::Status(status.as_u16()))
            );
        }
    }

    #[test]
    fn upgrade_header() {
        for ok in [
            &["websocket"][..],
            &["WEBSOCKET"],
            &["h2c, websocket"],
            &[" websocket ,foo"],
            &["foo", "websocket"],
        ] {
            let headers = answer_with(UPGRADE, ok);
            assert!(validate(&handshake(), &headers).is_ok(), "{ok:?}");
        }
        for bad in [
            &[][..],
            &[""],
            &["h2c"],
            &["websockets"],
            &["web socket"],
            &["websocket/13x"],
            &["\"websocket\""],
        ] {
            let headers = answer_with(UPGRADE, bad);
            assert_eq!(
                validate(&handshake(), &headers),
                Err(HandshakeError::MissingUpgrade),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn connection_header() {
        for ok in [
            &["Upgrade"][..],
            &["upgrade"],
            &["UPGRADE"],
            &["keep-alive, Upgrade"],
            &["Upgrade ,close"],
            &["keep-alive", "upgrade"],
        ] {
            let headers = answer_with(CONNECTION, ok);
            assert!(validate(&handshake(), &headers).is_ok(), "{ok:?}");
        }
        for bad in [
            &[][..],
            &[""],
            &["keep-alive"],
            &["upgraded"],
            &["keep-alive upgrade"],
            &["close", "keep-alive"],
        ] {
            let headers = answer_with(CONNECTION, bad);
            assert_eq!(
                validate(&handshake(), &headers),
                Err(HandshakeError::MissingConnection),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn accept_header() {
        let other_key = accept_key("AQIDBAUGBwgJCgsMDQ4PEA==");
        let lower = ACCEPT.to_ascii_lowercase();
        for bad in [
            &[][..],
            &[""],
            &[other_key.as_str()],
            &[KEY],
            &[lower.as_str()],
            &["s3pPLMBiTxaQ9kYGzzhZRbK+xOo"],
            &[ACCEPT, ACCEPT],
            &["s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
        ] {
            let headers = answer_with(SEC_WEBSOCKET_ACCEPT, bad);
            assert_eq!(
                validate(&handshake(), &headers),
                Err(HandshakeError::BadAccept),
                "{bad:?}"
            );
        }
        // The error text never shows the key or the values.
        let text = HandshakeError::BadAccept.to_string();
        assert!(!text.contains(KEY) && !text.contains(ACCEPT));
    }

    #[test]
    fn protocol_selection() {
        let offering = handshake().protocols(["chat", "superchat"]).unwrap();
        let selected = |values: &[&str], offer: &ClientHandshake| {
            validate(offer, &answer_with(SEC_WEBSOCKET_PROTOCOL, values)).map(|n| n.protocol)
        };
        assert_eq!(selected(&[], &offering), Ok(None));
        assert_eq!(selected(&["chat"], &offering), Ok(Some("chat".into())));
        assert_eq!(
            selected(&[" superchat "], &offering),
            Ok(Some("superchat".into()))
        );
        assert_eq!(
            selected(&["Chat"], &offering),
            Err(HandshakeError::ProtocolNotOffered("Chat".into()))
        );
        assert_eq!(
            selected(&["mqtt"], &offering),
            Err(HandshakeError::ProtocolNotOffered("mqtt".into()))
        );
        assert_eq!(
            selected(&["chat"], &handshake()),
            Err(HandshakeError::ProtocolNotOffered("chat".into()))
        );
        for bad in [
            &["chat, superchat"][..],
            &["chat,"],
            &["chat", "chat"],
            &["chat", "superchat"],
            &[""],
            &["chat superchat"],
            &["\"chat\""],
        ] {
            assert_eq!(
                selected(bad, &offering),
                Err(HandshakeError::BadProtocol),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extension_answers() {
        let plain = handshake();
        let deflating = handshake().deflate(DeflateConfig::default()).unwrap();
        let negotiate = |values: &[&str], offer: &ClientHandshake| {
            validate(offer, &answer_with(SEC_WEBSOCKET_EXTENSIONS, values)).map(|n| n.deflate)
        };

        assert_eq!(negotiate(&[], &deflating), Ok(None));
        assert_eq!(negotiate(&[""], &deflating), Ok(None));
        assert_eq!(negotiate(&[" , "], &plain), Ok(None));
        assert_eq!(
            negotiate(&["permessage-deflate"], &deflating),
            Ok(Some(DeflateParams::default()))
        );
        assert_eq!(
            negotiate(
                &["permessage-deflate; server_no_context_takeover; client_max_window_bits=12"],
                &deflating
            ),
            Ok(Some(DeflateParams {
                server_no_context_takeover: true,
                client_max_window_bits: 12,
                ..DeflateParams::default()
            }))
        );
        // A quoted value is unescaped before it is checked.
        assert_eq!(
            negotiate(
                &["permessage-deflate; server_max_window_bits=\"1\\0\""],
                &deflating
            ),
            Ok(Some(DeflateParams {
                server_max_window_bits: 10,
                ..DeflateParams::default()
            }))
        );

        assert_eq!(
            negotiate(&["permessage-deflate"], &plain),
            Err(HandshakeError::ExtensionNotOffered(
                "permessage-deflate".into()
            ))
        );
        assert_eq!(
            negotiate(&["x-webkit-deflate-frame"], &deflating),
            Err(HandshakeError::ExtensionNotOffered(
                "x-webkit-deflate-frame".into()
            ))
        );
        assert_eq!(
            negotiate(&["permessage-deflate, foo; bar=1"], &deflating),
            Err(HandshakeError::ExtensionNotOffered("foo".into()))
        );
        for twice in [
            &["permessage-deflate, permessage-deflate"][..],
            &["permessage-deflate", "permessage-deflate"],
            &["permessage-deflate; client_max_window_bits=10, permessage-deflate"],
        ] {
            assert_eq!(
                negotiate(twice, &deflating),
                Err(HandshakeError::BadExtension(
                    "permessage-deflate accepted twice".into()
                )),
                "{twice:?}"
            );
        }
        for (bad, why) in [
            (
                "permessage-deflate; foo",
                "unknown permessage-deflate parameter \"foo\"",
            ),
            (
                "permessage-deflate; client_max_window_bits",
                "client_max_window_bits without a value",
            ),
            (
                "permessage-deflate; client_max_window_bits=8",
                "client_max_window_bits=8",
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                "server_max_window_bits must be",
            ),
            (
                "permessage-deflate;; server_no_context_takeover",
                "malformed header",
            ),
            (
                "permessage-deflate server_no_context_takeover",
                "malformed header",
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10",
                "malformed header",
            ),
            (
                "permessage-deflate; server_max_window_bits=\"1 0\"",
                "malformed header",
            ),
            ("permessage-deflate; a=\"\\", "malformed header"),
            ("permessage-deflate; a=", "malformed header"),
            ("permessage-deflate=1", "malformed header"),
            (";permessage-deflate", "malformed header"),
        ] {
            match negotiate(&[bad], &deflating) {
                Err(HandshakeError::BadExtension(text)) => {
                    assert!(text.starts_with(why), "{bad}: {text}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn extension_parser() {
        // A quoted value may hold separators, but once unescaped it must be
        // a token.
        let mut refused = Vec::new();
        assert!(parse_extensions(b"foo; c=\"x\\\"y,z;\", bar", &mut refused).is_err());

        let mut parsed = Vec::new();
        parse_extensions(b" foo ; a ; b = 1 ;c=\"x\\yz\" , , bar,baz", &mut parsed).unwrap();
        let param = |name: &str, value: Option<&str>| ExtensionParam {
            name: name.into(),
            value: value.map(Into::into),
        };
        assert_eq!(
            parsed,
            [
                Extension {
                    name: "foo".into(),
                    params: vec![
                        param("a", None),
                        param("b", Some("1")),
                        param("c", Some("xyz"))
                    ],
                },
                Extension {
                    name: "bar".into(),
                    params: vec![]
                },
                Extension {
                    name: "baz".into(),
                    params: vec![]
                },
            ]
        );
    }

    #[test]
    fn arbitrary_header_bytes_never_panic() {
        let deflating = handshake()
            .protocols(["chat"])
            .unwrap()
            .deflate(DeflateConfig::default().server_max_window_bits(Some(10)))
            .unwrap();
        let alphabet = b"permessage-deflate;=,\" \\\t\x80\xffabc0123456789_";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = usize::try_from(seed % 40).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = usize::try_from((seed >> (i % 48)) & 0xff).unwrap() + i;
                    alphabet[pick % alphabet.len()]
                })
                .collect();
            let mut headers = answer(&[]);
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.insert(SEC_WEBSOCKET_EXTENSIONS, value.clone());
                headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
            }
            let _ = validate(&deflating, &headers);
            let _ = parse_extensions(&bytes, &mut Vec::new());
        }
    }

    #[test]
    fn errors_are_lowercase() {
        let errors = [
            HandshakeError::Status(404),
            HandshakeError::MissingUpgrade,
            HandshakeError::MissingConnection,
            HandshakeError::BadAccept,
            HandshakeError::ProtocolNotOffered("x".into()),
            HandshakeError::BadProtocol,
            HandshakeError::ExtensionNotOffered("x".into()),
            HandshakeError::BadExtension("malformed header".into()),
            HandshakeError::InvalidProtocolToken("x".into()),
            HandshakeError::DuplicateProtocol("x".into()),
            HandshakeError::InvalidWindowBits(8),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        }
    }
}
