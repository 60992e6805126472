//! The edges of what jitgate trusts: an on-call shift only until its end, only full members of the workspace as
//! approvers, only envelopes for this app in this workspace. Each test fails if its guard is removed.

use jitgate_testkit as support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jitgate::app::SlackWebDirectory;
use jitgate::clock::{Clock, ManualClock};
use jitgate::ids::SlackUserId;
use jitgate::messages;
use jitgate::messages::APPROVE_ACTION;
use jitgate::oncall::{
    Exclusion, PagerDutyClient, PagerDutySettings, RosterCache, RosterOrigin, RosterProvider, SlackDirectory,
};
use jitgate::request::{Refusal, may_decide};
use jitgate::slack::{SlackWeb, WebSettings};
use jitgate_emulators::pagerduty::{FakePagerDuty, OnCall};
use jitgate_emulators::slack::{Elsewhere, FakeSlack, SlackConfig, User};
use secrecy::SecretString;
use support::fixtures;
use support::harness::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

/// Slack accounts by email.
#[derive(Debug, Default)]
struct FixedDirectory(BTreeMap<String, SlackUserId>);

#[async_trait]
impl SlackDirectory for FixedDirectory {
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>> {
        Ok(self.0.get(email).cloned())
    }
}

/// Tim's shift ends 30 seconds after the roster is fetched; the cache keeps that roster for a minute. From the end
/// of his shift on, the cached roster (fresh as it is) no longer lets him approve.
#[tokio::test]
async fn an_approver_whose_shift_ended_is_refused_while_the_cached_roster_is_still_fresh() {
    let pd = FakePagerDuty::start().await;
    pd.set_now(NOW);
    let shift_end = NOW + time::Duration::seconds(30);
    pd.add_user("PTIM001", "Tim Wright", "tim@example.com");
    pd.add_schedule(fixtures::SCHEDULE, "Orders primary");
    pd.add_escalation_policy("PEPORD1", "Orders escalation");
    pd.add_oncall(
        OnCall::new("PTIM001", "PEPORD1", 1)
            .via_schedule(fixtures::SCHEDULE)
            .between(NOW - time::Duration::hours(8), shift_end),
    );
    let tim = fixtures::user("U0TIM");
    let directory = Arc::new(FixedDirectory(BTreeMap::from([("tim@example.com".to_owned(), tim.clone())])));
    let clock = ManualClock::new(NOW);
    let client = PagerDutyClient::new(&pd.base_url(), SecretString::from(pd.api_key()), PagerDutySettings::default())
        .expect("a PagerDuty client");
    let cache = RosterCache::new(&support::redis_url(), &support::unique("shift-end")).expect("a cache");
    let provider =
        RosterProvider::new(Some(client), directory, cache, clock.clone(), Default::default()).expect("a provider");

    let request = fixtures::pending_request(NOW, 1, Duration::from_secs(30 * 60));
    let report = provider.roster_for(&request.policy).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::PagerDuty);
    assert_eq!(may_decide(&request, &tim, &report.roster, clock.now()), Ok(()), "on call now");

    clock.advance(time::Duration::seconds(31));
    let report = provider.roster_for(&request.policy).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::Cache, "the cached roster is still fresh");
    assert_eq!(report.roster.as_of, NOW);
    assert!(report.roster.entries_for(&tim).iter().any(|e| e.until == Some(shift_end)), "the shift's end is kept");
    assert_eq!(may_decide(&request, &tim, &report.roster, clock.now()), Err(Refusal::NotOnCall));
}

