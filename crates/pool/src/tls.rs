//! TLS for `https` and `wss` connections on rustls: aiohttp
//! `TCPConnector`'s `verify_ssl`, `fingerprint` and `ssl_context`.
//!
//! [`TlsConfig`] holds the settings and is built with methods that take and
//! return it. [`TlsConfig::build`] checks them once and makes a
//! [`TlsConnector`]. [`TlsConnector::connect`] runs the handshake over an
//! already connected [`Stream`] (TCP, or a proxy tunnel) and checks the
//! pinned [`Fingerprint`] when there is one.
//!
//! | aiohttp | here |
//! |---|---|
//! | `verify_ssl=True` (default) | [`TlsConfig::new`]: the platform's roots, plus the ones you add |
//! | `verify_ssl=False` | [`TlsConfig::verify_ssl`]`(false)`: **any certificate is accepted** |
//! | `fingerprint=b"..."` (MD5, SHA-1, SHA-256 of the DER certificate) | [`TlsConfig::fingerprint`] with a [`Fingerprint`] |
//! | `ssl_context=ctx` | [`TlsConfig::ssl_context`] with a rustls [`ClientConfig`] |
//! | `connector.verify_ssl`, `connector.fingerprint` | [`TlsConnector::verify_ssl`], [`TlsConnector::fingerprint`] |
//!
//! Certificates come in as DER ([`CertificateDer`], [`PrivateKeyDer`]) or as
//! PEM text (files read by the caller). courier only speaks HTTP/1.1, so every
//! configuration offers exactly one ALPN protocol, `http/1.1`.
//!
//! # Failures
//!
//! A refused certificate or a failed handshake is [`Error::Tls`], whose
//! [`TlsErrorKind`] tells an expired certificate, an
//! unknown issuer (including self-signed certificates), a wrong host name and
//! a revoked certificate apart from other failures; a pin that does not match
//! is [`Error::FingerprintMismatch`].
//!
//! # Examples
//!
//! Trusting a self-signed server by its pinned SHA-256 digest only, as
//! aiohttp's `TCPConnector(verify_ssl=False, fingerprint=...)` does:
//!
//! ```
//! use courier_pool::tls::{Fingerprint, FingerprintAlgorithm, TlsConfig};
//!
//! let pin: Fingerprint =
//!     "5B:2E:0F:8C:7A:61:43:D3:9E:12:A4:0C:77:B9:08:6E:41:F2:3D:95:C8:1A:67:E0:BD:52:84:39:AF:06:71:C2"
//!         .parse()?;
//! assert_eq!(pin.algorithm(), FingerprintAlgorithm::Sha256);
//!
//! let tls = TlsConfig::new().verify_ssl(false).fingerprint(pin).build()?;
//! assert!(!tls.verify_ssl());
//! assert_eq!(tls.fingerprint(), Some(&pin));
//! # Ok::<(), courier_pool::ConfigError>(())
//! ```
//!
//! Trusting a private CA in addition to the platform's roots:
//!
//! ```no_run
//! use courier_pool::tls::TlsConfig;
//!
//! let ca = std::fs::read("ca.pem")?;
//! let tls = TlsConfig::new().add_root_certificates_pem(&ca)?.build()?;
//! # drop(tls);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use md5::Md5;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::{ConfigError, Error, Stream, TlsErrorKind};

/// The one ALPN protocol every configuration offers: courier speaks
/// HTTP/1.1 only, and a server that picked `h2` from a longer list would
/// answer in a protocol courier cannot read.
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// TLS settings for a connector (aiohttp `TCPConnector`'s `verify_ssl`,
/// `fingerprint` and `ssl_context`), turned into a [`TlsConnector`] by
/// [`build`](Self::build).
///
/// The defaults verify every server certificate against the platform's
/// root certificates (read once per process, with the `native-roots`
/// feature, on by default) and Mozilla's compiled-in roots (with the
/// `webpki-roots` feature), plus any root added here. rustls uses the crypto
/// provider of the `ring` feature (the default), else of `aws-lc-rs`.
///
/// Methods take and return the config; the ones that parse PEM return a
/// `Result` at once, and [`build`](Self::build) rejects combinations that
/// cannot work.
///
/// ```
/// use courier_pool::tls::{Fingerprint, TlsConfig};
///
/// // A server certificate pinned by its SHA-256 digest, on top of the
/// // usual verification.
/// let pin = Fingerprint::new(&[0x5b; 32])?;
/// let config = TlsConfig::new().fingerprint(pin);
/// # drop(config);
/// # Ok::<(), courier_pool::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    verify: bool,
    built_in_roots: bool,
    roots: Vec<CertificateDer<'static>>,
    client_auth: Option<ClientAuth>,
    context: Option<Arc<ClientConfig>>,
    fingerprint: Option<Fingerprint>,
}

