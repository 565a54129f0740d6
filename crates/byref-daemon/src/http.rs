//! Metrics over plain HTTP, for Prometheus to scrape.

use std::sync::Arc;

use crate::Daemon;

/// Answers every HTTP request on `listener` with the metrics.
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
