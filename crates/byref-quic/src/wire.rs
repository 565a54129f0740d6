//! Bodies on a QUIC stream, read the same way by both ends.

use bytes::BytesMut;

/// Reads exactly `len` body bytes; a stream that ends early is an error naming how far it
/// got, and what it delivered is dropped, never used.
pub(crate) async fn read_body(recv: &mut quinn::RecvStream, len: u64) -> Result<BytesMut, String> {
    let len = usize::try_from(len).map_err(|_| format!("a body of {len} bytes is too large"))?;
    let mut data = BytesMut::with_capacity(len);
    while data.len() < len {
        match recv.read_chunk(len - data.len(), true).await {
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
