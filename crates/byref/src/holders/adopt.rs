//! Results handed back: a holder takes over the references other processes made on its
//! behalf, as their handles reach it.
//!
//! A Parsl worker stores a task's large result on behalf of the run that submitted the task
//! (the run's holder tag), with a handle that releases that reference on its first resolve.
//! When the handle comes back to the submitting process, the run's holder *adopts* it: the
//! reference is the holder's from then on (released with its other references, or one key at
//! a time when nothing there refers to the result any more), and the handle loses its
//! release-on-resolve, so that every task it is passed on to can resolve it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::Holder;
use crate::Handle;

/// A holder that adopts, in the process that registered it.
struct Adopter {
    /// The process that registered it: a forked child has none of its holders, and must not
    /// take over (and then release) its parent's references.
    pid: u32,
    /// The URL its store's handles carry: it adopts only references in its own store.
    url: String,
    /// Not kept alive by adopting: a holder dropped or closed adopts nothing.
    holder: Weak<Holder>,
}

static ADOPTERS: Mutex<Vec<Adopter>> = Mutex::new(Vec::new());
/// Whether any holder ever adopted here: most processes (workers) never look further.
static ANY: AtomicBool = AtomicBool::new(false);

fn adopters() -> std::sync::MutexGuard<'static, Vec<Adopter>> {
    ADOPTERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on `holder`, whose store handles name as `url`, adopts in this process the
/// references other processes made on its behalf ([`adopt`]), until [`stop_adopting`].
pub fn start_adopting(holder: &Arc<Holder>, url: &str) {
    let mut all = adopters();
    all.retain(|a| a.holder.strong_count() > 0 && !std::ptr::eq(a.holder.as_ptr(), &**holder));
    all.push(Adopter {
        pid: std::process::id(),
        url: url.to_owned(),
        holder: Arc::downgrade(holder),
    });
    ANY.store(true, Ordering::Release);
}

/// `holder` adopts nothing more (it has released everything it held).
pub fn stop_adopting(holder: &Holder) {
    adopters().retain(|a| a.holder.strong_count() > 0 && !std::ptr::eq(a.holder.as_ptr(), holder));
}

/// Whether any holder adopts in this process: where none does (a worker), a handle need not
/// even be decoded.
pub fn anyone_adopts() -> bool {
    ANY.load(Ordering::Acquire) && !adopters().is_empty()
}

/// The holder of this process that takes over `handle`'s reference, and the handle without
/// it; `None` when no holder here does: the handle releases nothing on resolve, its
/// reference was made on behalf of no holder of this process, or it names another store.
pub fn adopt(handle: &Handle) -> Option<(Arc<Holder>, Handle)> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    let reference = handle.evict?;
    let pid = std::process::id();
    let holder = adopters().iter().find_map(|a| {
        let mine = a.pid == pid && a.url == handle.url;
        let holder = a.holder.upgrade().filter(|_| mine)?;
        (holder.tag() == reference.holder()).then_some(holder)
    })?;
    // A handle that came back twice (a task returning its argument untouched) is held once.
    if !holder.holds(&handle.key, &reference) {
        holder.hold(handle.key, reference);
    }
    let kept = Handle {
        evict: None,
        ..handle.clone()
    };
    Some((holder, kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holders::HolderKind;
    use crate::{MemoryStore, Payload, PutOptions, RefId, Store, StoreExt, StoreUrl};

    #[tokio::test]
    async fn a_holder_adopts_only_its_own_references_in_its_own_store() {
        let store: Arc<dyn Store> =
            Arc::new(MemoryStore::open(StoreUrl::parse("memory://adopt").unwrap()).unwrap());
        let url = "memory://adopt-test";
        let run = Arc::new(
            Holder::open(store.clone(), HolderKind::Process, "run", None)
                .await
                .unwrap(),
        );
        // A worker's result: stored on the run's behalf, released on its first resolve.
        let reference = RefId::held_by(run.tag());
        let options = PutOptions {
            reference,
            ..PutOptions::new()
        };
        let payload = Payload::received(bytes::Bytes::from_static(b"a result"));
        let key = store.put_payload(&payload, &options).await.unwrap();
        let handle = Handle::new(url, key, payload.len(), Some(reference));
        assert!(
            adopt(&handle).is_none(),
            "nothing adopts before a holder starts"
        );

        start_adopting(&run, url);
        let other_store = Handle::new("memory://elsewhere", key, payload.len(), Some(reference));
        assert!(
            adopt(&other_store).is_none(),
            "another store's handle is not adopted"
        );
        let someone_else = Handle::new(url, key, payload.len(), Some(RefId::random()));
        assert!(
            adopt(&someone_else).is_none(),
            "another holder's reference is not adopted"
        );
        let plain = Handle::new(url, key, payload.len(), None);
        assert!(
            adopt(&plain).is_none(),
            "a handle that releases nothing is not adopted"
        );

        let (adopter, kept) = adopt(&handle).expect("the run adopts its result");
        assert!(Arc::ptr_eq(&adopter, &run));
        assert_eq!(kept.evict, None);
        assert_eq!((kept.key, &kept.url), (key, &handle.url));
        // The run now releases it: the object goes with its one reference.
        let released = run.release(Some(&[key]), false).await.unwrap();
        assert_eq!((released.references, released.objects), (1, 1));
        assert!(store.head(&key).await.unwrap().is_none());

        stop_adopting(&run);
        assert!(
            adopt(&handle).is_none(),
            "a holder that stopped adopts nothing"
        );
    }
}
