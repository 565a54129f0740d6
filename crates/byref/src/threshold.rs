//! Where proxying an argument starts to beat sending it inline, by store kind: the default
//! threshold a store's users proxy at.
//!
//! Measured on the cluster set-up (`benches/cluster.py --crossover`: 200 Parsl tasks over two
//! nodes at MTU 1500, every argument proxied; benches/RESULTS-cluster-crossover.md). Over the
//! daemon, 300 kB arguments were 0.8-0.9x inline, 600 kB 1.0-1.3x, 1 MB 1.4-1.8x; over Redis,
//! 300 kB 1.0-1.4x, 600 kB 1.3-1.6x. A request to a server costs a round trip and, over QUIC,
//! a connection per worker process. On one host, the file store and `peer://` won from
//! 256 KiB (`benches/parsl_throughput.py --crossover`: 1.02-1.57x; 100 KiB lost as often as
//! it won). S3's requests cost tens of milliseconds: its 4 MiB is a guess from that, not
//! measured.

/// The threshold of a store kind not named in [`proxy_threshold`] (memory, file).
pub const DEFAULT_PROXY_THRESHOLD: u64 = 256 << 10;

/// The default proxy threshold, in bytes, of a store opened with URL scheme `scheme`.
pub fn proxy_threshold(scheme: &str) -> u64 {
    match scheme {
        "quic" | "peer" => 1 << 20,
        "redis" | "rediss" | "redis+cluster" => 512 << 10,
        "s3" => 4 << 20,
        _ => DEFAULT_PROXY_THRESHOLD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_across_the_network_proxies_from_larger_sizes() {
        assert_eq!(proxy_threshold("file"), DEFAULT_PROXY_THRESHOLD);
        assert_eq!(proxy_threshold("memory"), DEFAULT_PROXY_THRESHOLD);
        assert_eq!(proxy_threshold("redis+cluster"), 512 << 10);
        assert_eq!(proxy_threshold("peer"), proxy_threshold("quic"));
        assert!(proxy_threshold("s3") > proxy_threshold("quic"));
    }
}