/// A client certificate chain and its private key; the key is shared
/// because [`PrivateKeyDer`] is deliberately not `Clone`.
#[derive(Clone)]
struct ClientAuth {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            verify: true,
            built_in_roots: true,
            roots: Vec::new(),
            client_auth: None,
            context: None,
            fingerprint: None,
        }
    }
}

impl fmt::Debug for TlsConfig {
    /// Shows the settings, never key material or whole certificates.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("verify_ssl", &self.verify)
            .field("built_in_roots", &self.built_in_roots)
            .field("added_roots", &self.roots.len())
            .field("client_auth", &self.client_auth.is_some())
            .field("ssl_context", &self.context.is_some())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl TlsConfig {
    /// The defaults: certificates verified against the built-in roots, no
    /// client certificate, no pin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether server certificates are verified (aiohttp `verify_ssl`).
    ///
    /// **`false` turns off the protection TLS exists for.** Any certificate
    /// is then accepted: expired, self-signed, issued for another host or
    /// by nobody anyone trusts, so whoever sits on the network path can read
    /// and change the traffic. The handshake signatures are still checked
    /// with the crypto provider's algorithms, which only proves the server
    /// holds the key of the certificate it sent, not who it is. Use it for
    /// a test server, or together with [`fingerprint`](Self::fingerprint),
    /// which then becomes the only check.
    ///
    /// Added roots are ignored while verification is off. Cannot be
    /// combined with [`ssl_context`](Self::ssl_context), whose own verifier
    /// decides.
    ///
    /// Defaults to `true`.
    pub fn verify_ssl(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }

    /// Whether the platform's root certificates (`native-roots` feature)
    /// and Mozilla's compiled-in ones (`webpki-roots` feature) are trusted.
    ///
    /// `false` trusts only the roots added with
    /// [`add_root_certificate`](Self::add_root_certificate): for servers
    /// of a private PKI that must not be reachable with a public
    /// certificate.
    ///
    /// Defaults to `true`.
    pub fn built_in_roots(mut self, enabled: bool) -> Self {
        self.built_in_roots = enabled;
        self
    }

    /// Uses the caller's rustls configuration as is (aiohttp
    /// `ssl_context`): its verifier, roots, client certificate, protocol
    /// versions and crypto provider.
    ///
    /// One thing is changed, in a copy: the ALPN protocols become exactly
    /// `http/1.1`, the only protocol courier speaks. A pinned
    /// [`fingerprint`](Self::fingerprint) is still checked after the
    /// handshake. [`verify_ssl(false)`](Self::verify_ssl), added roots and
    /// [`client_auth`](Self::client_auth) have nowhere to go and make
    /// [`build`](Self::build) fail.
    ///
    /// Defaults to none: courier makes the configuration.
    pub fn ssl_context(mut self, config: Arc<ClientConfig>) -> Self {
        self.context = Some(config);
        self
    }

    /// Trusts one more root certificate (DER), such as a private CA.
    ///
    /// The certificate is parsed by [`build`](Self::build), which fails if
    /// it cannot be a trust anchor.
    ///
    /// Defaults to none added.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.roots.push(cert);
        self
    }

    /// Trusts every certificate in a PEM text (the `CERTIFICATE` blocks of a
    /// CA bundle, in any number; other blocks are skipped).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the text is not valid PEM or holds no
    /// `CERTIFICATE` block.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let certs = certificates_from_pem(pem, "root certificates")?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// Presents a client certificate when the server asks for one (mutual
    /// TLS): the chain, leaf first, and the leaf's private key (PKCS#8,
    /// PKCS#1 or SEC1).
    ///
    /// The key is checked against the crypto provider by
    /// [`build`](Self::build). Cannot be combined with
    /// [`ssl_context`](Self::ssl_context).
    ///
    /// Defaults to no client certificate.
    pub fn client_auth(
        mut self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.client_auth = Some(ClientAuth {
            chain: cert_chain,
            key: Arc::new(key),
        });
        self
    }

