//! Conveniences built on the required [`Store`] methods, the same for every backend.

use async_trait::async_trait;

use crate::{Error, Key, Object, Payload, PutOptions, RefId, Result, Store};

/// Verified reads and keyed puts for every [`Store`].
#[async_trait]
pub trait StoreExt: Store {
    /// Hashes `payload`, stores it, and returns its key.
    async fn put_payload(&self, payload: &Payload, options: &PutOptions) -> Result<Key> {
        let key = payload.key();
        self.put(&key, payload, options).await?;
        Ok(key)
    }

    /// Fetches the object and, with `verify`, checks that it hashes to `key`.
    async fn get_verified(&self, key: &Key, verify: bool) -> Result<Object> {
        self.get_checked(key, None, verify, None).await
    }

    /// Fetches the object, refusing one of another length than `expected` (when known, from
    /// a handle) and, with `verify`, one that does not hash to `key`; through the reference
    /// `held` when the caller holds one ([`Store::get_held`]).
    async fn get_checked(
        &self,
        key: &Key,
        expected: Option<u64>,
        verify: bool,
        held: Option<&RefId>,
    ) -> Result<Object> {
        let object = match (expected, held) {
            (Some(len), Some(reference)) => self.get_held(key, reference, len).await?,
            (Some(len), None) => self.get_expecting(key, len).await?,
            (None, _) => self.get(key).await?,
        };
        if verify {
            let actual = Key::of(object.as_slice());
            if actual != *key {
                return Err(Error::Integrity {
                    store: self.url().to_owned(),
                    key: *key,
                    reason: format!("the fetched bytes hash to {actual}"),
                });
            }
        }
        Ok(object)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
