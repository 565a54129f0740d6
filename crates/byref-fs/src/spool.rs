//! A body written to a private temporary file as it arrives, hashed on the way: a put of any
//! size holds one block in memory, not the object.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::PathBuf;

use byref_core::incoming::Incoming;
use byref_core::{Key, KeyHasher};
use bytes::Bytes;

use crate::private;

/// Bytes gathered before they are written (and hashed) on the blocking pool: large enough
/// that a thread hop per block costs nothing, small enough to bound a put's memory.
const BLOCK: usize = 8 << 20;

/// Why a spool failed: the body's fault, or the disk's.
pub(crate) enum SpoolError {
    /// The body broke off, stalled or ran over.
    Body(String),
    /// Writing failed (a full disk).
    Io(io::Error),
}

/// A temporary file being filled; removed when dropped unless it was installed.
pub(crate) struct Spool {
    /// Where it is written.
    pub(crate) path: PathBuf,
    /// Whether it was renamed into place (then there is nothing to remove).
    installed: bool,
}

impl Spool {
    /// Marks the file as renamed into place: nothing to remove then.
    pub(crate) fn placed(&mut self) {
        self.installed = true;
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `body`, announced as `len` bytes, to a new private file at `path`, returning it
/// with the key its bytes hash to.
pub(crate) async fn spool(
    path: PathBuf,
    body: &mut dyn Incoming,
    len: u64,
    fsync: bool,
) -> Result<(Spool, Key), SpoolError> {
    let file = private::create_file(&path).map_err(SpoolError::Io)?;
    let spool = Spool {
        path,
        installed: false,
    };
    let mut writer = Some((file, Key::hasher()));
    // Parts as they came (no copy), written together once there are enough of them.
    let (mut block, mut block_len) = (Vec::<Bytes>::new(), 0);
    let mut received = 0u64;
    loop {
        let part = body.next_part().await.map_err(SpoolError::Body)?;
        if let Some(part) = &part {
            received += part.len() as u64;
            if received > len {
                return Err(SpoolError::Body(format!(
                    "body of more than the {len} bytes announced"
                )));
            }
            block_len += part.len();
            block.push(part.clone());
        }
        if block_len >= BLOCK || (part.is_none() && !block.is_empty()) {
            let data = std::mem::take(&mut block);
            block_len = 0;
            let (file, hasher) = writer.take().expect("put back after every block");
            writer = Some(
                tokio::task::spawn_blocking(move || write_block(file, hasher, &data))
                    .await
                    .map_err(|e| SpoolError::Io(io::Error::other(e)))?
                    .map_err(SpoolError::Io)?,
            );
        }
        if part.is_none() {
            break;
        }
    }
    if received != len {
        return Err(SpoolError::Body(format!(
            "body ended after {received} of {len} bytes"
        )));
    }
    let (file, hasher) = writer.expect("put back after every block");
    if fsync {
        file.sync_all().map_err(SpoolError::Io)?;
    }
    Ok((spool, hasher.finish()))
}

fn write_block(
    mut file: File,
    mut hasher: KeyHasher,
    parts: &[Bytes],
) -> io::Result<(File, KeyHasher)> {
    write_all(&mut file, parts.iter().map(|p| &p[..]))?;
    parts.iter().for_each(|p| hasher.update(p));
    Ok((file, hasher))
}

/// Writes `parts` in order with as few system calls as the kernel allows: one per thousand
/// parts (network parts are often a packet each; a frame's header and body are two).
pub(crate) fn write_all<'a>(
    file: &mut File,
    parts: impl Iterator<Item = &'a [u8]>,
) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.map(IoSlice::new).collect();
    let mut pending = &mut slices[..];
    while !pending.is_empty() {
        match file.write_vectored(pending)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => IoSlice::advance_slices(&mut pending, n),
        }
    }
    Ok(())
}
