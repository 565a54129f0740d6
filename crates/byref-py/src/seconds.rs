//! Durations from Python floats, checked as they cross.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `s` seconds, which must be more than none: a TTL, a lease, an age.
pub(crate) fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be > 0 seconds, not {s}")))
}
