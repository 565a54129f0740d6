#![allow(unsafe_code)] // set_moto_credentials, before any thread starts.
//! Put and get throughput of every store (memory, file, Redis and S3 on real loopback
//! servers), and the hashing that every put pays.
//!
//! Ratios to read: `hash` is the floor under `put`; `memory` is the floor under the others.
//! Needs `redis-server` and `moto_server` on PATH (`make bench` arranges both).

use std::hint::black_box;

use byref::{Key, PutOptions, StoreExt};
use byref_benches::payload;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};

const SIZES: &[usize] = &[100, 64 << 10, 16 << 20];

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for &len in SIZES {
        let p = payload(len);
        group.throughput(Throughput::Bytes(p.len()));
        group.bench_with_input(BenchmarkId::from_parameter(len), &p, |b, p| {
            b.iter(|| black_box(Key::of_parts(p.parts())));
        });
    }
    group.finish();
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = byref_testing::Redis::start(&[]);
    let moto = byref_testing::Moto::start();
    moto.create_bucket("bench");
    let urls = [
        "memory://bench".to_owned(),
        format!("file://{}", dir.path().display()),
        redis.url(),
        moto.url("bench", "criterion"),
    ];
    for url in &urls {
        let store = byref::open(url).expect("open").store;
        let scheme = url.split(':').next().expect("scheme");
        let scheme = if scheme == "s3" { "s3(moto)" } else { scheme };
        let mut group = c.benchmark_group(format!("{scheme}/put+release"));
        for &len in SIZES {
            let p = payload(len);
            group.throughput(Throughput::Bytes(p.len()));
            group.bench_with_input(BenchmarkId::from_parameter(len), &p, |b, p| {
                b.iter(|| {
                    rt.block_on(async {
                        let options = PutOptions::new();
                        let key = store.put_payload(p, &options).await.expect("put");
                        store
                            .release(&key, Some(&options.reference))
                            .await
                            .expect("release");
                    });
                });
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("{scheme}/get"));
        for &len in SIZES {
            let p = payload(len);
            let key = rt
                .block_on(store.put_payload(&p, &PutOptions::new()))
                .expect("put");
            group.throughput(Throughput::Bytes(p.len()));
            for verify in [false, true] {
                let id = BenchmarkId::new(if verify { "verified" } else { "unverified" }, len);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        black_box(rt.block_on(store.get_verified(&key, verify)).expect("get"))
                    });
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = hashing, stores
}
fn main() {
    // SAFETY: before criterion or any store starts a thread.
    unsafe { byref_testing::set_moto_credentials() };
    benches();
    Criterion::default().configure_from_args().final_summary();
}
