//! The wire protocol between byref clients and a store daemon (or a peer), version 2.
//!
//! One request per QUIC bidirectional stream; no pickle, no length-prefixed free text from
//! the client. All integers are little-endian.
//!
//! Request (client → server), a fixed 108-byte header, then for `PUT` exactly `length`
//! body bytes, then the client finishes its side of the stream:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `BQ` |
//! | 2 | 1 | protocol version, 2 |
//! | 3 | 1 | operation: 1 `PUT`, 2 `GET`, 3 `HEAD`, 4 `RELEASE`, 5 `STATUS`, 6 `GET_RANGE`, 7 `LOCATE`, 8 `LIST` |
//! | 4 | 32 | proof of the token, bound to this connection (`byref_quic::token`) |
//! | 36 | 32 | key (BLAKE3 digest); zero for `STATUS`; for `LIST`, the last key of the page before (zero for the first page) |
//! | 68 | 16 | reference: added by `PUT`, dropped by `RELEASE` |
//! | 84 | 1 | flags: bit 0, "reference given" (`RELEASE` without it drops any one) |
//! | 85 | 7 | zero |
//! | 92 | 8 | `PUT`: body length; `GET_RANGE`: first byte |
//! | 100 | 8 | `PUT`: time to live in milliseconds, 0 for none; `GET_RANGE`: end (exclusive) |
//!
//! Response (server → client), a fixed 16-byte header, an error message of `message_len`
//! UTF-8 bytes (at most [`MAX_MESSAGE`]), then for `GET`, `GET_RANGE`, `STATUS`, `LOCATE` and
//! `LIST` `value` body bytes (a `LOCATE` body is a [`Location`], at most [`MAX_LOCATION`]
//! bytes; a `LIST` body is a [`ListingPage`], at most [`MAX_LISTING_PAGE`] bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | [`Status`] |
//! | 1 | 1 | zero |
//! | 2 | 2 | `message_len` |
//! | 4 | 4 | zero |
//! | 8 | 8 | `value`: `GET`/`GET_RANGE`/`STATUS`/`LOCATE` body length, `HEAD` object length, `RELEASE` 1 if the object was deleted |
//!
//! Decoding checks every field: a wrong magic, version, operation, flag or nonzero reserved
//! byte, or a length over the receiver's limit, is an error, never a panic or an allocation.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use byref_core::{Error, Key, Listed, RefId};

/// Protocol version this build speaks.
pub const VERSION: u8 = 2;
/// Size of a request header.
pub const REQUEST_LEN: usize = 108;
/// Size of a response header.
pub const RESPONSE_LEN: usize = 16;
/// Longest error message a response may carry.
pub const MAX_MESSAGE: usize = 1024;
/// Longest `LOCATE` answer: a host's identity and a path.
pub const MAX_LOCATION: u64 = 8192;
/// Longest `LIST` answer: one page of a listing.
pub const MAX_LISTING_PAGE: u64 = 4 << 20;
/// Most bytes of pages a client reads for one listing (about five million objects): a server
/// whose listing never ends cannot grow a client (`byref ls`) without bound.
pub const MAX_LISTING: u64 = 256 << 20;
/// Length of a token, and of a proof of one, in bytes.
pub const TOKEN_LEN: usize = 32;
/// The code a server stops reading a `PUT`'s body with when it stored the put without it
/// (it held the object already and added the reference): the client's interrupted write is
/// then a success, not a failure.
pub const STOPPED_STORED: u32 = 0x5354;

const MAGIC: &[u8; 2] = b"BQ";
const FLAG_REFERENCE: u8 = 1;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Store the body under the key, adding a reference.
    Put = 1,
    /// Send the object.
    Get = 2,
    /// Send the object's length.
    Head = 3,
    /// Drop a reference; the object goes with its last.
    Release = 4,
    /// Send the daemon's status in Prometheus text format.
    Status = 5,
    /// Send a byte range of the object.
    GetRange = 6,
    /// Say where the object's file is on the server's host, if it is in one: a client on the
    /// same host maps it rather than have it sent.
    Locate = 7,
    /// Send a page of the listing of every object with its references, in key order.
    List = 8,
}

impl TryFrom<u8> for Op {
    type Error = DecodeError;

    fn try_from(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => Op::Put,
            2 => Op::Get,
            3 => Op::Head,
            4 => Op::Release,
            5 => Op::Status,
            6 => Op::GetRange,
            7 => Op::Locate,
            8 => Op::List,
            other => return Err(DecodeError(format!("unknown operation {other}"))),
        })
    }
}

