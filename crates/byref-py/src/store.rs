//! Stores as Python objects: put frames in, get frames out.

use std::sync::Arc;
use std::time::Duration;

use byref::holders::Holder;
use byref::{Encoding, Key, Layout, Object, Opened, Payload, PutOptions, StoreExt};
use futures::{StreamExt, TryStreamExt, stream};
use pyo3::prelude::*;

use crate::buffer::{Buffer, Region};
use crate::errors::{PyByrefResult, evicted};
use crate::framing::{FrameParts, ValueFrame, payload_of};
use crate::handle::PyHandle;
use crate::holders::PyHolder;
use crate::inventory::{self, GcPlan, PyInventory};
use crate::registry;
use crate::runtime::{GIL_HELD_MAX, awaitable, block_on, block_on_small};
use crate::seconds::seconds;

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
    /// The stream, if it is a pickle with nothing out of band: `pickle.loads` alone
    /// rebuilds it.
    pub(crate) fn plain_stream(&self) -> Option<&Py<Buffer>> {
        (self.encoding == Encoding::Pickle5 as u8 && self.buffers.is_empty())
            .then_some(&self.stream)
    }

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

/// How many requests a batch call has open at a store at once: enough to fill a network round
/// trip with small objects (1 KiB gets from the daemon: 37,000-53,000/s with 256 against
/// 35,000/s with 64), few enough that one call cannot flood a shared server.
const IN_FLIGHT: usize = 256;

/// A fetched object on its way to Python (from a future: it becomes a [`Frame`] where the GIL
/// is held).
pub(crate) struct Fetched {
    url: String,
    key: Key,
    object: Object,
}

impl Fetched {
    /// The pickle stream, if the object is a pickle with nothing out of band: `pickle.loads`
    /// alone rebuilds it.
    pub(crate) fn plain_stream(&self) -> PyByrefResult<Option<&[u8]>> {
        let bytes = self.object.as_slice();
        let layout = Layout::parse(bytes, &self.url, &self.key)?;
        let plain = layout.encoding == Encoding::Pickle5 && layout.buffers.is_empty();
        Ok(plain.then(|| &bytes[layout.stream]))
    }

    /// The object as a [`Frame`]: views of its stream and buffers, in place.
    pub(crate) fn into_frame(self, py: Python<'_>) -> PyByrefResult<Frame> {
        Frame::new(py, &self.url, &self.key, self.object)
    }
}

impl<'py> IntoPyObject<'py> for Fetched {
    type Target = Frame;
    type Output = Bound<'py, Frame>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Self::Output> {
        Bound::new(py, self.into_frame(py)?)
    }
}

/// A flat and plain value's stream up to this long stays with its handle, for a proxy to tell
/// its value unchanged by (a longer one is hashed again rather than kept twice in memory).
const KEPT_STREAM_MAX: usize = 4 * 1024;

/// One put, ready to run: the payload holds the Python buffers it reads in place.
struct PutJob {
    payload: Payload,
    /// The TTL; the reference comes from the holder when the put runs.
    ttl: Option<Duration>,
    /// Whether the handle releases its reference on first resolve.
    evict: bool,
    /// Who holds the reference: a lifetime's holder, else nobody in particular.
    holder: Option<Arc<Holder>>,
    /// The stream of a flat and plain value's frame, written here (for its handle).
    plain_stream: Option<bytes::Bytes>,
}

impl PutJob {
    fn new(
        payload: Payload,
        evict: bool,
        ttl: Option<f64>,
        holder: Option<&PyHolder>,
    ) -> PyResult<Self> {
        let ttl = ttl.map(|s| seconds(s, "ttl")).transpose()?;
        Ok(PutJob {
            payload,
            plain_stream: None,
            ttl,
            evict,
            holder: holder.map(|h| h.inner.clone()),
        })
    }

    async fn run(&self, opened: &Opened) -> byref::Result<PyHandle> {
        let options = PutOptions {
            ttl: self.ttl,
            ..self
                .holder
                .as_ref()
                .map_or_else(PutOptions::new, |h| h.put_options())
        };
        let key = opened.store.put_payload(&self.payload, &options).await?;
        if let Some(holder) = &self.holder {
            holder.hold(key, options.reference);
        }
        Ok(PyHandle {
            inner: byref::Handle::new(
                &opened.url,
                key,
                self.payload.len(),
                self.evict.then_some(options.reference),
            ),
            plain_stream: self.plain_stream.clone(),
        })
    }
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

    /// The store a handle names, opened with a handle's trust ([`byref::open_for_handle`]):
    /// where a changed proxy is stored again. It sends no global secret to a host only the
    /// handle named, starts no server, makes no directory.
    #[staticmethod]
    fn for_handle(py: Python<'_>, url: &str) -> PyByrefResult<Self> {
        Ok(PyStore {
            opened: registry::open_for_handle(py, url)?,
        })
    }

