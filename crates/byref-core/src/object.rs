//! A fetched object's bytes.

use std::ops::Range;

use bytes::Bytes;

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
