//! Attribute lookup on a proxy: its class's own attributes (its methods, `__class__`, byref's
//! `_byref_*`) as Python finds them, anything else on its target.
//!
//! Native because Python 3.11 makes a class with `__getattr__` raise, and catch, an
//! `AttributeError` for every name its instances lack (3.12 no longer does): two thirds of the
//! time of a call such as `proxy.keys()` went there. Which names a proxy class has is looked
//! up once per class and name, and remembered (proxy classes are complete before their first
//! instance; one changed later is not seen here).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use super::target_of;

/// Per proxy class, whether each name asked of its instances is the class's own; `None` for
/// a class whose instances have a `__dict__` (a subclass without `__slots__`), where Python's
/// own lookup comes first for every name.
static OWN_NAMES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// Names remembered per class at most: code asking for names made on the fly
/// (`getattr(proxy, f"field{i}")`) starts the class's memory again rather than grow it.
const NAMES_MAX: usize = 4096;

/// Whether `name` is the class's (defined in the namespace of a class of its MRO): `None`
/// if its instances may have attributes of their own.
fn own_name(cls: &Bound<'_, PyType>, name: &Bound<'_, PyString>) -> PyResult<Option<bool>> {
    let py = cls.py();
    let classes = OWN_NAMES
        .get_or_init(py, || PyDict::new(py).unbind())
        .bind(py);
    let names = match classes.get_item(cls)? {
        Some(names) => names,
        None => {
            let with_dict = cls
                .getattr(pyo3::intern!(py, "__dictoffset__"))?
                .extract::<isize>()?
                != 0;
            let names = if with_dict {
                py.None().into_bound(py)
            } else {
                PyDict::new(py).into_any()
            };
            classes.set_item(cls, &names)?;
            names
        }
    };
    let Ok(names) = names.cast::<PyDict>() else {
        return Ok(None);
    };
    if let Some(own) = names.get_item(name)? {
        return Ok(Some(own.is_truthy()?));
    }
    let mro = cls.getattr(pyo3::intern!(py, "__mro__"))?;
    let mut own = false;
    for class in mro.cast::<PyTuple>()?.iter() {
        if class
            .getattr(pyo3::intern!(py, "__dict__"))?
            .contains(name)?
        {
            own = true;
            break;
        }
    }
    if names.len() >= NAMES_MAX {
        names.clear();
    }
    names.set_item(name, own)?;
    Ok(Some(own))
}

/// `getattr(target, name)`.
pub(crate) fn of_target<'py>(
    proxy: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    target_of(proxy.py(), proxy)?
        .into_bound(proxy.py())
        .getattr(name)
}

/// `getattr(proxy, name)`: Python's own lookup for the class's names (and for every name of
/// a proxy with a `__dict__`); when that raises `AttributeError`, Python asks `__getattr__`,
/// which is [`of_target`].
pub(crate) fn get<'py>(
    proxy: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    if own_name(&proxy.get_type(), name)? == Some(false) {
        return of_target(proxy, name);
    }
    // SAFETY: both are live objects; the call returns a new reference or sets an error.
    unsafe {
        Bound::from_owned_ptr_or_err(
            proxy.py(),
            pyo3::ffi::PyObject_GenericGetAttr(proxy.as_ptr(), name.as_ptr()),
        )
    }
}
