//! The memory tier: objects in memory up to a byte limit. It alone counts its bytes: every
//! change of the count is in this file, under the one lock that guards the objects.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use byref_core::{Key, Listed, RefId, RefSet, Result, Usage};
use bytes::Bytes;

/// Released buffers smaller than this are not kept: their pages are cheap to get again.
const SPARE_MIN: usize = 1 << 20;

/// An object in the memory tier.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its bytes, shared with the responses that send them.
    pub(crate) data: Bytes,
    /// Its references: it goes with the last.
    pub(crate) refs: RefSet,
    /// When its TTL ends; `None` if any put asked for it to stay.
    pub(crate) expires: Option<Instant>,
}

/// The tier's contents, behind its lock.
#[derive(Debug, Default)]
struct Contents {
    /// Objects by key.
    objects: HashMap<Key, Entry>,
    /// Bytes of `objects`, of `spare` and of the reservations of puts whose bodies are still
    /// arriving, kept so that a put checks the limit without summing.
    used: u64,
    /// The buffer of the last large object released, for the next put of about its size:
    /// that put then lands in pages the daemon already has. Fresh pages cost the kernel a
    /// fault and zeroing each: measured over a veth pair, 17% of both cores went to them
    /// while the daemon took 1 GB puts, its largest cost. Counted in `used`, so the daemon
    /// never holds more than its limit, and freed when a put needs the room.
    spare: Vec<u8>,
}

/// What a put finds when it asks the memory tier for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// The object is here: the put only adds a reference.
    Present,
    /// This many bytes are set aside for the object.
    Reserved(u64),
    /// It does not fit (or may not live here).
    None,
}

/// Objects in memory, up to a byte limit.
#[derive(Debug)]
pub(crate) struct MemoryTier {
    /// A std mutex, since no critical section awaits.
    contents: Mutex<Contents>,
    /// Bytes the tier may hold before puts spill to disk.
    limit: u64,
}

impl Entry {
    /// One more reference, from a put that asked for `expires`: the object stays until the
    /// later of the two, and for good if either put asked for no TTL.
    fn add_reference(&mut self, reference: RefId, expires: Option<Instant>) {
        self.refs.add(reference);
        self.expires = self.expires.zip(expires).map(|(a, b)| a.max(b));
    }
}

impl Contents {
    /// Makes `len` bytes of room if they fit the limit, giving up the spare if it is in the
    /// way.
    fn make_room(&mut self, len: u64, limit: u64) -> bool {
        if self.used + len > limit {
            self.free_spare();
        }
        let fits = self.used + len <= limit;
        if fits {
            self.used += len;
        }
        fits
    }

    fn free_spare(&mut self) {
        self.used -= self.spare.capacity() as u64;
        self.spare = Vec::new();
    }

    /// Deletes the object, and keeps its buffer as the spare if nobody else holds it (a
    /// response still sending it) and it is large enough to be worth it.
    fn delete(&mut self, key: &Key) {
        let Some(entry) = self.objects.remove(key) else {
            return;
        };
        self.used -= entry.data.len() as u64;
        let Ok(buffer) = entry.data.try_into_mut() else {
            return;
        };
        let buffer = Vec::from(buffer);
        if buffer.capacity() < SPARE_MIN {
            return;
        }
        self.free_spare();
        self.used += buffer.capacity() as u64;
        self.spare = buffer;
    }
}

