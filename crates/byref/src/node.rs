//! Fetching through the node cache (`byref_fs::node_cache`): one fetch per machine for
//! objects of network stores, whatever the number of processes resolving them.
//!
//! On by default where `/dev/shm` exists; `BYREF_NODE_CACHE=off` turns it off.

use std::sync::{Once, OnceLock};

use byref_core::{Key, Object, Result, StoreExt, check_length};
use byref_fs::node_cache::NodeCache;

use crate::Opened;

/// This process's node cache, if one is configured and usable.
pub(crate) fn node_cache() -> Option<&'static NodeCache> {
    static NODE: OnceLock<Option<NodeCache>> = OnceLock::new();
    NODE.get_or_init(NodeCache::from_env).as_ref()
}

/// The object, from the node cache, or fetched once for the whole node: the first process
/// to ask fetches (verified against its key) and adds it while the others wait on its lock;
/// all then map the one entry. A cache that cannot take it (a full filesystem) costs a
/// private fetch and a warning, never an error.
pub(crate) async fn fetch(
    opened: &Opened,
    node: &'static NodeCache,
    key: &Key,
    expected: Option<u64>,
) -> Result<Object> {
    if let Some(object) = hit(opened, node, key, expected)? {
        return Ok(object);
    }
    let waited = {
        let key = *key;
        tokio::task::spawn_blocking(move || node.lock(&key)).await
    };
    let Ok(Ok(lock)) = waited else {
        return opened.store.get_checked(key, expected, true).await;
    };
    if let Some(object) = hit(opened, node, key, expected)? {
        return Ok(object);
    }
    let object = opened.store.get_checked(key, expected, true).await?;
    if !node.fits(object.len() as u64) {
        return Ok(object);
    }
    let (object, added) = {
        let key = *key;
        tokio::task::spawn_blocking(move || {
            let added = node.insert(&key, object.as_slice());
            (object, added)
        })
        .await
        .map_err(|e| byref_core::Error::backend(&opened.url, e))?
    };
    drop(lock);
    match added {
        // The fetched buffer goes: this process maps the node's one copy, like the others.
        Ok(()) => Ok(node.get(key).unwrap_or(object)),
        Err(e) => {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "byref: warning: the node cache {} cannot take objects ({e}); \
                     fetching them privately",
                    node.dir().display()
                );
            });
            Ok(object)
        }
    }
}

/// A cache hit, checked against the handle's length.
fn hit(
    opened: &Opened,
    node: &NodeCache,
    key: &Key,
    expected: Option<u64>,
) -> Result<Option<Object>> {
    let Some(object) = node.get(key) else {
        return Ok(None);
    };
    if let Some(expected) = expected {
        check_length(&opened.url, key, object.len() as u64, expected)?;
    }
    Ok(Some(object))
}
