//! `quic://host:port?fingerprint=...`: a store served by a byref daemon or a peer.
//!
//! One QUIC connection per store, opened on first use and re-opened if it drops; every
//! request is its own stream, so many run in parallel without head-of-line blocking. Bodies
//! are written part by part straight from the payload's buffers.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use byref_core::{
    Capabilities, Delivery, Error, Fetched, GetOptions, Key, Listed, Object, Payload, Progress,
    PutOptions, RefId, Result, Store, StoreUrl, UrlBuilder, check_length, check_range, secrets,
};
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::protocol::{
    Get, GetRange, Head, Header, List, ListingPage, Locate, Location, MAX_LISTING,
    MAX_LISTING_PAGE, MAX_LOCATION, Put, RESPONSE_LEN, Release, Request, Response, STOPPED_STORED,
    StatusRequest, TOKEN_LEN,
};
use crate::token::{self, TOKEN_VAR, Token};
use crate::{local, tls, wire};

/// The URL scheme.
pub const SCHEME: &str = "quic";
/// Objects smaller than this are sent, never mapped from a same-host server's file: a mapping
/// costs more than the copy (as in the file store).
const MAP_MIN: u64 = 64 << 10;
/// A put's progress moves in steps of this many bytes.
const PROGRESS_STEP: usize = 4 << 20;
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

/// A connection, the UDP socket it runs on, and the token's proof on it (bound to that
/// connection, so made once per connection).
#[derive(Debug, Clone)]
struct Live {
    /// Owns the socket: dropped with the connection's end.
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    proof: [u8; TOKEN_LEN],
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

    fn token(&self) -> Result<&Token> {
        match &self.token {
            Some(token) => Ok(token),
            None => Err(Error::Unauthenticated {
                store: self.url.clone(),
                source: format!(
                    "no token: set {TOKEN_VAR} or copy the daemon's token file to {}",
                    token::token_path().map_or("?".into(), |p| p.display().to_string())
                )
                .into(),
            }),
        }
    }

