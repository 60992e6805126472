//! What the audit trail records: the events of a request's life, who caused each, and the entry as read back.
//!
//! An [`AuditEvent`] names its request and its actor itself, so an entry can never be filed under the wrong request
//! or person by its caller. It is stored as JSON with a `type` tag; the JSON text is what the chain hashes.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::request::{AccessRequest, ExecutionSummary, FailureReason, OnCallEntry, Refusal};
use crate::runbook::{ApprovalPolicy, Fingerprint, RenderedQuery};

/// The `actor` text of events jitgate causes itself (expiry, execution, failures).
const SYSTEM_ACTOR: &str = "jitgate";

/// Who caused an event: a Slack user, or jitgate itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    User(SlackUserId),
    System,
}

impl Actor {
    /// The stored text: the Slack user id, or `jitgate`. The two cannot collide: Slack ids are upper case.
    pub fn as_str(&self) -> &str {
        match self {
            Actor::User(user) => user.as_str(),
            Actor::System => SYSTEM_ACTOR,
        }
    }

    /// Reads the stored text back.
    pub fn parse(text: &str) -> Option<Actor> {
        if text == SYSTEM_ACTOR { Some(Actor::System) } else { SlackUserId::parse(text).map(Actor::User) }
    }
}

impl TryFrom<String> for Actor {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Actor::parse(&value).ok_or_else(|| format!("`{value}` is neither a Slack user id nor `{SYSTEM_ACTOR}`"))
    }
}

impl From<Actor> for String {
    fn from(actor: Actor) -> String {
        actor.as_str().to_owned()
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a refused user tried to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AttemptedAction {
    /// Ask for a query; `runbook` is what they typed, which may not name a runbook at all.
    Request {
        runbook: String,
    },
    Approve,
    Deny,
    Cancel,
}

/// The temporary credentials a query ran under. The secret key and session token are never recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialEvidence {
    /// STS `AssumedRoleUser.AssumedRoleId` (`AROA…:session-name`), what CloudTrail shows.
    pub assumed_role_id: String,
    /// The temporary access key id (`ASIA…`): an identifier, not a secret.
    pub access_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The inline session policy sent to STS, as sent.
    pub session_policy: String,
}

/// One event in a request's life, one audit entry each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A request was made and is waiting for approval.
    Requested {
        request: RequestId,
        requester: SlackUserId,
        runbook: RunbookId,
        reason: Option<String>,
        /// The exact operation the approvers are shown (boxed: it is by far the largest field of any event).
        query: Box<RenderedQuery>,
        fingerprint: Fingerprint,
        /// The approval policy copied into the request.
        policy: ApprovalPolicy,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        /// The PagerDuty incident named with `--incident` (left out when none, so older entries hash as before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<Box<crate::request::IncidentRef>>,
    },
    /// An approval was counted.
    Approved {
        request: RequestId,
        approver: SlackUserId,
        /// The roster entry that made the approver eligible at click time.
        evidence: OnCallEntry,
        /// Distinct approvals so far, this one included.
        approvals: u8,
        required: u8,
    },
    Denied {
        request: RequestId,
        by: SlackUserId,
        reason: Option<String>,
    },
    /// The approval window passed.
    Expired {
        request: RequestId,
    },
    Cancelled {
        request: RequestId,
        by: SlackUserId,
    },
    /// Someone tried something and was refused (self-approval, not on call, …): refusals are audited too.
    Refused {
        /// `None` when the attempt never became a request (e.g. an unknown runbook).
        request: Option<RequestId>,
        by: SlackUserId,
        attempted: AttemptedAction,
        /// A short code such as `self_approval` (see [`AuditEvent::refused`]) or a sentence.
        reason: String,
    },
    /// Refusals of one user that were counted instead of appended one by one: over the per-user limit within a
    /// window, so that a burst of refusals cannot crowd the chain. Every refusal is in the trail, by count if not
    /// one by one.
    RefusalsCounted {
        by: SlackUserId,
        /// How many refusals, beyond those appended one by one, between `first` and `last`.
        count: u64,
        #[serde(with = "time::serde::rfc3339")]
        first: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        last: OffsetDateTime,
    },
    /// The query ran and its rows were delivered.
    Executed {
        request: RequestId,
        /// The fingerprint of the operation that ran (the executor refuses any other than the approved one).
        fingerprint: Fingerprint,
        summary: ExecutionSummary,
        credentials: CredentialEvidence,
    },
    /// The request ended because a step broke (roster, STS, DynamoDB, Slack …).
    Failed {
        request: RequestId,
        /// The reason's stable code ([`FailureReason::code`]). Absent from entries written before reasons were
        /// typed, which are stored (and hashed) without it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The reason as the user was told it.
        reason: String,
    },
    /// Something jitgate relies on was found changed outside jitgate (a request record in Redis whose seal does
    /// not match, an operation that is not the one requested): refused, and operators alerted.
    IntegrityViolation {
        request: RequestId,
        detail: String,
    },
    /// Nobody decided in time, so the approvers were widened to escalation level `level` (of at most
    /// `max_level`) of the runbook's escalation policies.
    Escalated {
        request: RequestId,
        level: u32,
        max_level: u32,
    },
    /// The requester ran the request at once, without an approver, by break-glass: on call through `evidence`,
    /// their `used_today`-th use of `daily_limit`.
    BreakGlass {
        request: RequestId,
        by: SlackUserId,
        evidence: OnCallEntry,
        used_today: u32,
        daily_limit: u32,
    },
    /// Another on-call person reviewed a break-glass run.
    BreakGlassReviewed {
        request: RequestId,
        by: SlackUserId,
    },
    /// A break-glass run was still unreviewed when its review was due: alerted.
    BreakGlassUnreviewed {
        request: RequestId,
    },
}

