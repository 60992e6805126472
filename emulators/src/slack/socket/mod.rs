//! Socket mode over a real WebSocket: the `/link/?ticket=…` endpoint that `apps.connections.open` hands
//! out, one task per connection (sends `hello`, then envelopes and control frames; reads acks), and the
//! registry of open connections.

mod delivery;
mod payloads;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub use delivery::{Ack, AckError, Delivery, EnvelopeHandle};
pub(crate) use delivery::{EnvelopeRecord, deliver_new, send_to};
pub(crate) use payloads::{
    Actor, ClickedMessage, block_actions, disconnect_frame, slash_command, view_closed, view_submission,
};

use super::state::{Shared, State as FakeState};

/// Identifies one socket-mode connection, numbered from 1 in connection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection #{}", self.0)
    }
}

/// What the connection task should write next.
#[derive(Debug)]
pub(crate) enum Outbound {
    Text(String),
    Close,
}

/// An open connection in the registry.
pub(crate) struct Connection {
    pub outbound: mpsc::UnboundedSender<Outbound>,
    /// `debug_info.host` for this connection's frames.
    pub host: String,
    /// A `disconnect` was sent and the socket is being closed: no more envelopes go here.
    pub closing: bool,
}

impl FakeState {
    /// Connections that may receive envelopes, oldest first.
    pub(crate) fn open_connections(&self) -> Vec<ConnectionId> {
        self.connections.iter().filter(|(_, c)| !c.closing).map(|(id, _)| *id).collect()
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/link/", get(link)).route("/link", get(link))
}

#[derive(Deserialize)]
struct LinkQuery {
    ticket: Option<String>,
}

/// The WebSocket endpoint. A ticket is good for one connection, as Slack's URLs are.
async fn link(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<LinkQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.ticket.unwrap_or_default();
    let valid = shared.mutate(|state| {
        let valid = state.tickets.remove(&ticket);
        if !valid {
            state.finding(format!("socket connect with an unknown or already used ticket {ticket:?}"));
        }
        valid
    });
    if !valid {
        return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response();
    }
    let shutdown = shared.shutdown.subscribe();
    upgrade.on_upgrade(move |socket| serve_connection(shared, socket, shutdown))
}

async fn serve_connection(shared: Arc<Shared>, socket: WebSocket, mut shutdown: watch::Receiver<bool>) {
    let (outbound, mut queue) = mpsc::unbounded_channel();
    let id = shared.mutate(|state| {
        state.next_connection += 1;
        let id = ConnectionId(state.next_connection);
        let host = format!("applink-{}-{}", state.next_connection, super::ids::hex(8));
        let num_connections = state.open_connections().len() + 1;
        // `hello` is queued before the connection is visible to senders, so it is always the first frame.
        let hello = payloads::hello(&shared.config.app_id, num_connections, &host);
        let _ = outbound.send(Outbound::Text(hello.to_string()));
        state.connections.insert(id, Connection { outbound, host, closing: false });
        id
    });
    tracing::debug!(%id, "socket-mode connection open");

    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            next = queue.recv() => match next {
                Some(Outbound::Text(text)) => {
                    if sink.send(WsMessage::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) | None => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(WsMessage::Text(text))) => on_frame(&shared, id, text.as_str()),
                Some(Ok(WsMessage::Binary(_))) => {
                    shared.mutate(|state| state.finding(format!("{id} sent a binary frame; Slack expects JSON text")));
                }
                // Pings are answered by the WebSocket layer itself while we keep reading.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
            },
            _ = shutdown.changed() => {
                let _ = sink.send(WsMessage::Close(None)).await;
                break;
            }
        }
    }
    shared.mutate(|state| state.connections.remove(&id));
    tracing::debug!(%id, "socket-mode connection closed");
}

/// A frame from the app: must be a JSON object with an `envelope_id` we sent (an ack).
fn on_frame(shared: &Shared, connection: ConnectionId, text: &str) {
    let received = Instant::now();
    let frame = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(frame)) => frame,
        _ => {
            shared
                .mutate(|state| state.finding(format!("{connection} sent a frame that is not a JSON object: {text}")));
            return;
        }
    };
    let Some(envelope_id) = frame.get("envelope_id").and_then(Value::as_str) else {
        shared.mutate(|state| state.finding(format!("{connection} sent a frame without envelope_id: {text}")));
        return;
    };
    let payload = frame.get("payload").cloned();
    let ack_timeout = shared.config.socket.ack_timeout;
    shared.mutate(|state| delivery::record_ack(state, envelope_id, connection, payload, received, ack_timeout));
}
