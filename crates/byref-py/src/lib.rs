//! `byref._native`: the Rust half of the `byref` Python package.
//!
//! Python pickles values (protocol 5, out-of-band buffers) and hands the stream and buffers
//! here; this module frames, hashes and stores them without copying, and fetches them back as
//! zero-copy buffers. Every blocking call releases the GIL.
//!
//! The bindings: depends on the facade and the daemon (for `byref serve`); nothing in Rust
//! depends on it, and it holds no store logic a Rust user would miss.

mod buffer;
mod daemon;
mod errors;
mod framing;
mod handle;
mod holders;
mod inventory;
mod key;
mod pid;
mod plain;
mod proxy;
mod registry;
mod runtime;
mod seconds;
mod store;
mod transfer;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::PyStore>()?;
    m.add_class::<store::Frame>()?;
    m.add_class::<buffer::Buffer>()?;
    m.add_class::<handle::PyHandle>()?;
    m.add_class::<proxy::ProxyBase>()?;
    m.add_class::<holders::PyHolder>()?;
    m.add_class::<inventory::PyInventory>()?;
    m.add_class::<inventory::Entry>()?;
    m.add_class::<inventory::GcPlan>()?;
    m.add_function(wrap_pyfunction!(store::resolve, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::target_of, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::class_name, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::pickle::reduce_handle, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::rebuild::rebuild, m)?)?;
    m.add("INLINE_MAX", byref::travel::INLINE_MAX)?;
    m.add("UNRESOLVED", proxy::unresolved(m.py()))?;
    m.add_function(wrap_pyfunction!(holders::adopt, m)?)?;
    m.add_function(wrap_pyfunction!(store::default_url, m)?)?;
    m.add_function(wrap_pyfunction!(store::resolve_async, m)?)?;
    m.add_function(wrap_pyfunction!(key::key_of, m)?)?;
    m.add_function(wrap_pyfunction!(plain::plain_pickle, m)?)?;
    m.add_function(wrap_pyfunction!(daemon::serve, m)?)?;
    m.add_function(wrap_pyfunction!(daemon::status, m)?)?;
    m.add_function(wrap_pyfunction!(daemon::close_peers, m)?)?;
    m.add_function(wrap_pyfunction!(daemon::parse_size, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::put_file, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::get_file, m)?)?;
    m.add_function(wrap_pyfunction!(transfer::stat, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The frame encodings' codes, from the one definition (Python keeps no copy).
    m.add("RAW", byref::Encoding::Raw as u8)?;
    m.add("PICKLE5", byref::Encoding::Pickle5 as u8)?;
    m.add("CLOUDPICKLE", byref::Encoding::CloudPickle as u8)?;
    m.add("DEFAULT_PROXY_THRESHOLD", byref::DEFAULT_PROXY_THRESHOLD)?;
    Ok(())
}
