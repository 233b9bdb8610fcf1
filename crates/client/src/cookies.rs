//! The cookie jar: RFC 6265 cookies received in responses, sent back in
//! requests (aiohttp's `CookieJar`).
//!
//! A [`CookieJar`] stores the `Set-Cookie` header values of responses
//! ([`CookieJar::store_response_cookies`]) and computes the `Cookie` header
//! of a request ([`CookieJar::cookie_header`]). It follows RFC 6265:
//!
//! * parsing (§5.2): the name-value pair and the attributes `Expires`
//!   (with the §5.1.1 cookie-date algorithm, [`parse_cookie_date`]),
//!   `Max-Age` (which wins over `Expires`), `Domain`, `Path`, `Secure`,
//!   `HttpOnly`, and `SameSite` (RFC 6265bis, kept but not enforced: a
//!   client has no "site" to compare with). A cookie without `=` or with an
//!   empty name is ignored, as RFC 6265 says (RFC 6265bis would store it
//!   with an empty name);
//! * storage (§5.3): host-only cookies, `Domain` cookies that domain-match
//!   the request host, the public suffix check (a `Domain` that is a public
//!   suffix is rejected, unless it equals the request host, then the cookie
//!   is host-only), the default path, replacement (a cookie with the same
//!   name, domain and path replaces the old one and keeps its creation
//!   time), and expiry (an expired cookie deletes the one it replaces and is
//!   not stored);
//! * the `Cookie` header (§5.4): domain- and path-matching cookies, `Secure`
//!   ones only over `https` (and `wss`), longer paths first, then earlier
//!   creation.
//!
//! On top of RFC 6265 the jar has limits and a policy, set with
//! [`CookieJar::builder`]: the size of one cookie
//! ([`DEFAULT_MAX_COOKIE_SIZE`]), the number of cookies taken from one
//! response ([`DEFAULT_MAX_COOKIES_PER_RESPONSE`]), and what to do with
//! cookies from IP-address hosts ([`IpHosts`]).
//!
//! # Bytes that are not UTF-8, and control characters
//!
//! A `Set-Cookie` value that is not valid UTF-8 is **skipped** (not stored,
//! [`parse_set_cookie`] returns `None`): decoding it lossily would replace
//! the server's bytes, and sending the replacement back would corrupt the
//! cookie. A value containing a control character other than horizontal tab
//! is skipped too (RFC 6265bis §5.7): such a cookie could not be sent in a
//! `Cookie` header. No input makes the jar panic.
//!
//! # The public suffix list
//!
//! The list is the Mozilla Public Suffix List (MPL-2.0), vendored in
//! `data/public_suffix_list.dat` (its version line says which snapshot),
//! compiled into the crate and parsed once, on first use, into the
//! `publicsuffix::List` that `cookie_store` checks domains with. Refresh the
//! file from <https://publicsuffix.org/list/public_suffix_list.dat>.
//!
//! # Clocks
//!
//! Expiry is computed by the jar, not by `cookie_store` (whose cookies read
//! the system clock): every cookie is given to `cookie_store` as a session
//! cookie, and the jar keeps, beside it, its expiry time and creation order.
//! The `_at` methods take "now" as an argument so that tests and the
//! conformance runner can replay dated cases; the plain methods pass
//! [`SystemTime::now`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use cookie_store::{CookieDomain, CookieStore, RawCookie};
use http::HeaderValue;
use url::{Host, Url};

/// The largest cookie the jar stores by default, in bytes: the whole
/// `Set-Cookie` value (name, value and attributes). RFC 6265 §6.1 asks user
/// agents to support at least 4096 bytes per cookie; larger ones are
/// ignored.
pub const DEFAULT_MAX_COOKIE_SIZE: usize = 4096;

/// How many `Set-Cookie` headers of one response the jar considers by
/// default; further ones are ignored.
pub const DEFAULT_MAX_COOKIES_PER_RESPONSE: usize = 50;

/// Why a cookie was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// Cookies live only on `http`, `https`, `ws` and `wss` URLs with a host.
    #[error("cookies need an http, https, ws or wss URL with a host")]
    UnsupportedUrl,
    /// The cookie is malformed: what is wrong with it.
    #[error("invalid cookie: {0}")]
    Invalid(&'static str),
    /// The cookie is larger than the jar's limit.
    #[error("cookie of {size} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The cookie's size in bytes.
        size: usize,
        /// The jar's limit ([`CookieJarBuilder::max_cookie_size`]).
        max: usize,
    },
    /// The URL's host is an IP address and the jar's policy is
    /// [`IpHosts::Reject`].
    #[error("cookies from IP-address hosts are rejected by this jar")]
    IpHost,
    /// The `Domain` attribute does not domain-match the URL's host.
    #[error("the Domain attribute does not domain-match the host")]
    DomainMismatch,
    /// The `Domain` attribute is a public suffix (such as `co.uk`) other
    /// than the URL's host.
    #[error("the Domain attribute is a public suffix")]
    PublicSuffix,
}

/// What the jar does with cookies from hosts that are IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpHosts {
    /// RFC 6265: host-only cookies are accepted (sent back to that exact
    /// address only); a `Domain` attribute is accepted only when it equals
    /// the address. The default.
    #[default]
    HostOnly,
    /// No cookies from IP-address hosts at all: aiohttp's default
    /// `CookieJar(unsafe=False)`.
    Reject,
}

/// The `SameSite` attribute of a cookie (RFC 6265bis §5.6.7). Kept, not
/// enforced: a client library makes no cross-site requests of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None`.
    None,
}

/// One cookie: from [`CookieJar::cookies`] (a stored cookie) or from
/// [`parse_set_cookie`] (one `Set-Cookie` value, not yet scoped to a URL).
///
/// ```
/// use courier_client::cookies::parse_set_cookie;
///
/// let cookie = parse_set_cookie(b"id=42; Domain=.Example.com; Path=/app; Secure; HttpOnly")
///     .unwrap();
/// assert_eq!((cookie.name(), cookie.value()), ("id", "42"));
/// assert_eq!(cookie.domain(), Some("example.com"));
/// assert_eq!(cookie.path(), Some("/app"));
/// assert!(cookie.secure() && cookie.http_only() && !cookie.host_only());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    domain: Option<String>,
    host_only: bool,
    path: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    expires: Option<SystemTime>,
}

impl Cookie {
    /// The cookie's name (never empty).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cookie's value, as the server sent it (quotes included).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The domain the cookie is sent to. For a stored cookie, always set:
    /// the host it came from when [`host_only`](Self::host_only), else its
    /// `Domain` attribute. For a parsed `Set-Cookie`, the `Domain` attribute
    /// (lower-cased, without its leading dot; empty for `Domain=.`) or
    /// `None`.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the cookie is sent to its exact host only (no `Domain`
    /// attribute), rather than to subdomains of [`domain`](Self::domain)
    /// too.
    pub fn host_only(&self) -> bool {
        self.host_only
    }

    /// The cookie's path: for a stored cookie, always set (the `Path`
    /// attribute or the default path of the URL it came from); for a parsed
    /// `Set-Cookie`, the `Path` attribute if one was valid.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The `Secure` attribute: sent over `https` and `wss` only.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The `HttpOnly` attribute (kept; every request this crate makes is
    /// HTTP, so it does not restrict sending).
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// The `SameSite` attribute, if one with a known value was given.
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// When the cookie expires (from `Max-Age`, else `Expires`); `None` for
    /// a session cookie. For [`parse_set_cookie`], `Max-Age` counts from
    /// the time of parsing.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
}

