//! `LIST`: one page of every object with its references, in key order.

use byref_core::{Key, Object};
use bytes::Bytes;

use super::{Failure, Reply};
use crate::protocol::ListingPage;
use crate::server::Server;

pub(crate) struct List {
    /// The last key of the page before; zero for the first page.
    pub(super) after: Key,
}

impl List {
    /// Lists the whole store for each page: pages are ~90,000 objects, so a listing of a
    /// million objects lists it 12 times, where a cursor kept between requests would be
    /// state a client could make the server hold.
    pub(super) async fn apply(self, server: &Server) -> Result<Reply, Failure> {
        let mut objects = server.store.list().await?;
        objects.sort_unstable_by_key(|l| l.key);
        let after = (self.after != Key::from_bytes([0; 32])).then_some(&self.after);
        let page = ListingPage::after(&objects, after).encode();
        Ok(Reply::Body(Object::Shared(Bytes::from(page))))
    }
}
