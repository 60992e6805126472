//! The access-request state machine and its approval rules. Pure: no I/O, time comes in as an argument.
//!
//! ```text
//! Pending ──approve (enough approvers)──▶ Approved ──start──▶ Running ──▶ Succeeded | Failed
//!    │ └─approve (more needed)─▶ Pending (one more approval recorded)
//!    ├──deny──▶ Denied      ├──expire (ttl passed)──▶ Expired      ├──cancel (requester)──▶ Cancelled
//!    └──fail (a step before execution broke)──▶ Failed
//! ```
//!
//! Each function takes the current record and returns an outcome: either a refusal carrying the reason (shown to
//! the user, audited) or the next record with its version bumped. The store then writes the next record with a
//! compare-and-set on the old state and version, so of two racing transitions exactly one lands.
//!
//! [`result`] holds what an execution delivers (rows of display values, kept by `result_rows`), which the executor
//! produces and the messages render.
//!
//! Only [`approve`] can produce an [`ApprovedQuery`], and only an `ApprovedQuery` can be handed to the executor.

mod approve;
mod break_glass;
mod failure;
mod gates;
pub mod result;
mod roster;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{RequestId, SlackUserId};
use crate::runbook::{ApprovalPolicy, Fingerprint, RenderedQuery};

pub use approve::{ApproveOutcome, ApprovedQuery, MAX_ROSTER_AGE, approve};
pub use break_glass::{BreakGlassRefusal, BreakGlassUse, Review, break_glass, may_break_glass, review, review_overdue};
pub use failure::{AwsProblem, FailureReason};
pub use gates::{
    Escalated, IncidentLookup, IncidentRef, IncidentRefusal, escalate, escalation_due_at, escalation_level,
    judge_incident,
};
pub use result::{ExecutionResult, Row, Value, WriteDiff};
pub use roster::{OnCallEntry, Roster, RosterSource};

/// The kind of state a request is in, without its details: what compare-and-set checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Approved,
    Running,
    Succeeded,
    Failed,
    Denied,
    Expired,
    Cancelled,
}

impl RequestState {
    /// A finished request never changes again.
    pub fn is_final(self) -> bool {
        match self {
            RequestState::Pending | RequestState::Approved | RequestState::Running => false,
            RequestState::Succeeded
            | RequestState::Failed
            | RequestState::Denied
            | RequestState::Expired
            | RequestState::Cancelled => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Running => "running",
            RequestState::Succeeded => "succeeded",
            RequestState::Failed => "failed",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
            RequestState::Cancelled => "cancelled",
        }
    }
}

/// One recorded approval, with the roster evidence that made the approver eligible at click time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: SlackUserId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub evidence: OnCallEntry,
}

/// What an execution delivered, as recorded on a succeeded request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub row_count: u32,
    pub truncated: bool,
    pub consumed_capacity: f64,
    /// SHA-256 (hex) of the rows as delivered (after masking).
    pub result_sha256: String,
    /// For a write: the item before and after, as hashes, and the attributes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WriteSummary>,
    /// Attributes delivered in clear although the runbook masks them (`--unmask`, one more approver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmasked: Vec<String>,
}

/// What a write changed, as the record and the audit trail keep it. The hashes cover the item as the write's
/// credentials see it (its key and the attributes written) and as delivered (masked attributes masked), so the
/// trail never lets anyone confirm a guess of a masked value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSummary {
    /// SHA-256 (hex) of the item before the write.
    pub before_sha256: String,
    /// SHA-256 (hex) of the item after the write.
    pub after_sha256: String,
    /// The attributes set or removed.
    pub written: Vec<String>,
}