/// Parses one `Set-Cookie` header value (RFC 6265 §5.2), for
/// `ClientResponse::cookies()`: the cookie as the response gave it, not
/// scoped to a URL (no default domain or path, no public suffix check).
///
/// Returns `None` when RFC 6265 says to ignore the value (no `=` in the
/// name-value pair, an empty name), when it is not UTF-8, or when it
/// contains a control character other than tab.
///
/// ```
/// use courier_client::cookies::{SameSite, parse_set_cookie};
///
/// let c = parse_set_cookie(b"theme=dark; Max-Age=60; SameSite=Lax").unwrap();
/// assert_eq!(c.same_site(), Some(SameSite::Lax));
/// assert!(c.expires().is_some());
/// assert!(c.domain().is_none() && c.host_only());
/// assert!(parse_set_cookie(b"no-equals-sign").is_none());
/// ```
pub fn parse_set_cookie(value: &[u8]) -> Option<Cookie> {
    let parsed = parse(value, SystemTime::now())?;
    let host_only = parsed.domain.is_none();
    Some(Cookie {
        name: parsed.name,
        value: parsed.value,
        domain: parsed.domain,
        host_only,
        path: parsed.path,
        secure: parsed.secure,
        http_only: parsed.http_only,
        same_site: parsed.same_site,
        expires: parsed.expires,
    })
}

/// Parses a cookie date with the algorithm of RFC 6265 §5.1.1, which
/// accepts the many date formats servers send in `Expires` (RFC 1123,
/// RFC 850, asctime, two-digit years, missing or wrong weekdays, ...).
/// Returns `None` when the algorithm fails.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use courier_client::cookies::parse_cookie_date;
///
/// let t = parse_cookie_date("Wed, 09-Jun-21 10:18:14 GMT").unwrap();
/// assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_623_233_894));
/// let asctime = parse_cookie_date("Sun Nov  6 08:49:37 1994");
/// assert_eq!(asctime, parse_cookie_date("Sunday, 06-Nov-94 08:49:37 GMT"));
/// assert_eq!(parse_cookie_date("31 Feb 2020 00:00:00"), None);
/// ```
pub fn parse_cookie_date(s: &str) -> Option<SystemTime> {
    let mut time = None;
    let mut day = None;
    let mut month = None;
    let mut year = None;
    for token in s
        .as_bytes()
        .split(|&b| is_date_delimiter(b))
        .filter(|t| !t.is_empty())
    {
        if time.is_none()
            && let Some(t) = date_time(token)
        {
            time = Some(t);
            continue;
        }
        if day.is_none()
            && let Some(d) = date_digits(token, 1, 2)
        {
            day = Some(d);
            continue;
        }
        if month.is_none()
            && let Some(m) = date_month(token)
        {
            month = Some(m);
            continue;
        }
        if year.is_none()
            && let Some(y) = date_digits(token, 2, 4)
        {
            year = Some(y);
        }
    }
    let ((hour, minute, second), day, month, mut year) = (time?, day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    system_time_from_unix(secs)
}

/// delimiter = %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E
fn is_date_delimiter(b: u8) -> bool {
    matches!(b, 0x09 | 0x20..=0x2F | 0x3B..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E)
}

/// `min*maxDIGIT ( non-digit *OCTET )`: the leading digits' value.
fn date_digits(token: &[u8], min: usize, max: usize) -> Option<u32> {
    let n = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    Some(
        token[..n]
            .iter()
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0')),
    )
}

/// `time-field ":" time-field ":" time-field ( non-digit *OCTET )` with
/// `time-field = 1*2DIGIT`.
fn date_time(token: &[u8]) -> Option<(u32, u32, u32)> {
    let mut rest = token;
    let mut fields = [0u32; 3];
    for (i, field) in fields.iter_mut().enumerate() {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=2).contains(&n) {
            return None;
        }
        *field = rest[..n]
            .iter()
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'));
        rest = &rest[n..];
        if i < 2 {
            rest = rest.strip_prefix(b":")?;
        }
    }
    // After the third field: the end, or a non-digit (the digits were
    // counted greedily, so the next byte is not a digit).
    Some((fields[0], fields[1], fields[2]))
}

