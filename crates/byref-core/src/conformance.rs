//! One behavioural suite that every backend runs against a real instance of itself
//! (modelled on `object_store`'s `integration.rs`).
//!
//! A backend's test opens a fresh, empty store and calls [`run_all`]; each case panics with
//! a message naming what the backend got wrong.

use std::sync::Arc;

use bytes::Bytes;

use crate::incoming::Incoming;
use crate::{
    Delivery, Encoding, Error, Fetched, GetOptions, HolderTag, Key, Layout, Object, Payload,
    PutOptions, RefId, Store, StoreExt,
};

fn payload(seed: u8, len: usize) -> Payload {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    Payload::frame(Encoding::Raw, Bytes::new(), vec![Bytes::from(data)])
}

fn concat(p: &Payload) -> Vec<u8> {
    p.parts().concat()
}

/// A read of an object the caller knows to be `len` bytes long, whole.
async fn get_expecting(store: &dyn Store, key: &Key, len: u64) -> crate::Result<Object> {
    let fetched = store.get_opts(key, &GetOptions::expecting(len)).await?;
    fetched.into_object(store.url()).await
}

/// A read of an object the caller knows to be `len` bytes long, part by part.
async fn get_parts<'a>(
    store: &'a dyn Store,
    key: &Key,
    len: u64,
) -> crate::Result<(u64, Box<dyn Incoming + 'a>)> {
    let options = GetOptions::expecting(len).delivered(Delivery::Parts);
    let fetched = store.get_opts(key, &options).await?;
    Ok(fetched
        .into_body()
        .expect("a streamed get is never `NotLocal`"))
}

/// Runs every case, one after another, on `store` (which must start empty).
pub async fn run_all(store: Arc<dyn Store>) {
    round_trip_at_many_sizes(store.as_ref()).await;
    missing_keys_are_not_found(store.as_ref()).await;
    ranges_read_slices_and_reject_overruns(store.as_ref()).await;
    equal_data_is_stored_once_and_released_by_count(store.as_ref()).await;
    a_reference_releases_only_once(store.as_ref()).await;
    ttl_is_honoured_or_refused(store.as_ref()).await;
    a_length_other_than_expected_is_an_integrity_error(store.as_ref()).await;
    concurrent_puts_and_releases_keep_a_held_object(store.clone()).await;
    incoming_bodies_are_stored_only_whole_and_genuine(store.as_ref()).await;
    concurrent_releases_of_any_reference_each_take_one(store.clone()).await;
    streamed_gets_deliver_the_object_in_order(store.as_ref()).await;
    every_read_option_is_honoured(store.as_ref()).await;
    listings_show_every_object_with_its_references(store.as_ref()).await;
}

/// Releases of "any reference" at once, as many as there are references: each takes a
/// different one, so the last of them deletes the object. Two that took the same reference
/// would leave another behind, holding the object for ever. (At least one release says it
/// deleted the object; a file store's two last releases, racing, may both say so.)
pub async fn concurrent_releases_of_any_reference_each_take_one(store: Arc<dyn Store>) {
    const N: usize = 12;
    let p = payload(13, 1000);
    let mut key = None;
    for _ in 0..N {
        key = Some(
            store
                .put_payload(&p, &PutOptions::new())
                .await
                .expect("put"),
        );
    }
    let key = key.expect("put N times");
    let releases: Vec<_> = (0..N)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.release(&key, None).await })
        })
        .collect();
    let mut deleted = 0;
    for release in releases {
        match release.await.expect("task") {
            Ok(true) => deleted += 1,
            Ok(false) => {}
            Err(e) => panic!("a release of one of {N} references failed: {e}"),
        }
    }
    assert!(
        deleted >= 1,
        "{N} releases of {N} references: none said it deleted the object"
    );
    assert_eq!(
        store.head(&key).await.expect("head"),
        None,
        "references left behind"
    );
}

/// A body delivered in parts of `step` bytes, cut off after `stop_at` bytes if given.
struct Arriving {
    data: Bytes,
    at: usize,
    step: usize,
    stop_at: Option<usize>,
}

#[async_trait::async_trait]
impl Incoming for Arriving {
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
        let end = self.stop_at.unwrap_or(self.data.len());
        if self.at >= end {
            return match self.stop_at {
                Some(_) => Err(format!("cut off after {} bytes", self.at)),
                None => Ok(None),
            };
        }
        let next = (self.at + self.step).min(end);
        let part = self.data.slice(self.at..next);
        self.at = next;
        Ok(Some(part))
    }
}

