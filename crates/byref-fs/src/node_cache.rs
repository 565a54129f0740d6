//! A node-local cache of objects fetched from network stores: one copy per machine, in a
//! directory in memory (`/dev/shm`), that every process on the node maps.
//!
//! - Entries are whole objects named by their key, written under a temporary name and renamed
//!   into place, so a reader never sees a partial one. Whoever inserts has verified the bytes
//!   against the key: keys are content addresses, so an entry serves every store and process.
//! - Single flight across processes: a fetcher holds an exclusive `flock` on the key's lock
//!   file while it fetches; others block on it (no polling) and then find the entry. The
//!   kernel drops the lock when its holder dies, so the next waiter takes over.
//! - Bounded: past its capacity, entries least recently used (by modification time, which a
//!   hit refreshes) are unlinked; processes that mapped them keep reading them.
//! - Private: the directory is 0700 and must belong to this user, entries 0600.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use byref_core::incoming::Incoming;
use byref_core::{Key, Object, RefId, mapping};
use bytes::Bytes;

use crate::private;
use crate::spool::{self, SpoolError};

/// The environment variable choosing the cache directory, or `off`.
pub const NODE_CACHE_VAR: &str = "BYREF_NODE_CACHE";
/// The environment variable bounding the cache, in bytes.
pub const NODE_CACHE_BYTES_VAR: &str = "BYREF_NODE_CACHE_BYTES";
/// Entries smaller than this are read rather than mapped, as in the file store.
const MAP_MIN: u64 = 64 << 10;

/// A node-local object cache in a directory.
#[derive(Debug)]
pub struct NodeCache {
    /// Where entries live: `<key hex>` objects and `<key hex>.lock` lock files.
    dir: PathBuf,
    /// Most bytes of entries kept.
    capacity: u64,
    /// Bytes and entries this process inserted since it last trimmed. A trim lists the whole
    /// directory, so it runs on a process's first insert and then once enough came in to
    /// matter (a sixteenth of the capacity, or [`TRIM_EVERY`] entries), not on every insert:
    /// trimming on every insert, small fetches into a cache of 64,816 files took 110 ms each.
    untrimmed: Mutex<(u64, u32)>,
}

/// Inserts between trims, at most.
const TRIM_EVERY: u32 = 256;

/// Why a streamed insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// The body broke off, stalled or ran over: the fetch failed.
    Body(String),
    /// The bytes hash to this, not to the key: the store sent other bytes.
    Hash(Key),
    /// The cache could not take it (a full filesystem).
    Io(io::Error),
}

/// The exclusive right to fetch one key into the cache; released when dropped (or when the
/// process holding it dies).
#[derive(Debug)]
pub struct FetchLock {
    /// The locked file.
    file: File,
    /// The key it is the right to fetch.
    key: Key,
}

impl Drop for FetchLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// How many other names in `/dev/shm` the node cache tries when another user took its own.
const FALLBACKS: usize = 7;

impl NodeCache {
    /// The cache this process uses: `$BYREF_NODE_CACHE` (a directory, or `off`), else
    /// `/dev/shm/byref-<uid>` where `/dev/shm` exists; `None` when disabled or unusable, with
    /// a warning on standard error saying why when it was not turned off.
    ///
    /// Anyone can create a name in `/dev/shm`: where another user made `byref-<uid>` first,
    /// the processes of this user all go on to `byref-<uid>-1`, then `-2`... (the first of
    /// [`FALLBACKS`] that is theirs), so they still share one cache.
    /// Capacity: `$BYREF_NODE_CACHE_BYTES`, else a quarter of the free space of the
    /// filesystem holding it when first opened — `/dev/shm` is memory, and the other three
    /// quarters stay for the tasks that read the objects.
    pub fn from_env() -> Option<NodeCache> {
        let candidates: Vec<PathBuf> = match std::env::var(NODE_CACHE_VAR) {
            Ok(v) if v == "off" => return None,
            Ok(v) => vec![PathBuf::from(v)],
            Err(_) => {
                let shm = Path::new("/dev/shm");
                if !shm.is_dir() {
                    return None;
                }
                let base = format!("byref-{}", rustix::process::getuid().as_raw());
                (0..=FALLBACKS)
                    .map(|n| match n {
                        0 => shm.join(&base),
                        n => shm.join(format!("{base}-{n}")),
                    })
                    .collect()
            }
        };
        let capacity = std::env::var(NODE_CACHE_BYTES_VAR)
            .ok()
            .and_then(|v| byref_core::parse_size(&v).ok());
        let mut refused = Vec::new();
        for dir in candidates {
            match NodeCache::open(dir.clone(), capacity) {
                Ok(cache) => return Some(cache),
                Err(e) => refused.push(e.to_string()),
            }
        }
        eprintln!(
            "byref: warning: no node cache (each process fetches its own copy): {}",
            refused.join("; ")
        );
        None
    }

