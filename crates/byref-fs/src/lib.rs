//! `file:///path`: objects as files in a directory, local or on a shared filesystem.
//!
//! - A reference is a name of the object's file (see `layout`), so the file's link count is
//!   its reference count, kept by the filesystem itself: a put adds a name (one `link` to the
//!   file already there, or a write under a temporary name and one `rename`), a release
//!   removes one (one `unlink`), and the bytes go with the last name. No locks, no marker
//!   files, no per-object directories: it works on NFS, Lustre and GPFS, where each of those
//!   operations is a round trip to a metadata server shared by the whole machine.
//! - A reader never sees a partial object: names appear only by `rename` or `link` of a
//!   whole file.
//! - Puts and releases of equal data may race without losing the object: every reference is
//!   its own name of the file, and a put whose `link` finds the name it listed gone lists
//!   again, or writes a copy of its own.
//! - Private by default: objects and directories are created 0600/0700.
//! - Reads of large objects are private copy-on-write mappings: no copy, writable, and writes
//!   never reach the stored file.
//!
//! A backend: depends on `byref-core` only.

mod layout;
pub mod node_cache;
pub mod private;
mod spool;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use byref_core::incoming::{Incoming, check_hash};
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, Progress,
    PutOptions, RefId, Result, Store, StoreUrl, UrlBuilder, Usage, refuse_ttl,
};
use bytes::Bytes;
use rayon::prelude::*;
use spool::SpoolError;

use layout::Paths;

/// URL scheme of [`FileStore`].
pub const SCHEME: &str = "file";

/// Objects smaller than this are read into memory: a mapping costs more than the copy.
const MAP_MIN: u64 = 64 << 10;
/// Puts larger than this run on tokio's blocking pool, so an async caller (a server using
/// this store as its disk tier) never stalls a worker thread on a long write (or on reading
/// back the copy already there). Smaller ones run inline: a thread hop would cost more.
const INLINE_WRITE_MAX: u64 = 1 << 20;
/// Listings an operation tries when concurrent releases keep removing the names it listed
/// before it could use one.
const LISTINGS: u32 = 64;
/// How long a measure of a capped store's size stands before the next put measures again.
const USAGE_FRESH: Duration = Duration::from_secs(2);
/// A put's progress moves in steps of this many bytes.
const PROGRESS_STEP: usize = 8 << 20;

/// What [`FileStore::recover`] cleaned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Partial puts left in `tmp/` by writers that were killed.
    pub temp_files: u64,
    /// Files of the layout before names were references (`objects/ab/<key>`, `refs/`),
    /// which only handles this byref cannot read could reach.
    pub earlier_layout: u64,
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
    /// `max_size`: new copies that would take the store past this many bytes are refused
    /// (a home directory's quota is shared with everything else the user keeps there).
    max_size: Option<u64>,
    /// The store's size in bytes as last measured plus this process's copies since, and
    /// when it was measured: shared by this store's clones.
    used: Arc<Mutex<(u64, Option<Instant>)>>,
}

/// What a put found of its key before writing anything.
enum Existing {
    /// A whole copy, which now has the put's name too.
    Linked,
    /// None (or none that can take another link): the put writes a copy.
    Absent,
    /// A copy that does not hash to its key, at this name: the put repairs it.
    Damaged(PathBuf),
}

