//! The native base of `byref.Proxy`: a proxy's state, its constructor, the way to its target,
//! attribute lookup ([`attributes`]), and the one protocol Python 3.11 classes cannot offer.
//!
//! The state lives here, not in Python slots, so that making a proxy, reaching a resolved
//! proxy's target and pickling a proxy cost no Python frame of byref's (a small value's round
//! trip is mostly such steps). Resolving is the one resolve pipeline (`byref::resolve`), a
//! plain pickle unpickled here and anything else by `byref.resolution.adopt`; what a proxy
//! pickles as is decided by `byref::travel` ([`pickle`]).
//!
//! A class written in Python gets the buffer protocol only from 3.12 (`__buffer__`); so that
//! `memoryview(proxy)` works on 3.11 too, this class's buffer slot resolves the proxy and
//! hands out its target's buffer.
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit, ffi};

mod attributes;
pub(crate) mod pickle;
pub(crate) mod rebuild;

use crate::errors::BackendError;
use crate::handle::PyHandle;
use crate::store::{Frame, fetch_for_handle};

/// A proxy's target before it is fetched (`byref.resolution.UNRESOLVED`).
static UNRESOLVED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The sentinel for "no target yet", made once.
pub(crate) fn unresolved(py: Python<'_>) -> &Py<PyAny> {
    UNRESOLVED.get_or_init(py, || {
        py.get_type::<pyo3::types::PyAny>()
            .call0()
            .expect("object() does not fail")
            .unbind()
    })
}

/// Base class of `byref.Proxy`: a handle, and the target once given or fetched.
#[pyclass(subclass, frozen, weakref, module = "byref._native")]
pub(crate) struct ProxyBase {
    /// What it pickles as while unresolved or unchanged; replaced when a changed value is
    /// stored again.
    handle: Mutex<Py<PyBytes>>,
    /// The target, once given (`store.proxy`) or fetched; `None` before. Only ever set, except
    /// by the garbage collector breaking a cycle.
    target: Mutex<Option<Py<PyAny>>>,
    /// The target's class as `module:qualname`, pickled along so that `isinstance` (Parsl
    /// makes such checks on every result) answers without fetching.
    kind: Mutex<Option<Py<PyString>>>,
    /// Whether pickling may hand on `handle` itself: true for a proxy made here with its
    /// target until a handle released on resolve has been handed on once.
    owns_handle: AtomicBool,
    /// The pickle stream `handle`'s object holds, when it was written here from the target
    /// (a flat and plain value): pickling compares it with the target's stream now instead
    /// of hashing that. Only read while `owns_handle`.
    plain_stream: Mutex<Option<Bytes>>,
    /// Held while resolving or pickling: threads touching one proxy fetch it once (an
    /// `evict=True` proxy can be fetched only once). Reentrant, so that pickling a target that
    /// contains its own proxy fails rather than hangs. Native, not a Python lock: a small
    /// value's round trip makes two proxies and takes each one's lock once.
    lock: ReentrantMutex<()>,
}

/// Locks one of a proxy's fields. No section calls into Python, so none waits on the GIL.
fn field<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// `module:qualname` of `cls` when that finds it again (no `<locals>`), else `None`.
#[pyfunction]
pub(crate) fn class_name(cls: &Bound<'_, PyType>) -> PyResult<Option<String>> {
    let module = cls.getattr(pyo3::intern!(cls.py(), "__module__"))?;
    let name = format!("{module}:{}", cls.qualname()?);
    Ok((!name.contains('<')).then_some(name))
}

/// The kind a proxy of a `cls` carries: [`class_name`], made once for the commonest classes
/// (a small value's round trip makes one per proxy).
fn kind_of<'py>(cls: &Bound<'py, PyType>) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = cls.py();
    static COMMON: PyOnceLock<Vec<(Py<PyType>, Py<PyString>)>> = PyOnceLock::new();
    let common = COMMON.get_or_try_init(py, || {
        let classes = [
            py.get_type::<PyDict>(),
            py.get_type::<PyList>(),
            py.get_type::<PyTuple>(),
            py.get_type::<PyString>(),
        ];
        let mut common = Vec::new();
        for class in classes {
            if let Some(name) = class_name(&class)? {
                common.push((class.unbind(), PyString::new(py, &name).unbind()));
            }
        }
        PyResult::Ok(common)
    })?;
    if let Some((_, name)) = common.iter().find(|(class, _)| cls.is(class)) {
        return Ok(Some(name.bind(py).clone()));
    }
    Ok(class_name(cls)?.map(|name| PyString::new(py, &name)))
}

impl ProxyBase {
    /// Whether `stream` is the one its handle's object was written with (see `plain_stream`).
    pub(crate) fn holds_stream(&self, stream: &[u8]) -> bool {
        field(&self.plain_stream).as_deref() == Some(stream)
    }

