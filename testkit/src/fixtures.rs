//! Access requests and rosters for tests, built through the same constructors the bot uses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jitgate::ids::{RequestId, RunbookId, SlackUserId};
use jitgate::request::{AccessRequest, NewRequest, Roster, RosterSource};
use jitgate::runbook::{ApprovalPolicy, ApproverSources, BoundValue, KeyValue, Operation, RenderedQuery};
use time::OffsetDateTime;

/// The PagerDuty schedule the fixture policy accepts approvers from.
pub const SCHEDULE: &str = "PSCHED1";

pub fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap_or_else(|| panic!("{id} is not a Slack user id"))
}

/// The requester of every fixture request.
pub fn requester() -> SlackUserId {
    user("UREQ")
}

/// The current wall-clock time, whole seconds. Redis expiry is absolute wall-clock time, so records written by
/// tests must carry timestamps near the real now (a fixed date in the past would expire the key at once); whole
/// seconds keep expected expiry times exact.
pub fn wall_clock_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// `orders-by-customer` rendered for customer C000042.
pub fn rendered_query() -> RenderedQuery {
    RenderedQuery {
        runbook: RunbookId::parse("orders-by-customer").expect("valid runbook id"),
        role_arn: "arn:aws:iam::123456789012:role/jitgate-orders-read".into(),
        table: "Orders".into(),
        table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/Orders".into(),
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

/// Approvers on call in [`SCHEDULE`]; `required` distinct approvals; a reason required; `ttl` to decide.
pub fn policy(required: u8, ttl: Duration) -> ApprovalPolicy {
    ApprovalPolicy {
        approvers: ApproverSources {
            pagerduty_schedules: BTreeSet::from([SCHEDULE.to_owned()]),
            pagerduty_escalation_policies: BTreeSet::new(),
            slack_users: BTreeSet::new(),
        },
        required_approvals: required,
        require_reason: true,
        ttl,
        escalation: None,
    }
}

/// A fresh pending request (new random id) by [`requester`], made at `now`.
pub fn pending_request(now: OffsetDateTime, required: u8, ttl: Duration) -> AccessRequest {
    AccessRequest::create(
        NewRequest {
            id: RequestId::generate(),
            requester: requester(),
            reason: Some("INC-812 customer reports missing order".into()),
            query: rendered_query(),
            policy: policy(required, ttl),
            incident: None,
        },
        now,
    )
    .expect("the fixture request has a reason")
}

/// A roster, fetched at `as_of`, with each of `approvers` on call in [`SCHEDULE`].
pub fn roster(as_of: OffsetDateTime, approvers: &[SlackUserId]) -> Roster {
    approvers.iter().fold(Roster::new(as_of), |roster, approver| {
        roster.with(approver.clone(), RosterSource::Schedule(SCHEDULE.into()), format!("PagerDuty schedule {SCHEDULE}"))
    })
}

/// The world's on-call roster ([`jitgate_emulators::world::ON_CALL`]), fetched at `as_of`: what the PagerDuty
/// emulator started with [`jitgate_emulators::world::add_oncall_roster`] reports, for tests that skip PagerDuty.
pub fn world_roster(as_of: OffsetDateTime) -> Roster {
    use jitgate_emulators::world::{ON_CALL, SCHEDULE};
    ON_CALL.iter().fold(Roster::new(as_of), |roster, (slack_id, _)| {
        roster.with(
            user(slack_id),
            RosterSource::Schedule(SCHEDULE.into()),
            format!("PagerDuty schedule {SCHEDULE}, level 1"),
        )
    })
}

/// `count` distinct approver ids: UAPPROVER0, UAPPROVER1, …
pub fn approvers(count: usize) -> Vec<SlackUserId> {
    (0..count).map(|n| user(&format!("UAPPROVER{n}"))).collect()
}