/// `month = ( "jan" / ... / "dec" ) *OCTET`, case-insensitive.
fn date_month(token: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let prefix = token.get(..3)?;
    (1..)
        .zip(MONTHS)
        .find(|(_, m)| prefix.eq_ignore_ascii_case(&m[..]))
        .map(|(i, _)| i)
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn system_time_from_unix(secs: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// The latest expiry the jar represents: 9999-12-31T23:59:59Z (RFC 6265
/// §5.2.1 and §5.2.2 clamp to "the latest date that can be represented").
fn latest_expiry() -> SystemTime {
    system_time_from_unix(253_402_300_799).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The earliest expiry: 1601-01-01T00:00:00Z, the first date the cookie-date
/// algorithm accepts (what `Max-Age=0` and negative values set).
fn earliest_expiry() -> SystemTime {
    system_time_from_unix(-11_644_473_600).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A `Set-Cookie` value parsed by RFC 6265 §5.2, with the attributes that
/// apply (the last of each kind) resolved.
#[derive(Debug)]
struct Parsed {
    name: String,
    value: String,
    /// The last non-empty `Domain` attribute, lower-cased, one leading dot
    /// removed (may be empty for `Domain=.`).
    domain: Option<String>,
    /// The last `Path` attribute, `None` when it was missing or did not
    /// start with `/` (then the default path applies).
    path: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    /// `Max-Age` if given, else `Expires`; `None` for a session cookie.
    expires: Option<SystemTime>,
}

/// Whitespace as RFC 6265 trims it: SP and HTAB.
fn trim_wsp(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn parse(bytes: &[u8], now: SystemTime) -> Option<Parsed> {
    let s = std::str::from_utf8(bytes).ok()?;
    if s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7F) {
        return None;
    }
    let (pair, attributes) = match s.find(';') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (trim_wsp(name), trim_wsp(value));
    if name.is_empty() {
        return None;
    }
    let mut parsed = Parsed {
        name: name.to_owned(),
        value: value.to_owned(),
        domain: None,
        path: None,
        secure: false,
        http_only: false,
        same_site: None,
        expires: None,
    };
    let mut max_age = None;
    let mut expires = None;
    for av in attributes.split(';') {
        let (attr, value) = match av.split_once('=') {
            Some((a, v)) => (trim_wsp(a), trim_wsp(v)),
            None => (trim_wsp(av), ""),
        };
        if attr.eq_ignore_ascii_case("expires") {
            if let Some(t) = parse_cookie_date(value) {
                expires = Some(t);
            }
        } else if attr.eq_ignore_ascii_case("max-age") {
            if let Some(t) = parse_max_age(value, now) {
                max_age = Some(t);
            }
        } else if attr.eq_ignore_ascii_case("domain") {
            if !value.is_empty() {
                let value = value.strip_prefix('.').unwrap_or(value);
                parsed.domain = Some(value.to_ascii_lowercase());
            }
        } else if attr.eq_ignore_ascii_case("path") {
            parsed.path = value.starts_with('/').then(|| value.to_owned());
        } else if attr.eq_ignore_ascii_case("secure") {
            parsed.secure = true;
        } else if attr.eq_ignore_ascii_case("httponly") {
            parsed.http_only = true;
        } else if attr.eq_ignore_ascii_case("samesite") {
            parsed.same_site = if value.eq_ignore_ascii_case("strict") {
                Some(SameSite::Strict)
            } else if value.eq_ignore_ascii_case("lax") {
                Some(SameSite::Lax)
            } else if value.eq_ignore_ascii_case("none") {
                Some(SameSite::None)
            } else {
                None
            };
        }
    }
    parsed.expires = max_age.or(expires);
    Some(parsed)
}

/// RFC 6265 §5.2.2: `None` when the attribute is to be ignored.
fn parse_max_age(value: &str, now: SystemTime) -> Option<SystemTime> {
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Saturating: a delta longer than the latest date is clamped anyway.
    let delta = digits.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    if negative || delta == 0 {
        return Some(earliest_expiry());
    }
    let latest = latest_expiry();
    Some(
        now.checked_add(Duration::from_secs(delta))
            .map_or(latest, |t| t.min(latest)),
    )
}

/// The public suffix list, parsed on first use.
fn public_suffix_list() -> Option<&'static publicsuffix::List> {
    static LIST: OnceLock<Option<publicsuffix::List>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/public_suffix_list.dat")
            .parse::<publicsuffix::List>()
            .ok()
    })
    .as_ref()
}

/// Whether `domain` (lower-case ASCII) is listed as a public suffix.
fn is_public_suffix(domain: &str) -> bool {
    // Fail open only if the vendored list does not parse, which a unit test
    // rules out.
    public_suffix_list()
        .is_some_and(|list| CookieDomain::Suffix(domain.to_owned()).is_public_suffix(list))
}

/// RFC 6265 §5.1.3: does `host` domain-match `domain`?
fn domain_match(domain: &str, host: &str, host_is_ip: bool) -> bool {
    domain == host
        || (!host_is_ip
            && host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// RFC 6265 §5.1.2 canonicalization of a `Domain` attribute (already
/// lower-cased, leading dot removed): non-ASCII names become A-labels.
/// `None` when it is not a valid name, so it matches no host.
fn canonical_domain(domain: &str) -> Option<String> {
    if domain.is_ascii() {
        return Some(domain.to_owned());
    }
    match Host::parse(domain).ok()? {
        Host::Domain(d) => Some(d),
        _ => None,
    }
}

/// The URL cookies are stored and matched against: `ws` as `http`, `wss`
/// as `https` (for `cookie_store`, whose `HttpOnly` check wants an `http`
/// scheme), with whether the scheme is secure. `None` for other schemes and
/// for URLs without a host.
fn cookie_url(url: &Url) -> Option<(std::borrow::Cow<'_, Url>, bool)> {
    url.host_str()?;
    let (scheme, secure) = match url.scheme() {
        "http" => return Some((std::borrow::Cow::Borrowed(url), false)),
        "https" => return Some((std::borrow::Cow::Borrowed(url), true)),
        "ws" => ("http", false),
        "wss" => ("https", true),
        _ => return None,
    };
    let mut url = url.clone();
    url.set_scheme(scheme).ok()?;
    Some((std::borrow::Cow::Owned(url), secure))
}

/// What the jar keeps beside a `cookie_store` cookie.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Creation order (RFC 6265 §5.3 step 11 keeps it on replacement).
    seq: u64,
    expires: Option<SystemTime>,
    host_only: bool,
    same_site: Option<SameSite>,
}

/// A stored cookie's identity: domain, path, name (the keys `cookie_store`
/// files it under).
type Key = (String, String, String);

#[derive(Debug, Default)]
struct Inner {
    /// Every cookie as a session cookie: matching and storage.
    store: CookieStore,
    /// Expiry and creation order of every cookie in `store`.
    meta: HashMap<Key, Meta>,
    next_seq: u64,
}

impl Inner {
    /// Removes the cookies that expired by `now` (RFC 6265 §5.3: "the user
    /// agent MUST evict all expired cookies").
    fn evict_expired(&mut self, now: SystemTime) {
        let expired: Vec<Key> = self
            .meta
            .iter()
            .filter(|(_, m)| m.expires.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &Key) {
        self.meta.remove(key);
        self.store.remove(&key.0, &key.1, &key.2);
    }
}

/// What storing one cookie did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The cookie is in the jar (new, or replacing one).
    Kept,
    /// The cookie had expired: it removed the one it replaces, if any.
    Expired,
}

/// The jar's policy, set by [`CookieJarBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    ip_hosts: IpHosts,
    max_cookie_size: usize,
    max_cookies_per_response: usize,
    public_suffix_check: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            ip_hosts: IpHosts::HostOnly,
            max_cookie_size: DEFAULT_MAX_COOKIE_SIZE,
            max_cookies_per_response: DEFAULT_MAX_COOKIES_PER_RESPONSE,
            public_suffix_check: true,
        }
    }
}

/// A thread-safe RFC 6265 cookie jar (aiohttp's `CookieJar`), shared by the
/// requests of a session.
///
/// ```
/// use courier_client::cookies::CookieJar;
/// use url::Url;
///
/// let jar = CookieJar::new();
/// let login = Url::parse("https://shop.example.com/account/login").unwrap();
/// let stored = jar.store_response_cookies(
///     &login,
///     [
///         &b"session=abc; Path=/; Secure; HttpOnly"[..],
///         b"lang=en; Domain=example.com; Path=/",
///         b"cart=1",
///     ],
/// );
/// assert_eq!(stored, 3);
///
/// // `cart` has the default path /account; `session` is Secure.
/// let page = Url::parse("https://shop.example.com/account/orders").unwrap();
/// assert_eq!(jar.cookie_header(&page).unwrap(), "cart=1; session=abc; lang=en");
/// let other = Url::parse("http://www.example.com/").unwrap();
/// assert_eq!(jar.cookie_header(&other).unwrap(), "lang=en");
/// assert!(jar.cookie_header(&Url::parse("http://example.org/").unwrap()).is_none());
/// ```
pub struct CookieJar {
    inner: Mutex<Inner>,
    policy: Policy,
}

impl Default for CookieJar {
    fn default() -> Self {
        CookieJar::new()
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and values stay out of logs: they are often credentials.
        let mut d = f.debug_struct("CookieJar");
        match self.inner.try_lock() {
            Ok(inner) => d.field("cookies", &inner.meta.len()),
            Err(_) => d.field("cookies", &format_args!("<locked>")),
        };
        d.field("ip_hosts", &self.policy.ip_hosts)
            .field("max_cookie_size", &self.policy.max_cookie_size)
            .field(
                "max_cookies_per_response",
                &self.policy.max_cookies_per_response,
            )
            .field("public_suffix_check", &self.policy.public_suffix_check)
            .finish()
    }
}

impl CookieJar {
    /// An empty jar with the default policy: public suffix check on,
    /// [`IpHosts::HostOnly`], [`DEFAULT_MAX_COOKIE_SIZE`] and
    /// [`DEFAULT_MAX_COOKIES_PER_RESPONSE`].
    pub fn new() -> CookieJar {
        CookieJar::with_policy(Policy::default())
    }

    /// A builder for a jar with another policy.
    ///
    /// ```
    /// use courier_client::cookies::{CookieJar, IpHosts};
    /// use url::Url;
    ///
    /// // aiohttp's default CookieJar(unsafe=False): nothing from IP hosts.
    /// let jar = CookieJar::builder().ip_hosts(IpHosts::Reject).build();
    /// let url = Url::parse("http://127.0.0.1:8080/").unwrap();
    /// assert_eq!(jar.store_response_cookies(&url, [&b"a=b"[..]]), 0);
    /// ```
    pub fn builder() -> CookieJarBuilder {
        CookieJarBuilder {
            policy: Policy::default(),
        }
    }

