//! The daemon over real QUIC on loopback, with the real `quic://` client.

use std::sync::Arc;
use std::time::Duration;

use byref_core::{Error, Key, Payload, PutOptions, Store, StoreExt, StoreUrl};
use byref_daemon::{Daemon, Options};
use byref_quic::QuicStore;
use byref_quic::protocol::request::layout;
use byref_quic::protocol::{
    Head, Header, Op, Put, REQUEST_LEN, RESPONSE_LEN, Request, Response, Status,
};
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
async fn a_wrong_token_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let err = daemon
        .client(&Token::random())
        .head(&Key::of(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err}");
    assert!(err.to_string().contains("wrong token"), "{err}");
    let none = QuicStore::open_with_token(StoreUrl::parse(&daemon.url()).unwrap(), None).unwrap();
    let err = none.head(&Key::of(b"x")).await.unwrap_err();
    assert!(err.to_string().contains("BYREF_TOKEN"), "{err}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_certificate_fails_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let url = format!(
        "quic://{}?fingerprint={}&connect_timeout=5",
        daemon.addr,
        "ab".repeat(32)
    );
    let client = QuicStore::open_with_token(StoreUrl::parse(&url).unwrap(), Some(token)).unwrap();
    let err = client.head(&Key::of(b"x")).await.unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
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
    assert!(matches!(err, Error::StorageFull { .. }), "{err}");
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

/// A raw connection, for sending what no well-behaved client would.
async fn raw(daemon: &Running) -> quinn::Connection {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let fingerprint = daemon.daemon.identity().fingerprint();
    endpoint.set_default_client_config(byref_quic::tls::client_config(&fingerprint, 1452).unwrap());
    endpoint
        .connect(daemon.addr, "byref")
        .unwrap()
        .await
        .unwrap()
}

/// The proof of `token` on `conn`.
fn proof(conn: &quinn::Connection, token: &Token) -> [u8; 32] {
    token.proof(&byref_quic::token::binding(conn).unwrap())
}

/// A `HEAD` header carrying `proof`.
fn head_request(proof: [u8; 32], key: Key) -> Header {
    Header {
        proof,
        request: Request::Head(Head { key }),
    }
}

/// A `PUT` header carrying `proof`, announcing `length` bytes, with a new reference.
fn put_request(proof: [u8; 32], key: Key, length: u64) -> Header {
    Header {
        proof,
        request: Request::Put(Put {
            key,
            reference: byref_core::RefId::random(),
            length,
            ttl: None,
        }),
    }
}

async fn exchange(conn: &quinn::Connection, bytes: &[u8]) -> Option<Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    send.write_all(bytes).await.ok()?;
    send.finish().ok()?;
    let mut head = [0u8; RESPONSE_LEN];
    recv.read_exact(&mut head).await.ok()?;
    Response::decode(&head).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_headers_are_rejected_and_the_daemon_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let conn = raw(&daemon).await;
    let valid = head_request(proof(&conn, &token), Key::of(b"x")).encode();
    let mut bad_version = valid;
    bad_version[layout::VERSION] = 99;
    let mut huge = valid;
    huge[layout::OP] = Op::Put as u8;
    huge[layout::FLAGS] = 1;
    huge[layout::FIRST].copy_from_slice(&u64::MAX.to_le_bytes());
    for garbage in [
        &b"hello"[..],
        &[0xff; REQUEST_LEN][..],
        &bad_version[..],
        &huge[..],
    ] {
        let response = exchange(&conn, garbage)
            .await
            .expect("an answer, not a crash");
        assert_eq!(response.status, Status::BadRequest);
    }
    let response = exchange(&conn, &valid).await.unwrap();
    assert_eq!(response.status, Status::NotFound);
    daemon.stop().await;
}

/// An authenticated PUT announcing 60 GiB (under the 64 GiB object limit, with room on an
/// unlimited disk) and sending nothing: the daemon must not reserve what was announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_body_is_not_reserved_before_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let conn = raw(&daemon).await;
    let header = put_request(proof(&conn, &token), Key::of(b"never sent"), 60 << 30);
    let response = exchange(&conn, &header.encode())
        .await
        .expect("an answer, not an aborted daemon");
    assert_eq!(response.status, Status::BadRequest);
    let store = daemon.client(&token);
    let key = store
        .put_payload(&payload(b"still serving"), &PutOptions::new())
        .await
        .unwrap();
    assert!(store.head(&key).await.unwrap().is_some());
    daemon.stop().await;
}

