//! A daemon's state: its tiered store, the server over it, and its certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use byref_core::Result;
use byref_quic::token::Token;
use byref_quic::{Identity, Server};
use byref_tiers::TieredStore;

use crate::Options;

/// A QUIC server over a tiered store whose disk tier outlives it.
#[derive(Debug)]
pub struct Daemon {
    /// The objects: a memory tier spilling to the data directory.
    pub(crate) store: Arc<TieredStore>,
    /// Serves `store`: token, connection and object limits, counters.
    pub(crate) server: Arc<Server>,
    /// The certificate clients pin, kept in the data directory so restarts keep the URL.
    identity: Identity,
}

impl Daemon {
    /// Opens (or creates) the data directory and the certificate kept in it; `token`
    /// authenticates clients.
    pub fn open(options: Options, token: Token) -> Result<Self> {
        let identity = byref_fs::private::create_dir_all(&options.dir)
            .and_then(|()| Identity::load_or_create(&options.dir))
            .map_err(|e| {
                byref_core::Error::Config(format!("data directory {}: {e}", options.dir.display()))
            })?;
        Self::new(options, token, identity)
    }

    /// A daemon presenting `identity`, its disk tier under `options.dir`.
    pub fn new(options: Options, token: Token, identity: Identity) -> Result<Self> {
        let store = Arc::new(TieredStore::open(
            "byref daemon",
            &options.dir.join("store"),
            options.memory_limit,
            options.disk_limit,
        )?);
        let server = Server::new(store.clone(), token)
            .with_max_connections(options.max_connections)
            .with_max_object(options.max_object)
            .with_auth_deadline(options.auth_deadline)
            .with_report({
                let store = store.clone();
                move || store.report()
            });
        Ok(Daemon {
            store,
            server: Arc::new(server),
            identity,
        })
    }

    /// The certificate clients pin.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The URL clients open for a daemon reachable at `authority` (`host:port`).
    pub fn url(&self, authority: impl std::fmt::Display) -> String {
        byref_quic::server_url(
            &authority.to_string(),
            &self.identity.fingerprint(),
            None,
            None,
        )
    }

    /// Status in the Prometheus text format.
    pub fn status(&self) -> String {
        self.server.status()
    }

    /// A QUIC endpoint on `addr` presenting this daemon's certificate.
    pub fn bind(&self, addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
        byref_quic::tls::endpoint(
            addr,
            Some(self.identity.server_config()?),
            byref_quic::tls::MAX_UDP_PAYLOAD,
        )
    }
}