    /// [`client_auth`](Self::client_auth) from PEM texts: the certificate
    /// chain (leaf first) and the private key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when either text is not valid PEM, the
    /// chain holds no `CERTIFICATE` block, or the key text holds no
    /// `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block.
    pub fn client_auth_pem(
        self,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let chain = certificates_from_pem(cert_chain_pem, "the client certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
            ConfigError::Invalid(format!(
                "no usable private key (PKCS#8, PKCS#1 or SEC1 PEM block) for the client \
                 certificate: {e}"
            ))
        })?;
        Ok(self.client_auth(chain, key))
    }

    /// Pins the server's certificate: after the handshake, the digest of
    /// the leaf certificate the server sent must equal `fingerprint`
    /// (aiohttp `fingerprint`).
    ///
    /// With verification on, both the usual checks and the pin apply; with
    /// [`verify_ssl(false)`](Self::verify_ssl), the pin is the only check.
    ///
    /// Defaults to no pin.
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Checks the settings and makes the connector: one rustls
    /// [`ClientConfig`] with SNI on and ALPN `http/1.1`, shared by every
    /// connection.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when:
    ///
    /// - verification is on and there is no root certificate to trust (the
    ///   platform store is empty or unreadable, the `webpki-roots` feature
    ///   is off, and none was added);
    /// - an added root certificate cannot be parsed;
    /// - the client certificate's key is unusable;
    /// - [`ssl_context`](Self::ssl_context) is combined with
    ///   [`verify_ssl(false)`](Self::verify_ssl), added roots or
    ///   [`client_auth`](Self::client_auth);
    /// - neither the `ring` nor the `aws-lc-rs` feature is on and no
    ///   process-wide rustls [`CryptoProvider`] is installed.
    pub fn build(&self) -> Result<TlsConnector, ConfigError> {
        self.build_with(built_in_roots)
    }

    /// [`build`](Self::build), with the built-in roots from `built_in`
    /// (called only when they are used), so tests can supply an empty set.
    fn build_with(
        &self,
        built_in: impl FnOnce() -> &'static RootCertStore,
    ) -> Result<TlsConnector, ConfigError> {
        let mut config = match &self.context {
            Some(context) => {
                self.check_context_conflicts()?;
                ClientConfig::clone(context)
            }
            None => self.own_client_config(built_in)?,
        };
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(TlsConnector {
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            verify: self.verify,
            fingerprint: self.fingerprint,
        })
    }

    /// Refuses the settings that [`ssl_context`](Self::ssl_context) would
    /// silently override.
    fn check_context_conflicts(&self) -> Result<(), ConfigError> {
        let conflict = if !self.verify {
            "verify_ssl(false)"
        } else if !self.roots.is_empty() {
            "added root certificates"
        } else if self.client_auth.is_some() {
            "client_auth"
        } else {
            return Ok(());
        };
        Err(ConfigError::Invalid(format!(
            "ssl_context conflicts with {conflict}: the given rustls ClientConfig is used as \
             is, so set its verifier, roots and client certificate there instead"
        )))
    }

    /// The rustls configuration made from these settings.
    fn own_client_config(
        &self,
        built_in: impl FnOnce() -> &'static RootCertStore,
    ) -> Result<ClientConfig, ConfigError> {
        let provider = crypto_provider()?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "the TLS crypto provider supports no safe protocol version: {e}"
                ))
            })?;
        let builder = if self.verify {
            let roots = self.root_store(built_in)?;
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| {
                        ConfigError::Invalid(format!("cannot verify server certificates: {e}"))
                    })?;
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        };
        match &self.client_auth {
            Some(auth) => builder
                .with_client_auth_cert(auth.chain.clone(), auth.key.clone_key())
                .map_err(|e| {
                    ConfigError::Invalid(format!(
                        "the client certificate or its private key is unusable: {e}"
                    ))
                }),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// The roots to verify against: the built-in ones (when enabled) and
    /// the added ones; an error when that makes none.
    fn root_store(
        &self,
        built_in: impl FnOnce() -> &'static RootCertStore,
    ) -> Result<RootCertStore, ConfigError> {
        let mut store = if self.built_in_roots {
            built_in().clone()
        } else {
            RootCertStore::empty()
        };
        for (index, cert) in self.roots.iter().enumerate() {
            store.add(cert.clone()).map_err(|e| {
                ConfigError::Invalid(format!(
                    "added root certificate #{} cannot be a trust anchor: {e}",
                    index + 1
                ))
            })?;
        }
        if store.is_empty() {
            return Err(ConfigError::Invalid(no_roots_message(self.built_in_roots)));
        }
        Ok(store)
    }
}

/// The message for "verification is on but nothing is trusted", naming
/// every way out that this build offers.
fn no_roots_message(built_in_enabled: bool) -> String {
    let why = if !built_in_enabled {
        "built_in_roots(false) was set and no root certificate was added"
    } else if cfg!(feature = "native-roots") {
        "the platform's certificate store gave none, the `webpki-roots` feature of \
         courier-pool is off, and none was added"
    } else {
        "the `native-roots` and `webpki-roots` features of courier-pool are off and none \
         was added"
    };
    format!(
        "no trusted root certificates to verify servers with: {why}; add the server's CA \
         with TlsConfig::add_root_certificate or add_root_certificates_pem, enable the \
         `native-roots` (with a platform store, e.g. the ca-certificates package) or \
         `webpki-roots` feature, or turn verification off with verify_ssl(false) (unsafe)"
    )
}

