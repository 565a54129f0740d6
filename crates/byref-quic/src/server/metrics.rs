//! What a server has done since it started, rendered in the Prometheus text format.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use byref_core::metrics::write_family;

use crate::protocol::Op;

/// Counters, each bumped where its event happens.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Authenticated requests, per operation (at its [`Op::index`]).
    requests: [AtomicU64; Op::ALL.len()],
    /// `GET`s of absent objects: a client resolving something already released.
    misses: AtomicU64,
    /// Bad tokens, malformed headers, connections past the limit: the signs of abuse.
    refused: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// Connections being served, by quinn's id: their transport counters so far count too.
    live: Mutex<HashMap<usize, quinn::Connection>>,
    /// The transport counters of connections that have ended.
    ended: Mutex<Transport>,
    /// When the server started: `byref status` shows its uptime.
    started: Started,
}

/// When the server started (a `Default` for the counters' derive).
#[derive(Debug)]
struct Started(Instant);

impl Default for Started {
    fn default() -> Self {
        Started(Instant::now())
    }
}

/// What QUIC did on the wire: how to tell whether packets are as large as the path allows
/// (bytes per datagram), whether the kernel segments them (datagrams per send call), and
/// whether the path loses them.
#[derive(Debug, Default, Clone, Copy)]
struct Transport {
    datagrams_sent: u64,
    datagrams_received: u64,
    bytes_sent: u64,
    bytes_received: u64,
    /// `sendmsg` calls: fewer than datagrams when GSO batches them.
    send_calls: u64,
    lost_packets: u64,
    congestion_events: u64,
    /// Path-MTU black holes detected: each one drops the connection to 1,200-byte packets.
    black_holes: u64,
    /// The largest UDP payload a connection uses now (live connections only).
    mtu: u64,
}

impl Transport {
    fn add(&mut self, stats: &quinn::ConnectionStats) {
        self.datagrams_sent += stats.udp_tx.datagrams;
        self.datagrams_received += stats.udp_rx.datagrams;
        self.bytes_sent += stats.udp_tx.bytes;
        self.bytes_received += stats.udp_rx.bytes;
        self.send_calls += stats.udp_tx.ios;
        self.lost_packets += stats.path.lost_packets;
        self.congestion_events += stats.path.congestion_events;
        self.black_holes += stats.path.black_holes_detected;
    }
}

impl Metrics {
    pub(super) fn request(&self, op: Op) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection is being served.
    pub(super) fn connection(&self, connection: &quinn::Connection) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .expect("metrics lock")
            .insert(connection.stable_id(), connection.clone());
    }

    /// A connection has ended: its transport counters are final.
    pub(super) fn ended(&self, connection: &quinn::Connection) {
        self.live
            .lock()
            .expect("metrics lock")
            .remove(&connection.stable_id());
        self.ended
            .lock()
            .expect("metrics lock")
            .add(&connection.stats());
    }

    /// Transport counters of every connection, ended or live.
    fn transport(&self) -> Transport {
        let mut total = *self.ended.lock().expect("metrics lock");
        for connection in self.live.lock().expect("metrics lock").values() {
            let stats = connection.stats();
            total.add(&stats);
            total.mtu = total.mtu.max(stats.path.current_mtu.into());
        }
        total
    }

    /// The counters as Prometheus text.
    pub fn render(&self) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let requests = Op::ALL
            .iter()
            .map(|op| {
                let served = load(&self.requests[op.index()]);
                (format!("{{op=\"{}\"}}", op.name()), served)
            })
            .collect();
        let total = |n: &AtomicU64| vec![(String::new(), load(n))];
        let wire = self.transport();
        let both = |sent: u64, received: u64| {
            vec![
                ("{dir=\"sent\"}".to_owned(), sent),
                ("{dir=\"received\"}".to_owned(), received),
            ]
        };
        let one = |n: u64| vec![(String::new(), n)];
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
            (
                "quic_datagrams_total",
                "UDP datagrams.",
                both(wire.datagrams_sent, wire.datagrams_received),
            ),
            (
                "quic_bytes_total",
                "UDP payload bytes.",
                both(wire.bytes_sent, wire.bytes_received),
            ),
            (
                "quic_send_calls_total",
                "Send system calls; fewer than datagrams sent when GSO batches them.",
                one(wire.send_calls),
            ),
            (
                "quic_lost_packets_total",
                "Packets declared lost.",
                one(wire.lost_packets),
            ),
            (
                "quic_congestion_events_total",
                "Congestion-window reductions.",
                one(wire.congestion_events),
            ),
            (
                "quic_black_holes_total",
                "Path-MTU black holes detected (each drops a connection to 1200-byte packets).",
                one(wire.black_holes),
            ),
        ] {
            write_family(&mut out, name, "counter", help, &rows);
        }
        write_family(
            &mut out,
            "connections_open",
            "gauge",
            "Connections being served now.",
            &one(self.live.lock().expect("metrics lock").len() as u64),
        );
        write_family(
            &mut out,
            "uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            &one(self.started.0.elapsed().as_secs()),
        );
        write_family(
            &mut out,
            "quic_mtu_bytes",
            "gauge",
            "Largest UDP payload a live connection sends.",
            &one(wire.mtu),
        );
        out
    }
}
