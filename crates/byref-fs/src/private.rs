//! Files and directories only their owner can read: a store on shared scratch or `/tmp` must
//! not hand every user of the machine everyone's data (and a way around the daemon's token).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `path` (which must not exist) for writing, mode 0600.
pub fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Creates the directory `path`, mode 0700; its parent must exist.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Replaces the file `path` with one holding `data`, mode 0600, atomically (a scratch file
/// of this process renamed over it).
pub fn replace_file(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut scratch = path.as_os_str().to_owned();
    scratch.push(format!(".{}.tmp", std::process::id()));
    let scratch = std::path::PathBuf::from(scratch);
    let _ = std::fs::remove_file(&scratch);
    let mut file = create_file(&scratch)?;
    file.write_all(data)?;
    drop(file);
    std::fs::rename(&scratch, path)
}

/// Creates the directory `path` and any missing parents, each mode 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}
