//! How a daemon is set up.

use std::path::PathBuf;
use std::time::Duration;

/// A daemon's settings: where it keeps data and the limits it enforces.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory: the disk tier and the certificate, so both survive restarts.
    pub dir: PathBuf,
    /// Bytes the memory tier may hold before puts spill to disk.
    pub memory_limit: u64,
    /// Bytes the disk tier may hold before puts fail with "store full".
    pub disk_limit: u64,
    /// Connections served at once; more are refused (clients retry or fail clearly).
    pub max_connections: usize,
    /// The largest object a client may put.
    pub max_object: u64,
    /// How long a connection may go without an authenticated request before it is closed:
    /// without the token, no one holds a connection slot for long.
    pub auth_deadline: Duration,
}

impl Options {
    /// Defaults for `dir`: 1 GiB of memory, unlimited disk, 1024 connections, 64 GiB objects,
    /// 10 s to authenticate.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            memory_limit: 1 << 30,
            disk_limit: u64::MAX,
            max_connections: 1024,
            max_object: 64 << 30,
            auth_deadline: Duration::from_secs(10),
        }
    }
}
