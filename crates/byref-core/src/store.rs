//! The narrow interface every backend implements.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;

use crate::get::{Fetched, GetOptions};
use crate::incoming::{Incoming, collect, verify_body};
use crate::{Error, Key, Payload, Result};

/// Names one reference to a stored object.
///
/// Equal data is stored once, so one object can be referenced by several puts (and by
/// several proxies). Each put adds a reference; an object is deleted when its last reference
/// is released, so evicting through one proxy never deletes what another still needs.
///
/// A reference says who holds it and since when, so that a store's references can be
/// accounted for (`byref ls`) and those of holders that are gone dropped (`byref gc --dead`):
///
/// ```text
/// bytes 0..8    the holder's tag: a holder record in the same store says who it is
///               (all zeros: nobody in particular)
/// bytes 8..12   when the reference was made, seconds since the Unix epoch (big endian)
/// bytes 12..16  a serial, unique among this process's references
/// ```
///
/// A holder's record holds itself by its tag with both other fields all ones
/// ([`RefId::record_of`]), which is how a listing tells records from the data they account
/// for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefId([u8; 16]);

/// Who holds a reference: 8 bytes naming a holder record in the same store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HolderTag(pub [u8; 8]);

impl HolderTag {
    /// References made on nobody's behalf (a Rust caller's plain put): never reaped as a
    /// dead holder's.
    pub const NOBODY: HolderTag = HolderTag([0; 8]);

    /// A fresh random tag, for a new holder.
    pub fn random() -> Self {
        let mut b = [0; 8];
        getrandom::fill(&mut b).expect("the operating system's random source failed");
        HolderTag(b)
    }
}

impl fmt::Display for HolderTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", u64::from_be_bytes(self.0))
    }
}

impl fmt::Debug for HolderTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderTag({self})")
    }
}

impl std::str::FromStr for HolderTag {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let parsed = (s.len() == 16)
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten();
        parsed
            .map(|v| HolderTag(v.to_be_bytes()))
            .ok_or_else(|| Error::Config(format!("a holder tag is 16 hex digits, not {s:?}")))
    }
}

/// The serial of this process's next reference, with the process it was counted in: a forked
/// child starts its own count at a random point instead of repeating its parent's.
static SERIAL: Mutex<(u32, u32)> = Mutex::new((0, 0));

fn next_serial() -> u32 {
    let pid = std::process::id();
    let mut serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if serial.0 != pid {
        let mut b = [0; 4];
        getrandom::fill(&mut b).expect("the operating system's random source failed");
        *serial = (pid, u32::from_be_bytes(b));
    }
    serial.1 = serial.1.wrapping_add(1);
    // All ones marks a holder's record.
    if serial.1 == u32::MAX {
        serial.1 = 0;
    }
    serial.1
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RefId {
    /// A fresh random reference id, held by no recorded holder: for names that only need to
    /// be unique (temporary files).
    pub fn random() -> Self {
        let mut b = [0; 16];
        getrandom::fill(&mut b).expect("the operating system's random source failed");
        RefId(b)
    }

    /// A new reference held by `holder`, made now.
    pub fn held_by(holder: HolderTag) -> Self {
        let now = unix_now();
        let mut b = [0; 16];
        b[..8].copy_from_slice(&holder.0);
        b[8..12].copy_from_slice(&(now.min(u64::from(u32::MAX - 1)) as u32).to_be_bytes());
        b[12..].copy_from_slice(&next_serial().to_be_bytes());
        RefId(b)
    }

    /// The reference by which `holder`'s record holds itself.
    pub fn record_of(holder: HolderTag) -> Self {
        let mut b = [0xff; 16];
        b[..8].copy_from_slice(&holder.0);
        RefId(b)
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        RefId(b)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Who holds it.
    pub fn holder(&self) -> HolderTag {
        HolderTag(self.0[..8].try_into().expect("8 bytes"))
    }

    /// Whether this is a holder record's own reference.
    pub fn is_record(&self) -> bool {
        self.0[8..] == [0xff; 8]
    }

    /// When it was made, in seconds since the Unix epoch (as its maker's clock said), if it
    /// says: not for a record's own reference.
    pub fn created(&self) -> Option<u64> {
        let secs = u32::from_be_bytes(self.0[8..12].try_into().expect("4 bytes"));
        (secs != u32::MAX).then_some(u64::from(secs))
    }
}

impl fmt::Display for RefId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", u128::from_be_bytes(self.0))
    }
}

impl fmt::Debug for RefId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefId({self})")
    }
}

/// Bytes of a transfer done so far, for a progress bar: a backend that streams advances it as
/// parts go out, and another task reads it. Backends that store in one step leave it be.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// Counts `n` more bytes done.
    pub fn advance(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes done so far.
    pub fn done(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How to store one object.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// The reference this put adds.
    pub reference: RefId,
    /// Drop the object (all references) after this long; needs [`Capabilities::ttl`].
    pub ttl: Option<Duration>,
    /// Advanced as the payload is sent, by backends that stream it.
    pub progress: Option<Progress>,
}

impl PutOptions {
    /// A put that adds a fresh reference, held by nobody in particular, and never expires.
    pub fn new() -> Self {
        PutOptions {
            reference: RefId::held_by(HolderTag::NOBODY),
            ttl: None,
            progress: None,
        }
    }
}

impl Default for PutOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Objects and bytes a store (or one tier of it) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of objects.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// One stored object, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: Key,
    /// Its length in bytes.
    pub len: u64,
    /// Its references, in no particular order.
    pub references: Vec<RefId>,
    /// Its first 8 bytes (a frame's magic, version and encoding: what it is), when the
    /// backend had them at hand while listing.
    pub head: Option<[u8; 8]>,
}

