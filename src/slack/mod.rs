//! Slack: the Web API client the bot speaks through (socket-mode transport lives beside it).
//!
//! - [`web`]: typed Web API calls (post, update, ephemeral, DM, modals, directory, permalinks, file upload) with
//!   bounded rate-limit retries and errors that name the fix.
//!
//! Knows nothing of requests, runbooks or AWS: it takes channel ids, user ids and [`crate::messages::SlackMessage`]s.

pub mod web;

pub use web::{
    BotIdentity, Conversation, DEFAULT_API_URL, MessageRef, REQUIRED_BOT_SCOPES, SlackError, SlackWeb, WebSettings,
};
