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

mod hostile;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use byref_core::{Key, Payload, PutOptions, StoreExt, StoreUrl};
use byref_quic::QuicStore;
use byref_quic::token::Token;
use bytes::Bytes;
use hostile::{Hostile, Lie};

/// Set in the child: serve as the hostile server, naming this path.
const VICTIM_VAR: &str = "BYREF_TEST_HOSTILE_VICTIM";
const TOKEN_VAR: &str = "BYREF_TEST_HOSTILE_TOKEN";

fn main() {
    if let Ok(victim) = std::env::var(VICTIM_VAR) {
        return serve_hostile(PathBuf::from(victim));
    }
    let name = "a_hostile_same_host_server_cannot_have_a_client_map_its_own_file";
    match run() {
        Ok(()) => println!("test {name} ... ok"),
        Err(Skip(why)) => byref_testing::skipped(name, &why),
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
        let store = Arc::new(Hostile::new(Lie::Locate(victim)));
        let payload = Payload::from_parts(vec![Bytes::from(vec![b'h'; size])]);
        let key = store
            .put_payload(&payload, &PutOptions::new())
            .await
            .unwrap();
        let (url, serving) = hostile::serve(store, token, Duration::from_secs(60));
        println!("{url} {key}");
        serving.await;
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