    pub(crate) fn target(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        field(&self.target).as_ref().map(|t| t.clone_ref(py))
    }

    /// Makes `target` the proxy's: from now on it travels as its value (a fetched proxy's
    /// handle may have been released by this very resolve, and is the sender's in any case).
    fn set_target(&self, target: &Bound<'_, PyAny>) -> Py<PyAny> {
        *field(&self.target) = Some(target.clone().unbind());
        self.owns_handle.store(false, Ordering::Release);
        target.clone().unbind()
    }
}

#[pymethods]
impl ProxyBase {
    /// A proxy of the object stored under `handle` (pickled, or as a put returned it);
    /// `target` is that object itself when the caller has it (it then travels as its value),
    /// and `kind` its class's name otherwise.
    #[new]
    #[pyo3(signature = (handle, *target, kind = None))]
    fn new(
        handle: &Bound<'_, PyAny>,
        target: &Bound<'_, PyTuple>,
        kind: Option<Bound<'_, PyString>>,
    ) -> PyResult<Self> {
        let py = handle.py();
        let (handle, plain_stream) = match handle.cast_exact::<PyHandle>() {
            Ok(put) => {
                let put = put.get();
                let encoded = PyBytes::new(py, &put.inner.encode());
                (encoded, put.plain_stream.clone())
            }
            Err(_) => (handle.cast::<PyBytes>()?.clone(), None),
        };
        let target = match target.len() {
            0 => None,
            1 => Some(target.get_item(0)?),
            n => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "a proxy takes a handle and at most one target, not {n}"
                )));
            }
        }
        .filter(|t| !t.is(unresolved(py)));
        let kind = match (kind, &target) {
            (Some(kind), _) => Some(kind.unbind()),
            (None, Some(target)) => kind_of(&target.get_type())?.map(Bound::unbind),
            (None, None) => None,
        };
        Ok(ProxyBase {
            handle: Mutex::new(handle.unbind()),
            plain_stream: Mutex::new(plain_stream.filter(|_| target.is_some())),
            owns_handle: AtomicBool::new(target.is_some()),
            target: Mutex::new(target.map(Bound::unbind)),
            kind: Mutex::new(kind),
            lock: ReentrantMutex::new(()),
        })
    }

    #[getter]
    pub(crate) fn _byref_handle(&self, py: Python<'_>) -> Py<PyBytes> {
        field(&self.handle).clone_ref(py)
    }

    /// The target, or `UNRESOLVED`.
    #[getter]
    fn _byref_target(&self, py: Python<'_>) -> Py<PyAny> {
        self.target(py)
            .unwrap_or_else(|| unresolved(py).clone_ref(py))
    }

    #[getter]
    pub(crate) fn _byref_kind(&self, py: Python<'_>) -> Option<Py<PyString>> {
        field(&self.kind).as_ref().map(|k| k.clone_ref(py))
    }

    #[getter]
    pub(crate) fn _byref_owns_handle(&self) -> bool {
        self.owns_handle.load(Ordering::Acquire)
    }

    /// Makes `target`, fetched for this proxy, its target (with its lock held).
    fn _byref_adopt(&self, target: &Bound<'_, PyAny>) -> Py<PyAny> {
        self.set_target(target)
    }

    /// Makes the value of `frame`, fetched for this proxy without its lock (`byref.aresolve`),
    /// its target, unless another thread resolved it meanwhile; the target either way.
    fn _byref_adopt_frame(slf: &Bound<'_, Self>, frame: Bound<'_, Frame>) -> PyResult<Py<PyAny>> {
        let base = slf.get();
        let _held = hold(slf.py(), &base.lock);
        match base.target(slf.py()) {
            Some(target) => Ok(target),
            None => adopt(slf.as_any(), frame),
        }
    }

    /// Its handle was handed on, and was one released on resolve: it goes only once.
    pub(crate) fn _byref_hand_on_once(&self) {
        self.owns_handle.store(false, Ordering::Release);
    }

    /// Its value was stored again, under `handle`, as a `kind`; `owns` as for a new proxy.
    fn _byref_restored(
        &self,
        handle: Bound<'_, PyBytes>,
        kind: Option<Bound<'_, PyString>>,
        owns: bool,
    ) {
        *field(&self.handle) = handle.unbind();
        *field(&self.plain_stream) = None;
        *field(&self.kind) = kind.map(Bound::unbind);
        self.owns_handle.store(owns, Ordering::Release);
    }

    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        attributes::get(slf.as_any(), name)
    }

    /// Called by Python when `__getattribute__` raised `AttributeError` (pyo3 would otherwise
    /// raise one naming only `name`): the target's own error, asked again.
    fn __getattr__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        attributes::of_target(slf.as_any(), name)
    }

    fn __reduce_ex__<'py>(
        slf: &Bound<'py, Self>,
        protocol: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _held = hold(slf.py(), &slf.get().lock);
        pickle::reduce(slf, protocol)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::__reduce_ex__(slf, &slf.py().None().into_bound(slf.py()))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Never blocks: a field is locked only for moments that run no Python, and so no
        // collection.
        if let Ok(target) = self.target.try_lock()
            && let Some(target) = target.as_ref()
        {
            visit.call(target)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        field(&self.target).take();
    }

    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let target = target_of(py, slf.as_any())?;
        // The target fills the view and becomes its owner (`view->obj`), so releasing the view
        // goes to the target's own release slot, not to ours.
        // SAFETY: `view` is valid (CPython's contract) and `target` is a live object.
        if unsafe { ffi::PyObject_GetBuffer(target.as_ptr(), view, flags) } == -1 {
            return Err(PyErr::fetch(py));
        }
        Ok(())
    }
}

