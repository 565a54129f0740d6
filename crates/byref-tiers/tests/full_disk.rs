//! A disk that fills up during the shutdown flush: on a real, tiny tmpfs (mounting it needs
//! root; elsewhere the test says why it skipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use byref_core::{Key, Payload, PutOptions, Store};
use byref_tiers::TieredStore;
use bytes::Bytes;

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mounted> {
    std::fs::create_dir_all(at).ok()?;
    let done = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .ok()?;
    done.success().then(|| Mounted(at.to_owned()))
}

async fn put(store: &TieredStore, data: Vec<u8>) -> Key {
    let key = Key::of(&data);
    let payload = Payload::from_parts(vec![Bytes::from(data)]);
    store.put(&key, &payload, &PutOptions::new()).await.unwrap();
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_onto_a_full_disk_keeps_every_object_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("small-disk");
    let Some(_mounted) = mount_tmpfs(&root, "1m") else {
        byref_testing::skipped(
            "full_disk",
            "cannot mount a 1 MiB tmpfs here (needs root and mount rights)",
        );
        return;
    };
    let store = TieredStore::open("flush test", &root, u64::MAX, u64::MAX).unwrap();
    let mut small = Vec::new();
    for i in 0..20u8 {
        small.push(put(&store, vec![i; 10_000]).await);
    }
    let big = put(&store, vec![255; 2 << 20]).await;

    let err = store.flush().await.unwrap_err();
    assert!(err.to_string().contains("1 of 21 objects"), "{err}");
    let (memory, _) = store.usage();
    assert_eq!(
        (memory.objects, memory.bytes),
        (1, 2 << 20),
        "the big one stays in memory"
    );
    drop(store);

    let reopened = TieredStore::open("flush test", &root, 0, u64::MAX).unwrap();
    for key in &small {
        assert!(
            reopened.head(key).await.unwrap().is_some(),
            "{key} was lost"
        );
    }
    assert_eq!(reopened.head(&big).await.unwrap(), None);
    // The failed write left no name (a reference) behind to keep a later copy for ever.
    let hex = big.to_hex();
    let names = std::fs::read_dir(root.join("objects").join(&hex[..3]))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&hex))
        .count();
    assert_eq!(names, 0);
}
