//! The narrow interface every backend implements.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::get::{Fetched, GetOptions};
use crate::incoming::{Incoming, collect, verify_body};
use crate::{Error, HolderTag, Key, Payload, RefId, Result};

/// Bytes of a transfer done so far, for a progress bar: a backend that streams advances it as
/// parts go out, and another task reads it. Backends that store in one step leave it be.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// Counts `n` more bytes done.
    pub fn advance(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes done so far.
    pub fn done(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How to store one object.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// The reference this put adds.
    pub reference: RefId,
    /// Drop the object (all references) after this long; needs [`Capabilities::ttl`].
    pub ttl: Option<Duration>,
    /// Advanced as the payload is sent, by backends that stream it.
    pub progress: Option<Progress>,
}

impl PutOptions {
    /// A put that adds a fresh reference, held by nobody in particular, and never expires.
    pub fn new() -> Self {
        PutOptions {
            reference: RefId::held_by(HolderTag::NOBODY),
            ttl: None,
            progress: None,
        }
    }
}

impl Default for PutOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Objects and bytes a store (or one tier of it) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of objects.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// One stored object, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: Key,
    /// Its length in bytes.
    pub len: u64,
    /// Its references, in no particular order.
    pub references: Vec<RefId>,
    /// Its first 8 bytes (a frame's magic, version and encoding: what it is), when the
    /// backend had them at hand while listing.
    pub head: Option<[u8; 8]>,
}

/// The first 8 bytes of `data`, for [`Listed::head`] (`None` if it is shorter).
pub fn head_of(data: &[u8]) -> Option<[u8; 8]> {
    data.first_chunk::<8>().copied()
}

/// What a backend can do beyond the required methods. Backends build it with
/// `..Default::default()`, so adding a capability changes none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `get` returns [`Object::Mapped`]: fetching costs a mapping, not a copy.
    pub private_mappings: bool,
    /// `PutOptions::ttl` is honoured.
    pub ttl: bool,
    /// Other processes (and machines) opening the same URL see the same objects.
    pub shared: bool,
    /// Operations do no I/O and wait on nothing: a future of this store is done on its first
    /// poll, its work in memory. A caller may run a small one where it stands (the Python
    /// binding, keeping the GIL instead of handing it over and back).
    pub in_memory: bool,
}

/// Refuses a TTL on a store without expiry, rather than keep the object forever unasked.
pub fn refuse_ttl(store: &str, options: &PutOptions, operation: &'static str) -> Result<()> {
    if options.ttl.is_some() {
        return Err(crate::Error::NotSupported {
            store: store.to_owned(),
            operation,
        });
    }
    Ok(())
}

/// A place to keep objects by key.
///
/// Deliberately narrow (what `object_store` calls "required methods"): conveniences such as
/// verified reads live in [`crate::StoreExt`], implemented once for every store.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The URL that opens this store again, in this process or another. It goes into handles,
    /// so it never contains a secret.
    fn url(&self) -> &str;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Stores `payload` (whose content address is `key`) and adds `options.reference` to it.
    /// Idempotent: storing equal data again only adds the reference.
    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()>;

    /// Reads the object as `options` say: the one read call, which every convenience of
    /// [`crate::StoreExt`] (`get`, `get_range`, `get_checked`) goes through and every
    /// wrapping store forwards. [`crate::Error::NotFound`] if absent.
    ///
    /// A backend checks the length it learns against `options` before reading a byte where
    /// it can ([`GetOptions::check`]); one that reads whole hands the object over through
    /// [`GetOptions::whole`]. Only a client of a server on this host can map a server's file
    /// ([`crate::get::Delivery::LocalMapping`]); every other store answers [`Fetched::NotLocal`].
    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>>;

    /// The file holding the object whole, when this store keeps it in one on this machine (a
    /// file store; a daemon's disk tier; a peer's shared-memory files): what a server tells a
    /// client on the same host to map instead of sending the bytes. `None` when it keeps the
    /// object elsewhere (memory, a network); [`crate::Error::NotFound`] if absent.
    async fn locate(&self, key: &Key) -> Result<Option<std::path::PathBuf>> {
        match self.head(key).await? {
            Some(_) => Ok(None),
            None => Err(crate::Error::NotFound {
                store: self.url().to_owned(),
                key: *key,
            }),
        }
    }

    /// Stores a body that is still arriving (a server's `PUT`), announced as `len` bytes,
    /// adding `options.reference`. The body must hash to `key`: checked before the object
    /// becomes visible ([`crate::Error::Integrity`] otherwise, and nothing is stored). A store
    /// with limits checks its room before the first byte is read.
    ///
    /// This default collects the body in memory, then puts it. A store with a disk (the
    /// daemon's tiers, a file store) streams a body bound for disk there instead, so memory
    /// stays within its limits whatever the size of the put.
    async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
    ) -> Result<()> {
        let data = collect(body, len)
            .await
            .map_err(|e| crate::Error::backend(self.url(), e))?;
        verify_body(self.url(), key, &data).await?;
        self.put(key, &Payload::received(data), options).await
    }

    /// The object's length, or `None` if it is absent.
    async fn head(&self, key: &Key) -> Result<Option<u64>>;

    /// Adds `options.reference` to the object `key`, `len` bytes long, if this store holds it
    /// and can do so without its bytes: a put of content stored already then sends nothing.
    /// `Ok(false)` when it does not (or cannot tell): the caller puts the body as usual.
    ///
    /// Whoever names a key it does not hold gains only a reference to an object it could
    /// read anyway (keys are content addresses, readable by any client of the store).
    async fn add_reference(&self, key: &Key, len: u64, options: &PutOptions) -> Result<bool> {
        let _ = (key, len, options);
        Ok(false)
    }

    /// Every object with its references: what `byref ls` shows and `byref gc` works from. A
    /// store changing meanwhile may be listed partly before and partly after the change.
    async fn list(&self) -> Result<Vec<Listed>> {
        Err(Error::NotSupported {
            store: self.url().to_owned(),
            operation: "list",
        })
    }

    /// Drops one reference — `reference`, or any one if `None` — and deletes the object when
    /// none remain. Returns whether the object was deleted (a file store shared by processes
    /// cannot always tell: two releases racing for its last two references may both say so).
    ///
    /// [`crate::Error::ReferenceGone`] if `reference` was already released, and
    /// [`crate::Error::NotFound`] if the object has no references at all.
    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool>;
}
