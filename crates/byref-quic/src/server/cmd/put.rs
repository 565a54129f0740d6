//! `PUT`: store a body under its key, adding a reference.

use std::time::Duration;

use byref_core::{Error, PutOptions};

use super::{Command, Failure, Reply};
use crate::protocol::{Put, STOPPED_STORED};
use crate::server::Server;
use crate::wire::Body;

/// How long a client may send nothing in the middle of a body before the put is dropped:
/// a client trickling bytes cannot hold a buffer for ever.
const STALL: Duration = Duration::from_secs(30);

impl Command for Put {
    /// The store checks room before the body (a full store says so without receiving
    /// gigabytes first), streams it into the tier it will live in, and checks its hash before
    /// it becomes visible. A client that stops early (killed mid-upload) leaves nothing.
    async fn apply(self, server: &Server, recv: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        let options = PutOptions {
            reference: self.reference,
            ttl: self.ttl,
            progress: None,
        };
        // Content stored already (a task's argument passed again, a result stored by two
        // workers): the reference is added and the body left unread.
        if server
            .store
            .add_reference(&self.key, self.length, &options)
            .await?
        {
            let _ = recv.stop(STOPPED_STORED.into());
            return Ok(Reply::Value(0));
        }
        let mut body = Body::new(recv, self.length, STALL);
        let stored = server
            .store
            .put_incoming(&self.key, self.length, &mut body, &options)
            .await;
        match stored {
            Ok(()) => Ok(Reply::Value(0)),
            // The client's fault (a body cut short, or not the key's bytes), not the store's.
            Err(e) if matches!(e, Error::Integrity { .. }) => Err(Failure::bad_request(e)),
            Err(e) => match body.failure() {
                Some(why) => Err(Failure::bad_request(why)),
                None => Err(e.into()),
            },
        }
    }
}
