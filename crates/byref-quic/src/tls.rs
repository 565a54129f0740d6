//! TLS 1.3 for QUIC with a pinned self-signed certificate.
//!
//! A daemon (or a peer) presents a self-signed certificate; clients accept exactly the
//! certificate whose SHA-256 fingerprint they were given, so no CA is involved and a
//! certificate swapped by anyone else fails the handshake. aws-lc-rs is the crypto provider,
//! as everywhere in byref.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The ALPN protocol name: a client of something else fails the handshake, not a request.
const ALPN: &[u8] = b"byref/1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The SHA-256 of a certificate's DER bytes, as 64 lowercase hex digits.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Flow-control windows large enough for one connection to carry over 1 GB/s on a LAN;
/// quinn's defaults are tuned for the public internet.
fn transport() -> Arc<quinn::TransportConfig> {
    // Packets stay at quinn's default, Ethernet-sized limit. Larger ones, where the path allows them (loopback, jumbo frames), were tried:
    // on loopback with 4 MiB socket buffers, a few large packets were lost per 256 MiB, quinn
    // read that as a black hole and fell back to 1200 bytes, and throughput did not improve.
    let mut t = quinn::TransportConfig::default();
    t.stream_receive_window((16u32 << 20).into())
        .receive_window((256u32 << 20).into())
        .send_window(256 << 20)
        .max_concurrent_bidi_streams(1024u32.into())
        // No keep-alive: a connection nobody uses closes after a minute, and with it the
        // client's socket and the server's slot; the next request connects again.
        .max_idle_timeout(Some(Duration::from_secs(60).try_into().expect("60 s fits")));
    Arc::new(t)
}

/// A QUIC endpoint on `addr` (a server if `server` is given), like quinn's `Endpoint::server`
/// and `client` but with larger socket buffers.
///
/// A bulk transfer arrives in bursts faster than one receiving thread drains them: with the
/// kernel's default buffer (208 KiB), a 256 MiB get on loopback lost about 4,000 packets, each
/// a retransmit and a congestion-window cut; with 4 MiB, none. The kernel caps the request at
/// `net.core.rmem_max`/`wmem_max`, which is fine.
pub fn endpoint(
    addr: std::net::SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime found (QUIC needs tokio)"))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime)
}

/// The UDP socket buffers asked for.
const SOCKET_BUFFER: usize = 32 << 20;

/// The server side: presents `cert`.
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, rustls::Error> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicServerConfig::try_from(tls).map_err(|e| rustls::Error::General(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// The client side: accepts only the certificate with this fingerprint.
pub fn client_config(fingerprint: &str) -> Result<quinn::ClientConfig, rustls::Error> {
    let provider = provider();
    let verifier = Pinned {
        fingerprint: fingerprint.to_ascii_lowercase(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(tls).map_err(|e| rustls::Error::General(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// Certificate pinning: the server's certificate must hash to the expected fingerprint, and
/// the handshake must be signed by its key (checked by the provider's algorithms).
#[derive(Debug)]
struct Pinned {
    /// SHA-256 of the certificate the server must present (from the store URL).
    fingerprint: String,
    /// The crypto provider's, to check the handshake signature.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = fingerprint(end_entity);
        if actual == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has fingerprint {actual}, not the pinned {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered (QUIC requires it).
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
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
