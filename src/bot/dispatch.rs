//! The socket's [`EventHandler`]: the ack, then the work.
//!
//! `ack` runs on the socket task and decides only what needs no I/O: a command that does not parse or asks for
//! help is answered in the ack, a form is validated before Slack closes it. What it worked out travels to the work
//! in [`Work`], so a command is parsed once and a form validated once. `handle` runs in its own task: it first
//! claims the event's delivery key, so a redelivered or duplicated envelope is handled once across replicas, then
//! routes the event. A failure inside becomes "something went wrong (ref …)" for the user and an error line with
//! the same reference in the log.

use async_trait::async_trait;
use tracing::{Instrument, error, info, info_span, warn};

use super::Bot;
use crate::command::{self, Command, CommandError};
use crate::engine::RecordTampered;
use crate::ids::{RequestId, SlackUserId};
use crate::messages::{self, SlackMessage};
use crate::slack::event::{Click, SlackEvent, SlashCommand, ViewSubmission};
use crate::slack::socket::{Ack, EventHandler};

/// An event on its way from the ack to the work, with what the ack already worked out.
pub struct Work {
    /// The same on every delivery of one user action.
    key: String,
    user: SlackUserId,
    /// Where an internal failure is reported: the channel of a command or click; by DM otherwise.
    channel: Option<String>,
    action: Action,
}

enum Action {
    /// A slash command, parsed by the ack.
    Command(SlashCommand, Result<Command, CommandError>),
    Click(Click),
    /// A submitted form; `accepted` is false when the ack refused it (Slack then kept it open with the errors).
    View {
        view: ViewSubmission,
        accepted: bool,
    },
    /// Nothing to do (a form closed without submitting).
    Nothing,
}

#[async_trait]
impl EventHandler for Bot {
    type Work = Work;

    fn ack(&self, event: SlackEvent) -> (Ack, Work) {
        let (key, user) = (event.delivery_key(), event.user().clone());
        let (ack, channel, action) = match event {
            SlackEvent::SlashCommand(c) => {
                let parsed = command::parse(&c.text);
                let ack = match &parsed {
                    Err(err) => Ack::Reply(messages::command_error(err)),
                    Ok(Command::Help) => Ack::Reply(messages::help()),
                    Ok(_) => Ack::Empty,
                };
                (ack, Some(c.channel.clone()), Action::Command(c, parsed))
            }
            SlackEvent::Click(c) => (Ack::Empty, Some(c.channel.clone()), Action::Click(c)),
            SlackEvent::ViewSubmitted(view) => {
                let ack = self.ack_form(&view);
                (ack.clone(), None, Action::View { view, accepted: ack == Ack::Empty })
            }
            SlackEvent::ViewClosed(_) => (Ack::Empty, None, Action::Nothing),
        };
        (ack, Work { key, user, channel, action })
    }

    async fn handle(&self, work: Work) {
        let Work { key, user, channel, action } = work;
        let span = info_span!("event", user = %user, key = %key, trace_id = tracing::field::Empty);
        // Every log line of this event names its trace, when traces are on.
        crate::telemetry::traces::record_trace_id(&span);
        async {
            match self.engine.claim_delivery(&key).await {
                Ok(true) => {}
                Ok(false) => return info!("duplicate delivery; already handled"),
                Err(err) => {
                    // Fail closed: without the de-dup record we cannot know the action is not handled elsewhere.
                    let reference = RequestId::generate();
                    error!(reference = %reference, error = format!("{err:#}"), "cannot claim the event; not acting on it");
                    return self.tell_internal_error(&user, channel.as_deref(), &reference).await;
                }
            }
            let result = match action {
                Action::Command(c, parsed) => self.on_command(c, parsed).await,
                Action::Click(c) => self.on_click(c).await,
                Action::View { view, accepted } => self.on_form(view, accepted).await,
                Action::Nothing => Ok(()),
            };
            if let Err(err) = result {
                // A record changed outside jitgate is a refusal with an alert, not an internal error.
                if let Some(tampered) = err.downcast_ref::<RecordTampered>() {
                    let alert = messages::tampered_record_alert(&tampered.id);
                    self.raise_alert_about(&tampered.id, "record_tampered", alert).await;
                    let message = messages::tampered_record(&tampered.id);
                    return match channel.as_deref() {
                        Some(channel) => self.ephemeral(channel, &user, message).await,
                        None => self.dm_best_effort(&user, message).await,
                    };
                }
                let reference = RequestId::generate();
                error!(reference = %reference, user = %user, error = format!("{err:#}"), "handling the event failed");
                self.tell_internal_error(&user, channel.as_deref(), &reference).await;
            }
        }
        .instrument(span)
        .await
    }
}

impl Bot {
    async fn tell_internal_error(&self, user: &SlackUserId, channel: Option<&str>, reference: &RequestId) {
        let message = SlackMessage { text: messages::internal_error(reference.as_str()), blocks: Vec::new() };
        match channel {
            Some(channel) => self.ephemeral(channel, user, message).await,
            None => self.dm_best_effort(user, message).await,
        }
    }

    async fn dm_best_effort(&self, user: &SlackUserId, message: SlackMessage) {
        if let Err(err) = self.slack.send_dm(user, &message).await {
            warn!(error = %err, "could not report the failure to the user");
        }
    }
}
