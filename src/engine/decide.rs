//! Decisions on a pending request: who may decide, Approve, Deny and Cancel. Each is decided by the pure rules in
//! [`crate::request`], written with compare-and-set (re-decided after a lost race) and audited, refusals included.

use tracing::{Instrument, info, info_span, warn};

use super::{ApproveResult, Decision, DecisionResult, Engine, MAX_DECISION_ATTEMPTS, MayDecide};
use crate::audit::{AttemptedAction, AuditEvent, refusal_code};
use crate::ids::{RequestId, SlackUserId};
use crate::oncall::RosterProvider;
use crate::request::{self, AccessRequest, ApproveOutcome, FailureReason, Refusal, Roster};

impl Engine {
    /// Who may decide on a request, asked by every click and form before a decision is offered or made: loads the
    /// request, asks `oncall` again for its policy's roster (whoever was on call when the card was posted may not
    /// be now), and applies the rules Approve and Deny share. A refusal, an unavailable roster included, is
    /// audited here; the caller only tells the user.
    pub async fn may_decide(
        &self,
        id: &RequestId,
        user: &SlackUserId,
        decision: Decision,
        oncall: &RosterProvider,
    ) -> anyhow::Result<MayDecide> {
        let Some(request) = self.load(id).await? else { return Ok(MayDecide::NotFound) };
        // PagerDuty is asked at every decision, never a cached roster while it answers: whoever handed over a
        // moment ago must not approve any more. A request whose approvers were widened (staged escalation) accepts
        // on-calls up to its current level.
        let report = match oncall.roster_now(&request.policy, request::escalation_level(&request)).await {
            Ok(report) => report,
            Err(error) => {
                warn!(request_id = %id, error = %error, "on-call roster unavailable; refusing the decision");
                self.audit_refusal(Some(id.clone()), user, decision.attempted(), "roster_unavailable".into()).await;
                return Ok(MayDecide::RosterUnavailable { request: Box::new(request), error });
            }
        };
        if let Err(refusal) = request::may_decide(&request, user, &report.roster, self.clock.now()) {
            self.audit_refusal(Some(id.clone()), user, decision.attempted(), refusal_code(&refusal)).await;
            return Ok(MayDecide::Refused { request: Box::new(request), refusal });
        }
        Ok(MayDecide::Yes { request: Box::new(request), report: Box::new(report) })
    }

    /// An Approve click. When it is the last approval needed the result carries the [`ApprovedQuery`](crate::request::ApprovedQuery) to run.
    ///
    /// `shown` is the fingerprint on the card the approver clicked (the Approve button carries it): the approval
    /// counts only if the request holds that very operation.
    pub async fn approve(
        &self,
        id: &RequestId,
        shown: &str,
        approver: &SlackUserId,
        roster: &Roster,
    ) -> anyhow::Result<ApproveResult> {
        let span = info_span!("approve", request_id = %id, approver = %approver, trace_id = tracing::field::Empty);
        // The click is a new Slack event; the approval joins the trace of the request's submission, whose span
        // context is stored with the request. Only when traces are on: it costs one more read.
        if crate::telemetry::traces::enabled()
            && let Ok(Some(request)) = self.load(id).await
            && let Some(parent) = &request.trace_parent
        {
            crate::telemetry::traces::continue_trace(&span, parent);
            crate::telemetry::traces::record_trace_id(&span);
        }
        async {
            for _ in 0..MAX_DECISION_ATTEMPTS {
                let Some(current) = self.load(id).await? else { return Ok(ApproveResult::NotFound) };
                if current.fingerprint.as_hex() != shown {
                    warn!(shown, stored = %current.fingerprint, "approval refused: the card showed another operation");
                    let refusal = Refusal::NotWhatWasShown;
                    self.audit_refusal(Some(id.clone()), approver, AttemptedAction::Approve, refusal_code(&refusal))
                        .await;
                    return Ok(ApproveResult::Refused { request: Box::new(current), refusal });
                }
                let now = self.clock.now();
                match request::approve(&current, approver, roster, now) {
                    ApproveOutcome::Refused(refusal) => {
                        let reason = refusal_code(&refusal);
                        self.audit_refusal(Some(id.clone()), approver, AttemptedAction::Approve, reason).await;
                        return Ok(ApproveResult::Refused { request: Box::new(current), refusal });
                    }
                    ApproveOutcome::Recorded { next, approvals, required } => {
                        if !self.write(&current, &next).await? {
                            continue;
                        }
                        if let Some(failed) = self.audit_approval(&next, approvals, required).await {
                            return Ok(failed);
                        }
                        return Ok(ApproveResult::Recorded { request: Box::new(next), approvals, required });
                    }
                    ApproveOutcome::Approved { next, query } => {
                        if !self.write(&current, &next).await? {
                            continue;
                        }
                        let required = next.policy.required_approvals.max(1);
                        if let Some(failed) = self.audit_approval(&next, required, required).await {
                            return Ok(failed);
                        }
                        info!("approved");
                        return Ok(ApproveResult::Approved { request: Box::new(next), query: Box::new(query) });
                    }
                }
            }
            anyhow::bail!("request {id} kept changing under {MAX_DECISION_ATTEMPTS} approval attempts")
        }
        .instrument(span)
        .await
    }

