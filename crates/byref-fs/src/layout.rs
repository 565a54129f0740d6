//! Where things live under a file store's root.
//!
//! ```text
//! ROOT/objects/ab/abcdef...      one file per object, named by its key (hex), fanned out by
//!                                 the first two digits so no directory grows too large
//! ROOT/refs/abcdef.../<ref id>    one empty file per live reference to the object
//! ROOT/tmp/                       objects being written, and objects being deleted
//! ```
//!
//! All three live on one filesystem, so `rename` between them is atomic.

use std::path::{Path, PathBuf};

use byref_core::{Key, RefId};

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

    pub(crate) fn object(&self, key: &Key) -> PathBuf {
        let hex = key.to_hex();
        self.root.join("objects").join(&hex[..2]).join(hex)
    }

    /// The key and length of every object file (`objects/hh/<hex>`).
    pub(crate) fn object_keys(&self) -> impl Iterator<Item = (Key, u64)> {
        std::fs::read_dir(self.root.join("objects"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|shard| std::fs::read_dir(shard.path()).ok())
            .flatten()
            .flatten()
            .filter_map(|file| {
                let key = file.file_name().to_str()?.parse().ok()?;
                Some((key, file.metadata().ok()?.len()))
            })
    }

    pub(crate) fn refs(&self, key: &Key) -> PathBuf {
        self.root.join("refs").join(key.to_hex())
    }

    pub(crate) fn reference(&self, key: &Key, reference: &RefId) -> PathBuf {
        self.refs(key).join(reference.to_string())
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
