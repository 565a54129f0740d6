//! One put or release of a key at a time: whether a put *made* an object (and its bytes count
//! against the disk tier) or only added a reference is then decided once, however many
//! clients put the same value at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use byref_core::Key;
use tokio::sync::OwnedMutexGuard;

/// A lock per key in use; a key's entry goes when its last holder or waiter does.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks(Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>);

/// Holds one key's lock until dropped.
pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    /// Waits for `key`'s lock.
    pub(crate) async fn lock(&self, key: &Key) -> KeyGuard<'_> {
        let lock = self.map().entry(*key).or_default().clone();
        KeyGuard {
            locks: self,
            key: *key,
            guard: Some(lock.lock_owned().await),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<tokio::sync::Mutex<()>>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.map();
        if let Some(guard) = self.guard.take() {
            // The map's and this guard's: no one else waits, and no one can start to while
            // the map is locked.
            if Arc::strong_count(OwnedMutexGuard::mutex(&guard)) == 2 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_locked_once_and_forgotten_when_free() {
        let locks = Arc::new(KeyLocks::default());
        let key = Key::of(b"k");
        let first = locks.lock(&key).await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move {
                let _second = locks.lock(&key).await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        assert_eq!(locks.len(), 0);
    }
}
