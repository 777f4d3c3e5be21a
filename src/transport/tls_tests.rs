//! Unit tests of `tls.rs`: key formats, ALPN, reloads and client identities, with
//! handshakes over an in-memory pipe against a rustls client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{common_name, Handshaken, TlsAcceptorHandle, TlsError, TlsSettings};

const WAIT: Duration = Duration::from_secs(5);

/// An RSA key (PKCS#8) made once with `openssl genpkey`: ring makes no RSA keys.
const RSA_PKCS8: &str = include_str!("testdata/rsa2048-pkcs8.pem");

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The key inside a PKCS#8 PrivateKeyInfo: PKCS#1 for RSA, SEC1 for EC.
fn inner_key(pkcs8: &[u8]) -> Vec<u8> {
    use x509_cert::der::asn1::OctetStringRef;
    use x509_cert::der::{Reader, SliceReader};
    use x509_cert::spki::AlgorithmIdentifierOwned;
    let mut reader = SliceReader::new(pkcs8).expect("reader");
    reader
        .sequence(|r| {
            let _version: u8 = r.decode()?;
            let _algorithm: AlgorithmIdentifierOwned = r.decode()?;
            let key: OctetStringRef<'_> = r.decode()?;
            Ok(key.as_bytes().to_vec())
        })
        .expect("a PKCS#8 key")
}

/// A CA and the certificates it signs.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("ca");
        Ca { cert, key }
    }

    /// A certificate for `key` with these SANs and this CN (none when `None`).
    fn sign(&self, key: &KeyPair, sans: &[&str], cn: Option<&str>) -> rcgen::Certificate {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .signed_by(key, &self.cert, &self.key)
            .expect("signed")
    }
}

/// Writes a listener's files into `dir`.
fn listener(dir: &Path, cert_pem: &str, key_pem: &str, ca: Option<&Ca>) -> TlsSettings {
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    TlsSettings {
        cert: write("server.pem", cert_pem),
        key: write("server.key", key_pem),
        ca: ca.map(|ca| write("ca.pem", &ca.cert.pem())),
        require_client_cert: false,
        identity_as_username: false,
    }
}

/// A client trusting `root`, optionally presenting a certificate, offering `alpn`.
fn client(
    root: &rcgen::Certificate,
    identity: Option<(&rcgen::Certificate, &KeyPair)>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.der().clone()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from(cert.der().to_vec())];
            let key = PrivateKeyDer::try_from(key.serialize_der()).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One handshake over an in-memory pipe, and a byte each way once it succeeded.
/// Returns the client's identity the server saw.
async fn shake(
    server: &TlsAcceptorHandle,
    connector: tokio_rustls::TlsConnector,
) -> Result<Option<String>, TlsError> {
    shake_alpn(server, connector)
        .await
        .map(|(identity, _)| identity)
}

/// [`shake`], and the ALPN protocol the client saw agreed.
async fn shake_alpn(
    server: &TlsAcceptorHandle,
    connector: tokio_rustls::TlsConnector,
) -> Result<(Option<String>, Option<Vec<u8>>), TlsError> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let name = ServerName::try_from("localhost").expect("name");
    let client = tokio::spawn(async move {
        let mut tls = connector.connect(name, client_io).await.ok()?;
        tls.write_all(b"c").await.ok()?;
        tls.flush().await.ok()?;
        let mut byte = [0u8];
        tls.read_exact(&mut byte).await.ok()?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        Some((byte[0], alpn))
    });
    let Handshaken {
        mut stream,
        identity,
    } = match server.handshake(server_io, WAIT).await {
        Ok(done) => done,
        Err(e) => {
            client.abort();
            return Err(e);
        }
    };
    let mut byte = [0u8];
    stream.read_exact(&mut byte).await.expect("client's byte");
    assert_eq!(byte[0], b'c');
    stream.write_all(b"s").await.expect("server's byte");
    stream.flush().await.expect("flush");
    let (echo, alpn) = tokio::time::timeout(WAIT, client)
        .await
        .expect("client in time")
        .expect("client task")
        .expect("client side of the handshake");
    assert_eq!(echo, b's');
    Ok((identity, alpn))
}

#[tokio::test]
async fn pkcs8_pkcs1_and_sec1_keys_all_serve() {
    let ec = KeyPair::generate().expect("ec key");
    let rsa = KeyPair::from_pem(RSA_PKCS8).expect("rsa key");
    let ec_self = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&ec)
        .expect("self-signed");
    let rsa_self = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&rsa)
        .expect("self-signed");
    let cases = [
        ("PKCS#8 EC", &ec_self, ec.serialize_pem()),
        ("PKCS#8 RSA", &rsa_self, rsa.serialize_pem()),
        (
            "PKCS#1",
            &rsa_self,
            pem("RSA PRIVATE KEY", &inner_key(&rsa.serialize_der())),
        ),
        (
            "SEC1",
            &ec_self,
            pem("EC PRIVATE KEY", &inner_key(&ec.serialize_der())),
        ),
    ];
    for (format, cert, key_pem) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let config = listener(dir.path(), &cert.pem(), &key_pem, None);
        let server = TlsAcceptorHandle::load(config.clone(), &[TlsAcceptorHandle::MQTT_ALPN])
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        let identity = shake(&server, client(cert, None, &[])).await;
        assert_eq!(identity.expect(format), None, "{format}");
    }
}

