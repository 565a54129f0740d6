//! A cache of fetched objects, bounded in bytes, least recently used out first.
//!
//! Keys are content addresses, so one cache can serve every store: equal keys are equal bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;

use crate::Key;

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
}

impl Lru {
    fn touch(&mut self, key: &Key) -> Option<Bytes> {
        self.tick += 1;
        let (data, last) = self.entries.get_mut(key)?;
        self.order.remove(last);
        *last = self.tick;
        self.order.insert(self.tick, *key);
        Some(data.clone())
    }

    fn insert(&mut self, key: Key, data: Bytes) {
        // One object may not push out most of the cache.
        if data.len() > self.capacity / 2 || self.touch(&key).is_some() {
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

    /// Remembers `data` as the bytes of `key`.
    pub fn insert(&self, key: Key, data: Bytes) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, data);
    }

    /// Forgets `key`, so this process sees an evicted object as gone.
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
    fn removed_keys_free_their_bytes() {
        let cache = ObjectCache::new(100);
        let key = Key::of(b"k");
        cache.insert(key, Bytes::from(vec![0; 30]));
        cache.remove(&key);
        assert!(cache.get(&key).is_none());
        assert_eq!(cache.0.lock().unwrap().used, 0);
    }
}
