//! `quic://host:port?fingerprint=...`: a store served by a byref daemon or a peer.
//!
//! One QUIC connection per store, opened on first use and re-opened if it drops; every
//! request is its own stream, so many run in parallel without head-of-line blocking. Bodies
//! are written part by part straight from the payload's buffers.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, PutOptions,
    RefId, Result, Store, StoreUrl, UrlBuilder, check_length, check_range, secrets,
};
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::protocol::{
    Get, GetRange, Head, List, ListingPage, Locate, Location, MAX_LISTING, MAX_LISTING_PAGE,
    MAX_LOCATION, Put, Release, Request, StatusRequest,
};
use crate::token::{self, Token};
use crate::{local, tls, wire};

mod exchange;

use exchange::Live;

/// The URL scheme.
pub const SCHEME: &str = "quic";
/// Objects smaller than this are sent, never mapped from a same-host server's file: a mapping
/// costs more than the copy (as in the file store).
const MAP_MIN: u64 = 64 << 10;
/// The config-file line (or environment variable) holding the daemon's fingerprint, for URLs
/// without one.
pub const FINGERPRINT_VAR: &str = "BYREF_QUIC_FINGERPRINT";

/// The `quic://` URL of a server at `authority` presenting the certificate `fingerprint`,
/// as clients open it and handles carry it: a daemon's, or a peer's (`peer`: `pid@host` of
/// the serving process, named when it is gone).
pub fn server_url(
    authority: &str,
    fingerprint: &str,
    peer: Option<&str>,
    connect_timeout: Option<Duration>,
) -> String {
    UrlBuilder::new(SCHEME, authority)
        .option("fingerprint", fingerprint)
        .option_if("peer", peer)
        .secs("connect_timeout", connect_timeout)
        .build()
}

/// What a store served over QUIC offers its clients (and a peer, whose clients are workers).
pub const CAPABILITIES: Capabilities = Capabilities {
    private_mappings: false,
    ttl: true,
    shared: true,
    in_memory: false,
};

/// A store reached over QUIC.
#[derive(Debug)]
pub struct QuicStore {
    /// Canonical URL, for handles and errors (no secret: the token never goes in it).
    url: String,
    /// Resolved once, at open: a request never waits on DNS.
    addr: SocketAddr,
    /// TLS pinned to the server's certificate fingerprint.
    client: quinn::ClientConfig,
    /// The largest datagram the way to the server carries, read once at open.
    max_payload: u16,
    /// How long a dead server may keep a worker waiting for a connection.
    connect_timeout: Duration,
    /// How long a request may wait for the server: for its answer (plus time for the bytes
    /// of a put, at a pessimistic 10 MB/s) and between two parts of a body. A server that
    /// dies or hangs mid-request is reported then, not after QUIC's idle timeout.
    timeout: Duration,
    /// Read once, at open: `BYREF_TOKEN` or the token file, unless given.
    token: Option<Token>,
    /// `pid@host` of the producing process, when this is a peer's endpoint.
    peer: Option<String>,
    /// The server's address is one of this machine's: it may be on this host, so a large
    /// object is worth a `LOCATE` before a `GET` (see `local`).
    maybe_same_host: bool,
    /// Whether the server runs as this user (`local::served_by_this_user`), found out on the
    /// first `LOCATE` that names a file: the server behind the pinned certificate is one
    /// process, so `/proc/net/udp` is read once, not per object.
    server_is_mine: std::sync::OnceLock<bool>,
    /// The one connection every request shares, made on first use (opening a store does no
    /// I/O) and again after it closes. Emptied as soon as it closes (the server went away,
    /// or it sat idle past QUIC's idle timeout), which also closes its UDP socket: a worker
    /// that resolved proxies of a hundred peers keeps no socket for those that are gone.
    connection: Arc<Mutex<Option<Live>>>,
}

impl QuicStore {
    /// Opens `quic://host:port[?fingerprint=hex&connect_timeout=s&timeout=s]` (no network I/O yet),
    /// with the token from `BYREF_TOKEN` or the token file.
    pub fn open(url: StoreUrl) -> Result<Self> {
        let token = token::client_token().map_err(|e| Error::Config(e.to_string()))?;
        Self::open_with_token(url, token)
    }