/// A malformed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed header: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// The client's proof that it holds the token (never the token itself).
    pub proof: [u8; TOKEN_LEN],
    /// The object.
    pub key: Key,
    /// `PUT`: the reference to add; `RELEASE`: the one to drop, or any one if `None`.
    pub reference: Option<RefId>,
    /// `PUT`: the body length.
    pub length: u64,
    /// `PUT`: how long to keep the object at least (and at most, unless put again).
    pub ttl: Option<Duration>,
    /// `GET_RANGE`: the bytes to send.
    pub range: Range<u64>,
}

impl Request {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut out = [0u8; REQUEST_LEN];
        out[0..2].copy_from_slice(MAGIC);
        out[2] = VERSION;
        out[3] = self.op as u8;
        out[4..36].copy_from_slice(&self.proof);
        out[36..68].copy_from_slice(self.key.as_bytes());
        if let Some(reference) = &self.reference {
            out[68..84].copy_from_slice(reference.as_bytes());
            out[84] = FLAG_REFERENCE;
        }
        let (first, second) = if self.op == Op::GetRange {
            (self.range.start, self.range.end)
        } else {
            let ttl_ms = self
                .ttl
                .map_or(0, |t| t.as_millis().clamp(1, u64::MAX as u128) as u64);
            (self.length, ttl_ms)
        };
        out[92..100].copy_from_slice(&first.to_le_bytes());
        out[100..108].copy_from_slice(&second.to_le_bytes());
        out
    }

    /// Parses a header, refusing bodies over `max_length` bytes.
    pub fn decode(data: &[u8; REQUEST_LEN], max_length: u64) -> Result<Self, DecodeError> {
        if &data[0..2] != MAGIC {
            return Err(DecodeError("not a byref request (bad magic)".into()));
        }
        if data[2] != VERSION {
            return Err(DecodeError(format!(
                "protocol version {} (this server speaks {VERSION})",
                data[2]
            )));
        }
        let op = Op::try_from(data[3])?;
        let flags = data[84];
        if flags & !FLAG_REFERENCE != 0 || data[85..92].iter().any(|&b| b != 0) {
            return Err(DecodeError("reserved bits set".into()));
        }
        // One encoding per request: a reference field is zero unless its flag says it is given.
        if flags & FLAG_REFERENCE == 0 && data[68..84].iter().any(|&b| b != 0) {
            return Err(DecodeError(
                "a reference without the flag that gives it".into(),
            ));
        }
        let first = u64::from_le_bytes(data[92..100].try_into().expect("8 bytes"));
        let second = u64::from_le_bytes(data[100..108].try_into().expect("8 bytes"));
        let (length, ttl_ms, range) = if op == Op::GetRange {
            if first > second {
                return Err(DecodeError(format!("range {first}..{second} is backwards")));
            }
            (0, 0, first..second)
        } else {
            (first, second, 0..0)
        };
        if length > max_length {
            return Err(DecodeError(format!(
                "body of {length} bytes is over the limit of {max_length}"
            )));
        }
        if op != Op::Put && length != 0 {
            return Err(DecodeError("only PUT carries a body".into()));
        }
        let reference = (flags & FLAG_REFERENCE != 0)
            .then(|| RefId::from_bytes(data[68..84].try_into().expect("16 bytes")));
        if op == Op::Put && reference.is_none() {
            return Err(DecodeError("PUT without a reference".into()));
        }
        Ok(Request {
            op,
            proof: data[4..36].try_into().expect("32 bytes"),
            key: Key::from_bytes(data[36..68].try_into().expect("32 bytes")),
            reference,
            length,
            ttl: (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms)),
            range,
        })
    }
}

/// The answer to `LOCATE`: the server's host, and the file holding the object there (none
/// when the object is not kept in a file). Encoded as `boot id`, `\n`, `hostname`, `\n`,
/// path bytes; the boot id and hostname are free of `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The server's kernel boot id (`/proc/sys/kernel/random/boot_id`): equal ids and
    /// hostnames mean the same running machine.
    pub boot_id: String,
    /// The server's hostname.
    pub hostname: String,
    /// The object's file, when it is in one.
    pub path: Option<std::path::PathBuf>,
}

