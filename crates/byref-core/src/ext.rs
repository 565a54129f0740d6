//! Conveniences built on the required [`Store`] methods, the same for every backend: each
//! read is one [`Store::get_opts`] call.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use crate::get::{Delivery, Fetched, GetOptions};
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

    /// The whole object.
    async fn get(&self, key: &Key) -> Result<Object> {
        self.get_opts(key, &GetOptions::default())
            .await?
            .into_object(self.url())
            .await
    }

    /// Bytes `range` of the object; a range past its end is an error.
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        let fetched = self.get_opts(key, &GetOptions::range(range)).await?;
        Ok(fetched.into_object(self.url()).await?.into_bytes())
    }

    /// The object, `len` bytes, mapped from a file on this machine where the store's server
    /// keeps it ([`Delivery::LocalMapping`]); `None` when that is not possible: then fetch it.
    async fn map_local(&self, key: &Key, len: u64) -> Result<Option<Object>> {
        let local = GetOptions::expecting(len).delivered(Delivery::LocalMapping);
        match self.get_opts(key, &local).await? {
            Fetched::Whole(object) => Ok(Some(object)),
            _ => Ok(None),
        }
    }

    /// Fetches the object and, with `verify`, checks that it hashes to `key`.
    async fn get_verified(&self, key: &Key, verify: bool) -> Result<Object> {
        self.get_checked(key, None, verify, None).await
    }

    /// Fetches the object, refusing one of another length than `expected` (when known, from
    /// a handle) and, with `verify`, one that does not hash to `key`; through the reference
    /// `held` when the caller holds one ([`GetOptions::held`]).
    async fn get_checked(
        &self,
        key: &Key,
        expected: Option<u64>,
        verify: bool,
        held: Option<&RefId>,
    ) -> Result<Object> {
        let options = GetOptions {
            expected_len: expected,
            held: held.copied(),
            ..Default::default()
        };
        let fetched: Fetched<'_> = self.get_opts(key, &options).await?;
        let object = fetched.into_object(self.url()).await?;
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