/// A streamed put (a server's `PUT`): stored when whole and hashing to its key; a body cut
/// short or forged stores nothing, and a later genuine put still works.
pub async fn incoming_bodies_are_stored_only_whole_and_genuine(store: &dyn Store) {
    let data = Bytes::from(concat(&payload(11, (9 << 20) + 5)));
    let key = Key::of(&data);
    let len = data.len() as u64;
    let arriving = |stop_at| Arriving {
        data: data.clone(),
        at: 0,
        step: 100_003,
        stop_at,
    };
    let options = PutOptions::new();
    let cut = store
        .put_incoming(&key, len, &mut arriving(Some(5 << 20)), &options)
        .await;
    assert!(cut.is_err(), "a body cut short was stored");
    assert_eq!(store.head(&key).await.expect("head"), None, "cut short");

    let forged = store
        .put_incoming(
            &Key::of(b"another object"),
            len,
            &mut arriving(None),
            &options,
        )
        .await
        .expect_err("a body that does not hash to its key");
    assert!(matches!(forged, Error::Integrity { .. }), "{forged}");
    assert_eq!(
        store.head(&Key::of(b"another object")).await.expect("head"),
        None
    );

    store
        .put_incoming(&key, len, &mut arriving(None), &options)
        .await
        .expect("a whole, genuine body");
    let back = get_expecting(store, &key, len).await.expect("get");
    assert!(back.as_slice() == &data[..], "stored bytes differ");
    let deleted = store
        .release(&key, Some(&options.reference))
        .await
        .expect("release the streamed put's reference");
    assert!(deleted);
}

/// A handle's length is checked: a store holding another length fails the read clearly.
pub async fn a_length_other_than_expected_is_an_integrity_error(store: &dyn Store) {
    let p = payload(7, 3 << 20);
    let key = store
        .put_payload(&p, &PutOptions::new())
        .await
        .expect("put");
    let got = get_expecting(store, &key, p.len())
        .await
        .expect("get of the right length");
    assert_eq!(got.len() as u64, p.len());
    for wrong in [0, p.len() - 1, p.len() + 1, u64::MAX] {
        let err = get_expecting(store, &key, wrong)
            .await
            .expect_err("a wrong length");
        assert!(matches!(err, Error::Integrity { .. }), "{wrong}: {err}");
    }
    store.release(&key, None).await.expect("release");
}

/// A streamed get (what the node cache reads) delivers exactly the object, part by part, and
/// refuses a wrong length before the first part; large objects come in several parts where
/// the store splits them.
pub async fn streamed_gets_deliver_the_object_in_order(store: &dyn Store) {
    for len in [0, 5000, (9 << 20) + 7] {
        let p = payload(17, len);
        let key = store
            .put_payload(&p, &PutOptions::new())
            .await
            .expect("put");
        let (announced, mut body) = get_parts(store, &key, p.len()).await.expect("streamed get");
        assert_eq!(announced, p.len());
        let got = crate::incoming::collect(body.as_mut(), p.len())
            .await
            .expect("the whole body");
        assert_eq!(Key::of(&got), key, "{len} bytes");
        drop(body);
        for wrong in [p.len() + 1, u64::MAX] {
            let err = get_parts(store, &key, wrong)
                .await
                .err()
                .expect("a wrong length");
            assert!(matches!(err, Error::Integrity { .. }), "{wrong}: {err}");
        }
        store.release(&key, None).await.expect("release");
    }
    let missing = get_parts(store, &payload(18, 10).key(), 10).await.err();
    assert!(
        matches!(missing, Some(Error::NotFound { .. })),
        "{missing:?}"
    );
}

