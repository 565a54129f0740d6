//! The object frame: how one proxied value is laid out as stored bytes.
//!
//! ```text
//! offset  size      field
//! 0       4         magic "BYRF"
//! 4       1         format version (1)
//! 5       1         encoding: 0 raw bytes, 1 pickle protocol 5, 2 cloudpickle
//! 6       2         reserved, zero
//! 8       4         n, the number of out-of-band buffers (little endian)
//! 12      4         reserved, zero
//! 16      8         length of the pickle stream (little endian)
//! 24      8 * n     length of each out-of-band buffer (little endian)
//! ...     padding   zeros up to the next multiple of 64
//!         stream    the pickle stream (empty for raw bytes)
//!         buffers   each buffer starts at the next multiple of 64 after the previous section
//! ```
//!
//! Every section starts 64-byte aligned, so a reader that maps or fetches the frame hands out
//! aligned zero-copy views (SIMD loads in numpy stay aligned). The frame is produced as a list
//! of parts (header, stream, padding, buffers) that backends write one after another: the
//! buffers are never concatenated into one big copy.

use std::ops::Range;

use bytes::Bytes;

use crate::{Error, Key, Result};

const MAGIC: &[u8; 4] = b"BYRF";
const VERSION: u8 = 1;
const FIXED_HEADER: usize = 24;
/// Every section starts at a multiple of this.
pub const ALIGN: usize = 64;
/// More buffers than any sane pickle produces; bounds what a corrupted header can allocate.
const MAX_BUFFERS: u64 = 1 << 20;
static ZEROS: [u8; ALIGN] = [0; ALIGN];

/// How the frame's stream and buffers turn back into a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    /// No stream; the single buffer is the value's bytes.
    Raw = 0,
    /// A pickle protocol 5 stream, loadable with `pickle.loads(stream, buffers=...)`.
    Pickle5 = 1,
    /// A cloudpickle stream; loads the same way, but needs cloudpickle's classes importable.
    CloudPickle = 2,
}

impl TryFrom<u8> for Encoding {
    type Error = String;

    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(Encoding::Raw),
            1 => Ok(Encoding::Pickle5),
            2 => Ok(Encoding::CloudPickle),
            other => Err(format!("unknown encoding {other}")),
        }
    }
}

impl Encoding {
    /// Every encoding, for bindings that name them to another language (whose copies of the
    /// codes would drift).
    pub const ALL: [Encoding; 3] = [Encoding::Raw, Encoding::Pickle5, Encoding::CloudPickle];

    /// Its one name, as byref's tools show it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "bytes",
            Encoding::Pickle5 => "pickle",
            Encoding::CloudPickle => "cloudpickle",
        }
    }

    /// The encoding of the frame whose first bytes are `head` (its magic, version and
    /// encoding), if they begin a frame.
    pub fn of_head(head: &[u8]) -> Option<Encoding> {
        if head.len() < 8 || &head[..4] != MAGIC || head[4] != VERSION {
            return None;
        }
        Encoding::try_from(head[5]).ok()
    }
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn padding(from: usize) -> Bytes {
    Bytes::from_static(&ZEROS[..align_up(from) - from])
}

/// An object ready to store: its parts, in order, and the key they hash to.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The bytes, to be written back to back.
    parts: Vec<Bytes>,
    /// Their total length.
    len: u64,
    /// The one part is a buffer this process received and owns alone (a network body), so a
    /// store that keeps bytes in memory may keep it without a copy.
    received: bool,
}

impl Payload {
    /// Wraps already-framed parts, which belong to the caller.
    pub fn from_parts(parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        Payload {
            parts,
            len,
            received: false,
        }
    }

    /// Wraps a whole stored object that this process received (a server's request body) and
    /// nothing else can change.
    pub fn received(body: Bytes) -> Self {
        Payload {
            len: body.len() as u64,
            parts: vec![body],
            received: true,
        }
    }

    /// The bytes as one buffer a store may keep: a received body as it is, anything else
    /// copied once (the caller may change its buffers as soon as the put returns).
    pub fn to_owned_bytes(&self) -> Bytes {
        if self.received {
            return self.parts[0].clone();
        }
        let mut data = bytes::BytesMut::with_capacity(self.len as usize);
        for part in &self.parts {
            data.extend_from_slice(part);
        }
        data.freeze()
    }

    /// Lays out a frame around `stream` and `buffers`, copying none of them.
    pub fn frame(encoding: Encoding, stream: Bytes, buffers: Vec<Bytes>) -> Self {
        let mut header = Vec::with_capacity(align_up(FIXED_HEADER + 8 * buffers.len()));
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&[VERSION, encoding as u8, 0, 0]);
        header.extend_from_slice(&(buffers.len() as u32).to_le_bytes());
        header.extend_from_slice(&[0; 4]);
        header.extend_from_slice(&(stream.len() as u64).to_le_bytes());
        for b in &buffers {
            header.extend_from_slice(&(b.len() as u64).to_le_bytes());
        }
        header.resize(align_up(header.len()), 0);

