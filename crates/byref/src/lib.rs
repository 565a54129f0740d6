//! Open a byref store from its URL.
//!
//! The facade: depends on `byref-core` and the backends (each behind its feature), never on
//! the daemon or the bindings, so a Rust program embeds byref without either.
//!
//! ```
//! let opened = byref::open("memory://doc").unwrap();
//! assert_eq!(opened.store.url(), "memory://doc");
//! ```
//!
//! | scheme            | backend                 | cargo feature |
//! |-------------------|-------------------------|---------------|
//! | `memory://[name]` | this process's memory   | (always)      |
//! | `file:///path`    | a directory             | `fs`          |
//! | `redis://host:port/db`, `rediss://`, `redis+cluster://h1:p1,h2:p2` | Redis | `redis` |
//! | `s3://bucket/prefix`   | S3 or an S3-compatible server | `s3` |
//! | `quic://host:port?fingerprint=...` | a byref daemon or peer | `quic` |
//! | `peer://[host][:port]` | this process, serving its objects over QUIC (opened inside a tokio runtime) | `peer` |
//!
//! Options common to every scheme:
//! - `verify=true|false`: check every fetched object against its BLAKE3 key. Defaults to
//!   `false` for local stores (`memory`, `file`), whose objects only byref writes, whole and
//!   atomically — like IPFS, whose `HashOnRead` is off for its local blockstore — and to
//!   `true` for stores across a network. On a 2-core machine, hashing 1 GB costs ~160 ms
//!   against ~45 ms to map and sum it.

use std::sync::Arc;

pub mod cache;
pub mod holders;
pub mod inventory;
pub mod kinds;
#[cfg(feature = "fs")]
mod node;
mod resolve;
pub mod threshold;
pub mod transfer;
pub mod travel;

pub use resolve::{release, resolve};
pub use threshold::{DEFAULT_PROXY_THRESHOLD, proxy_threshold};

pub use byref_core::*;

/// A store together with how its reads are checked.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The backend.
    pub store: Arc<dyn Store>,
    /// The URL that opens the same store with the same options; what handles carry.
    pub url: String,
    /// Check every fetched object against its key.
    pub verify: bool,
    /// Buffers of at least this many bytes are worth proxying by default on this store
    /// ([`proxy_threshold`] of its scheme).
    pub proxy_threshold: u64,
}

/// The default store's URL, for every language: `BYREF_URL` (the environment, else
/// `byref.env`), else a file store under the user's cache directory
/// (`$XDG_CACHE_HOME/byref`, default `~/.cache/byref`).
pub fn default_url() -> Result<String> {
    if let Some(url) = secrets::setting(secrets::DEFAULT_URL_VAR)?.filter(|u| !u.is_empty()) {
        return Ok(url);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            Error::Config("no default store: set BYREF_URL, XDG_CACHE_HOME or HOME".into())
        })?;
    Ok(StoreUrl::of_directory(&cache.join("byref"))?
        .url()
        .to_string())
}

/// Opens the store `url` names, rejecting unknown schemes and options.
pub fn open(url: &str) -> Result<Opened> {
    open_parsed(StoreUrl::parse(url)?, url)
}

/// [`open`], of a parsed URL (`url` as given, for messages).
fn open_parsed(mut parsed: StoreUrl, url: &str) -> Result<Opened> {
    let verify = parsed.take_bool("verify", !is_local(parsed.scheme()))?;
    let scheme = parsed.scheme().to_owned();
    let store: Arc<dyn Store> = match scheme.as_str() {
        MEMORY_SCHEME => Arc::new(MemoryStore::open(parsed)?),
        #[cfg(feature = "fs")]
        byref_fs::SCHEME => Arc::new(byref_fs::FileStore::open(parsed)?),
        #[cfg(feature = "redis")]
        s if byref_redis::SCHEMES.contains(&s) => Arc::new(byref_redis::RedisStore::open(parsed)?),
        #[cfg(feature = "s3")]
        byref_s3::SCHEME => Arc::new(byref_s3::S3Store::open(parsed)?),
        #[cfg(feature = "quic")]
        byref_quic::SCHEME => Arc::new(byref_quic::QuicStore::open(parsed)?),
        #[cfg(feature = "peer")]
        byref_peer::SCHEME => Arc::new(byref_peer::PeerStore::open(parsed)?),
        other => {
            return Err(Error::Config(format!(
                "unknown store scheme {other}:// in {:?} (this build supports: {})",
                redact(url),
                SCHEMES.join(", ")
            )));
        }
    };
    let canonical = UrlBuilder::extend(store.url())
        .option_if("verify", (verify == is_local(&scheme)).then_some(verify))
        .build();
    Ok(Opened {
        store,
        url: canonical,
        verify,
        proxy_threshold: proxy_threshold(&scheme),
    })
}

/// Opens the store a handle names. A handle may come from anyone, so it says where to read
/// and nothing more: it cannot switch verification off below its scheme's default, start a
/// server in this process (`peer://`: a peer's handles carry its `quic://` URL), or make
/// directories (`file://` opens only a store directory of this user's that exists here and
/// no one else may write to), or have this
/// process send a global secret (`BYREF_REDIS_PASSWORD`) to a host the user did not configure.
pub fn open_for_handle(url: &str) -> Result<Opened> {
    let parsed = StoreUrl::parse(url)?;
    let scheme = parsed.scheme().to_owned();
    if scheme == "peer" {
        return Err(Error::Config(format!(
            "a handle names {}, which would start a server in this process; \
             a peer's handles name its quic:// URL",
            redact(url)
        )));
    }
    if scheme == "file" {
        let path = parsed.url().to_file_path().unwrap_or_default();
        check_own_store_dir(&path)?;
    }
    // Global secrets are not sent to a host only the handle named (byref_core::secrets).
    let mut opened = open_parsed(parsed.named_by_handle(), url)?;
    opened.verify |= !is_local(&scheme);
    Ok(opened)
}

