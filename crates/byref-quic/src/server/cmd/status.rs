//! `STATUS`: the server's and the store's metrics, Prometheus text.

use byref_core::Object;

use super::Reply;
use crate::server::Server;

pub(crate) struct Status;

impl Status {
    pub(super) fn apply(self, server: &Server) -> Reply {
        Reply::Body(Object::Shared(server.status().into()))
    }
}
