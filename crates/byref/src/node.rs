//! Fetching through the node cache (`byref_fs::node_cache`): one fetch per machine for
//! objects of network stores, whatever the number of processes resolving them.
//!
//! On by default where `/dev/shm` exists; `BYREF_NODE_CACHE=off` turns it off.

use std::sync::{Once, OnceLock};

use byref_core::{Delivery, Error, GetOptions, Key, Object, Result, StoreExt};
use byref_fs::node_cache::{InsertError, NodeCache};

use crate::Opened;

/// This process's node cache, if one is configured and usable.
pub(crate) fn node_cache() -> Option<&'static NodeCache> {
    static NODE: OnceLock<Option<NodeCache>> = OnceLock::new();
    NODE.get_or_init(NodeCache::from_env).as_ref()
}

/// The object, from the node cache, or fetched once for the whole node: the first process
/// to ask streams it into the cache (verified against its key before it becomes visible)
/// while the others wait on its lock; all then map the one entry.
///
/// A cache that cannot take it (a full filesystem) costs a private fetch and a warning,
/// never an error. Bytes that fail the check on entry are fetched again, privately and
/// verified: a damaged transfer heals, a store that holds other bytes is an error.
pub(crate) async fn get_once_per_node(
    opened: &Opened,
    node: &'static NodeCache,
    key: &Key,
    expected: Option<u64>,
) -> Result<Object> {
    let privately = || opened.store.get_checked(key, expected, true, None);
    if let Some(object) = hit(node, key, expected) {
        return Ok(object);
    }
    let waited = {
        let key = *key;
        tokio::task::spawn_blocking(move || node.lock(&key)).await
    };
    let Ok(Ok(lock)) = waited else {
        return privately().await;
    };
    if let Some(object) = hit(node, key, expected) {
        return Ok(object);
    }
    let len = match expected {
        Some(len) => len,
        None => opened
            .store
            .head(key)
            .await?
            .ok_or_else(|| Error::NotFound {
                store: opened.url.clone(),
                key: *key,
            })?,
    };
    if !node.fits(len) {
        return privately().await;
    }
    if !node.has_room(len) {
        warn(node, "its filesystem is full");
        return privately().await;
    }
    let parts = GetOptions::expecting(len).delivered(Delivery::Parts);
    let fetched = opened.store.get_opts(key, &parts).await?;
    let Some((_, mut body)) = fetched.into_body() else {
        return privately().await;
    };
    let inserted = node.insert_incoming(&lock, len, body.as_mut()).await;
    drop(body);
    drop(lock);
    match inserted {
        // This process maps the node's one copy, like the others.
        Ok(()) => match node.get(key) {
            Some(object) => Ok(object),
            None => privately().await,
        },
        Err(InsertError::Body(e)) => Err(Error::backend(&opened.url, e)),
        Err(InsertError::Hash(_)) => privately().await,
        Err(InsertError::Io(e)) => {
            warn(node, &e.to_string());
            privately().await
        }
    }
}

/// Says once per process that the node cache is being bypassed, and why.
fn warn(node: &NodeCache, why: &str) {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "byref: warning: the node cache {} cannot take objects ({why}); \
             fetching them privately",
            node.dir().display()
        );
    });
}

/// A cache hit of the length the handle says. An entry of another length is damaged (cut
/// short, or written over): it is removed, and the object fetched again.
fn hit(node: &NodeCache, key: &Key, expected: Option<u64>) -> Option<Object> {
    let object = node.get(key)?;
    if expected.is_some_and(|len| len != object.len() as u64) {
        node.remove(key);
        return None;
    }
    Some(object)
}
