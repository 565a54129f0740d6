//! `file:///path`: objects as files in a directory, local or on a shared filesystem.
//!
//! - A reader never sees a partial object: objects are written under a temporary name and
//!   renamed into place.
//! - No file locks, so it works on NFS, Lustre and GPFS: references are one empty file each,
//!   and the last release is decided by `rmdir` of the reference directory, which the
//!   filesystem only lets succeed once it is empty. The protocol (and its race with a
//!   concurrent put) is `byref_core::refcount`'s; this crate provides its file operations.
//! - Private by default: objects, references and directories are created 0600/0700.
//! - Reads of large objects are private copy-on-write mappings: no copy, writable, and writes
//!   never reach the stored file.
//!
//! A backend: depends on `byref-core` only.

mod layout;
pub mod node_cache;
mod private;
mod spool;

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use byref_core::incoming::{Incoming, check_hash};
use byref_core::{
    Capabilities, Error, Key, Object, Payload, Progress, PutOptions, RefId, Result, Store,
    StoreUrl, UrlBuilder, Usage, check_range, refcount, refuse_ttl,
};
use bytes::Bytes;
use refcount::Entries;
use spool::SpoolError;

use layout::Paths;

/// URL scheme of [`FileStore`].
pub const SCHEME: &str = "file";

/// Objects smaller than this are read into memory: a mapping costs more than the copy.
const MAP_MIN: u64 = 64 << 10;
/// Puts larger than this run on tokio's blocking pool, so an async caller (a server using
/// this store as its disk tier) never stalls a worker thread on a long write. Smaller ones
/// run inline: a thread hop would cost more than the write.
const INLINE_WRITE_MAX: u64 = 1 << 20;
/// Listings a release of "any reference" tries when concurrent releasers keep taking
/// every entry it saw first.
const LISTINGS: u32 = 64;
/// A put's progress moves in steps of this many bytes.
const PROGRESS_STEP: usize = 8 << 20;

/// What [`FileStore::recover`] cleaned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Partial puts and objects moved aside by a release, in `tmp/`.
    pub temp_files: u64,
    /// Reference directories of objects that are not there.
    pub orphan_references: u64,
    /// Objects without a reference.
    pub orphan_objects: u64,
    /// Bytes freed.
    pub bytes: u64,
}

/// A store in a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    /// The URL that opens this store again.
    url: String,
    /// Where each file goes.
    paths: Paths,
    /// fsync objects before renaming them into place: survives power loss, costs latency.
    fsync: bool,
}

impl FileStore {
    /// Opens `file:///abs/path[?fsync=true]`, creating the directory if needed.
    pub fn open(mut url: StoreUrl) -> Result<Self> {
        url.refuse_credentials("a file store is protected by file permissions")?;
        let root = url
            .url()
            .to_file_path()
            .map_err(|()| Error::Config(format!("{} is not a local absolute path", url.url())))?;
        if url
            .url()
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
        {
            return Err(Error::Config(format!(
                "file:// URLs take no host: {}",
                url.url()
            )));
        }
        let fsync = url.take_bool("fsync", false)?;
        url.finish()?;
        let root_str = root
            .to_str()
            .ok_or_else(|| Error::Config(format!("store path {} is not UTF-8", root.display())))?;
        let canonical = UrlBuilder::new(SCHEME, root_str)
            .option_if("fsync", fsync.then_some(true))
            .build();
        let store = FileStore {
            url: canonical,
            paths: Paths::new(root),
            fsync,
        };
        for dir in [
            store.paths.root().join("objects"),
            store.paths.root().join("refs"),
        ] {
            private::create_dir_all(&dir).map_err(|e| store.io_error(e, &dir))?;
        }
        private::create_dir_all(&store.paths.tmp())
            .map_err(|e| store.io_error(e, &store.paths.tmp()))?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.paths.root()
    }

    /// What the store holds, counted by walking its object directories.
    pub fn usage(&self) -> Usage {
        self.paths
            .object_keys()
            .fold(Usage::default(), |usage, (_, len)| Usage {
                objects: usage.objects + 1,
                bytes: usage.bytes + len,
            })
    }

