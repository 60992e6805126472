//! Unit tests of the state machine and approval rules.

use std::collections::{BTreeMap, BTreeSet};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::ids::RunbookId;
use crate::runbook::{ApproverSources, BoundValue, KeyValue, Operation};

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap()
}

fn query() -> RenderedQuery {
    RenderedQuery {
        runbook: RunbookId::parse("orders-by-customer").unwrap(),
        role_arn: "arn:aws:iam::123456789012:role/jitgate-orders-read".into(),
        table: "Orders".into(),
        table_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders".into(),
        index: None,
        index_arn: None,
        operation: Operation::Query,
        key: vec![],
        partition_key: Some(KeyValue { attribute: "customer_id".into(), value: BoundValue::S("C000042".into()) }),
        key_condition_expression: Some("#pk = :pk".into()),
        filter_expression: None,
        projection_expression: None,
        expression_attribute_names: BTreeMap::from([("#pk".into(), "customer_id".into())]),
        expression_attribute_values: BTreeMap::from([(":pk".into(), BoundValue::S("C000042".into()))]),
        projected_attributes: vec![],
        accessed_attributes: vec!["customer_id".into()],
        masked_attributes: vec![],
        item_cap: 100,
        update: None,
        unmasked_attributes: vec![],
    }
}

fn policy(required: u8) -> ApprovalPolicy {
    ApprovalPolicy {
        approvers: ApproverSources {
            pagerduty_schedules: BTreeSet::from(["PSCHED1".to_owned()]),
            pagerduty_escalation_policies: BTreeSet::from(["PESC1".to_owned()]),
            slack_users: BTreeSet::from([user("UOWNER")]),
        },
        required_approvals: required,
        require_reason: true,
        ttl: std::time::Duration::from_secs(30 * 60),
        escalation: None,
    }
}

fn pending(required: u8) -> AccessRequest {
    AccessRequest::create(
        NewRequest {
            id: RequestId::parse("JIT-7Q2M4X").unwrap(),
            requester: user("UREQ"),
            reason: Some("INC-812".into()),
            query: query(),
            policy: policy(required),
            incident: None,
        },
        NOW,
    )
    .unwrap()
}

fn roster() -> Roster {
    Roster::new(NOW)
        .with(user("UBOB"), RosterSource::Schedule("PSCHED1".into()), "PagerDuty schedule PSCHED1")
        .with(user("UCAROL"), RosterSource::EscalationPolicy("PESC1".into()), "PagerDuty escalation policy PESC1")
        .with(user("UREQ"), RosterSource::Schedule("PSCHED1".into()), "PagerDuty schedule PSCHED1")
        .with(user("UDAVE"), RosterSource::Schedule("POTHER".into()), "PagerDuty schedule POTHER")
        .with(user("UOWNER"), RosterSource::NamedApprover, "named in the runbook")
}

