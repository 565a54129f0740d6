//! `RELEASE`: release a reference (any one without it); answers 1 if the object went.

use super::{Command, Failure, Reply};
use crate::protocol::Release;
use crate::server::Server;

impl Command for Release {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        let deleted = server
            .store
            .release(&self.key, self.reference.as_ref())
            .await?;
        Ok(Reply::Value(u64::from(deleted)))
    }
}