/// Parses every `CERTIFICATE` block of `pem`; `what` names them in errors.
fn certificates_from_pem(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Invalid(format!("invalid PEM in {what}: {e}")))?;
    if certs.is_empty() {
        return Err(ConfigError::Invalid(format!(
            "no CERTIFICATE block in the PEM text of {what}"
        )));
    }
    Ok(certs)
}

/// The crypto provider of the enabled feature: `ring` when on, else
/// `aws-lc-rs`, else the process-wide default a program installed.
fn crypto_provider() -> Result<Arc<CryptoProvider>, ConfigError> {
    #[cfg(feature = "ring")]
    let provider = Some(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    let provider = Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    let provider = CryptoProvider::get_default().cloned();
    provider.ok_or_else(|| {
        ConfigError::Invalid(
            "no TLS crypto provider: enable the `ring` or `aws-lc-rs` feature of courier-pool, \
             or install a process-wide rustls CryptoProvider"
                .to_owned(),
        )
    })
}

/// The built-in roots, read once per process: the platform's store
/// (`native-roots`; certificates that do not parse are skipped) and
/// Mozilla's list (`webpki-roots`).
fn built_in_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        #[allow(unused_mut)] // mutated only when a roots feature is on
        let mut store = RootCertStore::empty();
        #[cfg(feature = "native-roots")]
        {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "reading the platform's root certificates");
            }
            let (added, skipped) = store.add_parsable_certificates(found.certs);
            tracing::debug!(added, skipped, "loaded the platform's root certificates");
        }
        #[cfg(feature = "webpki-roots")]
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        store
    })
}

/// The verifier behind [`TlsConfig::verify_ssl`]`(false)`: accepts every
/// certificate, still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    /// The crypto provider's signature algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A built [`TlsConfig`]: turns connected streams into TLS streams.
///
/// Cheap to clone (the rustls configuration is shared). Made by
/// [`TlsConfig::build`]; the connectors call [`connect`](Self::connect)
/// after the TCP connection (or proxy tunnel) is up.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    verify: bool,
    fingerprint: Option<Fingerprint>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("verify_ssl", &self.verify)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Whether server certificates are verified (aiohttp's read-only
    /// `verify_ssl`): `false` only after [`TlsConfig::verify_ssl`]`(false)`.
    /// With [`TlsConfig::ssl_context`] this is `true`, the given
    /// configuration's verifier deciding.
    pub fn verify_ssl(&self) -> bool {
        self.verify
    }

    /// The pinned fingerprint, if any (aiohttp's read-only `fingerprint`).
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }

    /// The rustls configuration every handshake uses.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        self.inner.config()
    }

    /// Runs the TLS handshake with `host` over `stream` and, when a
    /// fingerprint is pinned, checks the server's leaf certificate against
    /// it.
    ///
    /// `host` is the name the certificate must be valid for and, unless it
    /// is an IP address, the SNI sent; IPv6 literals may keep their
    /// brackets. No application data has been exchanged when this returns.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidTarget`] when `host` is neither a DNS name nor an
    ///   IP address;
    /// - [`Error::Tls`] when the handshake fails or the certificate is
    ///   refused, its [`TlsErrorKind`] saying why;
    /// - [`Error::FingerprintMismatch`] when the certificate is not the
    ///   pinned one.
    ///
    /// With TLS 1.3, a server that refuses the client certificate (or
    /// wanted one and got none) says so after the client's handshake is
    /// over: that failure shows as an I/O error on the first read of the
    /// returned stream, not here.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future mid-handshake drops `stream`,
    /// which closes the connection.
    pub async fn connect(&self, stream: Stream, host: &str) -> Result<Stream, Error> {
        let name = server_name(host)?;
        let tls = self
            .inner
            .connect(name, stream)
            .await
            .map_err(|e| tls_error(host, e))?;
        if let Some(expected) = self.fingerprint {
            let leaf = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first());
            let Some(leaf) = leaf else {
                return Err(Error::Tls {
                    host: host.to_owned(),
                    kind: TlsErrorKind::BadCertificate,
                    source: "the server sent no certificate to check the pinned fingerprint \
                             against"
                        .into(),
                });
            };
            let received = Fingerprint::of(expected.algorithm(), leaf);
            if received != expected {
                return Err(Error::FingerprintMismatch {
                    host: host.to_owned(),
                    expected,
                    received,
                });
            }
        }
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The rustls server name for `host`: IP literals (IPv6 with or without
/// brackets) become IP addresses, which rustls sends no SNI for.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned()).map_err(|e| {
        Error::InvalidTarget(format!(
            "{host:?} is not a DNS name or IP address usable for TLS: {e}"
        ))
    })
}

