//! Bodies that arrive part by part (a network stream), of a length announced up front, and
//! the two things every receiver does with one: collect it without trusting the announced
//! length, and check that it hashes to its key before anyone can see it.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::{Error, Key, Result};

/// Bodies up to this size are hashed on the async worker: a thread hop would cost more.
const HASH_INLINE_MAX: usize = 1 << 20;

/// A body arriving part by part, exactly as many bytes as were announced.
#[async_trait]
pub trait Incoming: Send {
    /// The next part; `None` once every announced byte has come. An error (saying how far it
    /// got) if the body broke off, stalled or ran over: what came is then never stored.
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String>;
}

/// A whole object handed over as a body of one part (a store that does not stream).
#[derive(Debug)]
pub struct Whole(Option<Bytes>);

impl Whole {
    /// The body of `data`.
    pub fn new(data: Bytes) -> Self {
        Whole(Some(data))
    }
}

#[async_trait]
impl Incoming for Whole {
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
        Ok(self.0.take())
    }
}

/// A body whose parts come from a stream: a store fetching an object piece by piece (Redis
/// chunks, S3 ranges). A failed part ends it with that part's error.
pub struct Streamed<'a>(Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'a>>);

impl<'a> Streamed<'a> {
    /// The body of `parts`, in order.
    pub fn new(parts: impl Stream<Item = Result<Bytes>> + Send + 'a) -> Self {
        Streamed(Box::pin(parts))
    }
}

impl std::fmt::Debug for Streamed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streamed")
    }
}

#[async_trait]
impl Incoming for Streamed<'_> {
    async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
        self.0.next().await.transpose().map_err(|e| e.to_string())
    }
}

/// Reads all of `body`, announced as `len` bytes, into one buffer.
///
/// The buffer is reserved whole, once: growing it as bytes arrive copies the body again at
/// each doubling and touches twice its size in fresh pages, which cost more than the copies
/// (a 300 MB get touched 750 MB). The announced length is a claim, not a fact, so the
/// reservation may fail (reported, never an abort), and it is only address space: pages are
/// taken as bytes arrive, so a header claiming 64 GiB that is never followed by them costs
/// nothing.
pub async fn collect(body: &mut dyn Incoming, len: u64) -> std::result::Result<Bytes, String> {
    collect_into(body, len, Vec::new()).await
}

/// [`collect`], into `buffer` (its contents dropped): a receiver that keeps the buffer of an
/// object it released writes the next one into pages it already has, not fresh ones.
pub async fn collect_into(
    body: &mut dyn Incoming,
    len: u64,
    mut data: Vec<u8>,
) -> std::result::Result<Bytes, String> {
    let len = usize::try_from(len).map_err(|_| format!("a body of {len} bytes is too large"))?;
    data.clear();
    data.try_reserve_exact(len)
        .map_err(|e| format!("cannot reserve {len} bytes for the body: {e}"))?;
    while let Some(part) = body.next_part().await? {
        if data.len() + part.len() > len {
            return Err(format!("body of more than the {len} bytes announced"));
        }
        data.extend_from_slice(&part);
    }
    if data.len() != len {
        return Err(format!("body ended after {} of {len} bytes", data.len()));
    }
    Ok(Bytes::from(data))
}

/// Checks that `data` hashes to `key`, as a receiver must before the object becomes visible:
/// whoever may store must not store other bytes under a key (poisoning it for its owner).
/// Large bodies are hashed off the async workers.
pub async fn verify_body(store: &str, key: &Key, data: &Bytes) -> Result<()> {
    let hashed = if data.len() < HASH_INLINE_MAX {
        Key::of(data)
    } else {
        let body = data.clone();
        tokio::task::spawn_blocking(move || Key::of(&body))
            .await
            .map_err(|e| Error::backend(store, e))?
    };
    check_hash(store, key, &hashed)
}

/// [`Error::Integrity`] unless a received body's hash, `hashed`, is its `key`.
pub fn check_hash(store: &str, key: &Key, hashed: &Key) -> Result<()> {
    if hashed == key {
        return Ok(());
    }
    Err(Error::Integrity {
        store: store.to_owned(),
        key: *key,
        reason: format!("the body hashes to {hashed}, not to the key it was sent for"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts as given, as a stream would deliver them.
    struct Parts(Vec<Bytes>);

    #[async_trait]
    impl Incoming for Parts {
        async fn next_part(&mut self) -> std::result::Result<Option<Bytes>, String> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    #[tokio::test]
    async fn a_body_is_exactly_what_was_announced() {
        let parts = || Parts(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]);
        assert_eq!(&collect(&mut parts(), 5).await.unwrap()[..], b"abcde");
        assert!(
            collect(&mut parts(), 6)
                .await
                .unwrap_err()
                .contains("5 of 6")
        );
        assert!(
            collect(&mut parts(), 4)
                .await
                .unwrap_err()
                .contains("more than")
        );
        // A claim of 1 TiB is an error, not an abort (refused at once, unless the kernel
        // overcommits without limit); one of 1 GiB reserves address space only, and ends
        // where the bytes do.
        let huge = collect(&mut Parts(vec![]), 1 << 40).await.unwrap_err();
        assert!(
            huge.contains("cannot reserve") || huge.contains("0 of"),
            "{huge}"
        );
        let big = collect(&mut parts(), 1 << 30).await.unwrap_err();
        assert!(big.contains("5 of"), "{big}");
    }

    #[tokio::test]
    async fn a_body_must_hash_to_its_key() {
        let data = Bytes::from(vec![7u8; 2 << 20]);
        verify_body("s", &Key::of(&data), &data).await.unwrap();
        let forged = verify_body("s", &Key::of(b"other"), &data).await;
        assert!(matches!(forged, Err(Error::Integrity { .. })));
    }
}
