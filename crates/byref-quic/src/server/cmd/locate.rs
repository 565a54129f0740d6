//! `LOCATE`: where the object's file is on this host, for a client on the same host to map.

use byref_core::Object;
use bytes::Bytes;

use super::{Command, Failure, Reply};
use crate::local::location_here;
use crate::protocol::Locate;
use crate::server::Server;

impl Command for Locate {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        let path = server.store.locate(&self.key).await?;
        let answer = location_here(path).encode();
        Ok(Reply::Body(Object::Shared(Bytes::from(answer))))
    }
}
