//! Who may approve a runbook's requests, and how: the `approval:` section of a runbook.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::SlackUserId;

/// Where approvers come from. Someone may approve when they are on call now in one of the PagerDuty schedules or
/// escalation policies, or named here as a Slack user (named users must still be on the roster given at click time,
/// which lists them as always available).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverSources {
    #[serde(default)]
    pub pagerduty_schedules: BTreeSet<String>,
    #[serde(default)]
    pub pagerduty_escalation_policies: BTreeSet<String>,
    #[serde(default)]
    pub slack_users: BTreeSet<SlackUserId>,
}

impl ApproverSources {
    pub fn is_empty(&self) -> bool {
        self.pagerduty_schedules.is_empty()
            && self.pagerduty_escalation_policies.is_empty()
            && self.slack_users.is_empty()
    }
}

/// A runbook's approval policy, copied into each request when it is created so a runbook edited later does not
/// change the rules for requests already in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    pub approvers: ApproverSources,
    /// Distinct approvers needed (never counting the requester).
    #[serde(default = "one")]
    pub required_approvals: u8,
    #[serde(default = "yes")]
    pub require_reason: bool,
    /// How long a request waits for approval before it expires.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Staged escalation of the approvers when nobody decides (`approval.escalate_after`). Left out of records
    /// and audit entries without it, so those written before it existed read and hash as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<super::gates::Escalation>,
}

fn one() -> u8 {
    1
}

fn yes() -> bool {
    true
}
