//! Handles: the few bytes a pickled proxy carries instead of its data.
//!
//! ```text
//! offset  size    field
//! 0       1       version (2) in the high nibble; flags in the low one:
//!                 bit 0 = evict on first resolve (a reference id follows the length),
//!                 bit 1 = the store is named by its id (`store_id`), not by its URL
//! 1       32      key
//! 33      1-10    object length, unsigned LEB128
//!         16      reference id, only with the evict flag
//!         8       store id, with the id flag; else:
//!         1-2     length of the store URL, unsigned LEB128 (at most 4096)
//!         ...     the store URL, UTF-8
//! ```
//!
//! A file store's handle is 42 bytes plus the length's (58 with a reference), whatever its path.
//! The URL never contains a secret: stores put passwords and tokens only in the configuration
//! a worker reads from its own environment.

use crate::store_id::{self, StoreId};
use crate::{Error, Key, RefId, Result};

const VERSION: u8 = 2;
const FLAG_EVICT: u8 = 1;
const FLAG_STORE_ID: u8 = 2;
const MAX_URL: u64 = store_id::MAX_URL;

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
    /// Whether the handle names its store by id ([`store_id`]), which a worker looks up in
    /// its records, rather than by URL.
    pub by_id: bool,
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

    /// Nothing may follow the last field.
    fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Handle(format!(
                "{} unexpected trailing bytes",
                self.0.len()
            )))
        }
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
    /// A handle of the object `key` (`len` bytes) in the store at `url`, naming the store by
    /// id where it can ([`store_id::recorded`]).
    pub fn new(url: &str, key: Key, len: u64, evict: Option<RefId>) -> Self {
        Handle {
            url: url.to_owned(),
            key,
            len,
            evict,
            by_id: store_id::recorded(url),
        }
    }

    /// The compact binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.url.len());
        let mut flags = 0;
        if self.evict.is_some() {
            flags |= FLAG_EVICT;
        }
        if self.by_id {
            flags |= FLAG_STORE_ID;
        }
        out.push(VERSION << 4 | flags);
        out.extend_from_slice(self.key.as_bytes());
        put_varint(&mut out, self.len);
        if let Some(r) = &self.evict {
            out.extend_from_slice(r.as_bytes());
        }
        if self.by_id {
            out.extend_from_slice(&StoreId::of(&self.url).0);
        } else {
            put_varint(&mut out, self.url.len() as u64);
            out.extend_from_slice(self.url.as_bytes());
        }
        out
    }

    /// Decodes [`Handle::encode`]'s output; anything else is an [`Error::Handle`], and so
    /// is a store id this machine has no record of.
    pub fn decode(bytes: &[u8]) -> Result<Handle> {
        let mut r = Reader(bytes);
        if bytes.starts_with(b"BR\x01") {
            return Err(Error::Handle(
                "a handle of an older byref (version 1), which this byref cannot read; are the \
                 submitting side and the workers on the same byref version?"
                    .into(),
            ));
        }
        let first = r.take(1, "version")?[0];
        let (version, flags) = (first >> 4, first & 0x0f);
        if version != VERSION {
            return Err(Error::Handle(format!(
                "handle version {version} is not supported by this byref (which reads {VERSION}); \
                 are the submitting side and the workers on the same byref version?"
            )));
        }
        if flags & !(FLAG_EVICT | FLAG_STORE_ID) != 0 {
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
        let by_id = flags & FLAG_STORE_ID != 0;
        let url = if by_id {
            let id = StoreId(
                r.take(store_id::LEN, "store id")?
                    .try_into()
                    .expect("8 bytes"),
            );
            r.end()?;
            store_id::url_of(id)?
        } else {
            let url_len = r.varint("URL length")?;
            if url_len > MAX_URL {
                return Err(Error::Handle(format!(
                    "store URL of {url_len} bytes is too long"
                )));
            }
            let url = std::str::from_utf8(r.take(url_len as usize, "URL")?)
                .map_err(|_| Error::Handle("store URL is not UTF-8".into()))?
                .to_owned();
            r.end()?;
            url
        };
        Ok(Handle {
            url,
            key,
            len,
            evict,
            by_id,
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
            by_id: false,
        }
    }

    #[test]
    fn round_trips_and_stays_small() {
        for evict in [false, true] {
            let h = sample(evict);
            let bytes = h.encode();
            assert_eq!(Handle::decode(&bytes).unwrap(), h);
            assert!(bytes.len() <= 33 + 6 + 16 + 1 + h.url.len());
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
    fn a_store_named_by_id_costs_8_bytes_and_an_unknown_id_is_a_typed_error() {
        let h = Handle {
            url: format!("file:///{}", "p".repeat(200)),
            by_id: true,
            ..sample(true)
        };
        let bytes = h.encode();
        assert_eq!(bytes.len(), 1 + 32 + 6 + 16 + 8);
        let err = Handle::decode(&bytes).unwrap_err();
        assert!(
            matches!(&err, Error::Handle(m) if m.contains("no record")),
            "{err}"
        );
        let err = Handle::decode(b"BR\x01\x00").unwrap_err();
        assert!(
            matches!(&err, Error::Handle(m) if m.contains("older byref")),
            "{err}"
        );
    }

    #[test]
    fn varint_overflow_is_rejected() {
        let mut b = sample(false).encode()[..33].to_vec();
        b.extend_from_slice(&[0xff; 10]);
        b.push(0);
        assert!(Handle::decode(&b).is_err());
    }
}
