//! Break-glass on the Slack side: a `--break-glass` request runs at once and its card says so loudly in the
//! approval channel (with the configured mention); another on-call person clicks Reviewed on it; the incident it
//! names, if any, gets a note.

use std::collections::BTreeMap;

use tracing::error;

use super::Bot;
use super::announce::Happened;
use crate::engine::{BreakGlassOutcome, ExecuteResult, ReviewResult};
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::messages::{self, SlackMessage};
use crate::request::{BreakGlassRefusal, CardRef, FailureReason};
use crate::slack::event::Click;

impl Bot {
    /// A typed `/jit query … --break-glass`.
    #[allow(clippy::too_many_arguments)] // The command's parts, each passed on once.
    pub(super) async fn break_glass(
        &self,
        user: &SlackUserId,
        channel: &str,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
        unmask: &[String],
        incident: Option<String>,
    ) -> anyhow::Result<()> {
        let incident = self.look_up_incident(incident).await;
        let outcome = self
            .engine
            .break_glass(user, runbook, args, reason, unmask, incident, &self.roster, self.settings.break_glass)
            .await?;
        let (request, query) = match outcome {
            BreakGlassOutcome::Started { request, query } => (*request, *query),
            BreakGlassOutcome::Refused { runbook, refusal } => {
                self.ephemeral(channel, user, messages::break_glass_refused(Some(&runbook), &refusal)).await;
                return Ok(());
            }
            BreakGlassOutcome::NotSubmitted(outcome) => {
                self.ephemeral(channel, user, Self::submit_refusal(outcome)).await;
                return Ok(());
            }
            BreakGlassOutcome::Failed { request, reason } => {
                self.ephemeral(channel, user, messages::run_failed_reply(&reason)).await;
                error!(request_id = %request.id, reason = reason.code(), "break-glass could not be recorded");
                return Ok(());
            }
        };
        let card = messages::approval_card(&request, &self.card_context(&request, None));
        let posted = match self.slack.post_message(&self.settings.approval_channel, &card, None).await {
            Ok(posted) => posted,
            Err(err) => {
                // Never silently: a break-glass run the approval channel was not told of does not run.
                error!(request_id = %request.id, error = %err, "could not post the break-glass card; not running it");
                let problem = err.user_hint().unwrap_or_else(|| err.to_string());
                self.engine.abandon(&request.id, FailureReason::CardNotPosted { problem: problem.clone() }).await?;
                self.ephemeral(channel, user, messages::card_not_posted(&request, &problem)).await;
                return Ok(());
            }
        };
        let card_ref = CardRef { channel: posted.channel, ts: posted.ts };
        let request = self.engine.attach_card(&request.id, card_ref).await?.unwrap_or(request);
        self.ephemeral(channel, user, messages::break_glass_started(&request)).await;
        let note = messages::incident_note_break_glass(&request, &self.audit_link(&request.id));
        let noted = self.note_on_incident(&request, note, None);
        match self.engine.execute(request, query).await? {
            ExecuteResult::Executed { request, result, .. } => {
                self.note_finished(&request, noted);
                self.announce(&request, Happened::Ran(&result)).await;
            }
            ExecuteResult::Failed { request, reason, alarm } => {
                self.note_finished(&request, noted);
                if alarm {
                    let alert = messages::security_alert(&request, &reason);
                    self.raise_alert(&request, reason.code(), alert).await;
                }
                self.announce(&request, Happened::RunFailed(&reason)).await;
            }
        }
        Ok(())
    }

    /// A Reviewed click on a break-glass card.
    pub(super) async fn review(&self, click: &Click, id: &RequestId) -> anyhow::Result<()> {
        match self.engine.review(id, &click.user, &self.roster).await? {
            ReviewResult::NotFound => self.ephemeral(&click.channel, &click.user, messages::not_found(id)).await,
            ReviewResult::Refused { request, refusal } => {
                let message = match refusal {
                    // Reviewing is deciding: the same words as for an Approve click by someone not on call.
                    BreakGlassRefusal::NotOnCall(refusal) => messages::refused(&refusal, Some(id)),
                    refusal => {
                        let runbook = RunbookId::parse(request.query.runbook.as_str());
                        messages::break_glass_refused(runbook.as_ref(), &refusal)
                    }
                };
                self.ephemeral(&click.channel, &click.user, message).await;
            }
            ReviewResult::Done(request) => {
                self.refresh_card(&request, None).await;
                self.post_in_thread(&request, &messages::break_glass_reviewed(&request, &click.user)).await;
            }
        }
        Ok(())
    }

    /// The answer to a request refused by the ordinary rules.
    pub(super) fn submit_refusal(outcome: crate::engine::SubmitOutcome) -> SlackMessage {
        use crate::engine::SubmitOutcome;
        match outcome {
            SubmitOutcome::UnknownRunbook { typed, suggestion } => {
                messages::unknown_runbook(&typed, suggestion.as_ref())
            }
            SubmitOutcome::BadParameters { runbook, errors } => messages::bad_parameters(&runbook, &errors),
            SubmitOutcome::Unrunnable { runbook, reason } => messages::unrunnable(&runbook, &reason),
            SubmitOutcome::UnmaskRefused { runbook, error } => messages::unmask_refused(&runbook, &error),
            SubmitOutcome::Refused(refusal) => messages::refused(&refusal, None),
            SubmitOutcome::RateLimited { retry_after } => messages::rate_limited(retry_after),
            SubmitOutcome::IncidentRefused { runbook, refusal } => messages::incident_refused(&runbook, &refusal),
            // Only reached for a request that was made: never handed here.
            SubmitOutcome::Created(request) => messages::not_found(&request.id),
        }
    }
}