impl Location {
    /// The answer's bytes.
    pub fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = format!("{}\n{}\n", self.boot_id, self.hostname).into_bytes();
        if let Some(path) = &self.path {
            out.extend_from_slice(path.as_os_str().as_bytes());
        }
        out
    }

    /// Parses an answer, at most [`MAX_LOCATION`] bytes.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        use std::os::unix::ffi::OsStrExt;
        if data.len() as u64 > MAX_LOCATION {
            return Err(DecodeError(format!("location of {} bytes", data.len())));
        }
        let mut fields = data.splitn(3, |&b| b == b'\n');
        let mut text = |what: &str| {
            let field = fields
                .next()
                .ok_or_else(|| DecodeError(format!("location without a {what}")))?;
            String::from_utf8(field.to_vec())
                .map_err(|_| DecodeError(format!("location's {what} is not UTF-8")))
        };
        let (boot_id, hostname) = (text("boot id")?, text("hostname")?);
        let path = fields
            .next()
            .ok_or_else(|| DecodeError("location without a path".into()))?;
        Ok(Location {
            boot_id,
            hostname,
            path: (!path.is_empty())
                .then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path))),
        })
    }
}

/// One page of a `LIST` answer: objects in key order, after the key the request gave.
///
/// Encoded as a byte saying whether more pages follow (1) or not (0), then per object its key
/// (32 bytes), length (8), first 8 bytes (zeros if unknown: no frame starts so), number of
/// references `n` (4) and the `n` references (16 each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    /// The objects.
    pub objects: Vec<Listed>,
    /// Whether the listing goes on after the last of them.
    pub more: bool,
}

/// Bytes of one listed object with `n` references.
fn listed_len(n: usize) -> usize {
    ENTRY_HEAD + 16 * n
}

/// Bytes of a listed object before its references.
const ENTRY_HEAD: usize = 32 + 8 + 8 + 4;

impl ListingPage {
    /// The page after `after` (all keys, if `None`) of `objects` sorted by key: as many
    /// objects as fit in [`MAX_LISTING_PAGE`] bytes (at least one).
    pub fn after(objects: &[Listed], after: Option<&Key>) -> Self {
        let start = after.map_or(0, |a| objects.partition_point(|l| l.key <= *a));
        let mut size = 1;
        let mut page = Vec::new();
        for listed in &objects[start..] {
            let n = listed
                .references
                .len()
                .min((MAX_LISTING_PAGE as usize - 45) / 16);
            size += listed_len(n);
            if size as u64 > MAX_LISTING_PAGE && !page.is_empty() {
                break;
            }
            page.push(Listed {
                references: listed.references[..n].to_vec(),
                ..listed.clone()
            });
        }
        let more = start + page.len() < objects.len();
        ListingPage {
            objects: page,
            more,
        }
    }

    /// The page's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.more)];
        for listed in &self.objects {
            out.extend_from_slice(listed.key.as_bytes());
            out.extend_from_slice(&listed.len.to_le_bytes());
            out.extend_from_slice(&listed.head.unwrap_or_default());
            out.extend_from_slice(&(listed.references.len() as u32).to_le_bytes());
            for reference in &listed.references {
                out.extend_from_slice(reference.as_bytes());
            }
        }
        out
    }

    /// Parses a page, at most [`MAX_LISTING_PAGE`] bytes; every count is checked against
    /// the bytes left before anything is allocated for it.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        if data.len() as u64 > MAX_LISTING_PAGE {
            return Err(DecodeError(format!("listing page of {} bytes", data.len())));
        }
        let (&more, mut rest) = data
            .split_first()
            .ok_or_else(|| DecodeError("empty listing page".into()))?;
        if more > 1 {
            return Err(DecodeError(format!("listing page flag {more}")));
        }
        let mut objects = Vec::new();
        while !rest.is_empty() {
            let Some((head, tail)) = rest.split_first_chunk::<ENTRY_HEAD>() else {
                return Err(DecodeError("listing entry cut short".into()));
            };
            let n = u32::from_le_bytes(head[48..52].try_into().expect("4 bytes")) as usize;
            let first: [u8; 8] = head[40..48].try_into().expect("8 bytes");
            if tail.len() / 16 < n {
                return Err(DecodeError(format!(
                    "listing entry of {n} references in {} bytes",
                    tail.len()
                )));
            }
            let (references, tail) = tail.split_at(16 * n);
            objects.push(Listed {
                key: Key::from_bytes(head[..32].try_into().expect("32 bytes")),
                len: u64::from_le_bytes(head[32..40].try_into().expect("8 bytes")),
                head: (first != [0; 8]).then_some(first),
                references: references
                    .chunks_exact(16)
                    .map(|r| RefId::from_bytes(r.try_into().expect("16 bytes")))
                    .collect(),
            });
            rest = tail;
        }
        Ok(ListingPage {
            objects,
            more: more == 1,
        })
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Done; `value` as the operation defines it.
    Ok = 0,
    /// No such object.
    NotFound = 1,
    /// Wrong or missing token.
    Unauthenticated = 2,
    /// No room: the memory and disk tiers are full.
    StoreFull = 3,
    /// The request did not decode or made no sense.
    BadRequest = 4,
    /// The `RELEASE` named a reference the object does not hold.
    ReferenceGone = 5,
    /// The server failed (I/O error, ...).
    Internal = 6,
}

