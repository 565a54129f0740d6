//! The QUIC client and server by themselves, over real QUIC on loopback: a tiered store served
//! by `byref_quic::server` (`byref_testing::quic::Served`), the real `quic://` client, and raw
//! connections sending what no well-behaved client would. What the daemon adds (limits of its
//! tiers, TTLs, restarts) is tested in `crates/byref-daemon/tests/quic.rs`.

use std::time::Duration;

use byref_core::{Error, Key, Payload, PutOptions, Store, StoreExt, StoreUrl};
use byref_quic::protocol::request::layout;
use byref_quic::protocol::{
    Head, Header, Op, Put, REQUEST_LEN, RESPONSE_LEN, Request, Response, Status,
};
use byref_quic::token::Token;
use byref_quic::{QuicStore, Server};
use byref_testing::quic::Served;
use bytes::Bytes;

fn payload(data: &[u8]) -> Payload {
    Payload::from_parts(vec![Bytes::copy_from_slice(data)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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

/// A raw connection, for sending what no well-behaved client would.
async fn raw(daemon: &Served) -> quinn::Connection {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let fingerprint = daemon.identity.fingerprint();
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let server = Server::new(Served::tiers(dir.path(), 1 << 30), token.clone())
        .with_max_connections(3)
        .with_auth_deadline(Duration::from_millis(500));
    let daemon = Served::start(server);
    let mut squatters = Vec::new();
    for _ in 0..3 {
        squatters.push(raw(&daemon).await);
    }
    // A fourth connection is refused while they hold the slots.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let fingerprint = daemon.identity.fingerprint();
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
    // What this checks is that nothing is lost, not how fast. 64 connections at once: with 256,
    // on a loaded 2-core CI machine (beside the Python suite and the fuzzers), one request
    // waited past the default 30 s request timeout, and once a connection sent its first
    // request after the server's 30 s deadline for it.
    let url = format!("{}&timeout=300", daemon.url());
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..64u32 {
        let store = QuicStore::open_with_token(StoreUrl::parse(&url).unwrap(), Some(token.clone()))
            .unwrap();
        clients.spawn(async move {
            let mut keys = Vec::new();
            for i in 0..32u32 {
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
    let listed = daemon.client(&token).list().await.unwrap();
    assert_eq!(listed.len(), 2048, "every object of every client stored");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_reports_its_progress_to_the_last_byte() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::random();
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
    let daemon = Served::tiered(dir.path(), 1 << 20, &token);
    let client = daemon.client(&token);
    let locates = || {
        let status = daemon.server.status();
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
fn bytes_received(daemon: &Served) -> u64 {
    let status = daemon.server.status();
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
    let daemon = Served::tiered(dir.path(), 1 << 30, &token);
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