    /// Audits a counted approval; on failure ends the request (fail closed) and returns the Failed result.
    async fn audit_approval(&self, request: &AccessRequest, approvals: u8, required: u8) -> Option<ApproveResult> {
        // A counted approval is always the last one on the record.
        let approval = request.approvals.last()?;
        let event = AuditEvent::Approved {
            request: request.id.clone(),
            approver: approval.approver.clone(),
            evidence: approval.evidence.clone(),
            approvals,
            required,
        };
        match self.audit.append(event).await {
            Ok(_) => None,
            Err(err) => {
                warn!(error = %err, "audit append failed; failing the request");
                let reason = FailureReason::AuditUnavailable;
                let failed = self.fail(request, &reason).await.unwrap_or_else(|| request.clone());
                Some(ApproveResult::Failed { request: Box::new(failed), reason })
            }
        }
    }

    /// A Deny click, with the approver's optional reason.
    pub async fn deny(
        &self,
        id: &RequestId,
        by: &SlackUserId,
        reason: Option<String>,
        roster: &Roster,
    ) -> anyhow::Result<DecisionResult> {
        let span = info_span!("deny", request_id = %id, by = %by);
        self.decide(id, by, AttemptedAction::Deny, |current, now| {
            request::deny(current, by, reason.clone(), roster, now)
        })
        .instrument(span)
        .await
    }

    /// The requester withdraws a pending request.
    pub async fn cancel(&self, id: &RequestId, by: &SlackUserId) -> anyhow::Result<DecisionResult> {
        let span = info_span!("cancel", request_id = %id, by = %by);
        self.decide(id, by, AttemptedAction::Cancel, |current, now| request::cancel(current, by, now))
            .instrument(span)
            .await
    }

    /// Shared by Deny and Cancel: decide, write with compare-and-set (re-deciding after a lost race), audit.
    async fn decide(
        &self,
        id: &RequestId,
        by: &SlackUserId,
        attempted: AttemptedAction,
        rule: impl Fn(&AccessRequest, time::OffsetDateTime) -> Result<AccessRequest, Refusal>,
    ) -> anyhow::Result<DecisionResult> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.load(id).await? else { return Ok(DecisionResult::NotFound) };
            let next = match rule(&current, self.clock.now()) {
                Ok(next) => next,
                Err(refusal) => {
                    let reason = refusal_code(&refusal);
                    self.audit_refusal(Some(id.clone()), by, attempted, reason).await;
                    return Ok(DecisionResult::Refused { request: Box::new(current), refusal });
                }
            };
            if !self.write(&current, &next).await? {
                continue;
            }
            let event = match &next.status {
                request::Status::Denied { by, reason, .. } => {
                    AuditEvent::Denied { request: id.clone(), by: by.clone(), reason: reason.clone() }
                }
                _ => AuditEvent::Cancelled { request: id.clone(), by: by.clone() },
            };
            // The decision is already final in Redis and only closes a request: a missing audit entry here is
            // logged loudly rather than undone.
            if let Err(err) = self.audit.append(event).await {
                warn!(error = %err, "could not audit the decision");
            }
            return Ok(DecisionResult::Done(Box::new(next)));
        }
        anyhow::bail!("request {id} kept changing under {MAX_DECISION_ATTEMPTS} attempts")
    }
}
