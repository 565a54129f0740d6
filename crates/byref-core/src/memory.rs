//! `memory://[name]`: an in-process store, for tests and for single-process pipelines.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::key::BuildDigestHasher;
use crate::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, PutOptions,
    RefId, RefSet, Result, Store, StoreUrl, UrlBuilder, refuse_ttl,
};

/// URL scheme of [`MemoryStore`].
pub const SCHEME: &str = "memory";

#[derive(Debug)]
struct Entry {
    /// One contiguous buffer of its own: the caller's may change after `put` returns.
    data: Bytes,
    /// Live references; the entry goes when the last one is released.
    refs: RefSet,
}

/// Objects in this process's memory. Other processes opening the same URL see their own,
/// empty store.
#[derive(Debug)]
pub struct MemoryStore {
    /// Canonical URL, for handles and error messages.
    url: String,
    /// A std mutex: every critical section is a map lookup, never an await. Keys are
    /// hashed as they are: only this process's puts choose them.
    objects: Mutex<HashMap<Key, Entry, BuildDigestHasher>>,
}

impl MemoryStore {
    /// Opens `memory://` or `memory://name`.
    pub fn open(url: StoreUrl) -> Result<Self> {
        url.refuse_credentials("a memory store has no credentials")?;
        let name = url.url().host_str().unwrap_or("").to_owned();
        if !url.url().path().is_empty() && url.url().path() != "/" {
            return Err(Error::Config(format!(
                "memory:// URLs take a name only: {}",
                url.url()
            )));
        }
        url.finish()?;
        Ok(MemoryStore {
            url: UrlBuilder::new(SCHEME, &name).build(),
            objects: Mutex::default(),
        })
    }

    fn not_found(&self, key: &Key) -> Error {
        Error::NotFound {
            store: self.url.clone(),
            key: *key,
        }
    }

    fn data(&self, key: &Key) -> Result<Bytes> {
        let objects = self.objects.lock().expect("memory store lock poisoned");
        objects
            .get(key)
            .map(|e| e.data.clone())
            .ok_or_else(|| self.not_found(key))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            in_memory: true,
            ..Capabilities::default()
        }
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        refuse_ttl(&self.url, options, "ttl")?;
        let mut objects = self.objects.lock().expect("memory store lock poisoned");
        let entry = objects.entry(*key).or_insert_with(|| Entry {
            data: payload.to_owned_bytes(),
            refs: RefSet::default(),
        });
        entry.refs.add(options.reference);
        Ok(())
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        if options.delivery == Delivery::LocalMapping {
            return Ok(Fetched::NotLocal);
        }
        options.whole(&self.url, key, Object::Shared(self.data(key)?))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        let objects = self.objects.lock().expect("memory store lock poisoned");
        Ok(objects.get(key).map(|e| e.data.len() as u64))
    }

    async fn list(&self) -> Result<Vec<Listed>> {
        let objects = self.objects.lock().expect("memory store lock poisoned");
        Ok(objects
            .iter()
            .map(|(key, entry)| Listed {
                key: *key,
                len: entry.data.len() as u64,
                references: entry.refs.iter().copied().collect(),
                head: crate::head_of(&entry.data),
            })
            .collect())
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let mut objects = self.objects.lock().expect("memory store lock poisoned");
        let entry = objects.get_mut(key).ok_or_else(|| self.not_found(key))?;
        let last = entry.refs.release(reference, &self.url, key)?;
        if last {
            objects.remove(key);
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_store_conforms() {
        let store = MemoryStore::open(StoreUrl::parse("memory://conformance").unwrap()).unwrap();
        crate::conformance::run_all(Arc::new(store)).await;
    }
}
