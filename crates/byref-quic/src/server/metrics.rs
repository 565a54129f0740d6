//! What a server has done since it started, rendered in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

use byref_core::metrics::write_family;

use crate::protocol::Op;

/// Counters, each bumped where its event happens.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Authenticated requests, per operation.
    puts: AtomicU64,
    gets: AtomicU64,
    heads: AtomicU64,
    releases: AtomicU64,
    statuses: AtomicU64,
    get_ranges: AtomicU64,
    /// Same-host clients asking where to map an object: each one a transfer saved.
    locates: AtomicU64,
    /// `GET`s of absent objects: a client resolving something already released.
    misses: AtomicU64,
    /// Bad tokens, malformed headers, connections past the limit: the signs of abuse.
    refused: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
}

impl Metrics {
    /// The counter of `op`'s requests: a new operation fails to compile here until counted.
    fn requests(&self, op: Op) -> &AtomicU64 {
        match op {
            Op::Put => &self.puts,
            Op::Get => &self.gets,
            Op::Head => &self.heads,
            Op::Release => &self.releases,
            Op::Status => &self.statuses,
            Op::GetRange => &self.get_ranges,
            Op::Locate => &self.locates,
        }
    }

    pub(super) fn request(&self, op: Op) {
        self.requests(op).fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as Prometheus text.
    pub fn render(&self) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ops = [
            ("put", Op::Put),
            ("get", Op::Get),
            ("head", Op::Head),
            ("release", Op::Release),
            ("status", Op::Status),
            ("get_range", Op::GetRange),
            ("locate", Op::Locate),
        ];
        let requests = ops
            .iter()
            .map(|(name, op)| (format!("{{op=\"{name}\"}}"), load(self.requests(*op))))
            .collect();
        let total = |n: &AtomicU64| vec![(String::new(), load(n))];
        let mut out = String::new();
        for (name, help, rows) in [
            (
                "requests_total",
                "Requests served, per operation.",
                requests,
            ),
            (
                "misses_total",
                "GETs of absent objects.",
                total(&self.misses),
            ),
            (
                "refused_total",
                "Requests refused: bad token or malformed header.",
                total(&self.refused),
            ),
            (
                "connections_total",
                "Connections accepted.",
                total(&self.connections),
            ),
        ] {
            write_family(&mut out, name, "counter", help, &rows);
        }
        out
    }
}
