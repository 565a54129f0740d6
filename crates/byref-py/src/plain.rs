//! Which values the C pickler alone pickles as byref's pickler would, and their frames made
//! without a Python frame of byref's: what a small value's round trip is mostly spent on.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple,
};

/// Containers this short are checked item by item (a longer one costs the check as much as
/// the pickler hooks it would save).
const FLAT_MAX: usize = 64;

/// A value with nothing a pickler hook would act on: no buffer, nothing from `__main__`.
pub(crate) fn scalar(value: &Bound<'_, PyAny>) -> bool {
    value.is_none()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyBool>()
}

fn all_scalars<'py>(mut items: impl Iterator<Item = Bound<'py, PyAny>>) -> bool {
    items.all(|item| scalar(&item))
}

/// Whether `value` is a scalar, or a short dict, list, tuple or set of scalars: pickled the
/// same with or without byref's hooks, so by the C pickler alone.
fn flat_and_plain(value: &Bound<'_, PyAny>) -> bool {
    if scalar(value) {
        return true;
    }
    if let Ok(dict) = value.cast_exact::<PyDict>() {
        return dict.len() <= FLAT_MAX && dict.iter().all(|(k, v)| scalar(&k) && scalar(&v));
    }
    if let Ok(list) = value.cast_exact::<PyList>() {
        return list.len() <= FLAT_MAX && all_scalars(list.iter());
    }
    if let Ok(tuple) = value.cast_exact::<PyTuple>() {
        return tuple.len() <= FLAT_MAX && all_scalars(tuple.iter());
    }
    if let Ok(set) = value.cast_exact::<PySet>() {
        return set.len() <= FLAT_MAX && all_scalars(set.iter());
    }
    if let Ok(set) = value.cast_exact::<PyFrozenSet>() {
        return set.len() <= FLAT_MAX && all_scalars(set.iter());
    }
    false
}

/// `pickle.dumps(value, protocol=5)` if `value` is flat and plain, else `None`: the one fast
/// path to a small value's frame, taken by `byref.serialize.dumps` and by [`frame_of`].
#[pyfunction]
pub(crate) fn plain_pickle<'py>(
    value: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if !flat_and_plain(value) {
        return Ok(None);
    }
    static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let stream = DUMPS
        .import(value.py(), "pickle", "dumps")?
        .call1((value, 5))?;
    Ok(Some(stream.cast_into::<PyBytes>()?))
}

/// `value`'s frame, `(encoding, stream, buffers)` as `byref.serialize.dumps` makes it: made
/// here for a flat and plain value, else by that function.
pub(crate) fn frame_of<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    if let Some(stream) = plain_pickle(value)? {
        let pickle5 = byref::Encoding::Pickle5 as u8;
        return Ok((pickle5, stream, PyList::empty(py))
            .into_pyobject(py)?
            .into_any());
    }
    static SERIALIZE_DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    SERIALIZE_DUMPS
        .import(py, "byref.serialize", "dumps")?
        .call1((value,))
}