    /// Cleans what writers and releasers killed mid-way left behind, and says how much:
    /// partial puts and objects moved aside in `tmp/`, references of objects that are not
    /// there, and objects no reference holds.
    ///
    /// Only for a store no other process is using (the daemon's disk tier, at start): a
    /// shared store's `tmp/` holds other processes' puts in progress.
    pub fn recover(&self) -> Recovered {
        let mut recovered = Recovered::default();
        for entry in fs::read_dir(self.paths.tmp())
            .into_iter()
            .flatten()
            .flatten()
        {
            let len = entry.metadata().map_or(0, |m| m.len());
            if fs::remove_file(entry.path()).is_ok() {
                recovered.temp_files += 1;
                recovered.bytes += len;
            }
        }
        let refs = self.paths.root().join("refs");
        for entry in fs::read_dir(&refs).into_iter().flatten().flatten() {
            let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Key>().ok())
            else {
                continue;
            };
            if !self.holds(&key) && fs::remove_dir_all(entry.path()).is_ok() {
                recovered.orphan_references += 1;
            }
        }
        for (key, len) in self.paths.object_keys() {
            if !self.paths.refs(&key).exists() && fs::remove_file(self.paths.object(&key)).is_ok() {
                recovered.orphan_objects += 1;
                recovered.bytes += len;
            }
        }
        recovered
    }

    /// Whether `key`'s object is stored: one `stat`, for callers that keep records beside
    /// the store (the daemon's TTL files).
    pub fn holds(&self, key: &Key) -> bool {
        self.paths.object(key).exists()
    }

    fn io_error(&self, e: io::Error, path: &Path) -> Error {
        let source = format!("{}: {e}", path.display()).into();
        match e.kind() {
            // EFBIG (a per-file size limit) leaves the store as unable to take the object as
            // a full disk does.
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                Error::StorageFull {
                    store: self.url.clone(),
                    source,
                }
            }
            _ => Error::Backend {
                store: self.url.clone(),
                source,
            },
        }
    }

    /// Removes any one reference file of `key`; `false` only when a listing shows none.
    /// Concurrent releasers may take every entry of one listing first, while puts add new
    /// ones: then list again (a bounded number of times), rather than report "not found" for
    /// an object that still has references.
    fn remove_any_marker(&self, key: &Key) -> Result<bool> {
        let dir = self.paths.refs(key);
        for _ in 0..LISTINGS {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(self.io_error(e, &dir)),
            };
            let mut listed = false;
            for entry in entries.flatten() {
                listed = true;
                match fs::remove_file(entry.path()) {
                    Ok(()) => return Ok(true),
                    // Another releaser took it first; try the next one.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io_error(e, &entry.path())),
                }
            }
            if !listed {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// Writes the object under a private temporary name, then renames it into place.
    fn write_object_blocking(
        &self,
        key: &Key,
        payload: &Payload,
        progress: Option<&Progress>,
    ) -> Result<()> {
        let target = self.paths.object(key);
        let scratch = self.paths.scratch(key, "put");
        let written = (|| {
            let mut file = private::create_file(&scratch)?;
            for part in payload.parts() {
                // In steps, so that a progress bar moves during a big part.
                for step in part.chunks(PROGRESS_STEP) {
                    file.write_all(step)?;
                    if let Some(progress) = progress {
                        progress.advance(step.len() as u64);
                    }
                }
            }
            if self.fsync {
                file.sync_all()?;
            }
            self.install(&scratch, key)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&scratch);
            return Err(self.io_error(e, &target));
        }
        Ok(())
    }

    /// Renames a written temporary file into place as `key`'s object (replacing any copy
    /// there: same key, same bytes, so a reader sees one or the other, both whole).
    fn install(&self, scratch: &Path, key: &Key) -> io::Result<()> {
        let target = self.paths.object(key);
        match fs::rename(scratch, &target) {
            // The first object in its fan-out directory.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                private::create_dir_all(target.parent().expect("objects have a parent"))?;
                fs::rename(scratch, &target)
            }
            done => done,
        }
    }

    /// Whether the object file holds exactly the bytes of `key`, read back and hashed.
    fn hashes_to_key(&self, key: &Key, len: u64) -> Result<bool> {
        let Some(mut file) = self.open_object(key)? else {
            return Ok(false);
        };
        let path = self.paths.object(key);
        let size = file.metadata().map_err(|e| self.io_error(e, &path))?.len();
        if size != len {
            return Ok(false);
        }
        let object = self.read_object(key, &mut file)?;
        Ok(Key::of(object.as_slice()) == *key)
    }

    fn open_object(&self, key: &Key) -> Result<Option<File>> {
        let path = self.paths.object(key);
        match File::open(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(e, &path)),
        }
    }

    fn read_object(&self, key: &Key, file: &mut File) -> Result<Object> {
        let path = self.paths.object(key);
        let len = file.metadata().map_err(|e| self.io_error(e, &path))?.len();
        if len < MAP_MIN {
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data)
                .map_err(|e| self.io_error(e, &path))?;
            return Ok(Object::Shared(Bytes::from(data)));
        }
        byref_core::mapping::map_private(file)
            .map(Object::Mapped)
            .map_err(|e| self.io_error(e, &path))
    }
}

/// The reference-counting protocol of `byref_core::refcount`, on files: a reference is an
/// empty file in the key's reference directory, and "no reference left" is the one `rmdir`
/// of that directory that succeeds.
#[async_trait]
impl Entries for FileStore {
    type Aside = PathBuf;

    fn store_url(&self) -> &str {
        &self.url
    }

