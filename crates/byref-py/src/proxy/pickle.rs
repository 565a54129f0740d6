//! How a proxy pickles (the rule in `byref.proxy`'s docstring): unresolved, as its handle;
//! holding its value, as [`byref::travel`] decides — its own handle while the value is
//! unchanged, else the value, inline or stored again (those two carried out by
//! `byref.pickling`, which holds the Python objects they need).
//!
//! Native because a small value's round trip pickles a proxy once: here that costs the
//! value's serialization and hash, and no Python frame of byref's.

use byref::travel::{Travel, how_a_value_travels};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyComplex, PyFloat, PyInt, PyRange, PyString, PyTuple};

use super::ProxyBase;
use crate::framing::ValueFrame;
use crate::key::frame_key;

/// What pickles as an unresolved proxy of `handle` whose target is a `kind`, of a proxy class
/// with the optional-method bits `methods` (none: one element fewer), rebuilt by `byref._p`.
#[pyfunction]
pub(crate) fn reduce_handle<'py>(
    py: Python<'py>,
    handle: &Bound<'py, PyBytes>,
    kind: Option<&Bound<'py, PyString>>,
    methods: u32,
) -> PyResult<Bound<'py, PyTuple>> {
    static REBUILD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let rebuild = REBUILD.import(py, "byref", "_p")?;
    let code = match kind {
        Some(kind) => match byref::kinds::code_of(kind.to_str()?) {
            Some(code) => code.into_pyobject(py)?.into_any(),
            None => kind.clone().into_any(),
        },
        None => py.None().into_bound(py),
    };
    let args = if methods == 0 {
        PyTuple::new(py, [handle.as_any(), &code])?
    } else {
        PyTuple::new(
            py,
            [handle.as_any(), &code, methods.into_pyobject(py)?.as_any()],
        )?
    };
    PyTuple::new(py, [rebuild.as_any(), args.as_any()])
}

/// Whether instances of `value`'s class cannot change: a proxy of one needs no hashing to
/// tell that its value is unchanged.
fn immutable(value: &Bound<'_, PyAny>) -> bool {
    value.is_none()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyBytes>()
        || value.is_exact_instance_of::<PyComplex>()
        || value.is_exact_instance_of::<PyRange>()
}

/// `proxy.__reduce_ex__(protocol)`, with the proxy's lock held.
pub(crate) fn reduce<'py>(
    proxy: &Bound<'py, ProxyBase>,
    protocol: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = proxy.py();
    let base = proxy.get();
    let methods: u32 = proxy
        .get_type()
        .getattr(pyo3::intern!(py, "_byref_optional_methods"))?
        .extract()?;
    let handle = base._byref_handle(py).into_bound(py);
    let kind = base._byref_kind(py).map(|k| k.into_bound(py));
    let Some(target) = base.target(py) else {
        return Ok(reduce_handle(py, &handle, kind.as_ref(), methods)?.into_any());
    };
    let target = target.into_bound(py);
    let decoded =
        byref::Handle::decode(handle.as_bytes()).map_err(crate::errors::PyByrefError::from)?;
    let owns = base._byref_owns_handle();
    let frame = if owns && immutable(&target) {
        None
    } else {
        Some(ValueFrame::of(&target)?)
    };
    let (unchanged, len) = match &frame {
        None => (true, 0),
        // The stream it was stored as, again: unchanged, no hashing.
        Some(ValueFrame::Plain(stream)) if owns && base.holds_stream(stream) => (true, 0),
        Some(frame) => {
            let payload = frame.payload()?;
            (
                owns && frame_key(py, &payload) == decoded.key,
                payload.len(),
            )
        }
    };
    let evict = decoded.evict.is_some();
    static PICKLING: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let pickling = || {
        PICKLING
            .get_or_try_init(py, || py.import("byref.pickling").map(Bound::unbind))
            .map(|m| m.bind(py))
    };
    // What `byref.pickling` takes, made only when the value travels.
    let parts = || frame.map(|frame| frame.into_parts(py)).transpose();
    match how_a_value_travels(unchanged, evict, len) {
        Travel::OwnHandle { last } => {
            if last {
                base._byref_hand_on_once();
            }
            Ok(reduce_handle(py, &handle, kind.as_ref(), methods)?.into_any())
        }
        Travel::Inline => {
            static REBUILD_VALUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            let rebuild = REBUILD_VALUE.import(py, "byref.proxy", "_inline")?;
            pickling()?.call_method1(
                pyo3::intern!(py, "reduce_inline"),
                (parts()?, protocol, rebuild),
            )
        }
        Travel::StoredAgain => pickling()?.call_method1(
            pyo3::intern!(py, "reduce_stored_again"),
            (proxy, &target, parts()?, decoded.url, evict),
        ),
    }
}
