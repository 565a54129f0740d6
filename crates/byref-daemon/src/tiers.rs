//! Where a daemon keeps objects: a memory tier up to a byte limit, then a disk tier.
//!
//! A put goes to memory while it fits and to disk after that ("spilling"); nothing is ever
//! dropped to make room. When both tiers are full a put fails with `StorageFull`, and an
//! object leaves only when its last reference is released or its TTL passes. The disk tier
//! is a byref file store (atomic writes, reference counts in the filesystem), so it survives
//! restarts, TTLs included (one small file per object with a TTL); on a graceful shutdown
//! the memory tier is written to it as well.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use byref_core::{Error, Key, Object, Payload, PutOptions, RefId, Result, Store, StoreUrl};
use byref_fs::FileStore;
use bytes::Bytes;

/// Where a fetched object came from, for the hit counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
}

#[derive(Debug)]
struct Entry {
    data: Bytes,
    refs: HashSet<RefId>,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
struct Memory {
    objects: HashMap<Key, Entry>,
    used: u64,
}

/// Objects and bytes held by one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of objects.
    pub objects: u64,
    /// Their total size.
    pub bytes: u64,
}

/// The two tiers.
#[derive(Debug)]
pub struct Tiers {
    memory: Mutex<Memory>,
    memory_limit: u64,
    disk: FileStore,
    disk_objects: AtomicU64,
    disk_used: AtomicU64,
    disk_limit: u64,
    /// TTLs of objects on disk, mirrored in `expiry_dir` so that a restart keeps them.
    disk_expiry: Mutex<HashMap<Key, Instant>>,
    /// One file per disk object with a TTL, named by its key, holding its expiry time (Unix
    /// milliseconds, decimal).
    expiry_dir: PathBuf,
}

fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    // No TTL on either put means the object is meant to stay.
    Some(a?.max(b?))
}

