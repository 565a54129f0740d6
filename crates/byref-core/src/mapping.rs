//! The one unsafe operation of byref's stores: mapping a stored object into memory (a file
//! store's object, a node-cache entry, a same-host server's file).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{MmapMut, MmapOptions};

/// Maps `file` privately: reads share the page cache, writes copy the touched pages and never
/// reach the file.
///
/// Safety invariant: an object file written by byref (a file store's, a node-cache entry, a
/// same-host server's) is written whole under a temporary name and renamed into place, and is
/// never modified or truncated afterwards — only unlinked or renamed away, which leaves
/// existing mappings intact. So the mapped bytes cannot change underneath the
/// mapping (the hazard `map_copy` is `unsafe` for).
pub fn map_private(file: &File) -> io::Result<MmapMut> {
    // SAFETY: see the invariant above.
    unsafe { MmapOptions::new().map_copy(file) }
}
