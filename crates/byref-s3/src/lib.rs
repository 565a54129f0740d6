//! `s3://bucket/prefix`: objects in any S3-compatible object store.
//!
//! Options: `endpoint` (for S3-compatible servers), `region`, `allow_http`, `connect_timeout`
//! (seconds). Credentials come from the bucket's line in the credentials file
//! (`byref_core::secrets`), else the usual `AWS_*` environment variables (or the config file's
//! lines for them), never from the URL.
//!
//! Under the prefix: `objects/<key>`, one empty `refs/<key>/<reference>` per reference, and
//! `claims/<key>/<reference>` for references being released, `trash/` for objects being
//! deleted. Large objects go up in parallel multipart uploads and
//! come down in parallel ranged GETs. References are counted by `byref_core::refcount`, as
//! in the file store; this crate provides its S3 operations.
//!
//! A backend: depends on `byref-core` only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::incoming::Streamed;
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, Progress,
    PutOptions, RefId, Result, Store, StoreUrl, UrlBuilder, refcount, refuse_ttl, secrets,
};
use bytes::{Bytes, BytesMut};
use error::S3Error;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig, WriteMultipart,
};
use refcount::Entries;
use tokio::sync::OnceCell;

mod error;

/// URL scheme of [`S3Store`].
pub const SCHEME: &str = "s3";

/// Objects above this go up as multipart uploads and come down as parallel ranged GETs, in
/// parts of this size (S3's minimum part is 5 MiB).
const PART: u64 = 16 << 20;
/// Parts in flight per object.
const PARTS_IN_FLIGHT: usize = 8;
/// Listings a release of "any reference" tries when concurrent releasers keep claiming every
/// marker it saw first.
const LISTINGS: u32 = 64;
/// Credentials `AmazonS3Builder::from_env` reads; also taken from the config file.
const CREDENTIAL_VARS: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A store in an S3 bucket.
#[derive(Debug)]
pub struct S3Store {
    /// The URL handles carry (bucket, prefix, endpoint; no credentials).
    url: String,
    /// The object_store client.
    s3: Arc<AmazonS3>,
    /// Key prefix inside the bucket.
    prefix: Path,
    /// Set once the bucket is known to exist (see `check_bucket`).
    bucket_exists: OnceCell<()>,
}

impl S3Store {
    /// Opens `s3://bucket/prefix[?endpoint=..&region=..&allow_http=true]`.
    pub fn open(mut url: StoreUrl) -> Result<Self> {
        url.refuse_credentials(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment or \
             ~/.config/byref/byref.env",
        )?;
        let parsed = url.url().clone();
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::Config(format!("s3:// URLs need a bucket: {parsed}")))?
            .to_owned();
        let prefix = parsed.path().trim_matches('/').to_owned();
        let endpoint = url.take("endpoint");
        let region = url.take("region");
        let allow_http = url.take_bool("allow_http", false)?;
        let connect_timeout = url
            .take_secs("connect_timeout")?
            .unwrap_or(Duration::from_secs(5));

