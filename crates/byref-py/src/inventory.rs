//! Inventories as Python objects: `ls`, `du` and `gc`.

use std::sync::Arc;

use byref::holders::Liveness;
use byref::inventory::{self, GcOptions, Inventory, Plan};
use byref::{Store, unix_now};
use pyo3::prelude::*;

use crate::errors::PyByrefResult;
use crate::runtime::block_on;
use crate::seconds::seconds;

/// A store's objects and their holders, as listed at one moment.
#[pyclass(frozen, name = "Inventory", module = "byref._native")]
pub(crate) struct PyInventory {
    inner: Inventory,
}

/// One listed object.
#[pyclass(frozen, get_all, name = "InventoryEntry", module = "byref._native")]
pub(crate) struct Entry {
    key: String,
    size: u64,
    /// What it is, read from its first bytes (`None` if not asked or unknown).
    kind: Option<&'static str>,
    /// Seconds since its oldest reference was made (`None` if no reference says).
    age: Option<u64>,
    /// The holder tags of its references, sorted.
    holders: Vec<String>,
    /// Whether it is a holder's record rather than data.
    is_record: bool,
}

#[pymethods]
impl PyInventory {
    /// Every object.
    fn objects(&self) -> Vec<Entry> {
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
                Entry {
                    key: l.key.to_hex(),
                    size: l.len,
                    kind: self.inner.kinds.get(&l.key).copied(),
                    age: oldest.map(|t| now.saturating_sub(t)),
                    holders: tags,
                    is_record: self.inner.records.contains_key(&l.key),
                }
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

    /// What `gc` would release: see [`GcPlan`].
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

/// What `gc` would release, until applied.
#[pyclass(frozen, name = "GcPlan", module = "byref._native")]
pub(crate) struct GcPlan {
    inner: Plan,
}

#[pymethods]
impl GcPlan {
    /// The references to release: `(key, reference, holder tag, why)`.
    #[getter]
    fn releases(&self) -> Vec<(String, String, String, String)> {
        self.inner
            .releases
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

/// Lists `store` and reads its holder records (and, with `kinds`, what each object is).
pub(crate) fn take(
    py: Python<'_>,
    store: Arc<dyn Store>,
    kinds: bool,
) -> PyByrefResult<PyInventory> {
    let inner = block_on(
        py,
        async move { inventory::take(store.as_ref(), kinds).await },
    )?;
    Ok(PyInventory { inner })
}

/// Releases what `plan` lists from `store`; `(references, objects)` released.
pub(crate) fn apply(
    py: Python<'_>,
    store: Arc<dyn Store>,
    plan: &GcPlan,
) -> PyByrefResult<(u64, u64)> {
    let released = block_on(py, async move {
        inventory::apply(store.as_ref(), &plan.inner).await
    })?;
    Ok((released.references, released.objects))
}
