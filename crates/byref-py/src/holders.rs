//! Holders as Python objects: what lifetimes release, and results they adopt.

use std::sync::Arc;

use byref::holders::{Holder, HolderKind};
use byref::{HolderTag, Key, Opened};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::PyByrefResult;
use crate::runtime::{block_on, spawn};
use crate::seconds::seconds;

/// A holder of references in one store: what a lifetime releases when it ends.
#[pyclass(frozen, name = "Holder", module = "byref._native")]
pub(crate) struct PyHolder {
    pub(crate) inner: Arc<Holder>,
    /// The URL its store's handles carry: what it adopts results by.
    url: String,
}

impl PyHolder {
    /// A new holder of `kind` (`process` or `lease`, for `lease` seconds) in `store`, its
    /// record written now; or, with `tag`, a scope of that holder (no record of its own).
    pub(crate) fn open(
        py: Python<'_>,
        opened: &Opened,
        kind: &str,
        label: &str,
        lease: Option<f64>,
        tag: Option<&str>,
    ) -> PyByrefResult<Self> {
        let backend = opened.store.clone();
        if let Some(tag) = tag {
            let tag: HolderTag = tag.parse()?;
            return Ok(PyHolder {
                inner: Arc::new(Holder::scope(backend, tag)),
                url: opened.url.clone(),
            });
        }
        let kind = HolderKind::parse(kind)?;
        let lease = lease.map(|s| seconds(s, "a lease")).transpose()?;
        if (kind == HolderKind::Lease) != lease.is_some() {
            return Err(
                PyValueError::new_err("a lease, and only a lease, takes lease=seconds").into(),
            );
        }
        let holder = block_on(py, Holder::open(backend, kind, label, lease))?;
        Ok(PyHolder {
            inner: Arc::new(holder),
            url: opened.url.clone(),
        })
    }
}

#[pymethods]
impl PyHolder {
    /// From now on it adopts, in this process, the references other processes made on its
    /// behalf as their handles arrive here (see [`adopt`]).
    fn start_adopting(&self) {
        byref::holders::adopt::start_adopting(&self.inner, &self.url);
    }

    /// Releases one of its references to `key` soon, without waiting (what a finalizer may
    /// call): a failure leaves the reference to the holder's close.
    fn release_soon(&self, key: &str) -> PyByrefResult<()> {
        let key: Key = key.parse()?;
        let holder = self.inner.clone();
        spawn(async move {
            let _ = holder.release(Some(&[key]), false).await;
        });
        Ok(())
    }

    /// The tag its references carry, 16 hex digits.
    #[getter]
    fn tag(&self) -> String {
        self.inner.tag().to_string()
    }

    /// Its record as JSON, or `None` for a scope.
    #[getter]
    fn record(&self) -> Option<String> {
        self.inner
            .record()
            .map(|r| serde_json::to_string(&r).expect("a record serializes"))
    }

    /// Releases one of its references to each of `keys` (all, then its record, if `None`); with
    /// `sweep`, also those other processes made with its tag. `(references, objects)`
    /// released.
    #[pyo3(signature = (keys = None, sweep = false))]
    fn release(
        &self,
        py: Python<'_>,
        keys: Option<Vec<String>>,
        sweep: bool,
    ) -> PyByrefResult<(u64, u64)> {
        let keys = keys
            .map(|keys| {
                keys.iter()
                    .map(|k| k.parse())
                    .collect::<Result<Vec<Key>, _>>()
            })
            .transpose()?;
        let released = block_on(py, self.inner.release(keys.as_deref(), sweep))?;
        Ok((released.references, released.objects))
    }

    /// Moves a lease's end to `seconds` from now.
    fn extend(&self, py: Python<'_>, seconds: f64) -> PyByrefResult<()> {
        let lease = crate::seconds::seconds(seconds, "a lease")?;
        Ok(block_on(py, self.inner.extend(lease))?)
    }
}

/// `(handle, key, holder)`: the handle `handle` becomes once a holder of this process adopts
/// its reference, its key, and that holder; `None` if none does (`byref::holders::adopt::adopt`).
#[pyfunction]
pub(crate) fn adopt(handle: &[u8]) -> PyByrefResult<Option<(Vec<u8>, String, PyHolder)>> {
    if !byref::holders::adopt::anyone_adopts() {
        return Ok(None);
    }
    let handle = byref::Handle::decode(handle)?;
    Ok(byref::holders::adopt::adopt(&handle).map(|(holder, kept)| {
        let holder = PyHolder {
            inner: holder,
            url: handle.url.clone(),
        };
        (kept.encode(), kept.key.to_hex(), holder)
    }))
}
