//! The S3 backend on a real S3 server: moto's server mode on loopback.
//!
//! One test function: it sets the AWS credential variables before starting any thread, which
//! only a test binary with a single test can do safely.
#![allow(unsafe_code)] // set_moto_credentials, before any thread starts.

use std::net::TcpListener;
use std::sync::Arc;

use byref_core::{Encoding, Error, Payload, PutOptions, Store, StoreExt, StoreUrl, conformance};
use byref_s3::S3Store;
use byref_testing::Moto;
use bytes::Bytes;

fn open(url: &str) -> S3Store {
    S3Store::open(StoreUrl::parse(url).unwrap()).unwrap()
}

fn payload(len: usize) -> Payload {
    let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
    Payload::frame(Encoding::Raw, Bytes::new(), vec![Bytes::from(data)])
}

#[test]
fn s3_backend_on_a_real_server() {
    // SAFETY: the only test in this binary, and no thread has started yet.
    unsafe { byref_testing::set_moto_credentials() };
    let moto = Moto::start();
    moto.create_bucket("byref");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        conformance::run_all(Arc::new(open(&moto.url("byref", "conformance")))).await;

        // Above the part size: a multipart upload and parallel ranged reads.
        let store = open(&moto.url("byref", "large"));
        let p = payload(40 << 20);
        let key = store.put_payload(&p, &PutOptions::new()).await.unwrap();
        assert_eq!(store.get_verified(&key, true).await.unwrap().len() as u64, p.len());
        let slice = store.get_range(&key, (20 << 20)..(20 << 20) + 100).await.unwrap();
        assert_eq!(&slice[..], &p.parts().concat()[20 << 20..(20 << 20) + 100]);
        assert!(store.release(&key, None).await.unwrap());

        let missing = open(&moto.url("no-such-bucket", "x"));
        let err = missing.put_payload(&payload(10), &PutOptions::new()).await.unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err}");
        assert!(err.to_string().contains("no-such-bucket"), "{err}");
        // Told from a missing object by a listing, not by the server's message text.
        let absent = payload(10).key();
        for err in [
            missing.head(&absent).await.unwrap_err(),
            missing.get(&absent).await.unwrap_err(),
        ] {
            assert!(err.to_string().contains("bucket does not exist"), "{err}");
        }
        let present = open(&moto.url("byref", "empty"));
        assert_eq!(present.head(&absent).await.unwrap(), None);
        assert!(matches!(present.get(&absent).await, Err(Error::NotFound { .. })));

        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dead = open(&format!(
            "s3://b/p?endpoint=http://127.0.0.1:{port}&region=us-east-1&allow_http=true&connect_timeout=1"
        ));
        let err = dead.head(&payload(1).key()).await.unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err}");
    });
}

#[test]
fn urls_without_credentials_or_unknown_options() {
    for bad in [
        "s3://user:pw@bucket/p",
        "s3:///p",
        "s3://b/p?colour=red",
        "s3://b/p?allow_http=maybe",
    ] {
        let err = StoreUrl::parse(bad).and_then(S3Store::open).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}
