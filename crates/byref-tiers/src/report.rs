//! The tiers' part of a server's `STATUS`: objects, bytes and hits per tier.

use std::sync::atomic::Ordering;

use byref_core::metrics::write_family;

use crate::TieredStore;

impl TieredStore {
    /// Objects, bytes and `GET` hits per tier, as Prometheus text.
    pub fn report(&self) -> String {
        let (memory, disk) = self.usage();
        let per_tier = |memory: u64, disk: u64| {
            [
                ("{tier=\"memory\"}".to_owned(), memory),
                ("{tier=\"disk\"}".to_owned(), disk),
            ]
        };
        let hits = |tier: usize| self.hits[tier].load(Ordering::Relaxed);
        let mut out = String::new();
        for (name, kind, help, rows) in [
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
                "hits_total",
                "counter",
                "GETs answered, per tier.",
                per_tier(hits(0), hits(1)),
            ),
        ] {
            write_family(&mut out, name, kind, help, &rows);
        }
        let recovered = self.disk.recovered;
        write_family(
            &mut out,
            "recovered_at_start",
            "gauge",
            "What a killed run left half done, cleaned when the disk tier was opened.",
            &[
                ("{what=\"temp_files\"}".to_owned(), recovered.temp_files),
                (
                    "{what=\"earlier_layout\"}".to_owned(),
                    recovered.earlier_layout,
                ),
                ("{what=\"bytes\"}".to_owned(), recovered.bytes),
            ],
        );
        out
    }
}
