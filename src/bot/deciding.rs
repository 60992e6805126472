//! Deciding on a request: Approve and Deny clicks, the deny form, running the query once it is approved, and
//! posting its rows.
//!
//! Who may decide is the engine's call ([`Engine::may_decide`](crate::engine::Engine::may_decide)), asked the same
//! way by a click and by the deny form: it re-fetches the on-call roster (fail closed) and audits any refusal; the
//! bot only renders the answer.

use tracing::{Instrument as _, error, info_span, warn};

use super::Bot;
use super::announce::Happened;
use crate::engine::{ApproveResult, Decision, DecisionResult, ExecuteResult, MayDecide};
use crate::ids::{RequestId, SlackUserId};
use crate::messages;
use crate::oncall::RosterReport;
use crate::request::{AccessRequest, ExecutionResult, Refusal};
use crate::result_rows;
use crate::slack::UploadContent;
use crate::slack::event::{Click, ViewSubmission};

impl Bot {
    pub(super) async fn on_click(&self, click: Click) -> anyhow::Result<()> {
        let Some((id, shown)) = messages::button_value(&click.value) else {
            warn!(value = %click.value, "click on a button without a request id; ignored");
            return Ok(());
        };
        match click.action_id.as_str() {
            // A card from before approvals carried their fingerprint shows nothing to bind to: never counted.
            messages::APPROVE_ACTION => self.approve(&click, &id, shown.unwrap_or_default()).await,
            messages::DENY_ACTION => self.offer_deny(&click, &id).await,
            messages::REVIEW_ACTION => self.review(&click, &id).await,
            other => {
                warn!(action_id = other, "click on an unknown action; ignored");
                Ok(())
            }
        }
    }

    /// The engine's answer to "may this user decide now?": the request and roster when yes; otherwise the user is
    /// told why, where they clicked (`click_channel`) or, for a form, where the card is, and `None` is returned.
    async fn may_decide(
        &self,
        id: &RequestId,
        user: &SlackUserId,
        decision: Decision,
        click_channel: Option<&str>,
    ) -> anyhow::Result<Option<(Box<AccessRequest>, Box<RosterReport>)>> {
        let (request, message) = match self.engine.may_decide(id, user, decision, &self.roster).await? {
            MayDecide::Yes { request, report } => return Ok(Some((request, report))),
            MayDecide::NotFound => {
                // A click is told; a form whose request is gone has nothing left to answer.
                if let Some(channel) = click_channel {
                    self.ephemeral(channel, user, messages::not_found(id)).await;
                }
                return Ok(None);
            }
            MayDecide::Refused { request, refusal } => (request, messages::refused(&refusal, Some(id))),
            MayDecide::RosterUnavailable { request, error } => {
                (request, messages::roster_unavailable(error.user_message()))
            }
        };
        let channel = click_channel.map_or_else(|| self.card_channel(&request), str::to_owned);
        self.ephemeral(&channel, user, message).await;
        Ok(None)
    }

    /// Where a request's card is: a form has no channel of its own, so its answers go there.
    fn card_channel(&self, request: &AccessRequest) -> String {
        request.card.as_ref().map_or_else(|| self.settings.approval_channel.clone(), |c| c.channel.clone())
    }

