//! `PUT`: store a body under its key, adding a reference.

use std::time::Duration;

use byref_core::{Key, Payload, PutOptions, RefId};

use super::{Failure, Reply};
use crate::protocol::Status;
use crate::server::Server;
use crate::wire::read_body;

/// Bodies up to this size are hashed on the async worker: a thread hop would cost more.
const HASH_INLINE_MAX: usize = 1 << 20;

/// How long a client may send nothing in the middle of a body before the put is dropped:
/// a client trickling bytes cannot hold a buffer for ever.
const STALL: Duration = Duration::from_secs(30);

pub(crate) struct Put {
    /// Where the body goes: the body must hash to it.
    pub(super) key: Key,
    /// The reference the put adds.
    pub(super) reference: RefId,
    /// Body bytes announced, already checked against the object limit.
    pub(super) length: u64,
    /// Drop the object after this long.
    pub(super) ttl: Option<Duration>,
}

impl Put {
    pub(super) async fn apply(
        self,
        server: &Server,
        recv: &mut quinn::RecvStream,
    ) -> Result<Reply, Failure> {
        // Before the body: a full store says so without receiving gigabytes first.
        server.store.check_room(self.length)?;
        // A client that stops early (killed mid-upload) leaves nothing: the partial body is
        // dropped here, never stored.
        let data = read_body(recv, self.length, STALL)
            .await
            .map_err(Failure::bad_request)?;
        let options = PutOptions {
            reference: self.reference,
            ttl: self.ttl,
            progress: None,
        };
        let data = data.freeze();
        // Before it becomes visible: a token holder must not store other bytes under a key
        // (poisoning it for its owner). Large bodies are hashed off the async workers.
        let hashed = if data.len() < HASH_INLINE_MAX {
            Key::of(&data)
        } else {
            let body = data.clone();
            tokio::task::spawn_blocking(move || Key::of(&body))
                .await
                .map_err(|e| Failure(Status::Internal, e.to_string()))?
        };
        if hashed != self.key {
            return Err(Failure::bad_request(format!(
                "the body hashes to {hashed}, not to the key it was sent for, {}",
                self.key
            )));
        }
        let payload = Payload::received(data);
        server.store.put(&self.key, &payload, &options).await?;
        Ok(Reply::Value(0))
    }
}
