//! Same-host shortcuts: a client on the machine where its server keeps an object in a file
//! maps that file, privately, instead of having the bytes sent (`LOCATE`).
//!
//! The server says which host it runs on (kernel boot id and hostname) and where the file
//! is, over the connection the client authenticated (pinned certificate, token proof). The
//! client maps it only if the host is its own, the file is a regular file of the handle's
//! length that belongs to this process's user and nobody else may write, and this process
//! may open it; otherwise it fetches over QUIC as before. The server is whoever the handle
//! names, so the path is a claim: the owner check keeps it from naming a file another user
//! wrote (bytes that never passed a store's check). Like a file store's objects
//! (`verify=false` by default), a file of this user's byref server is not hashed again: the
//! server verified the bytes when they were stored.

use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use byref_core::host::this_host;
use byref_core::{Object, mapping};
use rustix::fs::{Mode, OFlags};

use crate::protocol::Location;

/// A server's answer to `LOCATE`: this host, and the object's file if it is in one.
pub(crate) fn location_here(path: Option<PathBuf>) -> Location {
    match this_host() {
        Some(host) => Location {
            boot_id: host.boot_id.clone(),
            hostname: host.hostname.clone(),
            path,
        },
        // A host it cannot name: no client can tell it is on the same one.
        None => Location {
            boot_id: String::new(),
            hostname: String::new(),
            path: None,
        },
    }
}

/// Whether `addr` is an address of this machine (in this network namespace): only then can
/// the server be on the same host, and only then is a `LOCATE` worth its round trip.
pub(crate) fn is_local_address(addr: SocketAddr) -> bool {
    let ip: IpAddr = addr.ip();
    ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

/// The object in the file a same-host server named, mapped privately (writes stay in this
/// process), if every condition above holds.
pub(crate) fn map_located(location: &Location, len: u64) -> Option<Object> {
    let host = this_host()?;
    if location.boot_id != host.boot_id || location.hostname != host.hostname {
        return None;
    }
    let path = location.path.as_ref()?;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let file = File::from(fd);
    let meta = file.metadata().ok()?;
    let writable_by_others = meta.permissions().mode() & 0o022 != 0;
    let mine = meta.uid() == rustix::process::getuid().as_raw();
    if !meta.is_file() || meta.len() != len || writable_by_others || !mine {
        return None;
    }
    mapping::map_private(&file).ok().map(Object::Mapped)
}
