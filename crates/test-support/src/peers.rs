//! Where the real test peers are, from the environment `xtask` sets.
//!
//! `cargo xtask test` starts the peers and runs the tests with these
//! variables set; for a manual run, `cargo xtask peers start` prints them as
//! `export` lines (`eval "$(cargo xtask peers start)"`), and
//! `cargo xtask peers stop` stops the peers again.
//!
//! | variable | value |
//! |---|---|
//! | `COURIER_PEERS_SCRATCH` | the scratch directory of the running set ([`scratch`]) |
//! | `COURIER_PEERS_CA` | `certs/ca.pem`, the CA every TLS peer's certificate chains to ([`ca_pem`]) |
//! | `COURIER_PEER_NGINX_HTTP`, `_HTTPS` | `127.0.0.1:PORT` ([`nginx`]) |
//! | `COURIER_PEER_NGINX_BADTLS` | `127.0.0.1:PORT`: HTTPS with a certificate for `wrong.example` only |
//! | `COURIER_PEER_NGINX_UNIX` | the path of nginx's Unix socket (plain HTTP) |
//! | `COURIER_PEER_NGINX_WWW` | nginx's document root, to compare bodies with the files |
//! | `COURIER_PEER_HTTPBIN_HTTP`, `_UNIX` | httpbin under gunicorn ([`httpbin`]) |
//! | `COURIER_PEER_AIOHTTP_HTTP`, `_HTTPS`, `_UNIX` | the aiohttp server peer ([`aiohttp`]) |
//! | `COURIER_PEER_WS_ECHO_WS`, `_WSS`, `_UNIX` | the Python websockets echo server ([`ws_echo`]) |
//! | `COURIER_PEER_TINYPROXY_HTTP` | tinyproxy, a forward proxy without auth ([`tinyproxy`]) |
//! | `COURIER_PEER_TINYPROXY_AUTH_HTTP` | tinyproxy wanting Basic proxy auth `user:pass` ([`tinyproxy_auth`]) |
//! | `COURIER_PEER_SQUID_HTTP` | squid, a forward proxy without auth ([`squid`]) |
//! | `COURIER_PEER_SQUID_AUTH_HTTP` | squid wanting Basic proxy auth `user:pass` ([`squid_auth`]) |
//!
//! The test certificates are files in `SCRATCH/certs` ([`certs_dir`]).
//!
//! The names follow one rule: `COURIER_PEERS_<X>` for the set,
//! `COURIER_PEER_<PEER>_<ENDPOINT>` for one endpoint of one peer. They are
//! written by `xtask/src/peers.rs`; the two lists must agree.
//!
//! What each peer serves is described in `../shared/peers/PEERS.md`.
//!
//! ```no_run
//! let nginx = courier_test_support::peers::nginx();
//! let stream = std::net::TcpStream::connect(nginx.http).unwrap();
//! let expected = nginx.file("hello.txt");
//! # drop((stream, expected));
//! ```

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The variable naming the scratch directory of the running peers.
pub const SCRATCH_VAR: &str = "COURIER_PEERS_SCRATCH";
/// The variable naming the test CA certificate (PEM).
pub const CA_VAR: &str = "COURIER_PEERS_CA";

/// The credentials of the proxies that want Basic proxy auth (xtask starts
/// them with `PROXY_AUTH=user:pass`).
const PROXY_USER: &str = "user";
/// See [`PROXY_USER`].
const PROXY_PASS: &str = "pass";

/// How to get the peers running, for every "not running" message.
const HOW_TO_START: &str = "run the suite with `cargo xtask test`, or `cargo xtask peers start` \
                            and export what it prints";

/// nginx: static files, gzip, redirects, HTTP + HTTPS + a Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Nginx {
    /// Plain HTTP.
    pub http: SocketAddr,
    /// HTTPS with a certificate for `localhost` and `127.0.0.1` from [`ca_pem`].
    pub https: SocketAddr,
    /// HTTPS with a certificate valid only for `wrong.example` (chained to
    /// [`ca_pem`], so only the name check fails), serving the same files.
    pub badtls: SocketAddr,
    /// Plain HTTP over a Unix socket.
    pub unix: PathBuf,
    /// The document root: `hello.txt`, `text.txt`, `large.bin`...
    pub www: PathBuf,
}