/// Connections that never authenticate take every slot; past the deadline they are closed
/// and a client with the token gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_the_token_do_not_keep_the_slots() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let mut options = Options::new(dir.path());
    options.max_connections = 3;
    options.auth_deadline = Duration::from_millis(500);
    let daemon = Running::start(options, &token);
    let mut squatters = Vec::new();
    for _ in 0..3 {
        squatters.push(raw(&daemon).await);
    }
    // A fourth connection is refused while they hold the slots.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let fingerprint = daemon.daemon.identity().fingerprint();
    endpoint.set_default_client_config(byref_quic::tls::client_config(&fingerprint, 1452).unwrap());
    let refused = endpoint.connect(daemon.addr, "byref").unwrap().await;
    assert!(refused.is_err(), "a fourth connection got a slot");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    for squatter in &squatters {
        assert!(
            squatter.close_reason().is_some(),
            "an idle squatter kept its slot"
        );
    }
    let store = daemon.client(&token);
    let key = store
        .put_payload(&payload(b"in at last"), &PutOptions::new())
        .await
        .unwrap();
    assert!(store.head(&key).await.unwrap().is_some());
    // A connection that made an authenticated request stays open past the deadline.
    let member = raw(&daemon).await;
    let header = head_request(proof(&member, &token), key);
    assert_eq!(
        exchange(&member, &header.encode()).await.unwrap().status,
        Status::Ok
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        member.close_reason().is_none(),
        "an authenticated connection was closed"
    );
    daemon.stop().await;
}

/// A URL or handle naming an attacker's server (with the attacker's certificate pinned): the
/// client talks to it, and what it sends there neither is the token nor opens the real
/// daemon, replayed on a connection of the attacker's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_server_learns_nothing_it_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let real = daemon.client(&token);
    let key = real
        .put_payload(&payload(b"the victim's data"), &PutOptions::new())
        .await
        .unwrap();

    // The attacker's server records the first request header it is sent.
    let identity = byref_quic::Identity::generate().unwrap();
    let fake = quinn::Endpoint::server(
        identity.server_config().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let fake_url = format!(
        "quic://{}?fingerprint={}&timeout=2",
        fake.local_addr().unwrap(),
        identity.fingerprint()
    );
    let captured = tokio::spawn(async move {
        let conn = fake.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = conn.accept_bi().await.unwrap();
        let mut head = [0u8; REQUEST_LEN];
        recv.read_exact(&mut head).await.unwrap();
        head
    });
    let victim =
        QuicStore::open_with_token(StoreUrl::parse(&fake_url).unwrap(), Some(token.clone()))
            .unwrap();
    assert!(
        victim.head(&key).await.is_err(),
        "the fake server never answers"
    );
    let head = captured.await.unwrap();
    let stolen: [u8; 32] = head[4..36].try_into().unwrap();
    assert_ne!(stolen, token.0, "the token itself went to the fake server");
    assert!(
        !head.windows(32).any(|w| w == token.0),
        "the token is in the header"
    );

    // Replayed to the real daemon, over a connection of the attacker's own.
    let conn = raw(&daemon).await;
    let replay = head_request(stolen, key);
    let response = exchange(&conn, &replay.encode()).await.unwrap();
    assert_eq!(response.status, Status::Unauthenticated);
    // The same request with a proof made on this connection is served: it is the binding,
    // not the header, that was refused.
    let genuine = head_request(proof(&conn, &token), key);
    assert_eq!(
        exchange(&conn, &genuine.encode()).await.unwrap().status,
        Status::Ok
    );
    daemon.stop().await;
}

