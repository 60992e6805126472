//! Slack: the socket-mode transport, our own event type, and the Web API client the bot speaks through.
//!
//! - [`event`]: what a Slack envelope means to jitgate, translated from the wire JSON.
//! - [`socket`]: slack-morphism's socket-mode listener; callbacks only translate, ack and spawn.
//! - [`web`]: typed Web API calls (token check, post, update, ephemeral, DM, modals, user lookup by email, channel
//!   info, permalinks, file upload) with bounded rate-limit retries and errors that name the fix.
//!
//! Knows nothing of requests, runbooks or AWS: it takes channel ids, user ids and [`crate::messages::SlackMessage`]s.
//! Its other ties: [`SlackWeb`] implements [`crate::oncall::SlackDirectory`] (the on-call roster finds people by
//! email through it), and calls and envelopes are counted in [`crate::telemetry::Metrics`].

pub mod event;
pub mod socket;
pub mod web;

pub use web::{
    BotIdentity, Conversation, DEFAULT_API_URL, MessageRef, REQUIRED_BOT_SCOPES, SlackError, SlackWeb, WebSettings,
};
