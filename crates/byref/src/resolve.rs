//! The one way a handle becomes bytes: the store opened for it, then [`Opened::fetch`]
//! (same-host mapping, node cache, process cache, fetch; each checked as it says), then the
//! release of an `evict=True` handle's reference. Bindings call this and decide nothing.

use crate::{Error, Handle, Key, Object, Opened, RefId, Result, Store, StoreExt, cache};
#[cfg(feature = "fs")]
use crate::{is_local, node};

/// Releases one reference to `key` ([`Store::release`]): the one way byref releases, so that an
/// object deleted is gone from this process's cache too, whoever released it (a resolve of
/// an `evict=True` handle, an explicit evict, a holder's release).
pub async fn release(store: &dyn Store, key: &Key, reference: Option<&RefId>) -> Result<bool> {
    let deleted = store.release(key, reference).await?;
    if deleted {
        cache::process_cache().remove(key);
    }
    Ok(deleted)
}

/// The object `handle` names, from `opened` (the store [`crate::open_for_handle`] opened for
/// it, or the caller's own open of the same URL), checked against the handle's length; the
/// handle's reference released if it was made with `evict=True`.
pub async fn resolve(opened: &Opened, handle: &Handle) -> Result<Object> {
    let key = &handle.key;
    let object = opened
        .fetch(key, Some(handle.len), handle.evict.as_ref())
        .await?;
    if let Some(reference) = &handle.evict {
        match release(opened.store.as_ref(), key, Some(reference)).await {
            Ok(_) => {}
            // A reference the object does not hold: released already (a second resolve
            // while others still hold the object), or forged in the handle. The value was
            // fetched and checked; nothing else is released, and it is returned.
            Err(Error::ReferenceGone { .. } | Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(object)
}

impl Opened {
    /// The object `key`, from this process's cache when it holds it (see [`cache`]), checked
    /// against its key if the store says so, and against its `expected` length when the
    /// caller knows it (from a handle). Only verified bytes enter the cache, so what it hands
    /// any store, `verify=true` or not, hashes to its key.
    ///
    /// Objects of network stores go through the node cache instead when one is configured
    /// (`BYREF_NODE_CACHE`): one fetch per machine, one copy mapped by every process. Before
    /// either, a server on this host that keeps the object in a file has it mapped from there
    /// ([`StoreExt::map_local`]): no transfer at all.
    ///
    /// `held` is a reference the caller holds (an `evict=True` handle's), which spares a
    /// file store the lookup of the key.
    pub async fn fetch(
        &self,
        key: &Key,
        expected: Option<u64>,
        held: Option<&RefId>,
    ) -> Result<Object> {
        if let Some(len) = expected
            && let Some(object) = self.store.map_local(key, len).await?
        {
            return Ok(object);
        }
        #[cfg(feature = "fs")]
        if !is_local(self.url.split("://").next().unwrap_or_default())
            && let Some(node) = node::node_cache()
        {
            return node::get_once_per_node(self, node, key, expected).await;
        }
        let cache = cache::process_cache();
        if let Some(data) = cache.get(key) {
            return Ok(Object::Shared(data));
        }
        let object = self
            .store
            .get_checked(key, expected, self.verify, held)
            .await?;
        if let Object::Shared(data) = &object
            && self.verify
        {
            cache.offer(*key, data);
        }
        Ok(object)
    }
}
