//! TLS against real peers: nginx with certificates from the test CA, and
//! small rustls servers started here on 127.0.0.1:0 (self-signed
//! certificate, ALPN and SNI recorder, client-certificate check).
//!
//! Needs the peers running (`cargo xtask test`, or
//! `eval "$(cargo xtask peers start)"`); the peer accessors panic with
//! instructions otherwise. Fingerprints are computed by `openssl`, not by
//! the code under test, and the client certificate is signed by the test CA
//! with `openssl` into a temporary directory of the peers' scratch.
//!
//! Built only with a crypto provider feature (`ring` or `aws-lc-rs`):
//! without one no TLS configuration can be made.

#![cfg(any(feature = "ring", feature = "aws-lc-rs"))]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use courier_pool::tls::{Fingerprint, FingerprintAlgorithm, TlsConfig, TlsConnector};
use courier_pool::{Error, Stream, TlsErrorKind};
use courier_test_support::peers;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Bound on every network step of these tests (all on loopback).
const LIMIT: Duration = Duration::from_secs(10);

/// What the in-test servers send after a successful handshake.
const GREETING: &[u8] = b"hello over tls";

fn cert_path(name: &str) -> PathBuf {
    peers::certs_dir().join(name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Verification on, trusting the test CA only.
///
/// Not the machine's roots as well: a machine whose store holds a root
/// named `CN=localhost` (this one does) makes the self-signed certificate,
/// issued by `CN=localhost`, fail with a bad signature instead of an
/// unknown issuer.
fn with_test_ca() -> TlsConfig {
    TlsConfig::new()
        .built_in_roots(false)
        .add_root_certificates_pem(&read(&peers::ca_pem()))
        .unwrap()
}

/// Verification on, trusting only a root unrelated to the peers (the
/// self-signed certificate), so the outcome does not depend on the
/// machine's certificate store.
fn with_unrelated_root() -> TlsConfig {
    TlsConfig::new()
        .built_in_roots(false)
        .add_root_certificates_pem(&read(&cert_path("selfsigned.pem")))
        .unwrap()
}

async fn connect(config: &TlsConfig, addr: SocketAddr, host: &str) -> Result<Stream, Error> {
    let connector = config.build().unwrap();
    connect_with(&connector, addr, host).await
}

async fn connect_with(
    connector: &TlsConnector,
    addr: SocketAddr,
    host: &str,
) -> Result<Stream, Error> {
    let tcp = tokio::time::timeout(LIMIT, TcpStream::connect(addr))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect failed");
    tokio::time::timeout(LIMIT, connector.connect(Stream::Tcp(tcp), host))
        .await
        .expect("TLS handshake timed out")
}

#[track_caller]
fn assert_tls_kind(result: Result<Stream, Error>, expected: TlsErrorKind) -> rustls::Error {
    match result {
        Err(Error::Tls { kind, source, .. }) => {
            assert_eq!(kind, expected, "source: {source:?}");
            match source.downcast::<rustls::Error>() {
                Ok(rustls_error) => *rustls_error,
                Err(other) => panic!("source is not a rustls error: {other:?}"),
            }
        }
        Err(other) => panic!("expected a TLS error of kind {expected:?}, got {other:?}"),
        Ok(stream) => panic!("expected a TLS error of kind {expected:?}, got {stream:?}"),
    }
}

/// `GET path` over `stream`, returning the whole response (nginx closes
/// after it: `Connection: close`).
async fn get(stream: &mut Stream, host: &str, path: &str) -> Vec<u8> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(LIMIT, stream.read_to_end(&mut response))
        .await
        .expect("response timed out");
    // A server that closes without close_notify ends in UnexpectedEof.
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    response
}

fn ends_with(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[haystack.len() - needle.len()..] == *needle
}

#[tokio::test]
async fn test_ca_verifies_nginx_by_name_and_by_ip() {
    let nginx = peers::nginx();
    let hello = nginx.file("hello.txt");
    let ca = read(&peers::ca_pem());
    let with_built_in = TlsConfig::new().add_root_certificates_pem(&ca).unwrap();
    for (config, host) in [
        (&with_test_ca(), "localhost"),
        (&with_test_ca(), "127.0.0.1"),
        (&with_built_in, "localhost"),
    ] {
        let mut stream = connect(config, nginx.https, host)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}"));
        assert!(stream.is_tls());
        let session = stream.tls_session().unwrap();
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]), "{host}");
        let response = get(&mut stream, host, "/hello.txt").await;
        assert!(
            response.starts_with(b"HTTP/1.1 200 "),
            "{host}: {response:?}"
        );
        assert!(ends_with(&response, &hello), "{host}: {response:?}");
    }
}