impl FileStore {
    /// Opens `file:///abs/path[?fsync=true]`, creating the directory if needed.
    pub fn open(mut url: StoreUrl) -> Result<Self> {
        url.refuse_credentials("a file store is protected by file permissions")?;
        let root = url.url().to_file_path().map_err(|()| {
            Error::Config(format!("{} is not a local absolute path", url.redacted()))
        })?;
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
        let max_size = url.take_size("max_size")?;
        url.finish()?;
        let root_str = root
            .to_str()
            .ok_or_else(|| Error::Config(format!("store path {} is not UTF-8", root.display())))?;
        let canonical = UrlBuilder::new(SCHEME, root_str)
            .option_if("fsync", fsync.then_some(true))
            .option_if("max_size", max_size)
            .build();
        let store = FileStore {
            url: canonical,
            paths: Paths::new(root),
            fsync,
            max_size,
            used: Arc::default(),
        };
        for dir in [store.paths.objects(), store.paths.tmp()] {
            private::create_dir_all(&dir).map_err(|e| store.io_error(e, &dir))?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.paths.root()
    }

    /// What the store holds: its keys, and the bytes of their files (a file with several
    /// names counted once).
    pub fn usage(&self) -> Usage {
        let listed = self.listing(false);
        Usage {
            objects: listed.len() as u64,
            bytes: listed.iter().map(|l| l.len).sum(),
        }
    }

    /// Every key with its references, and with `heads` its first bytes; the length is that
    /// of the key's first name's file (its other files, past the link limit, hold the same
    /// bytes). Fan-out directories are read in parallel: on a parallel filesystem each is a
    /// round trip to a metadata server.
    fn listing(&self, heads: bool) -> Vec<Listed> {
        self.paths
            .shards()
            .par_iter()
            .flat_map_iter(|shard| {
                let mut listed: HashMap<Key, Listed> = HashMap::new();
                for (key, reference, entry) in Paths::names_in(shard) {
                    if let Some(known) = listed.get_mut(&key) {
                        known.references.push(reference);
                        continue;
                    }
                    // Released since the directory was read: not listed.
                    let Some((len, head)) = describe(&entry, heads) else {
                        continue;
                    };
                    listed.insert(
                        key,
                        Listed {
                            key,
                            len,
                            references: vec![reference],
                            head,
                        },
                    );
                }
                listed.into_values()
            })
            .collect()
    }

    /// Refuses a new copy of `len` bytes that would take the store past its `max_size`,
    /// before a byte is written. The store's size is measured by listing it, at most once
    /// per [`USAGE_FRESH`], and counts this process's copies since; other processes' copies
    /// since count from the next measure.
    fn reserve(&self, key: &Key, len: u64) -> Result<()> {
        let Some(limit) = self.max_size else {
            return Ok(());
        };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.1.is_none_or(|at| at.elapsed() > USAGE_FRESH) {
            *used = (self.usage().bytes, Some(Instant::now()));
        }
        if used.0 + len > limit {
            return Err(Error::StoreFull {
                store: self.url.clone(),
                source: format!(
                    "object {key} of {len} bytes does not fit: {} of max_size={limit} bytes in use",
                    used.0
                )
                .into(),
            });
        }
        used.0 += len;
        Ok(())
    }

    /// Removes what writers killed mid-way left in `tmp/`, and the files of the earlier
    /// layout, and says how much.
    ///
    /// Only for a store no other process is using (the daemon's disk tier, at start): a
    /// shared store's `tmp/` holds other processes' puts in progress.
    pub fn recover(&self) -> Recovered {
        let mut recovered = Recovered::default();
        let (temp_files, bytes) = remove_files(&self.paths.tmp());
        recovered.temp_files = temp_files;
        recovered.bytes = bytes;
        let earlier = fs::read_dir(self.paths.objects())
            .into_iter()
            .flatten()
            .flatten()
            .map(|shard| shard.path())
            .filter(|shard| shard.file_name().is_some_and(|n| n.len() == 2))
            .chain(std::iter::once(self.paths.root().join("refs")));
        for dir in earlier {
            // `objects/ab/<key>` files, or `refs/<key>/<reference>` markers.
            let (mut files, mut bytes) = remove_files(&dir);
            for sub in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let (n, b) = remove_files(&sub.path());
                let _ = fs::remove_dir(sub.path());
                (files, bytes) = (files + n, bytes + b);
            }
            if fs::remove_dir(&dir).is_ok() {
                recovered.earlier_layout += files;
                recovered.bytes += bytes;
            }
        }
        recovered
    }

    /// Whether `key` is stored: one listing, for callers that keep records beside the store
    /// (the daemon's TTL files).
    pub fn holds(&self, key: &Key) -> bool {
        self.paths
            .names(key)
            .is_ok_and(|mut names| names.next().is_some_and(|n| n.is_ok()))
    }

