//! `GET`: the whole object.

use super::{Command, Failure, Reply, stored_object};
use crate::protocol::Get;
use crate::server::Server;

impl Command for Get {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        Ok(Reply::Body(stored_object(server, &self.key).await?))
    }
}
