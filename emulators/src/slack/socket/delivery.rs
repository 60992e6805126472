//! Envelope delivery as Slack does it: each envelope goes to exactly one open connection (round robin), must
//! be acknowledged within the ack deadline, and is delivered again (to another connection when there is one)
//! when it is not. [`EnvelopeHandle`] is the test's view of one envelope.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ConnectionId, Outbound};
use crate::slack::state::{Shared, State};
use crate::slack::web::check_ack_blocks;

/// One transmission of an envelope to a connection.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The connection that received it.
    pub connection: ConnectionId,
    /// 0 for the first delivery, then 1, 2, … for redeliveries after a missed ack.
    pub retry_attempt: u32,
    /// Sent by [`FakeSlack::send_duplicate`](crate::slack::FakeSlack::send_duplicate), not by the retry logic.
    pub duplicate: bool,
    /// When it was written to the socket queue.
    pub at: Instant,
}

/// An acknowledgement received for an envelope.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The connection the ack arrived on.
    pub connection: ConnectionId,
    /// The ack's `payload` (slash-command reply, `response_action`, …), if any.
    pub payload: Option<Value>,
    /// Time from the delivery it answers (the latest one on that connection) to the ack.
    pub latency: Duration,
    /// Whether it arrived within the ack deadline.
    pub in_time: bool,
    /// `retry_attempt` of the delivery it answers.
    pub retry_attempt: u32,
}

/// Why [`EnvelopeHandle::ack`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    /// No delivery was acknowledged before Slack gave up on the envelope.
    NotAcked {
        /// What the envelope was.
        envelope: String,
        /// The ack deadline per delivery.
        within: Duration,
        /// How many times it was delivered.
        deliveries: usize,
    },
    /// The first ack came after the deadline (Slack had already shown the user an error / redelivered).
    Late {
        /// What the envelope was.
        envelope: String,
        /// How long the ack took.
        latency: Duration,
        /// The ack deadline.
        within: Duration,
    },
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckError::NotAcked { envelope, within, deliveries } => {
                write!(f, "{envelope} not acked within {within:?} (delivered {deliveries} time(s))")
            }
            AckError::Late { envelope, latency, within } => {
                write!(f, "{envelope} acked after {latency:?}, later than the {within:?} deadline")
            }
        }
    }
}

impl std::error::Error for AckError {}

/// The fake's record of one envelope.
pub(crate) struct EnvelopeRecord {
    pub envelope_id: String,
    /// Envelope `type` (`slash_commands`, `interactive`).
    pub kind: String,
    /// Human description for messages, e.g. `slash command "/jit status" from U1 in C1`.
    pub summary: String,
    /// The exact text frame; every delivery sends these same bytes.
    pub frame: String,
    pub deliveries: Vec<Delivery>,
    pub acks: Vec<Ack>,
    /// Slack stopped redelivering.
    pub gave_up: bool,
    /// The test looked at the ack (via [`EnvelopeHandle::ack`]).
    pub ack_inspected: bool,
}

impl EnvelopeRecord {
    /// An ack carried a payload (a reply the user sees) that the test never looked at.
    pub fn ack_payload_unread(&self) -> bool {
        !self.ack_inspected && self.acks.iter().any(|a| a.payload.is_some())
    }

    pub fn first_ack_payload_text(&self) -> String {
        self.acks.iter().find_map(|a| a.payload.as_ref()).map(Value::to_string).unwrap_or_default()
    }
}

/// Picks the next open connection round robin, avoiding `avoid` when another one is open.
fn choose_connection(state: &mut State, avoid: &[ConnectionId]) -> Option<ConnectionId> {
    let open = state.open_connections();
    let preferred: Vec<ConnectionId> = open.iter().copied().filter(|c| !avoid.contains(c)).collect();
    let pool = if preferred.is_empty() { open } else { preferred };
    if pool.is_empty() {
        return None;
    }
    let pick = pool[(state.round_robin % pool.len() as u64) as usize];
    state.round_robin += 1;
    Some(pick)
}

/// Writes the envelope's frame to `connection` and records the delivery.
pub(crate) fn send_to(
    state: &mut State,
    envelope_id: &str,
    connection: ConnectionId,
    retry_attempt: u32,
    duplicate: bool,
) {
    let Some(record) = state.envelopes.iter_mut().find(|e| e.envelope_id == envelope_id) else { return };
    if let Some(conn) = state.connections.get(&connection) {
        // A send error means the socket task just ended; the missed ack then triggers a redelivery.
        let _ = conn.outbound.send(Outbound::Text(record.frame.clone()));
    }
    record.deliveries.push(Delivery { connection, retry_attempt, duplicate, at: Instant::now() });
}

