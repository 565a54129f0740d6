//! Tests that cannot run here (no root, no namespaces) say so, and CI counts them: libtest
//! has no skipped state, and a test that returns early would pass unseen.

use std::io::Write;

/// The file CI collects skips in (`.ci/test` sets it and prints them at the end).
pub const SKIPS_VAR: &str = "BYREF_SKIPS";

/// Records that `test` did not run its checks, and why: on stderr (`--nocapture` shows it)
/// and as a line in `$BYREF_SKIPS`, if set.
pub fn skipped(test: &str, why: &str) {
    let line = format!("{test}: skipped: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIPS_VAR) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            eprintln!("cannot record the skip in ${SKIPS_VAR}: {e}");
        }
    }
}