    fn io_error(&self, e: io::Error, path: &Path) -> Error {
        let source = format!("{}: {e}", path.display()).into();
        match e.kind() {
            // EFBIG (a per-file size limit) leaves the store as unable to take the object as
            // a full disk does.
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                Error::StoreFull {
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

    fn not_found(&self, key: &Key) -> Error {
        Error::NotFound {
            store: self.url.clone(),
            key: *key,
        }
    }

    /// The error of a release whose reference has no name: [`Error::ReferenceGone`] while
    /// the object has other names, [`Error::NotFound`] once it has none.
    fn reference_gone(&self, key: &Key) -> Error {
        if self.holds(key) {
            Error::ReferenceGone {
                store: self.url.clone(),
                key: *key,
            }
        } else {
            self.not_found(key)
        }
    }

    /// The names of `key`, listed as they are asked for.
    fn names<'a>(&'a self, key: &Key) -> Result<impl Iterator<Item = Result<PathBuf>> + use<'a>> {
        let shard = self.paths.shard(key);
        let names = self
            .paths
            .names(key)
            .map_err(|e| self.io_error(e, &shard))?;
        Ok(names.map(move |name| name.map_err(|e| self.io_error(e, &shard))))
    }

    /// Any name of `key`, opened (with its path): concurrent releases may remove names
    /// between the listing and the open, so list again, a bounded number of times.
    fn open_any(&self, key: &Key) -> Result<(File, PathBuf)> {
        for _ in 0..LISTINGS {
            let mut listed = false;
            for name in self.names(key)? {
                let name = name?;
                listed = true;
                match File::open(&name) {
                    Ok(file) => return Ok((file, name)),
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io_error(e, &name)),
                }
            }
            if !listed {
                break;
            }
        }
        Err(self.not_found(key))
    }

    /// Gives `ours` (a name for a new reference to `key`, `len` bytes) to a whole copy
    /// already stored, if there is one. The copy is read back and hashed first: that costs a
    /// read, less than writing it again, and a put of a damaged object (a bit flip, a
    /// truncation by a full disk) repairs it.
    fn link_existing(&self, key: &Key, ours: &Path, len: u64) -> Result<Existing> {
        // Files (by inode) that can take no more names, and those checked whole.
        let (mut full, mut whole) = (HashSet::new(), HashSet::new());
        'listing: for _ in 0..LISTINGS {
            for name in self.names(key)? {
                let name = name?;
                let mut file = match File::open(&name) {
                    Ok(file) => file,
                    // Released since the listing.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io_error(e, &name)),
                };
                let inode = file.metadata().map_err(|e| self.io_error(e, &name))?.ino();
                if full.contains(&inode) {
                    continue;
                }
                if !whole.contains(&inode) {
                    match holds_key(&mut file, key, len) {
                        Ok(true) => whole.insert(inode),
                        Ok(false) => return Ok(Existing::Damaged(name)),
                        Err(e) => return Err(self.io_error(e, &name)),
                    };
                }
                if name == ours {
                    return Ok(Existing::Linked);
                }
                match fs::hard_link(&name, ours) {
                    // `AlreadyExists`: the same reference added again, which is not an error.
                    Ok(()) => return Ok(Existing::Linked),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        return Ok(Existing::Linked);
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => continue 'listing,
                    // As many names as the filesystem allows one file (65,000 on ext4 and
                    // Lustre): another file of the key, or a copy of its own.
                    Err(e)
                        if rustix::io::Errno::from_io_error(&e)
                            == Some(rustix::io::Errno::MLINK) =>
                    {
                        full.insert(inode);
                    }
                    Err(e) => return Err(self.io_error(e, ours)),
                }
            }
            return Ok(Existing::Absent);
        }
        Ok(Existing::Absent)
    }

    /// A put, on a thread that may block: links to the copy there, or writes one under a
    /// private temporary name and renames it into place (repairing a damaged copy).
    fn put_blocking(
        &self,
        key: &Key,
        payload: &Payload,
        ours: &Path,
        progress: Option<&Progress>,
    ) -> Result<()> {
        let existing = self.link_existing(key, ours, payload.len())?;
        if let Existing::Linked = existing {
            return Ok(());
        }
        self.reserve(key, payload.len())?;
        let scratch = self.paths.scratch(key, "put");
        let written = (|| {
            let mut file = private::create_file(&scratch)?;
            // In steps, so that a progress bar moves during a big part; a small object (a
            // frame's header and body) in one system call.
            let steps = payload.parts().iter().flat_map(|p| p.chunks(PROGRESS_STEP));
            let mut batch = (Vec::new(), 0);
            for step in steps {
                batch.0.push(step);
                batch.1 += step.len();
                if batch.1 >= PROGRESS_STEP {
                    spool::write_all(&mut file, batch.0.drain(..))?;
                    let written = std::mem::take(&mut batch.1);
                    if let Some(progress) = progress {
                        progress.advance(written as u64);
                    }
                }
            }
            spool::write_all(&mut file, batch.0.drain(..))?;
            if let Some(progress) = progress {
                progress.advance(batch.1 as u64);
            }
            if self.fsync {
                file.sync_all()?;
            }
            self.place(&scratch, existing, ours)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&scratch);
            return Err(self.io_error(e, ours));
        }
        Ok(())
    }

    /// Puts the whole, genuine file at `scratch` in place as `ours`: renamed there, or, when
    /// the copy there is damaged, copied over it (in place, so that every name of that file
    /// is repaired at once) and removed, `ours` becoming one more name of the repaired file.
    fn place(&self, scratch: &Path, existing: Existing, ours: &Path) -> io::Result<()> {
        if let Existing::Damaged(damaged) = existing
            && repair(scratch, &damaged)?
        {
            match fs::hard_link(&damaged, ours) {
                Ok(()) => return fs::remove_file(scratch),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return fs::remove_file(scratch),
                // Released since the repair: the copy goes in place of its own.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        match fs::rename(scratch, ours) {
            // The first name in its fan-out directory.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                private::create_dir_all(ours.parent().expect("names have a parent"))?;
                fs::rename(scratch, ours)
            }
            done => done,
        }
    }

    /// Removes the name at `path`, one of `key`'s; whether the key has no name left (as far
    /// as this process can tell: two releases racing for the last two names may both see
    /// none left).
    fn unlink(&self, key: &Key, path: &Path) -> io::Result<bool> {
        // Opened first: after the unlink, the open file's link count is the names it has
        // left. At none, the key may still have other files (a reference past the link
        // limit, or two puts that found nothing at once and wrote a copy each).
        let file = File::open(path)?;
        fs::remove_file(path)?;
        Ok(file.metadata()?.nlink() == 0 && !self.holds(key))
    }
}

