//! The native base of `byref.Proxy`, for the one protocol Python 3.11 classes cannot offer.
//!
//! A class written in Python gets the buffer protocol only from 3.12 (`__buffer__`); so that
//! `memoryview(proxy)` works on 3.11 too, `Proxy` derives from this class, whose buffer slot
//! resolves the proxy and hands out its target's buffer.
#![allow(unsafe_code)]

use std::ffi::c_int;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Base class of `byref.Proxy`; holds nothing itself.
#[pyclass(subclass, frozen, module = "byref._native")]
pub(crate) struct ProxyBase;

#[pymethods]
impl ProxyBase {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        ProxyBase
    }

    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        let target = py
            .import("byref.resolution")?
            .getattr("target_of")?
            .call1((&slf,))?;
        // The target fills the view and becomes its owner (`view->obj`), so releasing the view
        // goes to the target's own release slot, not to ours.
        // SAFETY: `view` is valid (CPython's contract) and `target` is a live object.
        if unsafe { ffi::PyObject_GetBuffer(target.as_ptr(), view, flags) } == -1 {
            return Err(PyErr::fetch(py));
        }
        Ok(())
    }
}
