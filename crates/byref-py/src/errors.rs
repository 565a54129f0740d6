//! byref errors as Python exceptions of the `byref.errors` tree, converted in one place.
//!
//! The classes are defined in Python (so their messages are plain strings and they pickle
//! with standard types only, across a Parsl worker boundary); this module only raises them.
//! The orphan rule forbids `From<byref::Error> for PyErr`, so, as obstore does, functions
//! return [`PyByrefResult`] and `?` converts either kind of error.

use byref::Error;
use pyo3::PyErr;

pyo3::import_exception!(byref.errors, ObjectNotFound);
pyo3::import_exception!(byref.errors, HandleError);
pyo3::import_exception!(byref.errors, BackendError);
pyo3::import_exception!(byref.errors, StoreFull);
pyo3::import_exception!(byref.errors, AuthenticationError);
pyo3::import_exception!(byref.errors, IntegrityError);
pyo3::import_exception!(byref.errors, ConfigError);

/// An error on its way to Python: byref's own, or one Python raised.
#[derive(Debug)]
pub(crate) enum PyByrefError {
    Byref(Error),
    Python(PyErr),
}

/// What every binding returns.
pub(crate) type PyByrefResult<T> = Result<T, PyByrefError>;

impl From<Error> for PyByrefError {
    fn from(e: Error) -> Self {
        PyByrefError::Byref(e)
    }
}

impl From<PyErr> for PyByrefError {
    fn from(e: PyErr) -> Self {
        PyByrefError::Python(e)
    }
}

impl From<PyByrefError> for PyErr {
    fn from(e: PyByrefError) -> Self {
        let err = match e {
            PyByrefError::Python(e) => return e,
            PyByrefError::Byref(err) => err,
        };
        let message = err.to_string();
        match err {
            Error::NotFound { .. } | Error::ReferenceGone { .. } => {
                ObjectNotFound::new_err(message)
            }
            Error::Handle(_) => HandleError::new_err(message),
            Error::Integrity { .. } => IntegrityError::new_err(message),
            Error::Config(_) | Error::NotSupported { .. } => ConfigError::new_err(message),
            Error::StoreFull { .. } => StoreFull::new_err(message),
            Error::Unauthenticated { .. } => AuthenticationError::new_err(message),
            _ => BackendError::new_err(message),
        }
    }
}

/// An error met while resolving an `evict=True` handle, saying why the object may be missing.
pub(crate) fn evicted(err: Error) -> PyByrefError {
    match err {
        Error::NotFound { .. } | Error::ReferenceGone { .. } => {
            PyByrefError::Python(ObjectNotFound::new_err(format!(
                "{err}: the proxy was created with evict=True, so the object is deleted after \
                 its first resolve, and this is a second resolve (or the object was evicted \
                 otherwise)"
            )))
        }
        other => other.into(),
    }
}
