//! The directory a peer keeps its objects in when it is given none: private (0700), removed
//! with the store, and marked alive by a lock its process holds. A process killed with -9
//! removes nothing, and what it leaves in `/dev/shm` keeps holding memory; so a peer that
//! opens there first removes the directories of this user whose owners are gone (the kernel
//! released their lock), however their processes ended.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// What every peer's directory is called, before its random part.
const PREFIX: &str = "byref-peer-";
/// The file whose lock says the directory's peer is alive.
const ALIVE: &str = ".alive";

/// A peer's directory, and the lock that keeps it from being swept.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Removed when dropped.
    dir: tempfile::TempDir,
    /// Locked for as long as this process holds it.
    _alive: File,
}

impl Scratch {
    /// A new directory in `parent` (after sweeping the dead ones there), or in the system's
    /// temporary directory.
    pub(crate) fn create(parent: Option<&Path>) -> io::Result<Scratch> {
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = match parent {
            Some(parent) => {
                sweep(parent);
                builder.tempdir_in(parent)?
            }
            None => builder.tempdir()?,
        };
        // Locked before it has its name: a sweeper never finds it unlocked.
        let pending = dir.path().join(".alive.new");
        let alive = File::create_new(&pending)?;
        alive.lock()?;
        fs::rename(&pending, dir.path().join(ALIVE))?;
        Ok(Scratch { dir, _alive: alive })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the peer directories in `parent` that belong to this user and whose lock is free.
/// Directories without the mark (being made right now) are left alone.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let me = rustix::process::getuid().as_raw();
    for entry in entries.flatten() {
        let named = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if !named || !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let alive = rustix::fs::open(
            entry.path().join(ALIVE),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        if let Ok(fd) = alive
            && File::from(fd).try_lock().is_ok()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
