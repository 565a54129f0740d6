//! Reading the small files byref trusts — store-id records, `credentials`, `byref.env` — the
//! one way: each is a regular file of this user that no one else may change, of bounded size.
//!
//! A file someone else could have written (another owner, a group- or world-writable mode, a
//! symlink to wherever), a FIFO that would hang the reader, or a file of hundreds of
//! megabytes is refused with [`Error::Config`] saying which and why, before a byte is read.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::{Error, Result};

/// Who else may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Anyone: it holds nothing secret (a URL).
    Anyone,
    /// Only its owner (mode 0600 or stricter), as SSH requires of its keys: it holds secrets.
    OwnerOnly,
}

/// The file at `path`, at most `max` bytes, if it exists and passes every check above; `None`
/// if there is no file there.
pub fn read(path: &Path, max: u64, readers: Readers) -> Result<Option<Vec<u8>>> {
    let refuse = |why: String| Err(Error::Config(format!("{}: {why}", path.display())));
    // O_NOFOLLOW: a symlink is refused, not followed; O_NONBLOCK: opening a FIFO does not
    // wait for a writer (it is then refused as not a regular file).
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => {
            return refuse("is a symlink; byref reads it only as a regular file".into());
        }
        Err(e) => return refuse(format!("cannot be opened: {e}")),
    };
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return refuse(format!("is {what}; byref reads it only as a regular file"));
    }
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return refuse(format!(
            "belongs to user {}, not to this user ({me}); byref reads only its own user's files",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return refuse(format!(
            "may be changed by other users (mode {mode:o}): run chmod go-w on it"
        ));
    }
    if readers == Readers::OwnerOnly && mode & 0o077 != 0 {
        return refuse(format!(
            "holds secrets and is readable by other users (mode {mode:o}): run chmod 600 on it"
        ));
    }
    if meta.len() > max {
        return refuse(format!("is {} bytes; at most {max} are read", meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Bounded again: the file may grow between the check and the read.
    file.take(max)
        .read_to_end(&mut data)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(Some(data))
}

/// [`read`], as text.
pub fn read_text(path: &Path, max: u64, readers: Readers) -> Result<Option<String>> {
    read(path, max, readers)?
        .map(|data| {
            String::from_utf8(data)
                .map_err(|_| Error::Config(format!("{}: is not UTF-8 text", path.display())))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn refused(path: &Path, readers: Readers, why: &str) {
        let err = read(path, 100, readers).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains(why), "{err} (expected {why:?})");
    }

    #[test]
    fn only_small_private_regular_files_of_this_user_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(read(&path, 100, Readers::Anyone).unwrap(), None);
        std::fs::write(&path, "x=1").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read(&path, 100, Readers::Anyone).unwrap().unwrap(), b"x=1");
        refused(&path, Readers::OwnerOnly, "chmod 600");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        refused(&path, Readers::Anyone, "changed by other users");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&path, 100, Readers::OwnerOnly).unwrap().is_some());

        std::fs::write(&path, vec![b'a'; 101]).unwrap();
        refused(&path, Readers::OwnerOnly, "at most 100");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        refused(&link, Readers::Anyone, "symlink");

        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Would hang on a writer if it were opened as a file.
        refused(&fifo, Readers::Anyone, "FIFO");
        refused(dir.path(), Readers::Anyone, "directory");

        // Another user's file: made as root (skipped, and said, as any other user).
        std::fs::write(&path, "x=1").unwrap();
        match rustix::fs::chown(&path, Some(rustix::fs::Uid::from_raw(65534)), None) {
            Ok(()) => refused(&path, Readers::Anyone, "belongs to user 65534"),
            Err(e) => eprintln!("skipped: the foreign-owner case needs root ({e})"),
        }
    }
}
