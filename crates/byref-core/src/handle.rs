//! Handles: the few bytes a pickled proxy carries instead of its data.
//!
//! ```text
//! offset  size    field
//! 0       2       magic "BR"
//! 2       1       handle version (1)
//! 3       1       flags: bit 0 = evict on first resolve (a reference id follows the length)
//! 4       32      key
//! 36      1-10    object length, unsigned LEB128
//!         16      reference id, only with the evict flag
//!         1-2     length of the store URL, unsigned LEB128 (at most 4096)
//!         ...     the store URL, UTF-8
//! ```
//!
//! The URL never contains a secret: stores put passwords and tokens only in the configuration
//! a worker reads from its own environment.

use crate::{Error, Key, RefId, Result};

const MAGIC: &[u8; 2] = b"BR";
const VERSION: u8 = 1;
const FLAG_EVICT: u8 = 1;
const MAX_URL: u64 = 4096;

/// Everything a worker needs to find one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    /// The store's URL, as `byref::open` takes it.
    pub url: String,
    /// The object's content address.
    pub key: Key,
    /// The object's stored length in bytes.
    pub len: u64,
    /// With `evict=True`: the reference this handle releases on its first resolve.
    pub evict: Option<RefId>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads handle fields front to back, turning every shortfall into a typed error.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Handle(format!("truncated in the {what}")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self, what: &str) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1, what)?[0];
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Handle(format!("the {what} overflows 64 bits")))
    }
}

impl Handle {
    /// The compact binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.url.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(if self.evict.is_some() { FLAG_EVICT } else { 0 });
        out.extend_from_slice(self.key.as_bytes());
        put_varint(&mut out, self.len);
        if let Some(r) = &self.evict {
            out.extend_from_slice(r.as_bytes());
        }
        put_varint(&mut out, self.url.len() as u64);
        out.extend_from_slice(self.url.as_bytes());
        out
    }

    /// Decodes [`Handle::encode`]'s output; anything else is an [`Error::Handle`].
    pub fn decode(bytes: &[u8]) -> Result<Handle> {
        let mut r = Reader(bytes);
        if r.take(2, "magic")? != MAGIC {
            return Err(Error::Handle("not a byref handle (bad magic)".into()));
        }
        let version = r.take(1, "version")?[0];
        if version != VERSION {
            return Err(Error::Handle(format!(
                "handle version {version} is not supported by this byref (which reads {VERSION}); \
                 are the submitting side and the workers on the same byref version?"
            )));
        }
        let flags = r.take(1, "flags")?[0];
        if flags & !FLAG_EVICT != 0 {
            return Err(Error::Handle(format!("unknown handle flags {flags:#04x}")));
        }
        let key = Key::from_bytes(r.take(Key::LEN, "key")?.try_into().expect("32 bytes"));
        let len = r.varint("length")?;
        let evict = if flags & FLAG_EVICT != 0 {
            Some(RefId::from_bytes(
                r.take(16, "reference")?.try_into().expect("16 bytes"),
            ))
        } else {
            None
        };
        let url_len = r.varint("URL length")?;
        if url_len > MAX_URL {
            return Err(Error::Handle(format!(
                "store URL of {url_len} bytes is too long"
            )));
        }
        let url = std::str::from_utf8(r.take(url_len as usize, "URL")?)
            .map_err(|_| Error::Handle("store URL is not UTF-8".into()))?
            .to_owned();
        if !r.0.is_empty() {
            return Err(Error::Handle(format!(
                "{} unexpected trailing bytes",
                r.0.len()
            )));
        }
        Ok(Handle {
            url,
            key,
            len,
            evict,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(evict: bool) -> Handle {
        Handle {
            url: "file:///tmp/byref".into(),
            key: Key::of(b"x"),
            len: 1 << 40,
            evict: evict.then(RefId::random),
        }
    }

    #[test]
    fn round_trips_and_stays_small() {
        for evict in [false, true] {
            let h = sample(evict);
            let bytes = h.encode();
            assert_eq!(Handle::decode(&bytes).unwrap(), h);
            assert!(bytes.len() <= 36 + 6 + 16 + 1 + h.url.len());
        }
    }

    #[test]
    fn every_truncation_and_byte_change_is_a_typed_error_or_a_valid_handle() {
        let bytes = sample(true).encode();
        for cut in 0..bytes.len() {
            assert!(matches!(
                Handle::decode(&bytes[..cut]),
                Err(Error::Handle(_))
            ));
        }
        for at in 0..bytes.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] = v;
                let _ = Handle::decode(&b);
            }
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Handle::decode(&long).is_err());
        assert!(Handle::decode(b"\x80\x04\x95junk").is_err());
    }

    #[test]
    fn varint_overflow_is_rejected() {
        let mut b = sample(false).encode()[..36].to_vec();
        b.extend_from_slice(&[0xff; 10]);
        b.push(0);
        assert!(Handle::decode(&b).is_err());
    }
}
