//! Break-glass (pure): someone on call for a runbook that allows it runs a request at once, without an approver,
//! and the run stays "awaiting review" until another on-call person marks it Reviewed.
//!
//! ```text
//! Pending ──break_glass (requester on call, reason given, under the daily limit)──▶ Approved ──▶ … as usual
//!                                   review (another on-call person) ──▶ same state, `reviewed` set
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::approve::{cleared_by_break_glass, on_call_entry};
use super::{AccessRequest, ApprovedQuery, OnCallEntry, Refusal, RequestState, Roster, Status};
use crate::ids::SlackUserId;
use crate::runbook::ApprovalPolicy;

/// A break-glass use recorded on its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassUse {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why the requester was allowed: their on-call entry at that moment.
    pub evidence: OnCallEntry,
    /// Who reviewed it, once someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<Review>,
    /// Whether the "not reviewed in time" alert was raised (once).
    #[serde(default)]
    pub alerted: bool,
}

/// Another on-call person's review of a break-glass run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub by: SlackUserId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why break-glass (or its review) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakGlassRefusal {
    /// The runbook does not allow break-glass.
    NotAllowed,
    /// Break-glass always needs a reason, whatever the runbook says.
    ReasonRequired,
    /// The requester is not on call for the runbook now (or the roster is too old to say).
    NotOnCall(Refusal),
    /// The request needs `needed` approvers (a write, or `--unmask`): break-glass stands in for one approver only.
    NeedsApprovers { needed: u8 },
    /// The requester used break-glass `limit` times today already.
    OverDailyLimit { limit: u32 },
    /// Nobody can say who is on call now: refused (fail closed).
    RosterUnavailable { problem: String },
    /// Review: the request was not a break-glass run.
    NotBreakGlass,
    /// Review: already reviewed.
    AlreadyReviewed { by: SlackUserId },
    /// Review: the person who ran it cannot review it.
    OwnRun,
}

impl BreakGlassRefusal {
    /// The code recorded in the audit trail.
    pub fn code(&self) -> String {
        match self {
            BreakGlassRefusal::NotAllowed => "break_glass_not_allowed".to_owned(),
            BreakGlassRefusal::ReasonRequired => "break_glass_reason_required".to_owned(),
            BreakGlassRefusal::NotOnCall(refusal) => format!("break_glass_{}", crate::audit::refusal_code(refusal)),
            BreakGlassRefusal::NeedsApprovers { needed } => format!("break_glass_needs_approvers:{needed}"),
            BreakGlassRefusal::OverDailyLimit { limit } => format!("break_glass_daily_limit:{limit}"),
            BreakGlassRefusal::RosterUnavailable { .. } => "break_glass_roster_unavailable".to_owned(),
            BreakGlassRefusal::NotBreakGlass => "review_not_break_glass".to_owned(),
            BreakGlassRefusal::AlreadyReviewed { .. } => "review_already_reviewed".to_owned(),
            BreakGlassRefusal::OwnRun => "review_own_run".to_owned(),
        }
    }
}

/// Whether `user` may break glass on a runbook with approval policy `policy` now, per `roster`: the on-call entry
/// that allows it (someone who could approve it, were it someone else's). The runbook's permission, the reason and
/// the daily limit are checked by the caller.
pub fn may_break_glass(
    policy: &ApprovalPolicy,
    user: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<OnCallEntry, Refusal> {
    on_call_entry(policy, user, roster, now)
}

/// Pending → Approved by the requester's own break-glass, with the entry that allowed it.
pub fn break_glass(
    request: &AccessRequest,
    evidence: OnCallEntry,
    now: OffsetDateTime,
) -> Result<(AccessRequest, ApprovedQuery), Refusal> {
    match request.state() {
        RequestState::Pending => {}
        other => return Err(Refusal::NotPending(other)),
    }
    let next = AccessRequest {
        status: Status::Approved { at: now },
        version: request.version + 1,
        break_glass: Some(BreakGlassUse { at: now, evidence, reviewed: None, alerted: false }),
        ..request.clone()
    };
    let query = cleared_by_break_glass(&next);
    Ok((next, query))
}

/// Marks a break-glass run reviewed by `by`, who must be on call for it now and not its requester.
pub fn review(
    request: &AccessRequest,
    by: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<AccessRequest, BreakGlassRefusal> {
    let Some(used) = &request.break_glass else { return Err(BreakGlassRefusal::NotBreakGlass) };
    if let Some(review) = &used.reviewed {
        return Err(BreakGlassRefusal::AlreadyReviewed { by: review.by.clone() });
    }
    if by == &request.requester {
        return Err(BreakGlassRefusal::OwnRun);
    }
    on_call_entry(&request.policy, by, roster, now).map_err(BreakGlassRefusal::NotOnCall)?;
    let reviewed = BreakGlassUse { reviewed: Some(Review { by: by.clone(), at: now }), ..used.clone() };
    Ok(AccessRequest { break_glass: Some(reviewed), version: request.version + 1, ..request.clone() })
}

/// Marks the "not reviewed in time" alert as raised; `None` unless it is due (`review_within` after the run) and
/// not raised yet, so concurrent sweepers (through compare-and-set) raise it once.
pub fn review_overdue(
    request: &AccessRequest,
    review_within: time::Duration,
    now: OffsetDateTime,
) -> Option<AccessRequest> {
    let used = request.break_glass.as_ref()?;
    if used.reviewed.is_some() || used.alerted || now < used.at + review_within {
        return None;
    }
    let alerted = BreakGlassUse { alerted: true, ..used.clone() };
    Some(AccessRequest { break_glass: Some(alerted), version: request.version + 1, ..request.clone() })
}