    fn with_policy(policy: Policy) -> CookieJar {
        CookieJar {
            inner: Mutex::new(Inner::default()),
            policy,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The jar's invariants hold between statements that can panic, so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the `Set-Cookie` header values received in a response from
    /// `url` (RFC 6265 §5.2 and §5.3, with the jar's policy), and returns
    /// how many were stored. Values the RFC or the policy rejects are
    /// ignored, as are the values after the first
    /// [`max_cookies_per_response`](CookieJarBuilder::max_cookies_per_response).
    /// An expired cookie (`Max-Age=0`, a past `Expires`) deletes the cookie
    /// it replaces and does not count as stored.
    ///
    /// ```
    /// use courier_client::cookies::CookieJar;
    /// use http::{HeaderMap, header::SET_COOKIE};
    /// use url::Url;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.append(SET_COOKIE, "a=1".parse().unwrap());
    /// headers.append(SET_COOKIE, "b=2; Max-Age=3600".parse().unwrap());
    /// let jar = CookieJar::new();
    /// let url = Url::parse("http://example.com/").unwrap();
    /// let values = headers.get_all(SET_COOKIE).iter().map(|v| v.as_bytes());
    /// assert_eq!(jar.store_response_cookies(&url, values), 2);
    /// ```
    pub fn store_response_cookies<'a>(
        &self,
        url: &Url,
        set_cookie: impl IntoIterator<Item = &'a [u8]>,
    ) -> usize {
        // Most responses set no cookie: skip the clock and the lock.
        let mut set_cookie = set_cookie.into_iter().peekable();
        if set_cookie.peek().is_none() {
            return 0;
        }
        self.store_response_cookies_at(url, set_cookie, SystemTime::now())
    }

    /// [`store_response_cookies`](Self::store_response_cookies) at the time
    /// `now` (`Max-Age` counts from it; cookies that expired by then are
    /// evicted).
    pub fn store_response_cookies_at<'a>(
        &self,
        url: &Url,
        set_cookie: impl IntoIterator<Item = &'a [u8]>,
        now: SystemTime,
    ) -> usize {
        let mut inner = self.lock();
        inner.evict_expired(now);
        set_cookie
            .into_iter()
            .take(self.policy.max_cookies_per_response)
            .filter(|value| self.store_one(&mut inner, url, value, now, true) == Ok(Stored::Kept))
            .count()
    }

    /// Stores one raw `Set-Cookie` value the user supplies, as if received
    /// from `url`; the error says why it was rejected. A cookie that is
    /// already expired deletes the one it replaces and returns `Ok`.
    ///
    /// ```
    /// use courier_client::cookies::{CookieError, CookieJar};
    /// use url::Url;
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("https://www.example.co.uk/").unwrap();
    /// jar.add_set_cookie(&url, "pref=1; Domain=example.co.uk").unwrap();
    /// assert_eq!(jar.add_set_cookie(&url, "x=1; Domain=co.uk"), Err(CookieError::PublicSuffix));
    /// ```
    pub fn add_set_cookie(&self, url: &Url, set_cookie: &str) -> Result<(), CookieError> {
        let now = SystemTime::now();
        let mut inner = self.lock();
        inner.evict_expired(now);
        self.store_one(&mut inner, url, set_cookie.as_bytes(), now, true)
            .map(drop)
    }

    /// Adds a cookie the user gives for one URL (aiohttp's
    /// `ClientSession(cookies=...)`, but scoped): a host-only session cookie
    /// for `url`'s host with path `/`, sent to that host only (any port and
    /// scheme, as cookies are). It replaces a cookie of the same name,
    /// domain and path.
    ///
    /// The name must be non-empty and free of `=`, `;`, control characters
    /// and surrounding whitespace; the value free of `;`, control characters
    /// and surrounding whitespace.
    ///
    /// ```
    /// use courier_client::cookies::CookieJar;
    /// use url::Url;
    ///
    /// let jar = CookieJar::new();
    /// let api = Url::parse("https://api.example.com/v1/items").unwrap();
    /// jar.add_cookie(&api, "token", "s3cret").unwrap();
    /// assert_eq!(jar.cookie_header(&api).unwrap(), "token=s3cret");
    /// // Not sent to other hosts, subdomains included.
    /// let other = Url::parse("https://eu.api.example.com/").unwrap();
    /// assert!(jar.cookie_header(&other).is_none());
    /// ```
    pub fn add_cookie(&self, url: &Url, name: &str, value: &str) -> Result<(), CookieError> {
        let bad = |s: &str, extra: &[char]| {
            s.chars()
                .any(|c| (c.is_control() && c != '\t') || extra.contains(&c))
                || trim_wsp(s).len() != s.len()
        };
        if name.is_empty() || bad(name, &['=', ';']) {
            return Err(CookieError::Invalid(
                "the name must be non-empty, without `=`, `;`, control characters or surrounding whitespace",
            ));
        }
        if bad(value, &[';']) {
            return Err(CookieError::Invalid(
                "the value must be without `;`, control characters or surrounding whitespace",
            ));
        }
        let set_cookie = format!("{name}={value}; Path=/");
        // The limit applies to the name and value the user gave, not to the
        // attributes added here.
        let size = name.len() + value.len();
        if size > self.policy.max_cookie_size {
            return Err(CookieError::TooLarge {
                size,
                max: self.policy.max_cookie_size,
            });
        }
        let now = SystemTime::now();
        let mut inner = self.lock();
        inner.evict_expired(now);
        self.store_one(&mut inner, url, set_cookie.as_bytes(), now, false)
            .map(drop)
    }

    /// RFC 6265 §5.3 for one `Set-Cookie` value, with the policy's checks
    /// (the size limit only with `check_size`).
    fn store_one(
        &self,
        inner: &mut Inner,
        url: &Url,
        raw: &[u8],
        now: SystemTime,
        check_size: bool,
    ) -> Result<Stored, CookieError> {
        let (url, _) = cookie_url(url).ok_or(CookieError::UnsupportedUrl)?;
        let host = url.host_str().ok_or(CookieError::UnsupportedUrl)?;
        let host_is_ip = !matches!(url.host(), Some(Host::Domain(_)));
        if host_is_ip && self.policy.ip_hosts == IpHosts::Reject {
            return Err(CookieError::IpHost);
        }
        if check_size && raw.len() > self.policy.max_cookie_size {
            return Err(CookieError::TooLarge {
                size: raw.len(),
                max: self.policy.max_cookie_size,
            });
        }
        let parsed = parse(raw, now).ok_or(CookieError::Invalid(
            "not a name=value pair with a non-empty name, not UTF-8, or with control characters",
        ))?;

        // Steps 4 to 6: the domain.
        let mut domain = match parsed.domain.as_deref() {
            None | Some("") => None,
            Some(d) => Some(canonical_domain(d).ok_or(CookieError::DomainMismatch)?),
        };
        if self.policy.public_suffix_check
            && let Some(d) = &domain
            && is_public_suffix(d)
        {
            if d == host {
                domain = None;
            } else {
                return Err(CookieError::PublicSuffix);
            }
        }
        if let Some(d) = &domain
            && !domain_match(d, host, host_is_ip)
        {
            return Err(CookieError::DomainMismatch);
        }

        // Steps 7 to 9: path and flags; expiry is kept beside the cookie.
        let mut raw_cookie = RawCookie::new(parsed.name.clone(), parsed.value);
        if let Some(path) = parsed.path {
            raw_cookie.set_path(path);
        }
        if parsed.secure {
            raw_cookie.set_secure(true);
        }
        if parsed.http_only {
            raw_cookie.set_http_only(true);
        }
        let mut cookie = cookie_store::Cookie::try_from_raw_cookie(&raw_cookie, &url)
            .map_err(|_| CookieError::UnsupportedUrl)?
            .into_owned();
        let host_only = domain.is_none();
        if let Some(d) = domain {
            cookie.domain = CookieDomain::Suffix(d);
        }
        let key: Key = (
            String::from(&cookie.domain),
            String::from(&cookie.path),
            parsed.name,
        );

        // Steps 11 and 12: replace, keeping the creation time; an expired
        // cookie only removes the old one.
        if parsed.expires.is_some_and(|t| t <= now) {
            inner.remove(&key);
            return Ok(Stored::Expired);
        }
        let seq = match inner.meta.get(&key) {
            Some(old) => old.seq,
            None => {
                inner.next_seq += 1;
                inner.next_seq
            }
        };
        inner
            .store
            .insert(cookie, &url)
            .map_err(|_| CookieError::DomainMismatch)?;
        inner.meta.insert(
            key,
            Meta {
                seq,
                expires: parsed.expires,
                host_only,
                same_site: parsed.same_site,
            },
        );
        Ok(Stored::Kept)
    }