/// [`Error::Tls`] for a failed handshake with `host`; the source is the
/// rustls error itself when there is one, so that callers can downcast it.
fn tls_error(host: &str, error: io::Error) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    let kind = rustls_error
        .as_ref()
        .map_or(TlsErrorKind::Handshake, classify);
    Error::Tls {
        host: host.to_owned(),
        kind,
        source: match rustls_error {
            Some(rustls_error) => Box::new(rustls_error),
            None => Box::new(error),
        },
    }
}

/// What kind of TLS failure a rustls error is: a certificate our verifier
/// refused is told apart by its [`CertificateError`]; anything else
/// (alerts from the peer, protocol errors) is a handshake failure.
fn classify(error: &rustls::Error) -> TlsErrorKind {
    let rustls::Error::InvalidCertificate(cert) = error else {
        return TlsErrorKind::Handshake;
    };
    match cert {
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => TlsErrorKind::Expired,
        CertificateError::UnknownIssuer => TlsErrorKind::UnknownIssuer,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsErrorKind::WrongHost
        }
        CertificateError::Revoked => TlsErrorKind::Revoked,
        _ => TlsErrorKind::BadCertificate,
    }
}

/// The digest algorithms a [`Fingerprint`] can use.
///
/// MD5 and SHA-1 are accepted for compatibility with aiohttp's
/// `fingerprint`, which takes them too; both are broken for collisions, so
/// prefer SHA-256 for new pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FingerprintAlgorithm {
    /// MD5, 16 bytes. Weak: for aiohttp compatibility only.
    Md5,
    /// SHA-1, 20 bytes. Weak: for aiohttp compatibility only.
    Sha1,
    /// SHA-256, 32 bytes: the one to use.
    Sha256,
}

impl FingerprintAlgorithm {
    /// The length of this algorithm's digests, in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Md5 => MD5_LEN,
            Self::Sha1 => SHA1_LEN,
            Self::Sha256 => SHA256_LEN,
        }
    }
}

impl fmt::Display for FingerprintAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
        })
    }
}

/// Length of an MD5 digest in bytes.
const MD5_LEN: usize = 16;
/// Length of a SHA-1 digest in bytes.
const SHA1_LEN: usize = 20;
/// Length of a SHA-256 digest in bytes.
const SHA256_LEN: usize = 32;

/// A digest of a DER-encoded certificate, for pinning a server's
/// certificate (aiohttp `fingerprint`).
///
/// The algorithm follows from the length, as in aiohttp: 16 bytes are MD5,
/// 20 SHA-1, 32 SHA-256. MD5 and SHA-1 are accepted for compatibility with
/// aiohttp, but both are broken for collisions: prefer SHA-256.
///
/// Displayed as colon-separated upper-case hex, the way
/// `openssl x509 -noout -fingerprint -sha256` prints it, and parsed from
/// that or from plain hex.
///
/// ```
/// use courier_pool::tls::{Fingerprint, FingerprintAlgorithm};
///
/// let pin: Fingerprint = "d41d8cd98f00b204e9800998ecf8427e".parse()?;
/// assert_eq!(pin.algorithm(), FingerprintAlgorithm::Md5);
/// assert_eq!(pin, Fingerprint::of(FingerprintAlgorithm::Md5, b""));
/// assert_eq!(pin.to_string(), "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E");
///
/// // 17 bytes is no known digest.
/// assert!(Fingerprint::new(&[0; 17]).is_err());
/// # Ok::<(), courier_pool::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    digest: Digest,
}

/// The digest bytes, one variant per algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Digest {
    Md5([u8; MD5_LEN]),
    Sha1([u8; SHA1_LEN]),
    Sha256([u8; SHA256_LEN]),
}

impl Fingerprint {
    /// A fingerprint from its digest bytes; the length picks the algorithm.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the length is not 16 (MD5), 20 (SHA-1)
    /// or 32 (SHA-256) bytes.
    pub fn new(digest: &[u8]) -> Result<Self, ConfigError> {
        let digest = if let Ok(d) = <[u8; SHA256_LEN]>::try_from(digest) {
            Digest::Sha256(d)
        } else if let Ok(d) = <[u8; SHA1_LEN]>::try_from(digest) {
            Digest::Sha1(d)
        } else if let Ok(d) = <[u8; MD5_LEN]>::try_from(digest) {
            Digest::Md5(d)
        } else {
            return Err(ConfigError::Invalid(format!(
                "a certificate fingerprint of {} bytes: expected {SHA256_LEN} (SHA-256), \
                 {SHA1_LEN} (SHA-1) or {MD5_LEN} (MD5)",
                digest.len()
            )));
        };
        Ok(Self { digest })
    }

