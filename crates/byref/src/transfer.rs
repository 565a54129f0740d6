//! Files in and out of any store (what `byref put/get/stat` run), for Rust users too.
//!
//! A file is stored as a raw-bytes frame, so a Python `Store.get` returns its bytes. A get
//! fetches the object range by range, a few ranges in flight, hashing in order as it writes,
//! and keeps the output file only if the whole hashes to the key: a failed or corrupted fetch
//! leaves no file.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{StreamExt as _, TryStreamExt as _};

use crate::frame::{ALIGN, header_len};
use crate::{Encoding, Error, Key, Layout, Opened, Payload, Progress, PutOptions, StoreExt as _};

/// Ranges fetched per request, and how many are in flight: enough to keep a network store's
/// pipe full, few enough that memory stays at a few tens of MiB whatever the object's size.
const RANGE: u64 = 8 << 20;
const IN_FLIGHT: usize = 4;

/// Shows how a transfer goes (a progress bar); `()` shows nothing.
pub trait Meter: Send + Sync {
    /// A phase (`reading`, `sending`, `fetching`) of `total` bytes begins.
    fn phase(&self, name: &'static str, total: u64);
    /// `done` bytes of the phase are through.
    fn set(&self, done: u64);
    /// The transfer is over.
    fn finish(&self);
}

impl Meter for () {
    fn phase(&self, _: &'static str, _: u64) {}
    fn set(&self, _: u64) {}
    fn finish(&self) {}
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::backend(&path.display().to_string(), e.to_string())
}

/// Reads `path` whole, moving `meter` as it goes.
fn read_file(path: &Path, meter: &dyn Meter) -> crate::Result<Bytes> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    meter.phase("reading", len);
    let mut data = BytesMut::zeroed(
        usize::try_from(len).map_err(|e| io_error(path, std::io::Error::other(e)))?,
    );
    let mut done = 0;
    for chunk in data.chunks_mut(RANGE as usize) {
        file.read_exact(chunk).map_err(|e| io_error(path, e))?;
        done += chunk.len() as u64;
        meter.set(done);
    }
    Ok(data.freeze())
}

/// Stores the file at `path` as raw bytes; returns its key. Reads the file with blocking
/// calls: run it on a thread of its own (or `block_on`), not on a runtime's worker.
pub async fn put_file(
    opened: &Opened,
    path: &Path,
    ttl: Option<Duration>,
    meter: &dyn Meter,
) -> crate::Result<Key> {
    let data = read_file(path, meter)?;
    let payload = Payload::frame(Encoding::Raw, Bytes::new(), vec![data]);
    meter.phase("sending", payload.len());
    let progress = Progress::default();
    let options = PutOptions {
        ttl,
        progress: Some(progress.clone()),
        ..PutOptions::new()
    };
    let put = opened.store.put_payload(&payload, &options);
    tokio::pin!(put);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let key = loop {
        tokio::select! {
            key = &mut put => break key?,
            _ = tick.tick() => meter.set(progress.done()),
        }
    };
    meter.finish();
    Ok(key)
}

/// The length and layout of the object `key`, and the first bytes they were read from.
pub async fn layout(opened: &Opened, key: &Key) -> crate::Result<(u64, Layout, Bytes)> {
    let store = &opened.store;
    let len = store.head(key).await?.ok_or_else(|| Error::NotFound {
        store: opened.url.clone(),
        key: *key,
    })?;
    let start = store.get_range(key, 0..len.min(ALIGN as u64)).await?;
    let head = (header_len(&start) as u64).min(len);
    let prefix = if head as usize <= start.len() {
        start
    } else {
        store.get_range(key, 0..head).await?
    };
    let layout = Layout::parse_prefix(&prefix, len, &opened.url, key)?;
    Ok((len, layout, prefix))
}

/// Writes the raw bytes stored under `key` to `path` (stdout if `None`); returns their length.
/// The file appears only once complete and verified (written beside it, then renamed).
pub async fn get_file(
    opened: &Opened,
    key: &Key,
    path: Option<&Path>,
    meter: &dyn Meter,
) -> crate::Result<u64> {
    let (_, layout, prefix) = layout(opened, key).await?;
    let data = match (layout.encoding, layout.buffers.as_slice()) {
        (Encoding::Raw, [data]) => data.clone(),
        _ => {
            return Err(Error::Config(format!(
                "object {key} holds a pickled Python value, not raw bytes: \
                 load it with byref.Store({:?}).get(key)",
                opened.url
            )));
        }
    };
    let partial = path.map(partial_name);
    let mut out: Box<dyn Write + Send> = match &partial {
        Some(p) => Box::new(create_partial(p).map_err(|e| io_error(p, e))?),
        None => Box::new(std::io::stdout()),
    };
    let written = copy_verified(opened, key, &prefix, data, &mut out, meter).await;
    drop(out);
    match (written, &partial, path) {
        (Ok(n), Some(from), Some(to)) => match std::fs::rename(from, to) {
            Ok(()) => Ok(n),
            // Nothing is left behind: not the output (never made), not the partial file.
            Err(e) => {
                let _ = std::fs::remove_file(from);
                Err(io_error(to, e))
            }
        },
        (Ok(n), _, _) => Ok(n),
        (Err(e), Some(from), _) => {
            let _ = std::fs::remove_file(from);
            Err(e)
        }
        (Err(e), None, _) => Err(e),
    }
}

/// Creates the partial file afresh, private, and never through a link: whatever is at its
/// name (a crashed get's leftover, or a symlink someone planted to have us write elsewhere)
/// is removed, and an exclusive create fails rather than follow one planted again meanwhile.
fn create_partial(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;

    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Where a file is written until it is verified: hidden, beside its final name.
fn partial_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{}.byref-partial", name.unwrap_or_default()))
}

/// Fetches `data`, the last section of the object `key` (`Layout` checks that it ends the
/// object), range by range into `out`, and checks the whole object against its key;
/// `prefix` is the object's first bytes.
async fn copy_verified(
    opened: &Opened,
    key: &Key,
    prefix: &Bytes,
    data: Range<usize>,
    out: &mut (dyn Write + Send),
    meter: &dyn Meter,
) -> crate::Result<u64> {
    let store = &opened.store;
    let (start, end) = (data.start as u64, data.end as u64);
    let mut hasher = blake3::Hasher::new();
    // The header and padding before the bytes are part of what the key hashes: a raw frame's
    // bytes start right after its header, which `prefix` holds.
    match prefix.get(..data.start) {
        Some(head) => hasher.update(head),
        None => hasher.update(&store.get_range(key, 0..start).await?),
    };
    meter.phase("fetching", end - start);
    let ranges = (start..end)
        .step_by(RANGE as usize)
        .map(|at| at..(at + RANGE).min(end));
    let mut chunks = futures::stream::iter(ranges)
        .map(|range| store.get_range(key, range))
        .buffered(IN_FLIGHT);
    let write = |e: std::io::Error| Error::backend("output", format!("writing object {key}: {e}"));
    let mut done = 0;
    while let Some(chunk) = chunks.try_next().await? {
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(write)?;
        done += chunk.len() as u64;
        meter.set(done);
    }
    out.flush().map_err(write)?;
    meter.finish();
    let got = Key::from_bytes(*hasher.finalize().as_bytes());
    if got != *key {
        return Err(Error::Integrity {
            store: opened.url.clone(),
            key: *key,
            reason: format!("the fetched bytes hash to {got}"),
        });
    }
    Ok(end - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_round_trips_and_a_pickled_value_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("in"), dir.path().join("out"));
        let data: Vec<u8> = (0..(RANGE as usize * 2 + 5)).map(|i| i as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let opened = crate::open("memory://transfer").unwrap();
        let key = put_file(&opened, &src, None, &()).await.unwrap();
        let n = get_file(&opened, &key, Some(&dst), &()).await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&dst).unwrap(), data);

        let pickled = Payload::frame(Encoding::Pickle5, Bytes::from_static(b"x"), vec![]);
        let key = opened
            .store
            .put_payload(&pickled, &PutOptions::new())
            .await
            .unwrap();
        let err = get_file(&opened, &key, Some(&dir.path().join("p")), &())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(!dir.path().join("p").exists() && !dir.path().join(".p.byref-partial").exists());

        // The final rename fails (a directory stands at the output's name): no partial file
        // is left behind.
        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        std::fs::write(taken.join("inside"), b"keeps the directory non-empty").unwrap();
        let key = put_file(&opened, &src, None, &()).await.unwrap();
        get_file(&opened, &key, Some(&taken), &())
            .await
            .unwrap_err();
        assert!(!dir.path().join(".taken.byref-partial").exists());
    }

    #[tokio::test]
    async fn a_symlink_planted_at_the_partial_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let (src, dst) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&src, b"fetched bytes").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".out.byref-partial")).unwrap();
        let opened = crate::open("memory://planted").unwrap();
        let key = put_file(&opened, &src, None, &()).await.unwrap();
        get_file(&opened, &key, Some(&dst), &()).await.unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&dst).unwrap(), b"fetched bytes");
    }
}
