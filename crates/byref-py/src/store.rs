//! Stores as Python objects: put frames in, get frames out.

use std::sync::Arc;
use std::time::Duration;

use byref::{Encoding, Key, Layout, Object, Opened, Payload, PutOptions, RefId, StoreExt};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::buffer::{Buffer, Region};
use crate::errors::{evicted_to_py, to_py};
use crate::handle::PyHandle;
use crate::runtime::block_on;
use crate::{cache, registry};

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
    fn new(py: Python<'_>, store: &str, key: &Key, object: Object) -> PyResult<Self> {
        let layout = Layout::parse(object.as_slice(), store, key).map_err(to_py)?;
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

/// Fetches `key`, from this process's cache when it has it.
async fn fetch(opened: &Opened, key: &Key) -> byref::Result<Object> {
    if let Some(data) = cache::cache().get(key) {
        return Ok(Object::Shared(data));
    }
    let object = opened.store.get_verified(key, opened.verify).await?;
    if let Object::Shared(data) = &object {
        cache::cache().offer(*key, data);
    }
    Ok(object)
}

fn parse_key(key: &str) -> PyResult<Key> {
    key.parse().map_err(to_py)
}

/// An open store. Instances for one URL share one backend connection per process.
#[pyclass(frozen, name = "Store", module = "byref._native")]
pub(crate) struct PyStore {
    opened: Arc<Opened>,
}

#[pymethods]
impl PyStore {
    /// Opens the store `url` names (or returns the one this process already opened).
    #[new]
    fn new(url: &str) -> PyResult<Self> {
        registry::open(url)
            .map(|opened| PyStore { opened })
            .map_err(to_py)
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
    ) -> PyResult<PyHandle> {
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
        let key = block_on(py, store.put_payload(&payload, &options)).map_err(to_py)?;
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
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Frame> {
        let key = parse_key(key)?;
        let object = block_on(py, fetch(&self.opened, &key)).map_err(to_py)?;
        Frame::new(py, &self.opened.url, &key, object)
    }

    /// Whether `key` is stored.
    fn exists(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let key = parse_key(key)?;
        Ok(block_on(py, self.opened.store.head(&key))
            .map_err(to_py)?
            .is_some())
    }

    /// Drops one reference to `key`; returns whether that deleted the object.
    fn evict(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let key = parse_key(key)?;
        let deleted = block_on(py, self.opened.store.release(&key, None)).map_err(to_py)?;
        if deleted {
            cache::cache().remove(&key);
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
pub(crate) fn resolve(py: Python<'_>, handle: &[u8]) -> PyResult<Frame> {
    let handle = byref::Handle::decode(handle).map_err(to_py)?;
    let opened = registry::open(&handle.url).map_err(to_py)?;
    let key = handle.key;
    let evict: Option<RefId> = handle.evict;
    let object = block_on(py, async {
        let object = fetch(&opened, &key).await?;
        if let Some(reference) = &evict
            && opened.store.release(&key, Some(reference)).await?
        {
            cache::cache().remove(&key);
        }
        Ok(object)
    });
    let object = object.map_err(if evict.is_some() {
        evicted_to_py
    } else {
        to_py
    })?;
    Frame::new(py, &opened.url, &key, object)
}
