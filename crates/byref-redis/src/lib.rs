//! `redis://host:port/db`, `rediss://` (TLS) and `redis+cluster://h1:p1,h2:p2`.
//!
//! An object of at most `chunk_size` bytes (default 4 MiB; see `config::DEFAULT_CHUNK`) is
//! one value. A larger one is
//! split into chunks `prefix{key}:c:0..n`, written first, and a small manifest under
//! `prefix{key}` written last: a reader sees the object only once it is complete, and a crash
//! mid-write leaves nothing visible. Reads fetch chunks in parallel. References live in the
//! set `prefix{key}:refs`, changed only by atomic scripts. The `{key}` hash tag keeps an
//! object's keys in one cluster slot.
//!
//! Options: `prefix` (default `byref:`), `chunk_size` (bytes), `connect_timeout` and `timeout`
//! (seconds; large transfers get more time in proportion to their size). Passwords come from
//! the host's line in the credentials file, or `BYREF_REDIS_PASSWORD` (and
//! `BYREF_REDIS_USERNAME`) for the host the user configured (`byref_core::secrets`), never
//! from the URL.
//!
//! A backend: depends on `byref-core` only.

mod config;
mod connection;
mod listing;
mod scripts;

use std::io::Write;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::incoming::Streamed;
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, PutOptions,
    RefId, Result, Store, StoreUrl,
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use redis::{AsyncCommands, RedisWrite, ToRedisArgs};
use tokio::sync::OnceCell;

use config::Config;
use connection::Connection;

/// URL schemes of [`RedisStore`].
pub const SCHEMES: [&str; 3] = ["redis", "rediss", "redis+cluster"];

/// Chunk transfers in flight per object: enough to keep the pipe full, few enough to bound the
/// memory held by packed commands.
const CHUNKS_IN_FLIGHT: usize = 4;
const MANIFEST_MAGIC: &str = "BRMF1";

/// A store in Redis.
#[derive(Debug)]
pub struct RedisStore {
    /// Parsed URL and secrets.
    config: Config,
    /// Connected on first use, so opening a store (as unpickling a proxy does) costs no I/O.
    connection: OnceCell<Connection>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

/// A value made of several slices, written into the command without joining them first.
struct Slices<'a>(Vec<&'a [u8]>);

impl ToRedisArgs for Slices<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        for slice in &self.0 {
            arg.write_all(slice).expect("writing to memory cannot fail");
        }
    }
}

/// Cuts the concatenation of `parts` into consecutive pieces of at most `chunk` bytes.
fn split(parts: &[Bytes], chunk: u64) -> Vec<Slices<'_>> {
    let mut chunks = vec![Slices(Vec::new())];
    let mut room = chunk as usize;
    for part in parts {
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            if room == 0 {
                chunks.push(Slices(Vec::new()));
                room = chunk as usize;
            }
            let (head, tail) = rest.split_at(rest.len().min(room));
            chunks.last_mut().expect("at least one chunk").0.push(head);
            room -= head.len();
            rest = tail;
        }
    }
    chunks
}

/// What the main key `prefix{key}` holds.
enum Stored {
    /// The object, small enough for one value.
    Whole(Bytes),
    /// The manifest of an object split into chunks.
    Chunked(Manifest),
}

/// What `prefix{key}` holds for a chunked object.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Manifest {
    /// Object length in bytes.
    len: u64,
    /// Chunk size it was written with (the URL option may have changed since).
    chunk: u64,
    /// Number of chunks, checked against `len` and `chunk` on read.
    count: u64,
}

impl Manifest {
    fn encode(&self) -> String {
        format!(
            "{MANIFEST_MAGIC} len={} chunk={} count={}",
            self.len, self.chunk, self.count
        )
    }

    fn decode(value: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(value.strip_prefix(MANIFEST_MAGIC.as_bytes())?).ok()?;
        let mut fields = text.split_whitespace().map(|f| f.split_once('='));
        let mut field = |name: &str| match fields.next()? {
            Some((k, v)) if k == name => v.parse::<u64>().ok(),
            _ => None,
        };
        let manifest = Manifest {
            len: field("len")?,
            chunk: field("chunk")?,
            count: field("count")?,
        };
        (manifest.chunk > 0 && manifest.count == manifest.len.div_ceil(manifest.chunk))
            .then_some(manifest)
    }
}

impl RedisStore {
    /// Opens a Redis store; connects on first use.
    pub fn open(url: StoreUrl) -> Result<Self> {
        Ok(RedisStore {
            config: Config::parse(url)?,
            connection: OnceCell::new(),
        })
    }

    fn main_key(&self, key: &Key) -> String {
        format!("{}{{{}}}", self.config.prefix, key.to_hex())
    }

    fn error(&self, e: redis::RedisError) -> Error {
        let store = self.config.display.clone();
        // By kind and error code, never by message text.
        if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
            || matches!(e.code(), Some("WRONGPASS" | "NOAUTH"))
        {
            return Error::Unauthenticated {
                store,
                source: format!(
                    "{e} (the password comes from this host's line in \
                     ~/.config/byref/credentials, else, for a store you opened yourself or the \
                     BYREF_URL store, from BYREF_REDIS_PASSWORD)"
                )
                .into(),
            };
        }
        Error::Backend {
            store,
            source: Box::new(e),
        }
    }