/// The options of the one read call, each and together: a held reference reads the object
/// (and so does one released already, by key), a range is checked against the expected
/// length expected, and a local mapping is either the object or `NotLocal`, never other bytes.
pub async fn every_read_option_is_honoured(store: &dyn Store) {
    let p = payload(19, (2 << 20) + 3);
    let (bytes, len) = (concat(&p), p.len());
    let (a, b) = (PutOptions::new(), PutOptions::new());
    let key = store.put_payload(&p, &a).await.expect("put a");
    store.put_payload(&p, &b).await.expect("put b");
    for held in [a.reference, b.reference] {
        let got = store
            .get_checked(&key, Some(len), true, Some(&held))
            .await
            .expect("a read through a held reference");
        assert!(got.as_slice() == &bytes[..], "read through {held} differs");
        let wrong = store
            .get_checked(&key, Some(len + 1), false, Some(&held))
            .await
            .expect_err("a wrong length through a held reference");
        assert!(matches!(wrong, Error::Integrity { .. }), "{wrong}");
    }
    assert!(
        !store
            .release(&key, Some(&a.reference))
            .await
            .expect("release a")
    );
    let by_key = store
        .get_checked(&key, Some(len), true, Some(&a.reference))
        .await
        .expect("a reference released already reads by key");
    assert!(by_key.as_slice() == &bytes[..]);

    let range = GetOptions {
        range: Some(1000..1064),
        ..GetOptions::expecting(len)
    };
    let got = store.get_opts(&key, &range).await.expect("range");
    let got = got.into_object(store.url()).await.expect("range bytes");
    assert_eq!(got.as_slice(), &bytes[1000..1064]);
    // A length that the range overruns: refused by every store (one that learns the whole
    // length refuses any other; a QUIC client, told only the range's, checks the range).
    let short = GetOptions {
        expected_len: Some(1000),
        ..range
    };
    let refused = store.get_opts(&key, &short).await;
    assert!(
        refused.is_err(),
        "a range past the length expected: {refused:?}"
    );

    let local = GetOptions::expecting(len).delivered(Delivery::LocalMapping);
    match store.get_opts(&key, &local).await.expect("a local mapping") {
        Fetched::NotLocal => {}
        Fetched::Whole(object) => assert!(object.as_slice() == &bytes[..], "mapped bytes differ"),
        other => panic!("a local mapping delivered {other:?}"),
    }
    assert!(
        store
            .release(&key, Some(&b.reference))
            .await
            .expect("release b")
    );
}

/// Objects of every size come back byte for byte, and verify against their key.
pub async fn round_trip_at_many_sizes(store: &dyn Store) {
    for len in [0, 1, 63, 64, 65, 4096, 1 << 20, (4 << 20) + 3] {
        let p = payload(1, len);
        let key = store
            .put_payload(&p, &PutOptions::new())
            .await
            .expect("put");
        let got = store.get_verified(&key, true).await.expect("get");
        assert_eq!(got.as_slice(), &concat(&p)[..], "{len}-byte object changed");
        assert_eq!(store.head(&key).await.expect("head"), Some(p.len()));
        let layout = Layout::parse(got.as_slice(), store.url(), &key).expect("frame parses");
        assert_eq!(layout.buffers[0].len(), len);
        if store.capabilities().private_mappings {
            assert!(
                matches!(got, Object::Mapped(_)) || len < 1 << 20,
                "large get not mapped"
            );
        }
        assert!(
            store.release(&key, None).await.expect("release"),
            "sole reference"
        );
        assert_eq!(store.head(&key).await.expect("head"), None);
    }
}

