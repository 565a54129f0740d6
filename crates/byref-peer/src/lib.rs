//! `peer://[host][:port]`: the producing process serves its own objects, with no daemon.
//!
//! Opening a peer store starts `byref-quic`'s server inside this process, on the caller's
//! tokio runtime, over a `byref-tiers` store. By default what is put here is written once
//! into private files in `/dev/shm` (removed with the store): a worker on this host maps them
//! (the server tells it where, `LOCATE`), and other workers fetch them over QUIC. With
//! `memory=` or `dir=`, objects stay in this process's memory up to `memory=` (all of them
//! if only `dir=` is given), then spill to `dir=` or a private temporary directory.
//! The store's URL, which handles carry, is the endpoint's `quic://` URL with the
//! certificate's fingerprint and the peer's name, so a worker needs only the handle and the
//! shared token file. The objects go with the process: a worker resolving one afterwards is
//! told which peer is gone.
//!
//! A backend like the others (the facade opens it by URL): it depends on `byref-core`, the
//! QUIC crate and the tiers, never on the daemon or the facade.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Error, Fetched, GetOptions, Key, Listed, Payload, PutOptions, RefId, Result,
    Store, StoreUrl,
};
use byref_quic::token::Token;
use byref_quic::{Identity, Server};
use byref_tiers::TieredStore;
use scratch::Scratch;
use tokio::sync::oneshot;

mod scratch;

/// The URL scheme.
pub const SCHEME: &str = "peer";
/// Where objects live by default: memory that other processes on this host can map.
const SHARED_MEMORY: &str = "/dev/shm";

/// A store served from this process.
#[derive(Debug)]
pub struct PeerStore {
    /// Where the objects are: this process's memory, spilling to a directory.
    store: Arc<TieredStore>,
    /// The `quic://` URL workers open, which handles carry.
    url: String,
    /// Where it listens: names its entry in the endpoints this process serves.
    addr: SocketAddr,
    /// Dropping it shuts the server down (requests in flight finish first).
    _stop: oneshot::Sender<()>,
    /// The spill directory, when none was given; removed with the store.
    _scratch: Option<Scratch>,
}

/// An endpoint this process serves, for [`close_all`].
#[derive(Debug)]
struct Serving {
    /// The process that opened it: a forked child inherits the list but not the endpoint.
    pid: u32,
    /// Tells the entry of one store from another's.
    addr: SocketAddr,
    /// What `close_all` closes.
    endpoint: quinn::Endpoint,
    /// The spill directory `close_all` removes (the store's own drop may never run).
    scratch: Option<PathBuf>,
}

static SERVING: Mutex<Vec<Serving>> = Mutex::new(Vec::new());

fn serving() -> MutexGuard<'static, Vec<Serving>> {
    SERVING.lock().unwrap_or_else(|p| p.into_inner())
}

fn config(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("peer store: {what}: {e}"))
}

impl PeerStore {
    /// Opens `peer://[host][:port][?memory=SIZE&dir=PATH&advertise=HOST&connect_timeout=S]`
    /// and starts serving on `host:port`, on the current tokio runtime.
    ///
    /// With no host it listens on every interface and advertises the address this machine
    /// sends from toward its default route (see [`reachable_address`]);
    /// with no port it takes a free one. `advertise` is the address workers dial, when it is
    /// not the one listened on; `connect_timeout` goes into the URL workers open. Workers
    /// authenticate with the token of `BYREF_TOKEN` or the token file (made if missing).
    pub fn open(url: StoreUrl) -> Result<Self> {
        let token = byref_quic::token::server_token().map_err(|e| config("token", e))?;
        Self::open_with_token(url, token)
    }

