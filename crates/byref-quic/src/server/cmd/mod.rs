//! One handler per operation (mini-redis's `cmd/`): each [`Request`] variant's struct, which
//! holds just the fields its operation uses, applies itself to the store.

mod get;
mod get_range;
mod head;
mod list;
mod locate;
mod put;
mod release;
mod status;

use byref_core::{Error, Object, StoreExt};

use super::Server;
use crate::protocol::{Request, Status};

/// What a successful request answers.
pub(super) enum Reply {
    /// A number in the response header and no body (`PUT`, `HEAD`, `RELEASE`).
    Value(u64),
    /// A body (`GET`, `GET_RANGE`, `STATUS`, `LOCATE`, `LIST`), its length in the header.
    Body(Object),
}

/// How a request failed: the status and the message the client is shown.
pub(super) struct Failure(pub(super) Status, pub(super) String);

impl Failure {
    pub(super) fn bad_request(message: impl ToString) -> Self {
        Failure(Status::BadRequest, message.to_string())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(Status::of(&e), e.to_string())
    }
}

/// An operation's handler, one per file: the request's own struct (from the protocol crate)
/// applies itself to the server's store.
pub(super) trait Command {
    /// Runs the request; `recv` is the rest of its stream (a `PUT`'s body).
    async fn apply(self, server: &Server, recv: &mut quinn::RecvStream) -> Result<Reply, Failure>;
}

/// Runs a decoded, authenticated request.
pub(super) async fn apply(
    request: Request,
    server: &Server,
    recv: &mut quinn::RecvStream,
) -> Result<Reply, Failure> {
    match request {
        Request::Put(r) => r.apply(server, recv).await,
        Request::Get(r) => r.apply(server, recv).await,
        Request::Head(r) => r.apply(server, recv).await,
        Request::Release(r) => r.apply(server, recv).await,
        Request::Status(r) => r.apply(server, recv).await,
        Request::GetRange(r) => r.apply(server, recv).await,
        Request::Locate(r) => r.apply(server, recv).await,
        Request::List(r) => r.apply(server, recv).await,
    }
}

/// The object a `GET` or `GET_RANGE` asks for, counting a miss.
async fn stored_object(server: &Server, key: &byref_core::Key) -> Result<Object, Failure> {
    server.store.get(key).await.map_err(|e| {
        if matches!(e, Error::NotFound { .. }) {
            server.metrics.miss();
        }
        Failure::from(e)
    })
}