impl AuditEvent {
    /// The `Requested` event of a freshly created request.
    pub fn requested(request: &AccessRequest) -> AuditEvent {
        AuditEvent::Requested {
            request: request.id.clone(),
            requester: request.requester.clone(),
            runbook: request.query.runbook.clone(),
            reason: request.reason.clone(),
            query: Box::new(request.query.clone()),
            fingerprint: request.fingerprint.clone(),
            policy: request.policy.clone(),
            expires_at: request.expires_at,
            incident: request.incident.clone().map(Box::new),
        }
    }

    /// The `Failed` event: the reason's code, and `text`, the reason as the user reads it.
    pub fn failed(request: RequestId, reason: &FailureReason, text: String) -> AuditEvent {
        AuditEvent::Failed { request, code: Some(reason.code().to_owned()), reason: text }
    }

    /// The `Refused` event for a refusal from the request state machine.
    pub fn refused(
        request: Option<RequestId>,
        by: SlackUserId,
        attempted: AttemptedAction,
        refusal: &Refusal,
    ) -> AuditEvent {
        AuditEvent::Refused { request, by, attempted, reason: refusal_code(refusal) }
    }

    /// The request this event belongs to; `None` for events of no request.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            AuditEvent::Requested { request, .. }
            | AuditEvent::Approved { request, .. }
            | AuditEvent::Denied { request, .. }
            | AuditEvent::Expired { request }
            | AuditEvent::Cancelled { request, .. }
            | AuditEvent::Executed { request, .. }
            | AuditEvent::Failed { request, .. }
            | AuditEvent::IntegrityViolation { request, .. }
            | AuditEvent::Escalated { request, .. }
            | AuditEvent::BreakGlass { request, .. }
            | AuditEvent::BreakGlassReviewed { request, .. }
            | AuditEvent::BreakGlassUnreviewed { request } => Some(request),
            AuditEvent::Refused { request, .. } => request.as_ref(),
            AuditEvent::RefusalsCounted { .. } => None,
        }
    }

    /// Who caused the event. Execution, expiry and failures are jitgate's own doing.
    pub fn actor(&self) -> Actor {
        match self {
            AuditEvent::Requested { requester: user, .. }
            | AuditEvent::Approved { approver: user, .. }
            | AuditEvent::Denied { by: user, .. }
            | AuditEvent::Cancelled { by: user, .. }
            | AuditEvent::Refused { by: user, .. }
            | AuditEvent::RefusalsCounted { by: user, .. }
            | AuditEvent::BreakGlass { by: user, .. }
            | AuditEvent::BreakGlassReviewed { by: user, .. } => Actor::User(user.clone()),
            AuditEvent::Expired { .. }
            | AuditEvent::Executed { .. }
            | AuditEvent::Failed { .. }
            | AuditEvent::IntegrityViolation { .. }
            | AuditEvent::Escalated { .. }
            | AuditEvent::BreakGlassUnreviewed { .. } => Actor::System,
        }
    }

    /// The event's `type` tag, e.g. `approved`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::Requested { .. } => "requested",
            AuditEvent::Approved { .. } => "approved",
            AuditEvent::Denied { .. } => "denied",
            AuditEvent::Expired { .. } => "expired",
            AuditEvent::Cancelled { .. } => "cancelled",
            AuditEvent::Refused { .. } => "refused",
            AuditEvent::RefusalsCounted { .. } => "refusals_counted",
            AuditEvent::Executed { .. } => "executed",
            AuditEvent::Failed { .. } => "failed",
            AuditEvent::IntegrityViolation { .. } => "integrity_violation",
            AuditEvent::Escalated { .. } => "escalated",
            AuditEvent::BreakGlass { .. } => "break_glass",
            AuditEvent::BreakGlassReviewed { .. } => "break_glass_reviewed",
            AuditEvent::BreakGlassUnreviewed { .. } => "break_glass_unreviewed",
        }
    }
}

/// The stable code a refusal is recorded under. Exhaustive, so a new refusal must be given a code here.
pub fn refusal_code(refusal: &Refusal) -> String {
    match refusal {
        Refusal::ReasonRequired => "reason_required".to_owned(),
        Refusal::SelfApproval => "self_approval".to_owned(),
        Refusal::NotOnCall => "not_on_call".to_owned(),
        Refusal::RosterStale => "roster_stale".to_owned(),
        Refusal::AlreadyApprovedBy => "already_approved".to_owned(),
        Refusal::Expired => "expired".to_owned(),
        Refusal::NotRequester => "not_requester".to_owned(),
        Refusal::NotPending(state) => format!("not_pending:{}", state.as_str()),
        Refusal::NotWhatWasShown => "not_what_was_shown".to_owned(),
    }
}