    /// Opens (creating, 0700) the cache in `dir`, bounded by `capacity` bytes (default: a
    /// quarter of the filesystem's free space). Refuses a directory another user could
    /// read or plant files in.
    pub fn open(dir: PathBuf, capacity: Option<u64>) -> io::Result<NodeCache> {
        let owner_of = |meta: &fs::Metadata| match meta.uid() {
            uid if uid == rustix::process::getuid().as_raw() => String::new(),
            uid => format!(", but user {uid}'s"),
        };
        match private::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let meta = fs::symlink_metadata(&dir)?;
        let mine = meta.uid() == rustix::process::getuid().as_raw();
        if !meta.is_dir() || !mine || meta.permissions().mode() & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a private directory of this user (mode 0700){}",
                    dir.display(),
                    owner_of(&meta)
                ),
            ));
        }
        let capacity = match capacity {
            Some(c) => c,
            None => {
                let stat = rustix::fs::statvfs(&dir)?;
                stat.f_bavail.saturating_mul(stat.f_frsize) / 4
            }
        };
        Ok(NodeCache {
            dir,
            capacity,
            // The first insert trims: a new process sweeps what a killed fetcher left.
            untrimmed: Mutex::new((0, TRIM_EVERY - 1)),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether an object of `len` bytes may enter: one larger than the whole cache would
    /// only push every other entry out, then itself.
    pub fn fits(&self, len: u64) -> bool {
        len <= self.capacity
    }

    fn entry(&self, key: &Key) -> PathBuf {
        self.dir.join(key.to_hex())
    }

    /// The cached object: a private copy-on-write mapping (writes never reach the entry),
    /// or its bytes when small. A hit marks the entry as recently used.
    pub fn get(&self, key: &Key) -> Option<Object> {
        let mut file = File::open(self.entry(key)).ok()?;
        let len = file.metadata().ok()?.len();
        let _ = file.set_modified(SystemTime::now());
        if len < MAP_MIN {
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data).ok()?;
            return Some(Object::Shared(Bytes::from(data)));
        }
        mapping::map_private(&file).ok().map(Object::Mapped)
    }

    /// The lock file of the key whose hex digits are `hex`.
    fn lock_path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}.lock"))
    }

    /// Waits (blocking the thread) for the exclusive right to fetch `key` into the cache.
    pub fn lock(&self, key: &Key) -> io::Result<FetchLock> {
        let path = self.lock_path(&key.to_hex());
        let file = match private::create_file(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::OpenOptions::new().write(true).open(&path)?
            }
            Err(e) => return Err(e),
        };
        file.lock()?;
        Ok(FetchLock { file, key: *key })
    }

    /// Streams `body`, announced as `len` bytes, into `key`'s entry: written to a private
    /// temporary file as it arrives (one block in memory, never the object), hashed on the
    /// way, and renamed into place only if it hashes to `key`. Then trims the cache.
    pub async fn insert_incoming(
        &self,
        lock: &FetchLock,
        len: u64,
        body: &mut dyn Incoming,
    ) -> Result<(), InsertError> {
        let key = &lock.key;
        let scratch = self
            .dir
            .join(format!("{}.{}.tmp", key.to_hex(), RefId::random()));
        let (mut spooled, hashed) =
            spool::spool(scratch, body, len, false)
                .await
                .map_err(|e| match e {
                    SpoolError::Body(e) => InsertError::Body(e),
                    SpoolError::Io(e) => InsertError::Io(e),
                })?;
        if hashed != *key {
            return Err(InsertError::Hash(hashed));
        }
        fs::rename(&spooled.path, self.entry(key)).map_err(InsertError::Io)?;
        spooled.placed();
        if self.due_for_trim(len) {
            self.trim(lock);
        }
        Ok(())
    }

    /// Whether the cache's filesystem has room for `len` more bytes now: a fetch that could
    /// not fit goes around the cache rather than fail half way.
    pub fn has_room(&self, len: u64) -> bool {
        rustix::fs::statvfs(&self.dir)
            .is_ok_and(|stat| stat.f_bavail.saturating_mul(stat.f_frsize) > len)
    }

    /// Removes a temporary file `<key>.<random>.tmp` whose writer is gone: its key's fetch
    /// lock is free (a live writer holds it, and the kernel frees it when the writer dies),
    /// or it is `held`, this process's (whose own file is already in place).
    fn remove_if_orphaned(&self, scratch: &Path, held: &FetchLock) {
        let Some(hex) = scratch
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
        else {
            return;
        };
        if hex == held.key.to_hex() {
            let _ = fs::remove_file(scratch);
            return;
        }
        if let Ok(file) = fs::OpenOptions::new().write(true).open(self.lock_path(hex))
            && file.try_lock().is_ok()
        {
            let _ = fs::remove_file(scratch);
        }
    }

    /// Removes `key`'s entry (one found damaged: of another length than its key's object).
    pub fn remove(&self, key: &Key) {
        let _ = fs::remove_file(self.entry(key));
    }

    /// Counts an insert of `len` bytes; whether the cache should be trimmed now.
    fn due_for_trim(&self, len: u64) -> bool {
        let mut untrimmed = self.untrimmed.lock().unwrap_or_else(|p| p.into_inner());
        let (bytes, count) = *untrimmed;
        let (bytes, count) = (bytes.saturating_add(len), count + 1);
        let due = bytes > self.capacity / 16 || count >= TRIM_EVERY;
        *untrimmed = if due { (0, 0) } else { (bytes, count) };
        due
    }

    /// Unlinks entries, least recently used first, until they fit the capacity, and the
    /// temporary files of fetchers that died mid-fetch. `held`: the lock of this process's fetch.
    fn trim(&self, held: &FetchLock) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let entries: Vec<fs::DirEntry> = entries.flatten().collect();
        for scratch in entries.iter().filter(|e| is_scratch(e)) {
            self.remove_if_orphaned(&scratch.path(), held);
        }
        let mut objects: Vec<(SystemTime, u64, PathBuf)> = entries
            .iter()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.len() == 64))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut used: u64 = objects.iter().map(|(_, len, _)| len).sum();
        objects.sort();
        for (_, len, path) in objects {
            if used <= self.capacity {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
    }
}

