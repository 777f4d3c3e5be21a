//! `--tls-ca FILE`: every connection speaks TLS (rustls with ring, as the broker),
//! trusting the CA certificates in FILE and checking the certificate against `--host`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Set once by [`configure`]; unset means plain TCP.
static CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();

/// Makes every later connection a TLS one trusting the CAs in `ca`.
pub fn configure(ca: &Path) -> Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("{}", ca.display()))? {
        roots.add(cert.with_context(|| format!("{}", ca.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = CONNECTOR.set(TlsConnector::from(Arc::new(config)));
    Ok(())
}

/// True once `--tls-ca` configured TLS.
pub fn enabled() -> bool {
    CONNECTOR.get().is_some()
}

/// A client connection: plain TCP, or TLS over it.
pub enum Stream {
    /// `--tls-ca` not given.
    Plain(TcpStream),
    /// TLS, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The stream for `tcp` to `addr` ("host:port"): TLS when configured.
pub async fn wrap(tcp: TcpStream, addr: &str) -> Result<Stream> {
    let Some(connector) = CONNECTOR.get() else {
        return Ok(Stream::Plain(tcp));
    };
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let name = ServerName::try_from(host.to_owned()).context("server name for TLS")?;
    let tls = connector
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    Ok(Stream::Tls(Box::new(tls)))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
