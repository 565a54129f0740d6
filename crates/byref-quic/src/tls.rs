//! TLS 1.3 for QUIC with a pinned self-signed certificate.
//!
//! A daemon (or a peer) presents a self-signed certificate; clients accept exactly the
//! certificate whose SHA-256 fingerprint they were given, so no CA is involved and a
//! certificate swapped by anyone else fails the handshake. aws-lc-rs is the crypto provider,
//! as everywhere in byref.

use std::net::SocketAddr;
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
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // AES-128-GCM first (aws-lc-rs lists AES-256 first): 10 AES rounds per block, not 14, on
    // every packet both ends seal and open. Both ends are byref's, and offer the same list.
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(provider)
}

/// The SHA-256 of a certificate's DER bytes, as 64 lowercase hex digits.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The environment variable that sets how many bytes one transfer may have in flight: its
/// stream's flow-control window (a connection's is 16 times as large, for requests at once).
pub const WINDOW_VAR: &str = "BYREF_QUIC_WINDOW";

/// One transfer's window unless [`WINDOW_VAR`] says otherwise. 16 MiB keeps a LAN's round
/// trip (under a millisecond) far from limiting: 64 MiB measured no faster over a veth pair
/// (300 MB, put 0.71 / get 0.65 GB/s against 0.67 / 0.74). A window is what a receiver that
/// falls behind buffers, per stream: a daemon writing puts to a slow disk holds that much
/// per put, which is why the default is not larger. A long fat path needs more: 10 Gb/s with
/// a 50 ms round trip needs 62.5 MB in flight, so `BYREF_QUIC_WINDOW=64MiB` on both ends.
const DEFAULT_WINDOW: u64 = 16 << 20;

/// Flow-control windows for bulk transfer (see [`DEFAULT_WINDOW`]), and packets as large as
/// the path allows; quinn's defaults are tuned for the public internet.
fn transport(max_payload: u16) -> Result<Arc<quinn::TransportConfig>, rustls::Error> {
    let window = match std::env::var(WINDOW_VAR) {
        Ok(text) => byref_core::parse_size(&text)
            .map_err(|e| rustls::Error::General(format!("{WINDOW_VAR}={text:?}: {e}")))?,
        Err(_) => DEFAULT_WINDOW,
    };
    let varint = |n: u64| {
        quinn::VarInt::from_u64(n)
            .map_err(|_| rustls::Error::General(format!("{WINDOW_VAR}: {window} is too large")))
    };
    let mut t = quinn::TransportConfig::default();
    // Path-MTU discovery from 1,200 bytes up to what the path carries: 1,472 on Ethernet,
    // 8,972 with jumbo frames, 65,507 on loopback (measured: quinn's default bound, 1,452,
    // kept a 300 MB get over a veth pair at MTU 9000 to 0.41 GB/s; now 0.75 GB/s).
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    // A receiver that falls behind drops whole bursts of large packets, which quinn reads as a
    // black hole and answers with 1,200-byte packets until the cooldown ends (a minute by
    // default). Measured in-process on loopback after 15 GB of puts: 1 GiB gets at 212 MiB/s
    // with a minute, 665 MiB/s with a second. A real black hole costs a few lost probes a
    // second at most: rediscovery settles on what the path carries.
    mtu.upper_bound(max_payload)
        .black_hole_cooldown(Duration::from_secs(1));
    t.mtu_discovery_config(Some(mtu));
    // Congestion control stays quinn's Cubic: its BBR measured no faster here (300 MB over
    // a veth pair at MTU 9000, three runs each: put 0.69 / get 0.67 GB/s with Cubic, 0.62 /
    // 0.66 with BBR), and quinn calls its BBR experimental.
    t.stream_receive_window(varint(window)?)
        .receive_window(varint(window.saturating_mul(16))?)
        .send_window(window.saturating_mul(16))
        .max_concurrent_bidi_streams(1024u32.into())
        // No keep-alive: a connection nobody uses closes after a minute, and with it the
        // client's socket and the server's slot; the next request connects again.
        .max_idle_timeout(Some(Duration::from_secs(60).try_into().expect("60 s fits")));
    Ok(Arc::new(t))
}

/// The largest UDP payload there is (IPv6's limit): a server's bound, which each client's
/// own (see [`path_max_payload`]) lowers for its connection.
pub const MAX_UDP_PAYLOAD: u16 = 65_527;

/// The largest UDP payload the local interface toward `peer` carries: its MTU less the IP and
/// UDP headers, as the kernel's route says (a connected socket's `IP_MTU`; nothing is sent).
///
/// A client's discovery stops there, and a server's too, since a client announces it as the
/// most it accepts: without the bound, discovery probes sizes no interface can send, each
/// lost three times before the next, and a 64 MB put over a jumbo-frame path was over before
/// its packets grew past 1,200 bytes.
pub fn path_max_payload(peer: SocketAddr) -> u16 {
    let (unspecified, headers): (SocketAddr, u32) = if peer.is_ipv6() {
        ((std::net::Ipv6Addr::UNSPECIFIED, 0).into(), 48)
    } else {
        ((std::net::Ipv4Addr::UNSPECIFIED, 0).into(), 28)
    };
    let mtu = std::net::UdpSocket::bind(unspecified)
        .and_then(|socket| socket.connect(peer).map(|()| socket))
        .and_then(|socket| {
            if peer.is_ipv6() {
                rustix::net::sockopt::ipv6_mtu(&socket)
            } else {
                rustix::net::sockopt::ip_mtu(&socket)
            }
            .map_err(std::io::Error::from)
        });
    match mtu {
        Ok(mtu) => u16::try_from(
            mtu.saturating_sub(headers)
                .clamp(1200, MAX_UDP_PAYLOAD.into()),
        )
        .unwrap_or(MAX_UDP_PAYLOAD),
        Err(_) => MAX_UDP_PAYLOAD,
    }
}

/// A QUIC endpoint on `addr` (a server if `server` is given), like quinn's `Endpoint::server`
/// and `client` but with larger socket buffers, datagrams up to `max_payload` bytes, and GSO
/// batches that fit one system call (see `socket`).
///
/// A bulk transfer arrives in bursts faster than one receiving thread drains them: with the
/// kernel's default buffer (208 KiB), a 256 MiB get on loopback lost about 4,000 packets, each
/// a retransmit and a congestion-window cut; with 4 MiB, none. The kernel caps the request at
/// `net.core.rmem_max`/`wmem_max`, which is fine.
pub fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
    max_payload: u16,
) -> std::io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime found (QUIC needs tokio)"))?;
    let mut config = quinn::EndpointConfig::default();
    config
        .max_udp_payload_size(max_payload)
        .expect("within QUIC's limit");
    let socket = crate::socket::Batched::new(runtime.wrap_udp_socket(socket)?);
    quinn::Endpoint::new_with_abstract_socket(config, server, socket, runtime)
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
    config.transport_config(transport(MAX_UDP_PAYLOAD)?);
    Ok(config)
}

/// The client side: accepts only the certificate with this fingerprint, and sends datagrams
/// of up to `max_payload` bytes (see [`path_max_payload`]).
pub fn client_config(
    fingerprint: &str,
    max_payload: u16,
) -> Result<quinn::ClientConfig, rustls::Error> {
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
    config.transport_config(transport(max_payload)?);
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
