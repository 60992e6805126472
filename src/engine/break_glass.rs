//! Break-glass: someone on call for a runbook that allows it runs a request at once, without an approver, loudly,
//! and the run stays "awaiting review" until another on-call person marks it Reviewed.
//!
//! Every guard is checked before anything is stored, and every refusal is audited: the runbook must allow it, the
//! reason is mandatory, the requester must be on call for the runbook now (the roster is asked, failing closed),
//! and the per-person daily limit is checked and counted atomically in Redis. Then the request is made as usual
//! (rendered, rate-limited, `requested` in the audit trail) and moved Pending → Approved by its requester's
//! break-glass (audited as `break_glass`, failing closed like an approval), and runs like any approved request.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::{Engine, MAX_DECISION_ATTEMPTS, SubmitOutcome};
use crate::audit::{AttemptedAction, AuditEvent};
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::oncall::RosterProvider;
use crate::request::{
    self, AccessRequest, ApprovedQuery, BreakGlassRefusal, FailureReason, IncidentLookup, may_break_glass,
};
use crate::store::BreakGlassAdmission;

/// How break-glass is limited and watched (from `[break_glass]`).
#[derive(Debug, Clone, Copy)]
pub struct BreakGlassSettings {
    pub daily_limit: u32,
    pub review_within: std::time::Duration,
}

/// The answer to a `--break-glass` request.
#[derive(Debug)]
pub enum BreakGlassOutcome {
    /// Refused by a break-glass rule; nothing was stored.
    Refused { runbook: RunbookId, refusal: BreakGlassRefusal },
    /// Refused like any request (unknown runbook, bad parameters, incident, rate limit …).
    NotSubmitted(SubmitOutcome),
    /// Approved by break-glass: hand `query` to [`Engine::execute`].
    Started { request: Box<AccessRequest>, query: Box<ApprovedQuery> },
    /// Stored, but the break-glass could not be recorded safely: the request is Failed.
    Failed { request: Box<AccessRequest>, reason: FailureReason },
}

/// The answer to a Reviewed click.
#[derive(Debug)]
pub enum ReviewResult {
    NotFound,
    Refused { request: Box<AccessRequest>, refusal: BreakGlassRefusal },
    Done(Box<AccessRequest>),
}