    async fn approve(&self, click: &Click, id: &RequestId, shown: &str) -> anyhow::Result<()> {
        let Some((_, report)) = self.may_decide(id, &click.user, Decision::Approve, Some(&click.channel)).await? else {
            return Ok(());
        };
        match self.engine.approve(id, shown, &click.user, &report.roster).await? {
            ApproveResult::NotFound => self.ephemeral(&click.channel, &click.user, messages::not_found(id)).await,
            ApproveResult::Refused { refusal, request } => {
                if refusal == Refusal::NotWhatWasShown {
                    let alert = messages::not_what_was_shown_alert(&request, &click.user);
                    self.raise_alert(&request, "not_what_was_shown", alert).await;
                }
                self.ephemeral(&click.channel, &click.user, messages::refused(&refusal, Some(id))).await
            }
            ApproveResult::Recorded { request, .. } => {
                self.announce(&request, Happened::ApprovalCounted(&report)).await
            }
            ApproveResult::Failed { request, .. } => self.announce(&request, Happened::Changed).await,
            ApproveResult::Approved { request, query } => {
                // "Approved by …, starting" goes out while AssumeRole and the query run, not before them: the
                // user waits for the rows, not for this update. The card's last update waits for it, so "starting"
                // can never land after "ran" and stay on the card; the rows go to the thread without waiting.
                let shown = (*request).clone();
                let (updated, card_free) = tokio::sync::oneshot::channel::<()>();
                let starting = async {
                    self.announce(&shown, Happened::Changed).await;
                    let _ = updated.send(());
                };
                let card_free = async {
                    let _ = card_free.await;
                };
                // The click is a new Slack event with a trace of its own; the run and the rows join the trace of the
                // request's submission (its span context is stored with the request), so one trace shows a request
                // from the slash command to the rows.
                let span = info_span!("run", request_id = %request.id, trace_id = tracing::field::Empty);
                if let Some(parent) = &request.trace_parent {
                    crate::telemetry::traces::continue_trace(&span, parent);
                }
                crate::telemetry::traces::record_trace_id(&span);
                let approved_note = self.note_approved(&request);
                let run = async {
                    match self.engine.execute(*request, *query).await? {
                        ExecuteResult::Executed { request, result, .. } => {
                            self.note_finished(&request, approved_note);
                            self.announce_after(&request, Happened::Ran(&result), card_free).await
                        }
                        ExecuteResult::Failed { request, reason, alarm } => {
                            self.note_finished(&request, approved_note);
                            if alarm {
                                let alert = messages::security_alert(&request, &reason);
                                self.raise_alert(&request, reason.code(), alert).await;
                            }
                            self.announce_after(&request, Happened::RunFailed(&reason), card_free).await;
                        }
                    }
                    anyhow::Ok(())
                };
                let ((), ran) = tokio::join!(starting, run.instrument(span));
                ran?;
            }
        }
        Ok(())
    }

    /// Deny asks for an optional reason first, but only of someone who may decide.
    async fn offer_deny(&self, click: &Click, id: &RequestId) -> anyhow::Result<()> {
        let Some((request, _)) = self.may_decide(id, &click.user, Decision::Deny, Some(&click.channel)).await? else {
            return Ok(());
        };
        self.slack.open_view(&click.trigger_id, messages::deny_view(&request)).await?;
        Ok(())
    }

    /// The deny form, submitted: checked again (the roster may have changed while it was open), then denied.
    pub(super) async fn on_deny_form(&self, view: ViewSubmission) -> anyhow::Result<()> {
        let Some(id) = RequestId::parse(&view.private_metadata) else { return Ok(()) };
        let Some((request, report)) = self.may_decide(&id, &view.user, Decision::Deny, None).await? else {
            return Ok(());
        };
        let channel = self.card_channel(&request);
        let reason = view.values.get(messages::REASON_BLOCK).cloned();
        match self.engine.deny(&id, &view.user, reason, &report.roster).await? {
            DecisionResult::Done(request) => self.announce(&request, Happened::Changed).await,
            DecisionResult::Refused { refusal, .. } => {
                self.ephemeral(&channel, &view.user, messages::refused(&refusal, Some(&id))).await
            }
            DecisionResult::NotFound => self.ephemeral(&channel, &view.user, messages::not_found(&id)).await,
        }
        Ok(())
    }

    /// Rows in the card's thread; the full result as CSV and JSON files when it does not fit inline.
    pub(super) async fn post_results(&self, request: &AccessRequest, result: &ExecutionResult) {
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
            // Each file is written to a temporary file from the rows (themselves on disk beyond the first few),
            // uploaded from there, and closed: a large result is never in memory as text.
            for extension in ["csv", "json"] {
                let name = format!("{}.{extension}", request.id);
                let (rows, columns) = (result.rows.clone(), columns.clone());
                let rendered = tokio::task::spawn_blocking(move || {
                    result_rows::write_temp_file(|out| match extension {
                        "csv" => messages::write_results_csv(&columns, &rows, out),
                        _ => messages::write_results_json(&rows, out),
                    })
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written);
                let uploaded = match rendered {
                    Ok((file, len)) => {
                        let content = UploadContent::File { file, len };
                        self.slack.upload_file(&card.channel, Some(&card.ts), &name, &name, content).await
                    }
                    Err(err) => {
                        error!(request_id = %request.id, error = %err, "could not write the results file");
                        problem = Some(messages::results_file_not_written(&err.to_string()));
                        break;
                    }
                };
                if let Err(err) = uploaded {
                    error!(request_id = %request.id, error = %err, "could not upload the results file");
                    problem = Some(err.user_hint().unwrap_or_else(|| err.to_string()));
                    break;
                }
            }
        }
        if large {
            result_rows::release_freed_memory();
        }
        let Some(problem) = problem else { return };
        if let Err(err) = self.slack.send_dm(&request.requester, &messages::results_not_posted(request, &problem)).await
        {
            warn!(request_id = %request.id, error = %err, "could not tell the requester either");
        }
    }
}
