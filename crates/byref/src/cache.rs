//! A cache of fetched objects, bounded in bytes, least recently used out first.
//!
//! Keys are content addresses, so one cache can serve every store: equal keys are equal bytes.
//!
//! An object is admitted on its second fetch, not its first. Most objects (a task's argument)
//! are fetched once per process; caching them would only cost memory, and the bytes a cached
//! object shares with the cache must be copied before Python may write to them. Objects that
//! come back (a model every task reads) pay one more fetch, then come from the cache.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::Key;

/// Default bound of [`process_cache`]; `BYREF_CACHE_BYTES` overrides it (0 disables it).
const DEFAULT_CAPACITY: usize = 256 << 20;

/// This process's cache, which [`crate::Opened::fetch`] uses. Only fetched bytes are cached:
/// a file store's private mappings cost no copy to fetch again, and each fetch must get its
/// own writable mapping.
pub fn process_cache() -> &'static ObjectCache {
    static CACHE: OnceLock<ObjectCache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let capacity = std::env::var("BYREF_CACHE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_CAPACITY);
        ObjectCache::new(capacity)
    })
}

#[derive(Debug, Default)]
struct Lru {
    /// Most bytes held at once.
    capacity: usize,
    /// Bytes held now.
    used: usize,
    /// Each object and the tick of its last use.
    entries: HashMap<Key, (Bytes, u64)>,
    /// Last-use tick to key, oldest first.
    order: BTreeMap<u64, Key>,
    /// Advances on every use.
    tick: u64,
    /// Keys fetched once and not cached, for admission on the next fetch; at most `SEEN`.
    seen: HashSet<Key>,
    /// `seen`, oldest first, to forget the oldest when full.
    seen_order: VecDeque<Key>,
}

/// How many once-fetched keys are remembered for admission.
const SEEN: usize = 4096;

impl Lru {
    fn touch(&mut self, key: &Key) -> Option<Bytes> {
        self.tick += 1;
        let (data, last) = self.entries.get_mut(key)?;
        self.order.remove(last);
        *last = self.tick;
        self.order.insert(self.tick, *key);
        Some(data.clone())
    }

    /// Whether `key` was offered before (and so should be cached); remembers it if not.
    fn seen_before(&mut self, key: &Key) -> bool {
        if self.seen.remove(key) {
            self.seen_order.retain(|k| k != key);
            return true;
        }
        if self.seen_order.len() == SEEN
            && let Some(oldest) = self.seen_order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(*key);
        self.seen_order.push_back(*key);
        false
    }

    fn insert(&mut self, key: Key, data: Bytes) {
        // One object may not push out most of the cache; a cache of 0 bytes holds nothing,
        // not even empty objects.
        if self.capacity == 0 || data.len() > self.capacity / 2 || self.touch(&key).is_some() {
            return;
        }
        while self.used + data.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.used -= gone.len();
            }
        }
        self.used += data.len();
        self.order.insert(self.tick, key);
        self.entries.insert(key, (data, self.tick));
    }
}

/// A thread-safe [`Lru`] of objects by key.
#[derive(Debug)]
pub struct ObjectCache(Mutex<Lru>);

impl ObjectCache {
    /// A cache holding at most `capacity` bytes (0 caches nothing).
    pub fn new(capacity: usize) -> Self {
        ObjectCache(Mutex::new(Lru {
            capacity,
            ..Lru::default()
        }))
    }

    /// The cached bytes of `key`, if any.
    pub fn get(&self, key: &Key) -> Option<Bytes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).touch(key)
    }

    /// Offers `data`, just fetched, as the bytes of `key`: cached if `key` was offered before
    /// (see the module's comment). Returns whether it was cached.
    pub fn offer(&self, key: Key, data: &Bytes) -> bool {
        let mut lru = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !lru.seen_before(&key) {
            return false;
        }
        lru.insert(key, data.clone());
        true
    }

    /// Removes `key`, so this process sees a deleted object as gone.
    pub fn remove(&self, key: &Key) {
        let mut lru = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((data, last)) = lru.entries.remove(key) {
            lru.order.remove(&last);
            lru.used -= data.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let mut lru = Lru {
            capacity: 100,
            ..Lru::default()
        };
        let keys: Vec<Key> = (0..4u8).map(|i| Key::of(&[i])).collect();
        lru.insert(keys[0], Bytes::from(vec![0; 40]));
        lru.insert(keys[1], Bytes::from(vec![1; 40]));
        assert!(lru.touch(&keys[0]).is_some());
        lru.insert(keys[2], Bytes::from(vec![2; 40]));
        assert!(
            lru.touch(&keys[1]).is_none(),
            "least recently used should go first"
        );
        assert!(lru.touch(&keys[0]).is_some() && lru.touch(&keys[2]).is_some());
        assert_eq!(lru.used, 80);
        lru.insert(keys[3], Bytes::from(vec![3; 60]));
        assert!(
            lru.touch(&keys[3]).is_none(),
            "over half the capacity is not cached"
        );
    }

    #[test]
    fn objects_are_admitted_on_their_second_fetch() {
        let cache = ObjectCache::new(100);
        let key = Key::of(b"k");
        let data = Bytes::from(vec![0; 30]);
        assert!(!cache.offer(key, &data), "a first fetch is not cached");
        assert!(cache.get(&key).is_none());
        assert!(cache.offer(key, &data), "a second fetch is");
        assert_eq!(cache.get(&key), Some(data));
    }

    #[test]
    fn once_fetched_keys_are_remembered_boundedly() {
        let cache = ObjectCache::new(100);
        let data = Bytes::from(vec![0; 1]);
        let first = Key::of(b"first");
        assert!(!cache.offer(first, &data));
        for i in 0..SEEN as u32 {
            assert!(!cache.offer(Key::of(&i.to_le_bytes()), &data));
        }
        let lru = cache.0.lock().unwrap();
        assert_eq!(lru.seen.len(), SEEN);
        assert!(!lru.seen.contains(&first), "the oldest is forgotten");
    }

    #[test]
    fn a_disabled_cache_holds_not_even_empty_objects() {
        let cache = ObjectCache::new(0);
        let key = Key::of(b"");
        for _ in 0..3 {
            cache.offer(key, &Bytes::new());
        }
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn removed_keys_free_their_bytes() {
        let cache = ObjectCache::new(100);
        let key = Key::of(b"k");
        let data = Bytes::from(vec![0; 30]);
        cache.offer(key, &data);
        cache.offer(key, &data);
        cache.remove(&key);
        assert!(cache.get(&key).is_none());
        assert_eq!(cache.0.lock().unwrap().used, 0);
    }
}
