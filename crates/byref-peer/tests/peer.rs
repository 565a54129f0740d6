//! Peer-to-peer: a process serving its own objects, fetched by workers over real QUIC.

use std::sync::Arc;

use byref_core::{Error, Payload, PutOptions, Store, StoreExt, StoreUrl};
use byref_peer::PeerStore;
use byref_quic::QuicStore;
use byref_quic::token::Token;
use bytes::Bytes;

fn peer(url: &str, token: &Token) -> PeerStore {
    PeerStore::open_with_token(StoreUrl::parse(url).unwrap(), token.clone()).unwrap()
}

/// What a worker opens: the URL the peer's handles carry.
fn worker(peer: &PeerStore, token: &Token) -> QuicStore {
    QuicStore::open_with_token(StoreUrl::parse(peer.url()).unwrap(), Some(token.clone())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_in_process_and_from_a_worker() {
    let token = Token::random();
    // A 1 MiB memory tier: the suite's larger objects spill to the scratch directory.
    let local = Arc::new(peer("peer://127.0.0.1?memory=1MiB", &token));
    byref_core::conformance::run_all(local.clone()).await;
    byref_core::conformance::run_all(Arc::new(worker(&local, &token))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_fetch_what_the_peer_put_and_are_told_when_it_is_gone() {
    let token = Token::random();
    let local = peer("peer://127.0.0.1?connect_timeout=1", &token);
    let url = local.url().to_owned();
    assert!(url.starts_with("quic://127.0.0.1:"), "{url}");
    assert!(
        url.contains(&format!("peer={}@", std::process::id())),
        "{url}"
    );

    let data = Payload::from_parts(vec![Bytes::from(vec![7u8; 3 << 20])]);
    let key = local.put_payload(&data, &PutOptions::new()).await.unwrap();
    let remote = worker(&local, &token);
    assert_eq!(
        remote.get(&key).await.unwrap().as_slice(),
        &vec![7u8; 3 << 20][..]
    );

    drop(local);
    // A fresh worker (no connection yet) and the connected one both name the peer.
    for remote in [worker_at(&url, &token), remote] {
        let err = remote.get(&key).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        assert!(
            message.contains(&format!("peer {}@", std::process::id())) && message.contains("gone"),
            "{message}"
        );
    }
}

fn worker_at(url: &str, token: &Token) -> QuicStore {
    QuicStore::open_with_token(StoreUrl::parse(url).unwrap(), Some(token.clone())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertises_the_given_address_and_rejects_unknown_options() {
    let token = Token::random();
    let local = peer("peer://127.0.0.1:0?advertise=localhost", &token);
    assert!(
        local.url().starts_with("quic://localhost:"),
        "{}",
        local.url()
    );
    let err = PeerStore::open_with_token(
        StoreUrl::parse("peer://127.0.0.1?colour=red").unwrap(),
        token,
    )
    .unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn opening_outside_a_runtime_is_a_clear_error() {
    let err = PeerStore::open_with_token(
        StoreUrl::parse("peer://127.0.0.1").unwrap(),
        Token::random(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
