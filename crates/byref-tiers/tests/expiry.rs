//! TTLs in both tiers, swept by [`TieredStore::expire`] directly (the daemon's tests cover
//! the sweep it runs every 200 ms): what is due goes with all its references, the rest
//! stays, and the times outlive a restart.

use std::path::Path;
use std::time::Duration;

use byref_core::{Key, Payload, PutOptions, Store, Usage};
use byref_tiers::TieredStore;
use bytes::Bytes;

/// A memory tier of 1 MiB: 2 MiB objects go to disk.
fn open(dir: &Path) -> TieredStore {
    TieredStore::open("ttl test", dir, 1 << 20, u64::MAX).unwrap()
}

fn with_ttl(ms: u64) -> PutOptions {
    PutOptions {
        ttl: Some(Duration::from_millis(ms)),
        ..PutOptions::new()
    }
}

async fn put(store: &TieredStore, data: &[u8], options: &PutOptions) -> Key {
    let key = Key::of(data);
    let payload = Payload::from_parts(vec![Bytes::copy_from_slice(data)]);
    store.put(&key, &payload, options).await.unwrap();
    key
}

async fn held(store: &TieredStore, key: &Key) -> bool {
    store.head(key).await.unwrap().is_some()
}

/// Files left in the disk tier's expiry directory.
fn expiry_files(dir: &Path) -> usize {
    dir.join("expiry").read_dir().unwrap().count()
}

/// Long enough that no machine, however loaded, reaches it during a test.
const NEVER_DUE_MS: u64 = 60_000;

/// Short TTLs are asserted only as passed (after a sleep longer than they are), never as not yet
/// passed: a slow machine may take longer than they last to make its puts. What must stay is
/// given a TTL no test run reaches.
#[tokio::test]
async fn due_objects_go_from_both_tiers_with_all_their_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let big = vec![1u8; 2 << 20];
    let in_memory = put(&store, b"short", &with_ttl(50)).await;
    put(&store, b"short", &with_ttl(50)).await; // a second reference, due as well
    let on_disk = put(&store, &big, &with_ttl(50)).await;
    put(&store, &big, &with_ttl(50)).await;
    // A second put asking for no TTL, or a later one, keeps the object.
    let unbounded = put(&store, b"then kept", &with_ttl(50)).await;
    put(&store, b"then kept", &PutOptions::new()).await;
    let later = put(&store, &vec![2u8; 2 << 20], &with_ttl(50)).await;
    put(&store, &vec![2u8; 2 << 20], &with_ttl(NEVER_DUE_MS)).await;
    let not_due = put(&store, &vec![3u8; 2 << 20], &with_ttl(NEVER_DUE_MS)).await;
    assert_eq!(
        expiry_files(dir.path()),
        3,
        "one file per disk object with a TTL"
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    store.expire().await.unwrap();

    assert!(!held(&store, &in_memory).await);
    assert!(!held(&store, &on_disk).await);
    assert!(held(&store, &unbounded).await);
    assert!(held(&store, &later).await);
    assert!(held(&store, &not_due).await);
    let (memory, disk) = store.usage();
    assert_eq!(
        memory,
        Usage {
            objects: 1,
            bytes: 9
        }
    );
    assert_eq!(
        disk,
        Usage {
            objects: 2,
            bytes: 4 << 20
        }
    );
    assert_eq!(
        expiry_files(dir.path()),
        2,
        "the due object's file went with it"
    );
}

#[tokio::test]
async fn ttls_outlive_a_restart_in_both_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let spilled = put(&store, &vec![3u8; 2 << 20], &with_ttl(300)).await;
    let flushed = put(&store, b"written by the flush", &with_ttl(300)).await;
    let not_due = put(&store, &vec![4u8; 2 << 20], &with_ttl(NEVER_DUE_MS)).await;
    let kept = put(&store, b"no TTL", &PutOptions::new()).await;
    store.flush().await.unwrap();
    drop(store);

    let store = open(dir.path());
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.expire().await.unwrap();
    assert!(
        !held(&store, &spilled).await,
        "its TTL was kept across the restart"
    );
    assert!(
        !held(&store, &flushed).await,
        "its TTL was written by the flush"
    );
    assert!(
        held(&store, &not_due).await,
        "read back as its time, not as due"
    );
    assert!(held(&store, &kept).await);
    assert_eq!(
        store.usage().1,
        Usage {
            objects: 2,
            bytes: (2 << 20) + 6
        }
    );
    assert_eq!(expiry_files(dir.path()), 1);
}

/// A released object's expiry file goes with it: left behind, it would give a later object
/// of equal data this one's expiry after a restart.
#[tokio::test]
async fn a_release_takes_the_expiry_with_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = vec![4u8; 2 << 20];
    let key = put(&store, &data, &with_ttl(100)).await;
    assert_eq!(expiry_files(dir.path()), 1);
    assert!(store.release(&key, None).await.unwrap());
    assert_eq!(expiry_files(dir.path()), 0);
    put(&store, &data, &PutOptions::new()).await;
    drop(store);

    let store = open(dir.path());
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.expire().await.unwrap();
    assert!(held(&store, &key).await, "the second object has no TTL");
}