#[tokio::test]
async fn nginx_without_the_test_ca_is_an_unknown_issuer() {
    let nginx = peers::nginx();
    let error = assert_tls_kind(
        connect(&with_unrelated_root(), nginx.https, "localhost").await,
        TlsErrorKind::UnknownIssuer,
    );
    assert_eq!(
        error,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn badtls_with_the_test_ca_is_the_wrong_host() {
    let nginx = peers::nginx();
    for host in ["localhost", "127.0.0.1"] {
        let error = assert_tls_kind(
            connect(&with_test_ca(), nginx.badtls, host).await,
            TlsErrorKind::WrongHost,
        );
        assert!(
            matches!(
                error,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{host}: {error:?}"
        );
    }
    // The name the certificate is for verifies (SNI picks nothing in nginx
    // here: the port serves that one certificate).
    connect(&with_test_ca(), nginx.badtls, "wrong.example")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_error_names_host_and_kind() {
    let nginx = peers::nginx();
    let error = connect(&with_test_ca(), nginx.badtls, "localhost")
        .await
        .unwrap_err();
    assert!(error.is_tls());
    assert_eq!(
        error.to_string(),
        "TLS handshake with localhost failed: certificate not valid for this host name"
    );
}

#[tokio::test]
async fn self_signed_is_an_unknown_issuer() {
    let server = TestServer::start(ServerCert::SelfSigned, None).await;
    let error = assert_tls_kind(
        connect(&with_test_ca(), server.addr, "localhost").await,
        TlsErrorKind::UnknownIssuer,
    );
    assert_eq!(
        error,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    assert!(server.finish().await.result.is_err());
}

#[tokio::test]
async fn verify_ssl_false_accepts_the_wrong_host_and_self_signed() {
    let insecure = TlsConfig::new().verify_ssl(false);
    assert!(!insecure.build().unwrap().verify_ssl());

    let nginx = peers::nginx();
    let mut stream = connect(&insecure, nginx.badtls, "localhost").await.unwrap();
    let response = get(&mut stream, "localhost", "/hello.txt").await;
    assert!(
        ends_with(&response, &nginx.file("hello.txt")),
        "{response:?}"
    );

    let server = TestServer::start(ServerCert::SelfSigned, None).await;
    let mut stream = connect(&insecure, server.addr, "localhost").await.unwrap();
    assert_eq!(read_all(&mut stream).await.unwrap(), GREETING);
    server.finish().await.result.unwrap();
}

/// `openssl x509 -noout -fingerprint -<digest> -in <pem>`, parsed.
fn openssl_fingerprint(pem: &Path, digest: &str) -> Fingerprint {
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            &format!("-{digest}"),
            "-in",
        ])
        .arg(pem)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // "SHA256 Fingerprint=AB:CD:..."
    let hex = text.split_once('=').expect("openssl output").1;
    let fingerprint = Fingerprint::from_hex(hex).unwrap();
    // Display is the same colon-separated upper-case hex openssl prints.
    assert_eq!(fingerprint.to_string(), hex.trim());
    fingerprint
}

#[tokio::test]
async fn pins_of_the_served_certificate_match_in_every_algorithm() {
    let nginx = peers::nginx();
    let server_pem = cert_path("server.pem");
    for (digest, algorithm) in [
        ("sha256", FingerprintAlgorithm::Sha256),
        ("sha1", FingerprintAlgorithm::Sha1),
        ("md5", FingerprintAlgorithm::Md5),
    ] {
        let pin = openssl_fingerprint(&server_pem, digest);
        assert_eq!(pin.algorithm(), algorithm);
        let config = with_test_ca().fingerprint(pin);
        assert_eq!(config.build().unwrap().fingerprint(), Some(&pin));
        connect(&config, nginx.https, "localhost")
            .await
            .unwrap_or_else(|e| panic!("{digest}: {e:?}"));
        // The pin alone, without verification, too.
        connect(
            &TlsConfig::new().verify_ssl(false).fingerprint(pin),
            nginx.https,
            "127.0.0.1",
        )
        .await
        .unwrap_or_else(|e| panic!("{digest} without verification: {e:?}"));
    }
}

#[tokio::test]
async fn a_wrong_pin_is_a_mismatch_naming_both_digests() {
    let nginx = peers::nginx();
    let actual = openssl_fingerprint(&cert_path("server.pem"), "sha256");
    let wrong = openssl_fingerprint(&cert_path("wronghost.pem"), "sha256");
    assert_ne!(actual, wrong);
    for config in [
        with_test_ca().fingerprint(wrong),
        TlsConfig::new().verify_ssl(false).fingerprint(wrong),
    ] {
        match connect(&config, nginx.https, "localhost").await {
            Err(error @ Error::FingerprintMismatch { .. }) => {
                assert!(error.is_tls());
                assert_eq!(
                    error.to_string(),
                    format!(
                        "certificate of localhost does not match the pinned fingerprint: \
                         expected {wrong}, got {actual}"
                    )
                );
                let Error::FingerprintMismatch {
                    host,
                    expected,
                    received,
                } = error
                else {
                    unreachable!()
                };
                assert_eq!(
                    (host.as_str(), expected, received),
                    ("localhost", wrong, actual)
                );
            }
            other => panic!("expected a fingerprint mismatch, got {other:?}"),
        }
    }
    // A pin of another algorithm is compared in its own algorithm.
    let sha1_wrong = openssl_fingerprint(&cert_path("wronghost.pem"), "sha1");
    let error = connect(
        &with_test_ca().fingerprint(sha1_wrong),
        nginx.https,
        "localhost",
    )
    .await
    .unwrap_err();
    let Error::FingerprintMismatch { received, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(
        received,
        openssl_fingerprint(&cert_path("server.pem"), "sha1")
    );
}

#[tokio::test]
async fn a_pin_without_verification_trusts_the_self_signed_server() {
    let pin = openssl_fingerprint(&cert_path("selfsigned.pem"), "sha256");
    let server = TestServer::start(ServerCert::SelfSigned, None).await;
    let config = TlsConfig::new().verify_ssl(false).fingerprint(pin);
    let mut stream = connect(&config, server.addr, "localhost").await.unwrap();
    assert_eq!(read_all(&mut stream).await.unwrap(), GREETING);
    server.finish().await.result.unwrap();

    // Verification on as well: the pin does not override the CA check.
    let server = TestServer::start(ServerCert::SelfSigned, None).await;
    assert_tls_kind(
        connect(&with_test_ca().fingerprint(pin), server.addr, "localhost").await,
        TlsErrorKind::UnknownIssuer,
    );
    drop(server.finish().await);
}

#[tokio::test]
async fn the_client_offers_exactly_http_1_1_and_sni_only_for_names() {
    for (host, sni) in [("localhost", Some("localhost")), ("127.0.0.1", None)] {
        let server = TestServer::start(ServerCert::Server, None).await;
        let mut stream = connect(&with_test_ca(), server.addr, host).await.unwrap();
        assert_eq!(read_all(&mut stream).await.unwrap(), GREETING);
        let seen = server.finish().await;
        seen.result.unwrap();
        assert_eq!(seen.alpn, Some(vec![b"http/1.1".to_vec()]), "{host}");
        assert_eq!(seen.sni.as_deref(), sni, "{host}");
    }
}

#[tokio::test]
async fn ssl_context_is_used_as_is_but_offers_only_http_1_1() {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(peers::ca_pem()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut user = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    user.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let config = TlsConfig::new().ssl_context(Arc::new(user));

    let server = TestServer::start(ServerCert::Server, None).await;
    let mut stream = connect(&config, server.addr, "localhost").await.unwrap();
    assert_eq!(read_all(&mut stream).await.unwrap(), GREETING);
    let seen = server.finish().await;
    assert_eq!(seen.alpn, Some(vec![b"http/1.1".to_vec()]));

    // The user's roots decide: the self-signed server is refused.
    let server = TestServer::start(ServerCert::SelfSigned, None).await;
    assert_tls_kind(
        connect(&config, server.addr, "localhost").await,
        TlsErrorKind::UnknownIssuer,
    );
    drop(server.finish().await);
}

#[tokio::test]
async fn a_client_certificate_from_the_ca_is_accepted_when_required() {
    let client = ClientCert::generate();
    let server = TestServer::start(ServerCert::Server, Some(&peers::ca_pem())).await;
    let config = with_test_ca()
        .client_auth_pem(&read(&client.cert), &read(&client.key))
        .unwrap();
    let mut stream = connect(&config, server.addr, "localhost").await.unwrap();
    assert_eq!(read_all(&mut stream).await.unwrap(), GREETING);
    let seen = server.finish().await;
    let presented = seen.result.unwrap();
    let expected = CertificateDer::from_pem_file(&client.cert).unwrap();
    assert_eq!(presented, Some(expected));
}

#[tokio::test]
async fn a_server_requiring_a_client_certificate_refuses_a_client_without_one() {
    let server = TestServer::start(ServerCert::Server, Some(&peers::ca_pem())).await;
    let client_side = match connect(&with_test_ca(), server.addr, "localhost").await {
        // TLS 1.3: the client's handshake is over before the server has
        // looked at the (empty) certificate; the refusal is the first read.
        Ok(mut stream) => read_all(&mut stream).await.unwrap_err().to_string(),
        Err(error) => format!("{error:?}"),
    };
    assert!(
        client_side.contains("CertificateRequired"),
        "client saw: {client_side}"
    );
    let server_side = server.finish().await.result.unwrap_err();
    assert!(
        server_side.contains("no certificates"),
        "server saw: {server_side}"
    );
}

#[tokio::test]
async fn tls_to_a_plain_http_port_is_a_handshake_failure() {
    let nginx = peers::nginx();
    let error = assert_tls_kind(
        connect(&with_test_ca(), nginx.http, "localhost").await,
        TlsErrorKind::Handshake,
    );
    assert!(
        matches!(error, rustls::Error::InvalidMessage(_)),
        "{error:?}"
    );
}

async fn read_all(stream: &mut Stream) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut data))
        .await
        .expect("read timed out")?;
    Ok(data)
}

/// The crypto provider the client uses, for the in-test servers.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let connector = TlsConfig::new().verify_ssl(false).build().unwrap();
    Arc::clone(connector.client_config().crypto_provider())
}

/// Which certificate an in-test server presents.
#[derive(Debug, Clone, Copy)]
enum ServerCert {
    /// `server.pem`: localhost, 127.0.0.1, ::1, from the test CA.
    Server,
    /// `selfsigned.pem`.
    SelfSigned,
}

/// What an in-test server saw of its one client.
#[derive(Debug)]
struct Seen {
    /// The SNI the client sent.
    sni: Option<String>,
    /// The ALPN protocols the client offered.
    alpn: Option<Vec<Vec<u8>>>,
    /// The handshake's outcome: the client's certificate, if it sent one.
    result: Result<Option<CertificateDer<'static>>, String>,
}

/// A rustls server on 127.0.0.1:0 for one connection: it records the
/// ClientHello, completes the handshake, sends [`GREETING`] and closes.
struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<Seen>,
}