/// The length of the file a directory entry names and, with `head`, its first bytes; `None`
/// if it is gone.
fn describe(entry: &fs::DirEntry, head: bool) -> Option<(u64, Option<[u8; 8]>)> {
    if !head {
        return entry.metadata().ok().map(|m| (m.len(), None));
    }
    let file = File::open(entry.path()).ok()?;
    let len = file.metadata().ok()?.len();
    let mut first = [0; 8];
    let read = file.read_at(&mut first, 0).ok()?;
    Some((len, (read == 8).then_some(first)))
}

/// Whether `file` holds exactly the `len` bytes of `key`, read back and hashed.
fn holds_key(file: &mut File, key: &Key, len: u64) -> io::Result<bool> {
    if file.metadata()?.len() != len {
        return Ok(false);
    }
    let object = read_object(file)?;
    Ok(Key::of(object.as_slice()) == *key)
}

/// Removes the files in `dir` (not its directories); how many, and their bytes.
fn remove_files(dir: &Path) -> (u64, u64) {
    let mut removed = (0, 0);
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let len = entry.metadata().map_or(0, |m| m.len());
        if entry.file_type().is_ok_and(|t| !t.is_dir()) && fs::remove_file(entry.path()).is_ok() {
            removed.0 += 1;
            removed.1 += len;
        }
    }
    removed
}