        // The bucket's own line in the credentials file wins over the global AWS_* ones. The
        // global ones stay usable for buckets a handle names: S3 requests are signed, the
        // secret key never leaves this process (unlike a Redis password).
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        for var in CREDENTIAL_VARS {
            let field = var.to_lowercase();
            let own = secrets::in_credentials_file(&url, &bucket, &field)?;
            let value = match own {
                Some(value) => Some(value),
                // The config file's lines, for what the environment does not set.
                None if std::env::var_os(var).is_none() => secrets::secret(var)?,
                None => None,
            };
            if let Some(value) = value {
                builder = builder.with_config(field.parse().expect("known key"), value);
            }
        }
        url.finish()?;
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &region {
            builder = builder.with_region(region);
        }
        // object_store's defaults retry an unreachable server for minutes; fail in seconds.
        builder = builder
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(connect_timeout),
            )
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        let display = UrlBuilder::new(SCHEME, &format!("{bucket}/{prefix}"))
            .option_if("endpoint", endpoint.as_ref())
            .option_if("region", region.as_ref())
            .option_if("allow_http", allow_http.then_some(true))
            .build();
        let s3 = builder
            .build()
            .map_err(|e| Error::Config(format!("{display}: {e}")))?;
        Ok(S3Store {
            url: display,
            s3: Arc::new(s3),
            prefix: Path::from(prefix),
            bucket_exists: OnceCell::new(),
        })
    }

    fn object(&self, key: &Key) -> Path {
        self.prefix.clone().join("objects").join(key.to_hex())
    }

    fn refs(&self, key: &Key) -> Path {
        self.prefix.clone().join("refs").join(key.to_hex())
    }

    /// One empty object per reference released: S3 deletes of missing keys succeed, so two
    /// releasers of one marker would both count it; the one that creates its claim (a
    /// create-if-absent put) is the one that releases it.
    fn claims(&self, key: &Key) -> Path {
        self.prefix.clone().join("claims").join(key.to_hex())
    }

    /// Every path under `prefix` (of `key`'s markers or claims).
    async fn list(&self, key: &Key, prefix: &Path) -> Result<Vec<Path>> {
        self.s3
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| self.error(key, e))
    }

    /// Releases `marker` for this caller alone: `false` if it is gone, or another releaser
    /// claimed it first.
    async fn take_marker(&self, key: &Key, marker: &Path) -> Result<bool> {
        match self.s3.head(marker).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.error(key, e)),
        }
        let name = marker.filename().unwrap_or_default();
        let claim = self.claims(key).join(name);
        // The claim holds a value of this attempt alone: a create that succeeded but whose
        // answer was lost is retried by the client and refused as existing; reading the
        // claim back tells it from another releaser's (taken as theirs, the marker would
        // never be deleted, and with it the object).
        let mine = RefId::random().to_string();
        let create = object_store::PutOptions::from(PutMode::Create);
        let payload = PutPayload::from(mine.clone().into_bytes());
        match self.s3.put_opts(&claim, payload, create).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                if !self.claim_is(key, &claim, &mine).await? {
                    return Ok(false);
                }
            }
            Err(e) => return Err(self.error(key, e)),
        }
        self.s3
            .delete(marker)
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(true)
    }

    /// Whether `claim` holds `value`. Anything else of the bucket's is not read: a claim of
    /// another length is not ours.
    async fn claim_is(&self, key: &Key, claim: &Path, value: &str) -> Result<bool> {
        let held = match self.s3.get(claim).await {
            Ok(found) if found.meta.size == value.len() as u64 => found.bytes().await,
            Ok(_) | Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => Err(e),
        };
        Ok(held.map_err(|e| self.error(key, e))? == value.as_bytes())
    }

    fn error(&self, key: &Key, e: object_store::Error) -> Error {
        S3Error::new(&self.url, key, e).into()
    }

    fn write_error(&self, key: &Key, e: object_store::Error) -> Error {
        S3Error::writing(&self.url, key, e).into()
    }

    /// Checks, once per store, that the bucket exists: a 404 for an object means "absent"
    /// only then. Listing a prefix answers 404 for a missing bucket alone.
    async fn check_bucket(&self) -> Result<()> {
        self.bucket_exists
            .get_or_try_init(|| async {
                match self.s3.list_with_delimiter(Some(&self.prefix)).await {
                    Ok(_) => Ok(()),
                    Err(source @ object_store::Error::NotFound { .. }) => {
                        Err(Error::from(S3Error::NoBucket {
                            store: self.url.clone(),
                            source,
                        }))
                    }
                    Err(source) => Err(Error::from(S3Error::Other {
                        store: self.url.clone(),
                        source,
                    })),
                }
            })
            .await
            .map(drop)
    }

    async fn upload(&self, key: &Key, payload: &Payload) -> Result<()> {
        let path = self.object(key);
        if payload.len() <= PART {
            let body = PutPayload::from_iter(payload.parts().iter().cloned());
            return self
                .s3
                .put(&path, body)
                .await
                .map(drop)
                .map_err(|e| self.write_error(key, e));
        }
        let upload = self
            .s3
            .put_multipart(&path)
            .await
            .map_err(|e| self.write_error(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART as usize);
        for part in payload.parts() {
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| self.write_error(key, e))?;
            writer.put(part.clone());
        }
        // On failure the upload is aborted: S3 shows nothing under the object's name.
        writer
            .finish()
            .await
            .map(drop)
            .map_err(|e| self.write_error(key, e))
    }

    /// The object's bytes in order, in parts of `PART` bytes fetched `PARTS_IN_FLIGHT` at a
    /// time: at most that many held at once, whoever consumes them.
    fn parts(&self, key: Key, size: u64) -> impl Stream<Item = Result<Bytes>> + Send + '_ {
        let path = self.object(&key);
        stream::iter((0..size).step_by(PART as usize))
            .map(move |start| {
                let range = start..(start + PART).min(size);
                let path = path.clone();
                async move {
                    self.s3
                        .get_range(&path, range)
                        .await
                        .map_err(|e| self.error(&key, e))
                }
            })
            .buffered(PARTS_IN_FLIGHT)
    }

    async fn download(&self, key: &Key, size: u64) -> Result<Bytes> {
        if size <= PART {
            let got = self
                .s3
                .get(&self.object(key))
                .await
                .map_err(|e| self.error(key, e))?;
            return got.bytes().await.map_err(|e| self.error(key, e));
        }
        // Parts are appended as they come: no zero-filled buffer.
        let mut whole = BytesMut::with_capacity(size as usize);
        let mut parts = std::pin::pin!(self.parts(*key, size));
        while let Some(data) = parts.try_next().await? {
            whole.extend_from_slice(&data);
        }
        Ok(whole.freeze())
    }
}