/// Six people are on call in the schedule, each with a Slack account found by email: only the full member may
/// approve. The guests, the bot, the app user and the deactivated account are kept off the roster and shown on the
/// card as unable to approve, with why; a click from one of them is refused.
#[tokio::test]
async fn only_full_members_of_the_workspace_approve() {
    let people = [
        ("PMEM001", "U0MEMBER", User::new("U0MEMBER", "member"), None),
        ("PGST001", "U0GUEST", User::new("U0GUEST", "guest").multi_channel_guest(), Some(Exclusion::Guest)),
        ("PSCG001", "U0SCG", User::new("U0SCG", "scg").single_channel_guest(), Some(Exclusion::Guest)),
        ("PBOT001", "U0BOTUSER", User::new("U0BOTUSER", "botuser").bot(), Some(Exclusion::Bot)),
        ("PAPP001", "U0APPUSER", User::new("U0APPUSER", "appuser").app_user(), Some(Exclusion::Bot)),
        ("PGONE001", "U0GONE", User::new("U0GONE", "gone").deactivated(), Some(Exclusion::Deactivated)),
    ];
    let slack = FakeSlack::start(
        people.iter().fold(SlackConfig::default(), |config, (_, _, user, _)| config.with_user(user.clone())),
    )
    .await;
    let pd = FakePagerDuty::start().await;
    pd.set_now(NOW);
    pd.add_schedule(fixtures::SCHEDULE, "Orders primary");
    pd.add_escalation_policy("PEPORD1", "Orders escalation");
    for (pd_id, _, user, _) in &people {
        // The emulator's users have `<handle>@example.com`; PagerDuty has the same address, in other case.
        pd.add_user(pd_id, &user.real_name, &format!("{}@Example.com", user.name));
        pd.add_oncall(OnCall::new(pd_id, "PEPORD1", 1).via_schedule(fixtures::SCHEDULE));
    }
    let web = SlackWeb::new(&slack.api_url(), SecretString::from(slack.bot_token().to_owned()), WebSettings::default())
        .expect("a Slack client");
    let client = PagerDutyClient::new(&pd.base_url(), SecretString::from(pd.api_key()), PagerDutySettings::default())
        .expect("a PagerDuty client");
    let cache = RosterCache::new(&support::redis_url(), &support::unique("members")).expect("a cache");
    let clock = ManualClock::new(NOW);
    let provider = RosterProvider::new(
        Some(client),
        Arc::new(SlackWebDirectory::new(web)),
        cache,
        clock.clone(),
        Default::default(),
    )
    .expect("a provider");

    let request = fixtures::pending_request(NOW, 1, Duration::from_secs(30 * 60));
    let report = provider.roster_for(&request.policy).await.expect("a roster");
    assert_eq!(report.roster.users().cloned().collect::<Vec<_>>(), [fixtures::user("U0MEMBER")]);
    for (pd_id, slack_id, user, why) in &people[1..] {
        let unmapped = report.unmapped.iter().find(|u| u.pagerduty_user_id == *pd_id).expect("listed as unmapped");
        assert_eq!(unmapped.excluded, *why, "{pd_id}");
        assert_eq!(
            may_decide(&request, &fixtures::user(slack_id), &report.roster, clock.now()),
            Err(Refusal::NotOnCall),
            "{pd_id} may not approve"
        );
        let shown = messages::unable_to_approve(&unmapped.name, &unmapped.email, unmapped.excluded);
        assert!(shown.starts_with(&format!("{} <{}@Example.com> (", user.real_name, user.name)), "{shown}");
    }
    assert_eq!(
        messages::unable_to_approve("Gus Guest", "gus@example.com", Some(Exclusion::Guest)),
        "Gus Guest <gus@example.com> (a guest account: only full members of the workspace approve)"
    );
    assert_eq!(may_decide(&request, &fixtures::user("U0MEMBER"), &report.roster, clock.now()), Ok(()));
}

/// Envelopes whose payload names another workspace, or another app, are acked and ignored: a slash command from
/// another workspace creates no request, and an on-call approver's click that names another workspace or app does
/// not approve. Each is counted as a security alert; the real command and click that follow work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_for_another_workspace_or_app_are_not_acted_on() {
    let h = Harness::start().await;
    let other_team = Elsewhere { team_id: "T0ELSEWHERE".into(), app_id: h.slack.config().app_id.clone() };
    let other_app = Elsewhere { team_id: h.slack.config().team.id.clone(), app_id: "A0OTHERAPP".into() };

    let foreign = h
        .slack
        .send_slash_command_from(
            Some(&other_team),
            ALICE,
            DEV,
            "/jit",
            "query orders-by-customer customer_id=C000001 from=2026-01-02 until=2026-01-03 --reason \"INC-1\"",
        )
        .await;
    assert!(ack_is_bare(&foreign.ack().await.expect("acked")), "nothing is said to another workspace");
    h.wait_for_metric("jitgate_security_alerts_total{kind=\"foreign_envelope\"} 1").await;

    let card = h
        .request(ALICE, "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812\"")
        .await;
    assert!(card.message.all_text().contains("C000002"), "{}", card.message.all_text());

    for (n, elsewhere) in [(2, &other_team), (3, &other_app)] {
        let click = h
            .slack
            .send_block_action_from(
                Some(elsewhere),
                BOB,
                ONCALL,
                &card.ts,
                APPROVE_ACTION,
                &card.button_value(APPROVE_ACTION),
            )
            .await;
        assert!(ack_is_bare(&click.ack().await.expect("acked")));
        h.wait_for_metric(&format!("jitgate_security_alerts_total{{kind=\"foreign_envelope\"}} {n}")).await;
    }
    assert_eq!(h.audit_kinds(&card.id).await, ["requested"], "neither click approved");

    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    // Had the foreign command or clicks been handled, their cards, confirmations or refusals would be unread here,
    // and the emulator would fail the test when it is dropped.
    h.shutdown().await;
}