    /// The connection, and the token's proof on it.
    async fn connection(&self) -> Result<(quinn::Connection, [u8; TOKEN_LEN])> {
        let mut slot = self.connection.lock().await;
        if let Some(live) = slot.as_ref()
            && live.connection.close_reason().is_none()
        {
            return Ok((live.connection.clone(), live.proof));
        }
        // Before connecting: without a token there is nothing to ask.
        let token = self.token()?;
        let local: SocketAddr = if self.addr.is_ipv6() {
            "[::]:0".parse().expect("address")
        } else {
            "0.0.0.0:0".parse().expect("address")
        };
        let mut endpoint =
            tls::endpoint(local, None, self.max_payload).map_err(|e| self.backend(e))?;
        endpoint.set_default_client_config(self.client.clone());
        let connecting = endpoint
            .connect(self.addr, "byref")
            .map_err(|e| self.backend(e))?;
        let conn = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| {
                let hint = if self.peer.is_some() {
                    ""
                } else {
                    " (is the daemon running?)"
                };
                self.unreachable(format!("no answer within {:?}{hint}", self.connect_timeout))
            })?
            .map_err(|e| self.unreachable(format!("cannot connect: {e}")))?;
        let proof = token.proof(&token::binding(&conn).map_err(|e| self.backend(e))?);
        *slot = Some(Live {
            _endpoint: endpoint,
            connection: conn.clone(),
            proof,
        });
        tokio::spawn(forget_when_closed(
            Arc::downgrade(&self.connection),
            conn.clone(),
        ));
        Ok((conn, proof))
    }

    /// Sends one request (and body) and reads the response header and message, within the
    /// request's deadline.
    async fn call(
        &self,
        request: Request,
        body: Option<(&Payload, Option<&Progress>)>,
    ) -> Result<(Response, quinn::RecvStream)> {
        let bytes = body.map_or(0, |(payload, _)| payload.len());
        let deadline = self.timeout + Duration::from_secs_f64(bytes as f64 / 10e6);
        tokio::time::timeout(deadline, self.send(request, body))
            .await
            .map_err(|_| self.unreachable(format!("no answer within {deadline:?}")))?
    }

    /// [`QuicStore::call`] without the deadline.
    async fn send(
        &self,
        request: Request,
        body: Option<(&Payload, Option<&Progress>)>,
    ) -> Result<(Response, quinn::RecvStream)> {
        let (mut send, mut recv, request) = self.start(request).await?;
        // The daemon may answer before the body is through (a full store refuses at the
        // header) and stop reading: then its answer, not the interrupted write, is the news.
        let mut interrupted = None;
        if let Some((payload, progress)) = body {
            'parts: for part in payload.parts() {
                // Slices (zero-copy) so that a progress bar moves during a big part.
                for at in (0..part.len()).step_by(PROGRESS_STEP) {
                    let slice = part.slice(at..part.len().min(at + PROGRESS_STEP));
                    let len = slice.len() as u64;
                    if let Err(e) = send.write_chunk(slice).await {
                        interrupted = Some(e);
                        break 'parts;
                    }
                    if let Some(progress) = progress {
                        progress.advance(len);
                    }
                }
            }
        }
        if interrupted.is_none() {
            send.finish().map_err(|e| self.backend(e))?;
        }
        let mut head = [0u8; RESPONSE_LEN];
        if let Err(e) = recv.read_exact(&mut head).await {
            return Err(match interrupted {
                Some(write) => self.unreachable(with_causes(&write)),
                None => self.unreachable(with_causes(&e)),
            });
        }
        let response = Response::decode(&head).map_err(|e| self.backend(e))?;
        let mut message = vec![0; usize::from(response.message_len)];
        recv.read_exact(&mut message)
            .await
            .map_err(|e| self.backend(e))?;
        let message = String::from_utf8_lossy(&message).into_owned();
        if let Some(e) = response.status.error(&self.url, request.key(), message) {
            return Err(e);
        }
        match interrupted {
            None => Ok((response, recv)),
            // The server held the object already and stored the put without its body.
            Some(quinn::WriteError::Stopped(code)) if code == STOPPED_STORED.into() => {
                Ok((response, recv))
            }
            Some(write) => Err(self.backend(with_causes(&write))),
        }
    }

    /// Opens a stream and writes `request`'s header, with the token's proof on the connection.
    /// A connection lost before the header is through (the server closed it meanwhile) never
    /// ran the request, since the server acts only on a whole header: it goes again, once, on
    /// a new connection. Returns the request as sent.
    async fn start(
        &self,
        request: Request,
    ) -> Result<(quinn::SendStream, quinn::RecvStream, Request)> {
        let mut again = true;
        loop {
            let (conn, proof) = self.connection().await?;
            let header = Header {
                proof,
                request: request.clone(),
            };
            let sent = async {
                let (mut send, recv) = conn.open_bi().await?;
                send.write_all(&header.encode()).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((send, recv))
            }
            .await;
            match sent {
                Ok((send, recv)) => return Ok((send, recv, request)),
                Err(_) if again && conn.close_reason().is_some() => again = false,
                Err(e) => return Err(self.unreachable(with_causes(&*e))),
            }
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

/// Empties `slot` once `connection` closes, if it still holds it: the socket goes with it.
async fn forget_when_closed(slot: Weak<Mutex<Option<Live>>>, connection: quinn::Connection) {
    connection.closed().await;
    if let Some(slot) = slot.upgrade() {
        let mut slot = slot.lock().await;
        if slot
            .as_ref()
            .is_some_and(|live| live.connection.stable_id() == connection.stable_id())
        {
            *slot = None;
        }
    }
}

/// `e` and what caused it: quinn's "connection lost" says why only in its source (closed by
/// the server, and with what reason; timed out; reset).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write;
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(text, ": {c}");
        cause = c.source();
    }
    text
}