impl Nginx {
    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        http_url(self.http, path)
    }

    /// The content of the file `name` in the document root.
    ///
    /// # Panics
    ///
    /// When the file cannot be read.
    pub fn file(&self, name: &str) -> Vec<u8> {
        let path = self.www.join(name);
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read nginx's {}: {e}", path.display()))
    }
}

/// httpbin (PyPI httpbin under gunicorn): JSON echoes, `/stream/N`,
/// `/gzip`, `/deflate`, `/response-headers`...
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Httpbin {
    /// Plain HTTP.
    pub http: SocketAddr,
    /// Plain HTTP over a Unix socket.
    pub unix: PathBuf,
}

impl Httpbin {
    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        http_url(self.http, path)
    }
}

/// The aiohttp server peer: `/echo` (the request as JSON, headers in
/// order), `/chunked`, `/truncated`, `/gzip`, WebSocket at `/ws`...
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Aiohttp {
    /// Plain HTTP.
    pub http: SocketAddr,
    /// HTTPS with a certificate for `localhost` and `127.0.0.1` from [`ca_pem`].
    pub https: SocketAddr,
    /// Plain HTTP over a Unix socket.
    pub unix: PathBuf,
}

impl Aiohttp {
    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        http_url(self.http, path)
    }
}

/// The WebSocket echo server (PyPI websockets): every text and binary
/// message comes back; `/headers` first sends the handshake request as
/// JSON, `/close/<code>` closes at once with that code and reason `bye`,
/// `/ping` pings first, `/send-then-close` sends `hello` and three bytes
/// then closes with 1000. Subprotocols `chat` and `superchat`;
/// permessage-deflate when offered; messages up to 64 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsEcho {
    /// `ws://`.
    pub ws: SocketAddr,
    /// `wss://` with a certificate for `localhost` and `127.0.0.1` from [`ca_pem`].
    pub wss: SocketAddr,
    /// `ws://` over a Unix socket.
    pub unix: PathBuf,
}

impl WsEcho {
    /// `ws://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.ws)
    }

    /// `wss://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn wss_url(&self, path: &str) -> String {
        format!("wss://{}{path}", self.wss)
    }
}

/// A forward HTTP proxy (tinyproxy or squid) on 127.0.0.1: absolute-form
/// requests and CONNECT to any 127.0.0.1 port, from 127.0.0.1 only.
///
/// tinyproxy closes the client connection after each response and answers
/// wrong credentials with 401; squid keeps connections alive, adds `Via`,
/// and answers wrong credentials with 407.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proxy {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    /// The Basic proxy auth `(user, password)` it requires, if any.
    pub auth: Option<(String, String)>,
}

impl Proxy {
    /// `http://127.0.0.1:PORT`, the proxy URL (without credentials).
    pub fn url(&self) -> String {
        http_url(self.addr, "")
    }
}

fn http_url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The running nginx.
///
/// # Panics
///
/// When the peers are not running (the variables are missing) or a
/// variable is malformed; the message says how to start them.
#[track_caller]
pub fn nginx() -> Nginx {
    or_panic(nginx_from(&process_env))
}

/// The running httpbin.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn httpbin() -> Httpbin {
    or_panic(httpbin_from(&process_env))
}

/// The running aiohttp server peer.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn aiohttp() -> Aiohttp {
    or_panic(aiohttp_from(&process_env))
}

/// The running WebSocket echo server.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn ws_echo() -> WsEcho {
    or_panic(ws_echo_from(&process_env))
}

/// The running tinyproxy without auth.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn tinyproxy() -> Proxy {
    or_panic(proxy_from(&process_env, "tinyproxy", false))
}

/// The running tinyproxy that wants Basic proxy auth (`auth` is
/// `Some(("user", "pass"))`).
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn tinyproxy_auth() -> Proxy {
    or_panic(proxy_from(&process_env, "tinyproxy-auth", true))
}

/// The running squid without auth.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn squid() -> Proxy {
    or_panic(proxy_from(&process_env, "squid", false))
}

/// The running squid that wants Basic proxy auth (`auth` is
/// `Some(("user", "pass"))`).
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn squid_auth() -> Proxy {
    or_panic(proxy_from(&process_env, "squid-auth", true))
}

