//! Puts: room is set aside in the tier an object will live in before its bytes come, then
//! filled or given back; and the shutdown flush, which moves the memory tier to disk.

use std::time::Instant;

use byref_core::incoming::{Incoming, collect_into, verify_body};
use byref_core::{Error, Key, Payload, RefId, Result};
use bytes::Bytes;

use crate::memory::{Entry, Room};
use crate::{Tier, TieredStore};

/// Room set aside in one tier for a put; given back when dropped, unless kept because the
/// object now occupies it.
pub(crate) struct Reservation<'a> {
    /// Whose tier.
    store: &'a TieredStore,
    /// Which tier.
    pub(crate) tier: Tier,
    /// Bytes set aside (0 when the object is there already).
    len: u64,
    /// Whether the stored object now occupies the room.
    kept: bool,
}

impl<'a> Reservation<'a> {
    fn new(store: &'a TieredStore, tier: Tier, len: u64) -> Self {
        Reservation {
            store,
            tier,
            len,
            kept: false,
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept || self.len == 0 {
            return;
        }
        match self.tier {
            Tier::Memory => self.store.memory.unreserve(self.len),
            Tier::Disk => self.store.disk.unreserve(self.len),
        }
    }
}

impl TieredStore {
    /// Sets `len` bytes aside for a put of `key`: in memory if the object is there already or
    /// fits, else on disk; [`Error::StoreFull`] if neither.
    pub(crate) fn reserve(&self, key: &Key, len: u64) -> Result<Reservation<'_>> {
        // An object lives in one tier only, so that its references are counted in one place.
        let on_disk = self.disk.holds(key);
        match self.memory.reserve(key, len, !on_disk) {
            Room::Present => Ok(Reservation::new(self, Tier::Memory, 0)),
            Room::Reserved(len) => Ok(Reservation::new(self, Tier::Memory, len)),
            Room::None => self.reserve_disk(key, len),
        }
    }

    fn reserve_disk(&self, key: &Key, len: u64) -> Result<Reservation<'_>> {
        if self.disk.holds(key) {
            // Written again (a repair, if it was damaged), but no new bytes on disk.
            return Ok(Reservation::new(self, Tier::Disk, 0));
        }
        if !self.disk.reserve(len) {
            return Err(self.full(len));
        }
        Ok(Reservation::new(self, Tier::Disk, len))
    }

    /// Stores `payload` under `key` with one more reference: in memory if it fits, else on
    /// disk.
    pub(crate) async fn put_payload(
        &self,
        key: &Key,
        payload: &Payload,
        reference: RefId,
        expires: Option<Instant>,
    ) -> Result<()> {
        let reservation = self.reserve(key, payload.len())?;
        match reservation.tier {
            // Copied only to stay in memory: a put bound for disk (a peer's shared-memory
            // files) is written straight from the caller's buffers, one copy in all.
            Tier::Memory => {
                let data = payload.to_owned_bytes();
                self.put_memory(key, data, reference, expires, reservation)
                    .await
            }
            Tier::Disk => {
                self.put_disk(key, payload, reference, expires, reservation)
                    .await
            }
        }
    }

    /// Streams a body into the tier it will live in, after reserving its room there: a spill
    /// to disk holds one block in memory, not the object, whatever its size.
    pub(crate) async fn put_body(
        &self,
        key: &Key,
        len: u64,
        body: &mut dyn Incoming,
        reference: RefId,
        expires: Option<Instant>,
    ) -> Result<()> {
        let mut reservation = self.reserve(key, len)?;
        match reservation.tier {
            Tier::Memory => {
                let buffer = self.memory.take_spare(len);
                let data = collect_into(body, len, buffer)
                    .await
                    .map_err(|e| Error::backend(&self.name, e))?;
                verify_body(&self.name, key, &data).await?;
                self.put_memory(key, data, reference, expires, reservation)
                    .await
            }
            Tier::Disk => {
                let made = self
                    .disk
                    .put_incoming(key, len, body, reference, expires)
                    .await?;
                reservation.kept = made;
                Ok(())
            }
        }
    }

    /// Stores checked bytes into the memory room reserved for them, or only adds the
    /// reference if the object is there.
    async fn put_memory(
        &self,
        key: &Key,
        data: Bytes,
        reference: RefId,
        expires: Option<Instant>,
        mut reservation: Reservation<'_>,
    ) -> Result<()> {
        match self
            .memory
            .put(key, data, reference, expires, reservation.len)
        {
            Ok(took_room) => {
                reservation.kept = took_room;
                Ok(())
            }
            Err(data) => {
                // It was in memory when the put began, has expired since, and memory has no
                // room for it now.
                drop(reservation);
                let payload = Payload::received(data);
                let reservation = self.reserve_disk(key, payload.len())?;
                self.put_disk(key, &payload, reference, expires, reservation)
                    .await
            }
        }
    }

    /// Puts on disk into the room reserved, adding `reference` to the object there or
    /// storing it.
    async fn put_disk(
        &self,
        key: &Key,
        payload: &Payload,
        reference: RefId,
        expires: Option<Instant>,
        mut reservation: Reservation<'_>,
    ) -> Result<()> {
        reservation.kept = self.disk.put(key, payload, reference, expires).await?;
        Ok(())
    }

    /// Moves the memory tier to disk, references and all (on shutdown).
    ///
    /// An object that cannot be written (a full disk) stays in memory, and the others still
    /// go; the error then says how many stayed.
    pub async fn flush(&self) -> Result<()> {
        let objects = self.memory.take_all();
        let total = objects.len();
        let mut stayed = Vec::new();
        let mut first_error = None;
        for (key, entry) in objects {
            if let Err(e) = self.flush_one(&key, &entry).await {
                first_error.get_or_insert(e);
                stayed.push((key, entry));
            }
        }
        let kept = stayed.len();
        self.memory.put_back(stayed);
        match first_error {
            None => Ok(()),
            Some(e) => Err(Error::backend(
                &self.name,
                format!("{kept} of {total} objects could not be written to disk: {e}"),
            )),
        }
    }

    /// Writes one memory object to disk with all its references, past the disk limit:
    /// keeping objects is worth more than the limit, and only a truly full disk stops it.
    async fn flush_one(&self, key: &Key, entry: &Entry) -> Result<()> {
        let len = entry.data.len() as u64;
        for reference in entry.refs.iter() {
            self.disk.reserve_past_limit(len);
            let reservation = Reservation::new(self, Tier::Disk, len);
            let payload = Payload::received(entry.data.clone());
            self.put_disk(key, &payload, *reference, entry.expires, reservation)
                .await?;
        }
        Ok(())
    }
}
