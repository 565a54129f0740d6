//! Counters, rendered in the Prometheus text format (for `STATUS` requests and `/metrics`).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use byref_quic::protocol::Op;

use crate::tiers::{Tier, Tiers};

/// What the daemon has done since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
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
        let mut out = String::new();
        let (memory, disk) = tiers.usage();
        let mut gauge = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP byref_{name} {help}\n# TYPE byref_{name} gauge");
            for (labels, value) in rows {
                let _ = writeln!(out, "byref_{name}{labels} {value}");
            }
        };
        gauge(
            "objects",
            "Objects stored, per tier.",
            &[
                ("{tier=\"memory\"}", memory.objects),
                ("{tier=\"disk\"}", disk.objects),
            ],
        );
        gauge(
            "bytes",
            "Bytes stored, per tier.",
            &[
                ("{tier=\"memory\"}", memory.bytes),
                ("{tier=\"disk\"}", disk.bytes),
            ],
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ops = ["put", "get", "head", "release", "status"];
        let requests: Vec<(String, u64)> = ops
            .iter()
            .zip(&self.requests)
            .map(|(op, n)| (format!("{{op=\"{op}\"}}"), load(n)))
            .collect();
        let rows: Vec<(&str, u64)> = requests.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(
                out,
                "# HELP byref_{name} {help}\n# TYPE byref_{name} counter"
            );
            for (labels, value) in rows {
                let _ = writeln!(out, "byref_{name}{labels} {value}");
            }
        };
        counter("requests_total", "Requests served, per operation.", &rows);
        counter(
            "hits_total",
            "GETs answered, per tier.",
            &[
                ("{tier=\"memory\"}", load(&self.hits[0])),
                ("{tier=\"disk\"}", load(&self.hits[1])),
            ],
        );
        counter(
            "misses_total",
            "GETs of absent objects.",
            &[("", load(&self.misses))],
        );
        counter(
            "refused_total",
            "Requests refused: bad token or malformed frame.",
            &[("", load(&self.refused))],
        );
        counter(
            "connections_total",
            "Connections accepted.",
            &[("", load(&self.connections))],
        );
        out
    }
}
