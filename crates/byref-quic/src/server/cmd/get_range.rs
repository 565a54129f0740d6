//! `GET_RANGE`: bytes `start..end` of the object.

use std::ops::Range;

use byref_core::{Key, Object, check_range};

use super::{Failure, Reply, fetch};
use crate::server::Server;

pub(crate) struct GetRange {
    pub(super) key: Key,
    pub(super) range: Range<u64>,
}

impl GetRange {
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        let object = fetch(server, &self.key).await?;
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
