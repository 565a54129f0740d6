//! Metrics over plain HTTP, for Prometheus to scrape.

use std::sync::Arc;
use std::time::Duration;

use crate::Daemon;

/// How long one scrape may take, idle client included: past it the socket is closed, so idle
/// connections cannot pile up until the daemon runs out of file descriptors.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many scrapes are answered at once. Further connections wait in the kernel's accept
/// queue, holding none of the daemon's file descriptors: idle clients cannot starve the
/// store's files (puts to the disk tier) of descriptors.
const MAX_SCRAPERS: usize = 8;

/// Answers every HTTP request on `listener` with the metrics, [`MAX_SCRAPERS`] at a time.
/// Accept errors (out of file descriptors, a connection reset before it was accepted) pause
/// the loop briefly; they never end it.
pub async fn serve_metrics(listener: tokio::net::TcpListener, daemon: Arc<Daemon>) {
    let scrapers = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPERS));
    loop {
        let Ok(permit) = scrapers.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((socket, _)) => {
                let daemon = daemon.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(SCRAPE_TIMEOUT, answer(socket, daemon)).await;
                    drop(permit);
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn answer(mut socket: tokio::net::TcpStream, daemon: Arc<Daemon>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut request = [0u8; 1024];
    let _ = socket.read(&mut request).await;
    let body = daemon.status();
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
}
