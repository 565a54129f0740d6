//! Handles as Python objects.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::PyByrefResult;

/// The decoded form of a proxy's pickled bytes.
#[pyclass(frozen, name = "Handle", module = "byref._native")]
pub(crate) struct PyHandle {
    /// The handle itself; Python only reads it.
    pub(crate) inner: byref::Handle,
    /// The pickle stream a flat and plain value was just stored as (written here): a proxy
    /// made with this handle and that value tells it unchanged by comparing streams, not
    /// hashing. `None` for any other.
    pub(crate) plain_stream: Option<Bytes>,
}

#[pymethods]
impl PyHandle {
    /// Decodes a handle; a malformed one raises `byref.HandleError`.
    #[staticmethod]
    fn decode(data: &[u8]) -> PyByrefResult<Self> {
        Ok(PyHandle {
            inner: byref::Handle::decode(data)?,
            plain_stream: None,
        })
    }

    /// The compact binary form a pickled proxy carries.
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode())
    }

    /// URL of the store holding the object.
    #[getter]
    fn url(&self) -> &str {
        &self.inner.url
    }

    /// The object's key (BLAKE3, hexadecimal).
    #[getter]
    fn key(&self) -> String {
        self.inner.key.to_hex()
    }

    /// Stored length in bytes.
    #[getter]
    fn length(&self) -> u64 {
        self.inner.len
    }

    /// Whether the object is released on its first resolve.
    #[getter]
    fn evict(&self) -> bool {
        self.inner.evict.is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "Handle(url={:?}, key={}, length={}, evict={})",
            self.inner.url,
            self.inner.key,
            self.inner.len,
            self.evict()
        )
    }
}