/// One entry of the chain as read back (or as just written). Serializes to JSON for readers such as the HTTP
/// audit page; it is never deserialized: entries are read from the table, where their hashes are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When it was appended, from the injected clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub request_id: Option<RequestId>,
    pub actor: Actor,
    pub event: AuditEvent,
    /// The previous entry's hash ([`super::GENESIS_HASH`] for entry 1).
    pub prev_hash: String,
    /// This entry's hash, over `prev_hash` and its content (see the module header).
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestState;

    fn user(id: &str) -> SlackUserId {
        SlackUserId::parse(id).unwrap()
    }

    fn id() -> RequestId {
        RequestId::parse("JIT-7Q2M4X").unwrap()
    }

    #[test]
    fn events_name_their_request_and_actor() {
        let denied = AuditEvent::Denied { request: id(), by: user("UBOB"), reason: None };
        assert_eq!(denied.request_id(), Some(&id()));
        assert_eq!(denied.actor(), Actor::User(user("UBOB")));
        assert_eq!(AuditEvent::Expired { request: id() }.actor(), Actor::System);
        let refused = AuditEvent::refused(
            None,
            user("UEVE"),
            AttemptedAction::Request { runbook: "nope".into() },
            &Refusal::NotOnCall,
        );
        assert_eq!(refused.request_id(), None);
        assert_eq!(refused.actor(), Actor::User(user("UEVE")));
    }

    #[test]
    fn refusals_are_recorded_by_code() {
        let event = AuditEvent::refused(Some(id()), user("UREQ"), AttemptedAction::Approve, &Refusal::SelfApproval);
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"refused","request":"JIT-7Q2M4X","by":"UREQ","attempted":{"action":"approve"},"reason":"self_approval"}"#
        );
        assert_eq!(refusal_code(&Refusal::NotPending(RequestState::Approved)), "not_pending:approved");
    }

    #[test]
    fn counted_refusals_are_recorded_as_one_entry_of_their_user() {
        let event = AuditEvent::RefusalsCounted {
            by: user("UEVE"),
            count: 287,
            first: time::macros::datetime!(2026-11-28 12:00:01 UTC),
            last: time::macros::datetime!(2026-11-28 12:00:59 UTC),
        };
        assert_eq!(
            (event.request_id(), event.actor(), event.kind()),
            (None, Actor::User(user("UEVE")), "refusals_counted")
        );
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"refusals_counted","by":"UEVE","count":287,"first":"2026-11-28T12:00:01Z","last":"2026-11-28T12:00:59Z"}"#
        );
    }

    #[test]
    fn failures_are_recorded_by_code_and_text() {
        let event = AuditEvent::failed(id(), &FailureReason::InterruptedByShutdown, "interrupted: …".into());
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"failed","request":"JIT-7Q2M4X","code":"interrupted_by_shutdown","reason":"interrupted: …"}"#
        );
    }

    #[test]
    fn a_failure_entry_of_an_older_version_still_reads_and_verifies() {
        // Written before reasons were typed: no code. Its stored text is what its hash covers, and it must still
        // parse, or `jitgate audit verify` and the audit page would reject every old chain.
        let stored = super::super::item::StoredEntry {
            seq: 1,
            at: "2026-11-28T12:00:00Z".into(),
            request_id: Some("JIT-7Q2M4X".into()),
            actor: "jitgate".into(),
            event: r#"{"type":"failed","request":"JIT-7Q2M4X","reason":"the audit trail could not record this step, so nothing was run"}"#.into(),
            prev_hash: super::super::chain::GENESIS_HASH.into(),
            // Computed independently (the encoding in the `audit` module header) from the bytes above.
            hash: "73d0098fa3fd5d60d9a661abb47f2e1ee905169224375f9021761ae89ae578c5".into(),
        };
        assert_eq!(stored.computed_hash(), stored.hash, "the stored bytes still hash to the stored hash");
        let entry = stored.parse().expect("an old failure entry parses");
        let AuditEvent::Failed { code, reason, .. } = &entry.event else { panic!("{:?}", entry.event) };
        assert_eq!((code, reason.as_str()), (&None, "the audit trail could not record this step, so nothing was run"));
        // Re-encoding it gives back the bytes that were hashed.
        assert_eq!(serde_json::to_string(&entry.event).unwrap(), stored.event);
    }

    #[test]
    fn actor_text_round_trips() {
        for actor in [Actor::System, Actor::User(user("U012AB3CD"))] {
            assert_eq!(Actor::parse(actor.as_str()), Some(actor.clone()));
        }
        assert_eq!(Actor::parse("JITGATE"), None);
        assert_eq!(Actor::parse(""), None);
    }
}
