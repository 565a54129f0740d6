//! Serves any [`Store`] over QUIC: the daemon's tiered store, a peer's own objects.
//!
//! [`run`] accepts connections up to a bound, serves each request on its own stream (one
//! small handler per operation, in `cmd`), and on shutdown stops accepting and lets requests
//! in flight finish. What the store does on shutdown (a daemon flushing its memory tier) is
//! its owner's business, after `run` returns.

mod cmd;
mod connection;
mod metrics;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use byref_core::Store;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use metrics::Metrics;

use crate::token::Token;

/// Store-specific lines for `STATUS` (a tiered store's usage per tier), Prometheus text.
type Report = Box<dyn Fn() -> String + Send + Sync>;

/// A store, served: what every connection's requests share.
pub struct Server {
    /// What the requests read and write.
    store: Arc<dyn Store>,
    /// Every request proves it holds it; one that does not is refused before it touches the
    /// store.
    token: Token,
    /// Connections served at once; past it a new one is refused, so a flood cannot exhaust
    /// memory or file handles.
    max_connections: usize,
    /// The largest body a `PUT` may announce; a larger one is refused at its header.
    max_object: u64,
    /// How long a connection may go without an authenticated request before it is closed,
    /// so connections without the token cannot sit on the slots.
    auth_deadline: Duration,
    /// What was served, for `STATUS` and `/metrics`.
    metrics: Metrics,
    /// Requests being served: shutdown waits for them.
    in_flight: AtomicUsize,
    /// Appended to the server's own counters in [`Server::status`].
    report: Option<Report>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("store", &self.store)
            .field("max_connections", &self.max_connections)
            .field("max_object", &self.max_object)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Serves `store` to clients holding `token`: 1024 connections, 64 GiB objects, 10 s to
    /// authenticate.
    pub fn new(store: Arc<dyn Store>, token: Token) -> Self {
        Server {
            store,
            token,
            max_connections: 1024,
            max_object: 64 << 30,
            auth_deadline: Duration::from_secs(10),
            metrics: Metrics::default(),
            in_flight: AtomicUsize::new(0),
            report: None,
        }
    }

    /// Serves at most `n` connections at once.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Refuses puts larger than `bytes`.
    pub fn with_max_object(mut self, bytes: u64) -> Self {
        self.max_object = bytes;
        self
    }

    /// Closes connections that make no authenticated request within `deadline` (10 s unless
    /// set).
    pub fn with_auth_deadline(mut self, deadline: Duration) -> Self {
        self.auth_deadline = deadline;
        self
    }

    /// Adds the store's own metrics (Prometheus text) to [`Server::status`].
    pub fn with_report(mut self, report: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    /// The store served.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store's report and the server's counters, in the Prometheus text format.
    pub fn status(&self) -> String {
        let mut out = self.report.as_ref().map(|r| r()).unwrap_or_default();
        out.push_str(&self.metrics.render());
        out
    }
}

/// How long requests in flight may run after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `endpoint` until `shutdown` completes, then stops accepting and gives requests in
/// flight up to 30 s to finish.
pub async fn run(endpoint: quinn::Endpoint, server: Arc<Server>, shutdown: impl Future) {
    let slots = Arc::new(Semaphore::new(server.max_connections));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = async { (&mut shutdown).await; } => break,
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                // Refused at once rather than queued: past the limit, waiting costs memory.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    incoming.refuse();
                    server.metrics.refused();
                    continue;
                };
                let server = server.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    if let Ok(connection) = incoming.await {
                        server.metrics.connection(&connection);
                        connection::serve(&server, &connection).await;
                        server.metrics.ended(&connection);
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
        while server.in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    endpoint.close(0u32.into(), b"server shutting down");
    connections.shutdown().await;
}
