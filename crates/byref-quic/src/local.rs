//! Same-host shortcuts: a client on the machine where its server keeps an object in a file
//! maps that file, privately, instead of having the bytes sent (`LOCATE`).
//!
//! The server says which host it runs on (kernel boot id and hostname) and where the file
//! is, over the connection the client authenticated (pinned certificate, token proof). The
//! server is whoever the handle names, so the path is a claim, and the client opens it with
//! its own privileges: it maps it only if
//!
//! - the host is its own,
//! - **the server runs as this user**: the UDP socket on the server's port belongs to this
//!   user (`/proc/net/udp`, which the kernel keeps per network namespace and `hidepid` does
//!   not hide). Another user's server could otherwise name one of *this* user's private files
//!   and have it returned as the value (a confused deputy), or truncate a file it owns under
//!   the mapping (`SIGBUS`);
//! - the file is a regular file of the handle's length that belongs to this user and nobody
//!   else may write, and this process may open it.
//!
//! Otherwise it fetches over QUIC as before, verified against the key. Like a file store's
//! objects (`verify=false` by default), a file of this user's own byref server is not hashed
//! again: the server verified the bytes when they were stored.

use std::fs::File;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;

use byref_core::host::this_host;
use byref_core::{Object, mapping, own_file};
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

/// Whether every UDP socket bound to `server`'s port on this machine belongs to this user:
/// the server answering there runs as this user. False when none is found (the server is in
/// another network namespace, or `/proc` is not mounted).
pub(crate) fn served_by_this_user(server: SocketAddr) -> bool {
    let me = rustix::process::getuid().as_raw();
    let mut found = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for owner in socket_owners(&text, server.port()) {
            if owner != me {
                return false;
            }
            found = true;
        }
    }
    found
}

/// The owners (uids) of the sockets bound to `port` in a `/proc/net/udp{,6}` table.
fn socket_owners(table: &str, port: u16) -> impl Iterator<Item = u32> + '_ {
    // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...", the
    // local address as hex `ADDR:PORT`.
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (_, local_port) = fields.get(1)?.rsplit_once(':')?;
        (u16::from_str_radix(local_port, 16).ok()? == port).then_some(())?;
        fields.get(7)?.parse().ok()
    })
}

/// The object in the file a same-host server named, mapped privately (writes stay in this
/// process), if every condition above holds; `server_is_mine` says whether the server runs as
/// this user ([`served_by_this_user`]).
pub(crate) fn map_located(
    location: &Location,
    len: u64,
    server_is_mine: impl FnOnce() -> bool,
) -> Option<Object> {
    let host = this_host()?;
    if location.boot_id != host.boot_id || location.hostname != host.hostname {
        return None;
    }
    let path = location.path.as_ref()?;
    if !server_is_mine() {
        return None;
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let file = File::from(fd);
    let meta = file.metadata().ok()?;
    let trusted = own_file::check_mine(path, &meta).is_ok();
    if !meta.is_file() || meta.len() != len || !trusted {
        return None;
    }
    mapping::map_private(&file).ok().map(Object::Mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_owners_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            \x20 1: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 1 2 0 0\n\
            \x20 2: 00000000:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n\
            \x20 3: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 1 2 0 0\n";
        assert_eq!(socket_owners(table, 0x1F90).collect::<Vec<_>>(), [1000, 0]);
        assert_eq!(socket_owners(table, 53).collect::<Vec<_>>(), [101]);
        assert_eq!(socket_owners(table, 1).count(), 0);
    }

    #[test]
    fn this_users_own_socket_is_found() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(served_by_this_user(socket.local_addr().unwrap()));
        let port = socket.local_addr().unwrap().port();
        drop(socket);
        // Nothing bound there now (unless another test took the port meanwhile).
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(!served_by_this_user(SocketAddr::from((
                [127, 0, 0, 1],
                port
            ))));
        }
    }
}