/// The test CA certificate (PEM) that the TLS peers' certificates chain to.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn ca_pem() -> PathBuf {
    or_panic(Vars::set(&process_env).path_var(CA_VAR))
}

/// The scratch directory of the running peers (their configs and logs).
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn scratch() -> PathBuf {
    or_panic(Vars::set(&process_env).path_var(SCRATCH_VAR))
}

/// The directory of the test certificates, `SCRATCH/certs` (PEM files):
///
/// - `ca.pem`: the test CA, the trust root (the same file as [`ca_pem`]);
/// - `server.pem`, `server.key`: a leaf for `localhost`, `127.0.0.1` and
///   `::1`, signed by the CA (what the TLS peers serve); `server-chain.pem`
///   is `server.pem` followed by `ca.pem`;
/// - `wronghost.pem`, `wronghost.key`: a leaf for `wrong.example` only,
///   signed by the CA (what [`Nginx::badtls`] serves);
/// - `selfsigned.pem`, `selfsigned.key`: a self-signed certificate no
///   client should trust.
///
/// # Panics
///
/// As [`nginx`].
#[track_caller]
pub fn certs_dir() -> PathBuf {
    or_panic(certs_dir_from(&process_env))
}

/// Why the peers' variables could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EnvError {
    /// A variable is not set: the peers are not running.
    Missing { who: String, var: String },
    /// A variable is set to something unusable.
    Invalid {
        var: String,
        value: String,
        expected: &'static str,
    },
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Missing { who, var } => {
                write!(f, "{who} is not running: {HOW_TO_START} ({var} is not set)")
            }
            EnvError::Invalid {
                var,
                value,
                expected,
            } => write!(
                f,
                "{var}=`{value}` is not {expected}: the peers' environment is stale or \
                 mistyped; {HOW_TO_START}"
            ),
        }
    }
}

#[track_caller]
fn or_panic<T>(result: Result<T, EnvError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{e}"),
    }
}

fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Reads the variables of one peer (or of the whole set) through `get`.
struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<OsString>,
    /// `peer nginx`, `the set of test peers`: who is "not running" when a variable is missing.
    who: String,
    /// `COURIER_PEER_NGINX_`, or empty for the set's own variables.
    prefix: String,
}

impl<'a> Vars<'a> {
    fn peer(get: &'a dyn Fn(&str) -> Option<OsString>, name: &str) -> Vars<'a> {
        Vars {
            get,
            who: format!("peer {name}"),
            prefix: format!(
                "COURIER_PEER_{}_",
                name.to_ascii_uppercase().replace('-', "_")
            ),
        }
    }

    fn set(get: &'a dyn Fn(&str) -> Option<OsString>) -> Vars<'a> {
        Vars {
            get,
            who: "the set of test peers".to_owned(),
            prefix: String::new(),
        }
    }

    fn raw(&self, var: &str) -> Result<OsString, EnvError> {
        match (self.get)(var) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(EnvError::Missing {
                who: self.who.clone(),
                var: var.to_owned(),
            }),
        }
    }

    fn addr(&self, endpoint: &str) -> Result<SocketAddr, EnvError> {
        let var = format!("{}{endpoint}", self.prefix);
        let value = self.raw(&var)?;
        value
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| EnvError::Invalid {
                var,
                value: value.to_string_lossy().into_owned(),
                expected: "a socket address (IP:PORT)",
            })
    }

    fn path(&self, endpoint: &str) -> Result<PathBuf, EnvError> {
        self.path_var(&format!("{}{endpoint}", self.prefix))
    }

    fn path_var(&self, var: &str) -> Result<PathBuf, EnvError> {
        let value = self.raw(var)?;
        let path = PathBuf::from(&value);
        if path.is_absolute() {
            Ok(path)
        } else {
            Err(EnvError::Invalid {
                var: var.to_owned(),
                value: value.to_string_lossy().into_owned(),
                expected: "an absolute path",
            })
        }
    }
}

fn nginx_from(get: &dyn Fn(&str) -> Option<OsString>) -> Result<Nginx, EnvError> {
    let vars = Vars::peer(get, "nginx");
    Ok(Nginx {
        http: vars.addr("HTTP")?,
        https: vars.addr("HTTPS")?,
        badtls: vars.addr("BADTLS")?,
        unix: vars.path("UNIX")?,
        www: vars.path("WWW")?,
    })
}

