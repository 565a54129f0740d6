//! Metrics in the Prometheus text format, written by whatever serves a store.

use std::fmt::Write;

/// Appends one metric family `byref_<name>` to `out`: its help and type lines, then a line
/// per `(labels, value)` row (labels as `{k="v"}`, or empty).
pub fn write_family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, u64)]) {
    let _ = writeln!(
        out,
        "# HELP byref_{name} {help}\n# TYPE byref_{name} {kind}"
    );
    for (labels, value) in rows {
        let _ = writeln!(out, "byref_{name}{labels} {value}");
    }
}
