//! The wire protocol between byref clients and a store daemon (or a peer), version 2.
//!
//! One request per QUIC bidirectional stream; no pickle, no length-prefixed free text from
//! the client. All integers are little-endian.
//!
//! Request (client → server), a fixed 108-byte [`Header`], then for `PUT` exactly `length`
//! body bytes, then the client finishes its side of the stream. The offsets are the constants
//! of [`request::layout`]:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `BQ` |
//! | 2 | 1 | protocol version, 2 |
//! | 3 | 1 | operation ([`Op`]): 1 `PUT`, 2 `GET`, 3 `HEAD`, 4 `RELEASE`, 5 `STATUS`, 6 `GET_RANGE`, 7 `LOCATE`, 8 `LIST` |
//! | 4 | 32 | proof of the token, bound to this connection (`byref_quic::token`) |
//! | 36 | 32 | key (BLAKE3 digest); zero for `STATUS`; for `LIST`, the last key of the page before (zero for the first page) |
//! | 68 | 16 | reference: added by `PUT`, released by `RELEASE` |
//! | 84 | 1 | flags: bit 0, "reference given" (`PUT` always; `RELEASE` without it drops any one) |
//! | 85 | 7 | zero |
//! | 92 | 8 | `PUT`: body length; `GET_RANGE`: first byte |
//! | 100 | 8 | `PUT`: time to live in milliseconds, 0 for none; `GET_RANGE`: end (exclusive) |
//!
//! A field an operation does not use is zero: each [`Request`] has one encoding.
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
//! or unused byte, or a length over the receiver's limit, is an error, never a panic or an
//! allocation.

use std::fmt;

mod listing;
mod location;
pub mod request;
mod response;

pub use listing::{ListingPage, MAX_REFERENCES_LISTED};
pub use location::Location;
pub use request::{
    Get, GetRange, Head, Header, List, Locate, Op, Put, REQUEST_LEN, Release, Request,
    StatusRequest,
};
pub use response::{RESPONSE_LEN, Response, Status};

/// Protocol version this build speaks.
pub const VERSION: u8 = 2;
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

/// A malformed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed header: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A little-endian `u64` at `at` in `data` (a range of 8 bytes from a layout constant).
fn u64_at(data: &[u8], at: std::ops::Range<usize>) -> u64 {
    u64::from_le_bytes(data[at].try_into().expect("a field of 8 bytes"))
}
