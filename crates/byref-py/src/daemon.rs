//! The store daemon inside the extension, so that `byref serve` needs no Rust toolchain, and
//! its status query.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use byref::{Error, StoreUrl};
use byref_daemon::{Daemon, Options};
use byref_quic::QuicStore;
use pyo3::prelude::*;

use crate::errors::{PyByrefError, PyByrefResult};
use crate::runtime::block_on;

fn config(e: impl std::fmt::Display) -> PyByrefError {
    Error::Config(e.to_string()).into()
}

/// Serves a store on `listen` until SIGINT or SIGTERM; prints the URL clients open first.
#[pyfunction]
#[pyo3(signature = (listen, dir, memory_limit, disk_limit = None, metrics = None, max_connections = 1024))]
pub(crate) fn serve(
    py: Python<'_>,
    listen: &str,
    dir: PathBuf,
    memory_limit: u64,
    disk_limit: Option<u64>,
    metrics: Option<&str>,
    max_connections: usize,
) -> PyByrefResult<()> {
    let listen: SocketAddr = listen.parse().map_err(config)?;
    let metrics: Option<SocketAddr> = metrics.map(str::parse).transpose().map_err(config)?;
    let token = byref_quic::token::server_token().map_err(config)?;
    let mut options = Options::new(dir);
    options.memory_limit = memory_limit;
    options.disk_limit = disk_limit.unwrap_or(u64::MAX);
    options.max_connections = max_connections;
    let daemon = Arc::new(Daemon::open(options, token)?);
    py.detach(|| byref_daemon::serve_on_every_core(daemon, listen, metrics))
        .map_err(|e| Error::backend("byref serve", e).into())
}

/// The status of the daemon at `url` (Prometheus text).
#[pyfunction]
pub(crate) fn status(py: Python<'_>, url: &str) -> PyByrefResult<String> {
    let url = StoreUrl::parse(url)?;
    let store = py.detach(|| QuicStore::open(url))?;
    Ok(block_on(py, async move { store.status().await })?)
}

/// Closes the peer stores this process serves (at exit): connected workers are told at once.
#[pyfunction]
pub(crate) fn close_peers(py: Python<'_>) {
    block_on(py, byref_peer::close_all());
}

/// `8GiB`, `512MB`, `1000` to bytes, by the rule of every size option (`byref serve --memory`).
#[pyfunction]
pub(crate) fn parse_size(text: &str) -> PyResult<u64> {
    byref::parse_size(text).map_err(pyo3::exceptions::PyValueError::new_err)
}