    fn timed_out(&self, after: Duration) -> Error {
        Error::backend(&self.config.display, format!("no answer within {after:?}"))
    }

    /// Runs `op` against the connection (connecting first if needed), within a deadline
    /// scaled to the bytes it moves.
    async fn run<T, F, Fut>(&self, bytes: u64, op: F) -> Result<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = self.config.deadline(bytes);
        let work = async {
            let connection = self
                .connection
                .get_or_try_init(|| Connection::open(&self.config))
                .await
                .map_err(|e| self.error(e))?;
            op(connection.clone()).await.map_err(|e| self.error(e))
        };
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| self.timed_out(deadline))?
    }

    async fn set(
        &self,
        key: String,
        value: Slices<'_>,
        ttl: Option<Duration>,
        len: u64,
    ) -> Result<()> {
        self.run(len, |mut c| async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value);
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
            }
            cmd.query_async::<()>(&mut c).await
        })
        .await
    }

    async fn get_value(&self, key: String, expected: u64) -> Result<Option<Vec<u8>>> {
        self.run(expected, |mut c| async move { c.get(key).await })
            .await
    }

    /// The chunks of a chunked object, in order, fetched `CHUNKS_IN_FLIGHT` at a time, each
    /// checked for its length: at most that many held at once, whoever consumes them.
    fn chunks(
        &self,
        key: Key,
        manifest: Manifest,
    ) -> impl Stream<Item = Result<Bytes>> + Send + '_ {
        let main = self.main_key(&key);
        stream::iter(0..manifest.count)
            .map(move |i| {
                let chunk_key = format!("{main}:c:{i}");
                async move {
                    let data = self.get_value(chunk_key, manifest.chunk).await?;
                    let data = data.ok_or_else(|| self.missing_chunk(&key, i, &manifest))?;
                    let expected = manifest.chunk.min(manifest.len - i * manifest.chunk);
                    if data.len() as u64 != expected {
                        return Err(
                            self.integrity(&key, format!("chunk {i} has {} bytes", data.len()))
                        );
                    }
                    Ok(Bytes::from(data))
                }
            })
            .buffered(CHUNKS_IN_FLIGHT)
    }

    /// Bytes `range` of the object, a range checked against its length already.
    async fn read_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let main = self.main_key(key);
        let head = self.head_bytes(main.clone()).await?;
        let Some(manifest) = Manifest::decode(&head) else {
            let (start, end) = (range.start as isize, range.end as isize - 1);
            let data: Vec<u8> = self
                .run(range.end - range.start, |mut c| async move {
                    c.getrange(main, start, end).await
                })
                .await?;
            return Ok(Bytes::from(data));
        };
        let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
        let mut at = range.start;
        while at < range.end {
            let i = at / manifest.chunk;
            let offset = (at % manifest.chunk) as isize;
            let take = (range.end - at).min(manifest.chunk - at % manifest.chunk);
            let chunk_key = format!("{main}:c:{i}");
            let end = offset + take as isize - 1;
            let data: Vec<u8> = self
                .run(take, |mut c| async move {
                    c.getrange(chunk_key, offset, end).await
                })
                .await?;
            if data.len() as u64 != take {
                return Err(self.missing_chunk(key, i, &manifest));
            }
            out.extend_from_slice(&data);
            at += take;
        }
        Ok(out.freeze())
    }

    /// The main key's value: the whole object, or the manifest of a chunked one (the main
    /// key holds the whole object only when it fits in one chunk).
    async fn main_value(&self, key: &Key) -> Result<Stored> {
        let value = self
            .get_value(self.main_key(key), self.config.chunk)
            .await?;
        let value = value.ok_or_else(|| self.not_found(key))?;
        Ok(match Manifest::decode(&value) {
            Some(manifest) => Stored::Chunked(manifest),
            None => Stored::Whole(Bytes::from(value)),
        })
    }

    fn missing_chunk(&self, key: &Key, i: u64, manifest: &Manifest) -> Error {
        self.integrity(
            key,
            format!(
                "chunk {i} of {} is missing (deleted or expired behind byref's back)",
                manifest.count
            ),
        )
    }

    fn integrity(&self, key: &Key, reason: String) -> Error {
        Error::Integrity {
            store: self.config.display.clone(),
            key: *key,
            reason,
        }
    }

    fn not_found(&self, key: &Key) -> Error {
        Error::NotFound {
            store: self.config.display.clone(),
            key: *key,
        }
    }

    /// The object's first bytes, enough to tell a manifest from data.
    async fn head_bytes(&self, main: String) -> Result<Vec<u8>> {
        self.run(0, |mut c| async move { c.getrange(main, 0, 63).await })
            .await
    }
}

