//! `GET_RANGE`: bytes `start..end` of the object.

use byref_core::{Object, check_range};

use super::{Command, Failure, Reply, stored_object};
use crate::protocol::GetRange;
use crate::server::Server;

impl Command for GetRange {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        let object = stored_object(server, &self.key).await?;
        check_range(
            server.store.url(),
            &self.key,
            &self.range,
            object.len() as u64,
        )
        .map_err(|e| Failure::bad_request(e.to_string()))?;
        let range = self.range.start as usize..self.range.end as usize;
        Ok(Reply::Body(Object::Shared(object.into_range(range))))
    }
}
