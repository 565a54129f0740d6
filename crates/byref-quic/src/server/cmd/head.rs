//! `HEAD`: the object's length.

use byref_core::{Error, Key};

use super::{Failure, Reply};
use crate::server::Server;

pub(crate) struct Head {
    pub(super) key: Key,
}

impl Head {
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        match server.store.head(&self.key).await? {
            Some(len) => Ok(Reply::Value(len)),
            None => Err(Failure::from(Error::NotFound {
                store: server.store.url().to_owned(),
                key: self.key,
            })),
        }
    }
}
