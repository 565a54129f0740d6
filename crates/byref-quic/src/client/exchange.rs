//! One request's exchange with the server, on the one connection every request shares:
//! connecting (and again after it closes), the token's proof, the header, the body out, the
//! response header in, all within the request's deadline.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use byref_core::{Error, Payload, Progress, Result};
use tokio::sync::Mutex;

use super::QuicStore;
use crate::protocol::{Header, RESPONSE_LEN, Request, Response, STOPPED_STORED, TOKEN_LEN};
use crate::tls;
use crate::token::{self, TOKEN_VAR, Token};

/// A put's progress moves in steps of this many bytes.
const PROGRESS_STEP: usize = 4 << 20;

/// A connection, the UDP socket it runs on, and the token's proof on it (bound to that
/// connection, so made once per connection).
#[derive(Debug, Clone)]
pub(super) struct Live {
    /// Owns the socket: dropped with the connection's end.
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    proof: [u8; TOKEN_LEN],
}

impl QuicStore {
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
    pub(super) async fn call(
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