#[async_trait]
impl Store for RedisStore {
    fn url(&self) -> &str {
        &self.config.display
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ttl: true,
            shared: true,
            ..Default::default()
        }
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        let main = self.main_key(key);
        let refs = format!("{main}:refs");
        let ttl_ms = options.ttl.map_or(0, |t| t.as_millis().max(1) as u64);
        let reference = options.reference.to_string();
        let exists: i64 = self
            .run(0, |mut c| async move {
                scripts::ADD_REFERENCE
                    .key(&main)
                    .key(&refs)
                    .arg(reference)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if exists == 1 {
            return Ok(());
        }
        let main = self.main_key(key);
        let len = payload.len();
        if len <= self.config.chunk {
            return self
                .set(
                    main,
                    Slices(payload.parts().iter().map(|p| &p[..]).collect()),
                    options.ttl,
                    len,
                )
                .await;
        }
        // Chunks first, manifest last: the object appears only when whole.
        let chunks = split(payload.parts(), self.config.chunk);
        let count = chunks.len() as u64;
        // Built eagerly: a lazy `map` over borrowed slices trips async-trait's lifetimes.
        let writes: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, slices)| {
                let chunk_len = slices.0.iter().map(|s| s.len() as u64).sum();
                self.set(format!("{main}:c:{i}"), slices, options.ttl, chunk_len)
            })
            .collect();
        stream::iter(writes)
            .buffer_unordered(CHUNKS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        let manifest = Manifest {
            len,
            chunk: self.config.chunk,
            count,
        }
        .encode();
        self.set(main, Slices(vec![manifest.as_bytes()]), options.ttl, 0)
            .await
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        let display = &self.config.display;
        if options.delivery == Delivery::LocalMapping {
            return Ok(Fetched::NotLocal);
        }
        if let Some(range) = &options.range {
            let len = self.head(key).await?.ok_or_else(|| self.not_found(key))?;
            options.check(display, key, len)?;
            let data = self.read_range(key, range.clone()).await?;
            return Ok(Fetched::Whole(Object::Shared(data)));
        }
        let manifest = match self.main_value(key).await? {
            Stored::Whole(data) => return options.whole(display, key, Object::Shared(data)),
            Stored::Chunked(manifest) => manifest,
        };
        // The manifest's length is checked before a chunk is read.
        options.check(display, key, manifest.len)?;
        let len = manifest.len;
        let chunks = self.chunks(*key, manifest);
        if options.delivery == Delivery::Parts {
            let body = Box::new(Streamed::new(chunks));
            return Ok(Fetched::Arriving { len, body });
        }
        // Chunks arrive in order and each is appended and dropped at once: no zero-filling of
        // the buffer, and at most `CHUNKS_IN_FLIGHT` chunks held besides it. The buffer is
        // reserved as the manifest says, which only a handle's length vouches for: a failed
        // reservation is an error, not an abort.
        let mut whole = Vec::new();
        whole
            .try_reserve_exact(len as usize)
            .map_err(|e| Error::backend(display, format!("cannot reserve {len} bytes: {e}")))?;
        let mut chunks = std::pin::pin!(chunks);
        while let Some(data) = chunks.try_next().await? {
            whole.extend_from_slice(&data);
        }
        Ok(Fetched::Whole(Object::Shared(Bytes::from(whole))))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        let main = self.main_key(key);
        let head = self.head_bytes(main.clone()).await?;
        if let Some(manifest) = Manifest::decode(&head) {
            return Ok(Some(manifest.len));
        }
        let len: u64 = self
            .run(0, |mut c| async move { c.strlen(main).await })
            .await?;
        Ok((len > 0).then_some(len))
    }

    /// `SCAN` for reference sets, then each object's references and length, pipelined.
    async fn list(&self) -> Result<Vec<Listed>> {
        let prefix = self.config.prefix.clone();
        // The deadline of a transfer of 1 GiB: a listing of a million objects moves ~100 MB.
        self.run(1 << 30, |c| async move { listing::list(c, &prefix).await })
            .await
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let main = self.main_key(key);
        let refs = format!("{main}:refs");
        let reference = reference.map(RefId::to_string).unwrap_or_default();
        let outcome: i64 = self
            .run(0, |mut c| async move {
                scripts::RELEASE
                    .key(&main)
                    .key(&refs)
                    .arg(reference)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match outcome {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(Error::ReferenceGone {
                store: self.config.display.clone(),
                key: *key,
            }),
            _ => Err(self.not_found(key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_across_parts_without_copying() {
        let parts = [
            Bytes::from_static(b"abcde"),
            Bytes::from_static(b"fg"),
            Bytes::from_static(b"hij"),
        ];
        let chunks = split(&parts, 4);
        let joined: Vec<Vec<u8>> = chunks.iter().map(|c| c.0.concat()).collect();
        assert_eq!(joined, [b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]);
    }

    #[test]
    fn manifests_round_trip_and_reject_garbage() {
        let m = Manifest {
            len: 10,
            chunk: 4,
            count: 3,
        };
        assert_eq!(Manifest::decode(m.encode().as_bytes()), Some(m));
        assert_eq!(Manifest::decode(b"BRMF1 len=10 chunk=4 count=2"), None);
        assert_eq!(Manifest::decode(b"BYRF\x01..."), None);
        assert_eq!(Manifest::decode(b"BRMF1 len=10 chunk=0 count=3"), None);
    }
}
