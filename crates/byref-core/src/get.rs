//! The one read call of [`crate::Store`]: what the caller already knows of an object and how
//! it wants the bytes ([`GetOptions`]), and what comes back ([`Fetched`]). As object_store's
//! `get_opts`: one method every backend implements and every wrapper forwards, so no read
//! path of a wrapped store can fall back to a default that skips a check.

use std::ops::Range;

use crate::incoming::{Incoming, Whole, collect};
use crate::{Error, Key, Object, RefId, Result};

/// How the bytes of a [`GetOptions`] read are handed over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Whole: in memory, or mapped from a file of the store's own ([`Fetched::Whole`]).
    #[default]
    Whole,
    /// As a body arriving part by part ([`Fetched::Arriving`]), so that a receiver writing it
    /// elsewhere (the node cache's file) never holds it whole. A store that does not stream
    /// hands it over whole ([`Fetched::Whole`]).
    Parts,
    /// Only mapped from a file on this machine where the store's *server* keeps it (see
    /// [`crate::Store::locate`]): no transfer at all. [`Fetched::NotLocal`] when that is not
    /// possible (another host, an object in memory, a server of another user, a store
    /// without a server): then read it otherwise.
    LocalMapping,
}

/// What a read knows of the object beforehand, and what it wants of it.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// The object's whole length, as the caller's handle says. Another length is
    /// [`Error::Integrity`]; a store that learns the length before the bytes (a network
    /// store) refuses it before reading them, so a lying server cannot make a worker allocate
    /// or wait for more than the handle promised. With a range, a store that is told only the
    /// range's length (a QUIC client) checks that the range lies within it instead.
    pub expected_len: Option<u64>,
    /// A reference the caller holds (an `evict=True` handle's): a backend that keeps a name
    /// per reference (a file store) opens it directly instead of looking the key up.
    pub held: Option<RefId>,
    /// Only these bytes of the object (within it: a range past its end is an error), always
    /// delivered whole.
    pub range: Option<Range<u64>>,
    /// How to hand the bytes over.
    pub delivery: Delivery,
}

impl GetOptions {
    /// A read of an object the caller knows to be `len` bytes long.
    pub fn expecting(len: u64) -> Self {
        GetOptions {
            expected_len: Some(len),
            ..Default::default()
        }
    }

    /// A read of bytes `range` only.
    pub fn range(range: Range<u64>) -> Self {
        GetOptions {
            range: Some(range),
            ..Default::default()
        }
    }

    /// These options, delivered as `delivery` asks.
    pub fn delivered(self, delivery: Delivery) -> Self {
        GetOptions { delivery, ..self }
    }

    /// Checks an object's whole length, `len`, as the store learned it, against what these
    /// options expect, and the range asked against it: what every backend calls before it
    /// reads (or, if it cannot learn the length first, before it hands over) a byte.
    pub fn check(&self, store: &str, key: &Key, len: u64) -> Result<()> {
        if let Some(expected) = self.expected_len {
            check_length(store, key, len, expected)?;
        }
        if let Some(range) = &self.range {
            check_range(store, key, range, len)?;
        }
        Ok(())
    }

    /// Hands over `object`, the whole object read by a backend that does not stream nor map
    /// a server's files: checked as [`GetOptions::check`] says, then cut to the range asked.
    pub fn whole(&self, store: &str, key: &Key, object: Object) -> Result<Fetched<'static>> {
        self.check(store, key, object.len() as u64)?;
        Ok(Fetched::Whole(match &self.range {
            Some(range) => {
                Object::Shared(object.into_range(range.start as usize..range.end as usize))
            }
            None => object,
        }))
    }
}

/// The bytes a [`GetOptions`] read hands over.
#[non_exhaustive]
pub enum Fetched<'a> {
    /// The object (or the range asked), whole.
    Whole(Object),
    /// The object as a body arriving part by part: `len` bytes, a length already checked
    /// against the one expected; the parts are not verified.
    Arriving {
        /// The object's length.
        len: u64,
        /// Its bytes, part by part.
        body: Box<dyn Incoming + 'a>,
    },
    /// [`Delivery::LocalMapping`] was asked and is not possible.
    NotLocal,
}

impl std::fmt::Debug for Fetched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetched::Whole(object) => f.debug_tuple("Whole").field(object).finish(),
            Fetched::Arriving { len, .. } => f.debug_struct("Arriving").field("len", len).finish(),
            Fetched::NotLocal => f.write_str("NotLocal"),
        }
    }
}

impl<'a> Fetched<'a> {
    /// All the bytes, in one object (a body collected: never more than its announced length).
    /// [`Error::NotSupported`] for [`Fetched::NotLocal`], which only a read that asked for
    /// [`Delivery::LocalMapping`] gets.
    pub async fn into_object(self, store: &str) -> Result<Object> {
        match self {
            Fetched::Whole(object) => Ok(object),
            Fetched::Arriving { len, mut body } => collect(body.as_mut(), len)
                .await
                .map(Object::Shared)
                .map_err(|e| Error::backend(store, e)),
            Fetched::NotLocal => Err(Error::NotSupported {
                store: store.to_owned(),
                operation: "mapping from this host",
            }),
        }
    }

    /// The bytes as a body arriving part by part (a whole object is one part), with its
    /// length; `None` for [`Fetched::NotLocal`].
    pub fn into_body(self) -> Option<(u64, Box<dyn Incoming + 'a>)> {
        match self {
            Fetched::Whole(object) => {
                let len = object.len() as u64;
                Some((len, Box::new(Whole::new(object.into_bytes()))))
            }
            Fetched::Arriving { len, body } => Some((len, body)),
            Fetched::NotLocal => None,
        }
    }
}

/// Checks `range` against an object of `len` bytes, as every ranged read must.
pub fn check_range(store: &str, key: &Key, range: &Range<u64>, len: u64) -> Result<()> {
    if range.start > range.end || range.end > len {
        return Err(Error::backend(
            store,
            format!("range {range:?} is outside object {key} of {len} bytes"),
        ));
    }
    Ok(())
}

/// Checks that the object `key` is `expected` bytes long, as its handle says.
pub fn check_length(store: &str, key: &Key, len: u64, expected: u64) -> Result<()> {
    if len != expected {
        return Err(Error::Integrity {
            store: store.to_owned(),
            key: *key,
            reason: format!("the store holds {len} bytes where the handle says {expected}"),
        });
    }
    Ok(())
}
