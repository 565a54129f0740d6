//! Request headers: one [`Request`] variant per operation, with the fields that operation
//! uses, behind the token's proof ([`Header`]).
//!
//! Adding an operation: a variant here (its struct, its [`Op`], its place in [`Op::ALL`] and
//! in the encoding's `match`es, each checked by the compiler or by this module's tests), a
//! command file in `byref-quic`'s `server/cmd/`, and a client method.

use std::ops::Range;
use std::time::Duration;

use byref_core::{Key, RefId};

use crate::{DecodeError, TOKEN_LEN, VERSION, u64_at};

/// Where each field of a request header lies (see the crate's table).
pub mod layout {
    use std::ops::Range;

    use crate::TOKEN_LEN;

    pub const MAGIC: Range<usize> = 0..2;
    pub const VERSION: usize = MAGIC.end;
    pub const OP: usize = VERSION + 1;
    pub const PROOF: Range<usize> = OP + 1..OP + 1 + TOKEN_LEN;
    pub const KEY: Range<usize> = PROOF.end..PROOF.end + 32;
    pub const REFERENCE: Range<usize> = KEY.end..KEY.end + 16;
    pub const FLAGS: usize = REFERENCE.end;
    pub const RESERVED: Range<usize> = FLAGS + 1..FLAGS + 8;
    /// `PUT`: body length; `GET_RANGE`: first byte.
    pub const FIRST: Range<usize> = RESERVED.end..RESERVED.end + 8;
    /// `PUT`: time to live in milliseconds; `GET_RANGE`: end (exclusive).
    pub const SECOND: Range<usize> = FIRST.end..FIRST.end + 8;
}

/// Size of a request header.
pub const REQUEST_LEN: usize = layout::SECOND.end;

const MAGIC: &[u8; 2] = b"BQ";
const FLAG_REFERENCE: u8 = 1;

/// An operation's code on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Put = 1,
    Get = 2,
    Head = 3,
    Release = 4,
    Status = 5,
    GetRange = 6,
    Locate = 7,
    List = 8,
}

impl Op {
    /// Every operation, in code order: `ALL[op.index()] == op`.
    pub const ALL: [Op; 8] = [
        Op::Put,
        Op::Get,
        Op::Head,
        Op::Release,
        Op::Status,
        Op::GetRange,
        Op::Locate,
        Op::List,
    ];

    /// The operation's name, as metrics and `byref status` show it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Head => "head",
            Op::Release => "release",
            Op::Status => "status",
            Op::GetRange => "get_range",
            Op::Locate => "locate",
            Op::List => "list",
        }
    }

    /// Its place in [`Op::ALL`]: an index into per-operation arrays.
    pub fn index(self) -> usize {
        self as usize - 1
    }
}

impl TryFrom<u8> for Op {
    type Error = DecodeError;

    fn try_from(code: u8) -> Result<Self, DecodeError> {
        Op::ALL
            .into_iter()
            .find(|op| *op as u8 == code)
            .ok_or_else(|| DecodeError(format!("unknown operation {code}")))
    }
}

/// `PUT`: store the body under the key, adding a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    /// Where the body goes: the body must hash to it.
    pub key: Key,
    /// The reference the put adds.
    pub reference: RefId,
    /// Body bytes that follow the header.
    pub length: u64,
    /// How long to keep the object at least (and at most, unless put again).
    pub ttl: Option<Duration>,
}

/// `GET`: send the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    pub key: Key,
}

/// `HEAD`: send the object's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub key: Key,
}

/// `RELEASE`: drop a reference; the object goes with its last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub key: Key,
    /// The reference to drop, or any one if `None`.
    pub reference: Option<RefId>,
}

/// `STATUS`: send the server's counters in Prometheus text format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest;

/// `GET_RANGE`: send a byte range of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRange {
    pub key: Key,
    /// The bytes to send (never backwards).
    pub range: Range<u64>,
}

/// `LOCATE`: say where the object's file is on the server's host, if it is in one: a client
/// on the same host maps it rather than have it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locate {
    pub key: Key,
}

/// `LIST`: send a page of the listing of every object with its references, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The last key of the page before (zero for the first page).
    pub after: Key,
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Put(Put),
    Get(Get),
    Head(Head),
    Release(Release),
    Status(StatusRequest),
    GetRange(GetRange),
    Locate(Locate),
    List(List),
}

/// A request's fields as the header lays them out.
struct Fields {
    op: Op,
    key: Key,
    reference: Option<RefId>,
    first: u64,
    second: u64,
}

const NO_KEY: Key = Key::from_bytes([0; 32]);

impl Request {
    /// Its operation.
    pub fn op(&self) -> Op {
        self.fields().op
    }

    /// The key the header carries: the object's (for `LIST`, the key the page starts after;
    /// zero for `STATUS`). Errors about the request name it.
    pub fn key(&self) -> Key {
        self.fields().key
    }

