//! The tiered store on its own: the conformance suite in each tier, and how it counts room
//! while bodies arrive, when puts race, and when buffers are reused.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::incoming::Incoming;
use byref_core::{Error, Key, Payload, PutOptions, Store, StoreExt, Usage};
use byref_tiers::TieredStore;
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_store_conforms_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    for (name, memory_limit) in [("memory", u64::MAX), ("disk", 0)] {
        let store = TieredStore::open(name, &dir.path().join(name), memory_limit, u64::MAX);
        byref_core::conformance::run_all(Arc::new(store.unwrap())).await;
    }
}

/// A body that sends `sent` bytes, then waits for `cut` and breaks off.
struct Stalled {
    sent: Option<Bytes>,
    cut: Option<tokio::sync::oneshot::Receiver<()>>,
}

#[async_trait]
impl Incoming for Stalled {
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
        if let Some(part) = self.sent.take() {
            return Ok(Some(part));
        }
        let _ = self.cut.take().expect("asked once more").await;
        Err("the client went away".into())
    }
}

/// Eight clients put one 2 MiB value into the disk tier at once: one object of 2 MiB is
/// counted, nothing once every reference is released, and a 20 MiB tier still takes 18
/// MiB more (before: 8 objects, 7 left after the releases, and `StoreFull` at 6 MiB).
/// (With one put of a key at a time, the puts cannot all begin at once: each body gives up
/// waiting for the others after 100 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_one_value_count_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TieredStore::open("t", dir.path(), 0, 20 << 20).unwrap());
    let data = Bytes::from(vec![7u8; 2 << 20]);
    let key = Key::of(&data);
    let started = Arc::new(tokio::sync::Barrier::new(8));
    let puts: Vec<_> = (0..8)
        .map(|_| {
            let (store, data) = (store.clone(), data.clone());
            let started = started.clone();
            tokio::spawn(async move {
                let options = PutOptions::new();
                // As over a network: every put has begun before any body arrives.
                let mut body = AfterAll(started, Some(data.clone()));
                store
                    .put_incoming(&key, data.len() as u64, &mut body, &options)
                    .await
                    .map(|()| options.reference)
            })
        })
        // Spawned all before any is awaited.
        .collect();
    let mut references = Vec::new();
    for put in puts {
        references.push(put.await.unwrap().unwrap());
    }
    assert_eq!(
        store.usage().1,
        Usage {
            objects: 1,
            bytes: 2 << 20
        }
    );
    let big = Payload::from_parts(vec![Bytes::from(vec![8u8; 18 << 20])]);
    store
        .put(&Key::of(&vec![8u8; 18 << 20]), &big, &PutOptions::new())
        .await
        .expect("18 MiB more fit a 20 MiB tier holding 2 MiB");
    for reference in &references {
        store.release(&key, Some(reference)).await.unwrap();
    }
    assert_eq!(
        store.usage().1,
        Usage {
            objects: 1,
            bytes: 18 << 20
        }
    );
}

/// A body whose bytes come once all its barrier's puts have begun, or after 100 ms.
struct AfterAll(Arc<tokio::sync::Barrier>, Option<Bytes>);

#[async_trait]
impl Incoming for AfterAll {
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
        let part = self.1.take();
        if part.is_some() {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.0.wait()).await;
        }
        Ok(part)
    }
}

/// Room is taken when a body starts, not when it ends: a second put that would overfill
/// a tier is refused before its body while the first is still arriving, and the room of
/// a body that breaks off is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_reserve_room_before_their_bodies_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TieredStore::open("t", dir.path(), 1 << 20, 10 << 20).unwrap());
    let (cut, cut_rx) = tokio::sync::oneshot::channel();
    let first = tokio::spawn({
        let store = store.clone();
        async move {
            let mut body = Stalled {
                sent: Some(Bytes::from(vec![1u8; 1 << 20])),
                cut: Some(cut_rx),
            };
            let key = Key::of(b"six megabytes, announced");
            store
                .put_incoming(&key, 6 << 20, &mut body, &PutOptions::new())
                .await
        }
    });
    // The first body's room is on disk (it does not fit memory) while it arrives.
    while store.usage().1.bytes == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let data = vec![2u8; 5 << 20];
    let payload = Payload::from_parts(vec![Bytes::from(data.clone())]);
    let mut whole = Stalled {
        sent: Some(Bytes::from(data.clone())),
        cut: None,
    };
    let second = store
        .put_incoming(&Key::of(&data), 5 << 20, &mut whole, &PutOptions::new())
        .await;
    assert!(matches!(second, Err(Error::StoreFull { .. })), "{second:?}");
    assert!(
        whole.sent.is_some(),
        "refused before a byte of its body was read"
    );
    cut.send(()).unwrap();
    assert!(first.await.unwrap().is_err());
    assert_eq!(
        store.usage().1.bytes,
        0,
        "the broken body's room is given back"
    );
    assert_eq!(dir.path().join("tmp").read_dir().unwrap().count(), 0);
    store
        .put(&Key::of(&data), &payload, &PutOptions::new())
        .await
        .unwrap();
    assert_eq!(
        store.usage().1,
        Usage {
            objects: 1,
            bytes: 5 << 20
        }
    );
}

/// A released object's buffer takes the next put of its size, and that put's bytes are
/// its own: nothing of the first object shows through, the first is gone, and the spare
/// is not reported as stored.
#[tokio::test]
async fn a_released_objects_buffer_takes_the_next_put() {
    let dir = tempfile::tempdir().unwrap();
    let store = TieredStore::open("t", dir.path(), 64 << 20, u64::MAX).unwrap();
    let put = |data: Vec<u8>| {
        let store = &store;
        async move {
            let key = Key::of(&data);
            let len = data.len() as u64;
            let mut body = byref_core::incoming::Whole::new(Bytes::from(data));
            store
                .put_incoming(&key, len, &mut body, &PutOptions::new())
                .await
                .unwrap();
            key
        }
    };
    let first = put(vec![1u8; 4 << 20]).await;
    assert!(store.release(&first, None).await.unwrap());
    assert_eq!(store.spare_bytes(), 4 << 20, "kept");
    assert_eq!(
        store.usage().0,
        Usage {
            objects: 0,
            bytes: 0
        }
    );
    let second = put(vec![2u8; 4 << 20]).await;
    assert_eq!(store.spare_bytes(), 0, "taken");
    let got = store.get(&second).await.unwrap();
    assert!(got.as_slice().iter().all(|&b| b == 2));
    assert!(matches!(
        store.get(&first).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store.usage().0,
        Usage {
            objects: 1,
            bytes: 4 << 20
        }
    );
    // A spare is room like any other: a put that needs it gets it.
    drop(got);
    assert!(store.release(&second, None).await.unwrap());
    let big = put(vec![3u8; 62 << 20]).await;
    assert_eq!(
        store.usage().0,
        Usage {
            objects: 1,
            bytes: 62 << 20
        }
    );
    assert!(
        store
            .get(&big)
            .await
            .unwrap()
            .as_slice()
            .iter()
            .all(|&b| b == 3)
    );
}
