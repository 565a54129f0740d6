//! Bodies on a QUIC stream, read the same way by both ends.

use std::borrow::BorrowMut;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::incoming::{Incoming, collect};
use bytes::Bytes;

/// A body of an announced length arriving on a stream (borrowed by a server's handler, or
/// owned by a client's streamed `GET`).
pub(crate) struct Body<R> {
    /// Where it arrives.
    recv: R,
    /// Bytes announced.
    len: u64,
    /// Bytes delivered so far.
    received: u64,
    /// How long it may go without a byte: a peer trickling bytes cannot hold a buffer (or a
    /// reservation) for ever.
    stall: Duration,
    /// Why it broke off, once it has: the other end's fault, not the receiver's.
    failure: Option<String>,
}

impl<R: BorrowMut<quinn::RecvStream> + Send> Body<R> {
    pub(crate) fn new(recv: R, len: u64, stall: Duration) -> Self {
        Body {
            recv,
            len,
            received: 0,
            stall,
            failure: None,
        }
    }

    /// Why the body broke off, if it did.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    async fn read(&mut self) -> Result<Option<Bytes>, String> {
        let (len, got) = (self.len, self.received);
        if got == len {
            return Ok(None);
        }
        let want = usize::try_from(len - got).unwrap_or(usize::MAX);
        let Ok(read) =
            tokio::time::timeout(self.stall, self.recv.borrow_mut().read_chunk(want, true)).await
        else {
            return Err(format!(
                "body stalled for {:?} after {got} of {len} bytes",
                self.stall
            ));
        };
        match read {
            Ok(Some(chunk)) => {
                self.received += chunk.bytes.len() as u64;
                Ok(Some(chunk.bytes))
            }
            Ok(None) => Err(format!("body ended after {got} of {len} bytes")),
            Err(e) => Err(format!("body broke off after {got} of {len} bytes: {e}")),
        }
    }
}

#[async_trait]
impl<R: BorrowMut<quinn::RecvStream> + Send> Incoming for Body<R> {
    async fn next_part(&mut self) -> Result<Option<Bytes>, String> {
        let read = self.read().await;
        if let Err(e) = &read {
            self.failure = Some(e.clone());
        }
        read
    }
}

/// Reads exactly `len` body bytes; a stream that ends early, or goes `stall` without a byte,
/// is an error naming how far it got, and what it delivered is dropped, never used.
pub(crate) async fn read_body(
    recv: &mut quinn::RecvStream,
    len: u64,
    stall: Duration,
) -> Result<Bytes, String> {
    collect(&mut Body::new(recv, len, stall), len).await
}