    /// Opens with the given token (embedders and tests; never from a URL).
    pub fn open_with_token(url: StoreUrl, token: Token) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            config(
                "opening",
                "serving needs a tokio runtime; open it inside one",
            )
        })?;
        let PeerOptions {
            listen,
            advertise,
            machine,
            memory_limit,
            dir,
            connect_timeout,
        } = PeerOptions::parse(url)?;
        // By default the objects go straight into private files in shared memory: one copy
        // at put, and a worker on this host maps them from there (`LOCATE`) instead of
        // having them sent. A memory bound or a directory given keeps the old arrangement:
        // memory first, then files in the directory.
        let shm = Path::new(SHARED_MEMORY);
        let in_shared_memory = memory_limit.is_none() && dir.is_none() && shm.is_dir();
        let memory_limit = match memory_limit {
            Some(limit) => limit,
            None if in_shared_memory => 0,
            None => u64::MAX,
        };
        let scratch = match dir {
            Some(_) => None,
            None => Some(
                Scratch::create(in_shared_memory.then_some(shm))
                    .map_err(|e| config("object directory", e))?,
            ),
        };
        let dir = dir.unwrap_or_else(|| scratch.as_ref().expect("made above").path().into());
        let store = Arc::new(TieredStore::open(
            "byref peer",
            &dir,
            memory_limit,
            u64::MAX,
        )?);
        let identity = Identity::generate().map_err(|e| config("certificate", e))?;
        let server_config = identity
            .server_config()
            .map_err(|e| config("certificate", e))?;
        let endpoint = byref_quic::tls::endpoint(
            listen,
            Some(server_config),
            byref_quic::tls::MAX_UDP_PAYLOAD,
        )
        .map_err(|e| config(&format!("listening on {listen}"), e))?;
        let addr = endpoint.local_addr().map_err(|e| config("endpoint", e))?;

        let authority = if advertise.contains(':') {
            format!("[{advertise}]:{}", addr.port())
        } else {
            format!("{advertise}:{}", addr.port())
        };
        let name = format!(
            "{}@{}",
            std::process::id(),
            machine.unwrap_or_else(|| advertise.clone())
        );
        let url = byref_quic::server_url(
            &authority,
            &identity.fingerprint(),
            Some(&name),
            connect_timeout,
        );

        serving().push(Serving {
            pid: std::process::id(),
            addr,
            endpoint: endpoint.clone(),
            scratch: scratch.as_ref().map(|s| s.path().to_owned()),
        });
        let stop = serve(&runtime, store.clone(), token, endpoint);
        Ok(PeerStore {
            store,
            url,
            addr,
            _stop: stop,
            _scratch: scratch,
        })
    }
}

/// Serves `store` on `endpoint` from `runtime` until the returned sender is dropped.
fn serve(
    runtime: &tokio::runtime::Handle,
    store: Arc<TieredStore>,
    token: Token,
    endpoint: quinn::Endpoint,
) -> oneshot::Sender<()> {
    let server = Server::new(store.clone(), token).with_report({
        let store = store.clone();
        move || store.report()
    });
    let (stop, stopped) = oneshot::channel::<()>();
    runtime.spawn(store.expire_forever());
    runtime.spawn(async move {
        byref_quic::server::run(endpoint.clone(), Arc::new(server), async move {
            let _ = stopped.await;
        })
        .await;
        endpoint.wait_idle().await;
    });
    stop
}

/// What a `peer://` URL asks for.
struct PeerOptions {
    /// Where to listen.
    listen: SocketAddr,
    /// The host workers dial.
    advertise: String,
    /// This machine's hostname, which names the peer in workers' errors.
    machine: Option<String>,
    /// Bytes kept in memory before spilling, if given.
    memory_limit: Option<u64>,
    /// The spill directory, if given (else a private temporary one).
    dir: Option<PathBuf>,
    /// Goes into the URL workers open.
    connect_timeout: Option<Duration>,
}

