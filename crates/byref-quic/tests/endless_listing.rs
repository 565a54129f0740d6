//! A server whose listing never ends (every page full, always "more", keys always rising)
//! cannot grow a client without bound: the client stops at `MAX_LISTING` bytes with an error.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Error, Key, Listed, MemoryStore, Object, Payload, PutOptions, RefId, Result,
    Store, StoreUrl,
};
use byref_quic::token::Token;
use byref_quic::{Identity, QuicStore, Server, server_url};
use bytes::Bytes;

/// A memory store whose every listing holds 100,000 objects above all it listed before.
#[derive(Debug)]
struct Endless {
    inner: MemoryStore,
    next: AtomicU64,
}

#[async_trait]
impl Store for Endless {
    fn url(&self) -> &str {
        self.inner.url()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        self.inner.put(key, payload, options).await
    }
    async fn get(&self, key: &Key) -> Result<Object> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn list(&self) -> Result<Vec<Listed>> {
        let first = self.next.fetch_add(100_000, Ordering::Relaxed);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_listing_stops_at_the_clients_limit() {
    let token = Token::random();
    let store = Arc::new(Endless {
        inner: MemoryStore::open(StoreUrl::parse("memory://endless").unwrap()).unwrap(),
        next: AtomicU64::new(0),
    });
    let identity = Identity::generate().unwrap();
    let endpoint = byref_quic::tls::endpoint(
        "127.0.0.1:0".parse().unwrap(),
        Some(identity.server_config().unwrap()),
        byref_quic::tls::MAX_UDP_PAYLOAD,
    )
    .unwrap();
    let url = server_url(
        &endpoint.local_addr().unwrap().to_string(),
        &identity.fingerprint(),
        None,
        None,
    );
    let server = Arc::new(Server::new(store, token.clone()));
    let serving = tokio::spawn(byref_quic::server::run(
        endpoint,
        server,
        tokio::time::sleep(Duration::from_secs(300)),
    ));
    let client = QuicStore::open_with_token(StoreUrl::parse(&url).unwrap(), Some(token)).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(240), client.list())
        .await
        .expect("the listing stopped by itself")
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains("more than a client holds"),
        "{err}"
    );
    serving.abort();
}
