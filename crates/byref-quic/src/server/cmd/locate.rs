//! `LOCATE`: where the object's file is on this host, for a client on the same host to map.

use byref_core::{Key, Object};
use bytes::Bytes;

use super::{Failure, Reply};
use crate::local::location_here;
use crate::server::Server;

pub(crate) struct Locate {
    pub(super) key: Key,
}

impl Locate {
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        let path = server.store.locate(&self.key).await?;
        let answer = location_here(path).encode();
        Ok(Reply::Body(Object::Shared(Bytes::from(answer))))
    }
}
