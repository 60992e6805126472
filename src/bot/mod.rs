//! The Slack-facing side of the engine: each Slack event handled end to end, from the click to the card.
//!
//! - `dispatch`: the socket's `EventHandler`. The ack decides what needs no I/O (parse errors, help, form
//!   validation) and hands what it worked out to the work, which claims the delivery once across replicas, routes
//!   it, and turns an internal failure into "something went wrong (ref …)" for the user and a log line.
//! - `requesting`: slash commands, the request forms, and submitting a request with its approval card.
//! - `deciding`: Approve and Deny clicks, the deny form, running an approved query and posting its rows.
//! - `incidents`: the PagerDuty incident a request names: looked up before submitting, noted on when the request
//!   is approved and when it finishes.
//! - `break_glass`: `--break-glass` runs (at once, loudly), their Reviewed clicks and the alert when nobody
//!   reviewed one in time.
//! - `announce`: brings the card, its thread and the requester's DM in line with a request's state.
//! - `sweeping`: the background pass: expiries, stuck runs, reminders.
//!
//! The bot talks to the [`Engine`]'s public operations only, to Slack through [`SlackWeb`], and takes every text
//! from [`crate::messages`].

mod announce;
mod break_glass;
mod deciding;
mod dispatch;
mod incidents;
mod requesting;
mod sweeping;

use std::sync::Arc;

use tracing::warn;

use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::ids::{RequestId, SlackUserId};
use crate::messages::SlackMessage;
use crate::oncall::{RosterProvider, RosterReport};
use crate::slack::SlackWeb;

pub use dispatch::Work;

/// Settings of the Slack side.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// Channel id where approval cards are posted.
    pub approval_channel: String,
    /// Base of the links jitgate posts (the audit page), e.g. `https://jitgate.example.com`.
    pub public_url: String,
    /// Signs the audit page links, which the HTTP server only serves with a valid, unexpired signature.
    pub links: crate::links::AuditLinkSigner,
    /// Where outcomes and latencies are counted (rendered at `/metrics`).
    pub metrics: crate::telemetry::Metrics,
    /// Email of the PagerDuty user incident notes are written as; `None`: no notes.
    pub incident_notes_from: Option<String>,
    /// Break-glass limits (`[break_glass]`).
    pub break_glass: crate::engine::BreakGlassSettings,
    /// Mention put on break-glass cards and alerts (`break_glass.mention`).
    pub break_glass_mention: Option<String>,
}

/// The bot: one per replica.
pub struct Bot {
    engine: Arc<Engine>,
    slack: SlackWeb,
    roster: RosterProvider,
    settings: BotSettings,
    clock: SharedClock,
}

impl Bot {
    pub fn new(
        engine: Arc<Engine>,
        slack: SlackWeb,
        roster: RosterProvider,
        settings: BotSettings,
        clock: SharedClock,
    ) -> Bot {
        Bot { engine, slack, roster, settings, clock }
    }

    /// The engine this bot drives (for tests and operator tooling).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    fn audit_link(&self, id: &RequestId) -> String {
        self.settings.links.link(&self.settings.public_url, id, self.clock.now())
    }

    /// The approvers to name: everyone on the roster but the requester.
    fn approvers_now(report: Option<&RosterReport>, requester: &SlackUserId) -> Vec<SlackUserId> {
        report.map(|r| r.roster.users().filter(|u| *u != requester).cloned().collect()).unwrap_or_default()
    }

    /// Answers one user where they acted, visible to them only.
    async fn ephemeral(&self, channel: &str, user: &SlackUserId, message: SlackMessage) {
        if let Err(err) = self.slack.post_ephemeral(channel, user, &message).await {
            // The user may have typed in a channel the bot is not in: a DM still reaches them.
            warn!(error = %err, "ephemeral answer failed; sending it as a DM");
            if let Err(err) = self.slack.send_dm(user, &message).await {
                warn!(error = %err, "could not answer the user at all");
            }
        }
    }
}
