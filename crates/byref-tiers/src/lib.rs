//! A store in two tiers: memory up to a byte limit, then disk. The daemon and the peer serve
//! one over QUIC.
//!
//! A put goes to memory while it fits and to disk after that ("spilling"); nothing is ever
//! dropped to make room. When both tiers are full a put fails with `StoreFull`, and an
//! object leaves only when its last reference is released or its TTL passes. The disk tier
//! is a byref file store (atomic writes, reference counts in the filesystem), so it survives
//! restarts, TTLs included (one small file per object with a TTL); on a graceful shutdown
//! the memory tier is written to it as well.
//!
//! It is opened from a directory, not a URL: it exists to be served (`byref-quic`'s server,
//! by `byref-daemon` and `byref-peer`). Depends on `byref-core` and `byref-fs` only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use byref_core::incoming::{Incoming, collect_into, verify_body};
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, PutOptions,
    RefId, RefSet, Result, Store, StoreUrl, Usage,
};
use byref_fs::{FileStore, Recovered};
use bytes::Bytes;

mod key_locks;
mod report;

use key_locks::KeyLocks;

/// Where a fetched object came from, for the hit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
}

/// An object in the memory tier.
#[derive(Debug)]
struct Entry {
    /// Its bytes, shared with the responses that send them.
    data: Bytes,
    /// Its references: it goes with the last.
    refs: RefSet,
    /// When its TTL ends; `None` if any put asked for it to stay.
    expires: Option<Instant>,
}

/// The memory tier's contents.
#[derive(Debug, Default)]
struct Memory {
    /// Objects by key.
    objects: HashMap<Key, Entry>,
    /// Bytes of `objects` and of `spare`, kept so that a put checks the limit without
    /// summing.
    used: u64,
    /// The buffer of the last large object released, for the next put of about its size:
    /// that put then lands in pages the daemon already has. Fresh pages cost the kernel a
    /// fault and zeroing each: measured over a veth pair, 17% of both cores went to them
    /// while the daemon took 1 GB puts, its largest cost. Counted in `used`, so the daemon
    /// never holds more than its limit, and dropped when a put needs the room.
    spare: Vec<u8>,
}

/// Released buffers smaller than this are not kept: their pages are cheap to get again.
const SPARE_MIN: usize = 1 << 20;

impl Memory {
    /// Keeps the buffer of a released object as the spare, if nobody else holds it (a
    /// response still sending it) and it is large enough to be worth it.
    fn keep_spare(&mut self, data: Bytes) {
        let Ok(buffer) = data.try_into_mut() else {
            return;
        };
        let buffer = Vec::from(buffer);
        if buffer.capacity() < SPARE_MIN {
            return;
        }
        self.drop_spare();
        self.used += buffer.capacity() as u64;
        self.spare = buffer;
    }

    /// The spare, if it fits `len` bytes without wasting more than an eighth; else an empty
    /// buffer.
    fn take_spare(&mut self, len: u64) -> Vec<u8> {
        let capacity = self.spare.capacity() as u64;
        if capacity < len || capacity > len + len / 8 {
            return Vec::new();
        }
        self.used -= capacity;
        std::mem::take(&mut self.spare)
    }

    fn drop_spare(&mut self) {
        self.used -= self.spare.capacity() as u64;
        self.spare = Vec::new();
    }
}

/// Room set aside in one tier for a put whose body is still arriving; given back when
/// dropped, unless kept because the object now occupies it.
struct Reservation<'a> {
    /// Whose tier.
    store: &'a TieredStore,
    /// Which tier.
    tier: Tier,
    /// Bytes set aside (0 when the object is there already).
    len: u64,
    /// Whether the stored object now occupies the room.
    kept: bool,
}

impl<'a> Reservation<'a> {
    fn new(store: &'a TieredStore, tier: Tier, len: u64) -> Self {
        Reservation {
            store,
            tier,
            len,
            kept: false,
        }
    }

    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept || self.len == 0 {
            return;
        }
        match self.tier {
            Tier::Memory => self.store.memory().used -= self.len,
            Tier::Disk => {
                self.store.disk_used.fetch_sub(self.len, Ordering::AcqRel);
            }
        }
    }
}