        let mut offset = header.len() + stream.len();
        let mut parts = Vec::with_capacity(2 + 2 * buffers.len());
        parts.push(Bytes::from(header));
        parts.push(stream);
        for buffer in buffers {
            parts.push(padding(offset));
            offset = align_up(offset) + buffer.len();
            parts.push(buffer);
        }
        parts.retain(|p| !p.is_empty());
        Self::from_parts(parts)
    }

    /// The parts, to be written back to back.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the payload has no bytes (a framed payload never is).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The content address of these bytes.
    pub fn key(&self) -> Key {
        Key::of_parts(&self.parts)
    }
}

/// How many bytes a frame's header takes, from its first [`ALIGN`] bytes (or fewer, for a
/// frame that short): what [`Layout::parse_prefix`] needs.
pub fn header_len(start: &[u8]) -> usize {
    let count = start.get(8..12).map_or(0, |b| {
        u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
    });
    align_up(FIXED_HEADER + 8 * count.min(MAX_BUFFERS as usize))
}

/// Where the stream and the buffers sit inside a stored frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// How to decode.
    pub encoding: Encoding,
    /// Byte range of the pickle stream.
    pub stream: Range<usize>,
    /// Byte range of each out-of-band buffer, in pickling order.
    pub buffers: Vec<Range<usize>>,
}

impl Layout {
    /// Parses and bounds-checks a frame's header against the frame's full length.
    ///
    /// `key` only labels the error: a frame that does not parse is treated like one that does
    /// not hash right, as a corrupted object.
    pub fn parse(frame: &[u8], store: &str, key: &Key) -> Result<Layout> {
        Self::parse_prefix(frame, frame.len() as u64, store, key)
    }

    /// Parses the header from the first bytes of a frame of `len` bytes (for reading the rest
    /// range by range). [`header_len`] of the first [`ALIGN`] bytes says how many
    /// `prefix` needs; a short one is an error.
    pub fn parse_prefix(prefix: &[u8], len: u64, store: &str, key: &Key) -> Result<Layout> {
        let frame = prefix;
        let corrupt = |reason: String| Error::Integrity {
            store: store.to_owned(),
            key: *key,
            reason: format!("not a byref object frame: {reason}"),
        };
        let u64_at = |at: usize| -> u64 {
            u64::from_le_bytes(frame[at..at + 8].try_into().expect("8-byte slice"))
        };
        if frame.len() < FIXED_HEADER || &frame[..4] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        if frame[4] != VERSION {
            return Err(corrupt(format!("unsupported frame version {}", frame[4])));
        }
        let encoding = Encoding::try_from(frame[5]).map_err(corrupt)?;
        let count = u64::from(u32::from_le_bytes(
            frame[8..12].try_into().expect("4 bytes"),
        ));
        if count > MAX_BUFFERS {
            return Err(corrupt(format!("{count} buffers")));
        }
        let lens_end = FIXED_HEADER + 8 * count as usize;
        if frame.len() < lens_end {
            return Err(corrupt("truncated header".into()));
        }
        let too_long = || corrupt("sections run past the end".into());
        let checked = |n: u64| usize::try_from(n).map_err(|_| too_long());

        let start = align_up(lens_end);
        let stream = start
            ..start
                .checked_add(checked(u64_at(16))?)
                .ok_or_else(too_long)?;
        let mut end = stream.end;
        let mut buffers = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let len = checked(u64_at(FIXED_HEADER + 8 * i))?;
            let begin = end.checked_next_multiple_of(ALIGN).ok_or_else(too_long)?;
            end = begin.checked_add(len).ok_or_else(too_long)?;
            buffers.push(begin..end);
        }
        if end as u64 != len {
            return Err(corrupt(format!("sections end at {end}, frame has {len}")));
        }
        Ok(Layout {
            encoding,
            stream,
            buffers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(p: &Payload) -> Vec<u8> {
        p.parts().concat()
    }

    #[test]
    fn frame_round_trips_with_aligned_sections() {
        let bufs = vec![
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from(vec![7u8; 100]),
        ];
        let payload = Payload::frame(Encoding::Pickle5, Bytes::from_static(b"stream"), bufs);
        let bytes = concat(&payload);
        assert_eq!(bytes.len() as u64, payload.len());
        let layout = Layout::parse(&bytes, "t", &payload.key()).unwrap();
        assert_eq!(layout.encoding, Encoding::Pickle5);
        assert_eq!(&bytes[layout.stream.clone()], b"stream");
        assert_eq!(&bytes[layout.buffers[0].clone()], b"abc");
        assert!(layout.buffers[1].is_empty());
        assert_eq!(&bytes[layout.buffers[2].clone()], &[7u8; 100][..]);
        for r in &layout.buffers {
            assert_eq!(r.start % ALIGN, 0);
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_of_the_header_is_an_error_not_a_panic() {
        let payload = Payload::frame(
            Encoding::Raw,
            Bytes::new(),
            vec![Bytes::from_static(&[1; 10]), Bytes::from_static(&[2; 70])],
        );
        let bytes = concat(&payload);
        let key = payload.key();
        for cut in 0..bytes.len() {
            assert!(
                Layout::parse(&bytes[..cut], "t", &key).is_err(),
                "cut at {cut}"
            );
        }
        for at in 0..64 {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[at] ^= 1 << bit;
                // Either rejected, or a different but in-bounds layout: never a panic.
                if let Ok(l) = Layout::parse(&b, "t", &key) {
                    assert!(l.buffers.iter().all(|r| r.end <= b.len()));
                }
            }
        }
    }
}
