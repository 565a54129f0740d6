//! `byref put/get/stat` (`byref::transfer`), with a progress bar on the terminal (none when
//! stderr is not one).

use std::path::PathBuf;
use std::time::Duration;

use byref::Key;
use byref::transfer::{self, Meter};
use indicatif::{ProgressBar, ProgressStyle};
use pyo3::prelude::*;

use crate::errors::PyByrefResult;
use crate::registry;
use crate::runtime::block_on;

/// A transfer's progress as an indicatif bar.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Bar(bar)
    }
}

impl Meter for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        self.0.set_message(name);
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Stores the file at `path` as raw bytes and returns its key.
#[pyfunction]
#[pyo3(signature = (url, path, ttl = None))]
pub(crate) fn put_file(
    py: Python<'_>,
    url: &str,
    path: PathBuf,
    ttl: Option<f64>,
) -> PyByrefResult<String> {
    let opened = registry::open(py, url)?;
    let ttl = ttl.map(Duration::from_secs_f64);
    // The file is read with blocking calls: fine, this future runs on the calling thread.
    let key = block_on(py, async move {
        transfer::put_file(&opened, &path, ttl, &Bar::new()).await
    })?;
    Ok(key.to_string())
}

/// The stored size, encoding and buffer count of `key`.
#[pyfunction]
pub(crate) fn stat(py: Python<'_>, url: &str, key: &str) -> PyByrefResult<(u64, String, usize)> {
    let key: Key = key.parse()?;
    let opened = registry::open(py, url)?;
    let (len, layout, _) = block_on(py, transfer::layout(&opened, &key))?;
    Ok((len, layout.encoding.name().to_owned(), layout.buffers.len()))
}

/// Writes the raw bytes stored under `key` to `path` (stdout if `None`); returns their length.
/// A failed or corrupted fetch leaves no partial file behind.
#[pyfunction]
#[pyo3(signature = (url, key, path = None))]
pub(crate) fn get_file(
    py: Python<'_>,
    url: &str,
    key: &str,
    path: Option<PathBuf>,
) -> PyByrefResult<u64> {
    let key: Key = key.parse()?;
    let opened = registry::open(py, url)?;
    Ok(block_on(py, async move {
        transfer::get_file(&opened, &key, path.as_deref(), &Bar::new()).await
    })?)
}