/// Whether a disk put answers to the disk limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskLimit {
    /// An ordinary spill: refused with `StoreFull` past the limit.
    Enforced,
    /// The shutdown flush: keeping objects is worth more than the limit, and only a truly
    /// full disk stops it.
    Ignored,
}

/// Objects in memory, spilling to disk.
#[derive(Debug)]
pub struct TieredStore {
    /// Names the store in errors and in [`Store::url`] (it has no URL of its own).
    name: String,
    /// The memory tier; a std mutex, since no critical section awaits.
    memory: Mutex<Memory>,
    /// Bytes the memory tier may hold before puts spill to disk.
    memory_limit: u64,
    /// The disk tier: atomic writes and reference counts that survive restarts.
    disk: FileStore,
    /// Objects on disk, counted as they come and go (walking the disk once, at open).
    disk_objects: AtomicU64,
    /// Bytes on disk, likewise.
    disk_used: AtomicU64,
    /// Bytes the disk tier may hold before puts fail with `StoreFull`.
    disk_limit: u64,
    /// `GET`s answered from each tier: memory, disk.
    hits: [AtomicU64; 2],
    /// TTLs of objects on disk, mirrored in `expiry_dir` so that a restart keeps them.
    disk_expiry: Mutex<HashMap<Key, Instant>>,
    /// One file per disk object with a TTL, named by its key, holding its expiry time (Unix
    /// milliseconds, decimal).
    expiry_dir: PathBuf,
    /// What opening cleaned up after a killed run, reported in the status.
    recovered: Recovered,
    /// Puts and releases of one key, one at a time: the file store tells the release that
    /// removed a key's last name from the others only when no other release of it runs
    /// meanwhile, and a put tells whether it made the object only when no other put of it
    /// does; so the byte and object counts above take each object once.
    keys: KeyLocks,
}

fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    // No TTL on either put means the object is meant to stay.
    Some(a?.max(b?))
}