    /// Opens with the given token (embedders and tests; never from a URL).
    pub fn open_with_token(mut url: StoreUrl, token: Option<Token>) -> Result<Self> {
        url.refuse_credentials("the token comes from BYREF_TOKEN or the token file")?;
        let host = url.url().host_str().unwrap_or_default().to_owned();
        let port = url
            .url()
            .port()
            .ok_or_else(|| Error::Config(format!("{} needs a port", url.redacted())))?;
        let display = format!("{SCHEME}://{host}:{port}");
        let addr = (host.trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| Error::Config(format!("cannot resolve {display}: {e}")))?
            .next()
            .ok_or_else(|| Error::Config(format!("{display} resolves to no address")))?;
        let fingerprint = match url.take("fingerprint") {
            Some(fingerprint) => Some(fingerprint),
            None => secrets::setting(FINGERPRINT_VAR)?,
        };
        let fingerprint = fingerprint.ok_or_else(|| {
            Error::Config(format!(
                "{display} needs the daemon's certificate fingerprint: \
                     ?fingerprint=... (byref serve prints it) or {FINGERPRINT_VAR}"
            ))
        })?;
        if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Config(format!(
                "fingerprint {fingerprint:?} is not 64 hex digits"
            )));
        }
        let connect_timeout = url.take_secs("connect_timeout")?;
        // Not in the canonical URL: how long to wait is the opener's choice, not the handle's.
        let timeout = url.take_secs("timeout")?.unwrap_or(Duration::from_secs(30));
        let peer = url.take("peer");
        let canonical = server_url(
            &format!("{host}:{port}"),
            &fingerprint.to_ascii_lowercase(),
            peer.as_deref(),
            connect_timeout,
        );
        let connect_timeout = connect_timeout.unwrap_or(Duration::from_secs(10));
        url.finish()?;
        let max_payload = tls::path_max_payload(addr);
        let client = tls::client_config(&fingerprint, max_payload)
            .map_err(|e| Error::Config(format!("QUIC setup for {display}: {e}")))?;
        Ok(QuicStore {
            url: canonical,
            addr,
            client,
            max_payload,
            connect_timeout,
            timeout,
            token,
            peer,
            maybe_same_host: local::is_local_address(addr),
            server_is_mine: std::sync::OnceLock::new(),
            connection: Arc::new(Mutex::new(None)),
        })
    }

    fn backend(&self, e: impl std::fmt::Display) -> Error {
        Error::backend(&self.url, e.to_string())
    }

    /// The server cannot be reached, or the connection to it was lost. A peer's objects live
    /// only as long as its process: say which process, since that is what the user can check.
    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        match &self.peer {
            Some(peer) => self.backend(format!(
                "peer {peer} (the process that stored this object) is gone or unreachable: {e}"
            )),
            None => self.backend(e),
        }
    }

    /// Reads a response body of `len` bytes into one buffer.
    async fn read_body(&self, recv: &mut quinn::RecvStream, len: u64) -> Result<Bytes> {
        let data = wire::read_body(recv, len, self.timeout)
            .await
            .map_err(|e| self.backend(format!("response: {e}")))?;
        Ok(data)
    }

    /// The object, `len` bytes, mapped from the file where a server on this host that runs
    /// as this user keeps it; `None` whenever that is not possible. Any failure here (an old
    /// server, an object in memory, another host) only means the bytes are sent instead: the
    /// GET that follows reports what is really wrong.
    async fn map_from_server(&self, key: &Key, len: u64) -> Option<Object> {
        if !self.maybe_same_host || len < MAP_MIN {
            return None;
        }
        let locate = Request::Locate(Locate { key: *key });
        let Ok((response, mut recv)) = self.call(locate, None).await else {
            return None;
        };
        if response.value > MAX_LOCATION {
            return None;
        }
        let Ok(answer) = self.read_body(&mut recv, response.value).await else {
            return None;
        };
        let location = Location::decode(&answer).ok()?;
        local::map_located(&location, len, || {
            *self
                .server_is_mine
                .get_or_init(|| local::served_by_this_user(self.addr))
        })
    }

    /// The daemon's status: objects and bytes per tier, requests, hits (Prometheus text).
    pub async fn status(&self) -> Result<String> {
        let request = Request::Status(StatusRequest);
        let (response, mut recv) = self.call(request, None).await?;
        let body = self.read_body(&mut recv, response.value).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[async_trait]
impl Store for QuicStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn put(&self, key: &Key, payload: &Payload, options: &PutOptions) -> Result<()> {
        let request = Request::Put(Put {
            key: *key,
            reference: options.reference,
            length: payload.len(),
            ttl: options.ttl,
        });
        self.call(request, Some((payload, options.progress.as_ref())))
            .await
            .map(drop)
    }

    /// The server's word on a length is checked against the handle's before a byte of the
    /// body is read: a whole object's against the length expected, a range's against the
    /// range (which, with a length expected, must lie within it: the server does not say the
    /// whole length on a ranged read).
    async fn get_opts(&self, key: &Key, options: &GetOptions) -> Result<Fetched<'_>> {
        if options.delivery == Delivery::LocalMapping {
            let mapped = match options.expected_len {
                Some(len) if options.range.is_none() => self.map_from_server(key, len).await,
                _ => None,
            };
            return Ok(mapped.map_or(Fetched::NotLocal, Fetched::Whole));
        }
        if let Some(range) = &options.range {
            if let Some(len) = options.expected_len {
                check_range(&self.url, key, range, len)?;
            }
            let request = Request::GetRange(GetRange {
                key: *key,
                range: range.clone(),
            });
            let (response, mut recv) = self.call(request, None).await?;
            check_length(&self.url, key, response.value, range.end - range.start)?;
            let data = self.read_body(&mut recv, response.value).await?;
            return Ok(Fetched::Whole(Object::Shared(data)));
        }
        let (response, mut recv) = self.call(Request::Get(Get { key: *key }), None).await?;
        let len = response.value;
        options.check(&self.url, key, len)?;
        if options.delivery == Delivery::Parts {
            let body = Box::new(wire::Body::new(recv, len, self.timeout));
            return Ok(Fetched::Arriving { len, body });
        }
        let data = self.read_body(&mut recv, len).await?;
        Ok(Fetched::Whole(Object::Shared(data)))
    }

    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        match self.call(Request::Head(Head { key: *key }), None).await {
            Ok((response, _)) => Ok(Some(response.value)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Page by page, each checked against [`MAX_LISTING_PAGE`] before it is read, and all
    /// together against [`MAX_LISTING`].
    async fn list(&self) -> Result<Vec<Listed>> {
        let mut listed: Vec<Listed> = Vec::new();
        let mut read = 0;
        loop {
            let after = listed.last().map_or(Key::from_bytes([0; 32]), |l| l.key);
            let (response, mut recv) = self.call(Request::List(List { after }), None).await?;
            if response.value > MAX_LISTING_PAGE {
                return Err(self.backend(format!(
                    "a listing page of {} bytes (the limit is {MAX_LISTING_PAGE})",
                    response.value
                )));
            }
            read += response.value;
            if read > MAX_LISTING {
                return Err(self.backend(format!(
                    "a listing of more than {MAX_LISTING} bytes ({} objects so far): \
                     more than a client holds",
                    listed.len()
                )));
            }
            let body = self.read_body(&mut recv, response.value).await?;
            let page = ListingPage::decode(&body).map_err(|e| self.backend(e))?;
            // Keys only go up: a server that pages backwards cannot keep a client listing.
            if page.objects.first().is_some_and(|l| l.key <= after) && !listed.is_empty() {
                return Err(self.backend("a listing page out of key order"));
            }
            let more = page.more && !page.objects.is_empty();
            listed.extend(page.objects);
            if !more {
                return Ok(listed);
            }
        }
    }

    async fn release(&self, key: &Key, reference: Option<&RefId>) -> Result<bool> {
        let request = Request::Release(Release {
            key: *key,
            reference: reference.copied(),
        });
        let (response, _) = self.call(request, None).await?;
        Ok(response.value == 1)
    }
}
