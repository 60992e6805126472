//! The one world the Slack stories (`tests/support/harness.rs`) and `make demo` (`jitgate-demo`) run in: a Slack
//! workspace with @alice, @bob, @carol and @mallory, an approval channel and a team channel, and a PagerDuty account
//! whose "Orders primary" schedule (`PORDERS1`, the schedule the shipped runbooks name) has Bob, Carol and Alice on
//! call. PagerDuty people are matched to Slack users by email, as jitgate does for real.

use crate::pagerduty::{FakePagerDuty, OnCall};
use crate::slack::{Channel, SlackConfig, User};

pub const ALICE: &str = "U0ALICE";
pub const BOB: &str = "U0BOB";
pub const CAROL: &str = "U0CAROL";
/// Not on call: an approver's click from @mallory is refused.
pub const MALLORY: &str = "U0MALLORY";
/// Where approval cards go (`slack.approval_channel`).
pub const ONCALL: &str = "C0ONCALL";
/// Where people type commands.
pub const DEV: &str = "C0DEVTEAM";
/// The schedule the shipped runbooks take approvers from.
pub const SCHEDULE: &str = "PORDERS1";
/// The escalation policy the schedule belongs to.
pub const POLICY: &str = "PORDERSEP";

/// The Slack workspace: the four people and the two channels.
pub fn slack_config() -> SlackConfig {
    SlackConfig::default()
        .with_user(User::new(ALICE, "alice").with_email(Some("alice@example.com")))
        .with_user(User::new(BOB, "bob").with_email(Some("bob@example.com")))
        .with_user(User::new(CAROL, "carol").with_email(Some("carol@example.com")))
        .with_user(User::new(MALLORY, "mallory").with_email(Some("mallory@example.com")))
        .with_channel(Channel::public(ONCALL, "oncall"))
        .with_channel(Channel::public(DEV, "dev"))
}

/// The on-call roster: Bob, Carol and Alice on call through `PORDERS1`. Alice is on call too, because being on
/// call must never let anyone approve their own request.
pub fn add_oncall_roster(pagerduty: &FakePagerDuty) {
    pagerduty.add_user("PBOB", "Bob", "bob@example.com");
    pagerduty.add_user("PCAROL", "Carol", "carol@example.com");
    pagerduty.add_user("PALICE", "Alice", "alice@example.com");
    pagerduty.add_schedule(SCHEDULE, "Orders primary");
    pagerduty.add_escalation_policy(POLICY, "Orders");
    for user in ["PBOB", "PCAROL", "PALICE"] {
        pagerduty.add_oncall(OnCall::new(user, POLICY, 1).via_schedule(SCHEDULE));
    }
}