/// Whether a directory entry is a fetch's temporary file.
fn is_scratch(entry: &fs::DirEntry) -> bool {
    entry
        .file_name()
        .to_str()
        .is_some_and(|n| n.ends_with(".tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use byref_core::incoming::Whole;

    fn cache(dir: &tempfile::TempDir, capacity: u64) -> NodeCache {
        NodeCache::open(dir.path().join("node"), Some(capacity)).unwrap()
    }

    impl NodeCache {
        async fn insert(&self, key: &Key, data: &[u8]) -> Result<(), InsertError> {
            let mut body = Whole::new(Bytes::copy_from_slice(data));
            let lock = self.lock(key).unwrap();
            self.insert_incoming(&lock, data.len() as u64, &mut body)
                .await
        }
    }

    fn files(node: &NodeCache) -> usize {
        fs::read_dir(node.dir()).unwrap().count()
    }

    #[tokio::test]
    async fn only_whole_bytes_of_the_key_enter() {
        let dir = tempfile::tempdir().unwrap();
        let node = cache(&dir, 1 << 20);
        let data = vec![5u8; 100_000];
        let key = Key::of(&data);
        let forged = node.insert(&Key::of(b"other"), &data).await;
        assert!(matches!(forged, Err(InsertError::Hash(h)) if h == key));
        let mut short = Whole::new(Bytes::from(data.clone()));
        let lock = node.lock(&key).unwrap();
        let cut = node.insert_incoming(&lock, 100_001, &mut short).await;
        drop(lock);
        assert!(matches!(cut, Err(InsertError::Body(_))), "{cut:?}");
        let locks = 2;
        assert_eq!(files(&node), locks, "a refused body left a file");
        node.insert(&key, &data).await.unwrap();
        assert_eq!(node.get(&key).unwrap().as_slice(), &data[..]);
        node.remove(&key);
        assert!(node.get(&key).is_none());
    }

    #[tokio::test]
    async fn entries_map_privately_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let node = cache(&dir, 3 << 20);
        let data: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1 << 20]).collect();
        let keys: Vec<Key> = data.iter().map(|d| Key::of(d)).collect();
        for (key, d) in keys.iter().zip(&data) {
            node.insert(key, d).await.unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Mapped, and writes stay private.
        let Some(Object::Mapped(mut first)) = node.get(&keys[0]) else {
            panic!("not mapped")
        };
        first[0] = 99;
        assert_eq!(node.get(&keys[0]).unwrap().as_slice()[0], 0);
        // A fourth entry pushes out the least recently used: keys[1] (keys[0] was just hit).
        let extra = vec![7u8; 1 << 20];
        node.insert(&Key::of(&extra), &extra).await.unwrap();
        assert!(node.get(&keys[1]).is_none());
        assert!(node.get(&keys[0]).is_some() && node.get(&keys[2]).is_some());
        // A mapping outlives its entry's removal (unlink semantics).
        fs::remove_file(node.entry(&keys[0])).unwrap();
        assert_eq!((first[0], first[1 << 19]), (99, 0));
        assert!(node.fits(3 << 20) && !node.fits((3 << 20) + 1));
        let mode = fs::metadata(node.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_others_can_reach_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(NodeCache::open(shared, Some(1 << 20)).is_err());
    }

    #[test]
    fn one_fetcher_at_a_time_and_a_dead_holder_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let node = cache(&dir, 1 << 20);
        let key = Key::of(b"k");
        let held = node.lock(&key).unwrap();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(node.lock_path(&key.to_hex()))
            .unwrap();
        assert!(file.try_lock().is_err(), "a second fetcher got the lock");
        drop(held);
        assert!(file.try_lock().is_ok(), "a released lock stays taken");
    }
}