/// The first 8 bytes of `data`, for [`Listed::head`] (`None` if it is shorter).
pub fn head_of(data: &[u8]) -> Option<[u8; 8]> {
    data.first_chunk::<8>().copied()
}

/// What a backend can do beyond the required methods. Backends build it with
/// `..Default::default()`, so adding a capability changes none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `get` returns [`Object::Mapped`]: fetching costs a mapping, not a copy.
    pub private_mappings: bool,
    /// `PutOptions::ttl` is honoured.
    pub ttl: bool,
    /// Other processes (and machines) opening the same URL see the same objects.
    pub shared: bool,
}

/// A fetched object's bytes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Object {
    /// Bytes shared with whoever else holds them (a memory store, a network buffer): read-only.
    Shared(Bytes),
    /// A private copy-on-write mapping of the stored file, owned by this value alone: the
    /// holder may write to it, and the writes never reach the store.
    Mapped(memmap2::MmapMut),
}

impl Object {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Object::Shared(b) => b,
            Object::Mapped(m) => m,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the object has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All the bytes, without a copy: a mapping becomes the owner of the bytes.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Object::Shared(data) => data,
            Object::Mapped(map) => Bytes::from_owner(map),
        }
    }

    /// The bytes in `range` (within the object): shared without a copy when they are
    /// shared, copied out of a mapping otherwise.
    pub fn into_range(self, range: Range<usize>) -> Bytes {
        match self {
            Object::Shared(data) => data.slice(range),
            Object::Mapped(map) => Bytes::copy_from_slice(&map[range]),
        }
    }
}

/// Refuses a TTL on a store without expiry, rather than keep the object forever unasked.
pub fn refuse_ttl(store: &str, options: &PutOptions, operation: &'static str) -> Result<()> {
    if options.ttl.is_some() {
        return Err(crate::Error::NotSupported {
            store: store.to_owned(),
            operation,
        });
    }
    Ok(())
}

/// A place to keep objects by key.
///
/// Deliberately narrow (what `object_store` calls "required methods"): conveniences such as
/// verified reads live in [`crate::StoreExt`], implemented once for every store.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The URL that opens this store again, in this process or another. It goes into handles,
    /// so it never contains a secret.
    fn url(&self) -> &str;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Stores `payload` (whose content address is `key`) and adds `options.reference` to it.
    /// Idempotent: storing equal data again only adds the reference.
    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()>;

    /// Reads the object as `options` say: the one read call, which every convenience of
    /// [`crate::StoreExt`] (`get`, `get_range`, `get_checked`) goes through and every
    /// wrapping store forwards. [`crate::Error::NotFound`] if absent.
    ///
    /// A backend checks the length it learns against `options` before reading a byte where
    /// it can ([`GetOptions::check`]); one that reads whole hands the object over through
    /// [`GetOptions::whole`]. Only a client of a server on this host can map a server's file
    /// ([`crate::get::Delivery::LocalMapping`]); every other store answers [`Fetched::NotLocal`].
    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>>;

    /// The file holding the object whole, when this store keeps it in one on this machine (a
    /// file store; a daemon's disk tier; a peer's shared-memory files): what a server tells a
    /// client on the same host to map instead of sending the bytes. `None` when it keeps the
    /// object elsewhere (memory, a network); [`crate::Error::NotFound`] if absent.
    async fn locate(&self, key: &Key) -> Result<Option<std::path::PathBuf>> {
        match self.head(key).await? {
            Some(_) => Ok(None),
            None => Err(crate::Error::NotFound {
                store: self.url().to_owned(),
                key: *key,
            }),
        }
    }

    /// Stores a body that is still arriving (a server's `PUT`), announced as `len` bytes,
    /// adding `options.reference`. The body must hash to `key`: checked before the object
    /// becomes visible ([`crate::Error::Integrity`] otherwise, and nothing is stored). A store
    /// with limits checks its room before the first byte is read.
    ///
    /// This default collects the body in memory, then puts it. A store with a disk (the
    /// daemon's tiers, a file store) streams a body bound for disk there instead, so memory
    /// stays within its limits whatever the size of the put.
    async fn put_incoming(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        options: &PutOptions,
    ) -> Result<()> {
        let data = collect(body, len)
            .await
            .map_err(|e| crate::Error::backend(self.url(), e))?;
        verify_body(self.url(), key, &data).await?;
        self.put(key, &Payload::received(data), options).await
    }

    /// The object's length, or `None` if it is absent.
    async fn head(&self, key: &Key) -> Result<Option<u64>>;

    /// Adds `options.reference` to the object `key`, `len` bytes long, if this store holds it
    /// and can do so without its bytes: a put of content stored already then sends nothing.
    /// `Ok(false)` when it does not (or cannot tell): the caller puts the body as usual.
    ///
    /// Whoever names a key it does not hold gains only a reference to an object it could
    /// read anyway (keys are content addresses, readable by any client of the store).
    async fn add_reference(&self, key: &Key, len: u64, options: &PutOptions) -> Result<bool> {
        let _ = (key, len, options);
        Ok(false)
    }

    /// Every object with its references: what `byref ls` shows and `byref gc` works from. A
    /// store changing meanwhile may be listed partly before and partly after the change.
    async fn list(&self) -> Result<Vec<Listed>> {
        Err(Error::NotSupported {
            store: self.url().to_owned(),
            operation: "list",
        })
    }

    /// Drops one reference — `reference`, or any one if `None` — and deletes the object when
    /// none remain. Returns whether the object was deleted (a file store shared by processes
    /// cannot always tell: two releases racing for its last two references may both say so).
    ///
    /// [`crate::Error::ReferenceGone`] if `reference` was already released, and
    /// [`crate::Error::NotFound`] if the object has no references at all.
    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool>;
}