impl PeerOptions {
    fn parse(mut url: StoreUrl) -> Result<Self> {
        url.refuse_credentials("workers authenticate with BYREF_TOKEN or the token file")?;
        let host = url.url().host_str().unwrap_or_default();
        let host = host.trim_matches(['[', ']']).to_owned();
        let ip = if host.is_empty() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            (host.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| config(&host, e))?
                .next()
                .ok_or_else(|| config(&host, "resolves to no address"))?
                .ip()
        };
        let listen = SocketAddr::new(ip, url.url().port().unwrap_or(0));
        let machine = machine_name();
        let advertise = match url.take("advertise") {
            Some(advertised) => advertised,
            None if ip.is_unspecified() => reachable_address(machine.as_deref())
                .ok_or_else(|| {
                    config(
                        "no address to advertise",
                        "this machine has no default route and its hostname resolves to no \
                         address; give ?advertise=ADDRESS (the address workers dial)",
                    )
                })?
                .to_string(),
            None => host,
        };
        let options = PeerOptions {
            listen,
            advertise,
            machine,
            memory_limit: url.take_size("memory")?,
            dir: url.take("dir").map(PathBuf::from),
            connect_timeout: url.take_secs("connect_timeout")?,
        };
        url.finish()?;
        Ok(options)
    }
}

impl Drop for PeerStore {
    fn drop(&mut self) {
        // Its endpoint closes as the server stops; an entry left here would keep it bound.
        let pid = std::process::id();
        serving().retain(|s| s.pid != pid || s.addr != self.addr);
    }
}

/// The address workers on other nodes dial when the URL names none: the one this machine
/// sends from toward its default route (the interface a cluster's nodes share with it, where
/// a bare hostname may resolve only here, or nowhere), else a non-loopback address the
/// hostname resolves to, else a loopback one (then only this machine's workers can reach it).
fn reachable_address(hostname: Option<&str>) -> Option<IpAddr> {
    let by_route = [
        (Ipv4Addr::UNSPECIFIED.into(), ROUTE_PROBE_V4.into()),
        (Ipv6Addr::UNSPECIFIED.into(), ROUTE_PROBE_V6.into()),
    ]
    .into_iter()
    .find_map(|(any, probe): (IpAddr, IpAddr)| {
        // A UDP connect only asks the kernel for a route: nothing is sent.
        let socket = std::net::UdpSocket::bind((any, 0)).ok()?;
        socket.connect((probe, 9)).ok()?;
        Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    });
    let by_name = || {
        let resolved: Vec<IpAddr> = (hostname?, 0)
            .to_socket_addrs()
            .ok()?
            .map(|a| a.ip())
            .collect();
        let first = resolved.first().copied();
        resolved.into_iter().find(|ip| !ip.is_loopback()).or(first)
    };
    by_route.or_else(by_name)
}

/// Documentation addresses (RFC 5737, RFC 3849): routed by a default route, owned by no one.
const ROUTE_PROBE_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ROUTE_PROBE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// This machine's hostname (Linux), which names the peer in workers' errors.
fn machine_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Closes every peer endpoint this process serves, for a process about to exit: connected
/// workers are told at once (rather than after their idle timeout) and the spill
/// directories go. Endpoints inherited across `fork()` belong to the parent and are left be.
pub async fn close_all() {
    let pid = std::process::id();
    let (own, inherited): (Vec<_>, Vec<_>) = std::mem::take(&mut *serving())
        .into_iter()
        .partition(|s| s.pid == pid);
    // Driven by the parent's runtime, which a forked child lacks: never touch them.
    std::mem::forget(inherited);
    for peer in &own {
        peer.endpoint
            .close(0u32.into(), b"the peer process has exited");
    }
    for peer in own {
        // Long enough for the close to reach connected workers, short enough not to hold up
        // an exiting process.
        let _ = tokio::time::timeout(Duration::from_secs(1), peer.endpoint.wait_idle()).await;
        if let Some(dir) = peer.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[async_trait]
impl Store for PeerStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn capabilities(&self) -> Capabilities {
        byref_quic::CAPABILITIES
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        self.store.put(key, payload, options).await
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        self.store.get_opts(key, options).await
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.store.head(key).await
    }

    async fn list(&self) -> Result<Vec<Listed>> {
        self.store.list().await
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        self.store.release(key, reference).await
    }
}
