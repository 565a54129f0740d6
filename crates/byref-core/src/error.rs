//! The one error type every backend maps its failures into.

use crate::Key;

/// Result alias used throughout byref.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a backend's own client library.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a store.
///
/// `store` fields hold the store's display URL, which never contains a secret, so every
/// message can be shown to a user or logged as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is not (or no longer) in the store.
    #[error("object {key} not found in {store}")]
    NotFound { store: String, key: Key },

    /// A reference named in `release` was already released: an `evict=True` proxy resolved twice.
    #[error("object {key} in {store} was already released by this reference")]
    ReferenceGone { store: String, key: Key },

    /// A handle that does not decode: truncated, corrupted, or from another program.
    #[error("malformed handle: {0}")]
    Handle(String),

    /// The fetched bytes do not hash to their key, or do not parse as an object frame.
    #[error("integrity check failed for object {key} from {store}: {reason}")]
    Integrity {
        store: String,
        key: Key,
        reason: String,
    },

    /// A store URL or option that byref does not understand.
    #[error("invalid store configuration: {0}")]
    Config(String),

    /// The backend has no room for the object (disk full, memory limit reached).
    #[error("{store} is full: {source}")]
    StoreFull { store: String, source: Source },

    /// The backend refused our credentials (wrong or missing password, key or token).
    #[error("{store} refused the credentials: {source}")]
    Unauthenticated { store: String, source: Source },

    /// The backend cannot do what was asked (e.g. a TTL on a store without expiry).
    #[error("{store} does not support {operation}")]
    NotSupported {
        store: String,
        operation: &'static str,
    },

    /// Any other failure of the backend (I/O error, unreachable server, ...).
    #[error("{store}: {source}")]
    Backend { store: String, source: Source },
}

impl Error {
    /// Wraps a backend's own error.
    pub fn backend(store: &str, source: impl Into<Source>) -> Self {
        Error::Backend {
            store: store.to_owned(),
            source: source.into(),
        }
    }
}
