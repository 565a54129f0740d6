//! Reference counting for stores that keep objects and references as separate entries (a
//! directory, a bucket), written once: each backend provides the entry operations
//! ([`Entries`]) and gets `put`, `release` and the reading retry from here.
//!
//! An object has one entry holding its bytes and one empty marker per reference. The
//! protocol needs no lock and no atomic counter, only these orderings:
//! - **put**: add the reference first, then write the object if it is not there. A release
//!   that is deleting the object concurrently looks for references *after* moving the object
//!   aside, so it sees ours and puts the object back.
//! - **last release**: remove the reference; if none remain, move the object aside, look
//!   again, and put it back if a reference appeared meanwhile; otherwise delete it.
//! - **read**: an object missing while references exist is being put back: wait briefly.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Error, Key, Payload, Progress, PutOptions, RefId, Result};

/// Times a reader looks again for an object that a concurrent release moved aside and is
/// putting back, waiting 1, 2, 4, ... ms in between (about half a second in all, enough for
/// a rename on a loaded filesystem or a copy on S3).
const RESTORE_RETRIES: u32 = 9;

/// The entry operations a backend provides, over its own namespace.
#[async_trait]
pub trait Entries: Send + Sync {
    /// Where an object moved aside is kept until it is restored or deleted.
    type Aside: Send;

    /// The store's URL, for errors.
    fn store_url(&self) -> &str;

    /// Adds the marker of `reference` to `key` (adding an existing one is not an error).
    async fn add_marker(&self, key: &Key, reference: &RefId) -> Result<()>;

    /// Removes the marker of `reference`, or any one marker if `None`; `false` if there was
    /// none to remove.
    async fn remove_marker(&self, key: &Key, reference: Option<&RefId>) -> Result<bool>;

    /// Whether any marker of `key` exists.
    async fn has_markers(&self, key: &Key) -> Result<bool>;

    /// After a release, whether no marker is left; where the backend can, for exactly one of
    /// several concurrent releasers (the file store removes the empty marker directory).
    async fn markers_gone(&self, key: &Key) -> Result<bool> {
        Ok(!self.has_markers(key).await?)
    }

    /// The object's size, or `None` if it is absent.
    async fn object_size(&self, key: &Key) -> Result<Option<u64>>;

    /// Whether the object is there and holds the `len` bytes of its key, so that a put need
    /// not write it. By its size here; a backend that can cheaply read it back (a local
    /// file) hashes it, so that a put repairs a damaged copy.
    async fn object_intact(&self, key: &Key, len: u64) -> Result<bool> {
        Ok(self.object_size(key).await? == Some(len))
    }

    /// Writes the whole object so that it appears at once (temporary name and rename, or a
    /// single or multipart upload).
    async fn write_object(
        &self,
        key: &Key,
        payload: &Payload,
        progress: Option<&Progress>,
    ) -> Result<()>;

    /// Moves the object to a private name; `None` if it was not there.
    async fn move_aside(&self, key: &Key) -> Result<Option<Self::Aside>>;

    /// Puts an object moved aside back in place.
    async fn restore(&self, key: &Key, aside: Self::Aside) -> Result<()>;

    /// Deletes an object moved aside.
    async fn delete_aside(&self, key: &Key, aside: Self::Aside) -> Result<()>;
}

/// [`crate::Store::put`] for a backend of [`Entries`]. An object already there is written
/// again unless it is intact ([`Entries::object_intact`]): a put repairs a damaged copy.
pub async fn put<E: Entries + ?Sized>(
    entries: &E,
    key: &Key,
    payload: &Payload,
    options: &PutOptions,
) -> Result<()> {
    add_then(entries, key, &options.reference, async {
        if entries.object_intact(key, payload.len()).await? {
            return Ok(());
        }
        entries
            .write_object(key, payload, options.progress.as_ref())
            .await
    })
    .await
}

/// Adds `reference` to `key`, then runs `write`, which puts the object in place (the order
/// of the module docs). If `write` fails (a full disk) the reference is removed again: left,
/// it would keep an object that was never written, or one a later put writes, for ever.
pub async fn add_then<E, W>(entries: &E, key: &Key, reference: &RefId, write: W) -> Result<()>
where
    E: Entries + ?Sized,
    W: Future<Output = Result<()>>,
{
    entries.add_marker(key, reference).await?;
    let written = write.await;
    if written.is_err()
        && let Ok(true) = entries.remove_marker(key, Some(reference)).await
    {
        let _ = entries.markers_gone(key).await;
    }
    written
}

/// [`crate::Store::release`] for a backend of [`Entries`].
pub async fn release<E: Entries + ?Sized>(
    entries: &E,
    key: &Key,
    reference: Option<&RefId>,
) -> Result<bool> {
    if !entries.remove_marker(key, reference).await? {
        let store = entries.store_url().to_owned();
        let exists = entries.object_size(key).await?.is_some();
        return Err(if reference.is_some() && exists {
            Error::ReferenceGone { store, key: *key }
        } else {
            Error::NotFound { store, key: *key }
        });
    }
    if !entries.markers_gone(key).await? {
        return Ok(false);
    }
    // We saw no references, but a put may add one right now and find the object still in
    // place (so not write it). Move the object aside, then look again.
    let Some(aside) = entries.move_aside(key).await? else {
        return Ok(false);
    };
    if entries.has_markers(key).await? {
        entries.restore(key, aside).await?;
        return Ok(false);
    }
    entries.delete_aside(key, aside).await?;
    Ok(true)
}

/// Opens the object with `open`, waiting out a concurrent release that is putting it back;
/// [`Error::NotFound`] once it is absent with no reference left, or after the retries.
pub async fn open_existing<E, T, F, Fut>(entries: &E, key: &Key, open: F) -> Result<T>
where
    E: Entries + ?Sized,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    for attempt in 0..=RESTORE_RETRIES {
        if let Some(found) = open().await? {
            return Ok(found);
        }
        if attempt == RESTORE_RETRIES || !entries.has_markers(key).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1 << attempt)).await;
    }
    Err(Error::NotFound {
        store: entries.store_url().to_owned(),
        key: *key,
    })
}