impl MemoryTier {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryTier {
            contents: Mutex::new(Contents::default()),
            limit,
        }
    }

    fn contents(&self) -> MutexGuard<'_, Contents> {
        self.contents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for a put of `len` bytes of `key`; a new object is given room only if it `may_stay`
    /// here (it is not on disk already).
    pub(crate) fn reserve(&self, key: &Key, len: u64, may_stay: bool) -> Room {
        let mut contents = self.contents();
        if contents.objects.contains_key(key) {
            Room::Present
        } else if may_stay && contents.make_room(len, self.limit) {
            Room::Reserved(len)
        } else {
            Room::None
        }
    }

    /// Gives back room a put set aside and did not fill.
    pub(crate) fn unreserve(&self, len: u64) {
        self.contents().used -= len;
    }

    /// A buffer for a body of `len` bytes: the spare, if it fits without wasting more than an
    /// eighth; else an empty one.
    pub(crate) fn take_spare(&self, len: u64) -> Vec<u8> {
        let mut contents = self.contents();
        let capacity = contents.spare.capacity() as u64;
        if capacity < len || capacity > len + len / 8 {
            return Vec::new();
        }
        contents.used -= capacity;
        std::mem::take(&mut contents.spare)
    }

    /// Adds `reference` to the object, if it is here and `len` bytes long.
    pub(crate) fn add_reference(
        &self,
        key: &Key,
        len: u64,
        reference: RefId,
        expires: Option<Instant>,
    ) -> bool {
        let mut contents = self.contents();
        let Some(entry) = contents.objects.get_mut(key) else {
            return false;
        };
        if entry.data.len() as u64 != len {
            return false;
        }
        entry.add_reference(reference, expires);
        true
    }

    /// Stores `data` with one more reference, into the `reserved` bytes set aside for it: the
    /// reference is added if the object is here already; else the object goes in, into the
    /// room reserved or, if it was present when the put began and has expired since, into room
    /// found now. `Ok(true)` if it took the reserved room; the data back if it fits no more.
    pub(crate) fn put(
        &self,
        key: &Key,
        data: Bytes,
        reference: RefId,
        expires: Option<Instant>,
        reserved: u64,
    ) -> std::result::Result<bool, Bytes> {
        let mut contents = self.contents();
        if let Some(entry) = contents.objects.get_mut(key) {
            entry.add_reference(reference, expires);
            return Ok(false);
        }
        let len = data.len() as u64;
        let took_reserved = reserved == len;
        if !took_reserved && !contents.make_room(len, self.limit) {
            return Err(data);
        }
        let entry = Entry {
            data,
            refs: RefSet::new(reference),
            expires,
        };
        contents.objects.insert(*key, entry);
        Ok(took_reserved)
    }

    /// Releases a reference (any one if `reference` is `None`); `None` if the object is not
    /// here, else whether that was its last (and it is gone).
    pub(crate) fn release(
        &self,
        key: &Key,
        reference: Option<&RefId>,
        store: &str,
    ) -> Option<Result<bool>> {
        let mut contents = self.contents();
        let entry = contents.objects.get_mut(key)?;
        let last = match entry.refs.release(reference, store, key) {
            Ok(last) => last,
            Err(e) => return Some(Err(e)),
        };
        if last {
            contents.delete(key);
        }
        Some(Ok(last))
    }

    /// Deletes every object whose TTL has passed by `now`, with all its references.
    pub(crate) fn expire(&self, now: Instant) {
        let mut contents = self.contents();
        let mut freed = 0;
        contents.objects.retain(|_, entry| {
            let due = entry.expires.is_some_and(|at| at <= now);
            if due {
                freed += entry.data.len() as u64;
            }
            !due
        });
        contents.used -= freed;
    }

    /// Takes every object out (to be written to disk on shutdown), and the spare with them.
    pub(crate) fn take_all(&self) -> HashMap<Key, Entry> {
        let mut contents = self.contents();
        contents.free_spare();
        let objects = std::mem::take(&mut contents.objects);
        contents.used -= objects.values().map(|e| e.data.len() as u64).sum::<u64>();
        objects
    }

    /// Puts back objects [`take_all`](Self::take_all) took that could not go elsewhere.
    pub(crate) fn put_back(&self, objects: Vec<(Key, Entry)>) {
        let mut contents = self.contents();
        contents.used += objects
            .iter()
            .map(|(_, e)| e.data.len() as u64)
            .sum::<u64>();
        contents.objects.extend(objects);
    }

    /// The object's bytes, shared, if it is here.
    pub(crate) fn get(&self, key: &Key) -> Option<Bytes> {
        self.contents().objects.get(key).map(|e| e.data.clone())
    }

    /// The object's length, if it is here.
    pub(crate) fn head(&self, key: &Key) -> Option<u64> {
        self.contents()
            .objects
            .get(key)
            .map(|e| e.data.len() as u64)
    }

    pub(crate) fn list(&self) -> Vec<Listed> {
        self.contents()
            .objects
            .iter()
            .map(|(key, entry)| Listed {
                key: *key,
                len: entry.data.len() as u64,
                references: entry.refs.iter().copied().collect(),
                head: byref_core::head_of(&entry.data),
            })
            .collect()
    }

    /// Objects, and their bytes with the room reserved for bodies still arriving (the spare
    /// is not stored).
    pub(crate) fn usage(&self) -> Usage {
        let contents = self.contents();
        Usage {
            objects: contents.objects.len() as u64,
            bytes: contents.used - contents.spare.capacity() as u64,
        }
    }

    /// Bytes counted against the limit: objects, reservations and the spare.
    pub(crate) fn used(&self) -> u64 {
        self.contents().used
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of the released buffer kept for the next put of its size.
    pub(crate) fn spare(&self) -> u64 {
        self.contents().spare.capacity() as u64
    }
}
