//! Which values the C pickler alone pickles as byref's pickler would (flat and plain ones),
//! and their pickle streams made without a Python frame of byref's: what a small value's
//! round trip is mostly spent on.

mod opcodes;
pub(crate) mod reader;
mod writer;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;

use writer::Plain;

/// Containers this short are checked item by item (a longer one costs the check as much as
/// the pickler hooks it would save).
const FLAT_MAX: usize = 64;

/// A flat and plain value's `pickle.dumps(value, protocol=5)`.
pub(crate) enum PlainStream<'py> {
    /// Written here ([`writer`]).
    Written(Vec<u8>),
    /// By the C pickler, for the cases the writer leaves to it.
    Pickled(Bound<'py, PyBytes>),
}

/// `value`'s pickle if it is flat and plain (a scalar — None, bool, int, float, str — or a
/// dict, list, tuple, set or frozenset of at most [`FLAT_MAX`] scalars), else `None`: the one
/// fast path to a small value's stream.
pub(crate) fn plain_stream<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<PlainStream<'py>>> {
    Ok(match writer::write(value) {
        None => None,
        Some(Plain::Written(stream)) => Some(PlainStream::Written(stream)),
        Some(Plain::LeftToPickler) => {
            static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let stream = DUMPS
                .import(value.py(), "pickle", "dumps")?
                .call1((value, 5))?;
            Some(PlainStream::Pickled(stream.cast_into::<PyBytes>()?))
        }
    })
}

/// [`plain_stream`] for `byref.serialize.dumps`: `pickle.dumps(value, protocol=5)` if `value`
/// is flat and plain, else `None`.
#[pyfunction]
pub(crate) fn plain_pickle<'py>(
    value: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    Ok(plain_stream(value)?.map(|stream| match stream {
        PlainStream::Written(stream) => PyBytes::new(value.py(), &stream),
        PlainStream::Pickled(stream) => stream,
    }))
}
