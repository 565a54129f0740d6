//! A store in two tiers: memory up to a byte limit, then disk. The daemon and the peer serve
//! one over QUIC.
//!
//! A put goes to memory while it fits and to disk after that ("spilling"); nothing is ever
//! deleted to make room. When both tiers are full a put fails with `StoreFull`, and an
//! object leaves only when its last reference is released or its TTL passes. The disk tier
//! is a byref file store (atomic writes, reference counts in the filesystem), so it survives
//! restarts, TTLs included (one small file per object with a TTL); on a graceful shutdown
//! the memory tier is written to it as well.
//!
//! It is opened from a directory, not a URL: it exists to be served (`byref-quic`'s server,
//! by `byref-daemon` and `byref-peer`). Depends on `byref-core` and `byref-fs` only.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use byref_core::incoming::Incoming;
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, PutOptions,
    RefId, Result, Store, Usage,
};

mod disk;
mod expiry;
mod key_locks;
mod memory;
mod put;
mod report;

use disk::DiskTier;
use key_locks::KeyLocks;
use memory::MemoryTier;

/// Where an object lives, and a fetched one came from (for the hit counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
}

/// Objects in memory, spilling to disk.
#[derive(Debug)]
pub struct TieredStore {
    /// Names the store in errors and in [`Store::url`] (it has no URL of its own).
    name: String,
    /// The memory tier, with its byte count and limit.
    memory: MemoryTier,
    /// The disk tier: atomic writes and reference counts that survive restarts, TTLs too.
    disk: DiskTier,
    /// `GET`s answered from each tier: memory, disk.
    hits: [AtomicU64; 2],
    /// Puts and releases of one key, one at a time: the file store tells the release that
    /// removed a key's last name from the others only when no other release of it runs
    /// meanwhile, and a put tells whether it made the object only when no other put of it
    /// does; so the tiers' byte and object counts take each object once.
    keys: KeyLocks,
}

/// When a TTL that starts now ends.
fn expiry_of(ttl: Option<Duration>) -> Option<Instant> {
    ttl.map(|t| Instant::now() + t)
}

impl TieredStore {
    /// Opens the tiers, the disk one under `dir` (reading back what a previous run left);
    /// `name` labels the store in errors.
    pub fn open(name: &str, dir: &Path, memory_limit: u64, disk_limit: u64) -> Result<Self> {
        Ok(TieredStore {
            name: name.to_owned(),
            memory: MemoryTier::new(memory_limit),
            disk: DiskTier::open(name, dir, disk_limit)?,
            hits: Default::default(),
            keys: KeyLocks::default(),
        })
    }

    /// The error of a put of `len` bytes that fits neither tier.
    fn full(&self, len: u64) -> Error {
        Error::StoreFull {
            store: self.name.clone(),
            source: format!(
                "an object of {len} bytes fits neither the memory tier ({} of {} bytes used) \
                 nor the disk tier ({} of {} bytes used)",
                self.memory.used(),
                self.memory.limit(),
                self.disk.usage().bytes,
                self.disk.limit()
            )
            .into(),
        }
    }

    /// Deletes every object whose TTL has passed, with all its references.
    pub async fn expire(&self) -> Result<()> {
        let now = Instant::now();
        self.memory.expire(now);
        for key in self.disk.due(now) {
            let _one_at_a_time = self.keys.lock(&key).await;
            self.disk.delete(&key).await?;
        }
        Ok(())
    }

    /// Deletes expired objects every 200 ms, for as long as the store lives (the task ends
    /// with its last other holder).
    pub async fn expire_forever(self: Arc<Self>) {
        let store = Arc::downgrade(&self);
        drop(self);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else { return };
            // A failed sweep is retried on the next tick.
            let _ = store.expire().await;
        }
    }

    /// What each tier holds: memory, disk (bytes include room set aside for bodies still
    /// arriving).
    pub fn usage(&self) -> (Usage, Usage) {
        (self.memory.usage(), self.disk.usage())
    }

    /// Bytes of the buffer the memory tier keeps from the last large object released, for
    /// the next put of about its size (counted against the memory limit, not as stored).
    pub fn spare_bytes(&self) -> u64 {
        self.memory.spare()
    }
}

#[async_trait]
impl Store for TieredStore {
    fn url(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ttl: true,
            ..Capabilities::default()
        }
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        let _one_at_a_time = self.keys.lock(key).await;
        self.put_payload(key, payload, options.reference, expiry_of(options.ttl))
            .await
    }

    /// Streams a body into the tier it will live in, after reserving its room there: a
    /// spill to disk holds one block in memory, not the object, whatever its size.
    async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
    ) -> Result<()> {
        let _one_at_a_time = self.keys.lock(key).await;
        self.put_body(key, len, body, options.reference, expiry_of(options.ttl))
            .await
    }

    /// In memory, a reference is added to the object there; on disk the body is written again
    /// (a repair, if it was damaged), as a put does.
    async fn add_reference(&self, key: &Key, len: u64, options: &PutOptions) -> Result<bool> {
        let _one_at_a_time = self.keys.lock(key).await;
        let expires = expiry_of(options.ttl);
        Ok(self
            .memory
            .add_reference(key, len, options.reference, expires))
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        let (fetched, tier) = match self.memory.get(key) {
            Some(_) if options.delivery == Delivery::LocalMapping => (Fetched::NotLocal, None),
            Some(data) => (
                options.whole(&self.name, key, Object::Shared(data))?,
                Some(Tier::Memory),
            ),
            None => (
                self.disk.files.get_opts(key, options).await?,
                Some(Tier::Disk),
            ),
        };
        if let (Some(tier), Fetched::Whole(_)) = (tier, &fetched) {
            self.hits[tier as usize].fetch_add(1, Ordering::Relaxed);
        }
        Ok(fetched)
    }

    async fn locate(&self, key: &Key) -> Result<Option<PathBuf>> {
        if self.memory.head(key).is_some() {
            return Ok(None);
        }
        self.disk.files.locate(key).await
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        if let Some(len) = self.memory.head(key) {
            return Ok(Some(len));
        }
        self.disk.files.head(key).await
    }

    /// The memory tier's objects, then the disk tier's (an object is in one tier at a time).
    async fn list(&self) -> Result<Vec<Listed>> {
        let mut listed = self.memory.list();
        listed.extend(self.disk.files.list().await?);
        Ok(listed)
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let _one_at_a_time = self.keys.lock(key).await;
        if let Some(released) = self.memory.release(key, reference, &self.name) {
            return released;
        }
        self.disk.release(key, reference).await
    }
}
