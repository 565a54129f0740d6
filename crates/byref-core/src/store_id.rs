//! Short names of file stores, so that a handle stays under 100 bytes whatever the length of
//! the store's path.
//!
//! A file store's id is the first 8 bytes of the BLAKE3 hash of its URL. The side that puts
//! writes a record, `$BYREF_CONFIG_DIR/stores/<id hex>`, holding the URL; a worker reads it
//! back from its own configuration directory — under the home directory, which an HPC
//! cluster's login and compute nodes share, as they share the file store itself. So a handle
//! still needs nothing but the worker's environment, and it can only name stores its user
//! recorded: a handle from anyone cannot point a worker at another path.
//!
//! Where no record can be written (no home directory, a read-only one) handles carry the URL,
//! as they do for every other kind of store: network stores are reached from machines that
//! may share no directory with the putting side.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::own_file;
use crate::{Error, Result, secrets};

/// Bytes of a store id.
pub const LEN: usize = 8;
/// Longest URL a record may hold (as long as a handle's URL may be).
pub const MAX_URL: u64 = 4096;

/// The short name of a store URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(pub [u8; LEN]);

impl StoreId {
    /// The id of `url`.
    pub fn of(url: &str) -> Self {
        let hash = blake3::hash(url.as_bytes());
        StoreId(hash.as_bytes()[..LEN].try_into().expect("8 bytes"))
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What this process learned: ids to URLs (records written or read), and URLs whose record
/// could not be written (they travel whole).
#[derive(Default)]
struct Known {
    urls: HashMap<StoreId, String>,
    unrecorded: HashSet<String>,
}

fn known() -> MutexGuard<'static, Known> {
    static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Default::default);
    KNOWN.lock().unwrap_or_else(|p| p.into_inner())
}

fn records() -> Option<PathBuf> {
    secrets::config_dir().map(|dir| dir.join("stores"))
}

/// Whether handles may name the store at `url` by its id: a file store whose record is (now)
/// written, unless `BYREF_STORE_IDS=off` (workers that cannot see the putting side's
/// configuration directory, such as containers without the home directory). Checked once per
/// URL per process.
pub fn recorded(url: &str) -> bool {
    if !url.starts_with("file://")
        || std::env::var_os("BYREF_STORE_IDS").is_some_and(|v| v == "off")
    {
        return false;
    }
    let id = StoreId::of(url);
    {
        let known = known();
        if known.urls.contains_key(&id) {
            return true;
        }
        if known.unrecorded.contains(url) {
            return false;
        }
    }
    let written = records().is_some_and(|dir| write_record(&dir, id, url).is_ok());
    let mut known = known();
    if written {
        known.urls.insert(id, url.to_owned());
    } else {
        known.unrecorded.insert(url.to_owned());
    }
    written
}

/// Writes the record of `id` unless one is there: a private file, renamed into place whole.
fn write_record(dir: &std::path::Path, id: StoreId, url: &str) -> io::Result<()> {
    let path = dir.join(id.hex());
    if read_record(&path, id).is_ok() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let scratch = dir.join(format!(".{}.{}", id.hex(), std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&scratch)?;
    file.write_all(url.as_bytes())?;
    drop(file);
    fs::rename(&scratch, &path)
}

/// The URL in the record at `path`, if it is one whose id is `id`.
fn read_record(path: &std::path::Path, id: StoreId) -> io::Result<String> {
    // Checked before reading: a record is this user's URL, not whatever someone put at the path.
    let url = own_file::read(path, MAX_URL)
        .and_then(|file| file.map(own_file::OwnFile::text).transpose())
        .map_err(|e| io::Error::other(e.to_string()))?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such record"))?;
    if StoreId::of(&url) != id {
        return Err(io::Error::other("it holds the URL of another store"));
    }
    Ok(url)
}

/// The URL of the store `id` names: one this process recorded or read before, the default
/// store (`$BYREF_URL`), or the one in the record.
pub fn url_of(id: StoreId) -> Result<String> {
    if let Some(url) = known().urls.get(&id) {
        return Ok(url.clone());
    }
    if let Ok(url) = std::env::var("BYREF_URL")
        && StoreId::of(&url) == id
    {
        return Ok(url);
    }
    let Some(dir) = records() else {
        return Err(unknown(
            id,
            "this process has no configuration directory (no $HOME)",
        ));
    };
    let path = dir.join(id.hex());
    let url =
        read_record(&path, id).map_err(|e| unknown(id, &format!("{}: {e}", path.display())))?;
    known().urls.insert(id, url.clone());
    Ok(url)
}

fn unknown(id: StoreId, why: &str) -> Error {
    Error::Handle(format!(
        "the handle names file store {} by its id, and this machine has no record of it ({why}); \
         the putting side writes one in its $BYREF_CONFIG_DIR/stores (by default under \
         ~/.config/byref): share that directory with the workers, set BYREF_URL on them to the \
         store's URL, or set BYREF_STORE_IDS=off where the proxies are made",
        id.hex()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_must_hold_the_url_of_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let url = "file:///a/path/of/some/length/for/a/store";
        let id = StoreId::of(url);
        write_record(dir.path(), id, url).unwrap();
        assert_eq!(read_record(&dir.path().join(id.hex()), id).unwrap(), url);
        let other = StoreId::of("file:///elsewhere");
        fs::write(dir.path().join(other.hex()), url).unwrap();
        assert!(read_record(&dir.path().join(other.hex()), other).is_err());
        fs::write(dir.path().join(other.hex()), vec![b'x'; 5000]).unwrap();
        assert!(read_record(&dir.path().join(other.hex()), other).is_err());
    }
}
