//! byref errors as Python exceptions of the `byref.errors` tree.
//!
//! The classes are defined in Python (so their messages are plain strings and they pickle
//! with standard types only, across a Parsl worker boundary); this module only raises them.

use byref::Error;
use pyo3::PyErr;

pyo3::import_exception!(byref.errors, ObjectNotFound);
pyo3::import_exception!(byref.errors, HandleError);
pyo3::import_exception!(byref.errors, BackendError);
pyo3::import_exception!(byref.errors, StoreFull);
pyo3::import_exception!(byref.errors, AuthenticationError);
pyo3::import_exception!(byref.errors, IntegrityError);
pyo3::import_exception!(byref.errors, ConfigError);

/// Converts a byref error into the matching Python exception.
pub(crate) fn to_py(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::NotFound { .. } | Error::ReferenceGone { .. } => ObjectNotFound::new_err(message),
        Error::Handle(_) => HandleError::new_err(message),
        Error::Integrity { .. } => IntegrityError::new_err(message),
        Error::Config(_) | Error::NotSupported { .. } => ConfigError::new_err(message),
        Error::StorageFull { .. } => StoreFull::new_err(message),
        Error::Unauthenticated { .. } => AuthenticationError::new_err(message),
        _ => BackendError::new_err(message),
    }
}

/// Converts an error met while resolving an `evict=True` handle, saying why the object may
/// be missing.
pub(crate) fn evicted_to_py(err: Error) -> PyErr {
    match err {
        Error::NotFound { .. } | Error::ReferenceGone { .. } => ObjectNotFound::new_err(format!(
            "{err}: the proxy was created with evict=True, so the object is deleted after its \
             first resolve, and this is a second resolve (or the object was evicted otherwise)"
        )),
        other => to_py(other),
    }
}
