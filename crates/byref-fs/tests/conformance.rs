//! The core conformance suite, on a real directory.

use std::sync::Arc;

use byref_core::{Error, Object, PutOptions, Store, StoreExt, StoreUrl, conformance};
use byref_fs::FileStore;

fn open(dir: &tempfile::TempDir) -> FileStore {
    let url = format!("file://{}", dir.path().display());
    FileStore::open(StoreUrl::parse(&url).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(Arc::new(open(&dir))).await;
}

/// The path of the one name `key` has in the store in `dir`.
fn only_name(dir: &tempfile::TempDir, key: &byref_core::Key) -> std::path::PathBuf {
    let hex = key.to_hex();
    let shard = dir.path().join("objects").join(&hex[..3]);
    let names: Vec<_> = std::fs::read_dir(shard)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    names.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_flipped_byte_on_disk_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let payload = byref_core::Payload::frame(
        byref_core::Encoding::Raw,
        bytes::Bytes::new(),
        vec![bytes::Bytes::from(vec![9u8; 200_000])],
    );
    let key = store
        .put_payload(&payload, &PutOptions::new())
        .await
        .unwrap();
    let path = only_name(&dir, &key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = store.get_verified(&key, true).await.unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err}");
}

/// A damaged object (a flipped byte, a truncation) is repaired by putting its value again,
/// through an ordinary put or a streamed one (the daemon's spill), and the reference count
/// is unchanged by the repair.
#[tokio::test]
async fn a_put_repairs_a_damaged_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let data = bytes::Bytes::from(vec![9u8; 3 << 20]);
    let payload = byref_core::Payload::from_parts(vec![data.clone()]);
    let key = store
        .put_payload(&payload, &PutOptions::new())
        .await
        .unwrap();
    let path = only_name(&dir, &key);
    let damages: [fn(&mut Vec<u8>); 2] = [|b| b[100_000] ^= 1, |b| b.truncate(1000)];
    for (round, damage) in damages.into_iter().enumerate() {
        for streamed in [false, true] {
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            assert!(store.get_verified(&key, true).await.is_err());
            if streamed {
                let mut body = Whole(Some(data.clone()));
                let len = data.len() as u64;
                store
                    .put_incoming(&key, len, &mut body, &PutOptions::new())
                    .await
                    .unwrap();
            } else {
                store
                    .put_payload(&payload, &PutOptions::new())
                    .await
                    .unwrap();
            }
            let back = store.get_verified(&key, true).await;
            assert!(
                back.is_ok(),
                "round {round}, streamed {streamed}: not repaired"
            );
        }
    }
    // One reference per put: five in all, and the fifth release deletes.
    for _ in 0..4 {
        assert!(!store.release(&key, None).await.unwrap());
    }
    assert!(store.release(&key, None).await.unwrap());
}

/// A body that arrives in one part.
struct Whole(Option<bytes::Bytes>);

#[async_trait::async_trait]
impl byref_core::Incoming for Whole {
    async fn next_part(&mut self) -> Result<Option<bytes::Bytes>, String> {
        Ok(self.0.take())
    }
}

#[tokio::test]
async fn writes_to_a_mapped_object_stay_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let payload = byref_core::Payload::frame(
        byref_core::Encoding::Raw,
        bytes::Bytes::new(),
        vec![bytes::Bytes::from(vec![1u8; 1 << 20])],
    );
    let key = store
        .put_payload(&payload, &PutOptions::new())
        .await
        .unwrap();
    let Object::Mapped(mut map) = store.get(&key).await.unwrap() else {
        panic!("a 1 MiB object should be mapped");
    };
    map[1000] = 42;
    store
        .get_verified(&key, true)
        .await
        .expect("stored object unchanged");
}

#[test]
fn unknown_options_and_hosts_are_rejected() {
    for url in [
        "file:///tmp/x?fsyncc=true",
        "file://otherhost/tmp/x",
        "file:///tmp/x?fsync=2",
    ] {
        let err = StoreUrl::parse(url).and_then(FileStore::open).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}?fsync=true", dir.path().display());
    let store = FileStore::open(StoreUrl::parse(&url).unwrap()).unwrap();
    assert_eq!(store.url(), url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_reports_its_progress_to_the_last_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let payload = byref_core::Payload::frame(
        byref_core::Encoding::Raw,
        bytes::Bytes::new(),
        vec![bytes::Bytes::from(vec![1u8; 20 << 20])],
    );
    let progress = byref_core::Progress::default();
    let options = PutOptions {
        progress: Some(progress.clone()),
        ..PutOptions::new()
    };
    store.put_payload(&payload, &options).await.unwrap();
    assert_eq!(progress.done(), payload.len());
}

/// On shared scratch, other users must read nothing: every file byref makes is 0600 and every
/// directory 0700 (a umask can only narrow that).
#[tokio::test]
async fn everything_the_store_creates_is_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store =
        FileStore::open(StoreUrl::parse(&format!("file://{}", root.display())).unwrap()).unwrap();
    let payload = byref_core::Payload::frame(
        byref_core::Encoding::Raw,
        bytes::Bytes::new(),
        vec![bytes::Bytes::from(vec![1u8; 3 << 20])],
    );
    store
        .put_payload(&payload, &PutOptions::new())
        .await
        .unwrap();
    let mut seen = 0;
    let mut pending = vec![root];
    while let Some(path) = pending.pop() {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 5, "root, objects, its shard, the object, tmp");
}

/// One value handed to many tasks: a reference each, all names of one file, up to the
/// filesystem's limit (65,000 on ext4), past which the next reference starts a second file
/// that the rest share. Every put finds a name of the key at once (the listing stops at the
/// first), and every release is counted: the last deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_more_references_than_a_file_can_have_names() {
    use std::os::unix::fs::MetadataExt;

    const PUTS: usize = 65_100;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let payload = byref_core::Payload::from_parts(vec![bytes::Bytes::from_static(b"broadcast")]);
    let started = std::time::Instant::now();
    let references: Vec<_> = (0..PUTS).map(|_| byref_core::RefId::random()).collect();
    let key = payload.key();
    for reference in &references {
        let options = PutOptions {
            reference: *reference,
            ..PutOptions::new()
        };
        store.put(&key, &payload, &options).await.unwrap();
    }
    let hex = key.to_hex();
    // Names per file, and each file's link count: the same, a reference per name.
    let mut files = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir.path().join("objects").join(&hex[..3])).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        files.entry(meta.ino()).or_insert((0u64, meta.nlink())).0 += 1;
    }
    assert!(files.values().all(|(names, links)| names == links));
    assert_eq!(files.values().map(|f| f.0).sum::<u64>(), PUTS as u64);
    // At the limit, the next reference starts one more file, which the rest then share.
    assert!(files.len() <= 2, "{} files", files.len());
    eprintln!(
        "{PUTS} puts of one value in {:?}: {} file(s)",
        started.elapsed(),
        files.len()
    );
    // Each task releases its own reference, as an evict=True handle does.
    let (last, others) = references.split_last().unwrap();
    for reference in others {
        assert!(!store.release(&key, Some(reference)).await.unwrap());
    }
    assert!(store.release(&key, Some(last)).await.unwrap());
    assert_eq!(store.head(&key).await.unwrap(), None);
}
