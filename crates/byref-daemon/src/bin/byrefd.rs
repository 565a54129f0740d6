//! `byrefd`: the store daemon. `byrefd --listen 127.0.0.1:7390 --dir PATH --memory 8GiB`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use byref_core::parse_size;
use byref_daemon::{Daemon, Options};
use clap::Parser;

/// Serve a byref store over QUIC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on (UDP).
    #[arg(long, default_value = "127.0.0.1:7390")]
    listen: SocketAddr,
    /// Data directory: the disk tier and the certificate.
    #[arg(long)]
    dir: PathBuf,
    /// Memory tier size, e.g. 8GiB; puts beyond it spill to disk.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    memory: u64,
    /// Disk tier size limit; puts beyond it fail with "store full".
    #[arg(long, value_parser = parse_size)]
    disk: Option<u64>,
    /// Serve Prometheus metrics over HTTP on this address.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("byrefd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let token = byref_quic::token::server_token()?;
    let mut options = Options::new(&args.dir);
    options.memory_limit = args.memory;
    options.disk_limit = args.disk.unwrap_or(u64::MAX);
    options.max_connections = args.max_connections;
    let daemon = Arc::new(Daemon::open(options, token)?);
    byref_daemon::serve_until_signalled(daemon, args.listen, args.metrics).await?;
    Ok(())
}
