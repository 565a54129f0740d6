//! `STATUS`: the server's and the store's metrics, Prometheus text.

use byref_core::Object;

use super::{Command, Failure, Reply};
use crate::protocol::StatusRequest;
use crate::server::Server;

impl Command for StatusRequest {
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        Ok(Reply::Body(Object::Shared(server.status().into())))
    }
}
