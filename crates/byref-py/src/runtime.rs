//! The process-global tokio runtime, rebuilt after `fork()`.
//!
//! A tokio runtime's worker threads do not exist in a forked child (tokio#4301): blocking on
//! the parent's runtime there can wait forever. Parsl's workers and `multiprocessing` fork, so
//! every use checks the process id and builds a fresh runtime in a new process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3_async_runtimes::{TaskLocals, generic};
use tokio::runtime::{Builder, Runtime};

use crate::errors::PyByrefResult;

/// The runtime and the process that built it.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime() -> Arc<Runtime> {
    let pid = crate::pid::current();
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

/// Work on up to this many bytes (hashing a frame, a put into an in-memory store) is done with
/// the GIL held: a few microseconds at most, less than releasing the GIL and taking it back.
/// Larger work releases it (`tests/test_gil.py`).
pub(crate) const GIL_HELD_MAX: u64 = 16 * 1024;

/// [`block_on`], or for a small operation on an in-memory store (whose futures are done on
/// their first poll: [`byref::Capabilities::in_memory`]) `future` run right here with the GIL
/// held: releasing it and waking a runtime thread cost more than the work. A future that is
/// not done after all is finished by [`block_on`].
pub(crate) fn block_on_small<F>(py: Python<'_>, small: bool, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if !small {
        return block_on(py, future);
    }
    let rt = runtime();
    let mut future = std::pin::pin!(future);
    {
        let _entered = rt.enter();
        let mut here = std::task::Context::from_waker(std::task::Waker::noop());
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut here) {
            return output;
        }
    }
    py.detach(|| rt.block_on(future))
}

/// Starts `future` on the runtime and returns at once.
pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    runtime().spawn(future);
}

/// Runs `f` inside the runtime's context, for what starts tasks as it opens (a peer store's
/// server).
pub(crate) fn within<T>(f: impl FnOnce() -> T) -> T {
    let rt = runtime();
    let _entered = rt.enter();
    f()
}

/// This runtime as pyo3-async-runtimes sees it: futures awaited from asyncio run here, on
/// byref's own threads (rebuilt after `fork()` as [`runtime`] is), never on the event loop's.
pub(crate) struct ByrefRuntime;

tokio::task_local! {
    /// The asyncio event loop (and context) a future was awaited from, to complete it there.
    static TASK_LOCALS: TaskLocals;
}

impl generic::Runtime for ByrefRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        runtime().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        runtime().spawn_blocking(f)
    }
}

impl generic::ContextExt for ByrefRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(TASK_LOCALS.scope(locals, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(Clone::clone).ok()
    }
}

/// An asyncio awaitable of `future`, which runs on byref's runtime (no GIL held while it runs)
/// and completes the awaitable on the event loop it was awaited from. Call from a coroutine.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyByrefResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    generic::future_into_py::<ByrefRuntime, _, T>(py, async move { Ok(future.await?) })
}