    /// The `Cookie` header value to send to `url` (`"a=b; c=d"`, RFC 6265
    /// §5.4: longer paths first, then earlier creation), or `None` when no
    /// cookie matches. `Secure` cookies go only to `https` and `wss` URLs
    /// (`ws` is treated like `http`).
    pub fn cookie_header(&self, url: &Url) -> Option<HeaderValue> {
        // Most sessions hold no cookie: skip the clock and the matching.
        if self.lock().meta.is_empty() {
            return None;
        }
        self.cookie_header_at(url, SystemTime::now())
    }

    /// [`cookie_header`](Self::cookie_header) at the time `now` (cookies
    /// that expired by then are evicted, not sent).
    pub fn cookie_header_at(&self, url: &Url, now: SystemTime) -> Option<HeaderValue> {
        let (url, secure) = cookie_url(url)?;
        let mut inner = self.lock();
        inner.evict_expired(now);
        let inner = &*inner;
        let mut matched: Vec<(usize, u64, &str, &str)> = inner
            .store
            .matches(&url)
            .into_iter()
            .filter(|c| secure || !c.secure().unwrap_or(false))
            .filter_map(|c| {
                let (name, value) = c.name_value();
                let key = (
                    String::from(&c.domain),
                    String::from(&c.path),
                    name.to_owned(),
                );
                let meta = inner.meta.get(&key)?;
                Some((c.path.len(), meta.seq, name, value))
            })
            .collect();
        if matched.is_empty() {
            return None;
        }
        matched.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut header = String::new();
        for (i, (_, _, name, value)) in matched.iter().enumerate() {
            if i > 0 {
                header.push_str("; ");
            }
            header.push_str(name);
            header.push('=');
            header.push_str(value);
        }
        HeaderValue::from_str(&header).ok()
    }

    /// A snapshot of the cookies that have not expired, in creation order.
    ///
    /// ```
    /// use courier_client::cookies::CookieJar;
    /// use url::Url;
    ///
    /// let jar = CookieJar::new();
    /// let url = Url::parse("http://example.com/a/b").unwrap();
    /// jar.add_set_cookie(&url, "k=v; HttpOnly").unwrap();
    /// let cookies = jar.cookies();
    /// assert_eq!(cookies[0].domain(), Some("example.com"));
    /// assert_eq!(cookies[0].path(), Some("/a"));
    /// assert!(cookies[0].host_only() && cookies[0].http_only());
    /// ```
    pub fn cookies(&self) -> Vec<Cookie> {
        let now = SystemTime::now();
        let inner = self.lock();
        let mut cookies: Vec<(u64, Cookie)> = inner
            .store
            .iter_any()
            .filter_map(|c| {
                let (name, value) = c.name_value();
                let domain = String::from(&c.domain);
                let path = String::from(&c.path);
                let key = (domain, path, name.to_owned());
                let meta = inner.meta.get(&key)?;
                if meta.expires.is_some_and(|t| t <= now) {
                    return None;
                }
                let (domain, path, name) = key;
                Some((
                    meta.seq,
                    Cookie {
                        name,
                        value: value.to_owned(),
                        domain: Some(domain),
                        host_only: meta.host_only,
                        path: Some(path),
                        secure: c.secure().unwrap_or(false),
                        http_only: c.http_only().unwrap_or(false),
                        same_site: meta.same_site,
                        expires: meta.expires,
                    },
                ))
            })
            .collect();
        cookies.sort_by_key(|(seq, _)| *seq);
        cookies.into_iter().map(|(_, c)| c).collect()
    }

    /// Removes every cookie.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.store.clear();
        inner.meta.clear();
    }

    /// How many cookies the jar holds that have not expired.
    pub fn len(&self) -> usize {
        let now = SystemTime::now();
        self.lock()
            .meta
            .values()
            .filter(|m| m.expires.is_none_or(|t| t > now))
            .count()
    }

    /// Whether the jar holds no cookie that has not expired.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds a [`CookieJar`] with a policy other than the default.
///
/// ```
/// use courier_client::cookies::{CookieJar, IpHosts};
///
/// let jar = CookieJar::builder()
///     .ip_hosts(IpHosts::Reject)
///     .max_cookie_size(8192)
///     .max_cookies_per_response(20)
///     .public_suffix_check(true)
///     .build();
/// assert!(jar.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct CookieJarBuilder {
    policy: Policy,
}

impl CookieJarBuilder {
    /// What to do with cookies from IP-address hosts (default
    /// [`IpHosts::HostOnly`]).
    #[must_use]
    pub fn ip_hosts(mut self, ip_hosts: IpHosts) -> Self {
        self.policy.ip_hosts = ip_hosts;
        self
    }

