//! The core conformance suite and Redis-specific behaviour, on real servers.

use std::sync::Arc;
use std::time::Duration;

use byref_core::{Encoding, Error, Payload, PutOptions, Store, StoreExt, StoreUrl, conformance};
use byref_redis::RedisStore;
use byref_testing::{Cluster, Redis};
use bytes::Bytes;

fn open(url: &str) -> RedisStore {
    RedisStore::open(StoreUrl::parse(url).unwrap()).unwrap()
}

fn payload(len: usize, seed: u8) -> Payload {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    Payload::frame(Encoding::Raw, Bytes::new(), vec![Bytes::from(data)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_conforms() {
    let redis = Redis::start(&[]);
    conformance::run_all(Arc::new(open(&redis.url()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_objects_conform() {
    // A tiny chunk size sends every conformance object above 1000 bytes through chunking.
    let redis = Redis::start(&[]);
    conformance::run_all(Arc::new(open(&format!("{}?chunk_size=1000", redis.url())))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_conforms() {
    let cluster = Cluster::start();
    conformance::run_all(Arc::new(open(&format!(
        "{}?chunk_size=4096",
        cluster.url()
    ))))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_deletes_every_chunk() {
    let redis = Redis::start(&[]);
    let store = open(&format!("{}?chunk_size=1000", redis.url()));
    let key = store
        .put_payload(&payload(10_000, 1), &PutOptions::new())
        .await
        .unwrap();
    assert!(redis.cli(&["DBSIZE"]).trim().parse::<u32>().unwrap() > 10);
    assert!(store.release(&key, None).await.unwrap());
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "0", "chunks left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_deleted_behind_our_back_is_an_integrity_error() {
    let redis = Redis::start(&[]);
    let store = open(&format!("{}?chunk_size=1000", redis.url()));
    let key = store
        .put_payload(&payload(5_000, 2), &PutOptions::new())
        .await
        .unwrap();
    redis.cli(&["DEL", &format!("byref:{{{key}}}:c:2")]);
    let err = store.get(&key).await.unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("chunk 2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_objects_and_only_grows() {
    let redis = Redis::start(&[]);
    let store = open(&format!("{}?chunk_size=1000", redis.url()));
    let short = PutOptions {
        ttl: Some(Duration::from_millis(300)),
        ..PutOptions::new()
    };
    let key = store.put_payload(&payload(3_000, 3), &short).await.unwrap();
    assert!(store.head(&key).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        store.head(&key).await.unwrap(),
        None,
        "object outlived its TTL"
    );
    assert_eq!(
        redis.cli(&["DBSIZE"]).trim(),
        "0",
        "chunks or references outlived the TTL"
    );

    let key = store.put_payload(&payload(3_000, 4), &short).await.unwrap();
    store
        .put_payload(&payload(3_000, 4), &PutOptions::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    store
        .get_verified(&key, true)
        .await
        .expect("a put without TTL keeps the object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_fails_within_the_connect_timeout_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = open(&format!(
        "redis://127.0.0.1:{port}/0?connect_timeout=1&timeout=2"
    ));
    let err = store.head(&payload(1, 0).key()).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_and_a_half_gigabyte_object_round_trips() {
    let redis = Redis::start(&[]);
    let store = open(&redis.url());
    let len = 1536 << 20;
    let p = payload(len, 5);
    let key = store.put_payload(&p, &PutOptions::new()).await.unwrap();
    let got = store.get_verified(&key, true).await.unwrap();
    assert_eq!(got.len() as u64, p.len());
    assert!(store.release(&key, None).await.unwrap());
}

/// A manifest planted in a shared Redis (by anyone who can write there) that claims a huge
/// object: a read refuses it as the handle's length says, before a chunk is read, and a read
/// without a length to expect fails to reserve the buffer instead of aborting the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_manifest_claiming_a_huge_object_is_refused() {
    let redis = Redis::start(&[]);
    let store = open(&format!("{}?chunk_size=1000", redis.url()));
    let p = payload(5_000, 3);
    let key = store.put_payload(&p, &PutOptions::new()).await.unwrap();
    let huge = 1u64 << 45;
    let manifest = format!("BRMF1 len={huge} chunk=1000 count={}", huge.div_ceil(1000));
    redis.cli(&["SET", &format!("byref:{{{key}}}"), &manifest]);
    let err = store
        .get_checked(&key, Some(p.len()), true, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
    let err = store.get(&key).await.unwrap_err();
    assert!(err.to_string().contains("cannot reserve"), "{err}");
}
