//! The TTLs of the disk tier's objects, mirrored in files so that a restart keeps them: one
//! file per object with a TTL, named by its key, holding its expiry time (Unix milliseconds,
//! decimal).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use byref_core::{Error, Key, Result, Store};
use byref_fs::FileStore;

/// When each disk object with a TTL is due.
#[derive(Debug)]
pub(crate) struct DiskExpiry {
    /// Names the store in errors.
    name: String,
    /// Expiry times by key, as instants of this run.
    times: Mutex<HashMap<Key, Instant>>,
    /// Where the files are.
    dir: PathBuf,
}

impl DiskExpiry {
    /// Reads back the times a previous run left in `dir` for the objects still on `disk` (the
    /// files of any others are removed).
    pub(crate) fn open(name: &str, dir: PathBuf, disk: &FileStore) -> Result<Self> {
        byref_fs::private::create_dir_all(&dir)
            .map_err(|e| Error::backend(disk.url(), format!("{}: {e}", dir.display())))?;
        Ok(DiskExpiry {
            name: name.to_owned(),
            times: Mutex::new(read_times(&dir, disk)),
            dir,
        })
    }

    fn times(&self) -> MutexGuard<'_, HashMap<Key, Instant>> {
        self.times.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the expiry a put asked for of an object now on disk (`existed`: before the
    /// put): the later of the two, or none if either put asked for none.
    pub(crate) fn note(&self, key: &Key, existed: bool, expires: Option<Instant>) -> Result<()> {
        let changed = {
            let mut times = self.times();
            match (existed, expires) {
                (_, None) => times.remove(key).map(|_| None),
                (false, Some(at)) => {
                    times.insert(*key, at);
                    Some(Some(at))
                }
                (true, Some(at)) => times.get_mut(key).map(|old| {
                    *old = (*old).max(at);
                    Some(*old)
                }),
            }
        };
        match changed {
            Some(expires) => self.save(key, expires),
            None => Ok(()),
        }
    }

    /// Removes the expiry of an object deleted from disk.
    pub(crate) fn remove(&self, key: &Key) {
        if self.times().remove(key).is_some() {
            // Left behind, it would give a later object of equal data this one's expiry after
            // a restart. Failing to remove it fails nothing now: it is retried on the next one.
            let _ = self.save(key, None);
        }
    }

    /// The objects due by `now`.
    pub(crate) fn due(&self, now: Instant) -> Vec<Key> {
        self.times()
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Mirrors an object's expiry (`None`: it has none) in its file, atomically.
    fn save(&self, key: &Key, expires: Option<Instant>) -> Result<()> {
        let path = self.dir.join(key.to_hex());
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
}

/// The expiry times a previous run left in `dir`, as instants of this run, for the objects
/// still on `disk` (the files of any others are removed).
fn read_times(dir: &Path, disk: &FileStore) -> HashMap<Key, Instant> {
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
            // Already past: due now, and the first sweep deletes it.
            Some((key, now + at.duration_since(wall).unwrap_or_default()))
        })
        .collect()
}
