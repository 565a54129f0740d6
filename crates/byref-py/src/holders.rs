//! Holders and inventories as Python objects: lifetimes' releases, `ls`, `du` and `gc`.

use std::sync::Arc;
use std::time::Duration;

use byref::holders::{Holder, HolderKind, Liveness};
use byref::inventory::{self, GcOptions, Inventory, Plan};
use byref::{HolderTag, Key, unix_now};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::PyByrefResult;
use crate::runtime::{block_on, spawn};
use crate::store::PyStore;

/// `s` seconds, which must be more than none: a TTL, a lease, an age.
pub(crate) fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be > 0 seconds, not {s}")))
}

/// A holder of references in one store: what a lifetime releases when it ends.
#[pyclass(frozen, name = "Holder", module = "byref._native")]
pub(crate) struct PyHolder {
    pub(crate) inner: Arc<Holder>,
    /// The URL its store's handles carry: what it adopts results by.
    url: String,
}

#[pymethods]
impl PyHolder {
    /// A new holder of `kind` (`process` or `lease`, for `lease` seconds) in `store`, its
    /// record written now; or, with `tag`, a scope of that holder (no record of its own).
    #[new]
    #[pyo3(signature = (store, kind = "process", label = "", lease = None, tag = None))]
    fn new(
        py: Python<'_>,
        store: &PyStore,
        kind: &str,
        label: &str,
        lease: Option<f64>,
        tag: Option<&str>,
    ) -> PyByrefResult<Self> {
        let backend = store.opened().store.clone();
        if let Some(tag) = tag {
            let tag: HolderTag = tag.parse()?;
            return Ok(PyHolder {
                inner: Arc::new(Holder::scope(backend, tag)),
                url: store.opened().url.clone(),
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
            url: store.opened().url.clone(),
        })
    }

    /// From now on it adopts, in this process, the references other processes made on its
    /// behalf as their handles arrive here (see [`adopt`]).
    fn start_adopting(&self) {
        byref::adopt::start_adopting(&self.inner, &self.url);
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
        let lease = self::seconds(seconds, "a lease")?;
        Ok(block_on(py, self.inner.extend(lease))?)
    }
}

/// `(handle, key, holder)`: the handle `handle` becomes once a holder of this process adopts
/// its reference, its key, and that holder; `None` if none does (`byref::adopt::adopt`).
#[pyfunction]
pub(crate) fn adopt(handle: &[u8]) -> PyByrefResult<Option<(Vec<u8>, String, PyHolder)>> {
    if !byref::adopt::anyone_adopts() {
        return Ok(None);
    }
    let handle = byref::Handle::decode(handle)?;
    Ok(byref::adopt::adopt(&handle).map(|(holder, kept)| {
        let holder = PyHolder {
            inner: holder,
            url: handle.url.clone(),
        };
        (kept.encode(), kept.key.to_hex(), holder)
    }))
}

/// A store's objects and their holders, as listed at one moment.
#[pyclass(frozen, name = "Inventory", module = "byref._native")]
pub(crate) struct PyInventory {
    inner: Inventory,
}

/// Objects, as rows: `(key, size, kind, age in seconds, holder tags, is a holder record)`.
type Row = (
    String,
    u64,
    Option<&'static str>,
    Option<u64>,
    Vec<String>,
    bool,
);

#[pymethods]
impl PyInventory {
    /// Every object: `(key, size, kind, age in seconds, holder tags, is a record)`; the age is
    /// that of its oldest reference.
    fn objects(&self) -> Vec<Row> {
        let now = unix_now();
        self.inner
            .objects
            .iter()
            .map(|l| {
                let oldest = l.references.iter().filter_map(|r| r.created()).min();
                let mut tags: Vec<String> = l
                    .references
                    .iter()
                    .map(|r| r.holder().to_string())
                    .collect();
                tags.sort();
                (
                    l.key.to_hex(),
                    l.len,
                    self.inner.kinds.get(&l.key).copied(),
                    oldest.map(|t| now.saturating_sub(t)),
                    tags,
                    self.inner.records.contains_key(&l.key),
                )
            })
            .collect()
    }

    /// Each holder with a record: `tag -> (record JSON, liveness, why)`, the liveness one of
    /// `alive`, `gone`, `unknown` as judged from this host now.
    fn holders(&self) -> std::collections::HashMap<String, (String, &'static str, String)> {
        let now = unix_now();
        self.inner
            .holders
            .iter()
            .map(|(tag, record)| {
                let (state, why) = match record.liveness(now) {
                    Liveness::Alive => ("alive", String::new()),
                    Liveness::Gone(why) => ("gone", why),
                    Liveness::Unknown(why) => ("unknown", why),
                };
                let json = serde_json::to_string(record).expect("a record serializes");
                (tag.to_string(), (json, state, why))
            })
            .collect()
    }

    /// What `gc` would drop: see [`GcPlan`].
    #[pyo3(signature = (dead = false, older_than = None, holder = None))]
    fn plan(
        &self,
        dead: bool,
        older_than: Option<f64>,
        holder: Option<&str>,
    ) -> PyByrefResult<GcPlan> {
        let options = GcOptions {
            dead,
            older_than: older_than.map(|s| seconds(s, "older_than")).transpose()?,
            holder: holder.map(str::parse).transpose()?,
        };
        Ok(GcPlan {
            inner: self.inner.plan(&options),
        })
    }
}

/// What `gc` would drop, until applied.
#[pyclass(frozen, name = "GcPlan", module = "byref._native")]
pub(crate) struct GcPlan {
    inner: Plan,
}

#[pymethods]
impl GcPlan {
    /// The references to drop: `(key, reference, holder tag, why)`.
    #[getter]
    fn drops(&self) -> Vec<(String, String, String, String)> {
        self.inner
            .drops
            .iter()
            .map(|d| {
                (
                    d.key.to_hex(),
                    d.reference.to_string(),
                    d.reference.holder().to_string(),
                    d.why.clone(),
                )
            })
            .collect()
    }

    /// Objects that go with their last reference.
    #[getter]
    fn objects(&self) -> u64 {
        self.inner.objects
    }

    /// Their bytes.
    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.bytes
    }

    /// References kept because their holder cannot be checked from here, by why.
    #[getter]
    fn unknown(&self) -> std::collections::HashMap<String, u64> {
        self.inner.unknown.clone()
    }
}

impl PyStore {
    pub(crate) fn take_inventory(&self, py: Python<'_>, kinds: bool) -> PyByrefResult<PyInventory> {
        let store = self.opened().store.clone();
        let inner = block_on(
            py,
            async move { inventory::take(store.as_ref(), kinds).await },
        )?;
        Ok(PyInventory { inner })
    }

    pub(crate) fn apply_plan(&self, py: Python<'_>, plan: &GcPlan) -> PyByrefResult<(u64, u64)> {
        let store = self.opened().store.clone();
        let released = block_on(py, async move {
            inventory::apply(store.as_ref(), &plan.inner).await
        })?;
        Ok((released.references, released.objects))
    }
}