    /// A fingerprint from hex, plain (`"d41d8c…"`) or colon-separated
    /// (`"D4:1D:8C:…"`, as openssl prints it), in either case; surrounding
    /// whitespace is ignored. Also available as [`str::parse`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the text is not hex in one of those
    /// forms, or its length is not that of a known digest
    /// (see [`new`](Self::new)).
    pub fn from_hex(hex: &str) -> Result<Self, ConfigError> {
        let hex = hex.trim();
        let invalid = || {
            ConfigError::Invalid(format!(
                "{hex:?} is not a hex certificate fingerprint (plain, or byte pairs separated \
                 by colons)"
            ))
        };
        let mut bytes = Vec::with_capacity(SHA256_LEN);
        if hex.contains(':') {
            for pair in hex.split(':') {
                if pair.len() != 2 {
                    return Err(invalid());
                }
                bytes.push(hex_byte(pair.as_bytes()).ok_or_else(invalid)?);
            }
        } else {
            if hex.is_empty() || !hex.len().is_multiple_of(2) {
                return Err(invalid());
            }
            for pair in hex.as_bytes().chunks(2) {
                bytes.push(hex_byte(pair).ok_or_else(invalid)?);
            }
        }
        Self::new(&bytes)
    }

    /// The fingerprint of a DER-encoded certificate with `algorithm`.
    pub fn of(algorithm: FingerprintAlgorithm, der: &[u8]) -> Self {
        let digest = match algorithm {
            FingerprintAlgorithm::Md5 => Digest::Md5(Md5::digest(der).into()),
            FingerprintAlgorithm::Sha1 => Digest::Sha1(Sha1::digest(der).into()),
            FingerprintAlgorithm::Sha256 => Digest::Sha256(Sha256::digest(der).into()),
        };
        Self { digest }
    }

    /// The digest algorithm.
    pub fn algorithm(&self) -> FingerprintAlgorithm {
        match self.digest {
            Digest::Md5(_) => FingerprintAlgorithm::Md5,
            Digest::Sha1(_) => FingerprintAlgorithm::Sha1,
            Digest::Sha256(_) => FingerprintAlgorithm::Sha256,
        }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.digest {
            Digest::Md5(d) => d,
            Digest::Sha1(d) => d,
            Digest::Sha256(d) => d,
        }
    }
}

/// The byte of two ASCII hex digits (either case).
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    match pair {
        [high, low] => {
            let value = digit(*high)? * 16 + digit(*low)?;
            u8::try_from(value).ok()
        }
        _ => None,
    }
}

impl FromStr for Fingerprint {
    type Err = ConfigError;

    /// See [`Fingerprint::from_hex`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl fmt::Display for Fingerprint {
    /// Colon-separated upper-case hex: `D4:1D:8C:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({} {self})", self.algorithm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const SHA1_ABC: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
    const MD5_ABC: &str = "900150983cd24fb0d6963f7d28e17f72";

    #[test]
    fn the_length_picks_the_algorithm() {
        assert_eq!(
            Fingerprint::new(&[1; 16]).unwrap().algorithm(),
            FingerprintAlgorithm::Md5
        );
        assert_eq!(
            Fingerprint::new(&[1; 20]).unwrap().algorithm(),
            FingerprintAlgorithm::Sha1
        );
        assert_eq!(
            Fingerprint::new(&[1; 32]).unwrap().algorithm(),
            FingerprintAlgorithm::Sha256
        );
        for len in [0, 1, 15, 17, 19, 21, 31, 33, 48, 64] {
            let err = Fingerprint::new(&vec![0; len]).unwrap_err();
            assert_eq!(
                err,
                ConfigError::Invalid(format!(
                    "a certificate fingerprint of {len} bytes: expected 32 (SHA-256), \
                     20 (SHA-1) or 16 (MD5)"
                ))
            );
        }
        for algorithm in [
            FingerprintAlgorithm::Md5,
            FingerprintAlgorithm::Sha1,
            FingerprintAlgorithm::Sha256,
        ] {
            let fp = Fingerprint::of(algorithm, b"x");
            assert_eq!(fp.as_bytes().len(), algorithm.digest_len());
            assert_eq!(Fingerprint::new(fp.as_bytes()).unwrap(), fp);
        }
    }

    #[test]
    fn digests_match_the_published_test_vectors() {
        // FIPS 180-2 and RFC 1321 test vectors for "abc".
        let cases = [
            (FingerprintAlgorithm::Sha256, SHA256_ABC),
            (FingerprintAlgorithm::Sha1, SHA1_ABC),
            (FingerprintAlgorithm::Md5, MD5_ABC),
        ];
        for (algorithm, hex) in cases {
            let expected = Fingerprint::from_hex(hex).unwrap();
            assert_eq!(expected.algorithm(), algorithm);
            assert_eq!(Fingerprint::of(algorithm, b"abc"), expected);
        }
    }