    /// Adds a reference file. The key's reference directory is made on demand (not checked
    /// first: on a shared filesystem every metadata call is a round trip), and made again if a
    /// concurrent last release removes it between our `mkdir` and our file creation.
    async fn add_marker(&self, key: &Key, reference: &RefId) -> Result<()> {
        let path = self.paths.reference(key, reference);
        loop {
            match private::create_file(&path) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let dir = self.paths.refs(key);
                    match private::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(self.io_error(e, &dir)),
                    }
                }
                Err(e) => return Err(self.io_error(e, &path)),
            }
        }
    }

    async fn remove_marker(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let path = match reference {
            Some(r) => self.paths.reference(key, r),
            None => return self.remove_any_marker(key),
        };
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error(e, &path)),
        }
    }

    async fn has_markers(&self, key: &Key) -> Result<bool> {
        Ok(self.paths.refs(key).exists())
    }

    async fn markers_gone(&self, key: &Key) -> Result<bool> {
        // rmdir succeeds for exactly one releaser, and only once no reference is left.
        let refs = self.paths.refs(key);
        match fs::remove_dir(&refs) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::DirectoryNotEmpty | ErrorKind::NotFound) => {
                Ok(false)
            }
            Err(e) => Err(self.io_error(e, &refs)),
        }
    }

    /// Read back and hashed: costs a read of the object, less than writing it again, and a
    /// put of a damaged object (a bit flip, a truncation by a full disk) repairs it.
    async fn object_intact(&self, key: &Key, len: u64) -> Result<bool> {
        if len <= INLINE_WRITE_MAX {
            return self.hashes_to_key(key, len);
        }
        let (this, key) = (self.clone(), *key);
        tokio::task::spawn_blocking(move || this.hashes_to_key(&key, len))
            .await
            .map_err(|e| Error::backend(&self.url, e))?
    }

    async fn object_size(&self, key: &Key) -> Result<Option<u64>> {
        let path = self.paths.object(key);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(e, &path)),
        }
    }

    async fn write_object(
        &self,
        key: &Key,
        payload: &Payload,
        progress: Option<&Progress>,
    ) -> Result<()> {
        if payload.len() <= INLINE_WRITE_MAX {
            return self.write_object_blocking(key, payload, progress);
        }
        let (this, key, payload) = (self.clone(), *key, payload.clone());
        let progress = progress.cloned();
        tokio::task::spawn_blocking(move || {
            this.write_object_blocking(&key, &payload, progress.as_ref())
        })
        .await
        .map_err(|e| Error::backend(&self.url, e))?
    }

    async fn move_aside(&self, key: &Key) -> Result<Option<PathBuf>> {
        let object = self.paths.object(key);
        let aside = self.paths.scratch(key, "evicted");
        match fs::rename(&object, &aside) {
            Ok(()) => Ok(Some(aside)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(e, &object)),
        }
    }

    async fn restore(&self, key: &Key, aside: PathBuf) -> Result<()> {
        let object = self.paths.object(key);
        fs::rename(&aside, &object).map_err(|e| self.io_error(e, &object))
    }

    async fn delete_aside(&self, _key: &Key, aside: PathBuf) -> Result<()> {
        fs::remove_file(&aside).map_err(|e| self.io_error(e, &aside))
    }
}

#[async_trait]
impl Store for FileStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            private_mappings: true,
            shared: true,
            ..Default::default()
        }
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        refuse_ttl(&self.url, options, "ttl")?;
        refcount::put(self, key, payload, options).await
    }

    /// Streams the body to a private temporary file, hashing it on the way, and renames it
    /// into place once it hashes to `key` (replacing, so repairing, any copy there).
    async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
    ) -> Result<()> {
        refuse_ttl(&self.url, options, "ttl")?;
        let scratch = self.paths.scratch(key, "put");
        let (mut spooled, hashed) =
            spool::spool(scratch, body, len, self.fsync)
                .await
                .map_err(|e| match e {
                    SpoolError::Body(why) => Error::backend(&self.url, why),
                    SpoolError::Io(e) => self.io_error(e, &self.paths.object(key)),
                })?;
        check_hash(&self.url, key, &hashed)?;
        refcount::add_then(self, key, &options.reference, async {
            self.install(&spooled.path, key)
                .map_err(|e| self.io_error(e, &self.paths.object(key)))?;
            spooled.installed = true;
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &Key) -> Result<Object> {
        let mut file =
            refcount::open_existing(self, key, || async { self.open_object(key) }).await?;
        self.read_object(key, &mut file)
    }

    async fn locate(&self, key: &Key) -> Result<Option<PathBuf>> {
        let path = self.paths.object(key);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NotFound {
                store: self.url.clone(),
                key: *key,
            }),
            Err(e) => Err(self.io_error(e, &path)),
        }
    }

    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        let file = refcount::open_existing(self, key, || async { self.open_object(key) }).await?;
        let path = self.paths.object(key);
        let len = file.metadata().map_err(|e| self.io_error(e, &path))?.len();
        check_range(&self.url, key, &range, len)?;
        let mut data = vec![0; (range.end - range.start) as usize];
        file.read_exact_at(&mut data, range.start)
            .map_err(|e| self.io_error(e, &path))?;
        Ok(Bytes::from(data))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.object_size(key).await
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        refcount::release(self, key, reference).await
    }
}