#[tokio::test]
async fn alpn_mqtt_is_agreed_and_a_client_without_alpn_is_served() {
    let ca = Ca::new("ca");
    let key = KeyPair::generate().expect("key");
    let cert = ca.sign(&key, &["localhost"], None);
    let dir = tempfile::tempdir().expect("dir");
    let config = listener(dir.path(), &cert.pem(), &key.serialize_pem(), None);
    let server =
        TlsAcceptorHandle::load(config.clone(), &[TlsAcceptorHandle::MQTT_ALPN]).expect("load");
    let mqtt = Some(b"mqtt".to_vec());
    let offers: [(&[&[u8]], _); 3] = [
        (&[], None),
        (&[b"mqtt"], mqtt.clone()),
        (&[b"x", b"mqtt"], mqtt),
    ];
    for (offer, agreed) in offers {
        let shaken = shake_alpn(&server, client(&ca.cert, None, offer)).await;
        assert_eq!(shaken.ok(), Some((None, agreed)), "{offer:?}");
    }
    let wrong = shake(&server, client(&ca.cert, None, &[b"h2"])).await;
    assert!(matches!(wrong, Err(TlsError::Handshake(_))), "{wrong:?}");
}

#[tokio::test]
async fn client_certificates_are_verified_and_name_the_client() {
    let (ca, other) = (Ca::new("ca"), Ca::new("other"));
    let key = KeyPair::generate().expect("key");
    let server_cert = ca.sign(&key, &["localhost"], None);
    let alice = ca.sign(&key, &[], Some("alice"));
    let nameless = ca.sign(&key, &[], None);
    let stranger = other.sign(&key, &[], Some("alice"));
    let dir = tempfile::tempdir().expect("dir");
    let mut config = listener(
        dir.path(),
        &server_cert.pem(),
        &key.serialize_pem(),
        Some(&ca),
    );
    config.identity_as_username = true;
    let optional = TlsAcceptorHandle::load(config.clone(), &[]).expect("load");
    let with = |cert| client(&ca.cert, Some((cert, &key)), &[]);
    assert_eq!(
        shake(&optional, with(&alice)).await.ok(),
        Some(Some("alice".into()))
    );
    assert_eq!(
        shake(&optional, client(&ca.cert, None, &[])).await.ok(),
        Some(None)
    );
    let stranger = shake(&optional, with(&stranger)).await;
    assert!(
        matches!(stranger, Err(TlsError::Handshake(_))),
        "{stranger:?}"
    );
    let nameless = shake(&optional, with(&nameless)).await;
    assert!(
        matches!(nameless, Err(TlsError::NoCommonName)),
        "{nameless:?}"
    );
    config.require_client_cert = true;
    let required = TlsAcceptorHandle::load(config.clone(), &[]).expect("load");
    let missing = shake(&required, client(&ca.cert, None, &[])).await;
    assert!(
        matches!(missing, Err(TlsError::Handshake(_))),
        "{missing:?}"
    );
    assert_eq!(
        shake(&required, with(&alice)).await.ok(),
        Some(Some("alice".into()))
    );
}

#[tokio::test]
async fn a_reload_swaps_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let (first, second) = (Ca::new("first"), Ca::new("second"));
    let key = KeyPair::generate().expect("key");
    let dir = tempfile::tempdir().expect("dir");
    let old = first.sign(&key, &["localhost"], None);
    let config = listener(dir.path(), &old.pem(), &key.serialize_pem(), None);
    let server = TlsAcceptorHandle::load(config.clone(), &[]).expect("load");
    let cert_path = config.cert.clone();
    std::fs::write(&cert_path, "not a certificate").expect("spoil");
    let spoiled = server.reload();
    assert!(
        matches!(spoiled, Err(TlsError::NoCertificate { .. })),
        "{spoiled:?}"
    );
    assert!(shake(&server, client(&first.cert, None, &[])).await.is_ok());
    std::fs::write(&cert_path, second.sign(&key, &["localhost"], None).pem()).expect("new");
    server.reload().expect("reload");
    assert!(shake(&server, client(&first.cert, None, &[]))
        .await
        .is_err());
    assert!(shake(&server, client(&second.cert, None, &[]))
        .await
        .is_ok());
}

#[test]
fn files_that_do_not_load_say_which() {
    let dir = tempfile::tempdir().expect("dir");
    let key = KeyPair::generate().expect("key");
    let cert = Ca::new("ca").sign(&key, &["localhost"], None);
    let no_key = listener(dir.path(), &cert.pem(), &cert.pem(), None);
    let err = TlsAcceptorHandle::load(no_key, &[]).err();
    assert!(matches!(err, Some(TlsError::NoKey { .. })), "{err:?}");
    let other_key = KeyPair::generate().expect("key").serialize_pem();
    let mismatched = listener(dir.path(), &cert.pem(), &other_key, None);
    let err = TlsAcceptorHandle::load(mismatched, &[]).err();
    assert!(matches!(err, Some(TlsError::Config(_))), "{err:?}");
    let mut missing = listener(dir.path(), &cert.pem(), &key.serialize_pem(), None);
    missing.cert = dir.path().join("absent.pem");
    let err = TlsAcceptorHandle::load(missing, &[]).err();
    assert!(matches!(err, Some(TlsError::Pem { .. })), "{err:?}");
    assert!(err.expect("error").to_string().contains("absent.pem"));
}

fn cert_with(name: DistinguishedName) -> Vec<u8> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.self_signed(&key).expect("cert").der().to_vec()
}

#[test]
fn reads_the_subject_common_name() {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Starling");
    dn.push(DnType::CommonName, "alice");
    assert_eq!(common_name(&cert_with(dn)).as_deref(), Some("alice"));
    let mut printable = DistinguishedName::new();
    let bob = rcgen::DnValue::PrintableString("bob".try_into().expect("printable"));
    printable.push(DnType::CommonName, bob);
    assert_eq!(common_name(&cert_with(printable)).as_deref(), Some("bob"));
}

#[test]
fn no_common_name_is_none() {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Starling");
    assert_eq!(common_name(&cert_with(dn)), None);
    assert_eq!(common_name(b"not a certificate"), None);
}
