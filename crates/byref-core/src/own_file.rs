//! Reading the small files byref trusts — store-id records, `credentials`, `byref.env` — the
//! one way: each is a regular file of this user that no one else may change, of bounded size.
//!
//! A file someone else could have written (another owner, a group- or world-writable mode, a
//! symlink to wherever), a FIFO that would hang the reader, or a file of hundreds of
//! megabytes is refused with [`Error::Config`] saying which and why, before a byte is read.
//! A file holding secrets must also be unreadable by others ([`OwnFile::private`]).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::{Error, Result};

/// A file byref trusts, read whole after every check above.
#[derive(Debug)]
pub struct OwnFile {
    path: PathBuf,
    /// Its permission bits.
    mode: u32,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl OwnFile {
    /// Refuses it unless only its owner may read it (mode 0600 or stricter, as SSH requires
    /// of its keys): what holds secrets. `holds` says which, for the message.
    pub fn private(&self, holds: &str) -> Result<()> {
        if self.mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{}: holds {holds} and is readable by other users (mode {:o}): run chmod 600 on it",
                self.path.display(),
                self.mode
            )));
        }
        Ok(())
    }

    /// Its bytes as text.
    pub fn text(self) -> Result<String> {
        String::from_utf8(self.data)
            .map_err(|_| Error::Config(format!("{}: is not UTF-8 text", self.path.display())))
    }
}

/// The file at `path`, at most `max` bytes, if it exists and passes every check above; `None`
/// if there is no file there.
pub fn read(path: &Path, max: u64) -> Result<Option<OwnFile>> {
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
    check_mine(path, &meta)?;
    if meta.len() > max {
        return refuse(format!("is {} bytes; at most {max} are read", meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // Bounded again: the file may grow between the check and the read.
    file.take(max)
        .read_to_end(&mut data)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(Some(OwnFile {
        path: path.to_owned(),
        mode: meta.mode() & 0o777,
        data,
    }))
}

/// Refuses what `path` (of metadata `meta`) is unless it belongs to this user and no one
/// else may change it: not group- or world-writable. The rule for every file and directory
/// byref trusts on a handle's word.
pub fn check_mine(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(Error::Config(format!(
            "{} belongs to user {}, not to this user ({me}); byref trusts only its own user's",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(Error::Config(format!(
            "{} may be changed by other users, who may write to it (mode {mode:o}): \
             run chmod go-w on it",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn refused(path: &Path, why: &str) {
        let err = read(path, 100).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(err.to_string().contains(why), "{err} (expected {why:?})");
    }

    #[test]
    fn only_small_private_regular_files_of_this_user_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read(&path, 100).unwrap().is_none());
        std::fs::write(&path, "x=1").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = read(&path, 100).unwrap().unwrap();
        let err = file.private("a password").unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && err.contains("a password"),
            "{err}"
        );
        assert_eq!(file.text().unwrap(), "x=1");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        refused(&path, "changed by other users");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        read(&path, 100)
            .unwrap()
            .unwrap()
            .private("a password")
            .unwrap();

        std::fs::write(&path, vec![b'a'; 101]).unwrap();
        refused(&path, "at most 100");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        refused(&link, "symlink");

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
        refused(&fifo, "FIFO");
        refused(dir.path(), "directory");

        // Another user's file: made as root (skipped, and said, as any other user).
        std::fs::write(&path, "x=1").unwrap();
        match rustix::fs::chown(&path, Some(rustix::fs::Uid::from_raw(65534)), None) {
            Ok(()) => refused(&path, "belongs to user 65534"),
            Err(e) => byref_testing::skipped(
                "own_file: another user's file",
                &format!("the foreign-owner case needs root ({e})"),
            ),
        }
    }
}
