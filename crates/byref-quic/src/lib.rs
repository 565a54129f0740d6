//! byref over QUIC: the whole wire protocol, both ends of it, and the `quic://` store.
//!
//! - [`protocol`] (the `byref-protocol` crate): the headers, sans-IO (bytes in, values out),
//!   and how errors cross the wire.
//! - [`client`]: the `quic://` store, which talks to any byref server.
//! - [`server`]: serves any [`byref_core::Store`] — the daemon's tiers, a peer's objects.
//! - [`tls`], [`identity`], [`token`]: certificate pinning and the token, proven per connection.
//!
//! Security model: TLS 1.3 (QUIC) with the server's self-signed certificate pinned by its
//! SHA-256 fingerprint, which travels in the store URL (it is not a secret); every request
//! carries a proof of a 32-byte token bound to its connection, never the token itself, which
//! never travels in a URL either: clients read it from `BYREF_TOKEN` or the token file in the
//! user's config directory.
//!
//! Depends on `byref-core` and `byref-protocol` only: never on a backend, the daemon or the
//! facade.

pub mod client;
/// The wire protocol, sans-IO: its own crate, so that fuzzers build it without the transport.
pub use byref_protocol as protocol;
pub mod identity;
mod local;
pub mod server;
mod socket;
pub mod tls;
pub mod token;
mod wire;

pub use client::{CAPABILITIES, FINGERPRINT_VAR, QuicStore, SCHEME, server_url};
pub use identity::Identity;
pub use server::Server;
