//! Bringing what people see in line with a request's state: its approval card, the card's thread and the
//! requester's DM, plus the outcome metrics. Every change of a request is announced through [`Bot::announce`].
//!
//! Best effort: a Slack call that fails is logged; the request's state is already recorded and audited, and the
//! card is brought up to date by the next change.

use tracing::{error, warn};

use super::Bot;
use crate::ids::{RequestId, RunbookId};
use crate::messages::{self, CardContext, SlackMessage};
use crate::oncall::RosterReport;
use crate::request::{AccessRequest, ExecutionResult, FailureReason, RequestState, Status};
use crate::slack::MessageRef;

/// What just happened to a request, beyond its new state.
pub(super) enum Happened<'a> {
    /// It changed state: decided, started, expired, failed outside a run.
    Changed,
    /// An approval was counted and more are needed; the roster names who may still approve.
    ApprovalCounted(&'a RosterReport),
    /// Its query ran: the rows go in the card's thread.
    Ran(&'a ExecutionResult),
    /// Its run failed: the reason goes in the card's thread too.
    RunFailed(&'a FailureReason),
}

impl Bot {
    /// Brings the card, its thread and the requester in line with `request`'s state, in that order.
    pub(super) async fn announce(&self, request: &AccessRequest, happened: Happened<'_>) {
        self.announce_after(request, happened, std::future::ready(())).await;
    }

    /// [`announce`](Self::announce), updating the card only once `earlier_update` (an update of the same card
    /// still in flight) is done, so updates land in the order they happened. The thread reply does not wait for
    /// it, nor for this card update: they are separate messages.
    pub(super) async fn announce_after(
        &self,
        request: &AccessRequest,
        happened: Happened<'_>,
        earlier_update: impl Future<Output = ()>,
    ) {
        self.record_outcome(request);
        let roster = match &happened {
            Happened::ApprovalCounted(report) => Some(*report),
            Happened::Changed | Happened::Ran(_) | Happened::RunFailed(_) => None,
        };
        let card = async {
            earlier_update.await;
            self.refresh_card(request, roster).await;
        };
        let thread = async {
            match happened {
                Happened::Ran(result) => self.post_results(request, result).await,
                Happened::RunFailed(reason) => self.post_in_thread(request, &messages::run_failed_reply(reason)).await,
                Happened::Changed | Happened::ApprovalCounted(_) => {}
            }
        };
        tokio::join!(card, thread);
        // The requester hears of each step they are waiting for; not of the moment between approval and the rows,
        // nor of a cancellation, which they made and were answered on.
        match request.state() {
            RequestState::Approved | RequestState::Running | RequestState::Cancelled => {}
            RequestState::Pending
            | RequestState::Succeeded
            | RequestState::Failed
            | RequestState::Denied
            | RequestState::Expired => self.tell_requester(request).await,
        }
    }

    pub(super) fn card_context(&self, request: &AccessRequest, report: Option<&RosterReport>) -> CardContext {
        let description = RunbookId::parse(request.query.runbook.as_str())
            .and_then(|id| self.engine.runbooks().get(&id).map(|r| r.description().to_owned()))
            .unwrap_or_default();
        CardContext {
            description,
            approvers_now: Self::approvers_now(report, &request.requester),
            unmapped: report
                .map(|r| {
                    r.unmapped.iter().map(|u| messages::unable_to_approve(&u.name, &u.email, u.excluded)).collect()
                })
                .unwrap_or_default(),
            audit_link: Some(self.audit_link(&request.id)),
            break_glass_mention: self.settings.break_glass_mention.clone(),
        }
    }

    /// Counts a decision's latency, a request that reached an end, and how long its execution took.
    fn record_outcome(&self, request: &AccessRequest) {
        let now = self.clock.now();
        match &request.status {
            Status::Approved { at } | Status::Denied { at, .. } => {
                self.settings.metrics.decision_latency((*at - request.created_at).as_seconds_f64());
            }
            Status::Succeeded { .. } => {
                if let Some(last) = request.approvals.last() {
                    self.settings.metrics.execution_latency((now - last.at).as_seconds_f64());
                }
            }
            _ => {}
        }
        if request.state().is_final() {
            self.settings.metrics.request_outcome(request.query.runbook.as_str(), request.state().as_str());
        }
    }

    /// Posts a fail-safe alert in the approval channel and counts it (the failure itself is already audited).
    pub(super) async fn raise_alert(&self, request: &AccessRequest, kind: &'static str, message: SlackMessage) {
        self.raise_alert_about(&request.id, kind, message).await;
    }

    /// [`Bot::raise_alert`] for a request known only by its id (its record could not be trusted).
    pub(super) async fn raise_alert_about(&self, id: &RequestId, kind: &'static str, message: SlackMessage) {
        self.settings.metrics.security_alert(kind);
        error!(request_id = %id, kind, "security alert raised");
        if let Err(err) = self.slack.post_message(&self.settings.approval_channel, &message, None).await {
            error!(request_id = %id, error = %err, "could not post the security alert");
        }
    }

    /// Updates the request's card to its current state.
    pub(super) async fn refresh_card(&self, request: &AccessRequest, report: Option<&RosterReport>) {
        let Some(card) = &request.card else { return };
        let message = messages::approval_card(request, &self.card_context(request, report));
        let at = MessageRef { channel: card.channel.clone(), ts: card.ts.clone() };
        if let Err(err) = self.slack.update_message(&at, &message).await {
            warn!(request_id = %request.id, error = %err, "could not update the approval card");
        }
    }

    /// A reply in the card's thread.
    pub(super) async fn post_in_thread(&self, request: &AccessRequest, message: &SlackMessage) {
        let Some(card) = &request.card else { return };
        if let Err(err) = self.slack.post_message(&card.channel, message, Some(&card.ts)).await {
            warn!(request_id = %request.id, error = %err, "could not post in the card's thread");
        }
    }

    /// Tells the requester what happened to their request, by DM.
    async fn tell_requester(&self, request: &AccessRequest) {
        let message = SlackMessage { text: messages::requester_update(request), blocks: Vec::new() };
        if let Err(err) = self.slack.send_dm(&request.requester, &message).await {
            warn!(request_id = %request.id, error = %err, "could not tell the requester");
        }
    }
}
