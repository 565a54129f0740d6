//! The store daemon over QUIC on loopback, in-process: the targets are a 1 GB object
//! put and got at 1 GB/s or more, and 1 KB gets at 40,000/s or more with 64 in flight.
//!
//! Read `quic/1GiB` as throughput (criterion prints GiB/s) and `quic/1KiB-get-64-in-flight`
//! as elements per second (gets/s). The memory tier is 4 GiB, so objects stay in memory.

use std::sync::Arc;

use byref::{Key, PutOptions, Store, StoreExt, StoreUrl};
use byref_benches::payload;
use byref_daemon::{Daemon, Options};
use byref_quic::QuicStore;
use byref_quic::token::Token;
use criterion::{Criterion, Throughput, criterion_group};

fn quic(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = Token::random();
    let mut options = Options::new(dir.path());
    options.memory_limit = 4 << 30;
    let daemon = Arc::new(Daemon::open(options, token.clone()).expect("daemon"));
    let (url, _server) = rt.block_on(async {
        let endpoint = daemon
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let url = daemon.url(endpoint.local_addr().expect("addr"));
        let server = tokio::spawn(byref_daemon::run(
            endpoint,
            daemon.clone(),
            std::future::pending::<()>(),
        ));
        (url, server)
    });
    let store = Arc::new(
        QuicStore::open_with_token(StoreUrl::parse(&url).expect("url"), Some(token))
            .expect("client"),
    );

    let big = payload(1 << 30);
    let mut group = c.benchmark_group("quic/1GiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(big.len()));
    group.bench_function("put+release", |b| {
        b.iter(|| {
            rt.block_on(async {
                let options = PutOptions::new();
                let key = store.put_payload(&big, &options).await.expect("put");
                store
                    .release(&key, Some(&options.reference))
                    .await
                    .expect("release");
            });
        });
    });
    let key = rt
        .block_on(store.put_payload(&big, &PutOptions::new()))
        .expect("put");
    group.bench_function("get", |b| {
        b.iter(|| rt.block_on(store.get(&key)).expect("get"));
    });
    // What the wire did (packet size, losses, black holes): the first thing to read when the
    // throughput above is low.
    let status = daemon.status();
    let wire: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("byref_quic"))
        .collect();
    eprintln!(
        "daemon's transport counters after the 1 GiB group: {}",
        wire.join(", ")
    );
    group.finish();
    drop(big);
    rt.block_on(store.release(&key, None)).expect("release");

    let small = payload(1 << 10);
    let key: Key = rt
        .block_on(store.put_payload(&small, &PutOptions::new()))
        .expect("put");
    let mut group = c.benchmark_group("quic/1KiB-get-64-in-flight");
    group.throughput(Throughput::Elements(64));
    group.bench_function("get", |b| {
        b.iter(|| {
            rt.block_on(async {
                let gets = (0..64).map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move { store.get(&key).await.expect("get") })
                });
                for get in futures::future::join_all(gets).await {
                    get.expect("task");
                }
            });
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = quic
}
fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
