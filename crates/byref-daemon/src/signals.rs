//! What `byrefd` and `byref serve` run: print the URL, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::{Daemon, http, run};

/// Serves `daemon` on `listen` (and metrics over HTTP on `metrics`) until SIGINT or SIGTERM.
/// First prints, as the one line on stdout, the URL clients open (the token stays in its
/// file).
pub async fn serve_until_signalled(
    daemon: Arc<Daemon>,
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
) -> std::io::Result<()> {
    use std::io::Write;

    let endpoint = daemon.bind(listen)?;
    if let Some(addr) = metrics {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tokio::spawn(http::serve_metrics(listener, daemon.clone()));
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

/// [`serve_until_signalled`] on a runtime of its own, a worker thread per core: what `byref
/// serve` runs, so that a login node's cores serve its many clients (the Python extension's
/// own runtime has two threads, for one process's requests).
pub fn serve_on_every_core(
    daemon: Arc<Daemon>,
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
) -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("byref-serve")
        .build()?
        .block_on(serve_until_signalled(daemon, listen, metrics))
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