/// A request's state with the details that belong to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Running {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
    Succeeded {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        summary: ExecutionSummary,
    },
    Failed {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// A plain string in records written before reasons were typed: it loads as [`FailureReason::Legacy`].
        reason: FailureReason,
    },
    Denied {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        by: SlackUserId,
        reason: Option<String>,
    },
    Expired {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Cancelled {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl Status {
    pub fn state(&self) -> RequestState {
        match self {
            Status::Pending => RequestState::Pending,
            Status::Approved { .. } => RequestState::Approved,
            Status::Running { .. } => RequestState::Running,
            Status::Succeeded { .. } => RequestState::Succeeded,
            Status::Failed { .. } => RequestState::Failed,
            Status::Denied { .. } => RequestState::Denied,
            Status::Expired { .. } => RequestState::Expired,
            Status::Cancelled { .. } => RequestState::Cancelled,
        }
    }
}

/// One access request, as stored in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRequest {
    pub id: RequestId,
    pub requester: SlackUserId,
    pub reason: Option<String>,
    pub query: RenderedQuery,
    /// The fingerprint shown on the approval card; approvals are bound to it.
    pub fingerprint: Fingerprint,
    /// The runbook's approval policy as it was when the request was made.
    pub policy: ApprovalPolicy,
    pub status: Status,
    /// Bumped by every transition; the compare-and-set checks it.
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub approvals: Vec<Approval>,
    /// Where the approval card was posted, once it was; every replica updates the card from here.
    #[serde(default)]
    pub card: Option<CardRef>,
    /// Whether the half-way reminder was posted (once per request).
    #[serde(default)]
    pub reminded: bool,
    /// The W3C `traceparent` of the span that submitted the request, when traces are on: the execution after the
    /// approval click continues that trace (`src/telemetry/traces.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
    /// The engine's seal over the rest of the record (see `crate::seal`), set when it is written to Redis and
    /// checked when it is read back. Transitions carry the old one along; the engine replaces it on every write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
    /// The PagerDuty incident the request was made under (`--incident`), checked open when it was made. Left out
    /// of records without one, so records written before incidents existed keep their seals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRef>,
    /// The escalation level the approvers were widened to (see [`escalate`]); `None` until widened (level 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_to: Option<u32>,
    /// Set when the requester ran it by break-glass, without an approver (see [`break_glass`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlassUse>,
}

/// A posted Slack message: channel id and message timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRef {
    pub channel: String,
    pub ts: String,
}

/// Why a transition was not made. Each is a normal outcome with a message for the user, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The runbook requires a reason and none (or only whitespace) was given.
    ReasonRequired,
    /// The requester clicked Approve or Deny on their own request.
    SelfApproval,
    /// The clicker is not on call in any source the runbook accepts, per the roster given.
    NotOnCall,
    /// The roster is older than allowed: approving on stale information is refused (fail closed).
    RosterStale,
    /// This approver already approved; a second click does not count twice.
    AlreadyApprovedBy,
    /// The approval window has passed.
    Expired,
    /// Only the requester may cancel.
    NotRequester,
    /// The request is no longer in a state that allows this action ("someone else already did it").
    NotPending(RequestState),
    /// The Approve button clicked showed another operation than the request now holds: the card is from an older
    /// version of jitgate, or the stored request was changed. Approvals bind to what the approver saw.
    NotWhatWasShown,
}

/// What starting a request needs.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: RequestId,
    pub requester: SlackUserId,
    pub reason: Option<String>,
    pub query: RenderedQuery,
    pub policy: ApprovalPolicy,
    /// The PagerDuty incident named with `--incident`, already checked open.
    pub incident: Option<IncidentRef>,
}

/// How many distinct approvers a request for `query` under `policy` needs: the runbook's count, and one more when
/// it asks to see masked attributes in clear (`--unmask`).
pub fn approvals_needed(policy: &ApprovalPolicy, query: &RenderedQuery) -> u8 {
    if query.unmasked_attributes.is_empty() {
        policy.required_approvals
    } else {
        policy.required_approvals.max(1).saturating_add(1)
    }
}

impl AccessRequest {
    /// Creates a pending request, or refuses it when the policy needs a reason that is missing.
    pub fn create(new: NewRequest, now: OffsetDateTime) -> Result<AccessRequest, Refusal> {
        let reason = new.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if new.policy.require_reason && reason.is_none() {
            return Err(Refusal::ReasonRequired);
        }
        let ttl = time::Duration::try_from(new.policy.ttl).unwrap_or(time::Duration::ZERO);
        let mut policy = new.policy;
        // Applied here, where every request is made, so no path can create an unmasking request without its
        // extra approver.
        policy.required_approvals = approvals_needed(&policy, &new.query);
        Ok(AccessRequest {
            fingerprint: new.query.fingerprint(),
            id: new.id,
            requester: new.requester,
            reason,
            query: new.query,
            policy,
            status: Status::Pending,
            version: 1,
            created_at: now,
            expires_at: now + ttl,
            approvals: Vec::new(),
            card: None,
            reminded: false,
            trace_parent: None,
            seal: None,
            incident: new.incident,
            escalated_to: None,
            break_glass: None,
        })
    }

    pub fn state(&self) -> RequestState {
        self.status.state()
    }

    /// The next record: same request, new status, version bumped.
    fn with_status(&self, status: Status) -> AccessRequest {
        AccessRequest { status, version: self.version + 1, ..self.clone() }
    }
}