    /// The URL handles carry: opens this store, with these options, anywhere.
    #[getter]
    fn url(&self) -> &str {
        &self.opened.url
    }

    #[getter]
    fn proxy_threshold(&self) -> u64 {
        self.opened.proxy_threshold
    }

    /// Stores one frame built from `stream` and `buffers` (any contiguous buffer-protocol
    /// objects, read in place: nothing is copied into Python bytes) and returns its handle.
    #[pyo3(signature = (encoding, stream, buffers, *, evict = false, ttl = None, holder = None))]
    #[allow(clippy::too_many_arguments)]
    fn put(
        &self,
        py: Python<'_>,
        encoding: u8,
        stream: pyo3_bytes::PyBytes,
        buffers: Vec<pyo3_bytes::PyBytes>,
        evict: bool,
        ttl: Option<f64>,
        holder: Option<PyRef<'_, PyHolder>>,
    ) -> PyByrefResult<PyHandle> {
        let payload = payload_of((encoding, stream, buffers))?;
        self.run(py, PutJob::new(payload, evict, ttl, holder.as_deref())?)
    }

    /// Stores `value`, pickled as `byref.serialize.dumps` pickles it (a flat and plain one
    /// without a Python frame), and returns its handle: [`PyStore::put`] of its frame.
    #[pyo3(signature = (value, *, evict = false, ttl = None, holder = None))]
    fn put_value(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        evict: bool,
        ttl: Option<f64>,
        holder: Option<PyRef<'_, PyHolder>>,
    ) -> PyByrefResult<PyHandle> {
        let frame = ValueFrame::of(value)?;
        let mut job = PutJob::new(frame.payload()?, evict, ttl, holder.as_deref())?;
        if let ValueFrame::Plain(stream) = frame {
            job.plain_stream = (stream.len() <= KEPT_STREAM_MAX).then_some(stream);
        }
        self.run(py, job)
    }

    /// [`PyStore::put`] of many frames, `(encoding, stream, buffers)` each, up to
    /// [`IN_FLIGHT`] at once; their handles in order. Stops at the first error.
    #[pyo3(signature = (frames, *, evict = false, ttl = None, holder = None))]
    fn put_many(
        &self,
        py: Python<'_>,
        frames: Vec<FrameParts>,
        evict: bool,
        ttl: Option<f64>,
        holder: Option<PyRef<'_, PyHolder>>,
    ) -> PyByrefResult<Vec<PyHandle>> {
        let jobs = frames
            .into_iter()
            .map(|parts| PutJob::new(payload_of(parts)?, evict, ttl, holder.as_deref()))
            .collect::<PyResult<Vec<_>>>()?;
        let opened = &self.opened;
        let puts = stream::iter(jobs.iter().map(|job| job.run(opened)));
        Ok(block_on(py, puts.buffered(IN_FLIGHT).try_collect())?)
    }

