//! The daemon's life: serve, expire, and on shutdown keep the memory tier.

use std::future::Future;
use std::sync::Arc;

use byref_core::Result;

use crate::Daemon;

/// Serves `endpoint` until `shutdown` completes; then drains requests in flight and moves
/// the memory tier to disk, so that a restart keeps it.
pub async fn run(
    endpoint: quinn::Endpoint,
    daemon: Arc<Daemon>,
    shutdown: impl Future,
) -> Result<()> {
    let expiry = tokio::spawn(daemon.store.clone().expire_forever());
    byref_quic::server::run(endpoint.clone(), daemon.server.clone(), shutdown).await;
    expiry.abort();
    daemon.store.flush().await?;
    endpoint.wait_idle().await;
    Ok(())
}
