//! The daemon over real QUIC on loopback, with the real `quic://` client: what the daemon
//! adds to the QUIC server (its tiers' limits, TTLs, restarts). The client and server by
//! themselves are tested in `crates/byref-quic/tests/server.rs`.

use std::sync::Arc;
use std::time::Duration;

use byref_core::{Error, Payload, PutOptions, Store, StoreExt, StoreUrl};
use byref_daemon::{Daemon, Options};
use byref_quic::QuicStore;
use byref_quic::token::Token;
use bytes::Bytes;
use tokio::sync::oneshot;

/// A daemon on 127.0.0.1, on a free port, served until dropped (or stopped).
struct Running {
    daemon: Arc<Daemon>,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<byref_core::Result<()>>,
}

impl Running {
    fn start(options: Options, token: &Token) -> Self {
        let daemon = Arc::new(Daemon::open(options, token.clone()).unwrap());
        let endpoint = daemon.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(byref_daemon::run(endpoint, daemon.clone(), async move {
            let _ = stopped.await;
        }));
        Running {
            daemon,
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        self.daemon.url(self.addr)
    }

    fn client(&self, token: &Token) -> QuicStore {
        QuicStore::open_with_token(StoreUrl::parse(&self.url()).unwrap(), Some(token.clone()))
            .unwrap()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        (&mut self.task).await.unwrap().unwrap();
    }
}

fn payload(data: &[u8]) -> Payload {
    Payload::from_parts(vec![Bytes::copy_from_slice(data)])
}

fn small_options(dir: &std::path::Path) -> Options {
    let mut options = Options::new(dir);
    options.memory_limit = 1 << 20;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    // A 1 MiB memory tier: the suite's larger objects spill to disk, so both tiers run it.
    let daemon = Running::start(small_options(dir.path()), &token);
    byref_core::conformance::run_all(Arc::new(daemon.client(&token))).await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_data_and_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(small_options(dir.path()), &token);
    let small = payload(b"in the memory tier");
    let large = payload(&vec![7u8; 3 << 20]); // over the memory tier: on disk
    let client = daemon.client(&token);
    let small_key = client
        .put_payload(&small, &PutOptions::new())
        .await
        .unwrap();
    let large_key = client
        .put_payload(&large, &PutOptions::new())
        .await
        .unwrap();
    let url = daemon.url();
    daemon.stop().await;

    let again = Running::start(small_options(dir.path()), &token);
    assert_eq!(
        again.url().split('?').nth(1),
        url.split('?').nth(1),
        "certificate changed"
    );
    let client = again.client(&token);
    for (key, data) in [(small_key, small), (large_key, large)] {
        let object = client.get_verified(&key, true).await.unwrap();
        assert_eq!(object.len() as u64, data.len());
    }
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_puts_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let mut options = small_options(dir.path());
    options.disk_limit = 2 << 20;
    let daemon = Running::start(options, &token);
    let client = daemon.client(&token);
    let mut keys = Vec::new();
    for i in 0..3u8 {
        let data = payload(&vec![i; 900 << 10]);
        keys.push(client.put_payload(&data, &PutOptions::new()).await.unwrap());
    }
    let err = client
        .put_payload(&payload(&vec![9; 900 << 10]), &PutOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StoreFull { .. }), "{err}");
    for key in &keys {
        assert!(client.head(key).await.unwrap().is_some());
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(small_options(dir.path()), &token);
    let client = daemon.client(&token);
    let options = PutOptions {
        ttl: Some(Duration::from_millis(300)),
        ..PutOptions::new()
    };
    let memory = client
        .put_payload(&payload(b"short"), &options)
        .await
        .unwrap();
    let disk = client
        .put_payload(&payload(&vec![1; 2 << 20]), &options)
        .await
        .unwrap();
    let kept = client
        .put_payload(&payload(b"kept"), &PutOptions::new())
        .await
        .unwrap();
    assert!(client.head(&memory).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(client.head(&memory).await.unwrap().is_none());
    assert!(client.head(&disk).await.unwrap().is_none());
    assert!(client.head(&kept).await.unwrap().is_some());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(small_options(dir.path()), &token);
    let client = daemon.client(&token);
    let short = PutOptions {
        ttl: Some(Duration::from_millis(1500)),
        ..PutOptions::new()
    };
    // One spilled to disk at once, one written there by the shutdown flush, one kept.
    let on_disk = client
        .put_payload(&payload(&vec![3; 2 << 20]), &short)
        .await
        .unwrap();
    let flushed = client
        .put_payload(&payload(b"flushed"), &short)
        .await
        .unwrap();
    let kept = client
        .put_payload(&payload(&vec![4; 2 << 20]), &PutOptions::new())
        .await
        .unwrap();
    daemon.stop().await;

    let again = Running::start(small_options(dir.path()), &token);
    let client = again.client(&token);
    assert!(client.head(&on_disk).await.unwrap().is_some());
    assert!(client.head(&flushed).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(client.head(&on_disk).await.unwrap().is_none());
    assert!(client.head(&flushed).await.unwrap().is_none());
    assert!(client.head(&kept).await.unwrap().is_some());
    let status = again.daemon.status();
    assert!(
        status.contains("byref_objects{tier=\"disk\"} 1\n"),
        "{status}"
    );
    again.stop().await;
}
