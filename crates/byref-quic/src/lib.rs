//! byref over QUIC: the wire protocol, certificate pinning and tokens shared by the store
//! daemon and its clients, and the `quic://` client store.
//!
//! Security model: TLS 1.3 (QUIC) with the daemon's self-signed certificate pinned by its
//! SHA-256 fingerprint, which travels in the store URL (it is not a secret); every request
//! carries a 32-byte token, which never does: clients read it from `BYREF_TOKEN` or the
//! token file in the user's config directory.

pub mod client;
pub mod protocol;
pub mod tls;
pub mod token;

pub use client::{FINGERPRINT_VAR, QuicStore, SCHEME};
