//! `byref._p`: a proxy rebuilt from the handle it pickled as, with no I/O until first use.
//!
//! Every pickled proxy names this function, so its name is short (it pickles as `byref._p`);
//! native because a small value's round trip unpickles a proxy once.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString};

/// The class name a pickled proxy's `kind` stands for: a code of a common class
/// ([`byref::kinds`]), a `module:qualname`, or nothing (also for a code of a newer byref).
fn kind_name<'py>(kind: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyString>>> {
    let Some(kind) = kind.filter(|k| !k.is_none()) else {
        return Ok(None);
    };
    if kind.is_instance_of::<PyInt>() {
        let name = byref::kinds::name_of(kind.extract().unwrap_or(-1));
        return Ok(name.map(|name| PyString::new(kind.py(), name)));
    }
    Ok(Some(kind.cast::<PyString>()?.clone()))
}

/// Rebuilds a proxy of the proxy class with the optional-method bits `methods` (0: `Proxy`)
/// from its pickled `handle` and `kind`.
#[pyfunction]
#[pyo3(name = "_p", signature = (handle, kind = None, methods = 0))]
pub(crate) fn rebuild<'py>(
    handle: &Bound<'py, PyBytes>,
    kind: Option<&Bound<'py, PyAny>>,
    methods: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let py = handle.py();
    let kind = kind_name(kind)?;
    if byref::holders::adopt::anyone_adopts() {
        // A lifetime of this process (a Parsl run's) may take the handle's reference over.
        static ADOPTING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        return ADOPTING
            .import(py, "byref.proxy", "rebuild_adopting")?
            .call1((handle, kind, methods));
    }
    let class = if methods == 0 {
        static PROXY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        PROXY.import(py, "byref.proxy", "Proxy")?.clone()
    } else {
        static PROXY_CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        PROXY_CLASS
            .import(py, "byref.proxy", "proxy_class")?
            .call1((methods,))?
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "kind"), kind)?;
    class.call((handle,), Some(&kwargs))
}
