//! One connection's requests, each on its own stream: header, proof of the token, then its
//! command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use byref_core::Object;

use super::Server;
use super::cmd::{self, Failure, Reply};
use crate::protocol::{Header, MAX_MESSAGE, REQUEST_LEN, Response, Status};
use crate::token::{self, BINDING_LEN};

/// A client that opens a stream must send its header within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves a connection's streams. A connection that has not made one authenticated request
/// within the server's deadline is closed: a slot is held only by someone with the token.
pub(super) async fn serve(server: &Arc<Server>, connection: &quinn::Connection) {
    // What this connection's proofs are bound to: the same for all its requests.
    let Ok(binding) = token::binding(connection) else {
        connection.close(1u32.into(), b"no TLS exporter");
        return;
    };
    let authenticated = Arc::new(AtomicBool::new(false));
    let watchdog = tokio::spawn({
        let (connection, authenticated) = (connection.clone(), authenticated.clone());
        let deadline = server.auth_deadline;
        let server = server.clone();
        async move {
            tokio::time::sleep(deadline).await;
            if !authenticated.load(Ordering::Acquire) {
                server.metrics.refused();
                connection.close(1u32.into(), b"no authenticated request in time");
            }
        }
    });
    while let Ok((send, recv)) = connection.accept_bi().await {
        // quinn bounds the streams open at once (max_concurrent_bidi_streams).
        tokio::spawn(stream(
            server.clone(),
            binding,
            authenticated.clone(),
            send,
            recv,
        ));
    }
    watchdog.abort();
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

async fn stream(
    server: Arc<Server>,
    binding: [u8; BINDING_LEN],
    authenticated: Arc<AtomicBool>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let _in_flight = InFlight::new(&server.in_flight);
    let reply = match request(&server, &binding, &authenticated, &mut recv).await {
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
        Err(Failure(status, message)) => respond(&mut send, status, &message, 0).await,
    };
    if reply.is_ok() {
        let _ = send.finish();
        // Keep the stream until the client has everything (or went away).
        let _ = send.stopped().await;
    }
}

/// Reads, checks and authenticates one request header, then runs its command.
async fn request(
    server: &Server,
    binding: &[u8; BINDING_LEN],
    authenticated: &AtomicBool,
    recv: &mut quinn::RecvStream,
) -> Result<Reply, Failure> {
    let mut head = [0u8; REQUEST_LEN];
    match tokio::time::timeout(HEADER_TIMEOUT, recv.read_exact(&mut head)).await {
        Ok(Ok(())) => {}
        _ => return Err(Failure::bad_request("incomplete request header")),
    }
    let Header { proof, request } = Header::decode(&head, server.max_object).map_err(|e| {
        server.metrics.refused();
        Failure::bad_request(e)
    })?;
    if !server.token.proven_by(binding, &proof) {
        server.metrics.refused();
        return Err(Failure(
            Status::Unauthenticated,
            "wrong token: the client's BYREF_TOKEN or token file differs from the server's".into(),
        ));
    }
    authenticated.store(true, Ordering::Release);
    server.metrics.request(request.op());
    cmd::apply(request, server, recv).await
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
