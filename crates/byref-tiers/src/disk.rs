//! The disk tier: a byref file store (atomic writes, reference counts in the filesystem)
//! that counts its objects and bytes against a limit, and keeps its objects' TTLs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use byref_core::incoming::Incoming;
use byref_core::{Error, Key, Payload, PutOptions, RefId, Result, Store, StoreUrl, Usage};
use byref_fs::{FileStore, Recovered};

use crate::expiry::DiskExpiry;

/// Objects on disk, counted.
#[derive(Debug)]
pub(crate) struct DiskTier {
    /// The objects and their references; reads go to it directly.
    pub(crate) files: FileStore,
    /// Objects on disk, counted as they come and go (walking the disk once, at open).
    objects: AtomicU64,
    /// Bytes on disk and reserved for bodies still arriving, likewise.
    used: AtomicU64,
    /// Bytes the tier may hold before puts fail with `StoreFull`.
    limit: u64,
    /// When the objects with a TTL are due.
    expiry: DiskExpiry,
    /// What opening cleaned up after a killed run, reported in the status.
    pub(crate) recovered: Recovered,
}

impl DiskTier {
    /// Opens the tier under `dir`, reading back what a previous run left; `name` labels the
    /// store in errors.
    pub(crate) fn open(name: &str, dir: &Path, limit: u64) -> Result<Self> {
        let files = FileStore::open(StoreUrl::of_directory(dir)?)?;
        // The tier is this process's alone: what a killed run left half done goes first.
        let recovered = files.recover();
        let usage = files.usage();
        let expiry = DiskExpiry::open(name, dir.join("expiry"), &files)?;
        Ok(DiskTier {
            files,
            objects: AtomicU64::new(usage.objects),
            used: AtomicU64::new(usage.bytes),
            limit,
            expiry,
            recovered,
        })
    }

    pub(crate) fn holds(&self, key: &Key) -> bool {
        self.files.holds(key)
    }

    /// Sets `len` bytes aside if they fit the limit.
    pub(crate) fn reserve(&self, len: u64) -> bool {
        let limit = self.limit;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + len <= limit).then_some(used + len)
            })
            .is_ok()
    }

    /// Sets `len` bytes aside whatever the limit (the shutdown flush: keeping objects is worth
    /// more than the limit, and only a truly full disk stops it).
    pub(crate) fn reserve_past_limit(&self, len: u64) {
        self.used.fetch_add(len, Ordering::AcqRel);
    }

    /// Gives back room a put set aside and did not fill.
    pub(crate) fn unreserve(&self, len: u64) {
        self.used.fetch_sub(len, Ordering::AcqRel);
    }

    /// Adds `reference` to the object on disk or stores it, its room reserved; whether it made
    /// the object (and so took the room).
    pub(crate) async fn put(
        &self,
        key: &Key,
        payload: &Payload,
        reference: RefId,
        expires: Option<Instant>,
    ) -> Result<bool> {
        let existed = self.holds(key);
        self.files.put(key, payload, &options(reference)).await?;
        self.stored(key, existed, expires)
    }

    /// As [`put`](Self::put), the body streaming in.
    pub(crate) async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        reference: RefId,
        expires: Option<Instant>,
    ) -> Result<bool> {
        let existed = self.holds(key);
        self.files
            .put_incoming(key, len, body, &options(reference))
            .await?;
        self.stored(key, existed, expires)
    }

    /// Counts an object a put made, and notes the expiry it asked for.
    fn stored(&self, key: &Key, existed: bool, expires: Option<Instant>) -> Result<bool> {
        if !existed {
            self.objects.fetch_add(1, Ordering::Relaxed);
        }
        self.expiry.note(key, existed, expires)?;
        Ok(!existed)
    }

    /// Releases a reference (any one if `reference` is `None`); whether that deleted the object.
    pub(crate) async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let len = self.files.head(key).await?;
        let deleted = self.files.release(key, reference).await?;
        if deleted {
            self.deleted(key, len.unwrap_or(0));
        }
        Ok(deleted)
    }

    /// The objects whose TTL has passed by `now`.
    pub(crate) fn due(&self, now: Instant) -> Vec<Key> {
        self.expiry.due(now)
    }

    /// Deletes the object, all its references at once (its TTL has passed).
    pub(crate) async fn delete(&self, key: &Key) -> Result<()> {
        let len = self.files.head(key).await?.unwrap_or(0);
        // Each release gives up one reference; the last deletes the file.
        loop {
            match self.files.release(key, None).await {
                Ok(true) | Err(Error::NotFound { .. }) => break,
                Ok(false) => {}
                Err(e) => return Err(e),
            }
        }
        self.deleted(key, len);
        Ok(())
    }

    /// Counts out an object deleted from disk, and its expiry.
    fn deleted(&self, key: &Key, len: u64) {
        self.used.fetch_sub(len, Ordering::Relaxed);
        self.objects.fetch_sub(1, Ordering::Relaxed);
        self.expiry.remove(key);
    }

    /// Objects, and their bytes with the room reserved for bodies still arriving.
    pub(crate) fn usage(&self) -> Usage {
        Usage {
            objects: self.objects.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

/// A file-store put of one reference (TTLs are kept here, not by the file store).
fn options(reference: RefId) -> PutOptions {
    PutOptions {
        reference,
        ..PutOptions::new()
    }
}
