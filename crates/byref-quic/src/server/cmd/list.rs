//! `LIST`: one page of every object with its references, in key order.

use byref_core::{Key, Object};
use bytes::Bytes;

use super::{Command, Failure, Reply};
use crate::protocol::{List, ListingPage};
use crate::server::Server;

impl Command for List {
    /// Lists the whole store for each page: pages are ~90,000 objects, so a listing of a
    /// million objects lists it 12 times, where a cursor kept between requests would be
    /// state a client could make the server hold.
    async fn apply(self, server: &Server, _: &mut quinn::RecvStream) -> Result<Reply, Failure> {
        let mut objects = server.store.list().await?;
        objects.sort_unstable_by_key(|l| l.key);
        let after = (self.after != Key::from_bytes([0; 32])).then_some(&self.after);
        let page = ListingPage::after(&objects, after).encode();
        Ok(Reply::Body(Object::Shared(Bytes::from(page))))
    }
}
