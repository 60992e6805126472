//! Asking for a query: the `/jit` commands, the request forms (runbook picker, parameters) and submitting a request
//! with its approval card.

use std::collections::BTreeMap;

use tracing::{error, warn};

use super::Bot;
use crate::command::{Command, CommandError};
use crate::engine::{DecisionResult, FormProblem, SubmitOutcome};
use crate::ids::{RunbookId, SlackUserId};
use crate::messages::{self, SlackMessage};
use crate::request::{CardRef, FailureReason};
use crate::slack::event::{SlashCommand, ViewSubmission};
use crate::slack::socket::Ack;

/// Requests shown by `/jit status` without an id.
const RECENT_REQUESTS: usize = 5;

impl Bot {
    pub(super) async fn on_command(
        &self,
        c: SlashCommand,
        parsed: Result<Command, CommandError>,
    ) -> anyhow::Result<()> {
        match parsed {
            // Already answered in the ack; the audit trail still records the attempt.
            Err(err) => self.engine.refuse_malformed_command(&c.user, &c.text, &err).await,
            Ok(Command::Help) => {}
            Ok(Command::Query { runbook: None, .. }) => {
                let view = messages::runbook_picker_view(self.engine.runbooks(), &c.channel);
                self.slack.open_view(&c.trigger_id, view).await?;
            }
            Ok(Command::Query { runbook: Some(runbook), args, reason, unmask, incident, break_glass }) => {
                let known = RunbookId::parse(&runbook).and_then(|id| self.engine.runbooks().get(&id));
                match known {
                    // Break-glass never opens a form: it is typed in full, reason included.
                    _ if break_glass => {
                        self.break_glass(&c.user, &c.channel, &runbook, &args, reason, &unmask, incident).await?;
                    }
                    // Something missing: the form asks for it, keeping what was typed.
                    Some(rb)
                        if rb.parameters().iter().any(|p| p.is_required() && !args.contains_key(p.name()))
                            || (rb.approval().require_reason && reason.is_none()) =>
                    {
                        let view = messages::query_view(rb, &args, reason.as_deref(), &c.channel);
                        self.slack.open_view(&c.trigger_id, view).await?;
                    }
                    _ => self.submit(&c.user, &c.channel, &runbook, &args, reason, &unmask, incident).await?,
                }
            }
            Ok(Command::Runbooks) => {
                self.ephemeral(&c.channel, &c.user, messages::runbooks_list(self.engine.runbooks())).await;
            }
            Ok(Command::Status { id: Some(id) }) => {
                let message = match self.engine.status(&id).await? {
                    Some(request) => messages::status(&request),
                    None => messages::not_found(&id),
                };
                self.ephemeral(&c.channel, &c.user, message).await;
            }
            Ok(Command::Status { id: None }) => {
                let recent = self.engine.recent_requests(&c.user, RECENT_REQUESTS).await?;
                self.ephemeral(&c.channel, &c.user, messages::recent(&recent)).await;
            }
            Ok(Command::Cancel { id }) => {
                let message = match self.engine.cancel(&id, &c.user).await? {
                    DecisionResult::Done(request) => {
                        // The requester cancelled it themselves: they are answered here, not by DM.
                        self.announce(&request, super::announce::Happened::Changed).await;
                        SlackMessage { text: messages::requester_update(&request), blocks: Vec::new() }
                    }
                    DecisionResult::Refused { refusal, .. } => messages::refused(&refusal, Some(&id)),
                    DecisionResult::NotFound => messages::not_found(&id),
                };
                self.ephemeral(&c.channel, &c.user, message).await;
            }
        }
        Ok(())
    }

