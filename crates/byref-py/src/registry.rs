//! One open store per URL per process, shared by every proxy that names it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use byref::Opened;
use pyo3::Python;

/// Opened stores by the URL they were asked for, and the process that opened them. A std
/// mutex held only for map lookups: opening a store happens outside it, so resolves of proxies
/// from different stores never wait on each other.
static STORES: Mutex<Option<(u32, Stores)>> = Mutex::new(None);

/// Open stores by URL.
type Stores = HashMap<String, Arc<Opened>>;

/// What `slot` holds for this process. After `fork()` what the parent left is abandoned, never
/// dropped: the inherited stores' network connections were driven by the parent's runtime,
/// which the child lacks (dropping them could wait on it), and a fresh open costs no I/O
/// until first use.
fn this_process<T: Default>(slot: &mut Option<(u32, T)>) -> &mut T {
    let pid = crate::pid::current();
    if slot.as_ref().is_some_and(|(owner, _)| *owner != pid) {
        std::mem::forget(slot.take());
    }
    &mut slot.get_or_insert_with(|| (pid, T::default())).1
}

/// The store `url` names, opened once per process. Opening may resolve a host name: it runs
/// with the GIL released.
pub(crate) fn open(py: Python<'_>, url: &str) -> byref::Result<Arc<Opened>> {
    open_with(py, url, "", byref::open)
}

/// The store a handle names, with what a handle may not choose held back
/// ([`byref::open_for_handle`]); a store this process opened itself under the same URL is
/// shared. One opened for a handle is kept apart (under [`FOR_HANDLE`]): it may lack what the
/// user's own open of that URL would have (a global password), so it never stands in for it.
pub(crate) fn open_for_handle(py: Python<'_>, url: &str) -> byref::Result<Arc<Opened>> {
    let own = this_process(&mut STORES.lock().unwrap_or_else(|p| p.into_inner()))
        .get(url)
        .cloned();
    match own {
        Some(found) => Ok(found),
        None => open_with(py, url, FOR_HANDLE, byref::open_for_handle),
    }
}

/// The lock that one URL's openings take in turn (kept for the process's life: one small
/// mutex per URL opened). A forked child starts afresh: a gate held by a parent's thread
/// would never open in the child.
fn opening_gate(key: &str) -> Arc<Mutex<()>> {
    type Gates = HashMap<String, Arc<Mutex<()>>>;
    static GATES: Mutex<Option<(u32, Gates)>> = Mutex::new(None);
    this_process(&mut GATES.lock().unwrap_or_else(|p| p.into_inner()))
        .entry(key.to_owned())
        .or_default()
        .clone()
}

/// Prefixes the map's keys of stores opened for handles.
const FOR_HANDLE: &str = "handle:";

fn open_with(
    py: Python<'_>,
    url: &str,
    prefix: &str,
    opener: fn(&str) -> byref::Result<Opened>,
) -> byref::Result<Arc<Opened>> {
    let key = format!("{prefix}{url}");
    if let Some(found) =
        this_process(&mut STORES.lock().unwrap_or_else(|p| p.into_inner())).get(&key)
    {
        return Ok(found.clone());
    }
    // One opening per URL at a time: two threads opening `peer://host:7000` at once would both
    // bind the port ("Address already in use"). The gate is held until the store is in the
    // map, so the next thread through finds it there. Opens of other URLs do not wait.
    let gate = opening_gate(&key);
    py.detach(|| {
        let _one_at_a_time = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) =
            this_process(&mut STORES.lock().unwrap_or_else(|p| p.into_inner())).get(&key)
        {
            return Ok(found.clone());
        }
        // Inside the runtime: a peer:// store starts serving as it opens.
        let opened = Arc::new(crate::runtime::within(|| opener(url))?);
        let mut slot = STORES.lock().unwrap_or_else(|p| p.into_inner());
        let map = this_process(&mut slot);
        map.insert(key, opened.clone());
        if opened.url != url {
            map.entry(format!("{prefix}{}", opened.url))
                .or_insert_with(|| opened.clone());
        }
        Ok(opened)
    })
}