/// Absent keys give `NotFound`, never an empty object.
pub async fn missing_keys_are_not_found(store: &dyn Store) {
    let key = payload(2, 10).key();
    assert!(matches!(store.get(&key).await, Err(Error::NotFound { .. })));
    assert!(matches!(
        store.release(&key, None).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.head(&key).await.expect("head"), None);
    let err = store.get(&key).await.unwrap_err().to_string();
    assert!(
        err.contains(&key.to_string()),
        "error does not name the key: {err}"
    );
}

/// `get_range` returns exactly the requested slice.
pub async fn ranges_read_slices_and_reject_overruns(store: &dyn Store) {
    let p = payload(3, 100_000);
    let bytes = concat(&p);
    let key = store
        .put_payload(&p, &PutOptions::new())
        .await
        .expect("put");
    let len = p.len();
    for r in [0..len, 0..1, 1000..1064, len - 5..len, 7..7] {
        let got = store.get_range(&key, r.clone()).await.expect("range");
        assert_eq!(
            &got[..],
            &bytes[r.start as usize..r.end as usize],
            "range {r:?}"
        );
    }
    assert!(
        store.get_range(&key, len - 1..len + 1).await.is_err(),
        "overrun accepted"
    );
    store.release(&key, None).await.expect("release");
}

/// Two puts of equal data share one object that survives until both are released.
pub async fn equal_data_is_stored_once_and_released_by_count(store: &dyn Store) {
    let p = payload(4, 5000);
    let (a, b) = (PutOptions::new(), PutOptions::new());
    let key = store.put_payload(&p, &a).await.expect("put a");
    assert_eq!(
        store.put_payload(&p, &b).await.expect("put b"),
        key,
        "same data, same key"
    );
    assert!(
        !store
            .release(&key, Some(&a.reference))
            .await
            .expect("release a")
    );
    store
        .get_verified(&key, true)
        .await
        .expect("b's object survives a's release");
    assert!(
        store
            .release(&key, Some(&b.reference))
            .await
            .expect("release b")
    );
    assert!(matches!(store.get(&key).await, Err(Error::NotFound { .. })));
}

/// Releasing the same reference twice is an error and does not eat another reference.
pub async fn a_reference_releases_only_once(store: &dyn Store) {
    let p = payload(5, 300);
    let (a, b) = (PutOptions::new(), PutOptions::new());
    let key = store.put_payload(&p, &a).await.expect("put a");
    store.put_payload(&p, &b).await.expect("put b");
    assert!(
        !store
            .release(&key, Some(&a.reference))
            .await
            .expect("first release")
    );
    assert!(matches!(
        store.release(&key, Some(&a.reference)).await,
        Err(Error::ReferenceGone { .. })
    ));
    assert!(matches!(
        store.release(&key, Some(&RefId::random())).await,
        Err(Error::ReferenceGone { .. })
    ));
    store.get(&key).await.expect("b still holds the object");
    assert!(
        store
            .release(&key, Some(&b.reference))
            .await
            .expect("release b")
    );
}

/// A store without expiry refuses a TTL instead of silently keeping the object forever.
pub async fn ttl_is_honoured_or_refused(store: &dyn Store) {
    if store.capabilities().ttl {
        return; // Backends with expiry test it with their own clock control.
    }
    let options = PutOptions {
        ttl: Some(std::time::Duration::from_secs(5)),
        ..PutOptions::new()
    };
    let result = store.put_payload(&payload(6, 10), &options).await;
    assert!(
        matches!(result, Err(Error::NotSupported { .. })),
        "TTL silently ignored"
    );
}

/// Many tasks putting and releasing one key at once never lose an object that a reference
/// still holds, and leave nothing behind once every reference is gone.
pub async fn concurrent_puts_and_releases_keep_a_held_object(store: Arc<dyn Store>) {
    let p = Arc::new(payload(7, 2000));
    let keeper = PutOptions::new();
    let key = store.put_payload(&p, &keeper).await.expect("keeper put");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, p) = (store.clone(), p.clone());
        tasks.spawn(async move {
            for _ in 0..20 {
                let mine = PutOptions::new();
                store.put(&key, &p, &mine).await.expect("put");
                store
                    .get_verified(&key, true)
                    .await
                    .expect("object held by a reference");
                store
                    .release(&key, Some(&mine.reference))
                    .await
                    .expect("release");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task panicked");
    }
    store
        .get_verified(&key, true)
        .await
        .expect("keeper's object was deleted");
    assert!(
        store
            .release(&key, Some(&keeper.reference))
            .await
            .expect("last release")
    );
    assert_eq!(store.head(&key).await.expect("head"), None);
}

/// A listing shows each object once, with its length and exactly its live references (the
/// holder and time each names intact), and nothing released. Runs on a store emptied by the
/// cases before it.
pub async fn listings_show_every_object_with_its_references(store: &dyn Store) {
    let holder = HolderTag::random();
    let held = || PutOptions {
        reference: RefId::held_by(holder),
        ..PutOptions::new()
    };
    let (small, large) = (payload(40, 100), payload(41, 3 << 20));
    let (a, b, c, d) = (held(), held(), held(), PutOptions::new());
    let small_key = store.put_payload(&small, &a).await.expect("put a");
    store.put_payload(&small, &b).await.expect("put b");
    let large_key = store.put_payload(&large, &c).await.expect("put c");
    let gone = store
        .put_payload(&payload(42, 10), &d)
        .await
        .expect("put d");
    store.release(&gone, None).await.expect("release d");
    let mut listed = match store.list().await {
        Err(Error::NotSupported { .. }) => return,
        listed => listed.expect("list"),
    };
    listed.sort_by_key(|l| l.key);
    for l in &mut listed {
        l.references.sort_by_key(|r| *r.as_bytes());
        // What a backend says of an object's first bytes is what is there, or nothing.
        let first = store.get_range(&l.key, 0..8).await.expect("first bytes");
        assert!(l.head.is_none_or(|h| h[..] == first[..]), "{}", store.url());
        l.head = None;
    }
    let mut want = vec![
        crate::Listed {
            key: small_key,
            len: small.len(),
            references: vec![a.reference, b.reference],
            head: None,
        },
        crate::Listed {
            key: large_key,
            len: large.len(),
            references: vec![c.reference],
            head: None,
        },
    ];
    want.sort_by_key(|l| l.key);
    for l in &mut want {
        l.references.sort_by_key(|r| *r.as_bytes());
    }
    assert_eq!(listed, want, "the listing of {}", store.url());
    assert!(listed[0].references[0].holder() == holder);
    assert!(listed[0].references[0].created().is_some());
    for (key, reference) in [(small_key, a), (small_key, b), (large_key, c)] {
        store
            .release(&key, Some(&reference.reference))
            .await
            .expect("release");
    }
    assert_eq!(store.list().await.expect("list"), vec![], "all released");
}
