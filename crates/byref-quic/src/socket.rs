//! The UDP socket under every byref endpoint: quinn's own, with its GSO batches kept within
//! what one `sendmsg` may carry.
//!
//! quinn hands the kernel up to 10 datagrams of the path's MTU in one call (UDP segmentation
//! offload). The kernel takes at most 64 KiB per call: with jumbo frames (8,972-byte
//! datagrams) a full batch is 89 KB, the call fails with `EMSGSIZE`, and quinn-udp drops the
//! whole batch without a word, as it does for an oversized MTU probe (quinn#2201). Every
//! such batch is lost; the losses cut the congestion window and read as an MTU black hole,
//! which sends the connection back to 1,200-byte packets. Measured on a veth pair at MTU
//! 9000, 1.2 GB through the daemon: 5,451 packets lost, 6 black holes and 0.30 GB/s
//! without this; 0 to 752 lost, no black hole and 0.71-0.91 GB/s with it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// The most UDP payload one `sendmsg` may carry (the IPv4 limit; IPv6's is 20 bytes more).
const MAX_CALL: usize = 65_535 - 20 - 8;

/// quinn's socket, sending each batch in calls of at most [`MAX_CALL`] bytes.
#[derive(Debug)]
pub(crate) struct Batched {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The datagram size of the last batch: how many of them fit in one call, which quinn
    /// asks before it builds the next batch.
    segment: AtomicUsize,
}

impl Batched {
    pub(crate) fn new(inner: Arc<dyn AsyncUdpSocket>) -> Arc<Self> {
        Arc::new(Batched {
            inner,
            segment: AtomicUsize::new(1),
        })
    }
}

impl AsyncUdpSocket for Batched {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let Some(segment) = transmit.segment_size else {
            return self.inner.try_send(transmit);
        };
        self.segment.store(segment, Ordering::Relaxed);
        let per_call = (MAX_CALL / segment).max(1) * segment;
        if transmit.contents.len() <= per_call {
            return self.inner.try_send(transmit);
        }
        // Only the first batch after the MTU grew is too large: quinn sizes the next ones by
        // `max_transmit_segments`, which now knows the new size.
        for (i, part) in transmit.contents.chunks(per_call).enumerate() {
            let part = Transmit {
                contents: part,
                segment_size: (part.len() > segment).then_some(segment),
                ..transmit.clone()
            };
            match self.inner.try_send(&part) {
                Ok(()) => {}
                // Some of the batch is out: report it sent. The rest is lost, and resent as
                // any lost packet is.
                Err(e) if i > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        let fit = MAX_CALL / self.segment.load(Ordering::Relaxed).max(1);
        self.inner.max_transmit_segments().min(fit.max(1))
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}
