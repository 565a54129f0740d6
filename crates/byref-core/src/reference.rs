//! References to stored objects, who holds them, and an object's set of them.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Key, Result};

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

/// The reference set of an object held in memory (the memory store, the daemon's memory tier).
/// The live references of one object: it goes when the last is released.
#[derive(Debug, Clone, Default)]
pub struct RefSet(HashSet<RefId>);

impl RefSet {
    /// A set holding `first`.
    pub fn new(first: RefId) -> Self {
        RefSet(HashSet::from([first]))
    }

    /// Adds `reference` (adding one it holds changes nothing).
    pub fn add(&mut self, reference: RefId) {
        self.0.insert(reference);
    }

    /// Drops `reference`, or any one if `None`, as [`crate::Store::release`] does; returns
    /// whether none remain. [`Error::ReferenceGone`] if it is not held.
    pub fn release(&mut self, reference: Option<&RefId>, store: &str, key: &Key) -> Result<bool> {
        let removed = match reference.or_else(|| self.0.iter().next()).copied() {
            Some(r) => self.0.remove(&r),
            None => false,
        };
        if !removed {
            return Err(Error::ReferenceGone {
                store: store.to_owned(),
                key: *key,
            });
        }
        Ok(self.0.is_empty())
    }

    /// The references, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &RefId> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_each_reference_once_and_reports_the_last() {
        let key = Key::from_bytes([1; 32]);
        let (a, b) = (RefId::random(), RefId::random());
        let mut refs = RefSet::new(a);
        refs.add(b);
        refs.add(b);
        assert!(!refs.release(Some(&a), "s", &key).unwrap());
        assert!(matches!(
            refs.release(Some(&a), "s", &key),
            Err(Error::ReferenceGone { .. })
        ));
        assert!(refs.release(None, "s", &key).unwrap());
        assert!(refs.release(None, "s", &key).is_err());
    }
}