impl TryFrom<u8> for Status {
    type Error = DecodeError;

    fn try_from(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::Unauthenticated,
            3 => Status::StoreFull,
            4 => Status::BadRequest,
            5 => Status::ReferenceGone,
            6 => Status::Internal,
            other => return Err(DecodeError(format!("unknown status {other}"))),
        })
    }
}

impl Status {
    /// What a server answers when its store fails with `e`.
    pub fn of(e: &Error) -> Status {
        match e {
            Error::NotFound { .. } => Status::NotFound,
            Error::ReferenceGone { .. } => Status::ReferenceGone,
            Error::StorageFull { .. } => Status::StoreFull,
            Error::Unauthenticated { .. } => Status::Unauthenticated,
            _ => Status::Internal,
        }
    }

    /// What a client reports for a request about `key` on `store` that ended with this
    /// status and `message`: `None` for [`Status::Ok`].
    pub fn error(self, store: &str, key: Key, message: String) -> Option<Error> {
        let store = store.to_owned();
        Some(match self {
            Status::Ok => return None,
            Status::NotFound => Error::NotFound { store, key },
            Status::ReferenceGone => Error::ReferenceGone { store, key },
            Status::Unauthenticated => Error::Unauthenticated {
                store,
                source: message.into(),
            },
            Status::StoreFull => Error::StorageFull {
                store,
                source: message.into(),
            },
            Status::BadRequest | Status::Internal => Error::backend(&store, message),
        })
    }
}

/// A decoded response header (its message follows it on the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// How the request ended.
    pub status: Status,
    /// Length of the error message that follows.
    pub message_len: u16,
    /// Operation-specific value (see the module docs).
    pub value: u64,
}