impl Engine {
    /// A `--break-glass` request by `requester`.
    #[allow(clippy::too_many_arguments)] // The request's parts, as `submit_with` takes them, plus the roster.
    pub async fn break_glass(
        &self,
        requester: &SlackUserId,
        typed: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
        unmask: &[String],
        incident: IncidentLookup,
        oncall: &RosterProvider,
        settings: BreakGlassSettings,
    ) -> anyhow::Result<BreakGlassOutcome> {
        let Some(runbook) = RunbookId::parse(typed).and_then(|id| self.runbooks.get(&id)) else {
            return Ok(BreakGlassOutcome::NotSubmitted(
                self.submit_with(requester, typed, args, reason, unmask, incident).await?,
            ));
        };
        let id = runbook.id().clone();
        let attempted = AttemptedAction::Request { runbook: typed.to_owned() };
        let refuse = |refusal: BreakGlassRefusal| async {
            self.audit_refusal(None, requester, attempted.clone(), refusal.code()).await;
            Ok(BreakGlassOutcome::Refused { runbook: id.clone(), refusal })
        };
        if !runbook.allows_break_glass() {
            return refuse(BreakGlassRefusal::NotAllowed).await;
        }
        if reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return refuse(BreakGlassRefusal::ReasonRequired).await;
        }
        // Parameters that do not render, or attributes that cannot be unmasked, are answered as for any request,
        // before a daily use is spent.
        let Ok(query) =
            runbook.render(args, &self.settings.region).and_then(|q| runbook.unmask(q, unmask).map_err(|_| Vec::new()))
        else {
            return Ok(BreakGlassOutcome::NotSubmitted(
                self.submit_with(requester, typed, args, reason, unmask, incident).await?,
            ));
        };
        // One on-call person stands in for one approver, never for the second pair of eyes a write or an unmasking
        // asks for.
        let needed = request::approvals_needed(runbook.approval(), &query);
        if needed > 1 {
            return refuse(BreakGlassRefusal::NeedsApprovers { needed }).await;
        }
        let report = match oncall.roster_for(runbook.approval()).await {
            Ok(report) => report,
            Err(error) => {
                warn!(error = %error, "on-call roster unavailable; refusing break-glass");
                let problem = error.user_message().to_owned();
                return refuse(BreakGlassRefusal::RosterUnavailable { problem }).await;
            }
        };
        let evidence = match may_break_glass(runbook.approval(), requester, &report.roster, self.clock.now()) {
            Ok(evidence) => evidence,
            Err(refusal) => return refuse(BreakGlassRefusal::NotOnCall(refusal)).await,
        };
        let used = match self.store.count_break_glass(requester, settings.daily_limit, self.clock.now()).await? {
            BreakGlassAdmission::Counted { used } => used,
            BreakGlassAdmission::OverLimit => {
                return refuse(BreakGlassRefusal::OverDailyLimit { limit: settings.daily_limit }).await;
            }
        };
        let pending = match self.submit_with(requester, typed, args, reason, unmask, incident).await? {
            SubmitOutcome::Created(request) => *request,
            other => return Ok(BreakGlassOutcome::NotSubmitted(other)),
        };
        let now = self.clock.now();
        let (approved, query) = match request::break_glass(&pending, evidence.clone(), now) {
            Ok(done) => done,
            Err(refusal) => anyhow::bail!("cannot break glass on {}: {refusal:?}", pending.id),
        };
        if !self.write(&pending, &approved).await? {
            // Nobody else knows of this request yet; a lost write means it was changed behind our back.
            anyhow::bail!("request {} changed before its break-glass was recorded", pending.id);
        }
        let event = AuditEvent::BreakGlass {
            request: approved.id.clone(),
            by: requester.clone(),
            evidence,
            used_today: used,
            daily_limit: settings.daily_limit,
        };
        if let Err(err) = self.audit.append(event).await {
            // Fail closed, as for an approval: nothing runs that the audit trail does not show as cleared.
            warn!(request_id = %approved.id, error = %err, "audit append failed; failing the break-glass request");
            let reason = FailureReason::AuditUnavailable;
            let failed = self.fail(&approved, &reason).await.unwrap_or_else(|| approved.clone());
            return Ok(BreakGlassOutcome::Failed { request: Box::new(failed), reason });
        }
        let due = now + time::Duration::try_from(settings.review_within).unwrap_or(time::Duration::ZERO);
        if let Err(err) = self.store.await_review(&approved.id, due).await {
            warn!(request_id = %approved.id, error = %err, "could not index the break-glass review; no alert will be raised for it");
        }
        info!(request_id = %approved.id, used, "break-glass: running without an approver");
        Ok(BreakGlassOutcome::Started { request: Box::new(approved), query: Box::new(query) })
    }

    /// A Reviewed click on a break-glass run: another on-call person (not the requester) marks it reviewed.
    pub async fn review(
        &self,
        id: &RequestId,
        by: &SlackUserId,
        oncall: &RosterProvider,
    ) -> anyhow::Result<ReviewResult> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.load(id).await? else { return Ok(ReviewResult::NotFound) };
            let refused =
                |refusal: BreakGlassRefusal| ReviewResult::Refused { request: Box::new(current.clone()), refusal };
            let roster = match oncall.roster_for(&current.policy).await {
                Ok(report) => report.roster,
                Err(error) => {
                    let refusal = BreakGlassRefusal::RosterUnavailable { problem: error.user_message().to_owned() };
                    self.audit_refusal(Some(id.clone()), by, AttemptedAction::Approve, refusal.code()).await;
                    return Ok(refused(refusal));
                }
            };
            let next = match request::review(&current, by, &roster, self.clock.now()) {
                Ok(next) => next,
                Err(refusal) => {
                    self.audit_refusal(Some(id.clone()), by, AttemptedAction::Approve, refusal.code()).await;
                    return Ok(refused(refusal));
                }
            };
            if !self.write(&current, &next).await? {
                continue;
            }
            if let Err(err) =
                self.audit.append(AuditEvent::BreakGlassReviewed { request: id.clone(), by: by.clone() }).await
            {
                warn!(request_id = %id, error = %err, "could not audit the break-glass review");
            }
            if let Err(err) = self.store.forget_review(id).await {
                warn!(request_id = %id, error = %err, "could not drop the reviewed run from the review index");
            }
            return Ok(ReviewResult::Done(Box::new(next)));
        }
        anyhow::bail!("request {id} kept changing under {MAX_DECISION_ATTEMPTS} review attempts")
    }

    /// Break-glass runs still unreviewed when their review was due, marked alerted once each (compare-and-set,
    /// audited as `break_glass_unreviewed`); returns those this call marked.
    pub async fn unreviewed_due(
        &self,
        review_within: std::time::Duration,
        limit: usize,
    ) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let within = time::Duration::try_from(review_within).unwrap_or(time::Duration::ZERO);
        let mut overdue = Vec::new();
        for id in self.store.reviews_overdue(now, limit).await? {
            let Some(current) = self.sweepable(&id).await? else {
                self.store.forget_review(&id).await?;
                continue;
            };
            let Some(next) = request::review_overdue(&current, within, now) else {
                if current.break_glass.as_ref().is_none_or(|b| b.reviewed.is_some() || b.alerted) {
                    self.store.forget_review(&id).await?;
                }
                continue;
            };
            if !self.write(&current, &next).await? {
                continue;
            }
            if let Err(err) = self.audit.append(AuditEvent::BreakGlassUnreviewed { request: id.clone() }).await {
                warn!(request_id = %id, error = %err, "could not audit the unreviewed break-glass run");
            }
            self.store.forget_review(&id).await?;
            overdue.push(next);
        }
        Ok(overdue)
    }
}
