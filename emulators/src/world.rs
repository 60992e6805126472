//! The one world every test, benchmark and `make demo` play in: a Slack workspace with @alice, @bob, @carol and
//! @mallory, an approval channel and a team channel, and a PagerDuty account whose "Orders primary" schedule
//! (`PORDERS1`, the schedule the shipped runbooks name) has Bob, Carol and Alice on call. PagerDuty people are
//! matched to Slack users by email, as jitgate does for real.
//!
//! The Slack stories (`jitgate_testkit::harness`) and the demo (`jitgate-demo`) use [`slack_config`] and
//! [`add_oncall_roster`]; the engine tests build their roster from [`ON_CALL`]; the Web API tests (the emulator's
//! and jitgate's client's) use [`slack_config_with_edge_cases`], the same people and channels plus the corners a
//! real workspace has. Names and ids are defined here only.

use crate::pagerduty::{FakePagerDuty, Incident, OnCall};
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

/// Edge cases only: a public channel nobody invited the bot to.
pub const RANDOM: &str = "C0RANDOM";
/// Edge cases only: an archived channel.
pub const OLD: &str = "C0OLD";
/// Edge cases only: a private channel with the bot and Alice.
pub const SECRET: &str = "G0SECRET";
/// Edge cases only: a private channel with Bob and without the bot, invisible to it.
pub const HIDDEN: &str = "G0HIDDEN";

/// Everyone in the workspace: Slack id and handle. Each has the email `<handle>@example.com`.
pub const PEOPLE: [(&str, &str); 4] = [(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (MALLORY, "mallory")];

/// Who is on call through [`SCHEDULE`] (escalation level 1), in the order PagerDuty lists them: Slack id and
/// PagerDuty user id. Alice is on call too, because being on call must never let anyone approve their own
/// request.
pub const ON_CALL: [(&str, &str); 3] = [(BOB, "PBOB"), (CAROL, "PCAROL"), (ALICE, "PALICE")];

/// A person's Slack handle.
pub fn handle(slack_id: &str) -> &'static str {
    let found = PEOPLE.iter().find(|(id, _)| *id == slack_id).map(|(_, handle)| *handle);
    found.unwrap_or_else(|| panic!("{slack_id} is not in the world"))
}

/// A person's email, in Slack and in PagerDuty alike.
pub fn email(slack_id: &str) -> String {
    format!("{}@example.com", handle(slack_id))
}

fn person(slack_id: &str) -> User {
    User::new(slack_id, handle(slack_id)).with_email(Some(&email(slack_id)))
}

/// The Slack workspace of the stories: the four people and the two channels.
pub fn slack_config() -> SlackConfig {
    PEOPLE
        .iter()
        .fold(SlackConfig::default(), |config, (id, _)| config.with_user(person(id)))
        .with_channel(Channel::public(ONCALL, "oncall"))
        .with_channel(Channel::public(DEV, "dev"))
}

/// The same people and channels with the corners a real workspace has, for the Web API tests: Alice's email
/// stored as she typed it (`Alice@Example.com`, lookups must ignore case) and a real name, Carol deactivated, and
/// four more channels: [`RANDOM`] (bot not invited), [`OLD`] (archived), [`SECRET`] (private, with the bot and
/// Alice) and [`HIDDEN`] (private, without the bot).
pub fn slack_config_with_edge_cases() -> SlackConfig {
    let mut config = slack_config();
    for user in &mut config.users {
        *user = match user.id.as_str() {
            ALICE => user.clone().with_email(Some("Alice@Example.com")).with_real_name("Alice Liddell"),
            CAROL => user.clone().deactivated(),
            _ => user.clone(),
        };
    }
    config
        .with_channel(Channel::public(RANDOM, "random").without_bot())
        .with_channel(Channel::public(OLD, "old").archived())
        .with_channel(Channel::private(SECRET, "secret", &[ALICE]))
        .with_channel(Channel::private(HIDDEN, "hidden", &[BOB]).without_bot())
}

