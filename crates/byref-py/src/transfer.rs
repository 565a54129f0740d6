//! Files in and out of any store, for `byref put/get/stat/evict`, with a progress bar on the
//! terminal (none when stderr is not one).
//!
//! A file is stored as a raw-bytes frame, so `Store.get` in Python returns its bytes too. A get
//! fetches the object range by range, a few ranges in flight, hashing in order as it writes,
//! and keeps the output only if the whole hashes to the key.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use byref::frame::{ALIGN, header_len};
use byref::{Encoding, Error, Key, Layout, Opened, Payload, Progress, PutOptions, StoreExt as _};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt as _, TryStreamExt as _};
use indicatif::{ProgressBar, ProgressStyle};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::registry;
use crate::runtime::block_on;

/// Ranges fetched per request, and how many are in flight: enough to keep a network store's
/// pipe full, few enough that memory stays at a few tens of MiB whatever the object's size.
const RANGE: u64 = 8 << 20;
const IN_FLIGHT: usize = 4;

fn bar(len: u64, verb: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_message(verb);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>8} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::backend(&path.display().to_string(), e.to_string())
}

/// Reads `path` whole, moving `bar` as it goes.
fn read_file(path: &Path, bar: &ProgressBar) -> byref::Result<Bytes> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    let mut data = BytesMut::zeroed(
        usize::try_from(len).map_err(|e| io_error(path, std::io::Error::other(e)))?,
    );
    for chunk in data.chunks_mut(RANGE as usize) {
        file.read_exact(chunk).map_err(|e| io_error(path, e))?;
        bar.inc(chunk.len() as u64);
    }
    Ok(data.freeze())
}

/// Stores the file at `path` as raw bytes and returns its key.
#[pyfunction]
#[pyo3(signature = (url, path, ttl = None))]
pub(crate) fn put_file(
    py: Python<'_>,
    url: &str,
    path: PathBuf,
    ttl: Option<f64>,
) -> PyResult<String> {
    let opened = registry::open(url).map_err(to_py)?;
    let ttl = ttl.map(Duration::from_secs_f64);
    block_on(py, async move {
        let len = std::fs::metadata(&path)
            .map_err(|e| io_error(&path, e))?
            .len();
        let bar = bar(len, "reading");
        // Blocking reads are fine here: this future runs on the calling thread, not on one of
        // the runtime's workers.
        let data = read_file(&path, &bar)?;
        let payload = Payload::frame(Encoding::Raw, Bytes::new(), vec![data]);
        bar.set_message("sending");
        bar.set_length(payload.len());
        bar.set_position(0);
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
                _ = tick.tick() => bar.set_position(progress.done()),
            }
        };
        bar.finish_and_clear();
        Ok(key.to_string())
    })
    .map_err(to_py)
}

/// The length and layout of the object `key`, and the first bytes they were read from.
async fn layout(opened: &Opened, key: &Key) -> byref::Result<(u64, Layout, Bytes)> {
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

/// The stored size, encoding and buffer count of `key`.
#[pyfunction]
pub(crate) fn stat(py: Python<'_>, url: &str, key: &str) -> PyResult<(u64, String, usize)> {
    let key: Key = key.parse().map_err(to_py)?;
    let opened = registry::open(url).map_err(to_py)?;
    let (len, layout, _) = block_on(py, layout(&opened, &key)).map_err(to_py)?;
    let encoding = match layout.encoding {
        Encoding::Raw => "raw",
        Encoding::Pickle5 => "pickle",
        Encoding::CloudPickle => "cloudpickle",
    };
    Ok((len, encoding.to_owned(), layout.buffers.len()))
}

/// Writes the raw bytes stored under `key` to `path` (stdout if `None`); returns their length.
///
/// A file appears only once complete and verified (written beside it, then renamed), so a
/// failed or corrupted fetch leaves no partial file behind.
#[pyfunction]
#[pyo3(signature = (url, key, path = None))]
pub(crate) fn get_file(
    py: Python<'_>,
    url: &str,
    key: &str,
    path: Option<PathBuf>,
) -> PyResult<u64> {
    let key: Key = key.parse().map_err(to_py)?;
    let opened = registry::open(url).map_err(to_py)?;
    block_on(py, async move {
        let (_, layout, prefix) = layout(&opened, &key).await?;
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
        let partial = path.as_ref().map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            p.with_file_name(format!(".{}.byref-partial", name.unwrap_or_default()))
        });
        let mut out: Box<dyn Write + Send> = match &partial {
            Some(p) => Box::new(File::create(p).map_err(|e| io_error(p, e))?),
            None => Box::new(std::io::stdout()),
        };
        let written = copy_verified(&opened, &key, &prefix, data, &mut out).await;
        drop(out);
        match (written, &partial, &path) {
            (Ok(n), Some(from), Some(to)) => {
                std::fs::rename(from, to).map_err(|e| io_error(to, e))?;
                Ok(n)
            }
            (Ok(n), _, _) => Ok(n),
            (Err(e), Some(from), _) => {
                let _ = std::fs::remove_file(from);
                Err(e)
            }
            (Err(e), None, _) => Err(e),
        }
    })
    .map_err(to_py)
}

/// Fetches `data`, the last section of the object `key` (`Layout` checks that it ends the
/// object), range by range into `out`, and checks the whole object against its key;
/// `prefix` is the object's first bytes.
async fn copy_verified(
    opened: &Opened,
    key: &Key,
    prefix: &Bytes,
    data: std::ops::Range<usize>,
    out: &mut (dyn Write + Send),
) -> byref::Result<u64> {
    let store = &opened.store;
    let (start, end) = (data.start as u64, data.end as u64);
    let mut hasher = blake3::Hasher::new();
    // The header and padding before the bytes are part of what the key hashes: a raw frame's
    // bytes start right after its header, which `prefix` holds.
    match prefix.get(..data.start) {
        Some(head) => hasher.update(head),
        None => hasher.update(&store.get_range(key, 0..start).await?),
    };
    let bar = bar(end - start, "fetching");
    let ranges = (start..end)
        .step_by(RANGE as usize)
        .map(|at| at..(at + RANGE).min(end));
    let mut chunks = futures::stream::iter(ranges)
        .map(|range| store.get_range(key, range))
        .buffered(IN_FLIGHT);
    let write = |e: std::io::Error| Error::backend("output", format!("writing object {key}: {e}"));
    while let Some(chunk) = chunks.try_next().await? {
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(write)?;
        bar.inc(chunk.len() as u64);
    }
    out.flush().map_err(write)?;
    bar.finish_and_clear();
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
