//! Shared inputs for byref's criterion benchmarks (see `benches/`).

use bytes::Bytes;

/// A framed raw object of `len` data bytes, filled with a non-constant pattern.
pub fn payload(len: usize) -> byref::Payload {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    byref::Payload::frame(byref::Encoding::Raw, Bytes::new(), vec![Bytes::from(data)])
}
