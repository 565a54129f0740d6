//! A value's frame on its way in: the parts `byref.serialize.dumps` hands over, or a flat and
//! plain value's stream written here, laid out as a [`Payload`] to hash or store.

use byref::{Encoding, Payload};
use bytes::Bytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::plain::{PlainStream, plain_stream};

/// One frame from Python: its encoding, pickle stream and out-of-band buffers, read in place.
pub(crate) type FrameParts = (u8, pyo3_bytes::PyBytes, Vec<pyo3_bytes::PyBytes>);

/// The payload of a frame from Python, borrowing its buffers.
pub(crate) fn payload_of((encoding, stream, buffers): FrameParts) -> PyResult<Payload> {
    let encoding = Encoding::try_from(encoding).map_err(PyValueError::new_err)?;
    let buffers = buffers
        .into_iter()
        .map(pyo3_bytes::PyBytes::into_inner)
        .collect();
    Ok(Payload::frame(encoding, stream.into_inner(), buffers))
}

/// A value's frame, as `byref.serialize.dumps` makes it.
pub(crate) enum ValueFrame<'py> {
    /// A flat and plain value's stream, written here (`crate::plain`); nothing out of band.
    Plain(Bytes),
    /// `(encoding, stream, buffers)`, from `byref.serialize.dumps` or the C pickler.
    Parts(Bound<'py, PyAny>),
}

impl<'py> ValueFrame<'py> {
    /// `value`'s frame: a flat and plain value's without a Python frame of byref's.
    pub(crate) fn of(value: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = value.py();
        match plain_stream(value)? {
            Some(PlainStream::Written(stream)) => Ok(ValueFrame::Plain(Bytes::from(stream))),
            Some(PlainStream::Pickled(stream)) => {
                let parts = (Encoding::Pickle5 as u8, stream, PyList::empty(py));
                Ok(ValueFrame::Parts(parts.into_pyobject(py)?.into_any()))
            }
            None => {
                static SERIALIZE_DUMPS: pyo3::sync::PyOnceLock<Py<PyAny>> =
                    pyo3::sync::PyOnceLock::new();
                let parts = SERIALIZE_DUMPS
                    .import(py, "byref.serialize", "dumps")?
                    .call1((value,))?;
                Ok(ValueFrame::Parts(parts))
            }
        }
    }

    /// The frame laid out to hash or store (reading Python's buffers in place).
    pub(crate) fn payload(&self) -> PyResult<Payload> {
        match self {
            ValueFrame::Plain(stream) => Ok(Payload::frame(
                Encoding::Pickle5,
                stream.clone(),
                Vec::new(),
            )),
            ValueFrame::Parts(parts) => payload_of(parts.extract()?),
        }
    }

    /// The frame as Python takes it: `(encoding, stream, buffers)`.
    pub(crate) fn into_parts(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            ValueFrame::Plain(stream) => {
                let stream = PyBytes::new(py, &stream);
                let parts = (Encoding::Pickle5 as u8, stream, PyList::empty(py));
                Ok(parts.into_pyobject(py)?.into_any())
            }
            ValueFrame::Parts(parts) => Ok(parts),
        }
    }
}
