//! Bodies on a QUIC stream, read the same way by both ends.

use std::time::Duration;

use bytes::BytesMut;

/// Most bytes reserved ahead of the data actually received. A length announced by the other
/// end is a claim, not a fact: reserving it whole would let one header of "64 GiB" abort the
/// process. Past this, the buffer grows only as bytes arrive.
const RESERVE_AHEAD: u64 = 64 << 20;

/// Reads exactly `len` body bytes; a stream that ends early, or goes `stall` without a byte,
/// is an error naming how far it got, and what it delivered is dropped, never used.
pub(crate) async fn read_body(
    recv: &mut quinn::RecvStream,
    len: u64,
    stall: Duration,
) -> Result<BytesMut, String> {
    let len = usize::try_from(len).map_err(|_| format!("a body of {len} bytes is too large"))?;
    let mut data = BytesMut::with_capacity(len.min(RESERVE_AHEAD as usize));
    while data.len() < len {
        let Ok(read) = tokio::time::timeout(stall, recv.read_chunk(len - data.len(), true)).await
        else {
            return Err(format!(
                "body stalled for {stall:?} after {} of {len} bytes",
                data.len()
            ));
        };
        match read {
            Ok(Some(chunk)) => data.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(format!("body ended after {} of {len} bytes", data.len())),
            Err(e) => {
                return Err(format!(
                    "body broke off after {} of {len} bytes: {e}",
                    data.len()
                ));
            }
        }
    }
    Ok(data)
}
