//! A server whose listing never ends (every page full, always "more", keys always rising)
//! cannot grow a client without bound: the client stops at `MAX_LISTING` bytes with an error.

mod hostile;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use byref_core::{Error, Store, StoreUrl};
use byref_quic::QuicStore;
use byref_quic::token::Token;
use hostile::{Hostile, Lie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_listing_stops_at_the_clients_limit() {
    let token = Token::random();
    let store = Arc::new(Hostile::new(Lie::EndlessListing(AtomicU64::new(0))));
    let (url, serving) = hostile::serve(store, token.clone(), Duration::from_secs(300));
    let serving = tokio::spawn(serving);
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
