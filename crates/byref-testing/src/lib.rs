//! Real servers on loopback for byref's Rust tests and benchmarks: `redis-server` (single
//! and a three-node cluster) and moto's S3 server. Each binds 127.0.0.1 on a free port and is
//! stopped when dropped. With feature `quic`, a QUIC server over any store ([`quic`]). And
//! [`skipped`], for tests that cannot run here to say so.
//!
//! A dev-dependency only: no library crate may depend on it.
#![allow(unsafe_code)] // set_moto_credentials: std::env::set_var is unsafe.

mod moto;
#[cfg(feature = "quic")]
pub mod quic;
mod redis;
mod skip;

pub use moto::{Moto, set_moto_credentials};
pub use redis::{Cluster, Redis};
pub use skip::{SKIPS_VAR, skipped};