/// Whether `user` may approve or deny `request` now, per `roster`: the checks Approve and Deny share (pending,
/// inside its window, not the requester, a fresh roster naming them through a source the policy accepts).
pub fn may_decide(
    request: &AccessRequest,
    user: &SlackUserId,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    approve::check_may_decide(request, user, roster, now).map(|_| ())
}

/// Denies a pending request. Who may deny is who may approve: an eligible approver who is not the requester.
pub fn deny(
    request: &AccessRequest,
    by: &SlackUserId,
    reason: Option<String>,
    roster: &Roster,
    now: OffsetDateTime,
) -> Result<AccessRequest, Refusal> {
    approve::check_may_decide(request, by, roster, now)?;
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    Ok(request.with_status(Status::Denied { at: now, by: by.clone(), reason }))
}

/// Records where the approval card was posted. Allowed in any state: the card may be posted after a fast
/// decision, and it must still be found to be updated.
pub fn attach_card(request: &AccessRequest, card: CardRef) -> AccessRequest {
    AccessRequest { card: Some(card), version: request.version + 1, ..request.clone() }
}

/// Whether `after` is `before` with only its card recorded: the card is recorded once it is posted, which can land
/// after a quick approver's click, so an approved record may move on by its card alone.
/// The seal is left out: every write seals the record anew, and loading checked `after`'s.
pub fn only_card_attached(before: &AccessRequest, after: &AccessRequest) -> bool {
    after
        .card
        .as_ref()
        .is_some_and(|card| AccessRequest { seal: after.seal.clone(), ..attach_card(before, card.clone()) } == *after)
}

/// When a pending request is due its reminder: half-way through its approval window.
pub fn reminder_due_at(request: &AccessRequest) -> OffsetDateTime {
    request.created_at + (request.expires_at - request.created_at) / 2
}

/// Marks the half-way reminder as sent; `None` unless the request is pending, past half its window and not yet
/// reminded, so concurrent sweepers (through compare-and-set) remind once.
pub fn remind(request: &AccessRequest, now: OffsetDateTime) -> Option<AccessRequest> {
    let halfway = reminder_due_at(request);
    match request.state() {
        RequestState::Pending if !request.reminded && now >= halfway && now < request.expires_at => {
            Some(AccessRequest { reminded: true, version: request.version + 1, ..request.clone() })
        }
        _ => None,
    }
}

/// Cancels a pending request at its requester's wish.
pub fn cancel(request: &AccessRequest, by: &SlackUserId, now: OffsetDateTime) -> Result<AccessRequest, Refusal> {
    match request.state() {
        RequestState::Pending => {}
        other => return Err(Refusal::NotPending(other)),
    }
    if by != &request.requester {
        return Err(Refusal::NotRequester);
    }
    Ok(request.with_status(Status::Cancelled { at: now }))
}

/// Expires a pending request whose approval window has passed; `None` when it is not (yet) expirable.
pub fn expire(request: &AccessRequest, now: OffsetDateTime) -> Option<AccessRequest> {
    match request.state() {
        RequestState::Pending if now >= request.expires_at => Some(request.with_status(Status::Expired { at: now })),
        _ => None,
    }
}

/// Moves an approved request to Running. The store's compare-and-set on this transition is what makes the query
/// run once: only the replica whose write lands executes it.
pub fn start(request: &AccessRequest, approved: &ApprovedQuery, now: OffsetDateTime) -> Result<AccessRequest, Refusal> {
    match request.state() {
        RequestState::Approved if approved.request_id() == &request.id => {
            Ok(request.with_status(Status::Running { since: now }))
        }
        other => Err(Refusal::NotPending(other)),
    }
}

/// Records a successful execution.
pub fn succeed(
    request: &AccessRequest,
    summary: ExecutionSummary,
    now: OffsetDateTime,
) -> Result<AccessRequest, Refusal> {
    match request.state() {
        RequestState::Running => Ok(request.with_status(Status::Succeeded { at: now, summary })),
        other => Err(Refusal::NotPending(other)),
    }
}

/// Ends a request that broke at any step before it finished.
pub fn fail(request: &AccessRequest, reason: FailureReason, now: OffsetDateTime) -> Result<AccessRequest, Refusal> {
    match request.state() {
        RequestState::Pending | RequestState::Approved | RequestState::Running => {
            Ok(request.with_status(Status::Failed { at: now, reason }))
        }
        other @ (RequestState::Succeeded
        | RequestState::Failed
        | RequestState::Denied
        | RequestState::Expired
        | RequestState::Cancelled) => Err(Refusal::NotPending(other)),
    }
}

#[cfg(test)]
mod tests;