    fn fields(&self) -> Fields {
        let plain = |op, key: &Key| Fields {
            op,
            key: *key,
            reference: None,
            first: 0,
            second: 0,
        };
        match self {
            Request::Put(put) => Fields {
                op: Op::Put,
                key: put.key,
                reference: Some(put.reference),
                first: put.length,
                second: put
                    .ttl
                    .map_or(0, |t| t.as_millis().clamp(1, u64::MAX as u128) as u64),
            },
            Request::Get(get) => plain(Op::Get, &get.key),
            Request::Head(head) => plain(Op::Head, &head.key),
            Request::Release(release) => Fields {
                reference: release.reference,
                ..plain(Op::Release, &release.key)
            },
            Request::Status(StatusRequest) => plain(Op::Status, &NO_KEY),
            Request::GetRange(get) => Fields {
                first: get.range.start,
                second: get.range.end,
                ..plain(Op::GetRange, &get.key)
            },
            Request::Locate(locate) => plain(Op::Locate, &locate.key),
            Request::List(list) => plain(Op::List, &list.after),
        }
    }

    /// Builds the request `fields` describe, refusing bodies over `max_length` bytes and any
    /// field its operation does not use that is not zero.
    fn from_fields(f: Fields, max_length: u64) -> Result<Self, DecodeError> {
        let unused = |what: &str, set: bool| {
            if set {
                Err(DecodeError(format!("{} with a {what}", f.op.name())))
            } else {
                Ok(())
            }
        };
        let no_numbers = || unused("length, TTL or range", f.first != 0 || f.second != 0);
        let no_reference = || unused("reference", f.reference.is_some());
        // The key is all these carry.
        let plain = || no_numbers().and_then(|()| no_reference());
        let key = f.key;
        Ok(match f.op {
            Op::Put => {
                if f.first > max_length {
                    return Err(DecodeError(format!(
                        "body of {} bytes is over the limit of {max_length}",
                        f.first
                    )));
                }
                let reference = f
                    .reference
                    .ok_or_else(|| DecodeError("put without a reference".into()))?;
                Request::Put(Put {
                    key,
                    reference,
                    length: f.first,
                    ttl: (f.second > 0).then(|| Duration::from_millis(f.second)),
                })
            }
            Op::GetRange => {
                no_reference()?;
                if f.first > f.second {
                    return Err(DecodeError(format!(
                        "range {}..{} is backwards",
                        f.first, f.second
                    )));
                }
                Request::GetRange(GetRange {
                    key,
                    range: f.first..f.second,
                })
            }
            Op::Release => {
                no_numbers()?;
                Request::Release(Release {
                    key,
                    reference: f.reference,
                })
            }
            Op::Get => {
                plain()?;
                Request::Get(Get { key })
            }
            Op::Head => {
                plain()?;
                Request::Head(Head { key })
            }
            Op::Locate => {
                plain()?;
                Request::Locate(Locate { key })
            }
            Op::List => {
                plain()?;
                Request::List(List { after: key })
            }
            Op::Status => {
                plain()?;
                unused("key", key != NO_KEY)?;
                Request::Status(StatusRequest)
            }
        })
    }
}

