//! Fetched objects exposed to Python through the buffer protocol, without a copy.
//!
//! This is the crate's only unsafe code: handing Python a raw pointer into memory that Rust
//! owns. The invariants are stated where they are relied on.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use byref::Object;
use bytes::BytesMut;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;

/// The memory of one fetched object, kept alive while any [`Buffer`] views it.
pub(crate) struct Region {
    /// Start of the object's bytes. For a private mapping it was taken from `&mut`, while this
    /// region was its only owner; afterwards Rust never reads or writes the memory through
    /// `owner` again, so Python may write through it.
    ptr: *mut u8,
    /// Length of the object.
    len: usize,
    /// Whether Python may write: only private copy-on-write mappings, never shared bytes.
    writable: bool,
    /// Owns the memory `ptr` points into; only ever dropped.
    _owner: Owner,
}

/// What keeps a region's memory alive; held only to be dropped with the region.
#[expect(dead_code, reason = "the fields are owned, never read")]
enum Owner {
    Object(Object),
    /// Fetched bytes this region alone holds.
    Unique(BytesMut),
}

// SAFETY: `ptr` points into memory owned by `_owner` (bytes or a mapping, all `Send + Sync`),
// which lives as long as the region; Rust never touches it through the pointer.
unsafe impl Send for Region {}
// SAFETY: as above; concurrent Python writers are Python's business, as for any bytearray.
unsafe impl Sync for Region {}

impl Region {
    pub(crate) fn new(object: Object) -> Self {
        let len = object.len();
        let (ptr, writable, owner) = match object {
            Object::Mapped(mut map) => (map.as_mut_ptr(), true, Owner::Object(Object::Mapped(map))),
            // Fetched bytes nobody else holds (not cached, not kept by a memory store) are
            // ours to write; shared ones stay read-only.
            Object::Shared(bytes) => match bytes.try_into_mut() {
                Ok(mut unique) => (unique.as_mut_ptr(), true, Owner::Unique(unique)),
                Err(shared) => (
                    shared.as_ptr().cast_mut(),
                    false,
                    Owner::Object(Object::Shared(shared)),
                ),
            },
            other => (
                other.as_slice().as_ptr().cast_mut(),
                false,
                Owner::Object(other),
            ),
        };
        Region {
            ptr,
            len,
            writable,
            _owner: owner,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A contiguous slice of a fetched object, usable wherever Python takes a buffer
/// (`memoryview`, `numpy.frombuffer`, `pickle.loads(..., buffers=...)`).
///
/// Writable when the object is a private mapping of a file-store object: the writes stay in
/// this process and never reach the store.
#[pyclass(frozen, module = "byref._native")]
pub(crate) struct Buffer {
    /// The object this slice belongs to.
    region: Arc<Region>,
    /// Offset of the slice in the object.
    start: usize,
    /// Length of the slice.
    len: usize,
}

impl Buffer {
    pub(crate) fn new(region: Arc<Region>, range: std::ops::Range<usize>) -> Self {
        assert!(
            range.start <= range.end && range.end <= region.len(),
            "slice out of object"
        );
        Buffer {
            region,
            start: range.start,
            len: range.end - range.start,
        }
    }
}

#[pymethods]
impl Buffer {
    fn __len__(&self) -> usize {
        self.len
    }

    #[getter]
    fn readonly(&self) -> bool {
        !self.region.writable
    }

    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: PyRef<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null Py_buffer"));
        }
        // SAFETY: `start + len <= region.len` (checked in `Buffer::new`); the view holds a
        // reference to this object (`obj`), which keeps the region alive until released.
        let ret = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                slf.region.ptr.add(slf.start).cast::<c_void>(),
                slf.len as ffi::Py_ssize_t,
                c_int::from(!slf.region.writable),
                flags,
            )
        };
        if ret == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// # Safety
    /// Called by CPython; nothing to release beyond the reference the view holds.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}
