//! TLS on rustls (ring provider, TLS 1.2 and 1.3): a listener's certificate chain, key
//! and client CA loaded into a [`TlsAcceptorHandle`], which turns an accepted socket into
//! a TLS stream and, with `identity_as_username`, reads the client certificate's common
//! name. [`TlsAcceptorHandle::reload`] (SIGHUP) swaps the files in for new handshakes;
//! established connections keep the session they shook hands with. A `wss` listener
//! shakes hands the same way before its WebSocket upgrade.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// A server-side TLS stream over `IO`.
pub type TlsStream<IO> = tokio_rustls::server::TlsStream<IO>;

/// Why a listener's TLS files did not load, or a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds no PKCS#8, PKCS#1 or SEC1 private key.
    #[error("{}: no private key (PKCS#8, PKCS#1 or SEC1) in the file", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A CA certificate was refused as a trust anchor.
    #[error("{}: {source}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built from the CA.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
    /// The certificate chain and key do not make a server configuration (e.g. the key
    /// does not match the certificate).
    #[error("certificate and key: {0}")]
    Config(#[from] rustls::Error),
    /// The handshake failed (the client's certificate, protocol or alert).
    #[error("{0}")]
    Handshake(std::io::Error),
    /// No handshake within the connect timeout.
    #[error("no TLS handshake within {0:?}")]
    Timeout(Duration),
    /// `identity_as_username`, and the client certificate has no common name.
    #[error("the client certificate has no subject common name")]
    NoCommonName,
}

/// A listener's TLS settings (from its `[[listeners]]` table).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) to verify client certificates against.
    pub ca: Option<PathBuf>,
    /// With `ca`: a client must present a certificate.
    pub require_client_cert: bool,
    /// With `ca`: the client certificate's common name becomes the identity.
    pub identity_as_username: bool,
}

/// A TLS handshake's outcome.
pub struct Handshaken<IO> {
    /// The encrypted stream.
    pub stream: TlsStream<IO>,
    /// The client certificate's common name, with `identity_as_username` and a
    /// certificate.
    pub identity: Option<String>,
}

/// The TLS side of a `tls` or `wss` listener, shared by its accept loops.
pub struct TlsAcceptorHandle {
    settings: TlsSettings,
    alpn: Vec<Vec<u8>>,
    /// Swapped whole on reload; each handshake clones the one in force.
    current: RwLock<TlsAcceptor>,
}

impl TlsAcceptorHandle {
    /// The ALPN protocol id of MQTT (clients offering none are accepted too).
    pub const MQTT_ALPN: &'static [u8] = b"mqtt";

    /// Loads the listener's `cert`, `key` and `ca`; `alpn` are the protocols offered
    /// to clients that ask (a client offering only others fails the handshake).
    pub fn load(settings: TlsSettings, alpn: &[&[u8]]) -> Result<TlsAcceptorHandle, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = server_config(&settings, &alpn)?;
        Ok(TlsAcceptorHandle {
            settings,
            alpn,
            current: RwLock::new(acceptor),
        })
    }

    /// Re-reads the files; new handshakes use them, established connections are
    /// untouched. On error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = server_config(&self.settings, &self.alpn)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate file, for logs.
    pub fn cert_path(&self) -> &Path {
        &self.settings.cert
    }

    /// Shakes hands with a client over `io` within `timeout`.
    pub async fn handshake<IO>(&self, io: IO, timeout: Duration) -> Result<Handshaken<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stream = match tokio::time::timeout(timeout, acceptor.accept(io)).await {
            Err(_) => return Err(TlsError::Timeout(timeout)),
            Ok(Err(error)) => return Err(TlsError::Handshake(error)),
            Ok(Ok(stream)) => stream,
        };
        let session = stream.get_ref().1;
        debug!(
            version = ?session.protocol_version(),
            alpn = ?session.alpn_protocol().map(String::from_utf8_lossy),
            "TLS handshake done"
        );
        let identity = match self.settings.identity_as_username {
            false => None,
            true => match stream.get_ref().1.peer_certificates() {
                Some([leaf, ..]) => Some(common_name(leaf).ok_or(TlsError::NoCommonName)?),
                _ => None,
            },
        };
        Ok(Handshaken { stream, identity })
    }
}

/// The rustls server configuration the files describe.
fn server_config(settings: &TlsSettings, alpn: &[Vec<u8>]) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(&settings.cert)?;
    let key = private_key(&settings.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match &settings.ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|source| TlsError::Ca {
                    path: ca.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // Without require_client_cert a certificate is optional, but verified if sent.
            let verifier = match settings.require_client_cert {
                true => verifier,
                false => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate in a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// The first subject common name (OID 2.5.4.3) of a DER certificate.
pub(crate) fn common_name(cert: &[u8]) -> Option<String> {
    use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    use x509_cert::der::{oid::ObjectIdentifier, Decode};
    const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    let subject = &cert.tbs_certificate.subject;
    let value = subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .map(|atv| &atv.value)?;
    if let Ok(s) = value.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Ia5StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
