//! The daemon's certificate: made on first start, kept in the data directory, so that its
//! fingerprint (which clients pin) survives restarts.

use std::io;
use std::path::Path;

use crate::token::create_private;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The self-signed certificate (DER).
    pub cert: CertificateDer<'static>,
    /// Its PKCS#8 private key (DER).
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// Loads `dir/cert.der` and `dir/key.der`, or makes and saves a new pair.
    pub fn load_or_create(dir: &Path) -> io::Result<Self> {
        let (cert_path, key_path) = (dir.join("cert.der"), dir.join("key.der"));
        if let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
            return Ok(Identity {
                cert: cert.into(),
                key: key.into(),
            });
        }
        let made = Self::generate()?;
        // Key first: a crash between the two writes leaves no certificate without its key.
        // A leftover key from such a crash is replaced; an existing certificate never is.
        let _ = std::fs::remove_file(&key_path);
        create_private(&key_path, made.key.secret_pkcs8_der())?;
        create_private(&cert_path, &made.cert)?;
        Ok(made)
    }

    /// A new self-signed pair, kept in memory only (a peer's: it lives as long as its process).
    pub fn generate() -> io::Result<Self> {
        let made = rcgen::generate_simple_self_signed(vec!["byref".to_owned()])
            .map_err(io::Error::other)?;
        Ok(Identity {
            cert: made.cert.der().clone(),
            key: made.signing_key.serialize_der().into(),
        })
    }

    /// The SHA-256 fingerprint clients pin.
    pub fn fingerprint(&self) -> String {
        crate::tls::fingerprint(&self.cert)
    }

    /// The QUIC server configuration presenting this certificate.
    pub fn server_config(&self) -> io::Result<quinn::ServerConfig> {
        crate::tls::server_config(
            self.cert.clone(),
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
        .map_err(io::Error::other)
    }
}
