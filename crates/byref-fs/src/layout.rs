//! Where things live under a file store's root.
//!
//! ```text
//! ROOT/objects/abc/<key hex>.<ref id>   one name per reference; every name of a key is a hard
//!                                        link to the one file holding its bytes
//! ROOT/tmp/                              objects being written
//! ```
//!
//! A reference is a name, so the file's link count is the reference count, kept by the
//! filesystem: adding a reference is one `link`, releasing one is one `unlink`, and the bytes go
//! when the last name does. No per-object directory, no marker files.
//!
//! Objects are fanned out by the first three hex digits of their key: 4096 directories, made
//! on first use, so that a directory of a store with ten million references holds about 2,500
//! names (parallel filesystems slow down on directories of many thousands).
//!
//! Both live on one filesystem, so `rename` and `link` between them work.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use byref_core::{Key, RefId};

/// Hex digits of the key that name its fan-out directory.
const FAN_OUT_DIGITS: usize = 3;

/// Paths under one store root.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The store's root directory.
    root: PathBuf,
}

impl Paths {
    pub(crate) fn new(root: PathBuf) -> Self {
        Paths { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }

    /// The fan-out directory of `key`'s names.
    pub(crate) fn shard(&self, key: &Key) -> PathBuf {
        self.objects().join(&key.to_hex()[..FAN_OUT_DIGITS])
    }

    /// The name that is `reference` to `key`.
    pub(crate) fn name(&self, key: &Key, reference: &RefId) -> PathBuf {
        self.shard(key)
            .join(format!("{}.{reference}", key.to_hex()))
    }

    /// The names of `key` (one per reference), in directory order, read as they are asked
    /// for: a caller that wants any one of them stops at the first, which for a key with
    /// many references (one value handed to thousands of tasks) comes at once.
    pub(crate) fn names(
        &self,
        key: &Key,
    ) -> io::Result<impl Iterator<Item = io::Result<PathBuf>> + use<>> {
        let entries = match fs::read_dir(self.shard(key)) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let prefix = format!("{}.", key.to_hex());
        Ok(entries
            .into_iter()
            .flatten()
            .filter_map(move |entry| match entry {
                Ok(entry) => entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                    .then(|| Ok(entry.path())),
                Err(e) => Some(Err(e)),
            }))
    }

    /// The fan-out directories that exist.
    pub(crate) fn shards(&self) -> Vec<PathBuf> {
        fs::read_dir(self.objects())
            .into_iter()
            .flatten()
            .flatten()
            .map(|shard| shard.path())
            .collect()
    }

    /// Every name in fan-out directory `shard`, with the key and the reference it is.
    pub(crate) fn names_in(shard: &Path) -> impl Iterator<Item = (Key, RefId, fs::DirEntry)> {
        fs::read_dir(shard)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let (key, reference) = name.to_str()?.split_once('.')?;
                let reference = u128::from_str_radix(reference, 16)
                    .ok()
                    .filter(|_| reference.len() == 32)?;
                let reference = RefId::from_bytes(reference.to_be_bytes());
                Some((key.parse().ok()?, reference, entry))
            })
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A private name in `tmp/` for `key`: unique per writer, so concurrent writers of the
    /// same key never share a temporary file.
    pub(crate) fn scratch(&self, key: &Key, purpose: &str) -> PathBuf {
        self.tmp()
            .join(format!("{}.{}.{purpose}", key.to_hex(), RefId::random()))
    }
}