#[async_trait]
impl Store for S3Store {
    fn url(&self) -> &str {
        &self.url
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            shared: true,
            ..Default::default()
        }
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        refuse_ttl(&self.url, options, "ttl (use a bucket lifecycle rule)")?;
        refcount::put(self, key, payload, options).await
    }

    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        if options.delivery == Delivery::LocalMapping {
            return Ok(Fetched::NotLocal);
        }
        let size = refcount::open_existing(self, key, || self.object_size(key)).await?;
        options.check(&self.url, key, size)?;
        let data = match (&options.range, options.delivery) {
            (Some(range), _) if range.is_empty() => Bytes::new(),
            (Some(range), _) => self
                .s3
                .get_range(&self.object(key), range.clone())
                .await
                .map_err(|e| self.error(key, e))?,
            (None, Delivery::Parts) => {
                let body = Box::new(Streamed::new(self.parts(*key, size)));
                return Ok(Fetched::Arriving { len: size, body });
            }
            (None, _) => self.download(key, size).await?,
        };
        Ok(Fetched::Whole(Object::Shared(data)))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        self.object_size(key).await
    }

    /// Two listings, `objects/` and `refs/` (less the references being released, which have
    /// claims), joined by key; an object with no reference left is being deleted.
    async fn list(&self) -> Result<Vec<Listed>> {
        let under = |dir: &str| {
            self.s3
                .list(Some(&self.prefix.clone().join(dir)))
                .map_ok(|meta| {
                    let mut parts = meta.location.parts().collect::<Vec<_>>().into_iter().rev();
                    let last = parts.next().map(|p| p.as_ref().to_owned());
                    let parent = parts.next().map(|p| p.as_ref().to_owned());
                    (parent, last, meta.size)
                })
                .try_collect::<Vec<_>>()
        };
        let fail = |e| Error::backend(&self.url, e);
        let (objects, markers, claims) =
            futures::try_join!(under("objects"), under("refs"), under("claims")).map_err(fail)?;
        let claimed: std::collections::HashSet<_> =
            claims.into_iter().map(|(k, r, _)| (k, r)).collect();
        let mut references: std::collections::HashMap<Key, Vec<RefId>> = Default::default();
        for (key, reference, _) in markers {
            if claimed.contains(&(key.clone(), reference.clone())) {
                continue;
            }
            let key = key.and_then(|k| k.parse::<Key>().ok());
            let reference = reference.and_then(|r| u128::from_str_radix(&r, 16).ok());
            if let (Some(key), Some(reference)) = (key, reference) {
                references
                    .entry(key)
                    .or_default()
                    .push(RefId::from_bytes(reference.to_be_bytes()));
            }
        }
        Ok(objects
            .into_iter()
            .filter_map(|(_, name, len)| {
                let key = name?.parse::<Key>().ok()?;
                Some(Listed {
                    key,
                    len,
                    references: references.remove(&key)?,
                    head: None,
                })
            })
            .collect())
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        refcount::release(self, key, reference).await
    }
}

/// The reference-counting protocol of `byref_core::refcount`, on S3 keys: a reference is an
/// empty object under `refs/<key>/`, and objects are moved aside into `trash/`.
#[async_trait]
impl Entries for S3Store {
    type Aside = Path;

    fn store_url(&self) -> &str {
        &self.url
    }

    async fn add_marker(&self, key: &Key, reference: &RefId) -> Result<()> {
        let marker = self.refs(key).join(reference.to_string());
        self.s3
            .put(&marker, PutPayload::default())
            .await
            .map(drop)
            .map_err(|e| self.write_error(key, e))
    }

    async fn remove_marker(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        if let Some(r) = reference {
            return self
                .take_marker(key, &self.refs(key).join(r.to_string()))
                .await;
        }
        // Any one: concurrent releasers see the same listing, and each must take a different
        // marker, so try them in turn (listing again, a bounded number of times, when others
        // took every one seen).
        for _ in 0..LISTINGS {
            let markers = self.list(key, &self.refs(key)).await?;
            if markers.is_empty() {
                return Ok(false);
            }
            for marker in markers {
                if self.take_marker(key, &marker).await? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn has_markers(&self, key: &Key) -> Result<bool> {
        match self.s3.list(Some(&self.refs(key))).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(self.error(key, e)),
        }
    }

    async fn object_size(&self, key: &Key) -> Result<Option<u64>> {
        match self.s3.head(&self.object(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => self.check_bucket().await.map(|()| None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn write_object(
        &self,
        key: &Key,
        payload: &Payload,
        _progress: Option<&Progress>,
    ) -> Result<()> {
        self.upload(key, payload).await
    }

    async fn move_aside(&self, key: &Key) -> Result<Option<Path>> {
        let aside = self
            .prefix
            .clone()
            .join("trash")
            .join(format!("{}.{}", key, RefId::random()));
        match self.s3.rename(&self.object(key), &aside).await {
            Ok(()) => Ok(Some(aside)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn restore(&self, key: &Key, aside: Path) -> Result<()> {
        self.s3
            .rename(&aside, &self.object(key))
            .await
            .map_err(|e| self.error(key, e))
    }

    async fn delete_aside(&self, key: &Key, aside: Path) -> Result<()> {
        self.s3
            .delete(&aside)
            .await
            .map_err(|e| self.error(key, e))?;
        // The object is gone: its released references' claims are no longer needed.
        for claim in self.list(key, &self.claims(key)).await? {
            self.s3
                .delete(&claim)
                .await
                .map_err(|e| self.error(key, e))?;
        }
        Ok(())
    }
}
