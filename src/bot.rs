//! The Slack-facing side of the engine: each [`SlackEvent`] handled end to end, from the click to the card.
//!
//! `ack` runs on the socket task and only decides what can be decided without I/O (parse errors, help, modal
//! validation). `handle` runs in its own task: it first claims the event's delivery key in Redis, so a redelivered
//! or duplicated envelope is handled once across replicas, then calls the [`Engine`] and turns each outcome into
//! Slack calls through [`SlackWeb`] with texts from [`crate::messages`]. A failure inside becomes "something went
//! wrong (ref …)" for the user and an error line with the same reference in the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{Instrument, error, info_span, warn};

use crate::audit::AttemptedAction;
use crate::clock::SharedClock;
use crate::command::{self, Command};
use crate::engine::{ApproveResult, DecisionResult, Engine, ExecuteResult, SubmitOutcome};
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::messages::{self, CardContext, SlackMessage};
use crate::oncall::{RosterProvider, RosterReport};
use crate::request::{self, AccessRequest, CardRef};
use crate::slack::event::{Click, SlackEvent, SlashCommand, ViewSubmission};
use crate::slack::socket::{Ack, EventHandler};
use crate::slack::{MessageRef, SlackWeb};

/// How long a delivery key is remembered: far longer than Slack redelivers an envelope.
const DELIVERY_MEMORY: Duration = Duration::from_secs(3600);
/// Requests shown by `/jit status` without an id.
const RECENT_REQUESTS: usize = 5;
/// Requests the sweeper handles per pass.
const SWEEP_BATCH: usize = 100;

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

    /// The approvers to name on a card: everyone on the roster but the requester.
    fn approvers_now(report: Option<&RosterReport>, requester: &SlackUserId) -> Vec<SlackUserId> {
        report.map(|r| r.roster.users().filter(|u| *u != requester).cloned().collect()).unwrap_or_default()
    }

    fn card_context(&self, request: &AccessRequest, report: Option<&RosterReport>) -> CardContext {
        let description = RunbookId::parse(request.query.runbook.as_str())
            .and_then(|id| self.engine.runbooks().get(&id).map(|r| r.description().to_owned()))
            .unwrap_or_default();
        CardContext {
            description,
            approvers_now: Self::approvers_now(report, &request.requester),
            unmapped: report
                .map(|r| r.unmapped.iter().map(|u| format!("{} <{}>", u.name, u.email)).collect())
                .unwrap_or_default(),
            audit_link: Some(self.audit_link(&request.id)),
        }
    }

    /// Counts a request that reached an end, and how long its decision took.
    fn record_outcome(&self, request: &AccessRequest) {
        let now = self.clock.now();
        if let request::Status::Denied { at, .. } = &request.status {
            self.settings.metrics.decision_latency((*at - request.created_at).as_seconds_f64());
        }
        if request.state().is_final() {
            self.settings.metrics.request_outcome(request.query.runbook.as_str(), request.state().as_str());
        }
        if let request::Status::Succeeded { .. } = &request.status
            && let Some(last) = request.approvals.last()
        {
            self.settings.metrics.execution_latency((now - last.at).as_seconds_f64());
        }
    }

    /// Posts a fail-safe alert in the approval channel and counts it (the failure itself is already audited).
    async fn raise_alert(&self, request: &AccessRequest, kind: &'static str, message: SlackMessage) {
        self.settings.metrics.security_alert(kind);
        error!(request_id = %request.id, kind, "security alert raised");
        if let Err(err) = self.slack.post_message(&self.settings.approval_channel, &message, None).await {
            error!(request_id = %request.id, error = %err, "could not post the security alert");
        }
    }

    /// Updates the request's card to its current state. Best effort: logged, the requester is told separately.
    async fn refresh_card(&self, request: &AccessRequest, report: Option<&RosterReport>) {
        let Some(card) = &request.card else { return };
        let message = messages::approval_card(request, &self.card_context(request, report));
        let at = MessageRef { channel: card.channel.clone(), ts: card.ts.clone() };
        if let Err(err) = self.slack.update_message(&at, &message).await {
            warn!(request_id = %request.id, error = %err, "could not update the approval card");
        }
    }

    /// Tells the requester what happened to their request, by DM.
    async fn tell_requester(&self, request: &AccessRequest) {
        let message = SlackMessage { text: messages::requester_update(request), blocks: Vec::new() };
        if let Err(err) = self.slack.send_dm(&request.requester, &message).await {
            warn!(request_id = %request.id, error = %err, "could not tell the requester");
        }
    }

    async fn ephemeral(&self, channel: &str, user: &SlackUserId, message: SlackMessage) {
        if let Err(err) = self.slack.post_ephemeral(channel, user, &message).await {
            // The user may have typed in a channel the bot is not in: a DM still reaches them.
            warn!(error = %err, "ephemeral answer failed; sending it as a DM");
            if let Err(err) = self.slack.send_dm(user, &message).await {
                warn!(error = %err, "could not answer the user at all");
            }
        }
    }

    async fn on_command(&self, c: SlashCommand) -> anyhow::Result<()> {
        let parsed = command::parse(&c.text);
        match parsed {
            // Already answered in the ack; the audit trail still records the attempt.
            Err(err) => {
                let attempted = AttemptedAction::Request { runbook: c.text.chars().take(200).collect() };
                self.engine.record_refusal(None, &c.user, attempted, format!("malformed_command: {err}")).await;
            }
            Ok(Command::Help) => {}
            Ok(Command::Query { runbook: None, .. }) => {
                let view = messages::runbook_picker_view(self.engine.runbooks(), &c.channel);
                self.slack.open_view(&c.trigger_id, view).await?;
            }
            Ok(Command::Query { runbook: Some(runbook), args, reason }) => {
                let known = RunbookId::parse(&runbook).and_then(|id| self.engine.runbooks().get(&id));
                match known {
                    // Something missing: the form asks for it, keeping what was typed.
                    Some(rb)
                        if rb.parameters().iter().any(|p| p.is_required() && !args.contains_key(p.name()))
                            || (rb.approval().require_reason && reason.is_none()) =>
                    {
                        let view = messages::query_view(rb, &args, reason.as_deref(), &c.channel);
                        self.slack.open_view(&c.trigger_id, view).await?;
                    }
                    _ => self.submit(&c.user, &c.channel, &runbook, &args, reason).await?,
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
                        self.record_outcome(&request);
                        self.refresh_card(&request, None).await;
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
    async fn submit(
        &self,
        user: &SlackUserId,
        channel: &str,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let answer = match self.engine.submit(user, runbook, args, reason).await? {
            SubmitOutcome::Created(request) => Ok(*request),
            SubmitOutcome::UnknownRunbook { typed, suggestion } => {
                Err(messages::unknown_runbook(&typed, suggestion.as_ref()))
            }
            SubmitOutcome::BadParameters { runbook, errors } => Err(messages::bad_parameters(&runbook, &errors)),
            SubmitOutcome::Unrunnable { runbook, reason } => Err(messages::unrunnable(&runbook, &reason)),
            SubmitOutcome::Refused(refusal) => Err(messages::refused(&refusal, None)),
            SubmitOutcome::RateLimited { retry_after } => Err(messages::rate_limited(retry_after)),
        };
        let request = match answer {
            Ok(request) => request,
            Err(refusal) => {
                self.ephemeral(channel, user, refusal).await;
                return Ok(());
            }
        };
        // Who is on call is shown on the card; if it cannot be known now, the card says so and approvals are
        // checked at click time anyway.
        let report = match self.roster.roster_for(&request.policy).await {
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
                self.engine.abandon(&request.id, &format!("the approval card could not be posted: {problem}")).await?;
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

    async fn on_click(&self, click: Click) -> anyhow::Result<()> {
        let Some(id) = RequestId::parse(&click.value) else {
            warn!(value = %click.value, "click on a button without a request id; ignored");
            return Ok(());
        };
        match click.action_id.as_str() {
            messages::APPROVE_ACTION => self.approve(&click, &id).await,
            messages::DENY_ACTION => self.offer_deny(&click, &id).await,
            other => {
                warn!(action_id = other, "click on an unknown action; ignored");
                Ok(())
            }
        }
    }

    /// The roster for a request's policy, or the refusal already told to the clicker (fail closed).
    async fn roster_or_refuse(
        &self,
        request: &AccessRequest,
        click: &Click,
        attempted: AttemptedAction,
    ) -> Option<RosterReport> {
        match self.roster.roster_for(&request.policy).await {
            Ok(report) => Some(report),
            Err(err) => {
                warn!(request_id = %request.id, error = %err, "on-call roster unavailable; refusing the decision");
                self.engine
                    .record_refusal(Some(request.id.clone()), &click.user, attempted, "roster_unavailable".into())
                    .await;
                self.ephemeral(&click.channel, &click.user, messages::roster_unavailable(err.user_message())).await;
                None
            }
        }
    }

    async fn approve(&self, click: &Click, id: &RequestId) -> anyhow::Result<()> {
        let Some(current) = self.engine.status(id).await? else {
            self.ephemeral(&click.channel, &click.user, messages::not_found(id)).await;
            return Ok(());
        };
        // Re-checked at click time: whoever was on call when the card was posted may not be now.
        let Some(report) = self.roster_or_refuse(&current, click, AttemptedAction::Approve).await else {
            return Ok(());
        };
        match self.engine.approve(id, &click.user, &report.roster).await? {
            ApproveResult::NotFound => self.ephemeral(&click.channel, &click.user, messages::not_found(id)).await,
            ApproveResult::Refused { refusal, .. } => {
                self.ephemeral(&click.channel, &click.user, messages::refused(&refusal, Some(id))).await
            }
            ApproveResult::Recorded { request, .. } => {
                self.refresh_card(&request, Some(&report)).await;
                self.tell_requester(&request).await;
            }
            ApproveResult::Failed { request, .. } => {
                self.record_outcome(&request);
                self.refresh_card(&request, None).await;
                self.tell_requester(&request).await;
            }
            ApproveResult::Approved { request, query } => {
                // "Approved by …, starting" while the query runs.
                self.settings.metrics.decision_latency((self.clock.now() - request.created_at).as_seconds_f64());
                self.refresh_card(&request, None).await;
                match self.engine.execute(*request, *query).await? {
                    ExecuteResult::Executed { request, result, .. } => {
                        self.record_outcome(&request);
                        self.refresh_card(&request, None).await;
                        self.post_results(&request, &result).await;
                        self.tell_requester(&request).await;
                    }
                    ExecuteResult::Failed { request, reason, alarm } => {
                        self.record_outcome(&request);
                        if alarm {
                            self.raise_alert(
                                &request,
                                "unacceptable_credentials",
                                messages::security_alert(&request, &reason),
                            )
                            .await;
                        }
                        self.refresh_card(&request, None).await;
                        if let Some(card) = &request.card {
                            let text = format!("❌ {}", messages::escape(&reason));
                            let reply = SlackMessage { text, blocks: Vec::new() };
                            if let Err(err) = self.slack.post_message(&card.channel, &reply, Some(&card.ts)).await {
                                warn!(request_id = %request.id, error = %err, "could not post the failure in the thread");
                            }
                        }
                        self.tell_requester(&request).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Rows in the card's thread; the full result as CSV and JSON files when it does not fit inline.
    async fn post_results(&self, request: &AccessRequest, result: &crate::aws::ExecutionResult) {
        let Some(card) = &request.card else { return };
        let large = result.rows.len() > messages::INLINE_ROWS;
        let reply = messages::results_reply(request, result, &self.audit_link(&request.id), large);
        let mut problem = None;
        if let Err(err) = self.slack.post_message(&card.channel, &reply, Some(&card.ts)).await {
            error!(request_id = %request.id, error = %err, "could not post the results");
            problem = Some(err.user_hint().unwrap_or_else(|| err.to_string()));
        }
        if large && problem.is_none() {
            let columns = messages::columns(request, &result.rows);
            let files = [
                (format!("{}.csv", request.id), messages::results_csv(&columns, &result.rows)),
                (format!("{}.json", request.id), messages::results_json(&result.rows)),
            ];
            for (name, body) in files {
                if let Err(err) =
                    self.slack.upload_file(&card.channel, Some(&card.ts), &name, &name, body.as_bytes()).await
                {
                    error!(request_id = %request.id, error = %err, "could not upload the results file");
                    problem = Some(err.user_hint().unwrap_or_else(|| err.to_string()));
                    break;
                }
            }
        }
        let Some(problem) = problem else { return };
        if let Err(err) = self.slack.send_dm(&request.requester, &messages::results_not_posted(request, &problem)).await
        {
            warn!(request_id = %request.id, error = %err, "could not tell the requester either");
        }
    }

    /// Deny asks for an optional reason first, but only of someone who may decide.
    async fn offer_deny(&self, click: &Click, id: &RequestId) -> anyhow::Result<()> {
        let Some(current) = self.engine.status(id).await? else {
            self.ephemeral(&click.channel, &click.user, messages::not_found(id)).await;
            return Ok(());
        };
        let Some(report) = self.roster_or_refuse(&current, click, AttemptedAction::Deny).await else { return Ok(()) };
        if let Err(refusal) = request::deny(&current, &click.user, None, &report.roster, self.clock.now()) {
            let reason = crate::audit::refusal_code(&refusal);
            self.engine.record_refusal(Some(id.clone()), &click.user, AttemptedAction::Deny, reason).await;
            self.ephemeral(&click.channel, &click.user, messages::refused(&refusal, Some(id))).await;
            return Ok(());
        }
        self.slack.open_view(&click.trigger_id, messages::deny_view(&current)).await?;
        Ok(())
    }

    async fn on_view(&self, view: ViewSubmission) -> anyhow::Result<()> {
        match view.callback_id.as_str() {
            messages::QUERY_VIEW => {
                // A form refused in its ack stayed open in Slack: nothing to do until it comes back valid.
                if self.validate_query_view(&view) != Ack::Empty {
                    return Ok(());
                }
                let Ok(meta) = serde_json::from_str::<messages::QueryViewMetadata>(&view.private_metadata) else {
                    warn!("query form without its metadata; ignored");
                    return Ok(());
                };
                let mut args = view.values.clone();
                let reason = args.remove(messages::REASON_BLOCK);
                self.submit(&view.user, &meta.channel, &meta.runbook, &args, reason).await
            }
            messages::DENY_VIEW => {
                let Some(id) = RequestId::parse(&view.private_metadata) else { return Ok(()) };
                let Some(current) = self.engine.status(&id).await? else { return Ok(()) };
                let channel =
                    current.card.as_ref().map(|c| c.channel.clone()).unwrap_or(self.settings.approval_channel.clone());
                let click = Click {
                    user: view.user.clone(),
                    channel: channel.clone(),
                    message_ts: String::new(),
                    action_id: messages::DENY_ACTION.into(),
                    value: id.to_string(),
                    trigger_id: String::new(),
                    action_ts: String::new(),
                };
                let Some(report) = self.roster_or_refuse(&current, &click, AttemptedAction::Deny).await else {
                    return Ok(());
                };
                let reason = view.values.get(messages::REASON_BLOCK).cloned();
                match self.engine.deny(&id, &view.user, reason, &report.roster).await? {
                    DecisionResult::Done(request) => {
                        self.record_outcome(&request);
                        self.refresh_card(&request, None).await;
                        self.tell_requester(&request).await;
                    }
                    DecisionResult::Refused { refusal, .. } => {
                        self.ephemeral(&channel, &view.user, messages::refused(&refusal, Some(&id))).await
                    }
                    DecisionResult::NotFound => self.ephemeral(&channel, &view.user, messages::not_found(&id)).await,
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One pass of the background sweeper: expire what is due, remind half-way. Safe on every replica at once.
    pub async fn sweep_once(&self) -> anyhow::Result<()> {
        for request in self.engine.expire_due(SWEEP_BATCH).await? {
            self.record_outcome(&request);
            self.refresh_card(&request, None).await;
            self.tell_requester(&request).await;
        }
        for request in self.engine.fail_stuck(SWEEP_BATCH).await? {
            self.record_outcome(&request);
            self.raise_alert(&request, "stuck_run", messages::stuck_run_alert(&request)).await;
            self.refresh_card(&request, None).await;
            self.tell_requester(&request).await;
        }
        self.settings.metrics.pending(self.engine.pending_count().await?);
        for request in self.engine.remind_due(SWEEP_BATCH).await? {
            let Some(card) = &request.card else { continue };
            let report = self.roster.roster_for(&request.policy).await.ok();
            let approvers = Self::approvers_now(report.as_ref(), &request.requester);
            if let Err(err) =
                self.slack.post_message(&card.channel, &messages::reminder(&request, &approvers), Some(&card.ts)).await
            {
                warn!(request_id = %request.id, error = %err, "could not post the reminder");
            }
        }
        Ok(())
    }

    /// Validates a query form before Slack closes it: errors are shown next to their inputs.
    fn validate_query_view(&self, view: &ViewSubmission) -> Ack {
        let Ok(meta) = serde_json::from_str::<messages::QueryViewMetadata>(&view.private_metadata) else {
            return Ack::Empty;
        };
        let Some(runbook) = RunbookId::parse(&meta.runbook).and_then(|id| self.engine.runbooks().get(&id)) else {
            return Ack::Empty;
        };
        let mut args = view.values.clone();
        let reason = args.remove(messages::REASON_BLOCK);
        let mut errors = BTreeMap::new();
        if let Err(param_errors) = runbook.render(&args, self.engine.region()) {
            for err in param_errors {
                errors.entry(err.parameter().to_owned()).or_insert_with(|| err.to_string());
            }
        }
        if runbook.approval().require_reason && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            errors.insert(
                messages::REASON_BLOCK.to_owned(),
                "A reason is required (an incident or ticket id helps).".into(),
            );
        }
        if errors.is_empty() { Ack::Empty } else { Ack::ViewErrors(errors) }
    }
}

#[async_trait]
impl EventHandler for Bot {
    fn ack(&self, event: &SlackEvent) -> Ack {
        match event {
            SlackEvent::SlashCommand(c) => match command::parse(&c.text) {
                Err(err) => Ack::Reply(messages::command_error(&err)),
                Ok(Command::Help) => Ack::Reply(messages::help()),
                Ok(_) => Ack::Empty,
            },
            SlackEvent::ViewSubmitted(view) if view.callback_id == messages::QUERY_VIEW => {
                self.validate_query_view(view)
            }
            SlackEvent::ViewSubmitted(view) if view.callback_id == messages::PICK_VIEW => {
                let chosen = view.values.get(messages::RUNBOOK_BLOCK).and_then(|r| RunbookId::parse(r));
                match chosen.and_then(|id| self.engine.runbooks().get(&id)) {
                    Some(runbook) => {
                        Ack::ViewUpdate(messages::query_view(runbook, &BTreeMap::new(), None, &view.private_metadata))
                    }
                    None => Ack::ViewErrors(BTreeMap::from([(
                        messages::RUNBOOK_BLOCK.to_owned(),
                        "Pick a runbook.".to_owned(),
                    )])),
                }
            }
            SlackEvent::Click(_) | SlackEvent::ViewSubmitted(_) | SlackEvent::ViewClosed(_) => Ack::Empty,
        }
    }

    async fn handle(&self, event: SlackEvent) {
        let key = event.delivery_key();
        let span = info_span!("event", user = %event.user(), key = %key);
        async {
            match self.engine.store().first_delivery(&key, DELIVERY_MEMORY).await {
                Ok(true) => {}
                Ok(false) => return tracing::info!("duplicate delivery; already handled"),
                Err(err) => {
                    // Fail closed: without the de-dup record we cannot know the action is not handled elsewhere.
                    error!(error = %err, "cannot claim the event; not acting on it");
                    return self.tell_internal_error(&event, &RequestId::generate()).await;
                }
            }
            let user = event.user().clone();
            let result = match event.clone() {
                SlackEvent::SlashCommand(c) => self.on_command(c).await,
                SlackEvent::Click(c) => self.on_click(c).await,
                SlackEvent::ViewSubmitted(v) => self.on_view(v).await,
                SlackEvent::ViewClosed(_) => Ok(()),
            };
            if let Err(err) = result {
                let reference = RequestId::generate();
                error!(reference = %reference, user = %user, error = format!("{err:#}"), "handling the event failed");
                self.tell_internal_error(&event, &reference).await;
            }
        }
        .instrument(span)
        .await
    }
}

impl Bot {
    async fn tell_internal_error(&self, event: &SlackEvent, reference: &RequestId) {
        let message = SlackMessage { text: messages::internal_error(reference.as_str()), blocks: Vec::new() };
        let channel = match event {
            SlackEvent::SlashCommand(c) => Some(c.channel.as_str()),
            SlackEvent::Click(c) => Some(c.channel.as_str()),
            SlackEvent::ViewSubmitted(_) | SlackEvent::ViewClosed(_) => None,
        };
        match channel {
            Some(channel) => self.ephemeral(channel, event.user(), message).await,
            None => {
                if let Err(err) = self.slack.send_dm(event.user(), &message).await {
                    warn!(error = %err, "could not report the failure to the user");
                }
            }
        }
    }
}
