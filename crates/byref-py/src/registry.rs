//! One open store per URL per process, shared by every proxy that names it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use byref::Opened;

/// Opened stores by the URL they were asked for. A std mutex held only for map lookups:
/// opening a store (which may touch the disk or network) happens outside it, so resolves of
/// proxies from different stores never wait on each other.
static STORES: Mutex<Option<HashMap<String, Arc<Opened>>>> = Mutex::new(None);

fn lookup(url: &str) -> Option<Arc<Opened>> {
    STORES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()?
        .get(url)
        .cloned()
}

/// The store `url` names, opened once per process.
pub(crate) fn open(url: &str) -> byref::Result<Arc<Opened>> {
    if let Some(found) = lookup(url) {
        return Ok(found);
    }
    let opened = Arc::new(byref::open(url)?);
    let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
    let map = stores.get_or_insert_with(HashMap::new);
    // Another thread may have opened it meanwhile; keep the first so all share one store.
    let shared = map.entry(url.to_owned()).or_insert(opened).clone();
    if shared.url != url {
        map.entry(shared.url.clone())
            .or_insert_with(|| shared.clone());
    }
    Ok(shared)
}
