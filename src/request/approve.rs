//! The approval rules, and the one value the executor accepts.
//!
//! An approver must be on the roster given (fresh enough), through a source the runbook's policy accepts, must
//! not be the requester, and counts once. When the policy's number of distinct approvers is reached the request
//! becomes Approved and an [`ApprovedQuery`] is produced. `ApprovedQuery` has private fields and no public
//! constructor or `Deserialize`, so nothing but this function can make one.

use time::{Duration, OffsetDateTime};

use super::{AccessRequest, Approval, OnCallEntry, Refusal, RequestState, Roster, RosterSource, Status};
use crate::ids::{RequestId, SlackUserId};
use crate::runbook::{ApprovalPolicy, Fingerprint, RenderedQuery};

/// A roster older than this is not trusted for a decision. The on-call cache refreshes well inside it.
pub const MAX_ROSTER_AGE: Duration = Duration::minutes(5);

/// The result of one Approve click.
// Returned once per click and consumed at once; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ApproveOutcome {
    /// Not counted; the card stays as it was.
    Refused(Refusal),
    /// Counted, but the policy needs more distinct approvers.
    Recorded { next: AccessRequest, approvals: u8, required: u8 },
    /// The last approval needed: the request is Approved and may run.
    Approved { next: AccessRequest, query: ApprovedQuery },
}

/// A query cleared to run: the request it belongs to, who asked, who approved, and the exact operation with
/// the fingerprint the approvers saw.
#[derive(Debug, Clone)]
pub struct ApprovedQuery {
    request_id: RequestId,
    requester: SlackUserId,
    approvers: Vec<SlackUserId>,
    query: RenderedQuery,
    fingerprint: Fingerprint,
}

impl ApprovedQuery {
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }
    pub fn requester(&self) -> &SlackUserId {
        &self.requester
    }
    pub fn approvers(&self) -> &[SlackUserId] {
        &self.approvers
    }
    pub fn query(&self) -> &RenderedQuery {
        &self.query
    }
    /// The fingerprint the approvers were shown.
    pub fn approved_fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
    /// True when the query still hashes to what was approved; the executor refuses to run otherwise.
    pub fn is_intact(&self) -> bool {
        self.query.fingerprint() == self.fingerprint
    }
}

/// Applies one approval.
pub fn approve(
    request: &AccessRequest,
    approver: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> ApproveOutcome {
    let evidence = match check_may_decide(request, approver, roster, now) {
        Ok(evidence) => evidence,
        Err(refusal) => return ApproveOutcome::Refused(refusal),
    };
    if request.approvals.iter().any(|a| &a.approver == approver) {
        return ApproveOutcome::Refused(Refusal::AlreadyApprovedBy);
    }
    let mut approvals = request.approvals.clone();
    approvals.push(Approval { approver: approver.clone(), at: now, evidence });
    let required = request.policy.required_approvals.max(1);
    let have = u8::try_from(approvals.len()).unwrap_or(u8::MAX);
    if have < required {
        let next = AccessRequest { approvals, version: request.version + 1, ..request.clone() };
        return ApproveOutcome::Recorded { next, approvals: have, required };
    }
    let next = AccessRequest {
        approvals,
        version: request.version + 1,
        status: Status::Approved { at: now },
        ..request.clone()
    };
    let query = ApprovedQuery {
        request_id: next.id.clone(),
        requester: next.requester.clone(),
        approvers: next.approvals.iter().map(|a| a.approver.clone()).collect(),
        query: next.query.clone(),
        fingerprint: next.fingerprint.clone(),
    };
    ApproveOutcome::Approved { next, query }
}

/// The checks shared by Approve and Deny: still pending and inside its window, not the requester, on a fresh
/// roster through a source the policy accepts. Returns the roster entry that makes the user eligible.
pub(super) fn check_may_decide(
    request: &AccessRequest,
    user: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<OnCallEntry, Refusal> {
    match request.state() {
        RequestState::Pending => {}
        other => return Err(Refusal::NotPending(other)),
    }
    if now >= request.expires_at {
        return Err(Refusal::Expired);
    }
    // The requester can never approve their own access, whatever the roster says.
    if user == &request.requester {
        return Err(Refusal::SelfApproval);
    }
    on_call_entry(&request.policy, user, roster, now)
}

/// The roster entry that puts `user` on call now through a source `policy` accepts, on a fresh roster.
pub(super) fn on_call_entry(
    policy: &ApprovalPolicy,
    user: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<OnCallEntry, Refusal> {
    // Fail closed: a roster from the future (clock skew) or too far in the past proves nothing about "now".
    let age = now - roster.as_of;
    if age > MAX_ROSTER_AGE || age < -MAX_ROSTER_AGE {
        return Err(Refusal::RosterStale);
    }
    roster
        .entries_for(user)
        .iter()
        // A shift that has ended no longer makes anyone eligible, even on a roster fetched while it ran.
        .find(|entry| entry.covers(now) && source_accepted(policy, user, &entry.source))
        .cloned()
        .ok_or(Refusal::NotOnCall)
}

/// The query of a request cleared by break-glass (see `break_glass.rs`): the only other way to an
/// [`ApprovedQuery`], and only from a record already moved to Approved by its requester's break-glass.
pub(super) fn cleared_by_break_glass(next: &AccessRequest) -> ApprovedQuery {
    ApprovedQuery {
        request_id: next.id.clone(),
        requester: next.requester.clone(),
        approvers: Vec::new(),
        query: next.query.clone(),
        fingerprint: next.fingerprint.clone(),
    }
}

fn source_accepted(policy: &ApprovalPolicy, user: &SlackUserId, source: &RosterSource) -> bool {
    match source {
        RosterSource::Schedule(id) => policy.approvers.pagerduty_schedules.contains(id),
        RosterSource::EscalationPolicy(id) => policy.approvers.pagerduty_escalation_policies.contains(id),
        RosterSource::NamedApprover => policy.approvers.slack_users.contains(user),
    }
}
