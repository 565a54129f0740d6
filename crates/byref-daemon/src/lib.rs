//! The byref store daemon: a QUIC server (`byref-quic`) over a tiered store (`byref-tiers`)
//! whose disk tier and certificate live in a data directory, so they survive restarts.
//!
//! [`run`] serves a bound endpoint until a shutdown future completes, then lets requests in
//! flight finish and moves the memory tier to disk. The `byrefd` binary and `byref serve`
//! (Python) are thin wrappers around [`serve_until_signalled`].
//!
//! Depends on `byref-core`, `byref-quic` and `byref-tiers`; nothing but the bindings and the
//! binary depends on it (the facade opens `quic://` and `peer://` without it).

mod daemon;
mod http;
mod options;
mod run;
mod signals;

pub use daemon::Daemon;
pub use http::serve_metrics;
pub use options::Options;
pub use run::run;
pub use signals::{serve_on_every_core, serve_until_signalled};
