//! The demo's world, the same one the Slack stories in `tests/support/harness.rs` run in: a workspace with
//! @alice, @bob, @carol and @mallory, an approval channel and a team channel, and a PagerDuty account whose
//! "Orders primary" schedule (`PORDERS1`, the schedule the shipped runbooks name) has Bob, Carol and Alice on call.
//! PagerDuty people are matched to Slack users by email, as jitgate does for real.

use jitgate_emulators::pagerduty::{FakePagerDuty, OnCall};
use jitgate_emulators::slack::{Channel, FakeSlack, SlackConfig, User};

use crate::render::Names;

pub const ALICE: &str = "U0ALICE";
pub const BOB: &str = "U0BOB";
pub const CAROL: &str = "U0CAROL";
pub const MALLORY: &str = "U0MALLORY";
/// Where approval cards go (`slack.approval_channel`).
pub const ONCALL: &str = "C0ONCALL";
/// Where people type commands.
pub const DEV: &str = "C0DEVTEAM";
/// The schedule the shipped runbooks take approvers from.
pub const SCHEDULE: &str = "PORDERS1";
const POLICY: &str = "PORDERSEP";

/// The Slack emulator with the workspace, and how long its waits may take before the step fails.
pub async fn slack(wait_deadline: std::time::Duration) -> anyhow::Result<FakeSlack> {
    FakeSlack::try_start(
        SlackConfig::default()
            .with_user(User::new(ALICE, "alice").with_email(Some("alice@example.com")))
            .with_user(User::new(BOB, "bob").with_email(Some("bob@example.com")))
            .with_user(User::new(CAROL, "carol").with_email(Some("carol@example.com")))
            .with_user(User::new(MALLORY, "mallory").with_email(Some("mallory@example.com")))
            .with_channel(Channel::public(ONCALL, "oncall"))
            .with_channel(Channel::public(DEV, "dev"))
            .with_wait_deadline(wait_deadline),
    )
    .await
}

/// The PagerDuty emulator with the on-call roster.
pub async fn pagerduty() -> FakePagerDuty {
    let pagerduty = FakePagerDuty::start().await;
    pagerduty.add_user("PBOB", "Bob", "bob@example.com");
    pagerduty.add_user("PCAROL", "Carol", "carol@example.com");
    pagerduty.add_user("PALICE", "Alice", "alice@example.com");
    pagerduty.add_schedule(SCHEDULE, "Orders primary");
    pagerduty.add_escalation_policy(POLICY, "Orders");
    // Alice is on call too: being on call never lets anyone approve their own request.
    for user in ["PBOB", "PCAROL", "PALICE"] {
        pagerduty.add_oncall(OnCall::new(user, POLICY, 1).via_schedule(SCHEDULE));
    }
    pagerduty
}

/// Display names for the transcript, the bot included.
pub fn names(slack: &FakeSlack) -> Names {
    let config = slack.config();
    let mut names = Names::default();
    for user in &config.users {
        names.users.insert(user.id.clone(), user.name.clone());
    }
    names.users.insert(config.bot.user_id.clone(), config.bot.name.clone());
    for channel in &config.channels {
        names.channels.insert(channel.id.clone(), channel.name.clone());
    }
    names
}

/// One line describing the world, for the top of the transcript.
pub fn summary() -> String {
    format!(
        "Slack workspace: @alice asks for data; @bob and @carol are on call in PagerDuty schedule {SCHEDULE} (so is \
         @alice, who still cannot approve her own request); @mallory is not on call. Cards go to #oncall."
    )
}
