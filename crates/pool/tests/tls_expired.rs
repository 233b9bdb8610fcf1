//! Certificates outside their validity period, made at test time (OpenSSL
//! 3.0 on the peers' machine cannot back-date one, so no peer serves such a
//! certificate): an expired leaf and a not-yet-valid leaf, both from a CA
//! the client trusts, must fail verification as `TlsErrorKind::Expired`.
#![cfg(any(feature = "ring", feature = "aws-lc-rs"))]

use std::sync::Arc;
use std::time::Duration;

use courier_pool::{Connector, Error, Scheme, Target, TcpConnector, TlsErrorKind};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// A CA and a `localhost` leaf valid from `from` to `until` (years).
fn chain(
    from: i32,
    until: i32,
) -> (
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params.not_before = date_time_ymd(from, 1, 1);
    leaf_params.not_after = date_time_ymd(until, 1, 1);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca.der().clone(), leaf.der().clone(), key)
}

/// Serves TLS handshakes with `leaf` on 127.0.0.1 until the test ends.
async fn serve(leaf: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> u16 {
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            });
        }
    });
    port
}

async fn connect_to(ca: CertificateDer<'static>, port: u16) -> Result<(), Error> {
    let connector = TcpConnector::builder()
        .tls_config(courier_pool::TlsConfig::new().built_in_roots(false))
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let target = Target::new(Scheme::Https, "localhost", port).unwrap();
    connector.connect(&target).await.map(drop)
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused_as_expired() {
    for (from, until) in [(2019, 2020), (2090, 2099)] {
        let (ca, leaf, key) = chain(from, until);
        let port = serve(leaf, key).await;
        let err = connect_to(ca, port).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls {
                    kind: TlsErrorKind::Expired,
                    ..
                }
            ),
            "valid {from}-{until}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_same_chain_within_its_validity_is_accepted() {
    // Guards the test above: the chain itself is sound.
    let (ca, leaf, key) = chain(2020, 2090);
    let port = serve(leaf, key).await;
    connect_to(ca, port).await.unwrap();
}
