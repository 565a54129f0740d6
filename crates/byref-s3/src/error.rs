//! S3 failures told apart by kind, never by message text, then mapped into byref's public
//! error in one `From` (as object_store's backends map theirs into `object_store::Error`).

use byref_core::{Error, Key};

/// What went wrong, with the store it went wrong in.
#[derive(Debug)]
pub(crate) enum S3Error {
    /// The object is absent from a bucket that exists.
    Missing { store: String, key: Key },
    /// The bucket is absent: a broken store, not a missing object.
    NoBucket {
        store: String,
        source: object_store::Error,
    },
    /// The credentials were refused.
    Denied {
        store: String,
        source: object_store::Error,
    },
    /// Anything else: network, server, or a request object_store could not make.
    Other {
        store: String,
        source: object_store::Error,
    },
}

impl S3Error {
    /// Classifies object_store's error for an operation on `key` (a 404 is taken to mean the
    /// object; whether the bucket exists is checked separately, see `S3Store::object_size`).
    pub(crate) fn new(store: &str, key: &Key, source: object_store::Error) -> Self {
        let store = store.to_owned();
        match source {
            object_store::Error::NotFound { .. } => S3Error::Missing { store, key: *key },
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => S3Error::Denied { store, source },
            source => S3Error::Other { store, source },
        }
    }

    /// Classifies object_store's error for a write: a 404 there can only mean the bucket.
    pub(crate) fn writing(store: &str, key: &Key, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => S3Error::NoBucket {
                store: store.to_owned(),
                source,
            },
            source => Self::new(store, key, source),
        }
    }
}

impl From<S3Error> for Error {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::Missing { store, key } => Error::NotFound { store, key },
            S3Error::NoBucket { store, source } => Error::Backend {
                store,
                source: format!("the bucket does not exist: {source}").into(),
            },
            S3Error::Denied { store, source } => Error::Unauthenticated {
                store,
                source: Box::new(source),
            },
            S3Error::Other { store, source } => Error::Backend {
                store,
                source: Box::new(source),
            },
        }
    }
}