/// A token holder cannot store other bytes under someone else's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_hash_to_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let conn = raw(&daemon).await;
    for len in [5usize, 3 << 20] {
        let (genuine, forged) = (vec![1u8; len], vec![2u8; len]);
        let key = Key::of(&genuine);
        let header = put_request(proof(&conn, &token), key, len as u64);
        let mut request = header.encode().to_vec();
        request.extend_from_slice(&forged);
        let response = exchange(&conn, &request).await.unwrap();
        assert_eq!(response.status, Status::BadRequest, "{len} bytes");
        assert!(daemon.client(&token).head(&key).await.unwrap().is_none());
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_upload_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let data = vec![5u8; 8 << 20];
    let key = Key::of(&data);
    let conn = raw(&daemon).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let header = put_request(proof(&conn, &token), key, data.len() as u64);
    send.write_all(&header.encode()).await.unwrap();
    send.write_all(&data[..4 << 20]).await.unwrap();
    conn.close(0u32.into(), b"killed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(daemon.client(&token).head(&key).await.unwrap().is_none());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..256u32 {
        let store = daemon.client(&token);
        clients.spawn(async move {
            let mut keys = Vec::new();
            for i in 0..8u32 {
                let data = payload(format!("client {c} object {i}").as_bytes());
                keys.push((
                    store.put_payload(&data, &PutOptions::new()).await.unwrap(),
                    data,
                ));
            }
            for (key, data) in keys {
                let object = store.get_verified(&key, true).await.unwrap();
                assert_eq!(object.len() as u64, data.len());
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let status = daemon.daemon.status();
    assert!(
        status.contains("byref_objects{tier=\"memory\"} 2048"),
        "{status}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_reports_its_progress_to_the_last_byte() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let progress = byref_core::Progress::default();
    let options = PutOptions {
        progress: Some(progress.clone()),
        ..PutOptions::new()
    };
    let data = payload(&vec![2u8; 20 << 20]);
    daemon
        .client(&token)
        .put_payload(&data, &options)
        .await
        .unwrap();
    assert_eq!(progress.done(), data.len());
    daemon.stop().await;
}

/// A client on the server's host maps an object the server keeps in a file (`LOCATE`),
/// privately, with no transfer; objects in memory, small objects, files others may write
/// and files of another length are sent instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_host_client_maps_the_servers_file() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(small_options(dir.path()), &token);
    let client = daemon.client(&token);
    let locates = || {
        let status = daemon.daemon.status();
        let line = status
            .lines()
            .find(|l| l.starts_with("byref_requests_total{op=\"locate\"}"))
            .unwrap()
            .to_owned();
        line.split(' ').nth(1).unwrap().parse::<u64>().unwrap()
    };
    let on_disk = vec![3u8; 2 << 20];
    let key = client
        .put_payload(&payload(&on_disk), &PutOptions::new())
        .await
        .unwrap();
    let Some(byref_core::Object::Mapped(mut mapped)) =
        client.map_local(&key, on_disk.len() as u64).await.unwrap()
    else {
        panic!("an object in the disk tier was not mapped")
    };
    assert_eq!(&mapped[..], &on_disk[..]);
    assert_eq!(locates(), 1);
    mapped[0] = 9; // Private: the server's file keeps its bytes.
    assert_eq!(client.get(&key).await.unwrap().as_slice(), &on_disk[..]);
    // Another length than the handle says.
    assert!(client.map_local(&key, 5 << 20).await.unwrap().is_none());
    // In memory, or small: sent.
    let in_memory = vec![4u8; 512 << 10];
    let small_key = client
        .put_payload(&payload(&in_memory), &PutOptions::new())
        .await
        .unwrap();
    assert!(
        client
            .map_local(&small_key, 512 << 10)
            .await
            .unwrap()
            .is_none()
    );
    assert!(client.map_local(&small_key, 1000).await.unwrap().is_none());
    let path = find(dir.path(), &key.to_hex()).expect("a name of the object's file");
    // A file of another user (which a handle's server may name) is not trusted. Only root
    // can give a file away; other users skip this step.
    let mode = std::fs::metadata(&path).unwrap().permissions();
    let uid = std::fs::metadata(&path).unwrap().uid();
    if std::os::unix::fs::chown(&path, Some(65534), None).is_ok() {
        let len = on_disk.len() as u64;
        assert!(client.map_local(&key, len).await.unwrap().is_none());
        std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
        std::fs::set_permissions(&path, mode).unwrap();
        assert!(client.map_local(&key, len).await.unwrap().is_some());
    }
    // A file others could have written is not trusted.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(
        client
            .map_local(&key, on_disk.len() as u64)
            .await
            .unwrap()
            .is_none()
    );
    daemon.stop().await;
}

/// The regular file named `name` under `dir`, at any depth.
/// A file under `dir` whose name starts with `prefix` (a key: the file store's names are
/// `<key>.<reference>`).
fn find(dir: &std::path::Path, prefix: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) && path.is_file() {
            return Some(path);
        }
        if path.is_dir()
            && let Some(found) = find(&path, prefix)
        {
            return Some(found);
        }
    }
    None
}

/// UDP payload bytes the daemon has received, from its status.
fn bytes_received(daemon: &Running) -> u64 {
    let status = daemon.daemon.status();
    let line = status
        .lines()
        .find(|l| l.starts_with("byref_quic_bytes_total{dir=\"received\"}"))
        .expect("the status counts bytes received");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A put of content the daemon holds already (a task's argument passed again) adds its
/// reference without the body: the server answers at the header and stops the upload. What
/// the client sends meanwhile is bounded by the stream's flow-control window (16 MiB), which
/// a server that reads nothing never extends: so whatever the load, not the 64 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_of_content_held_already_sends_no_body() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Running::start(Options::new(dir.path()), &token);
    let client = daemon.client(&token);
    let data = payload(&vec![7u8; 64 << 20]);
    let first = PutOptions {
        reference: byref_core::RefId::random(),
        ..PutOptions::new()
    };
    let key = client.put_payload(&data, &first).await.unwrap();
    let before = bytes_received(&daemon);
    let second = PutOptions {
        reference: byref_core::RefId::random(),
        ..PutOptions::new()
    };
    assert_eq!(client.put_payload(&data, &second).await.unwrap(), key);
    let sent = bytes_received(&daemon) - before;
    assert!(
        sent < 20 << 20,
        "{sent} bytes sent for a put of {} held already",
        data.len()
    );
    // Both references count: the object stays until the second is released.
    assert!(!client.release(&key, Some(&first.reference)).await.unwrap());
    assert!(client.release(&key, Some(&second.reference)).await.unwrap());
    assert_eq!(client.head(&key).await.unwrap(), None);
    daemon.stop().await;
}
