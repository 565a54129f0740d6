//! Response headers, and how errors cross the wire.

use byref_core::{Error, Key};

use crate::{DecodeError, MAX_MESSAGE};

/// Size of a response header.
pub const RESPONSE_LEN: usize = 16;

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
            Error::StoreFull { .. } => Status::StoreFull,
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
            Status::StoreFull => Error::StoreFull {
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
            Error::StoreFull {
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

    #[test]
    fn responses_round_trip() {
        let resp = Response {
            status: Status::StoreFull,
            message_len: 12,
            value: u64::MAX,
        };
        assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
        let mut long = resp.encode();
        long[2..4].copy_from_slice(&(MAX_MESSAGE as u16 + 1).to_le_bytes());
        assert!(Response::decode(&long).is_err());
    }
}
