//! Counters, rendered in the Prometheus text format (for `STATUS` requests and `/metrics`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use byref_quic::protocol::Op;

use crate::tiers::{Tier, Tiers};

/// What the daemon has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 6],
    hits: [AtomicU64; 2],
    misses: AtomicU64,
    refused: AtomicU64,
    connections: AtomicU64,
}

impl Metrics {
    pub(crate) fn request(&self, op: Op) {
        self.requests[op as usize - 1].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn hit(&self, tier: Tier) {
        self.hits[tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics and the tiers' usage, as Prometheus text.
    pub fn render(&self, tiers: &Tiers) -> String {
        let (memory, disk) = tiers.usage();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let per_tier = |memory: u64, disk: u64| {
            vec![
                ("{tier=\"memory\"}".to_owned(), memory),
                ("{tier=\"disk\"}".to_owned(), disk),
            ]
        };
        let requests = ["put", "get", "head", "release", "status", "get_range"]
            .iter()
            .zip(&self.requests)
            .map(|(op, n)| (format!("{{op=\"{op}\"}}"), load(n)))
            .collect();
        let total = |n: &AtomicU64| vec![(String::new(), load(n))];
        let families = [
            (
                "objects",
                "gauge",
                "Objects stored, per tier.",
                per_tier(memory.objects, disk.objects),
            ),
            (
                "bytes",
                "gauge",
                "Bytes stored, per tier.",
                per_tier(memory.bytes, disk.bytes),
            ),
            (
                "requests_total",
                "counter",
                "Requests served, per operation.",
                requests,
            ),
            (
                "hits_total",
                "counter",
                "GETs answered, per tier.",
                per_tier(load(&self.hits[0]), load(&self.hits[1])),
            ),
            (
                "misses_total",
                "counter",
                "GETs of absent objects.",
                total(&self.misses),
            ),
            (
                "refused_total",
                "counter",
                "Requests refused: bad token or malformed frame.",
                total(&self.refused),
            ),
            (
                "connections_total",
                "counter",
                "Connections accepted.",
                total(&self.connections),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, rows) in families {
            let _ = writeln!(
                out,
                "# HELP byref_{name} {help}\n# TYPE byref_{name} {kind}"
            );
            for (labels, value) in rows {
                let _ = writeln!(out, "byref_{name}{labels} {value}");
            }
        }
        out
    }
}
