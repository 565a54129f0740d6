//! A hostile server on the client's host, running as another Unix user, answers `LOCATE` with
//! the path of one of the *client's own* private files, of the length the handle says. The
//! client must not map it (it would return the file as the value, unchecked) and must get the
//! server's real object instead, verified.
//!
//! The server is a real byref QUIC server (over a store whose `locate` lies), run as a second
//! Unix user made for the test and removed afterwards: this binary runs itself again as that
//! user (`harness = false`). Without root (no `useradd`), the test says so and is skipped.

// Its own harness: it reports on stdout, as libtest does.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Key, MemoryStore, Object, Payload, PutOptions, RefId, Result, Store, StoreExt,
    StoreUrl,
};
use byref_quic::token::Token;
use byref_quic::{Identity, QuicStore, Server, server_url};
use bytes::Bytes;

/// Set in the child: serve as the hostile server, naming this path.
const VICTIM_VAR: &str = "BYREF_TEST_HOSTILE_VICTIM";
const TOKEN_VAR: &str = "BYREF_TEST_HOSTILE_TOKEN";

/// A memory store that tells every `LOCATE` the object is in `victim`.
#[derive(Debug)]
struct Lying {
    inner: MemoryStore,
    victim: PathBuf,
}

#[async_trait]
impl Store for Lying {
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
    async fn locate(&self, _key: &Key) -> Result<Option<PathBuf>> {
        Ok(Some(self.victim.clone()))
    }
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        self.inner.release(key, reference).await
    }
}

fn main() {
    if let Ok(victim) = std::env::var(VICTIM_VAR) {
        return serve_hostile(PathBuf::from(victim));
    }
    let name = "a_hostile_same_host_server_cannot_have_a_client_map_its_own_file";
    match run() {
        Ok(()) => println!("test {name} ... ok"),
        Err(Skip(why)) => println!("test {name} ... skipped: {why}"),
    }
}

struct Skip(String);

/// The child: serves one object (what the victim file's length says) for at most 60 s.
fn serve_hostile(victim: PathBuf) {
    let token = Token::from_hex(&std::env::var(TOKEN_VAR).unwrap()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let size: usize = std::env::var("BYREF_TEST_HOSTILE_LEN")
            .unwrap()
            .parse()
            .unwrap();
        let inner = MemoryStore::open(StoreUrl::parse("memory://hostile").unwrap()).unwrap();
        let payload = Payload::from_parts(vec![Bytes::from(vec![b'h'; size])]);
        let key = inner
            .put_payload(&payload, &PutOptions::new())
            .await
            .unwrap();
        let store = Arc::new(Lying { inner, victim });
        let identity = Identity::generate().unwrap();
        let endpoint = byref_quic::tls::endpoint(
            "127.0.0.1:0".parse().unwrap(),
            Some(identity.server_config().unwrap()),
            byref_quic::tls::MAX_UDP_PAYLOAD,
        )
        .unwrap();
        let addr = endpoint.local_addr().unwrap();
        let url = server_url(&addr.to_string(), &identity.fingerprint(), None, None);
        println!("{url} {key}");
        let server = Arc::new(Server::new(store, token));
        byref_quic::server::run(
            endpoint,
            server,
            tokio::time::sleep(Duration::from_secs(60)),
        )
        .await;
    });
}

/// A Unix user made for this test, removed when dropped.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

impl User {
    fn create() -> std::result::Result<Self, Skip> {
        if rustix::process::getuid().as_raw() != 0 {
            return Err(Skip("a second Unix user needs root to create".into()));
        }
        let name = format!("byref-hostile-{}", std::process::id());
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .status()
            .map_err(|e| Skip(format!("useradd: {e}")))?;
        if !made.success() {
            return Err(Skip(format!("useradd {name} failed: {made}")));
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Ok(User { name, uid, gid })
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run() -> std::result::Result<(), Skip> {
    let user = User::create()?;
    // The client's own private file, of a length worth mapping.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("id_ed25519");
    let secret = vec![b's'; 256 << 10];
    std::fs::write(&victim, &secret).unwrap();
    let token = Token::random();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(VICTIM_VAR, &victim)
        .env(TOKEN_VAR, token.to_hex())
        .env("BYREF_TEST_HOSTILE_LEN", secret.len().to_string())
        .uid(user.uid)
        .gid(user.gid)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (url, key) = line
        .trim()
        .split_once(' ')
        .expect("the server's URL and key");
    let key: Key = key.parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client =
            QuicStore::open_with_token(StoreUrl::parse(url).unwrap(), Some(token.clone())).unwrap();
        let mapped = client.map_local(&key, secret.len() as u64).await.unwrap();
        assert!(
            mapped.is_none(),
            "the client mapped the file another user's server named: {} bytes of its own secret",
            mapped.map_or(0, |m| m.len())
        );
        let fetched = client
            .get_checked(&key, Some(secret.len() as u64), true, None)
            .await
            .unwrap();
        assert!(
            fetched.as_slice().iter().all(|&b| b == b'h'),
            "not the server's object"
        );
    });
    drop(child);
    drop(user);
    Ok(())
}