    /// A complete request: create it, post its card, confirm to the requester.
    #[allow(clippy::too_many_arguments)] // The command's parts, each passed on once.
    async fn submit(
        &self,
        user: &SlackUserId,
        channel: &str,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
        unmask: &[String],
        incident: Option<String>,
    ) -> anyhow::Result<()> {
        // The incident named with --incident is checked first: the request records what PagerDuty said of it.
        let incident = self.look_up_incident(incident).await;
        // Who is on call only feeds the card, so it is asked while the request is checked, stored and audited
        // rather than after: the card then waits for the longer of the two, not their sum. A refused request
        // wastes at most one roster lookup, which the roster cache absorbs.
        let policy = RunbookId::parse(runbook).and_then(|id| self.engine.runbooks().get(&id)).map(|rb| rb.approval());
        let roster = async {
            match policy {
                Some(policy) => Some(self.roster.roster_for(policy).await),
                None => None,
            }
        };
        let submitting = self.engine.submit_with(user, runbook, args, reason, unmask, incident);
        let (submitted, roster) = tokio::join!(submitting, roster);
        let request = match submitted? {
            SubmitOutcome::Created(request) => *request,
            refused => {
                self.ephemeral(channel, user, Self::submit_refusal(refused)).await;
                return Ok(());
            }
        };
        // Who is on call is shown on the card; if it cannot be known now, the card says so and approvals are
        // checked at click time anyway.
        // The stored request's policy is the runbook's; asked again only if the runbook changed in between.
        let roster = match roster {
            Some(roster) if policy == Some(&request.policy) => roster,
            _ => self.roster.roster_for(&request.policy).await,
        };
        let report = match roster {
            Ok(report) => Some(report),
            Err(err) => {
                warn!(request_id = %request.id, error = %err, "on-call roster unavailable while posting the card");
                None
            }
        };
        let card = messages::approval_card(&request, &self.card_context(&request, report.as_ref()));
        let posted = match self.slack.post_message(&self.settings.approval_channel, &card, None).await {
            Ok(posted) => posted,
            Err(err) => {
                error!(request_id = %request.id, error = %err, "could not post the approval card");
                let problem = err.user_hint().unwrap_or_else(|| err.to_string());
                let reason = FailureReason::CardNotPosted { problem: problem.clone() };
                self.engine.abandon(&request.id, reason).await?;
                self.ephemeral(channel, user, messages::card_not_posted(&request, &problem)).await;
                return Ok(());
            }
        };
        let card_ref = CardRef { channel: posted.channel.clone(), ts: posted.ts.clone() };
        let stored = self.engine.attach_card(&request.id, card_ref).await?.unwrap_or(request);
        let approvers = Self::approvers_now(report.as_ref(), &stored.requester);
        let confirmation = SlackMessage { text: messages::submitted(&stored, &approvers), blocks: Vec::new() };
        self.ephemeral(channel, user, confirmation).await;
        Ok(())
    }

    /// The ack of a submitted form: the runbook picker turns into that runbook's form, a query form is validated
    /// before Slack closes it (errors are shown next to their inputs).
    pub(super) fn ack_form(&self, view: &ViewSubmission) -> Ack {
        match view.callback_id.as_str() {
            messages::QUERY_VIEW => self.validate_query_form(view),
            messages::PICK_VIEW => {
                let chosen = view.values.get(messages::RUNBOOK_BLOCK).and_then(|r| RunbookId::parse(r));
                match chosen.and_then(|id| self.engine.runbooks().get(&id)) {
                    Some(runbook) => {
                        Ack::ViewUpdate(messages::query_view(runbook, &BTreeMap::new(), None, &view.private_metadata))
                    }
                    None => Ack::ViewErrors(BTreeMap::from([(
                        messages::RUNBOOK_BLOCK.to_owned(),
                        messages::runbook_not_picked(),
                    )])),
                }
            }
            _ => Ack::Empty,
        }
    }

    fn validate_query_form(&self, view: &ViewSubmission) -> Ack {
        let Ok(meta) = serde_json::from_str::<messages::QueryViewMetadata>(&view.private_metadata) else {
            return Ack::Empty;
        };
        let mut args = view.values.clone();
        let reason = args.remove(messages::REASON_BLOCK);
        let Some(problems) = self.engine.validate_form(&meta.runbook, &args, reason.as_deref()) else {
            return Ack::Empty;
        };
        let mut errors = BTreeMap::new();
        for problem in problems {
            // One error per input: the first one found is the one to fix first.
            let (block, text) = match &problem {
                FormProblem::Parameter(err) => (err.parameter().to_owned(), err.to_string()),
                FormProblem::ReasonMissing => (messages::REASON_BLOCK.to_owned(), messages::reason_missing()),
            };
            errors.entry(block).or_insert(text);
        }
        if errors.is_empty() { Ack::Empty } else { Ack::ViewErrors(errors) }
    }

    /// A submitted form, after its ack.
    pub(super) async fn on_form(&self, view: ViewSubmission, accepted: bool) -> anyhow::Result<()> {
        match view.callback_id.as_str() {
            // A form refused in its ack stayed open in Slack: nothing to do until it comes back valid.
            messages::QUERY_VIEW if accepted => {
                let Ok(meta) = serde_json::from_str::<messages::QueryViewMetadata>(&view.private_metadata) else {
                    warn!("query form without its metadata; ignored");
                    return Ok(());
                };
                let mut args = view.values.clone();
                let reason = args.remove(messages::REASON_BLOCK);
                // The form has no incident or unmask field: a runbook that requires an incident is refused with the
                // way to name it.
                self.submit(&view.user, &meta.channel, &meta.runbook, &args, reason, &[], None).await
            }
            messages::DENY_VIEW => self.on_deny_form(view).await,
            _ => Ok(()),
        }
    }
}