impl TestServer {
    /// Starts it; `client_ca` makes it require a client certificate from
    /// that CA.
    async fn start(cert: ServerCert, client_ca: Option<&Path>) -> Self {
        let (cert, key) = match cert {
            ServerCert::Server => ("server.pem", "server.key"),
            ServerCert::SelfSigned => ("selfsigned.pem", "selfsigned.key"),
        };
        let chain = vec![CertificateDer::from_pem_file(cert_path(cert)).unwrap()];
        let key = PrivateKeyDer::from_pem_file(cert_path(key)).unwrap();
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_file(ca).unwrap())
                    .unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
            let start = match acceptor.await {
                Ok(start) => start,
                Err(e) => {
                    return Seen {
                        sni: None,
                        alpn: None,
                        result: Err(e.to_string()),
                    };
                }
            };
            let hello = start.client_hello();
            let sni = hello.server_name().map(str::to_owned);
            let alpn = hello.alpn().map(|list| list.map(<[u8]>::to_vec).collect());
            let result = match start.into_stream(config).await {
                Ok(mut tls) => {
                    let client_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| c.clone().into_owned());
                    let written = async {
                        tls.write_all(GREETING).await?;
                        tls.shutdown().await
                    };
                    written
                        .await
                        .map(|()| client_cert)
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            Seen { sni, alpn, result }
        });
        Self { addr, task }
    }

    /// What the server saw, once it is done.
    async fn finish(self) -> Seen {
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("test server did not finish")
            .expect("test server panicked")
    }
}

/// A client certificate (EC P-256, `extendedKeyUsage=clientAuth`) signed by
/// the test CA, in a directory removed on drop.
struct ClientCert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl ClientCert {
    fn generate() -> Self {
        let dir = peers::scratch().join(format!(
            "tls-test-client-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let this = Self {
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
            dir,
        };
        let csr = this.dir.join("client.csr");
        let ext = this.dir.join("ext.cnf");
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let certs = peers::certs_dir();
        run_openssl(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-subj"])
                .arg("/CN=courier-test-client")
                .arg("-keyout")
                .arg(&this.key)
                .arg("-out")
                .arg(&csr),
        );
        run_openssl(
            Command::new("openssl")
                .args([
                    "x509",
                    "-req",
                    "-sha256",
                    "-days",
                    "1",
                    "-set_serial",
                    "4242",
                ])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(certs.join("ca.pem"))
                .arg("-CAkey")
                .arg(certs.join("ca.key"))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&this.cert),
        );
        this
    }
}

impl Drop for ClientCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_openssl(command: &mut Command) {
    let out = command.output().expect("run openssl");
    assert!(out.status.success(), "{command:?}: {out:?}");
}
