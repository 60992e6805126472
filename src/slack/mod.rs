//! Slack: the socket-mode transport, our own event type, and the Web API client the bot speaks through.
//!
//! - [`event`]: what a Slack envelope means to jitgate, translated from the wire JSON.
//! - [`socket`]: slack-morphism's socket-mode listener; callbacks only translate, ack and spawn.
//! - [`connections`]: the WebSockets under that listener, with `TCP_NODELAY` and a jittered reconnect backoff.
//! - [`web`]: typed Web API calls (token check, post, update, ephemeral, DM, modals, user lookup by email, channel
//!   info, permalinks, file upload) with bounded rate-limit retries and errors that name the fix.
//!
//! Knows nothing of requests, runbooks, AWS or on-call: it takes channel ids, user ids and [`SlackMessage`]s, which
//! the `messages` module builds. Calls and envelopes are counted in [`crate::telemetry::Metrics`]; the on-call code
//! finds people by email through it via an adapter in `app/directory.rs`.

pub mod connections;
pub mod event;
pub mod socket;
pub mod web;

/// A message: fallback `text` (notifications, screen readers) plus Block Kit `blocks`.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<serde_json::Value>,
}

pub use web::{
    BotIdentity, Conversation, DEFAULT_API_URL, MessageRef, REQUIRED_BOT_SCOPES, SlackAccount, SlackError, SlackWeb,
    UploadContent, WebSettings,
};
