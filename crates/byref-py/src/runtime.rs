//! The process-global tokio runtime, rebuilt after `fork()`.
//!
//! A tokio runtime's worker threads do not exist in a forked child (tokio#4301): blocking on
//! the parent's runtime there can wait forever. Parsl's workers and `multiprocessing` fork, so
//! every use checks the process id and builds a fresh runtime in a new process.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::Python;
use tokio::runtime::{Builder, Runtime};

/// The runtime and the process that built it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, rt)) = slot.as_ref()
        && *owner == pid
    {
        return rt.clone();
    }
    if let Some((_, inherited)) = slot.take() {
        // The parent's runtime: its threads are gone, and dropping it would wait for them.
        std::mem::forget(inherited);
    }
    let rt = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("byref-io")
            .enable_all()
            .build()
            .expect("cannot start byref's I/O runtime"),
    );
    *slot = Some((pid, rt.clone()));
    rt
}

/// Runs `future` to completion with the GIL released, so other Python threads (and other
/// resolves) run meanwhile.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime();
    py.detach(|| rt.block_on(future))
}

/// Runs `f` inside the runtime's context, for what starts tasks as it opens (a peer store's
/// server).
pub(crate) fn within<T>(f: impl FnOnce() -> T) -> T {
    let rt = runtime();
    let _entered = rt.enter();
    f()
}