    /// An awaitable of [`PyStore::put`], run on byref's runtime.
    #[pyo3(signature = (encoding, stream, buffers, *, evict = false, ttl = None, holder = None))]
    #[allow(clippy::too_many_arguments)]
    fn put_async<'py>(
        &self,
        py: Python<'py>,
        encoding: u8,
        stream: pyo3_bytes::PyBytes,
        buffers: Vec<pyo3_bytes::PyBytes>,
        evict: bool,
        ttl: Option<f64>,
        holder: Option<PyRef<'py, PyHolder>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let payload = payload_of((encoding, stream, buffers))?;
        let job = PutJob::new(payload, evict, ttl, holder.as_deref())?;
        let opened = self.opened.clone();
        awaitable(py, async move { Ok(job.run(&opened).await?) })
    }

    /// Fetches (and unless `verify=false`, verifies) the object `key`.
    fn get(&self, py: Python<'_>, key: &str) -> PyByrefResult<Frame> {
        let key = parse_key(key)?;
        let object = block_on(py, self.opened.fetch(&key, None, None))?;
        Frame::new(py, &self.opened.url, &key, object)
    }

    /// [`PyStore::get`] of many keys, up to [`IN_FLIGHT`] at once; their frames in order.
    fn get_many(&self, py: Python<'_>, keys: Vec<String>) -> PyByrefResult<Vec<Frame>> {
        let keys = keys
            .iter()
            .map(|key| parse_key(key))
            .collect::<PyByrefResult<Vec<_>>>()?;
        let opened = &self.opened;
        let fetches = stream::iter(keys.iter().map(|key| opened.fetch(key, None, None)));
        let objects: Vec<Object> = block_on(py, fetches.buffered(IN_FLIGHT).try_collect())?;
        keys.iter()
            .zip(objects)
            .map(|(key, object)| Frame::new(py, &opened.url, key, object))
            .collect()
    }

    /// An awaitable of [`PyStore::get`], run on byref's runtime.
    fn get_async<'py>(&self, py: Python<'py>, key: &str) -> PyByrefResult<Bound<'py, PyAny>> {
        let key = parse_key(key)?;
        let opened = self.opened.clone();
        Ok(awaitable(py, async move {
            let object = opened.fetch(&key, None, None).await?;
            Ok(Fetched {
                url: opened.url.clone(),
                key,
                object,
            })
        })?)
    }

    /// Whether `key` is stored.
    fn exists(&self, py: Python<'_>, key: &str) -> PyByrefResult<bool> {
        let key = parse_key(key)?;
        Ok(block_on(py, self.opened.store.head(&key))?.is_some())
    }

    /// Releases one reference to `key` (ProxyStore's name for it: evict); returns whether
    /// that deleted the object.
    fn evict(&self, py: Python<'_>, key: &str) -> PyByrefResult<bool> {
        let key = parse_key(key)?;
        Ok(block_on(
            py,
            byref::release(self.opened.store.as_ref(), &key, None),
        )?)
    }

    /// Lists the store and reads its holder records (and, with `kinds`, what each object
    /// is, from its first bytes).
    #[pyo3(signature = (kinds = true))]
    fn inventory(&self, py: Python<'_>, kinds: bool) -> PyByrefResult<PyInventory> {
        inventory::take(py, self.opened.store.clone(), kinds)
    }

    /// Releases what `plan` lists; `(references, objects)` released.
    fn gc(&self, py: Python<'_>, plan: &GcPlan) -> PyByrefResult<(u64, u64)> {
        inventory::apply(py, self.opened.store.clone(), plan)
    }

    /// A new holder of `kind` (`process` or `lease`, for `lease` seconds) in this store, its
    /// record written now; or, with `tag`, a scope of that holder (no record of its own).
    #[pyo3(signature = (kind = "process", label = "", lease = None, tag = None))]
    fn holder(
        &self,
        py: Python<'_>,
        kind: &str,
        label: &str,
        lease: Option<f64>,
        tag: Option<&str>,
    ) -> PyByrefResult<PyHolder> {
        PyHolder::open(py, &self.opened, kind, label, lease, tag)
    }

    fn __repr__(&self) -> String {
        format!("Store({:?})", self.opened.url)
    }
}

impl PyStore {
    /// Runs one put.
    fn run(&self, py: Python<'_>, job: PutJob) -> PyByrefResult<PyHandle> {
        let small = self.opened.store.capabilities().in_memory && job.payload.len() <= GIL_HELD_MAX;
        // `job` borrows Python buffers: it is dropped here, with the GIL held, not in the
        // detached closure.
        Ok(block_on_small(py, small, job.run(&self.opened))?)
    }
}

/// Fetches the object `handle` names from `opened`; releases the handle's reference if it was
/// made with `evict=True`.
async fn resolve_object(opened: &Opened, handle: &byref::Handle) -> PyByrefResult<Object> {
    byref::resolve(opened, handle)
        .await
        .map_err(|e| match handle.evict {
            Some(_) => evicted(e),
            None => e.into(),
        })
}

/// Fetches the object a pickled handle names, from the store its URL opens; releases the
/// handle's reference if it was made with `evict=True`.
pub(crate) fn fetch_for_handle(py: Python<'_>, handle: &[u8]) -> PyByrefResult<Fetched> {
    let handle = byref::Handle::decode(handle)?;
    let opened = registry::open_for_handle(py, &handle.url)?;
    // Unverified, an in-memory store's resolve copies nothing: small whatever the object.
    let small = opened.store.capabilities().in_memory && !opened.verify;
    let object = block_on_small(py, small, resolve_object(&opened, &handle))?;
    Ok(Fetched {
        url: opened.url.clone(),
        key: handle.key,
        object,
    })
}

/// [`fetch_for_handle`], as a [`Frame`].
#[pyfunction]
pub(crate) fn resolve(py: Python<'_>, handle: &[u8]) -> PyByrefResult<Frame> {
    fetch_for_handle(py, handle)?.into_frame(py)
}

/// An awaitable of [`resolve`], run on byref's runtime. Opening a store not opened before
/// in this process happens first, on the calling thread.
#[pyfunction]
pub(crate) fn resolve_async<'py>(
    py: Python<'py>,
    handle: &[u8],
) -> PyByrefResult<Bound<'py, PyAny>> {
    let handle = byref::Handle::decode(handle)?;
    let opened = registry::open_for_handle(py, &handle.url)?;
    Ok(awaitable(py, async move {
        let object = resolve_object(&opened, &handle).await?;
        Ok(Fetched {
            url: opened.url.clone(),
            key: handle.key,
            object,
        })
    })?)
}

/// The default store's URL ([`byref::default_url`]): one rule for Rust and Python.
#[pyfunction]
pub(crate) fn default_url() -> PyByrefResult<String> {
    Ok(byref::default_url()?)
}