impl TieredStore {
    /// Opens the tiers, the disk one under `dir` (reading back what a previous run left);
    /// `name` labels the store in errors.
    pub fn open(name: &str, dir: &Path, memory_limit: u64, disk_limit: u64) -> Result<Self> {
        let disk = FileStore::open(StoreUrl::of_directory(dir)?)?;
        let url = disk.url().to_owned();
        // The tier is this process's alone: what a killed run left half done goes first.
        let recovered = disk.recover();
        let usage = disk.usage();
        let expiry_dir = dir.join("expiry");
        byref_fs::private::create_dir_all(&expiry_dir)
            .map_err(|e| Error::backend(&url, format!("{}: {e}", expiry_dir.display())))?;
        let disk_expiry = read_expiry(&expiry_dir, &disk);
        Ok(TieredStore {
            name: name.to_owned(),
            memory: Mutex::new(Memory::default()),
            memory_limit,
            disk,
            disk_objects: AtomicU64::new(usage.objects),
            disk_used: AtomicU64::new(usage.bytes),
            disk_limit,
            hits: Default::default(),
            disk_expiry: Mutex::new(disk_expiry),
            expiry_dir,
            recovered,
            keys: KeyLocks::default(),
        })
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn disk_expiry(&self) -> MutexGuard<'_, HashMap<Key, Instant>> {
        self.disk_expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error of a put of `len` bytes that fits neither tier.
    fn full(&self, len: u64) -> Error {
        Error::StoreFull {
            store: self.name.clone(),
            source: format!(
                "an object of {len} bytes fits neither the memory tier ({} of {} bytes used) \
                 nor the disk tier ({} of {} bytes used)",
                self.memory().used,
                self.memory_limit,
                self.disk_used.load(Ordering::Relaxed),
                self.disk_limit
            )
            .into(),
        }
    }

    /// Stores `payload` under `key` with one more reference: in memory if it fits, else on
    /// disk.
    async fn put_payload(
        &self,
        key: &Key,
        payload: &Payload,
        reference: RefId,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let expires = ttl.map(|t| Instant::now() + t);
        let len = payload.len();
        // Copied only if it may stay in memory: a put bound for disk (a peer's shared-memory
        // files) is written straight from the caller's buffers, one copy in all.
        let data = (len <= self.memory_limit).then(|| payload.to_owned_bytes());
        // An object lives in one tier only, so that its references are counted in one place.
        let on_disk = self.disk.holds(key);
        {
            let mut memory = self.memory();
            if let Some(entry) = memory.objects.get_mut(key) {
                entry.refs.add(reference);
                entry.expires = later(entry.expires, expires);
                return Ok(());
            }
            if data.is_some() && !on_disk && memory.used + len > self.memory_limit {
                memory.drop_spare();
            }
            if let Some(data) = &data
                && !on_disk
                && memory.used + len <= self.memory_limit
            {
                memory.used += len;
                memory.objects.insert(
                    *key,
                    Entry {
                        data: data.clone(),
                        refs: RefSet::new(reference),
                        expires,
                    },
                );
                return Ok(());
            }
        }
        let owned;
        let payload = match data {
            Some(data) => {
                owned = Payload::received(data);
                &owned
            }
            None => payload,
        };
        self.put_disk(key, payload, reference, expires, DiskLimit::Enforced)
            .await
    }

    /// Sets `len` bytes aside for a put of `key` whose body is still to come: in memory if
    /// the object is there already or fits, else on disk; [`Error::StoreFull`] if neither.
    fn reserve(&self, key: &Key, len: u64) -> Result<Reservation<'_>> {
        let on_disk = self.disk.holds(key);
        {
            let mut memory = self.memory();
            if memory.objects.contains_key(key) {
                // Adds a reference only, and at most the body is held meanwhile.
                return Ok(Reservation::new(self, Tier::Memory, 0));
            }
            if !on_disk && memory.used + len > self.memory_limit {
                memory.drop_spare();
            }
            if !on_disk && memory.used + len <= self.memory_limit {
                memory.used += len;
                return Ok(Reservation::new(self, Tier::Memory, len));
            }
        }
        if on_disk {
            // Written again (a repair, if it was damaged), but no new bytes on disk.
            return Ok(Reservation::new(self, Tier::Disk, 0));
        }
        let limit = self.disk_limit;
        self.disk_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + len <= limit).then_some(used + len)
            })
            .map_err(|_| self.full(len))?;
        Ok(Reservation::new(self, Tier::Disk, len))
    }

    /// A put into memory, its room reserved: the body is collected, checked, and stored (or
    /// only its reference added, if an equal put got there first).
    async fn put_memory_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
        mut reservation: Reservation<'_>,
    ) -> Result<()> {
        let buffer = self.memory().take_spare(len);
        let data = collect_into(body, len, buffer)
            .await
            .map_err(|e| Error::backend(&self.name, e))?;
        verify_body(&self.name, key, &data).await?;
        let expires = options.ttl.map(|t| Instant::now() + t);
        {
            let mut memory = self.memory();
            if let Some(entry) = memory.objects.get_mut(key) {
                entry.refs.add(options.reference);
                entry.expires = later(entry.expires, expires);
                return Ok(());
            }
            if reservation.len == len {
                memory.objects.insert(
                    *key,
                    Entry {
                        data,
                        refs: RefSet::new(options.reference),
                        expires,
                    },
                );
                reservation.keep();
                return Ok(());
            }
        }
        // It was in memory when the put began and has been released since: store it again,
        // through the ordinary path.
        drop(reservation);
        self.put_payload(
            key,
            &Payload::received(data),
            options.reference,
            options.ttl,
        )
        .await
    }

    /// A put onto disk, its room reserved: the body streams into the disk tier.
    async fn put_disk_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
        mut reservation: Reservation<'_>,
    ) -> Result<()> {
        let existed = reservation.len == 0;
        let disk_options = PutOptions {
            reference: options.reference,
            ..PutOptions::new()
        };
        self.disk
            .put_incoming(key, len, body, &disk_options)
            .await?;
        if !existed {
            reservation.keep();
            self.disk_objects.fetch_add(1, Ordering::Relaxed);
        }
        self.note_disk_expiry(key, existed, options.ttl.map(|t| Instant::now() + t))
    }

    /// Puts on disk, adding `reference` to the object there or storing it.
    async fn put_disk(
        &self,
        key: &Key,
        payload: &Payload,
        reference: RefId,
        expires: Option<Instant>,
        limit: DiskLimit,
    ) -> Result<()> {
        let len = payload.len();
        let exists = self.disk.holds(key);
        if limit == DiskLimit::Enforced
            && !exists
            && self.disk_used.load(Ordering::Relaxed) + len > self.disk_limit
        {
            return Err(self.full(len));
        }
        let options = PutOptions {
            reference,
            ..PutOptions::new()
        };
        self.disk.put(key, payload, &options).await?;
        if !exists {
            self.disk_used.fetch_add(len, Ordering::Relaxed);
            self.disk_objects.fetch_add(1, Ordering::Relaxed);
        }
        self.note_disk_expiry(key, exists, expires)
    }

    /// Records the expiry a put asked for of an object now on disk (`existed`: before the
    /// put): the later of the two, or none if either put asked for none.
    fn note_disk_expiry(&self, key: &Key, existed: bool, expires: Option<Instant>) -> Result<()> {
        let changed = {
            let mut expiry = self.disk_expiry();
            match (existed, expires) {
                (_, None) => expiry.remove(key).map(|_| None),
                (false, Some(at)) => {
                    expiry.insert(*key, at);
                    Some(Some(at))
                }
                (true, Some(at)) => expiry.get_mut(key).map(|old| {
                    *old = (*old).max(at);
                    Some(*old)
                }),
            }
        };
        if let Some(expires) = changed {
            self.save_expiry(key, expires)?;
        }
        Ok(())
    }

    /// Mirrors a disk object's expiry (`None`: it has none) in its file, atomically.
    fn save_expiry(&self, key: &Key, expires: Option<Instant>) -> Result<()> {
        let path = self.expiry_dir.join(key.to_hex());
        let written = match expires {
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Some(at) => {
                let wall = SystemTime::now() + at.saturating_duration_since(Instant::now());
                let ms = wall
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                byref_fs::private::replace_file(&path, ms.to_string().as_bytes())
            }
        };
        written.map_err(|e| Error::backend(&self.name, format!("{}: {e}", path.display())))
    }

    /// Drops a reference from the memory tier; `None` if the object is not there.
    fn release_memory(&self, key: &Key, reference: Option<&RefId>) -> Option<Result<bool>> {
        let mut memory = self.memory();
        let entry = memory.objects.get_mut(key)?;
        let last = match entry.refs.release(reference, &self.name, key) {
            Ok(last) => last,
            Err(e) => return Some(Err(e)),
        };
        if last && let Some(entry) = memory.objects.remove(key) {
            memory.used -= entry.data.len() as u64;
            memory.keep_spare(entry.data);
        }
        Some(Ok(last))
    }

    fn forget_disk(&self, key: &Key, len: u64) {
        self.disk_used.fetch_sub(len, Ordering::Relaxed);
        self.disk_objects.fetch_sub(1, Ordering::Relaxed);
        if self.disk_expiry().remove(key).is_some() {
            // Left behind, it would give a later object of equal data this one's expiry after
            // a restart. Failing to remove it fails nothing now: it is retried on the next one.
            let _ = self.save_expiry(key, None);
        }
    }

    /// Drops every object whose TTL has passed, with all its references.
    pub async fn expire(&self) -> Result<()> {
        let now = Instant::now();
        {
            let mut memory = self.memory();
            let mut freed = 0;
            memory.objects.retain(|_, entry| {
                let due = entry.expires.is_some_and(|at| at <= now);
                if due {
                    freed += entry.data.len() as u64;
                }
                !due
            });
            memory.used -= freed;
        }
        let due: Vec<Key> = self
            .disk_expiry()
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let _one_at_a_time = self.keys.lock(&key).await;
            let len = self.disk.head(&key).await?.unwrap_or(0);
            // Each release drops one reference; the last deletes the file.
            loop {
                match self.disk.release(&key, None).await {
                    Ok(true) | Err(Error::NotFound { .. }) => break,
                    Ok(false) => {}
                    Err(e) => return Err(e),
                }
            }
            self.forget_disk(&key, len);
        }
        Ok(())
    }

    /// Moves the memory tier to disk, references and all (on shutdown).
    ///
    /// An object that cannot be written (a full disk) stays in memory, and the others still
    /// go; the error then says how many stayed.
    pub async fn flush(&self) -> Result<()> {
        let objects = std::mem::take(&mut self.memory().objects);
        let total = objects.len();
        let mut stayed = Vec::new();
        let mut first_error = None;
        for (key, entry) in objects {
            if let Err(e) = self.flush_one(&key, &entry).await {
                first_error.get_or_insert(e);
                stayed.push((key, entry));
            }
        }
        let mut memory = self.memory();
        let kept = stayed.len();
        memory.spare = Vec::new();
        memory.used = stayed.iter().map(|(_, e)| e.data.len() as u64).sum();
        memory.objects.extend(stayed);
        match first_error {
            None => Ok(()),
            Some(e) => Err(Error::backend(
                &self.name,
                format!("{kept} of {total} objects could not be written to disk: {e}"),
            )),
        }
    }

    /// Writes one memory object to disk with all its references.
    async fn flush_one(&self, key: &Key, entry: &Entry) -> Result<()> {
        for reference in entry.refs.iter() {
            self.put_disk(
                key,
                &Payload::received(entry.data.clone()),
                *reference,
                entry.expires,
                DiskLimit::Ignored,
            )
            .await?;
        }
        Ok(())
    }

    /// Drops expired objects every 200 ms, for as long as the store lives (the task ends
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

    /// What each tier holds: memory, disk.
    pub fn usage(&self) -> (Usage, Usage) {
        let memory = self.memory();
        (
            Usage {
                objects: memory.objects.len() as u64,
                bytes: memory.used - memory.spare.capacity() as u64,
            },
            Usage {
                objects: self.disk_objects.load(Ordering::Relaxed),
                bytes: self.disk_used.load(Ordering::Relaxed),
            },
        )
    }
}

