//! The demo's world: [`jitgate_emulators::world`], the one the Slack stories of `jitgate_testkit::harness` run in,
//! started for the demo, with the names the transcript prints.

use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;
pub use jitgate_emulators::world::{ALICE, BOB, CAROL, DEV, MALLORY, NOTES_FROM, ONCALL, OPEN_INCIDENT, SCHEDULE};

use crate::render::Names;

/// The Slack emulator with the workspace, and how long its waits may take before the step fails.
pub async fn slack(wait_deadline: std::time::Duration) -> anyhow::Result<FakeSlack> {
    // The story checks for unread output as a step of its own ("nothing else was posted"), reported like any
    // failed step.
    let config = jitgate_emulators::world::slack_config().with_wait_deadline(wait_deadline).without_unread_check();
    FakeSlack::try_start(config).await
}

/// The PagerDuty emulator with the on-call roster.
pub async fn pagerduty() -> FakePagerDuty {
    let pagerduty = FakePagerDuty::start().await;
    jitgate_emulators::world::add_oncall_roster(&pagerduty);
    jitgate_emulators::world::add_incidents(&pagerduty);
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
         @alice, who still cannot approve her own request); @mallory is not on call. Cards go to #oncall. PagerDuty incident #{OPEN_INCIDENT} (Orders) is open."
    )
}
