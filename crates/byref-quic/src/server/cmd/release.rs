//! `RELEASE`: drop a reference (any one without it); answers 1 if the object went.

use byref_core::{Key, RefId};

use super::{Failure, Reply};
use crate::server::Server;

pub(crate) struct Release {
    pub(super) key: Key,
    pub(super) reference: Option<RefId>,
}

impl Release {
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        let deleted = server
            .store
            .release(&self.key, self.reference.as_ref())
            .await?;
        Ok(Reply::Value(u64::from(deleted)))
    }
}