    /// The largest cookie stored, in bytes of the whole `Set-Cookie` value
    /// (default [`DEFAULT_MAX_COOKIE_SIZE`]); larger ones are ignored.
    #[must_use]
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        self.policy.max_cookie_size = bytes;
        self
    }

    /// How many `Set-Cookie` values of one response are considered (default
    /// [`DEFAULT_MAX_COOKIES_PER_RESPONSE`]); further ones are ignored.
    #[must_use]
    pub fn max_cookies_per_response(mut self, count: usize) -> Self {
        self.policy.max_cookies_per_response = count;
        self
    }

    /// Whether a `Domain` attribute that is a public suffix is rejected
    /// (RFC 6265 §5.3 step 5; default `true`). Turn it off only for jars
    /// that talk to hosts you control.
    #[must_use]
    pub fn public_suffix_check(mut self, check: bool) -> Self {
        self.policy.public_suffix_check = check;
        self
    }

    /// The jar.
    pub fn build(self) -> CookieJar {
        CookieJar::with_policy(self.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn header(jar: &CookieJar, u: &str) -> Option<String> {
        jar.cookie_header(&url(u))
            .map(|v| v.to_str().unwrap().to_owned())
    }

    fn store(jar: &CookieJar, u: &str, values: &[&str]) -> usize {
        jar.store_response_cookies(&url(u), values.iter().map(|v| v.as_bytes()))
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn jar_is_send_sync_and_debug_hides_values() {
        fn check<T: Send + Sync + Default + fmt::Debug>() {}
        check::<CookieJar>();
        let jar = CookieJar::new();
        store(&jar, "http://example.com/", &["secret=hunter2"]);
        let debug = format!("{jar:?}");
        assert!(debug.contains("cookies: 1"), "{debug}");
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn domain_attribute_covers_subdomains_host_only_does_not() {
        let jar = CookieJar::new();
        let n = store(
            &jar,
            "http://www.example.com/",
            &["host=1", "dom=2; Domain=.EXAMPLE.com"],
        );
        assert_eq!(n, 2);
        assert_eq!(
            header(&jar, "http://www.example.com/").unwrap(),
            "host=1; dom=2"
        );
        assert_eq!(header(&jar, "http://example.com/").unwrap(), "dom=2");
        assert_eq!(header(&jar, "http://a.b.example.com/").unwrap(), "dom=2");
        assert_eq!(
            header(&jar, "http://sub.www.example.com/").unwrap(),
            "dom=2"
        );
        assert_eq!(header(&jar, "http://badexample.com/"), None);
        assert_eq!(header(&jar, "http://example.org/"), None);
        // Scheme and port do not scope cookies.
        assert_eq!(
            header(&jar, "https://www.example.com:8443/").unwrap(),
            "host=1; dom=2"
        );
    }

    #[test]
    fn domain_that_does_not_match_the_host_is_rejected() {
        let jar = CookieJar::new();
        let u = url("http://www.example.com/");
        for bad in [
            "a=1; Domain=other.com",
            "a=1; Domain=sub.www.example.com",
            "a=1; Domain=ww.example.com",
            "a=1; Domain=xample.com",
        ] {
            assert_eq!(
                jar.add_set_cookie(&u, bad),
                Err(CookieError::DomainMismatch),
                "{bad}"
            );
        }
        assert!(jar.is_empty());
        // The last Domain attribute counts; an empty one is ignored.
        jar.add_set_cookie(&u, "a=1; Domain=other.com; Domain=example.com; Domain=")
            .unwrap();
        assert_eq!(jar.cookies()[0].domain(), Some("example.com"));
    }

    #[test]
    fn non_ascii_domain_is_canonicalized() {
        let jar = CookieJar::new();
        let u = url("http://www.bücher.example/");
        jar.add_set_cookie(&u, "a=1; Domain=BÜCHER.example")
            .unwrap();
        assert_eq!(jar.cookies()[0].domain(), Some("xn--bcher-kva.example"));
        assert_eq!(
            header(&jar, "http://shop.xn--bcher-kva.example/").unwrap(),
            "a=1"
        );
    }

    #[test]
    fn unusual_hosts() {
        let jar = CookieJar::new();
        store(
            &jar,
            "http://my_host.internal/",
            &["u=1", "d=2; Domain=my_host.internal"],
        );
        assert_eq!(
            header(&jar, "http://my_host.internal/").unwrap(),
            "u=1; d=2"
        );
        store(&jar, "http://localhost:8080/", &["l=1"]);
        assert_eq!(header(&jar, "http://localhost/").unwrap(), "l=1");
        store(&jar, "http://dot.example.com./", &["t=1"]);
        assert_eq!(header(&jar, "http://dot.example.com./").unwrap(), "t=1");
        assert_eq!(header(&jar, "http://dot.example.com/"), None);
    }

    #[test]
    fn path_matching_and_default_path() {
        let jar = CookieJar::new();
        store(
            &jar,
            "http://example.com/docs/guide/intro?x=1",
            &[
                "dflt=1",
                "root=2; Path=/",
                "docs=3; Path=/docs",
                "bad=4; Path=relative",
            ],
        );
        let by_name = |n: &str| {
            jar.cookies()
                .into_iter()
                .find(|c| c.name() == n)
                .unwrap()
                .path()
                .unwrap()
                .to_owned()
        };
        assert_eq!(by_name("dflt"), "/docs/guide");
        assert_eq!(by_name("bad"), "/docs/guide");
        assert_eq!(by_name("docs"), "/docs");
        assert_eq!(
            header(&jar, "http://example.com/docs/guide/x").unwrap(),
            "dflt=1; bad=4; docs=3; root=2"
        );
        assert_eq!(
            header(&jar, "http://example.com/docs/guide").unwrap(),
            "dflt=1; bad=4; docs=3; root=2"
        );
        assert_eq!(
            header(&jar, "http://example.com/docs/guidebook").unwrap(),
            "docs=3; root=2"
        );
        assert_eq!(
            header(&jar, "http://example.com/docs").unwrap(),
            "docs=3; root=2"
        );
        assert_eq!(header(&jar, "http://example.com/docsx").unwrap(), "root=2");
        assert_eq!(header(&jar, "http://example.com/").unwrap(), "root=2");

        // Default path of "/" and of a one-segment path is "/".
        let jar = CookieJar::new();
        store(&jar, "http://example.com/login", &["a=1"]);
        store(&jar, "http://example.com", &["b=2"]);
        assert_eq!(
            header(&jar, "http://example.com/elsewhere").unwrap(),
            "a=1; b=2"
        );
    }

    #[test]
    fn order_is_longer_path_then_creation_and_replacement_keeps_creation() {
        let jar = CookieJar::new();
        store(
            &jar,
            "http://example.com/",
            &["b=1", "a=1", "long=1; Path=/x"],
        );
        store(&jar, "http://example.com/", &["b=2"]);
        assert_eq!(
            header(&jar, "http://example.com/x").unwrap(),
            "long=1; b=2; a=1"
        );
        assert_eq!(jar.len(), 3);
    }

    #[test]
    fn secure_cookies_only_over_https_and_wss() {
        let jar = CookieJar::new();
        store(&jar, "https://example.com/", &["s=1; Secure", "p=2"]);
        assert_eq!(header(&jar, "https://example.com/").unwrap(), "s=1; p=2");
        assert_eq!(header(&jar, "wss://example.com/").unwrap(), "s=1; p=2");
        assert_eq!(header(&jar, "http://example.com/").unwrap(), "p=2");
        assert_eq!(header(&jar, "ws://example.com/").unwrap(), "p=2");
        // localhost is not treated as secure.
        let jar = CookieJar::new();
        store(&jar, "http://localhost/", &["s=1; Secure"]);
        assert_eq!(header(&jar, "http://localhost/"), None);
        assert_eq!(header(&jar, "https://localhost/").unwrap(), "s=1");
        // Other schemes carry no cookies.
        assert_eq!(header(&jar, "ftp://localhost/"), None);
        assert_eq!(
            jar.add_set_cookie(&url("file:///tmp/x"), "a=b"),
            Err(CookieError::UnsupportedUrl)
        );
    }

    #[test]
    fn cookies_from_ws_handshakes_are_stored() {
        let jar = CookieJar::new();
        store(
            &jar,
            "wss://example.com/socket",
            &["h=1; HttpOnly; Secure; Path=/"],
        );
        assert_eq!(header(&jar, "https://example.com/").unwrap(), "h=1");
    }

    #[test]
    fn http_only_is_kept_and_sent_over_http() {
        let jar = CookieJar::new();
        store(&jar, "http://example.com/", &["h=1; HttpOnly", "n=2"]);
        let cookies = jar.cookies();
        assert!(cookies[0].http_only());
        assert!(!cookies[1].http_only());
        assert_eq!(header(&jar, "http://example.com/").unwrap(), "h=1; n=2");
    }

    #[test]
    fn same_site_is_kept() {
        let jar = CookieJar::new();
        store(
            &jar,
            "http://example.com/",
            &[
                "a=1; SameSite=strict",
                "b=1; SameSite=Lax",
                "c=1; SameSite=None",
                "d=1; SameSite=odd",
                "e=1",
            ],
        );
        let got: Vec<_> = jar.cookies().iter().map(Cookie::same_site).collect();
        assert_eq!(
            got,
            [
                Some(SameSite::Strict),
                Some(SameSite::Lax),
                Some(SameSite::None),
                None,
                None
            ]
        );
    }

    #[test]
    fn max_age_wins_over_expires() {
        let now = at(1_700_000_000);
        let u = url("http://example.com/");
        for value in [
            "a=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60",
            "a=1; Expires=Wed, 01 Jan 2200 00:00:00 GMT; Max-Age=60",
        ] {
            let jar = CookieJar::new();
            assert_eq!(
                jar.store_response_cookies_at(&u, [value.as_bytes()], now),
                1
            );
            assert!(
                jar.cookie_header_at(&u, now + Duration::from_secs(59))
                    .is_some(),
                "{value}"
            );
            assert!(
                jar.cookie_header_at(&u, now + Duration::from_secs(60))
                    .is_none(),
                "{value}"
            );
        }
        // An invalid Max-Age is ignored: the earlier one stands.
        let jar = CookieJar::new();
        jar.store_response_cookies_at(&u, [&b"a=1; Max-Age=60; Max-Age=6x0; Max-Age="[..]], now);
        assert!(
            jar.cookie_header_at(&u, now + Duration::from_secs(61))
                .is_none()
        );
        // A huge Max-Age saturates.
        let jar = CookieJar::new();
        jar.store_response_cookies_at(&u, [&b"a=1; Max-Age=99999999999999999999999"[..]], now);
        assert!(jar.cookie_header_at(&u, at(253_402_300_000)).is_some());
    }

    #[test]
    fn expiry_removes_cookies() {
        let now = at(1_700_000_000);
        let u = url("http://example.com/");
        let jar = CookieJar::new();
        let n = jar.store_response_cookies_at(
            &u,
            [
                &b"a=1; Expires=Tue, 14 Nov 2023 22:14:00 GMT"[..], // 1_700_000_040
                b"b=2",
                b"c=3; Max-Age=3600",
            ],
            now,
        );
        assert_eq!(n, 3);
        assert_eq!(jar.cookie_header_at(&u, now).unwrap(), "a=1; b=2; c=3");
        // Expires passes.
        assert_eq!(
            jar.cookie_header_at(&u, now + Duration::from_secs(40))
                .unwrap(),
            "b=2; c=3"
        );
        // Max-Age=0 and a past Expires delete; they are not counted as stored.
        let n = jar.store_response_cookies_at(
            &u,
            [
                &b"b=gone; Max-Age=0"[..],
                b"c=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            ],
            now + Duration::from_secs(41),
        );
        assert_eq!(n, 0);
        assert_eq!(
            jar.cookie_header_at(&u, now + Duration::from_secs(41)),
            None
        );
        assert!(jar.is_empty());
        // A negative Max-Age deletes too, even with a future Expires.
        jar.store_response_cookies_at(&u, [&b"d=4"[..]], now);
        jar.store_response_cookies_at(
            &u,
            [&b"d=4; Expires=Wed, 01 Jan 2200 00:00:00 GMT; Max-Age=-1"[..]],
            now,
        );
        assert_eq!(jar.cookie_header_at(&u, now), None);
        // Deleting only hits the same name, domain and path.
        jar.store_response_cookies_at(&u, [&b"e=5; Path=/x"[..]], now);
        jar.store_response_cookies_at(&u, [&b"e=5; Max-Age=0"[..]], now);
        assert_eq!(
            jar.cookie_header_at(&url("http://example.com/x"), now)
                .unwrap(),
            "e=5"
        );
    }

    #[test]
    fn public_suffix_list_loads() {
        let list = public_suffix_list().expect("the vendored list parses");
        assert!(!list.is_empty());
        assert!(is_public_suffix("co.uk"));
        assert!(is_public_suffix("com"));
        assert!(is_public_suffix("github.io"));
        assert!(!is_public_suffix("example.co.uk"));
        assert!(!is_public_suffix("example"));
    }

    #[test]
    fn public_suffix_domains_are_rejected() {
        let jar = CookieJar::new();
        let u = url("http://www.example.co.uk/");
        assert_eq!(
            jar.add_set_cookie(&u, "a=b; Domain=co.uk"),
            Err(CookieError::PublicSuffix)
        );
        assert_eq!(
            jar.add_set_cookie(&u, "a=b; Domain=.uk"),
            Err(CookieError::PublicSuffix)
        );
        jar.add_set_cookie(&u, "a=b; Domain=example.co.uk").unwrap();
        assert_eq!(header(&jar, "http://shop.example.co.uk/").unwrap(), "a=b");
        assert_eq!(header(&jar, "http://other.co.uk/"), None);

        // From the public suffix itself: host-only.
        let jar = CookieJar::new();
        jar.add_set_cookie(&url("http://co.uk/"), "a=b; Domain=co.uk")
            .unwrap();
        let c = &jar.cookies()[0];
        assert!(c.host_only());
        assert_eq!(c.domain(), Some("co.uk"));
        assert_eq!(header(&jar, "http://co.uk/").unwrap(), "a=b");
        assert_eq!(header(&jar, "http://www.example.co.uk/"), None);

        // The check can be turned off.
        let jar = CookieJar::builder().public_suffix_check(false).build();
        jar.add_set_cookie(&u, "a=b; Domain=co.uk").unwrap();
        assert_eq!(header(&jar, "http://other.co.uk/").unwrap(), "a=b");
    }

    #[test]
    fn ip_hosts_host_only_policy() {
        let jar = CookieJar::new();
        let u = url("http://192.168.0.10:8080/");
        jar.add_set_cookie(&u, "a=1").unwrap();
        jar.add_set_cookie(&u, "b=2; Domain=192.168.0.10").unwrap();
        assert_eq!(
            jar.add_set_cookie(&u, "c=3; Domain=168.0.10"),
            Err(CookieError::DomainMismatch)
        );
        assert_eq!(header(&jar, "http://192.168.0.10/").unwrap(), "a=1; b=2");
        assert_eq!(header(&jar, "http://example.com/"), None);
        assert_eq!(header(&jar, "http://192.168.0.11/"), None);

        let v6 = url("http://[::1]:8080/");
        jar.add_set_cookie(&v6, "six=6").unwrap();
        assert_eq!(header(&jar, "http://[0:0::1]/").unwrap(), "six=6");
        assert_eq!(header(&jar, "http://[::2]/"), None);
    }

    #[test]
    fn ip_hosts_reject_policy() {
        let jar = CookieJar::builder().ip_hosts(IpHosts::Reject).build();
        assert_eq!(store(&jar, "http://127.0.0.1/", &["a=1"]), 0);
        assert_eq!(store(&jar, "http://[::1]/", &["a=1"]), 0);
        assert_eq!(
            jar.add_cookie(&url("http://10.0.0.1/"), "a", "1"),
            Err(CookieError::IpHost)
        );
        assert!(jar.is_empty());
        assert_eq!(store(&jar, "http://localhost/", &["a=1"]), 1);
    }

    #[test]
    fn size_limit_per_cookie() {
        let jar = CookieJar::new();
        let u = url("http://example.com/");
        let fits = format!("a={}", "x".repeat(DEFAULT_MAX_COOKIE_SIZE - 2));
        let too_big = format!("b={}", "x".repeat(DEFAULT_MAX_COOKIE_SIZE - 1));
        assert_eq!(
            jar.add_set_cookie(&u, &too_big),
            Err(CookieError::TooLarge {
                size: DEFAULT_MAX_COOKIE_SIZE + 1,
                max: DEFAULT_MAX_COOKIE_SIZE
            })
        );
        jar.add_set_cookie(&u, &fits).unwrap();
        assert_eq!(jar.len(), 1);

        let jar = CookieJar::builder().max_cookie_size(16).build();
        assert_eq!(
            store(
                &jar,
                "http://example.com/",
                &["a=12345678901234", "a=1; Path=/; Secure"]
            ),
            1
        );
        assert!(matches!(
            jar.add_cookie(&u, "name", "0123456789abcdef"),
            Err(CookieError::TooLarge { .. })
        ));
    }

    #[test]
    fn count_limit_per_response() {
        let jar = CookieJar::new();
        let values: Vec<String> = (0..DEFAULT_MAX_COOKIES_PER_RESPONSE + 10)
            .map(|i| format!("c{i}=v"))
            .collect();
        let n = jar.store_response_cookies(
            &url("http://example.com/"),
            values.iter().map(|v| v.as_bytes()),
        );
        assert_eq!(n, DEFAULT_MAX_COOKIES_PER_RESPONSE);
        assert_eq!(jar.len(), DEFAULT_MAX_COOKIES_PER_RESPONSE);
        assert!(jar.cookies().iter().all(|c| c.name() != "c50"));

        // Rejected values count towards the limit too.
        let jar = CookieJar::builder().max_cookies_per_response(2).build();
        assert_eq!(
            store(&jar, "http://example.com/", &["bad", "a=1", "b=2"]),
            1
        );
    }

    #[test]
    fn add_cookie_is_scoped_to_its_host() {
        let jar = CookieJar::new();
        let u = url("https://api.example.com/deep/path?q=1");
        jar.add_cookie(&u, "token", "abc").unwrap();
        let c = &jar.cookies()[0];
        assert!(c.host_only());
        assert_eq!(c.domain(), Some("api.example.com"));
        assert_eq!(c.path(), Some("/"));
        assert!(!c.secure() && c.expires().is_none());
        assert_eq!(
            header(&jar, "http://api.example.com/other").unwrap(),
            "token=abc"
        );
        assert_eq!(header(&jar, "https://example.com/"), None);
        assert_eq!(header(&jar, "https://x.api.example.com/"), None);
        assert_eq!(header(&jar, "https://evil.com/"), None);
        // Replaces a cookie of the same name, domain and path.
        jar.add_cookie(&u, "token", "def").unwrap();
        assert_eq!(
            header(&jar, "http://api.example.com/").unwrap(),
            "token=def"
        );
        // A public suffix host is fine: the cookie is host-only.
        jar.add_cookie(&url("http://co.uk/"), "a", "1").unwrap();
        assert_eq!(header(&jar, "http://co.uk/").unwrap(), "a=1");

        for (name, value) in [
            ("", "v"),
            ("a=b", "v"),
            ("a;b", "v"),
            (" a", "v"),
            ("a\n", "v"),
            ("a", "x;y"),
            ("a", "x\r"),
            ("a", " x"),
        ] {
            assert!(
                matches!(
                    jar.add_cookie(&u, name, value),
                    Err(CookieError::Invalid(_))
                ),
                "{name:?}={value:?}"
            );
        }
        jar.add_cookie(&u, "empty", "").unwrap();
        assert_eq!(
            jar.add_cookie(&url("data:text/plain,x"), "a", "b"),
            Err(CookieError::UnsupportedUrl)
        );
    }

    #[test]
    fn clear_len_is_empty() {
        let jar = CookieJar::new();
        assert!(jar.is_empty());
        store(
            &jar,
            "http://example.com/",
            &["a=1", "b=2", "c=3; Max-Age=0"],
        );
        assert_eq!(jar.len(), 2);
        jar.clear();
        assert!(jar.is_empty());
        assert_eq!(header(&jar, "http://example.com/"), None);
    }

    #[test]
    fn parse_set_cookie_attributes() {
        let c = parse_set_cookie(
            b" name = some value ; path=/p; path=rel; DOMAIN=..Example.COM; secure; HTTPONLY; samesite=NONE; expires=Sun, 06 Nov 1994 08:49:37 GMT",
        )
        .unwrap();
        assert_eq!(c.name(), "name");
        assert_eq!(c.value(), "some value");
        assert_eq!(c.path(), None, "an invalid Path replaces an earlier one");
        assert_eq!(c.domain(), Some(".example.com"), "one leading dot removed");
        assert!(!c.host_only() && c.secure() && c.http_only());
        assert_eq!(c.same_site(), Some(SameSite::None));
        assert_eq!(c.expires(), Some(at(784_111_777)));

        let c = parse_set_cookie(b"q=\"quoted\"; Max-Age=0").unwrap();
        assert_eq!(c.value(), "\"quoted\"");
        assert!(c.expires().unwrap() < SystemTime::UNIX_EPOCH);
        let c = parse_set_cookie(b"e=").unwrap();
        assert_eq!((c.name(), c.value(), c.expires()), ("e", "", None));
        assert!(!c.secure() && !c.http_only() && c.path().is_none());

        for bad in [
            &b""[..],
            b"novalue",
            b"=value",
            b"  =v",
            b"a\x00=b",
            b"a=b\x7f",
            b"a=\xff\xfe",
        ] {
            assert!(parse_set_cookie(bad).is_none(), "{bad:?}");
        }
        // Tabs are whitespace, not control characters to reject.
        assert_eq!(parse_set_cookie(b"a=\tb\t").unwrap().value(), "b");
    }

    #[test]
    fn non_utf8_values_are_skipped() {
        let jar = CookieJar::new();
        assert_eq!(
            jar.store_response_cookies(&url("http://example.com/"), [&b"a=caf\xe9"[..], b"b=ok"]),
            1
        );
        assert_eq!(header(&jar, "http://example.com/").unwrap(), "b=ok");
    }

    #[test]
    fn utf8_values_round_trip() {
        let jar = CookieJar::new();
        store(&jar, "http://example.com/", &["n=春节; Path=/"]);
        let value = jar.cookie_header(&url("http://example.com/")).unwrap();
        assert_eq!(value.as_bytes(), "n=春节".as_bytes());
    }

    #[test]
    fn cookie_dates() {
        let d = |s| parse_cookie_date(s);
        let t = Some(at(784_111_777)); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(d("Sun, 06 Nov 1994 08:49:37 GMT"), t);
        assert_eq!(d("Sunday, 06-Nov-94 08:49:37 GMT"), t);
        assert_eq!(d("Sun Nov  6 08:49:37 1994"), t);
        assert_eq!(d("06 nov 1994 8:49:37"), t);
        assert_eq!(
            d("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(d("Fri, 01 Jan 2010 00:00:00 GMT"), d("1 Jan 10 0:0:0"));
        assert_eq!(d("29 Feb 2000 00:00:00"), Some(at(951_782_400)));
        assert_eq!(d("29 Feb 1900 00:00:00"), None);
        assert_eq!(d("31 Apr 2020 00:00:00"), None);
        assert_eq!(d("1 Jan 1600 00:00:00"), None);
        assert!(d("1 Jan 1601 00:00:00").is_some());
        assert!(d("31 Dec 9999 23:59:59").is_some());
        assert_eq!(d("1 Jan 2020 24:00:00"), None);
        assert_eq!(d("1 Jan 2020 00:60:00"), None);
        assert_eq!(d("0 Jan 2020 00:00:00"), None);
        assert_eq!(d("1 Jan 2020"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("1 Foo 2020 00:00:00"), None);
        assert_eq!(d("1 Jan 12345 00:00:00"), None);
    }

    /// A cheap deterministic fuzz: no input panics the parser or the jar.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[u8] = b"=; ,-/:.aAeEsSxX019\t \"\x00\x7f\xc3\xa9\xff";
        let words: [&[u8]; 8] = [
            b"Expires=",
            b"Max-Age=",
            b"Domain=",
            b"Path=/",
            b"Secure",
            b"HttpOnly",
            b"SameSite=",
            b"Jan 2020 10:10:10",
        ];
        let jar = CookieJar::builder().max_cookie_size(64).build();
        let u = url("http://www.example.co.uk/a/b");
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 48).unwrap_or(0);
            let mut value = Vec::new();
            while value.len() < len {
                let r = next();
                if r % 5 == 0 {
                    value.extend_from_slice(words[usize::try_from(r % 8).unwrap_or(0)]);
                } else {
                    value.push(alphabet[usize::try_from(r % 29).unwrap_or(0) % alphabet.len()]);
                }
            }
            let _ = parse_set_cookie(&value);
            let _ = parse_cookie_date(&String::from_utf8_lossy(&value));
            jar.store_response_cookies_at(&u, [value.as_slice()], at(next() % 300_000_000_000));
        }
        let _ = jar.cookie_header(&u);
        let _ = jar.cookies();
    }
}
