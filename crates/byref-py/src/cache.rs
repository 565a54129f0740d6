//! This process's cache of fetched objects.
//!
//! Only fetched bytes are cached, from their second fetch on; a file store's private mappings
//! cost no copy to fetch again, and each resolve must get its own writable mapping.

use std::sync::OnceLock;

use byref::cache::ObjectCache;

/// Default size bound; `BYREF_CACHE_BYTES` overrides it (0 disables the cache).
const DEFAULT_CAPACITY: usize = 256 << 20;

/// The process-wide cache.
pub(crate) fn cache() -> &'static ObjectCache {
    static CACHE: OnceLock<ObjectCache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let capacity = std::env::var("BYREF_CACHE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_CAPACITY);
        ObjectCache::new(capacity)
    })
}
