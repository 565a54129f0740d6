//! The foundation of byref: content-addressed keys, the stored object frame, handles, and the
//! [`Store`] trait that every backend implements.
//!
//! A proxied Python value is stored as one object (see [`frame`] for its layout) under its
//! [`Key`], the BLAKE3 digest of the stored bytes. Only a [`Handle`] — store URL, key, length
//! and flags, about a hundred bytes — travels in the pickle stream; the worker that unpickles
//! it opens the store by URL and fetches the object.
//!
//! This crate knows no backend besides the in-process [`MemoryStore`]; each backend lives in
//! its own crate and proves itself with [`conformance::run_all`] (feature `conformance`).
//!
//! The bottom floor: it depends on no other byref crate, and every other one depends on it.

mod error;
mod ext;
pub mod frame;
mod get;
mod handle;
pub mod host;
pub mod incoming;
mod key;
pub mod mapping;
mod memory;
pub mod metrics;
mod object;
pub mod own_file;
pub mod refcount;
mod reference;
pub mod secrets;
mod size;
mod store;
pub mod store_id;
mod store_url;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::{Error, Result, Source};
pub use ext::StoreExt;
pub use frame::{Encoding, Layout, Payload};
pub use get::{Delivery, Fetched, GetOptions, check_length, check_range};
pub use handle::Handle;
pub use incoming::Incoming;
pub use key::{Key, KeyHasher};
pub use memory::{MemoryStore, SCHEME as MEMORY_SCHEME};
pub use object::Object;
pub use reference::{HolderTag, RefId, RefSet, unix_now};
pub use size::parse_size;
pub use store::{Capabilities, Listed, Progress, PutOptions, Store, Usage, head_of, refuse_ttl};
pub use store_url::{StoreUrl, UrlBuilder, redact};
