//! A QUIC server on loopback over any store (feature `quic`): what the QUIC client's and
//! server's own tests run against, without the daemon above them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use byref_core::{Store, StoreUrl};
use byref_quic::token::Token;
use byref_quic::{Identity, QuicStore, Server};
use byref_tiers::TieredStore;
use tokio::sync::oneshot;

/// A store served on 127.0.0.1, on a free port, with a fresh certificate, until stopped (or
/// dropped: the runtime ends the task).
#[derive(Debug)]
pub struct Served {
    /// The server: its status, its limits.
    pub server: Arc<Server>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate clients pin.
    pub identity: Identity,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Serves `server` (made with its store, token and limits). Inside a tokio runtime.
    pub fn start(server: Server) -> Self {
        let identity = Identity::generate().expect("a certificate");
        let endpoint = byref_quic::tls::endpoint(
            "127.0.0.1:0".parse().expect("an address"),
            Some(identity.server_config().expect("a server config")),
            byref_quic::tls::MAX_UDP_PAYLOAD,
        )
        .expect("a UDP port on loopback");
        let addr = endpoint.local_addr().expect("its address");
        let server = Arc::new(server);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(byref_quic::server::run(
            endpoint,
            server.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Served {
            server,
            addr,
            identity,
            stop: Some(stop),
            task,
        }
    }

    /// A tiered store under `dir` (memory up to `memory_limit` bytes, then disk), as a
    /// daemon keeps objects, served to holders of `token`.
    pub fn tiered(dir: &Path, memory_limit: u64, token: &Token) -> Self {
        Self::start(Server::new(Self::tiers(dir, memory_limit), token.clone()))
    }

    /// The tiered store [`Served::tiered`] serves, for a server built with other limits.
    pub fn tiers(dir: &Path, memory_limit: u64) -> Arc<dyn Store> {
        Arc::new(
            TieredStore::open("test server", &dir.join("store"), memory_limit, u64::MAX)
                .expect("a tiered store"),
        )
    }

    /// The URL clients open.
    pub fn url(&self) -> String {
        byref_quic::server_url(
            &self.addr.to_string(),
            &self.identity.fingerprint(),
            None,
            None,
        )
    }

    /// A client holding `token`.
    pub fn client(&self, token: &Token) -> QuicStore {
        let url = StoreUrl::parse(&self.url()).expect("its URL");
        QuicStore::open_with_token(url, Some(token.clone())).expect("a client")
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server's end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("the server's task");
    }
}
