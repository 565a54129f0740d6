//! Stores as Python objects: put frames in, get frames out.

use std::sync::Arc;
use std::time::Duration;

use byref::cache::process_cache;
use byref::{Encoding, Error, Key, Layout, Object, Opened, Payload, PutOptions, RefId, StoreExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::buffer::{Buffer, Region};
use crate::errors::{PyByrefResult, evicted};
use crate::handle::PyHandle;
use crate::registry;
use crate::runtime::block_on;

/// A fetched object, split into the pieces `pickle.loads(stream, buffers=buffers)` takes.
#[pyclass(frozen, module = "byref._native")]
pub(crate) struct Frame {
    /// 0 raw bytes, 1 pickle protocol 5, 2 cloudpickle.
    #[pyo3(get)]
    encoding: u8,
    /// The pickle stream.
    #[pyo3(get)]
    stream: Py<Buffer>,
    /// The out-of-band buffers, in pickling order.
    #[pyo3(get)]
    buffers: Vec<Py<Buffer>>,
}

impl Frame {
    fn new(py: Python<'_>, store: &str, key: &Key, object: Object) -> PyByrefResult<Self> {
        let layout = Layout::parse(object.as_slice(), store, key)?;
        let region = Arc::new(Region::new(object));
        let view = |range| Py::new(py, Buffer::new(region.clone(), range));
        Ok(Frame {
            encoding: layout.encoding as u8,
            stream: view(layout.stream)?,
            buffers: layout
                .buffers
                .into_iter()
                .map(view)
                .collect::<PyResult<_>>()?,
        })
    }
}

fn parse_key(key: &str) -> PyByrefResult<Key> {
    Ok(key.parse()?)
}

/// An open store. Instances for one URL share one backend connection per process.
#[pyclass(frozen, name = "Store", module = "byref._native")]
pub(crate) struct PyStore {
    /// Shared with every other Store of this URL in the process (the registry's).
    opened: Arc<Opened>,
}

#[pymethods]
impl PyStore {
    /// Opens the store `url` names (or returns the one this process already opened).
    #[new]
    fn new(py: Python<'_>, url: &str) -> PyByrefResult<Self> {
        Ok(PyStore {
            opened: registry::open(py, url)?,
        })
    }

    /// The URL handles carry: opens this store, with these options, anywhere.
    #[getter]
    fn url(&self) -> &str {
        &self.opened.url
    }

    /// Stores one frame built from `stream` and `buffers` (any contiguous buffer-protocol
    /// objects, read in place: nothing is copied into Python bytes) and returns its handle.
    #[pyo3(signature = (encoding, stream, buffers, *, evict = false, ttl = None))]
    fn put(
        &self,
        py: Python<'_>,
        encoding: u8,
        stream: pyo3_bytes::PyBytes,
        buffers: Vec<pyo3_bytes::PyBytes>,
        evict: bool,
        ttl: Option<f64>,
    ) -> PyByrefResult<PyHandle> {
        let encoding = Encoding::try_from(encoding).map_err(PyValueError::new_err)?;
        let ttl = ttl
            .map(|s| {
                Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("ttl must be > 0 seconds, not {s}"))
                    })
            })
            .transpose()?;
        let buffers = buffers
            .into_iter()
            .map(pyo3_bytes::PyBytes::into_inner)
            .collect();
        let payload = Payload::frame(encoding, stream.into_inner(), buffers);
        let options = PutOptions {
            ttl,
            ..PutOptions::new()
        };
        let store = &self.opened.store;
        // `payload` borrows Python buffers: it is dropped here, with the GIL held, not in the
        // detached closure.
        let key = block_on(py, store.put_payload(&payload, &options))?;
        Ok(PyHandle {
            inner: byref::Handle {
                url: self.opened.url.clone(),
                key,
                len: payload.len(),
                evict: evict.then_some(options.reference),
            },
        })
    }

    /// Fetches (and unless `verify=false`, verifies) the object `key`.
    fn get(&self, py: Python<'_>, key: &str) -> PyByrefResult<Frame> {
        let key = parse_key(key)?;
        let object = block_on(py, self.opened.fetch(&key, None))?;
        Frame::new(py, &self.opened.url, &key, object)
    }

    /// Whether `key` is stored.
    fn exists(&self, py: Python<'_>, key: &str) -> PyByrefResult<bool> {
        let key = parse_key(key)?;
        Ok(block_on(py, self.opened.store.head(&key))?.is_some())
    }

    /// Drops one reference to `key`; returns whether that deleted the object.
    fn evict(&self, py: Python<'_>, key: &str) -> PyByrefResult<bool> {
        let key = parse_key(key)?;
        let deleted = block_on(py, self.opened.store.release(&key, None))?;
        if deleted {
            process_cache().remove(&key);
        }
        Ok(deleted)
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.opened.url)
    }
}

/// Fetches the object a pickled handle names, from the store its URL opens; releases the
/// handle's reference if it was made with `evict=True`.
#[pyfunction]
pub(crate) fn resolve(py: Python<'_>, handle: &[u8]) -> PyByrefResult<Frame> {
    let handle = byref::Handle::decode(handle)?;
    let opened = registry::open_for_handle(py, &handle.url)?;
    let key = handle.key;
    let evict: Option<RefId> = handle.evict;
    let object = block_on(py, async {
        let object = opened.fetch(&key, Some(handle.len)).await?;
        if let Some(reference) = &evict {
            match opened.store.release(&key, Some(reference)).await {
                Ok(deleted) => {
                    if deleted {
                        process_cache().remove(&key);
                    }
                }
                // A reference the object does not hold: released already (a second resolve
                // while others still hold the object), or forged in the handle. The value
                // was fetched and checked; nothing else is released, and it is returned.
                Err(Error::ReferenceGone { .. } | Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(object)
    });
    let object = object.map_err(|e| match evict {
        Some(_) => evicted(e),
        None => e.into(),
    })?;
    Frame::new(py, &opened.url, &key, object)
}
