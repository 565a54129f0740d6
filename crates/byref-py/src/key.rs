//! Content addresses computed without storing: what memoization keys a value by.

use byref::{Encoding, Payload};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The key `put` would store this frame under: BLAKE3 of the framed bytes, hashed with the GIL
/// released and, for large frames, on several threads.
#[pyfunction]
pub(crate) fn key_of(
    py: Python<'_>,
    encoding: u8,
    stream: pyo3_bytes::PyBytes,
    buffers: Vec<pyo3_bytes::PyBytes>,
) -> PyResult<String> {
    let encoding = Encoding::try_from(encoding).map_err(PyValueError::new_err)?;
    let buffers = buffers
        .into_iter()
        .map(pyo3_bytes::PyBytes::into_inner)
        .collect();
    let payload = Payload::frame(encoding, stream.into_inner(), buffers);
    // `payload` borrows Python buffers: hash detached, drop with the GIL held.
    let key = py.detach(|| payload.key());
    Ok(key.to_hex())
}