/// Copies the genuine file at `good` over the damaged one at `damaged`; `false` if that one
/// is gone (released since it was listed).
fn repair(good: &Path, damaged: &Path) -> io::Result<bool> {
    let mut target = match fs::OpenOptions::new().write(true).open(damaged) {
        Ok(target) => target,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let copied = io::copy(&mut File::open(good)?, &mut target)?;
    target.set_len(copied)?;
    Ok(true)
}

/// The object in `file`: read into memory if small (one `read` of its length), else mapped
/// privately.
fn read_object(file: &mut File) -> io::Result<Object> {
    let len = file.metadata()?.len();
    if len < MAP_MIN {
        let mut data = vec![0; len as usize];
        file.read_exact(&mut data)?;
        return Ok(Object::Shared(Bytes::from(data)));
    }
    byref_core::mapping::map_private(file).map(Object::Mapped)
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
        let ours = self.paths.name(key, &options.reference);
        if payload.len() <= INLINE_WRITE_MAX {
            return self.put_blocking(key, payload, &ours, options.progress.as_ref());
        }
        let (this, key, payload) = (self.clone(), *key, payload.clone());
        let progress = options.progress.clone();
        tokio::task::spawn_blocking(move || {
            this.put_blocking(&key, &payload, &ours, progress.as_ref())
        })
        .await
        .map_err(|e| Error::backend(&self.url, e))?
    }

    /// Streams the body to a private temporary file, hashing it on the way; once it hashes to
    /// `key`, links the new name to the copy there or renames the file into place.
    async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
    ) -> Result<()> {
        refuse_ttl(&self.url, options, "ttl")?;
        let ours = self.paths.name(key, &options.reference);
        if !self.holds(key) {
            self.reserve(key, len)?;
        }
        let scratch = self.paths.scratch(key, "put");
        let (mut spooled, hashed) =
            spool::spool(scratch, body, len, self.fsync)
                .await
                .map_err(|e| match e {
                    SpoolError::Body(why) => Error::backend(&self.url, why),
                    SpoolError::Io(e) => self.io_error(e, &ours),
                })?;
        check_hash(&self.url, key, &hashed)?;
        let (this, key) = (self.clone(), *key);
        tokio::task::spawn_blocking(move || {
            let existing = this.link_existing(&key, &ours, len)?;
            if let Existing::Linked = existing {
                return Ok(());
            }
            this.place(&spooled.path, existing, &ours)
                .map_err(|e| this.io_error(e, &ours))?;
            spooled.placed();
            Ok(())
        })
        .await
        .map_err(|e| Error::backend(&self.url, e))?
    }

    async fn list(&self) -> Result<Vec<Listed>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.listing(true))
            .await
            .map_err(|e| Error::backend(&self.url, e))
    }

    /// Through a held reference, its own name is opened: no listing. A name released
    /// already (a second resolve of an `evict=True` handle) leaves the object to be found by
    /// key. Objects are mapped (or, if small, read) whole; ranges are read.
    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        if options.delivery == Delivery::LocalMapping {
            return Ok(Fetched::NotLocal);
        }
        let held = options
            .held
            .as_ref()
            .map(|reference| self.paths.name(key, reference));
        let (mut file, path) = match held.map(|name| (File::open(&name), name)) {
            Some((Ok(file), name)) => (file, name),
            Some((Err(e), name)) if e.kind() != ErrorKind::NotFound => {
                return Err(self.io_error(e, &name));
            }
            _ => self.open_any(key)?,
        };
        let Some(range) = &options.range else {
            let object = read_object(&mut file).map_err(|e| self.io_error(e, &path))?;
            return options.whole(&self.url, key, object);
        };
        let len = file.metadata().map_err(|e| self.io_error(e, &path))?.len();
        options.check(&self.url, key, len)?;
        let mut data = vec![0; (range.end - range.start) as usize];
        file.read_exact_at(&mut data, range.start)
            .map_err(|e| self.io_error(e, &path))?;
        Ok(Fetched::Whole(Object::Shared(Bytes::from(data))))
    }

    async fn locate(&self, key: &Key) -> Result<Option<PathBuf>> {
        let (file, path) = self.open_any(key)?;
        let meta = file.metadata().map_err(|e| self.io_error(e, &path))?;
        Ok(meta.is_file().then_some(path))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        match self.open_any(key) {
            Ok((file, path)) => Ok(Some(
                file.metadata().map_err(|e| self.io_error(e, &path))?.len(),
            )),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the reference's name, or any one name of the key (listing again while
    /// concurrent releases take the names listed first).
    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        if let Some(reference) = reference {
            let name = self.paths.name(key, reference);
            return match self.unlink(key, &name) {
                Ok(last) => Ok(last),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(self.reference_gone(key)),
                Err(e) => Err(self.io_error(e, &name)),
            };
        }
        for _ in 0..LISTINGS {
            let mut listed = false;
            for name in self.names(key)? {
                let name = name?;
                listed = true;
                match self.unlink(key, &name) {
                    Ok(last) => return Ok(last),
                    // Another releaser took it first; try the next one.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.io_error(e, &name)),
                }
            }
            if !listed {
                break;
            }
        }
        Err(self.not_found(key))
    }
}