/// A request header: the request, and the client's proof that it holds the token (never the
/// token itself), bound to the connection it is sent on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub proof: [u8; TOKEN_LEN],
    pub request: Request,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        use layout as at;
        let f = self.request.fields();
        let mut out = [0u8; REQUEST_LEN];
        out[at::MAGIC].copy_from_slice(MAGIC);
        out[at::VERSION] = VERSION;
        out[at::OP] = f.op as u8;
        out[at::PROOF].copy_from_slice(&self.proof);
        out[at::KEY].copy_from_slice(f.key.as_bytes());
        if let Some(reference) = &f.reference {
            out[at::REFERENCE].copy_from_slice(reference.as_bytes());
            out[at::FLAGS] = FLAG_REFERENCE;
        }
        out[at::FIRST].copy_from_slice(&f.first.to_le_bytes());
        out[at::SECOND].copy_from_slice(&f.second.to_le_bytes());
        out
    }

    /// Parses a header, refusing bodies over `max_length` bytes.
    pub fn decode(data: &[u8; REQUEST_LEN], max_length: u64) -> Result<Self, DecodeError> {
        use layout as at;
        if &data[at::MAGIC] != MAGIC {
            return Err(DecodeError("not a byref request (bad magic)".into()));
        }
        if data[at::VERSION] != VERSION {
            return Err(DecodeError(format!(
                "protocol version {} (this server speaks {VERSION})",
                data[at::VERSION]
            )));
        }
        let op = Op::try_from(data[at::OP])?;
        let flags = data[at::FLAGS];
        if flags & !FLAG_REFERENCE != 0 || data[at::RESERVED].iter().any(|&b| b != 0) {
            return Err(DecodeError("reserved bits set".into()));
        }
        // One encoding per request: a reference field is zero unless its flag says it is given.
        if flags & FLAG_REFERENCE == 0 && data[at::REFERENCE].iter().any(|&b| b != 0) {
            return Err(DecodeError(
                "a reference without the flag that gives it".into(),
            ));
        }
        let fields = Fields {
            op,
            key: Key::from_bytes(data[at::KEY].try_into().expect("32 bytes")),
            reference: (flags & FLAG_REFERENCE != 0)
                .then(|| RefId::from_bytes(data[at::REFERENCE].try_into().expect("16 bytes"))),
            first: u64_at(data, at::FIRST),
            second: u64_at(data, at::SECOND),
        };
        Ok(Header {
            proof: data[at::PROOF].try_into().expect("32 bytes"),
            request: Request::from_fields(fields, max_length)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put() -> Request {
        Request::Put(Put {
            key: Key::of(b"x"),
            reference: RefId::from_bytes([9; 16]),
            length: 1234,
            ttl: Some(Duration::from_millis(1500)),
        })
    }

    fn header(request: Request) -> Header {
        Header {
            proof: [7; TOKEN_LEN],
            request,
        }
    }

    /// One of each operation.
    fn one_of_each() -> Vec<Request> {
        let key = Key::of(b"k");
        let requests = vec![
            put(),
            Request::Get(Get { key }),
            Request::Head(Head { key }),
            Request::Release(Release {
                key,
                reference: None,
            }),
            Request::Status(StatusRequest),
            Request::GetRange(GetRange {
                key,
                range: 5..u64::MAX,
            }),
            Request::Locate(Locate { key }),
            Request::List(List { after: key }),
        ];
        let ops: Vec<Op> = requests.iter().map(Request::op).collect();
        assert_eq!(ops, Op::ALL, "one request per operation, in code order");
        requests
    }

    #[test]
    fn every_operation_round_trips() {
        for request in one_of_each() {
            let header = header(request);
            assert_eq!(Header::decode(&header.encode(), u64::MAX), Ok(header));
        }
        let release = header(Request::Release(Release {
            key: Key::of(b"k"),
            reference: Some(RefId::from_bytes([3; 16])),
        }));
        assert_eq!(Header::decode(&release.encode(), 0), Ok(release));
    }

    #[test]
    fn ops_are_listed_once_by_code_with_distinct_names() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Op::try_from(op as u8), Ok(op));
        }
        let decodable = (0..=u8::MAX).filter(|c| Op::try_from(*c).is_ok()).count();
        assert_eq!(decodable, Op::ALL.len());
        let mut names: Vec<_> = Op::ALL.iter().map(|op| op.name()).collect();
        names.dedup();
        assert_eq!(names.len(), Op::ALL.len());
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        assert_eq!(layout::KEY.start, 36);
        assert_eq!(layout::REFERENCE.start, 68);
        assert_eq!(layout::FLAGS, 84);
        assert_eq!(layout::FIRST.start, 92);
        assert_eq!(REQUEST_LEN, 108);
    }

    #[test]
    fn bodies_over_the_limit_reserved_and_unused_fields_are_refused() {
        let bytes = header(put()).encode();
        assert!(Header::decode(&bytes, 1233).is_err());
        for (at, value) in [(0, b'X'), (2, 1), (3, 9), (84, 2), (88, 1)] {
            let mut bad = bytes;
            bad[at] = value;
            assert!(Header::decode(&bad, u64::MAX).is_err(), "byte {at}");
        }
        let mut backwards = header(one_of_each()[5].clone()).encode();
        backwards[layout::FIRST].copy_from_slice(&9u64.to_le_bytes());
        backwards[layout::SECOND].copy_from_slice(&5u64.to_le_bytes());
        assert!(Header::decode(&backwards, 0).is_err());
        // A field the operation does not use, set: refused, so each request has one encoding.
        let get = header(one_of_each()[1].clone()).encode();
        let mut with_length = get;
        with_length[layout::FIRST.start] = 1;
        let mut with_reference = get;
        with_reference[layout::FLAGS] = FLAG_REFERENCE;
        let mut status_with_key = header(Request::Status(StatusRequest)).encode();
        status_with_key[layout::KEY.start] = 1;
        let mut put_without_reference = bytes;
        put_without_reference[layout::FLAGS] = 0;
        put_without_reference[layout::REFERENCE].fill(0);
        for bad in [
            with_length,
            with_reference,
            status_with_key,
            put_without_reference,
        ] {
            assert!(Header::decode(&bad, u64::MAX).is_err());
        }
    }

    /// A fuzzer in miniature: random and mutated headers never panic, and what decodes
    /// re-encodes to the same bytes.
    #[test]
    fn random_headers_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid: Vec<[u8; REQUEST_LEN]> = one_of_each()
            .into_iter()
            .map(|r| header(r).encode())
            .collect();
        for round in 0..200_000 {
            let mut data = [0u8; REQUEST_LEN];
            if round % 4 == 0 {
                data.iter_mut().for_each(|b| *b = next() as u8);
            } else {
                data = valid[round % valid.len()];
                for _ in 0..1 + next() % 4 {
                    data[(next() % REQUEST_LEN as u64) as usize] = next() as u8;
                }
            }
            if let Ok(r) = Header::decode(&data, u64::MAX) {
                assert_eq!(r.encode(), data, "one encoding per request");
            }
        }
    }
}