/// The proxy's target, fetching and unpickling it on first use.
#[pyfunction]
pub(crate) fn target_of(py: Python<'_>, proxy: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let base = proxy.cast::<ProxyBase>()?.get();
    match base.target(py) {
        Some(target) => Ok(target),
        None => fetch_target(py, proxy, base),
    }
}

/// Takes a proxy's `lock` (held until the guard is dropped); if another thread holds it,
/// waits with the GIL released (that thread may need the GIL to finish).
fn hold<'a>(py: Python<'_>, lock: &'a ReentrantMutex<()>) -> ReentrantMutexGuard<'a, ()> {
    if let Some(held) = lock.try_lock() {
        return held;
    }
    // The guard cannot leave the detached closure (it must stay on its thread, which it
    // does: detaching does not change threads); taken there, it is made again here.
    py.detach(|| std::mem::forget(lock.lock()));
    // SAFETY: this thread holds the lock, taken just above, with no guard of its own.
    unsafe { lock.make_guard_unchecked() }
}

/// Makes the value of `frame`, fetched for `proxy`, its target: `byref.resolution.adopt`
/// unpickles it (naming what a worker cannot import). With the proxy's lock held.
fn adopt(proxy: &Bound<'_, PyAny>, frame: Bound<'_, Frame>) -> PyResult<Py<PyAny>> {
    static ADOPT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(ADOPT
        .import(proxy.py(), "byref.resolution", "adopt")?
        .call1((proxy, frame))?
        .unbind())
}

/// Pickle streams up to this long are copied into a `bytes` to unpickle: cheaper than the two
/// objects a [`Frame`] makes to view them in place.
const COPY_MAX: usize = 4 * 1024;

/// Fetches and unpickles the target, once, under the proxy's lock.
fn fetch_target(py: Python<'_>, proxy: &Bound<'_, PyAny>, base: &ProxyBase) -> PyResult<Py<PyAny>> {
    let _held = hold(py, &base.lock);
    if let Some(target) = base.target(py) {
        return Ok(target);
    }
    let handle = base._byref_handle(py);
    let fetched = match fetch_for_handle(py, handle.as_bytes(py)) {
        Ok(fetched) => fetched,
        Err(e) => {
            let error = PyErr::from(e);
            if !error.is_instance_of::<BackendError>(py) {
                return Err(error);
            }
            // The backend's message names only the store: the object is named too.
            static NAMING_OBJECT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let named = NAMING_OBJECT
                .import(py, "byref.resolution", "naming_object")?
                .call1((error.into_value(py), &handle))?;
            return Err(PyErr::from_value(named));
        }
    };
    // A flat and plain value's pickle is read right here; another plain pickle (no out-of-band
    // buffers) is unpickled here (a short one from a copy); anything else, or one that fails
    // (it is then unpickled again there, to name what is missing), by
    // `byref.resolution.adopt`.
    let plain = fetched.plain_stream()?;
    if let Some(stream) = plain
        && let Some(target) = crate::plain::reader::read(py, stream)
    {
        return Ok(base.set_target(&target));
    }
    let short = plain
        .filter(|stream| stream.len() <= COPY_MAX)
        .map(|stream| PyBytes::new(py, stream));
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let loads = LOADS.import(py, "pickle", "loads")?;
    let frame = match short {
        Some(copy) => match loads.call1((copy,)) {
            Ok(target) => return Ok(base.set_target(&target)),
            Err(_) => fetched.into_frame(py)?,
        },
        None => {
            let frame = fetched.into_frame(py)?;
            if let Some(stream) = frame.plain_stream()
                && let Ok(target) = loads.call1((stream,))
            {
                return Ok(base.set_target(&target));
            }
            frame
        }
    };
    adopt(proxy, Bound::new(py, frame)?)
}
