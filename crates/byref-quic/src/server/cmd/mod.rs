//! One handler per operation (mini-redis's `cmd/`): a request header becomes a [`Command`]
//! holding just the fields its operation uses, and each command applies itself to the store.

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
use crate::protocol::{Op, Request, Status};

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

/// A decoded, authenticated request.
pub(super) enum Command {
    Put(put::Put),
    Get(get::Get),
    GetRange(get_range::GetRange),
    Head(head::Head),
    Release(release::Release),
    Status(status::Status),
    Locate(locate::Locate),
    List(list::List),
}

impl From<Request> for Command {
    fn from(r: Request) -> Self {
        let key = r.key;
        match r.op {
            Op::Put => Command::Put(put::Put {
                key,
                reference: r
                    .reference
                    .expect("Request::decode refuses a PUT without one"),
                length: r.length,
                ttl: r.ttl,
            }),
            Op::Get => Command::Get(get::Get { key }),
            Op::GetRange => Command::GetRange(get_range::GetRange {
                key,
                range: r.range,
            }),
            Op::Head => Command::Head(head::Head { key }),
            Op::Release => Command::Release(release::Release {
                key,
                reference: r.reference,
            }),
            Op::Status => Command::Status(status::Status),
            Op::Locate => Command::Locate(locate::Locate { key }),
            Op::List => Command::List(list::List { after: key }),
        }
    }
}

impl Command {
    pub(super) async fn apply(
        self,
        server: &Server,
        recv: &mut quinn::RecvStream,
    ) -> Result<Reply, Failure> {
        match self {
            Command::Put(cmd) => cmd.apply(server, recv).await,
            Command::Get(cmd) => cmd.apply(server).await,
            Command::GetRange(cmd) => cmd.apply(server).await,
            Command::Head(cmd) => cmd.apply(server).await,
            Command::Release(cmd) => cmd.apply(server).await,
            Command::Status(cmd) => Ok(cmd.apply(server)),
            Command::Locate(cmd) => cmd.apply(server).await,
            Command::List(cmd) => cmd.apply(server).await,
        }
    }
}

/// Fetches `key` for a `GET` or `GET_RANGE`, counting a miss.
async fn fetch(server: &Server, key: &byref_core::Key) -> Result<Object, Failure> {
    server.store.get(key).await.map_err(|e| {
        if matches!(e, Error::NotFound { .. }) {
            server.metrics.miss();
        }
        Failure::from(e)
    })
}
