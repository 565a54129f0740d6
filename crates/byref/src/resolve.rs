//! The one way a handle becomes bytes: the store opened for it, then [`Opened::fetch_held`]
//! (same-host mapping, node cache, process cache, fetch; each checked as it says), then the
//! release of an `evict=True` handle's reference. Bindings call this and decide nothing.

use crate::{Error, Handle, Object, Opened, Result, cache};

/// The object `handle` names, from `opened` (the store [`crate::open_for_handle`] opened for
/// it, or the caller's own open of the same URL), checked against the handle's length; the
/// handle's reference released if it was made with `evict=True`.
pub async fn resolve(opened: &Opened, handle: &Handle) -> Result<Object> {
    let key = &handle.key;
    let object = opened
        .fetch_held(key, Some(handle.len), handle.evict.as_ref())
        .await?;
    if let Some(reference) = &handle.evict {
        match opened.store.release(key, Some(reference)).await {
            Ok(deleted) => {
                if deleted {
                    cache::process_cache().remove(key);
                }
            }
            // A reference the object does not hold: released already (a second resolve
            // while others still hold the object), or forged in the handle. The value was
            // fetched and checked; nothing else is released, and it is returned.
            Err(Error::ReferenceGone { .. } | Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(object)
}
