//! Which values the C pickler alone pickles as byref's pickler would: what a small value's
//! round trip is mostly spent on, so checked natively.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};

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
#[pyfunction]
pub(crate) fn flat_and_plain(value: &Bound<'_, PyAny>) -> bool {
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