impl Tiers {
    /// Opens the tiers, the disk one under `dir` (reading back what a previous run left).
    pub fn open(dir: &Path, memory_limit: u64, disk_limit: u64) -> Result<Self> {
        let url = format!("file://{}", dir.display());
        let disk = FileStore::open(StoreUrl::parse(&url)?)?;
        let usage = disk_usage(&dir.join("objects"));
        let expiry_dir = dir.join("expiry");
        std::fs::create_dir_all(&expiry_dir)
            .map_err(|e| Error::backend(&url, format!("{}: {e}", expiry_dir.display())))?;
        let disk_expiry = read_expiry(&expiry_dir, &dir.join("objects"));
        Ok(Tiers {
            memory: Mutex::new(Memory::default()),
            memory_limit,
            disk,
            disk_objects: AtomicU64::new(usage.objects),
            disk_used: AtomicU64::new(usage.bytes),
            disk_limit,
            disk_expiry: Mutex::new(disk_expiry),
            expiry_dir,
        })
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn disk_expiry(&self) -> MutexGuard<'_, HashMap<Key, Instant>> {
        self.disk_expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an object of `len` bytes could be stored now (checked before its body is
    /// received, so a client is told "full" without sending gigabytes first).
    pub fn has_room(&self, len: u64) -> bool {
        self.memory().used + len <= self.memory_limit
            || self.disk_used.load(Ordering::Relaxed) + len <= self.disk_limit
    }

    /// Stores `data` under `key` with one more reference.
    pub async fn put(
        &self,
        key: &Key,
        data: Bytes,
        reference: RefId,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let expires = ttl.map(|t| Instant::now() + t);
        // An object lives in one tier only, so that its references are counted in one place.
        let on_disk = self.disk.head(key).await?.is_some();
        {
            let mut memory = self.memory();
            if let Some(entry) = memory.objects.get_mut(key) {
                entry.refs.insert(reference);
                entry.expires = later(entry.expires, expires);
                return Ok(());
            }
            let len = data.len() as u64;
            if !on_disk && memory.used + len <= self.memory_limit {
                memory.used += len;
                memory.objects.insert(
                    *key,
                    Entry {
                        data,
                        refs: HashSet::from([reference]),
                        expires,
                    },
                );
                return Ok(());
            }
        }
        self.put_disk(key, data, reference, expires, on_disk, true)
            .await
    }

    /// Puts on disk, where the object already `exists` or not; `within_limit: false` ignores
    /// the disk limit (the shutdown flush: keeping objects is worth more than the limit, and
    /// only a truly full disk stops it).
    async fn put_disk(
        &self,
        key: &Key,
        data: Bytes,
        reference: RefId,
        expires: Option<Instant>,
        exists: bool,
        within_limit: bool,
    ) -> Result<()> {
        let len = data.len() as u64;
        if within_limit && !exists && self.disk_used.load(Ordering::Relaxed) + len > self.disk_limit
        {
            return Err(Error::StorageFull {
                store: "byref daemon".into(),
                source: format!(
                    "an object of {len} bytes fits neither the memory tier ({} of {} bytes used) \
                     nor the disk tier ({} of {} bytes used)",
                    self.memory().used,
                    self.memory_limit,
                    self.disk_used.load(Ordering::Relaxed),
                    self.disk_limit
                )
                .into(),
            });
        }
        let options = PutOptions {
            reference,
            ..PutOptions::new()
        };
        self.disk
            .put(key, &Payload::from_parts(vec![data]), &options)
            .await?;
        if !exists {
            self.disk_used.fetch_add(len, Ordering::Relaxed);
            self.disk_objects.fetch_add(1, Ordering::Relaxed);
        }
        let changed = {
            let mut expiry = self.disk_expiry();
            match (exists, expires) {
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
                let scratch = path.with_extension("tmp");
                std::fs::write(&scratch, ms.to_string())
                    .and_then(|()| std::fs::rename(&scratch, &path))
            }
        };
        written.map_err(|e| Error::backend("byref daemon", format!("{}: {e}", path.display())))
    }

    /// The object and the tier it came from.
    pub async fn get(&self, key: &Key) -> Result<(Object, Tier)> {
        if let Some(entry) = self.memory().objects.get(key) {
            return Ok((Object::Shared(entry.data.clone()), Tier::Memory));
        }
        Ok((self.disk.get(key).await?, Tier::Disk))
    }

    /// The object's length, if stored.
    pub async fn head(&self, key: &Key) -> Result<Option<u64>> {
        if let Some(entry) = self.memory().objects.get(key) {
            return Ok(Some(entry.data.len() as u64));
        }
        self.disk.head(key).await
    }

    /// Drops a reference (`None`: any one); returns whether the object went with it.
    pub async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        {
            let mut memory = self.memory();
            if let Some(entry) = memory.objects.get_mut(key) {
                let removed = match reference {
                    Some(r) => entry.refs.remove(r),
                    None => match entry.refs.iter().next().copied() {
                        Some(r) => entry.refs.remove(&r),
                        None => false,
                    },
                };
                if !removed {
                    return Err(Error::ReferenceGone {
                        store: "byref daemon".into(),
                        key: *key,
                    });
                }
                if entry.refs.is_empty() {
                    let len = entry.data.len() as u64;
                    memory.objects.remove(key);
                    memory.used -= len;
                    return Ok(true);
                }
                return Ok(false);
            }
        }
        let len = self.disk.head(key).await?;
        let deleted = self.disk.release(key, reference).await?;
        if deleted {
            self.forget_disk(key, len.unwrap_or(0));
        }
        Ok(deleted)
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
    pub async fn flush(&self) -> Result<()> {
        let objects = std::mem::take(&mut self.memory().objects);
        for (key, entry) in objects {
            let mut exists = self.disk.head(&key).await?.is_some();
            for reference in entry.refs {
                self.put_disk(
                    &key,
                    entry.data.clone(),
                    reference,
                    entry.expires,
                    exists,
                    false,
                )
                .await?;
                exists = true;
            }
        }
        self.memory().used = 0;
        Ok(())
    }

    /// What each tier holds.
    pub fn usage(&self) -> (Usage, Usage) {
        let memory = self.memory();
        (
            Usage {
                objects: memory.objects.len() as u64,
                bytes: memory.used,
            },
            Usage {
                objects: self.disk_objects.load(Ordering::Relaxed),
                bytes: self.disk_used.load(Ordering::Relaxed),
            },
        )
    }
}

/// The expiry times a previous run left in `dir`, as instants of this run, for the objects
/// still under `objects` (the files of any others are removed).
fn read_expiry(dir: &Path, objects: &Path) -> HashMap<Key, Instant> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let Ok(files) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    files
        .flatten()
        .filter_map(|file| {
            let key: Key = file.file_name().to_str()?.parse().ok()?;
            let hex = key.to_hex();
            if !objects.join(&hex[..2]).join(&hex).exists() {
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

/// Counts the objects a file store holds (`objects/hh/<hex>`).
fn disk_usage(objects: &Path) -> Usage {
    let mut usage = Usage::default();
    let Ok(shards) = std::fs::read_dir(objects) else {
        return usage;
    };
    for file in shards
        .flatten()
        .filter_map(|s| std::fs::read_dir(s.path()).ok())
        .flatten()
        .flatten()
    {
        if let Ok(meta) = file.metadata() {
            usage.objects += 1;
            usage.bytes += meta.len();
        }
    }
    usage
}
