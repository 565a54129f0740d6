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
///
/// Always this process's own, writable memory: a task may write into its arguments as into
/// any array, and the writes must never reach the store or another holder of the bytes.
pub(crate) struct Region {
    /// Start of the object's bytes, taken from `&mut` while `owner` was its only owner;
    /// afterwards Rust never reads or writes the memory through `owner` again, so Python may
    /// write through it.
    ptr: *mut u8,
    /// Length of the object.
    len: usize,
    /// Owns the memory `ptr` points into; only ever dropped.
    _owner: Owner,
}

/// What keeps a region's memory alive.
enum Owner {
    /// A private copy-on-write mapping of a stored file: pages are copied only when written.
    Mapped(memmap2::MmapMut),
    /// Bytes this region alone holds: fetched for it, or copied from shared ones.
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
        let mut owner = match object {
            Object::Mapped(map) => Owner::Mapped(map),
            // Fetched bytes nobody else holds are ours to write. Bytes shared with a cache or
            // a memory store are copied: the only case that costs a copy (README, "Writable").
            Object::Shared(bytes) => Owner::Unique(
                bytes
                    .try_into_mut()
                    .unwrap_or_else(|s| BytesMut::from(&s[..])),
            ),
            other => Owner::Unique(BytesMut::from(other.as_slice())),
        };
        let ptr = match &mut owner {
            Owner::Mapped(map) => map.as_mut_ptr(),
            Owner::Unique(bytes) => bytes.as_mut_ptr(),
        };
        Region {
            ptr,
            len,
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
/// Writable: the writes stay in this process and never reach the store.
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
                0,
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
