//! A real byref QUIC server on loopback over a store that lies the way a hostile server would:
//! the servers the client-side limits are tested against. Shared by this crate's tests, each
//! of which uses one lie (the others are dead code to it).
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Fetched, GetOptions, Key, Listed, MemoryStore, Payload, PutOptions, RefId,
    Result, Store, StoreUrl,
};
use byref_quic::token::Token;
use byref_quic::{Identity, Server, server_url};

/// How a [`Hostile`] store lies; it tells the truth otherwise.
#[derive(Debug)]
pub(crate) enum Lie {
    /// Every `LOCATE` says the object is in this file.
    Locate(PathBuf),
    /// Every listing holds 100,000 objects above all it listed before: it never ends.
    EndlessListing(AtomicU64),
}

/// A memory store that lies one way.
#[derive(Debug)]
pub(crate) struct Hostile {
    inner: MemoryStore,
    lie: Lie,
}

impl Hostile {
    pub(crate) fn new(lie: Lie) -> Self {
        Hostile {
            inner: MemoryStore::open(StoreUrl::parse("memory://hostile").unwrap()).unwrap(),
            lie,
        }
    }
}

#[async_trait]
impl Store for Hostile {
    fn url(&self) -> &str {
        self.inner.url()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        self.inner.put(key, payload, options).await
    }
    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        self.inner.get_opts(key, options).await
    }
    async fn locate(&self, key: &Key) -> Result<Option<PathBuf>> {
        match &self.lie {
            Lie::Locate(path) => Ok(Some(path.clone())),
            _ => self.inner.locate(key).await,
        }
    }
    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn list(&self) -> Result<Vec<Listed>> {
        let Lie::EndlessListing(next) = &self.lie else {
            return self.inner.list().await;
        };
        let first = next.fetch_add(100_000, Ordering::Relaxed);
        Ok((first..first + 100_000)
            .map(|n| {
                let mut key = [0xff; 32];
                key[..8].copy_from_slice(&(n + 1).to_be_bytes());
                Listed {
                    key: Key::from_bytes(key),
                    len: 1,
                    references: vec![RefId::random()],
                    head: None,
                }
            })
            .collect())
    }
    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        self.inner.release(key, reference).await
    }
}

/// Serves `store` to clients holding `token` on a free port of 127.0.0.1 (inside a tokio
/// runtime): its `quic://` URL, and the serving, which ends by itself after `lifetime`.
pub(crate) fn serve(
    store: Arc<dyn Store>,
    token: Token,
    lifetime: Duration,
) -> (String, impl Future<Output = ()>) {
    let identity = Identity::generate().unwrap();
    let endpoint = byref_quic::tls::endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(identity.server_config().unwrap()),
        byref_quic::tls::MAX_UDP_PAYLOAD,
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let url = server_url(&addr.to_string(), &identity.fingerprint(), None, None);
    let server = Arc::new(Server::new(store, token));
    let serving = byref_quic::server::run(endpoint, server, tokio::time::sleep(lifetime));
    (url, serving)
}