impl Response {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; RESPONSE_LEN] {
        let mut out = [0u8; RESPONSE_LEN];
        out[0] = self.status as u8;
        out[2..4].copy_from_slice(&self.message_len.to_le_bytes());
        out[8..16].copy_from_slice(&self.value.to_le_bytes());
        out
    }

    /// Parses a header.
    pub fn decode(data: &[u8; RESPONSE_LEN]) -> Result<Self, DecodeError> {
        let status = Status::try_from(data[0])?;
        if data[1] != 0 || data[4..8].iter().any(|&b| b != 0) {
            return Err(DecodeError("reserved bits set".into()));
        }
        let message_len = u16::from_le_bytes([data[2], data[3]]);
        if usize::from(message_len) > MAX_MESSAGE {
            return Err(DecodeError(format!("message of {message_len} bytes")));
        }
        Ok(Response {
            status,
            message_len,
            value: u64::from_le_bytes(data[8..16].try_into().expect("8 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_page_in_key_order_and_reject_lying_counts() {
        let mut objects: Vec<Listed> = (0..5u8)
            .map(|i| Listed {
                key: Key::of(&[i]),
                len: u64::from(i) * 1000,
                references: (0..i).map(|_| RefId::random()).collect(),
                head: (i % 2 == 0).then_some(*b"BYRF\x01\x01\0\0"),
            })
            .collect();
        objects.sort_by_key(|l| l.key);
        let first = ListingPage::after(&objects, None);
        assert_eq!(first.objects, objects);
        assert!(!first.more);
        let rest = ListingPage::after(&objects, Some(&objects[2].key));
        assert_eq!(rest.objects, objects[3..]);
        let bytes = first.encode();
        assert_eq!(ListingPage::decode(&bytes), Ok(first));
        let mut lying = ListingPage::after(&objects[..1], None).encode();
        lying[49..53].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ListingPage::decode(&lying).is_err());
        for cut in 0..bytes.len() {
            let _ = ListingPage::decode(&bytes[..cut]);
        }
    }

    #[test]
    fn locations_round_trip_and_refuse_what_is_not_one() {
        let here = Location {
            boot_id: "b0".into(),
            hostname: "node1".into(),
            path: Some("/dev/shm/x\ny".into()),
        };
        assert_eq!(Location::decode(&here.encode()).unwrap(), here);
        let nowhere = Location { path: None, ..here };
        assert_eq!(Location::decode(&nowhere.encode()).unwrap(), nowhere);
        assert!(Location::decode(b"only").is_err());
        assert!(Location::decode(b"a\nb").is_err());
        assert!(Location::decode(b"\xff\nb\n/p").is_err());
        assert!(Location::decode(&vec![b'a'; MAX_LOCATION as usize + 1]).is_err());
    }

    fn request() -> Request {
        Request {
            op: Op::Put,
            proof: [7; TOKEN_LEN],
            key: Key::of(b"x"),
            reference: Some(RefId::from_bytes([9; 16])),
            length: 1234,
            ttl: Some(Duration::from_millis(1500)),
            range: 0..0,
        }
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let r = request();
        assert_eq!(Request::decode(&r.encode(), u64::MAX).unwrap(), r);
        let release = Request {
            op: Op::Release,
            reference: None,
            length: 0,
            ttl: None,
            ..request()
        };
        assert_eq!(Request::decode(&release.encode(), 0).unwrap(), release);
        let ranged = Request {
            op: Op::GetRange,
            reference: None,
            length: 0,
            ttl: None,
            range: 5..u64::MAX,
            ..request()
        };
        assert_eq!(Request::decode(&ranged.encode(), 0).unwrap(), ranged);
        let mut backwards = ranged.encode();
        backwards[92] = 9;
        backwards[100..108].copy_from_slice(&5u64.to_le_bytes());
        assert!(Request::decode(&backwards, 0).is_err());
        let resp = Response {
            status: Status::StoreFull,
            message_len: 12,
            value: u64::MAX,
        };
        assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
    }

    #[test]
    fn bodies_over_the_limit_and_reserved_bits_are_refused() {
        let bytes = request().encode();
        assert!(Request::decode(&bytes, 1233).is_err());
        for (at, value) in [(0, b'X'), (2, 1), (3, 9), (84, 2), (88, 1)] {
            let mut bad = bytes;
            bad[at] = value;
            assert!(Request::decode(&bad, u64::MAX).is_err(), "byte {at}");
        }
    }

    #[test]
    fn errors_cross_the_wire_as_the_same_kind() {
        let key = Key::of(b"k");
        let errors = [
            Error::NotFound {
                store: "s".into(),
                key,
            },
            Error::ReferenceGone {
                store: "s".into(),
                key,
            },
            Error::StorageFull {
                store: "s".into(),
                source: "full".into(),
            },
            Error::Unauthenticated {
                store: "s".into(),
                source: "no".into(),
            },
        ];
        for e in errors {
            let status = Status::of(&e);
            let back = status.error("c", key, e.to_string()).expect("an error");
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{e}"
            );
        }
        let io = Error::backend("s", "disk on fire");
        assert_eq!(Status::of(&io), Status::Internal);
        assert!(Status::Ok.error("c", key, String::new()).is_none());
    }

    /// A fuzzer in miniature: millions of random and mutated headers never panic, and what
    /// decodes re-encodes to the same bytes.
    #[test]
    fn random_headers_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = request().encode();
        for round in 0..200_000 {
            let mut data = [0u8; REQUEST_LEN];
            if round % 2 == 0 {
                data.iter_mut().for_each(|b| *b = next() as u8);
            } else {
                data = valid;
                for _ in 0..1 + next() % 4 {
                    data[(next() % REQUEST_LEN as u64) as usize] = next() as u8;
                }
            }
            if let Ok(r) = Request::decode(&data, u64::MAX) {
                assert_eq!(r.encode(), data, "one encoding per request");
            }
            let head: [u8; RESPONSE_LEN] = data[..RESPONSE_LEN].try_into().unwrap();
            if let Ok(r) = Response::decode(&head) {
                assert_eq!(r.encode(), head);
            }
        }
    }
}