    #[test]
    fn hex_parses_plain_and_colon_separated_in_either_case() {
        let plain = Fingerprint::from_hex(SHA256_ABC).unwrap();
        let upper = Fingerprint::from_hex(&SHA256_ABC.to_uppercase()).unwrap();
        let colons = plain.to_string();
        assert_eq!(
            colons,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
        assert_eq!(upper, plain);
        assert_eq!(Fingerprint::from_hex(&colons).unwrap(), plain);
        assert_eq!(
            Fingerprint::from_hex(&format!("  {}\n", colons.to_lowercase())).unwrap(),
            plain
        );
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), plain);
        assert_eq!(
            format!("{plain:?}"),
            format!("Fingerprint(SHA-256 {colons})")
        );
    }

    #[test]
    fn malformed_hex_is_refused() {
        for bad in [
            "",
            ":",
            "abc",
            "zz",
            "+1",
            "d41d8cd98f00b204e9800998ecf8427",
            "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7",
            "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:427E",
            "D4:1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E:",
            "D4::1D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E",
            "D41D:8C:D9:8F:00:B2:04:E9:80:09:98:EC:F8:42:7E",
            "d4 1d 8c d9 8f 00 b2 04 e9 80 09 98 ec f8 42 7e",
            "d41d8cd98f00b204e9800998ecf8427é",
        ] {
            let err = Fingerprint::from_hex(bad).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid(m) if m.contains("fingerprint")),
                "{bad:?}: {err}"
            );
        }
        // Valid hex of a length no digest has.
        let err = Fingerprint::from_hex("00112233").unwrap_err();
        assert!(err.to_string().contains("of 4 bytes"), "{err}");
    }

    #[test]
    fn pem_errors_name_the_problem() {
        let err = TlsConfig::new().add_root_certificates_pem(b"").unwrap_err();
        assert_eq!(
            err,
            ConfigError::Invalid(
                "no CERTIFICATE block in the PEM text of root certificates".to_owned()
            )
        );
        let err = TlsConfig::new()
            .add_root_certificates_pem(
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid PEM in root certificates"),
            "{err}"
        );

        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = TlsConfig::new()
            .client_auth_pem(key_only, key_only)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("no CERTIFICATE block in the PEM text of the client"),
            "{err}"
        );
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = TlsConfig::new().client_auth_pem(cert, cert).unwrap_err();
        assert!(
            err.to_string().starts_with("no usable private key"),
            "{err}"
        );
    }

    /// The tests that build a configuration, which takes a crypto provider.
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    mod built {
        use super::*;

        #[test]
        fn a_root_that_is_no_certificate_fails_the_build() {
            let err = TlsConfig::new()
                .add_root_certificate(CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]))
                .build_with(empty_roots)
                .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("added root certificate #1 cannot be a trust anchor"),
                "{err}"
            );
        }

        #[test]
        fn a_garbage_client_key_fails_the_build() {
            let err = TlsConfig::new()
                .verify_ssl(false)
                .client_auth(
                    vec![CertificateDer::from(vec![0x30, 0x00])],
                    PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into()),
                )
                .build()
                .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("the client certificate or its private key is unusable"),
                "{err}"
            );
        }

        fn empty_roots() -> &'static RootCertStore {
            static EMPTY: OnceLock<RootCertStore> = OnceLock::new();
            EMPTY.get_or_init(RootCertStore::empty)
        }

        #[test]
        fn no_roots_at_all_is_an_error_that_says_how_to_fix_it() {
            let err = TlsConfig::new().build_with(empty_roots).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("no trusted root certificates"),
                "{message}"
            );
            assert!(message.contains("add_root_certificate"), "{message}");
            assert!(message.contains("webpki-roots"), "{message}");
            assert!(message.contains("verify_ssl(false)"), "{message}");

            let err = TlsConfig::new().built_in_roots(false).build().unwrap_err();
            assert!(err.to_string().contains("built_in_roots(false)"), "{err}");

            // Without verification no root is needed.
            let connector = TlsConfig::new()
                .verify_ssl(false)
                .build_with(empty_roots)
                .unwrap();
            assert!(!connector.verify_ssl());
        }

        #[test]
        fn every_config_offers_exactly_http_1_1() {
            let own = TlsConfig::new().verify_ssl(false).build().unwrap();
            assert_eq!(
                own.client_config().alpn_protocols,
                vec![b"http/1.1".to_vec()]
            );
            assert!(own.client_config().enable_sni);

            let provider = crypto_provider().unwrap();
            let mut user = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: crypto_provider().unwrap().signature_verification_algorithms,
                }))
                .with_no_client_auth();
            user.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            user.enable_sni = false;
            let user = Arc::new(user);
            let built = TlsConfig::new()
                .ssl_context(Arc::clone(&user))
                .build()
                .unwrap();
            assert_eq!(
                built.client_config().alpn_protocols,
                vec![b"http/1.1".to_vec()]
            );
            // Everything else is the user's, and their config is not modified.
            assert!(!built.client_config().enable_sni);
            assert_eq!(user.alpn_protocols.len(), 2);
            assert!(built.verify_ssl());
        }

        #[test]
        fn ssl_context_conflicts_are_refused() {
            let user = Arc::new(
                ClientConfig::builder_with_provider(crypto_provider().unwrap())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth(),
            );
            let base = || TlsConfig::new().ssl_context(Arc::clone(&user));
            let cert = CertificateDer::from(vec![0x30, 0x00]);
            let cases = [
                (base().verify_ssl(false), "verify_ssl(false)"),
                (
                    base().add_root_certificate(cert.clone()),
                    "added root certificates",
                ),
                (
                    base().client_auth(vec![cert], PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into())),
                    "client_auth",
                ),
            ];
            for (config, conflict) in cases {
                let err = config.build().unwrap_err();
                assert!(
                    err.to_string()
                        .starts_with(&format!("ssl_context conflicts with {conflict}:")),
                    "{err}"
                );
            }
            // A pin goes with a user's config.
            let pin = Fingerprint::new(&[7; 32]).unwrap();
            assert_eq!(
                base().fingerprint(pin).build().unwrap().fingerprint(),
                Some(&pin)
            );
        }
    }

    #[test]
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    fn without_a_provider_feature_the_build_says_what_to_enable() {
        let err = TlsConfig::new().verify_ssl(false).build().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no TLS crypto provider: enable the `ring`"),
            "{err}"
        );
    }

    #[test]
    fn certificate_errors_map_to_kinds() {
        use CertificateError as C;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1));
        let cases = [
            (C::Expired, TlsErrorKind::Expired),
            (
                C::ExpiredContext {
                    time,
                    not_after: time,
                },
                TlsErrorKind::Expired,
            ),
            (C::NotValidYet, TlsErrorKind::Expired),
            (C::UnknownIssuer, TlsErrorKind::UnknownIssuer),
            (C::NotValidForName, TlsErrorKind::WrongHost),
            (
                C::NotValidForNameContext {
                    expected: ServerName::try_from("a.example").unwrap(),
                    presented: vec!["b.example".to_owned()],
                },
                TlsErrorKind::WrongHost,
            ),
            (C::Revoked, TlsErrorKind::Revoked),
            (C::BadEncoding, TlsErrorKind::BadCertificate),
            (C::BadSignature, TlsErrorKind::BadCertificate),
            (C::InvalidPurpose, TlsErrorKind::BadCertificate),
            (C::UnknownRevocationStatus, TlsErrorKind::BadCertificate),
        ];
        for (cert_error, kind) in cases {
            let rustls_error = rustls::Error::InvalidCertificate(cert_error);
            let io_error = io::Error::new(io::ErrorKind::InvalidData, rustls_error.clone());
            let Error::Tls {
                host,
                kind: seen,
                source,
            } = tls_error("a.example", io_error)
            else {
                panic!("not a TLS error");
            };
            assert_eq!(
                (host.as_str(), seen),
                ("a.example", kind),
                "{rustls_error:?}"
            );
            // The source is the rustls error itself, for callers to downcast.
            assert_eq!(source.downcast_ref::<rustls::Error>(), Some(&rustls_error));
        }

        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        let io_error = io::Error::new(io::ErrorKind::InvalidData, alert);
        assert!(matches!(
            tls_error("h", io_error),
            Error::Tls {
                kind: TlsErrorKind::Handshake,
                ..
            }
        ));
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        let Error::Tls { kind, source, .. } = tls_error("h", eof) else {
            panic!("not a TLS error");
        };
        assert_eq!(kind, TlsErrorKind::Handshake);
        assert_eq!(
            source.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }

    #[test]
    fn server_names_from_hosts() {
        assert!(matches!(
            server_name("localhost"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        for bad in ["", "a b", "[::1", "exa mple.com"] {
            assert!(
                matches!(server_name(bad), Err(Error::InvalidTarget(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let config = TlsConfig::new().client_auth(
            vec![CertificateDer::from(vec![0x30, 0x00])],
            PrivateKeyDer::Pkcs8(vec![0x42; 8].into()),
        );
        let debug = format!("{config:?}");
        assert!(debug.contains("client_auth: true"), "{debug}");
        assert!(!debug.contains("66"), "{debug}");
    }
}