/// The expiry times a previous run left in `dir`, as instants of this run, for the objects
/// still on `disk` (the files of any others are removed).
fn read_expiry(dir: &Path, disk: &FileStore) -> HashMap<Key, Instant> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let Ok(files) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    files
        .flatten()
        .filter_map(|file| {
            let key: Key = file.file_name().to_str()?.parse().ok()?;
            if !disk.holds(&key) {
                let _ = std::fs::remove_file(file.path());
                return None;
            }
            let ms: u64 = std::fs::read_to_string(file.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let at = UNIX_EPOCH + Duration::from_millis(ms);
            // Already past: due now, and the first sweep drops it.
            Some((key, now + at.duration_since(wall).unwrap_or_default()))
        })
        .collect()
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
        self.put_payload(key, payload, options.reference, options.ttl)
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
        let reservation = self.reserve(key, len)?;
        match reservation.tier {
            Tier::Memory => {
                self.put_memory_incoming(key, len, body, options, reservation)
                    .await
            }
            Tier::Disk => {
                self.put_disk_incoming(key, len, body, options, reservation)
                    .await
            }
        }
    }

    /// In memory, a reference is added to the object there; on disk the body is written again
    /// (a repair, if it was damaged), as a put does.
    async fn add_reference(&self, key: &Key, len: u64, options: &PutOptions) -> Result<bool> {
        let _one_at_a_time = self.keys.lock(key).await;
        let mut memory = self.memory();
        let Some(entry) = memory.objects.get_mut(key) else {
            return Ok(false);
        };
        if entry.data.len() as u64 != len {
            return Ok(false);
        }
        entry.refs.add(options.reference);
        entry.expires = later(entry.expires, options.ttl.map(|t| Instant::now() + t));
        Ok(true)
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        let memory = self.memory().objects.get(key).map(|e| e.data.clone());
        let (fetched, tier) = match memory {
            Some(_) if options.delivery == Delivery::LocalMapping => (Fetched::NotLocal, None),
            Some(data) => (
                options.whole(&self.name, key, Object::Shared(data))?,
                Some(Tier::Memory),
            ),
            None => (self.disk.get_opts(key, options).await?, Some(Tier::Disk)),
        };
        if let (Some(tier), Fetched::Whole(_)) = (tier, &fetched) {
            self.hits[tier as usize].fetch_add(1, Ordering::Relaxed);
        }
        Ok(fetched)
    }

    async fn locate(&self, key: &Key) -> Result<Option<PathBuf>> {
        if self.memory().objects.contains_key(key) {
            return Ok(None);
        }
        self.disk.locate(key).await
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        if let Some(entry) = self.memory().objects.get(key) {
            return Ok(Some(entry.data.len() as u64));
        }
        self.disk.head(key).await
    }

    /// The memory tier's objects, then the disk tier's (an object is in one tier at a time).
    async fn list(&self) -> Result<Vec<Listed>> {
        let mut listed: Vec<Listed> = {
            let memory = self.memory();
            memory
                .objects
                .iter()
                .map(|(key, entry)| Listed {
                    key: *key,
                    len: entry.data.len() as u64,
                    references: entry.refs.iter().copied().collect(),
                    head: byref_core::head_of(&entry.data),
                })
                .collect()
        };
        listed.extend(self.disk.list().await?);
        Ok(listed)
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let _one_at_a_time = self.keys.lock(key).await;
        if let Some(released) = self.release_memory(key, reference) {
            return released;
        }
        let len = self.disk.head(key).await?;
        let deleted = self.disk.release(key, reference).await?;
        if deleted {
            self.forget_disk(key, len.unwrap_or(0));
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use byref_core::StoreExt;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiered_store_conforms_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        for (name, memory_limit) in [("memory", u64::MAX), ("disk", 0)] {
            let store = TieredStore::open(name, &dir.path().join(name), memory_limit, u64::MAX);
            byref_core::conformance::run_all(Arc::new(store.unwrap())).await;
        }
    }

    /// A body that sends `sent` bytes, then waits for `cut` and breaks off.
    struct Stalled {
        sent: Option<Bytes>,
        cut: Option<tokio::sync::oneshot::Receiver<()>>,
    }

    #[async_trait]
    impl Incoming for Stalled {
        async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
            if let Some(part) = self.sent.take() {
                return Ok(Some(part));
            }
            let _ = self.cut.take().expect("asked once more").await;
            Err("the client went away".into())
        }
    }

    /// Eight clients put one 2 MiB value into the disk tier at once: one object of 2 MiB is
    /// counted, nothing once every reference is released, and a 20 MiB tier still takes 18
    /// MiB more (before: 8 objects, 7 left after the releases, and `StoreFull` at 6 MiB).
    /// (With one put of a key at a time, the puts cannot all begin at once: each body gives up
    /// waiting for the others after 100 ms.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_of_one_value_count_one_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TieredStore::open("t", dir.path(), 0, 20 << 20).unwrap());
        let data = Bytes::from(vec![7u8; 2 << 20]);
        let key = Key::of(&data);
        let started = Arc::new(tokio::sync::Barrier::new(8));
        let puts: Vec<_> = (0..8)
            .map(|_| {
                let (store, data) = (store.clone(), data.clone());
                let started = started.clone();
                tokio::spawn(async move {
                    let options = PutOptions::new();
                    // As over a network: every put has begun before any body arrives.
                    let mut body = AfterAll(started, Some(data.clone()));
                    store
                        .put_incoming(&key, data.len() as u64, &mut body, &options)
                        .await
                        .map(|()| options.reference)
                })
            })
            // Spawned all before any is awaited.
            .collect();
        let mut references = Vec::new();
        for put in puts {
            references.push(put.await.unwrap().unwrap());
        }
        assert_eq!(
            store.usage().1,
            Usage {
                objects: 1,
                bytes: 2 << 20
            }
        );
        let big = Payload::from_parts(vec![Bytes::from(vec![8u8; 18 << 20])]);
        store
            .put(&Key::of(&vec![8u8; 18 << 20]), &big, &PutOptions::new())
            .await
            .expect("18 MiB more fit a 20 MiB tier holding 2 MiB");
        for reference in &references {
            store.release(&key, Some(reference)).await.unwrap();
        }
        assert_eq!(
            store.usage().1,
            Usage {
                objects: 1,
                bytes: 18 << 20
            }
        );
    }

    /// A body whose bytes come once all its barrier's puts have begun, or after 100 ms.
    struct AfterAll(Arc<tokio::sync::Barrier>, Option<Bytes>);

    #[async_trait]
    impl Incoming for AfterAll {
        async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
            let part = self.1.take();
            if part.is_some() {
                let _ = tokio::time::timeout(Duration::from_millis(100), self.0.wait()).await;
            }
            Ok(part)
        }
    }

    /// Room is taken when a body starts, not when it ends: a second put that would overfill
    /// a tier is refused before its body while the first is still arriving, and the room of
    /// a body that breaks off is given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_reserve_room_before_their_bodies_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TieredStore::open("t", dir.path(), 1 << 20, 10 << 20).unwrap());
        let (cut, cut_rx) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let store = store.clone();
            async move {
                let mut body = Stalled {
                    sent: Some(Bytes::from(vec![1u8; 1 << 20])),
                    cut: Some(cut_rx),
                };
                let key = Key::of(b"six megabytes, announced");
                store
                    .put_incoming(&key, 6 << 20, &mut body, &PutOptions::new())
                    .await
            }
        });
        // The first body's room is on disk (it does not fit memory) while it arrives.
        while store.usage().1.bytes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let data = vec![2u8; 5 << 20];
        let payload = Payload::from_parts(vec![Bytes::from(data.clone())]);
        let mut whole = Stalled {
            sent: Some(Bytes::from(data.clone())),
            cut: None,
        };
        let second = store
            .put_incoming(&Key::of(&data), 5 << 20, &mut whole, &PutOptions::new())
            .await;
        assert!(matches!(second, Err(Error::StoreFull { .. })), "{second:?}");
        assert!(
            whole.sent.is_some(),
            "refused before a byte of its body was read"
        );
        cut.send(()).unwrap();
        assert!(first.await.unwrap().is_err());
        assert_eq!(
            store.usage().1.bytes,
            0,
            "the broken body's room is given back"
        );
        assert_eq!(dir.path().join("tmp").read_dir().unwrap().count(), 0);
        store
            .put(&Key::of(&data), &payload, &PutOptions::new())
            .await
            .unwrap();
        assert_eq!(
            store.usage().1,
            Usage {
                objects: 1,
                bytes: 5 << 20
            }
        );
    }

    /// A released object's buffer takes the next put of its size, and that put's bytes are
    /// its own: nothing of the first object shows through, the first is gone, and the spare
    /// is not reported as stored.
    #[tokio::test]
    async fn a_released_objects_buffer_takes_the_next_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = TieredStore::open("t", dir.path(), 64 << 20, u64::MAX).unwrap();
        let put = |data: Vec<u8>| {
            let store = &store;
            async move {
                let key = Key::of(&data);
                let len = data.len() as u64;
                let mut body = byref_core::incoming::Whole::new(Bytes::from(data));
                store
                    .put_incoming(&key, len, &mut body, &PutOptions::new())
                    .await
                    .unwrap();
                key
            }
        };
        let first = put(vec![1u8; 4 << 20]).await;
        assert!(store.release(&first, None).await.unwrap());
        assert_eq!(store.memory().spare.capacity(), 4 << 20, "kept");
        assert_eq!(
            store.usage().0,
            Usage {
                objects: 0,
                bytes: 0
            }
        );
        let second = put(vec![2u8; 4 << 20]).await;
        assert_eq!(store.memory().spare.capacity(), 0, "taken");
        let got = store.get(&second).await.unwrap();
        assert!(got.as_slice().iter().all(|&b| b == 2));
        assert!(matches!(
            store.get(&first).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            store.usage().0,
            Usage {
                objects: 1,
                bytes: 4 << 20
            }
        );
        // A spare is room like any other: a put that needs it gets it.
        drop(got);
        assert!(store.release(&second, None).await.unwrap());
        let big = put(vec![3u8; 62 << 20]).await;
        assert_eq!(
            store.usage().0,
            Usage {
                objects: 1,
                bytes: 62 << 20
            }
        );
        assert!(
            store
                .get(&big)
                .await
                .unwrap()
                .as_slice()
                .iter()
                .all(|&b| b == 3)
        );
    }
}
