//! Content addresses computed without storing: what memoization keys a value by, and how a
//! proxy tells that its value is unchanged.

use byref::{Key, Payload};
use pyo3::prelude::*;

use crate::framing::payload_of;
use crate::runtime::GIL_HELD_MAX;

/// The key a frame would be stored under.
pub(crate) fn frame_key(py: Python<'_>, payload: &Payload) -> Key {
    // `payload` may borrow Python buffers: hashed detached (a small one right away: releasing
    // the GIL would cost more than its hash), dropped with the GIL held.
    if payload.len() <= GIL_HELD_MAX {
        payload.key()
    } else {
        py.detach(|| payload.key())
    }
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
    let payload = payload_of((encoding, stream, buffers))?;
    Ok(frame_key(py, &payload).to_hex())
}
