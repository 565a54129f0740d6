//! One connection's requests, each on its own stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use byref_core::{Error, Object};
use byref_quic::protocol::{MAX_MESSAGE, Op, REQUEST_LEN, Request, Response, Status};
use bytes::BytesMut;

use crate::Daemon;

/// A client that opens a stream must send its header within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn connection(daemon: Arc<Daemon>, connection: quinn::Connection) {
    while let Ok((send, recv)) = connection.accept_bi().await {
        // quinn bounds the streams open at once (max_concurrent_bidi_streams).
        tokio::spawn(stream(daemon.clone(), send, recv));
    }
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn stream(daemon: Arc<Daemon>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let _in_flight = InFlight::new(&daemon.in_flight);
    let reply = match request(&daemon, &mut recv).await {
        Ok(Reply::Value(value)) => respond(&mut send, Status::Ok, "", value).await,
        Ok(Reply::Body(body)) => {
            let len = body.as_slice().len() as u64;
            match respond(&mut send, Status::Ok, "", len).await {
                Ok(()) => match body {
                    Object::Shared(bytes) => send.write_chunk(bytes).await,
                    other => send.write_all(other.as_slice()).await,
                },
                Err(e) => Err(e),
            }
        }
        Err((status, message)) => respond(&mut send, status, &message, 0).await,
    };
    if reply.is_ok() {
        let _ = send.finish();
        // Keep the stream until the client has everything (or went away).
        let _ = send.stopped().await;
    }
}

enum Reply {
    Value(u64),
    Body(Object),
}

type Failure = (Status, String);

fn failure(e: Error) -> Failure {
    let status = match &e {
        Error::NotFound { .. } => Status::NotFound,
        Error::ReferenceGone { .. } => Status::ReferenceGone,
        Error::StorageFull { .. } => Status::StoreFull,
        _ => Status::Internal,
    };
    (status, e.to_string())
}

async fn request(daemon: &Daemon, recv: &mut quinn::RecvStream) -> Result<Reply, Failure> {
    let mut head = [0u8; REQUEST_LEN];
    match tokio::time::timeout(HEADER_TIMEOUT, recv.read_exact(&mut head)).await {
        Ok(Ok(())) => {}
        _ => return Err((Status::BadRequest, "incomplete request header".into())),
    }
    let request = Request::decode(&head, daemon.options.max_object).map_err(|e| {
        daemon.metrics.refused();
        (Status::BadRequest, e.to_string())
    })?;
    if !daemon.token.matches(&request.token) {
        daemon.metrics.refused();
        return Err((
            Status::Unauthenticated,
            "wrong token: the client's BYREF_TOKEN or token file differs from the daemon's".into(),
        ));
    }
    daemon.metrics.request(request.op);
    let tiers = &daemon.tiers;
    let key = &request.key;
    match request.op {
        Op::Put => {
            if !tiers.has_room(request.length) {
                return Err(failure(Error::StorageFull {
                    store: "byref daemon".into(),
                    source: format!("no tier has room for {} more bytes", request.length).into(),
                }));
            }
            let data = read_body(recv, request.length).await?;
            let reference = request.reference.expect("decode requires a PUT reference");
            tiers
                .put(key, data.freeze(), reference, request.ttl)
                .await
                .map_err(failure)?;
            Ok(Reply::Value(0))
        }
        Op::Get => match tiers.get(key).await {
            Ok((object, tier)) => {
                daemon.metrics.hit(tier);
                Ok(Reply::Body(object))
            }
            Err(e) => {
                daemon.metrics.miss();
                Err(failure(e))
            }
        },
        Op::GetRange => {
            let (object, tier) = tiers.get(key).await.map_err(|e| {
                daemon.metrics.miss();
                failure(e)
            })?;
            daemon.metrics.hit(tier);
            let range = &request.range;
            if range.end > object.len() as u64 {
                return Err((
                    Status::BadRequest,
                    format!(
                        "range {range:?} is outside object {key} of {} bytes",
                        object.len()
                    ),
                ));
            }
            let range = range.start as usize..range.end as usize;
            Ok(Reply::Body(Object::Shared(object.into_range(range))))
        }
        Op::Head => match tiers.head(key).await.map_err(failure)? {
            Some(len) => Ok(Reply::Value(len)),
            None => Err((Status::NotFound, format!("object {key} not found"))),
        },
        Op::Release => {
            let deleted = tiers
                .release(key, request.reference.as_ref())
                .await
                .map_err(failure)?;
            Ok(Reply::Value(u64::from(deleted)))
        }
        Op::Status => Ok(Reply::Body(Object::Shared(daemon.status().into()))),
    }
}

/// Reads exactly `len` body bytes. A client that stops early (killed mid-upload) leaves
/// nothing: the partial body is dropped here, never stored.
async fn read_body(recv: &mut quinn::RecvStream, len: u64) -> Result<BytesMut, Failure> {
    let len = usize::try_from(len).map_err(|_| (Status::BadRequest, "body too large".into()))?;
    let mut data = BytesMut::with_capacity(len);
    while data.len() < len {
        match recv.read_chunk(len - data.len(), true).await {
            Ok(Some(chunk)) => data.extend_from_slice(&chunk.bytes),
            Ok(None) | Err(_) => {
                return Err((
                    Status::BadRequest,
                    format!("body ended after {} of {len} bytes", data.len()),
                ));
            }
        }
    }
    Ok(data)
}

async fn respond(
    send: &mut quinn::SendStream,
    status: Status,
    message: &str,
    value: u64,
) -> Result<(), quinn::WriteError> {
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = &message[..end];
    let head = Response {
        status,
        message_len: message.len() as u16,
        value,
    };
    send.write_all(&head.encode()).await?;
    send.write_all(message.as_bytes()).await
}
