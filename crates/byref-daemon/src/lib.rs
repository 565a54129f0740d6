//! The byref store daemon: objects in a memory tier that spills to disk, served over QUIC.
//!
//! The library exposes [`run`]: give it a bound QUIC endpoint, the [`Daemon`] state and a
//! shutdown future, and it serves until the future completes, then stops accepting, lets
//! requests in flight finish, and moves the memory tier to disk. The `byrefd` binary and
//! `byref serve` (Python) are thin wrappers around it.

mod identity;
mod metrics;
pub mod peer;
mod serve;
mod size;
mod tiers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use byref_core::Result;
use byref_quic::token::Token;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use identity::Identity;
pub use metrics::Metrics;
pub use peer::PeerStore;
pub use size::parse_size;
pub use tiers::{Tier, Tiers, Usage};

/// How a daemon is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory: the disk tier and the certificate.
    pub dir: PathBuf,
    /// Bytes the memory tier may hold before puts spill to disk.
    pub memory_limit: u64,
    /// Bytes the disk tier may hold before puts fail with "store full".
    pub disk_limit: u64,
    /// Connections served at once; more are refused (clients retry or fail clearly).
    pub max_connections: usize,
    /// The largest object a client may put.
    pub max_object: u64,
    /// Write the memory tier to disk on shutdown, so that a restart keeps it. A daemon does;
    /// a peer does not, since its objects are meant to go with its process.
    pub persist: bool,
}

impl Options {
    /// Defaults for `dir`: 1 GiB of memory, unlimited disk, 1024 connections, 64 GiB objects.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            memory_limit: 1 << 30,
            disk_limit: u64::MAX,
            max_connections: 1024,
            max_object: 64 << 30,
            persist: true,
        }
    }
}

/// A daemon's state: its tiers, token, certificate and counters.
#[derive(Debug)]
pub struct Daemon {
    pub(crate) tiers: Tiers,
    pub(crate) token: Token,
    pub(crate) metrics: Metrics,
    pub(crate) options: Options,
    /// Requests being served: shutdown waits for them.
    pub(crate) in_flight: AtomicUsize,
    identity: Identity,
}

impl Daemon {
    /// Opens (or creates) the data directory and the certificate kept in it; `token`
    /// authenticates clients.
    pub fn open(options: Options, token: Token) -> Result<Self> {
        let identity = std::fs::create_dir_all(&options.dir)
            .and_then(|()| Identity::load_or_create(&options.dir))
            .map_err(|e| {
                byref_core::Error::Config(format!("data directory {}: {e}", options.dir.display()))
            })?;
        Self::new(options, token, identity)
    }

    /// A daemon presenting `identity`, its disk tier under `options.dir`.
    pub fn new(options: Options, token: Token, identity: Identity) -> Result<Self> {
        let tiers = Tiers::open(
            &options.dir.join("store"),
            options.memory_limit,
            options.disk_limit,
        )?;
        Ok(Daemon {
            tiers,
            token,
            metrics: Metrics::default(),
            options,
            in_flight: AtomicUsize::new(0),
            identity,
        })
    }

    /// The certificate clients pin.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The URL clients open for a daemon reachable at `authority` (`host:port`).
    pub fn url(&self, authority: impl std::fmt::Display) -> String {
        format!(
            "{}://{authority}?fingerprint={}",
            byref_quic::SCHEME,
            self.identity.fingerprint()
        )
    }

    /// Status in the Prometheus text format.
    pub fn status(&self) -> String {
        self.metrics.render(&self.tiers)
    }

    /// A QUIC endpoint on `addr` presenting this daemon's certificate.
    pub fn bind(&self, addr: SocketAddr) -> std::io::Result<quinn::Endpoint> {
        byref_quic::tls::endpoint(addr, Some(self.identity.server_config()?))
    }
}

/// How long requests in flight may run after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `endpoint` until `shutdown` completes; then drains and flushes to disk.
pub async fn run(
    endpoint: quinn::Endpoint,
    daemon: Arc<Daemon>,
    shutdown: impl Future,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(daemon.options.max_connections));
    let mut connections = JoinSet::new();
    let expiry = tokio::spawn(expire_forever(daemon.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = async { (&mut shutdown).await; } => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                // Bounded: past the limit a new connection is refused at once rather than
                // queued, so a flood cannot exhaust the daemon's memory or file handles.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    incoming.refuse();
                    daemon.metrics.refused();
                    continue;
                };
                let daemon = daemon.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    if let Ok(connection) = incoming.await {
                        daemon.metrics.connection();
                        serve::connection(daemon, connection).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Graceful: no new connections; requests in flight get DRAIN to finish. Idle connections
    // are not waited for: clients keep theirs open between requests.
    endpoint.set_server_config(None);
    let _ = tokio::time::timeout(DRAIN, async {
        while daemon.in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    endpoint.close(0u32.into(), b"daemon shutting down");
    connections.shutdown().await;
    expiry.abort();
    if daemon.options.persist {
        daemon.tiers.flush().await?;
    }
    endpoint.wait_idle().await;
    Ok(())
}

async fn expire_forever(daemon: Arc<Daemon>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        // A failed sweep is retried on the next tick.
        let _ = daemon.tiers.expire().await;
    }
}

/// Serves `daemon` on `listen` (and metrics over HTTP on `metrics`) until SIGINT or SIGTERM:
/// what `byrefd` and `byref serve` run. First prints, as the one line on stdout, the URL
/// clients open (the token stays in its file).
pub async fn serve_until_signalled(
    daemon: Arc<Daemon>,
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
) -> std::io::Result<()> {
    use std::io::Write;

    let endpoint = daemon.bind(listen)?;
    if let Some(addr) = metrics {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(serve_metrics(listener, daemon.clone()));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", daemon.url(endpoint.local_addr()?))?;
        out.flush()?;
    }
    run(endpoint, daemon, shutdown_signal())
        .await
        .map_err(std::io::Error::other)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Answers every HTTP request on `listener` with the metrics (Prometheus scrapes it).
pub async fn serve_metrics(listener: tokio::net::TcpListener, daemon: Arc<Daemon>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    while let Ok((mut socket, _)) = listener.accept().await {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let body = daemon.status();
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
        });
    }
}