/// The on-call roster: [`ON_CALL`] through [`SCHEDULE`], which belongs to [`POLICY`].
pub fn add_oncall_roster(pagerduty: &FakePagerDuty) {
    for (slack_id, pagerduty_id) in ON_CALL {
        // PagerDuty shows the person's name: the handle, capitalised.
        let mut name = handle(slack_id).to_owned();
        name[..1].make_ascii_uppercase();
        pagerduty.add_user(pagerduty_id, &name, &email(slack_id));
    }
    pagerduty.add_schedule(SCHEDULE, "Orders primary");
    pagerduty.add_escalation_policy(POLICY, "Orders");
    for (_, pagerduty_id) in ON_CALL {
        pagerduty.add_oncall(OnCall::new(pagerduty_id, POLICY, 1).via_schedule(SCHEDULE));
    }
}

/// The PagerDuty service of the Orders system, which incident-gated runbooks accept incidents on.
pub const ORDERS_SERVICE: &str = "PORDERSVC";
/// Another team's service.
pub const BILLING_SERVICE: &str = "PBILLSVC";
/// Incident numbers: open on Orders, resolved on Orders, open on Billing.
pub const OPEN_INCIDENT: u64 = 1234;
pub const RESOLVED_INCIDENT: u64 = 1200;
pub const BILLING_INCIDENT: u64 = 1240;
/// The PagerDuty user jitgate writes incident notes as (`oncall.incident_notes_from`).
pub const NOTES_FROM: &str = "jitgate@example.com";

/// The incidents: [`OPEN_INCIDENT`] (acknowledged, Orders), [`RESOLVED_INCIDENT`] (Orders) and
/// [`BILLING_INCIDENT`] (triggered, Billing), plus jitgate's own PagerDuty user that writes the notes.
pub fn add_incidents(pagerduty: &FakePagerDuty) {
    pagerduty.add_user("PJITGATE", "jitgate", NOTES_FROM);
    pagerduty.add_service(ORDERS_SERVICE, "Orders");
    pagerduty.add_service(BILLING_SERVICE, "Billing");
    let incidents = [
        ("PINC1234", OPEN_INCIDENT, "Orders stuck in paid", "acknowledged", ORDERS_SERVICE),
        ("PINC1200", RESOLVED_INCIDENT, "Checkout latency", "resolved", ORDERS_SERVICE),
        ("PINC1240", BILLING_INCIDENT, "Invoices not sent", "triggered", BILLING_SERVICE),
    ];
    for (id, number, title, status, service) in incidents {
        pagerduty.add_incident(Incident {
            id: id.to_owned(),
            number,
            title: title.to_owned(),
            status: status.to_owned(),
            service: service.to_owned(),
            escalation_policy: Some(POLICY.to_owned()),
        });
    }
}

/// The environment of a `jitgate run` child process that plays in this world: the emulators' URLs and tokens,
/// `redis_url`, the local DynamoDB/STS server at `aws_endpoint`, and `link_secret` (the same on every replica that
/// shares records in Redis, since it also keys their seals). Nothing from the caller's environment: add what it
/// should inherit (`PATH`, `RUST_LOG`).
pub fn jitgate_environment(
    slack: &crate::slack::FakeSlack,
    pagerduty: &FakePagerDuty,
    redis_url: &str,
    aws_endpoint: &str,
    link_secret: &str,
) -> Vec<(String, String)> {
    vec![
        ("SLACK_API_URL".into(), slack.api_base()),
        ("SLACK_APP_TOKEN".into(), slack.app_token().into()),
        ("SLACK_BOT_TOKEN".into(), slack.bot_token().into()),
        ("PAGERDUTY_API_URL".into(), pagerduty.base_url()),
        ("PAGERDUTY_API_TOKEN".into(), pagerduty.api_key().into()),
        ("REDIS_URL".into(), redis_url.into()),
        ("AWS_ENDPOINT_URL".into(), aws_endpoint.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        // The local server accepts any credentials; these only have to look like some.
        ("AWS_ACCESS_KEY_ID".into(), "AKIAJITGATELOCAL0001".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "local-secret".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        // Empty profile files: nothing from the user's ~/.aws may send the process to a real account.
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
        ("JITGATE_LINK_SECRET".into(), link_secret.into()),
        // Logs go to files: no terminal colour codes in them.
        ("NO_COLOR".into(), "1".into()),
    ]
}