fn httpbin_from(get: &dyn Fn(&str) -> Option<OsString>) -> Result<Httpbin, EnvError> {
    let vars = Vars::peer(get, "httpbin");
    Ok(Httpbin {
        http: vars.addr("HTTP")?,
        unix: vars.path("UNIX")?,
    })
}

fn aiohttp_from(get: &dyn Fn(&str) -> Option<OsString>) -> Result<Aiohttp, EnvError> {
    let vars = Vars::peer(get, "aiohttp");
    Ok(Aiohttp {
        http: vars.addr("HTTP")?,
        https: vars.addr("HTTPS")?,
        unix: vars.path("UNIX")?,
    })
}

fn ws_echo_from(get: &dyn Fn(&str) -> Option<OsString>) -> Result<WsEcho, EnvError> {
    let vars = Vars::peer(get, "ws-echo");
    Ok(WsEcho {
        ws: vars.addr("WS")?,
        wss: vars.addr("WSS")?,
        unix: vars.path("UNIX")?,
    })
}

/// The proxy peer `name`; `auth` says whether xtask started it with
/// `PROXY_AUTH`.
fn proxy_from(
    get: &dyn Fn(&str) -> Option<OsString>,
    name: &str,
    auth: bool,
) -> Result<Proxy, EnvError> {
    let vars = Vars::peer(get, name);
    Ok(Proxy {
        addr: vars.addr("HTTP")?,
        auth: auth.then(|| (PROXY_USER.to_owned(), PROXY_PASS.to_owned())),
    })
}

