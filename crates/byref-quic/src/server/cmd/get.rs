//! `GET`: the whole object.

use byref_core::Key;

use super::{Failure, Reply, fetch};
use crate::server::Server;

pub(crate) struct Get {
    pub(super) key: Key,
}

impl Get {
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        Ok(Reply::Body(fetch(server, &self.key).await?))
    }
}