/// A file store a handle may name: a directory of this user that no one else may write to.
/// Another user's store, even one this user can read, holds objects this user never checked
/// (and unpickling them runs their code); a directory others can write to may hold anything.
fn check_own_store_dir(path: &std::path::Path) -> Result<()> {
    let Some(meta) = std::fs::metadata(path).ok().filter(|m| m.is_dir()) else {
        return Err(Error::Config(format!(
            "a handle names the file store {}, which does not exist on this machine",
            path.display()
        )));
    };
    own_file::check_mine(path, &meta).map_err(|e| match e {
        Error::Config(why) => Error::Config(format!(
            "a handle names a file store it may not open: {why}; \
             a handle opens only this user's private stores"
        )),
        other => other,
    })
}

/// Whether a scheme's objects live on this machine, written only by byref.
pub(crate) fn is_local(scheme: &str) -> bool {
    matches!(scheme, MEMORY_SCHEME | "file" | "peer")
}

/// The schemes this build can open.
pub const SCHEMES: &[&str] = &[
    "memory://",
    #[cfg(feature = "fs")]
    "file://",
    #[cfg(feature = "redis")]
    "redis://",
    #[cfg(feature = "redis")]
    "rediss://",
    #[cfg(feature = "redis")]
    "redis+cluster://",
    #[cfg(feature = "s3")]
    "s3://",
    #[cfg(feature = "quic")]
    "quic://",
    #[cfg(feature = "peer")]
    "peer://",
];

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_schemes_and_options_are_config_errors() {
        let err = super::open("ftp://x/y").unwrap_err();
        assert!(err.to_string().contains("ftp://"), "{err}");
        assert!(matches!(
            super::open("memory://?colour=red"),
            Err(super::Error::Config(_))
        ));
    }

    /// Bytes a `verify=false` store fetched must not reach a `verify=true` one through the
    /// process cache: a corrupted file is fetched twice unverified (admitted on the second
    /// fetch, were it cached), then once verified.
    #[cfg(feature = "fs")]
    #[tokio::test]
    async fn only_verified_bytes_enter_the_process_cache() {
        use crate::{Encoding, Payload, PutOptions, StoreExt};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let trusting = super::open(&url).unwrap();
        let payload = Payload::frame(
            Encoding::Raw,
            bytes::Bytes::new(),
            vec![bytes::Bytes::from(b"cache me if you can".repeat(10))],
        );
        let key = trusting
            .store
            .put_payload(&payload, &PutOptions::new())
            .await
            .unwrap();
        let hex = key.to_hex();
        let shard = dir.path().join("objects").join(&hex[..3]);
        let path = std::fs::read_dir(shard)
            .unwrap()
            .next()
            .expect("the object's one name")
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        for _ in 0..2 {
            trusting.fetch(&key, None, None).await.unwrap();
        }
        let checking = super::open(&format!("{url}?verify=true")).unwrap();
        let err = checking.fetch(&key, None, None).await.unwrap_err();
        assert!(matches!(err, super::Error::Integrity { .. }), "{err}");
    }

    #[cfg(feature = "fs")]
    #[test]
    fn a_handle_says_where_to_read_and_nothing_more() {
        let err = super::open_for_handle("peer://127.0.0.1").unwrap_err();
        assert!(matches!(err, super::Error::Config(_)), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-here");
        let err = super::open_for_handle(&format!("file://{}", missing.display())).unwrap_err();
        assert!(matches!(err, super::Error::Config(_)), "{err}");
        assert!(!missing.exists(), "a handle made a directory");
        let existing = format!("file://{}", dir.path().display());
        assert!(super::open_for_handle(&existing).is_ok());

        // Another user's store, or one anyone may write to, is not opened for a handle (the
        // user may still open it by its URL).
        use std::os::unix::fs::PermissionsExt;
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let shared = format!("file://{}", shared.display());
        let err = super::open_for_handle(&shared).unwrap_err();
        assert!(err.to_string().contains("may write to"), "{err}");
        assert!(super::open(&shared).is_ok());
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        match rustix::fs::chown(&theirs, Some(rustix::fs::Uid::from_raw(65534)), None) {
            Ok(()) => {
                let err =
                    super::open_for_handle(&format!("file://{}", theirs.display())).unwrap_err();
                assert!(err.to_string().contains("belongs to user 65534"), "{err}");
            }
            Err(e) => byref_testing::skipped(
                "open_for_handle: another user's store",
                &format!("another user's store needs root to make ({e})"),
            ),
        }

        #[cfg(feature = "quic")]
        {
            let fingerprint = "0".repeat(64);
            let quiet = format!("quic://127.0.0.1:1?fingerprint={fingerprint}&verify=false");
            assert!(!super::open(&quiet).unwrap().verify, "a user may choose");
            assert!(
                super::open_for_handle(&quiet).unwrap().verify,
                "a handle may not"
            );
        }
    }

    #[test]
    fn verify_defaults_off_locally_and_survives_into_the_canonical_url() {
        assert!(!super::open("memory://v").unwrap().verify);
        let opened = super::open("memory://v?verify=true").unwrap();
        assert!(opened.verify);
        assert_eq!(opened.url, "memory://v?verify=true");
        assert!(super::open(&opened.url).unwrap().verify);
    }
}