fn certs_dir_from(get: &dyn Fn(&str) -> Option<OsString>) -> Result<PathBuf, EnvError> {
    Ok(Vars::set(get).path_var(SCRATCH_VAR)?.join("certs"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("COURIER_PEERS_SCRATCH", "/s"),
        ("COURIER_PEERS_CA", "/s/certs/ca.pem"),
        ("COURIER_PEER_NGINX_HTTP", "127.0.0.1:4000"),
        ("COURIER_PEER_NGINX_HTTPS", "127.0.0.1:4001"),
        ("COURIER_PEER_NGINX_BADTLS", "127.0.0.1:4002"),
        ("COURIER_PEER_NGINX_UNIX", "/s/nginx-4000.sock"),
        ("COURIER_PEER_NGINX_WWW", "/s/nginx-4000/www"),
        ("COURIER_PEER_HTTPBIN_HTTP", "127.0.0.1:5000"),
        ("COURIER_PEER_HTTPBIN_UNIX", "/s/httpbin-5000.sock"),
        ("COURIER_PEER_AIOHTTP_HTTP", "127.0.0.1:6000"),
        ("COURIER_PEER_AIOHTTP_HTTPS", "127.0.0.1:6001"),
        ("COURIER_PEER_AIOHTTP_UNIX", "/s/aiohttp-6000.sock"),
        ("COURIER_PEER_WS_ECHO_WS", "127.0.0.1:6500"),
        ("COURIER_PEER_WS_ECHO_WSS", "127.0.0.1:6501"),
        ("COURIER_PEER_WS_ECHO_UNIX", "/s/ws-echo-6500.sock"),
        ("COURIER_PEER_TINYPROXY_HTTP", "127.0.0.1:7000"),
        ("COURIER_PEER_TINYPROXY_AUTH_HTTP", "127.0.0.1:7001"),
        ("COURIER_PEER_SQUID_HTTP", "127.0.0.1:7002"),
        ("COURIER_PEER_SQUID_AUTH_HTTP", "127.0.0.1:7003"),
    ];

    #[test]
    fn reads_every_peer() {
        let get = env(FULL);
        let nginx = nginx_from(&get).unwrap();
        assert_eq!(nginx.http, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(nginx.https, "127.0.0.1:4001".parse().unwrap());
        assert_eq!(nginx.badtls, "127.0.0.1:4002".parse().unwrap());
        assert_eq!(nginx.unix, Path::new("/s/nginx-4000.sock"));
        assert_eq!(nginx.www, Path::new("/s/nginx-4000/www"));
        assert_eq!(nginx.url("/hello.txt"), "http://127.0.0.1:4000/hello.txt");

        let httpbin = httpbin_from(&get).unwrap();
        assert_eq!(httpbin.http.port(), 5000);
        assert_eq!(httpbin.unix, Path::new("/s/httpbin-5000.sock"));

        let aiohttp = aiohttp_from(&get).unwrap();
        assert_eq!(aiohttp.https.port(), 6001);
        assert_eq!(aiohttp.url("/echo?a=1"), "http://127.0.0.1:6000/echo?a=1");

        let ws_echo = ws_echo_from(&get).unwrap();
        assert_eq!(ws_echo.ws_url("/headers"), "ws://127.0.0.1:6500/headers");
        assert_eq!(ws_echo.wss_url("/"), "wss://127.0.0.1:6501/");
        assert_eq!(ws_echo.unix, Path::new("/s/ws-echo-6500.sock"));

        let tinyproxy = proxy_from(&get, "tinyproxy", false).unwrap();
        assert_eq!(tinyproxy.addr.port(), 7000);
        assert_eq!(tinyproxy.auth, None);
        assert_eq!(tinyproxy.url(), "http://127.0.0.1:7000");
        let auth = Some(("user".to_owned(), "pass".to_owned()));
        let tinyproxy_auth = proxy_from(&get, "tinyproxy-auth", true).unwrap();
        assert_eq!(tinyproxy_auth.addr.port(), 7001);
        assert_eq!(tinyproxy_auth.auth, auth);
        let squid = proxy_from(&get, "squid", false).unwrap();
        assert_eq!(squid.url(), "http://127.0.0.1:7002");
        assert_eq!(squid.auth, None);
        let squid_auth = proxy_from(&get, "squid-auth", true).unwrap();
        assert_eq!(squid_auth.url(), "http://127.0.0.1:7003");
        assert_eq!(squid_auth.auth, auth);

        let set = Vars::set(&get);
        assert_eq!(set.path_var(CA_VAR).unwrap(), Path::new("/s/certs/ca.pem"));
        assert_eq!(set.path_var(SCRATCH_VAR).unwrap(), Path::new("/s"));
        assert_eq!(certs_dir_from(&get).unwrap(), Path::new("/s/certs"));
    }

    #[test]
    fn missing_variable_says_how_to_start_the_peers() {
        let get = env(&FULL[..3]);
        let err = nginx_from(&get).unwrap_err();
        assert_eq!(
            err.to_string(),
            "peer nginx is not running: run the suite with `cargo xtask test`, or \
             `cargo xtask peers start` and export what it prints \
             (COURIER_PEER_NGINX_HTTPS is not set)"
        );
        let err = httpbin_from(&get).unwrap_err();
        assert!(
            err.to_string().starts_with("peer httpbin is not running: "),
            "{err}"
        );
        let err = proxy_from(&get, "squid-auth", true).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("peer squid-auth is not running: ")
                && err
                    .to_string()
                    .ends_with("(COURIER_PEER_SQUID_AUTH_HTTP is not set)"),
            "{err}"
        );
    }

    #[test]
    fn empty_variable_counts_as_missing() {
        let get = env(&[("COURIER_PEER_HTTPBIN_HTTP", "")]);
        assert!(matches!(
            httpbin_from(&get),
            Err(EnvError::Missing { var, .. }) if var == "COURIER_PEER_HTTPBIN_HTTP"
        ));
    }

    #[test]
    fn malformed_values_are_named() {
        let mut pairs = FULL.to_vec();
        pairs[2] = ("COURIER_PEER_NGINX_HTTP", "localhost");
        let err = nginx_from(&env(&pairs)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("COURIER_PEER_NGINX_HTTP=`localhost` is not a socket address"),
            "{err}"
        );

        let mut pairs = FULL.to_vec();
        pairs[11] = ("COURIER_PEER_AIOHTTP_UNIX", "aiohttp.sock");
        let err = aiohttp_from(&env(&pairs)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("COURIER_PEER_AIOHTTP_UNIX=`aiohttp.sock` is not an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn the_set_is_named_when_its_variables_are_missing() {
        let get = env(&[]);
        let err = Vars::set(&get).path_var(CA_VAR).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the set of test peers is not running: run the suite with"),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "peer aiohttp is not running: run the suite with `cargo xtask test`")]
    fn accessor_panics_instead_of_skipping() {
        or_panic(aiohttp_from(&env(&[])));
    }
}
