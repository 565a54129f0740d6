//! Content addresses computed without storing: what memoization keys a value by, and how a
//! proxy tells that its value is unchanged.

use byref::{Encoding, Key, Payload};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::runtime::GIL_HELD_MAX;

/// A frame as `byref.serialize.dumps` makes it: encoding, stream, out-of-band buffers.
pub(crate) type PyFrame = (u8, pyo3_bytes::PyBytes, Vec<pyo3_bytes::PyBytes>);

/// The key a frame would be stored under, and its length in bytes.
pub(crate) fn frame_key(
    py: Python<'_>,
    (encoding, stream, buffers): PyFrame,
) -> PyResult<(Key, u64)> {
    let encoding = Encoding::try_from(encoding).map_err(PyValueError::new_err)?;
    let buffers = buffers
        .into_iter()
        .map(pyo3_bytes::PyBytes::into_inner)
        .collect();
    let payload = Payload::frame(encoding, stream.into_inner(), buffers);
    // `payload` borrows Python buffers: hashed detached (a small one right away: releasing
    // the GIL would cost more than its hash), dropped with the GIL held.
    let key = if payload.len() <= GIL_HELD_MAX {
        payload.key()
    } else {
        py.detach(|| payload.key())
    };
    Ok((key, payload.len()))
}

/// The key `put` would store this frame under: BLAKE3 of the framed bytes, hashed with the GIL
/// released and, for large frames, on several threads.
#[pyfunction]
pub(crate) fn key_of(
    py: Python<'_>,
    encoding: u8,
    stream: pyo3_bytes::PyBytes,
    buffers: Vec<pyo3_bytes::PyBytes>,
) -> PyResult<String> {
    Ok(frame_key(py, (encoding, stream, buffers))?.0.to_hex())
}
