//! Certificates made for a test with rcgen, written as PEM files into a temporary
//! directory: two CAs, server certificates for 127.0.0.1 and localhost (one expired,
//! one from the second CA), and client certificates (CN alice and bob, an expired
//! alice, and an "alice" the second CA signed).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its key as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// A certificate authority: its certificate on disk, and what signs with it.
pub struct Authority {
    /// The CA certificate (PEM), for `ca =` and `--cafile`.
    pub file: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Every certificate a TLS test needs, in one directory.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA that signs the server and the clients.
    pub ca: Authority,
    /// Another CA, which the broker does not trust.
    pub other_ca: Authority,
    /// The server (127.0.0.1, localhost), signed by `ca`.
    pub server: Pair,
    /// The same names, signed by `other_ca` (for a reload).
    pub server_other: Pair,
    /// The server, signed by `ca`, expired.
    pub server_expired: Pair,
    /// Client CN=alice, signed by `ca`.
    pub alice: Pair,
    /// Client CN=bob, signed by `ca`.
    pub bob: Pair,
    /// Client CN=alice, signed by `ca`, expired.
    pub alice_expired: Pair,
    /// Client CN=alice signed by `other_ca`.
    pub alice_other_ca: Pair,
}

impl Authority {
    fn new(dir: &Path, name: &str) -> Authority {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, cert.pem()).expect("write CA");
        Authority { file, cert, key }
    }

    /// Signs a fresh key for `cn` with these SANs, written as `{name}.pem`/`.key`.
    fn issue(&self, dir: &Path, name: &str, cn: &str, sans: &[&str], expired: bool) -> Pair {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = match expired {
            true => rcgen::date_time_ymd(2021, 1, 1),
            false => rcgen::date_time_ymd(2100, 1, 1),
        };
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign");
        let pair = Pair {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).expect("write cert");
        std::fs::write(&pair.key, key.serialize_pem()).expect("write key");
        pair
    }
}

impl Pki {
    /// Makes every certificate into a fresh temporary directory.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("starling-pki-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let ca = Authority::new(d, "ca");
        let other_ca = Authority::new(d, "other-ca");
        let names = ["127.0.0.1", "localhost"];
        Pki {
            server: ca.issue(d, "server", "starling", &names, false),
            server_other: other_ca.issue(d, "server-other", "starling", &names, false),
            server_expired: ca.issue(d, "server-expired", "starling", &names, true),
            alice: ca.issue(d, "alice", "alice", &[], false),
            bob: ca.issue(d, "bob", "bob", &[], false),
            alice_expired: ca.issue(d, "alice-expired", "alice", &[], true),
            alice_other_ca: other_ca.issue(d, "alice-other-ca", "alice", &[], false),
            ca,
            other_ca,
            dir,
        }
    }

    /// The directory holding the files (for extra files of a test).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