/// Registers a new envelope and delivers it to one open connection, waiting (up to the test deadline) for a
/// connection if none is open; then watches its ack.
pub(crate) async fn deliver_new(shared: &Arc<Shared>, kind: &str, envelope: Value, summary: String) -> EnvelopeHandle {
    let envelope_id = envelope.get("envelope_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let frame = envelope.to_string();
    let what = format!("an open socket-mode connection to deliver the {summary}");
    shared
        .wait_for(
            || what.clone(),
            |state| {
                let connection = choose_connection(state, &[])?;
                state.envelopes.push(EnvelopeRecord {
                    envelope_id: envelope_id.clone(),
                    kind: kind.to_owned(),
                    summary: summary.clone(),
                    frame: frame.clone(),
                    deliveries: Vec::new(),
                    acks: Vec::new(),
                    gave_up: false,
                    ack_inspected: false,
                });
                send_to(state, &envelope_id, connection, 0, false);
                Some(())
            },
        )
        .await;
    shared.mutate(|_| ());
    tokio::spawn(watch_acks(shared.clone(), envelope_id.clone()));
    EnvelopeHandle { shared: shared.clone(), envelope_id, envelope, summary }
}

/// Slack's side of the ack contract: wait for an ack; on a miss deliver again (preferring connections that
/// have not had it yet) until the redeliveries are used up.
async fn watch_acks(shared: Arc<Shared>, envelope_id: String) {
    let timeout = shared.config.socket.ack_timeout;
    let redeliveries = shared.config.socket.redeliveries;
    let mut shutdown = shared.shutdown.subscribe();
    let mut attempt = 0;
    loop {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = shared.changes();
        loop {
            let acked = shared.with(|state| {
                state.envelopes.iter().find(|e| e.envelope_id == envelope_id).is_none_or(|e| !e.acks.is_empty())
            });
            if acked {
                return;
            }
            tokio::select! {
                changed = tokio::time::timeout_at(deadline, changes.changed()) => match changed {
                    Ok(Ok(())) => continue,
                    Ok(Err(_)) => return,
                    Err(_elapsed) => break,
                },
                _ = shutdown.changed() => return,
            }
        }
        if attempt >= redeliveries {
            break;
        }
        attempt += 1;
        shared.mutate(|state| {
            let tried: Vec<ConnectionId> = state
                .envelopes
                .iter()
                .find(|e| e.envelope_id == envelope_id)
                .map(|e| e.deliveries.iter().map(|d| d.connection).collect())
                .unwrap_or_default();
            match choose_connection(state, &tried) {
                Some(connection) => send_to(state, &envelope_id, connection, attempt, false),
                None => state.finding(format!("envelope {envelope_id}: no open connection for redelivery {attempt}")),
            }
        });
    }
    shared.mutate(|state| {
        if let Some(record) = state.envelopes.iter_mut().find(|e| e.envelope_id == envelope_id) {
            record.gave_up = true;
        }
    });
}

/// Records an ack, attributing it to the latest delivery on the same connection (or the latest overall).
pub(crate) fn record_ack(
    state: &mut State,
    envelope_id: &str,
    connection: ConnectionId,
    payload: Option<Value>,
    received: Instant,
    ack_timeout: Duration,
) {
    let Some(record) = state.envelopes.iter_mut().find(|e| e.envelope_id == envelope_id) else {
        state.finding(format!("{connection} acked unknown envelope_id {envelope_id:?}"));
        return;
    };
    let answered =
        record.deliveries.iter().rev().find(|d| d.connection == connection).or(record.deliveries.last()).cloned();
    let (latency, retry_attempt) =
        answered.map(|d| (received.saturating_duration_since(d.at), d.retry_attempt)).unwrap_or((Duration::ZERO, 0));
    let problem = payload.as_ref().and_then(|p| check_ack_payload(&record.kind, p));
    let summary = record.summary.clone();
    record.acks.push(Ack { connection, payload, latency, in_time: latency <= ack_timeout, retry_attempt });
    if let Some(problem) = problem {
        state.finding(format!("ack payload for {summary}: {problem}"));
    }
}

/// What Slack would refuse in an ack payload: invalid blocks in a command reply, an unknown
/// `response_action` in a view submission reply.
fn check_ack_payload(kind: &str, payload: &Value) -> Option<String> {
    if let Some(action) = payload.get("response_action") {
        return match action.as_str() {
            Some("clear" | "update" | "push" | "errors") => None,
            _ => Some(format!("unknown response_action {action}")),
        };
    }
    if kind == "slash_commands"
        && let Some(blocks) = payload.get("blocks")
    {
        return check_ack_blocks(blocks).err();
    }
    None
}

/// The test's handle on one envelope it sent.
#[derive(Clone)]
pub struct EnvelopeHandle {
    shared: Arc<Shared>,
    envelope_id: String,
    envelope: Value,
    summary: String,
}

impl std::fmt::Debug for EnvelopeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeHandle")
            .field("envelope_id", &self.envelope_id)
            .field("summary", &self.summary)
            .finish()
    }
}

