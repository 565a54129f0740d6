//! `HEAD`: the object's length.

use byref_core::Error;

use super::{Command, Failure, Reply};
use crate::protocol::Head;
use crate::server::Server;

impl Command for Head {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        match server.store.head(&self.key).await? {
            Some(len) => Ok(Reply::Value(len)),
            None => Err(Failure::from(Error::NotFound {
                store: server.store.url().to_owned(),
                key: self.key,
            })),
        }
    }
}