fn refused(outcome: ApproveOutcome) -> Refusal {
    match outcome {
        ApproveOutcome::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn create_sets_pending_window_and_fingerprint() {
    let req = pending(1);
    assert_eq!(req.state(), RequestState::Pending);
    assert_eq!(req.version, 1);
    assert_eq!(req.expires_at, NOW + Duration::minutes(30));
    assert_eq!(req.fingerprint, query().fingerprint());
}

#[test]
fn create_refuses_missing_reason_when_required() {
    for reason in [None, Some("   ".to_owned())] {
        let new = NewRequest {
            id: RequestId::generate(),
            requester: user("UREQ"),
            reason,
            query: query(),
            policy: policy(1),
            incident: None,
        };
        assert_eq!(AccessRequest::create(new, NOW), Err(Refusal::ReasonRequired));
    }
    let mut optional = policy(1);
    optional.require_reason = false;
    let new = NewRequest {
        id: RequestId::generate(),
        requester: user("UREQ"),
        reason: None,
        query: query(),
        policy: optional,
        incident: None,
    };
    assert!(AccessRequest::create(new, NOW).is_ok());
}

#[test]
fn on_call_approver_approves_and_gets_the_approved_query() {
    let req = pending(1);
    let ApproveOutcome::Approved { next, query } = approve(&req, &user("UBOB"), &roster(), NOW + Duration::minutes(1))
    else {
        panic!("expected approval");
    };
    assert_eq!(next.state(), RequestState::Approved);
    assert_eq!(next.version, 2);
    assert_eq!(next.approvals.len(), 1);
    assert_eq!(next.approvals[0].evidence.source, RosterSource::Schedule("PSCHED1".into()));
    assert_eq!(query.request_id(), &req.id);
    assert_eq!(query.approvers(), &[user("UBOB")]);
    assert!(query.is_intact());
}

#[test]
fn escalation_policy_and_named_approvers_are_accepted() {
    for approver in ["UCAROL", "UOWNER"] {
        assert!(matches!(approve(&pending(1), &user(approver), &roster(), NOW), ApproveOutcome::Approved { .. }));
    }
}

#[test]
fn requester_can_never_approve_even_when_on_call() {
    assert_eq!(refused(approve(&pending(1), &user("UREQ"), &roster(), NOW)), Refusal::SelfApproval);
}

#[test]
fn off_roster_or_wrong_source_is_not_on_call() {
    assert_eq!(refused(approve(&pending(1), &user("UNOBODY"), &roster(), NOW)), Refusal::NotOnCall);
    // On call, but for a schedule this runbook does not accept.
    assert_eq!(refused(approve(&pending(1), &user("UDAVE"), &roster(), NOW)), Refusal::NotOnCall);
    // Named in the roster as an approver, but the runbook names someone else.
    let r = Roster::new(NOW).with(user("UDAVE"), RosterSource::NamedApprover, "named");
    assert_eq!(refused(approve(&pending(1), &user("UDAVE"), &r, NOW)), Refusal::NotOnCall);
}

#[test]
fn stale_roster_is_refused() {
    let old = Roster { as_of: NOW - MAX_ROSTER_AGE - Duration::seconds(1), ..roster() };
    assert_eq!(refused(approve(&pending(1), &user("UBOB"), &old, NOW)), Refusal::RosterStale);
    let future = Roster { as_of: NOW + MAX_ROSTER_AGE + Duration::seconds(1), ..roster() };
    assert_eq!(refused(approve(&pending(1), &user("UBOB"), &future, NOW)), Refusal::RosterStale);
}

#[test]
fn approval_after_the_window_is_expired() {
    let req = pending(1);
    let roster = Roster { as_of: req.expires_at, ..roster() };
    assert_eq!(refused(approve(&req, &user("UBOB"), &roster, req.expires_at)), Refusal::Expired);
}

#[test]
fn two_distinct_approvers_needed_when_policy_says_two() {
    let req = pending(2);
    let ApproveOutcome::Recorded { next, approvals, required } = approve(&req, &user("UBOB"), &roster(), NOW) else {
        panic!("expected a recorded approval");
    };
    assert_eq!((approvals, required), (1, 2));
    assert_eq!(next.state(), RequestState::Pending);
    assert_eq!(next.version, 2);
    // The same person clicking again does not count twice.
    assert_eq!(refused(approve(&next, &user("UBOB"), &roster(), NOW)), Refusal::AlreadyApprovedBy);
    let ApproveOutcome::Approved { next, query } = approve(&next, &user("UCAROL"), &roster(), NOW) else {
        panic!("expected approval");
    };
    assert_eq!(next.version, 3);
    assert_eq!(query.approvers(), &[user("UBOB"), user("UCAROL")]);
}

#[test]
fn approving_a_non_pending_request_says_what_it_is() {
    let ApproveOutcome::Approved { next, .. } = approve(&pending(1), &user("UBOB"), &roster(), NOW) else { panic!() };
    assert_eq!(refused(approve(&next, &user("UCAROL"), &roster(), NOW)), Refusal::NotPending(RequestState::Approved));
}

#[test]
fn deny_follows_the_approver_rules_and_keeps_the_reason() {
    let req = pending(1);
    assert_eq!(deny(&req, &user("UREQ"), None, &roster(), NOW), Err(Refusal::SelfApproval));
    assert_eq!(deny(&req, &user("UNOBODY"), None, &roster(), NOW), Err(Refusal::NotOnCall));
    let denied = deny(&req, &user("UBOB"), Some("  use the replica ".into()), &roster(), NOW).unwrap();
    assert_eq!(denied.status, Status::Denied { at: NOW, by: user("UBOB"), reason: Some("use the replica".into()) });
    assert_eq!(denied.version, 2);
}

#[test]
fn only_the_requester_cancels_and_only_while_pending() {
    let req = pending(1);
    assert_eq!(cancel(&req, &user("UBOB"), NOW), Err(Refusal::NotRequester));
    let cancelled = cancel(&req, &user("UREQ"), NOW).unwrap();
    assert_eq!(cancelled.state(), RequestState::Cancelled);
    assert_eq!(cancel(&cancelled, &user("UREQ"), NOW), Err(Refusal::NotPending(RequestState::Cancelled)));
}

#[test]
fn expire_only_after_the_window_and_only_when_pending() {
    let req = pending(1);
    assert_eq!(expire(&req, req.expires_at - Duration::seconds(1)), None);
    let expired = expire(&req, req.expires_at).unwrap();
    assert_eq!(expired.state(), RequestState::Expired);
    assert_eq!(expire(&expired, req.expires_at + Duration::hours(1)), None);
}

#[test]
fn run_lifecycle_start_succeed_and_fail() {
    let ApproveOutcome::Approved { next, query } = approve(&pending(1), &user("UBOB"), &roster(), NOW) else {
        panic!()
    };
    let running = start(&next, &query, NOW).unwrap();
    assert_eq!(running.state(), RequestState::Running);
    // A second start on the running record is refused: one execution.
    assert_eq!(start(&running, &query, NOW), Err(Refusal::NotPending(RequestState::Running)));
    let summary = ExecutionSummary {
        row_count: 3,
        truncated: false,
        consumed_capacity: 0.5,
        result_sha256: "ab".into(),
        write: None,
        unmasked: vec![],
    };
    let done = succeed(&running, summary, NOW).unwrap();
    assert_eq!(done.state(), RequestState::Succeeded);
    assert!(done.state().is_final());
    assert_eq!(fail(&done, FailureReason::Interrupted, NOW), Err(Refusal::NotPending(RequestState::Succeeded)));
    let failed = fail(&running, FailureReason::AuditUnavailable, NOW).unwrap();
    assert_eq!(failed.status, Status::Failed { at: NOW, reason: FailureReason::AuditUnavailable });
}

/// A failed record exactly as the version before typed failure reasons wrote it to Redis: `reason` a plain string.
const OLD_FAILED_RECORD: &str = r##"{"id":"JIT-7Q2M4X","requester":"UREQ","reason":"INC-812","query":{"runbook":"orders-by-customer","role_arn":"arn:aws:iam::123456789012:role/jitgate-orders-read","table":"Orders","table_arn":"arn:aws:dynamodb:eu-west-1:123456789012:table/Orders","index":null,"index_arn":null,"operation":"query","key":[],"partition_key":{"attribute":"customer_id","value":{"S":"C000042"}},"key_condition_expression":"#pk = :pk","filter_expression":null,"projection_expression":null,"expression_attribute_names":{"#pk":"customer_id"},"expression_attribute_values":{":pk":{"S":"C000042"}},"projected_attributes":[],"accessed_attributes":["customer_id"],"masked_attributes":[],"item_cap":100},"fingerprint":"92639e66882277fa68369f4f2c049852b82ff81771270c9086dc6048873a8d40","policy":{"approvers":{"pagerduty_schedules":["PSCHED1"],"pagerduty_escalation_policies":["PESC1"],"slack_users":["UOWNER"]},"required_approvals":1,"require_reason":true,"ttl":"30m"},"status":{"state":"failed","at":"2026-11-28T12:00:00Z","reason":"the audit trail could not record this step, so nothing was run"},"version":4,"created_at":"2026-11-28T12:00:00Z","expires_at":"2026-11-28T12:30:00Z","approvals":[{"approver":"UBOB","at":"2026-11-28T12:00:00Z","evidence":{"source":{"kind":"schedule","id":"PSCHED1"},"evidence":"PagerDuty schedule PSCHED1"}}],"card":null,"reminded":false}"##;

#[test]
fn a_failed_record_stored_by_the_previous_version_still_loads() {
    let old: AccessRequest = serde_json::from_str(OLD_FAILED_RECORD).expect("an old failed record loads");
    let legacy = FailureReason::Legacy("the audit trail could not record this step, so nothing was run".into());
    assert_eq!(old.status, Status::Failed { at: NOW, reason: legacy });
    assert_eq!((old.id.as_str(), old.version, old.approvals.len()), ("JIT-7Q2M4X", 4, 1));
    // Written back exactly as it was read.
    assert_eq!(serde_json::to_string(&old).unwrap(), OLD_FAILED_RECORD);
    // The same request failed now is stored with its code.
    let ApproveOutcome::Approved { next, query } = approve(&pending(1), &user("UBOB"), &roster(), NOW) else {
        panic!()
    };
    let failed = fail(&start(&next, &query, NOW).unwrap(), FailureReason::AuditUnavailable, NOW).unwrap();
    let json = serde_json::to_string(&failed).unwrap();
    assert!(
        json.contains(
            r#""status":{"state":"failed","at":"2026-11-28T12:00:00Z","reason":{"code":"audit_unavailable"}}"#
        ),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<AccessRequest>(&json).unwrap(), failed);
}

#[test]
fn start_refuses_an_approved_query_of_another_request() {
    let ApproveOutcome::Approved { query, .. } = approve(&pending(1), &user("UBOB"), &roster(), NOW) else { panic!() };
    let other = AccessRequest::create(
        NewRequest {
            id: RequestId::parse("JIT-000000").unwrap(),
            requester: user("UREQ"),
            reason: Some("x".into()),
            query: super::tests::query(),
            policy: policy(1),
            incident: None,
        },
        NOW,
    )
    .unwrap();
    let ApproveOutcome::Approved { next: other_approved, .. } = approve(&other, &user("UBOB"), &roster(), NOW) else {
        panic!()
    };
    assert_eq!(start(&other_approved, &query, NOW), Err(Refusal::NotPending(RequestState::Approved)));
}

#[test]
fn a_tampered_query_is_not_intact() {
    let req = pending(1);
    let mut tampered = req.clone();
    tampered.query.expression_attribute_values.insert(":pk".into(), BoundValue::S("C999999".into()));
    let ApproveOutcome::Approved { query, .. } = approve(&tampered, &user("UBOB"), &roster(), NOW) else { panic!() };
    assert!(!query.is_intact(), "the stored fingerprint no longer matches the query");
}

#[test]
fn records_round_trip_through_json() {
    let ApproveOutcome::Approved { next, .. } = approve(&pending(1), &user("UBOB"), &roster(), NOW) else { panic!() };
    let json = serde_json::to_string(&next).unwrap();
    let back: AccessRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, next);
}

#[test]
fn a_card_can_be_attached_in_any_state_and_bumps_the_version() {
    let req = pending(1);
    let card = CardRef { channel: "C1".into(), ts: "1.2".into() };
    let with_card = attach_card(&req, card.clone());
    assert_eq!((with_card.card.clone(), with_card.version, with_card.state()), (Some(card), 2, RequestState::Pending));
}

#[test]
fn the_halfway_reminder_comes_once_and_only_while_pending() {
    let req = pending(1);
    assert_eq!(remind(&req, NOW + Duration::minutes(14)), None, "not yet half way");
    let reminded = remind(&req, NOW + Duration::minutes(15)).expect("half way");
    assert!(reminded.reminded);
    assert_eq!(remind(&reminded, NOW + Duration::minutes(20)), None, "only once");
    assert_eq!(remind(&req, req.expires_at), None, "expired requests are not reminded");
    let cancelled = cancel(&req, &user("UREQ"), NOW).unwrap();
    assert_eq!(remind(&cancelled, NOW + Duration::minutes(15)), None);
}

#[test]
fn may_decide_is_what_approve_and_deny_both_check() {
    let request = pending(1);
    assert_eq!(may_decide(&request, &user("UBOB"), &roster(), NOW), Ok(()));
    assert_eq!(may_decide(&request, &user("UREQ"), &roster(), NOW), Err(Refusal::SelfApproval));
    assert_eq!(may_decide(&request, &user("UMALLORY"), &roster(), NOW), Err(Refusal::NotOnCall));
    let stale = NOW + MAX_ROSTER_AGE + Duration::seconds(1);
    assert_eq!(may_decide(&request, &user("UBOB"), &roster(), stale), Err(Refusal::RosterStale));
    // It agrees with Deny, which the deny form is offered on.
    for who in ["UBOB", "UREQ", "UMALLORY"] {
        let denied = deny(&request, &user(who), None, &roster(), NOW).map(|_| ());
        assert_eq!(may_decide(&request, &user(who), &roster(), NOW), denied, "{who}");
    }
}

#[test]
fn a_shift_that_ended_makes_nobody_eligible_even_on_a_fresh_roster() {
    let req = pending(1);
    let end = NOW + Duration::minutes(2);
    let shift = OnCallEntry {
        source: RosterSource::Schedule("PSCHED1".into()),
        evidence: "PagerDuty schedule PSCHED1, level 1, on call until 12:02".into(),
        until: Some(end),
    };
    let roster = Roster::new(NOW).with_entry(user("UBOB"), shift);
    // Within the shift: eligible.
    assert!(may_decide(&req, &user("UBOB"), &roster, end - Duration::seconds(1)).is_ok());
    // From its end on, the same roster (still fresh: two minutes old) proves nothing about Bob.
    for now in [end, end + Duration::seconds(30)] {
        assert!(now - roster.as_of <= MAX_ROSTER_AGE, "the roster is still fresh");
        assert_eq!(may_decide(&req, &user("UBOB"), &roster, now), Err(Refusal::NotOnCall));
        assert_eq!(refused(approve(&req, &user("UBOB"), &roster, now)), Refusal::NotOnCall);
    }
}

#[test]
fn unmasking_needs_one_more_approver_than_the_runbook_says() {
    let mut q = query();
    q.unmasked_attributes = vec!["email".into()];
    let new = |query: RenderedQuery, required: u8| NewRequest {
        id: RequestId::parse("JIT-7Q2M4X").unwrap(),
        requester: user("UREQ"),
        reason: Some("INC-812".into()),
        query,
        policy: policy(required),
        incident: None,
    };
    let req = AccessRequest::create(new(q.clone(), 1), NOW).unwrap();
    assert_eq!(req.policy.required_approvals, 2);
    let ApproveOutcome::Recorded { next, approvals, required } = approve(&req, &user("UBOB"), &roster(), NOW) else {
        panic!("one approval is not enough to unmask");
    };
    assert_eq!((approvals, required), (1, 2));
    assert!(matches!(approve(&next, &user("UCAROL"), &roster(), NOW), ApproveOutcome::Approved { .. }));
    assert_eq!(AccessRequest::create(new(q, 2), NOW).unwrap().policy.required_approvals, 3, "a write: 2 + 1");
    assert_eq!(AccessRequest::create(new(query(), 1), NOW).unwrap().policy.required_approvals, 1, "no unmask: as is");
}

#[test]
fn break_glass_needs_the_requester_on_call_and_clears_the_query_without_approvers() {
    let req = pending(2);
    assert_eq!(may_break_glass(&req.policy, &user("UDAVE"), &roster(), NOW), Err(Refusal::NotOnCall));
    let stale = Roster { as_of: NOW - Duration::minutes(10), ..roster() };
    assert_eq!(may_break_glass(&req.policy, &user("UREQ"), &stale, NOW), Err(Refusal::RosterStale));
    let evidence = may_break_glass(&req.policy, &user("UREQ"), &roster(), NOW).unwrap();
    let (next, query) = break_glass(&req, evidence, NOW).unwrap();
    assert_eq!((next.state(), next.version), (RequestState::Approved, 2));
    assert!(query.approvers().is_empty() && query.is_intact());
    assert!(next.break_glass.as_ref().is_some_and(|b| b.reviewed.is_none() && !b.alerted));
    assert_eq!(
        break_glass(&next, roster().entries_for(&user("UREQ"))[0].clone(), NOW).unwrap_err(),
        Refusal::NotPending(RequestState::Approved)
    );
}

#[test]
fn a_break_glass_run_is_reviewed_once_by_someone_else_on_call() {
    let req = pending(1);
    let evidence = may_break_glass(&req.policy, &user("UREQ"), &roster(), NOW).unwrap();
    let (run, _) = break_glass(&req, evidence, NOW).unwrap();
    assert_eq!(review(&req, &user("UBOB"), &roster(), NOW), Err(BreakGlassRefusal::NotBreakGlass));
    assert_eq!(review(&run, &user("UREQ"), &roster(), NOW), Err(BreakGlassRefusal::OwnRun));
    assert_eq!(review(&run, &user("UDAVE"), &roster(), NOW), Err(BreakGlassRefusal::NotOnCall(Refusal::NotOnCall)));
    let reviewed = review(&run, &user("UBOB"), &roster(), NOW).unwrap();
    assert_eq!(
        reviewed.break_glass.as_ref().and_then(|b| b.reviewed.as_ref()).map(|r| r.by.clone()),
        Some(user("UBOB"))
    );
    assert_eq!(
        review(&reviewed, &user("UCAROL"), &roster(), NOW),
        Err(BreakGlassRefusal::AlreadyReviewed { by: user("UBOB") })
    );
    // The alert is due once, only while unreviewed.
    let within = Duration::minutes(30);
    assert_eq!(review_overdue(&run, within, NOW + Duration::minutes(29)), None);
    let alerted = review_overdue(&run, within, NOW + within).unwrap();
    assert_eq!(review_overdue(&alerted, within, NOW + Duration::hours(2)), None);
    assert_eq!(review_overdue(&reviewed, within, NOW + Duration::hours(2)), None);
}

#[test]
fn escalation_widens_one_level_per_wait_up_to_the_maximum() {
    let mut req = pending(1);
    req.policy.escalation =
        Some(crate::runbook::Escalation { after: std::time::Duration::from_secs(600), max_level: 3 });
    req.expires_at = NOW + Duration::hours(1);
    assert_eq!(escalation_level(&req), 1);
    assert_eq!(escalate(&req, NOW + Duration::minutes(9)), None);
    let Some(Escalated::Widened { next, level: 2, at_max: false }) = escalate(&req, NOW + Duration::minutes(10)) else {
        panic!("level 2 is due after one wait")
    };
    assert_eq!(escalate(&next, NOW + Duration::minutes(19)), None, "level 3 needs a second wait");
    let Some(Escalated::Widened { next, level: 3, at_max: true }) = escalate(&next, NOW + Duration::minutes(20)) else {
        panic!("level 3 is due after two waits")
    };
    assert_eq!(escalate(&next, NOW + Duration::minutes(50)), None, "it stays at its maximum");
    assert_eq!(escalate(&pending(1), NOW + Duration::hours(1)), None, "no escalation configured");
}

#[test]
fn the_next_escalation_is_due_one_wait_per_level_and_never_past_the_maximum() {
    let mut req = pending(1);
    assert_eq!(escalation_due_at(&req), None, "no escalation configured");
    req.policy.escalation =
        Some(crate::runbook::Escalation { after: std::time::Duration::from_secs(600), max_level: 3 });
    req.expires_at = NOW + Duration::hours(1);
    assert_eq!(escalation_due_at(&req), Some(NOW + Duration::minutes(10)));
    let Some(Escalated::Widened { next, .. }) = escalate(&req, NOW + Duration::minutes(10)) else { panic!("due") };
    assert_eq!(escalation_due_at(&next), Some(NOW + Duration::minutes(20)));
    let Some(Escalated::Widened { next, .. }) = escalate(&next, NOW + Duration::minutes(20)) else { panic!("due") };
    assert_eq!(escalation_due_at(&next), None, "at its maximum");
}