impl EnvelopeHandle {
    /// The envelope's `envelope_id`.
    pub fn envelope_id(&self) -> &str {
        &self.envelope_id
    }

    /// The whole envelope as sent.
    pub fn envelope(&self) -> &Value {
        &self.envelope
    }

    /// The envelope's `payload`.
    pub fn payload(&self) -> &Value {
        &self.envelope["payload"]
    }

    /// The payload's `trigger_id`, if it has one.
    pub fn trigger_id(&self) -> Option<&str> {
        self.payload().get("trigger_id").and_then(Value::as_str)
    }

    /// A description such as `slash command "/jit help" from U1 in C1`.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Waits for the first ack and returns it, or fails when it was late or never came (after all
    /// redeliveries). Marks the ack payload as read.
    pub async fn ack(&self) -> Result<Ack, AckError> {
        let socket = &self.shared.config.socket;
        let within = socket.ack_timeout;
        self.shared
            .wait_for_within(
                socket.ack_timeout * (socket.redeliveries + 1) + self.shared.config.wait_deadline,
                || format!("the ack of the {}", self.summary),
                |state| {
                    let record = state.envelopes.iter_mut().find(|e| e.envelope_id == self.envelope_id)?;
                    if let Some(first) = record.acks.first().cloned() {
                        record.ack_inspected = true;
                        return Some(if first.in_time {
                            Ok(first)
                        } else {
                            Err(AckError::Late { envelope: record.summary.clone(), latency: first.latency, within })
                        });
                    }
                    record.gave_up.then(|| {
                        Err(AckError::NotAcked {
                            envelope: record.summary.clone(),
                            within,
                            deliveries: record.deliveries.len(),
                        })
                    })
                },
            )
            .await
    }

    /// Every delivery so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .with(|state| {
                state.envelopes.iter().find(|e| e.envelope_id == self.envelope_id).map(|e| e.deliveries.clone())
            })
            .unwrap_or_default()
    }

    /// Every ack so far, in order (several when duplicates were acked too).
    pub fn acks(&self) -> Vec<Ack> {
        self.shared
            .with(|state| state.envelopes.iter().find(|e| e.envelope_id == self.envelope_id).map(|e| e.acks.clone()))
            .unwrap_or_default()
    }

    /// Waits until the envelope has been delivered at least `count` times; returns the deliveries.
    pub async fn wait_for_deliveries(&self, count: usize) -> Vec<Delivery> {
        self.shared
            .wait_for(
                || format!("{count} deliveries of the {}", self.summary),
                |state| {
                    let record = state.envelopes.iter().find(|e| e.envelope_id == self.envelope_id)?;
                    (record.deliveries.len() >= count).then(|| record.deliveries.clone())
                },
            )
            .await
    }

    /// Waits until the envelope has received at least `count` acks (e.g. a duplicate acked by two
    /// replicas); returns them and marks their payloads read.
    pub async fn wait_for_acks(&self, count: usize) -> Vec<Ack> {
        self.shared
            .wait_for(
                || format!("{count} acks of the {}", self.summary),
                |state| {
                    let record = state.envelopes.iter_mut().find(|e| e.envelope_id == self.envelope_id)?;
                    (record.acks.len() >= count).then(|| {
                        record.ack_inspected = true;
                        record.acks.clone()
                    })
                },
            )
            .await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
